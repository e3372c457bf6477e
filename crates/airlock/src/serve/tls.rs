//! Mutual TLS for `airlock serve --listen`: the only way the API leaves loopback.
//!
//! # Why
//! Whoever reaches the API can try every agent's token. On loopback that is the machine's own users; on any other
//! address it is the network. So a non-loopback `--listen` is refused unless the daemon can tell its callers apart
//! before they send a byte of HTTP: `--tls-cert`, `--tls-key` and `--client-ca` together turn on HTTPS with
//! client certificates, and then any address may be bound (loopback included).
//!
//! # Shape
//! - rustls 0.23 with the ring provider, chosen explicitly per config (as the broker does; no process-wide default
//!   is installed). Protocol versions are rustls's safe defaults (TLS 1.3 and 1.2); ALPN offers `http/1.1` only.
//! - Every client must present a certificate that chains to `--client-ca` ([`WebPkiClientVerifier`], anonymous
//!   clients refused). The bearer token is still required on top: a certificate says which machine is calling, the
//!   token which agent, and a leaked one alone is not enough.
//! - The handshake runs in the connection's own task, under [`HANDSHAKE`], so a slow or silent client holds one
//!   task for at most that long and never the accept loop.
//! - Handshakes are counted in `airlock_api_tls_handshakes_total{outcome}`. A peer that spoke TLS and was refused
//!   (no certificate, an untrusted one, a protocol error) or that timed out is also audited, under the same
//!   rate limit as requests without a valid token (beyond it, counted and summed into the next audited refusal). A
//!   connection closed before the handshake finished (port scans, health checks) is only counted.
//! - Requests on a verified connection carry `tls ADDR cert CN="..." sha256:HEX` as their peer (the certificate's
//!   subject common name, if any, and the SHA-256 of its DER: `openssl x509 -noout -fingerprint -sha256`).
//! - Bad files stop the daemon before it unlocks anything or prints its ready line: a missing file exits 4,
//!   anything else wrong with one (not PEM, no certificate or key in it, a key that is not the certificate's, an
//!   unusable CA, a key file others may read) exits 8. Errors never quote a key file's contents.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use super::{Daemon, now_ms};
use crate::CliError;

/// How long a client has to complete the TLS handshake.
pub(crate) const HANDSHAKE: Duration = Duration::from_secs(10);
/// Largest certificate or CA file read (a chain of a few certificates is a few KiB).
const MAX_CERT_FILE: u64 = 1 << 20;
/// Largest private key file read.
const MAX_KEY_FILE: u64 = 64 << 10;

/// Checks the TLS flags and `--listen` together and, when mutual TLS is asked for, loads it: `None` means plain HTTP
/// (loopback only) or no TCP listener at all.
pub(crate) fn configure(
    listen: Option<SocketAddr>,
    cert: Option<&Path>,
    key: Option<&Path>,
    client_ca: Option<&Path>,
) -> Result<Option<TlsAcceptor>, CliError> {
    let given = [("--tls-cert", cert), ("--tls-key", key), ("--client-ca", client_ca)];
    let missing: Vec<&str> = given.iter().filter(|(_, p)| p.is_none()).map(|(f, _)| *f).collect();
    let files = match (cert, key, client_ca) {
        (Some(c), Some(k), Some(ca)) => Some((c, k, ca)),
        _ if missing.len() == given.len() => None,
        _ => {
            return Err(CliError::usage(format!(
                "mutual TLS needs --tls-cert, --tls-key and --client-ca together; missing: {}",
                missing.join(", ")
            )));
        }
    };
    let Some(addr) = listen else {
        return match files {
            Some(_) => Err(CliError::usage(
                "--tls-cert, --tls-key and --client-ca secure the TCP listener: give --listen ADDR:PORT too".into(),
            )),
            None => Ok(None),
        };
    };
    check_listen(addr, files.is_some())?;
    match files {
        Some((c, k, ca)) => Ok(Some(TlsAcceptor::from(server_config(c, k, ca)?))),
        None => Ok(None),
    }
}

/// Which addresses may be bound: loopback always; anything else only with mutual TLS.
pub(crate) fn check_listen(addr: SocketAddr, mutual_tls: bool) -> Result<(), CliError> {
    if mutual_tls || addr.ip().is_loopback() {
        return Ok(());
    }
    Err(CliError::usage(format!(
        "refusing to listen on {addr}: without mutual TLS the API serves loopback and its Unix socket only (whoever \
         reaches it can try every agent's token); to serve other addresses, give --tls-cert, --tls-key and \
         --client-ca (docs/daemon.md, \"Remote access with mutual TLS\")"
    )))
}

