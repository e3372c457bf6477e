//! The tool process's seccomp filter: the system calls a tool has no business making.
//!
//! Why: namespaces, Landlock and dropped capabilities cover files, network and privilege, but the kernel's attack
//! surface and a few escape hatches remain reachable through plain system calls: creating new user namespaces
//! (where the tool would be root again and reach much more kernel code), io_uring and eBPF (large, often
//! exploited, and io_uring bypasses seccomp for the operations it performs), the kernel keyring (shared across
//! namespaces), ptrace and `process_vm_*` (reading another process's memory), mounting, loading modules, pushing
//! keystrokes into a terminal with `TIOCSTI`, raw and packet sockets, and turning off address-space randomization.
//!
//! The filter is a deny list (everything else is allowed) so that ordinary tools keep working, and refused calls
//! fail with an errno rather than killing the tool, so that the tool reports a clear error ("Operation not
//! permitted") instead of dying with SIGSYS. `clone3` fails with `ENOSYS` because its flags live in memory a filter
//! cannot read: the C library then falls back to `clone`, whose flags the filter checks.
//!
//! Foreign system call ABIs are closed: a call made through another architecture's entry point (32-bit `int 0x80`
//! on x86_64, AArch32 on aarch64) kills the process, because a number-based deny list means nothing there, and x32
//! calls on x86_64 (the same architecture tag with bit 30 set in the number) fail with `ENOSYS`.
//!
//! [`build`] compiles the filters once, in the parent; [`install`] applies them to the calling thread in the tool
//! child, after `no_new_privs`, just before `execve`.

use std::collections::BTreeMap;
use std::io;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};

use crate::error::SandboxError;

/// System calls refused outright with `EPERM`. Names absent on an architecture (`iopl`, `ioperm` outside x86_64)
/// are skipped there.
pub const DENIED: &[&str] = &[
    // Other processes' memory and control.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    // io_uring: a second system call interface that seccomp does not see into.
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // New namespaces (see also clone in RESTRICTED) and joining others.
    "unshare",
    "setns",
    // The kernel keyring is not namespaced.
    "add_key",
    "request_key",
    "keyctl",
    // Mounts.
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    // Large kernel attack surface.
    "bpf",
    "perf_event_open",
    "userfaultfd",
    // The machine itself.
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    // Opening files by handle sidesteps path-based checks.
    "open_by_handle_at",
    "name_to_handle_at",
    // I/O port access (x86_64 only).
    "iopl",
    "ioperm",
    // Profiling support long removed from the kernel (ENOSYS there anyway).
    "lookup_dcookie",
];

/// System calls refused only with some arguments, and which.
pub const RESTRICTED: &[(&str, &str)] = &[
    (
        "clone",
        "EPERM with any namespace flag (CLONE_NEWUSER, NEWNS, NEWPID, NEWNET, NEWIPC, NEWUTS, NEWCGROUP, NEWTIME)",
    ),
    ("clone3", "ENOSYS always (its flags cannot be inspected; the C library falls back to clone)"),
    ("ioctl", "EPERM for TIOCSTI and TIOCLINUX (faking terminal input)"),
    ("socket", "EAFNOSUPPORT for families other than AF_UNIX, AF_INET, AF_INET6; EPERM for SOCK_RAW and SOCK_PACKET"),
    ("socketpair", "EAFNOSUPPORT for families other than AF_UNIX"),
    ("personality", "EPERM for anything but PER_LINUX and the 0xffffffff query (e.g. ADDR_NO_RANDOMIZE)"),
];

/// The namespace flags `clone` may not carry. `CLONE_NEWTIME` (0x80) overlaps the exit-signal byte of the legacy
/// `clone`, but no valid signal number has that bit, so refusing it never refuses a legitimate call.
const CLONE_NAMESPACE_FLAGS: [libc::c_int; 8] = [
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWTIME,
];

