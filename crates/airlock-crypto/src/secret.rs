//! Zeroizing containers for key material and secret values.
//!
//! Why: a secret that outlives its use in freed heap memory, or that shows up in a `{:?}` in a log line, is a
//! leak. Every type here zeroizes on drop, has a `Debug` that prints only a length, and compares in constant time.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A 256-bit symmetric key. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key32([u8; 32]);

impl Key32 {
    /// Wraps raw bytes. The caller's copy should itself be zeroized.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Key32(bytes)
    }

    /// Copies from a slice that must be exactly 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Key32(arr))
    }

    /// A fresh key from the operating system's CSPRNG.
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        crate::random::fill(&mut k);
        Key32(k)
    }

    /// The raw key bytes, for handing to a primitive. Keep the borrow short.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key32(<redacted>)")
    }
}

impl PartialEq for Key32 {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for Key32 {}

/// A secret value of any length and any bytes (not necessarily UTF-8). Zeroized on drop; never printed.
#[derive(Clone, Default)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are zeroized when this value drops.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// Copies `bytes`. The caller remains responsible for its own copy.
    pub fn copy_from(bytes: &[u8]) -> Self {
        SecretBytes(Zeroizing::new(bytes.to_vec()))
    }

    /// The secret bytes. Keep the borrow short and never format it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Mutable access, for filling a buffer in place (e.g. reading stdin).
    pub fn expose_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality against another byte string. Lengths are not hidden.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        ct_eq(&self.0, other)
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(v: Zeroizing<Vec<u8>>) -> Self {
        SecretBytes(v)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

impl PartialEq for SecretBytes {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}
impl Eq for SecretBytes {}

/// Constant-time byte-string equality (the length comparison is not constant-time; lengths are public).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_bytes() {
        let k = Key32::from_bytes([0x41; 32]);
        let s = SecretBytes::copy_from(b"hunter2-very-secret");
        assert_eq!(format!("{k:?}"), "Key32(<redacted>)");
        let d = format!("{s:?}");
        assert!(!d.contains("hunter2"), "{d}");
        assert!(d.contains("19 bytes"));
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(SecretBytes::copy_from(b"abc"), SecretBytes::copy_from(b"abc"));
        assert_ne!(SecretBytes::copy_from(b"abc"), SecretBytes::copy_from(b"abd"));
        assert_ne!(SecretBytes::copy_from(b"abc"), SecretBytes::copy_from(b"abcd"));
        assert!(!ct_eq(b"", b"x"));
        assert!(ct_eq(b"", b""));
    }
}