/// The server's TLS configuration: its chain and key, and the CAs that client certificates must chain to.
pub(crate) fn server_config(cert: &Path, key: &Path, client_ca: &Path) -> Result<Arc<rustls::ServerConfig>, CliError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(cert, "--tls-cert")?;
    let key_der = private_key(key)?;
    let verifier = client_verifier(client_ca, &provider)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError { code: 1, message: format!("TLS: {e}") })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => {
                    "the key is not the certificate's (the first certificate in --tls-cert must be the one the key \
                     signs for)"
                        .to_string()
                }
                rustls::Error::General(_) => "the key is of a type or size this daemon cannot use".to_string(),
                other => other.to_string(),
            };
            CliError::input(format!("--tls-key {} with --tls-cert {}: {why}", key.display(), cert.display()))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads a file of certificates (not secret), refusing what is not a regular file or too large.
fn read_public(path: &Path, flag: &str) -> Result<Vec<u8>, CliError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = format!("{flag} {}", path.display());
    // O_NONBLOCK: opening a FIFO must not hang startup; the opened file is then checked to be a regular file.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|e| open_error(&shown, &e))?;
    let meta = f.metadata().map_err(|e| CliError::input(format!("{shown}: {e}")))?;
    if !meta.is_file() {
        return Err(CliError::input(format!("{shown}: not a regular file")));
    }
    if meta.len() > MAX_CERT_FILE {
        return Err(CliError::input(format!("{shown}: {} bytes, too large for a certificate file", meta.len())));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.by_ref().take(MAX_CERT_FILE).read_to_end(&mut buf).map_err(|e| CliError::input(format!("{shown}: {e}")))?;
    Ok(buf)
}

fn open_error(shown: &str, e: &std::io::Error) -> CliError {
    match e.kind() {
        std::io::ErrorKind::NotFound => CliError { code: 4, message: format!("{shown}: no such file") },
        _ => CliError::input(format!("{shown}: cannot open: {e}")),
    }
}

/// Every certificate in a PEM file, in order; at least one.
fn certificates(path: &Path, flag: &str) -> Result<Vec<CertificateDer<'static>>, CliError> {
    let pem = read_public(path, flag)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::input(format!("{flag} {}: not a valid PEM file: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(CliError::input(format!(
            "{flag} {}: no certificate in it (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

/// The private key: a file only its owner may read (as for key files and passphrase files), holding one PEM key.
/// Parse errors are described, never quoted: the file is key material.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CliError> {
    let shown = format!("--tls-key {}", path.display());
    if let Err(e) = std::fs::symlink_metadata(path) {
        return Err(open_error(&shown, &e));
    }
    let raw = airlock_crypto::kek::read_private_file(path, MAX_KEY_FILE).map_err(|e| {
        let e = match e {
            airlock_crypto::CryptoError::KeyfileInsecure { mode, .. } => {
                format!("mode {mode:04o} lets others read it (chmod 600, or 400)")
            }
            airlock_crypto::CryptoError::Keyfile { reason, .. } => reason,
            other => other.to_string(),
        };
        CliError::input(format!("{shown}: {e}"))
    })?;
    PrivateKeyDer::from_pem_slice(raw.expose()).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in it (expected PEM: -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE \
                 KEY; an ENCRYPTED PRIVATE KEY must be decrypted first: openssl pkey -in KEY -out PLAIN)"
            }
            _ => "not a valid PEM file",
        };
        CliError::input(format!("{shown}: {why}"))
    })
}

