//! The detection engine: keyword prefilter, windowed regex, validators, known values, overlap resolution.
//!
//! # Why a prefilter and windows
//! Running 200 regexes over every byte costs 200 passes. Nearly every credential format has a literal in it
//! (`ghp_`, `AKIA`, `xoxb-`, `-----BEGIN`) or sits next to one (`password`, `client_secret`), so one
//! Aho-Corasick pass over all keywords (case-insensitive) finds every place a rule could match. A rule's regex
//! then runs only in a window around each of its keyword hits: from `max_len` bytes before the keyword to
//! `max_len` after, clamped to the keyword's line unless the rule is multi-line. On clean text most bytes are
//! touched once, by the prefilter. Windows of one rule that overlap are merged, so a flood of keywords (a 2 GB
//! line of `ghp_ghp_...`) still costs one regex pass per rule at most: scanning stays linear in the input.
//!
//! The regex is searched inside the window but with the whole buffer as haystack, so `\b` at a window edge sees
//! the real neighbouring byte. Rules without keywords (personal data such as phone numbers) run over the whole
//! buffer; they are off unless asked for.
//!
//! # What counts as a finding
//! A regex candidate (never longer than the rule's `max_len`: rules are validated for that) that contains one of the
//! rule's keywords, whose secret part passes the rule's check, entropy floor, allow-list and the placeholder filter.
//! Findings that overlap are merged into one that covers them all (so the mask hides every byte any detector claimed),
//! attributed to the strongest detector: a known value, then a rule with a checksum, then a specific rule, then a
//! generic one.

use std::sync::Arc;

use aho_corasick::automaton::Automaton;
use aho_corasick::{MatchKind, dfa};
use regex_automata::{Anchored, Input};

use crate::checks::shannon_entropy;
use crate::known::{Encoding, LeakScanner, Source};
use crate::rule::{Category, Rule, RuleSet};

/// Which personal-data families to detect. Each can be switched on its own.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PiiSelection {
    /// No personal data (the default for `scan-secrets`).
    #[default]
    None,
    /// Every `category = "pii"` rule.
    All,
    /// Only these families (`email`, `phone`, `credit-card`, `iban`, `us-ssn`, `ip-address`).
    Only(Vec<String>),
}

impl PiiSelection {
    fn wants(&self, family: &str) -> bool {
        match self {
            PiiSelection::None => false,
            PiiSelection::All => true,
            PiiSelection::Only(families) => families.iter().any(|f| f == family),
        }
    }
}

/// What a scanner looks for.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Credential rules (`category = "secret"`).
    pub secrets: bool,
    pub pii: PiiSelection,
    /// Key for finding fingerprints. Without one, a random key per scanner: fingerprints then agree within one
    /// scanner's life only.
    pub fingerprint_key: Option<[u8; 32]>,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions { secrets: true, pii: PiiSelection::None, fingerprint_key: None }
    }
}

/// Which detector produced a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detector {
    /// A rule, by index in the scanner's rule list.
    Rule(usize),
    /// A value Airlock knows.
    Known { source: Source, encoding: Encoding },
}

/// One thing found. Holds positions and names, never the bytes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule id (`github-pat-classic`), or `known-value` for a vault secret, surrogate or canary.
    pub rule: Arc<str>,
    /// The rule family (`github`), or `known` for known values.
    pub family: Arc<str>,
    /// `secret`, `pii` or `known`.
    pub category: &'static str,
    /// For known values: which one and in which form. `None` for rules.
    pub known: Option<(Source, Encoding)>,
    /// Byte span of the secret (what is masked) in the whole input.
    pub start: u64,
    pub end: u64,
    /// 1-based line and byte column of `start`.
    pub line: u64,
    pub column: u64,
    /// 1-based line and byte column of the last byte of the span.
    pub end_line: u64,
    pub end_column: u64,
    /// A keyed hash of rule and secret: the same secret found twice gives the same fingerprint, and it reveals
    /// nothing about the value to whoever lacks the key.
    pub fingerprint: Fingerprint,
}

