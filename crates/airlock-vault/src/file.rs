//! The vault file on disk, and how it is written so that a crash never loses what was stored.
//!
//! Layout (`vault.airlock`):
//!
//! ```text
//! airlock-vault 1\n
//! <body: one line of JSON>\n
//! sha256=<hex of body> hmac=<base64 HMAC-SHA-256 of body>\n
//! ```
//!
//! Why two digests: the unkeyed SHA-256 lets us tell *damage* (a truncated write, a flipped bit) from a wrong
//! passphrase before any key is derived, and say so precisely. It proves nothing against an attacker, who can
//! recompute it. The HMAC, keyed from the root key, is what detects tampering: added, removed, replayed or
//! swapped records, edited slots or metadata. (Keyed from the root key, not the long-lived derivation seed, so a
//! rekey also takes the power to forge it away from anyone holding an old root key.) Each record is additionally an AEAD envelope bound to
//! (vault id, workspace, name, version, term), so a ciphertext moved between records fails on its own.
//!
//! Writes are whole-file replacements: write a temp file (0600) in the same directory, fsync it, rename it over
//! the old file, fsync the directory. At every instant the path holds either the old or the new file. An exclusive
//! `flock` on `vault.lock` serialises writers (CLI and daemon).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlock_crypto::{Cipher, KekSlot, kdf};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::VaultError;

pub const VAULT_FILE: &str = "vault.airlock";
pub const LOCK_FILE: &str = "vault.lock";
const MAGIC_LINE: &str = "airlock-vault 1";
const TMP_PREFIX: &str = ".vault.airlock.tmp.";
pub const FORMAT: u32 = 1;

/// The JSON body. Everything in it is covered by the HMAC.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    pub format: u32,
    pub vault_id: String,
    /// Unix seconds.
    pub created: u64,
    pub cipher: Cipher,
    /// Incremented by every write.
    pub generation: u64,
    pub keep_versions: u32,
    pub slots: Vec<KekSlot>,
    /// The keyring, sealed under the root key (base64 envelope).
    pub keyring: String,
    pub records: Vec<RecordEntry>,
}

/// One encrypted record. Only its address and write counter are in the clear.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RecordEntry {
    pub workspace: String,
    pub name: String,
    /// Incremented every time this record is rewritten; part of its AAD.
    pub version: u64,
    /// Base64 AEAD envelope (its header names the keyring term).
    pub envelope: String,
}

impl RecordEntry {
    /// Whether this record is the one addressed by `id`.
    pub fn is(&self, id: &crate::SecretId) -> bool {
        self.workspace == id.workspace && self.name == id.name
    }
}

/// A parsed file whose checksum matched. Its HMAC is checked later, once the keys are known.
pub struct ParsedFile {
    pub body: Body,
    pub body_bytes: Vec<u8>,
    pub hmac: Vec<u8>,
}

pub fn encode(body: &Body, mac_key: &airlock_crypto::Key32) -> Vec<u8> {
    let json = serde_json::to_vec(body).expect("the vault body always serialises");
    let sha = kdf::sha256(&json);
    let mac = kdf::hmac_sha256(mac_key, &json);
    let mut out = Vec::with_capacity(json.len() + 160);
    out.extend_from_slice(MAGIC_LINE.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&json);
    out.push(b'\n');
    out.extend_from_slice(format!("sha256={} hmac={}\n", hex(&sha), B64.encode(mac)).as_bytes());
    out
}

