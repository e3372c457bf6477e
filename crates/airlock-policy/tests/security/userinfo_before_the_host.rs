//! Attack: put the allowed host in the userinfo (`https://api.github.com@evil.io/`), so a careless reader sees
//! api.github.com while the request goes to evil.io; or smuggle a credential as `user:password@` in front of an
//! allowed host.
//!
//! Defence: any `@` in the authority is refused outright, and the refusal does not repeat the userinfo (it may be a
//! password), so neither spelling can reach a rule and the reason shown to the model leaks nothing.

use super::{assert_allowed_by, fetch};
use crate::common::Setup;

#[test]
fn allowed_host_as_userinfo_is_refused_without_echoing_it() {
    let s = Setup::new();
    let e = s.engine();
    for url in [
        "https://api.github.com@evil.io/",
        "https://api.github.com@evil.io/repos/a",
        "https://api.github.com:443@evil.io/repos/a",
        "https://@api.github.com/repos/a",
    ] {
        let d = fetch(&e, url);
        assert!(!d.allowed, "{url}: {d:?}");
        assert!(d.policies.is_empty(), "{url}: {d:?}");
        assert!(d.reason.contains("a user name or password before the host"), "{url}: {}", d.reason);
        assert!(!d.reason.contains("api.github.com"), "{url}: the reason echoes the userinfo: {}", d.reason);
        assert!(d.errors.iter().all(|x| !x.contains("api.github.com")), "{url}: {:?}", d.errors);
    }
}

#[test]
fn credential_before_an_allowed_host_is_refused_and_not_echoed() {
    let s = Setup::new();
    let e = s.engine();
    // Without the userinfo this request is allowed; with it, it must not be.
    assert_allowed_by(&fetch(&e, "https://api.github.com/repos/a"), "tool.web_fetch.network.0");
    let d = fetch(&e, "https://alice:hunter2@api.github.com/repos/a");
    assert!(!d.allowed, "{d:?}");
    assert!(d.policies.is_empty(), "{d:?}");
    assert!(d.reason.contains("a user name or password before the host"), "{}", d.reason);
    let shown = format!("{} {:?}", d.reason, d.errors);
    assert!(!shown.contains("hunter2") && !shown.contains("alice"), "credential echoed: {shown}");
}
