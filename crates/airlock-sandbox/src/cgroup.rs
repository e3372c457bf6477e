//! A cgroup per run: the kernel-enforced memory and process limits, freezing for `airlock pause`, and a kill that
//! reaches every process of a run, including ones that double-forked away from the sandbox's process tree.
//!
//! Why a module of its own: cgroups come in three layouts (v2, v1, systemd's hybrid of both), and a run must land
//! somewhere this process may write without breaking the rules of the hierarchy it lands in. The run's cgroup is
//! `airlock/<run_id>` below
//! - v1: this process's own cgroup in each writable memory, pids and freezer hierarchy (v1 has no rule against
//!   a cgroup holding both processes and children, and nesting keeps any limit set on `airlock` itself in force);
//! - v2: the parent of this process's cgroup (or that cgroup itself when it is the root of the mount, as in a
//!   container with its own cgroup namespace), else the user's delegated `user@UID.service`. v2 forbids processes
//!   in a cgroup whose children get domain controllers, so only the `airlock/<run_id>` leaf ever holds processes,
//!   and the intermediate `airlock` node enables the controllers for its children.
//!
//! On a hybrid layout the controllers are in v1, but a leaf in the unified hierarchy is created too when it is
//! writable: it brings `cgroup.kill` (an atomic kill of the whole run) and `cgroup.freeze`.
//!
//! A [`RunCgroup`] is plain data: the leaf directories it owns and what each offers, read back from the files
//! the kernel shows. Other processes (`airlock kill`, `airlock pause`) rebuild it from a run record with
//! [`RunCgroup::open`].

use std::fs::{self, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{AccessFlags, Pid, access, geteuid};
use serde::Serialize;

use crate::error::SandboxError;
use crate::probe::{CgroupVersion, Cgroups, Support};

/// The intermediate node below which every run's leaf is created.
const AIRLOCK_NODE: &str = "airlock";

/// How long a freeze may take to settle, and how long `kill_all` and `remove` keep trying.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(5);

/// The controllers whose limits a run uses on v2.
const V2_CONTROLLERS: [&str; 2] = ["memory", "pids"];

/// Limits for a run's cgroup; `None` leaves a limit unset (the parent's still applies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    pub memory_bytes: Option<u64>,
    pub pids: Option<u64>,
}

/// What a run used, as far as the kernel counts it; `None` where no hierarchy of the run offers the counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CgroupUsage {
    /// v2 `memory.peak` (Linux 5.19+), v1 `memory.max_usage_in_bytes`.
    pub memory_peak_bytes: Option<u64>,
    /// `oom_kill` in v2 `memory.events` or v1 `memory.oom_control`: processes the kernel killed at the limit.
    pub oom_kills: Option<u64>,
    /// `pids.peak` (Linux 6.1+ on v2; some kernels on v1).
    pub pids_peak: Option<u64>,
}

/// One leaf directory of a run's cgroup, in one hierarchy, and what the kernel offers in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Leaf {
    path: PathBuf,
    version: CgroupVersion,
    /// The memory controller is attached (v2 `memory.max`, v1 `memory.limit_in_bytes`).
    memory: bool,
    /// The pids controller is attached (`pids.max`).
    pids: bool,
    /// The leaf can be frozen (v2 `cgroup.freeze`, v1 `freezer.state`).
    freezer: bool,
    /// v2 `cgroup.kill` (Linux 5.14+).
    kill: bool,
}

