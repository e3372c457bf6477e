//! Landlock: the tool process's file and TCP allowlist, enforced by the kernel.
//!
//! Why: the mount namespace decides which files the tool can see, but not what it may do with them, and the network
//! namespace decides which networks exist, but not which ports the tool may reach through the ones that do. Landlock
//! adds both as a deny-by-default allowlist that the tool cannot undo: every file access right the newest ABI this
//! crate knows about is handled (so anything not granted below is refused), TCP connect is allowed only to the
//! listed ports, and, when asked, the tool may neither signal nor reach the abstract unix sockets of processes
//! outside its own Landlock domain (its supervisor, the host's session bus if a socket leaks in).
//!
//! The kernel may know an older ABI than this crate. The ruleset is then applied best effort (what the kernel knows
//! is enforced, the rest dropped) and [`Enforcement::Partial`] says which restrictions the kernel could not apply,
//! so that the caller can refuse to run or warn, loudly, instead of silently running with less.
//!
//! [`restrict_self`] restricts the calling thread only (and what it later executes or spawns): it is called in the
//! single-threaded tool child just before `execve`, after `no_new_privs` is set (which it does not set itself).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, LandlockStatus, NetPort, PathBeneath, PathFd, PathFdError,
    RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetError, RulesetStatus, Scope,
};
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;

/// The newest Landlock ABI this code was written and tested against: every file access right it defines is handled.
/// Raising it handles new rights, which (being refused by default) may need new grants below.
const TARGET_ABI: ABI = ABI::V10;

/// File hierarchies the tool may use, by kind of use. Each path grants its rights on itself and everything beneath
/// it. Paths that do not exist are skipped: the caller passes candidates (`/lib64` is absent on some systems).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsRules {
    /// Read files and list directories.
    pub read: Vec<PathBuf>,
    /// As `read`, and execute files (system binaries and libraries).
    pub read_exec: Vec<PathBuf>,
    /// As `read`, and create, write, truncate, rename, link and remove files, directories, symlinks, fifos and
    /// sockets, and connect to the unix sockets made there. Not executing what is written there, not creating
    /// device nodes, not ioctls on devices.
    pub write: Vec<PathBuf>,
    /// As `write`, and execute files (a workspace whose build produces binaries the tool then runs).
    pub write_exec: Vec<PathBuf>,
    /// Device nodes (`/dev/null`, `/dev/zero`, `/dev/urandom`, ...): read, write and, from ABI 5, ioctl.
    pub devices: Vec<PathBuf>,
}

/// Everything [`restrict_self`] needs, built by the parent and passed to the tool child.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LandlockPlan {
    pub fs: FsRules,
    /// TCP ports the tool may connect to (on any address). TCP connect is restricted even when this is empty;
    /// binding is not (inside a private network namespace a listening socket reaches nobody outside).
    pub tcp_connect_ports: Vec<u16>,
    /// Scope abstract unix sockets and signals to the tool's own Landlock domain (ABI 6).
    pub scope: bool,
}

/// How much of a [`LandlockPlan`] the kernel enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Enforcement {
    /// Everything asked for. `abi` is the Landlock ABI used.
    Full { abi: u32 },
    /// What this kernel's ABI knows; `missing` names the restrictions it could not apply (see [`MISSING_NAMES`]).
    Partial { abi: u32, missing: Vec<&'static str> },
    /// Landlock is not available: the tool runs without it.
    NotEnforced { why: String },
}

impl Enforcement {
    pub fn is_full(&self) -> bool {
        matches!(self, Enforcement::Full { .. })
    }
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Enforcement::Full { abi } => write!(f, "Landlock fully enforced (ABI {abi})"),
            Enforcement::Partial { abi, missing } => {
                write!(
                    f,
                    "Landlock partially enforced (ABI {abi}); this kernel cannot restrict: {}",
                    missing.join(", ")
                )
            }
            Enforcement::NotEnforced { why } => write!(f, "Landlock not enforced: {why}"),
        }
    }
}

