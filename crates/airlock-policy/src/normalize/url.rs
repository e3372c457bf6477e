//! HTTP(S) request targets in canonical form.
//!
//! A rule such as "allow `https://api.github.com/repos/`" is only as strong as the parser that decides whether a
//! request is under it. URLs are parsed with the WHATWG parser of the `url` crate (the one browsers follow), which
//! already lowercases the scheme and host, resolves `.` and `..` segments (including `%2e` spellings) and turns `\`
//! into `/`. On top of that this module refuses what servers disagree about and would let one spelling mean two
//! things: userinfo (`https://api.openai.com@evil.io/` goes to `evil.io`), encoded separators and NUL (`%2F`, `%5C`,
//! `%00`), empty segments (`//`) and malformed escapes. Escapes of unreserved characters are decoded (`/rep%6fs/` is
//! `/repos/`) and the remaining escapes get uppercase hex, so one path has one spelling.
//!
//! The query string is kept for whoever forwards the request but is never part of [`Target`]'s `Display` or of any
//! error: it often carries tokens. Errors do not repeat the path either, because some APIs put keys in the path.

use std::fmt;

use super::NormalizeError;
use super::host::{HostName, parse_host, parse_port, split_host_port};

/// The schemes a request target may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http`, default port 80.
    Http,
    /// `https`, default port 443.
    Https,
}

impl Scheme {
    /// The port a URL of this scheme uses when none is written.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request target in canonical form: what a policy decision about an HTTP(S) request looks at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Canonical host.
    pub host: HostName,
    /// Destination port, explicit or the scheme's default.
    pub port: u16,
    /// Whether `port` is the scheme's default port.
    pub default_port: bool,
    /// Normalised path; always starts with '/'.
    pub path: String,
    /// Raw query (after '?'), as the `url` crate serialises it. Never shown in errors or `Display`.
    pub query: Option<String>,
}

impl Target {
    /// Parses an absolute `http` or `https` URL into canonical form; see the module documentation for what is
    /// normalised and what is refused. The fragment is dropped. Errors never include the query, the userinfo or the
    /// path.
    pub fn parse(input: &str) -> Result<Target, NormalizeError> {
        parse_target(input).map_err(|reason: String| NormalizeError::new("url", reason))
    }

    /// Reads a CONNECT-style authority, `host:port` (the port is required, as in a CONNECT request), as an `https`
    /// target with path `/`.
    pub fn from_authority(authority: &str) -> Result<Target, NormalizeError> {
        parse_authority(authority).map_err(|reason: String| NormalizeError::new("url", reason))
    }
}

impl fmt::Display for Target {
    /// `https://api.github.com/repos/x`, with `:port` only when it is not the default, and without the query.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if !self.default_port {
            write!(f, ":{}", self.port)?;
        }
        f.write_str(&self.path)
    }
}

/// Segment-aware prefix test on normalised paths: `/repos` and `/repos/` both match `/repos`, `/repos/` and
/// `/repos/a/b`, but not `/reposX`. The prefix `/` matches every path.
pub fn path_has_prefix(path: &str, prefix: &str) -> bool {
    let prefix: &str = prefix.strip_suffix('/').unwrap_or(prefix);
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

fn parse_target(input: &str) -> Result<Target, String> {
    if input.is_empty() {
        return Err("empty URL".to_owned());
    }
    // The WHATWG parser silently strips tabs and newlines anywhere and spaces at the ends; a request target that
    // needs that is not one we want to guess about.
    if input.bytes().any(|b: u8| b.is_ascii_control() || b == b' ') {
        return Err("URL contains a space or a control character".to_owned());
    }
    check_raw_path(input)?;
    let parsed: ::url::Url = ::url::Url::parse(input).map_err(describe_url_error)?;
    let scheme: Scheme = match parsed.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => return Err(describe_other_scheme(other, input)),
    };
    // `https://api.openai.com@evil.io/` goes to evil.io, and `u:p@` carries a credential: refuse both, quietly.
    if !parsed.username().is_empty() || parsed.password().is_some() || raw_authority_has_at(input) {
        return Err(
            "a user name or password before the host (\"user@\" or \"user:password@\") is not allowed".to_owned()
        );
    }
    let host: HostName = match parsed.host() {
        Some(host) => HostName::from_url_host(host)?,
        None => return Err("URL has no host".to_owned()),
    };
    let port: u16 = parsed.port_or_known_default().ok_or_else(|| "URL has no port".to_owned())?;
    if port == 0 {
        return Err("port 0 is not a valid destination port".to_owned());
    }
    let path: String = normalize_http_path(parsed.path())?;
    Ok(Target {
        scheme,
        host,
        port,
        default_port: port == scheme.default_port(),
        path,
        query: parsed.query().map(str::to_owned),
    })
}

