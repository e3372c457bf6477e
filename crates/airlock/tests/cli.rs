//! Functional and bad-input tests of the real `airlock` binary, run as a subprocess against a throwaway
//! `AIRLOCK_HOME`. Values go in on stdin and are checked by opening the vault with the library.
//!
//! Exit codes (from `main.rs`): 0 ok, 2 usage, 3 cannot unlock, 4 not found, 5 conflict, 6 integrity,
//! 7 busy, 8 invalid input.

mod common;

use std::os::unix::fs::PermissionsExt;

use airlock_vault::{MAX_VALUE_LEN, Vault};
use base64::Engine;
use common::*;
use serde_json::{Value, json};

const PASS: &str = "tidy-otter-quantum-lantern-87";

fn entry<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("{name} not in list: {list:?}"))
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

fn chmod(p: &std::path::Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
}

fn status_json(al: &Airlock) -> Value {
    al.call(["--json", "status"]).expect(0).json()
}

fn term_ids(status: &Value) -> Vec<(u64, bool)> {
    status["terms"]
        .as_array()
        .expect("terms (vault unlocked)")
        .iter()
        .map(|t| (t["id"].as_u64().expect("id"), t["active"].as_bool().expect("active")))
        .collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Functional
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn full_lifecycle() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase().err_lacks(PASS);
    assert!(al.vault_file().exists());
    assert_eq!(mode(&al.vault_file()), 0o600, "vault file must be 0600");
    assert_eq!(mode(&al.home), 0o700, "AIRLOCK_HOME must be 0700");
    assert_eq!(mode(&al.home.join("vault.lock")), 0o600, "the lock file is 0600");

    // set, with a trailing newline as `echo "$TOKEN" |` would send
    let gh1 = random_alnum(40);
    let r = al
        .call(["secret", "set", "GH_TOKEN", "--host", "api.github.com", "--header", "Authorization: Bearer {}"])
        .stdin(format!("{gh1}\n").as_bytes())
        .expect(0);
    assert!(r.out().contains("Stored default/GH_TOKEN (version 1"), "{}", r.out());
    let db = random_alnum(32);
    al.call(["secret", "set", "DB_PASSWORD", "--host", "db.internal:5432"]).stdin(db.as_bytes()).expect(0);

    // list --json: metadata only
    let list = al.list();
    assert_eq!(list.len(), 2);
    let g = entry(&list, "GH_TOKEN");
    assert_eq!(g["workspace"], "default");
    assert_eq!(g["hosts"], json!(["api.github.com"]));
    assert_eq!(g["injection"], json!({"type": "header", "name": "Authorization", "template": "Bearer {}"}));
    assert_eq!(g["current_version"], 1);
    assert_eq!(g["versions"], json!([1]));
    assert_eq!(g["exposure"], "surrogate");
    assert_eq!(g["rotated"], Value::Null);
    assert_eq!(entry(&list, "DB_PASSWORD")["hosts"], json!(["db.internal:5432"]));
    assert_eq!(entry(&list, "DB_PASSWORD")["injection"], Value::Null);
    // and the human table
    let table = al.call(["secret", "list"]).expect(0).out();
    assert!(table.contains("default/GH_TOKEN") && table.contains("header Authorization: Bearer {}"), "{table}");

    // rotate: versions [1, 2], old value kept
    let gh2 = random_alnum(40);
    let r = al.call(["secret", "rotate", "GH_TOKEN"]).stdin(gh2.as_bytes()).expect(0);
    assert!(r.out().contains("now version 2"), "{}", r.out());
    let g = entry(&al.list(), "GH_TOKEN").clone();
    assert_eq!(g["current_version"], 2);
    assert_eq!(g["versions"], json!([1, 2]));
    assert!(g["rotated"].is_u64(), "rotated time recorded: {g}");
    {
        let mut v = open_with_passphrase(&al.home, PASS);
        assert!(resolve(&mut v, "GH_TOKEN") == gh2.as_bytes(), "current value is the rotated one");
        assert!(v.resolve_version(&id("GH_TOKEN"), 1).expect("v1 kept").expose() == gh1.as_bytes());
    }
    // rotating to the same value is refused, and changes nothing
    al.call(["secret", "rotate", "GH_TOKEN"]).stdin(gh2.as_bytes()).expect(8).err_has("same as the current one");
    assert_eq!(entry(&al.list(), "GH_TOKEN")["versions"], json!([1, 2]));

    // pin one more host (normalised to lower case; pinning twice is idempotent)
    al.call(["secret", "pin", "GH_TOKEN", "--host", "Uploads.GitHub.com"]).expect(0);
    al.call(["secret", "pin", "GH_TOKEN", "--host", "uploads.github.com"]).expect(0);
    assert_eq!(entry(&al.list(), "GH_TOKEN")["hosts"], json!(["api.github.com", "uploads.github.com"]));

    // rm
    let r = al.call(["secret", "rm", "DB_PASSWORD"]).expect(0);
    assert!(r.out().contains("Removed default/DB_PASSWORD"), "{}", r.out());
    assert_eq!(al.names(), vec!["GH_TOKEN"]);
    al.call(["secret", "rm", "DB_PASSWORD"]).expect(4).err_has("secret default/DB_PASSWORD not found");

    // status --json
    let st = status_json(&al);
    assert_eq!(st["secrets"], 1);
    assert_eq!(st["unlocked"], true);
    assert_eq!(st["unlock_error"], Value::Null);
    assert_eq!(st["path"], json!(al.vault_file()));
    assert_eq!(st["slots"].as_array().expect("slots").len(), 1);
    assert_eq!(st["slots"][0]["kind"], "passphrase");
    assert_eq!(term_ids(&st), vec![(1, true)]);

    // key rotate: term 2 becomes active, term 1 is kept, old secrets still readable
    let r = al.call(["key", "rotate"]).expect(0);
    assert!(r.out().contains("keyring term 2"), "{}", r.out());
    assert_eq!(term_ids(&status_json(&al)), vec![(1, false), (2, true)]);
    assert_eq!(entry(&al.list(), "GH_TOKEN")["term"], 1, "an old record stays under its term");
    let after = random_alnum(24);
    al.call(["secret", "set", "AFTER_ROTATE"]).stdin(after.as_bytes()).expect(0);
    let list = al.list();
    assert_eq!(entry(&list, "AFTER_ROTATE")["term"], 2, "new writes use the new term");
    assert_eq!(entry(&list, "GH_TOKEN")["versions"], json!([1, 2]));
    let expected =
        vec![("GH_TOKEN".to_string(), gh2.clone().into_bytes()), ("AFTER_ROTATE".into(), after.into_bytes())];
    assert_values(&mut open_with_passphrase(&al.home, PASS), &expected);

    // key rotate --rewrap: everything under term 3, older terms dropped
    al.call(["key", "rotate", "--rewrap"]).expect(0);
    assert_eq!(term_ids(&status_json(&al)), vec![(3, true)]);
    for s in al.list() {
        assert_eq!(s["term"], 3, "rewrapped: {s}");
    }
    {
        let mut v = open_with_passphrase(&al.home, PASS);
        assert_values(&mut v, &expected);
        assert!(v.resolve_version(&id("GH_TOKEN"), 1).expect("v1 survives rewrap").expose() == gh1.as_bytes());
    }

    // key rekey --kek keyfile:PATH: the passphrase slot is gone
    let key = al.path("rekeyed.key");
    let r = al.call(["key", "rekey", "--kek"]).arg(kek_keyfile(&key)).expect(0);
    assert!(r.out().contains("Rekeyed"), "{}", r.out());
    assert_eq!(mode(&key), 0o600, "a new key file is 0600");
    let st = status_json(&al);
    assert_eq!(st["slots"].as_array().expect("slots").len(), 1);
    assert_eq!(st["slots"][0]["kind"], "keyfile");
    let moved = al.path("moved.key");
    std::fs::rename(&key, &moved).expect("move key file");
    al.call(["secret", "list"]).expect(3).err_has("could not unlock the vault").err_has("not available here");
    // --keyfile points at the moved file
    let r = al.call(["--keyfile"]).arg(&moved).args(["--json", "secret", "list"]).env_remove("AIRLOCK_PASSPHRASE");
    assert_eq!(r.expect(0).json().as_array().expect("list").len(), 2);
    // and the recorded path works once the file is back, with no passphrase at all
    std::fs::rename(&moved, &key).expect("move key file back");
    al.call(["secret", "list"]).env_remove("AIRLOCK_PASSPHRASE").expect(0);
    assert_values(&mut open_prompt_free(&al.home), &expected);

    // key rekey --kek passphrase with AIRLOCK_NEW_PASSPHRASE
    let new_pass = "velvet-harbor-cobalt-sprocket-42";
    al.call(["key", "rekey", "--kek", "passphrase"])
        .args(FAST_KDF)
        .env_remove("AIRLOCK_PASSPHRASE")
        .env("AIRLOCK_NEW_PASSPHRASE", new_pass)
        .expect(0)
        .err_lacks(new_pass);
    al.call(["secret", "list"]).env("AIRLOCK_PASSPHRASE", new_pass).expect(0);
    al.call(["secret", "list"]).expect(3).err_has("wrong passphrase"); // the old one
    al.call(["secret", "list"]).env_remove("AIRLOCK_PASSPHRASE").expect(3).err_has("could not unlock"); // key file
    assert_eq!(status_json(&al)["unlocked"], false);
    assert_values(&mut open_with_passphrase(&al.home, new_pass), &expected);
    assert_eq!(mode(&al.vault_file()), 0o600, "still 0600 after many rewrites");
    assert!(al.stale_temps().is_empty());
}

