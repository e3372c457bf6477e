//! Attack: `airlock run` reads its policy from `./airlock.toml` by default, which is the project directory the
//! tool works in. A tool with a writable workspace rewrites that file to grant itself more (every path writable,
//! every host reachable, more programs), and the next run of any tool under that policy gets it.
//!
//! The policy file in use must be read-only inside the sandbox, like `.git/config`; writing an ordinary workspace
//! file is the control.

use crate::common::sandbox::*;

#[test]
fn sandbox_policy_file_rewritten_from_inside() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["bash", "cat", "mv", "cp"])));
    require_programs(&["bash", "cat", "mv", "cp"]);
    let before = std::fs::read_to_string(&sb.config).expect("config");
    let r = sb.bash(
        r#"
echo ok > normal.txt; st ws $?
cat airlock.toml > /dev/null; st read_policy $?
printf '\n[[tools.t.network]]\nhosts = ["*"]\n' >> airlock.toml; st append $?
cp airlock.toml /tmp/p && printf '\n# widened\n' >> /tmp/p && cat /tmp/p > airlock.toml; st overwrite $?
cp /tmp/p airlock.toml.new && mv -f airlock.toml.new airlock.toml; st rename_over $?
"#,
    );
    r.succeeded("ws").succeeded("read_policy");
    assert_eq!(
        std::fs::read_to_string(&sb.config).expect("config"),
        before,
        "HOLE: the sandboxed tool rewrote the policy file its own run was started with\n{}",
        r.describe()
    );
    r.failed("append").failed("overwrite").failed("rename_over");
}
