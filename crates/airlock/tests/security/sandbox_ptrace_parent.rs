//! Attack: debug another process to take it over or read its memory: `PTRACE_ATTACH`/`PTRACE_SEIZE` on the
//! parent shell (same user, so without the seccomp filter the kernel would allow it) and on the sandbox's init,
//! `PTRACE_TRACEME`, `process_vm_readv` on the parent, and `strace` when installed. Every one must fail with
//! EPERM (or another refusal); a plain `fork` and `wait` in the same script is the control.

use crate::common::sandbox::*;

const PTRACE_PY: &str = r#"
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
control_fork()
parent = os.getppid()
print(f"@parent_pid={parent}", flush=True)
report("attach_parent", libc.ptrace(16, parent, None, None))     # PTRACE_ATTACH
report("seize_parent", libc.ptrace(0x4206, parent, None, None))  # PTRACE_SEIZE
report("attach_init", libc.ptrace(16, 1, None, None))
report("seize_init", libc.ptrace(0x4206, 1, None, None))
child = os.fork()
if child == 0:
    r = libc.ptrace(0, 0, None, None)                             # PTRACE_TRACEME
    os._exit(0 if r >= 0 else 1)
_, status = os.waitpid(child, 0)
print(f"@traceme={os.waitstatus_to_exitcode(status)}", flush=True)

class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(4096)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 4096)
addr = 0x400000
try:
    with open(f"/proc/{parent}/maps") as m:
        addr = int(m.readline().split("-")[0], 16)
except OSError:
    pass
remote = iovec(ctypes.c_void_p(addr), 4096)
libc.process_vm_readv.restype = ctypes.c_ssize_t
report("vm_readv_parent", libc.process_vm_readv(parent, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))
report("vm_readv_init", libc.process_vm_readv(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))
"#;

#[test]
fn sandbox_ptrace_parent() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["bash", "python3", "strace", "sleep", "true"])));
    require_programs(&["bash", "python3"]);
    // bash stays the parent (`; st ...` after python keeps it from exec'ing python in its place).
    let r = sb.bash(&format!(
        "python3 -c {}; st python $?\n{}",
        python_word(PTRACE_PY),
        if has_program("strace") {
            "strace -f -o /dev/null true; st strace_run $?\nstrace -o /dev/null -p $$ & sp=$!; sleep 1; kill $sp 2>/dev/null; wait $sp; st strace_attach $?\nstrace -o /dev/null -p 1; st strace_init $?\n"
        } else {
            ""
        }
    ));
    r.succeeded("python").succeeded("fork");
    assert_ne!(r.status("parent_pid"), 1, "the attack targets the parent shell, not init\n{}", r.describe());
    for a in
        ["attach_parent", "seize_parent", "attach_init", "seize_init", "traceme", "vm_readv_parent", "vm_readv_init"]
    {
        r.failed(a);
    }
    if has_program("strace") {
        r.failed("strace_run").failed("strace_attach").failed("strace_init");
    }
}