#[test]
fn values_round_trip_exactly() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let big = random_bytes(1024 * 1024);
    let max = random_bytes(MAX_VALUE_LEN);
    // --raw keeps every byte (non-UTF-8, NULs, trailing newline)
    al.call(["secret", "set", "BINARY", "--raw"]).stdin(&all_bytes).expect(0);
    al.call(["secret", "set", "RAW_NL", "--raw"]).stdin(b"keep-my-newline\n").expect(0);
    al.call(["secret", "set", "BIG", "--raw"]).stdin(&big).expect(0);
    al.call(["secret", "set", "MAX", "--raw"]).stdin(&max).expect(0);
    // without --raw exactly one trailing newline (or CRLF) is stripped
    al.call(["secret", "set", "LINES"]).stdin(b"line one\nline two\n\n").expect(0);
    al.call(["secret", "set", "CRLF"]).stdin(b"windows-token\r\n").expect(0);
    al.call(["secret", "set", "NO_NL"]).stdin(b"no-newline-at-all").expect(0);
    // rotate --raw too
    let reversed: Vec<u8> = (0..=255u8).rev().collect();
    al.call(["secret", "rotate", "BINARY", "--raw"]).stdin(&reversed).expect(0);

    let mut v = open_with_passphrase(&al.home, PASS);
    let expected: Vec<(String, Vec<u8>)> = vec![
        ("BINARY".into(), reversed),
        ("RAW_NL".into(), b"keep-my-newline\n".to_vec()),
        ("BIG".into(), big),
        ("MAX".into(), max),
        ("LINES".into(), b"line one\nline two\n".to_vec()),
        ("CRLF".into(), b"windows-token".to_vec()),
        ("NO_NL".into(), b"no-newline-at-all".to_vec()),
    ];
    assert_values(&mut v, &expected);
    assert!(v.resolve_version(&id("BINARY"), 1).expect("v1").expose() == all_bytes.as_slice());
}