/// 64-bit keyed fingerprint of a finding, shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 8]);

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The rule id shown for every known value. One id for secrets, surrogates and canaries alike, so that the masked
/// text does not tell an attacker which of its values were canaries.
pub const KNOWN_RULE: &str = "known-value";

/// A candidate before overlap resolution: positions relative to the scanned buffer.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub start: usize,
    pub end: usize,
    pub detector: Detector,
    /// Strength for overlap resolution (higher wins).
    pub rank: u8,
}

/// Compiled, immutable, shareable (`Send + Sync`). Build once, scan many buffers and streams.
pub struct Scanner {
    rules: Vec<Rule>,
    rule_ids: Vec<Arc<str>>,
    rule_families: Vec<Arc<str>>,
    /// Keyword automaton, and for each of its patterns the rules that keyword belongs to.
    keywords: Option<Arc<dfa::DFA>>,
    keyword_rules: Vec<Vec<u32>>,
    /// Rules without keywords: their regex runs over the whole buffer.
    unkeyed: Vec<usize>,
    known: Option<Arc<LeakScanner>>,
    fingerprint_key: [u8; 32],
    hold: usize,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("rules", &self.rules.len())
            .field("known", &self.known.as_ref().map_or(0, |k| k.sources().len()))
            .finish_non_exhaustive()
    }
}

/// The scanner could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("keyword prefilter: {0}")]
    Keywords(String),
}

