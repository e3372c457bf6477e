//! Accident or attack: the vault file cut short (a crashed copy, a full disk, an attacker truncating it).

use crate::common::*;
use airlock_vault::{Vault, VaultError};

#[test]
fn truncation_at_every_length_is_refused_with_a_specific_error() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "A", b"value-a");
    let original = std::fs::read(fx.vault_path()).unwrap();
    for len in 0..original.len() {
        write_raw(&fx.vault_path(), &original[..len]);
        match Vault::open(&fx.home) {
            Err(VaultError::Truncated { .. }) | Err(VaultError::Corrupt { .. }) => {}
            Err(other) => panic!("length {len}: unexpected error {other}"),
            Ok(_) => panic!("length {len}: a truncated vault opened"),
        }
    }
    // Cut anywhere past the magic line, at a line boundary: named as truncation.
    let body_end = original.len() - 1 - original[..original.len() - 1].iter().rev().position(|b| *b == b'\n').unwrap();
    write_raw(&fx.vault_path(), &original[..body_end]);
    assert!(matches!(Vault::open(&fx.home), Err(VaultError::Truncated { .. })));
    write_raw(&fx.vault_path(), &original);
    assert_eq!(fx.reopen().unwrap().resolve(&id("A")).unwrap().expose(), b"value-a");
}