#[test]
fn aes_gcm_vault_round_trips() {
    let al = Airlock::with_passphrase(PASS);
    al.call(["init", "--cipher", "aes-256-gcm"]).args(FAST_KDF).expect(0);
    assert_eq!(status_json(&al)["cipher"], "aes-256-gcm");
    let value = random_bytes(300);
    al.set("X", &value);
    al.call(["key", "rotate", "--rewrap"]).expect(0);
    assert_values(&mut open_with_passphrase(&al.home, PASS), &[("X".into(), value)]);
}

// ---------------------------------------------------------------------------------------------------------------
// Bad input: a clear error, the right exit code, and nothing already stored is lost
// ---------------------------------------------------------------------------------------------------------------

/// A passphrase vault holding A, B and C.
fn seeded() -> (Airlock, Vec<(String, Vec<u8>)>) {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    let mut expected = Vec::new();
    for name in ["A", "B", "C"] {
        let v = random_alnum(32).into_bytes();
        al.call(["secret", "set", name, "--host", "api.example.net"]).stdin(&v).expect(0);
        expected.push((name.to_string(), v));
    }
    (al, expected)
}

/// The CLI lists every expected secret and the library reads back every value.
fn assert_intact(al: &Airlock, expected: &[(String, Vec<u8>)]) {
    let names = al.names();
    for (n, _) in expected {
        assert!(names.contains(n), "{n} missing after a failed command: {names:?}");
    }
    assert_eq!(names.len(), expected.len(), "nothing extra stored: {names:?}");
    assert_values(&mut open_with_passphrase(&al.home, PASS), expected);
}

fn vault_bytes(al: &Airlock) -> Vec<u8> {
    std::fs::read(al.vault_file()).expect("read vault")
}

