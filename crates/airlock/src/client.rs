//! The CLI through a running daemon: with `AIRLOCK_TOKEN` set and `airlock serve` answering on this home's socket,
//! `airlock run`, `ps`, `kill`, `pause`, `resume`, `lockdown`, `secret set|list|rotate|pin` and
//! `audit verify|query|tail|checkpoint` are requests to the daemon, made as that token's agent. Otherwise they work
//! standalone, as before.
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
        let body = Zeroizing::new(body.map(|b| b.to_string()).unwrap_or_default());
        self.send_text(method, path, &body)
    }

    /// A request with `body` (JSON text; empty for none), which may hold a secret value: every copy made here is in
    /// a zeroizing buffer.
    fn send_text(&self, method: &str, path: &str, body: &str) -> Result<BufReader<UnixStream>, CliError> {
        let io = |e: std::io::Error| CliError { code: 1, message: format!("talking to the daemon: {e}") };
        let mut s = UnixStream::connect(&self.socket).map_err(io)?;
        s.set_write_timeout(Some(Duration::from_secs(30))).map_err(io)?;
        let mut head = Zeroizing::new(format!(
            "{method} {path} HTTP/1.1\r\nHost: airlock\r\nAuthorization: Bearer {}\r\nConnection: close\r\n",
            self.token.as_str()
        ));
        if !body.is_empty() {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.reserve(2 + body.len());
        head.push_str("\r\n");
        head.push_str(body);
        // The daemon may answer (a refusal) and close before reading the body: the answer still counts.
        match s.write_all(head.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.map_err(io)?,
        }
        Ok(BufReader::new(s))
    }

    /// One request, the whole answer.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, CliError> {
        let body = Zeroizing::new(body.map(|b| b.to_string()).unwrap_or_default());
        self.request_text(method, path, &body)
    }

    /// One request with a JSON body given as text (see [`Client::send_text`]), the whole answer.
    pub fn request_text(&self, method: &str, path: &str, body: &str) -> Result<Answer, CliError> {
        let mut r = self.send_text(method, path, body)?;
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

/// `airlock ps` through the daemon: the runs the token's agent may see, children indented under their parents as
/// standalone `ps` shows them; with `tree`, that run and the runs below it (`GET /v1/runs/{id}/tree`).
pub fn ps(c: &Client, json_out: bool, tree: Option<&str>) -> Result<(), CliError> {
    if let Some(root) = tree {
        // The id goes into the path: only a run id's characters may (anything else names no run anyway).
        if root.is_empty() || !root.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CliError { code: 4, message: format!("no running run {root}") });
        }
        let answer = c.request("GET", &format!("/v1/runs/{root}/tree"), None)?;
        if answer.status == 404 {
            return Err(CliError { code: 4, message: format!("no running run {root}") });
        }
        let v = answer.ok()?;
        if json_out {
            println!("{v}");
            return Ok(());
        }
        let mut rows = Vec::new();
        let mut truncated = false;
        let mut stack = vec![(&v, 0usize)];
        while let Some((node, depth)) = stack.pop() {
            rows.push((node, depth));
            truncated |= node["truncated"] == true;
            let children = node["children"].as_array().map(Vec::as_slice).unwrap_or_default();
            stack.extend(children.iter().rev().map(|c| (c, depth + 1)));
        }
        print_runs(&rows);
        if truncated {
            eprintln!(
                "airlock: the daemon's tree stops at {} levels and {} runs; `airlock ps` lists them all, and \
                 `airlock ps --tree RUN` shows the tree below any of them",
                crate::supervise::TREE_DEPTH,
                crate::supervise::TREE_RUNS
            );
        }
        return Ok(());
    }
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
    let ordered = airlock_sandbox::supervisor::tree_order(list, |r| {
        (r["run"].as_str().unwrap_or_default(), r["parent"].as_str())
    });
    print_runs(&ordered.iter().map(|(r, depth)| (r, *depth)).collect::<Vec<_>>());
    Ok(())
}

