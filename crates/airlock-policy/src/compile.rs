//! TOML capabilities to Cedar policies, plus the user's own `.cedar` files, validated against one schema.
//!
//! Why compile instead of interpreting the TOML directly: Cedar is the single evaluator, so a user's `forbid`
//! in a `.cedar` file and a generated permit meet on equal terms (forbid wins, default deny) and every decision
//! can name the policies that made it. The generated text is ordinary Cedar that `policy explain` prints.
//!
//! Why slices: Cedar evaluates every policy in the set it is given. A tool's generated policies all require
//! `context.tool == Tool::"<that tool>"`, so for a request from tool T they are false unless they are T's. The
//! engine therefore evaluates T's policies plus the global ones (built-ins, user files) and skips the rest,
//! which keeps a decision at microseconds with a thousand tools. `tests/slices.rs` checks that a slice and
//! the whole set always agree.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use cedar_policy::{
    ActionConstraint, EntityId, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet, Schema, ValidationMode,
    Validator,
};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::cedar_input;
use crate::error::{ConfigError, Diagnostic, Severity, SourceText};
use crate::model::{At, FsList, FsPattern, Model, Permission, Program, ToolGrant, Window};
use crate::normalize::{HostPattern, HostPatternKind, PortSpec};

/// The Cedar schema shared by generated and user policies.
pub const SCHEMA_TEXT: &str = include_str!("airlock.cedarschema");

pub(crate) static SCHEMA: LazyLock<Schema> =
    LazyLock::new(|| Schema::from_cedarschema_str(SCHEMA_TEXT).expect("the built-in schema parses").0);

/// Entity type names, parsed once.
pub(crate) struct Types {
    pub agent: EntityTypeName,
    pub tool: EntityTypeName,
    pub host: EntityTypeName,
    pub domain: EntityTypeName,
    pub dir: EntityTypeName,
    pub path: EntityTypeName,
    pub path_set: EntityTypeName,
    pub program: EntityTypeName,
    pub secret: EntityTypeName,
    pub api_object: EntityTypeName,
    pub role: EntityTypeName,
    pub action: EntityTypeName,
}

pub(crate) static TYPES: LazyLock<Types> = LazyLock::new(|| {
    let t = |s: &str| EntityTypeName::from_str(s).expect("a built-in type name parses");
    Types {
        agent: t("Agent"),
        tool: t("Tool"),
        host: t("Host"),
        domain: t("Domain"),
        dir: t("Dir"),
        path: t("Path"),
        path_set: t("PathSet"),
        program: t("Program"),
        secret: t("Secret"),
        api_object: t("ApiObject"),
        role: t("Role"),
        action: t("Action"),
    }
});

pub(crate) fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

/// Action entities with their groups as parents (Cedar looks up `action in Action::"tool"` in the entity store).
/// Each action and every group it is in (the schema's action hierarchy, transitively closed).
pub(crate) const ACTION_GROUPS: [(&str, &[&str]); 7] = [
    ("http.request", &["tool"]),
    ("fs.read", &["fs", "tool"]),
    ("fs.write", &["fs", "tool"]),
    ("fs.exec", &["fs", "tool"]),
    ("exec", &["tool"]),
    ("secret.use", &["tool"]),
    ("api.call", &["api"]),
];

pub(crate) static ACTIONS: LazyLock<HashMap<&'static str, Arc<cedar_policy_core::ast::Entity>>> = LazyLock::new(|| {
    ACTION_GROUPS
        .into_iter()
        .map(|(a, parents)| {
            let parents: Vec<EntityUid> = parents.iter().map(|p| uid(&TYPES.action, p)).collect();
            (a, Arc::new(cedar_input::entity(&uid(&TYPES.action, a), [], parents)))
        })
        .collect()
});

/// Where a policy came from, for `explain` and for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: std::path::PathBuf,
    pub line: usize,
    pub column: usize,
}

/// Globs of one scope (a tool, or global), each standing for a `PathSet` entity.
#[derive(Debug, Clone, Default)]
pub(crate) struct GlobIndex {
    pub set: GlobSet,
    pub ids: Vec<EntityUid>,
}