#[test]
fn wrong_passphrase_exit_3() {
    let (al, expected) = seeded();
    let before = vault_bytes(&al);
    let wrong = "not-the-passphrase-at-all";
    al.call(["secret", "list"]).env("AIRLOCK_PASSPHRASE", wrong).expect(3).err_has("wrong passphrase").err_lacks(wrong);
    // a wrong passphrase fails before the value is read: nothing stored
    al.call(["secret", "set", "NEW"]).env("AIRLOCK_PASSPHRASE", wrong).stdin(b"value-1234567890").expect(3);
    al.call(["secret", "rotate", "A"]).env("AIRLOCK_PASSPHRASE", wrong).stdin(b"value-1234567890").expect(3);
    al.call(["key", "rotate"]).env("AIRLOCK_PASSPHRASE", wrong).expect(3).err_has("wrong passphrase");
    // JSON errors on stderr
    let r = al.call(["--json", "secret", "list"]).env("AIRLOCK_PASSPHRASE", wrong).expect(3);
    let e: Value = serde_json::from_slice(&r.stderr).expect("JSON error on stderr");
    assert_eq!(e["error"]["code"], 3);
    assert_eq!(e["error"]["message"], "wrong passphrase");
    // status still works, reports why it is locked, and does not claim to be unlocked
    let st = al.call(["--json", "status"]).env("AIRLOCK_PASSPHRASE", wrong).expect(0).json();
    assert_eq!(st["unlocked"], false);
    assert_eq!(st["unlock_error"], "wrong passphrase");
    // no passphrase at all (and no terminal): exit 3 with a hint
    al.call(["secret", "list"]).env_remove("AIRLOCK_PASSPHRASE").expect(3).err_has("could not unlock");
    assert_eq!(vault_bytes(&al), before, "failed commands must not rewrite the vault");
    assert_intact(&al, &expected);
}

#[test]
fn passphrase_file_must_be_private() {
    let (al, expected) = seeded();
    let f = al.path("pass.txt");
    std::fs::write(&f, format!("{PASS}\n")).expect("write");
    chmod(&f, 0o644);
    al.call(["--passphrase-file"])
        .arg(&f)
        .args(["secret", "list"])
        .env_remove("AIRLOCK_PASSPHRASE")
        .expect(8)
        .err_has("0644");
    chmod(&f, 0o600);
    al.call(["--passphrase-file"]).arg(&f).args(["secret", "list"]).env_remove("AIRLOCK_PASSPHRASE").expect(0);
    assert_intact(&al, &expected);
}

#[test]
fn duplicate_name_exit_5() {
    let (al, expected) = seeded();
    let before = vault_bytes(&al);
    al.call(["secret", "set", "A"])
        .stdin(b"a-different-value-123456")
        .expect(5)
        .err_has("secret default/A already exists")
        .err_has("secret rotate");
    // the same name in another workspace is a different secret
    al.call(["secret", "set", "A", "--workspace", "other"]).stdin(b"another-value-7890abc").expect(0);
    let list = al.list();
    assert_eq!(list.iter().filter(|s| s["name"] == "A").count(), 2);
    assert_ne!(vault_bytes(&al), before);
    al.call(["secret", "rm", "other/A"]).expect(0);
    assert_intact(&al, &expected);
}

#[test]
fn empty_value_exit_8() {
    let (al, expected) = seeded();
    let before = vault_bytes(&al);
    al.call(["secret", "set", "EMPTY"]).stdin(b"").expect(8).err_has("the secret value is empty");
    al.call(["secret", "set", "EMPTY"]).stdin(b"\n").expect(8).err_has("the secret value is empty");
    al.call(["secret", "set", "EMPTY", "--raw"]).stdin(b"").expect(8).err_has("empty");
    al.call(["secret", "rotate", "A"]).stdin(b"\n").expect(8).err_has("empty");
    assert_eq!(vault_bytes(&al), before);
    assert_intact(&al, &expected);
}

#[test]
fn oversized_value_exit_8() {
    let (al, expected) = seeded();
    let before = vault_bytes(&al);
    let limit = format!("the limit is {MAX_VALUE_LEN}");
    al.call(["secret", "set", "HUGE", "--raw"]).stdin(&random_bytes(MAX_VALUE_LEN + 1)).expect(8).err_has(&limit);
    al.call(["secret", "set", "HUGE"]).stdin(&random_bytes(6 * 1024 * 1024)).expect(8).err_has(&limit);
    al.call(["secret", "rotate", "A", "--raw"]).stdin(&random_bytes(MAX_VALUE_LEN + 1)).expect(8).err_has(&limit);
    assert_eq!(vault_bytes(&al), before);
    assert_intact(&al, &expected);
}

#[test]
fn invalid_name_exit_8() {
    let (al, expected) = seeded();
    let before = vault_bytes(&al);
    for bad in ["bad name", "a/b/c", ".hidden", "new\nline", "héllo", "x;rm"] {
        al.call(["secret", "set", bad]).stdin(b"value-1234567890").expect(8).err_has("invalid secret name");
    }
    al.call(["secret", "set", "/x"]).stdin(b"value-1234567890").expect(8).err_has("invalid workspace");
    al.call(["secret", "set", &"N".repeat(129)]).stdin(b"value-1234567890").expect(8).err_has("longer than 128");
    al.call(["secret", "rotate", "bad name"]).stdin(b"value-1234567890").expect(8).err_has("invalid secret name");
    assert_eq!(vault_bytes(&al), before);
    assert_intact(&al, &expected);
}

