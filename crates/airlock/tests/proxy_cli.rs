//! `airlock proxy` as a subprocess on a real vault, policy file and audit log: curl through it to a loopback
//! upstream, allowed and denied, then the audit log holds both decisions and verifies.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use common::Airlock;

const PASS: &str = "correct horse battery staple lamp";
/// A vault value a tool must never get out through the proxy, nor see in any output or log.
const VALUE: &str = "ghp_PROXYCANARY0123456789abcdefghijklmn";

const POLICY: &str = r#"
version = 1
default_profile = "dev"

[network]
allow_private = ["127.0.0.1"]

[audit]
record_allows = true

[agents.agent]
tools = ["fetch"]

[tools.fetch]
[[tools.fetch.network]]
hosts = ["api.example.com:*"]
"#;

/// A loopback HTTP/1.1 server answering every request with `hello from upstream`, one request per connection.
fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "hello from upstream";
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    port
}

fn curl(proxy: &str, url: &str) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-x", proxy, "-w", "\n%{http_code}", url])
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn proxy_serves_policy_and_records_every_decision() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    al.set("gh", VALUE.as_bytes());
    std::fs::write(al.home.join("airlock.toml"), POLICY).unwrap();
    let port = upstream();
    let (mut child, feeder) = al
        .call([
            "proxy",
            "--agent",
            "agent",
            "--tool",
            "fetch",
            "--config",
            al.home.join("airlock.toml").to_str().unwrap(),
            "--resolve",
            "api.example.com=127.0.0.1",
            "--resolve",
            "other.example.com=127.0.0.1",
            "--exit-after",
            "60",
        ])
        .spawn();
    feeder.join().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let proxy = loop {
        let line = lines.next().expect("the proxy printed its address").unwrap();
        if let Some(p) = line.strip_prefix("HTTP_PROXY=") {
            break p.to_string();
        }
    };

    let (status, body) = curl(&proxy, &format!("http://api.example.com:{port}/v1"));
    assert_eq!((status, body.as_str()), (200, "hello from upstream"));
    let (status, body) = curl(&proxy, &format!("http://other.example.com:{port}/secret-path"));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"kind\":\"policy\""), "{body}");
    let (status, body) = curl(&proxy, &format!("http://api.example.com:{port}/v1?token={VALUE}"));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"kind\":\"leak\"") && body.contains("default/gh"), "{body}");
    assert!(!body.contains(VALUE));

    // Ctrl-C: the proxy stops and closes (signs) its audit log.
    let pid = child.id().to_string();
    std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the proxy exited with {status}");

    al.call(["audit", "verify"]).expect(0).out_has("OK");
    let q = al.call(["--json", "audit", "query", "--type", "api"]).expect(0);
    let events: Vec<serde_json::Value> = q.out().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let find = |host: &str| {
        events
            .iter()
            .find(|e| e["http_request"]["url"]["hostname"] == host)
            .unwrap_or_else(|| panic!("no record for {host} in {events:#?}"))
    };
    let allowed = find("api.example.com");
    assert_eq!(allowed["actor"]["authorizations"][0]["decision"], "allow", "{allowed:#}");
    assert_eq!(allowed["dst_endpoint"]["ip"], "127.0.0.1");
    let denied = find("other.example.com");
    assert_eq!(denied["actor"]["authorizations"][0]["decision"], "deny", "{denied:#}");
    assert_eq!(denied["unmapped"]["airlock"]["deny_kind"], "policy");
    let leak = events.iter().find(|e| e["unmapped"]["airlock"]["deny_kind"] == "leak").expect("the leak was recorded");
    assert!(leak["http_request"]["url"]["path"].as_str().unwrap().starts_with("hmac-sha256:"), "{leak:#}");
    let findings = al.call(["--json", "audit", "query", "--type", "finding"]).expect(0);
    assert!(findings.out().contains("default/gh"), "a Detection Finding names the secret: {}", findings.out());
    for file in std::fs::read_dir(al.home.join("audit/segments")).unwrap() {
        let data = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!data.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()), "the value reached the audit log");
    }
    let t = al.transcript();
    assert!(!t.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()), "the value was printed");
}

#[test]
fn proxy_refuses_a_non_loopback_listen_address() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    std::fs::write(al.home.join("airlock.toml"), POLICY).unwrap();
    al.call(["proxy", "--agent", "agent", "--tool", "fetch", "--listen", "0.0.0.0:0"])
        .expect(2)
        .err_has("loopback only");
}
