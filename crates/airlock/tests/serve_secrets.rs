//! `airlock serve`'s secrets routes and its latest-checkpoint route, end to end: the real daemon driven by curl, and
//! `airlock secret` through it with an agent's token.
//!
//! One daemon per test (each on its own throwaway home).

mod common;

use common::daemon::{Daemon, PASS, Reply};
use common::{NeedleSet, open_with_passphrase, random_alnum, random_bytes, read_tree};
use serde_json::{Value, json};

/// `worker` may use tool `t`, which uses `GH_TOKEN` and `ci/NPM_TOKEN`; `other` may use tool `u`, which uses none.
const POLICY: &str = r#"version = 1
[agents.worker]
tools = ["t"]
[agents.other]
tools = ["u"]
[tools.t]
secrets = ["GH_TOKEN", "ci/NPM_TOKEN"]
[tools.u]
[secrets.GH_TOKEN]
[secrets."ci/NPM_TOKEN"]
"#;

fn create(d: &Daemon, agent: &str, body: &Value) -> Reply {
    d.call(Some(agent), "POST", "/v1/secrets", Some(&body.to_string()))
}

/// The current value of `WORKSPACE/NAME` in the stopped daemon's vault, compared without printing it.
fn stored_is(d: &Daemon, address: &str, expected: &[u8]) -> bool {
    let mut vault = open_with_passphrase(&d.al.home, PASS);
    let id = airlock_vault::SecretId::parse(address, "default").unwrap();
    vault.resolve(&id).unwrap_or_else(|e| panic!("{address}: {e}")).expose() == expected
}

fn names(list: &Value) -> Vec<String> {
    list["secrets"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| format!("{}/{}", s["workspace"].as_str().unwrap(), s["name"].as_str().unwrap()))
        .collect()
}

