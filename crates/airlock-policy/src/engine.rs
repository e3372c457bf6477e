//! Deciding: normalise the request, look in the cache, otherwise ask Cedar, then explain.
//!
//! The order matters. Normalisation comes first so that every spelling of one request (`API.GitHub.com.`,
//! `/repos/%2e%2e/admin`, a symlink into `~/.ssh`) is decided as its canonical form, and so the cache key is
//! canonical too. Cedar alone decides; Rust code only turns a default deny into a sentence a model can act on
//! ("host evil.example is not in tool web_fetch's allowed hosts"). Any evaluation error is a deny: an error
//! never becomes an allow.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cedar_policy::{Authorizer, Entities, EntityUid, PolicySet, Request as CedarRequest};

use crate::compile::{ACTIONS, Compiled, TYPES, tool_action_index, uid};
use crate::model::{FsList, Permission};
use crate::normalize::{self, HostName, HostPattern, PortSpec, Scheme, Target};

/// Decisions kept per loaded config; a reload starts a new, empty cache.
pub const CACHE_ENTRIES: usize = 65_536;

/// Host entities kept per engine.
pub const HOST_ENTITIES: usize = 4096;

/// What is being asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Action {
    #[serde(rename = "http.request")]
    HttpRequest,
    #[serde(rename = "fs.read")]
    FsRead,
    #[serde(rename = "fs.write")]
    FsWrite,
    #[serde(rename = "fs.exec")]
    FsExec,
    #[serde(rename = "exec")]
    Exec,
    #[serde(rename = "secret.use")]
    SecretUse,
    #[serde(rename = "api.call")]
    ApiCall,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::HttpRequest,
        Action::FsRead,
        Action::FsWrite,
        Action::FsExec,
        Action::Exec,
        Action::SecretUse,
        Action::ApiCall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::HttpRequest => "http.request",
            Action::FsRead => "fs.read",
            Action::FsWrite => "fs.write",
            Action::FsExec => "fs.exec",
            Action::Exec => "exec",
            Action::SecretUse => "secret.use",
            Action::ApiCall => "api.call",
        }
    }

    pub fn parse(s: &str) -> Result<Action, String> {
        Action::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
            format!("unknown action {s:?}: expected one of {}", names.join(", "))
        })
    }

    /// Tool actions are taken by a tool on an agent's behalf; `api.call` is the agent's own.
    pub fn needs_tool(self) -> bool {
        self != Action::ApiCall
    }
}

/// A question, as callers phrase it. Build with the constructors, then adjust with `risk`, `run`, `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub agent: String,
    pub tool: Option<String>,
    pub action: Action,
    /// URL (`http.request`), absolute path (`fs.*`), program name or path (`exec`), secret name (`secret.use`),
    /// `KIND/ID` (`api.call`).
    pub resource: String,
    pub method: Option<String>,
    /// Request body size for `http.request`.
    pub bytes: u64,
    /// Where a secret would be sent (`secret.use`): a URL or `host[:port]`.
    pub target: Option<String>,
    pub verb: Option<String>,
    pub owner: Option<String>,
    pub run_id: String,
    /// 0-100, from the caller's own screening (e.g. the guard).
    pub risk_score: u8,
    /// Defaults to now.
    pub time: Option<SystemTime>,
}

impl Request {
    fn base(agent: &str, tool: Option<&str>, action: Action, resource: &str) -> Request {
        Request {
            agent: agent.to_string(),
            tool: tool.map(str::to_string),
            action,
            resource: resource.to_string(),
            method: None,
            bytes: 0,
            target: None,
            verb: None,
            owner: None,
            run_id: String::new(),
            risk_score: 0,
            time: None,
        }
    }

    pub fn http(agent: &str, tool: &str, method: &str, url: &str) -> Request {
        Request { method: Some(method.to_string()), ..Request::base(agent, Some(tool), Action::HttpRequest, url) }
    }

    pub fn fs(agent: &str, tool: &str, action: Action, path: &str) -> Request {
        Request::base(agent, Some(tool), action, path)
    }

