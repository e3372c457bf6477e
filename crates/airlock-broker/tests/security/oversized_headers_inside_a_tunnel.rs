//! Attack: get past the header-size bound (431 for a request line plus headers over `limits.max_header_bytes`) by
//! sending the request as plain HTTP inside an approved CONNECT tunnel, which the broker serves request by request.
//!
//! Defence (expected): the same bounds apply inside a tunnel as outside it.

use crate::common::*;

#[test]
fn oversized_headers_get_431_inside_a_tunnel_as_outside_it() {
    let h = Harness::with(POLICY, |c| c.limits.max_header_bytes = 8192);
    let port = h.upstream.addr.port();
    let big = "a".repeat(20_000);
    // Control: outside a tunnel, 431 and nothing sent upstream.
    let outside = h.raw(
        format!("GET http://api.example.com:{port}/ HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(outside.status, 431, "{outside:?}");
    assert_eq!(h.upstream.count(), 0);
    // The same request inside an approved tunnel.
    let (connect, inner) = h.tunnel_http(
        &format!("tunnel.example.com:{port}"),
        &[format!("GET /in HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n")],
    );
    assert_eq!(connect.status, 200, "{connect:?}");
    let status = inner.first().map(|r| r.status);
    let heads: Vec<&str> = inner.iter().map(|r| r.head.as_str()).collect();
    assert_eq!(status, Some(431), "inside the tunnel: {heads:?}");
    assert_eq!(h.upstream.count(), 0, "the oversized request reached the upstream");
}
