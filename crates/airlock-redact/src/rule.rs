//! Detection rules: data, not code.
//!
//! # Why rules are TOML
//! Credential formats change every month and every team has in-house tokens. A rule is therefore a record in a
//! TOML file that anyone can read, review and extend, not a function compiled into the binary. The built-in rules
//! (under `rules/` in this crate, compiled in with `include_str!`) are written by us from the public token format
//! specifications; users add their own files with [`RuleSet::add_toml`].
//!
//! # The format
//! ```toml
//! [[rule]]
//! id = "github-pat-classic"            # unique, lowercase, [a-z0-9-]; shown as [REDACTED:github-pat-classic]
//! family = "github"                    # groups rules in reports and benchmarks
//! category = "secret"                  # "secret" (default) or "pii"
//! description = "GitHub personal access token (classic)"
//! keywords = ["ghp_"]                  # ASCII, matched case-insensitively; the match must contain one
//! regex = '''\bghp_[0-9A-Za-z]{36}\b'''
//! check = "github-crc32"               # optional: a checksum or structural validator (see `checks`)
//! entropy = 3.0                        # optional: minimum Shannon entropy (bits per byte) of the secret
//! max_len = 64                         # optional: longest possible match (default 256; at most 16384)
//! multiline = false                    # optional: may a match span lines (PEM blocks)
//! keep_prefix = 4                      # optional: bytes of the secret kept by shape-keeping masking
//! placeholders = true                  # optional: drop secrets that look like placeholders (default true)
//! allow = ["EXAMPLE"]                  # optional: drop secrets containing one of these (case-insensitive)
//! positive = ["GITHUB_TOKEN=ghp_..."]  # at least one text the rule must find
//! negative = ["ghp_tooShort"]          # at least one text it must not find
//! ```
//! The regex is compiled over bytes with Unicode off: `\b`, `\w`, `\d` and `\s` are ASCII, and `.` matches any
//! byte but `\n`. Its longest possible match must be bounded and at most `max_len` (so `{1,64}`, never `+` or
//! `*`): that bound is what makes a stream's carry-over window sufficient. A group named `secret` marks the part
//! that is the secret (what is masked, measured for entropy and checked); without it the whole match is the
//! secret. Matching uses only linear-time engines.
//!
//! # Failing closed
//! A rule file that does not parse, an unknown field, a duplicate id, a regex that does not compile or exceeds
//! the size limit, an unknown check or a rule without examples is an error naming the file and the rule. Nothing
//! is half-loaded: [`RuleSet::add_toml`] adds all of a file's rules or none.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, OnceLock};

use regex_automata::meta;
use regex_automata::util::syntax;
use serde::Deserialize;

use crate::checks::Check;

/// Default for [`RuleSpec::max_len`].
pub const DEFAULT_MAX_LEN: usize = 256;
/// Upper bound on [`RuleSpec::max_len`]: the streaming window holds back this many bytes at most.
pub const MAX_MAX_LEN: usize = 16 * 1024;
/// Compiled-size limit per regex: a rule that needs more is almost certainly a mistake (a huge bounded repeat).
const REGEX_SIZE_LIMIT: usize = 4 << 20;

/// What a rule finds: a credential, or a kind of personal data that can be switched off on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    #[default]
    Secret,
    Pii,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Secret => "secret",
            Category::Pii => "pii",
        }
    }
}

/// One rule as written in a rule file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub id: String,
    pub family: String,
    #[serde(default)]
    pub category: Category,
    pub description: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    pub regex: String,
    #[serde(default)]
    pub check: Option<String>,
    #[serde(default)]
    pub entropy: Option<f64>,
    #[serde(default)]
    pub max_len: Option<usize>,
    #[serde(default)]
    pub multiline: bool,
    #[serde(default)]
    pub keep_prefix: usize,
    #[serde(default = "yes")]
    pub placeholders: bool,
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub positive: Vec<String>,
    #[serde(default)]
    pub negative: Vec<String>,
}

