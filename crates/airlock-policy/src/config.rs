//! The `airlock.toml` schema: the types people write, exactly as they are written.
//!
//! Why these are plain serde types with `deny_unknown_fields` everywhere: a misspelt key in a security config
//! (`hots = [...]`, `deny_path = [...]`) must be an error that names the key and its line, never a silently
//! ignored rule. Values stay unresolved here (`${WORKSPACE}`, `${secret:NAME}`): [`crate::load`] validates and
//! expands them, and [`crate::compile`] turns the result into Cedar. The JSON Schema published at
//! `docs/airlock.schema.json` is generated from these types ([`json_schema`]), and a test keeps the two equal.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// `airlock.toml`: agents, roles, tools and their capabilities, secrets metadata, network, filesystem and exec
/// defaults, limits, rate limits, audit sinks and profile overlays.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Schema version; only `1` exists.
    #[serde(default = "one")]
    #[schemars(with = "u32")]
    pub version: Spanned<u32>,
    /// Profile used when neither `--profile` nor `AIRLOCK_PROFILE` names one. Defaults to `dev`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub default_profile: Option<Spanned<String>>,
    /// Extra Cedar policy files, relative to this file. Globs are allowed (`policies/*.cedar`).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub policy_files: Vec<Spanned<String>>,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub fs: GlobalFs,
    #[serde(default)]
    pub exec: GlobalExec,
    /// Default resource limits for tools that set none of their own.
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub rate_limits: RateLimits,
    #[serde(default)]
    pub budgets: Budgets,
    #[serde(default)]
    pub audit: Audit,
    /// What `airlock run` gives the tools it runs: environment pass-through, auto-pause, the proxy listener's port.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// What `airlock run` masks in the output of the tools it runs: secrets, personal data and known vault values.
    #[serde(default)]
    pub redact: RedactConfig,
    /// Secret metadata: where each secret may go and how it is injected. Values live in the vault, never here.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, SecretMeta>")]
    pub secrets: BTreeMap<Spanned<String>, SecretMeta>,
    /// Where secrets live besides the local vault: the stores `[secrets.NAME] source` and `${secret:SCHEME://...}`
    /// references point into (OpenBao/Vault, the kernel keyring, the environment, sealed files).
    #[serde(default)]
    pub backends: Backends,
    /// Providers for the typed capability API (`POST /v1/capabilities/{provider}/{capability}`), besides the
    /// built-in ones (openai, anthropic, github, slack, stripe).
    #[serde(default)]
    pub providers: BTreeMap<String, crate::providers::ProviderConfig>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Role>")]
    pub roles: BTreeMap<Spanned<String>, Role>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Agent>")]
    pub agents: BTreeMap<Spanned<String>, Agent>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Tool>")]
    pub tools: BTreeMap<Spanned<String>, Tool>,
    /// Per-profile overlays: fields given here replace the base file's for that profile.
    #[serde(default)]
    pub profiles: ProfileOverlays,
}

fn one() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}

/// Network defaults that apply to every tool.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Hosts no tool may reach, whatever its own allow list says (compiled to Cedar `forbid`).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub deny: Option<Vec<Spanned<String>>>,
    /// Refuse private, loopback, link-local and metadata addresses after DNS resolution (SSRF). Only `dev` may
    /// turn this off.
    #[schemars(with = "Option<bool>")]
    pub block_private: Option<Spanned<bool>>,
    /// Largest request body any tool may send, unless a rule says less. Sizes: `1048576`, `"512KiB"`, `"10MiB"`.
    pub max_request_bytes: Option<Size>,
    /// Internal destinations the SSRF check lets through: address prefixes (`"10.20.0.0/16"`, `"fd12::/48"`, an
    /// address) and host names whose DNS answers may be private (`"registry.corp.example"`, `"*.svc.example"`).
    /// Cloud metadata addresses pass only when listed exactly; multicast, unspecified and tunnelling ranges never.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub allow_private: Option<Vec<Spanned<String>>>,
    /// Which CONNECT tunnels the broker opens with its local CA, so that it can inject credentials and scan what
    /// goes through: `"all"` (the default), `"credentials"` (only hosts some secret is pinned to) or `"off"`.
    /// An unopened tunnel is still decided, SSRF-checked and SNI-checked, but nothing inside it is seen.
    pub tls_inspect: Option<TlsInspect>,
    /// Hosts whose tunnels are never opened: clients that pin certificates or use client certificates.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub tls_passthrough: Option<Vec<Spanned<String>>>,
}

