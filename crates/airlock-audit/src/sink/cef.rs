//! CEF (ArcSight Common Event Format) rendering of audit records, for SIEMs that ingest CEF over syslog.
//!
//! Why a hand-written renderer: CEF is one line of text with a fixed header and `key=value` pairs, and the only
//! hard part is escaping. That part is security-relevant: record fields carry text an agent influenced (a
//! decision reason quoting a URL, a command line), and a stray `|`, `=` or newline could forge a header field, an
//! extension key or a whole second event in the SIEM. So every value goes through one of two escapers, keys are
//! fixed strings, and the output never holds a raw line break.
//!
//! # Line
//!
//! `CEF:0|Airlock|Airlock|<version>|<type_uid>|<type_name>|<severity>|<extension>`
//!
//! - version: `metadata.product.version`, else this crate's version.
//! - Device Event Class ID: `type_uid` (else `class_uid`, else `0`); Name: `type_name` (else `class_name`, else
//!   `Unknown`).
//! - Severity, from OCSF `severity_id` (CEF: 0-3 low, 4-6 medium, 7-8 high, 9-10 very high):
//!
//! | OCSF | 1 Informational | 2 Low | 3 Medium | 4 High | 5 Critical | 6 Fatal | 0 Unknown, 99 Other, missing |
//! |------|-----------------|-------|----------|--------|------------|---------|------------------------------|
//! | CEF  | 1               | 3     | 5        | 7      | 9          | 10      | 3                            |
//!
//!   Unknown is treated as Low: above the informational noise a SIEM filters out, below anything that pages.
//!
//! # Extension
//!
//! Standard keys where the meaning matches; labelled custom slots (each slot keeps one meaning for every class)
//! for the rest. Absent or empty fields are left out. `unmapped` is not rendered: the OCSF JSON format carries
//! every field.
//!
//! | key | OCSF field | note |
//! |-----|------------|------|
//! | `rt` | `time` | ms since the epoch: when the event happened (syslog's timestamp is when it was logged) |
//! | `cat` | `class_name` | |
//! | `act` | `actor.authorizations[].decision` | `deny` if any decision is deny, else `allow` if any is allow |
//! | `outcome` | `status` | `Success` / `Failure` |
//! | `suser`, `suid` | `actor.user.name`, `.uid` | |
//! | `sproc` | `actor.app_name` | the agent application that acted |
//! | `src` / `c6a2`, `spt` | `src_endpoint.ip`, `.port` | IPv6 goes to `c6a2` ("Source IPv6 Address"): `src` is IPv4 only |
//! | `app` | `http_request.url.scheme` | application protocol |
//! | `requestMethod` | `http_request.http_method` | |
//! | `request` | `http_request.url` | `url_string`, else rebuilt from scheme, hostname, port, path, query |
//! | `dhost` | `dst_endpoint.hostname` | else `http_request.url.hostname` |
//! | `dst` / `c6a3`, `dpt` | `dst_endpoint.ip`, `.port` | IPv6 to `c6a3`; port else `http_request.url.port` |
//! | `destinationServiceName` | `api.service.name` | |
//! | `dproc`, `dpid` | `process.name`, `.pid` | the process Airlock launched or stopped |
//! | `filePath`, `fname` | `process.file.path`, `.name` | |
//! | `reason` | `finding_info.title` | |
//! | `msg` | `message` | the decision reason |
//! | `externalId` | `metadata.uid` | |
//! | `deviceExternalId` | `metadata.log_name` | the log's origin (`airlock/audit/<vault id>`), as its checkpoints name it |
//! | `cs1` `policyUids` | `actor.authorizations[].policy.uid` | comma-separated, in record order |
//! | `cs2` `correlationUid` | `metadata.correlation_uid` | |
//! | `cs3` `policyNames` | `actor.authorizations[].policy.name` | comma-separated |
//! | `cs4` `apiOperation` | `api.operation` | |
//! | `cs5` `commandLine` | `process.cmd_line` | |
//! | `cs6` `findingDesc` | `finding_info.desc` | |
//! | `flexString1` `findingUid` | `finding_info.uid` | |
//! | `flexString2` `findingTypes` | `finding_info.types` | comma-separated |
//! | `cn1` `sequence` | `metadata.sequence` | the audit log's sequence number |
//! | `cn2` `exitCode` | `exit_code` | |
//!
//! A policy id containing a comma makes `cs1` ambiguous; the OCSF format keeps the list exact.
//!
//! # Escaping (CEF spec, "Character encoding")
//!
//! - Header fields: `\` → `\\`, `|` → `\|`. The spec allows no line breaks in the header, so CR and LF become a
//!   space.
//! - Extension values: `\` → `\\`, `=` → `\=`, LF → `\n`, CR → `\r` (`|` needs no escape there).
//! - Everywhere: other control characters (C0, DEL, C1) and U+2028/U+2029 become a space. The spec defines no
//!   escape for them; some receivers treat them as line ends or pass them to a terminal.
//!
//! The spec's per-key length limits are ArcSight storage limits; values are not cut here (the syslog sink cuts a
//! whole message only where the transport forces it).

