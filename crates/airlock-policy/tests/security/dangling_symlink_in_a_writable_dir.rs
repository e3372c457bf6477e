//! Attack: in a directory the tool may write (`<ws>/out`), create a symlink to a file that does not exist yet
//! outside it (`<ws>/out/link -> /etc/cron.d/evil`), then ask to write `<ws>/out/link`: `open(O_CREAT)` follows the
//! link and creates the target.
//!
//! Defence: a dangling symlink is followed by hand during normalisation, so the write is judged as a write to the
//! target: outside the write paths (default deny, reason naming the target), or into a credential store (denied by
//! `airlock.fs.credentials`); a real new file in `out/` stays writable.

use airlock_policy::{Action, Request};

use super::{assert_allowed_by, assert_denied_by};
use crate::common::{Setup, monday_at};

fn write(e: &airlock_policy::Engine, path: &str) -> std::sync::Arc<airlock_policy::Decision> {
    e.decide(&Request::fs("orchestrator", "shell", Action::FsWrite, path).at(monday_at(10, 0))).decision
}

#[test]
fn write_through_a_dangling_link_is_judged_as_the_target_outside() {
    let s = Setup::new();
    std::os::unix::fs::symlink("/etc/cron.d/evil", s.workspace.join("out/link")).unwrap();
    let e = s.engine();
    assert_allowed_by(&write(&e, &s.ws("out/new.txt")), "tool.shell.fs.write");
    let d = write(&e, &s.ws("out/link"));
    assert!(!d.allowed, "{d:?}");
    assert!(!d.policies.iter().any(|p| p == "tool.shell.fs.write"), "{d:?}");
    assert_eq!(d.reason, "path /etc/cron.d/evil is outside tool shell's write paths");
}

#[test]
fn dangling_link_into_a_credential_store_is_denied_by_the_credential_forbid() {
    let s = Setup::new();
    std::os::unix::fs::symlink(s.home.join(".ssh/authorized_keys"), s.workspace.join("out/keys")).unwrap();
    // Relative targets are taken from the link's own directory.
    std::os::unix::fs::symlink("../../home/.ssh/authorized_keys2", s.workspace.join("out/rel")).unwrap();
    // A chain: a dangling link to another dangling link.
    std::os::unix::fs::symlink(s.workspace.join("out/keys"), s.workspace.join("out/chain")).unwrap();
    let e = s.engine();
    for (link, target) in
        [("out/keys", "authorized_keys"), ("out/rel", "authorized_keys2"), ("out/chain", "authorized_keys")]
    {
        let d = write(&e, &s.ws(link));
        assert_denied_by(&d, "airlock.fs.credentials[fs.write]");
        assert!(d.reason.contains(s.home.join(".ssh").join(target).to_str().unwrap()), "{link}: {}", d.reason);
    }
}
