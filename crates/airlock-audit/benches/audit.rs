//! End-to-end audit log benchmarks, printed as a table (see docs/benchmarks.md):
//!
//! - the disk's raw rate of durable 200-byte appends (one `fdatasync` each), measured in the same run, on the
//!   same filesystem, as the baseline group commit is judged against;
//! - durable appends/s through `AuditLog::append` with 1 and 32 concurrent writers (group commit);
//! - buffered (non-durable) appends/s from one thread;
//! - verify throughput (MB/s) over the log just written;
//! - checkpoint and proof sizes.
//!
//! `cargo bench -p airlock-audit --bench audit` (AUDIT_BENCH_SECS=N per row, default 3; AUDIT_BENCH_DIR to pick
//! the filesystem, default the system temp dir).

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use airlock_audit::checkpoint::NoteSigner;
use airlock_audit::merkle::TreeView;
use airlock_audit::{AuditLog, Decision, Event, Options, VerifyOptions};
use airlock_crypto::Key32;
use airlock_crypto::sign::SigningKey;

fn signer() -> NoteSigner {
    NoteSigner::new("airlock/audit/bench", SigningKey::from_seed(&Key32::from_bytes([1; 32]))).unwrap()
}

fn event(i: u64) -> Event {
    Event::request(1_763_800_000_000, "agent-7", Some("fetch"), Decision::Allow, &["airlock.tool.fetch"])
        .set("http_request.http_method", "GET".into())
        .set("http_request.url.hostname", "api.example.com".into())
        .set("http_request.url.path", format!("/v1/items/{i}").into())
        .message("allowed by airlock.tool.fetch")
        .correlation(&format!("call-{i}"))
}

fn opts() -> Options {
    Options {
        checkpoint_every: 10_000,
        checkpoint_interval: Duration::from_secs(10),
        heartbeat: Duration::from_secs(60),
        ..Options::default()
    }
}

/// 200-byte appends, each followed by `fdatasync`: what one durable record costs without batching.
fn raw_fsync_rate(dir: &std::path::Path, secs: f64) -> f64 {
    let path = dir.join("raw-fsync");
    let mut f = OpenOptions::new().create(true).append(true).open(&path).unwrap();
    let line = [b'x'; 199];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        f.write_all(&line).unwrap();
        f.write_all(b"\n").unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(path);
    rate
}

