//! Attack: flood the output (10 GB of zeros, an endless `yes`, on stdout, on stderr, on both at once) to fill the
//! caller's memory, disk or context window. With `output_bytes = "1MiB"` the run must be killed with reason
//! `output_limit`, report the truncation, and pass on at most 1 MiB in total. Output under the limit is the
//! control.

use crate::common::sandbox::*;

const LIMIT: usize = 1 << 20;

#[test]
fn sandbox_output_flood() {
    let sb = Sandbox::new(&format!(
        "{WS_RW}{}[tools.t.limits]\noutput_bytes = \"1MiB\"\nwall_seconds = 60\n",
        exec_allow(&["head", "yes", "sh"])
    ));
    require_programs(&["head", "yes", "sh"]);

    let control = sb.run(["head", "-c", "1000", "/dev/zero"]);
    control.exited(0);
    assert_eq!(control.stdout().len(), 1000);
    assert_eq!(control.record["output_truncated"], false, "{}", control.describe());

    for cmd in [
        vec!["head", "-c", "10G", "/dev/zero"],
        vec!["yes"],
        vec!["sh", "-c", "yes >&2"],
        vec!["sh", "-c", "yes & yes >&2"],
    ] {
        let r = sb.run(&cmd);
        assert_eq!(r.reason(), "output_limit", "{cmd:?} was stopped by the output limit\n{}", r.describe());
        assert_eq!(r.record["output_truncated"], true, "{cmd:?}: truncation reported\n{}", r.describe());
        assert_ne!(r.exit_code(), Some(0), "{cmd:?} ended normally\n{}", r.describe());
        let passed = r.stdout().len() + r.stderr().len();
        assert!(passed <= LIMIT, "{cmd:?}: {passed} bytes passed on, over the 1 MiB limit");
    }

    // Without --json the output goes straight to airlock's stdout: still cut at the limit.
    let plain = sb.call(["yes"]).run();
    assert!(plain.stdout.len() <= LIMIT, "{} bytes reached the caller's stdout", plain.stdout.len());
    assert_ne!(plain.code, Some(0), "the flood ended normally");
    plain.err_has("output limit");
}
