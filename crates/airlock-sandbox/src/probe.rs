//! Kernel capability probe: what this kernel and this process let the sandbox use.
//!
//! Why: the sandbox stacks namespaces, Landlock, seccomp, no_new_privs and cgroups, and any of them may be
//! missing, left out at build or boot time, refused by a sysctl, or refused by the container Airlock runs in.
//! Kernel versions lie in both directions (distribution backports, LSMs left out of `lsm=`, container seccomp
//! profiles), so each feature is tried: a forked child unshares the namespaces, Landlock is asked for its ABI,
//! `prctl` is called. Nothing the probe does outlives it: the child exits at once, the Landlock query creates no
//! file descriptor, and no cgroup is created (write access is checked with `access(2)`).
//!
//! The `/proc` parsers are pure functions over `&str`, so that other machines' layouts (cgroup v2, hybrid,
//! containers with a cgroup namespace) are tested on fixed inputs.

use std::fmt;
use std::fs;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{AccessFlags, ForkResult, Pid, access, fork, geteuid};
use serde::Serialize;

/// The features [`Probe::rows`] reports, in order, one row each.
pub const FEATURES: [&str; 9] = [
    "user namespace",
    "namespaces",
    "landlock",
    "seccomp",
    "no_new_privs",
    "cgroups",
    "cgroup memory",
    "cgroup pids",
    "cgroup freezer",
];

/// The cgroup controllers the sandbox uses (memory and pids limits, freezing for pause), with their row names.
const CONTROLLERS: [(&str, &str); 3] =
    [("memory", "cgroup memory"), ("pids", "cgroup pids"), ("freezer", "cgroup freezer")];

const ACTIONS_AVAIL: &str = "/proc/sys/kernel/seccomp/actions_avail";
const MAX_USER_NAMESPACES: &str = "/proc/sys/user/max_user_namespaces";
const UNPRIVILEGED_USERNS_CLONE: &str = "/proc/sys/kernel/unprivileged_userns_clone";
const APPARMOR_RESTRICT_USERNS: &str = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns";

/// `LANDLOCK_CREATE_RULESET_VERSION` from `<linux/landlock.h>` (not in the `libc` crate).
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;

/// Whether a feature can be used, and if not, why and what would enable it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Support {
    Available,
    Missing { why: String, fix: Option<String> },
}

impl Support {
    fn missing(why: impl Into<String>, fix: Option<&str>) -> Support {
        Support::Missing { why: why.into(), fix: fix.map(str::to_owned) }
    }

    pub fn is_available(&self) -> bool {
        matches!(self, Support::Available)
    }
}

/// What this kernel and this process may use. Built by [`probe`].
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// `uname -r`.
    pub kernel: String,
    /// Effective uid 0. As root, namespaces can be created without a user namespace, which an unprivileged
    /// caller cannot do: a matrix taken as root says little about the same machine for other users.
    pub running_as_root: bool,
    pub namespaces: Namespaces,
    pub landlock: Landlock,
    pub seccomp: Seccomp,
    /// `prctl(PR_GET_NO_NEW_PRIVS)` works, so `PR_SET_NO_NEW_PRIVS` exists.
    pub no_new_privs: bool,
    pub cgroups: Cgroups,
    /// The container runtime Airlock seems to run in (a hint only: `docker`, `podman`, or `container=` of PID 1).
    pub container: Option<String>,
}

/// A namespace kind the sandbox puts its child in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceKind {
    User,
    Mount,
    Pid,
    Net,
    Ipc,
    Uts,
}

impl NamespaceKind {
    pub const ALL: [NamespaceKind; 6] = [
        NamespaceKind::User,
        NamespaceKind::Mount,
        NamespaceKind::Pid,
        NamespaceKind::Net,
        NamespaceKind::Ipc,
        NamespaceKind::Uts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NamespaceKind::User => "user",
            NamespaceKind::Mount => "mount",
            NamespaceKind::Pid => "pid",
            NamespaceKind::Net => "net",
            NamespaceKind::Ipc => "ipc",
            NamespaceKind::Uts => "uts",
        }
    }

    fn flag(self) -> CloneFlags {
        match self {
            NamespaceKind::User => CloneFlags::CLONE_NEWUSER,
            NamespaceKind::Mount => CloneFlags::CLONE_NEWNS,
            NamespaceKind::Pid => CloneFlags::CLONE_NEWPID,
            NamespaceKind::Net => CloneFlags::CLONE_NEWNET,
            NamespaceKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NamespaceKind::Uts => CloneFlags::CLONE_NEWUTS,
        }
    }
}

/// The sysctls that explain a refused user namespace; `None` where the file does not exist or does not parse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsernsSysctls {
    pub max_user_namespaces: Option<i64>,
    /// Debian and older Ubuntu kernels.
    pub unprivileged_userns_clone: Option<i64>,
    /// Ubuntu 23.10 and later: unshare works, but the new namespace gets no capabilities.
    pub apparmor_restrict_unprivileged_userns: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Namespaces {
    /// `unshare(CLONE_NEWUSER)` alone.
    pub user: Support,
    /// All six kinds in one `unshare`, then `/` made a recursive slave mount inside: what `airlock run` needs.
    /// The mount step catches namespaces that exist but are useless (AppArmor's userns restriction, container
    /// profiles that refuse mount).
    pub all: Support,
    /// The kinds a child could create: all six when `all` works, else each tried alone, inside a new user
    /// namespace when `user` works, else without one (which only privilege, e.g. root, allows).
    pub kinds: Vec<NamespaceKind>,
    pub sysctls: UsernsSysctls,
}

/// Landlock, and what its ABI version lets a ruleset restrict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Landlock {
    pub support: Support,
    /// The highest ABI version the kernel offers; 0 without Landlock.
    pub abi: u32,
    /// Filesystem access rules (ABI 1).
    pub fs: bool,
    /// Renaming and linking across directories (`LANDLOCK_ACCESS_FS_REFER`, ABI 2).
    pub refer: bool,
    /// Truncation (`LANDLOCK_ACCESS_FS_TRUNCATE`, ABI 3).
    pub truncate: bool,
    /// TCP bind and connect rules (ABI 4).
    pub tcp: bool,
    /// ioctl on device files (`LANDLOCK_ACCESS_FS_IOCTL_DEV`, ABI 5).
    pub ioctl_dev: bool,
    /// Scoping of abstract unix sockets and signals to the sandbox (ABI 6).
    pub scope: bool,
}

impl Landlock {
    fn from_abi(abi: u32) -> Landlock {
        Landlock {
            support: Support::Available,
            abi,
            fs: abi >= 1,
            refer: abi >= 2,
            truncate: abi >= 3,
            tcp: abi >= 4,
            ioctl_dev: abi >= 5,
            scope: abi >= 6,
        }
    }

    fn missing(support: Support) -> Landlock {
        Landlock { support, ..Landlock::from_abi(0) }
    }
}

/// The seccomp mode of a process, from the `Seccomp:` line of `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeccompMode {
    Disabled,
    Strict,
    Filter,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seccomp {
    /// Filter mode (`SECCOMP_SET_MODE_FILTER`) with the actions the sandbox's filter returns.
    pub filter: Support,
    /// This process's mode now; `Filter` when a container runtime already confines it (filters stack).
    pub mode: Option<SeccompMode>,
    /// How many filters this process is already under (`Seccomp_filters:`, Linux 5.9+).
    pub filters: Option<u32>,
    /// `/proc/sys/kernel/seccomp/actions_avail`.
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    V1,
    V2,
}

