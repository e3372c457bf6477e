//! `file://PATH#KEY`: an Airlock-sealed file, for teams who commit their secrets to git, encrypted.
//!
//! # Why
//! A team that keeps its credentials in the repository wants `git diff` to say *which* secret changed, a review to
//! see that a key was added, and a merge to touch only the values that changed, without anyone reading a value off
//! the screen. So a sealed file is TOML whose structure stays in the clear while every value is replaced by an
//! envelope (like sops): each value is encrypted on its own, bound to its key path and to the file, and a MAC over
//! the whole document detects any value added, removed, swapped or rolled back, and any edit to the metadata.
//!
//! # The format (version 1)
//! ```toml
//! # Sealed with Airlock: keys are in the clear, each value is encrypted on its own (ENC[...]).
//! # ...
//!
//! token = "ENC[airlock:v1,xchacha20-poly1305,AQEAAAAA...]"
//!
//! [db]
//! password = "ENC[airlock:v1,xchacha20-poly1305,AQEAAAAA...]"
//!
//! [airlock]
//! version = 1
//! file_id = "6f1c0e7d9a2b4c8e0f3a5b7c9d1e2f40"
//! cipher = "xchacha20-poly1305"
//! mac = "base64 of 32 bytes"
//!
//! [[airlock.recipients]]
//! name = "team"
//! type = "passphrase"
//! argon2 = { m_kib = 65536, t = 3, p = 4 }
//! salt = "base64 of 16 bytes"
//! commit = "base64 of 32 bytes"
//! wrapped = "base64 of an airlock-crypto envelope of the 32-byte data key"
//! ```
//!
//! - **Values.** Any TOML that parses to tables of strings (dotted keys, inline tables and `[table]` headers all
//!   work), where every string is an envelope. A value's *key path* is its keys joined by `.`: `db.password`. Each
//!   key is 1 to 128 of `A-Z a-z 0-9 _ -` (TOML's bare keys, so a path is never ambiguous and never quoted), at most
//!   32 deep; the root key `airlock` is reserved. Anything else (a number, an array, a plain string, a key that
//!   needs quotes) is refused with the key path, never the value.
//! - **Envelope.** `ENC[airlock:v1,CIPHER,B64]`, `CIPHER` being `xchacha20-poly1305` or `aes-256-gcm` and `B64`
//!   standard base64 (padded) of an airlock-crypto AEAD envelope (`aead::seal`): `[1][cipher id][key id = 0]
//!   [nonce][ciphertext][tag]`, the nonce random (24 or 12 bytes). The key is `HKDF(data key, SEALED_FILE_VALUE)`;
//!   the associated data is the envelope header and `Aad("airlock/sealed-file/value/v1", file id, key path)`. So an
//!   envelope opens only under its own key path in its own file: swapped between keys or copied from another file,
//!   it fails, naming the key.
//! - **`[airlock]`.** `version` (1), `file_id` (16 random bytes as 32 lowercase hex digits, fixed at creation),
//!   `cipher` (for new values), `mac`, and 1 to 16 `[[airlock.recipients]]`. Unknown fields are refused.
//! - **Recipients.** Each wraps the file's random 32-byte *data key* under a key-encryption key (see
//!   `recipient.rs`): `type = "passphrase"` (Argon2id with the stored `argon2` parameters and `salt`; at most
//!   m = 1 GiB, t = 16, p = 16, checked before any work) or `type = "keyfile"` (HKDF-SHA-256 of a key file of 32
//!   bytes to 64 KiB, mode 0600, with `SEALED_FILE_KEYFILE` and the salt). `commit` is a key commitment checked
//!   before the AEAD. The wrapping is bound to (file id, name, type, parameters). Any one recipient opens the file.
//! - **MAC.** HMAC-SHA-256 under `HKDF(data key, SEALED_FILE_MAC)` of a length-prefixed encoding
//!   (`format::mac_input`) of: version, file id, cipher, every recipient (sorted by name: name, type, parameters,
//!   salt, commit, wrapped) and every `(key path, envelope text)` pair sorted by key path. It is checked on every
//!   open, before any value is returned: a value removed, added, moved, or replaced by an older envelope of the same
//!   key (which would still decrypt), and any edit to the metadata, fail it. Line order, blank lines, comments and
//!   TOML spelling (dotted keys or headers) are not data and are not covered.
//!
//! Airlock writes the file in one canonical form (`format::write`): a header comment, root values, then each table
//! holding values as `[dotted.path]` in sorted order, depth first, keys sorted, then `[airlock]`. Every value is
//! one line. Changing a value rewrites its line and the `mac` line and nothing else; setting a value to what it
//! already is changes nothing (its envelope is kept, so unchanged values never get new nonces). Comments added by
//! hand are not kept.
//!
//! # What it does not protect against
//! - **Rolling back the whole file** to an older version from git history: an older file is a valid file. Git's
//!   history (and review) is the record of which version is current.
//! - **A recipient going rogue.** Anyone who can open the file holds the data key, can read every value and can
//!   write a valid file. Removing a recipient stops it opening *new* copies; it may have kept the data key, so
//!   `rekey` (a new data key, every value re-encrypted) and rotating the secrets themselves are the real fix.
//!   There are no public-key (X25519) recipients on purpose: anyone holding a public key could then write a valid
//!   file with values of their choosing (credentials to an account they control), and Airlock would inject them.
//!   With passphrase and key-file recipients, only someone who can read the file can write one.
//! - **Key names** are in the clear, by design (that is what keeps diffs readable): do not put secrets in them.
//!
//! # Writing
//! Every change is a whole-file replacement: a temp file (0600) in the same directory, fsync, rename over the file,
//! fsync the directory, so the path always holds the old or the new file, never half of one. Writers (CLI and
//! daemon) serialise on an exclusive `flock` of the file's directory (no lock file is left beside it), re-read the
//! file under the lock, and remove temp files a killed writer left. The file is written 0600; git keeps no
//! permissions but the executable bit, so a checkout is whatever the umask gives, which is fine for ciphertext.
//! A file that any user may write (`o+w`) is refused: someone else could roll it back.
//!
//! # Entry points
//! - [`SealedFile::create`], [`SealedFile::open`], [`SealedFile::edit`] (lock, open, change, save).
//! - [`SealedFileBackend`]: the [`SecretBackend`] for `file://PATH#KEY`, made with [`SealedFileBackend::open`] and
//!   an [`Unlock`] (a passphrase from a closure or an environment variable, or a key file).

