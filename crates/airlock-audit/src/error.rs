//! Errors of the audit log. Every variant names the file (and, where it has one, the record) it is about, and
//! none carries record contents: a corrupt line is described, never echoed.

use std::path::PathBuf;

use crate::canonical::CanonicalError;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{op} {path}: {source}")]
    Io { path: PathBuf, op: &'static str, source: std::io::Error },
    /// The record was not made durable (disk full, I/O error, permissions). The caller must deny.
    #[error("audit record not written ({op} {path}: {source}); the decision must be denied")]
    WriteFailed { path: PathBuf, op: &'static str, source: std::io::Error },
    /// A fail-closed sink is not delivering, so the log refuses new records.
    #[error("audit sink {sink} is failing and is configured fail-closed; the decision must be denied")]
    SinkDown { sink: String },
    #[error("another Airlock process is writing this audit log ({path} is locked)")]
    Locked { path: PathBuf },
    #[error("the audit log is closed")]
    Closed,
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: the last {bytes} bytes (from offset {offset}) are an incomplete record, left by a crash; \
         run `airlock audit repair`"
    )]
    TornTail { path: PathBuf, offset: u64, bytes: u64 },
    #[error(
        "the log holds {records} records but checkpoint {checkpoint_size} was signed for more: records were \
         removed; run `airlock audit verify`"
    )]
    Truncated { records: u64, checkpoint_size: u64 },
    #[error("the event cannot be stored: {0}")]
    Canonical(#[from] CanonicalError),
    #[error("checkpoint: {0}")]
    Note(#[from] crate::checkpoint::NoteError),
    #[error("merkle: {0}")]
    Merkle(#[from] crate::merkle::MerkleError),
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// JSON that is not an audit event (from another process sharing the log, see [`crate::shared`]).
    #[error("not an audit event: {0}")]
    InvalidEvent(String),
    /// The process that holds a shared log could not be reached, or did not take the record. The caller must
    /// deny.
    #[error("shared audit log {socket}: {reason}")]
    Shared { socket: PathBuf, reason: String },
}

pub(crate) fn io_err(path: impl Into<PathBuf>, op: &'static str) -> impl FnOnce(std::io::Error) -> AuditError {
    let path = path.into();
    move |source| AuditError::Io { path, op, source }
}
