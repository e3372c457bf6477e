//! `keyctl://DESCRIPTION`: secrets in the Linux kernel's key retention service (`keyctl`, keyutils).
//!
//! # Why
//! On a server there is often no desktop keyring, but there is always the kernel's: keys live in kernel memory
//! (never on disk, never in swap), are per user, and vanish on reboot. Scripts already put secrets there with
//! `keyctl padd user NAME @u`; Airlock reads and writes the same keys.
//!
//! # What a locator names
//! A key of type `user` whose description is exactly `DESCRIPTION`, linked **directly** in the configured keyring
//! ([`KeyctlRing`]: the user keyring `@u` by default; or the session keyring `@s`, the user-session keyring `@us`,
//! or the user's persistent keyring). The kernel's search also descends into keyrings linked inside that one; a key
//! found only there is not used (it is reported as not found): a keyring linked in by someone else must not be
//! able to shadow a name. Other key types (`logon`, `big_key`, keyrings) with the same description are never
//! matched.
//!
//! - **read**: the key's payload, copied into zeroizing memory.
//! - **write**: `add_key`, which creates the key or replaces its payload in place (same key id: anything that
//!   holds a link to it sees the new value). [`Expect::Absent`] refuses when the key exists, checked just before
//!   the write (the kernel has no create-if-absent); [`Expect::Version`] is [`BackendError::Unsupported`] (kernel
//!   keys have no versions). A `user` key holds 1 to 32767 bytes. New keys get the kernel's default permissions
//!   (everything for possessors, view for the rest of the user's processes).
//! - **delete**: invalidates the key (the kernel destroys it at once, wherever else it is linked) and unlinks it.
//! - **list(prefix)**: the descriptions of the `user` keys linked directly in the keyring that start with
//!   `prefix` and can be written as a `keyctl://` locator (no control characters or `#`), sorted.
//!
//! # Possession
//! The kernel lets a process read a key it *possesses*: one reachable from its thread, process or session keyring.
//! A login session links `@u` into `@s`, but a fresh session (`keyctl session -`, a systemd service) may not. So
//! that the configured keyring's keys are readable either way, the backend links that keyring into its own process
//! keyring (`@p`: private to this process, not inherited by children or across `execve`).
//!
//! # Safe wrapper
//! The system calls go through `linux-keyutils` (no `unsafe` here). Two limits of its 0.2 API are worked around:
//! its link listing trusts the kernel's returned length (so links are read here into our own buffer instead), and
//! its key description reader panics on descriptions over about 470 bytes and cuts them at the first `;` (so
//! `list` catches that panic, and re-checks every listed description with a search, leaving out keys it cannot
//! describe exactly). Reading, writing and deleting do not need descriptions from the kernel and work for any
//! description.

use std::fmt;
use std::time::SystemTime;

use airlock_crypto::SecretBytes;
use linux_keyutils::{Key, KeyError, KeyRing, KeyRingIdentifier, KeySerialId, KeyType};
use zeroize::Zeroizing;

use super::{BackendError, BackendKind, Expect, Fetched, Locator, SecretBackend};

/// The most a `user` key holds (the kernel's limit).
pub const MAX_USER_KEY_LEN: usize = 32767;

/// Which keyring the backend keeps its keys in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyctlRing {
    /// `@u`: the user's keyring, shared by all of the user's processes, alive while any of them runs.
    #[default]
    User,
    /// `@s`: this process's session keyring (a login session, or one made by `keyctl session`).
    Session,
    /// `@us`: the user's default session keyring, used by processes without a session keyring of their own.
    UserSession,
    /// The user's persistent keyring: outlives the user's processes for `/proc/sys/kernel/keys/persistent_keyring_expiry`
    /// seconds (three days by default) after its last use.
    Persistent,
}

impl KeyctlRing {
    /// How `keyctl` writes it.
    pub fn name(self) -> &'static str {
        match self {
            KeyctlRing::User => "@u",
            KeyctlRing::Session => "@s",
            KeyctlRing::UserSession => "@us",
            KeyctlRing::Persistent => "persistent",
        }
    }

    /// Parses `@u`, `@s`, `@us` or `persistent` (also `user`, `session`, `user-session`).
    pub fn parse(text: &str) -> Option<KeyctlRing> {
        Some(match text {
            "@u" | "user" => KeyctlRing::User,
            "@s" | "session" => KeyctlRing::Session,
            "@us" | "user-session" => KeyctlRing::UserSession,
            "persistent" => KeyctlRing::Persistent,
            _ => return None,
        })
    }
}

