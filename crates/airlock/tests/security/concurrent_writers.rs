//! Attack (or accident): several Airlock processes write the same vault at once. Without the write lock and the
//! re-read inside it, the last writer would silently drop the others' changes (lost update).

use std::collections::BTreeSet;

use crate::common::*;

/// Starts every call at once, then waits for all; asserts each exited 0.
fn run_all(al: &Airlock, calls: Vec<(Vec<String>, Vec<u8>)>) {
    let children: Vec<_> =
        calls.into_iter().map(|(args, stdin)| (args.clone(), al.call(&args).stdin(&stdin).spawn())).collect();
    for (args, (child, feeder)) in children {
        let out = child.wait_with_output().expect("wait");
        feeder.join().expect("stdin feeder");
        assert_eq!(out.status.code(), Some(0), "concurrent {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn eight_concurrent_sets_all_land() {
    let al = Airlock::new();
    al.init_keyfile();
    // Some bulk, so each write takes long enough to overlap with the others.
    let bulk = random_bytes(512 * 1024);
    al.set("BULK", &bulk);
    let values: Vec<(String, Vec<u8>)> = (0..8).map(|i| (format!("W{i}"), random_bytes(4096))).collect();
    run_all(&al, values.iter().map(|(n, v)| (s(&["secret", "set", n, "--raw"]), v.clone())).collect());
    let names: BTreeSet<String> = al.names().into_iter().collect();
    let expected: BTreeSet<String> = values.iter().map(|(n, _)| n.clone()).chain(["BULK".to_string()]).collect();
    assert_eq!(names, expected, "every concurrent set is in the vault");
    let mut v = open_prompt_free(&al.home);
    assert_values(&mut v, &values);
    assert_values(&mut v, &[("BULK".into(), bulk)]);
    assert!(al.stale_temps().is_empty());
}

#[test]
fn four_concurrent_rotations_all_land() {
    let al = Airlock::new();
    al.init_keyfile();
    al.set("BULK", &random_bytes(512 * 1024));
    let v1 = random_bytes(64);
    al.set("R", &v1);
    let new_values: Vec<Vec<u8>> = (0..4).map(|_| random_bytes(64)).collect();
    run_all(&al, new_values.iter().map(|v| (s(&["secret", "rotate", "R", "--raw"]), v.clone())).collect());
    let r = al.list().into_iter().find(|s| s["name"] == "R").expect("R listed");
    assert_eq!(r["current_version"], 5, "four rotations of version 1 make version 5: {r}");
    assert_eq!(r["versions"], serde_json::json!([1, 2, 3, 4, 5]));
    // Every rotated value is kept exactly once, in some order, and the current one is the last.
    let mut v = open_prompt_free(&al.home);
    assert!(v.resolve_version(&id("R"), 1).expect("v1").expose() == v1.as_slice());
    let mut seen: Vec<Vec<u8>> =
        (2..=5).map(|n| v.resolve_version(&id("R"), n).expect("kept").expose().to_vec()).collect();
    assert!(resolve(&mut v, "R") == seen[3]);
    seen.sort();
    let mut want = new_values.clone();
    want.sort();
    assert!(seen == want, "versions 2-5 are exactly the four rotated values");
}

#[test]
fn writers_and_key_rotations_interleave() {
    let al = Airlock::new();
    al.init_keyfile();
    al.set("BULK", &random_bytes(256 * 1024));
    let values: Vec<(String, Vec<u8>)> = (0..6).map(|i| (format!("M{i}"), random_bytes(256))).collect();
    let mut calls: Vec<(Vec<String>, Vec<u8>)> =
        values.iter().map(|(n, v)| (s(&["secret", "set", n, "--raw"]), v.clone())).collect();
    calls.insert(2, (s(&["key", "rotate", "--rewrap"]), Vec::new()));
    calls.insert(5, (s(&["key", "rotate"]), Vec::new()));
    run_all(&al, calls);
    assert_eq!(al.list().len(), 7);
    assert_values(&mut open_prompt_free(&al.home), &values);
    let st = al.call(["--json", "status"]).expect(0).json();
    assert_eq!(st["generation"], 2 + 6 + 2, "init + BULK + 6 sets + 2 rotations, each its own generation: {st}");
}

#[test]
fn concurrent_inits_exactly_one_wins() {
    let al = Airlock::new();
    let keys: Vec<std::path::PathBuf> = (0..4).map(|i| al.path(&format!("init{i}.key"))).collect();
    let children: Vec<_> = keys.iter().map(|k| al.call(["init", "--kek"]).arg(kek_keyfile(k)).spawn()).collect();
    let mut winners = Vec::new();
    for (i, (child, feeder)) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("wait");
        feeder.join().expect("stdin feeder");
        match out.status.code() {
            Some(0) => winners.push(i),
            Some(5) => assert!(String::from_utf8_lossy(&out.stderr).contains("already exists")),
            other => panic!("init {i} exited {other:?}: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one concurrent init creates the vault");
    // The vault unlocks with the winner's key file, and the losers left no key files behind.
    let st = al.call(["--json", "status"]).expect(0).json();
    assert_eq!(st["unlocked"], true);
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(k.exists(), winners.contains(&i), "key file {i} exists only for the winner");
    }
    let v = random_bytes(64);
    al.set("AFTER_INIT_RACE", &v);
    assert_values(&mut open_prompt_free(&al.home), &[("AFTER_INIT_RACE".into(), v)]);
}