/// Client certificates must chain to one of these CAs; a client without a certificate is refused.
fn client_verifier(
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, CliError> {
    let mut roots = rustls::RootCertStore::empty();
    for (i, ca) in certificates(path, "--client-ca")?.into_iter().enumerate() {
        roots.add(ca).map_err(|e| {
            CliError::input(format!("--client-ca {}: certificate {} is not usable as a CA: {e}", path.display(), i + 1))
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| CliError::input(format!("--client-ca {}: {e}", path.display())))
}

/// Completes the handshake with a client that connected to the TCP listener, in a task of its own, then serves it
/// (or refuses it: counted, and audited when the peer spoke TLS).
pub(super) fn accept(daemon: Arc<Daemon>, acceptor: TlsAcceptor, stream: tokio::net::TcpStream, addr: SocketAddr) {
    tokio::spawn(async move {
        match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                daemon.metrics.tls_handshake("ok");
                let peer = peer_name(addr, tls.get_ref().1.peer_certificates().and_then(|c| c.first()));
                super::spawn_connection(daemon, tls, peer);
            }
            // Audited before counted: once the metric shows a refusal, its record is in the log.
            Ok(Err(e)) => {
                let (outcome, why) = classify(&e);
                if outcome != "closed" {
                    refused(&daemon, addr, &why);
                }
                daemon.metrics.tls_handshake(outcome);
            }
            Err(_) => {
                refused(&daemon, addr, &format!("no TLS handshake within {} s", HANDSHAKE.as_secs()));
                daemon.metrics.tls_handshake("timeout");
            }
        }
    });
}

/// What became of a failed handshake: the metric's outcome, and a reason for the audit log.
fn classify(e: &std::io::Error) -> (&'static str, String) {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::NoCertificatesPresented) => ("no-certificate", "no client certificate".into()),
        Some(e @ rustls::Error::InvalidCertificate(_)) => ("bad-certificate", format!("client certificate: {e}")),
        Some(e) => ("protocol", format!("TLS: {e}")),
        None => ("closed", e.to_string()),
    }
}

/// Audits a refused handshake, sharing the limit of refused requests without a valid token (anyone who can reach
/// the port can knock; the log must not be floodable).
fn refused(daemon: &Daemon, addr: SocketAddr, why: &str) {
    use std::sync::atomic::Ordering;
    if daemon.anon_limiter.check().is_err() {
        daemon.unrecorded.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let skipped = daemon.unrecorded.swap(0, Ordering::SeqCst);
    let also = if skipped > 0 { format!("; {skipped} more refused, unrecorded, before this") } else { String::new() };
    let event = airlock_audit::Event::request(
        now_ms(),
        "unauthenticated",
        None,
        airlock_audit::event::Decision::Deny,
        &["api-client-certificate"],
    )
    .message(format!("API connection refused: TLS handshake failed: {why} (from tcp {addr}){also}"))
    .status(false);
    // The refusal stands whether or not it could be recorded.
    let _ = airlock_audit::Append::append(&*daemon.log, event);
}

/// The peer of a verified connection, for the audit log: address, subject common name and SHA-256 fingerprint.
fn peer_name(addr: SocketAddr, cert: Option<&CertificateDer<'_>>) -> String {
    let Some(cert) = cert else { return format!("tls {addr}") };
    let fingerprint = hex::encode(airlock_crypto::kdf::sha256(cert.as_ref()));
    match subject_common_name(cert.as_ref()) {
        Some(cn) => format!("tls {addr} cert CN=\"{cn}\" sha256:{fingerprint}"),
        None => format!("tls {addr} cert sha256:{fingerprint}"),
    }
}

/// One DER element: its tag, its contents, and what follows it. Single-byte tags and definite lengths (DER) only.
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            if rest.len() < n {
                return None;
            }
            let (bytes, rest) = rest.split_at(n);
            (bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b)), rest)
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