#[test]
fn invalid_host_exit_8() {
    let (al, expected) = seeded();
    let before = vault_bytes(&al);
    for bad in ["evil.com/path", "*.com", "exa mple.com", "api.example.com:99999", "api.example.com:0", "a..b", ""] {
        al.call(["secret", "set", "NEW", "--host", bad]).stdin(b"value-1234567890").expect(8).err_has("invalid host");
        al.call(["secret", "pin", "A", "--host", bad]).expect(8).err_has("invalid host");
    }
    assert_eq!(vault_bytes(&al), before);
    assert_intact(&al, &expected);
    assert_eq!(entry(&al.list(), "A")["hosts"], json!(["api.example.net"]));
}

#[test]
fn bad_injection_recipe_exit_8() {
    let (al, expected) = seeded();
    let before = vault_bytes(&al);
    al.call(["secret", "set", "NEW", "--header", "Authorization: Bearer"])
        .stdin(b"value-1234567890")
        .expect(8)
        .err_has("invalid injection recipe")
        .err_has("exactly one {}");
    al.call(["secret", "set", "NEW", "--header", "Authorization: {} {}"]).stdin(b"value-1234567890").expect(8);
    al.call(["secret", "set", "NEW", "--header", "Bad Header: {}"])
        .stdin(b"v-1234567890")
        .expect(8)
        .err_has("HTTP token");
    al.call(["secret", "set", "NEW", "--header", "NoColon {}"]).stdin(b"value-1234567890").expect(8);
    al.call(["secret", "set", "NEW", "--query", "a b"]).stdin(b"value-1234567890").expect(8).err_has("URL-safe");
    al.call(["secret", "set", "NEW", "--basic-user", "a:b"]).stdin(b"value-1234567890").expect(8);
    // clap rejects contradictory recipes as a usage error
    al.call(["secret", "set", "NEW", "--header", "X: {}", "--query", "q"]).stdin(b"value-1234567890").expect(2);
    assert_eq!(vault_bytes(&al), before);
    assert_intact(&al, &expected);
}

#[test]
fn key_file_with_mode_0644_is_refused() {
    let al = Airlock::new();
    let key = al.init_keyfile();
    assert_eq!(mode(&key), 0o600);
    let value = random_bytes(64);
    al.set("A", &value);
    chmod(&key, 0o644);
    // every command that needs the key refuses it, says why and how to fix it, with the exit code for insecure
    // permissions (8), as for a loose vault file.
    al.call(["secret", "list"]).expect(8).err_has("has mode 0644").err_has("chmod 600");
    al.call(["secret", "set", "B"]).stdin(b"value-1234567890").expect(8).err_has("0644").err_has("chmod 600");
    al.call(["key", "rotate"]).expect(8).err_has("0644");
    let st = al.call(["--json", "status"]).expect(0).json();
    assert_eq!(st["unlocked"], false);
    assert!(st["unlock_error"].as_str().expect("reason").contains("chmod 600"), "{st}");
    chmod(&key, 0o600);
    assert_eq!(al.names(), vec!["A"]);
    assert_values(&mut open_prompt_free(&al.home), &[("A".into(), value)]);
}

#[test]
fn vault_file_or_home_with_loose_mode_is_refused() {
    let (al, expected) = seeded();
    chmod(&al.vault_file(), 0o644);
    al.call(["secret", "list"]).expect(8).err_has("has mode 0644; expected 0600");
    al.call(["status"]).expect(8).err_has("0644");
    chmod(&al.vault_file(), 0o600);
    chmod(&al.home, 0o777);
    al.call(["secret", "list"]).expect(8).err_has("has mode 0777; expected no write access for group or others");
    chmod(&al.home, 0o700);
    assert_intact(&al, &expected);
}

#[test]
fn init_twice_exit_5() {
    let (al, expected) = seeded();
    let before = vault_bytes(&al);
    al.call(["init"]).args(FAST_KDF).expect(5).err_has("already exists").err_has("refusing to overwrite");
    // a second init with a different slot type must not create its key file either
    let key = al.path("second.key");
    al.call(["init", "--kek"]).arg(kek_keyfile(&key)).expect(5).err_has("already exists");
    assert!(!key.exists(), "a refused init must not leave a key file behind");
    assert_eq!(vault_bytes(&al), before);
    assert_intact(&al, &expected);
}

