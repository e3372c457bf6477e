//! The demo's upstreams: one loopback HTTPS server that answers for several made-up hosts, with certificates from a
//! throwaway demo CA.
//!
//! Why in-process: the demo must show credential injection on the wire, so it needs a server that can say what it
//! received, and it must not depend on the network or on anything installed. The hosts (`api.example.com` and the
//! rest, names that can never resolve on the Internet) are pinned to 127.0.0.1 with `airlock run --resolve`, and
//! the broker trusts the demo CA through `--upstream-ca`, as it would an internal CA.
//!
//! What the server remembers is what the demo checks: which host got which request, and whether the API saw the
//! real key. It never keeps a credential: the API compares the `Authorization` header with the key it was given
//! (in constant time) and records only the outcome.

use std::sync::{Arc, Mutex};

use airlock_broker::ca::LocalCa;
use airlock_policy::normalize::HostName;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::rustls::server::Acceptor;
use zeroize::Zeroizing;

/// One request as the upstream saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub host: String,
    pub method: String,
    pub path: String,
    /// The API's check of `Authorization: Bearer <key>` against the real key (false elsewhere).
    pub authorized: bool,
    pub body_bytes: usize,
}

/// What each host serves.
pub struct Pages {
    /// The key the API expects, as a real API would.
    pub api_key: Zeroizing<Vec<u8>>,
    /// The docs host's `/readme`: a page carrying a prompt injection.
    pub injection_page: String,
    /// The docs host's `/config`: a page that leaks a credential.
    pub leaky_page: String,
}

pub struct Upstream {
    pub port: u16,
    /// The demo CA's certificate: the broker trusts it for these hosts.
    pub ca_pem: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// The server's runtime: dropping it stops the server.
    _runtime: tokio::runtime::Runtime,
}

impl Upstream {
    pub fn start(pages: Pages) -> std::io::Result<Upstream> {
        let ca = LocalCa::generate("airlock-demo-upstreams", std::time::Duration::from_secs(3600), None)
            .map_err(std::io::Error::other)?;
        let ca_pem = ca.cert_pem().to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let port = listener.local_addr()?.port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (ca, pages, log) = (Arc::new(ca), Arc::new(pages), Arc::clone(&seen));
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (ca, pages, log) = (Arc::clone(&ca), Arc::clone(&pages), Arc::clone(&log));
                tokio::spawn(async move {
                    let _ = connection(stream, &ca, pages, log).await;
                });
            }
        });
        Ok(Upstream { port, ca_pem, seen, _runtime: runtime })
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One TLS connection: the certificate is chosen by the name the client asked for (SNI), as a real host's would be.
async fn connection(
    stream: tokio::net::TcpStream,
    ca: &LocalCa,
    pages: Arc<Pages>,
    log: Arc<Mutex<Vec<Seen>>>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
    let host = start.client_hello().server_name().ok_or("no SNI")?.to_string();
    let config = ca.server_config(&HostName::parse(&host)?, &[b"http/1.1"])?;
    let tls = start.into_stream(config).await?;
    let service = hyper::service::service_fn(move |req| {
        let (pages, log, host) = (Arc::clone(&pages), Arc::clone(&log), host.clone());
        async move { Ok::<_, std::convert::Infallible>(answer(&host, req, &pages, &log).await) }
    });
    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await?;
    Ok(())
}

async fn answer(host: &str, req: Request<Incoming>, pages: &Pages, log: &Mutex<Vec<Seen>>) -> Response<Full<Bytes>> {
    let (method, path) = (req.method().to_string(), req.uri().path().to_string());
    let authorized = host == super::API && bearer_matches(&req, &pages.api_key);
    let body_bytes = match Limited::new(req.into_body(), 1 << 20).collect().await {
        Ok(b) => b.to_bytes().len(),
        Err(_) => 0,
    };
    log.lock().unwrap_or_else(|p| p.into_inner()).push(Seen {
        host: host.to_string(),
        method,
        path: path.clone(),
        authorized,
        body_bytes,
    });
    let (status, body) = match (host, path.as_str()) {
        (super::API, "/v1/me") if authorized => (StatusCode::OK, r#"{"user":"demo","plan":"pro"}"#.to_string()),
        (super::API, _) => (StatusCode::UNAUTHORIZED, r#"{"error":"invalid api key"}"#.to_string()),
        (super::PASTE, _) => (StatusCode::CREATED, r#"{"stored":true}"#.to_string()),
        (super::DOCS, "/readme") => (StatusCode::OK, pages.injection_page.clone()),
        (super::DOCS, "/config") => (StatusCode::OK, pages.leaky_page.clone()),
        _ => (StatusCode::NOT_FOUND, "not found".to_string()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

fn bearer_matches(req: &Request<Incoming>, key: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    let Some(value) = req.headers().get(hyper::header::AUTHORIZATION) else { return false };
    let Some(token) = value.as_bytes().strip_prefix(b"Bearer ") else { return false };
    token.len() == key.len() && bool::from(token.ct_eq(key))
}
