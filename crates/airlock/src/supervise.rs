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

pub fn ps(ctx: &Ctx, tree: Option<&str>) -> Result<(), CliError> {
    let reg = registry(ctx)?;
    if let Some(root) = tree {
        return ps_tree(ctx, &reg, root);
    }
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
    print_runs(tree.iter().map(|(r, indent)| (r, *indent)));
    Ok(())
}

fn print_runs<'a>(rows: impl Iterator<Item = (&'a RunRecord, usize)>) {
    let now = now_ms().max(0) as u64;
    println!("{:<20} {:<8} {:<14} {:<14} {:>8} {:>7}  COMMAND", "RUN", "STATE", "AGENT", "TOOL", "PID", "AGE");
    for (r, indent) in rows {
        let age = now.saturating_sub(r.started_unix_ms) / 1000;
        println!(
            "{:<20} {:<8} {:<14} {:<14} {:>8} {:>6}s  {}",
            format!("{}{}", "  ".repeat(indent), r.run),
            if r.paused { "paused" } else { "running" },
            r.agent,
            r.tool,
            r.sandbox_pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            age,
            r.command.join(" ")
        );
    }
}

/// `airlock ps --tree RUN`: the run and the live runs below it, nested. Standalone, every run on the home is
/// visible (whoever reads the registry could read it all anyway).
fn ps_tree(ctx: &Ctx, reg: &Registry, root: &str) -> Result<(), CliError> {
    let runs = reg.list().map_err(|e| CliError::input(e.to_string()))?;
    let tree = subtree(runs, root, |r| (r.run.as_str(), r.parent.as_deref()))
        .ok_or_else(|| CliError { code: 4, message: format!("no running run {root}") })?;
    if ctx.json {
        println!("{}", tree.to_json(&|r| serde_json::to_value(r).unwrap_or_default()));
    } else {
        print_runs(tree.rows().into_iter());
    }
    tree.warn_if_truncated();
    Ok(())
}

/// How many levels below the run asked for a run tree shows, and how many runs in all: a tree is answered whole in
/// one document, and deeper nesting than this would also outrun the JSON parsers that read it (serde_json stops at
/// 128 levels of nesting; each level of the tree is two).
pub(crate) const TREE_DEPTH: usize = 32;
pub(crate) const TREE_RUNS: usize = 1000;

/// A run and the runs below it.
pub(crate) struct RunTree<T> {
    pub(crate) run: T,
    pub(crate) children: Vec<RunTree<T>>,
    /// Some of this run's children were left out: past [`TREE_DEPTH`] or [`TREE_RUNS`].
    pub(crate) truncated: bool,
}

/// The run `root` and every run below it among `runs` (oldest first; `link` gives a run's id and its parent's),
/// children oldest first, breadth first within [`TREE_DEPTH`] and [`TREE_RUNS`]; `None` if `root` is not among
/// `runs`. Only `runs` are searched: a caller that may not see some runs leaves them out beforehand, and with them
/// everything below them, so a tree never shows more than the caller could list.
pub(crate) fn subtree<T>(runs: Vec<T>, root: &str, link: impl Fn(&T) -> (&str, Option<&str>)) -> Option<RunTree<T>> {
    let root = runs.iter().position(|r| link(r).0 == root)?;
    let mut children: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for (i, r) in runs.iter().enumerate() {
        if let (id, Some(parent)) = link(r)
            && parent != id
        {
            children.entry(parent).or_default().push(i);
        }
    }
    // Breadth first, so that a cut leaves out the deepest runs; `seen` guards against a parent cycle.
    let mut seen = vec![false; runs.len()];
    seen[root] = true;
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); runs.len()];
    let mut truncated = vec![false; runs.len()];
    let mut queue = std::collections::VecDeque::from([(root, 0usize)]);
    let mut count = 1;
    while let Some((i, depth)) = queue.pop_front() {
        for &k in children.get(link(&runs[i]).0).into_iter().flatten() {
            if seen[k] {
                continue;
            }
            if depth + 1 > TREE_DEPTH || count >= TREE_RUNS {
                truncated[i] = true;
                continue;
            }
            seen[k] = true;
            count += 1;
            kids[i].push(k);
            queue.push_back((k, depth + 1));
        }
    }
    drop(children);
    let mut slots: Vec<Option<T>> = runs.into_iter().map(Some).collect();
    // Recursion at most TREE_DEPTH deep.
    fn build<T>(i: usize, slots: &mut [Option<T>], kids: &[Vec<usize>], truncated: &[bool]) -> RunTree<T> {
        let children = kids[i].iter().map(|&k| build(k, slots, kids, truncated)).collect();
        RunTree { run: slots[i].take().expect("each run once"), children, truncated: truncated[i] }
    }
    Some(build(root, &mut slots, &kids, &truncated))
}

