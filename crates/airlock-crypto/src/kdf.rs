//! Key derivation: Argon2id for passphrases, HKDF-SHA-256 for sub-keys, HMAC-SHA-256 for integrity tags.
//!
//! Why here: every derived key in Airlock gets a distinct, versioned label from [`labels`], so a key made for
//! one job (say, the vault file MAC) can never be confused with a key for another (the audit log MAC).

use argon2::{Algorithm, Argon2, AssociatedData, ParamsBuilder, Version};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{CryptoError, Key32, ct_eq};

/// HKDF `info` labels. One per purpose; never reuse one for a second job.
pub mod labels {
    /// MAC over the whole vault file body.
    pub const VAULT_FILE_MAC: &[u8] = b"airlock/vault/file-mac/v1";
    /// MAC key for the audit log's sensitive fields (`hmac-sha256:` tags).
    pub const AUDIT_MAC: &[u8] = b"airlock/audit/mac/v1";
    /// Seed of the Ed25519 key that signs the audit log's checkpoints.
    pub const AUDIT_CHECKPOINT_SIGNING: &[u8] = b"airlock/audit/checkpoint-signing/v1";
    /// AEAD key sealing the broker's local CA private key on disk.
    pub const BROKER_CA_KEY: &[u8] = b"airlock/broker/ca-key/v1";
    /// Keyed fingerprints of secret values (for leak detection without storing values).
    pub const SECRET_FINGERPRINT: &[u8] = b"airlock/vault/fingerprint/v1";
    /// A KEK slot's AEAD key and its key-commitment key, both derived from the slot's KEK.
    pub const KEK_WRAP: &[u8] = b"airlock/kek/wrap/v1";
    pub const KEK_COMMIT: &[u8] = b"airlock/kek/commit/v1";
    pub const KEK_KEYFILE: &[u8] = b"airlock/kek/keyfile/v1";
    pub const KEK_ENV: &[u8] = b"airlock/kek/env/v1";
    pub const KEK_OS_KEYRING: &[u8] = b"airlock/kek/os-keyring/v1";
    pub const X25519_SHARED: &[u8] = b"airlock/x25519/shared/v1";
    /// Sealed files (airlock-vault's `file://` backend): the AEAD key of the values, the key of the whole-document
    /// MAC (both sub-keys of the file's data key), and a key-file recipient's KEK.
    pub const SEALED_FILE_VALUE: &[u8] = b"airlock/sealed-file/value/v1";
    pub const SEALED_FILE_MAC: &[u8] = b"airlock/sealed-file/mac/v1";
    pub const SEALED_FILE_KEYFILE: &[u8] = b"airlock/sealed-file/keyfile/v1";
}

/// Argon2id cost parameters, stored in the vault header so they can be raised later without breaking old vaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes over memory.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Argon2Params {
    /// The lowest memory cost Airlock will create a vault with unless the caller explicitly opts out (64 MiB).
    pub const RECOMMENDED_MIN_M_KIB: u32 = 64 * 1024;
    /// Refuse to even try parameters beyond these when reading a header: a tampered header must not be able to
    /// make `unlock` allocate 100 GiB or spin for an hour.
    pub const MAX_M_KIB: u32 = 4 * 1024 * 1024;
    pub const MAX_T: u32 = 64;
    pub const MAX_P: u32 = 64;

    /// RFC 9106 section 4, second recommended option: t=3, p=4, m=64 MiB.
    pub const RFC9106_LOW_MEMORY: Argon2Params = Argon2Params { m_kib: 64 * 1024, t: 3, p: 4 };

    /// Checks the parameters are within the bounds Argon2 allows and we are willing to spend.
    pub fn validate(&self) -> Result<(), CryptoError> {
        if self.m_kib > Self::MAX_M_KIB || self.t > Self::MAX_T || self.p > Self::MAX_P {
            return Err(CryptoError::Kdf("argon2 parameters exceed Airlock's limits (m <= 4 GiB, t <= 64, p <= 64)"));
        }
        if self.t < 1 || self.p < 1 || self.m_kib < 8 * self.p {
            return Err(CryptoError::Kdf("argon2 parameters below the algorithm's minimum"));
        }
        Ok(())
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::RFC9106_LOW_MEMORY
    }
}

/// Derives a 256-bit key from a passphrase with Argon2id (version 0x13).
pub fn argon2id(passphrase: &[u8], salt: &[u8], params: Argon2Params) -> Result<Key32, CryptoError> {
    let mut out = Zeroizing::new([0u8; 32]);
    argon2id_with_secret(passphrase, salt, &[], &[], params, &mut *out)?;
    Ok(Key32::from_bytes(*out))
}

