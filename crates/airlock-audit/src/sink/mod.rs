//! Export sinks: copies of the log for a SIEM, delivered after the local durable write.
//!
//! Why a queue per sink: a slow or dead SIEM must never stall or fail the local log, which is what makes a
//! decision recordable. Each sink has its own bounded queue and thread; the writer only ever `offer`s to it and
//! never waits. A sink that cannot keep up drops the oldest work it has not sent, counts what it dropped, and
//! reports itself unhealthy until it delivers again. The local log still holds everything, so `airlock audit
//! export` can replay any gap.
//!
//! A sink marked fail-closed turns "unhealthy" into "the log refuses new records" (see
//! [`crate::AuditLog::append`]), for deployments where a record that has not left the box does not count.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lock;

/// One record as sinks see it: the OCSF event, with `metadata.sequence` and `metadata.logged_time` filled in
/// from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRecord {
    pub seq: u64,
    /// When the log accepted the record, in milliseconds since the Unix epoch.
    pub logged_ms: i64,
    pub event: serde_json::Value,
}

/// What a sink is given to deliver, in log order.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportItem {
    Record(ExportRecord),
    /// A signed checkpoint in C2SP note form, for sinks that want them (see [`Sink::wants_checkpoints`]).
    Checkpoint {
        size: u64,
        note: String,
    },
}

/// Why a delivery failed. The message is shown to operators: it must never hold a credential (a webhook token,
/// a URL's query string).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// A destination. Implementations do blocking I/O on their own worker thread.
pub trait Sink: Send + 'static {
    /// A short label for reports, without credentials: `syslog tcp+tls://127.0.0.1:6514 (cef)`.
    fn describe(&self) -> String;
    /// Delivers `items` in order. On `Err` the worker waits and calls again with the same items, so a sink may
    /// see an item twice (at-least-once delivery); the receiver can deduplicate on `metadata.sequence`.
    fn deliver(&mut self, items: &[Arc<ExportItem>]) -> Result<(), SinkError>;
    /// Whether checkpoints are sent too (records always are).
    fn wants_checkpoints(&self) -> bool {
        false
    }
}

/// Counters and state of one sink, shared with whoever reports on it.
#[derive(Debug, Default)]
pub struct SinkHealth {
    delivered: AtomicU64,
    dropped: AtomicU64,
    failures: AtomicU64,
    unhealthy: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// A snapshot of [`SinkHealth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStatus {
    pub sink: String,
    pub healthy: bool,
    pub fail_closed: bool,
    pub delivered: u64,
    pub dropped: u64,
    pub failures: u64,
    pub queued: usize,
    pub last_error: Option<String>,
}

/// Queue limits and retry timing for one sink.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// Items held while the sink is slow or down; beyond this the oldest are dropped (and counted).
    pub queue_capacity: usize,
    /// Most items handed to one `deliver` call.
    pub batch_max: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// While unhealthy, refuse new records (see the module docs).
    pub fail_closed: bool,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            queue_capacity: 65_536,
            batch_max: 256,
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(30),
            fail_closed: false,
        }
    }
}

struct Queue {
    items: VecDeque<Arc<ExportItem>>,
    closing: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    health: SinkHealth,
    describe: String,
    options: SinkOptions,
    wants_checkpoints: bool,
}

