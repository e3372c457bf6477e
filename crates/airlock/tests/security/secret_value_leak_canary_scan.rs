//! Attack: read secret values from anything Airlock writes besides the encrypted records — stdout, stderr
//! (including error and warning messages), and any file under `AIRLOCK_HOME` (temp files, lock file, the vault
//! itself in the clear).
//!
//! A whole session runs with random canary values (text, GitHub-shaped with a bad checksum so the format
//! warning fires, binary, 1 MiB, rotated, refused values, and the passphrases themselves). Every byte of output
//! and every file under the home, after every command, is searched for each canary raw, in hex and in base64
//! (standard and URL-safe, at every alignment). Long values are searched by 48-byte chunks every 2 KiB.

use std::time::Instant;

use airlock_crypto::random;
use base64::Engine;

use crate::common::*;

struct Session {
    home: std::path::PathBuf,
    needles: NeedleSet,
    /// Findings in files, with the command after which they were seen.
    file_hits: Vec<String>,
    scanned_bytes: u64,
}

impl Session {
    /// Runs one command, then scans every file under the home.
    fn run(&mut self, call: Call<'_>, code: i32) -> Run {
        let r = call.expect(code);
        for (path, bytes) in read_tree(&self.home) {
            self.scanned_bytes += bytes.len() as u64;
            for hit in self.needles.find(&bytes) {
                self.file_hits.push(format!("{hit} in {} after {:?}", path.display(), r.args));
            }
        }
        r
    }
}

fn github_shaped_with_bad_checksum() -> Vec<u8> {
    let random = random_alnum(30);
    let mut sum = airlock_vault::formats::crc32_base62(random.as_bytes());
    sum[5] = if sum[5] == b'z' { b'y' } else { b'z' };
    format!("ghp_{random}{}", String::from_utf8(sum.to_vec()).expect("base62")).into_bytes()
}

