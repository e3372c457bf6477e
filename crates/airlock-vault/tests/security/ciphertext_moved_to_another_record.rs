//! Attack: copy one record's ciphertext over another's (A's value now also answers for B).

use crate::common::*;

#[test]
fn ciphertext_moved_to_another_record_is_detected() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "A", b"value-a");
    set(&mut v, "B", b"value-b");
    tamper_body(&fx.vault_path(), |b| {
        let recs = b["records"].as_array_mut().unwrap();
        recs[1]["envelope"] = recs[0]["envelope"].clone();
    });
    let e = fx.reopen().unwrap_err().to_string();
    assert!(e.contains("record default/B"), "{e}");
}

#[test]
fn record_renamed_in_the_clear_is_detected() {
    // The address is in the AAD: renaming a record (to have a secret answer under another name) fails.
    let (fx, mut v) = Fixture::new();
    set(&mut v, "A", b"value-a");
    tamper_body(&fx.vault_path(), |b| b["records"][0]["name"] = "RENAMED".into());
    let e = fx.reopen().unwrap_err().to_string();
    assert!(e.contains("record default/RENAMED"), "{e}");
}
