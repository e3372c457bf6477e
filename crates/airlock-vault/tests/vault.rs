//! The vault's behaviour through its public API: lifecycle, versions, rotation, rekeying, memory-only mode.

mod common;

use std::time::Duration;

use airlock_crypto::{Cipher, KekInputs, KekSpec, SecretBytes};
use airlock_vault::{InitOptions, NewSecret, Vault, VaultError};
use common::*;

#[test]
fn lifecycle_set_list_rotate_pin_remove() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "GITHUB_TOKEN", b"ghp_value_one");
    set(&mut v, "OPENAI_KEY", b"sk-value");
    let list = v.list().unwrap();
    assert_eq!(list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), vec!["GITHUB_TOKEN", "OPENAI_KEY"]);
    assert_eq!(list[0].hosts, vec!["api.example.com"]);

    let info = v.rotate(&id("GITHUB_TOKEN"), SecretBytes::copy_from(b"ghp_value_two")).unwrap();
    assert_eq!((info.current_version, info.versions.clone()), (2, vec![1, 2]));
    assert!(info.rotated.is_some());
    let info = v.pin(&id("GITHUB_TOKEN"), "Uploads.GitHub.com").unwrap();
    assert_eq!(info.hosts, vec!["api.example.com", "uploads.github.com"]);
    v.remove(&id("OPENAI_KEY")).unwrap();
    assert!(matches!(v.remove(&id("OPENAI_KEY")), Err(VaultError::NotFound(_))));

    // Everything above is on disk: a fresh process sees the same.
    let mut again = fx.reopen().unwrap();
    assert_eq!(again.resolve(&id("GITHUB_TOKEN")).unwrap().expose(), b"ghp_value_two");
    assert_eq!(again.resolve_version(&id("GITHUB_TOKEN"), 1).unwrap().expose(), b"ghp_value_one");
    assert_eq!(again.list().unwrap().len(), 1);
    assert_eq!(again.info(&id("GITHUB_TOKEN")).unwrap().hosts.len(), 2);
}

#[test]
fn old_versions_beyond_the_keep_limit_are_dropped() {
    let (_fx, mut v) = Fixture::new();
    let opts = NewSecret { keep_versions: Some(3), ..Default::default() };
    v.set(&id("T"), opts, SecretBytes::copy_from(b"v1")).unwrap();
    for i in 2..=6 {
        v.rotate(&id("T"), SecretBytes::copy_from(format!("v{i}").as_bytes())).unwrap();
    }
    let info = v.info(&id("T")).unwrap();
    assert_eq!(info.versions, vec![4, 5, 6]);
    assert!(matches!(v.resolve_version(&id("T"), 3), Err(VaultError::VersionNotFound { .. })));
    assert_eq!(v.resolve_version(&id("T"), 4).unwrap().expose(), b"v4");
}

#[test]
fn non_utf8_and_one_mebibyte_values_round_trip() {
    let (fx, mut v) = Fixture::new();
    let binary: Vec<u8> = (0..=255u8).chain([0, 0xff, 0xc3, 0x28]).collect();
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    set(&mut v, "BIN", &binary);
    set(&mut v, "BIG", &big);
    let mut again = fx.reopen().unwrap();
    assert_eq!(again.resolve(&id("BIN")).unwrap().expose(), &binary[..]);
    assert_eq!(again.resolve(&id("BIG")).unwrap().expose(), &big[..]);
}

#[test]
fn duplicate_and_empty_values_are_refused_without_changing_the_store() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "A", b"first");
    let before = std::fs::read(fx.vault_path()).unwrap();
    let e = v.set(&id("A"), NewSecret::default(), SecretBytes::copy_from(b"second")).unwrap_err();
    assert!(matches!(e, VaultError::AlreadyExists(ref n) if n == "default/A"), "{e}");
    let e = v.set(&id("B"), NewSecret::default(), SecretBytes::new(vec![])).unwrap_err();
    assert!(matches!(e, VaultError::EmptyValue));
    let e = v.set(
        &id("C"),
        NewSecret { hosts: vec!["not a host".into()], ..Default::default() },
        SecretBytes::copy_from(b"x"),
    );
    assert!(matches!(e, Err(VaultError::InvalidHost { .. })));
    assert_eq!(std::fs::read(fx.vault_path()).unwrap(), before, "a refused write must not touch the file");
    assert_eq!(fx.reopen().unwrap().resolve(&id("A")).unwrap().expose(), b"first");
}