/// `SOCK_PACKET` (obsolete packet sockets), not in the `libc` crate for Linux.
const SOCK_PACKET: libc::c_int = 10;
/// The bits of `socket`'s type argument that hold the type (the rest are `SOCK_NONBLOCK`, `SOCK_CLOEXEC`).
const SOCK_TYPE_MASK: u64 = 0xf;
/// The plain Linux persona, `PER_LINUX` (not in the `libc` crate).
const PER_LINUX: u64 = 0;
/// `personality(0xffffffff)` only queries the current persona.
const PERSONALITY_QUERY: u64 = 0xffff_ffff;
/// An ioctl request number as a filter value (`libc::Ioctl` is `c_ulong` with glibc, `c_int` with musl).
#[allow(clippy::unnecessary_cast)]
const fn ioctl_request(request: libc::Ioctl) -> u64 {
    request as u64
}

/// x32 system calls on x86_64 have this bit set in their number.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The compiled filters, in installation order. Built once by [`build`], installed by [`install`].
#[derive(Debug, Clone)]
pub struct SeccompProgram {
    filters: Vec<BpfProgram>,
}

impl SeccompProgram {
    /// The number of BPF instructions, over all filters (the kernel allows 32768 per thread, filters included).
    pub fn instructions(&self) -> usize {
        self.filters.iter().map(Vec::len).sum()
    }
}

/// This architecture's number for a system call in [`DENIED`], or `None` where it does not exist.
fn syscall_number(name: &str) -> Option<i64> {
    let nr = match name {
        "ptrace" => libc::SYS_ptrace,
        "process_vm_readv" => libc::SYS_process_vm_readv,
        "process_vm_writev" => libc::SYS_process_vm_writev,
        "io_uring_setup" => libc::SYS_io_uring_setup,
        "io_uring_enter" => libc::SYS_io_uring_enter,
        "io_uring_register" => libc::SYS_io_uring_register,
        "unshare" => libc::SYS_unshare,
        "setns" => libc::SYS_setns,
        "add_key" => libc::SYS_add_key,
        "request_key" => libc::SYS_request_key,
        "keyctl" => libc::SYS_keyctl,
        "mount" => libc::SYS_mount,
        "umount2" => libc::SYS_umount2,
        "pivot_root" => libc::SYS_pivot_root,
        "chroot" => libc::SYS_chroot,
        "move_mount" => libc::SYS_move_mount,
        "open_tree" => libc::SYS_open_tree,
        "fsopen" => libc::SYS_fsopen,
        "fsconfig" => libc::SYS_fsconfig,
        "fsmount" => libc::SYS_fsmount,
        "fspick" => libc::SYS_fspick,
        "mount_setattr" => libc::SYS_mount_setattr,
        "bpf" => libc::SYS_bpf,
        "perf_event_open" => libc::SYS_perf_event_open,
        "userfaultfd" => libc::SYS_userfaultfd,
        "kexec_load" => libc::SYS_kexec_load,
        "kexec_file_load" => libc::SYS_kexec_file_load,
        "init_module" => libc::SYS_init_module,
        "finit_module" => libc::SYS_finit_module,
        "delete_module" => libc::SYS_delete_module,
        "reboot" => libc::SYS_reboot,
        "swapon" => libc::SYS_swapon,
        "swapoff" => libc::SYS_swapoff,
        "acct" => libc::SYS_acct,
        "quotactl" => libc::SYS_quotactl,
        "syslog" => libc::SYS_syslog,
        "open_by_handle_at" => libc::SYS_open_by_handle_at,
        "name_to_handle_at" => libc::SYS_name_to_handle_at,
        #[cfg(target_arch = "x86_64")]
        "iopl" => libc::SYS_iopl,
        #[cfg(target_arch = "x86_64")]
        "ioperm" => libc::SYS_ioperm,
        "lookup_dcookie" => libc::SYS_lookup_dcookie,
        _ => return None,
    };
    Some(nr)
}

fn target_arch() -> Result<TargetArch, SandboxError> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else {
        Err(SandboxError::Unavailable {
            feature: "seccomp",
            why: format!("the syscall filter is written for x86_64 and aarch64, not {}", std::env::consts::ARCH),
            fix: "run on x86_64 or aarch64".to_owned(),
        })
    }
}

fn filter_error(e: seccompiler::BackendError) -> SandboxError {
    SandboxError::os("seccomp: compile filter", io::Error::other(e))
}

/// One condition on the low 32 bits of argument `arg` (the kernel reads `int` arguments from those bits only, so
/// garbage in the high half must not let a call through).
fn dword(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, SandboxError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(filter_error)
}

