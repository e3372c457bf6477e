//! What a secret is: its identity, its metadata, and its value versions.
//!
//! Why validate so strictly here: names, workspaces and hosts end up in file paths, HTTP headers, audit records
//! and policy. Rejecting odd input at the door (control characters, CR/LF, empty labels, wildcards in the wrong
//! place) is cheaper than escaping it correctly everywhere later.

use std::fmt;

use airlock_crypto::SecretBytes;
use serde::{Deserialize, Serialize};

use crate::VaultError;

pub const DEFAULT_WORKSPACE: &str = "default";
/// Largest value the vault accepts. Big enough for certificates and service-account JSON.
pub const MAX_VALUE_LEN: usize = 4 * 1024 * 1024;
pub const DEFAULT_KEEP_VERSIONS: u32 = 5;
pub const MAX_KEEP_VERSIONS: u32 = 100;

/// A secret's address: `workspace/name`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretId {
    pub workspace: String,
    pub name: String,
}

impl SecretId {
    /// Validates both parts.
    pub fn new(workspace: &str, name: &str) -> Result<Self, VaultError> {
        validate_ident(workspace, 64, "workspace")?;
        validate_ident(name, 128, "secret name")?;
        Ok(SecretId { workspace: workspace.to_string(), name: name.to_string() })
    }

    /// Parses `NAME` (in `default_ws`) or `WORKSPACE/NAME`.
    pub fn parse(s: &str, default_ws: &str) -> Result<Self, VaultError> {
        match s.split_once('/') {
            Some((ws, name)) => Self::new(ws, name),
            None => Self::new(default_ws, s),
        }
    }
}

impl fmt::Display for SecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.workspace, self.name)
    }
}

fn validate_ident(s: &str, max: usize, what: &'static str) -> Result<(), VaultError> {
    let bad = |reason: &str| Err(VaultError::InvalidName { what, len: s.chars().count(), reason: reason.to_string() });
    if s.is_empty() {
        return bad("must not be empty");
    }
    if s.len() > max {
        return bad(&format!("longer than {max} characters"));
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return bad("must start with a letter or digit");
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
        return bad("may contain only letters, digits, '_', '-' and '.'");
    }
    // `airlock secret set $GITHUB_TOKEN` (a stray `$`) would otherwise store the token as a name, in the clear.
    if s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad("this looks like a credential (a long hex string), not a name; secret values are read from \
                    stdin, never from arguments");
    }
    if let Some(p) = crate::formats::detect(s.as_bytes())
        && s.len() >= p.len.0
    {
        return bad(&format!(
            "this looks like a {} credential, not a name; secret values are read from stdin, never from arguments",
            p.name
        ));
    }
    Ok(())
}

