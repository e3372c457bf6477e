//! `airlock run`: one command in the sandbox, with a broker of its own as its only way out.
//!
//! This file decides what the run gets (from the policy, the vault and what the kernel offers) and supervises it;
//! `airlock-sandbox` does the kernel work. The order matters and is fail-closed throughout:
//! 1. a lockdown, an unknown agent or tool, a denied program or a nesting depth over the limit refuse the run;
//! 2. the kernel is probed; a protection the policy needs but the kernel lacks refuses the run unless
//!    `--allow-degraded`, which is audited with what was missing;
//! 3. the vault (for surrogates, the CA and the audit keys) and the shared audit log are opened; the broker is built
//!    and, once the sandbox's init hands over the listener it opened inside the sandbox's network namespace, accepts
//!    on it: the only way out, and one that only this run can reach;
//! 4. the run is registered (so `airlock ps/kill/pause` see it), joins its cgroup, and starts;
//! 5. output streams back through the output filter under the output limit; the wall-clock limit, a signal to
//!    `airlock run` and an output flood each end the sandbox; the end is audited with the run's id.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_audit::{Append, AuditMac, Event};
use airlock_broker::{Attribution, AuditTrail, Principal};
use airlock_crypto::kdf::labels;
use airlock_policy::PolicyStore;
use airlock_policy::engine::{Action, Request};
use airlock_policy::model::{FsPattern, Model, ToolSpec};
use airlock_sandbox::cgroup::{CgroupLimits, RunCgroup};
use airlock_sandbox::landlock::{FsRules, LandlockPlan};
use airlock_sandbox::launch::{Ended, Pending};
use airlock_sandbox::output::{OutputBudget, OutputFilter, PassThrough, Stream};
use airlock_sandbox::rlimits::Rlimits;
use airlock_sandbox::spec::{Bind, CA_BUNDLE, CA_CERT, EnvVar, RUN_DIR, SandboxSpec};
use airlock_sandbox::supervisor::{Registry, RunRecord};
use airlock_sandbox::{Probe, Support};
use serde_json::json;

use crate::CliError;
use crate::cli::RunArgs;
use crate::commands::Ctx;

/// Exit code when the sandbox cannot enforce what the policy needs here (see `airlock run --check`).
pub const EXIT_DEGRADED: u8 = 11;
/// Exit code when the sandbox could not be set up, or the command could not be started in it.
pub const EXIT_SETUP: u8 = 12;
/// Runs nest at most this deep when no agent sets `max_depth`.
pub const MAX_DEPTH: u32 = 8;

/// Read-only system directories every run sees (and may execute from).
const SYSTEM: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/// Host files no tool needs and every attacker wants, hidden even inside the read-only `/etc`; and the resolver
/// configuration, so that a DNS lookup fails at once instead of waiting on a server it cannot reach.
const HOST_MASKED: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/security/opasswd",
    "/etc/resolv.conf",
];
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];
/// Size of a file a tool may write (RLIMIT_FSIZE): large enough for real work, small enough that one runaway
/// write does not fill a disk.
const FILE_SIZE: u64 = 4 << 30;
/// A deny glob is expanded over the visible tree by walking it; a tree larger than this is refused rather than
/// half-masked.
const MAX_WALK: usize = 200_000;

pub fn state_dir(home: &Path) -> PathBuf {
    home.join("runs")
}

