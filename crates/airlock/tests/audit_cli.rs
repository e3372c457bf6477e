//! `airlock audit …` run as a subprocess on a real vault and log: vault changes are recorded, the log
//! verifies, tampering exits 10 naming the record, and proofs, hashes and exports check out against the
//! library.
//!
//! Exit codes (from `main.rs`): 0 ok, 3 cannot unlock, 4 no log, 10 verification failed.

mod common;

use airlock_audit::checkpoint::{Checkpoint, NoteVerifier};
use airlock_audit::merkle;
use common::Airlock;

const PASS: &str = "correct horse battery staple lamp";
/// A secret value that must never reach the audit log or any output.
const CANARY: &[u8] = b"ghp_AUDITCANARY0123456789abcdefghijklmn";

fn setup() -> Airlock {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    al.set("gh", CANARY);
    al.call(["key", "rotate"]).expect(0);
    al
}

fn log_dir(al: &Airlock) -> std::path::PathBuf {
    al.home.join("audit")
}

fn last_segment(al: &Airlock) -> std::path::PathBuf {
    airlock_audit::segment::list(&log_dir(al)).unwrap().segments.pop().unwrap().1
}

#[test]
fn vault_changes_are_recorded_and_the_log_verifies() {
    let al = setup();
    al.call(["audit", "verify"]).expect(0).out_has("OK");
    let q = al.call(["--json", "audit", "query", "--type", "entity"]).expect(0);
    let messages: Vec<String> = q
        .out()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages, ["vault initialised", "secret default/gh stored", "data key rotated to term 2"]);
    for file in std::fs::read_dir(log_dir(&al).join("segments")).unwrap() {
        let data = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!data.windows(CANARY.len()).any(|w| w == CANARY), "the secret value reached the audit log");
    }
    let t = al.transcript();
    assert!(!t.windows(CANARY.len()).any(|w| w == CANARY), "the secret value was printed");
}

#[test]
fn tampering_exits_10_and_names_the_record() {
    let al = setup();
    let seg = last_segment(&al);
    let text = std::fs::read_to_string(&seg).unwrap();
    std::fs::write(&seg, text.replace("secret default/gh stored", "secret default/gh STORED")).unwrap();
    let r = al.call(["audit", "verify"]).expect(10);
    r.err_has("FAILED: first bad record: seq 4");
    let j = al.call(["--json", "audit", "verify"]).expect(10).json();
    assert_eq!(j["ok"], false);
    assert!(j["first_bad"].as_str().unwrap().starts_with("seq 4:"), "{j}");
}

#[test]
fn verify_with_an_exported_key_needs_no_vault_and_refuses_another_key() {
    let al = setup();
    let vkey = al.call(["audit", "key"]).expect(0).out().trim().to_owned();
    NoteVerifier::parse_vkey(&vkey).unwrap();
    // No passphrase: the key given is the only trust anchor.
    al.call(["audit", "verify", "--key", &vkey]).env_remove("AIRLOCK_PASSPHRASE").expect(0).out_has("from --key");
    let other = Airlock::with_passphrase(PASS);
    other.init_passphrase();
    let other_key = other.call(["audit", "key"]).expect(0).out().trim().to_owned();
    al.call(["audit", "verify", "--key", &other_key]).expect(10).err_has("checkpoint rejected");
}

#[test]
fn a_saved_checkpoint_catches_a_later_cut() {
    let al = setup();
    let saved = al.path("trusted.checkpoint");
    al.call(["audit", "verify", "--save-checkpoint"]).arg(&saved).expect(0);
    assert!(std::fs::read_to_string(&saved).unwrap().contains("\n\n— airlock/audit/"));
    al.call(["audit", "verify", "--checkpoint"]).arg(&saved).expect(0);
    // Cut the log and its checkpoint file back to the vault's creation.
    let seg = last_segment(&al);
    let lines: Vec<String> = std::fs::read_to_string(&seg).unwrap().split_inclusive('\n').map(String::from).collect();
    std::fs::write(&seg, lines[..4].concat()).unwrap();
    let cps = log_dir(&al).join("checkpoints");
    let cp_lines: Vec<String> =
        std::fs::read_to_string(&cps).unwrap().split_inclusive('\n').map(String::from).collect();
    std::fs::write(&cps, cp_lines[..2].concat()).unwrap();
    al.call(["audit", "verify"]).expect(0); // locally consistent...
    al.call(["audit", "verify", "--checkpoint"]).arg(&saved).expect(10).err_has("were removed"); // ...but not to the witness
}

