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
//! A regex match (never longer than the rule's `max_len`: rules are validated for that) that contains one of the rule's keywords, whose secret part
//! passes the rule's check, entropy floor, allow-list and the placeholder filter. Findings that overlap are merged
//! into one that covers them all (so the mask hides every byte any detector claimed), attributed to the strongest
//! detector: a known value, then a rule with a checksum, then a specific rule, then a generic one.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex_automata::Input;

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
    keywords: Option<AhoCorasick>,
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
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&keyword_list)
                    .map_err(|e| ScanError::Keywords(e.to_string()))?,
            )
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
        let hits = self.hits(data);
        let mut out = Vec::with_capacity(data.len());
        let mut at = 0;
        for h in &hits {
            out.extend_from_slice(&data[at..h.start]);
            style.mask(self.hit_rule_id(h), self.keep_prefix(h), &data[h.start..h.end], &mut out);
            at = h.end;
        }
        out.extend_from_slice(&data[at..]);
        let mut lines = LineCounter::default();
        let findings = hits.iter().map(|h| self.finding(data, h, 0, &mut lines)).collect();
        (out, findings)
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
        let mut hits = Vec::new();
        self.rule_hits(data, &mut hits);
        if let Some(known) = &self.known {
            known.find_all(data, |m| {
                hits.push(Hit {
                    start: m.start,
                    end: m.end,
                    detector: Detector::Known { source: m.source.clone(), encoding: m.encoding },
                    rank: 4,
                })
            });
        }
        merge_overlaps(hits)
    }

    fn rule_hits(&self, data: &[u8], hits: &mut Vec<Hit>) {
        // Keyword occurrences per rule, in order of position.
        let mut occurrences: Vec<(u32, usize, usize)> = Vec::new();
        if let Some(ac) = &self.keywords {
            for m in ac.find_overlapping_iter(data) {
                for &rule in &self.keyword_rules[m.pattern().as_usize()] {
                    occurrences.push((rule, m.start(), m.end()));
                }
            }
        }
        occurrences.sort_unstable();
        let mut i = 0;
        while i < occurrences.len() {
            let rule_index = occurrences[i].0;
            let mut j = i;
            while j < occurrences.len() && occurrences[j].0 == rule_index {
                j += 1;
            }
            self.run_rule(data, rule_index as usize, &occurrences[i..j], hits);
            i = j;
        }
        for &r in &self.unkeyed {
            self.search_window(data, r, 0, data.len(), &[], hits);
        }
    }

    /// Runs one rule's regex in the merged windows around its keyword occurrences.
    fn run_rule(&self, data: &[u8], r: usize, occurrences: &[(u32, usize, usize)], hits: &mut Vec<Hit>) {
        let rule = &self.rules[r];
        let mut window: Option<(usize, usize)> = None;
        for &(_, ks, ke) in occurrences {
            let (mut lo, mut hi) = (ks.saturating_sub(rule.max_len), (ke + rule.max_len).min(data.len()));
            if !rule.spec.multiline {
                lo = memchr::memrchr(b'\n', &data[lo..ks]).map_or(lo, |p| lo + p + 1);
                hi = memchr::memchr(b'\n', &data[ke..hi]).map_or(hi, |p| ke + p);
            }
            window = match window {
                Some((wlo, whi)) if lo <= whi => Some((wlo, whi.max(hi))),
                Some((wlo, whi)) => {
                    self.search_window(data, r, wlo, whi, occurrences, hits);
                    Some((lo, hi))
                }
                None => Some((lo, hi)),
            };
        }
        if let Some((wlo, whi)) = window {
            self.search_window(data, r, wlo, whi, occurrences, hits);
        }
    }

    fn search_window(
        &self,
        data: &[u8],
        r: usize,
        lo: usize,
        hi: usize,
        occurrences: &[(u32, usize, usize)],
        hits: &mut Vec<Hit>,
    ) {
        let rule = &self.rules[r];
        let mut caps = rule.secret_group.map(|_| rule.regex.create_captures());
        let mut at = lo;
        while at < hi {
            let input = Input::new(data).span(at..hi);
            let (m_start, m_end, secret) = match caps.as_mut() {
                Some(caps) => {
                    rule.regex.search_captures(&input, caps);
                    let Some(m) = caps.get_match() else { break };
                    let group = rule.secret_group.and_then(|g| caps.get_group(g));
                    let secret = group.map_or((m.start(), m.end()), |g| (g.start, g.end));
                    (m.start(), m.end(), secret)
                }
                None => {
                    let Some(m) = rule.regex.search(&input) else { break };
                    (m.start(), m.end(), (m.start(), m.end()))
                }
            };
            // An accepted match consumes its bytes; a rejected one does not (the next candidate may start inside
            // it). So what is found at a position never depends on where the search began, which is what makes a
            // split stream find exactly what the whole buffer does.
            let accepted = secret.1 > secret.0
                && (rule.keywords.is_empty() || contains_occurrence(occurrences, m_start, m_end))
                && accept(rule, &data[secret.0..secret.1]);
            if accepted {
                hits.push(Hit { start: secret.0, end: secret.1, detector: Detector::Rule(r), rank: rule.rank() });
                at = m_end.max(m_start + 1);
            } else {
                at = m_start + 1;
            }
        }
    }
}

/// Does some keyword occurrence lie entirely inside `start..end`?
fn contains_occurrence(occurrences: &[(u32, usize, usize)], start: usize, end: usize) -> bool {
    let first = occurrences.partition_point(|&(_, ks, _)| ks < start);
    occurrences[first..].iter().take_while(|&&(_, ks, _)| ks < end).any(|&(_, _, ke)| ke <= end)
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
    hits.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
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
    /// A counter for a buffer that starts on line `line` (1-based) at byte column `column` (1-based).
    pub(crate) fn starting_at(line: u64, column: u64) -> LineCounter {
        LineCounter { at: 0, lines: line - 1, line_start: 1 - column as i64 }
    }

    pub(crate) fn position(&mut self, data: &[u8], offset: usize) -> (u64, u64) {
        if offset > self.at {
            for nl in memchr::memchr_iter(b'\n', &data[self.at..offset]) {
                self.lines += 1;
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
