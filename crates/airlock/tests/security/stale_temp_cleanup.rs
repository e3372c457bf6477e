//! Attack (or accident): a writer killed between creating its temp file and renaming it leaves
//! `.vault.airlock.tmp.*` behind — a full (encrypted) copy of the vault that would pile up forever. The next
//! successful write must remove it, and must leave unrelated files alone.

use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use super::kill9_during_secret_set::reap;
use crate::common::*;

fn plant(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).expect("plant");
    f.write_all(bytes).expect("write");
}

#[test]
fn planted_stale_temp_is_removed_by_next_write() {
    let al = Airlock::new();
    al.init_keyfile();
    let a = random_bytes(100);
    al.set("A", &a);
    let vault = std::fs::read(al.vault_file()).expect("vault");
    let half = al.home.join(".vault.airlock.tmp.4242.deadbeef");
    plant(&half, &vault[..vault.len() / 2]);
    plant(&al.home.join(".vault.airlock.tmp.1.00000000"), b"");
    let unrelated = [al.home.join("notes.txt"), al.home.join("vault.airlock.bak"), al.home.join(".vault.airlock.tmpx")];
    for u in &unrelated {
        plant(u, b"keep me");
    }
    // A leftover temp does not stop reads.
    assert_eq!(al.names(), vec!["A"]);
    let b = random_bytes(100);
    al.set("B", &b);
    assert!(al.stale_temps().is_empty(), "stale temps survived a write: {:?}", al.stale_temps());
    for u in &unrelated {
        assert_eq!(std::fs::read(u).expect("unrelated file kept"), b"keep me", "{} must be left alone", u.display());
    }
    assert_values(&mut open_prompt_free(&al.home), &[("A".into(), a), ("B".into(), b)]);
}

#[test]
fn temp_left_by_kill9_is_removed_by_next_write() {
    let al = Airlock::new();
    al.init_keyfile();
    let mut confirmed = Vec::new();
    for i in 0..3 {
        let v = random_bytes(1024 * 1024);
        al.set(&format!("BIG{i}"), &v);
        confirmed.push((format!("BIG{i}"), v));
    }
    // Each write rewrites ~4 MB; the temp file exists from its creation to the rename near the end.
    let t = Instant::now();
    al.set("MEASURE", b"measure-measure-measure");
    let took = t.elapsed();
    al.call(["secret", "rm", "MEASURE"]).expect(0);

    let start = Instant::now();
    let mut caught = 0;
    let mut attempts = 0;
    while attempts < 40 && start.elapsed() < Duration::from_secs(20) && caught < 2 {
        attempts += 1;
        let (mut child, feeder) =
            al.call(["secret", "set", &format!("K{attempts}"), "--raw"]).stdin(b"0123456789abcdef").spawn();
        std::thread::sleep(took / 2 + random_below(took * 3 / 5));
        let _ = child.kill();
        let (status, err) = reap(child, feeder);
        assert!(status.code().is_none() || status.success(), "set failed on its own: {err}");
        if al.stale_temps().is_empty() {
            continue;
        }
        caught += 1;
        // The vault is the old or the new one, never the temp's partial content.
        assert!(al.names().len() >= 3);
        let v = random_bytes(16);
        al.set(&format!("CLEAN{attempts}"), &v);
        confirmed.push((format!("CLEAN{attempts}"), v));
        assert!(al.stale_temps().is_empty(), "a temp left by kill -9 survived the next write: {:?}", al.stale_temps());
    }
    eprintln!("temp_left_by_kill9: {caught} kill(s) left a temp file in {attempts} attempts (one set took {took:?})");
    assert_values(&mut open_prompt_free(&al.home), &confirmed);
    // Whatever the kills left, one more write leaves nothing behind.
    al.set("FINAL", b"final-final-final");
    assert!(al.stale_temps().is_empty());
}
