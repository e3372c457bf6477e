//! Attack (or accident): `kill -9` during `key rotate` and `key rotate --rewrap` (which re-encrypts every
//! record), interleaved with ordinary writes. A half-applied rotation would leave records under a term the
//! stored keyring no longer has, or a keyring that no longer opens; afterwards every secret must still resolve.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::kill9_during_secret_set::{EXTRA_BUDGET, MAX_ITERATIONS, MIN_ITERATIONS, reap};
use crate::common::*;

fn timed(al: &Airlock, args: &[&str]) -> Duration {
    let t = Instant::now();
    al.call(args).expect(0);
    t.elapsed()
}

#[test]
fn kill9_during_key_rotate() {
    let al = Airlock::new();
    al.init_keyfile();
    let mut confirmed: Vec<(String, Vec<u8>)> = vec![("BIG".into(), random_bytes(1024 * 1024))];
    for i in 0..4 {
        confirmed.push((format!("SMALL{i}"), random_bytes(64)));
    }
    for (n, v) in &confirmed {
        al.set(n, v);
    }
    let rotate_took = timed(&al, &["key", "rotate"]);
    let rewrap_took = timed(&al, &["key", "rotate", "--rewrap"]);

    let start = Instant::now();
    let (mut killed, mut finished) = (0, 0);
    let mut i = 0;
    while i < MIN_ITERATIONS || (start.elapsed() < EXTRA_BUDGET && i < MAX_ITERATIONS) {
        let (args, took): (&[&str], Duration) =
            if i % 2 == 0 { (&["key", "rotate", "--rewrap"], rewrap_took) } else { (&["key", "rotate"], rotate_took) };
        let (mut child, feeder) = al.call(args).spawn();
        std::thread::sleep(random_below(took * 5 / 4));
        let _ = child.kill();
        let (status, err) = reap(child, feeder);
        match status.code() {
            Some(0) => finished += 1,
            None => killed += 1,
            Some(c) => panic!("iteration {i}: {args:?} failed on its own with exit {c}: {err}"),
        }

        // Every record is under a term the keyring still has, and every value resolves.
        let list = al.list();
        let st = al.call(["--json", "status"]).expect(0).json();
        assert_eq!(st["unlocked"], true, "iteration {i}: {st}");
        let terms: Vec<u64> =
            st["terms"].as_array().expect("terms").iter().map(|t| t["id"].as_u64().expect("id")).collect();
        let active: Vec<&Value> =
            st["terms"].as_array().expect("terms").iter().filter(|t| t["active"] == true).collect();
        assert_eq!(active.len(), 1, "iteration {i}: exactly one active term: {st}");
        for s in &list {
            let t = s["term"].as_u64().expect("term");
            assert!(
                terms.contains(&t),
                "iteration {i}: {} is under term {t}, which the keyring lacks ({terms:?})",
                s["name"]
            );
        }
        assert_eq!(list.len(), confirmed.len(), "iteration {i}: secrets lost or invented");
        assert_values(&mut open_prompt_free(&al.home), &confirmed);

        // An interleaved write, which must also clean up any temp file the kill left.
        let v = random_bytes(32);
        al.set(&format!("AFTER{i}"), &v);
        confirmed.push((format!("AFTER{i}"), v));
        assert!(al.stale_temps().is_empty(), "iteration {i}: temp files survived a write: {:?}", al.stale_temps());
        i += 1;
    }
    eprintln!(
        "kill9_during_key_rotate: {i} iterations in {:?} (rotate {rotate_took:?}, rewrap {rewrap_took:?}): \
         {killed} killed mid-run, {finished} finished first",
        start.elapsed()
    );
    assert!(killed >= MIN_ITERATIONS / 4, "too few kills landed while the command ran ({killed} of {i})");
    // Finally, a clean rewrap still works and everything resolves under one term.
    al.call(["key", "rotate", "--rewrap"]).expect(0);
    let st = al.call(["--json", "status"]).expect(0).json();
    assert_eq!(st["terms"].as_array().expect("terms").len(), 1);
    assert_values(&mut open_prompt_free(&al.home), &confirmed);
}
