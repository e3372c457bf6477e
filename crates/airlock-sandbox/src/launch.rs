//! Starting a sandbox from the supervisor, and learning how it ended.
//!
//! The supervisor re-executes the Airlock binary as stage 1 ([`crate::init`]) with an empty environment, hands it
//! the spec on a pipe, and keeps a pidfd to it, so that a signal meant for this run can never hit a process that
//! reused its pid. The spec is written only after the caller's `before_start` hook has run (that is where the run
//! joins its cgroup), and stage 1 blocks on the spec, so nothing inside starts outside the cgroup.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use crate::SandboxError;
use crate::init::{INIT_ARG, LISTENER_FD, SPEC_FD, STATUS_FD};
use crate::spec::SandboxSpec;

/// A started sandbox: stage 1's pid and pidfd, its output pipes, and the status pipe from the init.
pub struct Sandbox {
    child: Child,
    pidfd: Option<OwnedFd>,
    status: File,
    /// Where the init hands over the proxy listener.
    listener_rx: Option<OwnedFd>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

/// How a run ended, as far as the sandbox can tell.
#[derive(Debug, Clone, Serialize)]
pub struct Ended {
    /// The tool's exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended the tool, when one did.
    pub signal: Option<i32>,
    /// The sandbox could not be set up, or the command could not be started: why.
    pub error: Option<String>,
    /// The tool was started (its `execve` succeeded).
    pub started: bool,
    /// What Landlock enforced for the tool, as the kernel reported it (`full (ABI 7)`, `partial ...`).
    pub landlock: Option<String>,
    /// Stage 1's own status (the shell convention); differs from the tool's when the sandbox itself was killed.
    pub sandbox_status: i32,
    /// The sandbox itself was killed from outside before the init could report how the tool ended.
    pub killed: bool,
    pub usage: Usage,
}

/// Resource use of the whole sandbox (stage 1 and everything it waited for).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Usage {
    pub user_ms: u64,
    pub system_ms: u64,
    pub max_rss_kib: u64,
}

impl Sandbox {
    /// Starts stage 1 of a sandbox for `spec`. `exe` is the Airlock binary (normally `/proc/self/exe`). The tool's
    /// stdin is `stdin`; its stdout and stderr are pipes read by the caller. `before_start` gets stage 1's pid
    /// before anything inside runs.
    pub fn spawn(
        exe: &Path,
        spec: &SandboxSpec,
        stdin: Stdio,
        before_start: impl FnOnce(u32) -> Result<(), SandboxError>,
    ) -> Result<Sandbox, SandboxError> {
        Pending::start(exe, stdin, before_start)?.send(spec)
    }

    /// Stage 1's pid in the caller's pid namespace.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the proxy listener the init opened in the sandbox's network namespace (a spec with
    /// `proxy_listener`). `None` when the sandbox ended before handing it over (its setup failed; [`Sandbox::wait`]
    /// says why).
    pub fn take_listener(&mut self) -> Result<Option<std::net::TcpListener>, SandboxError> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        let Some(rx) = self.listener_rx.take() else { return Ok(None) };
        let mut byte = [0u8; 1];
        let mut iov = [std::io::IoSliceMut::new(&mut byte)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = loop {
            match recvmsg::<()>(rx.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.map_err(|e| SandboxError::os("receive the proxy listener", e))?,
            }
        };
        for c in msg.cmsgs().map_err(|e| SandboxError::os("read the proxy listener message", e))? {
            if let ControlMessageOwned::ScmRights(fds) = c
                && let Some(&fd) = fds.first()
            {
                // SAFETY: the kernel just installed `fd` in this process for us; nothing else owns it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                for extra in &fds[1..] {
                    // SAFETY: as above; descriptors nobody asked for are closed.
                    drop(unsafe { OwnedFd::from_raw_fd(*extra) });
                }
                return Ok(Some(std::net::TcpListener::from(owned)));
            }
        }
        Ok(None)
    }

    /// Sends `signal` to stage 1, which forwards it to the tool (SIGKILL ends the whole sandbox). Safe against pid
    /// reuse: it goes through a pidfd where the kernel has them.
    pub fn signal(&self, signal: i32) -> bool {
        match &self.pidfd {
            // SAFETY: pidfd_send_signal(2) with a pidfd we own, a null siginfo and no flags.
            Some(fd) => unsafe {
                libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), signal, std::ptr::null::<u8>(), 0) == 0
            },
            // SAFETY: kill(2); without pidfds the child is still ours (we have not reaped it), so the pid is its own.
            None => unsafe { libc::kill(self.child.id() as libc::pid_t, signal) == 0 },
        }
    }

    /// SIGKILL to the whole sandbox.
    pub fn kill(&self) {
        self.signal(libc::SIGKILL);
    }

    /// A handle other threads can use to signal this sandbox while one thread waits on it.
    pub fn signaller(&self) -> Signaller {
        Signaller { pidfd: self.pidfd.as_ref().and_then(|fd| fd.try_clone().ok()), pid: self.child.id() }
    }

    /// Waits for stage 1 to end and collects the init's report and the resource use.
    pub fn wait(mut self) -> Result<Ended, SandboxError> {
        let pid = self.child.id() as libc::pid_t;
        let mut status: libc::c_int = 0;
        // SAFETY: an all-zero rusage is a valid value for the kernel to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: wait4(2) on our own child, with pointers to live locals.
            let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            if rc == pid {
                break;
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(SandboxError::os("wait for the sandbox", err));
            }
        }
        let sandbox_status =
            if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
        let mut text = String::new();
        let _ = self.status.read_to_string(&mut text);
        let mut ended = Ended {
            code: None,
            signal: None,
            error: None,
            started: false,
            landlock: None,
            sandbox_status,
            killed: false,
            usage: Usage {
                user_ms: millis(usage.ru_utime),
                system_ms: millis(usage.ru_stime),
                max_rss_kib: usage.ru_maxrss.max(0) as u64,
            },
        };
        for line in text.lines() {
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            match word {
                "started" => ended.started = true,
                "exit" => ended.code = rest.parse().ok(),
                "signal" => ended.signal = rest.parse().ok(),
                "error" => ended.error = Some(rest.to_string()),
                "landlock" => ended.landlock = Some(rest.to_string()),
                _ => {}
            }
        }
        if ended.code.is_none() && ended.signal.is_none() && ended.error.is_none() {
            // The init never reported: the sandbox was killed from outside (timeout, `airlock kill`, lockdown).
            ended.signal = (!libc::WIFEXITED(status)).then(|| libc::WTERMSIG(status));
            ended.killed = true;
        }
        Ok(ended)
    }
}