#[test]
fn workspaces_keep_same_names_apart() {
    let (_fx, mut v) = Fixture::new();
    let a = airlock_vault::SecretId::new("ci", "TOKEN").unwrap();
    let b = airlock_vault::SecretId::new("prod", "TOKEN").unwrap();
    v.set(&a, NewSecret::default(), SecretBytes::copy_from(b"ci-value")).unwrap();
    v.set(&b, NewSecret::default(), SecretBytes::copy_from(b"prod-value")).unwrap();
    assert_eq!(v.resolve(&a).unwrap().expose(), b"ci-value");
    assert_eq!(v.resolve(&b).unwrap().expose(), b"prod-value");
}

#[test]
fn key_rotation_keeps_old_records_readable_and_rewrap_retires_old_terms() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "OLD", b"written-under-term-1");
    assert_eq!(v.rotate_key(false).unwrap(), 2);
    set(&mut v, "NEW", b"written-under-term-2");
    let mut again = fx.reopen().unwrap();
    assert_eq!(again.info(&id("OLD")).unwrap().term, 1);
    assert_eq!(again.info(&id("NEW")).unwrap().term, 2);
    assert_eq!(again.resolve(&id("OLD")).unwrap().expose(), b"written-under-term-1");
    let terms = again.status().terms.unwrap();
    assert_eq!(terms.iter().map(|t| (t.id, t.active)).collect::<Vec<_>>(), vec![(1, false), (2, true)]);

    assert_eq!(again.rotate_key(true).unwrap(), 3);
    let mut third = fx.reopen().unwrap();
    assert_eq!(third.status().terms.unwrap().iter().map(|t| t.id).collect::<Vec<_>>(), vec![3]);
    assert_eq!(third.info(&id("OLD")).unwrap().term, 3);
    assert_eq!(third.resolve(&id("OLD")).unwrap().expose(), b"written-under-term-1");
}

#[test]
fn rekey_replaces_the_unlock_keys_without_touching_data() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "A", b"value-a");
    let records_before = common::split(&std::fs::read(fx.vault_path()).unwrap()).1;
    let mut pass = || Ok(SecretBytes::copy_from(b"a new long passphrase"));
    let report = v
        .rekey(
            &[KekSpec::Passphrase],
            fast_argon2(),
            &mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None },
        )
        .unwrap();
    assert!(report.cleanup_errors.is_empty());
    let slots = report.slots;
    assert_eq!(slots.len(), 1);
    assert_eq!(slots[0].kind, "passphrase");
    assert_eq!(slots[0].id, 2, "slot ids are never reused");

    // The key file no longer opens it.
    assert!(matches!(fx.reopen(), Err(VaultError::NoSlotOpened { .. })));
    // The new passphrase does, and the data is unchanged (same ciphertexts).
    let mut again = Vault::open(&fx.home).unwrap();
    let mut pass = || Ok(SecretBytes::copy_from(b"a new long passphrase"));
    again.unlock(&mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None }, None).unwrap();
    assert_eq!(again.resolve(&id("A")).unwrap().expose(), b"value-a");
    let records_after = common::split(&std::fs::read(fx.vault_path()).unwrap()).1;
    let recs = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap()["records"].clone();
    assert_eq!(recs(&records_before), recs(&records_after));
}

#[test]
fn wrong_passphrase_is_named_and_right_one_opens() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let mut good = || Ok(SecretBytes::copy_from(b"correct horse battery staple"));
    let opts = InitOptions { argon2: fast_argon2(), ..Default::default() };
    Vault::init(
        &home,
        &[KekSpec::Passphrase],
        &opts,
        &mut KekInputs { passphrase: Some(&mut good), keyfile_override: None },
    )
    .unwrap();
    let mut v = Vault::open(&home).unwrap();
    let mut bad = || Ok(SecretBytes::copy_from(b"Correct horse battery staple"));
    let e = v.unlock(&mut KekInputs { passphrase: Some(&mut bad), keyfile_override: None }, None).unwrap_err();
    assert!(matches!(e, VaultError::WrongPassphrase), "{e}");
    assert_eq!(e.to_string(), "wrong passphrase");
    v.unlock(&mut KekInputs { passphrase: Some(&mut good), keyfile_override: None }, None).unwrap();
}

