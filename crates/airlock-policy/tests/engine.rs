//! Decisions on the fixture config: what is allowed, what is denied, and what the reason says.

mod common;

use airlock_policy::{Action, Request};
use common::{Setup, monday_at};

#[test]
fn github_api_get_under_allowed_path_is_allowed_by_the_network_rule() {
    let s = Setup::new();
    let e = s.engine();
    let d = e.decide(&Request::http("orchestrator", "web_fetch", "GET", "https://api.github.com/repos/a/b")).decision;
    assert!(d.allowed, "{d:?}");
    assert_eq!(d.policies, vec!["tool.web_fetch.network.0".to_string()]);
    assert!(d.reason.contains("tool web_fetch may send GET, HEAD to api.github.com"), "{}", d.reason);
}

#[test]
fn unknown_host_is_denied_with_a_reason_naming_the_host_and_tool() {
    let s = Setup::new();
    let e = s.engine();
    let d = e.decide(&Request::http("orchestrator", "web_fetch", "GET", "https://evil.example/x")).decision;
    assert!(!d.allowed);
    assert!(d.policies.is_empty(), "default deny has no determining policy: {:?}", d.policies);
    assert_eq!(d.reason, "host evil.example is not in tool web_fetch's allowed hosts");
}

#[test]
fn denied_method_path_port_and_size_each_get_their_own_reason() {
    let s = Setup::new();
    let e = s.engine();
    let reason = |r: Request| e.decide(&r).decision.reason.clone();
    assert_eq!(
        reason(Request::http("orchestrator", "web_fetch", "DELETE", "https://api.github.com/repos/a")),
        "method DELETE is not allowed for api.github.com by tool web_fetch (allowed: GET, HEAD)"
    );
    assert_eq!(
        reason(Request::http("orchestrator", "web_fetch", "GET", "https://api.github.com/admin")),
        "path /admin is outside tool web_fetch's allowed paths for api.github.com (allowed: /repos/, /users)"
    );
    assert_eq!(
        reason(Request::http("orchestrator", "web_fetch", "GET", "https://api.github.com:8443/repos/a")),
        "port 8443 is not allowed for host api.github.com by tool web_fetch"
    );
    assert_eq!(
        reason(Request::http("orchestrator", "web_fetch", "POST", "https://uploads.example.com/f").bytes(4096)),
        "a request body of 4096 bytes exceeds tool web_fetch's limit of 1024 bytes for uploads.example.com"
    );
}

#[test]
fn explicit_port_rule_allows_only_that_port() {
    let s = Setup::new();
    let e = s.engine();
    assert!(e.decide(&Request::http("orchestrator", "web_fetch", "GET", "https://docs.rs:8443/x")).decision.allowed);
    assert!(!e.decide(&Request::http("orchestrator", "web_fetch", "GET", "https://docs.rs/x")).decision.allowed);
}

#[test]
fn network_deny_list_beats_nothing_and_names_itself() {
    let s = Setup::new();
    let e = s.engine();
    let d = e.decide(&Request::http("orchestrator", "web_fetch", "GET", "https://a.evil.example/")).decision;
    assert!(!d.allowed);
    assert_eq!(d.policies, vec!["airlock.network.deny".to_string()]);
    assert_eq!(d.reason, "host a.evil.example is on the network deny list");
}

#[test]
fn agent_without_the_tool_is_refused_by_the_grant_policy() {
    let s = Setup::new();
    let e = s.engine();
    let d = e
        .decide(&Request::http("researcher", "shell", "GET", "https://api.github.com/repos/a").at(monday_at(10, 0)))
        .decision;
    assert!(!d.allowed);
    assert_eq!(d.policies, vec!["airlock.agent-tool-grant[http.request]".to_string()]);
    assert_eq!(d.reason, "agent researcher may not use tool shell");
}

#[test]
fn fs_read_inside_workspace_allowed_mask_and_user_forbid_deny() {
    let s = Setup::new();
    let e = s.engine();
    let read =
        |p: &str| e.decide(&Request::fs("orchestrator", "shell", Action::FsRead, p).at(monday_at(10, 0))).decision;
    assert!(read(&s.ws("src/main.rs")).allowed);
    let env = read(&s.ws(".env"));
    assert!(!env.allowed);
    assert!(env.reason.contains("excluded from tool shell's read paths by !"), "{}", env.reason);
    let pem = read(&s.ws("key.pem"));
    assert!(!pem.allowed, "{pem:?}");
    let git = read(&s.ws(".git/config"));
    assert!(!git.allowed);
    assert_eq!(git.policies, vec!["no-git-config".to_string()]);
    assert_eq!(git.reason, format!("{} holds repository credentials", s.ws(".git/config")));
}

