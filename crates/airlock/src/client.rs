//! The CLI through a running daemon: with `AIRLOCK_TOKEN` set and `airlock serve` answering on this home's socket,
//! `airlock run`, `ps`, `kill`, `pause`, `resume` and `lockdown` are requests to the daemon, made as that token's
//! agent. Otherwise they work standalone, as before.
//!
//! Why opt in by token rather than by the socket alone: the token says who is acting (the daemon decides by the
//! agent's role and subtree, and audits under its name), and a CLI that needs no vault passphrase because the
//! daemon holds the vault should still prove who it is. `AIRLOCK_DAEMON=off` forces standalone.
//!
//! The client is a few lines of HTTP/1.1 over the Unix socket (one request per connection, `Connection: close`,
//! chunked answers decoded), not a library: it only ever talks to this daemon.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::CliError;

pub struct Client {
    socket: std::path::PathBuf,
    token: Zeroizing<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("socket", &self.socket).finish_non_exhaustive()
    }
}

/// An answer: status and body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Result<Value, CliError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| CliError { code: 1, message: format!("the daemon answered something that is not JSON: {e}") })
    }

    /// The answer as a value if it is a success; a problem document becomes an error with a fitting exit code.
    pub fn ok(self) -> Result<Value, CliError> {
        let v = self.json()?;
        if (200..300).contains(&self.status) {
            return Ok(v);
        }
        let detail = v["detail"].as_str().unwrap_or("no detail").to_string();
        let code = match self.status {
            400 | 413 | 415 => 8,
            401 => 3,
            403 => 9,
            404 => 4,
            409 => 5,
            _ => 1,
        };
        Err(CliError { code, message: format!("the daemon refused ({}): {detail}", self.status) })
    }
}

impl Client {
    /// The daemon's client, if the environment asks for one and the daemon answers.
    pub fn from_env(home: &Path) -> Option<Client> {
        if std::env::var("AIRLOCK_DAEMON").is_ok_and(|v| v == "off") {
            return None;
        }
        let token = Zeroizing::new(std::env::var("AIRLOCK_TOKEN").ok().filter(|t| !t.is_empty())?);
        let socket = home.join("airlock.sock");
        UnixStream::connect(&socket).ok()?;
        Some(Client { socket, token })
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>) -> Result<BufReader<UnixStream>, CliError> {
        let io = |e: std::io::Error| CliError { code: 1, message: format!("talking to the daemon: {e}") };
        let mut s = UnixStream::connect(&self.socket).map_err(io)?;
        s.set_write_timeout(Some(Duration::from_secs(30))).map_err(io)?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = Zeroizing::new(format!(
            "{method} {path} HTTP/1.1\r\nHost: airlock\r\nAuthorization: Bearer {}\r\nConnection: close\r\n",
            self.token.as_str()
        ));
        if !body.is_empty() {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        head.push_str(&body);
        // The daemon may answer (a refusal) and close before reading the body: the answer still counts.
        match s.write_all(head.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.map_err(io)?,
        }
        Ok(BufReader::new(s))
    }

    /// One request, the whole answer.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, CliError> {
        let mut r = self.send(method, path, body)?;
        let (status, chunked) = read_head(&mut r)?;
        let mut out = Vec::new();
        read_body(&mut r, chunked, &mut |chunk| out.extend_from_slice(chunk))?;
        Ok(Answer { status, body: out })
    }

    /// One request whose answer is NDJSON: `line` gets each line as it arrives. A refusal is returned whole.
    pub fn stream(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        mut line: impl FnMut(&str),
    ) -> Result<Option<Answer>, CliError> {
        let mut r = self.send(method, path, body)?;
        let (status, chunked) = read_head(&mut r)?;
        if !(200..300).contains(&status) {
            let mut out = Vec::new();
            read_body(&mut r, chunked, &mut |chunk| out.extend_from_slice(chunk))?;
            return Ok(Some(Answer { status, body: out }));
        }
        let mut pending: Vec<u8> = Vec::new();
        read_body(&mut r, chunked, &mut |chunk| {
            pending.extend_from_slice(chunk);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = pending.drain(..=end).collect();
                line(String::from_utf8_lossy(&l).trim_end());
            }
        })?;
        Ok(None)
    }
}

fn bad(what: &str) -> CliError {
    CliError { code: 1, message: format!("the daemon's answer is malformed: {what}") }
}

/// The status line and headers; whether the body is chunked.
fn read_head(r: &mut impl BufRead) -> Result<(u16, bool), CliError> {
    let io = |e: std::io::Error| CliError { code: 1, message: format!("reading the daemon's answer: {e}") };
    let mut line = String::new();
    r.read_line(&mut line).map_err(io)?;
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("status line"))?;
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(&mut line).map_err(io)? == 0 {
            return Err(bad("headers end early"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Ok((status, chunked));
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("transfer-encoding")
        {
            chunked = v.trim().eq_ignore_ascii_case("chunked");
        }
    }
}

/// The body, chunk by chunk: decoded if chunked, else everything until the daemon closes.
fn read_body(r: &mut impl BufRead, chunked: bool, each: &mut dyn FnMut(&[u8])) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError { code: 1, message: format!("reading the daemon's answer: {e}") };
    if !chunked {
        let mut all = Vec::new();
        r.read_to_end(&mut all).map_err(io)?;
        each(&all);
        return Ok(());
    }
    loop {
        let mut size = String::new();
        r.read_line(&mut size).map_err(io)?;
        let n =
            usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16).map_err(|_| bad("chunk size"))?;
        if n == 0 {
            return Ok(());
        }
        let mut chunk = vec![0u8; n + 2];
        r.read_exact(&mut chunk).map_err(io)?;
        each(&chunk[..n]);
    }
}

