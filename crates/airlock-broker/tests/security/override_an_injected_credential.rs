//! Attack: on a host where the broker injects `RECIPE_TOKEN` as `X-Api-Key`, the tool sends its own `X-Api-Key`
//! (an attacker's key, to make the upstream attribute the tool's actions to another account, or to probe which
//! header carries the credential). Refused before anything reaches the upstream.

use crate::common::inject_harness;

#[test]
fn override_an_injected_credential() {
    let h = inject_harness();
    let r = h.curl_opened(&["-H", "X-Api-Key: attacker-key-0000", &h.tls_url("tunnel.example.com", "/quiet")]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "inject");
    assert!(r.json()["reason"].as_str().unwrap().contains("RECIPE_TOKEN"));
    assert_eq!(h.tls_count(), 0);
}
