//! Known values: every vault secret, surrogate and canary, in the encodings tools actually use.
//!
//! The same automaton serves two callers. The broker blocks a request that carries one ([`LeakScanner::scan`],
//! [`LeakScanner::stream`]); the redaction engine masks one in output ([`LeakScanner::find_all`]).
//!
//! # Why this exists
//! A tool only ever holds surrogates, so a real secret value or a canary showing up in its outgoing traffic means
//! something went wrong upstream (a value reached the sandbox, or a prompt-injected model is replaying a canary it
//! was shown). The broker therefore scans every request **exactly as the tool sent it, before credential
//! injection** (after injection the real value is *supposed* to be there), and blocks it on any finding. The URL
//! and each header value are scanned with [`LeakScanner::scan`]; bodies arrive in chunks of any size and go
//! through [`LeakScanner::stream`], which finds a value split across any number of chunks.
//!
//! # What is matched
//! Each value (at least [`MIN_SECRET_LEN`] bytes; shorter ones are listed in [`LeakScanner::skipped`] so the
//! caller can report them) is expanded into patterns for the value *as a whole* in these forms:
//! - raw bytes;
//! - lowercase and uppercase hex;
//! - standard and URL-safe base64, padded or not, also when the value sits at any offset inside a larger blob
//!   that was encoded as a whole: for each of the three alignments we keep only the output characters that depend
//!   on the value alone (never on the unknown neighbours), so one fragment per alignment matches wherever it is;
//! - percent-encoding of every byte (`%XX` and `%xx`), and the "minimal" forms that real encoders produce:
//!   `encodeURIComponent`, RFC 3986 unreserved (Python `quote(safe='')`), Python `quote()` (keeps `/`), all
//!   non-alphanumerics (Rust `NON_ALPHANUMERIC`), and `application/x-www-form-urlencoded` with `+` for space
//!   (WHATWG/`URLSearchParams`/Java `URLEncoder`, and Python `quote_plus`/Go `QueryEscape`), each in both hex
//!   cases;
//! - JSON string escaping as `JSON.stringify`/serde_json, Python `json.dumps` (`ensure_ascii`, surrogate pairs),
//!   PHP `json_encode` (`\/`), Go `encoding/json` (HTML-safe `\u003c`), Gson, Jackson with non-ASCII escaping and
//!   .NET `System.Text.Json` would write it.
//!
//! All patterns of all values go into one Aho-Corasick automaton, so a request is scanned in one pass however
//! many values are registered. Matching is case-sensitive; the two hex cases are separate patterns.
//!
//! # What it cannot catch (accepted limits; the other layers exist because of them)
//! - Encrypted, compressed (gzip bodies, zip uploads), hashed or otherwise transformed values, and any encoding
//!   not listed above (base32, base58, quoted-printable, HTML entities, UTF-16 text, nested or mixed encodings
//!   such as base64 of hex, percent-encoding with mixed-case hex digits, a hex string with separators, base64
//!   wrapped into lines (MIME, PEM) where a line break falls inside the value, a value with characters
//!   interleaved or reversed).
//! - A value split across several requests, or sent one character per request, or only in part.
//! - Values shorter than [`MIN_SECRET_LEN`]: matching them would block too much honest traffic.
//! - Content-encoding is not undone here: the caller decides whether to decode a body before scanning.
//!
//! Secret hygiene: values and patterns held by the builder are zeroized on drop; the stream keeps no request
//! bytes at all (only the automaton state, an integer); [`Finding`] carries the source id, the encoding and an
//! offset, never bytes. The automaton itself necessarily encodes the patterns in its transition table and cannot
//! be zeroized (the `aho-corasick` crate gives no way to wipe it, nor the intermediate automaton it builds from):
//! this is an accepted limit, and a reason to keep the scanner in the broker process only.

use std::fmt;

use aho_corasick::automaton::{Automaton, Candidate, StateID};
use aho_corasick::nfa::{contiguous, noncontiguous};
use aho_corasick::{Anchored, MatchKind, PatternID, Span, dfa};
use base64::Engine as _;
use zeroize::Zeroizing;

/// Values shorter than this many bytes are not scanned: they would match too much honest traffic.
pub const MIN_SECRET_LEN: usize = 8;

/// Base64 fragments shorter than this are dropped as too likely to occur by chance. A value of at least
/// [`MIN_SECRET_LEN`] bytes always keeps a fragment of at least 10 characters in every alignment.
const MIN_FRAGMENT_LEN: usize = 8;

/// The automaton is a full DFA (one table lookup per byte; about twice the NFA's speed on 50 values) while an upper
/// bound on its transition table stays under this size (one scanner, shared by all connections). Above it, from
/// roughly 70 values of 30 bytes, a contiguous NFA is used: a few percent of the memory, half the speed.
const DFA_MEMORY_BUDGET: usize = 32 << 20;

/// What a pattern stands for: a vault secret or a canary. Never the value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A vault secret, by id (e.g. `default/GITHUB_TOKEN`).
    Secret(String),
    /// A canary token, by id.
    Canary(String),
    /// A surrogate handed to a tool, by the name of the secret it stands for. Not a leak in itself (a surrogate is
    /// worthless outside the broker), but one headed where its secret may not go is an exfiltration attempt.
    Surrogate(String),
}

impl Source {
    /// The id of the secret or canary.
    pub fn id(&self) -> &str {
        match self {
            Source::Secret(id) | Source::Canary(id) | Source::Surrogate(id) => id,
        }
    }
}

/// The form in which a value was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The bytes themselves.
    Raw,
    /// Standard base64 (`+/`), padded or not, at any offset inside a larger encoded blob.
    Base64,
    /// URL-safe base64 (`-_`), padded or not, at any offset inside a larger encoded blob.
    Base64Url,
    /// Lowercase hex.
    HexLower,
    /// Uppercase hex.
    HexUpper,
    /// Percent-encoding with uppercase hex digits: every byte, or only the bytes a common encoder escapes.
    Percent,
    /// Percent-encoding with lowercase hex digits: every byte, or only the bytes a common encoder escapes.
    PercentLower,
    /// `application/x-www-form-urlencoded`: minimal percent-encoding with `+` for space.
    FormUrlEncoded,
    /// The content of a JSON string literal, as common JSON encoders escape it.
    JsonEscaped,
}

impl Encoding {
    /// A stable name for audit records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Raw => "raw",
            Encoding::Base64 => "base64",
            Encoding::Base64Url => "base64url",
            Encoding::HexLower => "hex-lower",
            Encoding::HexUpper => "hex-upper",
            Encoding::Percent => "percent",
            Encoding::PercentLower => "percent-lower",
            Encoding::FormUrlEncoded => "form-urlencoded",
            Encoding::JsonEscaped => "json-escaped",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A known value found in outgoing data. Holds no part of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Which secret or canary.
    pub source: Source,
    /// In which form it was found. When two forms of a value are the same bytes (hex of a value without letters,
    /// JSON of a value with nothing to escape), the one generated first is reported, in this order: raw, hex
    /// (lowercase first), base64, base64url, percent and form (uppercase first), JSON.
    pub encoding: Encoding,
    /// Byte offset (in the whole scanned stream) where the match ends (exclusive).
    pub end: u64,
}

/// The scanner could not be built. Carries no pattern bytes.
#[derive(Debug, thiserror::Error)]
pub enum LeakError {
    /// The automaton could not be built (far more or longer values than any real vault holds).
    #[error("leak scanner: cannot build the matcher for {patterns} patterns: {reason}")]
    Build {
        /// How many patterns were given.
        patterns: usize,
        /// The automaton builder's reason (numbers only, never pattern bytes).
        reason: String,
    },
}

/// Collects the values to look for; [`LeakScannerBuilder::build`] turns them into a [`LeakScanner`].
///
/// Values are copied into zeroizing buffers and wiped when the builder is dropped.
#[derive(Default)]
pub struct LeakScannerBuilder {
    entries: Vec<(Source, Zeroizing<Vec<u8>>)>,
}

