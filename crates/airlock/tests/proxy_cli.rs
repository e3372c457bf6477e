//! `airlock proxy` as a subprocess on a real vault, policy file and audit log: curl through it to a loopback
//! upstream, allowed and denied, then the audit log holds both decisions and verifies.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use common::Airlock;

const PASS: &str = "correct horse battery staple lamp";
/// A vault value a tool must never get out through the proxy, nor see in any output or log.
const VALUE: &str = "ghp_PROXYCANARY0123456789abcdefghijklmn";

const POLICY: &str = r#"
version = 1
default_profile = "dev"

[network]
allow_private = ["127.0.0.1"]

[audit]
record_allows = true

[agents.agent]
tools = ["fetch"]

[tools.fetch]
[[tools.fetch.network]]
hosts = ["api.example.com:*"]
"#;

/// A loopback HTTP/1.1 server answering every request with `hello from upstream`, one request per connection.
fn upstream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = "hello from upstream";
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    port
}

fn curl(proxy: &str, url: &str) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-x", proxy, "-w", "\n%{http_code}", url])
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// `airlock proxy` for agent `agent`, tool `fetch`, with `$AIRLOCK_HOME/airlock.toml`, `api.example.com` pinned to
/// loopback and `extra` arguments; returns the child and its stdout lines.
fn spawn_proxy(
    al: &Airlock,
    extra: &[&str],
) -> (std::process::Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let config = al.home.join("airlock.toml");
    let mut args = vec!["proxy", "--agent", "agent", "--tool", "fetch", "--config", config.to_str().unwrap()];
    args.extend(["--resolve", "api.example.com=127.0.0.1", "--exit-after", "60"]);
    args.extend_from_slice(extra);
    let (mut child, feeder) = al.call(args).spawn();
    feeder.join().unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// The `KEY=VALUE` lines the proxy prints at start, up to the last one (`NODE_EXTRA_CA_CERTS`).
fn printed_env(
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
) -> std::collections::HashMap<String, String> {
    let mut env = std::collections::HashMap::new();
    for line in lines {
        let line = line.unwrap();
        let (k, v) = line.split_once('=').expect("KEY=VALUE lines");
        env.insert(k.to_string(), v.to_string());
        if k == "NODE_EXTRA_CA_CERTS" {
            break;
        }
    }
    env
}

/// The `HTTP_PROXY=` line's value from the proxy's stdout.
fn proxy_url(lines: &mut std::io::Lines<BufReader<std::process::ChildStdout>>) -> String {
    loop {
        let line = lines.next().expect("the proxy printed its address").unwrap();
        if let Some(p) = line.strip_prefix("HTTP_PROXY=") {
            return p.to_string();
        }
    }
}

#[test]
fn proxy_serves_policy_and_records_every_decision() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    al.set("gh", VALUE.as_bytes());
    std::fs::write(al.home.join("airlock.toml"), POLICY).unwrap();
    let port = upstream();
    let (mut child, mut lines) = spawn_proxy(&al, &["--resolve", "other.example.com=127.0.0.1"]);
    let proxy = proxy_url(&mut lines);

    let (status, body) = curl(&proxy, &format!("http://api.example.com:{port}/v1"));
    assert_eq!((status, body.as_str()), (200, "hello from upstream"));
    let (status, body) = curl(&proxy, &format!("http://other.example.com:{port}/secret-path"));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"kind\":\"policy\""), "{body}");
    let (status, body) = curl(&proxy, &format!("http://api.example.com:{port}/v1?token={VALUE}"));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("\"kind\":\"leak\"") && body.contains("default/gh"), "{body}");
    assert!(!body.contains(VALUE));

    // Ctrl-C: the proxy stops and closes (signs) its audit log.
    let pid = child.id().to_string();
    std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the proxy exited with {status}");

    al.call(["audit", "verify"]).expect(0).out_has("OK");
    let q = al.call(["--json", "audit", "query", "--type", "api"]).expect(0);
    let events: Vec<serde_json::Value> = q.out().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let find = |host: &str| {
        events
            .iter()
            .find(|e| e["http_request"]["url"]["hostname"] == host)
            .unwrap_or_else(|| panic!("no record for {host} in {events:#?}"))
    };
    let allowed = find("api.example.com");
    assert_eq!(allowed["actor"]["authorizations"][0]["decision"], "allow", "{allowed:#}");
    assert_eq!(allowed["dst_endpoint"]["ip"], "127.0.0.1");
    let denied = find("other.example.com");
    assert_eq!(denied["actor"]["authorizations"][0]["decision"], "deny", "{denied:#}");
    assert_eq!(denied["unmapped"]["airlock"]["deny_kind"], "policy");
    let leak = events.iter().find(|e| e["unmapped"]["airlock"]["deny_kind"] == "leak").expect("the leak was recorded");
    assert!(leak["http_request"]["url"]["path"].as_str().unwrap().starts_with("hmac-sha256:"), "{leak:#}");
    let findings = al.call(["--json", "audit", "query", "--type", "finding"]).expect(0);
    assert!(findings.out().contains("default/gh"), "a Detection Finding names the secret: {}", findings.out());
    for file in std::fs::read_dir(al.home.join("audit/segments")).unwrap() {
        let data = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!data.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()), "the value reached the audit log");
    }
    let t = al.transcript();
    assert!(!t.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()), "the value was printed");
}

