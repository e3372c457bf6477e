//! `POST /v1/capabilities/{provider}/{capability}`: the broker's typed capability API, called through the daemon.
//!
//! # Why
//! An agent runtime that holds a daemon token should not need a sandbox, a proxy or even a surrogate to call an API
//! its tools are allowed to call: it names the provider, the capability and the tool it acts as, sends the call
//! envelope (`docs/broker.md`), and the daemon's vault supplies the credential.
//!
//! # Shape
//! - The caller is the agent of the bearer token (a role that may Act). It names the tool it acts as in the
//!   `X-Airlock-Tool` header; the policy must know both and grant the agent that tool, else 403 (audited).
//! - The daemon builds a broker for that agent and tool the way `airlock proxy` and `airlock run` do
//!   ([`crate::proxy::tool_broker`]): the tool's credentials from the daemon's vault, the leak scanner over every vault
//!   value and canary, SSRF allowances, the resolver (`airlock serve --dns/--resolve`), upstream CAs
//!   (`--upstream-ca`), rate limits, budgets, the `[redact]` masking and the capability registry. Brokers are kept
//!   per (agent, tool) and rebuilt when the policy is reloaded, the vault file or the canary registry changes. Each
//!   has one principal, `agent/tool@RUN` with a random run id, so that auto-pause, budgets and the audit trail
//!   attribute exactly as they do for one sandboxed run; `[budgets] run` counts a broker's whole life.
//! - The call is served in-process: a pipe (`tokio::io::duplex`) with the broker's connection handler on one end and
//!   an HTTP/1.1 client on the other. So policy, `secret.use` and credential pins, SSRF, leak scanning, budgets,
//!   response filtering and masking, and the audit record are the broker's own, not a second implementation.
//! - The answer: the upstream's status, headers (less hop-by-hop, cookies and auth challenges) and body, streamed;
//!   an upstream that stops midway cuts the connection rather than ending the body cleanly. A refusal by the broker
//!   (it carries `X-Airlock-Deny`) becomes an RFC 9457 problem like every other daemon error, keeping the broker's
//!   status and adding its `kind`, `policies` and `request_id` (the audit record's correlation id).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use airlock_audit::{Append, AuditMac};
use airlock_broker::{Attribution, AuditTrail, Broker, Principal};
use airlock_crypto::kdf::labels;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::http::{self, BoxError, Problem, Reply};
use super::{Daemon, lock, now_ms};
use crate::CliError;
use crate::agents::Agent;

/// The header naming the tool a call acts as.
pub const TOOL_HEADER: &str = "x-airlock-tool";
/// Brokers kept at once; beyond it, the cache starts over (a broker in use lives on with its calls).
const MAX_BROKERS: usize = 256;
/// The most of a broker's refusal body read to turn it into a problem document (they are a few hundred bytes).
const MAX_DENIAL_BODY: usize = 64 << 10;
/// The pipe's buffer between the daemon and a broker, each way.
const PIPE_BYTES: usize = 64 << 10;

/// A file's inode, modification time (seconds and nanoseconds) and length.
type FileStamp = (u64, i64, i64, u64);

/// What a broker was built from: the policy generation and the files whose contents it holds.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Stamp {
    policy: u64,
    vault: Option<FileStamp>,
    canaries: Option<FileStamp>,
}

struct Cached {
    stamp: Stamp,
    /// For a tool with a secret held outside the vault: when its value must be read again (the store's cache
    /// lifetime), so a rotation there reaches calls within it.
    expires: Option<std::time::Instant>,
    broker: Broker,
    principal: Principal,
}

/// The daemon's capability brokers, and how to build them.
pub(crate) struct Brokers {
    pub(crate) dns: Vec<SocketAddr>,
    pub(crate) resolve: Vec<String>,
    pub(crate) upstream_ca: Vec<PathBuf>,
    cache: Mutex<HashMap<(String, String), Cached>>,
    /// The stores `[secrets.NAME] source` reads from, for the policy generation they were opened for: kept across
    /// calls, so an OpenBao token, its lease and the value cache live as long as the policy does.
    backends: Mutex<Option<(u64, Arc<crate::backends::Backends>)>>,
}