/// How cgroups are mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupLayout {
    /// Per-controller v1 hierarchies only.
    V1,
    /// The unified v2 hierarchy only (a v1 `name=` hierarchy alongside, holding no controller, still counts).
    V2,
    /// v1 controller hierarchies plus a cgroup2 mount (systemd's "hybrid", e.g. `/sys/fs/cgroup/unified`).
    Hybrid,
    /// No cgroup filesystem mounted.
    Unmounted,
}

/// A cgroup filesystem mount, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupMount {
    pub version: CgroupVersion,
    /// The part of the hierarchy mounted here: `/` unless a bind mount or a cgroup namespace shows a subtree.
    pub root: String,
    pub mount_point: String,
    /// v1: the controllers bound to this hierarchy (and `name=X` for a named one). v2: empty; the controllers are
    /// in each cgroup's `cgroup.controllers`.
    pub controllers: Vec<String>,
}

/// A line of `/proc/self/cgroup`: this process's cgroup in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupEntry {
    /// 0 for the v2 hierarchy.
    pub hierarchy: u32,
    /// Empty for the v2 hierarchy.
    pub controllers: Vec<String>,
    /// Relative to the hierarchy's root, or to the cgroup namespace's root.
    pub path: String,
}

/// Whether the sandbox could put a run in a child cgroup with one controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Controller {
    pub name: &'static str,
    /// The hierarchy that holds the controller.
    pub version: Option<CgroupVersion>,
    /// This process's cgroup directory in that hierarchy.
    pub dir: Option<String>,
    /// A child cgroup could be created in `dir` (write access) and get the controller (v2: offered in
    /// `cgroup.controllers`; the freezer: `cgroup.freeze` present). Nothing is created to find out.
    pub support: Support,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cgroups {
    pub layout: CgroupLayout,
    pub mounts: Vec<CgroupMount>,
    /// `/proc/self/cgroup`.
    pub membership: Vec<CgroupEntry>,
    /// memory, pids and freezer, in that order.
    pub controllers: Vec<Controller>,
    /// v2: the controllers this process's cgroup enables for its children (`cgroup.subtree_control`); `None`
    /// without a reachable v2 cgroup.
    pub subtree_control: Option<Vec<String>>,
}

impl Cgroups {
    pub fn controller(&self, name: &str) -> Option<&Controller> {
        self.controllers.iter().find(|c| c.name == name)
    }
}

/// One line of the `airlock run --check` matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub feature: &'static str,
    /// `"yes"`, `"no"` or `"partial"`.
    pub status: &'static str,
    pub detail: String,
    pub fix: Option<String>,
}

/// Probes this kernel and this process. Forks short-lived children for the namespace tests; never fails: what
/// cannot be found out is reported missing, with the reason.
pub fn probe() -> Probe {
    let container = detect_container();
    Probe {
        kernel: kernel_release(),
        running_as_root: geteuid().is_root(),
        namespaces: probe_namespaces(container.is_some()),
        landlock: probe_landlock(),
        seccomp: probe_seccomp(),
        no_new_privs: nix::sys::prctl::get_no_new_privs().is_ok(),
        cgroups: probe_cgroups(),
        container,
    }
}

fn kernel_release() -> String {
    match nix::sys::utsname::uname() {
        Ok(u) => u.release().to_string_lossy().into_owned(),
        Err(_) => "unknown".to_owned(),
    }
}

fn detect_container() -> Option<String> {
    // PID 1's environ is the most specific hint, but is often unreadable (another user, or no CAP_SYS_PTRACE).
    if let Ok(environ) = fs::read("/proc/1/environ")
        && let Some(name) = container_from_environ(&environ)
    {
        return Some(name);
    }
    if Path::new("/run/.containerenv").exists() {
        return Some("podman".to_owned());
    }
    if Path::new("/.dockerenv").exists() {
        return Some("docker".to_owned());
    }
    None
}

