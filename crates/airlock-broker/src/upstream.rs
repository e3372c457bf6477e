//! Connections to upstream servers: dialled at checked addresses only, kept alive and reused.
//!
//! Why a pool of our own instead of a general HTTP client: a general client takes a URL and resolves its host
//! itself, which would undo the resolve-once rule (see [`crate::resolve`]). Here the caller hands over the exact
//! socket addresses that passed the SSRF check, and a pooled connection is keyed by the address it was dialled
//! at, so a connection is only ever reused for the same (checked) address, host name and TLS setting.
//!
//! HTTPS upstreams are verified against the system's roots plus any extra CAs the operator configures, and speak
//! HTTP/2 when the server offers it through ALPN (one multiplexed connection per key), HTTP/1.1 otherwise.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = BoxBody<Bytes, BoxError>;

/// Idle connections kept per key; more are closed when returned.
const MAX_IDLE_PER_KEY: usize = 64;
/// An idle connection older than this is not reused (servers close theirs after 60–120 s).
const MAX_IDLE_AGE: Duration = Duration::from_secs(55);

/// Where a request goes: the checked address, and for TLS the name to verify.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    pub addr: SocketAddr,
    /// `Some(server name)` for HTTPS.
    pub tls: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("connecting to {addr} took longer than {}s", .timeout.as_secs_f32())]
    ConnectTimeout { addr: SocketAddr, timeout: Duration },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("the upstream did not answer within {}s", .0.as_secs_f32())]
    ResponseTimeout(Duration),
    #[error("the upstream connection failed: {0}")]
    Http(String),
}

enum Sender {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// The upstream side of the broker. Shared by all connections.
pub struct Upstreams {
    idle: Mutex<HashMap<Destination, Vec<Idle>>>,
    tls: tokio_rustls::TlsConnector,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams").field("connect_timeout", &self.connect_timeout).finish_non_exhaustive()
    }
}

