//! Secret backends: where a secret's value lives, behind one trait.
//!
//! # Why
//! Teams already keep secrets somewhere: HashiCorp Vault or OpenBao, the OS keychain, env files, encrypted files in
//! git. Airlock meets them there rather than asking for a copy, with the same guarantees whichever store holds the
//! value: the value exists only in zeroizing memory inside Airlock (the broker, at the moment of injection), a tool
//! gets a surrogate, every read is audited by the caller, and a secret's pins and injection recipe stay in Airlock's
//! own metadata (`[secrets.NAME]` in the policy, or the local vault's record) whatever the backend.
//!
//! # Locators
//! A [`Locator`] names one value in one backend. Configuration writes it inside a reference, `${secret:...}`:
//!
//! | reference | backend | value |
//! |---|---|---|
//! | `${secret:NAME}`, `${secret:WORKSPACE/NAME}` | the local vault | the secret's current version |
//! | `${secret:bao://MOUNT/PATH#FIELD}` | OpenBao / Vault KV v2 | `FIELD` of the newest version at `MOUNT/data/PATH` |
//! | `${secret:keyring://SERVICE/USER}` | Secret Service (the desktop keyring) | the item with those attributes |
//! | `${secret:keyctl://DESCRIPTION}` | the Linux kernel keyring (user keys) | the key with that description |
//! | `${secret:env://NAME}` | the environment (or a `.env` file) | the variable's value |
//! | `${secret:file://PATH#KEY}` | an Airlock-sealed file (values encrypted one by one) | the value at `KEY` |
//!
//! Locators are parsed strictly, once, at load: a malformed one is an error naming the part that is wrong, never a
//! literal that would be sent as a credential. No part may hold a control character, and paths have no empty, `.`
//! or `..` segments (a KV path is joined into a URL: `a/../../sys/seal` must not become a different endpoint).
//!
//! # Errors
//! Every [`BackendError`] names the backend and the locator, never a value, and says whether retrying could help
//! ([`BackendError::is_transient`]): a sealed or unreachable server is transient (the caller may serve nothing,
//! never a value past its time to live), a missing secret or a refused token is not.

use std::fmt;
use std::time::{Duration, SystemTime};

use airlock_crypto::SecretBytes;

use crate::{SecretId, VaultError};

pub mod breaker;
pub mod cache;
pub mod env;
#[cfg(target_os = "linux")]
pub mod keyctl;
pub mod keyring;
#[cfg(feature = "openbao")]
pub mod openbao;
pub mod sealed_file;

/// Which kind of store a [`Locator`] points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    /// The local encrypted vault under `AIRLOCK_HOME`.
    Local,
    /// OpenBao or HashiCorp Vault, KV version 2.
    Bao,
    /// The freedesktop Secret Service (gnome-keyring, KWallet) over D-Bus.
    Keyring,
    /// The Linux kernel key retention service (`keyctl`).
    Keyctl,
    /// Environment variables, or a `.env` file read as if they were.
    Env,
    /// An Airlock-sealed file, each value encrypted on its own (sops-style), for committing to git.
    File,
}

impl BackendKind {
    /// The locator scheme (`bao`, `keyring`, ...); `local` for the vault, which has none.
    pub fn scheme(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Bao => "bao",
            BackendKind::Keyring => "keyring",
            BackendKind::Keyctl => "keyctl",
            BackendKind::Env => "env",
            BackendKind::File => "file",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme())
    }
}

/// One value in one backend. Displays as the text that parses back to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Locator {
    Local(SecretId),
    /// `bao://MOUNT/PATH#FIELD`: KV v2 mount, secret path under it, and the field of the secret's data map.
    Bao {
        mount: String,
        path: String,
        field: String,
    },
    /// `keyring://SERVICE/USER`.
    Keyring {
        service: String,
        user: String,
    },
    /// `keyctl://DESCRIPTION`.
    Keyctl {
        description: String,
    },
    /// `env://NAME`.
    Env {
        name: String,
    },
    /// `file://PATH#KEY`: PATH relative to the configuration that names it (or absolute); KEY a dotted path.
    File {
        path: String,
        key: String,
    },
}