impl fmt::Debug for LeakScannerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakScannerBuilder").field("values", &self.entries.len()).finish()
    }
}

impl LeakScannerBuilder {
    /// Registers a value to look for. Values shorter than [`MIN_SECRET_LEN`] are accepted but not scanned; they
    /// are listed in [`LeakScanner::skipped`].
    pub fn add(&mut self, source: Source, value: &[u8]) -> &mut Self {
        let mut copy = Zeroizing::new(Vec::with_capacity(value.len()));
        copy.extend_from_slice(value);
        self.entries.push((source, copy));
        self
    }

    /// How many values were added (including those too short to scan).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no value was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Expands every value into its encoded forms and builds one automaton over all of them.
    ///
    /// Identical patterns (the same bytes from two encodings, or two sources with the same value) are kept once,
    /// attributed to the first source and encoding that produced them.
    pub fn build(&self) -> Result<LeakScanner, LeakError> {
        let mut sources = Vec::new();
        let mut skipped = Vec::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        for (source, value) in &self.entries {
            if value.len() < MIN_SECRET_LEN {
                skipped.push(source.clone());
                continue;
            }
            let index = u32::try_from(sources.len())
                .map_err(|_| LeakError::Build { patterns: patterns.len(), reason: "too many values".to_owned() })?;
            sources.push(source.clone());
            expand(value, &mut |encoding, bytes| patterns.push(Pattern { bytes, source: index, encoding }));
        }
        dedup_keep_first(&mut patterns);

        let origins: Vec<(u32, Encoding)> = patterns.iter().map(|p| (p.source, p.encoding)).collect();
        let lengths: Vec<u32> = patterns.iter().map(|p| p.bytes.len() as u32).collect();
        let max_pattern_len = patterns.iter().map(|p| p.bytes.len()).max().unwrap_or(0);
        let matcher = if patterns.is_empty() { None } else { Some(Matcher::build(&patterns)?) };
        // `patterns` is dropped (and zeroized) here; only the automaton keeps a trace of them.
        Ok(LeakScanner { matcher, origins, lengths, sources, skipped, max_pattern_len })
    }
}

/// Matches every registered value in every supported encoding. Immutable, `Send + Sync`: build it once and share
/// it (in an `Arc`) between all connections.
pub struct LeakScanner {
    matcher: Option<Matcher>,
    /// By pattern id: which source and encoding the pattern stands for.
    origins: Vec<(u32, Encoding)>,
    /// By pattern id: its length in bytes (a match's start is its end minus this).
    lengths: Vec<u32>,
    sources: Vec<Source>,
    skipped: Vec<Source>,
    max_pattern_len: usize,
}

impl fmt::Debug for LeakScanner {
    // Counts only: the patterns are derived from secret values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakScanner")
            .field("sources", &self.sources.len())
            .field("patterns", &self.origins.len())
            .field("skipped", &self.skipped.len())
            .finish()
    }
}

impl LeakScanner {
    /// Starts collecting values.
    pub fn builder() -> LeakScannerBuilder {
        LeakScannerBuilder::default()
    }

    /// Whether nothing is scanned for (no value, or only values too short to scan).
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// Sources skipped because their value is shorter than [`MIN_SECRET_LEN`].
    pub fn skipped(&self) -> &[Source] {
        &self.skipped
    }

    /// Sources that are scanned for.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// How many distinct patterns the automaton holds (for metrics).
    pub fn pattern_count(&self) -> usize {
        self.origins.len()
    }

    /// Heap bytes held by the automaton (for metrics).
    pub fn memory_usage(&self) -> usize {
        self.matcher.as_ref().map_or(0, Matcher::memory_usage)
    }

    /// Length of the longest pattern: a value can span at most this many bytes of a stream.
    pub fn max_pattern_len(&self) -> usize {
        self.max_pattern_len
    }

    /// One-shot scan of a complete buffer (the URL, a header value). Returns the match that ends first.
    pub fn scan(&self, data: &[u8]) -> Option<Finding> {
        self.scan_where(data, |_| true)
    }

    /// As [`LeakScanner::scan`], reporting only matches whose source `report` accepts (say, surrogates of secrets
    /// that may not go to this destination); the others are passed over.
    pub fn scan_where(&self, data: &[u8], report: impl Fn(&Source) -> bool) -> Option<Finding> {
        let mut stream = self.stream();
        stream.feed_where(data, report)
    }

    /// Every match in `data`, as (source, encoding, byte span), in order of where they end. Where several patterns
    /// end at the same byte, the longest is reported (so a mask covers all of them). Overlapping matches that end
    /// at different bytes are all reported.
    pub fn find_all(&self, data: &[u8], mut each: impl FnMut(KnownMatch<'_>)) {
        let Some(matcher) = &self.matcher else { return };
        let mut report = |pattern: PatternID, end: usize| {
            let (source, encoding) = self.origins[pattern.as_usize()];
            let len = self.lengths[pattern.as_usize()] as usize;
            each(KnownMatch { source: &self.sources[source as usize], encoding, start: end - len, end });
        };
        // Without a prefilter (over 64 patterns: a vault of six or more secrets), four interleaved walks.
        let laned = match &matcher.engine {
            Engine::Dfa(a) => a.prefilter().is_none().then(|| self.longest_per_end(a, data, &mut report)),
            Engine::Nfa(a) => a.prefilter().is_none().then(|| self.longest_per_end(a, data, &mut report)),
        };
        if laned.is_some() {
            return;
        }
        let mut state = matcher.start;
        let mut at = 0;
        while let Some((_, more)) = matcher.walk(&mut state, &data[at..]) {
            at += more;
            report(matcher.longest(state, &self.lengths), at);
        }
    }

    /// Every match by [`crate::walk`], the longest of those ending at one byte.
    fn longest_per_end<A: Automaton>(&self, aut: &A, data: &[u8], report: &mut impl FnMut(PatternID, usize)) {
        let mut pending: Option<(PatternID, usize)> = None;
        crate::walk::overlapping_ends(aut, data, |pattern, end| {
            pending = match pending {
                Some((p, e)) if e == end => Some(if self.lengths[pattern.as_usize()] > self.lengths[p.as_usize()] {
                    (pattern, end)
                } else {
                    (p, e)
                }),
                Some((p, e)) => {
                    report(p, e);
                    Some((pattern, end))
                }
                None => Some((pattern, end)),
            };
        });
        if let Some((p, e)) = pending {
            report(p, e);
        }
    }

    /// A streaming scan over the chunks of one body.
    pub fn stream(&self) -> StreamScan<'_> {
        StreamScan { scanner: self, state: self.matcher.as_ref().map(|m| m.start), scanned: 0 }
    }

    fn finding(&self, pattern: PatternID, end: u64) -> Finding {
        let (source, encoding) = self.origins[pattern.as_usize()];
        Finding { source: self.sources[source as usize].clone(), encoding, end }
    }
}

/// One match of [`LeakScanner::find_all`]: which value, in which form, where. Never the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownMatch<'a> {
    pub source: &'a Source,
    pub encoding: Encoding,
    pub start: usize,
    pub end: usize,
}

/// Scans one body chunk by chunk, finding values that span any number of chunks of any size.
///
/// Instead of carrying the last bytes of the previous chunk and rescanning them, the stream carries the automaton
/// state between chunks: the state already encodes exactly the part of a pattern seen so far. So no request bytes
/// are kept between calls (nothing to zeroize), and each byte is examined once, however the body is chunked.
pub struct StreamScan<'a> {
    scanner: &'a LeakScanner,
    /// `None` when the scanner has no patterns.
    state: Option<StateID>,
    scanned: u64,
}

impl fmt::Debug for StreamScan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamScan").field("scanned", &self.scanned).finish()
    }
}