pub fn run(ctx: &Ctx, a: RunArgs) -> Result<(), CliError> {
    let began = Instant::now();
    // The kernel probe, the vault with the audit log, and the policy do not depend on each other, and each costs
    // milliseconds: they are done at the same time.
    let (probe, opened, loaded) = std::thread::scope(|s| {
        let probe = s.spawn(airlock_sandbox::probe);
        let opened = (!a.check).then(|| s.spawn(|| open_vault_and_log(ctx)));
        let loaded = load_policy(ctx, &a);
        (probe.join(), opened.map(|h| h.join()), loaded)
    });
    let probe = probe.map_err(|_| CliError::input("the kernel probe failed".into()))?;
    let (config, store) = loaded?;
    let engine = store.engine();
    let model = engine.compiled().model.clone();
    let plan = Plan::new(&model, &a)?;
    let missing = plan.missing(&probe);
    if a.check {
        return check(ctx, &probe, &plan, &missing);
    }
    let (mut vault, log, mac) = match opened {
        Some(Ok(r)) => r?,
        _ => return Err(CliError::input("opening the vault failed".into())),
    };
    let log = Arc::new(log);
    let audit: Arc<dyn Append> = log.clone();

    // Refusals are decisions too: each is audited before it is reported.
    let state = state_dir(&ctx.home);
    let refuse = |code: u8, kind: &str, message: String, policies: &[String]| -> Result<(), CliError> {
        let policies: Vec<&str> = policies.iter().map(String::as_str).collect();
        let e = Event::process_launch(now_ms(), &plan.agent, Some(&plan.tool), 0, &plan.program.to_string_lossy())
            .decision(airlock_audit::Decision::Deny, &policies)
            .set("process.cmd_line", json!(plan.argv.join(" ")))
            .set("unmapped.airlock.refused", json!(kind))
            .message(message.clone())
            .status(false);
        // The log closes (and signs its final checkpoint) when the last reference drops, on the way out.
        if let Err(e) = audit.append(e) {
            eprintln!("airlock: warning: the refusal could not be recorded in the audit log: {e}");
        }
        Err(CliError { code, message })
    };
    if let Some(l) = airlock_sandbox::supervisor::lockdown_status(&state).map_err(sandbox_err)? {
        let m = format!("Airlock is in lockdown ({}); `airlock lockdown --lift` ends it", l.reason);
        return refuse(9, "lockdown", m, &[]);
    }
    let decision = engine.decide(&Request::exec(&plan.agent, &plan.tool, &plan.program.to_string_lossy())).decision;
    if !decision.allowed {
        return refuse(9, "policy", format!("denied: {}", decision.reason), &decision.policies);
    }
    if let Some(m) = missing.iter().find(|m| !m.degradable) {
        let m = format!(
            "refusing to run: {} is not available here ({}), and without it there is no sandbox at all, so \
             --allow-degraded does not apply; fix: {}",
            m.feature, m.why, m.fix
        );
        return refuse(EXIT_DEGRADED, "degraded", m, &[]);
    }
    if !missing.is_empty() && !a.allow_degraded {
        let lines: Vec<String> =
            missing.iter().map(|m| format!("  - {}: {}; fix: {}", m.feature, m.why, m.fix)).collect();
        let m = format!(
            "refusing to run: this machine cannot enforce the policy\n{}\n(`airlock run --check` shows the full \
             matrix; --allow-degraded runs anyway, and says so in the audit log)",
            lines.join("\n")
        );
        return refuse(EXIT_DEGRADED, "degraded", m, &[]);
    }
    let registry = Registry::open(&state).map_err(sandbox_err)?;
    let depth = match plan.depth(&registry, &model) {
        Ok(d) => d,
        Err(e) if e.code == 9 => return refuse(9, "depth", e.message, &[]),
        Err(e) => return Err(e),
    };

    let run_id = match &a.run_id {
        // `airlock serve` names the runs it starts, so that it can report the id before the run ends.
        Some(id) if registry.get(id).map_err(sandbox_err)?.is_some() => {
            return Err(CliError { code: 5, message: format!("run {id} already exists") });
        }
        Some(id) => id.clone(),
        None => hex::encode(airlock_crypto::random::bytes::<8>()),
    };
    let dirs = RunDirs::create(&ctx.home, &run_id)?;
    let cgroup = if probe.cgroups.controller("memory").is_some() || probe.cgroups.controller("pids").is_some() {
        RunCgroup::create(&probe.cgroups, &run_id, &CgroupLimits { memory_bytes: plan.memory, pids: plan.pids }).ok()
    } else {
        None
    };
    let record = RunRecord {
        run: run_id.clone(),
        agent: plan.agent.clone(),
        tool: plan.tool.clone(),
        parent: a.parent.clone(),
        depth,
        supervisor_pid: std::process::id(),
        sandbox_pid: None,
        sandbox_start_ticks: None,
        cgroup: cgroup.as_ref().map(RunCgroup::paths).unwrap_or_default(),
        command: plan.argv.clone(),
        workspace: plan.workspace.clone(),
        started_unix_ms: jiff::Timestamp::now().as_millisecond().max(0) as u64,
        paused: false,
    };
    let guard = registry.register(&record).map_err(sandbox_err)?;
    let degraded: Vec<&str> = missing.iter().map(|m| m.feature).collect();
    let exe = std::env::current_exe().map_err(|e| CliError::input(format!("find the airlock binary: {e}")))?;
    let tool_spec = &model.tools[&plan.tool];

    // Stage 1 starts (and joins its cgroup, which can take milliseconds) while the broker is built; it waits for
    // its spec, so nothing runs inside until the broker is listening.
    // Stage 1 is started from this (the main) thread: its parent-death signal fires when the thread that forked
    // it exits, and this thread lives as long as the run.
    let (pending, prepared) = std::thread::scope(|s| {
        // The redaction rules compile meanwhile (tens of milliseconds); the vault's values join them below.
        let output_rules = s.spawn(|| crate::redact::tool_output_scanner(&ctx.home, &model.redact));
        let prepared = s.spawn(|| -> Result<_, CliError> {
            // The vault gives the CA and the surrogates; the broker gets the real values.
            let audit_trail = AuditTrail {
                log: Arc::clone(&audit),
                mac,
                record_allows: model.record_allows,
                fail_closed: model.fail_closed,
            };
            let policy = crate::supervise::Supervised::new(Arc::new(store), &ctx.home, Some(Arc::clone(&audit)));
            let backends = crate::backends::Backends::new(&model.file.backends, &crate::backends::config_dir(&config));
            let crate::proxy::ToolBroker { broker, tool_env, ca, redactor, .. } = crate::proxy::tool_broker(
                &mut vault,
                crate::proxy::BrokerInputs {
                    home: &ctx.home,
                    config: &config,
                    model: &model,
                    tool: &plan.tool,
                    backends: &backends,
                    policy: Arc::new(policy),
                    audit: audit_trail,
                    dns: &a.dns,
                    resolve: &a.resolve,
                    upstream_ca: &a.upstream_ca,
                    max_connections: None,
                    redact_rules: Box::new(|| match output_rules.join() {
                        Ok(r) => r,
                        Err(_) => {
                            Err(CliError { code: EXIT_SETUP, message: "compiling the redaction rules failed".into() })
                        }
                    }),
                },
            )?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| CliError::input(format!("start the runtime: {e}")))?;
            let ca_files = ca.as_ref().map(|_| crate::ca::files(&ctx.home));
            let spec = plan.spec(
                &model,
                tool_spec,
                &engine,
                &policy_paths(&config, &model),
                &dirs,
                ca_files.as_ref(),
                &tool_env,
                &run_id,
                &probe,
                cgroup.as_ref(),
            )?;
            Ok((runtime, broker, spec, redactor))
        });
        let pending = Pending::start(&exe, std::process::Stdio::inherit(), |pid| {
            if let Some(cg) = &cgroup {
                cg.add_pid(pid)?;
            }
            guard.update(|r| {
                r.sandbox_pid = Some(pid);
                r.sandbox_start_ticks = airlock_sandbox::supervisor::process_start_ticks(pid);
            })
        });
        let prepared = prepared
            .join()
            .unwrap_or_else(|_| Err(CliError { code: EXIT_SETUP, message: "preparing the broker failed".into() }));
        (pending, prepared)
    });
    drop(vault);
    let pending = pending.map_err(|e| CliError { code: EXIT_SETUP, message: format!("start the sandbox: {e}") });
    let cleanup = || {
        if let Some(cg) = &cgroup {
            let _ = cg.remove();
        }
        dirs.remove();
    };
    let (runtime, broker, spec, output_redactor) = match prepared {
        Ok(p) => p,
        Err(e) => {
            if let Ok(p) = pending {
                p.abandon();
            }
            cleanup();
            return Err(e);
        }
    };
    let pending = match pending {
        Ok(p) => p,
        Err(e) => {
            cleanup();
            return Err(e);
        }
    };
    let started = Instant::now();
    let wall_started = std::time::SystemTime::now();
    let mut sandbox =
        pending.send(&spec).map_err(|e| CliError { code: EXIT_SETUP, message: format!("start the sandbox: {e}") })?;
    // The init listens on 127.0.0.1:PORT inside the sandbox's network namespace and hands the socket over; the
    // broker accepts on it directly, so a connection on it can only come from this run, and no hop copies bytes.
    // Without it (the sandbox failed before handing it over), `wait` below reports why.
    match sandbox.take_listener() {
        Ok(Some(listener)) => {
            let principal = Principal::new(&plan.agent, &plan.tool, &run_id);
            let served = listener.set_nonblocking(true).and_then(|()| {
                let _guard = runtime.enter();
                tokio::net::TcpListener::from_std(listener)
            });
            match served {
                Ok(l) => {
                    runtime.spawn(async move { broker.serve_tcp(l, Attribution::Fixed(principal)).await });
                }
                Err(e) => {
                    sandbox.kill();
                    eprintln!("airlock: the broker could not take the sandbox's proxy listener: {e}");
                }
            }
        }
        Ok(None) => drop(broker),
        Err(e) => {
            sandbox.kill();
            eprintln!("airlock: {e}");
        }
    }
    let setup_ms = began.elapsed().as_millis() as u64;
    let sandbox_pid = sandbox.pid();
    let launch =
        Event::process_launch(now_ms(), &plan.agent, Some(&plan.tool), sandbox.pid(), &plan.program.to_string_lossy())
            .correlation(&run_id)
            .set("process.cmd_line", json!(plan.argv.join(" ")))
            .set(
                "unmapped.airlock.run",
                json!({"id": run_id, "parent": a.parent, "depth": depth, "workspace": plan.workspace}),
            )
            .set("unmapped.airlock.degraded", json!(degraded))
            .status(true);
    let launch = if degraded.is_empty() { launch } else { launch.severity(airlock_audit::event::Severity::High) };
    if let Err(e) = audit.append(launch) {
        sandbox.kill();
        let _ = sandbox.wait();
        return Err(CliError {
            code: 1,
            message: format!("the run could not be recorded in the audit log, so it was stopped: {e}"),
        });
    }

    // Supervision: output, the wall clock, and signals to us.
    let signaller = Arc::new(sandbox.signaller());
    let why: Arc<Mutex<Option<&'static str>>> = Arc::new(Mutex::new(None));
    // A lockdown engaged between the check at the top and now may have listed this run before it had a sandbox
    // to kill; from here on the record names the sandbox, so any later lockdown kills it.
    if !matches!(airlock_sandbox::supervisor::lockdown_status(&state), Ok(None)) {
        why.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert("lockdown");
        signaller.signal(libc::SIGKILL);
    }
    let stop =
        |reason: &'static str, signaller: &airlock_sandbox::launch::Signaller, why: &Mutex<Option<&'static str>>| {
            why.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(reason);
            signaller.signal(libc::SIGKILL);
        };
    let budget = Arc::new(OutputBudget::new(plan.output_bytes));
    let guard_profile = model.sandbox.guard_tool_output;
    // The guard reads stdout after the run, so it is kept even without --json.
    let collect = ctx.json || guard_profile != airlock_policy::config::GuardToolOutput::Off;
    let mut pumps = Vec::new();
    let mut sandbox = sandbox;
    let redacted: Arc<Mutex<Vec<(Stream, airlock_redact::Finding)>>> = Arc::default();
    let filter = |redactor: &Option<airlock_redact::Redactor>| -> Box<dyn OutputFilter> {
        match redactor {
            Some(r) => Box::new(crate::redact::RunOutputFilter::new(r.scanner(), r.style(), Arc::clone(&redacted))),
            None => Box::new(PassThrough),
        }
    };
    let stdout = sandbox.stdout.take().map(|p| (Stream::Stdout, std::os::fd::OwnedFd::from(p)));
    let stderr = sandbox.stderr.take().map(|p| (Stream::Stderr, std::os::fd::OwnedFd::from(p)));
    for (stream, pipe) in stdout.into_iter().chain(stderr) {
        let (budget, signaller, why) = (Arc::clone(&budget), Arc::clone(&signaller), Arc::clone(&why));
        let filter = filter(&output_redactor);
        pumps.push(std::thread::spawn(move || {
            pump(stream, std::fs::File::from(pipe), filter, &budget, collect, || stop("output_limit", &signaller, &why))
        }));
    }
    let finished = Arc::new(AtomicBool::new(false));
    if let Some(wall) = plan.wall {
        let (signaller, why, finished) = (Arc::clone(&signaller), Arc::clone(&why), Arc::clone(&finished));
        std::thread::spawn(move || {
            let deadline = Instant::now() + wall;
            while !finished.load(Ordering::SeqCst) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    stop("timeout", &signaller, &why);
                    return;
                }
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
        });
    }
    {
        let (signaller, why) = (Arc::clone(&signaller), Arc::clone(&why));
        runtime.spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
                (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
            else {
                return;
            };
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {}, _ = hup.recv() => {} }
            why.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert("interrupted");
            signaller.signal(libc::SIGTERM);
            tokio::time::sleep(airlock_sandbox::launch::DEFAULT_GRACE).await;
            signaller.signal(libc::SIGKILL);
        });
    }

    let ended = sandbox.wait().map_err(sandbox_err);
    finished.store(true, Ordering::SeqCst);
    let writable_ws = spec.binds.iter().any(|b| b.writable && b.path == plan.workspace);
    let (git_changed, git_checked) =
        if writable_ws { git_changes(&plan.workspace, wall_started) } else { (Vec::new(), true) };
    let outputs: Vec<Vec<u8>> = pumps.into_iter().map(|p| p.join().unwrap_or_default()).collect();
    let usage = cgroup.as_ref().map(RunCgroup::usage);
    if let Some(cg) = &cgroup {
        let _ = cg.kill_all();
        let _ = cg.remove();
    }
    drop(guard);
    dirs.remove();
    runtime.shutdown_timeout(Duration::from_millis(200));
    let ended = ended?;
    // Why the run ended: what the supervisor did, else what the kernel did, else how the tool itself ended.
    let oom = usage.as_ref().and_then(|u| u.oom_kills).unwrap_or(0) > 0;
    let reason: &str = match *why.lock().unwrap_or_else(|p| p.into_inner()) {
        Some(r) => r,
        None if oom => "memory_limit",
        None if ended.error.is_some() => "setup_failed",
        None if ended.killed => "killed",
        None if ended.code.is_some() => "exited",
        None => "signaled",
    };
    let elapsed = started.elapsed();
    let killed_by = (!matches!(reason, "exited" | "signaled")).then_some(reason);
    let exit = Event::process_exit(now_ms(), &plan.agent, sandbox_pid, ended.code, killed_by)
        .correlation(&run_id)
        .set(
            "unmapped.airlock.run",
            json!({"id": run_id, "tool": plan.tool, "signal": ended.signal, "error": ended.error,
            "duration_ms": elapsed.as_millis() as u64, "usage": ended.usage, "output_bytes": budget.used()}),
        )
        .status(ended.code == Some(0));
    let mut recorded = audit.append(exit).map(drop);
    if !git_changed.is_empty() || !git_checked {
        let paths: Vec<String> = git_changed.iter().map(|p| p.display().to_string()).collect();
        let finding = Event::finding(
            now_ms(),
            &format!("{run_id}-git"),
            "a sandboxed run created or changed git metadata in its workspace",
            &["git-metadata"],
            airlock_audit::event::Severity::High,
        )
        .correlation(&run_id)
        .actor(&plan.agent, Some(&plan.tool))
        .set("unmapped.airlock.git", json!({"paths": paths, "fully_checked": git_checked}));
        recorded = recorded.and(audit.append(finding).map(drop));
        for p in &paths {
            eprintln!(
                "airlock: warning: run {run_id} created or changed git metadata at {p}: its config and hooks were \
                 written by the tool and run commands on this machine when you use git there; inspect them first"
            );
        }
        if !git_checked {
            eprintln!("airlock: warning: run {run_id}: the workspace is too large to check for new git metadata");
        }
    }
    let guarded = crate::guard::tool_output(guard_profile, outputs.first().map(Vec::as_slice).unwrap_or_default());
    if let Some(g) = &guarded
        && let Some(finding) = crate::guard::tool_output_finding(g, &run_id, &plan.agent, &plan.tool)
    {
        recorded = recorded.and(audit.append(finding).map(drop));
        if !ctx.json {
            eprintln!(
                "airlock: run {run_id}: the tool's output looks like a prompt injection ({}, risk {:.2}); treat it \
                 as data, not instructions",
                g["verdict"].as_str().unwrap_or("flag"),
                g["risk"].as_f64().unwrap_or(0.0)
            );
        }
    }
    let redacted = std::mem::take(&mut *redacted.lock().unwrap_or_else(|p| p.into_inner()));
    let (redaction_events, redactions) = crate::redact::run_findings(&run_id, &plan.agent, &plan.tool, &redacted);
    for event in redaction_events {
        recorded = recorded.and(audit.append(event).map(drop));
    }
    if !redacted.is_empty() && !ctx.json {
        eprintln!("airlock: run {run_id}: masked {} secret(s) or personal data in the tool's output", redacted.len());
    }
    let closed = match Arc::try_unwrap(log) {
        Ok(log) => log.close().map_err(|e| e.to_string()),
        Err(_) => Ok(()),
    };
    let timing = Timing { setup_ms, run_ms: elapsed.as_millis() as u64 };
    let extra = json!({"git_changes": git_changed, "git_fully_checked": git_checked, "redactions": redactions,
        "guard": guarded});
    report(ctx, &plan, &run_id, &ended, reason, timing, &budget, &outputs, &degraded, usage.as_ref(), extra);
    if let Err(e) = recorded.map_err(|e| e.to_string()).and(closed) {
        eprintln!("airlock: warning: the run's end could not be recorded in the audit log: {e}");
    }
    if let Some(e) = &ended.error {
        return Err(CliError { code: EXIT_SETUP, message: format!("the sandbox could not run the command: {e}") });
    }
    let code = match (ended.code, ended.signal) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => ended.sandbox_status,
    };
    if code == 0 {
        return Ok(());
    }
    // The tool's own status, already reported by the tool itself: an empty message prints nothing more.
    Err(CliError { code: code.clamp(1, 255) as u8, message: String::new() })
}

