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

use airlock_audit::{AuditLog, AuditMac};
use airlock_broker::leak::{LeakScanner, Source};
use airlock_broker::ssrf::Cidr;
use airlock_broker::{Attribution, AuditTrail, Broker, BrokerConfig, Principal, Resolver, SsrfPolicy};
use airlock_crypto::kdf::labels;
use airlock_policy::PolicyStore;
use airlock_policy::model::PrivateAllow;

use crate::CliError;
use crate::cli::ProxyArgs;
use crate::commands::Ctx;

pub fn run(ctx: &Ctx, a: ProxyArgs) -> Result<(), CliError> {
    if !a.no_tcp && !a.listen.ip().is_loopback() {
        return Err(CliError::usage(format!(
            "refusing to listen on {}: the proxy serves loopback only (anyone who can reach it spends this agent's \
             network rights)",
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
    let setup = crate::audit::log_setup(&ctx.home, &mut vault)?;
    let signer = crate::audit::signer(&mut vault)?;
    let mac = AuditMac::new(vault.subkey(labels::AUDIT_MAC)?);
    let log = Arc::new(
        AuditLog::open(&setup.dir, signer, setup.options, setup.sinks)
            .map_err(|e| CliError::input(format!("audit log {}: {e}", setup.dir.display())))?,
    );
    let leaks = leak_scanner(&mut vault)?;
    drop(vault);

    let ssrf = ssrf_policy(&model.allow_private, model.block_private)?;
    let timeout = Duration::from_secs(5);
    let mut resolver = if a.dns.is_empty() {
        Resolver::system(timeout).map_err(|e| CliError::input(e.to_string()))?
    } else {
        Resolver::with_name_servers(&a.dns, timeout).map_err(|e| CliError::input(e.to_string()))?
    };
    for r in &a.resolve {
        let (host, ip) =
            r.split_once('=').ok_or_else(|| CliError::input(format!("--resolve {r:?}: expected HOST=IP")))?;
        let ip: IpAddr =
            ip.parse().map_err(|_| CliError::input(format!("--resolve {r:?}: {ip:?} is not an address")))?;
        resolver = resolver.pin(host, vec![ip]);
    }
    let audit =
        AuditTrail { log: Arc::clone(&log), mac, record_allows: model.record_allows, fail_closed: model.fail_closed };
    let broker = Broker::new(BrokerConfig {
        policy: Arc::new(store),
        ssrf,
        resolver: Arc::new(resolver),
        audit: Some(audit),
        timeouts: Default::default(),
        limits: airlock_broker::Limits {
            max_body_bytes: model.max_request_bytes.unwrap_or(64 << 20),
            ..Default::default()
        },
        extra_ca_pems: Vec::new(),
        leaks: Arc::new(leaks),
        rate_limits: airlock_broker::limits::Limiter::from_config(&model.file.rate_limits),
    })
    .map_err(|e| CliError::input(e.to_string()))?;

    let run_id = hex::encode(airlock_crypto::random::bytes::<8>());
    let principal = Principal::new(&a.agent, &a.tool, &run_id);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::input(format!("start the runtime: {e}")))?;
    let result = runtime.block_on(serve(broker, principal, &a));
    let closed = match Arc::try_unwrap(log) {
        Ok(log) => log.close().map(|_| ()).map_err(|e| CliError::input(format!("closing the audit log: {e}"))),
        Err(_) => Ok(()),
    };
    runtime.shutdown_timeout(Duration::from_secs(1));
    result.and(closed)
}

async fn serve(broker: Broker, principal: Principal, a: &ProxyArgs) -> Result<(), CliError> {
    let mut tasks = tokio::task::JoinSet::new();
    if !a.no_tcp {
        let listener = tokio::net::TcpListener::bind(a.listen)
            .await
            .map_err(|e| CliError::input(format!("listen on {}: {e}", a.listen)))?;
        let addr = listener.local_addr().map_err(|e| CliError::input(e.to_string()))?;
        println!("HTTP_PROXY=http://{addr}");
        println!("HTTPS_PROXY=http://{addr}");
        println!("http_proxy=http://{addr}");
        println!("https_proxy=http://{addr}");
        let (b, p) = (broker.clone(), principal.clone());
        tasks.spawn(async move { b.serve_tcp(listener, Attribution::Fixed(p)).await });
    }
    if let Some(path) = &a.socket {
        let listener = bind_unix(path)?;
        println!("AIRLOCK_PROXY_SOCKET={}", path.display());
        let (b, p) = (broker.clone(), principal.clone());
        tasks.spawn(async move { b.serve_unix(listener, Attribution::Fixed(p)).await });
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

/// Every current value in the vault, so that a tool that somehow holds one cannot send it out.
fn leak_scanner(vault: &mut airlock_vault::Vault) -> Result<LeakScanner, CliError> {
    let mut builder = LeakScanner::builder();
    for info in vault.list()? {
        let id = airlock_vault::SecretId::new(&info.workspace, &info.name)?;
        let value = vault.resolve(&id)?;
        builder.add(Source::Secret(id.to_string()), value.expose());
    }
    let scanner = builder.build().map_err(|e| CliError::input(e.to_string()))?;
    for s in scanner.skipped() {
        eprintln!("airlock: warning: {} is shorter than 8 bytes and is not scanned for in outgoing requests", s.id());
    }
    Ok(scanner)
}
