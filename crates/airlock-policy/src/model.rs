//! The validated model: every name resolved, every pattern parsed, every variable expanded.
//!
//! Why a separate pass between TOML and Cedar: errors such as "tool `web_fetch` uses secret `GITHUB_TOKN`, which
//! is not declared" need the config's own positions and vocabulary, which Cedar cannot give. Everything that
//! survives this pass is well formed, so the compiler ([`crate::compile`]) cannot fail on user input except for
//! user-written Cedar. All problems are collected, so one `policy check` shows them all.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use toml::Spanned;

use crate::config::{self, ConfigFile, InjectRecipe, Limits, TlsInspect};
use crate::error::{ConfigError, Diagnostic, Severity, SourceText};
use crate::load::Document;
use crate::normalize::{self, HostPattern, HostPatternKind};
use crate::profile::{Profile, ProfileSettings};
pub use crate::redact::{DEFAULT_PII_FAMILIES, PII_FAMILIES};
use crate::refs::{self, Reference};
pub use crate::sandbox::env_allowed;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    pub value: T,
    pub span: Range<usize>,
}

/// Which tools an agent or role may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolGrant {
    All,
    Some(BTreeSet<String>),
}

impl ToolGrant {
    pub fn allows(&self, tool: &str) -> bool {
        match self {
            ToolGrant::All => true,
            ToolGrant::Some(s) => s.contains(tool),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub id: String,
    pub roles: Vec<String>,
    /// Parent first, then its parent, up to the root.
    pub ancestors: Vec<String>,
    pub tools: ToolGrant,
    pub max_risk: u8,
    pub schedule: Option<Window>,
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct RoleSpec {
    pub id: String,
    pub permissions: Vec<At<Permission>>,
    pub tools: ToolGrant,
}

/// An API permission: `*`, `KIND:*`, `KIND:VERB`, `KIND:own:*`, `KIND:own:VERB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permission {
    All,
    Kind { kind: String, own: bool, verb: Option<String> },
}

impl Permission {
    pub fn parse(s: &str) -> Result<Permission, String> {
        let word = |w: &str| {
            !w.is_empty()
                && w.len() <= 64
                && w.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        let bad =
            || format!("invalid permission {s:?}: expected \"*\", \"KIND:*\", \"KIND:VERB\" or \"KIND:own:VERB\"");
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["*"] => Ok(Permission::All),
            [kind, rest @ ..] if word(kind) => {
                let (own, verb) = match rest {
                    ["*"] => (false, None),
                    [v] if word(v) => (false, Some(v.to_string())),
                    ["own", "*"] => (true, None),
                    ["own", v] if word(v) => (true, Some(v.to_string())),
                    _ => return Err(bad()),
                };
                Ok(Permission::Kind { kind: kind.to_string(), own, verb })
            }
            _ => Err(bad()),
        }
    }
}

/// A weekly window in UTC: days as a bit set (bit 0 = Monday), minutes since midnight, end exclusive. A start
/// after the end wraps past midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub days: u8,
    pub start_minute: u16,
    pub end_minute: u16,
    pub text: String,
}

impl Window {
    /// Every minute of the week this window allows, `outer` allows too.
    pub fn within(&self, outer: &Window) -> bool {
        (0..7u8).all(|d| (0..24 * 60u16).all(|m| !self.contains(d, m) || outer.contains(d, m)))
    }

    pub fn contains(&self, weekday: u8, minute: u16) -> bool {
        if self.days & (1 << weekday) == 0 {
            return false;
        }
        if self.start_minute <= self.end_minute {
            minute >= self.start_minute && minute < self.end_minute
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }
}

#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub id: String,
    pub network: Vec<NetRule>,
    pub fs_read: FsList,
    pub fs_write: FsList,
    pub fs_exec: FsList,
    pub fs_deny: Vec<At<FsPattern>>,
    pub exec_allow: Vec<At<Program>>,
    pub exec_deny: Vec<At<Program>>,
    pub secrets: Vec<At<String>>,
    /// Effective limits: the tool's own, then `[limits]`, then the profile's defaults.
    pub limits: Limits,
    /// The tool and `[limits]` set no limit at all.
    pub declares_no_limits: bool,
    /// `[tools.NAME] env`: variables passed through to this tool besides [`SandboxSettings::env`] (names, or
    /// prefixes ending in `*`; see [`env_allowed`]).
    pub env: Vec<String>,
    pub max_risk: u8,
    pub schedule: Option<Window>,
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct NetRule {
    pub hosts: Vec<At<HostPattern>>,
    /// Upper-case; empty means any method.
    pub methods: Vec<String>,
    /// Normalised prefixes; empty means any path.
    pub paths: Vec<String>,
    pub max_request_bytes: Option<u64>,
}

/// Allowed entries minus masked ones.
#[derive(Debug, Clone, Default)]
pub struct FsList {
    pub allow: Vec<At<FsPattern>>,
    pub mask: Vec<At<FsPattern>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsPattern {
    /// This path and everything below it.
    Subtree(String),
    /// A glob (`*` stays within one path component, `**` crosses them).
    Glob(String),
}

impl FsPattern {
    pub fn text(&self) -> &str {
        match self {
            FsPattern::Subtree(s) | FsPattern::Glob(s) => s,
        }
    }

    /// Whether this pattern, used as a deny or a `!` mask, covers `path`: a subtree covers itself and everything
    /// below; a glob covers its matches and everything below them (as `compile::fs_cond` compiles it).
    pub fn covers(&self, path: &str) -> bool {
        match self {
            FsPattern::Subtree(s) => path == s || path.starts_with(&format!("{}/", s.trim_end_matches('/'))),
            FsPattern::Glob(g) => [g.clone(), format!("{g}/**")].iter().any(|g| {
                globset::GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .is_ok_and(|g| g.compile_matcher().is_match(path))
            }),
        }
    }
}

/// A program as written and as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub written: String,
    /// Canonical absolute path; `None` when it does not exist on this machine.
    pub resolved: Option<String>,
    /// File name, for name-based denial.
    pub name: String,
}

/// One `[network] allow_private` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateAllow {
    /// An address prefix: the address (host bits zero) and its length.
    Prefix(std::net::IpAddr, u8),
    /// A host name or `*.suffix` (no port) whose answers may be private.
    Host(HostPattern),
}

impl PrivateAllow {
    pub fn parse(s: &str) -> Result<PrivateAllow, String> {
        let s = s.trim();
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        if let Ok(ip) = addr.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len: u8 = match len {
                None => max,
                Some(l) => l.parse().ok().filter(|n| *n <= max).ok_or(format!("prefix length must be 0-{max}"))?,
            };
            let host_bits = match ip {
                std::net::IpAddr::V4(v) => u32::from(v).checked_shl(u32::from(len)).unwrap_or(0) != 0,
                std::net::IpAddr::V6(v) => u128::from(v).checked_shl(u32::from(len)).unwrap_or(0) != 0,
            };
            if host_bits {
                return Err(format!("{s} has bits set after the prefix length: write the network address"));
            }
            return Ok(PrivateAllow::Prefix(ip, len));
        }
        if len.is_some() {
            return Err(format!("{s:?} is neither an address prefix nor a host name"));
        }
        let pattern = HostPattern::parse(s).map_err(|e| e.to_string())?;
        if pattern.port != crate::normalize::PortSpec::Default || pattern.host == crate::normalize::HostPatternKind::Any
        {
            return Err("a host in allow_private takes no port, and cannot be `*`".into());
        }
        Ok(PrivateAllow::Host(pattern))
    }
}

