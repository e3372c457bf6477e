//! OCSF 1.8 events: what one audit record says.
//!
//! Why OCSF: SIEMs (Splunk, Sentinel, Security Lake, Elastic) ingest it without a custom parser, and its classes
//! already have places for what Airlock decides: who asked (`actor`), which policies decided and how
//! (`actor.authorizations[]`), what was reached (`http_request`, `dst_endpoint`), what ran (`process`), and what
//! was found (`finding_info`). We use five classes:
//!
//! | class | uid | records |
//! |---|---|---|
//! | API Activity | 6003 | a broker request allowed or denied, a secret used |
//! | Process Activity | 1007 | a sandbox started, exited or was killed |
//! | Detection Finding | 2004 | a leak blocked, a prompt injection caught |
//! | Entity Management | 3004 | a secret set or removed, a key rotated |
//! | Application Lifecycle | 6002 | the log itself: opened, closed, repaired, pruned, the clock going backwards |
//!
//! `metadata.correlation_uid` ties one tool call's records together (its process, connections, credential
//! uses). `metadata.sequence` and `metadata.logged_time` are filled in from the log on export; they are not part
//! of the stored event, whose integrity fields live in the record around it (see [`crate::record`]).
//!
//! Values a record may mention but must not store go in through [`Event::sensitive`], which keeps only a keyed
//! hash ([`crate::AuditMac`]). No secret value is ever passed to this module.

use serde_json::{Map, Value, json};

use crate::error::AuditError;
use crate::mac::AuditMac;

/// OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.8.0";

/// The OCSF classes Airlock writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    ApiActivity,
    ProcessActivity,
    DetectionFinding,
    EntityManagement,
    ApplicationLifecycle,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::ApiActivity,
        Class::ProcessActivity,
        Class::DetectionFinding,
        Class::EntityManagement,
        Class::ApplicationLifecycle,
    ];

    pub fn uid(self) -> u32 {
        match self {
            Class::ApiActivity => 6003,
            Class::ProcessActivity => 1007,
            Class::DetectionFinding => 2004,
            Class::EntityManagement => 3004,
            Class::ApplicationLifecycle => 6002,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::ApiActivity => "API Activity",
            Class::ProcessActivity => "Process Activity",
            Class::DetectionFinding => "Detection Finding",
            Class::EntityManagement => "Entity Management",
            Class::ApplicationLifecycle => "Application Lifecycle",
        }
    }

    /// The short name `airlock audit query --type` accepts.
    pub fn short_name(self) -> &'static str {
        match self {
            Class::ApiActivity => "api",
            Class::ProcessActivity => "process",
            Class::DetectionFinding => "finding",
            Class::EntityManagement => "entity",
            Class::ApplicationLifecycle => "lifecycle",
        }
    }

    pub fn from_uid(uid: u64) -> Option<Class> {
        Class::ALL.into_iter().find(|c| u64::from(c.uid()) == uid)
    }

    /// Accepts the short name, the OCSF name (any case) or the uid.
    pub fn parse(s: &str) -> Option<Class> {
        let s = s.trim();
        if let Ok(uid) = s.parse::<u64>() {
            return Class::from_uid(uid);
        }
        Class::ALL.into_iter().find(|c| c.short_name().eq_ignore_ascii_case(s) || c.name().eq_ignore_ascii_case(s))
    }

    fn category(self) -> (u32, &'static str) {
        match self {
            Class::ProcessActivity => (1, "System Activity"),
            Class::DetectionFinding => (2, "Findings"),
            Class::EntityManagement => (3, "Identity & Access Management"),
            Class::ApiActivity | Class::ApplicationLifecycle => (6, "Application Activity"),
        }
    }

    /// OCSF activity names for the ids each class defines (those we use).
    fn activity_name(self, id: u8) -> &'static str {
        match (self, id) {
            (_, 0) => "Unknown",
            (_, 99) => "Other",
            (Class::ApiActivity | Class::EntityManagement, 1) => "Create",
            (Class::ApiActivity | Class::EntityManagement, 2) => "Read",
            (Class::ApiActivity | Class::EntityManagement, 3) => "Update",
            (Class::ApiActivity | Class::EntityManagement, 4) => "Delete",
            (Class::ProcessActivity, 1) => "Launch",
            (Class::ProcessActivity, 2) => "Terminate",
            (Class::DetectionFinding, 1) => "Create",
            (Class::DetectionFinding, 2) => "Update",
            (Class::DetectionFinding, 3) => "Close",
            (Class::ApplicationLifecycle, 3) => "Start",
            (Class::ApplicationLifecycle, 4) => "Stop",
            (Class::ApplicationLifecycle, 8) => "Update",
            _ => "Other",
        }
    }
}

