//! The OS secret backends against the real stores, with real peers:
//! - `keyring://`: gnome-keyring's Secret Service, in the private D-Bus session that scripts/test.sh starts (with
//!   AIRLOCK_REQUIRE_OS_KEYRING=1, so these fail there rather than skip), and `secret-tool` (libsecret) as the
//!   other program sharing its items;
//! - `keyctl://`: the kernel keyring, each test re-executed in its own user namespace and session keyring so the
//!   keyrings of the user running the tests are never touched, and the `keyctl` CLI as the other program;
//! - `env://`: the process environment (a re-executed child given the variables) and `.env` files.

#[path = "common/os.rs"]
mod os;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use airlock_crypto::SecretBytes;
use airlock_vault::backend::env::EnvBackend;
use airlock_vault::backend::keyctl::{KeyctlBackend, KeyctlRing};
use airlock_vault::backend::keyring::KeyringBackend;
use airlock_vault::backend::{BackendError, Expect, Locator, SecretBackend};
use airlock_vault::formats::Finding;
use os::*;

fn secret(v: &[u8]) -> SecretBytes {
    SecretBytes::copy_from(v)
}

// ---------------------------------------------------------------------------------------------------------------
// Secret Service
// ---------------------------------------------------------------------------------------------------------------

fn kr(service: &str, user: &str) -> Locator {
    Locator::Keyring { service: service.into(), user: user.into() }
}

#[test]
fn keyring_write_read_replace_list_and_delete() {
    if !secret_service_session() {
        return;
    }
    let b = KeyringBackend::new().expect("connect to the Secret Service");
    let service = unique("svc");
    let (a, c) = (kr(&service, "alice"), kr(&service, "carol"));

    assert!(matches!(b.read(&a), Err(BackendError::NotFound(l)) if l == a.to_string()));
    assert_eq!(b.write(&a, &secret(b"first-value-1"), Expect::Absent).unwrap(), None);
    assert_eq!(b.read(&a).unwrap().value.expose(), b"first-value-1");
    let e = b.write(&a, &secret(b"second-value-2"), Expect::Absent).unwrap_err();
    assert!(matches!(&e, BackendError::Conflict { locator, .. } if *locator == a.to_string()), "{e}");
    assert_eq!(b.read(&a).unwrap().value.expose(), b"first-value-1", "a refused write changed nothing");
    let e = b.write(&a, &secret(b"second-value-2"), Expect::Version(1)).unwrap_err();
    assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
    b.write(&a, &secret(b"second-value-2"), Expect::Any).unwrap();
    assert_eq!(b.read(&a).unwrap().value.expose(), b"second-value-2");

    // Any bytes, NUL and invalid UTF-8 included.
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    b.write(&c, &secret(&binary), Expect::Any).unwrap();
    assert_eq!(b.read(&c).unwrap().value.expose(), &binary[..]);

    assert_eq!(b.list(&service).unwrap(), ["alice", "carol"]);
    assert!(b.list(&unique("empty")).unwrap().is_empty());
    assert!(matches!(b.list(""), Err(BackendError::Invalid { .. })));
    let e = b.write(&a, &secret(b""), Expect::Any).unwrap_err();
    assert!(matches!(e, BackendError::Invalid { .. }), "{e}");

    b.delete(&a).unwrap();
    assert!(matches!(b.read(&a), Err(BackendError::NotFound(_))));
    assert!(matches!(b.delete(&a), Err(BackendError::NotFound(_))));
    assert_eq!(b.list(&service).unwrap(), ["carol"]);
    b.delete(&c).unwrap();
    assert!(b.list(&service).unwrap().is_empty());
}