/// `[network] tls_inspect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TlsInspect {
    /// Open every tunnel (except `tls_passthrough` hosts).
    #[default]
    All,
    /// Open only tunnels to hosts some secret is pinned to.
    Credentials,
    /// Open none: no injection or scanning inside TLS.
    Off,
}

/// Filesystem rules for every tool.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobalFs {
    /// Paths no tool may read, write or execute. Variables `${WORKSPACE}` and `${HOME}`; globs allowed.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub deny: Option<Vec<Spanned<String>>>,
    /// Deny the usual credential stores (`~/.ssh`, `~/.aws`, `~/.gnupg`, `~/.netrc`, ...) to every tool.
    /// Defaults to true; only `dev` may turn it off.
    #[schemars(with = "Option<bool>")]
    pub protect_credentials: Option<Spanned<bool>>,
}

/// Program rules for every tool.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobalExec {
    /// Programs no tool may run: names are looked up on `search_path`; the file name also matches anywhere.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub deny: Option<Vec<Spanned<String>>>,
    /// Directories searched for bare program names, in order.
    #[serde(default)]
    pub search_path: Option<Vec<String>>,
}

/// Resource limits. Every field is optional; a tool's own block overrides the file's `[limits]` field by field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub memory: Option<Size>,
    pub cpu_seconds: Option<u64>,
    pub wall_seconds: Option<u64>,
    pub pids: Option<u64>,
    pub open_files: Option<u64>,
    pub output_bytes: Option<Size>,
}

impl Limits {
    /// Field-by-field: `self` wins where set.
    pub fn or(&self, fallback: &Limits) -> Limits {
        Limits {
            memory: self.memory.or(fallback.memory),
            cpu_seconds: self.cpu_seconds.or(fallback.cpu_seconds),
            wall_seconds: self.wall_seconds.or(fallback.wall_seconds),
            pids: self.pids.or(fallback.pids),
            open_files: self.open_files.or(fallback.open_files),
            output_bytes: self.output_bytes.or(fallback.output_bytes),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }
}

/// Token-bucket rate limits, enforced by the broker.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// One bucket shared by every request the broker serves, whoever sends it (requests only: byte budgets are
    /// per agent, tool, host or run).
    pub global: Option<RateLimit>,
    /// Applies to every (agent, tool) pair without a more specific rule.
    pub default: Option<RateLimit>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RateLimit>")]
    pub agents: BTreeMap<Spanned<String>, RateLimit>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RateLimit>")]
    pub tools: BTreeMap<Spanned<String>, RateLimit>,
    /// Keyed by host pattern (`"api.github.com"`, `"*.example.com"`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RateLimit>")]
    pub hosts: BTreeMap<Spanned<String>, RateLimit>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests_per_minute: Option<u32>,
    /// Requests allowed at once above the steady rate.
    pub burst: Option<u32>,
    /// Bytes sent upstream per hour (request line, headers and body as sent, and what a tool writes into a CONNECT
    /// tunnel): a bucket that holds an hour's worth and refills steadily. An exfiltration control.
    pub egress_bytes_per_hour: Option<Size>,
}

