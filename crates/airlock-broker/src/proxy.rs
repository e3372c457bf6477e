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
//! Between SSRF and forwarding, **inject** ([`crate::inject`]) swaps surrogates for real values and applies recipes,
//! only where `secret.use` allows; a surrogate headed anywhere else is refused as an exfiltration attempt. Responses
//! to injected requests lose their auth-class headers (`Set-Cookie`, ...) and are cut off if they reflect a secret.
//! Responses to the typed capability API are also masked by the configured redactor ([`crate::redact_body`]); there
//! the reflection check runs on the masked body, so an echo the redactor masked is recorded, not cut off.
//!
//! CONNECT runs steps 1–5 for `https://host:port/` with method `CONNECT` and answers 200. Then, when the broker has
//! a CA and `[network] tls_inspect` says so, it *opens* the tunnel: terminates the client's TLS with a leaf from the
//! local CA ([`crate::ca`]) and serves each request inside through the whole pipeline above, upstream over verified
//! TLS. Otherwise it dials and splices, after requiring a TLS ClientHello whose SNI names the approved host
//! ([`crate::sni`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use airlock_audit::{Append, AuditMac, Decision as AuditDecision, Event, Severity};
use airlock_policy::normalize::HostName;
use airlock_policy::normalize::{Scheme, Target};
use airlock_policy::{Engine, PolicyStore, Request as PolicyRequest};
use airlock_redact::Redactor;
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

use crate::budget::{Budgets, Exceeded, ExceededSlot, Meter, MeteredBody};
use crate::ca::LocalCa;
use crate::capability::{self, CapabilityError, Registry};
use crate::inject::{self, Credential, CredentialSet, Gate, Injected, Refusal};
use crate::leak::{Encoding, Finding, LeakScanner, OwnedStreamScan, Source};
use crate::limits::Limiter;
use crate::principal::{Attribution, Principal};
use crate::redact_body::{Ending, RedactedBody, Tally};
use crate::resolve::Resolver;
use crate::scan_body::{FindingSlot, ScannedBody};
use crate::sni::{self, Hello};
use crate::ssrf::SsrfPolicy;
use crate::upstream::{Body, BoxError, Destination, Upstreams};

/// Where decisions come from: a fixed engine, or a store that hot-reloads.
pub trait PolicySource: Send + Sync {
    fn engine(&self) -> Arc<Engine>;

    /// `Some(reason)` while every request must be refused whatever the policy says: the supervisor's kill switch
    /// (`airlock lockdown`). Checked before each decision.
    fn lockdown(&self) -> Option<String> {
        None
    }

    /// Told of every refused request (policy, leak, SSRF, budget, ...), so that a supervisor can pause an agent
    /// that keeps trying. A request that carried a canary token comes as `"canary"` (the client is told only
    /// `leak`: it should not learn which of its values were planted). Must not block.
    fn denied(&self, _principal: &Principal, _kind: &str) {}
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
    /// The log itself, or a connection to the process that holds it (`airlock_audit::SharedLog`).
    pub log: Arc<dyn Append>,
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
    /// What the broker may inject. Add each surrogate to `leaks` as [`Source::Surrogate`] too, so that encoded
    /// surrogates headed to the wrong host are caught as well as raw ones.
    pub credentials: Arc<CredentialSet>,
    /// The local CA for opening tunnels (`None`: tunnels are only spliced).
    pub ca: Option<Arc<LocalCa>>,
    /// `[budgets]` and `egress_bytes_per_hour`: what a run may send in all.
    pub budgets: Budgets,
    /// Providers and capabilities served at `POST /v1/capabilities/{provider}/{capability}`.
    pub capabilities: Arc<Registry>,
    /// Masks secrets and personal data in capability responses before the caller sees them (`None`: responses
    /// are passed as they come, after any blocklist). Give it the vault's values as known values: the caller never
    /// held the credential the broker injected, so an upstream echoing it back must not hand it over.
    pub redactor: Option<Redactor>,
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
    /// Replaced whole (a listener's own address is added), so a request holds one consistent copy cheaply.
    ssrf: RwLock<Arc<SsrfPolicy>>,
    /// Request ids: a random start, then counting (unique per process, no system call per request).
    next_request: std::sync::atomic::AtomicU64,
    resolver: Arc<Resolver>,
    audit: Option<AuditTrail>,
    timeouts: Timeouts,
    limits: Limits,
    upstreams: Arc<Upstreams>,
    leaks: Arc<LeakScanner>,
    /// The rate limiter and the engine whose config built it: a policy reload brings new limits (and full buckets).
    rate_limits: RwLock<(Arc<Engine>, Arc<Limiter>)>,
    connections: std::sync::Mutex<std::collections::HashMap<Principal, Arc<Semaphore>>>,
    credentials: Arc<CredentialSet>,
    ca: Option<Arc<LocalCa>>,
    budgets: Budgets,
    capabilities: Arc<Registry>,
    redactor: Option<Redactor>,
    /// Cross-host redirects answered to injected requests: (who, where to, until when).
    redirects: std::sync::Mutex<Vec<(Principal, String, Instant)>>,
}

impl Shared {
    /// The rate limiter for the policy now in force, rebuilt from `[rate_limits]` after a reload.
    fn limiter(&self) -> Arc<Limiter> {
        let engine = self.policy.engine();
        {
            let current = self.rate_limits.read().unwrap_or_else(|p| p.into_inner());
            if Arc::ptr_eq(&current.0, &engine) {
                return Arc::clone(&current.1);
            }
        }
        let mut current = self.rate_limits.write().unwrap_or_else(|p| p.into_inner());
        if !Arc::ptr_eq(&current.0, &engine) {
            let limiter = Arc::new(Limiter::from_config(&engine.compiled().model.file.rate_limits));
            *current = (engine, limiter);
        }
        Arc::clone(&current.1)
    }

    /// A fresh id that ties a request's audit record to its answer (`X-Airlock-Request-Id`).
    fn request_id(&self) -> String {
        let n = self.next_request.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{n:016x}")
    }
}