/// Normalises and validates a pinned host: a DNS name, `*.suffix`, or an IP literal, with an optional `:port`.
pub fn normalize_host(h: &str) -> Result<String, VaultError> {
    let bad = |reason: &str| Err(VaultError::InvalidHost { reason: reason.to_string() });
    let lower = h.trim().to_ascii_lowercase();
    // Bracketed IPv6 (`[::1]`, `[::1]:443`), otherwise `host` or `host:port`. Bare IPv6 needs brackets.
    let (host, port) = if let Some(rest) = lower.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return bad("unclosed '[' in an IPv6 literal");
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p.to_string()),
                None => return bad("unexpected text after ']'"),
            },
        };
        (format!("[{v6}]"), port)
    } else {
        match lower.split_once(':') {
            Some((_, p)) if p.contains(':') => return bad("an IPv6 address must be in brackets, e.g. [::1]"),
            Some((hh, p)) => (hh.to_string(), Some(p.to_string())),
            None => (lower.clone(), None),
        }
    };
    if let Some(p) = &port {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => {}
            _ => return bad("port must be 1-65535"),
        }
    }
    let host = host.trim_end_matches('.').to_string();
    if host.is_empty() {
        return bad("empty host");
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return bad("invalid IPv6 literal");
        }
    } else if host.parse::<std::net::Ipv4Addr>().is_err() {
        if host.len() > 253 {
            return bad("longer than 253 characters");
        }
        let labels: Vec<&str> = host.split('.').collect();
        for (i, l) in labels.iter().enumerate() {
            if *l == "*" {
                if i != 0 || labels.len() < 3 {
                    return bad(
                        "a wildcard must be the whole first label of a name with at least two more labels (*.example.com)",
                    );
                }
                continue;
            }
            if l.is_empty() || l.len() > 63 {
                return bad("each label must be 1-63 characters");
            }
            if !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') || l.starts_with('-') || l.ends_with('-') {
                return bad("labels may contain only letters, digits and inner hyphens");
            }
        }
    }
    Ok(match port {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// Headers an injection recipe may not set: hop-by-hop, framing and routing headers (RFC 9110 section 7.6.1,
/// RFC 9112 section 6), and the proxy's own credentials. Lowercase. The broker checks its recipes against it too.
pub const FRAMING_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// How the broker puts a secret on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Injection {
    /// `name: template` with `{}` replaced by the value, e.g. `Authorization: Bearer {}`.
    Header { name: String, template: String },
    /// `?param=value` on the request URL.
    Query { param: String },
    /// HTTP basic auth with this username; the secret is the password.
    Basic { username: String },
}

impl Injection {
    /// Parses `Header-Name: template with {}`.
    pub fn header(spec: &str) -> Result<Self, VaultError> {
        let bad = |r: &str| Err(VaultError::InvalidInjection(format!("header recipe: {r}")));
        let Some((name, template)) = spec.split_once(':') else {
            return bad("expected 'Header-Name: template with {}'");
        };
        let (name, template) = (name.trim(), template.trim());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
            return bad("header name must be an HTTP token");
        }
        if FRAMING_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            // Injecting these would let a secret's recipe rewrite where or how a request is framed
            // (request smuggling, host confusion). Credentials never belong in them.
            return bad("this header controls routing or message framing and cannot carry a credential");
        }
        if template.matches("{}").count() != 1 {
            return bad("template must contain exactly one {}");
        }
        if template.bytes().any(|b| b.is_ascii_control()) {
            return bad("template must not contain control characters");
        }
        Ok(Injection::Header { name: name.to_string(), template: template.to_string() })
    }

    pub fn query(param: &str) -> Result<Self, VaultError> {
        if param.is_empty() || !param.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)) {
            return Err(VaultError::InvalidInjection(
                "the query parameter name must be URL-safe (letters, digits, -_.~)".into(),
            ));
        }
        Ok(Injection::Query { param: param.to_string() })
    }

    pub fn basic(username: &str) -> Result<Self, VaultError> {
        if username.contains(':') || username.bytes().any(|b| b.is_ascii_control()) {
            return Err(VaultError::InvalidInjection(
                "basic-auth username must not contain ':' or control characters".into(),
            ));
        }
        Ok(Injection::Basic { username: username.to_string() })
    }

    /// A short human description, e.g. `header Authorization: Bearer {}`.
    pub fn describe(&self) -> String {
        match self {
            Injection::Header { name, template } => format!("header {name}: {template}"),
            Injection::Query { param } => format!("query ?{param}="),
            Injection::Basic { username } => format!("basic auth as {username}"),
        }
    }
}

/// How a tool process gets to use a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Exposure {
    /// The tool sees a surrogate; the broker swaps in the real value on the wire (default).
    #[default]
    Surrogate,
    /// The real value is placed in the tool's environment. Opt-in, for tools that cannot use a proxy.
    Env,
}

/// Everything about a secret except its values. Stored encrypted, inside the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretMeta {
    pub group: Option<String>,
    /// Unix seconds.
    pub created: u64,
    pub rotated: Option<u64>,
    pub hosts: Vec<String>,
    pub injection: Option<Injection>,
    pub exposure: Exposure,
    pub tags: Vec<String>,
    /// Overrides the vault's default number of versions kept.
    pub keep_versions: Option<u32>,
}

/// One stored value of a secret.
pub struct ValueVersion {
    pub version: u32,
    /// Unix seconds.
    pub created: u64,
    pub value: SecretBytes,
}

impl fmt::Debug for ValueVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ValueVersion(v{}, {:?})", self.version, self.value)
    }
}

/// A decrypted record: metadata plus value versions, newest last.
#[derive(Debug)]
pub struct Secret {
    pub meta: SecretMeta,
    pub versions: Vec<ValueVersion>,
}

