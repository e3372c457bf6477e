//! Attack: keep the allowed host name but pick another port (`api.github.com:8443`, `:22`), or the other scheme's
//! default (`http://api.github.com:443`), to reach a different service on the same machine.
//!
//! Defence: a rule without a port admits only the request scheme's default port, and a rule with a port admits only
//! that port; the decision says which port was refused.

use super::{assert_allowed_by, fetch};
use crate::common::Setup;

#[test]
fn allowed_host_on_a_non_default_port_is_denied_with_the_port_named() {
    let s = Setup::new();
    let e = s.engine();
    assert_allowed_by(&fetch(&e, "https://api.github.com/repos/a"), "tool.web_fetch.network.0");
    // Writing the default port explicitly is the same request.
    assert_allowed_by(&fetch(&e, "https://api.github.com:443/repos/a"), "tool.web_fetch.network.0");
    for (url, port) in [
        ("https://api.github.com:8443/repos/a", 8443),
        ("https://api.github.com:22/repos/a", 22),
        ("https://api.github.com:0443/repos/b", 443),
        ("http://api.github.com:443/repos/a", 443),
        ("https://api.github.com:80/repos/a", 80),
    ] {
        let d = fetch(&e, url);
        if port == 443 && url.starts_with("https:") {
            // Leading zeros are only a spelling of the default port.
            assert_allowed_by(&d, "tool.web_fetch.network.0");
            continue;
        }
        assert!(!d.allowed, "{url}: {d:?}");
        assert!(d.policies.is_empty(), "{url}: {d:?}");
        assert_eq!(d.reason, format!("port {port} is not allowed for host api.github.com by tool web_fetch"), "{url}");
    }
}

#[test]
fn rule_with_an_explicit_port_admits_only_that_port() {
    let s = Setup::new();
    let e = s.engine();
    assert_allowed_by(&fetch(&e, "https://docs.rs:8443/x"), "tool.web_fetch.network.1");
    for (url, port) in [("https://docs.rs/x", 443), ("https://docs.rs:8444/x", 8444), ("http://docs.rs/x", 80)] {
        let d = fetch(&e, url);
        assert!(!d.allowed, "{url}: {d:?}");
        assert_eq!(d.reason, format!("port {port} is not allowed for host docs.rs by tool web_fetch"), "{url}");
    }
}
