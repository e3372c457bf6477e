//! Attack: plant a kernel key with the description Airlock reads, where the kernel's own search would find it.
//! `keyctl search @u user NAME` descends into every keyring linked inside `@u`; a keyring someone linked there, or
//! a key of another type (`logon`) with the same description, must not stand in for the real key, neither before
//! Airlock has written it nor after it was deleted. Runs in its own user namespace and session keyring.

#[path = "../common/os.rs"]
mod os;

use airlock_crypto::SecretBytes;
use airlock_vault::backend::keyctl::{KeyctlBackend, KeyctlRing};
use airlock_vault::backend::{BackendError, Expect, Locator, SecretBackend};
use os::*;

#[test]
fn a_key_in_a_nested_keyring_or_of_another_type_is_never_read() {
    in_private_keyrings("keyctl_description_collision::child_nested_and_other_type_keys");
}

#[test]
fn child_nested_and_other_type_keys() {
    if !keyctl_child() {
        return;
    }
    let b = KeyctlBackend::new(KeyctlRing::User);
    let db = Locator::Keyctl { description: "airlock:db".into() };
    // Possess @u (as a login session does) so that the CLI may fill a keyring inside it.
    keyctl(&["link", "@u", "@s"], None);
    let shadow = keyctl(&["newring", "shadow", "@u"], None);
    keyctl(&["padd", "user", "airlock:db", &shadow], Some(b"planted-value"));
    keyctl(&["padd", "logon", "airlock:db", "@u"], Some(b"planted-logon"));
    // The kernel's search does find the planted key through the nested keyring...
    let planted = keyctl(&["search", "@u", "user", "airlock:db"], None);
    assert_eq!(keyctl_raw(&["pipe", &planted]), (true, b"planted-value".to_vec()));
    // ...the backend does not.
    let e = b.read(&db).unwrap_err();
    assert!(matches!(e, BackendError::NotFound(_)), "{e}");
    assert!(b.list("airlock:").unwrap().is_empty());
    // Writing with Expect::Absent is not blocked by the shadow, and the real key is what is read.
    b.write(&db, &SecretBytes::copy_from(b"the-real-value"), Expect::Absent).unwrap();
    assert_eq!(b.read(&db).unwrap().value.expose(), b"the-real-value");
    assert_eq!(b.list("airlock:").unwrap(), ["airlock:db"]);
    // Once deleted, the shadow does not take over.
    b.delete(&db).unwrap();
    assert!(matches!(b.read(&db), Err(BackendError::NotFound(_))));
    assert!(matches!(b.delete(&db), Err(BackendError::NotFound(_))));
    // The planted key was left alone: the backend only deletes what it would read.
    assert_eq!(keyctl_raw(&["pipe", &planted]), (true, b"planted-value".to_vec()));
    println!("child: ok");
}
