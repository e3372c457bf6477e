//! Attack: cut the log back to record k, then append new records that chain correctly from record k-1 (the
//! hashes are unkeyed, so an attacker can compute them). The signed checkpoints still describe the old tree.

use airlock_audit::record::{self, RecordLine};

use crate::common::*;

#[test]
fn a_rewritten_tail_with_a_valid_chain_fails_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, opts());
    let seg = segments(dir.path()).pop().unwrap();
    let mut lines = lines_of(&seg);
    // Keep the header and seq 0..=4, then forge seq 5.. with a correct chain.
    lines.truncate(6);
    let last = lines.last().unwrap();
    let mut prev = RecordLine::parse(&last[..last.len() - 1]).unwrap().leaf;
    for seq in 5..12u64 {
        let event = event(seq + 500).into_value();
        let json = airlock_audit::canonical::to_vec(&event).unwrap();
        let mut line = Vec::new();
        record::encode_into(seq, 1_763_900_000_000, &prev, &json, &mut line);
        prev = RecordLine::parse(&line).unwrap().leaf;
        line.push(b'\n');
        lines.push(line);
    }
    write_lines(&seg, &lines);
    let r = verify(dir.path());
    assert!(!r.ok());
    assert!(describe(&r).contains("do not match the checkpoint"), "{}", describe(&r));
    // Nothing in the chain itself is broken: only the signature-backed root could catch this.
    assert!(!describe(&r).contains("hash chain"), "{}", describe(&r));
}
