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