mod format;
mod recipient;

pub use format::{MAX_RECIPIENTS, check_key, check_recipient_name};

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use airlock_crypto::aead::{self, Aad};
use airlock_crypto::kdf::{self, Argon2Params, labels};
use airlock_crypto::{Cipher, CryptoError, Key32, SecretBytes, random};

use super::{BackendError, BackendKind, Expect, Fetched, Locator, Metadata, SecretBackend};
use crate::formats::{Finding, check_value_format};
use format::{Document, Meta, Recipient, RecipientKind};
use recipient::KekInput;

/// The largest sealed file read (a guard against being pointed at something that is not one).
pub const MAX_FILE_LEN: u64 = 16 * 1024 * 1024;
/// The largest value stored: credentials, not blobs (each value is one line of a file meant for review).
pub const MAX_VALUE_LEN: usize = 64 * 1024;
/// How long a writer waits for another to finish before giving up with [`SealedError::Busy`].
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything that can go wrong with a sealed file. Messages name the file, key paths and recipients, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SealedError {
    #[error("sealed file {file} does not exist")]
    FileNotFound { file: String },
    #[error("sealed file {file} already exists; refusing to overwrite it")]
    FileExists { file: String },
    #[error("sealed file {file}: no key {key}")]
    KeyNotFound { file: String, key: String },
    #[error("sealed file {file}: no recipient named {name}")]
    RecipientNotFound { file: String, name: String },
    #[error("sealed file {file}: {what} {name} already exists")]
    Exists { file: String, what: &'static str, name: String },
    #[error("sealed file {file}: could not unlock: {reason}")]
    Unlock { file: String, reason: String },
    /// An envelope that does not open where it is: altered, or moved from another key or file. Names every such key.
    #[error("sealed file {file}: integrity check failed: {}: {reason}", key_list(.keys))]
    ValueTampered { file: String, keys: Vec<String>, reason: String },
    /// The MAC does not match, though every envelope present opens.
    #[error("sealed file {file}: integrity check failed: {reason}")]
    Tampered { file: String, reason: String },
    #[error("{file} is not a valid sealed file: {reason}")]
    Malformed { file: String, reason: String },
    #[error("sealed file {file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("sealed file {file}: another process held the write lock for {}s", .waited.as_secs())]
    Busy { file: String, waited: Duration },
    #[error("sealed file {file}: {op}: {source}")]
    Io { file: String, op: &'static str, source: std::io::Error },
    #[error("sealed file {file}: {source}")]
    Crypto { file: String, source: CryptoError },
}

fn key_list(keys: &[String]) -> String {
    match keys {
        [one] => format!("key {one}"),
        many => format!("keys {}", many.join(", ")),
    }
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// A passphrase supplier: called when a passphrase recipient must be opened and no derived key is cached.
pub type PassphraseFn = dyn Fn() -> Result<SecretBytes, CryptoError> + Send + Sync;

/// One way to open a sealed file.
pub enum Unlock {
    /// A passphrase, asked for when needed (a prompt, an environment variable, a secret manager).
    Passphrase(Box<PassphraseFn>),
    /// A key file (checked: regular, 0600, this user's, 32 bytes to 64 KiB).
    Keyfile(PathBuf),
}

impl Unlock {
    pub fn passphrase(f: impl Fn() -> Result<SecretBytes, CryptoError> + Send + Sync + 'static) -> Unlock {
        Unlock::Passphrase(Box::new(f))
    }

    /// The passphrase in environment variable `var`, read at each unlock that needs it (not kept).
    pub fn passphrase_env(var: impl Into<String>) -> Unlock {
        let var = var.into();
        Unlock::passphrase(move || match std::env::var_os(&var) {
            Some(v) => Ok(SecretBytes::new(v.into_encoded_bytes())),
            None => Err(CryptoError::PassphraseUnavailable),
        })
    }

    pub fn keyfile(path: impl Into<PathBuf>) -> Unlock {
        Unlock::Keyfile(path.into())
    }

    fn what(&self) -> String {
        match self {
            Unlock::Passphrase(_) => "the passphrase".into(),
            Unlock::Keyfile(p) => format!("key file {}", p.display()),
        }
    }

    fn opens(&self, kind: &RecipientKind) -> bool {
        matches!(
            (self, kind),
            (Unlock::Passphrase(_), RecipientKind::Passphrase(_)) | (Unlock::Keyfile(_), RecipientKind::Keyfile)
        )
    }
}

impl fmt::Debug for Unlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unlock::Passphrase(_) => f.write_str("Unlock::Passphrase(<supplier>)"),
            Unlock::Keyfile(p) => f.debug_tuple("Unlock::Keyfile").field(p).finish(),
        }
    }
}

