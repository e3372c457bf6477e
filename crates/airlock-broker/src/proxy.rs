//! The proxy: accepts connections, attributes them, decides each request, and forwards what is allowed.
//!
//! Why one explicit pipeline: every request, whatever its shape (absolute-form HTTP, CONNECT), goes through the
//! same ordered steps, and each step either passes the request on or ends it with a denial that names its reason:
//!
//! 1. **attribute** — who is asking ([`crate::principal`]); nobody → 407;
//! 2. **parse** — the target in canonical form (`airlock_policy::normalize::url`); bad → 400;
//! 3. **bound** — header size (431, by the HTTP parser), declared body size (413), TRACE/TRACK (405);
//! 4. **decide** — policy for agent, tool, method, URL and size → 403 with `X-Airlock-Deny`;
//! 5. **SSRF** — the name, then every resolved address ([`crate::ssrf`]) → 403;
//! 6. **forward** — to a checked address only ([`crate::upstream`]), hop-by-hop headers removed, `Host` rewritten
//!    from the canonical target;
//! 7. **audit** — every decision, allow or deny; a deny that cannot be recorded still denies, and with
//!    `fail_closed` an allow that cannot be recorded becomes a deny.
//!
//! CONNECT runs steps 1–5 for `https://host:port/` with method `CONNECT`, dials, answers 200, then requires the
//! tunnel to start with a TLS ClientHello whose SNI names the approved host ([`crate::sni`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use airlock_audit::{AuditLog, AuditMac, Decision as AuditDecision, Event, Severity};
use airlock_policy::normalize::HostName;
use airlock_policy::normalize::{Scheme, Target};
use airlock_policy::{Engine, PolicyStore, Request as PolicyRequest};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::leak::{Finding, LeakScanner, OwnedStreamScan, Source};
use crate::limits::Limiter;
use crate::principal::{Attribution, Principal};
use crate::resolve::Resolver;
use crate::scan_body::{FindingSlot, ScannedBody};
use crate::sni::{self, Hello};
use crate::ssrf::SsrfPolicy;
use crate::upstream::{Body, BoxError, Destination, Upstreams};

/// Where decisions come from: a fixed engine, or a store that hot-reloads.
pub trait PolicySource: Send + Sync {
    fn engine(&self) -> Arc<Engine>;
}

impl PolicySource for PolicyStore {
    fn engine(&self) -> Arc<Engine> {
        PolicyStore::engine(self)
    }
}

impl PolicySource for Arc<Engine> {
    fn engine(&self) -> Arc<Engine> {
        Arc::clone(self)
    }
}

/// Where decisions are recorded.
pub struct AuditTrail {
    pub log: Arc<AuditLog>,
    pub mac: AuditMac,
    /// Record allowed requests too (denials are always recorded).
    pub record_allows: bool,
    /// An allow that cannot be recorded is turned into a deny.
    pub fail_closed: bool,
}

/// Time limits on each phase of a request.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// Reading a request's headers from the client.
    pub header_read: Duration,
    /// Resolving a name.
    pub resolve: Duration,
    /// Connecting (and the TLS handshake) to an upstream.
    pub connect: Duration,
    /// Waiting for an upstream's response headers.
    pub response: Duration,
    /// Waiting for the ClientHello in a tunnel.
    pub client_hello: Duration,
    /// A tunnel with no traffic either way for this long is closed.
    pub tunnel_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header_read: Duration::from_secs(30),
            resolve: Duration::from_secs(5),
            connect: Duration::from_secs(10),
            response: Duration::from_secs(120),
            client_hello: Duration::from_secs(10),
            tunnel_idle: Duration::from_secs(300),
        }
    }
}

/// Size and concurrency bounds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Request line plus headers; larger gets 431.
    pub max_header_bytes: usize,
    /// Request body; a larger declared length gets 413 before anything is sent upstream, and a chunked body
    /// that grows past it is cut off.
    pub max_body_bytes: u64,
    /// Concurrent client connections per principal.
    pub max_connections_per_principal: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_header_bytes: 64 * 1024, max_body_bytes: 64 << 20, max_connections_per_principal: 256 }
    }
}

