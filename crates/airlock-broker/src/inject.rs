//! Credential injection: real secret values go on the wire only here, only toward the hosts each secret may reach.
//!
//! Why a separate step, after policy and SSRF and before forwarding: a tool never holds a real credential. It holds
//! a *surrogate* (a random stand-in of the same shape, see `airlock_vault::surrogate`), or nothing at all when the
//! secret has a *recipe* (the broker adds `Authorization: Bearer …` itself). Either way the real value exists only
//! in the request the broker writes upstream, and only after a [`Gate`] has said that this secret may go to this
//! destination (the tool is granted the secret, the host is one of its pins, the scheme is https).
//!
//! What this step enforces, in order:
//! 1. **Surrogates** in the request target (path, query) and in header values (and inside `Basic` credentials, which
//!    clients base64-encode) are replaced by the real value, percent-encoded in the URL. A surrogate whose secret
//!    may not go here is an exfiltration attempt: the request is refused ([`Refusal::WrongHost`]). The one exception
//!    is a request that follows a cross-host redirect of an injected request: there, auth-class headers carrying
//!    such a surrogate are *removed* (as browsers and careful clients do), and the request goes on without them.
//! 2. **Recipes** of secrets that may go here are applied: a header, basic auth, or a query parameter. If the caller
//!    already sent that header or parameter with something other than the surrogate, the request is refused
//!    ([`Refusal::CallerAuth`]): a tool must not be able to choose which credential an injected host sees.
//! 3. A real value that cannot be written where it belongs (a newline in a header) refuses the request rather than
//!    corrupting it ([`Refusal::Unrepresentable`]).
//!
//! What this step does not do: scan for *encoded* surrogates or for real values. The proxy does that around it with
//! the leak scanner (before injection, on the request exactly as the tool sent it).

use std::collections::HashSet;
use std::fmt;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use zeroize::Zeroizing;

use airlock_policy::normalize::HostPattern;
use airlock_policy::normalize::Target;

/// Surrogates shorter than this could turn up by chance in ordinary text; they are refused when building the set.
pub const MIN_SURROGATE_LEN: usize = 8;

/// How a secret is put on the wire when the tool sends no surrogate.
#[derive(Clone, PartialEq, Eq)]
pub enum Recipe {
    /// `name: prefix VALUE suffix`, e.g. `Authorization: Bearer VALUE`.
    Header { name: HeaderName, prefix: String, suffix: String },
    /// `?param=VALUE` appended to the query.
    Query { param: String },
    /// `Authorization: Basic base64(username:VALUE)`.
    Basic { username: String },
}

impl fmt::Debug for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Recipe {
    /// A header recipe. `template` holds the value's place exactly once, written `{}` or `{value}`.
    pub fn header(name: &str, template: &str) -> Result<Recipe, String> {
        let name =
            HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| format!("invalid header name {name:?}"))?;
        // Framing and routing headers: a value in them could rewrite the request (the vault's list, shared).
        if airlock_vault::FRAMING_HEADERS.contains(&name.as_str()) {
            return Err(format!("header {name} frames or routes the request and cannot carry a credential"));
        }
        let marker = if template.contains("{value}") { "{value}" } else { "{}" };
        if template.matches(marker).count() != 1 {
            return Err("the template must hold the value's place exactly once, as {value} or {}".into());
        }
        if template.bytes().any(|b| b.is_ascii_control()) {
            return Err("the template must not contain control characters".into());
        }
        let (prefix, suffix) = template.split_once(marker).unwrap_or((template, ""));
        Ok(Recipe::Header { name, prefix: prefix.to_string(), suffix: suffix.to_string() })
    }

    /// A query-parameter recipe.
    pub fn query(param: &str) -> Result<Recipe, String> {
        if param.is_empty() || !param.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)) {
            return Err(format!("invalid query parameter name {param:?}: use letters, digits and -_.~"));
        }
        Ok(Recipe::Query { param: param.to_string() })
    }

    /// A basic-auth recipe: the secret is the password.
    pub fn basic(username: &str) -> Result<Recipe, String> {
        if username.contains(':') || username.bytes().any(|b| b.is_ascii_control()) {
            return Err("a basic-auth username must not contain ':' or control characters".into());
        }
        Ok(Recipe::Basic { username: username.to_string() })
    }

    /// e.g. `header Authorization: Bearer {value}`. Never shows a value.
    pub fn describe(&self) -> String {
        match self {
            Recipe::Header { name, prefix, suffix } => format!("header {name}: {prefix}{{value}}{suffix}"),
            Recipe::Query { param } => format!("query ?{param}={{value}}"),
            Recipe::Basic { username } => format!("basic auth as {username}"),
        }
    }

    /// From `airlock.toml`'s `inject = { header, format }` or `inject = { query }`: exactly one of header or query,
    /// and `format` only with a header.
    pub fn from_config(r: &airlock_policy::config::InjectRecipe) -> Result<Recipe, String> {
        match (&r.header, &r.query, &r.format) {
            (Some(h), None, format) => Recipe::header(h, format.as_deref().unwrap_or("{value}")),
            (None, Some(q), None) => Recipe::query(q),
            (None, Some(_), Some(_)) => Err("format applies to a header, not to a query parameter".into()),
            _ => Err("inject needs exactly one of header or query".into()),
        }
    }

    /// The header this recipe writes, if any.
    pub(crate) fn header_name(&self) -> Option<&HeaderName> {
        match self {
            Recipe::Header { name, .. } => Some(name),
            Recipe::Basic { .. } => Some(&header::AUTHORIZATION),
            Recipe::Query { .. } => None,
        }
    }
}

