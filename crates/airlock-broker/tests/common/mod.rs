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
        Harness::with_tls_port(policy, |cfg, _| tweak(cfg))
    }

    /// Like [`Harness::with`], telling `tweak` the TLS upstream's port.
    pub fn with_tls_port(policy: &str, tweak: impl FnOnce(&mut BrokerConfig, u16)) -> Harness {
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
            policy: Arc::new(Arc::clone(&engine)),
            ssrf,
            resolver: Arc::new(resolver),
            audit: None,
            timeouts: Default::default(),
            limits: Default::default(),
            extra_ca_pems: vec![tls_upstream.ca_pem.clone()],
            leaks: Arc::new(airlock_broker::leak::LeakScanner::builder().build().unwrap()),
            rate_limits: airlock_broker::limits::Limiter::from_config(&engine.compiled().model.file.rate_limits),
            credentials: Arc::new(airlock_broker::inject::CredentialSet::empty()),
            ca: None,
            budgets: airlock_broker::budget::Budgets::from_config(
                &engine.compiled().model.file.rate_limits,
                &engine.compiled().model.file.budgets,
            ),
            capabilities: Arc::new(airlock_broker::capability::Registry::builtin()),
            redactor: None,
        };
        let tls_port = tls_upstream.addr.port();
        tweak(&mut cfg, tls_port);
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
        self.curl_via(Some(&self.proxy_url()), args)
    }

    /// curl with no proxy: for the broker's own endpoints (the capability API).
    pub fn curl_direct(&self, args: &[&str]) -> CurlResult {
        self.curl_via(None, args)
    }

    fn curl_via(&self, proxy: Option<&str>, args: &[&str]) -> CurlResult {
        let headers = self.dir.path().join("curl-headers");
        let via = match proxy {
            Some(p) => ["-x", p],
            None => ["--noproxy", "*"],
        };
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(via)
            .arg("-D")
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
    // `/redirect-to?URL`: 302 to URL.
    if parts.uri.path() == "/redirect-to" {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = hyper::StatusCode::FOUND;
        r.headers_mut().insert("location", parts.uri.query().unwrap_or("/").parse().unwrap());
        return Ok(r);
    }
    // `/secretive`: JSON with fields a capability's response blocklist removes.
    if parts.uri.path() == "/secretive" {
        let body = r#"{"id":"pi_1","client_secret":"pi_1_secret_abc","items":[{"client_secret":"x","keep":1}]}"#;
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        r.headers_mut().insert("content-type", "application/json".parse().unwrap());
        return Ok(r);
    }
    // `/quiet`: records the request but echoes nothing of it (an echo of an injected header is a reflection, which
    // the broker cuts off). Sets a cookie, which the broker strips from injected hosts' responses.
    if parts.uri.path().starts_with("/quiet") {
        let mut r = Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}")));
        r.headers_mut().insert("content-type", "application/json".parse().unwrap());
        r.headers_mut().insert("set-cookie", "session=upstream-session; Secure".parse().unwrap());
        r.headers_mut().insert("x-upstream", "kept".parse().unwrap());
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
            "paths.example.com".into(),
        ])
        .unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
        let ca_pem = ca_cert.pem();
        let ca_file = dir.join("upstream-ca.pem");
        std::fs::write(&ca_file, &ca_pem).unwrap();

        let config = tls_server_config(&leaf, &leaf_key, &[b"h2", b"http/1.1"]);
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

// ---------------------------------------------------------------------------------------------------------------
// Helpers for the SSRF attack tests (tests/security/ssrf_*.rs).
// ---------------------------------------------------------------------------------------------------------------

/// Every host on any port, with `network.block_private` turned off (only `dev` may), so that for an IP literal the
/// broker's SSRF step, not the policy's coarser private-address rule, is what decides. The SSRF tests use it to show
/// that the SSRF step holds on its own: policy allows the host, and only the SSRF check stands in the way.
pub const OPEN_POLICY: &str = r#"
version = 1
default_profile = "dev"

[network]
block_private = false

[agents.agent]
tools = ["fetch"]

[tools.fetch]
[[tools.fetch.network]]
hosts = ["*:*"]
"#;

/// The static answers [`Harness::new`] pins, plus `extra` (name, addresses), for a tweak that replaces
/// `cfg.resolver`. An `extra` entry for a name already pinned replaces it.
pub fn pinned_resolver(extra: &[(&str, &[&str])]) -> Resolver {
    let mut r = Resolver::fixed_only(Duration::from_secs(2));
    let defaults: [(&str, &[&str]); 6] = [
        ("api.example.com", &["127.0.0.1"]),
        ("paths.example.com", &["127.0.0.1"]),
        ("tunnel.example.com", &["127.0.0.1"]),
        ("other.example.com", &["127.0.0.1"]),
        ("rebind.example.com", &["127.0.0.1", "10.1.2.3"]),
        ("meta.example.com", &["169.254.169.254"]),
    ];
    for (name, addrs) in defaults.iter().chain(extra.iter()) {
        r = r.pin(name, addrs.iter().map(|a| a.parse().expect("a pinned address")).collect());
    }
    r
}