#[test]
fn commands_on_a_missing_vault_exit_4() {
    let al = Airlock::with_passphrase(PASS);
    let cases: Vec<(Vec<&str>, &[u8])> = vec![
        (vec!["secret", "list"], b""),
        (vec!["secret", "set", "A"], b"value-1234567890"),
        (vec!["secret", "rotate", "A"], b"value-1234567890"),
        (vec!["secret", "rm", "A"], b""),
        (vec!["secret", "pin", "A", "--host", "example.com"], b""),
        (vec!["key", "rotate"], b""),
        (vec!["key", "rekey", "--kek", "passphrase", "--insecure-kdf", "--kdf-memory-mib", "8"], b""),
        (vec!["status"], b""),
    ];
    for (args, stdin) in cases {
        al.call(&args)
            .stdin(stdin)
            .env("AIRLOCK_NEW_PASSPHRASE", "x-y-z-new-pass")
            .expect(4)
            .err_has("no vault at")
            .err_has("airlock init");
    }
    assert!(!al.home.exists(), "commands on a missing vault must not create one");
}

#[test]
fn missing_secret_exit_4() {
    let (al, expected) = seeded();
    al.call(["secret", "rotate", "NOPE"]).stdin(b"value-1234567890").expect(4).err_has("default/NOPE not found");
    al.call(["secret", "pin", "NOPE", "--host", "example.com"]).expect(4).err_has("not found");
    al.call(["secret", "rm", "NOPE"]).expect(4).err_has("not found");
    assert_intact(&al, &expected);
}

#[test]
fn truncated_vault_exit_6_and_restore_loses_nothing() {
    let (al, expected) = seeded();
    let original = vault_bytes(&al);
    let half = &original[..original.len() / 2];
    std::fs::write(al.vault_file(), half).expect("truncate");
    al.call(["secret", "list"]).expect(6).err_has("is truncated");
    al.call(["status"]).expect(6).err_has("truncated");
    al.call(["secret", "set", "NEW"]).stdin(b"value-1234567890").expect(6).err_has("truncated");
    al.call(["key", "rotate"]).expect(6);
    al.call(["init"]).args(FAST_KDF).expect(5); // a damaged vault is still not overwritten
    assert_eq!(vault_bytes(&al), half, "a damaged vault is left as it is");
    // truncated to nothing, or inside the magic line
    std::fs::write(al.vault_file(), b"").expect("truncate");
    al.call(["secret", "list"]).expect(6).err_has("truncated");
    std::fs::write(al.vault_file(), b"airlock-va").expect("truncate");
    al.call(["secret", "list"]).expect(6).err_has("truncated");
    std::fs::write(al.vault_file(), &original).expect("restore");
    assert_intact(&al, &expected);
}

#[test]
fn bit_flipped_vault_exit_6_and_restore_loses_nothing() {
    let (al, expected) = seeded();
    let original = vault_bytes(&al);
    let mut flipped = original.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    std::fs::write(al.vault_file(), &flipped).expect("flip");
    al.call(["secret", "list"]).expect(6).err_has("corrupt").err_has("checksum mismatch");
    al.call(["secret", "set", "NEW"]).stdin(b"value-1234567890").expect(6);
    assert_eq!(vault_bytes(&al), flipped);
    // not a vault at all
    std::fs::write(al.vault_file(), b"hello world\n").expect("write");
    al.call(["secret", "list"]).expect(6).err_has("is not an Airlock vault file");
    std::fs::write(al.vault_file(), &original).expect("restore");
    assert_intact(&al, &expected);
}

#[test]
fn swapped_record_ciphertexts_exit_6_naming_the_record() {
    let (al, expected) = seeded();
    let original = vault_bytes(&al);
    let (magic, body, trailer) = split_vault(&original);
    let parsed: Value = serde_json::from_slice(&body).expect("body is JSON");
    let recs = parsed["records"].as_array().expect("records");
    assert_eq!((recs[1]["name"].as_str(), recs[2]["name"].as_str()), (Some("B"), Some("C")));
    let (eb, ec) = (recs[1]["envelope"].as_str().expect("envelope"), recs[2]["envelope"].as_str().expect("envelope"));
    let text = String::from_utf8(body.clone()).expect("body is UTF-8");
    assert_eq!((text.matches(eb).count(), text.matches(ec).count()), (1, 1));
    let swapped = text.replace(eb, "\u{0}SWAP\u{0}").replace(ec, eb).replace("\u{0}SWAP\u{0}", ec);
    assert_ne!(swapped, text);
    std::fs::write(al.vault_file(), rebuild_vault(&magic, swapped.as_bytes(), &trailer)).expect("write");
    // the unkeyed damage check passes: only the keys can tell
    Vault::open(&al.home).expect("checksum recomputed, so the file parses");
    al.call(["secret", "list"])
        .expect(6)
        .err_has("integrity check failed: record default/B")
        .err_has("does not belong to this record");
    al.call(["secret", "set", "NEW"]).stdin(b"value-1234567890").expect(6).err_has("record default/B");
    al.call(["key", "rotate", "--rewrap"]).expect(6);
    // status still shows what it knows, but fails: a health check must not pass on a tampered vault
    al.call(["status"]).expect(6).out_has("state: locked").err_has("record default/B");
    std::fs::write(al.vault_file(), &original).expect("restore");
    assert_intact(&al, &expected);
}

