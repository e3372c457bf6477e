//! Helpers shared by the vault's integration and security tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use airlock_crypto::kdf::Argon2Params;
use airlock_crypto::{KekInputs, KekSpec, SecretBytes};
use airlock_vault::{InitOptions, NewSecret, SecretId, Vault, VaultError};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub keyfile: PathBuf,
}

impl Fixture {
    /// A vault unlocked by a key file, so tests don't pay for Argon2id.
    pub fn new() -> (Fixture, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let keyfile = dir.path().join("kek");
        let v =
            Vault::init(&home, &[KekSpec::Keyfile(keyfile.clone())], &InitOptions::default(), &mut KekInputs::none())
                .unwrap();
        (Fixture { dir, home, keyfile }, v)
    }

    pub fn vault_path(&self) -> PathBuf {
        Vault::file_path(&self.home)
    }

    pub fn reopen(&self) -> Result<Vault, VaultError> {
        let mut v = Vault::open(&self.home)?;
        v.unlock(&mut KekInputs::none(), None)?;
        Ok(v)
    }
}

pub fn fast_argon2() -> Argon2Params {
    Argon2Params { m_kib: 1024, t: 1, p: 1 }
}

pub fn id(name: &str) -> SecretId {
    SecretId::new("default", name).unwrap()
}

pub fn set(v: &mut Vault, name: &str, value: &[u8]) {
    v.set(
        &id(name),
        NewSecret { hosts: vec!["api.example.com".into()], ..Default::default() },
        SecretBytes::copy_from(value),
    )
    .unwrap();
}

/// The three parts of a vault file: magic line, JSON body, trailer.
pub fn split(bytes: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let text = bytes.to_vec();
    let first = text.iter().position(|b| *b == b'\n').unwrap();
    let last = text[..text.len() - 1].iter().rposition(|b| *b == b'\n').unwrap();
    (text[..first].to_vec(), text[first + 1..last].to_vec(), text[last + 1..].to_vec())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Edits the JSON body as an attacker with write access (but no key) would, fixing the unkeyed checksum so the
/// damage check passes and only the keyed checks remain.
pub fn tamper_body(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let (magic, body, trailer) = split(&bytes);
    let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    edit(&mut v);
    let new_body = serde_json::to_vec(&v).unwrap();
    let trailer = String::from_utf8(trailer).unwrap();
    let hmac = trailer.trim_end().split_once(" hmac=").unwrap().1.to_string();
    let mut out = magic;
    out.push(b'\n');
    out.extend_from_slice(&new_body);
    out.push(b'\n');
    out.extend_from_slice(format!("sha256={} hmac={hmac}\n", hex(&airlock_crypto::kdf::sha256(&new_body))).as_bytes());
    std::fs::write(path, out).unwrap();
}

pub fn write_raw(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