/// One secret the broker may inject. The value is wiped when dropped and never shown by `Debug`.
pub struct Credential {
    /// The secret's name, as policy knows it (`secret.use` decisions are about this name).
    pub secret: String,
    value: Zeroizing<Vec<u8>>,
    /// The stand-in the tool holds, if it was given one.
    pub surrogate: Option<String>,
    pub recipe: Option<Recipe>,
    /// The vault's own pins for this secret. When not empty, the destination must match one of them as well as the
    /// policy's pins.
    pub vault_pins: Vec<HostPattern>,
    /// Media types (`application/json`) whose request bodies are searched for the surrogate.
    pub body_types: Vec<String>,
    /// The capability registry's pins for this secret's name ([`crate::capability::Registry::pins_for_secret`]):
    /// when not empty, the destination must match one of them too, whatever the vault and the policy say.
    pub registry_pins: Vec<HostPattern>,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("secret", &self.secret)
            .field("surrogate", &self.surrogate.as_ref().map(|_| "…"))
            .field("recipe", &self.recipe)
            .finish_non_exhaustive()
    }
}

impl Credential {
    pub fn new(secret: &str, value: &[u8]) -> Credential {
        Credential {
            secret: secret.to_string(),
            value: Zeroizing::new(value.to_vec()),
            surrogate: None,
            recipe: None,
            vault_pins: Vec::new(),
            body_types: Vec::new(),
            registry_pins: Vec::new(),
        }
    }

    pub fn registry_pins(mut self, pins: Vec<HostPattern>) -> Credential {
        self.registry_pins = pins;
        self
    }

    /// The same secret, put on the wire by `recipe` only: no surrogate to swap, no body search. For capability
    /// calls, where the provider's definition says how the secret is sent.
    pub fn with_only_recipe(&self, recipe: Recipe) -> Credential {
        Credential {
            secret: self.secret.clone(),
            value: self.value.clone(),
            surrogate: None,
            recipe: Some(recipe),
            vault_pins: self.vault_pins.clone(),
            body_types: Vec::new(),
            registry_pins: self.registry_pins.clone(),
        }
    }

    pub fn surrogate(mut self, s: &str) -> Credential {
        self.surrogate = Some(s.to_string());
        self
    }

    pub fn recipe(mut self, r: Recipe) -> Credential {
        self.recipe = Some(r);
        self
    }

    pub fn vault_pins(mut self, pins: Vec<HostPattern>) -> Credential {
        self.vault_pins = pins;
        self
    }

    pub fn body_types(mut self, types: &[&str]) -> Credential {
        self.body_types = types.iter().map(|t| t.trim().to_ascii_lowercase()).collect();
        self
    }

    /// The real value. Only the proxy's forwarding path reads it.
    pub(crate) fn value(&self) -> &[u8] {
        &self.value
    }

    /// Whether the vault's pins and the registry's pins (each, if any) admit this destination.
    pub fn vault_pins_admit(&self, target: &Target) -> bool {
        let admits = |pins: &[HostPattern]| {
            pins.is_empty() || pins.iter().any(|p| p.matches(&target.host, target.port, target.default_port))
        };
        admits(&self.vault_pins) && admits(&self.registry_pins)
    }
}

/// The credentials one broker can inject, with a matcher over their surrogates.
#[derive(Default)]
pub struct CredentialSet {
    creds: Vec<Credential>,
    /// Over every surrogate; pattern `i` is `creds[by_pattern[i]]`'s.
    matcher: Option<AhoCorasick>,
    by_pattern: Vec<usize>,
}

