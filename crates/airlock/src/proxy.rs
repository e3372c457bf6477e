//! `airlock proxy`: the egress broker in the foreground, for one agent and tool.
//!
//! It loads the policy (hot-reloadable store), opens the vault (for the audit keys) and the audit log, builds the
//! SSRF allowances from `[network]`, listens on loopback TCP and/or a Unix socket, prints the environment lines a
//! client needs, and serves until interrupted. Every decision goes to the audit log; with `fail_closed`, an allow
//! that cannot be recorded is refused.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use airlock_audit::{Append, AuditMac};
use airlock_broker::capability::Registry;
use airlock_broker::inject::{Credential, CredentialSet, MIN_SURROGATE_LEN, Recipe};
use airlock_broker::leak::{LeakScanner, LeakScannerBuilder, Source};
use airlock_broker::ssrf::Cidr;
use airlock_broker::{Attribution, AuditTrail, Broker, BrokerConfig, Principal, Resolver, SsrfPolicy, TokenTable};
use airlock_crypto::SecretBytes;
use airlock_crypto::kdf::labels;
use airlock_policy::PolicyStore;
use airlock_policy::model::PrivateAllow;
use airlock_policy::normalize::HostPattern;
use airlock_redact::{MaskStyle, Redactor, Scanner};
use airlock_vault::Injection;
use airlock_vault::surrogate::SurrogateMap;

use crate::CliError;
use crate::cli::ProxyArgs;
use crate::commands::Ctx;

pub fn run(ctx: &Ctx, a: ProxyArgs) -> Result<(), CliError> {
    if !a.no_tcp && !a.listen.ip().is_loopback() && !a.allow_remote {
        return Err(CliError::usage(format!(
            "refusing to listen on {}: the proxy serves loopback only (anyone who can reach it spends this agent's \
             network rights); --allow-remote serves other addresses, to clients with the proxy token only",
            a.listen
        )));
    }
    if a.no_tcp && a.socket.is_none() {
        return Err(CliError::usage("--no-tcp needs --socket".into()));
    }
    let config = crate::policy::config_path(a.config.clone(), &ctx.home)?;
    let store = PolicyStore::open(&config, crate::policy::load_options(&a.env)?)
        .map_err(|e| CliError { code: 4, message: format!("{}: {e}", config.display()) })?;
    let model = store.engine().compiled().model.clone();
    if !model.agents.contains_key(&a.agent) {
        return Err(CliError::input(format!("agent {:?} is not in {}", a.agent, config.display())));
    }
    if !model.tools.contains_key(&a.tool) {
        return Err(CliError::input(format!("tool {:?} is not in {}", a.tool, config.display())));
    }

    let mut vault = ctx.open_unlocked()?;
    // Shared with every other Airlock process on this home (`airlock run`s, CLI changes): see `audit::shared_log`.
    let log = Arc::new(crate::audit::shared_log(&ctx.home, &mut vault)?);
    let mac = AuditMac::new(vault.subkey(labels::AUDIT_MAC)?);
    let store = Arc::new(store);
    let audit = AuditTrail {
        log: Arc::clone(&log) as Arc<dyn airlock_audit::Append>,
        mac,
        record_allows: model.record_allows,
        fail_closed: model.fail_closed,
    };
    let backends = crate::backends::Backends::new(&model.file.backends, &crate::backends::config_dir(&config));
    let built = tool_broker(
        &mut vault,
        BrokerInputs {
            home: &ctx.home,
            config: &config,
            model: &model,
            tool: &a.tool,
            backends: &backends,
            policy: Arc::new(crate::supervise::Supervised::new(Arc::clone(&store), &ctx.home, None)),
            audit,
            dns: &a.dns,
            resolve: &a.resolve,
            upstream_ca: &a.upstream_ca,
            max_connections: Some(a.max_connections.max(1)),
            redact_rules: Box::new(|| crate::redact::tool_output_scanner(&ctx.home, &model.redact)),
        },
    )?;
    drop(vault);
    // Only surrogates are printed; a secret whose exposure is `env` is for sandboxed tools, never for a terminal.
    let mut env: Vec<(String, String)> =
        built.tool_env.iter().filter(|t| !t.real).map(|t| (t.name.clone(), t.value.to_string())).collect();
    if built.ca.is_some() {
        env.extend(crate::ca::env_lines(&crate::ca::files(&ctx.home)));
    }
    let broker = built.broker;

    let run_id = hex::encode(airlock_crypto::random::bytes::<8>());
    let principal = Principal::new(&a.agent, &a.tool, &run_id);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::input(format!("start the runtime: {e}")))?;
    let reloads = Reloads { store, config: config.clone(), log: Arc::downgrade(&log) };
    let result = runtime.block_on(serve(broker, principal, &a, &env, reloads));
    let closed = match Arc::try_unwrap(log) {
        Ok(log) => log.close().map(|_| ()).map_err(|e| CliError::input(format!("closing the audit log: {e}"))),
        Err(_) => Ok(()),
    };
    runtime.shutdown_timeout(Duration::from_secs(1));
    result.and(closed)
}

