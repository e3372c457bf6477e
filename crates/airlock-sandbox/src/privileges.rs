//! Dropping every capability and locking the way back, just before the tool is executed.
//!
//! Why: the tool child runs as uid 0 inside its own user namespace and holds every capability there. Those
//! capabilities reach only what the namespace owns, but that is a lot of kernel code (mounting, network
//! configuration, raw sockets, setting any uid the namespace maps), and a uid-0 process regains its full permitted
//! and effective sets at every `execve` unless told otherwise. So, in this order:
//! 1. the ambient set is cleared (ambient capabilities survive `execve` even for non-root);
//! 2. every capability is dropped from the bounding set, which caps what any later `execve` can grant, file
//!    capabilities and setuid-root binaries included;
//! 3. the securebits are set and locked: `NOROOT` (uid 0 gets no capabilities at `execve`), `NO_SETUID_FIXUP`,
//!    `KEEP_CAPS` off, and no ambient raising, so that nothing the tool runs can turn them back;
//! 4. the effective, permitted and inheritable sets are emptied with `capset`.
//!
//! Then [`set_no_new_privs`] makes `execve` unable to grant anything at all (setuid bits and file capabilities are
//! ignored), which Landlock and unprivileged seccomp filters also require.
//!
//! All of this applies to the calling thread only; the tool child is single-threaded and these are inherited by
//! what it executes and spawns.

use std::fs;
use std::io;

use crate::error::SandboxError;

/// `_LINUX_CAPABILITY_VERSION_3` from `<linux/capability.h>`: 64-bit capability sets, as two 32-bit halves.
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_LAST_CAP_FILE: &str = "/proc/sys/kernel/cap_last_cap";
/// Used when `/proc` is not readable: the highest capability a version-3 capability set can hold. Drops of
/// capabilities the kernel does not know fail with `EINVAL` and are ignored.
const CAP_LAST_CAP_FALLBACK: u32 = 63;