#[test]
fn keyring_items_of_secret_tool_are_read_and_ours_are_read_by_secret_tool() {
    if !secret_service_session() || !have("secret-tool", "libsecret-tools") {
        return;
    }
    let b = KeyringBackend::new().unwrap();
    let service = unique("interop");
    // secret-tool stores stdin as it is.
    let out = run_with_stdin(
        Command::new("secret-tool").args(["store", "--label=airlock test", "service", &service, "username", "theirs"]),
        b"stored-by-secret-tool-7",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(b.read(&kr(&service, "theirs")).unwrap().value.expose(), b"stored-by-secret-tool-7");

    b.write(&kr(&service, "ours"), &secret(b"stored-by-airlock-8"), Expect::Any).unwrap();
    let out = Command::new("secret-tool").args(["lookup", "service", &service, "username", "ours"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout, b"stored-by-airlock-8");

    // Replacing theirs keeps it one item, which secret-tool then reads.
    b.write(&kr(&service, "theirs"), &secret(b"replaced-by-airlock-9"), Expect::Any).unwrap();
    let out = Command::new("secret-tool").args(["lookup", "service", &service, "username", "theirs"]).output().unwrap();
    assert_eq!(out.stdout, b"replaced-by-airlock-9");
    assert_eq!(b.list(&service).unwrap(), ["ours", "theirs"]);

    let out = Command::new("secret-tool").args(["clear", "service", &service]).output().unwrap();
    assert!(out.status.success());
    assert!(matches!(b.read(&kr(&service, "ours")), Err(BackendError::NotFound(_))));
}

#[test]
fn keyring_refuses_to_guess_between_two_matching_items() {
    if !secret_service_session() || !have("secret-tool", "libsecret-tools") {
        return;
    }
    let b = KeyringBackend::new().unwrap();
    let service = unique("ambiguous");
    for (extra, value) in [("a", &b"first-candidate-1"[..]), ("b", b"second-candidate-2")] {
        let out = run_with_stdin(
            Command::new("secret-tool").args([
                "store",
                "--label=x",
                "service",
                &service,
                "username",
                "u",
                "extra",
                extra,
            ]),
            value,
        );
        assert!(out.status.success());
    }
    let l = kr(&service, "u");
    for e in [
        b.read(&l).unwrap_err(),
        b.write(&l, &secret(b"third-value-3"), Expect::Any).unwrap_err(),
        b.delete(&l).unwrap_err(),
    ] {
        let s = e.to_string();
        assert!(matches!(e, BackendError::Invalid { .. }) && s.contains("refusing to guess"), "{s}");
        assert!(s.contains(&l.to_string()) && !s.contains("candidate"), "{s}");
    }
    Command::new("secret-tool").args(["clear", "service", &service]).output().unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Kernel keyring
// ---------------------------------------------------------------------------------------------------------------

fn kc(description: &str) -> Locator {
    Locator::Keyctl { description: description.into() }
}

#[test]
fn keyctl_write_read_replace_list_and_delete_in_every_keyring() {
    in_private_keyrings("child_keyctl_round_trip_in_every_keyring");
}

#[test]
fn child_keyctl_round_trip_in_every_keyring() {
    if !keyctl_child() {
        return;
    }
    for ring in [KeyctlRing::User, KeyctlRing::Session, KeyctlRing::UserSession, KeyctlRing::Persistent] {
        let b = KeyctlBackend::new(ring);
        let (a, c) = (kc(&format!("airlock:{ring}:a")), kc(&format!("airlock:{ring}:c")));
        let shown = format!("{a} (in {ring})");
        assert!(matches!(b.read(&a), Err(BackendError::NotFound(l)) if l == shown), "{ring}");
        b.write(&a, &secret(b"first-value-1"), Expect::Absent).unwrap_or_else(|e| panic!("{ring}: {e}"));
        assert_eq!(b.read(&a).unwrap().value.expose(), b"first-value-1", "{ring}");
        let e = b.write(&a, &secret(b"second-value-2"), Expect::Absent).unwrap_err();
        assert!(matches!(e, BackendError::Conflict { .. }), "{ring}: {e}");
        let e = b.write(&a, &secret(b"second-value-2"), Expect::Version(3)).unwrap_err();
        assert!(matches!(e, BackendError::Unsupported { .. }), "{ring}: {e}");
        b.write(&a, &secret(b"second-value-2"), Expect::Any).unwrap();
        assert_eq!(b.read(&a).unwrap().value.expose(), b"second-value-2", "{ring}");
        // The largest user key, in any bytes.
        let big: Vec<u8> = (0..32767u32).map(|i| (i % 251) as u8).collect();
        b.write(&c, &secret(&big), Expect::Any).unwrap();
        assert_eq!(b.read(&c).unwrap().value.expose(), &big[..], "{ring}");

        let prefix = format!("airlock:{ring}:");
        assert_eq!(b.list(&prefix).unwrap(), [format!("{prefix}a"), format!("{prefix}c")], "{ring}");
        b.delete(&a).unwrap();
        assert!(matches!(b.read(&a), Err(BackendError::NotFound(_))), "{ring}");
        assert!(matches!(b.delete(&a), Err(BackendError::NotFound(_))), "{ring}");
        assert_eq!(b.list(&prefix).unwrap(), [format!("{prefix}c")], "{ring}");
        // Written again after a delete: a fresh key, readable.
        b.write(&a, &secret(b"third-value-3"), Expect::Absent).unwrap();
        assert_eq!(b.read(&a).unwrap().value.expose(), b"third-value-3", "{ring}");
        b.delete(&a).unwrap();
        b.delete(&c).unwrap();
    }
    println!("child: ok");
}

#[test]
fn keyctl_keys_of_the_keyctl_cli_are_read_and_ours_are_read_by_it() {
    in_private_keyrings("child_keyctl_cli_interop");
}

#[test]
fn child_keyctl_cli_interop() {
    if !keyctl_child() {
        return;
    }
    let b = KeyctlBackend::new(KeyctlRing::User);
    // `keyctl session -` made a session keyring without @u in it, as a systemd service has: the backend still
    // reads what a script put in @u.
    let theirs = keyctl(&["padd", "user", "app:theirs", "@u"], Some(b"written-by-keyctl-1"));
    assert_eq!(b.read(&kc("app:theirs")).unwrap().value.expose(), b"written-by-keyctl-1");
    assert_eq!(b.list("app:").unwrap(), ["app:theirs"]);

    // The CLI reads keys it possesses: link @u into the session keyring, as a login session does.
    keyctl(&["link", "@u", "@s"], None);
    b.write(&kc("app:ours"), &secret(b"written-by-airlock-2"), Expect::Absent).unwrap();
    let id = keyctl(&["search", "@u", "user", "app:ours"], None);
    assert_eq!(keyctl_raw(&["pipe", &id]), (true, b"written-by-airlock-2".to_vec()));
    assert!(keyctl(&["rdescribe", &id], None).starts_with("user;"), "a user key");

    // Replacing their key updates it in place: same key id, new payload.
    b.write(&kc("app:theirs"), &secret(b"replaced-by-airlock-3"), Expect::Any).unwrap();
    assert_eq!(keyctl(&["search", "@u", "user", "app:theirs"], None), theirs);
    assert_eq!(keyctl_raw(&["pipe", &theirs]), (true, b"replaced-by-airlock-3".to_vec()));
    // And the CLI's update is what the backend reads next.
    keyctl(&["pupdate", &theirs], Some(b"updated-by-keyctl-4"));
    assert_eq!(b.read(&kc("app:theirs")).unwrap().value.expose(), b"updated-by-keyctl-4");

    // A delete is seen by the CLI.
    b.delete(&kc("app:theirs")).unwrap();
    assert!(!keyctl_raw(&["search", "@u", "user", "app:theirs"]).0);
    keyctl(&["unlink", &id, "@u"], None);
    assert!(matches!(b.read(&kc("app:ours")), Err(BackendError::NotFound(_))));
    println!("child: ok");
}

#[test]
fn keyctl_descriptions_the_wrapper_cannot_describe_are_read_but_not_listed() {
    in_private_keyrings("child_keyctl_odd_descriptions");
}

#[test]
fn child_keyctl_odd_descriptions() {
    if !keyctl_child() {
        return;
    }
    let b = KeyctlBackend::new(KeyctlRing::Session);
    // linux-keyutils 0.2 describes keys through a 512-byte buffer (and panics past it), and cuts at `;`.
    let long = format!("odd:{}", "l".repeat(600));
    keyctl(&["padd", "user", &long, "@s"], Some(b"long-description-value"));
    keyctl(&["padd", "user", "odd:semi;colon", "@s"], Some(b"semicolon-value"));
    keyctl(&["padd", "user", "odd:plain", "@s"], Some(b"plain-value"));
    assert_eq!(b.read(&kc(&long)).unwrap().value.expose(), b"long-description-value");
    assert_eq!(b.read(&kc("odd:semi;colon")).unwrap().value.expose(), b"semicolon-value");
    assert_eq!(b.list("odd:").unwrap(), ["odd:plain"]);
    println!("child: ok");
}

// ---------------------------------------------------------------------------------------------------------------
// Environment and .env
// ---------------------------------------------------------------------------------------------------------------

const ENV_CHILD: &str = "AIRLOCK_TEST_ENV_CHILD";
/// A GitHub token whose checksum is wrong (one character changed from a valid one).
const BAD_GH: &str = "ghp_fIkRGaBu5PeKsznMzXQOg3kETH1Sgy2oIfSC";
const GOOD_GH: &str = "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";

fn env(name: &str) -> Locator {
    Locator::Env { name: name.into() }
}

#[test]
fn env_process_values_are_read_checked_and_never_shown() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_env_process", "--nocapture", "--test-threads=1"])
        .env(ENV_CHILD, "1")
        .env("AIRLOCK_T_GITHUB_TOKEN", BAD_GH)
        .env("AIRLOCK_T_GOOD_GITHUB_TOKEN", GOOD_GH)
        .env("AIRLOCK_T_API_KEY", "changeme")
        .env("AIRLOCK_T_EMPTY", "")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.contains("child: ok"), "{stdout}\n{stderr}");
    for v in [BAD_GH, GOOD_GH, "fIkRGaBu5"] {
        assert!(!stdout.contains(v) && !stderr.contains(v), "a value was printed");
    }
}

#[test]
fn child_env_process() {
    if std::env::var_os(ENV_CHILD).is_none() {
        return;
    }
    let b = EnvBackend::process();
    assert_eq!(b.read(&env("AIRLOCK_T_GITHUB_TOKEN")).unwrap().value.expose(), BAD_GH.as_bytes());
    let findings = b.check(&env("AIRLOCK_T_GITHUB_TOKEN")).unwrap();
    assert!(matches!(findings[..], [Finding::Malformed { provider: "GitHub", .. }]), "{findings:?}");
    assert_eq!(b.check(&env("AIRLOCK_T_GOOD_GITHUB_TOKEN")).unwrap(), []);
    let findings = b.check(&env("AIRLOCK_T_API_KEY")).unwrap();
    assert!(findings.iter().any(|f| matches!(f, Finding::Placeholder(_))), "{findings:?}");
    let e = b.read(&env("AIRLOCK_T_EMPTY")).unwrap_err();
    assert!(matches!(e, BackendError::Invalid { .. }) && e.to_string().contains("empty"), "{e}");
    assert!(matches!(b.read(&env("AIRLOCK_T_UNSET")), Err(BackendError::NotFound(_))));
    assert_eq!(
        b.list("AIRLOCK_T_").unwrap(),
        ["AIRLOCK_T_API_KEY", "AIRLOCK_T_EMPTY", "AIRLOCK_T_GITHUB_TOKEN", "AIRLOCK_T_GOOD_GITHUB_TOKEN"]
    );
    // Everything a caller would print: findings, warnings, errors, Debug.
    let mut shown = format!("{b:?} {:?} {}", b.read(&env("AIRLOCK_T_GITHUB_TOKEN")).unwrap(), b.warning().unwrap());
    for f in b.check(&env("AIRLOCK_T_GITHUB_TOKEN")).unwrap() {
        shown += &f.to_string();
    }
    shown += &b.write(&env("AIRLOCK_T_GITHUB_TOKEN"), &secret(b"x"), Expect::Any).unwrap_err().to_string();
    println!("{shown}");
    assert!(!shown.contains("fIkRGaBu5"));
    println!("child: ok");
}

fn dotenv(dir: &tempfile::TempDir, text: &str, mode: u32) -> std::path::PathBuf {
    let p = dir.path().join(".env");
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

#[test]
fn dotenv_values_are_read_listed_and_checked_and_edits_are_seen() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "# app settings\nexport GITHUB_TOKEN={BAD_GH}\nOPENAI_API_KEY=\"<your key here>\"\nDB_PASSWORD='Zq8#mL2!vR9@wX4$'\nEMPTY=\n"
    );
    let p = dotenv(&dir, &text, 0o600);
    let b = EnvBackend::dotenv(&p).unwrap();
    assert_eq!(b.path(), Some(p.as_path()));
    assert_eq!(b.read(&env("DB_PASSWORD")).unwrap().value.expose(), b"Zq8#mL2!vR9@wX4$");
    assert_eq!(b.list("").unwrap(), ["DB_PASSWORD", "EMPTY", "GITHUB_TOKEN", "OPENAI_API_KEY"]);
    assert_eq!(b.list("DB_").unwrap(), ["DB_PASSWORD"]);
    assert!(matches!(b.check(&env("GITHUB_TOKEN")).unwrap()[..], [Finding::Malformed { provider: "GitHub", .. }]));
    assert!(b.check(&env("OPENAI_API_KEY")).unwrap().contains(&Finding::Placeholder("a template to fill in")));
    assert_eq!(b.check(&env("DB_PASSWORD")).unwrap(), []);
    assert!(matches!(b.read(&env("EMPTY")), Err(BackendError::Invalid { .. })));
    let e = b.read(&env("MISSING")).unwrap_err();
    assert!(matches!(&e, BackendError::NotFound(l) if l.contains("env://MISSING") && l.contains(".env")), "{e}");
    for e in [
        b.write(&env("DB_PASSWORD"), &secret(b"new-value-1"), Expect::Any).unwrap_err(),
        b.delete(&env("X")).unwrap_err(),
    ] {
        assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
    }
    let w = b.warning().unwrap();
    assert!(w.contains("plain text") && w.contains(&p.display().to_string()) && !w.contains("chmod"), "{w}");

    // The file is read again on every read.
    std::fs::write(&p, "DB_PASSWORD='an-edited-value'\n").unwrap();
    assert_eq!(b.read(&env("DB_PASSWORD")).unwrap().value.expose(), b"an-edited-value");
    assert!(matches!(b.read(&env("GITHUB_TOKEN")), Err(BackendError::NotFound(_))));
    // A broken edit is refused with its line, and nothing from it is shown.
    std::fs::write(&p, "A=1\nDB_PASSWORD=broken value-secret-ish\n").unwrap();
    let e = b.read(&env("A")).unwrap_err().to_string();
    assert!(e.contains("line 2") && !e.contains("secret-ish"), "{e}");
}

