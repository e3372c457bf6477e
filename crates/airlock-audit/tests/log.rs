//! The writer and readers, end to end on real files: durability contract, concurrency, rotation, retention,
//! checkpoints, recovery, sinks and following.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_audit::reader::{self, Filter, Follower};
use airlock_audit::sink::{ExportItem, Sink, SinkError, SinkOptions};
use airlock_audit::{AuditError, AuditLog, Class, Decision, Event, Options, Retention};
use common::*;

#[test]
fn appends_are_numbered_in_order_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), signer(), opts(), vec![]).unwrap();
    // Record 0 is the writer's own "opened" record.
    let seqs: Vec<u64> = (0..20).map(|i| log.append(event(i)).unwrap().seq).collect();
    assert_eq!(seqs, (1..21).collect::<Vec<_>>());
    let cp = log.close().unwrap();
    assert_eq!(cp.checkpoint.size, 22, "opened + 20 + closed");
    let r = verify(dir.path());
    assert!(r.ok(), "{}", describe(&r));
    assert_eq!(r.tree_size(), 22);
    assert_eq!(r.unsigned_records, 0);
    assert!(r.checkpoints_matched >= 2, "the open and close checkpoints both match");
}

#[test]
fn reopening_continues_the_same_tree() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5, opts());
    write_log(dir.path(), 5, opts());
    let r = verify(dir.path());
    assert!(r.ok(), "{}", describe(&r));
    assert_eq!(r.tree_size(), 14, "two sessions of opened + 5 + closed");
    let mut seqs = vec![];
    reader::for_each(dir.path(), |s| {
        seqs.push(s.seq);
        true
    })
    .unwrap();
    assert_eq!(seqs, (0..14).collect::<Vec<_>>());
}

#[test]
fn a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), signer(), opts(), vec![]).unwrap();
    let second = AuditLog::open(dir.path(), signer(), opts(), vec![]);
    assert!(matches!(second, Err(AuditError::Locked { .. })));
    drop(log);
    AuditLog::open(dir.path(), signer(), opts(), vec![]).unwrap().close().unwrap();
}

#[test]
fn a_second_writer_waits_for_the_first_to_close() {
    let dir = tempfile::tempdir().unwrap();
    let first = AuditLog::open(dir.path(), signer(), opts(), vec![]).unwrap();
    let path = dir.path().to_path_buf();
    let second = std::thread::spawn(move || {
        let o = Options { lock_timeout: Duration::from_secs(10), ..opts() };
        let log = AuditLog::open(&path, signer(), o, vec![]).unwrap();
        log.append(event(2)).unwrap();
        log.close().unwrap();
    });
    std::thread::sleep(Duration::from_millis(100));
    first.append(event(1)).unwrap();
    first.close().unwrap();
    second.join().unwrap();
    let r = verify(dir.path());
    assert!(r.ok(), "{}", describe(&r));
    assert_eq!(r.tree_size(), 6, "two sessions of opened + 1 + closed");
}

#[test]
fn concurrent_writers_get_unique_durable_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(dir.path(), signer(), opts(), vec![]).unwrap());
    let seqs = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let (log, seqs) = (Arc::clone(&log), Arc::clone(&seqs));
            std::thread::spawn(move || {
                for i in 0..50 {
                    let r = log.append(event(t * 1000 + i)).unwrap();
                    seqs.lock().unwrap().push(r.seq);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut got = seqs.lock().unwrap().clone();
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), 32 * 50);
    Arc::into_inner(log).unwrap().close().unwrap();
    let r = verify(dir.path());
    assert!(r.ok(), "{}", describe(&r));
    assert_eq!(r.tree_size(), 32 * 50 + 2);
}

#[test]
fn buffered_appends_reach_disk_on_flush() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), signer(), opts(), vec![]).unwrap();
    for i in 0..1000 {
        log.append_buffered(event(i)).unwrap();
    }
    log.flush().unwrap();
    let mut n = 0;
    reader::for_each(dir.path(), |_| {
        n += 1;
        true
    })
    .unwrap();
    assert_eq!(n, 1001);
    log.close().unwrap();
    assert!(verify(dir.path()).ok());
}

#[test]
fn rotation_splits_segments_and_the_whole_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { segment_max_bytes: 8192, checkpoint_every: 25, ..opts() };
    write_log(dir.path(), 200, o);
    let segs = segments(dir.path());
    assert!(segs.len() > 5, "{} segments", segs.len());
    for s in &segs {
        assert!(std::fs::metadata(s).unwrap().len() < 8192 + 4096, "{} too big", s.display());
    }
    let r = verify(dir.path());
    assert!(r.ok(), "{}", describe(&r));
    assert_eq!(r.tree_size(), 202);
}