impl Locator {
    pub fn kind(&self) -> BackendKind {
        match self {
            Locator::Local(_) => BackendKind::Local,
            Locator::Bao { .. } => BackendKind::Bao,
            Locator::Keyring { .. } => BackendKind::Keyring,
            Locator::Keyctl { .. } => BackendKind::Keyctl,
            Locator::Env { .. } => BackendKind::Env,
            Locator::File { .. } => BackendKind::File,
        }
    }

    /// Parses what follows `secret:` in a reference. Text without `://` is a local vault name (`NAME` or
    /// `WORKSPACE/NAME`, in `default_workspace` when no workspace is given).
    pub fn parse(text: &str, default_workspace: &str) -> Result<Locator, VaultError> {
        let bad = |why: String| VaultError::Reference(format!("secret locator {}: {why}", shown(text)));
        if text.chars().any(char::is_control) {
            return Err(bad("control characters are not allowed".into()));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Locator::Local(SecretId::parse(text, default_workspace)?));
        };
        let (body, fragment) = match rest.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (rest, None),
        };
        let need_fragment = |what: &str| -> Result<String, VaultError> {
            match fragment {
                Some(f) if !f.is_empty() && !f.contains('#') => Ok(f.to_string()),
                _ => Err(bad(format!("expected `#{what}` at the end"))),
            }
        };
        let no_fragment = || -> Result<(), VaultError> {
            match fragment {
                None => Ok(()),
                Some(_) => Err(bad(format!("{scheme}:// takes no `#` part"))),
            }
        };
        match scheme {
            "bao" | "vault" | "openbao" => {
                let (mount, path) =
                    body.split_once('/').ok_or_else(|| bad("expected bao://MOUNT/PATH#FIELD".into()))?;
                segments(mount, "mount").and_then(|()| segments(path, "path")).map_err(bad)?;
                if mount.contains('/') {
                    return Err(bad("the mount is one path segment (bao://MOUNT/PATH#FIELD)".into()));
                }
                Ok(Locator::Bao { mount: mount.into(), path: path.into(), field: need_fragment("FIELD")? })
            }
            "keyring" => {
                no_fragment()?;
                let (service, user) =
                    body.split_once('/').ok_or_else(|| bad("expected keyring://SERVICE/USER".into()))?;
                if service.is_empty() || user.is_empty() || user.contains('/') {
                    return Err(bad("expected keyring://SERVICE/USER, both non-empty".into()));
                }
                Ok(Locator::Keyring { service: service.into(), user: user.into() })
            }
            "keyctl" => {
                no_fragment()?;
                if body.is_empty() || body.len() > 4095 {
                    return Err(bad("expected keyctl://DESCRIPTION (1 to 4095 bytes)".into()));
                }
                Ok(Locator::Keyctl { description: body.into() })
            }
            "env" => {
                no_fragment()?;
                let first_ok = body.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
                if !first_ok || !body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(bad("expected env://NAME (letters, digits and _, not starting with a digit)".into()));
                }
                Ok(Locator::Env { name: body.into() })
            }
            "file" => {
                let key = need_fragment("KEY")?;
                if body.is_empty() {
                    return Err(bad("expected file://PATH#KEY".into()));
                }
                let relative = body.strip_prefix('/').unwrap_or(body);
                segments(relative, "path").map_err(bad)?;
                if key.split('.').any(str::is_empty) {
                    return Err(bad("KEY is a dotted path without empty parts".into()));
                }
                Ok(Locator::File { path: body.into(), key })
            }
            other => Err(bad(format!(
                "unknown scheme {}; expected bao://, keyring://, keyctl://, env:// or file://",
                shown(other)
            ))),
        }
    }
}

/// A path of non-empty segments, none `.` or `..`.
fn segments(path: &str, what: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    for s in path.split('/') {
        match s {
            "" => return Err(format!("the {what} has an empty segment")),
            "." | ".." => return Err(format!("the {what} has a {s:?} segment")),
            _ => {}
        }
    }
    Ok(())
}