/// Everything the broker needs.
pub struct BrokerConfig {
    pub policy: Arc<dyn PolicySource>,
    pub ssrf: SsrfPolicy,
    pub resolver: Arc<Resolver>,
    pub audit: Option<AuditTrail>,
    pub timeouts: Timeouts,
    pub limits: Limits,
    /// PEM files' contents: CAs trusted for upstream TLS besides the system roots.
    pub extra_ca_pems: Vec<String>,
    /// Known secret values and canaries that must not leave (empty: no scan).
    pub leaks: Arc<LeakScanner>,
    /// `[rate_limits]`.
    pub rate_limits: Limiter,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("upstream TLS setup: {0}")]
    Tls(String),
    #[error("{op} {addr}: {source}")]
    Io { op: &'static str, addr: String, source: std::io::Error },
}

struct Shared {
    policy: Arc<dyn PolicySource>,
    ssrf: RwLock<SsrfPolicy>,
    resolver: Arc<Resolver>,
    audit: Option<AuditTrail>,
    timeouts: Timeouts,
    limits: Limits,
    upstreams: Arc<Upstreams>,
    leaks: Arc<LeakScanner>,
    rate_limits: Limiter,
    connections: std::sync::Mutex<std::collections::HashMap<Principal, Arc<Semaphore>>>,
}

/// The egress broker. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

/// How a denial looks to the caller and in the audit log.
#[derive(Debug, Clone)]
struct Denial {
    status: StatusCode,
    /// Which step refused: `policy`, `ssrf`, `resolve`, `auth`, `method`, `size`, `tls`, `audit`, `upstream`.
    kind: &'static str,
    reason: String,
    policies: Vec<String>,
    /// For `leak`: what was found (never the value).
    finding: Option<Finding>,
    /// For `rate`: when to try again.
    retry_after: Option<Duration>,
}

impl Denial {
    fn new(status: StatusCode, kind: &'static str, reason: impl Into<String>) -> Denial {
        Denial { status, kind, reason: reason.into(), policies: Vec::new(), finding: None, retry_after: None }
    }

    fn rate(shared: &Shared, p: &Principal, t: &Target) -> Option<Denial> {
        let limited = shared.rate_limits.check(p, &t.host, t.port, t.default_port).err()?;
        let mut d = Denial::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate",
            format!("rate limit reached ({}); try again in {:.1}s", limited.bucket, limited.retry_after.as_secs_f32()),
        );
        d.retry_after = Some(limited.retry_after);
        Some(d)
    }

    fn leak(f: Finding, place: &str) -> Denial {
        let what = match &f.source {
            Source::Secret(id) => format!("the value of secret {id}"),
            Source::Canary(id) => format!("canary token {id}"),
        };
        let reason = format!(
            "the request {place} carries {what} ({} form): protected values may not leave through the proxy",
            f.encoding
        );
        Denial {
            status: StatusCode::FORBIDDEN,
            kind: "leak",
            reason,
            policies: Vec::new(),
            finding: Some(f),
            retry_after: None,
        }
    }
}

/// What a request was, for the audit record.
struct Seen<'a> {
    principal: Option<&'a Principal>,
    method: &'a str,
    target: Option<&'a Target>,
    request_id: &'a str,
    dialled: Option<SocketAddr>,
}

impl<'a> Seen<'a> {
    /// A request nothing has been dialled for yet.
    fn of(principal: Option<&'a Principal>, method: &'a str, target: Option<&'a Target>, request_id: &'a str) -> Self {
        Seen { principal, method, target, request_id, dialled: None }
    }
}

impl Broker {
    pub fn new(config: BrokerConfig) -> Result<Broker, BrokerError> {
        let tls = crate::upstream::client_tls_config(&config.extra_ca_pems).map_err(BrokerError::Tls)?;
        let upstreams = Arc::new(Upstreams::new(tls, config.timeouts.connect, config.timeouts.response));
        Ok(Broker {
            shared: Arc::new(Shared {
                policy: config.policy,
                ssrf: RwLock::new(config.ssrf),
                resolver: config.resolver,
                audit: config.audit,
                timeouts: config.timeouts,
                limits: config.limits,
                upstreams,
                leaks: config.leaks,
                rate_limits: config.rate_limits,
                connections: Default::default(),
            }),
        })
    }