impl GlobIndex {
    pub fn memberships(&self, path: &str) -> impl Iterator<Item = EntityUid> + '_ {
        self.set.matches(path).into_iter().map(|i| self.ids[i].clone())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ToolSlice {
    /// One policy set per tool action, indexed by [`tool_action_index`].
    pub by_action: Vec<PolicySet>,
    pub globs: GlobIndex,
}

/// The filesystem actions.
pub(crate) const FS_ACTIONS: [&str; 3] = ["fs.read", "fs.write", "fs.exec"];

/// The tool actions, in slice order.
pub(crate) const TOOL_ACTIONS: [&str; 6] = ["http.request", "fs.read", "fs.write", "fs.exec", "exec", "secret.use"];

pub(crate) fn tool_action_index(action: &str) -> Option<usize> {
    TOOL_ACTIONS.iter().position(|a| *a == action)
}

/// Whether a policy's action scope admits `action`. The action hierarchy is fixed, so this is exact: a policy
/// left out of an action's slice could never have matched a request for that action.
fn admits(p: &Policy, action: &str) -> bool {
    let me = uid(&TYPES.action, action);
    let mut lineage: Vec<EntityUid> = vec![me.clone()];
    lineage.extend(
        ACTION_GROUPS.iter().filter(|(a, _)| *a == action).flat_map(|(_, gs)| gs.iter().map(|g| uid(&TYPES.action, g))),
    );
    match p.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(u) => u == me,
        ActionConstraint::In(list) => list.iter().any(|u| lineage.contains(u)),
    }
}

/// A compiled configuration: ready to decide.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub model: Model,
    /// Every policy, generated and user-written.
    pub all: PolicySet,
    pub(crate) api: PolicySet,
    pub(crate) tools: HashMap<String, ToolSlice>,
    pub(crate) agents: HashMap<String, Arc<cedar_policy_core::ast::Entity>>,
    pub(crate) global_globs: GlobIndex,
    pub(crate) texts: HashMap<String, String>,
    /// `@reason` templates by policy id, read once here (Cedar parses the key on every annotation lookup).
    pub(crate) reasons: HashMap<String, String>,
    pub(crate) origins: HashMap<String, Origin>,
    pub warnings: Vec<Diagnostic>,
}

impl Compiled {
    /// The Cedar text of a policy, for `explain`.
    pub fn policy_text(&self, id: &str) -> Option<&str> {
        self.texts.get(id).map(String::as_str)
    }

    pub fn policy_origin(&self, id: &str) -> Option<&Origin> {
        self.origins.get(id)
    }

    pub fn policy_count(&self) -> usize {
        self.texts.len()
    }
}

/// A Cedar string literal.
pub(crate) fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Cedar `like` pattern matching exactly `s` followed by anything.
fn like_prefix(s: &str) -> String {
    let escaped = lit(s);
    let inner = &escaped[1..escaped.len() - 1];
    format!("\"{}*\"", inner.replace('*', "\\*"))
}

fn ent(ty: &str, id: &str) -> String {
    format!("{ty}::{}", lit(id))
}

struct Gen<'a> {
    src: &'a SourceText,
    /// (id, Cedar text, reason template, origin)
    out: Vec<(String, String, String, Option<Origin>)>,
}

impl Gen<'_> {
    fn push(&mut self, id: String, reason: &str, span: Option<&std::ops::Range<usize>>, body: String) {
        let origin = span.map(|s| {
            let (line, column) = self.src.position(s.start);
            Origin { file: self.src.path.clone(), line, column }
        });
        let text = format!("@id({})\n@reason({})\n{body};", lit(&id), lit(reason));
        self.out.push((id, text, reason.to_string(), origin));
    }

    /// One policy per action instead of one per action group, with ids `base[action]`. Checking
    /// `action == Action::"fs.read"` costs Cedar far less than `action in Action::"fs"` (an entity-store lookup),
    /// and a request is decided against one action's slice anyway. `body` writes the action as `{ACTION}`.
    fn push_each(
        &mut self,
        base: &str,
        actions: &[&str],
        reason: &str,
        span: Option<&std::ops::Range<usize>>,
        body: &str,
    ) {
        for a in actions {
            let id = format!("{base}[{a}]");
            self.push(
                id,
                reason,
                span,
                body.replace("{ACTION}", &format!("Action::{}", lit(a))).replace("{ACTION_NAME}", a),
            );
        }
    }
}

/// `resource` (or another expression) is one of these hosts, on an allowed port.
/// `a || b || ...` for short lists; a set-literal test for long ones. Cedar builds a set literal anew on every
/// evaluation, so for the usual handful of entries plain comparisons are several times faster.
fn any_of(items: &[String], one: impl Fn(&str) -> String, set: impl Fn(&str) -> String) -> String {
    match items.len() {
        0 => "false".to_string(),
        1..=8 => {
            let parts: Vec<String> = items.iter().map(|i| one(i)).collect();
            if parts.len() == 1 { parts[0].clone() } else { format!("({})", parts.join(" || ")) }
        }
        _ => set(&items.join(", ")),
    }
}

/// What a pattern without a port means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NoPort {
    /// The scheme's default port (allow rules).
    SchemeDefault,
    /// Every port (deny rules).
    Any,
    /// 443 over https only (secret pins: a credential never goes out in cleartext unless a pin names a port).
    HttpsOnly,
}

