//! The run registry, kill, pause and lockdown, against real processes and a real state directory.
//!
//! No assertion is about how long something took: waits are bounded, and only what happened is checked.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use airlock_sandbox::{
    CgroupLimits, KillResult, Lockdown, PauseMethod, Registry, RunCgroup, RunRecord, SandboxError, lockdown_engage,
    lockdown_lift, lockdown_status, process_start_ticks,
};

const GRACE: Duration = Duration::from_millis(200);

fn run_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    format!(
        "{:016x}",
        nanos.rotate_left(20) ^ (u64::from(std::process::id()) << 44) ^ N.fetch_add(1, Ordering::Relaxed)
    )
}

fn record(run: &str) -> RunRecord {
    RunRecord {
        run: run.to_owned(),
        agent: "agent".to_owned(),
        tool: "tool".to_owned(),
        parent: None,
        depth: 0,
        supervisor_pid: std::process::id(),
        sandbox_pid: None,
        sandbox_start_ticks: None,
        cgroup: Vec::new(),
        command: vec!["sleep".to_owned(), "30".to_owned()],
        workspace: PathBuf::from("/tmp"),
        started_unix_ms: 1,
        paused: false,
    }
}

/// A record whose stage 1 is `child`.
fn record_for(child: &Child) -> RunRecord {
    RunRecord {
        sandbox_pid: Some(child.id()),
        sandbox_start_ticks: Some(process_start_ticks(child.id()).expect("child stat")),
        ..record(&run_id())
    }
}

fn registry() -> (tempfile::TempDir, Registry) {
    let home = tempfile::tempdir().unwrap();
    let registry = Registry::open(&home.path().join("runs")).unwrap();
    (home, registry)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// (state, ppid, comm) from /proc/PID/stat, parsed after the last ')'.
fn stat(pid: u32) -> Option<(char, u32, String)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let mut rest = text[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?, text[open + 1..close].to_owned()))
}

/// Alive means not gone and not a zombie: a zombie has exited and only waits to be reaped.
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _, _)| state != 'Z' && state != 'X')
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn sleeper() -> Child {
    Command::new("sleep").arg("30").spawn().expect("spawn sleep")
}

/// A process that ignores SIGTERM, once it does (after the exec, the trap is in place).
fn term_ignorer() -> Child {
    let child = Command::new("sh").args(["-c", "trap '' TERM; exec sleep 30"]).spawn().expect("spawn sh");
    let pid = child.id();
    wait_until("the TERM-ignoring shell to exec sleep", || stat(pid).is_some_and(|(_, _, comm)| comm == "sleep"));
    child
}

fn signal_of(child: &mut Child) -> Option<i32> {
    child.wait().expect("wait").signal()
}

fn children_of(pid: u32) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| stat(*p).is_some_and(|(_, ppid, _)| ppid == pid))
        .collect()
}

fn sigkill(pid: u32) {
    // SAFETY: kill(2) with a pid and a signal number; no memory is passed.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
}

// --- registry ---

#[test]
fn register_list_get_and_drop() {
    let (home, registry) = registry();
    let dir = home.path().join("runs");
    assert_eq!(mode(&dir), 0o700);
    let run = run_id();
    let rec = record(&run);
    let guard = registry.register(&rec).unwrap();
    assert_eq!(registry.list().unwrap(), std::slice::from_ref(&rec));
    assert_eq!(registry.get(&run).unwrap(), Some(rec.clone()));
    let json = dir.join(format!("{run}.json"));
    let lock = dir.join(format!("{run}.lock"));
    assert_eq!(mode(&json), 0o600);
    assert_eq!(mode(&lock), 0o600);
    // No temporary file is left behind by the atomic write.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);

    guard.update(|r| r.sandbox_pid = Some(4242)).unwrap();
    assert_eq!(registry.get(&run).unwrap().unwrap().sandbox_pid, Some(4242));
    assert_eq!(mode(&json), 0o600);
    assert!(matches!(guard.update(|r| r.run = run_id()), Err(SandboxError::Invalid(_))));

    drop(guard);
    assert!(!json.exists() && !lock.exists());
    assert!(registry.list().unwrap().is_empty());
    assert_eq!(registry.get(&run).unwrap(), None);
}

#[test]
fn existing_dir_is_tightened_to_0700() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("runs");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    Registry::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
}

