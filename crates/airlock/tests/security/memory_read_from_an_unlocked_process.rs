//! Attack: while `airlock` holds an unlocked vault (here, waiting for a value on stdin), make it dump core, or
//! attach to it as the same user (ptrace, /proc/PID/mem), and read the keys out of its memory.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn memory_read_from_an_unlocked_process_is_blocked() {
    let al = Airlock::new();
    let key = al.init_keyfile();
    // Start from a permissive core limit (as many desktops have), so only Airlock's own hardening can zero it.
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -S -c unlimited 2>/dev/null || ulimit -S -c \"$(ulimit -H -c)\"; exec \"$0\" \"$@\"", BIN])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AIRLOCK_HOME", &al.home)
        .args(["--keyfile"])
        .arg(&key)
        .args(["secret", "set", "WAITING", "--raw"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    // Wait until it has unlocked and is blocked reading stdin (it opened the vault's lock-free read path by then).
    let deadline = Instant::now() + Duration::from_secs(10);
    let limits = loop {
        let l = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") S ") || Instant::now() > deadline {
            break l;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).expect("core limit line").to_string();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], &["0", "0"], "core dumps still possible: {core}");
    // A non-dumpable process's /proc entries belong to root, so a same-user attacker cannot open its memory.
    // (When the test itself runs as root, ownership can't tell the difference; the unit test checks the flag.)
    let mem_owner = std::fs::metadata(format!("/proc/{pid}/mem")).expect("stat mem").uid();
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    if me != 0 {
        assert_eq!(mem_owner, 0, "/proc/{pid}/mem is owned by uid {mem_owner}: same-user processes can read it");
    }
    drop(child.stdin.take());
    let status = child.wait().expect("wait");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(!err.contains("could not"), "hardening reported a failure: {err}");
    assert!(!status.success(), "an empty value must be refused");
}