    /// Serves proxy clients on `listener` until the task is dropped. The listener's own address is never a
    /// destination.
    pub async fn serve_tcp(&self, listener: tokio::net::TcpListener, attribution: Attribution) -> std::io::Result<()> {
        if let Ok(addr) = listener.local_addr() {
            self.shared.ssrf.write().unwrap_or_else(|p| p.into_inner()).own_addrs.push(addr);
        }
        loop {
            let (stream, peer) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let this = self.clone();
            let attribution = attribution.clone();
            tokio::spawn(async move { this.serve_connection(stream, attribution, peer.to_string()).await });
        }
    }

    /// Serves proxy clients on a Unix socket. Only the broker's own user (or root) may connect.
    pub async fn serve_unix(
        &self,
        listener: tokio::net::UnixListener,
        attribution: Attribution,
    ) -> std::io::Result<()> {
        let me = nix::unistd::geteuid().as_raw();
        loop {
            let (stream, _) = listener.accept().await?;
            match stream.peer_cred() {
                Ok(cred) if cred.uid() == me || cred.uid() == 0 => {}
                _ => continue, // another user: drop the connection unanswered
            }
            let this = self.clone();
            let attribution = attribution.clone();
            tokio::spawn(async move { this.serve_connection(stream, attribution, "unix".into()).await });
        }
    }

    /// Serves one client connection (HTTP/1.1, keep-alive, CONNECT upgrades).
    pub async fn serve_connection<S>(&self, io: S, attribution: Attribution, peer: String)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // A fixed principal is counted for the whole connection; a token principal per request (below).
        let _permit = match &attribution {
            Attribution::Fixed(p) => match self.connection_permit(p) {
                Some(permit) => Some(permit),
                None => return,
            },
            Attribution::Token(_) => None,
        };
        let shared = Arc::clone(&self.shared);
        let service = service_fn(move |req| {
            let shared = Arc::clone(&shared);
            let attribution = attribution.clone();
            let peer = peer.clone();
            async move { Ok::<_, Infallible>(handle(shared, attribution, peer, req).await) }
        });
        let _ = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.shared.timeouts.header_read)
            .max_buf_size(self.shared.limits.max_header_bytes.max(8192))
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades()
            .await;
    }

    fn connection_permit(&self, p: &Principal) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let sem = {
            let mut map = crate::lock(&self.shared.connections);
            Arc::clone(
                map.entry(p.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.shared.limits.max_connections_per_principal))),
            )
        };
        sem.try_acquire_owned().ok()
    }
}

async fn handle(
    shared: Arc<Shared>,
    attribution: Attribution,
    _peer: String,
    req: Request<Incoming>,
) -> Response<Body> {
    let request_id = hex::encode(airlock_crypto::random::bytes::<8>());
    let method = req.method().clone();
    // 1. attribute
    let principal = match &attribution {
        Attribution::Fixed(p) => p.clone(),
        Attribution::Token(table) => {
            match req.headers().get(header::PROXY_AUTHORIZATION).and_then(|h| table.authenticate(h.as_bytes())) {
                Some(p) => p.clone(),
                None => {
                    let d = Denial::new(
                        StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                        "auth",
                        "proxy authentication required: send your agent token in Proxy-Authorization",
                    );
                    let mut r = refused(&shared, &Seen::of(None, method.as_str(), None, &request_id), &d).await;
                    r.headers_mut()
                        .insert(header::PROXY_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"airlock\""));
                    return r;
                }
            }
        }
    };
    if method == Method::CONNECT {
        return handle_connect(shared, principal, request_id, req).await;
    }
    serve_request(&shared, &principal, &request_id, req).await
}

/// An absolute-form request, start to end: forwarded, or a denial recorded and answered.
async fn serve_request(
    shared: &Arc<Shared>,
    principal: &Principal,
    request_id: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let method = req.method().clone();
    match forward(shared, principal, request_id, req).await {
        Ok(r) => r,
        Err((d, target)) => {
            refused(shared, &Seen::of(Some(principal), method.as_str(), target.as_ref(), request_id), &d).await
        }
    }
}