#[derive(Debug, Clone)]
pub struct SecretSpec {
    pub name: String,
    pub hosts: Vec<At<HostPattern>>,
    pub inject: Option<InjectRecipe>,
    /// Lowercased media types whose request bodies are searched for the surrogate.
    pub body_types: Vec<String>,
    /// `[secrets.NAME] env`: the variable holding the surrogate in a sandboxed tool; `None` leaves the name to the
    /// sandbox.
    pub env: Option<String>,
    /// `[secrets.NAME] source`: the store holding the value (`bao://...`), when not the local vault. Its scheme is
    /// checked here, and that the store is configured; the binary parses the rest with the backend.
    pub source: Option<String>,
    pub span: Range<usize>,
}

/// `[secrets.NAME] source`: a scheme Airlock reads, whose store `[backends]` configures where it must.
fn check_source(b: &mut Builder, source: &Spanned<String>, backends: &config::Backends) -> Option<String> {
    match source_problem(source.get_ref(), backends) {
        Some(m) => {
            b.err("source", source.span(), format!("source {m}"));
            None
        }
        None => Some(source.get_ref().clone()),
    }
}

/// What is wrong with a store locator (`bao://...`), as the tail of a message that starts with what holds it; the
/// same rules for a `[secrets.NAME] source` and a `${secret:SCHEME://...}` reference.
fn source_problem(text: &str, backends: &config::Backends) -> Option<String> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Some(format!("{text:?}: expected SCHEME://..., e.g. bao://secret/app#key"));
    };
    let configured = match scheme {
        "bao" | "vault" | "openbao" => backends.bao.is_some(),
        "keyring" | "keyctl" | "env" | "file" => true,
        _ => return Some(format!("{text:?}: unknown scheme {scheme:?}; expected bao, keyring, keyctl, env or file")),
    };
    if !configured {
        return Some(format!("{text:?} needs a [backends.bao] table (address and auth)"));
    }
    if rest.is_empty() || text.chars().any(char::is_control) {
        return Some(format!("{text:?}: nothing after {scheme}://"));
    }
    None
}

/// `[sandbox]`, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSettings {
    /// Variables passed from the caller into every sandboxed tool: names, or prefixes ending in `*` (see
    /// [`env_allowed`]). [`crate::sandbox::DEFAULT_ENV`] when the file does not say.
    pub env: Vec<String>,
    /// `None`: runs are never paused automatically.
    pub auto_pause: Option<AutoPause>,
    /// Whether and at which thresholds `airlock run` scans tool output for prompt injection.
    pub guard_tool_output: crate::config::GuardToolOutput,
    /// Loopback port of the proxy listener inside the sandbox ([`crate::sandbox::DEFAULT_FORWARD_PORT`] unless
    /// set); never 0.
    pub forward_port: u16,
}

/// Pause an agent's runs after `denials` denied egress attempts or leak blocks within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoPause {
    /// At least 1.
    pub denials: u32,
    /// From 1 second to 1 day.
    pub window: std::time::Duration,
}

/// `[redact]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactSettings {
    /// Mask tool output in `airlock run`.
    pub tool_output: bool,
    /// Personal-data families to mask (validated names; default all six).
    pub pii: Vec<String>,
    /// `label` or `shape`.
    pub mask: MaskMode,
    /// Extra rule files, resolved against the config file's directory (not checked for existence here).
    pub rule_files: Vec<std::path::PathBuf>,
    /// Rule ids to turn off (syntax-checked: 1-64 chars of [a-z0-9-]; whether they exist is checked by the binary).
    pub disable: Vec<String>,
}

impl Default for RedactSettings {
    /// What an absent `[redact]` means: tool output masked, the [`DEFAULT_PII_FAMILIES`] (all but IP addresses),
    /// labels, no extra rule files and nothing disabled.
    fn default() -> RedactSettings {
        RedactSettings {
            tool_output: true,
            pii: DEFAULT_PII_FAMILIES.iter().map(|f| f.to_string()).collect(),
            mask: MaskMode::default(),
            rule_files: Vec::new(),
            disable: Vec::new(),
        }
    }
}

/// `[redact] mask`: what a match is replaced with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskMode {
    /// `[REDACTED:rule-id]`.
    #[default]
    Label,
    /// Same length: punctuation and a rule's public prefix kept, every letter and digit `*`.
    Shape,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Model {
    pub profile: Profile,
    pub settings: ProfileSettings,
    pub workspace: String,
    pub home: String,
    pub agents: BTreeMap<String, AgentSpec>,
    pub roles: BTreeMap<String, RoleSpec>,
    pub tools: BTreeMap<String, ToolSpec>,
    pub secrets: BTreeMap<String, SecretSpec>,
    pub network_deny: Vec<At<HostPattern>>,
    /// `[network] allow_private`: what the SSRF check lets through.
    pub allow_private: Vec<At<PrivateAllow>>,
    /// `[network] tls_inspect`.
    pub tls_inspect: TlsInspect,
    /// `[network] tls_passthrough`.
    pub tls_passthrough: Vec<At<HostPattern>>,
    pub fs_deny: Vec<At<FsPattern>>,
    pub exec_deny: Vec<At<Program>>,
    /// Where bare program names are looked up, for config entries and requests alike.
    pub search_path: Vec<std::path::PathBuf>,
    pub block_private: bool,
    pub protect_credentials: bool,
    pub max_request_bytes: Option<u64>,
    pub fail_closed: bool,
    pub record_allows: bool,
    /// `[sandbox]`: what `airlock run` gives the tools it runs.
    pub sandbox: SandboxSettings,
    /// `[redact]`: what `airlock run` masks in the output of the tools it runs.
    pub redact: RedactSettings,
    pub file: ConfigFile,
}

/// Credential stores denied to every tool unless `protect_credentials = false` (dev only).
pub const CREDENTIAL_PATHS: &[&str] = &[
    "${HOME}/.ssh",
    "${HOME}/.aws",
    "${HOME}/.azure",
    "${HOME}/.gnupg",
    "${HOME}/.kube",
    "${HOME}/.docker/config.json",
    "${HOME}/.config/gcloud",
    "${HOME}/.config/gh",
    "${HOME}/.netrc",
    "${HOME}/.git-credentials",
    "${HOME}/.npmrc",
    "${HOME}/.pypirc",
    "${HOME}/.cargo/credentials.toml",
    "${HOME}/.local/share/airlock",
    "${HOME}/.local/share/keyrings",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/proc/*/environ",
    "/proc/*/mem",
];

