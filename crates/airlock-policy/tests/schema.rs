//! The published JSON Schema matches the types, and the types accept what the schema documents.

use std::path::Path;

#[test]
fn published_json_schema_matches_the_config_types() {
    let published =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/airlock.schema.json"))
            .expect("docs/airlock.schema.json exists");
    let generated = airlock_policy::config::json_schema();
    assert!(
        published == generated,
        "docs/airlock.schema.json is stale: regenerate it with `cargo run -p airlock -- policy schema > docs/airlock.schema.json`"
    );
}

#[test]
fn schema_forbids_unknown_keys_and_names_every_section() {
    let schema: serde_json::Value = serde_json::from_str(&airlock_policy::config::json_schema()).unwrap();
    assert_eq!(schema["additionalProperties"], serde_json::Value::Bool(false), "top level must refuse unknown keys");
    let props = schema["properties"].as_object().unwrap();
    let sections = ["agents", "tools", "secrets", "roles", "network", "fs", "exec", "limits"];
    for key in
        sections.into_iter().chain(["rate_limits", "budgets", "providers", "audit", "sandbox", "redact", "profiles"])
    {
        assert!(props.contains_key(key), "schema lacks [{key}]");
    }
    // Every object definition refuses unknown keys, like the loader does.
    for (name, def) in schema["$defs"].as_object().unwrap() {
        if def.get("type") == Some(&serde_json::json!("object")) && def.get("properties").is_some() {
            assert_eq!(def["additionalProperties"], serde_json::json!(false), "{name} accepts unknown keys");
        }
    }
}
