//! The file sink on a real filesystem: JSON Lines, permissions, symlinks, rotation, and the refusal cases.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock_audit::sink::file::{FileSink, FileSinkOptions};
use airlock_audit::sink::{ExportItem, ExportRecord, Sink, SinkOptions, SinkWorker};
use serde_json::{Value, json};

fn record(seq: u64) -> Arc<ExportItem> {
    Arc::new(ExportItem::Record(ExportRecord {
        seq,
        logged_ms: 1_790_000_000_000 + seq as i64,
        event: json!({
            "class_uid": 6003,
            "message": format!("event {seq}\nwith a newline"),
            "metadata": { "version": "1.8.0", "sequence": seq },
        }),
    }))
}

fn records(seqs: impl IntoIterator<Item = u64>) -> Vec<Arc<ExportItem>> {
    seqs.into_iter().map(record).collect()
}

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "every line is terminated");
    text.lines().map(|l| serde_json::from_str(l).expect("each line is one JSON value")).collect()
}

fn sequences(path: &Path) -> Vec<u64> {
    lines(path).iter().filter_map(|v| v["metadata"]["sequence"].as_u64()).collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn writes_one_compact_json_event_per_line_in_a_new_0600_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = FileSink::open(&path, FileSinkOptions::default()).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(sink.describe(), format!("file {}", path.display()));

    sink.deliver(&records(1..=3)).unwrap();
    sink.deliver(&records(4..=5)).unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 5, "the newline inside a message stays escaped");
    assert!(!text.contains(": "), "compact JSON");
    assert_eq!(sequences(&path), vec![1, 2, 3, 4, 5]);
    assert_eq!(lines(&path)[0]["message"], "event 1\nwith a newline");
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn appends_to_an_existing_file_without_truncating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, "{\"earlier\":true}\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();

    let mut sink = FileSink::open(&path, FileSinkOptions::default()).unwrap();
    sink.deliver(&records([1])).unwrap();

    let all = lines(&path);
    assert_eq!(all[0], json!({"earlier": true}));
    assert_eq!(all[1]["metadata"]["sequence"], 1);
    assert_eq!(mode(&path), 0o640, "an existing file's mode is left alone");
}

#[test]
fn checkpoints_become_lines_only_when_wanted() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = Arc::new(ExportItem::Checkpoint { size: 1, note: "airlock.example/log\n1\nabc=\n".into() });
    let batch = vec![record(1), Arc::clone(&checkpoint)];

    let with = dir.path().join("with.jsonl");
    let mut sink = FileSink::open(&with, FileSinkOptions { wants_checkpoints: true }).unwrap();
    assert!(sink.wants_checkpoints());
    sink.deliver(&batch).unwrap();
    assert_eq!(lines(&with)[1], json!({"airlock_checkpoint": {"size": 1, "note": "airlock.example/log\n1\nabc=\n"}}));

    let without = dir.path().join("without.jsonl");
    let mut sink = FileSink::open(&without, FileSinkOptions::default()).unwrap();
    assert!(!sink.wants_checkpoints());
    sink.deliver(&batch).unwrap();
    sink.deliver(std::slice::from_ref(&checkpoint)).unwrap();
    assert_eq!(lines(&without).len(), 1);
}

#[test]
fn a_symlink_at_the_path_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, "").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.path().join("audit.jsonl");
    symlink(&target, &link).unwrap();

    let err = FileSink::open(&link, FileSinkOptions::default()).unwrap_err();
    assert!(err.0.contains("symlink"), "{err}");

    // A dangling symlink is not followed to create its target either.
    let dangling = dir.path().join("dangling.jsonl");
    symlink(dir.path().join("would-be-created"), &dangling).unwrap();
    let err = FileSink::open(&dangling, FileSinkOptions::default()).unwrap_err();
    assert!(err.0.contains("symlink"), "{err}");
    assert!(!dir.path().join("would-be-created").exists());
    assert_eq!(std::fs::read(&target).unwrap(), b"");
}

