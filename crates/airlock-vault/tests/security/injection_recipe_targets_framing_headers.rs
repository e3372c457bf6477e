//! Attack: store a secret whose injection recipe writes a routing or framing header (`Host`, `Content-Length`,
//! `Transfer-Encoding`...), so that the broker's own injection re-routes the request or smuggles a second one.

use airlock_crypto::SecretBytes;
use airlock_vault::{Injection, NewSecret, VaultError};

use crate::common::*;

#[test]
fn injection_recipe_targets_framing_headers_is_refused() {
    for header in ["Host: {}", "Content-Length: {}", "Transfer-Encoding: {}", "connection: {}", "Upgrade: {}", "TE: {}"]
    {
        let e = Injection::header(header).unwrap_err();
        assert!(
            matches!(e, VaultError::InvalidInjection(ref m) if m.contains("routing or message framing")),
            "{header}: {e}"
        );
    }
    // Ordinary credential headers are fine, and a refused recipe stores nothing.
    let (fx, mut v) = Fixture::new();
    let ok = Injection::header("X-Api-Key: {}").unwrap();
    v.set(&id("OK"), NewSecret { injection: Some(ok), ..Default::default() }, SecretBytes::copy_from(b"value-123456"))
        .unwrap();
    assert_eq!(fx.reopen().unwrap().list().unwrap().len(), 1);
}
