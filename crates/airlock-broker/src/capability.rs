//! The typed capability API: a tool asks for `POST /v1/capabilities/{provider}/{capability}` with a small JSON
//! envelope, and the broker builds the upstream request itself.
//!
//! Why this exists beside the plain egress proxy: through the proxy a tool writes the whole request, host included,
//! and policy has to recognise every spelling of everything. Here the tool only *fills in* a request whose shape an
//! operator declared. The host always comes from the provider definition, never from the call; the path must fall
//! under one of the capability's path prefixes; the method must be one it lists; the caller cannot write a raw query
//! string, framing or routing headers, or any header that carries a credential. The request this module plans then
//! goes through the broker's ordinary pipeline (policy, SSRF defence, credential injection by the provider's recipe,
//! leak scanning, audit), so a capability never widens what policy allows: it narrows what a tool can ask for.
//!
//! Responses can be filtered too: a capability may name JSON keys (`client_secret`) that are removed at any depth
//! before the body reaches the tool ([`filter_response`]). When a capability has such a list, a response that is not
//! JSON is refused rather than passed through unfiltered.
//!
//! ## The envelope
//! ```json
//! {"method": "POST", "path": "/v1/chat/completions", "query": {"a": "1"}, "headers": {"accept": "application/json"},
//!  "body": {"model": "gpt-4o"}}
//! ```
//! `method` and `path` are required. `query` is an object or a list of `[name, value]` pairs (values: strings,
//! numbers or booleans); the broker form-encodes it. At most one of `body` (any JSON value, sent as
//! `application/json` unless the caller sets `content-type`), `body_text` (sent as `text/plain; charset=utf-8` by
//! default) and `body_base64` (`application/octet-stream` by default). Unknown fields are refused.
//!
//! ## Paths
//! [`normalize_path`] admits one spelling per path: no dot segments (also not `..;x`), no empty segments, no
//! backslash, `?`, `#`, control or non-ASCII characters, and no escapes that decode to `.`, `/`, `\`, `%`, NUL or a
//! control character (so double encoding, `%252e`, is refused too). Other escapes are kept with uppercase hex;
//! characters that are not allowed raw in a path (space, `"`, `<`, `>`, `` ` ``, `{`, `}`, `|`, `^`, `[`, `]`) are
//! percent-encoded. Capability paths are prefixes matched segment by segment; a `*` segment matches exactly one
//! non-empty segment.
//!
//! ## Built-in providers
//! | provider | base URL | secret | credential | fixed headers |
//! |---|---|---|---|---|
//! | `openai` | `https://api.openai.com` | `OPENAI_API_KEY` | `Authorization: Bearer` | |
//! | `anthropic` | `https://api.anthropic.com` | `ANTHROPIC_API_KEY` | `x-api-key` | `anthropic-version: 2023-06-01` |
//! | `github` | `https://api.github.com` | `GITHUB_TOKEN` | `Authorization: Bearer` | see (1) |
//! | `slack` | `https://slack.com` | `SLACK_BOT_TOKEN` | `Authorization: Bearer` | |
//! | `stripe` | `https://api.stripe.com` | `STRIPE_SECRET_KEY` | `Authorization: Bearer` | |
//!
//! (1) `accept: application/vnd.github+json` and `x-github-api-version: 2022-11-28`.
//!
//! | capability | methods | path prefixes | response blocklist |
//! |---|---|---|---|
//! | `openai/chat-completions` | POST | `/v1/chat/completions` | |
//! | `openai/responses` | GET, POST | `/v1/responses` (so `/v1/responses/*` too) | |
//! | `openai/embeddings` | POST | `/v1/embeddings` | |
//! | `openai/models` | GET | `/v1/models` | |
//! | `anthropic/messages` | POST | `/v1/messages` | |
//! | `anthropic/count-tokens` | POST | `/v1/messages/count_tokens` | |
//! | `anthropic/models` | GET | `/v1/models` | |
//! | `github/repos-read` | GET | `/repos/*/*` | |
//! | `github/issues` | GET, POST, PATCH | `/repos/*/*/issues` | |
//! | `github/pulls` | GET, POST | `/repos/*/*/pulls` | |
//! | `github/user` | GET | `/user` | |
//! | `slack/chat-post` | POST | `/api/chat.postMessage` | |
//! | `slack/conversations-list` | GET | `/api/conversations.list` | |
//! | `slack/conversations-history` | GET | `/api/conversations.history` | |
//! | `stripe/customers-read` | GET | `/v1/customers` | |
//! | `stripe/payment-intents-read` | GET | `/v1/payment_intents` | `client_secret` |
//! | `stripe/balance` | GET | `/v1/balance` | |
//!
//! Each built-in secret is pinned to its provider's host. A user provider (`[providers.NAME]` in `airlock.toml`,
//! [`airlock_policy::providers::ProviderConfig`]) may reuse neither a built-in name nor a built-in secret: otherwise a
//! config line could send `OPENAI_API_KEY` somewhere other than OpenAI.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use airlock_policy::config::InjectRecipe;
use airlock_policy::normalize::{HostPattern, HostPatternKind, Target};
use airlock_policy::providers::{CapabilityConfig, ProviderConfig};

use crate::inject::Recipe;

/// Longest path a call may name, before and after encoding.
pub const MAX_PATH_LEN: usize = 2048;
/// Most headers a call may set.
pub const MAX_CALLER_HEADERS: usize = 32;
/// Most query parameters a call may set.
pub const MAX_QUERY_PARAMS: usize = 256;
/// Longest header value a call (or a provider) may set.
pub const MAX_HEADER_VALUE_LEN: usize = 8192;

/// Providers by name, and which hosts each provider's secret is pinned to.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    providers: BTreeMap<String, Provider>,
    /// Secret name to the union of the hosts of every provider that uses it.
    pins: BTreeMap<String, Vec<HostPattern>>,
}

/// One upstream API: where calls go, with which credential, and what each capability reaches.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    /// `scheme://host[:port]`, canonical, no path.
    pub base_url: String,
    /// Where the secret may go; always admits `base_url`'s host.
    pub hosts: Vec<HostPattern>,
    pub secret: String,
    pub recipe: Recipe,
    /// Added to every call; a caller can neither set nor override them.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub capabilities: BTreeMap<String, Capability>,
    pub builtin: bool,
}

/// What one capability admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub methods: Vec<Method>,
    /// Normalised path prefixes without a trailing slash (`/` itself stays `/`); `*` segments match one segment.
    pub paths: Vec<String>,
    /// JSON keys removed from responses at any depth.
    pub response_blocklist: Vec<String>,
    pub description: String,
}

/// A validated call, ready for the broker's pipeline.
#[derive(Clone)]
pub struct Plan {
    pub method: Method,
    /// Absolute: base URL, normalised path and the encoded query. The query may carry data: log
    /// [`Plan::url_without_query`] instead.
    pub url: String,
    /// The caller's permitted headers, the provider's fixed headers and the content type.
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The secret to inject, and how.
    pub secret: String,
    pub recipe: Recipe,
    pub response_blocklist: Arc<[String]>,
    /// `provider/capability`, for logs and the audit.
    pub capability: String,
}

impl fmt::Debug for Plan {
    /// Header names and the body's size only: values and query can carry data the log should not hold.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("capability", &self.capability)
            .field("method", &self.method)
            .field("url", &self.url_without_query())
            .field("headers", &self.headers.keys().map(HeaderName::as_str).collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("secret", &self.secret)
            .field("recipe", &self.recipe)
            .finish()
    }
}

impl Plan {
    /// The URL without its query, fit for logs.
    pub fn url_without_query(&self) -> &str {
        self.url.split_once('?').map_or(&self.url, |(u, _)| u)
    }
}

/// Why a call was refused. Messages name headers, methods and the capability's allowed paths, never the caller's
/// path, query or header values (some APIs put keys there).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
    #[error("provider {provider} has no capability {capability:?} (it has: {})", available.join(", "))]
    UnknownCapability { provider: String, capability: String, available: Vec<String> },
    #[error("invalid call envelope: {0}")]
    Envelope(String),
    #[error("capability {capability} does not allow method {method} (it allows {})", allowed.join(", "))]
    Method { capability: String, method: String, allowed: Vec<String> },
    #[error("invalid path: {0}")]
    Path(String),
    #[error("capability {capability} does not reach this path (it allows {})", allowed.join(", "))]
    PathNotAllowed { capability: String, allowed: Vec<String> },
    #[error("header {name:?} refused: {reason}")]
    Header { name: String, reason: String },
    #[error("invalid query: {0}")]
    Query(String),
    #[error("invalid body: {0}")]
    Body(String),
    /// The response could not be filtered as the capability requires.
    #[error("response withheld: {0}")]
    Response(String),
}