#[test]
fn prove_prints_a_proof_the_library_accepts() {
    let al = setup();
    let vkey = NoteVerifier::parse_vkey(al.call(["audit", "key"]).expect(0).out().trim()).unwrap();
    let p = al.call(["--json", "audit", "prove", "4"]).expect(0).json();
    let hex32 =
        |v: &serde_json::Value| -> merkle::Hash { hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap() };
    let proof: Vec<merkle::Hash> = p["proof"].as_array().unwrap().iter().map(hex32).collect();
    let size = p["size"].as_u64().unwrap();
    let cp = Checkpoint::open(p["checkpoint"].as_str().unwrap(), &vkey).unwrap();
    assert_eq!((cp.size, cp.root), (size, hex32(&p["root"])));
    merkle::verify_inclusion(&hex32(&p["leaf_hash"]), 4, size, &proof, &cp.root).unwrap();
    let wrong = merkle::verify_inclusion(&hex32(&p["leaf_hash"]), 5, size, &proof, &cp.root);
    assert!(wrong.is_err());

    let c = al.call(["--json", "audit", "prove", "--consistency", "3"]).expect(0).json();
    let proof: Vec<merkle::Hash> = c["proof"].as_array().unwrap().iter().map(hex32).collect();
    merkle::verify_consistency(3, c["size"].as_u64().unwrap(), &hex32(&c["old_root"]), &cp.root, &proof).unwrap();
}

#[test]
fn hash_matches_the_library_and_never_echoes_the_value() {
    let al = setup();
    let r = al.call(["audit", "hash"]).stdin(CANARY).expect(0);
    let tag = r.out().trim().to_owned();
    assert!(tag.starts_with("hmac-sha256:") && tag.len() == 12 + 64, "{tag}");
    let mut vault = common::open_with_passphrase(&al.home, PASS);
    let mac = airlock_audit::AuditMac::new(vault.subkey(airlock_crypto::kdf::labels::AUDIT_MAC).unwrap());
    assert!(mac.matches(CANARY, &tag));
    assert!(!String::from_utf8_lossy(&al.transcript()).contains("AUDITCANARY"));
}

#[test]
fn export_writes_ocsf_and_cef_lines() {
    let al = setup();
    let ocsf = al.call(["audit", "export", "--format", "ocsf", "--type", "entity"]).expect(0).out();
    let first: serde_json::Value = serde_json::from_str(ocsf.lines().next().unwrap()).unwrap();
    assert_eq!(first["class_uid"], 3004);
    assert_eq!(first["metadata"]["sequence"], 1);
    let cef = al.call(["audit", "export", "--format", "cef"]).expect(0).out();
    assert!(cef.lines().all(|l| l.starts_with("CEF:0|Airlock|Airlock|")), "{cef}");
    assert_eq!(cef.lines().count(), 9);
}

#[test]
fn repair_removes_a_torn_record_and_records_it() {
    let al = setup();
    let seg = last_segment(&al);
    let mut data = std::fs::read(&seg).unwrap();
    data.extend_from_slice(b"{\"event\":{\"activity_id\":1,\"cla");
    std::fs::write(&seg, &data).unwrap();
    al.call(["audit", "verify"]).expect(10).err_has("torn tail").err_has("airlock audit repair");
    al.call(["audit", "repair"]).expect(0).out_has("removed an incomplete record");
    al.call(["audit", "verify"]).expect(0);
    al.call(["audit", "query", "--type", "lifecycle"]).expect(0).out_has("repair: removed an incomplete record");
}

