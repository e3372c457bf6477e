//! Attack: swap two records.

use crate::common::*;

#[test]
fn swapping_two_records_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, opts());
    let seg = segments(dir.path()).pop().unwrap();
    let mut lines = lines_of(&seg);
    lines.swap(4, 5); // seq 3 and seq 4
    write_lines(&seg, &lines);
    let r = verify(dir.path());
    assert!(!r.ok());
    assert_eq!(r.first_bad().and_then(|p| p.seq), Some(3), "{}", describe(&r));
}