    pub fn exec(agent: &str, tool: &str, program: &str) -> Request {
        Request::base(agent, Some(tool), Action::Exec, program)
    }

    pub fn secret(agent: &str, tool: &str, secret: &str, target: &str) -> Request {
        Request { target: Some(target.to_string()), ..Request::base(agent, Some(tool), Action::SecretUse, secret) }
    }

    pub fn api(agent: &str, kind: &str, id: &str, verb: &str, owner: Option<&str>) -> Request {
        Request {
            verb: Some(verb.to_string()),
            owner: owner.map(str::to_string),
            ..Request::base(agent, None, Action::ApiCall, &format!("{kind}/{id}"))
        }
    }

    pub fn bytes(mut self, n: u64) -> Request {
        self.bytes = n;
        self
    }

    pub fn risk(mut self, score: u8) -> Request {
        self.risk_score = score;
        self
    }

    pub fn run(mut self, id: &str) -> Request {
        self.run_id = id.to_string();
        self
    }

    pub fn at(mut self, t: SystemTime) -> Request {
        self.time = Some(t);
        self
    }
}

/// The canonical form a decision is made on, and the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NormalizedRequest {
    pub agent: String,
    pub tool: Option<String>,
    pub action: Action,
    pub resource: Resource,
    pub run_id: String,
    pub risk_score: u8,
    /// 0 = Monday, UTC.
    pub weekday: u8,
    /// Minutes since UTC midnight.
    pub minute: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    Http { scheme: Scheme, host: HostName, port: u16, default_port: bool, path: String, method: String, bytes: u64 },
    Path(String),
    Program { path: String, name: String },
    Secret { name: String, scheme: Scheme, host: HostName, port: u16, default_port: bool },
    Api { kind: String, id: String, verb: String, owner: Option<String> },
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Http { scheme, host, port, default_port, path, method, .. } => {
                write!(f, "{method} {}://{host}", scheme.as_str())?;
                if !default_port {
                    write!(f, ":{port}")?;
                }
                f.write_str(path)
            }
            Resource::Path(p) => f.write_str(p),
            Resource::Program { path, .. } => f.write_str(path),
            Resource::Secret { name, host, port, .. } => write!(f, "{name} -> {host}:{port}"),
            Resource::Api { kind, id, verb, .. } => write!(f, "{verb} {kind}/{id}"),
        }
    }
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// Ids of the policies that determined the answer: the permits that matched for an allow, the forbids that
    /// matched for an explicit deny; empty for a default deny.
    pub policies: Vec<String>,
    /// One sentence, fit to show to the model.
    pub reason: String,
    /// Evaluation errors (each turned the decision into a deny).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl Decision {
    fn deny(reason: String) -> Decision {
        Decision { allowed: false, policies: Vec::new(), reason, errors: Vec::new() }
    }
}

/// A decision and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub decision: Arc<Decision>,
    pub cached: bool,
}

/// A compiled configuration with its decision cache.
pub struct Engine {
    compiled: Compiled,
    cache: quick_cache::sync::Cache<NormalizedRequest, Arc<Decision>>,
    hosts: quick_cache::sync::Cache<HostName, (EntityUid, Arc<cedar_policy_core::ast::Entity>)>,
    authorizer: Authorizer,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("policies", &self.compiled.policy_count()).finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(compiled: Compiled) -> Engine {
        Engine {
            compiled,
            cache: quick_cache::sync::Cache::new(CACHE_ENTRIES),
            hosts: quick_cache::sync::Cache::new(HOST_ENTITIES),
            authorizer: Authorizer::new(),
        }
    }

    pub fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    /// Normalise, then decide (cached). An invalid request is denied with the reason it is invalid.
    pub fn decide(&self, req: &Request) -> Outcome {
        match self.normalize(req) {
            Ok(n) => self.decide_normalized(&n),
            Err(reason) => Outcome { decision: Arc::new(Decision::deny(reason)), cached: false },
        }
    }

