//! Attack: read the real secret out of the memory of the process that holds it: the `airlock run` process, whose
//! in-process broker swaps surrogates for real values. The test passes that process's host pid into the sandbox
//! (through a file in the workspace, written after the run has started) and the tool tries `/proc/<pid>/mem`,
//! `environ`, `maps`, `process_vm_readv` and `ptrace` on it, and the same on every process it can see (init,
//! `$PPID`). No read may succeed, and the real value may never appear in any output.

use crate::common::sandbox::*;

const SCRIPT: &str = r#"
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
pid_file = "broker.pid"
for _ in range(600):                       # up to 30 s for the test to write the pid
    if os.path.exists(pid_file):
        break
    time.sleep(0.05)
host_pid = int(open(pid_file).read().strip())
me = os.getpid()
targets = {"host_pid": host_pid, "init": 1, "ppid": os.getppid()}
for e in os.listdir("/proc"):
    if e.isdigit() and int(e) != me:
        targets[f"visible_{e}"] = int(e)
print("@targets=" + ",".join(f"{k}:{v}" for k, v in sorted(targets.items())), flush=True)
SECRET = os.environ.get("SANDBOX_TOKEN", "")

def read_mem(pid):
    addrs = []
    try:
        with open(f"/proc/{pid}/maps") as m:
            for line in m:
                start, end = (int(x, 16) for x in line.split()[0].split("-"))
                if "rw" in line.split()[1]:
                    addrs.append((start, min(end - start, 1 << 20)))
    except OSError:
        addrs = [(0x400000, 4096)]
    got = 0
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as f:
        for start, size in addrs[:64]:
            try:
                f.seek(start)
                data = f.read(size)
                got += len(data or b"")
            except OSError:
                pass
    return got

class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

for name, pid in sorted(targets.items()):
    try:
        n = read_mem(pid)
        print(f"@mem_{name}={0 if n > 0 else 61}", flush=True)
        if n > 0:
            print(f"READ {n} bytes of /proc/{pid}/mem", flush=True)
    except OSError as e:
        print(f"@mem_{name}={e.errno}", flush=True)
    for what in ("environ", "maps", "cmdline"):
        try:
            data = open(f"/proc/{pid}/{what}", "rb").read()
            print(f"{what} of {name} ({pid}): {len(data)} bytes: {data[:2000]!r}", flush=True)
        except OSError as e:
            print(f"@{what}_{name}={e.errno}", flush=True)
    buf = ctypes.create_string_buffer(4096)
    local = iovec(ctypes.cast(buf, ctypes.c_void_p), 4096)
    remote = iovec(ctypes.c_void_p(0x400000), 4096)
    libc.process_vm_readv.restype = ctypes.c_ssize_t
    r = libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    print(f"@vm_readv_{name}={0 if r >= 0 else ctypes.get_errno() or 1}", flush=True)
    libc.ptrace.restype = ctypes.c_long
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    r = libc.ptrace(16, pid, None, None)
    print(f"@ptrace_{name}={0 if r >= 0 else ctypes.get_errno() or 1}", flush=True)
print("@done=0", flush=True)
"#;

#[test]
fn sandbox_read_broker_memory() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["python3"])));
    require_programs(&["python3"]);
    let (child, feeder) = sb.call_json(["python3", "-c", SCRIPT]).spawn();
    let broker_pid = child.id();
    let tmp = sb.in_ws("broker.pid.tmp");
    std::fs::write(&tmp, format!("{broker_pid}\n")).expect("pid file");
    std::fs::rename(&tmp, sb.in_ws("broker.pid")).expect("pid file");
    let r = sb.finish(child, feeder);
    r.exited(0).succeeded("done");
    let targets = r.marker("targets").expect("targets");
    assert!(targets.contains(&format!("host_pid:{broker_pid}")), "the script got the broker's pid\n{}", r.describe());
    for t in targets.split(',') {
        let name = t.split(':').next().expect("name");
        for what in ["mem", "vm_readv", "ptrace"] {
            r.failed(&format!("{what}_{name}"));
        }
    }
    assert!(!r.stdout().contains("READ "), "process memory was read\n{}", r.describe());
    r.never_shows(&sb.secret, "the real secret value");
    sb.assert_no_leak();
}
