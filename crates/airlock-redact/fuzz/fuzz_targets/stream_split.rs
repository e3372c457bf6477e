//! The streaming boundary logic: any input cut into chunks at fuzzer-chosen points must give exactly the output and
//! findings of redacting the whole buffer at once.
#![no_main]

use std::sync::{Arc, OnceLock};

use airlock_redact::{MaskStyle, PiiSelection, RuleSet, ScanOptions, Scanner, StreamRedactor};
use libfuzzer_sys::fuzz_target;

fn scanner() -> &'static Arc<Scanner> {
    static S: OnceLock<Arc<Scanner>> = OnceLock::new();
    S.get_or_init(|| {
        let options = ScanOptions { secrets: true, pii: PiiSelection::All, fingerprint_key: Some([1; 32]) };
        Arc::new(Scanner::new(RuleSet::builtin(), &options, None).unwrap())
    })
}

fuzz_target!(|input: (Vec<u16>, Vec<u8>)| {
    let (cuts, data) = input;
    let s = scanner();
    let (whole, whole_findings) = s.redact(&data, &MaskStyle::Label);
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (data.len() + 1)).collect();
    cuts.sort_unstable();
    let mut stream = StreamRedactor::new(Arc::clone(s), MaskStyle::Label);
    let (mut out, mut found, mut at) = (Vec::new(), Vec::new(), 0);
    for cut in cuts.into_iter().chain([data.len()]) {
        found.extend(stream.push(&data[at..cut], &mut out));
        at = cut;
    }
    found.extend(stream.finish(&mut out));
    assert_eq!(out, whole);
    assert_eq!(found, whole_findings);
});