impl StreamScan<'_> {
    /// Scans the next chunk. Returns the first match that ends inside this chunk (it may have started in earlier
    /// chunks); a match is reported once, in the chunk where it ends. The whole chunk is always consumed, so
    /// feeding may go on after a finding.
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Finding> {
        self.feed_where(chunk, |_| true)
    }

    /// As [`StreamScan::feed`], reporting only the first match whose source `report` accepts.
    pub fn feed_where(&mut self, chunk: &[u8], report: impl Fn(&Source) -> bool) -> Option<Finding> {
        let base = self.scanned;
        self.scanned += chunk.len() as u64;
        let (matcher, state) = (self.scanner.matcher.as_ref()?, self.state.as_mut()?);
        let mut found = None;
        // Walk the whole chunk, so the state stays in step with it; only the first reported match is returned.
        let mut at = 0;
        while let Some((pattern, more)) = matcher.walk(state, &chunk[at..]) {
            at += more;
            if found.is_none() {
                let f = self.scanner.finding(pattern, base + at as u64);
                if report(&f.source) {
                    found = Some(f);
                }
            }
        }
        found
    }

    /// How many bytes were fed so far.
    pub fn scanned(&self) -> u64 {
        self.scanned
    }
}

/// A [`StreamScan`] that owns a shared scanner, for a body that outlives any borrow (a request body handed to
/// the HTTP client).
pub struct OwnedStreamScan {
    scanner: std::sync::Arc<LeakScanner>,
    state: Option<StateID>,
    scanned: u64,
}

impl fmt::Debug for OwnedStreamScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedStreamScan").field("scanned", &self.scanned).finish()
    }
}

impl OwnedStreamScan {
    pub fn new(scanner: std::sync::Arc<LeakScanner>) -> OwnedStreamScan {
        let state = scanner.matcher.as_ref().map(|m| m.start);
        OwnedStreamScan { scanner, state, scanned: 0 }
    }

    /// As [`StreamScan::feed`].
    pub fn feed(&mut self, chunk: &[u8]) -> Option<Finding> {
        self.feed_where(chunk, |_| true)
    }

    /// As [`StreamScan::feed_where`].
    pub fn feed_where(&mut self, chunk: &[u8], report: impl Fn(&Source) -> bool) -> Option<Finding> {
        let mut borrowed = StreamScan { scanner: &self.scanner, state: self.state, scanned: self.scanned };
        let found = borrowed.feed_where(chunk, report);
        (self.state, self.scanned) = (borrowed.state, borrowed.scanned);
        found
    }

    /// The longest pattern: a body must hold back one byte less than this before forwarding, so that no byte
    /// of a value is sent before the value is recognised.
    pub fn max_pattern_len(&self) -> usize {
        self.scanner.max_pattern_len()
    }
}

/// One automaton over all patterns. A DFA when small, else a contiguous NFA (see [`DFA_MEMORY_BUDGET`]).
struct Matcher {
    engine: Engine,
    /// The unanchored start state: where a stream begins, and where the prefilter may skip ahead.
    start: StateID,
    /// A stream chunk's last `max_pattern_len - 1` bytes may hold the start of a pattern that ends in the next
    /// chunk; the prefilter only sees whole matches, so it is not trusted there.
    tail: usize,
}

enum Engine {
    Dfa(dfa::DFA),
    Nfa(contiguous::NFA),
}

impl Matcher {
    fn build(patterns: &[Pattern]) -> Result<Matcher, LeakError> {
        let error = |e: aho_corasick::BuildError| LeakError::Build { patterns: patterns.len(), reason: e.to_string() };
        // Standard semantics: a match is reported as soon as its last byte is seen, which is what a stream needs
        // (the earliest-ending match) and what lets the state carry over between chunks.
        let nfa = noncontiguous::Builder::new()
            .match_kind(MatchKind::Standard)
            .prefilter(true)
            .build(patterns.iter().map(|p| p.bytes.as_slice()))
            .map_err(error)?;
        let engine = if dfa_size_bound(patterns) <= DFA_MEMORY_BUDGET {
            Engine::Dfa(dfa::Builder::new().build_from_noncontiguous(&nfa).map_err(error)?)
        } else {
            Engine::Nfa(contiguous::Builder::new().build_from_noncontiguous(&nfa).map_err(error)?)
        };
        let start = match &engine {
            Engine::Dfa(a) => a.start_state(Anchored::No),
            Engine::Nfa(a) => a.start_state(Anchored::No),
        }
        .map_err(|e| LeakError::Build { patterns: patterns.len(), reason: e.to_string() })?;
        let tail = patterns.iter().map(|p| p.bytes.len()).max().unwrap_or(1) - 1;
        Ok(Matcher { engine, start, tail })
    }

    fn memory_usage(&self) -> usize {
        match &self.engine {
            Engine::Dfa(a) => a.memory_usage(),
            Engine::Nfa(a) => a.memory_usage(),
        }
    }

    /// Of the patterns matching in match state `state`, the longest.
    fn longest(&self, state: StateID, lengths: &[u32]) -> PatternID {
        fn pick<A: Automaton>(aut: &A, sid: StateID, lengths: &[u32]) -> PatternID {
            (0..aut.match_len(sid))
                .map(|i| aut.match_pattern(sid, i))
                .max_by_key(|p| lengths[p.as_usize()])
                .expect("a match state holds at least one pattern")
        }
        match &self.engine {
            Engine::Dfa(a) => pick(a, state, lengths),
            Engine::Nfa(a) => pick(a, state, lengths),
        }
    }

    /// Advances `state` over `data` until the first match; returns the pattern and the offset in `data` just past
    /// its last byte. Without a match, `state` ends up after the whole of `data`.
    fn walk(&self, state: &mut StateID, data: &[u8]) -> Option<(PatternID, usize)> {
        match &self.engine {
            Engine::Dfa(a) => walk(a, self.start, self.tail, state, data),
            Engine::Nfa(a) => walk(a, self.start, self.tail, state, data),
        }
    }
}

/// The search loop of `aho-corasick`'s own `find` (see its `automaton` module), but resumable: the state comes in
/// from the previous chunk and goes out to the next one.
#[inline]
fn walk<A: Automaton>(
    aut: &A,
    start: StateID,
    tail: usize,
    state: &mut StateID,
    data: &[u8],
) -> Option<(PatternID, usize)> {
    let prefilter = aut.prefilter();
    // Before `safe`, a pattern starting at a position fits entirely in `data`, so the prefilter's "no match starts
    // here" is the whole truth. From `safe` on, a pattern may start here and end in the next chunk, which the
    // prefilter cannot see: walk those bytes through the automaton.
    let safe = data.len().saturating_sub(tail);
    let skip = |at: usize| -> usize {
        match prefilter {
            Some(pre) if at < safe => match pre.find_in(data, Span::from(at..data.len())) {
                Candidate::None => safe,
                Candidate::Match(m) => m.start().min(safe),
                Candidate::PossibleStartOfMatch(i) => i.min(safe),
            },
            _ => at,
        }
    };
    let mut sid = *state;
    let mut at = if sid == start { skip(0) } else { 0 };
    while at < data.len() {
        sid = aut.next_state(Anchored::No, sid, data[at]);
        at += 1;
        if aut.is_special(sid) {
            if aut.is_match(sid) {
                *state = sid;
                return Some((aut.match_pattern(sid, 0), at));
            }
            // With a prefilter, the start state is "special" too: a chance to skip ahead. (An unanchored search
            // never enters the dead state.)
            debug_assert!(!aut.is_dead(sid));
            if sid == start {
                at = skip(at);
            }
        }
    }
    *state = sid;
    None
}

