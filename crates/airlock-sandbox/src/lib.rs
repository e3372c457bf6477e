//! # airlock-sandbox
//!
//! Airlock's Linux sandbox, the part of Airlock that makes the kernel refuse what a tricked model or a malicious
//! tool asks for: reading host files, writing outside the workspace, opening sockets to the world, fork bombs,
//! outliving a budget.
//!
//! Everything here is mechanism; what a run may do is decided by the policy in the `airlock` binary, which hands
//! this crate a [`SandboxSpec`]: plain data, so that whoever reads the code sees all a run is given in one place.
//!
//! ## How a run is built
//! - [`launch`]: the supervisor re-executes Airlock as stage 1 with an empty environment, keeps a pidfd to it, and
//!   hands it the spec on a pipe ([`launch::Pending`] lets it start stage 1 before the spec is ready).
//! - [`init`]: stage 1 creates the user, mount, pid, net, ipc, uts and cgroup namespaces and forks the init (PID 1):
//!   it builds the root ([`mounts`]), brings up `lo` ([`net`]), opens the proxy listener and hands it to the
//!   supervisor's broker, and forks the tool, which drops every capability ([`privileges`]), sets its
//!   [`rlimits`], no_new_privs, [`landlock`] and [`seccomp`], and execs the command directly.
//! - [`output`]: the filter hook the tool's stdout and stderr pass through (redaction plugs in here), with the
//!   output limit.
//!
//! ## Around the runs
//! - [`probe`](mod@probe): what this kernel and this process may use (user and other namespaces, the Landlock ABI, seccomp
//!   filters, no_new_privs, writable cgroups), found by trying rather than guessed from version numbers. The
//!   sandbox must degrade loudly, never silently: `airlock run --check` prints [`Probe`]'s matrix, and a run whose
//!   policy needs something missing is refused with the matrix's `fix` hint.
//! - [`cgroup`]: a run's own cgroup (v2, v1 or hybrid): memory and pids limits, freezing, a kill that reaches
//!   every process of the run, usage counters.
//! - [`supervisor`]: the run registry in the state directory (records plus liveness locks) that `airlock ps`,
//!   `kill`, `pause` and `resume` act through, and the lockdown file of the global kill switch.
//!
//! ## Entry points
//! - [`init::run_if_requested`], first thing in the binary's `main`.
//! - [`launch::Sandbox::spawn`] (or [`launch::Pending::start`] then `send`), then [`launch::Sandbox::take_listener`]
//!   and [`launch::Sandbox::wait`].
//! - [`probe()`], then [`Probe::rows`] (the `--check` matrix), `Display` (that matrix as a table) or `serde`
//!   (its `--json` form).
//! - [`Registry`] for the runs of a home; [`RunCgroup`] for one run's cgroup.
//!
//! `unsafe` in Airlock lives in this crate only, each block with a `// SAFETY:` comment.

pub mod cgroup;
pub mod error;
pub mod init;
pub mod landlock;
pub mod launch;
pub mod mounts;
pub mod net;
pub mod output;
pub mod privileges;
pub mod probe;
pub mod rlimits;
pub mod seccomp;
pub mod spec;
pub mod supervisor;

pub use error::SandboxError;
pub use spec::SandboxSpec;

pub use crate::landlock::{Enforcement, FsRules, LandlockPlan};
pub use rlimits::Rlimits;
pub use seccomp::SeccompProgram;

pub use cgroup::{CgroupLimits, CgroupUsage, RunCgroup};
pub use supervisor::{
    KillOutcome, KillResult, Lockdown, PauseMethod, Registry, RunGuard, RunRecord, lockdown_engage, lockdown_lift,
    lockdown_status, process_start_ticks,
};

pub use probe::{
    CgroupEntry, CgroupLayout, CgroupMount, CgroupVersion, Cgroups, Controller, FEATURES, Landlock, NamespaceKind,
    Namespaces, Probe, Row, Seccomp, SeccompMode, Support, UsernsSysctls, probe,
};