impl Scanner {
    /// A scanner over the enabled rules of `rules`, and over the values of `known` if given.
    pub fn new(rules: RuleSet, options: &ScanOptions, known: Option<Arc<LeakScanner>>) -> Result<Scanner, ScanError> {
        let rules: Vec<Rule> = rules
            .rules
            .into_iter()
            .filter(|r| match r.category() {
                Category::Secret => options.secrets,
                Category::Pii => options.pii.wants(r.family()),
            })
            .collect();
        let mut keyword_list: Vec<Vec<u8>> = Vec::new();
        let mut keyword_rules: Vec<Vec<u32>> = Vec::new();
        let mut unkeyed = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if rule.keywords.is_empty() {
                unkeyed.push(i);
            }
            for k in &rule.keywords {
                match keyword_list.iter().position(|x| x == k) {
                    Some(p) => keyword_rules[p].push(i as u32),
                    None => {
                        keyword_list.push(k.clone());
                        keyword_rules.push(vec![i as u32]);
                    }
                }
            }
        }
        let keywords = if keyword_list.is_empty() {
            None
        } else {
            // No prefilter: with hundreds of keywords none would help, and the interleaved walk needs a start
            // state that is not "special".
            Some(Arc::new(
                dfa::Builder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .prefilter(false)
                    .build(&keyword_list)
                    .map_err(|e| ScanError::Keywords(e.to_string()))?,
            ))
        };
        let rule_max = rules.iter().map(Rule::max_len).max().unwrap_or(0);
        let known_max = known.as_ref().map_or(0, |k| k.max_pattern_len());
        let fingerprint_key = options.fingerprint_key.unwrap_or_else(random_key);
        Ok(Scanner {
            rule_ids: rules.iter().map(|r| Arc::from(r.id())).collect(),
            rule_families: rules.iter().map(|r| Arc::from(r.family())).collect(),
            rules,
            keywords,
            keyword_rules,
            unkeyed,
            known,
            fingerprint_key,
            hold: rule_max.max(known_max),
        })
    }

    /// The built-in rules with default options and no known values.
    pub fn builtin() -> Scanner {
        Scanner::new(RuleSet::builtin(), &ScanOptions::default(), None).expect("built-in rules build")
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The known values scanned for, if any.
    pub fn known(&self) -> Option<&Arc<LeakScanner>> {
        self.known.as_ref()
    }

    /// The same rules and options with another set of known values (the vault changed).
    pub fn with_known(&self, known: Option<Arc<LeakScanner>>) -> Scanner {
        let known_max = known.as_ref().map_or(0, |k| k.max_pattern_len());
        let rule_max = self.rules.iter().map(Rule::max_len).max().unwrap_or(0);
        Scanner {
            rules: self.rules.clone(),
            rule_ids: self.rule_ids.clone(),
            rule_families: self.rule_families.clone(),
            keywords: self.keywords.clone(),
            keyword_rules: self.keyword_rules.clone(),
            unkeyed: self.unkeyed.clone(),
            known,
            fingerprint_key: self.fingerprint_key,
            hold: rule_max.max(known_max),
        }
    }

    /// The longest span a finding can have: a stream holds back this many bytes.
    pub fn hold(&self) -> usize {
        self.hold
    }

    /// Every finding in `data`, in order, overlaps merged. Positions are relative to `data`.
    pub fn scan(&self, data: &[u8]) -> Vec<Finding> {
        let hits = self.hits(data);
        let mut lines = LineCounter::default();
        hits.into_iter().map(|h| self.finding(data, &h, 0, &mut lines)).collect()
    }

    /// Masks every finding in `data` and returns the masked bytes and the findings.
    pub fn redact(&self, data: &[u8], style: &crate::mask::MaskStyle) -> (Vec<u8>, Vec<Finding>) {
        let mut out = Vec::with_capacity(data.len());
        let findings = self.redact_into(data, style, &mut out);
        (out, findings)
    }

    /// As [`Scanner::redact`], appending the masked bytes to `out` (a buffer reused across calls).
    pub fn redact_into(&self, data: &[u8], style: &crate::mask::MaskStyle, out: &mut Vec<u8>) -> Vec<Finding> {
        let hits = self.hits(data);
        let mut at = 0;
        for h in &hits {
            out.extend_from_slice(&data[at..h.start]);
            style.mask(self.hit_rule_id(h), self.keep_prefix(h), &data[h.start..h.end], out);
            at = h.end;
        }
        out.extend_from_slice(&data[at..]);
        let mut lines = LineCounter::default();
        hits.iter().map(|h| self.finding(data, h, 0, &mut lines)).collect()
    }

    pub(crate) fn hit_rule_id(&self, h: &Hit) -> &str {
        match &h.detector {
            Detector::Rule(i) => &self.rule_ids[*i],
            Detector::Known { .. } => KNOWN_RULE,
        }
    }

    pub(crate) fn keep_prefix(&self, h: &Hit) -> usize {
        match &h.detector {
            Detector::Rule(i) => self.rules[*i].spec.keep_prefix,
            Detector::Known { .. } => 0,
        }
    }

    /// Turns a hit into a finding. `base` is the stream offset of `data[0]`; `lines` tracks line numbers and must
    /// be fed hits in order.
    pub(crate) fn finding(&self, data: &[u8], h: &Hit, base: u64, lines: &mut LineCounter) -> Finding {
        let (line, column) = lines.position(data, h.start);
        let (end_line, end_column) = lines.position(data, h.end - 1);
        let (rule, family, category, known) = match &h.detector {
            Detector::Rule(i) => {
                (self.rule_ids[*i].clone(), self.rule_families[*i].clone(), self.rules[*i].category().as_str(), None)
            }
            Detector::Known { source, encoding } => {
                (Arc::from(KNOWN_RULE), Arc::from("known"), "known", Some((source.clone(), *encoding)))
            }
        };
        let fingerprint = self.fingerprint(&rule, &data[h.start..h.end]);
        Finding {
            rule,
            family,
            category,
            known,
            start: base + h.start as u64,
            end: base + h.end as u64,
            line,
            column,
            end_line,
            end_column,
            fingerprint,
        }
    }

    fn fingerprint(&self, rule: &str, secret: &[u8]) -> Fingerprint {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.fingerprint_key).expect("any key length");
        mac.update(rule.as_bytes());
        mac.update(&[0]);
        mac.update(secret);
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; 8];
        out.copy_from_slice(&tag[..8]);
        Fingerprint(out)
    }

    /// All hits in `data`, sorted by start, overlaps merged.
    pub(crate) fn hits(&self, data: &[u8]) -> Vec<Hit> {
        self.hits_fenced(data, 0, None).0
    }

    /// As [`Scanner::hits`]; with `fence = Some(f)`, also the place at or before `f` (and no more than `hold`
    /// bytes before it) where a stream may cut its buffer: a place inside no candidate of any rule, accepted or
    /// not, nor inside a known value. Cutting there, the next round's searches start where this round's would
    /// have continued, so a split stream finds what the whole buffer does.
    ///
    /// Only `data[from..]` is searched; the byte before it is look-behind context (what `\b` and `(?m:^)` see at a
    /// stream's cut, as they would in the whole buffer).
    pub(crate) fn hits_fenced(&self, data: &[u8], from: usize, fence: Option<usize>) -> (Vec<Hit>, Option<usize>) {
        let mut hits = Vec::new();
        let mut cut = Cut::new(fence, self.hold);
        self.rule_hits(data, from, &mut hits, &mut cut);
        if let Some(known) = &self.known {
            known.find_all(&data[from..], |m| {
                let (start, end) = (from + m.start, from + m.end);
                cut.note(start, end);
                hits.push(Hit {
                    start,
                    end,
                    detector: Detector::Known { source: m.source.clone(), encoding: m.encoding },
                    rank: 4,
                })
            });
        }
        (merge_overlaps(hits), cut.place())
    }

    /// Keyword occurrences arrive in order of where they end; each rule keeps one pending window, extended while
    /// occurrences overlap it and searched when the next one lies beyond it. Memory stays at one window per rule
    /// however many keywords the input holds.
    fn rule_hits(&self, data: &[u8], from: usize, hits: &mut Vec<Hit>, cut: &mut Cut) {
        let mut pending: Vec<Option<Window>> = vec![None; self.rules.len()];
        let mut lines = LineBounds::new(data);
        if let Some(keywords) = &self.keywords {
            crate::walk::overlapping_ends(keywords.as_ref(), &data[from..], |pattern, end| {
                let end = from + end;
                let start = end - keywords.pattern_len(pattern);
                for &r in &self.keyword_rules[pattern.as_usize()] {
                    let r = r as usize;
                    let (lo, hi) = self.window(&mut lines, r, from, start, end);
                    pending[r] = match pending[r] {
                        Some(w) if lo <= w.hi => Some(w.merge(lo, hi, start)),
                        Some(w) => {
                            self.search_window(data, r, w, hits, cut);
                            Some(Window::new(lo, hi, start))
                        }
                        None => Some(Window::new(lo, hi, start)),
                    };
                }
            });
        }
        for (r, window) in pending.into_iter().enumerate() {
            if let Some(w) = window {
                self.search_window(data, r, w, hits, cut);
            }
        }
        for &r in &self.unkeyed {
            self.search_window(data, r, Window::whole(from, data.len()), hits, cut);
        }
    }

    /// The window around a keyword occurrence: `max_len` either side (only after it if every match starts with a
    /// keyword), within the line unless multi-line.
    fn window(&self, lines: &mut LineBounds<'_>, r: usize, from: usize, ks: usize, ke: usize) -> (usize, usize) {
        let rule = &self.rules[r];
        let lo = if rule.keyword_start { ks } else { ks.saturating_sub(rule.max_len).max(from) };
        let hi = (ke + rule.max_len).min(lines.data.len());
        match (rule.spec.multiline, rule.keyword_start) {
            (true, _) => (lo, hi),
            // The keyword's own start is on its line.
            (false, true) => (lo, hi.min(lines.end_of(ke))),
            (false, false) => (lines.start_of(ks, lo), hi.min(lines.end_of(ke))),
        }
    }

    /// Runs one rule's regex over a window like an ordinary left-to-right search: each candidate consumes its
    /// bytes whether it is accepted or not, so the work is linear in the window.
    fn search_window(&self, data: &[u8], r: usize, w: Window, hits: &mut Vec<Hit>, cut: &mut Cut) {
        let rule = &self.rules[r];
        let Window { lo, hi, .. } = w;
        let mut caps = None;
        let mut lower = Vec::new();
        // One search from `at`; a candidate is recorded (if accepted) and noted for the stream's cut. Returns where
        // the next search starts, or `None` when no candidate was found.
        let mut search = |at: usize, anchored: bool| -> Option<usize> {
            // Most keywords sit in windows too short for their rule's shortest match (a `path` is no Airtable token).
            if at >= hi || hi - at < rule.min_len {
                return None;
            }
            if let Some(b) = rule.required_byte
                && memchr::memchr(b, &data[at..hi]).is_none()
            {
                return None;
            }
            // Compiled on first use, so only after the checks above: a rule none of whose windows pass them costs
            // no compile.
            let (regex, secret_group) = rule.regex()?;
            let input = Input::new(data).span(at..hi).anchored(if anchored { Anchored::Yes } else { Anchored::No });
            let m = regex.search(&input)?;
            let secret = match *secret_group {
                None => (m.start(), m.end()),
                Some(g) => {
                    // Groups only for candidates, which are rare: the same match again, anchored at both ends.
                    let caps = caps.get_or_insert_with(|| regex.create_captures());
                    regex.search_captures(&input.clone().span(m.start()..m.end()).anchored(Anchored::Yes), caps);
                    caps.get_group(g).map_or((m.start(), m.end()), |s| (s.start, s.end))
                }
            };
            cut.note(m.start(), m.end());
            let accepted = secret.1 > secret.0
                && (rule.keywords.is_empty() || contains_keyword(&rule.keywords, &data[m.range()], &mut lower))
                && accept(rule, &data[secret.0..secret.1]);
            if accepted {
                hits.push(Hit { start: secret.0, end: secret.1, detector: Detector::Rule(r), rank: rule.rank() });
            }
            Some(m.end().max(m.start() + 1))
        };
        // Where only a few places can start a match, anchored searches there decide, in order (what a search
        // from the left would find first). A keyword window of a single-line rule lies within one line: if every
        // match starts a line, that place is the window's start, if it starts the line.
        if rule.line_start && !rule.spec.multiline && !rule.keywords.is_empty() {
            if lo == 0 || data[lo - 1] == b'\n' {
                search(lo, true);
            }
            return;
        }
        // If every match starts with a keyword, the places are the keywords' starts.
        if rule.keyword_start
            && let Some(starts) = w.starts()
        {
            let (mut at, mut tried) = (lo, None);
            for s in starts {
                if s >= at && tried.replace(s) != Some(s) {
                    at = search(s, true).unwrap_or(at);
                }
            }
            return;
        }
        let mut at = lo;
        while let Some(next) = search(at, false) {
            at = next;
        }
    }
}

