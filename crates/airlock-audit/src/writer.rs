//! The writer: one per log directory, group commit, checkpoints, rotation and retention.
//!
//! Why group commit: a record counts only once it is on disk, and an `fdatasync` costs about as much for one
//! record as for a thousand. So every caller adds its record to a shared pending buffer (sequence number, time,
//! previous hash and Merkle leaf are assigned right there, under one lock), and then one of the waiting callers
//! becomes the *leader*: it takes everything pending, writes it with one `write`, syncs once, and wakes every
//! caller whose record that covered. Records that arrive while the leader is syncing form the next batch. No
//! thread sits between callers and the disk, and a lone caller pays one sync.
//!
//! Failure is explicit state, not a retry loop: if a write or sync fails, the file is cut back to its last
//! durable length, the in-memory tree rolls back to the last durable record, and every caller still waiting gets
//! [`AuditError::WriteFailed`] — which the broker turns into a deny. The next append tries again from a clean
//! state (so the log recovers when disk space returns) and first records what was lost.
//!
//! Buffered appends skip the wait: the background thread writes them without a sync and syncs at most a second
//! later (a durable append or a checkpoint syncs them sooner). It also signs checkpoints every N records or T seconds,
//! writes a heartbeat checkpoint when idle (so a silent log is visibly alive), and applies retention.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::canonical;
use crate::checkpoint::{Checkpoint, NoteSigner};
use crate::error::{AuditError, io_err};
use crate::event::{Event, activity};
use crate::lock;
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::record::{self, GENESIS_PREV, RecordLine};
use crate::segment::{self, SegmentHeader};
use crate::sink::{ExportItem, ExportRecord, Sink, SinkOptions, SinkStatus, SinkWorker};

/// Milliseconds since the Unix epoch. A trait so tests can move the clock backwards.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        jiff::Timestamp::now().as_millisecond()
    }
}

/// How much the clock may step back before the log records that it did (NTP slews are smaller than this).
const CLOCK_STEP_REPORT_MS: i64 = 1_000;
/// How many callers each woken caller wakes in turn.
const FAN_OUT: usize = 2;
/// Longest a flush leader waits for other writers' records before syncing (see `Inner::gather`).
const MAX_GATHER: Duration = Duration::from_millis(2);
/// A gathering leader stops when no record arrives for this long.
const GATHER_IDLE: Duration = Duration::from_micros(200);
/// How long a buffered record may stay written but not synced.
const BUFFERED_SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Pending bytes beyond which appenders wait for a flush, so a stalled disk cannot eat all memory.
const MAX_PENDING_BYTES: usize = 32 << 20;

/// When to delete old segments. Retention removes whole segments, oldest first, never the one being written.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    /// Delete segments whose newest record is older than this.
    pub max_age: Option<Duration>,
    /// Keep at most this many segments (the current one included).
    pub max_segments: Option<usize>,
}

/// Tuning for one log. The defaults suit a daemon; tests shorten the timers.
#[derive(Clone)]
pub struct Options {
    /// Start a new segment when the current one would grow past this.
    pub segment_max_bytes: u64,
    /// Start a new segment when the current one is older than this (checked when records arrive).
    pub segment_max_age: Option<Duration>,
    pub retention: Retention,
    /// Sign a checkpoint after this many new records.
    pub checkpoint_every: u64,
    /// Sign a checkpoint this long after the last one if new records arrived meanwhile.
    pub checkpoint_interval: Duration,
    /// Sign a checkpoint this long after the last one even if nothing arrived: silence stays visible.
    pub heartbeat: Duration,
    /// How long buffered appends may wait before the background thread writes them.
    pub flush_interval: Duration,
    /// On open, cut off an incomplete final record left by a crash (recording that it did). Only ever applies to
    /// bytes past the last checkpoint; anything else is refused.
    pub repair_torn_tail: bool,
    /// How long `open` waits for another writer (a concurrent CLI command) to let go of the log.
    pub lock_timeout: Duration,
    pub clock: Arc<dyn Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_max_bytes: 64 << 20,
            segment_max_age: Some(Duration::from_secs(24 * 3600)),
            retention: Retention::default(),
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(10),
            heartbeat: Duration::from_secs(60),
            flush_interval: Duration::from_millis(10),
            repair_torn_tail: true,
            lock_timeout: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("segment_max_bytes", &self.segment_max_bytes)
            .field("segment_max_age", &self.segment_max_age)
            .field("retention", &self.retention)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field("heartbeat", &self.heartbeat)
            .field("flush_interval", &self.flush_interval)
            .field("repair_torn_tail", &self.repair_torn_tail)
            .field("lock_timeout", &self.lock_timeout)
            .finish_non_exhaustive()
    }
}

/// A checkpoint and the signed note that carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The C2SP note: what to keep off-box and pass to `verify --checkpoint`.
    pub note: String,
}

/// Proof that a record is in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub seq: u64,
    pub logged_ms: i64,
}

/// The tree after some record: enough to continue it or to sign it.
#[derive(Debug, Clone)]
struct Tip {
    next_seq: u64,
    frontier: Frontier,
    prev: Hash,
}