/// The ways to open sealed files, tried in order, with the key-encryption keys they produced kept (in zeroizing
/// memory) so that a file read again, or rewritten by someone else, opens without another prompt or Argon2id run.
/// A cached key serves only the recipient it came from (same file id, name, type, parameters and salt).
pub struct Unlocker {
    inputs: Vec<Unlock>,
    cache: Mutex<Vec<CachedKek>>,
}

struct CachedKek {
    file_id: String,
    name: String,
    kind: RecipientKind,
    salt: [u8; 16],
    kek: Key32,
}

const KEK_CACHE_MAX: usize = 16;

impl fmt::Debug for Unlocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unlocker").field("inputs", &self.inputs).finish_non_exhaustive()
    }
}

impl Unlocker {
    pub fn new(input: Unlock) -> Unlocker {
        Unlocker { inputs: vec![input], cache: Mutex::new(Vec::new()) }
    }

    /// Also tries `input`, after the ones already given.
    pub fn or(mut self, input: Unlock) -> Unlocker {
        self.inputs.push(input);
        self
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Vec<CachedKek>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, file_id: &str, r: &Recipient, kek: Key32) {
        let mut c = self.cache();
        c.retain(|e| !(e.file_id == file_id && e.name == r.name));
        if c.len() >= KEK_CACHE_MAX {
            c.remove(0);
        }
        c.push(CachedKek { file_id: file_id.into(), name: r.name.clone(), kind: r.kind, salt: r.salt, kek });
    }

    /// The data key of `doc`, from the first recipient one of the inputs opens.
    fn data_key(&self, file: &str, doc: &Document) -> Result<Key32, SealedError> {
        let file_id = &doc.meta.file_id;
        for r in &doc.meta.recipients {
            let hit = self.cache().iter().find_map(|e| {
                (e.file_id == *file_id && e.name == r.name && e.kind == r.kind && e.salt == r.salt)
                    .then(|| recipient::unwrap(r, file_id, &e.kek))
                    .flatten()
            });
            if let Some(key) = hit {
                return Ok(key);
            }
        }
        // What each input did: opened nothing (a wrong passphrase or key file), or could not be used at all (no
        // passphrase to be had, an unreadable key file). One input failing does not stop the next from being tried.
        let mut tried: Vec<String> = Vec::new();
        let mut errors: Vec<CryptoError> = Vec::new();
        for input in &self.inputs {
            let candidates: Vec<&Recipient> = doc.meta.recipients.iter().filter(|r| input.opens(&r.kind)).collect();
            if candidates.is_empty() {
                continue;
            }
            let secret = match input {
                Unlock::Passphrase(f) => f(),
                Unlock::Keyfile(p) => recipient::read_keyfile(p),
            };
            let secret = match secret {
                Ok(s) => s,
                Err(e) => {
                    tried.push(format!("{}: {e}", input.what()));
                    errors.push(e);
                    continue;
                }
            };
            let kek_input = match input {
                Unlock::Passphrase(_) => KekInput::Passphrase(&secret),
                Unlock::Keyfile(_) => KekInput::Keyfile(&secret),
            };
            let mut failed = None;
            for r in &candidates {
                match recipient::derive_kek(&r.kind, &r.salt, &kek_input) {
                    Ok(kek) => {
                        if let Some(key) = recipient::unwrap(r, file_id, &kek) {
                            self.remember(file_id, r, kek);
                            return Ok(key);
                        }
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                tried.push(format!("{}: {e}", input.what()));
                errors.push(e);
                continue;
            }
            let names: Vec<&str> = candidates.iter().map(|r| r.name.as_str()).collect();
            tried.push(format!(
                "{} opens none of its recipients {} (wrong {}, or the entries were altered)",
                input.what(),
                names.join(", "),
                if matches!(input, Unlock::Passphrase(_)) { "passphrase" } else { "key file" }
            ));
        }
        // A single input that could not be used: its own error (a front end maps a missing passphrase or an insecure
        // key file to its own exit code).
        if tried.len() == 1 && errors.len() == 1 {
            return Err(SealedError::Crypto { file: file.to_string(), source: errors.remove(0) });
        }
        let reason = if tried.is_empty() {
            let have: Vec<String> =
                doc.meta.recipients.iter().map(|r| format!("{} ({})", r.name, r.kind.type_name())).collect();
            let given: Vec<String> = self.inputs.iter().map(Unlock::what).collect();
            format!(
                "it has no recipient that {} can open; its recipients are {}",
                if given.is_empty() { "anything given".to_string() } else { given.join(" or ") },
                have.join(", ")
            )
        } else {
            tried.join("; ")
        };
        Err(SealedError::Unlock { file: file.to_string(), reason })
    }
}

/// Where a new recipient's key-encryption key comes from.
pub enum RecipientSource {
    /// A passphrase, stretched with Argon2id with these parameters.
    Passphrase { passphrase: SecretBytes, argon2: Argon2Params },
    /// A key file; created (32 random bytes, 0600) if it does not exist.
    Keyfile(PathBuf),
}

impl fmt::Debug for RecipientSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecipientSource::Passphrase { argon2, .. } => {
                f.debug_struct("Passphrase").field("passphrase", &"<redacted>").field("argon2", argon2).finish()
            }
            RecipientSource::Keyfile(p) => f.debug_tuple("Keyfile").field(p).finish(),
        }
    }
}

