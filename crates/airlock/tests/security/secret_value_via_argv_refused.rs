//! Attack: get a secret value onto the command line, where every local user can read it in `/proc/PID/cmdline`
//! and shell history keeps it. `airlock secret set NAME VALUE` must be a usage error that stores nothing (and
//! must not quietly fall back to reading stdin either).

use crate::common::*;

const PASS: &str = "argv-test-pass-phrase-marmot-41";

fn argv_value_forms(value: &str) -> Vec<Vec<String>> {
    let v = value.to_string();
    let s = |x: &str| x.to_string();
    vec![
        vec![s("secret"), s("set"), s("NAME"), v.clone()],
        vec![s("secret"), s("set"), s("NAME"), s("--host"), s("api.example.com"), v.clone()],
        vec![s("secret"), s("set"), s("NAME"), s("--raw"), s("--"), v.clone()],
        vec![s("secret"), s("set"), s("NAME"), s("--value"), v.clone()],
        vec![s("secret"), s("set"), s("NAME"), format!("--value={v}")],
        vec![s("secret"), s("rotate"), s("EXISTING"), v.clone()],
    ]
}

#[test]
fn secret_value_via_argv_refused() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    let existing = random_alnum(32).into_bytes();
    al.set("EXISTING", &existing);
    let before = std::fs::read(al.vault_file()).expect("vault");

    let value = format!("argv-canary-{}", random_alnum(32));
    let mut needles = NeedleSet::new();
    needles.add_value("argv value", value.as_bytes());
    // A valid value on stdin too: a refused command must not store that instead.
    let stdin_value = random_alnum(32);
    needles.add_value("stdin value", stdin_value.as_bytes());

    for args in argv_value_forms(&value) {
        let r = al.call(&args).stdin(stdin_value.as_bytes()).expect(2);
        assert!(r.err().contains("usage error: unexpected"), "usage error for {args:?}: {}", r.err());
        assert!(r.stdout.is_empty(), "nothing on stdout for a usage error");
    }

    assert_eq!(std::fs::read(al.vault_file()).expect("vault"), before, "the vault file was not rewritten");
    assert_eq!(al.names(), vec!["EXISTING"], "nothing was stored under NAME");
    let list = al.list();
    assert_eq!(list[0]["current_version"], 1, "EXISTING was not rotated");
    for (path, bytes) in read_tree(&al.home) {
        let hits = needles.find(&bytes);
        assert!(hits.is_empty(), "{hits:?} found in {}", path.display());
    }
    let mut v = open_with_passphrase(&al.home, PASS);
    assert_values(&mut v, &[("EXISTING".into(), existing)]);
    assert!(v.resolve(&id("NAME")).is_err());
}

/// Invariant 1 says no value reaches stderr. clap's usage error quotes the unexpected argument, so a value typed
/// on the command line by mistake would be echoed to stderr (and into any log capturing it); Airlock renders its
/// own usage errors instead.
#[test]
fn rejected_argv_value_is_not_echoed() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    let value = format!("argv-canary-{}", random_alnum(32));
    for args in argv_value_forms(&value) {
        al.call(&args).expect(2).err_lacks(&value);
    }
}