/// The vault, unlocked, with the shared audit log and the key that hides sensitive fields in it.
fn open_vault_and_log(ctx: &Ctx) -> Result<(airlock_vault::Vault, airlock_audit::SharedLog, AuditMac), CliError> {
    let mut vault = ctx.open_unlocked()?;
    let log = crate::audit::shared_log(&ctx.home, &mut vault)?;
    let mac = AuditMac::new(vault.subkey(labels::AUDIT_MAC)?);
    Ok((vault, log, mac))
}

fn load_policy(ctx: &Ctx, a: &RunArgs) -> Result<(PathBuf, PolicyStore), CliError> {
    let config = crate::policy::config_path(a.config.clone(), &ctx.home)?;
    let store = PolicyStore::open(&config, crate::policy::load_options(&a.env)?)
        .map_err(|e| CliError { code: 4, message: format!("{}: {e}", config.display()) })?;
    Ok((config, store))
}

/// How long the tool must be quiet before output the filter holds back is released.
pub(crate) const IDLE_FLUSH: Duration = Duration::from_millis(100);

/// Whether `pipe` has data (or its end) within `wait`.
pub(crate) fn readable_within(pipe: &impl std::os::fd::AsFd, wait: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(wait.as_millis() as i32).unwrap_or(PollTimeout::MAX);
    loop {
        match poll(&mut fds, timeout) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true, // let the read report it
        }
    }
}