impl Brokers {
    /// Checks the resolver settings and reads the CA files now, so that a typo stops `airlock serve` at start
    /// rather than failing every call.
    pub(crate) fn new(
        dns: Vec<SocketAddr>,
        resolve: Vec<String>,
        upstream_ca: Vec<PathBuf>,
    ) -> Result<Brokers, CliError> {
        crate::proxy::resolver(&dns, &resolve)?;
        crate::proxy::read_pems(&upstream_ca)?;
        Ok(Brokers { dns, resolve, upstream_ca, cache: Mutex::new(HashMap::new()), backends: Mutex::new(None) })
    }

    /// The secret stores for policy `generation`, opened again when the policy changes.
    fn backends(
        &self,
        generation: u64,
        model: &airlock_policy::model::Model,
        config: &std::path::Path,
    ) -> Arc<crate::backends::Backends> {
        let mut held = lock(&self.backends);
        match &*held {
            Some((g, b)) if *g == generation => Arc::clone(b),
            _ => {
                let b = Arc::new(crate::backends::Backends::new(
                    &model.file.backends,
                    &crate::backends::config_dir(config),
                ));
                *held = Some((generation, Arc::clone(&b)));
                b
            }
        }
    }

    /// `airlock run` flags that give a run's broker the same resolver and upstream CAs.
    pub(crate) fn run_args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = Vec::new();
        for d in &self.dns {
            args.extend(["--dns".into(), d.to_string().into()]);
        }
        for r in &self.resolve {
            args.extend(["--resolve".into(), r.into()]);
        }
        for c in &self.upstream_ca {
            args.extend(["--upstream-ca".into(), c.clone().into_os_string()]);
        }
        args
    }
}

fn file_stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.ino(), m.mtime(), m.mtime_nsec(), m.len()))
}

fn stamp(daemon: &Daemon) -> Stamp {
    Stamp {
        policy: daemon.policy.generation(),
        vault: file_stamp(&airlock_vault::Vault::file_path(&daemon.home)),
        canaries: file_stamp(&crate::canary::registry(&daemon.home)),
    }
}

/// `[a-z0-9][a-z0-9-]{0,62}`: how the registry names providers and capabilities. Anything else names no route.
pub fn valid_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Serves one call as `caller`, acting as the tool its `X-Airlock-Tool` header names.
pub async fn invoke(
    daemon: &Arc<Daemon>,
    caller: &Agent,
    provider: &str,
    capability: &str,
    req: Request<Incoming>,
    peer: &str,
) -> Result<Reply, Problem> {
    let instance = req.uri().path().to_string();
    let tool = tool_of(&req)?;
    may_use(daemon, &caller.name, &tool, provider, capability)?;
    let envelope = http::read_json_bytes(req, daemon.max_body).await?;
    let (broker, principal) = broker_for(daemon, &caller.name, &tool).await?;
    let answer = call(broker, principal, provider, capability, envelope, peer).await?;
    Ok(relay(answer, &instance).await)
}

/// The tool the call acts as: the `X-Airlock-Tool` header, required.
fn tool_of(req: &Request<Incoming>) -> Result<String, Problem> {
    let mut values = req.headers().get_all(TOOL_HEADER).iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return Err(Problem::bad_request("name the tool this call acts as, once: X-Airlock-Tool: NAME"));
    };
    let name = v.to_str().unwrap_or_default();
    let ok = (1..=64).contains(&name.len())
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    if !ok {
        return Err(Problem::bad_request("X-Airlock-Tool: a tool name (letters, digits, '-', '_', '.')"));
    }
    Ok(name.to_string())
}