#[test]
fn proxy_refuses_a_non_loopback_listen_address() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    std::fs::write(al.home.join("airlock.toml"), POLICY).unwrap();
    al.call(["proxy", "--agent", "agent", "--tool", "fetch", "--listen", "0.0.0.0:0"])
        .expect(2)
        .err_has("loopback only");
}

#[test]
fn a_remote_proxy_serves_only_clients_with_its_token() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    std::fs::write(al.home.join("airlock.toml"), POLICY).unwrap();
    let port = upstream();
    // Loopback keeps the test local; --allow-remote is what switches on token authentication.
    let (mut child, mut lines) = spawn_proxy(&al, &["--allow-remote"]);
    let proxy = proxy_url(&mut lines);
    let (user_and_token, addr) = proxy.trim_start_matches("http://").split_once('@').expect("a token in the URL");
    let token = user_and_token.strip_prefix("airlock:").unwrap();
    assert!(token.len() >= 43, "a 256-bit token");
    let url = format!("http://api.example.com:{port}/v1");
    assert_eq!(curl(&proxy, &url).0, 200);
    let (status, body) = curl(&format!("http://{addr}"), &url);
    assert_eq!(status, 407, "{body}");
    let (status, _) = curl(&format!("http://airlock:{}x@{addr}", &token[..token.len() - 1]), &url);
    assert_eq!(status, 407, "a wrong token is refused");
    // The capability API on the same listener takes the token as its own Authorization (userinfo in the URL).
    let call = |url: &str| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "20", "--noproxy", "*", "-w", "\n%{http_code}", "-X", "POST"])
            .args(["--data-binary", r#"{"method":"GET","path":"/v1/models"}"#, url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse::<u16>().unwrap_or(0), body.to_string())
    };
    let (status, body) = call(&format!("http://{addr}/v1/capabilities/openai/models"));
    assert_eq!(status, 407, "{body}");
    let (status, body) = call(&format!("{proxy}/v1/capabilities/openai/models"));
    assert_eq!(status, 403, "with the token, the call is decided: {body}");
    assert!(body.contains("OPENAI_API_KEY"), "the tool is not given the provider's secret: {body}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sighup_reloads_the_policy_and_a_broken_one_is_refused() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    let config = al.home.join("airlock.toml");
    std::fs::write(&config, POLICY).unwrap();
    let port = upstream();
    let (mut child, mut lines) = spawn_proxy(&al, &["--resolve", "other.example.com=127.0.0.1"]);
    let proxy = proxy_url(&mut lines);
    let other = format!("http://other.example.com:{port}/");
    assert_eq!(curl(&proxy, &other).0, 403);
    let hup = |pid: u32| {
        let ok = std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status().unwrap().success();
        assert!(ok, "kill -HUP");
    };
    // Until the reload lands, at most 5 s.
    let until = |want: u16| {
        for _ in 0..50 {
            if curl(&proxy, &other).0 == want {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        false
    };
    std::fs::write(
        &config,
        POLICY.replace(r#"hosts = ["api.example.com:*"]"#, r#"hosts = ["api.example.com:*", "other.example.com:*"]"#),
    )
    .unwrap();
    hup(child.id());
    assert!(until(200), "SIGHUP made the new rule apply");
    // A config with an error is refused; the policy in force stays.
    std::fs::write(&config, "version = 1\n[tools.fetch]\nnetwork = 7\n").unwrap();
    hup(child.id());
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(curl(&proxy, &other).0, 200, "a broken config must not replace the working one");
    assert!(child.try_wait().unwrap().is_none(), "the proxy keeps running");
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
    // Both reloads are on the record: the one applied and the one refused.
    let q = al.call(["--json", "audit", "query", "--type", "entity"]).expect(0);
    let events: Vec<serde_json::Value> = q.out().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let reloads: Vec<&serde_json::Value> = events.iter().filter(|e| e["entity"]["type"] == "policy").collect();
    assert_eq!(reloads.len(), 2, "{events:#?}");
    assert_eq!(reloads[0]["status"], "Success", "{:#}", reloads[0]);
    assert_eq!(reloads[1]["status"], "Failure", "{:#}", reloads[1]);
}

const INJECT_POLICY: &str = r#"
version = 1
default_profile = "dev"

[network]
allow_private = ["127.0.0.1"]

[agents.agent]
tools = ["fetch"]

[tools.fetch]
secrets = ["API_TOKEN"]
[[tools.fetch.network]]
hosts = ["api.example.com:*"]

[secrets.API_TOKEN]
hosts = ["api.example.com:*"]
"#;

/// An HTTPS upstream for `api.example.com` (certificate from a throwaway CA made with the openssl CLI), in Python,
/// that appends each request's headers to `seen` and answers `hello over tls` with a session cookie. Returns the
/// port and the CA file.
/// Kills the upstream even when the test fails (it would otherwise hold the test's output pipe open).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tls_upstream(dir: &std::path::Path, seen: &std::path::Path) -> (u16, std::path::PathBuf, KillOnDrop) {
    common::upstream::api_example_certificate(dir);
    // `/user` answers `hello over tls` with a session cookie; anything else is a file under `www/` (a git
    // repository served over git's "dumb" HTTP protocol, say).
    let script = r#"
import http.server, json, ssl, sys
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory="www", **k)
    def do_GET(self):
        with open(sys.argv[1], "a") as f:
            f.write(json.dumps({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}}) + "\n")
        if self.path != "/user":
            return super().do_GET()
        body = b"hello over tls"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "session=upstream")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("leaf.pem", "leaf.key")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
    let python = std::env::var("AIRLOCK_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .arg(seen)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    (line.trim().parse().expect("the upstream printed its port"), dir.join("ca.pem"), KillOnDrop(child))
}

#[test]
fn proxy_hands_out_a_surrogate_and_injects_the_real_value_into_an_opened_tunnel() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    al.set("API_TOKEN", VALUE.as_bytes());
    std::fs::write(al.home.join("airlock.toml"), INJECT_POLICY).unwrap();
    let seen = al.path("seen.jsonl");
    let updir = al.path("upstream");
    std::fs::create_dir_all(&updir).unwrap();
    let (port, upstream_ca, server) = tls_upstream(&updir, &seen);

    let (mut child, lines) = spawn_proxy(&al, &["--upstream-ca", upstream_ca.to_str().unwrap()]);
    let env = printed_env(lines);
    let surrogate = env["API_TOKEN"].clone();
    assert_ne!(surrogate, VALUE);
    assert!(!surrogate.contains(VALUE) && surrogate.len() >= 16, "{surrogate}");
    for k in ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"] {
        assert_eq!(env[k], env["CURL_CA_BUNDLE"]);
    }
    let bundle = std::fs::read_to_string(&env["CURL_CA_BUNDLE"]).unwrap();
    assert!(bundle.starts_with("-----BEGIN CERTIFICATE-----"));

    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-D", "-", "-x", &env["HTTPS_PROXY"], "--cacert", &env["CURL_CA_BUNDLE"]])
        .args(["-H", &format!("Authorization: Bearer {surrogate}")])
        .arg(format!("https://api.example.com:{port}/user"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.ends_with("hello over tls"), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.to_ascii_lowercase().contains("set-cookie"), "the session cookie stays with the broker: {text}");
    let seen_text = std::fs::read_to_string(&seen).unwrap();
    let headers: serde_json::Value = serde_json::from_str(seen_text.lines().last().unwrap()).unwrap();
    assert_eq!(headers["authorization"], format!("Bearer {VALUE}"), "the upstream got the real value");

    // git clone over HTTPS through the proxy, trusting only what the proxy printed, with the surrogate as its
    // credential: the server sees the real value on every request, git never does.
    let www = updir.join("www");
    let git = |args: &[&str], dir: &std::path::Path| {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &updir)
            .env("https_proxy", &env["HTTPS_PROXY"])
            .env("GIT_SSL_CAINFO", &env["GIT_SSL_CAINFO"])
            .env_remove("HTTPS_PROXY")
            .env_remove("ALL_PROXY")
            .env_remove("NO_PROXY")
            .output()
            .expect("git is installed");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let work = updir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::create_dir_all(&www).unwrap();
    git(&["init", "-q", "-b", "main"], &work);
    std::fs::write(work.join("README"), "through the broker\n").unwrap();
    git(&["add", "README"], &work);
    git(&["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one"], &work);
    git(&["clone", "-q", "--bare", work.to_str().unwrap(), www.join("repo.git").to_str().unwrap()], &updir);
    git(&["update-server-info"], &www.join("repo.git"));
    let url = format!("https://api.example.com:{port}/repo.git");
    let header = format!("http.extraHeader=Authorization: Bearer {surrogate}");
    git(&["-c", &header, "clone", "-q", &url, "cloned"], &updir);
    assert_eq!(std::fs::read_to_string(updir.join("cloned/README")).unwrap(), "through the broker\n");
    let seen_text = std::fs::read_to_string(&seen).unwrap();
    let git_requests: Vec<serde_json::Value> = seen_text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|h| h["path"].as_str().unwrap_or("").starts_with("/repo.git"))
        .collect();
    assert!(git_requests.len() >= 3, "git fetched refs and objects: {git_requests:?}");
    for h in &git_requests {
        assert_eq!(h["authorization"], format!("Bearer {VALUE}"), "{h}");
    }

    // The CA `airlock ca path` prints is the one the proxy used.
    al.call(["ca", "path"]).expect(0).out_has(&env["CURL_CA_BUNDLE"]);

    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
    drop(server);
    let findings = al.call(["--json", "audit", "query", "--type", "api"]).expect(0);
    assert!(findings.out().contains("secrets_injected"), "the use of the secret was recorded: {}", findings.out());
    let t = al.transcript();
    assert!(!t.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()), "the value was printed");
}