pub fn decode(path: &Path, bytes: &[u8]) -> Result<ParsedFile, VaultError> {
    let corrupt = |reason: &str| VaultError::Corrupt { path: path.to_path_buf(), reason: reason.to_string() };
    let truncated = || VaultError::Truncated { path: path.to_path_buf() };
    if bytes.is_empty() {
        return Err(truncated());
    }
    let Some(rest) = bytes.strip_prefix(MAGIC_LINE.as_bytes()).and_then(|r| r.strip_prefix(b"\n")) else {
        if MAGIC_LINE.as_bytes().starts_with(bytes) {
            return Err(truncated());
        }
        if bytes.starts_with(b"airlock-vault ") {
            return Err(VaultError::UnsupportedFormat { path: path.to_path_buf() });
        }
        return Err(VaultError::NotAVault { path: path.to_path_buf() });
    };
    // Body and trailer are the last two lines; a file cut short lacks the trailer or its final newline.
    let Some(rest) = rest.strip_suffix(b"\n") else {
        return Err(truncated());
    };
    let Some(split) = rest.iter().rposition(|b| *b == b'\n') else {
        return Err(truncated());
    };
    let (body_bytes, trailer) = (&rest[..split], &rest[split + 1..]);
    let trailer = std::str::from_utf8(trailer).map_err(|_| corrupt("trailer is not text"))?;
    let (sha_hex, mac_b64) = trailer
        .strip_prefix("sha256=")
        .and_then(|t| t.split_once(" hmac="))
        .ok_or_else(|| if trailer.len() < 20 { truncated() } else { corrupt("trailer is malformed") })?;
    if !crate::ct_eq_str(sha_hex, &hex(&kdf::sha256(body_bytes))) {
        return Err(corrupt("checksum mismatch: the file was damaged (bit flip, partial write or edit)"));
    }
    let hmac = B64.decode(mac_b64).map_err(|_| corrupt("HMAC is not base64"))?;
    let body: Body =
        serde_json::from_slice(body_bytes).map_err(|e| corrupt(&format!("body is not a valid vault: {e}")))?;
    if body.format != FORMAT {
        return Err(VaultError::UnsupportedFormat { path: path.to_path_buf() });
    }
    Ok(ParsedFile { body, body_bytes: body_bytes.to_vec(), hmac })
}

fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

fn io_err(path: &Path, op: &'static str) -> impl Fn(std::io::Error) -> VaultError {
    let path = path.to_path_buf();
    move |source| VaultError::Io { path: path.clone(), op, source }
}

/// Creates `dir` (mode 0700) if missing, and refuses one that other users can write to.
pub fn ensure_home(dir: &Path) -> Result<(), VaultError> {
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err(dir, "create directory"))?;
    }
    check_home(dir)
}

/// The home directory must not be writable by group or others: they could swap the vault file.
pub fn check_home(dir: &Path) -> Result<(), VaultError> {
    let meta = std::fs::metadata(dir).map_err(io_err(dir, "stat directory"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(VaultError::InsecurePermissions {
            path: dir.to_path_buf(),
            mode,
            expected: "no write access for group or others (chmod 700)",
        });
    }
    Ok(())
}

/// Reads the vault file, refusing one that other users can read or write.
pub fn read(path: &Path) -> Result<Vec<u8>, VaultError> {
    let f = File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            VaultError::NotInitialized { path: path.to_path_buf() }
        } else {
            VaultError::Io { path: path.to_path_buf(), op: "open", source: e }
        }
    })?;
    let mode = f.metadata().map_err(io_err(path, "stat"))?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(VaultError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
            expected: "0600: only its owner may read or write it (chmod 600)",
        });
    }
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut &f, &mut buf).map_err(io_err(path, "read"))?;
    Ok(buf)
}

/// Atomically replaces `path` with `bytes`: temp file (0600) + fsync + rename + directory fsync.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let dir = path.parent().expect("vault path has a parent");
    let tmp = dir.join(format!("{TMP_PREFIX}{}.{:08x}", std::process::id(), airlock_crypto::random::below(u32::MAX)));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp, "create temp file"))?;
        f.write_all(bytes).map_err(io_err(&tmp, "write"))?;
        f.sync_all().map_err(io_err(&tmp, "fsync"))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io_err(path, "rename into place"))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir, "fsync directory"))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes temp files left by writers that died mid-write. Call only while holding the lock.
pub fn remove_stale_temps(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// An exclusive advisory lock on `vault.lock`, released on drop (and by the kernel if the process dies).
pub struct WriteLock {
    _file: File,
}

impl WriteLock {
    pub fn acquire(dir: &Path, timeout: Duration) -> Result<Self, VaultError> {
        let path: PathBuf = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path, "open lock file"))?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WriteLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= timeout {
                        return Err(VaultError::Busy { waited: timeout });
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(VaultError::Io { path, op: "lock", source: e }),
            }
        }
    }
}