struct Builder<'a> {
    src: &'a SourceText,
    diags: Vec<Diagnostic>,
    workspace: String,
    home: String,
    search_path: Vec<std::path::PathBuf>,
}

impl Builder<'_> {
    fn err(&mut self, code: &'static str, span: Range<usize>, m: impl Into<String>) {
        let d = self.src.error(code, Some(span), m);
        self.diags.push(d);
    }

    fn id(&mut self, kind: &str, s: &Spanned<String>) -> Option<String> {
        let v = s.get_ref();
        let ok = !v.is_empty()
            && v.len() <= 64
            && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Some(v.clone())
        } else {
            self.err(
                "invalid-id",
                s.span(),
                format!("invalid {kind} id {v:?}: use 1-64 of A-Z a-z 0-9 _ - . (not first)"),
            );
            None
        }
    }

    /// One `env` entry: a variable name, or (with `allow_prefix`) a prefix ending in `*`.
    fn env_pattern(&mut self, s: &Spanned<String>, allow_prefix: bool) -> Option<String> {
        match crate::sandbox::check_pattern(s.get_ref(), allow_prefix) {
            Ok(()) => Some(s.get_ref().clone()),
            Err(m) => {
                self.err("env-name", s.span(), m);
                None
            }
        }
    }

    fn private_allow(&mut self, s: &Spanned<String>) -> Option<At<PrivateAllow>> {
        match PrivateAllow::parse(s.get_ref()) {
            Ok(p) => Some(At { value: p, span: s.span() }),
            Err(e) => {
                self.err("allow-private", s.span(), e);
                None
            }
        }
    }

    fn host_pattern(&mut self, s: &Spanned<String>) -> Option<At<HostPattern>> {
        match HostPattern::parse(s.get_ref()) {
            Ok(p) => Some(At { value: p, span: s.span() }),
            Err(e) => {
                self.err("host-pattern", s.span(), e.to_string());
                None
            }
        }
    }

    /// Expands `${WORKSPACE}` and `${HOME}`; any other `${...}` is an error. `escape` glob-escapes the values, for
    /// a pattern that is a glob.
    fn expand(&mut self, s: &Spanned<String>, escape: bool) -> Option<String> {
        let mut out = String::new();
        let mut rest = s.get_ref().as_str();
        while let Some(pos) = rest.find("${") {
            out.push_str(&rest[..pos]);
            let r = &rest[pos + 2..];
            let Some(end) = r.find('}') else {
                self.err("variable", s.span(), "unterminated ${ in path");
                return None;
            };
            match &r[..end] {
                "WORKSPACE" if escape => out.push_str(&globset::escape(&self.workspace)),
                "HOME" if escape => out.push_str(&globset::escape(&self.home)),
                "WORKSPACE" => out.push_str(&self.workspace),
                "HOME" => out.push_str(&self.home),
                other => {
                    self.err(
                        "variable",
                        s.span(),
                        format!(
                            "unknown variable ${{{other}}} in a path: only ${{WORKSPACE}} and ${{HOME}} expand here"
                        ),
                    );
                    return None;
                }
            }
            rest = &r[end + 1..];
        }
        out.push_str(rest);
        Some(out)
    }

    fn fs_pattern(&mut self, s: &Spanned<String>) -> Option<(bool, At<FsPattern>)> {
        let (negated, body) = match s.get_ref().strip_prefix('!') {
            Some(b) => (true, Spanned::new(s.span(), b.to_string())),
            None => (false, s.clone()),
        };
        // Whether an entry is a glob is decided by what the author wrote: a '[' or '*' that arrives through
        // ${WORKSPACE}, ${HOME} or a symlink's target is part of a name, and read as a glob it would stop the entry
        // matching the very path it names (a deny that denies nothing).
        let written = body.get_ref().replace("${WORKSPACE}", "").replace("${HOME}", "");
        let is_glob = written.contains(['*', '?', '[', ']', '{', '}']);
        let expanded = self.expand(&body, is_glob)?;
        // `**/x` is a glob relative to nothing: anchor it at the root so it matches at any depth.
        let anchored = if expanded.starts_with("**") { format!("/{expanded}") } else { expanded };
        let normalized = if is_glob {
            normalize::normalize_fs_pattern(&anchored)
        } else {
            normalize::normalize_fs_literal_pattern(&anchored)
        };
        let canonical = match normalized {
            Ok(c) => c,
            Err(e) => {
                self.err("path-pattern", s.span(), e.to_string());
                return None;
            }
        };
        let pattern = if is_glob {
            if let Err(e) = globset::GlobBuilder::new(&canonical).literal_separator(true).build() {
                self.err("glob", s.span(), format!("invalid glob {:?}: {}", s.get_ref(), e.kind()));
                return None;
            }
            FsPattern::Glob(canonical)
        } else {
            FsPattern::Subtree(canonical)
        };
        Some((negated, At { value: pattern, span: s.span() }))
    }

    fn fs_list(&mut self, entries: &[Spanned<String>]) -> FsList {
        let mut list = FsList::default();
        for e in entries {
            if let Some((neg, p)) = self.fs_pattern(e) {
                if neg { list.mask.push(p) } else { list.allow.push(p) }
            }
        }
        if list.allow.is_empty() && !list.mask.is_empty() {
            let span = list.mask[0].span.clone();
            self.err("path-pattern", span, "a list with only !masks allows nothing; add the paths it should allow");
        }
        list
    }

    fn fs_deny(&mut self, entries: &[Spanned<String>]) -> Vec<At<FsPattern>> {
        let mut out = Vec::new();
        for e in entries {
            if let Some((neg, p)) = self.fs_pattern(e) {
                if neg {
                    self.err(
                        "path-pattern",
                        e.span(),
                        "!masks are not allowed in a deny list: a deny cannot be undone",
                    );
                } else {
                    out.push(p);
                }
            }
        }
        out
    }

    fn program(&mut self, s: &Spanned<String>) -> Option<At<Program>> {
        let written = s.get_ref().trim();
        if written.is_empty() || written.contains('\0') || (written.contains('/') && !written.starts_with('/')) {
            self.err("program", s.span(), format!("invalid program {written:?}: a name (\"git\") or an absolute path"));
            return None;
        }
        let name = written.rsplit('/').next().unwrap_or(written).to_string();
        let resolved = normalize::resolve_program(written, &self.search_path).ok();
        Some(At { value: Program { written: written.to_string(), resolved, name }, span: s.span() })
    }

    fn window(&mut self, s: &config::Schedule) -> Option<Window> {
        let mut days = 0u8;
        for d in &s.days {
            let bit = match d.get_ref().to_ascii_lowercase().as_str() {
                "mon" => 0,
                "tue" => 1,
                "wed" => 2,
                "thu" => 3,
                "fri" => 4,
                "sat" => 5,
                "sun" => 6,
                other => {
                    self.err(
                        "schedule",
                        d.span(),
                        format!("unknown day {other:?}: use mon, tue, wed, thu, fri, sat, sun"),
                    );
                    return None;
                }
            };
            days |= 1 << bit;
        }
        if s.days.is_empty() {
            days = 0x7f;
        }
        let (start, end, hours_text) = match &s.hours {
            None => (0, 24 * 60, "all day".to_string()),
            Some(h) => {
                let parse = |t: &str| -> Option<u16> {
                    let (hh, mm) = t.trim().split_once(':')?;
                    let (hh, mm): (u16, u16) = (hh.parse().ok()?, mm.parse().ok()?);
                    (hh <= 24 && mm < 60 && hh * 60 + mm <= 24 * 60).then_some(hh * 60 + mm)
                };
                match h.get_ref().split_once('-').and_then(|(a, b)| Some((parse(a)?, parse(b)?))) {
                    Some((a, b)) if a != b => (a, b, h.get_ref().trim().to_string()),
                    _ => {
                        self.err(
                            "schedule",
                            h.span(),
                            format!("invalid hours {:?}: use \"HH:MM-HH:MM\" (UTC)", h.get_ref()),
                        );
                        return None;
                    }
                }
            }
        };
        let day_text = if days == 0x7f {
            "every day".to_string()
        } else {
            let names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
            (0..7).filter(|i| days & (1 << i) != 0).map(|i| names[i]).collect::<Vec<_>>().join(",")
        };
        Some(Window { days, start_minute: start, end_minute: end, text: format!("{day_text} {hours_text} UTC") })
    }

    fn grant(&mut self, entries: &[Spanned<String>], tools: &BTreeMap<Spanned<String>, config::Tool>) -> ToolGrant {
        let mut set = BTreeSet::new();
        for t in entries {
            if t.get_ref() == "*" {
                return ToolGrant::All;
            }
            if tools.keys().any(|k| k.get_ref() == t.get_ref()) {
                set.insert(t.get_ref().clone());
            } else {
                self.err(
                    "unknown-tool",
                    t.span(),
                    format!("unknown tool {:?}: it is not defined under [tools]", t.get_ref()),
                );
            }
        }
        ToolGrant::Some(set)
    }

    fn risk(&mut self, r: Option<u8>, span: Range<usize>) -> u8 {
        match r {
            Some(v) if v > 100 => {
                self.err("max-risk", span, format!("max_risk {v} is out of range 0-100"));
                100
            }
            Some(v) => v,
            None => 100,
        }
    }
}