    pub fn decide_normalized(&self, n: &NormalizedRequest) -> Outcome {
        if let Some(d) = self.cache.get(n) {
            return Outcome { decision: d, cached: true };
        }
        let d = Arc::new(self.evaluate(n));
        self.cache.insert(n.clone(), d.clone());
        Outcome { decision: d, cached: false }
    }

    /// Canonical form of a request, or why it cannot be decided.
    pub fn normalize(&self, req: &Request) -> Result<NormalizedRequest, String> {
        let secs =
            req.time.unwrap_or_else(SystemTime::now).duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        // 1970-01-01 was a Thursday (3 when Monday is 0).
        let weekday = ((secs / 86_400 + 3) % 7) as u8;
        let minute = ((secs % 86_400) / 60) as u16;
        if req.risk_score > 100 {
            return Err(format!("risk score {} is out of range 0-100", req.risk_score));
        }
        let resource = match req.action {
            Action::HttpRequest => {
                let t = Target::parse(&req.resource).map_err(|e| e.to_string())?;
                let method = req.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
                if method.is_empty()
                    || method.len() > 32
                    || !method.bytes().all(|c| c.is_ascii_uppercase() || c == b'-' || c == b'_')
                {
                    return Err("invalid HTTP method".to_string());
                }
                Resource::Http {
                    scheme: t.scheme,
                    host: t.host,
                    port: t.port,
                    default_port: t.default_port,
                    path: t.path,
                    method,
                    bytes: req.bytes,
                }
            }
            Action::FsRead | Action::FsWrite | Action::FsExec => {
                Resource::Path(normalize::normalize_fs_path(&req.resource).map_err(|e| e.to_string())?)
            }
            Action::Exec => {
                let path = normalize::resolve_program(&req.resource, &self.compiled.model.search_path)
                    .map_err(|e| e.to_string())?;
                let name = path.rsplit('/').next().unwrap_or(&path).to_string();
                Resource::Program { path, name }
            }
            Action::SecretUse => {
                let target = req.target.as_deref().ok_or("secret.use needs a target host or URL")?;
                let t = if target.contains("://") { Target::parse(target) } else { Target::from_authority(target) }
                    .map_err(|e| e.to_string())?;
                if !crate::refs::valid_secret_name(&req.resource) {
                    return Err(format!("invalid secret name {:?}", req.resource));
                }
                Resource::Secret {
                    name: req.resource.clone(),
                    scheme: t.scheme,
                    host: t.host,
                    port: t.port,
                    default_port: t.default_port,
                }
            }
            Action::ApiCall => {
                let (kind, id) = req.resource.split_once('/').ok_or("api.call resource must be KIND/ID")?;
                let verb = req.verb.clone().ok_or("api.call needs a verb")?;
                let word = |w: &str| !w.is_empty() && w.len() <= 128 && w.bytes().all(|b| b.is_ascii_graphic());
                if !word(kind) || !word(id) || !word(&verb) {
                    return Err("api.call kind, id and verb must be non-empty printable words".to_string());
                }
                Resource::Api { kind: kind.to_string(), id: id.to_string(), verb, owner: req.owner.clone() }
            }
        };
        if req.action.needs_tool() && req.tool.is_none() {
            return Err(format!("action {} needs a tool", req.action.as_str()));
        }
        Ok(NormalizedRequest {
            agent: req.agent.clone(),
            tool: if req.action.needs_tool() { req.tool.clone() } else { None },
            action: req.action,
            resource,
            run_id: req.run_id.clone(),
            risk_score: req.risk_score,
            weekday,
            minute,
        })
    }

    /// Decides without the cache, against the tool's slice.
    pub fn evaluate(&self, n: &NormalizedRequest) -> Decision {
        let Some(set) = self.slice(n) else {
            return Decision::deny(match &n.tool {
                Some(t) => format!("tool {t} is not configured"),
                None => format!("action {} needs a tool", n.action.as_str()),
            });
        };
        self.evaluate_against(n, set)
    }

