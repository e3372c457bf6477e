//! Attack: swap the ciphertexts of two records so that a tool asking for one secret gets the other (e.g. the
//! value meant for a low-trust host ends up injected toward another).

use crate::common::*;

#[test]
fn ciphertext_swapped_between_records_is_detected_and_named() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "LOW_TRUST", b"low-trust-value");
    set(&mut v, "HIGH_TRUST", b"high-trust-value");
    let original = std::fs::read(fx.vault_path()).unwrap();
    tamper_body(&fx.vault_path(), |b| {
        let recs = b["records"].as_array_mut().unwrap();
        let a = recs[0]["envelope"].clone();
        recs[0]["envelope"] = recs[1]["envelope"].clone();
        recs[1]["envelope"] = a;
    });
    let e = fx.reopen().unwrap_err().to_string();
    assert!(e.contains("record default/LOW_TRUST") && e.contains("does not belong to this record"), "{e}");

    // Restoring the file restores everything: the failed open wrote nothing.
    std::fs::write(fx.vault_path(), &original).unwrap();
    let mut v = fx.reopen().unwrap();
    assert_eq!(v.resolve(&id("LOW_TRUST")).unwrap().expose(), b"low-trust-value");
    assert_eq!(v.resolve(&id("HIGH_TRUST")).unwrap().expose(), b"high-trust-value");
}
