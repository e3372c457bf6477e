//! Attack: configure (or get an operator to configure) a sub-agent with a tool its parent lacks, directly or through
//! a role, so a delegating agent gains a capability by spawning a child; or delegate deeper than `max_depth`.
//!
//! Defence: the model pass refuses the whole config: `sub-agent-escalation` when a child's tools (own and via roles)
//! or API permissions (via roles) exceed its parent's, `max-depth` when an agent sits more levels below an ancestor
//! than that ancestor's `max_depth` allows. No engine is built. A child with a subset of its parent's tools loads.

use airlock_policy::{Request, Severity};

use crate::common::{Setup, diag, line_col};

const TOOLS: &str = r#"
[tools.web.limits]
memory = "64MiB"

[[tools.web.network]]
hosts = ["api.github.com"]

[tools.shell.limits]
memory = "64MiB"
"#;

fn setup(agents: &str) -> Setup {
    Setup::with_config(&text(agents))
}

fn text(agents: &str) -> String {
    format!("version = 1\n{agents}\n{TOOLS}")
}

#[test]
fn child_with_a_tool_its_parent_lacks_is_refused() {
    let agents = r#"
[agents.parent]
tools = ["web"]

[agents.child]
parent = "parent"
tools = ["web", "shell"]
"#;
    let s = setup(agents);
    let err = s.load_err(None);
    let d = diag(&err, "sub-agent-escalation");
    assert_eq!(d.severity, Severity::Error);
    assert!(d.message.contains("agent child may use tool shell, but its parent parent may not"), "{}", d.message);
    assert_eq!((d.line, d.column), line_col(&text(agents), "child]"), "points at [agents.child]: {d}");
}

#[test]
fn child_escalating_through_a_role_is_refused() {
    let s = setup(
        r#"
[roles.everything]
tools = ["*"]

[agents.parent]
tools = ["web"]

[agents.child]
parent = "parent"
roles = ["everything"]
"#,
    );
    let err = s.load_err(None);
    let d = diag(&err, "sub-agent-escalation");
    assert!(d.message.contains("every tool"), "{}", d.message);
}

#[test]
fn delegation_deeper_than_max_depth_is_refused() {
    // parent allows one level; grandchild is two below it.
    let agents = r#"
[agents.parent]
tools = ["web"]
max_depth = 1

[agents.child]
parent = "parent"
tools = ["web"]

[agents.grandchild]
parent = "child"
tools = ["web"]
"#;
    let s = setup(agents);
    let err = s.load_err(None);
    let d = diag(&err, "max-depth");
    assert!(d.message.contains("agent grandchild is 2 level(s) below parent, whose max_depth is 1"), "{}", d.message);
    assert_eq!((d.line, d.column), line_col(&text(agents), "grandchild]"), "points at [agents.grandchild]: {d}");
    // max_depth = 0: no sub-agents at all.
    let s = setup(
        r#"
[agents.parent]
tools = ["web"]
max_depth = 0

[agents.child]
parent = "parent"
tools = ["web"]
"#,
    );
    let err = s.load_err(None);
    assert!(diag(&err, "max-depth").message.contains("agent child is 1 level(s) below parent, whose max_depth is 0"));
}

#[test]
fn child_with_a_subset_of_its_parents_tools_loads_and_is_confined_to_it() {
    let s = setup(
        r#"
[agents.parent]
tools = ["web", "shell"]
max_depth = 1

[agents.child]
parent = "parent"
tools = ["web"]
"#,
    );
    let e = s.engine();
    let ok = e.decide(&Request::http("child", "web", "GET", "https://api.github.com/")).decision;
    assert!(ok.allowed, "{ok:?}");
    let no = e.decide(&Request::exec("child", "shell", "ls")).decision;
    assert!(!no.allowed);
    assert_eq!(no.policies, vec!["airlock.agent-tool-grant[exec]".to_string()]);
}

#[test]
fn child_with_an_api_role_its_parent_lacks_is_refused() {
    // The child's tools are a subset of its parent's, but its role grants every API call where the parent may only
    // touch its own conversations: spawning the child would escalate.
    let agents = r#"
[roles.admin]
permissions = ["*"]

[roles.user]
permissions = ["conversations:own:*"]

[agents.parent]
roles = ["user"]
tools = ["web"]

[agents.child]
parent = "parent"
roles = ["admin"]
tools = ["web"]
"#;
    let s = setup(agents);
    let err = s.load_err(None);
    let d = diag(&err, "sub-agent-escalation");
    assert!(d.message.contains("permission *"), "{}", d.message);
}

#[test]
fn child_with_api_permissions_within_its_parents_loads() {
    let s = setup(
        r#"
[roles.ops]
permissions = ["jobs:*", "conversations:read"]

[roles.reader]
permissions = ["jobs:own:read", "conversations:read"]

[agents.parent]
roles = ["ops"]
tools = ["web"]

[agents.child]
parent = "parent"
roles = ["reader"]
tools = ["web"]
"#,
    );
    let e = s.engine();
    let d = e.decide(&Request::api("child", "jobs", "1", "read", Some("child"))).decision;
    assert!(d.allowed, "{d:?}");
}
