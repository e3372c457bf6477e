//! The Python client (`clients/python/airlock_client.py`) against the real daemon: runs its unittest suite
//! (`clients/python/test_airlock_client.py`) with `AIRLOCK_BIN` set to the binary under test. The suite starts its
//! own `airlock serve` on throwaway homes and drives it through the Unix socket and the loopback port.
//!
//! The interpreter is `$AIRLOCK_TEST_PYTHON`, else `python3` (the client needs the standard library only). Without
//! one, the test says so and passes, unless `AIRLOCK_REQUIRE_CLIENTS=1` (set by scripts/test.sh).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

#[test]
fn the_python_client_suite_passes_against_the_real_daemon() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace root");
    let suite = root.join("clients/python/test_airlock_client.py");
    assert!(suite.is_file(), "{} is missing", suite.display());
    let python = std::env::var("AIRLOCK_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    if !Command::new(&python).arg("--version").output().is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("AIRLOCK_REQUIRE_CLIENTS").as_deref() != Ok("1"),
            "{python} is required (run scripts/test.sh)"
        );
        eprintln!("skipping: {python} is not available");
        return;
    }
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "unittest", "-v", "clients/python/test_airlock_client.py"]).current_dir(&root);
    // The suite makes its own homes and environment for airlock; nothing of the developer's (a real home, a token,
    // a passphrase) may reach it. The rest of the environment stays: interpreters such as pyenv's shims need it.
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(|k| k.starts_with("AIRLOCK_") || k == "XDG_DATA_HOME") {
            cmd.env_remove(key);
        }
    }
    cmd.env("AIRLOCK_BIN", env!("CARGO_BIN_EXE_airlock"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null());
    let began = Instant::now();
    let out = cmd.output().expect("run the Python suite");
    let took = began.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the Python client suite failed ({:?}):\n{stdout}\n{stderr}", out.status);
    // unittest reports on stderr: every test ran (a skip of the whole module would also "succeed").
    assert!(stderr.contains("\nOK"), "{stderr}");
    assert!(!stderr.contains("AIRLOCK_BIN is not set"), "{stderr}");
    eprintln!("{stderr}");
    eprintln!("the Python suite took {took:?}");
}
