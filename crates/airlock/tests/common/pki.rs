//! Throwaway certificate authorities for the mutual-TLS tests (rcgen, at test time), written as the PEM files that
//! `airlock serve --tls-cert/--tls-key/--client-ca` and curl (`--cacert`, `--cert`, `--key`) read.
//!
//! - `ca.pem`: the CA the daemon trusts for clients, which also signed the server's certificate.
//! - `server.pem`, `server.key`: the daemon (SANs `localhost` and `127.0.0.1`).
//! - `client.pem`, `client.key`: a client the daemon trusts (CN `client-1`).
//! - `rogue-ca.pem`, `rogue.pem`, `rogue.key`: a client certificate from a CA the daemon does not trust (CN
//!   `client-1` too: the name alone must not be enough).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

use super::daemon::Daemon;

pub struct Pki {
    pub dir: tempfile::TempDir,
    /// SHA-256 of the trusted client certificate's DER, lowercase hex.
    pub client_fingerprint: String,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn leaf(
    cn: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'static, KeyPair>,
) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![usage];
    (params.signed_by(&key, issuer).unwrap(), key)
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::Builder::new().prefix("airlock-pki-").tempdir().unwrap();
        let (ca_pem, issuer) = ca("Airlock test CA");
        let (server, server_key) =
            leaf("airlock-server", &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth, &issuer);
        let (client, client_key) = leaf("client-1", &[], ExtendedKeyUsagePurpose::ClientAuth, &issuer);
        let (rogue_ca_pem, rogue_issuer) = ca("Rogue CA");
        let (rogue, rogue_key) = leaf("client-1", &[], ExtendedKeyUsagePurpose::ClientAuth, &rogue_issuer);
        let pki = Pki { dir, client_fingerprint: super::hex(&airlock_crypto::kdf::sha256(client.der())) };
        for (name, text, mode) in [
            ("ca.pem", ca_pem, 0o644),
            ("server.pem", server.pem(), 0o644),
            ("server.key", server_key.serialize_pem(), 0o600),
            ("client.pem", client.pem(), 0o644),
            ("client.key", client_key.serialize_pem(), 0o600),
            ("rogue-ca.pem", rogue_ca_pem, 0o644),
            ("rogue.pem", rogue.pem(), 0o644),
            ("rogue.key", rogue_key.serialize_pem(), 0o600),
        ] {
            pki.write(name, &text, mode);
        }
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str, mode: u32) {
        std::fs::write(self.path(name), text).unwrap();
        std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// `--tls-cert server.pem --tls-key server.key --client-ca ca.pem`.
    pub fn serve_args(&self) -> Vec<String> {
        let p = |n: &str| self.path(n).to_string_lossy().into_owned();
        vec![
            "--tls-cert".into(),
            p("server.pem"),
            "--tls-key".into(),
            p("server.key"),
            "--client-ca".into(),
            p("ca.pem"),
        ]
    }

    /// curl `GET url` trusting `ca.pem` for the server, presenting `client` (`"client"`, `"rogue"`: NAME.pem and
    /// NAME.key) if given, and `token` as a bearer token if given. The raw output: curl may fail (a refused
    /// handshake); parse a success with `common::daemon::parse`.
    pub fn curl(&self, url: &str, client: Option<&str>, token: Option<&str>) -> Output {
        let mut c = Command::new("curl");
        c.args(["-s", "-S", "-i", "--max-time", "20", "--cacert"]).arg(self.path("ca.pem"));
        if let Some(name) = client {
            c.arg("--cert").arg(self.path(&format!("{name}.pem")));
            c.arg("--key").arg(self.path(&format!("{name}.key")));
        }
        if let Some(t) = token {
            c.arg("-H").arg(format!("Authorization: Bearer {t}"));
        }
        c.arg(url).output().expect("curl runs")
    }
}

/// The daemon's metrics, over its Unix socket (as the auditor).
pub fn metrics(d: &Daemon) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "20", "--unix-socket"])
        .arg(&d.socket)
        .args(["-H", &format!("Authorization: Bearer {}", d.tokens["aud"])])
        .arg("http://airlock/metrics")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until the metrics show `line`; fails after 20 s. A handshake is counted in its own task, just after the
/// client saw its outcome (a refusal is audited before it is counted, so its record is then in the log).
pub fn wait_for_metric(d: &Daemon, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = metrics(d);
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "metrics never showed {line:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
