//! Attack: an agent with a valid token lists, inspects, pauses or kills another agent's run through the daemon.
//! Defence: every run belongs to an agent; a caller sees and controls only its own subtree's runs, and a run outside
//! it is "not found" (not "forbidden": its existence is not revealed).

use serde_json::Value;

use crate::common::daemon::{Daemon, RUNNABLE, run_body};

#[test]
fn daemon_run_control_across_agents() {
    let d = Daemon::start_with(RUNNABLE, &[]);
    // `other` starts a long run, streamed to a background curl.
    let body: Value = {
        let mut b: Value = serde_json::from_str(&run_body(&d, &["sleep", "30"], "")).unwrap();
        b["agent"] = "other".into();
        b
    };
    let (mut client, _events, run) = d.start_streaming("other", &body.to_string());

    // worker (a sub-agent of root, unrelated to other) cannot see it or touch it.
    let listed = d.call(Some("worker"), "GET", "/v1/runs", None).json();
    assert!(!listed.to_string().contains(&run), "{listed}");
    for (method, path) in [
        ("GET", format!("/v1/runs/{run}")),
        ("POST", format!("/v1/runs/{run}/pause")),
        ("POST", format!("/v1/runs/{run}/kill")),
    ] {
        d.call(Some("worker"), method, &path, None).problem(404, "not-found");
    }
    // Its owner sees it; so does root (an admin), who may stop it.
    assert_eq!(d.call(Some("other"), "GET", &format!("/v1/runs/{run}"), None).json()["agent"], "other");
    let killed = d.call(Some("root"), "POST", &format!("/v1/runs/{run}/kill"), None).json();
    // "killed" when a loaded machine keeps the run past the 2 s grace after TERM: stopped either way.
    assert!(matches!(killed["outcome"].as_str(), Some("terminated" | "killed")), "{killed}");
    let _ = client.wait();
}
