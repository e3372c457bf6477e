//! The OS keyring, as a place to keep a KEK: Secret Service over D-Bus (GNOME Keyring, KWallet) on Linux.
//!
//! Why: on a desktop the login keyring is unlocked with the session, so a vault can open without a prompt
//! while its KEK still never sits in a file. Errors are mapped to messages that never carry stored bytes
//! (some `keyring-core` errors embed the raw data).

use crate::{CryptoError, SecretBytes};

#[cfg(feature = "os-keyring")]
mod imp {
    use keyring_core::Entry;
    use keyring_core::api::CredentialStoreApi;

    use super::*;

    fn entry(service: &str, user: &str) -> Result<Entry, CryptoError> {
        let store = zbus_secret_service_keyring_store::Store::new().map_err(describe)?;
        store.build(service, user, None).map_err(describe)
    }

    fn describe(e: keyring_core::Error) -> CryptoError {
        use keyring_core::Error as E;
        CryptoError::OsKeyring(match e {
            E::PlatformFailure(p) => format!("Secret Service failed: {p}"),
            E::NoStorageAccess(p) => format!("Secret Service is locked or unreachable: {p}"),
            E::NoEntry => "no Airlock entry in the OS keyring (was it deleted?)".into(),
            E::BadEncoding(_) | E::BadDataFormat(..) => "the OS keyring entry is malformed".into(),
            E::NoDefaultStore => "no OS keyring store is available".into(),
            other => format!("OS keyring error: {}", short(&other)),
        })
    }

    fn short(e: &keyring_core::Error) -> String {
        use keyring_core::Error as E;
        match e {
            E::TooLong(name, len) => format!("{name} longer than {len}"),
            E::Invalid(attr, reason) => format!("{attr} invalid: {reason}"),
            E::Ambiguous(items) => format!("{} entries match", items.len()),
            E::NotSupportedByStore(s) => format!("unsupported: {s}"),
            E::BadStoreFormat(s) => format!("store malformed: {s}"),
            _ => "unexpected".into(),
        }
    }

    pub fn store(service: &str, user: &str, secret: &[u8]) -> Result<(), CryptoError> {
        entry(service, user)?.set_secret(secret).map_err(describe)
    }

    pub fn load(service: &str, user: &str) -> Result<SecretBytes, CryptoError> {
        let v = entry(service, user)?.get_secret().map_err(describe)?;
        let v = SecretBytes::new(v);
        if v.len() != 32 {
            return Err(CryptoError::OsKeyring("the OS keyring entry is not a 32-byte key".into()));
        }
        Ok(v)
    }

    pub fn delete(service: &str, user: &str) -> Result<(), CryptoError> {
        match entry(service, user)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(describe(e)),
        }
    }
}

#[cfg(not(feature = "os-keyring"))]
mod imp {
    use super::*;
    const OFF: &str = "this build has no OS keyring support (feature `os-keyring` is off)";
    pub fn store(_: &str, _: &str, _: &[u8]) -> Result<(), CryptoError> {
        Err(CryptoError::OsKeyring(OFF.into()))
    }
    pub fn load(_: &str, _: &str) -> Result<SecretBytes, CryptoError> {
        Err(CryptoError::OsKeyring(OFF.into()))
    }
    pub fn delete(_: &str, _: &str) -> Result<(), CryptoError> {
        Err(CryptoError::OsKeyring(OFF.into()))
    }
}

/// Stores `secret` under (service, user), replacing any previous value.
pub fn store(service: &str, user: &str, secret: &[u8]) -> Result<(), CryptoError> {
    imp::store(service, user, secret)
}

/// Loads the 32-byte key stored under (service, user).
pub fn load(service: &str, user: &str) -> Result<SecretBytes, CryptoError> {
    imp::load(service, user)
}

/// Deletes the entry; a missing entry is not an error.
pub fn delete(service: &str, user: &str) -> Result<(), CryptoError> {
    imp::delete(service, user)
}
