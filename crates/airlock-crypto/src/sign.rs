//! Ed25519 signatures and X25519 key agreement, wrapped so that private keys zeroize and never print.
//!
//! Why: the audit log signs its checkpoints (issue 4) and daemons may agree keys with each other; both need the
//! same hygiene as vault keys. Verification is strict (RFC 8032 with the dalek `verify_strict` checks), so
//! malleable or small-order signatures are refused.

use ed25519_dalek::Signer;

use crate::{CryptoError, Key32, kdf};

/// An Ed25519 private key.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    pub fn generate() -> Self {
        Self::from_seed(&Key32::random())
    }

    /// The RFC 8032 32-byte seed form.
    pub fn from_seed(seed: &Key32) -> Self {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(seed.expose()))
    }

    pub fn seed(&self) -> Key32 {
        Key32::from_bytes(self.0.to_bytes())
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public={:?})", self.verifying_key())
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes).map(VerifyingKey).map_err(|_| CryptoError::BadPublicKey)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Strict verification: rejects non-canonical and small-order encodings.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), CryptoError> {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(message, &sig).map_err(|_| CryptoError::BadSignature)
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.to_bytes();
        write!(f, "VerifyingKey({:02x}{:02x}{:02x}{:02x}..)", b[0], b[1], b[2], b[3])
    }
}

/// An X25519 static private key.
pub struct X25519Secret(x25519_dalek::StaticSecret);

impl X25519Secret {
    pub fn generate() -> Self {
        X25519Secret(x25519_dalek::StaticSecret::from(*Key32::random().expose()))
    }

    pub fn from_bytes(k: &Key32) -> Self {
        X25519Secret(x25519_dalek::StaticSecret::from(*k.expose()))
    }

    pub fn public(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.0).to_bytes()
    }

    /// The raw X25519 shared secret (for known-answer tests). Prefer [`X25519Secret::agree`].
    pub fn diffie_hellman_raw(&self, their_public: &[u8; 32]) -> Key32 {
        let shared = self.0.diffie_hellman(&x25519_dalek::PublicKey::from(*their_public));
        Key32::from_bytes(*shared.as_bytes())
    }

    /// Agrees a 256-bit key with the holder of `their_public`, bound to `context`. Refuses low-order public
    /// keys (an all-zero shared secret), which would let a peer force a known key.
    pub fn agree(&self, their_public: &[u8; 32], context: &[u8]) -> Result<Key32, CryptoError> {
        let shared = self.0.diffie_hellman(&x25519_dalek::PublicKey::from(*their_public));
        if !shared.was_contributory() {
            return Err(CryptoError::BadPublicKey);
        }
        let (mine, theirs) = (self.public(), *their_public);
        let (a, b) = if mine <= theirs { (mine, theirs) } else { (theirs, mine) };
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(&a);
        salt[32..].copy_from_slice(&b);
        let mut info = kdf::labels::X25519_SHARED.to_vec();
        info.extend_from_slice(context);
        Ok(kdf::hkdf_sha256(shared.as_bytes(), &salt, &info))
    }
}

impl std::fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("X25519Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let k = SigningKey::generate();
        let sig = k.sign(b"checkpoint");
        let vk = k.verifying_key();
        vk.verify(b"checkpoint", &sig).unwrap();
        assert!(vk.verify(b"checkpoinT", &sig).is_err());
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(vk.verify(b"checkpoint", &bad).is_err());
        assert!(!format!("{k:?}").contains(&format!("{:?}", k.seed().expose())));
    }

    #[test]
    fn agreement_is_symmetric_and_refuses_low_order_points() {
        let a = X25519Secret::generate();
        let b = X25519Secret::generate();
        assert_eq!(a.agree(&b.public(), b"ctx").unwrap(), b.agree(&a.public(), b"ctx").unwrap());
        assert_ne!(a.agree(&b.public(), b"ctx").unwrap(), a.agree(&b.public(), b"other").unwrap());
        assert!(matches!(a.agree(&[0u8; 32], b"ctx"), Err(CryptoError::BadPublicKey)));
    }
}
