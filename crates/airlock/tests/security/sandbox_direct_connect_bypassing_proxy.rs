//! Attack: get around the broker by not using the proxy: `curl --noproxy '*'` to an outside address
//! (192.0.2.1, TEST-NET-1), the same with the proxy variables unset, a raw Python TCP connect and UDP send, and a
//! host that the tool may reach through the proxy (allowed.test, pinned to the host's loopback server) contacted
//! directly after unsetting the proxy variables. Only the proxied request may reach the host server (the control).

use crate::common::sandbox::*;

const PROXY_VARS: &str = "HTTP_PROXY HTTPS_PROXY ALL_PROXY http_proxy https_proxy all_proxy";

#[test]
fn sandbox_direct_connect_bypassing_proxy() {
    let programs = ["bash", "curl", "python3", "env"];
    let server = HttpServer::start(8);
    let port = server.port().to_string();
    let sb = Sandbox::new(&format!(
        "{WS_RW}{}\n[network]\nallow_private = [\"allowed.test\"]\n\n[[tools.t.network]]\nhosts = [\"allowed.test:{port}\"]\n",
        exec_allow(&programs)
    ))
    .with_run_args(["--resolve", "allowed.test=127.0.0.1"]);
    require_programs(&programs);

    let r = sb.bash(&fill(
        r#"
st control "$(curl -sS -m 20 -o /dev/null -w '%{http_code}' http://allowed.test:@PORT@/proxied-control)"
curl -sS -m 5 --noproxy '*' http://192.0.2.1/noproxy; st testnet_noproxy $?
curl -sS -m 5 --noproxy '*' https://192.0.2.1/noproxy-tls; st testnet_tls $?
env -u HTTP_PROXY -u http_proxy -u ALL_PROXY -u all_proxy curl -sS -m 5 http://192.0.2.1/env-u; st testnet_env_u $?
python3 -c 'import socket; socket.create_connection(("192.0.2.1", 80), timeout=3)'; st python_tcp $?
python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.1", 53))'; st python_udp $?
(
  unset @VARS@
  curl -sS -m 5 http://allowed.test:@PORT@/unset-by-name; st unset_by_name $?
  curl -sS -m 5 --resolve allowed.test:@PORT@:127.0.0.1 http://allowed.test:@PORT@/unset-pinned; st unset_pinned $?
  curl -sS -m 5 http://127.0.0.1:@PORT@/unset-ip; st unset_ip $?
)
"#,
        &[("PORT", &port), ("VARS", PROXY_VARS)],
    ));
    assert_eq!(r.status("control"), 200, "the proxied request to the allowed host works\n{}", r.describe());
    for a in [
        "testnet_noproxy",
        "testnet_tls",
        "testnet_env_u",
        "python_tcp",
        "python_udp",
        "unset_by_name",
        "unset_pinned",
        "unset_ip",
    ] {
        r.failed(a);
    }
    let got = server.finish();
    assert_eq!(got.requests.len(), 1, "only the proxied control reached the host server: {}", got.text());
    assert!(got.text().contains("/proxied-control"), "the control request arrived: {}", got.text());
    for path in ["/unset-by-name", "/unset-pinned", "/unset-ip"] {
        assert!(!got.text().contains(path), "{path} reached the host server without the proxy");
    }
}
