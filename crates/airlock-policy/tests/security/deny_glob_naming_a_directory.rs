//! Attack: the config denies a directory by glob (`**/.git`, `${WORKSPACE}/*/secrets`) or masks one out of an
//! allow list (`!**/.aws`); the agent reads a file inside it (`.git/config`, `secrets/db.txt`). A glob used to be
//! tested against the requested path only, so the directory itself was denied but everything in it was not.
//!
//! Defence: a glob on a deny list or a `!` mask also covers everything below a path it matches, as a plain path
//! entry does. (Allow globs are unchanged: widening an allow is not a fix.)

use airlock_policy::{Action, Request};

use super::{assert_allowed_by, assert_denied_by};
use crate::common::Setup;

const CONFIG: &str = r#"
version = 1

[agents.a]
tools = ["t"]

[tools.t.fs]
read = ["${WORKSPACE}", "!**/.aws"]
deny = ["**/.git", "${WORKSPACE}/*/secrets"]
"#;

#[test]
fn files_inside_a_denied_or_masked_directory_are_denied() {
    let s = Setup::with_config(CONFIG);
    for d in ["app/secrets/nested", "app/.aws", "app/src"] {
        std::fs::create_dir_all(s.workspace.join(d)).unwrap();
    }
    for f in ["app/secrets/nested/db.txt", "app/.aws/credentials", "app/src/main.rs"] {
        std::fs::write(s.workspace.join(f), "x").unwrap();
    }
    let e = s.engine();
    let read = |rel: &str| e.decide(&Request::fs("a", "t", Action::FsRead, &s.ws(rel))).decision;

    assert_allowed_by(&read("app/src/main.rs"), "tool.t.fs.read");
    assert_denied_by(&read(".git"), "tool.t.fs.deny");
    assert_denied_by(&read(".git/config"), "tool.t.fs.deny");
    assert_denied_by(&read("app/secrets/nested/db.txt"), "tool.t.fs.deny");
    let masked = read("app/.aws/credentials");
    assert!(!masked.allowed, "{masked:?}");
    assert!(masked.reason.contains("excluded"), "{masked:?}");
}
