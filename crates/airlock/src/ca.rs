//! The broker's local CA on disk, and `airlock ca`.
//!
//! Why these files: tools in a sandbox must trust the CA that signs the certificates of intercepted hosts, so its
//! certificate is a plain file anyone may read. Its private key is the most dangerous thing Airlock writes (whoever
//! holds it can impersonate any site to every client that trusts the CA), so it is stored sealed with an AEAD key
//! derived from the vault (`labels::BROKER_CA_KEY`): the key is usable only by someone who can unlock the vault, as
//! the design asks ("its key in the vault"), without appearing among the user's secrets. The seal binds the vault id
//! and the certificate, so a key file copied from another install, or a certificate swapped next to it, is refused.
//!
//! Layout under `$AIRLOCK_HOME/ca/`:
//! - `cert.pem`: the CA certificate (what `NODE_EXTRA_CA_CERTS` wants);
//! - `bundle.pem`: the CA followed by the system roots (what `SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`
//!   and `GIT_SSL_CAINFO` want: they replace the system roots rather than add to them);
//! - `key.sealed`: the sealed PKCS#8 key (mode 0600).
//!
//! The CA is made at `airlock init` (or on first use), is valid for a year and is replaced when less than 30 days
//! remain.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use airlock_broker::ca::LocalCa;
use airlock_crypto::kdf::{self, labels};
use airlock_crypto::{Aad, Cipher, aead};
use airlock_vault::Vault;
use serde::Serialize;

use crate::CliError;
use crate::cli::CaCommand;
use crate::commands::Ctx;

const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Where the system's trusted roots usually are (Debian/Ubuntu, Fedora/RHEL, Alpine/macOS-style).
const SYSTEM_BUNDLES: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// The CA's files.
#[derive(Debug, Clone, Serialize)]
pub struct CaFiles {
    pub cert: PathBuf,
    pub bundle: PathBuf,
    pub key: PathBuf,
}

pub fn files(home: &Path) -> CaFiles {
    let dir = home.join("ca");
    CaFiles { cert: dir.join("cert.pem"), bundle: dir.join("bundle.pem"), key: dir.join("key.sealed") }
}

/// The sealed key's associated data: this vault, this certificate.
fn seal_context(vault: &Vault, cert_pem: &str) -> Aad {
    Aad::new("airlock/broker/ca-key/v1").str(vault.vault_id()).bytes(&kdf::sha256(cert_pem.as_bytes()))
}

/// Loads the CA, or makes one when there is none or it is about to expire. Fails closed on a key that does not
/// open (tampered, or from another vault): it is never silently replaced, since tools may trust the old one.
pub fn load_or_create(home: &Path, vault: &mut Vault) -> Result<LocalCa, CliError> {
    let f = files(home);
    let key = vault.subkey(labels::BROKER_CA_KEY)?;
    if f.cert.exists() || f.key.exists() {
        let cert_pem = std::fs::read_to_string(&f.cert)
            .map_err(|e| CliError::input(format!("local CA certificate {}: {e}", f.cert.display())))?;
        let sealed =
            std::fs::read(&f.key).map_err(|e| CliError::input(format!("local CA key {}: {e}", f.key.display())))?;
        let key_pem = aead::open(&key, &seal_context(vault, &cert_pem), &sealed).map_err(|_| {
            CliError::input(format!(
                "the local CA key {} does not open with this vault, or its certificate was changed; remove {} to \
                 make a new CA (tools that trusted the old one must then trust the new one)",
                f.key.display(),
                f.cert.parent().unwrap_or(home).display()
            ))
        })?;
        let key_pem = std::str::from_utf8(key_pem.expose())
            .map_err(|_| CliError::input(format!("local CA key {}: not PEM", f.key.display())))?;
        match LocalCa::from_pem(&cert_pem, key_pem) {
            Ok(ca) if ca.not_after() > SystemTime::now() + RENEW_BEFORE => {
                write_bundle(&f, &cert_pem)?;
                return Ok(ca);
            }
            Ok(_) => eprintln!("airlock: the local CA expires within 30 days; making a new one"),
            Err(e) if e.to_string().contains("validity") => {
                eprintln!("airlock: the local CA is outside its validity period ({e}); making a new one")
            }
            Err(e) => return Err(CliError::input(format!("local CA {}: {e}", f.cert.display()))),
        }
    }
    let install: String =
        vault.vault_id().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(36).collect();
    let ca = LocalCa::generate(if install.is_empty() { "airlock" } else { &install }, VALIDITY, None)
        .map_err(|e| CliError::input(format!("make the local CA: {e}")))?;
    let dir = f.cert.parent().unwrap_or(home);
    std::fs::create_dir_all(dir).map_err(|e| CliError::input(format!("{}: {e}", dir.display())))?;
    let sealed =
        aead::seal(Cipher::XChaCha20Poly1305, &key, 0, &seal_context(vault, ca.cert_pem()), ca.key_pem().as_bytes());
    // Key first: a crash between the two writes leaves a key that does not open with the old certificate, which the
    // next start reports instead of serving with a mismatched pair.
    write_atomic(&f.key, &sealed, 0o600)?;
    write_atomic(&f.cert, ca.cert_pem().as_bytes(), 0o644)?;
    write_bundle(&f, ca.cert_pem())?;
    Ok(ca)
}

