//! Harness for the sandbox escape tests: a throwaway Airlock installation with a workspace, an `airlock.toml`
//! written from the test's tool lines, and `airlock run` invocations whose `--json` run record is parsed.
//!
//! Every [`Sandbox`] also stores a real secret in the vault and grants it to the tool (the tool sees only its
//! surrogate), and runs `airlock` with a host-only environment canary. When the value is dropped (and the test has
//! not already failed) it checks that neither the secret's real value nor the canary appeared, in any encoding the
//! leak scanner knows, in any output of any command the test ran.
//!
//! Scripts report what happened to each attempt with `@name=VALUE` lines on stdout (usually the exit status of the
//! attempt), read back with [`SbRun::status`] and [`SbRun::marker`].

use std::ffi::{OsStr, OsString};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Airlock, Call, NeedleSet, Run, random_alnum};

/// The vault secret every sandbox's tool is granted (as a surrogate in the variable of the same name).
pub const SECRET_NAME: &str = "SANDBOX_TOKEN";
/// Where that secret may be sent; never reachable in these tests (no network rule names it).
pub const SECRET_HOST: &str = "api.example.com";
/// The variable holding the host-only canary in `airlock`'s own environment (never passed to the tool).
pub const HOST_CANARY_VAR: &str = "AIRLOCK_TEST_HOST_CANARY";

/// Defines `st NAME STATUS`, which prints `@NAME=STATUS` on a line of its own (`cmd; st name $?`).
pub const BASH_PRELUDE: &str = "st() { printf '\\n@%s=%s\\n' \"$1\" \"$2\"; }\n";

/// The start of every Python attack script: libc through ctypes, `report(NAME, RET)` (prints `@NAME=0` on
/// success, else `@NAME=ERRNO`, read back like `st`), and `control_fork()`, the benign control (`@fork=0`).
pub const PY_PRELUDE: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def report(name, ret):
    err = ctypes.get_errno()
    print(f"@{name}={0 if ret >= 0 else (err or 1)}", flush=True)
def control_fork():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    print("@fork=0", flush=True)
"#;

/// `python3 -c SCRIPT` (after [`PY_PRELUDE`]) as one shell word, for a bash script.
pub fn python_word(script: &str) -> String {
    format!("'{}'", format!("{PY_PRELUDE}{script}").replace('\'', "'\\''"))
}

/// Tool lines: the workspace readable and writable.
pub const WS_RW: &str = "[tools.t.fs]\nread = [\"${WORKSPACE}\"]\nwrite = [\"${WORKSPACE}\"]\n";
/// Tool lines: the workspace readable only.
pub const WS_RO: &str = "[tools.t.fs]\nread = [\"${WORKSPACE}\"]\n";

/// Where bare program names are looked up (Airlock's default search path).
pub const SEARCH_PATH: &[&str] = &["/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/sbin", "/sbin"];

/// `[tools.t.exec] allow = [...]` for these programs (bare names, resolved on the search path by Airlock).
pub fn exec_allow(programs: &[&str]) -> String {
    let list: Vec<String> = programs.iter().map(|p| format!("{p:?}")).collect();
    format!("[tools.t.exec]\nallow = [{}]\n", list.join(", "))
}

/// The program's path on the search path, if installed.
pub fn find_program(name: &str) -> Option<PathBuf> {
    SEARCH_PATH.iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

pub fn has_program(name: &str) -> bool {
    find_program(name).is_some()
}

/// Panics (rather than silently passing) when a program an attack needs is missing: `scripts/test.sh` installs
/// them all.
pub fn require_programs(names: &[&str]) {
    for n in names {
        assert!(
            has_program(n),
            "{n} is not installed on {SEARCH_PATH:?}; scripts/test.sh installs the tools the sandbox escape tests use"
        );
    }
}

/// Replaces each `@NAME@` in `template` by its value, so scripts keep their own `$`, `{` and `}` untouched.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut s = template.to_string();
    for (k, v) in vars {
        s = s.replace(&format!("@{k}@"), v);
    }
    let b = s.as_bytes();
    for (i, _) in s.match_indices('@') {
        let name_len = b[i + 1..].iter().take_while(|c| c.is_ascii_uppercase() || **c == b'_').count();
        assert!(name_len == 0 || b.get(i + 1 + name_len) != Some(&b'@'), "unfilled placeholder in script: {s}");
    }
    s
}

