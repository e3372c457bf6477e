//! AEAD envelopes: the only way Airlock encrypts anything at rest.
//!
//! Why an envelope and not bare AEAD calls: every ciphertext must say which algorithm and which key (keyring
//! *term*) produced it, so old data still opens after a key rotation or an algorithm change, and that header must
//! itself be authenticated, so an attacker cannot relabel a ciphertext. The envelope is
//!
//! ```text
//! [version=1][cipher id][key id: u32 BE][nonce][ciphertext || tag]
//! ```
//!
//! and the AEAD's associated data is `header || context`, where `context` (built with [`Aad`]) binds the
//! ciphertext to where it belongs. Nonces are random: 192-bit for XChaCha20-Poly1305 (no practical limit), 96-bit
//! for AES-256-GCM (callers count uses per key and rotate well before 2^32; see `keyring`).

use aes_gcm::Aes256Gcm;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{CryptoError, Key32, SecretBytes, random};

const ENVELOPE_VERSION: u8 = 1;
const HEADER_LEN: usize = 6;
const TAG_LEN: usize = 16;

/// The AEAD algorithms Airlock supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Cipher {
    /// XChaCha20-Poly1305: the default. Constant-time in software, 192-bit random nonces.
    #[default]
    #[serde(rename = "xchacha20-poly1305")]
    XChaCha20Poly1305,
    /// AES-256-GCM: for deployments that must use a FIPS-listed algorithm. 96-bit nonces.
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

impl Cipher {
    fn id(self) -> u8 {
        match self {
            Cipher::XChaCha20Poly1305 => 1,
            Cipher::Aes256Gcm => 2,
        }
    }

    fn from_id(id: u8) -> Result<Self, CryptoError> {
        match id {
            1 => Ok(Cipher::XChaCha20Poly1305),
            2 => Ok(Cipher::Aes256Gcm),
            other => Err(CryptoError::UnsupportedCipher(other)),
        }
    }

    /// Nonce length in bytes.
    pub fn nonce_len(self) -> usize {
        match self {
            Cipher::XChaCha20Poly1305 => 24,
            Cipher::Aes256Gcm => 12,
        }
    }

    /// How many messages one key may safely encrypt with random nonces. For AES-GCM this is NIST SP 800-38D's
    /// 2^32 bound; we stop well short of it. XChaCha20's 192-bit nonces make collisions negligible.
    pub fn max_messages_per_key(self) -> u64 {
        match self {
            Cipher::XChaCha20Poly1305 => u64::MAX,
            Cipher::Aes256Gcm => 1 << 31,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cipher::XChaCha20Poly1305 => "xchacha20-poly1305",
            Cipher::Aes256Gcm => "aes-256-gcm",
        }
    }

    /// Encrypts `buf` in place and returns the tag. The one primitive both ciphers go through.
    fn encrypt_detached(
        self,
        key: &Key32,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        let bad_nonce = || CryptoError::Malformed("nonce has the wrong length for this cipher");
        let tag = match self {
            Cipher::XChaCha20Poly1305 => XChaCha20Poly1305::new_from_slice(key.expose())
                .map_err(|_| CryptoError::Malformed("key length"))?
                .encrypt_inout_detached(nonce.try_into().map_err(|_| bad_nonce())?, aad, buf.into())
                .map(|t| t.to_vec()),
            Cipher::Aes256Gcm => Aes256Gcm::new_from_slice(key.expose())
                .map_err(|_| CryptoError::Malformed("key length"))?
                .encrypt_inout_detached(nonce.try_into().map_err(|_| bad_nonce())?, aad, buf.into())
                .map(|t| t.to_vec()),
        }
        .map_err(|_| CryptoError::Malformed("plaintext too long for this cipher"))?;
        Ok(tag.try_into().expect("both ciphers have 16-byte tags"))
    }