/// OCSF activity ids, named.
pub mod activity {
    pub const CREATE: u8 = 1;
    pub const READ: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const DELETE: u8 = 4;
    pub const LAUNCH: u8 = 1;
    pub const TERMINATE: u8 = 2;
    pub const START: u8 = 3;
    pub const STOP: u8 = 4;
    pub const OTHER: u8 = 99;
}

/// OCSF `severity_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Informational = 1,
    Low = 2,
    Medium = 3,
    High = 4,
    Critical = 5,
}

impl Severity {
    fn name(self) -> &'static str {
        match self {
            Severity::Informational => "Informational",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

/// A policy decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// One OCSF event being built. Build with the constructors, refine with the setters, then append it to the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    class: Class,
    body: Map<String, Value>,
}

impl Event {
    /// A bare event of `class`: class, category, activity, type, time, severity (informational) and metadata.
    pub fn new(class: Class, activity_id: u8, time_ms: i64) -> Event {
        let (category_uid, category_name) = class.category();
        let activity_name = class.activity_name(activity_id);
        let body = json!({
            "class_uid": class.uid(),
            "class_name": class.name(),
            "category_uid": category_uid,
            "category_name": category_name,
            "activity_id": activity_id,
            "activity_name": activity_name,
            "type_uid": u64::from(class.uid()) * 100 + u64::from(activity_id),
            "type_name": format!("{}: {}", class.name(), activity_name),
            "time": time_ms,
            "severity_id": Severity::Informational as u8,
            "severity": Severity::Informational.name(),
            "metadata": {
                "version": OCSF_VERSION,
                "product": {"name": "Airlock", "vendor_name": "Airlock", "version": env!("CARGO_PKG_VERSION")},
            },
        });
        let Value::Object(body) = body else { unreachable!("json! object") };
        Event { class, body }
    }

    /// A broker request and the policy decision on it (API Activity).
    pub fn request(time_ms: i64, agent: &str, tool: Option<&str>, decision: Decision, policies: &[&str]) -> Event {
        let mut e = Event::new(Class::ApiActivity, activity::OTHER, time_ms)
            .set("api.operation", json!("http.request"))
            .actor(agent, tool)
            .decision(decision, policies);
        if decision == Decision::Deny {
            e = e.severity(Severity::Medium);
        }
        e
    }

    /// A secret injected into a request (API Activity, `api.operation = "secret.use"`). Names only, never values.
    pub fn secret_use(time_ms: i64, agent: &str, tool: Option<&str>, secret: &str, host: &str) -> Event {
        Event::new(Class::ApiActivity, activity::READ, time_ms)
            .set("api.operation", json!("secret.use"))
            .set("api.service.name", json!(host))
            .set("resources", json!([{"type": "secret", "name": secret}]))
            .actor(agent, tool)
            .status(true)
    }

    /// A sandboxed process started (Process Activity: Launch).
    pub fn process_launch(time_ms: i64, agent: &str, tool: Option<&str>, pid: u32, program: &str) -> Event {
        Event::new(Class::ProcessActivity, activity::LAUNCH, time_ms)
            .set("process.pid", json!(pid))
            .set("process.file.path", json!(program))
            .set("process.name", json!(program.rsplit('/').next().unwrap_or(program)))
            .actor(agent, tool)
    }

