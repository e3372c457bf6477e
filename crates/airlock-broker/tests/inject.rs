//! Credential injection through opened (intercepted) tunnels, end to end with curl and real TLS both ways: the
//! client trusts only Airlock's CA, the upstream's certificate comes from another test CA that only the broker
//! trusts. The upstream must see the real value; the client's response must never carry it.

mod common;

use common::{API_REAL, API_SURROGATE, RECIPE_REAL, inject_harness};

#[test]
fn a_surrogate_is_swapped_for_the_real_value_toward_its_pinned_host() {
    let h = inject_harness();
    let r = h.curl_opened(&[
        "-H",
        &format!("Authorization: Bearer {API_SURROGATE}"),
        &h.tls_url("api.example.com", "/quiet"),
    ]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, r#"{"ok":true}"#);
    let seen = h.tls_upstream.last().expect("the upstream saw the request");
    assert_eq!(seen.headers["authorization"], format!("Bearer {API_REAL}"));
    // The upstream's session cookie stays with the broker; other headers pass.
    assert!(!r.headers.contains("set-cookie"), "{}", r.headers);
    assert!(r.headers.contains("x-upstream: kept"), "{}", r.headers);
    assert!(!r.body.contains(API_REAL) && !r.headers.contains(&API_REAL.to_ascii_lowercase()));
}

#[test]
fn a_recipe_adds_the_credential_only_on_its_pinned_host() {
    let h = inject_harness();
    let r = h.curl_opened(&[&h.tls_url("tunnel.example.com", "/quiet")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(h.tls_upstream.last().unwrap().headers.get("x-api-key").map(String::as_str), Some(RECIPE_REAL));

    let r = h.curl_opened(&[&h.tls_url("api.example.com", "/quiet")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(h.tls_upstream.last().unwrap().headers.get("x-api-key"), None);
}

#[test]
fn a_surrogate_in_a_json_body_is_swapped_escaped() {
    let h = inject_harness();
    let body = format!(r#"{{"token":"{API_SURROGATE}"}}"#);
    let r = h.curl_opened(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &body,
        &h.tls_url("api.example.com", "/quiet"),
    ]);
    assert_eq!(r.status, 200, "{r:?}");
    let seen = h.tls_upstream.last().unwrap();
    assert_eq!(String::from_utf8_lossy(&seen.body), format!(r#"{{"token":"{API_REAL}"}}"#));
    assert_eq!(seen.headers["content-length"], seen.body.len().to_string());
}

#[test]
fn a_surrogate_in_the_query_is_swapped() {
    let h = inject_harness();
    let r = h.curl_opened(&[&h.tls_url("api.example.com", &format!("/quiet?key={API_SURROGATE}&x=1"))]);
    assert_eq!(r.status, 200, "{r:?}");
    // Over HTTP/2 the upstream sees the absolute form; the path and query are what matter.
    assert!(h.tls_upstream.last().unwrap().uri.ends_with(&format!("/quiet?key={API_REAL}&x=1")));
}

#[test]
fn a_denial_inside_an_opened_tunnel_is_readable_json() {
    let h = inject_harness();
    // The real value in a header: the leak scan runs inside the tunnel, on the request as the tool sent it.
    let r = h.curl_opened(&["-H", &format!("X-Note: {API_REAL}"), &h.tls_url("api.example.com", "/quiet")]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "leak");
    assert_eq!(h.tls_count(), 0, "nothing reached the upstream");
}

#[test]
fn without_a_ca_the_tunnel_is_spliced_and_nothing_is_injected() {
    let h = common::Harness::with(common::INJECT_POLICY, |_| {});
    let ca = h.tls_upstream.ca_file.to_str().unwrap().to_string();
    let r = h.curl(&["--cacert", &ca, &h.tls_url("tunnel.example.com", "/quiet")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(h.tls_upstream.last().unwrap().headers.get("x-api-key"), None);
}

#[test]
fn a_path_limited_rule_works_through_an_opened_tunnel() {
    // `paths.example.com` allows only GET under /only/: CONNECT itself is neither, but an opened tunnel decides
    // each request inside, so the tunnel opens and the rule is enforced per request.
    let ca = std::sync::Arc::new(
        airlock_broker::ca::LocalCa::generate("test", std::time::Duration::from_secs(86400), None).unwrap(),
    );
    let pem = ca.cert_pem().to_string();
    let h = common::Harness::with(common::POLICY, |cfg| cfg.ca = Some(ca));
    std::fs::write(h.dir.path().join("airlock-ca.pem"), pem).unwrap();
    let r = h.curl_opened(&[&h.tls_url("paths.example.com", "/only/x")]);
    assert_eq!(r.status, 200, "{r:?}");
    let r = h.curl_opened(&[&h.tls_url("paths.example.com", "/elsewhere")]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "policy");
    let r = h.curl_opened(&["-X", "DELETE", &h.tls_url("paths.example.com", "/only/x")]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(h.tls_count(), 1, "only the allowed request reached the upstream");
}