/// How long a cross-host redirect of an injected request is remembered, and how many are.
const REDIRECT_MEMORY: Duration = Duration::from_secs(60);
const REDIRECT_MEMORY_ENTRIES: usize = 256;
/// The largest request body searched for surrogates (bodies of a configured type are buffered for that).
const MAX_INJECT_BODY: usize = 8 << 20;

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
        let limited = shared.limiter().check(p, &t.host, t.port, t.default_port).err()?;
        let mut d = Denial::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate",
            format!("rate limit reached ({}); try again in {:.1}s", limited.bucket, limited.retry_after.as_secs_f32()),
        );
        d.retry_after = Some(limited.retry_after);
        Some(d)
    }

    /// An egress budget ran out: 429 with a retry time for the hourly buckets, 403 for a run's whole-life budgets
    /// (they never come back).
    fn budget(e: Exceeded) -> Denial {
        let status = if e.retry_after.is_some() { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::FORBIDDEN };
        let mut d = Denial::new(status, "budget", e.to_string());
        d.retry_after = e.retry_after;
        d
    }

    fn leak(f: Finding, place: &str) -> Denial {
        let (kind, reason) = match &f.source {
            Source::Secret(id) => (
                "leak",
                format!(
                    "the request {place} carries the value of secret {id} ({} form): protected values may not leave \
                     through the proxy",
                    f.encoding
                ),
            ),
            Source::Canary(id) => (
                "leak",
                format!(
                    "the request {place} carries canary token {id} ({} form): protected values may not leave through \
                     the proxy",
                    f.encoding
                ),
            ),
            Source::Surrogate(id) => (
                "exfiltration",
                format!(
                    "the request {place} carries the stand-in for secret {id} ({} form), which may not go to this \
                     destination; this is recorded as an exfiltration attempt",
                    f.encoding
                ),
            ),
        };
        Denial {
            status: StatusCode::FORBIDDEN,
            kind,
            reason,
            policies: Vec::new(),
            finding: Some(f),
            retry_after: None,
        }
    }

    /// A response carried the value of a vault secret; `outcome` says what became of it.
    fn reflection(f: Finding, outcome: &str) -> Denial {
        Denial {
            status: StatusCode::BAD_GATEWAY,
            kind: "reflection",
            reason: format!(
                "the response carried the value of secret {} ({} form); {outcome}",
                f.source.id(),
                f.encoding
            ),
            policies: Vec::new(),
            finding: Some(f),
            retry_after: None,
        }
    }

    fn injection(r: Refusal) -> Denial {
        let reason = r.to_string();
        match r {
            Refusal::WrongHost { secret, .. } => {
                let f = Finding { source: Source::Surrogate(secret), encoding: Encoding::Raw, end: 0 };
                Denial {
                    status: StatusCode::FORBIDDEN,
                    kind: "exfiltration",
                    reason,
                    policies: Vec::new(),
                    finding: Some(f),
                    retry_after: None,
                }
            }
            Refusal::CallerAuth { .. } | Refusal::Unrepresentable { .. } => {
                Denial::new(StatusCode::FORBIDDEN, "inject", reason)
            }
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
        let engine_at_start = config.policy.engine();
        Ok(Broker {
            shared: Arc::new(Shared {
                policy: config.policy,
                ssrf: RwLock::new(Arc::new(config.ssrf)),
                next_request: std::sync::atomic::AtomicU64::new(u64::from_le_bytes(
                    airlock_crypto::random::bytes::<8>(),
                )),
                resolver: config.resolver,
                audit: config.audit,
                timeouts: config.timeouts,
                limits: config.limits,
                upstreams,
                leaks: config.leaks,
                rate_limits: RwLock::new((engine_at_start, Arc::new(config.rate_limits))),
                connections: Default::default(),
                credentials: config.credentials,
                ca: config.ca,
                budgets: config.budgets,
                capabilities: config.capabilities,
                redactor: config.redactor,
                redirects: Default::default(),
            }),
        })
    }

    /// Serves proxy clients on `listener` until the task is dropped. The listener's own address is never a
    /// destination.
    pub async fn serve_tcp(&self, listener: tokio::net::TcpListener, attribution: Attribution) -> std::io::Result<()> {
        if let Ok(addr) = listener.local_addr() {
            let mut ssrf = self.shared.ssrf.write().unwrap_or_else(|p| p.into_inner());
            let mut updated = SsrfPolicy::clone(&ssrf);
            updated.own_addrs.push(addr);
            *ssrf = Arc::new(updated);
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
        // A fixed principal is counted for the whole connection. On a token listener nobody is known until a request
        // shows a token, so its connections share one bound: clients without a token cannot hold unbounded
        // connections open.
        let counted = match &attribution {
            Attribution::Fixed(p) => p.clone(),
            Attribution::Token(_) => Principal::new("", "", "token listener"),
        };
        let Some(_permit) = self.connection_permit(&counted) else { return };
        let shared = Arc::clone(&self.shared);
        let service = service_fn(move |req| {
            let shared = Arc::clone(&shared);
            let attribution = attribution.clone();
            let peer = peer.clone();
            // Boxed: hyper keeps room for one in-flight handler future per connection, idle ones included, and the
            // handler's future is kilobytes; boxed, an idle connection holds a pointer.
            let handling = Box::pin(handle(shared, attribution, peer, req));
            async move { Ok::<_, Infallible>(handling.await) }
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
    let request_id = shared.request_id();
    let method = req.method().clone();
    // 1. attribute
    let principal = match &attribution {
        Attribution::Fixed(p) => p.clone(),
        Attribution::Token(table) => {
            // A capability call is addressed to the broker itself, not through it: its own `Authorization` header
            // (what a client sends for `http://user:token@host/`) may carry the token as well.
            let to_broker = req.uri().scheme().is_none() && req.uri().path().starts_with(CAPABILITY_PREFIX);
            let presented = req
                .headers()
                .get(header::PROXY_AUTHORIZATION)
                .or_else(|| if to_broker { req.headers().get(header::AUTHORIZATION) } else { None });
            match presented.and_then(|h| table.authenticate(h.as_bytes())) {
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
    if req.uri().scheme().is_none() && req.uri().path().starts_with(CAPABILITY_PREFIX) {
        return handle_capability(shared, principal, request_id, req).await;
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
    let req = req.map(|b| b.map_err(BoxError::from).boxed());
    match forward(shared, principal, request_id, req, &shared.credentials, ReflectionGuard::Here).await {
        Ok(r) => r,
        Err((d, target)) => {
            refused(shared, &Seen::of(Some(principal), method.as_str(), target.as_ref(), request_id), &d).await
        }
    }
}

/// Where the typed capability API lives on the proxy's listener (origin-form requests are otherwise refused).
const CAPABILITY_PREFIX: &str = "/v1/capabilities/";
/// The largest capability call envelope.
const MAX_ENVELOPE: usize = 8 << 20;
/// The largest response a capability's blocklist is applied to (it is parsed whole).
const MAX_FILTERED_RESPONSE: usize = 16 << 20;

/// `POST /v1/capabilities/{provider}/{capability}`: the registry builds the request from the provider's definition
/// (the host never comes from the caller), the provider's recipe puts the secret on, and the request then goes
/// through the same pipeline as any other: policy, SSRF, leak scan, budgets, audit. A capability with a response
/// blocklist gets its JSON response filtered before the tool sees it. With a redactor, every response is masked too:
/// streamed frame by frame ([`RedactedBody`], no `Content-Length`), or, after a blocklist, whole (with
/// `X-Airlock-Redacted: N`); an encoded response is refused, as it cannot be read; findings go to the audit log as one
/// Detection Finding per response. Boxed: an idle connection holds room for its handler's future, and this one is
/// large.
fn handle_capability(
    shared: Arc<Shared>,
    principal: Principal,
    request_id: String,
    req: Request<Incoming>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>> {
    Box::pin(async move {
        let name = req.uri().path()[CAPABILITY_PREFIX.len()..].to_string();
        let refuse = |d: Denial, target: Option<Target>| {
            let (shared, principal, request_id) = (Arc::clone(&shared), principal.clone(), request_id.clone());
            async move { refused(&shared, &Seen::of(Some(&principal), "POST", target.as_ref(), &request_id), &d).await }
        };
        let from = |e: CapabilityError| Denial::new(e.status(), e.kind(), e.to_string());
        if req.method() != Method::POST {
            let d = Denial::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "capability",
                "capability calls are POST /v1/capabilities/{provider}/{capability} with a JSON envelope",
            );
            return refuse(d, None).await;
        }
        let Some((provider, cap)) = name.split_once('/').filter(|(_, c)| !c.contains('/')) else {
            let d =
                Denial::new(StatusCode::NOT_FOUND, "capability", "expected /v1/capabilities/{provider}/{capability}");
            return refuse(d, None).await;
        };
        let envelope = req.into_body().map_err(BoxError::from).boxed();
        let Some(envelope) = collect_bounded(envelope, MAX_ENVELOPE).await else {
            let d = Denial::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "size",
                format!("a capability call envelope is limited to {MAX_ENVELOPE} bytes"),
            );
            return refuse(d, None).await;
        };
        let plan = match shared.capabilities.plan(provider, cap, &envelope) {
            Ok(p) => p,
            Err(e) => return refuse(from(e), None).await,
        };
        let target = match Target::parse(&plan.url) {
            Ok(t) => t,
            Err(e) => return refuse(Denial::new(StatusCode::BAD_REQUEST, "parse", e.to_string()), None).await,
        };
        // The tool must hold the secret, and it must be usable here: otherwise the call would go out without its
        // credential, and the tool would learn nothing but a 401.
        let Some(held) = shared.credentials.iter().find(|c| c.secret == plan.secret) else {
            let d = Denial::new(
                StatusCode::FORBIDDEN,
                "capability",
                format!(
                    "{} needs secret {}, which this tool is not given (list it in the tool's secrets, and store it                      in the vault)",
                    plan.capability, plan.secret
                ),
            );
            return refuse(d, Some(target)).await;
        };
        let cred = held.with_only_recipe(plan.recipe.clone());
        if let Some(why) = shared.policy.lockdown() {
            let d = Denial::new(StatusCode::FORBIDDEN, "lockdown", format!("Airlock is in lockdown: {why}"));
            return refuse(d, Some(target)).await;
        }
        let engine = shared.policy.engine();
        let url = target_url(&target);
        let gate = PolicyGate::new(&engine, &principal, &target, &url);
        if !gate.pinned_here(&cred) {
            let d = Denial::new(
                StatusCode::FORBIDDEN,
                "inject",
                format!("secret {} is not pinned to {} ([secrets.{}] hosts)", plan.secret, target.host, plan.secret),
            );
            return refuse(d, Some(target)).await;
        }
        if let Err(why) = gate.decide(&cred) {
            return refuse(Denial::new(StatusCode::FORBIDDEN, "inject", why), Some(target)).await;
        }
        let set = match CredentialSet::new(vec![cred]) {
            Ok(s) => s,
            Err(e) => return refuse(Denial::new(StatusCode::INTERNAL_SERVER_ERROR, "inject", e), Some(target)).await,
        };
        let filtering = !plan.response_blocklist.is_empty();
        let redactor = shared.redactor.clone();
        let mut headers = plan.headers;
        if filtering || redactor.is_some() {
            // The blocklist reads JSON and the redactor reads text: ask for it unencoded rather than fail on a
            // compressed answer.
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        }
        let method = plan.method.to_string();
        let mut upstream_req = Request::new(Full::new(plan.body).map_err(|never| match never {}).boxed());
        *upstream_req.method_mut() = plan.method;
        *upstream_req.headers_mut() = headers;
        *upstream_req.uri_mut() = match plan.url.parse() {
            Ok(u) => u,
            Err(e) => return refuse(Denial::new(StatusCode::BAD_REQUEST, "parse", format!("{e}")), Some(target)).await,
        };
        // With a redactor, the reflection guard looks at the masked body: an echoed credential the redactor knows is
        // masked and recorded; one it does not know still cuts the response off.
        let reflection = if redactor.is_some() { ReflectionGuard::Caller } else { ReflectionGuard::Here };
        let resp = match forward(&shared, &principal, &request_id, upstream_req, &set, reflection).await {
            Ok(r) => r,
            Err((d, t)) => return refuse(d, t).await,
        };
        let (mut parts, body) = resp.into_parts();
        if let Ok(v) = HeaderValue::from_str(&plan.capability) {
            parts.headers.insert("x-airlock-capability", v);
        }
        if !filtering && redactor.is_none() {
            return Response::from_parts(parts, body);
        }
        let cut = |why: String| Denial::new(StatusCode::BAD_GATEWAY, "response-filter", why);
        if parts.headers.contains_key(header::CONTENT_ENCODING) {
            // An encoded body cannot be read, so it is not passed on unread.
            let why = match filtering {
                true => format!("{} filters its responses, and this one came encoded", plan.capability),
                false => format!(
                    "capability responses are scanned for secrets, and this one from {} came encoded",
                    plan.capability
                ),
            };
            return refuse(cut(why), Some(target)).await;
        }
        let record = RedactionRecord {
            shared: Arc::clone(&shared),
            principal: principal.clone(),
            target: target.clone(),
            request_id: request_id.clone(),
            capability: plan.capability.clone(),
        };
        if !filtering && let Some(redactor) = &redactor {
            // Streamed: each frame is masked as it comes; the length is only known at the end.
            parts.headers.remove(header::CONTENT_LENGTH);
            let body = RedactedBody::new(body, redactor.stream())
                .on_end(Box::new(move |tally, how| record.streamed(tally, how)))
                .boxed();
            let body = guard_reflection(&shared, &principal, &target, &request_id, &method, body);
            return Response::from_parts(parts, body);
        }
        let Some(bytes) = collect_bounded(body, MAX_FILTERED_RESPONSE).await else {
            let why = format!("the response was cut off or larger than {MAX_FILTERED_RESPONSE} bytes");
            return refuse(cut(why), Some(target)).await;
        };
        let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let (filtered, removed) = match capability::filter_response(&plan.response_blocklist, content_type, &bytes) {
            Ok(f) => f,
            Err(e) => return refuse(from(e), Some(target)).await,
        };
        drop(bytes);
        parts.headers.insert("x-airlock-removed-fields", HeaderValue::from(removed));
        let out = match &redactor {
            None => filtered,
            Some(redactor) => {
                // After the blocklist: what is masked is exactly the document the tool receives.
                let (masked, found) = redactor.redact(&filtered);
                drop(filtered);
                let mut tally = Tally::default();
                tally.add(&found);
                parts.headers.insert("x-airlock-redacted", HeaderValue::from(tally.count));
                record.buffered(tally).await;
                if let Some(f) = shared.leaks.scan_where(&masked, |s| matches!(s, Source::Secret(_))) {
                    let d = Denial::reflection(f, "the response was refused");
                    return refuse(d, Some(target)).await;
                }
                Bytes::from(masked)
            }
        };
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
        Response::from_parts(parts, Full::new(out).map_err(|never| match never {}).boxed())
    })
}

/// Who and what a capability response's redaction findings are about, for the audit log.
struct RedactionRecord {
    shared: Arc<Shared>,
    principal: Principal,
    target: Target,
    request_id: String,
    capability: String,
}

impl RedactionRecord {
    /// One Detection Finding for a response with findings (rule ids, families, counts, fingerprints; never values).
    fn event(&self, body: &str, tally: &Tally, how: Ending) -> Event {
        let severity = if tally.has_known() { Severity::High } else { Severity::Medium };
        let mut kinds = vec!["redaction"];
        kinds.extend(tally.rules.values().map(|r| r.category).collect::<std::collections::BTreeSet<_>>());
        let title = match tally.has_known() {
            true => "a protected value masked in a capability response",
            false => "secrets masked in a capability response",
        };
        let mut redaction = tally.to_json();
        redaction["body"] = json!(body);
        redaction["ended"] = json!(how.as_str());
        let p = &self.principal;
        Event::finding(now_ms(), &self.request_id, title, &kinds, severity)
            .correlation(&self.request_id)
            .actor(&p.agent, Some(&p.tool))
            .message(format!(
                "{} finding(s) ({}) masked in the response of capability {} before it reached the tool",
                tally.count,
                tally.rule_ids().join(", "),
                self.capability
            ))
            .set("unmapped.airlock.run", json!(p.run))
            .set("unmapped.airlock.capability", json!(self.capability))
            .set("unmapped.airlock.redaction", redaction)
            .set("dst_endpoint", json!({"hostname": self.target.host.to_string(), "port": self.target.port}))
    }

    /// A buffered response: recorded before it is answered.
    async fn buffered(&self, tally: Tally) {
        let Some(trail) = &self.shared.audit else { return };
        if tally.is_empty() {
            return;
        }
        let e = self.event("buffered", &tally, Ending::Complete);
        let log = Arc::clone(&trail.log);
        // The response is masked whether or not this is recorded; a failure shows in the log's own status.
        let _ = tokio::task::spawn_blocking(move || log.append_buffered(e)).await;
    }

    /// A streamed response, when its body ends (or fails, or is dropped).
    fn streamed(&self, tally: Tally, how: Ending) {
        let Some(trail) = &self.shared.audit else { return };
        if tally.is_empty() {
            return;
        }
        let e = self.event("streamed", &tally, how);
        let log = Arc::clone(&trail.log);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(move || log.append_buffered(e))),
            Err(_) => drop(log.append_buffered(e)),
        }
    }
}

/// HTTP inside a CONNECT tunnel: plain (Node's undici tunnels even `http://` URLs), or decrypted in an opened
/// tunnel. Every request in it is served as an absolute-form `scheme://host:port/...` request to the tunnel's host
/// and port, so each gets its own decision, injection, leak scan and record.
async fn serve_tunnel_http<C>(shared: Arc<Shared>, principal: Principal, target: Target, scheme: Scheme, client: C)
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
            let request_id = shared.request_id();
            let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
            // Only origin-form belongs in a tunnel; anything else names another destination.
            let origin_form = req.uri().authority().is_none() && pq.starts_with('/');
            let absolute = if origin_form { format!("{scheme}://{authority}{pq}") } else { String::new() };
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
            // Boxed for the same reason as in `serve_connection`: idle tunnelled connections hold a pointer.
            Ok(Box::pin(serve_request(&shared, &principal, &request_id, req)).await)
        }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read)
        .max_buf_size(max_header)
        .serve_connection(TokioIo::new(client), service)
        .await;
}

type Forwarded = Result<Response<Body>, (Denial, Option<Target>)>;

/// Who guards the response to an injected request against reflecting a secret back to the tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReflectionGuard {
    /// [`forward`] does, on the body as it arrives.
    Here,
    /// The caller does, on the body as the tool will see it (after masking: a value the redactor masked is not
    /// reflected; one it does not know still is).
    Caller,
}

/// Steps 2–7 for an absolute-form request. Boxed: the pipeline's future is large, and naming it `Send` here keeps
/// the compiler's proof local (otherwise every caller's `tokio::spawn` re-proves it, and fails, rust#110338).
/// `credentials`: what may be injected (the broker's own set, or a capability call's one recipe).
fn forward<'a>(
    shared: &'a Arc<Shared>,
    principal: &'a Principal,
    request_id: &'a str,
    req: Request<Body>,
    credentials: &'a CredentialSet,
    reflection: ReflectionGuard,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Forwarded> + Send + 'a>> {
    Box::pin(forward_inner(shared, principal, request_id, req, credentials, reflection))
}