impl fmt::Debug for CredentialSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialSet").field("credentials", &self.creds.len()).finish()
    }
}

impl CredentialSet {
    /// Refuses surrogates shorter than [`MIN_SURROGATE_LEN`], a surrogate used twice, and two credentials for the
    /// same secret.
    pub fn new(creds: Vec<Credential>) -> Result<CredentialSet, String> {
        let mut names = HashSet::new();
        let mut seen = HashSet::new();
        let mut patterns = Vec::new();
        let mut by_pattern = Vec::new();
        for (i, c) in creds.iter().enumerate() {
            if !names.insert(c.secret.as_str()) {
                return Err(format!("secret {} is listed twice", c.secret));
            }
            if let Some(s) = &c.surrogate {
                if s.len() < MIN_SURROGATE_LEN {
                    return Err(format!(
                        "the surrogate for {} is shorter than {MIN_SURROGATE_LEN} bytes and could occur by chance",
                        c.secret
                    ));
                }
                if !seen.insert(s.as_str()) {
                    return Err(format!("secret {} shares its surrogate with another secret", c.secret));
                }
                patterns.push(s.as_bytes().to_vec());
                by_pattern.push(i);
            }
        }
        let matcher = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&patterns)
                    .map_err(|e| format!("surrogate matcher: {e}"))?,
            )
        };
        Ok(CredentialSet { creds, matcher, by_pattern })
    }

    pub fn empty() -> CredentialSet {
        CredentialSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.creds.is_empty()
    }

    pub fn len(&self) -> usize {
        self.creds.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Credential> {
        self.creds.iter()
    }

    pub fn get(&self, i: usize) -> &Credential {
        &self.creds[i]
    }

    /// Non-overlapping surrogate occurrences in `hay`: (start, end, credential index).
    fn find(&self, hay: &[u8]) -> Vec<(usize, usize, usize)> {
        match &self.matcher {
            None => Vec::new(),
            Some(m) => {
                m.find_iter(hay).map(|x| (x.start(), x.end(), self.by_pattern[x.pattern().as_usize()])).collect()
            }
        }
    }
}

/// Whether a secret may be sent to the destination at hand. The proxy implements it with the policy engine
/// (`secret.use`) and the vault's pins.
pub trait Gate {
    /// Cheap pre-check: could this credential go here at all (does any of its pins match)? `false` skips it
    /// without a full decision; recipes of secrets pinned elsewhere are never applied.
    fn pinned_here(&self, cred: &Credential) -> bool;
    /// The full decision, with the reason when refused.
    fn decide(&self, cred: &Credential) -> Result<(), String>;
}

/// Why a request was refused. Names secrets and places, never values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A surrogate was headed where its secret may not go: an exfiltration attempt.
    WrongHost { secret: String, place: String, reason: String },
    /// The caller supplied its own value where an injected secret goes.
    CallerAuth { secret: String, place: String },
    /// The real value cannot be written where the surrogate stood.
    Unrepresentable { secret: String, place: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::WrongHost { secret, place, reason } => write!(
                f,
                "the {place} carries the stand-in for secret {secret}, which may not go to this destination \
                 ({reason}); this is recorded as an exfiltration attempt"
            ),
            Refusal::CallerAuth { secret, place } => write!(
                f,
                "the {place} is where Airlock puts secret {secret} for this host; send the request without it \
                 (or with the surrogate you were given)"
            ),
            Refusal::Unrepresentable { secret, place } => {
                write!(f, "the value of secret {secret} cannot be written into the {place}")
            }
        }
    }
}

/// What was done to a request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Injected {
    /// Secrets whose real value is now in the request.
    pub secrets: Vec<String>,
    /// Headers removed because they carried a surrogate into a cross-host redirect.
    pub stripped: Vec<String>,
}

impl Injected {
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    fn used(&mut self, secret: &str) {
        if !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_string());
        }
    }
}

/// Headers that carry credentials: removed, not refused, when a redirect takes a surrogate to another host.
fn is_auth_class(name: &HeaderName, set: &CredentialSet) -> bool {
    name == header::AUTHORIZATION
        || name == header::COOKIE
        || name.as_str().contains("token")
        || name.as_str().contains("api-key")
        || name.as_str().contains("apikey")
        || set.iter().any(|c| c.recipe.as_ref().and_then(Recipe::header_name) == Some(name))
}

/// Decisions are made once per credential per request.
struct Decisions<'a> {
    gate: &'a dyn Gate,
    set: &'a CredentialSet,
    cache: Vec<Option<Result<(), String>>>,
}

