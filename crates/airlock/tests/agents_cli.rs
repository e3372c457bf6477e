//! `airlock agent add|rm|list|rotate-token` as a user runs them: the real binary on a real vault. A token is printed
//! once and only its SHA-256 is stored; every change is audited; a store that is corrupt or readable by others is
//! refused and left alone. (Authentication itself has no CLI: its tests, `guess_an_agent_token` among them, are unit
//! tests in `src/agents.rs`.)
//!
//! Exit codes (from `main.rs`): 0 ok, 2 usage, 4 unknown agent or parent, 5 duplicate or has sub-agents, 8 bad name,
//! role or file.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::Airlock;

fn setup() -> Airlock {
    let al = Airlock::new();
    al.init_keyfile();
    al
}

fn store(al: &Airlock) -> PathBuf {
    al.home.join("agents.json")
}

/// `agent add --json ...`: the printed token.
fn add(al: &Airlock, args: &[&str]) -> String {
    let r = al.call(["--json", "agent", "add"]).args(args).expect(0);
    r.json()["token"].as_str().expect("token").to_string()
}

fn sha256_hex(s: &str) -> String {
    common::hex(&airlock_crypto::kdf::sha256(s.as_bytes()))
}

/// The stored hash of `name`'s token.
fn stored_hash(al: &Airlock, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(store(al)).unwrap()).unwrap();
    let a = v["agents"].as_array().unwrap().iter().find(|a| a["name"] == name).expect("agent in the file");
    a["token_sha256"].as_str().unwrap().to_string()
}

/// Asserts `needle` appears in no file under the home (vault, audit log, agents.json, temp files).
fn assert_nowhere_in_home(al: &Airlock, needle: &str) {
    for (path, bytes) in common::read_tree(&al.home) {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle:?} was written to {}",
            path.display()
        );
    }
}