async fn forward_inner(
    shared: &Arc<Shared>,
    principal: &Principal,
    request_id: &str,
    req: Request<Body>,
    credentials: &CredentialSet,
    reflection: ReflectionGuard,
) -> Forwarded {
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
    let leaked = scan_head(&shared.leaks, req.uri(), req.headers(), not_surrogate);
    if let Some(d) = leaked {
        return Err(fail(d));
    }
    // 4. decide
    let url = target_url(&target);
    if let Some(why) = shared.policy.lockdown() {
        return Err(fail(Denial::new(StatusCode::FORBIDDEN, "lockdown", format!("Airlock is in lockdown: {why}"))));
    }
    let engine = shared.policy.engine();
    let decision = decide(&engine, principal, method.as_str(), &url, declared.unwrap_or(0));
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
    // 6a. inject: surrogates swapped and recipes applied where the secret may go; `wire` is what is sent, `target`
    // (with the surrogates) is what is recorded.
    let gate = PolicyGate::new(&engine, principal, &target, &url);
    let (mut parts, body) = req.into_parts();
    let mut wire = target.clone();
    let after_redirect = take_redirect(shared, principal, &target);
    let mut injected = inject::inject_request(credentials, &mut wire, &mut parts.headers, &gate, after_redirect)
        .map_err(|r| fail(Denial::injection(r)))?;
    // Surrogates in encoded forms (base64 in a header, say) that may not go here.
    let denied = Arc::new(gate.denied_surrogates(credentials));
    let report = {
        let denied = Arc::clone(&denied);
        move |s: &Source| match s {
            Source::Surrogate(name) => denied.contains(name),
            _ => true,
        }
    };
    let encoded = match denied.is_empty() {
        true => None,
        false => scan_head(
            &shared.leaks,
            &parts.uri,
            &parts.headers,
            |s: &Source| matches!(s, Source::Surrogate(n) if denied.contains(n)),
        ),
    };
    if let Some(d) = encoded {
        return Err(fail(d));
    }
    // 6b. forward
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(header::HOST, host_header(&wire));
    parts.uri = origin_form(&wire)
        .map_err(|e| fail(Denial::new(StatusCode::BAD_REQUEST, "parse", format!("bad request target: {e}"))))?;
    parts.version = hyper::Version::HTTP_11;
    // 6c. budgets: this request, its host, and its head count now; its body as it streams.
    let meter = shared
        .budgets
        .admit(principal, &target.host, target.port, target.default_port, head_bytes(&parts))
        .map_err(|e| fail(Denial::budget(e)))?;
    let limit = shared.limits.max_body_bytes as usize;
    let mut body: Body = Limited::new(body, limit).map_err(|e| -> BoxError { e }).boxed();
    let found: FindingSlot = Default::default();
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if inject::wants_body(credentials, &content_type) && gate.any_body_credential(credentials, &content_type) {
        // Buffered (bounded): the swap changes the length, and the original is leak-scanned whole first.
        let collected = collect_bounded(body, MAX_INJECT_BODY.min(limit)).await.ok_or_else(|| {
            fail(Denial::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "size",
                format!(
                    "a request body of this type is searched for surrogates, and is limited to {MAX_INJECT_BODY} bytes"
                ),
            ))
        })?;
        let bytes = collected;
        if let Some(f) = shared.leaks.scan_where(&bytes, &report) {
            return Err(fail(Denial::leak(f, "body")));
        }
        let (swapped, more) =
            inject::inject_body(credentials, &content_type, &bytes, &gate).map_err(|r| fail(Denial::injection(r)))?;
        for s in more.secrets {
            if !injected.secrets.contains(&s) {
                injected.secrets.push(s);
            }
        }
        let out = Bytes::from(swapped.map(|z| z.to_vec()).unwrap_or_else(|| bytes.to_vec()));
        parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
        body = Full::new(out).map_err(|never| match never {}).boxed();
    } else if !shared.leaks.is_empty() {
        let scan = OwnedStreamScan::new(Arc::clone(&shared.leaks));
        body = ScannedBody::new(body, scan, Arc::clone(&found)).reporting(Arc::new(report)).boxed();
    }
    let exceeded: ExceededSlot = Default::default();
    if meter.is_metered() {
        body = MeteredBody::new(body, meter, Arc::clone(&exceeded)).boxed();
    }
    let upstream_req = Request::from_parts(parts, body);
    let sent = shared.upstreams.send(&dests, upstream_req).await;
    if let Some(e) = crate::lock(&exceeded).take() {
        return Err(fail(Denial::budget(e)));
    }
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
    if let Err(d) = record_allow(shared, &seen, &decision.policies, &injected).await {
        return Err(fail(d));
    }
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let mut body: Body = body.map_err(BoxError::from).boxed();
    if !injected.is_empty() {
        // What answers an injected request is the credential holder's: its session cookies and tokens stay here,
        // and a response that echoes the secret is cut off before the secret reaches the tool.
        scrub_response_headers(&mut parts.headers, &shared.leaks);
        remember_redirect(shared, principal, &target, parts.status, parts.headers.get(header::LOCATION));
        if reflection == ReflectionGuard::Here {
            body = guard_reflection(shared, principal, &target, request_id, method.as_str(), body);
        }
    }
    Ok(Response::from_parts(parts, body))
}

