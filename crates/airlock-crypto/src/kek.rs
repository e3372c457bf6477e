//! Key-encryption-key (KEK) slots: the ways a vault can be unlocked.
//!
//! Why slots (as in LUKS): one vault may need to open from a passphrase on a laptop, from the OS keyring in a
//! desktop session, and from a key file or an environment variable in CI. Each slot wraps the same random *root
//! key* under its own KEK; any one slot unlocks the vault, and removing a slot (by rekeying) revokes it.
//!
//! | slot | KEK | checked before use |
//! |---|---|---|
//! | `passphrase` | Argon2id(passphrase, salt, params from the header) | params bounded, so a tampered header cannot exhaust memory |
//! | `keyfile:PATH` | HKDF(file bytes, salt) | regular file, not readable or writable by group/other, 32 bytes to 64 KiB |
//! | `env:VAR` | HKDF(base64-decoded 32 bytes, salt) | exactly 32 bytes after decoding |
//! | `keyring` | HKDF(32 random bytes kept in the OS keyring, salt) | entry exists and is 32 bytes |
//!
//! The wrapped root key is an AEAD envelope bound to (vault id, slot id, slot type), so a slot copied from
//! another vault, or relabelled as another type, does not open.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::aead::{self, Aad, Cipher};
use crate::kdf::{self, Argon2Params, labels};
use crate::{CryptoError, Key32, SecretBytes, ct_eq, random};

/// The OS keyring service name under which Airlock keeps KEKs.
pub const OS_KEYRING_SERVICE: &str = "airlock";

const KEYFILE_MIN: u64 = 32;
const KEYFILE_MAX: u64 = 64 * 1024;

/// What the user asks for when creating a slot (`--kek passphrase|keyring|keyfile:PATH|env:VAR`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KekSpec {
    Passphrase,
    OsKeyring,
    Keyfile(PathBuf),
    Env(String),
}

impl std::str::FromStr for KekSpec {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "passphrase" => Ok(KekSpec::Passphrase),
            "keyring" | "os-keyring" => Ok(KekSpec::OsKeyring),
            _ => {
                if let Some(p) = s.strip_prefix("keyfile:").filter(|p| !p.is_empty()) {
                    Ok(KekSpec::Keyfile(PathBuf::from(p)))
                } else if let Some(v) = s.strip_prefix("env:").filter(|v| valid_env_name(v)) {
                    Ok(KekSpec::Env(v.to_string()))
                } else {
                    Err(CryptoError::BadKekSpec)
                }
            }
        }
    }
}

/// Conventional environment variable names only (`AIRLOCK_KEK`): upper case, digits, `_`. Besides matching
/// POSIX practice, this keeps a token pasted as `env:$TOKEN` out (most tokens have lower case), so it is never
/// echoed back in an "is not set" error.
fn valid_env_name(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && !v.as_bytes()[0].is_ascii_digit()
}

/// Where a slot's KEK comes from, as stored in the vault header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum KekSource {
    Passphrase { argon2: Argon2Params },
    Keyfile { path: PathBuf },
    Env { var: String },
    OsKeyring { service: String, user: String },
}

impl KekSource {
    /// Short type name, as used on the command line and in the slot's AAD.
    pub fn kind(&self) -> &'static str {
        match self {
            KekSource::Passphrase { .. } => "passphrase",
            KekSource::Keyfile { .. } => "keyfile",
            KekSource::Env { .. } => "env",
            KekSource::OsKeyring { .. } => "keyring",
        }
    }

    /// Human description without anything secret, e.g. `keyfile /home/me/.airlock.key`.
    pub fn describe(&self) -> String {
        match self {
            KekSource::Passphrase { argon2 } => {
                format!("passphrase (argon2id m={} MiB t={} p={})", argon2.m_kib / 1024, argon2.t, argon2.p)
            }
            KekSource::Keyfile { path } => format!("keyfile {}", path.display()),
            KekSource::Env { var } => format!("env ${var}"),
            KekSource::OsKeyring { service, user } => format!("OS keyring {service}/{user}"),
        }
    }
}

