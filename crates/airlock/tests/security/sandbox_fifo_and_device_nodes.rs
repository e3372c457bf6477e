//! Attack: create special files and open devices: a fifo outside the workspace (in the read-only system
//! directories, next to the workspace on the host), character and block device nodes (`mknod`) anywhere, and the
//! host's disks, memory, kernel log and terminals (`/dev/sda`, `/dev/vda`, `/dev/mem`, `/dev/kmsg`, `/dev/tty`,
//! ...). Every one must fail or not exist; `/dev/null` and `/dev/urandom` are the control.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::common::random_alnum;
use crate::common::sandbox::*;

const DEVICES: &[&str] = &[
    "/dev/sda",
    "/dev/vda",
    "/dev/nvme0n1",
    "/dev/mem",
    "/dev/kmem",
    "/dev/port",
    "/dev/kmsg",
    "/dev/tty",
    "/dev/console",
    "/dev/tty0",
    "/dev/ptmx",
    "/dev/kvm",
    "/dev/fuse",
    "/dev/net/tun",
    "/dev/loop0",
    "/dev/loop-control",
    "/dev/dri/card0",
    "/dev/cpu/0/msr",
    "/dev/vsock",
];

#[test]
fn sandbox_fifo_and_device_nodes() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["bash", "mkfifo", "mknod", "python3", "head", "wc"])));
    require_programs(&["bash", "mkfifo", "mknod", "python3", "head", "wc"]);
    let tag = random_alnum(12);
    let outside = sb.outside("outside-dir");
    std::fs::create_dir(&outside).expect("outside dir");
    let usr_fifo = format!("/usr/airlock-fifo-{tag}");
    let etc_fifo = format!("/etc/airlock-fifo-{tag}");

    let r = sb.bash(&fill(
        r#"
echo hi > /dev/null; st dev_null $?
st urandom_bytes "$(head -c 16 /dev/urandom | wc -c)"
mkfifo @USRFIFO@; st fifo_usr $?
mkfifo @ETCFIFO@; st fifo_etc $?
mkfifo "@OUT@/fifo"; st fifo_outside $?
mkfifo "@HOMEDIR@/fifo"; st fifo_airlock_home $?
mknod ws-null c 1 3; st mknod_ws_char $?
mknod ws-disk b 254 0; st mknod_ws_block $?
mknod /tmp/mem c 1 1; st mknod_tmp_char $?
mknod /dev/shm/kmsg c 1 11; st mknod_shm_char $?
python3 -c 'import os, stat; os.mknod("ws-py-mem", stat.S_IFCHR | 0o666, os.makedev(1, 1))'; st mknod_py $?
"#,
        &[("USRFIFO", &usr_fifo), ("ETCFIFO", &etc_fifo), ("OUT", &p(&outside)), ("HOMEDIR", &p(&sb.al.home))],
    ));
    r.succeeded("dev_null");
    assert_eq!(r.status("urandom_bytes"), 16, "/dev/urandom works\n{}", r.describe());
    for a in ["fifo_usr", "fifo_etc", "mknod_ws_char", "mknod_ws_block", "mknod_tmp_char", "mknod_shm_char", "mknod_py"]
    {
        r.failed(a);
    }
    for f in [&usr_fifo, &etc_fifo] {
        assert!(!Path::new(f).exists(), "{f} was created on the host");
    }
    // The host directories are invisible: a fifo there lands (at most) in the sandbox's private /tmp.
    assert!(std::fs::read_dir(&outside).expect("outside").next().is_none(), "a fifo appeared next to the workspace");
    assert!(!sb.al.home.join("fifo").exists(), "a fifo appeared in AIRLOCK_HOME");
    for e in std::fs::read_dir(&sb.ws).expect("ws").flatten() {
        let t = e.file_type().expect("type");
        assert!(
            !t.is_char_device() && !t.is_block_device(),
            "device node {} in the host's workspace",
            e.path().display()
        );
    }

    // Opening the host's devices, read and write, directly and by their major:minor through a new node.
    let list: Vec<String> = DEVICES.iter().map(|d| format!("{d:?}")).collect();
    let py = format!(
        r#"
import os
for d in [{}]:
    for flags, mode in ((os.O_RDONLY, "r"), (os.O_WRONLY, "w")):
        try:
            fd = os.open(d, flags | os.O_NONBLOCK | os.O_NOCTTY)
            os.close(fd)
            print(f"OPENED {{d}} {{mode}}")
        except OSError as e:
            print(f"refused {{d}} {{mode}}: {{e.strerror}}")
print("@done=0")
"#,
        list.join(", ")
    );
    let d = sb.python(&py);
    d.succeeded("done");
    assert!(!d.stdout().contains("OPENED"), "a host device opened inside the sandbox\n{}", d.describe());
}