#[test]
fn any_of_several_slots_opens_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let keyfile = dir.path().join("k");
    let mut pass = || Ok(SecretBytes::copy_from(b"slot passphrase here"));
    let opts = InitOptions { argon2: fast_argon2(), ..Default::default() };
    let specs = [KekSpec::Passphrase, KekSpec::Keyfile(keyfile.clone())];
    let mut v =
        Vault::init(&home, &specs, &opts, &mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None })
            .unwrap();
    set(&mut v, "X", b"x-value");
    // Key file only.
    let mut a = Vault::open(&home).unwrap();
    assert_eq!(a.unlock(&mut KekInputs::none(), None).unwrap(), 2);
    // Passphrase only (key file gone).
    std::fs::remove_file(&keyfile).unwrap();
    let mut b = Vault::open(&home).unwrap();
    let mut pass = || Ok(SecretBytes::copy_from(b"slot passphrase here"));
    assert_eq!(b.unlock(&mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None }, None).unwrap(), 1);
    assert_eq!(b.resolve(&id("X")).unwrap().expose(), b"x-value");
    // Neither: the error lists every slot and why it failed.
    let mut c = Vault::open(&home).unwrap();
    let e = c.unlock(&mut KekInputs::none(), None).unwrap_err().to_string();
    assert!(e.contains("keyfile") && e.contains("passphrase"), "{e}");
}

#[test]
fn aes_256_gcm_vaults_work_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let opts = InitOptions { cipher: Cipher::Aes256Gcm, ..Default::default() };
    let mut v = Vault::init(&home, &[KekSpec::Keyfile(dir.path().join("k"))], &opts, &mut KekInputs::none()).unwrap();
    set(&mut v, "A", b"aes-value");
    assert_eq!(v.status().cipher, "aes-256-gcm");
    let mut again = Vault::open(&home).unwrap();
    again.unlock(&mut KekInputs::none(), None).unwrap();
    assert_eq!(again.resolve(&id("A")).unwrap().expose(), b"aes-value");
}

#[test]
fn ephemeral_vault_never_touches_disk() {
    let dir = tempfile::tempdir().unwrap();
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    let mut v = Vault::ephemeral(Cipher::XChaCha20Poly1305, 5);
    v.set(&id("E"), NewSecret::default(), SecretBytes::copy_from(b"in memory only")).unwrap();
    v.rotate(&id("E"), SecretBytes::copy_from(b"still in memory")).unwrap();
    v.rotate_key(true).unwrap();
    assert_eq!(v.resolve(&id("E")).unwrap().expose(), b"still in memory");
    assert!(v.status().path.is_none());
    assert!(matches!(
        v.rekey(&[KekSpec::Passphrase], fast_argon2(), &mut KekInputs::none()),
        Err(VaultError::Ephemeral(_))
    ));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), before.len());
}

#[test]
fn unlocked_material_expires_after_its_ttl_and_on_lock() {
    let (fx, _v) = Fixture::new();
    let mut v = Vault::open(&fx.home).unwrap();
    v.unlock(&mut KekInputs::none(), Some(Duration::from_millis(150))).unwrap();
    set(&mut v, "T", b"ttl-value");
    assert!(v.resolve(&id("T")).is_ok());
    std::thread::sleep(Duration::from_millis(200));
    assert!(matches!(v.resolve(&id("T")), Err(VaultError::Expired)));
    assert!(matches!(v.resolve(&id("T")), Err(VaultError::Locked)));
    v.unlock(&mut KekInputs::none(), None).unwrap();
    assert!(v.resolve(&id("T")).is_ok());
    v.lock();
    assert!(matches!(v.list(), Err(VaultError::Locked)));
    assert_eq!(v.status().secrets, 1, "status works while locked");
}

#[test]
fn a_second_handle_sees_changes_after_refresh() {
    let (fx, mut writer) = Fixture::new();
    let mut reader = fx.reopen().unwrap();
    set(&mut writer, "LATE", b"late-value");
    assert!(matches!(reader.resolve(&id("LATE")), Err(VaultError::NotFound(_))));
    reader.refresh().unwrap();
    assert_eq!(reader.resolve(&id("LATE")).unwrap().expose(), b"late-value");
    // And a write through the stale handle does not lose the other handle's record.
    let mut stale = fx.reopen().unwrap();
    set(&mut writer, "W1", b"1");
    set(&mut stale, "W2", b"2");
    let mut fresh = fx.reopen().unwrap();
    assert_eq!(fresh.list().unwrap().len(), 3);
}

