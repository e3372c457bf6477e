//! Attack: none needed from the agent. When `${HOME}` or `${WORKSPACE}` (or the target of a symlink in a pattern's
//! literal part) contains a glob character (`/home/j[1]`, `/srv/proj{old}`), the expanded deny entry
//! `${HOME}/.ssh` used to be read as a glob: `[1]` became a character class matching `1`, and the entry lost its
//! "this path and everything below it" meaning. The credential deny and the user's deny list then matched nothing,
//! and a tool allowed to read a parent directory could read `~/.ssh/id_ed25519`.
//!
//! Defence: whether an entry is a glob is decided by what the config's author wrote; text that arrives through a
//! variable or a symlink is a name and is escaped when it ends up inside a glob.

use airlock_policy::{Action, LoadOptions, Request};

use super::{assert_allowed_by, assert_denied_by};
use crate::common::Setup;

const CONFIG: &str = r#"
version = 1

[agents.a]
tools = ["t"]

[tools.t.fs]
read = ["/"]
deny = ["${WORKSPACE}/secrets", "${WORKSPACE}/**/*.key"]
"#;

#[test]
fn deny_entries_under_a_bracketed_home_or_workspace_still_deny() {
    let s = Setup::with_config(CONFIG);
    let root = s.root();
    let home = root.join("ho[m]e");
    let ws = root.join("w{s}");
    for d in [home.join(".ssh"), ws.join("secrets"), ws.join("src")] {
        std::fs::create_dir_all(d).unwrap();
    }
    for f in [home.join(".ssh/id_ed25519"), ws.join("secrets/db.txt"), ws.join("src/a.key"), ws.join("src/a.rs")] {
        std::fs::write(f, "x").unwrap();
    }
    let opts = LoadOptions { profile_flag: None, profile_env: None, workspace: ws.clone(), home: home.clone() };
    let e = airlock_policy::load_engine(&s.config, &opts).unwrap_or_else(|e| panic!("{e:#?}"));
    let read = |p: &std::path::Path| e.decide(&Request::fs("a", "t", Action::FsRead, p.to_str().unwrap())).decision;

    assert_allowed_by(&read(&ws.join("src/a.rs")), "tool.t.fs.read");
    assert_denied_by(&read(&home.join(".ssh/id_ed25519")), "airlock.fs.credentials[fs.read]");
    assert_denied_by(&read(&ws.join("secrets/db.txt")), "tool.t.fs.deny");
    assert_denied_by(&read(&ws.join("src/a.key")), "tool.t.fs.deny");
}

#[test]
fn deny_entry_through_a_symlink_to_a_bracketed_dir_still_denies() {
    let s = Setup::with_config(&CONFIG.replace("${WORKSPACE}/secrets", "${WORKSPACE}/vault"));
    let real = s.root().join("disk[1]");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::write(real.join("db.txt"), "x").unwrap();
    std::os::unix::fs::symlink(&real, s.workspace.join("vault")).unwrap();
    let e = s.engine();
    let d = e.decide(&Request::fs("a", "t", Action::FsRead, &s.ws("vault/db.txt"))).decision;
    assert_denied_by(&d, "tool.t.fs.deny");
}
