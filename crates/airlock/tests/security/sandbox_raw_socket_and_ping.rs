//! Attack: craft packets below TCP: a raw ICMP socket, a raw IP socket, a packet socket, an ICMP datagram socket
//! sending out, and `ping`. All must be refused (or have nowhere to go); an ordinary TCP socket object is the
//! control (creating one is allowed, only connecting is restricted).

use crate::common::sandbox::*;

#[test]
fn sandbox_raw_socket_and_ping() {
    let programs = ["bash", "python3", "ping"];
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&programs)));
    require_programs(&programs);
    let r = sb.bash(
        r#"
python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()'; st tcp_socket $?
python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)'; st raw_icmp $?
python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)'; st raw_ip $?
python3 -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)'; st raw_icmp6 $?
python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))'; st packet $?
python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(3))'; st packet_dgram $?
python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
s.sendto(b"\x08\x00\xf7\xff\x00\x00\x00\x00", ("192.0.2.1", 0))'; st icmp_dgram_out $?
ping -c 1 -W 1 192.0.2.1; st ping_out $?
ping -c 1 -W 1 8.8.8.8; st ping_dns $?
"#,
    );
    r.succeeded("tcp_socket");
    for a in ["raw_icmp", "raw_ip", "raw_icmp6", "packet", "packet_dgram", "icmp_dgram_out", "ping_out", "ping_dns"] {
        r.failed(a);
    }
}