/// The names [`Enforcement::Partial`] may list, with the ABI that brought each restriction.
/// `unidentified` is listed when the `landlock` crate reports partial enforcement for a reason not in this table.
pub const MISSING_NAMES: [(&str, u32); 6] =
    [("refer", 2), ("truncate", 3), ("tcp", 4), ("ioctl_dev", 5), ("scope", 6), ("resolve_unix", 9)];

fn read_access() -> BitFlags<AccessFs> {
    AccessFs::ReadFile | AccessFs::ReadDir
}

fn write_access() -> BitFlags<AccessFs> {
    read_access()
        | AccessFs::WriteFile
        | AccessFs::RemoveDir
        | AccessFs::RemoveFile
        | AccessFs::MakeReg
        | AccessFs::MakeDir
        | AccessFs::MakeSym
        | AccessFs::MakeFifo
        | AccessFs::MakeSock
        | AccessFs::Refer
        | AccessFs::Truncate
        // Connecting to a pathname unix socket (ABI 9). Granted where the tool may create sockets, so that it can
        // use its own (test servers, language servers); refused elsewhere, so that a host socket visible in a
        // read-only directory (a container runtime's, a session bus's) cannot be reached.
        | AccessFs::ResolveUnix
}

fn device_access() -> BitFlags<AccessFs> {
    AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::IoctlDev
}

/// Restricts the calling thread (and everything it executes or spawns afterwards) to `plan`.
///
/// Does not set `no_new_privs`; the kernel requires it (or `CAP_SYS_ADMIN` in the current user namespace), and the
/// caller sets it first. Returns how much the kernel enforces; an error means nothing was restricted (a path could
/// not be opened for a reason other than not existing, or a Landlock call failed) and the tool must not be run.
pub fn restrict_self(plan: &LandlockPlan) -> Result<Enforcement, SandboxError> {
    let rules = [
        (&plan.fs.read, read_access()),
        (&plan.fs.read_exec, read_access() | AccessFs::Execute),
        (&plan.fs.write, write_access()),
        (&plan.fs.write_exec, write_access() | AccessFs::Execute),
        (&plan.fs.devices, device_access()),
    ];
    // Open every path before the ruleset exists, so that a bad path is reported as such.
    let mut path_rules = Vec::new();
    for (paths, access) in rules {
        for path in paths {
            if let Some(rule) = path_rule(path, access)? {
                path_rules.push(rule);
            }
        }
    }

    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET_ABI))
        .map_err(|e| landlock_error("landlock: handle file accesses", e))?
        .handle_access(AccessNet::ConnectTcp)
        .map_err(|e| landlock_error("landlock: handle TCP connect", e))?;
    if plan.scope {
        ruleset = ruleset
            .scope(Scope::AbstractUnixSocket | Scope::Signal)
            .map_err(|e| landlock_error("landlock: scope signals and abstract unix sockets", e))?;
    }
    let mut created = ruleset
        .create()
        .map_err(|e| landlock_error("landlock: create ruleset", e))?
        // The caller sets no_new_privs itself, in its own order; see privileges::set_no_new_privs.
        .no_new_privs(false);
    for rule in path_rules {
        created = created.add_rule(rule).map_err(|e| landlock_error("landlock: add path rule", e))?;
    }
    for &port in &plan.tcp_connect_ports {
        created = created
            .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
            .map_err(|e| landlock_error(format!("landlock: allow TCP connect to port {port}"), e))?;
    }
    let status = created.restrict_self().map_err(|e| landlock_error("landlock: restrict self", e))?;
    Ok(enforcement(&status, plan))
}

