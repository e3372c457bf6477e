//! Attack: in a sealed file committed to git, swap the envelopes of two keys (so that the value meant for one host
//! is injected toward another), or copy an envelope from another sealed file under the same key path. The attacker
//! can edit the file (a pull request, a compromised checkout) but holds no key. Every envelope's associated data
//! binds the file id and the key path, so each moved envelope fails on its own, and the error names the keys.

use airlock_crypto::{Cipher, SecretBytes};
use airlock_vault::backend::sealed_file::{NewRecipient, SealedError, SealedFile, SealedFileBackend, Unlock, Unlocker};
use airlock_vault::backend::{BackendError, Locator, SecretBackend};

fn sealed(dir: &std::path::Path, name: &str, key: &std::path::Path, values: &[(&str, &[u8])]) -> std::path::PathBuf {
    let file = dir.join(name);
    SealedFile::create(&file, Cipher::XChaCha20Poly1305, vec![NewRecipient::keyfile(key)]).unwrap();
    let u = Unlocker::new(Unlock::keyfile(key));
    for (k, v) in values {
        SealedFile::edit(&file, &u, |f| f.set(k, &SecretBytes::copy_from(v))).unwrap();
    }
    file
}

fn line<'a>(text: &'a str, leaf: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(&format!("{leaf} = "))).unwrap()
}

fn envelope(l: &str) -> &str {
    l.split_once(" = ").unwrap().1
}

#[test]
fn envelopes_swapped_between_two_keys_are_detected_and_both_keys_named() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("team.key");
    let file =
        sealed(dir.path(), "s.toml", &key, &[("low_trust", b"low-trust-value"), ("high_trust", b"high-trust-value")]);
    let good = std::fs::read_to_string(&file).unwrap();
    let (lo, hi) = (line(&good, "low_trust"), line(&good, "high_trust"));
    let swapped = good
        .replace(lo, &format!("low_trust = {}", envelope(hi)))
        .replace(hi, &format!("high_trust = {}", envelope(lo)));
    std::fs::write(&file, swapped).unwrap();

    let e = SealedFile::open(&file, &Unlocker::new(Unlock::keyfile(&key))).unwrap_err();
    assert!(matches!(&e, SealedError::ValueTampered { keys, .. } if keys == &["high_trust", "low_trust"]), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("keys high_trust, low_trust") && !m.contains("trust-value"), "{m}");

    // Through the backend, neither value is served.
    std::fs::write(&file, &good).unwrap();
    let b = SealedFileBackend::open(&file, Unlock::keyfile(&key)).unwrap();
    std::fs::write(
        &file,
        good.replace(lo, &format!("low_trust = {}", envelope(hi)))
            .replace(hi, &format!("high_trust = {}", envelope(lo))),
    )
    .unwrap();
    for k in ["low_trust", "high_trust"] {
        let l = Locator::File { path: file.display().to_string(), key: k.into() };
        assert!(matches!(b.read(&l), Err(BackendError::Invalid { .. })), "{k} was served");
    }

    // Restoring the file restores everything: the failed reads wrote nothing.
    std::fs::write(&file, &good).unwrap();
    let f = SealedFile::open(&file, &Unlocker::new(Unlock::keyfile(&key))).unwrap();
    assert_eq!(f.get("high_trust").unwrap().expose(), b"high-trust-value");
}

#[test]
fn an_envelope_copied_from_another_sealed_file_under_the_same_key_does_not_open() {
    // Even when one key file opens both: each file has its own data key (and its file id is in every envelope's
    // associated data, which keeps even a copied file's envelopes apart; see the unit tests).
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("team.key");
    let prod = sealed(dir.path(), "prod.toml", &key, &[("api_key", b"prod-value")]);
    let staging = sealed(dir.path(), "staging.toml", &key, &[("api_key", b"staging-value")]);
    let prod_text = std::fs::read_to_string(&prod).unwrap();
    let staging_text = std::fs::read_to_string(&staging).unwrap();
    std::fs::write(&prod, prod_text.replace(line(&prod_text, "api_key"), line(&staging_text, "api_key"))).unwrap();
    let e = SealedFile::open(&prod, &Unlocker::new(Unlock::keyfile(&key))).unwrap_err();
    assert!(matches!(&e, SealedError::ValueTampered { keys, .. } if keys == &["api_key"]), "{e:?}");
    assert!(e.to_string().contains("moved from another key or another file"), "{e}");
}
