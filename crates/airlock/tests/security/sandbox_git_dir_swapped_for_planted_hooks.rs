//! Attack: the masks on `.git/hooks` and `.git/config` are mounts on those two paths, but the directory that
//! holds them is the tool's to change. The tool renames the whole `.git` aside (a directory with mounts below it
//! can be renamed), builds a new `.git` in its place with the old objects and refs, a `pre-commit` hook and a
//! `core.hooksPath`/`core.fsmonitor` config, and the user's next `git status`/`git commit` on the host runs them.
//!
//! After the run the host's `.git` must be the original directory with its original config and hooks.

use std::os::unix::fs::MetadataExt;

use crate::common::random_alnum;
use crate::common::sandbox::*;
use crate::sandbox_git_hooks_planted::make_repo;

#[test]
fn sandbox_git_dir_swapped_for_planted_hooks() {
    let programs = ["bash", "cat", "mkdir", "chmod", "cp", "mv", "rm", "printf"];
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&programs)));
    require_programs(&["bash", "cat", "mkdir", "chmod", "cp", "mv", "rm"]);
    make_repo(&sb.ws, true);
    let git = sb.in_ws(".git");
    let inode = std::fs::metadata(&git).expect(".git").ino();
    let config = std::fs::read(git.join("config")).expect("config");
    let evil = sb.outside(&format!("evil-{}", random_alnum(8)));

    let r = sb.bash(&fill(
        r#"
echo ok > normal.txt; st ws $?
mv .git .git-aside; st rename_git $?
mkdir -p .git/hooks && cp -r .git-aside/objects .git-aside/refs .git-aside/HEAD .git/; st rebuild $?
printf '#!/bin/sh\necho pwned > @EVIL@\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit; st plant_hook $?
printf '[core]\n\trepositoryformatversion = 0\n\thooksPath = .git/hooks\n\tfsmonitor = "echo pwned > @EVIL@"\n' > .git/config; st plant_config $?
"#,
        &[("EVIL", &p(&evil))],
    ));
    r.succeeded("ws");
    let now = std::fs::metadata(&git).expect(".git after the run");
    assert!(
        !git.join("hooks/pre-commit").exists(),
        "HOLE: the tool replaced the workspace's .git with its own and planted .git/hooks/pre-commit on the host\n{}",
        r.describe()
    );
    assert_eq!(
        std::fs::read(git.join("config")).expect("config"),
        config,
        "HOLE: the host's .git/config was replaced (core.hooksPath/core.fsmonitor planted)\n{}",
        r.describe()
    );
    assert_eq!(now.ino(), inode, "HOLE: the host's .git directory was swapped for another\n{}", r.describe());
    r.failed("rename_git");
}
