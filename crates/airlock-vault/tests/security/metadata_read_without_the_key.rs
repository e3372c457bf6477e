//! Attack: read the vault file to learn where credentials may be sent, how they are injected and what they are,
//! without the key. Only record addresses and write counters are in the clear.

use airlock_crypto::SecretBytes;
use airlock_vault::{Injection, NewSecret};

use crate::common::*;

#[test]
fn metadata_read_without_the_key_reveals_no_hosts_recipes_tags_or_values() {
    let (fx, mut v) = Fixture::new();
    let opts = NewSecret {
        hosts: vec!["internal-payments.corp.example".into()],
        injection: Some(Injection::header("X-Payments-Auth: Token {}").unwrap()),
        tags: vec!["owner-alice".into()],
        group: Some("billinggroup".into()),
        ..Default::default()
    };
    v.set(&id("PAY"), opts, SecretBytes::copy_from(b"the-payments-credential")).unwrap();
    let bytes = std::fs::read(fx.vault_path()).unwrap();
    for needle in ["internal-payments", "X-Payments-Auth", "owner-alice", "billinggroup", "the-payments-credential"] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} is readable in the vault file");
    }
    assert!(bytes.windows(3).any(|w| w == b"PAY"), "the record address is expected in the clear");
}
