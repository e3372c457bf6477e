//! Attack: spin the CPU forever. With `cpu_seconds = 1` (and a much longer wall clock) the spinning tool must be
//! ended by the CPU limit (SIGXCPU or SIGKILL), not by the wall-clock timeout; a short computation under the same
//! limits is the control.

use crate::common::sandbox::*;

const SIGKILL: i64 = 9;
const SIGXCPU: i64 = 24;

#[test]
fn sandbox_cpu_spin() {
    let sb = Sandbox::new(&format!(
        "{WS_RW}{}[tools.t.limits]\ncpu_seconds = 1\nwall_seconds = 120\n",
        exec_allow(&["python3", "sh"])
    ));
    require_programs(&["python3", "sh"]);

    sb.python("print(sum(range(1000)))").exited(0);

    let r = sb.python("while True:\n    pass\n");
    assert_eq!(r.exit_code(), None, "the spinning tool exited by itself\n{}", r.describe());
    assert!(
        matches!(r.signal(), Some(SIGKILL | SIGXCPU)),
        "the spinning tool was ended by SIGXCPU or SIGKILL\n{}",
        r.describe()
    );
    assert_ne!(r.reason(), "timeout", "the CPU limit, not the wall clock, ended the run\n{}", r.describe());

    // A shell that ignores SIGXCPU (the soft limit) still meets the hard limit.
    let r = sb.run(["sh", "-c", "trap '' XCPU; while :; do :; done"]);
    assert_eq!(r.exit_code(), None, "the spinning shell exited by itself\n{}", r.describe());
    assert_ne!(r.reason(), "timeout", "the CPU limit, not the wall clock, ended the run\n{}", r.describe());
}