/// Plain HTTP inside a CONNECT tunnel (Node's undici tunnels even `http://` URLs): every request in it is served
/// as an absolute-form request to the tunnel's host and port, so each gets its own decision, leak scan and record.
async fn serve_tunnel_http<C>(shared: Arc<Shared>, principal: Principal, target: Target, client: C)
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let authority =
        if target.default_port { target.host.to_string() } else { format!("{}:{}", target.host, target.port) };
    // The same bounds as outside a tunnel.
    let (header_read, max_header) = (shared.timeouts.header_read, shared.limits.max_header_bytes.max(8192));
    let service = service_fn(move |mut req: Request<Incoming>| {
        let (shared, principal, authority) = (Arc::clone(&shared), principal.clone(), authority.clone());
        async move {
            let request_id = hex::encode(airlock_crypto::random::bytes::<8>());
            let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
            // Only origin-form belongs in a tunnel; anything else names another destination.
            let origin_form = req.uri().authority().is_none() && pq.starts_with('/');
            let absolute = if origin_form { format!("http://{authority}{pq}") } else { String::new() };
            match absolute.parse::<hyper::Uri>() {
                Ok(uri) if !absolute.is_empty() => *req.uri_mut() = uri,
                _ => {
                    let d = Denial::new(
                        StatusCode::BAD_REQUEST,
                        "parse",
                        "a request in a tunnel must be origin-form (/path)",
                    );
                    let seen = Seen::of(Some(&principal), req.method().as_str(), None, &request_id);
                    return Ok::<_, Infallible>(refused(&shared, &seen, &d).await);
                }
            }
            Ok(serve_request(&shared, &principal, &request_id, req).await)
        }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read)
        .max_buf_size(max_header)
        .serve_connection(TokioIo::new(client), service)
        .await;
}

/// Steps 2–7 for an absolute-form request.
async fn forward(
    shared: &Arc<Shared>,
    principal: &Principal,
    request_id: &str,
    req: Request<Incoming>,
) -> Result<Response<Body>, (Denial, Option<Target>)> {
    // 2. parse
    let uri = req.uri().to_string();
    if req.uri().scheme().is_none() {
        return Err((
            Denial::new(
                StatusCode::BAD_REQUEST,
                "parse",
                "this is a proxy: send absolute-form requests (http://host/path)",
            ),
            None,
        ));
    }
    let target = Target::parse(&uri)
        .map_err(|e| (Denial::new(StatusCode::BAD_REQUEST, "parse", format!("bad request target: {e}")), None))?;
    let fail = |d: Denial| (d, Some(target.clone()));
    // 3. bound
    let method = req.method().clone();
    if method.as_str().eq_ignore_ascii_case("TRACE") || method.as_str().eq_ignore_ascii_case("TRACK") {
        // TRACE echoes the request, injected credentials included, back to the caller.
        return Err(fail(Denial::new(StatusCode::METHOD_NOT_ALLOWED, "method", "TRACE and TRACK are refused")));
    }
    let declared = declared_length(req.headers()).map_err(|e| fail(Denial::new(StatusCode::BAD_REQUEST, "size", e)))?;
    if declared.unwrap_or(0) > shared.limits.max_body_bytes {
        return Err(fail(Denial::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "size",
            format!("request body larger than {} bytes", shared.limits.max_body_bytes),
        )));
    }
    // 3a. rate limits (denied requests count too: each costs an audit write)
    if let Some(d) = Denial::rate(shared, principal, &target) {
        return Err(fail(d));
    }
    // 3b. leaks in the request line and headers, exactly as sent (nothing has been injected yet)
    if let Some(d) = scan_head(&shared.leaks, req.uri(), req.headers()) {
        return Err(fail(d));
    }
    // 4. decide
    let url = target_url(&target);
    let decision = decide(shared, principal, method.as_str(), &url, declared.unwrap_or(0));
    if !decision.allowed {
        let mut d = Denial::new(StatusCode::FORBIDDEN, "policy", decision.reason.clone());
        d.policies = decision.policies.clone();
        return Err(fail(d));
    }
    // 5. SSRF
    let dests = check_destination(shared, &target).await.map_err(fail)?;
    let dests: Vec<Destination> = dests
        .into_iter()
        .map(|addr| Destination { addr, tls: (target.scheme == Scheme::Https).then(|| tls_name(&target.host)) })
        .collect();
    // 6. forward
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(header::HOST, host_header(&target));
    parts.uri = origin_form(&target)
        .map_err(|e| fail(Denial::new(StatusCode::BAD_REQUEST, "parse", format!("bad request target: {e}"))))?;
    parts.version = hyper::Version::HTTP_11;
    let limit = shared.limits.max_body_bytes as usize;
    let mut body: Body = Limited::new(body, limit).map_err(BoxError::from).boxed();
    let found: FindingSlot = Default::default();
    if !shared.leaks.is_empty() {
        let scan = OwnedStreamScan::new(Arc::clone(&shared.leaks));
        body = ScannedBody::new(body, scan, Arc::clone(&found)).boxed();
    }
    let upstream_req = Request::from_parts(parts, body);
    let sent = shared.upstreams.send(&dests, upstream_req).await;
    // A body stopped for a leak fails the upstream request: report the leak, not the broken connection.
    if let Some(f) = crate::lock(&found).take() {
        return Err(fail(Denial::leak(f, "body")));
    }
    let (resp, dialled) = sent.map_err(|e| fail(Denial::new(StatusCode::BAD_GATEWAY, "upstream", e.to_string())))?;
    // 7. audit (an allow)
    let seen = Seen {
        principal: Some(principal),
        method: method.as_str(),
        target: Some(&target),
        request_id,
        dialled: Some(dialled),
    };
    if let Err(d) = record_allow(shared, &seen, &decision.policies).await {
        return Err(fail(d));
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, body.map_err(BoxError::from).boxed()))
}