/// Durable appends/s with `writers` threads, each appending and waiting in a loop.
fn durable_rate(dir: &std::path::Path, writers: u64, secs: f64) -> (f64, u64) {
    let log = Arc::new(AuditLog::open(dir, signer(), opts(), vec![]).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|t| {
            let (log, stop, count) = (Arc::clone(&log), Arc::clone(&stop), Arc::clone(&count));
            std::thread::spawn(move || {
                let mut i = t << 32;
                while !stop.load(Ordering::Relaxed) {
                    log.append(event(i)).unwrap();
                    count.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let n = count.load(Ordering::Relaxed);
    let rate = n as f64 / start.elapsed().as_secs_f64();
    Arc::into_inner(log).unwrap().close().unwrap();
    (rate, n)
}

/// Buffered appends/s from `writers` threads, each building its events as it goes.
fn buffered_rate(dir: &std::path::Path, writers: u64, secs: f64) -> (f64, u64) {
    let log = Arc::new(AuditLog::open(dir, signer(), opts(), vec![]).unwrap());
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut n = 0u64;
                while start.elapsed().as_secs_f64() < secs {
                    for _ in 0..1000 {
                        log.append_buffered(event((t << 32) + n)).unwrap();
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let n: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let rate = n as f64 / start.elapsed().as_secs_f64();
    Arc::into_inner(log).unwrap().close().unwrap();
    (rate, n)
}

/// Where a buffered append's time goes (AUDIT_BENCH_BREAKDOWN=1), each step measured in steady state.
fn breakdown(dir: &std::path::Path) {
    let n = 200_000u64;
    let per = |t: Instant| t.elapsed().as_secs_f64() / n as f64 * 1e6;
    let t = Instant::now();
    for i in 0..n {
        std::hint::black_box(event(i));
    }
    let build = per(t);
    let t = Instant::now();
    let mut bytes = 0;
    for i in 0..n {
        bytes += airlock_audit::canonical::to_vec(&event(i).into_value()).unwrap().len();
    }
    let canon = per(t) - build;
    let log = AuditLog::open(dir, signer(), opts(), vec![]).unwrap();
    let t = Instant::now();
    for i in 0..n {
        log.append_buffered(event(i)).unwrap();
    }
    let append = per(t) - build;
    log.close().unwrap();
    println!(
        "per record: build event {build:.2} us, canonical {canon:.2} us ({} bytes), append_buffered after build \
         {append:.2} us",
        bytes / n as usize,
    );
}

fn main() {
    if let Some(w) = std::env::var_os("AUDIT_BENCH_WRITERS") {
        // One durable row only, for profiling.
        let writers: u64 = w.to_str().and_then(|w| w.parse().ok()).unwrap_or(32);
        let tmp = tempfile::tempdir().unwrap();
        let (rate, n) = durable_rate(&tmp.path().join("d"), writers, 3.0);
        println!("{writers} writers: {rate:.0} records/s ({n} records)");
        return;
    }
    if std::env::var_os("AUDIT_BENCH_BREAKDOWN").is_some() {
        let tmp = tempfile::tempdir_in("/dev/shm").unwrap();
        breakdown(tmp.path());
        return;
    }
    let secs: f64 = std::env::var("AUDIT_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let base = std::env::var_os("AUDIT_BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::tempdir_in(&base).unwrap();
    println!("audit log benchmark: {secs} s per row, files in {}", base.display());
    println!();
    println!("| measurement | result |");
    println!("|---|---|");

    // A shared disk's fsync rate drifts; each durable row is compared with a raw run measured just before it.
    for writers in [1u64, 32] {
        let raw = raw_fsync_rate(tmp.path(), secs);
        println!("| raw durable 200-byte appends (write + fdatasync each) | {raw:.0} /s |");
        let dir = tmp.path().join(format!("durable-{writers}"));
        let (rate, _) = durable_rate(&dir, writers, secs);
        println!(
            "| durable appends, {writers} writer(s), group commit | {rate:.0} records/s ({:.1}x the raw rate above) |",
            rate / raw
        );
    }
    for writers in [2u64, 1] {
        let dir = tmp.path().join(format!("buffered-{writers}"));
        let (rate, n) = buffered_rate(&dir, writers, secs);
        println!("| buffered (non-durable) appends, {writers} writer(s) | {rate:.0} records/s ({n} records) |");
    }
    let dir = tmp.path().join("buffered-1");

    let bytes: u64 =
        airlock_audit::segment::list(&dir).unwrap().segments.iter().map(|(_, p)| p.metadata().unwrap().len()).sum();
    let verifier = signer().verifier();
    let start = Instant::now();
    let report = airlock_audit::verify(&dir, &verifier, &VerifyOptions::default()).unwrap();
    let el = start.elapsed().as_secs_f64();
    assert!(report.ok(), "{:?}", report.problems);
    println!(
        "| verify ({} records, {:.1} MB) | {:.0} MB/s, {:.0} records/s |",
        report.tree_size(),
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / el,
        report.tree_size() as f64 / el
    );
    println!("| record size on disk (this event) | {} bytes |", bytes / report.tree_size().max(1));

    let (lines, _) = airlock_audit::segment::read_checkpoint_file(&dir).unwrap();
    let note = lines.last().unwrap().note.clone().unwrap();
    println!("| checkpoint note (C2SP, one Ed25519 signature) | {} bytes |", note.len());
    let (pruned, leaves) = airlock_audit::reader::leaves(&dir).unwrap();
    let view = TreeView::new(&pruned, &leaves);
    let size = view.size();
    let inclusion = view.inclusion_proof(size / 3, size).unwrap();
    let consistency = view.consistency_proof(size / 3, size).unwrap();
    println!("| inclusion proof at tree size {size} | {} hashes = {} bytes |", inclusion.len(), inclusion.len() * 32);
    println!(
        "| consistency proof {} -> {size} | {} hashes = {} bytes |",
        size / 3,
        consistency.len(),
        consistency.len() * 32
    );
    println!("| proofs at 2^30 records (bound: ceil(log2 n)) | at most 30 hashes = 960 bytes |");
}