/// A CIDR for `cfg.ssrf.allow_cidrs`.
pub fn cidr(text: &str) -> airlock_broker::ssrf::Cidr {
    airlock_broker::ssrf::Cidr::parse(text).unwrap()
}

/// What came back on a raw socket: the status line's code, the head (lowercased) and the body.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// 0 when nothing parseable came back (the connection was closed or timed out first).
    pub status: u16,
    /// Status line and headers, lowercased.
    pub head: String,
    pub body: String,
}

impl RawResponse {
    fn parse(bytes: &[u8]) -> RawResponse {
        let text = String::from_utf8_lossy(bytes).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| head.strip_prefix("HTTP/1.0 "))
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        RawResponse { status, head: head.to_ascii_lowercase(), body: body.to_string() }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Reads one HTTP/1.1 response: the head, then `Content-Length` bytes of body (or up to EOF without one).
async fn read_one_response(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if let Some(length) = length
                && buf.len() >= end + 4 + length
            {
                return buf;
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return buf,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 1 << 20 {
            return buf;
        }
    }
}

impl Harness {
    /// A harness with [`OPEN_POLICY`] (every host allowed by policy, `block_private` off).
    pub fn open(tweak: impl FnOnce(&mut BrokerConfig)) -> Harness {
        Harness::with(OPEN_POLICY, tweak)
    }

    /// Writes `request` byte for byte to the proxy on a fresh connection and reads one response (5 s at most).
    /// For payloads that curl would normalise or refuse to send.
    pub fn raw(&self, request: &[u8]) -> RawResponse {
        let proxy = self.proxy;
        let request = request.to_vec();
        self.runtime.block_on(async move {
            use tokio::io::AsyncWriteExt;
            let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
            s.write_all(&request).await.unwrap();
            let bytes =
                tokio::time::timeout(Duration::from_secs(5), read_one_response(&mut s)).await.unwrap_or_default();
            RawResponse::parse(&bytes)
        })
    }

    /// `GET <target> HTTP/1.1` with `Host: <host>` and `Connection: close`, written by hand.
    pub fn raw_get(&self, target: &str, host: &str) -> RawResponse {
        self.raw(format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())
    }

    /// Starts an echo upstream at `ip` on `port` (0 for any) on this harness's runtime.
    pub fn upstream_at(&self, ip: &str, port: u16) -> std::io::Result<Upstream> {
        let addr = SocketAddr::new(ip.parse().unwrap(), port);
        self.runtime.block_on(Upstream::start_at(addr, None))
    }

    /// Starts an upstream on `127.0.0.1` that answers every request with `302 Found` and `Location: <location>`.
    pub fn redirecting_upstream(&self, location: &str) -> Upstream {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        self.runtime.block_on(Upstream::start_at(addr, Some(location.to_string()))).unwrap()
    }
}

async fn redirect_to(
    seen: Arc<Mutex<Vec<Seen>>>,
    location: Arc<str>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, _body) = req.into_parts();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).to_string()))
        .collect();
    seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers,
        body: Vec::new(),
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::FOUND;
    r.headers_mut().insert("location", location.parse().unwrap());
    Ok(r)
}

impl Upstream {
    /// An upstream bound to `addr` exactly (any loopback address works on Linux: all of 127/8 is on `lo`). With
    /// `redirect`, every request is answered `302 Found` to that location; without, the usual JSON echo.
    pub async fn start_at(addr: SocketAddr, redirect: Option<String>) -> std::io::Result<Upstream> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let seen: Arc<Mutex<Vec<Seen>>> = Default::default();
        let s = Arc::clone(&seen);
        let redirect: Option<Arc<str>> = redirect.map(Arc::from);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let s = Arc::clone(&s);
                let redirect = redirect.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let s = Arc::clone(&s);
                        let redirect = redirect.clone();
                        async move {
                            match redirect {
                                Some(location) => redirect_to(s, location, req).await,
                                None => echo(s, req).await,
                            }
                        }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Ok(Upstream { addr, seen })
    }
}

/// Collects every failed expectation of a table-driven test, so one run reports all of them, not just the first.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    /// Records `what` unless `ok`.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    /// Records an error.
    pub fn push(&mut self, what: String) {
        self.0.push(what);
    }

    /// Panics listing every failure, if there were any.
    pub fn finish(self, test: &str) {
        assert!(self.0.is_empty(), "{test}: {} failure(s):\n  - {}", self.0.len(), self.0.join("\n  - "));
    }
}