/// Validates a document into a [`Model`]. Warnings come back with the model; errors fail the whole load.
pub fn build(doc: &Document) -> Result<(Model, Vec<Diagnostic>), ConfigError> {
    let path_text = |p: &std::path::Path| p.to_str().map(str::to_string);
    let (Some(workspace), Some(home)) = (path_text(&doc.workspace), path_text(&doc.home)) else {
        return Err(ConfigError::single(doc.source.error("variables", None, "${WORKSPACE} and ${HOME} must be UTF-8")));
    };
    let file = &doc.file;
    let search_path: Vec<std::path::PathBuf> = file
        .exec
        .search_path
        .clone()
        .map(|v| v.into_iter().map(Into::into).collect())
        .unwrap_or_else(|| normalize::DEFAULT_SEARCH_PATH.iter().map(Into::into).collect());
    let mut b = Builder { src: &doc.source, diags: Vec::new(), workspace, home, search_path: search_path.clone() };
    let settings = doc.settings.clone();
    let whole = 0..0;

    // Safety switches.
    let switch = |s: &Option<Spanned<bool>>| s.as_ref().map(|v| (*v.get_ref(), Some(v.span()))).unwrap_or((true, None));
    let (block_private, bp_span) = switch(&file.network.block_private);
    let (protect_credentials, pc_span) = switch(&file.fs.protect_credentials);
    let (fail_closed, fc_span) = switch(&file.audit.fail_closed);
    let (redact_output, ro_span) = switch(&file.redact.tool_output);
    if !settings.may_disable_safety {
        for (on, span, key) in [
            (block_private, bp_span, "network.block_private"),
            (protect_credentials, pc_span, "fs.protect_credentials"),
            (fail_closed, fc_span, "audit.fail_closed"),
            (redact_output, ro_span, "redact.tool_output"),
        ] {
            if !on {
                let d = doc.source.error(
                    "profile-conflict",
                    span,
                    format!("{key} = false conflicts with profile {}: only dev may turn it off", doc.profile),
                );
                b.diags.push(d);
            }
        }
    }

    // Secrets.
    let mut secrets = BTreeMap::new();
    for (name, meta) in &file.secrets {
        if !refs::valid_secret_name(name.get_ref()) {
            b.err("invalid-id", name.span(), format!("invalid secret name {:?}", name.get_ref()));
            continue;
        }
        let hosts = meta.hosts.iter().filter_map(|h| b.host_pattern(h)).collect();
        if let Some(r) = &meta.inject {
            check_inject(&mut b, r, name.span());
        }
        let mut body_types = Vec::new();
        for t in &meta.body_types {
            let lower = t.trim().to_ascii_lowercase();
            match lower.split_once('/') {
                Some((a, b2)) if !a.is_empty() && !b2.is_empty() && !lower.contains(';') && !lower.contains('*') => {
                    body_types.push(lower)
                }
                _ => b.err(
                    "inject",
                    name.span(),
                    format!("body_types: {t:?} is not a media type such as \"application/json\""),
                ),
            }
        }
        let env = meta.env.as_ref().and_then(|e| b.env_pattern(e, false));
        let source = meta.source.as_ref().and_then(|s| check_source(&mut b, s, &file.backends));
        secrets.insert(
            name.get_ref().clone(),
            SecretSpec {
                name: name.get_ref().clone(),
                hosts,
                inject: meta.inject.clone(),
                body_types,
                env,
                source,
                span: name.span(),
            },
        );
    }
    let sandbox = sandbox_settings(&mut b, &file.sandbox);
    let redact = redact_settings(&mut b, &file.redact, &doc.base_dir);

    // Tools.
    let mut tools = BTreeMap::new();
    for (key, t) in &file.tools {
        let Some(id) = b.id("tool", key) else { continue };
        let mut network = Vec::new();
        for rule in &t.network {
            if rule.hosts.is_empty() {
                b.err("network-rule", key.span(), format!("tool {id}: a [[network]] rule needs at least one host"));
            }
            let hosts = rule.hosts.iter().filter_map(|h| b.host_pattern(h)).collect();
            let mut methods = Vec::new();
            for m in &rule.methods {
                let up = m.get_ref().to_ascii_uppercase();
                if up.is_empty()
                    || up.len() > 32
                    || !up.bytes().all(|c| c.is_ascii_uppercase() || c == b'-' || c == b'_')
                {
                    b.err("method", m.span(), format!("invalid HTTP method {:?}", m.get_ref()));
                } else {
                    methods.push(up);
                }
            }
            let mut paths = Vec::new();
            for p in &rule.paths {
                match normalize::Target::parse(&format!("http://prefix.invalid{}", p.get_ref())) {
                    Ok(t) if p.get_ref().starts_with('/') && t.query.is_none() => paths.push(t.path),
                    Ok(_) => b.err(
                        "path-prefix",
                        p.span(),
                        format!("invalid path prefix {:?}: must start with '/' and have no query", p.get_ref()),
                    ),
                    Err(e) => {
                        b.err("path-prefix", p.span(), format!("invalid path prefix {:?}: {}", p.get_ref(), e.reason))
                    }
                }
            }
            network.push(NetRule { hosts, methods, paths, max_request_bytes: rule.max_request_bytes.map(|s| s.0) });
        }
        let fs_read = b.fs_list(&t.fs.read);
        let fs_write = b.fs_list(&t.fs.write);
        let fs_exec = b.fs_list(&t.fs.exec);
        let fs_deny = b.fs_deny(&t.fs.deny);
        let exec_allow = t.exec.allow.iter().filter_map(|p| b.program(p)).collect();
        let exec_deny = t.exec.deny.iter().filter_map(|p| b.program(p)).collect();
        let env: Vec<String> = t.env.iter().filter_map(|p| b.env_pattern(p, true)).collect();
        let mut used = Vec::new();
        let mut surrogate_vars: BTreeMap<&str, &str> = BTreeMap::new();
        for s in &t.secrets {
            if used.iter().any(|u: &At<String>| u.value == *s.get_ref()) {
                // Each grant compiles to a policy with the secret's name in its id: a repeat would be a second
                // policy with the same id.
                b.err("duplicate", s.span(), format!("tool {id} lists secret {:?} twice", s.get_ref()));
                continue;
            }
            if let Some(spec) = secrets.get(s.get_ref()) {
                used.push(At { value: s.get_ref().clone(), span: s.span() });
                // The surrogate's variable must be unambiguous: not also passed through from the caller, and not
                // shared with another secret of the same tool.
                let Some(var) = spec.env.as_deref() else { continue };
                if let Some(p) = sandbox.env.iter().chain(&env).find(|p| env_allowed(std::slice::from_ref(p), var)) {
                    b.err(
                        "env-name",
                        s.span(),
                        format!(
                            "tool {id} gets secret {}'s surrogate in {var}, but env entry {p:?} passes {var} through \
                             from the caller",
                            spec.name
                        ),
                    );
                } else if let Some(other) = surrogate_vars.insert(var, &spec.name)
                    && other != spec.name
                {
                    b.err(
                        "env-name",
                        s.span(),
                        format!("tool {id} gets secrets {other} and {} in the same variable {var}", spec.name),
                    );
                }
            } else {
                b.err(
                    "unknown-secret",
                    s.span(),
                    format!("tool {id} uses secret {:?}, which is not declared under [secrets]", s.get_ref()),
                );
            }
        }
        let declares_no_limits = t.limits.is_empty() && file.limits.is_empty();
        let limits = t.limits.or(&file.limits).or(&settings.default_limits);
        let max_risk = b.risk(t.max_risk, key.span());
        let schedule = t.schedule.as_ref().and_then(|s| b.window(s));
        tools.insert(
            id.clone(),
            ToolSpec {
                id,
                network,
                fs_read,
                fs_write,
                fs_exec,
                fs_deny,
                exec_allow,
                exec_deny,
                secrets: used,
                limits,
                declares_no_limits,
                env,
                max_risk,
                schedule,
                span: key.span(),
            },
        );
    }

    // Roles.
    let mut roles = BTreeMap::new();
    for (key, r) in &file.roles {
        let Some(id) = b.id("role", key) else { continue };
        let mut permissions = Vec::new();
        for p in &r.permissions {
            match Permission::parse(p.get_ref()) {
                Ok(v) => permissions.push(At { value: v, span: p.span() }),
                Err(m) => b.err("permission", p.span(), m),
            }
        }
        let tools_grant = b.grant(&r.tools, &file.tools);
        roles.insert(id.clone(), RoleSpec { id, permissions, tools: tools_grant });
    }

    // Agents: own grants first, then the hierarchy.
    let mut agents: BTreeMap<String, AgentSpec> = BTreeMap::new();
    let mut parents: BTreeMap<String, Spanned<String>> = BTreeMap::new();
    for (key, a) in &file.agents {
        let Some(id) = b.id("agent", key) else { continue };
        let mut role_ids = Vec::new();
        let mut grant = b.grant(&a.tools, &file.tools);
        for r in &a.roles {
            match roles.get(r.get_ref()) {
                Some(role) => {
                    role_ids.push(r.get_ref().clone());
                    grant = union(grant, &role.tools);
                }
                None => b.err(
                    "unknown-role",
                    r.span(),
                    format!("agent {id} has role {:?}, which is not defined under [roles]", r.get_ref()),
                ),
            }
        }
        if let Some(p) = &a.parent {
            parents.insert(id.clone(), p.clone());
        }
        let max_risk = b.risk(a.max_risk, key.span());
        let schedule = a.schedule.as_ref().and_then(|s| b.window(s));
        agents.insert(
            id.clone(),
            AgentSpec {
                id,
                roles: role_ids,
                ancestors: Vec::new(),
                tools: grant,
                max_risk,
                schedule,
                span: key.span(),
            },
        );
    }
    let max_depth: BTreeMap<String, Option<u32>> =
        file.agents.iter().map(|(k, a)| (k.get_ref().clone(), a.max_depth)).collect();
    let ids: Vec<String> = agents.keys().cloned().collect();
    for id in &ids {
        let mut chain = Vec::new();
        let mut cur = id.clone();
        let mut ok = true;
        while let Some(p) = parents.get(&cur) {
            let pid = p.get_ref().clone();
            if !agents.contains_key(&pid) {
                if cur == *id {
                    b.err(
                        "unknown-agent",
                        p.span(),
                        format!("agent {id} has parent {pid:?}, which is not defined under [agents]"),
                    );
                }
                ok = false;
                break;
            }
            if pid == *id || chain.contains(&pid) {
                b.err(
                    "agent-cycle",
                    agents[id].span.clone(),
                    format!("agent {id} is its own ancestor (parent chain loops)"),
                );
                ok = false;
                break;
            }
            chain.push(pid.clone());
            cur = pid;
        }
        if !ok {
            continue;
        }
        for (distance, anc) in chain.iter().enumerate() {
            if let Some(Some(m)) = max_depth.get(anc)
                && distance as u32 + 1 > *m
            {
                b.err(
                    "max-depth",
                    agents[id].span.clone(),
                    format!("agent {id} is {} level(s) below {anc}, whose max_depth is {m}", distance + 1),
                );
            }
        }
        if let Some(parent) = chain.first() {
            let excess = excess_tools(&agents[id].tools, &agents[parent].tools).or_else(|| {
                excess_permission(&permissions_of(&agents[id], &roles), &permissions_of(&agents[parent], &roles))
            });
            if let Some(t) = excess {
                b.err(
                    "sub-agent-escalation",
                    agents[id].span.clone(),
                    format!(
                        "agent {id} may use {t}, but its parent {parent} may not: a sub-agent cannot exceed its parent"
                    ),
                );
            }
        }
        if let Some(a) = agents.get_mut(id) {
            a.ancestors = chain;
        }
    }
    // A sub-agent is bounded by every ancestor: the lowest max_risk applies, an unset schedule is inherited from
    // the nearest ancestor that has one, and a schedule of its own must lie inside each ancestor's.
    let own: BTreeMap<String, (u8, Option<Window>)> =
        agents.iter().map(|(k, a)| (k.clone(), (a.max_risk, a.schedule.clone()))).collect();
    let mut escalations = Vec::new();
    for a in agents.values_mut() {
        for anc in &a.ancestors {
            let (risk, window) = &own[anc];
            a.max_risk = a.max_risk.min(*risk);
            match (&a.schedule, window) {
                (None, Some(w)) => a.schedule = Some(w.clone()),
                (Some(mine), Some(theirs)) if !mine.within(theirs) => escalations.push((
                    a.span.clone(),
                    format!(
                        "agent {} is scheduled {}, outside its ancestor {anc}'s {}: a sub-agent cannot exceed its parent",
                        a.id, mine.text, theirs.text
                    ),
                )),
                _ => {}
            }
        }
    }
    for (span, m) in escalations {
        b.err("sub-agent-escalation", span, m);
    }

    // Global rules.
    let network_deny = file.network.deny.iter().flatten().filter_map(|h| b.host_pattern(h)).collect();
    let allow_private = file.network.allow_private.iter().flatten().filter_map(|h| b.private_allow(h)).collect();
    let tls_inspect = file.network.tls_inspect.unwrap_or_default();
    let tls_passthrough = file.network.tls_passthrough.iter().flatten().filter_map(|h| b.host_pattern(h)).collect();
    let mut fs_deny = b.fs_deny(file.fs.deny.as_deref().unwrap_or_default());
    if protect_credentials {
        for p in CREDENTIAL_PATHS {
            if let Some((_, pat)) = b.fs_pattern(&Spanned::new(whole.clone(), p.to_string())) {
                fs_deny.push(pat);
            }
        }
    }
    let exec_deny = file.exec.deny.iter().flatten().filter_map(|p| b.program(p)).collect();

    // Rate limits and audit sinks refer to things defined elsewhere.
    for k in file.rate_limits.agents.keys() {
        if !agents.contains_key(k.get_ref()) {
            b.err("unknown-agent", k.span(), format!("rate limit for unknown agent {:?}", k.get_ref()));
        }
    }
    for k in file.rate_limits.tools.keys() {
        if !tools.contains_key(k.get_ref()) {
            b.err("unknown-tool", k.span(), format!("rate limit for unknown tool {:?}", k.get_ref()));
        }
    }
    for k in file.rate_limits.hosts.keys() {
        b.host_pattern(k);
    }
    check_budgets(&mut b, file);
    if file.audit.checkpoint_every == Some(0) {
        b.err("audit", whole.clone(), "audit.checkpoint_every must be at least 1");
    }
    for sink in file.audit.sinks.iter().flatten() {
        check_sink(&mut b, sink, &secrets, &file.backends);
    }

    if b.diags.iter().any(|d| d.severity == Severity::Error) {
        b.diags.sort_by_key(|d| (d.line, d.column));
        return Err(ConfigError { diagnostics: b.diags });
    }
    let model = Model {
        profile: doc.profile,
        settings,
        workspace: b.workspace.clone(),
        home: b.home.clone(),
        agents,
        roles,
        tools,
        secrets,
        network_deny,
        allow_private,
        tls_inspect,
        tls_passthrough,
        fs_deny,
        exec_deny,
        search_path,
        block_private,
        protect_credentials,
        max_request_bytes: file.network.max_request_bytes.map(|s| s.0),
        fail_closed,
        record_allows: file.audit.record_allows.unwrap_or(true),
        sandbox,
        redact,
        file: file.clone(),
    };
    Ok((model, b.diags))
}