use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::Value;

/// The CEF severity (0-10) for an OCSF `severity_id`; see the module docs for the table.
pub fn cef_severity(severity_id: Option<i64>) -> u8 {
    match severity_id {
        Some(1) => 1,
        Some(2) => 3,
        Some(3) => 5,
        Some(4) => 7,
        Some(5) => 9,
        Some(6) => 10,
        _ => 3,
    }
}

/// Renders one OCSF event as a single CEF:0 line (no trailing newline).
pub fn to_cef(event: &Value) -> String {
    let version = str_at(event, &["metadata", "product", "version"]).unwrap_or(env!("CARGO_PKG_VERSION"));
    let class_id = text_at(event, &["type_uid"]).or_else(|| text_at(event, &["class_uid"])).unwrap_or("0".into());
    let name = str_at(event, &["type_name"]).or_else(|| str_at(event, &["class_name"])).unwrap_or("Unknown");
    let severity = cef_severity(at(event, &["severity_id"]).and_then(Value::as_i64));

    let mut ext = Extension::default();
    ext.int("rt", at(event, &["time"]));
    ext.text("cat", at(event, &["class_name"]));

    let auths: &[Value] = at(event, &["actor", "authorizations"]).and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let decided = |d: &str| auths.iter().any(|a| str_at(a, &["decision"]).is_some_and(|x| x.eq_ignore_ascii_case(d)));
    if decided("deny") {
        ext.put("act", "deny");
    } else if decided("allow") {
        ext.put("act", "allow");
    }
    ext.text("outcome", at(event, &["status"]));
    ext.text("suser", at(event, &["actor", "user", "name"]));
    ext.text("suid", at(event, &["actor", "user", "uid"]));
    ext.text("sproc", at(event, &["actor", "app_name"]));

    ext.ip("src", "c6a2", "Source IPv6 Address", at(event, &["src_endpoint", "ip"]));
    ext.port("spt", at(event, &["src_endpoint", "port"]));

    let url = at(event, &["http_request", "url"]);
    ext.text("app", url.and_then(|u| at(u, &["scheme"])));
    ext.text("requestMethod", at(event, &["http_request", "http_method"]));
    if let Some(request) = url.and_then(url_text) {
        ext.put("request", &request);
    }
    let dhost = at(event, &["dst_endpoint", "hostname"]).or_else(|| url.and_then(|u| at(u, &["hostname"])));
    ext.text("dhost", dhost);
    ext.ip("dst", "c6a3", "Destination IPv6 Address", at(event, &["dst_endpoint", "ip"]));
    ext.port("dpt", at(event, &["dst_endpoint", "port"]).or_else(|| url.and_then(|u| at(u, &["port"]))));
    ext.text("destinationServiceName", at(event, &["api", "service", "name"]));

    ext.text("dproc", at(event, &["process", "name"]));
    ext.int("dpid", at(event, &["process", "pid"]));
    ext.text("filePath", at(event, &["process", "file", "path"]));
    ext.text("fname", at(event, &["process", "file", "name"]));

    ext.text("reason", at(event, &["finding_info", "title"]));
    ext.text("msg", at(event, &["message"]));
    ext.text("externalId", at(event, &["metadata", "uid"]));
    ext.text("deviceExternalId", at(event, &["metadata", "log_name"]));

    let policy_field = |field: &str| join(auths.iter().filter_map(|a| text_at(a, &["policy", field])));
    ext.labelled("cs1", "policyUids", policy_field("uid"));
    ext.labelled("cs2", "correlationUid", text_at(event, &["metadata", "correlation_uid"]));
    ext.labelled("cs3", "policyNames", policy_field("name"));
    ext.labelled("cs4", "apiOperation", text_at(event, &["api", "operation"]));
    ext.labelled("cs5", "commandLine", text_at(event, &["process", "cmd_line"]));
    ext.labelled("cs6", "findingDesc", text_at(event, &["finding_info", "desc"]));
    ext.labelled("flexString1", "findingUid", text_at(event, &["finding_info", "uid"]));
    let types =
        at(event, &["finding_info", "types"]).and_then(Value::as_array).map(|t| join(t.iter().filter_map(text)));
    ext.labelled("flexString2", "findingTypes", types.flatten());
    ext.labelled("cn1", "sequence", at(event, &["metadata", "sequence"]).and_then(integer));
    ext.labelled("cn2", "exitCode", at(event, &["exit_code"]).and_then(integer));

    header(version, &class_id, name, severity, &ext.out)
}