/// The runs as `airlock ps` prints them through the daemon, each indented by its depth.
fn print_runs(rows: &[(&Value, usize)]) {
    println!("{:<20} {:<8} {:<14} {:<14}  COMMAND", "RUN", "STATE", "AGENT", "TOOL");
    for (r, depth) in rows {
        let command: Vec<&str> =
            r["command"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        println!(
            "{:<20} {:<8} {:<14} {:<14}  {}",
            format!("{}{}", "  ".repeat(*depth), r["run"].as_str().unwrap_or("?")),
            if r["paused"] == true { "paused" } else { "running" },
            r["agent"].as_str().unwrap_or("?"),
            r["tool"].as_str().unwrap_or("?"),
            command.join(" ")
        );
    }
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

/// `airlock secret set|list|rotate|pin` through the daemon, as the token's agent: the same checks before the value
/// is read (a change needs an admin's token, and is refused before the value is typed otherwise), the same
/// warnings, the same output. The value goes to the daemon in a zeroizing buffer, as text or, if it is not UTF-8,
/// in base64.
pub fn secret(ctx: &crate::commands::Ctx, c: &Client, cmd: crate::cli::SecretCommand) -> Result<(), CliError> {
    use crate::cli::SecretCommand;
    use crate::commands::{id_of, new_secret, note_unpinned, print_pinned, print_rotated, print_stored, warn_formats};
    match cmd {
        SecretCommand::Set(a) => {
            let id = id_of(&a.name, &a.workspace)?;
            let mut opts = new_secret(&a.new)?;
            opts.validate()?;
            must_manage(c)?;
            if secret_info(c, &id)?.is_some() {
                return Err(airlock_vault::VaultError::AlreadyExists(id.to_string()).into());
            }
            let value = crate::input::read_value(a.raw)?;
            airlock_vault::check_value(&value)?;
            warn_formats(&id, &a.new.hosts, &value);
            note_unpinned(&id, &a.name, &opts);
            // The API takes hosts in their normal form (the vault would store that form anyway).
            opts.hosts = opts.hosts.iter().map(|h| airlock_vault::normalize_host(h)).collect::<Result<_, _>>()?;
            let fields = json!({
                "name": id.name, "workspace": id.workspace, "hosts": opts.hosts, "injection": opts.injection,
                "exposure": opts.exposure, "group": opts.group, "tags": opts.tags, "keep_versions": opts.keep_versions,
            });
            let body = with_value(&fields, value.expose())?;
            let info = secret_answer(c.request_text("POST", "/v1/secrets", &body)?)?;
            print_stored(ctx, &id, &info);
        }
        SecretCommand::List { workspace } => {
            let v = c.request("GET", "/v1/secrets", None)?.ok()?;
            let mut list: Vec<airlock_vault::SecretInfo> =
                serde_json::from_value(v["secrets"].clone()).map_err(|e| CliError {
                    code: 1,
                    message: format!("the daemon's list of secrets is malformed: {e}"),
                })?;
            if let Some(ws) = workspace {
                list.retain(|s| s.workspace == ws);
            }
            ctx.print(&list, || crate::commands::table(&list));
        }
        SecretCommand::Rotate { name, workspace, raw } => {
            let id = id_of(&name, &workspace)?;
            must_manage(c)?;
            let hosts = match secret_info(c, &id)? {
                Some(info) => info.hosts,
                None => return Err(airlock_vault::VaultError::NotFound(id.to_string()).into()),
            };
            let value = crate::input::read_value(raw)?;
            airlock_vault::check_value(&value)?;
            warn_formats(&id, &hosts, &value);
            let body = with_value(&json!({}), value.expose())?;
            let answer = c.request_text("POST", &secret_path(&id, "/rotate"), &body)?;
            // The same value again: a usage mistake (exit 8), as standalone, rather than a conflict.
            let info = secret_answer(answer).map_err(|e| match e.code {
                5 => CliError::input(e.message),
                _ => e,
            })?;
            print_rotated(ctx, &id, &info);
        }
        SecretCommand::Pin { name, hosts, workspace } => {
            let id = id_of(&name, &workspace)?;
            let hosts = hosts.iter().map(|h| airlock_vault::normalize_host(h)).collect::<Result<Vec<_>, _>>()?;
            must_manage(c)?;
            let mut info = None;
            for host in &hosts {
                let answer = c.request("POST", &secret_path(&id, "/pin"), Some(&json!({ "host": host })))?;
                info = Some(secret_answer(answer)?);
            }
            let info = info.expect("clap requires one --host");
            print_pinned(ctx, &id, &info);
        }
        SecretCommand::Rm { .. } => {
            return Err(CliError::usage("`airlock secret rm` works standalone (AIRLOCK_DAEMON=off)".into()));
        }
        SecretCommand::Import(_) | SecretCommand::Sync(_) => {
            return Err(CliError::usage(
                "`airlock secret import` and `sync` work standalone (AIRLOCK_DAEMON=off)".into(),
            ));
        }
    }
    Ok(())
}

/// `/v1/secrets/NAME` + `suffix`, with the workspace in the query unless it is the default.
fn secret_path(id: &airlock_vault::SecretId, suffix: &str) -> String {
    // Names and workspaces are letters, digits, `_`, `-` and `.`: nothing to escape.
    match id.workspace.as_str() {
        airlock_vault::DEFAULT_WORKSPACE => format!("/v1/secrets/{}{suffix}", id.name),
        ws => format!("/v1/secrets/{}{suffix}?workspace={ws}", id.name),
    }
}

/// A secret's metadata, or `None` if the daemon has none the caller may see.
fn secret_info(c: &Client, id: &airlock_vault::SecretId) -> Result<Option<airlock_vault::SecretInfo>, CliError> {
    let answer = c.request("GET", &secret_path(id, ""), None)?;
    if answer.status == 404 {
        return Ok(None);
    }
    secret_answer(answer).map(Some)
}

fn secret_answer(answer: Answer) -> Result<airlock_vault::SecretInfo, CliError> {
    serde_json::from_value(answer.ok()?)
        .map_err(|e| CliError { code: 1, message: format!("the daemon's answer is not a secret's metadata: {e}") })
}

/// Changing secrets needs an admin's token: said before the value is typed, not after.
fn must_manage(c: &Client) -> Result<(), CliError> {
    let who = c.request("GET", "/v1/whoami", None)?.ok()?;
    if who["role"] == "admin" {
        return Ok(());
    }
    Err(CliError {
        code: 9,
        message: format!(
            "agent {} is {}: changing secrets through the daemon needs an admin's token",
            who["name"].as_str().unwrap_or("?"),
            who["role"].as_str().unwrap_or("?")
        ),
    })
}

/// `fields` (an object) with the value added, as JSON text in a zeroizing buffer sized up front (so that it never
/// grows by moving, leaving a copy behind): `value` if it is UTF-8, else `value_base64`.
fn with_value(fields: &Value, value: &[u8]) -> Result<Zeroizing<String>, CliError> {
    use base64::Engine;
    #[derive(serde::Serialize)]
    struct Body<'a> {
        #[serde(flatten)]
        fields: &'a Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        value_base64: Option<&'a str>,
    }
    let b64;
    let body = match std::str::from_utf8(value) {
        Ok(text) => Body { fields, value: Some(text), value_base64: None },
        Err(_) => {
            b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(value));
            Body { fields, value: None, value_base64: Some(b64.as_str()) }
        }
    };
    // JSON escapes a byte in at most 6 (\u00XX); base64 grows by a third.
    let mut out = Zeroizing::new(Vec::with_capacity(fields.to_string().len() + 6 * value.len() + 64));
    serde_json::to_writer(&mut *out, &body).map_err(|e| CliError { code: 1, message: format!("encoding: {e}") })?;
    let text = String::from_utf8(std::mem::take(&mut *out)).expect("serde_json writes UTF-8");
    Ok(Zeroizing::new(text))
}