struct State {
    /// After the last record handed out (possibly not yet written).
    tip: Tip,
    /// After the last record handed to the kernel (`write`), which survives a crash of this process.
    written: Tip,
    /// After the last record known to be on disk (`fdatasync`ed), which survives a power cut.
    durable: Tip,
    /// Serialised records `written.next_seq..tip.next_seq`, each ending in a newline.
    pending: Vec<u8>,
    /// When `pending` last went from empty to not: its records must be written by this plus `flush_interval`.
    pending_since: Option<Instant>,
    /// When the background thread's current wait ends (`None`: it is not waiting, and will look at `pending`
    /// before it waits again).
    background_wakes_at: Option<Instant>,
    pending_exports: Vec<Arc<ExportItem>>,
    /// Exports of records written but not yet durable: sinks get a record only once the local log keeps it.
    unsynced_exports: Vec<Arc<ExportItem>>,
    last_sync: Instant,
    flushing: bool,
    /// Bumped whenever pending records are thrown away after a failed write.
    generation: u64,
    /// `cuts[g]`: the first seq thrown away by the rollback that ended generation `g`. Everything below it was
    /// durable, so a caller from generation `g` whose record is below it succeeded.
    cuts: Vec<u64>,
    last_failure: Option<(&'static str, PathBuf, io::ErrorKind, String)>,
    /// Unreported rollback: (first seq lost, count, why), written as a record by the next append.
    lost: Option<(u64, u64, String)>,
    last_time: i64,
    clock_behind: bool,
    checkpoint_size: u64,
    checkpoint_at: Instant,
    closing: bool,
    closed: bool,
    /// Records in the last synced batch: how many writers are likely to append again right away.
    last_batch: u64,
    /// A leader is waiting for more records before it syncs (appenders then signal `arrived`).
    gathering: bool,
    /// Callers parked until their record is durable: (its seq, the thread). Woken one by one, never as a herd.
    waiters: Vec<(u64, std::thread::Thread)>,
    /// Callers whose wait is over but who are not woken yet: each woken caller wakes two more before it returns,
    /// so the wake-ups (costly syscalls, more so in a VM) spread over the cores instead of queueing behind the
    /// leader.
    to_wake: Vec<std::thread::Thread>,
}

/// The open segment and checkpoint files; only the flush leader and checkpoint writer touch them.
struct Io {
    file: File,
    seg_path: PathBuf,
    seg_first: u64,
    /// Length of the segment as written.
    seg_len: u64,
    /// Length of the segment known to be on disk; a failed write is cut back to this.
    synced_len: u64,
    seg_created_ms: i64,
    /// Set when a failed write could not be cut back: nothing more may be appended until it is.
    dirty: bool,
    /// Set by a rotation that synced the old segment: every record before the batch is now durable, even if the
    /// rest of the flush fails. The leader reads and clears it.
    synced_to_batch_start: bool,
    checkpoints: File,
    checkpoints_len: u64,
}

struct Inner {
    dir: PathBuf,
    opts: Options,
    signer: NoteSigner,
    state: Mutex<State>,
    /// Durable progress, a rollback, or the end of a flush.
    changed: Condvar,
    /// Wakes the background thread.
    wake: Condvar,
    /// A record arrived while a leader was gathering.
    arrived: Condvar,
    io: Mutex<Io>,
    /// Held for the whole of signing and storing a checkpoint, so checkpoints reach the file in order.
    checkpointing: Mutex<()>,
    sinks: Vec<SinkWorker>,
    /// `<dir>/readers` and its gate: retention deletes only while it holds both (see [`segment::READERS_FILE`]).
    readers: File,
    readers_gate: File,
    /// When retention first found a verify running and put its deletions off.
    retention_waiting_since: Mutex<Option<Instant>>,
    _lock: File,
}

/// An open audit log. Cheap to share (`Arc`), safe to use from many threads.
pub struct AuditLog {
    inner: Arc<Inner>,
    background: Mutex<Option<JoinHandle<()>>>,
}

/// What [`AuditLog::status`] reports.
#[derive(Debug, Clone)]
pub struct LogStatus {
    pub records: u64,
    pub durable_records: u64,
    pub checkpoint_size: u64,
    pub segment: PathBuf,
    pub sinks: Vec<SinkStatus>,
}

impl AuditLog {
    /// Opens (or creates) the log in `dir`, recovering its state from the last segment and checkpoint.
    ///
    /// Refuses to open if another process holds the log, if the last segment is damaged anywhere but a torn
    /// final record, or if the log is shorter than its last checkpoint (records were removed). Those need
    /// `airlock audit verify` and a human, not a writer that carries on.
    pub fn open(
        dir: &Path,
        signer: NoteSigner,
        opts: Options,
        sinks: Vec<(Box<dyn Sink>, SinkOptions)>,
    ) -> Result<AuditLog, AuditError> {
        if opts.checkpoint_every == 0 {
            return Err(AuditError::InvalidOption("checkpoint_every must be at least 1".into()));
        }
        if !(4096..=segment::MAX_SEGMENT_BYTES / 2).contains(&opts.segment_max_bytes) {
            return Err(AuditError::InvalidOption(format!(
                "segment_max_bytes must be between 4096 and {} (readers refuse larger segments)",
                segment::MAX_SEGMENT_BYTES / 2
            )));
        }
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir, "create directory"))?;
        let seg_dir = segment::segments_dir(dir);
        if !seg_dir.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&seg_dir)
                .map_err(io_err(&seg_dir, "create directory"))?;
            // Make the new directories' names durable too.
            for d in [dir, dir.parent().unwrap_or(dir)] {
                sync_dir(d).map_err(io_err(d, "fsync"))?;
            }
        }
        let open_lock_file = |name: &str| {
            let path = dir.join(name);
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                .open(&path)
                .map_err(io_err(&path, "open"))
        };
        let lock_path = dir.join(segment::LOCK_FILE);
        let lock_file = open_lock_file(segment::LOCK_FILE)?;
        let waiting_since = Instant::now();
        loop {
            match lock_file.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if waiting_since.elapsed() < opts.lock_timeout => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(fs::TryLockError::WouldBlock) => return Err(AuditError::Locked { path: lock_path }),
                Err(fs::TryLockError::Error(e)) => {
                    return Err(AuditError::Io { path: lock_path, op: "lock", source: e });
                }
            }
        }
        let readers = open_lock_file(segment::READERS_FILE)?;
        let readers_gate = open_lock_file(segment::READERS_GATE_FILE)?;
        remove_temp_files(&seg_dir)?;

        let now = opts.clock.now_ms();
        let recovered = recover(dir, &signer, &opts, now)?;
        let recovered_unsigned =
            if recovered.had_checkpoint { recovered.tip.next_seq.saturating_sub(recovered.checkpoint_size) } else { 0 };
        let sinks = sinks.into_iter().map(|(s, o)| SinkWorker::start(s, o)).collect();
        let state = State {
            tip: recovered.tip.clone(),
            written: recovered.tip.clone(),
            durable: recovered.tip.clone(),
            pending: Vec::new(),
            pending_exports: Vec::new(),
            unsynced_exports: Vec::new(),
            last_sync: Instant::now(),
            flushing: false,
            generation: 0,
            cuts: Vec::new(),
            last_failure: None,
            lost: None,
            last_time: recovered.last_time.max(now),
            clock_behind: false,
            checkpoint_size: recovered.checkpoint_size,
            checkpoint_at: Instant::now(),
            closing: false,
            closed: false,
            last_batch: 0,
            gathering: false,
            pending_since: None,
            background_wakes_at: None,
            waiters: Vec::new(),
            to_wake: Vec::new(),
        };
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            opts,
            signer,
            state: Mutex::new(state),
            changed: Condvar::new(),
            wake: Condvar::new(),
            arrived: Condvar::new(),
            io: Mutex::new(recovered.io),
            checkpointing: Mutex::new(()),
            sinks,
            readers,
            readers_gate,
            retention_waiting_since: Mutex::new(None),
            _lock: lock_file,
        });
        let log = AuditLog { inner: Arc::clone(&inner), background: Mutex::new(None) };
        if !recovered.had_checkpoint {
            // A new log: sign the empty tree before the first record, so that from the first record on, the log
            // always has a checkpoint (and a log with records but none has lost its checkpoint file).
            log.inner.write_checkpoint()?;
        }
        if let Some(torn) = recovered.torn {
            log.append(
                Event::lifecycle(now, activity::UPDATE, torn)
                    .set("unmapped.airlock.repair", json!(true))
                    .severity(crate::event::Severity::Medium),
            )?;
        }
        let unsigned = recovered_unsigned;
        let mut opened = Event::lifecycle(now, activity::START, "audit log opened");
        if unsigned > 0 {
            // These are about to be signed by the checkpoint below. Say so: if they were not what the last writer
            // wrote (the unsigned tail is the one part an attacker can rewrite undetected), this is where it shows.
            opened = opened
                .message(format!(
                    "audit log opened; {unsigned} record(s) not yet signed by a checkpoint are signed now"
                ))
                .set("unmapped.airlock.unsigned_records_signed_at_open", json!(unsigned));
        }
        log.append(opened)?;
        // Sign at once: every log has a checkpoint from its first moment, and a reopened one proves at once that
        // it continues what was signed before.
        log.inner.write_checkpoint()?;
        let bg = std::thread::Builder::new()
            .name("airlock-audit".into())
            .spawn(move || background(&inner))
            .map_err(io_err(dir, "start background thread"))?;
        *lock(&log.background) = Some(bg);
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Appends `event` and returns once it is durable (written and `fdatasync`ed). An `Err` means the record is
    /// not in the log, and the decision it describes must be denied.
    pub fn append(&self, event: Event) -> Result<Receipt, AuditError> {
        let (receipt, generation) = self.inner.enqueue(event)?;
        self.inner.wait_durable(receipt.seq, generation)?;
        Ok(receipt)
    }

    /// Appends `event` without waiting for the disk. The record is written to the file within `flush_interval`
    /// (from then on it survives this process crashing) and synced within a second (from then on it survives a
    /// power cut); a failure in between loses it, and the log records the loss. For records whose loss is
    /// acceptable, such as allows when `record_allows` is not required to be durable.
    pub fn append_buffered(&self, event: Event) -> Result<Receipt, AuditError> {
        Ok(self.inner.enqueue(event)?.0)
    }

    /// Writes everything pending and waits for it to be durable.
    pub fn flush(&self) -> Result<(), AuditError> {
        let (last, generation) = {
            let st = lock(&self.inner.state);
            (st.tip.next_seq, st.generation)
        };
        if last == 0 {
            return Ok(());
        }
        self.inner.wait_durable(last - 1, generation)
    }

    /// Signs and stores a checkpoint of everything durable now.
    pub fn checkpoint(&self) -> Result<SignedCheckpoint, AuditError> {
        self.flush()?;
        self.inner.write_checkpoint()
    }

    pub fn status(&self) -> LogStatus {
        let st = lock(&self.inner.state);
        let io = lock(&self.inner.io);
        LogStatus {
            records: st.tip.next_seq,
            durable_records: st.durable.next_seq,
            checkpoint_size: st.checkpoint_size,
            segment: io.seg_path.clone(),
            sinks: self.inner.sinks.iter().map(SinkWorker::status).collect(),
        }
    }

    /// Records the shutdown, writes a final checkpoint, and gives sinks a moment to deliver.
    pub fn close(self) -> Result<SignedCheckpoint, AuditError> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<SignedCheckpoint, AuditError> {
        {
            let mut st = lock(&self.inner.state);
            if st.closed || st.closing {
                return Err(AuditError::Closed);
            }
            st.closing = true;
        }
        self.inner.wake.notify_all();
        if let Some(bg) = lock(&self.background).take() {
            let _ = bg.join();
        }
        let now = self.inner.opts.clock.now_ms();
        let result = self
            .inner
            .enqueue_inner(Event::lifecycle(now, activity::STOP, "audit log closed"), true)
            .and_then(|(r, g)| self.inner.wait_durable(r.seq, g))
            .and_then(|()| self.inner.write_checkpoint());
        lock(&self.inner.state).closed = true;
        self.inner.changed.notify_all();
        result
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl Inner {
    fn enqueue(&self, event: Event) -> Result<(Receipt, u64), AuditError> {
        self.enqueue_inner(event, false)
    }

    fn enqueue_inner(&self, event: Event, internal: bool) -> Result<(Receipt, u64), AuditError> {
        let mut value = event.into_value();
        let json = canonical::to_vec(&value)?;
        if !internal && let Some(sink) = self.sinks.iter().find(|s| s.blocks_appends()) {
            return Err(AuditError::SinkDown { sink: sink.describe().to_owned() });
        }
        let mut st = lock(&self.state);
        loop {
            if st.closed || (st.closing && !internal) {
                return Err(AuditError::Closed);
            }
            // Internal records (retention, shutdown) bypass the cap: they are what would unblock it.
            if st.pending.len() < MAX_PENDING_BYTES || internal {
                break;
            }
            self.wake.notify_all();
            st = self.changed.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        let now = self.tick(&mut st);
        if let Some((first, count, why)) = st.lost.take() {
            let note = Event::lifecycle(now, activity::OTHER, format!(
                "{count} record(s) from seq {first} were not written ({why}) and were rolled back; their callers were told"
            ))
            .severity(crate::event::Severity::High);
            self.push(&mut st, note.into_value(), now)?;
        }
        let seq = st.tip.next_seq;
        let was_empty = st.pending.is_empty();
        self.push_canonical(&mut st, &json, &mut value, now);
        if was_empty {
            // The background thread writes buffered records within `flush_interval` of the first one. Wake it only
            // when it sleeps longer than that: a wake-up per record costs a context switch per request, and the
            // records written one by one would cost a `write` each.
            let now = Instant::now();
            st.pending_since = Some(now);
            if st.background_wakes_at.is_some_and(|t| t > now + self.opts.flush_interval) {
                self.wake.notify_all();
            }
        }
        // Wake a gathering leader only when its batch is complete: one wakeup per batch, not one per record.
        if st.gathering && st.tip.next_seq - st.written.next_seq >= st.last_batch {
            self.arrived.notify_one();
        }
        Ok((Receipt { seq, logged_ms: now }, st.generation))
    }

    /// The log's clock: the system clock, never going backwards. A step back is recorded once.
    fn tick(&self, st: &mut State) -> i64 {
        let now = self.opts.clock.now_ms();
        if now >= st.last_time {
            st.clock_behind = false;
            st.last_time = now;
            return now;
        }
        let held = st.last_time;
        if held - now > CLOCK_STEP_REPORT_MS && !st.clock_behind {
            st.clock_behind = true;
            let e = Event::lifecycle(
                held,
                activity::OTHER,
                format!("system clock went back {} ms; record times held at the last one", held - now),
            )
            .set("unmapped.airlock.clock_step_ms", json!(now - held))
            .severity(crate::event::Severity::Medium);
            // Internal events are built from strings and safe integers: canonical form cannot fail.
            let _ = self.push(st, e.into_value(), held);
        }
        held
    }

    fn push(&self, st: &mut State, mut value: serde_json::Value, now: i64) -> Result<(), AuditError> {
        let json = canonical::to_vec(&value)?;
        self.push_canonical(st, &json, &mut value, now);
        Ok(())
    }

    fn push_canonical(&self, st: &mut State, json: &[u8], value: &mut serde_json::Value, now: i64) {
        let seq = st.tip.next_seq;
        let start = st.pending.len();
        record::encode_into(seq, now, &st.tip.prev, json, &mut st.pending);
        let leaf = leaf_hash(&st.pending[start..]);
        st.pending.push(b'\n');
        st.tip.frontier.push(leaf);
        st.tip.prev = leaf;
        st.tip.next_seq += 1;
        if !self.sinks.is_empty() {
            let mut event = std::mem::take(value);
            record::stamp(&mut event, seq, now, Some(self.signer.verifier().name()));
            st.pending_exports.push(Arc::new(ExportItem::Record(ExportRecord { seq, logged_ms: now, event })));
        }
    }

    fn wait_durable(&self, seq: u64, generation: u64) -> Result<(), AuditError> {
        let result = self.wait_durable_inner(seq, generation);
        // Pass the baton: wake two more callers whose wait is over.
        let batch: Vec<std::thread::Thread> = {
            let mut st = lock(&self.state);
            let n = st.to_wake.len();
            st.to_wake.split_off(n.saturating_sub(FAN_OUT))
        };
        for t in batch {
            t.unpark();
        }
        result
    }

    fn wait_durable_inner(&self, seq: u64, generation: u64) -> Result<(), AuditError> {
        let mut st = lock(&self.state);
        loop {
            if st.generation != generation {
                if st.cuts.get(generation as usize).is_some_and(|&cut| seq < cut) {
                    return Ok(()); // made durable before the rollback
                }
                let (op, path, kind, msg) = st.last_failure.clone().unwrap_or((
                    "write",
                    self.dir.clone(),
                    io::ErrorKind::Other,
                    "rolled back".into(),
                ));
                return Err(AuditError::WriteFailed { path, op, source: io::Error::new(kind, msg) });
            }
            if st.durable.next_seq > seq {
                return Ok(());
            }
            if !st.flushing {
                st.flushing = true; // this caller is the leader from here on
                st = self.gather(st, generation);
                st = self.flush_locked(st, true);
                continue;
            }
            // Park until the leader says this record is durable, or hands us the next batch. Parking per thread
            // (not a condvar broadcast) wakes exactly the callers a sync covered: with dozens of writers a
            // broadcast costs more in context switches than the sync itself.
            st.waiters.push((seq, std::thread::current()));
            drop(st);
            std::thread::park();
            st = lock(&self.state);
        }
    }

    /// Group commit's one wait: when the last batch showed several writers at work, the leader gives them a moment
    /// to add their next records, so one sync covers them all instead of the first arrival paying a sync alone
    /// while the rest queue behind it. It stops as soon as the last batch's count is reached, when no record has
    /// arrived for [`GATHER_IDLE`] (the others are not coming soon), or after [`MAX_GATHER`]. A lone writer never
    /// waits.
    fn gather<'a>(&'a self, mut st: MutexGuard<'a, State>, generation: u64) -> MutexGuard<'a, State> {
        let target = st.last_batch;
        if target <= 1 {
            return st;
        }
        let deadline = Instant::now() + MAX_GATHER;
        st.gathering = true;
        while st.tip.next_seq - st.written.next_seq < target && st.generation == generation {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let before = st.tip.next_seq;
            st = self.arrived.wait_timeout(st, GATHER_IDLE.min(deadline - now)).unwrap_or_else(|p| p.into_inner()).0;
            if st.tip.next_seq == before {
                break;
            }
        }
        st.gathering = false;
        st
    }

    /// Becomes the flush leader: writes everything pending (and with `sync`, makes everything written durable),
    /// then wakes the callers it covered.
    fn flush_locked<'a>(&'a self, mut st: MutexGuard<'a, State>, sync: bool) -> MutexGuard<'a, State> {
        st.flushing = true;
        // The next batch will likely be about this size: give it the room now rather than grow it by copying.
        let room = st.pending.len();
        let batch = std::mem::replace(&mut st.pending, Vec::with_capacity(room));
        st.pending_since = None;
        let exports = std::mem::take(&mut st.pending_exports);
        let start = st.written.clone();
        let end = st.tip.clone();
        let now = st.last_time;
        drop(st);

        let (result, start_durable) = {
            let mut io = lock(&self.io);
            let r = self.write_batch(&mut io, &start, &batch, now, sync);
            (r, std::mem::take(&mut io.synced_to_batch_start))
        };

        let mut st = lock(&self.state);
        let generation_before = st.generation;
        st.flushing = false;
        if start_durable && start.next_seq > st.durable.next_seq {
            // A rotation synced everything before this batch: whatever happens to the batch, that much is kept.
            st.durable = start.clone();
            let exports = std::mem::take(&mut st.unsynced_exports);
            for sink in &self.sinks {
                sink.offer(&exports);
            }
        }
        match result {
            Ok(()) => {
                if sync {
                    st.last_batch = end.next_seq - st.durable.next_seq;
                }
                st.written = end;
                st.unsynced_exports.extend(exports);
                if sync {
                    st.durable = st.written.clone();
                    st.last_sync = Instant::now();
                    let exports = std::mem::take(&mut st.unsynced_exports);
                    for sink in &self.sinks {
                        sink.offer(&exports);
                    }
                    if st.durable.next_seq - st.checkpoint_size >= self.opts.checkpoint_every {
                        self.wake.notify_all();
                    }
                }
            }
            Err(AuditError::WriteFailed { path, op, source }) => {
                // Everything after the last durable record is gone from the file: forget it here too.
                let first = st.durable.next_seq;
                let lost = st.tip.next_seq - first;
                let why = format!("{op} {}: {source}", path.display());
                st.lost = Some(match st.lost.take() {
                    Some((f, count, _)) => (f, count + lost, why),
                    None => (first, lost, why),
                });
                st.last_failure = Some((op, path, source.kind(), source.to_string()));
                st.cuts.push(first);
                st.tip = st.durable.clone();
                st.written = st.durable.clone();
                st.pending.clear();
                st.pending_exports.clear();
                st.unsynced_exports.clear();
                st.generation += 1;
            }
            Err(other) => {
                // write_batch only fails with WriteFailed; keep the invariant loud in debug builds.
                debug_assert!(false, "unexpected flush error {other}");
            }
        }
        // Wake the callers whose records are now durable (all of them after a rollback: they must see it), and if
        // any are left with nobody leading, one of them to lead the next batch.
        let durable = st.durable.next_seq;
        let rolled_back = st.generation != generation_before;
        let mut done = Vec::new();
        st.waiters.retain(|(seq, t)| {
            let go = rolled_back || *seq < durable;
            if go {
                done.push(t.clone());
            }
            !go
        });
        st.to_wake.extend(done);
        let mut wake = Vec::new();
        if !st.waiters.is_empty() && !st.flushing {
            wake.push(st.waiters.remove(0).1);
        }
        let n = st.to_wake.len();
        wake.extend(st.to_wake.split_off(n.saturating_sub(FAN_OUT)));
        self.changed.notify_all();
        // Unpark without the lock held, so the woken callers do not block on it straight away.
        drop(st);
        for t in wake {
            t.unpark();
        }
        lock(&self.state)
    }

    fn write_batch(&self, io: &mut Io, start: &Tip, batch: &[u8], now: i64, sync: bool) -> Result<(), AuditError> {
        let result = self.write_batch_inner(io, start, batch, now, sync);
        if result.is_err() {
            io.dirty = true;
            let _ = cut_back(io);
        }
        result
    }

    fn write_batch_inner(
        &self,
        io: &mut Io,
        start: &Tip,
        batch: &[u8],
        now: i64,
        sync: bool,
    ) -> Result<(), AuditError> {
        let failed = |path: &Path, op: &'static str| {
            let path = path.to_path_buf();
            move |source| AuditError::WriteFailed { path, op, source }
        };
        if io.dirty {
            cut_back(io).map_err(failed(&io.seg_path, "truncate after failed write"))?;
        }
        let has_records = start.next_seq > io.seg_first;
        let too_big = io.seg_len + batch.len() as u64 > self.opts.segment_max_bytes;
        let too_old = self.opts.segment_max_age.is_some_and(|age| now - io.seg_created_ms >= age.as_millis() as i64);
        if !batch.is_empty() && has_records && (too_big || too_old) {
            // Finish the old segment first, so unsynced records never straddle two files.
            if io.synced_len < io.seg_len {
                io.file.sync_data().map_err(failed(&io.seg_path, "sync"))?;
                io.synced_len = io.seg_len;
                io.synced_to_batch_start = true;
            }
            let path = segment::segment_path(&self.dir, start.next_seq);
            let (file, len) = create_segment(&self.dir, start, self.signer.verifier().name())
                .map_err(failed(&path, "create segment"))?;
            io.file = file;
            io.seg_path = path;
            io.seg_first = start.next_seq;
            io.seg_len = len;
            io.synced_len = len;
            io.seg_created_ms = now;
            self.wake.notify_all(); // retention may now have something to do
        }
        if !batch.is_empty() {
            io.file.write_all(batch).map_err(failed(&io.seg_path, "write"))?;
            io.seg_len += batch.len() as u64;
        }
        if sync && io.synced_len < io.seg_len {
            io.file.sync_data().map_err(failed(&io.seg_path, "sync"))?;
            io.synced_len = io.seg_len;
        }
        Ok(())
    }

    fn write_checkpoint(&self) -> Result<SignedCheckpoint, AuditError> {
        let _one_at_a_time = lock(&self.checkpointing);
        let (tip, time_ms) = {
            let mut st = lock(&self.state);
            let t = self.tick(&mut st);
            (st.durable.clone(), t)
        };
        let cp = Checkpoint {
            origin: self.signer.verifier().name().to_owned(),
            size: tip.next_seq,
            root: tip.frontier.root(),
            time_ms,
        };
        let note = cp.sign(&self.signer)?;
        {
            let mut io = lock(&self.io);
            let line = segment::encode_checkpoint_line(&note);
            let path = segment::checkpoints_path(&self.dir);
            let res = io.checkpoints.write_all(&line).and_then(|()| io.checkpoints.sync_data());
            if let Err(source) = res {
                let len = io.checkpoints_len;
                let _ = io.checkpoints.set_len(len).and_then(|()| io.checkpoints.sync_data());
                return Err(AuditError::WriteFailed { path, op: "write checkpoint", source });
            }
            io.checkpoints_len += line.len() as u64;
        }
        let mut st = lock(&self.state);
        st.checkpoint_size = st.checkpoint_size.max(cp.size);
        st.checkpoint_at = Instant::now();
        drop(st);
        let item = [Arc::new(ExportItem::Checkpoint { size: cp.size, note: note.clone() })];
        for sink in &self.sinks {
            sink.offer(&item);
        }
        Ok(SignedCheckpoint { checkpoint: cp, note })
    }

    /// Deletes segments retention no longer keeps, after recording that it does so.
    fn apply_retention(&self) -> Result<(), AuditError> {
        let r = &self.opts.retention;
        if r.max_age.is_none() && r.max_segments.is_none() {
            return Ok(());
        }
        let listing = segment::list(&self.dir).map_err(io_err(segment::segments_dir(&self.dir), "list"))?;
        let current = lock(&self.io).seg_first;
        let segs: Vec<(u64, PathBuf)> = listing.segments.into_iter().filter(|(f, _)| *f <= current).collect();
        if segs.len() < 2 {
            return Ok(());
        }
        let now = self.opts.clock.now_ms();
        let mut keep_from = 0usize;
        if let Some(max) = r.max_segments {
            keep_from = keep_from.max(segs.len().saturating_sub(max.max(1)));
        }
        if let Some(age) = r.max_age {
            let cutoff = now - age.as_millis() as i64;
            // A segment's newest record is no newer than the next segment's first record.
            for i in 0..segs.len() - 1 {
                let next_start = first_record_time(&segs[i + 1].1).unwrap_or(i64::MAX);
                if next_start < cutoff {
                    keep_from = keep_from.max(i + 1);
                }
            }
        }
        keep_from = keep_from.min(segs.len() - 1);
        if keep_from == 0 {
            drop(RetentionLocks(self));
            return Ok(());
        }
        // Wait for running verifies rather than delete what they have listed (see `segment::READERS_FILE`).
        let Some(_held) = self.retention_locks()? else { return Ok(()) };
        let removed_before = segs[keep_from].0;
        let event = Event::lifecycle(
            now,
            activity::OTHER,
            format!("retention: removing {keep_from} segment(s) holding records before seq {removed_before}"),
        )
        .set("unmapped.airlock.retention_removed_before", json!(removed_before));
        let (receipt, generation) = self.enqueue_inner(event, true)?;
        self.wait_durable(receipt.seq, generation)?;
        // Sign the retention record before deleting anything: verify honours only signed retention records (an
        // unsigned one could be forged), and this also anchors the new oldest segment's header.
        self.write_checkpoint()?;
        for (_, path) in &segs[..keep_from] {
            fs::remove_file(path).map_err(io_err(path, "remove expired segment"))?;
        }
        sync_dir(&segment::segments_dir(&self.dir)).map_err(io_err(segment::segments_dir(&self.dir), "fsync"))?;
        Ok(())
    }
}

/// Longest retention waits for running verifies before it deletes anyway: anyone who can read the directory can
/// take the readers lock, and must not be able to stop retention (verify copes with deletions by re-reading).
const RETENTION_MAX_DEFERRAL: Duration = Duration::from_secs(600);

impl Inner {
    /// Retention's side of `segment::READERS_FILE`: `Some` when it may delete now. It first shuts the gate, so
    /// verifies that start from now on wait for it; then it waits (one background round at a time, never
    /// blocking the writer) for the verifies already running to finish.
    fn retention_locks(&self) -> Result<Option<RetentionLocks<'_>>, AuditError> {
        let lock_err = |name: &str, e| AuditError::Io { path: self.dir.join(name), op: "lock", source: e };
        match self.readers_gate.try_lock() {
            Ok(()) => {}
            // A verify is between taking the gate and the readers lock: a moment. Next round.
            Err(fs::TryLockError::WouldBlock) => return Ok(None),
            Err(fs::TryLockError::Error(e)) => return Err(lock_err(segment::READERS_GATE_FILE, e)),
        }
        match self.readers.try_lock() {
            Ok(()) => Ok(Some(RetentionLocks(self))),
            Err(fs::TryLockError::WouldBlock) => {
                let since = *lock(&self.retention_waiting_since).get_or_insert_with(Instant::now);
                // Until then the gate stays shut, for the next round.
                Ok((since.elapsed() >= RETENTION_MAX_DEFERRAL).then_some(RetentionLocks(self)))
            }
            Err(fs::TryLockError::Error(e)) => {
                drop(RetentionLocks(self));
                Err(lock_err(segment::READERS_FILE, e))
            }
        }
    }
}

