//! Attack: another local user reads or replaces vault files through loose permissions. Airlock refuses to use a
//! vault file, key file or home directory that others can access, rather than silently trusting it.

use std::os::unix::fs::PermissionsExt;

use airlock_vault::{Vault, VaultError};

use crate::common::*;

fn chmod(p: &std::path::Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn world_readable_vault_file_is_refused() {
    let (fx, _v) = Fixture::new();
    chmod(&fx.vault_path(), 0o644);
    let e = Vault::open(&fx.home).unwrap_err();
    assert!(matches!(e, VaultError::InsecurePermissions { mode: 0o644, .. }), "{e}");
}

#[test]
fn group_writable_home_directory_is_refused() {
    let (fx, _v) = Fixture::new();
    chmod(&fx.home, 0o770);
    let e = Vault::open(&fx.home).unwrap_err();
    assert!(matches!(e, VaultError::InsecurePermissions { mode: 0o770, .. }), "{e}");
}

#[test]
fn world_readable_key_file_is_refused_with_a_fix() {
    let (fx, _v) = Fixture::new();
    chmod(&fx.keyfile, 0o644);
    let e = fx.reopen().unwrap_err().to_string();
    assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
    chmod(&fx.keyfile, 0o600);
    fx.reopen().unwrap();
}