impl Leaf {
    /// Reads what a leaf offers from the files present. A missing directory offers nothing.
    fn inspect(path: &Path) -> Leaf {
        let has = |name: &str| path.join(name).exists();
        // Only v2 cgroups have cgroup.controllers.
        let version = if has("cgroup.controllers") { CgroupVersion::V2 } else { CgroupVersion::V1 };
        let (memory, freezer) = match version {
            CgroupVersion::V2 => (has("memory.max"), has("cgroup.freeze")),
            CgroupVersion::V1 => (has("memory.limit_in_bytes"), has("freezer.state")),
        };
        Leaf {
            path: path.to_owned(),
            version,
            memory,
            pids: has("pids.max"),
            freezer,
            kill: version == CgroupVersion::V2 && has("cgroup.kill"),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn procs(&self) -> Vec<u32> {
        read_optional(&self.file("cgroup.procs"))
            .map(|text| text.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    fn set_limits(&self, limits: &CgroupLimits) -> Result<(), SandboxError> {
        if let (true, Some(bytes)) = (self.memory, limits.memory_bytes) {
            match self.version {
                CgroupVersion::V2 => {
                    write_file(&self.file("memory.max"), &bytes.to_string())?;
                    // Without swap accounting the file is absent; there is then no swap to forbid either way.
                    if self.file("memory.swap.max").exists() {
                        write_file(&self.file("memory.swap.max"), "0")?;
                    }
                }
                CgroupVersion::V1 => {
                    // memsw (memory + swap) may never be below the memory limit, so the memory limit goes first;
                    // the same value for both means no swap.
                    write_file(&self.file("memory.limit_in_bytes"), &bytes.to_string())?;
                    if self.file("memory.memsw.limit_in_bytes").exists() {
                        write_file(&self.file("memory.memsw.limit_in_bytes"), &bytes.to_string())?;
                    }
                }
            }
        }
        if let (true, Some(pids)) = (self.pids, limits.pids) {
            write_file(&self.file("pids.max"), &pids.to_string())?;
        }
        Ok(())
    }

    fn is_frozen(&self) -> bool {
        match self.version {
            CgroupVersion::V2 => read_optional(&self.file("cgroup.events"))
                .is_some_and(|events| keyed_value(&events, "frozen") == Some(1)),
            CgroupVersion::V1 => read_optional(&self.file("freezer.state")).is_some_and(|s| s.trim() == "FROZEN"),
        }
    }

    /// Asks the kernel to freeze the leaf, then waits (bounded) until every process in it is frozen.
    fn freeze(&self) -> Result<(), SandboxError> {
        let request = || match self.version {
            CgroupVersion::V2 => write_file(&self.file("cgroup.freeze"), "1"),
            CgroupVersion::V1 => write_file(&self.file("freezer.state"), "FROZEN"),
        };
        request()?;
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        loop {
            if self.is_frozen() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let what = format!("freezing {}", self.path.display());
                return Err(SandboxError::os(what, io::Error::new(ErrorKind::TimedOut, "still not frozen")));
            }
            thread::sleep(POLL);
            // v1 can stay in FREEZING when a task was busy at the first attempt; writing again retries it.
            if self.version == CgroupVersion::V1 {
                request()?;
            }
        }
    }

    fn thaw(&self) -> Result<(), SandboxError> {
        match self.version {
            CgroupVersion::V2 => write_file(&self.file("cgroup.freeze"), "0"),
            CgroupVersion::V1 => write_file(&self.file("freezer.state"), "THAWED"),
        }
    }
}

/// A run's cgroup: one leaf per hierarchy it was created in. Dropping it removes nothing: the leaves outlive the
/// process that created them until [`RunCgroup::remove`], so that another process can still kill what is inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCgroup {
    leaves: Vec<Leaf>,
}

/// Where a leaf could be created: the base directory (the `airlock` node goes below it) and its hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placement {
    base: PathBuf,
    version: CgroupVersion,
}

impl RunCgroup {
    /// Creates the run's cgroup in every hierarchy where a writable place exists, and sets the limits in each
    /// leaf that has the controller. A limit that no hierarchy can enforce is not an error here:
    /// [`RunCgroup::enforces_memory`] and [`RunCgroup::enforces_pids`] say so, and the caller decides whether the
    /// run may go ahead. Refuses run ids other than 16 lowercase hex digits (the id becomes a path component).
    pub fn create(probe: &Cgroups, run_id: &str, limits: &CgroupLimits) -> Result<RunCgroup, SandboxError> {
        if !is_run_id(run_id) {
            return Err(SandboxError::Invalid(format!("run id {run_id:?} is not 16 lowercase hex digits")));
        }
        let mut refusals = Vec::new();
        let mut leaves = Vec::new();
        for placement in placements(probe) {
            match create_leaf(&placement, run_id) {
                Ok(path) => leaves.push(Leaf::inspect(&path)),
                Err(why) => refusals.push(why),
            }
        }
        if leaves.is_empty() {
            let mut why = refusals.join("; ");
            if why.is_empty() {
                why = "no cgroup hierarchy with memory, pids or freezer is reachable from this process".to_owned();
            }
            return Err(SandboxError::Unavailable { feature: "cgroups", why, fix: fix_hint(probe) });
        }
        let cgroup = RunCgroup { leaves };
        if let Err(err) = cgroup.leaves.iter().try_for_each(|leaf| leaf.set_limits(limits)) {
            // Best effort: the leaves are empty, so nothing but a racing rmdir can stop this.
            let _ = cgroup.remove();
            return Err(err);
        }
        Ok(cgroup)
    }

