//! One file per bypass attempt: each names the attack, says which defence stops it, and fails if that defence is
//! removed (it checks the deny and the policy or reason that gives it, and where there is one, that the canonical
//! spelling of the same request is still allowed, so a test cannot pass by denying everything).

#[path = "../common/mod.rs"]
mod common;

mod allowed_host_as_prefix_of_an_attacker_domain;
mod allowed_host_on_another_port;
mod broken_hot_reload_and_stale_cache;
mod dangling_symlink_in_a_writable_dir;
mod decision_cache_poisoning_across_agents_and_tools;
mod deny_glob_naming_a_directory;
mod dot_dot_path_out_of_the_workspace;
mod erroring_forbid_letting_a_permit_through;
mod exec_by_relative_path;
mod exec_through_a_renamed_symlink_or_copy;
mod glob_characters_in_a_home_or_workspace_name;
mod http_method_spelling;
mod ipv4_number_forms_to_reach_loopback_or_metadata;
mod percent_encoded_traversal_in_a_file_path;
mod secret_sent_over_plain_http;
mod sub_agent_escalation;
mod trailing_dot_to_dodge_a_deny_rule;
mod unicode_lookalike_host_spelled_two_ways;
mod unknown_agent_or_tool;
mod uppercase_host_to_dodge_a_deny_rule;
mod url_path_traversal_out_of_an_allowed_prefix;
mod userinfo_before_the_host;
mod wildcard_stretched_to_the_bare_domain_or_a_lookalike;
mod workspace_symlink_to_a_credential_store;

use std::sync::Arc;

use airlock_policy::{Decision, Engine, Request};

/// `GET url` by the fixture's orchestrator through `web_fetch`.
fn fetch(e: &Engine, url: &str) -> Arc<Decision> {
    e.decide(&Request::http("orchestrator", "web_fetch", "GET", url)).decision
}

/// Asserts a deny determined by exactly `policy`.
#[track_caller]
fn assert_denied_by(d: &Decision, policy: &str) {
    assert!(!d.allowed, "must be denied: {d:?}");
    assert_eq!(d.policies, vec![policy.to_string()], "denied by the wrong policy: {d:?}");
}

/// Asserts an allow that `policy` granted.
#[track_caller]
fn assert_allowed_by(d: &Decision, policy: &str) {
    assert!(d.allowed, "must be allowed: {d:?}");
    assert!(d.policies.iter().any(|p| p == policy), "allowed, but not by {policy}: {d:?}");
}
