//! `airlock sealed`: sealed files for git, driven through the real binary. Values go in on stdin and are checked by
//! opening the file with the library; no command may print one. The git test runs the real `git` when there is one.
//!
//! Exit codes (from `main.rs`): 3 cannot unlock, 4 not found, 5 conflict, 6 integrity, 8 invalid input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock_crypto::SecretBytes;
use airlock_vault::backend::sealed_file::{SealedFile, Unlock, Unlocker};
use common::*;

const PASS: &str = "amber-walrus-lattice-42";
const VALUES: [(&str, &str); 3] = [
    ("openai.api_key", "sk-canary-4f1d9a7e2b6c8d0e3f5a7b9c1d2e4f60"),
    ("db.password", "pg-canary-Zq8vX2mN4pL6"),
    ("stripe", "rk-canary-Hq2Wm8Lx4Np6Rt0Yv3Bz"),
];

fn al() -> Airlock {
    let mut al = Airlock::new();
    al.set_base_env("AIRLOCK_SEALED_PASSPHRASE", PASS);
    al
}

fn init(al: &Airlock, file: &Path) -> Run {
    al.call(["sealed", "init"]).arg(file).args(FAST_KDF).expect(0)
}

fn set(al: &Airlock, file: &Path, key: &str, value: &str) -> Run {
    al.call(["sealed", "set"]).arg(file).arg(key).stdin(value.as_bytes()).expect(0)
}

fn verify(al: &Airlock, file: &Path) -> Run {
    al.call(["sealed", "verify"]).arg(file).run()
}

fn open(file: &Path) -> SealedFile {
    let u = Unlocker::new(Unlock::passphrase(|| Ok(SecretBytes::copy_from(PASS.as_bytes()))));
    SealedFile::open(file, &u).expect("the library opens the sealed file")
}

fn line<'a>(text: &'a str, leaf: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(&format!("{leaf} = "))).unwrap_or_else(|| panic!("no {leaf} line:\n{text}"))
}

fn assert_no_values(al: &Airlock, extra: &[&[u8]]) {
    let t = al.transcript();
    for (_, v) in VALUES {
        assert!(!t.windows(v.len()).any(|w| w == v.as_bytes()), "a value was printed");
    }
    for v in extra {
        assert!(!t.windows(v.len()).any(|w| w == *v), "a value was printed");
    }
}

#[test]
fn init_set_list_rm_and_verify_and_no_value_is_ever_printed() {
    let al = al();
    let file = al.path("secrets.toml");
    init(&al, &file).out_has("Created sealed file").out_has("recipient passphrase: passphrase");
    for (k, v) in VALUES {
        set(&al, &file, k, v).out_has(&format!("Added {k}"));
    }
    let f = open(&file);
    for (k, v) in VALUES {
        assert!(f.get(k).unwrap().expose() == v.as_bytes(), "{k} holds something else");
    }
    let text = std::fs::read_to_string(&file).unwrap();
    for (_, v) in VALUES {
        assert!(!text.contains(v), "a value is in the clear in the file");
    }
    let listed = al.call(["--json", "sealed", "list"]).arg(&file).expect(0).json();
    assert_eq!(listed["keys"], serde_json::json!(["db.password", "openai.api_key", "stripe"]));
    verify(&al, &file);
    let r = al.call(["--json", "sealed", "verify"]).arg(&file).expect(0).json();
    assert_eq!((r["ok"].as_bool(), r["report"]["values"].as_u64()), (Some(true), Some(3)));

    // The same value again: nothing written.
    let before = std::fs::read(&file).unwrap();
    set(&al, &file, "stripe", VALUES[2].1).out_has("already has this value");
    assert_eq!(std::fs::read(&file).unwrap(), before);

    al.call(["sealed", "rm"]).arg(&file).arg("stripe").expect(0).out_has("Removed stripe");
    assert_eq!(open(&file).keys(), ["db.password", "openai.api_key"]);

    // Bad input, each with its exit code, none losing anything.
    let before = std::fs::read(&file).unwrap();
    al.call(["sealed", "rm"]).arg(&file).arg("stripe").expect(4).err_has("no key stripe");
    al.call(["sealed", "set"]).arg(&file).arg("empty").stdin(b"\n").expect(8).err_has("empty");
    al.call(["sealed", "set"]).arg(&file).arg("bad key").stdin(b"x").expect(8).err_has("not a dotted path");
    al.call(["sealed", "set"]).arg(&file).arg("db").stdin(b"xxxxxxxx").expect(8).err_has("db is a table");
    al.call(["sealed", "init"]).arg(&file).args(FAST_KDF).expect(5).err_has("already exists");
    al.call(["sealed", "list"]).arg(al.path("nope.toml")).expect(4).err_has("does not exist");
    let wrong = b"wrong-canary-Kp3Lm9Qx";
    al.call(["sealed", "set"])
        .arg(&file)
        .arg("new")
        .env("AIRLOCK_SEALED_PASSPHRASE", "not the passphrase")
        .stdin(wrong)
        .expect(3)
        .err_has("could not unlock")
        .err_has("wrong passphrase");
    al.call(["sealed", "init"])
        .arg(al.path("x.toml"))
        .args(["--recipient", "ghp_notAToken123"])
        .expect(8)
        .err_lacks("ghp_");
    // No passphrase to be had (no variable, no terminal): says which variable, and exits as "cannot unlock".
    al.call(["sealed", "list"])
        .arg(&file)
        .env_remove("AIRLOCK_SEALED_PASSPHRASE")
        .expect(3)
        .err_has("AIRLOCK_SEALED_PASSPHRASE");
    al.call(["sealed", "add-recipient"])
        .arg(&file)
        .arg("passphrase")
        .expect(3)
        .err_has("AIRLOCK_SEALED_NEW_PASSPHRASE");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    // Values never come from arguments: an extra argument is refused without being echoed.
    al.call(["sealed", "set"]).arg(&file).arg("k").arg("sk-canary-argument-value").expect(2).err_lacks("canary");
    assert_no_values(&al, &[wrong]);
}