/// CONNECT: decide, dial, answer 200, check the ClientHello, then splice.
async fn handle_connect(
    shared: Arc<Shared>,
    principal: Principal,
    request_id: String,
    req: Request<Incoming>,
) -> Response<Body> {
    let authority = req.uri().authority().map(|a| a.as_str().to_string()).unwrap_or_default();
    let target = match Target::from_authority(&authority) {
        Ok(t) => t,
        Err(e) => {
            let d = Denial::new(StatusCode::BAD_REQUEST, "parse", format!("bad CONNECT target: {e}"));
            return refused(&shared, &Seen::of(Some(&principal), "CONNECT", None, &request_id), &d).await;
        }
    };
    let refuse = |d: Denial, target: Target| {
        let shared = Arc::clone(&shared);
        let principal = principal.clone();
        let request_id = request_id.clone();
        async move { refused(&shared, &Seen::of(Some(&principal), "CONNECT", Some(&target), &request_id), &d).await }
    };
    if let Some(d) = Denial::rate(&shared, &principal, &target) {
        return refuse(d, target).await;
    }
    if let Some(d) = scan_head(&shared.leaks, req.uri(), req.headers()) {
        return refuse(d, target).await;
    }
    let decision = decide(&shared, &principal, "CONNECT", &target_url(&target), 0);
    if !decision.allowed {
        let mut d = Denial::new(StatusCode::FORBIDDEN, "policy", decision.reason.clone());
        d.policies = decision.policies.clone();
        return refuse(d, target).await;
    }
    let addrs = match check_destination(&shared, &target).await {
        Ok(a) => a,
        Err(d) => return refuse(d, target).await,
    };
    let mut upstream = None;
    let mut last_error = String::new();
    for addr in &addrs {
        match shared.upstreams.dial(*addr).await {
            Ok(s) => {
                upstream = Some((s, *addr));
                break;
            }
            Err(e) => last_error = e.to_string(),
        }
    }
    let Some((upstream, dialled)) = upstream else {
        return refuse(Denial::new(StatusCode::BAD_GATEWAY, "upstream", last_error), target).await;
    };
    let seen = Seen {
        principal: Some(&principal),
        method: "CONNECT",
        target: Some(&target),
        request_id: &request_id,
        dialled: Some(dialled),
    };
    if let Err(d) = record_allow(&shared, &seen, &decision.policies).await {
        return refuse(d, target).await;
    }
    let tunnel_shared = Arc::clone(&shared);
    let tunnel_target = target.clone();
    let tunnel_principal = principal.clone();
    let tunnel_id = request_id.clone();
    tokio::spawn(async move {
        let mut client = match hyper::upgrade::on(req).await {
            Ok(u) => TokioIo::new(u),
            Err(_) => return,
        };
        let outcome = splice(&tunnel_shared, &mut client, upstream, &tunnel_target).await;
        if let Ok(Some(prefix)) = outcome {
            let io = Prefixed { prefix, at: 0, inner: client };
            serve_tunnel_http(tunnel_shared, tunnel_principal, tunnel_target, io).await;
            return;
        }
        if let Err(d) = outcome {
            let seen = Seen {
                principal: Some(&tunnel_principal),
                method: "CONNECT",
                target: Some(&tunnel_target),
                request_id: &tunnel_id,
                dialled: Some(dialled),
            };
            record_denial(&tunnel_shared, &seen, &d).await;
        }
    });
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::OK;
    r
}