    /// Rebuilds a run's cgroup from the paths in its run record (in `airlock kill`, `airlock pause`). Paths that
    /// are not an `airlock/<run_id>` (or `airlock-<run_id>`) leaf are ignored: a record must not be able to point
    /// the kill at some other cgroup's processes.
    pub fn open(paths: &[PathBuf]) -> RunCgroup {
        RunCgroup { leaves: paths.iter().filter(|p| is_leaf_path(p)).map(|p| Leaf::inspect(p)).collect() }
    }

    /// The leaf directories, for the run record.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.leaves.iter().map(|l| l.path.clone()).collect()
    }

    /// A leaf has the memory controller, so a memory limit given to `create` is enforced by the kernel.
    pub fn enforces_memory(&self) -> bool {
        self.leaves.iter().any(|l| l.memory)
    }

    /// A leaf has the pids controller, so a process limit given to `create` is enforced by the kernel.
    pub fn enforces_pids(&self) -> bool {
        self.leaves.iter().any(|l| l.pids)
    }

    /// A leaf can be frozen: [`RunCgroup::freeze`] works.
    pub fn can_freeze(&self) -> bool {
        self.leaves.iter().any(|l| l.freezer)
    }

    /// Moves a process into every leaf. Children it forks afterwards start inside.
    pub fn add_pid(&self, pid: u32) -> Result<(), SandboxError> {
        self.leaves.iter().try_for_each(|leaf| write_file(&leaf.file("cgroup.procs"), &pid.to_string()))
    }