/// A rule matching when all `conditions` hold. (A syscall whose rule list is empty matches unconditionally.)
fn all(conditions: Vec<SeccompCondition>) -> Result<SeccompRule, SandboxError> {
    SeccompRule::new(conditions).map_err(filter_error)
}

/// Compiles rules into a filter returning `errno` on a match and allowing everything else.
fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    errno: libc::c_int,
    arch: TargetArch,
) -> Result<BpfProgram, SandboxError> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch)
        .map_err(filter_error)?;
    BpfProgram::try_from(filter).map_err(filter_error)
}

/// Builds the filters.
///
/// seccompiler gives a filter one action for matching calls, and the calls here need three different errnos, so
/// there is one filter per errno, each allowing what it does not match. The kernel runs every installed filter
/// and obeys the strictest answer; between two errno answers, the filter installed last wins, so the
/// `EAFNOSUPPORT` filter is installed last and `socket(AF_PACKET, SOCK_RAW)` fails with `EAFNOSUPPORT`, not `EPERM`.
pub fn build() -> Result<SeccompProgram, SandboxError> {
    let arch = target_arch()?;
    let mut filters = Vec::with_capacity(4);

    #[cfg(target_arch = "x86_64")]
    filters.push(x32_filter());

    let enosys: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, vec![])].into_iter().collect();
    filters.push(compile(enosys, libc::ENOSYS, arch)?);

    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in DENIED.iter().filter_map(|name| syscall_number(name)) {
        eperm.insert(nr, vec![]);
    }
    // clone: one rule per flag, any of which matching refuses the call.
    let clone_rules = CLONE_NAMESPACE_FLAGS
        .iter()
        .map(|&flag| all(vec![dword(0, SeccompCmpOp::MaskedEq(flag as u64), flag as u64)?]))
        .collect::<Result<Vec<_>, _>>()?;
    eperm.insert(libc::SYS_clone, clone_rules);
    eperm.insert(
        libc::SYS_ioctl,
        vec![
            all(vec![dword(1, SeccompCmpOp::Eq, ioctl_request(libc::TIOCSTI))?])?,
            all(vec![dword(1, SeccompCmpOp::Eq, ioctl_request(libc::TIOCLINUX))?])?,
        ],
    );
    eperm.insert(
        libc::SYS_socket,
        vec![
            all(vec![dword(1, SeccompCmpOp::MaskedEq(SOCK_TYPE_MASK), libc::SOCK_RAW as u64)?])?,
            all(vec![dword(1, SeccompCmpOp::MaskedEq(SOCK_TYPE_MASK), SOCK_PACKET as u64)?])?,
        ],
    );
    eperm.insert(
        libc::SYS_personality,
        vec![all(vec![dword(0, SeccompCmpOp::Ne, PER_LINUX)?, dword(0, SeccompCmpOp::Ne, PERSONALITY_QUERY)?])?],
    );
    filters.push(compile(eperm, libc::EPERM, arch)?);

    let not_unix_or_inet = all(vec![
        dword(0, SeccompCmpOp::Ne, libc::AF_UNIX as u64)?,
        dword(0, SeccompCmpOp::Ne, libc::AF_INET as u64)?,
        dword(0, SeccompCmpOp::Ne, libc::AF_INET6 as u64)?,
    ])?;
    let not_unix = all(vec![dword(0, SeccompCmpOp::Ne, libc::AF_UNIX as u64)?])?;
    let eafnosupport: BTreeMap<i64, Vec<SeccompRule>> =
        [(libc::SYS_socket, vec![not_unix_or_inet]), (libc::SYS_socketpair, vec![not_unix])].into_iter().collect();
    filters.push(compile(eafnosupport, libc::EAFNOSUPPORT, arch)?);

    Ok(SeccompProgram { filters })
}