fn hosts_cond(subject: &str, hosts: &[At<HostPattern>], no_port: NoPort) -> String {
    // (port, exact hosts, parent domains, any host)
    let mut groups: Vec<(PortSpec, Vec<String>, Vec<String>, bool)> = Vec::new();
    for h in hosts {
        let p = &h.value;
        let idx = match groups.iter().position(|g| g.0 == p.port) {
            Some(i) => i,
            None => {
                groups.push((p.port, Vec::new(), Vec::new(), false));
                groups.len() - 1
            }
        };
        match &p.host {
            HostPatternKind::Exact(name) => groups[idx].1.push(ent("Host", &name.to_string())),
            HostPatternKind::Subdomains(suffix) => groups[idx].2.push(ent("Domain", suffix)),
            HostPatternKind::Any => groups[idx].3 = true,
        }
    }
    let port_cond = |p: PortSpec| match p {
        PortSpec::Default => match no_port {
            NoPort::SchemeDefault => "context.default_port".to_string(),
            NoPort::Any => "true".to_string(),
            NoPort::HttpsOnly => "context.scheme == \"https\" && context.default_port".to_string(),
        },
        PortSpec::Any => "true".to_string(),
        PortSpec::Exact(n) => format!("context.port == {n}"),
    };
    let parts: Vec<String> = groups
        .into_iter()
        .map(|(port, exact, domains, any)| {
            let host = if any {
                "true".to_string()
            } else {
                // Cedar sets are homogeneous, so hosts and domains are tested apart.
                let mut alt = Vec::new();
                if !exact.is_empty() {
                    alt.push(any_of(&exact, |h| format!("{subject} == {h}"), |l| format!("[{l}].contains({subject})")));
                }
                if !domains.is_empty() {
                    alt.push(any_of(&domains, |d| format!("{subject} in {d}"), |l| format!("{subject} in [{l}]")));
                }
                alt.join(" || ")
            };
            format!("(({host}) && {})", port_cond(port))
        })
        .collect();
    if parts.is_empty() { "false".to_string() } else { format!("({})", parts.join(" || ")) }
}

/// "`resource` is matched by one of these patterns"; globs get `PathSet` ids registered in `globs`. With `below`
/// (deny lists and `!` masks), a glob also covers everything under a path it matches, as a plain path does: a deny
/// of `**/.git` that let `.git/config` through would deny nothing worth denying.
fn fs_cond(
    patterns: &[At<FsPattern>],
    scope: &str,
    list: &str,
    below: bool,
    globs: &mut Vec<(String, String)>,
) -> String {
    let (mut paths, mut dirs, mut sets) = (Vec::new(), Vec::new(), Vec::new());
    for (i, p) in patterns.iter().enumerate() {
        match &p.value {
            FsPattern::Subtree(path) => {
                paths.push(ent("Path", path));
                dirs.push(ent("Dir", path));
            }
            FsPattern::Glob(g) => {
                let id = format!("{scope}/{list}/{i}");
                sets.push(ent("PathSet", &id));
                if below {
                    globs.push((id.clone(), format!("{g}/**")));
                }
                globs.push((id, g.clone()));
            }
        }
    }
    // Cedar sets are homogeneous, so each entity type gets its own test.
    let mut alt = Vec::new();
    if !paths.is_empty() {
        alt.push(any_of(&paths, |p| format!("resource == {p}"), |l| format!("[{l}].contains(resource)")));
        alt.push(any_of(&dirs, |d| format!("resource in {d}"), |l| format!("resource in [{l}]")));
    }
    if !sets.is_empty() {
        alt.push(any_of(&sets, |p| format!("resource in {p}"), |l| format!("resource in [{l}]")));
    }
    if alt.is_empty() { "false".to_string() } else { format!("({})", alt.join(" || ")) }
}

fn fs_allow_cond(l: &FsList, scope: &str, list: &str, globs: &mut Vec<(String, String)>) -> String {
    let allow = fs_cond(&l.allow, scope, list, false, globs);
    if l.mask.is_empty() {
        allow
    } else {
        let mask = fs_cond(&l.mask, scope, &format!("{list}-mask"), true, globs);
        format!("{allow} && !{mask}")
    }
}

fn program_cond(ps: &[At<Program>], by_name: bool) -> Option<String> {
    let paths: Vec<String> = ps.iter().filter_map(|p| p.value.resolved.as_deref()).map(|r| ent("Program", r)).collect();
    let names: Vec<String> = ps.iter().map(|p| lit(&p.value.name)).collect();
    let mut parts = Vec::new();
    if !paths.is_empty() {
        parts.push(any_of(&paths, |p| format!("resource == {p}"), |l| format!("[{l}].contains(resource)")));
    }
    if by_name && !names.is_empty() {
        parts.push(any_of(&names, |n| format!("resource.name == {n}"), |l| format!("[{l}].contains(resource.name)")));
    }
    (!parts.is_empty()).then(|| format!("({})", parts.join(" || ")))
}

