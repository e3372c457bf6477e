//! Attack: follow a symlink out of the workspace. Links planted on the host before the run (absolute and
//! relative, to a canary file outside the workspace, to `/etc/shadow`, to the user's `~/.ssh`, to a host
//! directory to write into) and links the tool creates inside the sandbox must not reach anything the policy
//! does not grant: the canaries never appear, reads return nothing, nothing is written outside. A link from one
//! workspace file to another is the control.

use std::path::Path;

use crate::common::random_alnum;
use crate::common::sandbox::*;

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("plant symlink");
}

#[test]
fn sandbox_symlink_escape_from_workspace() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["bash", "cat", "ln", "ls", "wc"])));
    require_programs(&["bash", "cat", "ln", "ls", "wc"]);
    let (canary_path, canary) = sb.outside_canary("outside-canary.txt");
    let (dir_canary_path, dir_canary) = sb.outside_canary("outside-dir/inner.txt");
    let outside_dir = dir_canary_path.parent().expect("dir").to_path_buf();
    let key = format!("ssh-key-canary-{}", random_alnum(24));
    std::fs::create_dir(sb.home_dir.join(".ssh")).expect(".ssh");
    std::fs::write(sb.home_dir.join(".ssh/id_rsa"), &key).expect("key");
    let inside = format!("inside-{}", random_alnum(16));
    std::fs::write(sb.in_ws("inside.txt"), &inside).expect("inside");

    // Planted on the host, as a malicious repository or an earlier tool would leave them.
    symlink(&canary_path, &sb.in_ws("abs-link"));
    symlink(Path::new("../outside-canary.txt"), &sb.in_ws("rel-link"));
    symlink(Path::new("/etc/shadow"), &sb.in_ws("shadow-link"));
    symlink(&sb.home_dir.join(".ssh"), &sb.in_ws("ssh-link"));
    symlink(&outside_dir, &sb.in_ws("dir-link"));
    symlink(Path::new("inside.txt"), &sb.in_ws("ok-link"));

    let r = sb.bash(&fill(
        r#"
cat ok-link; st control $?
cat abs-link; st abs $?
cat rel-link; st rel $?
st shadow_bytes "$(cat shadow-link 2>/dev/null | wc -c)"
cat ssh-link/id_rsa; st ssh $?
ls dir-link/; st dir_list $?
cat dir-link/inner.txt; st dir_read $?
ln -s "@CANARY@" made-link; cat made-link; st made_read $?
ln -s ../../../../../../../../etc/shadow deep-link; st deep_bytes "$(cat deep-link 2>/dev/null | wc -c)"
cat /proc/self/root/"@CANARY@"; st proc_root $?
cat /proc/1/root/"@CANARY@"; st init_root $?
# Writes last: a write to an invisible host path may create it in the sandbox's private /tmp, which later reads
# would then find. What counts is that the host files are untouched.
echo pwned > dir-link/planted.txt; st dir_write $?
ln -s "@OUTDIR@" made-dir; echo pwned > made-dir/planted2.txt; st made_write $?
echo pwned > abs-link; st abs_write $?
"#,
        &[("CANARY", &p(&canary_path)), ("OUTDIR", &p(&outside_dir))],
    ));
    r.succeeded("control");
    assert!(r.stdout().contains(&inside), "the in-workspace link is followed\n{}", r.describe());
    for a in ["abs", "rel", "ssh", "dir_list", "dir_read", "made_read", "proc_root", "init_root"] {
        r.failed(a);
    }
    assert_eq!(r.status("shadow_bytes"), 0, "/etc/shadow read through a link\n{}", r.describe());
    assert_eq!(r.status("deep_bytes"), 0, "/etc/shadow read through a link\n{}", r.describe());
    r.never_shows(&canary, "the outside canary").never_shows(&dir_canary, "the outside directory's canary");
    r.never_shows(&key, "the SSH key canary");

    // Nothing was written through any link.
    assert_eq!(std::fs::read_to_string(&canary_path).expect("canary"), format!("{canary}\n"), "written through a link");
    let mut names: Vec<String> = std::fs::read_dir(&outside_dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["inner.txt".to_string()], "a file was written through a link into a host directory");
}