/// A response body that is cut off, and the cut recorded, if it carries the value of a vault secret in any form
/// (no byte of the value gets through: see [`ScannedBody`]). Unchanged when there are no values to look for.
fn guard_reflection(
    shared: &Arc<Shared>,
    principal: &Principal,
    target: &Target,
    request_id: &str,
    method: &str,
    body: Body,
) -> Body {
    if shared.leaks.is_empty() {
        return body;
    }
    let scan = OwnedStreamScan::new(Arc::clone(&shared.leaks));
    let (shared, principal, target, id) =
        (Arc::clone(shared), principal.clone(), target.clone(), request_id.to_string());
    let method = method.to_string();
    let on_found = move |f: Finding| {
        let (shared, principal, target, id, method) =
            (Arc::clone(&shared), principal.clone(), target.clone(), id.clone(), method.clone());
        tokio::spawn(async move {
            let d = Denial::reflection(f, "it was cut off before reaching the tool");
            let seen = Seen::of(Some(&principal), &method, Some(&target), &id);
            record_denial(&shared, &seen, &d).await;
        });
    };
    ScannedBody::new(body, scan, Default::default())
        .reporting(Arc::new(|s: &Source| matches!(s, Source::Secret(_))))
        .on_finding(Arc::new(on_found))
        .boxed()
}