/// A rule's pending search window, and the starts of the first few keyword occurrences that made it.
#[derive(Debug, Clone, Copy)]
struct Window {
    lo: usize,
    hi: usize,
    starts: [usize; Window::STARTS],
    /// Occurrences seen, up to `STARTS + 1` (more than `STARTS`: the starts are not all known).
    occurrences: usize,
}

impl Window {
    /// Beyond this many keyword occurrences, one unanchored search of the window beats an anchored one per start.
    const STARTS: usize = 4;

    fn new(lo: usize, hi: usize, start: usize) -> Window {
        let mut starts = [0; Window::STARTS];
        starts[0] = start;
        Window { lo, hi, starts, occurrences: 1 }
    }

    /// The whole buffer from `from`, for rules without keywords.
    fn whole(from: usize, len: usize) -> Window {
        Window { lo: from, hi: len, starts: [0; Window::STARTS], occurrences: Window::STARTS + 1 }
    }

    fn merge(mut self, lo: usize, hi: usize, start: usize) -> Window {
        self.lo = self.lo.min(lo);
        self.hi = self.hi.max(hi);
        if self.occurrences < Window::STARTS {
            self.starts[self.occurrences] = start;
        }
        self.occurrences = (self.occurrences + 1).min(Window::STARTS + 1);
        self
    }

