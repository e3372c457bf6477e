//! Defects found in review, each pinned by a test.

mod common;

use common::{Setup, diag};

#[test]
fn webhook_scheme_error_does_not_echo_the_query_string() {
    let s = Setup::with_config(
        r#"
version = 1
[[audit.sinks]]
type = "webhook"
url = "http://siem.example/ingest?api_key=hunter2-SECRET"
"#,
    );
    let err = s.load_err(None);
    let d = diag(&err, "audit-sink");
    assert!(!d.message.contains("hunter2"), "the query carries a key: {}", d.message);
    assert!(d.message.contains("https"), "{}", d.message);
}

#[test]
fn quotes_backslashes_and_newlines_in_a_path_stay_inside_the_cedar_string() {
    // A path entry that tries to close the generated string literal and add its own condition.
    let s = Setup::with_config(
        r#"
version = 1
[agents.a]
tools = ["t"]
[tools.t.fs]
read = ["${WORKSPACE}"]
deny = ["${WORKSPACE}/x\" || true || \"\\\n\u2028"]
exec = ["${WORKSPACE}/q\\\""]
"#,
    );
    let e = s.engine();
    let read = |p: &str| e.decide(&airlock_policy::Request::fs("a", "t", airlock_policy::Action::FsRead, p)).decision;
    assert!(read(&s.ws("src/main.rs")).allowed, "the deny must not have become `true`");
    let d = read(&s.ws("x\" || true || \"\\\n\u{2028}/f"));
    assert!(!d.allowed && d.policies == ["tool.t.fs.deny"], "{d:?}");
    let d =
        e.decide(&airlock_policy::Request::fs("a", "t", airlock_policy::Action::FsExec, &s.ws("q\\\"/bin"))).decision;
    assert!(d.allowed, "{d:?}");
}

#[test]
fn a_star_in_a_path_prefix_is_a_literal_star_in_the_cedar_like_pattern() {
    let s = Setup::with_config(
        r#"
version = 1
[agents.a]
tools = ["t"]
[[tools.t.network]]
hosts = ["api.example.com"]
paths = ["/v1/*/public"]
"#,
    );
    let e = s.engine();
    let get = |u: &str| e.decide(&airlock_policy::Request::http("a", "t", "GET", u)).decision;
    assert!(get("https://api.example.com/v1/*/public/x").allowed);
    assert!(!get("https://api.example.com/v1/admin/public/x").allowed);
    assert!(!get("https://api.example.com/v1/x/y/public").allowed);
}

#[test]
fn addresses_tunnelling_to_private_ipv4_are_private() {
    use std::net::IpAddr;
    let private = |s: &str| airlock_policy::engine::is_private(s.parse::<IpAddr>().unwrap());
    // 6to4 of 127.0.0.1 and 10.0.0.1; IPv4-translated; Teredo.
    assert!(private("2002:7f00:1::1"));
    assert!(private("2002:a00:1::"));
    assert!(private("::ffff:0:7f00:1"));
    assert!(private("2001:0:4136:e378:8000:63bf:3fff:fdd2"));
    // 6to4 of a public address stays public; ordinary global unicast is public.
    assert!(!private("2002:808:808::1"));
    assert!(!private("2606:4700:4700::1111"));
}

#[test]
fn debug_output_of_a_loaded_config_never_shows_a_webhook_token_or_url_query() {
    let s = Setup::with_config(
        r#"
version = 1
[[audit.sinks]]
type = "webhook"
url = "https://siem.example/ingest?api_key=QUERYKEY123"
token = "LITERALTOKEN456"
"#,
    );
    let e = s.engine();
    let dump = format!("{:?}", e.compiled().model);
    assert!(dump.contains("siem.example/ingest"), "the sink is still described");
    assert!(!dump.contains("LITERALTOKEN456") && !dump.contains("QUERYKEY123"), "{dump}");
}