/// The request line and headers as they go upstream, in bytes (what a budget charges before the body).
fn head_bytes(parts: &hyper::http::request::Parts) -> u64 {
    let target = parts.uri.path_and_query().map_or(1, |p| p.as_str().len());
    let line = parts.method.as_str().len() + target + " HTTP/1.1\r\n".len() + 1;
    let headers: usize = parts.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    (line + headers + 2) as u64
}

/// A whole body, or `None` past `max` bytes or on a read error. Boxed for the same reason as [`forward`].
/// Trailers are dropped (bodies buffered for injection go upstream with a `Content-Length`).
fn collect_bounded(
    mut body: Body,
    max: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = inject::SwappedBody> + Send>> {
    Box::pin(async move {
        let mut out = zeroize::Zeroizing::new(Vec::new());
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.ok()?.into_data() {
                if out.len() + data.len() > max {
                    return None;
                }
                out.extend_from_slice(&data);
            }
        }
        Some(out)
    })
}

/// Decides `secret.use` for one destination: the vault's pins, then the policy engine (the tool is granted the
/// secret, the host is among its pins, the scheme is https).
struct PolicyGate<'a> {
    engine: &'a Engine,
    principal: &'a Principal,
    target: &'a Target,
    url: &'a str,
}

impl<'a> PolicyGate<'a> {
    fn new(engine: &'a Engine, principal: &'a Principal, target: &'a Target, url: &'a str) -> Self {
        PolicyGate { engine, principal, target, url }
    }

