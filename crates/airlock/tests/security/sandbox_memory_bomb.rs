//! Attack: allocate (and touch) far more memory than the tool's limit, to push the host into swap or the OOM
//! killer. With `memory = "128MiB"` a Python loop touching up to 4 GiB must be stopped (killed, reason
//! `memory_limit`, or a `MemoryError`): it never finishes. Allocating 16 MiB under the same limit is the control.

use crate::common::sandbox::*;

const LIMIT: u64 = 128 << 20;

const BOMB: &str = r#"
chunks = []
try:
    for i in range(256):
        chunks.append(b"\x01" * (16 << 20))   # filled, so every page is really touched
        if i % 8 == 0:
            print(f"@allocated_mib={(i + 1) * 16}", flush=True)
    print("@bomb_finished=0", flush=True)
except MemoryError:
    chunks = None
    print("@memory_error=1", flush=True)
"#;

#[test]
fn sandbox_memory_bomb() {
    let sb = Sandbox::new(&format!(
        "{WS_RW}{}[tools.t.limits]\nmemory = \"128MiB\"\nwall_seconds = 60\n",
        exec_allow(&["python3"])
    ));
    require_programs(&["python3"]);

    let control = sb.python("x = b'\\x01' * (16 << 20)\nprint('@control=0')");
    control.exited(0).succeeded("control");

    let r = sb.python(BOMB);
    assert!(r.marker("bomb_finished").is_none(), "4 GiB were allocated under a 128 MiB limit\n{}", r.describe());
    let stopped = r.reason() == "memory_limit" || r.signal().is_some() || r.marker("memory_error").is_some();
    assert!(stopped, "the memory bomb was neither killed nor refused memory\n{}", r.describe());
    assert_ne!(r.exit_code(), Some(0), "the memory bomb exited successfully\n{}", r.describe());
    if let Some(mib) = r.marker("allocated_mib") {
        let mib: u64 = mib.parse().expect("number");
        assert!(mib << 20 <= LIMIT, "the tool held {mib} MiB under a 128 MiB limit\n{}", r.describe());
    }
    if let Some(peak) = r.record["memory_peak_bytes"].as_u64() {
        assert!(peak <= LIMIT, "the run's cgroup peaked at {peak} bytes, over the limit\n{}", r.describe());
    }
}
