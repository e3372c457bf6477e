//! The proxy end to end with curl: allowed, denied by policy, denied by SSRF, forwarded headers, CONNECT tunnels
//! with their SNI check.

mod common;

use std::sync::Arc;

use common::Harness;

#[test]
fn allowed_get_reaches_the_upstream_with_a_canonical_host_and_no_proxy_headers() {
    let h = Harness::new();
    let url = format!("http://api.example.com:{}/v1/items?q=1", h.upstream.addr.port());
    let r = h.curl(&[
        "-H",
        "Proxy-Authorization: Basic Zm9vOmJhcg==",
        "-H",
        "Connection: x-drop-me",
        "-H",
        "X-Drop-Me: 1",
        &url,
    ]);
    assert_eq!(r.status, 200, "{r:?}");
    let seen = h.upstream.last().expect("the upstream was reached");
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.uri, "/v1/items?q=1", "origin-form upstream");
    assert_eq!(
        seen.headers.get("host").map(String::as_str),
        Some(format!("api.example.com:{}", h.upstream.addr.port()).as_str())
    );
    assert!(!seen.headers.contains_key("proxy-authorization"), "the proxy credential never goes upstream");
    assert!(!seen.headers.contains_key("x-drop-me"), "headers named by Connection are hop-by-hop");
    assert!(!seen.headers.contains_key("proxy-connection"));
    assert!(!r.headers.contains("keep-alive: timeout"), "upstream hop-by-hop headers are not passed back");
}

#[test]
fn a_host_outside_policy_gets_403_with_a_reason_the_model_can_read() {
    let h = Harness::new();
    let r = h.curl(&[&format!("http://other.example.com:{}/x", h.upstream.addr.port())]);
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.headers.contains("x-airlock-deny:"), "{}", r.headers);
    let j = r.json();
    assert_eq!(j["error"], "denied");
    assert_eq!(j["kind"], "policy");
    assert!(!j["reason"].as_str().unwrap().is_empty());
    assert_eq!(h.upstream.count(), 0, "nothing reached the upstream");
}

#[test]
fn method_and_path_rules_are_enforced_per_request() {
    let h = Harness::new();
    let port = h.upstream.addr.port();
    assert_eq!(h.curl(&[&format!("http://paths.example.com:{port}/only/a")]).status, 200);
    assert_eq!(h.curl(&[&format!("http://paths.example.com:{port}/other")]).status, 403);
    assert_eq!(h.curl(&["-X", "POST", "-d", "x", &format!("http://paths.example.com:{port}/only/a")]).status, 403);
    assert_eq!(h.upstream.count(), 1);
}

#[test]
fn trace_is_refused_before_policy() {
    let h = Harness::new();
    let r = h.curl(&["-X", "TRACE", &format!("http://api.example.com:{}/", h.upstream.addr.port())]);
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(h.upstream.count(), 0);
}

#[test]
fn a_declared_body_over_the_limit_gets_413_before_the_upstream_is_contacted() {
    let h = Harness::with(common::POLICY, |c| c.limits.max_body_bytes = 1000);
    let body = "x".repeat(5000);
    let r = h.curl(&[
        "-X",
        "POST",
        "--data-binary",
        &body,
        &format!("http://api.example.com:{}/up", h.upstream.addr.port()),
    ]);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(h.upstream.count(), 0);
    let small = h.curl(&[
        "-X",
        "POST",
        "--data-binary",
        "abc",
        &format!("http://api.example.com:{}/up", h.upstream.addr.port()),
    ]);
    assert_eq!(small.status, 200);
    assert_eq!(h.upstream.last().unwrap().body, b"abc");
}

#[test]
fn oversized_headers_get_431() {
    let h = Harness::with(common::POLICY, |c| c.limits.max_header_bytes = 8192);
    let big = format!("X-Big: {}", "a".repeat(20_000));
    let r = h.curl(&["-H", &big, &format!("http://api.example.com:{}/", h.upstream.addr.port())]);
    assert_eq!(r.status, 431, "{r:?}");
    assert_eq!(h.upstream.count(), 0);
}

#[test]
fn the_broker_itself_is_never_a_destination() {
    let h = Harness::new();
    let r = h.curl(&[&format!("http://api.example.com:{}/", h.proxy.port())]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "ssrf");
}

#[test]
fn a_name_resolving_to_any_denied_address_is_refused() {
    let h = Harness::new();
    for host in ["rebind.example.com", "meta.example.com"] {
        // Policy allows both names: only the SSRF step stands in the way.
        let r = h.curl(&[&format!("http://{host}/")]);
        assert_eq!(r.status, 403, "{host}: {r:?}");
        assert_eq!(r.json()["kind"], "ssrf", "{host}: {r:?}");
    }
}

#[test]
fn keep_alive_reuses_the_client_connection() {
    let h = Harness::new();
    let url = format!("http://api.example.com:{}/a", h.upstream.addr.port());
    let r = h.curl(&["-v", &url, &url, &url]);
    assert!(r.stderr.contains("Re-using existing connection") || r.stderr.contains("Reusing existing"), "{}", r.stderr);
    assert_eq!(h.upstream.count(), 3);
}

