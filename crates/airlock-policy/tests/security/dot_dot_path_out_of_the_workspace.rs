//! Attack: name a file under an allowed directory and climb out with `..` (`<ws>/src/../../home/.ssh/id_ed25519`),
//! or pad a denied path with `.` and `//` (`<ws>/./secrets//x`) so a text comparison with the rule misses it.
//!
//! Defence: paths are resolved against the real filesystem the way the kernel will open them (`..` after symlinks)
//! and `.` and empty components are dropped, so the decision is made on the canonical path: the credential store is
//! denied by `airlock.fs.credentials`, the tool's deny entry by `tool.shell.fs.deny`, and a plain file outside the
//! workspace by the default deny, with the canonical path in the reason.

use airlock_policy::{Action, Request};

use super::{assert_allowed_by, assert_denied_by};
use crate::common::{Setup, monday_at};

fn read(e: &airlock_policy::Engine, path: &str) -> std::sync::Arc<airlock_policy::Decision> {
    e.decide(&Request::fs("orchestrator", "shell", Action::FsRead, path).at(monday_at(10, 0))).decision
}

#[test]
fn dot_dot_out_of_the_workspace_into_a_credential_store_is_denied() {
    let s = Setup::new();
    let e = s.engine();
    assert_allowed_by(&read(&e, &s.ws("src/main.rs")), "tool.shell.fs.read");
    for spelling in ["src/../../home/.ssh/id_ed25519", "src/./../../home/.ssh//id_ed25519", "../home/.ssh/id_ed25519"] {
        let d = read(&e, &s.ws(spelling));
        assert_denied_by(&d, "airlock.fs.credentials[fs.read]");
        let canonical = s.home.join(".ssh/id_ed25519");
        assert!(d.reason.contains(canonical.to_str().unwrap()), "{spelling}: {}", d.reason);
    }
    // A file that does not exist yet is resolved too (textually, past the last existing directory).
    assert_denied_by(&read(&e, &s.ws("src/../../home/.ssh/new_key")), "airlock.fs.credentials[fs.read]");
}

#[test]
fn dot_dot_to_a_plain_file_outside_the_workspace_is_judged_at_its_canonical_path() {
    let s = Setup::new();
    std::fs::write(s.root().join("etc/hosts"), "x").unwrap();
    let e = s.engine();
    let outside = s.root().join("etc/hosts");
    let d = read(&e, &s.ws("src/../../etc/hosts"));
    assert!(!d.allowed && d.policies.is_empty(), "{d:?}");
    assert_eq!(d.reason, format!("path {} is outside tool shell's read paths", outside.display()));
}

#[test]
fn dot_and_double_slash_spellings_of_a_denied_directory_are_denied() {
    let s = Setup::new();
    std::fs::write(s.workspace.join("secrets/x"), "x").unwrap();
    let e = s.engine();
    for spelling in ["secrets/x", "./secrets//x", "src/../secrets/./x", "secrets/x/", ".//secrets///x"] {
        let d = read(&e, &format!("{}/{spelling}", s.workspace.display()));
        assert_denied_by(&d, "tool.shell.fs.deny");
        assert_eq!(d.reason, format!("path {} is on tool shell's deny list", s.ws("secrets/x")), "{spelling}");
    }
}
