//! Attack: register `api.github.com.evil.io` (or `evilapi.github.com`-style neighbours) and hope a prefix or
//! substring comparison lets it pass as `api.github.com`, so a tool sends requests and a pinned secret there.
//!
//! Defence: an exact host rule compares whole canonical names (`Host::"api.github.com"` in Cedar), never prefixes
//! or substrings, so the attacker's name is in nobody's allow list and falls to the default deny, while the real
//! host is allowed.

use airlock_policy::Request;

use super::{assert_allowed_by, fetch};
use crate::common::Setup;

#[test]
fn allowed_name_followed_by_an_attacker_suffix_is_not_the_allowed_host() {
    let s = Setup::new();
    let e = s.engine();
    assert_allowed_by(&fetch(&e, "https://api.github.com/repos/a/b"), "tool.web_fetch.network.0");
    for (url, host) in [
        ("https://api.github.com.evil.io/repos/a/b", "api.github.com.evil.io"),
        ("https://api.github.com.evil.io./repos/a/b", "api.github.com.evil.io"),
        ("https://api.github.comevil.io/repos/a/b", "api.github.comevil.io"),
        ("https://xapi.github.com/repos/a/b", "xapi.github.com"),
        ("https://github.com/repos/a/b", "github.com"),
    ] {
        let d = fetch(&e, url);
        assert!(!d.allowed, "{url}: {d:?}");
        assert!(d.policies.is_empty(), "{url}: nothing may permit it: {d:?}");
        assert_eq!(d.reason, format!("host {host} is not in tool web_fetch's allowed hosts"), "{url}");
    }
}

#[test]
fn pinned_secret_is_not_sent_to_the_lookalike_domain() {
    let s = Setup::new();
    let e = s.engine();
    let secret =
        |target: &str| e.decide(&Request::secret("orchestrator", "web_fetch", "GITHUB_TOKEN", target)).decision;
    assert_allowed_by(&secret("https://api.github.com/user"), "tool.web_fetch.secret.GITHUB_TOKEN");
    let d = secret("https://api.github.com.evil.io/user");
    assert!(!d.allowed && d.policies.is_empty(), "{d:?}");
    assert_eq!(d.reason, "secret GITHUB_TOKEN is pinned to api.github.com, not to api.github.com.evil.io");
}