fn names(al: &Airlock) -> Vec<String> {
    let v = al.call(["--json", "agent", "list"]).expect(0).json();
    v.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn add_prints_a_token_once_and_stores_only_its_hash() {
    let al = setup();
    let r = al.call(["agent", "add", "coder"]).expect(0);
    r.out_has("shown only this once").out_has("cannot be shown again");
    let token = r.out().lines().find(|l| l.starts_with("alk_")).expect("a line with the token").to_string();
    assert_eq!(token.len(), 4 + 43, "alk_ + base64url of 32 bytes: {token:?}");
    assert!(!r.err().contains(&token), "the token reached stderr");

    let v = al.call(["--json", "agent", "add", "tester", "--role", "auditor", "--parent", "coder"]).expect(0).json();
    let json_token = v["token"].as_str().unwrap().to_string();
    assert_eq!(v["name"], "tester");
    assert_eq!(v["role"], "auditor");
    assert_eq!(v["parent"], "coder");
    assert!(json_token.starts_with("alk_") && json_token != token);

    let mode = std::fs::metadata(store(&al)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(stored_hash(&al, "coder"), sha256_hex(&token));
    assert_eq!(stored_hash(&al, "tester"), sha256_hex(&json_token));
    for t in [&token, &json_token] {
        assert_nowhere_in_home(&al, t);
        assert_nowhere_in_home(&al, t.strip_prefix("alk_").unwrap());
    }
    assert!(common::stale_temps(&al.home).is_empty());
}

#[test]
fn list_shows_names_roles_and_parents_never_tokens_or_hashes() {
    let al = setup();
    al.call(["agent", "list"]).expect(0).out_has("No agents.");
    assert_eq!(al.call(["--json", "agent", "list"]).expect(0).json(), serde_json::json!([]));
    let t1 = add(&al, &["boss", "--role", "admin"]);
    let t2 = add(&al, &["helper", "--parent", "boss"]);
    let r = al.call(["agent", "list"]).expect(0);
    r.out_has("NAME").out_has("TOKEN ROTATED").out_has("boss").out_has("admin").out_has("helper").out_has("never");
    let v = al.call(["--json", "agent", "list"]).expect(0).json();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "boss");
    assert_eq!(list[0]["role"], "admin");
    assert_eq!(list[0]["parent"], serde_json::Value::Null);
    assert_eq!(list[1]["role"], "agent", "the default role");
    assert_eq!(list[1]["parent"], "boss");
    assert!(list[1]["created_ms"].as_i64().unwrap() > 0);
    assert_eq!(list[1]["token_rotated_ms"], serde_json::Value::Null);
    let keys: Vec<&String> = list[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5, "{keys:?}");
    for t in [&t1, &t2] {
        let h = sha256_hex(t);
        for out in [r.out(), v.to_string()] {
            assert!(!out.contains(t.as_str()) && !out.contains(&h), "list showed a token or hash:\n{out}");
        }
    }
}

#[test]
fn rotate_token_replaces_the_stored_hash() {
    let al = setup();
    let old = add(&al, &["coder"]);
    let before = stored_hash(&al, "coder");
    let r = al.call(["agent", "rotate-token", "coder"]).expect(0);
    r.out_has("shown only this once");
    let new = r.out().lines().find(|l| l.starts_with("alk_")).expect("the new token").to_string();
    assert_ne!(new, old);
    let after = stored_hash(&al, "coder");
    assert_ne!(after, before, "the old token's hash must be gone");
    assert_eq!(after, sha256_hex(&new));
    assert!(!std::fs::read_to_string(store(&al)).unwrap().contains(&before));
    assert_nowhere_in_home(&al, &new);
    let v = al.call(["--json", "agent", "list"]).expect(0).json();
    assert!(v[0]["token_rotated_ms"].as_i64().unwrap() >= v[0]["created_ms"].as_i64().unwrap());
    let j = al.call(["--json", "agent", "rotate-token", "coder"]).expect(0).json();
    assert_eq!(stored_hash(&al, "coder"), sha256_hex(j["token"].as_str().unwrap()));
    al.call(["agent", "rotate-token", "ghost"]).expect(4).err_has("no agent named ghost");
}

#[test]
fn rm_refuses_an_agent_with_sub_agents_and_cascade_removes_the_subtree() {
    let al = setup();
    add(&al, &["lead"]);
    add(&al, &["worker", "--parent", "lead"]);
    add(&al, &["reviewer", "--parent", "lead", "--role", "auditor"]);
    add(&al, &["deep", "--parent", "worker"]);
    add(&al, &["solo"]);
    let before = std::fs::read(store(&al)).unwrap();
    al.call(["agent", "rm", "lead"]).expect(5).err_has("worker, reviewer").err_has("--cascade");
    assert_eq!(std::fs::read(store(&al)).unwrap(), before, "a refused rm changed the file");
    al.call(["agent", "rm", "solo"]).expect(0).out_has("Removed solo");
    let v = al.call(["--json", "agent", "rm", "lead", "--cascade"]).expect(0).json();
    assert_eq!(v["removed"], serde_json::json!(["lead", "worker", "reviewer", "deep"]));
    assert!(names(&al).is_empty());
    al.call(["agent", "rm", "lead"]).expect(4);
}

#[test]
fn duplicates_unknown_names_and_bad_input_get_their_exit_codes() {
    let al = setup();
    add(&al, &["coder"]);
    let before = std::fs::read(store(&al)).unwrap();
    al.call(["agent", "add", "coder"]).expect(5).err_has("already exists");
    al.call(["agent", "add", "sub", "--parent", "ghost"]).expect(4).err_has("ghost");
    al.call(["agent", "add", "Coder"]).expect(8).err_has("invalid agent name");
    al.call(["agent", "add", "-x"]).expect(2);
    al.call(["agent", "add", "a/b"]).expect(8);
    al.call(["agent", "add", &"a".repeat(65)]).expect(8);
    al.call(["agent", "add", "boss", "--role", "root"]).expect(2).err_has("admin, agent, auditor");
    // A sub-agent cannot exceed its parent.
    add(&al, &["watcher", "--role", "auditor"]);
    al.call(["agent", "add", "escalate", "--parent", "watcher"]).expect(8).err_has("cannot exceed");
    al.call(["agent", "add", "escalate", "--parent", "coder", "--role", "admin"]).expect(8);
    assert_eq!(names(&al), ["coder", "watcher"]);
    // A token pasted where a name goes is refused without being echoed.
    let token = add(&al, &["victim"]);
    let r = al.call(["agent", "rm"]).arg(&token).expect(8);
    r.err_lacks(&token);
    let j = al.call(["--json", "agent", "add", "coder"]).expect(5);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&j.stderr).unwrap()["error"]["code"], 5);
    assert_ne!(std::fs::read(store(&al)).unwrap(), before, "victim was added");
}