fn parse_authority(authority: &str) -> Result<Target, String> {
    if authority.is_empty() {
        return Err("empty authority".to_owned());
    }
    if authority.contains('@') {
        return Err("a user name or password before the host is not allowed".to_owned());
    }
    if authority.bytes().any(|b: u8| b.is_ascii_control() || matches!(b, b' ' | b'/' | b'\\' | b'?' | b'#')) {
        return Err("an authority is only \"host:port\" (no path, query, spaces or control characters)".to_owned());
    }
    let (host_text, port_text): (&str, Option<&str>) = split_host_port(authority)?;
    let Some(port_text) = port_text else {
        return Err("an authority needs a port, as in \"example.com:443\"".to_owned());
    };
    let port: u16 = parse_port(port_text)?;
    let host: HostName = parse_host(host_text)?;
    Ok(Target {
        scheme: Scheme::Https,
        host,
        port,
        default_port: port == Scheme::Https.default_port(),
        path: "/".to_owned(),
        query: None,
    })
}

/// Explains a `url` parse failure without repeating any of the input.
fn describe_url_error(error: ::url::ParseError) -> String {
    let why: &str = match error {
        ::url::ParseError::RelativeUrlWithoutBase => {
            "not an absolute URL (expected it to start with \"http://\" or \"https://\")"
        }
        ::url::ParseError::EmptyHost => "URL has an empty host",
        ::url::ParseError::IdnaError => {
            "host has a forbidden character (such as '@', '%' or a space) or is not a valid international name"
        }
        ::url::ParseError::InvalidPort => "port is not a number from 1 to 65535",
        ::url::ParseError::InvalidIpv4Address => "host ends in a number but is not a valid IPv4 address",
        ::url::ParseError::InvalidIpv6Address => "host is not a valid bracketed IPv6 address",
        ::url::ParseError::InvalidDomainCharacter => "host contains a character not allowed in a host name",
        ::url::ParseError::Overflow => "URL is too long",
        _ => return format!("not a valid URL ({error})"),
    };
    why.to_owned()
}

/// Names a refused scheme, but only when it is clearly a scheme (followed by "//"). Without the slashes,
/// `user:password@host` and `host:port` also parse with a "scheme", and that text is not ours to repeat.
fn describe_other_scheme(scheme: &str, input: &str) -> String {
    // The parser lowercased the scheme but kept its length, and `input` has no leading whitespace (refused above).
    let written_with_slashes: bool = input.get(scheme.len() + 1..).is_some_and(|rest: &str| rest.starts_with("//"));
    if written_with_slashes {
        format!("scheme {scheme:?} is not allowed; only http and https are")
    } else {
        "not an http or https URL (expected it to start with \"http://\" or \"https://\")".to_owned()
    }
}

/// Whether the authority as written contains '@', even an empty userinfo (`https://@host/`) that the parser drops.
fn raw_authority_has_at(input: &str) -> bool {
    let Some((_, after_scheme)) = input.split_once(':') else {
        return false;
    };
    // Special schemes skip any run of '/' and '\' before the authority.
    let authority_and_rest: &str = after_scheme.trim_start_matches(['/', '\\']);
    let end: usize = authority_and_rest.find(['/', '\\', '?', '#']).unwrap_or(authority_and_rest.len());
    authority_and_rest[..end].contains('@')
}

/// Checks the path as written, before the URL parser resolves dot segments and hides what a server would see:
/// - `/repos//../admin` resolves to `/repos/admin` here, but a server that merges slashes first reaches `/admin`;
/// - `/repos/..;/admin` keeps `..;` as a name here, but servlet containers strip `;params` and then resolve `..`.
///
/// Both are refused.
fn check_raw_path(input: &str) -> Result<(), String> {
    let Some((_, after_scheme)) = input.split_once(':') else {
        return Ok(());
    };
    let rest: &str = after_scheme.trim_start_matches(['/', '\\']);
    let Some(start) = rest.find(['/', '\\']) else {
        return Ok(());
    };
    let path: &str = &rest[start..];
    let path: &str = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    let segments: Vec<&str> = path[1..].split(['/', '\\']).collect();
    let last: usize = segments.len() - 1;
    for (index, segment) in segments.iter().enumerate() {
        if segment.is_empty() && index != last {
            return Err("path has an empty segment (\"//\"); servers disagree on whether to merge it".to_owned());
        }
        if let Some((name, _params)) = segment.split_once(';') {
            let decoded: String = name.to_ascii_lowercase().replace("%2e", ".");
            if decoded == "." || decoded == ".." {
                return Err(
                    "path has a dot segment with parameters (\"..;\"); servers disagree on resolving it".to_owned()
                );
            }
        }
    }
    Ok(())
}