    /// The processes in any leaf, sorted, without duplicates.
    pub fn procs(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self.leaves.iter().flat_map(Leaf::procs).collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// The one leaf that freezing uses: the v1 freezer where there is one (the layout's freezer controller), else
    /// v2 `cgroup.freeze`. Never both: a task frozen by one freezer cannot reach the point where the other counts
    /// it frozen, so freezing a second hierarchy would never settle.
    fn freezer_leaf(&self) -> Option<&Leaf> {
        let v1 = self.leaves.iter().find(|l| l.freezer && l.version == CgroupVersion::V1);
        v1.or_else(|| self.leaves.iter().find(|l| l.freezer))
    }

    /// Freezes the run, waiting (bounded) until the kernel reports every process in it frozen.
    pub fn freeze(&self) -> Result<(), SandboxError> {
        let Some(leaf) = self.freezer_leaf() else {
            return Err(SandboxError::Unavailable {
                feature: "cgroup freezer",
                why: "no leaf of this run's cgroup has freezer.state or cgroup.freeze".to_owned(),
                fix: "mount the v1 freezer hierarchy, or use cgroup v2 on Linux 5.2+".to_owned(),
            });
        };
        let result = leaf.freeze();
        if result.is_err() {
            // Half-frozen is the worst state: nothing runs, yet the pause is reported as failed.
            let _ = leaf.thaw();
        }
        result
    }

    /// Thaws every leaf that can be frozen (whichever froze the run, and a leftover of an interrupted freeze).
    pub fn thaw(&self) -> Result<(), SandboxError> {
        let mut first_error = None;
        for leaf in self.leaves.iter().filter(|l| l.freezer && l.path.exists()) {
            if let Err(err) = leaf.thaw() {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Kills every process in the run's cgroup and waits (bounded) until none is left. `cgroup.kill` does it
    /// atomically where a v2 leaf has it; otherwise every listed pid gets SIGKILL, round after round, since a
    /// process may fork between the listing and the signal. With a v1 freezer each round runs frozen (nothing
    /// can fork) and ends thawed, because a v1-frozen process acts on SIGKILL only once thawed (a paused run).
    pub fn kill_all(&self) -> Result<(), SandboxError> {
        let deadline = Instant::now() + KILL_TIMEOUT;
        let v1_freezer = self.freezer_leaf().filter(|l| l.version == CgroupVersion::V1 && l.path.exists());
        loop {
            for leaf in self.leaves.iter().filter(|l| l.kill && l.path.exists()) {
                gone_is_fine(write_file(&leaf.file("cgroup.kill"), "1"))?;
            }
            if self.procs().is_empty() {
                return Ok(());
            }
            // Freezing is an aid here, not a requirement: a freeze that does not settle still leaves SIGKILL.
            if let Some(leaf) = v1_freezer {
                let _ = leaf.freeze();
            }
            for pid in self.procs() {
                if let Ok(pid) = i32::try_from(pid) {
                    // ESRCH: it exited between the listing and now, which is what we want.
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            gone_is_fine(self.thaw())?;
            let round_end = Instant::now() + Duration::from_millis(50);
            while Instant::now() < round_end && !self.procs().is_empty() {
                thread::sleep(POLL);
            }
            if self.procs().is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let left = self.procs();
                return Err(SandboxError::os(
                    "killing every process in the run's cgroup",
                    io::Error::new(ErrorKind::TimedOut, format!("still there after SIGKILL: {left:?}")),
                ));
            }
        }
    }

    /// What the run used so far; each counter from the first leaf that has it.
    pub fn usage(&self) -> CgroupUsage {
        let first = |f: &dyn Fn(&Leaf) -> Option<u64>| self.leaves.iter().find_map(f);
        CgroupUsage {
            memory_peak_bytes: first(&|l: &Leaf| match l.version {
                CgroupVersion::V2 => read_u64(&l.file("memory.peak")),
                CgroupVersion::V1 => read_u64(&l.file("memory.max_usage_in_bytes")),
            }),
            oom_kills: first(&|l: &Leaf| {
                let file = match l.version {
                    CgroupVersion::V2 => "memory.events",
                    CgroupVersion::V1 => "memory.oom_control",
                };
                read_optional(&l.file(file)).and_then(|text| keyed_value(&text, "oom_kill"))
            }),
            pids_peak: first(&|l: &Leaf| read_u64(&l.file("pids.peak"))),
        }
    }

    /// Removes every leaf, retrying briefly while exiting processes drain out; a leaf already gone is fine. Then
    /// removes the `airlock` node above each leaf if no other run uses it, so that nothing is left behind in a
    /// cgroup that someone else will want to remove.
    pub fn remove(&self) -> Result<(), SandboxError> {
        let mut first_error = None;
        for leaf in &self.leaves {
            if let Err(err) = remove_dir_retrying(&leaf.path)
                && first_error.is_none()
            {
                first_error = Some(err);
            }
            if let Some(node) = leaf.path.parent() {
                // Another run's leaf (ENOTEMPTY/EBUSY) or a race with its creation: `create_leaf` retries that.
                let _ = fs::remove_dir(node);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Run ids are 16 lowercase hex digits; they become file and directory names, so nothing else is accepted.
pub(crate) fn is_run_id(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<anything>/airlock/<run_id>` or `<anything>/airlock-<run_id>`, absolute.
fn is_leaf_path(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    if !path.is_absolute() || path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return false;
    }
    if let Some(id) = name.strip_prefix("airlock-") {
        return is_run_id(id);
    }
    let parent_is_node = path.parent().and_then(Path::file_name).is_some_and(|n| n == AIRLOCK_NODE);
    parent_is_node && is_run_id(name)
}

/// The base directories to create a leaf under, one per hierarchy, in the order documented at the top.
fn placements(probe: &Cgroups) -> Vec<Placement> {
    let mut out: Vec<Placement> = Vec::new();
    for controller in &probe.controllers {
        if controller.version == Some(CgroupVersion::V1)
            && controller.support.is_available()
            && let Some(dir) = &controller.dir
        {
            let placement = Placement { base: PathBuf::from(dir), version: CgroupVersion::V1 };
            // Co-mounted controllers share a hierarchy, hence a directory.
            if !out.contains(&placement) {
                out.push(placement);
            }
        }
    }
    if let Some(base) = v2_base(probe) {
        out.push(Placement { base, version: CgroupVersion::V2 });
    }
    out
}

/// The first writable v2 base: the parent of this process's cgroup, that cgroup itself when it is the root of
/// the mount, or the delegated user service.
fn v2_base(probe: &Cgroups) -> Option<PathBuf> {
    let mount = probe.mounts.iter().find(|m| m.version == CgroupVersion::V2)?;
    let mount_point = PathBuf::from(&mount.mount_point);
    let mut candidates = Vec::new();
    let own = probe.membership.iter().find(|e| e.hierarchy == 0 && e.controllers.is_empty());
    if let Some(own) = own.and_then(|e| dir_in_mount(&mount.root, &mount_point, &e.path)) {
        if own == mount_point {
            candidates.push(own);
        } else if let Some(parent) = own.parent() {
            candidates.push(parent.to_owned());
        }
    }
    let uid = geteuid().as_raw();
    candidates.push(mount_point.join(format!("user.slice/user-{uid}.slice/user@{uid}.service")));
    candidates.into_iter().find(|dir| dir.is_dir() && access(dir, AccessFlags::W_OK).is_ok())
}

/// The directory of cgroup `path` (from `/proc/self/cgroup`) under a mount of hierarchy part `root`.
fn dir_in_mount(root: &str, mount_point: &Path, path: &str) -> Option<PathBuf> {
    let relative = if root == "/" { path } else { path.strip_prefix(root)? };
    if !relative.is_empty() && !relative.starts_with('/') {
        return None;
    }
    let relative = relative.trim_start_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    Some(if relative.is_empty() { mount_point.to_owned() } else { mount_point.join(relative) })
}

/// Creates `base/airlock/<run_id>`, enabling the v2 controllers for the `airlock` node's children on the way.
/// Returns why not, for the `Unavailable` error, when the hierarchy is not writable.
fn create_leaf(placement: &Placement, run_id: &str) -> Result<PathBuf, String> {
    let node = placement.base.join(AIRLOCK_NODE);
    let leaf = node.join(run_id);
    // A concurrent `remove` of another run may rmdir the node between our mkdir of it and of the leaf.
    let mut attempts = 0;
    loop {
        attempts += 1;
        match fs::create_dir(&node) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
            Err(err) => return Err(format!("cannot create {}: {err}", node.display())),
        }
        if placement.version == CgroupVersion::V2 {
            enable_v2_controllers(&placement.base, &node);
        }
        match fs::create_dir(&leaf) {
            Ok(()) => return Ok(leaf),
            Err(err) if err.kind() == ErrorKind::NotFound && attempts < 5 => continue,
            // An existing leaf belongs to another run with the same id: never share it.
            Err(err) => return Err(format!("cannot create {}: {err}", leaf.display())),
        }
    }
}

/// Makes memory and pids reach the `airlock` node's children: the base must offer them to the node, and the node
/// to its children. Failures only mean the limits are not enforced, which the leaf's files then show.
fn enable_v2_controllers(base: &Path, node: &Path) {
    let offered = |dir: &Path| read_optional(&dir.join("cgroup.controllers")).unwrap_or_default();
    let enabled = |dir: &Path| read_optional(&dir.join("cgroup.subtree_control")).unwrap_or_default();
    for controller in V2_CONTROLLERS {
        let has = |text: String| text.split_whitespace().any(|c| c == controller);
        if !has(offered(node)) && has(offered(base)) {
            // EBUSY when the base holds processes itself (the no-internal-processes rule).
            let _ = write_file(&base.join("cgroup.subtree_control"), &format!("+{controller}"));
        }
        if has(offered(node)) && !has(enabled(node)) {
            let _ = write_file(&node.join("cgroup.subtree_control"), &format!("+{controller}"));
        }
    }
}

/// The probe's fixes for the controllers it found unusable (each once), or a general hint.
fn fix_hint(probe: &Cgroups) -> String {
    let mut fixes: Vec<&str> = Vec::new();
    for controller in &probe.controllers {
        if let Support::Missing { fix: Some(fix), .. } = &controller.support
            && !fixes.contains(&fix.as_str())
        {
            fixes.push(fix);
        }
    }
    if fixes.is_empty() {
        "run under a delegated cgroup (systemd-run --user --scope -p Delegate=yes airlock run ...) or give the \
         container a writable cgroup mount; rlimits still apply without one"
            .to_owned()
    } else {
        fixes.join("; ")
    }
}

fn remove_dir_retrying(path: &Path) -> Result<(), SandboxError> {
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
            // EBUSY while killed processes are still on their way out.
            Err(err)
                if Errno::from_raw(err.raw_os_error().unwrap_or(0)) == Errno::EBUSY && Instant::now() < deadline =>
            {
                thread::sleep(POLL);
            }
            Err(err) => return Err(SandboxError::os(format!("removing {}", path.display()), err)),
        }
    }
}

/// One `write(2)` of the whole value: each write to a cgroup file is one command to the kernel. No O_CREAT, so
/// a missing interface file is an error rather than a new regular file.
/// A leaf that vanished while it was being written to was removed by the run's own supervisor once it emptied:
/// for a kill, that is success.
fn gone_is_fine(r: Result<(), SandboxError>) -> Result<(), SandboxError> {
    match r {
        Err(SandboxError::Os { source, .. }) if source.kind() == ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn write_file(path: &Path, value: &str) -> Result<(), SandboxError> {
    let step = || format!("writing {value:?} to {}", path.display());
    let mut file = OpenOptions::new().write(true).open(path).map_err(|e| SandboxError::os(step(), e))?;
    file.write_all(value.as_bytes()).map_err(|e| SandboxError::os(step(), e))
}

fn read_optional(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn read_u64(path: &Path) -> Option<u64> {
    read_optional(path)?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed cgroup file (`key value` per line).
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command};

    #[test]
    fn run_ids() {
        assert!(is_run_id("0123456789abcdef"));
        for bad in
            ["0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "../../../etc/xx", "", "g123456789abcdef"]
        {
            assert!(!is_run_id(bad), "{bad}");
        }
    }

    #[test]
    fn leaf_paths_from_records() {
        assert!(is_leaf_path(Path::new("/sys/fs/cgroup/pids/airlock/0123456789abcdef")));
        assert!(is_leaf_path(Path::new("/sys/fs/cgroup/x/airlock-0123456789abcdef")));
        assert!(!is_leaf_path(Path::new("/sys/fs/cgroup/system.slice")));
        assert!(!is_leaf_path(Path::new("/sys/fs/cgroup/other/0123456789abcdef")));
        assert!(!is_leaf_path(Path::new("airlock/0123456789abcdef")));
        assert!(!is_leaf_path(Path::new("/sys/fs/cgroup/airlock/../0123456789abcdef")));
        let opened = RunCgroup::open(&[PathBuf::from("/sys/fs/cgroup/pids"), PathBuf::from("/")]);
        assert!(opened.paths().is_empty());
    }

    #[test]
    fn keyed_values() {
        let events = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(2));
        assert_eq!(keyed_value(events, "oom"), Some(1));
        assert_eq!(keyed_value("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n", "oom_kill"), Some(7));
        assert_eq!(keyed_value("populated 1\nfrozen 0\n", "frozen"), Some(0));
        assert_eq!(keyed_value("", "frozen"), None);
    }

    #[test]
    fn mount_relative_dirs() {
        let mp = Path::new("/sys/fs/cgroup");
        assert_eq!(dir_in_mount("/", mp, "/").unwrap(), mp);
        assert_eq!(dir_in_mount("/", mp, "/a/b").unwrap(), mp.join("a/b"));
        assert_eq!(dir_in_mount("/docker/x", mp, "/docker/x/y").unwrap(), mp.join("y"));
        assert_eq!(dir_in_mount("/docker/x", mp, "/docker/xy"), None);
        assert_eq!(dir_in_mount("/", mp, "/../other"), None);
    }

    #[test]
    fn create_refuses_bad_run_ids() {
        let probe = crate::probe::probe().cgroups;
        let err = RunCgroup::create(&probe, "../escape", &CgroupLimits::default()).unwrap_err();
        assert!(matches!(err, SandboxError::Invalid(_)), "{err}");
    }

    fn run_id() -> String {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("{:016x}", (nanos as u64) ^ (u64::from(std::process::id()) << 40))
    }

    fn sleeper() -> Child {
        Command::new("sleep").arg("30").spawn().expect("spawn sleep")
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

    fn proc_state(pid: u32) -> Option<char> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        text[text.rfind(')')? + 1..].split_whitespace().next()?.chars().next()
    }

    fn killed_by(child: &mut Child, signal: i32) {
        use std::os::unix::process::ExitStatusExt;
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(signal), "{status:?}");
    }

    /// The whole life of a run's cgroup on this machine (hybrid: writable v1 memory, pids and freezer).
    #[test]
    fn create_limit_freeze_kill_remove() {
        let probe = crate::probe::probe().cgroups;
        if probe.controllers.iter().all(|c| !c.support.is_available()) && v2_base(&probe).is_none() {
            eprintln!("skipped: no writable cgroup here: {:?}", probe.controllers);
            return;
        }
        let limits = CgroupLimits { memory_bytes: Some(64 << 20), pids: Some(16) };
        let cgroup = RunCgroup::create(&probe, &run_id(), &limits).expect("create");
        let _cleanup = Cleanup(&cgroup);
        let paths = cgroup.paths();
        assert!(!paths.is_empty());
        assert!(paths.iter().all(|p| p.is_dir() && is_leaf_path(p)), "{paths:?}");
        assert_eq!(RunCgroup::open(&paths), cgroup, "a record reopens the same cgroup");

        // The limits, read back from the kernel's files.
        let memory_available = probe.controller("memory").is_some_and(|c| c.support.is_available());
        let pids_available = probe.controller("pids").is_some_and(|c| c.support.is_available());
        assert!(cgroup.enforces_memory() || !memory_available, "{cgroup:?}");
        assert!(cgroup.enforces_pids() || !pids_available, "{cgroup:?}");
        for leaf in &cgroup.leaves {
            if leaf.memory {
                let file = if leaf.version == CgroupVersion::V2 { "memory.max" } else { "memory.limit_in_bytes" };
                assert_eq!(read_u64(&leaf.file(file)), Some(64 << 20), "{}", leaf.path.display());
            }
            if leaf.pids {
                assert_eq!(read_u64(&leaf.file("pids.max")), Some(16), "{}", leaf.path.display());
            }
        }

        let mut child = sleeper();
        cgroup.add_pid(child.id()).expect("add_pid");
        assert_eq!(cgroup.procs(), [child.id()]);

        let freezer_available = probe.controller("freezer").is_some_and(|c| c.support.is_available());
        assert!(cgroup.can_freeze() || !freezer_available, "{cgroup:?}");
        if cgroup.can_freeze() {
            cgroup.freeze().expect("freeze");
            let leaf = cgroup.freezer_leaf().unwrap();
            assert!(leaf.is_frozen(), "{}", leaf.path.display());
            if leaf.version == CgroupVersion::V1 {
                assert_eq!(read_optional(&leaf.file("freezer.state")).unwrap().trim(), "FROZEN");
                // The task itself is in the refrigerator, which /proc shows as an uninterruptible sleep.
                assert_eq!(proc_state(child.id()), Some('D'));
            }
            cgroup.thaw().expect("thaw");
            assert!(cgroup.leaves.iter().all(|l| !l.is_frozen()));
        }

        // Frozen when killed, as after `airlock pause`: the kill must still get through.
        if cgroup.can_freeze() {
            cgroup.freeze().expect("freeze again");
        }
        cgroup.kill_all().expect("kill_all");
        killed_by(&mut child, libc::SIGKILL);
        assert!(cgroup.procs().is_empty());
        let usage = cgroup.usage();
        if cgroup.enforces_memory() {
            // Pages the child touched before it moved in stay charged where they were, so the peak may be 0.
            assert!(usage.memory_peak_bytes.is_some(), "{usage:?}");
            assert_eq!(usage.oom_kills, Some(0));
        }

        cgroup.thaw().expect("thaw after kill");
        cgroup.remove().expect("remove");
        assert!(paths.iter().all(|p| !p.exists()), "{paths:?}");
        cgroup.remove().expect("removing twice is fine");
    }

    /// Without `cgroup.kill` (v1 only, or v2 before 5.14) the kill goes pid by pid.
    #[test]
    fn kill_all_without_cgroup_kill() {
        let probe = crate::probe::probe().cgroups;
        let cgroup = match RunCgroup::create(&probe, &run_id(), &CgroupLimits::default()) {
            Ok(cgroup) => cgroup,
            Err(err) => {
                eprintln!("skipped: no writable cgroup here: {err}");
                return;
            }
        };
        let _cleanup = Cleanup(&cgroup);
        let signal_only =
            RunCgroup { leaves: cgroup.leaves.iter().map(|l| Leaf { kill: false, ..l.clone() }).collect() };
        let mut children = [sleeper(), sleeper(), sleeper()];
        for child in &children {
            signal_only.add_pid(child.id()).expect("add_pid");
        }
        assert_eq!(signal_only.procs().len(), 3);
        signal_only.kill_all().expect("kill_all");
        for child in &mut children {
            killed_by(child, libc::SIGKILL);
        }
        assert!(cgroup.procs().is_empty());
        cgroup.remove().expect("remove");
    }
}