    /// Secrets whose surrogates may not go here (so must not be found in any form).
    fn denied_surrogates(&self, set: &CredentialSet) -> std::collections::HashSet<String> {
        set.iter()
            .filter(|c| c.surrogate.is_some())
            .filter(|c| !self.pinned_here(c) || self.decide(c).is_err())
            .map(|c| c.secret.clone())
            .collect()
    }

    /// Whether some credential that may go here wants bodies of this type searched.
    fn any_body_credential(&self, set: &CredentialSet, content_type: &str) -> bool {
        let mt = inject::media_type(content_type);
        set.iter().any(|c| c.body_types.contains(&mt) && self.pinned_here(c) && self.decide(c).is_ok())
    }
}

impl Gate for PolicyGate<'_> {
    fn pinned_here(&self, cred: &Credential) -> bool {
        let t = self.target;
        cred.vault_pins_admit(t)
            && self
                .engine
                .compiled()
                .model
                .secrets
                .get(&cred.secret)
                .is_some_and(|s| s.hosts.iter().any(|h| h.value.matches(&t.host, t.port, t.default_port)))
    }

    fn decide(&self, cred: &Credential) -> Result<(), String> {
        // Whatever a policy says: a credential in cleartext is a credential for everyone on the path.
        if self.target.scheme == Scheme::Http {
            return Err(format!("secret {} is only ever sent over https", cred.secret));
        }
        if !cred.vault_pins_admit(self.target) {
            let pins = |list: &[airlock_policy::normalize::HostPattern]| {
                list.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            };
            let mut why = Vec::new();
            if !cred.vault_pins.is_empty() {
                why.push(format!("the vault pins it to {}", pins(&cred.vault_pins)));
            }
            if !cred.registry_pins.is_empty() {
                why.push(format!("the capability registry pins it to {}", pins(&cred.registry_pins)));
            }
            return Err(format!("secret {} may not go here: {}", cred.secret, why.join("; ")));
        }
        let p = self.principal;
        let req = PolicyRequest::secret(&p.agent, &p.tool, &cred.secret, self.url).run(&p.run);
        let out = self.engine.decide(&req);
        if out.decision.allowed { Ok(()) } else { Err(out.decision.reason.clone()) }
    }
}

/// Removes what an injected host's response must not hand the tool: session cookies, authentication info, and any
/// header that carries a secret's value.
fn scrub_response_headers(headers: &mut HeaderMap, leaks: &LeakScanner) {
    for h in ["set-cookie", "set-cookie2", "authentication-info", "proxy-authentication-info"] {
        headers.remove(h);
    }
    if leaks.is_empty() {
        return;
    }
    let carrying: Vec<HeaderName> = headers
        .iter()
        .filter(|(_, v)| leaks.scan_where(v.as_bytes(), |s| matches!(s, Source::Secret(_))).is_some())
        .map(|(n, _)| n.clone())
        .collect();
    for n in carrying {
        headers.remove(n);
    }
}