/// Reads the ClientHello, checks its SNI against the approved host, then copies both ways.
///
/// A tunnel that starts with an HTTP request line instead of TLS is handed back (`Ok(Some(bytes read))`) to be
/// served request by request; anything else that is not TLS is refused.
async fn splice<C>(
    shared: &Shared,
    client: &mut C,
    mut upstream: tokio::net::TcpStream,
    target: &Target,
) -> Result<Option<Vec<u8>>, Denial>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(2048);
    let deadline = Instant::now() + shared.timeouts.client_hello;
    let server_name = loop {
        if looks_like_http(&buf) {
            return Ok(Some(buf));
        }
        match sni::parse(&buf) {
            Hello::Complete { server_name } => break server_name,
            Hello::Invalid(why) => {
                return Err(Denial::new(StatusCode::MISDIRECTED_REQUEST, "tls", format!("tunnel refused: {why}")));
            }
            Hello::Incomplete if buf.len() > sni::MAX_HELLO + 1024 => {
                return Err(Denial::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    "tls",
                    "tunnel refused: ClientHello too large",
                ));
            }
            Hello::Incomplete => {}
        }
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(left, client.read(&mut chunk)).await {
            Err(_) => {
                return Err(Denial::new(StatusCode::REQUEST_TIMEOUT, "tls", "tunnel refused: no ClientHello in time"));
            }
            Ok(Err(_)) | Ok(Ok(0)) => return Ok(None),
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
    };
    let expected = match &target.host {
        HostName::Domain(d) => Some(d.as_str()),
        _ => None,
    };
    let sni_ok = match (expected, server_name.as_deref()) {
        (Some(want), Some(got)) => want == got,
        (None, None) => true,
        // An IP target: clients send no SNI for IPs; one naming a host is fronting.
        (None, Some(_)) => false,
        (Some(_), None) => false,
    };
    if !sni_ok {
        // TLS alert unrecognized_name, so the client sees a TLS error rather than a hang.
        let _ = client.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]).await;
        let got = server_name.unwrap_or_else(|| "no name".into());
        return Err(Denial::new(
            StatusCode::MISDIRECTED_REQUEST,
            "tls",
            format!("tunnel refused: TLS names {got}, but CONNECT asked for {}", target.host),
        ));
    }
    if upstream.write_all(&buf).await.is_err() {
        return Ok(None);
    }
    let _ = copy_with_idle_timeout(client, upstream, shared.timeouts.tunnel_idle).await;
    Ok(None)
}

/// An HTTP/1.1 request line has begun: a method token of upper-case letters, then a space.
fn looks_like_http(buf: &[u8]) -> bool {
    let Some(space) = buf.iter().take(16).position(|b| *b == b' ') else { return false };
    space > 0 && buf[..space].iter().all(u8::is_ascii_uppercase)
}

/// A stream that first replays bytes already read from it.
struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = out.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            out.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, data)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Copies both ways until either side closes or nothing moves for `idle`.
async fn copy_with_idle_timeout<C>(
    mut client: C,
    mut upstream: tokio::net::TcpStream,
    idle: Duration,
) -> std::io::Result<()>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(&mut client);
    let (mut ur, mut uw) = upstream.split();
    let last = std::sync::atomic::AtomicU64::new(0);
    let start = Instant::now();
    let touch = || last.store(start.elapsed().as_millis() as u64, std::sync::atomic::Ordering::Relaxed);
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = cr.read(&mut buf).await?;
            if n == 0 {
                uw.shutdown().await?;
                return Ok::<_, std::io::Error>(());
            }
            touch();
            uw.write_all(&buf[..n]).await?;
        }
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = ur.read(&mut buf).await?;
            if n == 0 {
                cw.shutdown().await?;
                return Ok::<_, std::io::Error>(());
            }
            touch();
            cw.write_all(&buf[..n]).await?;
        }
    };
    let watchdog = async {
        loop {
            tokio::time::sleep(idle / 4).await;
            let quiet = start.elapsed().as_millis() as u64 - last.load(std::sync::atomic::Ordering::Relaxed);
            if quiet >= idle.as_millis() as u64 {
                return;
            }
        }
    };
    tokio::select! {
        r = async { tokio::try_join!(up, down) } => r.map(|_| ()),
        _ = watchdog => Ok(()),
    }
}