#[test]
fn verify_fails_naming_the_key_when_envelopes_are_swapped_and_on_any_other_edit() {
    let al = al();
    let file = al.path("secrets.toml");
    init(&al, &file);
    for (k, v) in VALUES {
        set(&al, &file, k, v);
    }
    let good = std::fs::read_to_string(&file).unwrap();
    let (a, b) = (line(&good, "api_key"), line(&good, "stripe"));
    let env = |l: &str| l.split_once(" = ").unwrap().1.to_string();
    let tampered = |text: String| {
        std::fs::write(&file, text).unwrap();
        let r = verify(&al, &file);
        std::fs::write(&file, &good).unwrap();
        r
    };

    // Two envelopes swapped: both keys named.
    let r = tampered(good.replace(a, &format!("api_key = {}", env(b))).replace(b, &format!("stripe = {}", env(a))));
    assert_eq!(r.code, Some(6), "{}", r.err());
    r.err_has("integrity check failed: keys openai.api_key, stripe").err_has("moved from another key");
    // An envelope moved to a new key of its own.
    let r = tampered(good.replace(b, &format!("{b}\nstolen = {}", env(a))));
    assert_eq!(r.code, Some(6));
    r.err_has("key stolen");
    // A value's line deleted: the MAC.
    let r = tampered(good.replace(&format!("{b}\n"), ""));
    assert_eq!(r.code, Some(6));
    r.err_has("MAC does not match").err_has("removed");
    // The metadata edited.
    let r = tampered(good.replace("cipher = \"xchacha20-poly1305\"", "cipher = \"aes-256-gcm\""));
    assert_eq!(r.code, Some(6));
    r.err_has("MAC does not match");
    // A value planted in the clear: named, not shown.
    let r = tampered(good.replace(b, "stripe = \"rk-planted-canary-value\""));
    assert_eq!(r.code, Some(6));
    r.err_has("key stripe").err_has("in the clear").err_lacks("rk-planted");
    // Not TOML any more: the position, not the line.
    let r = tampered(good.replace(b, "stripe = rk-planted-canary-value"));
    assert_eq!(r.code, Some(6));
    r.err_has("not valid TOML").err_lacks("rk-planted");

    assert_eq!(verify(&al, &file).code, Some(0));
    assert_no_values(&al, &[b"rk-planted-canary-value"]);
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn in_git_a_changed_value_is_a_one_line_diff_plus_the_mac() {
    if Command::new("git").arg("--version").output().is_err() {
        eprintln!("git is not installed; skipping the git part of the sealed-file tests");
        return;
    }
    let al = al();
    let repo: PathBuf = al.path("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    let file = repo.join("secrets.toml");
    init(&al, &file);
    for (k, v) in VALUES {
        set(&al, &file, k, v);
    }
    git(&repo, &["add", "secrets.toml"]);
    git(&repo, &["commit", "-q", "-m", "secrets"]);

    // The same value again: git sees nothing.
    set(&al, &file, "db.password", VALUES[1].1);
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");

    set(&al, &file, "db.password", "pg-canary-rotated-Yt7Kw3");
    let diff = git(&repo, &["diff", "--unified=0", "--no-color"]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
        .collect();
    assert_eq!(changed.len(), 4, "{diff}");
    assert!(changed.iter().filter(|l| l[1..].starts_with("password = \"ENC[")).count() == 2, "{diff}");
    assert!(changed.iter().filter(|l| l[1..].starts_with("mac = \"")).count() == 2, "{diff}");
    git(&repo, &["commit", "-qam", "rotate db.password"]);

    // A key added at the root: one new line, plus the mac.
    set(&al, &file, "newkey", "nk-canary-Jp5Vr8Ls2");
    let stat = git(&repo, &["diff", "--numstat"]);
    assert_eq!(stat.trim(), "2\t1\tsecrets.toml", "{stat}");
    verify(&al, &file);
    assert_no_values(&al, &[b"pg-canary-rotated-Yt7Kw3", b"nk-canary-Jp5Vr8Ls2"]);
}

#[test]
fn recipients_are_added_removed_and_replaced_by_rekey() {
    let al = al();
    let file = al.path("secrets.toml");
    let ci = al.path("ci.key");
    al.call(["sealed", "init"])
        .arg(&file)
        .args(["--recipient", "passphrase", "--recipient"])
        .arg(format!("ci=keyfile:{}", ci.display()))
        .args(FAST_KDF)
        .expect(0)
        .out_has("recipient ci: keyfile")
        .err_has("creating key file");
    set(&al, &file, "token", VALUES[0].1);
    // The key file opens it without a passphrase.
    al.call(["--keyfile"])
        .arg(&ci)
        .args(["sealed", "list"])
        .arg(&file)
        .env_remove("AIRLOCK_SEALED_PASSPHRASE")
        .expect(0);

    al.call(["sealed", "add-recipient"])
        .arg(&file)
        .arg("laptop=passphrase")
        .args(FAST_KDF)
        .env("AIRLOCK_SEALED_NEW_PASSPHRASE", "second-passphrase-quokka-19")
        .expect(0)
        .out_has("recipient laptop: passphrase");
    al.call(["sealed", "list"]).arg(&file).env("AIRLOCK_SEALED_PASSPHRASE", "second-passphrase-quokka-19").expect(0);
    let before_remove = std::fs::read_to_string(&file).unwrap();
    al.call(["sealed", "remove-recipient"]).arg(&file).arg("laptop").expect(0).err_has("may have kept its data key");
    al.call(["sealed", "list"]).arg(&file).env("AIRLOCK_SEALED_PASSPHRASE", "second-passphrase-quokka-19").expect(3);
    al.call(["sealed", "remove-recipient"]).arg(&file).arg("laptop").expect(4);
    // Removing a recipient touches no value line.
    let after_remove = std::fs::read_to_string(&file).unwrap();
    assert_eq!(line(&before_remove, "token"), line(&after_remove, "token"));

    // Rekey: a new data key, every value re-encrypted, only the given recipients left.
    let new_key = al.path("new.key");
    al.call(["sealed", "rekey"])
        .arg(&file)
        .arg("--recipient")
        .arg(format!("keyfile:{}", new_key.display()))
        .expect(0)
        .out_has("keyfile-new: keyfile");
    let after = std::fs::read_to_string(&file).unwrap();
    assert_ne!(line(&after_remove, "token"), line(&after, "token"));
    al.call(["--keyfile"]).arg(&ci).args(["sealed", "verify"]).arg(&file).expect(3);
    al.call(["sealed", "verify"]).arg(&file).expect(3).err_has("no recipient that the passphrase can open");
    let r = al.call(["--keyfile"]).arg(&new_key).args(["sealed", "verify"]).arg(&file).expect(0);
    r.out_has("all 1 values open");
    let u = Unlocker::new(Unlock::keyfile(&new_key));
    assert!(SealedFile::open(&file, &u).unwrap().get("token").unwrap().expose() == VALUES[0].1.as_bytes());
    assert_no_values(&al, &[b"second-passphrase-quokka-19", PASS.as_bytes()]);
}
