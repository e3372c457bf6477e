//! `/v1/secrets`: the vault's secrets through the API. Metadata to read; for admins, new secrets, new values and
//! pinned hosts.
//!
//! # Why
//! The daemon holds the unlocked vault. An operator's tooling (and `airlock secret` with `AIRLOCK_TOKEN`) manages
//! secrets through it with an admin token instead of the vault passphrase, and every change is audited under the
//! agent that made it.
//!
//! # Rules
//! - No answer carries a value, or anything derived from one: the answers are [`SecretInfo`], which is metadata
//!   only (surrogates are made per run and are not metadata). Error details never quote what was sent: serde's
//!   messages quote what they found (a value sent in the wrong field would come back), so [`parse`] keeps only
//!   what was expected, and where.
//! - Who sees what: admins and auditors see every secret. An agent sees the secrets the policy lets it use: those
//!   named in `[tools.T] secrets` of a tool it is granted (`[agents.A] tools` and its roles' tools). Any other
//!   secret is "not found", worded as for a secret that does not exist, so an agent learns nothing of it.
//! - Changes (create, rotate, pin) need `Manage` (admins; the route table refuses anyone else before the body is
//!   read). Each is written to the audit log (an Entity Management record, the agent as actor) after the vault
//!   has it; a change that cannot be recorded answers 500 saying so.
//! - Values arrive as `value` (UTF-8 text) or `value_base64` (any bytes), are held in zeroizing buffers, and the
//!   body types have no `Debug`. Hosts, tags and injection recipes are checked against exactly what
//!   `docs/openapi.json` says (stricter than the CLI's flags, which `airlock secret` normalises before sending),
//!   so that what the document calls valid is never refused and the rest always is.
//! - Vault calls are file reads and writes: they run on the blocking pool, holding the vault's lock briefly. The
//!   vault is refreshed first, so a change made by a standalone `airlock secret` is seen at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use airlock_audit::Append;
use airlock_audit::event::activity;
use airlock_crypto::SecretBytes;
use airlock_vault::{DEFAULT_WORKSPACE, Exposure, Injection, NewSecret, SecretId, SecretInfo, Vault, VaultError};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use zeroize::Zeroizing;

use super::http::{self, Problem, Reply};
use super::{Daemon, lock, now_ms};
use crate::CliError;
use crate::agents::{Agent, Permission};

/// `GET /v1/secrets[?workspace=WS]`: the metadata of every secret the caller may see, sorted by workspace and name.
pub async fn list(daemon: &Arc<Daemon>, agent: &Agent, query: &str) -> Result<Reply, Problem> {
    let workspace = workspace_param(query)?;
    let visible = visible(daemon, agent);
    let all = with_vault(daemon, |v| v.list().map_err(vault_problem)).await?;
    let shown: Vec<SecretInfo> = all
        .into_iter()
        .filter(|s| workspace.as_ref().is_none_or(|w| &s.workspace == w))
        .filter(|s| {
            visible.as_ref().is_none_or(|set| set.iter().any(|id| id.workspace == s.workspace && id.name == s.name))
        })
        .collect();
    Ok(http::json(StatusCode::OK, &json!({ "secrets": shown })))
}

/// `GET /v1/secrets/{name}[?workspace=WS]`: one secret's metadata.
pub async fn get(daemon: &Arc<Daemon>, agent: &Agent, name: &str, query: &str) -> Result<Reply, Problem> {
    let id = address(name, query)?;
    if !may_see(daemon, agent, &id) {
        return Err(not_found(&id));
    }
    let info = with_vault(daemon, move |v| v.info(&id).map_err(vault_problem)).await?;
    Ok(http::json(StatusCode::OK, &json!(info)))
}

/// `POST /v1/secrets`: a new secret (201, its metadata); 409 if the name is taken in that workspace.
pub async fn create(daemon: &Arc<Daemon>, agent: &Agent, req: Request<Incoming>) -> Result<Reply, Problem> {
    no_query(req.uri().query().unwrap_or(""))?;
    let body: CreateBody = parse(&http::read_json_bytes(req, daemon.max_body).await?)?;
    let id =
        SecretId::new(body.workspace.as_deref().unwrap_or(DEFAULT_WORKSPACE), &body.name).map_err(vault_problem)?;
    let injection = body.injection.map(checked_injection).transpose()?;
    if matches!(injection, Some(Injection::Header { .. })) && body.value_base64.is_some() {
        return Err(Problem::bad_request(
            "a header injection needs the value as text (value), without control characters; value_base64 is for \
             values sent otherwise",
        ));
    }
    for h in &body.hosts {
        check_host(h)?;
    }
    for t in &body.tags {
        check_tag(t)?;
    }
    let value = one_value(body.value, body.value_base64)?;
    let opts = NewSecret {
        group: body.group,
        hosts: body.hosts,
        injection,
        exposure: body.exposure.unwrap_or_default(),
        tags: body.tags,
        keep_versions: body.keep_versions,
    };
    opts.validate().map_err(vault_problem)?;
    airlock_vault::check_value(&value).map_err(vault_problem)?;
    let info = change(
        daemon,
        agent,
        activity::CREATE,
        id,
        move |v, id| v.set(id, opts, value).map_err(vault_problem),
        |id, _| format!("secret {id} stored"),
    )
    .await?;
    Ok(http::json(StatusCode::CREATED, &json!(info)))
}

