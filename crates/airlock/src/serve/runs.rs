//! `POST /v1/runs`: a sandboxed run started through the API, its output streamed back as it comes.
//!
//! The daemon starts each run as `airlock run` (this binary), exactly as a user would from a shell: the run gets the
//! same policy checks, sandbox, broker, output redaction and audit records, and the daemon does not grow a second
//! way of running tools. `AIRLOCK_DIE_WITH_PARENT` ties each one to the daemon: if the daemon is killed, even with
//! SIGKILL, the kernel kills its runs, and each run's sandbox dies with it in turn. The daemon chooses the run id, so
//! the first line of the answer names the run while it is still going (to pause or kill it).
//!
//! The answer is NDJSON (`application/x-ndjson`), one event per line:
//! `{"event":"queued"}` (only if the run waits for a slot), `{"event":"started","run":ID}`,
//! `{"event":"stdout","data":TEXT}`, `{"event":"stderr","data":TEXT}`, and last `{"event":"exit","code":N}` (or
//! `"signal":S`). A client that goes away kills its run: nobody would read what it does.
//!
//! The vault: each `airlock run` unlocks it itself, from the environment the daemon was started with (a key file
//! or OS keyring slot, or `AIRLOCK_PASSPHRASE`). A daemon unlocked by typing a passphrase at a prompt cannot start
//! runs, and says so.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use airlock_audit::Append;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Daemon;
use super::http::{self, Problem, Reply, read_json};
use crate::agents::{Agent, AgentStore};

/// Most arguments a command may have, and bytes of stdin a request may carry (within the body limit).
const MAX_ARGS: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunBody {
    tool: String,
    command: Vec<String>,
    /// The agent the run is for: the caller (default) or one of its sub-agents.
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    stdin: Option<String>,
    /// `${WORKSPACE}` for the run (an existing directory).
    #[serde(default)]
    workspace: Option<String>,
}

pub async fn start(
    daemon: &Arc<Daemon>,
    caller: &Agent,
    store: &AgentStore,
    req: Request<Incoming>,
) -> Result<Reply, Problem> {
    let b: RunBody = read_json(req, daemon.max_body).await?;
    let agent = b.agent.clone().unwrap_or_else(|| caller.name.clone());
    if !store.can_act_for(&caller.name, &agent) {
        return Err(Problem::forbidden(format!("agent {} may not start runs for agent {agent}", caller.name)));
    }
    if b.command.is_empty() || b.command.len() > MAX_ARGS || b.command.iter().any(|a| a.contains('\0')) {
        return Err(Problem::bad_request(format!("command: 1 to {MAX_ARGS} arguments, without NUL bytes")));
    }
    let name_ok = |s: &str| {
        (1..=64).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    };
    if !name_ok(&b.tool) || !name_ok(&agent) {
        return Err(Problem::bad_request("tool and agent are names: letters, digits, '-', '_', '.'"));
    }
    if let Some(p) = &b.parent
        && !(p.len() == 16 && p.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)))
    {
        return Err(Problem::bad_request("parent: a run id (16 lowercase hex digits)"));
    }
    // A parent must be a run the caller may see: attaching runs under another agent's run would graft them into its
    // tree, and a different answer for a run that exists would reveal it. Both cases are "no run", as for get.
    if let Some(p) = &b.parent {
        super::routes::find_run(daemon, caller, store, p)?;
    }
    if let Some(w) = &b.workspace
        && !std::path::Path::new(w).is_dir()
    {
        return Err(Problem::bad_request(format!("workspace {w:?} is not a directory")));
    }

    // Queue for a slot, within the queue's bound.
    let waiting = daemon.queued.fetch_add(1, Ordering::SeqCst);
    if waiting >= daemon.max_queued {
        daemon.queued.fetch_sub(1, Ordering::SeqCst);
        let mut p = Problem::unavailable(format!("{waiting} runs are already waiting for a slot"));
        p.retry_after = Some(5);
        return Err(p);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let run_id = hex::encode(airlock_crypto::random::bytes::<8>());
    let d = Arc::clone(daemon);
    let requested_by = caller.name.clone();
    tokio::spawn(async move {
        let slots = Arc::clone(&d.run_slots);
        if slots.available_permits() == 0 {
            let _ = tx.send(event(json!({"event": "queued"}))).await;
        }
        let permit = slots.acquire_owned().await;
        d.queued.fetch_sub(1, Ordering::SeqCst);
        let Ok(_permit) = permit else { return };
        // A client that gave up while queued gets no run (nobody would read it, and it would hold a slot).
        if tx.is_closed() {
            return;
        }
        d.active_runs.fetch_add(1, Ordering::SeqCst);
        supervise(&d, b, agent, run_id, requested_by, tx).await;
        d.active_runs.fetch_sub(1, Ordering::SeqCst);
    });
    let mut reply = http::stream("application/x-ndjson", rx);
    *reply.status_mut() = StatusCode::OK;
    Ok(reply)
}

