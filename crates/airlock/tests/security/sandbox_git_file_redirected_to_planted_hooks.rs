//! Attack: in a linked worktree or a submodule, `.git` is a file (`gitdir: <path>`), not a directory, so there is
//! no `.git/hooks` or `.git/config` to mask. The tool rewrites the `.git` file to point at a repository it builds
//! in the workspace, with a `pre-commit` hook and a `core.fsmonitor` command; the user's next `git status` or
//! `git commit` in the worktree runs them on the host.
//!
//! After the run the host's `.git` file must still point where it did.

use crate::common::random_alnum;
use crate::common::sandbox::*;

#[test]
fn sandbox_git_file_redirected_to_planted_hooks() {
    let programs = ["bash", "cat", "mkdir", "chmod"];
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&programs)));
    require_programs(&programs);
    // The main repository lives outside the workspace; the workspace is one of its worktrees.
    let main_git = sb.outside("main-repo/.git");
    let wt = main_git.join("worktrees/ws");
    std::fs::create_dir_all(&wt).expect("worktree admin dir");
    std::fs::create_dir_all(main_git.join("hooks")).expect("hooks");
    std::fs::write(main_git.join("config"), "[core]\n\tbare = false\n").expect("config");
    std::fs::write(wt.join("HEAD"), "ref: refs/heads/wt\n").expect("HEAD");
    std::fs::write(wt.join("commondir"), "../..\n").expect("commondir");
    let dotgit = format!("gitdir: {}\n", wt.display());
    std::fs::write(sb.in_ws(".git"), &dotgit).expect(".git file");
    let evil = sb.outside(&format!("evil-{}", random_alnum(8)));

    let r = sb.bash(&fill(
        r#"
cat .git; st read_dotgit $?
mkdir -p .evil/hooks .evil/objects .evil/refs/heads && echo 'ref: refs/heads/main' > .evil/HEAD; st build $?
printf '#!/bin/sh\necho pwned > @EVIL@\n' > .evil/hooks/pre-commit && chmod +x .evil/hooks/pre-commit; st plant_hook $?
printf '[core]\n\tfsmonitor = "echo pwned > @EVIL@"\n' > .evil/config; st plant_config $?
echo 'gitdir: .evil' > .git; st redirect $?
"#,
        &[("EVIL", &p(&evil))],
    ));
    r.succeeded("read_dotgit");
    assert_eq!(
        std::fs::read_to_string(sb.in_ws(".git")).expect(".git file"),
        dotgit,
        "HOLE: the tool redirected the worktree's .git file to a repository with its own hooks and fsmonitor\n{}",
        r.describe()
    );
    r.failed("redirect");
}
