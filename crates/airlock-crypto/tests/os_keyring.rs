//! Integration tests against a real Secret Service (GNOME Keyring over D-Bus).
//!
//! `scripts/test.sh` runs these inside `dbus-run-session` with an unlocked `gnome-keyring-daemon` and sets
//! `AIRLOCK_REQUIRE_OS_KEYRING=1`, so a missing Secret Service is a failure there. Anywhere else (a plain
//! `cargo test` on a headless machine) they print a notice and pass without checking anything.
//!
//! Every entry uses a user name unique to this process and test, and is deleted again even if an assertion
//! fails, so the tests can run in parallel and against a developer's own login keyring.
#![cfg(feature = "os-keyring")]

use airlock_crypto::kdf::Argon2Params;
use airlock_crypto::kek::{OS_KEYRING_SERVICE, SlotParams};
use airlock_crypto::{Cipher, CryptoError, KekInputs, KekSlot, KekSource, KekSpec, Key32, os_keyring, random};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// The service name test entries go under, apart from the slot test (which must use Airlock's own).
const TEST_SERVICE: &str = "airlock-test";
const REQUIRE_VAR: &str = "AIRLOCK_REQUIRE_OS_KEYRING";

fn required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A name no other process or test uses: `<tag>-<pid>-<16 random hex digits>`.
fn unique(tag: &str) -> String {
    format!("{tag}-{}-{}", std::process::id(), hex(&random::bytes::<8>()))
}

/// Whether an error from the first keyring call means "no usable Secret Service here" (no session bus, no
/// daemon on it, keyring locked) rather than a bug.
fn is_unreachable(e: &CryptoError) -> bool {
    match e {
        CryptoError::OsKeyring(msg) => {
            msg.starts_with("Secret Service failed")
                || msg.starts_with("Secret Service is locked or unreachable")
                || msg.starts_with("no OS keyring store")
        }
        _ => false,
    }
}

/// Passes through the result of the first call that touches the Secret Service. `None` means: skip this test
/// (unreachable, and not required). Panics if the Secret Service is required but unreachable, or on any other
/// error.
fn first_contact<T>(test: &str, r: Result<T, CryptoError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if is_unreachable(&e) && !required() => {
            eprintln!(
                "NOTICE: {test}: skipped, no Secret Service reachable ({e}). Run `scripts/test.sh` (or set \
                 {REQUIRE_VAR}=1 under dbus-run-session with an unlocked gnome-keyring-daemon) to run it."
            );
            None
        }
        Err(e) if is_unreachable(&e) => panic!(
            "{test}: {REQUIRE_VAR}=1 but no Secret Service is reachable: {e}\n\
             DBUS_SESSION_BUS_ADDRESS={:?}\n\
             Run the tests inside a D-Bus session with an unlocked keyring, e.g.\n  \
             dbus-run-session -- sh -c 'printf pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; \
             exec cargo test -p airlock-crypto --test os_keyring'",
            std::env::var("DBUS_SESSION_BUS_ADDRESS").ok()
        ),
        Err(e) => panic!("{test}: unexpected OS keyring error: {e} ({e:?})"),
    }
}

/// Deletes a keyring entry when dropped, so a failed assertion does not leave test keys in the keyring.
struct Cleanup<'a> {
    service: &'a str,
    user: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Err(e) = os_keyring::delete(self.service, &self.user) {
            eprintln!("warning: could not delete test entry {}/{}: {e}", self.service, self.user);
        }
    }
}

/// Asserts that neither the Display nor the Debug form of `e` carries `secret` in any usual encoding.
fn assert_no_secret_in(e: &CryptoError, secret: &[u8]) {
    let forms = [
        hex(secret),
        hex(secret).to_uppercase(),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        format!("{secret:?}"),                                  // [1, 2, 3, ...]
        format!("{secret:x?}"),                                 // [1, 2, 3, ...] in hex
        secret.iter().map(|b| format!("\\x{b:02x}")).collect(), // escaped bytes
    ];
    for text in [e.to_string(), format!("{e:?}"), format!("{e:#?}")] {
        for form in &forms {
            assert!(!text.contains(form.as_str()), "error text {text:?} contains the secret (as {form:?})");
        }
        // Raw bytes: no 8-byte window of the secret appears in the message as-is.
        for w in secret.windows(8) {
            assert!(!text.as_bytes().windows(8).any(|t| t == w), "error text {text:?} contains raw secret bytes");
        }
        // Lossy UTF-8 of the secret (what `String::from_utf8_lossy` in an error would produce).
        let lossy = String::from_utf8_lossy(secret);
        assert!(!text.contains(lossy.as_ref()), "error text {text:?} contains the secret as lossy UTF-8");
    }
}

