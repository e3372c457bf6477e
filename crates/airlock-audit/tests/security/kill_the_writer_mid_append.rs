//! Attack (or accident): `kill -9` the writer at random points, 200 times. No record that was acknowledged
//! may ever be lost; afterwards `verify` passes or names only the torn, unacknowledged tail, and repair (open
//! with `repair_torn_tail`, what `airlock audit repair` does) removes it and records that it did.
//!
//! The writer is this test binary re-executed as a child (see `child_writer`), so the kill hits a real
//! process in the middle of real `write`/`fdatasync` calls.

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use airlock_audit::{AuditLog, Options};

use crate::common::*;

const CHILD_ENV: &str = "AIRLOCK_AUDIT_TEST_KILL_CHILD_DIR";
const ROUNDS: u64 = 200;
/// A fresh log every this many rounds, so the test stays linear in time; each log still sees many
/// kill-and-recover cycles.
const ROUNDS_PER_LOG: u64 = 20;

/// Not a test on its own: the body of the child process. Appends from 4 threads and prints `ack SEQ ID` only
/// after `append` has returned, i.e. once the record is durable.
#[test]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let o = Options { checkpoint_every: 7, segment_max_bytes: 16 * 1024, ..opts() };
    let log = Arc::new(AuditLog::open(std::path::Path::new(&dir), signer(), o, vec![]).unwrap());
    let base: u64 = std::env::var("AIRLOCK_AUDIT_TEST_KILL_BASE").unwrap().parse().unwrap();
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..100_000u64 {
                    let id = base + t * 100_000 + i;
                    let r = log.append(event(id)).unwrap();
                    use std::io::Write;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {} {id}", r.seq).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn no_acknowledged_record_is_lost_across_200_kills() {
    let exe = std::env::current_exe().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut dir = tempfile::tempdir().unwrap();
    let mut acked: HashMap<u64, u64> = HashMap::new();
    let mut total_acked = 0usize;
    let mut torn_seen = 0;
    for round in 0..ROUNDS {
        if round % ROUNDS_PER_LOG == 0 {
            dir = tempfile::tempdir().unwrap();
            acked.clear();
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_micros(2_000 + rng % 60_000);
        let mut child = Command::new(&exe)
            .args(["--exact", "kill_the_writer_mid_append::child_writer", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("AIRLOCK_AUDIT_TEST_KILL_BASE", (round * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        for line in out.lines() {
            // Only whole lines count: the last one may have been cut by the kill.
            let mut parts = line.split(' ');
            if let (Some("ack"), Some(seq), Some(id), None) = (parts.next(), parts.next(), parts.next(), parts.next())
                && let (Ok(seq), Ok(id)) = (seq.parse::<u64>(), id.parse::<u64>())
            {
                assert!(acked.insert(seq, id).is_none(), "seq {seq} acknowledged twice");
                total_acked += 1;
            }
        }

        let r = verify(dir.path());
        assert!(r.problems.is_empty(), "round {round}: verify found more than a torn tail:\n{}", describe(&r));
        torn_seen += usize::from(r.torn_tail.is_some() || r.torn_checkpoint.is_some());

        // Repair, then everything verifies and every acknowledged record is there, unchanged.
        if !r.ok() {
            AuditLog::open(dir.path(), signer(), opts(), vec![]).unwrap().close().unwrap();
            let r = verify(dir.path());
            assert!(r.ok(), "round {round}: after repair:\n{}", describe(&r));
        }
        let mut found = 0;
        airlock_audit::reader::for_each(dir.path(), |s| {
            if let Some(id) = acked.get(&s.seq) {
                assert_eq!(s.event["message"], format!("request {id}"), "round {round}: seq {} changed", s.seq);
                found += 1;
            }
            true
        })
        .unwrap();
        assert_eq!(found, acked.len(), "round {round}: acknowledged records lost");
    }
    assert!(total_acked > 1000, "the writer barely ran ({total_acked} acknowledged records): kills came too early");
    eprintln!("{ROUNDS} kills, {total_acked} acknowledged records, {torn_seen} torn tails repaired");
}
