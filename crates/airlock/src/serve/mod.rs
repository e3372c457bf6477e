//! `airlock serve`: the long-running daemon, and its local HTTP API.
//!
//! # Why
//! Agent runtimes want one Airlock per machine: the vault unlocked once, one audit writer, one supervisor, and an
//! API their code can call from any language. This is that service.
//!
//! # Shape
//! - It unlocks the vault once (prompt-free KEK slots first, then the passphrase from `AIRLOCK_PASSPHRASE` or
//!   `--passphrase-file`) and holds it until shutdown, when it is dropped (and zeroized).
//! - It opens the shared audit log and keeps it: while it runs, every other Airlock process on this home writes its
//!   records through it.
//! - It listens on a Unix socket under `AIRLOCK_HOME` (0600, in a 0700 directory) and, if asked, on a loopback TCP
//!   port. Any other address is refused unless mutual TLS is configured (`tls.rs`): the API hands out the power of
//!   every agent's token to whoever reaches it.
//! - Every request but health, readiness and the OpenAPI document needs an agent's bearer token
//!   (`airlock agent add`); the token decides the role and the runs the request may touch. Tokens are rate-limited
//!   per agent, bodies are bounded, and every error is an RFC 9457 problem document.
//! - SIGTERM or SIGINT: stop accepting, let requests in flight finish (up to `DRAIN`), close the audit log with a
//!   final signed checkpoint, drop the vault. SIGHUP, or a change to the policy file: reload the policy; a policy
//!   that fails to load is refused and the old one kept (the store does this).

mod capabilities;
mod checkpoint;
mod http;
mod metrics;
mod routes;
mod runs;
mod secrets;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use airlock_audit::Append;
use airlock_policy::PolicyStore;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

use crate::CliError;
use crate::agents::{Agent, AgentStore};
use crate::cli::ServeArgs;
use crate::commands::Ctx;
use http::{Problem, Reply};
use metrics::Metrics;

/// How long requests in flight may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);
/// How often the policy file is checked for changes.
const POLICY_POLL: Duration = Duration::from_secs(2);

/// Locks a mutex, carrying on if a panicking thread poisoned it (every guarded value here stays consistent between
/// statements).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A file's inode, modification time (seconds and nanoseconds) and length.
type FileStamp = (u64, i64, i64, u64);

/// The daemon's state, shared by every connection.
pub(crate) struct Daemon {
    pub(crate) home: PathBuf,
    /// The agent store and the file's (inode, mtime, length) when read: reread when `airlock agent` changes it.
    agents: Mutex<(Option<FileStamp>, Arc<AgentStore>)>,
    limiter: governor::DefaultKeyedRateLimiter<String>,
    /// Requests without a valid token, across all callers: each is audited, up to this rate.
    anon_limiter: governor::DefaultDirectRateLimiter,
    /// Refusals beyond that rate since the last audited one.
    unrecorded: std::sync::atomic::AtomicU64,
    pub(crate) metrics: Metrics,
    pub(crate) log: Arc<airlock_audit::SharedLog>,
    /// The audit log's directory and the key its checkpoints verify with (from the vault, at start).
    pub(crate) audit_dir: PathBuf,
    pub(crate) audit_key: airlock_audit::checkpoint::NoteVerifier,
    pub(crate) policy: Arc<PolicyStore>,
    /// The vault, unlocked once at start. `None` only after shutdown took it, to drop it after the log's final
    /// checkpoint. Requests that need it hold the lock briefly (vault calls are file reads and writes, no KDF).
    pub(crate) vault: Mutex<Option<airlock_vault::Vault>>,
    /// How the runs the daemon starts unlock the vault: the daemon's own `--passphrase-file` and `--keyfile`.
    pub(crate) unlock_args: Vec<std::ffi::OsString>,
    /// The policy file: reloaded when it changes, and given to the runs the daemon starts.
    pub(crate) config: PathBuf,
    config_mtime: Mutex<Option<std::time::SystemTime>>,
    pub(crate) max_body: usize,
    /// Brokers for capability calls through the API, per (agent, tool), and what they are built with.
    pub(crate) capabilities: capabilities::Brokers,
    /// The last time readiness tried the audit log, and what came of it.
    pub(crate) ready_probe: Mutex<Option<(Instant, Result<(), String>)>>,
    /// Runs started through the API: at most this many at once, the rest queued (up to `max_queued`).
    pub(crate) run_slots: Arc<tokio::sync::Semaphore>,
    pub(crate) queued: AtomicUsize,
    /// Runs started through the API that have not ended: shutdown waits for them too.
    pub(crate) active_runs: AtomicUsize,
    pub(crate) max_queued: usize,
    /// Requests being served: shutdown waits for this to reach zero.
    in_flight: AtomicUsize,
    draining: AtomicBool,
    #[cfg(feature = "classifier")]
    pub(crate) classifier: Option<airlock_guard::classifier::Classifier>,
}

