//! The run registry and the kill switch: how `airlock ps`, `airlock kill`, `airlock pause`/`resume` and
//! `airlock lockdown`, each a process of its own, find the runs that `airlock run` processes started and act on
//! them.
//!
//! Why files and locks rather than a daemon: there is no long-lived Airlock process to ask. Each `airlock run`
//! (the supervisor) writes `<run>.json` into the state directory and holds an exclusive `flock` on `<run>.lock`
//! for as long as it lives. The kernel drops the lock when the supervisor dies, however it dies, so a record
//! whose lock nobody holds is stale and is removed by whoever sees it; no pid is trusted for liveness.
//!
//! Why start ticks and pidfds: a pid in a record may have been reused by an unrelated process by the time
//! `airlock kill` reads it. A signal goes to a pid only if the process's start time (field 22 of
//! `/proc/PID/stat`) is the one recorded, and through a pidfd opened and then re-checked, so that the process
//! cannot be swapped between the check and the signal. Kernels without pidfds (before 5.3) fall back to
//! `kill(2)` right after the check.
//!
//! The lockdown file is the global kill switch's state: it survives restarts, and a file that cannot be read or
//! parsed counts as locked down (fail closed).

use std::collections::{HashMap, HashSet};
use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{self, ErrorKind, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::cgroup::{RunCgroup, is_run_id};
use crate::error::SandboxError;

const LOCKDOWN_FILE: &str = "lockdown.json";
/// How long a register waits for a lock that `list` may hold for a moment while it checks for staleness.
const LOCK_CONTENTION: Duration = Duration::from_millis(50);
/// How long `kill` waits for processes to exit after SIGKILL before reporting them as still there.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long `pause` waits for a SIGSTOPped process to show as stopped before it looks for new children.
const STOP_WAIT: Duration = Duration::from_secs(2);
/// Rounds of "stop what is new, look again" before `pause` gives up on a tree that keeps growing.
const STOP_ROUNDS: usize = 100;
const POLL: Duration = Duration::from_millis(5);

/// What the registry knows about one run. Written by the run's supervisor; read by every other command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run: String,
    pub agent: String,
    pub tool: String,
    /// The run that started this one (an agent's tool calling another agent), if any.
    pub parent: Option<String>,
    pub depth: u32,
    /// The `airlock run` process.
    pub supervisor_pid: u32,
    /// Stage 1 of the sandbox, in the host pid namespace; set once spawned.
    pub sandbox_pid: Option<u32>,
    /// Field 22 of `/proc/PID/stat` for `sandbox_pid`, so that a reused pid is never signalled.
    pub sandbox_start_ticks: Option<u64>,
    /// The run's cgroup leaves ([`RunCgroup::paths`]); empty without cgroups.
    pub cgroup: Vec<PathBuf>,
    pub command: Vec<String>,
    pub workspace: PathBuf,
    pub started_unix_ms: u64,
    pub paused: bool,
}

/// The run registry: a directory of `<run>.json` records and `<run>.lock` liveness locks.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
}

/// How a run was paused (and is resumed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum PauseMethod {
    /// The run's cgroup was frozen: atomic, and invisible to the processes.
    Freezer,
    /// SIGSTOP (or SIGCONT) to stage 1 and each of its descendants; `processes` is how many were signalled. A
    /// process can see this (SIGCHLD in its parent) but cannot stop it.
    Signals { processes: usize },
}

/// How a run ended under [`Registry::kill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillResult {
    /// It exited within the grace period after SIGTERM.
    Terminated,
    /// It had to be SIGKILLed (stage 1 after the grace period, or processes left in its cgroup).
    Killed,
    /// Nothing of it was running: stage 1 gone (or its pid now belongs to another process), cgroup empty.
    AlreadyGone,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KillOutcome {
    pub run: String,
    pub result: KillResult,
    /// From the start of the kill until the run was seen gone (or until the kill gave up on it).
    pub elapsed: Duration,
    /// What went wrong along the way: a cgroup that would not empty, a process still there after SIGKILL.
    pub error: Option<String>,
}

