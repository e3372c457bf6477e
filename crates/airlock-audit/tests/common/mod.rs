//! Shared helpers for the audit tests: a fixed signing key, fast timers, sample events, and file surgery.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use airlock_audit::checkpoint::{NoteSigner, NoteVerifier};
use airlock_audit::{AuditLog, Clock, Decision, Event, Options, Report, VerifyOptions};
use airlock_crypto::Key32;
use airlock_crypto::sign::SigningKey;

pub const ORIGIN: &str = "airlock/audit/test";

pub fn signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_seed(&Key32::from_bytes([42; 32]))).unwrap()
}

/// A different key under the same name: what a forger without the vault would have.
pub fn forger() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_seed(&Key32::from_bytes([66; 32]))).unwrap()
}

pub fn verifier() -> NoteVerifier {
    signer().verifier()
}

/// Options with timers short enough for tests but long enough not to fire unasked.
pub fn opts() -> Options {
    Options {
        checkpoint_every: 1_000_000,
        checkpoint_interval: Duration::from_secs(3600),
        heartbeat: Duration::from_secs(3600),
        flush_interval: Duration::from_millis(2),
        lock_timeout: Duration::ZERO,
        ..Options::default()
    }
}

pub fn event(i: u64) -> Event {
    let decision = if i.is_multiple_of(3) { Decision::Deny } else { Decision::Allow };
    let agent = format!("agent-{}", i % 4);
    Event::request(1_763_800_000_000 + i as i64, &agent, Some("fetch"), decision, &["airlock.tool.fetch"])
        .message(format!("request {i}"))
        .correlation(&format!("call-{i}"))
}

/// Writes `n` records to a fresh log in `dir` and closes it (so a final checkpoint covers everything).
pub fn write_log(dir: &Path, n: u64, o: Options) {
    let log = AuditLog::open(dir, signer(), o, vec![]).unwrap();
    for i in 0..n {
        log.append(event(i)).unwrap();
    }
    log.close().unwrap();
}

pub fn verify(dir: &Path) -> Report {
    airlock_audit::verify(dir, &verifier(), &VerifyOptions::default()).unwrap()
}

pub fn verify_with(dir: &Path, trusted: Vec<String>) -> Report {
    let o = VerifyOptions { trusted_notes: trusted, ..VerifyOptions::default() };
    airlock_audit::verify(dir, &verifier(), &o).unwrap()
}

pub fn segments(dir: &Path) -> Vec<PathBuf> {
    airlock_audit::segment::list(dir).unwrap().segments.into_iter().map(|(_, p)| p).collect()
}

pub fn checkpoints_file(dir: &Path) -> PathBuf {
    airlock_audit::segment::checkpoints_path(dir)
}

/// The lines of a file, each with its newline.
pub fn lines_of(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap();
    data.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

pub fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    std::fs::write(path, lines.concat()).unwrap();
}

/// A clock the test moves by hand.
#[derive(Debug, Clone)]
pub struct ManualClock(pub Arc<AtomicI64>);

impl ManualClock {
    pub fn new(ms: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(ms)))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Every problem's text, for assertion messages.
pub fn describe(r: &Report) -> String {
    let mut s: Vec<String> = r.problems.iter().map(ToString::to_string).collect();
    if let Some(t) = &r.torn_tail {
        s.push(format!("torn tail at seq {}", t.seq));
    }
    s.join("\n")
}
