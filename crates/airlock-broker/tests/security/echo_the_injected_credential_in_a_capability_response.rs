//! Attack: call a capability whose upstream echoes the request back (a debug endpoint, an error page quoting the
//! `X-Example-Key` header, a "whoami" that prints the key). The upstream rightly received the real credential the
//! broker injected; the echo would hand the tool the one value the capability API exists to keep from it. With a
//! redactor that knows the vault's values, the broker masks the echo wherever it falls (split across chunked frames,
//! base64-encoded), streamed or after a blocklist, and records a finding without the value. A value the redactor
//! does not know still cuts the response off, as it does without a redactor.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use crate::common::{
    Failures, Harness, MemoryLog, RECIPE_REAL, ScriptedUpstream, echo_script, head_value, scripted_capability_harness,
    test_redactor,
};

fn harness(redactor: Option<airlock_redact::Redactor>) -> (Harness, ScriptedUpstream, Arc<MemoryLog>) {
    let upstream = ScriptedUpstream::bind();
    let log = Arc::new(MemoryLog::default());
    let h = scripted_capability_harness(&upstream, |cfg| {
        cfg.redactor = redactor;
        cfg.audit = Some(log.trail());
    });
    upstream.serve(&h, echo_script());
    (h, upstream, log)
}

const CALLS: [(&str, &str); 4] = [
    ("example/things", "/quiet/echo"),
    ("example/things", "/quiet/echo-b64"),
    ("example/secretive", "/secretive/echo"),
    ("example/secretive", "/secretive/echo-b64"),
];

#[test]
fn echo_the_injected_credential_in_a_capability_response() {
    let (h, upstream, log) = harness(Some(test_redactor(true)));
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("Key {RECIPE_REAL}"));
    // A stretch of the base64 that only the value produces (the ends also encode "Key " and the padding).
    let encoded_core = &encoded[8..encoded.len() - 8];
    let mut failures = Failures::default();
    for (capability, path) in CALLS {
        let r = h.capability_call(capability, &format!(r#"{{"method":"GET","path":"{path}"}}"#));
        let what = format!("{capability} {path}");
        let seen = head_value(&upstream.last_head(), "x-example-key");
        failures.check(seen == Some(format!("Key {RECIPE_REAL}")), || format!("{what}: the upstream saw {seen:?}"));
        failures.check(r.status == 200 && r.stderr.is_empty(), || format!("{what}: want a whole 200, got {r:?}"));
        failures.check(!r.body.contains(RECIPE_REAL), || format!("{what}: the real value reached the tool: {r:?}"));
        failures.check(!r.body.contains(encoded_core), || format!("{what}: its base64 reached the tool: {r:?}"));
        failures.check(!r.headers.contains(&RECIPE_REAL.to_ascii_lowercase()), || format!("{what}: in a header"));
        failures.check(r.body.contains("[REDACTED:known-value]"), || format!("{what}: not masked: {r:?}"));
    }
    failures.finish("echo_the_injected_credential_in_a_capability_response");
    // Each echo is one Detection Finding naming the secret, never holding it.
    let findings = log.wait_for_findings(CALLS.len());
    assert_eq!(findings.len(), CALLS.len(), "{findings:#?}");
    for f in &findings {
        let known = &f["unmapped"]["airlock"]["redaction"]["known"];
        assert_eq!(known[0]["id"], "default/RECIPE_TOKEN", "{f:#}");
        assert_eq!(f["severity"], "High", "{f:#}");
    }
    let encodings: Vec<&str> = findings
        .iter()
        .filter_map(|f| f["unmapped"]["airlock"]["redaction"]["known"][0]["encoding"].as_str())
        .collect();
    assert!(encodings.contains(&"raw") && encodings.contains(&"base64"), "{encodings:?}");
    let all = log.text();
    assert!(!all.contains(RECIPE_REAL) && !all.contains(encoded_core), "a value reached the audit log");
}

/// Waits up to 5 s for `n` recorded refusals of kind `kind` (a cut streamed response is recorded from a task).
fn wait_for_denials(log: &MemoryLog, kind: &str, n: usize) -> usize {
    let count = || log.0.lock().unwrap().iter().filter(|e| e["unmapped"]["airlock"]["deny_kind"] == kind).count();
    for _ in 0..100 {
        if count() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    count()
}

#[test]
fn a_value_the_redactor_does_not_know_still_cuts_the_response_off() {
    // Fail closed: masking stands in for the reflection guard only where it actually masked. A redactor built
    // without the vault's values leaves the echo alone, and the guard, which looks at what the tool would get,
    // still finds it.
    for redactor in [Some(test_redactor(false)), None] {
        let with = if redactor.is_some() { "a redactor without known values" } else { "no redactor" };
        let (h, _upstream, log) = harness(redactor);
        let r = h.capability_call("example/things", r#"{"method":"GET","path":"/quiet/echo"}"#);
        assert!(!r.body.contains(RECIPE_REAL), "{with}: the real value reached the tool: {r:?}");
        assert!(!r.stderr.is_empty() || r.status != 200, "{with}: the transfer was not cut off: {r:?}");
        let r = h.capability_call("example/secretive", r#"{"method":"GET","path":"/secretive/echo"}"#);
        assert_eq!(r.status, 502, "{with}: {r:?}");
        assert!(!r.body.contains(RECIPE_REAL), "{with}: {r:?}");
        assert!(wait_for_denials(&log, "reflection", 2) >= 2, "{with}: both reflections are recorded");
        assert!(!log.text().contains(RECIPE_REAL), "{with}: a value reached the audit log");
    }
}
