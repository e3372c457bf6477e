//! Keyed hashes for sensitive strings in records.
//!
//! Why: some things a record must mention are too sensitive to store (a URL's query string, a leaked value, an
//! argument a tool passed), yet an investigator must be able to ask "did this value ever appear?". Like Vault's
//! audit device, we store `hmac-sha256:<hex>` under a per-install key (the vault's `AUDIT_MAC` sub-key), and
//! `airlock audit hash` computes the same tag for a value given on stdin. A keyed hash, not a plain one: a plain
//! SHA-256 of a short token or a card number can be brute-forced by anyone who reads the log.

use airlock_crypto::{Key32, kdf};

/// Prefix of every tagged value in a record.
pub const PREFIX: &str = "hmac-sha256:";

/// The per-install key that tags sensitive values.
pub struct AuditMac(Key32);

impl AuditMac {
    pub fn new(key: Key32) -> Self {
        AuditMac(key)
    }

    /// `hmac-sha256:<64 lowercase hex>` of `value`.
    pub fn tag(&self, value: &[u8]) -> String {
        let mut out = String::with_capacity(PREFIX.len() + 64);
        out.push_str(PREFIX);
        out.push_str(&hex::encode(kdf::hmac_sha256(&self.0, value)));
        out
    }

    /// Whether `tagged` is this key's tag of `value`, compared in constant time.
    pub fn matches(&self, value: &[u8], tagged: &str) -> bool {
        let Some(hex_tag) = tagged.strip_prefix(PREFIX) else { return false };
        let Ok(tag) = hex::decode(hex_tag) else { return false };
        kdf::hmac_sha256_verify(&self.0, value, &tag)
    }
}

impl std::fmt::Debug for AuditMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditMac(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_keyed_and_checkable() {
        let a = AuditMac::new(Key32::from_bytes([7; 32]));
        let b = AuditMac::new(Key32::from_bytes([8; 32]));
        let t = a.tag(b"tok_live_123");
        assert!(t.starts_with(PREFIX) && t.len() == PREFIX.len() + 64);
        assert_ne!(t, b.tag(b"tok_live_123"));
        assert!(a.matches(b"tok_live_123", &t));
        assert!(!a.matches(b"tok_live_124", &t));
        assert!(!b.matches(b"tok_live_123", &t));
        assert!(!a.matches(b"tok_live_123", &t[PREFIX.len()..]));
        assert_eq!(format!("{a:?}"), "AuditMac(<redacted>)");
    }
}
