//! Attack: a fork bomb (`f(){ f | f & }; f`) to exhaust the machine's process table. With `pids = 64` the bomb
//! must hit the limit inside the sandbox (forks fail, the tool never sees more than 64 processes), the run must
//! end, and afterwards no process of it may remain on the host.

use crate::common::random_alnum;
use crate::common::sandbox::*;

#[test]
fn sandbox_fork_bomb() {
    let sb = Sandbox::new(&format!(
        "{WS_RW}{}[tools.t.limits]\npids = 64\nwall_seconds = 20\noutput_bytes = \"1MiB\"\n",
        exec_allow(&["sh", "sleep"])
    ));
    require_programs(&["sh", "sleep"]);
    let marker = format!("forkbomb-{}", random_alnum(16));
    // The main shell keeps counting the processes it can see (with builtins only) while the bomb runs, for a
    // bounded number of rounds, then reports the most it saw.
    let script = fill(
        r#": @MARKER@
f() { f | f & }
f
max=0
i=0
while [ $i -lt 40 ]; do
  i=$((i+1))
  set -- /proc/[0-9]*
  [ $# -gt $max ] && max=$#
  sleep 0.05 2>/dev/null || true
done
printf '\n@max_procs=%s\n' "$max"
"#,
        &[("MARKER", &marker)],
    );
    let r = sb.run(["sh", "-c", &script]);
    assert!(
        r.stderr().contains("fork") || r.stderr().contains("Resource temporarily unavailable"),
        "the bomb hit the process limit (forks failed)\n{}",
        r.describe()
    );
    if let Some(max) = r.marker("max_procs") {
        let max: u64 = max.parse().expect("count");
        assert!(max <= 64, "the tool saw {max} processes, more than pids = 64\n{}", r.describe());
    }
    let left = host_processes_matching(&marker);
    assert!(left.is_empty(), "processes of the fork bomb remain on the host after the run: {left:?}");
}
