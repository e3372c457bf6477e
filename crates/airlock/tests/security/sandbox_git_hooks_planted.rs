//! Attack: a sandboxed tool plants a git hook in the workspace's repository (`.git/hooks/pre-commit`), or points
//! git at one through `.git/config` (`core.hooksPath`, `core.fsmonitor`), so that the user's next `git commit`
//! or `git status` runs the tool's code on the host, outside every sandbox.
//!
//! The workspace is writable; `.git/hooks` must be masked (and created masked when absent) and `.git/config`
//! read-only. The host's hooks directory and config must be byte for byte what they were. Writing an ordinary
//! workspace file and reading `.git/config` are the controls.

use std::path::Path;

use crate::common::random_alnum;
use crate::common::sandbox::*;

const CONFIG: &str = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n";

/// A minimal repository in `ws/.git` (no git needed on the host); `hooks` only when asked.
pub fn make_repo(ws: &Path, with_hooks: bool) {
    let git = ws.join(".git");
    for d in ["objects/info", "objects/pack", "refs/heads", "refs/tags", "info"] {
        std::fs::create_dir_all(git.join(d)).expect("repo dir");
    }
    std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").expect("HEAD");
    std::fs::write(git.join("config"), CONFIG).expect("config");
    std::fs::write(git.join("description"), "test repository\n").expect("description");
    if with_hooks {
        std::fs::create_dir(git.join("hooks")).expect("hooks");
        std::fs::write(git.join("hooks/pre-commit.sample"), "#!/bin/sh\nexit 0\n").expect("sample hook");
    }
}

/// The attempts, each reported with `st`. `@EVIL@` is a host path the planted settings point at.
const ATTACK: &str = r#"
echo ok > normal.txt; st ws $?
cat .git/config; st config_read $?
mkdir -p .git/hooks; printf '#!/bin/sh\necho pwned > @EVIL@\n' > .git/hooks/pre-commit; st hook_write $?
chmod +x .git/hooks/pre-commit; st hook_chmod $?
cp .git/hooks/pre-commit.sample .git/hooks/post-checkout; st hook_copy $?
ls .git/hooks; st hooks_list $?
printf '[core]\n\thooksPath = @EVIL@\n' >> .git/config; st config_append_hookspath $?
printf '[core]\n\tfsmonitor = touch @EVIL@\n' > .git/config; st config_overwrite_fsmonitor $?
mv .git/config .git/config.orig; st config_rename $?
rm -f .git/config; st config_remove $?
ln -sf /tmp/evil-config .git/config; st config_symlink $?
printf '[core]\n\thooksPath = @EVIL@\n' > .git/config.lock && mv -f .git/config.lock .git/config; st config_lock_rename $?
rm -rf .git/hooks; st hooks_remove $?
mv .git/hooks .git/hooks-old; st hooks_rename $?
"#;

fn assert_repo_untouched(sb: &Sandbox, r: &SbRun, hooks_before: &[String], evil: &Path) {
    r.succeeded("ws").succeeded("config_read");
    assert!(r.stdout().contains("repositoryformatversion"), ".git/config is readable\n{}", r.describe());
    assert_eq!(std::fs::read_to_string(sb.in_ws("normal.txt")).expect("control"), "ok\n");
    for a in [
        "hook_write",
        "hook_chmod",
        "hook_copy",
        "config_append_hookspath",
        "config_overwrite_fsmonitor",
        "config_rename",
        "config_remove",
        "config_symlink",
        "config_lock_rename",
        "hooks_remove",
        "hooks_rename",
    ] {
        r.failed(a);
    }
    assert_eq!(hook_names(sb), hooks_before, "the host's .git/hooks changed");
    assert_eq!(std::fs::read_to_string(sb.in_ws(".git/config")).expect("config"), CONFIG, ".git/config changed");
    assert!(!sb.in_ws(".git/config.orig").exists() && !sb.in_ws(".git/hooks-old").exists());
    assert!(!evil.exists(), "a planted hook ran");
}

fn hook_names(sb: &Sandbox) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(sb.in_ws(".git/hooks"))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

const PROGRAMS: &[&str] = &["bash", "cat", "mkdir", "chmod", "cp", "ls", "mv", "rm", "ln"];

#[test]
fn sandbox_git_hooks_planted() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(PROGRAMS)));
    require_programs(PROGRAMS);
    make_repo(&sb.ws, true);
    let hooks_before = hook_names(&sb);
    assert_eq!(hooks_before, vec!["pre-commit.sample".to_string()]);
    let evil = sb.outside(&format!("evil-{}", random_alnum(8)));
    let r = sb.bash(&fill(ATTACK, &[("EVIL", &p(&evil))]));
    assert_repo_untouched(&sb, &r, &hooks_before, &evil);
}

/// A repository without a hooks directory: the tool must not be able to create one.
#[test]
fn sandbox_git_hooks_planted_when_hooks_dir_absent() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(PROGRAMS)));
    require_programs(PROGRAMS);
    make_repo(&sb.ws, false);
    let evil = sb.outside(&format!("evil-{}", random_alnum(8)));
    let r = sb.bash(&fill(ATTACK, &[("EVIL", &p(&evil))]));
    assert_repo_untouched(&sb, &r, &[], &evil);
}

/// `git` itself (when installed) cannot set a hooks path or a monitor command either.
#[test]
fn sandbox_git_config_hookspath_via_git() {
    if !has_program("git") {
        return; // the hand-written attempts above cover the same files
    }
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["bash", "git"])));
    make_repo(&sb.ws, true);
    let evil = sb.outside(&format!("evil-{}", random_alnum(8)));
    let r = sb.bash(&fill(
        r#"
git config --get core.bare; st git_read $?
git config core.hooksPath @EVIL@; st git_hookspath $?
git config core.fsmonitor 'touch @EVIL@'; st git_fsmonitor $?
git config --add alias.st '!touch @EVIL@'; st git_alias $?
"#,
        &[("EVIL", &p(&evil))],
    ));
    r.succeeded("git_read").failed("git_hookspath").failed("git_fsmonitor").failed("git_alias");
    assert_eq!(std::fs::read_to_string(sb.in_ws(".git/config")).expect("config"), CONFIG, ".git/config changed");
}