impl Decisions<'_> {
    fn decide(&mut self, i: usize) -> Result<(), String> {
        if self.cache[i].is_none() {
            self.cache[i] = Some(self.gate.decide(self.set.get(i)));
        }
        self.cache[i].clone().unwrap_or(Ok(()))
    }
}

/// Swaps surrogates and applies recipes in a request about to go to `target`. `target.path` and `target.query` are
/// what will be sent (the proxy builds the origin-form target from them). `after_redirect`: this request follows a
/// cross-host redirect of an injected request.
pub fn inject_request(
    set: &CredentialSet,
    target: &mut Target,
    headers: &mut HeaderMap,
    gate: &dyn Gate,
    after_redirect: bool,
) -> Result<Injected, Refusal> {
    let mut out = Injected::default();
    if set.is_empty() {
        return Ok(out);
    }
    let mut decisions = Decisions { gate, set, cache: vec![None; set.len()] };

    // Which query parameters carried which secret's surrogate, before anything is swapped (for recipes below).
    let query_carried: Vec<(String, usize)> = target
        .query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .flat_map(|(k, v)| set.find(v.as_bytes()).into_iter().map(move |(_, _, i)| (k.to_string(), i)))
        .collect();

    // 1. Surrogates in the URL.
    let path = replace_in(set, &mut decisions, target.path.as_bytes(), "URL path", Encode::Url, &mut out)?;
    if let Some(p) = path {
        target.path = String::from_utf8(p).map_err(|_| unrepresentable("URL path"))?;
    }
    if let Some(q) = target.query.clone()
        && let Some(q) = replace_in(set, &mut decisions, q.as_bytes(), "URL query", Encode::Url, &mut out)?
    {
        target.query = Some(String::from_utf8(q).map_err(|_| unrepresentable("URL query"))?);
    }

    // 2. Surrogates in headers. Which (header, credential) pairs carried a surrogate matters for recipes below.
    let mut carried: Vec<(HeaderName, usize)> = Vec::new();
    let mut strip: Vec<HeaderName> = Vec::new();
    let names: Vec<HeaderName> = headers.keys().cloned().collect();
    for name in names {
        let place = format!("header {name}");
        let values: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
        let mut rewritten = Vec::with_capacity(values.len());
        let mut changed = false;
        for value in values {
            for (_, _, i) in set.find(value.as_bytes()).into_iter().chain(basic_hits(set, &name, &value)) {
                carried.push((name.clone(), i));
            }
            let result = if is_basic(&name, &value) {
                replace_in_basic(set, &mut decisions, &value, &place, &mut out)
            } else {
                replace_in(set, &mut decisions, value.as_bytes(), &place, Encode::Header, &mut out)
                    .map(|o| o.map(|b| HeaderValue::from_bytes(&b)))
                    .and_then(|o| o.transpose().map_err(|_| unrepresentable(&place)))
            };
            match result {
                Ok(Some(v)) => {
                    let mut v = v;
                    v.set_sensitive(true);
                    rewritten.push(v);
                    changed = true;
                }
                Ok(None) => rewritten.push(value),
                Err(Refusal::WrongHost { .. }) if after_redirect && is_auth_class(&name, set) => {
                    strip.push(name.clone());
                    changed = true;
                    break;
                }
                Err(r) => return Err(r),
            }
        }
        if strip.contains(&name) {
            headers.remove(&name);
            out.stripped.push(name.to_string());
        } else if changed {
            headers.remove(&name);
            for v in rewritten {
                headers.append(name.clone(), v);
            }
        }
    }

    // 3. Recipes of secrets that may go here.
    for i in 0..set.len() {
        let cred = set.get(i);
        let Some(recipe) = &cred.recipe else { continue };
        if !gate.pinned_here(cred) || decisions.decide(i).is_err() {
            continue;
        }
        match recipe {
            Recipe::Header { .. } | Recipe::Basic { .. } => {
                let name = recipe.header_name().cloned().unwrap_or(header::AUTHORIZATION);
                if headers.contains_key(&name) {
                    // The caller's own header: fine only if it carried this secret's surrogate (now swapped).
                    if carried.iter().any(|(n, c)| *n == name && *c == i) {
                        continue;
                    }
                    return Err(Refusal::CallerAuth { secret: cred.secret.clone(), place: format!("header {name}") });
                }
                let mut bytes = Zeroizing::new(Vec::new());
                match recipe {
                    Recipe::Header { prefix, suffix, .. } => {
                        bytes.extend_from_slice(prefix.as_bytes());
                        bytes.extend_from_slice(cred.value());
                        bytes.extend_from_slice(suffix.as_bytes());
                    }
                    Recipe::Basic { username } => {
                        let mut plain = Zeroizing::new(username.as_bytes().to_vec());
                        plain.push(b':');
                        plain.extend_from_slice(cred.value());
                        bytes.extend_from_slice(b"Basic ");
                        bytes.extend_from_slice(B64.encode(&*plain).as_bytes());
                    }
                    Recipe::Query { .. } => {}
                }
                let mut v = HeaderValue::from_bytes(&bytes)
                    .map_err(|_| unrepresentable_one(cred, &format!("header {name}")))?;
                v.set_sensitive(true);
                headers.insert(name, v);
                out.used(&cred.secret);
            }
            Recipe::Query { param } => {
                let query = target.query.clone().unwrap_or_default();
                let present = query.split('&').any(|pair| pair.split('=').next() == Some(param.as_str()));
                if present {
                    if query_carried.iter().any(|(k, c)| k == param && *c == i) {
                        continue; // the caller put the surrogate there; it is swapped already
                    }
                    return Err(Refusal::CallerAuth {
                        secret: cred.secret.clone(),
                        place: format!("query parameter {param}"),
                    });
                }
                let pair = format!("{param}={}", *percent_encode(cred.value()));
                target.query = Some(if query.is_empty() { pair } else { format!("{query}&{pair}") });
                out.used(&cred.secret);
            }
        }
    }
    Ok(out)
}

