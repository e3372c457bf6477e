//! Attack: get a request allowed once (for a privileged agent or a tool with network access), then repeat the same
//! URL as another agent or through another tool and be served the cached allow.
//!
//! Defence: the cache key is the whole canonical request (agent, tool, action, resource, risk, time of week), so the
//! same URL from another agent or tool is a cache miss and decided on its own; in either order.

use airlock_policy::Request;

use super::{assert_allowed_by, assert_denied_by};
use crate::common::Setup;

const URL: &str = "https://api.github.com/repos/a/b";

fn setup() -> Setup {
    let s = Setup::new();
    // An agent with only the editor tool (no network).
    s.append_config("\n[agents.intern]\ntools = [\"editor\"]\n");
    s
}

#[test]
fn allow_cached_for_one_agent_is_not_served_to_another() {
    let s = setup();
    let e = s.engine();
    let first = e.decide(&Request::http("orchestrator", "web_fetch", "GET", URL));
    assert_allowed_by(&first.decision, "tool.web_fetch.network.0");
    assert!(e.decide(&Request::http("orchestrator", "web_fetch", "GET", URL)).cached);
    let other = e.decide(&Request::http("intern", "web_fetch", "GET", URL));
    assert!(!other.cached, "{other:?}");
    assert_denied_by(&other.decision, "airlock.agent-tool-grant[http.request]");
    assert_eq!(other.decision.reason, "agent intern may not use tool web_fetch");
}

#[test]
fn deny_cached_for_one_agent_does_not_shadow_anothers_allow() {
    let s = setup();
    let e = s.engine();
    assert_denied_by(
        &e.decide(&Request::http("intern", "web_fetch", "GET", URL)).decision,
        "airlock.agent-tool-grant[http.request]",
    );
    let allowed = e.decide(&Request::http("orchestrator", "web_fetch", "GET", URL));
    assert!(!allowed.cached);
    assert_allowed_by(&allowed.decision, "tool.web_fetch.network.0");
}

#[test]
fn allow_cached_for_one_tool_is_not_served_to_another() {
    let s = setup();
    let e = s.engine();
    assert_allowed_by(
        &e.decide(&Request::http("orchestrator", "web_fetch", "GET", URL)).decision,
        "tool.web_fetch.network.0",
    );
    let editor = e.decide(&Request::http("orchestrator", "editor", "GET", URL));
    assert!(!editor.cached, "{editor:?}");
    assert!(!editor.decision.allowed, "{editor:?}");
    assert_eq!(editor.decision.reason, "tool editor has no network access");
    // Nor to a riskier repeat of the same request.
    let risky = e.decide(&Request::http("orchestrator", "web_fetch", "GET", URL).risk(90));
    assert!(!risky.cached && !risky.decision.allowed, "{risky:?}");
}
