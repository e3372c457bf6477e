//! The sandbox's network: a new network namespace whose only interface is `lo`.
//!
//! Why: a namespace with no route out is the one network rule a tool cannot talk its way around. There is no
//! interface to send on, no resolver to ask (no `resolv.conf` target exists in the new root), and no host loopback
//! either: `127.0.0.1` inside is a different `127.0.0.1`. The only way out is the proxy listener the init opens on
//! `lo` and hands to the broker outside. A new network namespace starts with `lo` down; the init brings it up.

use crate::SandboxError;

/// Brings `lo` up in the current network namespace. Needs CAP_NET_ADMIN over it, which the sandbox init has.
pub fn loopback_up() -> Result<(), SandboxError> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: socket(2) with constant arguments; the result is checked before use and owned by `sock` after.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(SandboxError::os("open a socket to configure lo", std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a fresh, valid descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: an all-zero `ifreq` is a valid value (a C struct of integers and a union of the same).
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the interface named in `req` and writes its flags into `req`, which lives for the
    // call; `sock` is a valid socket.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(SandboxError::os("read lo's flags", std::io::Error::last_os_error()));
    }
    // SAFETY: after a successful SIOCGIFFLAGS the flags member of the union is the initialised one.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads `req`, which is valid and lives for the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(SandboxError::os("bring lo up", std::io::Error::last_os_error()));
    }
    Ok(())
}
