//! The vault's root keyring: numbered key *terms*, as in Vault's barrier.
//!
//! Why terms: rotating the data key must not require re-encrypting everything at once, and must not strand old
//! data. [`Keyring::rotate`] adds a term that encrypts all new writes; older terms stay to decrypt what they
//! wrote. Each term counts its uses so that AES-GCM keys are retired long before random 96-bit nonces could
//! collide. The keyring also holds a *derivation seed*, fixed for the vault's life, from which purpose-bound
//! sub-keys (file MAC, audit MAC) are derived, so rotating data keys never changes them.
//!
//! The keyring itself is encrypted under the *root key*; the root key is wrapped by one or more KEK slots
//! (`kek`). Rekeying (new root key, new slots) therefore never touches the data.

use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use crate::aead::{self, Aad, Cipher};
use crate::{CryptoError, Key32, kdf};

const MAGIC: &[u8; 4] = b"AKR1";

/// Public facts about one term. Never includes the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermInfo {
    pub id: u32,
    /// Unix seconds.
    pub created: u64,
    /// Messages encrypted with this term so far.
    pub uses: u64,
    pub active: bool,
}

struct Term {
    id: u32,
    key: Key32,
    created: u64,
    uses: u64,
}

/// Term id -> 256-bit key, plus which term is active and the derivation seed.
pub struct Keyring {
    cipher: Cipher,
    terms: Vec<Term>,
    active: u32,
    seed: Key32,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("cipher", &self.cipher)
            .field("terms", &self.terms.len())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Keyring {
    /// A fresh keyring with one term (term 1) and a new derivation seed.
    pub fn new(cipher: Cipher) -> Self {
        Keyring {
            cipher,
            terms: vec![Term { id: 1, key: Key32::random(), created: now_unix(), uses: 0 }],
            active: 1,
            seed: Key32::random(),
        }
    }

    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// The term used for new writes.
    pub fn active_term(&self) -> u32 {
        self.active
    }

    pub fn terms(&self) -> Vec<TermInfo> {
        self.terms
            .iter()
            .map(|t| TermInfo { id: t.id, created: t.created, uses: t.uses, active: t.id == self.active })
            .collect()
    }

    /// Adds a new term and makes it active. Returns its id.
    pub fn rotate(&mut self) -> u32 {
        let id = self.terms.iter().map(|t| t.id).max().unwrap_or(0) + 1;
        self.terms.push(Term { id, key: Key32::random(), created: now_unix(), uses: 0 });
        self.active = id;
        id
    }

    /// Removes terms that no ciphertext uses any more. The active term is always kept.
    pub fn retain_terms(&mut self, in_use: impl Fn(u32) -> bool) -> usize {
        let before = self.terms.len();
        let active = self.active;
        self.terms.retain(|t| t.id == active || in_use(t.id));
        before - self.terms.len()
    }

    fn term(&self, id: u32) -> Option<&Term> {
        self.terms.iter().find(|t| t.id == id)
    }

    /// Encrypts with the active term, rotating first if that term has reached its safe message count.
    pub fn seal(&mut self, context: &Aad, plaintext: &[u8]) -> Vec<u8> {
        let limit = self.cipher.max_messages_per_key();
        if self.term(self.active).is_some_and(|t| t.uses >= limit) {
            self.rotate();
        }
        let active = self.active;
        let cipher = self.cipher;
        let term = self.terms.iter_mut().find(|t| t.id == active).expect("active term exists");
        term.uses += 1;
        aead::seal(cipher, &term.key, active, context, plaintext)
    }

    /// Decrypts an envelope made by [`Keyring::seal`] with whichever term it names.
    pub fn open(&self, context: &Aad, envelope: &[u8]) -> Result<crate::SecretBytes, CryptoError> {
        let h = aead::EnvelopeHeader::parse(envelope)?;
        let term = self.term(h.key_id).ok_or(CryptoError::UnknownTerm(h.key_id))?;
        aead::open(&term.key, context, envelope)
    }

    /// A purpose-bound sub-key from the derivation seed (stable across rotate and rekey).
    pub fn subkey(&self, label: &[u8]) -> Key32 {
        kdf::subkey(&self.seed, label)
    }

    /// Serialises the keyring (keys included) into a zeroizing buffer. Only ever pass it to [`aead::seal`].
    fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(Vec::with_capacity(4 + 1 + 4 + 32 + 4 + self.terms.len() * 52));
        v.extend_from_slice(MAGIC);
        v.push(match self.cipher {
            Cipher::XChaCha20Poly1305 => 1,
            Cipher::Aes256Gcm => 2,
        });
        v.extend_from_slice(&self.active.to_be_bytes());
        v.extend_from_slice(self.seed.expose());
        v.extend_from_slice(&(self.terms.len() as u32).to_be_bytes());
        for t in &self.terms {
            v.extend_from_slice(&t.id.to_be_bytes());
            v.extend_from_slice(&t.created.to_be_bytes());
            v.extend_from_slice(&t.uses.to_be_bytes());
            v.extend_from_slice(t.key.expose());
        }
        v
    }

    fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        let bad = CryptoError::Malformed("keyring encoding");
        let mut r = Reader(b);
        if r.take(4)? != MAGIC {
            return Err(bad);
        }
        let cipher = match r.take(1)?[0] {
            1 => Cipher::XChaCha20Poly1305,
            2 => Cipher::Aes256Gcm,
            c => return Err(CryptoError::UnsupportedCipher(c)),
        };
        let active = r.u32()?;
        let seed = Key32::from_slice(r.take(32)?).expect("32 bytes");
        let n = r.u32()? as usize;
        if n == 0 || n > 1_000_000 {
            return Err(bad);
        }
        let mut terms = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let id = r.u32()?;
            let created = r.u64()?;
            let uses = r.u64()?;
            let key = Key32::from_slice(r.take(32)?).expect("32 bytes");
            terms.push(Term { id, key, created, uses });
        }
        if !r.0.is_empty() || !terms.iter().any(|t| t.id == active) {
            return Err(bad);
        }
        Ok(Keyring { cipher, terms, active, seed })
    }

    /// Encrypts the whole keyring under the root key, bound to the vault id.
    pub fn seal_under(&self, root: &Key32, vault_id: &str) -> Vec<u8> {
        aead::seal(self.cipher, root, 0, &Self::context(vault_id), &self.to_bytes())
    }

    /// Decrypts a keyring sealed by [`Keyring::seal_under`].
    pub fn open_under(root: &Key32, vault_id: &str, envelope: &[u8]) -> Result<Self, CryptoError> {
        let pt = aead::open(root, &Self::context(vault_id), envelope)?;
        Self::from_bytes(pt.expose())
    }

    fn context(vault_id: &str) -> Aad {
        Aad::new("airlock/keyring/v1").str(vault_id)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CryptoError> {
        if self.0.len() < n {
            return Err(CryptoError::Malformed("keyring encoding truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u32(&mut self) -> Result<u32, CryptoError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64, CryptoError> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Aad {
        Aad::new("t").str("r")
    }

    #[test]
    fn rotate_keeps_old_terms_decrypting_and_writes_with_new() {
        let mut k = Keyring::new(Cipher::XChaCha20Poly1305);
        let old = k.seal(&ctx(), b"one");
        assert_eq!(k.rotate(), 2);
        let new = k.seal(&ctx(), b"two");
        assert_eq!(aead::EnvelopeHeader::parse(&old).unwrap().key_id, 1);
        assert_eq!(aead::EnvelopeHeader::parse(&new).unwrap().key_id, 2);
        assert_eq!(k.open(&ctx(), &old).unwrap().expose(), b"one");
        assert_eq!(k.open(&ctx(), &new).unwrap().expose(), b"two");
        let infos = k.terms();
        assert_eq!(
            infos.iter().map(|t| (t.id, t.uses, t.active)).collect::<Vec<_>>(),
            vec![(1, 1, false), (2, 1, true)]
        );
    }

    #[test]
    fn sealed_keyring_round_trips_and_is_bound_to_vault_id() {
        let mut k = Keyring::new(Cipher::Aes256Gcm);
        k.rotate();
        let root = Key32::random();
        let sealed = k.seal_under(&root, "vault-a");
        let back = Keyring::open_under(&root, "vault-a", &sealed).unwrap();
        assert_eq!(back.terms(), k.terms());
        assert_eq!(back.subkey(b"x"), k.subkey(b"x"));
        assert!(matches!(Keyring::open_under(&root, "vault-b", &sealed), Err(CryptoError::Authentication)));
        assert!(Keyring::open_under(&Key32::random(), "vault-a", &sealed).is_err());
    }

    #[test]
    fn unknown_term_is_named() {
        let mut a = Keyring::new(Cipher::XChaCha20Poly1305);
        a.rotate();
        let env = a.seal(&ctx(), b"x");
        let b = Keyring::new(Cipher::XChaCha20Poly1305);
        assert!(matches!(b.open(&ctx(), &env), Err(CryptoError::UnknownTerm(2))));
    }

    #[test]
    fn exhausted_aes_term_rotates_itself() {
        let mut k = Keyring::new(Cipher::Aes256Gcm);
        k.terms[0].uses = Cipher::Aes256Gcm.max_messages_per_key();
        let env = k.seal(&ctx(), b"x");
        assert_eq!(aead::EnvelopeHeader::parse(&env).unwrap().key_id, 2);
        assert_eq!(k.active_term(), 2);
    }

    #[test]
    fn retain_drops_only_unused_inactive_terms() {
        let mut k = Keyring::new(Cipher::XChaCha20Poly1305);
        k.rotate();
        k.rotate();
        assert_eq!(k.retain_terms(|id| id == 2), 1);
        assert_eq!(k.terms().iter().map(|t| t.id).collect::<Vec<_>>(), vec![2, 3]);
    }
}