/// Copies one output stream to ours (or into the run record) through the filter and the output limit.
fn pump(
    stream: Stream,
    mut pipe: impl Read + std::os::fd::AsFd,
    mut filter: Box<dyn OutputFilter>,
    budget: &OutputBudget,
    collect: bool,
    on_flood: impl Fn(),
) -> Vec<u8> {
    let mut buf = vec![0u8; 64 << 10];
    let mut shown = Vec::new();
    let mut kept = Vec::new();
    let mut flooded = false;
    let emit = |bytes: &[u8], kept: &mut Vec<u8>| {
        if collect {
            kept.extend_from_slice(bytes);
        } else {
            let _ = match stream {
                Stream::Stdout => std::io::stdout().lock().write_all(bytes),
                Stream::Stderr => std::io::stderr().lock().write_all(bytes),
            };
        }
    };
    loop {
        // Output held back by the filter (a secret may be split across reads) is released when the tool goes
        // quiet, so a prompt or a progress line still reaches the caller.
        if !flooded && filter.held() > 0 && !readable_within(&pipe, IDLE_FLUSH) {
            shown.clear();
            filter.flush(stream, &mut shown);
            emit(&shown, &mut kept);
            continue;
        }
        let n = match pipe.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if flooded {
            continue; // drain until the sandbox is gone, showing nothing more
        }
        let allowed = budget.take(n);
        shown.clear();
        filter.filter(stream, &buf[..allowed], &mut shown);
        emit(&shown, &mut kept);
        if allowed < n {
            flooded = true;
            on_flood();
        }
    }
    shown.clear();
    filter.finish(stream, &mut shown);
    emit(&shown, &mut kept);
    kept
}

