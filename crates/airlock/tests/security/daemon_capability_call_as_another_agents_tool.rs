//! Attack: an agent with a valid token calls a capability through the daemon as another agent's tool, the one that
//! holds the provider's key: it names that tool in `X-Airlock-Tool`, claims to be the other agent in headers of its
//! own and of the call envelope, and hopes the daemon's vault spends the key for it.
//! Defence: the agent is the token's, nothing else; the policy must grant that agent the tool it names, or the call
//! is refused (403, audited under the real agent) before any broker is built; headers in the envelope cannot name
//! an agent or tool either. The upstream never hears of it.

use serde_json::Value;

use crate::common::daemon::Daemon;
use crate::common::upstream::{TlsUpstream, capability_policy};

const VALUE: &str = "exk_ANOTHERAGENTSKEY0123456789abcdefghij";

#[test]
fn daemon_capability_call_as_another_agents_tool() {
    let up = TlsUpstream::start();
    let flags = up.daemon_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    // worker may use tool fetch, which holds EXAMPLE_KEY; other may use only t.
    let mut d = Daemon::start_with(&capability_policy(up.port), &flags);
    d.al.set("EXAMPLE_KEY", VALUE.as_bytes());
    let path = "/v1/capabilities/example/models";

    let attempts: [(&[&str], &str); 3] = [
        (&["-H", "X-Airlock-Tool: fetch"], r#"{"method":"GET","path":"/v1/models"}"#),
        // Posing as worker, in the daemon request and in the envelope.
        (
            &["-H", "X-Airlock-Tool: fetch", "-H", "X-Airlock-Agent: worker"],
            r#"{"method":"GET","path":"/v1/models","headers":{"x-airlock-agent":"worker","x-airlock-tool":"fetch"}}"#,
        ),
        // Its own tool, with the envelope asking for the other one.
        (&["-H", "X-Airlock-Tool: t"], r#"{"method":"GET","path":"/v1/models","headers":{"x-airlock-tool":"fetch"}}"#),
    ];
    for (i, (headers, envelope)) in attempts.into_iter().enumerate() {
        let r = d.curl(Some("other"), "POST", path, Some(envelope), headers);
        assert!(matches!(r.status, 400 | 403), "{headers:?}: {} {}", r.status, r.body);
        assert_eq!(r.content_type, "application/problem+json", "{}", r.body);
        assert!(!r.headers.contains(VALUE) && !r.body.contains(VALUE));
        if i < 2 {
            // Refused by the daemon for the agent the token names, before a broker for the tool exists.
            let detail = r.json()["detail"].as_str().unwrap_or_default().to_string();
            assert!(detail.contains("agent other may not use tool fetch"), "{}", r.body);
        }
    }
    assert!(up.seen().is_empty(), "the upstream was called: {:#?}", up.seen());

    // The one the tool belongs to is served: the refusals above were about who asked, not a broken setup.
    let r = d.curl(Some("worker"), "POST", path, Some(attempts[0].1), &["-H", "X-Airlock-Tool: fetch"]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(up.seen().len(), 1);

    assert_eq!(d.stop(), 0);
    let q = d.al.call(["--json", "audit", "query", "--type", "api", "--actor", "other"]).expect(0);
    let events: Vec<Value> = q.out().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(
        events
            .iter()
            .any(|e| e["actor"]["app_name"] == "fetch" && e["actor"]["authorizations"][0]["decision"] == "deny"),
        "the attempt is on the record under the agent that made it: {events:#?}"
    );
    assert!(
        events.iter().all(|e| e["actor"]["authorizations"][0]["decision"] != "allow"),
        "nothing was allowed to other: {events:#?}"
    );
}
