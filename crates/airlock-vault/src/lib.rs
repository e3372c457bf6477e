//! # airlock-vault
//!
//! Airlock's embedded secret store: an encrypted file under `$AIRLOCK_HOME` holding an agent's credentials, from
//! which no command, log line or error ever shows a value; and the other stores a team may already keep values in
//! (OpenBao / HashiCorp Vault, the OS keyring, the kernel keyring, the environment, sealed files in git), behind one
//! [`backend::SecretBackend`] trait with the same guarantees.
//!
//! ## What it guards against
//! - **Reading secrets at rest**: every record (metadata and values) is an AEAD envelope under the vault's
//!   keyring (see `airlock-crypto`). Only record addresses (`workspace/name`) and write counters are in the clear.
//! - **Tampering with the file**: an HMAC over the whole body detects added, removed, replayed or swapped records
//!   and edited slots; each envelope is also bound to its own address. Errors name the record that failed.
//! - **Losing data to a crash or a race**: whole-file atomic replacement (temp, fsync, rename, dir fsync) and an
//!   exclusive write lock; a transaction adopts its changes in memory only after the file is safely written.
//! - **Tools seeing real credentials**: [`surrogate`] generates same-shape stand-ins that map back only inside
//!   Airlock; [`reference`](mod@reference) resolves `${secret:NAME}` and `${secret:bao://...}` in configuration.
//! - **Values kept elsewhere**: [`backend`] reads them into zeroizing memory only, fails closed when a store is
//!   sealed, unreachable or refuses its token (a cached value is never served past its time to live), and parses
//!   locators strictly so that a crafted one cannot reach another endpoint or file.
//! - **Weak or wrong values**: [`formats`] knows the shapes of common providers' keys and of placeholders.
//!
//! ## Entry points
//! - [`Vault::init`], [`Vault::open`], [`Vault::ephemeral`]; then [`Vault::unlock`].
//! - [`Vault::set`], [`Vault::rotate`], [`Vault::pin`], [`Vault::remove`], [`Vault::list`], [`Vault::resolve`].
//! - [`Vault::rotate_key`] (new keyring term), [`Vault::rekey`] (new root key and KEK slots).
//! - [`reference::interpolate`], [`surrogate::SurrogateMap`], [`formats::check_value_format`].
//! - [`backend::Locator::parse`]; then a backend's [`backend::SecretBackend::read`]: `backend::openbao::BaoBackend`
//!   (feature `openbao`), [`backend::keyring::KeyringBackend`], [`backend::keyctl::KeyctlBackend`],
//!   [`backend::env::EnvBackend`], [`backend::sealed_file::SealedFileBackend`].

pub mod backend;
pub mod file;
pub mod formats;
mod model;
pub mod reference;
pub mod surrogate;
mod vault;

pub use model::{
    DEFAULT_KEEP_VERSIONS, DEFAULT_WORKSPACE, Exposure, FRAMING_HEADERS, Injection, MAX_KEEP_VERSIONS, MAX_VALUE_LEN,
    NewSecret, SecretId, SecretInfo, check_value, normalize_host,
};
pub use vault::{InitOptions, RekeyReport, SlotInfo, Status, TermStatus, Vault};

use std::path::PathBuf;
use std::time::Duration;

pub use airlock_crypto::CryptoError;

/// Everything that can go wrong with a vault. Messages name files, records and slots, never values.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no vault at {path}; create one with `airlock init`")]
    NotInitialized { path: PathBuf },
    #[error("a vault already exists at {path}; refusing to overwrite it")]
    AlreadyInitialized { path: PathBuf },
    #[error("vault file {path} is truncated (an interrupted copy or a full disk?); it was not modified")]
    Truncated { path: PathBuf },
    #[error("vault file {path} is corrupt: {reason}; it was not modified")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path} is not an Airlock vault file")]
    NotAVault { path: PathBuf },
    #[error("vault file {path} uses a format this version of Airlock does not understand")]
    UnsupportedFormat { path: PathBuf },
    #[error("vault integrity check failed: {0}")]
    Tampered(String),
    #[error("vault integrity check failed: record {id}: {reason}")]
    RecordTampered { id: String, reason: String },
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("could not unlock the vault: {}", format_attempts(.attempts))]
    NoSlotOpened { attempts: Vec<(String, String)> },
    #[error("the vault is locked")]
    Locked,
    #[error("the vault locked itself: its unlock time-to-live expired")]
    Expired,
    #[error("the vault was rekeyed by another process (or its keyring was altered); unlock it again")]
    Rekeyed,
    #[error("secret {0} not found")]
    NotFound(String),
    #[error("secret {id} has no kept version {version}")]
    VersionNotFound { id: String, version: u32 },
    #[error("secret {0} already exists (use `airlock secret rotate` to give it a new value)")]
    AlreadyExists(String),
    #[error("the secret value is empty")]
    EmptyValue,
    #[error("the secret value is {len} bytes; the limit is {max}")]
    ValueTooLarge { len: usize, max: usize },
    // These never repeat what was typed: a token pasted into the wrong argument must not be copied to stderr.
    #[error("invalid {what} ({len} characters): {reason}")]
    InvalidName { what: &'static str, len: usize, reason: String },
    #[error("invalid host: {reason}")]
    InvalidHost { reason: String },
    #[error("invalid injection recipe: {0}")]
    InvalidInjection(String),
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("a vault needs at least one KEK slot (--kek)")]
    NoKekSlots,
    #[error("{0} is not possible on an ephemeral (memory-only) vault")]
    Ephemeral(&'static str),
    #[error("the vault is busy: another Airlock process held the write lock for {waited:?}")]
    Busy { waited: Duration },
    #[error("{path} has mode {mode:04o}; expected {expected}")]
    InsecurePermissions { path: PathBuf, mode: u32, expected: &'static str },
    #[error("{op} {path}: {source}")]
    Io { path: PathBuf, op: &'static str, source: std::io::Error },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("{0}")]
    Reference(String),
}

fn format_attempts(a: &[(String, String)]) -> String {
    if a.is_empty() {
        return "the vault has no slots".into();
    }
    a.iter().map(|(slot, why)| format!("{slot}: {why}")).collect::<Vec<_>>().join("; ")
}

pub(crate) fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(crate) fn ct_eq_str(a: &str, b: &str) -> bool {
    airlock_crypto::ct_eq(a.as_bytes(), b.as_bytes())
}
