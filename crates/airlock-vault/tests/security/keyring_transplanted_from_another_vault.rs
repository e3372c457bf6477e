//! Attack: replace the victim's sealed keyring and slots with the attacker's own (so the attacker's key file opens
//! the vault), hoping the victim's records then decrypt, or that new secrets get written under the attacker's keys.

use airlock_crypto::{KekInputs, KekSpec};
use airlock_vault::{InitOptions, Vault, VaultError};

use crate::common::*;

#[test]
fn keyring_transplanted_from_another_vault_is_detected() {
    let (victim, mut v) = Fixture::new();
    set(&mut v, "A", b"victim-value");
    let adir = tempfile::tempdir().unwrap();
    let akey = adir.path().join("attacker.key");
    Vault::init(
        &adir.path().join("h"),
        &[KekSpec::Keyfile(akey.clone())],
        &InitOptions::default(),
        &mut KekInputs::none(),
    )
    .unwrap();
    let abody: serde_json::Value =
        serde_json::from_slice(&split(&std::fs::read(Vault::file_path(&adir.path().join("h"))).unwrap()).1).unwrap();
    tamper_body(&victim.vault_path(), |b| {
        b["slots"] = abody["slots"].clone();
        b["keyring"] = abody["keyring"].clone();
    });
    let mut stolen = Vault::open(&victim.home).unwrap();
    let e = stolen.unlock(&mut KekInputs { passphrase: None, keyfile_override: Some(akey) }, None).unwrap_err();
    // The slot and keyring are bound to the attacker's vault id, not the victim's.
    assert!(matches!(e, VaultError::NoSlotOpened { .. } | VaultError::Tampered(_)), "{e}");
}
