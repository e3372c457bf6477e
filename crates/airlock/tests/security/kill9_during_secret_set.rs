//! Attack (or accident): `kill -9` a writer in the middle of `secret set`, at any instant — while it reads the
//! value, encrypts, writes the temp file, fsyncs or renames. Afterwards the vault must open, every secret
//! confirmed before must be there with its exact value, and the interrupted secret must be either complete or
//! absent, never torn. The next successful write must clean up any temp file the killed writer left.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crate::common::*;

pub const MIN_ITERATIONS: usize = 25;
pub const EXTRA_BUDGET: Duration = Duration::from_secs(20);
pub const MAX_ITERATIONS: usize = 60;

/// Waits for a killed (or finished) child; returns its status and stderr.
pub fn reap(mut child: std::process::Child, feeder: std::thread::JoinHandle<()>) -> (ExitStatus, String) {
    let status = child.wait().expect("wait");
    feeder.join().expect("stdin feeder");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    (status, err)
}

#[test]
fn kill9_during_secret_set() {
    let al = Airlock::new();
    al.init_keyfile();
    let mut confirmed: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..3 {
        let v = random_bytes(48);
        al.set(&format!("SEED{i}"), &v);
        confirmed.push((format!("SEED{i}"), v));
    }
    // How long one 1 MiB `secret set` takes here, so kills land across its whole run.
    let t = Instant::now();
    al.set("MEASURE", &random_bytes(1024 * 1024));
    let took = t.elapsed();
    al.call(["secret", "rm", "MEASURE"]).expect(0);
    let window = took * 5 / 4;

    let start = Instant::now();
    let (mut killed, mut finished, mut survived_kill, mut temps_left) = (0, 0, 0, 0);
    let mut i = 0;
    while i < MIN_ITERATIONS || (start.elapsed() < EXTRA_BUDGET && i < MAX_ITERATIONS) {
        let name = format!("KILLED{i}");
        let value = random_bytes(1024 * 1024);
        let (mut child, feeder) = al.call(["secret", "set", &name, "--raw"]).stdin(&value).spawn();
        std::thread::sleep(random_below(window));
        let _ = child.kill(); // SIGKILL; harmless if it already exited
        let (status, err) = reap(child, feeder);
        match status.code() {
            Some(0) => finished += 1,
            None => killed += 1,
            Some(c) => panic!("iteration {i}: `secret set` failed on its own with exit {c}: {err}"),
        }
        if !al.stale_temps().is_empty() {
            temps_left += 1;
        }

        // The vault opens (CLI and library) with everything confirmed, byte for byte.
        let names = al.names();
        for (n, _) in &confirmed {
            assert!(names.contains(n), "iteration {i}: confirmed secret {n} lost after kill -9: {names:?}");
        }
        let mut v = open_prompt_free(&al.home);
        assert_values(&mut v, &confirmed);
        // The interrupted one: all or nothing.
        let present = names.contains(&name);
        if status.success() {
            assert!(present, "iteration {i}: {name} finished with exit 0 but is missing");
        }
        if present {
            assert!(resolve(&mut v, &name) == value, "iteration {i}: {name} is present but torn");
            if !status.success() {
                survived_kill += 1;
            }
        }
        drop(v);

        // The next successful write cleans up after the killed one.
        let small = random_bytes(40);
        al.set(&format!("AFTER{i}"), &small);
        confirmed.push((format!("AFTER{i}"), small));
        assert!(
            al.stale_temps().is_empty(),
            "iteration {i}: temp files survived a successful write: {:?}",
            al.stale_temps()
        );
        if present {
            // Keep the file small so the test stays fast; the removal is one more confirmed write.
            al.call(["secret", "rm", &name]).expect(0);
        }
        i += 1;
    }
    eprintln!(
        "kill9_during_secret_set: {i} iterations in {:?} (one set took {took:?}): {killed} killed mid-run \
         ({survived_kill} of them had already committed), {finished} finished first, {temps_left} left a temp file",
        start.elapsed()
    );
    assert!(killed >= MIN_ITERATIONS / 4, "too few kills landed while the command ran ({killed} of {i})");
    let mut v = open_prompt_free(&al.home);
    assert_values(&mut v, &confirmed);
}