/// The securebits [`drop_all`] sets, each with its lock.
pub const SECUREBITS: libc::c_int = libc::SECBIT_NOROOT
    | libc::SECBIT_NOROOT_LOCKED
    | libc::SECBIT_NO_SETUID_FIXUP
    | libc::SECBIT_NO_SETUID_FIXUP_LOCKED
    | libc::SECBIT_KEEP_CAPS_LOCKED
    | libc::SECBIT_NO_CAP_AMBIENT_RAISE
    | libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`; version 3 takes two, the low and the high 32 capabilities.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability of the calling thread, for good. Needs `CAP_SETPCAP` (which the tool child has in its
/// user namespace): without it the bounding set cannot be changed and this fails.
pub fn drop_all() -> Result<(), SandboxError> {
    prctl(
        "prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)",
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as _,
    )?;

    let last = cap_last_cap();
    for cap in 0..=last {
        match prctl("prctl(PR_CAPBSET_DROP)", libc::PR_CAPBSET_DROP, cap as _) {
            Ok(_) => {}
            // A capability this kernel does not have (only possible with the fallback bound).
            Err(SandboxError::Os { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    // Checked, not assumed: a capability left in the bounding set could be regained by executing a file that has it.
    for cap in 0..=last {
        match prctl("prctl(PR_CAPBSET_READ)", libc::PR_CAPBSET_READ, cap as _) {
            Ok(0) => {}
            Ok(_) => {
                return Err(SandboxError::Invalid(format!(
                    "capability {cap} is still in the bounding set after PR_CAPBSET_DROP"
                )));
            }
            Err(SandboxError::Os { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }

    prctl("prctl(PR_SET_SECUREBITS)", libc::PR_SET_SECUREBITS, SECUREBITS as _)?;

    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let data = [CapData::default(); 2];
    // SAFETY: capset reads one header and, for version 3, two data structs; both are live, properly laid out
    // (#[repr(C)] mirrors of the kernel's structs) and outlive the call. pid 0 means the calling thread. The kernel
    // may write the version it prefers back into the header, which is mutable and ours.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(SandboxError::os("capset(all sets empty)", io::Error::last_os_error()));
    }
    Ok(())
}

/// Sets `no_new_privs` on the calling thread: `execve` grants nothing (setuid bits, file capabilities) from now on,
/// and cannot be undone. Landlock and seccomp need it.
pub fn set_no_new_privs() -> Result<(), SandboxError> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| SandboxError::os("prctl(PR_SET_NO_NEW_PRIVS)", e))
}

/// The highest capability number this kernel knows.
fn cap_last_cap() -> u32 {
    fs::read_to_string(CAP_LAST_CAP_FILE)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map_or(CAP_LAST_CAP_FALLBACK, |n| n.min(CAP_LAST_CAP_FALLBACK))
}

/// `prctl(option, arg2, 0, 0, 0)`, its non-negative result or the error with `step`.
fn prctl(step: &'static str, option: libc::c_int, arg2: libc::c_ulong) -> Result<libc::c_int, SandboxError> {
    // SAFETY: the options used here (PR_CAP_AMBIENT, PR_CAPBSET_DROP, PR_CAPBSET_READ, PR_SET_SECUREBITS) take
    // integers only; the unused arguments are zero as the kernel requires.
    let rc = unsafe { libc::prctl(option, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    if rc < 0 { Err(SandboxError::os(step, io::Error::last_os_error())) } else { Ok(rc) }
}

/// A thread's capability sets, as `/proc/<pid>/task/<tid>/status` shows them (bit n is capability n).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThreadCaps {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
}

impl ThreadCaps {
    /// Parses the `Cap*` lines of a `/proc/.../status` file; `None` if one is missing or malformed.
    pub fn parse(status: &str) -> Option<ThreadCaps> {
        let field = |name: &str| {
            let line = status.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?;
            u64::from_str_radix(line.trim(), 16).ok()
        };
        Some(ThreadCaps {
            inheritable: field("CapInh")?,
            permitted: field("CapPrm")?,
            effective: field("CapEff")?,
            bounding: field("CapBnd")?,
            ambient: field("CapAmb")?,
        })
    }
}

/// The calling thread's capability sets, from `/proc/thread-self/status`. For tests and diagnostics.
pub fn thread_capabilities() -> Result<ThreadCaps, SandboxError> {
    let path = "/proc/thread-self/status";
    let status = fs::read_to_string(path).map_err(|e| SandboxError::os(format!("read {path}"), e))?;
    ThreadCaps::parse(&status).ok_or_else(|| SandboxError::Invalid(format!("{path} has no complete Cap* lines")))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    use std::thread;

    const STATUS: &str = "Name:\tcat\nUmask:\t0022\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n\
                          CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000004\n\
                          NoNewPrivs:\t0\n";

    #[test]
    fn parses_status() {
        let caps = ThreadCaps::parse(STATUS).unwrap();
        assert_eq!(
            caps,
            ThreadCaps {
                inheritable: 0,
                permitted: 0x1ff_ffff_ffff,
                effective: 0x1ff_ffff_ffff,
                bounding: 0x1ff_ffff_ffff,
                ambient: 4
            }
        );
        assert_eq!(ThreadCaps::parse(&STATUS.replace("CapAmb", "CapXyz")), None);
        assert_eq!(ThreadCaps::parse(&STATUS.replace("0000000000000004", "zz")), None);
    }

    #[test]
    fn cap_last_cap_is_what_the_kernel_says() {
        let last = cap_last_cap();
        assert!((37..=63).contains(&last), "{last}"); // CAP_AUDIT_READ (37) is in every kernel Landlock needs.
    }

    #[test]
    fn drop_all_empties_every_set_and_survives_execve() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            println!("SKIPPED: not root, so there are no capabilities to drop (and no CAP_SETPCAP to drop them)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("owned-by-root");
        fs::write(&file, "x").unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();

        let f = file.clone();
        let (before, after, securebits, chown, child_status) = thread::spawn(move || {
            let before = thread_capabilities().unwrap();
            drop_all().unwrap();
            let after = thread_capabilities().unwrap();
            // SAFETY: PR_GET_SECUREBITS takes no arguments and returns the bits.
            let securebits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
            // CAP_CHOWN is gone: root may no longer give its file away.
            let chown = std::os::unix::fs::chown(&f, Some(1), Some(1)).map_err(|e| e.raw_os_error());
            // A uid-0 process executed from here gets nothing back.
            let out = Command::new("cat").arg("/proc/self/status").output().unwrap();
            (before, after, securebits, chown, String::from_utf8(out.stdout).unwrap())
        })
        .join()
        .unwrap();

        assert_ne!(before.effective, 0, "root's test thread should start with capabilities");
        assert_ne!(before.bounding, 0);
        assert_eq!(after, ThreadCaps::default(), "every set empty after drop_all");
        assert_eq!(securebits, SECUREBITS);
        assert_eq!(chown, Err(Some(libc::EPERM)));
        let child = ThreadCaps::parse(&child_status).unwrap();
        assert_eq!(child, ThreadCaps::default(), "the executed child regained capabilities:\n{child_status}");
        assert!(child_status.contains("\nUid:\t0\t0\t0\t0"), "the child ran as root: {child_status}");

        // Unrestricted, this thread still has them: the drop was per thread.
        assert_ne!(thread_capabilities().unwrap().effective, 0);
    }

    #[test]
    fn no_new_privs_is_set_and_sticks() {
        let (before, after, child) = thread::spawn(|| {
            let before = nix::sys::prctl::get_no_new_privs().unwrap();
            set_no_new_privs().unwrap();
            let after = nix::sys::prctl::get_no_new_privs().unwrap();
            let out = Command::new("cat").arg("/proc/self/status").output().unwrap();
            (before, after, String::from_utf8(out.stdout).unwrap())
        })
        .join()
        .unwrap();
        assert!(!before);
        assert!(after);
        assert!(child.contains("NoNewPrivs:\t1"), "{child}");
    }
}
