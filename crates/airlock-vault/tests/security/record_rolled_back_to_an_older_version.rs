//! Attack: replay an older copy of a record, bringing back a credential that was rotated because it leaked.

use crate::common::*;
use airlock_crypto::SecretBytes;

#[test]
fn record_rolled_back_to_an_older_version_is_detected() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "TOKEN", b"leaked-old-value");
    let old_body = split(&std::fs::read(fx.vault_path()).unwrap()).1;
    let old_record: serde_json::Value =
        serde_json::from_slice::<serde_json::Value>(&old_body).unwrap()["records"][0].clone();
    v.rotate(&id("TOKEN"), SecretBytes::copy_from(b"fresh-new-value")).unwrap();
    tamper_body(&fx.vault_path(), |b| b["records"][0] = old_record.clone());
    let e = fx.reopen().unwrap_err();
    assert!(matches!(e, airlock_vault::VaultError::Tampered(_)), "{e}");
}

#[test]
fn record_with_its_version_counter_edited_is_detected() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "TOKEN", b"value");
    tamper_body(&fx.vault_path(), |b| b["records"][0]["version"] = 7.into());
    let e = fx.reopen().unwrap_err().to_string();
    assert!(e.contains("record default/TOKEN"), "{e}");
}
