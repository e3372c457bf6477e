//! The tool's stdout and stderr on their way to the caller, through a filter and under a byte limit.
//!
//! Why a hook: whatever a tool prints goes back to an agent, and a tool that found a secret (or was told to print
//! one) must not be able to hand it over. The redaction engine plugs in here as an [`OutputFilter`]; until it is
//! configured, [`PassThrough`] copies bytes unchanged. The limit bounds what an output flood costs: past it the
//! supervisor stops the run.

/// Which of the tool's streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Transforms a stream of output chunks. A filter may hold back a tail (a value split across two reads must still
/// be caught) and release it on the next chunk or at [`OutputFilter::finish`].
pub trait OutputFilter: Send {
    /// Appends what may be shown for `chunk` to `out`.
    fn filter(&mut self, stream: Stream, chunk: &[u8], out: &mut Vec<u8>);
    /// The stream ended: appends whatever was held back.
    fn finish(&mut self, stream: Stream, out: &mut Vec<u8>);
    /// Bytes held back now, waiting for more output to decide on them.
    fn held(&self) -> usize {
        0
    }
    /// The tool has gone quiet with bytes held back (a prompt without a newline, a progress line): decide on them
    /// now and append what may be shown. The stream goes on afterwards.
    fn flush(&mut self, stream: Stream, out: &mut Vec<u8>) {
        self.finish(stream, out);
    }
}

/// The no-op filter: output passes unchanged.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough;

impl OutputFilter for PassThrough {
    fn filter(&mut self, _: Stream, chunk: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(chunk);
    }
    fn finish(&mut self, _: Stream, _: &mut Vec<u8>) {}
}

/// Counts output against a limit shared by both streams.
#[derive(Debug)]
pub struct OutputBudget {
    limit: u64,
    used: std::sync::atomic::AtomicU64,
}

impl OutputBudget {
    pub fn new(limit: u64) -> OutputBudget {
        OutputBudget { limit, used: std::sync::atomic::AtomicU64::new(0) }
    }

    /// Takes up to `n` bytes from the budget; returns how many may be shown (less than `n` once it runs out).
    pub fn take(&self, n: usize) -> usize {
        use std::sync::atomic::Ordering;
        let before = self.used.fetch_add(n as u64, Ordering::SeqCst);
        self.limit.saturating_sub(before).min(n as u64) as usize
    }

    pub fn exceeded(&self) -> bool {
        self.used.load(std::sync::atomic::Ordering::SeqCst) > self.limit
    }

    /// Bytes the tool wrote, counted up to the point the run was stopped.
    pub fn used(&self) -> u64 {
        self.used.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_shows_exactly_the_limit_and_then_nothing() {
        let b = OutputBudget::new(10);
        assert_eq!(b.take(6), 6);
        assert!(!b.exceeded());
        assert_eq!(b.take(6), 4);
        assert!(b.exceeded());
        assert_eq!(b.take(1), 0);
        assert_eq!(b.used(), 13);
    }

    #[test]
    fn pass_through_copies_bytes_unchanged() {
        let mut out = Vec::new();
        PassThrough.filter(Stream::Stdout, b"a\xffb", &mut out);
        PassThrough.finish(Stream::Stdout, &mut out);
        assert_eq!(out, b"a\xffb");
    }
}