#[test]
fn stale_records_are_removed() {
    let (home, registry) = registry();
    let dir = home.path().join("runs");
    let live = registry.register(&record(&run_id())).unwrap();

    // A supervisor that died: its record is there, nobody holds the lock (with or without a lock file left).
    let without_lock = record(&run_id());
    fs::write(dir.join(format!("{}.json", without_lock.run)), serde_json::to_vec(&without_lock).unwrap()).unwrap();
    let with_lock = record(&run_id());
    fs::write(dir.join(format!("{}.json", with_lock.run)), serde_json::to_vec(&with_lock).unwrap()).unwrap();
    fs::write(dir.join(format!("{}.lock", with_lock.run)), "").unwrap();

    assert_eq!(registry.get(&with_lock.run).unwrap(), None);
    let runs: Vec<String> = registry.list().unwrap().into_iter().map(|r| r.run).collect();
    assert_eq!(runs, [live.run().to_owned()]);
    for stale in [&without_lock.run, &with_lock.run] {
        assert!(!dir.join(format!("{stale}.json")).exists(), "{stale}");
        assert!(!dir.join(format!("{stale}.lock")).exists(), "{stale}");
    }
    // Files that are not records are left alone (the lockdown file may share the directory).
    fs::write(dir.join("lockdown.json"), "{}").unwrap();
    assert_eq!(registry.list().unwrap().len(), 1);
    assert!(dir.join("lockdown.json").exists());
}

#[test]
fn duplicate_live_run_id_is_refused() {
    let (_home, registry) = registry();
    let rec = record(&run_id());
    let first = registry.register(&rec).unwrap();
    let err = registry.register(&rec).unwrap_err();
    assert!(matches!(err, SandboxError::Invalid(ref m) if m.contains("already registered")), "{err}");
    // Another registry on the same directory (as another process would open it) is refused too.
    let other = Registry::open(registry.dir()).unwrap();
    assert!(other.register(&rec).is_err());
    drop(first);
    let again = registry.register(&rec).unwrap();
    assert_eq!(registry.list().unwrap(), [rec]);
    drop(again);
}

#[test]
fn bad_run_ids_are_refused() {
    let (_home, registry) = registry();
    for bad in ["../../etc/passwd", "ABCDEF0123456789", "short"] {
        assert!(matches!(registry.register(&record(bad)), Err(SandboxError::Invalid(_))), "{bad}");
        assert!(matches!(registry.get(bad), Err(SandboxError::Invalid(_))), "{bad}");
    }
}

#[test]
fn corrupt_live_record_is_an_error() {
    let (home, registry) = registry();
    let guard = registry.register(&record(&run_id())).unwrap();
    fs::write(home.path().join("runs").join(format!("{}.json", guard.run())), "{not json").unwrap();
    assert!(registry.list().is_err(), "a live run must not silently vanish from the list");
}

#[test]
fn tree_puts_parents_before_children() {
    let (_home, registry) = registry();
    let ids: Vec<String> = (0..5).map(|_| run_id()).collect();
    let (root, child, grandchild, other_root, orphan) = (&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]);
    let with = |run: &str, parent: Option<&str>, started: u64| RunRecord {
        parent: parent.map(str::to_owned),
        started_unix_ms: started,
        ..record(run)
    };
    let dead_parent = run_id();
    let records = [
        // Started before its parent's other child, and before the second root: order follows the tree.
        with(grandchild, Some(child), 10),
        with(root, None, 20),
        with(child, Some(root), 30),
        with(other_root, None, 40),
        with(orphan, Some(&dead_parent), 50),
    ];
    let _guards: Vec<_> = records.iter().map(|r| registry.register(r).unwrap()).collect();
    let tree: Vec<(String, usize)> = registry.tree().unwrap().into_iter().map(|(r, d)| (r.run, d)).collect();
    let expected = [(root, 0), (child, 1), (grandchild, 2), (other_root, 0), (orphan, 0)];
    let expected: Vec<(String, usize)> = expected.iter().map(|(r, d)| ((*r).clone(), *d)).collect();
    assert_eq!(tree, expected);
    // list is oldest first, regardless of the tree.
    let listed: Vec<String> = registry.list().unwrap().into_iter().map(|r| r.run).collect();
    assert_eq!(listed, [grandchild.as_str(), root, child, other_root, orphan]);
}

// --- kill ---

