//! The `keyring` unlock slot end to end, against a real Secret Service (scripts/test.sh starts a private D-Bus
//! session with an unlocked gnome-keyring and sets AIRLOCK_REQUIRE_OS_KEYRING=1, so this fails rather than skips
//! there). Outside such a session it skips with a notice.

mod common;

use airlock_crypto::kek::OS_KEYRING_SERVICE;
use common::*;

fn secret_service_session() -> Option<std::ffi::OsString> {
    let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS");
    if bus.is_none() {
        assert!(
            std::env::var_os("AIRLOCK_REQUIRE_OS_KEYRING").is_none(),
            "AIRLOCK_REQUIRE_OS_KEYRING is set but there is no D-Bus session (run scripts/test.sh)"
        );
        eprintln!("notice: no D-Bus session; skipping the OS keyring CLI test");
    }
    bus
}

#[test]
fn keyring_slot_unlocks_without_a_prompt_and_rekey_deletes_its_entry() {
    let Some(bus) = secret_service_session() else { return };
    let mut al = Airlock::new();
    al.set_base_env("DBUS_SESSION_BUS_ADDRESS", &bus);
    let init = al.call(["--json", "init", "--kek", "keyring"]).expect(0).json();
    let user =
        init["slots"][0]["description"].as_str().expect("slot description").rsplit('/').next().unwrap().to_string();
    assert!(user.starts_with("vault-") && user.contains("-slot-1-"), "{init}");
    assert_eq!(init["slots"][0]["kind"], "keyring");

    // No passphrase anywhere: the OS keyring alone opens the vault.
    let value = random_bytes(48);
    al.call(["secret", "set", "A", "--raw"]).stdin(&value).expect(0);
    assert_eq!(al.call(["--json", "secret", "list"]).expect(0).json()[0]["name"], "A");
    let mut v = open_prompt_free(&al.home);
    assert_eq!(v.resolve(&id("A")).expect("resolve").expose(), &value[..]);
    assert!(airlock_crypto::os_keyring::load(OS_KEYRING_SERVICE, &user).is_ok());

    // Replace the keyring slot with a passphrase: the old keyring entry is deleted, and only the passphrase opens.
    al.call(["key", "rekey", "--kek", "passphrase"])
        .args(FAST_KDF)
        .env("AIRLOCK_NEW_PASSPHRASE", "new pass phrase 77")
        .expect(0);
    assert!(airlock_crypto::os_keyring::load(OS_KEYRING_SERVICE, &user).is_err(), "old keyring entry still present");
    al.call(["secret", "list"]).expect(3);
    al.call(["secret", "list"]).env("AIRLOCK_PASSPHRASE", "new pass phrase 77").expect(0);
    let mut v = open_with_passphrase(&al.home, "new pass phrase 77");
    assert_eq!(v.resolve(&id("A")).expect("resolve").expose(), &value[..]);
}

#[test]
fn deleted_keyring_entry_is_reported_not_mistaken_for_a_wrong_key() {
    let Some(bus) = secret_service_session() else { return };
    let mut al = Airlock::new();
    al.set_base_env("DBUS_SESSION_BUS_ADDRESS", &bus);
    let init = al.call(["--json", "init", "--kek", "keyring"]).expect(0).json();
    let user = init["slots"][0]["description"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    airlock_crypto::os_keyring::delete(OS_KEYRING_SERVICE, &user).expect("delete");
    al.call(["secret", "list"]).expect(3).err_has("no Airlock entry in the OS keyring");
}

#[test]
fn a_stale_rekey_to_the_keyring_cannot_delete_the_live_keyring_entry() {
    // Two holders unlocked from the same state both rekey to the OS keyring. The second fails (the vault was
    // rekeyed under it) and cleans up its own new entry, which must not be the one the file now depends on.
    let Some(_bus) = secret_service_session() else { return };
    use airlock_crypto::kdf::Argon2Params;
    use airlock_crypto::{KekInputs, KekSpec};
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let mut first = airlock_vault::Vault::init(
        &home,
        &[KekSpec::Keyfile(dir.path().join("k"))],
        &Default::default(),
        &mut KekInputs::none(),
    )
    .unwrap();
    first.set(&id("A"), Default::default(), airlock_crypto::SecretBytes::copy_from(b"value-for-a-123")).unwrap();
    let mut stale = open_prompt_free(&home);
    let argon2 = Argon2Params { m_kib: 1024, t: 1, p: 1 };
    let report = first.rekey(&[KekSpec::OsKeyring], argon2, &mut KekInputs::none()).unwrap();
    let e = stale.rekey(&[KekSpec::OsKeyring], argon2, &mut KekInputs::none()).unwrap_err();
    assert!(matches!(e, airlock_vault::VaultError::Rekeyed), "{e}");
    // The vault still opens from the keyring, with its data.
    let mut v = open_prompt_free(&home);
    assert_eq!(v.resolve(&id("A")).unwrap().expose(), b"value-for-a-123");
    // Clean up this test's keyring entry.
    let user = report.slots[0].description.rsplit('/').next().unwrap().to_string();
    airlock_crypto::os_keyring::delete(OS_KEYRING_SERVICE, &user).unwrap();
}
