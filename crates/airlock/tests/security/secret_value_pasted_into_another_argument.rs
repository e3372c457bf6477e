//! Attack (or slip): a token pasted into an argument that takes something else, such as the header recipe
//! (`--header "Authorization: Bearer $TOKEN"`), a host, a query parameter name, a KEK spec, or the secret's
//! *name* (`secret set $GITHUB_TOKEN`). Each must be refused without the token being echoed to stderr or stored
//! in the vault file (where names are in the clear).

use crate::common::*;

#[test]
fn secret_value_pasted_into_another_argument_is_refused_and_not_echoed() {
    let al = Airlock::with_passphrase("pasted-argument test passphrase");
    al.init_passphrase();
    // A well-formed GitHub token (valid checksum), so it is also recognised as a credential by its shape.
    let token = "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";
    let header = format!("Authorization: Bearer {token}");
    let host = format!("{token}@api.github.com");
    let query = format!("key={token}");
    let kek = format!("env:{token}");
    let glued_header = format!("--headerAuthorization: Bearer {token}");
    let glued_host = format!("--host{token}");
    let as_option = format!("--{token}");
    let hex_token = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";
    let cases: Vec<Vec<&str>> = vec![
        vec!["secret", "set", "A", "--header", &header],
        vec!["secret", "set", "A", "--host", &host],
        vec!["secret", "set", "A", "--query", &query],
        vec!["secret", "set", token],
        vec!["secret", "rotate", token],
        vec!["--json", "secret", "set", "A", "--host", &host],
        vec!["init", "--kek", &kek],
        vec!["key", "rekey", "--kek", &kek],
        // A missing space or `=` turns the token into an unknown option.
        vec!["secret", "set", "A", &glued_header],
        vec!["secret", "set", "A", &glued_host],
        vec!["secret", "set", "A", &as_option],
        vec!["--json", "secret", "set", "A", &as_option],
    ];
    for args in cases {
        let r = al.call(&args).stdin(b"the-real-value-123456").run();
        assert_ne!(r.code, Some(0), "{args:?} succeeded");
        assert!(!r.err().contains("fIkRGaBu5PeKsznMz"), "{args:?} echoed the token: {}", r.err());
        assert!(!r.out().contains("fIkRGaBu5PeKsznMz"), "{args:?} printed the token: {}", r.out());
    }
    // A classic 40-hex token as a name is refused as a credential, and not echoed.
    for args in [vec!["secret", "rotate", hex_token], vec!["secret", "set", hex_token], vec!["secret", "rm", hex_token]]
    {
        let r = al.call(&args).stdin(b"the-real-value-123456").run();
        assert_eq!(r.code, Some(8), "{args:?}: {}", r.err());
        assert!(!r.err().contains(hex_token), "{args:?} echoed the token: {}", r.err());
    }
    // Refused before the value was read, and nothing was stored.
    assert!(al.names().is_empty());
    let file = std::fs::read(al.vault_file()).unwrap();
    assert!(!file.windows(17).any(|w| w == b"fIkRGaBu5PeKsznMz"), "the token is in the vault file");
}