fn container_from_environ(environ: &[u8]) -> Option<String> {
    environ
        .split(|b| *b == 0)
        .filter_map(|var| var.strip_prefix(b"container="))
        .find(|value| !value.is_empty())
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

fn read_sysctl(path: &str) -> Option<i64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

// --- namespaces ---

/// The step at which a probe child failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Fork,
    Unshare,
    Remount,
    Wait,
    Killed(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChildFailure {
    step: Step,
    errno: Errno,
}

impl ChildFailure {
    fn describe(&self, what: &str) -> String {
        match self.step {
            Step::Fork => format!("fork failed: {}", self.errno),
            Step::Unshare => format!("unshare({what}) failed: {}", self.errno),
            Step::Remount => {
                format!("unshare({what}) worked, but making / a slave mount inside failed: {}", self.errno)
            }
            Step::Wait => format!("waiting for the probe child failed: {}", self.errno),
            Step::Killed(signal) => format!("the probe child for unshare({what}) was killed by signal {signal}"),
        }
    }
}

// The child reports through its exit status: 0 for success, else the errno (1..=126, or 127 for any larger one),
// plus 128 when the remount failed rather than unshare.
const EXIT_REMOUNT: i32 = 128;
const EXIT_OTHER_ERRNO: i32 = 127;

fn encode_exit(step_is_remount: bool, errno: Errno) -> i32 {
    let code = errno as i32;
    let code = if (1..EXIT_OTHER_ERRNO).contains(&code) { code } else { EXIT_OTHER_ERRNO };
    if step_is_remount { code | EXIT_REMOUNT } else { code }
}

fn decode_exit(code: i32) -> Result<(), ChildFailure> {
    if code == 0 {
        return Ok(());
    }
    let step = if code & EXIT_REMOUNT != 0 { Step::Remount } else { Step::Unshare };
    let code = code & !EXIT_REMOUNT;
    let errno = if code == EXIT_OTHER_ERRNO { Errno::UnknownErrno } else { Errno::from_raw(code) };
    Err(ChildFailure { step, errno })
}

/// What the probe child does between fork and `_exit`: only raw syscalls, no allocation, no locks.
fn child_steps(flags: CloneFlags, remount: bool) -> i32 {
    if let Err(errno) = unshare(flags) {
        return encode_exit(false, errno);
    }
    if remount {
        // What the sandbox does first in its mount namespace, so that its mounts do not propagate to the host.
        // nix converts "/" on the stack, without allocating.
        let flags = MsFlags::MS_REC | MsFlags::MS_SLAVE;
        if let Err(errno) = mount(None::<&str>, "/", None::<&str>, flags, None::<&str>) {
            return encode_exit(true, errno);
        }
    }
    0
}

/// Tries `unshare(flags)` (and, with `remount`, a recursive slave remount of `/`) in a forked child, so that
/// this process's namespaces are untouched and a multi-threaded caller is no obstacle to `CLONE_NEWUSER`.
fn try_in_child(flags: CloneFlags, remount: bool) -> Result<(), ChildFailure> {
    // SAFETY: the child is a copy of a possibly multi-threaded process, so until it exits it may only make
    // async-signal-safe calls. `child_steps` makes raw syscalls (unshare, mount) through wrappers that neither
    // allocate nor take locks, then the child calls `_exit`.
    let forked = unsafe { fork() };
    match forked {
        Err(errno) => Err(ChildFailure { step: Step::Fork, errno }),
        Ok(ForkResult::Child) => {
            let code = child_steps(flags, remount);
            // SAFETY: `_exit` is async-signal-safe and ends the child at once, without running the parent's atexit
            // handlers or destructors, or flushing a copy of its stdio buffers.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => wait_child(child),
    }
}

fn wait_child(child: Pid) -> Result<(), ChildFailure> {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return decode_exit(code),
            Ok(WaitStatus::Signaled(_, signal, _)) => {
                return Err(ChildFailure { step: Step::Killed(signal as i32), errno: Errno::UnknownErrno });
            }
            // Without WUNTRACED or WCONTINUED only exits and kills are reported; anything else, wait again.
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => return Err(ChildFailure { step: Step::Wait, errno }),
        }
    }
}

fn probe_namespaces(in_container: bool) -> Namespaces {
    let sysctls = UsernsSysctls {
        max_user_namespaces: read_sysctl(MAX_USER_NAMESPACES),
        unprivileged_userns_clone: read_sysctl(UNPRIVILEGED_USERNS_CLONE),
        apparmor_restrict_unprivileged_userns: read_sysctl(APPARMOR_RESTRICT_USERNS),
    };
    let user = match try_in_child(CloneFlags::CLONE_NEWUSER, false) {
        Ok(()) => Support::Available,
        Err(failure) => namespace_refusal(&failure, "CLONE_NEWUSER", &sysctls, in_container),
    };
    let all_flags = NamespaceKind::ALL.iter().fold(CloneFlags::empty(), |flags, kind| flags | kind.flag());
    let all = match try_in_child(all_flags, true) {
        Ok(()) => Support::Available,
        Err(failure) => namespace_refusal(&failure, "all six namespaces", &sysctls, in_container),
    };

    let kinds = if all.is_available() {
        NamespaceKind::ALL.to_vec()
    } else {
        // Find out which kinds are to blame, each alone (inside a user namespace when there is one).
        let base = if user.is_available() { CloneFlags::CLONE_NEWUSER } else { CloneFlags::empty() };
        let mut kinds = Vec::new();
        if user.is_available() {
            kinds.push(NamespaceKind::User);
        }
        for kind in NamespaceKind::ALL.into_iter().filter(|k| *k != NamespaceKind::User) {
            if try_in_child(base | kind.flag(), kind == NamespaceKind::Mount).is_ok() {
                kinds.push(kind);
            }
        }
        kinds
    };
    Namespaces { user, all, kinds, sysctls }
}

/// Why a namespace probe failed, and the hint most likely to fix it.
fn namespace_refusal(failure: &ChildFailure, what: &str, sysctls: &UsernsSysctls, in_container: bool) -> Support {
    let mut why = failure.describe(what);
    if !matches!(failure.step, Step::Unshare | Step::Remount) {
        return Support::missing(why, None);
    }
    let errno = failure.errno;
    let fix = if sysctls.max_user_namespaces == Some(0) || (failure.step == Step::Unshare && errno == Errno::ENOSPC) {
        why.push_str(" (user.max_user_namespaces is 0 or reached)");
        Some("sysctl -w user.max_user_namespaces=15000")
    } else if sysctls.unprivileged_userns_clone == Some(0) {
        why.push_str(" (kernel.unprivileged_userns_clone is 0)");
        Some("sysctl -w kernel.unprivileged_userns_clone=1")
    } else if sysctls.apparmor_restrict_unprivileged_userns == Some(1) {
        why.push_str(" (AppArmor restricts unprivileged user namespaces)");
        Some(
            "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, \
             or an AppArmor profile for airlock with `userns,`",
        )
    } else if failure.step == Step::Unshare && errno == Errno::EINVAL {
        why.push_str(" (kernel built without CONFIG_USER_NS?)");
        None
    } else if failure.step == Step::Unshare && errno == Errno::EUSERS {
        why.push_str(" (user namespaces nested too deep)");
        None
    } else if in_container && errno == Errno::EPERM {
        why.push_str(" (the container's seccomp or AppArmor profile refuses it)");
        Some(
            "run the container with profiles that allow namespaces, \
             e.g. docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined",
        )
    } else {
        None
    };
    Support::missing(why, fix)
}

// --- Landlock ---

fn landlock_abi() -> Result<u32, Errno> {
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag, the kernel reads no memory and creates no
    // file descriptor; it only returns the highest ABI version it supports (or an error).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0 as libc::size_t,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 { Err(Errno::last()) } else { Ok(u32::try_from(ret).unwrap_or(u32::MAX)) }
}

fn probe_landlock() -> Landlock {
    match landlock_abi() {
        Ok(abi) => Landlock::from_abi(abi),
        Err(errno) => Landlock::missing(landlock_refusal(errno)),
    }
}

fn landlock_refusal(errno: Errno) -> Support {
    match errno {
        Errno::ENOSYS => Support::missing(
            "kernel without Landlock (landlock_create_ruleset: ENOSYS)",
            Some("a kernel built with CONFIG_SECURITY_LANDLOCK=y (Linux 5.13+)"),
        ),
        Errno::EOPNOTSUPP => Support::missing(
            "Landlock is built in but not enabled at boot (EOPNOTSUPP)",
            Some("add `landlock` to the `lsm=` boot parameter"),
        ),
        other => Support::missing(format!("landlock_create_ruleset failed: {other}"), None),
    }
}

// --- seccomp ---

fn probe_seccomp() -> Seccomp {
    // SAFETY: PR_GET_SECCOMP takes no pointer argument; it only returns this thread's seccomp mode (or an error).
    let ret = unsafe { libc::prctl(libc::PR_GET_SECCOMP) };
    let prctl = if ret < 0 { Err(Errno::last()) } else { Ok(()) };
    let actions = fs::read_to_string(ACTIONS_AVAIL).ok();
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    seccomp_from(prctl, actions.as_deref(), &status)
}

/// The actions the sandbox's filter returns: refuse with an errno, or kill the whole process.
const NEEDED_ACTIONS: [&str; 3] = ["allow", "errno", "kill_process"];

fn seccomp_from(prctl: Result<(), Errno>, actions_avail: Option<&str>, status: &str) -> Seccomp {
    let (mode, filters) = parse_seccomp_status(status);
    let actions = actions_avail.map(parse_actions_avail).unwrap_or_default();
    let filter = match (prctl, actions_avail) {
        (Err(errno), _) => {
            Support::missing(format!("prctl(PR_GET_SECCOMP) failed: {errno} (kernel without CONFIG_SECCOMP?)"), None)
        }
        (Ok(()), None) => Support::missing(
            format!("no {ACTIONS_AVAIL}: kernel without seccomp filters (CONFIG_SECCOMP_FILTER) or older than 4.14"),
            None,
        ),
        (Ok(()), Some(_)) => {
            let lacking: Vec<&str> =
                NEEDED_ACTIONS.into_iter().filter(|needed| !actions.iter().any(|a| a == needed)).collect();
            if lacking.is_empty() {
                Support::Available
            } else {
                Support::missing(format!("seccomp filters lack the action(s) {}", lacking.join(", ")), None)
            }
        }
    };
    Seccomp { filter, mode, filters, actions }
}

/// The `Seccomp:` and `Seccomp_filters:` lines of `/proc/<pid>/status`.
fn parse_seccomp_status(status: &str) -> (Option<SeccompMode>, Option<u32>) {
    let mut mode = None;
    let mut filters = None;
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        match key {
            "Seccomp" => {
                mode = match value.trim() {
                    "0" => Some(SeccompMode::Disabled),
                    "1" => Some(SeccompMode::Strict),
                    "2" => Some(SeccompMode::Filter),
                    _ => None,
                }
            }
            "Seccomp_filters" => filters = value.trim().parse().ok(),
            _ => {}
        }
    }
    (mode, filters)
}