/// A registered run: holds its liveness lock. Dropping it removes the record and the lock file.
///
/// The lock is on the open file, so a child forked without exec (stage 1) shares it: the run stays live while
/// either process lives. Only the process that registered removes the files on drop.
#[derive(Debug)]
pub struct RunGuard {
    dir: PathBuf,
    run: String,
    /// The registering process: a forked copy of the guard must not unregister the run when it is dropped.
    owner_pid: u32,
    /// Holds the exclusive flock on `<run>.lock` until dropped (closing the file releases it).
    _lock: File,
    /// The record as last written by this guard.
    record: Mutex<RunRecord>,
}

/// The global kill switch's state: while the file exists, no run may start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockdown {
    pub since_unix_ms: u64,
    pub reason: String,
    pub by: String,
}

impl Registry {
    /// Opens the registry in `state_dir` (the runs directory itself, e.g. `$AIRLOCK_HOME/runs`), creating it with
    /// mode 0700, or tightening an existing one to 0700.
    pub fn open(state_dir: &Path) -> Result<Registry, SandboxError> {
        ensure_private_dir(state_dir)?;
        Ok(Registry { dir: state_dir.to_owned() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self, run: &str) -> PathBuf {
        self.dir.join(format!("{run}.json"))
    }

    fn lock_path(&self, run: &str) -> PathBuf {
        self.dir.join(format!("{run}.lock"))
    }

    /// Registers a live run: takes `<run>.lock` for the guard's life, then writes `<run>.json`. Refuses an id
    /// that a live supervisor already holds.
    pub fn register(&self, rec: &RunRecord) -> Result<RunGuard, SandboxError> {
        check_run_id(&rec.run)?;
        let lock = self.take_run_lock(&rec.run)?;
        {
            let _writers = lock_dir(&self.dir)?;
            write_record(&self.dir, rec)?;
        }
        Ok(RunGuard {
            dir: self.dir.clone(),
            run: rec.run.clone(),
            owner_pid: std::process::id(),
            _lock: lock,
            record: Mutex::new(rec.clone()),
        })
    }

    fn take_run_lock(&self, run: &str) -> Result<File, SandboxError> {
        let path = self.lock_path(run);
        let step = || format!("locking {}", path.display());
        let contended_until = Instant::now() + LOCK_CONTENTION;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
                .map_err(|e| SandboxError::os(step(), e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) if Instant::now() < contended_until => {
                    // `list` holds a free lock for a moment while it removes a stale record.
                    thread::sleep(POLL);
                    continue;
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(SandboxError::Invalid(format!("run {run} is already registered by a live supervisor")));
                }
                Err(TryLockError::Error(e)) => return Err(SandboxError::os(step(), e)),
            }
            // `list` unlinks a stale lock file while holding it; a lock on an unlinked file guards nothing.
            let held = file.metadata().map_err(|e| SandboxError::os(step(), e))?;
            match fs::symlink_metadata(&path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(|e| SandboxError::os(step(), e))?;
                    return Ok(file);
                }
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(SandboxError::os(step(), e)),
            }
        }
    }

