//! `airlock redact` and `airlock scan-secrets` as a user runs them: the real binary, real files, stdin and stdout.

mod common;

use common::{Airlock, FAST_KDF};

/// A GitHub classic token with a valid checksum (made up for these tests).
const TOKEN: &str = "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";
/// The same with its last character changed: the checksum fails, so it is not a token.
const NOT_A_TOKEN: &str = "ghp_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC01XM6Eb";

#[test]
fn redact_filters_stdin_to_stdout_masking_tokens_and_personal_data() {
    let a = Airlock::new();
    let input = format!("deploying\nGITHUB_TOKEN={TOKEN}\ncontact: jane.doe@acme-corp.io\n{NOT_A_TOKEN}\n");
    let r = a.call(["redact"]).stdin(input.as_bytes()).expect(0);
    assert_eq!(
        r.out(),
        format!(
            "deploying\nGITHUB_TOKEN=[REDACTED:github-pat-classic]\ncontact: [REDACTED:email-address]\n{NOT_A_TOKEN}\n"
        )
    );
}

#[test]
fn redact_shape_keeps_length_and_the_public_prefix() {
    let a = Airlock::new();
    let r = a.call(["redact", "--mask", "shape", "--pii", "none"]).stdin(format!("t={TOKEN}\n").as_bytes()).expect(0);
    assert_eq!(r.out(), format!("t=ghp_{}\n", "*".repeat(TOKEN.len() - 4)));
}

#[test]
fn redact_reads_files_in_order_and_reports_findings_without_values() {
    let a = Airlock::new();
    let one = a.path("one.txt");
    let two = a.path("two.txt");
    std::fs::write(&one, "nothing here\n").unwrap();
    std::fs::write(&two, format!("x\n  {TOKEN}\n")).unwrap();
    let r = a.call(["redact", "--report"]).arg(&one).arg(&two).expect(0);
    assert_eq!(r.out(), "nothing here\nx\n  [REDACTED:github-pat-classic]\n");
    let report: serde_json::Value = serde_json::from_str(r.err().lines().next().unwrap()).unwrap();
    assert_eq!(report["rule"], "github-pat-classic");
    assert_eq!(report["line"], 2);
    assert_eq!(report["column"], 3);
    assert_eq!(report["path"], two.display().to_string());
    assert_eq!(report["fingerprint"].as_str().unwrap().len(), 16);
    assert!(!r.err().contains(TOKEN));
}

#[test]
fn redact_masks_vault_values_with_vault() {
    let a = Airlock::with_passphrase("correct horse battery staple 42");
    a.call(["init"]).args(FAST_KDF).expect(0);
    let value = b"internal-db-password-Zq81x";
    a.set("DB_PASSWORD", value);
    let text = format!("password is {} ok\nb64 {}\n", std::str::from_utf8(value).unwrap(), hex::encode(value));
    let r = a.call(["redact", "--vault"]).stdin(text.as_bytes()).expect(0);
    assert_eq!(r.out(), "password is [REDACTED:known-value] ok\nb64 [REDACTED:known-value]\n");
}

#[test]
fn redact_refuses_bad_rule_files_naming_the_rule() {
    let a = Airlock::new();
    let bad = a.path("bad.toml");
    std::fs::write(
        &bad,
        "[[rule]]\nid = \"acme-key\"\nfamily = \"acme\"\ndescription = \"d\"\nkeywords = [\"acme_\"]\n\
         regex = 'acme_(['\npositive = [\"acme_x\"]\nnegative = [\"y\"]\n",
    )
    .unwrap();
    a.call(["redact", "--rules"]).arg(&bad).stdin(b"x").expect(8).err_has("acme-key").err_has("regex does not compile");
    let empty = a.path("empty.toml");
    std::fs::write(&empty, "").unwrap();
    a.call(["redact", "--rules"]).arg(&empty).stdin(b"x").expect(8).err_has("has no rules");
    a.call(["redact", "--disable", "no-such-rule"]).stdin(b"x").expect(8).err_has("no-such-rule");
    a.call(["redact", "--pii", "shoe-size"]).stdin(b"x").expect(8).err_has("shoe-size");
}

#[test]
fn redact_uses_a_user_rule_file() {
    let a = Airlock::new();
    let rules = a.path("acme.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"acme-key\"\nfamily = \"acme\"\ndescription = \"ACME internal key\"\nkeywords = [\"acme_\"]\n\
         regex = '\\bacme_[a-z0-9]{16}\\b'\nmax_len = 21\npositive = [\"k=acme_0a1b2c3d4e5f6g7h\"]\nnegative = [\"acme_short\"]\n",
    )
    .unwrap();
    let r = a.call(["redact", "--rules"]).arg(&rules).stdin(b"key acme_q8w7e6r5t4y3u2i1 end\n").expect(0);
    assert_eq!(r.out(), "key [REDACTED:acme-key] end\n");
}