/// One way to unlock a vault: a KEK source and the root key wrapped under that KEK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KekSlot {
    pub id: u32,
    pub source: KekSource,
    /// Unix seconds.
    pub created: u64,
    salt: String,
    /// Key commitment: HMAC of the slot's context under a key derived from the KEK (see [`commitment`]).
    commit: String,
    wrapped: String,
}

/// What creating or unlocking a slot may need from the caller.
pub struct KekInputs<'a> {
    /// Asked for a passphrase when a passphrase slot is tried. `None` means no passphrase is available.
    pub passphrase: Option<&'a mut dyn FnMut() -> Result<SecretBytes, CryptoError>>,
    /// Overrides the key file path recorded in a `keyfile` slot (the file moved).
    pub keyfile_override: Option<PathBuf>,
}

impl KekInputs<'_> {
    /// No passphrase, no overrides: only non-interactive slots can open.
    pub fn none() -> KekInputs<'static> {
        KekInputs { passphrase: None, keyfile_override: None }
    }
}

/// Parameters for [`KekSlot::create`].
pub struct SlotParams<'v> {
    pub id: u32,
    pub vault_id: &'v str,
    pub cipher: Cipher,
    pub argon2: Argon2Params,
}

impl KekSlot {
    /// Creates a slot of type `spec` that wraps `root`. May create a key file (0600) or an OS keyring entry.
    pub fn create(
        spec: &KekSpec,
        p: &SlotParams<'_>,
        root: &Key32,
        inputs: &mut KekInputs<'_>,
    ) -> Result<Self, CryptoError> {
        let salt = random::bytes::<16>();
        let (source, kek) = match spec {
            KekSpec::Passphrase => {
                let ask = inputs.passphrase.as_mut().ok_or(CryptoError::PassphraseUnavailable)?;
                let pass = ask()?;
                if pass.is_empty() {
                    return Err(CryptoError::EmptyPassphrase);
                }
                (KekSource::Passphrase { argon2: p.argon2 }, kdf::argon2id(pass.expose(), &salt, p.argon2)?)
            }
            KekSpec::Keyfile(path) => {
                let path = std::path::absolute(path)
                    .map_err(|e| CryptoError::Keyfile { path: path.clone(), reason: e.to_string() })?;
                if path.to_str().is_none() {
                    // The path is stored in the (JSON) vault header, which holds text only.
                    return Err(CryptoError::Keyfile { path, reason: "the path must be valid UTF-8".into() });
                }
                if !path.exists() {
                    create_keyfile(&path)?;
                }
                let ikm = read_keyfile(&path)?;
                let kek = kdf::hkdf_sha256(ikm.expose(), &salt, labels::KEK_KEYFILE);
                (KekSource::Keyfile { path }, kek)
            }
            KekSpec::Env(var) => {
                let ikm = read_env_key(var)?;
                (KekSource::Env { var: var.clone() }, kdf::hkdf_sha256(ikm.expose(), &salt, labels::KEK_ENV))
            }
            KekSpec::OsKeyring => {
                // The random suffix keeps two rekeys racing to the same slot id (or two copies of one vault) from
                // sharing, and then deleting, each other's entry.
                let user = format!("vault-{}-slot-{}-{:08x}", p.vault_id, p.id, random::below(u32::MAX));
                let ikm = Key32::random();
                crate::os_keyring::store(OS_KEYRING_SERVICE, &user, ikm.expose())?;
                let kek = kdf::hkdf_sha256(ikm.expose(), &salt, labels::KEK_OS_KEYRING);
                (KekSource::OsKeyring { service: OS_KEYRING_SERVICE.to_string(), user }, kek)
            }
        };
        let ctx = slot_context(p.vault_id, p.id, &source);
        let wrapped = aead::seal(p.cipher, &kdf::subkey(&kek, labels::KEK_WRAP), 0, &ctx, root.expose());
        Ok(KekSlot {
            id: p.id,
            created: crate::keyring::now_unix(),
            salt: B64.encode(salt),
            commit: B64.encode(commitment(&kek, &ctx)),
            wrapped: B64.encode(wrapped),
            source,
        })
    }

