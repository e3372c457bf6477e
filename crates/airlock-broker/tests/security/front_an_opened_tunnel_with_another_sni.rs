//! Attack: domain fronting through an opened tunnel. The tool asks to CONNECT to `api.example.com` (allowed), then
//! starts TLS naming `other.example.com`, hoping the broker issues a certificate for that name and carries requests
//! for it under the first host's decision. The handshake fails and nothing reaches the upstream.

use crate::common::inject_harness;

#[test]
fn front_an_opened_tunnel_with_another_sni() {
    let h = inject_harness();
    let port = h.tls_upstream.addr.port();
    let ca = std::fs::read_to_string(h.dir.path().join("airlock-ca.pem")).unwrap();
    let request: &[u8] = b"GET /quiet HTTP/1.1\r\nHost: other.example.com\r\n\r\n";
    let result =
        crate::common::tls_through_connect(&h, "api.example.com", port, "other.example.com", &ca, Some(request));
    assert!(result.is_err(), "TLS naming another host through an opened tunnel must fail: {result:?}");
    assert_eq!(h.tls_count(), 0, "the upstream saw no request");
}
