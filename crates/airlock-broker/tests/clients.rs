//! Real clients other than curl through the proxy: Python `requests` and `httpx`. Each client is tested for an
//! allowed request, a denial it can read, an SSRF refusal, and HTTPS through a CONNECT tunnel verified against the
//! upstream's test CA.
//!
//! The Python interpreter is `$AIRLOCK_TEST_PYTHON` (scripts/test.sh makes a virtualenv with pinned clients), else
//! `python3`. Without the clients these tests say so and pass, unless `AIRLOCK_REQUIRE_CLIENTS=1` (set by
//! scripts/test.sh), where a missing client fails them.

mod common;

use common::Harness;

fn python() -> Option<String> {
    let py = std::env::var("AIRLOCK_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&py)
        .args(["-c", "import requests, httpx"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    assert!(
        std::env::var("AIRLOCK_REQUIRE_CLIENTS").as_deref() != Ok("1"),
        "{py} with requests and httpx is required (run scripts/test.sh)"
    );
    eprintln!("skipping: {py} cannot import requests and httpx");
    None
}

/// Runs a Python snippet that prints `STATUS BODY` for one request through the proxy.
fn run(py: &str, script: &str, args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("NO_PROXY")
        .output()
        .expect("run python");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, body) = text.split_once(' ').unwrap_or(("0", ""));
    assert!(out.status.success() || status != "0", "python failed: {}", String::from_utf8_lossy(&out.stderr));
    (status.trim().parse().unwrap_or(0), body.trim().to_string())
}

const REQUESTS: &str = r#"
import sys, requests
proxy, url, ca = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    r = requests.get(url, proxies={"http": proxy, "https": proxy}, verify=ca, timeout=20)
    print(r.status_code, r.text)
except requests.exceptions.ProxyError as e:
    print(403 if "403" in str(e) else 599, str(e).replace("\n", " "))
"#;

const HTTPX: &str = r#"
import sys, httpx
proxy, url, ca = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    with httpx.Client(proxy=proxy, verify=ca, timeout=20) as c:
        r = c.get(url)
        print(r.status_code, r.text)
except httpx.ProxyError as e:
    print(403 if "403" in str(e) else 599, str(e).replace("\n", " "))
"#;

fn exercise(client: &str, script: &str) {
    let Some(py) = python() else { return };
    let h = Harness::new();
    let proxy = h.proxy_url();
    let ca = h.tls_upstream.ca_file.to_str().unwrap().to_string();
    let port = h.upstream.addr.port();

    let (status, body) = run(&py, script, &[&proxy, &format!("http://api.example.com:{port}/ok"), &ca]);
    assert_eq!(status, 200, "{client} allowed: {body}");
    assert!(h.upstream.last().unwrap().headers["user-agent"].contains(client), "{client} made the request");

    let (status, body) = run(&py, script, &[&proxy, &format!("http://other.example.com:{port}/no"), &ca]);
    assert_eq!(status, 403, "{client} denied: {body}");
    assert!(body.contains("\"kind\":\"policy\""), "{client} can read why: {body}");

    let (status, body) = run(&py, script, &[&proxy, "http://meta.example.com/latest/meta-data/", &ca]);
    assert_eq!(status, 403, "{client} SSRF: {body}");
    assert!(body.contains("\"kind\":\"ssrf\""), "{client}: {body}");

    let tls = format!("https://tunnel.example.com:{}/secure", h.tls_upstream.addr.port());
    let (status, body) = run(&py, script, &[&proxy, &tls, &ca]);
    assert_eq!(status, 200, "{client} HTTPS through a tunnel: {body}");
    assert!(h.tls_upstream.last().unwrap().uri.ends_with("/secure"));

    let denied_tls = format!("https://other.example.com:{}/", h.tls_upstream.addr.port());
    let (status, body) = run(&py, script, &[&proxy, &denied_tls, &ca]);
    assert_eq!(status, 403, "{client} CONNECT denied: {body}");
}

#[test]
fn python_requests_through_the_proxy() {
    exercise("python-requests", REQUESTS);
}

#[test]
fn python_httpx_through_the_proxy() {
    exercise("python-httpx", HTTPX);
}
