//! The sandbox's own processes, inside the re-executed Airlock binary: stage 1 and the init.
//!
//! Why re-execute rather than fork the supervisor: the supervisor is multi-threaded (it runs the broker), and a
//! multi-threaded process may neither `unshare(CLONE_NEWUSER)` nor safely do much between `fork` and `exec`. A
//! fresh, single-threaded copy of the binary can. The chain is:
//!
//! - **stage 1** (in the host's pid namespace): reads the [`SandboxSpec`] from fd 3, creates the user, mount, pid,
//!   net, ipc, uts and cgroup namespaces, maps the caller's uid and gid to themselves, and forks the init. It
//!   forwards signals to the init and exits as the init exits. It is what the supervisor signals and what
//!   `airlock kill` finds in the run record; SIGKILL to it takes everything with it (each stage dies with its
//!   parent).
//! - **the init** (PID 1 of the new pid namespace): builds the root ([`mounts`]), brings `lo` up, opens the proxy
//!   listener on `127.0.0.1:PORT` and hands it to the supervisor (fd 5, SCM_RIGHTS), forks the tool, then reaps. Signals it receives go to the tool. When the tool
//!   exits, the init reports how on fd 4 and exits, and the kernel kills whatever the tool left behind in the
//!   namespace.
//! - **the tool** (forked from the init before any thread exists): its own session, then rlimits, every capability
//!   dropped, no_new_privs, Landlock, seccomp (last, so that nothing above needs a filtered call), and `execve` of
//!   the command, never through a shell. Every descriptor but 0-2 is closed by the exec.
//!
//! Status lines on fd 4, one per line: `started`, `landlock TEXT`, `exit N`, `signal N`, `error TEXT`.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sched::CloneFlags;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::SandboxError;
use crate::spec::SandboxSpec;
use crate::{landlock, mounts, net, privileges, rlimits, seccomp};

/// The first argument that makes the Airlock binary a sandbox stage 1.
pub const INIT_ARG: &str = "__sandbox-init";
/// The spec arrives on this descriptor (JSON, then EOF).
pub const SPEC_FD: RawFd = 3;
/// Status lines leave on this descriptor.
pub const STATUS_FD: RawFd = 4;
/// The proxy listener leaves on this descriptor (a Unix socket to the supervisor), as SCM_RIGHTS.
pub const LISTENER_FD: RawFd = 5;

/// The process signals are forwarded to: the init (in stage 1) or the tool (in the init). 0 until it exists.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);
/// A signal that arrived before there was anyone to forward it to.
static PENDING: AtomicI32 = AtomicI32::new(0);

const FORWARDED: [Signal; 8] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// Call first in `main`: when this process was started as a sandbox stage, runs it and never returns.
pub fn run_if_requested() {
    if std::env::args_os().nth(1).as_deref() != Some(std::ffi::OsStr::new(INIT_ARG)) {
        return;
    }
    let code = match stage1() {
        Ok(code) => code,
        Err(e) => {
            report(&format!("error {e}"));
            125
        }
    };
    std::process::exit(code)
}

fn stage1() -> Result<i32, SandboxError> {
    die_with_parent()?;
    let spec = read_spec()?;
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    nix::sched::unshare(
        CloneFlags::CLONE_NEWUSER
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWCGROUP,
    )
    .map_err(|e| SandboxError::os("create the namespaces", e))?;
    // An unprivileged process may map only its own ids, and only after giving up setgroups(2).
    write_proc("/proc/self/setgroups", "deny")?;
    write_proc("/proc/self/uid_map", &format!("{uid} {uid} 1"))?;
    write_proc("/proc/self/gid_map", &format!("{gid} {gid} 1"))?;

    install_forwarding()?;
    // SAFETY: stage 1 is single-threaded (a fresh exec that started no threads), so the child may run
    // arbitrary code after fork.
    match unsafe { fork() }.map_err(|e| SandboxError::os("fork the sandbox init", e))? {
        ForkResult::Child => {
            let code = match init(&spec) {
                Ok(code) => code,
                Err(e) => {
                    report(&format!("error {e}"));
                    125
                }
            };
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            drop(spec);
            forward_from_now_on(child);
            Ok(wait_for(child))
        }
    }
}