    /// A sandboxed process ended or was killed (Process Activity: Terminate).
    pub fn process_exit(time_ms: i64, agent: &str, pid: u32, exit_code: Option<i32>, killed_by: Option<&str>) -> Event {
        let mut e = Event::new(Class::ProcessActivity, activity::TERMINATE, time_ms)
            .set("process.pid", json!(pid))
            .actor(agent, None);
        if let Some(code) = exit_code {
            e = e.set("exit_code", json!(code));
        }
        if let Some(why) = killed_by {
            e = e.message(format!("killed: {why}")).severity(Severity::Medium);
        }
        e
    }

    /// Something found and acted on: a leak blocked, an injection caught (Detection Finding).
    pub fn finding(time_ms: i64, uid: &str, title: &str, kinds: &[&str], severity: Severity) -> Event {
        Event::new(Class::DetectionFinding, activity::CREATE, time_ms)
            .set("finding_info", json!({"uid": uid, "title": title, "types": kinds}))
            .severity(severity)
    }

    /// A change to secrets or keys (Entity Management), e.g. `("key", "data-key", UPDATE)` for a rotation.
    pub fn entity_change(time_ms: i64, activity_id: u8, kind: &str, name: &str) -> Event {
        Event::new(Class::EntityManagement, activity_id, time_ms).set("entity", json!({"type": kind, "name": name}))
    }

    /// An event about the log itself (Application Lifecycle).
    pub fn lifecycle(time_ms: i64, activity_id: u8, message: impl Into<String>) -> Event {
        Event::new(Class::ApplicationLifecycle, activity_id, time_ms)
            .set("app", json!({"name": "airlock-audit", "version": env!("CARGO_PKG_VERSION")}))
            .message(message)
    }

    /// An event received as JSON, e.g. from another Airlock process sharing the log ([`crate::shared`]): an
    /// object naming one of the classes above. Its other fields are the sender's business, as with [`Event::set`].
    pub fn from_value(value: Value) -> Result<Event, AuditError> {
        let Value::Object(body) = value else { return Err(AuditError::InvalidEvent("not a JSON object".into())) };
        let uid = body
            .get("class_uid")
            .and_then(Value::as_u64)
            .ok_or_else(|| AuditError::InvalidEvent("no integer class_uid".into()))?;
        let class = Class::from_uid(uid).ok_or_else(|| AuditError::InvalidEvent(format!("unknown class_uid {uid}")))?;
        Ok(Event { class, body })
    }

    pub fn class(&self) -> Class {
        self.class
    }

    /// Sets a field by dotted path (`"http_request.url.path"`), creating objects on the way. A path through a
    /// non-object is replaced by an object: callers own the event's shape.
    pub fn set(mut self, path: &str, value: Value) -> Event {
        set_path(&mut self.body, path, value);
        self
    }

    /// Stores `value` at `path` only as a keyed hash (see [`AuditMac`]).
    pub fn sensitive(self, path: &str, value: &[u8], mac: &AuditMac) -> Event {
        let tag = mac.tag(value);
        self.set(path, Value::String(tag))
    }

    /// The human-readable reason or summary.
    pub fn message(self, message: impl Into<String>) -> Event {
        self.set("message", Value::String(message.into()))
    }

    pub fn severity(self, s: Severity) -> Event {
        self.set("severity_id", json!(s as u8)).set("severity", json!(s.name()))
    }

    pub fn status(self, success: bool) -> Event {
        let (id, name) = if success { (1, "Success") } else { (2, "Failure") };
        self.set("status_id", json!(id)).set("status", json!(name))
    }

    pub fn correlation(self, uid: &str) -> Event {
        self.set("metadata.correlation_uid", json!(uid))
    }

    /// Who acted: the agent (`actor.user`) and the tool it ran (`actor.app_name`).
    pub fn actor(self, agent: &str, tool: Option<&str>) -> Event {
        let e = self.set("actor.user", json!({"name": agent, "type": "agent"}));
        match tool {
            Some(t) => e.set("actor.app_name", json!(t)),
            None => e,
        }
    }