    /// The keyword starts in increasing order, if all are known.
    fn starts(&self) -> Option<impl Iterator<Item = usize>> {
        if self.occurrences > Window::STARTS {
            return None;
        }
        let mut starts = self.starts;
        starts[..self.occurrences].sort_unstable();
        Some(starts.into_iter().take(self.occurrences))
    }
}

/// Where a stream may cut its buffer. It would like to cut at `fence`; candidates that may straddle a cut between
/// `floor` and `fence` are noted (at most [`Cut::MAX_SPANS`]).
struct Cut {
    fence: Option<usize>,
    floor: usize,
    spans: Vec<(usize, usize)>,
    overflow: bool,
}

impl Cut {
    /// More candidates than this near one cut means hostile input: the stream then cuts at the fence regardless
    /// (exactness gives way to bounded work there).
    const MAX_SPANS: usize = 4096;

    fn new(fence: Option<usize>, hold: usize) -> Cut {
        Cut { fence, floor: fence.map_or(0, |f| f.saturating_sub(hold)), spans: Vec::new(), overflow: false }
    }

    fn note(&mut self, start: usize, end: usize) {
        let Some(fence) = self.fence else { return };
        if start < fence && end > self.floor {
            if self.spans.len() < Cut::MAX_SPANS {
                self.spans.push((start, end));
            } else {
                self.overflow = true;
            }
        }
    }