#[test]
fn retention_removes_old_segments_without_breaking_verification() {
    let dir = tempfile::tempdir().unwrap();
    let o =
        Options { segment_max_bytes: 8192, retention: Retention { max_segments: Some(3), max_age: None }, ..opts() };
    let log = AuditLog::open(dir.path(), signer(), o, vec![]).unwrap();
    for i in 0..300 {
        log.append(event(i)).unwrap();
    }
    // Retention runs on the background thread about once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while segments(dir.path()).len() > 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    log.close().unwrap();
    let segs = segments(dir.path());
    assert!(segs.len() <= 4, "retention kept {} segments", segs.len());
    let r = verify(dir.path());
    assert!(r.ok(), "{}", describe(&r));
    assert!(r.first_seq > 0, "old records were removed");
    // A retained record can still be proven against the final root.
    let (pruned, leaves) = reader::leaves(dir.path()).unwrap();
    let view = airlock_audit::merkle::TreeView::new(&pruned, &leaves);
    let size = view.size();
    let root = view.root_at(size).unwrap();
    let seq = r.first_seq + 3;
    let proof = view.inclusion_proof(seq, size).unwrap();
    airlock_audit::merkle::verify_inclusion(&leaves[(seq - pruned.size()) as usize], seq, size, &proof, &root).unwrap();
}

/// A verify holds `<dir>/readers` shared for as long as it runs; retention must not delete segments it may have
/// listed until it lets go.
#[test]
fn retention_waits_for_a_running_verify() {
    let dir = tempfile::tempdir().unwrap();
    let o =
        Options { segment_max_bytes: 8192, retention: Retention { max_segments: Some(3), max_age: None }, ..opts() };
    let log = AuditLog::open(dir.path(), signer(), o, vec![]).unwrap();
    let reader = std::fs::File::open(dir.path().join(airlock_audit::segment::READERS_FILE)).unwrap();
    reader.lock_shared().unwrap();
    for i in 0..300 {
        log.append(event(i)).unwrap();
    }
    let held = segments(dir.path()).len();
    assert!(held > 4, "the test needs retention to have work: {held} segments");
    // Retention runs on the background thread about once a second: give it three chances.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(segments(dir.path()).len(), held, "retention deleted segments under a running verify");
    drop(reader);
    let deadline = Instant::now() + Duration::from_secs(10);
    while segments(dir.path()).len() > 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(segments(dir.path()).len() <= 4, "retention did not resume once the verify was done");
    log.close().unwrap();
    let r = verify(dir.path());
    assert!(r.ok(), "{}", describe(&r));
}

#[test]
fn checkpoints_are_signed_every_n_records() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { checkpoint_every: 10, ..opts() };
    let log = AuditLog::open(dir.path(), signer(), o, vec![]).unwrap();
    for i in 0..55 {
        log.append(event(i)).unwrap();
    }
    // Signed by the background thread within a second or so; the deadline only bounds a starved machine.
    let deadline = Instant::now() + Duration::from_secs(30);
    while log.status().checkpoint_size < 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(log.status().checkpoint_size >= 50, "checkpoint at {}", log.status().checkpoint_size);
    log.close().unwrap();
    let lines = lines_of(&checkpoints_file(dir.path()));
    assert!(lines.len() >= 6, "open + five every-10 + close, got {}", lines.len());
}

#[test]
fn an_idle_log_writes_heartbeat_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { heartbeat: Duration::from_millis(100), ..opts() };
    let log = AuditLog::open(dir.path(), signer(), o, vec![]).unwrap();
    let before = lines_of(&checkpoints_file(dir.path())).len();
    std::thread::sleep(Duration::from_millis(450));
    let after = lines_of(&checkpoints_file(dir.path())).len();
    assert!(after >= before + 2, "heartbeats: {before} -> {after}");
    log.close().unwrap();
    assert!(verify(dir.path()).ok());
}

#[test]
fn a_torn_final_record_is_cut_off_on_open_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 3, opts());
    let seg = segments(dir.path()).pop().unwrap();
    let mut data = std::fs::read(&seg).unwrap();
    data.extend_from_slice(b"{\"event\":{\"class_uid\":60");
    std::fs::write(&seg, &data).unwrap();
    let r = verify(dir.path());
    assert!(r.problems.is_empty(), "{}", describe(&r));
    assert_eq!(r.torn_tail.as_ref().map(|t| t.seq), Some(5));

    let refuse = Options { repair_torn_tail: false, ..opts() };
    assert!(matches!(AuditLog::open(dir.path(), signer(), refuse, vec![]), Err(AuditError::TornTail { .. })));

    AuditLog::open(dir.path(), signer(), opts(), vec![]).unwrap().close().unwrap();
    let r = verify(dir.path());
    assert!(r.ok(), "{}", describe(&r));
    let mut repaired = false;
    reader::for_each(dir.path(), |s| {
        repaired |= airlock_audit::event::get_path(&s.event, "unmapped.airlock.repair").is_some();
        true
    })
    .unwrap();
    assert!(repaired, "the repair is itself a record");
}

