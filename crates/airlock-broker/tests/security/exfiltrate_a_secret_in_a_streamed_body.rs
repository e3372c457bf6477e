//! A tool uploads a large body with the secret in the middle, streamed in chunks so the value straddles chunk
//! boundaries. The broker must stop the request, and the upstream must not receive any byte of the value (the
//! body holds back the last bytes until it knows they are not the start of a protected value).

use std::io::Write;

use super::leak_common::{SECRET, harness, upstream_never_saw_the_secret};

#[test]
fn a_secret_deep_in_a_chunked_body_is_stopped_before_any_byte_of_it_leaves() {
    let h = harness();
    let url = format!("http://api.example.com:{}/upload", h.upstream.addr.port());
    let file = h.dir.path().join("body.bin");
    let mut f = std::fs::File::create(&file).unwrap();
    for i in 0..20_000u32 {
        writeln!(f, "line {i} of ordinary data").unwrap();
    }
    writeln!(f, "{{\"api_key\": \"{SECRET}\"}}").unwrap();
    for i in 0..1000u32 {
        writeln!(f, "tail {i}").unwrap();
    }
    drop(f);
    let data = format!("@{}", file.display());
    let r = h.curl(&["-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", &data, &url]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "leak");
    upstream_never_saw_the_secret(&h);

    // The same body without the value arrives whole.
    std::fs::write(&file, "ordinary data\n".repeat(40_000)).unwrap();
    let r = h.curl(&["-X", "POST", "-H", "Transfer-Encoding: chunked", "--data-binary", &data, &url]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(h.upstream.last().unwrap().body.len(), "ordinary data\n".len() * 40_000);
}