    /// The live runs, oldest first. Stale records (no supervisor holds their lock) are removed on the way.
    pub fn list(&self) -> Result<Vec<RunRecord>, SandboxError> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| SandboxError::os(format!("listing {}", self.dir.display()), e))?;
        let mut runs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| SandboxError::os(format!("listing {}", self.dir.display()), e))?;
            let name = entry.file_name();
            let Some(run) = name.to_str().and_then(|n| n.strip_suffix(".json")).filter(|r| is_run_id(r)) else {
                continue;
            };
            if let Some(rec) = self.live_record(run)? {
                runs.push(rec);
            }
        }
        runs.sort_by(|a, b| (a.started_unix_ms, &a.run).cmp(&(b.started_unix_ms, &b.run)));
        Ok(runs)
    }

    /// One live run, or `None` when it is not registered or its record is stale.
    pub fn get(&self, run: &str) -> Result<Option<RunRecord>, SandboxError> {
        check_run_id(run)?;
        self.live_record(run)
    }

    /// The record of `run` if its supervisor is alive; removes it when it is stale. A live record that does not
    /// parse is an error, not a run to leave out: `airlock kill --all` must not quietly miss it.
    fn live_record(&self, run: &str) -> Result<Option<RunRecord>, SandboxError> {
        let lock_path = self.lock_path(run);
        let lock = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&lock_path) {
            Ok(lock) => lock,
            // A record is written only once its lock exists, and its lock removed only after it.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.remove_stale(run);
                return Ok(None);
            }
            Err(e) => return Err(SandboxError::os(format!("opening {}", lock_path.display()), e)),
        };
        match lock.try_lock() {
            Ok(()) => {
                // Nobody holds it: the supervisor died. Removed while this lock is held, so that a register of the
                // same id waits and then sees the lock file gone.
                self.remove_stale(run);
                Ok(None)
            }
            Err(TryLockError::WouldBlock) => read_record(&self.record_path(run), run),
            Err(TryLockError::Error(e)) => Err(SandboxError::os(format!("locking {}", lock_path.display()), e)),
        }
    }

    fn remove_stale(&self, run: &str) {
        // Best effort: another `list` may be removing the same files.
        let _ = fs::remove_file(self.record_path(run));
        let _ = fs::remove_file(self.lock_path(run));
    }

    /// The live runs as a tree: each parent before its children, children oldest first, each with its depth in
    /// the printed tree. A run whose parent is not live is shown at the top level.
    pub fn tree(&self) -> Result<Vec<(RunRecord, usize)>, SandboxError> {
        Ok(tree_order(self.list()?, |r| (r.run.as_str(), r.parent.as_deref())))
    }

    /// Kills runs: SIGTERM to every stage 1 at once, one shared grace period, then SIGKILL to what is left and a
    /// kill of everything in each run's cgroup. Never fails as a whole: each run gets its outcome.
    pub fn kill(&self, runs: &[RunRecord], grace: Duration) -> Vec<KillOutcome> {
        let start = Instant::now();
        let mut targets: Vec<KillTarget> = runs
            .iter()
            .map(|rec| KillTarget { process: stage_one(rec), result: None, elapsed: None, error: None })
            .collect();
        for (rec, target) in runs.iter().zip(&mut targets) {
            match &target.process {
                Some(process) => {
                    process.signal(Signal::SIGTERM);
                    // A stopped or frozen process acts on SIGTERM only once running again.
                    if rec.paused {
                        let _ = self.resume_processes(rec);
                    }
                }
                None => target.result = Some(KillResult::AlreadyGone),
            }
        }
        wait_for_exits(&mut targets, start + grace, start, KillResult::Terminated);
        for target in targets.iter_mut().filter(|t| t.result.is_none()) {
            if let Some(process) = &target.process {
                process.signal(Signal::SIGKILL);
            }
        }
        for (rec, target) in runs.iter().zip(&mut targets) {
            if rec.cgroup.is_empty() {
                continue;
            }
            let cgroup = RunCgroup::open(&rec.cgroup);
            let leftovers = !cgroup.procs().is_empty();
            if let Err(err) = cgroup.kill_all() {
                target.error = Some(err.to_string());
            }
            if leftovers && target.result == Some(KillResult::AlreadyGone) {
                target.result = Some(KillResult::Killed);
                target.elapsed = Some(start.elapsed());
            }
        }
        wait_for_exits(&mut targets, Instant::now() + KILL_WAIT, start, KillResult::Killed);
        runs.iter()
            .zip(targets)
            .map(|(rec, target)| {
                let mut error = target.error;
                let result = target.result.unwrap_or_else(|| {
                    error.get_or_insert_with(|| format!("still running {}s after SIGKILL", KILL_WAIT.as_secs()));
                    KillResult::Killed
                });
                KillOutcome { run: rec.run.clone(), result, elapsed: target.elapsed.unwrap_or(start.elapsed()), error }
            })
            .collect()
    }

    /// Pauses a run: freezes its cgroup when it has a freezer, else SIGSTOPs stage 1 and every descendant (round
    /// after round until no new process shows up). Marks the record paused.
    pub fn pause(&self, rec: &RunRecord) -> Result<PauseMethod, SandboxError> {
        let cgroup = RunCgroup::open(&rec.cgroup);
        let method = if cgroup.can_freeze() {
            cgroup.freeze()?;
            PauseMethod::Freezer
        } else {
            let root = stage_one(rec).ok_or_else(|| not_running(rec))?;
            PauseMethod::Signals { processes: stop_tree(&root)? }
        };
        self.set_paused(&rec.run, true)?;
        Ok(method)
    }

    /// Resumes a run paused by [`Registry::pause`], by the same method. Marks the record not paused.
    pub fn resume(&self, rec: &RunRecord) -> Result<PauseMethod, SandboxError> {
        let method = self.resume_processes(rec)?;
        self.set_paused(&rec.run, false)?;
        Ok(method)
    }

    fn resume_processes(&self, rec: &RunRecord) -> Result<PauseMethod, SandboxError> {
        let cgroup = RunCgroup::open(&rec.cgroup);
        if cgroup.can_freeze() {
            cgroup.thaw()?;
            return Ok(PauseMethod::Freezer);
        }
        let root = stage_one(rec).ok_or_else(|| not_running(rec))?;
        // Everything is stopped, so nothing forks: one look at /proc finds the whole tree.
        let tree = descendants(&proc_table(), root.pid, root.start_ticks);
        let mut processes = usize::from(root.signal(Signal::SIGCONT));
        for (pid, ticks) in tree {
            if Process::open(pid, Identity::StartTicks(ticks)).is_some_and(|p| p.signal(Signal::SIGCONT)) {
                processes += 1;
            }
        }
        Ok(PauseMethod::Signals { processes })
    }

    /// Rewrites `paused` in a live record; the record is re-read under the writers' lock so that a concurrent
    /// [`RunGuard::update`] in the supervisor and this write do not undo each other.
    fn set_paused(&self, run: &str, paused: bool) -> Result<(), SandboxError> {
        let _writers = lock_dir(&self.dir)?;
        let Some(mut rec) = self.live_record(run)? else { return Ok(()) };
        rec.paused = paused;
        write_record(&self.dir, &rec)
    }
}