/// `[budgets]`: what one run may send in total over its whole life. Why, next to `[rate_limits]`: a tool that
/// trickles data out slowly stays under every rate, so a run also has a ceiling. A run is one agent running one
/// tool in one run, as the broker attributes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    /// Per run, over the run's whole life, e.g. `{ egress_bytes = "50MiB", requests = 10000, distinct_hosts = 20 }`.
    #[schemars(with = "Option<Budget>")]
    pub run: Option<Spanned<Budget>>,
    /// Per run and host pattern (`"api.openai.com"`, `"*.example.com"`): counts only what goes to matching hosts.
    /// `distinct_hosts` is not allowed here.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Budget>")]
    pub hosts: BTreeMap<Spanned<String>, Budget>,
}

/// One budget. Unset fields are unlimited; zero is refused (it would block everything).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Bytes sent upstream: request line, headers and body as sent, and what a tool writes into a CONNECT tunnel.
    pub egress_bytes: Option<Size>,
    /// Requests (each CONNECT tunnel counts as one, besides the requests decided inside it).
    pub requests: Option<u64>,
    /// Different destination host names (ports aside). Only under `run`.
    pub distinct_hosts: Option<u32>,
}

/// `[sandbox]`: settings for `airlock run`. Every field is optional; a profile's `[profiles.NAME.sandbox]` replaces
/// the fields it sets.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Environment variables passed from the caller into the tool's otherwise empty environment: names (`"LANG"`)
    /// or prefixes ending in `*` (`"LC_*"`). Names the sandbox sets itself (`HTTPS_PROXY`, `PATH`, `HOME`,
    /// `AIRLOCK_*`, ...) and names that make programs load or run code (`LD_*`, `BASH_ENV`, `NODE_OPTIONS`, `GIT_*`,
    /// `PAGER`, ...) are refused, as are prefixes that would match them. Default: `["LANG", "LANGUAGE", "LC_*",
    /// "TERM", "TZ", "NO_COLOR", "COLORTERM"]`.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub env: Option<Vec<Spanned<String>>>,
    /// Pause an agent's runs after this many denied egress attempts or leak blocks within a window, e.g.
    /// `{ denials = 5, window = "60s" }`. Unset: never paused automatically.
    #[schemars(with = "Option<AutoPauseConfig>")]
    pub auto_pause: Option<Spanned<AutoPauseConfig>>,
    /// Loopback port inside the sandbox where the broker listens for the tool (1-65535; default 3128).
    #[schemars(with = "Option<u16>", range(min = 1))]
    pub forward_port: Option<Spanned<u16>>,
    /// Scan each tool's output (stdout, after masking) for prompt injection with the guard, at these thresholds:
    /// `"strict"`, `"default"` or `"permissive"`; the verdict goes into the run record, and a flag or block is
    /// also a Detection Finding in the audit log. `"off"` (the default) does not scan.
    pub guard_tool_output: Option<GuardToolOutput>,
}

/// `[sandbox] guard_tool_output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GuardToolOutput {
    #[default]
    Off,
    Strict,
    Default,
    Permissive,
}

/// `[sandbox] auto_pause`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoPauseConfig {
    /// Denied egress attempts and leak blocks (together) that pause the agent; at least 1.
    #[schemars(with = "u32", range(min = 1))]
    pub denials: Spanned<u32>,
    /// How far back they are counted: from `"1s"` to `"1d"`.
    #[schemars(with = "Interval")]
    pub window: Spanned<Interval>,
}

/// `[redact]`: masking of what the tools run by `airlock run` print. Every field is optional; a profile's
/// `[profiles.NAME.redact]` replaces the fields it sets.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactConfig {
    /// Mask secrets, personal data and known vault values in the output (stdout and stderr) of tools run by
    /// `airlock run`. Default true; only `dev` may turn it off.
    #[schemars(with = "Option<bool>")]
    pub tool_output: Option<Spanned<bool>>,
    /// Personal-data families masked in tool output: `"email"`, `"phone"`, `"credit-card"`, `"iban"`, `"us-ssn"`,
    /// `"ip-address"`. Default: all but `"ip-address"`; `[]` masks none. Each may be listed once.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub pii: Option<Vec<Spanned<String>>>,
    /// How a match is masked: `"label"` (`[REDACTED:rule-id]`, the default) or `"shape"` (keeps length and
    /// punctuation).
    pub mask: Option<RedactMask>,
    /// Extra rule files, relative to the directory of this file. Whether they exist and parse is checked when they
    /// are used.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub rules: Option<Vec<Spanned<String>>>,
    /// Ids of rules to turn off (`"generic-password-assignment"`): 1-64 of a-z 0-9 `-`, each listed once.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub disable: Option<Vec<Spanned<String>>>,
}