impl Daemon {
    /// The agent store as the file now is.
    fn agents(&self) -> Result<Arc<AgentStore>, Problem> {
        use std::os::unix::fs::MetadataExt;
        let path = self.home.join("agents.json");
        // Every change is a rename to a new inode: the inode says "changed" even within one mtime tick, so a
        // rotated or removed token stops working at once.
        let stamp = std::fs::metadata(&path).ok().map(|m| (m.ino(), m.mtime(), m.mtime_nsec(), m.len()));
        let mut cached = lock(&self.agents);
        if cached.0 != stamp {
            let store = AgentStore::load(&self.home).map_err(|e| Problem::internal(e.message))?;
            *cached = (stamp, Arc::new(store));
        }
        Ok(Arc::clone(&cached.1))
    }

    /// The agent a request's token names; a missing or unknown token is refused (and audited).
    fn authenticate(&self, req: &Request<Incoming>, peer: &str) -> Result<(Agent, Arc<AgentStore>), Problem> {
        let store = self.agents()?;
        let agent = http::bearer(req).and_then(|t| store.authenticate(t)).cloned();
        match agent {
            Some(a) => Ok((a, store)),
            None => {
                let why = if http::bearer(req).is_some() { "unknown token" } else { "no bearer token" };
                // Refusals are audited one by one up to a rate; beyond it (anyone on the machine can knock) they are
                // counted, and the next audited one says how many went unrecorded, so the log cannot be flooded.
                if self.anon_limiter.check().is_err() {
                    self.unrecorded.fetch_add(1, Ordering::SeqCst);
                    let mut p = Problem::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        "rate-limited",
                        "Too many requests",
                        "too many requests without a valid token",
                    );
                    p.retry_after = Some(1);
                    return Err(p);
                }
                let skipped = self.unrecorded.swap(0, Ordering::SeqCst);
                let also = if skipped > 0 {
                    format!("; {skipped} more refused, unrecorded, before this")
                } else {
                    String::new()
                };
                let event = airlock_audit::Event::request(
                    now_ms(),
                    "unauthenticated",
                    None,
                    airlock_audit::event::Decision::Deny,
                    &["api-authentication"],
                )
                .message(format!(
                    "API request refused: {why} ({} {} from {peer}){also}",
                    req.method(),
                    req.uri().path()
                ))
                .status(false);
                // A refusal stands whether or not it could be recorded.
                let _ = self.log.append(event);
                Err(Problem::unauthorized(format!("{why}: send Authorization: Bearer <token> (airlock agent add)")))
            }
        }
    }

    /// One token bucket per agent: a runaway agent cannot starve the others, or the audit log.
    fn rate_limit(&self, agent: &Agent) -> Result<(), Problem> {
        match self.limiter.check_key(&agent.name) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait =
                    not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
                let mut p = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "Too many requests",
                    format!("agent {} is over its request rate", agent.name),
                );
                p.retry_after = Some(wait.as_secs().max(1));
                Err(p)
            }
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub fn run(ctx: &Ctx, a: ServeArgs) -> Result<(), CliError> {
    // Non-loopback only with mutual TLS; bad certificate or key files stop here, before anything is unlocked.
    let tls = tls::configure(a.listen, a.tls_cert.as_deref(), a.tls_key.as_deref(), a.client_ca.as_deref())?;
    let config = crate::policy::config_path(a.config.clone(), &ctx.home)?;
    // A missing file is "not found" (4); one that does not load is invalid input (8), as for `policy check`.
    let policy = PolicyStore::open(&config, crate::policy::load_options(&a.env)?).map_err(|e| CliError {
        code: if config.exists() { 8 } else { 4 },
        message: format!("{}: {e}", config.display()),
    })?;
    // Fail early on a bad agent store rather than on the first request.
    AgentStore::load(&ctx.home)?;
    let mut vault = ctx.open_unlocked()?;
    let log = Arc::new(crate::audit::shared_log(&ctx.home, &mut vault)?);
    let audit_key = crate::audit::signer(&mut vault)?.verifier();
    let audit_dir = crate::audit::log_dir(ctx, &crate::cli::AuditLogArg { log: None });
    #[cfg(feature = "classifier")]
    let classifier = match airlock_guard::classifier::model_dir(None) {
        Some(dir) => Some(
            airlock_guard::classifier::Classifier::load(&dir)
                .map_err(|e| CliError::input(format!("classifier: {e}")))?
                .0,
        ),
        None => None,
    };
    let per_second = std::num::NonZeroU32::new(a.rate.max(1)).expect("at least one");
    let quota = governor::Quota::per_second(per_second)
        .allow_burst(per_second.saturating_mul(std::num::NonZeroU32::new(2).expect("two")));
    let daemon = Arc::new(Daemon {
        home: ctx.home.clone(),
        agents: Mutex::new((None, Arc::new(AgentStore::load(&ctx.home)?))),
        limiter: governor::RateLimiter::keyed(quota),
        anon_limiter: governor::RateLimiter::direct(
            governor::Quota::per_second(std::num::NonZeroU32::new(50).expect("50"))
                .allow_burst(std::num::NonZeroU32::new(100).expect("100")),
        ),
        unrecorded: std::sync::atomic::AtomicU64::new(0),
        metrics: Metrics::default(),
        log: Arc::clone(&log),
        audit_dir,
        audit_key,
        policy: Arc::new(policy),
        vault: Mutex::new(None),
        config_mtime: Mutex::new(modified(&config)),
        unlock_args: ctx.unlock_args(),
        config,
        max_body: a.max_body,
        capabilities: capabilities::Brokers::new(a.dns.clone(), a.resolve.clone(), a.upstream_ca.clone())?,
        ready_probe: Mutex::new(None),
        run_slots: Arc::new(tokio::sync::Semaphore::new(a.max_runs.max(1))),
        queued: AtomicUsize::new(0),
        active_runs: AtomicUsize::new(0),
        max_queued: a.max_queued,
        in_flight: AtomicUsize::new(0),
        draining: AtomicBool::new(false),
        #[cfg(feature = "classifier")]
        classifier,
    });
    *lock(&daemon.vault) = Some(vault);
    let socket = a.socket.clone().unwrap_or_else(|| ctx.home.join("airlock.sock"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError { code: 1, message: format!("cannot start the runtime: {e}") })?;
    log.append(lifecycle(format!("airlock serve started (pid {})", std::process::id())))
        .map_err(|e| CliError { code: 1, message: format!("audit: {e}") })?;
    let served = runtime.block_on(serve(Arc::clone(&daemon), &socket, a.listen, tls));
    // Drain: new connections are no longer accepted; requests in flight, and runs streaming their output, get DRAIN
    // to finish (what is left then is killed with the runtime: each run's child is killed when dropped).
    let deadline = Instant::now() + DRAIN;
    let busy = || daemon.in_flight.load(Ordering::SeqCst) > 0 || daemon.active_runs.load(Ordering::SeqCst) > 0;
    while busy() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    let _ = std::fs::remove_file(&socket);
    let _ = log.append(lifecycle("airlock serve stopped".into()));
    let vault = lock(&daemon.vault).take();
    drop(daemon);
    // The final checkpoint is written as the log closes; then the vault goes (its keys are zeroized on drop).
    match Arc::try_unwrap(log) {
        Ok(log) => log.close().map_err(|e| CliError { code: 1, message: format!("audit close: {e}") })?,
        Err(_) => {
            eprintln!("airlock: the audit log was still in use at shutdown; its checkpoint is the last periodic one")
        }
    }
    drop(vault);
    served
}

fn lifecycle(message: String) -> airlock_audit::Event {
    airlock_audit::Event::lifecycle(now_ms(), airlock_audit::event::activity::OTHER, message).status(true)
}

/// Accepts on the Unix socket (and the TCP listener) until SIGTERM or SIGINT; reloads the policy on SIGHUP or
/// when its file changes.
async fn serve(
    daemon: Arc<Daemon>,
    socket: &Path,
    listen: Option<SocketAddr>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Result<(), CliError> {
    let unix = bind_socket(socket)?;
    let tcp = match listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| CliError::input(format!("cannot listen on {addr}: {e}")))?,
        ),
        None => None,
    };
    // The handlers first: a SIGTERM sent the moment the ready line appears must drain, not kill.
    let signal =
        |kind| tokio::signal::unix::signal(kind).map_err(|e| CliError { code: 1, message: format!("signals: {e}") });
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut hup = signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut ready = format!("airlock serve: listening on {}", socket.display());
    if let Some(t) = &tcp {
        let addr = t.local_addr().map_err(|e| CliError::input(e.to_string()))?;
        ready.push_str(&format!(" and {}://{addr}", if tls.is_some() { "https" } else { "http" }));
    }
    // One line on stdout when ready: scripts and tests wait for it.
    println!("{ready}");
    use std::io::Write;
    let _ = std::io::stdout().flush();

    let mut poll = tokio::time::interval(POLICY_POLL);
    loop {
        tokio::select! {
            accepted = unix.accept() => {
                if let Ok((stream, _)) = accepted {
                    let peer = peer_of(&stream);
                    spawn_connection(Arc::clone(&daemon), stream, peer);
                }
            }
            accepted = async { tcp.as_ref().expect("guarded").accept().await }, if tcp.is_some() => {
                if let Ok((stream, addr)) = accepted {
                    match &tls {
                        Some(acceptor) => tls::accept(Arc::clone(&daemon), acceptor.clone(), stream, addr),
                        None => spawn_connection(Arc::clone(&daemon), stream, format!("tcp {addr}")),
                    }
                }
            }
            _ = hup.recv() => reload(&daemon, "SIGHUP"),
            _ = poll.tick() => {
                let mtime = modified(&daemon.config);
                if mtime != *lock(&daemon.config_mtime) {
                    *lock(&daemon.config_mtime) = mtime;
                    reload(&daemon, "the policy file changed");
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    daemon.draining.store(true, Ordering::SeqCst);
    Ok(())
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn reload(daemon: &Daemon, why: &str) {
    match daemon.policy.reload() {
        Ok(r) => {
            let _ = daemon.log.append(lifecycle(format!(
                "policy reloaded ({why}): generation {}, {} policies",
                r.generation, r.policies
            )));
        }
        Err(e) => {
            eprintln!("airlock serve: policy reload refused, keeping the old one: {e}");
            let _ = daemon.log.append(lifecycle(format!("policy reload refused ({why}): {e}")).status(false));
        }
    }
}

/// The Unix socket, 0600. A stale socket from a daemon that died is replaced; a live one (something answers) is
/// not: two daemons on one home would each think they own the audit log.
fn bind_socket(path: &Path) -> Result<tokio::net::UnixListener, CliError> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(CliError { code: 5, message: format!("another daemon is serving {}", path.display()) });
        }
        std::fs::remove_file(path).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    }
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| CliError::input(format!("{}: {e}", dir.display())))?;
    }
    // Bound under a 0077 umask, so that there is no moment at which the socket is open to others.
    // SAFETY-free: umask is process-wide; nothing else creates files while the daemon starts.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let bound = tokio::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| CliError::input(format!("cannot listen on {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    Ok(listener)
}

