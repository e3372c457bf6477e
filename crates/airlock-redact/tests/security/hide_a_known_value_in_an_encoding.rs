//! Attack: a tool that got hold of a vault value prints it encoded (base64 at any offset of a larger blob,
//! base64url, hex in either case, percent-encoding, JSON escaping), hoping the scanner only knows the raw bytes.

use base64::Engine as _;

use crate::common::{VAULT_VALUE, contains, scanner};

#[test]
fn hide_a_known_value_in_an_encoding() {
    let s = scanner();
    let b64 = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut forms: Vec<String> = vec![
        String::from_utf8(VAULT_VALUE.to_vec()).unwrap(),
        hex::encode(VAULT_VALUE),
        hex::encode_upper(VAULT_VALUE),
        url.encode(VAULT_VALUE),
        VAULT_VALUE.iter().map(|b| format!("%{b:02X}")).collect(),
        serde_json::to_string(std::str::from_utf8(VAULT_VALUE).unwrap()).unwrap(),
    ];
    // Base64 of the value inside larger blobs, at each of the three alignments.
    for lead in 0..3 {
        let mut blob = b"xy".repeat(lead);
        blob.extend_from_slice(VAULT_VALUE);
        blob.extend_from_slice(b"trailing");
        forms.push(b64.encode(&blob));
    }
    for form in &forms {
        let text = format!("output: {form} end");
        let (masked, findings) = s.redact(text.as_bytes(), &airlock_redact::MaskStyle::Label);
        assert!(findings.iter().any(|f| &*f.rule == "known-value"), "not found: form {form:?}");
        assert!(contains(&masked, b"[REDACTED:known-value]"), "{}", String::from_utf8_lossy(&masked));
        assert!(!contains(&masked, VAULT_VALUE));
    }
}

/// A value with characters each encoding treats differently (space, `+`, `/`, `"`, `\`, `&`, `=`, `%`, non-ASCII),
/// so that the minimal percent forms, form encoding and JSON escaping are each something other than the raw bytes.
#[test]
fn hide_a_known_value_with_special_characters_in_an_encoding() {
    use airlock_redact::known::{Encoding, LeakScanner, Source};
    use airlock_redact::{PiiSelection, RuleSet, ScanOptions, Scanner};
    const VALUE: &str = "p@ss w/rd+\"quoted\"\\back&x=1%25é!";
    let mut known = LeakScanner::builder();
    known.add(Source::Secret("default/DB_PASSWORD".into()), VALUE.as_bytes());
    let options = ScanOptions { secrets: true, pii: PiiSelection::All, fingerprint_key: Some([3; 32]) };
    let s = Scanner::new(RuleSet::builtin(), &options, Some(std::sync::Arc::new(known.build().unwrap()))).unwrap();

    // What a common encoder writes: every byte but the unreserved ones escaped (Python's quote(safe=''),
    // encodeURIComponent), in upper and lower case; form encoding, with `+` for a space; JSON as serde writes it.
    let minimal = |upper: bool| -> String {
        VALUE
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ if upper => format!("%{b:02X}"),
                _ => format!("%{b:02x}"),
            })
            .collect()
    };
    let form = minimal(true).replace("%20", "+");
    let json = serde_json::to_string(VALUE).unwrap();
    let json = &json[1..json.len() - 1];
    for (form, encoding) in [
        (minimal(true), Encoding::Percent),
        (minimal(false), Encoding::PercentLower),
        (form, Encoding::FormUrlEncoded),
        (json.to_string(), Encoding::JsonEscaped),
    ] {
        assert_ne!(form, VALUE, "{encoding:?} must differ from the raw bytes for this to test anything");
        let text = format!("output: \"{form}\" end");
        let (masked, findings) = s.redact(text.as_bytes(), &airlock_redact::MaskStyle::Label);
        let encodings: Vec<Encoding> = findings.iter().filter_map(|f| f.known.as_ref().map(|k| k.1)).collect();
        assert!(encodings.contains(&encoding), "{encoding:?} not found in {form:?}: {findings:?}");
        assert!(!contains(&masked, form.as_bytes()), "{}", String::from_utf8_lossy(&masked));
    }
}