/// A checkpoint as a CEF line: class id `checkpoint`, the tree size in `cn1` (`treeSize`), and the C2SP note in
/// `msg`. Extension escaping is lossless (`\n` for the note's line breaks), so the note's signature still checks
/// after unescaping.
pub(crate) fn checkpoint_to_cef(size: u64, note: &str) -> String {
    let mut ext = Extension::default();
    ext.labelled("cn1", "treeSize", Some(size.to_string()));
    ext.put("msg", note);
    header(env!("CARGO_PKG_VERSION"), "checkpoint", "Audit log checkpoint", cef_severity(Some(1)), &ext.out)
}

fn header(version: &str, class_id: &str, name: &str, severity: u8, extension: &str) -> String {
    let mut out = String::with_capacity(64 + extension.len());
    out.push_str("CEF:0|Airlock|Airlock|");
    for field in [version, class_id, name] {
        escape_header(field, &mut out);
        out.push('|');
    }
    let _ = write!(out, "{severity}|");
    out.push_str(extension);
    out
}

/// Extension pairs in a fixed order. Keys are literals chosen here (or a literal plus `Label`), never data.
#[derive(Default)]
struct Extension {
    out: String,
}

impl Extension {
    fn put(&mut self, key: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        if !self.out.is_empty() {
            self.out.push(' ');
        }
        self.out.push_str(key);
        self.out.push('=');
        escape_extension(value, &mut self.out);
    }

    fn text(&mut self, key: &'static str, value: Option<&Value>) {
        if let Some(v) = value.and_then(text) {
            self.put(key, &v);
        }
    }

    fn int(&mut self, key: &'static str, value: Option<&Value>) {
        if let Some(v) = value.and_then(integer) {
            self.put(key, &v);
        }
    }

    fn port(&mut self, key: &'static str, value: Option<&Value>) {
        if let Some(p) = value.and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()) {
            self.put(key, &p.to_string());
        }
    }

    /// `v4_key` takes only IPv4 (ArcSight rejects anything else there); IPv6 goes to a labelled `c6a*` slot.
    /// A value that is not an IP address is left out rather than put where a SIEM expects one.
    fn ip(&mut self, v4_key: &'static str, v6_key: &'static str, v6_label: &'static str, value: Option<&Value>) {
        let Some(ip) = value.and_then(Value::as_str).and_then(|s| s.parse::<IpAddr>().ok()) else { return };
        match ip {
            IpAddr::V4(v4) => self.put(v4_key, &v4.to_string()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.put(v4_key, &v4.to_string()),
                None => self.labelled(v6_key, v6_label, Some(v6.to_string())),
            },
        }
    }

    /// A custom slot: `<key>Label=<label> <key>=<value>`, both only when there is a value.
    fn labelled(&mut self, key: &'static str, label: &'static str, value: Option<String>) {
        let Some(value) = value.filter(|v| !v.is_empty()) else { return };
        self.put(&format!("{key}Label"), label);
        self.put(key, &value);
    }
}

