//! `GET /v1/audit/checkpoint`: the audit log's latest signed checkpoint, for a caller to keep (pin) and later hold
//! the log to (`airlock audit verify --checkpoint`); and the audit-lag gauges of `GET /metrics`.
//!
//! A checkpoint signs the log's size and Merkle root (a C2SP tlog-checkpoint note, Ed25519). The log signs one every
//! few seconds while records arrive; this route first signs the records since the last one, when the daemon holds
//! the log, so that what the caller pins covers the log as it is now. A poller that appends nothing adds nothing: a
//! checkpoint is only signed over new records.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use airlock_audit::SignedCheckpoint;
use airlock_audit::checkpoint::{Checkpoint, NoteVerifier};
use base64::Engine;
use hyper::StatusCode;
use serde_json::json;

use super::http::{self, Problem, Reply};
use super::{Daemon, now_ms};

/// How much of the checkpoint file's end is read for its last line (a line is a few hundred bytes).
const TAIL: u64 = 64 << 10;

/// `GET /v1/audit/checkpoint`.
pub async fn latest(daemon: &Arc<Daemon>) -> Result<Reply, Problem> {
    let d = Arc::clone(daemon);
    let signed = tokio::task::spawn_blocking(move || -> Result<SignedCheckpoint, Problem> {
        if let Some(status) = d.log.status()
            && status.records > status.checkpoint_size
            && let Some(fresh) = d.log.checkpoint()
        {
            return fresh.map_err(|e| Problem::internal(format!("signing a checkpoint: {e}")));
        }
        read_latest(&d.audit_dir, &d.audit_key)?
            .ok_or_else(|| Problem::not_found("the audit log has no signed checkpoint yet"))
    })
    .await
    .map_err(|e| Problem::internal(format!("the checkpoint task failed: {e}")))??;
    let c = &signed.checkpoint;
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "origin": c.origin,
            "size": c.size,
            "root": base64::engine::general_purpose::STANDARD.encode(c.root),
            "time_ms": c.time_ms,
            "note": signed.note,
            "key": daemon.audit_key.to_vkey(),
        }),
    ))
}

/// The gauges of audit lag, sampled at scrape time: records not yet under a signed checkpoint (NaN while another
/// process holds the log), and the age of the newest checkpoint (NaN without one).
pub fn lag(daemon: &Daemon) -> [(&'static str, &'static str, f64); 2] {
    let unsigned = daemon.log.status().map_or(f64::NAN, |s| s.records.saturating_sub(s.checkpoint_size) as f64);
    let age = match read_latest(&daemon.audit_dir, &daemon.audit_key) {
        Ok(Some(s)) => (now_ms() - s.checkpoint.time_ms).max(0) as f64 / 1000.0,
        _ => f64::NAN,
    };
    [
        (
            "airlock_audit_unsigned_records",
            "Audit records not yet covered by a signed checkpoint (NaN while another process holds the log).",
            unsigned,
        ),
        ("airlock_audit_checkpoint_age_seconds", "Seconds since the newest signed checkpoint of the audit log.", age),
    ]
}

/// The last complete checkpoint of the log in `dir`, its signature checked with `key`; `None` if there is none. A
/// line still being written (no newline yet) is not a checkpoint yet; a last line that does not verify is an error
/// (the file was tampered with: `airlock audit verify` says more).
fn read_latest(dir: &Path, key: &NoteVerifier) -> Result<Option<SignedCheckpoint>, Problem> {
    let path = airlock_audit::segment::checkpoints_path(dir);
    let failed = |e: std::io::Error| Problem::internal(format!("{}: {e}", path.display()));
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    let start = file.metadata().map_err(failed)?.len().saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start)).map_err(failed)?;
    let mut tail = Vec::new();
    file.take(TAIL).read_to_end(&mut tail).map_err(failed)?;
    let Some(end) = tail.iter().rposition(|&b| b == b'\n') else { return Ok(None) };
    let line_start = match tail[..end].iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None if start == 0 => 0,
        None => return Err(Problem::internal(format!("{}: the last line is implausibly long", path.display()))),
    };
    #[derive(serde::Deserialize)]
    struct Line {
        note: String,
    }
    let line: Line = serde_json::from_slice(&tail[line_start..end])
        .map_err(|e| Problem::internal(format!("{}: the last line is not a checkpoint: {e}", path.display())))?;
    let checkpoint = Checkpoint::open(&line.note, key)
        .map_err(|e| Problem::internal(format!("{}: the last checkpoint does not verify: {e}", path.display())))?;
    Ok(Some(SignedCheckpoint { checkpoint, note: line.note }))
}
