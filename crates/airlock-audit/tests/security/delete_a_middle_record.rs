//! Attack: delete one record from the middle of the log.

use crate::common::*;

#[test]
fn deleting_a_middle_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, opts());
    let seg = segments(dir.path()).pop().unwrap();
    let mut lines = lines_of(&seg);
    lines.remove(6); // seq 5
    write_lines(&seg, &lines);
    let r = verify(dir.path());
    assert!(!r.ok());
    let first = r.first_bad().unwrap();
    assert_eq!(first.seq, Some(5), "{}", describe(&r));
    assert!(describe(&r).contains("expected 5"), "{}", describe(&r));
}
