//! A loopback HTTPS upstream for `api.example.com`: a certificate from a throwaway CA (made with the openssl CLI),
//! served by Python, recording every request it gets. For tests of what the broker sends upstream.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The upstream: `GET /v1/models` answers a small JSON list that echoes the `Authorization` header it got (so a
/// test can see that an echoed credential is masked before the caller sees it); any other path answers 404 with a
/// JSON body of the upstream's own and an authentication challenge; every answer sets a cookie. `/v1/models/cut`
/// promises 100,000 bytes and sends about 2,000 before it hangs up. Killed when dropped.
pub struct TlsUpstream {
    pub port: u16,
    /// The CA that issued its certificate (give it to `--upstream-ca`).
    pub ca: PathBuf,
    seen: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

/// Writes `ca.pem` (a throwaway CA, for `--upstream-ca`), and `leaf.pem` and `leaf.key` (its certificate for
/// `api.example.com`, P-256, valid for a day) into `dir`, with the openssl CLI.
pub fn api_example_certificate(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"],
        &ec[..],
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=upstream test CA"],
    ]
    .concat());
    run(&[&["req"], &ec[..], &["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=api.example.com"]].concat());
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:api.example.com\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    ]);
}

impl TlsUpstream {
    pub fn start() -> TlsUpstream {
        let dir = tempfile::tempdir().unwrap();
        api_example_certificate(dir.path());
        let script = r#"
import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        with open(sys.argv[1], "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "body": body,
                                "headers": {k.lower(): v for k, v in self.headers.items()}}) + "\n")
        if self.path == "/v1/models/cut":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b'{"data": [' + b'{"id": "model-1"}, ' * 100)
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.split("?")[0] == "/v1/models":
            status, out = 200, {"object": "list", "data": [{"id": "model-1"}],
                                "echo": self.headers.get("Authorization", "")}
        else:
            status, out = 404, {"upstream_error": "no such thing here"}
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Set-Cookie", "session=upstream")
        self.send_header("X-Upstream", "yes")
        if status != 200:
            self.send_header("WWW-Authenticate", 'Bearer realm="upstream"')
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = answer
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("leaf.pem", "leaf.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
        let seen = dir.path().join("seen.jsonl");
        let python = std::env::var("AIRLOCK_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(python)
            .args(["-c", script])
            .arg(&seen)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().expect("the upstream printed its port");
        TlsUpstream { port, ca: dir.path().join("ca.pem"), seen, child, _dir: dir }
    }

    /// Every request the upstream got, oldest first: `{"method", "path", "body", "headers": {lowercase: value}}`.
    pub fn seen(&self) -> Vec<Value> {
        match std::fs::read_to_string(&self.seen) {
            Ok(text) => text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("{}: {e}", self.seen.display()),
        }
    }

    /// The daemon flags that make `api.example.com` this server, trusted.
    pub fn daemon_flags(&self) -> Vec<String> {
        vec![
            "--resolve".into(),
            "api.example.com=127.0.0.1".into(),
            "--upstream-ca".into(),
            self.ca.to_str().unwrap().into(),
        ]
    }
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A policy under which `worker` may use tool `fetch`, which holds `EXAMPLE_KEY`, and tool `t`, which holds
/// nothing; `other` may use only `t`. Provider `example` (at the upstream's port) has capability `models`
/// (GET /v1/models) and `files` (GET /v1/files), with `EXAMPLE_KEY` as a bearer token.
pub fn capability_policy(port: u16) -> String {
    format!(
        r#"version = 1
default_profile = "dev"

[network]
allow_private = ["127.0.0.1"]

[audit]
record_allows = true

[agents.worker]
tools = ["fetch", "t"]

[agents.other]
tools = ["t"]

[tools.t]

[tools.fetch]
secrets = ["EXAMPLE_KEY"]
[[tools.fetch.network]]
hosts = ["api.example.com:*"]

[secrets.EXAMPLE_KEY]
hosts = ["api.example.com:*"]

[providers.example]
base_url = "https://api.example.com:{port}"
secret = "EXAMPLE_KEY"

[providers.example.capabilities.models]
methods = ["GET"]
paths = ["/v1/models"]

[providers.example.capabilities.files]
methods = ["GET"]
paths = ["/v1/files"]
"#
    )
}