#[test]
fn credential_store_is_denied_even_through_a_symlink_in_the_workspace() {
    let s = Setup::new();
    std::os::unix::fs::symlink(s.home.join(".ssh"), s.workspace.join("innocent")).unwrap();
    let e = s.engine();
    let d = e
        .decide(
            &Request::fs("orchestrator", "shell", Action::FsRead, &s.ws("innocent/id_ed25519")).at(monday_at(10, 0)),
        )
        .decision;
    assert!(!d.allowed);
    assert_eq!(d.policies, vec!["airlock.fs.credentials[fs.read]".to_string()]);
}

#[test]
fn exec_allow_and_deny_lists() {
    let s = Setup::new();
    let e = s.engine();
    let run = |p: &str| e.decide(&Request::exec("orchestrator", "shell", p).at(monday_at(10, 0))).decision;
    assert!(run("ls").allowed, "{:?}", run("ls"));
    let rm = run("rm");
    assert!(!rm.allowed);
    assert_eq!(rm.policies, vec!["tool.shell.exec.deny".to_string()]);
    let bad = run("python3-not-here");
    assert!(!bad.allowed);
}

#[test]
fn secret_use_only_toward_pinned_host() {
    let s = Setup::new();
    let e = s.engine();
    let ok =
        e.decide(&Request::secret("orchestrator", "web_fetch", "GITHUB_TOKEN", "https://api.github.com/user")).decision;
    assert!(ok.allowed, "{ok:?}");
    let no =
        e.decide(&Request::secret("orchestrator", "web_fetch", "GITHUB_TOKEN", "api.github.com.evil.io:443")).decision;
    assert!(!no.allowed);
    assert_eq!(no.reason, "secret GITHUB_TOKEN is pinned to api.github.com, not to api.github.com.evil.io");
}

#[test]
fn rbac_roles_with_wildcards_and_own_scoping() {
    let s = Setup::new();
    let e = s.engine();
    let api = |agent: &str, kind: &str, verb: &str, owner: Option<&str>| {
        e.decide(&Request::api(agent, kind, "42", verb, owner)).decision.allowed
    };
    assert!(api("root", "anything", "delete", None));
    assert!(api("orchestrator", "conversations", "delete", Some("root")));
    assert!(api("orchestrator", "jobs", "create", None));
    assert!(!api("orchestrator", "secrets", "read", None));
    assert!(api("researcher", "conversations", "read", Some("researcher")));
    assert!(!api("researcher", "conversations", "read", Some("orchestrator")));
    assert!(!api("researcher", "conversations", "read", None));
}

#[test]
fn schedule_and_risk_forbids_give_reasons() {
    let s = Setup::new();
    let e = s.engine();
    let at = |h| e.decide(&Request::exec("orchestrator", "shell", "ls").at(monday_at(h, 0))).decision;
    assert!(at(10).allowed);
    let night = at(20);
    assert!(!night.allowed);
    assert_eq!(night.reason, "tool shell is only available Mon,Tue,Wed,Thu,Fri 09:00-17:00 UTC");
    let risky = e
        .decide(&Request::http("orchestrator", "web_fetch", "GET", "https://api.github.com/repos/a").risk(90))
        .decision;
    assert!(!risky.allowed);
    assert!(risky.reason.contains("risk score 90 is above tool web_fetch's maximum of 80"), "{}", risky.reason);
    let sub =
        e.decide(&Request::http("researcher", "web_fetch", "GET", "https://api.github.com/repos/a").risk(55)).decision;
    assert!(!sub.allowed, "{sub:?}");
    assert_eq!(sub.policies, vec!["subagents-low-risk".to_string()]);
}

#[test]
fn second_identical_request_is_served_from_the_cache() {
    let s = Setup::new();
    let e = s.engine();
    let r = Request::http("orchestrator", "web_fetch", "GET", "https://api.github.com/repos/a").at(monday_at(10, 0));
    assert!(!e.decide(&r).cached);
    let second = e.decide(&r);
    assert!(second.cached);
    assert!(second.decision.allowed);
}

#[test]
fn allow_private_prefixes_exempt_address_literals_from_the_private_address_rule() {
    let s = Setup::with_config(
        r#"
version = 1
[network]
allow_private = ["127.0.0.1", "10.20.0.0/16"]
[agents.a]
tools = ["t"]
[tools.t]
[[tools.t.network]]
hosts = ["127.0.0.1:*", "127.0.0.2:*", "10.20.3.4:*", "10.21.0.1:*"]
"#,
    );
    let e = s.engine();
    let allowed = |url: &str| e.decide(&Request::http("a", "t", "GET", url)).decision.allowed;
    assert!(allowed("http://127.0.0.1:8080/"));
    assert!(allowed("http://10.20.3.4:8080/"));
    // Outside the listed prefixes, the rule still holds.
    assert!(!allowed("http://127.0.0.2:8080/"));
    assert!(!allowed("http://10.21.0.1:8080/"));
}
