//! Attack: edit a sealed file's `[airlock]` table. Inflate a passphrase recipient's Argon2id cost so that opening
//! the file exhausts memory; copy in a recipient from a file whose passphrase the attacker knows; drop a recipient;
//! switch the cipher; claim another format version. Each is refused: cost limits before any work, recipients
//! bound to the file, and the MAC over all metadata.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use airlock_crypto::kdf::Argon2Params;
use airlock_crypto::{Cipher, SecretBytes};
use airlock_vault::backend::sealed_file::{NewRecipient, SealedError, SealedFile, Unlock, Unlocker};

fn fast() -> Argon2Params {
    Argon2Params { m_kib: 64, t: 1, p: 1 }
}

fn pass(p: &'static str) -> Unlocker {
    Unlocker::new(Unlock::passphrase(move || Ok(SecretBytes::copy_from(p.as_bytes()))))
}

fn create(dir: &std::path::Path, name: &str, passphrase: &str, key: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join(name);
    SealedFile::create(
        &file,
        Cipher::XChaCha20Poly1305,
        vec![
            NewRecipient::passphrase(SecretBytes::copy_from(passphrase.as_bytes()), fast()),
            NewRecipient::keyfile(key),
        ],
    )
    .unwrap();
    SealedFile::edit(&file, &Unlocker::new(Unlock::keyfile(key)), |f| f.set("token", &SecretBytes::copy_from(b"v")))
        .unwrap();
    file
}

#[test]
fn inflated_kdf_parameters_are_refused_before_the_passphrase_is_even_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let file = create(dir.path(), "s.toml", "team pass", &dir.path().join("k"));
    let text = std::fs::read_to_string(&file).unwrap();
    for inflated in ["m_kib = 4194304, t = 1, p = 1", "m_kib = 64, t = 1000000, p = 1", "m_kib = 64, t = 1, p = 4096"] {
        std::fs::write(&file, text.replace("m_kib = 64, t = 1, p = 1", inflated)).unwrap();
        let asked = Arc::new(AtomicUsize::new(0));
        let a = Arc::clone(&asked);
        let u = Unlocker::new(Unlock::passphrase(move || {
            a.fetch_add(1, Ordering::SeqCst);
            Ok(SecretBytes::copy_from(b"team pass"))
        }));
        let e = SealedFile::open(&file, &u).unwrap_err();
        assert!(matches!(e, SealedError::Malformed { .. }), "{inflated}: {e:?}");
        assert!(e.to_string().contains("exceed the sealed-file limits"), "{e}");
        assert_eq!(asked.load(Ordering::SeqCst), 0, "{inflated}: the KDF input was fetched for a refused recipient");
    }
}

#[test]
fn a_recipient_copied_from_a_file_whose_passphrase_the_attacker_knows_does_not_open_this_one() {
    let dir = tempfile::tempdir().unwrap();
    let victim = create(dir.path(), "victim.toml", "team pass", &dir.path().join("k1"));
    let mine = create(dir.path(), "mine.toml", "attacker pass", &dir.path().join("k2"));
    let v = std::fs::read_to_string(&victim).unwrap();
    let m = std::fs::read_to_string(&mine).unwrap();
    let block = |t: &str, name: &str| {
        let start = t.find(&format!("[[airlock.recipients]]\nname = \"{name}\"")).unwrap();
        let end = t[start + 1..].find("\n[[").map(|i| start + 1 + i + 1).unwrap_or(t.len());
        t[start..end].to_string()
    };
    // The attacker's passphrase recipient in place of the victim's.
    std::fs::write(&victim, v.replace(&block(&v, "passphrase"), &block(&m, "passphrase"))).unwrap();
    let e = SealedFile::open(&victim, &pass("attacker pass")).unwrap_err();
    assert!(matches!(e, SealedError::Unlock { .. }), "{e:?}");
    // Even with the attacker's file id too, the data key it wraps is the attacker's: the victim's values do not open
    // under it and the MAC fails.
    let id = |t: &str| t.lines().find(|l| l.starts_with("file_id = ")).unwrap().to_string();
    std::fs::write(&victim, v.replace(&block(&v, "passphrase"), &block(&m, "passphrase")).replace(&id(&v), &id(&m)))
        .unwrap();
    let e = SealedFile::open(&victim, &pass("attacker pass")).unwrap_err();
    assert!(matches!(e, SealedError::ValueTampered { .. } | SealedError::Tampered { .. }), "{e:?}");
    std::fs::write(&victim, &v).unwrap();
    SealedFile::open(&victim, &pass("team pass")).unwrap();
}

#[test]
fn dropped_recipients_switched_ciphers_and_other_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let file = create(dir.path(), "s.toml", "team pass", &key);
    let text = std::fs::read_to_string(&file).unwrap();
    let kf = text.find("[[airlock.recipients]]\nname = \"keyfile-k\"").unwrap();
    let kf_end = text[kf + 1..].find("\n[[").map(|i| kf + 1 + i + 1).unwrap_or(text.len());
    for (edited, why) in [
        (format!("{}{}", &text[..kf], &text[kf_end..]), "MAC does not match"),
        (text.replace("cipher = \"xchacha20-poly1305\"", "cipher = \"aes-256-gcm\""), "MAC does not match"),
        (text.replace("version = 1", "version = 2"), "format version 2 is not supported"),
        (text.replace("type = \"keyfile\"", "type = \"passphrase\""), "`argon2` must be a table"),
    ] {
        std::fs::write(&file, &edited).unwrap();
        let e = SealedFile::open(&file, &pass("team pass")).unwrap_err().to_string();
        assert!(e.contains(why), "{why}: {e}");
    }
    std::fs::write(&file, &text).unwrap();
    SealedFile::open(&file, &pass("team pass")).unwrap();
}