#[test]
fn clock_stepping_back_is_recorded_and_times_stay_monotonic() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_763_800_000_000);
    let o = Options { clock: Arc::new(clock.clone()), ..opts() };
    let log = AuditLog::open(dir.path(), signer(), o, vec![]).unwrap();
    let a = log.append(event(1)).unwrap();
    clock.set(1_763_800_000_000 - 3_600_000);
    let b = log.append(event(2)).unwrap();
    assert_eq!(b.logged_ms, a.logged_ms, "held at the last time, not back-dated");
    log.close().unwrap();
    let mut step = None;
    reader::for_each(dir.path(), |s| {
        if let Some(v) = airlock_audit::event::get_path(&s.event, "unmapped.airlock.clock_step_ms") {
            step = v.as_i64();
        }
        true
    })
    .unwrap();
    assert_eq!(step, Some(-3_600_000));
    assert!(verify(dir.path()).ok());
}

/// Collects what it is given; can be told to fail.
#[derive(Clone, Default)]
struct MemorySink {
    got: Arc<Mutex<Vec<ExportItem>>>,
    failing: Arc<Mutex<bool>>,
}

impl Sink for MemorySink {
    fn describe(&self) -> String {
        "memory".into()
    }
    fn deliver(&mut self, items: &[Arc<ExportItem>]) -> Result<(), SinkError> {
        if *self.failing.lock().unwrap() {
            return Err(SinkError("down".into()));
        }
        self.got.lock().unwrap().extend(items.iter().map(|i| (**i).clone()));
        Ok(())
    }
    fn wants_checkpoints(&self) -> bool {
        true
    }
}

