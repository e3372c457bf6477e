//! A tool sends a secret in a request header (its own auth header, a cookie, a custom header).

use base64::Engine as _;

use super::leak_common::{SECRET, harness, upstream_never_saw_the_secret};

#[test]
fn the_secret_in_a_header_is_refused_and_named_without_its_value() {
    let h = harness();
    let url = format!("http://api.example.com:{}/v1", h.upstream.addr.port());
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("user:{SECRET}"));
    for header in [
        format!("Authorization: Bearer {SECRET}"),
        format!("Cookie: session={SECRET}"),
        format!("X-Data: {}", hex::encode(SECRET)),
        format!("Authorization: Basic {basic}"),
    ] {
        let r = h.curl(&["-H", &header, &url]);
        assert_eq!(r.status, 403, "{header}: {r:?}");
        let j = r.json();
        assert_eq!(j["kind"], "leak", "{header}");
        assert!(j["reason"].as_str().unwrap().contains("default/OPENAI_API_KEY"), "{j}");
        assert!(
            !r.body.contains(SECRET) && !r.headers.contains(&SECRET.to_ascii_lowercase()),
            "the refusal echoed the value"
        );
    }
    upstream_never_saw_the_secret(&h);
    assert_eq!(h.upstream.count(), 0);
}