/// `airlock ps` through the daemon.
pub fn ps(c: &Client, json_out: bool) -> Result<(), CliError> {
    let runs = c.request("GET", "/v1/runs", None)?.ok()?;
    let lockdown = c.request("GET", "/v1/lockdown", None).and_then(Answer::ok).map(|v| v["lockdown"].clone());
    if json_out {
        println!("{}", json!({"runs": runs["runs"], "lockdown": lockdown.unwrap_or(Value::Null)}));
        return Ok(());
    }
    if let Ok(l) = &lockdown
        && !l.is_null()
    {
        println!(
            "LOCKDOWN since {} ({})",
            crate::audit::format_ms(l["since_unix_ms"].as_i64().unwrap_or(0)),
            l["reason"]
        );
    }
    let list = runs["runs"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        println!("no runs");
        return Ok(());
    }
    println!("{:<20} {:<8} {:<14} {:<14}  COMMAND", "RUN", "STATE", "AGENT", "TOOL");
    for r in list {
        let command: Vec<&str> =
            r["command"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        println!(
            "{:<20} {:<8} {:<14} {:<14}  {}",
            r["run"].as_str().unwrap_or("?"),
            if r["paused"] == true { "paused" } else { "running" },
            r["agent"].as_str().unwrap_or("?"),
            r["tool"].as_str().unwrap_or("?"),
            command.join(" ")
        );
    }
    Ok(())
}

/// `airlock kill|pause|resume RUN...` through the daemon (named runs only: `--agent` and `--all` select from the
/// registry, which the daemon filters per caller; name the runs `airlock ps` shows).
pub fn act(c: &Client, verb: &str, runs: &[String]) -> Result<(), CliError> {
    if runs.is_empty() {
        return Err(CliError::usage(format!(
            "through the daemon, name the runs to {verb} (as `airlock ps` shows them)"
        )));
    }
    let mut failed = 0;
    for run in runs {
        match c.request("POST", &format!("/v1/runs/{run}/{verb}"), None)?.ok() {
            Ok(v) => println!("{run} {verb}: {}", v["outcome"].as_str().unwrap_or("done")),
            Err(e) => {
                failed += 1;
                eprintln!("airlock: run {run}: {}", e.message);
            }
        }
    }
    if failed > 0 {
        return Err(CliError { code: 1, message: format!("{failed} run(s) could not be {verb}ed") });
    }
    Ok(())
}

/// `airlock lockdown [--lift|--status]` through the daemon.
pub fn lockdown(c: &Client, lift: bool, status: bool, reason: &str, json_out: bool) -> Result<(), CliError> {
    let v = if status {
        c.request("GET", "/v1/lockdown", None)?.ok()?
    } else {
        let body = json!({"engaged": !lift, "reason": reason});
        c.request("PUT", "/v1/lockdown", Some(&body))?.ok()?
    };
    if json_out {
        println!("{v}");
    } else if status {
        match v["lockdown"].as_object() {
            Some(l) => println!("lockdown since {} by {}: {}", l["since_unix_ms"], l["by"], l["reason"]),
            None => println!("no lockdown"),
        }
    } else if lift {
        println!("{}", if v["changed"] == true { "lockdown lifted" } else { "no lockdown was on" });
    } else {
        println!("lockdown engaged; killed {} run(s)", v["killed"].as_u64().unwrap_or(0));
    }
    Ok(())
}

/// `airlock run --tool T [--agent A] -- CMD...` through the daemon: the output streams back to this terminal, and
/// the exit code is the run's. Standard input is sent if it is not a terminal (read whole first, up to the
/// daemon's body limit).
pub fn run(
    c: &Client,
    agent: Option<&str>,
    tool: &str,
    parent: Option<&str>,
    command: &[String],
) -> Result<(), CliError> {
    use std::io::IsTerminal;
    let mut stdin = String::new();
    if !std::io::stdin().is_terminal() {
        std::io::stdin()
            .read_to_string(&mut stdin)
            .map_err(|e| CliError::input(format!("reading stdin for the run: {e}")))?;
    }
    let workspace = std::env::current_dir().map_err(|e| CliError::input(format!("the current directory: {e}")))?;
    let mut body = json!({"tool": tool, "command": command, "stdin": stdin, "workspace": workspace});
    if let Some(a) = agent {
        body["agent"] = json!(a);
    }
    if let Some(p) = parent {
        body["parent"] = json!(p);
    }
    let mut exit: Option<i64> = None;
    let mut signal: Option<i64> = None;
    let mut error: Option<String> = None;
    let refused = c.stream("POST", "/v1/runs", Some(&body), |line| {
        let Ok(e) = serde_json::from_str::<Value>(line) else { return };
        match e["event"].as_str() {
            Some("stdout") => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(e["data"].as_str().unwrap_or("").as_bytes());
                let _ = out.flush();
            }
            Some("stderr") => {
                let _ = std::io::stderr().write_all(e["data"].as_str().unwrap_or("").as_bytes());
            }
            Some("exit") => {
                exit = e["code"].as_i64();
                signal = e["signal"].as_i64();
            }
            Some("error") => error = e["message"].as_str().map(str::to_string),
            _ => {}
        }
    })?;
    if let Some(answer) = refused {
        answer.ok()?;
    }
    if let Some(m) = error {
        return Err(CliError { code: crate::run::EXIT_SETUP, message: m });
    }
    match (exit, signal) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(CliError { code: code.clamp(1, 255) as u8, message: String::new() }),
        (None, Some(sig)) => Err(CliError { code: (128 + sig).clamp(1, 255) as u8, message: String::new() }),
        (None, None) => Err(CliError { code: 1, message: "the daemon ended the run's stream without an exit".into() }),
    }
}
