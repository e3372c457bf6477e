//! The streaming boundary logic: any input cut into chunks at fuzzer-chosen points must give exactly the output and
//! findings of redacting the whole buffer at once. Three streams: the built-in rules as shipped (a 16 KiB carry,
//! so fuzz-sized chunks are gathered), and the rules with short matches only (a carry of a few hundred bytes) with
//! the default batching and with none, so that chunks are also scanned in place.
#![no_main]

use std::sync::{Arc, OnceLock};

use airlock_redact::{MaskStyle, PiiSelection, RuleSet, ScanOptions, Scanner, StreamRedactor};
use libfuzzer_sys::fuzz_target;

fn options() -> ScanOptions {
    ScanOptions { secrets: true, pii: PiiSelection::All, fingerprint_key: Some([1; 32]) }
}

fn full() -> &'static Arc<Scanner> {
    static S: OnceLock<Arc<Scanner>> = OnceLock::new();
    S.get_or_init(|| Arc::new(Scanner::new(RuleSet::builtin(), &options(), None).unwrap()))
}

fn short() -> &'static Arc<Scanner> {
    static S: OnceLock<Arc<Scanner>> = OnceLock::new();
    S.get_or_init(|| {
        let mut set = RuleSet::builtin();
        let long: Vec<String> = set.rules().iter().filter(|r| r.max_len() > 300).map(|r| r.id().to_string()).collect();
        set.disable(&long);
        Arc::new(Scanner::new(set, &options(), None).unwrap())
    })
}

fuzz_target!(|input: (u8, Vec<u16>, Vec<u8>)| {
    let (variant, cuts, data) = input;
    let (s, batch) = match variant % 3 {
        0 => (full(), None),
        1 => (short(), None),
        _ => (short(), Some(1)),
    };
    let (whole, whole_findings) = s.redact(&data, &MaskStyle::Label);
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (data.len() + 1)).collect();
    cuts.sort_unstable();
    let mut stream = StreamRedactor::new(Arc::clone(s), MaskStyle::Label);
    if let Some(b) = batch {
        stream = stream.with_batch(b);
    }
    let (mut out, mut found, mut at) = (Vec::new(), Vec::new(), 0);
    for cut in cuts.into_iter().chain([data.len()]) {
        found.extend(stream.push(&data[at..cut], &mut out));
        at = cut;
    }
    found.extend(stream.finish(&mut out));
    assert_eq!(out, whole);
    assert_eq!(found, whole_findings);
});
