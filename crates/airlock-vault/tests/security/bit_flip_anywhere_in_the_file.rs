//! Attack (or accident): flip bits anywhere in the vault file. Every flip must be refused with an error; none may
//! yield a vault that opens with different contents.

use crate::common::*;

#[test]
fn bit_flip_anywhere_in_the_file_is_refused() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "A", b"value-a");
    set(&mut v, "B", b"value-b");
    let original = std::fs::read(fx.vault_path()).unwrap();
    // Every byte position, one flipped bit each (the bit rotates with the position).
    for pos in 0..original.len() {
        let mut damaged = original.clone();
        damaged[pos] ^= 1 << (pos % 8);
        write_raw(&fx.vault_path(), &damaged);
        match fx.reopen() {
            Ok(_) => panic!("flipping bit {} of byte {pos} went unnoticed", pos % 8),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("corrupt")
                        || msg.contains("truncated")
                        || msg.contains("integrity")
                        || msg.contains("not an Airlock vault")
                        || msg.contains("format"),
                    "byte {pos}: unexpected error {msg}"
                );
            }
        }
    }
    write_raw(&fx.vault_path(), &original);
    let mut v = fx.reopen().unwrap();
    assert_eq!(v.resolve(&id("B")).unwrap().expose(), b"value-b");
}

#[test]
fn damage_in_the_body_is_reported_as_damage_not_a_wrong_key() {
    let (fx, mut v) = Fixture::new();
    set(&mut v, "A", b"value-a");
    let mut bytes = std::fs::read(fx.vault_path()).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    write_raw(&fx.vault_path(), &bytes);
    let e = airlock_vault::Vault::open(&fx.home).unwrap_err().to_string();
    assert!(e.contains("checksum mismatch"), "{e}");
}
