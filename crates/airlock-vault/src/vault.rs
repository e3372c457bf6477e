//! The vault: open, unlock, read and change secrets, rotate and rekey, lock.
//!
//! Every change is a transaction: take the write lock, re-read the file and check its HMAC, re-open the keyring
//! from it, apply the change to copies, write the new file atomically, and only then adopt the copies. If any
//! step fails, the in-memory state and the file are both as they were.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlock_crypto::aead::EnvelopeHeader;
use airlock_crypto::kdf::{self, Argon2Params, labels};
use airlock_crypto::kek::SlotParams;
use airlock_crypto::{Aad, Cipher, CryptoError, KekInputs, KekSlot, KekSpec, Key32, Keyring, SecretBytes, TermInfo};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::file::{self, Body, RecordEntry, WriteLock};
use crate::model::*;
use crate::{VaultError, now_unix};

/// Options for [`Vault::init`].
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub cipher: Cipher,
    pub argon2: Argon2Params,
    pub keep_versions: u32,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions { cipher: Cipher::default(), argon2: Argon2Params::default(), keep_versions: DEFAULT_KEEP_VERSIONS }
    }
}

/// What `status` shows. Nothing in it is secret.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub path: Option<PathBuf>,
    pub vault_id: String,
    pub created: u64,
    pub cipher: &'static str,
    pub generation: u64,
    pub secrets: usize,
    pub keep_versions: u32,
    pub slots: Vec<SlotInfo>,
    pub unlocked: bool,
    /// Keyring terms; only known once unlocked.
    pub terms: Option<Vec<TermStatus>>,
}

/// What [`Vault::rekey`] did.
#[derive(Clone, Debug, Serialize)]
pub struct RekeyReport {
    /// The vault's slots now.
    pub slots: Vec<SlotInfo>,
    /// Old OS-keyring entries that could not be deleted (the old key still exists there; delete it by hand).
    pub cleanup_errors: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SlotInfo {
    pub id: u32,
    pub kind: &'static str,
    pub description: String,
    pub created: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TermStatus {
    pub id: u32,
    pub created: u64,
    pub uses: u64,
    pub active: bool,
}

impl From<TermInfo> for TermStatus {
    fn from(t: TermInfo) -> Self {
        TermStatus { id: t.id, created: t.created, uses: t.uses, active: t.active }
    }
}

enum Storage {
    File { dir: PathBuf, path: PathBuf },
    Memory,
}

struct Unlocked {
    root: Key32,
    keyring: Keyring,
    expires: Option<Instant>,
    cache: HashMap<SecretId, Secret>,
}

/// An Airlock vault. Created locked by [`Vault::open`]; [`Vault::unlock`] makes its secrets readable.
pub struct Vault {
    storage: Storage,
    body: Body,
    /// Body bytes and HMAC as read, checked at unlock (the key is needed to check them).
    pending_mac: Option<(Vec<u8>, Vec<u8>)>,
    unlocked: Option<Unlocked>,
    lock_timeout: Duration,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("vault_id", &self.body.vault_id)
            .field("unlocked", &self.unlocked.is_some())
            .finish()
    }
}

struct Tx<'a> {
    body: &'a mut Body,
    keyring: &'a mut Keyring,
    new_root: Option<Key32>,
}

impl Vault {
    /// The vault file inside `home`.
    pub fn file_path(home: &Path) -> PathBuf {
        home.join(file::VAULT_FILE)
    }