fn union(a: ToolGrant, b: &ToolGrant) -> ToolGrant {
    match (a, b) {
        (ToolGrant::All, _) | (_, ToolGrant::All) => ToolGrant::All,
        (ToolGrant::Some(mut x), ToolGrant::Some(y)) => {
            x.extend(y.iter().cloned());
            ToolGrant::Some(x)
        }
    }
}

/// A tool the child may use and the parent may not, if any.
fn excess_tools(child: &ToolGrant, parent: &ToolGrant) -> Option<String> {
    match (child, parent) {
        (_, ToolGrant::All) => None,
        (ToolGrant::All, ToolGrant::Some(_)) => Some("every tool (\"*\")".to_string()),
        (ToolGrant::Some(c), ToolGrant::Some(p)) => c.difference(p).next().map(|t| format!("tool {t}")),
    }
}

/// Every API permission an agent holds through its roles.
fn permissions_of<'a>(agent: &AgentSpec, roles: &'a BTreeMap<String, RoleSpec>) -> Vec<&'a Permission> {
    agent.roles.iter().filter_map(|r| roles.get(r)).flat_map(|r| r.permissions.iter().map(|p| &p.value)).collect()
}

/// An API permission the child holds that no permission of the parent covers, if any. Roles are the agent's
/// own (a child is not `in` its parent's roles), so without this a child could be given `*` under a parent
/// limited to its own conversations.
fn excess_permission(child: &[&Permission], parent: &[&Permission]) -> Option<String> {
    let covers = |p: &Permission, c: &Permission| match (p, c) {
        (Permission::All, _) => true,
        (Permission::Kind { .. }, Permission::All) => false,
        (Permission::Kind { kind: pk, own: po, verb: pv }, Permission::Kind { kind: ck, own: co, verb: cv }) => {
            pk == ck && (!po || *co) && (pv.is_none() || pv == cv)
        }
    };
    child.iter().find(|c| !parent.iter().any(|p| covers(p, c))).map(|c| match c {
        Permission::All => "API permission *".to_string(),
        Permission::Kind { kind, own, verb } => {
            format!("API permission {kind}:{}{}", if *own { "own:" } else { "" }, verb.as_deref().unwrap_or("*"))
        }
    })
}