/// `airlock audit verify` through the daemon (`GET /v1/audit/verify`): the daemon verifies the log with its key, and
/// this prints its report exactly as the command prints its own; `--save-checkpoint` keeps the note of the newest
/// checkpoint the daemon found. (With `--key` or `--checkpoint` the command reads the files itself: see `audit::run`.)
pub fn audit_verify(
    ctx: &crate::commands::Ctx,
    c: &Client,
    save: Option<&Path>,
    max_age_ms: Option<i64>,
) -> Result<(), CliError> {
    let path = match max_age_ms {
        Some(ms) => format!("/v1/audit/verify?max_age_ms={ms}"),
        None => "/v1/audit/verify".to_string(),
    };
    let mut v: crate::audit::Verification = serde_json::from_value(c.request("GET", &path, None)?.ok()?)
        .map_err(|e| CliError { code: 1, message: format!("the daemon's verification report is malformed: {e}") })?;
    let note = v.latest_checkpoint.as_mut().and_then(|c| c.note.take());
    // The daemon's key is derived from the vault it holds, as a standalone command's would be from the same vault.
    v.key_source = Some("the vault".into());
    crate::audit::finish_verify(ctx.json, &v, || match (save, note) {
        (Some(path), Some(note)) => crate::audit::save_checkpoint(&note, path),
        _ => Ok(()),
    })
}

/// Most records one `GET /v1/audit/records` answers.
const RECORDS_PAGE: usize = 1000;

