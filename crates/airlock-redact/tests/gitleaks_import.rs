//! Importing a gitleaks configuration: what each kind of rule becomes, what is skipped or approximated (and said
//! so, by rule), and that the imported rules load and find what the originals were written for.
//!
//! The configuration below is written for this test (invented token formats), in gitleaks' file format.

use airlock_redact::gitleaks::import_gitleaks;
use airlock_redact::rule::compile_regex;
use airlock_redact::{RuleError, RuleSet, RuleSpec, ScanOptions, Scanner};

const CONFIG: &str = r#"
title = "Acme secret scanning"

[extend]
useDefault = true

# Keywords, a secret group, an entropy floor, and the older single-allowlist form.
[[rules]]
id = "Acme_Deploy-Token"
description = "Acme deploy token"
regex = '''(?i)\b(acme_deploy)\s*[:=]\s*["']?([a-z0-9]{32})\b'''
secretGroup = 2
entropy = 3.5
keywords = ["ACME_DEPLOY"]
tags = ["acme", "deploy"]
[rules.allowlist]
stopwords = ["fixture", ""]

# No keywords: the literal prefix becomes one. One group and no secretGroup: that group is the secret. The newer
# allowlist form, with a regex we cannot import.
[[rules]]
id = "widget-api-key"
description = "Widget API key"
regex = '''\bwgt_([A-Za-z0-9]{24})\b'''
[[rules.allowlists]]
regexTarget = "match"
regexes = ['''wgt_test''']
stopwords = ["sample"]

# Go-only syntax, keys spelled in another case (gitleaks ignores key case).
[[rules]]
ID = "quoted-go"
Description = "Quoted literal"
Regex = '''\Qtok.\E[0-9a-f]{16}\b'''
Keywords = ["tok."]

# A path-only rule.
[[rules]]
id = "private-key-file"
description = "Key files"
path = '''\.pem$'''

# A regex limited to some paths: the path cannot apply to a stream.
[[rules]]
id = "scoped"
description = "Scoped token"
regex = '''\bscp_[a-z0-9]{20}\b'''
path = '''config/'''
keywords = ["scp_"]

# A regex that does not compile.
[[rules]]
id = "broken"
description = "Broken"
regex = '''(unclosed[a-z]{4}'''
keywords = ["unclosed"]

# A Unicode class: matching is ASCII-only here.
[[rules]]
id = "greek-key"
description = "Greek key"
regex = '''\p{Greek}{4}key'''
keywords = ["key"]

# No keywords and no literal prefix.
[[rules]]
id = "no-anchor"
description = "Anything shaped like abc_12345678"
regex = '''[a-z]{3}_[0-9]{8}'''

# A composite rule.
[[rules]]
id = "pair-secret"
description = "Pair secret"
regex = '''pair_secret=[a-z0-9]{16}'''
keywords = ["pair_secret"]
[[rules.required]]
id = "widget-api-key"
withinLines = 2

# Same id once lowercased and cleaned.
[[rules]]
id = "ACME deploy token"
description = "Acme deploy token, colon form"
regex = '''acme:[A-Za-z0-9]{40}'''
keywords = ["acme:"]

# A secretGroup past the last group.
[[rules]]
id = "bad-group"
description = "Bad group"
regex = '''bad_([a-z]{8})'''
secretGroup = 3
keywords = ["bad_"]

[[allowlists]]
targetRules = ["widget-api-key"]
stopwords = ["demo"]

[[allowlists]]
description = "Everywhere"
paths = ['''vendor/''']
stopwords = ["ci-only"]
"#;

fn import() -> (Vec<RuleSpec>, Vec<String>) {
    import_gitleaks("gitleaks.toml", CONFIG).expect("the config imports")
}

fn spec<'a>(specs: &'a [RuleSpec], id: &str) -> &'a RuleSpec {
    specs
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no rule {id}: {:?}", specs.iter().map(|s| &s.id).collect::<Vec<_>>()))
}

/// The one warning about `rule` (by its gitleaks id).
fn warning<'a>(warnings: &'a [String], rule: &str) -> &'a str {
    let tag = format!("gitleaks rule {rule:?}");
    let found: Vec<&String> = warnings.iter().filter(|w| w.starts_with(&tag)).collect();
    assert_eq!(found.len(), 1, "one warning for {rule}: {warnings:#?}");
    found[0]
}

#[test]
fn rules_convert_with_ids_groups_keywords_entropy_and_stopwords() {
    let (specs, _) = import();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["acme-deploy-token", "widget-api-key", "quoted-go", "scoped", "acme-deploy-token-2"]);

    let acme = spec(&specs, "acme-deploy-token");
    assert_eq!(acme.family, "acme");
    assert_eq!(acme.description, "Acme deploy token");
    assert_eq!(acme.regex, r#"(?i)\b(acme_deploy)\s{0,256}[:=]\s{0,256}["']?(?P<secret>[a-z0-9]{32})\b"#);
    assert_eq!(acme.keywords, ["acme_deploy"]);
    assert_eq!(acme.entropy, Some(3.5));
    assert_eq!(acme.allow, ["ci-only", "fixture"], "the rule's stopwords and the global ones; the empty one dropped");
    assert!(acme.multiline, r"\s can match a newline, as in gitleaks");
    assert!(acme.positive.is_empty() && acme.negative.is_empty());

    let widget = spec(&specs, "widget-api-key");
    assert_eq!(widget.regex, r"\bwgt_(?P<secret>[A-Za-z0-9]{24})\b");
    assert_eq!(widget.keywords, ["wgt_"], "derived from the literal prefix");
    assert_eq!(widget.allow, ["ci-only", "demo", "sample"], "targeted and global stopwords");
    assert_eq!(widget.max_len, Some(4 + 24));
    assert!(!widget.multiline);

    let quoted = spec(&specs, "quoted-go");
    assert_eq!(quoted.regex, r"tok\.[0-9a-f]{16}\b");
    assert_eq!(quoted.keywords, ["tok."]);

    assert_eq!(spec(&specs, "acme-deploy-token-2").description, "Acme deploy token, colon form");

    for s in &specs {
        let re = compile_regex(&s.regex).unwrap_or_else(|e| panic!("{}: {e}", s.id));
        assert!(!re.is_match(b"".as_slice()), "{}", s.id);
        let named = re.group_info().to_index(regex_automata::PatternID::ZERO, "secret").is_some();
        assert_eq!(named, matches!(s.id.as_str(), "acme-deploy-token" | "widget-api-key"), "{}", s.id);
    }
}