/// Headers that frame the HTTP message; injecting into them would let a value rewrite the request.
const FRAMING_HEADERS: &[&str] =
    &["host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive", "expect"];

/// `[budgets]` and `[rate_limits] egress_bytes_per_hour`. A zero is refused rather than read as "no limit" or
/// "block": either reading surprises someone, and blocking a tool's network is what its rules are for.
fn check_budgets(b: &mut Builder<'_>, file: &ConfigFile) {
    const ZERO: &str = "a budget of 0 blocks everything; remove the tool's network rules instead";
    let r = &file.rate_limits;
    let keyed = r.agents.iter().map(|(k, v)| ("agents", Some(k), v));
    let keyed = keyed.chain(r.tools.iter().map(|(k, v)| ("tools", Some(k), v)));
    let keyed = keyed.chain(r.hosts.iter().map(|(k, v)| ("hosts", Some(k), v)));
    for (section, key, limit) in r.default.iter().map(|v| ("default", None, v)).chain(keyed) {
        if limit.egress_bytes_per_hour == Some(config::Size(0)) {
            let (name, span) = match key {
                Some(k) => (format!("rate_limits.{section}.{}", k.get_ref()), k.span()),
                None => ("rate_limits.default".to_string(), 0..0),
            };
            b.err("budget", span, format!("{name}.egress_bytes_per_hour is 0: {ZERO}"));
        }
    }
    if r.global.as_ref().is_some_and(|g| g.egress_bytes_per_hour.is_some()) {
        b.err(
            "budget",
            0..0,
            "rate_limits.global takes requests_per_minute and burst only; put egress_bytes_per_hour under default, \
             agents, tools or hosts",
        );
    }
    let zeros = |budget: &config::Budget| {
        let mut z = Vec::new();
        if budget.egress_bytes == Some(config::Size(0)) {
            z.push("egress_bytes");
        }
        if budget.requests == Some(0) {
            z.push("requests");
        }
        if budget.distinct_hosts == Some(0) {
            z.push("distinct_hosts");
        }
        z
    };
    if let Some(run) = &file.budgets.run {
        for field in zeros(run.get_ref()) {
            b.err("budget", run.span(), format!("budgets.run.{field} is 0: {ZERO}"));
        }
    }
    for (k, budget) in &file.budgets.hosts {
        b.host_pattern(k);
        let name = k.get_ref();
        for field in zeros(budget).into_iter().filter(|f| *f != "distinct_hosts") {
            b.err("budget", k.span(), format!("budgets.hosts.{name:?}.{field} is 0: {ZERO}"));
        }
        if budget.distinct_hosts.is_some() {
            let m = format!("budgets.hosts.{name:?}.distinct_hosts: only meaningful per run; set it in budgets.run");
            b.err("budget", k.span(), m);
        }
    }
}

