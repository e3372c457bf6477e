//! `airlock serve --listen` with mutual TLS: the real daemon on a loopback port, certificates made at test time
//! (tests/common/pki.rs), and curl as the client (`--cacert`, `--cert`, `--key`).
//!
//! Every listener here is on 127.0.0.1; that a non-loopback address is accepted with mutual TLS (and refused
//! without) is unit-tested on the address check in src/serve/tls.rs, so no test binds a public interface.

mod common;

use std::process::Command;

use common::Airlock;
use common::daemon::{Daemon, parse};
use common::pki::{Pki, wait_for_metric};
use serde_json::json;

fn start(pki: &Pki) -> Daemon {
    let args = pki.serve_args();
    let d = Daemon::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(d.url.starts_with("https://127.0.0.1:"), "{}", d.url);
    d
}

/// A curl that failed before any HTTP answer: the handshake was refused.
fn assert_refused(out: &std::process::Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "curl should fail; it got:\n{stdout}");
    assert!(!stdout.contains("HTTP/"), "no HTTP answer may come back; got:\n{stdout}");
}

#[test]
fn a_client_with_a_trusted_certificate_and_a_token_is_served() {
    let pki = Pki::new();
    let d = start(&pki);
    let out = pki.curl(&format!("{}/v1/whoami", d.url), Some("client"), Some(&d.tokens["worker"]));
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let r = parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"name": "worker", "role": "agent", "parent": "root"}));
    // Also by the name in its certificate, and over HTTP/1.1 (the only protocol offered).
    let by_name = d.url.replace("127.0.0.1", "localhost");
    let out = pki.curl(&format!("{by_name}/v1/health"), Some("client"), None);
    let r = parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(r.headers.starts_with("HTTP/1.1 200"), "{}", r.headers);
    wait_for_metric(&d, "airlock_api_tls_handshakes_total{outcome=\"ok\"} 2");
    // The Unix socket is unchanged: plain HTTP, no certificate.
    let out = Command::new("curl")
        .args(["-s", "--unix-socket"])
        .arg(&d.socket)
        .args(["-H", &format!("Authorization: Bearer {}", d.tokens["other"])])
        .arg("http://airlock/v1/whoami")
        .output()
        .unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["name"], "other");
}

#[test]
fn a_certificate_without_a_token_is_refused_and_audited_by_certificate() {
    let pki = Pki::new();
    let mut d = start(&pki);
    let out = pki.curl(&format!("{}/v1/whoami", d.url), Some("client"), None);
    let r = parse(&String::from_utf8_lossy(&out.stdout));
    r.problem(401, "unauthorized");
    assert_eq!(d.stop(), 0);
    let log = d.al.call(["audit", "tail", "-n", "50"]).expect(0).out();
    let peer = format!("cert CN=\"client-1\" sha256:{}", pki.client_fingerprint);
    assert!(
        log.lines().any(|l| l.contains("API request refused: no bearer token") && l.contains(&peer)),
        "the refusal should name the client certificate ({peer}):\n{log}"
    );
}

#[test]
fn a_client_without_a_certificate_is_refused_at_the_handshake() {
    let pki = Pki::new();
    let mut d = start(&pki);
    let out = pki.curl(&format!("{}/v1/whoami", d.url), None, Some(&d.tokens["worker"]));
    assert_refused(&out);
    wait_for_metric(&d, "airlock_api_tls_handshakes_total{outcome=\"no-certificate\"} 1");
    assert_eq!(d.stop(), 0);
    let log = d.al.call(["audit", "tail", "-n", "50"]).expect(0).out();
    assert!(log.contains("API connection refused: TLS handshake failed: no client certificate"), "{log}");
}

#[test]
fn a_client_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let mut d = start(&pki);
    let out = pki.curl(&format!("{}/v1/whoami", d.url), Some("rogue"), Some(&d.tokens["worker"]));
    assert_refused(&out);
    wait_for_metric(&d, "airlock_api_tls_handshakes_total{outcome=\"bad-certificate\"} 1");
    // The trusted client still gets in.
    let ok = pki.curl(&format!("{}/v1/whoami", d.url), Some("client"), Some(&d.tokens["worker"]));
    assert_eq!(parse(&String::from_utf8_lossy(&ok.stdout)).status, 200);
    assert_eq!(d.stop(), 0);
    let log = d.al.call(["audit", "tail", "-n", "50"]).expect(0).out();
    assert!(log.contains("API connection refused: TLS handshake failed: client certificate"), "{log}");
}

#[test]
fn a_public_address_without_mutual_tls_is_a_usage_error() {
    let al = Airlock::new();
    let r = al.call(["serve", "--listen", "0.0.0.0:0"]).expect(2);
    r.err_has("refusing to listen on 0.0.0.0:0").err_has("--tls-cert, --tls-key and --client-ca");
    assert!(r.out().is_empty(), "no ready line: {}", r.out());
}

#[test]
fn partial_tls_flags_are_a_usage_error_naming_what_is_missing() {
    let pki = Pki::new();
    let al = Airlock::new();
    al.call(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(pki.path("server.pem"))
        .expect(2)
        .err_has("missing: --tls-key, --client-ca");
    al.call(["serve", "--listen", "127.0.0.1:0", "--tls-key"])
        .arg(pki.path("server.key"))
        .arg("--client-ca")
        .arg(pki.path("ca.pem"))
        .expect(2)
        .err_has("missing: --tls-cert");
    // The three without --listen secure nothing.
    al.call(["serve"]).args(pki.serve_args()).expect(2).err_has("--listen");
}

#[test]
fn bad_certificate_or_key_files_stop_the_daemon_before_it_is_ready() {
    let pki = Pki::new();
    let al = Airlock::with_passphrase(common::daemon::PASS);
    al.init_passphrase();
    std::fs::write(al.home.join("airlock.toml"), "[agents.worker]\ntools = [\"t\"]\n[tools.t]\n").unwrap();
    let serve = |cert: &str, key: &str, ca: &str| {
        al.call(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(al.home.join("airlock.toml"))
            .arg("--tls-cert")
            .arg(pki.path(cert))
            .arg("--tls-key")
            .arg(pki.path(key))
            .arg("--client-ca")
            .arg(pki.path(ca))
    };
    // A key file that is not PEM: invalid input (8), and nothing of it is quoted.
    pki.write("garbage.key", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n", 0o600);
    let r = serve("server.pem", "garbage.key", "ca.pem").expect(8);
    r.err_has("--tls-key").err_has("no private key").err_lacks("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7");
    assert!(r.out().is_empty(), "no ready line: {}", r.out());
    // A key that is not the certificate's.
    serve("server.pem", "client.key", "ca.pem").expect(8).err_has("the key is not the certificate's");
    // A certificate file that holds no certificate.
    serve("server.key", "server.key", "ca.pem").expect(8).err_has("no certificate");
    // A missing file: not found (4).
    serve("server.pem", "server.key", "nowhere.pem").expect(4).err_has("--client-ca").err_has("no such file");
    // A key others may read.
    pki.write("open.key", &std::fs::read_to_string(pki.path("server.key")).unwrap(), 0o644);
    serve("server.pem", "open.key", "ca.pem").expect(8).err_has("chmod 600");
    // With the right files, it serves.
    let mut child = serve("server.pem", "server.key", "ca.pem").spawn().0;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains(" and https://127.0.0.1:"), "{line}");
}
