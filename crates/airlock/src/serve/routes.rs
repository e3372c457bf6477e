//! The API's routes: which request goes where, who may make it, and the answer.
//!
//! Each route names the permission it needs ([`Permission`]); an agent acts only on runs of its own subtree
//! ([`AgentStore::can_act_for`]), so `GET /v1/runs` shows each agent its own and its sub-agents' runs. The routes,
//! their bodies and their answers are described in `docs/openapi.json`, served at `/v1/openapi.json`; a test checks
//! that the document and [`ROUTES`] name the same operations.

use std::sync::Arc;
use std::time::Duration;

use airlock_audit::Append;
use airlock_guard::heuristics::Heuristics;
use airlock_guard::score::{Thresholds, assess};
use airlock_guard::spotlight::{Mode, Spotlight};
use airlock_sandbox::supervisor::{Lockdown, Registry, RunRecord};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::http::{self, Problem, Reply, read_json};
use super::{Daemon, now_ms};
use crate::agents::{Agent, AgentStore, Permission};

/// How often readiness tries the audit log.
const READY_PROBE: Duration = Duration::from_secs(30);

/// The OpenAPI 3.1 document, checked in and served as it is.
pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

/// A request the API answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    Ready,
    OpenApi,
    Metrics,
    WhoAmI,
    GuardScan,
    GuardSpotlight,
    Redact,
    LockdownStatus,
    LockdownSet,
    RunsList,
    RunGet(String),
    /// `GET /v1/runs/{id}/tree`.
    RunTree(String),
    RunAction(String, RunVerb),
    GuardValidate,
    PolicyExplain,
    AuditVerify,
    AuditRecords,
    RunStart,
    /// `POST /v1/capabilities/{provider}/{capability}`.
    CapabilityInvoke(String, String),
    SecretsList,
    SecretGet(String),
    SecretCreate,
    SecretRotate(String),
    SecretPin(String),
    AuditCheckpoint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunVerb {
    Kill,
    Pause,
    Resume,
}

/// Every operation: method and path template, as the OpenAPI document names them.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/health"),
    ("GET", "/v1/ready"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/v1/whoami"),
    ("POST", "/v1/guard/scan"),
    ("POST", "/v1/guard/spotlight"),
    ("POST", "/v1/redact"),
    ("GET", "/v1/lockdown"),
    ("PUT", "/v1/lockdown"),
    ("GET", "/v1/runs"),
    ("GET", "/v1/runs/{id}"),
    ("POST", "/v1/runs/{id}/kill"),
    ("POST", "/v1/runs/{id}/pause"),
    ("POST", "/v1/runs/{id}/resume"),
    ("POST", "/v1/guard/validate-output"),
    ("POST", "/v1/policy/explain"),
    ("GET", "/v1/audit/verify"),
    ("GET", "/v1/audit/records"),
    ("POST", "/v1/runs"),
    ("POST", "/v1/capabilities/{provider}/{capability}"),
    ("GET", "/v1/secrets"),
    ("GET", "/v1/secrets/{name}"),
    ("POST", "/v1/secrets"),
    ("POST", "/v1/secrets/{name}/rotate"),
    ("POST", "/v1/secrets/{name}/pin"),
    ("GET", "/v1/audit/checkpoint"),
    ("GET", "/v1/runs/{id}/tree"),
];

impl Route {
    pub fn method(&self) -> &'static str {
        ROUTES[self.index()].0
    }
    pub fn template(&self) -> &'static str {
        ROUTES[self.index()].1
    }
    fn index(&self) -> usize {
        match self {
            Route::Health => 0,
            Route::Ready => 1,
            Route::OpenApi => 2,
            Route::Metrics => 3,
            Route::WhoAmI => 4,
            Route::GuardScan => 5,
            Route::GuardSpotlight => 6,
            Route::Redact => 7,
            Route::LockdownStatus => 8,
            Route::LockdownSet => 9,
            Route::RunsList => 10,
            Route::RunGet(_) => 11,
            Route::RunAction(_, RunVerb::Kill) => 12,
            Route::RunAction(_, RunVerb::Pause) => 13,
            Route::RunAction(_, RunVerb::Resume) => 14,
            Route::GuardValidate => 15,
            Route::PolicyExplain => 16,
            Route::AuditVerify => 17,
            Route::AuditRecords => 18,
            Route::RunStart => 19,
            Route::CapabilityInvoke(..) => 20,
            Route::SecretsList => 21,
            Route::SecretGet(_) => 22,
            Route::SecretCreate => 23,
            Route::SecretRotate(_) => 24,
            Route::SecretPin(_) => 25,
            Route::AuditCheckpoint => 26,
            Route::RunTree(_) => 27,
        }
    }
    /// What the caller must be allowed; `None` for the routes anyone who reaches the socket may call.
    fn needs(&self) -> Option<Permission> {
        match self {
            Route::Health | Route::Ready | Route::OpenApi => None,
            Route::Metrics | Route::WhoAmI | Route::LockdownStatus => Some(Permission::Audit),
            Route::RunsList | Route::RunGet(_) | Route::RunTree(_) => Some(Permission::Audit),
            Route::GuardScan
            | Route::GuardSpotlight
            | Route::GuardValidate
            | Route::Redact
            | Route::PolicyExplain
            | Route::RunStart
            | Route::CapabilityInvoke(..)
            | Route::RunAction(..) => Some(Permission::Act),
            Route::AuditVerify | Route::AuditRecords | Route::AuditCheckpoint => Some(Permission::Audit),
            // Agents read the secrets their tools use (the handler filters); only admins change secrets.
            Route::SecretsList | Route::SecretGet(_) => Some(Permission::Audit),
            Route::LockdownSet | Route::SecretCreate | Route::SecretRotate(_) | Route::SecretPin(_) => {
                Some(Permission::Manage)
            }
        }
    }
}