    /// Creates a new vault in `home` with one KEK slot per spec, and returns it unlocked.
    pub fn init(
        home: &Path,
        specs: &[KekSpec],
        opts: &InitOptions,
        inputs: &mut KekInputs<'_>,
    ) -> Result<Vault, VaultError> {
        if specs.is_empty() {
            return Err(VaultError::NoKekSlots);
        }
        if opts.keep_versions == 0 || opts.keep_versions > MAX_KEEP_VERSIONS {
            return Err(VaultError::InvalidOption(format!("keep-versions must be 1-{MAX_KEEP_VERSIONS}")));
        }
        file::ensure_home(home)?;
        let _lock = WriteLock::acquire(home, Duration::from_secs(30))?;
        let path = Self::file_path(home);
        if path.exists() {
            return Err(VaultError::AlreadyInitialized { path });
        }
        file::remove_stale_temps(home);
        let vault_id = hex_id();
        let root = Key32::random();
        let keyring = Keyring::new(opts.cipher);
        let mut slots = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let p = SlotParams { id: i as u32 + 1, vault_id: &vault_id, cipher: opts.cipher, argon2: opts.argon2 };
            match KekSlot::create(spec, &p, &root, inputs) {
                Ok(s) => slots.push(s),
                Err(e) => {
                    destroy_all(&slots);
                    return Err(e.into());
                }
            }
        }
        let body = Body {
            format: file::FORMAT,
            vault_id: vault_id.clone(),
            created: now_unix(),
            cipher: opts.cipher,
            generation: 1,
            keep_versions: opts.keep_versions,
            slots,
            keyring: B64.encode(keyring.seal_under(&root, &vault_id)),
            records: Vec::new(),
        };
        if let Err(e) = file::write_atomic(&path, &file::encode(&body, &file_mac_key(&root))) {
            destroy_all(&body.slots);
            return Err(e);
        }
        Ok(Vault {
            storage: Storage::File { dir: home.to_path_buf(), path },
            body,
            pending_mac: None,
            unlocked: Some(Unlocked { root, keyring, expires: None, cache: HashMap::new() }),
            lock_timeout: Duration::from_secs(30),
        })
    }

    /// A memory-only vault: nothing is ever written to disk, and everything is gone when it drops.
    pub fn ephemeral(cipher: Cipher, keep_versions: u32) -> Vault {
        let vault_id = hex_id();
        let root = Key32::random();
        let keyring = Keyring::new(cipher);
        let body = Body {
            format: file::FORMAT,
            vault_id: vault_id.clone(),
            created: now_unix(),
            cipher,
            generation: 1,
            keep_versions: keep_versions.clamp(1, MAX_KEEP_VERSIONS),
            slots: Vec::new(),
            keyring: B64.encode(keyring.seal_under(&root, &vault_id)),
            records: Vec::new(),
        };
        Vault {
            storage: Storage::Memory,
            body,
            pending_mac: None,
            unlocked: Some(Unlocked { root, keyring, expires: None, cache: HashMap::new() }),
            lock_timeout: Duration::from_secs(30),
        }
    }

    /// Opens the vault in `home`, locked. Damage (truncation, bit flips) is reported here; tampering that only
    /// the key can reveal is reported by [`Vault::unlock`].
    pub fn open(home: &Path) -> Result<Vault, VaultError> {
        let path = Self::file_path(home);
        if !path.exists() {
            return Err(VaultError::NotInitialized { path });
        }
        file::check_home(home)?;
        let parsed = file::decode(&path, &file::read(&path)?)?;
        check_structure(&path, &parsed.body)?;
        Ok(Vault {
            storage: Storage::File { dir: home.to_path_buf(), path },
            body: parsed.body,
            pending_mac: Some((parsed.body_bytes, parsed.hmac)),
            unlocked: None,
            lock_timeout: Duration::from_secs(30),
        })
    }

    /// How long writers wait for another process's write lock before giving up with [`VaultError::Busy`].
    pub fn set_lock_timeout(&mut self, t: Duration) {
        self.lock_timeout = t;
    }

    pub fn is_ephemeral(&self) -> bool {
        matches!(self.storage, Storage::Memory)
    }

    pub fn vault_id(&self) -> &str {
        &self.body.vault_id
    }

    /// Checks the caller's credentials and unlocks: tries the slots that need no prompt first (env, key file, OS
    /// keyring), then passphrase slots, and returns the id of the slot that opened. Every call re-reads the file
    /// and checks credentials afresh, even on a vault that is already unlocked: a long-lived holder must never
    /// accept a slot that a rekey has since revoked, or serve a secret removed since it last looked. A failed call
    /// leaves the vault locked. After `ttl`, the vault locks itself and its keys and cached values are dropped
    /// (zeroized) at the next access or [`Vault::expire_if_due`].
    pub fn unlock(&mut self, inputs: &mut KekInputs<'_>, ttl: Option<Duration>) -> Result<u32, VaultError> {
        match &self.storage {
            // A memory-only vault has no slots: while unlocked there is nothing to check, and once locked its keys
            // are gone for good.
            Storage::Memory if self.unlocked.is_some() => return Ok(0),
            Storage::Memory => return Err(VaultError::Ephemeral("unlocking again after lock")),
            Storage::File { path, .. } => {
                self.unlocked = None;
                let path = path.clone();
                let parsed = file::decode(&path, &file::read(&path)?)?;
                check_structure(&path, &parsed.body)?;
                self.body = parsed.body;
                self.pending_mac = Some((parsed.body_bytes, parsed.hmac));
            }
        }
        let mut order: Vec<&KekSlot> = self.body.slots.iter().collect();
        order.sort_by_key(|s| (matches!(s.source, airlock_crypto::KekSource::Passphrase { .. }), s.id));
        let mut attempts = Vec::new();
        let (mut wrong_passphrase, mut other_failure) = (false, false);
        let mut insecure = None;
        let mut opened = None;
        for slot in order {
            if !slot.is_available(inputs) {
                attempts.push((slot.source.describe(), "not available here".to_string()));
                continue;
            }
            match slot.unwrap_root(&self.body.vault_id, inputs) {
                Ok(root) => {
                    opened = Some((slot.id, root));
                    break;
                }
                Err(e) => {
                    attempts.push((slot.source.describe(), e.to_string()));
                    match e {
                        CryptoError::WrongPassphrase => wrong_passphrase = true,
                        CryptoError::KeyfileInsecure { .. } => insecure = insecure.or(Some(e)),
                        _ => other_failure = true,
                    }
                }
            }
        }
        let Some((slot_id, root)) = opened else {
            // The common case deserves the plain message: a passphrase was tried and nothing else could be.
            if wrong_passphrase && !other_failure && insecure.is_none() {
                return Err(VaultError::WrongPassphrase);
            }
            // A key or passphrase file others can read is a problem to fix, not a wrong key: say exactly that.
            if let Some(e) = insecure
                && !wrong_passphrase
                && !other_failure
            {
                return Err(e.into());
            }
            return Err(VaultError::NoSlotOpened { attempts });
        };
        let keyring = self.open_keyring(&root, &self.body)?;
        if let Some((bytes, mac)) = self.pending_mac.take()
            && !kdf::hmac_sha256_verify(&file_mac_key(&root), &bytes, &mac)
        {
            self.pending_mac = Some((bytes, mac));
            return Err(self.diagnose_tamper(&keyring));
        }
        self.unlocked =
            Some(Unlocked { root, keyring, expires: ttl.map(|t| Instant::now() + t), cache: HashMap::new() });
        Ok(slot_id)
    }

    /// Forgets all keys and cached values (they are zeroized as they drop).
    pub fn lock(&mut self) {
        self.unlocked = None;
    }

    /// Locks now if the time-to-live has passed. Long-lived holders call this on a timer, so expired keys do not
    /// wait in memory for the next access.
    pub fn expire_if_due(&mut self) {
        let _ = self.unlocked_mut();
    }

    pub fn is_unlocked(&mut self) -> bool {
        self.unlocked_mut().is_ok()
    }

    fn unlocked_mut(&mut self) -> Result<&mut Unlocked, VaultError> {
        match &self.unlocked {
            None => Err(VaultError::Locked),
            Some(u) if u.expires.is_some_and(|e| Instant::now() >= e) => {
                self.unlocked = None;
                Err(VaultError::Expired)
            }
            Some(_) => Ok(self.unlocked.as_mut().expect("checked")),
        }
    }

    fn open_keyring(&self, root: &Key32, body: &Body) -> Result<Keyring, VaultError> {
        let env = B64.decode(&body.keyring).map_err(|_| VaultError::Tampered("the keyring is not base64".into()))?;
        Keyring::open_under(root, &body.vault_id, &env).map_err(|e| match e {
            CryptoError::Authentication => {
                VaultError::Tampered("the keyring does not authenticate under the unlocked root key".into())
            }
            other => VaultError::Tampered(format!("the keyring is unreadable: {other}")),
        })
    }

    /// The HMAC failed: find out what was changed, as precisely as the keys allow.
    fn diagnose_tamper(&self, keyring: &Keyring) -> VaultError {
        for r in &self.body.records {
            if let Err(e) = decrypt_record(&self.body.vault_id, keyring, r) {
                return e;
            }
        }
        VaultError::Tampered(
            "the file's HMAC does not match: records were added, removed or replayed, or metadata was edited, \
             by someone without the vault key"
                .into(),
        )
    }

    /// Public facts about the vault. Works while locked.
    pub fn status(&mut self) -> Status {
        let terms = self.unlocked_mut().ok().map(|u| u.keyring.terms().into_iter().map(TermStatus::from).collect());
        Status {
            path: match &self.storage {
                Storage::File { path, .. } => Some(path.clone()),
                Storage::Memory => None,
            },
            vault_id: self.body.vault_id.clone(),
            created: self.body.created,
            cipher: self.body.cipher.name(),
            generation: self.body.generation,
            secrets: self.body.records.len(),
            keep_versions: self.body.keep_versions,
            slots: self
                .body
                .slots
                .iter()
                .map(|s| SlotInfo {
                    id: s.id,
                    kind: s.source.kind(),
                    description: s.source.describe(),
                    created: s.created,
                })
                .collect(),
            unlocked: terms.is_some(),
            terms,
        }
    }

    /// Metadata of every secret, sorted by workspace then name.
    pub fn list(&mut self) -> Result<Vec<SecretInfo>, VaultError> {
        self.unlocked_mut()?;
        let ids: Vec<SecretId> = self
            .body
            .records
            .iter()
            .map(|r| SecretId { workspace: r.workspace.clone(), name: r.name.clone() })
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.info(&id)?);
        }
        out.sort_by(|a, b| (&a.workspace, &a.name).cmp(&(&b.workspace, &b.name)));
        Ok(out)
    }

    /// Metadata of one secret.
    pub fn info(&mut self, id: &SecretId) -> Result<SecretInfo, VaultError> {
        let keep = self.body.keep_versions;
        let entry = self.entry(id)?.clone();
        let secret = self.cached(id)?;
        Ok(make_info(&entry, secret, keep))
    }

    /// The current value of a secret. The reference lives in the unlocked cache; do not keep copies.
    pub fn resolve(&mut self, id: &SecretId) -> Result<&SecretBytes, VaultError> {
        Ok(&self.cached(id)?.current().value)
    }

    /// A kept older value (`version` as listed by [`Vault::info`]).
    pub fn resolve_version(&mut self, id: &SecretId, version: u32) -> Result<&SecretBytes, VaultError> {
        let s = self.cached(id)?;
        s.versions
            .iter()
            .find(|v| v.version == version)
            .map(|v| &v.value)
            .ok_or_else(|| VaultError::VersionNotFound { id: id.to_string(), version })
    }

    fn entry(&self, id: &SecretId) -> Result<&RecordEntry, VaultError> {
        self.body.records.iter().find(|r| r.is(id)).ok_or_else(|| VaultError::NotFound(id.to_string()))
    }

    /// The decrypted secret, from the cache or (first time) by decrypting its record. The warm path is a hash
    /// lookup: no copies, no scan of the records.
    fn cached(&mut self, id: &SecretId) -> Result<&Secret, VaultError> {
        self.unlocked_mut()?;
        let u = self.unlocked.as_mut().expect("checked by unlocked_mut");
        if !u.cache.contains_key(id) {
            let entry =
                self.body.records.iter().find(|r| r.is(id)).ok_or_else(|| VaultError::NotFound(id.to_string()))?;
            let s = decrypt_record(&self.body.vault_id, &u.keyring, entry)?;
            u.cache.insert(id.clone(), s);
        }
        Ok(&u.cache[id])
    }

    /// Stores a new secret. Fails if the name is taken in that workspace.
    pub fn set(&mut self, id: &SecretId, opts: NewSecret, value: SecretBytes) -> Result<SecretInfo, VaultError> {
        check_value(&value)?;
        let meta = build_meta(opts)?;
        check_injectable(&meta.injection, &value)?;
        self.mutate(|tx| {
            if tx.body.records.iter().any(|r| r.is(id)) {
                return Err(VaultError::AlreadyExists(id.to_string()));
            }
            let secret = Secret { meta, versions: vec![ValueVersion { version: 1, created: now_unix(), value }] };
            let entry = encrypt_record(&tx.body.vault_id, tx.keyring, id, 1, &secret);
            let info = make_info(&entry, &secret, tx.body.keep_versions);
            tx.body.records.push(entry);
            Ok(info)
        })
    }

    /// Adds a new value version; older versions beyond the keep limit are dropped.
    pub fn rotate(&mut self, id: &SecretId, value: SecretBytes) -> Result<SecretInfo, VaultError> {
        check_value(&value)?;
        self.update(id, |secret, keep| {
            check_injectable(&secret.meta.injection, &value)?;
            let next = secret.current().version + 1;
            secret.versions.push(ValueVersion { version: next, created: now_unix(), value });
            let keep = secret.meta.keep_versions.unwrap_or(keep).max(1) as usize;
            let excess = secret.versions.len().saturating_sub(keep);
            secret.versions.drain(..excess);
            secret.meta.rotated = Some(now_unix());
            Ok(())
        })
    }

    /// Pins a secret to one more host.
    pub fn pin(&mut self, id: &SecretId, host: &str) -> Result<SecretInfo, VaultError> {
        let host = normalize_host(host)?;
        self.update(id, |secret, _| {
            if !secret.meta.hosts.contains(&host) {
                secret.meta.hosts.push(host);
            }
            Ok(())
        })
    }

    /// Removes a pinned host.
    pub fn unpin(&mut self, id: &SecretId, host: &str) -> Result<SecretInfo, VaultError> {
        let host = normalize_host(host)?;
        self.update(id, |secret, _| {
            let before = secret.meta.hosts.len();
            secret.meta.hosts.retain(|h| h != &host);
            if secret.meta.hosts.len() == before {
                return Err(VaultError::InvalidHost { reason: "that host is not pinned for this secret".into() });
            }
            Ok(())
        })
    }

    /// Deletes a secret and all its versions.
    pub fn remove(&mut self, id: &SecretId) -> Result<(), VaultError> {
        self.mutate(|tx| {
            let before = tx.body.records.len();
            tx.body.records.retain(|r| !r.is(id));
            if tx.body.records.len() == before {
                return Err(VaultError::NotFound(id.to_string()));
            }
            Ok(())
        })
    }

    fn update(
        &mut self,
        id: &SecretId,
        f: impl FnOnce(&mut Secret, u32) -> Result<(), VaultError>,
    ) -> Result<SecretInfo, VaultError> {
        self.mutate(|tx| {
            let idx =
                tx.body.records.iter().position(|r| r.is(id)).ok_or_else(|| VaultError::NotFound(id.to_string()))?;
            let old = &tx.body.records[idx];
            let mut secret = decrypt_record(&tx.body.vault_id, tx.keyring, old)?;
            f(&mut secret, tx.body.keep_versions)?;
            let entry = encrypt_record(&tx.body.vault_id, tx.keyring, id, old.version + 1, &secret);
            let info = make_info(&entry, &secret, tx.body.keep_versions);
            tx.body.records[idx] = entry;
            Ok(info)
        })
    }

    /// Adds a keyring term for new writes. With `rewrap`, also re-encrypts every record under it and drops the
    /// terms nothing uses any more. Returns the new term.
    pub fn rotate_key(&mut self, rewrap: bool) -> Result<u32, VaultError> {
        self.mutate(|tx| {
            let term = tx.keyring.rotate();
            if rewrap {
                for i in 0..tx.body.records.len() {
                    let r = tx.body.records[i].clone();
                    let secret = decrypt_record(&tx.body.vault_id, tx.keyring, &r)?;
                    let id = SecretId { workspace: r.workspace, name: r.name };
                    tx.body.records[i] = encrypt_record(&tx.body.vault_id, tx.keyring, &id, r.version + 1, &secret);
                }
                tx.keyring.retain_terms(|t| t == term);
            }
            Ok(term)
        })
    }

    /// Replaces every KEK slot with new ones and the root key with a new one, revoking the old slots: their keys
    /// no longer open the vault, and (the file MAC being keyed from the root key) no longer let anyone forge it.
    /// Data is not re-encrypted; follow with `rotate_key(true)` to also retire the data keys. Old OS-keyring
    /// entries are deleted once the new file is in place; any that could not be are listed in the report.
    pub fn rekey(
        &mut self,
        specs: &[KekSpec],
        argon2: Argon2Params,
        inputs: &mut KekInputs<'_>,
    ) -> Result<RekeyReport, VaultError> {
        if specs.is_empty() {
            return Err(VaultError::NoKekSlots);
        }
        if self.is_ephemeral() {
            return Err(VaultError::Ephemeral("rekey"));
        }
        self.unlocked_mut()?;
        let new_root = Key32::random();
        let first = self.body.slots.iter().map(|s| s.id).max().unwrap_or(0) + 1;
        let mut slots = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let p =
                SlotParams { id: first + i as u32, vault_id: &self.body.vault_id, cipher: self.body.cipher, argon2 };
            match KekSlot::create(spec, &p, &new_root, inputs) {
                Ok(s) => slots.push(s),
                Err(e) => {
                    destroy_all(&slots);
                    return Err(e.into());
                }
            }
        }
        let old = self.body.slots.clone();
        let new_slots = slots.clone();
        let r = self.mutate(move |tx| {
            tx.body.slots = slots;
            tx.new_root = Some(new_root);
            Ok(())
        });
        match r {
            Ok(()) => {
                let cleanup_errors = destroy_all(&old);
                Ok(RekeyReport { slots: self.status().slots, cleanup_errors })
            }
            Err(e) => {
                // Delete the new slots' OS-keyring entries only if the file on disk does not use them: a write can
                // fail after its rename (say, at the directory fsync), and then the new file depends on them.
                let on_disk = match &self.storage {
                    Storage::File { path, .. } => file::read(path).ok().and_then(|b| file::decode(path, &b).ok()),
                    Storage::Memory => None,
                };
                if !on_disk.is_some_and(|p| p.body.slots == new_slots) {
                    destroy_all(&new_slots);
                }
                Err(e)
            }
        }
    }

    /// A purpose-bound key derived from the vault's seed (e.g. [`labels::AUDIT_MAC`]). Stable across rotate and rekey.
    pub fn subkey(&mut self, label: &[u8]) -> Result<Key32, VaultError> {
        Ok(self.unlocked_mut()?.keyring.subkey(label))
    }

    /// Re-reads the file if another process changed it. Long-lived holders (the daemon) call this.
    pub fn refresh(&mut self) -> Result<(), VaultError> {
        if let Storage::File { path, .. } = &self.storage {
            let path = path.clone();
            let (body, keyring) = self.reload(&path)?;
            let current = self.body.generation;
            let u = self.unlocked_mut()?;
            if body.generation != current {
                u.keyring = keyring;
                u.cache.clear();
                self.body = body;
            }
        }
        Ok(())
    }

    /// Reads and fully verifies the file with the keys we hold.
    fn reload(&mut self, path: &Path) -> Result<(Body, Keyring), VaultError> {
        let parsed = file::decode(path, &file::read(path)?)?;
        check_structure(path, &parsed.body)?;
        let root = self.unlocked_mut()?.root.clone();
        // Our root key no longer opening the keyring means a rekey happened (or the keyring was altered, which
        // the next unlock reports precisely). Either way these keys are no longer the vault's: lock, so a
        // long-lived holder stops serving secrets under credentials that were revoked.
        let Ok(keyring) = self.open_keyring(&root, &parsed.body) else {
            self.unlocked = None;
            return Err(VaultError::Rekeyed);
        };
        if !kdf::hmac_sha256_verify(&file_mac_key(&root), &parsed.body_bytes, &parsed.hmac) {
            return Err(VaultError::Tampered(
                "the file's HMAC does not match (changed by someone without the vault key)".into(),
            ));
        }
        Ok((parsed.body, keyring))
    }

    fn mutate<T>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, VaultError>) -> Result<T, VaultError> {
        self.unlocked_mut()?;
        let (_lock, mut body, mut keyring) = match &self.storage {
            Storage::File { dir, path } => {
                let (dir, path) = (dir.clone(), path.clone());
                let lock = WriteLock::acquire(&dir, self.lock_timeout)?;
                file::remove_stale_temps(&dir);
                let (body, keyring) = self.reload(&path)?;
                (Some(lock), body, keyring)
            }
            Storage::Memory => {
                let root = self.unlocked_mut()?.root.clone();
                let keyring = self.open_keyring(&root, &self.body)?;
                (None, self.body.clone(), keyring)
            }
        };
        let mut tx = Tx { body: &mut body, keyring: &mut keyring, new_root: None };
        let out = f(&mut tx)?;
        let new_root = tx.new_root.take();
        let file_path = match &self.storage {
            Storage::File { path, .. } => Some(path.clone()),
            Storage::Memory => None,
        };
        let u = self.unlocked_mut()?;
        let root = new_root.unwrap_or_else(|| u.root.clone());
        body.generation += 1;
        body.keyring = B64.encode(keyring.seal_under(&root, &body.vault_id));
        if let Some(path) = file_path {
            file::write_atomic(&path, &file::encode(&body, &file_mac_key(&root)))?;
        }
        u.root = root;
        u.keyring = keyring;
        u.cache.clear();
        self.body = body;
        Ok(out)
    }
}