/// The policy must know the agent and the tool and grant the agent the tool: the check `airlock run` makes before
/// it starts a tool, and the one the broker's own decisions rest on. A refusal is audited.
fn may_use(daemon: &Daemon, agent: &str, tool: &str, provider: &str, capability: &str) -> Result<(), Problem> {
    let engine = daemon.policy.engine();
    let model = &engine.compiled().model;
    let why = match (model.agents.get(agent), model.tools.contains_key(tool)) {
        (None, _) => format!("agent {agent} is not in the policy"),
        (Some(_), false) => format!("tool {tool} is not in the policy"),
        (Some(a), true) if !a.tools.allows(tool) => format!("agent {agent} may not use tool {tool}"),
        _ => return Ok(()),
    };
    let event = airlock_audit::Event::request(
        now_ms(),
        agent,
        Some(tool),
        airlock_audit::event::Decision::Deny,
        &["api-tool-grant"],
    )
    .message(format!("capability call {provider}/{capability} through the API refused: {why}"))
    .set("unmapped.airlock.capability", json!(format!("{provider}/{capability}")))
    .status(false);
    // A refusal stands whether or not it could be recorded.
    let _ = daemon.log.append(event);
    Err(Problem::forbidden(why))
}

/// The broker for `agent` acting as `tool`: the cached one if nothing it was built from has changed, else a new one.
async fn broker_for(daemon: &Arc<Daemon>, agent: &str, tool: &str) -> Result<(Broker, Principal), Problem> {
    let now = stamp(daemon);
    let key = (agent.to_string(), tool.to_string());
    if let Some(c) = lock(&daemon.capabilities.cache).get(&key)
        && c.stamp == now
        && c.expires.is_none_or(|at| std::time::Instant::now() < at)
    {
        return Ok((c.broker.clone(), c.principal.clone()));
    }
    let d = Arc::clone(daemon);
    let t = tool.to_string();
    // Reading the vault, building the leak automaton and compiling the redaction rules take milliseconds.
    let expires = external_until(daemon, tool);
    let (broker, fresh_until) = tokio::task::spawn_blocking(move || build(&d, &t))
        .await
        .map_err(|e| Problem::internal(format!("building the broker failed: {e}")))??;
    // And no later than the first of its values from other stores goes stale in that store's cache: rebuilt after
    // that, it reads them afresh (`Backends::fresh_until`).
    let expires = expires.into_iter().chain(fresh_until).min();
    let principal = Principal::new(agent, tool, &hex::encode(airlock_crypto::random::bytes::<8>()));
    let mut cache = lock(&daemon.capabilities.cache);
    if cache.len() >= MAX_BROKERS {
        cache.retain(|_, c| c.stamp == now);
        if cache.len() >= MAX_BROKERS {
            cache.clear();
        }
    }
    // Stamped as before the build: a change during it makes the next call build again.
    cache.insert(key, Cached { stamp: now, expires, broker: broker.clone(), principal: principal.clone() });
    Ok((broker, principal))
}

/// When a broker for `tool` must be built again because a secret it holds came from another store (`None`: all of
/// its secrets are the vault's, whose changes the stamp sees).
fn external_until(daemon: &Daemon, tool: &str) -> Option<std::time::Instant> {
    let engine = daemon.policy.engine();
    let model = &engine.compiled().model;
    let spec = model.tools.get(tool)?;
    let external = spec.secrets.iter().any(|s| model.secrets.get(&s.value).is_some_and(|m| m.source.is_some()));
    if !external {
        return None;
    }
    let limit = daemon.capabilities.backends(daemon.policy.generation(), model, &daemon.config).reuse_limit();
    Some(std::time::Instant::now() + limit)
}