impl fmt::Display for KeyctlRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kernel keyring backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyctlBackend {
    ring: KeyctlRing,
}

/// The configured keyring, opened: the handle for searching and adding, and its id for reading its links.
struct Ring {
    ring: KeyRing,
    id: KeySerialId,
}

impl KeyctlBackend {
    pub fn new(ring: KeyctlRing) -> KeyctlBackend {
        KeyctlBackend { ring }
    }

    pub fn ring(&self) -> KeyctlRing {
        self.ring
    }

    fn backend(&self) -> String {
        format!("keyctl ({})", self.ring)
    }

    fn unavailable(&self, what: &str, e: KeyError) -> BackendError {
        BackendError::Unavailable { backend: self.backend(), reason: format!("{what}: {}", key_error(e)) }
    }

    fn description<'a>(&self, locator: &'a Locator) -> Result<&'a str, BackendError> {
        match locator {
            Locator::Keyctl { description } => Ok(description),
            other => Err(BackendError::Invalid {
                locator: other.to_string(),
                reason: "not a keyctl:// locator (the kernel keyring backend reads only keyctl://DESCRIPTION)".into(),
            }),
        }
    }

    /// The locator as errors show it: with the keyring.
    fn shown(&self, locator: &Locator) -> String {
        format!("{locator} (in {})", self.ring)
    }

    /// Opens the configured keyring and makes sure this process possesses it (see the module documentation).
    fn open(&self) -> Result<Ring, BackendError> {
        let special = |id: KeyRingIdentifier| -> Result<Ring, BackendError> {
            let ring = KeyRing::from_special_id(id, false).map_err(|e| self.unavailable("opening the keyring", e))?;
            Ok(Ring { ring, id: KeySerialId::new(id as i32) })
        };
        let process = || {
            KeyRing::from_special_id(KeyRingIdentifier::Process, true)
                .map_err(|e| self.unavailable("opening the process keyring", e))
        };
        match self.ring {
            KeyctlRing::Session => special(KeyRingIdentifier::Session),
            KeyctlRing::User | KeyctlRing::UserSession => {
                let id = if self.ring == KeyctlRing::User {
                    KeyRingIdentifier::User
                } else {
                    KeyRingIdentifier::UserSession
                };
                let ring = special(id)?;
                process()?
                    .link_keyring(ring.ring)
                    .map_err(|e| self.unavailable("linking the keyring into the process keyring", e))?;
                Ok(ring)
            }
            KeyctlRing::Persistent => {
                // Linking it into the process keyring is how the kernel hands it out; its id is then found there.
                let ring = KeyRing::get_persistent(KeyRingIdentifier::Process)
                    .map_err(|e| self.unavailable("opening the persistent keyring", e))?;
                let want = format!("_persistent.{}", nix::unistd::geteuid().as_raw());
                let links = links(KeySerialId::new(KeyRingIdentifier::Process as i32))
                    .map_err(|e| self.unavailable("reading the process keyring", e))?;
                let id = links
                    .into_iter()
                    .find(|&id| {
                        describe(id).is_some_and(|m| m.get_type() == KeyType::KeyRing && m.get_description() == want)
                    })
                    .ok_or_else(|| BackendError::Unavailable {
                        backend: self.backend(),
                        reason: "the persistent keyring was not linked into the process keyring".into(),
                    })?;
                Ok(Ring { ring, id })
            }
        }
    }

    /// The `user` key with exactly this description linked directly in the ring, if any.
    fn find(&self, ring: &Ring, description: &str, shown: &str) -> Result<Option<Key>, BackendError> {
        let key = match ring.ring.search(description) {
            Ok(k) => k,
            Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => return Ok(None),
            Err(e) => return Err(self.denied_or_unavailable(shown, "searching", e)),
        };
        let direct = links(ring.id).map_err(|e| self.unavailable("reading the keyring", e))?;
        Ok(direct.contains(&key.get_id()).then_some(key))
    }

    fn denied_or_unavailable(&self, shown: &str, what: &str, e: KeyError) -> BackendError {
        match e {
            KeyError::AccessDenied | KeyError::PermissionDenied => BackendError::Denied {
                locator: shown.to_string(),
                reason: format!("{what}: the kernel refused ({})", key_error(e)),
            },
            KeyError::QuotaExceeded => BackendError::Denied {
                locator: shown.to_string(),
                reason: format!(
                    "{what}: the user's kernel key quota is full (/proc/sys/kernel/keys/maxkeys and maxbytes)"
                ),
            },
            KeyError::InvalidDescription | KeyError::InvalidArguments => BackendError::Invalid {
                locator: shown.to_string(),
                reason: format!("{what}: the kernel refused the description or value ({})", key_error(e)),
            },
            other => self.unavailable(what, other),
        }
    }
}