impl<T> RunTree<T> {
    /// `node(run)` (a JSON object) with `children` added, and `truncated: true` where children were left out.
    pub(crate) fn to_json(&self, node: &impl Fn(&T) -> serde_json::Value) -> serde_json::Value {
        let mut v = node(&self.run);
        if let Some(obj) = v.as_object_mut() {
            obj.insert("children".into(), self.children.iter().map(|c| c.to_json(node)).collect());
            if self.truncated {
                obj.insert("truncated".into(), true.into());
            }
        }
        v
    }

    /// Every run, each before its children, with its depth below the root.
    pub(crate) fn rows(&self) -> Vec<(&T, usize)> {
        let mut out = Vec::new();
        let mut stack = vec![(self, 0)];
        while let Some((t, depth)) = stack.pop() {
            out.push((&t.run, depth));
            stack.extend(t.children.iter().rev().map(|c| (c, depth + 1)));
        }
        out
    }

    fn any_truncated(&self) -> bool {
        self.truncated || self.children.iter().any(RunTree::any_truncated)
    }

    /// Says on stderr when the tree is not whole, and how to see the rest.
    pub(crate) fn warn_if_truncated(&self) {
        if self.any_truncated() {
            eprintln!(
                "airlock: the tree stops at {TREE_DEPTH} levels and {TREE_RUNS} runs; `airlock ps` lists them all, \
                 and `airlock ps --tree RUN` shows the tree below any of them"
            );
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// (id, parent) pairs as runs.
    fn tree_of(runs: &[(String, Option<String>)], root: &str) -> Option<RunTree<(String, Option<String>)>> {
        subtree(runs.to_vec(), root, |(id, parent)| (id.as_str(), parent.as_deref()))
    }

    fn id(n: usize) -> String {
        format!("{n:016x}")
    }

    #[test]
    fn a_subtree_nests_children_oldest_first_and_leaves_out_the_rest() {
        let runs = vec![
            (id(1), None),
            (id(2), Some(id(1))),
            (id(3), Some(id(9))), // its parent is not live: in no one's tree
            (id(4), Some(id(2))),
            (id(5), Some(id(1))),
        ];
        let t = tree_of(&runs, &id(1)).unwrap();
        let rows: Vec<(&str, usize)> = t.rows().into_iter().map(|(r, d)| (r.0.as_str(), d)).collect();
        assert_eq!(rows, [(id(1).as_str(), 0), (&id(2), 1), (&id(4), 2), (&id(5), 1)]);
        assert!(!t.any_truncated());
        let v = t.to_json(&|r| serde_json::json!({"run": r.0}));
        assert_eq!(v["children"][0]["children"][0]["run"], id(4));
        assert_eq!(v["children"][0]["children"][0]["children"], serde_json::json!([]));
        assert!(v.get("truncated").is_none());
        assert!(tree_of(&runs, &id(7)).is_none());
        assert_eq!(tree_of(&runs, &id(4)).unwrap().rows().len(), 1);
    }

    #[test]
    fn a_subtree_is_bounded_in_depth_and_size_and_survives_cycles() {
        // A chain deeper than TREE_DEPTH: cut at it, and the last run shown says so.
        let chain: Vec<_> = (0..TREE_DEPTH + 5).map(|i| (id(i), i.checked_sub(1).map(id))).collect();
        let t = tree_of(&chain, &id(0)).unwrap();
        let rows = t.rows();
        assert_eq!(rows.len(), TREE_DEPTH + 1);
        assert_eq!(rows.last().unwrap().1, TREE_DEPTH);
        let v = t.to_json(&|r| serde_json::json!({"run": r.0}));
        let mut node = &v;
        for _ in 0..TREE_DEPTH {
            assert!(node.get("truncated").is_none(), "{node}");
            node = &node["children"][0];
        }
        assert_eq!((node["truncated"].clone(), node["children"].clone()), (true.into(), serde_json::json!([])));
        // A wide tree: TREE_RUNS in all, the root first; the root is the one cut.
        let wide: Vec<_> =
            std::iter::once((id(0), None)).chain((1..TREE_RUNS + 10).map(|i| (id(i), Some(id(0))))).collect();
        let t = tree_of(&wide, &id(0)).unwrap();
        assert_eq!((t.rows().len(), t.truncated), (TREE_RUNS, true));
        // A parent cycle (which no supervisor writes, but a record file could say) ends.
        let cycle = vec![(id(1), Some(id(2))), (id(2), Some(id(1))), (id(3), Some(id(3)))];
        let rows: Vec<String> = tree_of(&cycle, &id(1)).unwrap().rows().into_iter().map(|(r, _)| r.0.clone()).collect();
        assert_eq!(rows, [id(1), id(2)]);
        assert_eq!(tree_of(&cycle, &id(3)).unwrap().rows().len(), 1);
    }
}
