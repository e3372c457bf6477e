//! Attack: add a trailing dot (`a.evil.example.`), the fully qualified spelling of the same DNS name, so a deny rule
//! compared as text misses it.
//!
//! Defence: one trailing dot is stripped while canonicalising the host (more than one is refused), so the request is
//! decided as `a.evil.example` and denied by `airlock.network.deny`; and an allowed host with a dot stays allowed.

use airlock_policy::Request;

use super::{assert_allowed_by, assert_denied_by, fetch};
use crate::common::Setup;

const CONFIG: &str = r#"
version = 1

[network]
deny = ["a.evil.example"]

[agents.agent]
tools = ["web"]

[tools.web.limits]
memory = "64MiB"

[[tools.web.network]]
hosts = ["*.evil.example"]
"#;

#[test]
fn trailing_dot_on_a_denied_host_is_denied_by_the_deny_list() {
    let s = Setup::with_config(CONFIG);
    let e = s.engine();
    let get = |url: &str| e.decide(&Request::http("agent", "web", "GET", url)).decision;
    let d = get("https://a.evil.example./");
    assert_denied_by(&d, "airlock.network.deny");
    assert_eq!(d.reason, "host a.evil.example is on the network deny list");
    // Without the deny rule the wildcard would admit it: a sibling with a trailing dot is allowed.
    assert_allowed_by(&get("https://b.evil.example./"), "tool.web.network.0");
    // Two dots are not a spelling of anything; refused before any rule.
    let two = get("https://a.evil.example../");
    assert!(!two.allowed && two.policies.is_empty(), "{two:?}");
    assert!(two.reason.starts_with("invalid url"), "{}", two.reason);
}

#[test]
fn trailing_dot_on_the_fixture_deny_list_and_on_an_allowed_host() {
    let s = Setup::new();
    let e = s.engine();
    assert_denied_by(&fetch(&e, "https://a.evil.example./"), "airlock.network.deny");
    assert_denied_by(&fetch(&e, "https://metadata.google.internal./"), "airlock.network.deny");
    let ok = fetch(&e, "https://api.github.com./repos/a/b");
    assert_allowed_by(&ok, "tool.web_fetch.network.0");
    assert_eq!(
        *ok,
        *fetch(&e, "https://api.github.com/repos/a/b"),
        "the dotted spelling must decide as the canonical one"
    );
}