#[allow(clippy::too_many_arguments)]
fn report(
    ctx: &Ctx,
    plan: &Plan,
    run_id: &str,
    ended: &Ended,
    reason: &str,
    timing: Timing,
    budget: &OutputBudget,
    outputs: &[Vec<u8>],
    degraded: &[&str],
    usage: Option<&airlock_sandbox::cgroup::CgroupUsage>,
    extra: serde_json::Value,
) {
    if ctx.json {
        let text = |i: usize| outputs.get(i).map(|o| String::from_utf8_lossy(o).into_owned()).unwrap_or_default();
        let v = json!({
            "run": run_id,
            "agent": plan.agent,
            "tool": plan.tool,
            "command": plan.argv,
            "exit_code": ended.code,
            "signal": ended.signal,
            "reason": reason,
            "error": ended.error,
            "duration_ms": timing.run_ms,
            "setup_ms": timing.setup_ms,
            "landlock": ended.landlock,
            "usage": ended.usage,
            "memory_peak_bytes": usage.and_then(|u| u.memory_peak_bytes),
            "output_bytes": budget.used(),
            "output_truncated": budget.exceeded(),
            "degraded": degraded,
            "stdout": text(0),
            "stderr": text(1),
            "git_changes": extra["git_changes"],
            "git_fully_checked": extra["git_fully_checked"],
            "redactions": extra["redactions"],
            "guard": extra["guard"],
        });
        println!("{v}");
    } else if !matches!(reason, "exited" | "signaled" | "setup_failed") {
        let what = match reason {
            "timeout" => {
                format!("ran past its wall-clock limit of {}s and was killed", plan.wall.map_or(0, |w| w.as_secs()))
            }
            "output_limit" => format!("wrote more than its output limit of {} bytes and was killed", plan.output_bytes),
            "memory_limit" => "hit its memory limit and was killed".to_string(),
            "interrupted" => "was interrupted".to_string(),
            other => format!("ended: {other}"),
        };
        eprintln!("airlock: run {run_id} {what}");
    }
}

/// Where a run's time went: the supervisor's own setup (policy, vault, audit log, broker), then the run itself
/// (sandbox setup, the tool, teardown).
#[derive(Clone, Copy)]
struct Timing {
    setup_ms: u64,
    run_ms: u64,
}

pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn sandbox_err(e: airlock_sandbox::SandboxError) -> CliError {
    CliError::input(e.to_string())
}

/// A protection the policy needs that this machine does not offer.
pub struct Missing {
    pub feature: &'static str,
    pub why: String,
    pub fix: String,
    /// `--allow-degraded` may run without it. Namespaces may not: without them nothing is confined.
    pub degradable: bool,
}

/// What the run will be, decided before anything starts.
struct Plan {
    agent: String,
    tool: String,
    program: PathBuf,
    argv: Vec<String>,
    workspace: PathBuf,
    memory: Option<u64>,
    pids: Option<u64>,
    cpu_seconds: Option<u64>,
    open_files: Option<u64>,
    wall: Option<Duration>,
    output_bytes: u64,
    parent: Option<String>,
}

impl Plan {
    fn new(model: &Model, a: &RunArgs) -> Result<Plan, CliError> {
        let agent = match (&a.agent, std::env::var("AIRLOCK_AGENT").ok().filter(|s| !s.is_empty())) {
            (Some(x), _) => x.clone(),
            (None, Some(x)) => x,
            (None, None) if model.agents.len() == 1 => model.agents.keys().next().cloned().unwrap_or_default(),
            (None, None) => {
                return Err(CliError::usage("which agent is this? pass --agent (or set AIRLOCK_AGENT)".into()));
            }
        };
        if !model.agents.contains_key(&agent) {
            return Err(CliError::input(format!("agent {agent:?} is not in the config")));
        }
        let argv: Vec<String> = a
            .command
            .iter()
            .map(|s| s.clone().into_string().map_err(|_| CliError::input("the command line is not valid UTF-8".into())))
            .collect::<Result<_, _>>()?;
        let name = argv.first().map(|c| c.rsplit('/').next().unwrap_or(c).to_string()).unwrap_or_default();
        let tool = match &a.tool {
            Some(t) => t.clone(),
            None if model.tools.contains_key(&name) => name,
            None if model.tools.len() == 1 => model.tools.keys().next().cloned().unwrap_or_default(),
            None => return Err(CliError::usage("which tool is this? pass --tool".into())),
        };
        let Some(spec) = model.tools.get(&tool) else {
            return Err(CliError::input(format!("tool {tool:?} is not in the config")));
        };
        let workspace = PathBuf::from(&model.workspace);
        let program = if a.check && argv.is_empty() {
            PathBuf::new()
        } else {
            let first = a
                .command
                .first()
                .ok_or_else(|| CliError::usage("no command: airlock run [OPTIONS] -- CMD [ARGS...]".into()))?;
            resolve_program(first, &model.search_path)?
        };
        let l = &spec.limits;
        Ok(Plan {
            agent,
            tool,
            program,
            argv,
            workspace,
            memory: l.memory.map(|s| s.0),
            pids: l.pids,
            cpu_seconds: l.cpu_seconds,
            open_files: l.open_files,
            wall: l.wall_seconds.map(Duration::from_secs),
            output_bytes: l.output_bytes.map_or(16 << 20, |s| s.0),
            parent: a.parent.clone(),
        })
    }

