//! Host names and host patterns in one canonical spelling.
//!
//! A host can be written many ways that all reach the same machine: `API.GitHub.com`, `api.github.com.`,
//! `api%2egithub%2ecom`, `api．github．com` (full-width dots), `bücher.example` and `xn--bcher-kva.example`, or for an
//! address `127.0.0.1`, `127.1`, `0x7f.1`, `2130706433` and `[::ffff:127.0.0.1]`. Parsing goes through the WHATWG
//! host parser of the `url` crate (percent-decoding, IDNA/UTS-46 mapping to punycode, IPv4 number forms), which is
//! what browsers and most HTTP clients do, and then applies DNS rules on top (label and name lengths, letters digits
//! and hyphens only), so a name that a resolver would treat differently from how we read it is refused.
//!
//! Patterns from configuration (`*.example.com:8443`) are parsed with the same host rules, so a rule and a request
//! always compare canonical text with canonical text.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::NormalizeError;

/// DNS limit on one label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;
/// DNS limit on a whole name in text form without the trailing dot (RFC 1035 §2.3.4, minus the length octets).
const MAX_NAME_LEN: usize = 253;

const WILDCARD_PLACEMENT: &str = "'*' may only be the whole leftmost label, as in \"*.example.com\", or the whole host";

/// A host in canonical form: a lowercase ASCII (punycode) domain without a trailing dot, or an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostName {
    /// A DNS name: lowercase letters, digits, hyphens and dots; no trailing dot; IDNA already applied.
    Domain(String),
    /// An IPv4 address, including one that was written as an IPv4-mapped IPv6 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address that is not IPv4-mapped.
    Ipv6(Ipv6Addr),
}

impl HostName {
    /// Parses a bare host (no scheme, no port).
    ///
    /// Lowercases, percent-decodes, maps international names to punycode, reads IPv4 number forms (`0x7f.1`,
    /// `2130706433`) as the address they denote, strips one trailing dot and maps `[::ffff:a.b.c.d]` to `a.b.c.d`.
    /// Refuses empty labels, over-long labels or names, characters other than letters, digits and hyphens, labels
    /// that start or end with a hyphen, unbracketed IPv6 and `*`.
    pub fn parse(input: &str) -> Result<HostName, NormalizeError> {
        parse_host(input).map_err(|reason: String| NormalizeError::new("host", reason))
    }

    /// Canonical text: `api.github.com`, `127.0.0.1`, `[::1]`.
    pub fn as_text(&self) -> String {
        self.to_string()
    }

    /// Enclosing domains, nearest first: `a.b.example.com` gives `b.example.com`, `example.com`, `com`.
    /// Empty for an IP address and for a single-label name.
    pub fn parent_domains(&self) -> Vec<String> {
        match self {
            HostName::Domain(name) => {
                let mut parents: Vec<String> = Vec::new();
                let mut rest: &str = name;
                while let Some((_, parent)) = rest.split_once('.') {
                    parents.push(parent.to_owned());
                    rest = parent;
                }
                parents
            }
            HostName::Ipv4(_) | HostName::Ipv6(_) => Vec::new(),
        }
    }

    /// Builds a canonical host from what the `url` crate parsed, applying the DNS rules `url` does not apply.
    /// Errors are bare reasons so that callers can attribute them ("host", "url").
    pub(super) fn from_url_host(host: ::url::Host<&str>) -> Result<HostName, String> {
        match host {
            ::url::Host::Ipv4(addr) => Ok(HostName::Ipv4(addr)),
            // One address, one spelling: an IPv4-mapped IPv6 address reaches the same IPv4 peer.
            ::url::Host::Ipv6(addr) => Ok(match addr.to_ipv4_mapped() {
                Some(v4) => HostName::Ipv4(v4),
                None => HostName::Ipv6(addr),
            }),
            ::url::Host::Domain(name) => check_domain(name).map(HostName::Domain),
        }
    }
}

impl fmt::Display for HostName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostName::Domain(name) => f.write_str(name),
            HostName::Ipv4(addr) => write!(f, "{addr}"),
            HostName::Ipv6(addr) => write!(f, "[{addr}]"),
        }
    }
}

/// Which ports a host pattern admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PortSpec {
    /// No port written: only the scheme's default port (80 for http, 443 for https).
    Default,
    /// `:*`: any port.
    Any,
    /// `:N`: exactly port N.
    Exact(u16),
}

/// The host part of a host pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPatternKind {
    /// Exactly this host.
    Exact(HostName),
    /// `*.example.com`: any name strictly below `example.com`, at any depth. Holds the canonical suffix domain.
    Subdomains(String),
    /// `*`: every host. Worth a lint wherever it appears.
    Any,
}

/// A host rule from configuration: which hosts, on which ports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    /// Which hosts.
    pub host: HostPatternKind,
    /// Which ports.
    pub port: PortSpec,
}

