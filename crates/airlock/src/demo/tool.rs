//! `airlock demo-tool`: the demo's stand-in for an agent's tool.
//!
//! Why the demo brings its own tool rather than curl or Python: a fresh machine may have neither, and the demo must
//! show the same thing everywhere. This is what a tool does that an attacker steers: read its environment, read
//! files, make HTTP requests. It runs inside the sandbox like any tool, so it knows nothing Airlock did not give it:
//! the proxy in `HTTPS_PROXY` (the broker, the sandbox's only way out), the CA bundle in `SSL_CERT_FILE` (the
//! broker's local CA, for the tunnels it opens), and surrogates in place of secrets.
//!
//! Each call does one thing and prints one JSON line: `{"action", "status", "body", "error"}`. A refusal is an
//! answer, not a failure: the exit code is 0 whenever the line was printed.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::CliError;

/// The most of a body the tool prints: enough to show a page, not a flood.
const MAX_BODY: usize = 4096;

pub fn run(action: &[String]) -> Result<(), CliError> {
    let usage =
        || CliError::usage("demo-tool: env NAME | read PATH | get URL [H: V]... | post URL BODY [H: V]...".into());
    let line = match action.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        // Not the value: the run's output filter masks vault values and surrogates alike, so the agent would see
        // only a mask. Its shape and a digest prefix show what the tool holds.
        ["env", name] => match std::env::var(name) {
            Ok(v) => json!({"action": "env", "name": name, "length": v.len(),
                "prefix": v.get(..8), "sha256": hex::encode(&airlock_crypto::kdf::sha256(v.as_bytes())[..8])}),
            Err(_) => json!({"action": "env", "name": name, "error": "not set"}),
        },
        ["read", path] => match std::fs::read(path) {
            Ok(data) => json!({"action": "read", "path": path, "body": text(&data)}),
            Err(e) => json!({"action": "read", "path": path, "error": e.to_string()}),
        },
        ["get", url, headers @ ..] => request("GET", url, None, headers)?,
        ["post", url, body, headers @ ..] => request("POST", url, Some(&expand(body)), headers)?,
        _ => return Err(usage()),
    };
    println!("{line}");
    Ok(())
}

/// `${NAME}` replaced by the variable's value, as a shell would: how a tool puts what it was given into a request.
fn expand(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else { break };
        out.push_str(&rest[..start]);
        out.push_str(&std::env::var(&rest[start + 2..start + len]).unwrap_or_default());
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(&data[..data.len().min(MAX_BODY)]).into_owned()
}

/// One request through the proxy the sandbox names, trusting the CA bundle it names.
fn request(method: &str, url: &str, body: Option<&str>, headers: &[&str]) -> Result<Value, CliError> {
    let agent = client()?;
    let mut call = ureq::http::Request::builder().method(method).uri(url);
    for h in headers {
        let (name, value) =
            h.split_once(':').ok_or_else(|| CliError::usage(format!("demo-tool: {h:?} is not NAME: VALUE")))?;
        call = call.header(name.trim(), expand(value.trim()));
    }
    let call = call.body(body.unwrap_or_default().to_string()).map_err(|e| CliError::usage(e.to_string()))?;
    Ok(match agent.run(call) {
        Ok(mut answer) => {
            let status = answer.status().as_u16();
            let mut data = Vec::new();
            let read = answer.body_mut().as_reader().take(MAX_BODY as u64).read_to_end(&mut data);
            let mut line = json!({"action": method, "url": url, "status": status, "body": text(&data)});
            if let Some(kind) = answer.headers().get("x-airlock-deny").and_then(|v| v.to_str().ok()) {
                line["denied"] = kind.into();
            }
            if let Err(e) = read {
                line["error"] = e.to_string().into();
            }
            line
        }
        // The proxy refusing a CONNECT, or the connection failing, arrives as an error rather than an answer.
        Err(e) => json!({"action": method, "url": url, "error": e.to_string()}),
    })
}

fn client() -> Result<ureq::Agent, CliError> {
    use ureq::tls::{PemItem, RootCerts, TlsConfig, parse_pem};
    let bundle =
        std::env::var("SSL_CERT_FILE").map_err(|_| CliError::usage("demo-tool: SSL_CERT_FILE is not set".into()))?;
    let pem = std::fs::read(&bundle).map_err(|e| CliError::input(format!("{bundle}: {e}")))?;
    let roots: Vec<_> = parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    let config = ureq::Agent::config_builder()
        .proxy(ureq::Proxy::try_from_env())
        .tls_config(TlsConfig::builder().root_certs(RootCerts::Specific(Arc::new(roots))).build())
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build();
    Ok(config.into())
}