/// The route for `method` and `path`, if there is one.
pub fn route(method: &Method, path: &str) -> Option<Route> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    let r = match (method.as_str(), segments.as_slice()) {
        ("GET", ["v1", "health"]) => Route::Health,
        ("GET", ["v1", "ready"]) => Route::Ready,
        ("GET", ["v1", "openapi.json"]) => Route::OpenApi,
        ("GET", ["metrics"]) => Route::Metrics,
        ("GET", ["v1", "whoami"]) => Route::WhoAmI,
        ("POST", ["v1", "guard", "scan"]) => Route::GuardScan,
        ("POST", ["v1", "guard", "spotlight"]) => Route::GuardSpotlight,
        ("POST", ["v1", "redact"]) => Route::Redact,
        ("POST", ["v1", "guard", "validate-output"]) => Route::GuardValidate,
        ("POST", ["v1", "policy", "explain"]) => Route::PolicyExplain,
        ("GET", ["v1", "audit", "verify"]) => Route::AuditVerify,
        ("GET", ["v1", "audit", "records"]) => Route::AuditRecords,
        ("GET", ["v1", "lockdown"]) => Route::LockdownStatus,
        ("PUT", ["v1", "lockdown"]) => Route::LockdownSet,
        ("GET", ["v1", "runs"]) => Route::RunsList,
        ("POST", ["v1", "runs"]) => Route::RunStart,
        ("GET", ["v1", "audit", "checkpoint"]) => Route::AuditCheckpoint,
        ("GET", ["v1", "secrets"]) => Route::SecretsList,
        ("POST", ["v1", "secrets"]) => Route::SecretCreate,
        // Any non-empty segment: the handler checks the name and says what is wrong with it.
        ("GET", ["v1", "secrets", name]) if !name.is_empty() => Route::SecretGet(name.to_string()),
        ("POST", ["v1", "secrets", name, "rotate"]) if !name.is_empty() => Route::SecretRotate(name.to_string()),
        ("POST", ["v1", "secrets", name, "pin"]) if !name.is_empty() => Route::SecretPin(name.to_string()),
        ("POST", ["v1", "capabilities", provider, capability])
            if super::capabilities::valid_name(provider) && super::capabilities::valid_name(capability) =>
        {
            Route::CapabilityInvoke(provider.to_string(), capability.to_string())
        }
        ("GET", ["v1", "runs", id]) if valid_run_id(id) => Route::RunGet(id.to_string()),
        ("GET", ["v1", "runs", id, "tree"]) if valid_run_id(id) => Route::RunTree(id.to_string()),
        ("POST", ["v1", "runs", id, verb]) if valid_run_id(id) => {
            let verb = match *verb {
                "kill" => RunVerb::Kill,
                "pause" => RunVerb::Pause,
                "resume" => RunVerb::Resume,
                _ => return None,
            };
            Route::RunAction(id.to_string(), verb)
        }
        _ => return None,
    };
    Some(r)
}

