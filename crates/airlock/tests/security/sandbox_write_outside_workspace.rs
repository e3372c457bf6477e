//! Attack: a sandboxed tool writes outside what its policy lets it write: into the read-only system directories
//! (`/usr`, `/etc`), into a host directory no policy names (next to the workspace), into `AIRLOCK_HOME`, into the
//! kernel's `/proc/sys` (the classic `core_pattern` container escape), and into a workspace the policy makes
//! read-only. Each attempt must leave the host exactly as it was; writing the workspace itself (when the policy
//! allows it) is the control.

use std::path::Path;

use crate::common::random_alnum;
use crate::common::sandbox::*;

#[test]
fn sandbox_write_outside_workspace() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["bash", "cat", "mkdir", "cp", "touch"])));
    require_programs(&["bash", "cat", "mkdir", "cp", "touch"]);
    let tag = random_alnum(16);
    let (canary_path, canary) = sb.outside_canary("outside/canary.txt");
    let outside_dir = canary_path.parent().expect("dir").to_path_buf();
    let usr_target = format!("/usr/airlock-pwned-{tag}");
    let usr_bin_target = format!("/usr/bin/airlock-pwned-{tag}");
    let etc_target = format!("/etc/airlock-pwned-{tag}");
    let host_core_pattern = std::fs::read("/proc/sys/kernel/core_pattern").ok();

    let script = fill(
        r#"
echo ok > ws-written.txt; st ws $?
echo pwned > @USR@; st usr $?
echo pwned > @USRBIN@; st usr_bin $?
echo pwned > @ETC@; st etc $?
: >> /etc/hostname; st etc_hostname_open $?
: >> /etc/passwd; st etc_passwd_open $?
echo pwned > "@CANARY@"; st outside_overwrite $?
echo pwned > "@OUTDIR@/new.txt"; st outside_new $?
mkdir -p "@OUTDIR@/newdir" && echo pwned > "@OUTDIR@/newdir/f"; st outside_mkdir $?
echo pwned > "@HOMEDIR@/airlock.toml"; st airlock_home $?
mkdir -p "@HOMEDIR@/runs" && echo pwned > "@HOMEDIR@/runs/pwned.json"; st airlock_home_runs $?
cat /proc/sys/kernel/core_pattern > /tmp/cp && cat /tmp/cp > /proc/sys/kernel/core_pattern; st core_pattern $?
"#,
        &[
            ("USR", &usr_target),
            ("USRBIN", &usr_bin_target),
            ("ETC", &etc_target),
            ("CANARY", &p(&canary_path)),
            ("OUTDIR", &p(&outside_dir)),
            ("HOMEDIR", &p(&sb.al.home)),
        ],
    );
    let r = sb.bash(&script);
    r.succeeded("ws");
    assert_eq!(std::fs::read_to_string(sb.in_ws("ws-written.txt")).expect("control file on the host"), "ok\n");
    for (name, path) in [("usr", &usr_target), ("usr_bin", &usr_bin_target), ("etc", &etc_target)] {
        r.failed(name);
        assert!(!Path::new(path).exists(), "{path} was created on the host");
    }
    r.failed("etc_hostname_open").failed("etc_passwd_open").failed("core_pattern");
    // The host's temp dir is not visible: a write there lands (at most) in the sandbox's private /tmp.
    assert_eq!(std::fs::read_to_string(&canary_path).expect("canary"), format!("{canary}\n"), "canary overwritten");
    let mut left: Vec<_> =
        std::fs::read_dir(&outside_dir).expect("outside dir").flatten().map(|e| e.file_name()).collect();
    left.sort();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("canary.txt")],
        "files appeared in a host directory outside the policy"
    );
    assert!(!sb.al.home.join("airlock.toml").exists(), "a policy was planted in AIRLOCK_HOME");
    assert!(!sb.al.home.join("runs/pwned.json").exists(), "a run record was planted in AIRLOCK_HOME");
    if let Some(before) = host_core_pattern {
        assert_eq!(
            std::fs::read("/proc/sys/kernel/core_pattern").expect("core_pattern"),
            before,
            "core_pattern changed"
        );
    }
}

#[test]
fn sandbox_write_to_read_only_workspace() {
    let sb = Sandbox::new(&format!(
        "{WS_RO}{}",
        exec_allow(&["bash", "cat", "mkdir", "rm", "mv", "chmod", "touch", "ln", "truncate"])
    ));
    require_programs(&["bash", "cat", "mkdir", "rm", "mv", "chmod", "touch", "ln", "truncate"]);
    let data = format!("workspace-data-{}\n", random_alnum(16));
    std::fs::write(sb.in_ws("data.txt"), &data).expect("data");
    std::fs::create_dir(sb.in_ws("sub")).expect("sub");
    let before = snapshot(&sb.ws);

    let r = sb.bash(
        r#"
cat data.txt; st read $?
echo pwned > new.txt; st create $?
echo pwned >> data.txt; st append $?
truncate -s 0 data.txt; st truncate $?
rm -f data.txt; st rm $?
mv data.txt moved.txt; st mv $?
chmod 777 data.txt; st chmod $?
touch -d 2000-01-01 data.txt; st touch $?
mkdir newdir; st mkdir $?
rmdir sub; st rmdir $?
ln -s /etc/passwd link; st symlink $?
ln data.txt hardlink; st hardlink $?
"#,
    );
    r.succeeded("read");
    assert!(r.stdout().contains(data.trim()), "the workspace is readable\n{}", r.describe());
    for a in ["create", "append", "truncate", "rm", "mv", "chmod", "touch", "mkdir", "rmdir", "symlink", "hardlink"] {
        r.failed(a);
    }
    assert_eq!(snapshot(&sb.ws), before, "the read-only workspace changed on the host");
}

/// Names, sizes, modes, mtimes and contents of every entry in `dir` (one level down too).
fn snapshot(dir: &Path) -> Vec<(String, u64, u32, i64, Vec<u8>)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let m = std::fs::symlink_metadata(e.path()).expect("metadata");
            if m.is_dir() {
                stack.push(e.path());
            }
            let bytes = if m.is_file() { std::fs::read(e.path()).expect("read") } else { Vec::new() };
            out.push((e.path().display().to_string(), m.len(), m.mode(), m.mtime(), bytes));
        }
    }
    out.sort();
    out
}