impl CapabilityError {
    /// 404 unknown provider or capability, 405 method, 403 path outside the capability, 502 unfilterable response,
    /// 400 everything else (a malformed call).
    pub fn status(&self) -> StatusCode {
        match self {
            CapabilityError::UnknownProvider(_) | CapabilityError::UnknownCapability { .. } => StatusCode::NOT_FOUND,
            CapabilityError::Method { .. } => StatusCode::METHOD_NOT_ALLOWED,
            CapabilityError::PathNotAllowed { .. } => StatusCode::FORBIDDEN,
            CapabilityError::Response(_) => StatusCode::BAD_GATEWAY,
            CapabilityError::Envelope(_)
            | CapabilityError::Path(_)
            | CapabilityError::Header { .. }
            | CapabilityError::Query(_)
            | CapabilityError::Body(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// A short stable word for `X-Airlock-Deny` and the audit: `capability` (unknown provider or capability),
    /// `envelope` (envelope, header, query or body), `method`, `path`, or `response-filter`.
    pub fn kind(&self) -> &'static str {
        match self {
            CapabilityError::UnknownProvider(_) | CapabilityError::UnknownCapability { .. } => "capability",
            CapabilityError::Envelope(_)
            | CapabilityError::Header { .. }
            | CapabilityError::Query(_)
            | CapabilityError::Body(_) => "envelope",
            CapabilityError::Method { .. } => "method",
            CapabilityError::Path(_) | CapabilityError::PathNotAllowed { .. } => "path",
            CapabilityError::Response(_) => "response-filter",
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Built-in providers

struct BuiltinCap {
    name: &'static str,
    methods: &'static [&'static str],
    paths: &'static [&'static str],
    blocklist: &'static [&'static str],
    description: &'static str,
}

struct BuiltinProvider {
    name: &'static str,
    base_url: &'static str,
    secret: &'static str,
    header: &'static str,
    format: &'static str,
    headers: &'static [(&'static str, &'static str)],
    caps: &'static [BuiltinCap],
}

const fn cap(
    name: &'static str,
    methods: &'static [&'static str],
    paths: &'static [&'static str],
    description: &'static str,
) -> BuiltinCap {
    BuiltinCap { name, methods, paths, blocklist: &[], description }
}

const BEARER: &str = "Bearer {value}";

const BUILTINS: &[BuiltinProvider] = &[
    BuiltinProvider {
        name: "openai",
        base_url: "https://api.openai.com",
        secret: "OPENAI_API_KEY",
        header: "Authorization",
        format: BEARER,
        headers: &[],
        caps: &[
            cap("chat-completions", &["POST"], &["/v1/chat/completions"], "Create a chat completion"),
            cap("responses", &["GET", "POST"], &["/v1/responses"], "Create a response, or fetch one by id"),
            cap("embeddings", &["POST"], &["/v1/embeddings"], "Create embeddings"),
            cap("models", &["GET"], &["/v1/models"], "List or describe models"),
        ],
    },
    BuiltinProvider {
        name: "anthropic",
        base_url: "https://api.anthropic.com",
        secret: "ANTHROPIC_API_KEY",
        header: "x-api-key",
        format: "{value}",
        headers: &[("anthropic-version", "2023-06-01")],
        caps: &[
            cap("messages", &["POST"], &["/v1/messages"], "Create a message"),
            cap("count-tokens", &["POST"], &["/v1/messages/count_tokens"], "Count a message's tokens"),
            cap("models", &["GET"], &["/v1/models"], "List or describe models"),
        ],
    },
    BuiltinProvider {
        name: "github",
        base_url: "https://api.github.com",
        secret: "GITHUB_TOKEN",
        header: "Authorization",
        format: BEARER,
        headers: &[("accept", "application/vnd.github+json"), ("x-github-api-version", "2022-11-28")],
        caps: &[
            cap("repos-read", &["GET"], &["/repos/*/*"], "Read repositories"),
            cap("issues", &["GET", "POST", "PATCH"], &["/repos/*/*/issues"], "Read, open and edit issues"),
            cap("pulls", &["GET", "POST"], &["/repos/*/*/pulls"], "Read and open pull requests"),
            cap("user", &["GET"], &["/user"], "The authenticated user"),
        ],
    },
    BuiltinProvider {
        name: "slack",
        base_url: "https://slack.com",
        secret: "SLACK_BOT_TOKEN",
        header: "Authorization",
        format: BEARER,
        headers: &[],
        caps: &[
            cap("chat-post", &["POST"], &["/api/chat.postMessage"], "Post a message"),
            cap("conversations-list", &["GET"], &["/api/conversations.list"], "List conversations"),
            cap("conversations-history", &["GET"], &["/api/conversations.history"], "Read a conversation's history"),
        ],
    },
    BuiltinProvider {
        name: "stripe",
        base_url: "https://api.stripe.com",
        secret: "STRIPE_SECRET_KEY",
        header: "Authorization",
        format: BEARER,
        headers: &[],
        caps: &[
            cap("customers-read", &["GET"], &["/v1/customers"], "List or read customers"),
            BuiltinCap {
                name: "payment-intents-read",
                methods: &["GET"],
                paths: &["/v1/payment_intents"],
                // The client secret lets anyone holding it confirm the payment from a browser.
                blocklist: &["client_secret"],
                description: "List or read payment intents (client secrets removed)",
            },
            cap("balance", &["GET"], &["/v1/balance"], "Read the account balance"),
        ],
    },
];