#[test]
fn every_skipped_or_approximated_rule_is_named_in_one_warning() {
    let (_, warnings) = import();
    for (rule, says) in [
        ("private-key-file", "skipped: a path-only rule"),
        ("broken", "skipped: regex does not parse"),
        ("greek-key", "skipped: Unicode classes"),
        ("no-anchor", "skipped: no keywords"),
        ("pair-secret", "skipped: a composite rule"),
        ("bad-group", "skipped: secretGroup 3, but the regex has 1 capture groups"),
        ("scoped", "its path condition is ignored"),
        ("widget-api-key", "allowlist regexes are not supported"),
        ("Acme_Deploy-Token", "unbounded repeats capped at 256"),
        ("ACME deploy token", r#"id "acme-deploy-token" is taken: imported as "acme-deploy-token-2""#),
    ] {
        let w = warning(&warnings, rule);
        assert!(w.contains(says), "{rule}: {w:?} should say {says:?}");
    }
    assert!(warnings.iter().any(|w| w.starts_with("[extend] useDefault")), "{warnings:#?}");
    assert!(warnings.iter().any(|w| w.starts_with("global allowlist #2") && w.contains("paths")), "{warnings:#?}");
    assert!(warnings.iter().all(|w| !w.starts_with("gitleaks rule \"quoted-go\"")), "quoted-go converts exactly");
}

#[test]
fn imported_rules_load_and_find_what_they_were_written_for() {
    let (specs, _) = import();
    let mut set = RuleSet::empty();
    set.add_imported("gitleaks.toml", specs).expect("imported rules load");
    let scanner = Scanner::new(set, &ScanOptions::default(), None).unwrap();
    let found = |text: &str| -> Vec<(String, String)> {
        scanner
            .scan(text.as_bytes())
            .into_iter()
            .map(|f| (f.rule.to_string(), text[f.start as usize..f.end as usize].to_string()))
            .collect()
    };
    let hit = |rule: &str, secret: &str| vec![(rule.to_string(), secret.to_string())];

    // The secret group is what is found and masked, not the variable name.
    assert_eq!(
        found("ACME_DEPLOY = 'eio0qrukhttbj85hmfquop4w3r2kvvvp'"),
        hit("acme-deploy-token", "eio0qrukhttbj85hmfquop4w3r2kvvvp")
    );
    assert!(found("acme_deploy=aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb").is_empty(), "below the entropy floor");
    assert!(found("acme_deploy=eio0qfixturetbj85hmfquop4w3r2kvv").is_empty(), "a stopword");
    assert_eq!(found("acme_deploy=eio0qfixturxtbj85hmfquop4w3r2kvv").len(), 1, "the same without the stopword");

    assert_eq!(found("WIDGET_KEY=wgt_WSRALtO7CVoWhPnRZHATFZpj"), hit("widget-api-key", "WSRALtO7CVoWhPnRZHATFZpj"));
    assert!(found("wgt_WSRALtO7CVoWhPnRZHATFZp").is_empty(), "one character short");
    assert!(found("wgt_WSRALtO7demoWhPnRZHATFZp").is_empty(), "a targeted global stopword");
    assert_eq!(found("wgt_WSRALtO7dexoWhPnRZHATFZp").len(), 1, "the same without the stopword");

    assert_eq!(found("url=https://x/tok.ddc59ad0db9aa200"), hit("quoted-go", "tok.ddc59ad0db9aa200"));
    assert!(found("url=https://x/tokXddc59ad0db9aa200").is_empty(), "the dot is a literal");

    assert_eq!(found("token: scp_bj0ue4pacbe9fwiwmf6p"), hit("scoped", "scp_bj0ue4pacbe9fwiwmf6p"));
    assert_eq!(
        found("login acme:2mO8YaUcdGqRZNzcUlw6C2okjkCAiHEAm7pngXA5"),
        hit("acme-deploy-token-2", "acme:2mO8YaUcdGqRZNzcUlw6C2okjkCAiHEAm7pngXA5")
    );
}

#[test]
fn files_that_are_not_gitleaks_configs_are_errors() {
    assert!(matches!(import_gitleaks("x.toml", "[[rules]\nid ="), Err(RuleError::Parse { .. })));
    assert!(matches!(import_gitleaks("x.toml", "rules = 3"), Err(RuleError::Parse { .. })));
    assert!(matches!(import_gitleaks("x.toml", "[extend]\nuseDefault = true\n"), Err(RuleError::Empty { .. })));
    let (specs, warnings) = import_gitleaks("x.toml", "[[rules]]\ndescription = \"no id\"\nregex = 'a'\n").unwrap();
    assert!(specs.is_empty());
    assert_eq!(warnings, ["gitleaks rule #1: skipped: it has no id"]);
}