/// A recipient to add: where its key comes from, and its name (default: `passphrase`, or `keyfile-STEM` after the
/// key file's name, with `-2`, `-3`, ... when taken).
#[derive(Debug)]
pub struct NewRecipient {
    pub name: Option<String>,
    pub source: RecipientSource,
}

impl NewRecipient {
    pub fn passphrase(passphrase: SecretBytes, argon2: Argon2Params) -> NewRecipient {
        NewRecipient { name: None, source: RecipientSource::Passphrase { passphrase, argon2 } }
    }

    pub fn keyfile(path: impl Into<PathBuf>) -> NewRecipient {
        NewRecipient { name: None, source: RecipientSource::Keyfile(path.into()) }
    }

    pub fn named(mut self, name: impl Into<String>) -> NewRecipient {
        self.name = Some(name.into());
        self
    }
}

/// A recipient as shown to people: nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecipientInfo {
    pub name: String,
    /// `passphrase` or `keyfile`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// For a passphrase: the Argon2id parameters.
    pub detail: String,
}

fn info(r: &Recipient) -> RecipientInfo {
    RecipientInfo {
        name: r.name.clone(),
        kind: r.kind.type_name(),
        detail: match r.kind {
            RecipientKind::Passphrase(a) => format!("argon2id m={} MiB t={} p={}", a.m_kib / 1024, a.t, a.p),
            RecipientKind::Keyfile => String::new(),
        },
    }
}

/// What [`SealedFile::set`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SetOutcome {
    Added,
    Changed,
    /// The value was already this: nothing was written, its envelope is kept.
    Unchanged,
}

/// What [`SealedFile::verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub file_id: String,
    pub cipher: &'static str,
    /// Every value, each opened (into zeroizing memory, then dropped).
    pub values: usize,
    pub recipients: Vec<RecipientInfo>,
}

/// An open sealed file: its document (ciphertext only) and its data key. Values are decrypted one at a time, on
/// request, into [`SecretBytes`]. Changes stay in memory until [`SealedFile::edit`] saves them.
pub struct SealedFile {
    path: PathBuf,
    doc: Document,
    data_key: Key32,
    value_key: Key32,
    mac_key: Key32,
    dirty: bool,
}