/// `[redact] mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RedactMask {
    /// Replace a match with `[REDACTED:rule-id]`.
    #[default]
    Label,
    /// Keep the length, the punctuation and a rule's public prefix (`ghp_`); every letter and digit becomes `*`.
    Shape,
}

/// Where decisions are recorded.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// Deny any decision that cannot be recorded. Defaults to true; only `dev` may turn it off.
    #[schemars(with = "Option<bool>")]
    pub fail_closed: Option<Spanned<bool>>,
    /// Record allows as well as denies. Defaults to true.
    pub record_allows: Option<bool>,
    /// Sign a checkpoint every this many records (default 1000).
    pub checkpoint_every: Option<u64>,
    /// Sign a checkpoint at least this often while records arrive (default `"10s"`).
    pub checkpoint_interval: Option<Interval>,
    /// Sign a checkpoint this often even when nothing happens, so a silent log is visibly alive (default `"60s"`).
    pub heartbeat: Option<Interval>,
    /// Directory of the log (default: `$AIRLOCK_HOME/audit`).
    pub dir: Option<String>,
    /// Start a new segment file beyond this size (default `"64MiB"`).
    pub segment_max_size: Option<Size>,
    /// Start a new segment file after this long (default `"24h"`).
    pub segment_max_age: Option<Interval>,
    /// Delete segment files whose newest record is older than this (default: keep everything).
    pub retain_for: Option<Interval>,
    /// Keep at most this many segment files (default: keep everything).
    pub retain_segments: Option<u32>,
    #[serde(default)]
    pub sinks: Option<Vec<AuditSink>>,
}

/// One destination for copies of the audit records (the log itself is always kept locally, in `[audit] dir`).
/// Which fields apply depends on `type`.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditSink {
    #[serde(rename = "type")]
    #[schemars(with = "SinkKind")]
    pub kind: Spanned<SinkKind>,
    /// `file`: OCSF JSON Lines written here (for a log shipper such as Filebeat or Fluent Bit).
    pub path: Option<String>,
    /// `syslog`: `udp://HOST:PORT`, `tcp://HOST:PORT` (RFC 6587 octet counting) or `tls://HOST:PORT` (RFC 5425).
    /// HOST is an IP address.
    pub address: Option<String>,
    /// `syslog` over `tls://`: the name the collector's certificate must be valid for (default: the address's IP).
    pub server_name: Option<String>,
    /// `syslog`: `auth`, `daemon`, `local0`..`local7`, ...
    pub facility: Option<String>,
    /// `syslog`: record format.
    pub format: Option<SinkFormat>,
    /// `webhook`: HTTPS endpoint that receives OCSF JSON.
    pub url: Option<String>,
    /// `webhook`: bearer token, as a `${secret:NAME}` or `${env:VAR}` reference (resolved late).
    #[schemars(with = "Option<String>")]
    pub token: Option<Spanned<String>>,
    /// `syslog` over `tls://` and `webhook`: a PEM file of the CA certificates to trust (instead of the system's
    /// for syslog, of the built-in Mozilla roots for webhooks).
    pub ca: Option<String>,
    /// Refuse new records (so every decision is denied) while this sink is failing. Default false: failures are
    /// reported and retried, and the local log carries on.
    pub fail_closed: Option<bool>,
    /// Also send the signed checkpoints. Default false.
    pub checkpoints: Option<bool>,
    /// Items held while the sink is down; beyond this the oldest are dropped, counted and reported (default 65536).
    pub queue: Option<u32>,
}