/// The TLS client configuration for upstreams: system roots plus `extra_ca_pems`, ALPN h2 and http/1.1.
pub fn client_tls_config(extra_ca_pems: &[String]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A malformed system certificate is skipped, as every TLS client does; the rest still verify.
        let _ = roots.add(cert);
    }
    for pem in extra_ca_pems {
        let mut any = false;
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes()) {
            let cert: rustls::pki_types::CertificateDer<'static> =
                cert.map_err(|e| format!("an extra CA certificate is not valid PEM: {e}"))?;
            roots.add(cert).map_err(|e| format!("an extra CA certificate was refused: {e}"))?;
            any = true;
        }
        if !any {
            return Err("an extra CA file holds no certificate".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl Upstreams {
    pub fn new(tls: rustls::ClientConfig, connect_timeout: Duration, response_timeout: Duration) -> Upstreams {
        Upstreams {
            idle: Mutex::new(HashMap::new()),
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            connect_timeout,
            response_timeout,
        }
    }

    /// Sends `req` (origin-form URI, Host header set) to one of `dests`, tried in order until one connects.
    /// Returns the response and the address that answered.
    pub async fn send(
        self: &Arc<Self>,
        dests: &[Destination],
        req: Request<Body>,
    ) -> Result<(Response<Incoming>, SocketAddr), UpstreamError> {
        let (dest, sender) = self.checkout(dests).await?;
        let addr = dest.addr;
        let response = match sender {
            Sender::H1(mut s) => {
                let fut = s.send_request(req);
                let r = self.with_response_timeout(fut).await?;
                // The connection can carry the next request once this response's body is done: return it then.
                let this = Arc::clone(self);
                tokio::spawn(async move {
                    if s.ready().await.is_ok() {
                        this.put(dest, Sender::H1(s));
                    }
                });
                r
            }
            Sender::H2(mut s) => {
                let req = to_h2_form(req, dest.tls.as_deref().unwrap_or_default())?;
                let fut = s.send_request(req);
                self.put(dest, Sender::H2(s.clone()));
                self.with_response_timeout(fut).await?
            }
        };
        Ok((response, addr))
    }

    async fn with_response_timeout(
        &self,
        fut: impl std::future::Future<Output = Result<Response<Incoming>, hyper::Error>>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(self.response_timeout, fut).await {
            Err(_) => Err(UpstreamError::ResponseTimeout(self.response_timeout)),
            Ok(Err(e)) => Err(UpstreamError::Http(e.to_string())),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// A ready idle connection to one of `dests`, or a new one.
    async fn checkout(&self, dests: &[Destination]) -> Result<(Destination, Sender), UpstreamError> {
        {
            let mut idle = crate::lock(&self.idle);
            for dest in dests {
                if let Some(list) = idle.get_mut(dest) {
                    while let Some(entry) = list.pop() {
                        if entry.since.elapsed() > MAX_IDLE_AGE {
                            continue;
                        }
                        let usable = match &entry.sender {
                            Sender::H1(s) => s.is_ready(),
                            Sender::H2(s) => s.is_ready(),
                        };
                        if usable {
                            return Ok((dest.clone(), entry.sender));
                        }
                    }
                }
            }
        }
        let mut last = None;
        for dest in dests {
            match self.connect(dest).await {
                Ok(sender) => return Ok((dest.clone(), sender)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(UpstreamError::Http("no address to connect to".into())))
    }

    fn put(&self, dest: Destination, sender: Sender) {
        if matches!(&sender, Sender::H2(s) if s.is_closed()) {
            return;
        }
        let mut idle = crate::lock(&self.idle);
        let list = idle.entry(dest).or_default();
        if let Sender::H2(_) = sender {
            // One multiplexed connection per destination is enough; keep the newest.
            list.clear();
        }
        if list.len() < MAX_IDLE_PER_KEY {
            list.push(Idle { sender, since: Instant::now() });
        }
    }

    /// Dials exactly `dest.addr` (never a name), with TLS to `dest.tls` when set.
    pub async fn dial(&self, addr: SocketAddr) -> Result<TcpStream, UpstreamError> {
        let tcp = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Err(_) => return Err(UpstreamError::ConnectTimeout { addr, timeout: self.connect_timeout }),
            Ok(Err(e)) => return Err(UpstreamError::Connect { addr, reason: e.to_string() }),
            Ok(Ok(s)) => s,
        };
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    async fn connect(&self, dest: &Destination) -> Result<Sender, UpstreamError> {
        let tcp = self.dial(dest.addr).await?;
        match &dest.tls {
            None => {
                let (sender, conn) =
                    http1::handshake(TokioIo::new(tcp)).await.map_err(|e| UpstreamError::Http(e.to_string()))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Ok(Sender::H1(sender))
            }
            Some(host) => {
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| UpstreamError::Tls { host: host.clone(), reason: e.to_string() })?;
                let tls = match tokio::time::timeout(self.connect_timeout, self.tls.connect(name, tcp)).await {
                    Err(_) => {
                        return Err(UpstreamError::ConnectTimeout { addr: dest.addr, timeout: self.connect_timeout });
                    }
                    Ok(Err(e)) => return Err(UpstreamError::Tls { host: host.clone(), reason: e.to_string() }),
                    Ok(Ok(s)) => s,
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let io = TokioIo::new(tls);
                if h2 {
                    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                        .timer(TokioTimer::new())
                        .handshake(io)
                        .await
                        .map_err(|e| UpstreamError::Http(e.to_string()))?;
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    Ok(Sender::H2(sender))
                } else {
                    let (sender, conn) = http1::handshake(io).await.map_err(|e| UpstreamError::Http(e.to_string()))?;
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    Ok(Sender::H1(sender))
                }
            }
        }
    }
}

/// HTTP/2 carries the authority in `:authority`, taken from an absolute URI: move the Host header there.
fn to_h2_form(mut req: Request<Body>, host: &str) -> Result<Request<Body>, UpstreamError> {
    let authority = req
        .headers_mut()
        .remove(hyper::header::HOST)
        .and_then(|h| h.to_str().ok().map(str::to_string))
        .unwrap_or_else(|| host.to_string());
    let path = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    *req.uri_mut() = hyper::Uri::builder()
        .scheme("https")
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|e| UpstreamError::Http(e.to_string()))?;
    *req.version_mut() = hyper::Version::HTTP_2;
    Ok(req)
}