/// A locator as quoted in an error: a locator is configuration, not a value, but it is cut short all the same.
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(120).collect();
    format!("{cut:?}")
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locator::Local(id) => write!(f, "{id}"),
            Locator::Bao { mount, path, field } => write!(f, "bao://{mount}/{path}#{field}"),
            Locator::Keyring { service, user } => write!(f, "keyring://{service}/{user}"),
            Locator::Keyctl { description } => write!(f, "keyctl://{description}"),
            Locator::Env { name } => write!(f, "env://{name}"),
            Locator::File { path, key } => write!(f, "file://{path}#{key}"),
        }
    }
}

/// A value read from a backend.
pub struct Fetched {
    pub value: SecretBytes,
    /// The backend's version of it, where the backend keeps versions (KV v2, the local vault).
    pub version: Option<u64>,
    /// When the backend answered (for a cached value: when the cache last heard from it).
    pub fetched_at: SystemTime,
    /// True when a cache served this after its time to live, within its stale-while-revalidate window, because the
    /// backend could not be asked just now. Never true past that window: then the read fails.
    pub stale: bool,
}

impl fmt::Debug for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetched")
            .field("value", &"<redacted>")
            .field("version", &self.version)
            .field("fetched_at", &self.fetched_at)
            .field("stale", &self.stale)
            .finish()
    }
}

/// What a write may overwrite (check-and-set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Whatever is there, or nothing.
    Any,
    /// Only if nothing is there yet.
    Absent,
    /// Only if the current version is this one.
    Version(u64),
}

/// What a backend tells about a value without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    pub current_version: Option<u64>,
    /// Versions the backend still holds (readable, deleted or destroyed is the backend's business).
    pub versions: Vec<u64>,
    pub created: Option<SystemTime>,
    pub updated: Option<SystemTime>,
}

/// Everything that can go wrong in a backend. Messages name the backend and the locator, never a value.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{0}: not found")]
    NotFound(String),
    #[error("{locator}: the backend refused access: {reason}")]
    Denied { locator: String, reason: String },
    #[error("{locator}: check-and-set failed: {reason}")]
    Conflict { locator: String, reason: String },
    #[error("{backend}: unavailable: {reason}")]
    Unavailable { backend: String, reason: String },
    #[error("{backend}: sealed: {reason}")]
    Sealed { backend: String, reason: String },
    #[error("{backend}: {what} is not supported by this backend")]
    Unsupported { backend: String, what: &'static str },
    #[error("{locator}: {reason}")]
    Invalid { locator: String, reason: String },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl BackendError {
    /// Whether asking again later could succeed (a sealed, unreachable or overloaded server), as opposed to an
    /// answer that will not change by itself (not found, denied, a conflict, bad input).
    pub fn is_transient(&self) -> bool {
        matches!(self, BackendError::Unavailable { .. } | BackendError::Sealed { .. })
    }
}

/// A store of secret values. Implementations are `Send + Sync` and blocking: the broker calls them from a blocking
/// thread, and each bounds its own waiting (timeouts, retries, a circuit breaker where the store is remote).
///
/// Only [`SecretBackend::read`] is required; a read-only backend (the environment) leaves the rest to their
/// defaults, which refuse with [`BackendError::Unsupported`].
pub trait SecretBackend: Send + Sync {
    fn kind(&self) -> BackendKind;

    /// The current value at `locator`.
    fn read(&self, locator: &Locator) -> Result<Fetched, BackendError>;

    /// Stores `value` at `locator` if `expect` holds; the new version, where the backend keeps versions.
    fn write(&self, locator: &Locator, value: &SecretBytes, expect: Expect) -> Result<Option<u64>, BackendError> {
        let _ = (locator, value, expect);
        Err(self.unsupported("writing"))
    }

    /// The names under `prefix` (a backend-specific listing: KV paths, keyring users).
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        let _ = prefix;
        Err(self.unsupported("listing"))
    }

    fn metadata(&self, locator: &Locator) -> Result<Metadata, BackendError> {
        let _ = locator;
        Err(self.unsupported("metadata"))
    }

    /// Removes the value (for a versioned backend: makes the current version unreadable; see the backend).
    fn delete(&self, locator: &Locator) -> Result<(), BackendError> {
        let _ = locator;
        Err(self.unsupported("deleting"))
    }

    /// A standing caveat about where this backend keeps values, for a front end to show once when it is used (the
    /// environment's: why env-held secrets are weaker). `None` for most backends. Never contains a value.
    fn warning(&self) -> Option<String> {
        None
    }

    /// Problems with the value at `locator` that do not stop its use: a placeholder (`changeme`), a provider's key
    /// with a bad checksum ([`crate::formats::check_value_format`]). Backends that do not check return none. Each
    /// finding describes the value without containing it.
    fn check(&self, locator: &Locator) -> Result<Vec<crate::formats::Finding>, BackendError> {
        let _ = locator;
        Ok(Vec::new())
    }

    #[doc(hidden)]
    fn unsupported(&self, what: &'static str) -> BackendError {
        BackendError::Unsupported { backend: self.kind().to_string(), what }
    }
}

