//! Attack: replace the entire log with a self-consistent forgery — every hash, chain link and root correct —
//! signed with a key the attacker made. The checkpoint signature is what catches it.

use crate::common::*;

#[test]
fn a_self_consistent_forgery_fails_the_signature_check() {
    let real = tempfile::tempdir().unwrap();
    write_log(real.path(), 10, opts());

    let forged = tempfile::tempdir().unwrap();
    let log = airlock_audit::AuditLog::open(forged.path(), forger(), opts(), vec![]).unwrap();
    for i in 0..10 {
        log.append(event(i + 100)).unwrap();
    }
    log.close().unwrap();
    // Forged files replace the real ones.
    std::fs::remove_dir_all(real.path().join("segments")).unwrap();
    std::fs::rename(forged.path().join("segments"), real.path().join("segments")).unwrap();
    std::fs::copy(checkpoints_file(forged.path()), checkpoints_file(real.path())).unwrap();

    let r = verify(real.path());
    assert!(!r.ok());
    assert!(describe(&r).contains("checkpoint rejected"), "{}", describe(&r));
    assert!(describe(&r).contains("no valid checkpoint"), "{}", describe(&r));
}

#[test]
fn a_forgery_that_keeps_the_real_checkpoints_fails_the_root_check() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, opts());
    let forged = tempfile::tempdir().unwrap();
    let log = airlock_audit::AuditLog::open(forged.path(), forger(), opts(), vec![]).unwrap();
    for i in 0..10 {
        log.append(event(i + 100)).unwrap();
    }
    log.close().unwrap();
    std::fs::remove_dir_all(dir.path().join("segments")).unwrap();
    std::fs::rename(forged.path().join("segments"), dir.path().join("segments")).unwrap();
    let r = verify(dir.path());
    assert!(!r.ok());
    assert!(describe(&r).contains("do not match the checkpoint"), "{}", describe(&r));
}
