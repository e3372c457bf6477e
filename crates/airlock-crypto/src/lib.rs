//! # airlock-crypto
//!
//! The cryptographic core of Airlock. Everything Airlock keeps at rest is encrypted here, and every key it holds
//! is one of this crate's zeroizing types.
//!
//! ## What it guards against
//! - **Reading secrets from disk**: values are sealed in AEAD [`aead`] envelopes (XChaCha20-Poly1305 by default,
//!   AES-256-GCM as the alternative).
//! - **Moving or swapping ciphertexts**: every envelope authenticates its own header and a caller-built [`Aad`]
//!   context (vault id, workspace, record name, version, term), so a ciphertext only opens where it was written.
//! - **Key sprawl and stranded data on rotation**: a [`Keyring`] of numbered terms; new writes use the newest,
//!   old ones still decrypt. The keyring sits under a root key that [`kek`] slots wrap (passphrase via Argon2id,
//!   key file, environment variable, OS keyring), so rekeying never touches data.
//! - **Secrets lingering in memory or logs**: [`Key32`] and [`SecretBytes`] zeroize on drop, print as
//!   `<redacted>`, and compare in constant time.
//!
//! ## Entry points
//! - [`aead::seal`] / [`aead::open`]: envelope encryption.
//! - [`Keyring`]: terms, rotation, purpose-bound sub-keys ([`kdf::labels`]).
//! - [`KekSlot::create`] / [`KekSlot::unwrap_root`]: the ways a vault opens.
//! - [`kdf`]: Argon2id, HKDF-SHA-256, HMAC-SHA-256.
//! - [`sign`]: Ed25519 signing, X25519 agreement.
//!
//! Nothing in this crate prints, logs or returns a secret in an error.

pub mod aead;
pub mod kdf;
pub mod kek;
pub mod keyring;
pub mod os_keyring;
pub mod random;
mod secret;
pub mod sign;

pub use aead::{Aad, Cipher};
pub use kek::{KekInputs, KekSlot, KekSource, KekSpec};
pub use keyring::{Keyring, TermInfo};
pub use secret::{Key32, SecretBytes, ct_eq};

use std::path::PathBuf;

/// Everything that can go wrong in this crate. Messages name what failed, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("authentication failed: wrong key, or the data was altered or moved")]
    Authentication,
    #[error("malformed data: {0}")]
    Malformed(&'static str),
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    #[error("unsupported cipher id {0}")]
    UnsupportedCipher(u8),
    #[error("unknown cipher name (expected xchacha20-poly1305 or aes-256-gcm)")]
    UnknownCipherName,
    #[error("ciphertext names keyring term {0}, which this keyring does not have")]
    UnknownTerm(u32),
    #[error("key derivation: {0}")]
    Kdf(&'static str),
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("the {kind} key does not unlock slot {slot}")]
    WrongKey { slot: u32, kind: &'static str },
    #[error(
        "a passphrase is needed but none is available (set AIRLOCK_PASSPHRASE, pass --passphrase-file, or run in a terminal)"
    )]
    PassphraseUnavailable,
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("key file {path}: {reason}")]
    Keyfile { path: PathBuf, reason: String },
    #[error("key file {path} has mode {mode:04o}; it must not be readable or writable by group or others (chmod 600)")]
    KeyfileInsecure { path: PathBuf, mode: u32 },
    #[error("environment variable {var} {reason} (it must hold a base64-encoded 32-byte key)")]
    EnvKey { var: String, reason: &'static str },
    #[error("{0}")]
    OsKeyring(String),
    /// Deliberately does not repeat the spec: a token pasted there must not be echoed.
    #[error("bad --kek value: expected passphrase, keyring, keyfile:PATH or env:VAR")]
    BadKekSpec,
    #[error("invalid public key")]
    BadPublicKey,
    #[error("signature verification failed")]
    BadSignature,
}