/// `Debug` without the token (a literal one is a credential, which the `literal-credential` lint reports) and
/// without the URL's query string.
impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("kind", self.kind.get_ref())
            .field("path", &self.path)
            .field("address", &self.address)
            .field("facility", &self.facility)
            .field("format", &self.format)
            .field("url", &self.url.as_deref().map(|u| u.split('?').next().unwrap_or(u)))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("server_name", &self.server_name)
            .field("ca", &self.ca)
            .field("fail_closed", &self.fail_closed)
            .field("checkpoints", &self.checkpoints)
            .field("queue", &self.queue)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    File,
    Syslog,
    Webhook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    Cef,
    Ocsf,
}

/// What the config says about one secret. The vault holds the value and its own pins; the broker injects only
/// toward hosts allowed by both.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretMeta {
    /// Host patterns this secret may be sent to.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub hosts: Vec<Spanned<String>>,
    pub inject: Option<InjectRecipe>,
    /// Request body media types (`"application/json"`, `"application/x-www-form-urlencoded"`) in which the broker
    /// also swaps this secret's surrogate, escaped for the type. Headers and the URL are always searched.
    #[serde(default)]
    pub body_types: Vec<String>,
    /// Environment variable in which a sandboxed tool granted this secret finds its surrogate (default: derived
    /// from the secret's name by the sandbox). A plain name; the names `[sandbox] env` refuses are refused here too.
    #[schemars(with = "Option<String>")]
    pub env: Option<Spanned<String>>,
    pub description: Option<String>,
    /// Where the value lives when not in the local vault: `bao://MOUNT/PATH#FIELD`, `keyring://SERVICE/USER`,
    /// `keyctl://DESCRIPTION`, `env://NAME` or `file://PATH#KEY` (a sealed file, relative to this file). The pins,
    /// recipe and surrogate stay Airlock's, whichever store holds the value.
    #[schemars(with = "Option<String>")]
    pub source: Option<Spanned<String>>,
}

/// `[backends]`: one table per kind of store. The keyring (Secret Service) needs no settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backends {
    /// OpenBao or HashiCorp Vault, KV version 2 (`bao://` sources).
    pub bao: Option<BaoBackend>,
    /// The Linux kernel keyring (`keyctl://` sources).
    pub keyctl: Option<KeyctlBackend>,
    /// The environment or a `.env` file (`env://` sources).
    pub env: Option<EnvBackend>,
    /// Sealed files (`file://` sources): how to open them.
    pub file: Option<SealedFileBackend>,
}

/// `[backends.bao]`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BaoBackend {
    /// `https://host:port` (`http://` only to a loopback address).
    pub address: String,
    /// Sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// PEM CA certificate(s) to trust instead of the system roots, relative to this file.
    pub ca_file: Option<String>,
    pub auth: BaoAuthConfig,
    /// How long a value read is reused before asking again (default 30s).
    pub cache_ttl: Option<Interval>,
    /// How long past `cache_ttl` a value may still be served while the server cannot be asked (default: never).
    pub stale_while_revalidate: Option<Interval>,
    /// The most values cached at once (default 1024).
    pub cache_entries: Option<usize>,
}

/// `[backends.bao] auth`: how Airlock gets its token. Credentials are references (`${env:VAR}`, a file), never
/// literals in this file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
pub enum BaoAuthConfig {
    /// A token from `token_env` (default `BAO_TOKEN`, then `VAULT_TOKEN`).
    Token { token_env: Option<String> },
    /// AppRole: the role id and secret id from these environment variables (or files, for `*_file`).
    Approle {
        mount: Option<String>,
        role_id_env: Option<String>,
        role_id_file: Option<String>,
        secret_id_env: Option<String>,
        secret_id_file: Option<String>,
    },
    /// Kubernetes auth: the pod's service-account JWT (default
    /// `/var/run/secrets/kubernetes.io/serviceaccount/token`), for `role`.
    Kubernetes { mount: Option<String>, role: String, jwt_file: Option<String> },
    /// JWT auth with a JWT from a file, for `role`.
    Jwt { mount: Option<String>, role: String, jwt_file: String },
}