fn yes() -> bool {
    true
}

impl fmt::Debug for RuleSpec {
    // The examples are fake secrets, but they still look like secrets in a log: leave them out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleSpec").field("id", &self.id).field("family", &self.family).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

/// A rule file or rule could not be used. Names the file and the rule; never carries example text.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("rule file {file}: {reason}")]
    Parse { file: String, reason: String },
    #[error("rule file {file}: has no rules")]
    Empty { file: String },
    #[error("rule file {file}: rule {id:?}: {reason}")]
    Invalid { file: String, id: String, reason: String },
}

/// A rule's regex and the index of its `secret` capture group, if it has one.
pub(crate) type CompiledRegex = (meta::Regex, Option<usize>);

/// A compiled rule. Cloning is cheap (the compiled regex is shared).
#[derive(Clone)]
pub struct Rule {
    pub(crate) spec: RuleSpec,
    /// Compiled on first use (most rules never fire in a given scan, and compiling all of them up front cost
    /// 180 ms): the regex, and the index of its `secret` capture group if it has one.
    pub(crate) compiled: Arc<OnceLock<Option<CompiledRegex>>>,
    pub(crate) check: Option<Check>,
    pub(crate) max_len: usize,
    /// Every match is at least this long: a shorter window holds none.
    pub(crate) min_len: usize,
    /// Every match holds this byte, which keywords do not: a window without it holds none.
    pub(crate) required_byte: Option<u8>,
    /// Every match starts at the start of a line: within one line, one anchored search decides.
    pub(crate) line_start: bool,
    /// Every match starts with one of the rule's keywords: a window need not reach back before its keyword, and
    /// a window holding one keyword occurrence is searched once, anchored there.
    pub(crate) keyword_start: bool,
    /// Lowercased keywords.
    pub(crate) keywords: Vec<Vec<u8>>,
    /// Lowercased `allow` strings.
    pub(crate) allow: Vec<Vec<u8>>,
    /// Where this rule came from (a file name), for error messages and `--list-rules`.
    pub(crate) origin: String,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule").field("id", &self.spec.id).field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl Rule {
    /// The compiled regex and its `secret` group. `None` only if a pattern that passed validation fails to
    /// compile later (it cannot for user files, which are compiled at load); the rule then finds nothing.
    pub(crate) fn regex(&self) -> Option<&CompiledRegex> {
        self.compiled.get_or_init(|| compile_with_group(&self.spec.regex).ok()).as_ref()
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }
    pub fn family(&self) -> &str {
        &self.spec.family
    }
    pub fn category(&self) -> Category {
        self.spec.category
    }
    pub fn description(&self) -> &str {
        &self.spec.description
    }
    pub fn spec(&self) -> &RuleSpec {
        &self.spec
    }
    pub fn origin(&self) -> &str {
        &self.origin
    }
    pub fn max_len(&self) -> usize {
        self.max_len
    }
    /// Generic rules (`family = "generic"`) lose to any specific rule that finds the same bytes.
    pub(crate) fn rank(&self) -> u8 {
        match (self.check.is_some(), self.spec.family.as_str()) {
            (true, _) => 3,
            (false, "generic") => 1,
            _ => 2,
        }
    }
}

/// The built-in rule files, in load order.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    ("cloud.toml", include_str!("../rules/cloud.toml")),
    ("vcs-ci.toml", include_str!("../rules/vcs-ci.toml")),
    ("payment.toml", include_str!("../rules/payment.toml")),
    ("messaging.toml", include_str!("../rules/messaging.toml")),
    ("ai.toml", include_str!("../rules/ai.toml")),
    ("saas.toml", include_str!("../rules/saas.toml")),
    ("database.toml", include_str!("../rules/database.toml")),
    ("keys.toml", include_str!("../rules/keys.toml")),
    ("generic.toml", include_str!("../rules/generic.toml")),
    ("pii.toml", include_str!("../rules/pii.toml")),
];