#[test]
fn kill_terminates_then_kills() {
    let (_home, registry) = registry();
    let mut polite = sleeper();
    let mut stubborn = term_ignorer();
    let records = [record_for(&polite), record_for(&stubborn)];
    let _guards: Vec<_> = records.iter().map(|r| registry.register(r).unwrap()).collect();

    let outcomes = registry.kill(&records, GRACE);
    assert_eq!(outcomes.len(), 2);
    assert_eq!((outcomes[0].run.as_str(), outcomes[0].result), (records[0].run.as_str(), KillResult::Terminated));
    assert_eq!((outcomes[1].run.as_str(), outcomes[1].result), (records[1].run.as_str(), KillResult::Killed));
    assert!(outcomes.iter().all(|o| o.error.is_none()), "{outcomes:?}");
    assert_eq!(signal_of(&mut polite), Some(libc::SIGTERM));
    assert_eq!(signal_of(&mut stubborn), Some(libc::SIGKILL));
    assert!(!alive(polite.id()) && !alive(stubborn.id()));
}

#[test]
fn kill_never_signals_a_reused_pid() {
    let (_home, registry) = registry();
    let mut bystander = sleeper();
    // The record's stage 1 had this pid once, but started at another time: the pid now belongs to someone else.
    let mut reused = record_for(&bystander);
    reused.sandbox_start_ticks = reused.sandbox_start_ticks.map(|t| t + 1);
    // A record written before stage 1 existed, and one whose stage 1 is not the supervisor's child.
    let unspawned = record(&run_id());
    let not_our_child = RunRecord { sandbox_start_ticks: None, supervisor_pid: 1, ..record_for(&bystander) };

    let outcomes = registry.kill(&[reused, unspawned, not_our_child], GRACE);
    assert!(outcomes.iter().all(|o| o.result == KillResult::AlreadyGone), "{outcomes:?}");
    assert!(alive(bystander.id()), "the bystander was signalled");
    assert!(bystander.try_wait().unwrap().is_none());
    bystander.kill().unwrap();
    bystander.wait().unwrap();
}

#[test]
fn kill_without_start_ticks_checks_the_parent() {
    let (_home, registry) = registry();
    let mut child = sleeper();
    // This test process spawned it, so it is the supervisor of the record.
    let rec = RunRecord { sandbox_start_ticks: None, ..record_for(&child) };
    let outcomes = registry.kill(&[rec], GRACE);
    assert_eq!(outcomes[0].result, KillResult::Terminated, "{outcomes:?}");
    assert_eq!(signal_of(&mut child), Some(libc::SIGTERM));
}

#[test]
fn kill_many_in_one_call() {
    let (_home, registry) = registry();
    let mut children: Vec<Child> = (0..50).map(|_| sleeper()).collect();
    let records: Vec<RunRecord> = children.iter().map(record_for).collect();
    let outcomes = registry.kill(&records, GRACE);
    assert_eq!(outcomes.len(), 50);
    assert!(outcomes.iter().all(|o| o.result != KillResult::AlreadyGone), "{outcomes:?}");
    for child in &mut children {
        let signal = signal_of(child);
        assert!(signal == Some(libc::SIGTERM) || signal == Some(libc::SIGKILL), "{signal:?}");
        assert!(!alive(child.id()));
    }
}

// --- pause ---

#[test]
fn pause_and_resume_with_signals() {
    let (_home, registry) = registry();
    // Stage 1 with a child of its own: the pause must reach descendants too.
    let mut parent = Command::new("sh").args(["-c", "sleep 30 & wait"]).spawn().unwrap();
    let pid = parent.id();
    let mut grandchild = 0;
    wait_until("the shell's sleep", || {
        grandchild = children_of(pid).into_iter().next().unwrap_or(0);
        grandchild != 0 && stat(grandchild).is_some_and(|(_, _, comm)| comm == "sleep")
    });
    let rec = record_for(&parent);
    let _guard = registry.register(&rec).unwrap();

    let method = registry.pause(&rec).unwrap();
    assert_eq!(method, PauseMethod::Signals { processes: 2 });
    for p in [pid, grandchild] {
        wait_until("a stopped process", || stat(p).is_some_and(|(state, _, _)| state == 'T'));
    }
    assert!(registry.get(&rec.run).unwrap().unwrap().paused);

    assert_eq!(registry.resume(&rec).unwrap(), PauseMethod::Signals { processes: 2 });
    for p in [pid, grandchild] {
        wait_until("a resumed process", || stat(p).is_some_and(|(state, _, _)| state != 'T'));
    }
    assert!(!registry.get(&rec.run).unwrap().unwrap().paused);

    sigkill(grandchild);
    parent.kill().unwrap();
    parent.wait().unwrap();
}