/// `POST /v1/secrets/{name}/rotate`: a new value; the old one is kept as a previous version. The same value again
/// is refused (409), as `airlock secret rotate` refuses it; so is a value the secret's header injection cannot carry
/// (control characters): the request is well formed, the secret's own recipe is what it conflicts with.
pub async fn rotate(daemon: &Arc<Daemon>, agent: &Agent, name: &str, req: Request<Incoming>) -> Result<Reply, Problem> {
    let id = address(name, req.uri().query().unwrap_or(""))?;
    let body: RotateBody = parse(&http::read_json_bytes(req, daemon.max_body).await?)?;
    let value = one_value(body.value, body.value_base64)?;
    airlock_vault::check_value(&value).map_err(vault_problem)?;
    let info = change(
        daemon,
        agent,
        activity::UPDATE,
        id,
        move |v, id| {
            if v.resolve(id).map_err(vault_problem)?.ct_eq(value.expose()) {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "The resource already exists",
                    format!("the new value of {id} is the same as the current one; nothing changed"),
                ));
            }
            v.rotate(id, value).map_err(|e| match e {
                VaultError::InvalidInjection(why) => Problem::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "The resource already exists",
                    format!("{id} is injected as a header, which cannot carry this value: {why}"),
                ),
                e => vault_problem(e),
            })
        },
        |id, info| format!("secret {id} rotated to version {}", info.current_version),
    )
    .await?;
    Ok(http::json(StatusCode::OK, &json!(info)))
}

/// `POST /v1/secrets/{name}/pin`: one more host the secret may be sent to (pinning a host again changes nothing).
pub async fn pin(daemon: &Arc<Daemon>, agent: &Agent, name: &str, req: Request<Incoming>) -> Result<Reply, Problem> {
    let id = address(name, req.uri().query().unwrap_or(""))?;
    let body: PinBody = parse(&http::read_json_bytes(req, daemon.max_body).await?)?;
    check_host(&body.host)?;
    let info = change(
        daemon,
        agent,
        activity::UPDATE,
        id,
        move |v, id| v.pin(id, &body.host).map_err(vault_problem),
        |id, info| format!("secret {id} pinned to {}", info.hosts.join(", ")),
    )
    .await?;
    Ok(http::json(StatusCode::OK, &json!(info)))
}

/// A secret value from a request body: in a zeroizing buffer, and never shown (no `Debug`).
struct SecretText(Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretText(Zeroizing::new(s)))
    }
}

/// A value field that, when present, is a string: `null` is refused rather than taken for "absent".
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretText>, D::Error> {
    SecretText::deserialize(d).map(Some)
}

/// `POST /v1/secrets`. No `Debug`: it holds the value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default, deserialize_with = "present")]
    value: Option<SecretText>,
    #[serde(default, deserialize_with = "present")]
    value_base64: Option<SecretText>,
    #[serde(default)]
    hosts: Vec<String>,
    /// As [`SecretInfo`] reports it: `{"type": "header", "name", "template"}`, `{"type": "query", "param"}` or
    /// `{"type": "basic", "username"}`.
    #[serde(default)]
    injection: Option<Injection>,
    #[serde(default)]
    exposure: Option<Exposure>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default, deserialize_with = "http::whole_opt")]
    keep_versions: Option<u32>,
}

/// `POST /v1/secrets/{name}/rotate`. No `Debug`: it holds the value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default, deserialize_with = "present")]
    value: Option<SecretText>,
    #[serde(default, deserialize_with = "present")]
    value_base64: Option<SecretText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinBody {
    host: String,
}

