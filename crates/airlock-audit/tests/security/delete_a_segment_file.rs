//! Attack: delete a whole segment file — from the middle, or the oldest one (pretending it was retention).

use airlock_audit::Options;

use crate::common::*;

fn rotated_log(dir: &std::path::Path) {
    write_log(dir, 120, Options { segment_max_bytes: 8192, ..opts() });
    assert!(segments(dir).len() >= 4);
    assert!(verify(dir).ok());
}

#[test]
fn deleting_a_middle_segment_is_named() {
    let dir = tempfile::tempdir().unwrap();
    rotated_log(dir.path());
    let segs = airlock_audit::segment::list(dir.path()).unwrap().segments;
    let (first_missing, path) = segs[2].clone();
    std::fs::remove_file(path).unwrap();
    let r = verify(dir.path());
    assert!(!r.ok());
    assert_eq!(r.first_bad().and_then(|p| p.seq), Some(first_missing), "{}", describe(&r));
    assert!(describe(&r).contains("segment was deleted"), "{}", describe(&r));
}

#[test]
fn deleting_the_oldest_segment_without_a_retention_record_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    rotated_log(dir.path());
    std::fs::remove_file(&segments(dir.path())[0]).unwrap();
    let r = verify(dir.path());
    assert!(!r.ok());
    assert!(describe(&r).contains("no signed retention record"), "{}", describe(&r));
}