#[test]
fn removed_or_reordered_records_exit_6() {
    let (al, expected) = seeded();
    let original = vault_bytes(&al);
    let (magic, body, trailer) = split_vault(&original);
    let parsed: Value = serde_json::from_slice(&body).expect("body is JSON");
    // drop record B
    let mut dropped = parsed.clone();
    dropped["records"].as_array_mut().expect("records").remove(1);
    let dropped = serde_json::to_vec(&dropped).expect("json");
    std::fs::write(al.vault_file(), rebuild_vault(&magic, &dropped, &trailer)).expect("write");
    al.call(["secret", "list"]).expect(6).err_has("HMAC does not match");
    // swap the order of A and C (each still carries its own envelope)
    let mut reordered = parsed.clone();
    reordered["records"].as_array_mut().expect("records").swap(0, 2);
    let reordered = serde_json::to_vec(&reordered).expect("json");
    std::fs::write(al.vault_file(), rebuild_vault(&magic, &reordered, &trailer)).expect("write");
    al.call(["secret", "list"]).expect(6).err_has("integrity check failed");
    std::fs::write(al.vault_file(), &original).expect("restore");
    assert_intact(&al, &expected);
}

// ---------------------------------------------------------------------------------------------------------------
// Warnings
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn weak_passphrase_warns_strong_does_not() {
    let weak = Airlock::with_passphrase("password1");
    weak.init_passphrase().err_has("weak passphrase").err_lacks("password1");
    let strong = Airlock::with_passphrase(PASS);
    strong.init_passphrase().err_lacks("weak passphrase");
    // rekey checks the new passphrase too
    strong
        .call(["key", "rekey", "--kek", "passphrase"])
        .args(FAST_KDF)
        .env("AIRLOCK_NEW_PASSPHRASE", "password1")
        .expect(0)
        .err_has("weak passphrase");
}

fn github_token(valid_checksum: bool) -> String {
    let random = random_alnum(30);
    let mut sum = airlock_vault::formats::crc32_base62(random.as_bytes());
    if !valid_checksum {
        sum[0] = if sum[0] == b'A' { b'B' } else { b'A' };
    }
    format!("ghp_{random}{}", String::from_utf8(sum.to_vec()).expect("base62"))
}

#[test]
fn value_format_warnings() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    let gh = ["--host", "api.github.com"];
    let r = al.call(["secret", "set", "API_KEY"]).stdin(b"changeme\n").expect(0);
    r.err_has("warning: default/API_KEY").err_has("placeholder");
    let bad = github_token(false);
    let r = al.call(["secret", "set", "GITHUB_TOKEN"]).args(gh).stdin(bad.as_bytes()).expect(0);
    r.err_has("warning: default/GITHUB_TOKEN").err_has("checksum").err_lacks(&bad).err_lacks(&bad[4..34]);
    let good = github_token(true);
    let r = al.call(["secret", "set", "GITHUB_TOKEN_2"]).args(gh).stdin(good.as_bytes()).expect(0);
    r.err_lacks("warning");
    // rotate warns too
    al.call(["secret", "rotate", "GITHUB_TOKEN_2"]).stdin(github_token(false).as_bytes()).expect(0).err_has("checksum");
    // a warning never blocks: the values are stored as given
    let mut v = open_with_passphrase(&al.home, PASS);
    assert!(resolve(&mut v, "API_KEY") == b"changeme");
    assert!(resolve(&mut v, "GITHUB_TOKEN") == bad.as_bytes());
}

