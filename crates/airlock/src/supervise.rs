//! `airlock ps`, `kill`, `pause`, `resume` and `lockdown`: acting on runs that other `airlock run` processes own.
//!
//! The run registry (`$AIRLOCK_HOME/runs`) is how separate processes find each other's runs; the sandbox crate
//! holds the mechanisms (pidfd signals, cgroup freezer and kill). Every action is audited with the run's id as the
//! correlation id, so a run's whole story (launch, pause, kill, exit) reads as one thread in the log.

use std::time::Duration;

use airlock_audit::event::{Severity, activity};
use airlock_audit::{Append, Event};
use airlock_sandbox::supervisor::{KillResult, Lockdown, Registry, RunRecord};
use serde_json::json;

use crate::CliError;
use crate::cli::{KillArgs, LockdownArgs, SelectRuns};
use crate::commands::Ctx;
use crate::run::state_dir;

fn registry(ctx: &Ctx) -> Result<Registry, CliError> {
    Registry::open(&state_dir(&ctx.home)).map_err(|e| CliError::input(e.to_string()))
}

fn user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into())
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The runs a command names: ids, `--agent`, or `--all`. Unknown ids are an error, not silently skipped.
fn select(reg: &Registry, s: &SelectRuns) -> Result<Vec<RunRecord>, CliError> {
    let all = reg.list().map_err(|e| CliError::input(e.to_string()))?;
    if s.all {
        return Ok(all);
    }
    if let Some(agent) = &s.agent {
        return Ok(all.into_iter().filter(|r| &r.agent == agent).collect());
    }
    if s.runs.is_empty() {
        return Err(CliError::usage("name runs (as `airlock ps` shows them), or pass --agent A or --all".into()));
    }
    s.runs
        .iter()
        .map(|id| {
            all.iter()
                .find(|r| &r.run == id)
                .cloned()
                .ok_or_else(|| CliError { code: 4, message: format!("no running run {id}") })
        })
        .collect()
}

/// Opens the shared audit log for a supervisor action.
fn audit_log(ctx: &Ctx) -> Result<airlock_audit::SharedLog, CliError> {
    let mut vault = ctx.open_unlocked()?;
    crate::audit::shared_log(&ctx.home, &mut vault)
}

fn action_event(verb: &str, r: &RunRecord, message: String) -> Event {
    Event::new(airlock_audit::event::Class::ProcessActivity, activity_for(verb), now_ms())
        .correlation(&r.run)
        .actor(&r.agent, Some(&r.tool))
        .set("process.pid", json!(r.sandbox_pid))
        .set("unmapped.airlock.supervisor", json!({"action": verb, "run": r.run, "by": user()}))
        .message(message)
}

/// OCSF Process Activity ids: Terminate for a kill; Other (99) for pause and resume.
fn activity_for(verb: &str) -> u8 {
    match verb {
        "kill" => activity::TERMINATE,
        _ => 99,
    }
}

pub fn ps(ctx: &Ctx) -> Result<(), CliError> {
    let reg = registry(ctx)?;
    let tree = reg.tree().map_err(|e| CliError::input(e.to_string()))?;
    let lockdown = airlock_sandbox::supervisor::lockdown_status(&state_dir(&ctx.home))
        .map_err(|e| CliError::input(e.to_string()))?;
    if ctx.json {
        let runs: Vec<_> = tree.iter().map(|(r, _)| r).collect();
        println!("{}", json!({"runs": runs, "lockdown": lockdown}));
        return Ok(());
    }
    if let Some(l) = &lockdown {
        println!("LOCKDOWN since {} ({})", crate::audit::format_ms(l.since_unix_ms as i64), l.reason);
    }
    if tree.is_empty() {
        println!("no runs");
        return Ok(());
    }
    let now = now_ms().max(0) as u64;
    println!("{:<20} {:<8} {:<14} {:<14} {:>8} {:>7}  COMMAND", "RUN", "STATE", "AGENT", "TOOL", "PID", "AGE");
    for (r, indent) in &tree {
        let age = now.saturating_sub(r.started_unix_ms) / 1000;
        println!(
            "{:<20} {:<8} {:<14} {:<14} {:>8} {:>6}s  {}",
            format!("{}{}", "  ".repeat(*indent), r.run),
            if r.paused { "paused" } else { "running" },
            r.agent,
            r.tool,
            r.sandbox_pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            age,
            r.command.join(" ")
        );
    }
    Ok(())
}

pub fn kill(ctx: &Ctx, a: KillArgs) -> Result<(), CliError> {
    let grace =
        airlock_policy::config::Interval::parse(&a.grace).map_err(|m| CliError::usage(format!("--grace: {m}")))?.0;
    let reg = registry(ctx)?;
    let runs = select(&reg, &a.select)?;
    let log = audit_log(ctx)?;
    let done = kill_runs(&reg, &runs, grace, &log, "killed by `airlock kill`");
    let _ = log.close();
    done
}

