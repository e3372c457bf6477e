//! Attack: delete a record (e.g. a canary secret, or a rotated credential's record) without the key.

use crate::common::*;

#[test]
fn record_deleted_without_the_key_is_detected() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "A", b"value-a");
    set(&mut v, "CANARY", b"canary-value");
    tamper_body(&fx.vault_path(), |b| {
        b["records"].as_array_mut().unwrap().pop();
    });
    let e = fx.reopen().unwrap_err();
    assert!(matches!(e, airlock_vault::VaultError::Tampered(_)), "{e}");
    assert!(e.to_string().contains("HMAC"), "{e}");
}
