//! Attack: cut records off the end of the log — alone, together with the checkpoints that signed them, and
//! together with every local checkpoint (caught only by a checkpoint kept elsewhere).

use crate::common::*;

fn cut_last_records(dir: &std::path::Path, n: usize) {
    let seg = segments(dir).pop().unwrap();
    let mut lines = lines_of(&seg);
    lines.truncate(lines.len() - n);
    write_lines(&seg, &lines);
}

#[test]
fn dropping_signed_records_is_caught_by_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, opts());
    cut_last_records(dir.path(), 3);
    let r = verify(dir.path());
    assert!(!r.ok());
    assert!(describe(&r).contains("were removed"), "{}", describe(&r));
    assert_eq!(r.first_bad().and_then(|p| p.seq), Some(9));
}

#[test]
fn dropping_records_and_their_checkpoints_is_caught_by_an_offsite_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = airlock_audit::AuditLog::open(dir.path(), signer(), opts(), vec![]).unwrap();
    for i in 0..5 {
        log.append(event(i)).unwrap();
    }
    let kept_elsewhere = log.checkpoint().unwrap().note; // e.g. shipped to a SIEM
    for i in 5..10 {
        log.append(event(i)).unwrap();
    }
    log.close().unwrap();
    // The attacker cuts the log back to 4 records and rewrites the checkpoint file to match: keeping only the
    // first checkpoint (signed at open, for 1 record), which the shortened log still satisfies.
    cut_last_records(dir.path(), 8);
    let cps = lines_of(&checkpoints_file(dir.path()));
    write_lines(&checkpoints_file(dir.path()), &cps[..1]);
    let local_only = verify(dir.path());
    assert!(local_only.ok(), "without an outside checkpoint this cut is invisible: {}", describe(&local_only));
    let r = verify_with(dir.path(), vec![kept_elsewhere]);
    assert!(!r.ok());
    assert!(describe(&r).contains("were removed"), "{}", describe(&r));
}

#[test]
fn dropping_the_whole_checkpoint_file_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5, opts());
    std::fs::remove_file(checkpoints_file(dir.path())).unwrap();
    let r = verify(dir.path());
    assert!(!r.ok());
    assert!(describe(&r).contains("no valid checkpoint"), "{}", describe(&r));
}