impl fmt::Debug for SealedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedFile")
            .field("path", &self.path)
            .field("file_id", &self.doc.meta.file_id)
            .field("values", &self.doc.values.len())
            .field("recipients", &self.doc.meta.recipients.iter().map(|r| &r.name).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn value_aad(file_id: &str, key: &str) -> Aad {
    Aad::new("airlock/sealed-file/value/v1").str(file_id).str(key)
}

impl SealedFile {
    fn with_key(path: &Path, doc: Document, data_key: Key32) -> SealedFile {
        SealedFile {
            path: path.to_path_buf(),
            doc,
            value_key: kdf::subkey(&data_key, labels::SEALED_FILE_VALUE),
            mac_key: kdf::subkey(&data_key, labels::SEALED_FILE_MAC),
            data_key,
            dirty: false,
        }
    }

    fn file(&self) -> String {
        shown(&self.path)
    }

    /// Creates a new sealed file at `path` (its directory must exist) with no values and these recipients (at
    /// least one). Refuses to overwrite anything.
    pub fn create(path: &Path, cipher: Cipher, recipients: Vec<NewRecipient>) -> Result<SealedFile, SealedError> {
        let file = shown(path);
        if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
            return Err(SealedError::Invalid {
                file,
                reason: format!("a sealed file needs 1 to {MAX_RECIPIENTS} recipients"),
            });
        }
        let (dir, _) = dir_and_name(path)?;
        let _lock = DirLock::acquire(&dir, path)?;
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(SealedError::FileExists { file });
        }
        let data_key = Key32::random();
        let file_id: String = random::bytes::<16>().iter().map(|b| format!("{b:02x}")).collect();
        let meta = Meta { file_id, cipher, mac: [0; 32], recipients: Vec::new() };
        let mut sf = SealedFile::with_key(path, Document { meta, values: Default::default() }, data_key);
        for r in recipients {
            sf.add_recipient(r)?;
        }
        sf.save()?;
        Ok(sf)
    }

    /// Opens the sealed file at `path`: parses it, opens its data key with `unlocker`, and checks its MAC. On a MAC
    /// failure the error names every key whose envelope does not open, when there is one.
    pub fn open(path: &Path, unlocker: &Unlocker) -> Result<SealedFile, SealedError> {
        let file = shown(path);
        let text = read_text(path)?;
        let doc = format::parse(&text).map_err(|e| SealedError::Malformed { file: file.clone(), reason: e.0 })?;
        let data_key = unlocker.data_key(&file, &doc)?;
        let sf = SealedFile::with_key(path, doc, data_key);
        sf.check_mac()?;
        Ok(sf)
    }

    /// Locks the file's directory against other writers, opens the file (under the lock, so nothing is lost to a
    /// concurrent writer), applies `change`, and saves the result if anything changed. On an error nothing is
    /// written.
    pub fn edit<T>(
        path: &Path,
        unlocker: &Unlocker,
        change: impl FnOnce(&mut SealedFile) -> Result<T, SealedError>,
    ) -> Result<T, SealedError> {
        let (dir, name) = dir_and_name(path)?;
        let _lock = DirLock::acquire(&dir, path)?;
        remove_stale_temps(&dir, &name);
        let mut sf = SealedFile::open(path, unlocker)?;
        let out = change(&mut sf)?;
        if sf.dirty {
            sf.save()?;
        }
        Ok(out)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file_id(&self) -> &str {
        &self.doc.meta.file_id
    }

    /// Every key path, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.doc.values.keys().cloned().collect()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.doc.values.contains_key(key)
    }

    pub fn recipients(&self) -> Vec<RecipientInfo> {
        self.doc.meta.recipients.iter().map(info).collect()
    }

    /// The value at `key`, decrypted into zeroizing memory.
    pub fn get(&self, key: &str) -> Result<SecretBytes, SealedError> {
        let envelope = self
            .doc
            .values
            .get(key)
            .ok_or_else(|| SealedError::KeyNotFound { file: self.file(), key: key.to_string() })?;
        self.open_value(key, envelope)
    }

    fn open_value(&self, key: &str, envelope: &str) -> Result<SecretBytes, SealedError> {
        let tampered = |reason: &str| SealedError::ValueTampered {
            file: self.file(),
            keys: vec![key.to_string()],
            reason: reason.to_string(),
        };
        let bytes = format::parse_envelope(envelope).map_err(tampered)?;
        aead::open(&self.value_key, &value_aad(&self.doc.meta.file_id, key), &bytes).map_err(|_| {
            tampered("its envelope does not open here: it was altered, or moved from another key or another file")
        })
    }

    fn seal_value(&self, key: &str, value: &[u8]) -> String {
        let cipher = self.doc.meta.cipher;
        let envelope = aead::seal(cipher, &self.value_key, 0, &value_aad(&self.doc.meta.file_id, key), value);
        format::envelope_text(cipher, &envelope)
    }

    fn invalid(&self, reason: String) -> SealedError {
        SealedError::Invalid { file: self.file(), reason }
    }

    /// Stores `value` at `key`. A value equal to the current one changes nothing: its envelope (and so the file's
    /// bytes) stay as they are.
    pub fn set(&mut self, key: &str, value: &SecretBytes) -> Result<SetOutcome, SealedError> {
        check_key(key).map_err(|e| self.invalid(e))?;
        if value.is_empty() {
            return Err(self.invalid(format!("the value for {key} is empty")));
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(self.invalid(format!(
                "the value for {key} is {} bytes; a sealed file holds values of at most {MAX_VALUE_LEN} bytes",
                value.len()
            )));
        }
        if let Some(old) = self.doc.values.get(key) {
            if self.open_value(key, old)?.ct_eq(value.expose()) {
                return Ok(SetOutcome::Unchanged);
            }
        } else {
            // A key path is either a value or a table: `a` and `a.b` cannot both hold values.
            let mut prefix = String::new();
            for part in key.split('.') {
                if !prefix.is_empty() && self.doc.values.contains_key(&prefix) {
                    return Err(self.invalid(format!("{prefix} holds a value, so it cannot hold {key}")));
                }
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(part);
            }
            let under = format!("{key}.");
            if let Some(child) = self.doc.values.keys().find(|k| k.starts_with(&under)) {
                return Err(self.invalid(format!("{key} is a table (it holds {child}), so it cannot hold a value")));
            }
        }
        let outcome = if self.doc.values.contains_key(key) { SetOutcome::Changed } else { SetOutcome::Added };
        let envelope = self.seal_value(key, value.expose());
        self.doc.values.insert(key.to_string(), envelope);
        self.dirty = true;
        Ok(outcome)
    }

    pub fn remove(&mut self, key: &str) -> Result<(), SealedError> {
        if self.doc.values.remove(key).is_none() {
            return Err(SealedError::KeyNotFound { file: self.file(), key: key.to_string() });
        }
        self.dirty = true;
        Ok(())
    }

    /// Opens every value (each into zeroizing memory, dropped at once); the MAC was checked when the file was
    /// opened. An error names every key whose envelope does not open.
    pub fn verify(&self) -> Result<VerifyReport, SealedError> {
        let mut bad = Vec::new();
        for (key, envelope) in &self.doc.values {
            if self.open_value(key, envelope).is_err() {
                bad.push(key.clone());
            }
        }
        if !bad.is_empty() {
            return Err(SealedError::ValueTampered {
                file: self.file(),
                keys: bad,
                reason: "the envelope does not open here: it was altered, or moved from another key or another file"
                    .into(),
            });
        }
        Ok(VerifyReport {
            file_id: self.doc.meta.file_id.clone(),
            cipher: self.doc.meta.cipher.name(),
            values: self.doc.values.len(),
            recipients: self.recipients(),
        })
    }

    /// Adds a recipient for the file's current data key. Values are untouched.
    pub fn add_recipient(&mut self, new: NewRecipient) -> Result<RecipientInfo, SealedError> {
        let recipient = self.make_recipient(new, &self.data_key.clone())?;
        let shown = info(&recipient);
        self.doc.meta.recipients.push(recipient);
        self.doc.meta.recipients.sort_by(|a, b| a.name.cmp(&b.name));
        self.dirty = true;
        Ok(shown)
    }

    fn make_recipient(&self, new: NewRecipient, data_key: &Key32) -> Result<Recipient, SealedError> {
        let meta = &self.doc.meta;
        if meta.recipients.len() >= MAX_RECIPIENTS {
            return Err(self.invalid(format!("a sealed file has at most {MAX_RECIPIENTS} recipients")));
        }
        let taken = |n: &str| meta.recipients.iter().any(|r| r.name == n);
        let name = match &new.name {
            Some(n) => {
                check_recipient_name(n).map_err(|e| self.invalid(e))?;
                if taken(n) {
                    return Err(SealedError::Exists { file: self.file(), what: "recipient", name: n.clone() });
                }
                n.clone()
            }
            None => {
                let base = match &new.source {
                    RecipientSource::Passphrase { .. } => "passphrase".to_string(),
                    RecipientSource::Keyfile(p) => default_keyfile_name(p),
                };
                let mut n = base.clone();
                let mut i = 2;
                while taken(&n) {
                    n = format!("{base}-{i}");
                    i += 1;
                }
                n
            }
        };
        let crypto = |source| SealedError::Crypto { file: self.file(), source };
        let salt = recipient::salt();
        let (kind, kek) = match &new.source {
            RecipientSource::Passphrase { passphrase, argon2 } => {
                format::check_argon2(argon2).map_err(|e| self.invalid(e))?;
                let kind = RecipientKind::Passphrase(*argon2);
                let kek = recipient::derive_kek(&kind, &salt, &KekInput::Passphrase(passphrase)).map_err(crypto)?;
                (kind, kek)
            }
            RecipientSource::Keyfile(path) => {
                if std::fs::symlink_metadata(path).is_err() {
                    airlock_crypto::kek::create_keyfile(path).map_err(crypto)?;
                }
                let ikm = recipient::read_keyfile(path).map_err(crypto)?;
                let kind = RecipientKind::Keyfile;
                (kind, recipient::derive_kek(&kind, &salt, &KekInput::Keyfile(&ikm)).map_err(crypto)?)
            }
        };
        Ok(recipient::wrap(meta.cipher, &meta.file_id, &name, kind, salt, &kek, data_key))
    }

    /// Removes a recipient (not the last). It may have kept the data key: see [`SealedFile::rekey`].
    pub fn remove_recipient(&mut self, name: &str) -> Result<(), SealedError> {
        let recipients = &mut self.doc.meta.recipients;
        let Some(i) = recipients.iter().position(|r| r.name == name) else {
            return Err(SealedError::RecipientNotFound { file: self.file(), name: name.to_string() });
        };
        if recipients.len() == 1 {
            return Err(self.invalid(format!("{name} is the only recipient; add another before removing it")));
        }
        recipients.remove(i);
        self.dirty = true;
        Ok(())
    }

    /// A new data key: every value re-encrypted under it (with `cipher`, if given), and the recipients replaced by
    /// `recipients`. Anyone who kept the old data key can no longer read values written from now on.
    pub fn rekey(&mut self, cipher: Option<Cipher>, recipients: Vec<NewRecipient>) -> Result<(), SealedError> {
        if recipients.is_empty() || recipients.len() > MAX_RECIPIENTS {
            return Err(self.invalid(format!("a sealed file needs 1 to {MAX_RECIPIENTS} recipients")));
        }
        let mut values: Vec<(String, SecretBytes)> = Vec::with_capacity(self.doc.values.len());
        for (k, e) in &self.doc.values {
            values.push((k.clone(), self.open_value(k, e)?));
        }
        let meta = Meta {
            file_id: self.doc.meta.file_id.clone(),
            cipher: cipher.unwrap_or(self.doc.meta.cipher),
            mac: [0; 32],
            recipients: Vec::new(),
        };
        let mut next = SealedFile::with_key(&self.path, Document { meta, values: Default::default() }, Key32::random());
        for r in recipients {
            next.add_recipient(r)?;
        }
        for (k, v) in &values {
            let envelope = next.seal_value(k, v.expose());
            next.doc.values.insert(k.clone(), envelope);
        }
        next.dirty = true;
        *self = next;
        Ok(())
    }

    fn mac(&self) -> [u8; 32] {
        kdf::hmac_sha256(&self.mac_key, format::mac_input(&self.doc.meta, &self.doc.values).as_bytes())
    }

    fn check_mac(&self) -> Result<(), SealedError> {
        let input = format::mac_input(&self.doc.meta, &self.doc.values);
        if kdf::hmac_sha256_verify(&self.mac_key, input.as_bytes(), &self.doc.meta.mac) {
            return Ok(());
        }
        // Name a key if one is to blame.
        self.verify()?;
        Err(SealedError::Tampered {
            file: self.file(),
            reason: "the file's MAC does not match its contents: a value was removed, or replaced by an older \
                     envelope of the same key, or the [airlock] table was edited (every value present opens, so \
                     none was altered in place)"
                .into(),
        })
    }

    fn save(&mut self) -> Result<(), SealedError> {
        self.doc.meta.mac = self.mac();
        write_atomic(&self.path, format::write(&self.doc).as_bytes())?;
        self.dirty = false;
        Ok(())
    }
}

