//! A prompt-injected tool trickles data out in many small, individually allowed requests, slowly enough that no
//! request-rate limit trips. The run's egress budgets put a ceiling on the total: bytes sent (request heads, bodies,
//! and writes into a CONNECT tunnel), requests made, and distinct hosts reached. Past any of them the broker refuses
//! with 403 `budget` and the upstream gets nothing more.

use crate::common::{self, Harness};

fn with_budget(budget: &str) -> Harness {
    Harness::with(&format!("{}\n[budgets]\nrun = {{ {budget} }}\n", common::POLICY), |_| {})
}

#[test]
fn bodies_past_the_run_byte_budget_are_refused() {
    let h = with_budget(r#"egress_bytes = "64KiB""#);
    let url = format!("http://api.example.com:{}/drop", h.upstream.addr.port());
    let chunk = "x".repeat(20 * 1024);
    for i in 0..3 {
        let r = h.curl(&["-X", "POST", "--data-binary", &chunk, &url]);
        assert_eq!(r.status, 200, "upload {i}: {r:?}");
    }
    // 3 × 20 KiB and their heads fit in 64 KiB; a fourth does not.
    let r = h.curl(&["-X", "POST", "--data-binary", &chunk, &url]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "budget");
    assert!(r.json()["reason"].as_str().unwrap().contains("run egress_bytes"), "{r:?}");
    assert_eq!(h.upstream.count(), 3, "the fourth body must not arrive whole");
    // Spent is spent: even a bodiless request is refused once the head does not fit either.
    let small = h.curl(&["-X", "POST", "--data-binary", &"y".repeat(4000), &url]);
    assert_eq!(small.status, 403, "{small:?}");
}

#[test]
fn requests_past_the_run_request_budget_are_refused() {
    let h = with_budget("requests = 3");
    let url = format!("http://api.example.com:{}/ping", h.upstream.addr.port());
    for _ in 0..3 {
        assert_eq!(h.curl(&[&url]).status, 200);
    }
    let r = h.curl(&[&url]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "budget");
    assert!(!r.headers.contains("retry-after"), "a whole-life budget never comes back: {}", r.headers);
    assert_eq!(h.upstream.count(), 3);
}

#[test]
fn a_new_host_past_the_distinct_host_budget_is_refused() {
    let h = with_budget("distinct_hosts = 1");
    let port = h.upstream.addr.port();
    assert_eq!(h.curl(&[&format!("http://api.example.com:{port}/a")]).status, 200);
    let r = h.curl(&[&format!("http://tunnel.example.com:{port}/b")]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "budget");
    assert!(r.json()["reason"].as_str().unwrap().contains("distinct_hosts"), "{r:?}");
    // The host already reached stays reachable.
    assert_eq!(h.curl(&[&format!("http://api.example.com:{port}/c")]).status, 200);
    assert_eq!(h.upstream.count(), 2);
}

#[test]
fn a_tunnel_is_cut_when_its_writes_exhaust_the_byte_budget() {
    let h = with_budget(r#"egress_bytes = "64KiB""#);
    let url = h.tls_url("tunnel.example.com", "/upload");
    let ca = h.dir.path().join("upstream-ca.pem");
    std::fs::write(&ca, &h.tls_upstream.ca_pem).unwrap();
    let ca = ca.to_str().unwrap();
    // A small exchange fits.
    let ok = h.curl(&["--cacert", ca, &url]);
    assert_eq!(ok.status, 200, "{ok:?}");
    // 256 KiB through the tunnel does not: the broker stops copying and closes it.
    let size = 256 * 1024;
    let file = h.dir.path().join("big.bin");
    std::fs::write(&file, "z".repeat(size)).unwrap();
    let data = format!("@{}", file.display());
    let cut = h.curl(&["--cacert", ca, "-X", "POST", "--data-binary", &data, &url]);
    assert_ne!(cut.status, 200, "{cut:?}");
    let seen = h.tls_upstream.seen.lock().unwrap();
    assert!(seen.iter().all(|s| s.body.len() < size), "the upstream must not get the whole upload");
}
