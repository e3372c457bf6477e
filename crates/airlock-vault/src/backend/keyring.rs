//! `keyring://SERVICE/USER`: secrets in the freedesktop Secret Service (GNOME Keyring, KWallet) over D-Bus.
//!
//! # Why
//! On a desktop the login keyring is unlocked with the session and already holds credentials that other tools
//! (`secret-tool`, Python's `keyring`, git credential helpers) put there. Airlock reads and writes them in place.
//!
//! # How
//! The same crates and D-Bus stack as `airlock-crypto`'s keyring KEK slot: `keyring-core` with
//! `zbus-secret-service-keyring-store` (one connection per backend, values transferred encrypted with the
//! Secret Service's Diffie-Hellman session). An item is the one whose attributes are `service=SERVICE` and
//! `username=USER`, in any collection, which is also what `secret-tool store service S username U` and
//! keyring-rs create. New items go to the default collection, labelled `keyring:USER@SERVICE`.
//!
//! - **read**: the item's secret. No item is [`BackendError::NotFound`]; more than one matching item (another
//!   program stored one with extra attributes, or in another collection) is refused rather than guessed at.
//! - **write**: [`Expect::Any`] replaces the secret (or creates the item); [`Expect::Absent`] refuses if the item
//!   exists. The Secret Service has no atomic create-if-absent, so `Absent` is a check followed by a create: two
//!   writers racing can both pass it. [`Expect::Version`] is [`BackendError::Unsupported`]: the Secret Service
//!   keeps no versions, so no retry could make it succeed.
//! - **delete**: removes the one matching item.
//! - **list(SERVICE)**: the users of every item with `service=SERVICE`, sorted. An empty service is refused (it
//!   would list every program's items).
//!
//! A locked collection is unlocked through the Secret Service, which may prompt on a desktop; without a desktop
//! (no prompter) that fails as [`BackendError::Unavailable`]. Calls block on D-Bus: call them from a blocking
//! thread, not from inside an async task.
//!
//! What Airlock does not control: the D-Bus library and the Secret Service daemon copy the secret through their
//! own (not zeroized) buffers, and any program of the same user on the same session bus can ask the Secret Service
//! for the same item. That is the Secret Service's model; the vault does not share it.

use std::fmt;

use airlock_crypto::SecretBytes;

use super::{BackendError, BackendKind, Expect, Fetched, Locator, SecretBackend};

/// The Secret Service on the session bus (`DBUS_SESSION_BUS_ADDRESS`).
pub struct KeyringBackend {
    #[cfg(feature = "os-keyring")]
    store: std::sync::Arc<zbus_secret_service_keyring_store::Store>,
}

impl fmt::Debug for KeyringBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyringBackend(Secret Service)")
    }
}

fn parts(locator: &Locator) -> Result<(&str, &str), BackendError> {
    match locator {
        Locator::Keyring { service, user } => Ok((service, user)),
        other => Err(BackendError::Invalid {
            locator: other.to_string(),
            reason: "not a keyring:// locator (the Secret Service backend reads only keyring://SERVICE/USER)".into(),
        }),
    }
}

#[cfg(feature = "os-keyring")]
mod imp {
    use std::collections::HashMap;
    use std::time::SystemTime;

    use keyring_core::Entry;
    use keyring_core::api::CredentialStoreApi;

    use super::*;

    const BACKEND: &str = "keyring (Secret Service)";

    /// Maps a keyring-core error to ours. Some of its errors embed the raw bytes (`BadEncoding`): never shown.
    pub(super) fn describe(locator: &str, e: keyring_core::Error) -> BackendError {
        use keyring_core::Error as E;
        let invalid = |reason: String| BackendError::Invalid { locator: locator.to_string(), reason };
        match e {
            E::NoEntry => BackendError::NotFound(locator.to_string()),
            E::Ambiguous(items) => invalid(format!(
                "{} Secret Service items match these attributes (another program stored one too?); refusing to \
                 guess which one is meant: remove the extra items (`secret-tool search --all service ...`)",
                items.len()
            )),
            E::NoStorageAccess(p) => BackendError::Unavailable {
                backend: BACKEND.into(),
                reason: format!("the keyring is locked or cannot be reached (unlock it, or log in): {p}"),
            },
            E::PlatformFailure(p) => BackendError::Unavailable { backend: BACKEND.into(), reason: p.to_string() },
            E::NoDefaultStore => {
                BackendError::Unavailable { backend: BACKEND.into(), reason: "no Secret Service store".into() }
            }
            E::BadEncoding(_) | E::BadDataFormat(..) => invalid("the stored item is malformed".into()),
            E::TooLong(what, max) => invalid(format!("{what} is longer than {max}")),
            E::Invalid(what, why) => invalid(format!("{what} is invalid: {why}")),
            E::NotSupportedByStore(what) => invalid(format!("not supported by the Secret Service: {what}")),
            E::BadStoreFormat(what) => invalid(format!("the store is malformed: {what}")),
            _ => invalid("unexpected keyring error".into()),
        }
    }

    impl KeyringBackend {
        /// Connects to the Secret Service on the session bus.
        pub fn new() -> Result<KeyringBackend, BackendError> {
            let store = zbus_secret_service_keyring_store::Store::new().map_err(|e| match describe(BACKEND, e) {
                BackendError::Invalid { reason, .. } => BackendError::Unavailable { backend: BACKEND.into(), reason },
                other => other,
            })?;
            Ok(KeyringBackend { store })
        }

        fn entry(&self, locator: &Locator) -> Result<(Entry, String), BackendError> {
            let (service, user) = parts(locator)?;
            let shown = locator.to_string();
            let entry = self.store.build(service, user, None).map_err(|e| describe(&shown, e))?;
            Ok((entry, shown))
        }