/// The compiled `[redact]` rules (no known values yet) and the masking style.
pub(crate) type OutputRules = (Scanner, MaskStyle);

/// What `airlock proxy` and `airlock run` each build a broker from.
pub(crate) struct BrokerInputs<'a> {
    pub home: &'a Path,
    /// The config file, for error messages.
    pub config: &'a Path,
    pub model: &'a airlock_policy::model::Model,
    pub tool: &'a str,
    pub policy: Arc<dyn airlock_broker::PolicySource>,
    pub audit: AuditTrail,
    pub dns: &'a [std::net::SocketAddr],
    pub resolve: &'a [String],
    pub upstream_ca: &'a [std::path::PathBuf],
    /// Client connections one principal may hold open (`None`: the broker's default).
    pub max_connections: Option<usize>,
    /// The stores `[secrets.NAME] source` points into, besides the vault.
    pub backends: &'a crate::backends::Backends,
    /// The compiled `[redact]` rules (`None`: `tool_output = false`), given as a closure so that the caller can
    /// compile them on another thread while the vault is read; the vault's values join them here.
    pub redact_rules: Box<dyn FnOnce() -> Result<Option<OutputRules>, CliError> + Send + 'a>,
}

/// A broker for one tool, and what the tool is handed alongside it.
pub(crate) struct ToolBroker {
    pub broker: Broker,
    /// The tool's secrets as environment variables (surrogates, or real values for exposure `env`).
    pub tool_env: Vec<ToolEnv>,
    /// The local CA, when the broker opens tunnels.
    pub ca: Option<Arc<airlock_broker::ca::LocalCa>>,
    /// `[redact]` with the vault's values and the tool's surrogates as known values: masks capability responses,
    /// and (in `airlock run`) the tool's output. `None` when `tool_output = false`.
    pub redactor: Option<Redactor>,
    /// When the first of the values it holds from other stores than the vault should be read again (`None`: it
    /// holds none). A daemon that keeps the broker rebuilds it by then, so a rotation there reaches callers in time.
    pub fresh_until: Option<std::time::Instant>,
}

/// Builds the broker for one tool: the providers, the credentials it may inject (real values from the vault, with
/// their surrogates), the leak scanner over every vault value, the local CA, SSRF allowances and the resolver.
pub(crate) fn tool_broker(vault: &mut airlock_vault::Vault, i: BrokerInputs<'_>) -> Result<ToolBroker, CliError> {
    let model = i.model;
    let registry = Registry::builtin()
        .with_config(&model.file.providers)
        .map_err(|e| CliError { code: 4, message: format!("{}: [providers]: {e}", i.config.display()) })?;
    let (credentials, tool_env, external) = credentials(vault, i.backends, &i.audit, model, i.tool, &registry)?;
    let leaks = Arc::new(leak_scanner(vault, &credentials, &external, i.home)?);
    let fresh_until = external.iter().map(|(_, _, until)| *until).min();
    let redactor =
        (i.redact_rules)()?.map(|(rules, style)| Redactor::new(rules.with_known(Some(Arc::clone(&leaks))), style));
    let ca = match model.tls_inspect {
        airlock_policy::config::TlsInspect::Off => None,
        _ => Some(Arc::new(crate::ca::load_or_create(i.home, vault)?)),
    };
    let defaults = airlock_broker::Limits::default();
    let broker = Broker::new(BrokerConfig {
        policy: i.policy,
        ssrf: ssrf_policy(&model.allow_private, model.block_private)?,
        resolver: Arc::new(resolver(i.dns, i.resolve)?),
        audit: Some(i.audit),
        timeouts: Default::default(),
        limits: airlock_broker::Limits {
            max_body_bytes: model.max_request_bytes.unwrap_or(64 << 20),
            max_connections_per_principal: i.max_connections.unwrap_or(defaults.max_connections_per_principal),
            ..defaults
        },
        extra_ca_pems: read_pems(i.upstream_ca)?,
        leaks: Arc::clone(&leaks),
        rate_limits: airlock_broker::limits::Limiter::from_config(&model.file.rate_limits),
        credentials: Arc::new(credentials),
        ca: ca.clone(),
        budgets: airlock_broker::budget::Budgets::from_config(&model.file.rate_limits, &model.file.budgets),
        capabilities: Arc::new(registry),
        redactor: redactor.clone(),
    })
    .map_err(|e| CliError::input(e.to_string()))?;
    Ok(ToolBroker { broker, tool_env, ca, redactor, fresh_until })
}