/// `[backends.keyctl]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyctlBackend {
    /// `"user"` (default), `"session"`, `"user-session"` or `"persistent"`.
    pub keyring: Option<String>,
}

/// `[backends.env]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvBackend {
    /// A `.env` file to read instead of the process environment, relative to this file.
    pub file: Option<String>,
}

/// `[backends.file]`: how sealed files are opened.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedFileBackend {
    /// A key file recipient of the sealed files, relative to this file.
    pub keyfile: Option<String>,
    /// An environment variable holding a passphrase recipient's passphrase.
    pub passphrase_env: Option<String>,
}

/// How the broker puts the secret on the wire.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectRecipe {
    /// Header name, e.g. `Authorization`. Framing headers (`Host`, `Content-Length`, ...) are refused.
    pub header: Option<String>,
    /// Header value with `{value}` where the secret goes, e.g. `"Bearer {value}"`.
    pub format: Option<String>,
    /// Query parameter name instead of a header.
    pub query: Option<String>,
}

/// A role: API permissions and tools, granted to every agent that has it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// `"*"`, `"KIND:*"`, `"KIND:VERB"`, `"KIND:own:*"`, `"KIND:own:VERB"`, e.g. `"conversations:own:*"`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub permissions: Vec<Spanned<String>>,
    /// Tools every holder may run; `"*"` means all.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub tools: Vec<Spanned<String>>,
}

/// An agent identity.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub roles: Vec<Spanned<String>>,
    /// The agent that spawns this one. A sub-agent never gets a tool its parent lacks.
    #[schemars(with = "Option<String>")]
    pub parent: Option<Spanned<String>>,
    /// How many levels of sub-agents may sit below this agent (0: it may not delegate). Unset means no limit of
    /// its own; its ancestors' limits still apply.
    pub max_depth: Option<u32>,
    /// Tools this agent may run (besides its roles' tools); `"*"` means all.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub tools: Vec<Spanned<String>>,
    /// Decisions for this agent are denied when the caller's risk score exceeds this (0-100).
    pub max_risk: Option<u8>,
    pub schedule: Option<Schedule>,
}

/// A tool and what it may do.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub description: Option<String>,
    /// Outbound HTTP(S) rules; a request is allowed when one rule allows it.
    #[serde(default)]
    pub network: Vec<NetworkRule>,
    #[serde(default)]
    pub fs: ToolFs,
    #[serde(default)]
    pub exec: ToolExec,
    /// Secrets this tool may use (surrogates in its environment, injection on the wire).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub secrets: Vec<Spanned<String>>,
    #[serde(default)]
    pub limits: Limits,
    /// Environment variables passed through to this tool besides `[sandbox] env`: names or prefixes ending in `*`,
    /// with the same refusals.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub env: Vec<Spanned<String>>,
    pub max_risk: Option<u8>,
    pub schedule: Option<Schedule>,
}

/// One outbound rule.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkRule {
    /// `"api.github.com"`, `"api.github.com:8443"`, `"*.example.com"` (subdomains only), `"host:*"` (any port).
    /// Without a port only the scheme's default port (443/80) is allowed.
    #[schemars(with = "Vec<String>")]
    pub hosts: Vec<Spanned<String>>,
    /// Allowed methods; empty means any.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub methods: Vec<Spanned<String>>,
    /// Allowed path prefixes, matched segment by segment (`/repos` allows `/repos/x`, not `/reposx`); empty
    /// means any path.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub paths: Vec<Spanned<String>>,
    pub max_request_bytes: Option<Size>,
}