/// Run ids are what `airlock run` makes: 16 lowercase hex digits. Anything else names no run.
fn valid_run_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The answer to an authenticated, rate-limited, authorised request.
pub async fn answer(daemon: &Arc<Daemon>, route: Route, req: Request<Incoming>, peer: &str) -> Result<Reply, Problem> {
    let caller = match route.needs() {
        None => None,
        Some(permission) => {
            let (agent, store) = daemon.authenticate(&req, peer)?;
            daemon.rate_limit(&agent)?;
            // Acting is a superset of reading one's own runs: an agent lists and inspects its own subtree.
            let allowed = agent.role.allows(permission)
                || (permission == Permission::Audit
                    && matches!(
                        route,
                        Route::RunsList
                            | Route::RunGet(_)
                            | Route::RunTree(_)
                            | Route::WhoAmI
                            | Route::Metrics
                            | Route::LockdownStatus
                            | Route::SecretsList
                            | Route::SecretGet(_)
                    )
                    && agent.role.allows(Permission::Act));
            if !allowed {
                return Err(Problem::forbidden(format!(
                    "{} {} needs a role that may {permission:?}; agent {} is {}",
                    route.method(),
                    route.template(),
                    agent.name,
                    agent.role.as_str()
                )));
            }
            Some((agent, store))
        }
    };
    match route {
        Route::Health => Ok(http::json(StatusCode::OK, &json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))),
        Route::Ready => ready(daemon),
        Route::OpenApi => Ok(http::text("application/json", OPENAPI)),
        Route::Metrics => Ok(http::text("text/plain; version=0.0.4", metrics(daemon))),
        Route::WhoAmI => {
            let (agent, _) = caller.expect("authenticated route");
            Ok(http::json(
                StatusCode::OK,
                &json!({"name": agent.name, "role": agent.role.as_str(), "parent": agent.parent}),
            ))
        }
        Route::GuardScan => guard_scan(daemon, req).await,
        Route::GuardSpotlight => guard_spotlight(daemon, req).await,
        Route::Redact => redact(daemon, req).await,
        Route::LockdownStatus => {
            let status = lockdown_status(daemon)?;
            Ok(http::json(StatusCode::OK, &json!({"lockdown": status})))
        }
        Route::LockdownSet => {
            let (agent, _) = caller.expect("authenticated route");
            lockdown_set(daemon, &agent, req).await
        }
        Route::RunsList => {
            let (agent, store) = caller.expect("authenticated route");
            let runs = registry(daemon)?.list().map_err(|e| Problem::internal(e.to_string()))?;
            let visible: Vec<Value> = runs.iter().filter(|r| may_see(&agent, &store, r)).map(run_json).collect();
            Ok(http::json(StatusCode::OK, &json!({"runs": visible})))
        }
        Route::RunGet(id) => {
            let (agent, store) = caller.expect("authenticated route");
            let run = find_run(daemon, &agent, &store, &id)?;
            Ok(http::json(StatusCode::OK, &run_json(&run)))
        }
        Route::RunTree(id) => {
            let (agent, store) = caller.expect("authenticated route");
            run_tree(daemon, &agent, &store, &id)
        }
        Route::RunAction(id, verb) => {
            let (agent, store) = caller.expect("authenticated route");
            let run = find_run(daemon, &agent, &store, &id)?;
            run_action(daemon, &agent, run, verb).await
        }
        Route::GuardValidate => validate_output(daemon, req).await,
        Route::PolicyExplain => {
            let (agent, store) = caller.expect("authenticated route");
            policy_explain(daemon, &agent, &store, req).await
        }
        Route::AuditVerify => audit_verify(daemon, req.uri().query().unwrap_or("")).await,
        Route::AuditRecords => audit_records(daemon, req.uri().query().unwrap_or("")).await,
        Route::RunStart => {
            let (agent, store) = caller.expect("authenticated route");
            super::runs::start(daemon, &agent, &store, req).await
        }
        Route::CapabilityInvoke(provider, capability) => {
            let (agent, _) = caller.expect("authenticated route");
            super::capabilities::invoke(daemon, &agent, &provider, &capability, req, peer).await
        }
        Route::SecretsList => {
            let (agent, _) = caller.expect("authenticated route");
            super::secrets::list(daemon, &agent, req.uri().query().unwrap_or("")).await
        }
        Route::SecretGet(name) => {
            let (agent, _) = caller.expect("authenticated route");
            super::secrets::get(daemon, &agent, &name, req.uri().query().unwrap_or("")).await
        }
        Route::SecretCreate => {
            let (agent, _) = caller.expect("authenticated route");
            super::secrets::create(daemon, &agent, req).await
        }
        Route::SecretRotate(name) => {
            let (agent, _) = caller.expect("authenticated route");
            super::secrets::rotate(daemon, &agent, &name, req).await
        }
        Route::SecretPin(name) => {
            let (agent, _) = caller.expect("authenticated route");
            super::secrets::pin(daemon, &agent, &name, req).await
        }
        Route::AuditCheckpoint => super::checkpoint::latest(daemon).await,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    text: String,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    allow_hosts: Vec<String>,
    /// The length of the input the output answers, for `max_ratio`.
    #[serde(default, deserialize_with = "http::whole_opt")]
    input_len: Option<usize>,
    #[serde(default)]
    max_ratio: Option<f64>,
}

