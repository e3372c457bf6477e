//! Helpers for tests that use the real OS stores: the Secret Service, the kernel keyring, child processes.
#![allow(dead_code)]

use std::process::{Command, Output};

/// Set by scripts/test.sh: the OS-keyring tests fail instead of skipping when something they need is missing.
pub const REQUIRE: &str = "AIRLOCK_REQUIRE_OS_KEYRING";

/// Whether this process is inside a D-Bus session with a Secret Service (scripts/test.sh starts one with an
/// unlocked, throwaway gnome-keyring). Outside one it prints a notice and the test returns (skips); with
/// AIRLOCK_REQUIRE_OS_KEYRING set it fails instead.
pub fn secret_service_session() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        assert!(
            std::env::var_os(REQUIRE).is_none(),
            "AIRLOCK_REQUIRE_OS_KEYRING is set but there is no D-Bus session (run scripts/test.sh)"
        );
        eprintln!("notice: no D-Bus session; SKIPPED a Secret Service backend test (scripts/test.sh runs it)");
        return false;
    }
    true
}

/// Whether `program` runs here; if not, a notice (skip), or a failure under AIRLOCK_REQUIRE_OS_KEYRING.
pub fn have(program: &str, package: &str) -> bool {
    let found = Command::new(program).arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var_os(REQUIRE).is_none(),
            "{program} is missing (Debian package {package}; scripts/test.sh installs it)"
        );
        eprintln!("notice: {program} is not installed (Debian package {package}); SKIPPED");
    }
    found
}

/// A name no other test (or earlier run) uses.
pub fn unique(tag: &str) -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    format!("airlock-test-{tag}-{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

/// Runs `cmd` with `stdin` as its standard input.
pub fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Set in the child of [`in_private_keyrings`].
pub const KEYCTL_CHILD: &str = "AIRLOCK_TEST_KEYCTL_CHILD";

/// Runs the test `child` (whose body starts with `if !keyctl_child() { return }`) re-executed in a new user
/// namespace and a new session keyring: `unshare --user --map-root-user keyctl session - TEST-BINARY`. A user
/// namespace has its own user keyring (`@u`) and persistent keyrings, so nothing here touches the keyrings of the
/// user running the tests. Returns false (skipped) when `keyctl` is missing and that is allowed.
pub fn in_private_keyrings(child: &str) -> bool {
    if !have("keyctl", "keyutils") {
        return false;
    }
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "keyctl", "session", "-"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", child, "--nocapture", "--test-threads=1"])
        .env(KEYCTL_CHILD, "1")
        .output()
        .expect("run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(out.status.success() && stdout.contains("child: ok"), "child {child} failed:\n{stdout}\n{stderr}");
    true
}

/// True in the re-executed child of [`in_private_keyrings`]; the test body returns at once otherwise.
pub fn keyctl_child() -> bool {
    std::env::var_os(KEYCTL_CHILD).is_some()
}

/// Runs `keyctl ARGS` (optionally with stdin) and returns its trimmed stdout; panics on failure.
pub fn keyctl(args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut cmd = Command::new("keyctl");
    cmd.args(args);
    let out = match stdin {
        Some(s) => run_with_stdin(&mut cmd, s),
        None => cmd.output().unwrap(),
    };
    assert!(out.status.success(), "keyctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `keyctl ARGS`, raw: (success, stdout bytes).
pub fn keyctl_raw(args: &[&str]) -> (bool, Vec<u8>) {
    let out = Command::new("keyctl").args(args).output().unwrap();
    (out.status.success(), out.stdout)
}