/// What an attack request must come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The broker's pipeline refuses it: this status, `X-Airlock-Deny`, and a JSON body with this `kind`.
    Deny(u16, &'static str),
    /// The HTTP parser in front of the pipeline (hyper and the `http` crate) refuses the request line itself:
    /// `400 Bad Request` with an empty body and no `X-Airlock-Deny`. Nothing was parsed as a target, so nothing
    /// was resolved or dialled.
    Malformed,
    /// It reaches the upstream: 200.
    Reached,
}

/// The broker's SSRF refusal.
pub const SSRF: Expect = Expect::Deny(403, "ssrf");
/// The broker's refusal of a target it cannot read unambiguously.
pub const PARSE: Expect = Expect::Deny(400, "parse");

/// Checks one response (status, lowercased head, body) against `want`. For an SSRF denial the JSON `reason` must
/// contain `mention` (the address or name the refusal is about), when `mention` is not empty.
pub fn check_outcome(status: u16, head: &str, body: &str, want: Expect, mention: &str) -> Result<(), String> {
    let got = || format!("got {status}, body {:?}", body.trim());
    match want {
        Expect::Reached => {
            if status != 200 {
                return Err(format!("want 200 from the upstream, {}", got()));
            }
        }
        Expect::Malformed => {
            if status != 400 || !body.is_empty() || head.contains("x-airlock-deny") {
                return Err(format!("want the HTTP parser's bare 400, {}", got()));
            }
        }
        Expect::Deny(want_status, want_kind) => {
            let json: serde_json::Value = serde_json::from_str(body)
                .map_err(|e| format!("want {want_status} {want_kind}, body not JSON ({e}); {}", got()))?;
            if status != want_status || json["kind"] != want_kind {
                return Err(format!("want {want_status} kind {want_kind:?}, {}", got()));
            }
            if !head.contains("x-airlock-deny:") {
                return Err(format!("no X-Airlock-Deny header; {}", got()));
            }
            let reason = json["reason"].as_str().unwrap_or_default();
            if reason.is_empty() {
                return Err(format!("a denial without a reason; {}", got()));
            }
            if want_kind == "ssrf" && !reason.contains(mention) {
                return Err(format!("the reason does not name {mention:?}; {}", got()));
            }
        }
    }
    Ok(())
}

impl CurlResult {
    /// [`check_outcome`] for a curl result.
    pub fn check(&self, want: Expect, mention: &str) -> Result<(), String> {
        check_outcome(self.status, &self.headers, &self.body, want, mention)
    }
}

impl RawResponse {
    /// [`check_outcome`] for a raw response.
    pub fn check(&self, want: Expect, mention: &str) -> Result<(), String> {
        check_outcome(self.status, &self.head, &self.body, want, mention)
    }
}

/// A TCP listener that only counts the connections made to it (and closes them): proof of whether anything was
/// dialled at an address, whatever protocol would have followed.
pub struct Accepts {
    pub addr: SocketAddr,
    count: Arc<std::sync::atomic::AtomicUsize>,
}

impl Accepts {
    pub fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Harness {
    /// A connection counter listening at `ip` on `port` (0 for any), on this harness's runtime.
    pub fn accept_counter(&self, ip: &str, port: u16) -> std::io::Result<Accepts> {
        let addr = SocketAddr::new(ip.parse().unwrap(), port);
        self.runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            let addr = listener.local_addr()?;
            let count: Arc<std::sync::atomic::AtomicUsize> = Default::default();
            let c = Arc::clone(&count);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    drop(stream);
                }
            });
            Ok(Accepts { addr, count })
        })
    }
}

/// A DNS server on loopback UDP for tests: answers A and AAAA queries from a table that may change between queries,
/// with TTL 0 so no cache keeps an answer; NXDOMAIN for names not in the table; an empty NOERROR answer for a type
/// the name has no records of. Runs on its own thread and stops when dropped.
pub struct DnsServer {
    pub addr: SocketAddr,
    /// Every query received: (name as asked, lowercased, without the trailing dot; query type).
    pub queries: Arc<Mutex<Vec<(String, u16)>>>,
    table: Arc<Mutex<BTreeMap<String, DnsName>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A name's answers: round `i` of a record type is used for that type's `i`-th query (cycling), so a name can
/// answer differently on every lookup.
#[derive(Debug, Clone, Default)]
struct DnsName {
    rounds: Vec<Vec<IpAddr>>,
    asked: BTreeMap<u16, usize>,
}

pub const DNS_TYPE_A: u16 = 1;
pub const DNS_TYPE_AAAA: u16 = 28;

impl DnsServer {
    /// A server that answers from its table (empty at first: everything is NXDOMAIN).
    pub fn start() -> DnsServer {
        DnsServer::spawn(true)
    }

    /// A server that reads queries and never answers any of them.
    pub fn silent() -> DnsServer {
        DnsServer::spawn(false)
    }