/// x32 calls (x86_64's architecture tag, number with bit 30 set) fail with `ENOSYS`, as on a kernel without x32.
/// seccompiler matches exact numbers only, so this filter is written by hand.
#[cfg(target_arch = "x86_64")]
fn x32_filter() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const ARCH_OFFSET: u32 = 4; // struct seccomp_data { int nr; __u32 arch; ... }
    const NR_OFFSET: u32 = 0;
    const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
    let insn = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        insn(LD_W_ABS, 0, 0, ARCH_OFFSET),
        // Another architecture: not this filter's business (the others kill it).
        insn(JEQ_K, 0, 3, AUDIT_ARCH_X86_64),
        insn(LD_W_ABS, 0, 0, NR_OFFSET),
        insn(JGE_K, 0, 1, X32_SYSCALL_BIT),
        insn(RET_K, 0, 0, u32::from(SeccompAction::Errno(libc::ENOSYS as u32))),
        insn(RET_K, 0, 0, u32::from(SeccompAction::Allow)),
    ]
}

/// Installs the filters on the calling thread (no `TSYNC`: the tool child is single-threaded, and the filters are
/// inherited by what it executes and spawns).
///
/// `no_new_privs` must already be set (the kernel refuses an unprivileged filter otherwise, and the sandbox sets it
/// explicitly, in order): this is checked rather than done here. If installing the second or a later filter fails,
/// the earlier ones stay; the caller must not execute the tool after any error.
pub fn install(program: &SeccompProgram) -> Result<(), SandboxError> {
    let nnp = nix::sys::prctl::get_no_new_privs().map_err(|e| SandboxError::os("prctl(PR_GET_NO_NEW_PRIVS)", e))?;
    if !nnp {
        return Err(SandboxError::Invalid(
            "seccomp::install: no_new_privs is not set; call privileges::set_no_new_privs first".to_owned(),
        ));
    }
    for filter in &program.filters {
        seccompiler::apply_filter(filter).map_err(|e| {
            let source = match e {
                seccompiler::Error::Seccomp(e) | seccompiler::Error::Prctl(e) => e,
                other => io::Error::other(other.to_string()),
            };
            SandboxError::os("seccomp(SECCOMP_SET_MODE_FILTER)", source)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::fd::{FromRawFd, OwnedFd};
    use std::process::Command;
    use std::thread;

    // ---- A classic-BPF interpreter for seccomp filters, to check every rule without making the calls. ----

    const RET_KILL_PROCESS: u32 = 0x8000_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;

    #[derive(Clone, Copy)]
    struct Data {
        nr: i64,
        arch: u32,
        args: [u64; 6],
    }

    fn native_arch() -> u32 {
        if cfg!(target_arch = "x86_64") { 62 | 0x8000_0000 | 0x4000_0000 } else { 183 | 0x8000_0000 | 0x4000_0000 }
    }

    fn call(nr: i64, args: &[u64]) -> Data {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        Data { nr, arch: native_arch(), args: a }
    }

    /// The 32-bit word at `offset` in `struct seccomp_data` (little-endian).
    fn load(d: &Data, offset: u32) -> u32 {
        match offset {
            0 => d.nr as u32,
            4 => d.arch,
            8 | 12 => 0, // instruction_pointer
            16..=63 => {
                let arg = d.args[((offset - 16) / 8) as usize];
                if offset.is_multiple_of(8) { arg as u32 } else { (arg >> 32) as u32 }
            }
            _ => panic!("load out of seccomp_data at {offset}"),
        }
    }

    fn run(prog: &[sock_filter], d: &Data) -> u32 {
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = &prog[pc];
            pc += 1;
            match i.code {
                0x20 => acc = load(d, i.k), // ld [k]
                0x54 => acc &= i.k,         // and #k
                0x05 => pc += i.k as usize, // ja
                0x06 => return i.k,         // ret #k
                0x15 | 0x25 | 0x35 | 0x45 => {
                    let taken = match i.code {
                        0x15 => acc == i.k,
                        0x25 => acc > i.k,
                        0x35 => acc >= i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += if taken { i.jt } else { i.jf } as usize;
                }
                code => panic!("instruction {code:#x} not interpreted"),
            }
        }
    }

    /// What the kernel would do: every filter runs, the most recently installed first, and the lowest action
    /// (compared as signed) wins, the first seen among equals.
    fn verdict(p: &SeccompProgram, d: Data) -> u32 {
        let mut ret = RET_ALLOW;
        for filter in p.filters.iter().rev() {
            let cur = run(filter, &d);
            if ((cur & 0xffff_0000) as i32) < ((ret & 0xffff_0000) as i32) {
                ret = cur;
            }
        }
        ret
    }

    fn errno(e: libc::c_int) -> u32 {
        RET_ERRNO | e as u32
    }

    #[test]
    fn every_denied_call_is_refused_with_eperm() {
        let p = build().unwrap();
        let mut seen = 0;
        for name in DENIED {
            let Some(nr) = syscall_number(name) else {
                assert!(cfg!(not(target_arch = "x86_64")) && ["iopl", "ioperm"].contains(name), "{name} unknown");
                continue;
            };
            seen += 1;
            assert_eq!(verdict(&p, call(nr, &[])), errno(libc::EPERM), "{name}");
            assert_eq!(verdict(&p, call(nr, &[u64::MAX; 6])), errno(libc::EPERM), "{name}");
        }
        assert!(seen >= DENIED.len() - 2);
        for nr in [libc::SYS_read, libc::SYS_write, libc::SYS_openat, libc::SYS_getpid, libc::SYS_execve] {
            assert_eq!(verdict(&p, call(nr, &[1, 2, 3])), RET_ALLOW, "{nr}");
        }
        // The restricted ones are not in DENIED (their rules would be overwritten).
        for (name, _) in RESTRICTED {
            assert!(!DENIED.contains(name));
        }
    }

    #[test]
    fn clone_with_a_namespace_flag_is_refused() {
        let p = build().unwrap();
        let sigchld = libc::SIGCHLD as u64;
        for flag in CLONE_NAMESPACE_FLAGS {
            let flags = flag as u64 | sigchld | libc::CLONE_VM as u64;
            assert_eq!(verdict(&p, call(libc::SYS_clone, &[flags])), errno(libc::EPERM), "{flag:#x}");
        }
        // fork, vfork-like and thread creation stay allowed.
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        for flags in [sigchld, thread, (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | sigchld] {
            assert_eq!(verdict(&p, call(libc::SYS_clone, &[flags])), RET_ALLOW, "{flags:#x}");
        }
        assert_eq!(verdict(&p, call(libc::SYS_clone3, &[0, 88])), errno(libc::ENOSYS));
    }

    #[test]
    fn ioctl_socket_and_personality_arguments() {
        let p = build().unwrap();
        let ioctl = |cmd: u64| verdict(&p, call(libc::SYS_ioctl, &[0, cmd, 0]));
        assert_eq!(ioctl(ioctl_request(libc::TIOCSTI)), errno(libc::EPERM));
        assert_eq!(ioctl(ioctl_request(libc::TIOCLINUX)), errno(libc::EPERM));
        // The kernel takes the command as an unsigned int: high bits must not hide it.
        assert_eq!(ioctl(ioctl_request(libc::TIOCSTI) | 1 << 32), errno(libc::EPERM));
        assert_eq!(ioctl(ioctl_request(libc::FIONREAD)), RET_ALLOW);
        assert_eq!(ioctl(ioctl_request(libc::TIOCGWINSZ)), RET_ALLOW);

        let socket = |family: i32, ty: i32| verdict(&p, call(libc::SYS_socket, &[family as u64, ty as u64, 0]));
        let stream = libc::SOCK_STREAM | libc::SOCK_CLOEXEC;
        for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
            assert_eq!(socket(family, stream), RET_ALLOW);
            assert_eq!(socket(family, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK), RET_ALLOW);
            assert_eq!(socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC), errno(libc::EPERM));
            assert_eq!(socket(family, SOCK_PACKET), errno(libc::EPERM));
        }
        // 40: AF_VSOCK (not in the libc crate for Linux).
        for family in [libc::AF_PACKET, libc::AF_NETLINK, 40, libc::AF_BLUETOOTH, libc::AF_ALG, 0] {
            assert_eq!(socket(family, stream), errno(libc::EAFNOSUPPORT), "{family}");
            // Both filters match; the family answer wins (installed last).
            assert_eq!(socket(family, libc::SOCK_RAW), errno(libc::EAFNOSUPPORT), "{family}");
        }
        let socketpair = |family: i32| verdict(&p, call(libc::SYS_socketpair, &[family as u64, stream as u64, 0, 0]));
        assert_eq!(socketpair(libc::AF_UNIX), RET_ALLOW);
        assert_eq!(socketpair(libc::AF_INET), errno(libc::EAFNOSUPPORT));

        let personality = |persona: u64| verdict(&p, call(libc::SYS_personality, &[persona]));
        assert_eq!(personality(0), RET_ALLOW);
        assert_eq!(personality(0xffff_ffff), RET_ALLOW);
        assert_eq!(personality(libc::ADDR_NO_RANDOMIZE as u64), errno(libc::EPERM));
        assert_eq!(personality(8), errno(libc::EPERM)); // PER_LINUX32
    }

    #[test]
    fn foreign_abis_are_closed() {
        let p = build().unwrap();
        let mut i386 = call(libc::SYS_getpid, &[]);
        i386.arch = 3 | 0x4000_0000; // AUDIT_ARCH_I386
        assert_eq!(verdict(&p, i386), RET_KILL_PROCESS);
        #[cfg(target_arch = "x86_64")]
        {
            // x32 unshare: refused by the x32 filter, though the EPERM filter does not know that number.
            let x32_unshare = call(0x4000_0000 | 272, &[libc::CLONE_NEWUSER as u64]);
            assert_eq!(verdict(&p, x32_unshare), errno(libc::ENOSYS));
        }
        assert!(p.instructions() < 4096);
    }

    // ---- The real kernel, in a thread of its own. ----

    fn last_errno() -> i32 {
        io::Error::last_os_error().raw_os_error().unwrap()
    }

    /// `socket(2)`: Ok if a socket was created (and closed again), else the errno.
    fn socket(family: i32, ty: i32, protocol: i32) -> Result<(), i32> {
        // SAFETY: socket takes no pointers; a returned descriptor is owned here and closed on drop.
        let fd = unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, protocol) };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: fd was just returned by socket and nothing else owns it.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(())
    }

    /// A raw system call that cannot have side effects whatever the filter does, returning its errno (0 on success).
    fn raw(nr: i64, args: [libc::c_long; 5]) -> i32 {
        // SAFETY: every call below passes arguments the kernel rejects before doing anything (or that only query),
        // and no pointer argument points anywhere.
        let r = unsafe { libc::syscall(nr, args[0], args[1], args[2], args[3], args[4]) };
        if r < 0 { last_errno() } else { 0 }
    }

    #[derive(Debug)]
    struct Observed {
        unshare_user: i32,
        clone_user: i32,
        clone3: i32,
        ptrace: i32,
        keyctl: i32,
        packet: Result<(), i32>,
        netlink: Result<(), i32>,
        inet_raw: Result<(), i32>,
        inet_stream: Result<(), i32>,
        unix_pair: i32,
        inet_pair: i32,
        tiocsti: i32,
        fionbio: i32,
        no_randomize: i32,
        query: i32,
        getpid: bool,
        spawn: bool,
        thread: bool,
    }

    fn observe() -> Observed {
        let devnull = std::fs::File::open("/dev/null").unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&devnull) as libc::c_long;
        let mut pair = [0 as libc::c_int; 2];
        let pair_ptr = pair.as_mut_ptr() as libc::c_long;
        let close_pair = |pair: &[libc::c_int; 2]| {
            for fd in pair {
                // SAFETY: the descriptors were just created by socketpair and are owned by nobody else.
                drop(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        };
        let unix_pair = raw(libc::SYS_socketpair, [libc::AF_UNIX as _, libc::SOCK_STREAM as _, 0, pair_ptr, 0]);
        if unix_pair == 0 {
            close_pair(&pair);
        }
        let inet_pair = raw(libc::SYS_socketpair, [libc::AF_INET as _, libc::SOCK_STREAM as _, 0, pair_ptr, 0]);
        let mut one: libc::c_int = 1;
        Observed {
            // unshare(CLONE_NEWUSER) would succeed without the filter, in this thread only: harmless either way.
            unshare_user: raw(libc::SYS_unshare, [libc::CLONE_NEWUSER as _, 0, 0, 0, 0]),
            // CLONE_NEWUSER with CLONE_FS is EINVAL for the kernel: nothing is ever created.
            clone_user: raw(libc::SYS_clone, [(libc::CLONE_NEWUSER | libc::CLONE_FS | libc::SIGCHLD) as _, 0, 0, 0, 0]),
            // A zero size is EINVAL for the kernel.
            clone3: raw(libc::SYS_clone3, [0, 0, 0, 0, 0]),
            // No such process: ESRCH for the kernel.
            ptrace: raw(libc::SYS_ptrace, [libc::PTRACE_ATTACH as _, libc::pid_t::MAX as _, 0, 0, 0]),
            // KEYCTL_GET_KEYRING_ID of the session keyring, without creating it: a query.
            keyctl: raw(libc::SYS_keyctl, [0, -3, 0, 0, 0]),
            packet: socket(libc::AF_PACKET, libc::SOCK_RAW, 0),
            netlink: socket(libc::AF_NETLINK, libc::SOCK_RAW, 0),
            inet_raw: socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
            inet_stream: socket(libc::AF_INET, libc::SOCK_STREAM, 0),
            unix_pair,
            inet_pair,
            // /dev/null is not a terminal: ENOTTY for the kernel.
            tiocsti: raw(libc::SYS_ioctl, [fd, libc::TIOCSTI as _, &mut one as *mut _ as _, 0, 0]),
            fionbio: raw(libc::SYS_ioctl, [fd, libc::FIONBIO as _, &mut one as *mut _ as _, 0, 0]),
            // Changes this thread's persona only, and this thread ends with the test.
            no_randomize: raw(libc::SYS_personality, [libc::ADDR_NO_RANDOMIZE as _, 0, 0, 0, 0]),
            query: raw(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0]),
            getpid: std::process::id() > 0,
            // glibc tries clone3 first and falls back to clone on ENOSYS.
            spawn: Command::new("true").status().map(|s| s.success()).unwrap_or(false),
            thread: thread::spawn(|| 1).join().is_ok(),
        }
    }

    #[test]
    fn installed_filter_refuses_and_allows() {
        let program = build().unwrap();
        let o = thread::spawn(move || {
            assert!(matches!(install(&program), Err(SandboxError::Invalid(_))), "installed without no_new_privs");
            crate::privileges::set_no_new_privs().unwrap();
            install(&program).unwrap();
            observe()
        })
        .join()
        .unwrap();
        assert_eq!(o.unshare_user, libc::EPERM, "{o:?}");
        assert_eq!(o.clone_user, libc::EPERM, "{o:?}");
        assert_eq!(o.clone3, libc::ENOSYS, "{o:?}");
        assert_eq!(o.ptrace, libc::EPERM, "{o:?}");
        assert_eq!(o.keyctl, libc::EPERM, "{o:?}");
        assert_eq!(o.packet, Err(libc::EAFNOSUPPORT), "{o:?}");
        assert_eq!(o.netlink, Err(libc::EAFNOSUPPORT), "{o:?}");
        assert_eq!(o.inet_raw, Err(libc::EPERM), "{o:?}");
        assert_eq!(o.inet_stream, Ok(()), "{o:?}");
        assert_eq!(o.unix_pair, 0, "{o:?}");
        assert_eq!(o.inet_pair, libc::EAFNOSUPPORT, "{o:?}");
        assert_eq!(o.tiocsti, libc::EPERM, "{o:?}");
        assert_eq!(o.fionbio, 0, "{o:?}");
        assert_eq!(o.no_randomize, libc::EPERM, "{o:?}");
        assert_eq!(o.query, 0, "{o:?}");
        assert!(o.getpid && o.spawn && o.thread, "{o:?}");
    }

    #[test]
    fn without_the_filter_the_same_calls_get_the_kernel_answers() {
        // The control for the test above: the errnos there are the filter's, not the kernel's.
        let o = thread::spawn(observe).join().unwrap();
        assert_ne!(o.clone_user, libc::EPERM, "{o:?}");
        assert_eq!(o.clone3, libc::EINVAL, "{o:?}");
        assert_eq!(o.ptrace, libc::ESRCH, "{o:?}");
        assert_eq!(o.tiocsti, libc::ENOTTY, "{o:?}");
        assert_ne!(o.inet_pair, libc::EAFNOSUPPORT, "{o:?}");
        assert_eq!(o.no_randomize, 0, "{o:?}");
    }
}
