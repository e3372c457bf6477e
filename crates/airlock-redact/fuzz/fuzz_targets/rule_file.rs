//! Any text as a user's rule file: an error or a rule set, never a panic; a rule set that loads scans a sample.
#![no_main]

use airlock_redact::{RuleSet, ScanOptions, Scanner};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut set = RuleSet::empty();
    if set.add_toml("fuzz.toml", text).is_ok() {
        let scanner = Scanner::new(set, &ScanOptions::default(), None).unwrap();
        let _ = scanner.scan(b"password = \"hunter2hunter2\" ghp_0123456789 AKIA0123456789ABCDEF");
    }
});
