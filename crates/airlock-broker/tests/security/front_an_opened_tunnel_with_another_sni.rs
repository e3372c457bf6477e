//! Attack: domain fronting through an opened tunnel. The tool asks to CONNECT to `api.example.com` (allowed), then
//! starts TLS naming `other.example.com`, hoping the broker issues a certificate for that name and carries requests
//! for it under the first host's decision. The handshake fails and nothing reaches the upstream.

use crate::common::inject_harness;

#[test]
fn front_an_opened_tunnel_with_another_sni() {
    let h = inject_harness();
    let port = h.tls_upstream.addr.port();
    let proxy = h.proxy;
    let ca = std::fs::read_to_string(h.dir.path().join("airlock-ca.pem")).unwrap();
    let result = h.runtime.block_on(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(proxy).await.unwrap();
        s.write_all(
            format!("CONNECT api.example.com:{port} HTTP/1.1\r\nHost: api.example.com:{port}\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut head = [0u8; 1024];
        let n = s.read(&mut head).await.unwrap();
        assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::pem::PemObject::pem_slice_iter(ca.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let config =
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from("other.example.com").unwrap();
        let mut tls = connector.connect(name, s).await?;
        tls.write_all(b"GET /quiet HTTP/1.1\r\nHost: other.example.com\r\n\r\n").await?;
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    });
    assert!(result.is_err(), "TLS naming another host through an opened tunnel must fail: {result:?}");
    assert_eq!(h.tls_count(), 0, "the upstream saw no request");
}