/// `bundle.pem`: the CA first, then the system roots, rewritten only when it would change.
fn write_bundle(f: &CaFiles, cert_pem: &str) -> Result<(), CliError> {
    let mut bundle = cert_pem.trim_end().to_string();
    bundle.push('\n');
    if let Some(system) = SYSTEM_BUNDLES.iter().find_map(|p| std::fs::read_to_string(p).ok()) {
        bundle.push_str(&system);
    }
    if std::fs::read_to_string(&f.bundle).ok().as_deref() == Some(bundle.as_str()) {
        return Ok(());
    }
    write_atomic(&f.bundle, bundle.as_bytes(), 0o644)
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| CliError::input(format!("{}: {e}", path.display()));
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).map_err(err)?;
    let written = file.write_all(bytes).and_then(|_| file.sync_all());
    drop(file);
    if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

/// The environment a client needs to trust intercepted hosts.
pub fn env_lines(f: &CaFiles) -> Vec<(String, String)> {
    let bundle = f.bundle.display().to_string();
    let mut lines: Vec<(String, String)> = ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"]
        .iter()
        .map(|k| (k.to_string(), bundle.clone()))
        .collect();
    lines.push(("NODE_EXTRA_CA_CERTS".into(), f.cert.display().to_string()));
    lines
}

#[derive(Serialize)]
struct Shown {
    files: CaFiles,
    fingerprint_sha256: String,
    not_after: u64,
}

pub fn run(ctx: &Ctx, c: CaCommand) -> Result<(), CliError> {
    let mut vault = ctx.open_unlocked()?;
    let ca = load_or_create(&ctx.home, &mut vault)?;
    drop(vault);
    let f = files(&ctx.home);
    match c {
        CaCommand::Path { cert } => {
            let p = if cert { &f.cert } else { &f.bundle };
            ctx.print(&serde_json::json!({ "path": p }), || format!("{}\n", p.display()));
        }
        CaCommand::Show => {
            let not_after = ca.not_after().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let shown = Shown { files: f.clone(), fingerprint_sha256: ca.fingerprint(), not_after };
            ctx.print(&shown, || {
                let mut s = format!("Local CA (SHA-256 {})\n", shown.fingerprint_sha256);
                s += &format!("  expires:     {} (unix time)\n", shown.not_after);
                s += &format!("  certificate: {}\n", f.cert.display());
                s += &format!("  bundle:      {} (the CA plus the system roots)\n", f.bundle.display());
                s += &format!("  sealed key:  {}\n", f.key.display());
                s += "Clients trust it through:\n";
                for (k, v) in env_lines(&f) {
                    s += &format!("  {k}={v}\n");
                }
                s
            });
        }
    }
    Ok(())
}