    /// `name` answers `addrs` (both families mixed as needed) to every query.
    pub fn set(&self, name: &str, addrs: &[&str]) {
        self.set_rounds(name, &[addrs]);
    }

    /// `name` answers `rounds[i % rounds.len()]` to its i-th query of each type.
    pub fn set_rounds(&self, name: &str, rounds: &[&[&str]]) {
        let rounds = rounds.iter().map(|r| r.iter().map(|a| a.parse().expect("an address")).collect()).collect();
        self.table.lock().unwrap().insert(name.to_ascii_lowercase(), DnsName { rounds, asked: BTreeMap::new() });
    }

    /// How many queries of `qtype` for `name` arrived.
    pub fn count(&self, name: &str, qtype: u16) -> usize {
        self.queries.lock().unwrap().iter().filter(|(n, t)| n == name && *t == qtype).count()
    }

    /// A broker resolver that asks only this server, with `timeout`.
    pub fn resolver(&self, timeout: Duration) -> Resolver {
        Resolver::with_name_servers(&[self.addr], timeout).unwrap()
    }

    fn spawn(answer: bool) -> DnsServer {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = socket.local_addr().unwrap();
        let queries: Arc<Mutex<Vec<(String, u16)>>> = Default::default();
        let table: Arc<Mutex<BTreeMap<String, DnsName>>> = Default::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (q, t, s) = (Arc::clone(&queries), Arc::clone(&table), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else { continue };
                let Some(query) = DnsQuery::parse(&buf[..n]) else { continue };
                q.lock().unwrap().push((query.name.clone(), query.qtype));
                if !answer {
                    continue;
                }
                let reply = {
                    let mut table = t.lock().unwrap();
                    match table.get_mut(&query.name) {
                        None => query.reply(3, &[]),
                        Some(entry) => {
                            let i = entry.asked.entry(query.qtype).or_insert(0);
                            let round = if entry.rounds.is_empty() {
                                Vec::new()
                            } else {
                                entry.rounds[*i % entry.rounds.len()].clone()
                            };
                            *i += 1;
                            let records: Vec<IpAddr> = round
                                .into_iter()
                                .filter(|ip| match query.qtype {
                                    DNS_TYPE_A => ip.is_ipv4(),
                                    DNS_TYPE_AAAA => ip.is_ipv6(),
                                    _ => false,
                                })
                                .collect();
                            query.reply(0, &records)
                        }
                    }
                };
                let _ = socket.send_to(&reply, peer);
            }
        });
        DnsServer { addr, queries, table, stop, thread: Some(thread) }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One question of a standard query, as far as this server needs it.
struct DnsQuery<'a> {
    packet: &'a [u8],
    /// Where the question section ends (after QTYPE and QCLASS).
    question_end: usize,
    name: String,
    qtype: u16,
}

impl<'a> DnsQuery<'a> {
    /// Bounded parse: a 12-byte header, exactly one question, uncompressed labels of at most 63 bytes and a name of
    /// at most 255 bytes. Anything else (responses, compression, truncation) is `None` and gets no answer.
    fn parse(packet: &'a [u8]) -> Option<DnsQuery<'a>> {
        if packet.len() < 12 || packet[2] & 0x80 != 0 || u16::from_be_bytes([packet[4], packet[5]]) != 1 {
            return None;
        }
        let mut pos = 12;
        let mut labels: Vec<String> = Vec::new();
        let mut name_len = 0usize;
        loop {
            let len = *packet.get(pos)? as usize;
            pos += 1;
            if len == 0 {
                break;
            }
            if len > 63 {
                return None;
            }
            name_len += len + 1;
            if name_len > 255 {
                return None;
            }
            let label = packet.get(pos..pos + len)?;
            labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
            pos += len;
        }
        let fixed = packet.get(pos..pos + 4)?;
        let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        Some(DnsQuery { packet, question_end: pos + 4, name: labels.join("."), qtype })
    }

    /// A response with `rcode` and the given records (TTL 0), the question echoed back.
    fn reply(&self, rcode: u8, records: &[IpAddr]) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&self.packet[0..2]); // id
        // QR, opcode 0, AA, RD copied; RA; rcode.
        out.push(0x80 | 0x04 | (self.packet[2] & 0x01));
        out.push(0x80 | (rcode & 0x0f));
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&(records.len() as u16).to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&self.packet[12..self.question_end]);
        for ip in records {
            out.extend_from_slice(&[0xc0, 0x0c]); // the name: a pointer to the question's
            let (rtype, rdata): (u16, Vec<u8>) = match ip {
                IpAddr::V4(v4) => (DNS_TYPE_A, v4.octets().to_vec()),
                IpAddr::V6(v6) => (DNS_TYPE_AAAA, v6.octets().to_vec()),
            };
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes()); // class IN
            out.extend_from_slice(&0u32.to_be_bytes()); // TTL 0
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(&rdata);
        }
        out
    }
}