fn init(spec: &SandboxSpec) -> Result<i32, SandboxError> {
    die_with_parent()?;
    // The tool must not read this process's memory (which held the spec) through /proc/1/mem, nor ptrace it.
    nix::sys::prctl::set_dumpable(false).map_err(|e| SandboxError::os("mark the init non-dumpable", e))?;
    mounts::build_root(spec)?;
    nix::unistd::sethostname(&spec.hostname).map_err(|e| SandboxError::os("set the hostname", e))?;
    net::loopback_up()?;
    if spec.proxy_listener {
        // Listening in this network namespace, accepted on by the broker outside it: the tool's only way out, with
        // no copy in between, and a connection on it can only be this run's.
        let listener = std::net::TcpListener::bind(("127.0.0.1", spec.forward_port))
            .map_err(|e| SandboxError::os(format!("listen on 127.0.0.1:{}", spec.forward_port), e))?;
        send_fd(LISTENER_FD, listener.as_raw_fd())?;
    }
    let filter = if spec.seccomp { Some(seccomp::build()?) } else { None };
    let tool = Tool::prepare(spec, filter)?;

    let (exec_r, exec_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SandboxError::os("create the exec pipe", e))?;
    // SAFETY: the init is single-threaded (it never starts a thread), so the child
    // may allocate and run ordinary code before exec.
    match unsafe { fork() }.map_err(|e| SandboxError::os("fork the tool", e))? {
        ForkResult::Child => {
            drop(exec_r);
            let err = tool.exec(spec);
            let mut w = std::fs::File::from(exec_w);
            let _ = w.write_all(err.to_string().as_bytes());
            // SAFETY: _exit(2) ends the process without running atexit handlers or flushing buffers the parent
            // also holds.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop(exec_w);
            forward_from_now_on(child);
            let mut why = String::new();
            let _ = std::fs::File::from(exec_r).read_to_string(&mut why);
            if !why.is_empty() {
                report(&format!("error could not start {}: {why}", spec.program.display()));
                let _ = nix::sys::signal::kill(child, Signal::SIGKILL);
                let _ = waitpid(child, None);
                return Ok(127);
            }
            report("started");
            let code = reap_until(child);
            Ok(code)
        }
    }
}

/// Everything the tool child needs, built before the fork.
struct Tool {
    path: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    filter: Option<seccomp::SeccompProgram>,
}

impl Tool {
    fn prepare(spec: &SandboxSpec, filter: Option<seccomp::SeccompProgram>) -> Result<Tool, SandboxError> {
        let c = |s: &str, what: &str| {
            CString::new(s).map_err(|_| SandboxError::Invalid(format!("{what} contains a NUL byte")))
        };
        if spec.argv.is_empty() {
            return Err(SandboxError::Invalid("no command".into()));
        }
        let program =
            spec.program.to_str().ok_or_else(|| SandboxError::Invalid("the program path is not UTF-8".into()))?;
        Ok(Tool {
            path: c(program, "the command")?,
            argv: spec.argv.iter().map(|a| c(a, "an argument")).collect::<Result<_, _>>()?,
            env: spec
                .env
                .iter()
                .map(|v| c(&format!("{}={}", v.name, v.value.as_str()), "an environment variable"))
                .collect::<Result<_, _>>()?,
            filter,
        })
    }

    /// Restricts this (forked) process and execs the command. Returns only on failure.
    fn exec(&self, spec: &SandboxSpec) -> SandboxError {
        match self.restrict(spec) {
            Err(e) => e,
            Ok(()) => match nix::unistd::execve(&self.path, &self.argv, &self.env) {
                Err(e) => SandboxError::os("execve", e),
            },
        }
    }

    fn restrict(&self, spec: &SandboxSpec) -> Result<(), SandboxError> {
        reset_signals();
        // Its own session: no controlling terminal to push input into, and a process group of its own.
        nix::unistd::setsid().map_err(|e| SandboxError::os("setsid", e))?;
        std::env::set_current_dir(&spec.cwd)
            .map_err(|e| SandboxError::os(format!("enter the working directory {}", spec.cwd.display()), e))?;
        close_on_exec_from(3)?;
        rlimits::apply(&spec.rlimits)?;
        privileges::drop_all()?;
        privileges::set_no_new_privs()?;
        if let Some(plan) = &spec.landlock {
            // Reported, not fatal when partial: the supervisor records what the kernel enforced for this run.
            let enforced = landlock::restrict_self(plan)?;
            report(&format!("landlock {enforced}"));
        }
        if let Some(filter) = &self.filter {
            seccomp::install(filter)?;
        }
        Ok(())
    }
}

