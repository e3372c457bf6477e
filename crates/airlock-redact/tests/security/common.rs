use std::sync::Arc;

use airlock_redact::known::{LeakScanner, Source};
use airlock_redact::{MaskStyle, PiiSelection, RuleSet, ScanOptions, Scanner, StreamRedactor};

/// A GitHub classic token with a valid checksum (generated for these tests; not a real credential).
pub const GITHUB_TOKEN: &str = "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";

/// The value a vault would hold (made up).
pub const VAULT_VALUE: &[u8] = b"vault-value-9f3Kq2LmX7pZ";

pub fn scanner() -> Arc<Scanner> {
    let mut known = LeakScanner::builder();
    known.add(Source::Secret("default/API_KEY".into()), VAULT_VALUE);
    let options = ScanOptions { secrets: true, pii: PiiSelection::All, fingerprint_key: Some([3; 32]) };
    Arc::new(Scanner::new(RuleSet::builtin(), &options, Some(Arc::new(known.build().unwrap()))).unwrap())
}

/// Streams `chunks` through a fresh redactor; returns the output and the rule ids found.
pub fn stream(scanner: &Arc<Scanner>, chunks: &[&[u8]]) -> (Vec<u8>, Vec<String>) {
    let mut s = StreamRedactor::new(Arc::clone(scanner), MaskStyle::Label);
    let mut out = Vec::new();
    let mut rules = Vec::new();
    for c in chunks {
        rules.extend(s.push(c, &mut out).into_iter().map(|f| f.rule.to_string()));
    }
    rules.extend(s.finish(&mut out).into_iter().map(|f| f.rule.to_string()));
    (out, rules)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