fn event(v: serde_json::Value) -> Bytes {
    let mut line = v.to_string();
    line.push('\n');
    Bytes::from(line)
}

/// Starts `airlock run` and relays its output until it ends.
async fn supervise(
    d: &Daemon,
    b: RunBody,
    agent: String,
    run_id: String,
    requested_by: String,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            let _ = tx.send(event(json!({"event": "error", "message": format!("cannot find airlock: {e}")}))).await;
            return;
        }
    };
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(&d.unlock_args)
        .arg("run")
        .args(["--run-id", &run_id, "--agent", &agent, "--tool", &b.tool])
        .arg("--config")
        .arg(&d.config)
        // The daemon's --dns, --resolve and --upstream-ca: a run's broker resolves and trusts as the daemon's do.
        .args(d.capabilities.run_args());
    if let Some(w) = &b.workspace {
        cmd.args(["--workspace", w]);
    }
    if let Some(p) = &b.parent {
        cmd.args(["--parent", p]);
    }
    cmd.arg("--").args(&b.command);
    cmd.env("AIRLOCK_HOME", &d.home)
        .env("AIRLOCK_DIE_WITH_PARENT", std::process::id().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(event(json!({"event": "error", "message": format!("cannot start the run: {e}")}))).await;
            return;
        }
    };
    let _ = d.log.append(
        airlock_audit::Event::lifecycle(
            super::now_ms(),
            airlock_audit::event::activity::OTHER,
            format!("run {run_id} requested through the API by agent {requested_by} for agent {agent}"),
        )
        .actor(&requested_by, Some(&b.tool))
        .correlation(&run_id)
        .status(true),
    );
    // "started" means registered: from then on the run can be listed, paused and killed by its id. A run refused
    // before it registers (a policy denial, say) ends first, and its exit says so.
    let registry = airlock_sandbox::supervisor::Registry::open(&crate::run::state_dir(&d.home)).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Some(reg) = &registry {
        let registered = reg.get(&run_id).ok().flatten().is_some();
        if registered || std::time::Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    if tx.send(event(json!({"event": "started", "run": run_id}))).await.is_err() {
        let _ = child.start_kill();
    }
    let stdin = b.stdin.unwrap_or_default();
    if let Some(mut pipe) = child.stdin.take() {
        tokio::spawn(async move {
            let _ = pipe.write_all(stdin.as_bytes()).await;
        });
    }
    let out = relay(child.stdout.take(), "stdout", tx.clone());
    let err = relay(child.stderr.take(), "stderr", tx.clone());
    // The client going away ends the run even if it is quiet: nobody reads what it does any more.
    let relayed = async { tokio::join!(out, err) };
    tokio::select! {
        (out_ok, err_ok) = relayed => {
            if !(out_ok && err_ok) {
                let _ = child.start_kill();
            }
        }
        () = tx.closed() => {
            let _ = child.start_kill();
        }
    }
    let status = child.wait().await;
    let end = match status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            json!({"event": "exit", "run": run_id, "code": s.code(), "signal": s.signal()})
        }
        Err(e) => json!({"event": "error", "run": run_id, "message": e.to_string()}),
    };
    let _ = tx.send(event(end)).await;
}

/// Copies one pipe to the client as events; `false` if the client went away.
async fn relay(
    pipe: Option<impl tokio::io::AsyncRead + Unpin>,
    stream: &'static str,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) -> bool {
    let Some(mut pipe) = pipe else { return true };
    let mut buf = vec![0u8; 16 * 1024];
    // Bytes of a character split across two reads wait for the rest.
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        carry.extend_from_slice(&buf[..n]);
        let valid = match std::str::from_utf8(&carry) {
            Ok(_) => carry.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => carry.len(),
        };
        let text = String::from_utf8_lossy(&carry[..valid]).into_owned();
        carry.drain(..valid);
        if !text.is_empty() && tx.send(event(json!({"event": stream, "data": text}))).await.is_err() {
            return false;
        }
    }
    if !carry.is_empty() {
        let text = String::from_utf8_lossy(&carry).into_owned();
        if tx.send(event(json!({"event": stream, "data": text}))).await.is_err() {
            return false;
        }
    }
    true
}