/// Characters the spec gives no escape for, which some receivers treat as line ends or control sequences.
fn is_unsafe_control(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

fn escape_header(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            c if is_unsafe_control(c) => out.push(' '),
            c => out.push(c),
        }
    }
}

fn escape_extension(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_unsafe_control(c) => out.push(' '),
            c => out.push(c),
        }
    }
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn text_at(v: &Value, path: &[&str]) -> Option<String> {
    at(v, path).and_then(text)
}

/// A scalar as text; a nested array or object as compact JSON (so nothing is silently lost); null as nothing.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(_) | Value::Object(_) => Some(v.to_string()),
    }
}

fn integer(v: &Value) -> Option<String> {
    v.as_i64().map(|n| n.to_string()).or_else(|| v.as_u64().map(|n| n.to_string()))
}

fn join(parts: impl Iterator<Item = String>) -> Option<String> {
    let joined = parts.collect::<Vec<_>>().join(",");
    (!joined.is_empty()).then_some(joined)
}

/// `url_string` when the record has it, else the URL rebuilt from its parts (needs at least a hostname).
fn url_text(url: &Value) -> Option<String> {
    if let Some(s) = str_at(url, &["url_string"]) {
        return Some(s.to_owned());
    }
    let host = str_at(url, &["hostname"])?;
    let mut out = String::new();
    if let Some(scheme) = str_at(url, &["scheme"]) {
        let _ = write!(out, "{scheme}://");
    }
    if host.contains(':') {
        let _ = write!(out, "[{host}]");
    } else {
        out.push_str(host);
    }
    if let Some(port) = at(url, &["port"]).and_then(Value::as_u64) {
        let _ = write!(out, ":{port}");
    }
    if let Some(path) = str_at(url, &["path"]) {
        if !path.starts_with('/') {
            out.push('/');
        }
        out.push_str(path);
    }
    if let Some(query) = str_at(url, &["query_string"]) {
        let _ = write!(out, "?{}", query.strip_prefix('?').unwrap_or(query));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A strict reader of what `to_cef` writes: the 7 header fields and the extension as (key, unescaped value)
    /// pairs. It finds keys the way receivers do (an unescaped `=`, the key being the word before it), so an
    /// escaping bug shows up as an extra or missing key.
    fn parse(line: &str) -> (Vec<String>, Vec<(String, String)>) {
        assert!(!line.contains('\n') && !line.contains('\r'), "raw line break in {line:?}");
        let mut header = Vec::new();
        let mut field = String::new();
        let mut chars = line.chars();
        while header.len() < 7 {
            match chars.next().expect("header ends early") {
                '\\' => field.push(chars.next().expect("dangling escape")),
                '|' => header.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        let ext: Vec<char> = chars.collect();
        // Positions of unescaped '='.
        let mut eqs = Vec::new();
        let mut i = 0;
        while i < ext.len() {
            match ext[i] {
                '\\' => i += 1,
                '=' => eqs.push(i),
                _ => {}
            }
            i += 1;
        }
        let key_start = |eq: usize| ext[..eq].iter().rposition(|&c| c == ' ').map_or(0, |p| p + 1);
        let mut pairs = Vec::new();
        for (n, &eq) in eqs.iter().enumerate() {
            let key: String = ext[key_start(eq)..eq].iter().collect();
            let end = eqs.get(n + 1).map_or(ext.len(), |&next| key_start(next).saturating_sub(1));
            let raw: String = ext[eq + 1..end].iter().collect();
            let mut value = String::new();
            let mut rc = raw.chars();
            while let Some(c) = rc.next() {
                if c == '\\' {
                    match rc.next().expect("dangling escape") {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        c => value.push(c),
                    }
                } else {
                    value.push(c);
                }
            }
            pairs.push((key, value));
        }
        (header, pairs)
    }

    fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
        pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn base(class_uid: i64, activity_id: i64, type_name: &str) -> Value {
        json!({
            "class_uid": class_uid, "activity_id": activity_id, "type_uid": class_uid * 100 + activity_id,
            "type_name": type_name, "time": 1_767_225_600_123_i64, "severity_id": 1, "severity": "Informational",
            "status": "Success", "status_id": 1,
            "metadata": {"version": "1.8.0", "product": {"name": "Airlock", "vendor_name": "Airlock", "version": "9.9.9"},
                "uid": "evt-1", "correlation_uid": "run-7", "sequence": 42, "logged_time": 1_767_225_600_200_i64},
            "actor": {"user": {"name": "alice", "uid": "1000"}, "app_name": "claude",
                "authorizations": [{"decision": "allow", "policy": {"uid": "p1", "name": "github read"}},
                                   {"decision": "allow", "policy": {"uid": "p2", "name": "default"}}]},
        })
    }

    #[test]
    fn api_activity() {
        let mut e = base(6003, 2, "API Activity: Read");
        e["class_name"] = json!("API Activity");
        e["message"] = json!("allowed by p1");
        e["api"] = json!({"operation": "GET", "service": {"name": "github"}});
        e["http_request"] = json!({"http_method": "GET", "url": {"scheme": "https", "hostname": "api.github.com",
            "port": 443, "path": "/repos", "query_string": "token=hmac-sha256:abcd"}});
        e["dst_endpoint"] = json!({"hostname": "api.github.com", "ip": "140.82.112.5", "port": 443});
        e["src_endpoint"] = json!({"ip": "::1", "port": 40000});
        let line = to_cef(&e);
        let (h, x) = parse(&line);
        assert_eq!(h, ["CEF:0", "Airlock", "Airlock", "9.9.9", "600302", "API Activity: Read", "1"]);
        assert_eq!(get(&x, "rt"), Some("1767225600123"));
        assert_eq!(get(&x, "cat"), Some("API Activity"));
        assert_eq!(get(&x, "act"), Some("allow"));
        assert_eq!(get(&x, "outcome"), Some("Success"));
        assert_eq!(get(&x, "suser"), Some("alice"));
        assert_eq!(get(&x, "suid"), Some("1000"));
        assert_eq!(get(&x, "sproc"), Some("claude"));
        assert_eq!(get(&x, "src"), None, "IPv6 must not go to src");
        assert_eq!(get(&x, "c6a2"), Some("::1"));
        assert_eq!(get(&x, "c6a2Label"), Some("Source IPv6 Address"));
        assert_eq!(get(&x, "spt"), Some("40000"));
        assert_eq!(get(&x, "app"), Some("https"));
        assert_eq!(get(&x, "requestMethod"), Some("GET"));
        assert_eq!(get(&x, "request"), Some("https://api.github.com:443/repos?token=hmac-sha256:abcd"));
        assert_eq!(get(&x, "dhost"), Some("api.github.com"));
        assert_eq!(get(&x, "dst"), Some("140.82.112.5"));
        assert_eq!(get(&x, "dpt"), Some("443"));
        assert_eq!(get(&x, "destinationServiceName"), Some("github"));
        assert_eq!(get(&x, "msg"), Some("allowed by p1"));
        assert_eq!(get(&x, "externalId"), Some("evt-1"));
        assert_eq!(get(&x, "cs1Label"), Some("policyUids"));
        assert_eq!(get(&x, "cs1"), Some("p1,p2"));
        assert_eq!(get(&x, "cs2"), Some("run-7"));
        assert_eq!(get(&x, "cs3"), Some("github read,default"));
        assert_eq!(get(&x, "cs4Label"), Some("apiOperation"));
        assert_eq!(get(&x, "cs4"), Some("GET"));
        assert_eq!(get(&x, "cn1Label"), Some("sequence"));
        assert_eq!(get(&x, "cn1"), Some("42"));
        // The '=' inside the query string is escaped on the wire.
        assert!(line.contains("token\\=hmac-sha256:abcd"));
    }

    #[test]
    fn process_activity() {
        let mut e = base(1007, 1, "Process Activity: Launch");
        e["severity_id"] = json!(3);
        e["process"] = json!({"pid": 4242, "name": "curl", "cmd_line": "curl -H 'a=b' https://x",
            "file": {"path": "/usr/bin/curl", "name": "curl"}});
        e["exit_code"] = json!(-9);
        let (h, x) = parse(&to_cef(&e));
        assert_eq!(h[4], "100701");
        assert_eq!(h[6], "5");
        assert_eq!(get(&x, "dproc"), Some("curl"));
        assert_eq!(get(&x, "dpid"), Some("4242"));
        assert_eq!(get(&x, "filePath"), Some("/usr/bin/curl"));
        assert_eq!(get(&x, "fname"), Some("curl"));
        assert_eq!(get(&x, "cs5Label"), Some("commandLine"));
        assert_eq!(get(&x, "cs5"), Some("curl -H 'a=b' https://x"));
        assert_eq!(get(&x, "cn2Label"), Some("exitCode"));
        assert_eq!(get(&x, "cn2"), Some("-9"));
    }

    #[test]
    fn detection_finding() {
        let mut e = base(2004, 1, "Detection Finding: Create");
        e["severity_id"] = json!(5);
        e["actor"]["authorizations"] = json!([{"decision": "allow", "policy": {"uid": "p1"}},
                                              {"decision": "deny", "policy": {"uid": "leak-scan"}}]);
        e["finding_info"] = json!({"uid": "f-1", "title": "Secret in request body",
            "types": ["leak", "canary"], "desc": "surrogate for GITHUB_TOKEN sent to evil.example"});
        let (h, x) = parse(&to_cef(&e));
        assert_eq!(h[4], "200401");
        assert_eq!(h[6], "9");
        assert_eq!(get(&x, "act"), Some("deny"), "any deny wins");
        assert_eq!(get(&x, "cs1"), Some("p1,leak-scan"));
        assert_eq!(get(&x, "cs3"), None, "no policy names");
        assert_eq!(get(&x, "reason"), Some("Secret in request body"));
        assert_eq!(get(&x, "flexString1Label"), Some("findingUid"));
        assert_eq!(get(&x, "flexString1"), Some("f-1"));
        assert_eq!(get(&x, "flexString2"), Some("leak,canary"));
        assert_eq!(get(&x, "cs6Label"), Some("findingDesc"));
        assert_eq!(get(&x, "cs6"), Some("surrogate for GITHUB_TOKEN sent to evil.example"));
    }

    #[test]
    fn lifecycle_and_entity_management() {
        for (class, name) in [(6002, "Application Lifecycle: Start"), (3004, "Entity Management: Update")] {
            let mut e = base(class, 3, name);
            e["message"] = json!("ok");
            let (h, x) = parse(&to_cef(&e));
            assert_eq!(h[4], (class * 100 + 3).to_string());
            assert_eq!(h[5], name);
            assert_eq!(get(&x, "msg"), Some("ok"));
            assert_eq!(get(&x, "cn1"), Some("42"));
        }
    }

    #[test]
    fn missing_fields() {
        let line = to_cef(&json!({"class_uid": 6003, "severity_id": 99, "metadata": {}}));
        let (h, x) = parse(&line);
        assert_eq!(h, ["CEF:0", "Airlock", "Airlock", env!("CARGO_PKG_VERSION"), "6003", "Unknown", "3"]);
        assert!(x.is_empty(), "{x:?}");
        assert!(line.ends_with('|'));

        let (h, x) = parse(&to_cef(&json!({})));
        assert_eq!(&h[4..], ["0", "Unknown", "3"]);
        assert!(x.is_empty());

        // Wrong types are left out, not guessed at.
        let e = json!({"class_uid": 6003, "time": "yesterday", "dst_endpoint": {"ip": "not-an-ip", "port": 70000},
            "http_request": {"url": {"path": "/x"}}, "message": ""});
        let (_, x) = parse(&to_cef(&e));
        assert!(x.is_empty(), "{x:?}");
    }

    #[test]
    fn severity_mapping() {
        let got: Vec<u8> = [None, Some(0), Some(1), Some(2), Some(3), Some(4), Some(5), Some(6), Some(99), Some(-1)]
            .into_iter()
            .map(cef_severity)
            .collect();
        assert_eq!(got, [3, 3, 1, 3, 5, 7, 9, 10, 3, 3]);
    }

    #[test]
    fn escaping() {
        let mut out = String::new();
        escape_header("a\\b|c=d\r\ne\u{1b}[31m", &mut out);
        assert_eq!(out, "a\\\\b\\|c=d  e [31m");
        let mut out = String::new();
        escape_extension("a\\b|c=d\r\ne\u{0}f\u{85}g\u{2028}h\té", &mut out);
        assert_eq!(out, "a\\\\b|c\\=d\\r\\ne f g h é");
    }

    #[test]
    fn header_fields_are_escaped() {
        let mut e = base(6003, 1, "API|Activity\\x\nCEF:0|Evil");
        e["metadata"]["product"]["version"] = json!("1|2");
        let line = to_cef(&e);
        let (h, _) = parse(&line);
        assert_eq!(h[3], "1|2");
        assert_eq!(h[5], "API|Activity\\x CEF:0|Evil");
        assert!(line.starts_with("CEF:0|Airlock|Airlock|1\\|2|600301|API\\|Activity\\\\x CEF:0\\|Evil|1|"));
    }

    #[test]
    fn injection_stays_one_field_on_one_line() {
        let evil = "denied | act=allow suser=root \\\\ \\= x\r\nCEF:0|Evil|Evil|1|1|fake|10|act=allow\nmsg=forged\\";
        let mut e = base(6003, 1, "API Activity: Create");
        e["message"] = json!(evil);
        e["actor"]["user"]["name"] = json!("mallory act=allow");
        e["actor"]["authorizations"] = json!([{"decision": "deny", "policy": {"uid": "p=1,\nx|y"}}]);
        let line = to_cef(&e);
        assert_eq!(line.lines().count(), 1);
        assert!(!line.contains('\n') && !line.contains('\r'));
        let (h, x) = parse(&line);
        assert_eq!(h[5], "API Activity: Create");
        let keys: Vec<&str> = x.iter().map(|(k, _)| k.as_str()).collect();
        let want = "rt act outcome suser suid sproc msg externalId cs1Label cs1 cs2Label cs2 cn1Label cn1";
        assert_eq!(keys.join(" "), want);
        assert_eq!(get(&x, "msg"), Some(evil));
        assert_eq!(get(&x, "act"), Some("deny"));
        assert_eq!(get(&x, "suser"), Some("mallory act=allow"));
        assert_eq!(get(&x, "cs1"), Some("p=1,\nx|y"));
        // The fake header is inert text inside msg, not at the start of a line.
        assert_eq!(line.matches("CEF:0|").count(), 2);
        assert!(line.starts_with("CEF:0|Airlock|"));
    }

    #[test]
    fn checkpoint_line() {
        let note = "airlock.example/log\n42\nq6Kx=\n\n— airlock.example/log abc=\n";
        let (h, x) = parse(&checkpoint_to_cef(42, note));
        assert_eq!(&h[4..], ["checkpoint", "Audit log checkpoint", "1"]);
        assert_eq!(get(&x, "cn1Label"), Some("treeSize"));
        assert_eq!(get(&x, "cn1"), Some("42"));
        assert_eq!(get(&x, "msg"), Some(note), "lossless after unescaping");
    }

    #[test]
    fn url_rebuilt_or_taken_whole() {
        assert_eq!(url_text(&json!({"url_string": "https://a/b"})).as_deref(), Some("https://a/b"));
        assert_eq!(
            url_text(&json!({"scheme": "http", "hostname": "::1", "port": 8080, "path": "x", "query_string": "?q"}))
                .as_deref(),
            Some("http://[::1]:8080/x?q")
        );
        assert_eq!(url_text(&json!({"path": "/only"})), None);
    }
}
