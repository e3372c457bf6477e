//! Attack: climb out of the workspace with `..` in a path argument: `cat ../../../etc/shadow`,
//! `cat <ws>/../outside-canary`, and the same through `/proc/self/cwd`. Nothing outside the workspace that the
//! policy does not grant may be read; `..` that stays inside the workspace is the control.

use crate::common::random_alnum;
use crate::common::sandbox::*;

#[test]
fn sandbox_dotdot_traversal_in_arguments() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["cat", "bash", "wc"])));
    require_programs(&["cat", "bash", "wc"]);
    let (canary_path, canary) = sb.outside_canary("outside-canary.txt");
    let name = canary_path.file_name().expect("name").to_string_lossy().into_owned();
    let inside = format!("inside-{}", random_alnum(16));
    std::fs::create_dir(sb.in_ws("sub")).expect("sub");
    std::fs::write(sb.in_ws("inside.txt"), &inside).expect("inside");
    let ws = p(&sb.ws);

    // Straight as arguments: the command runs directly, no shell in between.
    let direct = sb.run(["cat", "../../../etc/shadow", &format!("{ws}/../{name}"), &format!("../{name}")]);
    assert_ne!(direct.exit_code(), Some(0), "cat of paths outside the workspace succeeded\n{}", direct.describe());
    assert!(direct.stdout().is_empty(), "cat printed something\n{}", direct.describe());
    direct.never_shows(&canary, "the outside canary");

    let control = sb.run(["cat", &format!("{ws}/sub/../inside.txt"), "sub/../inside.txt", "../ws/inside.txt"]);
    control.exited(0);
    assert_eq!(control.stdout(), inside.repeat(3), "paths with .. inside the workspace work\n{}", control.describe());

    let r = sb.bash(&fill(
        r#"
st shadow_bytes "$(cat ../../../etc/shadow ../../../../../../../../../etc/shadow 2>/dev/null | wc -c)"
cat "@WS@/../@NAME@"; st ws_dotdot $?
cat "../@NAME@"; st rel_dotdot $?
cat "@WS@/sub/../../@NAME@"; st sub_dotdot $?
cat "/proc/self/cwd/../@NAME@"; st proc_cwd $?
cd ..; cat "@NAME@"; st cd_up $?
cd /; cat "@WS@/../../../@WS@/../@NAME@"; st zigzag $?
"#,
        &[("WS", &ws), ("NAME", &name)],
    ));
    assert_eq!(r.status("shadow_bytes"), 0, "/etc/shadow read\n{}", r.describe());
    for a in ["ws_dotdot", "rel_dotdot", "sub_dotdot", "proc_cwd", "cd_up", "zigzag"] {
        r.failed(a);
    }
    r.never_shows(&canary, "the outside canary");
}