/// The ids linked directly in keyring `id`, read into a buffer of our own size (see the module documentation).
fn links(id: KeySerialId) -> Result<Vec<KeySerialId>, KeyError> {
    let ring = Key::from_id(id);
    let mut buf = vec![0u8; 1024];
    loop {
        let len = ring.read(&mut buf)?;
        if len <= buf.len() {
            buf.truncate(len);
            break;
        }
        // Grown since the last look: ask again with room for all of it.
        buf = vec![0u8; len + 64];
    }
    Ok(buf.chunks_exact(4).map(|c| KeySerialId::new(i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))).collect())
}

/// The kernel's description of a key, or `None` if it cannot be described exactly (gone, not viewable, or a
/// description the wrapper cannot read: it panics past its 512-byte buffer).
fn describe(id: KeySerialId) -> Option<linux_keyutils::Metadata> {
    std::panic::catch_unwind(|| Key::from_id(id).metadata()).ok()?.ok()
}

/// Reads a key's payload into zeroizing memory.
fn payload(key: Key) -> Result<SecretBytes, KeyError> {
    let mut buf = Zeroizing::new(vec![0u8; 256]);
    loop {
        let len = key.read(&mut *buf)?;
        if len <= buf.len() {
            buf.truncate(len);
            return Ok(SecretBytes::new(std::mem::take(&mut *buf)));
        }
        // A fresh buffer, not a resize: a reallocation would leave the old bytes behind unzeroized.
        buf = Zeroizing::new(vec![0u8; len]);
    }
}

fn key_error(e: KeyError) -> String {
    let s = match e {
        KeyError::AccessDenied => "permission denied (EACCES)",
        KeyError::PermissionDenied => "operation not permitted (EPERM)",
        KeyError::QuotaExceeded => "key quota exceeded (EDQUOT)",
        KeyError::KeyDoesNotExist => "no such key (ENOKEY)",
        KeyError::KeyExpired => "key expired",
        KeyError::KeyRevoked => "key revoked",
        KeyError::KeyRejected => "key rejected",
        KeyError::KeyringDoesNotExist => "no such keyring",
        KeyError::OperationNotSupported => "not supported by this kernel (EOPNOTSUPP)",
        KeyError::InvalidArguments => "invalid argument (EINVAL)",
        KeyError::InvalidDescription => "invalid description",
        KeyError::OutOfMemory => "out of memory",
        KeyError::MissingFileOrDirectory => "ENOENT",
        KeyError::Unknown(n) => return format!("errno {n}"),
        other => return format!("{other:?}"),
    };
    s.to_string()
}