/// Retention's locks on `<dir>/readers` and its gate, released when it is done deleting.
struct RetentionLocks<'a>(&'a Inner);

impl Drop for RetentionLocks<'_> {
    fn drop(&mut self) {
        *lock(&self.0.retention_waiting_since) = None;
        let _ = self.0.readers.unlock();
        let _ = self.0.readers_gate.unlock();
    }
}

fn background(inner: &Inner) {
    let opts = &inner.opts;
    let mut last_retention = Instant::now() - Duration::from_secs(3600);
    loop {
        let mut st = lock(&inner.state);
        if st.closing {
            return;
        }
        let since_cp = st.checkpoint_at.elapsed();
        let new_records = st.written.next_seq > st.checkpoint_size;
        let mut wait = opts.heartbeat.saturating_sub(since_cp);
        if new_records {
            wait = wait.min(opts.checkpoint_interval.saturating_sub(since_cp));
        }
        if !st.pending.is_empty() {
            let due_in = st.pending_since.map_or(Duration::ZERO, |t| opts.flush_interval.saturating_sub(t.elapsed()));
            wait = wait.min(due_in);
        }
        wait = wait.min(Duration::from_secs(1)).max(Duration::from_millis(1));
        st.background_wakes_at = Some(Instant::now() + wait);
        st = inner.wake.wait_timeout(st, wait).unwrap_or_else(|p| p.into_inner()).0;
        st.background_wakes_at = None;
        if st.closing {
            return;
        }
        // Written once the oldest pending record has waited `flush_interval` (one `write` for the whole batch),
        // or at once when appenders are held back by the pending cap.
        let due = st.pending_since.is_none_or(|t| t.elapsed() >= opts.flush_interval)
            || st.pending.len() >= MAX_PENDING_BYTES;
        if !st.pending.is_empty() && !st.flushing && due {
            st = inner.flush_locked(st, false);
        }
        let since_cp = st.checkpoint_at.elapsed();
        let unsigned = st.written.next_seq - st.checkpoint_size.min(st.written.next_seq);
        let due = unsigned >= opts.checkpoint_every
            || (unsigned > 0 && since_cp >= opts.checkpoint_interval)
            || since_cp >= opts.heartbeat;
        // Buffered records become durable within a second, and always before a checkpoint signs them.
        let unsynced = st.written.next_seq > st.durable.next_seq;
        if unsynced && !st.flushing && (due || st.last_sync.elapsed() >= BUFFERED_SYNC_INTERVAL) {
            st = inner.flush_locked(st, true);
        }
        drop(st);
        if due {
            // A failure here is visible to `verify` (an old last checkpoint) and retried on the next round.
            let _ = inner.write_checkpoint();
        }
        if last_retention.elapsed() >= Duration::from_secs(1) {
            last_retention = Instant::now();
            let _ = inner.apply_retention();
        }
    }
}