        pub(super) fn read(&self, locator: &Locator) -> Result<Fetched, BackendError> {
            let (entry, shown) = self.entry(locator)?;
            let value = SecretBytes::new(entry.get_secret().map_err(|e| describe(&shown, e))?);
            if value.is_empty() {
                return Err(BackendError::Invalid { locator: shown, reason: "the stored secret is empty".into() });
            }
            Ok(Fetched { value, version: None, fetched_at: SystemTime::now(), stale: false })
        }

        pub(super) fn write(
            &self,
            locator: &Locator,
            value: &SecretBytes,
            expect: Expect,
        ) -> Result<Option<u64>, BackendError> {
            let (entry, shown) = self.entry(locator)?;
            crate::check_value(value)
                .map_err(|e| BackendError::Invalid { locator: shown.clone(), reason: e.to_string() })?;
            match expect {
                Expect::Any => {}
                Expect::Absent => match entry.get_attributes() {
                    Err(keyring_core::Error::NoEntry) => {}
                    Ok(_) => {
                        return Err(BackendError::Conflict { locator: shown, reason: "an item already exists".into() });
                    }
                    Err(e) => return Err(describe(&shown, e)),
                },
                Expect::Version(_) => {
                    return Err(BackendError::Unsupported {
                        backend: "keyring".into(),
                        what: "check-and-set on a version (the Secret Service keeps no versions)",
                    });
                }
            }
            entry.set_secret(value.expose()).map_err(|e| describe(&shown, e))?;
            Ok(None)
        }

        pub(super) fn delete(&self, locator: &Locator) -> Result<(), BackendError> {
            let (entry, shown) = self.entry(locator)?;
            entry.delete_credential().map_err(|e| describe(&shown, e))
        }

        pub(super) fn list(&self, service: &str) -> Result<Vec<String>, BackendError> {
            let shown = format!("keyring://{service}/");
            if service.is_empty() || service.contains('/') || service.chars().any(char::is_control) {
                return Err(BackendError::Invalid {
                    locator: shown,
                    reason: "list takes one SERVICE (non-empty, no `/`): the users stored under it are listed".into(),
                });
            }
            let spec = HashMap::from([("service", service)]);
            let items = self.store.search(&spec).map_err(|e| describe(&shown, e))?;
            let mut users = Vec::with_capacity(items.len());
            for item in items {
                let attributes = item.get_attributes().map_err(|e| describe(&shown, e))?;
                // Only items this service's attributes really name (a store may match loosely).
                if attributes.get("service").map(String::as_str) != Some(service) {
                    continue;
                }
                if let Some(user) = attributes.get("username") {
                    users.push(user.clone());
                }
            }
            users.sort();
            users.dedup();
            Ok(users)
        }
    }
}

#[cfg(not(feature = "os-keyring"))]
mod imp {
    use super::*;

    fn off() -> BackendError {
        BackendError::Unavailable {
            backend: "keyring".into(),
            reason: "this build has no Secret Service support (feature `os-keyring` is off)".into(),
        }
    }

    impl KeyringBackend {
        /// Always fails: this build has no Secret Service support.
        pub fn new() -> Result<KeyringBackend, BackendError> {
            Err(off())
        }
        pub(super) fn read(&self, _: &Locator) -> Result<Fetched, BackendError> {
            Err(off())
        }
        pub(super) fn write(&self, _: &Locator, _: &SecretBytes, _: Expect) -> Result<Option<u64>, BackendError> {
            Err(off())
        }
        pub(super) fn delete(&self, _: &Locator) -> Result<(), BackendError> {
            Err(off())
        }
        pub(super) fn list(&self, _: &str) -> Result<Vec<String>, BackendError> {
            Err(off())
        }
    }
}

impl SecretBackend for KeyringBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Keyring
    }

    fn read(&self, locator: &Locator) -> Result<Fetched, BackendError> {
        parts(locator)?;
        KeyringBackend::read(self, locator)
    }

    fn write(&self, locator: &Locator, value: &SecretBytes, expect: Expect) -> Result<Option<u64>, BackendError> {
        parts(locator)?;
        KeyringBackend::write(self, locator, value, expect)
    }

    /// The users stored under the service `prefix` (`keyring://SERVICE/USER` for each USER returned).
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        KeyringBackend::list(self, prefix)
    }

    fn delete(&self, locator: &Locator) -> Result<(), BackendError> {
        parts(locator)?;
        KeyringBackend::delete(self, locator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_of_other_backends_are_refused_by_name() {
        let l = Locator::Env { name: "X".into() };
        let e = parts(&l).unwrap_err().to_string();
        assert!(e.contains("env://X") && e.contains("not a keyring:// locator"), "{e}");
        assert_eq!(parts(&Locator::Keyring { service: "s".into(), user: "u".into() }).unwrap(), ("s", "u"));
    }

    #[cfg(feature = "os-keyring")]
    #[test]
    fn errors_name_the_locator_and_never_show_stored_bytes() {
        use keyring_core::Error as E;
        let shown = |e: E| imp::describe("keyring://svc/usr", e).to_string();
        for e in [E::BadEncoding(b"hunter2-value".to_vec()), E::BadDataFormat(b"hunter2-value".to_vec(), "bad".into())]
        {
            let s = shown(e);
            assert!(!s.contains("hunter2") && s.contains("keyring://svc/usr") && s.contains("malformed"), "{s}");
        }
        assert!(
            matches!(imp::describe("keyring://svc/usr", E::NoEntry), BackendError::NotFound(l) if l == "keyring://svc/usr")
        );
        let s = shown(E::Ambiguous(Vec::new()));
        assert!(s.contains("refusing to guess"), "{s}");
        assert!(imp::describe("x", E::NoStorageAccess("locked".into())).is_transient());
    }
}
