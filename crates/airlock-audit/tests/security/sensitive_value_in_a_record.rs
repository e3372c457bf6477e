//! Attack: get a credential into the audit log through a field that records request details (the query
//! string is where tokens most often ride). The log must hold only a keyed hash of it.

use airlock_audit::{AuditLog, AuditMac, Decision, Event};
use airlock_crypto::Key32;

use crate::common::*;

#[test]
fn a_token_in_the_query_string_is_stored_only_as_a_keyed_hash() {
    let dir = tempfile::tempdir().unwrap();
    let mac = AuditMac::new(Key32::from_bytes([9; 32]));
    let token = "sk_live_CANARY_51HxQ2eZvKYlo2C";
    let log = AuditLog::open(dir.path(), signer(), opts(), vec![]).unwrap();
    let e = Event::request(1, "agent", Some("fetch"), Decision::Allow, &["p"]).http(
        "GET",
        "https",
        "api.example.com",
        443,
        "/v1/charges",
        Some(&format!("key={token}")),
        &mac,
    );
    log.append(e).unwrap();
    log.close().unwrap();
    for f in segments(dir.path()).into_iter().chain([checkpoints_file(dir.path())]) {
        let data = String::from_utf8(std::fs::read(&f).unwrap()).unwrap();
        assert!(!data.contains("CANARY"), "{} holds the token", f.display());
    }
    let mut found = false;
    airlock_audit::reader::for_each(dir.path(), |r| {
        if let Some(q) = airlock_audit::event::get_path(&r.event, "http_request.url.query_string") {
            found = mac.matches(format!("key={token}").as_bytes(), q.as_str().unwrap());
        }
        true
    })
    .unwrap();
    assert!(found, "the keyed hash lets an investigator search for the value");
}