/// Filesystem access. Entries are absolute paths (a directory covers everything below it) or globs
/// (`**/.git/config`); `${WORKSPACE}` and `${HOME}` expand at load time; an entry starting with `!` masks out what
/// it matches from that list.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolFs {
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub read: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub write: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub exec: Vec<Spanned<String>>,
    /// Denied for read, write and exec whatever else allows it.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub deny: Vec<Spanned<String>>,
}

/// Programs: names are resolved to absolute paths (symlinks followed) when the config loads.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolExec {
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub allow: Vec<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub deny: Vec<Spanned<String>>,
}

/// A weekly time window, in UTC.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// `["mon", "tue", ...]`; empty means every day.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub days: Vec<Spanned<String>>,
    /// `"09:00-17:30"` (UTC, end exclusive); unset means all day.
    #[schemars(with = "Option<String>")]
    pub hours: Option<Spanned<String>>,
}

/// Overlays per built-in profile.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileOverlays {
    pub dev: Option<ProfileOverlay>,
    pub prod: Option<ProfileOverlay>,
    pub ide: Option<ProfileOverlay>,
    pub test: Option<ProfileOverlay>,
}

/// What a profile may change. Fields set here replace the base file's field of the same name.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileOverlay {
    pub network: Option<Network>,
    pub fs: Option<GlobalFs>,
    pub limits: Option<Limits>,
    pub audit: Option<Audit>,
    pub rate_limits: Option<RateLimits>,
    pub budgets: Option<Budgets>,
    pub sandbox: Option<SandboxConfig>,
    pub redact: Option<RedactConfig>,
}

/// A byte count written as an integer or as a string with a binary unit (`"64KiB"`, `"512MiB"`, `"2GiB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Size(pub u64);

impl JsonSchema for Size {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Bytes as an integer, or a number with a unit: B, KiB, MiB, GiB, TiB (KB, MB, GB, TB are powers of 1000).",
            "oneOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^\\s*[0-9]+\\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?\\s*$" }
            ]
        })
    }
}

impl Size {
    pub fn parse(s: &str) -> Result<Size, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        if num.is_empty() {
            return Err(format!("size {s:?} must start with a number, e.g. \"512MiB\""));
        }
        let n: u64 = num.parse().map_err(|_| format!("size {s:?} is too large"))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            "TiB" => 1 << 40,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            "TB" => 1_000_000_000_000,
            other => return Err(format!("unknown size unit {other:?}: use B, KiB, MiB, GiB or TiB")),
        };
        n.checked_mul(mult).map(Size).ok_or_else(|| format!("size {s:?} is too large"))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) if n >= 0 => Ok(Size(n as u64)),
            Raw::Int(_) => Err(serde::de::Error::custom("a size cannot be negative")),
            Raw::Text(t) => Size::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// A length of time: `"500ms"`, `"10s"`, `"5m"`, `"2h"` or `"7d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval(pub std::time::Duration);

impl JsonSchema for Interval {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Interval".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A length of time: a number and a unit, ms, s, m, h or d (e.g. \"10s\", \"24h\").",
            "type": "string",
            "pattern": "^[0-9]+(ms|s|m|h|d)$"
        })
    }
}

impl Interval {
    pub fn parse(s: &str) -> Result<Interval, String> {
        let bad = || format!("duration {s:?}: use a number and a unit: ms, s, m, h or d (e.g. \"10s\")");
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| bad())?;
        let ms: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        let total = n.checked_mul(ms).ok_or_else(bad)?;
        if total == 0 {
            return Err(format!("duration {s:?} must be more than zero"));
        }
        Ok(Interval(std::time::Duration::from_millis(total)))
    }
}

impl Serialize for Interval {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Interval, D::Error> {
        let text = String::deserialize(d)?;
        Interval::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The JSON Schema of `airlock.toml`, as published in `docs/airlock.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(ConfigFile);
    let mut out = serde_json::to_string_pretty(&schema).expect("a schema always serialises");
    out.push('\n');
    out
}