fn default_keyfile_name(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let clean: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' { c } else { '-' })
        .take(40)
        .collect();
    let clean = clean.trim_matches(['-', '.', '_']);
    if clean.is_empty() { "keyfile".into() } else { format!("keyfile-{clean}") }
}

fn io(path: &Path, op: &'static str) -> impl Fn(std::io::Error) -> SealedError {
    let file = shown(path);
    move |source| SealedError::Io { file: file.clone(), op, source }
}

fn dir_and_name(path: &Path) -> Result<(PathBuf, String), SealedError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| SealedError::Invalid { file: shown(path), reason: "not a file name".into() })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// Reads the file: a regular file (a symbolic link to one is followed), not writable by every user, at most
/// [`MAX_FILE_LEN`] bytes of UTF-8.
fn read_text(path: &Path) -> Result<String, SealedError> {
    let file = shown(path);
    let not_found = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            SealedError::FileNotFound { file: file.clone() }
        } else {
            SealedError::Io { file: file.clone(), op: "open", source: e }
        }
    };
    // A FIFO or a device would block or never end: only a regular file is opened.
    if !std::fs::metadata(path).map_err(not_found)?.is_file() {
        return Err(SealedError::Invalid { file, reason: "not a regular file".into() });
    }
    let mut f = File::open(path).map_err(not_found)?;
    let meta = f.metadata().map_err(io(path, "stat"))?;
    if !meta.is_file() {
        return Err(SealedError::Invalid { file, reason: "not a regular file".into() });
    }
    if meta.mode() & 0o002 != 0 {
        return Err(SealedError::Invalid {
            file,
            reason: format!(
                "has mode {:04o}: any user on this machine may write it (and roll it back); refusing it (chmod o-w)",
                meta.mode() & 0o7777
            ),
        });
    }
    if meta.len() > MAX_FILE_LEN {
        return Err(SealedError::Malformed { file, reason: format!("larger than {MAX_FILE_LEN} bytes") });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    Read::by_ref(&mut f).take(MAX_FILE_LEN + 1).read_to_end(&mut bytes).map_err(io(path, "read"))?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(SealedError::Malformed { file, reason: format!("larger than {MAX_FILE_LEN} bytes") });
    }
    String::from_utf8(bytes).map_err(|_| SealedError::Malformed { file, reason: "not UTF-8 text".into() })
}