/// Remembers a cross-host redirect answered to an injected request, so that the client following it may do so
/// with its auth headers stripped rather than refused.
fn remember_redirect(
    shared: &Shared,
    principal: &Principal,
    from: &Target,
    status: StatusCode,
    location: Option<&HeaderValue>,
) {
    if !status.is_redirection() {
        return;
    }
    let Some(loc) = location.and_then(|l| l.to_str().ok()) else { return };
    let absolute = if loc.starts_with("//") { format!("{}:{loc}", from.scheme) } else { loc.to_string() };
    let Ok(to) = Target::parse(&absolute) else { return }; // relative: the same host
    if to.host == from.host && to.port == from.port && to.scheme == from.scheme {
        return;
    }
    let now = Instant::now();
    let mut list = crate::lock(&shared.redirects);
    list.retain(|(_, _, until)| *until > now);
    if list.len() >= REDIRECT_MEMORY_ENTRIES {
        list.remove(0);
    }
    list.push((principal.clone(), target_url(&to), now + REDIRECT_MEMORY));
}

/// Whether this request follows a remembered cross-host redirect (each is used once).
fn take_redirect(shared: &Shared, principal: &Principal, target: &Target) -> bool {
    let url = target_url(target);
    let now = Instant::now();
    let mut list = crate::lock(&shared.redirects);
    list.retain(|(_, _, until)| *until > now);
    match list.iter().position(|(p, u, _)| p == principal && *u == url) {
        Some(i) => {
            list.remove(i);
            true
        }
        None => false,
    }
}

fn not_surrogate(s: &Source) -> bool {
    !matches!(s, Source::Surrogate(_))
}