/// A path as text for a script (test paths are plain ASCII without quotes).
pub fn p(path: &Path) -> String {
    let s = path.to_str().expect("UTF-8 path").to_string();
    assert!(!s.contains(['\'', '"', '$', '`', '\\', '\n']), "path unsuitable for a script: {s}");
    s
}

/// A throwaway installation with a workspace and a policy.
pub struct Sandbox {
    pub al: Airlock,
    /// The workspace (canonical path), `<tmp>/ws`.
    pub ws: PathBuf,
    /// `HOME` for `airlock` (so `${HOME}` and the credential-store protections point into the temp dir).
    pub home_dir: PathBuf,
    pub config: PathBuf,
    /// The real value of [`SECRET_NAME`] in the vault.
    pub secret: String,
    /// The value of [`HOST_CANARY_VAR`] in `airlock`'s environment.
    pub host_canary: String,
    /// Extra `airlock run` options (`--resolve`, ...), placed before `--`.
    pub run_args: Vec<OsString>,
}

impl Sandbox {
    /// A new installation (key-file vault holding [`SECRET_NAME`]), a workspace, and `airlock.toml` in it made of
    /// the harness's lines (version, agent `a` with tool `t`, the secret, default limits) and `tool_toml`, which
    /// adds the tool's tables (`[tools.t.fs]`, `[tools.t.exec]`, `[tools.t.limits]`, `[[tools.t.network]]`) and any
    /// global ones (`[network]`).
    pub fn new(tool_toml: &str) -> Sandbox {
        let mut al = Airlock::new();
        let root = al.tmp.path().canonicalize().expect("canonical temp dir");
        let ws = root.join("ws");
        std::fs::create_dir(&ws).expect("workspace");
        let home_dir = root.join("user-home");
        std::fs::create_dir(&home_dir).expect("home dir");
        let host_canary = format!("host-env-canary-{}", random_alnum(32));
        al.set_base_env("HOME", &home_dir);
        al.set_base_env(HOST_CANARY_VAR, &host_canary);
        al.init_keyfile();
        let secret = format!("real-secret-{}", random_alnum(40));
        al.set(SECRET_NAME, secret.as_bytes());
        let config = ws.join("airlock.toml");
        std::fs::write(&config, config_text(tool_toml)).expect("write airlock.toml");
        Sandbox { al, ws, home_dir, config, secret, host_canary, run_args: Vec::new() }
    }

    /// Adds `airlock run` options (e.g. `--resolve allowed.test=127.0.0.1`).
    pub fn with_run_args<I, S>(mut self, args: I) -> Sandbox
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// A path in the temp dir, outside the workspace (and outside every policy).
    pub fn outside(&self, name: &str) -> PathBuf {
        self.ws.parent().expect("temp dir").join(name)
    }

    /// A path in the workspace.
    pub fn in_ws(&self, rel: &str) -> PathBuf {
        self.ws.join(rel)
    }

    /// A file outside the workspace holding a fresh canary; returns (path, canary).
    pub fn outside_canary(&self, name: &str) -> (PathBuf, String) {
        let canary = format!("outside-canary-{}", random_alnum(32));
        let p = self.outside(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("canary dir");
        }
        std::fs::write(&p, format!("{canary}\n")).expect("write canary");
        (p, canary)
    }