/// A body with its surrogates swapped: `None` when there were none.
pub type SwappedBody = Option<Zeroizing<Vec<u8>>>;

/// Surrogates in a request body of a type some credential allows (`body_types`): swapped, escaped for the type.
/// Refuses as [`inject_request`] does for a surrogate that may not go here.
pub fn inject_body(
    set: &CredentialSet,
    content_type: &str,
    body: &[u8],
    gate: &dyn Gate,
) -> Result<(SwappedBody, Injected), Refusal> {
    let mut out = Injected::default();
    let mut decisions = Decisions { gate, set, cache: vec![None; set.len()] };
    let encode = body_encoding(content_type);
    let replaced = replace_in(set, &mut decisions, body, "request body", encode, &mut out)?;
    Ok((replaced.map(Zeroizing::new), out))
}

/// The media type of a `Content-Type` value, lowercased, without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Whether any credential wants bodies of this media type searched.
pub fn wants_body(set: &CredentialSet, content_type: &str) -> bool {
    let mt = media_type(content_type);
    !mt.is_empty() && set.iter().any(|c| c.body_types.contains(&mt))
}

#[derive(Clone, Copy)]
enum Encode {
    /// Percent-encode everything but unreserved characters.
    Url,
    /// As is (header values; checked afterwards).
    Header,
    /// Inside a JSON string.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// As is.
    Raw,
}

fn body_encoding(content_type: &str) -> Encode {
    let mt = media_type(content_type);
    if mt == "application/json" || mt.ends_with("+json") {
        Encode::Json
    } else if mt == "application/x-www-form-urlencoded" {
        Encode::Form
    } else {
        Encode::Raw
    }
}

/// Replaces every surrogate in `data` whose secret may go here; refuses on one that may not. `None`: no surrogate.
fn replace_in(
    set: &CredentialSet,
    decisions: &mut Decisions<'_>,
    data: &[u8],
    place: &str,
    encode: Encode,
    out: &mut Injected,
) -> Result<Option<Vec<u8>>, Refusal> {
    let hits = set.find(data);
    if hits.is_empty() {
        return Ok(None);
    }
    let mut result = Vec::with_capacity(data.len() + 64);
    let mut at = 0;
    for (start, end, i) in hits {
        let cred = set.get(i);
        decisions.decide(i).map_err(|reason| Refusal::WrongHost {
            secret: cred.secret.clone(),
            place: place.to_string(),
            reason,
        })?;
        result.extend_from_slice(&data[at..start]);
        match encode {
            Encode::Url => result.extend_from_slice(percent_encode(cred.value()).as_bytes()),
            Encode::Form => result.extend_from_slice(form_encode(cred.value()).as_bytes()),
            Encode::Json => {
                let text = std::str::from_utf8(cred.value()).map_err(|_| unrepresentable_one(cred, place))?;
                let quoted = Zeroizing::new(serde_json::to_string(text).unwrap_or_default());
                result.extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
            }
            Encode::Header => {
                if cred.value().iter().any(|b| *b == b'\r' || *b == b'\n' || *b == 0) {
                    return Err(unrepresentable_one(cred, place));
                }
                result.extend_from_slice(cred.value());
            }
            Encode::Raw => result.extend_from_slice(cred.value()),
        }
        out.used(&cred.secret);
        at = end;
    }
    result.extend_from_slice(&data[at..]);
    Ok(Some(result))
}

