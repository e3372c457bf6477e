//! Canonical forms for everything a policy decision looks at: hosts, HTTP(S) request targets, filesystem paths and
//! programs.
//!
//! Every decision is made on a canonical form, never on the text an agent happened to send. One host or one path has
//! many spellings (`API.GitHub.com.`, `0x7f.1`, `/repos/%2e%2e/admin`, `/srv/link/../x`), and if two spellings of one
//! thing could reach the engine, a rule written against one spelling would be bypassed by the other. So each input
//! is reduced to exactly one representative before any rule sees it, and a spelling that cannot be reduced safely
//! (servers disagree on what it means, or it hides a credential) is refused instead of guessed at.
//!
//! Rule text from configuration goes through the same functions ([`HostPattern::parse`],
//! [`normalize_fs_pattern`]) so that patterns and requests are compared in the same space.
//!
//! Errors ([`NormalizeError`]) name what was wrong in plain words. They may show a host or a path, but never a URL's
//! query string or userinfo, which can carry secrets.

mod fs_path;
mod host;
mod program;
mod url;

pub use self::url::{Scheme, Target, path_has_prefix};
pub use fs_path::{dir_ancestors, normalize_fs_literal_pattern, normalize_fs_path, normalize_fs_pattern};
pub use host::{HostName, HostPattern, HostPatternKind, PortSpec};
pub use program::{DEFAULT_SEARCH_PATH, resolve_program};

/// Why an input has no canonical form.
///
/// `what` is the kind of input ("host", "host pattern", "url", "path", "path pattern" or "program"); `reason` is a
/// sentence for a human. Neither ever contains a URL's query or userinfo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {reason}")]
pub struct NormalizeError {
    /// The kind of input that was refused.
    pub what: &'static str,
    /// What was wrong with it.
    pub reason: String,
}

impl NormalizeError {
    pub(crate) fn new(what: &'static str, reason: impl Into<String>) -> NormalizeError {
        NormalizeError { what, reason: reason.into() }
    }
}