/// CONNECT: decide, then either open the tunnel (answer 200, terminate TLS with the local CA, serve each request
/// inside) or dial, answer 200, check the ClientHello and splice.
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
    let leaked = scan_head(&shared.leaks, req.uri(), req.headers(), |_: &Source| true);
    if let Some(d) = leaked {
        return refuse(d, target).await;
    }
    if let Some(why) = shared.policy.lockdown() {
        let d = Denial::new(StatusCode::FORBIDDEN, "lockdown", format!("Airlock is in lockdown: {why}"));
        return refuse(d, target).await;
    }
    let engine = shared.policy.engine();
    let mut decision = decide(&engine, &principal, "CONNECT", &target_url(&target), 0);
    let opened = opens_tunnel(&shared, &engine, &principal, &target);
    if !decision.allowed
        && opened.is_some()
        && let Some(d) = some_request_allowed(&engine, &principal, &target)
    {
        // An opened tunnel's requests are each decided on their own, so the tunnel only needs *some* request to
        // the host to be allowed (a rule for `GET /repos/` must work over HTTPS). Still decided here, before any
        // name is resolved.
        decision = d;
    }
    if !decision.allowed {
        let mut d = Denial::new(StatusCode::FORBIDDEN, "policy", decision.reason.clone());
        d.policies = decision.policies.clone();
        return refuse(d, target).await;
    }
    let addrs = match check_destination(&shared, &target).await {
        Ok(a) => a,
        Err(d) => return refuse(d, target).await,
    };
    // A tunnel is one request to its host; a spliced one's bytes are charged as they go, an opened one's per
    // request inside.
    let meter = match shared.budgets.admit(&principal, &target.host, target.port, target.default_port, 0) {
        Ok(m) => m,
        Err(e) => return refuse(Denial::budget(e), target).await,
    };
    if let Some(ca) = opened {
        // Each request inside is decided, checked and dialled on its own; the CONNECT itself is recorded here.
        let seen = Seen::of(Some(&principal), "CONNECT", Some(&target), &request_id);
        if let Err(d) = record_allow(&shared, &seen, &decision.policies, &Injected::default()).await {
            return refuse(d, target).await;
        }
        let (shared, principal, target, id) =
            (Arc::clone(&shared), principal.clone(), target.clone(), request_id.clone());
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(req).await else { return };
            if let Err(d) = serve_opened_tunnel(&shared, &ca, &principal, &target, TokioIo::new(upgraded)).await {
                record_denial(&shared, &Seen::of(Some(&principal), "CONNECT", Some(&target), &id), &d).await;
            }
        });
        let mut r = Response::new(empty());
        *r.status_mut() = StatusCode::OK;
        return r;
    }
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
    if let Err(d) = record_allow(&shared, &seen, &decision.policies, &Injected::default()).await {
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
        let outcome = splice(&tunnel_shared, &mut client, upstream, &tunnel_target, &meter).await;
        if let Ok(Some(prefix)) = outcome {
            let io = Prefixed { prefix, at: 0, inner: client };
            serve_tunnel_http(tunnel_shared, tunnel_principal, tunnel_target, Scheme::Http, io).await;
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

/// Whether the tool's rules allow some request to the tunnel's host: for each rule naming the host, its first method
/// and first path prefix are put to the engine (so forbids, deny lists, schedules and the private-address rule
/// still apply). The allowing decision, if any.
fn some_request_allowed(
    engine: &Engine,
    principal: &Principal,
    target: &Target,
) -> Option<Arc<airlock_policy::Decision>> {
    let tool = engine.compiled().model.tools.get(&principal.tool)?;
    let base = target_url(target);
    let base = base.trim_end_matches('/');
    tool.network
        .iter()
        .filter(|r| r.hosts.iter().any(|h| h.value.matches(&target.host, target.port, target.default_port)))
        .map(|r| {
            let method = r.methods.first().map(String::as_str).unwrap_or("GET");
            let path = r.paths.first().map(String::as_str).unwrap_or("/");
            decide(engine, principal, method, &format!("{base}{path}"), 0)
        })
        .find(|d| d.allowed)
}

/// The CA, if this tunnel is to be opened: the broker has one, the host is not in `tls_passthrough`, and
/// `tls_inspect` is `all`, or `credentials` with some secret pinned to the host.
fn opens_tunnel(shared: &Shared, engine: &Engine, principal: &Principal, target: &Target) -> Option<Arc<LocalCa>> {
    use airlock_policy::config::TlsInspect;
    let ca = shared.ca.as_ref()?;
    let model = &engine.compiled().model;
    if model.tls_passthrough.iter().any(|p| p.value.matches(&target.host, target.port, target.default_port)) {
        return None;
    }
    let open = match model.tls_inspect {
        TlsInspect::Off => false,
        TlsInspect::All => true,
        TlsInspect::Credentials => {
            let url = target_url(target);
            let gate = PolicyGate::new(engine, principal, target, &url);
            shared.credentials.iter().any(|c| gate.pinned_here(c))
        }
    };
    open.then(|| Arc::clone(ca))
}

/// An opened tunnel: TLS from the client is terminated with a leaf for the approved host (a ClientHello naming
/// another host fails the handshake), and every request inside is served as `https://host:port/...`. A tunnel that
/// starts with plain HTTP is served as `http://` requests, as for spliced tunnels.
async fn serve_opened_tunnel<C>(
    shared: &Arc<Shared>,
    ca: &LocalCa,
    principal: &Principal,
    target: &Target,
    mut client: C,
) -> Result<(), Denial>
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut first = vec![0u8; 1];
    match tokio::time::timeout(shared.timeouts.client_hello, client.read(&mut first)).await {
        Err(_) => {
            return Err(Denial::new(StatusCode::REQUEST_TIMEOUT, "tls", "tunnel refused: no ClientHello in time"));
        }
        Ok(Err(_)) | Ok(Ok(0)) => return Ok(()),
        Ok(Ok(_)) => {}
    }
    let io = Prefixed { prefix: first.clone(), at: 0, inner: client };
    if first[0] != 0x16 {
        // Not a TLS handshake record: plain HTTP (undici tunnels http:// URLs too), or garbage the parser refuses.
        serve_tunnel_http(Arc::clone(shared), principal.clone(), target.clone(), Scheme::Http, io).await;
        return Ok(());
    }
    let config = ca
        .server_config(&target.host, &[b"http/1.1"])
        .map_err(|e| Denial::new(StatusCode::MISDIRECTED_REQUEST, "tls", format!("tunnel refused: {e}")))?;
    let accept = tokio_rustls::TlsAcceptor::from(config).accept(io);
    let tls = match tokio::time::timeout(shared.timeouts.client_hello, accept).await {
        Err(_) => {
            return Err(Denial::new(StatusCode::REQUEST_TIMEOUT, "tls", "tunnel refused: TLS handshake timed out"));
        }
        Ok(Err(e)) => {
            return Err(Denial::new(
                StatusCode::MISDIRECTED_REQUEST,
                "tls",
                format!(
                    "tunnel refused: TLS handshake with the client failed ({e}); a ClientHello must name {}",
                    target.host
                ),
            ));
        }
        Ok(Ok(tls)) => tls,
    };
    serve_tunnel_http(Arc::clone(shared), principal.clone(), target.clone(), Scheme::Https, tls).await;
    Ok(())
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
    meter: &Meter,
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
    meter.charge(buf.len() as u64).map_err(Denial::budget)?;
    if upstream.write_all(&buf).await.is_err() {
        return Ok(None);
    }
    match copy_with_idle_timeout(client, upstream, shared.timeouts.tunnel_idle, meter).await {
        Err(Cut::Budget(e)) => Err(Denial::budget(e)),
        _ => Ok(None),
    }
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
/// Why a spliced tunnel ended early.
enum Cut {
    Io(#[allow(dead_code)] std::io::Error),
    /// The tool's writes ran out of egress budget.
    Budget(Exceeded),
}

impl From<std::io::Error> for Cut {
    fn from(e: std::io::Error) -> Cut {
        Cut::Io(e)
    }
}

async fn copy_with_idle_timeout<C>(
    mut client: C,
    mut upstream: tokio::net::TcpStream,
    idle: Duration,
    meter: &Meter,
) -> Result<(), Cut>
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
                return Ok::<_, Cut>(());
            }
            touch();
            meter.charge(n as u64).map_err(Cut::Budget)?;
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
    let down = async { down.await.map_err(Cut::Io) };
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

/// The request target and every header, for the sources `report` accepts.
fn scan_head(
    leaks: &LeakScanner,
    uri: &hyper::Uri,
    headers: &HeaderMap,
    report: impl Fn(&Source) -> bool,
) -> Option<Denial> {
    if leaks.is_empty() {
        return None;
    }
    if let Some(f) = leaks.scan_where(uri.to_string().as_bytes(), &report) {
        return Some(Denial::leak(f, "target"));
    }
    for (name, value) in headers {
        let found =
            leaks.scan_where(name.as_str().as_bytes(), &report).or_else(|| leaks.scan_where(value.as_bytes(), &report));
        if let Some(f) = found {
            return Some(Denial::leak(f, &format!("header {name}")));
        }
    }
    None
}

fn decide(engine: &Engine, p: &Principal, method: &str, url: &str, bytes: u64) -> Arc<airlock_policy::Decision> {
    let req = PolicyRequest::http(&p.agent, &p.tool, method, url).bytes(bytes).run(&p.run);
    engine.decide(&req).decision
}

/// Step 5: the name, then every address it resolves to. Returns the socket addresses that may be dialled.
async fn check_destination(shared: &Shared, target: &Target) -> Result<Vec<SocketAddr>, Denial> {
    let ssrf = Arc::clone(&shared.ssrf.read().unwrap_or_else(|p| p.into_inner()));
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
    if let Some(p) = seen.principal {
        let canary = d.finding.as_ref().is_some_and(|f| matches!(f.source, Source::Canary(_)));
        shared.policy.denied(p, if canary { "canary" } else { d.kind });
    }
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
            Source::Surrogate(id) => ("surrogate", id.as_str()),
        };
        let title = match (d.kind, &f.source) {
            ("reflection", _) => "secret value reflected in a response",
            (_, Source::Surrogate(_)) => "surrogate headed to a host its secret may not reach (exfiltration attempt)",
            _ => "protected value in an outgoing request",
        };
        finding = Some(
            Event::finding(now_ms(), seen.request_id, title, &[d.kind, kind], Severity::High)
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

/// Records an allow (always when a secret was injected: every use of a secret is recorded).
async fn record_allow(
    shared: &Shared,
    seen: &Seen<'_>,
    policies: &[String],
    injected: &Injected,
) -> Result<(), Denial> {
    let Some(trail) = &shared.audit else { return Ok(()) };
    if !trail.record_allows && injected.is_empty() {
        return Ok(());
    }
    let mut e = event(trail, seen, AuditDecision::Allow, policies);
    if !injected.is_empty() {
        e = e.set("unmapped.airlock.secrets_injected", json!(injected.secrets));
    }
    if !injected.stripped.is_empty() {
        e = e.set("unmapped.airlock.headers_stripped", json!(injected.stripped));
    }
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
