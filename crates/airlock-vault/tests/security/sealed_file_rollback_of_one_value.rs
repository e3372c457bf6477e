//! Attack: replay an older envelope of one key (from git history) into the current sealed file, so that a rotated
//! (say, revoked) credential comes back into use. The old envelope is authentic: same file, same key path, same data
//! key, so it would decrypt. Only the MAC over every (key path, envelope) pair can tell, and it must: the file is
//! refused, for every key, until it is restored.

use airlock_crypto::{Cipher, SecretBytes};
use airlock_vault::backend::sealed_file::{NewRecipient, SealedError, SealedFile, SealedFileBackend, Unlock, Unlocker};
use airlock_vault::backend::{BackendError, Locator, SecretBackend};

fn line(text: &str, leaf: &str) -> String {
    text.lines().find(|l| l.starts_with(&format!("{leaf} = "))).unwrap().to_string()
}

#[test]
fn an_older_envelope_of_one_key_replayed_into_the_file_fails_the_mac() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("team.key");
    let file = dir.path().join("s.toml");
    SealedFile::create(&file, Cipher::XChaCha20Poly1305, vec![NewRecipient::keyfile(&key)]).unwrap();
    let u = Unlocker::new(Unlock::keyfile(&key));
    let set = |k: &str, v: &[u8]| SealedFile::edit(&file, &u, |f| f.set(k, &SecretBytes::copy_from(v))).unwrap();
    set("token", b"revoked-old-token");
    set("other", b"unrelated-value");
    let old = line(&std::fs::read_to_string(&file).unwrap(), "token");
    set("token", b"current-new-token");
    let current = std::fs::read_to_string(&file).unwrap();
    let b = SealedFileBackend::open(&file, Unlock::keyfile(&key)).unwrap();

    std::fs::write(&file, current.replace(&line(&current, "token"), &old)).unwrap();
    let e = SealedFile::open(&file, &u).unwrap_err();
    assert!(matches!(e, SealedError::Tampered { .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("MAC does not match") && m.contains("replaced by an older envelope"), "{m}");
    for v in ["revoked-old-token", "current-new-token", "unrelated-value"] {
        assert!(!m.contains(v), "{m}");
    }
    // Fail closed for the whole file: neither the replayed key nor any other is served.
    for k in ["token", "other"] {
        let l = Locator::File { path: file.display().to_string(), key: k.into() };
        assert!(matches!(b.read(&l), Err(BackendError::Invalid { .. })), "{k} was served from a rolled-back file");
    }
    // And no write builds on it.
    let l = Locator::File { path: file.display().to_string(), key: "new".into() };
    assert!(b.write(&l, &SecretBytes::copy_from(b"x"), airlock_vault::backend::Expect::Any).is_err());

    std::fs::write(&file, &current).unwrap();
    assert_eq!(SealedFile::open(&file, &u).unwrap().get("token").unwrap().expose(), b"current-new-token");
}