#[test]
fn dotenv_permissions_refuse_writable_by_others_and_warn_on_readable() {
    let dir = tempfile::tempdir().unwrap();
    let p = dotenv(&dir, "TOKEN='a-value-1234'\n", 0o644);
    let b = EnvBackend::dotenv(&p).unwrap();
    let w = b.warning().unwrap();
    assert!(w.contains("mode 0644") && w.contains("chmod 600"), "{w}");
    assert!(b.read(&env("TOKEN")).is_ok());

    for mode in [0o666, 0o646, 0o602] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = EnvBackend::dotenv(&p).unwrap_err().to_string();
        assert!(e.contains(&format!("mode 0{mode:o}")) && e.contains("refusing"), "{e}");
        // Also when it became so after the backend was opened.
        let e = b.read(&env("TOKEN")).unwrap_err().to_string();
        assert!(e.contains("refusing"), "{e}");
    }
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o660)).unwrap();
    assert!(EnvBackend::dotenv(&p).unwrap().warning().unwrap().contains("its group can read or write it"));

    // Not a regular file: a FIFO would block the read forever.
    let fifo = dir.path().join("fifo.env");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let e = EnvBackend::dotenv(&fifo).unwrap_err().to_string();
    assert!(e.contains("not a regular file"), "{e}");
    assert!(matches!(EnvBackend::dotenv(dir.path().join("absent.env")), Err(BackendError::NotFound(_))));
}

#[test]
fn dotenv_owned_by_another_user_is_refused() {
    if nix::unistd::geteuid().as_raw() != 0 {
        eprintln!("notice: not root, cannot give a file away; SKIPPED");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dotenv(&dir, "TOKEN='a-value-1234'\n", 0o600);
    std::os::unix::fs::chown(&p, Some(65534), None).unwrap();
    let e = EnvBackend::dotenv(&p).unwrap_err().to_string();
    assert!(e.contains("belongs to user id 65534") && e.contains("refusing"), "{e}");
}

#[test]
fn dotenv_syntax_errors_at_open_name_the_line_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = dotenv(&dir, "OK=1\n\n# c\nTOKEN=\"sk-live-abcdef$HOME\"\n", 0o600);
    let e = EnvBackend::dotenv(&p).unwrap_err();
    let s = e.to_string();
    assert!(matches!(e, BackendError::Invalid { .. }) && s.contains("line 4") && s.contains("not expanded"), "{s}");
    assert!(!s.contains("abcdef") && s.contains(&p.display().to_string()), "{s}");
}