/// Reaps every child; returns when `tool` has exited, with the shell convention for its status.
fn reap_until(tool: Pid) -> i32 {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == tool => {
                report(&format!("exit {code}"));
                return code;
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == tool => {
                report(&format!("signal {}", sig as i32));
                return 128 + sig as i32;
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return 125,
        }
    }
}

/// Waits for the init; mirrors how it ended.
fn wait_for(child: Pid) -> i32 {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return 125,
        }
    }
}

extern "C" fn forward_signal(sig: libc::c_int) {
    let to = FORWARD_TO.load(Ordering::SeqCst);
    if to > 0 {
        // SAFETY: kill(2) is async-signal-safe; a failure (the target is gone) needs no handling.
        unsafe {
            libc::kill(to, sig);
        }
    } else {
        PENDING.store(sig, Ordering::SeqCst);
    }
}

fn install_forwarding() -> Result<(), SandboxError> {
    let action = SigAction::new(SigHandler::Handler(forward_signal), SaFlags::SA_RESTART, SigSet::empty());
    for sig in FORWARDED {
        // SAFETY: the handler only reads atomics and calls kill(2), both async-signal-safe.
        unsafe { sigaction(sig, &action) }.map_err(|e| SandboxError::os(format!("handle {sig}"), e))?;
    }
    Ok(())
}

/// From now on, signals go to `pid`; one that came before is delivered now.
fn forward_from_now_on(pid: Pid) {
    FORWARD_TO.store(pid.as_raw(), Ordering::SeqCst);
    let pending = PENDING.swap(0, Ordering::SeqCst);
    if pending != 0 {
        // SAFETY: kill(2) with a pid we forked and a signal number the kernel gave us.
        unsafe {
            libc::kill(pid.as_raw(), pending);
        }
    }
}

fn reset_signals() {
    for sig in FORWARDED {
        // SAFETY: restoring the default disposition has no preconditions.
        let _ = unsafe { sigaction(sig, &SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty())) };
    }
    let _ = nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Each stage dies with its parent, so killing stage 1 (or the supervisor) ends the whole sandbox.
fn die_with_parent() -> Result<(), SandboxError> {
    let parent = nix::unistd::getppid();
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| SandboxError::os("set the parent-death signal", e))?;
    if nix::unistd::getppid() != parent {
        return Err(SandboxError::Invalid("the parent exited during start-up".into()));
    }
    Ok(())
}

fn read_spec() -> Result<SandboxSpec, SandboxError> {
    // SAFETY: the supervisor placed the spec pipe's read end at SPEC_FD for us and nothing else uses it.
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(SPEC_FD) });
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    f.read_to_end(&mut buf).map_err(|e| SandboxError::os("read the sandbox spec", e))?;
    serde_json::from_slice(&buf).map_err(|e| SandboxError::Invalid(format!("bad sandbox spec: {e}")))
}

/// Hands `fd` to the supervisor over the Unix socket at `channel`.
fn send_fd(channel: RawFd, fd: RawFd) -> Result<(), SandboxError> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(b"L")];
    sendmsg::<()>(channel, &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(|e| SandboxError::os("hand the proxy listener to the broker", e))?;
    Ok(())
}

fn write_proc(path: &str, contents: &str) -> Result<(), SandboxError> {
    std::fs::write(path, contents).map_err(|e| SandboxError::os(format!("write {path}"), e))
}

fn report(line: &str) {
    // SAFETY: write(2) to STATUS_FD, which the supervisor set up; if it is not open the call fails harmlessly.
    let _ = unsafe { libc::write(STATUS_FD, format!("{line}\n").as_ptr().cast(), line.len() + 1) };
}

/// Marks every descriptor from `first` up close-on-exec, so the tool inherits only stdin, stdout and stderr.
fn close_on_exec_from(first: RawFd) -> Result<(), SandboxError> {
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets flags; it closes nothing now.
    let rc = unsafe {
        libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC)
    };
    if rc == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk the open descriptors.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| SandboxError::os("list open descriptors", e))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD on a descriptor number only changes its flags; a stale number fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}
