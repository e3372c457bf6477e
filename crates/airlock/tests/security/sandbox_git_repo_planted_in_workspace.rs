//! Attack: the workspace is not a git repository of its own (a plain project directory, or a subdirectory of the
//! user's repository), so there is no `.git` to protect when the run starts. The tool creates one: a minimal
//! repository whose `.git/config` sets `core.fsmonitor` (run by `git status`) and `core.hooksPath`, plus a
//! `pre-commit` hook. The next `git status` the user runs in that directory on the host runs the tool's command
//! outside every sandbox (git finds the nearest `.git` first, shadowing the real repository above it).
//!
//! No kernel mechanism refuses a directory by its name, and agents legitimately `git init`, so a repository the
//! tool makes cannot be refused. It must not go unnoticed: the run record lists it, `airlock run` warns on stderr,
//! and the audit log holds a Detection Finding for the run. (The workspace's own repository, when it has one, is
//! protected outright: see `sandbox_git_hooks_planted` and `sandbox_git_dir_swapped_for_planted_hooks`.)

use crate::common::random_alnum;
use crate::common::sandbox::*;

#[test]
fn sandbox_git_repo_planted_in_workspace() {
    let programs = ["bash", "mkdir", "chmod"];
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&programs)));
    require_programs(&programs);
    assert!(!sb.in_ws(".git").exists());
    let evil = sb.outside(&format!("evil-{}", random_alnum(8)));
    let r = sb.bash(&fill(
        r#"
echo ok > normal.txt; st ws $?
mkdir -p .git/objects .git/refs/heads .git/hooks && echo 'ref: refs/heads/main' > .git/HEAD; st make_repo $?
printf '[core]\n\trepositoryformatversion = 0\n\tfsmonitor = "echo pwned > @EVIL@; false"\n\thooksPath = .git/hooks\n' > .git/config; st plant_config $?
printf '#!/bin/sh\necho pwned > @EVIL@\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit; st plant_hook $?
"#,
        &[("EVIL", &p(&evil))],
    ));
    r.succeeded("ws");
    r.succeeded("plant_config");
    let planted = p(&sb.in_ws(".git"));
    let changes: Vec<&str> = r.record["git_changes"]
        .as_array()
        .expect("git_changes in the run record")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        changes.contains(&planted.as_str()),
        "the planted repository is not reported: {changes:?}\n{}",
        r.describe()
    );
    assert_eq!(r.record["git_fully_checked"], true);
    assert!(
        r.run.err().contains("created or changed git metadata") && r.run.err().contains(&planted),
        "no warning on stderr:\n{}",
        r.run.err()
    );
    let audit = sb.al.call(["--json", "audit", "query", "--type", "finding"]).run();
    assert!(
        audit.out().contains("git-metadata") && audit.out().contains(r.record["run"].as_str().expect("run id")),
        "no Detection Finding for the run in the audit log:\n{}\n{}",
        audit.out(),
        audit.err()
    );

    // A run that touches no git metadata reports nothing.
    let quiet = sb.bash("echo ok > other.txt; st ws $?");
    quiet.succeeded("ws");
    assert_eq!(quiet.record["git_changes"], serde_json::json!([]), "{}", quiet.describe());
}
