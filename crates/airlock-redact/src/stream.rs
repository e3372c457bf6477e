//! Streaming redaction: output arrives in chunks of any size, and a secret split across two chunks must still be
//! masked, with nothing of it shown before it is recognised.
//!
//! # How
//! The stream keeps a carry-over window of the last [`Scanner::hold`] bytes (the longest span any finding can
//! have). Each chunk is appended to the carry and the whole buffer is scanned. A finding that starts more than `hold`
//! bytes before the buffer's end is complete (it cannot extend past the end), so it is masked and emitted along with
//! everything before it; the rest is kept for the next round, where any finding starting there is found again, whole.
//! The cut is moved back (by at most `hold`) so that it falls inside no regex candidate, accepted or rejected: each
//! rule's search then resumes exactly where a whole-buffer search would have, and a split stream finds what the whole
//! buffer does (tested at every split point of every rule example, and fuzzed; docs/redaction.md names the one
//! theoretical exception). Small chunks are gathered and scanned together once [`SCAN_BATCH`] windows' worth is
//! held, so memory is bounded by `SCAN_BATCH` windows plus one chunk, and every byte is emitted at most that late;
//! `finish` flushes the carry (callers do so when their source goes quiet). A large chunk is not copied behind the
//! carry: only its first two windows' worth join it, and the rest is scanned where it lies, as if it had come as a
//! second chunk (copying a 1 MiB chunk cost 5% of its scan).
//!
//! A cut can fall inside a word, and `\b` and `(?m:^)` look at the byte before where a search starts: the stream
//! keeps the byte before its cut as look-behind for the next scan, so a token glued to a word is no more a match
//! after a cut than in the whole buffer (a fuzzer found this).
//!
//! Bytes held back are tool output that may contain a secret: the carry lives in one allocation that is wiped,
//! spare capacity included, when it grows (the old one) or the stream is dropped, so no copy is left in freed
//! memory.

use std::sync::{Arc, RwLock};

use zeroize::Zeroizing;

use crate::known::LeakScanner;
use crate::mask::MaskStyle;
use crate::scan::{Finding, LineCounter, Scanner};

/// A stream scans once this many carry-over windows of bytes are held: re-reading the window then costs at most
/// 1/`SCAN_BATCH` of the work (under 2% with the built-in rules' 16 KiB window, scanned every MiB).
pub const SCAN_BATCH: usize = 64;

/// A cheap, cloneable handle to the current scanner and masking style: what the sandbox's output path, the
/// broker and the CLI hold. When the vault changes, [`Redactor::set_known`] swaps in the new values for every
/// stream started afterwards.
#[derive(Clone)]
pub struct Redactor {
    scanner: Arc<RwLock<Arc<Scanner>>>,
    style: MaskStyle,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").field("style", &self.style).finish_non_exhaustive()
    }
}

impl Redactor {
    pub fn new(scanner: Scanner, style: MaskStyle) -> Redactor {
        Redactor { scanner: Arc::new(RwLock::new(Arc::new(scanner))), style }
    }

    /// The scanner in use now.
    pub fn scanner(&self) -> Arc<Scanner> {
        self.scanner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn style(&self) -> MaskStyle {
        self.style
    }

    /// Replaces the known values (rebuilt from the vault); streams already started keep the values they began with.
    pub fn set_known(&self, known: Option<Arc<LeakScanner>>) {
        let next = Arc::new(self.scanner().with_known(known));
        *self.scanner.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// Masks a complete buffer.
    pub fn redact(&self, data: &[u8]) -> (Vec<u8>, Vec<Finding>) {
        self.scanner().redact(data, &self.style)
    }

    /// Starts a stream.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor::new(self.scanner(), self.style)
    }
}

/// Redacts one stream, chunk by chunk. See the module documentation.
pub struct StreamRedactor {
    scanner: Arc<Scanner>,
    style: MaskStyle,
    carry: Zeroizing<Vec<u8>>,
    /// `carry[..context]` (the byte before the last cut, once there was one) is only look-behind for the next scan.
    context: usize,
    /// Stream offset of `carry[context]`.
    base: u64,
    /// Line and column (1-based) of `carry[0]`.
    line: u64,
    column: u64,
    /// Scan only: report findings, produce no output (`scan-secrets`).
    scan_only: bool,
    /// Scan once this many windows are held (see [`SCAN_BATCH`]).
    batch: usize,
}

impl std::fmt::Debug for StreamRedactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRedactor").field("base", &self.base).field("held", &self.carry.len()).finish()
    }
}

impl StreamRedactor {
    pub fn new(scanner: Arc<Scanner>, style: MaskStyle) -> StreamRedactor {
        StreamRedactor {
            scanner,
            style,
            carry: Zeroizing::new(Vec::new()),
            context: 0,
            base: 0,
            line: 1,
            column: 1,
            scan_only: false,
            batch: SCAN_BATCH,
        }
    }

    /// Scans once `windows` carry-over windows are held instead of [`SCAN_BATCH`]: 1 releases output soonest,
    /// for a caller that cannot call [`StreamRedactor::finish`] when its source goes quiet (an HTTP body).
    pub fn with_batch(mut self, windows: usize) -> StreamRedactor {
        self.batch = windows.max(1);
        self
    }

    /// A stream that only reports findings: `out` is left untouched.
    pub fn scan_only(scanner: Arc<Scanner>) -> StreamRedactor {
        StreamRedactor { scan_only: true, ..StreamRedactor::new(scanner, MaskStyle::Label) }
    }

