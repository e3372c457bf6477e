//! Shared test setup: a policy written to a real file, a broker on a loopback port, and loopback upstreams
//! (plain HTTP and HTTPS with a test CA) that echo what they received as JSON.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use airlock_broker::{Attribution, Broker, BrokerConfig, Principal, Resolver, SsrfPolicy};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A policy where agent `agent` runs tool `fetch`, which may GET and POST to `api.example.com` on any port, and GET
/// under `/only/` on `paths.example.com`.
pub const POLICY: &str = r#"
version = 1
default_profile = "dev"

[agents.agent]
tools = ["fetch"]

[tools.fetch]
[[tools.fetch.network]]
hosts = ["api.example.com:*", "tunnel.example.com:*", "rebind.example.com", "meta.example.com"]

[[tools.fetch.network]]
hosts = ["paths.example.com:*"]
methods = ["GET"]
paths = ["/only/"]
"#;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub proxy: SocketAddr,
    pub upstream: Upstream,
    pub tls_upstream: TlsUpstream,
    pub runtime: tokio::runtime::Runtime,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(POLICY, |_| {})
    }

    /// A harness whose broker config `tweak` may change before it starts.
    pub fn with(policy: &str, tweak: impl FnOnce(&mut BrokerConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("airlock.toml");
        std::fs::write(&config, policy).unwrap();
        let opts = airlock_policy::LoadOptions {
            profile_flag: None,
            profile_env: None,
            workspace: dir.path().to_path_buf(),
            home: dir.path().to_path_buf(),
        };
        let engine = Arc::new(airlock_policy::load_engine(&config, &opts).unwrap_or_else(|e| panic!("{e}")));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let upstream = runtime.block_on(Upstream::start());
        let tls_upstream = runtime.block_on(TlsUpstream::start(dir.path()));
        let loopback: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        let resolver = Resolver::fixed_only(Duration::from_secs(2))
            .pin("api.example.com", loopback.clone())
            .pin("paths.example.com", loopback.clone())
            .pin("tunnel.example.com", loopback.clone())
            .pin("other.example.com", loopback.clone())
            .pin("rebind.example.com", vec!["127.0.0.1".parse().unwrap(), "10.1.2.3".parse().unwrap()])
            .pin("meta.example.com", vec!["169.254.169.254".parse().unwrap()]);
        let mut ssrf = SsrfPolicy::default();
        // The upstreams live on loopback: allow exactly that address, nothing else private.
        ssrf.allow_cidrs.push(airlock_broker::ssrf::Cidr::parse("127.0.0.1/32").unwrap());
        let mut cfg = BrokerConfig {
            policy: Arc::new(engine),
            ssrf,
            resolver: Arc::new(resolver),
            audit: None,
            timeouts: Default::default(),
            limits: Default::default(),
            extra_ca_pems: vec![tls_upstream.ca_pem.clone()],
        };
        tweak(&mut cfg);
        let broker = Broker::new(cfg).unwrap();
        let proxy = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let attribution = Attribution::Fixed(Principal::new("agent", "fetch", "run-1"));
            tokio::spawn(async move { broker.serve_tcp(listener, attribution).await });
            addr
        });
        Harness { dir, proxy, upstream, tls_upstream, runtime }
    }

    pub fn proxy_url(&self) -> String {
        format!("http://{}", self.proxy)
    }

    /// Runs curl through the proxy; returns (HTTP status, headers, body).
    pub fn curl(&self, args: &[&str]) -> CurlResult {
        let headers = self.dir.path().join("curl-headers");
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "-x", &self.proxy_url(), "-D"])
            .arg(&headers)
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("ALL_PROXY")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .expect("curl is installed");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        CurlResult {
            status: code.trim().parse().unwrap_or(0),
            headers: std::fs::read_to_string(&headers).unwrap_or_default().to_ascii_lowercase(),
            body: body.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }
}

#[derive(Debug)]
pub struct CurlResult {
    pub status: u16,
    /// Lowercased.
    pub headers: String,
    pub body: String,
    pub stderr: String,
}

impl CurlResult {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// What an echo upstream saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// A plain HTTP/1.1 upstream on loopback that answers every request with JSON describing it.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

async fn echo(
    seen: Arc<Mutex<Vec<Seen>>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).to_string()))
        .collect();
    let s = Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: headers.clone(),
        body: body.clone(),
    };
    seen.lock().unwrap().push(s);
    if parts.uri.path() == "/redirect" {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = hyper::StatusCode::FOUND;
        r.headers_mut().insert("location", "http://other.example.com/landing".parse().unwrap());
        return Ok(r);
    }
    let json = serde_json::json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_len": body.len(),
    });
    let mut r = Response::new(Full::new(Bytes::from(json.to_string())));
    r.headers_mut().insert("content-type", "application/json".parse().unwrap());
    r.headers_mut().insert("keep-alive", "timeout=5".parse().unwrap());
    Ok(r)
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Default::default();
        let s = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| echo(Arc::clone(&s), req));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Upstream { addr, seen }
    }

    pub fn last(&self) -> Option<Seen> {
        self.seen.lock().unwrap().last().cloned()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// An HTTPS upstream (HTTP/1.1 and HTTP/2 by ALPN) with a certificate for `api.example.com`, `tunnel.example.com` and
/// `other.example.com` from a test CA.
pub struct TlsUpstream {
    pub addr: SocketAddr,
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl TlsUpstream {
    pub async fn start(dir: &std::path::Path) -> TlsUpstream {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "airlock test upstream CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_params = rcgen::CertificateParams::new(vec![
            "api.example.com".into(),
            "tunnel.example.com".into(),
            "other.example.com".into(),
        ])
        .unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        let ca_pem = ca_cert.pem();
        let ca_file = dir.join("upstream-ca.pem");
        std::fs::write(&ca_file, &ca_pem).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Default::default();
        let s = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let acceptor = acceptor.clone();
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let svc = hyper::service::service_fn(move |req| echo(Arc::clone(&s), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        TlsUpstream { addr, ca_pem, ca_file, seen }
    }

    pub fn last(&self) -> Option<Seen> {
        self.seen.lock().unwrap().last().cloned()
    }
}