/// The request target and every header, as the client sent them.
fn scan_head(leaks: &LeakScanner, uri: &hyper::Uri, headers: &HeaderMap) -> Option<Denial> {
    if leaks.is_empty() {
        return None;
    }
    if let Some(f) = leaks.scan(uri.to_string().as_bytes()) {
        return Some(Denial::leak(f, "target"));
    }
    for (name, value) in headers {
        if let Some(f) = leaks.scan(name.as_str().as_bytes()).or_else(|| leaks.scan(value.as_bytes())) {
            return Some(Denial::leak(f, &format!("header {name}")));
        }
    }
    None
}

fn decide(shared: &Shared, p: &Principal, method: &str, url: &str, bytes: u64) -> Arc<airlock_policy::Decision> {
    let req = PolicyRequest::http(&p.agent, &p.tool, method, url).bytes(bytes).run(&p.run);
    shared.policy.engine().decide(&req).decision
}

/// Step 5: the name, then every address it resolves to. Returns the socket addresses that may be dialled.
async fn check_destination(shared: &Shared, target: &Target) -> Result<Vec<SocketAddr>, Denial> {
    let ssrf = shared.ssrf.read().unwrap_or_else(|p| p.into_inner()).clone();
    ssrf.check_name(&target.host, target.port)
        .map_err(|e| Denial::new(StatusCode::FORBIDDEN, "ssrf", e.to_string()))?;
    let addrs = shared
        .resolver
        .lookup(&target.host)
        .await
        .map_err(|e| Denial::new(StatusCode::BAD_GATEWAY, "resolve", e.to_string()))?;
    ssrf.check_answer(&target.host, target.port, &addrs)
        .map_err(|e| Denial::new(StatusCode::FORBIDDEN, "ssrf", e.to_string()))
}

/// `Content-Length`, if declared. Several differing values are refused (request smuggling).
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, String> {
    let mut found: Option<u64> = None;
    for v in headers.get_all(header::CONTENT_LENGTH) {
        let n: u64 = v.to_str().ok().and_then(|s| s.trim().parse().ok()).ok_or("invalid Content-Length")?;
        if found.is_some_and(|f| f != n) {
            return Err("conflicting Content-Length headers".into());
        }
        found = Some(n);
    }
    Ok(found)
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1), including any the Connection header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        // Never let Connection remove what the upstream needs to frame the message correctly.
        if n != header::CONTENT_LENGTH && n != header::HOST {
            headers.remove(&n);
        }
    }
    for h in [
        header::CONNECTION,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(h);
    }
    headers.remove("proxy-connection");
    headers.remove("keep-alive");
}