/// An ordered, validated collection of rules. Build a [`crate::Scanner`] from it.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub(crate) rules: Vec<Rule>,
}

impl RuleSet {
    /// No rules (add files with [`RuleSet::add_toml`]).
    pub fn empty() -> RuleSet {
        RuleSet::default()
    }

    /// The rules shipped with Airlock.
    pub fn builtin() -> RuleSet {
        let mut set = RuleSet::empty();
        for (name, text) in BUILTIN_FILES {
            // The built-in files are tested (every regex compiles and runs on its examples); a failure here is a
            // build defect, not user input. Their regexes compile on first use.
            let parsed: RuleFile = toml::from_str(text).unwrap_or_else(|e| panic!("built-in rules {name}: {e}"));
            set.add_checked(name, parsed.rule, true, false).unwrap_or_else(|e| panic!("built-in rules: {e}"));
        }
        set
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.spec.id == id)
    }

    /// Parses and compiles every rule of one file and adds them all, or returns the first error and adds none.
    pub fn add_toml(&mut self, file: &str, text: &str) -> Result<(), RuleError> {
        let parsed: RuleFile = toml::from_str(text)
            .map_err(|e| RuleError::Parse { file: file.to_string(), reason: e.message().to_string() })?;
        if parsed.rule.is_empty() {
            return Err(RuleError::Empty { file: file.to_string() });
        }
        self.add_specs(file, parsed.rule)
    }

    /// Adds rules already in memory, all or none. Each needs positive and negative examples.
    pub fn add_specs(&mut self, file: &str, specs: Vec<RuleSpec>) -> Result<(), RuleError> {
        self.add_checked(file, specs, true, true)
    }

    /// Adds rules converted from another tool's format (say, a gitleaks config), which come without examples;
    /// everything else is validated as for [`RuleSet::add_specs`].
    pub fn add_imported(&mut self, file: &str, specs: Vec<RuleSpec>) -> Result<(), RuleError> {
        self.add_checked(file, specs, false, true)
    }

    fn add_checked(
        &mut self,
        file: &str,
        specs: Vec<RuleSpec>,
        need_examples: bool,
        compile_now: bool,
    ) -> Result<(), RuleError> {
        let mut seen: HashSet<String> = self.rules.iter().map(|r| r.spec.id.clone()).collect();
        let mut compiled = Vec::with_capacity(specs.len());
        for spec in specs {
            let id = spec.id.clone();
            let invalid = |reason: String| RuleError::Invalid { file: file.to_string(), id: id.clone(), reason };
            if !seen.insert(spec.id.clone()) {
                return Err(invalid("a rule with this id is already loaded".into()));
            }
            compiled.push(compile(spec, file, need_examples, compile_now).map_err(invalid)?);
        }
        self.rules.extend(compiled);
        Ok(())
    }

    /// Drops rules by id (a user's `disable = [...]`). Unknown ids are returned so the caller can refuse them.
    pub fn disable(&mut self, ids: &[String]) -> Vec<String> {
        let unknown = ids.iter().filter(|id| self.get(id).is_none()).cloned().collect();
        self.rules.retain(|r| !ids.contains(&r.spec.id));
        unknown
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-')
}

/// Compiles a rule's regex: bytes, ASCII classes and boundaries, linear-time engines only.
pub fn compile_regex(pattern: &str) -> Result<meta::Regex, String> {
    meta::Builder::new()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(
            meta::Config::new()
                .utf8_empty(false)
                // The bounded backtracker is linear too (it never revisits a (state, position) pair), but it is
                // only used on small inputs anyway; the lazy DFA does the work.
                .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
                .hybrid_cache_capacity(2 << 20),
        )
        .build(pattern)
        .map_err(|e| format!("regex does not compile: {e}"))
}