/// The broker's resolver: the system's, or `--dns` servers, with `--resolve HOST=IP` pins.
pub(crate) fn resolver(dns: &[std::net::SocketAddr], resolve: &[String]) -> Result<Resolver, CliError> {
    let timeout = Duration::from_secs(5);
    let mut resolver = if dns.is_empty() {
        Resolver::system(timeout).map_err(|e| CliError::input(e.to_string()))?
    } else {
        Resolver::with_name_servers(dns, timeout).map_err(|e| CliError::input(e.to_string()))?
    };
    for r in resolve {
        let (host, ip) =
            r.split_once('=').ok_or_else(|| CliError::input(format!("--resolve {r:?}: expected HOST=IP")))?;
        let ip: IpAddr =
            ip.parse().map_err(|_| CliError::input(format!("--resolve {r:?}: {ip:?} is not an address")))?;
        resolver = resolver.pin(host, vec![ip]);
    }
    Ok(resolver)
}

/// `--upstream-ca` files, read.
pub(crate) fn read_pems(paths: &[std::path::PathBuf]) -> Result<Vec<String>, CliError> {
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).map_err(|e| CliError::input(format!("--upstream-ca {}: {e}", p.display()))))
        .collect()
}

/// The token remote clients must present: `AIRLOCK_PROXY_TOKEN` (at least 32 characters, URL-safe), else 32 random
/// bytes, base64url.
fn remote_token() -> Result<zeroize::Zeroizing<String>, CliError> {
    use base64::Engine as _;
    if let Ok(t) = std::env::var("AIRLOCK_PROXY_TOKEN") {
        if t.len() < 32 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)) {
            return Err(CliError::input(
                "AIRLOCK_PROXY_TOKEN must be at least 32 characters of A-Z a-z 0-9 - _ . ~".into(),
            ));
        }
        return Ok(zeroize::Zeroizing::new(t));
    }
    let bytes = airlock_crypto::random::bytes::<32>();
    Ok(zeroize::Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// What SIGHUP needs: the store to reload, and the log to record it in (weak: the log is closed at exit, and a
/// reload in flight must not keep it open).
struct Reloads {
    store: Arc<PolicyStore>,
    config: std::path::PathBuf,
    log: std::sync::Weak<airlock_audit::SharedLog>,
}

impl Reloads {
    /// Re-reads the config. A config with errors is refused and the policy in force stays; either way the audit log
    /// says what happened.
    fn reload(&self) {
        use airlock_audit::event::activity;
        use airlock_audit::{Clock, Event, Severity, SystemClock};
        let now = SystemClock.now_ms();
        let path = self.config.display().to_string();
        let event = match self.store.reload() {
            Ok(r) => {
                eprintln!("airlock: reloaded {path}: generation {}, {} policies", r.generation, r.policies);
                Event::entity_change(now, activity::UPDATE, "policy", &path)
                    .message(format!("policy reloaded on SIGHUP: generation {}, {} policies", r.generation, r.policies))
                    .status(true)
            }
            Err(e) => {
                eprintln!("airlock: {path}: reload refused, the previous policy stays in force:\n{e}");
                Event::entity_change(now, activity::UPDATE, "policy", &path)
                    .message(format!("policy reload refused, the previous policy stays: {e}"))
                    .status(false)
                    .severity(Severity::Medium)
            }
        };
        if let Some(log) = self.log.upgrade()
            && let Err(e) = log.append(event)
        {
            eprintln!("airlock: the audit log could not record the reload: {e}");
        }
    }
}

async fn serve(
    broker: Broker,
    principal: Principal,
    a: &ProxyArgs,
    env: &[(String, String)],
    reloads: Reloads,
) -> Result<(), CliError> {
    let mut tasks = tokio::task::JoinSet::new();
    // SIGHUP re-reads airlock.toml: new rules, rate limits and secret pins apply to the next request.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| CliError::input(format!("install a SIGHUP handler: {e}")))?;
    tasks.spawn(async move {
        while hup.recv().await.is_some() {
            // Reading, compiling and durably recording take milliseconds: off the async workers.
            tokio::task::block_in_place(|| reloads.reload());
        }
        Ok(())
    });
    if !a.no_tcp {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .map_err(|e| CliError::input(format!("listen on {}: {e}", a.listen)))?;
        let addr = listener.local_addr().map_err(|e| CliError::input(e.to_string()))?;
        let (url, attribution) = if a.allow_remote {
            // Reachable from elsewhere: the listener no longer says who is calling, so a token must.
            let token = remote_token()?;
            let mut table = TokenTable::new();
            table.add(token.as_bytes(), principal.clone()).map_err(CliError::input)?;
            (format!("http://airlock:{}@{addr}", token.as_str()), Attribution::Token(Arc::new(table)))
        } else {
            (format!("http://{addr}"), Attribution::Fixed(principal.clone()))
        };
        println!("AIRLOCK_CAPABILITIES_URL={url}/v1/capabilities");
        println!("HTTP_PROXY={url}");
        println!("HTTPS_PROXY={url}");
        println!("http_proxy={url}");
        println!("https_proxy={url}");
        let b = broker.clone();
        tasks.spawn(async move { b.serve_tcp(listener, attribution).await });
    }
    if let Some(path) = &a.socket {
        let listener = bind_unix(path)?;
        println!("AIRLOCK_PROXY_SOCKET={}", path.display());
        let (b, p) = (broker.clone(), principal.clone());
        tasks.spawn(async move { b.serve_unix(listener, Attribution::Fixed(p)).await });
    }
    // Surrogates (never real values) and the CA bundle the client must trust for opened tunnels.
    for (k, v) in env {
        println!("{k}={v}");
    }
    eprintln!(
        "airlock: proxy for agent {} tool {} (run {}); Ctrl-C to stop",
        principal.agent, principal.tool, principal.run
    );
    // Ctrl-C or SIGTERM stop it (and close the audit log cleanly); so does --exit-after.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| CliError::input(format!("install a SIGTERM handler: {e}")))?;
    let deadline = async {
        match a.exit_after {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    let stop = async {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = deadline => {}
        }
    };
    tokio::select! {
        _ = stop => Ok(()),
        Some(r) = tasks.join_next() => match r {
            Ok(Err(e)) => Err(CliError::input(format!("proxy listener failed: {e}"))),
            _ => Ok(()),
        },
    }
}

/// A Unix socket only this user can use: created under a 0600 umask-free mode, refusing to replace anything but a
/// stale socket.
fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, CliError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(CliError::input(format!("{} exists and is not a socket; not replacing it", path.display())));
        }
        std::fs::remove_file(path).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    }
    let listener = tokio::net::UnixListener::bind(path)
        .map_err(|e| CliError::input(format!("listen on {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    Ok(listener)
}

/// `[network] allow_private` and `block_private` as the broker's SSRF allowances.
fn ssrf_policy(allow: &[airlock_policy::model::At<PrivateAllow>], block_private: bool) -> Result<SsrfPolicy, CliError> {
    let mut p = SsrfPolicy::default();
    for entry in allow {
        match &entry.value {
            PrivateAllow::Prefix(ip, len) => p
                .allow_cidrs
                .push(Cidr::parse(&format!("{ip}/{len}")).map_err(|e| CliError::input(format!("allow_private: {e}")))?),
            PrivateAllow::Host(h) => p.allow_hosts.push(h.to_string()),
        }
    }
    if !block_private {
        // dev only (the config refuses it elsewhere): private ranges pass, metadata and tunnelling ranges still not.
        for all in ["0.0.0.0/0", "::/0"] {
            p.allow_cidrs.push(Cidr::parse(all).map_err(CliError::input)?);
        }
    }
    Ok(p)
}

/// One environment variable a tool gets for a secret: its surrogate, or (exposure `env`) the real value.
pub(crate) struct ToolEnv {
    pub name: String,
    pub value: zeroize::Zeroizing<String>,
    /// The real value: only ever placed in a sandboxed tool's environment.
    pub real: bool,
}

/// The credentials the tool may have injected, with a surrogate for each, and the environment variables that hand
/// the surrogates to the tool (named by `[secrets.NAME] env`, else after the secret). Secrets the tool is granted
/// but the vault lacks are warned about.
fn credentials(
    vault: &mut airlock_vault::Vault,
    backends: &crate::backends::Backends,
    audit: &AuditTrail,
    model: &airlock_policy::model::Model,
    tool: &str,
    registry: &Registry,
) -> Result<(CredentialSet, Vec<ToolEnv>, Vec<ExternalValue>), CliError> {
    let mut creds = Vec::new();
    let mut external = Vec::new();
    let mut env = Vec::new();
    let mut map = SurrogateMap::new();
    let Some(spec) = model.tools.get(tool) else { return Ok((CredentialSet::empty(), env, external)) };
    for name in spec.secrets.iter().map(|s| s.value.as_str()) {
        let secret_spec = model.secrets.get(name);
        let source = match secret_spec.and_then(|s| s.source.as_deref()) {
            Some(text) => airlock_vault::backend::Locator::parse(text, airlock_vault::DEFAULT_WORKSPACE)
                .map_err(|e| CliError::input(format!("[secrets.{name}] source: {e}")))?,
            None => airlock_vault::backend::Locator::Local(airlock_vault::SecretId::parse(
                name,
                airlock_vault::DEFAULT_WORKSPACE,
            )?),
        };
        // Where the value is, and what the vault's record adds to the policy's metadata (nothing, for a value held
        // elsewhere: its pins and recipe are the policy's alone).
        let (id, info, value) = match &source {
            airlock_vault::backend::Locator::Local(id) => {
                let info = match vault.info(id) {
                    Ok(i) => i,
                    Err(airlock_vault::VaultError::NotFound(_)) => {
                        eprintln!(
                            "airlock: warning: tool {tool} may use secret {name}, but the vault has no such secret"
                        );
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                (id.clone(), Some(info), vault.resolve(id)?.clone())
            }
            source_ref => {
                let fetched = backends.read(source_ref)?;
                record_read(audit, tool, name, source_ref, &fetched);
                let id = airlock_vault::SecretId::parse(name, airlock_vault::DEFAULT_WORKSPACE)?;
                external.push((name.to_string(), fetched.value.clone(), backends.fresh_until(&fetched)));
                (id, None, fetched.value)
            }
        };
        let injection = info.as_ref().and_then(|i| i.injection.clone());
        let recipe = match (secret_spec.and_then(|s| s.inject.as_ref()), &injection) {
            (Some(r), _) => Some(Recipe::from_config(r)),
            (None, Some(Injection::Header { name: h, template })) => Some(Recipe::header(h, template)),
            (None, Some(Injection::Query { param })) => Some(Recipe::query(param)),
            (None, Some(Injection::Basic { username })) => Some(Recipe::basic(username)),
            (None, None) => None,
        }
        .transpose()
        .map_err(|e| CliError::input(format!("secret {name}: {e}")))?;
        let vault_pins = info
            .as_ref()
            .map(|i| i.hosts.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|h| HostPattern::parse(h).map_err(|e| CliError::input(format!("secret {name}: vault pin {h}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let exposure = info.as_ref().map_or(airlock_vault::Exposure::Surrogate, |i| i.exposure);
        let body_types: Vec<&str> =
            secret_spec.map(|s| s.body_types.iter().map(String::as_str).collect()).unwrap_or_default();
        // A secret named like a registry provider's (OPENAI_API_KEY, ...) goes only to that provider's hosts.
        let registry_pins = registry.pins_for_secret(name).map(<[HostPattern]>::to_vec).unwrap_or_default();
        let mut cred = Credential::new(name, value.expose())
            .vault_pins(vault_pins)
            .registry_pins(registry_pins)
            .body_types(&body_types);
        if let Some(r) = recipe {
            cred = cred.recipe(r);
        }
        let var = secret_spec.and_then(|s| s.env.clone()).unwrap_or_else(|| env_name(name));
        if exposure == airlock_vault::Exposure::Surrogate && value.expose().len() >= MIN_SURROGATE_LEN {
            let surrogate = map.surrogate_for(&id, value.expose()).to_string();
            env.push(ToolEnv { name: var, value: zeroize::Zeroizing::new(surrogate.clone()), real: false });
            cred = cred.surrogate(&surrogate);
        } else if exposure == airlock_vault::Exposure::Env {
            let real = String::from_utf8(value.expose().to_vec())
                .map_err(|_| CliError::input(format!("secret {name}: an `env` secret must be UTF-8 text")))?;
            env.push(ToolEnv { name: var, value: zeroize::Zeroizing::new(real), real: true });
        }
        creds.push(cred);
    }
    let set = CredentialSet::new(creds).map_err(CliError::input)?;
    Ok((set, env, external))
}

/// A secret's name, the value read for it from a store other than the vault, and until when it may be kept
/// ([`crate::backends::Backends::fresh_until`]).
type ExternalValue = (String, SecretBytes, std::time::Instant);

/// Every read from a store other than the vault is in the audit log: which secret, from where, which version, for
/// which tool. A read that cannot be recorded still stands (the broker's own records say what was sent).
fn record_read(
    audit: &AuditTrail,
    tool: &str,
    name: &str,
    source: &airlock_vault::backend::Locator,
    fetched: &airlock_vault::backend::Fetched,
) {
    let _ = audit.log.append(secret_read_event(name, Some(tool), source, fetched));
}

/// The `secret.read` record of one read from a store other than the vault, by a tool's broker or (`tool` `None`) by
/// the audit log itself, for a webhook sink's token.
pub(crate) fn secret_read_event(
    name: &str,
    tool: Option<&str>,
    source: &airlock_vault::backend::Locator,
    fetched: &airlock_vault::backend::Fetched,
) -> airlock_audit::Event {
    let version = fetched.version.map_or_else(String::new, |v| format!(", version {v}"));
    let stale = if fetched.stale { ", served stale: the store could not be asked" } else { "" };
    let reader = tool.map_or_else(|| "the audit log's webhook sink".to_string(), |t| format!("tool {t}"));
    airlock_audit::Event::new(
        airlock_audit::event::Class::ApiActivity,
        airlock_audit::event::activity::READ,
        jiff::Timestamp::now().as_millisecond(),
    )
    .set("api.operation", serde_json::json!("secret.read"))
    .set("api.service.name", serde_json::json!(source.kind().scheme()))
    .set("resources", serde_json::json!([{"type": "secret", "name": name}]))
    .set("unmapped.airlock.secret_source", serde_json::json!(source.to_string()))
    .actor("airlock", tool)
    .message(format!("secret {name} read from {source}{version}{stale}, for {reader}"))
    .status(true)
}

/// An environment variable name for a secret name: itself when it is one, else upper-cased with `_` for the rest.
fn env_name(secret: &str) -> String {
    let mut s: String =
        secret.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    if secret.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !secret.starts_with(|c: char| c.is_ascii_digit())
    {
        return secret.to_string();
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Every current value in the vault, so that a tool that somehow holds one cannot send it out, every surrogate,
/// so that one headed to the wrong host is caught in any encoding, and every registered canary (`airlock canary`),
/// whose appearance in a request means a hijacked model or tool is sending on what it was planted for.
fn leak_scanner(
    vault: &mut airlock_vault::Vault,
    credentials: &CredentialSet,
    external: &[ExternalValue],
    home: &Path,
) -> Result<LeakScanner, CliError> {
    let mut builder = vault_values(vault)?;
    // Values held in other stores, that this tool's broker holds, are looked for the same way.
    for (name, value, _) in external {
        builder.add(Source::Secret(name.clone()), value.expose());
    }
    crate::canary::add_known(home, &mut builder)?;
    for c in credentials.iter() {
        if let Some(s) = &c.surrogate {
            builder.add(Source::Surrogate(c.secret.clone()), s.as_bytes());
        }
    }
    build_known(&builder, "scanned for in outgoing requests")
}

/// Every current vault value, as known values to look for.
pub(crate) fn vault_values(vault: &mut airlock_vault::Vault) -> Result<LeakScannerBuilder, CliError> {
    let mut builder = LeakScanner::builder();
    for info in vault.list()? {
        let id = airlock_vault::SecretId::new(&info.workspace, &info.name)?;
        let value = vault.resolve(&id)?;
        builder.add(Source::Secret(id.to_string()), value.expose());
    }
    Ok(builder)
}

/// Builds the automaton, warning about each value too short to look for (`what`: what would happen to it).
pub(crate) fn build_known(builder: &LeakScannerBuilder, what: &str) -> Result<LeakScanner, CliError> {
    let scanner = builder.build().map_err(|e| CliError::input(e.to_string()))?;
    for s in scanner.skipped() {
        eprintln!("airlock: warning: {} is shorter than 8 bytes and is not {what}", s.id());
    }
    Ok(scanner)
}