impl Harness {
    /// Opens a CONNECT tunnel to `authority` on a raw socket, then, if it was opened (200), sends each of `requests`
    /// inside it as plain HTTP on that one connection, reading one response to each (10 s in all at most). Returns
    /// the CONNECT response and the inner responses, stopping at the first request that got no answer.
    pub fn tunnel_http(&self, authority: &str, requests: &[String]) -> (RawResponse, Vec<RawResponse>) {
        let proxy = self.proxy;
        let authority = authority.to_string();
        let requests = requests.to_vec();
        let work = async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
            s.write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes()).await.unwrap();
            // The CONNECT answer's head, byte by byte so that nothing after it is consumed.
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                match s.read(&mut byte).await {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let mut connect = RawResponse::parse(&head);
            if connect.status != 200 {
                let length = connect
                    .head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length.min(1 << 20)];
                let _ = s.read_exact(&mut body).await;
                connect.body = String::from_utf8_lossy(&body).to_string();
                return (connect, Vec::new());
            }
            let mut inner = Vec::new();
            for request in &requests {
                if s.write_all(request.as_bytes()).await.is_err() {
                    break;
                }
                let bytes = read_one_response(&mut s).await;
                if bytes.is_empty() {
                    break;
                }
                inner.push(RawResponse::parse(&bytes));
            }
            (connect, inner)
        };
        self.runtime.block_on(async move {
            tokio::time::timeout(Duration::from_secs(10), work).await.unwrap_or_else(|_| {
                (RawResponse { status: 0, head: "timed out".into(), body: String::new() }, Vec::new())
            })
        })
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Credential injection and opened (intercepted) tunnels.
// ---------------------------------------------------------------------------------------------------------------

/// Tool `fetch` may use `API_TOKEN` (pinned to `api.example.com`, any port; the tool holds a surrogate) and
/// `RECIPE_TOKEN` (pinned to `tunnel.example.com`; injected as `X-Api-Key` by recipe).
pub const INJECT_POLICY: &str = r#"
version = 1
default_profile = "dev"

[agents.agent]
tools = ["fetch"]

[tools.fetch]
secrets = ["API_TOKEN", "RECIPE_TOKEN"]
[[tools.fetch.network]]
hosts = ["api.example.com:*", "tunnel.example.com:*", "other.example.com:*"]

[secrets.API_TOKEN]
hosts = ["api.example.com:*"]

[secrets.RECIPE_TOKEN]
hosts = ["tunnel.example.com:*"]
inject = { header = "X-Api-Key", format = "{value}" }
"#;

pub const API_REAL: &str = "tok_live_REALvalue0123456789abcdef";
pub const API_SURROGATE: &str = "tok_live_SURRvalue9876543210fedcba";
pub const RECIPE_REAL: &str = "rk_REALrecipeValue_0123456789";

/// A broker with the injection policy, both credentials, a leak scanner over their values and the surrogate, and a
/// local CA that opens every tunnel. The CA certificate is at `dir/airlock-ca.pem` for clients to trust.
pub fn inject_harness() -> Harness {
    inject_harness_with(|_, _| {})
}

/// [`inject_harness`], then `tweak` (told the TLS upstream's port) may change the config.
pub fn inject_harness_with(tweak: impl FnOnce(&mut BrokerConfig, u16)) -> Harness {
    use airlock_broker::inject::{Credential, CredentialSet, Recipe};
    use airlock_broker::leak::{LeakScanner, Source};
    let ca = Arc::new(airlock_broker::ca::LocalCa::generate("test", Duration::from_secs(86400), None).unwrap());
    let ca_pem = ca.cert_pem().to_string();
    let h = Harness::with_tls_port(INJECT_POLICY, |cfg, tls_port| {
        let creds = CredentialSet::new(vec![
            Credential::new("API_TOKEN", API_REAL.as_bytes())
                .surrogate(API_SURROGATE)
                .body_types(&["application/json"]),
            Credential::new("RECIPE_TOKEN", RECIPE_REAL.as_bytes())
                .recipe(Recipe::header("X-Api-Key", "{value}").unwrap()),
        ])
        .unwrap();
        let mut b = LeakScanner::builder();
        b.add(Source::Secret("default/API_TOKEN".into()), API_REAL.as_bytes());
        b.add(Source::Secret("default/RECIPE_TOKEN".into()), RECIPE_REAL.as_bytes());
        b.add(Source::Surrogate("API_TOKEN".into()), API_SURROGATE.as_bytes());
        cfg.leaks = Arc::new(b.build().unwrap());
        cfg.credentials = Arc::new(creds);
        cfg.ca = Some(ca);
        tweak(cfg, tls_port);
    });
    std::fs::write(h.dir.path().join("airlock-ca.pem"), ca_pem).unwrap();
    h
}