#[test]
fn init_refuses_to_overwrite_and_needs_a_slot() {
    let (fx, _v) = Fixture::new();
    let e = Vault::init(
        &fx.home,
        &[KekSpec::Keyfile(fx.dir.path().join("k2"))],
        &InitOptions::default(),
        &mut KekInputs::none(),
    );
    assert!(matches!(e, Err(VaultError::AlreadyInitialized { .. })));
    let e = Vault::init(&fx.dir.path().join("other"), &[], &InitOptions::default(), &mut KekInputs::none());
    assert!(matches!(e, Err(VaultError::NoKekSlots)));
    assert!(matches!(Vault::open(&fx.dir.path().join("nothing")), Err(VaultError::NotInitialized { .. })));
}

#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (fx, _v) = Fixture::new();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&fx.home), 0o700);
    assert_eq!(mode(&fx.vault_path()), 0o600);
    assert_eq!(mode(&fx.home.join("vault.lock")), 0o600);
    assert_eq!(mode(&fx.keyfile), 0o600);
}

#[test]
fn debug_output_never_contains_values() {
    let (fx, mut v) = Fixture::new();
    let value = b"canary-5f2b9e-value-that-must-not-print";
    set(&mut v, "CANARY", value);
    let canary = std::str::from_utf8(value).unwrap();
    let mut surrogates = airlock_vault::surrogate::SurrogateMap::new();
    surrogates.surrogate_for(&id("CANARY"), value);
    let resolved = format!("{:?}", v.resolve(&id("CANARY")));
    let dumps = [
        format!("{v:?}"),
        resolved,
        format!("{:?}", v.list()),
        format!("{:?}", v.status()),
        format!("{surrogates:?}"),
        format!("{:?}", v.set(&id("CANARY"), NewSecret::default(), SecretBytes::copy_from(value))),
        format!("{:?}", fx.reopen().map(|_| ())),
    ];
    for d in &dumps {
        assert!(!d.contains(canary), "value leaked into Debug output: {d}");
    }
    assert!(dumps[1].contains("redacted"), "{}", dumps[1]);
}

#[test]
fn a_long_lived_handle_that_unlocks_again_sees_revocations_and_removals() {
    // A daemon-style holder: unlocked once, locked, unlocked again later. Meanwhile another process rekeyed the
    // vault away from the key file and removed a secret. The old key must not work, and the secret must be gone.
    let (fx, mut v) = Fixture::new();
    set(&mut v, "KEEP", b"keep-value");
    set(&mut v, "GONE", b"gone-value");
    let mut daemon = fx.reopen().unwrap();
    daemon.lock();
    v.remove(&id("GONE")).unwrap();
    let mut pass = || Ok(SecretBytes::copy_from(b"the new passphrase 9"));
    v.rekey(
        &[KekSpec::Passphrase],
        fast_argon2(),
        &mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None },
    )
    .unwrap();
    let e = daemon.unlock(&mut KekInputs::none(), None).unwrap_err();
    assert!(matches!(e, VaultError::NoSlotOpened { .. }), "revoked key file still unlocks: {e}");
    let mut pass = || Ok(SecretBytes::copy_from(b"the new passphrase 9"));
    daemon.unlock(&mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None }, None).unwrap();
    assert!(matches!(daemon.resolve(&id("GONE")), Err(VaultError::NotFound(_))));
    assert_eq!(daemon.resolve(&id("KEEP")).unwrap().expose(), b"keep-value");
}

#[test]
fn unlock_always_checks_credentials_even_when_unlocked_or_expired() {
    let (fx, _v) = Fixture::new();
    let mut v = Vault::open(&fx.home).unwrap();
    v.unlock(&mut KekInputs::none(), Some(Duration::from_millis(50))).unwrap();
    std::thread::sleep(Duration::from_millis(80));
    let bogus = fx.dir.path().join("bogus.key");
    airlock_crypto::kek::create_keyfile(&bogus).unwrap();
    let e = v.unlock(&mut KekInputs { passphrase: None, keyfile_override: Some(bogus.clone()) }, None);
    assert!(e.is_err(), "an expired vault unlocked with the wrong key");
    // And on a vault that is unlocked right now: a wrong key fails and leaves it locked.
    v.unlock(&mut KekInputs::none(), None).unwrap();
    assert!(v.unlock(&mut KekInputs { passphrase: None, keyfile_override: Some(bogus) }, None).is_err());
    assert!(matches!(v.list(), Err(VaultError::Locked)));
}