impl SecretBackend for KeyctlBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Keyctl
    }

    fn read(&self, locator: &Locator) -> Result<Fetched, BackendError> {
        let description = self.description(locator)?;
        let shown = self.shown(locator);
        let ring = self.open()?;
        let key = self.find(&ring, description, &shown)?.ok_or_else(|| BackendError::NotFound(shown.clone()))?;
        let value = match payload(key) {
            Ok(v) => v,
            // Deleted or expired between the search and the read.
            Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => {
                return Err(BackendError::NotFound(shown));
            }
            Err(e) => return Err(self.denied_or_unavailable(&shown, "reading", e)),
        };
        if value.is_empty() {
            return Err(BackendError::Invalid { locator: shown, reason: "the key is empty".into() });
        }
        Ok(Fetched { value, version: None, fetched_at: SystemTime::now(), stale: false })
    }

    fn write(&self, locator: &Locator, value: &SecretBytes, expect: Expect) -> Result<Option<u64>, BackendError> {
        let description = self.description(locator)?;
        let shown = self.shown(locator);
        if value.is_empty() || value.len() > MAX_USER_KEY_LEN {
            return Err(BackendError::Invalid {
                locator: shown,
                reason: format!("a kernel user key holds 1 to {MAX_USER_KEY_LEN} bytes; the value is {}", value.len()),
            });
        }
        let ring = self.open()?;
        match expect {
            Expect::Any => {}
            Expect::Absent => {
                if self.find(&ring, description, &shown)?.is_some() {
                    return Err(BackendError::Conflict { locator: shown, reason: "the key already exists".into() });
                }
            }
            Expect::Version(_) => {
                return Err(BackendError::Unsupported {
                    backend: "keyctl".into(),
                    what: "check-and-set on a version (kernel keys keep no versions)",
                });
            }
        }
        ring.ring.add_key(description, value.expose()).map_err(|e| self.denied_or_unavailable(&shown, "writing", e))?;
        Ok(None)
    }

    fn delete(&self, locator: &Locator) -> Result<(), BackendError> {
        let description = self.description(locator)?;
        let shown = self.shown(locator);
        let ring = self.open()?;
        let key = self.find(&ring, description, &shown)?.ok_or_else(|| BackendError::NotFound(shown.clone()))?;
        match key.invalidate() {
            // Invalid keys are skipped by every search at once; the unlink only tidies this keyring now rather
            // than when the kernel's collector runs (it may already be gone: not an error).
            Ok(()) => {
                let _ = ring.ring.unlink_key(key);
                Ok(())
            }
            // Not allowed to destroy it everywhere (a key someone else shared): take it out of this keyring.
            Err(KeyError::AccessDenied | KeyError::PermissionDenied) => {
                ring.ring.unlink_key(key).map_err(|e| self.denied_or_unavailable(&shown, "unlinking", e))
            }
            Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => {
                Err(BackendError::NotFound(shown))
            }
            Err(e) => Err(self.denied_or_unavailable(&shown, "invalidating", e)),
        }
    }

    /// Descriptions of the `user` keys linked directly in the keyring that start with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        let ring = self.open()?;
        let ids = links(ring.id).map_err(|e| self.unavailable("reading the keyring", e))?;
        let mut out = Vec::new();
        for id in ids {
            let Some(meta) = describe(id) else { continue };
            let d = meta.get_description();
            if meta.get_type() != KeyType::User || !d.starts_with(prefix) {
                continue;
            }
            // Only descriptions a locator can name, and only when the kernel confirms them: the wrapper cuts a
            // description at its first `;`, and a cut one would name a different key (or none).
            let nameable = matches!(Locator::parse(&format!("keyctl://{d}"), "default"),
                Ok(Locator::Keyctl { description }) if description == d);
            if nameable && ring.ring.search(d).is_ok_and(|k| k.get_id() == id) {
                out.push(d.to_string());
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_parse_and_display_as_keyctl_writes_them() {
        for r in [KeyctlRing::User, KeyctlRing::Session, KeyctlRing::UserSession, KeyctlRing::Persistent] {
            assert_eq!(KeyctlRing::parse(r.name()), Some(r));
        }
        assert_eq!(KeyctlRing::parse("user"), Some(KeyctlRing::User));
        assert_eq!(KeyctlRing::parse("@t"), None);
        assert_eq!(KeyctlBackend::default().ring(), KeyctlRing::User);
    }

    #[test]
    fn other_locators_and_out_of_range_values_are_refused_before_any_system_call() {
        let b = KeyctlBackend::new(KeyctlRing::Session);
        let e = b.read(&Locator::Env { name: "X".into() }).unwrap_err().to_string();
        assert!(e.contains("env://X") && e.contains("not a keyctl:// locator"), "{e}");
        let l = Locator::Keyctl { description: "airlock-unit".into() };
        for len in [0, MAX_USER_KEY_LEN + 1] {
            let e = b.write(&l, &SecretBytes::new(vec![b'v'; len]), Expect::Any).unwrap_err();
            assert!(
                matches!(&e, BackendError::Invalid { locator, .. } if locator == "keyctl://airlock-unit (in @s)"),
                "{e}"
            );
        }
    }

    #[test]
    fn kernel_errors_become_backend_errors_without_values() {
        let b = KeyctlBackend::default();
        assert!(matches!(b.denied_or_unavailable("l", "reading", KeyError::AccessDenied), BackendError::Denied { .. }));
        assert!(matches!(b.denied_or_unavailable("l", "w", KeyError::QuotaExceeded), BackendError::Denied { .. }));
        assert!(b.denied_or_unavailable("l", "w", KeyError::OutOfMemory).is_transient());
        assert_eq!(key_error(KeyError::Unknown(5)), "errno 5");
    }
}
