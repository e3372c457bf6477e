//! A tool puts a secret it should never have held into a URL (query or path), raw or encoded.

use base64::Engine as _;

use super::leak_common::{CANARY, SECRET, harness, upstream_never_saw_the_secret};

#[test]
fn the_secret_in_any_encoding_in_the_url_is_refused_as_a_leak() {
    let h = harness();
    let port = h.upstream.addr.port();
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("key={SECRET}"));
    let hex = hex::encode(SECRET);
    let pct: String = SECRET.bytes().map(|b| format!("%{b:02X}")).collect();
    let payloads = [
        format!("http://api.example.com:{port}/v1?key={SECRET}"),
        format!("http://api.example.com:{port}/exfil/{SECRET}/x"),
        format!(
            "http://api.example.com:{port}/v1?d={}",
            b64.replace('=', "%3D").replace('+', "%2B").replace('/', "%2F")
        ),
        format!("http://api.example.com:{port}/v1?d={b64url}"),
        format!("http://api.example.com:{port}/v1?d={hex}"),
        format!("http://api.example.com:{port}/v1?d={}", hex.to_uppercase()),
        format!("http://api.example.com:{port}/v1?d={pct}"),
        format!("http://api.example.com:{port}/v1?c={CANARY}"),
    ];
    let mut failures = Vec::new();
    for url in &payloads {
        let r = h.curl(&["--path-as-is", url]);
        if r.status != 403 || r.json()["kind"] != "leak" {
            failures.push(format!("{url}: {} {}", r.status, r.body));
        }
    }
    assert!(failures.is_empty(), "not refused as leaks:\n{}", failures.join("\n"));
    assert_eq!(h.upstream.count(), 0);
    // The same request without the value goes through: the refusal is about the value.
    assert_eq!(h.curl(&[&format!("http://api.example.com:{port}/v1?key=harmless")]).status, 200);
    upstream_never_saw_the_secret(&h);
}
