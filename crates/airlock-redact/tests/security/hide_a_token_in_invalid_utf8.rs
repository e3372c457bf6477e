//! Attack: a token surrounded by bytes that are not UTF-8 (a binary dump, Latin-1 text), so that a scanner working
//! on strings gives up or panics. The engine scans bytes: the token is found and the bytes around it pass through
//! unchanged.

use crate::common::{GITHUB_TOKEN, contains, scanner};

#[test]
fn hide_a_token_in_invalid_utf8() {
    let s = scanner();
    let mut text = vec![0xff, 0xfe, 0x80, 0xc3, b' '];
    text.extend_from_slice(GITHUB_TOKEN.as_bytes());
    text.extend_from_slice(&[b' ', 0xc0, 0xaf, 0x00, 0xed, 0xa0, 0x80]);
    let (masked, findings) = s.redact(&text, &airlock_redact::MaskStyle::Label);
    assert_eq!(findings.len(), 1);
    assert!(!contains(&masked, GITHUB_TOKEN.as_bytes()));
    assert!(masked.starts_with(&[0xff, 0xfe, 0x80, 0xc3, b' ']));
    assert!(masked.ends_with(&[b' ', 0xc0, 0xaf, 0x00, 0xed, 0xa0, 0x80]));
    // Shape masking of a secret next to invalid UTF-8 keeps the neighbours too.
    let (shaped, _) = s.redact(&text, &airlock_redact::MaskStyle::Shape);
    assert_eq!(shaped.len(), text.len());
}
