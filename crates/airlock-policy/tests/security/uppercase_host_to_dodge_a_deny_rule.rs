//! Attack: write a denied host in capitals (`A.EVIL.EXAMPLE`) so that a deny rule compared as text does not match,
//! while DNS, which is case-insensitive, still resolves it to the denied machine.
//!
//! Defence: hosts are lowercased (WHATWG host parsing) before any rule sees them, and deny patterns in the config go
//! through the same parser, so `A.EVIL.EXAMPLE` is decided as `a.evil.example` and hits `airlock.network.deny`.

use airlock_policy::Request;

use super::{assert_allowed_by, assert_denied_by, fetch};
use crate::common::Setup;

/// A tool that may reach anything under evil.example, and a deny list that carves one host out of it.
const CONFIG: &str = r#"
version = 1

[network]
deny = ["a.evil.example", "C.EVIL.EXAMPLE"]

[agents.agent]
tools = ["web"]

[tools.web.limits]
memory = "64MiB"

[[tools.web.network]]
hosts = ["*.evil.example"]
"#;

#[test]
fn uppercase_spelling_of_a_denied_host_is_denied_by_the_deny_list() {
    let s = Setup::with_config(CONFIG);
    let e = s.engine();
    let get = |url: &str| e.decide(&Request::http("agent", "web", "GET", url)).decision;
    for url in ["https://A.EVIL.EXAMPLE/", "https://A.Evil.Example/x", "https://a.EVIL.example/"] {
        let d = get(url);
        assert_denied_by(&d, "airlock.network.deny");
        assert_eq!(d.reason, "host a.evil.example is on the network deny list", "{url}");
    }
    // The tool's wildcard does admit the neighbours, in any case: only the deny rule stops a.evil.example.
    assert_allowed_by(&get("https://B.EVIL.EXAMPLE/"), "tool.web.network.0");
    assert_allowed_by(&get("https://b.evil.example/"), "tool.web.network.0");
}

#[test]
fn deny_rule_written_in_capitals_catches_the_lowercase_request() {
    let s = Setup::with_config(CONFIG);
    let e = s.engine();
    let d = e.decide(&Request::http("agent", "web", "GET", "https://c.evil.example/")).decision;
    assert_denied_by(&d, "airlock.network.deny");
    assert_eq!(d.reason, "host c.evil.example is on the network deny list");
}

#[test]
fn fixture_wildcard_deny_catches_an_uppercase_subdomain() {
    let s = Setup::new();
    let e = s.engine();
    let d = fetch(&e, "https://A.EVIL.EXAMPLE/");
    assert_denied_by(&d, "airlock.network.deny");
    assert_eq!(d.reason, "host a.evil.example is on the network deny list");
}