    fn run_prefix(&self, json: bool) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        if json {
            a.push("--json".into());
        }
        a.push("run".into());
        a.push("--config".into());
        a.push(self.config.clone().into());
        a.push("--workspace".into());
        a.push(self.ws.clone().into());
        a.extend(["--agent", "a", "--tool", "t"].map(OsString::from));
        a.extend(self.run_args.iter().cloned());
        a.push("--".into());
        a
    }

    /// The same run as a bare `std::process::Command` (environment as [`Airlock::call`] sets it, stdio left to the
    /// caller), for runs that need their own stdio, such as a terminal.
    pub fn command<I, S>(&self, json: bool, cmd: I) -> std::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = std::process::Command::new(super::BIN);
        c.env_clear();
        c.env("AIRLOCK_HOME", &self.al.home);
        for (k, v) in &self.al.base_env {
            c.env(k, v);
        }
        c.args(self.run_prefix(json)).args(cmd);
        c
    }

    /// `airlock run --config <ws>/airlock.toml --workspace <ws> --agent a --tool t -- CMD...` (plain output).
    pub fn call<I, S>(&self, cmd: I) -> Call<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.al.call(self.run_prefix(false)).args(cmd)
    }

    /// The same with `--json`: one run record on stdout.
    pub fn call_json<I, S>(&self, cmd: I) -> Call<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.al.call(self.run_prefix(true)).args(cmd)
    }

    /// Runs `CMD...` with `--json` and parses the record (panics if the sandbox did not start).
    pub fn run<I, S>(&self, cmd: I) -> SbRun
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        SbRun::parse(self.call_json(cmd).run())
    }

    /// `bash -c SCRIPT` in the sandbox, with [`BASH_PRELUDE`] first (so `st NAME $?` reports a status).
    pub fn bash(&self, script: &str) -> SbRun {
        self.run(["bash", "-c", &format!("{BASH_PRELUDE}{script}")])
    }

    /// `python3 -c SCRIPT` in the sandbox.
    pub fn python(&self, script: &str) -> SbRun {
        self.run(["python3", "-c", script])
    }

    /// Waits for a run started with `call_json(...).spawn()`, records its output in the transcript, and parses it.
    pub fn finish(&self, child: Child, feeder: JoinHandle<()>) -> SbRun {
        let out = child.wait_with_output().expect("wait for airlock run");
        feeder.join().expect("stdin feeder");
        {
            let mut t = self.al.transcript.lock().expect("transcript");
            t.extend_from_slice(&out.stdout);
            t.extend_from_slice(&out.stderr);
        }
        SbRun::parse(Run { args: Vec::new(), code: out.status.code(), stdout: out.stdout, stderr: out.stderr })
    }

    /// Asserts neither the secret's real value nor the host canary is anywhere in the test's outputs so far.
    pub fn assert_no_leak(&self) {
        let mut needles = NeedleSet::new();
        needles.add_value("the vault secret's real value", self.secret.as_bytes());
        needles.add_value("the host-only environment canary", self.host_canary.as_bytes());
        let hits = needles.find(&self.al.transcript());
        assert!(hits.is_empty(), "leaked into the output of a sandboxed run: {hits:?}");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_no_leak();
        }
    }
}

fn config_text(tool_toml: &str) -> String {
    format!(
        r#"version = 1

[limits]
wall_seconds = 60
output_bytes = "4MiB"

[agents.a]
tools = ["t"]

[tools.t]
secrets = ["{SECRET_NAME}"]

[secrets.{SECRET_NAME}]
hosts = ["{SECRET_HOST}"]

{tool_toml}
"#
    )
}

/// A finished `airlock --json run`: the process result and its run record.
#[derive(Debug)]
pub struct SbRun {
    pub run: Run,
    pub record: serde_json::Value,
}