    /// What the policy needs that the kernel lacks.
    fn missing(&self, p: &Probe) -> Vec<Missing> {
        let mut out = Vec::new();
        let mut need = |feature: &'static str, s: &Support, degradable: bool| {
            if let Support::Missing { why, fix } = s {
                let fix = fix.clone().unwrap_or_else(|| "none known".into());
                out.push(Missing { feature, why: why.clone(), fix, degradable });
            }
        };
        need("user namespaces", &p.namespaces.user, false);
        need("namespaces", &p.namespaces.all, false);
        need("landlock", &p.landlock.support, true);
        need("seccomp", &p.seccomp.filter, true);
        if self.memory.is_some() && !p.cgroups.controller("memory").is_some_and(|c| c.support.is_available()) {
            out.push(Missing {
                feature: "cgroup memory",
                why: "no writable cgroup with the memory controller; only the address-space rlimit bounds memory"
                    .into(),
                fix: "run under a delegated cgroup (systemd-run --user --scope -p Delegate=yes airlock run ...)".into(),
                degradable: true,
            });
        }
        if self.pids.is_some() && !p.cgroups.controller("pids").is_some_and(|c| c.support.is_available()) {
            out.push(Missing {
                feature: "cgroup pids",
                why:
                    "no writable cgroup with the pids controller; only RLIMIT_NPROC bounds processes (and not for root)"
                        .into(),
                fix: "run under a delegated cgroup (systemd-run --user --scope -p Delegate=yes airlock run ...)".into(),
                degradable: true,
            });
        }
        out
    }

    /// The run's depth below its root run; refused past the root agent's `max_depth` (or [`MAX_DEPTH`]).
    fn depth(&self, registry: &Registry, model: &Model) -> Result<u32, CliError> {
        let Some(parent) = &self.parent else { return Ok(0) };
        let Some(mut rec) = registry.get(parent).map_err(sandbox_err)? else {
            return Err(CliError::input(format!("parent run {parent} is not running")));
        };
        let depth = rec.depth + 1;
        while let Some(p) = rec.parent.clone() {
            match registry.get(&p).map_err(sandbox_err)? {
                Some(r) => rec = r,
                None => break,
            }
        }
        let limit = model
            .file
            .agents
            .iter()
            .find(|(k, _)| k.get_ref() == &rec.agent)
            .and_then(|(_, a)| a.max_depth)
            .unwrap_or(MAX_DEPTH);
        if depth > limit {
            return Err(CliError {
                code: 9,
                message: format!("denied: run depth {depth} is past the limit of {limit} below agent {}", rec.agent),
            });
        }
        Ok(depth)
    }

    #[allow(clippy::too_many_arguments)]
    fn spec(
        &self,
        model: &Model,
        tool: &ToolSpec,
        engine: &airlock_policy::Engine,
        policy_paths: &[PathBuf],
        dirs: &RunDirs,
        ca: Option<&crate::ca::CaFiles>,
        tool_env: &[crate::proxy::ToolEnv],
        run_id: &str,
        probe: &Probe,
        cgroup: Option<&RunCgroup>,
    ) -> Result<SandboxSpec, CliError> {
        // What the tool may do with a path is the policy engine's decision (its lists, masks, deny paths, credential
        // stores, profile and user policies alike); the sandbox only makes that decision physical.
        let allows = |action: Action, path: &Path| {
            path.to_str()
                .is_some_and(|p| engine.decide(&Request::fs(&self.agent, &self.tool, action, p)).decision.allowed)
        };
        let mut binds: Vec<Bind> = SYSTEM.iter().chain(["/etc"].iter()).map(|p| ro(p)).collect();
        let mut read =
            vec![PathBuf::from("/etc"), PathBuf::from("/proc"), PathBuf::from(RUN_DIR), PathBuf::from("/dev")];
        let mut read_exec: Vec<PathBuf> = SYSTEM.iter().map(PathBuf::from).collect();
        let mut write = vec![PathBuf::from("/tmp"), PathBuf::from("/dev/shm")];
        let mut write_exec = Vec::new();

        // The workspace and every path the tool's lists name, with the strongest access they grant.
        let mut user_paths: Vec<PathBuf> = vec![self.workspace.clone()];
        for l in [&tool.fs_read, &tool.fs_write, &tool.fs_exec] {
            for p in &l.allow {
                if let FsPattern::Subtree(s) = &p.value {
                    user_paths.push(PathBuf::from(s));
                }
            }
        }
        user_paths.sort();
        user_paths.dedup();
        let mut visible: Vec<PathBuf> = Vec::new();
        for p in user_paths {
            let Ok(canon) = p.canonicalize() else { continue };
            if canon == Path::new("/") || canon.starts_with(&dirs.base) {
                continue;
            }
            let (w, x, r) =
                (allows(Action::FsWrite, &canon), allows(Action::FsExec, &canon), allows(Action::FsRead, &canon));
            if !(w || x || r) {
                continue;
            }
            if SYSTEM.iter().any(|s| canon.starts_with(s)) && !w {
                continue; // already visible read-only and executable
            }
            binds.push(Bind { path: canon.clone(), writable: w, device: false });
            match (w, x) {
                (true, true) => write_exec.push(canon.clone()),
                (true, false) => write.push(canon.clone()),
                (false, true) => read_exec.push(canon.clone()),
                (false, false) => read.push(canon.clone()),
            }
            visible.push(canon);
        }
        for d in DEVICES {
            binds.push(Bind { path: PathBuf::from(d), writable: true, device: true });
        }
        let cwd = if visible.contains(&self.workspace) { self.workspace.clone() } else { PathBuf::from("/tmp") };

        // Masks: host secrets, deny lists and `!` masks, the Airlock home, denied programs, and git's hooks.
        let mut masks: Vec<PathBuf> = HOST_MASKED.iter().map(PathBuf::from).collect();
        if let Ok(entries) = std::fs::read_dir("/etc/ssh") {
            for e in entries.flatten() {
                let name = e.file_name();
                let n = name.to_string_lossy();
                if n.starts_with("ssh_host_") && n.ends_with("_key") {
                    masks.push(e.path());
                }
            }
        }
        if let Ok(home) = dirs.home.canonicalize() {
            masks.push(home);
        }
        for p in model.exec_deny.iter().chain(&tool.exec_deny) {
            if let Some(r) = &p.value.resolved {
                masks.push(PathBuf::from(r));
            }
        }
        let deny: Vec<&FsPattern> = model
            .fs_deny
            .iter()
            .chain(&tool.fs_deny)
            .chain(&tool.fs_read.mask)
            .chain(&tool.fs_write.mask)
            .chain(&tool.fs_exec.mask)
            .map(|a| &a.value)
            .collect();
        masks.extend(expand_denies(&deny, &visible)?);
        let mut read_only = Vec::new();
        let mut pinned = Vec::new();
        let writable_ws = binds.iter().any(|b| b.path == self.workspace && b.writable);
        if visible.contains(&self.workspace) {
            let git = self.workspace.join(".git");
            match std::fs::symlink_metadata(&git) {
                Ok(m) if m.is_dir() => {
                    // `.git` becomes a mount point, so it cannot be renamed away and replaced by a copy with hooks.
                    pinned.push(git.clone());
                    protect_git_dir(&git, writable_ws, &mut masks, &mut read_only);
                    for module in git_module_dirs(&git.join("modules")) {
                        protect_git_dir(&module, writable_ws, &mut masks, &mut read_only);
                    }
                }
                // A worktree's or submodule's `gitdir:` pointer: rewritten, it would send git to a tool-made repo.
                Ok(_) => read_only.push(git),
                Err(_) => {}
            }
        }
        // The policy this run is judged by must not be rewritable by the run (a workspace often holds airlock.toml).
        read_only.extend(policy_paths.iter().cloned());
        masks.sort();
        masks.dedup();

        // The environment, from nothing.
        let mut env: Vec<EnvVar> = Vec::new();
        let allow: Vec<String> = model.sandbox.env.iter().chain(&tool.env).cloned().collect();
        for (k, v) in std::env::vars_os() {
            let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else { continue };
            if airlock_policy::model::env_allowed(&allow, k) {
                env.push(EnvVar::new(k, v));
            }
        }
        let port = model.sandbox.forward_port;
        let proxy = format!("http://127.0.0.1:{port}");
        for k in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
            env.push(EnvVar::new(k, proxy.as_str()));
        }
        env.push(EnvVar::new("NO_PROXY", ""));
        env.push(EnvVar::new("no_proxy", ""));
        env.push(EnvVar::new("NODE_USE_ENV_PROXY", "1"));
        env.push(EnvVar::new("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"));
        env.push(EnvVar::new("HOME", "/tmp"));
        env.push(EnvVar::new("TMPDIR", "/tmp"));
        env.push(EnvVar::new("AIRLOCK_RUN", run_id));
        env.push(EnvVar::new("AIRLOCK_AGENT", self.agent.as_str()));
        env.push(EnvVar::new("AIRLOCK_TOOL", self.tool.as_str()));
        let mut ca_cert = None;
        if let Some(ca) = ca {
            let cert = std::fs::read_to_string(&ca.cert)
                .map_err(|e| CliError::input(format!("read the CA certificate {}: {e}", ca.cert.display())))?;
            ca_cert = Some(cert);
            for k in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"] {
                env.push(EnvVar::new(k, CA_BUNDLE));
            }
            env.push(EnvVar::new("NODE_EXTRA_CA_CERTS", CA_CERT));
        }
        for t in tool_env {
            env.retain(|e| e.name != t.name);
            env.push(EnvVar::new(t.name.as_str(), t.value.as_str()));
        }

        let memory_cgroup = cgroup.is_some_and(RunCgroup::enforces_memory);
        let address_space = self.memory.map(|m| if memory_cgroup { m.saturating_mul(4).max(8 << 30) } else { m });
        let rlimits = Rlimits {
            address_space,
            cpu_seconds: self.cpu_seconds,
            processes: self.pids,
            open_files: self.open_files,
            file_size: Some(FILE_SIZE),
        };
        let landlock = matches!(probe.landlock.support, Support::Available).then(|| LandlockPlan {
            fs: FsRules { read, read_exec, write, write_exec, devices: DEVICES.iter().map(PathBuf::from).collect() },
            tcp_connect_ports: vec![port],
            scope: true,
        });
        Ok(SandboxSpec {
            program: self.program.clone(),
            argv: self.argv.clone(),
            cwd,
            env,
            root_dir: dirs.root.clone(),
            binds,
            masks,
            read_only,
            pinned,
            files: Vec::new(),
            ca_cert,
            proxy_listener: true,
            forward_port: port,
            hostname: "airlock".into(),
            tmp_bytes: self.memory.map_or(512 << 20, |m| m.min(1 << 30)),
            landlock,
            seccomp: matches!(probe.seccomp.filter, Support::Available),
            rlimits,
        })
    }
}