fn host_header(t: &Target) -> HeaderValue {
    let text = if t.default_port { t.host.to_string() } else { format!("{}:{}", t.host, t.port) };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn tls_name(host: &HostName) -> String {
    match host {
        HostName::Domain(d) => d.clone(),
        HostName::Ipv4(ip) => ip.to_string(),
        HostName::Ipv6(ip) => ip.to_string(),
    }
}

fn origin_form(t: &Target) -> Result<hyper::Uri, hyper::http::Error> {
    let pq = match &t.query {
        Some(q) => format!("{}?{}", t.path, q),
        None => t.path.clone(),
    };
    hyper::Uri::builder().path_and_query(pq).build()
}

/// The URL policy sees: canonical, with the query (policy never shows it).
fn target_url(t: &Target) -> String {
    let mut s = format!("{}://{}", t.scheme, t.host);
    if !t.default_port {
        s.push_str(&format!(":{}", t.port));
    }
    s.push_str(&t.path);
    s
}

fn empty() -> Body {
    Full::new(Bytes::new()).map_err(|never| match never {}).boxed()
}

/// 403 (or the denial's status) with `X-Airlock-Deny` and a small JSON body the model can read.
fn deny_response(d: &Denial, request_id: &str) -> Response<Body> {
    let body = json!({
        "error": "denied",
        "kind": d.kind,
        "reason": d.reason,
        "policies": d.policies,
        "request_id": request_id,
    });
    let mut r = Response::new(Full::new(Bytes::from(body.to_string() + "\n")).map_err(|never| match never {}).boxed());
    *r.status_mut() = d.status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("x-airlock-deny", header_safe(&d.reason));
    h.insert("x-airlock-request-id", header_safe(request_id));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(after) = d.retry_after {
        // Whole seconds, rounded up: never invite a retry before the bucket has a token.
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        h.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    r
}

/// A header value: printable ASCII only, bounded.
fn header_safe(s: &str) -> HeaderValue {
    let clean: String = s.chars().map(|c| if (' '..='~').contains(&c) { c } else { '?' }).take(300).collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("denied"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn event(trail: &AuditTrail, seen: &Seen<'_>, decision: AuditDecision, policies: &[String]) -> Event {
    let policies: Vec<&str> = policies.iter().map(String::as_str).collect();
    let (agent, tool) = match seen.principal {
        Some(p) => (p.agent.as_str(), Some(p.tool.as_str())),
        None => ("unknown", None),
    };
    let mut e = Event::request(now_ms(), agent, tool, decision, &policies).correlation(seen.request_id);
    if let Some(t) = seen.target {
        e = e.http(
            seen.method,
            t.scheme.as_str(),
            &t.host.to_string(),
            t.port,
            &t.path,
            t.query.as_deref(),
            &trail.mac,
        );
    } else {
        e = e.set("http_request.http_method", json!(seen.method));
    }
    if let Some(p) = seen.principal {
        e = e.set("unmapped.airlock.run", json!(p.run));
    }
    if let Some(a) = seen.dialled {
        e = e.set("dst_endpoint.ip", json!(a.ip().to_string()));
    }
    e
}

/// Records a denial and answers it.
async fn refused(shared: &Shared, seen: &Seen<'_>, d: &Denial) -> Response<Body> {
    record_denial(shared, seen, d).await;
    deny_response(d, seen.request_id)
}

async fn record_denial(shared: &Shared, seen: &Seen<'_>, d: &Denial) {
    let Some(trail) = &shared.audit else { return };
    let mut e = event(trail, seen, AuditDecision::Deny, &d.policies)
        .message(d.reason.clone())
        .set("unmapped.airlock.deny_kind", json!(d.kind))
        .set("http_response.code", json!(d.status.as_u16()));
    let mut finding = None;
    if let (Some(f), Some(t)) = (&d.finding, seen.target) {
        // The value may sit in the path itself: keep only its keyed hash.
        e = e.sensitive("http_request.url.path", t.path.as_bytes(), &trail.mac);
        let (kind, id) = match &f.source {
            Source::Secret(id) => ("secret", id.as_str()),
            Source::Canary(id) => ("canary", id.as_str()),
        };
        finding = Some(
            Event::finding(
                now_ms(),
                seen.request_id,
                "protected value in an outgoing request",
                &["leak", kind],
                Severity::High,
            )
            .correlation(seen.request_id)
            .message(d.reason.clone())
            .set("unmapped.airlock.source", json!(id))
            .set("unmapped.airlock.encoding", json!(f.encoding.as_str()))
            .set("dst_endpoint", json!({"hostname": t.host.to_string(), "port": t.port})),
        );
    }
    let log = Arc::clone(&trail.log);
    // A denial is denied whether or not it is recorded; a failure to record shows in the log's own status.
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(f) = finding {
            let _ = log.append_buffered(f);
        }
        log.append(e)
    })
    .await;
}

async fn record_allow(shared: &Shared, seen: &Seen<'_>, policies: &[String]) -> Result<(), Denial> {
    let Some(trail) = &shared.audit else { return Ok(()) };
    if !trail.record_allows {
        return Ok(());
    }
    let e = event(trail, seen, AuditDecision::Allow, policies);
    match trail.log.append_buffered(e) {
        Ok(_) => Ok(()),
        Err(err) if trail.fail_closed => Err(Denial::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit",
            format!("the audit log cannot record this request, so it is refused: {err}"),
        )),
        Err(_) => Ok(()),
    }
}
