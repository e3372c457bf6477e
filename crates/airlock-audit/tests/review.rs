//! Security review of airlock-audit: each test is named after a defect it demonstrates (it fails until the defect
//! is fixed), except those marked "pins:", which pass and pin behaviour nobody tested yet.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use airlock_audit::record::{self, RecordLine};
use airlock_audit::{AuditLog, Event, Options, Retention};
use serde_json::json;

use common::*;

/// The last complete record of a segment file.
fn last_record(seg: &Path) -> (u64, i64, [u8; 32]) {
    let lines = lines_of(seg);
    let last = lines.last().unwrap();
    let r = RecordLine::parse(&last[..last.len() - 1]).unwrap();
    (r.seq, r.logged_ms, r.leaf)
}

/// Appends a record that chains correctly onto the end of `seg`, as anyone who can write the file can.
fn append_forged(seg: &Path, event: Event) {
    let (seq, logged, prev) = last_record(seg);
    let json = airlock_audit::canonical::to_vec(&event.into_value()).unwrap();
    let mut line = Vec::new();
    record::encode_into(seq + 1, logged, &prev, &json, &mut line);
    line.push(b'\n');
    let mut lines = lines_of(seg);
    lines.push(line);
    write_lines(seg, &lines);
}

// ---------------------------------------------------------------------------------------------------------------
// verify must never panic on attacker-controlled input
// ---------------------------------------------------------------------------------------------------------------

/// `logged` is any i64 the canonical envelope can spell, including i64::MIN. Verify computes
/// `last_logged - rec.logged_ms` for the "time goes backwards" message, which overflows (a panic in debug builds,
/// a nonsense number in release).
#[test]
fn verify_panics_on_record_time_i64_min_overflow() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5, opts());
    let seg = segments(dir.path()).pop().unwrap();
    let mut lines = lines_of(&seg);
    // Re-spell record at line 3 with logged = i64::MIN (the envelope stays canonical).
    let l = lines[3].clone();
    let r = RecordLine::parse(&l[..l.len() - 1]).unwrap();
    let mut forged = Vec::new();
    record::encode_into(r.seq, i64::MIN, &r.prev, r.event.get().as_bytes(), &mut forged);
    assert!(RecordLine::parse(&forged).is_ok(), "the forged line is a well-formed record");
    forged.push(b'\n');
    lines[3] = forged;
    write_lines(&seg, &lines);
    let res = std::panic::catch_unwind(|| verify(dir.path()));
    let report = res.expect("verify panicked on a hostile record time");
    assert!(!report.ok());
}

// ---------------------------------------------------------------------------------------------------------------
// tampering that verify does not notice
// ---------------------------------------------------------------------------------------------------------------

