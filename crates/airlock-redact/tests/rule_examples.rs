//! Every built-in rule is run against its own examples: each positive example must be found by the rule alone and
//! by the whole rule set (masked, whichever rule wins an overlap), each negative example must not be found by the
//! rule, and streaming with a split at every byte must give exactly the whole-buffer result.

//!
//! Set `AIRLOCK_RULE_FILE=cloud.toml` (a comma-separated list) to check only some built-in files.

use airlock_redact::rule::BUILTIN_FILES;
use airlock_redact::{MaskStyle, PiiSelection, RuleSet, ScanOptions, Scanner};

/// The built-in files selected by `AIRLOCK_RULE_FILE` (all by default), each loaded on its own, so that one broken
/// file is reported by name without hiding the results of the others.
fn rule_files() -> Vec<(&'static str, Result<RuleSet, String>)> {
    let only = std::env::var("AIRLOCK_RULE_FILE").ok();
    BUILTIN_FILES
        .iter()
        .filter(|(name, _)| only.as_ref().is_none_or(|o| o.split(',').any(|x| x == *name)))
        .map(|(name, text)| {
            let mut set = RuleSet::empty();
            (*name, set.add_toml(name, text).map(|()| set).map_err(|e| e.to_string()))
        })
        .collect()
}

/// All selected files that load, as one set.
fn loaded_set() -> RuleSet {
    let mut set = RuleSet::empty();
    for (name, text) in BUILTIN_FILES {
        let only = std::env::var("AIRLOCK_RULE_FILE").ok();
        if only.as_ref().is_none_or(|o| o.split(',').any(|x| x == *name)) {
            let _ = set.add_toml(name, text);
        }
    }
    set
}

fn all_options() -> ScanOptions {
    ScanOptions { secrets: true, pii: PiiSelection::All, fingerprint_key: Some([7; 32]) }
}

fn single_rule_scanner(builtin: &RuleSet, id: &str) -> Scanner {
    let spec = builtin.get(id).expect("rule exists").spec().clone();
    let mut set = RuleSet::empty();
    set.add_specs("test", vec![spec]).expect("rule compiles alone");
    Scanner::new(set, &all_options(), None).expect("scanner builds")
}

#[test]
fn every_rule_finds_its_positive_examples_and_none_of_its_negatives() {
    let mut failures = Vec::new();
    let mut sets = Vec::new();
    for (name, set) in rule_files() {
        match set {
            Ok(set) => sets.push(set),
            Err(e) => failures.push(format!("{name}: does not load: {e}")),
        }
    }
    let all = loaded_set();
    for rule in sets.iter().flat_map(|s| s.rules()) {
        let scanner = single_rule_scanner(&all, rule.id());
        for (i, text) in rule.spec().positive.iter().enumerate() {
            if scanner.scan(text.as_bytes()).is_empty() {
                failures.push(format!("{} ({}): positive example {i} not found", rule.id(), rule.origin()));
            }
        }
        for (i, text) in rule.spec().negative.iter().enumerate() {
            if !scanner.scan(text.as_bytes()).is_empty() {
                failures.push(format!("{} ({}): negative example {i} found", rule.id(), rule.origin()));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_whole_rule_set_masks_every_positive_example() {
    let builtin = loaded_set();
    let scanner = Scanner::new(loaded_set(), &all_options(), None).unwrap();
    let mut failures = Vec::new();
    for rule in builtin.rules() {
        let alone = single_rule_scanner(&builtin, rule.id());
        for (i, text) in rule.spec().positive.iter().enumerate() {
            let mine = alone.scan(text.as_bytes());
            let all = scanner.scan(text.as_bytes());
            let covered = mine.iter().all(|m| all.iter().any(|a| a.start <= m.start && m.end <= a.end));
            if mine.is_empty() || !covered {
                failures.push(format!("{}: positive example {i} not masked by the full set", rule.id()));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn streaming_with_a_split_at_every_byte_equals_whole_buffer_redaction() {
    let builtin = loaded_set();
    let scanner = std::sync::Arc::new(Scanner::new(loaded_set(), &all_options(), None).unwrap());
    let mut failures = Vec::new();
    for rule in builtin.rules() {
        for (i, example) in rule.spec().positive.iter().enumerate() {
            let text = format!("first line\n{example}\nlast line");
            let (whole, whole_findings) = scanner.redact(text.as_bytes(), &MaskStyle::Label);
            for split in 0..=text.len() {
                let mut stream = airlock_redact::StreamRedactor::new(scanner.clone(), MaskStyle::Label);
                let mut out = Vec::new();
                let mut found = stream.push(&text.as_bytes()[..split], &mut out);
                found.extend(stream.push(&text.as_bytes()[split..], &mut out));
                found.extend(stream.finish(&mut out));
                if out != whole || found != whole_findings {
                    failures.push(format!("{}: positive example {i} differs when split at byte {split}", rule.id()));
                    break;
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_builtin_set_has_at_least_150_credential_rules_each_with_examples() {
    for (name, set) in rule_files() {
        let set = set.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!set.is_empty(), "{name} has no rules");
    }
    let builtin = RuleSet::builtin();
    let secrets = builtin.rules().iter().filter(|r| r.category() == airlock_redact::Category::Secret).count();
    assert!(secrets >= 150, "only {secrets} credential rules");
    for rule in builtin.rules() {
        assert!(!rule.spec().positive.is_empty() && !rule.spec().negative.is_empty(), "{}", rule.id());
    }
}
