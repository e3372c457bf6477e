//! Attack: start the path with an allowed prefix (`/repos/`) and climb out of it with a dot segment the rule check
//! does not see but the server resolves: `/repos/../admin`, percent-encoded dots (`%2e%2e`, `%2E%2E`, `.%2e`), an
//! encoded slash (`..%2fadmin`, `/repos%2f..%2fadmin`), an empty segment some servers merge (`/repos//../admin`), or
//! a backslash that WHATWG parsers treat as `/` (`/repos\..\admin`).
//!
//! Defence: the URL is parsed with the WHATWG parser, which resolves `.`/`..` in every spelling before the prefix is
//! compared; what servers disagree about (encoded `/` or `\`, empty segments, dot segments only visible after
//! decoding) is refused. Either way `tool.web_fetch.network.0` (which allows `/repos/` and `/users` on
//! api.github.com) never permits the request.

use super::{assert_allowed_by, fetch};
use crate::common::Setup;

const OUTSIDE: &str =
    "path /admin is outside tool web_fetch's allowed paths for api.github.com (allowed: /repos/, /users)";

#[test]
fn dot_segments_in_every_spelling_resolve_outside_the_prefix_and_are_denied() {
    let s = Setup::new();
    let e = s.engine();
    assert_allowed_by(&fetch(&e, "https://api.github.com/repos/a/admin"), "tool.web_fetch.network.0");
    for path in [
        "/repos/../admin",
        "/repos/%2e%2e/admin",
        "/repos/%2E%2E/admin",
        "/repos/.%2e/admin",
        "/repos/%2e./admin",
        "/repos\\..\\admin",
        "/repos/a/../../admin",
    ] {
        let d = fetch(&e, &format!("https://api.github.com{path}"));
        assert!(!d.allowed, "{path}: {d:?}");
        assert!(!d.policies.iter().any(|p| p == "tool.web_fetch.network.0"), "{path}: {d:?}");
        assert_eq!(d.reason, OUTSIDE, "{path}");
    }
}

#[test]
fn encoded_separators_are_refused_before_any_rule() {
    let s = Setup::new();
    let e = s.engine();
    for path in
        ["/repos/..%2fadmin", "/repos%2f..%2fadmin", "/repos/..%2Fadmin", "/repos/..%5cadmin", "/repos/x%00/admin"]
    {
        let d = fetch(&e, &format!("https://api.github.com{path}"));
        assert!(!d.allowed, "{path}: {d:?}");
        assert!(d.policies.is_empty(), "{path}: {d:?}");
        assert!(d.reason.starts_with("invalid url: path has an encoded"), "{path}: {}", d.reason);
        assert!(!d.reason.contains("admin"), "{path}: the path must not be echoed: {}", d.reason);
    }
}

#[test]
fn empty_segment_before_a_dot_dot_is_not_allowed_under_the_prefix() {
    // `/repos//../admin` is `/repos/admin` to a parser that keeps empty segments and `/admin` to a server that
    // merges slashes first. Whichever it is, the two readings disagree, and it must not be allowed as `/repos/...`.
    let s = Setup::new();
    let e = s.engine();
    let allowed: Vec<String> = ["/repos//../admin", "/repos/a//../../admin", "/repos//admin"]
        .into_iter()
        .map(|path| (path, fetch(&e, &format!("https://api.github.com{path}"))))
        .filter(|(_, d)| d.allowed || d.policies.iter().any(|p| p == "tool.web_fetch.network.0"))
        .map(|(path, d)| format!("{path} -> {d:?}"))
        .collect();
    assert!(allowed.is_empty(), "allowed under /repos/:\n{}", allowed.join("\n"));
}

#[test]
fn semicolon_dot_dot_segment_is_not_allowed_under_the_prefix() {
    // Servlet containers strip `;params` from a segment before resolving it, so `/repos/..;/admin` reaches `/admin`
    // there while a plain parser sees a file named `..;` under `/repos/`.
    let s = Setup::new();
    let e = s.engine();
    let allowed: Vec<String> =
        ["/repos/..;/admin", "/repos/..;x=1/admin", "/repos/%2e%2e;/admin", "/repos/.;/../admin"]
            .into_iter()
            .map(|path| (path, fetch(&e, &format!("https://api.github.com{path}"))))
            .filter(|(_, d)| d.allowed || d.policies.iter().any(|p| p == "tool.web_fetch.network.0"))
            .map(|(path, d)| format!("{path} -> {d:?}"))
            .collect();
    assert!(allowed.is_empty(), "allowed under /repos/:\n{}", allowed.join("\n"));
}