impl RunGuard {
    pub fn run(&self) -> &str {
        &self.run
    }

    /// The record as last written through this guard.
    pub fn record(&self) -> RunRecord {
        self.record.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Rewrites the record (e.g. to set `sandbox_pid` once stage 1 is spawned). Starts from the file, not from
    /// memory, so that `paused` set by `airlock pause` survives. The run id cannot change.
    pub fn update(&self, f: impl FnOnce(&mut RunRecord)) -> Result<(), SandboxError> {
        let _writers = lock_dir(&self.dir)?;
        let mut memory = self.record.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.dir.join(format!("{}.json", self.run));
        let mut rec = match read_record(&path, &self.run) {
            Ok(Some(rec)) => rec,
            _ => memory.clone(),
        };
        f(&mut rec);
        if rec.run != self.run {
            return Err(SandboxError::Invalid(format!(
                "a run record cannot change its id ({} to {})",
                self.run, rec.run
            )));
        }
        write_record(&self.dir, &rec)?;
        *memory = rec;
        Ok(())
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if std::process::id() != self.owner_pid {
            return;
        }
        // The record first, while the lock is still held: a record never outlives its lock file, so a record
        // without one can only be debris.
        let _ = fs::remove_file(self.dir.join(format!("{}.json", self.run)));
        let _ = fs::remove_file(self.dir.join(format!("{}.lock", self.run)));
    }
}

// --- lockdown ---

/// Whether lockdown is engaged. A lockdown file that cannot be read or parsed counts as engaged, with a reason
/// that says so: a damaged kill switch must not let runs start.
pub fn lockdown_status(state_dir: &Path) -> Result<Option<Lockdown>, SandboxError> {
    let path = state_dir.join(LOCKDOWN_FILE);
    let unknown = |why: String| Lockdown { since_unix_ms: modified_ms(&path), reason: why, by: "unknown".to_owned() };
    match fs::read(&path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            unknown(format!("the lockdown file {} is corrupt ({e}); treating it as locked down", path.display()))
        }))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Ok(Some(unknown(format!(
            "the lockdown file {} cannot be read ({e}); treating it as locked down",
            path.display()
        )))),
    }
}

