//! A request body that is scanned for leaks as it streams, and never lets a byte of a found value out.
//!
//! Why hold back: scanning a chunk and then forwarding it would send the first part of a secret that ends in the
//! next chunk before anyone could know. So the body keeps the last `max_pattern_len - 1` bytes back: a value that
//! is found later ends after them, so every byte of it is still here when it is found. On a finding the body
//! fails (the upstream request is aborted, the held bytes are wiped) and the finding is left in a slot the proxy
//! reads to answer 403. Bodies of any size stream with a constant, small buffer.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use zeroize::Zeroize;

use crate::leak::{Finding, OwnedStreamScan, Source};
use crate::upstream::{Body, BoxError};

/// Where a finding is left for the proxy.
pub type FindingSlot = Arc<Mutex<Option<Finding>>>;

/// Which sources stop the body (the others are passed over).
pub type Report = Arc<dyn Fn(&Source) -> bool + Send + Sync>;

/// Called once with the finding that stopped the body (for bodies nobody waits on, such as responses).
pub type OnFinding = Arc<dyn Fn(Finding) + Send + Sync>;

pub struct ScannedBody {
    inner: Body,
    scan: OwnedStreamScan,
    /// Bytes not yet forwarded: at most `hold` of them between frames.
    held: Vec<u8>,
    hold: usize,
    found: FindingSlot,
    inner_done: bool,
    /// Trailers that arrived while bytes were held: sent after them.
    trailers: Option<Frame<Bytes>>,
    report: Report,
    on_finding: Option<OnFinding>,
}

impl ScannedBody {
    pub fn new(inner: Body, scan: OwnedStreamScan, found: FindingSlot) -> ScannedBody {
        let hold = scan.max_pattern_len().saturating_sub(1);
        ScannedBody {
            inner,
            scan,
            held: Vec::with_capacity(hold * 2),
            hold,
            found,
            inner_done: false,
            trailers: None,
            report: Arc::new(|_| true),
            on_finding: None,
        }
    }

    /// Stops only for the sources `report` accepts.
    pub fn reporting(mut self, report: Report) -> ScannedBody {
        self.report = report;
        self
    }

    /// Also calls `f` with the finding that stops the body.
    pub fn on_finding(mut self, f: OnFinding) -> ScannedBody {
        self.on_finding = Some(f);
        self
    }

    /// Records a finding and wipes what is held.
    fn stop(&mut self, f: Finding) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(cb) = self.on_finding.take() {
            cb(f.clone());
        }
        *crate::lock(&self.found) = Some(f);
        self.held.zeroize();
        self.held.clear();
        Poll::Ready(Some(Err(Box::new(LeakStopped))))
    }

    /// Everything but the last `hold` bytes, as one frame.
    fn release(&mut self, keep: usize) -> Option<Bytes> {
        if self.held.len() <= keep {
            return None;
        }
        let n = self.held.len() - keep;
        let out = Bytes::copy_from_slice(&self.held[..n]);
        self.held.copy_within(n.., 0);
        let left = self.held.len() - n;
        self.held[left..].zeroize();
        self.held.truncate(left);
        Some(out)
    }
}

impl Drop for ScannedBody {
    fn drop(&mut self) {
        self.held.zeroize();
    }
}

/// The error a body fails with when it carried a known value; the value itself is never in it.
#[derive(Debug, thiserror::Error)]
#[error("the body carries a protected value; it was stopped")]
pub struct LeakStopped;

impl HttpBody for ScannedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if let Some(t) = this.trailers.take() {
                return Poll::Ready(Some(Ok(t)));
            }
            if this.inner_done {
                return Poll::Ready(this.release(0).map(|b| Ok(Frame::data(b))));
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.inner_done = true,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        // Trailers: let them through only after the held bytes.
                        Err(frame) => {
                            if let Some(t) = frame.trailers_ref() {
                                let report = Arc::clone(&this.report);
                                for (name, value) in t {
                                    let found = this
                                        .scan
                                        .feed_where(name.as_str().as_bytes(), |s| report(s))
                                        .or(this.scan.feed_where(value.as_bytes(), |s| report(s)));
                                    if let Some(f) = found {
                                        return this.stop(f);
                                    }
                                }
                            }
                            if let Some(b) = this.release(0) {
                                // The held bytes go first, the trailers on the next poll.
                                this.trailers = Some(frame);
                                return Poll::Ready(Some(Ok(Frame::data(b))));
                            }
                            return Poll::Ready(Some(Ok(frame)));
                        }
                    };
                    let report = Arc::clone(&this.report);
                    if let Some(f) = this.scan.feed_where(&data, |s| report(s)) {
                        return this.stop(f);
                    }
                    this.held.extend_from_slice(&data);
                    if let Some(b) = this.release(this.hold) {
                        return Poll::Ready(Some(Ok(Frame::data(b))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner_done && self.held.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        // Holding back changes when bytes go, never how many.
        if self.inner_done {
            SizeHint::with_exact(self.held.len() as u64)
        } else {
            let inner = self.inner.size_hint();
            let mut h = SizeHint::new();
            h.set_lower(inner.lower() + self.held.len() as u64);
            if let Some(u) = inner.upper() {
                h.set_upper(u + self.held.len() as u64);
            }
            h
        }
    }
}