#[test]
fn an_admin_manages_secrets_and_no_answer_or_file_carries_a_value() {
    let d = Daemon::start_with(POLICY, &[]);
    let (v1, v2) = (format!("first-{}", random_alnum(32)), format!("second-{}", random_alnum(32)));
    let binary = random_bytes(48);
    let mut needles = NeedleSet::new();
    needles.add_value("v1", v1.as_bytes());
    needles.add_value("v2", v2.as_bytes());
    needles.add_value("binary", &binary);
    let mut answers: Vec<Reply> = Vec::new();

    let made = create(
        &d,
        "root",
        &json!({"name": "GH_TOKEN", "value": v1, "hosts": ["API.GitHub.com:443"], "tags": ["ci"],
                "injection": {"type": "header", "name": "Authorization", "template": "Bearer {}"}}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let info = made.json();
    assert_eq!((info["workspace"].clone(), info["name"].clone()), (json!("default"), json!("GH_TOKEN")));
    assert_eq!(info["current_version"], 1);
    assert_eq!(info["hosts"], json!(["api.github.com:443"]), "stored in normal form");
    assert_eq!(info["injection"], json!({"type": "header", "name": "Authorization", "template": "Bearer {}"}));
    assert_eq!(info["exposure"], "surrogate");
    answers.push(made);
    // A value that is not text, in base64, in another workspace.
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&binary)
    };
    let made = create(&d, "root", &json!({"name": "NPM_TOKEN", "workspace": "ci", "value_base64": b64}));
    assert_eq!(made.status, 201, "{}", made.body);
    answers.push(made);

    // Listed and shown: metadata only.
    let list = d.call(Some("root"), "GET", "/v1/secrets", None);
    assert_eq!(names(&list.json()), ["ci/NPM_TOKEN", "default/GH_TOKEN"]);
    answers.push(list);
    let only_ci = d.call(Some("aud"), "GET", "/v1/secrets?workspace=ci", None);
    assert_eq!(names(&only_ci.json()), ["ci/NPM_TOKEN"]);
    answers.push(only_ci);
    let one = d.call(Some("aud"), "GET", "/v1/secrets/NPM_TOKEN?workspace=ci", None);
    assert_eq!(one.json()["name"], "NPM_TOKEN", "{}", one.body);
    answers.push(one);

    // A taken name is a conflict, and the value stays the first one.
    let again = create(&d, "root", &json!({"name": "GH_TOKEN", "value": v2}));
    again.problem(409, "conflict");
    answers.push(again);
    // Rotate: a new version; the same value again is refused.
    let rotated = d.call(Some("root"), "POST", "/v1/secrets/GH_TOKEN/rotate", Some(&json!({"value": v2}).to_string()));
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(rotated.json()["current_version"], 2);
    assert_eq!(rotated.json()["versions"], json!([1, 2]));
    assert!(rotated.json()["rotated"].is_u64(), "{}", rotated.body);
    answers.push(rotated);
    let same = d.call(Some("root"), "POST", "/v1/secrets/GH_TOKEN/rotate", Some(&json!({"value": v2}).to_string()));
    assert!(same.problem(409, "conflict")["detail"].as_str().unwrap().contains("same as the current one"));
    answers.push(same);
    // A value its header recipe cannot carry (CR LF would smuggle a header) conflicts with the secret.
    let crlf = json!({"value": format!("{v1}\r\nX-Evil: 1")}).to_string();
    let split = d.call(Some("root"), "POST", "/v1/secrets/GH_TOKEN/rotate", Some(&crlf));
    assert!(split.problem(409, "conflict")["detail"].as_str().unwrap().contains("injected as a header"));
    answers.push(split);
    // Pin: one more host; again changes nothing.
    for _ in 0..2 {
        let pinned =
            d.call(Some("root"), "POST", "/v1/secrets/GH_TOKEN/pin", Some(r#"{"host": "*.githubusercontent.com"}"#));
        assert_eq!(pinned.status, 200, "{}", pinned.body);
        assert_eq!(pinned.json()["hosts"], json!(["api.github.com:443", "*.githubusercontent.com"]));
        answers.push(pinned);
    }
    let shown = d.call(Some("worker"), "GET", "/v1/secrets/GH_TOKEN", None);
    assert_eq!(shown.json()["current_version"], 2, "{}", shown.body);
    answers.push(shown);

    for a in &answers {
        let hits = needles.find(format!("{}\r\n\r\n{}", a.headers, a.body).as_bytes());
        assert!(hits.is_empty(), "an answer carries a value: {hits:?}");
    }
    let mut d = d;
    assert_eq!(d.stop(), 0);
    // Nothing under the home holds a value in the clear: not the audit log, not a temp file.
    for (path, bytes) in read_tree(&d.al.home) {
        let hits = needles.find(&bytes);
        assert!(hits.is_empty(), "{} carries a value: {hits:?}", path.display());
    }
    // The vault has them, as sent.
    assert!(stored_is(&d, "GH_TOKEN", v2.as_bytes()), "GH_TOKEN is not the rotated value");
    assert!(stored_is(&d, "ci/NPM_TOKEN", &binary), "ci/NPM_TOKEN is not the value sent in base64");
    // Every change is audited, with the agent as actor.
    let mut changes = Vec::new();
    airlock_audit::reader::for_each(&d.al.home.join("audit"), |r| {
        if r.event["entity"]["type"] == "secret" {
            changes.push((r.event["actor"]["user"]["name"].clone(), r.event["message"].clone()));
        }
        true
    })
    .unwrap();
    let by = |m: &str| (json!("root"), json!(format!("{m} through the API by agent root")));
    assert_eq!(
        changes,
        [
            by("secret default/GH_TOKEN stored"),
            by("secret ci/NPM_TOKEN stored"),
            by("secret default/GH_TOKEN rotated to version 2"),
            by("secret default/GH_TOKEN pinned to api.github.com:443, *.githubusercontent.com"),
            by("secret default/GH_TOKEN pinned to api.github.com:443, *.githubusercontent.com"),
        ]
    );
}

#[test]
fn only_admins_change_secrets_and_an_agent_sees_only_its_tools_secrets() {
    let d = Daemon::start_with(POLICY, &[]);
    for (name, ws) in [("GH_TOKEN", "default"), ("NPM_TOKEN", "ci"), ("DEPLOY_KEY", "default")] {
        let made = create(&d, "root", &json!({"name": name, "workspace": ws, "value": random_alnum(24)}));
        assert_eq!(made.status, 201, "{}", made.body);
    }
    // worker's tool uses GH_TOKEN and ci/NPM_TOKEN; other's uses none; the auditor sees everything.
    let seen = |agent: &str| names(&d.call(Some(agent), "GET", "/v1/secrets", None).json());
    assert_eq!(seen("worker"), ["ci/NPM_TOKEN", "default/GH_TOKEN"]);
    assert_eq!(seen("other"), Vec::<String>::new());
    assert_eq!(seen("aud"), ["ci/NPM_TOKEN", "default/DEPLOY_KEY", "default/GH_TOKEN"]);
    assert_eq!(seen("root"), seen("aud"));
    // A secret outside the caller's tools is "not found", in the very words used for one that does not exist.
    let hidden = d.call(Some("worker"), "GET", "/v1/secrets/DEPLOY_KEY", None).problem(404, "not-found");
    let absent = d.call(Some("root"), "GET", "/v1/secrets/NO_SUCH", None).problem(404, "not-found");
    assert_eq!(hidden["detail"], "secret default/DEPLOY_KEY not found");
    assert_eq!(absent["detail"], "secret default/NO_SUCH not found");
    assert_eq!(d.call(Some("worker"), "GET", "/v1/secrets/GH_TOKEN", None).status, 200);

    // Agents and auditors may not change secrets, whatever they send.
    for agent in ["worker", "other", "aud"] {
        let body = json!({"name": "NEW", "value": "a value of some length"}).to_string();
        d.call(Some(agent), "POST", "/v1/secrets", Some(&body)).problem(403, "forbidden");
        let value = json!({"value": "another value of some length"}).to_string();
        d.call(Some(agent), "POST", "/v1/secrets/GH_TOKEN/rotate", Some(&value)).problem(403, "forbidden");
        let host = r#"{"host": "evil.example"}"#;
        d.call(Some(agent), "POST", "/v1/secrets/GH_TOKEN/pin", Some(host)).problem(403, "forbidden");
    }
    assert_eq!(d.call(Some("aud"), "GET", "/v1/secrets/GH_TOKEN", None).json()["current_version"], 1);
    assert_eq!(d.call(Some("aud"), "GET", "/v1/secrets/GH_TOKEN", None).json()["hosts"], json!([]));

    // Bad input: a problem that says what is wrong.
    let bad = |method: &str, path: &str, body: Option<&str>, needle: &str| {
        let p = d.call(Some("root"), method, path, body).problem(400, "bad-request");
        let detail = p["detail"].as_str().unwrap().to_string();
        assert!(detail.contains(needle), "{method} {path} {body:?}: {detail}");
    };
    bad("POST", "/v1/secrets", Some(r#"{"name": "a/b", "value": "x"}"#), "invalid secret name");
    bad("POST", "/v1/secrets", Some(r#"{"name": "X", "value": "x", "colour": 1}"#), "unknown field");
    bad("POST", "/v1/secrets", Some(r#"{"name": "X"}"#), "no value");
    bad("POST", "/v1/secrets", Some(r#"{"name": "X", "value": "x", "value_base64": "eA=="}"#), "not both");
    bad("POST", "/v1/secrets", Some(r#"{"name": "X", "value_base64": "not base64!"}"#), "not base64");
    bad("POST", "/v1/secrets", Some(r#"{"name": "X", "value": ""}"#), "empty");
    bad("POST", "/v1/secrets", Some(r#"{"name": "X", "value": "x", "hosts": ["https://a.example"]}"#), "host");
    bad("POST", "/v1/secrets", Some(r#"{"name": "X", "value": "x", "keep_versions": 0}"#), "keep-versions");
    bad("POST", "/v1/secrets", Some(r#"{"name": "X", "value": "x", "tags": ["a\u0001"]}"#), "tags");
    let host_header =
        r#"{"name": "X", "value": "x", "injection": {"type": "header", "name": "Host", "template": "{}"}}"#;
    bad("POST", "/v1/secrets", Some(host_header), "routing or message framing");
    let crlf =
        r#"{"name": "X", "value": "x\r\nEvil: 1", "injection": {"type": "header", "name": "X", "template": "{}"}}"#;
    bad("POST", "/v1/secrets", Some(crlf), "control characters");
    bad("GET", "/v1/secrets/a%2Fb", None, "invalid secret name");
    bad("GET", "/v1/secrets/GH_TOKEN?version=1", None, "unknown query parameter");
    bad("GET", "/v1/secrets?workspace=a/b", None, "invalid workspace");
    bad("POST", "/v1/secrets/GH_TOKEN/pin", Some(r#"{"host": "*.com"}"#), "two labels");
    bad("POST", "/v1/secrets/GH_TOKEN/rotate", Some(r#"{"value": null}"#), "expected a string");
    d.call(Some("root"), "POST", "/v1/secrets/NO_SUCH/pin", Some(r#"{"host": "a.example"}"#)).problem(404, "not-found");
    d.call(Some("root"), "POST", "/v1/secrets/NO_SUCH/rotate", Some(r#"{"value": "x"}"#)).problem(404, "not-found");
    bad("POST", "/v1/secrets", Some("{}"), "missing field `name`");
    let no_json = d.curl(Some("root"), "POST", "/v1/secrets", None, &["-H", "Content-Type: text/plain", "-d", "x"]);
    no_json.problem(415, "unsupported-media-type");
}

/// The note's second line: the tree size it signs.
fn note_size(note: &str) -> u64 {
    note.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or_else(|| panic!("not a checkpoint note: {note}"))
}

#[test]
fn the_latest_checkpoint_covers_the_log_as_it_is_and_verifies() {
    let d = Daemon::start_with(POLICY, &[]);
    // Auditors and admins read it; agents do not.
    d.call(Some("worker"), "GET", "/v1/audit/checkpoint", None).problem(403, "forbidden");
    let first = d.call(Some("aud"), "GET", "/v1/audit/checkpoint", None);
    assert_eq!(first.status, 200, "{}", first.body);
    let first = first.json();
    let size = first["size"].as_u64().unwrap();
    assert!(size >= 1, "the daemon's start is recorded: {first}");
    assert_eq!(note_size(first["note"].as_str().unwrap()), size);
    assert!(first["note"].as_str().unwrap().starts_with(first["origin"].as_str().unwrap()), "{first}");
    assert_eq!(first["key"], d.call(Some("aud"), "GET", "/v1/audit/verify", None).json()["key"]);
    // Nothing was appended since: the same checkpoint, and nothing left unsigned.
    let again = d.call(Some("root"), "GET", "/v1/audit/checkpoint", None).json();
    assert_eq!((again["size"].clone(), again["root"].clone()), (first["size"].clone(), first["root"].clone()));
    let metrics = d.call(Some("aud"), "GET", "/metrics", None).body;
    assert!(metrics.contains("\nairlock_audit_unsigned_records 0\n"), "{metrics}");
    assert!(metrics.contains("\nairlock_audit_checkpoint_age_seconds "), "{metrics}");
    // A change is audited, and the next checkpoint covers it.
    let made = create(&d, "root", &json!({"name": "GH_TOKEN", "value": random_alnum(24)}));
    assert_eq!(made.status, 201, "{}", made.body);
    let after = d.call(Some("aud"), "GET", "/v1/audit/checkpoint", None).json();
    assert!(after["size"].as_u64().unwrap() > size, "{first} then {after}");
    assert_ne!(after["root"], first["root"]);

    // The note is one a verifier takes: the log, once stopped, verifies against it.
    let mut d = d;
    assert_eq!(d.stop(), 0);
    let pinned = d.al.path("pinned.checkpoint");
    std::fs::write(&pinned, after["note"].as_str().unwrap()).unwrap();
    let verify = d.al.call(["audit", "verify", "--checkpoint"]).arg(&pinned).expect(0).out();
    assert!(verify.contains("matched"), "{verify}");
}

#[test]
fn with_a_token_airlock_secret_goes_through_the_daemon_and_prints_what_it_prints_standalone() {
    let d = Daemon::start_with(POLICY, &[]);
    let through = |agent: &str, args: &[&str]| {
        d.al.call(args).env_remove("AIRLOCK_PASSPHRASE").env("AIRLOCK_TOKEN", &d.tokens[agent])
    };
    let standalone = |args: &[&str]| d.al.call(args).env("AIRLOCK_DAEMON", "off");
    let value = format!("ghp-like-{}", random_alnum(30));
    let set = through(
        "root",
        &["secret", "set", "GH_TOKEN", "--host", "API.GitHub.com.", "--header", "Authorization: Bearer {}"],
    )
    .stdin(format!("{value}\n").as_bytes())
    .expect(0);
    assert_eq!(set.out(), "Stored default/GH_TOKEN (version 1; the value is never shown)\n");
    // A value that is not text goes as base64, and arrives intact.
    let binary = random_bytes(40);
    through("root", &["secret", "set", "ci/NPM_TOKEN", "--raw"]).stdin(&binary).expect(0);
    // The list, as a table and as JSON, is what the standalone command prints.
    for args in [&["secret", "list"][..], &["--json", "secret", "list"], &["secret", "list", "-w", "ci"]] {
        assert_eq!(through("root", args).expect(0).out(), standalone(args).expect(0).out(), "{args:?}");
    }
    assert!(through("root", &["secret", "list"]).expect(0).out().contains("api.github.com"));
    // worker sees what its tool uses.
    let seen = through("worker", &["--json", "secret", "list"]).expect(0).json();
    assert_eq!(seen.as_array().unwrap().len(), 2, "{seen}");
    let rotated = through("root", &["secret", "rotate", "GH_TOKEN"]).stdin(b"a brand new value\n").expect(0);
    assert_eq!(rotated.out(), "Rotated default/GH_TOKEN: now version 2, keeping versions [1, 2]\n");
    let same = through("root", &["secret", "rotate", "GH_TOKEN"]).stdin(b"a brand new value\n").expect(8);
    assert!(same.err().contains("same as the current one"), "{}", same.err());
    let pinned = through("root", &["secret", "pin", "GH_TOKEN", "--host", "*.GitHub.com"]).expect(0);
    assert_eq!(pinned.out(), "default/GH_TOKEN is pinned to: api.github.com, *.github.com\n");
    // Mistakes fail as they do standalone, before the value is read.
    through("root", &["secret", "set", "GH_TOKEN"]).stdin(b"whatever value\n").expect(5);
    through("root", &["secret", "rotate", "NO_SUCH"]).stdin(b"whatever value\n").expect(4);
    through("root", &["secret", "pin", "GH_TOKEN", "--host", "a b"]).expect(8);
    // An agent's token may not change secrets: refused before the value is typed.
    let refused = through("worker", &["secret", "set", "NEW"]).stdin(b"a value it should not store\n").expect(9);
    assert!(refused.err().contains("admin"), "{}", refused.err());
    through("worker", &["secret", "pin", "GH_TOKEN", "--host", "evil.example"]).expect(9);

    let mut d = d;
    assert_eq!(d.stop(), 0);
    assert!(stored_is(&d, "GH_TOKEN", b"a brand new value"), "GH_TOKEN is not the rotated value");
    assert!(stored_is(&d, "ci/NPM_TOKEN", &binary), "ci/NPM_TOKEN is not the binary value");
    assert!(!String::from_utf8_lossy(&d.al.transcript()).contains(&value), "a command printed the value");
}