    /// Feeds a chunk; appends what may be shown now to `out` and returns the findings completed by it.
    ///
    /// Small chunks are gathered until [`SCAN_BATCH`] times the carry-over window has built up: each scan re-reads
    /// the window, so scanning every 4 KiB write would read most bytes many times. A caller that must show output
    /// promptly (a prompt without a newline) calls [`StreamRedactor::finish`] when its source goes quiet.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Vec<Finding> {
        let hold = self.scanner.hold();
        let junction = 2 * hold;
        let threshold = self.batch * hold.max(1);
        if self.held() + chunk.len() < threshold || chunk.len() <= junction {
            self.append(chunk);
            if self.held() < threshold {
                return Vec::new();
            }
            return self.emit(false, out);
        }
        // A large chunk is scanned where it lies rather than copied behind the carry. Only its first `2 * hold`
        // bytes join the carry; that junction's cut falls at or after the carry's end (no more than `hold` before
        // its fence), so scanning resumes in the chunk itself from there, exactly as if the chunk had come in two
        // pieces (which a stream must handle anyway). Copied: at most `2 * hold` bytes in, `2 * hold` kept.
        let mut findings = Vec::new();
        let carried = self.carry.len();
        self.append(&chunk[..junction]);
        let joined = std::mem::take(&mut self.carry);
        let cut = self.scan_emit(&joined, self.context, false, out, &mut findings);
        debug_assert!(cut >= carried && cut - carried <= junction, "the junction's cut lies in the chunk");
        let resume = cut - carried;
        self.carry = joined;
        if resume == 0 {
            // The look-behind byte is the carry's last: join the rest of the chunk too (a cut exactly at the
            // junction's start is rare).
            self.keep_from(cut);
            self.append(&chunk[junction..]);
            findings.extend(self.emit(false, out));
            return findings;
        }
        // `rest[0]` is the byte before the cut: look-behind for the scan that resumes there.
        let rest = &chunk[resume - 1..];
        let cut = self.scan_emit(rest, 1, false, out, &mut findings);
        self.carry.clear();
        self.append(&rest[cut - 1..]);
        self.context = 1;
        findings
    }

    /// Ends the stream: appends everything held back (masked) to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Vec<Finding> {
        self.emit(true, out)
    }

    /// Bytes consumed and emitted so far (the stream offset of the first byte held back).
    pub fn emitted(&self) -> u64 {
        self.base
    }

    /// Bytes held back now.
    pub fn held(&self) -> usize {
        self.carry.len() - self.context
    }

    /// Appends without ever leaving a copy of held bytes in freed memory: a larger buffer is allocated, filled
    /// and swapped in, and the old one is wiped on drop.
    fn append(&mut self, chunk: &[u8]) {
        let need = self.carry.len() + chunk.len();
        if need > self.carry.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(need.max(2 * self.carry.capacity())));
            bigger.extend_from_slice(&self.carry);
            self.carry = bigger;
        }
        self.carry.extend_from_slice(chunk);
    }

    /// Scans `buf[from..]` (`buf[from]` is at stream offset `self.base`; the byte before it is look-behind);
    /// emits, masked, everything before the place where it may be cut, and returns that place (`buf.len()` if
    /// `last`). What follows must be scanned again.
    fn scan_emit(
        &mut self,
        buf: &[u8],
        from: usize,
        last: bool,
        out: &mut Vec<u8>,
        findings: &mut Vec<Finding>,
    ) -> usize {
        let hold = self.scanner.hold();
        if !last && buf.len() - from <= hold {
            return from;
        }
        let fence = (!last).then(|| buf.len() - hold);
        let (hits, place) = self.scanner.hits_fenced(buf, from, fence);
        let safe = place.unwrap_or(buf.len()).max(from);
        let mut lines = LineCounter::starting_at(from, self.line, self.column);
        let buf_base = self.base - from as u64;
        let mut at = from;
        // A hit starting before `safe` is complete; hits are sorted and do not overlap.
        for h in hits.iter().take_while(|h| h.start < safe) {
            if !self.scan_only {
                out.extend_from_slice(&buf[at..h.start]);
                self.style.mask(self.scanner.hit_rule_id(h), self.scanner.keep_prefix(h), &buf[h.start..h.end], out);
            }
            findings.push(self.scanner.finding(buf, h, buf_base, &mut lines));
            at = h.end;
        }
        let cut = safe.max(at);
        if !self.scan_only {
            out.extend_from_slice(&buf[at..cut]);
        }
        (self.line, self.column) = lines.position(buf, cut);
        self.base += (cut - from) as u64;
        cut
    }

    /// Scans and emits the carry; keeps what follows the cut.
    fn emit(&mut self, last: bool, out: &mut Vec<u8>) -> Vec<Finding> {
        let mut findings = Vec::new();
        let carry = std::mem::take(&mut self.carry);
        let cut = self.scan_emit(&carry, self.context, last, out, &mut findings);
        self.carry = carry;
        self.keep_from(cut);
        findings
    }

    /// Drops the carry before `cut`, keeping the byte before it (if any) as look-behind.
    fn keep_from(&mut self, cut: usize) {
        let start = cut.saturating_sub(1);
        // Shift the tail down in place. What it leaves behind stays in this allocation's spare capacity until the
        // next chunk overwrites it or the stream drops (wiping the whole capacity): wiping it here, a byte at a
        // time, cost a sixth of the scan.
        let len = self.carry.len();
        self.carry.copy_within(start..len, 0);
        self.carry.truncate(len - start);
        self.context = cut - start;
    }
}