impl Secret {
    pub fn current(&self) -> &ValueVersion {
        self.versions.last().expect("a stored secret always has a value")
    }
}

/// What the vault tells about a secret without revealing its value. (`Deserialize` for clients reading it back from
/// the daemon's API.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub workspace: String,
    pub name: String,
    pub group: Option<String>,
    pub created: u64,
    pub rotated: Option<u64>,
    pub hosts: Vec<String>,
    pub injection: Option<Injection>,
    pub exposure: Exposure,
    pub tags: Vec<String>,
    pub current_version: u32,
    /// Versions still kept, oldest first.
    pub versions: Vec<u32>,
    pub keep_versions: u32,
    /// Keyring term that encrypted the record.
    pub term: u32,
}

/// Options for a new secret.
#[derive(Clone, Debug, Default)]
pub struct NewSecret {
    pub group: Option<String>,
    pub hosts: Vec<String>,
    pub injection: Option<Injection>,
    pub exposure: Exposure,
    pub tags: Vec<String>,
    pub keep_versions: Option<u32>,
}

/// Checks a value before it is stored.
pub fn check_value(value: &SecretBytes) -> Result<(), VaultError> {
    if value.is_empty() {
        return Err(VaultError::EmptyValue);
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(VaultError::ValueTooLarge { len: value.len(), max: MAX_VALUE_LEN });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_reject_odd_names() {
        assert_eq!(SecretId::parse("GITHUB_TOKEN", "default").unwrap().to_string(), "default/GITHUB_TOKEN");
        assert_eq!(SecretId::parse("ci/npm.token", "default").unwrap().to_string(), "ci/npm.token");
        for bad in [
            "",
            "/x",
            "a/",
            "a/b/c",
            "-x",
            "x y",
            "x\n",
            "ws/../x",
            "é",
            // credentials pasted as names: a classic 40-hex GitHub token, a SendGrid key, a modern GitHub token
            "0123456789abcdef0123456789abcdef01234567",
            "SG.aBcDeFgHiJkLmNoPqRsTuV.aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789abcdefgh",
            "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",
        ] {
            assert!(SecretId::parse(bad, "default").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hosts_normalise_and_reject_bad_wildcards() {
        assert_eq!(normalize_host("API.GitHub.com.").unwrap(), "api.github.com");
        assert_eq!(normalize_host("*.example.com:8443").unwrap(), "*.example.com:8443");
        assert_eq!(normalize_host("127.0.0.1:80").unwrap(), "127.0.0.1:80");
        assert_eq!(normalize_host("[::1]:443").unwrap(), "[::1]:443");
        assert_eq!(normalize_host("[2001:DB8::1]").unwrap(), "[2001:db8::1]");
        for bad in [
            "",
            "*",
            "*.com",
            "a.*.com",
            "exa mple.com",
            "x.com:0",
            "x.com:99999",
            "-a.com",
            "a..com",
            "[zz]",
            "::1",
            "[::1",
            "[::1]x",
            "[::1]:",
        ] {
            assert!(normalize_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn injection_recipes_validate() {
        assert_eq!(
            Injection::header("Authorization: Bearer {}").unwrap(),
            Injection::Header { name: "Authorization".into(), template: "Bearer {}".into() }
        );
        for bad in [
            "Authorization Bearer {}",
            "Auth: Bearer",
            "Auth: {} {}",
            "Bad Header: {}",
            "X: a\r\nb {}",
            "Host: {}",
            "Content-Length: {}",
            "transfer-encoding: chunked {}",
        ] {
            assert!(Injection::header(bad).is_err(), "{bad:?}");
        }
        assert!(Injection::query("api_key").is_ok());
        assert!(Injection::query("a&b").is_err());
        assert!(Injection::basic("u:p").is_err());
    }

    #[test]
    fn values_must_be_non_empty_and_bounded() {
        assert!(matches!(check_value(&SecretBytes::new(vec![])), Err(VaultError::EmptyValue)));
        assert!(matches!(
            check_value(&SecretBytes::new(vec![0; MAX_VALUE_LEN + 1])),
            Err(VaultError::ValueTooLarge { .. })
        ));
        assert!(check_value(&SecretBytes::new(vec![0xff; 1024 * 1024])).is_ok());
    }
}