fn is_basic(name: &HeaderName, value: &HeaderValue) -> bool {
    name == header::AUTHORIZATION && value.as_bytes().len() > 6 && value.as_bytes()[..6].eq_ignore_ascii_case(b"basic ")
}

fn decode_basic(value: &HeaderValue) -> Option<Zeroizing<Vec<u8>>> {
    let b64 = std::str::from_utf8(&value.as_bytes()[6..]).ok()?.trim();
    B64.decode(b64).ok().map(Zeroizing::new)
}

fn basic_hits(set: &CredentialSet, name: &HeaderName, value: &HeaderValue) -> Vec<(usize, usize, usize)> {
    if !is_basic(name, value) {
        return Vec::new();
    }
    decode_basic(value).map(|plain| set.find(&plain)).unwrap_or_default()
}

/// `Authorization: Basic base64(user:surrogate)` (or a surrogate as the user): decode, swap, encode.
fn replace_in_basic(
    set: &CredentialSet,
    decisions: &mut Decisions<'_>,
    value: &HeaderValue,
    place: &str,
    out: &mut Injected,
) -> Result<Option<HeaderValue>, Refusal> {
    let Some(plain) = decode_basic(value) else { return Ok(None) };
    let Some(swapped) = replace_in(set, decisions, &plain, place, Encode::Raw, out)? else { return Ok(None) };
    let swapped = Zeroizing::new(swapped);
    let text = Zeroizing::new(format!("Basic {}", B64.encode(&*swapped)));
    HeaderValue::from_str(&text).map(Some).map_err(|_| unrepresentable(place))
}

fn unrepresentable(place: &str) -> Refusal {
    Refusal::Unrepresentable { secret: "(a secret)".into(), place: place.to_string() }
}

fn unrepresentable_one(cred: &Credential, place: &str) -> Refusal {
    Refusal::Unrepresentable { secret: cred.secret.clone(), place: place.to_string() }
}