fn temp_prefix(name: &str) -> String {
    format!(".{name}.airlock-tmp.")
}

/// Replaces `path` with `bytes`: temp file (0600) in the same directory, fsync, rename, fsync the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SealedError> {
    let (dir, name) = dir_and_name(path)?;
    let tmp = dir.join(format!("{}{}.{:08x}", temp_prefix(&name), std::process::id(), random::below(u32::MAX)));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp, "create temp file"))?;
        f.write_all(bytes).map_err(io(&tmp, "write"))?;
        f.sync_all().map_err(io(&tmp, "fsync"))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io(path, "rename into place"))?;
        File::open(&dir).and_then(|d| d.sync_all()).map_err(io(&dir, "fsync directory"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes temp files a killed writer left beside `name`. Only under the lock: no live writer has one then.
fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = temp_prefix(name);
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// An exclusive `flock` on the directory holding a sealed file: no lock file is left in a repository. Released on
/// drop, and by the kernel if the process dies.
struct DirLock {
    _dir: File,
}

impl DirLock {
    fn acquire(dir: &Path, path: &Path) -> Result<DirLock, SealedError> {
        let handle = File::open(dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                SealedError::Invalid {
                    file: shown(path),
                    reason: format!("directory {} does not exist", dir.display()),
                }
            } else {
                SealedError::Io { file: shown(path), op: "open directory", source: e }
            }
        })?;
        let start = Instant::now();
        loop {
            match handle.try_lock() {
                Ok(()) => return Ok(DirLock { _dir: handle }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= LOCK_TIMEOUT {
                        return Err(SealedError::Busy { file: shown(path), waited: LOCK_TIMEOUT });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(SealedError::Io { file: shown(path), op: "lock directory", source: e });
                }
            }
        }
    }
}

/// The [`SecretBackend`] for `file://PATH#KEY`: one sealed file, re-read on every call (so a `git pull` is seen at
/// once), its MAC checked every time before a value is returned. The key-encryption key is kept after the first
/// unlock ([`Unlocker`]), so reads cost a file read, an HMAC and one AEAD, not an Argon2id run.
///
/// `Expect::Version` is [`BackendError::Unsupported`]: a sealed file keeps no versions (git does).
pub struct SealedFileBackend {
    path: PathBuf,
    base_dir: Option<PathBuf>,
    unlocker: Unlocker,
}

impl fmt::Debug for SealedFileBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedFileBackend").field("path", &self.path).field("unlocker", &self.unlocker).finish()
    }
}

impl SealedFileBackend {
    /// Opens the sealed file at `path` with `unlock`, now (so a wrong passphrase or a tampered file is reported
    /// when the backend is configured, not at the first use).
    pub fn open(path: impl AsRef<Path>, unlock: Unlock) -> Result<SealedFileBackend, BackendError> {
        SealedFileBackend::with_unlocker(path, Unlocker::new(unlock))
    }

    /// As [`SealedFileBackend::open`], trying several ways to unlock.
    pub fn with_unlocker(path: impl AsRef<Path>, unlocker: Unlocker) -> Result<SealedFileBackend, BackendError> {
        // Absolute from the start, so that a later change of the working directory changes nothing.
        let path = std::path::absolute(path.as_ref()).map_err(|e| BackendError::Invalid {
            locator: format!("file://{}", path.as_ref().display()),
            reason: format!("cannot resolve the path: {e}"),
        })?;
        SealedFile::open(&path, &unlocker).map_err(|e| to_backend(e, &format!("file://{}", path.display())))?;
        Ok(SealedFileBackend { path, base_dir: None, unlocker })
    }