fn builtin_config(b: &BuiltinProvider) -> ProviderConfig {
    let strings = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    ProviderConfig {
        base_url: b.base_url.to_string(),
        hosts: Vec::new(),
        secret: b.secret.to_string(),
        inject: Some(InjectRecipe {
            header: Some(b.header.to_string()),
            format: Some(b.format.to_string()),
            query: None,
        }),
        headers: b.headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        capabilities: b
            .caps
            .iter()
            .map(|c| {
                let config = CapabilityConfig {
                    methods: strings(c.methods),
                    paths: strings(c.paths),
                    response_blocklist: strings(c.blocklist),
                    description: Some(c.description.to_string()),
                };
                (c.name.to_string(), config)
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The registry

impl Registry {
    /// openai, anthropic, github, slack and stripe; see the module documentation.
    pub fn builtin() -> Registry {
        let mut reg = Registry::default();
        for b in BUILTINS {
            // Built through the same validation as user providers; a unit test proves the table passes it.
            let p = Provider::from_config(b.name, &builtin_config(b), true)
                .unwrap_or_else(|e| panic!("built-in provider {}: {e}", b.name));
            reg.insert(p);
        }
        reg
    }

    /// Adds user providers from config. A user provider may not reuse a built-in provider's name, nor claim a secret
    /// a built-in provider pins: built-in pins are a security property, and a config line must not be able to send
    /// `OPENAI_API_KEY` anywhere but OpenAI.
    pub fn with_config(mut self, providers: &BTreeMap<String, ProviderConfig>) -> Result<Registry, String> {
        for (name, config) in providers {
            if let Some(existing) = self.providers.get(name) {
                return Err(if existing.builtin {
                    format!("provider {name}: a built-in provider has this name; choose another name")
                } else {
                    format!("provider {name} is defined twice")
                });
            }
            // Case-insensitively, so that a near-identical name cannot be mistaken for the built-in one either.
            if let Some(b) =
                self.providers.values().find(|p| p.builtin && p.secret.eq_ignore_ascii_case(&config.secret))
            {
                let hosts: Vec<String> = b.hosts.iter().map(ToString::to_string).collect();
                return Err(format!(
                    "provider {name}: secret {} is pinned by the built-in provider {} to {}; a user provider must use \
                     a secret of its own",
                    config.secret,
                    b.name,
                    hosts.join(", ")
                ));
            }
            let p = Provider::from_config(name, config, false).map_err(|e| format!("provider {name}: {e}"))?;
            self.insert(p);
        }
        Ok(self)
    }

    fn insert(&mut self, p: Provider) {
        let pins = self.pins.entry(p.secret.clone()).or_default();
        for h in &p.hosts {
            if !pins.contains(h) {
                pins.push(h.clone());
            }
        }
        self.providers.insert(p.name.clone(), p);
    }

    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.get(name)
    }

    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    /// The hosts a secret of this name is pinned to by the registry (None: the registry does not know this name).
    /// When several providers share a secret, the union of their hosts.
    pub fn pins_for_secret(&self, secret: &str) -> Option<&[HostPattern]> {
        self.pins.get(secret).map(Vec::as_slice)
    }

    /// Validates a call and builds the upstream request. Checks run in this order: provider, capability, envelope,
    /// path (malformed: 400; outside the capability: 403), method (405), query, headers, body.
    pub fn plan(&self, provider: &str, capability: &str, envelope: &[u8]) -> Result<Plan, CapabilityError> {
        let p = self.providers.get(provider).ok_or_else(|| CapabilityError::UnknownProvider(provider.to_string()))?;
        let c = p.capabilities.get(capability).ok_or_else(|| CapabilityError::UnknownCapability {
            provider: p.name.clone(),
            capability: capability.to_string(),
            available: p.capabilities.keys().cloned().collect(),
        })?;
        let full_name = format!("{}/{capability}", p.name);
        // serde also reads a struct from a JSON array (fields by position); the envelope is an object, by name.
        if envelope.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(CapabilityError::Envelope("the envelope must be a JSON object".into()));
        }
        let env: Envelope = serde_json::from_slice(envelope).map_err(|e| CapabilityError::Envelope(e.to_string()))?;

        let method = parse_method(&env.method).map_err(CapabilityError::Envelope)?;
        let path = normalize_path(&env.path)?;
        if !c.allows_path(&path) {
            return Err(CapabilityError::PathNotAllowed { capability: full_name, allowed: c.paths.clone() });
        }
        if !c.methods.contains(&method) {
            return Err(CapabilityError::Method {
                capability: full_name,
                method: method.to_string(),
                allowed: c.methods.iter().map(ToString::to_string).collect(),
            });
        }

        let query = build_query(env.query, &p.recipe)?;
        let mut headers = caller_headers(&env.headers, p)?;
        let (body, default_type) = build_body(env.body, env.body_text, env.body_base64)?;
        if let Some(t) = default_type
            && !headers.contains_key(header::CONTENT_TYPE)
        {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(t));
        }
        for (name, value) in &p.headers {
            headers.insert(name.clone(), value.clone());
        }

        let mut url = format!("{}{path}", p.base_url);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        Ok(Plan {
            method,
            url,
            headers,
            body,
            secret: p.secret.clone(),
            recipe: p.recipe.clone(),
            response_blocklist: c.response_blocklist.clone().into(),
            capability: full_name,
        })
    }
}

impl Provider {
    /// Validates one provider definition (built-in or from config).
    fn from_config(name: &str, config: &ProviderConfig, builtin: bool) -> Result<Provider, String> {
        check_name(name, "provider")?;
        let (base_url, base) = parse_base_url(&config.base_url)?;

        let hosts = if config.hosts.is_empty() {
            let authority =
                if base.default_port { base.host.to_string() } else { format!("{}:{}", base.host, base.port) };
            vec![HostPattern::parse(&authority).map_err(|e| e.to_string())?]
        } else {
            let mut hosts = Vec::new();
            for h in &config.hosts {
                let pattern = HostPattern::parse(h).map_err(|e| format!("hosts: {e}"))?;
                if pattern.host == HostPatternKind::Any {
                    return Err("hosts: \"*\" would let the secret go anywhere; name the provider's hosts".into());
                }
                hosts.push(pattern);
            }
            if !hosts.iter().any(|h| h.matches(&base.host, base.port, base.default_port)) {
                return Err(format!(
                    "hosts must admit the host of base_url ({base_url}), or the secret never reaches it"
                ));
            }
            hosts
        };

        airlock_vault::SecretId::new(airlock_vault::DEFAULT_WORKSPACE, &config.secret)
            .map_err(|e| format!("secret: {e}"))?;

        let recipe = match &config.inject {
            None => Recipe::header("Authorization", BEARER),
            Some(r) => Recipe::from_config(r),
        }
        .map_err(|e| format!("inject: {e}"))?;
        let recipe_header = recipe.header_name().cloned();
        if let Some(h) = &recipe_header
            && let Some(why) = framing_or_routing(h.as_str())
        {
            return Err(format!("inject: header {h} {why}"));
        }

        let mut headers = Vec::new();
        for (raw_name, raw_value) in &config.headers {
            let (name, value) = header_pair(raw_name, raw_value).map_err(|e| format!("headers: {e}"))?;
            // Credentials belong in the vault, not in airlock.toml; framing and routing are the broker's.
            if let Some(why) = forbidden_header(name.as_str()) {
                return Err(format!("headers: {name} {why}"));
            }
            if recipe_header.as_ref() == Some(&name) {
                return Err(format!("headers: {name} is where the provider's secret is injected"));
            }
            if headers.iter().any(|(n, _)| *n == name) {
                return Err(format!("headers: {name} is given twice"));
            }
            headers.push((name, value));
        }
        if headers.len() > MAX_CALLER_HEADERS {
            return Err(format!("headers: at most {MAX_CALLER_HEADERS} fixed headers"));
        }

        if config.capabilities.is_empty() {
            return Err("defines no capabilities".into());
        }
        let mut capabilities = BTreeMap::new();
        for (cap_name, c) in &config.capabilities {
            check_name(cap_name, "capability")?;
            let built = Capability::from_config(c).map_err(|e| format!("capability {cap_name}: {e}"))?;
            capabilities.insert(cap_name.clone(), built);
        }

        Ok(Provider {
            name: name.to_string(),
            base_url,
            hosts,
            secret: config.secret.clone(),
            recipe,
            headers,
            capabilities,
            builtin,
        })
    }

    pub fn capability(&self, name: &str) -> Option<&Capability> {
        self.capabilities.get(name)
    }
}

impl Capability {
    fn from_config(c: &CapabilityConfig) -> Result<Capability, String> {
        if c.methods.is_empty() {
            return Err("lists no methods".into());
        }
        let mut methods = Vec::new();
        for m in &c.methods {
            let method = parse_method(m)?;
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        if c.paths.is_empty() {
            return Err("lists no paths".into());
        }
        let mut paths = Vec::new();
        for p in &c.paths {
            let path = normalize_path(p).map_err(|e| format!("path {p:?}: {e}"))?;
            if path[1..].split('/').any(|seg| seg.contains('*') && seg != "*") {
                return Err(format!("path {p:?}: '*' must be a whole segment"));
            }
            let path = match path.strip_suffix('/') {
                Some(trimmed) if !trimmed.is_empty() => trimmed.to_string(),
                _ => path,
            };
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
        if let Some(bad) = c.response_blocklist.iter().find(|k| k.is_empty()) {
            return Err(format!("response_blocklist: empty key {bad:?}"));
        }
        Ok(Capability {
            methods,
            paths,
            response_blocklist: c.response_blocklist.clone(),
            description: c.description.clone().unwrap_or_default(),
        })
    }

    /// Whether a normalised path falls under one of this capability's prefixes.
    pub fn allows_path(&self, path: &str) -> bool {
        self.paths.iter().any(|pattern| path_matches(path, pattern))
    }
}

/// `[a-z0-9][a-z0-9-]{0,62}`: safe in a URL segment, a log and a header, with one spelling.
fn check_name(name: &str, what: &str) -> Result<(), String> {
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid {what} name {name:?}: use a-z, 0-9 and '-', starting with a letter or digit, at most 63"))
    }
}

/// `scheme://host[:port]` in canonical form, refusing a path, query, fragment or userinfo.
fn parse_base_url(raw: &str) -> Result<(String, Target), String> {
    if raw.contains(['?', '#']) {
        return Err("base_url must not have a query or fragment".into());
    }
    let t = Target::parse(raw).map_err(|e| format!("base_url: {e}"))?;
    if t.path != "/" {
        return Err("base_url must not have a path; put the path in each capability's paths".into());
    }
    let mut s = format!("{}://{}", t.scheme, t.host);
    if !t.default_port {
        s.push_str(&format!(":{}", t.port));
    }
    Ok((s, t))
}

/// Uppercased, an HTTP token; CONNECT, TRACE and TRACK are never a capability's business.
pub fn parse_method(raw: &str) -> Result<Method, String> {
    let upper = raw.to_ascii_uppercase();
    if upper.is_empty() || upper.len() > 32 || !upper.bytes().all(is_tchar) {
        return Err(format!("invalid method {raw:?}"));
    }
    if matches!(upper.as_str(), "CONNECT" | "TRACE" | "TRACK") {
        return Err(format!("method {upper} is not available through capabilities"));
    }
    Method::from_bytes(upper.as_bytes()).map_err(|_| format!("invalid method {raw:?}"))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

// ---------------------------------------------------------------------------------------------------------------
// Paths

/// One spelling per path; see the module documentation for what is refused and what is encoded.
pub fn normalize_path(raw: &str) -> Result<String, CapabilityError> {
    let bad = |why: &str| Err(CapabilityError::Path(why.to_string()));
    if raw.contains("://") {
        return bad("an absolute URL is not a path: the host comes from the provider, never from the call");
    }
    if !raw.starts_with('/') {
        return bad("the path must start with '/' (the host comes from the provider, never from the call)");
    }
    if raw.starts_with("//") {
        return bad("a path starting with \"//\" names a host: the host comes from the provider, never from the call");
    }
    if raw.len() > MAX_PATH_LEN {
        return Err(CapabilityError::Path(format!("longer than {MAX_PATH_LEN} bytes")));
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len() + 16);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            0x80.. => return bad("non-ASCII character: percent-encode it as UTF-8"),
            0x00..=0x1f | 0x7f => return bad("control character"),
            b'\\' => return bad("backslash: some servers read it as '/'"),
            b'?' => return bad("'?' in the path: put parameters in the envelope's \"query\""),
            b'#' => return bad("'#' in the path"),
            b'%' => {
                let hex = |x: Option<&u8>| x.and_then(|c| (*c as char).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
                    return bad("'%' must start an escape of two hex digits");
                };
                let decoded = (hi * 16 + lo) as u8;
                if matches!(decoded, b'.' | b'/' | b'\\' | b'%' | 0x00..=0x1f | 0x7f) {
                    // Servers disagree on whether these are decoded before routing: one spelling, one meaning.
                    return bad("an escape of '.', '/', '\\', '%' or a control character");
                }
                out.push_str(&format!("%{decoded:02X}"));
                i += 3;
                continue;
            }
            b' ' | b'"' | b'<' | b'>' | b'`' | b'{' | b'}' | b'|' | b'^' | b'[' | b']' => {
                out.push_str(&format!("%{b:02X}"));
            }
            _ => out.push(b as char),
        }
        i += 1;
    }
    let segments: Vec<&str> = out[1..].split('/').collect();
    let last = segments.len() - 1;
    for (n, seg) in segments.iter().enumerate() {
        // A trailing slash is meaningful and kept; "//" anywhere else is merged by some servers and not others.
        if seg.is_empty() && n != last {
            return bad("empty segment (\"//\")");
        }
        // `..;x` is `..` to some servers (Tomcat); a segment of dots only means nothing good elsewhere.
        let base = seg.split(';').next().unwrap_or_default();
        if !base.is_empty() && base.bytes().all(|c| c == b'.') {
            return bad("dot segment ('.' or '..')");
        }
    }
    if out.len() > MAX_PATH_LEN {
        return Err(CapabilityError::Path(format!("longer than {MAX_PATH_LEN} bytes once encoded")));
    }
    Ok(out)
}

/// Segment-wise prefix match; a `*` pattern segment matches exactly one non-empty segment.
fn path_matches(path: &str, pattern: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    if pattern.is_empty() {
        return true;
    }
    let mut got = path[1..].split('/');
    for want in pattern[1..].split('/') {
        match got.next() {
            Some(seg) if want == "*" && !seg.is_empty() => {}
            Some(seg) if want != "*" && seg == want => {}
            _ => return false,
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------------------------
// The envelope

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    method: String,
    path: String,
    #[serde(default)]
    query: Option<Value>,
    #[serde(default, deserialize_with = "header_list")]
    headers: Vec<(String, String)>,
    // `"body": null` is a JSON null to send, not an absent body.
    #[serde(default, deserialize_with = "present")]
    body: Option<Value>,
    #[serde(default)]
    body_text: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Keeps every entry, so that a name given twice (in any case) is seen and refused rather than silently merged.
fn header_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of header names to string values")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry::<String, String>()? {
                if out.len() == MAX_CALLER_HEADERS {
                    return Err(serde::de::Error::custom(format!("at most {MAX_CALLER_HEADERS} headers")));
                }
                out.push(entry);
            }
            Ok(out)
        }
    }
    d.deserialize_map(V)
}

