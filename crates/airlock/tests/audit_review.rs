//! Defects found in security review of `airlock audit …`, each pinned by a test named after the defect (the test
//! failed until the defect was fixed). Logs are written with the library under a fixed key and checked with
//! `--key`, so no vault is needed.

mod common;

use std::path::Path;

use airlock_audit::checkpoint::NoteSigner;
use airlock_audit::{AuditLog, Decision, Event, Options};
use airlock_crypto::Key32;
use airlock_crypto::sign::SigningKey;
use common::Airlock;

fn signer() -> NoteSigner {
    NoteSigner::new("airlock/audit/review", SigningKey::from_seed(&Key32::from_bytes([9; 32]))).unwrap()
}

fn vkey() -> String {
    signer().verifier().to_vkey()
}

fn opts() -> Options {
    Options { checkpoint_every: 1_000_000, ..Options::default() }
}

fn event(i: u64) -> Event {
    Event::request(1_763_800_000_000 + i as i64, "agent-a", Some("fetch"), Decision::Allow, &["p"])
        .message(format!("request {i}"))
}

/// Writes `n` records and closes the log; returns the final checkpoint note (what one keeps off-box).
fn write_log(dir: &Path, n: u64, o: Options) -> String {
    let log = AuditLog::open(dir, signer(), o, vec![]).unwrap();
    for i in 0..n {
        log.append(event(i)).unwrap();
    }
    log.close().unwrap().note
}

/// An off-box checkpoint proves the log had records. Deleting `segments/` (and the local checkpoint file) is the
/// most complete cut there is, yet `verify --checkpoint` exits 4 "no audit log" — the code for "not found" — not
/// 10 "verification failed", and never looks at the trusted checkpoint. A monitor that treats 4 as "not set up
/// yet" misses the attack. Fix (audit.rs `verify`): when `--checkpoint` is given (or `checkpoints` exists), run
/// the verification anyway: no segments against a checkpoint of size > 0 is "records 0..N were removed", exit 10.
#[test]
fn verify_exits_4_not_10_when_the_whole_log_is_deleted_despite_a_trusted_checkpoint() {
    let al = Airlock::new();
    let dir = al.path("log");
    let note = write_log(&dir, 5, opts());
    let saved = al.path("offbox.note");
    std::fs::write(&saved, &note).unwrap();
    al.call(["audit", "verify", "--key", &vkey(), "--log"]).arg(&dir).arg("--checkpoint").arg(&saved).expect(0);
    std::fs::remove_dir_all(dir.join("segments")).unwrap();
    std::fs::remove_file(dir.join("checkpoints")).unwrap();
    al.call(["audit", "verify", "--key", &vkey(), "--log"]).arg(&dir).arg("--checkpoint").arg(&saved).expect(10);
}

/// `--checkpoint FILE` is the user's trust anchor against truncation, but a file holding no note at all (empty:
/// a crash after `--save-checkpoint`'s unsynced write, a wrong path to an empty file, an export that failed)
/// is accepted silently and checks nothing, so a cut log verifies OK. Fix (audit.rs `verify`): refuse a
/// `--checkpoint` file that holds no checkpoint (and fsync in `save_checkpoint`).
#[test]
fn verify_silently_accepts_a_checkpoint_file_with_no_checkpoint_in_it() {
    let al = Airlock::new();
    let dir = al.path("log");
    write_log(&dir, 5, opts());
    // Cut the tail and the local checkpoints that would show it (as tests/audit_cli.rs does).
    let seg = airlock_audit::segment::list(&dir).unwrap().segments.pop().unwrap().1;
    let lines: Vec<String> = std::fs::read_to_string(&seg).unwrap().split_inclusive('\n').map(String::from).collect();
    std::fs::write(&seg, lines[..3].concat()).unwrap();
    let cps = dir.join("checkpoints");
    let cp_lines: Vec<String> =
        std::fs::read_to_string(&cps).unwrap().split_inclusive('\n').map(String::from).collect();
    std::fs::write(&cps, cp_lines[..2].concat()).unwrap();
    let empty = al.path("offbox.note");
    std::fs::write(&empty, "").unwrap();
    let r = al.call(["audit", "verify", "--key", &vkey(), "--log"]).arg(&dir).arg("--checkpoint").arg(&empty).run();
    assert_ne!(r.code, Some(0), "an empty --checkpoint file was accepted and checked nothing:\n{}", r.out());
}

/// `audit query` / `audit tail` (text mode) print record fields verbatim. Fields carry what agents control (a
/// message with the denied path or host, a tool name, a program path), so a record can hold a newline and a
/// fake line, or terminal escapes that hide or recolour lines: an operator reading `airlock audit tail -f`
/// sees a forged "allow" line, or does not see a "deny". Fix (audit.rs `print_record`): escape control
/// characters (e.g. `char::escape_debug` or replace C0/C1/DEL with `\u{..}`) in every printed field.
#[test]
fn query_and_tail_print_control_characters_from_records_verbatim() {
    let al = Airlock::new();
    let dir = al.path("log");
    let log = AuditLog::open(&dir, signer(), opts(), vec![]).unwrap();
    log.append(
        Event::request(1_763_800_000_000, "agent-a", Some("fetch"), Decision::Deny, &["p"])
            .message("denied\n2025-11-22T08:00:00.000Z  #9      API Activity: Other                  agent-a          allow forged\u{1b}[8m"),
    )
    .unwrap();
    log.close().unwrap();
    let records = airlock_audit::reader::Follower::new(&dir, 1000).unwrap().1.len();
    for cmd in [["audit", "query", "--log"], ["audit", "tail", "--log"]] {
        let r = al.call(cmd).arg(&dir).expect(0);
        let out = r.out();
        assert!(!out.contains('\u{1b}'), "{cmd:?} printed a raw ESC from a record:\n{out:?}");
        assert_eq!(out.lines().count(), records, "{cmd:?} printed more lines than there are records:\n{out}");
    }
}

/// `audit prove SEQ` for the last record before a retention cut when the cut is at an odd seq F: the inclusion
/// proof for F-1 can be built from the kept frontier, and then `leaves[(seq - pruned.size()) as usize]` underflows
/// (a panic, exit 101, in debug builds; in release the wrap happens to hit the "removed by retention" error).
/// Fix (audit.rs `prove`): `seq.checked_sub(pruned.size())` before indexing.
#[test]
fn prove_underflows_for_the_last_record_before_an_odd_retention_cut() {
    let al = Airlock::new();
    let dir = al.path("log");
    write_log(&dir, 60, Options { segment_max_bytes: 4096, ..opts() });
    let segs = airlock_audit::segment::list(&dir).unwrap().segments;
    let (i, &(f, _)) =
        segs.iter().enumerate().find(|(i, (f, _))| *i > 0 && f % 2 == 1).expect("a segment at an odd seq");
    for (_, p) in &segs[..i] {
        std::fs::remove_file(p).unwrap(); // what retention does
    }
    let size = airlock_audit::reader::leaves(&dir).map(|(p, l)| p.size() + l.len() as u64).unwrap();
    let r = al
        .call(["audit", "prove", "--log"])
        .arg(&dir)
        .arg((f - 1).to_string())
        .args(["--size", &size.to_string()])
        .run();
    assert_ne!(r.code, Some(101), "prove panicked:\n{}", r.err());
    assert!(r.err().contains("removed by retention"), "{}", r.err());
}