async fn validate_output(daemon: &Arc<Daemon>, req: Request<Incoming>) -> Result<Reply, Problem> {
    use airlock_guard::validate::{OutputPolicy, OutputSchema, validate};
    let body: ValidateBody = read_json(req, daemon.max_body).await?;
    let mut policy = OutputPolicy::default();
    for host in &body.allow_hosts {
        crate::validate::check_host(host)?;
    }
    policy.allowed_hosts = body.allow_hosts.clone();
    if let Some(schema) = &body.schema {
        policy.schema = Some(
            OutputSchema::compile(schema)
                .map_err(|e| Problem::bad_request(format!("schema: not a usable JSON Schema: {e}")))?,
        );
    }
    match (body.max_ratio, body.input_len) {
        (Some(r), _) if !(r.is_finite() && r > 0.0) => {
            return Err(Problem::bad_request(format!("max_ratio {r}: a positive number, such as 3 or 1.5")));
        }
        (Some(_), None) => return Err(Problem::bad_request("max_ratio needs input_len")),
        (None, Some(_)) => return Err(Problem::bad_request("input_len is only used with max_ratio")),
        _ => {}
    }
    policy.max_length_ratio = body.max_ratio;
    let home = daemon.home.clone();
    let v = tokio::task::spawn_blocking(move || -> Result<Value, Problem> {
        let mut builder = airlock_broker::leak::LeakScanner::builder();
        let known = match crate::canary::add_known(&home, &mut builder)? {
            0 => None,
            _ => Some(builder.build().map_err(|e| Problem::internal(e.to_string()))?),
        };
        let v = validate(&body.text, body.input_len, &policy, known.as_ref());
        Ok(crate::validate::json(&v))
    })
    .await
    .map_err(|e| Problem::internal(e.to_string()))??;
    Ok(http::json(StatusCode::OK, &mask_json(&v)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExplainBody {
    agent: String,
    #[serde(default)]
    tool: Option<String>,
    action: String,
    resource: String,
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    verb: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default, deserialize_with = "http::whole")]
    risk: u8,
    #[serde(default, deserialize_with = "http::whole")]
    bytes: u64,
}

fn get() -> String {
    "GET".into()
}

async fn policy_explain(
    daemon: &Arc<Daemon>,
    caller: &Agent,
    store: &AgentStore,
    req: Request<Incoming>,
) -> Result<Reply, Problem> {
    use airlock_policy::engine::{Action, Request as PolicyRequest};
    let b: ExplainBody = read_json(req, daemon.max_body).await?;
    // An agent may ask about itself and its sub-agents; admins about anyone.
    if !store.can_act_for(&caller.name, &b.agent) {
        return Err(Problem::forbidden(format!("agent {} may not ask about agent {}", caller.name, b.agent)));
    }
    let action = Action::parse(&b.action).map_err(Problem::bad_request)?;
    if action.needs_tool() && b.tool.is_none() {
        return Err(Problem::bad_request(format!("{} needs a tool", action.as_str())));
    }
    let tool = b.tool.as_deref().unwrap_or_default();
    let mut r = match action {
        Action::HttpRequest => PolicyRequest::http(&b.agent, tool, &b.method, &b.resource).bytes(b.bytes),
        Action::FsRead | Action::FsWrite | Action::FsExec => PolicyRequest::fs(&b.agent, tool, action, &b.resource),
        Action::Exec => PolicyRequest::exec(&b.agent, tool, &b.resource),
        Action::SecretUse => {
            let target = b.target.as_deref().ok_or_else(|| Problem::bad_request("secret.use needs a target"))?;
            PolicyRequest::secret(&b.agent, tool, &b.resource, target)
        }
        Action::ApiCall => {
            let (kind, id) =
                b.resource.split_once('/').ok_or_else(|| Problem::bad_request("api.call needs resource KIND/ID"))?;
            let verb = b.verb.as_deref().ok_or_else(|| Problem::bad_request("api.call needs a verb"))?;
            PolicyRequest::api(&b.agent, kind, id, verb, b.owner.as_deref())
        }
    };
    r = r.risk(b.risk);
    let engine = daemon.policy.engine();
    Ok(http::json(StatusCode::OK, &crate::policy::explanation(&engine, &r)))
}

/// `GET /v1/audit/verify?max_age_ms=MS`: the report `airlock audit verify --json` prints (less `key_source`: the key
/// is the daemon's, from its vault), with the newest checkpoint's note, which the CLI saves for `--save-checkpoint`.
async fn audit_verify(daemon: &Arc<Daemon>, query: &str) -> Result<Reply, Problem> {
    let mut max_age_ms = None;
    for (k, v) in query_pairs(query)? {
        match k {
            "max_age_ms" => {
                max_age_ms = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|ms| *ms >= 0)
                        .ok_or_else(|| Problem::bad_request("max_age_ms: a whole number of milliseconds"))?,
                )
            }
            other => return Err(Problem::bad_request(format!("unknown query parameter {other:?}"))),
        }
    }
    let d = Arc::clone(daemon);
    let v = tokio::task::spawn_blocking(move || -> Result<crate::audit::Verification, Problem> {
        let opts =
            airlock_audit::VerifyOptions { now_ms: now_ms(), max_checkpoint_age_ms: max_age_ms, ..Default::default() };
        let report =
            airlock_audit::verify(&d.audit_dir, &d.audit_key, &opts).map_err(|e| Problem::internal(e.to_string()))?;
        let note = match &report.latest_checkpoint {
            Some(latest) => crate::audit::latest_note(&d.audit_dir, &d.audit_key, latest)?,
            None => None,
        };
        Ok(crate::audit::Verification::new(&d.audit_dir, &d.audit_key, None, &report, note))
    })
    .await
    .map_err(|e| Problem::internal(e.to_string()))??;
    let v = serde_json::to_value(&v).map_err(|e| Problem::internal(e.to_string()))?;
    Ok(http::json(StatusCode::OK, &v))
}

/// The `key=value` pairs of a query string, values percent-decoded.
fn query_pairs(query: &str) -> Result<Vec<(&str, String)>, Problem> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v =
                percent_decode(v).ok_or_else(|| Problem::bad_request(format!("query {k}: bad percent-encoding")))?;
            Ok((k, v))
        })
        .collect()
}

/// Most records one query returns.
const MAX_RECORDS: usize = 1000;