/// Normalises a path as serialised by the `url` crate (ASCII, dot segments already resolved).
fn normalize_http_path(raw: &str) -> Result<String, String> {
    let Some(rest) = raw.strip_prefix('/') else {
        return Err("path does not start with '/'".to_owned());
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let last: usize = segments.len() - 1;
    let mut out: String = String::with_capacity(raw.len());
    for (index, segment) in segments.iter().enumerate() {
        // A trailing slash is meaningful and kept; an empty segment anywhere else is "//", which some servers merge
        // and others do not.
        if segment.is_empty() && index != last {
            return Err("path has an empty segment (\"//\"); servers disagree on whether to merge it".to_owned());
        }
        let segment: String = normalize_segment(segment)?;
        if segment == "." || segment == ".." {
            return Err("path has a \".\" or \"..\" segment hidden by percent-encoding".to_owned());
        }
        out.push('/');
        out.push_str(&segment);
    }
    Ok(out)
}

/// Decodes escapes of unreserved characters, uppercases the rest, refuses encoded separators, NUL and malformed
/// escapes.
fn normalize_segment(segment: &str) -> Result<String, String> {
    let bytes: &[u8] = segment.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i: usize = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let (Some(high), Some(low)) =
            (bytes.get(i + 1).and_then(|b: &u8| hex_value(*b)), bytes.get(i + 2).and_then(|b: &u8| hex_value(*b)))
        else {
            return Err("path has a '%' that is not followed by two hex digits".to_owned());
        };
        let decoded: u8 = (high << 4) | low;
        match decoded {
            b'/' => return Err("path has an encoded '/' (%2F); servers disagree on whether it separates".to_owned()),
            b'\\' => {
                return Err("path has an encoded '\\' (%5C); servers disagree on whether it separates".to_owned());
            }
            0 => return Err("path has an encoded NUL (%00)".to_owned()),
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => out.push(b),
            b => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
        }
        i += 3;
    }
    // The input is the url crate's ASCII serialisation and only ASCII was added, so this cannot fail.
    String::from_utf8(out).map_err(|_| "path is not valid UTF-8 after decoding".to_owned())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_decodes_unreserved_and_uppercases_the_rest() {
        assert_eq!(normalize_segment("rep%6fs"), Ok("repos".to_owned()));
        assert_eq!(normalize_segment("a%7e%2D%5f"), Ok("a~-_".to_owned()));
        assert_eq!(normalize_segment("a%3fb%c3%a9"), Ok("a%3Fb%C3%A9".to_owned()));
    }

    #[test]
    fn segment_refuses_encoded_separators_nul_and_malformed_escapes() {
        for bad in ["a%2fb", "a%2Fb", "a%5cb", "a%5Cb", "%00", "%", "%4", "%zz", "a%g0"] {
            assert!(normalize_segment(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn path_refuses_dot_segments_that_appear_only_after_decoding() {
        assert!(normalize_http_path("/a/%2E").is_err());
        assert!(normalize_http_path("/a/.%2e/b").is_err());
        assert_eq!(normalize_http_path("/a/%2e%2e%2e"), Ok("/a/...".to_owned()));
    }

    #[test]
    fn path_keeps_a_trailing_slash_but_refuses_inner_empty_segments() {
        assert_eq!(normalize_http_path("/"), Ok("/".to_owned()));
        assert_eq!(normalize_http_path("/a/"), Ok("/a/".to_owned()));
        assert!(normalize_http_path("//").is_err());
        assert!(normalize_http_path("/a//").is_err());
    }

    #[test]
    fn raw_authority_at_sign_is_found_even_when_userinfo_is_empty() {
        assert!(raw_authority_has_at("https://@h/"));
        assert!(raw_authority_has_at("https:\\\\u@h/"));
        assert!(!raw_authority_has_at("https://h/a@b"));
        assert!(!raw_authority_has_at("https://h?x=a@b"));
    }
}