/// Who is on the other end of a Unix connection, for the audit log.
fn peer_of(stream: &tokio::net::UnixStream) -> String {
    match stream.peer_cred() {
        Ok(c) => format!("unix uid {} pid {}", c.uid(), c.pid().map_or("?".into(), |p| p.to_string())),
        Err(_) => "unix".into(),
    }
}

fn spawn_connection<S>(daemon: Arc<Daemon>, stream: S, peer: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = service_fn(move |req| {
            let daemon = Arc::clone(&daemon);
            let peer = peer.clone();
            async move { Ok::<_, std::convert::Infallible>(handle(daemon, req, peer).await) }
        });
        let _ = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}

/// One request: route, authenticate, rate-limit, authorise, answer; counted in the metrics either way.
async fn handle(daemon: Arc<Daemon>, req: Request<Incoming>, peer: String) -> Reply {
    let began = Instant::now();
    daemon.in_flight.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    let (method, template, reply) = match routes::route(req.method(), &path) {
        None => ("OTHER", "unmatched", Problem::not_found(format!("no route {} {path}", req.method())).reply(&path)),
        Some(route) => {
            let (method, template) = (route.method(), route.template());
            let reply = if daemon.draining.load(Ordering::SeqCst) {
                Problem::unavailable("the daemon is shutting down").reply(&path)
            } else {
                match routes::answer(&daemon, route, req, &peer).await {
                    Ok(r) => r,
                    Err(p) => p.reply(&path),
                }
            };
            (method, template, reply)
        }
    };
    daemon.metrics.observe(method, template, reply.status().as_u16(), began.elapsed());
    daemon.in_flight.fetch_sub(1, Ordering::SeqCst);
    reply
}