/// A broker for one tool, from the policy in force and the daemon's vault. What stops it is the daemon's failure
/// (a `[providers]` entry the registry refuses, a vault that no longer reads), not the caller's: 500, or 503 for a
/// vault that is locked, and 503 with Retry-After for a secret store that is down or sealed (the call may work
/// later, and nothing was sent upstream).
fn build(daemon: &Daemon, tool: &str) -> Result<(Broker, Option<std::time::Instant>), Problem> {
    build_broker(daemon, tool).map_err(|e| match e.code {
        3 => Problem::unavailable(format!("the vault cannot be used: {}", e.message)),
        crate::backends::EXIT_UNAVAILABLE => {
            Problem::store_unavailable(format!("a secret of tool {tool} cannot be read now: {}", e.message))
        }
        _ => Problem::internal(format!("cannot build the broker for tool {tool}: {}", e.message)),
    })
}

fn build_broker(daemon: &Daemon, tool: &str) -> Result<(Broker, Option<std::time::Instant>), CliError> {
    let engine = daemon.policy.engine();
    let model = engine.compiled().model.clone();
    // Compiled before the vault is locked: other requests may need it meanwhile.
    let rules = crate::redact::tool_output_scanner(&daemon.home, &model.redact)?;
    let mut guard = lock(&daemon.vault);
    let vault = guard.as_mut().ok_or_else(|| CliError { code: 3, message: "the daemon is shutting down".into() })?;
    // Another process (`airlock secret set`) may have changed the file since the daemon read it.
    vault.refresh()?;
    let mac = AuditMac::new(vault.subkey(labels::AUDIT_MAC)?);
    let log: Arc<dyn Append> = daemon.log.clone();
    let audit =
        AuditTrail { log: Arc::clone(&log), mac, record_allows: model.record_allows, fail_closed: model.fail_closed };
    let policy = crate::supervise::Supervised::new(Arc::clone(&daemon.policy), &daemon.home, Some(log));
    let backends = daemon.capabilities.backends(daemon.policy.generation(), &model, &daemon.config);
    let built = crate::proxy::tool_broker(
        vault,
        crate::proxy::BrokerInputs {
            home: &daemon.home,
            config: &daemon.config,
            model: &model,
            tool,
            backends: &backends,
            policy: Arc::new(policy),
            audit,
            dns: &daemon.capabilities.dns,
            resolve: &daemon.capabilities.resolve,
            upstream_ca: &daemon.capabilities.upstream_ca,
            max_connections: None,
            redact_rules: Box::new(move || Ok(rules)),
        },
    )?;
    Ok((built.broker, built.fresh_until))
}

/// The call, served by `broker` over an in-process pipe: the broker's answer, head and streaming body.
async fn call(
    broker: Broker,
    principal: Principal,
    provider: &str,
    capability: &str,
    envelope: Bytes,
    peer: &str,
) -> Result<Response<Incoming>, Problem> {
    let (ours, theirs) = tokio::io::duplex(PIPE_BYTES);
    let who = principal.to_string();
    let peer = format!("daemon API ({peer})");
    tokio::spawn(async move { broker.serve_connection(theirs, Attribution::Fixed(principal), peer).await });
    let busy = |e: hyper::Error| {
        // The broker closes the pipe unanswered when the principal holds too many connections.
        let mut p = Problem::unavailable(format!("the broker for {who} cannot take this call now: {e}"));
        p.retry_after = Some(1);
        p
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(ours)).await.map_err(&busy)?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // Only the envelope crosses: none of the caller's headers (its daemon token least of all) reach the broker.
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/v1/capabilities/{provider}/{capability}"))
        .header(header::HOST, "airlock")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(envelope))
        .map_err(|e| Problem::internal(e.to_string()))?;
    sender.send_request(req).await.map_err(busy)
}

/// Upstream response headers that stay with the daemon: hop-by-hop ones (the daemon frames its own answer),
/// cookies (the caller has no session with the upstream; the broker already strips them from injected calls) and
/// authentication challenges (which a client would take for the daemon's own).
fn kept(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "www-authenticate"
            | "set-cookie"
            | "set-cookie2"
            | "authentication-info"
    )
}