/// A stage 1 that is running but has no spec yet: it waits, blocked on the spec pipe, with nothing inside started.
/// Lets a supervisor start the process (and place it in its cgroup, which can be slow) while it prepares the rest.
pub struct Pending {
    sandbox: Sandbox,
    spec_w: OwnedFd,
}

impl Pending {
    /// Starts stage 1 without a spec. `before_start` gets its pid; when it fails, stage 1 is killed.
    pub fn start(
        exe: &Path,
        stdin: Stdio,
        before_start: impl FnOnce(u32) -> Result<(), SandboxError>,
    ) -> Result<Pending, SandboxError> {
        let (spec_r, spec_w) = pipe()?;
        let (status_r, status_w) = pipe()?;
        let (listener_rx, listener_tx) = nix::sys::socket::socketpair(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            None,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| SandboxError::os("create the listener channel", e))?;
        // Out of the way of 3, 4 and 5, which the dup2 calls below fill. The low originals are closed at once:
        // a write end left open here would keep `wait` from ever seeing the status pipe's end.
        let (spec_r, status_w, listener_tx) = {
            let moved = (above(&spec_r, 10)?, above(&status_w, 10)?, above(&listener_tx, 10)?);
            drop((spec_r, status_w, listener_tx));
            moved
        };
        let (spec_raw, status_raw, listener_raw) = (spec_r.as_raw_fd(), status_w.as_raw_fd(), listener_tx.as_raw_fd());
        let mut cmd = Command::new(exe);
        cmd.arg(INIT_ARG).env_clear().stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
        // SAFETY: the closure runs in the forked child before exec and calls only dup2(2), which is
        // async-signal-safe; dup2 clears close-on-exec on the new descriptors, so stage 1 inherits exactly these.
        unsafe {
            cmd.pre_exec(move || {
                for (from, to) in [(spec_raw, SPEC_FD), (status_raw, STATUS_FD), (listener_raw, LISTENER_FD)] {
                    if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| SandboxError::os(format!("start {}", exe.display()), e))?;
        drop((spec_r, status_w, listener_tx));
        let pidfd = pidfd_open(child.id());
        let pid = child.id();
        let sandbox = Sandbox {
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            pidfd,
            status: File::from(status_r),
            listener_rx: Some(listener_rx),
        };
        if let Err(e) = before_start(pid) {
            sandbox.kill();
            let _ = sandbox.wait();
            return Err(e);
        }
        Ok(Pending { sandbox, spec_w })
    }

    /// Stage 1's pid.
    pub fn pid(&self) -> u32 {
        self.sandbox.pid()
    }

    /// Hands stage 1 its spec: from here on the sandbox is built and the tool starts.
    pub fn send(self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        let Pending { sandbox, spec_w } = self;
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(spec).map_err(|e| SandboxError::Invalid(format!("encode the sandbox spec: {e}")))?,
        );
        let mut w = File::from(spec_w);
        match w.write_all(&json) {
            Ok(()) => Ok(sandbox),
            // Stage 1 is gone already (killed while the supervisor was preparing): the sandbox exists and has ended,
            // and `wait` says how, like any other run that was killed.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(sandbox),
            Err(e) => {
                sandbox.kill();
                Err(SandboxError::os("send the sandbox spec", e))
            }
        }
    }

    /// Sends `signal` to stage 1 (as [`Sandbox::signal`]).
    pub fn signal(&self, signal: i32) -> bool {
        self.sandbox.signal(signal)
    }

    /// Gives up on this sandbox: stage 1 reads no spec and exits; it is killed and reaped to be sure.
    pub fn abandon(self) {
        self.sandbox.kill();
        let _ = self.sandbox.wait();
    }
}

/// Signals one sandbox from any thread.
pub struct Signaller {
    pidfd: Option<OwnedFd>,
    pid: u32,
}

impl Signaller {
    pub fn signal(&self, signal: i32) -> bool {
        match &self.pidfd {
            // SAFETY: as in `Sandbox::signal`.
            Some(fd) => unsafe {
                libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), signal, std::ptr::null::<u8>(), 0) == 0
            },
            // SAFETY: kill(2); see `Sandbox::signal`. Without a pidfd a late signal could in theory reach a reused
            // pid; kernels without pidfds (before 5.3) are not supported for long-running supervisors.
            None => unsafe { libc::kill(self.pid as libc::pid_t, signal) == 0 },
        }
    }
}