fn build_query(query: Option<Value>, recipe: &Recipe) -> Result<String, CapabilityError> {
    let bad = |why: &str| Err(CapabilityError::Query(why.to_string()));
    let pairs: Vec<(String, String)> = match query {
        None => Vec::new(),
        Some(Value::Object(map)) => {
            map.into_iter().map(|(k, v)| Ok((k, query_scalar(v)?))).collect::<Result<_, CapabilityError>>()?
        }
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::Array(mut pair) if pair.len() == 2 => {
                    let value = query_scalar(pair.pop().unwrap_or_default())?;
                    match pair.pop() {
                        Some(Value::String(name)) => Ok((name, value)),
                        _ => Err(CapabilityError::Query("a parameter's name must be a string".into())),
                    }
                }
                _ => Err(CapabilityError::Query("a list of parameters holds [name, value] pairs".into())),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return bad("\"query\" is an object or a list of [name, value] pairs"),
    };
    if pairs.len() > MAX_QUERY_PARAMS {
        return Err(CapabilityError::Query(format!("at most {MAX_QUERY_PARAMS} parameters")));
    }
    let mut out = String::new();
    for (name, value) in &pairs {
        if name.is_empty() {
            return bad("a parameter's name is empty");
        }
        // Case-insensitively: some servers read parameter names that way, and there is no reason to send it at all.
        if let Recipe::Query { param } = recipe
            && name.eq_ignore_ascii_case(param)
        {
            return Err(CapabilityError::Query(format!(
                "parameter {param} is where Airlock puts the provider's credential; leave it out"
            )));
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&form_encode(name));
        out.push('=');
        out.push_str(&form_encode(value));
    }
    Ok(out)
}

fn query_scalar(v: Value) -> Result<String, CapabilityError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(CapabilityError::Query("parameter values are strings, numbers or booleans".into())),
    }
}

/// `application/x-www-form-urlencoded` (WHATWG): alphanumerics and `*-._` as they are, space as `+`, the rest
/// escaped. So no name or value can introduce `&`, `=` or `#`.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"*-._".contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The caller's headers, each allowed for this provider, as a map.
fn caller_headers(given: &[(String, String)], p: &Provider) -> Result<HeaderMap, CapabilityError> {
    let recipe_header = p.recipe.header_name().cloned();
    let mut map = HeaderMap::new();
    for (raw_name, raw_value) in given {
        let refuse = |reason: String| CapabilityError::Header { name: raw_name.clone(), reason };
        let (name, value) = header_pair(raw_name, raw_value).map_err(refuse)?;
        if let Some(why) = forbidden_header(name.as_str()) {
            return Err(refuse(why.to_string()));
        }
        if recipe_header.as_ref() == Some(&name) {
            return Err(refuse(format!("Airlock writes the {} credential here itself", p.name)));
        }
        if p.headers.iter().any(|(n, _)| *n == name) {
            return Err(refuse(format!("provider {} sets this header itself", p.name)));
        }
        if map.contains_key(&name) {
            return Err(refuse("given twice".into()));
        }
        map.insert(name, value);
    }
    Ok(map)
}

/// A header name (an HTTP token, lowercased) and a value of printable ASCII (no tab, no control characters).
fn header_pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err("not a valid header name".into());
    }
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| "not a valid header name".to_string())?;
    if value.len() > MAX_HEADER_VALUE_LEN {
        return Err(format!("value longer than {MAX_HEADER_VALUE_LEN} bytes"));
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("the value may hold printable ASCII only (no control characters or line breaks)".into());
    }
    let value = HeaderValue::from_str(value).map_err(|_| "not a valid header value".to_string())?;
    Ok((name, value))
}

/// Why a header may not be set by a caller or a provider definition, or `None` when it may.
fn forbidden_header(name: &str) -> Option<&'static str> {
    if let Some(why) = framing_or_routing(name) {
        return Some(why);
    }
    if name.starts_with("x-airlock-") {
        return Some("is reserved for Airlock");
    }
    // Credentials come from the vault through the provider's recipe, never from the caller or the config file.
    const AUTH: &[&str] = &["authorization", "cookie", "x-api-key", "api-key", "x-auth-token"];
    if AUTH.contains(&name) {
        return Some("carries credentials; Airlock adds the provider's credential itself");
    }
    None
}

