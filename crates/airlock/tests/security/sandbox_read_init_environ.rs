//! Attack: find the real secret (or anything from the host's environment) in another process's environment: the
//! sandbox init's `/proc/1/environ`, every other `/proc/*/environ`, and the tool's own. The tool is granted the
//! vault secret, so it must find its surrogate (not the value) in `SANDBOX_TOKEN`; init's environment must be
//! unreadable or hold nothing secret. The harness also checks that neither the real value nor `airlock`'s
//! host-only environment canary appears in any output.

use crate::common::sandbox::*;

#[test]
fn sandbox_read_init_environ() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["bash", "cat", "tr", "grep", "env"])));
    require_programs(&["bash", "cat", "tr", "grep", "env"]);
    let r = sb.bash(
        r#"
st has_surrogate "$([ -n "$SANDBOX_TOKEN" ] && echo 0 || echo 1)"
echo "surrogate=$SANDBOX_TOKEN"
env | grep -c AIRLOCK_TEST_HOST_CANARY; st host_var_visible $([ -n "$AIRLOCK_TEST_HOST_CANARY" ] && echo 0 || echo 1)
cat /proc/self/environ | tr '\0' '\n' | grep -q '^SANDBOX_TOKEN='; st self_environ $?
cat /proc/1/environ > /tmp/e1; st init_environ $?
tr '\0' '\n' < /tmp/e1
for e in /proc/[0-9]*/environ; do echo "== $e"; cat "$e" | tr '\0' '\n'; done
cat /proc/1/task/1/environ | tr '\0' '\n'; st init_task_environ ${PIPESTATUS[0]}
cat /proc/1/cmdline | tr '\0' ' '; echo
"#,
    );
    r.succeeded("has_surrogate").succeeded("self_environ");
    let surrogate =
        r.stdout().lines().find_map(|l| l.strip_prefix("surrogate=").map(str::to_string)).expect("the surrogate line");
    assert!(surrogate.len() >= 8, "a surrogate is present\n{}", r.describe());
    assert_ne!(surrogate, sb.secret, "the tool got the real value instead of a surrogate");
    r.failed("host_var_visible");
    // Init's environment: refused, or (if readable) it must not hold the secret or the host's variables.
    if r.status("init_environ") == 0 || r.status("init_task_environ") == 0 {
        r.never_shows(&sb.host_canary, "airlock's host environment (via /proc/1/environ)");
    }
    r.never_shows(&sb.secret, "the real secret value").never_shows(&sb.host_canary, "the host environment canary");
    sb.assert_no_leak();
}
