//! Attack: hand a file tool a percent-encoded traversal (`<ws>/%2e%2e/x`, `<ws>/src%2f..%2f..%2fhome`), which is a
//! harmless-looking name inside the workspace to the policy but a climb out of it to a tool that URL-decodes later.
//!
//! Defence: file paths are not URL-encoded, so a component containing `%2e`, `%2f`, `%5c` or `%00` in any case is
//! refused before any rule is consulted; the request is denied with that reason, never allowed as a name inside the
//! workspace.

use airlock_policy::{Action, Request};

use super::assert_allowed_by;
use crate::common::{Setup, monday_at};

#[test]
fn percent_encoded_dots_and_slashes_in_a_path_are_refused() {
    let s = Setup::new();
    let e = s.engine();
    let decide = |action: Action, path: &str| {
        e.decide(&Request::fs("orchestrator", "shell", action, path).at(monday_at(10, 0))).decision
    };
    // A plain new name in the same places is allowed, so the refusals below are about the escapes.
    assert_allowed_by(&decide(Action::FsRead, &s.ws("dotdot/x")), "tool.shell.fs.read");
    assert_allowed_by(&decide(Action::FsWrite, &s.ws("out/dotdot")), "tool.shell.fs.write");
    for (action, rel) in [
        (Action::FsRead, "%2e%2e/x"),
        (Action::FsRead, "%2E%2E/%2E%2E/home/.ssh/id_ed25519"),
        (Action::FsRead, "src%2f..%2f..%2fhome"),
        (Action::FsRead, "src/%2e%2E/key.pem"),
        (Action::FsRead, "a%5c..%5cb"),
        (Action::FsRead, "a%00b"),
        (Action::FsWrite, "out/%2e%2e/%2e%2e/evil"),
    ] {
        let d = decide(action, &s.ws(rel));
        assert!(!d.allowed, "{rel}: {d:?}");
        assert!(d.policies.is_empty(), "{rel}: {d:?}");
        assert!(d.reason.starts_with("invalid path"), "{rel}: {}", d.reason);
        assert!(d.reason.contains("percent-encoded"), "{rel}: {}", d.reason);
    }
}