/// Engages lockdown: writes the lockdown file atomically (mode 0600, synced to disk, directory included).
pub fn lockdown_engage(state_dir: &Path, l: &Lockdown) -> Result<(), SandboxError> {
    ensure_private_dir(state_dir)?;
    let json = serde_json::to_vec_pretty(l).map_err(|e| SandboxError::os("encoding the lockdown file", e))?;
    write_atomic(state_dir, LOCKDOWN_FILE, &json, true)
}

/// Lifts lockdown; `false` when it was not engaged.
pub fn lockdown_lift(state_dir: &Path) -> Result<bool, SandboxError> {
    let path = state_dir.join(LOCKDOWN_FILE);
    match fs::remove_file(&path) {
        Ok(()) => {
            sync_dir(state_dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SandboxError::os(format!("removing {}", path.display()), e)),
    }
}

fn modified_ms(path: &Path) -> u64 {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

// --- files ---

fn check_run_id(run: &str) -> Result<(), SandboxError> {
    if is_run_id(run) {
        Ok(())
    } else {
        Err(SandboxError::Invalid(format!("run id {run:?} is not 16 lowercase hex digits")))
    }
}

fn ensure_private_dir(dir: &Path) -> Result<(), SandboxError> {
    let step = || format!("creating {}", dir.display());
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| SandboxError::os(step(), e))?;
    let meta = fs::metadata(dir).map_err(|e| SandboxError::os(step(), e))?;
    if meta.permissions().mode() & 0o777 != 0o700 {
        // Records name commands and workspaces; other users have no business reading them.
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| SandboxError::os(step(), e))?;
    }
    Ok(())
}

/// Serializes writers of records (a supervisor's update, another process's pause) with a flock on the directory.
fn lock_dir(dir: &Path) -> Result<File, SandboxError> {
    let step = || format!("locking {}", dir.display());
    let file = File::open(dir).map_err(|e| SandboxError::os(step(), e))?;
    file.lock().map_err(|e| SandboxError::os(step(), e))?;
    Ok(file)
}

fn write_record(dir: &Path, rec: &RunRecord) -> Result<(), SandboxError> {
    let json = serde_json::to_vec_pretty(rec).map_err(|e| SandboxError::os("encoding a run record", e))?;
    write_atomic(dir, &format!("{}.json", rec.run), &json, false)
}

fn read_record(path: &Path, run: &str) -> Result<Option<RunRecord>, SandboxError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        // Its supervisor removed it between the lock check and now.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SandboxError::os(format!("reading {}", path.display()), e)),
    };
    match serde_json::from_slice::<RunRecord>(&bytes) {
        Ok(rec) if rec.run == run => Ok(Some(rec)),
        Ok(rec) => Err(SandboxError::Invalid(format!("{} holds the record of run {}", path.display(), rec.run))),
        Err(e) => Err(SandboxError::Invalid(format!("the record {} of a live run is corrupt: {e}", path.display()))),
    }
}

/// Writes `dir/name` so that readers see the old or the new content, never a part: a 0600 temporary file in the
/// same directory, renamed over the target. `durable` also syncs the file and the directory, for state that must
/// survive a power cut (the lockdown); run records describe live processes, which a power cut ends anyway, so they
/// skip the two syncs that would otherwise sit on every run's start.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> Result<(), SandboxError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let target = dir.join(name);
    let step = || format!("writing {}", target.display());
    let result = (|| -> io::Result<()> {
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&tmp)?;
        // The umask can only take bits away from 0600, but an odd one could leave the owner unable to read.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(SandboxError::os(step(), e));
    }
    if durable { sync_dir(dir) } else { Ok(()) }
}

fn sync_dir(dir: &Path) -> Result<(), SandboxError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| SandboxError::os(format!("syncing {}", dir.display()), e))
}

