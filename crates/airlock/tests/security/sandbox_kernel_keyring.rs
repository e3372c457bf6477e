//! Attack: use the kernel keyrings, which are not namespaced the way files are: read the session and user
//! keyrings (where other software keeps tokens), and add keys to them (a channel out of the sandbox, and kernel
//! code reachable by any user). `keyctl show/list/add/request` and the raw `add_key`/`keyctl` system calls must
//! all fail with no key id printed (and `keyctl show` gets as far as the kernel call); Python running is the
//! control for the raw calls.

use crate::common::sandbox::*;

const KEYS_PY: &str = r#"
KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING = -3, -4
report("add_key", libc.syscall(248, b"user", b"airlock-py-key", b"value", 5, ctypes.c_long(KEY_SPEC_SESSION_KEYRING)))
report("request_key", libc.syscall(249, b"user", b"airlock-py-key", None, ctypes.c_long(0)))
report("keyctl_get_id", libc.syscall(250, 0, ctypes.c_long(KEY_SPEC_USER_KEYRING), 0))   # KEYCTL_GET_KEYRING_ID
report("keyctl_join", libc.syscall(250, 1, b"airlock-new-session"))                       # KEYCTL_JOIN_SESSION_KEYRING
"#;

#[test]
fn sandbox_kernel_keyring() {
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&["bash", "keyctl", "python3"])));
    require_programs(&["bash", "keyctl", "python3"]);
    let r = sb.bash(&format!(
        r#"
python3 -c 'print("python-ok")'; st python_works $?
keyctl show @s; st show_session $?
keyctl show @u; st show_user $?
keyctl list @u; st list_user $?
keyctl add user airlock-k v @s; st add_session $?
keyctl add user airlock-k v @u; st add_user $?
keyctl padd user airlock-k @s < /dev/null; st padd_session $?
keyctl request user airlock-k; st request $?
keyctl newring airlock-ring @s; st newring $?
keyctl session airlock-session true; st new_session $?
python3 -c {}
"#,
        python_word(KEYS_PY)
    ));
    r.succeeded("python_works");
    for a in [
        "show_session",
        "show_user",
        "list_user",
        "add_session",
        "add_user",
        "padd_session",
        "request",
        "newring",
        "new_session",
        "add_key",
        "request_key",
        "keyctl_get_id",
        "keyctl_join",
    ] {
        r.failed(a);
    }
    // A successful `keyctl add` prints the new key's serial number on a line of its own.
    assert!(
        !r.stdout().lines().any(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit())),
        "a key serial number was printed\n{}",
        r.describe()
    );
}