    /// The latest place at or before the fence inside no noted span; the fence itself if that would go below the
    /// floor or too much was noted.
    fn place(&self) -> Option<usize> {
        let fence = self.fence?;
        if self.overflow {
            return Some(fence);
        }
        let mut at = fence;
        while let Some(start) = self.spans.iter().filter(|&&(s, e)| s < at && at < e).map(|&(s, _)| s).min() {
            if start < self.floor {
                return Some(fence);
            }
            at = start;
        }
        Some(at)
    }
}

/// Line starts and ends for keyword occurrences, which arrive in (nearly) increasing order: each answer reuses
/// the last, so a buffer's newlines are searched about once in all, not once per occurrence (a 2 GB line full of
/// keywords would otherwise cost a search of up to `max_len` bytes per keyword).
struct LineBounds<'a> {
    data: &'a [u8],
    /// Newlines are known up to here: `last_newline` is the last one before it.
    scanned: usize,
    last_newline: Option<usize>,
    /// The first newline at or after `next_from` (`None`: none up to the end).
    next_from: usize,
    next_newline: Option<usize>,
}

impl<'a> LineBounds<'a> {
    fn new(data: &'a [u8]) -> LineBounds<'a> {
        // `next_from` past any offset: nothing is known about newlines after an offset until one is searched.
        LineBounds { data, scanned: 0, last_newline: None, next_from: usize::MAX, next_newline: None }
    }

    /// Where the line holding `at` starts, or `floor` if that is later.
    fn start_of(&mut self, at: usize, floor: usize) -> usize {
        if at < self.scanned {
            // Out of order (a shorter keyword ending later): look back as far as the floor only.
            return memchr::memrchr(b'\n', &self.data[floor..at]).map_or(floor, |p| floor + p + 1);
        }
        if let Some(p) = memchr::memrchr(b'\n', &self.data[self.scanned..at]) {
            self.last_newline = Some(self.scanned + p);
        }
        self.scanned = at;
        self.last_newline.map_or(0, |p| p + 1).max(floor)
    }

    /// Where the line holding `at` ends (its newline, or the end of the data).
    fn end_of(&mut self, at: usize) -> usize {
        let cached = at >= self.next_from && self.next_newline.is_none_or(|n| n >= at);
        if !cached {
            self.next_from = at;
            self.next_newline = memchr::memchr(b'\n', &self.data[at..]).map(|p| at + p);
        }
        self.next_newline.unwrap_or(self.data.len())
    }
}

/// Does `matched` contain one of `keywords` (lowercase), ignoring ASCII case?
fn contains_keyword(keywords: &[Vec<u8>], matched: &[u8], lower: &mut Vec<u8>) -> bool {
    lower.clear();
    lower.extend(matched.iter().map(u8::to_ascii_lowercase));
    keywords.iter().any(|k| memchr::memmem::find(lower, k).is_some())
}

/// Substrings (lowercase) that mark a value as a placeholder, a template or documentation rather than a secret.
const PLACEHOLDERS: &[&[u8]] = &[
    b"example",
    b"xxxxx",
    b"*****",
    b"placeholder",
    b"changeme",
    b"change_me",
    b"change-me",
    b"your_",
    b"your-",
    b"yourapi",
    b"yourtoken",
    b"yoursecret",
    b"dummy",
    b"redacted",
    b"<",
    b">",
    b"${",
    b"{{",
    b"%(",
    b"000000",
    b"123456",
    b"abcdef",
];

fn accept(rule: &Rule, secret: &[u8]) -> bool {
    if let Some(check) = rule.check
        && !check.passes(secret)
    {
        return false;
    }
    if let Some(floor) = rule.spec.entropy
        && shannon_entropy(secret) < floor
    {
        return false;
    }
    let needs_lower = !rule.allow.is_empty() || rule.spec.placeholders;
    if needs_lower {
        let lower = secret.to_ascii_lowercase();
        let found = |needle: &[u8]| memchr::memmem::find(&lower, needle).is_some();
        if rule.allow.iter().any(|a| found(a)) {
            return false;
        }
        if rule.spec.placeholders && (PLACEHOLDERS.iter().any(|p| found(p)) || lower.iter().all(|&b| b == lower[0])) {
            return false;
        }
    }
    true
}

/// Sorts hits and merges overlapping ones: the union of their spans, attributed to the strongest detector (then
/// the longest span, then the earliest rule).
fn merge_overlaps(mut hits: Vec<Hit>) -> Vec<Hit> {
    // The rule's index breaks ties: hits are gathered in an order that depends on where a stream was cut, and the
    // attribution must not.
    let rule_order = |h: &Hit| match h.detector {
        Detector::Rule(i) => i + 1,
        Detector::Known { .. } => 0,
    };
    hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end), rule_order(h)));
    let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        match out.last_mut() {
            Some(last) if h.start < last.end => {
                let better = h.rank > last.rank || (h.rank == last.rank && h.end - h.start > last.end - last.start);
                let end = last.end.max(h.end);
                if better {
                    let start = last.start;
                    *last = h;
                    last.start = start;
                }
                last.end = end;
            }
            _ => out.push(h),
        }
    }
    out
}