/// Kills `runs` together and records each outcome.
fn kill_runs(reg: &Registry, runs: &[RunRecord], grace: Duration, log: &dyn Append, why: &str) -> Result<(), CliError> {
    let outcomes = reg.kill(runs, grace);
    let mut failed = 0;
    for (o, r) in outcomes.iter().zip(runs) {
        let result = match o.result {
            KillResult::Terminated => "terminated",
            KillResult::Killed => "killed",
            KillResult::AlreadyGone => "already gone",
        };
        let mut e = action_event("kill", r, format!("{why}: {result}"))
            .set(
                "unmapped.airlock.kill",
                json!({"result": o.result, "elapsed_ms": o.elapsed.as_millis() as u64, "error": o.error}),
            )
            .severity(Severity::Medium)
            .status(o.error.is_none());
        if o.error.is_some() {
            failed += 1;
            e = e.severity(Severity::High);
        }
        if let Err(err) = log.append(e) {
            eprintln!("airlock: warning: run {} was stopped but the audit log did not take the record: {err}", r.run);
        }
        match &o.error {
            Some(err) => eprintln!("airlock: run {}: {result}, but: {err}", r.run),
            None => println!("{} {result} ({} ms)", r.run, o.elapsed.as_millis()),
        }
    }
    if failed > 0 {
        return Err(CliError { code: 1, message: format!("{failed} run(s) could not be confirmed stopped") });
    }
    Ok(())
}

pub fn pause(ctx: &Ctx, s: SelectRuns, resume: bool) -> Result<(), CliError> {
    let reg = registry(ctx)?;
    let runs = select(&reg, &s)?;
    let log = audit_log(ctx)?;
    let verb = if resume { "resume" } else { "pause" };
    let mut failed = 0;
    for r in &runs {
        let result = if resume { reg.resume(r) } else { reg.pause(r) };
        let (ok, detail) = match &result {
            Ok(m) => (true, json!(m)),
            Err(e) => (false, json!({"error": e.to_string()})),
        };
        let e = action_event(verb, r, format!("{verb}d by `airlock {verb}`"))
            .set("unmapped.airlock.pause", detail)
            .status(ok);
        if let Err(err) = log.append(e) {
            eprintln!("airlock: warning: the audit log did not take the {verb} record of run {}: {err}", r.run);
        }
        match result {
            Ok(_) => println!("{} {verb}d", r.run),
            Err(e) => {
                failed += 1;
                eprintln!("airlock: run {}: {e}", r.run);
            }
        }
    }
    let _ = log.close();
    if failed > 0 {
        return Err(CliError { code: 1, message: format!("{failed} run(s) could not be {verb}d") });
    }
    Ok(())
}

pub fn lockdown(ctx: &Ctx, a: LockdownArgs) -> Result<(), CliError> {
    let state = state_dir(&ctx.home);
    let status = airlock_sandbox::supervisor::lockdown_status(&state).map_err(|e| CliError::input(e.to_string()))?;
    if a.status {
        if ctx.json {
            println!("{}", json!({"lockdown": status}));
        } else {
            match status {
                Some(l) => println!(
                    "lockdown since {} by {}: {}",
                    crate::audit::format_ms(l.since_unix_ms as i64),
                    l.by,
                    l.reason
                ),
                None => println!("no lockdown"),
            }
        }
        return Ok(());
    }
    let log = audit_log(ctx)?;
    let lifecycle = |engaged: bool, message: String| {
        Event::lifecycle(now_ms(), if engaged { activity::CREATE } else { activity::DELETE }, message)
            .set("unmapped.airlock.lockdown", json!({"engaged": engaged, "by": user(), "reason": a.reason}))
            .severity(Severity::High)
            .status(true)
    };
    if a.lift {
        let lifted = airlock_sandbox::supervisor::lockdown_lift(&state).map_err(|e| CliError::input(e.to_string()))?;
        if lifted {
            log.append(lifecycle(false, "lockdown lifted".into())).map_err(|e| CliError::input(e.to_string()))?;
            println!("lockdown lifted");
        } else {
            println!("no lockdown was on");
        }
        let _ = log.close();
        return Ok(());
    }
    // The state file first: from this moment no run starts and every broker refuses egress.
    let l = Lockdown { since_unix_ms: now_ms().max(0) as u64, reason: a.reason.clone(), by: user() };
    airlock_sandbox::supervisor::lockdown_engage(&state, &l).map_err(|e| CliError::input(e.to_string()))?;
    log.append(lifecycle(true, format!("lockdown engaged: {}", a.reason)))
        .map_err(|e| CliError::input(e.to_string()))?;
    let reg = registry(ctx)?;
    let runs = reg.list().map_err(|e| CliError::input(e.to_string()))?;
    println!("lockdown engaged; killing {} run(s)", runs.len());
    let done = kill_runs(&reg, &runs, Duration::ZERO, &log, "killed by lockdown");
    let _ = log.close();
    done
}

