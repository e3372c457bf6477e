//! Attack: read the vault (and its key file) straight from disk: `$AIRLOCK_HOME/vault.airlock` by its host path.
//! With the default policy the Airlock home is simply not there; with a policy that (wrongly) grants reading the
//! Airlock home, it must still be masked. Reading the workspace is the control; no byte of the vault file may
//! appear in any output.

use crate::common::sandbox::*;

fn attempt(sb: &Sandbox) -> SbRun {
    let key = sb.al.path("vault.key");
    sb.bash(&fill(
        r#"
cat readme.txt; st ws $?
cat "@VAULT@" > /tmp/v; st vault $?
st vault_bytes "$(cat "@VAULT@" 2>/dev/null | wc -c)"
ls -la "@HOME@"; st home_list $?
cat "@HOME@"/*; st home_glob $?
cat "@KEY@"; st keyfile $?
find / -xdev -name 'vault.airlock' 2>/dev/null; st find_done 0
"#,
        &[("VAULT", &p(&sb.al.vault_file())), ("HOME", &p(&sb.al.home)), ("KEY", &p(&key))],
    ))
}

fn check(sb: &Sandbox, r: &SbRun) {
    r.succeeded("ws");
    assert!(r.stdout().contains("readme"), "{}", r.describe());
    r.failed("vault").failed("home_list").failed("home_glob").failed("keyfile");
    assert_eq!(r.status("vault_bytes"), 0, "bytes of the vault read\n{}", r.describe());
    assert!(!r.stdout().contains("vault.airlock"), "the vault file was found\n{}", r.describe());
    // The vault's integrity trailer is unique to this vault: none of its lines may show up.
    let vault = std::fs::read_to_string(sb.al.vault_file()).expect("vault");
    for line in vault.lines().filter(|l| l.len() >= 16) {
        let probe = &line[line.len().saturating_sub(48)..];
        r.never_shows(probe, "a line of the vault file");
    }
    let key = std::fs::read(sb.al.path("vault.key")).expect("key file");
    assert!(
        !r.all_output().as_bytes().windows(key.len().min(16)).any(|w| w == &key[..key.len().min(16)]),
        "the vault key file appeared in the output"
    );
}

#[test]
fn sandbox_read_vault_file() {
    let programs = ["bash", "cat", "ls", "wc", "find"];
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&programs)));
    require_programs(&programs);
    std::fs::write(sb.in_ws("readme.txt"), "readme\n").expect("readme");
    let r = attempt(&sb);
    check(&sb, &r);
}

#[test]
fn sandbox_read_vault_file_when_policy_grants_airlock_home() {
    let programs = ["bash", "cat", "ls", "wc", "find"];
    let sb = Sandbox::new(&format!(
        "[tools.t.fs]\nread = [\"${{WORKSPACE}}\", \"${{AIRLOCK_HOME_PLACEHOLDER}}\"]\nwrite = [\"${{WORKSPACE}}\"]\n{}",
        exec_allow(&programs)
    ));
    require_programs(&programs);
    // The policy names the Airlock home by its absolute path.
    let text = std::fs::read_to_string(&sb.config).expect("config");
    std::fs::write(&sb.config, text.replace("${AIRLOCK_HOME_PLACEHOLDER}", &p(&sb.al.home))).expect("config");
    std::fs::write(sb.in_ws("readme.txt"), "readme\n").expect("readme");
    let r = attempt(&sb);
    check(&sb, &r);
}