fn build_globs(entries: &[(String, String)]) -> GlobIndex {
    let mut b = GlobSetBuilder::new();
    let mut ids = Vec::new();
    for (id, g) in entries {
        // Validated in the model pass; a failure here would be a bug, and it fails closed by matching nothing.
        if let Ok(glob) = GlobBuilder::new(g).literal_separator(true).build() {
            b.add(glob);
            ids.push(uid(&TYPES.path_set, id));
        }
    }
    GlobIndex { set: b.build().unwrap_or_else(|_| GlobSet::empty()), ids }
}

/// Cedar for "now is outside the principal's window" (agent attributes).
fn outside_agent_window() -> String {
    "principal.scheduled && !(principal.days.contains(context.weekday) && \
     ((principal.start_minute <= principal.end_minute && context.minute >= principal.start_minute && context.minute < principal.end_minute) || \
      (principal.start_minute > principal.end_minute && (context.minute >= principal.start_minute || context.minute < principal.end_minute))))"
        .to_string()
}

/// Cedar for "now is inside this window", with the window's numbers inlined.
fn inside_window(w: &Window) -> String {
    let days: Vec<String> = (0..7).filter(|d| w.days & (1 << d) != 0).map(|d| d.to_string()).collect();
    let day = any_of(&days, |d| format!("context.weekday == {d}"), |l| format!("[{l}].contains(context.weekday)"));
    let (a, b) = (w.start_minute, w.end_minute);
    let minute = if a <= b {
        format!("context.minute >= {a} && context.minute < {b}")
    } else {
        format!("(context.minute >= {a} || context.minute < {b})")
    };
    format!("{day} && {minute}")
}

