//! Tests for signed notes and checkpoints: published vectors from Go's `sumdb/note`, the C2SP spec and the live
//! Go checksum database, then round trips, tampering, and each malformed input refused with its own error.

use airlock_audit::checkpoint::{
    Checkpoint, MAX_SIGNATURES, MAX_TIME_MS, NoteError, NoteSigner, NoteVerifier, open_note, split_notes,
    unverified_text,
};
use airlock_audit::merkle::leaf_hash;
use airlock_crypto::Key32;
use airlock_crypto::sign::SigningKey;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

// ---------------------------------------------------------------------------------------------------------------
// Published vectors.
// ---------------------------------------------------------------------------------------------------------------

// golang.org/x/mod, sumdb/note/note.go (package docs) and note_test.go (TestNewVerifier, TestNewSigner, TestSign,
// TestOpen): the PeterNeumann key pair, its signed note, and EnochRoot's second signature on the same text.
const PETER_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const GO_TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str =
    "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

// The example of the C2SP signed-note spec (c2sp.org/signed-note, as of commit d4c16da5; later revisions replaced
// it with an example without its key). It is quoted the same way by Cloudflare's signed-note tests. A valid
// Ed25519 signature under the published key cannot have been made up, so the vector vouches for itself.
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

// The Go checksum database's key, as pinned in the Go toolchain (golang/go, src/cmd/go/internal/modfetch/key.go),
// and a tree head it signed (size 49189689, quoted in a sigsum monitoring write-up). Its base64 holds '+'.
const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
const SUMDB_TEXT: &str = "go.sum database tree\n49189689\nftjbAOzaupaIvaPo/G+Dk63nxOZ2s1OPOKIaPtXs7S4=\n";
const SUMDB_SIG: &str = "\u{2014} sum.golang.org Az3grlKZssqRoMNPpZfKt0TphbbcF+pzXqElURJKRNFKfaUAgqeI5k2AORH0QAhg/ebRwyIqD/OqP4oLtLnNumvOBAM=\n";

fn go_note() -> String {
    format!("{GO_TEXT}\n{PETER_SIG}")
}

fn vkey(s: &str) -> NoteVerifier {
    NoteVerifier::parse_vkey(s).expect("published verifier key parses")
}

/// The signer from Go's PRIVATE+KEY encoding: base64(0x01 || 32-byte seed).
fn peter_signer() -> NoteSigner {
    let (_, encoded) = PETER_SKEY.rsplit_once("c74f20a3+").expect("skey shape");
    let bytes = B64.decode(encoded).expect("base64");
    assert_eq!(bytes[0], 0x01, "Ed25519 key type");
    let seed = Key32::from_slice(&bytes[1..]).expect("32-byte seed");
    NoteSigner::new("PeterNeumann", SigningKey::from_seed(&seed)).expect("valid name")
}

#[test]
fn published_verifier_keys_parse_and_print_back() {
    for (key, name, id) in [
        (PETER_VKEY, "PeterNeumann", [0xc7, 0x4f, 0x20, 0xa3]),
        (ENOCH_VKEY, "EnochRoot", [0xaf, 0x0c, 0xfe, 0x78]),
        (SPEC_VKEY, "example.com/foo", [0x53, 0x0d, 0x90, 0x3a]),
        (SUMDB_VKEY, "sum.golang.org", [0x03, 0x3d, 0xe0, 0xae]),
    ] {
        let v = vkey(key);
        assert_eq!(v.name(), name);
        assert_eq!(v.key_id(), id, "{name}");
        assert_eq!(v.to_vkey(), key);
        // The key ID is derived, not just copied: rebuilding from name and public key gives the same verifier.
        assert_eq!(NoteVerifier::new(name, *v.verifying_key()).unwrap(), v);
    }
}

