//! `[redact]` as `airlock run` sees it in the model: defaults when unset, values as written (rule files resolved
//! against the config file's directory), and profile overlays replacing what they set.

mod common;

use std::path::PathBuf;

use airlock_policy::model::{MaskMode, Model, PII_FAMILIES, RedactSettings};
use common::Setup;

fn model(s: &Setup, profile: Option<&str>) -> Model {
    let engine = s.load(profile).unwrap_or_else(|e| panic!("must load under {profile:?}: {e:#?}"));
    engine.compiled().model.clone()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Loads cleanly under every profile.
const BASE: &str = "version = 1\n[limits]\nmemory = \"1GiB\"\n";

#[test]
fn defaults_apply_when_nothing_is_said() {
    let expected = RedactSettings {
        tool_output: true,
        pii: strings(&["email", "phone", "credit-card", "iban", "us-ssn"]),
        mask: MaskMode::Label,
        rule_files: Vec::new(),
        disable: Vec::new(),
    };
    assert_eq!(RedactSettings::default(), expected, "every family but ip-address by default");
    assert_eq!(PII_FAMILIES, airlock_policy::redact::PII_FAMILIES);
    // The fixture has no [redact]; neither does a bare file, nor an empty section.
    assert_eq!(model(&Setup::new(), None).redact, expected);
    for text in [BASE.to_string(), format!("{BASE}[redact]\n")] {
        let s = Setup::with_config(&text);
        for profile in ["dev", "prod", "ide", "test"] {
            assert_eq!(model(&s, Some(profile)).redact, expected, "{profile}");
        }
    }
}

#[test]
fn values_are_taken_as_written() {
    let text = format!(
        "{BASE}[redact]\ntool_output = true\npii = [\"iban\", \"email\"]\nmask = \"shape\"\n\
         rules = [\"redact/extra-rules.toml\", \"/etc/airlock/more.toml\", \"../shared/rules.toml\"]\n\
         disable = [\"generic-password-assignment\", \"aws-access-key-id\"]\n"
    );
    let s = Setup::with_config(&text);
    let root = s.root();
    for profile in ["dev", "prod", "ide", "test"] {
        assert_eq!(
            model(&s, Some(profile)).redact,
            RedactSettings {
                tool_output: true,
                pii: strings(&["iban", "email"]),
                mask: MaskMode::Shape,
                rule_files: vec![
                    root.join("redact/extra-rules.toml"),
                    PathBuf::from("/etc/airlock/more.toml"),
                    root.join("../shared/rules.toml"),
                ],
                disable: strings(&["generic-password-assignment", "aws-access-key-id"]),
            },
            "{profile}"
        );
    }
}

#[test]
fn an_empty_pii_list_masks_no_personal_data_and_rule_files_need_not_exist_yet() {
    let text = format!("{BASE}[redact]\npii = []\nmask = \"label\"\nrules = [\"missing.toml\"]\ndisable = []\n");
    let s = Setup::with_config(&text);
    let r = model(&s, None).redact;
    assert!(r.pii.is_empty());
    assert_eq!(r.mask, MaskMode::Label);
    assert_eq!(r.rule_files, [s.root().join("missing.toml")]);
    assert!(!r.rule_files[0].exists());
    assert!(r.disable.is_empty());
}

#[test]
fn every_family_can_be_named_and_rule_ids_may_be_64_characters() {
    let pii: Vec<String> = PII_FAMILIES.iter().rev().map(|f| format!("{f:?}")).collect();
    let long = "a-1".repeat(21) + "z";
    assert_eq!(long.len(), 64);
    let text = format!("{BASE}[redact]\npii = [{}]\ndisable = [\"{long}\", \"x\"]\n", pii.join(", "));
    let r = model(&Setup::with_config(&text), None).redact;
    assert_eq!(r.pii, PII_FAMILIES.iter().rev().map(|f| f.to_string()).collect::<Vec<_>>(), "order is kept");
    assert_eq!(r.disable, [long.as_str(), "x"]);
}

#[test]
fn a_profile_overlay_replaces_the_redact_fields_it_sets() {
    let text = format!(
        "{BASE}[redact]\npii = [\"email\"]\nmask = \"shape\"\nrules = [\"base.toml\"]\ndisable = [\"a\"]\n\
         [profiles.prod.redact]\npii = [\"iban\", \"us-ssn\"]\ndisable = []\n\
         [profiles.dev.redact]\ntool_output = false\nrules = [\"test/rules.toml\"]\n"
    );
    let s = Setup::with_config(&text);
    let root = s.root();
    let base = RedactSettings {
        tool_output: true,
        pii: strings(&["email"]),
        mask: MaskMode::Shape,
        rule_files: vec![root.join("base.toml")],
        disable: strings(&["a"]),
    };
    assert_eq!(model(&s, Some("test")).redact, base);
    assert_eq!(model(&s, Some("ide")).redact, base);
    assert_eq!(
        model(&s, Some("prod")).redact,
        RedactSettings { pii: strings(&["iban", "us-ssn"]), disable: Vec::new(), ..base.clone() }
    );
    assert_eq!(
        model(&s, Some("dev")).redact,
        RedactSettings { tool_output: false, rule_files: vec![root.join("test/rules.toml")], ..base }
    );
}

#[test]
fn an_overlay_applies_over_the_defaults_too() {
    let text = format!("{BASE}[profiles.prod.redact]\nmask = \"shape\"\n");
    let s = Setup::with_config(&text);
    assert_eq!(model(&s, Some("dev")).redact, RedactSettings::default());
    assert_eq!(model(&s, Some("prod")).redact, RedactSettings { mask: MaskMode::Shape, ..RedactSettings::default() });
}

#[test]
fn only_dev_may_turn_tool_output_redaction_off() {
    let s = Setup::with_config(&format!("{BASE}[redact]\ntool_output = false\n"));
    assert!(!model(&s, Some("dev")).redact.tool_output);
    for profile in ["prod", "ide", "test"] {
        let Err(err) = s.load(Some(profile)) else { panic!("{profile}: tool_output = false must be refused") };
        let err = format!("{err:?}");
        assert!(err.contains("redact.tool_output = false conflicts with profile"), "{profile}: {err}");
    }
}
