//! Attack: plant a symlink in the workspace that points at a credential store (`<ws>/notes.txt -> ~/.ssh/id_ed25519`,
//! `<ws>/cfg -> ~/.aws`), then read or overwrite it through the allowed workspace path.
//!
//! Defence: requests are resolved through symlinks before the decision, so the path judged is the target, which is
//! under the built-in credential deny (`airlock.fs.credentials`); a symlink to an ordinary workspace file stays
//! readable.

use airlock_policy::{Action, Request};

use super::{assert_allowed_by, assert_denied_by};
use crate::common::{Setup, monday_at};

#[test]
fn reading_or_writing_through_a_symlink_to_a_key_is_denied_as_a_credential_store() {
    let s = Setup::new();
    std::os::unix::fs::symlink(s.home.join(".ssh/id_ed25519"), s.workspace.join("notes.txt")).unwrap();
    std::os::unix::fs::symlink(s.home.join(".ssh/id_ed25519"), s.workspace.join("out/notes.txt")).unwrap();
    std::os::unix::fs::symlink(s.workspace.join("src/main.rs"), s.workspace.join("main-link.rs")).unwrap();
    let e = s.engine();
    let decide = |tool: &str, action: Action, path: &str| {
        e.decide(&Request::fs("orchestrator", tool, action, path).at(monday_at(10, 0))).decision
    };
    assert_allowed_by(&decide("shell", Action::FsRead, &s.ws("main-link.rs")), "tool.shell.fs.read");
    let key = s.home.join(".ssh/id_ed25519");
    let read = decide("shell", Action::FsRead, &s.ws("notes.txt"));
    assert_denied_by(&read, "airlock.fs.credentials[fs.read]");
    assert_eq!(
        read.reason,
        format!("path {} is a credential store; no tool may touch it (fs.protect_credentials)", key.display())
    );
    // `editor` may write anywhere in the workspace, `shell` in out/: neither may write through the links.
    assert_denied_by(&decide("editor", Action::FsWrite, &s.ws("notes.txt")), "airlock.fs.credentials[fs.write]");
    assert_denied_by(&decide("shell", Action::FsWrite, &s.ws("out/notes.txt")), "airlock.fs.credentials[fs.write]");
}

#[test]
fn symlinked_directory_into_a_credential_store_is_denied_for_new_files_too() {
    let s = Setup::new();
    std::fs::create_dir_all(s.home.join(".aws")).unwrap();
    std::os::unix::fs::symlink(s.home.join(".aws"), s.workspace.join("cfg")).unwrap();
    let e = s.engine();
    let d = e
        .decide(&Request::fs("orchestrator", "editor", Action::FsWrite, &s.ws("cfg/credentials")).at(monday_at(10, 0)))
        .decision;
    assert_denied_by(&d, "airlock.fs.credentials[fs.write]");
    assert!(d.reason.contains(s.home.join(".aws/credentials").to_str().unwrap()), "{}", d.reason);
}
