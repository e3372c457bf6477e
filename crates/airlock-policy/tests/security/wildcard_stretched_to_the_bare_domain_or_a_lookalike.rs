//! Attack: use a wildcard rule (`*.wikipedia.org`) to reach a host it was not meant for: the bare domain
//! `wikipedia.org`, or a lookalike that merely ends in the same letters, `badwikipedia.org`.
//!
//! Defence: `*.D` means "strictly below D": Cedar's `resource in Domain::"D"` holds only for hosts that have D as a
//! parent domain (a whole label boundary), so neither the bare domain nor a name that ends in `...D` without the dot
//! matches, while a real subdomain does.

use super::{assert_allowed_by, fetch};
use crate::common::Setup;

#[test]
fn wildcard_matches_neither_the_bare_domain_nor_a_lookalike_suffix() {
    let s = Setup::new();
    let e = s.engine();
    assert_allowed_by(&fetch(&e, "https://en.wikipedia.org/wiki/X"), "tool.web_fetch.network.1");
    assert_allowed_by(&fetch(&e, "https://a.b.wikipedia.org/"), "tool.web_fetch.network.1");
    for (url, host) in [
        ("https://wikipedia.org/wiki/X", "wikipedia.org"),
        ("https://wikipedia.org./wiki/X", "wikipedia.org"),
        ("https://badwikipedia.org/wiki/X", "badwikipedia.org"),
        ("https://en.badwikipedia.org/wiki/X", "en.badwikipedia.org"),
        ("https://en.wikipedia.org.evil.io/wiki/X", "en.wikipedia.org.evil.io"),
    ] {
        let d = fetch(&e, url);
        assert!(!d.allowed, "{url}: {d:?}");
        assert!(d.policies.is_empty(), "{url}: {d:?}");
        assert_eq!(d.reason, format!("host {host} is not in tool web_fetch's allowed hosts"), "{url}");
    }
}
