//! The typed capability API on the proxy's listener: `POST /v1/capabilities/{provider}/{capability}` with a JSON
//! envelope. The broker builds the request from the provider's definition (the host never comes from the caller),
//! puts the secret on with the provider's recipe, runs the request through policy, SSRF, leak scan and audit like any
//! other, and filters blocklisted fields out of the response. Real curl, real TLS to a loopback upstream. The attack on
//! the host and path is in `tests/security/leave_a_capability_for_another_host_or_path.rs`.

mod common;

use common::{RECIPE_REAL, capability_harness as harness};

#[test]
fn a_capability_call_reaches_the_provider_with_its_credential() {
    let h = harness();
    let r = h.capability_call("example/things", r#"{"method":"GET","path":"/quiet","query":{"page":"2"}}"#);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, r#"{"ok":true}"#);
    assert!(r.headers.contains("x-airlock-capability: example/things"), "{}", r.headers);
    let seen = h.tls_upstream.last().expect("the upstream saw the call");
    // The upstream speaks HTTP/2, so the host comes as the URI's authority: the provider's, nobody else's.
    assert_eq!(seen.uri, format!("https://tunnel.example.com:{}/quiet?page=2", h.tls_upstream.addr.port()));
    assert_eq!(seen.headers["x-example-key"], format!("Key {RECIPE_REAL}"));
    assert!(!r.body.contains(RECIPE_REAL) && !r.headers.contains(&RECIPE_REAL.to_ascii_lowercase()));
}

#[test]
fn blocklisted_response_fields_never_reach_the_tool() {
    let h = harness();
    let r = h.capability_call("example/secretive", r#"{"method":"GET","path":"/secretive"}"#);
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.json();
    assert_eq!(body["id"], "pi_1");
    assert!(body.get("client_secret").is_none(), "{body}");
    assert!(body["items"][0].get("client_secret").is_none(), "{body}");
    assert_eq!(body["items"][0]["keep"], 1);
    assert!(!r.body.contains("pi_1_secret_abc"));
    assert!(r.headers.contains("x-airlock-removed-fields: 2"), "{}", r.headers);
}

#[test]
fn a_capability_needs_the_secret_granted_and_pinned_to_its_host() {
    let h = harness();
    let r = h.capability_call("ungranted/things", r#"{"method":"GET","path":"/quiet"}"#);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "capability");
    assert!(r.json()["reason"].as_str().unwrap().contains("NOT_GIVEN"), "{r:?}");
    // RECIPE_TOKEN is pinned to tunnel.example.com; a provider pointing it elsewhere does not move the pin.
    let r = h.capability_call("elsewhere/things", r#"{"method":"GET","path":"/quiet"}"#);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "inject");
    assert_eq!(h.tls_count(), 0);
}

#[test]
fn only_post_reaches_the_capability_api() {
    let h = harness();
    let r = h.curl_direct(&[&format!("http://{}/v1/capabilities/example/things", h.proxy)]);
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(h.tls_count(), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Redaction: with a redactor, every capability response is masked before the tool sees it, streamed or buffered.
// The upstream is scripted: it writes chunked frames by hand, so a secret can be split across two of them.
// ---------------------------------------------------------------------------------------------------------------

mod redaction {
    use std::sync::Arc;

    use crate::common::{
        Harness, MemoryLog, RECIPE_REAL, RULE_TOKEN, ScriptedUpstream, echo_script, head_value,
        scripted_capability_harness, test_redactor,
    };

    /// A broker with a redactor that knows the vault's values, an audit log in memory, and the scripted upstream.
    fn harness(redactor: bool) -> (Harness, ScriptedUpstream, Arc<MemoryLog>) {
        let upstream = ScriptedUpstream::bind();
        let log = Arc::new(MemoryLog::default());
        let h = scripted_capability_harness(&upstream, |cfg| {
            cfg.redactor = redactor.then(|| test_redactor(true));
            cfg.audit = Some(log.trail());
        });
        upstream.serve(&h, echo_script());
        (h, upstream, log)
    }

    const MASKED: &str = r#""seen":"Key [REDACTED:known-value]""#;
    const MASKED_TOKEN: &str = r#""token":"[REDACTED:test-token]""#;

    /// The one Detection Finding recorded for a response: two findings, a known value and a rule, no values.
    fn check_finding(log: &MemoryLog, body: &str) {
        let findings = log.wait_for_findings(1);
        assert_eq!(findings.len(), 1, "one finding per response: {findings:#?}");
        let f = &findings[0];
        let r = &f["unmapped"]["airlock"]["redaction"];
        assert_eq!(r["count"], 2, "{f:#}");
        assert_eq!(r["body"], body, "{f:#}");
        assert_eq!(r["ended"], "complete", "{f:#}");
        let rules: Vec<&str> = r["rules"].as_array().unwrap().iter().map(|x| x["rule"].as_str().unwrap()).collect();
        assert_eq!(rules, ["known-value", "test-token"], "{f:#}");
        assert_eq!(r["families"], serde_json::json!(["known", "testing"]), "{f:#}");
        assert_eq!(r["fingerprints"].as_array().unwrap().len(), 2, "{f:#}");
        assert_eq!(r["known"][0]["id"], "default/RECIPE_TOKEN", "{f:#}");
        assert_eq!(f["unmapped"]["airlock"]["capability"], format!("example/{}", capability(body)));
        assert_eq!(f["severity"], "High", "a vault value in a response: {f:#}");
        assert_eq!(f["metadata"]["correlation_uid"], f["finding_info"]["uid"]);
        let all = log.text();
        assert!(!all.contains(RECIPE_REAL) && !all.contains(&RULE_TOKEN[7..]), "a value reached the audit log: {all}");
    }

    fn capability(body: &str) -> &'static str {
        if body == "streamed" { "things" } else { "secretive" }
    }

    #[test]
    fn a_streamed_capability_response_is_masked_across_frames() {
        let (h, upstream, log) = harness(true);
        let r = h.capability_call("example/things", r#"{"method":"GET","path":"/quiet/echo"}"#);
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.stderr.is_empty(), "the transfer completed: {r:?}");
        assert_eq!(r.body, format!(r#"{{"client_secret":"cs_value",{MASKED},{MASKED_TOKEN},"ok":true}}"#));
        // The length changed: none is declared; the count is in the audit record (known only at the end).
        assert!(!r.headers.contains("content-length"), "{}", r.headers);
        assert!(r.headers.contains("x-airlock-capability: example/things"), "{}", r.headers);
        assert_eq!(head_value(&upstream.last_head(), "accept-encoding").as_deref(), Some("identity"));
        assert_eq!(head_value(&upstream.last_head(), "x-example-key"), Some(format!("Key {RECIPE_REAL}")));
        check_finding(&log, "streamed");
    }

    #[test]
    fn a_filtered_capability_response_is_masked_after_the_blocklist() {
        let (h, upstream, log) = harness(true);
        let r = h.capability_call("example/secretive", r#"{"method":"GET","path":"/secretive/echo"}"#);
        assert_eq!(r.status, 200, "{r:?}");
        let body = r.json();
        assert!(body.get("client_secret").is_none(), "{body}");
        assert_eq!(body["seen"], "Key [REDACTED:known-value]");
        assert_eq!(body["token"], "[REDACTED:test-token]");
        assert_eq!(body["ok"], true);
        assert!(r.headers.contains("x-airlock-removed-fields: 1"), "{}", r.headers);
        assert!(r.headers.contains("x-airlock-redacted: 2"), "{}", r.headers);
        assert!(r.headers.contains(&format!("content-length: {}\r\n", r.body.len())), "{}", r.headers);
        assert_eq!(head_value(&upstream.last_head(), "accept-encoding").as_deref(), Some("identity"));
        check_finding(&log, "buffered");
    }

    #[test]
    fn a_clean_filtered_response_says_nothing_was_redacted() {
        let (h, _upstream, log) = harness(true);
        let r = h.capability_call("example/secretive", r#"{"method":"GET","path":"/secretive/nothing-here"}"#);
        // The script's 404 has an empty body: it passes the blocklist, and nothing is found in it.
        assert_eq!(r.status, 404, "{r:?}");
        assert!(r.headers.contains("x-airlock-redacted: 0"), "{}", r.headers);
        assert!(log.findings().is_empty(), "{:#?}", log.findings());
    }

    #[test]
    fn an_encoded_response_to_a_redacting_broker_is_refused() {
        let (h, upstream, log) = harness(true);
        for (capability, path) in [("example/things", "/quiet/gzip"), ("example/secretive", "/secretive/gzip")] {
            let r = h.capability_call(capability, &format!(r#"{{"method":"GET","path":"{path}"}}"#));
            assert_eq!(r.status, 502, "{capability}: {r:?}");
            assert_eq!(r.json()["kind"], "response-filter", "{capability}: {r:?}");
            assert!(!r.body.contains(&RULE_TOKEN[7..]), "{r:?}");
            // It was asked for unencoded, and came encoded anyway.
            assert_eq!(head_value(&upstream.last_head(), "accept-encoding").as_deref(), Some("identity"));
        }
        let denials =
            log.0.lock().unwrap().iter().filter(|e| e["unmapped"]["airlock"]["deny_kind"] == "response-filter").count();
        assert_eq!(denials, 2, "both refusals are recorded");
    }

    #[test]
    fn without_a_redactor_responses_pass_as_before() {
        let (h, upstream, log) = harness(false);
        let r = h.capability_call("example/things", r#"{"method":"GET","path":"/quiet/token-only"}"#);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body, format!(r#"{{"client_secret":"cs_value","token":"{RULE_TOKEN}"}}"#));
        assert!(!r.headers.contains("x-airlock-redacted"), "{}", r.headers);
        assert_eq!(head_value(&upstream.last_head(), "accept-encoding"), None, "no encoding was asked for");
        let r = h.capability_call("example/secretive", r#"{"method":"GET","path":"/secretive/token-only"}"#);
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json()["token"], RULE_TOKEN);
        assert!(r.headers.contains("x-airlock-removed-fields: 1"), "{}", r.headers);
        assert!(!r.headers.contains("x-airlock-redacted"), "{}", r.headers);
        // A streamed capability passes an encoded response on, as before (only a blocklist must read it).
        let r = h.curl_direct(&[
            "-X",
            "POST",
            "--data-binary",
            r#"{"method":"GET","path":"/quiet/gzip"}"#,
            "--compressed",
            &format!("http://{}/v1/capabilities/example/things", h.proxy),
        ]);
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.headers.contains("content-encoding: gzip"), "{}", r.headers);
        assert_eq!(r.body, format!(r#"{{"token":"{RULE_TOKEN}"}}"#));
        assert!(log.findings().is_empty(), "{:#?}", log.findings());
    }
}