/// Framing, hop-by-hop and routing headers: a value in them could change how the request is framed, where it is
/// routed, or (method overrides) what it does, past the capability's checks.
fn framing_or_routing(name: &str) -> Option<&'static str> {
    if airlock_vault::FRAMING_HEADERS.contains(&name) || name.starts_with("proxy-") {
        return Some("frames or routes the request; the broker sets it");
    }
    const ROUTING: &[&str] = &[
        "forwarded",
        "via",
        "x-real-ip",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ];
    if ROUTING.contains(&name) || name.starts_with("x-forwarded-") {
        return Some("changes how a server routes the request or which method it runs");
    }
    None
}

/// The body bytes and the content type to use when the caller names none.
fn build_body(
    json: Option<Value>,
    text: Option<String>,
    base64: Option<String>,
) -> Result<(Bytes, Option<&'static str>), CapabilityError> {
    match (json, text, base64) {
        (None, None, None) => Ok((Bytes::new(), None)),
        (Some(v), None, None) => {
            let bytes = serde_json::to_vec(&v).map_err(|e| CapabilityError::Body(e.to_string()))?;
            Ok((Bytes::from(bytes), Some("application/json")))
        }
        (None, Some(t), None) => Ok((Bytes::from(t), Some("text/plain; charset=utf-8"))),
        (None, None, Some(b)) => {
            let bytes =
                B64.decode(b.trim()).map_err(|_| CapabilityError::Body("body_base64 is not valid base64".into()))?;
            Ok((Bytes::from(bytes), Some("application/octet-stream")))
        }
        _ => Err(CapabilityError::Body("give at most one of body, body_text and body_base64".into())),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Responses

/// Applies a blocklist to a response body of the given Content-Type. JSON (`application/json`, `*/*+json`): parse,
/// remove every object key in the blocklist at any depth (case-sensitive exact match), re-serialise. Empty
/// blocklist: body unchanged. Non-empty blocklist and a body that is not JSON (or does not parse): `Err` (fail closed:
/// the broker answers 502). An empty body has no keys and passes. Returns how many keys were removed.
///
/// A filtered body is always re-serialised, even when nothing was removed, so the tool receives exactly the document
/// that was checked (no duplicate keys or escapes read differently by its parser). The body must already be decoded
/// (no `Content-Encoding`).
pub fn filter_response(
    blocklist: &[String],
    content_type: &str,
    body: &[u8],
) -> Result<(Bytes, usize), CapabilityError> {
    if blocklist.is_empty() || body.is_empty() {
        return Ok((Bytes::copy_from_slice(body), 0));
    }
    if !is_json(content_type) {
        return Err(CapabilityError::Response(
            "this capability removes keys from responses and the response is not JSON".into(),
        ));
    }
    let mut doc: Value = serde_json::from_slice(body)
        .map_err(|_| CapabilityError::Response("the JSON response does not parse, so it cannot be filtered".into()))?;
    let removed = strip_keys(&mut doc, blocklist);
    let out = serde_json::to_vec(&doc).map_err(|e| CapabilityError::Response(e.to_string()))?;
    Ok((Bytes::from(out), removed))
}

fn is_json(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    media == "application/json" || (media.contains('/') && media.ends_with("+json"))
}

fn strip_keys(v: &mut Value, blocklist: &[String]) -> usize {
    match v {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|k, _| !blocklist.iter().any(|b| b == k));
            let removed = before - map.len();
            removed + map.values_mut().map(|child| strip_keys(child, blocklist)).sum::<usize>()
        }
        Value::Array(items) => items.iter_mut().map(|item| strip_keys(item, blocklist)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registry {
        Registry::builtin()
    }

    fn plan(p: &str, c: &str, env: Value) -> Result<Plan, CapabilityError> {
        reg().plan(p, c, env.to_string().as_bytes())
    }

    fn get(path: &str) -> Value {
        serde_json::json!({"method": "GET", "path": path})
    }

    fn user(base_url: &str, secret: &str) -> ProviderConfig {
        let mut caps = BTreeMap::new();
        caps.insert(
            "list-things".to_string(),
            CapabilityConfig { methods: vec!["GET".into()], paths: vec!["/v1/things".into()], ..Default::default() },
        );
        ProviderConfig { base_url: base_url.into(), secret: secret.into(), capabilities: caps, ..Default::default() }
    }

    fn with(name: &str, p: ProviderConfig) -> Result<Registry, String> {
        reg().with_config(&BTreeMap::from([(name.to_string(), p)]))
    }

    #[test]
    fn the_builtin_table_is_valid_and_complete() {
        let r = reg();
        let names: Vec<&str> = r.providers().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["anthropic", "github", "openai", "slack", "stripe"]);
        assert!(r.providers().all(|p| p.builtin));
        let openai = r.provider("openai").unwrap();
        assert_eq!(openai.base_url, "https://api.openai.com");
        assert_eq!(openai.recipe.describe(), "header authorization: Bearer {value}");
        assert_eq!(
            openai.capabilities.keys().collect::<Vec<_>>(),
            ["chat-completions", "embeddings", "models", "responses"]
        );
        let anthropic = r.provider("anthropic").unwrap();
        assert_eq!(anthropic.recipe.describe(), "header x-api-key: {value}");
        assert_eq!(anthropic.headers[0].0, "anthropic-version");
        assert_eq!(r.provider("github").unwrap().headers.len(), 2);
        let stripe = r.provider("stripe").unwrap();
        assert_eq!(stripe.capability("payment-intents-read").unwrap().response_blocklist, ["client_secret"]);
        assert!(stripe.capability("balance").unwrap().response_blocklist.is_empty());
    }

    #[test]
    fn pins_for_secret_names_the_providers_hosts() {
        let r = reg();
        let pins = |s: &str| r.pins_for_secret(s).map(|p| p.iter().map(ToString::to_string).collect::<Vec<_>>());
        assert_eq!(pins("OPENAI_API_KEY").unwrap(), ["api.openai.com"]);
        assert_eq!(pins("ANTHROPIC_API_KEY").unwrap(), ["api.anthropic.com"]);
        assert_eq!(pins("GITHUB_TOKEN").unwrap(), ["api.github.com"]);
        assert_eq!(pins("SLACK_BOT_TOKEN").unwrap(), ["slack.com"]);
        assert_eq!(pins("STRIPE_SECRET_KEY").unwrap(), ["api.stripe.com"]);
        assert!(r.pins_for_secret("UNKNOWN").is_none());

        let mut cfg = user("https://api.myco.com:8443", "MYAPI_TOKEN");
        cfg.hosts = vec!["*.myco.com:*".into()];
        let r = with("myapi", cfg).unwrap();
        assert_eq!(r.pins_for_secret("MYAPI_TOKEN").unwrap()[0].to_string(), "*.myco.com:*");
    }

    #[test]
    fn a_call_becomes_a_request_to_the_providers_host() {
        let env = serde_json::json!({"method": "post", "path": "/v1/chat/completions", "body": {"model": "m"}});
        let p = plan("openai", "chat-completions", env).unwrap();
        assert_eq!(p.method, Method::POST);
        assert_eq!(p.url, "https://api.openai.com/v1/chat/completions");
        assert_eq!(p.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(&p.body[..], br#"{"model":"m"}"#);
        assert_eq!(p.secret, "OPENAI_API_KEY");
        assert_eq!(p.capability, "openai/chat-completions");
        assert!(p.response_blocklist.is_empty());

        let p =
            plan("anthropic", "messages", serde_json::json!({"method": "POST", "path": "/v1/messages", "body": {}}))
                .unwrap();
        assert_eq!(p.headers["anthropic-version"], "2023-06-01");
        let p = plan("stripe", "payment-intents-read", get("/v1/payment_intents/pi_1")).unwrap();
        assert_eq!(&*p.response_blocklist, ["client_secret".to_string()]);
    }

    #[test]
    fn traversal_and_encoding_tricks_are_refused() {
        for raw in [
            "/v1/../admin",
            "/v1/%2e%2e/admin",
            "/v1/%2E./x",
            "/v1/.%2e/x",
            "/v1/%252e%252e/x",
            "/v1//x",
            "/v1/x\\..\\y",
            "/v1/x\\y",
            "/v1/%2fadmin",
            "/v1/%2Fadmin",
            "/v1/%5cadmin",
            "/v1/%5Cadmin",
            "/v1/x%00",
            "/v1/x%0a",
            "/v1/x%1F",
            "/v1/x%7f",
            "/v1/x%25",
            "/v1/./x",
            "/v1/.",
            "/v1/..",
            "/v1/..;jsessionid=1/x",
            "/v1/.../x",
            "/v1/caf\u{e9}",
            "/v1/\u{ff0e}\u{ff0e}/x",
            "/v1/x\ny",
            "/v1/x\ty",
            "/v1/x?y=1",
            "/v1/x#frag",
            "/v1/%",
            "/v1/%4",
            "/v1/%zz",
            "",
            "v1/x",
            "//evil.example/x",
            "http://evil.example/x",
            "https://api.openai.com/v1/models",
        ] {
            assert!(matches!(normalize_path(raw), Err(CapabilityError::Path(_))), "{raw:?} was not refused");
        }
        assert!(normalize_path(&format!("/{}", "a".repeat(MAX_PATH_LEN))).is_err());
    }

    #[test]
    fn normalisation_keeps_one_spelling() {
        assert_eq!(normalize_path("/v1/models/").unwrap(), "/v1/models/");
        assert_eq!(normalize_path("/").unwrap(), "/");
        assert_eq!(normalize_path("/a/%c3%a9/%3f").unwrap(), "/a/%C3%A9/%3F");
        assert_eq!(normalize_path("/a b/{x}|^[]").unwrap(), "/a%20b/%7Bx%7D%7C%5E%5B%5D");
        assert_eq!(normalize_path("/v1/a.b/..x/x.;y/@:!$&'()*+,;=-_~").unwrap(), "/v1/a.b/..x/x.;y/@:!$&'()*+,;=-_~");
    }

    #[test]
    fn paths_match_segment_wise_prefixes() {
        let ok = |c: &str, path: &str| plan("github", c, get(path)).map(|p| p.url);
        assert_eq!(ok("repos-read", "/repos/a/b").unwrap(), "https://api.github.com/repos/a/b");
        assert!(ok("repos-read", "/repos/a/b/contents/x").is_ok());
        assert!(ok("user", "/user/").is_ok());
        for (c, path) in [
            ("repos-read", "/repos/a"),
            ("repos-read", "/repos/a/"),
            ("repos-read", "/reposx/a/b"),
            ("repos-read", "/Repos/a/b"),
            ("user", "/userx"),
            ("user", "/users/x"),
            ("issues", "/repos/a/b/pulls"),
            ("issues", "/repos/a/b/issuesx"),
        ] {
            let err = ok(c, path).unwrap_err();
            assert!(matches!(err, CapabilityError::PathNotAllowed { .. }), "{c} {path}: {err}");
            assert_eq!(err.status(), StatusCode::FORBIDDEN);
        }
        let err = ok("repos-read", "/repos/a").unwrap_err();
        assert!(err.to_string().contains("/repos/*/*"), "{err}");
        assert!(plan("stripe", "customers-read", get("/v1/customers/cus_1")).is_ok());
        assert!(plan("stripe", "customers-read", get("/v1/customersx")).is_err());
    }

    #[test]
    fn a_method_outside_the_capability_is_405() {
        let err =
            plan("openai", "models", serde_json::json!({"method": "DELETE", "path": "/v1/models/x"})).unwrap_err();
        assert!(matches!(err, CapabilityError::Method { .. }), "{err}");
        assert_eq!(err.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(err.kind(), "method");
        assert!(err.to_string().contains("allows GET"), "{err}");
        assert!(
            plan("github", "issues", serde_json::json!({"method": "PATCH", "path": "/repos/a/b/issues/1"})).is_ok()
        );
        assert!(
            plan("github", "issues", serde_json::json!({"method": "DELETE", "path": "/repos/a/b/issues/1"})).is_err()
        );
        for m in ["CONNECT", "TRACE", "G ET", ""] {
            let err = plan("openai", "models", serde_json::json!({"method": m, "path": "/v1/models"})).unwrap_err();
            assert!(matches!(err, CapabilityError::Envelope(_)), "{m}: {err}");
        }
    }

    #[test]
    fn the_host_never_comes_from_the_caller() {
        for path in ["http://evil.example/v1/models", "//evil.example/v1/models", "evil.example/v1/models", "@evil/x"] {
            let err = plan("openai", "models", get(path)).unwrap_err();
            assert!(matches!(err, CapabilityError::Path(_)), "{path}: {err}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        // Fields naming a host are unknown fields.
        for extra in ["url", "host", "base_url"] {
            let mut env = get("/v1/models");
            env[extra] = Value::String("https://evil.example".into());
            assert!(matches!(plan("openai", "models", env), Err(CapabilityError::Envelope(_))), "{extra}");
        }
        let err = plan(
            "openai",
            "models",
            serde_json::json!({"method": "GET", "path": "/v1/models", "headers": {"host": "evil.example"}}),
        )
        .unwrap_err();
        assert!(matches!(err, CapabilityError::Header { .. }), "{err}");
    }

    #[test]
    fn forbidden_headers_are_refused_by_name() {
        let try_header = |p: &str, c: &str, path: &str, name: &str| {
            let env = serde_json::json!({"method": "GET", "path": path, "headers": {name: "x"}});
            reg().plan(p, c, env.to_string().as_bytes())
        };
        for name in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "connection",
            "te",
            "upgrade",
            "trailer",
            "keep-alive",
            "expect",
            "proxy-authorization",
            "proxy-anything",
            "authorization",
            "Cookie",
            "x-api-key",
            "x-airlock-agent",
            "X-Airlock-Token",
            "x-http-method-override",
            "x-forwarded-host",
            "forwarded",
        ] {
            let err = try_header("openai", "models", "/v1/models", name).unwrap_err();
            match &err {
                CapabilityError::Header { name: n, .. } => assert_eq!(n, name),
                other => panic!("{name}: {other}"),
            }
            assert!(err.to_string().contains(name), "{err}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
        // The provider's fixed headers and the header its recipe writes.
        assert!(try_header("anthropic", "models", "/v1/models", "anthropic-version").is_err());
        assert!(try_header("github", "user", "/user", "accept").is_err());
        assert!(try_header("github", "user", "/user", "X-GitHub-Api-Version").is_err());
        // Allowed: an ordinary header, lowercased.
        let p = try_header("openai", "models", "/v1/models", "X-Request-Tag").unwrap();
        assert_eq!(p.headers["x-request-tag"], "x");
    }

    #[test]
    fn header_names_values_and_counts_are_checked() {
        let call = |headers: Value| {
            reg().plan(
                "openai",
                "models",
                serde_json::json!({"method": "GET", "path": "/v1/models", "headers": headers}).to_string().as_bytes(),
            )
        };
        assert!(call(serde_json::json!({"x-a": "one\r\nx-b: two"})).is_err());
        assert!(call(serde_json::json!({"x-a": "tab\there"})).is_err());
        assert!(call(serde_json::json!({"x-a": "caf\u{e9}"})).is_err());
        assert!(call(serde_json::json!({"bad name": "x"})).is_err());
        assert!(call(serde_json::json!({"": "x"})).is_err());
        assert!(call(serde_json::json!({"x-a": 1})).is_err());
        assert!(call(serde_json::json!({"x-a": "a".repeat(MAX_HEADER_VALUE_LEN + 1)})).is_err());
        // The same name twice, in two cases.
        let env = r#"{"method":"GET","path":"/v1/models","headers":{"X-A":"1","x-a":"2"}}"#;
        assert!(matches!(reg().plan("openai", "models", env.as_bytes()), Err(CapabilityError::Header { .. })));
        let many: serde_json::Map<String, Value> =
            (0..=MAX_CALLER_HEADERS).map(|i| (format!("x-h{i}"), Value::String("v".into()))).collect();
        assert!(matches!(call(Value::Object(many)), Err(CapabilityError::Envelope(_))));
        let enough: serde_json::Map<String, Value> =
            (0..MAX_CALLER_HEADERS).map(|i| (format!("x-h{i}"), Value::String("v".into()))).collect();
        assert!(call(Value::Object(enough)).is_ok());
    }

    #[test]
    fn the_query_is_form_encoded_by_the_broker() {
        let env =
            serde_json::json!({"method": "GET", "path": "/v1/models", "query": {"q": "a b&c=d#e", "n": 5, "x": true}});
        let p = plan("openai", "models", env).unwrap();
        let query = p.url.split_once('?').unwrap().1;
        let mut parts: Vec<&str> = query.split('&').collect();
        parts.sort();
        assert_eq!(parts, ["n=5", "q=a+b%26c%3Dd%23e", "x=true"]);
        assert_eq!(p.url_without_query(), "https://api.openai.com/v1/models");
        assert!(!format!("{p:?}").contains("a+b"), "{p:?}");

        let pairs = serde_json::json!([["a", "1"], ["a", "2"], ["b/c", "\u{e9}"]]);
        let env = serde_json::json!({"method": "GET", "path": "/v1/models", "query": pairs});
        assert_eq!(plan("openai", "models", env).unwrap().url, "https://api.openai.com/v1/models?a=1&a=2&b%2Fc=%C3%A9");

        for q in [
            serde_json::json!("a=1"),
            serde_json::json!({"a": {"b": 1}}),
            serde_json::json!({"a": null}),
            serde_json::json!([["a"]]),
            serde_json::json!([[1, "a"]]),
            serde_json::json!({"": "x"}),
        ] {
            let env = serde_json::json!({"method": "GET", "path": "/v1/models", "query": q});
            assert!(matches!(plan("openai", "models", env), Err(CapabilityError::Query(_))), "{q}");
        }
        let env = serde_json::json!({"method": "GET", "path": "/v1/models", "query": {}});
        assert_eq!(plan("openai", "models", env).unwrap().url, "https://api.openai.com/v1/models");
    }

    #[test]
    fn a_query_parameter_named_like_the_recipes_is_refused() {
        let mut cfg = user("https://api.myco.com", "MYAPI_TOKEN");
        cfg.inject = Some(InjectRecipe { header: None, format: None, query: Some("api_key".into()) });
        let r = with("myapi", cfg).unwrap();
        for q in [serde_json::json!({"api_key": "mine"}), serde_json::json!([["x", "1"], ["API_KEY", "mine"]])] {
            let env = serde_json::json!({"method": "GET", "path": "/v1/things", "query": q});
            let err = r.plan("myapi", "list-things", env.to_string().as_bytes()).unwrap_err();
            assert!(matches!(err, CapabilityError::Query(_)) && err.to_string().contains("api_key"), "{err}");
        }
        let env = serde_json::json!({"method": "GET", "path": "/v1/things", "query": {"api_key_hint": "1"}});
        assert!(r.plan("myapi", "list-things", env.to_string().as_bytes()).is_ok());
    }

    #[test]
    fn body_variants_and_their_content_types() {
        let call = |extra: Value| {
            let mut env = serde_json::json!({"method": "POST", "path": "/v1/messages"});
            for (k, v) in extra.as_object().unwrap() {
                env[k] = v.clone();
            }
            plan("anthropic", "messages", env)
        };
        let p = call(serde_json::json!({"body": [1, "two"]})).unwrap();
        assert_eq!(
            (&p.body[..], &p.headers[header::CONTENT_TYPE]),
            (&b"[1,\"two\"]"[..], &HeaderValue::from_static("application/json"))
        );
        let p = call(serde_json::json!({"body": null})).unwrap();
        assert_eq!(&p.body[..], b"null");
        let p =
            call(serde_json::json!({"body": {"a": 1}, "headers": {"content-type": "application/vnd.x+json"}})).unwrap();
        assert_eq!(p.headers[header::CONTENT_TYPE], "application/vnd.x+json");
        let p = call(serde_json::json!({"body_text": "hello"})).unwrap();
        assert_eq!(
            (&p.body[..], p.headers[header::CONTENT_TYPE].to_str().unwrap()),
            (&b"hello"[..], "text/plain; charset=utf-8")
        );
        let p = call(serde_json::json!({"body_base64": B64.encode([0u8, 255, 1])})).unwrap();
        assert_eq!(
            (&p.body[..], p.headers[header::CONTENT_TYPE].to_str().unwrap()),
            (&[0u8, 255, 1][..], "application/octet-stream")
        );
        let p = call(serde_json::json!({})).unwrap();
        assert!(p.body.is_empty() && !p.headers.contains_key(header::CONTENT_TYPE));

        assert!(matches!(call(serde_json::json!({"body_base64": "not base64!"})), Err(CapabilityError::Body(_))));
        for two in [
            serde_json::json!({"body": {}, "body_text": "x"}),
            serde_json::json!({"body": null, "body_base64": ""}),
            serde_json::json!({"body_text": "x", "body_base64": "eA=="}),
        ] {
            assert!(matches!(call(two.clone()), Err(CapabilityError::Body(_))), "{two}");
        }
    }

    #[test]
    fn the_envelope_is_strict() {
        let call = |text: &str| reg().plan("openai", "models", text.as_bytes());
        for bad in [
            r#"{"method":"GET","path":"/v1/models","extra":1}"#,
            r#"{"path":"/v1/models"}"#,
            r#"{"method":"GET"}"#,
            r#"{"method":"GET","path":"/v1/models","headers":[["a","b"]]}"#,
            r#"{"method":"GET","path":"/v1/models","query_string":"a=1"}"#,
            r#"["GET","/v1/models"]"#,
            "not json",
            "",
        ] {
            let err = call(bad).unwrap_err();
            assert!(matches!(err, CapabilityError::Envelope(_)), "{bad}: {err}");
            assert_eq!((err.status(), err.kind()), (StatusCode::BAD_REQUEST, "envelope"));
        }
        assert!(call(r#"{"method":"GET","path":"/v1/models","query":null,"body_text":null}"#).is_ok());
    }

    #[test]
    fn unknown_providers_and_capabilities_are_404() {
        let err = reg().plan("nope", "x", b"{}").unwrap_err();
        assert_eq!((err.status(), err.kind()), (StatusCode::NOT_FOUND, "capability"));
        let err = reg().plan("openai", "nope", b"{}").unwrap_err();
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        assert!(err.to_string().contains("chat-completions"), "{err}");
    }

    #[test]
    fn errors_map_to_statuses_and_kinds() {
        let cases = [
            (CapabilityError::Path("x".into()), 400, "path"),
            (CapabilityError::PathNotAllowed { capability: "a/b".into(), allowed: vec![] }, 403, "path"),
            (CapabilityError::Header { name: "h".into(), reason: "r".into() }, 400, "envelope"),
            (CapabilityError::Query("q".into()), 400, "envelope"),
            (CapabilityError::Body("b".into()), 400, "envelope"),
            (CapabilityError::Response("r".into()), 502, "response-filter"),
        ];
        for (err, status, kind) in cases {
            assert_eq!((err.status().as_u16(), err.kind()), (status, kind), "{err}");
        }
    }

    #[test]
    fn blocklisted_keys_are_removed_at_any_depth() {
        let block = vec!["client_secret".to_string(), "token".to_string()];
        let body = br#"{"data":[{"id":"pi_1","client_secret":"cs_1","nested":{"token":"t","Token":"kept"}},
                       {"id":"pi_2","client_secret":"cs_2"}],
                       "token":"top","tok\u0065n_like":1,"tok\u0065n":"escaped"}"#;
        let (out, removed) = filter_response(&block, "application/json; charset=utf-8", body).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        // Two client secrets, the nested token, and the top-level token: written twice (once escaped), it is one key
        // to the parser, and both spellings are gone from the output.
        assert_eq!(removed, 4);
        assert_eq!(
            v,
            serde_json::json!({"data": [{"id": "pi_1", "nested": {"Token": "kept"}}, {"id": "pi_2"}], "token_like": 1})
        );
        let (_, removed) = filter_response(&block, "application/problem+json", br#"[[{"token":1}]]"#).unwrap();
        assert_eq!(removed, 1);
        let (_, removed) = filter_response(&block, "application/json", br#"{"a":"token"}"#).unwrap();
        assert_eq!(removed, 0);
    }

    #[test]
    fn an_unfilterable_response_is_refused_when_there_is_a_blocklist() {
        let block = vec!["client_secret".to_string()];
        for (ct, body) in [
            ("text/plain", &br#"{"client_secret":"x"}"#[..]),
            ("", br#"{"client_secret":"x"}"#),
            ("text/event-stream", b"data: {}\n\n"),
            ("application/json", b"{not json"),
            ("application/json", b"{\"a\":1}{\"client_secret\":2}"),
        ] {
            let err = filter_response(&block, ct, body).unwrap_err();
            assert_eq!((err.status(), err.kind()), (StatusCode::BAD_GATEWAY, "response-filter"), "{ct}");
        }
        // No blocklist: anything passes untouched; an empty body has nothing to remove.
        assert_eq!(filter_response(&[], "text/plain", b"raw {").unwrap(), (Bytes::from_static(b"raw {"), 0));
        assert_eq!(filter_response(&block, "text/plain", b"").unwrap(), (Bytes::new(), 0));
    }

    #[test]
    fn a_user_provider_is_validated_and_gets_defaults() {
        let mut cfg = user("https://API.MyCo.com/", "MYAPI_TOKEN");
        cfg.headers.insert("X-Api-Version".into(), "2024-01-01".into());
        let r = with("myapi", cfg).unwrap();
        let p = r.provider("myapi").unwrap();
        assert!(!p.builtin);
        assert_eq!(p.base_url, "https://api.myco.com");
        assert_eq!(p.hosts.iter().map(ToString::to_string).collect::<Vec<_>>(), ["api.myco.com"]);
        assert_eq!(p.recipe.describe(), "header authorization: Bearer {value}");
        let plan = r.plan("myapi", "list-things", get("/v1/things").to_string().as_bytes()).unwrap();
        assert_eq!(plan.url, "https://api.myco.com/v1/things");
        assert_eq!(plan.headers["x-api-version"], "2024-01-01");
        // A caller cannot override a fixed header.
        let env = serde_json::json!({"method": "GET", "path": "/v1/things", "headers": {"x-api-version": "1999"}});
        assert!(r.plan("myapi", "list-things", env.to_string().as_bytes()).is_err());

        // http is accepted (local servers); the port is kept and pinned.
        let r = with("local", user("http://127.0.0.1:8080", "LOCAL_TOKEN")).unwrap();
        let p = r.provider("local").unwrap();
        assert_eq!((p.base_url.as_str(), p.hosts[0].to_string()), ("http://127.0.0.1:8080", "127.0.0.1:8080".into()));
    }

    #[test]
    fn a_user_provider_may_not_take_a_builtin_name_or_secret() {
        let err = with("openai", user("https://api.myco.com", "MYAPI_TOKEN")).unwrap_err();
        assert!(err.contains("openai") && err.contains("built-in"), "{err}");
        for secret in ["OPENAI_API_KEY", "github_token"] {
            let err = with("myapi", user("https://evil.example", secret)).unwrap_err();
            assert!(err.contains("myapi") && err.contains(secret) && err.contains("built-in"), "{err}");
        }
        let err = with("myapi", user("https://evil.example", "GITHUB_TOKEN")).unwrap_err();
        assert!(err.contains("github") && err.contains("api.github.com"), "{err}");
        // The built-in pins are untouched by a refused config.
        assert_eq!(reg().pins_for_secret("OPENAI_API_KEY").unwrap().len(), 1);
        // Defining the same user provider twice (two configs) is refused too.
        let once = with("myapi", user("https://api.myco.com", "MYAPI_TOKEN")).unwrap();
        let twice = once.with_config(&BTreeMap::from([("myapi".to_string(), user("https://b.example", "B"))]));
        assert!(twice.unwrap_err().contains("twice"));
    }

    #[test]
    fn bad_user_providers_are_refused_with_a_reason() {
        let base = || user("https://api.myco.com", "MYAPI_TOKEN");
        let refused = |name: &str, cfg: ProviderConfig, needle: &str| {
            let err = with(name, cfg).unwrap_err();
            assert!(err.contains(needle), "expected {needle:?} in {err:?}");
        };
        refused("My_Api", base(), "invalid provider name");
        refused("-x", base(), "invalid provider name");
        refused("x", ProviderConfig { base_url: "https://api.myco.com/v2".into(), ..base() }, "path");
        refused("x", ProviderConfig { base_url: "https://api.myco.com?x=1".into(), ..base() }, "query");
        refused("x", ProviderConfig { base_url: "https://u:p@api.myco.com".into(), ..base() }, "base_url");
        refused("x", ProviderConfig { base_url: "ftp://api.myco.com".into(), ..base() }, "base_url");
        refused("x", ProviderConfig { hosts: vec!["other.example".into()], ..base() }, "admit");
        refused("x", ProviderConfig { hosts: vec!["*".into()], ..base() }, "anywhere");
        refused("x", ProviderConfig { secret: "bad name!".into(), ..base() }, "secret");
        let inject = |header: Option<&str>, format: Option<&str>, query: Option<&str>| InjectRecipe {
            header: header.map(Into::into),
            format: format.map(Into::into),
            query: query.map(Into::into),
        };
        refused("x", ProviderConfig { inject: Some(inject(Some("Host"), None, None)), ..base() }, "inject");
        refused("x", ProviderConfig { inject: Some(inject(Some("X-Forwarded-Host"), None, None)), ..base() }, "inject");
        refused("x", ProviderConfig { inject: Some(inject(Some("a"), None, Some("k"))), ..base() }, "exactly one");
        refused("x", ProviderConfig { inject: Some(inject(None, Some("{value}"), Some("k"))), ..base() }, "format");
        refused("x", ProviderConfig { inject: Some(inject(Some("x-k"), Some("nothing"), None)), ..base() }, "template");
        for h in ["authorization", "Cookie", "host", "x-airlock-x", "x-http-method-override"] {
            let mut cfg = base();
            cfg.headers.insert(h.into(), "v".into());
            refused("x", cfg, "headers");
        }
        let mut cfg = base();
        cfg.inject = Some(inject(Some("x-key"), None, None));
        cfg.headers.insert("x-key".into(), "v".into());
        refused("x", cfg, "injected");
        refused("x", ProviderConfig { capabilities: BTreeMap::new(), ..base() }, "no capabilities");

        let cap = |methods: &[&str], paths: &[&str]| CapabilityConfig {
            methods: methods.iter().map(|m| m.to_string()).collect(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        };
        for (cap_name, c, needle) in [
            ("Bad", cap(&["GET"], &["/x"]), "invalid capability name"),
            ("ok", cap(&[], &["/x"]), "no methods"),
            ("ok", cap(&["GET"], &[]), "no paths"),
            ("ok", cap(&["CONNECT"], &["/x"]), "CONNECT"),
            ("ok", cap(&["GET"], &["/x*"]), "whole segment"),
            ("ok", cap(&["GET"], &["/a/../b"]), "dot segment"),
            ("ok", cap(&["GET"], &["x"]), "must start"),
            ("ok", CapabilityConfig { response_blocklist: vec![String::new()], ..cap(&["GET"], &["/x"]) }, "empty key"),
        ] {
            refused(
                "x",
                ProviderConfig { capabilities: BTreeMap::from([(cap_name.to_string(), c)]), ..base() },
                needle,
            );
        }
    }

    #[test]
    fn user_capability_patterns_match_as_configured() {
        let mut cfg = user("https://api.myco.com", "MYAPI_TOKEN");
        cfg.capabilities.insert(
            "items".into(),
            CapabilityConfig {
                methods: vec!["get".into(), "GET".into(), "DELETE".into()],
                paths: vec!["/v1/teams/*/items/".into(), "/".into()],
                ..Default::default()
            },
        );
        let r = with("myapi", cfg).unwrap();
        let c = r.provider("myapi").unwrap().capability("items").unwrap();
        assert_eq!(c.methods, [Method::GET, Method::DELETE]);
        assert_eq!(c.paths, ["/v1/teams/*/items", "/"]);
        // "/" admits every path.
        assert!(c.allows_path("/anything/at/all"));
        let narrow = Capability { paths: vec!["/v1/teams/*/items".into()], ..c.clone() };
        assert!(narrow.allows_path("/v1/teams/t1/items"));
        assert!(narrow.allows_path("/v1/teams/t1/items/9"));
        assert!(!narrow.allows_path("/v1/teams/t1"));
        assert!(!narrow.allows_path("/v1/teams/t1/itemsx"));
    }

    #[test]
    fn plan_debug_shows_neither_query_nor_header_values() {
        let env = serde_json::json!({
            "method": "GET", "path": "/v1/models", "query": {"k": "QUERYDATA"}, "headers": {"x-note": "HEADERDATA"}
        });
        let shown = format!("{:?}", plan("openai", "models", env).unwrap());
        assert!(!shown.contains("QUERYDATA") && !shown.contains("HEADERDATA"), "{shown}");
        assert!(shown.contains("x-note") && shown.contains("openai/models"), "{shown}");
    }
}