/// Argon2id (version 0x13) with the optional inputs of RFC 9106 section 3.1: a `secret` (a key or pepper, K)
/// and `associated_data` (X), writing `out.len()` bytes of tag into `out`. An empty `secret` and empty
/// `associated_data` give exactly [`argon2id`]'s output. Applies the same parameter and salt checks as
/// [`argon2id`] (RFC 9106's own test vector, m = 32 KiB with p = 4, passes them); `associated_data` may be at
/// most 32 bytes and `out` must be at least 4 bytes long.
pub fn argon2id_with_secret(
    password: &[u8],
    salt: &[u8],
    secret: &[u8],
    associated_data: &[u8],
    params: Argon2Params,
    out: &mut [u8],
) -> Result<(), CryptoError> {
    params.validate()?;
    if salt.len() < 16 {
        return Err(CryptoError::Kdf("argon2 salt must be at least 16 bytes"));
    }
    if out.len() < 4 {
        return Err(CryptoError::Kdf("argon2 output must be at least 4 bytes"));
    }
    let data = AssociatedData::new(associated_data)
        .map_err(|_| CryptoError::Kdf("argon2 associated data must be at most 32 bytes"))?;
    let p = ParamsBuilder::new()
        .m_cost(params.m_kib)
        .t_cost(params.t)
        .p_cost(params.p)
        .data(data)
        .output_len(out.len())
        .build()
        .map_err(|_| CryptoError::Kdf("argon2 rejected the parameters"))?;
    Argon2::new_with_secret(secret, Algorithm::Argon2id, Version::V0x13, p)
        .map_err(|_| CryptoError::Kdf("argon2 secret too long"))?
        .hash_password_into(password, salt, out)
        .map_err(|_| CryptoError::Kdf("argon2 failed"))
}

/// HKDF-SHA-256 (RFC 5869) extract-and-expand to 32 bytes.
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8]) -> Key32 {
    let mut out = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut *out)
        .expect("32 bytes is a valid HKDF-SHA-256 output length");
    Key32::from_bytes(*out)
}

/// HKDF-SHA-256 to an arbitrary length (used by the RFC 5869 known-answer tests).
pub fn hkdf_sha256_expand(
    ikm: &[u8],
    salt: Option<&[u8]>,
    info: &[u8],
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    Hkdf::<Sha256>::new(salt, ikm).expand(info, &mut out).map_err(|_| CryptoError::Kdf("HKDF output too long"))?;
    Ok(out)
}

/// A sub-key of `root` for one purpose.
pub fn subkey(root: &Key32, label: &[u8]) -> Key32 {
    hkdf_sha256(root.expose(), b"airlock-subkey", label)
}

/// HMAC-SHA-256 tag.
pub fn hmac_sha256(key: &Key32, data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose()).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Constant-time check of an HMAC-SHA-256 tag.
pub fn hmac_sha256_verify(key: &Key32, data: &[u8], tag: &[u8]) -> bool {
    ct_eq(&hmac_sha256(key, data), tag)
}

/// SHA-256 digest (not keyed: for checksums that detect accidents, never for authenticity).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tampered_params_are_refused_before_work() {
        let huge = Argon2Params { m_kib: u32::MAX, t: 3, p: 4 };
        assert!(matches!(argon2id(b"pw", &[0; 16], huge), Err(CryptoError::Kdf(_))));
        let zero = Argon2Params { m_kib: 64, t: 0, p: 1 };
        assert!(matches!(argon2id(b"pw", &[0; 16], zero), Err(CryptoError::Kdf(_))));
    }

    #[test]
    fn subkeys_differ_by_label() {
        let r = Key32::random();
        assert_ne!(subkey(&r, labels::VAULT_FILE_MAC), subkey(&r, labels::AUDIT_MAC));
        assert_eq!(subkey(&r, labels::AUDIT_MAC), subkey(&r, labels::AUDIT_MAC));
    }

    #[test]
    fn hmac_verify_rejects_other_tags() {
        let k = Key32::random();
        let t = hmac_sha256(&k, b"body");
        assert!(hmac_sha256_verify(&k, b"body", &t));
        assert!(!hmac_sha256_verify(&k, b"body!", &t));
        assert!(!hmac_sha256_verify(&k, b"body", &t[..31]));
    }
}