/// An upper bound on the DFA's transition table in bytes: one row per trie state (at most one per pattern byte, plus
/// the automaton's few fixed states) of `stride` 4-byte entries. The stride is the number of byte classes rounded
/// up to a power of two; classes are computed as `aho-corasick` does, each byte in a pattern ending a class and
/// closing the one before it.
fn dfa_size_bound(patterns: &[Pattern]) -> usize {
    let mut class_ends = [false; 256];
    let mut states = 4usize;
    for pattern in patterns {
        states = states.saturating_add(pattern.bytes.len());
        for &b in pattern.bytes.iter() {
            class_ends[usize::from(b)] = true;
            if b > 0 {
                class_ends[usize::from(b - 1)] = true;
            }
        }
    }
    let classes = 1 + class_ends[..255].iter().filter(|&&end| end).count();
    states.saturating_mul(classes.next_power_of_two()).saturating_mul(4)
}

/// One pattern: the bytes of one encoded form of one value.
struct Pattern {
    bytes: Zeroizing<Vec<u8>>,
    source: u32,
    encoding: Encoding,
}

/// Drops patterns whose bytes already appeared earlier, keeping the first (its source and encoding win).
/// Sorting indices rather than copying bytes into a set keeps the only copies in zeroizing buffers.
fn dedup_keep_first(patterns: &mut Vec<Pattern>) {
    let mut order: Vec<usize> = (0..patterns.len()).collect();
    order.sort_by(|&a, &b| patterns[a].bytes.cmp(&patterns[b].bytes).then(a.cmp(&b)));
    let mut keep = vec![true; patterns.len()];
    for pair in order.windows(2) {
        if patterns[pair[0]].bytes == patterns[pair[1]].bytes {
            keep[pair[1]] = false;
        }
    }
    let mut index = 0;
    patterns.retain(|_| {
        index += 1;
        keep[index - 1]
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Encoders. Each writes into a zeroizing buffer allocated at its final size up front, so that no reallocation
// leaves a copy of a secret-derived pattern behind in freed memory.
// ---------------------------------------------------------------------------------------------------------------

/// Calls `emit` with every encoded form of `value`, in the order that decides which encoding is reported for
/// identical patterns.
fn expand(value: &[u8], emit: &mut dyn FnMut(Encoding, Zeroizing<Vec<u8>>)) {
    emit(Encoding::Raw, copy(value));
    emit(Encoding::HexLower, hex(value, LOWER_HEX));
    emit(Encoding::HexUpper, hex(value, UPPER_HEX));
    for (encoding, engine) in [
        (Encoding::Base64, &base64::engine::general_purpose::STANDARD_NO_PAD),
        (Encoding::Base64Url, &base64::engine::general_purpose::URL_SAFE_NO_PAD),
    ] {
        for lead in 0..3 {
            let fragment = base64_fragment(engine, value, lead);
            if fragment.len() >= MIN_FRAGMENT_LEN {
                emit(encoding, fragment);
            }
        }
    }
    for style in URL_STYLES {
        for (digits, encoding) in [(UPPER_HEX, style.upper), (LOWER_HEX, style.lower)] {
            emit(encoding, percent(value, style.keep, style.space_plus, digits));
        }
    }
    // A JSON encoder takes text: a value that is not UTF-8 cannot come out of one.
    if let Ok(text) = std::str::from_utf8(value) {
        for style in JSON_STYLES {
            emit(Encoding::JsonEscaped, json_escape(text, style));
        }
    }
}

fn copy(value: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len()));
    out.extend_from_slice(value);
    out
}

const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";
const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex(value: &[u8], digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 2));
    for &b in value {
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 0x0f)]);
    }
    out
}

/// The base64 characters that depend only on `value` when it is preceded by `lead` (0, 1 or 2) bytes of its
/// 3-byte group, whatever those bytes and the bytes after it are.
///
/// Character `i` of an encoding covers bits `6i..6i+6` of the input. With `lead` unknown bytes in front, the
/// characters touching bits below `8·lead` depend on them: skip `ceil(8·lead / 6)`. At the end, only characters
/// lying wholly inside the known `8·(lead + n)` bits are fixed: keep up to `floor(8·(lead + n) / 6)`. This drops
/// the padding too, so one fragment matches the padded, the unpadded and the embedded forms.
fn base64_fragment(engine: &base64::engine::GeneralPurpose, value: &[u8], lead: usize) -> Zeroizing<Vec<u8>> {
    let mut input = Zeroizing::new(Vec::with_capacity(lead + value.len()));
    input.resize(lead, 0);
    input.extend_from_slice(value);
    let mut encoded = Zeroizing::new(vec![0u8; base64::encoded_len(input.len(), false).unwrap_or(0)]);
    let written = engine.encode_slice(input.as_slice(), encoded.as_mut_slice()).unwrap_or(0);
    let first = (8 * lead).div_ceil(6);
    let end = (8 * input.len() / 6).min(written);
    copy(encoded.get(first..end).unwrap_or_default())
}

/// One way of percent-encoding: which bytes stay literal, and whether space becomes `+`.
struct UrlStyle {
    keep: fn(u8) -> bool,
    space_plus: bool,
    upper: Encoding,
    lower: Encoding,
}

const URL_STYLES: &[UrlStyle] = &[
    // Every byte as %XX: hand-rolled exfiltration.
    UrlStyle { keep: |_| false, space_plus: false, upper: Encoding::Percent, lower: Encoding::PercentLower },
    // JavaScript encodeURIComponent.
    UrlStyle { keep: keep_uri_component, space_plus: false, upper: Encoding::Percent, lower: Encoding::PercentLower },
    // RFC 3986 unreserved: Python quote(safe=''), curl --data-urlencode.
    UrlStyle { keep: keep_unreserved, space_plus: false, upper: Encoding::Percent, lower: Encoding::PercentLower },
    // Python quote() with its default safe='/'.
    UrlStyle {
        keep: keep_unreserved_slash,
        space_plus: false,
        upper: Encoding::Percent,
        lower: Encoding::PercentLower,
    },
    // Rust percent-encoding NON_ALPHANUMERIC.
    UrlStyle {
        keep: |b| b.is_ascii_alphanumeric(),
        space_plus: false,
        upper: Encoding::Percent,
        lower: Encoding::PercentLower,
    },
    // WHATWG application/x-www-form-urlencoded (URLSearchParams, HTML forms), Java URLEncoder.
    UrlStyle {
        keep: keep_whatwg_form,
        space_plus: true,
        upper: Encoding::FormUrlEncoded,
        lower: Encoding::FormUrlEncoded,
    },
    // Python quote_plus / urlencode, Go url.QueryEscape.
    UrlStyle {
        keep: keep_unreserved,
        space_plus: true,
        upper: Encoding::FormUrlEncoded,
        lower: Encoding::FormUrlEncoded,
    },
];