/// The regex and the index of its `secret` group.
fn compile_with_group(pattern: &str) -> Result<CompiledRegex, String> {
    let regex = compile_regex(pattern)?;
    let group = regex.group_info().to_index(regex_automata::PatternID::ZERO, "secret");
    Ok((regex, group))
}

/// What the engine needs to know about a regex beyond compiling it.
struct Shape {
    /// The longest match, in bytes (`None`: unbounded).
    longest: Option<usize>,
    /// The shortest match, in bytes.
    shortest: usize,
    /// Every match starts at the start of a line (`(?m:^)`).
    line_start: bool,
    /// Every match starts with one of these literals (`None`: no finite set is known).
    prefixes: Option<Vec<Vec<u8>>>,
    /// Bytes every match contains.
    required: Vec<u8>,
}

fn shape(pattern: &str) -> Result<Shape, String> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .map_err(|e| format!("regex does not compile: {e}"))?;
    let props = hir.properties();
    // Folded first: `(?i:secret)` would otherwise give 64 literals, and longer words more than the extractor keeps.
    let seq = regex_syntax::hir::literal::Extractor::new()
        .kind(regex_syntax::hir::literal::ExtractKind::Prefix)
        .extract(&fold_case(&hir));
    Ok(Shape {
        longest: props.maximum_len(),
        shortest: props.minimum_len().unwrap_or(0),
        line_start: props.look_set_prefix().contains(regex_syntax::hir::Look::StartLF),
        prefixes: seq.literals().map(|lits| lits.iter().map(|l| l.as_bytes().to_vec()).collect()),
        required: required_bytes(&hir),
    })
}

/// Bytes that every match of `hir` contains (not all of them: literal bytes in sequences, through groups,
/// repeats of at least one, and alternations whose every branch requires them).
fn required_bytes(hir: &regex_syntax::hir::Hir) -> Vec<u8> {
    use regex_syntax::hir::HirKind;
    let mut out: Vec<u8> = match hir.kind() {
        HirKind::Literal(lit) => lit.0.to_vec(),
        HirKind::Capture(cap) => required_bytes(&cap.sub),
        HirKind::Repetition(rep) if rep.min >= 1 => required_bytes(&rep.sub),
        HirKind::Concat(subs) => subs.iter().flat_map(required_bytes).collect(),
        HirKind::Alternation(subs) => {
            let mut each = subs.iter().map(required_bytes);
            let first = each.next().unwrap_or_default();
            each.fold(first, |acc, next| acc.into_iter().filter(|b| next.contains(b)).collect())
        }
        _ => Vec::new(),
    };
    out.sort_unstable();
    out.dedup();
    out
}

/// Of the bytes every match contains, one that ordinary text seldom holds and no keyword contains (a keyword's
/// window always holds its keyword): a window without it holds no match. `@` in a URL with credentials, say.
fn rare_required_byte(required: &[u8], keywords: &[Vec<u8>]) -> Option<u8> {
    const RARE_FIRST: &[u8] = b"@|~^$!#%&*+?;<>[]{}\\`";
    RARE_FIRST.iter().copied().find(|b| required.contains(b) && !keywords.iter().any(|k| k.contains(b)))
}

/// `hir` with every class that is one letter in either case (`[Ss]`, what `(?i:s)` becomes) replaced by the
/// lowercase letter. The result matches a different language; it is only for comparing prefixes with keywords,
/// which ignore case anyway.
fn fold_case(hir: &regex_syntax::hir::Hir) -> regex_syntax::hir::Hir {
    use regex_syntax::hir::{Capture, Class, Hir, HirKind, Repetition};
    match hir.kind() {
        HirKind::Class(Class::Bytes(class)) => match class.ranges() {
            [upper, lower]
                if upper.start() == upper.end()
                    && lower.start() == lower.end()
                    && upper.start().is_ascii_uppercase()
                    && lower.start() == upper.start().to_ascii_lowercase() =>
            {
                Hir::literal([lower.start()])
            }
            _ => hir.clone(),
        },
        HirKind::Repetition(rep) => Hir::repetition(Repetition { sub: Box::new(fold_case(&rep.sub)), ..rep.clone() }),
        HirKind::Capture(cap) => Hir::capture(Capture { sub: Box::new(fold_case(&cap.sub)), ..cap.clone() }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(fold_case).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(fold_case).collect()),
        _ => hir.clone(),
    }
}

