//! Attack: configure (or get an operator to configure) a sub-agent with a tool its parent lacks, directly or through
//! a role, so a delegating agent gains a capability by spawning a child; or delegate deeper than `max_depth`.
//!
//! Defence: the model pass refuses the whole config: `sub-agent-escalation` when a child's tools (own and via roles)
//! or API permissions (via roles) exceed its parent's, `max-depth` when an agent sits more levels below an ancestor
//! than that ancestor's `max_depth` allows, or when a child's own schedule reaches outside an ancestor's. No engine
//! is built. A child with a subset of its parent's tools loads; it inherits the lowest `max_risk` on its chain and
//! the nearest ancestor's schedule when it has none.

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

#[test]
fn child_inherits_its_parents_lower_risk_ceiling_and_schedule() {
    let s = setup(
        r#"
[agents.parent]
tools = ["web"]
max_risk = 40
schedule = { days = ["mon"], hours = "09:00-17:00" }

[agents.child]
parent = "parent"
tools = ["web"]
max_risk = 90
"#,
    );
    let e = s.engine();
    let at = |hour: u64, risk: u8| {
        e.decide(
            &Request::http("child", "web", "GET", "https://api.github.com/")
                .risk(risk)
                .at(crate::common::monday_at(hour, 0)),
        )
        .decision
    };
    assert!(at(10, 30).allowed, "{:?}", at(10, 30));
    let risky = at(10, 50);
    assert!(!risky.allowed, "the parent's ceiling of 40 applies: {risky:?}");
    assert!(risky.reason.contains("maximum of 40"), "{}", risky.reason);
    let late = at(20, 0);
    assert!(!late.allowed, "the parent's schedule applies: {late:?}");
}

#[test]
fn child_scheduled_outside_its_parents_window_is_refused() {
    let agents = r#"
[agents.parent]
tools = ["web"]
schedule = { days = ["mon", "tue"], hours = "09:00-17:00" }

[agents.child]
parent = "parent"
tools = ["web"]
schedule = { days = ["mon"], hours = "08:00-12:00" }
"#;
    let s = setup(agents);
    let err = s.load_err(None);
    let d = diag(&err, "sub-agent-escalation");
    assert!(d.message.contains("outside its ancestor parent's"), "{}", d.message);
    // Inside the parent's window is fine.
    let ok = setup(&agents.replace("08:00-12:00", "09:00-12:00"));
    ok.engine();
}