/// Hides a git directory's hooks (creating the directory first when the tool could otherwise create it) and makes
/// its config read-only: both run commands on the host the next time someone uses git there (`core.hooksPath`,
/// `core.fsmonitor`, aliases, filters).
fn protect_git_dir(git: &Path, writable: bool, masks: &mut Vec<PathBuf>, read_only: &mut Vec<PathBuf>) {
    let hooks = git.join("hooks");
    if !hooks.exists() && writable {
        let _ = std::fs::create_dir(&hooks);
    }
    masks.push(hooks);
    read_only.push(git.join("config"));
}

/// Submodules' git directories under `.git/modules` (they nest), bounded.
fn git_module_dirs(modules: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![modules.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            if out.len() >= 1000 {
                return out;
            }
            let path = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if path.join("config").is_file() {
                stack.push(path.join("modules"));
                out.push(path);
            } else {
                stack.push(path);
            }
        }
    }
    out
}

/// The config file and the Cedar files (or, for a glob, their directory) the policy was read from.
fn policy_paths(config: &Path, model: &Model) -> Vec<PathBuf> {
    let Ok(config) = config.canonicalize() else { return Vec::new() };
    let base = config.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut out = vec![config];
    for entry in &model.file.policy_files {
        let written = entry.get_ref();
        let full = base.join(written);
        let path = if written.contains(['*', '?', '[', '{']) {
            // The literal directory above the first wildcard: nothing new may appear in it either.
            let literal: PathBuf = full
                .components()
                .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[', '{']))
                .collect();
            literal
        } else {
            full
        };
        if let Ok(p) = path.canonicalize() {
            out.push(p);
        }
    }
    out
}

/// Git metadata created or changed during the run anywhere in the workspace: a new repository's config or hooks, a
/// rewritten `gitdir:` pointer. The run's own repository is protected outright; a repository the tool makes is not
/// (nothing in the kernel can refuse a directory by name), so it is found and reported instead. Judged by ctime,
/// which a tool cannot set back.
fn git_changes(workspace: &Path, since: std::time::SystemTime) -> (Vec<PathBuf>, bool) {
    use std::os::unix::fs::MetadataExt;
    let since = since.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
    let changed = |p: &Path| {
        std::fs::symlink_metadata(p)
            .is_ok_and(|m| i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()) >= since)
    };
    let mut found = Vec::new();
    let mut seen = 0usize;
    let mut stack = vec![workspace.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            seen += 1;
            if seen > MAX_WALK {
                return (found, false);
            }
            let path = e.path();
            let Ok(t) = e.file_type() else { continue };
            if e.file_name() == ".git" {
                let hooks_changed = std::fs::read_dir(path.join("hooks"))
                    .map(|rd| rd.flatten().any(|h| changed(&h.path())))
                    .unwrap_or(false);
                if (t.is_file() && changed(&path)) || changed(&path.join("config")) || hooks_changed {
                    found.push(path);
                }
            } else if t.is_dir() {
                stack.push(path);
            }
        }
    }
    (found, true)
}