/// Compiles a validated model and the user's Cedar files.
pub fn compile(
    model: Model,
    source: &SourceText,
    cedar: &[SourceText],
    cache: &ParseCache,
) -> Result<Compiled, ConfigError> {
    let mut g = Gen { src: source, out: Vec::new() };
    let mut global_ids: Vec<String> = Vec::new();
    let mut global_glob_entries = Vec::new();

    // Built-ins that apply to every tool action.
    g.push_each(
        "airlock.agent-tool-grant",
        &TOOL_ACTIONS,
        "agent {agent} may not use tool {tool}",
        None,
        "forbid(principal, action == {ACTION}, resource)\nunless { principal in context.tool }",
    );
    // Only emitted when some agent uses them: a policy that can never match still costs time on every request.
    if model.agents.values().any(|a| a.max_risk < 100) {
        g.push(
            "airlock.agent-risk".into(),
            "risk score {risk} is above agent {agent}'s maximum of {agent.max_risk}",
            None,
            "forbid(principal, action, resource)\nwhen { context.risk_score > principal.max_risk }".into(),
        );
    }
    if model.agents.values().any(|a| a.schedule.is_some()) {
        g.push(
            "airlock.agent-schedule".into(),
            "agent {agent} is only active {agent.schedule}",
            None,
            format!("forbid(principal, action, resource)\nwhen {{ {} }}", outside_agent_window()),
        );
    }
    if !model.network_deny.is_empty() {
        g.push(
            "airlock.network.deny".into(),
            "host {host} is on the network deny list",
            model.network_deny.first().map(|h| &h.span),
            format!(
                "forbid(principal, action == Action::\"http.request\", resource)\nwhen {{ {} }}",
                hosts_cond("resource", &model.network_deny, NoPort::Any)
            ),
        );
    }
    if model.block_private {
        g.push(
            "airlock.network.private-ip".into(),
            "{host} is a private, loopback or link-local address; network.block_private forbids it",
            None,
            "forbid(principal, action == Action::\"http.request\", resource)\nwhen { resource.private_ip }".into(),
        );
    }
    if let Some(max) = model.max_request_bytes {
        g.push(
            "airlock.network.max-bytes".into(),
            &format!("a request body of {{bytes}} bytes exceeds network.max_request_bytes ({max})"),
            None,
            format!(
                "forbid(principal, action == Action::\"http.request\", resource)\nwhen {{ context.bytes > {max} }}"
            ),
        );
    }
    let (user_deny, cred_deny): (Vec<_>, Vec<_>) = model.fs_deny.iter().cloned().partition(|p| p.span != (0..0));
    if !user_deny.is_empty() {
        let cond = fs_cond(&user_deny, "global", "deny", true, &mut global_glob_entries);
        g.push_each(
            "airlock.fs.deny",
            &FS_ACTIONS,
            "path {path} is on the filesystem deny list",
            user_deny.first().map(|p| &p.span),
            &format!("forbid(principal, action == {{ACTION}}, resource)\nwhen {{ {cond} }}"),
        );
    }
    if !cred_deny.is_empty() {
        let cond = fs_cond(&cred_deny, "global", "credentials", true, &mut global_glob_entries);
        g.push_each(
            "airlock.fs.credentials",
            &FS_ACTIONS,
            "path {path} is a credential store; no tool may touch it (fs.protect_credentials)",
            None,
            &format!("forbid(principal, action == {{ACTION}}, resource)\nwhen {{ {cond} }}"),
        );
    }
    if model.settings.confine_fs_to_workspace {
        let ws = &model.workspace;
        let system = ["/usr", "/lib", "/lib64", "/bin", "/sbin", "/opt", "/etc/ssl", "/etc/alternatives"];
        let dirs: Vec<String> = system.iter().map(|d| ent("Dir", d)).collect();
        let paths: Vec<String> = system.iter().map(|d| ent("Path", d)).collect();
        let inside = format!("resource in {} || resource == {}", ent("Dir", ws), ent("Path", ws));
        let system = format!("resource in [{}] || [{}].contains(resource)", dirs.join(", "), paths.join(", "));
        for (action, allowed) in [
            ("fs.read", format!("{inside} || {system}")),
            ("fs.exec", format!("{inside} || {system}")),
            ("fs.write", inside),
        ] {
            g.push(
                format!("airlock.fs.ide-confine[{action}]"),
                "path {path} is outside the workspace; the ide profile confines file access to it",
                None,
                format!("forbid(principal, action == Action::{}, resource)\nunless {{ {allowed} }}", lit(action)),
            );
        }
    }
    if let Some(cond) = program_cond(&model.exec_deny, true) {
        g.push(
            "airlock.exec.deny".into(),
            "program {program} is on the exec deny list",
            model.exec_deny.first().map(|p| &p.span),
            format!("forbid(principal, action == Action::\"exec\", resource)\nwhen {{ {cond} }}"),
        );
    }
    global_ids.extend(g.out.iter().map(|(id, ..)| id.clone()));

    // Roles: API permissions.
    let mut api_ids = Vec::new();
    for role in model.roles.values() {
        for (i, p) in role.permissions.iter().enumerate() {
            let who = format!("principal in {}", ent("Role", &role.id));
            let (body, text) = match &p.value {
                Permission::All => {
                    (format!("permit({who}, action == Action::\"api.call\", resource)"), "*".to_string())
                }
                Permission::Kind { kind, own, verb } => {
                    let mut cond = vec![format!("resource.kind == {}", lit(kind))];
                    if let Some(v) = verb {
                        cond.push(format!("context.verb == {}", lit(v)));
                    }
                    if *own {
                        cond.push("resource has owner && resource.owner == principal".into());
                    }
                    let text = format!("{kind}:{}{}", if *own { "own:" } else { "" }, verb.as_deref().unwrap_or("*"));
                    (
                        format!(
                            "permit({who}, action == Action::\"api.call\", resource)\nwhen {{ {} }}",
                            cond.join(" && ")
                        ),
                        text,
                    )
                }
            };
            let id = format!("role.{}.permission.{i}", role.id);
            g.push(id.clone(), &format!("role {} grants {text}", role.id), Some(&p.span), body);
            api_ids.push(id);
        }
    }

    // Tools.
    let mut tool_ids: HashMap<String, Vec<String>> = HashMap::new();
    let mut tool_globs: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for tool in model.tools.values() {
        let t = &tool.id;
        let start = g.out.len();
        let is_tool = format!("context.tool == {}", ent("Tool", t));
        let globs = tool_globs.entry(t.clone()).or_default();
        if tool.max_risk < 100 {
            g.push(
                format!("tool.{t}.risk"),
                &format!("risk score {{risk}} is above tool {t}'s maximum of {}", tool.max_risk),
                Some(&tool.span),
                format!(
                    "forbid(principal, action in Action::\"tool\", resource)\nwhen {{ {is_tool} && context.risk_score > {} }}",
                    tool.max_risk
                ),
            );
        }
        if let Some(w) = &tool.schedule {
            g.push(
                format!("tool.{t}.schedule"),
                &format!("tool {t} is only available {}", w.text),
                Some(&tool.span),
                format!(
                    "forbid(principal, action in Action::\"tool\", resource)\nwhen {{ {is_tool} && !({}) }}",
                    inside_window(w)
                ),
            );
        }
        for (i, rule) in tool.network.iter().enumerate() {
            let mut cond = vec![is_tool.clone(), hosts_cond("resource", &rule.hosts, NoPort::SchemeDefault)];
            if !rule.methods.is_empty() {
                let m: Vec<String> = rule.methods.iter().map(|m| lit(m)).collect();
                cond.push(any_of(
                    &m,
                    |m| format!("context.method == {m}"),
                    |l| format!("[{l}].contains(context.method)"),
                ));
            }
            if !rule.paths.is_empty() && !rule.paths.iter().any(|p| p == "/") {
                let p: Vec<String> = rule
                    .paths
                    .iter()
                    .map(|p| {
                        let base = p.trim_end_matches('/');
                        format!(
                            "context.path == {} || context.path like {}",
                            lit(base),
                            like_prefix(&format!("{base}/"))
                        )
                    })
                    .collect();
                cond.push(format!("({})", p.join(" || ")));
            }
            if let Some(max) = rule.max_request_bytes {
                cond.push(format!("context.bytes <= {max}"));
            }
            let hosts: Vec<String> = rule.hosts.iter().map(|h| h.value.to_string()).collect();
            let methods = if rule.methods.is_empty() { "any method".to_string() } else { rule.methods.join(", ") };
            g.push(
                format!("tool.{t}.network.{i}"),
                &format!("tool {t} may send {methods} to {}", hosts.join(", ")),
                rule.hosts.first().map(|h| &h.span),
                format!(
                    "permit(principal, action == Action::\"http.request\", resource)\nwhen {{ {} }}",
                    cond.join(" &&\n  ")
                ),
            );
        }
        for (list, l, action) in [
            ("read", &tool.fs_read, "fs.read"),
            ("write", &tool.fs_write, "fs.write"),
            ("exec", &tool.fs_exec, "fs.exec"),
        ] {
            if l.allow.is_empty() {
                continue;
            }
            let cond = fs_allow_cond(l, t, list, globs);
            g.push(
                format!("tool.{t}.fs.{list}"),
                &format!("tool {t} may {list} {{path}}"),
                l.allow.first().map(|p| &p.span),
                format!(
                    "permit(principal, action == Action::{}, resource)\nwhen {{ {is_tool} && {cond} }}",
                    lit(action)
                ),
            );
        }
        if !tool.fs_deny.is_empty() {
            let cond = fs_cond(&tool.fs_deny, t, "deny", true, globs);
            g.push(
                format!("tool.{t}.fs.deny"),
                &format!("path {{path}} is on tool {t}'s deny list"),
                tool.fs_deny.first().map(|p| &p.span),
                format!("forbid(principal, action in Action::\"fs\", resource)\nwhen {{ {is_tool} && {cond} }}"),
            );
        }
        if let Some(cond) = program_cond(&tool.exec_allow, false) {
            g.push(
                format!("tool.{t}.exec.allow"),
                &format!("tool {t} may run {{program}}"),
                tool.exec_allow.first().map(|p| &p.span),
                format!("permit(principal, action == Action::\"exec\", resource)\nwhen {{ {is_tool} && {cond} }}"),
            );
        }
        if let Some(cond) = program_cond(&tool.exec_deny, true) {
            g.push(
                format!("tool.{t}.exec.deny"),
                &format!("program {{program}} is on tool {t}'s exec deny list"),
                tool.exec_deny.first().map(|p| &p.span),
                format!("forbid(principal, action == Action::\"exec\", resource)\nwhen {{ {is_tool} && {cond} }}"),
            );
        }
        for s in &tool.secrets {
            let meta = &model.secrets[&s.value];
            if meta.hosts.is_empty() {
                continue;
            }
            let hosts: Vec<String> = meta.hosts.iter().map(|h| h.value.to_string()).collect();
            g.push(
                format!("tool.{t}.secret.{}", s.value),
                &format!("tool {t} may use secret {} toward {}", s.value, hosts.join(", ")),
                Some(&s.span),
                format!(
                    "permit(principal, action == Action::\"secret.use\", resource == {})\nwhen {{ {is_tool} && {} }}",
                    ent("Secret", &s.value),
                    hosts_cond("context.target", &meta.hosts, NoPort::HttpsOnly)
                ),
            );
        }
        tool_ids.insert(t.clone(), g.out[start..].iter().map(|(id, ..)| id.clone()).collect());
    }

    // Parse what the previous compile did not already parse and validate. A failure here is a bug in this file,
    // reported against the config.
    let mut policies: HashMap<String, Policy> = HashMap::new();
    let mut texts = HashMap::new();
    let mut reasons: HashMap<String, String> = HashMap::new();
    let mut origins = HashMap::new();
    let mut errors = Vec::new();
    let mut fresh: Vec<String> = Vec::new();
    {
        let cached = cache.map.lock().unwrap_or_else(|p| p.into_inner());
        for (id, text, reason, origin) in g.out {
            match cached.get(&text) {
                Some(p) => {
                    policies.insert(id.clone(), p.clone());
                }
                None => fresh.push(id.clone()),
            }
            texts.insert(id.clone(), text);
            reasons.insert(id.clone(), reason);
            if let Some(o) = origin {
                origins.insert(id, o);
            }
        }
    }
    match parse_generated(&fresh, &texts) {
        Ok(parsed) => policies.extend(parsed),
        Err(m) => errors.push(source.error("internal", None, m)),
    }

    // User files.
    let mut user_ids = Vec::new();
    for file in cedar {
        match parse_user_file(file) {
            Ok(list) => {
                for (id, p, origin) in list {
                    if policies.contains_key(&id) {
                        errors.push(file.error("duplicate-id", None, format!("policy id {id} is used twice")));
                        continue;
                    }
                    texts.insert(id.clone(), p.to_string());
                    if let Some(r) = p.annotation("reason") {
                        reasons.insert(id.clone(), r.to_string());
                    }
                    origins.insert(id.clone(), origin);
                    policies.insert(id.clone(), p);
                    user_ids.push(id);
                }
            }
            Err(mut d) => errors.append(&mut d),
        }
    }
    if !errors.is_empty() {
        return Err(ConfigError { diagnostics: errors });
    }

    let all = PolicySet::from_policies(policies.values().cloned()).expect("policy ids are unique");
    // Validation is per policy, so what was validated last time need not be again.
    let unvalidated = PolicySet::from_policies(fresh.iter().chain(user_ids.iter()).map(|id| policies[id].clone()))
        .expect("policy ids are unique");
    validate(&unvalidated, source, cedar, &origins)?;
    let generated: HashMap<String, Policy> = policies
        .iter()
        .filter(|(id, _)| !user_ids.contains(id))
        .map(|(id, p)| (texts[id].clone(), p.clone()))
        .collect();
    *cache.map.lock().unwrap_or_else(|p| p.into_inner()) = generated;

    let global_list: Vec<String> = global_ids.iter().chain(user_ids.iter()).cloned().collect();
    let for_action = |action: &str, extra: &[String]| -> PolicySet {
        let ids = global_list.iter().chain(extra.iter()).filter(|id| admits(&policies[*id], action));
        PolicySet::from_policies(ids.map(|id| policies[id].clone())).expect("policy ids are unique")
    };
    let api = for_action("api.call", &api_ids);
    let global_globs = build_globs(&global_glob_entries);

    let mut tools = HashMap::new();
    for tool in model.tools.values() {
        let ids = &tool_ids[&tool.id];
        let by_action = TOOL_ACTIONS.iter().map(|a| for_action(a, ids)).collect();
        tools.insert(tool.id.clone(), ToolSlice { by_action, globs: build_globs(&tool_globs[&tool.id]) });
    }
    let mut agents = HashMap::new();
    for a in model.agents.values() {
        let mut parents: Vec<EntityUid> = a.roles.iter().map(|r| uid(&TYPES.role, r)).collect();
        parents.extend(a.ancestors.iter().map(|p| uid(&TYPES.agent, p)));
        // An agent is `in` every tool it may run: the grant check is one ancestor lookup.
        parents.extend(model.tools.keys().filter(|t| a.tools.allows(t)).map(|t| uid(&TYPES.tool, t)));
        let (all_tools, tool_list) = match &a.tools {
            ToolGrant::All => (true, Vec::new()),
            ToolGrant::Some(s) => (false, s.iter().map(|t| cedar_input::entity_ref(&uid(&TYPES.tool, t))).collect()),
        };
        let w = a.schedule.as_ref();
        let days: Vec<_> =
            w.map(|w| (0..7).filter(|d| w.days & (1 << d) != 0).map(cedar_input::long).collect()).unwrap_or_default();
        let attrs = [
            ("depth", cedar_input::long(a.ancestors.len() as i64)),
            ("max_risk", cedar_input::long(a.max_risk.into())),
            ("all_tools", cedar_input::boolean(all_tools)),
            ("tools", cedar_input::set(tool_list)),
            ("scheduled", cedar_input::boolean(w.is_some())),
            ("days", cedar_input::set(days)),
            ("start_minute", cedar_input::long(w.map_or(0, |w| w.start_minute.into()))),
            ("end_minute", cedar_input::long(w.map_or(24 * 60, |w| w.end_minute.into()))),
        ];
        agents.insert(a.id.clone(), Arc::new(cedar_input::entity(&uid(&TYPES.agent, &a.id), attrs, parents)));
    }

    Ok(Compiled { model, all, api, tools, agents, global_globs, texts, reasons, origins, warnings: Vec::new() })
}

