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