/// Deletes what the slots keep outside the file (OS-keyring entries). Returns what could not be deleted.
fn destroy_all(slots: &[KekSlot]) -> Vec<String> {
    slots
        .iter()
        .filter_map(|s| s.destroy_external().err().map(|e| format!("slot {} ({}): {e}", s.id, s.source.describe())))
        .collect()
}

/// The key of the file-wide HMAC. Derived from the root key, so that only current KEK holders can produce it:
/// rekeying revokes a leaked old root key's power to forge the file.
fn file_mac_key(root: &Key32) -> Key32 {
    kdf::subkey(root, labels::VAULT_FILE_MAC)
}

fn hex_id() -> String {
    airlock_crypto::random::bytes::<16>().iter().map(|b| format!("{b:02x}")).collect()
}

/// Structural checks that need no key: unique record addresses with valid names.
fn check_structure(path: &Path, body: &Body) -> Result<(), VaultError> {
    let mut seen = std::collections::HashSet::new();
    for r in &body.records {
        SecretId::new(&r.workspace, &r.name)
            .map_err(|e| VaultError::Corrupt { path: path.to_path_buf(), reason: format!("record address: {e}") })?;
        if !seen.insert((&r.workspace, &r.name)) {
            return Err(VaultError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("duplicate record {}/{}", r.workspace, r.name),
            });
        }
    }
    if body.slots.is_empty() {
        return Err(VaultError::Corrupt { path: path.to_path_buf(), reason: "no KEK slots".into() });
    }
    Ok(())
}

