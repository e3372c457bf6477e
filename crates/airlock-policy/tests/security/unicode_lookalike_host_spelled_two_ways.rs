//! Attack: spell a host with Unicode so it looks different to a text comparison but resolves to the same name:
//! full-width dots (`api．github．com`), or an international name in Unicode (`bücher.shop.example`) against a rule
//! written in punycode (`xn--bcher-kva.shop.example`), or the other way round.
//!
//! Defence: hosts in requests and in rules both go through IDNA/UTS-46 mapping to punycode, so every spelling is
//! decided as the one ASCII name DNS will look up. The full-width spelling is allowed exactly as the ASCII one is,
//! and a punycode deny catches the Unicode spelling (and vice versa).

use airlock_policy::Request;

use super::{assert_allowed_by, assert_denied_by, fetch};
use crate::common::Setup;

/// `*.shop.example` is allowed; one international name in it is denied, written in punycode in the deny list, and
/// another written in Unicode.
const CONFIG: &str = r#"
version = 1

[network]
deny = ["xn--bcher-kva.shop.example", "grüße.shop.example"]

[agents.agent]
tools = ["web"]

[tools.web.limits]
memory = "64MiB"

[[tools.web.network]]
hosts = ["*.shop.example"]
"#;

#[test]
fn fullwidth_dots_are_decided_exactly_as_the_ascii_host() {
    let s = Setup::new();
    let e = s.engine();
    let canonical = fetch(&e, "https://api.github.com/repos/a/b");
    assert_allowed_by(&canonical, "tool.web_fetch.network.0");
    for spelling in [
        "https://api．github．com/repos/a/b",
        "https://API．GitHub．com/repos/a/b",
        "https://api。github。com/repos/a/b",
    ] {
        let d = fetch(&e, spelling);
        assert_eq!(*d, *canonical, "{spelling} must decide as api.github.com");
    }
    // And it is the same canonical request, so the second spelling is a cache hit on the first.
    let again = e.decide(&Request::http("orchestrator", "web_fetch", "GET", "https://api．github．com/repos/a/b"));
    assert!(again.cached);
    // The full-width spelling of a denied host is denied by the deny list too.
    assert_denied_by(&fetch(&e, "https://a．evil．example/"), "airlock.network.deny");
}

#[test]
fn punycode_deny_catches_the_unicode_spelling() {
    let s = Setup::with_config(CONFIG);
    let e = s.engine();
    let get = |url: &str| e.decide(&Request::http("agent", "web", "GET", url)).decision;
    for url in ["https://bücher.shop.example/", "https://BÜCHER.shop.example/", "https://xn--bcher-kva.shop.example/"]
    {
        let d = get(url);
        assert_denied_by(&d, "airlock.network.deny");
        assert_eq!(d.reason, "host xn--bcher-kva.shop.example is on the network deny list", "{url}");
    }
    // The wildcard admits other names in the same domain, international ones included.
    assert_allowed_by(&get("https://books.shop.example/"), "tool.web.network.0");
    assert_allowed_by(&get("https://bäcker.shop.example/"), "tool.web.network.0");
}

#[test]
fn unicode_deny_catches_the_punycode_spelling() {
    let s = Setup::with_config(CONFIG);
    let e = s.engine();
    let puny = url::Url::parse("https://grüße.shop.example/").unwrap().host_str().unwrap().to_string();
    assert!(puny.starts_with("xn--"), "{puny}");
    for url in [
        format!("https://{puny}/"),
        "https://Grüße.Shop.Example/".to_string(),
        "https://grüße.shop.example/".to_string(),
    ] {
        let d = e.decide(&Request::http("agent", "web", "GET", &url)).decision;
        assert!(!d.allowed, "{url}: {d:?}");
        assert_eq!(d.policies, vec!["airlock.network.deny".to_string()], "{url}: {d:?}");
    }
}
