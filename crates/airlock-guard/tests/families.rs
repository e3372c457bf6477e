//! Every built-in family finds its positive examples and none of its negatives, on the text as a tool would return
//! it (the scan folds it first).

use airlock_guard::heuristics::{BUILTIN_FILES, Heuristics, parse};

#[test]
fn every_family_matches_its_positives_and_not_its_negatives() {
    let h = Heuristics::builtin();
    let mut failures = Vec::new();
    for f in h.families() {
        assert!(!f.positive.is_empty() && !f.negative.is_empty(), "{}: needs positive and negative examples", f.id);
        for p in &f.positive {
            if !h.scan(p).iter().any(|hit| hit.family == f.id) {
                failures.push(format!("{}: positive not found: {p:?}", f.id));
            }
        }
        for n in &f.negative {
            if h.scan(n).iter().any(|hit| hit.family == f.id) {
                failures.push(format!("{}: negative matched: {n:?}", f.id));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_file_parses_and_ids_are_unique() {
    let mut ids = std::collections::HashSet::new();
    for (file, text) in BUILTIN_FILES {
        for f in parse(file, text).unwrap_or_else(|e| panic!("{e}")) {
            assert!(ids.insert(f.id.clone()), "{file}: duplicate id {}", f.id);
        }
    }
}
