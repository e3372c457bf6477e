//! Process hardening, applied before anything is decrypted.
//!
//! Why: the unlocked keys and values live in this process's memory. A core dump would write them to disk, and a
//! process running as the same user (a tool the agent started, say) could read them with ptrace or
//! `/proc/PID/mem`. Marking the process non-dumpable closes both: the kernel writes no core and refuses
//! same-user ptrace attach and `/proc/PID/mem` access. A zero core-size limit covers the dump path again for
//! children and for kernels configured to dump setuid-style processes anyway.

use nix::sys::prctl;
use nix::sys::resource::{Resource, setrlimit};

/// Makes this process non-dumpable and sets its core-size limit to zero. Failure is reported, not fatal: a
/// sandbox may forbid these calls, and the vault is still encrypted at rest.
pub fn harden() -> Result<(), String> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| format!("could not disable core dumps: {e}"))?;
    prctl::set_dumpable(false).map_err(|e| format!("could not mark the process non-dumpable: {e}"))?;
    Ok(())
}

/// `AIRLOCK_DIE_WITH_PARENT=PID` (set by `airlock serve` for the `airlock run`s it starts): this process is killed
/// when its parent dies, so that a daemon killed with SIGKILL leaves no run behind (each run's sandbox dies with
/// its `airlock run` in turn). If the parent is already gone (it died before this line ran), exit at once.
pub fn die_with_parent() {
    let Some(pid) = std::env::var("AIRLOCK_DIE_WITH_PARENT").ok().and_then(|p| p.parse::<i32>().ok()) else {
        return;
    };
    if prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).is_err() || nix::unistd::getppid().as_raw() != pid {
        eprintln!("airlock: the daemon that started this run is gone");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use nix::sys::resource::{Resource, getrlimit};

    #[test]
    fn harden_disables_core_dumps_and_ptrace_access() {
        super::harden().expect("harden");
        assert!(!nix::sys::prctl::get_dumpable().unwrap(), "process is still dumpable");
        assert_eq!(getrlimit(Resource::RLIMIT_CORE).unwrap(), (0, 0));
    }
}
