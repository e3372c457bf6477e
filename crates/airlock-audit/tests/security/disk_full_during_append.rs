//! Attack (or accident): the disk fills up. A record that cannot be made durable must be refused with an
//! error — the caller denies — and nothing already acknowledged may be lost or corrupted. When space returns
//! the log carries on, and records what was refused.
//!
//! A real full filesystem: the test re-executes itself under `unshare --user --map-root-user --mount` (no
//! root needed) and mounts a 512 KiB tmpfs for the log.

use std::process::Command;

use airlock_audit::{AuditError, AuditLog};

use crate::common::*;

const CHILD_ENV: &str = "AIRLOCK_AUDIT_TEST_DISK_FULL_DIR";

/// Not a test on its own: the body of the child process, run inside its own mount namespace.
#[test]
fn child_on_a_full_filesystem() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else { return };
    let dir = std::path::PathBuf::from(dir);
    let status = Command::new("mount").args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"]).arg(&dir).status().unwrap();
    assert!(status.success(), "mount tmpfs failed");
    let filler = dir.join("filler");
    std::fs::write(&filler, vec![0u8; 128 * 1024]).unwrap();
    let log_dir = dir.join("audit");

    let log = AuditLog::open(&log_dir, signer(), opts(), vec![]).unwrap();
    let mut acked = vec![];
    let mut refused = None;
    for i in 0..100_000u64 {
        match log.append(event(i)) {
            Ok(r) => acked.push((r.seq, i)),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let err = refused.expect("the filesystem never filled up");
    match &err {
        AuditError::WriteFailed { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{err}")
        }
        other => panic!("expected WriteFailed, got {other}"),
    }
    assert!(err.to_string().contains("must be denied"), "{err}");
    // Still full: still refused, and still nothing half-written.
    assert!(log.append(event(999_999)).is_err());

    // Space comes back.
    std::fs::remove_file(&filler).unwrap();
    let after = log.append(event(1_000_000)).unwrap();
    log.close().unwrap();

    let r = verify(&log_dir);
    assert!(r.ok(), "{}", describe(&r));
    let mut seen = std::collections::HashMap::new();
    let mut rollback_recorded = false;
    airlock_audit::reader::for_each(&log_dir, |s| {
        seen.insert(s.seq, s.event["message"].as_str().unwrap_or_default().to_owned());
        rollback_recorded |= s.event["message"].as_str().is_some_and(|m| m.contains("were not written"));
        true
    })
    .unwrap();
    for (seq, i) in &acked {
        assert_eq!(seen.get(seq).map(String::as_str), Some(format!("request {i}").as_str()), "seq {seq} lost");
    }
    assert!(rollback_recorded, "the refused records are accounted for in the log");
    assert!(after.seq > acked.last().unwrap().0);
    println!("child: ok ({} records before the disk filled)", acked.len());
}

#[test]
fn a_full_disk_refuses_records_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "disk_full_during_append::child_on_a_full_filesystem", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .output()
        .expect("run unshare (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stdout.contains("child: ok"), "child failed:\n{stdout}\n{stderr}");
}
