//! Attack: use the sandbox's own way out, the forwarder to the broker, to reach a host the tool's network rules do
//! not name: a plain proxied request, a CONNECT tunnel, the raw IP, and a hand-written request on the forwarder's
//! socket. `denied.test` resolves to the host's loopback server exactly like `allowed.test` and both are exempt
//! from the private-address block, so only the tool's host rules stand between them. The denied requests get 403
//! and the host server never sees them; the allowed host reached through the proxy is the control.

use crate::common::sandbox::*;

#[test]
fn sandbox_forwarder_to_denied_host() {
    let programs = ["bash", "curl", "python3"];
    let server = HttpServer::start(8);
    let port = server.port().to_string();
    let sb = Sandbox::new(&format!(
        "{WS_RW}{}\n[network]\nallow_private = [\"allowed.test\", \"denied.test\", \"127.0.0.1\"]\n\n[[tools.t.network]]\nhosts = [\"allowed.test:{port}\"]\n",
        exec_allow(&programs)
    ))
    .with_run_args(["--resolve", "allowed.test=127.0.0.1", "--resolve", "denied.test=127.0.0.1"]);
    require_programs(&programs);

    let raw = r#"import socket, sys
s = socket.create_connection(("127.0.0.1", 3128), timeout=10)
s.sendall(("GET http://denied.test:%s/raw-request HTTP/1.1\r\nHost: denied.test:%s\r\nConnection: close\r\n\r\n" % (sys.argv[1], sys.argv[1])).encode())
data = b""
while len(data) < 65536:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print("raw-status", data.split(b"\r\n", 1)[0].decode())"#;
    let r = sb.bash(&fill(
        r#"
curl -sS -m 20 -w '\n@allowed=%{http_code}\n' http://allowed.test:@PORT@/allowed-path
st denied "$(curl -sS -m 20 -o /dev/null -w '%{http_code}' http://denied.test:@PORT@/denied-path)"
curl -sS -m 20 -p http://denied.test:@PORT@/tunnel-path; st tunnel $?
st denied_ip "$(curl -sS -m 20 -o /dev/null -w '%{http_code}' http://127.0.0.1:@PORT@/ip-path)"
curl -sS -m 20 -p http://127.0.0.1:@PORT@/ip-tunnel-path; st ip_tunnel $?
python3 -c '@RAW@' @PORT@
"#,
        &[("PORT", &port), ("RAW", raw)],
    ));
    assert_eq!(r.status("allowed"), 200, "the allowed host is reachable through the proxy\n{}", r.describe());
    assert!(r.stdout().contains(HttpServer::BODY.trim()), "the allowed host's answer arrived\n{}", r.describe());
    assert_eq!(r.status("denied"), 403, "the denied host is refused by the proxy\n{}", r.describe());
    assert_eq!(r.status("denied_ip"), 403, "the raw IP is refused by the proxy\n{}", r.describe());
    r.failed("tunnel").failed("ip_tunnel");
    assert!(
        r.stdout().lines().any(|l| l.starts_with("raw-status ") && l.contains(" 403")),
        "the hand-written request on the forwarder is refused with 403\n{}",
        r.describe()
    );
    let got = server.finish();
    assert_eq!(got.requests.len(), 1, "only the allowed request reached the host server: {}", got.text());
    assert!(got.text().contains("/allowed-path"), "the allowed request arrived: {}", got.text());
}