/// The value, from exactly one of `value` (its UTF-8 bytes) and `value_base64` (standard alphabet, padded).
fn one_value(text: Option<SecretText>, b64: Option<SecretText>) -> Result<SecretBytes, Problem> {
    match (text, b64) {
        (Some(mut t), None) => Ok(SecretBytes::new(std::mem::take(&mut *t.0).into_bytes())),
        (None, Some(b)) => {
            use base64::Engine;
            // Bits past the last whole byte are not checked: the document's pattern cannot say "canonical".
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
            );
            // The decoder's message could quote a character of the value: only say what is expected.
            engine
                .decode(b.0.as_bytes())
                .map(SecretBytes::new)
                .map_err(|_| Problem::bad_request("value_base64: not base64 (standard alphabet, with = padding)"))
        }
        (Some(_), Some(_)) => Err(Problem::bad_request("give the value once: value (text) or value_base64, not both")),
        (None, None) => Err(Problem::bad_request("no value: give value (text) or value_base64")),
    }
}

/// `bytes` as `T`. serde's messages quote what they found (`invalid type: string "..."`), which may be a value
/// sent in the wrong field: only what was expected, and where, is said.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let full = e.to_string();
        let message = full.rsplit_once(" at line ").map_or(full.as_str(), |(m, _)| m);
        let what = match e.classify() {
            Category::Data => match message.split_once(", expected ") {
                Some((found, expected)) => {
                    // "invalid type: string \"...\"", "unknown field `...`": the words before the quote.
                    let kind = found.split([':', '`', '"']).next().unwrap_or("").trim();
                    format!("{kind}: expected {expected}")
                }
                None if message.starts_with("missing field") => message.to_string(),
                None => "a field holds a value of the wrong kind or out of range".to_string(),
            },
            // Syntax errors name the token expected, never the text.
            Category::Syntax => format!("not JSON ({message})"),
            Category::Eof => "the JSON ends early".to_string(),
            Category::Io => "it could not be read".to_string(),
        };
        Problem::bad_request(format!("the body does not fit: {what} (line {}, column {})", e.line(), e.column()))
    })
}

/// A secret's address: the path's name, and the workspace of `?workspace=` (`default` without it).
fn address(name: &str, query: &str) -> Result<SecretId, Problem> {
    let ws = workspace_param(query)?;
    SecretId::new(ws.as_deref().unwrap_or(DEFAULT_WORKSPACE), name).map_err(vault_problem)
}

/// The one query parameter the secrets routes know, `workspace`, checked; an unknown parameter is refused (its name
/// is not repeated: it could be anything).
fn workspace_param(query: &str) -> Result<Option<String>, Problem> {
    let mut workspace = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != "workspace" {
            return Err(Problem::bad_request("unknown query parameter: only workspace is known here"));
        }
        if workspace.is_some() {
            return Err(Problem::bad_request("query workspace: given twice"));
        }
        let v = super::routes::percent_decode(v)
            .ok_or_else(|| Problem::bad_request("query workspace: bad percent-encoding"))?;
        SecretId::new(&v, "x").map_err(vault_problem)?;
        workspace = Some(v);
    }
    Ok(workspace)
}

fn no_query(query: &str) -> Result<(), Problem> {
    match query.is_empty() {
        true => Ok(()),
        false => Err(Problem::bad_request("this operation takes no query parameters")),
    }
}

/// The secrets `agent` may see: `None` for every one (admins and auditors), else those that a tool it is granted
/// uses. Names in `[tools.T] secrets` are `NAME` (workspace `default`) or `WORKSPACE/NAME`, as for runs.
fn visible(daemon: &Daemon, agent: &Agent) -> Option<BTreeSet<SecretId>> {
    if agent.role.allows(Permission::Audit) {
        return None;
    }
    let engine = daemon.policy.engine();
    let model = &engine.compiled().model;
    let Some(spec) = model.agents.get(&agent.name) else { return Some(BTreeSet::new()) };
    Some(
        model
            .tools
            .iter()
            .filter(|(tool, _)| spec.tools.allows(tool))
            .flat_map(|(_, t)| t.secrets.iter())
            .filter_map(|s| SecretId::parse(&s.value, DEFAULT_WORKSPACE).ok())
            .collect(),
    )
}

fn may_see(daemon: &Daemon, agent: &Agent, id: &SecretId) -> bool {
    visible(daemon, agent).is_none_or(|set| set.contains(id))
}

/// "Not found", worded exactly as for a secret the vault does not have.
fn not_found(id: &SecretId) -> Problem {
    vault_problem(VaultError::NotFound(id.to_string()))
}