#[test]
fn a_symlink_swapped_in_after_opening_is_refused_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = FileSink::open(&path, FileSinkOptions::default()).unwrap();
    sink.deliver(&records([1])).unwrap();

    let target = dir.path().join("elsewhere");
    std::fs::write(&target, "").unwrap();
    std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();
    symlink(&target, &path).unwrap();

    let err = sink.deliver(&records([2])).unwrap_err();
    assert!(err.0.contains("symlink"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), b"", "nothing written through the link");
}

#[test]
fn group_or_world_writable_files_and_non_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for m in [0o620, 0o602, 0o666] {
        let path = dir.path().join(format!("mode-{m:o}.jsonl"));
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        let err = FileSink::open(&path, FileSinkOptions::default()).unwrap_err();
        assert!(err.0.contains("writable"), "{m:o}: {err}");
    }

    let err = FileSink::open(dir.path(), FileSinkOptions::default()).unwrap_err();
    assert!(err.0.contains(&dir.path().display().to_string()), "{err}");

    // A FIFO would block a normal open for writing until a reader came; it must fail at once instead.
    let fifo = dir.path().join("fifo.jsonl");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let started = Instant::now();
    let err = FileSink::open(&fifo, FileSinkOptions::default()).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(err.0.contains("FIFO"), "{err}");

    let err = FileSink::open(dir.path().join("no-such-dir/audit.jsonl"), FileSinkOptions::default()).unwrap_err();
    assert!(err.0.contains("no-such-dir"), "{err}");
}

#[test]
fn rotation_by_rename_moves_the_next_batch_to_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let rotated = dir.path().join("audit.jsonl.1");
    let mut sink = FileSink::open(&path, FileSinkOptions::default()).unwrap();
    sink.deliver(&records(1..=2)).unwrap();

    // What logrotate does without copytruncate: rename, and (maybe) create a new empty file.
    std::fs::rename(&path, &rotated).unwrap();
    sink.deliver(&records(3..=4)).unwrap();
    assert_eq!(sequences(&rotated), vec![1, 2]);
    assert_eq!(sequences(&path), vec![3, 4]);
    assert_eq!(mode(&path), 0o600);

    // Rotated again, this time with an empty replacement created by the rotator.
    std::fs::rename(&path, &rotated).unwrap();
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    sink.deliver(&records([5])).unwrap();
    assert_eq!(sequences(&rotated), vec![3, 4]);
    assert_eq!(sequences(&path), vec![5]);
}

#[test]
fn a_deleted_file_is_recreated_and_copytruncate_keeps_appending() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = FileSink::open(&path, FileSinkOptions::default()).unwrap();
    sink.deliver(&records([1])).unwrap();

    std::fs::remove_file(&path).unwrap();
    sink.deliver(&records([2])).unwrap();
    assert_eq!(sequences(&path), vec![2]);
    assert_eq!(mode(&path), 0o600);

    // copytruncate: the same inode, cut to zero; appends continue at the new end, with no hole.
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
    sink.deliver(&records([3])).unwrap();
    assert_eq!(std::fs::read(&path).unwrap().first(), Some(&b'{'));
    assert_eq!(sequences(&path), vec![3]);
}

#[test]
fn a_rotated_in_file_that_is_group_writable_is_refused_then_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut sink = FileSink::open(&path, FileSinkOptions::default()).unwrap();
    sink.deliver(&records([1])).unwrap();

    std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
    let err = sink.deliver(&records([2])).unwrap_err();
    assert!(err.0.contains("writable"), "{err}");

    // The worker would retry the same items; once the mode is fixed they land.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    sink.deliver(&records([2])).unwrap();
    assert_eq!(sequences(&path), vec![2]);
}

#[test]
fn through_the_worker_everything_lands_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let sink = FileSink::open(&path, FileSinkOptions::default()).unwrap();
    let worker = SinkWorker::start(Box::new(sink), SinkOptions { batch_max: 7, ..SinkOptions::default() });
    for chunk in (1..=100u64).collect::<Vec<_>>().chunks(9) {
        worker.offer(&records(chunk.iter().copied()));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while worker.status().delivered < 100 {
        assert!(Instant::now() < deadline, "{:?}", worker.status());
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = worker.shutdown(Duration::from_secs(2));
    assert!(status.healthy && status.failures == 0, "{status:?}");
    assert_eq!(sequences(&path), (1..=100).collect::<Vec<_>>());
}