    /// Decides against every policy at once. Slower; exists so tests can check that slicing changes nothing.
    #[doc(hidden)]
    pub fn evaluate_with_all_policies(&self, n: &NormalizedRequest) -> Decision {
        self.evaluate_against(n, &self.compiled.all)
    }

    #[doc(hidden)]
    pub fn slice_of(&self, n: &NormalizedRequest) -> Option<&PolicySet> {
        self.slice(n)
    }

    fn slice(&self, n: &NormalizedRequest) -> Option<&PolicySet> {
        match &n.tool {
            Some(t) => {
                let i = tool_action_index(n.action.as_str())?;
                self.compiled.tools.get(t).map(|s| &s.by_action[i])
            }
            None if n.action == Action::ApiCall => Some(&self.compiled.api),
            None => None,
        }
    }

    fn evaluate_against(&self, n: &NormalizedRequest, set: &PolicySet) -> Decision {
        if !self.compiled.agents.contains_key(&n.agent) {
            return Decision::deny(format!("agent {} is not configured", n.agent));
        }
        if let Some(t) = &n.tool
            && !self.compiled.tools.contains_key(t)
        {
            return Decision::deny(format!("tool {t} is not configured"));
        }
        let (request, entities) = match self.cedar_request(n) {
            Ok(x) => x,
            Err(e) => return Decision::deny(format!("request could not be evaluated: {e}")),
        };
        let response = self.authorizer.is_authorized(&request, set, &entities);
        let diag = response.diagnostics();
        let mut policies: Vec<String> = diag.reason().map(|p| p.to_string()).collect();
        policies.sort();
        let errors: Vec<String> = diag.errors().map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            // Fail closed: an erroring forbid must not let a permit through.
            return Decision {
                allowed: false,
                policies,
                reason: format!("denied: a policy failed to evaluate ({})", errors.join("; ")),
                errors,
            };
        }
        let allowed = response.decision() == cedar_policy::Decision::Allow;
        let reason = if policies.is_empty() {
            self.diagnose(n)
        } else {
            let mut parts: Vec<String> = Vec::with_capacity(policies.len());
            for id in &policies {
                let r = self.reason_of(id, n);
                if !parts.contains(&r) {
                    parts.push(r);
                }
            }
            parts.join("; ")
        };
        Decision { allowed, policies, reason, errors }
    }

    /// Cedar's request and entity store for a normalised request.
    #[doc(hidden)]
    pub fn cedar_request(&self, n: &NormalizedRequest) -> Result<(CedarRequest, Entities), String> {
        use crate::cedar_input::{boolean, context, entity, entity_ref, long, store, string};
        let agent = self.compiled.agents.get(&n.agent).ok_or_else(|| format!("agent {} is not configured", n.agent))?;
        let mut entities: Vec<Arc<cedar_policy_core::ast::Entity>> = vec![agent.clone()];
        let mut ctx = vec![
            ("profile", string(self.compiled.model.profile.as_str())),
            ("run_id", string(&n.run_id)),
            ("risk_score", long(n.risk_score.into())),
            ("weekday", long(n.weekday.into())),
            ("minute", long(n.minute.into())),
        ];
        if let Some(t) = &n.tool {
            ctx.push(("tool", entity_ref(&uid(&TYPES.tool, t))));
        }
        let resource = match &n.resource {
            Resource::Http { scheme, host, port, default_port, path, method, bytes } => {
                ctx.push(("method", string(method)));
                ctx.push(("scheme", string(scheme.as_str())));
                ctx.push(("port", long((*port).into())));
                ctx.push(("default_port", boolean(*default_port)));
                ctx.push(("path", string(path)));
                ctx.push(("bytes", long(i64::try_from(*bytes).unwrap_or(i64::MAX))));
                let (u, e) = self.host_entity(host);
                entities.push(e);
                u
            }
            Resource::Path(p) => {
                let mut parents: Vec<EntityUid> =
                    normalize::dir_ancestors(p).iter().map(|d| uid(&TYPES.dir, d)).collect();
                parents.extend(self.compiled.global_globs.memberships(p));
                if let Some(s) = n.tool.as_ref().and_then(|t| self.compiled.tools.get(t)) {
                    parents.extend(s.globs.memberships(p));
                }
                let u = uid(&TYPES.path, p);
                entities.push(Arc::new(entity(&u, [("path", string(p))], parents)));
                u
            }
            Resource::Program { path, name } => {
                let u = uid(&TYPES.program, path);
                entities.push(Arc::new(entity(&u, [("path", string(path)), ("name", string(name))], [])));
                u
            }
            Resource::Secret { name, scheme, host, port, default_port } => {
                ctx.push(("scheme", string(scheme.as_str())));
                let (target, e) = self.host_entity(host);
                ctx.push(("target", entity_ref(&target)));
                ctx.push(("port", long((*port).into())));
                ctx.push(("default_port", boolean(*default_port)));
                entities.push(e);
                uid(&TYPES.secret, name)
            }
            Resource::Api { kind, id, verb, owner } => {
                ctx.push(("verb", string(verb)));
                let u = uid(&TYPES.api_object, &format!("{kind}/{id}"));
                let mut attrs = vec![("kind", string(kind))];
                if let Some(o) = owner {
                    attrs.push(("owner", entity_ref(&uid(&TYPES.agent, o))));
                }
                entities.push(Arc::new(entity(&u, attrs, [])));
                u
            }
        };
        let action_entity = ACTIONS.get(n.action.as_str()).ok_or("unknown action")?;
        let action = EntityUid::from(action_entity.uid().clone());

        entities.push(action_entity.clone());
        let request = CedarRequest::new(uid(&TYPES.agent, &n.agent), action, resource, context(ctx), None)
            .map_err(|e| e.to_string())?;
        Ok((request, store(entities)?))
    }

    /// A host's entity, built once per engine: hosts repeat far more than anything else in a request.
    fn host_entity(&self, host: &HostName) -> (EntityUid, Arc<cedar_policy_core::ast::Entity>) {
        if let Some(hit) = self.hosts.get(host) {
            return hit;
        }
        // `[network] allow_private` prefixes exempt an address literal from the private-address rule, as they do
        // from the broker's SSRF check: otherwise an operator's explicit allowance works by name but not by address.
        let allowed = |ip: IpAddr| {
            self.compiled.model.allow_private.iter().any(|a| match a.value {
                crate::model::PrivateAllow::Prefix(net, len) => prefix_contains(net, len, ip),
                crate::model::PrivateAllow::Host(_) => false,
            })
        };
        let built = build_host_entity(host, allowed);
        self.hosts.insert(host.clone(), built.clone());
        built
    }

    /// A policy's `@reason`, with the request's details filled in.
    fn reason_of(&self, id: &str, n: &NormalizedRequest) -> String {
        match self.compiled.reasons.get(id) {
            Some(t) => self.fill(t, n),
            None => format!("policy {id}"),
        }
    }

    fn fill(&self, template: &str, n: &NormalizedRequest) -> String {
        let model = &self.compiled.model;
        let agent = model.agents.get(&n.agent);
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                return out;
            };
            let key = &after[..close];
            let value: Option<String> = match (key, &n.resource) {
                ("agent", _) => Some(n.agent.clone()),
                ("tool", _) => n.tool.clone(),
                ("risk", _) => Some(n.risk_score.to_string()),
                ("resource", r) => Some(r.to_string()),
                ("agent.max_risk", _) => agent.map(|a| a.max_risk.to_string()),
                ("agent.schedule", _) => agent.and_then(|a| a.schedule.as_ref()).map(|w| w.text.clone()),
                ("host", Resource::Http { host, .. } | Resource::Secret { host, .. }) => Some(host.to_string()),
                ("port", Resource::Http { port, .. } | Resource::Secret { port, .. }) => Some(port.to_string()),
                ("method", Resource::Http { method, .. }) => Some(method.clone()),
                ("path", Resource::Http { path, .. } | Resource::Path(path)) => Some(path.clone()),
                ("bytes", Resource::Http { bytes, .. }) => Some(bytes.to_string()),
                ("program", Resource::Program { path, .. }) => Some(path.clone()),
                ("secret", Resource::Secret { name, .. }) => Some(name.clone()),
                _ => None,
            };
            match value {
                Some(v) => out.push_str(&v),
                // Unknown placeholders stay as written, so a typo in a user's @reason is visible.
                None => out.push_str(&rest[open..open + close + 2]),
            }
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Why nothing permitted the request, in the config's own terms.
    fn diagnose(&self, n: &NormalizedRequest) -> String {
        let model = &self.compiled.model;
        let Some(agent) = model.agents.get(&n.agent) else {
            return format!("agent {} is not configured", n.agent);
        };
        if n.action == Action::ApiCall {
            let Resource::Api { kind, verb, .. } = &n.resource else {
                unreachable!("api.call carries an API resource")
            };
            let any =
                agent.roles.iter().filter_map(|r| model.roles.get(r)).flat_map(|r| r.permissions.iter()).any(|p| {
                    matches!(&p.value, Permission::All)
                        || matches!(&p.value, Permission::Kind { kind: k, .. } if k == kind)
                });
            return if any {
                format!("agent {} may only {verb} {kind} it owns, or has no {verb} permission on {kind}", n.agent)
            } else {
                format!("agent {} has no permission on {kind} (roles: {})", n.agent, list_or_none(&agent.roles))
            };
        }
        let t = n.tool.as_deref().unwrap_or_default();
        let Some(tool) = model.tools.get(t) else { return format!("tool {t} is not configured") };
        if !agent.tools.allows(t) {
            return format!("agent {} may not use tool {t}", n.agent);
        }
        match &n.resource {
            Resource::Http { host, port, default_port, path, method, bytes, .. } => {
                if tool.network.is_empty() {
                    return format!("tool {t} has no network access");
                }
                let any_port = |p: &HostPattern| HostPattern { host: p.host.clone(), port: PortSpec::Any };
                let by_host: Vec<_> = tool
                    .network
                    .iter()
                    .filter(|r| r.hosts.iter().any(|h| any_port(&h.value).matches(host, *port, *default_port)))
                    .collect();
                if by_host.is_empty() {
                    return format!("host {host} is not in tool {t}'s allowed hosts");
                }
                let by_port: Vec<_> = by_host
                    .into_iter()
                    .filter(|r| r.hosts.iter().any(|h| h.value.matches(host, *port, *default_port)))
                    .collect();
                if by_port.is_empty() {
                    return format!("port {port} is not allowed for host {host} by tool {t}");
                }
                let by_method: Vec<_> =
                    by_port.iter().filter(|r| r.methods.is_empty() || r.methods.contains(method)).collect();
                if by_method.is_empty() {
                    let allowed: Vec<&str> =
                        by_port.iter().flat_map(|r| r.methods.iter().map(String::as_str)).collect();
                    return format!(
                        "method {method} is not allowed for {host} by tool {t} (allowed: {})",
                        allowed.join(", ")
                    );
                }
                let by_path: Vec<_> = by_method
                    .iter()
                    .filter(|r| r.paths.is_empty() || r.paths.iter().any(|p| normalize::path_has_prefix(path, p)))
                    .collect();
                if by_path.is_empty() {
                    let allowed: Vec<&str> =
                        by_method.iter().flat_map(|r| r.paths.iter().map(String::as_str)).collect();
                    return format!(
                        "path {path} is outside tool {t}'s allowed paths for {host} (allowed: {})",
                        allowed.join(", ")
                    );
                }
                let limit = by_path.iter().filter_map(|r| r.max_request_bytes).max();
                if let Some(max) = limit
                    && *bytes > max
                {
                    return format!(
                        "a request body of {bytes} bytes exceeds tool {t}'s limit of {max} bytes for {host}"
                    );
                }
                "no policy permits this request (default deny)".to_string()
            }
            Resource::Path(p) => {
                let (verb, list) = match n.action {
                    Action::FsRead => ("read", &tool.fs_read),
                    Action::FsWrite => ("write", &tool.fs_write),
                    _ => ("execute", &tool.fs_exec),
                };
                fs_reason(t, verb, list, p)
            }
            Resource::Program { path, .. } => {
                if tool.exec_allow.is_empty() {
                    format!("tool {t} may not run programs")
                } else {
                    format!("program {path} is not in tool {t}'s exec allow list")
                }
            }
            Resource::Secret { name, scheme, host, port, .. } => {
                let pinned_host =
                    model.secrets.get(name).is_some_and(|s| s.hosts.iter().any(|h| h.value.matches(host, 443, true)));
                if !tool.secrets.iter().any(|s| &s.value == name) {
                    format!("tool {t} may not use secret {name}")
                } else {
                    let pins = model
                        .secrets
                        .get(name)
                        .map(|s| s.hosts.iter().map(|h| h.value.to_string()).collect::<Vec<_>>());
                    match pins {
                        Some(_) if pinned_host && *scheme == Scheme::Http && *port == 80 => {
                            format!("secret {name} is only sent to {host} over https, never in cleartext")
                        }
                        Some(p) if !p.is_empty() => {
                            format!("secret {name} is pinned to {}, not to {host}", p.join(", "))
                        }
                        _ => format!("secret {name} is pinned to no host, so it is never sent"),
                    }
                }
            }
            Resource::Api { .. } => "no policy permits this request (default deny)".to_string(),
        }
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() { "none".to_string() } else { v.join(", ") }
}