/// `items` (runs, oldest first) in tree order: each parent before its children, children oldest first, each with
/// its depth in the printed tree. An item whose parent is not among `items` is shown at the top level, and so is
/// anything a parent cycle kept unreachable. `link` gives an item's id and its parent's.
pub fn tree_order<T>(items: Vec<T>, link: impl Fn(&T) -> (&str, Option<&str>)) -> Vec<(T, usize)> {
    let live: HashSet<&str> = items.iter().map(|r| link(r).0).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    // `items` is sorted oldest first, so every child list and the roots are too.
    for (i, item) in items.iter().enumerate() {
        match link(item) {
            (id, Some(parent)) if parent != id && live.contains(parent) => children.entry(parent).or_default().push(i),
            _ => roots.push(i),
        }
    }
    let mut order = Vec::with_capacity(items.len());
    let mut visited = vec![false; items.len()];
    // Roots first, then anything a parent cycle kept unreachable, shown at the top level.
    for start in roots.into_iter().chain(0..items.len()) {
        let mut stack = vec![(start, 0usize)];
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut visited[i], true) {
                continue;
            }
            order.push((i, depth));
            if let Some(kids) = children.get(link(&items[i]).0) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
    }
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order.into_iter().filter_map(|(i, depth)| slots[i].take().map(|item| (item, depth))).collect()
}

// --- processes ---

/// The fields of `/proc/PID/stat` the supervisor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    state: char,
    ppid: u32,
    start_ticks: u64,
}

impl ProcStat {
    /// A zombie has exited: it only waits to be reaped, and signals do nothing to it.
    fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }

    fn is_stopped(&self) -> bool {
        matches!(self.state, 'T' | 't')
    }
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and may itself hold spaces and `)`,
/// so the fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    let state = fields.first()?.chars().next()?;
    Some(ProcStat { state, ppid: fields.get(1)?.parse().ok()?, start_ticks: fields.get(19)?.parse().ok()? })
}

fn read_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot. With the pid, it names one
/// process for the life of the system.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    read_stat(pid).map(|s| s.start_ticks)
}

/// Every process's pid and stat, as of one pass over `/proc`.
fn proc_table() -> Vec<(u32, ProcStat)> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

/// The live descendants of `root` (which must still be the process started at `root_ticks`), with their start
/// ticks, parents before children.
fn descendants(table: &[(u32, ProcStat)], root: u32, root_ticks: u64) -> Vec<(u32, u64)> {
    if !table.iter().any(|(pid, stat)| *pid == root && stat.start_ticks == root_ticks) {
        return Vec::new();
    }
    let mut children: HashMap<u32, Vec<(u32, ProcStat)>> = HashMap::new();
    for (pid, stat) in table {
        children.entry(stat.ppid).or_default().push((*pid, *stat));
    }
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([root]);
    let mut seen = HashSet::from([root]);
    while let Some(parent) = queue.pop_front() {
        for (pid, stat) in children.get(&parent).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(*pid) {
                queue.push_back(*pid);
                if !stat.is_dead() {
                    out.push((*pid, stat.start_ticks));
                }
            }
        }
    }
    out
}

/// How a record's pid is checked to still be the process the record means.
#[derive(Debug, Clone, Copy)]
enum Identity {
    StartTicks(u64),
    /// A record written before the start ticks were known: stage 1 is the supervisor's child.
    ParentPid(u32),
}

/// A process checked to be the one meant, with a pidfd where the kernel has them.
#[derive(Debug)]
struct Process {
    pid: u32,
    start_ticks: u64,
    pidfd: Option<OwnedFd>,
}