#[test]
fn a_planted_canary_in_a_request_is_refused_and_recorded_as_a_finding() {
    use base64::Engine as _;
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    std::fs::write(al.home.join("airlock.toml"), POLICY).unwrap();
    let planted = al.call(["--json", "canary", "new", "--session", "s1", "--purpose", "system-prompt"]).expect(0);
    let v: serde_json::Value = serde_json::from_str(planted.out().trim()).unwrap();
    let line = v["plant"].as_str().unwrap();
    let token = line.split_once("reference: ").unwrap().1.split('.').next().unwrap().to_string();
    assert_eq!(token.len(), 26, "{line}");
    al.call(["canary", "list"]).expect(0).out_has("s1 system-prompt");
    let port = upstream();
    let (mut child, mut lines) = spawn_proxy(&al, &[]);
    let proxy = proxy_url(&mut lines);
    // The hijacked model was told to send its instructions along, base64-encoded so that they look like data.
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("my instructions: {line}"));
    let (status, body) = curl(&proxy, &format!("http://api.example.com:{port}/v1?q={encoded}"));
    assert_eq!(status, 403, "{body}");
    // The client learns it was a leak, not that the value was planted.
    assert!(body.contains("\"kind\":\"leak\""), "{body}");
    let (status, _) = curl(&proxy, &format!("http://api.example.com:{port}/v1?q=hello"));
    assert_eq!(status, 200);
    let pid = child.id().to_string();
    std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());
    let findings = al.call(["--json", "audit", "query", "--type", "finding"]).expect(0);
    assert!(findings.out().contains("s1/system-prompt"), "a Detection Finding names the canary: {}", findings.out());
    assert!(!findings.out().contains(&token));
}