/// The broker's answer as the daemon's: a refusal as a problem document, anything else passed on as it streams.
async fn relay(resp: Response<Incoming>, instance: &str) -> Reply {
    if resp.headers().contains_key("x-airlock-deny") {
        return denial(resp, instance).await;
    }
    let (parts, body) = resp.into_parts();
    let mut out = Response::new(body.map_err(BoxError::from).boxed());
    *out.status_mut() = parts.status;
    for (name, value) in parts.headers.iter().filter(|(n, _)| kept(n)) {
        out.headers_mut().append(name.clone(), value.clone());
    }
    out
}

/// The problem type for a broker refusal's status: the daemon's own where one fits.
fn problem_for(status: StatusCode, detail: String) -> Problem {
    match status.as_u16() {
        403 => Problem::forbidden(detail),
        404 => Problem::not_found(detail),
        405 => Problem::new(status, "method-not-allowed", "The method is not allowed here", detail),
        413 => Problem::new(status, "body-too-large", "The body is too large", detail),
        429 => Problem::new(status, "rate-limited", "Too many requests", detail),
        500 => Problem::internal(detail),
        503 => Problem::unavailable(detail),
        502..=599 => {
            Problem::new(status, "bad-gateway", "The upstream could not be reached or its answer used", detail)
        }
        _ => Problem::new(status, "bad-request", "The request is malformed", detail),
    }
}

/// A broker refusal (`{"error":"denied","kind","reason","policies","request_id"}` with `X-Airlock-Deny`) as an RFC
/// 9457 problem, with the broker's status and its `kind`, `policies` and `request_id` as extension members.
async fn denial(resp: Response<Incoming>, instance: &str) -> Reply {
    let (parts, body) = resp.into_parts();
    let bytes = Limited::new(body, MAX_DENIAL_BODY).collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let header = |name: &str| parts.headers.get(name).and_then(|h| h.to_str().ok()).map(str::to_string);
    let reason = v["reason"].as_str().map(str::to_string).or_else(|| header("x-airlock-deny")).unwrap_or_default();
    let request_id = v["request_id"].as_str().map(str::to_string).or_else(|| header("x-airlock-request-id"));
    let policies: Vec<String> = v["policies"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let status = parts.status;
    let p = problem_for(status, reason);
    let mut doc = json!({
        "type": format!("{}{}", http::PROBLEM_BASE, p.kind),
        "title": p.title,
        "status": status.as_u16(),
        "detail": p.detail,
        "instance": instance,
        "kind": v["kind"].as_str().unwrap_or("denied"),
        "policies": policies,
    });
    if let Some(id) = request_id {
        doc["request_id"] = json!(id);
    }
    let mut r = Response::new(http::full_body(doc.to_string()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for name in ["x-airlock-deny", "x-airlock-request-id", "retry-after"] {
        if let Some(v) = parts.headers.get(name) {
            h.insert(HeaderName::from_static(name), v.clone());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_registrys() {
        for ok in ["openai", "chat-completions", "a", "0x", &"a".repeat(63)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "OpenAI", "a_b", "a.b", "a%2Fb", "..", &"a".repeat(64), "{provider}"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn refusals_keep_their_status_and_take_the_daemons_types() {
        for (status, kind) in [
            (403, "forbidden"),
            (404, "not-found"),
            (405, "method-not-allowed"),
            (413, "body-too-large"),
            (429, "rate-limited"),
            (502, "bad-gateway"),
            (503, "unavailable"),
            (400, "bad-request"),
        ] {
            let p = problem_for(StatusCode::from_u16(status).unwrap(), "why".into());
            assert_eq!((p.status.as_u16(), p.kind), (status, kind));
        }
    }

    #[test]
    fn hop_by_hop_cookies_and_challenges_stay_behind() {
        for gone in ["connection", "transfer-encoding", "set-cookie", "www-authenticate", "proxy-authenticate"] {
            assert!(!kept(&HeaderName::from_static(gone)), "{gone}");
        }
        for kept_ in ["content-type", "x-airlock-capability", "x-ratelimit-remaining", "link", "content-length"] {
            assert!(kept(&HeaderName::from_static(kept_)), "{kept_}");
        }
    }
}