/// How long a cached value may be served, and how long past that while the backend cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    pub ttl: Duration,
    /// Zero: never serve past the time to live.
    pub stale_while_revalidate: Duration,
    /// The most values held at once (least recently used dropped first).
    pub max_entries: usize,
}

impl Default for CachePolicy {
    fn default() -> Self {
        CachePolicy { ttl: Duration::from_secs(30), stale_while_revalidate: Duration::ZERO, max_entries: 1024 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Locator, VaultError> {
        Locator::parse(s, "default")
    }

    #[test]
    fn every_scheme_parses_and_displays_back() {
        for text in [
            "bao://secret/team/openai#api_key",
            "keyring://airlock/github",
            "keyctl://airlock:github",
            "env://OPENAI_API_KEY",
            "file://secrets/prod.toml#openai.key",
            "file:///etc/airlock/secrets.toml#db",
        ] {
            let l = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(l.to_string(), text);
            assert_eq!(l.kind().scheme(), text.split("://").next().unwrap());
        }
        assert_eq!(parse("GITHUB_TOKEN").unwrap(), Locator::Local(SecretId::new("default", "GITHUB_TOKEN").unwrap()));
        assert_eq!(parse("ci/NPM_TOKEN").unwrap().to_string(), "ci/NPM_TOKEN");
        // Vault's and OpenBao's own names for the scheme mean the same.
        assert_eq!(parse("vault://kv/a#b").unwrap(), parse("bao://kv/a#b").unwrap());
    }

    #[test]
    fn malformed_locators_are_refused_with_the_reason() {
        for (text, why) in [
            ("bao://secret#f", "expected bao://MOUNT/PATH#FIELD"),
            ("bao://secret/a", "expected `#FIELD`"),
            ("bao://secret/a#", "expected `#FIELD`"),
            ("bao://secret/a/../../sys/seal#f", "\"..\" segment"),
            ("bao://secret//a#f", "empty segment"),
            ("bao://secret/./a#f", "\".\" segment"),
            ("keyring://airlock", "expected keyring://SERVICE/USER"),
            ("keyring://airlock/a/b", "expected keyring://SERVICE/USER"),
            ("keyring://s/u#x", "takes no `#` part"),
            ("env://1ABC", "expected env://NAME"),
            ("env://A-B", "expected env://NAME"),
            ("file://a.toml", "expected `#KEY`"),
            ("file://../a.toml#k", "\"..\" segment"),
            ("file://a.toml#a..b", "dotted path"),
            ("s3://bucket/key", "unknown scheme"),
            ("bao://secret/a\n#f", "control characters"),
        ] {
            let e = parse(text).expect_err(text).to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn fetched_values_never_show_in_debug() {
        let f = Fetched {
            value: SecretBytes::new(b"hunter2-value".to_vec()),
            version: Some(3),
            fetched_at: SystemTime::UNIX_EPOCH,
            stale: false,
        };
        let shown = format!("{f:?}");
        assert!(!shown.contains("hunter2") && shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn only_unavailable_and_sealed_are_transient() {
        let b = || "bao".to_string();
        assert!(BackendError::Unavailable { backend: b(), reason: "x".into() }.is_transient());
        assert!(BackendError::Sealed { backend: b(), reason: "x".into() }.is_transient());
        assert!(!BackendError::NotFound("x".into()).is_transient());
        assert!(!BackendError::Denied { locator: b(), reason: "x".into() }.is_transient());
        assert!(!BackendError::Conflict { locator: b(), reason: "x".into() }.is_transient());
    }
}