impl Process {
    /// `None` when the pid is gone, a zombie, or now another process.
    fn open(pid: u32, identity: Identity) -> Option<Process> {
        let stat = read_stat(pid).filter(|s| !s.is_dead())?;
        let matches = match identity {
            Identity::StartTicks(ticks) => stat.start_ticks == ticks,
            Identity::ParentPid(ppid) => stat.ppid == ppid,
        };
        if !matches {
            return None;
        }
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => Some(fd),
            Err(Errno::ESRCH) => return None,
            // ENOSYS before Linux 5.3 (or a seccomp filter refusing it): kill(2) after a fresh check instead.
            Err(_) => None,
        };
        // The pidfd pins one process; if the pid changed hands before it was opened, the start ticks now differ.
        read_stat(pid).filter(|s| s.start_ticks == stat.start_ticks && !s.is_dead())?;
        Some(Process { pid, start_ticks: stat.start_ticks, pidfd })
    }

    /// Another handle on the same process (the pidfd duplicated; without one, the fallback path).
    fn clone_identity(&self) -> Process {
        match &self.pidfd {
            Some(fd) => Process { pid: self.pid, start_ticks: self.start_ticks, pidfd: fd.try_clone().ok() },
            None => Process { pid: self.pid, start_ticks: self.start_ticks, pidfd: None },
        }
    }

    fn still_same(&self) -> bool {
        read_stat(self.pid).is_some_and(|s| s.start_ticks == self.start_ticks && !s.is_dead())
    }

    /// Sends `signal`; `false` when the process is gone.
    fn signal(&self, signal: Signal) -> bool {
        match &self.pidfd {
            Some(fd) => pidfd_send_signal(fd.as_fd(), signal).is_ok(),
            None => {
                self.still_same() && i32::try_from(self.pid).is_ok_and(|pid| kill(Pid::from_raw(pid), signal).is_ok())
            }
        }
    }

    fn exited(&self) -> bool {
        match &self.pidfd {
            // A pidfd polls readable once the process has exited, reaped or not.
            Some(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                match poll(&mut fds, PollTimeout::ZERO) {
                    Ok(n) => n > 0,
                    Err(_) => !self.still_same(),
                }
            }
            None => !self.still_same(),
        }
    }
}

fn stage_one(rec: &RunRecord) -> Option<Process> {
    let pid = rec.sandbox_pid?;
    let identity = match rec.sandbox_start_ticks {
        Some(ticks) => Identity::StartTicks(ticks),
        None => Identity::ParentPid(rec.supervisor_pid),
    };
    Process::open(pid, identity)
}

fn not_running(rec: &RunRecord) -> SandboxError {
    SandboxError::Invalid(format!("run {} has no running sandbox process", rec.run))
}

/// SIGSTOPs `root`, then repeatedly its descendants that are not stopped yet, until a look at `/proc` after
/// everything signalled has stopped finds nothing new: a stopped process cannot fork, so the tree is then still.
fn stop_tree(root: &Process) -> Result<usize, SandboxError> {
    if !root.signal(Signal::SIGSTOP) {
        return Err(SandboxError::Invalid(format!("process {} exited before it could be paused", root.pid)));
    }
    let mut stopped = vec![root.clone_identity()];
    let mut signalled: HashSet<(u32, u64)> = HashSet::from([(root.pid, root.start_ticks)]);
    for _ in 0..STOP_ROUNDS {
        wait_stopped(&stopped);
        let new: Vec<(u32, u64)> = descendants(&proc_table(), root.pid, root.start_ticks)
            .into_iter()
            .filter(|key| !signalled.contains(key))
            .collect();
        if new.is_empty() {
            return Ok(stopped.len());
        }
        for (pid, ticks) in new {
            signalled.insert((pid, ticks));
            if let Some(process) = Process::open(pid, Identity::StartTicks(ticks))
                && process.signal(Signal::SIGSTOP)
            {
                stopped.push(process);
            }
        }
    }
    Err(SandboxError::os(
        "pausing with SIGSTOP",
        io::Error::other(format!("new processes kept appearing after {STOP_ROUNDS} rounds")),
    ))
}