#[test]
fn sinks_receive_records_and_checkpoints_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::default();
    let log =
        AuditLog::open(dir.path(), signer(), opts(), vec![(Box::new(sink.clone()), SinkOptions::default())]).unwrap();
    for i in 0..30 {
        log.append(event(i)).unwrap();
    }
    log.close().unwrap();
    let got = sink.got.lock().unwrap();
    let seqs: Vec<u64> = got
        .iter()
        .filter_map(|i| match i {
            ExportItem::Record(r) => Some(r.seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, (0..32).collect::<Vec<_>>());
    let r = got
        .iter()
        .find_map(|i| match i {
            ExportItem::Record(r) if r.seq == 1 => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(r.event["metadata"]["sequence"], 1);
    assert_eq!(r.event["message"], "request 0");
    assert!(got.iter().any(|i| matches!(i, ExportItem::Checkpoint { .. })));
}

#[test]
fn a_failing_fail_closed_sink_makes_appends_fail_but_local_records_stay() {
    let dir = tempfile::tempdir().unwrap();
    let sink = MemorySink::default();
    let so = SinkOptions {
        fail_closed: true,
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
        ..SinkOptions::default()
    };
    let log = AuditLog::open(dir.path(), signer(), opts(), vec![(Box::new(sink.clone()), so)]).unwrap();
    log.append(event(1)).unwrap();
    *sink.failing.lock().unwrap() = true;
    // Accepted locally unless the sink already failed on an earlier record; either way it then fails delivering.
    let _ = log.append(event(2));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut refused = false;
    while Instant::now() < deadline {
        if matches!(log.append(event(3)), Err(AuditError::SinkDown { .. })) {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(refused, "appends must be refused while a fail-closed sink is down");
    *sink.failing.lock().unwrap() = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    while log.append(event(4)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    log.append(event(5)).unwrap();
    log.close().unwrap();
    assert!(verify(dir.path()).ok());
}

#[test]
fn query_filters_by_class_actor_decision_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), signer(), opts(), vec![]).unwrap();
    for i in 0..12 {
        log.append(event(i)).unwrap();
    }
    log.append(Event::process_launch(1, "agent-9", Some("sh"), 42, "/bin/sh")).unwrap();
    log.close().unwrap();
    let count = |f: Filter| {
        let mut n = 0;
        reader::for_each(dir.path(), |s| {
            n += usize::from(f.matches(&s));
            true
        })
        .unwrap();
        n
    };
    assert_eq!(count(Filter { decision: Some(Decision::Deny), ..Filter::default() }), 4);
    assert_eq!(count(Filter { actor: Some("agent-1".into()), ..Filter::default() }), 3);
    assert_eq!(count(Filter { classes: vec![Class::ProcessActivity], ..Filter::default() }), 1);
    assert_eq!(count(Filter { classes: vec![Class::ApplicationLifecycle], ..Filter::default() }), 2);
    assert_eq!(count(Filter { until_ms: Some(0), ..Filter::default() }), 0);
    assert_eq!(count(Filter::default()), 15);
}

#[test]
fn reading_from_a_seq_returns_that_record_and_every_later_one_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { segment_max_bytes: 8192, ..opts() };
    let log = AuditLog::open(dir.path(), signer(), o, vec![]).unwrap();
    for i in 0..100 {
        log.append(event(i)).unwrap();
    }
    log.close().unwrap();
    let firsts: Vec<u64> =
        airlock_audit::segment::list(dir.path()).unwrap().segments.into_iter().map(|(first, _)| first).collect();
    assert!(firsts.len() > 3, "{firsts:?}");
    let mut all = vec![];
    reader::for_each(dir.path(), |s| {
        all.push(s);
        true
    })
    .unwrap();
    let total = all.len() as u64;
    // From each segment's first record, the one before it, one inside, the last and past the end.
    let mut froms = vec![0, 1, 37, total - 1, total, total + 5];
    froms.extend(firsts.iter().flat_map(|f| [f.saturating_sub(1), *f, f + 1]));
    for from in froms {
        let mut got = vec![];
        reader::for_each_from(dir.path(), from, |s| {
            got.push(s);
            true
        })
        .unwrap();
        let want: Vec<_> = all.iter().filter(|s| s.seq >= from).cloned().collect();
        assert_eq!(got, want, "from {from}");
    }
    // Stopping early stops.
    let mut n = 0;
    reader::for_each_from(dir.path(), 10, |_| {
        n += 1;
        n < 3
    })
    .unwrap();
    assert_eq!(n, 3);
}

#[test]
fn a_follower_sees_new_records_across_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options { segment_max_bytes: 8192, ..opts() };
    let log = AuditLog::open(dir.path(), signer(), o, vec![]).unwrap();
    let (mut follower, backlog) = Follower::new(dir.path(), 5).unwrap();
    assert_eq!(backlog.len(), 1, "only the opened record exists");
    for i in 0..100 {
        log.append(event(i)).unwrap();
    }
    let mut seen = vec![];
    for r in follower.poll().unwrap() {
        seen.push(r.seq);
    }
    assert_eq!(seen, (1..101).collect::<Vec<_>>());
    assert!(segments(dir.path()).len() > 1);
    log.close().unwrap();
}

#[test]
fn the_newest_records_are_the_tail_of_a_full_read_and_read_only_the_segments_they_span() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 200, Options { segment_max_bytes: 8192, ..opts() });
    let listing = airlock_audit::segment::list(dir.path()).unwrap().segments;
    assert!(listing.len() > 4, "{listing:?}");
    let mut all = vec![];
    reader::for_each(dir.path(), |s| {
        all.push(s);
        true
    })
    .unwrap();
    let denied = |s: &reader::Stored| airlock_audit::event::decision_of(&s.event) == Some("deny");
    for limit in [1, 5, 37, all.len() - 1, all.len(), all.len() + 10] {
        let got = reader::newest(dir.path(), limit, |_| true).unwrap();
        assert_eq!(got, all[all.len().saturating_sub(limit)..], "limit {limit}");
        let want: Vec<_> = all.iter().filter(|s| denied(s)).cloned().collect();
        let got = reader::newest(dir.path(), limit, denied).unwrap();
        assert_eq!(got, want[want.len().saturating_sub(limit)..], "limit {limit}, denied only");
    }
    // Every record names its log, as the checkpoints do.
    let origin = signer().verifier().name().to_string();
    assert!(all.iter().all(|s| s.event["metadata"]["log_name"] == origin.as_str()));

    // The oldest segment made unreadable: a full read fails, the newest few are still served without it.
    std::fs::write(&listing[0].1, b"not a segment\n").unwrap();
    assert!(reader::for_each(dir.path(), |_| true).is_err());
    let got = reader::newest(dir.path(), 5, |_| true).unwrap();
    assert_eq!(got, all[all.len() - 5..]);
    let (_, backlog) = Follower::new(dir.path(), 5).unwrap();
    assert_eq!(backlog, all[all.len() - 5..], "tail -n reads the same way");
}