/// What `recover` found: the tree at the end of the log and the open files.
struct Recovered {
    tip: Tip,
    io: Io,
    last_time: i64,
    checkpoint_size: u64,
    had_checkpoint: bool,
    /// A description of a torn tail that was cut off, to be recorded.
    torn: Option<String>,
}

fn recover(dir: &Path, signer: &NoteSigner, opts: &Options, now: i64) -> Result<Recovered, AuditError> {
    let verifier = signer.verifier();
    // The last checkpoint: what the log must at least contain.
    let cp_path = segment::checkpoints_path(dir);
    let (lines, mut cp_len) = segment::read_checkpoint_file(dir).map_err(io_err(&cp_path, "read"))?;
    let mut last_cp: Option<Checkpoint> = None;
    let mut cp_torn = None;
    let mut lines = &lines[..];
    if let Some(last) = lines.last()
        && !last.complete
    {
        cp_torn = Some(last.offset);
        lines = &lines[..lines.len() - 1];
    }
    // Only the newest checkpoint is opened (its signature checked): it is what the records must continue, and the
    // writer appends checkpoints in growing size. Checking every older one here made each open cost time in
    // proportion to the log's whole history (two checkpoints per `airlock run`); `airlock audit verify` checks them
    // all.
    if let Some(line) = lines.last() {
        let note = line.note.as_ref().map_err(|reason| AuditError::Corrupt {
            path: cp_path.clone(),
            reason: format!("offset {}: {reason}", line.offset),
        })?;
        let cp = Checkpoint::open(note, &verifier).map_err(|e| AuditError::Corrupt {
            path: cp_path.clone(),
            reason: format!("offset {}: {e}", line.offset),
        })?;
        last_cp = Some(cp);
    }
    let existed = cp_path.exists();
    let mut checkpoints = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(&cp_path)
        .map_err(io_err(&cp_path, "open"))?;
    if !existed {
        // A power cut must not lose the file's name: without it the log would refuse to open.
        sync_dir(dir).map_err(io_err(dir, "fsync"))?;
    }
    if let Some(offset) = cp_torn {
        checkpoints.set_len(offset).and_then(|()| checkpoints.sync_data()).map_err(io_err(&cp_path, "truncate"))?;
        cp_len = offset;
    }
    let _ = checkpoints.flush();

    let listing = segment::list(dir).map_err(io_err(segment::segments_dir(dir), "list"))?;
    let Some((first, path)) = listing.segments.last().cloned() else {
        if let Some(cp) = &last_cp
            && cp.size > 0
        {
            return Err(AuditError::Truncated { records: 0, checkpoint_size: cp.size });
        }
        let genesis = Tip { next_seq: 0, frontier: Frontier::new(), prev: GENESIS_PREV };
        let (file, len) = create_segment(dir, &genesis, verifier.name())
            .map_err(io_err(segment::segment_path(dir, 0), "create segment"))?;
        return Ok(Recovered {
            tip: genesis,
            io: Io {
                file,
                seg_path: segment::segment_path(dir, 0),
                seg_first: 0,
                seg_len: len,
                synced_len: len,
                seg_created_ms: now,
                dirty: false,
                synced_to_batch_start: false,
                checkpoints,
                checkpoints_len: cp_len,
            },
            last_time: last_cp.as_ref().map_or(now, |c| c.time_ms),
            checkpoint_size: 0,
            had_checkpoint: last_cp.is_some(),
            torn: None,
        });
    };

    let data = segment::read_capped(&path, segment::MAX_SEGMENT_BYTES).map_err(io_err(&path, "read"))?;
    let corrupt = |reason: String| AuditError::Corrupt { path: path.clone(), reason };
    let (header, body, body_at) = segment::split_header(&data).ok_or_else(|| corrupt("no segment header".into()))?;
    let header = SegmentHeader::parse(header).map_err(corrupt)?;
    if header.first_seq != first {
        return Err(corrupt(format!("header says first seq {}, file name says {first}", header.first_seq)));
    }
    let mut tip = Tip { next_seq: header.first_seq, frontier: header.frontier.clone(), prev: header.prev };
    let mut last_time = i64::MIN;
    let mut first_logged = None;
    let mut valid_len = body_at;
    let mut torn = None;
    let check_cp = |tip: &Tip| -> Result<(), AuditError> {
        match &last_cp {
            Some(cp) if cp.size == tip.next_seq && cp.root != tip.frontier.root() => Err(AuditError::Corrupt {
                path: path.clone(),
                reason: format!("records do not match checkpoint {} (run `airlock audit verify`)", cp.size),
            }),
            _ => Ok(()),
        }
    };
    check_cp(&tip)?;
    for line in segment::lines(body, body_at) {
        if !line.complete {
            torn = Some((line.offset, line.bytes.len() as u64));
            break;
        }
        let rec = RecordLine::parse(line.bytes)
            .map_err(|e| corrupt(format!("record at offset {} (seq {}): {e}", line.offset, tip.next_seq)))?;
        if rec.seq != tip.next_seq || rec.prev != tip.prev {
            return Err(corrupt(format!(
                "record at offset {} does not follow seq {}: run `airlock audit verify`",
                line.offset,
                tip.next_seq.wrapping_sub(1)
            )));
        }
        tip.frontier.push(rec.leaf);
        tip.prev = rec.leaf;
        tip.next_seq += 1;
        last_time = last_time.max(rec.logged_ms);
        first_logged.get_or_insert(rec.logged_ms);
        valid_len = line.offset + line.bytes.len() as u64 + 1;
        check_cp(&tip)?;
    }
    if let Some(cp) = &last_cp
        && cp.size > tip.next_seq
    {
        return Err(AuditError::Truncated { records: tip.next_seq, checkpoint_size: cp.size });
    }
    if last_cp.is_none() && tip.next_seq > 0 {
        return Err(AuditError::Corrupt {
            path: cp_path,
            reason: "the log holds records but no checkpoint: the checkpoint file was removed or emptied (run \
                     `airlock audit verify`)"
                .into(),
        });
    }
    let mut file = OpenOptions::new().append(true).open(&path).map_err(io_err(&path, "open"))?;
    let mut torn_note = None;
    if let Some((offset, bytes)) = torn {
        if !opts.repair_torn_tail {
            return Err(AuditError::TornTail { path, offset, bytes });
        }
        file.set_len(valid_len).and_then(|()| file.sync_data()).map_err(io_err(&path, "truncate torn tail"))?;
        torn_note = Some(format!(
            "repair: removed an incomplete record ({bytes} bytes at offset {offset} of {}) left by a crash; it was \
             never acknowledged",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("?")
        ));
    }
    let _ = file.flush();
    Ok(Recovered {
        io: Io {
            file,
            seg_path: path,
            seg_first: first,
            seg_len: valid_len,
            synced_len: valid_len,
            // The segment's age counts from its first record (or from now, for an empty one).
            seg_created_ms: first_logged.unwrap_or(now),
            dirty: false,
            synced_to_batch_start: false,
            checkpoints,
            checkpoints_len: cp_len,
        },
        last_time: last_time.max(last_cp.as_ref().map_or(now, |c| c.time_ms)),
        checkpoint_size: last_cp.as_ref().map_or(0, |c| c.size),
        had_checkpoint: last_cp.is_some(),
        tip,
        torn: torn_note,
    })
}