    /// The directory relative `file://` paths are resolved from (the configuration's; default: the current one).
    pub fn with_base_dir(mut self, dir: impl Into<PathBuf>) -> SealedFileBackend {
        self.base_dir = Some(dir.into());
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key a locator names, if it names this backend's file.
    fn key<'a>(&self, locator: &'a Locator) -> Result<&'a str, BackendError> {
        let Locator::File { path, key } = locator else {
            return Err(BackendError::Invalid {
                locator: locator.to_string(),
                reason: "not a file:// locator (the sealed-file backend reads only file://PATH#KEY)".into(),
            });
        };
        let named = Path::new(path);
        let named = match &self.base_dir {
            Some(base) if named.is_relative() => base.join(named),
            _ => named.to_path_buf(),
        };
        let same =
            named == self.path || matches!((named.canonicalize(), self.path.canonicalize()), (Ok(a), Ok(b)) if a == b);
        if !same {
            return Err(BackendError::Invalid {
                locator: locator.to_string(),
                reason: format!("this backend serves the sealed file {}, not {}", self.path.display(), named.display()),
            });
        }
        check_key(key).map_err(|reason| BackendError::Invalid { locator: locator.to_string(), reason })?;
        Ok(key)
    }

    fn open_file(&self, locator: &Locator) -> Result<SealedFile, BackendError> {
        SealedFile::open(&self.path, &self.unlocker).map_err(|e| to_backend(e, &locator.to_string()))
    }
}

/// A sealed-file error as a backend error, for `locator`.
fn to_backend(e: SealedError, locator: &str) -> BackendError {
    let backend = || BackendKind::File.to_string();
    match e {
        SealedError::FileNotFound { file } => BackendError::NotFound(format!("{locator} (no file {file})")),
        SealedError::KeyNotFound { .. } | SealedError::RecipientNotFound { .. } => {
            BackendError::NotFound(locator.into())
        }
        SealedError::FileExists { .. } | SealedError::Exists { .. } => {
            BackendError::Conflict { locator: locator.into(), reason: e.to_string() }
        }
        SealedError::Unlock { .. } | SealedError::Crypto { .. } => {
            BackendError::Denied { locator: locator.into(), reason: e.to_string() }
        }
        SealedError::ValueTampered { .. }
        | SealedError::Tampered { .. }
        | SealedError::Malformed { .. }
        | SealedError::Invalid { .. } => BackendError::Invalid { locator: locator.into(), reason: e.to_string() },
        SealedError::Busy { .. } | SealedError::Io { .. } => {
            BackendError::Unavailable { backend: backend(), reason: e.to_string() }
        }
    }
}

impl SecretBackend for SealedFileBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::File
    }

    fn read(&self, locator: &Locator) -> Result<Fetched, BackendError> {
        let key = self.key(locator)?;
        let value = self.open_file(locator)?.get(key).map_err(|e| to_backend(e, &locator.to_string()))?;
        Ok(Fetched { value, version: None, fetched_at: SystemTime::now(), stale: false })
    }

    fn write(&self, locator: &Locator, value: &SecretBytes, expect: Expect) -> Result<Option<u64>, BackendError> {
        let key = self.key(locator)?;
        if let Expect::Version(_) = expect {
            return Err(self.unsupported("check-and-set on a version (a sealed file keeps no versions)"));
        }
        SealedFile::edit(&self.path, &self.unlocker, |f| {
            if expect == Expect::Absent && f.contains(key) {
                return Err(SealedError::Exists { file: f.file(), what: "key", name: key.to_string() });
            }
            f.set(key, value)
        })
        .map_err(|e| to_backend(e, &locator.to_string()))?;
        Ok(None)
    }

    /// Key paths equal to `prefix` or under it (`db` lists `db.password`, not `dbx`); an empty prefix lists all.
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        let prefix = prefix.trim_end_matches('.');
        let f = SealedFile::open(&self.path, &self.unlocker)
            .map_err(|e| to_backend(e, &format!("file://{}", self.path.display())))?;
        let under = format!("{prefix}.");
        Ok(f.keys().into_iter().filter(|k| prefix.is_empty() || k == prefix || k.starts_with(&under)).collect())
    }

    fn metadata(&self, locator: &Locator) -> Result<Metadata, BackendError> {
        let key = self.key(locator)?;
        if self.open_file(locator)?.contains(key) {
            Ok(Metadata::default())
        } else {
            Err(BackendError::NotFound(locator.to_string()))
        }
    }

    fn delete(&self, locator: &Locator) -> Result<(), BackendError> {
        let key = self.key(locator)?;
        SealedFile::edit(&self.path, &self.unlocker, |f| f.remove(key)).map_err(|e| to_backend(e, &locator.to_string()))
    }

    /// The provider-format findings for the value (the key path's last part is the name hint).
    fn check(&self, locator: &Locator) -> Result<Vec<Finding>, BackendError> {
        let key = self.key(locator)?;
        let fetched = self.read(locator)?;
        let hint = key.rsplit('.').next().unwrap_or(key);
        Ok(check_value_format(hint, &[], fetched.value.expose()))
    }
}

#[cfg(test)]
mod tests;
