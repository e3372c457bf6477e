//! Attack: ask as an agent or through a tool the config never mentions (a typo, or a forged identity), hoping an
//! unknown principal falls through to some permissive default.
//!
//! Defence: default deny with a reason: an unknown agent or tool is refused before Cedar is asked, and neither can
//! borrow another's grants.

use airlock_policy::{Action, Request};

use super::{assert_allowed_by, fetch};
use crate::common::{Setup, monday_at};

#[test]
fn unknown_agent_is_denied_for_tools_and_api() {
    let s = Setup::new();
    let e = s.engine();
    assert_allowed_by(&fetch(&e, "https://api.github.com/repos/a"), "tool.web_fetch.network.0");
    for agent in ["mallory", "Orchestrator", "orchestrator ", ""] {
        let d = e.decide(&Request::http(agent, "web_fetch", "GET", "https://api.github.com/repos/a")).decision;
        assert!(!d.allowed && d.policies.is_empty(), "{agent:?}: {d:?}");
        assert_eq!(d.reason, format!("agent {agent} is not configured"));
        let api = e.decide(&Request::api(agent, "jobs", "1", "read", None)).decision;
        assert!(!api.allowed && api.policies.is_empty(), "{agent:?}: {api:?}");
        assert_eq!(api.reason, format!("agent {agent} is not configured"));
    }
}

#[test]
fn unknown_tool_is_denied() {
    let s = Setup::new();
    let e = s.engine();
    for tool in ["curl", "Web_fetch", "*", ""] {
        let d = e.decide(&Request::http("root", tool, "GET", "https://api.github.com/repos/a")).decision;
        assert!(!d.allowed && d.policies.is_empty(), "{tool:?}: {d:?}");
        assert_eq!(d.reason, format!("tool {tool} is not configured"));
        let f =
            e.decide(&Request::fs("root", tool, Action::FsRead, &s.ws("src/main.rs")).at(monday_at(10, 0))).decision;
        assert!(!f.allowed, "{tool:?}: {f:?}");
    }
}
