//! Attack: input built to make a scanner do quadratic work: every rule's keywords repeated back to back on one
//! line, near-miss tokens that each start a candidate and fail a check, and deeply ambiguous text for the
//! generic rules. The engine's windows per rule are merged and its regexes are linear-time, so this completes
//! like any other input of its size (the benchmark script measures the rate); here we check it is still correct:
//! the one real token among the decoys is found, and nothing else.

use crate::common::{GITHUB_TOKEN, scanner};

#[test]
fn stall_the_scanner_with_keyword_floods() {
    let s = scanner();
    let mut text = Vec::new();
    let keywords: Vec<String> = s.rules().iter().flat_map(|r| r.spec().keywords.clone()).collect();
    for _ in 0..40 {
        for k in &keywords {
            text.extend_from_slice(k.as_bytes());
        }
    }
    // A valid-looking GitHub token with a wrong checksum, repeated: each is a candidate that fails the CRC.
    for _ in 0..2000 {
        text.extend_from_slice(b"ghp_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC01XM6Eb ");
    }
    text.extend_from_slice(GITHUB_TOKEN.as_bytes());
    let findings = s.scan(&text);
    assert!(findings.iter().any(|f| &*f.rule == "github-pat-classic"));
    assert_eq!(findings.iter().filter(|f| &*f.rule == "github-pat-classic").count(), 1);
}
