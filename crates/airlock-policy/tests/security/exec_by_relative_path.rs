//! Attack: run `./sh` (or `bin/sh`, `../sh`): a relative path is resolved against whatever the current directory is
//! when the tool runs, which the agent may choose, so an allowed name could run an agent-written file.
//!
//! Defence: a program is a bare name looked up in the configured search path, or an absolute path; a relative path
//! is refused before any rule is consulted, while the bare name `sh` is allowed.

use airlock_policy::Request;

use super::assert_allowed_by;
use crate::common::{Setup, monday_at};

#[test]
fn relative_program_paths_are_refused() {
    let s = Setup::new();
    // A runnable file called `sh` in the workspace, in case the current directory is the workspace.
    std::fs::write(s.workspace.join("sh"), "#!/bin/true\n").unwrap();
    let e = s.engine();
    let run = |p: &str| e.decide(&Request::exec("orchestrator", "shell", p).at(monday_at(10, 0))).decision;
    assert_allowed_by(&run("sh"), "tool.shell.exec.allow");
    for program in ["./sh", "../sh", "bin/sh", "usr/bin/sh", "./ls"] {
        let d = run(program);
        assert!(!d.allowed, "{program}: {d:?}");
        assert!(d.policies.is_empty(), "{program}: {d:?}");
        assert!(d.reason.starts_with("invalid program"), "{program}: {}", d.reason);
        assert!(d.reason.contains("relative path"), "{program}: {}", d.reason);
    }
}
