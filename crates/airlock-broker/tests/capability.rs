//! The typed capability API on the proxy's listener: `POST /v1/capabilities/{provider}/{capability}` with a JSON
//! envelope. The broker builds the request from the provider's definition (the host never comes from the caller),
//! puts the secret on with the provider's recipe, runs the request through policy, SSRF, leak scan and audit like any
//! other, and filters blocklisted fields out of the response. Real curl, real TLS to a loopback upstream.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use airlock_broker::capability::Registry;
use airlock_policy::providers::{CapabilityConfig, ProviderConfig};
use common::{Harness, RECIPE_REAL};

fn provider(base: &str, secret: &str) -> ProviderConfig {
    let cap = |methods: &[&str], path: &str, blocklist: &[&str]| CapabilityConfig {
        methods: methods.iter().map(|m| m.to_string()).collect(),
        paths: vec![path.to_string()],
        response_blocklist: blocklist.iter().map(|b| b.to_string()).collect(),
        description: None,
    };
    ProviderConfig {
        base_url: base.to_string(),
        secret: secret.to_string(),
        inject: Some(airlock_policy::config::InjectRecipe {
            header: Some("X-Example-Key".into()),
            format: Some("Key {value}".into()),
            query: None,
        }),
        capabilities: BTreeMap::from([
            ("things".to_string(), cap(&["GET", "POST"], "/quiet", &[])),
            ("secretive".to_string(), cap(&["GET"], "/secretive", &["client_secret"])),
        ]),
        ..Default::default()
    }
}

/// The injection harness with providers: `example` on the TLS upstream as tunnel.example.com (where RECIPE_TOKEN is
/// pinned), `elsewhere` on other.example.com (where it is not), `ungranted` needing a secret the tool lacks.
fn harness() -> Harness {
    common::inject_harness_with(|cfg, tls_port| {
        let providers = BTreeMap::from([
            ("example".to_string(), provider(&format!("https://tunnel.example.com:{tls_port}"), "RECIPE_TOKEN")),
            ("elsewhere".to_string(), provider(&format!("https://other.example.com:{tls_port}"), "RECIPE_TOKEN")),
            ("ungranted".to_string(), provider(&format!("https://tunnel.example.com:{tls_port}"), "NOT_GIVEN")),
        ]);
        cfg.capabilities = Arc::new(Registry::builtin().with_config(&providers).unwrap());
    })
}

/// POSTs `envelope` to the capability endpoint, straight to the broker (it is the origin here, not a proxy).
fn call(h: &Harness, name: &str, envelope: &str) -> common::CurlResult {
    h.curl_direct(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "--data-binary",
        envelope,
        &format!("http://{}/v1/capabilities/{name}", h.proxy),
    ])
}

#[test]
fn a_capability_call_reaches_the_provider_with_its_credential() {
    let h = harness();
    let r = call(&h, "example/things", r#"{"method":"GET","path":"/quiet","query":{"page":"2"}}"#);
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
fn the_caller_cannot_choose_the_host_or_leave_the_capability() {
    let h = harness();
    for (envelope, status) in [
        (r#"{"method":"GET","path":"//evil.example.com/quiet"}"#, 400),
        (r#"{"method":"GET","path":"https://evil.example.com/quiet"}"#, 400),
        (r#"{"method":"GET","path":"/quiet/../admin"}"#, 400),
        (r#"{"method":"GET","path":"/quiet/%2e%2e/admin"}"#, 400),
        (r#"{"method":"GET","path":"/admin"}"#, 403),
        (r#"{"method":"DELETE","path":"/quiet"}"#, 405),
        (r#"{"method":"GET","path":"/quiet","headers":{"x-example-key":"mine"}}"#, 400),
        (r#"{"method":"GET","path":"/quiet","headers":{"host":"evil.example.com"}}"#, 400),
        (r#"{"method":"GET","path":"/quiet","url":"https://evil.example.com/"}"#, 400),
    ] {
        let r = call(&h, "example/things", envelope);
        assert_eq!(r.status, status, "{envelope}: {r:?}");
        assert!(r.headers.contains("x-airlock-deny"), "{envelope}: {}", r.headers);
    }
    assert_eq!(h.tls_count(), 0, "nothing refused may reach the upstream");
    assert_eq!(call(&h, "nosuch/things", r#"{"method":"GET","path":"/quiet"}"#).status, 404);
    assert_eq!(call(&h, "example/nosuch", r#"{"method":"GET","path":"/quiet"}"#).status, 404);
}

#[test]
fn blocklisted_response_fields_never_reach_the_tool() {
    let h = harness();
    let r = call(&h, "example/secretive", r#"{"method":"GET","path":"/secretive"}"#);
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
    let r = call(&h, "ungranted/things", r#"{"method":"GET","path":"/quiet"}"#);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "capability");
    assert!(r.json()["reason"].as_str().unwrap().contains("NOT_GIVEN"), "{r:?}");
    // RECIPE_TOKEN is pinned to tunnel.example.com; a provider pointing it elsewhere does not move the pin.
    let r = call(&h, "elsewhere/things", r#"{"method":"GET","path":"/quiet"}"#);
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