#[test]
fn bad_filters_and_missing_logs_are_clear_errors() {
    let al = Airlock::with_passphrase(PASS);
    al.call(["audit", "verify"]).expect(4).err_has("no audit log");
    let al = setup();
    al.call(["audit", "query", "--type", "nope"]).expect(2).err_has("--type");
    al.call(["audit", "query", "--since", "yesterday"]).expect(2).err_has("--since");
    al.call(["audit", "verify", "--key", "not-a-key"]).expect(8).err_has("--key");
    al.call(["audit", "prove", "999"]).expect(8).err_has("not in the tree").err_lacks("panicked");
}

#[test]
fn audit_settings_in_the_installation_config_are_used() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    std::fs::create_dir_all(al.home.join("export")).unwrap();
    std::fs::write(
        al.home.join("airlock.toml"),
        "version = 1\n[audit]\ndir = \"logs/audit\"\ncheckpoint_every = 5\n\
         [[audit.sinks]]\ntype = \"file\"\npath = \"export/audit.jsonl\"\ncheckpoints = true\n",
    )
    .unwrap();
    al.set("gh", CANARY);
    let copy = std::fs::read_to_string(al.home.join("export/audit.jsonl")).unwrap();
    assert!(copy.lines().any(|l| l.contains("\"secret default/gh stored\"")), "{copy}");
    assert!(copy.lines().any(|l| l.contains("airlock_checkpoint")), "{copy}");
    // Every record names the log it belongs to, as the checkpoints do, so a collector fed by several installations
    // can tell them apart.
    let origin =
        format!("airlock/audit/{}", al.call(["--json", "status"]).expect(0).json()["vault_id"].as_str().unwrap());
    let records: Vec<serde_json::Value> = copy
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["class_uid"].is_number())
        .collect();
    assert!(!records.is_empty());
    assert!(records.iter().all(|r| r["metadata"]["log_name"] == origin.as_str()), "{copy}");
    // `airlock audit export` gives the same records, named the same way: a SIEM fed from an export or from a sink
    // sees one record one way.
    let export = al.call(["audit", "export"]).expect(0);
    let exported: std::collections::HashMap<u64, serde_json::Value> = export
        .out()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| (v["metadata"]["sequence"].as_u64().unwrap(), v))
        .collect();
    for r in &records {
        let seq = r["metadata"]["sequence"].as_u64().unwrap();
        assert_eq!(exported.get(&seq), Some(r), "seq {seq}: the export differs from the sink's copy");
    }
    assert!(!copy.contains("AUDITCANARY"));
    // The log itself moved to [audit] dir, and every command finds it there.
    assert!(al.home.join("logs/audit/segments").is_dir());
    al.call(["audit", "verify"]).expect(0).out_has("logs/audit");
    al.call(["audit", "query", "--type", "entity"]).expect(0).out_has("secret default/gh stored");
}

#[test]
fn a_broken_audit_config_stops_vault_changes_before_they_happen() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    std::fs::write(
        al.home.join("airlock.toml"),
        "version = 1\n[[audit.sinks]]\ntype = \"syslog\"\naddress = \"udp://nowhere:514\"\n",
    )
    .unwrap();
    al.call(["secret", "set", "gh", "--raw"]).stdin(CANARY).expect(8).err_has("syslog address");
    assert!(al.names().is_empty(), "nothing was stored");
}