    /// Verifies `tag` and decrypts `buf` in place.
    fn decrypt_detached(
        self,
        key: &Key32,
        nonce: &[u8],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        let bad_nonce = || CryptoError::Malformed("nonce has the wrong length for this cipher");
        let bad_tag = || CryptoError::Malformed("tag has the wrong length");
        match self {
            Cipher::XChaCha20Poly1305 => XChaCha20Poly1305::new_from_slice(key.expose())
                .map_err(|_| CryptoError::Malformed("key length"))?
                .decrypt_inout_detached(
                    nonce.try_into().map_err(|_| bad_nonce())?,
                    aad,
                    buf.into(),
                    tag.try_into().map_err(|_| bad_tag())?,
                ),
            Cipher::Aes256Gcm => Aes256Gcm::new_from_slice(key.expose())
                .map_err(|_| CryptoError::Malformed("key length"))?
                .decrypt_inout_detached(
                    nonce.try_into().map_err(|_| bad_nonce())?,
                    aad,
                    buf.into(),
                    tag.try_into().map_err(|_| bad_tag())?,
                ),
        }
        .map_err(|_| CryptoError::Authentication)
    }

    /// Raw AEAD encryption with a caller-chosen nonce, returning `ciphertext || tag`. Use [`seal`] instead unless
    /// you are checking a published test vector: reusing a nonce under one key destroys confidentiality and
    /// integrity.
    pub fn encrypt_raw(self, key: &Key32, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        let tag = self.encrypt_detached(key, nonce, aad, &mut buf)?;
        buf.extend_from_slice(&tag);
        Ok(buf)
    }

    /// Raw AEAD decryption of `ciphertext || tag`. The plaintext is returned in a zeroizing buffer.
    pub fn decrypt_raw(
        self,
        key: &Key32,
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        if ciphertext.len() < TAG_LEN {
            return Err(CryptoError::Malformed("ciphertext shorter than its tag"));
        }
        let (ct, tag) = ciphertext.split_at(ciphertext.len() - TAG_LEN);
        let mut buf = Zeroizing::new(ct.to_vec());
        self.decrypt_detached(key, nonce, aad, &mut buf, tag)?;
        Ok(SecretBytes::from(buf))
    }
}

impl std::str::FromStr for Cipher {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "xchacha20-poly1305" | "xchacha20poly1305" | "xchacha" => Ok(Cipher::XChaCha20Poly1305),
            "aes-256-gcm" | "aes256gcm" | "aes-gcm" => Ok(Cipher::Aes256Gcm),
            _ => Err(CryptoError::UnknownCipherName),
        }
    }
}

/// Builds associated data from labelled, length-prefixed fields, so that no two different field lists can
/// produce the same bytes (`("ab","c")` and `("a","bc")` differ).
#[derive(Clone)]
pub struct Aad(Vec<u8>);

impl Aad {
    /// Starts with a domain-separation label, e.g. `"airlock/record/v1"`.
    pub fn new(label: &str) -> Self {
        let mut a = Aad(Vec::with_capacity(96));
        a.push_bytes(label.as_bytes());
        a
    }

    pub fn bytes(mut self, field: &[u8]) -> Self {
        self.push_bytes(field);
        self
    }

    pub fn str(self, field: &str) -> Self {
        self.bytes(field.as_bytes())
    }

    pub fn u64(mut self, n: u64) -> Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }

    fn push_bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What an envelope says about itself, readable before decryption (and authenticated by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvelopeHeader {
    pub cipher: Cipher,
    pub key_id: u32,
}

impl EnvelopeHeader {
    /// Parses the header of `envelope`, checking its version and minimum length.
    pub fn parse(envelope: &[u8]) -> Result<Self, CryptoError> {
        if envelope.len() < HEADER_LEN {
            return Err(CryptoError::Malformed("envelope shorter than its header"));
        }
        if envelope[0] != ENVELOPE_VERSION {
            return Err(CryptoError::UnsupportedVersion(envelope[0]));
        }
        let cipher = Cipher::from_id(envelope[1])?;
        let key_id = u32::from_be_bytes(envelope[2..6].try_into().expect("4 bytes"));
        if envelope.len() < HEADER_LEN + cipher.nonce_len() + TAG_LEN {
            return Err(CryptoError::Malformed("envelope truncated"));
        }
        Ok(EnvelopeHeader { cipher, key_id })
    }

    fn encode(self) -> [u8; HEADER_LEN] {
        let k = self.key_id.to_be_bytes();
        [ENVELOPE_VERSION, self.cipher.id(), k[0], k[1], k[2], k[3]]
    }
}

fn full_aad(header: &[u8; HEADER_LEN], context: &Aad) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + context.0.len());
    v.extend_from_slice(header);
    v.extend_from_slice(&context.0);
    v
}

