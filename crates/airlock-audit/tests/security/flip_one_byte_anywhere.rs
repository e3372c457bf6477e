//! Attack: change one byte, anywhere in the log's files. Every position, in every segment and in the
//! checkpoint file, must make verification fail.

use crate::common::*;

#[test]
fn every_single_byte_flip_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 6, opts());
    let mut files = segments(dir.path());
    files.push(checkpoints_file(dir.path()));
    assert!(verify(dir.path()).ok());
    let mut checked = 0;
    for file in files {
        let original = std::fs::read(&file).unwrap();
        for pos in 0..original.len() {
            // Two different flips per byte: the low bit (a digit or letter becomes its neighbour) and bit 5
            // (a hex digit changes case), the subtle ones.
            for mask in [0x01u8, 0x20] {
                let mut bytes = original.clone();
                bytes[pos] ^= mask;
                std::fs::write(&file, &bytes).unwrap();
                let r = verify(dir.path());
                assert!(!r.ok(), "flipping byte {pos} of {} with {mask:#04x} went unnoticed", file.display());
                checked += 1;
            }
        }
        std::fs::write(&file, &original).unwrap();
    }
    assert!(verify(dir.path()).ok());
    assert!(checked > 5000, "only {checked} flips tried");
}

#[test]
fn a_flip_inside_a_record_names_that_record() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 6, opts());
    let seg = segments(dir.path()).pop().unwrap();
    let mut lines = lines_of(&seg);
    // Line 0 is the header, line 1 is seq 0; change the message of seq 3 ("request 2").
    let text = String::from_utf8(lines[4].clone()).unwrap();
    assert!(text.contains("request 2"));
    lines[4] = text.replace("request 2", "request 7").into_bytes();
    write_lines(&seg, &lines);
    let r = verify(dir.path());
    assert_eq!(r.first_bad().and_then(|p| p.seq), Some(3), "{}", describe(&r));
}

#[test]
fn a_flip_in_the_prev_field_names_the_record_that_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 6, opts());
    let seg = segments(dir.path()).pop().unwrap();
    let mut lines = lines_of(&seg);
    let text = String::from_utf8(lines[5].clone()).unwrap(); // seq 4
    let at = text.find("\"prev\":\"").unwrap() + 8;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    lines[5] = bytes;
    write_lines(&seg, &lines);
    let r = verify(dir.path());
    assert_eq!(r.first_bad().and_then(|p| p.seq), Some(4), "{}", describe(&r));
}
