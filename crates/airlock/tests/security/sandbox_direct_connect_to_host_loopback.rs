//! Attack: reach a service listening on the host's loopback (a dev server, a database, a cloud agent) straight
//! from the sandbox, without the proxy: `curl --noproxy '*'`, bash's `/dev/tcp`, `nc`, a Python socket, and an
//! abstract Unix socket (which lives in the network namespace). The host-side listeners must receive nothing.
//! The control: the sandbox does reach its forwarder (the proxy answers, and refuses the loopback target).

use std::io::ErrorKind;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};

use crate::common::random_alnum;
use crate::common::sandbox::*;

#[test]
fn sandbox_direct_connect_to_host_loopback() {
    let programs = ["bash", "curl", "nc", "python3"];
    let sb = Sandbox::new(&format!("{WS_RW}{}", exec_allow(&programs)));
    require_programs(&programs);
    let server = HttpServer::start(8);
    let abstract_name = format!("airlock-test-{}", random_alnum(16));
    let unix =
        UnixListener::bind_addr(&SocketAddr::from_abstract_name(abstract_name.as_bytes()).expect("abstract name"))
            .expect("abstract listener");
    unix.set_nonblocking(true).expect("nonblocking");
    let port = server.port().to_string();

    let r = sb.bash(&fill(
        r#"
st proxy_code "$(curl -sS -m 10 -o /dev/null -w '%{http_code}' http://127.0.0.1:@PORT@/via-proxy)"
curl -sS -m 5 --noproxy '*' http://127.0.0.1:@PORT@/noproxy; st curl_noproxy $?
curl -sS -m 5 --noproxy '*' http://localhost:@PORT@/noproxy-localhost; st curl_localhost $?
curl -sS -m 5 --noproxy '*' 'http://[::1]:@PORT@/noproxy-v6'; st curl_v6 $?
(echo -e 'GET /devtcp HTTP/1.0\r\n\r\n' > /dev/tcp/127.0.0.1/@PORT@) 2>&1; st dev_tcp $?
echo 'GET /nc HTTP/1.0' | nc -w 3 127.0.0.1 @PORT@; st nc $?
nc -z -w 3 127.0.0.1 @PORT@; st nc_scan $?
python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", @PORT@), timeout=3)
s.sendall(b"GET /python HTTP/1.0\r\n\r\n")
print(s.recv(100))'; st python $?
python3 -c '
import socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(3)
s.connect("\0@ABSTRACT@")
s.sendall(b"hello from the sandbox")'; st abstract_unix $?
"#,
        &[("PORT", &port), ("ABSTRACT", &abstract_name)],
    ));
    // The forwarder is reachable, and the proxy refuses loopback targets.
    assert_eq!(r.status("proxy_code"), 403, "the proxy answered and refused the loopback target\n{}", r.describe());
    for a in ["curl_noproxy", "curl_localhost", "curl_v6", "dev_tcp", "nc", "nc_scan", "python", "abstract_unix"] {
        r.failed(a);
    }
    r.never_shows(HttpServer::BODY.trim(), "the host server's answer");
    let got = server.finish();
    assert!(got.nothing(), "the host's loopback server was reached from the sandbox: {got:?}\n{}", got.text());
    match unix.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the host's abstract Unix socket got a connection from the sandbox: {other:?}"),
    }
}