impl SbRun {
    /// Parses the run record; a run that never started (degraded, setup failure, denied) is a test failure, since
    /// every "the attack failed" assertion would otherwise pass vacuously.
    pub fn parse(run: Run) -> SbRun {
        let record: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "airlock run {:?} printed no run record (exit {:?}; the sandbox did not start?): {e}\nstdout:\n{}\nstderr:\n{}",
                run.args,
                run.code,
                run.out(),
                run.err()
            )
        });
        assert_ne!(
            record["reason"],
            "setup_failed",
            "the sandbox could not run the command: {record}\nstderr:\n{}",
            run.err()
        );
        SbRun { run, record }
    }

    /// The tool's stdout, as captured in the record.
    pub fn stdout(&self) -> String {
        self.record["stdout"].as_str().unwrap_or_default().to_string()
    }

    /// The tool's stderr, as captured in the record.
    pub fn stderr(&self) -> String {
        self.record["stderr"].as_str().unwrap_or_default().to_string()
    }

    /// Everything the run printed: the tool's two streams and `airlock`'s own stderr.
    pub fn all_output(&self) -> String {
        format!("{}\n{}\n{}", self.stdout(), self.stderr(), self.run.err())
    }

    pub fn exit_code(&self) -> Option<i64> {
        self.record["exit_code"].as_i64()
    }

    pub fn signal(&self) -> Option<i64> {
        self.record["signal"].as_i64()
    }

    pub fn reason(&self) -> String {
        self.record["reason"].as_str().unwrap_or_default().to_string()
    }

    /// The value of the last `@name=VALUE` line on stdout.
    pub fn marker(&self, name: &str) -> Option<String> {
        let prefix = format!("@{name}=");
        self.stdout().lines().rev().find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
    }

    /// The `@name=N` status a script reported (panics if it did not report one: the script did not get there).
    pub fn status(&self, name: &str) -> i64 {
        let v =
            self.marker(name).unwrap_or_else(|| panic!("the script reported no @{name}= line\n{}", self.describe()));
        v.trim().parse().unwrap_or_else(|_| panic!("@{name}={v} is not a number\n{}", self.describe()))
    }

    /// Asserts the attempt `name` failed (non-zero status).
    pub fn failed(&self, name: &str) -> &Self {
        assert_ne!(self.status(name), 0, "attempt {name} succeeded inside the sandbox\n{}", self.describe());
        self
    }

    /// Asserts the control `name` succeeded (status 0).
    pub fn succeeded(&self, name: &str) -> &Self {
        assert_eq!(self.status(name), 0, "control {name} failed inside the sandbox\n{}", self.describe());
        self
    }

    /// Asserts the run exited normally with `code`.
    pub fn exited(&self, code: i64) -> &Self {
        assert_eq!(self.exit_code(), Some(code), "unexpected end of the run\n{}", self.describe());
        self
    }

    /// Asserts `needle` appears nowhere in the run's output.
    pub fn never_shows(&self, needle: &str, what: &str) -> &Self {
        assert!(!self.all_output().contains(needle), "{what} appeared in the run's output\n{}", self.describe());
        self
    }

    /// The record (without bulky output) and both streams, for failure messages.
    pub fn describe(&self) -> String {
        let mut r = self.record.clone();
        let cut = |v: &mut serde_json::Value| {
            if let Some(s) = v.as_str()
                && s.len() > 4000
            {
                *v = serde_json::Value::String(format!("{}... ({} bytes)", &s[..4000], s.len()));
            }
        };
        cut(&mut r["stdout"]);
        cut(&mut r["stderr"]);
        format!("run record: {r:#}\nairlock stderr:\n{}", self.run.err())
    }
}

/// Host processes whose command line contains `needle` (this test process excluded).
pub fn host_processes_matching(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else { continue };
        let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmd.contains(needle) {
            out.push((pid, cmd));
        }
    }
    out
}

/// What [`HttpServer`] saw.
#[derive(Debug, Default, Clone)]
pub struct Received {
    /// Connections accepted (including ones that sent nothing).
    pub connections: usize,
    /// The request head (and whatever body came with it) of each connection.
    pub requests: Vec<Vec<u8>>,
}

impl Received {
    pub fn nothing(&self) -> bool {
        self.connections == 0 && self.requests.is_empty()
    }
    pub fn text(&self) -> String {
        self.requests.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect::<Vec<_>>().join("\n---\n")
    }
}

/// A tiny HTTP server on 127.0.0.1 (host side) that answers every request with 200 and [`HttpServer::BODY`] and
/// records what it received. It serves at most `max` connections, then only counts further ones.
pub struct HttpServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    received: Arc<Mutex<Received>>,
    handle: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub const BODY: &'static str = "airlock-test-server-says-hello\n";
    /// The server thread gives up on its own after this long, whatever happens.
    const LIFETIME: Duration = Duration::from_secs(300);

    pub fn start(max: usize) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(Mutex::new(Received::default()));
        let served = Arc::new(AtomicUsize::new(0));
        let (s, r) = (Arc::clone(&stop), Arc::clone(&received));
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + Self::LIFETIME;
            loop {
                let stopping = s.load(Ordering::SeqCst) || Instant::now() > deadline;
                // Drain everything queued, also on the last pass so that no connection goes uncounted.
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            r.lock().expect("received").connections += 1;
                            if served.fetch_add(1, Ordering::SeqCst) < max {
                                let req = serve(stream);
                                r.lock().expect("received").requests.push(req);
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                if stopping {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        HttpServer { addr, stop, received, handle: Some(handle) }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// What it received so far (requests whose response was already sent are always included).
    pub fn received(&self) -> Received {
        self.received.lock().expect("received").clone()
    }

    /// Stops the server after counting every connection still queued, and returns what it received.
    pub fn finish(mut self) -> Received {
        self.shutdown();
        self.received()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Reads one request head (bounded in size and time) and answers 200.
fn serve(mut stream: std::net::TcpStream) -> Vec<u8> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    while req.len() < 64 << 10 && !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let body = HttpServer::BODY;
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    let _ = stream.flush();
    req
}