/// `[secrets.API_TOKEN] source = "env://..."` with `[backends.env] file`: the value lives in a `.env` file, not the
/// vault; the tool still gets only a surrogate, the upstream the real value, and the read is in the audit log.
#[test]
fn a_secret_held_in_a_dotenv_file_is_injected_and_its_read_is_audited() {
    use std::os::unix::fs::PermissionsExt;
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    let policy = INJECT_POLICY.replace(
        "[secrets.API_TOKEN]\n",
        "[backends.env]\nfile = \"secrets.env\"\n\n[secrets.API_TOKEN]\nsource = \"env://TEAM_API_TOKEN\"\n",
    );
    std::fs::write(al.home.join("airlock.toml"), policy).unwrap();
    let dotenv = al.home.join("secrets.env");
    std::fs::write(&dotenv, format!("# the team's token\nTEAM_API_TOKEN={VALUE}\n")).unwrap();
    std::fs::set_permissions(&dotenv, std::fs::Permissions::from_mode(0o600)).unwrap();
    let seen = al.path("seen.jsonl");
    let updir = al.path("upstream");
    std::fs::create_dir_all(&updir).unwrap();
    let (port, upstream_ca, server) = tls_upstream(&updir, &seen);

    let (mut child, lines) = spawn_proxy(&al, &["--upstream-ca", upstream_ca.to_str().unwrap()]);
    let env = printed_env(lines);
    let surrogate = env.get("API_TOKEN").expect("a surrogate for the .env-held secret").clone();
    assert_ne!(surrogate, VALUE);
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "-x", &env["HTTPS_PROXY"], "--cacert", &env["CURL_CA_BUNDLE"]])
        .args(["-H", &format!("Authorization: Bearer {surrogate}")])
        .arg(format!("https://api.example.com:{port}/user"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello over tls", "{}", String::from_utf8_lossy(&out.stderr));
    let seen_text = std::fs::read_to_string(&seen).unwrap();
    let headers: serde_json::Value = serde_json::from_str(seen_text.lines().last().unwrap()).unwrap();
    assert_eq!(headers["authorization"], format!("Bearer {VALUE}"), "the upstream got the .env file's value");

    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
    drop(server);
    let api = al.call(["--json", "audit", "query", "--type", "api"]).expect(0);
    let read = api
        .out()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["api"]["operation"] == "secret.read")
        .unwrap_or_else(|| panic!("no secret.read record: {}", api.out()));
    assert_eq!(read["unmapped"]["airlock"]["secret_source"], "env://TEAM_API_TOKEN", "{read:#}");
    assert_eq!(read["actor"]["app_name"], "fetch", "{read:#}");
    let t = al.transcript();
    assert!(!t.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()), "the value was printed");
    // The vault never held it.
    assert!(!al.call(["secret", "list"]).expect(0).out().contains("API_TOKEN"));
}

/// A secret whose store is down: the proxy does not start without it (no tool runs with a surrogate that injects
/// nothing), and the exit code says "try again later" (17), not "internal error".
#[test]
fn a_store_that_is_down_stops_the_proxy_with_the_try_again_exit_code() {
    let al = Airlock::with_passphrase(PASS);
    al.init_passphrase();
    let policy = INJECT_POLICY.replace(
        "[secrets.API_TOKEN]\n",
        &format!(
            "{}[secrets.API_TOKEN]\nsource = \"bao://secret/team#api_token\"\n",
            common::bao::unreachable_backend("AIRLOCK_BAO_TOKEN")
        ),
    );
    std::fs::write(al.home.join("airlock.toml"), policy).unwrap();
    let config = al.home.join("airlock.toml");
    al.call(["proxy", "--agent", "agent", "--tool", "fetch", "--config", config.to_str().unwrap()])
        .env("AIRLOCK_BAO_TOKEN", "s.not-a-real-token")
        .expect(17)
        .err_has("bao://secret/team#api_token")
        .err_has("unavailable");
}
