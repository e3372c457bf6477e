//! Attack: an agent that learned another agent's run id starts its own runs with that run as `parent`, grafting them
//! into the other agent's tree, or probes which run ids exist from the answer.
//! Defence: the parent must be a run the caller may see; any other id, existing or not, is the same "no run" 404
//! that `GET /v1/runs/{id}` gives, and nothing is started.

use serde_json::Value;

use crate::common::daemon::{Daemon, RUNNABLE, run_body};

#[test]
fn daemon_run_attached_under_another_agents_run() {
    let d = Daemon::start_with(RUNNABLE, &[]);
    let body: Value = {
        let mut b: Value = serde_json::from_str(&run_body(&d, &["sleep", "30"], "")).unwrap();
        b["agent"] = "other".into();
        b
    };
    let (mut client, _events, run) = d.start_streaming("other", &body.to_string());

    let child = |parent: &str| {
        let mut b: Value = serde_json::from_str(&run_body(&d, &["true"], "")).unwrap();
        b["parent"] = parent.into();
        b.to_string()
    };
    let under_theirs = d.call(Some("worker"), "POST", "/v1/runs", Some(&child(&run)));
    let under_nothing = d.call(Some("worker"), "POST", "/v1/runs", Some(&child("0123456789abcdef")));
    for r in [&under_theirs, &under_nothing] {
        r.problem(404, "not-found");
    }
    assert_eq!(
        under_theirs.json()["detail"].as_str().map(|s| s.replace(&run, "ID")),
        under_nothing.json()["detail"].as_str().map(|s| s.replace("0123456789abcdef", "ID")),
        "the answer does not tell an existing run from a missing one"
    );
    // Nothing was started: the only run is still the other agent's own.
    let listed = d.call(Some("root"), "GET", "/v1/runs", None).json();
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(1), "{listed}");
    // Its owner may still attach under it.
    let own = d.call(Some("other"), "POST", "/v1/runs", Some(&child(&run)));
    assert_eq!(own.status, 200, "{}", own.body);

    d.call(Some("root"), "POST", &format!("/v1/runs/{run}/kill"), None);
    let _ = client.wait();
}