/// `airlock audit query` through the daemon: every record that matches, oldest first, read forward a page at a
/// time (`from_seq`), and printed as the standalone command prints them.
pub fn audit_query(ctx: &crate::commands::Ctx, c: &Client, f: &airlock_audit::reader::Filter) -> Result<(), CliError> {
    let mut filter = String::new();
    let mut param = |k: &str, v: &str| filter.push_str(&format!("{k}={}&", query_escape(v)));
    if let Some(ms) = f.since_ms {
        param("since", &ms.to_string());
    }
    if let Some(ms) = f.until_ms {
        param("until", &ms.to_string());
    }
    for class in &f.classes {
        param("class", &class.uid().to_string());
    }
    if let Some(a) = &f.actor {
        param("actor", a);
    }
    if let Some(d) = f.decision {
        param("decision", d.as_str());
    }
    let mut out = std::io::stdout().lock();
    let mut from = 0u64;
    loop {
        let page = records(c, &format!("{filter}from_seq={from}&limit={RECORDS_PAGE}"))?;
        for (seq, logged_ms, event) in &page {
            // A reader that went away (`| head`) ends the query, as standalone.
            if crate::audit::print_record(&mut out, ctx.json, *seq, *logged_ms, event).is_err() {
                return Ok(());
            }
        }
        // A short page is the end of the log; records are in seq order, so the cursor only moves forward.
        match page.last().map(|r| r.0.checked_add(1)) {
            Some(Some(next)) if page.len() == RECORDS_PAGE => from = next,
            _ => return Ok(()),
        }
    }
}

/// `airlock audit tail [-n N] [-f]` through the daemon: the newest N records, then (with `-f`) the new ones as they
/// come, asked for every 200 ms as the standalone command looks for them.
pub fn audit_tail(ctx: &crate::commands::Ctx, c: &Client, follow: bool, lines: usize) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError { code: 1, message: e.to_string() };
    let mut out = std::io::stdout().lock();
    if lines == 0 && !follow {
        return Ok(());
    }
    // The newest page; with -n 0, one record, only to learn where the log ends.
    let mut backlog = records(c, &format!("limit={}", lines.clamp(1, RECORDS_PAGE)))?;
    if lines > RECORDS_PAGE && backlog.len() == RECORDS_PAGE {
        // More than one page: the records before it, read forward from where the last `lines` begin.
        let first = backlog[0].0;
        let mut older = Vec::new();
        let mut from = first.saturating_sub((lines - RECORDS_PAGE) as u64);
        'pages: loop {
            let page = records(c, &format!("from_seq={from}&limit={RECORDS_PAGE}"))?;
            let full = page.len() == RECORDS_PAGE;
            for r in page {
                if r.0 >= first {
                    break 'pages;
                }
                from = r.0 + 1;
                older.push(r);
            }
            if !full {
                break;
            }
        }
        older.append(&mut backlog);
        backlog = older;
    }
    let mut next = backlog.last().map_or(0, |r| r.0 + 1);
    let skip = backlog.len().saturating_sub(lines);
    for (seq, logged_ms, event) in &backlog[skip..] {
        crate::audit::print_record(&mut out, ctx.json, *seq, *logged_ms, event).map_err(io)?;
    }
    if !follow {
        return Ok(());
    }
    loop {
        let page = records(c, &format!("from_seq={next}&limit={RECORDS_PAGE}"))?;
        for (seq, logged_ms, event) in &page {
            crate::audit::print_record(&mut out, ctx.json, *seq, *logged_ms, event).map_err(io)?;
            next = seq + 1;
        }
        out.flush().map_err(io)?;
        // A full page may have more behind it: ask again at once.
        if page.len() < RECORDS_PAGE {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `airlock audit checkpoint` through the daemon (`GET /v1/audit/checkpoint`): the daemon signs what it has not
/// signed yet, and the note is printed as the standalone command prints the one it signs.
pub fn audit_checkpoint(c: &Client) -> Result<(), CliError> {
    let v = c.request("GET", "/v1/audit/checkpoint", None)?.ok()?;
    let note = v["note"].as_str().ok_or_else(|| bad("a checkpoint without its note"))?;
    print!("{note}");
    Ok(())
}

/// One page of `GET /v1/audit/records?QUERY`: each record's seq, time and event, oldest first.
fn records(c: &Client, query: &str) -> Result<Vec<(u64, i64, Value)>, CliError> {
    let mut v = c.request("GET", &format!("/v1/audit/records?{query}"), None)?.ok()?;
    let Some(list) = v.get_mut("records").and_then(Value::as_array_mut) else { return Err(bad("no records")) };
    std::mem::take(list)
        .into_iter()
        .map(|event| {
            let seq = event["metadata"]["sequence"].as_u64();
            let logged = event["metadata"]["logged_time"].as_i64();
            match (seq, logged) {
                (Some(seq), Some(logged)) => Ok((seq, logged, event)),
                _ => Err(bad("a record without metadata.sequence and metadata.logged_time")),
            }
        })
        .collect()
}

/// `s` percent-encoded for a query string: everything but unreserved characters (RFC 3986).
fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
