//! Real clients other than curl through the proxy: Python `requests` and `httpx`, and Node's `fetch` (undici with
//! a `ProxyAgent`, as Node does not read proxy variables itself). Each client is tested for an
//! allowed request, a denial it can read, an SSRF refusal, and HTTPS through a CONNECT tunnel verified against the
//! upstream's test CA.
//!
//! The Python interpreter is `$AIRLOCK_TEST_PYTHON` (scripts/test.sh makes a virtualenv with pinned clients), else
//! `python3`; undici is looked up under `$AIRLOCK_TEST_NODE_PATH`. Without the clients these tests say so and
//! pass, unless `AIRLOCK_REQUIRE_CLIENTS=1` (set by scripts/test.sh), where a missing client fails them.

mod common;

use common::Harness;

/// A client: the interpreter and the environment it needs, or `None` (skip) when it is missing.
struct Client {
    program: String,
    env: Vec<(String, String)>,
}

fn required(what: &str) {
    assert!(std::env::var("AIRLOCK_REQUIRE_CLIENTS").as_deref() != Ok("1"), "{what} is required (run scripts/test.sh)");
    eprintln!("skipping: {what} is not available");
}

fn python() -> Option<Client> {
    let py = std::env::var("AIRLOCK_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&py)
        .args(["-c", "import requests, httpx"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(Client { program: py, env: Vec::new() });
    }
    required(&format!("{py} with requests and httpx"));
    None
}

fn node() -> Option<Client> {
    let path = std::env::var("AIRLOCK_TEST_NODE_PATH").unwrap_or_default();
    let env = vec![("NODE_PATH".to_string(), path)];
    let ok = std::process::Command::new("node")
        .args(["-e", "require('undici')"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(Client { program: "node".into(), env });
    }
    required("node with undici");
    None
}

/// Runs a client snippet that prints `STATUS BODY` for one request through the proxy.
fn run(client: &Client, script: &str, args: &[&str]) -> (u16, String) {
    let flag = if client.program == "node" { "-e" } else { "-c" };
    let mut cmd = std::process::Command::new(&client.program);
    cmd.arg(flag).arg(script);
    let out = cmd
        .args(args)
        .envs(client.env.iter().map(|(k, v)| (k, v)))
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
    assert!(out.status.success() || status != "0", "the client failed: {}", String::from_utf8_lossy(&out.stderr));
    (status.trim().parse().unwrap_or(0), body.trim().to_string())
}

const REQUESTS: &str = r#"
import sys, requests
proxy, url, ca = sys.argv[1], sys.argv[2], sys.argv[3]
headers = dict([sys.argv[4].split(": ", 1)]) if len(sys.argv) > 4 else {}
try:
    r = requests.get(url, proxies={"http": proxy, "https": proxy}, verify=ca, timeout=20, headers=headers)
    print(r.status_code, r.text)
except requests.exceptions.ProxyError as e:
    print(403 if "403" in str(e) else 599, str(e).replace("\n", " "))
"#;

const HTTPX: &str = r#"
import sys, httpx
proxy, url, ca = sys.argv[1], sys.argv[2], sys.argv[3]
headers = dict([sys.argv[4].split(": ", 1)]) if len(sys.argv) > 4 else {}
try:
    with httpx.Client(proxy=proxy, verify=ca, timeout=20, follow_redirects=True) as c:
        r = c.get(url, headers=headers)
        print(r.status_code, r.text)
except httpx.ProxyError as e:
    print(403 if "403" in str(e) else 599, str(e).replace("\n", " "))
"#;

const NODE_FETCH: &str = r#"
const fs = require('fs');
const { ProxyAgent, fetch } = require('undici');
// `node -e SCRIPT a b c` gives argv [node, a, b, c].
const [proxy, url, ca, header] = process.argv.slice(1);
const headers = { 'user-agent': 'node-fetch-undici' };
if (header) { const i = header.indexOf(': '); headers[header.slice(0, i)] = header.slice(i + 2); }
const dispatcher = new ProxyAgent({ uri: proxy, requestTls: { ca: fs.readFileSync(ca) } });
fetch(url, { dispatcher, headers })
  .then(async (r) => console.log(r.status, await r.text()))
  .catch((e) => { const m = String((e.cause && e.cause.message) || e); console.log(m.includes('403') ? 403 : 599, m); });
"#;

/// `tunnels_http`: the client CONNECTs even for `http://` URLs (undici), so a refusal reaches it as a failed
/// CONNECT, which it reports without the body; the refusal itself is checked by status and by the upstream.
fn exercise(client: &str, script: &str, py: Option<Client>, tunnels_http: bool) {
    let Some(py) = py else { return };
    let refused = |status: u16, body: &str, kind: &str, what: &str| {
        if tunnels_http {
            assert!(status != 200 && status != 0, "{client} {what}: {status} {body}");
        } else {
            assert_eq!(status, 403, "{client} {what}: {body}");
            assert!(body.contains(&format!("\"kind\":\"{kind}\"")), "{client} can read why ({what}): {body}");
        }
    };
    let h = Harness::new();
    let proxy = h.proxy_url();
    let ca = h.tls_upstream.ca_file.to_str().unwrap().to_string();
    let port = h.upstream.addr.port();

    let (status, body) = run(&py, script, &[&proxy, &format!("http://api.example.com:{port}/ok"), &ca]);
    assert_eq!(status, 200, "{client} allowed: {body}");
    assert!(h.upstream.last().unwrap().headers["user-agent"].contains(client), "{client} made the request");

    let (status, body) = run(&py, script, &[&proxy, &format!("http://other.example.com:{port}/no"), &ca]);
    refused(status, &body, "policy", "denied");

    let (status, body) = run(&py, script, &[&proxy, "http://meta.example.com/latest/meta-data/", &ca]);
    refused(status, &body, "ssrf", "SSRF");
    assert_eq!(h.upstream.count(), 1, "{client}: only the allowed request reached the upstream");

    let tls = format!("https://tunnel.example.com:{}/secure", h.tls_upstream.addr.port());
    let (status, body) = run(&py, script, &[&proxy, &tls, &ca]);
    assert_eq!(status, 200, "{client} HTTPS through a tunnel: {body}");
    assert!(h.tls_upstream.last().unwrap().uri.ends_with("/secure"));

    let denied_tls = format!("https://other.example.com:{}/", h.tls_upstream.addr.port());
    let (status, body) = run(&py, script, &[&proxy, &denied_tls, &ca]);
    if tunnels_http {
        assert!(status != 200 && status != 0, "{client} CONNECT denied: {status} {body}");
    } else {
        assert_eq!(status, 403, "{client} CONNECT denied: {body}");
    }
    assert_eq!(h.tls_upstream.seen.lock().unwrap().len(), 1, "{client}: the denied tunnel reached nothing");
}

/// Through opened tunnels (the client trusts only Airlock's CA): a surrogate swapped toward its pinned host, the
/// same surrogate refused toward another host (a readable 403, since the tunnel is open), a recipe applied, and a
/// cross-host redirect followed without the credential.
fn exercise_injection(client: &str, script: &str, c: Option<Client>) {
    use common::{API_REAL, API_SURROGATE, RECIPE_REAL, inject_harness};
    let Some(c) = c else { return };
    let h = inject_harness();
    let proxy = h.proxy_url();
    let ca = h.dir.path().join("airlock-ca.pem").to_str().unwrap().to_string();
    let auth = format!("Authorization: Bearer {API_SURROGATE}");

    let (status, body) = run(&c, script, &[&proxy, &h.tls_url("api.example.com", "/quiet"), &ca, &auth]);
    assert_eq!((status, body.as_str()), (200, r#"{"ok":true}"#), "{client} surrogate");
    assert_eq!(h.tls_upstream.last().unwrap().headers["authorization"], format!("Bearer {API_REAL}"), "{client}");

    let (status, body) = run(&c, script, &[&proxy, &h.tls_url("other.example.com", "/quiet"), &ca, &auth]);
    assert_eq!(status, 403, "{client} wrong host: {body}");
    assert!(body.contains(r#""kind":"exfiltration""#), "{client} can read why: {body}");

    let (status, body) = run(&c, script, &[&proxy, &h.tls_url("tunnel.example.com", "/quiet"), &ca]);
    assert_eq!(status, 200, "{client} recipe: {body}");
    assert_eq!(h.tls_upstream.last().unwrap().headers["x-api-key"], RECIPE_REAL, "{client}");

    let landing = h.tls_url("other.example.com", "/quiet");
    let start = h.tls_url("api.example.com", &format!("/redirect-to?{landing}"));
    let before = h.tls_count();
    let (status, body) = run(&c, script, &[&proxy, &start, &ca, &auth]);
    assert_eq!(status, 200, "{client} redirect: {body}");
    let seen = h.tls_upstream.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), before + 2, "{client}: the redirect and the landing");
    assert!(!seen[before + 1].headers.contains_key("authorization"), "{client}: {:?}", seen[before + 1].headers);
    assert!(!body.contains(API_REAL));
}

#[test]
fn python_requests_with_injection() {
    exercise_injection("python-requests", REQUESTS, python());
}

#[test]
fn python_httpx_with_injection() {
    exercise_injection("python-httpx", HTTPX, python());
}

#[test]
fn node_fetch_with_injection() {
    exercise_injection("node-fetch-undici", NODE_FETCH, node());
}

#[test]
fn python_requests_through_the_proxy() {
    exercise("python-requests", REQUESTS, python(), false);
}

#[test]
fn python_httpx_through_the_proxy() {
    exercise("python-httpx", HTTPX, python(), false);
}

#[test]
fn node_fetch_through_the_proxy() {
    exercise("node-fetch-undici", NODE_FETCH, node(), true);
}