#[test]
fn scan_secrets_reports_table_json_and_sarif_and_exits_13() {
    let a = Airlock::new();
    let tree = a.path("repo");
    std::fs::create_dir_all(tree.join("src")).unwrap();
    std::fs::create_dir_all(tree.join(".git")).unwrap();
    std::fs::write(tree.join("src/config.py"), format!("import os\n\nTOKEN = \"{TOKEN}\"\n")).unwrap();
    std::fs::write(tree.join("src/clean.rs"), "fn main() {}\n").unwrap();
    std::fs::write(tree.join(".git/config"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(tree.join("blob.bin"), [&b"\0\x01"[..], TOKEN.as_bytes()].concat()).unwrap();

    let table = a.call(["scan-secrets"]).arg(&tree).expect(13);
    assert!(table.out().contains("src/config.py:3:10  github-pat-classic"), "{}", table.out());
    assert!(!table.out().contains(TOKEN));
    assert!(table.out().contains("skipped 1 binary"), "{}", table.out());

    let json = a.call(["scan-secrets", "--format", "json"]).arg(&tree).expect(13).json();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json}");
    assert_eq!(findings[0]["line"], 3);
    assert_eq!(json["files_scanned"], 2, ".git is not entered and the binary file is skipped: {json}");

    let scanned_binary = a.call(["scan-secrets", "--json", "--binary", "scan"]).arg(&tree).expect(13).json();
    assert_eq!(scanned_binary["findings"].as_array().unwrap().len(), 2);

    let sarif = a.call(["scan-secrets", "--format", "sarif"]).arg(&tree).expect(13).json();
    assert_eq!(sarif["version"], "2.1.0");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "github-pat-classic");
    let region = &result["locations"][0]["physicalLocation"]["region"];
    assert_eq!((region["startLine"].as_u64(), region["startColumn"].as_u64()), (Some(3), Some(10)));
    assert_eq!(sarif["runs"][0]["tool"]["driver"]["rules"][0]["id"], "github-pat-classic");
    assert!(!sarif.to_string().contains(TOKEN));

    std::fs::remove_file(tree.join("src/config.py")).unwrap();
    a.call(["scan-secrets"]).arg(&tree).expect(0);
}

#[test]
fn scan_secrets_fingerprints_are_stable_across_runs_and_keyed_per_home() {
    let a = Airlock::new();
    std::fs::create_dir_all(&a.home).unwrap();
    let file = a.path("f.txt");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let fp = |a: &Airlock| {
        a.call(["scan-secrets", "--json"]).arg(&file).expect(13).json()["findings"][0]["fingerprint"].clone()
    };
    assert_eq!(fp(&a), fp(&a));
    let b = Airlock::new();
    std::fs::create_dir_all(&b.home).unwrap();
    assert_ne!(fp(&a), fp(&b), "another installation's key gives other fingerprints");
}

#[test]
fn scan_secrets_of_a_missing_path_fails_with_not_found() {
    let a = Airlock::new();
    a.call(["scan-secrets"]).arg(a.path("nope")).expect(4);
}

#[test]
fn a_rule_listing_shows_ids_families_and_categories() {
    let a = Airlock::new();
    let r = a.call(["scan-secrets", "--list-rules"]).expect(0);
    assert!(r.out().lines().count() >= 150, "{}", r.out());
    assert!(r.out().contains("github-pat-classic"));
}

#[test]
fn scan_secrets_imports_a_gitleaks_config() {
    let a = Airlock::new();
    let config = a.path("gitleaks.toml");
    std::fs::write(
        &config,
        "title = \"in-house\"\n\n[[rules]]\nid = \"acme-token\"\ndescription = \"ACME token\"\n\
         regex = '''acme_tok_([a-z0-9]{20})'''\nsecretGroup = 1\nkeywords = [\"acme_tok_\"]\n\n\
         [[rules]]\nid = \"only-a-path\"\npath = '''\\.pem$'''\n",
    )
    .unwrap();
    let file = a.path("f.txt");
    std::fs::write(&file, "x = acme_tok_q8w7e6r5t4y3u2i1o0p9\n").unwrap();
    let r = a.call(["scan-secrets", "--json", "--no-builtin", "--gitleaks-config"]).arg(&config).arg(&file).expect(13);
    assert_eq!(r.json()["findings"][0]["rule"], "acme-token");
    assert_eq!(r.json()["findings"][0]["column"], 14, "the secret group is what is reported");
    r.err_has("only-a-path");
}