/// Verify accepts a missing prefix of the log whenever *any* record says `retention_removed_before >= first_seq`,
/// including a record in the unsigned tail (after the newest checkpoint), which anyone can forge because the chain
/// is unkeyed. So: delete the oldest (signed!) segments, append one forged "retention" record, and verify says OK.
/// Fix: only count retention records covered by a checkpoint whose root matched (seq < matched size).
#[test]
fn forged_unsigned_retention_record_hides_deleted_signed_segments() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 60, Options { segment_max_bytes: 4096, ..opts() });
    let segs = segments(dir.path());
    assert!(segs.len() >= 4, "need several segments, got {}", segs.len());
    assert!(verify(dir.path()).ok());
    // Remove the two oldest segments: dozens of signed records, none ever removed by retention.
    std::fs::remove_file(&segs[0]).unwrap();
    std::fs::remove_file(&segs[1]).unwrap();
    let first_kept = airlock_audit::segment::list(dir.path()).unwrap().segments[0].0;
    let last = segs.last().unwrap();
    append_forged(
        last,
        Event::lifecycle(1_763_900_000_000, 99, "retention")
            .set("unmapped.airlock.retention_removed_before", json!(first_kept)),
    );
    let r = verify(dir.path());
    assert_eq!(r.unsigned_records, 1);
    assert!(
        !r.ok(),
        "signed records 0..{first_kept} were deleted and verify passed, because an unsigned forged record excused it"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// writer races
// ---------------------------------------------------------------------------------------------------------------

/// `write_checkpoint` reads the durable tip and the time under the state lock, signs, and only then takes the io
/// lock to append the note. Two concurrent checkpoint writers (background timer, `checkpoint()`, retention, the
/// N-records trigger) can append their notes in the opposite order, and verify then reports a good log as
/// "checkpoint file was rewritten" / "checkpoint time goes backwards". Fix: hold one lock (the io lock) across
/// reading the tip, signing and appending, or drop a note whose size is below the last one written.
#[test]
fn concurrent_checkpoints_are_written_out_of_order_and_fail_verify() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { checkpoint_every: 1, checkpoint_interval: Duration::from_millis(1), ..opts() };
    let log = Arc::new(AuditLog::open(dir.path(), signer(), o, vec![]).unwrap());
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..300u64 {
                    log.append(event(t * 1000 + i)).unwrap();
                    log.checkpoint().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    Arc::try_unwrap(log).ok().unwrap().close().unwrap();
    let r = verify(dir.path());
    assert!(r.ok(), "a log nobody touched fails verification:\n{}", describe(&r));
}

/// `Follower::poll` reads the current segment to its end, *then* lists the directory and moves to the next
/// segment if one exists. Records appended to the old segment between the read and the listing (the writer
/// rotates on the following batch) are skipped for good: `tail -f` silently drops records. Fix: after seeing a
/// newer segment, read the current one to its end once more before switching.
#[test]
fn follower_skips_records_written_just_before_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { segment_max_bytes: 4096, ..opts() };
    let log = Arc::new(AuditLog::open(dir.path(), signer(), o, vec![]).unwrap());
    let (mut follower, _) = airlock_audit::reader::Follower::new(dir.path(), 0).unwrap();
    let start = log.status().records;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 20_000 {
                log.append(event(i)).unwrap();
                i += 1;
            }
        })
    };
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !writer.is_finished() && Instant::now() < deadline {
        seen.extend(follower.poll().unwrap().into_iter().map(|s| s.seq));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    seen.extend(follower.poll().unwrap().into_iter().map(|s| s.seq));
    let mut expected = start;
    for s in &seen {
        assert_eq!(*s, expected, "the follower jumped from seq {} to {s}: records were skipped", expected - 1);
        expected += 1;
    }
}

/// "Readers may run while writing" and "retention never breaks verification": verify lists `segments/`, then
/// reads each file. Retention deleting a listed segment in between makes verify fail with an I/O error (exit 1)
/// on a healthy log; an in-flight write makes it report a torn tail (exit 10). Fix: treat a segment that vanished
/// as retention (re-list and restart, or skip it if it is older than a retention record), and ignore a partial
/// final line in the newest segment when the log is locked by a live writer.
#[test]
fn verify_of_a_live_log_fails_spuriously_during_retention_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        segment_max_bytes: 4096,
        retention: Retention { max_segments: Some(2), max_age: None },
        checkpoint_every: 50,
        ..opts()
    };
    let log = Arc::new(AuditLog::open(dir.path(), signer(), o, vec![]).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|t| {
            let (log, stop) = (Arc::clone(&log), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    log.append_buffered(event(t * 1_000_000 + i)).unwrap();
                    if i % 8 == 0 {
                        log.append(event(t * 1_000_000 + i)).unwrap();
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let mut failures = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && failures.len() < 3 {
        match airlock_audit::verify(dir.path(), &verifier(), &airlock_audit::VerifyOptions::default()) {
            Err(e) => failures.push(format!("error: {e}")),
            Ok(r) if !r.ok() => failures.push(format!("report: {}", describe(&r))),
            Ok(_) => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    Arc::try_unwrap(log).ok().unwrap().close().unwrap();
    assert!(verify(dir.path()).ok(), "the log itself is fine");
    assert!(failures.is_empty(), "verify of a healthy live log failed:\n{}", failures.join("\n"));
}

#[allow(dead_code)]
fn _unused(_: AtomicU64) {}