/// A running sink: its queue, its worker thread and its health.
pub struct SinkWorker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl SinkWorker {
    pub fn start(sink: Box<dyn Sink>, options: SinkOptions) -> SinkWorker {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue { items: VecDeque::new(), closing: false }),
            wake: Condvar::new(),
            health: SinkHealth::default(),
            describe: sink.describe(),
            wants_checkpoints: sink.wants_checkpoints(),
            options,
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("airlock-audit-sink".into())
            .spawn(move || run(sink, &worker))
            .expect("spawn audit sink thread");
        SinkWorker { shared, thread: Some(thread) }
    }

    /// Queues items without waiting. When the queue is full the oldest queued items are dropped and counted.
    pub fn offer(&self, items: &[Arc<ExportItem>]) {
        let mut q = lock(&self.shared.queue);
        let mut dropped = 0u64;
        for item in items {
            if matches!(**item, ExportItem::Checkpoint { .. }) && !self.shared.wants_checkpoints {
                continue;
            }
            if q.items.len() >= self.shared.options.queue_capacity {
                q.items.pop_front();
                dropped += 1;
            }
            q.items.push_back(Arc::clone(item));
        }
        drop(q);
        if dropped > 0 {
            self.shared.health.dropped.fetch_add(dropped, Ordering::Relaxed);
            self.shared.health.unhealthy.store(true, Ordering::Release);
            set_error(&self.shared.health, format!("queue full: dropped {dropped} oldest item(s)"));
        }
        self.shared.wake.notify_one();
    }

    /// True while this sink is fail-closed and not delivering.
    pub fn blocks_appends(&self) -> bool {
        self.shared.options.fail_closed && self.shared.health.unhealthy.load(Ordering::Acquire)
    }

    pub fn describe(&self) -> &str {
        &self.shared.describe
    }

    pub fn status(&self) -> SinkStatus {
        let h = &self.shared.health;
        SinkStatus {
            sink: self.shared.describe.clone(),
            healthy: !h.unhealthy.load(Ordering::Acquire),
            fail_closed: self.shared.options.fail_closed,
            delivered: h.delivered.load(Ordering::Relaxed),
            dropped: h.dropped.load(Ordering::Relaxed),
            failures: h.failures.load(Ordering::Relaxed),
            queued: lock(&self.shared.queue).items.len(),
            last_error: lock(&h.last_error).clone(),
        }
    }

    /// Stops the worker after it has tried to deliver what is queued, waiting at most `grace`.
    pub fn shutdown(mut self, grace: Duration) -> SinkStatus {
        self.stop(grace);
        self.status()
    }

    fn stop(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        {
            let mut q = lock(&self.shared.queue);
            q.closing = true;
        }
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            // The worker notices `closing` between attempts; a sink stuck in a blocking call is abandoned.
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for SinkWorker {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(2));
    }
}

fn set_error(h: &SinkHealth, message: String) {
    *lock(&h.last_error) = Some(message);
}

fn run(mut sink: Box<dyn Sink>, shared: &Shared) {
    let opts = &shared.options;
    let mut backoff = opts.retry_initial;
    loop {
        // Take a batch (without removing it: on failure the same items are retried, unless dropped meanwhile).
        let batch: Vec<Arc<ExportItem>> = {
            let mut q = lock(&shared.queue);
            while q.items.is_empty() && !q.closing {
                q = shared.wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            if q.items.is_empty() {
                return;
            }
            q.items.iter().take(opts.batch_max).cloned().collect()
        };
        match sink.deliver(&batch) {
            Ok(()) => {
                let mut q = lock(&shared.queue);
                // Remove what was delivered; items dropped for overflow while we were sending are already gone.
                for item in &batch {
                    if q.items.front().is_some_and(|f| Arc::ptr_eq(f, item)) {
                        q.items.pop_front();
                    }
                }
                drop(q);
                shared.health.delivered.fetch_add(batch.len() as u64, Ordering::Relaxed);
                shared.health.unhealthy.store(false, Ordering::Release);
                backoff = opts.retry_initial;
            }
            Err(e) => {
                shared.health.failures.fetch_add(1, Ordering::Relaxed);
                shared.health.unhealthy.store(true, Ordering::Release);
                set_error(&shared.health, e.0);
                // Wait out the whole backoff: new records arriving (which notify) must not turn it into a tight
                // retry loop against a dead peer. Only shutdown cuts it short.
                let deadline = Instant::now() + backoff;
                let mut q = lock(&shared.queue);
                loop {
                    if q.closing {
                        return;
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    q = shared.wake.wait_timeout(q, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
                }
                backoff = (backoff * 2).min(opts.retry_max);
            }
        }
    }
}

pub mod cef;
pub mod file;
pub mod syslog;
pub mod webhook;