impl Harness {
    /// `https://HOST:PORT` of the TLS upstream under one of its names.
    pub fn tls_url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.tls_upstream.addr.port())
    }

    /// curl through the proxy, trusting Airlock's CA (opened tunnels) and nothing else.
    pub fn curl_opened(&self, args: &[&str]) -> CurlResult {
        let ca = self.dir.path().join("airlock-ca.pem");
        let mut all = vec!["--cacert", ca.to_str().unwrap()];
        all.extend_from_slice(args);
        self.curl(&all)
    }

    /// How many requests the TLS upstream has seen.
    pub fn tls_count(&self) -> usize {
        self.tls_upstream.seen.lock().unwrap().len()
    }
}

/// CONNECTs to `connect_host:port` through the proxy (expecting 200), then starts TLS naming `sni` and trusting
/// only `ca_pem`; with `request`, sends it and reads to the end. `Err` when the handshake or the exchange fails.
pub fn tls_through_connect(
    h: &Harness,
    connect_host: &str,
    port: u16,
    sni: &str,
    ca_pem: &str,
    request: Option<&'static [u8]>,
) -> std::io::Result<Vec<u8>> {
    let (proxy, connect_host, sni, ca_pem) = (h.proxy, connect_host.to_string(), sni.to_string(), ca_pem.to_string());
    h.runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(proxy).await?;
        let connect = format!("CONNECT {connect_host}:{port} HTTP/1.1\r\nHost: {connect_host}:{port}\r\n\r\n");
        s.write_all(connect.as_bytes()).await?;
        let mut head = [0u8; 1024];
        let n = s.read(&mut head).await?;
        assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"), "the CONNECT was refused");
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from(sni).unwrap();
        let mut tls = connector.connect(name, s).await?;
        let mut out = Vec::new();
        if let Some(r) = request {
            tls.write_all(r).await?;
            tls.read_to_end(&mut out).await?;
        }
        Ok(out)
    })
}

fn capability_provider(base: &str, secret: &str) -> airlock_policy::providers::ProviderConfig {
    let cap = |methods: &[&str], path: &str, blocklist: &[&str]| airlock_policy::providers::CapabilityConfig {
        methods: methods.iter().map(|m| m.to_string()).collect(),
        paths: vec![path.to_string()],
        response_blocklist: blocklist.iter().map(|b| b.to_string()).collect(),
        description: None,
    };
    airlock_policy::providers::ProviderConfig {
        base_url: base.to_string(),
        secret: secret.to_string(),
        inject: Some(airlock_policy::config::InjectRecipe {
            header: Some("X-Example-Key".into()),
            format: Some("Key {value}".into()),
            query: None,
        }),
        capabilities: BTreeMap::from([
            ("things".to_string(), cap(&["GET", "POST"], "/quiet", &[])),
            ("secretive".to_string(), cap(&["GET"], "/secretive", &["client_secret"])),
        ]),
        ..Default::default()
    }
}

/// The injection harness with providers: `example` on the TLS upstream as tunnel.example.com (where RECIPE_TOKEN is
/// pinned), `elsewhere` on other.example.com (where it is not), `ungranted` needing a secret the tool lacks.
pub fn capability_harness() -> Harness {
    inject_harness_with(|cfg, tls_port| {
        let providers = BTreeMap::from([
            (
                "example".to_string(),
                capability_provider(&format!("https://tunnel.example.com:{tls_port}"), "RECIPE_TOKEN"),
            ),
            (
                "elsewhere".to_string(),
                capability_provider(&format!("https://other.example.com:{tls_port}"), "RECIPE_TOKEN"),
            ),
            (
                "ungranted".to_string(),
                capability_provider(&format!("https://tunnel.example.com:{tls_port}"), "NOT_GIVEN"),
            ),
        ]);
        cfg.capabilities = Arc::new(airlock_broker::capability::Registry::builtin().with_config(&providers).unwrap());
    })
}