/// Generated policies, parsed and validated, keyed by their text. A reload that changes one tool reparses only
/// that tool's policies (Cedar's parser is the slowest part of a load: about 50 µs a policy).
#[derive(Debug, Default)]
pub struct ParseCache {
    map: std::sync::Mutex<HashMap<String, Policy>>,
}

/// Parses generated policies in one pass (much faster than one call each); on failure, finds the bad one.
fn parse_generated(ids: &[String], texts: &HashMap<String, String>) -> Result<HashMap<String, Policy>, String> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let joined: String = ids.iter().map(|id| texts[id].as_str()).collect::<Vec<_>>().join("\n");
    let Ok(set) = PolicySet::from_str(&joined) else {
        for id in ids {
            if let Err(e) = Policy::parse(Some(PolicyId::new(id)), &texts[id]) {
                return Err(format!("generated policy {id} does not parse: {e}"));
            }
        }
        return Err("generated policies do not parse together".to_string());
    };
    // The parser numbers policies policy0, policy1, ... in order; give each its generated id back.
    let mut out = HashMap::with_capacity(ids.len());
    for p in set.policies() {
        let n: usize = p.id().to_string().trim_start_matches("policy").parse().map_err(|_| "unexpected policy id")?;
        let id = ids.get(n).ok_or("more policies parsed than generated")?;
        out.insert(id.clone(), p.new_id(PolicyId::new(id)));
    }
    if out.len() != ids.len() {
        return Err(format!("{} policies generated but {} parsed", ids.len(), out.len()));
    }
    Ok(out)
}