/// A vault error as a problem: the CLI's exit code decides the status (see [`Problem::from`]); a busy vault is
/// 503 with a retry, and a vault that locked itself (rekeyed by another process) is 503 until a restart.
fn vault_problem(e: VaultError) -> Problem {
    match e {
        VaultError::Busy { .. } => {
            let mut p = Problem::unavailable(e.to_string());
            p.retry_after = Some(1);
            p
        }
        VaultError::Locked | VaultError::Expired | VaultError::Rekeyed => {
            Problem::unavailable(format!("{e}; restart the daemon to unlock the vault again"))
        }
        e => Problem::from(CliError::from(e)),
    }
}

/// `f` with the daemon's vault (refreshed from the file first), on the blocking pool.
async fn with_vault<T: Send + 'static>(
    daemon: &Arc<Daemon>,
    f: impl FnOnce(&mut Vault) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let d = Arc::clone(daemon);
    tokio::task::spawn_blocking(move || {
        let mut guard = lock(&d.vault);
        let vault = guard.as_mut().ok_or_else(|| Problem::unavailable("the daemon is shutting down"))?;
        vault.refresh().map_err(vault_problem)?;
        f(vault)
    })
    .await
    .map_err(|e| Problem::internal(format!("the vault task failed: {e}")))?
}

/// A change to secret `id`, made by `f` and then audited as `activity` with `message` (the vault's lock is let go
/// before the record is written).
async fn change(
    daemon: &Arc<Daemon>,
    agent: &Agent,
    activity: u8,
    id: SecretId,
    f: impl FnOnce(&mut Vault, &SecretId) -> Result<SecretInfo, Problem> + Send + 'static,
    message: impl FnOnce(&SecretId, &SecretInfo) -> String + Send + 'static,
) -> Result<SecretInfo, Problem> {
    let d = Arc::clone(daemon);
    let actor = agent.name.clone();
    let info = with_vault(daemon, {
        let id = id.clone();
        move |v| f(v, &id)
    })
    .await?;
    let text = format!("{} through the API by agent {actor}", message(&id, &info));
    tokio::task::spawn_blocking(move || {
        let event = airlock_audit::Event::entity_change(now_ms(), activity, "secret", &id.to_string())
            .actor(&actor, None)
            .set("actor.app_name", json!("airlock-serve"))
            .status(true)
            .message(text);
        d.log.append(event).map(|_| ())
    })
    .await
    .map_err(|e| Problem::internal(format!("the audit task failed: {e}")))?
    .map_err(|e| Problem::internal(format!("the change was made but could not be recorded in the audit log: {e}")))?;
    Ok(info)
}

/// An injection recipe as the API takes it: the parts as they are (a header name is an HTTP token, a template has
/// no control characters), then the vault's own checks (exactly one `{}`, no framing or routing header).
fn checked_injection(i: Injection) -> Result<Injection, Problem> {
    let made = match &i {
        Injection::Header { name, template } => {
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                return Err(Problem::bad_request(
                    "injection: a header name is an HTTP token (letters, digits, !#$%&'*+-.^_`|~)",
                ));
            }
            if template.bytes().any(|b| b.is_ascii_control()) {
                return Err(Problem::bad_request("injection: a header template must not contain control characters"));
            }
            Injection::header(&format!("{name}: {template}"))
        }
        Injection::Query { param } => Injection::query(param),
        Injection::Basic { username } => Injection::basic(username),
    };
    made.map_err(vault_problem)
}

/// A host to pin, as the API takes it (the document's `Host`): a DNS name in ASCII (labels of 1 to 63 letters,
/// digits and inner hyphens), `*.` and a name of at least two labels, or an IPv6 address (hex groups and colons)
/// in brackets; then optionally `:PORT` (1 to 65535); 253 characters in all at most. The vault then normalises it
/// (lower case). The CLI's `--host` takes more (spaces, a trailing dot, `+` or embedded IPv4 in IPv6) and sends the
/// normalised form.
fn check_host(h: &str) -> Result<(), Problem> {
    let bad = |why: &str| Err(Problem::bad_request(format!("host: {why}")));
    if h.len() > 253 || !h.is_ascii() {
        return bad("at most 253 ASCII characters (names in other scripts as punycode, xn--...)");
    }
    let port = if let Some(rest) = h.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else { return bad("an unclosed [") };
        let hex_and_colons = !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        if !hex_and_colons || v6.parse::<std::net::Ipv6Addr>().is_err() {
            return bad("not an IPv6 address of hex groups and colons, in brackets");
        }
        match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return bad("only :PORT may follow ]"),
            },
        }
    } else {
        let (name, port) = match h.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (h, None),
        };
        let labels: Vec<&str> = name.split('.').collect();
        let labels = match labels.split_first() {
            Some((&"*", rest)) if rest.len() >= 2 => rest,
            Some((&"*", _)) => return bad("*. must be followed by a name of at least two labels (*.example.com)"),
            _ => &labels[..],
        };
        for l in labels {
            let ok = (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-');
            if !ok {
                return bad("each label is 1 to 63 letters, digits and inner hyphens");
            }
        }
        port
    };
    if let Some(p) = port {
        let significant = p.trim_start_matches('0');
        let ok = p.bytes().all(|b| b.is_ascii_digit()) && !significant.is_empty() && significant.parse::<u16>().is_ok();
        if !ok {
            return bad("the port is 1 to 65535");
        }
    }
    Ok(())
}