impl Harness {
    /// POSTs `envelope` to the capability endpoint, straight to the broker (it is the origin here, not a proxy).
    pub fn capability_call(&self, name: &str, envelope: &str) -> CurlResult {
        self.curl_direct(&[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
            envelope,
            &format!("http://{}/v1/capabilities/{name}", self.proxy),
        ])
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Redaction of capability responses: a scripted upstream, a small rule set, an audit log in memory.
// ---------------------------------------------------------------------------------------------------------------

/// A rule for [`test_redactor`]: `tsttok_` and 24 letters and digits.
pub const TOKEN_RULES: &str = r#"
[[rule]]
id = "test-token"
family = "testing"
description = "A token format for the broker's tests"
keywords = ["tsttok_"]
regex = '''\btsttok_[0-9A-Za-z]{24}\b'''
max_len = 40
positive = ["TOKEN=tsttok_Q3v9LmZ2x8Rt5Wp1Ks7Hn4Bc"]
negative = ["tsttok_short"]
"#;

/// A token [`TOKEN_RULES`] finds.
pub const RULE_TOKEN: &str = "tsttok_Q3v9LmZ2x8Rt5Wp1Ks7Hn4Bc";

/// A redactor over [`TOKEN_RULES`], and, with `known`, the injection harness's real values as known values (what
/// the binary gives it from the vault).
pub fn test_redactor(known: bool) -> airlock_redact::Redactor {
    use airlock_broker::leak::{LeakScanner, Source};
    let mut set = airlock_redact::RuleSet::empty();
    set.add_toml("test.toml", TOKEN_RULES).unwrap_or_else(|e| panic!("{e}"));
    let values = known.then(|| {
        let mut b = LeakScanner::builder();
        b.add(Source::Secret("default/API_TOKEN".into()), API_REAL.as_bytes());
        b.add(Source::Secret("default/RECIPE_TOKEN".into()), RECIPE_REAL.as_bytes());
        Arc::new(b.build().unwrap())
    });
    let scanner = airlock_redact::Scanner::new(set, &airlock_redact::ScanOptions::default(), values).unwrap();
    airlock_redact::Redactor::new(scanner, airlock_redact::MaskStyle::Label)
}

/// An audit log in memory: every event appended, as JSON.
#[derive(Default)]
pub struct MemoryLog(pub Mutex<Vec<serde_json::Value>>);

impl airlock_audit::Append for MemoryLog {
    fn append(&self, event: airlock_audit::Event) -> Result<airlock_audit::Receipt, airlock_audit::AuditError> {
        let mut events = self.0.lock().unwrap();
        events.push(event.into_value());
        Ok(airlock_audit::Receipt { seq: events.len() as u64, logged_ms: 0 })
    }

    fn append_buffered(
        &self,
        event: airlock_audit::Event,
    ) -> Result<airlock_audit::Receipt, airlock_audit::AuditError> {
        self.append(event)
    }
}

impl MemoryLog {
    /// An audit trail into this log (allows not recorded).
    pub fn trail(self: &Arc<Self>) -> airlock_broker::AuditTrail {
        airlock_broker::AuditTrail {
            log: Arc::clone(self) as Arc<dyn airlock_audit::Append>,
            mac: airlock_audit::AuditMac::new(airlock_crypto::Key32::from_bytes([8; 32])),
            record_allows: false,
            fail_closed: true,
        }
    }

    /// The Detection Finding events (class 2004) recorded so far.
    pub fn findings(&self) -> Vec<serde_json::Value> {
        self.0.lock().unwrap().iter().filter(|e| e["class_uid"] == 2004).cloned().collect()
    }

    /// Waits up to 5 s for at least `n` Detection Findings (a streamed body's is written when it ends).
    pub fn wait_for_findings(&self, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..100 {
            let f = self.findings();
            if f.len() >= n {
                return f;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.findings()
    }

    /// Everything recorded, as one string (to check that no value was written).
    pub fn text(&self) -> String {
        serde_json::to_string(&*self.0.lock().unwrap()).unwrap()
    }
}

/// What a scripted upstream writes for one request head: the parts of a raw HTTP/1.1 response, each written and
/// flushed on its own with a pause before the next, so that the broker reads them separately.
pub type Script = Arc<dyn Fn(&str) -> Vec<Vec<u8>> + Send + Sync>;

/// An HTTPS upstream (HTTP/1.1 only, a certificate for `tunnel.example.com` from its own test CA) that answers each
/// request with the bytes a [`Script`] gives for the request head, then closes the connection. Bound before the
/// broker starts (the broker's provider needs its port), served once the harness's runtime exists.
pub struct ScriptedUpstream {
    pub port: u16,
    pub ca_pem: String,
    /// Every request head received.
    pub heads: Arc<Mutex<Vec<String>>>,
    listener: Mutex<Option<std::net::TcpListener>>,
    config: Arc<rustls::ServerConfig>,
}

impl ScriptedUpstream {
    pub fn bind() -> ScriptedUpstream {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "airlock scripted upstream CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["tunnel.example.com".into()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        // HTTP/1.1 only: the responses are written by hand, chunked encoding and all.
        let config = tls_server_config(&leaf, &leaf_key, &[b"http/1.1"]);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        ScriptedUpstream {
            port: listener.local_addr().unwrap().port(),
            ca_pem: ca_cert.pem(),
            heads: Default::default(),
            listener: Mutex::new(Some(listener)),
            config: Arc::new(config),
        }
    }

    /// Starts answering on `h`'s runtime.
    pub fn serve(&self, h: &Harness, script: Script) {
        let listener = self.listener.lock().unwrap().take().expect("served once");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&self.config));
        let heads = Arc::clone(&self.heads);
        h.runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (acceptor, heads, script) = (acceptor.clone(), Arc::clone(&heads), Arc::clone(&script));
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(mut tls) = acceptor.accept(stream).await else { return };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let end = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end + 4;
                        }
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let length = head_value(&head, "content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
                    while buf.len() < end + length {
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    heads.lock().unwrap().push(head.clone());
                    for (i, part) in script(&head).into_iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        if tls.write_all(&part).await.is_err() || tls.flush().await.is_err() {
                            return;
                        }
                    }
                    let _ = tls.shutdown().await;
                });
            }
        });
    }

    /// The last request head received.
    pub fn last_head(&self) -> String {
        self.heads.lock().unwrap().last().cloned().unwrap_or_default()
    }
}

