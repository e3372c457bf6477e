//! Scale-out on one machine (docs/scale-out.md): two `airlock serve` daemons, each with its own `AIRLOCK_HOME`
//! (own vault, own audit chain and signing key), serving the same agents under the same policy, reading the
//! provider's key from one real OpenBao and sending their audit records and checkpoints to one real rsyslog. A loopback
//! HTTPS upstream records what each daemon injects.
//!
//! The agent registry is replicated the way docs/scale-out.md describes: `airlock agent` on one home, and its
//! `agents.json` (names, roles, parents and token hashes; never a token) copied to every other home, which rereads it.
//!
//! Skipped (SKIPPED line) without `AIRLOCK_TEST_BAO`, unless `AIRLOCK_REQUIRE_BAO=1` (scripts/test.sh sets both).
//! rsyslogd is required. Everything listens on 127.0.0.1 and is killed on drop. Secret values are never printed:
//! what the upstream got is compared by SHA-256 and reported as "old", "new" or "neither".

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::bao::Bao;
use common::daemon::{Daemon, PASS};
use common::rsyslog::{Line, Rsyslog};
use common::upstream::TlsUpstream;
use common::{Airlock, BIN, FAST_KDF};
use serde_json::json;

/// The policy's `[backends.bao] cache_ttl`: how late a rotation may reach callers.
const TTL: Duration = Duration::from_secs(2);
/// Added to `TTL` for the deadline. A call that starts after the deadline must inject the new value however slow
/// the machine is (slowness only makes the injection later), so this covers no work, only the gap between the
/// clocks involved (the cache's monotonic one, the value's fetch time on the wall clock) and the test's own.
const SLACK: Duration = Duration::from_millis(500);
/// Calls each daemon must have served, started after the deadline, before the test stops calling.
const AFTER_DEADLINE: usize = 5;
/// The most the calling may take in all (a bound for a stuck machine, not a performance requirement).
const GIVE_UP: Duration = Duration::from_secs(90);

/// Where the provider's key lives in OpenBao (KV v2 mount `secret`).
const KV_PATH: &str = "airlock/example";
const SOURCE: &str = "bao://secret/airlock/example#api_key";

const MODELS: &str = "/v1/capabilities/example/models";

/// The policy both daemons run (the same file in each home). Each daemon reads OpenBao with a token of its own
/// (`AIRLOCK_BAO_TOKEN`, read-only on one path) and sends OCSF records and checkpoints to the collector over TCP.
fn policy(bao_addr: &str, syslog_port: u16, upstream_port: u16) -> String {
    format!(
        r#"version = 1
default_profile = "dev"

[network]
allow_private = ["127.0.0.1"]

[audit]
record_allows = true
checkpoint_interval = "1s"

[[audit.sinks]]
type = "syslog"
address = "tcp://127.0.0.1:{syslog_port}"
format = "ocsf"
checkpoints = true

[backends.bao]
address = "{addr}"
auth = {{ method = "token", token_env = "AIRLOCK_BAO_TOKEN" }}
cache_ttl = "{ttl}ms"

[agents.worker]
tools = ["fetch"]

[tools.fetch]
secrets = ["EXAMPLE_KEY"]
[[tools.fetch.network]]
hosts = ["api.example.com:*"]

[secrets.EXAMPLE_KEY]
source = "{SOURCE}"
hosts = ["api.example.com:*"]

[providers.example]
base_url = "https://api.example.com:{upstream_port}"
secret = "EXAMPLE_KEY"

[providers.example.capabilities.models]
methods = ["GET"]
paths = ["/v1/models"]
"#,
        addr = bao_addr,
        ttl = TTL.as_millis(),
    )
}

/// How long each request from a daemon to OpenBao takes to get there (see [`SlowLink`]).
const BAO_LATENCY: Duration = Duration::from_millis(300);

