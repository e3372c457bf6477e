//! Attack: a tool prints a token in two writes, hoping each half passes the scanner on its own. Every split point
//! of the token (and of the text around it) is tried: the token never appears, and the output is exactly what
//! redacting the whole text at once gives.

use crate::common::{GITHUB_TOKEN, contains, scanner, stream};

#[test]
fn split_a_token_across_output_chunks() {
    let s = scanner();
    let text = format!("log line\nexport GITHUB_TOKEN={GITHUB_TOKEN} # set by ci\nmore output\n");
    let (whole, _) = s.redact(text.as_bytes(), &airlock_redact::MaskStyle::Label);
    assert!(!contains(&whole, GITHUB_TOKEN.as_bytes()));
    for split in 0..=text.len() {
        let (a, b) = text.as_bytes().split_at(split);
        let (out, rules) = stream(&s, &[a, b]);
        assert_eq!(out, whole, "split at {split}");
        assert_eq!(rules, ["github-pat-classic"], "split at {split}");
    }
}
