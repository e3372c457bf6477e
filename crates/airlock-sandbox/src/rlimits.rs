//! Resource limits of the tool process.
//!
//! Why: cgroups bound what the sandbox as a whole may use, but some limits are per process and some budgets have
//! no cgroup counterpart: a file descriptor table, a single file's size, CPU seconds, and core dumps (which would
//! write the tool's memory, secrets included, to disk). Each limit is set with soft = hard, so the tool cannot
//! raise it again; once capabilities are dropped it could not raise the hard limit anyway.
//!
//! A requested value above the current hard limit is clamped to it: a limit is never raised, so a policy cannot
//! give the tool more than the process that starts it has.

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use serde::{Deserialize, Serialize};

use crate::error::SandboxError;

/// Limits for the tool process; `None` leaves the inherited limit as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimits {
    /// `RLIMIT_AS`, bytes of virtual memory.
    pub address_space: Option<u64>,
    /// `RLIMIT_CPU`, seconds of CPU time; then the kernel kills the process (soft = hard, so SIGKILL).
    pub cpu_seconds: Option<u64>,
    /// `RLIMIT_NPROC`, processes (threads included) of the tool's user.
    pub processes: Option<u64>,
    /// `RLIMIT_NOFILE`, one more than the highest file descriptor number.
    pub open_files: Option<u64>,
    /// `RLIMIT_FSIZE`, bytes a single file may grow to.
    pub file_size: Option<u64>,
}

/// Applies `limits` to the calling process, and `RLIMIT_CORE` 0 always.
///
/// Meant for the tool child between `fork` and `execve`: it does not allocate unless it fails.
pub fn apply(limits: &Rlimits) -> Result<(), SandboxError> {
    set(Resource::RLIMIT_CORE, 0, "setrlimit(RLIMIT_CORE)")?;
    let requested = [
        (Resource::RLIMIT_AS, limits.address_space, "setrlimit(RLIMIT_AS)"),
        (Resource::RLIMIT_CPU, limits.cpu_seconds, "setrlimit(RLIMIT_CPU)"),
        (Resource::RLIMIT_NPROC, limits.processes, "setrlimit(RLIMIT_NPROC)"),
        (Resource::RLIMIT_NOFILE, limits.open_files, "setrlimit(RLIMIT_NOFILE)"),
        (Resource::RLIMIT_FSIZE, limits.file_size, "setrlimit(RLIMIT_FSIZE)"),
    ];
    for (resource, value, step) in requested {
        if let Some(value) = value {
            set(resource, value, step)?;
        }
    }
    Ok(())
}

/// Sets soft and hard `resource` to `value`, clamped to the current hard limit.
fn set(resource: Resource, value: u64, step: &'static str) -> Result<(), SandboxError> {
    let (_, hard) = getrlimit(resource).map_err(|e| SandboxError::os(step, e))?;
    // RLIM_INFINITY is the largest value, so min() also keeps an unlimited hard limit's request as asked.
    let value = value.min(hard);
    setrlimit(resource, value, value).map_err(|e| SandboxError::os(step, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// `/proc/self/limits` of a `cat` started with `limits` applied: (name, soft, hard) for each line.
    fn limits_of_child(limits: Rlimits) -> Vec<(String, String, String)> {
        let mut cmd = Command::new("cat");
        cmd.arg("/proc/self/limits");
        // SAFETY: the closure runs in the forked child before execve. apply() only calls getrlimit and setrlimit
        // (async-signal-safe) and allocates only to report an error, and this test binary's allocator (glibc's
        // malloc) stays usable in a forked child.
        unsafe {
            cmd.pre_exec(move || apply(&limits).map_err(io::Error::other));
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        // "Max open files            64                   64                   files"
        text.lines()
            .skip(1)
            .map(|line| {
                let name = line[..26].trim().to_owned();
                let mut rest = line[26..].split_whitespace();
                (name, rest.next().unwrap().to_owned(), rest.next().unwrap().to_owned())
            })
            .collect()
    }

    fn limit<'a>(all: &'a [(String, String, String)], name: &str) -> (&'a str, &'a str) {
        let (_, soft, hard) = all.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("no {name}: {all:?}"));
        (soft, hard)
    }

    #[test]
    fn sets_soft_and_hard_and_core_zero() {
        let all = limits_of_child(Rlimits {
            address_space: Some(4 << 30),
            cpu_seconds: Some(600),
            processes: Some(512),
            open_files: Some(64),
            file_size: Some(1 << 30),
        });
        assert_eq!(limit(&all, "Max address space"), ("4294967296", "4294967296"));
        assert_eq!(limit(&all, "Max cpu time"), ("600", "600"));
        assert_eq!(limit(&all, "Max processes"), ("512", "512"));
        assert_eq!(limit(&all, "Max open files"), ("64", "64"));
        assert_eq!(limit(&all, "Max file size"), ("1073741824", "1073741824"));
        assert_eq!(limit(&all, "Max core file size"), ("0", "0"));
    }

    #[test]
    fn none_leaves_the_inherited_limit_but_core_is_always_zero() {
        let all = limits_of_child(Rlimits::default());
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(limit(&all, "Max open files"), (soft.to_string().as_str(), hard.to_string().as_str()));
        assert_eq!(limit(&all, "Max core file size"), ("0", "0"));
    }

    #[test]
    fn never_raises_above_the_hard_limit() {
        // As root (CAP_SYS_RESOURCE) raising would succeed up to fs.nr_open, so an unclamped apply shows here.
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        let all = limits_of_child(Rlimits { open_files: Some(hard + 1000), ..Rlimits::default() });
        assert_eq!(limit(&all, "Max open files"), (hard.to_string().as_str(), hard.to_string().as_str()));
    }
}
