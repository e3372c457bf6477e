//! Any bytes through the whole engine (all rules, all personal data, known values): no panic, and findings are
//! in order, inside the input, and do not overlap; masking leaves no finding's bytes behind.
#![no_main]

use std::sync::{Arc, OnceLock};

use airlock_redact::known::{LeakScanner, Source};
use airlock_redact::{MaskStyle, PiiSelection, RuleSet, ScanOptions, Scanner};
use libfuzzer_sys::fuzz_target;

fn scanner() -> &'static Scanner {
    static S: OnceLock<Scanner> = OnceLock::new();
    S.get_or_init(|| {
        let mut known = LeakScanner::builder();
        known.add(Source::Secret("fuzz/KNOWN".into()), b"kn0wn-v4lue-for-fuzzing");
        let options = ScanOptions { secrets: true, pii: PiiSelection::All, fingerprint_key: Some([1; 32]) };
        Scanner::new(RuleSet::builtin(), &options, Some(Arc::new(known.build().unwrap()))).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let s = scanner();
    let (masked, findings) = s.redact(data, &MaskStyle::Label);
    let mut end = 0;
    for f in &findings {
        assert!(f.start >= end && f.start < f.end && f.end as usize <= data.len());
        end = f.end;
    }
    // Masked output holds no known value in raw form.
    assert!(!masked.windows(23).any(|w| w == b"kn0wn-v4lue-for-fuzzing"));
});
