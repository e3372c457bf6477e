//! Attack: roll the clock back, to back-date records — by moving the system clock while the writer runs, or
//! by editing the times in the files afterwards.

use std::sync::Arc;

use airlock_audit::Options;

use crate::common::*;

#[test]
fn a_clock_rolled_back_under_the_writer_cannot_back_date_records() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_763_800_000_000);
    let log = airlock_audit::AuditLog::open(
        dir.path(),
        signer(),
        Options { clock: Arc::new(clock.clone()), ..opts() },
        vec![],
    )
    .unwrap();
    let before = log.append(event(1)).unwrap();
    clock.set(1_763_800_000_000 - 86_400_000);
    let after = log.append(event(2)).unwrap();
    assert!(after.logged_ms >= before.logged_ms);
    log.close().unwrap();
    assert!(verify(dir.path()).ok());
}

#[test]
fn a_record_time_edited_backwards_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 6, opts());
    let seg = segments(dir.path()).pop().unwrap();
    let mut lines = lines_of(&seg);
    let text = String::from_utf8(lines[4].clone()).unwrap(); // seq 3
    let at = text.find("\"logged\":").unwrap() + 9;
    let end = at + text[at..].find(',').unwrap();
    let logged: i64 = text[at..end].parse().unwrap();
    lines[4] = format!("{}{}{}", &text[..at], logged - 86_400_000, &text[end..]).into_bytes();
    write_lines(&seg, &lines);
    let r = verify(dir.path());
    assert!(describe(&r).contains("time goes backwards"), "{}", describe(&r));
    assert_eq!(r.first_bad().and_then(|p| p.seq), Some(3), "{}", describe(&r));
}
