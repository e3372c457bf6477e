//! The daemon harness: a home with a vault, a policy and four agents, `airlock serve` on it, and curl as the
//! client (the same one a user would type).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Airlock, BIN, FAST_KDF};

pub const PASS: &str = "a long enough passphrase for the daemon tests";

pub struct Daemon {
    pub al: Airlock,
    pub child: Child,
    pub url: String,
    pub socket: std::path::PathBuf,
    pub tokens: std::collections::HashMap<String, String>,
}

/// What curl got: status, content type, body.
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    /// An RFC 9457 problem of `kind`, with the status it claims.
    pub fn problem(&self, status: u16, kind: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.content_type, "application/problem+json", "{}", self.body);
        let p = self.json();
        assert_eq!(p["type"], format!("https://airlock.invalid/problems/{kind}"), "{p}");
        assert_eq!(p["status"], status);
        assert!(p["title"].as_str().is_some_and(|t| !t.is_empty()));
        p
    }
}

impl Daemon {
    /// A home with a vault, a policy and four agents (root: admin; worker, a sub-agent of root; other: agent;
    /// aud: auditor), and the daemon serving it with `extra` flags.
    pub fn start(extra: &[&str]) -> Daemon {
        Daemon::start_with("[agents.worker]\ntools = [\"t\"]\n[tools.t]\n", extra)
    }

    /// The same with `config` as the policy.
    pub fn start_with(config: &str, extra: &[&str]) -> Daemon {
        Daemon::start_with_env(config, extra, &[])
    }

    /// The same with `env` added to the daemon's environment (a store's token, say).
    pub fn start_with_env(config: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let al = Airlock::with_passphrase(PASS);
        al.call(["init", "--kek", "passphrase"]).args(FAST_KDF).expect(0);
        std::fs::write(al.home.join("airlock.toml"), config).unwrap();
        let mut tokens = std::collections::HashMap::new();
        for (name, role, parent) in [
            ("root", "admin", None),
            ("worker", "agent", Some("root")),
            ("other", "agent", None),
            ("aud", "auditor", None),
        ] {
            let mut call = al.call(["--json", "agent", "add", name, "--role", role]);
            if let Some(p) = parent {
                call = call.args(["--parent", p]);
            }
            let v = call.expect(0).json();
            tokens.insert(name.to_string(), v["token"].as_str().unwrap().to_string());
        }
        let socket = al.home.join("airlock.sock");
        let mut child = Command::new(BIN)
            .env_clear()
            .env("AIRLOCK_HOME", &al.home)
            .env("AIRLOCK_PASSPHRASE", PASS)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(al.home.join("airlock.toml"))
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the daemon");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the ready line");
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        // https:// when `extra` turns on mutual TLS (tests/serve_mtls.rs).
        assert!(url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"), "{line}");
        Daemon { al, child, url, socket, tokens }
    }

    /// curl `method path` as `agent` (None: no token), with a JSON body if given.
    pub fn call(&self, agent: Option<&str>, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.curl(agent, method, path, body, &[])
    }

    pub fn curl(&self, agent: Option<&str>, method: &str, path: &str, body: Option<&str>, extra: &[&str]) -> Reply {
        let mut c = Command::new("curl");
        c.args(["-s", "-S", "-i", "-X", method, "--max-time", "20"]);
        if let Some(a) = agent {
            c.arg("-H").arg(format!("Authorization: Bearer {}", self.tokens[a]));
        }
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        c.args(extra);
        c.arg(format!("{}{path}", self.url));
        let out = c.output().expect("curl runs");
        assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
        parse(&String::from_utf8_lossy(&out.stdout))
    }

    /// `POST /v1/runs` as `agent` with `body`, by a curl left running in the background (the answer streams until
    /// the run ends): the curl, the rest of its output, and the run id from the first event. Hold on to the output
    /// (bind it to a name, not `_`): dropping it closes curl's stdout, curl dies of SIGPIPE at the next event, and
    /// the daemon ends a quiet run whose client is gone.
    pub fn start_streaming(&self, agent: &str, body: &str) -> (Child, BufReader<std::process::ChildStdout>, String) {
        let mut client = Command::new("curl")
            .args(["-sN", "-H", &format!("Authorization: Bearer {}", self.tokens[agent])])
            .args(["-H", "Content-Type: application/json", "--data-binary", body])
            .arg(format!("{}/v1/runs", self.url))
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl runs");
        let mut reader = BufReader::new(client.stdout.take().expect("piped stdout"));
        let mut first = String::new();
        reader.read_line(&mut first).expect("the first event");
        let event: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
        assert_eq!(event["event"], "started", "{first}");
        (client, reader, event["run"].as_str().expect("a run id").to_string())
    }

    /// SIGTERM, and the exit status.
    pub fn stop(&mut self) -> i32 {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the daemon did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn parse(raw: &str) -> Reply {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_string))
        .unwrap_or_default();
    Reply { status, content_type, headers: head.to_string(), body: body.to_string() }
}

/// A policy under which `worker` may run a few programs in a workspace.
pub const RUNNABLE: &str = r#"version = 1
[limits]
wall_seconds = 60
[agents.worker]
tools = ["t"]
[agents.other]
tools = ["t"]
[tools.t]
[tools.t.fs]
read = ["${WORKSPACE}"]
write = ["${WORKSPACE}"]
[tools.t.exec]
allow = ["sh", "echo", "cat", "sleep"]
"#;

/// The NDJSON events of a run started through the API.
pub fn events(r: &Reply) -> Vec<Value> {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.content_type, "application/x-ndjson");
    r.body.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

pub fn run_body(d: &Daemon, command: &[&str], stdin: &str) -> String {
    let ws = d.al.tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    json!({"tool": "t", "command": command, "stdin": stdin, "workspace": ws}).to_string()
}