impl HostPattern {
    /// Parses `api.github.com`, `api.github.com:8443`, `*.example.com`, `*.example.com:*`, `*`, `10.0.0.1:80`,
    /// `[::1]:8080` or `bücher.example` (stored as punycode).
    ///
    /// `*` is only allowed as the whole host or as the whole leftmost label followed by a domain name (not an IP
    /// address). Ports must be 1 to 65535, or `*`.
    pub fn parse(input: &str) -> Result<HostPattern, NormalizeError> {
        parse_pattern(input).map_err(|reason: String| NormalizeError::new("host pattern", reason))
    }

    /// Whether a request to `host` on `port` falls under this pattern. `default_port` says whether `port` is the
    /// request scheme's default port, which is what a pattern without a port admits.
    pub fn matches(&self, host: &HostName, port: u16, default_port: bool) -> bool {
        let port_matches: bool = match self.port {
            PortSpec::Default => default_port,
            PortSpec::Any => true,
            PortSpec::Exact(wanted) => wanted == port,
        };
        port_matches
            && match &self.host {
                HostPatternKind::Any => true,
                HostPatternKind::Exact(wanted) => wanted == host,
                HostPatternKind::Subdomains(suffix) => match host {
                    HostName::Domain(name) => is_strict_subdomain(name, suffix),
                    // A wildcard over names never reaches an address, even one whose text happens to end the same.
                    HostName::Ipv4(_) | HostName::Ipv6(_) => false,
                },
            }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPatternKind::Exact(host) => write!(f, "{host}")?,
            HostPatternKind::Subdomains(suffix) => write!(f, "*.{suffix}")?,
            HostPatternKind::Any => f.write_str("*")?,
        }
        match self.port {
            PortSpec::Default => Ok(()),
            PortSpec::Any => f.write_str(":*"),
            PortSpec::Exact(port) => write!(f, ":{port}"),
        }
    }
}

/// `name` is `suffix` with at least one more label in front, joined by a dot (so `badexample.com` is not below
/// `example.com`). Both are canonical, so plain byte comparison is exact.
fn is_strict_subdomain(name: &str, suffix: &str) -> bool {
    name.len() > suffix.len() + 1 && name.ends_with(suffix) && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

fn parse_pattern(input: &str) -> Result<HostPattern, String> {
    if input.is_empty() {
        return Err("empty host pattern".to_owned());
    }
    let (host_text, port_text): (&str, Option<&str>) = split_host_port(input)?;
    let port: PortSpec = match port_text {
        None => PortSpec::Default,
        Some("*") => PortSpec::Any,
        Some(text) => PortSpec::Exact(parse_port(text)?),
    };
    let host: HostPatternKind = if host_text == "*" {
        HostPatternKind::Any
    } else if let Some(suffix) = host_text.strip_prefix("*.") {
        if suffix.contains('*') {
            return Err(WILDCARD_PLACEMENT.to_owned());
        }
        if suffix.is_empty() {
            return Err("\"*.\" must be followed by a domain name, as in \"*.example.com\"".to_owned());
        }
        match parse_host(suffix)? {
            HostName::Domain(name) => HostPatternKind::Subdomains(name),
            HostName::Ipv4(_) | HostName::Ipv6(_) => {
                return Err(format!(
                    "\"*.\" must be followed by a domain name, not an IP address ({suffix:?} reads as an address)"
                ));
            }
        }
    } else if host_text.contains('*') {
        return Err(WILDCARD_PLACEMENT.to_owned());
    } else {
        HostPatternKind::Exact(parse_host(host_text)?)
    };
    Ok(HostPattern { host, port })
}

/// Splits `host`, `host:port`, `[v6]` or `[v6]:port`. The port text is returned unparsed.
pub(super) fn split_host_port(input: &str) -> Result<(&str, Option<&str>), String> {
    if input.starts_with('[') {
        let Some(close) = input.find(']') else {
            return Err("'[' without a closing ']' in an IPv6 address".to_owned());
        };
        let (host, after) = input.split_at(close + 1);
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err("unexpected text after the ']' of an IPv6 address".to_owned()),
            },
        };
    }
    match input.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => {
            Err("an IPv6 address must be written in brackets, as in \"[::1]\" or \"[::1]:443\"".to_owned())
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((input, None)),
    }
}

/// A destination port: decimal, 1 to 65535.
pub(super) fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() {
        return Err("empty port after ':'".to_owned());
    }
    if !text.bytes().all(|b: u8| b.is_ascii_digit()) {
        return Err(format!("port {text:?} is not a decimal number"));
    }
    // Leading zeros are harmless ("0080" is 80); only the value's size matters.
    let digits: &str = text.trim_start_matches('0');
    if digits.len() > 5 {
        return Err(format!("port {text:?} is larger than 65535"));
    }
    let value: u32 = if digits.is_empty() { 0 } else { digits.parse::<u32>().map_err(|e| e.to_string())? };
    match value {
        0 => Err("port 0 is not a valid destination port".to_owned()),
        1..=65535 => Ok(value as u16),
        _ => Err(format!("port {value} is larger than 65535")),
    }
}

