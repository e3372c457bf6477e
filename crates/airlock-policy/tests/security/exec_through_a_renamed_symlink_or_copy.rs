//! Attack: run a denied program under another name: a symlink in the workspace with an innocent name
//! (`<ws>/ls2 -> /usr/bin/rm`), or a copy of it kept under its own name somewhere the search path does not cover
//! (`<ws>/bin/rm`).
//!
//! Defence: programs are resolved to the canonical path of the file that would run (symlinks followed), and a deny
//! entry matches both that resolved path and the file name anywhere, so the symlink is denied by path and the copy
//! by name, both by `tool.shell.exec.deny`; the allowed `ls` still runs.

use std::os::unix::fs::PermissionsExt;

use airlock_policy::Request;
use airlock_policy::normalize::{DEFAULT_SEARCH_PATH, resolve_program};

use super::{assert_allowed_by, assert_denied_by};
use crate::common::{Setup, monday_at};

fn rm_path() -> String {
    let search: Vec<std::path::PathBuf> = DEFAULT_SEARCH_PATH.iter().map(Into::into).collect();
    resolve_program("rm", &search).expect("rm exists on the test machine")
}

fn run(e: &airlock_policy::Engine, program: &str) -> std::sync::Arc<airlock_policy::Decision> {
    e.decide(&Request::exec("orchestrator", "shell", program).at(monday_at(10, 0))).decision
}

#[test]
fn symlink_with_an_innocent_name_is_denied_as_the_program_it_points_to() {
    let s = Setup::new();
    let rm = rm_path();
    std::os::unix::fs::symlink(&rm, s.workspace.join("ls2")).unwrap();
    let e = s.engine();
    assert_allowed_by(&run(&e, "ls"), "tool.shell.exec.allow");
    let d = run(&e, &s.ws("ls2"));
    assert_denied_by(&d, "tool.shell.exec.deny");
    assert_eq!(d.reason, format!("program {rm} is on tool shell's exec deny list"));
    // Two hops of links change nothing.
    std::os::unix::fs::symlink(s.workspace.join("ls2"), s.workspace.join("ls3")).unwrap();
    assert_denied_by(&run(&e, &s.ws("ls3")), "tool.shell.exec.deny");
}

#[test]
fn copy_of_the_denied_program_elsewhere_is_denied_by_its_name() {
    let s = Setup::new();
    std::fs::create_dir_all(s.workspace.join("bin")).unwrap();
    let copy = s.workspace.join("bin/rm");
    std::fs::copy(rm_path(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let e = s.engine();
    let d = run(&e, copy.to_str().unwrap());
    assert_denied_by(&d, "tool.shell.exec.deny");
    assert_eq!(d.reason, format!("program {} is on tool shell's exec deny list", copy.display()));
    // The global deny list (`nc`) matches by name in the same way.
    let nc = s.workspace.join("bin/nc");
    std::fs::copy(rm_path(), &nc).unwrap();
    std::fs::set_permissions(&nc, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_denied_by(&run(&e, nc.to_str().unwrap()), "airlock.exec.deny");
}