    /// The decision and the ids of the policies that made it (one `authorizations[]` entry per policy, or one
    /// without a policy for a default deny). Sets `status` to match.
    pub fn decision(self, decision: Decision, policies: &[&str]) -> Event {
        let entries: Vec<Value> = if policies.is_empty() {
            vec![json!({"decision": decision.as_str()})]
        } else {
            policies.iter().map(|p| json!({"decision": decision.as_str(), "policy": {"uid": p, "name": p}})).collect()
        };
        self.set("actor.authorizations", Value::Array(entries)).status(decision == Decision::Allow)
    }

    /// The HTTP request: method and URL parts. The query string is stored only as a keyed hash: it is where
    /// tokens and personal data most often ride.
    #[allow(clippy::too_many_arguments)]
    pub fn http(
        self,
        method: &str,
        scheme: &str,
        host: &str,
        port: u16,
        path: &str,
        query: Option<&str>,
        mac: &AuditMac,
    ) -> Event {
        let mut e = self
            .set("http_request.http_method", json!(method))
            .set("http_request.url", json!({"scheme": scheme, "hostname": host, "port": port, "path": path}))
            .set("dst_endpoint", json!({"hostname": host, "port": port}))
            .set("api.service.name", json!(host));
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            e = e.sensitive("http_request.url.query_string", q.as_bytes(), mac);
        }
        e
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.body.clone())
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.body)
    }
}

fn set_path(map: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            map.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let slot = map.entry(head.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                set_path(inner, rest, value);
            }
        }
    }
}

/// Reads a field by dotted path from an event value.
pub fn get_path<'v>(event: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(event, |v, key| v.get(key))
}

/// The decision an event records, if any (the first authorization's).
pub fn decision_of(event: &Value) -> Option<&str> {
    get_path(event, "actor.authorizations")?.get(0)?.get("decision")?.as_str()
}

/// The agent an event names, if any.
pub fn actor_of(event: &Value) -> Option<&str> {
    get_path(event, "actor.user.name")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_crypto::Key32;

    #[test]
    fn request_event_has_the_ocsf_shape() {
        let mac = AuditMac::new(Key32::from_bytes([1; 32]));
        let e = Event::request(1_700_000_000_000, "agent-a", Some("fetch"), Decision::Deny, &["airlock.default-deny"])
            .http("GET", "https", "api.example.com", 443, "/v1/x", Some("token=abc"), &mac)
            .message("host not allowed")
            .correlation("call-1")
            .into_value();
        assert_eq!(e["class_uid"], 6003);
        assert_eq!(e["type_uid"], 600399);
        assert_eq!(e["category_uid"], 6);
        assert_eq!(e["metadata"]["version"], OCSF_VERSION);
        assert_eq!(e["metadata"]["correlation_uid"], "call-1");
        assert_eq!(e["actor"]["authorizations"][0]["decision"], "deny");
        assert_eq!(e["actor"]["authorizations"][0]["policy"]["uid"], "airlock.default-deny");
        assert_eq!(e["status"], "Failure");
        assert_eq!(e["severity_id"], 3);
        let q = e["http_request"]["url"]["query_string"].as_str().unwrap();
        assert!(q.starts_with("hmac-sha256:") && !q.contains("abc"));
        assert!(mac.matches(b"token=abc", q));
        assert_eq!(decision_of(&e), Some("deny"));
        assert_eq!(actor_of(&e), Some("agent-a"));
    }

    #[test]
    fn events_round_trip_through_json_and_unknown_classes_are_refused() {
        let e = Event::process_launch(1_700_000_000_000, "agent-a", Some("sh"), 42, "/bin/sh").message("started");
        let back = Event::from_value(e.to_value()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.class(), Class::ProcessActivity);
        for bad in [json!([1]), json!({"message": "x"}), json!({"class_uid": 1234}), json!({"class_uid": "6003"})] {
            assert!(matches!(Event::from_value(bad), Err(AuditError::InvalidEvent(_))));
        }
    }

    #[test]
    fn class_names_parse() {
        assert_eq!(Class::parse("api"), Some(Class::ApiActivity));
        assert_eq!(Class::parse("Detection Finding"), Some(Class::DetectionFinding));
        assert_eq!(Class::parse("1007"), Some(Class::ProcessActivity));
        assert_eq!(Class::parse("nope"), None);
    }
}