/// `GET /v1/audit/records?since=MS&until=MS&class=api&actor=A&decision=deny&limit=N&from_seq=S`: the newest
/// `limit` (100; at most 1000) records that match, oldest first; with `from_seq`, the oldest `limit` that match from
/// record `from_seq` on, a cursor for reading the whole log forward (`airlock audit query` through the daemon).
async fn audit_records(daemon: &Arc<Daemon>, query: &str) -> Result<Reply, Problem> {
    use airlock_audit::reader::Filter;
    let mut filter = Filter { since_ms: None, until_ms: None, classes: Vec::new(), actor: None, decision: None };
    let mut limit = 100usize;
    let mut from_seq: Option<u64> = None;
    for (k, v) in query_pairs(query)? {
        let int = |v: &str| v.parse::<i64>().map_err(|_| Problem::bad_request(format!("query {k}: an integer")));
        match k {
            "since" => filter.since_ms = Some(int(&v)?),
            "until" => filter.until_ms = Some(int(&v)?),
            "class" => filter.classes.push(airlock_audit::Class::parse(&v).ok_or_else(|| {
                Problem::bad_request(format!("class {v:?}: api, process, finding, entity, lifecycle"))
            })?),
            "actor" => filter.actor = Some(v),
            "decision" => {
                filter.decision = Some(match v.as_str() {
                    "allow" => airlock_audit::Decision::Allow,
                    "deny" => airlock_audit::Decision::Deny,
                    _ => return Err(Problem::bad_request("decision: allow or deny")),
                })
            }
            "from_seq" => {
                from_seq =
                    Some(v.parse::<u64>().map_err(|_| Problem::bad_request("from_seq: a record's seq, 0 or more"))?)
            }
            "limit" => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_RECORDS).contains(n))
                    .ok_or_else(|| Problem::bad_request(format!("limit: 1 to {MAX_RECORDS}")))?
            }
            other => return Err(Problem::bad_request(format!("unknown query parameter {other:?}"))),
        }
    }
    let d = Arc::clone(daemon);
    let records = tokio::task::spawn_blocking(move || {
        if let Some(from) = from_seq {
            let mut oldest = Vec::with_capacity(limit);
            return airlock_audit::reader::for_each_from(&d.audit_dir, from, |r| {
                if filter.matches(&r) {
                    oldest.push(r.event);
                }
                oldest.len() < limit
            })
            .map(|()| oldest);
        }
        airlock_audit::reader::newest(&d.audit_dir, limit, |r| filter.matches(r))
            .map(|newest| newest.into_iter().map(|r| r.event).collect::<Vec<Value>>())
    })
    .await
    .map_err(|e| Problem::internal(e.to_string()))?
    .map_err(|e| Problem::internal(e.to_string()))?;
    Ok(http::json(StatusCode::OK, &json!({"records": records})))
}

/// `%XX` escapes and `+` decoded; `None` for a bad escape or bytes that are not UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn ready(daemon: &Daemon) -> Result<Reply, Problem> {
    let lockdown = lockdown_status(daemon)?;
    // Ready means: the policy is loaded, and the audit log takes records (a daemon that cannot record cannot
    // decide anything: audit is fail-closed). The log is tried at most every READY_PROBE, so that a prober
    // polling every second does not fill it.
    let audit_ok: Result<(), String> = {
        let mut last = super::lock(&daemon.ready_probe);
        match &*last {
            Some((at, result)) if at.elapsed() < READY_PROBE => result.clone(),
            _ => {
                let result = daemon
                    .log
                    .append(
                        airlock_audit::Event::lifecycle(
                            now_ms(),
                            airlock_audit::event::activity::OTHER,
                            "readiness probe",
                        )
                        .status(true),
                    )
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                *last = Some((std::time::Instant::now(), result.clone()));
                result
            }
        }
    };
    let body = json!({
        "ready": audit_ok.is_ok(),
        "policy_generation": daemon.policy.generation(),
        "audit": audit_ok.as_ref().map_or_else(Clone::clone, |_| "ok".to_string()),
        "lockdown": lockdown.is_some(),
    });
    let status = if audit_ok.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    Ok(http::json(status, &body))
}

fn metrics(daemon: &Daemon) -> String {
    let runs = registry(daemon).and_then(|r| r.list().map_err(|e| Problem::internal(e.to_string())));
    let active = runs.as_ref().map_or(f64::NAN, |r| r.len() as f64);
    let paused = runs.as_ref().map_or(f64::NAN, |r| r.iter().filter(|r| r.paused).count() as f64);
    let lockdown = lockdown_status(daemon).map_or(f64::NAN, |l| if l.is_some() { 1.0 } else { 0.0 });
    let [unsigned, checkpoint_age] = super::checkpoint::lag(daemon);
    daemon.metrics.render(&[
        ("airlock_runs_active", "Sandboxed runs now registered on this home.", active),
        ("airlock_runs_paused", "Registered runs that are paused.", paused),
        ("airlock_lockdown", "1 while a lockdown is engaged.", lockdown),
        (
            "airlock_policy_generation",
            "How many times the policy has been reloaded.",
            daemon.policy.generation() as f64,
        ),
        unsigned,
        checkpoint_age,
    ])
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanBody {
    text: String,
    #[serde(default)]
    profile: Option<String>,
    /// `false` runs the heuristics alone.
    #[serde(default = "yes")]
    classifier: bool,
}

fn yes() -> bool {
    true
}

async fn guard_scan(daemon: &Arc<Daemon>, req: Request<Incoming>) -> Result<Reply, Problem> {
    let body: ScanBody = read_json(req, daemon.max_body).await?;
    let thresholds = match body.profile.as_deref().unwrap_or("default") {
        "strict" => Thresholds::STRICT,
        "default" => Thresholds::DEFAULT,
        "permissive" => Thresholds::PERMISSIVE,
        other => return Err(Problem::bad_request(format!("profile {other:?}: strict, default or permissive"))),
    };
    let d = Arc::clone(daemon);
    // Scoring is CPU work (milliseconds per 100 KB): off the I/O threads.
    let (value, verdict) = tokio::task::spawn_blocking(move || {
        #[cfg(feature = "classifier")]
        let (score, note) = match (&d.classifier, body.classifier) {
            (Some(c), true) => (Some(c.score(&body.text)), None),
            (None, true) => (None, Some("heuristics only: no classifier model installed")),
            (_, false) => (None, Some("heuristics only: classifier off for this request")),
        };
        #[cfg(not(feature = "classifier"))]
        let (score, note) = {
            let _ = (&d, body.classifier);
            (None, Some("heuristics only: built without the classifier feature"))
        };
        let a = assess(Heuristics::builtin(), &body.text, score, thresholds);
        (crate::guard::json(&a, &body.text, note), a.verdict.as_str())
    })
    .await
    .map_err(|e| Problem::internal(format!("scan failed: {e}")))?;
    // The report quotes the text it judged, which may hold a credential: it leaves masked, as on the CLI.
    let masked = mask_json(&value);
    daemon.metrics.verdict(verdict);
    Ok(http::json(StatusCode::OK, &masked))
}

/// The built-in redaction rules, compiled once (building them takes milliseconds: rules parsed, regexes compiled).
fn builtin_scanner() -> &'static airlock_redact::Scanner {
    static SCANNER: std::sync::OnceLock<airlock_redact::Scanner> = std::sync::OnceLock::new();
    SCANNER.get_or_init(airlock_redact::Scanner::builtin)
}

