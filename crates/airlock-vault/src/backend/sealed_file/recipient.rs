//! Recipients: the data key of a sealed file, wrapped under a key-encryption key (KEK) from a passphrase or a key
//! file. The same construction as the vault's KEK slots (airlock-crypto `kek`), with the sealed file's own labels
//! and context:
//!
//! - KEK: Argon2id(passphrase, salt, params) for a passphrase; HKDF-SHA-256(key file, salt, [`SEALED_FILE_KEYFILE`])
//!   for a key file.
//! - context: `Aad("airlock/sealed-file/recipient/v1", file id, name, type, params)`.
//! - `commit` = HMAC-SHA-256(subkey(KEK, `KEK_COMMIT`), context), checked in constant time before the AEAD is
//!   tried: neither AEAD commits to its key, and without this a crafted recipient could open under many
//!   passphrases and tell an attacker which of them is right.
//! - `wrapped` = AEAD(subkey(KEK, `KEK_WRAP`), context, data key).
//!
//! So a recipient copied from another file, renamed, or given other parameters does not open.
//!
//! [`SEALED_FILE_KEYFILE`]: airlock_crypto::kdf::labels::SEALED_FILE_KEYFILE

use std::path::Path;

use airlock_crypto::aead::{self, Aad};
use airlock_crypto::kdf::{self, labels};
use airlock_crypto::{Cipher, CryptoError, Key32, SecretBytes, ct_eq, random};

use super::format::{Recipient, RecipientKind};

/// What a KEK is derived from.
pub enum KekInput<'a> {
    Passphrase(&'a SecretBytes),
    Keyfile(&'a SecretBytes),
}

fn context(file_id: &str, name: &str, kind: &RecipientKind) -> Aad {
    Aad::new("airlock/sealed-file/recipient/v1").str(file_id).str(name).str(kind.type_name()).str(&kind.params())
}

/// Derives the KEK for a recipient of `kind` with `salt`. Refuses an input of the wrong type.
pub fn derive_kek(kind: &RecipientKind, salt: &[u8], input: &KekInput<'_>) -> Result<Key32, CryptoError> {
    match (kind, input) {
        (RecipientKind::Passphrase(params), KekInput::Passphrase(p)) => {
            if p.is_empty() {
                return Err(CryptoError::EmptyPassphrase);
            }
            kdf::argon2id(p.expose(), salt, *params)
        }
        (RecipientKind::Keyfile, KekInput::Keyfile(ikm)) => {
            Ok(kdf::hkdf_sha256(ikm.expose(), salt, labels::SEALED_FILE_KEYFILE))
        }
        _ => Err(CryptoError::Malformed("KEK input of the wrong type for this recipient")),
    }
}

/// A new recipient named `name` that wraps `data_key` under `kek` (derived with `salt`).
pub fn wrap(
    cipher: Cipher,
    file_id: &str,
    name: &str,
    kind: RecipientKind,
    salt: [u8; 16],
    kek: &Key32,
    data_key: &Key32,
) -> Recipient {
    let ctx = context(file_id, name, &kind);
    let commit = kdf::hmac_sha256(&kdf::subkey(kek, labels::KEK_COMMIT), ctx.as_bytes());
    let wrapped = aead::seal(cipher, &kdf::subkey(kek, labels::KEK_WRAP), 0, &ctx, data_key.expose());
    Recipient { name: name.to_string(), kind, salt, commit, wrapped }
}

/// The data key, if `kek` is this recipient's; `None` if it is not (a wrong passphrase or key file, or a recipient
/// altered or copied from another file: the two cannot be told apart, by design).
pub fn unwrap(r: &Recipient, file_id: &str, kek: &Key32) -> Option<Key32> {
    let ctx = context(file_id, &r.name, &r.kind);
    let commit = kdf::hmac_sha256(&kdf::subkey(kek, labels::KEK_COMMIT), ctx.as_bytes());
    if !ct_eq(&commit, &r.commit) {
        return None;
    }
    let key = aead::open(&kdf::subkey(kek, labels::KEK_WRAP), &ctx, &r.wrapped).ok()?;
    Key32::from_slice(key.expose())
}

/// A fresh salt.
pub fn salt() -> [u8; 16] {
    random::bytes::<16>()
}

/// Reads a key file for a recipient: a regular file of 32 bytes to 64 KiB, owned by this user (or root), not
/// readable or writable by group or others (airlock-crypto's checks, as for the vault's key-file slots).
pub fn read_keyfile(path: &Path) -> Result<SecretBytes, CryptoError> {
    airlock_crypto::kek::read_keyfile(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_crypto::kdf::Argon2Params;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn only_the_right_kek_in_the_right_place_unwraps() {
        let data = Key32::random();
        let kind = RecipientKind::Passphrase(Argon2Params { m_kib: 64, t: 1, p: 1 });
        let s = salt();
        let pass = SecretBytes::copy_from(b"correct horse");
        let kek = derive_kek(&kind, &s, &KekInput::Passphrase(&pass)).unwrap();
        let r = wrap(Cipher::XChaCha20Poly1305, ID, "team", kind, s, &kek, &data);
        assert_eq!(unwrap(&r, ID, &kek).unwrap(), data);
        let wrong = derive_kek(&kind, &s, &KekInput::Passphrase(&SecretBytes::copy_from(b"wrong horse"))).unwrap();
        assert!(unwrap(&r, ID, &wrong).is_none());
        // Another file, another name, other parameters: the context differs, so nothing opens.
        assert!(unwrap(&r, &"f".repeat(32), &kek).is_none());
        let mut renamed = r.clone();
        renamed.name = "other".into();
        assert!(unwrap(&renamed, ID, &kek).is_none());
        let mut cheaper = r.clone();
        cheaper.kind = RecipientKind::Passphrase(Argon2Params { m_kib: 64, t: 2, p: 1 });
        assert!(unwrap(&cheaper, ID, &kek).is_none());
        let mut retyped = r.clone();
        retyped.kind = RecipientKind::Keyfile;
        assert!(unwrap(&retyped, ID, &kek).is_none());
        // A commitment that does not match stops the AEAD from being tried at all.
        let mut forged = r.clone();
        forged.commit[0] ^= 1;
        assert!(unwrap(&forged, ID, &kek).is_none());
        let mut flipped = r;
        flipped.wrapped[10] ^= 1;
        assert!(unwrap(&flipped, ID, &kek).is_none());
    }

    #[test]
    fn key_file_keks_differ_from_the_vaults_for_the_same_file() {
        let ikm = SecretBytes::copy_from(&[7u8; 32]);
        let s = [1u8; 16];
        let ours = derive_kek(&RecipientKind::Keyfile, &s, &KekInput::Keyfile(&ikm)).unwrap();
        assert_ne!(ours, kdf::hkdf_sha256(ikm.expose(), &s, labels::KEK_KEYFILE));
        let e = derive_kek(&RecipientKind::Keyfile, &s, &KekInput::Passphrase(&ikm));
        assert!(e.is_err());
    }
}
