//! Attack: break the config on disk (a typo, a half-written file) so that a reload either leaves the daemon running
//! with no policy or a partial one; or rely on the decision cache to keep serving an allow after the operator has
//! removed the rule that granted it.
//!
//! Defence: `PolicyStore::reload` builds the new engine entirely off to the side; a bad file returns the errors and
//! the old engine keeps serving unchanged. A good reload swaps in a new engine whose cache starts empty, so an allow
//! cached under the old rules is not served under the new ones.

use airlock_policy::{PolicyStore, Request};

use super::{assert_allowed_by, assert_denied_by};
use crate::common::Setup;

fn github() -> Request {
    Request::http("orchestrator", "web_fetch", "GET", "https://api.github.com/repos/a/b")
}

#[test]
fn broken_reload_keeps_the_old_policy_serving() {
    let s = Setup::new();
    let store = PolicyStore::open(&s.config, s.opts(None)).unwrap();
    assert_allowed_by(&store.decide(&github()).decision, "tool.web_fetch.network.0");
    let denied = Request::http("orchestrator", "web_fetch", "GET", "https://a.evil.example/");
    assert_denied_by(&store.decide(&denied).decision, "airlock.network.deny");
    let generation = store.generation();
    let fixture = std::fs::read_to_string(&s.config).unwrap();

    for (what, broken) in [
        ("malformed TOML", "version = 1\n[tools.web_fetch\n".to_string()),
        ("an unknown key", fixture.replace("hosts = [\"api.github.com\"]", "hots = [\"api.github.com\"]")),
        ("an emptied file that names an unknown tool", "version = 1\n[agents.a]\ntools = [\"nope\"]\n".to_string()),
        ("a Cedar type error", fixture.clone()),
    ] {
        if what == "a Cedar type error" {
            s.write_file("policies/zz-bad.cedar", "forbid(principal, action, resource) when { context.nope };\n");
        }
        s.write_config(&broken);
        let err = store.reload().expect_err(what);
        assert!(!err.diagnostics.is_empty(), "{what}");
        assert_eq!(store.generation(), generation, "{what}: a failed reload must not count as a new generation");
        assert_allowed_by(&store.decide(&github()).decision, "tool.web_fetch.network.0");
        assert_denied_by(&store.decide(&denied).decision, "airlock.network.deny");
    }
}

#[test]
fn good_reload_drops_a_cached_allow_when_the_rule_is_removed() {
    let s = Setup::new();
    let store = PolicyStore::open(&s.config, s.opts(None)).unwrap();
    assert!(!store.decide(&github()).cached);
    let cached = store.decide(&github());
    assert!(cached.cached, "second decision comes from the cache");
    assert_allowed_by(&cached.decision, "tool.web_fetch.network.0");
    let old = store.engine();

    // Remove the api.github.com rule (and the secret pinned to it, which would otherwise be an unreachable pin).
    let fixture = std::fs::read_to_string(&s.config).unwrap();
    let without = fixture.replace(
        "[[tools.web_fetch.network]]\nhosts = [\"api.github.com\"]\nmethods = [\"GET\", \"HEAD\"]\npaths = [\"/repos/\", \"/users\"]\n",
        "",
    );
    assert_ne!(without, fixture, "the fixture changed; update this test");
    s.write_config(&without);
    let r = store.reload().unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(r.generation, 2);
    let after = store.decide(&github());
    assert!(!after.cached, "a decision cached under the old config was served: {after:?}");
    assert!(!after.decision.allowed, "{after:?}");
    assert_eq!(after.decision.reason, "host api.github.com is not in tool web_fetch's allowed hosts");
    // Holders of the old engine keep the old, consistent answer; the store serves the new one.
    assert!(old.decide(&github()).decision.allowed);
    assert!(!store.decide(&github()).decision.allowed);
}
