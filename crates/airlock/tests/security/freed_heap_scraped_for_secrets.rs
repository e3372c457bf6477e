//! Attack: read a process's freed heap (a later memory-disclosure bug, a heap dump by root, swap) looking for
//! copies of secrets that were freed without being wiped: buffers that grew by moving while reading a value from
//! stdin, or the passphrase-strength estimator's internal copies of a new passphrase.
//!
//! The spy (`freehook.c`, preloaded) inspects every block as it is freed. Airlock's wiping global allocator must
//! leave it nothing to find.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

fn build_spy(dir: &Path) -> PathBuf {
    let so = dir.join("freehook.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/security/freehook.c");
    let out = Command::new("cc").args(["-shared", "-fPIC", "-O1", "-o"]).arg(&so).arg(&src).output().expect("run cc");
    assert!(out.status.success(), "building the spy failed: {}", String::from_utf8_lossy(&out.stderr));
    so
}

fn run_spied(spy: &Path, home: &Path, canary: &str, env: &[(&str, &str)], args: &[&str], stdin: &[u8]) -> String {
    let mut child = Command::new(BIN)
        .env_clear()
        .env("AIRLOCK_HOME", home)
        .env("LD_PRELOAD", spy)
        .env("CANARY", canary)
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?} failed: {err}");
    err
}

#[test]
fn freed_heap_scraped_for_secrets_finds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let spy = build_spy(tmp.path());
    let home = tmp.path().join("home");
    let pass = format!("canary-passphrase-{}", random_alnum(24));
    let with_pass = [("AIRLOCK_PASSPHRASE", pass.as_str())];

    // The spy itself works: a program that frees a copy of the canary without wiping it is caught. (Python
    // allocates strings this large with malloc and frees them unwiped.)
    let probe = Command::new("python3")
        .args(["-c", "import os\ns = os.environ['CANARY'] * 64\ndel s"])
        .env("LD_PRELOAD", &spy)
        .env("CANARY", "canary-for-the-spy-self-test")
        .output()
        .expect("python3");
    assert!(String::from_utf8_lossy(&probe.stderr).contains("[freehook]"), "the spy caught nothing: {probe:?}");

    // A new passphrase goes through zxcvbn, which copies it into many allocations of its own.
    let err = run_spied(&spy, &home, &pass, &with_pass, &["init", "--insecure-kdf", "--kdf-memory-mib", "8"], b"");
    assert!(!err.contains("[freehook]"), "init left the passphrase in freed heap:\n{err}");

    // A 100 kB value read from stdin (the buffer would grow several times).
    let canary = format!("canary-value-{}", random_alnum(32));
    let mut value = canary.clone().into_bytes();
    value.extend(random_alnum(100_000).into_bytes());
    let err = run_spied(&spy, &home, &canary, &with_pass, &["secret", "set", "BIG"], &value);
    assert!(!err.contains("[freehook]"), "secret set left the value in freed heap:\n{err}");

    let mut rotated = canary.clone().into_bytes();
    rotated.extend(random_alnum(60_000).into_bytes());
    for args in [&["secret", "rotate", "BIG"][..], &["secret", "list"], &["key", "rotate", "--rewrap"], &["status"]] {
        let err = run_spied(&spy, &home, &canary, &with_pass, args, &rotated);
        assert!(!err.contains("[freehook]"), "{args:?} left the value in freed heap:\n{err}");
    }
}
