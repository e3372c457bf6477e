//! Attack: a value that carries a newline (or a quote and a newline) tries to add a variable of its own to a `.env`
//! file, e.g. `API_KEY="abc\nAIRLOCK_PASSPHRASE=guess"`, or a value a careless script wrote between quotes verbatim.
//! Parsers that accept multi-line quoted values, or split lines before looking at quotes, disagree about such a
//! file; Airlock's reader either keeps the newline inside the one value (an escaped `\n`) or refuses the whole file
//! with the line number. It never yields the smuggled variable.

use std::os::unix::fs::PermissionsExt;

use airlock_vault::backend::env::{EnvBackend, parse_dotenv};
use airlock_vault::backend::{BackendError, Locator, SecretBackend};

fn file(text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(".env");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, p)
}

fn other() -> Locator {
    Locator::Env { name: "OTHER".into() }
}

#[test]
fn an_escaped_newline_stays_inside_its_value() {
    let (_d, p) = file(b"API_KEY=\"abc\\nOTHER=planted\"\nLITERAL='abc\\nOTHER=planted'\n");
    let b = EnvBackend::dotenv(&p).unwrap();
    assert_eq!(b.read(&Locator::Env { name: "API_KEY".into() }).unwrap().value.expose(), b"abc\nOTHER=planted");
    assert_eq!(b.read(&Locator::Env { name: "LITERAL".into() }).unwrap().value.expose(), b"abc\\nOTHER=planted");
    assert!(matches!(b.read(&other()), Err(BackendError::NotFound(_))));
    assert_eq!(b.list("").unwrap(), ["API_KEY", "LITERAL"]);
}

#[test]
fn a_raw_newline_inside_quotes_refuses_the_file_instead_of_starting_a_variable() {
    for text in [
        &b"API_KEY=\"abc\nOTHER=planted\"\n"[..],
        b"API_KEY='abc\nOTHER=planted'\n",
        b"API_KEY=\"abc\\\nOTHER=planted\"\n",
        // A value containing `"` then a newline, written between quotes verbatim by a careless script.
        b"API_KEY=\"abc\"\nOTHER=planted\"\n",
        // A carriage return, which some readers treat as a line break.
        b"API_KEY=\"abc\rOTHER=planted\"\n",
        b"API_KEY=abc\rOTHER=planted\n",
    ] {
        let e = parse_dotenv(text).expect_err(&String::from_utf8_lossy(text));
        assert!(e.line <= 2, "{e}");
        assert!(!e.to_string().contains("planted"), "{e}");
        let (_d, p) = file(text);
        let e = EnvBackend::dotenv(&p).unwrap_err();
        assert!(matches!(e, BackendError::Invalid { .. }), "{e}");
        assert!(!e.to_string().contains("planted"), "{e}");
    }
}

#[test]
fn a_smuggled_line_cannot_override_an_earlier_variable() {
    // If the injected line repeats a name (to replace a real key with the attacker's), the file is refused.
    let (_d, p) = file(b"API_KEY=\"real-key-123\"\nAPI_KEY=\"planted\"\n");
    let e = EnvBackend::dotenv(&p).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("already set on line 1") && !e.contains("planted"), "{e}");
}