/// `[sandbox]` with its defaults. Zero denials, a window outside 1s-1d and port 0 are refused where written.
fn sandbox_settings(b: &mut Builder<'_>, s: &config::SandboxConfig) -> SandboxSettings {
    let env = match &s.env {
        Some(list) => list.iter().filter_map(|p| b.env_pattern(p, true)).collect(),
        None => crate::sandbox::DEFAULT_ENV.iter().map(|p| p.to_string()).collect(),
    };
    let auto_pause = s.auto_pause.as_ref().and_then(|a| {
        let a = a.get_ref();
        let denials = *a.denials.get_ref();
        let window = a.window.get_ref().0;
        let mut ok = true;
        if denials == 0 {
            let m = "sandbox.auto_pause.denials must be at least 1 (to never pause, remove auto_pause)";
            b.err("sandbox", a.denials.span(), m);
            ok = false;
        }
        let (min, max) = (std::time::Duration::from_secs(1), std::time::Duration::from_secs(86_400));
        if !(min..=max).contains(&window) {
            let m = format!("sandbox.auto_pause.window must be from 1s to 1d, not {window:?}");
            b.err("sandbox", a.window.span(), m);
            ok = false;
        }
        ok.then_some(AutoPause { denials, window })
    });
    let forward_port = match &s.forward_port {
        Some(p) if *p.get_ref() == 0 => {
            b.err("sandbox", p.span(), "sandbox.forward_port must be from 1 to 65535, not 0");
            crate::sandbox::DEFAULT_FORWARD_PORT
        }
        Some(p) => *p.get_ref(),
        None => crate::sandbox::DEFAULT_FORWARD_PORT,
    };
    SandboxSettings { env, auto_pause, guard_tool_output: s.guard_tool_output.unwrap_or_default(), forward_port }
}

/// `[redact]` with its defaults. An unknown personal-data family, a malformed rule id, an entry listed twice and an
/// empty rule file path are refused where written, never skipped: a misspelt family would go unmasked unnoticed.
fn redact_settings(b: &mut Builder<'_>, r: &config::RedactConfig, base: &std::path::Path) -> RedactSettings {
    let defaults = RedactSettings::default();
    let pii = match &r.pii {
        None => defaults.pii,
        Some(list) => {
            let mut pii: Vec<String> = Vec::new();
            for f in list {
                let name = f.get_ref();
                if !PII_FAMILIES.contains(&name.as_str()) {
                    let known = PII_FAMILIES.join(", ");
                    let m = format!("unknown personal-data family {name:?} in redact.pii: the families are {known}");
                    b.err("redact", f.span(), m);
                } else if pii.contains(name) {
                    b.err("redact", f.span(), format!("redact.pii lists {name:?} twice"));
                } else {
                    pii.push(name.clone());
                }
            }
            pii
        }
    };
    let mask = match r.mask.unwrap_or_default() {
        config::RedactMask::Label => MaskMode::Label,
        config::RedactMask::Shape => MaskMode::Shape,
    };
    let mut rule_files = Vec::new();
    for p in r.rules.iter().flatten() {
        if p.get_ref().trim().is_empty() {
            b.err("redact", p.span(), "redact.rules: a rule file path cannot be empty");
        } else {
            rule_files.push(base.join(p.get_ref()));
        }
    }
    let mut disable: Vec<String> = Vec::new();
    for id in r.disable.iter().flatten() {
        let v = id.get_ref();
        if !crate::redact::valid_rule_id(v) {
            b.err("redact", id.span(), format!("invalid rule id {v:?} in redact.disable: use 1-64 of a-z 0-9 -"));
        } else if disable.contains(v) {
            b.err("redact", id.span(), format!("redact.disable lists {v:?} twice"));
        } else {
            disable.push(v.clone());
        }
    }
    RedactSettings {
        tool_output: r.tool_output.as_ref().map_or(defaults.tool_output, |v| *v.get_ref()),
        pii,
        mask,
        rule_files,
        disable,
    }
}

