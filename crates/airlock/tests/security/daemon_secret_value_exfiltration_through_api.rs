//! Attack: an agent with a valid token, whose tool is even granted the secret, asks the daemon's API for the secret's
//! value: every secrets route, query parameters a careless API might honour (`?reveal=true`, `?version=1`), paths
//! that might lead past the router (`/value`, `%2F`, `..`), other methods, the audit routes, and the change routes
//! (a rotate or pin whose answer might echo something). An admin's own mistakes are tried too: a value sent in the
//! wrong field, whose error message might quote it back.
//! Defence: the API serves metadata only; agents may not change secrets (403 before the body is read); unknown
//! routes and parameters are refused; error details never quote what was sent. No answer, header or body, carries
//! the value in any encoding.

use serde_json::json;

use crate::common::daemon::Daemon;
use crate::common::{NeedleSet, random_alnum, random_bytes};

const POLICY: &str = r#"version = 1
[agents.worker]
tools = ["t"]
[tools.t]
secrets = ["GH_TOKEN", "BLOB"]
[secrets.GH_TOKEN]
[secrets.BLOB]
"#;

#[test]
fn daemon_secret_value_exfiltration_through_api() {
    let d = Daemon::start_with(POLICY, &[]);
    let value = format!("exfil-canary-{}", random_alnum(32));
    let blob = random_bytes(64);
    let blob_b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&blob)
    };
    let mut needles = NeedleSet::new();
    needles.add_value("GH_TOKEN", value.as_bytes());
    needles.add_value("BLOB", &blob);
    for (name, body) in [
        (
            "GH_TOKEN",
            json!({"name": "GH_TOKEN", "value": value, "hosts": ["api.github.com"],
                            "injection": {"type": "header", "name": "Authorization", "template": "Bearer {}"}}),
        ),
        ("BLOB", json!({"name": "BLOB", "value_base64": blob_b64})),
    ] {
        let made = d.call(Some("root"), "POST", "/v1/secrets", Some(&body.to_string()));
        assert_eq!(made.status, 201, "{name}: {}", made.body);
    }

    let mut answers = Vec::new();
    let mut ask = |agent: &str, method: &str, path: &str, body: Option<&str>| {
        let r = d.call(Some(agent), method, path, body);
        answers.push((format!("{agent} {method} {path}"), format!("{}\r\n\r\n{}", r.headers, r.body)));
        r.status
    };
    // Reading: metadata, whatever is asked for.
    for path in [
        "/v1/secrets",
        "/v1/secrets?workspace=default",
        "/v1/secrets/GH_TOKEN",
        "/v1/secrets/BLOB",
        "/v1/secrets/GH_TOKEN?workspace=default",
    ] {
        assert_eq!(ask("worker", "GET", path, None), 200, "{path}");
    }
    for path in [
        "/v1/secrets?reveal=true",
        "/v1/secrets?include=value",
        "/v1/secrets/GH_TOKEN?reveal=true",
        "/v1/secrets/GH_TOKEN?version=1",
        "/v1/secrets/GH_TOKEN?workspace=default&workspace=default",
        "/v1/secrets/GH_TOKEN?value",
        "/v1/secrets/default%2FGH_TOKEN",
        "/v1/secrets/GH_TOKEN%00",
    ] {
        assert_eq!(ask("worker", "GET", path, None), 400, "{path}");
    }
    for path in [
        "/v1/secrets/GH_TOKEN/value",
        "/v1/secrets/GH_TOKEN/versions/1",
        "/v1/secrets/default/GH_TOKEN",
        "/v1/secrets/../secrets/GH_TOKEN/value",
        "/v1/secret/GH_TOKEN",
        "/v1/secrets/GH_TOKEN/",
    ] {
        assert_eq!(ask("worker", "GET", path, None), 404, "{path}");
    }
    for method in ["PUT", "DELETE", "PATCH"] {
        assert_eq!(ask("worker", method, "/v1/secrets/GH_TOKEN", Some("{}")), 404, "{method}");
    }
    // Changing, in the hope that the answer echoes the old value: refused before the body is read.
    for (path, body) in [
        ("/v1/secrets", json!({"name": "GH_TOKEN", "value": "guess"})),
        ("/v1/secrets/GH_TOKEN/rotate", json!({"value": "guess"})),
        ("/v1/secrets/GH_TOKEN/pin", json!({"host": "evil.example"})),
    ] {
        assert_eq!(ask("worker", "POST", path, Some(&body.to_string())), 403, "{path}");
    }
    // The audit log is not for agents; an auditor reading it finds no value either.
    assert_eq!(ask("worker", "GET", "/v1/audit/records?limit=1000", None), 403);
    assert_eq!(ask("worker", "GET", "/v1/audit/checkpoint", None), 403);
    assert_eq!(ask("aud", "GET", "/v1/audit/records?limit=1000", None), 200);
    assert_eq!(ask("aud", "GET", "/v1/secrets", None), 200);
    // An admin's mistakes: a value sent where a name, a number or a field name goes is refused without an echo.
    for body in [
        format!(r#"{{"name": "X", "keep_versions": "{value}", "value": "x"}}"#),
        format!(r#"{{"name": "X", "value": "x", "{value}": 1}}"#),
        format!(r#"{{"name": "X", "exposure": "{value}", "value": "x"}}"#),
        format!(r#"{{"name": "X", "injection": {{"type": "{value}"}}, "value": "x"}}"#),
        format!(r#"{{"name": "X", "tags": {{"{value}": 1}}, "value": "x"}}"#),
        format!(r#""{value}""#),
        format!(r#"{{"name": "X", "value_base64": "{value}"}}"#),
        format!(r#"{{"name": "X", "value": "x", "hosts": ["https://{value}"]}}"#),
    ] {
        assert_eq!(ask("root", "POST", "/v1/secrets", Some(&body)), 400, "{body}");
    }
    assert_eq!(ask("root", "POST", "/v1/secrets/GH_TOKEN/rotate", Some(&json!({"value": value}).to_string())), 409);
    assert_eq!(ask("root", "GET", &format!("/v1/secrets?workspace={value}"), None), 200);
    assert_eq!(ask("root", "GET", &format!("/v1/secrets/GH_TOKEN?{value}=1"), None), 400);

    for (what, answer) in &answers {
        let hits = needles.find(answer.as_bytes());
        assert!(hits.is_empty(), "{what} answered with a secret value: {hits:?}");
    }
}