fn ro(p: &str) -> Bind {
    Bind { path: PathBuf::from(p), writable: false, device: false }
}

/// The paths under `visible` that a deny glob covers (subtrees are used as they are). Walks are bounded: a tree too
/// large to check is refused rather than shown unmasked.
fn expand_denies(deny: &[&FsPattern], visible: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    let mut globs = Vec::new();
    for d in deny {
        match d {
            FsPattern::Subtree(s) => out.push(PathBuf::from(s)),
            FsPattern::Glob(_) => globs.push(*d),
        }
    }
    if globs.is_empty() {
        return Ok(out);
    }
    // Compiled once: a glob on a deny list also covers everything below what it matches (as the policy reads it).
    let mut set = globset::GlobSetBuilder::new();
    for g in &globs {
        for text in [g.text().to_string(), format!("{}/**", g.text())] {
            let glob = globset::GlobBuilder::new(&text)
                .literal_separator(true)
                .build()
                .map_err(|e| CliError::input(format!("deny glob {}: {e}", g.text())))?;
            set.add(glob);
        }
    }
    let set = set.build().map_err(|e| CliError::input(format!("deny globs: {e}")))?;
    let mut seen = 0usize;
    let mut stack: Vec<PathBuf> = visible.to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            seen += 1;
            if seen > MAX_WALK {
                return Err(CliError::input(format!(
                    "the deny globs would have to be checked against more than {MAX_WALK} files under {}; narrow the \
                     workspace or the globs",
                    visible.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                )));
            }
            let path = e.path();
            let text = path.to_string_lossy();
            if set.is_match(text.as_ref()) {
                out.push(path);
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    Ok(out)
}

/// Finds the program the way the policy does: a path as written (made absolute), or a bare name on the search path.
fn resolve_program(cmd: &OsString, search: &[PathBuf]) -> Result<PathBuf, CliError> {
    let bytes = cmd.as_bytes();
    let found = if bytes.contains(&b'/') {
        let p = PathBuf::from(cmd);
        Some(if p.is_absolute() { p } else { std::env::current_dir().unwrap_or_default().join(p) })
    } else {
        let default: Vec<PathBuf> = ["/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin", "/sbin"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let dirs = if search.is_empty() { &default[..] } else { search };
        dirs.iter().map(|d| d.join(cmd)).find(|p| p.is_file())
    };
    let Some(p) = found else {
        return Err(CliError { code: 4, message: format!("command not found: {}", cmd.to_string_lossy()) });
    };
    p.canonicalize().map_err(|e| CliError { code: 4, message: format!("command {}: {e}", p.display()) })
}

/// The run's private host directory: the empty root the sandbox mounts over.
struct RunDirs {
    base: PathBuf,
    root: PathBuf,
    home: PathBuf,
}

impl RunDirs {
    fn create(home: &Path, run_id: &str) -> Result<RunDirs, CliError> {
        use std::os::unix::fs::DirBuilderExt;
        let sandboxes = home.join("sandboxes");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&sandboxes)
            .map_err(|e| CliError::input(format!("create {}: {e}", sandboxes.display())))?;
        let base = sandboxes.join(run_id);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&base)
            .map_err(|e| CliError::input(format!("create {}: {e}", base.display())))?;
        let root = base.join("root");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&root)
            .map_err(|e| CliError::input(format!("create {}: {e}", root.display())))?;
        Ok(RunDirs { root, base, home: home.to_path_buf() })
    }

    fn remove(&self) {
        let _ = std::fs::remove_dir(&self.root);
        let _ = std::fs::remove_dir(&self.base);
    }
}

/// `airlock run --check`: the matrix, then what this policy needs.
fn check(ctx: &Ctx, probe: &Probe, plan: &Plan, missing: &[Missing]) -> Result<(), CliError> {
    if ctx.json {
        let v = json!({
            "probe": probe,
            "agent": plan.agent,
            "tool": plan.tool,
            "can_run": missing.is_empty(),
            "missing": missing.iter().map(|m| json!({"feature": m.feature, "why": m.why, "fix": m.fix})).collect::<Vec<_>>(),
        });
        println!("{v}");
    } else {
        print!("{probe}");
        println!();
        if missing.is_empty() {
            println!("tool {} for agent {}: every protection the policy needs is available", plan.tool, plan.agent);
        } else {
            println!("tool {} for agent {}: missing", plan.tool, plan.agent);
            for m in missing {
                println!("  - {}: {}; fix: {}", m.feature, m.why, m.fix);
            }
        }
    }
    if missing.is_empty() { Ok(()) } else { Err(CliError { code: EXIT_DEGRADED, message: String::new() }) }
}