#[test]
fn go_signer_key_reproduces_the_published_note_byte_for_byte() {
    // Ed25519 is deterministic, so signing the same text with the same key must give Go's exact note.
    let signer = peter_signer();
    assert_eq!(signer.verifier().to_vkey(), PETER_VKEY);
    assert_eq!(signer.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
    assert_eq!(signer.sign(GO_TEXT).unwrap(), go_note());
}

#[test]
fn go_notes_open() {
    let peter = vkey(PETER_VKEY);
    let enoch = vkey(ENOCH_VKEY);
    assert_eq!(open_note(&go_note(), &peter), Ok(GO_TEXT));
    assert_eq!(open_note(&go_note(), &enoch), Err(NoteError::NoVerifiedSignature { key: "EnochRoot+af0cfe78".into() }));
    // Doubly signed: either key opens it; the other signature is ignored.
    let both = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    assert_eq!(open_note(&both, &peter), Ok(GO_TEXT));
    assert_eq!(open_note(&both, &enoch), Ok(GO_TEXT));
    // Changing one letter of the text breaks it.
    let changed = go_note().replace("cryptography", "cryptographY");
    assert_eq!(open_note(&changed, &peter), Err(NoteError::BadSignature { key: "PeterNeumann+c74f20a3".into() }));
}

#[test]
fn go_open_rejections() {
    let peter = vkey(PETER_VKEY);
    let text = GO_TEXT;
    // TestOpen's invalid signature: four characters spliced into the base64.
    let spliced = format!("{text}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(open_note(&spliced, &peter), Err(NoteError::BadSignature { key: "PeterNeumann+c74f20a3".into() }));
    // Too many signatures, whether or not they are known.
    let many = format!("{text}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1));
    assert_eq!(open_note(&many, &peter), Err(NoteError::TooManySignatures { max: MAX_SIGNATURES }));
    let at_limit = format!("{text}\n{}", PETER_SIG.repeat(MAX_SIGNATURES));
    assert_eq!(open_note(&at_limit, &peter), Ok(text));
    // TestOpen's malformed messages ("\xff" + text is not a &str at all, so the type already refuses it).
    let cases: Vec<(String, NoteError)> = vec![
        (text.to_string(), NoteError::MissingSignatureBlock),
        (format!("{text}\n"), NoteError::EmptySignatureBlock),
        (format!("{text}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]), NoteError::MissingFinalNewline),
        (format!("\x01{text}\n{PETER_SIG}"), NoteError::ControlCharacter { offset: 0 }),
        (
            format!(
                "{text}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            NoteError::MalformedSignatureLine { line: 4, reason: "signature is not padded standard base64" },
        ),
        (
            format!("{text}\n{PETER_SIG}Unexpected line.\n"),
            NoteError::MalformedSignatureLine { line: 5, reason: "it does not start with an em dash and a space" },
        ),
        (
            format!("{text}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxV=\n"),
            NoteError::MalformedSignatureLine { line: 4, reason: "it does not start with an em dash and a space" },
        ),
        (
            format!("{text}\n\u{2014} PeterNeumann\n"),
            NoteError::MalformedSignatureLine { line: 4, reason: "no space between key name and signature" },
        ),
        (
            format!("{text}\n\u{2014} PeterNeumann AAAA\n"),
            NoteError::MalformedSignatureLine {
                line: 4,
                reason: "signature is too short to hold a key ID and a signature",
            },
        ),
        (
            format!(
                "{text}\n\u{2014} a+b x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
            NoteError::MalformedSignatureLine { line: 4, reason: "invalid key name" },
        ),
        (format!("{text}\r\n{PETER_SIG}"), NoteError::ControlCharacter { offset: text.len() }),
    ];
    for (msg, want) in cases {
        assert_eq!(open_note(&msg, &peter), Err(want), "{msg:?}");
    }
    // Another name, or another key ID, is somebody else's signature: ignored, so nothing verifies.
    let misnamed = go_note().replace("PeterNeumann", "CarmenSandiego");
    assert_eq!(
        open_note(&misnamed, &peter),
        Err(NoteError::NoVerifiedSignature { key: "PeterNeumann+c74f20a3".into() })
    );
    let wrong_id = go_note().replace("x08g", "xxxx");
    assert_eq!(
        open_note(&wrong_id, &peter),
        Err(NoteError::NoVerifiedSignature { key: "PeterNeumann+c74f20a3".into() })
    );
}

#[test]
fn spec_example_note_opens() {
    let v = vkey(SPEC_VKEY);
    assert_eq!(open_note(SPEC_NOTE, &v), Ok("This is an example message.\n"));
    let changed = SPEC_NOTE.replace("example message", "example massage");
    assert!(matches!(open_note(&changed, &v), Err(NoteError::BadSignature { .. })));
    assert_eq!(split_notes(SPEC_NOTE), Ok(vec![SPEC_NOTE]));
}

#[test]
fn a_real_sum_golang_org_tree_head_opens_but_is_not_an_airlock_checkpoint() {
    let v = vkey(SUMDB_VKEY);
    let note = format!("{SUMDB_TEXT}\n{SUMDB_SIG}");
    assert_eq!(open_note(&note, &v), Ok(SUMDB_TEXT));
    // It is a tlog-checkpoint, but without the `time` line this profile requires (and its origin is not the key
    // name): the text is refused for the first of those.
    assert_eq!(Checkpoint::parse_text(SUMDB_TEXT), Err(NoteError::MissingTime));
    assert_eq!(Checkpoint::open(&note, &v), Err(NoteError::MissingTime));
}

#[test]
fn manglings_of_a_verifier_key_are_refused() {
    // TestNewVerifier: every proper substring, and every single byte incremented.
    let b = PETER_VKEY.as_bytes();
    for i in 0..=b.len() {
        for j in i + 1..=b.len() {
            if i != 0 || j != b.len() {
                let s = &PETER_VKEY[i..j];
                assert!(NoteVerifier::parse_vkey(s).is_err(), "{s:?}");
            }
        }
    }
    for i in 0..b.len() {
        let mut m = b.to_vec();
        m[i] += 1;
        let s = String::from_utf8(m).expect("ASCII");
        assert!(NoteVerifier::parse_vkey(&s).is_err(), "{s:?}");
    }
    // Wrong key length and unknown algorithm, each with a key ID adjusted to match (from the same Go test).
    assert!(
        NoteVerifier::parse_vkey("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==").is_err()
    );
    assert_eq!(
        NoteVerifier::parse_vkey("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::UnsupportedKeyType { alg: 0x65 })
    );
    // Specific errors.
    assert_eq!(
        NoteVerifier::parse_vkey("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::MalformedVerifierKey { reason: "key ID is not 8 lower-case hex digits" })
    );
    assert_eq!(
        NoteVerifier::parse_vkey("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::KeyIdMismatch)
    );
    assert_eq!(
        NoteVerifier::parse_vkey("PeterNeumann"),
        Err(NoteError::MalformedVerifierKey { reason: "expected <name>+<key ID>+<base64 key>" })
    );
    assert_eq!(
        NoteVerifier::parse_vkey("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::InvalidKeyName { reason: "is empty" })
    );
    assert_eq!(
        NoteVerifier::parse_vkey("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::InvalidKeyName { reason: "contains a Unicode space" })
    );
    assert_eq!(
        NoteVerifier::parse_vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T"),
        Err(NoteError::MalformedVerifierKey { reason: "key is not padded standard base64" })
    );
    assert_eq!(
        NoteVerifier::parse_vkey("PeterNeumann+c74f20a3+"),
        Err(NoteError::MalformedVerifierKey { reason: "key is empty" })
    );
}

#[test]
fn key_names_follow_the_spec() {
    let key = || SigningKey::from_seed(&Key32::from_bytes([9; 32]));
    for (name, reason) in [
        ("", "is empty"),
        ("a+b", "contains '+'"),
        ("a b", "contains a Unicode space"),
        ("a\u{a0}b", "contains a Unicode space"),
        ("a\u{2003}b", "contains a Unicode space"),
        ("a\tb", "contains a Unicode space"),
        ("a\u{1}b", "contains a control character"),
    ] {
        assert_eq!(NoteSigner::new(name, key()).unwrap_err(), NoteError::InvalidKeyName { reason }, "{name:?}");
    }
    for name in ["example.com/log42", "PeterNeumann", "\u{e9}t\u{e9}.example", "a\u{2014}b"] {
        let signer = NoteSigner::new(name, key()).unwrap();
        let note = signer.sign("hello\n").unwrap();
        assert_eq!(open_note(&note, &signer.verifier()), Ok("hello\n"), "{name:?}");
        assert_eq!(NoteVerifier::parse_vkey(&signer.verifier().to_vkey()), Ok(signer.verifier()));
    }
}

#[test]
fn signing_refuses_texts_that_could_not_be_opened() {
    let signer = peter_signer();
    assert_eq!(signer.sign("no newline"), Err(NoteError::TextMissingFinalNewline));
    assert_eq!(signer.sign(""), Err(NoteError::TextMissingFinalNewline));
    assert_eq!(signer.sign("a\tb\n"), Err(NoteError::ControlCharacter { offset: 1 }));
    // Blank lines, even at the end, survive: the text is cut at the last blank line, which the signer adds.
    for text in ["\n", "a\n\nb\n", "a\n\n", "a\n\n\u{2014} not a signature\n"] {
        let note = signer.sign(text).unwrap();
        assert_eq!(open_note(&note, &signer.verifier()), Ok(text), "{text:?}");
    }
}

#[test]
fn signer_debug_and_errors_hold_no_key_material() {
    let seed = [0x5a; 32];
    let signer = NoteSigner::new("log.example", SigningKey::from_seed(&Key32::from_bytes(seed))).unwrap();
    let debug = format!("{signer:?}");
    assert!(debug.contains("log.example") && debug.contains(&hex::encode(signer.key_id())), "{debug}");
    for secret in [hex::encode(seed), B64.encode(seed), format!("{seed:?}"), "90, 90, 90".to_string()] {
        assert!(!debug.contains(&secret), "{debug}");
    }
    // Errors name the key as name+keyid, not by its public key either.
    let other = NoteSigner::new("log.example", SigningKey::from_seed(&Key32::from_bytes([1; 32]))).unwrap();
    let note = other.sign("x\n").unwrap();
    // Put the expected key's ID in front of the other key's signature.
    let (text, sigs) = text_and_signatures(&note);
    let (_, sig_b64) = sigs[0].trim_end().rsplit_once(' ').unwrap();
    let mut blob = B64.decode(sig_b64).unwrap();
    blob[..4].copy_from_slice(&signer.key_id());
    let forged = format!("{text}\n\n\u{2014} log.example {}\n", B64.encode(&blob));
    let err = open_note(&forged, &signer.verifier()).unwrap_err();
    assert_eq!(err, NoteError::BadSignature { key: format!("log.example+{}", hex::encode(signer.key_id())) });
    let public = signer.verifier().to_vkey();
    let (_, public_b64) = public.rsplit_once('+').unwrap();
    assert!(!err.to_string().contains(public_b64));
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints.
// ---------------------------------------------------------------------------------------------------------------

const ORIGIN: &str = "audit.example/airlock";

fn log_signer() -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_seed(&Key32::from_bytes([7; 32]))).unwrap()
}

fn checkpoint() -> Checkpoint {
    // 1_700_000_000 s after the epoch is 2023-11-14T22:13:20Z.
    Checkpoint { origin: ORIGIN.to_string(), size: 12345, root: leaf_hash(b"root"), time_ms: 1_700_000_000_123 }
}

fn root_b64() -> String {
    B64.encode(leaf_hash(b"root"))
}

#[test]
fn checkpoint_text_is_exact() {
    let cp = checkpoint();
    let want = format!("{ORIGIN}\n12345\n{}\ntime 2023-11-14T22:13:20.123Z\n", root_b64());
    assert_eq!(cp.to_text().unwrap(), want);
    assert_eq!(Checkpoint::parse_text(&want), Ok(cp.clone()));
    // Whole seconds still print three digits.
    let on_the_second = Checkpoint { time_ms: 0, size: 0, ..cp.clone() };
    assert_eq!(
        on_the_second.to_text().unwrap(),
        format!("{ORIGIN}\n0\n{}\ntime 1970-01-01T00:00:00.000Z\n", root_b64())
    );
}

#[test]
fn checkpoint_round_trips() {
    let signer = log_signer();
    let verifier = signer.verifier();
    let max_ms = MAX_TIME_MS;
    let latest = Checkpoint { time_ms: max_ms, ..checkpoint() }.to_text().unwrap();
    assert!(latest.ends_with("\ntime 9999-12-30T22:00:00.000Z\n"), "{latest}");
    for (size, time_ms) in [(0, 0), (1, 1), (12345, 1_700_000_000_123), (u64::MAX, max_ms), (1 << 40, 999)] {
        let cp = Checkpoint { size, time_ms, ..checkpoint() };
        let text = cp.to_text().unwrap();
        assert_eq!(Checkpoint::parse_text(&text), Ok(cp.clone()));
        let note = cp.sign(&signer).unwrap();
        assert!(note.starts_with(&format!("{text}\n\u{2014} {ORIGIN} ")) && note.ends_with('\n'), "{note}");
        assert_eq!(Checkpoint::open(&note, &verifier), Ok(cp.clone()));
        assert_eq!(split_notes(&note), Ok(vec![note.as_str()]));
    }
    let too_late = Checkpoint { time_ms: max_ms + 1, ..checkpoint() };
    assert_eq!(too_late.to_text(), Err(NoteError::TimeOutOfRange { time_ms: max_ms + 1 }));
    let too_early = Checkpoint { time_ms: -1, ..checkpoint() };
    assert_eq!(too_early.to_text(), Err(NoteError::TimeOutOfRange { time_ms: -1 }));
    assert_eq!(too_early.sign(&signer), Err(NoteError::TimeOutOfRange { time_ms: -1 }));
    let no_origin = Checkpoint { origin: String::new(), ..checkpoint() };
    assert_eq!(no_origin.to_text(), Err(NoteError::EmptyOrigin));
    let two_lines = Checkpoint { origin: "a\nb".into(), ..checkpoint() };
    assert_eq!(two_lines.to_text(), Err(NoteError::OriginControlCharacter));
    let tab = Checkpoint { origin: "a\tb".into(), ..checkpoint() };
    assert_eq!(tab.to_text(), Err(NoteError::OriginControlCharacter));
}

#[test]
fn every_single_byte_change_of_a_signed_checkpoint_is_refused() {
    let signer = log_signer();
    let verifier = signer.verifier();
    let note = checkpoint().sign(&signer).unwrap();
    let bytes = note.as_bytes();
    let mut opened = 0;
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff] {
            let mut changed = bytes.to_vec();
            changed[i] ^= mask;
            // A change that breaks UTF-8 cannot even become a &str; every other one must fail to open.
            if let Ok(s) = String::from_utf8(changed) {
                opened += 1;
                assert!(Checkpoint::open(&s, &verifier).is_err(), "byte {i} ^ {mask:#04x} opened");
            }
        }
        // Removing the byte fails too.
        let mut removed = bytes.to_vec();
        removed.remove(i);
        if let Ok(s) = String::from_utf8(removed) {
            assert!(Checkpoint::open(&s, &verifier).is_err(), "byte {i} removed opened");
        }
    }
    assert!(opened > bytes.len() * 5, "most changes must reach the parser, got {opened}");
    // And so does every truncation.
    for end in (0..note.len()).filter(|&e| note.is_char_boundary(e)) {
        assert!(Checkpoint::open(&note[..end], &verifier).is_err(), "truncated at {end}");
    }
}

#[test]
fn unverified_text_reads_without_trusting() {
    let note = checkpoint().sign(&log_signer()).unwrap();
    let text = unverified_text(&note).unwrap();
    assert_eq!(text, checkpoint().to_text().unwrap());
    assert_eq!(Checkpoint::parse_text(text), Ok(checkpoint()));
    // No key is consulted: a note signed by anyone reads the same. Syntax is still checked.
    assert_eq!(unverified_text(&format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}")), Ok(GO_TEXT));
    assert_eq!(unverified_text(GO_TEXT), Err(NoteError::MissingSignatureBlock));
}

#[test]
fn the_wrong_verifier_is_refused() {
    let signer = log_signer();
    let note = checkpoint().sign(&signer).unwrap();
    let label = |v: &NoteVerifier| format!("{}+{}", v.name(), hex::encode(v.key_id()));
    // Same name, another key: another key ID, so the signature is not this key's.
    let other_key = NoteSigner::new(ORIGIN, SigningKey::from_seed(&Key32::from_bytes([8; 32]))).unwrap().verifier();
    assert_eq!(Checkpoint::open(&note, &other_key), Err(NoteError::NoVerifiedSignature { key: label(&other_key) }));
    // Same key under another name.
    let other_name = NoteVerifier::new("other.example/log", *signer.verifier().verifying_key()).unwrap();
    assert_eq!(Checkpoint::open(&note, &other_name), Err(NoteError::NoVerifiedSignature { key: label(&other_name) }));
    // A published key.
    assert!(matches!(Checkpoint::open(&note, &vkey(PETER_VKEY)), Err(NoteError::NoVerifiedSignature { .. })));
}

#[test]
fn origin_must_be_the_key_name() {
    let signer = log_signer();
    let elsewhere = Checkpoint { origin: "elsewhere.example/log".into(), ..checkpoint() };
    let mismatch = NoteError::OriginMismatch { origin: "elsewhere.example/log".into(), key_name: ORIGIN.to_string() };
    assert_eq!(elsewhere.sign(&signer), Err(mismatch.clone()));
    // Signed anyway, as a plain note: the signature is good, but the checkpoint is not this log's.
    let note = signer.sign(&elsewhere.to_text().unwrap()).unwrap();
    assert_eq!(Checkpoint::open(&note, &signer.verifier()), Err(mismatch));
}

/// Splits a note into its text and its signature lines (each with its newline).
fn text_and_signatures(note: &str) -> (&str, Vec<String>) {
    let (text, sigs) = note.rsplit_once("\n\n").unwrap();
    (text, sigs.lines().map(|l| format!("{l}\n")).collect())
}

#[test]
fn unknown_signatures_are_ignored_and_bad_known_ones_are_not() {
    let signer = log_signer();
    let verifier = signer.verifier();
    let cp = checkpoint();
    let note = cp.sign(&signer).unwrap();
    let (text, ours) = text_and_signatures(&note);
    let text = format!("{text}\n");
    // A witness cosigns the same text; a stranger's signature is over something else entirely.
    let witness = NoteSigner::new("witness.example", SigningKey::from_seed(&Key32::from_bytes([3; 32]))).unwrap();
    let (_, theirs) = text_and_signatures(&witness.sign(&text).unwrap());
    // Same name as ours with another key ID, and our key ID under another name: both someone else's.
    let same_name = NoteSigner::new(ORIGIN, SigningKey::from_seed(&Key32::from_bytes([4; 32]))).unwrap();
    let (_, same_name_sig) = text_and_signatures(&same_name.sign("something else\n").unwrap());
    let renamed = ours[0].replace(ORIGIN, "impostor.example");
    for order in [
        vec![ours[0].clone(), theirs[0].clone()],
        vec![theirs[0].clone(), ours[0].clone(), ENOCH_SIG.to_string(), PETER_SIG.to_string()],
        vec![same_name_sig[0].clone(), renamed.clone(), ours[0].clone()],
        vec![ours[0].clone(), ours[0].clone()],
    ] {
        let combined = format!("{text}\n{}", order.concat());
        assert_eq!(Checkpoint::open(&combined, &verifier), Ok(cp.clone()), "{combined}");
    }
    // Only strangers: nothing verifies.
    let strangers = format!("{text}\n{}{}{renamed}", theirs[0], same_name_sig[0]);
    assert!(matches!(Checkpoint::open(&strangers, &verifier), Err(NoteError::NoVerifiedSignature { .. })));
    // A signature that claims to be ours and does not verify rejects the note, even next to a good one.
    let (_, ours_elsewhere) = text_and_signatures(&signer.sign("another text\n").unwrap());
    let mixed = format!("{text}\n{}{}", ours[0], ours_elsewhere[0]);
    assert!(matches!(Checkpoint::open(&mixed, &verifier), Err(NoteError::BadSignature { .. })));
}

#[test]
fn malformed_checkpoint_texts_are_each_refused_with_their_own_error() {
    let root = root_b64();
    let time = "time 2023-11-14T22:13:20.123Z";
    let good = format!("{ORIGIN}\n12345\n{root}\n{time}\n");
    assert!(Checkpoint::parse_text(&good).is_ok());
    let root31 = B64.encode([7u8; 31]);
    let root33 = B64.encode([7u8; 33]);
    let unpadded = root.trim_end_matches('=').to_string();
    let non_canonical = "is not in canonical form (UTC with `Z`, `T`, and exactly 3 fractional digits)";
    let cases: Vec<(String, NoteError)> = vec![
        // Tree size.
        (format!("{ORIGIN}\n012\n{root}\n{time}\n"), NoteError::BadTreeSize { reason: "has a leading zero" }),
        (format!("{ORIGIN}\n00\n{root}\n{time}\n"), NoteError::BadTreeSize { reason: "has a leading zero" }),
        (
            format!("{ORIGIN}\n-1\n{root}\n{time}\n"),
            NoteError::BadTreeSize { reason: "has a sign (it must be plain decimal digits)" },
        ),
        (
            format!("{ORIGIN}\n+1\n{root}\n{time}\n"),
            NoteError::BadTreeSize { reason: "has a sign (it must be plain decimal digits)" },
        ),
        (format!("{ORIGIN}\n1e3\n{root}\n{time}\n"), NoteError::BadTreeSize { reason: "is not a decimal number" }),
        (format!("{ORIGIN}\n 1\n{root}\n{time}\n"), NoteError::BadTreeSize { reason: "is not a decimal number" }),
        (format!("{ORIGIN}\n\n{root}\n{time}\n"), NoteError::BadTreeSize { reason: "is empty" }),
        (
            format!("{ORIGIN}\n18446744073709551616\n{root}\n{time}\n"),
            NoteError::BadTreeSize { reason: "is too large for 64 bits" },
        ),
        // Root hash.
        (format!("{ORIGIN}\n1\n{root31}\n{time}\n"), NoteError::RootHashLength { len: 31 }),
        (format!("{ORIGIN}\n1\n{root33}\n{time}\n"), NoteError::RootHashLength { len: 33 }),
        (format!("{ORIGIN}\n1\n{unpadded}\n{time}\n"), NoteError::BadRootHash),
        // 64 hex digits happen to be valid base64, of 48 bytes.
        (format!("{ORIGIN}\n1\n{}\n{time}\n", hex::encode(leaf_hash(b"root"))), NoteError::RootHashLength { len: 48 }),
        (format!("{ORIGIN}\n1\n{}\n{time}\n", B64.encode([7u8; 32]).replace('=', "")), NoteError::BadRootHash),
        (
            format!("{ORIGIN}\n1\n{}\n{time}\n", B64.encode([0xfbu8; 32]).replace('+', "-").replace('/', "_")),
            NoteError::BadRootHash,
        ),
        (format!("{ORIGIN}\n1\n\n{time}\n"), NoteError::RootHashLength { len: 0 }),
        // Time.
        (format!("{ORIGIN}\n1\n{root}\n"), NoteError::MissingTime),
        (format!("{ORIGIN}\n1\n{root}\n{time}\n{time}\n"), NoteError::DuplicateTime { line: 5 }),
        (
            format!("{ORIGIN}\n1\n{root}\ntime 2023-11-14T22:13:20.123+00:00\n"),
            NoteError::BadTime { line: 4, reason: non_canonical },
        ),
        (
            format!("{ORIGIN}\n1\n{root}\ntime 2023-11-14T22:13:20.12Z\n"),
            NoteError::BadTime { line: 4, reason: non_canonical },
        ),
        (
            format!("{ORIGIN}\n1\n{root}\ntime 2023-11-14T22:13:20.1230Z\n"),
            NoteError::BadTime { line: 4, reason: non_canonical },
        ),
        (
            format!("{ORIGIN}\n1\n{root}\ntime 2023-11-14T22:13:20Z\n"),
            NoteError::BadTime { line: 4, reason: non_canonical },
        ),
        (
            format!("{ORIGIN}\n1\n{root}\ntime 2023-11-14T23:13:20.123+01:00\n"),
            NoteError::BadTime { line: 4, reason: non_canonical },
        ),
        (
            format!("{ORIGIN}\n1\n{root}\ntime 2023-11-14 22:13:20.123Z\n"),
            NoteError::BadTime { line: 4, reason: non_canonical },
        ),
        (
            format!("{ORIGIN}\n1\n{root}\ntime 2023-11-14t22:13:20.123z\n"),
            NoteError::BadTime { line: 4, reason: non_canonical },
        ),
        (
            format!("{ORIGIN}\n1\n{root}\ntime 2023-11-14T22:13:20,123Z\n"),
            NoteError::BadTime { line: 4, reason: non_canonical },
        ),
        (
            format!("{ORIGIN}\n1\n{root}\ntime 2023-11-14T22:13:20.123Z[UTC]\n"),
            NoteError::BadTime { line: 4, reason: non_canonical },
        ),
        (
            format!("{ORIGIN}\n1\n{root}\ntime 9999-12-31T00:00:00.000Z\n"),
            NoteError::BadTime { line: 4, reason: "is not an RFC 3339 timestamp in the supported range" },
        ),
        (
            format!("{ORIGIN}\n1\n{root}\ntime yesterday\n"),
            NoteError::BadTime { line: 4, reason: "is not an RFC 3339 timestamp in the supported range" },
        ),
        (
            format!("{ORIGIN}\n1\n{root}\ntime  2023-11-14T22:13:20.123Z\n"),
            NoteError::BadTime { line: 4, reason: "is not an RFC 3339 timestamp in the supported range" },
        ),
        (format!("{ORIGIN}\n1\n{root}\ntime 1969-12-31T23:59:59.999Z\n"), NoteError::TimeOutOfRange { time_ms: -1 }),
        (format!("{ORIGIN}\n1\n{root}\nTime 2023-11-14T22:13:20.123Z\n"), NoteError::UnexpectedLine { line: 4 }),
        (format!("{ORIGIN}\n1\n{root}\nfoo\n{time}\n"), NoteError::UnexpectedLine { line: 4 }),
        // Line structure.
        (format!("{ORIGIN}\r\n1\r\n{root}\r\n{time}\r\n"), NoteError::CarriageReturn { line: 1 }),
        (format!("{ORIGIN}\n1\n{root}\n{time}\r\n"), NoteError::CarriageReturn { line: 4 }),
        (format!("{ORIGIN}\n1\n{root}\n{time}\njunk\n"), NoteError::UnexpectedLine { line: 5 }),
        (format!("{ORIGIN}\n1\n{root}\n{time}\n\n"), NoteError::EmptyLine { line: 5 }),
        (format!("{ORIGIN}\n1\n{root}\n{time}\njunk"), NoteError::TextMissingFinalNewline),
        (format!("{ORIGIN}\n1\n{root}\n{time}"), NoteError::TextMissingFinalNewline),
        (format!("\n1\n{root}\n{time}\n"), NoteError::EmptyOrigin),
        (format!("{ORIGIN}\n"), NoteError::MissingLine { line: 2, what: "tree size" }),
        (format!("{ORIGIN}\n1\n"), NoteError::MissingLine { line: 3, what: "root hash" }),
        (format!("a\tb\n1\n{root}\n{time}\n"), NoteError::ControlCharacter { offset: 1 }),
    ];
    let signer = log_signer();
    for (text, want) in cases {
        assert_eq!(Checkpoint::parse_text(&text), Err(want.clone()), "{text:?}");
        // Signed by the right key, the note still does not open as a checkpoint (when it is a note at all).
        if let Ok(note) = signer.sign(&text) {
            assert_eq!(Checkpoint::open(&note, &signer.verifier()), Err(want), "{text:?}");
        }
    }
    // The largest size parses.
    let max = format!("{ORIGIN}\n18446744073709551615\n{root}\n{time}\n");
    assert_eq!(Checkpoint::parse_text(&max).unwrap().size, u64::MAX);
}

// ---------------------------------------------------------------------------------------------------------------
// Files of notes.
// ---------------------------------------------------------------------------------------------------------------

fn three_notes() -> Vec<String> {
    let signer = log_signer();
    (1..=3u64)
        .map(|i| {
            let cp = Checkpoint { size: i * 10, time_ms: 1_700_000_000_000 + i as i64, ..checkpoint() };
            cp.sign(&signer).unwrap()
        })
        .collect()
}

#[test]
fn split_notes_finds_each_note() {
    let notes = three_notes();
    let verifier = log_signer().verifier();
    assert_eq!(split_notes(&notes[0]), Ok(vec![notes[0].as_str()]));
    let file = notes.concat();
    let split = split_notes(&file).unwrap();
    assert_eq!(split, notes.iter().map(String::as_str).collect::<Vec<_>>());
    for (i, note) in split.iter().enumerate() {
        assert_eq!(Checkpoint::open(note, &verifier).unwrap().size, (i as u64 + 1) * 10);
    }
    // Several signatures on a note stay with it.
    let both = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let file = format!("{both}{}{both}", notes[0]);
    assert_eq!(split_notes(&file), Ok(vec![both.as_str(), notes[0].as_str(), both.as_str()]));
    // Blank lines inside a note's text are part of it.
    let blank_inside = format!("a\n\nb\n\n{PETER_SIG}");
    assert_eq!(split_notes(&format!("{blank_inside}{}", notes[1])), Ok(vec![blank_inside.as_str(), notes[1].as_str()]));
    assert_eq!(split_notes(""), Ok(vec![]));
}

#[test]
fn split_notes_refuses_anything_else() {
    let notes = three_notes();
    let [a, b, c] = [&notes[0], &notes[1], &notes[2]];
    let lines = |s: &str| s.lines().count();
    let cases: Vec<(String, NoteError)> = vec![
        (format!("{a}\n{b}"), NoteError::BlankLineBetweenNotes { line: lines(a) + 1 }),
        (format!("\n{a}"), NoteError::BlankLineBetweenNotes { line: 1 }),
        (format!("{a}{b}{}", &c[..c.len() - 1]), NoteError::MissingFinalNewline),
        (format!("{a}junk\n"), NoteError::TrailingText { line: lines(a) + 1 }),
        (format!("{a}{b}junk"), NoteError::MissingFinalNewline),
        (format!("{a}x\n\n"), NoteError::TrailingText { line: lines(a) + 1 }),
        (format!("{a}\0\n{b}"), NoteError::ControlCharacter { offset: a.len() }),
        (format!("{a}\r\n{b}"), NoteError::ControlCharacter { offset: a.len() }),
        (
            format!("{a}\u{2014} junk\n{b}"),
            NoteError::InvalidNote {
                index: 1,
                line: 1,
                source: Box::new(NoteError::MalformedSignatureLine {
                    line: lines(a) + 1,
                    reason: "no space between key name and signature",
                }),
            },
        ),
        (
            format!("{a}{b}\u{2014} {ORIGIN} !!!!\n{c}"),
            NoteError::InvalidNote {
                index: 2,
                line: lines(a) + 1,
                source: Box::new(NoteError::MalformedSignatureLine {
                    line: lines(b) + 1,
                    reason: "signature is not padded standard base64",
                }),
            },
        ),
    ];
    for (file, want) in cases {
        assert_eq!(split_notes(&file), Err(want), "{file:?}");
    }
    // Plain text between two notes reads as the start of the second note's text, which its signature then
    // does not cover: the split succeeds, the note does not open.
    let verifier = log_signer().verifier();
    let file = format!("{a}junk\n{b}");
    let split = split_notes(&file).unwrap();
    assert_eq!(split.len(), 2);
    assert_eq!(split[1], format!("junk\n{b}"));
    assert!(matches!(Checkpoint::open(split[1], &verifier), Err(NoteError::BadSignature { .. })));
}
