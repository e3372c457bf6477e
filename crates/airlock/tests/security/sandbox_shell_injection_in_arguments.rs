//! Attack: shell metacharacters in the command's arguments (`$(...)`, backticks, `;`, `|`, `&&`, redirections),
//! hoping `airlock run` passes the command line through a shell. It runs the program directly, so `echo` prints
//! the argument literally, no command in it runs, and no file is created or removed. A program name that is
//! itself a shell command line is not found, never run.

use std::path::Path;

use crate::common::sandbox::*;

#[test]
fn sandbox_shell_injection_in_arguments() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["echo", "printf"])));
    require_programs(&["echo", "printf"]);
    std::fs::write(sb.in_ws("victim.txt"), "keep me\n").expect("victim");
    let ws = p(&sb.ws);
    let tmp_pwned_before = Path::new("/tmp/pwned").exists();
    let payload = fill(
        "$(touch /tmp/pwned); `id`; $(touch @WS@/pwned-subst) `touch @WS@/pwned-tick`; id | rm -rf victim.txt && touch @WS@/pwned-and > @WS@/pwned-redirect",
        &[("WS", &ws)],
    );

    // Plain output: exactly the argument, once.
    let plain = sb.call(["echo", &payload]).run();
    assert_eq!(plain.code, Some(0), "{}", plain.err());
    assert_eq!(plain.out(), format!("{payload}\n"), "echo printed its argument literally");

    // The run record says the same, for several arguments at once.
    let r = sb.run(["printf", "[%s]\\n", &payload, "a; id", "$HOME", "x\ny", "*"]);
    r.exited(0);
    assert_eq!(r.stdout(), format!("[{payload}]\n[a; id]\n[$HOME]\n[x\ny]\n[*]\n"), "{}", r.describe());
    assert!(!r.stdout().contains("uid="), "id ran\n{}", r.describe());

    // A whole shell command line as the program name is looked up as one (absent) program.
    let whole = sb.call([format!("echo hi; touch {ws}/pwned-name")]).run();
    assert_ne!(whole.code, Some(0), "a shell command line as the program name ran: {}", whole.out());

    for f in ["pwned-subst", "pwned-tick", "pwned-and", "pwned-redirect", "pwned-name"] {
        assert!(!sb.in_ws(f).exists(), "{f} was created: the argument went through a shell");
    }
    assert_eq!(std::fs::read_to_string(sb.in_ws("victim.txt")).expect("victim"), "keep me\n", "victim.txt removed");
    if !tmp_pwned_before {
        assert!(!Path::new("/tmp/pwned").exists(), "/tmp/pwned was created on the host");
    }
}