    /// Whether this slot can be tried without asking anyone (its env var is set, its key file exists, ...).
    pub fn is_available(&self, inputs: &KekInputs<'_>) -> bool {
        match &self.source {
            KekSource::Passphrase { .. } => inputs.passphrase.is_some(),
            KekSource::Keyfile { path } => inputs.keyfile_override.as_deref().unwrap_or(path).exists(),
            KekSource::Env { var } => std::env::var_os(var).is_some(),
            KekSource::OsKeyring { .. } => cfg!(feature = "os-keyring"),
        }
    }

    /// Derives this slot's KEK and unwraps the root key.
    pub fn unwrap_root(&self, vault_id: &str, inputs: &mut KekInputs<'_>) -> Result<Key32, CryptoError> {
        let salt = B64.decode(&self.salt).map_err(|_| CryptoError::Malformed("slot salt is not base64"))?;
        let wrapped = B64.decode(&self.wrapped).map_err(|_| CryptoError::Malformed("slot key is not base64"))?;
        if salt.len() != 16 {
            return Err(CryptoError::Malformed("slot salt has the wrong length"));
        }
        let kek = match &self.source {
            KekSource::Passphrase { argon2 } => {
                argon2.validate()?;
                let ask = inputs.passphrase.as_mut().ok_or(CryptoError::PassphraseUnavailable)?;
                let pass = ask()?;
                kdf::argon2id(pass.expose(), &salt, *argon2)?
            }
            KekSource::Keyfile { path } => {
                let path = inputs.keyfile_override.clone().unwrap_or_else(|| path.clone());
                let ikm = read_keyfile(&path)?;
                kdf::hkdf_sha256(ikm.expose(), &salt, labels::KEK_KEYFILE)
            }
            KekSource::Env { var } => kdf::hkdf_sha256(read_env_key(var)?.expose(), &salt, labels::KEK_ENV),
            KekSource::OsKeyring { service, user } => {
                let ikm = crate::os_keyring::load(service, user)?;
                kdf::hkdf_sha256(ikm.expose(), &salt, labels::KEK_OS_KEYRING)
            }
        };
        let wrong = || match self.source {
            KekSource::Passphrase { .. } => CryptoError::WrongPassphrase,
            _ => CryptoError::WrongKey { slot: self.id, kind: self.source.kind() },
        };
        let ctx = slot_context(vault_id, self.id, &self.source);
        let commit = B64.decode(&self.commit).map_err(|_| CryptoError::Malformed("slot commitment is not base64"))?;
        if !ct_eq(&commitment(&kek, &ctx), &commit) {
            return Err(wrong());
        }
        let root = aead::open(&kdf::subkey(&kek, labels::KEK_WRAP), &ctx, &wrapped).map_err(|e| match e {
            CryptoError::Authentication => wrong(),
            other => other,
        })?;
        Key32::from_slice(root.expose()).ok_or(CryptoError::Malformed("wrapped root key has the wrong length"))
    }

    /// Removes anything this slot keeps outside the vault file (the OS keyring entry). Key files are the
    /// user's and are left alone.
    pub fn destroy_external(&self) -> Result<(), CryptoError> {
        if let KekSource::OsKeyring { service, user } = &self.source {
            crate::os_keyring::delete(service, user)?;
        }
        Ok(())
    }
}

/// Why a commitment: XChaCha20-Poly1305 and AES-GCM are not key-committing, so one crafted ciphertext can open
/// under many keys. Someone who can write the vault file could plant such a slot and learn, from whether an
/// unlock succeeds, which of many passphrase guesses is right (a "partitioning oracle"). An HMAC under a key
/// derived from the KEK commits the slot to one KEK; it is checked, in constant time, before the AEAD is tried.
fn commitment(kek: &Key32, ctx: &Aad) -> [u8; 32] {
    kdf::hmac_sha256(&kdf::subkey(kek, labels::KEK_COMMIT), ctx.as_bytes())
}

fn slot_context(vault_id: &str, slot_id: u32, source: &KekSource) -> Aad {
    Aad::new("airlock/kek-slot/v1").str(vault_id).u64(slot_id as u64).str(source.kind())
}

