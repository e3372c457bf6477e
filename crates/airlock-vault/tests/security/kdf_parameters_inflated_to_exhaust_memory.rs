//! Attack: raise the Argon2id cost in the (unauthenticated-until-unlock) header so that the next unlock
//! allocates terabytes or spins for hours.

use std::time::Instant;

use airlock_crypto::{KekInputs, KekSpec, SecretBytes};
use airlock_vault::{InitOptions, Vault};

use crate::common::*;

#[test]
fn kdf_parameters_inflated_to_exhaust_memory_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let mut pass = || Ok(SecretBytes::copy_from(b"passphrase for this test"));
    let opts = InitOptions { argon2: fast_argon2(), ..Default::default() };
    Vault::init(
        &home,
        &[KekSpec::Passphrase],
        &opts,
        &mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None },
    )
    .unwrap();
    tamper_body(&Vault::file_path(&home), |b| {
        b["slots"][0]["source"]["argon2"]["m_kib"] = (u32::MAX).into();
        b["slots"][0]["source"]["argon2"]["t"] = 1_000_000.into();
    });
    let mut v = Vault::open(&home).unwrap();
    let start = Instant::now();
    let e = v.unlock(&mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None }, None).unwrap_err();
    assert!(e.to_string().contains("exceed Airlock's limits"), "{e}");
    assert!(start.elapsed().as_secs() < 5, "refusal must not run the KDF first");
}