/// A loopback webhook receiver: every request's `Authorization` header and body, answered 200.
struct Receiver {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    fn start() -> Receiver {
        use std::io::{BufRead, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let log = std::sync::Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut out = conn.try_clone().unwrap();
                    let mut r = std::io::BufReader::new(conn);
                    loop {
                        let (mut auth, mut len) = (String::new(), 0usize);
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        loop {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let l = line.trim_end();
                            if l.is_empty() {
                                break;
                            }
                            let (k, v) = l.split_once(':').unwrap_or((l, ""));
                            match k.to_ascii_lowercase().as_str() {
                                "authorization" => auth = v.trim().to_string(),
                                "content-length" => len = v.trim().parse().unwrap_or(0),
                                _ => {}
                            }
                        }
                        let mut body = vec![0; len];
                        if r.read_exact(&mut body).is_err() {
                            return;
                        }
                        log.lock().unwrap().push((auth, String::from_utf8_lossy(&body).into_owned()));
                        if out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { addr, seen }
    }

    /// What arrived by the time `want` is satisfied, or after 20 s.
    fn wait_for(&self, want: impl Fn(&[(String, String)]) -> bool) -> Vec<(String, String)> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let seen = self.seen.lock().unwrap().clone();
            if want(&seen) || std::time::Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[test]
fn a_webhook_token_held_in_another_store_is_read_when_the_log_opens_and_the_read_is_recorded() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    let rx = Receiver::start();
    let named = common::random_alnum(32);
    let direct = common::random_alnum(32);
    // One token through a declared secret whose value lives in the environment, one written as a locator.
    std::fs::write(
        al.home.join("airlock.toml"),
        format!(
            "version = 1\n[secrets.SIEM]\nhosts = [\"127.0.0.1\"]\nsource = \"env://SIEM_TOKEN\"\n\
             [[audit.sinks]]\ntype = \"webhook\"\nurl = \"http://{a}/named\"\ntoken = \"${{secret:SIEM}}\"\n\
             [[audit.sinks]]\ntype = \"webhook\"\nurl = \"http://{a}/direct\"\ntoken = \"${{secret:env://SIEM_DIRECT}}\"\n",
            a = rx.addr
        ),
    )
    .unwrap();
    let set = |extra_env: &[(&str, &str)]| {
        let mut c = al.call(["secret", "set", "gh", "--raw"]).stdin(CANARY);
        for (k, v) in extra_env {
            c = c.env(k, v);
        }
        c
    };

    // Without the store's value the log cannot start its sinks, so the change is refused before it is made.
    set(&[("SIEM_DIRECT", &direct)]).run().err_has("env://SIEM_TOKEN");
    assert!(al.names().is_empty(), "nothing was stored while the audit log could not open");

    set(&[("SIEM_TOKEN", &named), ("SIEM_DIRECT", &direct)]).expect(0);
    let seen = rx.wait_for(|s| s.iter().filter(|(_, b)| b.contains("secret default/gh stored")).count() >= 2);
    let with = |token: &str| seen.iter().filter(|(a, b)| a == token && b.contains("secret default/gh stored")).count();
    assert_eq!(with(&format!("Bearer {named}")), 1, "the named sink got the change with the env-held token");
    assert_eq!(with(&format!("Bearer {direct}")), 1, "the direct sink got the change with its token");

    // Each read is on the record, by name and source, and no token value is.
    let q = al.call(["--json", "audit", "query"]).expect(0).out();
    let reads: Vec<String> = q
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["api"]["operation"] == "secret.read")
        .map(|r| r["message"].as_str().unwrap().to_string())
        .collect();
    assert!(reads.iter().any(|m| m.starts_with("secret SIEM read from env://SIEM_TOKEN")), "{reads:?}");
    assert!(reads.iter().any(|m| m.starts_with("secret env://SIEM_DIRECT read from env://SIEM_DIRECT")), "{reads:?}");
    assert!(reads.iter().all(|m| m.ends_with("for the audit log's webhook sink")), "{reads:?}");
    for file in std::fs::read_dir(log_dir(&al).join("segments")).unwrap() {
        let data = String::from_utf8_lossy(&std::fs::read(file.unwrap().path()).unwrap()).into_owned();
        assert!(!data.contains(&named) && !data.contains(&direct), "a token value reached the audit log");
    }
    let t = String::from_utf8_lossy(&al.transcript()).into_owned();
    assert!(!t.contains(&named) && !t.contains(&direct), "a token value was printed");
    al.call(["audit", "verify"]).expect(0);
}