/// Creates a new key file holding 32 random bytes, mode 0600, refusing to overwrite anything.
pub fn create_keyfile(path: &Path) -> Result<(), CryptoError> {
    use std::io::Write;
    let err = |reason: String| CryptoError::Keyfile { path: path.to_path_buf(), reason };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| err(format!("cannot create: {e}")))?;
    let key = Key32::random();
    f.write_all(key.expose()).map_err(|e| err(e.to_string()))?;
    f.sync_all().map_err(|e| err(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// Reads a key file, refusing one that other users could read or write.
pub fn read_keyfile(path: &Path) -> Result<SecretBytes, CryptoError> {
    let key = read_private_file(path, KEYFILE_MAX)?;
    if (key.len() as u64) < KEYFILE_MIN {
        return Err(CryptoError::Keyfile {
            path: path.to_path_buf(),
            reason: format!("must hold {KEYFILE_MIN} to {KEYFILE_MAX} bytes, has {}", key.len()),
        });
    }
    Ok(key)
}

/// Reads a file that holds key material (a key file, a passphrase file): it must be a regular file, owned by the
/// current user (or root), not readable or writable by group or others, and at most `max` bytes.
pub fn read_private_file(path: &Path, max: u64) -> Result<SecretBytes, CryptoError> {
    let err = |reason: String| CryptoError::Keyfile { path: path.to_path_buf(), reason };
    // O_NONBLOCK: opening a FIFO would otherwise block until a writer appears. The opened file is then checked
    // to be a regular file (for which O_NONBLOCK changes nothing).
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|e| err(format!("cannot open: {e}")))?;
    // Check the opened file, not the path, so a swap between check and read cannot slip past.
    let meta = f.metadata().map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err("not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CryptoError::KeyfileInsecure { path: path.to_path_buf(), mode });
    }
    // The file must belong to us (or to root, who can read it anyway). `/proc/self` is owned by our euid,
    // which avoids an `unsafe` call to geteuid outside the sandbox crate.
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(meta.uid());
    if meta.uid() != me && meta.uid() != 0 {
        return Err(err(format!("owned by uid {}, not by the current user", meta.uid())));
    }
    if meta.len() > max {
        return Err(err(format!("larger than {max} bytes ({} bytes)", meta.len())));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    f.by_ref().take(max).read_to_end(&mut buf).map_err(|e| err(e.to_string()))?;
    Ok(SecretBytes::from(buf))
}

fn read_env_key(var: &str) -> Result<SecretBytes, CryptoError> {
    let raw = Zeroizing::new(
        std::env::var(var).map_err(|_| CryptoError::EnvKey { var: var.to_string(), reason: "is not set" })?,
    );
    let decoded = Zeroizing::new(
        B64.decode(raw.trim())
            .map_err(|_| CryptoError::EnvKey { var: var.to_string(), reason: "is not valid base64" })?,
    );
    if decoded.len() != 32 {
        return Err(CryptoError::EnvKey { var: var.to_string(), reason: "must decode to exactly 32 bytes" });
    }
    Ok(SecretBytes::copy_from(&decoded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast() -> Argon2Params {
        Argon2Params { m_kib: 256, t: 1, p: 1 }
    }

    fn params(id: u32) -> SlotParams<'static> {
        SlotParams { id, vault_id: "v1", cipher: Cipher::XChaCha20Poly1305, argon2: fast() }
    }

    #[test]
    fn specs_parse_and_reject_garbage() {
        assert_eq!("passphrase".parse::<KekSpec>().unwrap(), KekSpec::Passphrase);
        assert_eq!("keyring".parse::<KekSpec>().unwrap(), KekSpec::OsKeyring);
        assert_eq!("keyfile:/k".parse::<KekSpec>().unwrap(), KekSpec::Keyfile("/k".into()));
        assert_eq!("env:AIRLOCK_KEK".parse::<KekSpec>().unwrap(), KekSpec::Env("AIRLOCK_KEK".into()));
        for bad in ["", "keyfile:", "env:", "env:1X", "env:A-B", "env:ghp_abc", "tpm"] {
            assert!(matches!(bad.parse::<KekSpec>(), Err(CryptoError::BadKekSpec)), "{bad}");
        }
    }

    #[test]
    fn passphrase_slot_unwraps_with_right_passphrase_only() {
        let root = Key32::random();
        let mut right = || Ok(SecretBytes::copy_from(b"correct horse"));
        let slot = KekSlot::create(
            &KekSpec::Passphrase,
            &params(1),
            &root,
            &mut KekInputs { passphrase: Some(&mut right), keyfile_override: None },
        )
        .unwrap();
        let got =
            slot.unwrap_root("v1", &mut KekInputs { passphrase: Some(&mut right), keyfile_override: None }).unwrap();
        assert_eq!(got, root);
        let mut wrong = || Ok(SecretBytes::copy_from(b"wrong horse"));
        let e = slot.unwrap_root("v1", &mut KekInputs { passphrase: Some(&mut wrong), keyfile_override: None });
        assert!(matches!(e, Err(CryptoError::WrongPassphrase)));
        // The same slot in another vault does not open.
        let e = slot.unwrap_root("v2", &mut KekInputs { passphrase: Some(&mut right), keyfile_override: None });
        assert!(matches!(e, Err(CryptoError::WrongPassphrase)));
    }

    #[test]
    fn slot_commitment_is_checked_and_binds_the_kek() {
        let root = Key32::random();
        let mut right = || Ok(SecretBytes::copy_from(b"correct horse"));
        let mut inputs = KekInputs { passphrase: Some(&mut right), keyfile_override: None };
        let slot = KekSlot::create(&KekSpec::Passphrase, &params(1), &root, &mut inputs).unwrap();
        // A slot whose commitment was swapped for another slot's does not open, even with the right passphrase.
        let other = KekSlot::create(&KekSpec::Passphrase, &params(1), &root, &mut inputs).unwrap();
        let mut forged = slot.clone();
        forged.commit = other.commit.clone();
        assert!(matches!(forged.unwrap_root("v1", &mut inputs), Err(CryptoError::WrongPassphrase)));
        assert_eq!(slot.unwrap_root("v1", &mut inputs).unwrap(), root);
        // Commitment and wrapping keys are distinct sub-keys of the KEK.
        assert_ne!(labels::KEK_COMMIT, labels::KEK_WRAP);
    }

    #[test]
    fn keyfile_slot_creates_0600_file_and_refuses_0644() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let root = Key32::random();
        let slot = KekSlot::create(&KekSpec::Keyfile(path.clone()), &params(2), &root, &mut KekInputs::none()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(slot.unwrap_root("v1", &mut KekInputs::none()).unwrap(), root);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = slot.unwrap_root("v1", &mut KekInputs::none());
        assert!(matches!(e, Err(CryptoError::KeyfileInsecure { mode: 0o644, .. })), "{e:?}");
    }

    #[test]
    fn keyfile_that_is_a_fifo_or_directory_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        for p in [fifo, dir.path().to_path_buf()] {
            let e = read_keyfile(&p).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
    }

    #[test]
    fn non_utf8_keyfile_path_is_refused_not_a_panic() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(std::ffi::OsStr::from_bytes(b"key\xff"));
        let e = KekSlot::create(&KekSpec::Keyfile(path.clone()), &params(4), &Key32::random(), &mut KekInputs::none());
        assert!(matches!(e, Err(CryptoError::Keyfile { ref reason, .. }) if reason.contains("UTF-8")), "{e:?}");
        assert!(!path.exists(), "no key file is created for a refused path");
    }

    #[test]
    fn env_slot_with_unset_variable_is_refused() {
        // Setting variables in-process needs `unsafe` (edition 2024); the CLI tests cover the set cases.
        let root = Key32::random();
        let spec = KekSpec::Env("AIRLOCK_TEST_KEK_SURELY_UNSET".into());
        let e = KekSlot::create(&spec, &params(3), &root, &mut KekInputs::none());
        assert!(matches!(e, Err(CryptoError::EnvKey { reason: "is not set", .. })));
    }
}