/// The value of header `name` in a raw request head.
pub fn head_value(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// A response head (status line, headers and the blank line) for a chunked JSON body, with `extra` header lines
/// (each ending in CRLF).
pub fn chunked_head(extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// One frame of a chunked body.
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// The last frame of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// `data` as a gzip member (one stored deflate block: no compressor needed, and any gzip reader inflates it).
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    assert!(data.len() < 65536);
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    let len = data.len() as u16;
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.push(1); // the final block, stored
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&(!crc).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// The injection harness with provider `example` on a [`ScriptedUpstream`] as tunnel.example.com (where RECIPE_TOKEN
/// is pinned; injected as `X-Example-Key: Key {value}`): `example/things` streams its responses (no blocklist, paths
/// under `/quiet`), `example/secretive` filters `client_secret` out (paths under `/secretive`). `tweak` may set the
/// redactor, the audit trail and so on.
pub fn scripted_capability_harness(upstream: &ScriptedUpstream, tweak: impl FnOnce(&mut BrokerConfig)) -> Harness {
    let base = format!("https://tunnel.example.com:{}", upstream.port);
    let ca_pem = upstream.ca_pem.clone();
    inject_harness_with(move |cfg, _| {
        let providers = BTreeMap::from([("example".to_string(), capability_provider(&base, "RECIPE_TOKEN"))]);
        cfg.capabilities = Arc::new(airlock_broker::capability::Registry::builtin().with_config(&providers).unwrap());
        cfg.extra_ca_pems.push(ca_pem);
        tweak(cfg);
    })
}

/// The responses of a [`ScriptedUpstream`] for the redaction tests, by the request's path (its last segment):
/// - `echo`: JSON echoing the injected `X-Example-Key` value and carrying [`RULE_TOKEN`], in three chunked frames:
///   the first ends inside the echoed credential, the second inside the token;
/// - `echo-b64`: the `X-Example-Key` value base64-encoded, split across two frames;
/// - `token-only`: JSON with a `client_secret` and [`RULE_TOKEN`] split across two frames, nothing injected echoed;
/// - `gzip`: `{"token": RULE_TOKEN}` gzipped, with `Content-Encoding: gzip` whatever the request asked for.
pub fn echo_script() -> Script {
    use base64::Engine;
    Arc::new(|head: &str| {
        let path = head.split_whitespace().nth(1).unwrap_or("/");
        let path = path.split('?').next().unwrap_or(path);
        let key = head_value(head, "x-example-key").unwrap_or_default();
        let (token_a, token_b) = RULE_TOKEN.split_at(12);
        match path.rsplit('/').next().unwrap_or("") {
            "echo" => {
                let (key_a, key_b) = key.split_at(key.len() / 2);
                vec![
                    chunked_head(""),
                    chunk(format!(r#"{{"client_secret":"cs_value","seen":"{key_a}"#).as_bytes()),
                    chunk(format!(r#"{key_b}","token":"{token_a}"#).as_bytes()),
                    chunk(format!(r#"{token_b}","ok":true}}"#).as_bytes()),
                    LAST_CHUNK.to_vec(),
                ]
            }
            "echo-b64" => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(key.as_bytes());
                let (a, b) = encoded.split_at(encoded.len() / 2);
                vec![
                    chunked_head(""),
                    chunk(format!(r#"{{"seen_b64":"{a}"#).as_bytes()),
                    chunk(format!(r#"{b}"}}"#).as_bytes()),
                    LAST_CHUNK.to_vec(),
                ]
            }
            "token-only" => vec![
                chunked_head(""),
                chunk(format!(r#"{{"client_secret":"cs_value","token":"{token_a}"#).as_bytes()),
                chunk(format!(r#"{token_b}"}}"#).as_bytes()),
                LAST_CHUNK.to_vec(),
            ],
            "gzip" => {
                let body = gzip_stored(format!(r#"{{"token":"{RULE_TOKEN}"}}"#).as_bytes());
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                out.extend_from_slice(&body);
                vec![out]
            }
            _ => vec![b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()],
        }
    })
}

/// A TLS server config for a test upstream: one leaf certificate and key, the given ALPN protocols.
pub fn tls_server_config(leaf: &rcgen::Certificate, leaf_key: &rcgen::KeyPair, alpn: &[&[u8]]) -> rustls::ServerConfig {
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
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}
