//! Attack: copy a KEK slot from a vault the attacker controls (whose key file they have) into the victim's vault,
//! hoping the victim's root key now opens with the attacker's key file.

use airlock_crypto::{KekInputs, KekSpec};
use airlock_vault::{InitOptions, Vault};

use crate::common::*;

#[test]
fn kek_slot_transplanted_from_another_vault_does_not_open_it() {
    let (victim, mut v) = Fixture::new();
    set(&mut v, "A", b"victim-value");
    let attacker_dir = tempfile::tempdir().unwrap();
    let attacker_key = attacker_dir.path().join("attacker.key");
    Vault::init(
        &attacker_dir.path().join("h"),
        &[KekSpec::Keyfile(attacker_key.clone())],
        &InitOptions::default(),
        &mut KekInputs::none(),
    )
    .unwrap();
    let attacker_body = split(&std::fs::read(Vault::file_path(&attacker_dir.path().join("h"))).unwrap()).1;
    let attacker_slot = serde_json::from_slice::<serde_json::Value>(&attacker_body).unwrap()["slots"][0].clone();
    tamper_body(&victim.vault_path(), |b| b["slots"] = serde_json::json!([attacker_slot]));
    let mut stolen = Vault::open(&victim.home).unwrap();
    let e = stolen.unlock(&mut KekInputs { passphrase: None, keyfile_override: Some(attacker_key) }, None).unwrap_err();
    assert!(e.to_string().contains("does not unlock slot 1"), "{e}");
}