fn keep_uri_component(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

fn keep_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

fn keep_unreserved_slash(b: u8) -> bool {
    keep_unreserved(b) || b == b'/'
}

fn keep_whatwg_form(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"*-._".contains(&b)
}

fn percent(value: &[u8], keep: fn(u8) -> bool, space_plus: bool, digits: &[u8; 16]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &b in value {
        if space_plus && b == b' ' {
            out.push(b'+');
        } else if keep(b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', digits[usize::from(b >> 4)], digits[usize::from(b & 0x0f)]]);
        }
    }
    out
}

/// How one family of JSON encoders escapes a string.
struct JsonStyle {
    /// Non-ASCII as `\uXXXX` (UTF-16 code units, so surrogate pairs above U+FFFF).
    ascii_only: bool,
    /// `/` as `\/`.
    escape_slash: bool,
    /// Characters written as `\uXXXX` although they need no escaping (HTML-safe output).
    as_unicode: &'static [char],
    /// Uppercase hex digits in `\uXXXX`.
    upper: bool,
}

const JSON_STYLES: &[JsonStyle] = &[
    // JSON.stringify, serde_json, Python json.dumps(ensure_ascii=False).
    JsonStyle { ascii_only: false, escape_slash: false, as_unicode: &[], upper: false },
    // Python json.dumps (ensure_ascii=True by default).
    JsonStyle { ascii_only: true, escape_slash: false, as_unicode: &[], upper: false },
    // PHP json_encode by default.
    JsonStyle { ascii_only: true, escape_slash: true, as_unicode: &[], upper: false },
    // Go encoding/json (HTML-safe by default).
    JsonStyle {
        ascii_only: false,
        escape_slash: false,
        as_unicode: &['<', '>', '&', '\u{2028}', '\u{2029}'],
        upper: false,
    },
    // Gson (HTML-safe by default).
    JsonStyle {
        ascii_only: false,
        escape_slash: false,
        as_unicode: &['<', '>', '&', '=', '\'', '\u{2028}', '\u{2029}'],
        upper: false,
    },
    // Jackson with ESCAPE_NON_ASCII.
    JsonStyle { ascii_only: true, escape_slash: false, as_unicode: &[], upper: true },
    // .NET System.Text.Json with its default encoder.
    JsonStyle { ascii_only: true, escape_slash: false, as_unicode: &['"', '&', '\'', '+', '<', '>', '`'], upper: true },
];

fn json_escape(text: &str, style: &JsonStyle) -> Zeroizing<Vec<u8>> {
    // Worst case: one byte becomes six (`\u001f`); four bytes become twelve (a surrogate pair).
    let mut out = Zeroizing::new(Vec::with_capacity(text.len() * 6));
    let digits = if style.upper { UPPER_HEX } else { LOWER_HEX };
    let unicode = |out: &mut Vec<u8>, unit: u16| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(digits[usize::from((unit >> shift) & 0x0f)]);
        }
    };
    for c in text.chars() {
        match c {
            c if style.as_unicode.contains(&c) => unicode(&mut out, c as u16),
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '/' if style.escape_slash => out.extend_from_slice(b"\\/"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => unicode(&mut out, c as u16),
            c if !c.is_ascii() && style.ascii_only => {
                let mut units = [0u16; 2];
                for &unit in c.encode_utf16(&mut units).iter() {
                    unicode(&mut out, unit);
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

    /// A tiny deterministic PRNG (xorshift64) so that every run sees the same cases.
    struct Rng(u64);

    impl Rng {
        fn new(seed: u64) -> Rng {
            Rng(seed.max(1))
        }

        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn range(&mut self, lo: usize, hi_inclusive: usize) -> usize {
            lo + self.below(hi_inclusive - lo + 1)
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }

        fn text(&mut self, n: usize, alphabet: &[u8]) -> Vec<u8> {
            (0..n).map(|_| alphabet[self.below(alphabet.len())]).collect()
        }
    }

    const B64_STD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const B64_URL_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const HEX_ALPHABET: &[u8] = b"0123456789abcdefABCDEF";
    /// Characters real tokens and passwords use, including the ones every encoding treats specially.
    const SECRETISH: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~!*'()/+= \"\\<>&`%#?:@;,";

    fn secret(id: &str) -> Source {
        Source::Secret(id.to_owned())
    }

    fn scanner(values: &[(Source, &[u8])]) -> LeakScanner {
        let mut builder = LeakScanner::builder();
        for (source, value) in values {
            builder.add(source.clone(), value);
        }
        builder.build().expect("build")
    }

    /// Feeds `body` cut at `cuts` (sorted offsets) and returns every finding.
    fn stream_findings(scanner: &LeakScanner, body: &[u8], cuts: &[usize]) -> Vec<Finding> {
        let mut stream = scanner.stream();
        let mut findings = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain(std::iter::once(&body.len())) {
            findings.extend(stream.feed(&body[from..to]));
            from = to;
        }
        assert_eq!(stream.scanned(), body.len() as u64);
        findings
    }

    /// The test value contains every character some encoding treats specially, so that each encoding yields a
    /// pattern of its own.
    const VALUE: &str = "Tok/9+x \"q\\~!'*<é😀z=&`";

    /// (encoding, the text a reference implementation produces, how much of it the pattern covers).
    /// The texts come from Python 3 (`base64`, `binascii`, `urllib.parse`, `json`) and Node (`encodeURIComponent`,
    /// `URLSearchParams`, `JSON.stringify`); PHP, Go, Gson, Jackson and .NET forms were written from their docs.
    fn reference_encodings() -> Vec<(Encoding, &'static str, usize)> {
        let all = usize::MAX;
        vec![
            (Encoding::Raw, VALUE, all),
            (Encoding::HexLower, "546f6b2f392b782022715c7e21272a3cc3a9f09f98807a3d2660", all),
            (Encoding::HexUpper, "546F6B2F392B782022715C7E21272A3CC3A9F09F98807A3D2660", all),
            // Padded whole-value encodings: the pattern stops before the last character, which depends on the
            // (absent) next byte, and before the padding.
            (Encoding::Base64, "VG9rLzkreCAicVx+IScqPMOp8J+YgHo9JmA=", 34),
            (Encoding::Base64Url, "VG9rLzkreCAicVx-IScqPMOp8J-YgHo9JmA=", 34),
            (Encoding::Base64, "VG9rLzkreCAicVx+IScqPMOp8J+YgHo9JmA", 34),
            (Encoding::Percent, "%54%6F%6B%2F%39%2B%78%20%22%71%5C%7E%21%27%2A%3C%C3%A9%F0%9F%98%80%7A%3D%26%60", all),
            (
                Encoding::PercentLower,
                "%54%6f%6b%2f%39%2b%78%20%22%71%5c%7e%21%27%2a%3c%c3%a9%f0%9f%98%80%7a%3d%26%60",
                all,
            ),
            // encodeURIComponent
            (Encoding::Percent, "Tok%2F9%2Bx%20%22q%5C~!'*%3C%C3%A9%F0%9F%98%80z%3D%26%60", all),
            // Python quote(v, safe='')
            (Encoding::Percent, "Tok%2F9%2Bx%20%22q%5C~%21%27%2A%3C%C3%A9%F0%9F%98%80z%3D%26%60", all),
            // Python quote(v)
            (Encoding::Percent, "Tok/9%2Bx%20%22q%5C~%21%27%2A%3C%C3%A9%F0%9F%98%80z%3D%26%60", all),
            // Rust NON_ALPHANUMERIC
            (Encoding::Percent, "Tok%2F9%2Bx%20%22q%5C%7E%21%27%2A%3C%C3%A9%F0%9F%98%80z%3D%26%60", all),
            // lowercase hex digits, encodeURIComponent's set
            (Encoding::PercentLower, "Tok%2f9%2bx%20%22q%5c~!'*%3c%c3%a9%f0%9f%98%80z%3d%26%60", all),
            // Python quote_plus
            (Encoding::FormUrlEncoded, "Tok%2F9%2Bx+%22q%5C~%21%27%2A%3C%C3%A9%F0%9F%98%80z%3D%26%60", all),
            // URLSearchParams
            (Encoding::FormUrlEncoded, "Tok%2F9%2Bx+%22q%5C%7E%21%27*%3C%C3%A9%F0%9F%98%80z%3D%26%60", all),
            // JSON.stringify / serde_json / json.dumps(ensure_ascii=False)
            (Encoding::JsonEscaped, r#"Tok/9+x \"q\\~!'*<é😀z=&`"#, all),
            // json.dumps
            (Encoding::JsonEscaped, r#"Tok/9+x \"q\\~!'*<\u00e9\ud83d\ude00z=&`"#, all),
            // PHP json_encode
            (Encoding::JsonEscaped, r#"Tok\/9+x \"q\\~!'*<\u00e9\ud83d\ude00z=&`"#, all),
            // Go json.Marshal
            (Encoding::JsonEscaped, r#"Tok/9+x \"q\\~!'*\u003cé😀z=\u0026`"#, all),
            // Gson
            (Encoding::JsonEscaped, r#"Tok/9+x \"q\\~!\u0027*\u003cé😀z\u003d\u0026`"#, all),
            // Jackson ESCAPE_NON_ASCII
            (Encoding::JsonEscaped, r#"Tok/9+x \"q\\~!'*<\u00E9\uD83D\uDE00z=&`"#, all),
            // System.Text.Json
            (Encoding::JsonEscaped, r#"Tok/9\u002Bx \u0022q\\~!\u0027*\u003C\u00E9\uD83D\uDE00z=\u0026\u0060"#, all),
        ]
    }

    #[test]
    fn expand_produces_the_reference_encodings() {
        let mut produced: Vec<(Encoding, Vec<u8>)> = Vec::new();
        expand(VALUE.as_bytes(), &mut |encoding, bytes| produced.push((encoding, bytes.to_vec())));
        for (encoding, text, covered) in reference_encodings() {
            let pattern = &text.as_bytes()[..covered.min(text.len())];
            assert!(
                produced.iter().any(|(e, p)| *e == encoding && p == pattern),
                "{encoding:?} form {text} not produced"
            );
        }
    }

    #[test]
    fn every_encoding_is_found_in_context_with_its_source_and_encoding() {
        let canary = b"canary-7Hq2PzW9xK";
        let scanner = scanner(&[(secret("default/TOKEN"), VALUE.as_bytes()), (Source::Canary("c1".into()), canary)]);
        for (encoding, text, covered) in reference_encodings() {
            let prefix = b"POST /v1/upload?x=1 {\"note\": \"see ";
            let body = [prefix.as_slice(), text.as_bytes(), b"\", \"more\": 42}"].concat();
            let finding = scanner.scan(&body).unwrap_or_else(|| panic!("{encoding:?} form {text} not found"));
            assert_eq!(finding.source, secret("default/TOKEN"), "{text}");
            assert_eq!(finding.encoding, encoding, "{text}");
            assert_eq!(finding.end, (prefix.len() + covered.min(text.len())) as u64, "{text}");
        }
        // The canary is told apart from the secret.
        let canary_hex = hex::encode_upper(canary);
        let finding = scanner.scan(format!("x-trace: {canary_hex}").as_bytes()).expect("canary");
        assert_eq!(finding.source, Source::Canary("c1".into()));
        assert_eq!(finding.encoding, Encoding::HexUpper);
        // And plain text with neither is clean.
        assert_eq!(scanner.scan(b"GET /v1/repos?per_page=100 HTTP/1.1"), None);
    }

    #[test]
    fn base64_fragments_cover_every_alignment() {
        let mut rng = Rng::new(7);
        for n in MIN_SECRET_LEN..=80 {
            let value = rng.bytes(n);
            for (engine, padded) in [(&STANDARD_NO_PAD, &STANDARD), (&URL_SAFE_NO_PAD, &URL_SAFE)] {
                for lead in 0..3 {
                    let fragment = base64_fragment(engine, &value, lead);
                    // A value of at least 8 bytes always keeps at least 10 characters in every alignment.
                    assert!(fragment.len() >= 10, "n={n} lead={lead}: {} chars", fragment.len());
                    assert!(fragment.len() >= MIN_FRAGMENT_LEN);
                    // The fragment holds wherever the value sits, whatever its neighbours are.
                    for _ in 0..4 {
                        let before = 3 * rng.below(4) + lead;
                        let after = rng.below(5);
                        let blob = [rng.bytes(before), value.clone(), rng.bytes(after)].concat();
                        let encoded = padded.encode(&blob);
                        let found = encoded.as_bytes().windows(fragment.len()).any(|w| w == fragment.as_slice());
                        assert!(found, "n={n} lead={lead} before={before}");
                    }
                }
            }
        }
        // Below the minimum the formula starts to lose characters: this is why such values are not scanned.
        assert_eq!(base64_fragment(&STANDARD_NO_PAD, b"1234", 1).len(), 4);
    }

    #[test]
    fn base64_at_offsets_0_to_5_inside_larger_blobs_and_contexts() {
        let mut rng = Rng::new(42);
        let mut url_only_seen = false;
        for round in 0..6 {
            let value = rng.bytes(8 + 5 * round);
            let scanner = scanner(&[(secret("s"), &value)]);
            for offset in 0..=5 {
                for suffix in [0, 1, 2, 7] {
                    let blob = [rng.bytes(offset), value.clone(), rng.bytes(suffix)].concat();
                    for (engine, url) in
                        [(&STANDARD, false), (&STANDARD_NO_PAD, false), (&URL_SAFE, true), (&URL_SAFE_NO_PAD, true)]
                    {
                        let encoded = engine.encode(&blob);
                        let contexts = [
                            format!("{{\"name\":\"a.bin\",\"content\":\"{encoded}\"}}"),
                            format!("/upload?name=a.bin&data={encoded}&v=2"),
                            format!("Basic {encoded}"),
                            encoded.clone(),
                        ];
                        for context in &contexts {
                            let finding = scanner
                                .scan(context.as_bytes())
                                .unwrap_or_else(|| panic!("{offset} {suffix} {context}"));
                            assert_eq!(finding.source, secret("s"));
                            if url {
                                // Without '-' or '_' in the fragment, the two alphabets agree and the first wins.
                                assert!(matches!(finding.encoding, Encoding::Base64 | Encoding::Base64Url));
                                url_only_seen |= finding.encoding == Encoding::Base64Url;
                            } else {
                                assert_eq!(finding.encoding, Encoding::Base64, "{context}");
                            }
                        }
                    }
                }
            }
        }
        assert!(url_only_seen, "no case exercised a URL-safe-only fragment");
    }

    /// Bodies holding one value in a few encodings; (body, end of the one match).
    fn boundary_bodies(value: &[u8]) -> Vec<(Vec<u8>, usize)> {
        let prefix = b"{\"message\":\"hello\",\"data\":\"".as_slice();
        let suffix = b"\",\"n\":1}".as_slice();
        let hex_form = hex::encode(value);
        let percent_form: String = value.iter().map(|b| format!("%{b:02X}")).collect();
        let b64 = STANDARD.encode([b"xy".as_slice(), value, b"tail"].concat());
        let b64_end = b"xy".len() + value.len();
        vec![
            ([prefix, value, suffix].concat(), prefix.len() + value.len()),
            ([prefix, hex_form.as_bytes(), suffix].concat(), prefix.len() + hex_form.len()),
            ([prefix, percent_form.as_bytes(), suffix].concat(), prefix.len() + percent_form.len()),
            // Value after 2 leading bytes of a blob: the fragment ends at the last character fixed by the value.
            ([prefix, b64.as_bytes(), suffix].concat(), prefix.len() + 8 * b64_end / 6),
        ]
    }

    #[test]
    fn value_split_into_two_chunks_at_every_position_is_found_once() {
        let value = b"ghp_R4nd0mT0k3nV4lu3";
        // One value alone gets a prefilter (see the next test), two may not: both search paths are covered.
        let alone = scanner(&[(secret("gh"), value)]);
        let with_canary = scanner(&[(secret("gh"), value), (Source::Canary("c".into()), b"CANARY-0042-zzzz")]);
        for scanner in [&alone, &with_canary] {
            for (body, end) in boundary_bodies(value) {
                assert_eq!(scanner.scan(&body).map(|f| f.end), Some(end as u64));
                for cut in 0..=body.len() {
                    let findings = stream_findings(scanner, &body, &[cut]);
                    assert_eq!(findings.len(), 1, "cut at {cut}");
                    assert_eq!(findings[0].end, end as u64, "cut at {cut}");
                    assert_eq!(findings[0].source, secret("gh"));
                }
            }
        }
    }

    #[test]
    fn value_fed_one_byte_at_a_time_is_found_once() {
        let value = b"ghp_R4nd0mT0k3nV4lu3";
        let scanner = scanner(&[(secret("gh"), value)]);
        for (body, end) in boundary_bodies(value) {
            let cuts: Vec<usize> = (1..body.len()).collect();
            let findings = stream_findings(&scanner, &body, &cuts);
            assert_eq!(findings.len(), 1);
            assert_eq!(findings[0].end, end as u64);
            // Three chunks with the value spread over all of them.
            let third = end - value.len() / 2;
            let findings = stream_findings(&scanner, &body, &[third - 3, third]);
            assert_eq!(findings.len(), 1);
            assert_eq!(findings[0].end, end as u64);
        }
    }

    #[test]
    fn small_scanners_use_a_dfa_with_a_prefilter_large_ones_an_nfa() {
        // The boundary tests above only exercise the prefilter's chunk-tail rule if there is a prefilter.
        let small = scanner(&[(secret("gh"), b"ghp_R4nd0mT0k3nV4lu3")]);
        match &small.matcher.as_ref().expect("patterns").engine {
            Engine::Dfa(dfa) => assert!(dfa.prefilter().is_some()),
            Engine::Nfa(_) => panic!("a handful of patterns should get a DFA"),
        }
        let mut rng = Rng::new(3);
        let values: Vec<(Source, Vec<u8>)> =
            (0..150).map(|i| (secret(&format!("s{i}")), rng.text(32, SECRETISH))).collect();
        let mut builder = LeakScanner::builder();
        for (source, value) in &values {
            builder.add(source.clone(), value);
        }
        let large = builder.build().expect("build");
        assert!(matches!(large.matcher.as_ref().expect("patterns").engine, Engine::Nfa(_)));
        for (source, value) in &values {
            let body = [b"k=".as_slice(), value, b";"].concat();
            let cuts: Vec<usize> = (1..body.len()).collect();
            let findings = stream_findings(&large, &body, &cuts);
            assert_eq!(findings.len(), 1);
            assert_eq!(&findings[0].source, source);
            assert_eq!(findings[0].end, (2 + value.len()) as u64);
        }
    }

    #[test]
    fn stream_reports_each_match_once_and_keeps_going() {
        let scanner = scanner(&[(secret("a"), b"first-secret-AAAA"), (secret("b"), b"second-secret-BBBB")]);
        let mut stream = scanner.stream();
        // Chunk 1 holds all of a and the start of b; chunk 2 ends b; chunk 3 holds a again.
        assert_eq!(stream.feed(b"..first-secret-AAAA..second-sec").map(|f| (f.source, f.end)), Some((secret("a"), 19)));
        assert_eq!(stream.feed(b"ret-BBBB...").map(|f| (f.source, f.end)), Some((secret("b"), 39)));
        assert_eq!(stream.feed(b"first-secret-AAAA").map(|f| f.end), Some(59));
        assert_eq!(stream.feed(b"nothing here"), None);
        assert_eq!(stream.scanned(), 71);
        // Two matches in one chunk: the first one is reported, and the state still follows the whole chunk.
        let mut stream = scanner.stream();
        assert_eq!(stream.feed(b"first-secret-AAAA second-secret-BBBB first-se").map(|f| f.end), Some(17));
        assert_eq!(stream.feed(b"cret-AAAA").map(|f| f.end), Some(54));
    }

    #[test]
    fn short_values_are_skipped_and_listed() {
        let scanner = scanner(&[
            (secret("seven"), b"1234567"),
            (Source::Canary("empty".into()), b""),
            (secret("eight"), b"12345678"),
        ]);
        assert_eq!(scanner.skipped(), &[secret("seven"), Source::Canary("empty".into())]);
        assert_eq!(scanner.sources(), &[secret("eight")]);
        assert!(!scanner.is_empty());
        let finding = scanner.scan(b"pin=12345678&x").expect("8 bytes are scanned");
        assert_eq!((finding.source, finding.encoding, finding.end), (secret("eight"), Encoding::Raw, 12));
        assert_eq!(scanner.scan(b"pin=1234567&x"), None);

        let only_short = self::scanner(&[(secret("seven"), b"1234567")]);
        assert!(only_short.is_empty());
        assert_eq!(only_short.skipped(), &[secret("seven")]);
        assert_eq!(only_short.scan(b"1234567"), None);
        let mut stream = only_short.stream();
        assert_eq!(stream.feed(b"1234567"), None);
        assert_eq!(stream.scanned(), 7);
    }

    #[test]
    fn identical_values_are_attributed_to_the_first_source() {
        let scanner = scanner(&[(secret("one"), b"same-value-123"), (Source::Canary("two".into()), b"same-value-123")]);
        assert_eq!(scanner.sources().len(), 2);
        assert_eq!(scanner.scan(b"same-value-123").map(|f| f.source), Some(secret("one")));
        // Hex of a value without letters is the same in both cases: reported as the first, lowercase.
        let digits = self::scanner(&[(secret("d"), b"12345678")]);
        assert_eq!(
            digits.scan(hex::encode_upper(b"12345678").as_bytes()).map(|f| f.encoding),
            Some(Encoding::HexLower)
        );
    }

    #[test]
    fn no_false_positives_on_random_base64_and_hex_text() {
        let mut rng = Rng::new(0x5eed);
        let mut builder = LeakScanner::builder();
        for i in 0..100 {
            builder.add(secret(&format!("s{i}")), &rng.bytes(32));
        }
        let scanner = builder.build().expect("build");
        for alphabet in [B64_STD_ALPHABET, B64_URL_ALPHABET, HEX_ALPHABET] {
            let text = rng.text(1 << 20, alphabet);
            assert_eq!(scanner.scan(&text), None);
            let mut stream = scanner.stream();
            for chunk in text.chunks(4093) {
                assert_eq!(stream.feed(chunk), None);
            }
        }
    }

    #[test]
    fn debug_output_holds_no_part_of_the_value() {
        let value = b"sk-live-9f8e7d6c5b4a39281706";
        let mut builder = LeakScanner::builder();
        builder.add(secret("default/API_KEY"), value);
        let scanner = builder.build().expect("build");
        let mut stream = scanner.stream();
        let finding = stream.feed(value).expect("found");
        let outputs = [
            format!("{builder:?}"),
            format!("{builder:#?}"),
            format!("{scanner:?}"),
            format!("{scanner:#?}"),
            format!("{stream:?}"),
            format!("{finding:?}"),
            format!("{:?}", scanner.scan(value)),
        ];
        let forbidden = [
            String::from_utf8(value.to_vec()).expect("ascii"),
            "sk-live".to_owned(),
            "9f8e7d6c".to_owned(),
            hex::encode(value),
            hex::encode_upper(value),
            STANDARD.encode(value),
            STANDARD_NO_PAD.encode(value)[..12].to_owned(),
        ];
        for output in &outputs {
            for needle in &forbidden {
                assert!(!output.contains(needle.as_str()), "{output:?} contains {needle:?}");
            }
        }
        assert!(outputs[2].contains("patterns"), "counts are shown: {}", outputs[2]);
    }

    #[test]
    fn scanner_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LeakScanner>();
        assert_send_sync::<StreamScan<'static>>();
    }

    /// Independent, deliberately naive reference encoders for the property test.
    fn encode_for_test(rng: &mut Rng, value: &[u8]) -> (Vec<u8>, &'static str) {
        let utf8 = std::str::from_utf8(value).ok();
        loop {
            let encoded = match rng.below(10) {
                0 => (value.to_vec(), "raw"),
                1 => (hex::encode(value).into_bytes(), "hex"),
                2 => (hex::encode_upper(value).into_bytes(), "HEX"),
                3 => {
                    let (lead, trail) = (rng.below(6), rng.below(6));
                    let blob = [rng.bytes(lead), value.to_vec(), rng.bytes(trail)].concat();
                    let engine = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD][rng.below(4)];
                    (engine.encode(blob).into_bytes(), "base64 blob")
                }
                4 => (value.iter().map(|b| format!("%{b:02X}")).collect::<String>().into_bytes(), "percent"),
                5 => (value.iter().map(|b| format!("%{b:02x}")).collect::<String>().into_bytes(), "percent lower"),
                6 => {
                    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b);
                    let s: String = value
                        .iter()
                        .map(|&b| if keep(b) { (b as char).to_string() } else { format!("%{b:02X}") })
                        .collect();
                    (s.into_bytes(), "encodeURIComponent")
                }
                7 => {
                    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-_.~".contains(&b);
                    let s: String = value
                        .iter()
                        .map(|&b| match b {
                            b' ' => "+".to_owned(),
                            b if keep(b) => (b as char).to_string(),
                            b => format!("%{b:02X}"),
                        })
                        .collect();
                    (s.into_bytes(), "quote_plus")
                }
                8 if utf8.is_some() => {
                    let quoted = serde_json::to_string(utf8.unwrap_or_default()).expect("json");
                    (quoted.as_bytes()[1..quoted.len() - 1].to_vec(), "serde_json")
                }
                9 if utf8.is_some() => {
                    let mut s = String::new();
                    for c in utf8.unwrap_or_default().chars() {
                        match c {
                            '"' => s.push_str("\\\""),
                            '\\' => s.push_str("\\\\"),
                            '\n' => s.push_str("\\n"),
                            '\r' => s.push_str("\\r"),
                            '\t' => s.push_str("\\t"),
                            '\u{8}' => s.push_str("\\b"),
                            '\u{c}' => s.push_str("\\f"),
                            c if c.is_ascii() && (c as u32) >= 0x20 => s.push(c),
                            c => {
                                for unit in c.encode_utf16(&mut [0u16; 2]) {
                                    s.push_str(&format!("\\u{unit:04x}"));
                                }
                            }
                        }
                    }
                    (s.into_bytes(), "json.dumps")
                }
                _ => continue,
            };
            return encoded;
        }
    }

    fn random_value(rng: &mut Rng) -> Vec<u8> {
        let n = rng.range(MIN_SECRET_LEN, 48);
        match rng.below(3) {
            0 => rng.bytes(n),
            1 => rng.text(n, SECRETISH),
            _ => {
                let chars = ['a', 'Z', '7', 'é', 'ß', '€', '😀', ' ', '"', '\\', '\n', '/', '\u{1}'];
                let mut s = String::new();
                while s.len() < n {
                    s.push(chars[rng.below(chars.len())]);
                }
                s.into_bytes()
            }
        }
    }

    #[test]
    fn random_values_in_random_encodings_at_random_positions_are_found() {
        let mut rng = Rng::new(0xa11c0c);
        let sets: Vec<Vec<(Source, Vec<u8>)>> = [4, 40]
            .iter()
            .map(|&count| {
                (0..count)
                    .map(|i| {
                        let source =
                            if i % 3 == 0 { Source::Canary(format!("c{i}")) } else { secret(&format!("s{i}")) };
                        (source, random_value(&mut rng))
                    })
                    .collect()
            })
            .collect();
        let scanners: Vec<LeakScanner> = sets
            .iter()
            .map(|set| {
                let mut builder = LeakScanner::builder();
                for (source, value) in set {
                    builder.add(source.clone(), value);
                }
                builder.build().expect("build")
            })
            .collect();
        for case in 0..2000 {
            let which = case % 2;
            let (source, value) = &sets[which][rng.below(sets[which].len())];
            let (encoded, how) = encode_for_test(&mut rng, value);
            let (before_len, after_len) = (rng.below(200), rng.below(200));
            let before = match rng.below(3) {
                0 => rng.bytes(before_len),
                1 => rng.text(before_len, B64_STD_ALPHABET),
                _ => rng.text(before_len, b"abcdefghijklmnopqrstuvwxyz =&{}\":,"),
            };
            let after = rng.bytes(after_len);
            let body = [before.as_slice(), &encoded, &after].concat();
            let finding = scanners[which]
                .scan(&body)
                .unwrap_or_else(|| panic!("case {case}: {how} of {:?} not found", source.id()));
            assert_eq!(&finding.source, source, "case {case}: {how}");
            assert!(finding.end > before.len() as u64 && finding.end <= (before.len() + encoded.len()) as u64);
            // Streamed in random chunks, the first finding is the same.
            let mut cuts: Vec<usize> = (0..rng.below(6)).map(|_| rng.below(body.len() + 1)).collect();
            cuts.sort_unstable();
            let findings = stream_findings(&scanners[which], &body, &cuts);
            assert_eq!(findings.first(), Some(&finding), "case {case}: {how}, cuts {cuts:?}");
        }
    }

    /// Throughput, for the record: `cargo test -p airlock-broker --release --lib leak -- --ignored --nocapture`.
    /// A vault too large for a prefilter is searched by four interleaved walks (see `walk`): every raw value
    /// placed anywhere in a large body, across lane and block boundaries, is reported once with its exact span.
    #[test]
    fn find_all_without_a_prefilter_reports_every_value_once_with_its_span() {
        let mut rng = Rng::new(11);
        let values: Vec<(Source, Vec<u8>)> =
            (0..40).map(|i| (secret(&format!("s{i}")), rng.text(24, SECRETISH))).collect();
        let refs: Vec<(Source, &[u8])> = values.iter().map(|(s, v)| (s.clone(), v.as_slice())).collect();
        let scanner = scanner(&refs);
        let no_prefilter = match &scanner.matcher.as_ref().expect("patterns").engine {
            Engine::Dfa(a) => a.prefilter().is_none(),
            Engine::Nfa(a) => a.prefilter().is_none(),
        };
        assert!(no_prefilter, "40 values give hundreds of patterns: too many for a prefilter");
        let mut body = Vec::new();
        let mut want = Vec::new();
        let mut i = 0;
        while body.len() < 300_000 {
            let (source, value) = &values[i % values.len()];
            let gap = rng.range(1, 40_000);
            body.extend(rng.text(gap, b" \n.,;:abcxyz"));
            want.push((source.clone(), body.len(), body.len() + value.len()));
            body.extend_from_slice(value);
            i += 1;
        }
        let mut got = Vec::new();
        scanner.find_all(&body, |m| {
            if m.encoding == Encoding::Raw {
                got.push((m.source.clone(), m.start, m.end));
            }
        });
        assert_eq!(got, want);
    }

    #[test]
    #[ignore = "measurement, run in release"]
    fn throughput() {
        let mut rng = Rng::new(99);
        let mut builder = LeakScanner::builder();
        for i in 0..50 {
            let n = rng.range(20, 40);
            builder.add(secret(&format!("s{i}")), &rng.text(n, SECRETISH));
        }
        let scanner = builder.build().expect("build");
        // Text like real bodies: JSON-ish words, base64 and hex runs.
        let mut data = Vec::with_capacity(64 << 20);
        while data.len() < 64 << 20 {
            let run = rng.range(16, 512);
            let alphabet: &[u8] = match rng.below(3) {
                0 => B64_STD_ALPHABET,
                1 => HEX_ALPHABET,
                _ => b"abcdefghijklmnopqrstuvwxyz ABCDE{}\":,0123456789",
            };
            data.extend(rng.text(run, alphabet));
        }
        data.truncate(64 << 20);
        let mb = data.len() as f64 / 1e6;
        let engine = match &scanner.matcher.as_ref().expect("patterns").engine {
            Engine::Dfa(_) => "DFA",
            Engine::Nfa(_) => "contiguous NFA",
        };
        println!(
            "{} values, {} patterns, {engine} ({} bytes), {:.1} MB of text",
            scanner.sources().len(),
            scanner.pattern_count(),
            scanner.memory_usage(),
            mb
        );

        let started = std::time::Instant::now();
        assert_eq!(scanner.scan(&data), None);
        let secs = started.elapsed().as_secs_f64();
        println!("scan():   {:.0} MB/s", mb / secs);

        for chunk_size in [16 << 10, 1 << 10, 64] {
            let started = std::time::Instant::now();
            let mut stream = scanner.stream();
            for chunk in data.chunks(chunk_size) {
                assert_eq!(stream.feed(chunk), None);
            }
            let secs = started.elapsed().as_secs_f64();
            println!("stream({chunk_size} B chunks): {:.0} MB/s", mb / secs);
        }
    }
}