fn millis(t: libc::timeval) -> u64 {
    (t.tv_sec.max(0) as u64) * 1000 + (t.tv_usec.max(0) as u64) / 1000
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SandboxError::os("create a pipe", e))
}

/// A close-on-exec duplicate of `fd` numbered at least `min`.
fn above(fd: &OwnedFd, min: RawFd) -> Result<OwnedFd, SandboxError> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new descriptor, checked before it is owned.
    let raw = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if raw < 0 {
        return Err(SandboxError::os("duplicate a pipe", std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) with no flags; the result is checked before it is owned.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: a non-negative result is a fresh descriptor.
    (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw as RawFd) })
}

/// How long [`Sandbox::wait`] callers usually give a terminated sandbox before SIGKILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::rlimits::Rlimits;

    fn spec() -> SandboxSpec {
        SandboxSpec {
            program: "/bin/true".into(),
            argv: vec!["true".into()],
            cwd: "/".into(),
            env: Vec::new(),
            root_dir: "/nonexistent".into(),
            binds: Vec::new(),
            masks: Vec::new(),
            read_only: Vec::new(),
            pinned: Vec::new(),
            files: Vec::new(),
            ca_cert: None,
            proxy_listener: false,
            forward_port: 3128,
            hostname: "t".into(),
            tmp_bytes: 1 << 20,
            landlock: None,
            seccomp: false,
            rlimits: Rlimits::default(),
        }
    }

    /// A stand-in stage 1 that ignores its arguments and waits, like a real one blocked on its spec.
    fn waiting_stage1(dir: &Path) -> std::path::PathBuf {
        let exe = dir.join("stage1");
        std::fs::write(&exe, "#!/bin/sh\nexec sleep 30\n").expect("write");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        exe
    }

    fn is_dead(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
            .unwrap_or(true)
    }

    /// Killed while the supervisor was still preparing (`airlock kill`, a lockdown): handing over the spec finds
    /// the pipe broken, and that is not a setup failure but a run that was killed, and `wait` says so.
    #[test]
    fn a_stage1_killed_before_its_spec_ends_by_the_signal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pending = Pending::start(&waiting_stage1(dir.path()), Stdio::null(), |_| Ok(())).expect("start");
        let pid = pending.pid();
        assert!(pending.signal(libc::SIGKILL));
        for _ in 0..500 {
            if is_dead(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(is_dead(pid), "stage 1 did not die");
        let sandbox = pending.send(&spec()).expect("a stage 1 killed before its spec is not a setup error");
        let ended = sandbox.wait().expect("wait");
        assert_eq!(ended.signal, Some(libc::SIGKILL));
        assert!(ended.killed && !ended.started && ended.error.is_none(), "{ended:?}");
        assert_eq!(ended.sandbox_status, 128 + libc::SIGKILL);
    }

    /// `before_start` failing stops stage 1: nothing is left running.
    #[test]
    fn a_failing_before_start_leaves_nothing_running() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut seen = 0;
        let r = Pending::start(&waiting_stage1(dir.path()), Stdio::null(), |pid| {
            seen = pid;
            Err(SandboxError::Invalid("no cgroup".into()))
        });
        assert!(matches!(r, Err(SandboxError::Invalid(_))));
        assert!(seen > 0 && is_dead(seen), "stage 1 {seen} is still running");
    }
}
