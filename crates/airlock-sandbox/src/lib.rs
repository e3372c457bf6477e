//! # airlock-sandbox
//!
//! Airlock's Linux sandbox, the part of Airlock that makes the kernel refuse what a tricked model or a malicious
//! tool asks for: reading host files, writing outside the workspace, opening sockets to the world, fork bombs,
//! outliving a budget.
//!
//! ## What is here so far
//! - [`probe`]: what this kernel and this process may use (user and other namespaces, the Landlock ABI, seccomp
//!   filters, no_new_privs, writable cgroups), found by trying rather than guessed from version numbers. The
//!   sandbox must degrade loudly, never silently: `airlock run --check` prints [`Probe`]'s matrix, and a run whose
//!   policy needs something missing is refused with the matrix's `fix` hint.
//!
//! ## Entry points
//! - [`probe()`], then [`Probe::rows`] (the `--check` matrix), `Display` (that matrix as a table) or `serde`
//!   (its `--json` form).

pub mod probe;

pub use probe::{
    CgroupEntry, CgroupLayout, CgroupMount, CgroupVersion, Cgroups, Controller, FEATURES, Landlock, NamespaceKind,
    Namespaces, Probe, Row, Seccomp, SeccompMode, Support, UsernsSysctls, probe,
};