#[test]
fn changes_are_audited_and_the_log_holds_no_token() {
    let al = setup();
    let t1 = add(&al, &["lead"]);
    add(&al, &["worker", "--parent", "lead", "--role", "auditor"]);
    let r = al.call(["agent", "rotate-token", "lead"]).expect(0);
    let t2 = r.out().lines().find(|l| l.starts_with("alk_")).unwrap().to_string();
    al.call(["agent", "rm", "lead", "--cascade"]).expect(0);
    let q = al.call(["--json", "audit", "query", "--type", "entity"]).expect(0);
    let events: Vec<serde_json::Value> = q.out().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let agent_events: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["entity"]["type"] == "agent")
        .map(|e| (e["entity"]["name"].as_str().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        agent_events,
        [
            ("lead", "agent lead added (role agent)"),
            ("worker", "agent worker added (role auditor, sub-agent of lead)"),
            ("lead", "agent lead: token rotated; the old one no longer works"),
            ("lead", "agent lead removed with its sub-agents worker"),
        ]
    );
    al.call(["audit", "verify"]).expect(0).out_has("OK");
    for t in [&t1, &t2] {
        assert_nowhere_in_home(&al, t);
        assert_nowhere_in_home(&al, &sha256_hex(t));
    }
}

#[test]
fn without_a_vault_nothing_is_changed() {
    let al = Airlock::new();
    std::fs::create_dir_all(&al.home).unwrap();
    std::fs::set_permissions(&al.home, std::fs::Permissions::from_mode(0o700)).unwrap();
    al.call(["agent", "add", "coder"]).expect(4);
    assert!(!store(&al).exists(), "a change that cannot be audited must not be made");
    al.call(["agent", "list"]).expect(0).out_has("No agents.");
}

#[test]
fn a_corrupt_agents_file_is_refused_and_left_unchanged() {
    let al = setup();
    add(&al, &["coder"]);
    let text = std::fs::read_to_string(store(&al)).unwrap();
    let cases = [
        text[..text.len() / 2].to_string(),
        text.replacen("\"created_ms\"", "\"is_admin\":true,\"created_ms\"", 1),
        text.replace("\"role\": \"agent\"", "\"role\": \"root\""),
    ];
    for bad in cases {
        std::fs::write(store(&al), &bad).unwrap();
        for args in [&["agent", "list"][..], &["agent", "add", "other"], &["agent", "rotate-token", "coder"]] {
            al.call(args).expect(8).err_has("agents.json");
            assert_eq!(std::fs::read_to_string(store(&al)).unwrap(), bad, "{args:?} changed a corrupt file");
        }
    }
}

#[test]
fn an_agents_file_others_can_read_is_refused() {
    let al = setup();
    add(&al, &["coder"]);
    let before = std::fs::read(store(&al)).unwrap();
    std::fs::set_permissions(store(&al), std::fs::Permissions::from_mode(0o644)).unwrap();
    al.call(["agent", "list"]).expect(8).err_has("0644").err_has("chmod 600");
    al.call(["agent", "add", "other"]).expect(8);
    al.call(["agent", "rm", "coder"]).expect(8);
    assert_eq!(std::fs::read(store(&al)).unwrap(), before);
    assert_eq!(std::fs::metadata(store(&al)).unwrap().permissions().mode() & 0o777, 0o644, "left as it was");
}