/// Parses one `.cedar` file into policies with stable ids: `@id("x")` if given, otherwise the file's stem and
/// the policy's index.
fn parse_user_file(file: &SourceText) -> Result<Vec<(String, Policy, Origin)>, Vec<Diagnostic>> {
    let set = PolicySet::from_str(&file.text).map_err(|e| {
        let mut out = Vec::new();
        for err in e.iter() {
            let offset = miette::Diagnostic::labels(err).and_then(|mut l| l.next()).map(|l| l.offset());
            out.push(file.error("cedar-syntax", offset.map(|o| o..o), err.to_string()));
        }
        if out.is_empty() {
            out.push(file.error("cedar-syntax", None, e.to_string()));
        }
        out
    })?;
    if set.templates().next().is_some() {
        return Err(vec![file.error(
            "cedar-template",
            None,
            "policy templates are not supported; write plain policies",
        )]);
    }
    let stem = file.path.file_stem().and_then(|s| s.to_str()).unwrap_or("policy").to_string();
    let mut list: Vec<&Policy> = set.policies().collect();
    // The parser numbers policies policy0, policy1, ... in file order; sort by that number to keep file order.
    list.sort_by_key(|p| p.id().to_string().trim_start_matches("policy").parse::<usize>().unwrap_or(usize::MAX));
    let starts = policy_starts(&file.text);
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, p) in list.into_iter().enumerate() {
        let offset = starts.get(i).copied().unwrap_or(0);
        let (line, column) = file.position(offset);
        let origin = Origin { file: file.path.clone(), line, column };
        let id = match p.annotation("id") {
            Some(a) if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c)) => {
                if a.starts_with("airlock.") || a.starts_with("tool.") || a.starts_with("role.") {
                    bad.push(file.error(
                        "reserved-id",
                        Some(offset..offset),
                        format!("policy id {a:?} uses a reserved prefix (airlock., tool., role.)"),
                    ));
                    continue;
                }
                a.to_string()
            }
            Some(a) => {
                bad.push(file.error(
                    "invalid-id",
                    Some(offset..offset),
                    format!("invalid @id {a:?}: use A-Z a-z 0-9 . _ - :"),
                ));
                continue;
            }
            None => format!("{stem}.{i}"),
        };
        out.push((id.clone(), p.new_id(PolicyId::new(&id)), origin));
    }
    if bad.is_empty() { Ok(out) } else { Err(bad) }
}

