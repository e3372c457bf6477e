//! # airlock-audit
//!
//! Airlock's tamper-evident audit log. Every decision Airlock makes — a request allowed or denied, a secret
//! used, a sandbox started or killed, a leak blocked, a key rotated — becomes one record here, and nobody who
//! can edit the files afterwards can hide or change a record without [`verify()`] noticing.
//!
//! ## What it guards against
//! - **Editing, deleting or reordering records**: each record carries its `seq` and the previous record's
//!   hash, so verification names the first bad record.
//! - **Rewriting the whole log consistently, or cutting its tail**: an RFC 9162 Merkle tree covers every
//!   record, and Ed25519-signed checkpoints (C2SP `tlog-checkpoint` notes) fix its size and root every N
//!   records, every T seconds, on an idle heartbeat and at shutdown. The signing key lives in the vault; a
//!   checkpoint kept off-box catches even a cut that also removed the local checkpoints. Inclusion and
//!   consistency proofs ([`merkle`]) let anyone check one record, or that a later log extends an earlier one.
//! - **A decision that was never recorded**: [`AuditLog::append`] returns only once the record is durable
//!   (group-committed `fdatasync`), and an error means the caller must deny, as HashiCorp Vault does.
//! - **Secrets in the log**: events carry names, never values; sensitive strings are stored as
//!   `hmac-sha256:<hex>` under a per-install key ([`AuditMac`]) so they can be searched but not read.
//! - **Back-dating**: record times are held monotonic, a clock stepping back is itself recorded, and
//!   verification rejects time going backwards.
//!
//! ## Entry points
//! - [`AuditLog::open`], [`AuditLog::append`] / [`AuditLog::append_buffered`], [`AuditLog::close`].
//! - [`Event`]: OCSF 1.8 events (API Activity, Process Activity, Detection Finding, Entity Management,
//!   Application Lifecycle).
//! - [`verify()`]: full verification, returning a [`Report`] of every problem found.
//! - [`SharedLog`]: the log shared by several processes (one holds it and serves the others on a Unix socket);
//!   it and [`AuditLog`] both implement [`Append`].
//! - [`reader`]: follow, filter and export records while the log is being written.
//! - [`sink`]: export to a SIEM — CEF or OCSF over syslog (UDP, TCP, TLS), OCSF JSON lines, webhooks.
//! - [`checkpoint`] and [`merkle`]: the signed note format and the tree, for verifiers elsewhere.
//!
//! On disk: `<dir>/segments/*.jsonl` (one canonical-JSON record per line, see [`record`]), `<dir>/checkpoints`
//! and `<dir>/lock` (see [`segment`]).

pub mod canonical;
pub mod checkpoint;
mod error;
pub mod event;
mod mac;
pub mod merkle;
pub mod reader;
pub mod record;
pub mod segment;
pub mod shared;
pub mod sink;
pub mod verify;
mod writer;

pub use error::AuditError;

/// Locks a mutex, carrying on if a panicking thread poisoned it: every guarded state here stays consistent
/// between statements, and an audit log that stops recording because one caller panicked would fail everyone.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
pub use event::{Class, Decision, Event, Severity};
pub use mac::AuditMac;
pub use shared::{Append, SharedLog};
pub use verify::{Problem, Report, VerifyOptions, verify};
pub use writer::{AuditLog, Clock, LogStatus, Options, Receipt, Retention, SignedCheckpoint, SystemClock};