/// Creates the segment that starts after `tip`: header written to a temporary file, synced, then renamed into
/// place, so a segment file never exists without its header.
fn create_segment(dir: &Path, tip: &Tip, origin: &str) -> io::Result<(File, u64)> {
    let header = SegmentHeader {
        first_seq: tip.next_seq,
        prev: tip.prev,
        frontier: tip.frontier.clone(),
        origin: origin.to_owned(),
    };
    let mut line = header.encode();
    line.push(b'\n');
    let path = segment::segment_path(dir, tip.next_seq);
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&tmp)?;
        f.write_all(&line)?;
        f.sync_all()?;
    }
    if path.exists() {
        // Left by an attempt that failed after its rename (at the directory sync): ours if it is exactly this
        // header and nothing else; anything else is not ours to replace.
        if fs::metadata(&path)?.len() != line.len() as u64 || fs::read(&path)? != line {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} already exists", path.display())));
        }
        fs::remove_file(&tmp)?;
    } else {
        fs::rename(&tmp, &path)?;
    }
    sync_dir(&segment::segments_dir(dir))?;
    let file = OpenOptions::new().append(true).open(&path)?;
    Ok((file, line.len() as u64))
}

/// The time of a segment's first record, if it has one.
fn first_record_time(path: &Path) -> Option<i64> {
    use std::io::BufRead;
    // Bounded: a header and a record are far smaller than this; a hostile file cannot make us read more.
    let mut r = io::BufReader::new(File::open(path).ok()?.take(4 << 20));
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).ok()?; // the header
    line.clear();
    r.read_until(b'\n', &mut line).ok()?;
    if line.pop() != Some(b'\n') {
        return None;
    }
    RecordLine::parse(&line).ok().map(|rec| rec.logged_ms)
}

fn cut_back(io: &mut Io) -> io::Result<()> {
    io.file.set_len(io.synced_len)?;
    io.file.sync_data()?;
    io.seg_len = io.synced_len;
    io.dirty = false;
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_temp_files(seg_dir: &Path) -> Result<(), AuditError> {
    for entry in fs::read_dir(seg_dir).map_err(io_err(seg_dir, "list"))? {
        let entry = entry.map_err(io_err(seg_dir, "list"))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.ends_with(".tmp")) {
            let p = entry.path();
            fs::remove_file(&p).map_err(io_err(&p, "remove temporary file"))?;
        }
    }
    Ok(())
}