/// `value` with every credential the built-in rules recognise masked, in every string.
fn mask_json(value: &Value) -> Value {
    let text = value.to_string();
    let (masked, _) = builtin_scanner().redact(text.as_bytes(), &airlock_redact::MaskStyle::Label);
    serde_json::from_slice(&masked).unwrap_or_else(|_| json!({"error": "the report could not be masked"}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpotlightBody {
    text: String,
    mode: String,
    #[serde(default)]
    session: Option<String>,
}

async fn guard_spotlight(daemon: &Arc<Daemon>, req: Request<Incoming>) -> Result<Reply, Problem> {
    let body: SpotlightBody = read_json(req, daemon.max_body).await?;
    let mode = match body.mode.as_str() {
        "delimit" => Mode::Delimit,
        "datamark" => Mode::Datamark,
        "encode" => Mode::Encode,
        other => return Err(Problem::bad_request(format!("mode {other:?}: delimit, datamark or encode"))),
    };
    let s = match &body.session {
        None => Spotlight::new(mode),
        Some(session) if !session.is_empty() && session.len() <= 128 => {
            crate::guard::session_spotlight(&daemon.home, mode, session)?
        }
        Some(_) => return Err(Problem::bad_request("session: 1 to 128 characters")),
    };
    Ok(http::json(
        StatusCode::OK,
        &json!({"mode": mode.as_str(), "system_prompt": s.system_prompt(), "text": s.wrap(&body.text)}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactBody {
    text: String,
    #[serde(default)]
    mask: Option<String>,
}

async fn redact(daemon: &Arc<Daemon>, req: Request<Incoming>) -> Result<Reply, Problem> {
    let body: RedactBody = read_json(req, daemon.max_body).await?;
    let style = match body.mask.as_deref().unwrap_or("label") {
        "label" => airlock_redact::MaskStyle::Label,
        "shape" => airlock_redact::MaskStyle::Shape,
        other => return Err(Problem::bad_request(format!("mask {other:?}: label or shape"))),
    };
    let (masked, findings) =
        tokio::task::spawn_blocking(move || builtin_scanner().redact(body.text.as_bytes(), &style))
            .await
            .map_err(|e| Problem::internal(format!("redaction failed: {e}")))?;
    let findings: Vec<Value> = findings.iter().map(|f| crate::redact::finding_json(None, f)).collect();
    Ok(http::json(StatusCode::OK, &json!({"text": String::from_utf8_lossy(&masked), "findings": findings})))
}

fn state_dir(daemon: &Daemon) -> std::path::PathBuf {
    crate::run::state_dir(&daemon.home)
}

fn registry(daemon: &Daemon) -> Result<Registry, Problem> {
    Registry::open(&state_dir(daemon)).map_err(|e| Problem::internal(e.to_string()))
}

fn lockdown_status(daemon: &Daemon) -> Result<Option<Lockdown>, Problem> {
    airlock_sandbox::supervisor::lockdown_status(&state_dir(daemon)).map_err(|e| Problem::internal(e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockdownBody {
    engaged: bool,
    #[serde(default)]
    reason: Option<String>,
}

async fn lockdown_set(daemon: &Arc<Daemon>, agent: &Agent, req: Request<Incoming>) -> Result<Reply, Problem> {
    let body: LockdownBody = read_json(req, daemon.max_body).await?;
    let state = state_dir(daemon);
    let reason = body.reason.unwrap_or_else(|| "lockdown through the API".into());
    let event = |engaged: bool, message: String| {
        airlock_audit::Event::lifecycle(
            now_ms(),
            if engaged { airlock_audit::event::activity::CREATE } else { airlock_audit::event::activity::DELETE },
            message,
        )
        .actor(&agent.name, None)
        .set("unmapped.airlock.lockdown", json!({"engaged": engaged, "by": agent.name, "reason": reason}))
        .severity(airlock_audit::event::Severity::High)
        .status(true)
    };
    if !body.engaged {
        let lifted =
            airlock_sandbox::supervisor::lockdown_lift(&state).map_err(|e| Problem::internal(e.to_string()))?;
        if lifted {
            daemon.log.append(event(false, "lockdown lifted".into())).map_err(|e| Problem::internal(e.to_string()))?;
        }
        return Ok(http::json(StatusCode::OK, &json!({"lockdown": null, "changed": lifted})));
    }
    // The state file first: from this moment no run starts and every broker refuses egress.
    let l =
        Lockdown { since_unix_ms: now_ms().max(0) as u64, reason: reason.clone(), by: format!("agent {}", agent.name) };
    airlock_sandbox::supervisor::lockdown_engage(&state, &l).map_err(|e| Problem::internal(e.to_string()))?;
    daemon
        .log
        .append(event(true, format!("lockdown engaged: {reason}")))
        .map_err(|e| Problem::internal(e.to_string()))?;
    let reg = registry(daemon)?;
    let runs = reg.list().map_err(|e| Problem::internal(e.to_string()))?;
    let killed = runs.len();
    tokio::task::spawn_blocking(move || reg.kill(&runs, Duration::ZERO))
        .await
        .map_err(|e| Problem::internal(e.to_string()))?;
    Ok(http::json(StatusCode::OK, &json!({"lockdown": l, "changed": true, "killed": killed})))
}

fn may_see(agent: &Agent, store: &AgentStore, run: &RunRecord) -> bool {
    agent.role.allows(Permission::Audit) || store.can_act_for(&agent.name, &run.agent)
}

/// The run `id`, if the caller may see it. A run outside the caller's subtree is "not found", not "forbidden":
/// an agent learns nothing about other agents' runs, not even that they exist.
pub(super) fn find_run(daemon: &Daemon, agent: &Agent, store: &AgentStore, id: &str) -> Result<RunRecord, Problem> {
    let run = registry(daemon)?.get(id).map_err(|e| Problem::internal(e.to_string()))?;
    match run {
        Some(r) if may_see(agent, store, &r) => Ok(r),
        _ => Err(Problem::not_found(format!("no run {id}"))),
    }
}

/// The run `id` and the runs below it, nested, as far as the caller may see: the runs `GET /v1/runs` would list
/// for it, so a run it may not see is left out with everything below it, and a root it may not see is not found.
fn run_tree(daemon: &Daemon, agent: &Agent, store: &AgentStore, id: &str) -> Result<Reply, Problem> {
    let runs = registry(daemon)?.list().map_err(|e| Problem::internal(e.to_string()))?;
    let visible: Vec<RunRecord> = runs.into_iter().filter(|r| may_see(agent, store, r)).collect();
    let tree = crate::supervise::subtree(visible, id, |r| (r.run.as_str(), r.parent.as_deref()))
        .ok_or_else(|| Problem::not_found(format!("no run {id}")))?;
    Ok(http::json(StatusCode::OK, &tree.to_json(&run_json)))
}

fn run_json(r: &RunRecord) -> Value {
    json!({
        "run": r.run, "agent": r.agent, "tool": r.tool, "parent": r.parent, "depth": r.depth,
        "command": r.command, "started_unix_ms": r.started_unix_ms, "paused": r.paused,
    })
}

async fn run_action(daemon: &Arc<Daemon>, agent: &Agent, run: RunRecord, verb: RunVerb) -> Result<Reply, Problem> {
    // Acting on a run needs more than seeing it: an auditor sees every run and controls none.
    if !agent.role.allows(Permission::Act) {
        return Err(Problem::forbidden(format!("agent {} may not control runs", agent.name)));
    }
    let reg = registry(daemon)?;
    let id = run.run.clone();
    let (name, outcome) = tokio::task::spawn_blocking(move || match verb {
        RunVerb::Kill => {
            let out = reg.kill(std::slice::from_ref(&run), Duration::from_secs(2));
            let outcome = match out.first() {
                Some(o) if o.error.is_some() => Err(o.error.clone().unwrap_or_default()),
                Some(o) => Ok(match o.result {
                    airlock_sandbox::supervisor::KillResult::Terminated => "terminated".to_string(),
                    airlock_sandbox::supervisor::KillResult::Killed => "killed".to_string(),
                    airlock_sandbox::supervisor::KillResult::AlreadyGone => "already gone".to_string(),
                }),
                None => Ok("already gone".to_string()),
            };
            ("kill", outcome)
        }
        RunVerb::Pause => ("pause", reg.pause(&run).map(|m| format!("paused ({m:?})")).map_err(|e| e.to_string())),
        RunVerb::Resume => ("resume", reg.resume(&run).map(|m| format!("resumed ({m:?})")).map_err(|e| e.to_string())),
    })
    .await
    .map_err(|e| Problem::internal(e.to_string()))?;
    let outcome = outcome.map_err(Problem::internal)?;
    let event = airlock_audit::Event::lifecycle(
        now_ms(),
        airlock_audit::event::activity::OTHER,
        format!("run {id}: {name} through the API"),
    )
    .actor(&agent.name, None)
    .correlation(&id)
    .status(true);
    daemon.log.append(event).map_err(|e| Problem::internal(e.to_string()))?;
    Ok(http::json(StatusCode::OK, &json!({"run": id, "action": name, "outcome": outcome})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_their_templates_and_nothing_else() {
        for (method, template) in ROUTES {
            let path = template
                .replace("{id}", "0123456789abcdef")
                .replace("{provider}", "openai")
                .replace("{capability}", "chat-completions")
                .replace("{name}", "GITHUB_TOKEN");
            let r = route(&Method::from_bytes(method.as_bytes()).unwrap(), &path).expect(template);
            assert_eq!((r.method(), r.template()), (*method, *template));
        }
        assert_eq!(route(&Method::GET, "/v1/runs/../agents"), None);
        assert_eq!(route(&Method::GET, "/v1/runs/a%2Fb"), None);
        assert_eq!(route(&Method::GET, "/v1/runs/r-1"), None);
        assert_eq!(route(&Method::DELETE, "/v1/runs/0123456789abcdef"), None);
        assert_eq!(route(&Method::POST, "/v1/runs/0123456789abcdef/explode"), None);
        assert_eq!(route(&Method::POST, "/v1/runs/0123456789abcdef/tree"), None);
        assert_eq!(route(&Method::GET, "/v1/runs/0123456789abcdef/tree/extra"), None);
        assert_eq!(route(&Method::GET, "/v1/runs/r-1/tree"), None);
        assert_eq!(route(&Method::GET, "/v1/health/"), None);
        assert_eq!(route(&Method::POST, "/v1/capabilities/openai"), None);
        assert_eq!(route(&Method::POST, "/v1/capabilities/openai/models/extra"), None);
        assert_eq!(route(&Method::POST, "/v1/capabilities/open%2Fai/models"), None);
        assert_eq!(route(&Method::POST, "/v1/capabilities/../models"), None);
        assert_eq!(route(&Method::GET, "/v1/capabilities/openai/models"), None);
        assert_eq!(route(&Method::GET, "/v1/secrets/"), None);
        assert_eq!(route(&Method::POST, "/v1/secrets//rotate"), None);
        assert_eq!(route(&Method::GET, "/v1/secrets/a/b"), None);
        assert_eq!(route(&Method::POST, "/v1/secrets/a/unpin"), None);
        assert_eq!(route(&Method::PUT, "/v1/secrets/a"), None);
    }

    #[test]
    fn integers_may_be_written_as_whole_floats() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(deserialize_with = "http::whole")]
            n: u8,
            #[serde(default, deserialize_with = "http::whole_opt")]
            m: Option<usize>,
        }
        let t: T = serde_json::from_str(r#"{"n": 3.0, "m": 262143.0}"#).unwrap();
        assert_eq!((t.n, t.m), (3, Some(262143)));
        assert_eq!(serde_json::from_str::<T>(r#"{"n": 7}"#).unwrap().m, None);
        assert_eq!(serde_json::from_str::<T>(r#"{"n": 7, "m": null}"#).unwrap().m, None);
        assert!(serde_json::from_str::<T>(r#"{"n": 7, "m": 18446744073709551616}"#).is_err());
        for bad in [r#"{"n": 3.5}"#, r#"{"n": -1}"#, r#"{"n": 256}"#, r#"{"n": "3"}"#, r#"{"n": 1e300}"#] {
            assert!(serde_json::from_str::<T>(bad).is_err(), "{bad}");
        }
    }

    /// Whether the JSON Schema `schema` (as a 2020-12 validator reads it) accepts a string.
    fn schema_accepts(schema: &Value) -> impl Fn(&str) -> bool {
        use airlock_guard::validate::{FindingKind, OutputPolicy, OutputSchema, validate};
        let policy = OutputPolicy {
            schema: Some(OutputSchema::compile(schema).expect("the schema compiles")),
            ..OutputPolicy::default()
        };
        move |s| {
            let v = validate(&Value::from(s).to_string(), None, &policy, None);
            !v.findings.iter().any(|f| f.kind == FindingKind::Schema)
        }
    }

    #[test]
    fn the_documented_call_path_is_exactly_what_the_broker_takes() {
        // The schema is what clients (and the API fuzzer) go by: a path it allows must not be refused, and the other
        // way round. Every string of up to four characters from an alphabet of the path's special cases, and every
        // escape.
        let doc: Value = serde_json::from_str(OPENAPI).expect("docs/openapi.json is JSON");
        let mut schema = doc["components"]["schemas"]["CapabilityEnvelope"]["properties"]["path"].clone();
        schema.as_object_mut().unwrap().remove("maxLength");
        let alphabet = ['/', '.', ';', 'a', '%', '2', 'e', ' ', '?', '#', '\\', '\t', '\u{e9}'];
        let mut paths: Vec<String> = vec![String::new()];
        let mut layer = paths.clone();
        for _ in 0..4 {
            layer = layer.iter().flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}"))).collect();
            paths.extend(layer.iter().cloned());
        }
        for b in 0..=255u8 {
            paths.extend([format!("/a%{b:02X}"), format!("/a%{b:02x}b"), format!("/%{b:02X}/x")]);
        }
        paths.extend(
            ["/a/b/", "/a//", "/a/..;x/b", "/a/x;../b", "/.well-known/x", "/v1/chat%20completions"].map(String::from),
        );
        let accepts = schema_accepts(&schema);
        for p in &paths {
            let broker = airlock_broker::capability::normalize_path(p).is_ok();
            assert_eq!(accepts(p), broker, "{p:?}: the broker says {broker}");
        }
    }

    #[test]
    fn the_documented_call_method_is_exactly_what_the_broker_takes() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("docs/openapi.json is JSON");
        let accepts = schema_accepts(&doc["components"]["schemas"]["CapabilityEnvelope"]["properties"]["method"]);
        for m in ["GET", "post", "M-SEARCH", "CONNECT", "connect", "Trace", "TRACK", "TRACKS", "", "GE T", "G\u{e9}T"] {
            let broker = airlock_broker::capability::parse_method(m).is_ok();
            assert_eq!(accepts(m), broker, "{m:?}");
        }
        assert!(accepts(&"A".repeat(32)) && !accepts(&"A".repeat(33)));
    }

    #[test]
    fn the_openapi_document_names_every_route_and_no_other() {
        let doc: Value = serde_json::from_str(OPENAPI).expect("docs/openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented: Vec<(String, String)> = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                    documented.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        documented.sort();
        let mut served: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        served.sort();
        assert_eq!(documented, served);
    }
}