// ---------------------------------------------------------------------------------------------------------------
// Demo, KEK slots, KDF parameters
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn demo_runs_every_step_and_each_behaves_as_shown() {
    let al = Airlock::new();
    let r = al.call(["demo"]).expect(0);
    let out = r.out();
    let passed = out.lines().filter(|l| l.starts_with("PASS ")).count();
    assert_eq!(passed, 11, "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    // What each step shows is what happened: spot-check the evidence lines, not just the verdicts.
    for shown in [
        "upstream: the Authorization header matched the real key",
        "(exfiltration: ",
        "upstream paste.example.net: never contacted",
        "ssrf: metadata.example.com: address 169.254.169.254",
        "tool: read ~/notes.txt: allowed",
        "github_token = [REDACTED:",
        "verify: failed at record",
        "0 occurrences (raw, base64 and hex)",
    ] {
        assert!(out.contains(shown), "missing {shown:?}:\n{out}");
    }
    assert!(!out.contains('\x1b'), "no colour when stdout is not a terminal");
    let dir = out.lines().find_map(|l| l.strip_prefix("Throwaway home: ")).and_then(|l| l.split(' ').next());
    let dir = std::path::Path::new(dir.expect("the demo names its home"));
    assert!(!dir.exists(), "the throwaway home is deleted: {}", dir.display());
    assert!(!al.home.exists(), "the demo uses its own throwaway home, never AIRLOCK_HOME");
}

#[test]
fn env_kek_slot() {
    let var = "AIRLOCK_TEST_KEK";
    let key = base64::engine::general_purpose::STANDARD.encode(random_bytes(32));
    let mut al = Airlock::new();
    al.set_base_env(var, &key);
    al.call(["init", "--kek", "env:AIRLOCK_TEST_KEK"]).expect(0);
    let st = status_json(&al);
    assert_eq!(st["slots"][0]["kind"], "env");
    assert_eq!(st["unlocked"], true);
    let value = random_bytes(100);
    al.set("TOKEN", &value);
    assert_eq!(al.names(), vec!["TOKEN"]);
    // a different key: exit 3
    let other = base64::engine::general_purpose::STANDARD.encode(random_bytes(32));
    al.call(["secret", "list"]).env(var, &other).expect(3).err_has("could not unlock").err_has("$AIRLOCK_TEST_KEK");
    al.call(["secret", "list"]).env(var, "not base64!").expect(3).err_has("AIRLOCK_TEST_KEK");
    // unset: exit 3 naming the variable
    al.call(["secret", "list"]).env_remove(var).expect(3).err_has("$AIRLOCK_TEST_KEK").err_has("not available");
    // the right key still works and the value is intact
    al.call(["secret", "list"]).expect(0);
    let r = al.call(["secret", "rotate", "TOKEN", "--raw"]).stdin(&random_bytes(100)).expect(0);
    assert!(r.out().contains("now version 2"));
    let init_without = Airlock::new();
    init_without
        .call(["init", "--kek", "env:AIRLOCK_TEST_KEK"])
        .expect(8)
        .err_has("AIRLOCK_TEST_KEK")
        .err_has("not set");
}

#[test]
fn default_argon2id_parameters() {
    let al = Airlock::with_passphrase(PASS);
    let r = al.call(["init"]).expect(0);
    r.err_lacks("below the recommended");
    assert!(r.out().contains("passphrase (argon2id m=64 MiB t=3 p=4)"), "{}", r.out());
    let value = random_alnum(40);
    al.call(["secret", "set", "DEFAULT_KDF"]).stdin(value.as_bytes()).expect(0);
    assert_eq!(al.names(), vec!["DEFAULT_KDF"]);
    al.call(["secret", "list"]).env("AIRLOCK_PASSPHRASE", "wrong-wrong-wrong").expect(3).err_has("wrong passphrase");
    assert_values(&mut open_with_passphrase(&al.home, PASS), &[("DEFAULT_KDF".into(), value.into_bytes())]);
}

#[test]
fn low_kdf_memory_needs_insecure_kdf() {
    let al = Airlock::with_passphrase(PASS);
    al.call(["init", "--kdf-memory-mib", "8"]).expect(8).err_has("below the 64 MiB minimum").err_has("--insecure-kdf");
    assert!(!al.vault_file().exists());
    // rekey applies the same rule
    al.init_passphrase().err_has("below the recommended 64 MiB");
    al.call(["key", "rekey", "--kek", "passphrase", "--kdf-memory-mib", "8"])
        .env("AIRLOCK_NEW_PASSPHRASE", "another-long-pass-phrase-99")
        .expect(8)
        .err_has("64 MiB minimum");
    // parameters the algorithm cannot take are refused too
    let fresh = Airlock::with_passphrase(PASS);
    fresh.call(["init", "--kdf-iterations", "0"]).expect(8).err_has("argon2");
}

#[test]
fn usage_errors_exit_2() {
    let al = Airlock::with_passphrase(PASS);
    al.call(["secret", "frobnicate"]).expect(2);
    al.call(["init", "--cipher", "rot13"]).expect(2);
    al.call(Vec::<&str>::new()).expect(2);
    al.call(["secret", "pin", "A"]).expect(2); // --host is required
    // no AIRLOCK_HOME, no XDG_DATA_HOME, no HOME: nowhere to put state
    al.call(["secret", "list"]).env_remove("AIRLOCK_HOME").expect(2).err_has("set AIRLOCK_HOME");
    // an empty AIRLOCK_HOME counts as unset
    al.call(["secret", "list"]).env("AIRLOCK_HOME", "").expect(2).err_has("set AIRLOCK_HOME");
    assert!(!al.home.exists());
}
