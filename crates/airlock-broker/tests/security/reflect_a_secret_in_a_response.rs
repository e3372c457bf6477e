//! Attack: the tool sends its surrogate to the pinned host, on an endpoint that echoes the request back (a debug
//! endpoint, an error page quoting the `Authorization` header). The upstream rightly sees the real value; the
//! echo would hand it to the tool. The broker cuts the response off before the value gets through.

use crate::common::{API_REAL, API_SURROGATE, inject_harness};

#[test]
fn reflect_a_secret_in_a_response() {
    let h = inject_harness();
    let r = h.curl_opened(&[
        "-H",
        &format!("Authorization: Bearer {API_SURROGATE}"),
        &h.tls_url("api.example.com", "/echo"),
    ]);
    let seen = h.tls_upstream.last().expect("the upstream saw the request");
    assert_eq!(seen.headers["authorization"], format!("Bearer {API_REAL}"));
    assert!(!r.body.contains(API_REAL), "the real value reached the client: {r:?}");
    assert!(!r.headers.contains(&API_REAL.to_ascii_lowercase()));
    // curl sees the transfer broken off (a truncated body), never a clean copy.
    assert!(!r.stderr.is_empty() || r.status != 200, "{r:?}");
}