/// The policy as a broker under supervision sees it: the store's engine, refused wholesale during a lockdown, and
/// every denial counted toward auto-pause.
///
/// The lockdown file is read at most every [`LOCKDOWN_RECHECK`], so a lockdown reaches every broker within that
/// time (and `airlock lockdown` kills the runs themselves at once). Auto-pause counts the denials this broker sees
/// (one run's, for a standalone `airlock run`); when `denials` fall within `window`, every run of the agent is
/// paused and the pause is audited. A canary token in a request fires it at once: a canary is proof, not a
/// suspicion. It fires once per broker: resuming is a human's decision.
pub struct Supervised {
    store: std::sync::Arc<airlock_policy::PolicyStore>,
    state: std::path::PathBuf,
    checked: std::sync::Mutex<Option<(std::time::Instant, Option<String>)>>,
    auto_pause: Option<AutoPauser>,
}

/// How often a broker rereads the lockdown state.
pub const LOCKDOWN_RECHECK: Duration = Duration::from_millis(100);

struct AutoPauser {
    rule: airlock_policy::model::AutoPause,
    recent: std::sync::Mutex<std::collections::VecDeque<std::time::Instant>>,
    fired: std::sync::atomic::AtomicBool,
    audit: std::sync::Arc<dyn Append>,
}

impl Supervised {
    pub fn new(
        store: std::sync::Arc<airlock_policy::PolicyStore>,
        home: &std::path::Path,
        audit: Option<std::sync::Arc<dyn Append>>,
    ) -> Supervised {
        let rule = store.engine().compiled().model.sandbox.auto_pause;
        Supervised {
            store,
            state: state_dir(home),
            checked: std::sync::Mutex::new(None),
            auto_pause: rule.zip(audit).map(|(rule, audit)| AutoPauser {
                rule,
                recent: Default::default(),
                fired: Default::default(),
                audit,
            }),
        }
    }
}

impl airlock_broker::PolicySource for Supervised {
    fn engine(&self) -> std::sync::Arc<airlock_policy::Engine> {
        self.store.engine()
    }

    fn lockdown(&self) -> Option<String> {
        let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, state)) = &*checked
            && at.elapsed() < LOCKDOWN_RECHECK
        {
            return state.clone();
        }
        // Unreadable state counts as a lockdown: fail closed.
        let state = match airlock_sandbox::supervisor::lockdown_status(&self.state) {
            Ok(l) => l.map(|l| l.reason),
            Err(e) => Some(format!("the lockdown state cannot be read: {e}")),
        };
        *checked = Some((std::time::Instant::now(), state.clone()));
        state
    }

    fn denied(&self, principal: &airlock_broker::Principal, kind: &str) {
        let Some(ap) = &self.auto_pause else { return };
        if kind == "lockdown" || ap.fired.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let now = std::time::Instant::now();
        let mut recent = ap.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back(now);
        while recent.front().is_some_and(|t| now.duration_since(*t) > ap.rule.window) {
            recent.pop_front();
        }
        let proof = kind == "canary";
        if (!proof && (recent.len() as u32) < ap.rule.denials)
            || ap.fired.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        drop(recent);
        // Off the broker's worker: pausing waits for the freezer.
        let (state, audit, agent, rule) =
            (self.state.clone(), std::sync::Arc::clone(&ap.audit), principal.clone(), ap.rule);
        std::thread::spawn(move || auto_pause(&state, &*audit, &agent, rule));
    }
}

fn auto_pause(
    state: &std::path::Path,
    audit: &dyn Append,
    who: &airlock_broker::Principal,
    rule: airlock_policy::model::AutoPause,
) {
    let Ok(reg) = Registry::open(state) else { return };
    let runs: Vec<RunRecord> = reg.list().unwrap_or_default().into_iter().filter(|r| r.agent == who.agent).collect();
    for r in &runs {
        let result = reg.pause(r);
        let e = action_event(
            "pause",
            r,
            format!(
                "auto-paused: agent {} had {} denied requests within {}s (run {} tripped it)",
                who.agent,
                rule.denials,
                rule.window.as_secs(),
                who.run
            ),
        )
        .set("unmapped.airlock.pause", json!({"auto": true, "ok": result.is_ok()}))
        .severity(Severity::High)
        .status(result.is_ok());
        let _ = audit.append(e);
    }
    eprintln!(
        "airlock: agent {} auto-paused after {} denied requests within {}s; `airlock resume --agent {}` resumes it",
        who.agent,
        rule.denials,
        rule.window.as_secs(),
        who.agent
    );
}
