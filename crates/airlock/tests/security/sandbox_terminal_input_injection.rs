//! Attack: when `airlock run` is started from a terminal, the tool's stdin is that terminal. With `TIOCSTI` a
//! process can push characters into a terminal's input queue, so the tool types a command that the user's shell
//! reads and runs on the host as soon as the run ends. Also: take the terminal as its own controlling terminal
//! (`setsid` + `TIOCSCTTY`) first, reopen it through `/proc/self/fd/0`, or open `/dev/tty`.
//!
//! The run gets a real pseudo-terminal as stdin (and as `airlock`'s controlling terminal, like a login shell's).
//! Every attempt must fail and, after the run, nothing may be waiting in the terminal's input queue.

use std::ffi::CStr;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Stdio;

use crate::common::Run;
use crate::common::sandbox::*;

/// A new pseudo-terminal: (master, slave).
fn open_pty() -> (OwnedFd, OwnedFd) {
    // SAFETY: plain libc calls on fds this function owns; the name buffer is NUL-terminated by ptsname_r.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = OwnedFd::from_raw_fd(m);
        assert_eq!(libc::grantpt(m), 0, "grantpt");
        assert_eq!(libc::unlockpt(m), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0, "ptsname_r");
        let s = libc::open(CStr::from_ptr(name.as_ptr()).as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        assert!(s >= 0, "open the pty slave: {}", std::io::Error::last_os_error());
        (master, OwnedFd::from_raw_fd(s))
    }
}

/// Whatever can be read from `fd` right now, without waiting.
fn drain(fd: &OwnedFd) -> Vec<u8> {
    let dup = fd.try_clone().expect("dup");
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(dup.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(dup.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    let mut f = std::fs::File::from(dup);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..64 {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

const INJECT: &str = r#"
import fcntl, os, termios
CMD = b"touch injected-by-tiocsti\n"
def sti(fd):
    for c in CMD:
        fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))
def attempt(name, f):
    try:
        f()
        print(f"@{name}=0", flush=True)
    except OSError as e:
        print(f"@{name}={e.errno or 1}", flush=True)
print(f"@stdin_is_tty={0 if os.isatty(0) else 1}", flush=True)
attempt("tiocsti_stdin", lambda: sti(0))
attempt("tiocsti_reopened", lambda: sti(os.open("/proc/self/fd/0", os.O_RDWR | os.O_NOCTTY)))
attempt("dev_tty", lambda: os.close(os.open("/dev/tty", os.O_RDWR)))
attempt("steal_ctty", lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 1))
def new_session():
    if os.fork() == 0:
        try:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            sti(0)
            os._exit(0)
        except OSError as e:
            os._exit(e.errno or 1)
    _, status = os.wait()
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise OSError(code, "refused")
attempt("setsid_ctty_tiocsti", new_session)
"#;

#[test]
fn sandbox_terminal_input_injection() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["python3"])));
    require_programs(&["python3"]);
    let (master, slave) = open_pty();
    let mut cmd = sb.command(true, ["python3", "-c", INJECT]);
    cmd.stdin(Stdio::from(slave.try_clone().expect("dup slave"))).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // A session of its own with the pty as its controlling terminal, as under a terminal emulator.
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run airlock on a terminal");
    {
        let mut t = sb.al.transcript.lock().expect("transcript");
        t.extend_from_slice(&out.stdout);
        t.extend_from_slice(&out.stderr);
    }
    let r = SbRun::parse(Run { args: Vec::new(), code: out.status.code(), stdout: out.stdout, stderr: out.stderr });
    r.succeeded("stdin_is_tty");
    for a in ["tiocsti_stdin", "tiocsti_reopened", "dev_tty", "steal_ctty", "setsid_ctty_tiocsti"] {
        r.failed(a);
    }
    let queued = drain(&slave);
    assert!(
        queued.is_empty(),
        "characters were pushed into the terminal's input: {:?}",
        String::from_utf8_lossy(&queued)
    );
    let echoed = drain(&master);
    assert!(
        !String::from_utf8_lossy(&echoed).contains("injected-by-tiocsti"),
        "the injected command reached the terminal: {:?}",
        String::from_utf8_lossy(&echoed)
    );
    assert!(!sb.in_ws("injected-by-tiocsti").exists());
}
