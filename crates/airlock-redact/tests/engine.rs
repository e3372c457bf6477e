//! Engine behaviour that no single built-in rule's examples pin down.

use airlock_redact::{PiiSelection, RuleSet, ScanOptions, Scanner};

fn scanner(toml: &str) -> Scanner {
    let mut set = RuleSet::empty();
    set.add_toml("test.toml", toml).expect("rule file loads");
    Scanner::new(set, &ScanOptions { secrets: true, pii: PiiSelection::None, fingerprint_key: Some([1; 32]) }, None)
        .expect("scanner builds")
}

/// A rule whose every match starts a line is searched once per line, anchored: it must still find matches on any
/// line, after any amount of text on earlier lines, and never in the middle of a line.
#[test]
fn a_line_anchored_rule_matches_at_the_start_of_any_line_and_nowhere_else() {
    let s = scanner(
        r#"
[[rule]]
id = "line-key"
family = "test"
description = "a ZKEY= assignment at the start of a line"
keywords = ["zkey"]
regex = '''(?m:^)[ \t]{0,4}ZKEY=(?P<secret>[a-z0-9]{12})'''
max_len = 40
positive = ["ZKEY=abcdef123456"]
negative = ["x ZKEY=abcdef123456"]
"#,
    );
    let text = b"first line ZKEY=q7w2e9r4t1y6\n  ZKEY=m3n8b5v2c7x4\nZKEY=k9j4h7g2f5d8 zkey ZKEY=p2o7i4u9y3t6\n";
    let found: Vec<&[u8]> = s.scan(text).iter().map(|f| &text[f.start as usize..f.end as usize]).collect();
    assert_eq!(found, vec![b"m3n8b5v2c7x4".as_slice(), b"k9j4h7g2f5d8".as_slice()]);
    // The keyword far from the line start (beyond max_len): the window cannot reach the start, so no match.
    let far = format!("ZKEY=z8x3c6v1b4n7{}\n", " zkey".repeat(20));
    assert_eq!(s.scan(far.as_bytes()).len(), 1, "the match at the line start is still found once");
}

/// Groups are read only for candidates; the masked span must be the `secret` group, not the whole match.
#[test]
fn a_candidate_reports_its_secret_group_not_its_whole_match() {
    let s = scanner(
        r#"
[[rule]]
id = "grouped"
family = "test"
description = "a QTOKEN: prefix before the secret"
keywords = ["qtoken"]
regex = '''QTOKEN:\s{0,2}(?P<secret>[A-Za-z0-9]{16})\b'''
max_len = 40
positive = ["QTOKEN: Ab3dEf6hIj9kLm2n"]
negative = ["QTOKEN: short"]
"#,
    );
    let text = b"x QTOKEN: Ab3dEf6hIj9kLm2n and QTOKEN:Zz9yXx8wVv7uTt6s.";
    let spans: Vec<(u64, u64)> = s.scan(text).iter().map(|f| (f.start, f.end)).collect();
    assert_eq!(spans, vec![(10, 26), (38, 54)]);
}
/// A single-line rule's window ends at the keyword's line, the first keyword of a buffer included: a value on the
/// next line is not part of this line's assignment.
#[test]
fn a_single_line_rule_does_not_reach_into_the_next_line() {
    let s = scanner(
        r#"
[[rule]]
id = "spaced"
family = "test"
description = "WKEY followed by whitespace and a value"
keywords = ["wkey"]
regex = '''WKEY\s{1,8}(?P<secret>[a-z0-9]{12})'''
max_len = 40
positive = ["WKEY m3n8b5v2c7x4"]
negative = ["WKEY\nm3n8b5v2c7x4"]
"#,
    );
    assert!(s.scan(b"WKEY\nm3n8b5v2c7x4\n").is_empty(), "the first keyword's window stops at its newline");
    assert_eq!(s.scan(b"WKEY m3n8b5v2c7x4\n").len(), 1);
}

/// A rule whose matches start with its keyword is searched from each keyword, anchored when a window holds one
/// occurrence and unanchored when occurrences share a window: both must find every token, near misses in between.
#[test]
fn a_keyword_prefixed_rule_finds_every_token_alone_or_crowded() {
    let s = scanner(
        r#"
[[rule]]
id = "qk-token"
family = "test"
description = "qk_ then 16 alphanumerics"
keywords = ["qk_"]
regex = '''\b(?P<secret>qk_[A-Za-z0-9]{16})\b'''
max_len = 19
positive = ["qk_Ab3dEf6hIj9kLm2n"]
negative = ["qk_short"]
"#,
    );
    let alone = b"a qk_Ab3dEf6hIj9kLm2n\n";
    assert_eq!(s.scan(alone).len(), 1);
    let crowded = b"QK_Ab3dEf6hIj9kLm2n qk_short qk_Ab3dEf6hIj9kLm2n,qk_Zz9yXx8wVv7uTt6s xqk_Ab3dEf6hIj9kLm2n\n";
    let found: Vec<&[u8]> = s.scan(crowded).iter().map(|f| &crowded[f.start as usize..f.end as usize]).collect();
    assert_eq!(found, vec![b"qk_Ab3dEf6hIj9kLm2n".as_slice(), b"qk_Zz9yXx8wVv7uTt6s".as_slice()]);
}
