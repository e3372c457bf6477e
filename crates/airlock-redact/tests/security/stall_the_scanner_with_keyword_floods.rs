//! Attack: input built to make a scanner do quadratic work: every rule's keywords repeated back to back on one
//! line, then near-miss tokens that each start a candidate and fail a check. The engine's windows per rule are
//! merged and its regexes are linear-time, so this completes like any other input of its size (the benchmark
//! script measures the rate); here we check it is still correct: none of the 2,000 near misses is reported, and the
//! one real token after them is found exactly once, with its exact span. (Keywords run together can spell a
//! token's shape, `glft-` then `glwt-_gitlab_session` say: those findings fall inside the keyword run and are
//! allowed.)

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
    let keyword_run = text.len() as u64;
    // A valid-looking GitHub token with a wrong checksum, repeated: each is a candidate that fails the CRC.
    for _ in 0..2000 {
        text.extend_from_slice(b"ghp_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC01XM6Eb ");
    }
    text.extend_from_slice(GITHUB_TOKEN.as_bytes());
    let findings = s.scan(&text);
    let after_keywords: Vec<(&str, &[u8])> = findings
        .iter()
        .filter(|f| f.end > keyword_run)
        .map(|f| (&*f.rule, &text[f.start as usize..f.end as usize]))
        .collect();
    assert_eq!(after_keywords, [("github-pat-classic", GITHUB_TOKEN.as_bytes())]);
}