fn fs_reason(tool: &str, verb: &str, list: &FsList, path: &str) -> String {
    if list.allow.is_empty() {
        return format!("tool {tool} may not {verb} files");
    }
    if let Some(m) = list.mask.iter().find(|m| m.value.covers(path)) {
        return format!("path {path} is excluded from tool {tool}'s {verb} paths by !{}", m.value.text());
    }
    format!("path {path} is outside tool {tool}'s {verb} paths")
}

fn build_host_entity(
    host: &HostName,
    allowed_private: impl Fn(IpAddr) -> bool,
) -> (EntityUid, Arc<cedar_policy_core::ast::Entity>) {
    use crate::cedar_input::{boolean, entity, string};
    let name = host.to_string();
    let (is_ip, private) = match host {
        HostName::Ipv4(ip) => (true, is_private(IpAddr::V4(*ip)) && !allowed_private(IpAddr::V4(*ip))),
        HostName::Ipv6(ip) => (true, is_private(IpAddr::V6(*ip)) && !allowed_private(IpAddr::V6(*ip))),
        HostName::Domain(_) => (false, false),
    };
    let parents: Vec<EntityUid> = host.parent_domains().iter().map(|d| uid(&TYPES.domain, d)).collect();
    let u = uid(&TYPES.host, &name);
    let e = entity(&u, [("name", string(&name)), ("is_ip", boolean(is_ip)), ("private_ip", boolean(private))], parents);
    (u, Arc::new(e))
}

/// Whether `ip` lies in `net/len` (same family only).
fn prefix_contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Addresses that are never a public destination. Conservative: when in doubt, private. The broker applies
/// the full SSRF classification to resolved addresses; this covers IP literals written in a request.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            // 6to4 carries an IPv4 address in bits 16..48: judge that address.
            if s[0] == 0x2002 {
                let v4 = std::net::Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
                return is_private(IpAddr::V4(v4));
            }
            v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                // IPv4-translated (::ffff:0:a.b.c.d) and Teredo (2001::/32) tunnel to addresses we cannot see.
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0xffff && s[5] == 0)
                || (s[0] == 0x2001 && s[1] == 0)
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x64 && s[1] == 0xff9b)
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)
        }
    }
}
