//! Attack: a sandboxed tool reads the host's credentials: the user's SSH private key and `/etc/shadow`.
//!
//! The tool may read the workspace and the user's home (so a file there is the control that proves the home is
//! visible): `~/.ssh` must still be hidden (the credential-store protection), `/root/.ssh` is never visible, and
//! the masked `/etc/shadow` must show none of the host's file. Neither key canary nor any host shadow line may
//! appear in any output.

use crate::common::sandbox::*;

#[test]
fn sandbox_read_host_credentials() {
    let sb = Sandbox::new(&format!(
        "[tools.t.fs]\nread = [\"${{WORKSPACE}}\", \"${{HOME}}\"]\nwrite = [\"${{WORKSPACE}}\"]\n{}",
        exec_allow(&["bash", "cat", "ls", "wc"])
    ));
    require_programs(&["bash", "cat", "ls", "wc"]);
    let key_canary = format!("-----BEGIN OPENSSH PRIVATE KEY-----\nkey-canary-{}\n", common_rand());
    let ssh = sb.home_dir.join(".ssh");
    std::fs::create_dir(&ssh).expect(".ssh");
    std::fs::write(ssh.join("id_rsa"), &key_canary).expect("fake key");
    std::fs::write(ssh.join("id_ed25519"), &key_canary).expect("fake key");
    let notes = format!("notes-canary-{}", common_rand());
    std::fs::write(sb.home_dir.join("notes.txt"), &notes).expect("notes");
    let readme = format!("readme-{}", common_rand());
    std::fs::write(sb.in_ws("readme.txt"), &readme).expect("readme");

    let script = fill(
        r#"
cat readme.txt; st ws $?
cat "@HOME@/notes.txt"; st home_notes $?
cat "@HOME@/.ssh/id_rsa"; st home_key $?
st home_key_bytes "$(cat "@HOME@/.ssh/id_rsa" "@HOME@/.ssh/id_ed25519" 2>/dev/null | wc -c)"
ls -la "@HOME@/.ssh"; st home_ssh_ls $?
cat /root/.ssh/id_rsa; st root_key $?
cat /etc/shadow; st shadow $?
st shadow_bytes "$(cat /etc/shadow /etc/gshadow /etc/shadow- 2>/dev/null | wc -c)"
"#,
        &[("HOME", &p(&sb.home_dir))],
    );
    let r = sb.bash(&script);
    r.succeeded("ws").succeeded("home_notes");
    assert!(r.stdout().contains(&readme) && r.stdout().contains(&notes), "controls readable\n{}", r.describe());
    r.failed("home_key").failed("home_ssh_ls").failed("root_key");
    assert_eq!(r.status("home_key_bytes"), 0, "bytes of the SSH key read\n{}", r.describe());
    assert_eq!(r.status("shadow_bytes"), 0, "bytes of /etc/shadow read\n{}", r.describe());
    r.never_shows("key-canary-", "the SSH key");
    for line in host_shadow_lines() {
        r.never_shows(&line, "a line of the host's /etc/shadow");
    }
}

fn common_rand() -> String {
    crate::common::random_alnum(24)
}

/// The host's shadow entries (readable when the tests run as root), to look for in the output.
fn host_shadow_lines() -> Vec<String> {
    std::fs::read_to_string("/etc/shadow")
        .map(|s| s.lines().filter(|l| l.len() > 8).map(str::to_string).collect())
        .unwrap_or_default()
}
