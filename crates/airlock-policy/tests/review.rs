//! Defects found in review, each pinned by a test.

mod common;

use common::{Setup, diag};

#[test]
fn webhook_scheme_error_does_not_echo_the_query_string() {
    let s = Setup::with_config(
        r#"
version = 1
[[audit.sinks]]
type = "webhook"
url = "http://siem.example/ingest?api_key=hunter2-SECRET"
"#,
    );
    let err = s.load_err(None);
    let d = diag(&err, "audit-sink");
    assert!(!d.message.contains("hunter2"), "the query carries a key: {}", d.message);
    assert!(d.message.contains("https"), "{}", d.message);
}