pub(super) fn parse_host(input: &str) -> Result<HostName, String> {
    if input.is_empty() {
        return Err("empty host".to_owned());
    }
    if input.contains('*') {
        return Err(format!("{input:?}: '*' is only allowed in host patterns"));
    }
    if !input.starts_with('[') && input.contains(':') {
        return Err(if input.parse::<Ipv6Addr>().is_ok() {
            format!("IPv6 address {input:?} must be written in brackets, as in \"[{input}]\"")
        } else {
            format!("{input:?} contains ':'; a port is not part of a host name")
        });
    }
    let parsed: ::url::Host<String> = ::url::Host::parse(input).map_err(|e: ::url::ParseError| {
        let why: &str = match e {
            ::url::ParseError::EmptyHost => "it is empty",
            // The IDNA step also refuses forbidden characters such as '@' or '%' (including decoded ones).
            ::url::ParseError::IdnaError => {
                "it has a forbidden character (such as '@', '%' or a space) or is not a valid international name"
            }
            ::url::ParseError::InvalidIpv4Address => "it ends in a number but is not a valid IPv4 address",
            ::url::ParseError::InvalidIpv6Address => "it is not a valid bracketed IPv6 address",
            ::url::ParseError::InvalidDomainCharacter => "it contains a character not allowed in a host name",
            _ => "it is not a valid host",
        };
        format!("{input:?} is not a valid host: {why}")
    })?;
    let borrowed: ::url::Host<&str> = match &parsed {
        ::url::Host::Domain(name) => ::url::Host::Domain(name.as_str()),
        ::url::Host::Ipv4(addr) => ::url::Host::Ipv4(*addr),
        ::url::Host::Ipv6(addr) => ::url::Host::Ipv6(*addr),
    };
    HostName::from_url_host(borrowed)
}

/// DNS rules on a domain that already went through WHATWG host parsing (so it is ASCII and lowercase).
fn check_domain(parsed: &str) -> Result<String, String> {
    // "example.com." and "example.com" are the same absolute name; only one dot is a spelling, more is an error.
    let name: &str = parsed.strip_suffix('.').unwrap_or(parsed);
    if name.is_empty() {
        return Err("empty host".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("host name longer than {MAX_NAME_LEN} characters ({} characters)", name.len()));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("host name {parsed:?} has an empty label (\"..\" or a leading or extra trailing dot)"));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!("host label longer than {MAX_LABEL_LEN} characters in {name:?}"));
        }
        if let Some(bad) = label.chars().find(|c: &char| !matches!(c, 'a'..='z' | '0'..='9' | '-')) {
            return Err(if bad == '*' {
                format!("{name:?}: '*' is only allowed in host patterns")
            } else {
                format!("host name {name:?} contains {bad:?}; only letters, digits, '-' and '.' are allowed")
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("host label {label:?} starts or ends with '-'"));
        }
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_domains_are_listed_nearest_first() {
        let host: HostName = HostName::parse("a.b.example.com").unwrap();
        assert_eq!(host.parent_domains(), vec!["b.example.com", "example.com", "com"]);
        assert!(HostName::parse("localhost").unwrap().parent_domains().is_empty());
        assert!(HostName::parse("10.1.2.3").unwrap().parent_domains().is_empty());
    }

    #[test]
    fn strict_subdomain_needs_a_dot_and_a_label() {
        assert!(is_strict_subdomain("a.example.com", "example.com"));
        assert!(!is_strict_subdomain("example.com", "example.com"));
        assert!(!is_strict_subdomain(".example.com", "example.com"));
        assert!(!is_strict_subdomain("badexample.com", "example.com"));
    }

    #[test]
    fn port_text_rules() {
        assert_eq!(parse_port("0080"), Ok(80));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert!(parse_port("0").is_err());
        assert!(parse_port("65536").is_err());
        assert!(parse_port("99999999999999999999").is_err());
        assert!(parse_port("+80").is_err());
        assert!(parse_port("").is_err());
    }

    #[test]
    fn split_host_port_handles_brackets() {
        assert_eq!(split_host_port("[::1]:8080"), Ok(("[::1]", Some("8080"))));
        assert_eq!(split_host_port("[::1]"), Ok(("[::1]", None)));
        assert_eq!(split_host_port("h:1"), Ok(("h", Some("1"))));
        assert!(split_host_port("::1").is_err());
        assert!(split_host_port("[::1]x").is_err());
        assert!(split_host_port("[::1").is_err());
    }
}