#[test]
fn secret_value_leak_canary_scan() {
    let started = Instant::now();
    let pass = format!("pp-{}", random_alnum(29));
    let new_pass = format!("np-{}", random_alnum(29));
    let wrong_pass = format!("wp-{}", random_alnum(29));

    // Stored values (name, value as stored).
    let text1 = random_alnum(40).into_bytes();
    let text2 = random_alnum(40).into_bytes();
    let github = github_shaped_with_bad_checksum();
    let binary = random_bytes(64);
    let big1 = random_bytes(1024 * 1024);
    let big2 = random_bytes(1024 * 1024);
    let basic = random_alnum(24).into_bytes();
    let env_exposed = random_alnum(36).into_bytes();
    // Values offered to commands that fail: they must not be echoed either.
    let refused_dup = random_alnum(40).into_bytes();
    let refused_wrong_pass = random_alnum(40).into_bytes();
    let refused_bad_host = random_alnum(40).into_bytes();
    let refused_bad_name = random_alnum(40).into_bytes();
    let refused_bad_header = random_alnum(40).into_bytes();

    let mut needles = NeedleSet::new();
    for (label, v) in [
        ("TEXT v1", &text1),
        ("TEXT v2", &text2),
        ("GITHUB", &github),
        ("BINARY", &binary),
        ("BIG v1", &big1),
        ("BIG v2", &big2),
        ("BASIC", &basic),
        ("ENV_EXPOSED", &env_exposed),
        ("refused duplicate", &refused_dup),
        ("refused wrong passphrase", &refused_wrong_pass),
        ("refused bad host", &refused_bad_host),
        ("refused bad name", &refused_bad_name),
        ("refused bad header", &refused_bad_header),
    ] {
        needles.add_value(label, v);
    }
    for (label, p) in [("passphrase", &pass), ("new passphrase", &new_pass), ("wrong passphrase", &wrong_pass)] {
        needles.add_value(label, p.as_bytes());
    }
    let al = Airlock::with_passphrase(&pass);
    let mut s = Session { home: al.home.clone(), needles, file_hits: Vec::new(), scanned_bytes: 0 };

    // The session.
    s.run(al.call(["init"]).args(FAST_KDF), 0);
    s.run(
        al.call(["secret", "set", "TEXT", "--host", "api.example.com", "--header", "Authorization: Bearer {}"])
            .stdin(&[&text1[..], b"\n"].concat()),
        0,
    );
    let r = s.run(al.call(["secret", "set", "GITHUB_TOKEN", "--host", "api.github.com"]).stdin(&github), 0);
    r.err_has("checksum"); // the format check looked at the value and said so without quoting it
    s.run(al.call(["secret", "set", "BINARY", "--raw", "--tag", "bin"]).stdin(&binary), 0);
    s.run(al.call(["--json", "secret", "set", "BIG", "--raw", "--host", "*.example.org"]).stdin(&big1), 0);
    s.run(al.call(["secret", "set", "BASIC", "--basic-user", "bob", "--host", "10.0.0.1:8443"]).stdin(&basic), 0);
    s.run(al.call(["secret", "set", "ENV_EXPOSED", "--expose", "env"]).stdin(&env_exposed), 0);
    s.run(al.call(["secret", "rotate", "TEXT"]).stdin(&text2), 0);
    s.run(al.call(["--json", "secret", "rotate", "BIG", "--raw"]).stdin(&big2), 0);
    s.run(al.call(["secret", "pin", "TEXT", "--host", "api2.example.com"]), 0);
    s.run(al.call(["secret", "list"]), 0);
    s.run(al.call(["--json", "secret", "list"]), 0);
    s.run(al.call(["status"]), 0);
    s.run(al.call(["--json", "status"]), 0);
    s.run(al.call(["key", "rotate"]), 0);
    s.run(al.call(["--json", "key", "rotate", "--rewrap"]), 0);
    // failures, human and JSON
    s.run(al.call(["secret", "set", "TEXT"]).stdin(&refused_dup), 5);
    s.run(al.call(["--json", "secret", "set", "TEXT"]).stdin(&refused_dup), 5);
    s.run(al.call(["secret", "set", "NEW"]).env("AIRLOCK_PASSPHRASE", &wrong_pass).stdin(&refused_wrong_pass), 3);
    s.run(al.call(["--json", "secret", "list"]).env("AIRLOCK_PASSPHRASE", &wrong_pass), 3);
    s.run(al.call(["status"]).env("AIRLOCK_PASSPHRASE", &wrong_pass), 0);
    s.run(al.call(["secret", "set", "NEW", "--host", "bad host!"]).stdin(&refused_bad_host), 8);
    s.run(al.call(["--json", "secret", "set", "NEW", "--host", "x/y"]).stdin(&refused_bad_host), 8);
    s.run(al.call(["secret", "set", "bad name"]).stdin(&refused_bad_name), 8);
    s.run(al.call(["secret", "set", "NEW", "--header", "X-Key: none"]).stdin(&refused_bad_header), 8);
    s.run(al.call(["secret", "rotate", "TEXT"]).stdin(&text2), 8); // same as current
    s.run(al.call(["secret", "rotate", "MISSING"]).stdin(&refused_dup), 4);
    s.run(al.call(["secret", "set", "EMPTY"]).stdin(b"\n"), 8);
    // rekey to a new passphrase plus a key file, then use both
    let key = al.path("session.key");
    s.run(
        al.call(["key", "rekey", "--kek", "passphrase", "--kek"])
            .arg(kek_keyfile(&key))
            .args(FAST_KDF)
            .env("AIRLOCK_NEW_PASSPHRASE", &new_pass),
        0,
    );
    s.run(al.call(["secret", "list"]).env("AIRLOCK_PASSPHRASE", &new_pass), 0);
    s.run(al.call(["--json", "status"]).env_remove("AIRLOCK_PASSPHRASE"), 0);
    s.run(al.call(["secret", "rm", "ENV_EXPOSED"]).env_remove("AIRLOCK_PASSPHRASE"), 0);
    s.run(al.call(["secret", "list"]).env_remove("AIRLOCK_PASSPHRASE"), 0);

    // The key file's bytes must not be copied into the home or the output either.
    let keyfile_bytes = std::fs::read(&key).expect("key file");
    s.needles.add_value("key file contents", &keyfile_bytes);
    for (path, bytes) in read_tree(&al.home) {
        for hit in s.needles.find(&bytes) {
            s.file_hits.push(format!("{hit} in {} (final state)", path.display()));
        }
    }
    let transcript = al.transcript();
    let output_hits = s.needles.find(&transcript);

    assert!(s.file_hits.is_empty(), "secret material found in files under AIRLOCK_HOME:\n{}", s.file_hits.join("\n"));
    assert!(output_hits.is_empty(), "secret material found in command output:\n{}", output_hits.join("\n"));

    // Not vacuous: the session really stored the values, ...
    let transcript_text = String::from_utf8_lossy(&transcript);
    assert!(transcript_text.contains("Stored default/BINARY"), "the session ran");
    let mut v = open_prompt_free(&al.home);
    assert_values(
        &mut v,
        &[
            ("TEXT".into(), text2.clone()),
            ("GITHUB_TOKEN".into(), github.clone()),
            ("BINARY".into(), binary.clone()),
            ("BIG".into(), big2.clone()),
            ("BASIC".into(), basic.clone()),
        ],
    );
    assert!(v.resolve_version(&id("TEXT"), 1).expect("v1").expose() == text1.as_slice());
    assert!(v.resolve_version(&id("BIG"), 1).expect("v1").expose() == big1.as_slice());
    drop(v);
    open_with_passphrase(&al.home, &new_pass);
    assert!(s.scanned_bytes > 10 * 1024 * 1024, "the scan covered the vault after every command");

    // ... and the scanner finds each encoding when it is there (inside unrelated bytes, at odd offsets).
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v).into_bytes();
    let b64url = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v).into_bytes();
    let mut probes: Vec<(&str, Vec<u8>)> = vec![
        ("raw", text1.clone()),
        ("hex", hex(&binary).into_bytes()),
        ("HEX", hex(&github).to_ascii_uppercase().into_bytes()),
        ("base64", b64(&basic)),
        ("base64url", b64url(&refused_wrong_pass)),
        ("4 KiB of a 1 MiB value", big1[500_001..500_001 + 4096].to_vec()),
        ("hex of 4 KiB of a 1 MiB value", hex(&big2[777_777..777_777 + 4096]).into_bytes()),
        ("base64 of 4 KiB of a 1 MiB value", b64(&big2[99_999..99_999 + 4096])),
        ("passphrase", pass.clone().into_bytes()),
    ];
    // a value inside a longer base64 stream, at each alignment
    for prefix_len in 1..=3 {
        let mut v = random_bytes(prefix_len);
        v.extend_from_slice(&env_exposed);
        v.extend_from_slice(&random_bytes(5));
        probes.push(("base64 in a stream", b64(&v)));
    }
    for (what, probe) in probes {
        let mut hay = random_bytes(1000 + random::below(100) as usize);
        hay.extend_from_slice(&probe);
        hay.extend_from_slice(&random_bytes(777));
        assert!(!s.needles.find(&hay).is_empty(), "the scanner must find a planted canary ({what})");
    }
    eprintln!(
        "canary scan: {} needles, {} MiB of files and {} KiB of output scanned in {:?}",
        s.needles.len(),
        s.scanned_bytes / (1024 * 1024),
        transcript.len() / 1024,
        started.elapsed()
    );
}