/// Byte offsets where each policy of a Cedar file starts: after every top-level `;`, skipping whitespace,
/// comments and nothing else. (The public Cedar API does not expose a policy's source location.)
fn policy_starts(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    let mut at_start = true;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            c if c.is_ascii_whitespace() => {}
            b'"' => {
                if at_start {
                    starts.push(i);
                    at_start = false;
                }
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b';' => at_start = true,
            _ => {
                if at_start {
                    starts.push(i);
                    at_start = false;
                }
            }
        }
        i += 1;
    }
    starts
}

/// Strict validation against the schema. Errors in user policies point into their files.
fn validate(
    all: &PolicySet,
    source: &SourceText,
    cedar: &[SourceText],
    origins: &HashMap<String, Origin>,
) -> Result<(), ConfigError> {
    let v = Validator::new(SCHEMA.clone());
    let result = v.validate(all, ValidationMode::Strict);
    if result.validation_passed() {
        return Ok(());
    }
    let mut out = Vec::new();
    for e in result.validation_errors() {
        let id = e.policy_id().to_string();
        let (file, line, column) = match origins.get(&id) {
            Some(o) if cedar.iter().any(|c| c.path == o.file) => {
                let f = cedar.iter().find(|c| c.path == o.file).expect("checked");
                let at = miette::Diagnostic::labels(e).and_then(|mut l| l.next()).map(|l| f.position(l.offset()));
                let (l, c) = at.unwrap_or((o.line, o.column));
                (o.file.clone(), l, c)
            }
            _ => (source.path.clone(), 0, 0),
        };
        out.push(Diagnostic {
            severity: Severity::Error,
            code: "cedar-type",
            file,
            line,
            column,
            message: format!("policy {id}: {e}"),
        });
    }
    Err(ConfigError { diagnostics: out })
}