/// Waits (bounded) until every signalled process shows as stopped or has exited.
fn wait_stopped(processes: &[Process]) {
    let deadline = Instant::now() + STOP_WAIT;
    while Instant::now() < deadline {
        let settled = processes
            .iter()
            .all(|p| read_stat(p.pid).is_none_or(|s| s.start_ticks != p.start_ticks || s.is_dead() || s.is_stopped()));
        if settled {
            return;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// One run's progress through [`Registry::kill`].
struct KillTarget {
    /// Stage 1, if it was running at the start.
    process: Option<Process>,
    result: Option<KillResult>,
    elapsed: Option<Duration>,
    error: Option<String>,
}

/// Waits until every pending target has exited or `deadline` passes; those that exit get `result`.
fn wait_for_exits(targets: &mut [KillTarget], deadline: Instant, start: Instant, result: KillResult) {
    loop {
        for target in targets.iter_mut().filter(|t| t.result.is_none()) {
            if target.process.as_ref().is_none_or(Process::exited) {
                target.result = Some(result);
                target.elapsed = Some(start.elapsed());
            }
        }
        let pending: Vec<BorrowedFd<'_>> = targets
            .iter()
            .filter(|t| t.result.is_none())
            .filter_map(|t| t.process.as_ref())
            .filter_map(|p| p.pidfd.as_ref().map(AsFd::as_fd))
            .collect();
        let any_pending = targets.iter().any(|t| t.result.is_none());
        let now = Instant::now();
        if !any_pending || now >= deadline {
            return;
        }
        // Wake on the first exit, or every few milliseconds for processes without a pidfd.
        let nap = (deadline - now).min(POLL);
        if pending.is_empty() {
            thread::sleep(nap);
        } else {
            let mut fds: Vec<PollFd<'_>> = pending.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)).collect();
            let timeout = PollTimeout::try_from(nap).unwrap_or(PollTimeout::ZERO);
            if poll(&mut fds, timeout).is_err() {
                thread::sleep(nap);
            }
        }
    }
}

fn pidfd_open(pid: u32) -> Result<OwnedFd, Errno> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| Errno::ESRCH)?;
    // SAFETY: pidfd_open(2) takes a pid and flags by value and returns a new file descriptor or -1; no memory is
    // shared with the kernel.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if ret < 0 {
        return Err(Errno::last());
    }
    let fd = RawFd::try_from(ret).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns or will close it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: Signal) -> Result<(), Errno> {
    // SAFETY: the pidfd is open for the duration of the call (borrowed); a null siginfo makes the kernel fill it
    // in as kill(2) would, and flags must be 0.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if ret < 0 { Err(Errno::last()) } else { Ok(()) }
}

/// Milliseconds since the Unix epoch, for `started_unix_ms` and `since_unix_ms`.
pub fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_last_parenthesis() {
        let line = "1234 (a) b (c)) S 99 1234 1234 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat(line), Some(ProcStat { state: 'S', ppid: 99, start_ticks: 987654 }));
        let zombie = "7 (x) Z 1 7 7 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0";
        assert!(parse_stat(zombie).unwrap().is_dead());
        assert_eq!(parse_stat("7 (x) S 1"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_start_ticks() {
        let me = std::process::id();
        let ticks = process_start_ticks(me).expect("own stat");
        assert_eq!(process_start_ticks(me), Some(ticks));
        assert_eq!(read_stat(me).unwrap().ppid, std::os::unix::process::parent_id());
    }

    fn rec(run: &str, parent: Option<&str>, started: u64) -> RunRecord {
        RunRecord {
            run: run.to_owned(),
            agent: "a".to_owned(),
            tool: "t".to_owned(),
            parent: parent.map(str::to_owned),
            depth: 0,
            supervisor_pid: 1,
            sandbox_pid: None,
            sandbox_start_ticks: None,
            cgroup: vec![],
            command: vec![],
            workspace: PathBuf::from("/"),
            started_unix_ms: started,
            paused: false,
        }
    }

    #[test]
    fn tree_survives_parent_cycles() {
        let a = "000000000000000a";
        let b = "000000000000000b";
        let order = tree_order(vec![rec(a, Some(b), 1), rec(b, Some(a), 2)], |r| (r.run.as_str(), r.parent.as_deref()));
        let names: Vec<(&str, usize)> = order.iter().map(|(r, d)| (r.run.as_str(), *d)).collect();
        assert_eq!(names, [(a, 0), (b, 1)]);
    }
}