#[test]
fn killing_a_paused_run_still_terminates_it() {
    let (_home, registry) = registry();
    let mut child = sleeper();
    let rec = record_for(&child);
    let _guard = registry.register(&rec).unwrap();
    registry.pause(&rec).unwrap();
    wait_until("a stopped process", || stat(child.id()).is_some_and(|(state, _, _)| state == 'T'));
    let paused = registry.get(&rec.run).unwrap().unwrap();
    let outcomes = registry.kill(&[paused], GRACE);
    assert_eq!(outcomes[0].result, KillResult::Terminated, "{outcomes:?}");
    assert_eq!(signal_of(&mut child), Some(libc::SIGTERM));
}

/// Removes a test's cgroup even when an assertion fails first, so that no leaf is left behind.
struct Cleanup<'a>(&'a RunCgroup);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.thaw();
        let _ = self.0.kill_all();
        let _ = self.0.remove();
    }
}

fn writable_cgroups() -> bool {
    let probe = airlock_sandbox::probe().cgroups;
    let ok = probe.controllers.iter().any(|c| c.support.is_available());
    if !ok {
        eprintln!("skipped: no writable cgroup here: {:?}", probe.controllers);
    }
    ok
}

#[test]
fn pause_and_kill_through_the_cgroup() {
    if !writable_cgroups() {
        return;
    }
    let (_home, registry) = registry();
    let probe = airlock_sandbox::probe().cgroups;
    let run = run_id();
    let cgroup = RunCgroup::create(&probe, &run, &CgroupLimits { memory_bytes: None, pids: Some(64) }).unwrap();
    let _cleanup = Cleanup(&cgroup);
    let mut stage_one = sleeper();
    // A process that left stage 1's tree but not the cgroup: only the cgroup kill reaches it.
    let mut escaped = sleeper();
    cgroup.add_pid(stage_one.id()).unwrap();
    cgroup.add_pid(escaped.id()).unwrap();
    let rec = RunRecord { cgroup: cgroup.paths(), ..record_for(&stage_one) };
    let rec = RunRecord { run: run.clone(), ..rec };
    let _guard = registry.register(&rec).unwrap();

    if cgroup.can_freeze() {
        assert_eq!(registry.pause(&rec).unwrap(), PauseMethod::Freezer);
        assert!(registry.get(&run).unwrap().unwrap().paused);
        assert_eq!(registry.resume(&rec).unwrap(), PauseMethod::Freezer);
        registry.pause(&rec).unwrap();
    }
    let rec = registry.get(&run).unwrap().unwrap();
    let outcomes = registry.kill(&[rec], GRACE);
    assert_eq!(outcomes[0].result, KillResult::Terminated, "{outcomes:?}");
    assert_eq!(outcomes[0].error, None);
    assert_eq!(signal_of(&mut stage_one), Some(libc::SIGTERM));
    assert_eq!(signal_of(&mut escaped), Some(libc::SIGKILL));
    assert!(cgroup.procs().is_empty());
    cgroup.thaw().unwrap();
    cgroup.remove().unwrap();
}

// --- lockdown ---

#[test]
fn lockdown_engage_corrupt_lift() {
    let home = tempfile::tempdir().unwrap();
    let state = home.path().join("state");
    assert_eq!(lockdown_status(&state).unwrap(), None);
    let lockdown =
        Lockdown { since_unix_ms: 1_700_000_000_000, reason: "incident 42".to_owned(), by: "ops".to_owned() };
    lockdown_engage(&state, &lockdown).unwrap();
    assert_eq!(lockdown_status(&state).unwrap(), Some(lockdown.clone()));
    let file = state.join("lockdown.json");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&state), 0o700);

    fs::write(&file, "{\"since_unix_ms\": 1, \"reas").unwrap();
    let corrupt = lockdown_status(&state).unwrap().expect("a corrupt lockdown file is a lockdown");
    assert!(corrupt.reason.contains("corrupt"), "{corrupt:?}");

    assert!(lockdown_lift(&state).unwrap());
    assert_eq!(lockdown_status(&state).unwrap(), None);
    assert!(!lockdown_lift(&state).unwrap());
}
