//! A model that saw a credential in a tool's output (a config file, an environment dump) repeats it in its answer,
//! where it lands in a chat log, a ticket or a screenshot.

use airlock_guard::score::Verdict;
use airlock_guard::validate::{FindingKind, OutputPolicy, validate};

#[test]
fn leak_a_secret_in_model_output() {
    let token = "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";
    let output = format!("The deploy failed because the token expired. The old one was `{token}`; rotate it.");
    let v = validate(&output, None, &OutputPolicy::default(), None);
    assert_eq!(v.verdict, Verdict::Block, "{:#?}", v.findings);
    assert_eq!(v.findings.len(), 1, "{:#?}", v.findings);
    let f = &v.findings[0];
    assert_eq!(f.kind, FindingKind::Credential);
    assert_eq!(&output[f.span.clone()], token);
    assert!(f.detail.contains("github"), "names the rule: {}", f.detail);
    assert!(!f.detail.contains(&token[4..]), "never the value: {}", f.detail);
}