/// Opens `path` for a rule granting `access`, or `None` if it does not exist.
fn path_rule(path: &Path, access: BitFlags<AccessFs>) -> Result<Option<PathBeneath<PathFd>>, SandboxError> {
    let fd = match PathFd::new(path) {
        Ok(fd) => fd,
        Err(PathFdError::OpenCall { source, .. })
            if matches!(source.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(SandboxError::os(format!("landlock: open {}", path.display()), io::Error::other(e))),
    };
    let stat =
        nix::sys::stat::fstat(&fd).map_err(|e| SandboxError::os(format!("landlock: stat {}", path.display()), e))?;
    // Directory-only rights (list, create, remove) on a file would make the `landlock` crate drop them and report
    // the whole ruleset as partially enforced; they mean nothing on a file, so they are removed here.
    let is_dir = stat.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let access = if is_dir { access } else { access & AccessFs::from_file(TARGET_ABI) };
    Ok(Some(PathBeneath::new(fd, access)))
}

fn landlock_error(step: impl Into<String>, e: RulesetError) -> SandboxError {
    SandboxError::os(step, io::Error::other(e))
}

/// Turns the `landlock` crate's status into an [`Enforcement`], naming what the kernel's ABI lacks.
fn enforcement(status: &RestrictionStatus, plan: &LandlockPlan) -> Enforcement {
    let abi = match status.landlock {
        LandlockStatus::NotEnabled => {
            return Enforcement::NotEnforced {
                why: "the kernel has Landlock but it is not enabled at boot (add landlock to the lsm= kernel \
                      parameter)"
                    .to_owned(),
            };
        }
        LandlockStatus::NotImplemented => {
            return Enforcement::NotEnforced { why: "the kernel is built without Landlock (Linux 5.13+)".to_owned() };
        }
        LandlockStatus::Available { effective_abi, .. } => effective_abi as u32,
    };
    match status.ruleset {
        RulesetStatus::FullyEnforced => Enforcement::Full { abi },
        RulesetStatus::PartiallyEnforced => {
            let mut missing = missing_at(abi, plan.scope);
            if missing.is_empty() {
                missing.push("unidentified");
            }
            Enforcement::Partial { abi, missing }
        }
        RulesetStatus::NotEnforced => {
            Enforcement::NotEnforced { why: format!("the kernel's Landlock ABI {abi} could not enforce the ruleset") }
        }
    }
}

/// The restrictions asked of every ruleset that a kernel with Landlock ABI `abi` cannot apply.
fn missing_at(abi: u32, scope: bool) -> Vec<&'static str> {
    MISSING_NAMES
        .iter()
        .filter(|&&(name, since)| abi < since && (name != "scope" || scope))
        .map(|&(name, _)| name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs;
    use std::io::ErrorKind;
    use std::net::{TcpListener, TcpStream};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
    use std::process::Command;
    use std::thread;

    /// The kernel's Landlock ABI, asked directly (the `landlock` crate keeps its own probe private).
    fn kernel_abi() -> u32 {
        // SAFETY: LANDLOCK_CREATE_RULESET_VERSION with a null attribute and size 0 only returns the ABI version (or
        // an error); no memory is read or written and no file descriptor is created.
        let v =
            unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<libc::c_void>(), 0usize, 1u32) };
        u32::try_from(v).unwrap_or(0)
    }

    /// Runs `f` in a new thread restricted to `plan` (after no_new_privs, as the tool child does), so that the test
    /// thread and the rest of the test binary stay unrestricted.
    fn restricted<T: Send + 'static>(plan: LandlockPlan, f: impl FnOnce() -> T + Send + 'static) -> (Enforcement, T) {
        thread::spawn(move || {
            crate::privileges::set_no_new_privs().unwrap();
            let enforcement = restrict_self(&plan).unwrap();
            (enforcement, f())
        })
        .join()
        .unwrap()
    }

    fn errno<T>(r: io::Result<T>) -> Option<i32> {
        r.err().and_then(|e| e.raw_os_error())
    }

    /// System directories a dynamically linked `/bin/true` needs (some do not exist here: they are skipped).
    fn system_read_exec() -> Vec<PathBuf> {
        ["/usr", "/bin", "/lib", "/lib64", "/lib32", "/etc/ld.so.cache", "/nonexistent/airlock"]
            .iter()
            .map(PathBuf::from)
            .collect()
    }

    #[test]
    fn access_sets_are_what_the_docs_say() {
        assert!(!read_access().contains(AccessFs::Execute));
        let write = write_access();
        for right in [AccessFs::Execute, AccessFs::MakeChar, AccessFs::MakeBlock, AccessFs::IoctlDev] {
            assert!(!write.contains(right), "{right:?} in write");
        }
        assert!(write.contains(read_access()));
        assert!(write.contains(AccessFs::Truncate | AccessFs::Refer | AccessFs::MakeReg));
        assert_eq!(device_access() & !AccessFs::from_file(TARGET_ABI), BitFlags::EMPTY, "devices are files");
        // Every right granted somewhere is handled.
        let all = AccessFs::from_all(TARGET_ABI);
        assert!(all.contains(write | AccessFs::Execute | device_access()));
    }

    #[test]
    fn missing_follows_the_abi() {
        assert_eq!(missing_at(1, true), ["refer", "truncate", "tcp", "ioctl_dev", "scope", "resolve_unix"]);
        assert_eq!(missing_at(4, false), ["ioctl_dev", "resolve_unix"]);
        assert_eq!(missing_at(7, true), ["resolve_unix"]);
        assert!(missing_at(9, true).is_empty());
        assert!(missing_at(TARGET_ABI as u32, true).is_empty());
    }

    #[test]
    fn display_and_json() {
        let partial = Enforcement::Partial { abi: 7, missing: vec!["resolve_unix"] };
        assert_eq!(
            partial.to_string(),
            "Landlock partially enforced (ABI 7); this kernel cannot restrict: resolve_unix"
        );
        let json = serde_json::to_value(&partial).unwrap();
        assert_eq!(json, serde_json::json!({"status": "partial", "abi": 7, "missing": ["resolve_unix"]}));
        assert_eq!(Enforcement::Full { abi: 9 }.to_string(), "Landlock fully enforced (ABI 9)");
    }

    #[test]
    fn read_only_directory() {
        let abi = kernel_abi();
        if abi == 0 {
            println!("SKIPPED: this kernel has no Landlock");
            return;
        }
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        fs::write(a.path().join("in-a"), "a").unwrap();
        fs::write(b.path().join("in-b"), "b").unwrap();
        let plan = LandlockPlan {
            fs: FsRules {
                read: vec![a.path().to_owned(), PathBuf::from("/nonexistent/airlock-candidate")],
                ..FsRules::default()
            },
            ..LandlockPlan::default()
        };
        let (ap, bp) = (a.path().to_owned(), b.path().to_owned());
        let (enforcement, (read_a, list_a, read_b, passwd, write_a, create_a)) = restricted(plan, move || {
            (
                fs::read_to_string(ap.join("in-a")),
                fs::read_dir(&ap).map(|d| d.count()),
                errno(fs::read_to_string(bp.join("in-b"))),
                errno(fs::read("/etc/passwd")),
                errno(fs::OpenOptions::new().append(true).open(ap.join("in-a"))),
                errno(fs::write(ap.join("new"), "x")),
            )
        });
        assert!(matches!(enforcement, Enforcement::Full { .. } | Enforcement::Partial { .. }), "{enforcement}");
        assert_eq!(read_a.unwrap(), "a");
        assert_eq!(list_a.unwrap(), 1);
        assert_eq!(read_b, Some(libc::EACCES));
        assert_eq!(passwd, Some(libc::EACCES));
        assert_eq!(write_a, Some(libc::EACCES));
        assert_eq!(create_a, Some(libc::EACCES));
        assert!(!a.path().join("new").exists());
    }

    #[test]
    fn enforcement_matches_the_kernel_abi() {
        let abi = kernel_abi();
        if abi == 0 {
            println!("SKIPPED: this kernel has no Landlock");
            return;
        }
        let plan = LandlockPlan { scope: true, ..LandlockPlan::default() };
        let (enforcement, ()) = restricted(plan, || ());
        let used = abi.min(TARGET_ABI as u32);
        let missing = missing_at(used, true);
        if missing.is_empty() {
            assert_eq!(enforcement, Enforcement::Full { abi: used });
        } else {
            assert_eq!(enforcement, Enforcement::Partial { abi: used, missing });
        }
    }

    #[test]
    fn write_without_exec_refuses_to_run_what_it_wrote() {
        if kernel_abi() == 0 {
            println!("SKIPPED: this kernel has no Landlock");
            return;
        }
        let a = tempfile::tempdir().unwrap();
        let tool = a.path().join("true");
        fs::copy("/bin/true", &tool).unwrap();
        let write_only = LandlockPlan {
            fs: FsRules { read_exec: system_read_exec(), write: vec![a.path().to_owned()], ..FsRules::default() },
            ..LandlockPlan::default()
        };
        let ap = a.path().to_owned();
        let t = tool.clone();
        let (_, (created, content, removed, renamed_dir, exec)) = restricted(write_only, move || {
            let created = fs::write(ap.join("made"), "made");
            let content = fs::read_to_string(ap.join("made"));
            fs::create_dir(ap.join("sub")).unwrap();
            let renamed_dir = fs::rename(ap.join("made"), ap.join("sub/made"));
            let removed = fs::remove_file(ap.join("sub/made"));
            (created, content, removed, renamed_dir, Command::new(&t).status().map(|s| s.success()))
        });
        created.unwrap();
        assert_eq!(content.unwrap(), "made");
        renamed_dir.unwrap();
        removed.unwrap();
        assert_eq!(exec.unwrap_err().kind(), ErrorKind::PermissionDenied);

        // The same binary runs once the directory is write_exec: the refusal above was the missing Execute right,
        // not a library the plan forgot.
        let write_exec = LandlockPlan {
            fs: FsRules { read_exec: system_read_exec(), write_exec: vec![a.path().to_owned()], ..FsRules::default() },
            ..LandlockPlan::default()
        };
        let (_, exec) = restricted(write_exec, move || Command::new(&tool).status().map(|s| s.success()));
        assert!(exec.unwrap());
    }

    #[test]
    fn single_file_and_device_rules() {
        if kernel_abi() == 0 {
            println!("SKIPPED: this kernel has no Landlock");
            return;
        }
        let a = tempfile::tempdir().unwrap();
        fs::write(a.path().join("file"), "file").unwrap();
        fs::write(a.path().join("other"), "other").unwrap();
        let plan = LandlockPlan {
            fs: FsRules {
                // A read rule on a file: directory rights are dropped by path_rule, not reported as partial.
                read: vec![a.path().join("file")],
                devices: vec![PathBuf::from("/dev/null")],
                ..FsRules::default()
            },
            ..LandlockPlan::default()
        };
        let ap = a.path().to_owned();
        let (enforcement, (file, other, null_write, null_read, zero)) = restricted(plan, move || {
            (
                fs::read_to_string(ap.join("file")),
                errno(fs::read(ap.join("other"))),
                fs::write("/dev/null", "x"),
                fs::read("/dev/null"),
                errno(fs::read("/dev/zero")),
            )
        });
        // Partial only for what the kernel lacks, never for the file rule.
        let used = kernel_abi().min(TARGET_ABI as u32);
        if missing_at(used, false).is_empty() {
            assert_eq!(enforcement, Enforcement::Full { abi: used });
        } else {
            assert_eq!(enforcement, Enforcement::Partial { abi: used, missing: missing_at(used, false) });
        }
        assert_eq!(file.unwrap(), "file");
        assert_eq!(other, Some(libc::EACCES));
        null_write.unwrap();
        assert!(null_read.unwrap().is_empty());
        assert_eq!(zero, Some(libc::EACCES));
    }

    #[test]
    fn a_file_rule_does_not_make_the_ruleset_partial() {
        // The plan-level tests cannot tell this on kernels below ABI 9 (partial anyway), so a ruleset handling
        // only ABI 1 rights (which every Landlock kernel enforces fully) gets the rule path_rule makes for a file.
        if kernel_abi() == 0 {
            println!("SKIPPED: this kernel has no Landlock");
            return;
        }
        let a = tempfile::tempdir().unwrap();
        fs::write(a.path().join("file"), "file").unwrap();
        let rule = path_rule(&a.path().join("file"), read_access() | AccessFs::Execute).unwrap().unwrap();
        let status = thread::spawn(move || {
            Ruleset::default()
                .handle_access(AccessFs::from_all(ABI::V1))
                .unwrap()
                .create()
                .unwrap()
                .add_rule(rule)
                .unwrap()
                .restrict_self()
                .unwrap()
                .ruleset
        })
        .join()
        .unwrap();
        assert_eq!(status, RulesetStatus::FullyEnforced);
    }

    #[test]
    fn tcp_connect_only_to_listed_ports() {
        if kernel_abi() < 4 {
            println!("SKIPPED: Landlock ABI {} < 4 cannot restrict TCP", kernel_abi());
            return;
        }
        let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = TcpListener::bind("127.0.0.1:0").unwrap();
        let (allowed_addr, refused_addr) = (allowed.local_addr().unwrap(), refused.local_addr().unwrap());
        let plan = LandlockPlan { tcp_connect_ports: vec![allowed_addr.port()], ..LandlockPlan::default() };
        let (_, (ok, denied)) = restricted(plan, move || {
            (TcpStream::connect(allowed_addr).map(drop), errno(TcpStream::connect(refused_addr)))
        });
        ok.unwrap();
        assert_eq!(denied, Some(libc::EACCES));
        // Unrestricted, the second port is reachable: the refusal was Landlock's.
        TcpStream::connect(refused_addr).unwrap();
    }

    #[test]
    fn scope_blocks_signals_and_abstract_sockets_outside_the_domain() {
        if kernel_abi() < 6 {
            println!("SKIPPED: Landlock ABI {} < 6 cannot scope signals", kernel_abi());
            return;
        }
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        let name = format!("airlock-landlock-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let _listener = UnixListener::bind_addr(&addr).unwrap();

        let kill0 = move || {
            // SAFETY: signal 0 sends nothing; it only checks that the process exists and may be signalled.
            if unsafe { libc::kill(pid, 0) } == 0 { None } else { io::Error::last_os_error().raw_os_error() }
        };
        let connect =
            move || errno(UnixStream::connect_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()));
        let (kill_unscoped, connect_unscoped) = (kill0(), connect());
        let plan = LandlockPlan { scope: true, ..LandlockPlan::default() };
        let (_, (kill_scoped, connect_scoped)) = restricted(plan, move || (kill0(), connect()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(kill_unscoped, None);
        assert_eq!(connect_unscoped, None);
        assert_eq!(kill_scoped, Some(libc::EPERM));
        assert_eq!(connect_scoped, Some(libc::EPERM));
    }

    #[test]
    fn a_path_that_cannot_be_opened_is_an_error_not_a_skip() {
        // A path through a file (ENOTDIR) is skipped like a missing one; a path too long to open is an error.
        let long = PathBuf::from(format!("/{}", "x".repeat(5000)));
        let err = path_rule(&long, read_access()).unwrap_err();
        assert!(err.to_string().contains("landlock: open"), "{err}");
        assert!(path_rule(Path::new("/etc/passwd/x"), read_access()).unwrap().is_none());
        assert!(path_rule(Path::new("/nonexistent/airlock"), read_access()).unwrap().is_none());
    }
}