/// A TCP relay on loopback that holds every chunk a client sends for [`BAO_LATENCY`] before passing it on to
/// OpenBao, as a store across a network would. It makes the time between a daemon deciding to build a broker and
/// the value arriving longer than the gap between two calls, so a call always comes in while the daemon's cached
/// copy of the old value is still fresh: a daemon that kept that copy for a whole TTL more would be caught.
struct SlowLink {
    /// `http://127.0.0.1:PORT`, for `[backends.bao] address`.
    addr: String,
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SlowLink {
    fn to(bao_addr: &str) -> SlowLink {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        let target = bao_addr.strip_prefix("http://").expect("a loopback http:// address").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let pump = |mut from: TcpStream, mut to: TcpStream, delay: Duration| {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n) = from.read(&mut buf) {
                    std::thread::sleep(delay);
                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(std::net::Shutdown::Both);
                let _ = from.shutdown(std::net::Shutdown::Both);
            });
        };
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::Acquire) {
                    break;
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(&target)) else { continue };
                pump(client.try_clone().unwrap(), server.try_clone().unwrap(), BAO_LATENCY);
                pump(server, client, Duration::ZERO);
            }
        });
        SlowLink { addr: format!("http://127.0.0.1:{port}"), port, stop }
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        // Wakes the accepting thread, which then sees the flag. Open connections end with their clients.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// What the daemon's OpenBao token may do: read the one secret.
const BAO_POLICY: &str = r#"path "secret/data/airlock/*" { capabilities = ["read"] }"#;

/// One daemon and what the test keeps of it.
struct Instance {
    name: &'static str,
    d: Daemon,
    /// The daemon's stderr, for the leak scan and failure messages.
    stderr: PathBuf,
    /// Its stdout after the ready line, held open so that a later write does not meet a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Instance {
    fn pid(&self) -> String {
        self.d.child.id().to_string()
    }

    /// The verifier key of this instance's audit log (`name+id+base64`); its name is the log's origin.
    fn audit_key(&self) -> String {
        self.d.al.call(["audit", "key"]).expect(0).out().trim().to_string()
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// A new home: its own vault (its own audit signing key and origin), the shared policy.
fn home(policy: &str) -> Airlock {
    let al = Airlock::with_passphrase(PASS);
    al.call(["init", "--kek", "passphrase"]).args(FAST_KDF).expect(0);
    std::fs::write(al.home.join("airlock.toml"), policy).unwrap();
    al
}

/// Replicates the agent registry from `from` to `to` as a deployment would push it: a private temporary file in the
/// target home, renamed over `agents.json` (the daemon rereads it when it changes).
fn replicate_agents(from: &Airlock, to: &Airlock) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = to.home.join(".agents.json.replica");
    std::fs::copy(from.home.join("agents.json"), &tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, to.home.join("agents.json")).unwrap();
}

/// `airlock serve` on `al`, with its own OpenBao token, the upstream's name pinned and its CA trusted.
fn serve(
    name: &'static str,
    al: Airlock,
    bao_token: &str,
    up: &TlsUpstream,
    tokens: &BTreeMap<String, String>,
) -> Instance {
    let stderr = al.path("daemon.stderr");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("AIRLOCK_HOME", &al.home)
        .env("AIRLOCK_PASSPHRASE", PASS)
        .env("AIRLOCK_BAO_TOKEN", bao_token)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(al.home.join("airlock.toml"))
        .args(up.daemon_flags())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("start the daemon");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the ready line");
    let url = line.trim().rsplit(' ').next().unwrap_or_default().to_string();
    let socket = al.home.join("airlock.sock");
    let tokens = tokens.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let d = Daemon { al, child, url, socket, tokens };
    assert!(
        d.url.starts_with("http://127.0.0.1:"),
        "{name} did not start: {line:?}\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    Instance { name, d, stderr, _stdout: stdout }
}

/// Which value an upstream request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Injected {
    Old,
    New,
    Neither,
}

/// Two values, known by their digests only once set.
struct Values {
    old: [u8; 32],
    new: [u8; 32],
}

impl Values {
    fn classify(&self, authorization: Option<&str>) -> Injected {
        let Some(value) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else { return Injected::Neither };
        let d = airlock_crypto::kdf::sha256(value.as_bytes());
        if d == self.old {
            Injected::Old
        } else if d == self.new {
            Injected::New
        } else {
            Injected::Neither
        }
    }
}

/// The envelope of a capability call (`GET /v1/models`), tagged with `probe` in the query so that the upstream's
/// record of it can be found among concurrent calls.
fn envelope(probe: &str) -> String {
    json!({"method": "GET", "path": "/v1/models", "query": {"probe": probe}}).to_string()
}

/// A capability call as `worker` acting as `fetch` through `i`, tagged `probe`; it must succeed, and no value may
/// reach the caller (the upstream echoes the credential it got: the daemon masks it).
fn call(i: &Instance, probe: &str, secrets: &[&str]) {
    let r = i.d.curl(Some("worker"), "POST", MODELS, Some(&envelope(probe)), &["-H", "X-Airlock-Tool: fetch"]);
    for s in secrets {
        assert!(!r.headers.contains(s) && !r.body.contains(s), "{}: a secret value reached the caller", i.name);
    }
    assert_eq!(r.status, 200, "{}: {} {}\n{}", i.name, r.headers, r.body, i.stderr_text());
}

/// What the upstream got for each probe: which value its `Authorization` carried.
fn injected(up: &TlsUpstream, values: &Values) -> BTreeMap<String, Injected> {
    let mut out = BTreeMap::new();
    for r in up.seen() {
        let path = r["path"].as_str().unwrap_or_default();
        if let Some((_, probe)) = path.split_once("?probe=") {
            let before = out.insert(probe.to_string(), values.classify(r["headers"]["authorization"].as_str()));
            assert!(before.is_none(), "probe {probe} reached the upstream twice");
        }
    }
    out
}

/// Calls through `i` back to back, from `rotated` on, until [`AFTER_DEADLINE`] calls started after the deadline;
/// each call's probe and when it started (since `rotated`).
fn poll(i: &Instance, rotated: Instant, secrets: &[&str]) -> Vec<(String, Duration)> {
    let mut calls = Vec::new();
    for n in 0.. {
        let start = rotated.elapsed();
        if calls.iter().filter(|(_, t)| *t > TTL + SLACK).count() >= AFTER_DEADLINE {
            break;
        }
        assert!(start < GIVE_UP, "{}: only {} calls in {GIVE_UP:?}", i.name, calls.len());
        let probe = format!("{}-{n}", i.name);
        call(i, &probe, secrets);
        calls.push((probe, start));
    }
    calls
}

/// The records rsyslog got from the process `pid` whose OCSF event says `secret.read` of [`SOURCE`].
fn secret_reads<'a>(lines: &'a [Line], pid: &str) -> Vec<&'a Line> {
    lines
        .iter()
        .filter(|l| l.procid == pid && l.msgid == "audit")
        .filter(|l| {
            l.json().is_some_and(|e| {
                e["api"]["operation"] == "secret.read" && e["unmapped"]["airlock"]["secret_source"] == SOURCE
            })
        })
        .collect()
}