/// The first common name in a certificate's subject, as printable ASCII (other characters become `?`, at most 64).
/// Only called on certificates the verifier accepted: it reads what the operator's CA signed.
fn subject_common_name(cert: &[u8]) -> Option<String> {
    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03]; // 2.5.4.3
    let (SEQUENCE, certificate, _) = der(cert)? else { return None };
    let (SEQUENCE, tbs, _) = der(certificate)? else { return None };
    let mut rest = tbs;
    // [0] version (optional), serial, signature algorithm, issuer, validity; then the subject.
    if rest.first() == Some(&0xa0) {
        rest = der(rest)?.2;
    }
    for _ in 0..4 {
        rest = der(rest)?.2;
    }
    let (SEQUENCE, mut names, _) = der(rest)? else { return None };
    while !names.is_empty() {
        let (SET, mut set, next) = der(names)? else { return None };
        names = next;
        while !set.is_empty() {
            let (SEQUENCE, pair, after) = der(set)? else { return None };
            set = after;
            let (0x06, oid, value) = der(pair)? else { return None };
            if oid != COMMON_NAME {
                continue;
            }
            // UTF8String, PrintableString, IA5String.
            let (0x0c | 0x13 | 0x16, text, _) = der(value)? else { return None };
            let text = String::from_utf8_lossy(text);
            return Some(
                text.chars()
                    .take(64)
                    .map(|c| if (c.is_ascii_graphic() && c != '"') || c == ' ' { c } else { '?' })
                    .collect(),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

    fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(params, key))
    }

    fn leaf(cn: &str, issuer: &Issuer<'static, KeyPair>) -> (rcgen::Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()]).unwrap();
        params.distinguished_name.push(DnType::OrganizationName, "Airlock tests");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        (params.signed_by(&key, issuer).unwrap(), key)
    }

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Files {
            let dir = tempfile::tempdir().unwrap();
            let (ca_pem, issuer) = ca("test CA");
            let (cert, key) = leaf("server", &issuer);
            let f = Files { dir };
            f.write("ca.pem", &ca_pem, 0o644);
            f.write("cert.pem", &cert.pem(), 0o644);
            f.write("key.pem", &key.serialize_pem(), 0o600);
            f
        }
        fn path(&self, name: &str) -> std::path::PathBuf {
            self.dir.path().join(name)
        }
        fn write(&self, name: &str, text: &str, mode: u32) {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(self.path(name), text).unwrap();
            std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        fn configure(&self, listen: &str, cert: &str, key: &str, ca: &str) -> Result<Option<TlsAcceptor>, CliError> {
            let (c, k, a) = (self.path(cert), self.path(key), self.path(ca));
            configure(Some(listen.parse().unwrap()), Some(&c), Some(&k), Some(&a))
        }
    }

    fn err(r: Result<Option<TlsAcceptor>, CliError>) -> CliError {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        }
    }

    #[test]
    fn non_loopback_addresses_need_mutual_tls() {
        for addr in ["0.0.0.0:7878", "192.0.2.10:7878", "[::]:7878", "[2001:db8::1]:443"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let e = check_listen(addr, false).unwrap_err();
            assert_eq!(e.code, 2, "{addr}");
            assert!(e.message.contains("--tls-cert, --tls-key and --client-ca"), "{}", e.message);
            assert!(check_listen(addr, true).is_ok(), "{addr} with mutual TLS");
        }
        for addr in ["127.0.0.1:0", "127.8.9.10:7878", "[::1]:7878"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert!(check_listen(addr, false).is_ok(), "{addr}");
            assert!(check_listen(addr, true).is_ok(), "{addr}");
        }
    }

    #[test]
    fn plain_http_stays_on_loopback_and_tls_flags_come_as_a_set() {
        assert!(configure(None, None, None, None).unwrap().is_none());
        assert!(configure(Some("127.0.0.1:0".parse().unwrap()), None, None, None).unwrap().is_none());
        assert_eq!(err(configure(Some("0.0.0.0:0".parse().unwrap()), None, None, None)).code, 2);
        let p = Path::new("/nonexistent");
        let e = err(configure(Some("127.0.0.1:0".parse().unwrap()), Some(p), None, None));
        assert_eq!(e.code, 2);
        assert!(e.message.ends_with("missing: --tls-key, --client-ca"), "{}", e.message);
        let e = err(configure(Some("127.0.0.1:0".parse().unwrap()), None, Some(p), Some(p)));
        assert!(e.message.ends_with("missing: --tls-cert"), "{}", e.message);
        let e = err(configure(None, Some(p), Some(p), Some(p)));
        assert_eq!(e.code, 2);
        assert!(e.message.contains("--listen"), "{}", e.message);
    }

    #[test]
    fn good_files_enable_mutual_tls_on_any_address() {
        let f = Files::new();
        assert!(f.configure("0.0.0.0:0", "cert.pem", "key.pem", "ca.pem").unwrap().is_some());
        assert!(f.configure("127.0.0.1:0", "cert.pem", "key.pem", "ca.pem").unwrap().is_some());
        // A read-only key is fine too.
        f.write("ro.pem", &std::fs::read_to_string(f.path("key.pem")).unwrap(), 0o400);
        assert!(f.configure("127.0.0.1:0", "cert.pem", "ro.pem", "ca.pem").unwrap().is_some());
    }

    #[test]
    fn bad_files_are_refused_with_clear_errors() {
        let f = Files::new();
        let key_text = std::fs::read_to_string(f.path("key.pem")).unwrap();
        let key_body: String = key_text.lines().nth(1).unwrap().to_string();

        let e = err(f.configure("127.0.0.1:0", "missing.pem", "key.pem", "ca.pem"));
        assert_eq!((e.code, e.message.contains("--tls-cert") && e.message.contains("no such file")), (4, true));
        let e = err(f.configure("127.0.0.1:0", "cert.pem", "missing.pem", "ca.pem"));
        assert_eq!((e.code, e.message.contains("--tls-key")), (4, true), "{}", e.message);
        let e = err(f.configure("127.0.0.1:0", "cert.pem", "key.pem", "missing.pem"));
        assert_eq!((e.code, e.message.contains("--client-ca")), (4, true), "{}", e.message);

        // Not PEM; the key's contents never appear in the message.
        f.write("junk.pem", "this is not a key\n", 0o600);
        let e = err(f.configure("127.0.0.1:0", "cert.pem", "junk.pem", "ca.pem"));
        assert_eq!(e.code, 8);
        assert!(e.message.contains("no private key"), "{}", e.message);
        f.write("broken.pem", &key_text.replace(&key_body, &format!("{key_body}!!")), 0o600);
        let e = err(f.configure("127.0.0.1:0", "cert.pem", "broken.pem", "ca.pem"));
        assert_eq!(e.code, 8);
        assert!(!e.message.contains(&key_body[..20]), "{}", e.message);
        let e = err(f.configure("127.0.0.1:0", "junk.pem", "key.pem", "ca.pem"));
        assert_eq!((e.code, e.message.contains("no certificate")), (8, true), "{}", e.message);
        // The certificate given as the key, and the key as the certificate.
        f.write("cert-as-key.pem", &std::fs::read_to_string(f.path("cert.pem")).unwrap(), 0o600);
        assert_eq!(err(f.configure("127.0.0.1:0", "cert.pem", "cert-as-key.pem", "ca.pem")).code, 8);
        let e = err(f.configure("127.0.0.1:0", "key.pem", "key.pem", "ca.pem"));
        assert_eq!(e.code, 8);
        assert!(!e.message.contains(&key_body[..20]), "{}", e.message);

        // A key that is not the certificate's.
        let (_, issuer) = ca("other CA");
        let (_, other_key) = leaf("server", &issuer);
        f.write("other-key.pem", &other_key.serialize_pem(), 0o600);
        let e = err(f.configure("127.0.0.1:0", "cert.pem", "other-key.pem", "ca.pem"));
        assert_eq!(e.code, 8);
        assert!(e.message.contains("the key is not the certificate's"), "{}", e.message);

        // A key others may read.
        f.write("open-key.pem", &key_text, 0o644);
        let e = err(f.configure("127.0.0.1:0", "cert.pem", "open-key.pem", "ca.pem"));
        assert_eq!((e.code, e.message.contains("chmod 600")), (8, true), "{}", e.message);

        // A directory, and an empty CA file.
        let e = err(f.configure("127.0.0.1:0", "cert.pem", "key.pem", "."));
        assert_eq!(e.code, 8, "{}", e.message);
        f.write("empty.pem", "", 0o644);
        assert_eq!(err(f.configure("127.0.0.1:0", "cert.pem", "key.pem", "empty.pem")).code, 8);
    }

    #[test]
    fn the_peer_names_the_certificate() {
        let (_, issuer) = ca("test CA");
        let (cert, _) = leaf("ci-runner \"7\"\n", &issuer);
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let peer = peer_name(addr, Some(cert.der()));
        let fingerprint = hex::encode(airlock_crypto::kdf::sha256(cert.der()));
        assert_eq!(peer, format!("tls 127.0.0.1:5000 cert CN=\"ci-runner ?7??\" sha256:{fingerprint}"));
        assert_eq!(peer_name(addr, None), "tls 127.0.0.1:5000");

        // No common name: the fingerprint alone.
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "no name");
        let anonymous = params.signed_by(&key, &issuer).unwrap();
        assert!(subject_common_name(anonymous.der()).is_none());
        assert!(peer_name(addr, Some(anonymous.der())).starts_with("tls 127.0.0.1:5000 cert sha256:"));

        // Truncated or garbled DER is no name, not a panic.
        let der = cert.der().as_ref();
        for cut in 0..der.len() {
            let _ = subject_common_name(&der[..cut]);
        }
        assert!(subject_common_name(b"\x30\x84\xff\xff\xff\xff").is_none());
    }
}