/// Action names are lower-case words; anything else is not from the kernel and is skipped.
fn parse_actions_avail(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|word| word.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_owned)
        .collect()
}

// --- cgroups ---

/// The fields of a `/proc/self/mountinfo` line that the probe uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountEntry {
    root: String,
    mount_point: String,
    fstype: String,
    super_options: String,
}

/// `/proc/self/mountinfo`, one mount a line:
/// `id parent major:minor root mount-point options [optional...] - fstype source super-options`.
/// Malformed lines are skipped.
fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    if fields.len() < 10 || fields[0].parse::<u64>().is_err() || !fields[2].contains(':') {
        return None;
    }
    // The optional fields end at a lone "-"; the six fixed fields come before.
    let separator = 6 + fields[6..].iter().position(|field| *field == "-")?;
    let after = &fields[separator + 1..];
    if after.len() < 3 {
        return None;
    }
    let root = unescape_octal(fields[3]);
    let mount_point = unescape_octal(fields[4]);
    if !root.starts_with('/') || !mount_point.starts_with('/') {
        return None;
    }
    Some(MountEntry { root, mount_point, fstype: after[0].to_owned(), super_options: after[2].to_owned() })
}

/// mountinfo escapes space, tab, newline and backslash as `\NNN` (octal).
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        if bytes[i] == b'\\'
            && let Some(digits) = digits
            && digits.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let value = digits.iter().fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount options of a v1 cgroup mount that are not controllers.
fn is_v1_controller(option: &str) -> bool {
    !matches!(
        option,
        "rw" | "ro" | "noprefix" | "clone_children" | "xattr" | "cpuset_v2_mode" | "favordynmods" | "none"
    ) && !option.starts_with("release_agent=")
        && !option.is_empty()
}

/// The cgroup mounts in `/proc/self/mountinfo`.
fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    parse_mountinfo(mountinfo)
        .into_iter()
        .filter_map(|m| {
            let (version, controllers) = match m.fstype.as_str() {
                "cgroup" => (
                    CgroupVersion::V1,
                    m.super_options.split(',').filter(|o| is_v1_controller(o)).map(str::to_owned).collect(),
                ),
                "cgroup2" => (CgroupVersion::V2, Vec::new()),
                _ => return None,
            };
            Some(CgroupMount { version, root: m.root, mount_point: m.mount_point, controllers })
        })
        .collect()
}

/// `/proc/self/cgroup`: `hierarchy-id:controller,list:path`. Malformed lines are skipped.
fn parse_proc_cgroup(text: &str) -> Vec<CgroupEntry> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts.next()?.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect();
            let path = parts.next()?;
            path.starts_with('/').then(|| CgroupEntry { hierarchy, controllers, path: path.to_owned() })
        })
        .collect()
}

fn cgroup_layout(mounts: &[CgroupMount]) -> CgroupLayout {
    // A named v1 hierarchy (name=systemd) holds no controller: it does not make a layout v1.
    let v1 =
        mounts.iter().any(|m| m.version == CgroupVersion::V1 && m.controllers.iter().any(|c| !c.starts_with("name=")));
    let v2 = mounts.iter().any(|m| m.version == CgroupVersion::V2);
    match (v1, v2) {
        (true, true) => CgroupLayout::Hybrid,
        (true, false) => CgroupLayout::V1,
        (false, true) => CgroupLayout::V2,
        (false, false) => CgroupLayout::Unmounted,
    }
}

/// Where this process's cgroup for one controller is, as far as the mount table and `/proc/self/cgroup` tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Found {
        version: CgroupVersion,
        dir: String,
    },
    NotMounted,
    /// The hierarchy is mounted, but `/proc/self/cgroup` has no line for it.
    NotMember {
        version: CgroupVersion,
    },
    /// This process's cgroup lies outside the part of the hierarchy mounted here (a bind mount of a subtree, or a
    /// cgroup namespace that shows `/..` paths).
    Outside {
        version: CgroupVersion,
        path: String,
    },
}

/// A controller bound to a v1 hierarchy is there; any other can only be in v2.
fn locate(name: &str, mounts: &[CgroupMount], membership: &[CgroupEntry]) -> Location {
    let has = |list: &[String]| list.iter().any(|c| c == name);
    let v1: Vec<&CgroupMount> =
        mounts.iter().filter(|m| m.version == CgroupVersion::V1 && has(&m.controllers)).collect();
    if v1.is_empty() {
        return locate_v2(mounts, membership);
    }
    locate_in(CgroupVersion::V1, &v1, membership.iter().find(|e| has(&e.controllers)))
}

/// This process's cgroup in the unified hierarchy.
fn locate_v2(mounts: &[CgroupMount], membership: &[CgroupEntry]) -> Location {
    let v2: Vec<&CgroupMount> = mounts.iter().filter(|m| m.version == CgroupVersion::V2).collect();
    if v2.is_empty() {
        return Location::NotMounted;
    }
    locate_in(CgroupVersion::V2, &v2, membership.iter().find(|e| e.hierarchy == 0 && e.controllers.is_empty()))
}

fn locate_in(version: CgroupVersion, mounts: &[&CgroupMount], entry: Option<&CgroupEntry>) -> Location {
    let Some(entry) = entry else { return Location::NotMember { version } };
    match mounts.iter().find_map(|m| dir_in_mount(m, &entry.path)) {
        Some(dir) => Location::Found { version, dir },
        None => Location::Outside { version, path: entry.path.clone() },
    }
}