/// Every checkpoint note rsyslog got, by the log origin on its first line.
fn checkpoints_by_origin(lines: &[Line]) -> BTreeMap<String, Vec<(u64, String)>> {
    let mut out: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for l in lines.iter().filter(|l| l.msgid == "checkpoint") {
        let v = l.json().unwrap_or_else(|| panic!("a checkpoint message that is not JSON: {}", l.msg));
        let size = v["checkpoint"]["size"].as_u64().expect("a checkpoint size");
        let note = v["checkpoint"]["note"].as_str().expect("a checkpoint note").to_string();
        let origin = note.lines().next().unwrap_or_default().to_string();
        out.entry(origin).or_default().push((size, note));
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn assert_nowhere(files: &[(PathBuf, Vec<u8>)], secrets: &[&str]) {
    for (path, data) in files {
        for s in secrets {
            assert!(!contains(data, s), "a secret value is in {}", path.display());
        }
    }
}

fn file(path: &Path) -> (PathBuf, Vec<u8>) {
    (path.to_path_buf(), std::fs::read(path).unwrap_or_default())
}

#[test]
fn two_daemons_share_openbao_and_a_collector_and_both_pick_up_a_rotation_within_the_cache_ttl() {
    let Some(bao) = Bao::dev() else { return };
    let old_value = format!("exk_SCALEOUTOLD{}", common::random_alnum(32));
    let new_value = format!("exk_SCALEOUTNEW{}", common::random_alnum(32));
    let secrets = [old_value.as_str(), new_value.as_str()];
    let values = Values {
        old: airlock_crypto::kdf::sha256(old_value.as_bytes()),
        new: airlock_crypto::kdf::sha256(new_value.as_bytes()),
    };
    bao.kv_put(KV_PATH, &json!({"api_key": old_value}));
    let syslog = Rsyslog::start();
    let up = TlsUpstream::start();
    let link = SlowLink::to(&bao.addr);
    let policy = policy(&link.addr, syslog.tcp, up.port);

    // Two homes, the same policy; the agents are made on the first and replicated to the second.
    let (a_home, b_home) = (home(&policy), home(&policy));
    let mut tokens = BTreeMap::new();
    for (name, role, parent) in [("root", "admin", None), ("worker", "agent", Some("root")), ("aud", "auditor", None)] {
        let mut c = a_home.call(["--json", "agent", "add", name, "--role", role]);
        if let Some(p) = parent {
            c = c.args(["--parent", p]);
        }
        tokens.insert(name.to_string(), c.expect(0).json()["token"].as_str().unwrap().to_string());
    }
    replicate_agents(&a_home, &b_home);

    // Each daemon its own OpenBao identity (a read-only token), as each host of a deployment would have.
    let a = serve("A", a_home, &bao.client_token("airlock-a", BAO_POLICY), &up, &tokens);
    let b = serve("B", b_home, &bao.client_token("airlock-b", BAO_POLICY), &up, &tokens);
    let both = [&a, &b];

    // Both serve the same agent, and the upstream gets OpenBao's value through each.
    for i in both {
        call(i, &format!("{}-before", i.name), &secrets);
        let got = injected(&up, &values)[&format!("{}-before", i.name)];
        assert_eq!(got, Injected::Old, "{} injects the value held in OpenBao", i.name);
    }

    // Rotated in OpenBao, by someone else, while both daemons are being called back to back. Each may keep the old
    // value for at most one cache TTL from its last read, so every call that starts later than TTL (+ SLACK) after
    // the write must carry the new one, through both.
    bao.kv_put(KV_PATH, &json!({"api_key": new_value}));
    let rotated = Instant::now();
    let calls: Vec<(&Instance, Vec<(String, Duration)>)> = std::thread::scope(|s| {
        let polls: Vec<_> = both.iter().map(|i| (*i, s.spawn(|| poll(i, rotated, &secrets)))).collect();
        polls.into_iter().map(|(i, h)| (i, h.join().expect("the calls went through"))).collect()
    });
    let got = injected(&up, &values);
    let deadline = TTL + SLACK;
    for (i, calls) in &calls {
        let seq: Vec<(Duration, Injected)> = calls.iter().map(|(probe, t)| (*t, got[probe])).collect();
        let show: Vec<String> = seq.iter().map(|(t, w)| format!("{:.2}s {w:?}", t.as_secs_f64())).collect();
        let first_new = seq.iter().find(|(_, w)| *w == Injected::New).map(|(t, _)| *t);
        println!("{}: {} calls since the rotation, the first with the new value at {first_new:.2?}", i.name, seq.len());
        assert!(seq.iter().all(|(_, w)| *w != Injected::Neither), "{} injected something else: {show:?}", i.name);
        assert!(
            seq.iter().filter(|(t, _)| *t > deadline).all(|(_, w)| *w == Injected::New),
            "{} injected the old value in a call started more than {deadline:?} after the rotation (cache TTL \
             {TTL:?}): {show:?}",
            i.name
        );
        assert!(
            seq.iter().skip_while(|(_, w)| *w != Injected::New).all(|(_, w)| *w == Injected::New),
            "{} went back to the old value after injecting the new one: {show:?}",
            i.name
        );
    }

    // A token rotated on the first home stops working on both once the registry is replicated again.
    let old_token = tokens["worker"].clone();
    let rotated_token = a.d.al.call(["--json", "agent", "rotate-token", "worker"]).expect(0).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    replicate_agents(&a.d.al, &b.d.al);
    for i in both {
        let body = envelope(&format!("{}-token", i.name));
        let with = |token: &str| {
            let auth = format!("Authorization: Bearer {token}");
            i.d.curl(None, "POST", MODELS, Some(&body), &["-H", "X-Airlock-Tool: fetch", "-H", &auth]).status
        };
        assert_eq!(with(&old_token), 401, "{} still takes the replaced token", i.name);
        assert_eq!(with(&rotated_token), 200, "{} takes the new token", i.name);
    }

    // The collector has secret.read records from both daemons (told apart by the sender's PROCID, the daemon's pid:
    // see docs/scale-out.md on what identifies an instance), including each one's read of the rotated version.
    let (a_pid, b_pid) = (a.pid(), b.pid());
    let version_2 =
        |l: &&Line| l.json().is_some_and(|e| e["message"].as_str().is_some_and(|m| m.contains(", version 2")));
    let lines =
        syslog.wait_until(Duration::from_secs(30), "secret.read records of both versions from both daemons", |ls| {
            [&a_pid, &b_pid].iter().all(|pid| {
                let reads = secret_reads(ls, pid);
                reads.len() >= 2 && reads.iter().any(version_2)
            })
        });
    for (i, pid) in [(&a, &a_pid), (&b, &b_pid)] {
        for l in secret_reads(&lines, pid) {
            let e = l.json().unwrap();
            assert_eq!(e["actor"]["app_name"], "fetch", "{}: {e}", i.name);
            assert_eq!(e["resources"][0]["name"], "EXAMPLE_KEY", "{}: {e}", i.name);
            assert_eq!(l.app, "airlock", "{}", i.name);
        }
    }

    // Checkpoints arrive from both, each signed for its own log: two origins, each the name of one instance's key.
    let (a_key, b_key) = (a.audit_key(), b.audit_key());
    let origin_of = |key: &str| key.split('+').next().unwrap().to_string();
    assert_ne!(origin_of(&a_key), origin_of(&b_key), "each instance signs its own log");
    let sent_by = |ls: &[Line], pid: &str| -> Vec<String> {
        let mine: Vec<Line> = ls.iter().filter(|l| l.procid == pid).cloned().collect();
        checkpoints_by_origin(&mine).into_keys().collect()
    };
    let lines = syslog.wait_until(Duration::from_secs(30), "checkpoints from both daemons", |ls| {
        !sent_by(ls, &a_pid).is_empty() && !sent_by(ls, &b_pid).is_empty()
    });
    let by_origin = checkpoints_by_origin(&lines);
    let origins: BTreeSet<&String> = by_origin.keys().collect();
    assert_eq!(origins.len(), 2, "checkpoints from exactly the two logs: {origins:?}");
    // Every checkpoint a daemon's PROCID sent names that daemon's log, and every record it sent names the same log
    // (`metadata.log_name`, and `log` in the structured data), so (origin, sequence) identifies a record.
    for (i, pid, key) in [(&a, &a_pid, &a_key), (&b, &b_pid, &b_key)] {
        assert_eq!(sent_by(&lines, pid), vec![origin_of(key)], "{}: the checkpoints its process sent", i.name);
        let records: Vec<&Line> = lines.iter().filter(|l| l.procid == *pid && l.msgid == "audit").collect();
        assert!(!records.is_empty(), "{}", i.name);
        for l in records {
            let origin = origin_of(key);
            assert_eq!(l.json().unwrap()["metadata"]["log_name"], origin.as_str(), "{}: {}", i.name, l.msg);
            assert!(l.sd.contains(&format!("log=\"{origin}\"")), "{}: {}", i.name, l.sd);
        }
    }

    // Stop both (a final checkpoint each), then verify each local log, and each against the collector's copy of its
    // newest checkpoint with only its published key, as an auditor away from the hosts would.
    let mut a = a;
    let mut b = b;
    assert_eq!(a.d.stop(), 0, "{}", a.stderr_text());
    assert_eq!(b.d.stop(), 0, "{}", b.stderr_text());
    let notes_dir = tempfile::tempdir().unwrap();
    for (i, key) in [(&a, &a_key), (&b, &b_key)] {
        i.d.al.call(["audit", "verify"]).expect(0).out_has("OK");
        let (size, note) = by_origin[&origin_of(key)].iter().max_by_key(|(size, _)| *size).unwrap();
        let path = notes_dir.path().join(format!("{}.note", i.name));
        std::fs::write(&path, note).unwrap();
        let r = i.d.al.call(["audit", "verify", "--key", key]).arg("--checkpoint").arg(&path).expect(0);
        assert!(r.out().contains("OK"), "{}: verify against the collector's checkpoint of size {size}", i.name);
    }
    // One instance's checkpoint says nothing about the other's log: it is refused there.
    let a_note = notes_dir.path().join("A.note");
    let r = b.d.al.call(["audit", "verify", "--key", &b_key]).arg("--checkpoint").arg(&a_note).run();
    assert_eq!(r.code, Some(10), "B's log against A's checkpoint: {}{}", r.out(), r.err());
    r.err_has("no signature by the expected key");

    // No value anywhere: not in either home (vault, audit segments), the daemons' stderr, the CLI's output, or what
    // the collector received.
    for i in [&a, &b] {
        let mut files = common::read_tree(&i.d.al.home);
        files.push(file(&i.stderr));
        assert_nowhere(&files, &secrets);
        assert!(!secrets.iter().any(|s| contains(&i.d.al.transcript(), s)), "{}: a value was printed", i.name);
    }
    assert_nowhere(&[file(&syslog.output())], &secrets);
}