/// Encrypts `plaintext` under `key` (identified by `key_id`) with a fresh random nonce, binding it to `context`.
pub fn seal(cipher: Cipher, key: &Key32, key_id: u32, context: &Aad, plaintext: &[u8]) -> Vec<u8> {
    let header = EnvelopeHeader { cipher, key_id }.encode();
    let n = cipher.nonce_len();
    let mut out = Vec::with_capacity(HEADER_LEN + n + plaintext.len() + TAG_LEN);
    out.extend_from_slice(&header);
    out.resize(HEADER_LEN + n, 0);
    random::fill(&mut out[HEADER_LEN..]);
    out.extend_from_slice(plaintext);
    let (head, body) = out.split_at_mut(HEADER_LEN + n);
    let tag = cipher
        .encrypt_detached(key, &head[HEADER_LEN..], &full_aad(&header, context), body)
        .expect("key and nonce lengths are fixed by construction");
    out.extend_from_slice(&tag);
    out
}

/// Decrypts an envelope made by [`seal`]. Fails with [`CryptoError::Authentication`] if the key is wrong, any
/// byte was altered, or the envelope was moved to a different `context`.
pub fn open(key: &Key32, context: &Aad, envelope: &[u8]) -> Result<SecretBytes, CryptoError> {
    let h = EnvelopeHeader::parse(envelope)?;
    let header: [u8; HEADER_LEN] = envelope[..HEADER_LEN].try_into().expect("checked length");
    let n = h.cipher.nonce_len();
    let nonce = &envelope[HEADER_LEN..HEADER_LEN + n];
    h.cipher.decrypt_raw(key, nonce, &full_aad(&header, context), &envelope[HEADER_LEN + n..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(name: &str) -> Aad {
        Aad::new("test/v1").str("vault").str(name).u64(1)
    }

    #[test]
    fn round_trip_both_ciphers() {
        for c in [Cipher::XChaCha20Poly1305, Cipher::Aes256Gcm] {
            let k = Key32::random();
            let env = seal(c, &k, 7, &ctx("a"), b"payload \xff\x00 bytes");
            assert_eq!(EnvelopeHeader::parse(&env).unwrap(), EnvelopeHeader { cipher: c, key_id: 7 });
            assert_eq!(open(&k, &ctx("a"), &env).unwrap().expose(), b"payload \xff\x00 bytes");
        }
    }

    #[test]
    fn wrong_context_wrong_key_and_every_flipped_bit_fail() {
        let k = Key32::random();
        let env = seal(Cipher::XChaCha20Poly1305, &k, 1, &ctx("a"), b"secret");
        assert!(matches!(open(&k, &ctx("b"), &env), Err(CryptoError::Authentication)));
        assert!(matches!(open(&Key32::random(), &ctx("a"), &env), Err(CryptoError::Authentication)));
        for i in 0..env.len() * 8 {
            let mut e = env.clone();
            e[i / 8] ^= 1 << (i % 8);
            assert!(open(&k, &ctx("a"), &e).is_err(), "bit {i} flipped but envelope still opened");
        }
    }

    #[test]
    fn relabelled_key_id_is_rejected() {
        let k = Key32::random();
        let mut env = seal(Cipher::Aes256Gcm, &k, 1, &ctx("a"), b"secret");
        env[5] = 2;
        assert!(matches!(open(&k, &ctx("a"), &env), Err(CryptoError::Authentication)));
    }

    #[test]
    fn aad_fields_are_unambiguous() {
        assert_ne!(Aad::new("x").str("ab").str("c").as_bytes(), Aad::new("x").str("a").str("bc").as_bytes());
    }

    #[test]
    fn truncated_and_foreign_envelopes_get_specific_errors() {
        let k = Key32::random();
        let env = seal(Cipher::XChaCha20Poly1305, &k, 1, &ctx("a"), b"secret");
        assert!(matches!(open(&k, &ctx("a"), &env[..10]), Err(CryptoError::Malformed(_))));
        let mut v2 = env.clone();
        v2[0] = 9;
        assert!(matches!(open(&k, &ctx("a"), &v2), Err(CryptoError::UnsupportedVersion(9))));
        let mut c9 = env;
        c9[1] = 9;
        assert!(matches!(open(&k, &ctx("a"), &c9), Err(CryptoError::UnsupportedCipher(9))));
    }
}
