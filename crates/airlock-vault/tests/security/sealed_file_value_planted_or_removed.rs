//! Attack: add a value to a sealed file without the key, so that Airlock injects a credential the attacker chose
//! (one for an account the attacker controls), either in the clear or as an envelope lifted from another key; or
//! delete a value so that a fallback (another backend, an older default) is used instead. A plain value is refused
//! by the parser, naming the key and never echoing the text; a lifted envelope fails its own associated data; a
//! removal fails the MAC.

use airlock_crypto::{Cipher, SecretBytes};
use airlock_vault::backend::sealed_file::{NewRecipient, SealedError, SealedFile, Unlock, Unlocker};

fn setup() -> (tempfile::TempDir, std::path::PathBuf, Unlocker, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    let file = dir.path().join("s.toml");
    SealedFile::create(&file, Cipher::XChaCha20Poly1305, vec![NewRecipient::keyfile(&key)]).unwrap();
    let u = Unlocker::new(Unlock::keyfile(&key));
    for (k, v) in [("github.token", &b"real-github-token"[..]), ("slack.token", b"real-slack-token")] {
        SealedFile::edit(&file, &u, |f| f.set(k, &SecretBytes::copy_from(v))).unwrap();
    }
    let text = std::fs::read_to_string(&file).unwrap();
    (dir, file, u, text)
}

#[test]
fn a_value_planted_in_the_clear_is_refused_naming_the_key_not_the_value() {
    let (_d, file, u, text) = setup();
    for planted in [
        "[github]\ntoken = \"ghp_attackerChosenToken0000000000000000\"\n",
        "github.user = \"ghp_attackerChosenToken0000000000000000\"\n[github]\n",
        "[github]\ntoken = '''ENC[airlock:v1,xchacha20-poly1305,ghp_attackerChosenToken0000000000000000]'''\n",
    ] {
        let edited = if planted.ends_with("[github]\n") {
            text.replacen("[github]\n", planted, 1)
        } else {
            text.replacen("[github]\ntoken = ", &format!("{planted}x_token = "), 1)
        };
        std::fs::write(&file, &edited).unwrap();
        let e = SealedFile::open(&file, &u).unwrap_err();
        assert!(matches!(e, SealedError::Malformed { .. }), "{planted}: {e:?}");
        let m = e.to_string();
        assert!(m.contains("key github.") || m.contains("not valid TOML"), "{m}");
        assert!(!m.contains("attackerChosen"), "{m}");
    }
}

#[test]
fn an_envelope_lifted_to_a_new_key_and_a_removed_key_are_both_refused() {
    let (_d, file, u, text) = setup();
    let gh = text.lines().find(|l| l.starts_with("token = ") && text.find(l) > text.find("[github]")).unwrap();
    let lifted = text.replacen("[slack]\n", &format!("[slack]\nuser_token = {}\n", gh.split_once(" = ").unwrap().1), 1);
    std::fs::write(&file, lifted).unwrap();
    let e = SealedFile::open(&file, &u).unwrap_err();
    assert!(matches!(&e, SealedError::ValueTampered { keys, .. } if keys == &["slack.user_token"]), "{e:?}");

    let removed = text.replacen(&format!("{gh}\n"), "", 1);
    assert_ne!(removed, text);
    std::fs::write(&file, removed).unwrap();
    let e = SealedFile::open(&file, &u).unwrap_err();
    assert!(matches!(e, SealedError::Tampered { .. }), "{e:?}");
    assert!(e.to_string().contains("a value was removed"), "{e}");

    std::fs::write(&file, &text).unwrap();
    assert_eq!(SealedFile::open(&file, &u).unwrap().keys(), ["github.token", "slack.token"]);
}
