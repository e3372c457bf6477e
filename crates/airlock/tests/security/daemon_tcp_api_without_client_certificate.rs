//! Attack: a network peer holding a stolen agent token calls the daemon's TCP API, which is served beyond loopback
//! with mutual TLS: with no client certificate, with one it made itself (its own CA, the same subject name as a
//! real client), or in plain HTTP.
//! Defence: the TLS handshake demands a certificate that chains to `--client-ca` and fails without one, before a
//! byte of HTTP is read: the token is never even looked at, no request is served, and each refusal is audited
//! (rate-limited) without the token.

use std::process::Command;

use crate::common::daemon::Daemon;
use crate::common::pki::{Pki, wait_for_metric};

#[test]
fn daemon_tcp_api_without_client_certificate() {
    let pki = Pki::new();
    let args = pki.serve_args();
    let mut d = Daemon::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(d.url.starts_with("https://"), "{}", d.url);
    let stolen = d.tokens["root"].clone();
    let whoami = format!("{}/v1/whoami", d.url);

    let attempts = [
        ("no certificate", pki.curl(&whoami, None, Some(&stolen))),
        ("a certificate from the attacker's own CA", pki.curl(&whoami, Some("rogue"), Some(&stolen))),
        (
            "plain HTTP",
            Command::new("curl")
                .args(["-s", "-S", "-i", "--max-time", "20", "-H", &format!("Authorization: Bearer {stolen}")])
                .arg(whoami.replace("https://", "http://"))
                .output()
                .unwrap(),
        ),
    ];
    for (how, out) in &attempts {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("HTTP/1.1 200"), "{how}: the API answered:\n{stdout}");
        assert!(!stdout.contains("\"root\""), "{how}: the API answered:\n{stdout}");
    }
    // TLS refusals: curl fails without any HTTP answer.
    for (how, out) in &attempts[..2] {
        assert!(!out.status.success(), "{how}: curl succeeded");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("HTTP/"), "{how}: an HTTP answer came back");
    }
    // With the real client's certificate, the same token works: the refusals were the certificate's doing.
    let real = pki.curl(&whoami, Some("client"), Some(&stolen));
    assert!(String::from_utf8_lossy(&real.stdout).contains("\"root\""), "{}", String::from_utf8_lossy(&real.stdout));

    for outcome in ["no-certificate", "bad-certificate", "protocol"] {
        wait_for_metric(&d, &format!("airlock_api_tls_handshakes_total{{outcome=\"{outcome}\"}} 1"));
    }
    assert_eq!(d.stop(), 0);
    let log = d.al.call(["audit", "tail", "-n", "100"]).expect(0).out();
    for why in ["no client certificate", "client certificate: invalid peer certificate", "TLS: "] {
        assert!(log.contains(&format!("API connection refused: TLS handshake failed: {why}")), "{why}:\n{log}");
    }
    assert!(!log.contains(&stolen), "a presented token must never be logged");
    // Only the real client's request reached the API.
    assert_eq!(log.matches("API request refused").count(), 0, "{log}");
    d.al.call(["audit", "verify"]).expect(0);
}