/// A tag, as the API takes it: 1 to 128 printable ASCII characters.
fn check_tag(t: &str) -> Result<(), Problem> {
    if (1..=128).contains(&t.len()) && t.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        Ok(())
    } else {
        Err(Problem::bad_request("tags: 1 to 128 printable ASCII characters each"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_taken_exactly_as_the_document_says() {
        for good in [
            "api.example.com",
            "API.Example.COM:443",
            "*.example.com",
            "*.a.b:0080",
            "localhost",
            "1.2.3.4:65535",
            "[::1]",
            "[2001:DB8::1]:8443",
            "a-b.c0",
        ] {
            assert!(check_host(good).is_ok(), "{good}");
            // And the vault takes what the API takes.
            airlock_vault::normalize_host(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "*.com",
            "*",
            "a..b",
            "-a.com",
            "a-.com",
            "example.com.",
            " example.com",
            "example.com:0",
            "example.com:65536",
            "example.com:+80",
            "example.com:",
            "a:1:2",
            "[::1",
            "[::ffff:1.2.3.4]",
            "[:::]",
            "[::1]x",
            "exämple.com",
            "https://example.com",
            &"a".repeat(64),
            &format!("{}.com", vec!["a".repeat(63); 4].join(".")),
        ] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_recipes_are_checked_as_sent() {
        let header = |name: &str, template: &str| {
            checked_injection(Injection::Header { name: name.into(), template: template.into() })
        };
        assert!(header("Authorization", "Bearer {}").is_ok());
        assert!(header("X-Key", "{{}}").is_ok());
        for (name, template) in [
            (" Authorization", "Bearer {}"),
            ("Authorization:", "Bearer {}"),
            ("Host", "{}"),
            ("content-LENGTH", "{}"),
            ("X", "\tBearer {}"),
            ("X", "{} {}"),
            ("X", "none"),
        ] {
            assert!(header(name, template).is_err(), "{name:?}: {template:?}");
        }
    }

    #[test]
    fn body_errors_never_quote_what_was_sent() {
        let canary = "c4n4ry-v4lue-never-echoed";
        for body in [
            format!(r#"{{"name": "x", "value": 1, "{canary}": 1}}"#),
            format!(r#"{{"name": "x", "keep_versions": "{canary}"}}"#),
            format!(r#"{{"name": "x", "exposure": "{canary}"}}"#),
            format!(r#""{canary}""#),
            format!(r#"{{"name": "x", "value": "{canary}", "{canary}": true}}"#),
            format!(r#"{{"name": "x", "injection": {{"type": "{canary}"}}}}"#),
            format!(r#"{{"name": "x", "value": "{canary}" "#),
        ] {
            let Err(p) = parse::<CreateBody>(body.as_bytes()) else { panic!("{body} parsed") };
            assert!(!p.detail.contains(canary), "{}", p.detail);
            assert!(p.detail.starts_with("the body does not fit: "), "{}", p.detail);
        }
        let Err(p) = parse::<CreateBody>(br#"{"name": "x", "colour": 1}"#) else { panic!() };
        assert!(p.detail.contains("unknown field: expected one of"), "{}", p.detail);
        let Err(p) = parse::<RotateBody>(br#"{"value": null}"#) else { panic!("null is not a value") };
        assert!(p.detail.contains("expected a string"), "{}", p.detail);
    }

    #[test]
    fn a_value_comes_from_exactly_one_field() {
        let text = |s: &str| Some(SecretText(Zeroizing::new(s.to_string())));
        assert_eq!(one_value(text("abc"), None).unwrap().expose(), b"abc");
        assert_eq!(one_value(None, text("/wA=")).unwrap().expose(), &[0xff, 0]);
        // Trailing bits are not checked (the pattern cannot say so).
        assert_eq!(one_value(None, text("AB==")).unwrap().expose(), &[0]);
        for (t, b) in [
            (text("a"), text("YQ==")),
            (None, None),
            (None, text("YQ")),
            (None, text("Y*==")),
            (None, text("YQ==YQ==")),
        ] {
            assert!(one_value(t, b).is_err());
        }
    }
}