/// Does every match start with one of `keywords` (lowercase; compared ignoring ASCII case)? Then the prefilter's
/// keyword occurrences are the only places a match can start.
fn starts_with_keyword(prefixes: Option<&[Vec<u8>]>, keywords: &[Vec<u8>]) -> bool {
    let Some(prefixes) = prefixes else { return false };
    !prefixes.is_empty()
        && prefixes.iter().all(|p| keywords.iter().any(|k| p.len() >= k.len() && p[..k.len()].eq_ignore_ascii_case(k)))
}

fn compile(spec: RuleSpec, origin: &str, need_examples: bool, compile_now: bool) -> Result<Rule, String> {
    if !valid_id(&spec.id) {
        return Err("ids are 1 to 64 characters of a-z, 0-9 and '-'".into());
    }
    if spec.family.is_empty() || !valid_id(&spec.family) {
        return Err("family must be a non-empty id ([a-z0-9-])".into());
    }
    if spec.description.trim().is_empty() {
        return Err("description is empty".into());
    }
    let mut keywords = Vec::new();
    for k in &spec.keywords {
        if k.is_empty() || !k.is_ascii() {
            return Err(format!("keyword {k:?} must be non-empty ASCII"));
        }
        keywords.push(k.to_ascii_lowercase().into_bytes());
    }
    if keywords.is_empty() && spec.category == Category::Secret {
        return Err("a secret rule needs at least one keyword (the prefilter finds candidates by keyword)".into());
    }
    let max_len = spec.max_len.unwrap_or(DEFAULT_MAX_LEN);
    if max_len == 0 || max_len > MAX_MAX_LEN {
        return Err(format!("max_len must be 1..={MAX_MAX_LEN}"));
    }
    // A match can never be longer than max_len: that bound is what makes a stream's carry-over window exact (a
    // split stream finds what the whole buffer does) and keeps every candidate's cost bounded.
    let Shape { longest, shortest, line_start, prefixes, required } = shape(&spec.regex)?;
    let keyword_start = starts_with_keyword(prefixes.as_deref(), &keywords);
    let required_byte = if keywords.is_empty() { None } else { rare_required_byte(&required, &keywords) };
    match longest {
        Some(n) if n <= max_len => {}
        Some(n) => return Err(format!("regex can match {n} bytes, more than max_len = {max_len}")),
        None => {
            return Err(format!(
                "regex has no upper bound on its match length: use bounded repeats ({{1,64}}, not + or *) within \
                 max_len = {max_len}"
            ));
        }
    }
    let compiled = Arc::new(OnceLock::new());
    if compile_now {
        let (regex, group) = compile_with_group(&spec.regex)?;
        if regex.is_match(b"".as_slice()) {
            return Err("regex matches the empty string".into());
        }
        let _ = compiled.set(Some((regex, group)));
    }
    let check = match &spec.check {
        None => None,
        Some(name) => Some(Check::from_name(name).ok_or_else(|| {
            format!("unknown check {name:?} (known: {})", Check::names().collect::<Vec<_>>().join(", "))
        })?),
    };
    if let Some(e) = spec.entropy
        && !(0.0..=8.0).contains(&e)
    {
        return Err(format!("entropy {e} is outside 0..=8 bits per byte"));
    }
    if need_examples && (spec.positive.is_empty() || spec.negative.is_empty()) {
        return Err("a rule needs at least one positive and one negative example".into());
    }
    let allow = spec.allow.iter().map(|a| a.to_ascii_lowercase().into_bytes()).collect();
    Ok(Rule {
        compiled,
        check,
        max_len,
        min_len: shortest,
        required_byte,
        line_start,
        keyword_start,
        keywords,
        allow,
        origin: origin.to_string(),
        spec,
    })
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The engine's shortcuts rest on these facts about a regex; a wrong "yes" would lose findings.
    #[test]
    fn shape_knows_which_rules_start_at_a_keyword_or_a_line() {
        let set = RuleSet::builtin();
        let rule = |id: &str| set.get(id).unwrap_or_else(|| panic!("{id} is built in"));
        assert!(rule("github-pat-classic").keyword_start);
        assert!(rule("asana-personal-access-token").keyword_start, "alternated prefixes 1/ and 2/");
        assert!(!rule("generic-password-assignment").keyword_start, "the name may come before the keyword");
        assert!(!rule("aws-secret-access-key").keyword_start);
        assert!(rule("generic-env-secret").line_start);
        assert!(!rule("generic-secret-assignment").line_start);
        // A prefix shorter than the keyword proves nothing; so does a keyword that only occurs later.
        let kw = |k: &str| vec![k.as_bytes().to_vec()];
        assert!(starts_with_keyword(Some(&[b"GHP_".to_vec()]), &kw("ghp_")), "keywords ignore case");
        assert!(!starts_with_keyword(Some(&[b"gh".to_vec()]), &kw("ghp_")));
        assert!(!starts_with_keyword(Some(&[b"x_ghp_".to_vec()]), &kw("ghp_")));
        assert!(!starts_with_keyword(Some(&[]), &kw("ghp_")));
        assert!(!starts_with_keyword(None, &kw("ghp_")));
        let s = shape(r"(?i:token)[=:](?P<secret>[a-z]{8})").expect("parses");
        assert!(starts_with_keyword(s.prefixes.as_deref(), &kw("token")));
        let s = shape(r"(?i:secret|encryption[_\-]?key|api[_\-]?secret)\s{0,2}=").expect("parses");
        let kws =
            [b"secret".to_vec(), b"encryption_key".to_vec(), b"encryption-key".to_vec(), b"encryptionkey".to_vec()];
        assert!(!starts_with_keyword(s.prefixes.as_deref(), &kws), "api_secret starts with no keyword");
        let kws = [kws.as_slice(), &[b"api_secret".to_vec(), b"api-secret".to_vec(), b"apisecret".to_vec()]].concat();
        assert!(starts_with_keyword(s.prefixes.as_deref(), &kws), "long case-insensitive words are still seen");
        let s = shape(r"[a-z]{0,4}token[=:](?P<secret>[a-z]{8})").expect("parses");
        assert!(!starts_with_keyword(s.prefixes.as_deref(), &kw("token")));
    }

    /// A window without a byte every match needs is skipped, so "needs" must be exact.
    #[test]
    fn required_bytes_are_those_every_match_holds() {
        let req = |p: &str| shape(p).expect("parses").required;
        assert_eq!(req(r"https?://[a-z]{0,9}:(?P<s>[a-z]{1,9})@[a-z]"), b"/:@hpt".to_vec(), "s? is optional");
        assert_eq!(req(r"(?:a@b|c@d)"), b"@".to_vec(), "in every branch");
        assert_eq!(req(r"(?:a@b|cd)"), Vec::<u8>::new(), "not in every branch");
        assert_eq!(req(r"x(?:@y){0,3}"), b"x".to_vec(), "an optional repeat requires nothing");
        assert_eq!(req(r"x(?:@y){1,3}"), b"@xy".to_vec());
        let kw = |k: &str| vec![k.as_bytes().to_vec()];
        assert_eq!(rare_required_byte(b"/:@hpst", &kw("https://")), Some(b'@'));
        assert_eq!(rare_required_byte(b"/:@hpst", &kw("user@")), None, "a keyword's own byte proves nothing");
    }
}