/// Percent-encodes every byte but RFC 3986 unreserved characters.
fn percent_encode(value: &[u8]) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(value.len() * 3));
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// `application/x-www-form-urlencoded`: as [`percent_encode`], with `+` for space.
fn form_encode(value: &[u8]) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(value.len() * 3));
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._*".contains(&b) {
            s.push(b as char);
        } else if b == b' ' {
            s.push('+');
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &[u8] = b"ghp_realRealRealRealRealRealRealReal1234";
    const SURR: &str = "ghp_surrSurrSurrSurrSurrSurrSurrSurr5678";
    const OTHER_REAL: &[u8] = b"sk-otherotherotherother-0000";
    const OTHER_SURR: &str = "sk-stand-in-stand-in-stand-in";

    /// Allows exactly the secrets named, everywhere.
    struct Allow(Vec<&'static str>);

    impl Gate for Allow {
        fn pinned_here(&self, cred: &Credential) -> bool {
            self.0.contains(&cred.secret.as_str())
        }
        fn decide(&self, cred: &Credential) -> Result<(), String> {
            if self.0.contains(&cred.secret.as_str()) { Ok(()) } else { Err("not pinned here".into()) }
        }
    }

    fn set(recipe: Option<Recipe>) -> CredentialSet {
        let mut gh = Credential::new("GITHUB_TOKEN", REAL).surrogate(SURR);
        if let Some(r) = recipe {
            gh = gh.recipe(r);
        }
        CredentialSet::new(vec![gh, Credential::new("OPENAI", OTHER_REAL).surrogate(OTHER_SURR)]).unwrap()
    }

    fn target(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn a_surrogate_in_a_header_is_swapped_toward_an_allowed_host() {
        let s = set(None);
        let mut t = target("https://api.github.com/user");
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("token {SURR}")).unwrap());
        let done = inject_request(&s, &mut t, &mut h, &Allow(vec!["GITHUB_TOKEN"]), false).unwrap();
        assert_eq!(done.secrets, vec!["GITHUB_TOKEN".to_string()]);
        assert_eq!(h[header::AUTHORIZATION].as_bytes(), [b"token ".as_slice(), REAL].concat());
        assert!(h[header::AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn a_surrogate_toward_a_host_it_may_not_reach_is_refused() {
        let s = set(None);
        let mut t = target("https://evil.example/collect");
        let mut h = HeaderMap::new();
        h.insert("x-data", HeaderValue::from_str(&format!("k={SURR}")).unwrap());
        let err = inject_request(&s, &mut t, &mut h, &Allow(vec![]), false).unwrap_err();
        assert!(matches!(err, Refusal::WrongHost { ref secret, .. } if secret == "GITHUB_TOKEN"), "{err:?}");
        // Nothing was written into the request.
        assert_eq!(h["x-data"].to_str().unwrap(), format!("k={SURR}"));
    }

    #[test]
    fn surrogates_in_path_and_query_are_swapped_percent_encoded() {
        let c = Credential::new("K", b"a/b c+d=e&f").surrogate("surrogate-0123456789");
        let s = CredentialSet::new(vec![c]).unwrap();
        let mut t = target("https://api.example.com/v1/surrogate-0123456789/x?key=surrogate-0123456789&z=1");
        let mut h = HeaderMap::new();
        inject_request(&s, &mut t, &mut h, &Allow(vec!["K"]), false).unwrap();
        assert_eq!(t.path, "/v1/a%2Fb%20c%2Bd%3De%26f/x");
        assert_eq!(t.query.as_deref(), Some("key=a%2Fb%20c%2Bd%3De%26f&z=1"));
    }

    #[test]
    fn basic_credentials_are_decoded_swapped_and_reencoded() {
        let s = set(None);
        let mut t = target("https://api.github.com/");
        let mut h = HeaderMap::new();
        let sent = format!("Basic {}", B64.encode(format!("me:{SURR}")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&sent).unwrap());
        inject_request(&s, &mut t, &mut h, &Allow(vec!["GITHUB_TOKEN"]), false).unwrap();
        let want = format!("Basic {}", B64.encode([b"me:".as_slice(), REAL].concat()));
        assert_eq!(h[header::AUTHORIZATION].to_str().unwrap(), want);
    }

    #[test]
    fn a_basic_surrogate_toward_a_wrong_host_is_refused() {
        let s = set(None);
        let mut t = target("https://evil.example/");
        let mut h = HeaderMap::new();
        let sent = format!("Basic {}", B64.encode(format!("me:{SURR}")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&sent).unwrap());
        assert!(matches!(inject_request(&s, &mut t, &mut h, &Allow(vec![]), false), Err(Refusal::WrongHost { .. })));
    }

    #[test]
    fn a_header_recipe_is_applied_and_a_caller_header_is_refused() {
        let s = set(Some(Recipe::header("Authorization", "Bearer {value}").unwrap()));
        let gate = Allow(vec!["GITHUB_TOKEN"]);
        let mut t = target("https://api.github.com/");
        let mut h = HeaderMap::new();
        let done = inject_request(&s, &mut t, &mut h, &gate, false).unwrap();
        assert_eq!(done.secrets, vec!["GITHUB_TOKEN".to_string()]);
        assert_eq!(h[header::AUTHORIZATION].as_bytes(), [b"Bearer ".as_slice(), REAL].concat());

        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer my-own-token"));
        let err = inject_request(&s, &mut t, &mut h, &gate, false).unwrap_err();
        assert!(matches!(err, Refusal::CallerAuth { .. }), "{err:?}");

        // The surrogate in the recipe's header is the caller doing it right.
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {SURR}")).unwrap());
        inject_request(&s, &mut t, &mut h, &gate, false).unwrap();
        assert_eq!(h[header::AUTHORIZATION].as_bytes(), [b"Bearer ".as_slice(), REAL].concat());
    }

    #[test]
    fn a_recipe_is_not_applied_where_the_secret_may_not_go() {
        let s = set(Some(Recipe::header("Authorization", "Bearer {}").unwrap()));
        let mut t = target("https://elsewhere.example/");
        let mut h = HeaderMap::new();
        let done = inject_request(&s, &mut t, &mut h, &Allow(vec![]), false).unwrap();
        assert!(done.is_empty());
        assert!(h.is_empty());
    }

    #[test]
    fn query_and_basic_recipes() {
        let s = set(Some(Recipe::query("api_key").unwrap()));
        let gate = Allow(vec!["GITHUB_TOKEN"]);
        let mut t = target("https://api.github.com/x?a=1");
        inject_request(&s, &mut t, &mut HeaderMap::new(), &gate, false).unwrap();
        assert_eq!(t.query.as_deref(), Some(&*format!("a=1&api_key={}", String::from_utf8_lossy(REAL))));
        let mut t = target("https://api.github.com/x?api_key=mine");
        assert!(matches!(
            inject_request(&s, &mut t, &mut HeaderMap::new(), &gate, false),
            Err(Refusal::CallerAuth { .. })
        ));

        let s = set(Some(Recipe::basic("bot").unwrap()));
        let mut t = target("https://api.github.com/");
        let mut h = HeaderMap::new();
        inject_request(&s, &mut t, &mut h, &gate, false).unwrap();
        let want = format!("Basic {}", B64.encode([b"bot:".as_slice(), REAL].concat()));
        assert_eq!(h[header::AUTHORIZATION].to_str().unwrap(), want);
    }

    #[test]
    fn after_a_cross_host_redirect_auth_headers_with_surrogates_are_stripped() {
        let s = set(None);
        let mut t = target("https://objects.example/blob");
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("token {SURR}")).unwrap());
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        let done = inject_request(&s, &mut t, &mut h, &Allow(vec![]), true).unwrap();
        assert_eq!(done.stripped, vec!["authorization".to_string()]);
        assert!(!h.contains_key(header::AUTHORIZATION));
        assert!(h.contains_key(header::ACCEPT));
        // A surrogate outside auth headers is still refused after a redirect.
        let mut h = HeaderMap::new();
        h.insert("x-note", HeaderValue::from_str(SURR).unwrap());
        assert!(inject_request(&s, &mut t, &mut h, &Allow(vec![]), true).is_err());
    }

    #[test]
    fn a_value_with_a_newline_is_never_written_into_a_header() {
        let c = Credential::new("K", b"line1\r\nX-Evil: 1").surrogate("surrogate-0123456789");
        let s = CredentialSet::new(vec![c]).unwrap();
        let mut t = target("https://api.example.com/");
        let mut h = HeaderMap::new();
        h.insert("x-key", HeaderValue::from_static("surrogate-0123456789"));
        let err = inject_request(&s, &mut t, &mut h, &Allow(vec!["K"]), false).unwrap_err();
        assert!(matches!(err, Refusal::Unrepresentable { .. }));
        assert_eq!(h["x-key"], "surrogate-0123456789");
    }

    #[test]
    fn bodies_are_swapped_with_the_escaping_of_their_type() {
        let c = Credential::new("K", b"va\"l ue").surrogate("surrogate-0123456789").body_types(&["application/json"]);
        let s = CredentialSet::new(vec![c]).unwrap();
        assert!(wants_body(&s, "application/json; charset=utf-8"));
        assert!(!wants_body(&s, "text/plain"));
        let (body, done) =
            inject_body(&s, "application/json", br#"{"k":"surrogate-0123456789"}"#, &Allow(vec!["K"])).unwrap();
        assert_eq!(&**body.unwrap(), br#"{"k":"va\"l ue"}"#);
        assert_eq!(done.secrets, vec!["K".to_string()]);
        let (body, _) =
            inject_body(&s, "application/x-www-form-urlencoded", b"k=surrogate-0123456789", &Allow(vec!["K"])).unwrap();
        assert_eq!(&**body.unwrap(), b"k=va%22l+ue");
        assert!(inject_body(&s, "application/json", b"surrogate-0123456789", &Allow(vec![])).is_err());
    }

    #[test]
    fn sets_refuse_short_and_shared_surrogates() {
        assert!(CredentialSet::new(vec![Credential::new("A", b"x").surrogate("short")]).is_err());
        let dup = vec![
            Credential::new("A", b"1").surrogate("same-surrogate-1"),
            Credential::new("B", b"2").surrogate("same-surrogate-1"),
        ];
        assert!(CredentialSet::new(dup).is_err());
        assert!(CredentialSet::new(vec![Credential::new("A", b"1"), Credential::new("A", b"2")]).is_err());
    }

    #[test]
    fn recipes_refuse_framing_headers_and_bad_templates() {
        assert!(Recipe::header("Host", "{value}").is_err());
        assert!(Recipe::header("Content-Length", "{value}").is_err());
        assert!(Recipe::header("X-Key", "no placeholder").is_err());
        assert!(Recipe::header("X-Key", "{value}{value}").is_err());
        assert!(Recipe::header("Bad Name", "{value}").is_err());
        assert!(Recipe::query("a&b").is_err());
        assert!(Recipe::basic("a:b").is_err());
        assert_eq!(Recipe::header("X-Key", "k={}").unwrap().describe(), "header x-key: k={value}");
    }

    #[test]
    fn debug_shows_no_value() {
        let c = Credential::new("K", REAL).surrogate(SURR);
        let shown = format!("{c:?}");
        assert!(!shown.contains(std::str::from_utf8(REAL).unwrap()) && !shown.contains(SURR), "{shown}");
    }
}