/// The directory of cgroup `path` under `mount`, if that mount shows it.
fn dir_in_mount(mount: &CgroupMount, path: &str) -> Option<String> {
    let relative = if mount.root == "/" {
        path
    } else {
        let rest = path.strip_prefix(mount.root.as_str())?;
        if !rest.is_empty() && !rest.starts_with('/') {
            return None;
        }
        rest
    };
    let relative = relative.trim_start_matches('/');
    if relative.split('/').any(|part| part == "..") {
        return None;
    }
    let base = mount.mount_point.trim_end_matches('/');
    if relative.is_empty() { Some(mount.mount_point.clone()) } else { Some(format!("{base}/{relative}")) }
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn probe_cgroups() -> Cgroups {
    let mounts = cgroup_mounts(&fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    let membership = parse_proc_cgroup(&fs::read_to_string("/proc/self/cgroup").unwrap_or_default());
    let subtree_control = match locate_v2(&mounts, &membership) {
        Location::Found { version: CgroupVersion::V2, dir } => {
            fs::read_to_string(Path::new(&dir).join("cgroup.subtree_control")).ok().map(|s| words(&s))
        }
        _ => None,
    };
    let controllers = CONTROLLERS.iter().map(|(name, _)| check_controller(name, &mounts, &membership)).collect();
    Cgroups { layout: cgroup_layout(&mounts), mounts, membership, controllers, subtree_control }
}

fn check_controller(name: &'static str, mounts: &[CgroupMount], membership: &[CgroupEntry]) -> Controller {
    let (version, dir, support) = match locate(name, mounts, membership) {
        Location::NotMounted => (None, None, Support::missing("no cgroup filesystem is mounted", None)),
        Location::NotMember { version } => {
            let why = format!("/proc/self/cgroup names no {} cgroup with {name}", version_name(version));
            (Some(version), None, Support::missing(why, None))
        }
        Location::Outside { version, path } => {
            let why = format!("this process's cgroup {path} is outside the part of the hierarchy mounted here");
            (Some(version), None, Support::missing(why, None))
        }
        Location::Found { version, dir } => {
            let support = match writable(&dir, version) {
                Support::Available => controller_offered(name, version, &dir),
                refused => refused,
            };
            (Some(version), Some(dir), support)
        }
    };
    Controller { name, version, dir, support }
}

fn version_name(version: CgroupVersion) -> &'static str {
    match version {
        CgroupVersion::V1 => "v1",
        CgroupVersion::V2 => "v2",
    }
}

/// Write access to a cgroup directory is what creating a child cgroup in it needs.
fn writable(dir: &str, version: CgroupVersion) -> Support {
    match access(dir, AccessFlags::W_OK) {
        Ok(()) => Support::Available,
        Err(Errno::EROFS) => Support::missing(
            format!("{dir} is on a read-only cgroup mount"),
            Some("give the container a writable, delegated cgroup (rlimits still apply without one)"),
        ),
        Err(Errno::EACCES | Errno::EPERM) => Support::missing(
            format!("no write access to {dir}"),
            Some(match version {
                CgroupVersion::V2 => {
                    "run under a delegated cgroup: systemd-run --user --scope -p Delegate=yes airlock run ..."
                }
                CgroupVersion::V1 => {
                    "as root, create a cgroup for this user and chown it \
                     (cgcreate -a USER -t USER -g memory,pids,freezer:airlock)"
                }
            }),
        ),
        Err(errno) => Support::missing(format!("{dir}: {errno}"), None),
    }
}

/// On v2 a controller reaches a child only if the parent offers it; the freezer is `cgroup.freeze`, in every
/// cgroup but the root (Linux 5.2+). On v1 the hierarchy is the controller.
fn controller_offered(name: &str, version: CgroupVersion, dir: &str) -> Support {
    if version == CgroupVersion::V1 {
        return Support::Available;
    }
    let dir = Path::new(dir);
    if name == "freezer" {
        let has_freeze = |d: &Path| d.join("cgroup.freeze").exists();
        // The root cgroup has no cgroup.freeze of its own; its children show whether the kernel has it.
        let child_has_freeze = || {
            fs::read_dir(dir)
                .map(|entries| entries.flatten().any(|e| e.path().is_dir() && has_freeze(&e.path())))
                .unwrap_or(false)
        };
        return if has_freeze(dir) || child_has_freeze() {
            Support::Available
        } else {
            Support::missing(format!("no cgroup.freeze under {} (kernel older than 5.2?)", dir.display()), None)
        };
    }
    let offered = fs::read_to_string(dir.join("cgroup.controllers")).map(|s| words(&s)).unwrap_or_default();
    if offered.iter().any(|c| c == name) {
        return Support::Available;
    }
    let parent = dir.parent().unwrap_or(dir).display();
    Support::Missing {
        why: format!("{name} is not in {}/cgroup.controllers: the parent does not enable it", dir.display()),
        fix: Some(format!("echo +{name} > {parent}/cgroup.subtree_control")),
    }
}

// --- the matrix ---

fn row(feature: &'static str, support: &Support, detail_if_available: String) -> Row {
    match support {
        Support::Available => Row { feature, status: "yes", detail: detail_if_available, fix: None },
        Support::Missing { why, fix } => Row { feature, status: "no", detail: why.clone(), fix: fix.clone() },
    }
}

fn join_kinds(kinds: &[NamespaceKind]) -> String {
    kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

impl Probe {
    /// The `airlock run --check` matrix: one row per entry of [`FEATURES`], in that order.
    pub fn rows(&self) -> Vec<Row> {
        let mut rows = vec![
            self.user_row(),
            self.namespaces_row(),
            self.landlock_row(),
            self.seccomp_row(),
            self.no_new_privs_row(),
            self.cgroups_row(),
        ];
        for (name, feature) in CONTROLLERS {
            rows.push(match self.cgroups.controller(name) {
                Some(controller) => controller_row(feature, controller, self.cgroups.subtree_control.as_deref()),
                None => Row { feature, status: "no", detail: "not probed".to_owned(), fix: None },
            });
        }
        rows
    }

    fn user_row(&self) -> Row {
        let ns = &self.namespaces;
        let mut detail = "unshare(CLONE_NEWUSER) works".to_owned();
        if let Some(max) = ns.sysctls.max_user_namespaces {
            detail.push_str(&format!("; user.max_user_namespaces = {max}"));
        }
        let mut row = row("user namespace", &ns.user, detail);
        if !ns.user.is_available() && self.running_as_root {
            row.detail.push_str("; as root, other namespaces may still work without one");
        }
        row
    }

    fn namespaces_row(&self) -> Row {
        let ns = &self.namespaces;
        let feature = "namespaces";
        if ns.all.is_available() {
            let detail = format!("{} in one unshare; / made a slave mount inside", join_kinds(&ns.kinds));
            return Row { feature, status: "yes", detail, fix: None };
        }
        let mut row = row(feature, &ns.all, String::new());
        if !ns.kinds.is_empty() {
            row.status = "partial";
            row.detail = format!("alone: {} work; {}", join_kinds(&ns.kinds), row.detail);
            if !ns.user.is_available() && self.running_as_root {
                row.detail.push_str("; without a user namespace, only because this process is root");
            }
        }
        row
    }

    fn landlock_row(&self) -> Row {
        let l = &self.landlock;
        let mut offers = Vec::new();
        for (has, what) in [
            (l.fs, "filesystem"),
            (l.refer, "refer"),
            (l.truncate, "truncate"),
            (l.tcp, "TCP bind/connect"),
            (l.ioctl_dev, "device ioctl"),
            (l.scope, "scoped abstract unix sockets and signals"),
        ] {
            if has {
                offers.push(what);
            }
        }
        let mut row = row("landlock", &l.support, format!("ABI {}: {}", l.abi, offers.join(", ")));
        if l.support.is_available() && !l.tcp {
            // Without TCP rules, the network namespace alone keeps the tool off the network.
            row.status = "partial";
            row.detail.push_str("; no TCP rules");
            row.fix = Some("Landlock ABI 4 (Linux 6.7+) adds TCP connect rules".to_owned());
        }
        row
    }

    fn seccomp_row(&self) -> Row {
        let s = &self.seccomp;
        let mode = match (s.mode, s.filters) {
            (Some(SeccompMode::Filter), Some(n)) => format!("filter ({n} already)"),
            (Some(SeccompMode::Filter), None) => "filter".to_owned(),
            (Some(SeccompMode::Strict), _) => "strict".to_owned(),
            (Some(SeccompMode::Disabled), _) => "none".to_owned(),
            (None, _) => "unknown".to_owned(),
        };
        let detail = format!("filter mode; actions: {}; this process: {mode}", s.actions.join(" "));
        row("seccomp", &s.filter, detail)
    }

    fn no_new_privs_row(&self) -> Row {
        let support = if self.no_new_privs {
            Support::Available
        } else {
            Support::missing("prctl(PR_GET_NO_NEW_PRIVS) failed (kernel older than 3.5?)", None)
        };
        row("no_new_privs", &support, "prctl(PR_SET_NO_NEW_PRIVS) available".to_owned())
    }

    fn cgroups_row(&self) -> Row {
        let c = &self.cgroups;
        let layout = match c.layout {
            CgroupLayout::V1 => "v1",
            CgroupLayout::V2 => "v2",
            CgroupLayout::Hybrid => "hybrid",
            CgroupLayout::Unmounted => "none",
        };
        let mut parts = Vec::new();
        let v1: Vec<&str> = c
            .mounts
            .iter()
            .filter(|m| m.version == CgroupVersion::V1)
            .flat_map(|m| m.controllers.iter().map(String::as_str))
            .filter(|c| !c.starts_with("name="))
            .collect();
        if !v1.is_empty() {
            parts.push(format!("v1 controllers {}", v1.join(", ")));
        }
        for m in c.mounts.iter().filter(|m| m.version == CgroupVersion::V2) {
            parts.push(format!("cgroup2 at {}", m.mount_point));
        }
        let detail = if parts.is_empty() { layout.to_owned() } else { format!("{layout}: {}", parts.join("; ")) };
        let usable = c.controllers.iter().filter(|c| c.support.is_available()).count();
        let status = match usable {
            0 => "no",
            n if n == c.controllers.len() => "yes",
            _ => "partial",
        };
        let fix = (c.layout == CgroupLayout::Unmounted)
            .then(|| "mount -t cgroup2 none /sys/fs/cgroup (rlimits still apply without cgroups)".to_owned());
        Row { feature: "cgroups", status, detail, fix }
    }
}

fn controller_row(feature: &'static str, controller: &Controller, subtree_control: Option<&[String]>) -> Row {
    let version = controller.version.map_or("?", version_name);
    let dir = controller.dir.as_deref().unwrap_or("?");
    let mut detail = format!("{version} {dir}, writable");
    if controller.version == Some(CgroupVersion::V2) && controller.name != "freezer" {
        let enabled = subtree_control.is_some_and(|s| s.iter().any(|c| c == controller.name));
        detail.push_str(if enabled { ", enabled for children" } else { ", offered, not yet enabled for children" });
    }
    row(feature, &controller.support, detail)
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = if self.running_as_root { "running as root" } else { "not root" };
        let container = match &self.container {
            Some(name) => format!("container: {name}"),
            None => "no container detected".to_owned(),
        };
        writeln!(f, "kernel {}, {who}, {container}", self.kernel)?;
        let rows = self.rows();
        let feature_width = rows.iter().map(|r| r.feature.len()).chain(["FEATURE".len()]).max().unwrap_or(0);
        let status_width = "partial".len();
        writeln!(f, "{:feature_width$}  {:status_width$}  DETAIL", "FEATURE", "STATUS")?;
        for r in &rows {
            writeln!(f, "{:feature_width$}  {:status_width$}  {}", r.feature, r.status, r.detail)?;
            if let Some(fix) = &r.fix {
                writeln!(f, "{:indent$}fix: {fix}", "", indent = feature_width + status_width + 4)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine: v1 controllers under a tmpfs, an empty cgroup2 at /sys/fs/cgroup/unified (systemd's hybrid).
    const MOUNTINFO_V1: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
";
    const CGROUP_V1: &str = "\
9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/80f9cadcd97c491ea250a99bebfc955d
2:cpuacct:/
1:cpu:/
0::/
";

    /// A systemd machine on the unified hierarchy.
    const MOUNTINFO_V2: &str = "\
24 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
    const CGROUP_V2: &str = "0::/user.slice/user-1000.slice/session-2.scope\n";

    /// Ubuntu 20.04: v1 controllers, the v2 hierarchy at /sys/fs/cgroup/unified, `cpu,cpuacct` co-mounted.
    const MOUNTINFO_HYBRID: &str = "\
33 25 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 33 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
38 33 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
39 33 0:34 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
40 33 0:35 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
41 33 0:36 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,freezer
";
    const CGROUP_HYBRID: &str = "\
12:pids:/user.slice/user-1000.slice/session-2.scope
11:memory:/user.slice/user-1000.slice/session-2.scope
6:freezer:/
3:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
0::/user.slice/user-1000.slice/session-2.scope
";

    /// Docker with a private cgroup namespace on a v2 host: the namespace's root is `/`, mounted read-only.
    const MOUNTINFO_CONTAINER: &str = "\
1001 980 0:52 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
1010 1001 0:58 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
1011 1010 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot
";
    const CGROUP_CONTAINER: &str = "0::/\n";

    fn v1_mount(root: &str, mount_point: &str, controllers: &[&str]) -> CgroupMount {
        CgroupMount {
            version: CgroupVersion::V1,
            root: root.to_owned(),
            mount_point: mount_point.to_owned(),
            controllers: controllers.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn found(version: CgroupVersion, dir: &str) -> Location {
        Location::Found { version, dir: dir.to_owned() }
    }

    fn locate_in_sample(name: &str, mountinfo: &str, cgroup: &str) -> Location {
        locate(name, &cgroup_mounts(mountinfo), &parse_proc_cgroup(cgroup))
    }

    #[test]
    fn mountinfo_fields_and_optional_fields() {
        let entries = parse_mountinfo(MOUNTINFO_V2);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1],
            MountEntry {
                root: "/".to_owned(),
                mount_point: "/sys/fs/cgroup".to_owned(),
                fstype: "cgroup2".to_owned(),
                super_options: "rw,nsdelegate,memory_recursiveprot".to_owned(),
            }
        );
        // Several optional fields before the separator.
        let line = "50 24 0:40 /sub /mnt/x rw shared:3 master:1 propagate_from:1 - tmpfs tmpfs rw";
        assert_eq!(parse_mountinfo(line)[0].mount_point, "/mnt/x");
    }

    #[test]
    fn mountinfo_unescapes_octal() {
        let line = r"50 24 0:40 / /mnt/with\040space\134x rw - tmpfs tmpfs rw";
        assert_eq!(parse_mountinfo(line)[0].mount_point, r"/mnt/with space\x");
        // A backslash without three octal digits stays as it is.
        assert_eq!(unescape_octal(r"/a\09"), r"/a\09");
        assert_eq!(unescape_octal(r"/a\"), r"/a\");
    }

    #[test]
    fn mountinfo_skips_malformed_lines() {
        let text = "\
garbage
1 2 3
x 24 0:40 / /mnt rw - tmpfs tmpfs rw
50 24 0:40 / /mnt rw shared:1 tmpfs tmpfs rw
50 24 0:40 / /mnt rw - tmpfs
50 24 0:40 relative /mnt rw - tmpfs tmpfs rw

51 24 0:41 / /ok rw - tmpfs tmpfs rw
";
        let entries = parse_mountinfo(text);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].mount_point, "/ok");
    }

    #[test]
    fn cgroup_mounts_v1_controllers_without_options() {
        let mounts = cgroup_mounts(MOUNTINFO_HYBRID);
        assert_eq!(mounts.len(), 6, "the tmpfs is not a cgroup mount");
        assert_eq!(mounts[0].version, CgroupVersion::V2);
        assert!(mounts[0].controllers.is_empty());
        assert_eq!(mounts[1].controllers, ["name=systemd"], "xattr is an option, not a controller");
        assert_eq!(mounts[2].controllers, ["cpu", "cpuacct"]);
        assert_eq!(mounts[2].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
        let with_agent = "60 33 0:40 / /cg rw - cgroup cgroup rw,clone_children,release_agent=/bin/x,pids";
        assert_eq!(cgroup_mounts(with_agent)[0].controllers, ["pids"]);
    }

    #[test]
    fn layouts() {
        assert_eq!(cgroup_layout(&cgroup_mounts(MOUNTINFO_V1)), CgroupLayout::V1);
        assert_eq!(cgroup_layout(&cgroup_mounts(MOUNTINFO_V2)), CgroupLayout::V2);
        assert_eq!(cgroup_layout(&cgroup_mounts(MOUNTINFO_HYBRID)), CgroupLayout::Hybrid);
        assert_eq!(cgroup_layout(&cgroup_mounts(MOUNTINFO_CONTAINER)), CgroupLayout::V2);
        assert_eq!(cgroup_layout(&[]), CgroupLayout::Unmounted);
        // A named hierarchy beside cgroup2 is still the unified layout.
        let mut named = cgroup_mounts(MOUNTINFO_V2);
        named.push(v1_mount("/", "/sys/fs/cgroup/systemd", &["name=systemd"]));
        assert_eq!(cgroup_layout(&named), CgroupLayout::V2);
        assert_eq!(cgroup_layout(&named[1..]), CgroupLayout::Unmounted);
    }

    #[test]
    fn proc_cgroup_lines() {
        let entries = parse_proc_cgroup(CGROUP_HYBRID);
        assert_eq!(entries.len(), 6);
        assert_eq!(
            entries[3],
            CgroupEntry {
                hierarchy: 3,
                controllers: vec!["cpu".to_owned(), "cpuacct".to_owned()],
                path: "/user.slice".to_owned()
            }
        );
        assert_eq!(
            entries[5],
            CgroupEntry {
                hierarchy: 0,
                controllers: vec![],
                path: "/user.slice/user-1000.slice/session-2.scope".to_owned()
            }
        );
        // A colon inside the path belongs to the path.
        assert_eq!(parse_proc_cgroup("0::/a:b")[0].path, "/a:b");
    }

    #[test]
    fn proc_cgroup_skips_malformed_lines() {
        let entries = parse_proc_cgroup("x:memory:/\n4:memory\n4:memory:relative\n\n::/\n5:pids:/ok\n");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].controllers, ["pids"]);
    }

    #[test]
    fn locate_on_v1() {
        assert_eq!(
            locate_in_sample("memory", MOUNTINFO_V1, CGROUP_V1),
            found(CgroupVersion::V1, "/sys/fs/cgroup/memory/process_api/80f9cadcd97c491ea250a99bebfc955d")
        );
        assert_eq!(locate_in_sample("pids", MOUNTINFO_V1, CGROUP_V1), found(CgroupVersion::V1, "/sys/fs/cgroup/pids"));
        // Not mounted as v1 and no cgroup2 mount at all.
        assert_eq!(locate_in_sample("io", MOUNTINFO_V1, CGROUP_V1), Location::NotMounted);
        // Mounted, but /proc/self/cgroup has no line for it.
        assert_eq!(
            locate_in_sample("freezer", MOUNTINFO_V1, "4:memory:/\n"),
            Location::NotMember { version: CgroupVersion::V1 }
        );
    }

    #[test]
    fn locate_on_v2() {
        let dir = "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope";
        for name in ["memory", "pids", "freezer"] {
            assert_eq!(locate_in_sample(name, MOUNTINFO_V2, CGROUP_V2), found(CgroupVersion::V2, dir));
        }
    }

    #[test]
    fn locate_on_hybrid_prefers_v1() {
        let scope = "user.slice/user-1000.slice/session-2.scope";
        assert_eq!(
            locate_in_sample("memory", MOUNTINFO_HYBRID, CGROUP_HYBRID),
            found(CgroupVersion::V1, &format!("/sys/fs/cgroup/memory/{scope}"))
        );
        assert_eq!(
            locate_in_sample("freezer", MOUNTINFO_HYBRID, CGROUP_HYBRID),
            found(CgroupVersion::V1, "/sys/fs/cgroup/freezer")
        );
        // Not bound to v1, so only the unified hierarchy could have it.
        assert_eq!(
            locate_in_sample("io", MOUNTINFO_HYBRID, CGROUP_HYBRID),
            found(CgroupVersion::V2, &format!("/sys/fs/cgroup/unified/{scope}"))
        );
    }

    #[test]
    fn locate_in_container_namespace_root() {
        assert_eq!(
            locate_in_sample("memory", MOUNTINFO_CONTAINER, CGROUP_CONTAINER),
            found(CgroupVersion::V2, "/sys/fs/cgroup")
        );
        // A process moved outside the cgroup namespace sees a `/..` path: not reachable through this mount.
        assert_eq!(
            locate_in_sample("memory", MOUNTINFO_CONTAINER, "0::/../other\n"),
            Location::Outside { version: CgroupVersion::V2, path: "/../other".to_owned() }
        );
    }

    #[test]
    fn locate_through_subtree_bind_mount() {
        // Docker on v1 without a cgroup namespace: the container's own cgroup is bind-mounted as the root.
        let mountinfo = "70 60 0:32 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n";
        assert_eq!(
            locate_in_sample("memory", mountinfo, "4:memory:/docker/abc\n"),
            found(CgroupVersion::V1, "/sys/fs/cgroup/memory")
        );
        assert_eq!(
            locate_in_sample("memory", mountinfo, "4:memory:/docker/abc/run1\n"),
            found(CgroupVersion::V1, "/sys/fs/cgroup/memory/run1")
        );
        // A sibling whose name shares the prefix is not inside the mount.
        assert_eq!(
            locate_in_sample("memory", mountinfo, "4:memory:/docker/abcd\n"),
            Location::Outside { version: CgroupVersion::V1, path: "/docker/abcd".to_owned() }
        );
    }

    #[test]
    fn dir_in_mount_at_filesystem_root() {
        let mount = v1_mount("/", "/", &["memory"]);
        assert_eq!(dir_in_mount(&mount, "/a/b").as_deref(), Some("/a/b"));
        assert_eq!(dir_in_mount(&mount, "/").as_deref(), Some("/"));
    }

    #[test]
    fn seccomp_status_lines() {
        let status = "Name:\tcat\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\n";
        assert_eq!(parse_seccomp_status(status), (Some(SeccompMode::Disabled), Some(0)));
        assert_eq!(parse_seccomp_status("Seccomp:\t2\nSeccomp_filters:\t3\n"), (Some(SeccompMode::Filter), Some(3)));
        // Kernels before 5.9 have no Seccomp_filters line.
        assert_eq!(parse_seccomp_status("Seccomp:\t1\n"), (Some(SeccompMode::Strict), None));
        assert_eq!(parse_seccomp_status("Seccomp:\tx\nSeccomp_filters:\t-1\nSeccomp\n"), (None, None));
        assert_eq!(parse_seccomp_status(""), (None, None));
    }

    #[test]
    fn actions_avail_words() {
        let text = "kill_process kill_thread trap errno user_notif trace log allow\n";
        assert_eq!(parse_actions_avail(text).len(), 8);
        assert_eq!(parse_actions_avail("allow Errno 42 kill\n"), ["allow", "kill"]);
        assert!(parse_actions_avail("").is_empty());
    }

    #[test]
    fn seccomp_filter_support() {
        let all = "kill_process kill_thread trap errno user_notif trace log allow";
        assert!(seccomp_from(Ok(()), Some(all), "Seccomp:\t0\n").filter.is_available());
        // Pre-4.14 kernels: `kill` only, no `kill_process`.
        assert!(!seccomp_from(Ok(()), Some("kill trap errno trace allow"), "").filter.is_available());
        assert!(!seccomp_from(Ok(()), None, "").filter.is_available());
        assert!(!seccomp_from(Err(Errno::EINVAL), Some(all), "").filter.is_available());
    }

    #[test]
    fn container_hint_from_environ() {
        assert_eq!(container_from_environ(b"PATH=/bin\0container=lxc\0HOME=/\0").as_deref(), Some("lxc"));
        assert_eq!(container_from_environ(b"container=\0PATH=/bin\0"), None);
        assert_eq!(container_from_environ(b"PATH=/bin\0xcontainer=lxc\0"), None);
        assert_eq!(container_from_environ(b""), None);
    }

    #[test]
    fn child_exit_codes_round_trip() {
        assert_eq!(decode_exit(0), Ok(()));
        for (remount, errno) in
            [(false, Errno::EPERM), (true, Errno::EPERM), (false, Errno::ENOSPC), (true, Errno::EINVAL)]
        {
            let step = if remount { Step::Remount } else { Step::Unshare };
            assert_eq!(decode_exit(encode_exit(remount, errno)), Err(ChildFailure { step, errno }));
        }
        // Errnos that do not fit come back as unknown, never as success.
        let failure = decode_exit(encode_exit(false, Errno::EHWPOISON)).unwrap_err();
        assert_eq!(failure.errno, Errno::UnknownErrno);
    }

    #[test]
    fn namespace_refusal_hints() {
        let eperm = ChildFailure { step: Step::Unshare, errno: Errno::EPERM };
        let fix_for = |failure: &ChildFailure, sysctls: &UsernsSysctls, container: bool| match namespace_refusal(
            failure,
            "CLONE_NEWUSER",
            sysctls,
            container,
        ) {
            Support::Missing { fix, .. } => fix,
            Support::Available => panic!("a refusal is never available"),
        };
        let none = UsernsSysctls::default();
        let zero_max = UsernsSysctls { max_user_namespaces: Some(0), ..none.clone() };
        assert!(fix_for(&eperm, &zero_max, false).unwrap().contains("user.max_user_namespaces"));
        let debian = UsernsSysctls { unprivileged_userns_clone: Some(0), ..none.clone() };
        assert!(fix_for(&eperm, &debian, false).unwrap().contains("kernel.unprivileged_userns_clone=1"));
        let ubuntu = UsernsSysctls { apparmor_restrict_unprivileged_userns: Some(1), ..none.clone() };
        let remount = ChildFailure { step: Step::Remount, errno: Errno::EPERM };
        assert!(fix_for(&remount, &ubuntu, false).unwrap().contains("apparmor_restrict_unprivileged_userns=0"));
        assert!(fix_for(&eperm, &none, true).unwrap().contains("seccomp=unconfined"));
        assert_eq!(fix_for(&eperm, &none, false), None);
        let enospc = ChildFailure { step: Step::Unshare, errno: Errno::ENOSPC };
        assert!(fix_for(&enospc, &none, false).is_some());
    }

    #[test]
    fn landlock_abi_features_and_refusals() {
        let abi3 = Landlock::from_abi(3);
        assert!(abi3.fs && abi3.refer && abi3.truncate && !abi3.tcp && !abi3.ioctl_dev && !abi3.scope);
        let abi6 = Landlock::from_abi(6);
        assert!(abi6.tcp && abi6.ioctl_dev && abi6.scope);
        let Support::Missing { fix, .. } = landlock_refusal(Errno::EOPNOTSUPP) else { panic!("refused") };
        assert!(fix.unwrap().contains("lsm="));
        assert!(!landlock_refusal(Errno::ENOSYS).is_available());
    }

    #[test]
    fn landlock_without_tcp_is_partial() {
        let mut p = probe();
        p.landlock = Landlock::from_abi(2);
        let row = p.rows().into_iter().find(|r| r.feature == "landlock").unwrap();
        assert_eq!(row.status, "partial");
        p.landlock = Landlock::from_abi(4);
        let row = p.rows().into_iter().find(|r| r.feature == "landlock").unwrap();
        assert_eq!(row.status, "yes");
    }

    // The probe on this machine: only what this kernel and its setup guarantee.

    #[test]
    fn probe_this_machine() {
        // The probe must agree with what this machine shows directly, whatever machine runs the test.
        let p = probe();
        assert!(!p.kernel.is_empty());
        assert!(p.no_new_privs);
        if std::path::Path::new(ACTIONS_AVAIL).exists() {
            assert!(p.seccomp.filter.is_available(), "{:?}", p.seccomp);
            assert!(p.seccomp.actions.iter().any(|a| a == "errno"));
        }
        let v2_controllers = fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
        for name in ["memory", "pids"] {
            let v1_dir = format!("/sys/fs/cgroup/{name}");
            if std::path::Path::new(&v1_dir).join("tasks").exists() {
                let c = p.cgroups.controller(name).unwrap();
                assert_eq!(c.version, Some(CgroupVersion::V1), "{c:?}");
                assert!(c.dir.as_deref().is_some_and(|d| d.starts_with(&v1_dir)), "{c:?}");
            } else if v2_controllers.split_whitespace().any(|c| c == name) {
                let c = p.cgroups.controller(name).unwrap();
                assert_eq!(c.version, Some(CgroupVersion::V2), "{c:?}");
            }
        }
    }

    #[test]
    fn one_row_per_feature_and_all_in_display() {
        let p = probe();
        let rows = p.rows();
        let features: Vec<&str> = rows.iter().map(|r| r.feature).collect();
        assert_eq!(features, FEATURES);
        assert!(rows.iter().all(|r| ["yes", "no", "partial"].contains(&r.status)));
        let table = p.to_string();
        for feature in FEATURES {
            assert!(table.contains(feature), "{feature} missing from\n{table}");
        }
    }
}
