//! Attack: hard-link a file from outside the workspace into it (`ln /outside/file ws/x`), so that the workspace
//! path, which the tool may read and write, names the outside file's inode: a host canary file, `/etc/passwd`,
//! `/etc/shadow`, a system binary, the read-only `.git/config`. Every link must fail and leave nothing in the
//! host's workspace; a hard link between two workspace files is the control.

use std::os::unix::fs::MetadataExt;

use crate::common::random_alnum;
use crate::common::sandbox::*;

#[test]
fn sandbox_hardlink_escape_from_workspace() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["bash", "cat", "ln", "python3"])));
    require_programs(&["bash", "cat", "ln", "python3"]);
    let (canary_path, canary) = sb.outside_canary("outside-canary.txt");
    std::fs::write(sb.in_ws("inside.txt"), format!("inside-{}\n", random_alnum(8))).expect("inside");
    crate::sandbox_git_hooks_planted::make_repo(&sb.ws, true);

    let r = sb.bash(&fill(
        r#"
ln inside.txt inside-2.txt; st control $?
ln "@CANARY@" hl-canary; st canary $?
cat hl-canary; st canary_read $?
ln /etc/passwd hl-passwd; st passwd $?
ln /etc/shadow hl-shadow; st shadow $?
ln /usr/bin/env hl-env; st usr_bin $?
ln .git/config hl-gitconfig; st git_config $?
python3 -c 'import os; os.link("/etc/passwd", "hl-py", follow_symlinks=False)'; st py_link $?
exec 3</etc/passwd; ln -L /proc/self/fd/3 hl-fd; st fd_link $?
"#,
        &[("CANARY", &p(&canary_path))],
    ));
    r.succeeded("control");
    let a = std::fs::metadata(sb.in_ws("inside.txt")).expect("inside");
    let b = std::fs::metadata(sb.in_ws("inside-2.txt")).expect("control link on the host");
    assert_eq!(a.ino(), b.ino(), "the control link is a hard link");
    for (name, file) in [
        ("canary", "hl-canary"),
        ("passwd", "hl-passwd"),
        ("shadow", "hl-shadow"),
        ("usr_bin", "hl-env"),
        ("git_config", "hl-gitconfig"),
        ("py_link", "hl-py"),
        ("fd_link", "hl-fd"),
    ] {
        r.failed(name);
        assert!(std::fs::symlink_metadata(sb.in_ws(file)).is_err(), "{file} exists in the host's workspace");
    }
    r.failed("canary_read").never_shows(&canary, "the outside canary");
    assert_eq!(std::fs::metadata(&canary_path).expect("canary").nlink(), 1, "the canary gained a link");
}