#[test]
fn store_load_delete_round_trip() {
    let user = unique("roundtrip");
    let key = Key32::random();
    let Some(()) = first_contact("store_load_delete_round_trip", os_keyring::store(TEST_SERVICE, &user, key.expose()))
    else {
        return;
    };
    let _cleanup = Cleanup { service: TEST_SERVICE, user: user.clone() };

    let loaded = os_keyring::load(TEST_SERVICE, &user).expect("load what was just stored");
    assert_eq!(loaded.expose(), key.expose().as_slice());

    // Storing again replaces the value rather than adding a second (ambiguous) entry.
    let key2 = Key32::random();
    os_keyring::store(TEST_SERVICE, &user, key2.expose()).expect("replace the entry");
    assert_eq!(os_keyring::load(TEST_SERVICE, &user).expect("load the replacement").expose(), key2.expose().as_slice());

    os_keyring::delete(TEST_SERVICE, &user).expect("delete the entry");
    let e = os_keyring::load(TEST_SERVICE, &user).expect_err("load after delete must fail");
    assert!(matches!(e, CryptoError::OsKeyring(_)), "{e:?}");
    // Deleting what is not there is not an error.
    os_keyring::delete(TEST_SERVICE, &user).expect("second delete is a no-op");
}

#[test]
fn keyring_slot_unwraps_root_until_destroyed() {
    let vault_id = unique("vault");
    let params = SlotParams {
        id: 7,
        vault_id: &vault_id,
        cipher: Cipher::XChaCha20Poly1305,
        argon2: Argon2Params { m_kib: 256, t: 1, p: 1 },
    };
    let root = Key32::random();
    let created = KekSlot::create(&KekSpec::OsKeyring, &params, &root, &mut KekInputs::none());
    let Some(slot) = first_contact("keyring_slot_unwraps_root_until_destroyed", created) else {
        return;
    };
    let KekSource::OsKeyring { service, user } = &slot.source else {
        panic!("an OS keyring spec made a {} slot", slot.source.kind());
    };
    assert_eq!(service, OS_KEYRING_SERVICE);
    assert!(user.contains(&vault_id), "entry user {user:?} does not name the vault");
    let _cleanup = Cleanup { service: OS_KEYRING_SERVICE, user: user.clone() };

    assert!(slot.is_available(&KekInputs::none()));
    assert_eq!(slot.unwrap_root(&vault_id, &mut KekInputs::none()).expect("unwrap via the OS keyring"), root);
    // The slot is bound to its vault: the same keyring entry does not open it for another vault id.
    let e = slot.unwrap_root("some-other-vault", &mut KekInputs::none()).expect_err("other vault must not open");
    assert!(matches!(e, CryptoError::WrongKey { slot: 7, kind: "keyring" }), "{e:?}");

    // The slot's KEK material sits in the keyring, not in the serialised slot.
    let kek = os_keyring::load(service, user).expect("the slot's entry exists");
    let shown = format!("{slot:?}");
    assert!(!shown.contains(&hex(kek.expose())) && !shown.contains(&STANDARD.encode(kek.expose())));

    slot.destroy_external().expect("destroy the keyring entry");
    let e = slot.unwrap_root(&vault_id, &mut KekInputs::none()).expect_err("unwrap after destroy must fail");
    assert!(matches!(e, CryptoError::OsKeyring(_)), "{e:?}");
    assert_no_secret_in(&e, kek.expose());
    assert_no_secret_in(&e, root.expose());
    // Destroying twice is harmless.
    slot.destroy_external().expect("second destroy is a no-op");
}

#[test]
fn errors_never_carry_the_stored_bytes() {
    let user = unique("errors");
    let key = Key32::random();
    let Some(()) =
        first_contact("errors_never_carry_the_stored_bytes", os_keyring::store(TEST_SERVICE, &user, key.expose()))
    else {
        return;
    };
    let _cleanup = Cleanup { service: TEST_SERVICE, user: user.clone() };

    // Missing entry.
    os_keyring::delete(TEST_SERVICE, &user).expect("delete the entry");
    let e = os_keyring::load(TEST_SERVICE, &user).expect_err("missing entry");
    assert!(matches!(&e, CryptoError::OsKeyring(m) if m.contains("no Airlock entry")), "{e:?}");
    assert_no_secret_in(&e, key.expose());

    // An entry of the wrong length (e.g. written by something else) is refused without echoing it.
    let odd = random::bytes::<31>();
    os_keyring::store(TEST_SERVICE, &user, &odd).expect("store a 31-byte value");
    let e = os_keyring::load(TEST_SERVICE, &user).expect_err("31-byte entry must be refused");
    assert!(matches!(&e, CryptoError::OsKeyring(m) if m.contains("32-byte")), "{e:?}");
    assert_no_secret_in(&e, &odd);
    assert_no_secret_in(&e, key.expose());
}
