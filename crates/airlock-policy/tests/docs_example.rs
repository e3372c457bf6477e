//! The example configuration in docs/policy.md must be one `airlock policy check` accepts: users copy it.

use std::path::Path;

#[test]
fn the_example_in_docs_policy_md_passes_the_check() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/policy.md"))
        .expect("docs/policy.md");
    let start = doc.find("```toml\n").expect("a toml example") + "```toml\n".len();
    let end = start + doc[start..].find("```").expect("the example's end");
    let dir = tempfile::tempdir().expect("tempdir");
    // The example loads Cedar files from policies/; an empty directory is enough for the check.
    std::fs::create_dir(dir.path().join("policies")).expect("policies dir");
    let config = dir.path().join("airlock.toml");
    std::fs::write(&config, &doc[start..end]).expect("write the example");
    let opts = airlock_policy::load::LoadOptions::from_env(Some("dev".into()), dir.path().to_path_buf());
    let report = airlock_policy::check(&config, &opts);
    let errors: Vec<String> = report
        .diagnostics
        .iter()
        .filter(|d| d.severity == airlock_policy::error::Severity::Error)
        .map(ToString::to_string)
        .collect();
    assert!(report.ok() && errors.is_empty(), "the docs example is refused:\n{}", errors.join("\n"));
}