#[test]
fn connect_tunnel_carries_tls_end_to_end() {
    let h = Harness::new();
    let url = format!("https://tunnel.example.com:{}/secure", h.tls_upstream.addr.port());
    let r = h.curl(&["--cacert", h.tls_upstream.ca_file.to_str().unwrap(), &url]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(h.tls_upstream.last().unwrap().uri.ends_with("/secure"));
}

#[test]
fn connect_to_a_denied_host_gets_403_before_any_tunnel() {
    let h = Harness::new();
    let url = format!("https://other.example.com:{}/", h.tls_upstream.addr.port());
    let r = h.curl(&["--cacert", h.tls_upstream.ca_file.to_str().unwrap(), &url]);
    assert_ne!(r.status, 200, "{r:?}");
    assert!(r.stderr.contains("403") || r.headers.contains("403"), "{r:?}");
    assert!(h.tls_upstream.last().is_none());
}

#[test]
fn a_tunnel_whose_sni_names_another_host_is_cut() {
    // CONNECT to an allowed host, then TLS to another name through it (domain fronting).
    let h = Harness::new();
    let port = h.tls_upstream.addr.port();
    let ca = h.tls_upstream.ca_pem.clone();
    let result = common::tls_through_connect(&h, "tunnel.example.com", port, "other.example.com", &ca, None);
    assert!(result.is_err(), "TLS to another name through an approved tunnel must fail");
    assert!(h.tls_upstream.last().is_none(), "the upstream saw no request");
}

/// Writes `first` into a CONNECT tunnel to `tunnel.example.com` on `port` and returns what came back.
fn through_tunnel(h: &Harness, port: u16, first: &'static [u8]) -> Vec<u8> {
    let proxy = h.proxy;
    h.runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
        s.write_all(format!("CONNECT tunnel.example.com:{port} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut head = [0u8; 1024];
        let n = s.read(&mut head).await.unwrap();
        assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
        s.write_all(first).await.unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut rest)).await;
        rest
    })
}

#[test]
fn a_tunnel_that_starts_with_neither_tls_nor_http_is_cut() {
    let h = Harness::new();
    let got = through_tunnel(&h, h.upstream.addr.port(), b"SSH-2.0-OpenSSH_9.6\r\n");
    assert!(got.is_empty(), "nothing came back through a refused tunnel: {:?}", String::from_utf8_lossy(&got));
    assert_eq!(h.upstream.count(), 0);
}

#[test]
fn plain_http_inside_a_tunnel_is_served_request_by_request() {
    // Node's undici tunnels even http:// URLs: the broker sees the plaintext and decides each request.
    let h = Harness::new();
    let port = h.upstream.addr.port();
    let got = through_tunnel(&h, port, b"GET /in-tunnel HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let seen = h.upstream.last().unwrap();
    assert_eq!(seen.uri, "/in-tunnel");
    assert_eq!(
        seen.headers["host"],
        format!("tunnel.example.com:{port}"),
        "Host comes from the tunnel, not the client"
    );
    // An absolute-form request inside a tunnel would name another destination: refused.
    let got =
        through_tunnel(&h, port, b"GET http://other.example.com/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 400"), "{}", String::from_utf8_lossy(&got));
    assert_eq!(h.upstream.count(), 1);
}

#[test]
fn a_tool_over_its_rate_limit_gets_429_with_retry_after() {
    let policy = format!("{}\n[rate_limits.tools.fetch]\nrequests_per_minute = 60\nburst = 2\n", common::POLICY);
    let h = Harness::with(&policy, |_| {});
    let url = format!("http://api.example.com:{}/r", h.upstream.addr.port());
    assert_eq!(h.curl(&[&url]).status, 200);
    assert_eq!(h.curl(&[&url]).status, 200);
    let r = h.curl(&[&url]);
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.json()["kind"], "rate");
    assert!(r.headers.contains("retry-after: 1"), "{}", r.headers);
    assert_eq!(h.upstream.count(), 2);
}

#[test]
fn a_tool_over_its_hourly_egress_bytes_gets_429_with_retry_after() {
    let policy = format!("{}\n[rate_limits.tools.fetch]\negress_bytes_per_hour = \"8KiB\"\n", common::POLICY);
    let h = Harness::with(&policy, |_| {});
    let url = format!("http://api.example.com:{}/up", h.upstream.addr.port());
    let body = "b".repeat(5000);
    assert_eq!(h.curl(&["-X", "POST", "--data-binary", &body, &url]).status, 200);
    let r = h.curl(&["-X", "POST", "--data-binary", &body, &url]);
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.json()["kind"], "budget");
    assert!(r.headers.contains("retry-after:"), "{}", r.headers);
    assert_eq!(h.upstream.count(), 1);
}

#[test]
fn rate_limits_follow_a_policy_reload() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("airlock.toml");
    let limited = |burst: u32| {
        format!("{}\n[rate_limits.tools.fetch]\nrequests_per_minute = 1\nburst = {burst}\n", common::POLICY)
    };
    std::fs::write(&file, limited(1)).unwrap();
    let opts = airlock_policy::LoadOptions {
        profile_flag: None,
        profile_env: None,
        workspace: dir.path().to_path_buf(),
        home: dir.path().to_path_buf(),
    };
    let store = Arc::new(airlock_policy::PolicyStore::open(&file, opts).unwrap());
    let policy = Arc::clone(&store);
    let h = Harness::with(&limited(1), move |cfg| cfg.policy = policy);
    let url = format!("http://api.example.com:{}/r", h.upstream.addr.port());
    assert_eq!(h.curl(&[&url]).status, 200);
    assert_eq!(h.curl(&[&url]).status, 429, "burst 1: the second request waits");
    std::fs::write(&file, limited(5)).unwrap();
    store.reload().unwrap();
    for i in 0..4 {
        assert_eq!(h.curl(&[&url]).status, 200, "after the reload, request {i} fits the new burst");
    }
}