fn check_inject(b: &mut Builder<'_>, r: &InjectRecipe, span: Range<usize>) {
    match (&r.header, &r.query) {
        (Some(h), None) => {
            let lower = h.to_ascii_lowercase();
            let token =
                !h.is_empty() && h.bytes().all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
            if !token {
                b.err("inject", span.clone(), format!("invalid header name {h:?}"));
            } else if FRAMING_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
                b.err("inject", span.clone(), format!("refusing to inject into framing header {h:?}"));
            }
        }
        (None, Some(q)) => {
            if q.is_empty() || !q.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.') {
                b.err("inject", span.clone(), format!("invalid query parameter name {q:?}"));
            }
        }
        _ => b.err("inject", span.clone(), "inject needs exactly one of header or query"),
    }
    if let Some(f) = &r.format {
        if f.matches("{value}").count() != 1 {
            b.err("inject", span.clone(), "inject.format must contain {value} exactly once");
        }
        if f.bytes().any(|c| c.is_ascii_control()) {
            b.err("inject", span, "inject.format must not contain control characters");
        }
    }
}

fn check_sink(
    b: &mut Builder<'_>,
    sink: &config::AuditSink,
    secrets: &BTreeMap<String, SecretSpec>,
    backends: &config::Backends,
) {
    use config::SinkKind;
    let span = sink.kind.span();
    let kind = *sink.kind.get_ref();
    let mut need = |field: &str, present: bool| {
        if !present {
            b.err("audit-sink", span.clone(), format!("{kind:?} sink needs `{field}`").to_lowercase());
        }
    };
    match kind {
        SinkKind::File => need("path", sink.path.is_some()),
        SinkKind::Syslog => need("address", sink.address.is_some()),
        SinkKind::Webhook => need("url", sink.url.is_some()),
    }
    let allowed: &[&str] = match kind {
        SinkKind::File => &["path"],
        SinkKind::Syslog => &["address", "facility", "format", "server_name", "ca"],
        SinkKind::Webhook => &["url", "token", "ca"],
    };
    for (field, present) in [
        ("path", sink.path.is_some()),
        ("address", sink.address.is_some()),
        ("facility", sink.facility.is_some()),
        ("format", sink.format.is_some()),
        ("url", sink.url.is_some()),
        ("token", sink.token.is_some()),
        ("server_name", sink.server_name.is_some()),
        ("ca", sink.ca.is_some()),
    ] {
        if present && !allowed.contains(&field) {
            b.err(
                "audit-sink",
                span.clone(),
                format!("`{field}` does not apply to a {} sink", format!("{kind:?}").to_lowercase()),
            );
        }
    }
    if let Some(address) = &sink.address {
        match parse_syslog_address(address) {
            Ok((scheme, _)) => {
                if scheme != "tls" && (sink.server_name.is_some() || sink.ca.is_some()) {
                    b.err("audit-sink", span.clone(), "`server_name` and `ca` apply only to a tls:// syslog address");
                }
            }
            Err(m) => b.err("audit-sink", span.clone(), m),
        }
    }
    if sink.queue == Some(0) {
        b.err("audit-sink", span.clone(), "`queue` must be at least 1");
    }
    if let Some(f) = &sink.facility {
        let known =
            ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp"];
        let local = f.len() == 6 && f.starts_with("local") && (b'0'..=b'7').contains(&f.as_bytes()[5]);
        if !known.contains(&f.as_str()) && !local {
            b.err("audit-sink", span.clone(), format!("unknown syslog facility {f:?}"));
        }
    }
    if let Some(url) = &sink.url {
        match normalize::Target::parse(url) {
            Ok(t) if t.scheme == normalize::Scheme::Https => {}
            Ok(t) if matches!(t.host, normalize::HostName::Ipv4(ip) if ip.is_loopback()) => {}
            // Shown without the query, which often carries the sink's key (`Target` never displays it).
            Ok(t) => b.err(
                "audit-sink",
                span.clone(),
                format!("webhook \"{t}\" must use https (plain http only to loopback)"),
            ),
            Err(e) => b.err("audit-sink", span.clone(), format!("webhook url: {e}")),
        }
    }
    if let Some(t) = &sink.token {
        match refs::scan(t.get_ref()) {
            Err(m) => b.err("reference", t.span(), m),
            Ok(found) => {
                for r in found {
                    match r {
                        Reference::Secret(name) if !secrets.contains_key(&name) => b.err(
                            "unknown-secret",
                            t.span(),
                            format!("reference to secret {name:?}, which is not declared under [secrets]"),
                        ),
                        Reference::Source(loc) => {
                            if let Some(m) = source_problem(&loc, backends) {
                                b.err("reference", t.span(), format!("reference ${{secret:...}} {m}"));
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// Splits a syslog sink address into its scheme (`udp`, `tcp` or `tls`) and socket address.
pub fn parse_syslog_address(address: &str) -> Result<(&str, std::net::SocketAddr), String> {
    let bad = || format!("syslog address {address:?}: use udp://IP:PORT, tcp://IP:PORT or tls://IP:PORT");
    let (scheme, rest) = address.split_once("://").ok_or_else(bad)?;
    if !["udp", "tcp", "tls"].contains(&scheme) {
        return Err(bad());
    }
    let addr: std::net::SocketAddr = rest.parse().map_err(|_| bad())?;
    if addr.port() == 0 {
        return Err(bad());
    }
    Ok((scheme, addr))
}

/// True when a pattern covers every host (`*`) or a whole top-level domain (`*.com`).
pub fn is_broad_wildcard(p: &HostPattern) -> bool {
    match &p.host {
        HostPatternKind::Any => true,
        HostPatternKind::Subdomains(suffix) => !suffix.contains('.'),
        HostPatternKind::Exact(_) => false,
    }
}

#[cfg(test)]
mod private_allow_tests {
    use super::PrivateAllow;

    #[test]
    fn prefixes_addresses_and_hosts_parse_and_host_bits_are_refused() {
        assert_eq!(
            PrivateAllow::parse("10.20.0.0/16").unwrap(),
            PrivateAllow::Prefix("10.20.0.0".parse().unwrap(), 16)
        );
        assert_eq!(PrivateAllow::parse("10.0.0.7").unwrap(), PrivateAllow::Prefix("10.0.0.7".parse().unwrap(), 32));
        assert_eq!(PrivateAllow::parse("fd12::/48").unwrap(), PrivateAllow::Prefix("fd12::".parse().unwrap(), 48));
        assert_eq!(PrivateAllow::parse("0.0.0.0/0").unwrap(), PrivateAllow::Prefix("0.0.0.0".parse().unwrap(), 0));
        assert!(PrivateAllow::parse("10.0.0.1/8").unwrap_err().contains("bits set"));
        assert!(PrivateAllow::parse("fd12::1/48").unwrap_err().contains("bits set"));
        assert!(PrivateAllow::parse("10.0.0.0/33").is_err());
        assert!(PrivateAllow::parse("registry.corp.example").is_ok());
        assert!(PrivateAllow::parse("*.svc.example").is_ok());
        assert!(PrivateAllow::parse("registry.corp.example:443").is_err());
        assert!(PrivateAllow::parse("*").is_err());
        assert!(PrivateAllow::parse("bad name/8").is_err());
    }
}