impl NewSecret {
    /// Checks hosts, recipe, group, tags and limits without storing anything, so a caller can refuse bad options
    /// before asking for the value.
    pub fn validate(&self) -> Result<(), VaultError> {
        build_meta(self.clone()).map(|_| ())
    }
}

/// A value a header recipe will inject must not carry control characters: CR or LF there would split the header
/// and let the value smuggle its own headers or requests.
fn check_injectable(injection: &Option<Injection>, value: &SecretBytes) -> Result<(), VaultError> {
    if matches!(injection, Some(Injection::Header { .. })) && value.expose().iter().any(|b| *b < 0x20 || *b == 0x7f) {
        return Err(VaultError::InvalidInjection(
            "the value contains control characters (such as CR or LF) and cannot be sent in an HTTP header".into(),
        ));
    }
    Ok(())
}

fn build_meta(opts: NewSecret) -> Result<SecretMeta, VaultError> {
    let mut hosts = Vec::new();
    for h in &opts.hosts {
        let h = normalize_host(h)?;
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    if let Some(g) = &opts.group {
        SecretId::new(g, "x").map_err(|_| VaultError::InvalidOption("a group must be a simple name".into()))?;
    }
    for t in &opts.tags {
        if t.is_empty() || t.len() > 128 || t.chars().any(|c| c.is_control()) {
            return Err(VaultError::InvalidOption("a tag must be 1-128 printable characters".into()));
        }
    }
    if let Some(k) = opts.keep_versions
        && (k == 0 || k > MAX_KEEP_VERSIONS)
    {
        return Err(VaultError::InvalidOption(format!("keep-versions must be 1-{MAX_KEEP_VERSIONS}")));
    }
    Ok(SecretMeta {
        group: opts.group,
        created: now_unix(),
        rotated: None,
        hosts,
        injection: opts.injection,
        exposure: opts.exposure,
        tags: opts.tags,
        keep_versions: opts.keep_versions,
    })
}

fn make_info(entry: &RecordEntry, s: &Secret, vault_keep: u32) -> SecretInfo {
    let term =
        B64.decode(&entry.envelope).ok().and_then(|e| EnvelopeHeader::parse(&e).ok()).map(|h| h.key_id).unwrap_or(0);
    SecretInfo {
        workspace: entry.workspace.clone(),
        name: entry.name.clone(),
        group: s.meta.group.clone(),
        created: s.meta.created,
        rotated: s.meta.rotated,
        hosts: s.meta.hosts.clone(),
        injection: s.meta.injection.clone(),
        exposure: s.meta.exposure,
        tags: s.meta.tags.clone(),
        current_version: s.current().version,
        versions: s.versions.iter().map(|v| v.version).collect(),
        keep_versions: s.meta.keep_versions.unwrap_or(vault_keep),
        term,
    }
}

fn record_context(vault_id: &str, workspace: &str, name: &str, version: u64) -> Aad {
    // The keyring term is bound too: it is in the envelope header, which the AEAD authenticates.
    Aad::new("airlock/record/v1").str(vault_id).str(workspace).str(name).u64(version)
}

const RECORD_MAGIC: &[u8; 4] = b"ASR1";

fn encrypt_record(vault_id: &str, keyring: &mut Keyring, id: &SecretId, version: u64, s: &Secret) -> RecordEntry {
    let meta = serde_json::to_vec(&s.meta).expect("metadata serialises");
    let size = 4 + 4 + meta.len() + 4 + s.versions.iter().map(|v| 16 + v.value.len()).sum::<usize>();
    let mut pt = Zeroizing::new(Vec::with_capacity(size));
    pt.extend_from_slice(RECORD_MAGIC);
    pt.extend_from_slice(&(meta.len() as u32).to_be_bytes());
    pt.extend_from_slice(&meta);
    pt.extend_from_slice(&(s.versions.len() as u32).to_be_bytes());
    for v in &s.versions {
        pt.extend_from_slice(&v.version.to_be_bytes());
        pt.extend_from_slice(&v.created.to_be_bytes());
        pt.extend_from_slice(&(v.value.len() as u32).to_be_bytes());
        pt.extend_from_slice(v.value.expose());
    }
    debug_assert_eq!(pt.len(), size, "exact pre-sizing keeps the plaintext from being reallocated (and copied)");
    let env = keyring.seal(&record_context(vault_id, &id.workspace, &id.name, version), &pt);
    RecordEntry { workspace: id.workspace.clone(), name: id.name.clone(), version, envelope: B64.encode(env) }
}

fn decrypt_record(vault_id: &str, keyring: &Keyring, r: &RecordEntry) -> Result<Secret, VaultError> {
    let id = format!("{}/{}", r.workspace, r.name);
    let tampered = |reason: String| VaultError::RecordTampered { id: id.clone(), reason };
    let env = B64.decode(&r.envelope).map_err(|_| tampered("its envelope is not base64".into()))?;
    let pt = keyring.open(&record_context(vault_id, &r.workspace, &r.name, r.version), &env).map_err(|e| match e {
        CryptoError::Authentication => {
            tampered("its ciphertext does not belong to this record (moved, swapped, replayed or altered)".into())
        }
        other => tampered(other.to_string()),
    })?;
    decode_plaintext(pt.expose()).map_err(|m| tampered(format!("decrypted record is malformed: {m}")))
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (a, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
}

fn decode_plaintext(b: &[u8]) -> Result<Secret, &'static str> {
    let mut c = Cursor(b);
    if c.take(4)? != RECORD_MAGIC {
        return Err("bad magic");
    }
    let mlen = c.u32()? as usize;
    let meta: SecretMeta = serde_json::from_slice(c.take(mlen)?).map_err(|_| "metadata")?;
    let n = c.u32()? as usize;
    if n == 0 || n > MAX_KEEP_VERSIONS as usize {
        return Err("version count");
    }
    let mut versions = Vec::with_capacity(n);
    for _ in 0..n {
        let version = c.u32()?;
        let created = c.u64()?;
        let len = c.u32()? as usize;
        versions.push(ValueVersion { version, created, value: SecretBytes::copy_from(c.take(len)?) });
    }
    if !c.0.is_empty() {
        return Err("trailing bytes");
    }
    Ok(Secret { meta, versions })
}