/// Counts lines incrementally over a buffer, for hits fed in order.
#[derive(Debug, Default)]
pub(crate) struct LineCounter {
    /// Offset up to which newlines are counted.
    at: usize,
    /// Newlines before `at`, plus the lines of earlier buffers.
    lines: u64,
    /// Offset just past the last newline before `at` (negative offsets mean "in an earlier buffer").
    line_start: i64,
}

impl LineCounter {
    /// A counter for a buffer whose byte `from` is on line `line` (1-based) at byte column `column` (1-based).
    pub(crate) fn starting_at(from: usize, line: u64, column: u64) -> LineCounter {
        LineCounter { at: from, lines: line - 1, line_start: from as i64 + 1 - column as i64 }
    }

    pub(crate) fn position(&mut self, data: &[u8], offset: usize) -> (u64, u64) {
        if offset > self.at {
            let skipped = &data[self.at..offset];
            // memchr's count is vectorised; a search per newline would cost more than the scan on short lines.
            self.lines += memchr::memchr_iter(b'\n', skipped).count() as u64;
            if let Some(nl) = memchr::memrchr(b'\n', skipped) {
                self.line_start = (self.at + nl + 1) as i64;
            }
            self.at = offset;
        }
        (self.lines + 1, (offset as i64 - self.line_start) as u64 + 1)
    }
}

fn random_key() -> [u8; 32] {
    // A process-wide key: fingerprints agree between the scanners of one process.
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    *KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).expect("the OS random source works");
        k
    })
}