#[test]
fn expire_if_due_drops_keys_without_waiting_for_an_access() {
    let (fx, _v) = Fixture::new();
    let mut v = Vault::open(&fx.home).unwrap();
    v.unlock(&mut KekInputs::none(), Some(Duration::from_millis(30))).unwrap();
    v.expire_if_due();
    assert!(v.status().unlocked, "not due yet");
    std::thread::sleep(Duration::from_millis(50));
    v.expire_if_due();
    assert!(!v.status().unlocked);
}

#[test]
fn header_recipes_refuse_values_with_control_characters() {
    let (_fx, mut v) = Fixture::new();
    let recipe = || NewSecret {
        injection: Some(airlock_vault::Injection::header("X-Api-Key: {}").unwrap()),
        ..Default::default()
    };
    let e = v.set(&id("SPLIT"), recipe(), SecretBytes::copy_from(b"abc\r\nX-Admin: true")).unwrap_err();
    assert!(matches!(e, VaultError::InvalidInjection(ref m) if m.contains("control characters")), "{e}");
    v.set(&id("OK"), recipe(), SecretBytes::copy_from(b"clean-value-123")).unwrap();
    let e = v.rotate(&id("OK"), SecretBytes::copy_from(b"new\nvalue")).unwrap_err();
    assert!(matches!(e, VaultError::InvalidInjection(_)), "{e}");
    // Without a header recipe, any bytes are fine (binary values round-trip).
    v.set(&id("BIN"), NewSecret::default(), SecretBytes::copy_from(b"\r\n\x00")).unwrap();
}

#[test]
fn a_holder_that_learns_of_a_rekey_locks_itself() {
    let (fx, mut other) = Fixture::new();
    set(&mut other, "TOKEN", b"token-value-1234");
    let mut holder = fx.reopen().unwrap();
    assert!(holder.resolve(&id("TOKEN")).is_ok());
    other.remove(&id("TOKEN")).unwrap();
    let mut pass = || Ok(SecretBytes::copy_from(b"after the leak 4242"));
    other
        .rekey(
            &[KekSpec::Passphrase],
            fast_argon2(),
            &mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None },
        )
        .unwrap();
    assert!(matches!(holder.refresh(), Err(VaultError::Rekeyed)));
    assert!(matches!(holder.resolve(&id("TOKEN")), Err(VaultError::Locked)), "still serving after a rekey");
    // The same through a write.
    let mut writer = Vault::open(&fx.home).unwrap();
    let mut pass = || Ok(SecretBytes::copy_from(b"after the leak 4242"));
    writer.unlock(&mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None }, None).unwrap();
    let mut stale = Vault::open(&fx.home).unwrap();
    let mut pass = || Ok(SecretBytes::copy_from(b"after the leak 4242"));
    stale.unlock(&mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None }, None).unwrap();
    let mut pass = || Ok(SecretBytes::copy_from(b"second rekey 777777"));
    writer
        .rekey(
            &[KekSpec::Passphrase],
            fast_argon2(),
            &mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None },
        )
        .unwrap();
    assert!(matches!(stale.rotate_key(false), Err(VaultError::Rekeyed)));
    assert!(matches!(stale.list(), Err(VaultError::Locked)));
}

#[test]
fn unlock_on_an_unlocked_ephemeral_vault_keeps_it() {
    let mut v = Vault::ephemeral(Cipher::XChaCha20Poly1305, 5);
    v.set(&id("E"), NewSecret::default(), SecretBytes::copy_from(b"ephemeral-value")).unwrap();
    assert_eq!(v.unlock(&mut KekInputs::none(), None).unwrap(), 0);
    assert_eq!(v.resolve(&id("E")).unwrap().expose(), b"ephemeral-value");
    v.lock();
    assert!(matches!(v.unlock(&mut KekInputs::none(), None), Err(VaultError::Ephemeral(_))));
}
