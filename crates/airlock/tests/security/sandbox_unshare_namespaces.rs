//! Attack: make a new user namespace (in which the tool would be root again, with every capability, and could
//! mount, build new network namespaces and reach kernel code unprivileged users cannot) or join another
//! namespace: `unshare -U` when installed, and through libc `unshare(2)`, `clone(2)` and `clone3(2)` with
//! namespace flags and `setns(2)` into init's namespaces. All must fail; a plain fork is the control.

use crate::common::sandbox::*;

const UNSHARE_PY: &str = r#"
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWPID = 0x20000, 0x10000000, 0x40000000, 0x20000000
CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWTIME = 0x02000000, 0x08000000, 0x04000000, 0x80
SIGCHLD = 17
control_fork()
for name, flag in [("user", CLONE_NEWUSER), ("mount", CLONE_NEWNS), ("net", CLONE_NEWNET), ("pid", CLONE_NEWPID),
                   ("cgroup", CLONE_NEWCGROUP), ("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS), ("time", CLONE_NEWTIME)]:
    report(f"unshare_{name}", libc.unshare(flag))
# clone(2) with a namespace flag: a child that starts exits at once; the parent reaps it.
def raw_clone(flags):
    r = libc.syscall(56, ctypes.c_ulong(flags | SIGCHLD), None, None, None, None)
    if r == 0:
        os._exit(0)
    if r > 0:
        os.waitpid(r, 0)
    return r
report("clone_user", raw_clone(CLONE_NEWUSER))
report("clone_net", raw_clone(CLONE_NEWNET))
# clone3(2): struct clone_args starts with u64 flags, pidfd, child_tid, parent_tid, exit_signal, stack, ...
class CloneArgs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal",
                "stack", "stack_size", "tls", "set_tid", "set_tid_size", "cgroup")]
def clone3(flags):
    args = CloneArgs(flags=flags, exit_signal=SIGCHLD)
    r = libc.syscall(435, ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
    if r == 0:
        os._exit(0)
    if r > 0:
        os.waitpid(r, 0)
    return r
report("clone3_user", clone3(CLONE_NEWUSER))
for ns in ("user", "mnt", "net", "pid"):
    try:
        fd = os.open(f"/proc/1/ns/{ns}", os.O_RDONLY)
    except OSError as e:
        print(f"@setns_{ns}={e.errno}", flush=True)
        continue
    report(f"setns_{ns}", libc.setns(fd, 0))
if hasattr(os, "unshare"):
    try:
        os.unshare(os.CLONE_NEWUSER)
        print("@os_unshare=0")
    except OSError as e:
        print(f"@os_unshare={e.errno}")
"#;

#[test]
fn sandbox_unshare_namespaces() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["bash", "python3", "unshare", "true", "id"])));
    require_programs(&["bash", "python3"]);
    let mut script = format!("python3 -c {}; st python $?\n", python_word(UNSHARE_PY));
    if has_program("unshare") {
        script.push_str(
            "unshare -U true; st unshare_u $?\nunshare -Ur id; st unshare_ur $?\nunshare -n true; st unshare_n $?\n",
        );
    }
    let r = sb.bash(&script);
    r.succeeded("python").succeeded("fork");
    for ns in ["user", "mount", "net", "pid", "cgroup", "ipc", "uts", "time"] {
        r.failed(&format!("unshare_{ns}"));
    }
    r.failed("clone_user").failed("clone_net").failed("clone3_user");
    for ns in ["user", "mnt", "net", "pid"] {
        r.failed(&format!("setns_{ns}"));
    }
    if r.marker("os_unshare").is_some() {
        r.failed("os_unshare");
    }
    if has_program("unshare") {
        r.failed("unshare_u").failed("unshare_ur").failed("unshare_n");
    }
}
