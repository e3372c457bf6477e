//! Attack: resolve names (or tunnel data through DNS queries) from inside the sandbox: `getent hosts`, Python's
//! resolver, `curl` without the proxy, and hand-made UDP queries to public resolvers, to the host's configured
//! resolver, and to a UDP socket listening on the host's loopback. All must fail; the host socket must receive
//! nothing. (The broker resolves names for proxied requests; the tool never needs to.)

use std::io::ErrorKind;
use std::net::UdpSocket;

use crate::common::sandbox::*;

#[test]
fn sandbox_dns_lookup() {
    let programs = ["bash", "getent", "python3", "curl"];
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&programs)));
    require_programs(&programs);
    let udp = UdpSocket::bind("127.0.0.1:0").expect("host UDP socket");
    udp.set_nonblocking(true).expect("nonblocking");
    let port = udp.local_addr().expect("addr").port().to_string();
    let resolver = std::fs::read_to_string("/etc/resolv.conf")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("nameserver").map(|a| a.trim().to_string()))
                .filter(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        })
        .unwrap_or_else(|| "1.1.1.1".into());

    let query = r#"import socket, sys
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, (sys.argv[1], int(sys.argv[2])))
print("answer", s.recvfrom(512))"#;
    let r = sb.bash(&fill(
        r#"
getent hosts example.com; st getent $?
getent ahosts example.org; st getent_ahosts $?
python3 -c 'import socket; print(socket.getaddrinfo("example.com", 443))'; st getaddrinfo $?
curl -sS -m 5 --noproxy '*' http://example.com/; st curl_direct $?
python3 -c '@QUERY@' 8.8.8.8 53; st udp_public $?
python3 -c '@QUERY@' @RESOLVER@ 53; st udp_host_resolver $?
python3 -c '@QUERY@' 127.0.0.1 @PORT@; st udp_host_loopback $?
"#,
        &[("QUERY", query), ("RESOLVER", &resolver), ("PORT", &port)],
    ));
    for a in [
        "getent",
        "getent_ahosts",
        "getaddrinfo",
        "curl_direct",
        "udp_public",
        "udp_host_resolver",
        "udp_host_loopback",
    ] {
        r.failed(a);
    }
    assert!(!r.stdout().contains("answer"), "a DNS answer came back\n{}", r.describe());
    let mut buf = [0u8; 512];
    match udp.recv_from(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the host's loopback UDP socket received a datagram from the sandbox: {other:?}"),
    }
}
