//! OpenBao / HashiCorp Vault, KV version 2: `bao://MOUNT/PATH#FIELD`.
//!
//! # What it guards against
//! - **Values and tokens leaking**: the server's answers are read into zeroizing buffers and the one wanted field
//!   is copied out of them into [`SecretBytes`]; tokens, secret ids and JWTs live in [`Zeroizing`] memory. No
//!   `Debug`, `Display` or error shows a token or a value: server messages are cut short, and anything shaped
//!   like a token (or equal to a configured credential) is cut out of them. (Copies inside the HTTP and TLS stack,
//!   and serde's scratch buffer for escaped strings, are out of our reach.)
//! - **A locator reaching another endpoint**: the mount, path and field are checked again here (the `Locator` enum
//!   can be built without parsing), and every path segment is percent-encoded, so `..`, `%2e%2e`, `?`, `#` or `/`
//!   inside a segment are just characters of a KV name. Redirects are never followed (a standby's 307 would take
//!   the token with it), and no proxy is taken from the environment.
//! - **Plain-text credentials on the network**: `http://` is refused except to a loopback address literal
//!   (`127.0.0.1`, `[::1]`): a dev server on the same host. TLS is rustls (ring), with the system's trust roots or
//!   only the CA(s) in [`BaoConfig::ca_file`].
//! - **Serving what should not be served**: the cache (see [`super::cache`]) serves a value only within its time to
//!   live, plus the stale-while-revalidate window while the server cannot be asked; a sealed server yields
//!   [`BackendError::Sealed`], never an old value past that. Writes and deletes drop the path's cached values.
//! - **A dead server stalling callers**: bounded retries with jittered backoff, then a circuit breaker (see
//!   [`super::breaker`]) that fails calls at once until a probe succeeds.
//!
//! # Auth
//! - [`BaoAuth::Token`]: a static token (e.g. from `BAO_TOKEN` / `VAULT_TOKEN`: [`BaoAuth::token_from_env`]). It is
//!   renewed if renewable; it cannot be replaced, so once it expires or is revoked every call fails with
//!   [`BackendError::Denied`] saying so, without asking the server again.
//! - [`BaoAuth::AppRole`]: `role_id` + `secret_id` to `auth/{mount}/login` (mount `approle` by default).
//! - [`BaoAuth::Jwt`]: `{role, jwt}` to `auth/{mount}/login`, the JWT read from a file at each login (Kubernetes
//!   rotates projected service-account tokens). Mount `kubernetes` for the Kubernetes auth method, or `jwt` (or
//!   wherever it is mounted) for the JWT auth method: both take this login.
//!
//! Tokens are renewed lazily: each call checks whether two thirds of the token's lease have passed and, if so,
//! renews it (`auth/token/renew-self`) before using it; if renewal fails, or the lease has shrunk to under half
//! of what login gave (a max TTL is near), it logs in again. Lazy rather than a background thread because the
//! backend then owns no thread (nothing to stop or leak, `Drop` is trivial, nothing wakes an idle daemon), and
//! login-based auth recovers from an idle period longer than the TTL by logging in on the next call. Only a static
//! token can be lost to such an idle period; use a periodic token or AppRole/JWT for long-idle daemons.
//!
//! A 403 on a request is checked with `auth/token/lookup-self`: if the token is no longer valid (expired or
//! revoked early), login-based auth logs in once more and retries the request once; if the token is valid, the
//! 403 is the policy's answer and is returned as [`BackendError::Denied`].
//!
//! # KV v2 mapping
//! - read: `GET /v1/{mount}/data/{path}` (`?version=N` for [`BaoBackend::read_version`]); the field from
//!   `data.data`, which must be a JSON string.
//! - write: a KV v2 secret versions its whole field map, so writing one field reads the current version and writes
//!   it back with that field replaced, with check-and-set: [`Expect::Any`] uses the version it read (and tries
//!   again, up to three times, if another writer got in between), [`Expect::Version`] fails with
//!   [`BackendError::Conflict`] unless the current version is that one, and [`Expect::Absent`] writes with
//!   `cas=0`, which the server refuses if the secret path has ever been written. Needs `read` and `create` /
//!   `update` on `{mount}/data/{path}`.
//! - list: `LIST /v1/{mount}/metadata/{prefix}`; metadata: `GET /v1/{mount}/metadata/{path}`.
//! - delete (the trait's): soft-deletes the current version. [`BaoBackend::delete_versions`],
//!   [`BaoBackend::undelete`], [`BaoBackend::destroy`] take version numbers; [`BaoBackend::destroy_all`] removes
//!   the metadata and every version. These act on the whole secret path (every field).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use airlock_crypto::SecretBytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use ureq::http::header::{CONTENT_TYPE, HeaderName};
use ureq::http::{HeaderValue, Method, Uri};
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use zeroize::Zeroizing;

use super::breaker::{BreakerPolicy, BreakerState, CircuitBreaker, Failed, RetryPolicy, with_retries};
use super::cache::{CacheStats, Clock, ValueCache};
use super::{BackendError, BackendKind, CachePolicy, Expect, Fetched, Locator, Metadata, SecretBackend};

/// Where a Kubernetes pod finds its service-account token.
pub const DEFAULT_KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The largest response body read (KV v2 values are limited to about 1 MiB by default on the server).
const MAX_BODY: u64 = 8 * 1024 * 1024;
/// The largest JWT file read.
const MAX_JWT_FILE: u64 = 64 * 1024;
/// Server messages quoted in errors are cut to this many characters.
const MAX_MESSAGE: usize = 300;
/// Read-modify-write attempts for [`Expect::Any`] when another writer keeps winning.
const WRITE_ATTEMPTS: u32 = 3;

const VAULT_TOKEN: &str = "x-vault-token";
const VAULT_NAMESPACE: &str = "x-vault-namespace";
const VAULT_REQUEST: &str = "x-vault-request";

/// How to reach and authenticate to an OpenBao or Vault server. `Debug` never shows a credential.
#[derive(Clone)]
pub struct BaoConfig {
    /// `https://host[:port]`, or `http://127.0.0.1:port` (loopback only). No path, query or credentials.
    pub address: String,
    /// Sent as `X-Vault-Namespace` (OpenBao namespaces, Vault Enterprise). `None`: the root namespace.
    pub namespace: Option<String>,
    /// PEM file of the CA certificate(s) to trust *instead of* the system's roots.
    pub ca_file: Option<PathBuf>,
    pub auth: BaoAuth,
    pub timeouts: BaoTimeouts,
    pub retry: RetryPolicy,
    pub cache: CachePolicy,
    pub breaker: BreakerPolicy,
    /// Ages cache entries, breaker cool-downs and token leases. The system clock unless a test says otherwise.
    pub clock: Clock,
}

impl BaoConfig {
    /// A configuration with the default timeouts, retries, cache and breaker.
    pub fn new(address: impl Into<String>, auth: BaoAuth) -> BaoConfig {
        BaoConfig {
            address: address.into(),
            namespace: None,
            ca_file: None,
            auth,
            timeouts: BaoTimeouts::default(),
            retry: RetryPolicy::default(),
            cache: CachePolicy::default(),
            breaker: BreakerPolicy::default(),
            clock: Clock::system(),
        }
    }
}

impl fmt::Debug for BaoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaoConfig")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("ca_file", &self.ca_file)
            .field("auth", &self.auth)
            .field("timeouts", &self.timeouts)
            .field("retry", &self.retry)
            .field("cache", &self.cache)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

/// How the backend gets its token. `Debug` shows the method and mount, never a credential.
#[derive(Clone)]
pub enum BaoAuth {
    /// A token given to Airlock (visible ASCII).
    Token(SecretBytes),
    /// AppRole: `POST auth/{mount}/login` with `role_id` and `secret_id`.
    AppRole { mount: String, role_id: SecretBytes, secret_id: SecretBytes },
    /// Kubernetes or JWT auth: `POST auth/{mount}/login` with `role` and the JWT read from `jwt_file`.
    Jwt { mount: String, role: String, jwt_file: PathBuf },
}

impl BaoAuth {
    /// A static token.
    pub fn token(token: SecretBytes) -> BaoAuth {
        BaoAuth::Token(token)
    }

    /// The token in `BAO_TOKEN`, else `VAULT_TOKEN`.
    pub fn token_from_env() -> Result<BaoAuth, BackendError> {
        for name in ["BAO_TOKEN", "VAULT_TOKEN"] {
            if let Some(v) = std::env::var_os(name).filter(|v| !v.is_empty()) {
                return Ok(BaoAuth::Token(SecretBytes::new(v.into_encoded_bytes())));
            }
        }
        Err(BackendError::Invalid {
            locator: "bao".into(),
            reason: "token auth needs BAO_TOKEN or VAULT_TOKEN in the environment".into(),
        })
    }

    /// AppRole at the default mount, `approle`.
    pub fn approle(role_id: SecretBytes, secret_id: SecretBytes) -> BaoAuth {
        BaoAuth::AppRole { mount: "approle".into(), role_id, secret_id }
    }

    /// The Kubernetes auth method at its default mount, `kubernetes`, with the pod's service-account token.
    pub fn kubernetes(role: impl Into<String>) -> BaoAuth {
        BaoAuth::Jwt {
            mount: "kubernetes".into(),
            role: role.into(),
            jwt_file: PathBuf::from(DEFAULT_KUBERNETES_TOKEN_FILE),
        }
    }

    /// The JWT (or Kubernetes) auth method at `mount`, with the JWT in `jwt_file`.
    pub fn jwt(mount: impl Into<String>, role: impl Into<String>, jwt_file: impl Into<PathBuf>) -> BaoAuth {
        BaoAuth::Jwt { mount: mount.into(), role: role.into(), jwt_file: jwt_file.into() }
    }

    fn can_login(&self) -> bool {
        !matches!(self, BaoAuth::Token(_))
    }

    fn login_path(&self) -> String {
        match self {
            BaoAuth::Token(_) => "auth/token".into(),
            BaoAuth::AppRole { mount, .. } | BaoAuth::Jwt { mount, .. } => format!("auth/{mount}/login"),
        }
    }

    /// The credentials whose text must never appear in an error.
    fn secrets(&self) -> Vec<&[u8]> {
        match self {
            BaoAuth::Token(t) => vec![t.expose()],
            BaoAuth::AppRole { role_id, secret_id, .. } => vec![role_id.expose(), secret_id.expose()],
            BaoAuth::Jwt { .. } => vec![],
        }
    }
}

impl fmt::Debug for BaoAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BaoAuth::Token(_) => f.write_str("Token(<redacted>)"),
            BaoAuth::AppRole { mount, .. } => f
                .debug_struct("AppRole")
                .field("mount", mount)
                .field("role_id", &"<redacted>")
                .field("secret_id", &"<redacted>")
                .finish(),
            BaoAuth::Jwt { mount, role, jwt_file } => {
                f.debug_struct("Jwt").field("mount", mount).field("role", role).field("jwt_file", jwt_file).finish()
            }
        }
    }
}

/// Limits on one HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaoTimeouts {
    /// Establishing the TCP connection.
    pub connect: Duration,
    /// One whole request: connect, TLS, send, and the response.
    pub request: Duration,
}

impl Default for BaoTimeouts {
    fn default() -> Self {
        BaoTimeouts { connect: Duration::from_secs(5), request: Duration::from_secs(30) }
    }
}

/// Logins and renewals so far (for metrics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthStats {
    pub logins: u64,
    pub renewals: u64,
}

/// One version of a KV v2 secret, as its metadata tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaoVersion {
    pub version: u64,
    pub created: Option<SystemTime>,
    /// When it was soft-deleted (undelete brings it back).
    pub deleted: Option<SystemTime>,
    /// Destroyed: gone for good.
    pub destroyed: bool,
}

impl BaoVersion {
    pub fn readable(&self) -> bool {
        self.deleted.is_none() && !self.destroyed
    }
}

/// (mount, path, field): one cached value.
type CacheKey = (String, String, String);

/// The KV v2 backend. Cheap to share (`Send + Sync`); every method blocks for at most the configured timeouts,
/// retries and backoff.
pub struct BaoBackend {
    http: Http,
    auth: BaoAuth,
    clock: Clock,
    session: Mutex<Option<Session>>,
    retry: RetryPolicy,
    breaker: CircuitBreaker,
    cache: ValueCache<CacheKey>,
    logins: AtomicU64,
    renewals: AtomicU64,
}

impl fmt::Debug for BaoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaoBackend")
            .field("server", &self.http.label)
            .field("auth", &self.auth)
            .field("breaker", &self.breaker.state())
            .field("cache", &self.cache.stats())
            .finish_non_exhaustive()
    }
}

/// A token and what the server said about its lease.
struct Session {
    token: Zeroizing<String>,
    obtained: Instant,
    /// `None`: the token does not expire, or its lease is unknown.
    lease: Option<Duration>,
    /// What the last login (or lookup, for a static token) gave: renewal is abandoned for a login once a renewed
    /// lease falls under half of this.
    full_lease: Option<Duration>,
    renewable: bool,
    renewal_refused: bool,
    /// A static token the server no longer accepts; every call fails without asking.
    dead: bool,
}

impl Session {
    fn refresh_due(&self, now: Instant) -> bool {
        self.lease.is_some_and(|l| now >= self.obtained + l * 2 / 3)
    }

    fn expired(&self, now: Instant) -> bool {
        self.lease.is_some_and(|l| now >= self.obtained + l)
    }
}

/// What a request is, for the retry and error logic.
struct Req<'a> {
    method: Method,
    /// After `/v1/`, already encoded, query included.
    path: String,
    body: Option<&'a [u8]>,
    /// Safe to send twice (GET, LIST, DELETE, undelete, destroy); writes and logins are retried only when they
    /// surely did not reach the server, or the server said it did not process them (429, 503).
    idempotent: bool,
    /// Names what was asked for in errors: a locator, or an API path.
    shown: String,
}

struct Reply {
    status: u16,
    body: Zeroizing<Vec<u8>>,
}

impl BaoBackend {
    /// Checks the configuration and builds the client. Does not contact the server: the first call logs in (see
    /// [`BaoBackend::authenticate`] to do it up front).
    pub fn new(config: BaoConfig) -> Result<BaoBackend, BackendError> {
        let target = Target::parse(&config.address)?;
        let namespace = match &config.namespace {
            None => None,
            Some(ns) => Some(check_namespace(ns)?),
        };
        check_auth(&config.auth)?;
        let roots = match &config.ca_file {
            Some(path) => load_roots(path)?,
            None => system_roots(),
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .root_certs(roots)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .proxy(None)
            .allow_non_standard_methods(true)
            .timeout_connect(Some(config.timeouts.connect))
            .timeout_global(Some(config.timeouts.request))
            .user_agent(concat!("airlock-vault/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        let label = match &namespace {
            None => format!("bao {}", target.base),
            Some(ns) => format!("bao {} namespace {ns}", target.base),
        };
        let namespace = match namespace {
            None => None,
            Some(ns) => Some(HeaderValue::from_str(&ns).map_err(|_| invalid_config("the namespace is not ASCII"))?),
        };
        Ok(BaoBackend {
            http: Http { agent, base: target.base, namespace, label: label.clone() },
            auth: config.auth,
            clock: config.clock.clone(),
            session: Mutex::new(None),
            retry: config.retry,
            breaker: CircuitBreaker::new(config.breaker, config.clock.clone(), label),
            cache: ValueCache::new(config.cache, config.clock),
            logins: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
        })
    }

    /// The server and namespace, as errors name them.
    pub fn label(&self) -> &str {
        &self.http.label
    }

    /// Logs in (or, for a static token, looks it up) now, so that bad credentials show at startup.
    pub fn authenticate(&self) -> Result<(), BackendError> {
        self.token().map(|_| ())
    }

    pub fn auth_stats(&self) -> AuthStats {
        AuthStats { logins: self.logins.load(Ordering::Relaxed), renewals: self.renewals.load(Ordering::Relaxed) }
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// Drops the cached values of the secret path `locator` is in (all its fields).
    pub fn invalidate(&self, locator: &Locator) -> Result<(), BackendError> {
        let kv = KvPath::of(locator)?;
        self.invalidate_path(&kv);
        Ok(())
    }

    /// Drops every cached value.
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    /// The field at `locator` in version `version` (not cached).
    pub fn read_version(&self, locator: &Locator, version: u64) -> Result<Fetched, BackendError> {
        let kv = KvPath::of(locator)?;
        self.fetch(&kv, Some(version))
    }

    /// Reads from the server, bypassing the cache (and not filling it).
    pub fn read_uncached(&self, locator: &Locator) -> Result<Fetched, BackendError> {
        let kv = KvPath::of(locator)?;
        self.fetch(&kv, None)
    }

    /// Every version the metadata knows, oldest first.
    pub fn versions(&self, locator: &Locator) -> Result<Vec<BaoVersion>, BackendError> {
        let kv = KvPath::of(locator)?;
        Ok(self.read_metadata(&kv)?.1)
    }

    /// Soft-deletes these versions of the secret path (undelete brings them back).
    pub fn delete_versions(&self, locator: &Locator, versions: &[u64]) -> Result<(), BackendError> {
        self.versions_op(locator, "delete", versions)
    }

    /// Brings soft-deleted versions back.
    pub fn undelete(&self, locator: &Locator, versions: &[u64]) -> Result<(), BackendError> {
        self.versions_op(locator, "undelete", versions)
    }

    /// Destroys these versions for good.
    pub fn destroy(&self, locator: &Locator, versions: &[u64]) -> Result<(), BackendError> {
        self.versions_op(locator, "destroy", versions)
    }

    /// Removes the secret path entirely: its metadata and every version.
    pub fn destroy_all(&self, locator: &Locator) -> Result<(), BackendError> {
        self.delete_under(locator, "metadata")
    }

    /// `DELETE MOUNT/AREA/PATH`: `data` soft-deletes the current version, `metadata` removes the path and every
    /// version. The cached value goes either way, since whatever happened it may be out of date.
    fn delete_under(&self, locator: &Locator, area: &str) -> Result<(), BackendError> {
        let kv = KvPath::of(locator)?;
        let req = Req {
            method: Method::DELETE,
            path: format!("{}/{area}/{}", encode_path(kv.mount), encode_path(kv.path)),
            body: None,
            idempotent: true,
            shown: kv.shown.clone(),
        };
        let result = self.authed(&req).and_then(|r| self.expect_success(&req, r));
        self.invalidate_path(&kv);
        result.map(|_| ())
    }

    fn versions_op(&self, locator: &Locator, op: &str, versions: &[u64]) -> Result<(), BackendError> {
        let kv = KvPath::of(locator)?;
        if versions.is_empty() {
            return Err(BackendError::Invalid { locator: kv.shown, reason: format!("{op}: no versions given") });
        }
        let body = serde_json::to_vec(&serde_json::json!({ "versions": versions }))
            .map_err(|_| BackendError::Invalid { locator: kv.shown.clone(), reason: "cannot encode".into() })?;
        let req = Req {
            method: Method::POST,
            path: format!("{}/{op}/{}", encode_path(kv.mount), encode_path(kv.path)),
            body: Some(&body),
            idempotent: true,
            shown: kv.shown.clone(),
        };
        let result = self.authed(&req).and_then(|r| self.expect_success(&req, r));
        self.invalidate_path(&kv);
        result.map(|_| ())
    }

    fn invalidate_path(&self, kv: &KvPath<'_>) {
        self.cache.invalidate(|(m, p, _)| m == kv.mount && p == kv.path);
    }

    // --- KV ------------------------------------------------------------------------------------------------------

    fn fetch(&self, kv: &KvPath<'_>, version: Option<u64>) -> Result<Fetched, BackendError> {
        let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
        let req = Req {
            method: Method::GET,
            path: format!("{}/data/{}{query}", encode_path(kv.mount), encode_path(kv.path)),
            body: None,
            idempotent: true,
            shown: kv.shown.clone(),
        };
        let reply = self.authed(&req)?;
        if reply.status == 404 {
            return Err(self.not_found(kv, &reply));
        }
        let reply = self.expect_success(&req, reply)?;
        let read: KvRead<'_> = parse_data(&reply.body, &kv.shown)?;
        let meta_version = read.metadata.as_ref().map(|m| m.version).filter(|v| *v > 0);
        let Some(fields) = read.data else {
            return Err(BackendError::NotFound(format!("{} (that version is deleted or destroyed)", kv.shown)));
        };
        let Some(raw) = fields.get(kv.field) else {
            return Err(BackendError::NotFound(format!("{} (the secret has no field {:?})", kv.shown, kv.field)));
        };
        let value = field_value(raw).map_err(|what| BackendError::Invalid {
            locator: kv.shown.clone(),
            reason: format!("the field holds {what}, not a string"),
        })?;
        Ok(Fetched { value, version: meta_version, fetched_at: SystemTime::now(), stale: false })
    }

    fn not_found(&self, kv: &KvPath<'_>, reply: &Reply) -> BackendError {
        // A deleted or destroyed current version answers 404 with its metadata.
        let detail = parse_data::<KvRead<'_>>(&reply.body, &kv.shown).ok().and_then(|r| r.metadata).map(|m| {
            if m.destroyed {
                format!(" (version {} is destroyed)", m.version)
            } else if !m.deletion_time.is_empty() {
                format!(" (version {} is deleted)", m.version)
            } else {
                String::new()
            }
        });
        BackendError::NotFound(format!("{}{}", kv.shown, detail.unwrap_or_default()))
    }

    fn write_kv(&self, kv: &KvPath<'_>, value: &SecretBytes, expect: Expect) -> Result<u64, BackendError> {
        let text = std::str::from_utf8(value.expose()).map_err(|_| BackendError::Invalid {
            locator: kv.shown.clone(),
            reason: "KV v2 stores text and the value is not valid UTF-8".into(),
        })?;
        let data_path = format!("{}/data/{}", encode_path(kv.mount), encode_path(kv.path));
        for _ in 0..WRITE_ATTEMPTS {
            // The current version and its fields, which the write keeps (all but the one being written).
            let current: Option<Reply> = match expect {
                Expect::Absent => None,
                Expect::Any | Expect::Version(_) => {
                    let req = Req {
                        method: Method::GET,
                        path: data_path.clone(),
                        body: None,
                        idempotent: true,
                        shown: kv.shown.clone(),
                    };
                    let reply = self.authed(&req)?;
                    if reply.status == 404 { Some(reply) } else { Some(self.expect_success(&req, reply)?) }
                }
            };
            let parsed = match &current {
                // A 404 without a body of ours (nothing ever written) parses as no data and no metadata.
                Some(r) => parse_data::<KvRead<'_>>(&r.body, &kv.shown).unwrap_or_default(),
                None => KvRead::default(),
            };
            let current_version = parsed.metadata.as_ref().map(|m| m.version).unwrap_or(0);
            let cas = match expect {
                Expect::Absent => 0,
                Expect::Any => current_version,
                Expect::Version(n) => {
                    if n != current_version {
                        return Err(BackendError::Conflict {
                            locator: kv.shown.clone(),
                            reason: format!("expected version {n}, but the current version is {current_version}"),
                        });
                    }
                    n
                }
            };
            let kept = parsed.data.unwrap_or_default();
            let body = build_json(|out| {
                out.raw(b"{\"options\":{\"cas\":");
                out.raw(cas.to_string().as_bytes());
                out.raw(b"},\"data\":{");
                for (name, raw) in kept.iter().filter(|(name, _)| name.as_str() != kv.field) {
                    out.string(name);
                    out.raw(b":");
                    out.raw(raw.get().as_bytes());
                    out.raw(b",");
                }
                out.string(kv.field);
                out.raw(b":");
                out.string(text);
                out.raw(b"}}");
            });
            let req = Req {
                method: Method::POST,
                path: data_path.clone(),
                body: Some(&body),
                idempotent: false,
                shown: kv.shown.clone(),
            };
            let result = self.authed(&req);
            // Whatever happened, the cached value may be out of date now.
            self.invalidate_path(kv);
            let reply = result?;
            if reply.status == 400 && server_message(&reply.body).contains("check-and-set") {
                if expect == Expect::Any {
                    continue;
                }
                let reason = match expect {
                    Expect::Absent => "the secret path already exists (or existed)".to_string(),
                    _ => "another writer changed it first".to_string(),
                };
                return Err(BackendError::Conflict { locator: kv.shown.clone(), reason });
            }
            let reply = self.expect_success(&req, reply)?;
            let written: KvVersionMeta = parse_data(&reply.body, &kv.shown)?;
            return Ok(written.version);
        }
        Err(BackendError::Conflict {
            locator: kv.shown.clone(),
            reason: format!("other writers changed it {WRITE_ATTEMPTS} times while this write was trying"),
        })
    }

    fn read_metadata(&self, kv: &KvPath<'_>) -> Result<(Metadata, Vec<BaoVersion>), BackendError> {
        let req = Req {
            method: Method::GET,
            path: format!("{}/metadata/{}", encode_path(kv.mount), encode_path(kv.path)),
            body: None,
            idempotent: true,
            shown: kv.shown.clone(),
        };
        let reply = self.authed(&req)?;
        let reply = self.expect_success(&req, reply)?;
        let meta: KvMetadata = parse_data(&reply.body, &kv.shown)?;
        let mut versions: Vec<BaoVersion> = meta
            .versions
            .iter()
            .filter_map(|(n, v)| {
                Some(BaoVersion {
                    version: n.parse().ok()?,
                    created: parse_time(&v.created_time),
                    deleted: parse_time(&v.deletion_time),
                    destroyed: v.destroyed,
                })
            })
            .collect();
        versions.sort_by_key(|v| v.version);
        let metadata = Metadata {
            current_version: Some(meta.current_version).filter(|v| *v > 0),
            versions: versions.iter().map(|v| v.version).collect(),
            created: parse_time(&meta.created_time),
            updated: parse_time(&meta.updated_time),
        };
        Ok((metadata, versions))
    }

    // --- requests ------------------------------------------------------------------------------------------------

    /// Sends `req` with the token, checking a 403 once against the token's validity (see the module docs).
    /// Returns every answer that is not transient, for the caller to interpret.
    fn authed(&self, req: &Req<'_>) -> Result<Reply, BackendError> {
        let mut logged_in_again = false;
        loop {
            let token = self.token()?;
            let reply = self.send(req, Some(&token))?;
            if reply.status != 403 {
                return Ok(reply);
            }
            match self.lookup_self(&token) {
                Ok(_) => {
                    return Err(BackendError::Denied {
                        locator: req.shown.clone(),
                        reason: format!(
                            "{} (the token is valid: its policies do not allow this)",
                            self.message_or(&reply, "permission denied")
                        ),
                    });
                }
                Err(e) if e.is_transient() => return Err(e),
                Err(_) => {
                    self.forget(&token);
                    if self.auth.can_login() && !logged_in_again {
                        logged_in_again = true;
                        continue;
                    }
                    return Err(BackendError::Denied {
                        locator: req.shown.clone(),
                        reason: if self.auth.can_login() {
                            "the server refused a token it had just issued".into()
                        } else {
                            STATIC_TOKEN_INVALID.into()
                        },
                    });
                }
            }
        }
    }

    /// One request through the circuit breaker and the retry policy. 5xx, 429 and transport failures come back as
    /// errors (transient); every other status as a [`Reply`].
    fn send(&self, req: &Req<'_>, token: Option<&str>) -> Result<Reply, BackendError> {
        with_retries(&self.breaker, &self.retry, || {
            let reply = self.http.exchange(req, token).map_err(|t| Failed {
                error: BackendError::Unavailable { backend: self.http.label.clone(), reason: self.scrub(&t.reason) },
                retry: t.before_send || (req.idempotent && t.retryable),
            })?;
            let status = reply.status;
            let message = || self.message_or(&reply, "");
            let unavailable = |reason: String, retry: bool| Failed {
                error: BackendError::Unavailable { backend: self.http.label.clone(), reason },
                retry,
            };
            match status {
                503 if message().to_ascii_lowercase().contains("sealed") => Err(Failed {
                    error: BackendError::Sealed {
                        backend: self.http.label.clone(),
                        reason: "the server is sealed (an operator must unseal it); reads fail closed and cached \
                                 values are served only within their time to live"
                            .into(),
                    },
                    retry: false,
                }),
                429 | 503 => Err(unavailable(with_message(status, &message()), true)),
                501 => Err(unavailable(with_message(status, &message()), false)),
                500..=599 => Err(unavailable(with_message(status, &message()), req.idempotent)),
                300..=399 => Err(unavailable(
                    format!(
                        "redirected (HTTP {status}) and redirects are not followed (the token would go along): point \
                         the address at the active node or at a load balancer"
                    ),
                    false,
                )),
                _ => Ok(reply),
            }
        })
    }

    /// `reply` if it is a success; else the error its status means.
    fn expect_success(&self, req: &Req<'_>, reply: Reply) -> Result<Reply, BackendError> {
        let shown = || req.shown.clone();
        match reply.status {
            200..=299 => Ok(reply),
            404 => Err(BackendError::NotFound(shown())),
            403 => Err(BackendError::Denied { locator: shown(), reason: self.message_or(&reply, "permission denied") }),
            400 if server_message(&reply.body).contains("check-and-set") => {
                Err(BackendError::Conflict { locator: shown(), reason: self.message_or(&reply, "") })
            }
            status => Err(BackendError::Invalid {
                locator: shown(),
                reason: format!(
                    "the server refused the request: {}",
                    with_message(status, &self.message_or(&reply, ""))
                ),
            }),
        }
    }

    // --- auth ----------------------------------------------------------------------------------------------------

    fn session(&self) -> MutexGuard<'_, Option<Session>> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token to send, after logging in, renewing or logging in again as the lease requires.
    fn token(&self) -> Result<Zeroizing<String>, BackendError> {
        let mut guard = self.session();
        if guard.is_none() {
            *guard = Some(self.establish()?);
        }
        let Some(session) = guard.as_mut() else { unreachable!("set above") };
        let now = self.clock.now();
        if session.dead {
            return Err(self.denied(STATIC_TOKEN_INVALID.into()));
        }
        if session.refresh_due(now) {
            if session.renewable && !session.renewal_refused {
                match self.renew(&session.token) {
                    Ok(renewed) => {
                        self.renewals.fetch_add(1, Ordering::Relaxed);
                        let shrinking = match (renewed.lease, session.full_lease) {
                            (Some(l), Some(full)) => l < full / 2,
                            _ => false,
                        };
                        session.obtained = now;
                        session.lease = renewed.lease;
                        session.renewable = renewed.renewable;
                        if shrinking && self.auth.can_login() {
                            // The max TTL is near: a fresh login beats renewing ever shorter leases.
                            if let Ok(fresh) = self.login() {
                                *session = fresh;
                            }
                        }
                    }
                    Err(e) if e.is_transient() => {
                        if session.expired(now) {
                            return Err(e);
                        }
                    }
                    Err(_) => {
                        session.renewal_refused = true;
                        if self.auth.can_login() {
                            *session = self.login()?;
                        }
                    }
                }
            } else if self.auth.can_login() {
                match self.login() {
                    Ok(fresh) => *session = fresh,
                    Err(e) if session.expired(now) => return Err(e),
                    // The current token is still good for a while: use it, and try logging in on the next call.
                    Err(_) => {}
                }
            }
        }
        if session.expired(now) {
            if !self.auth.can_login() {
                session.dead = true;
                let ago = now.saturating_duration_since(session.obtained + session.lease.unwrap_or_default());
                return Err(self.denied(format!(
                    "the configured token expired (its lease ran out {}s ago); give Airlock a new token, or use \
                     AppRole or Kubernetes/JWT auth, which log in again by themselves",
                    ago.as_secs()
                )));
            }
            *session = self.login()?;
        }
        Ok(session.token.clone())
    }

    /// Drops `token`'s session after the server refused it (a static token's session is kept, marked dead).
    fn forget(&self, token: &str) {
        let mut guard = self.session();
        let same = guard.as_ref().is_some_and(|s| airlock_crypto::ct_eq(s.token.as_bytes(), token.as_bytes()));
        if !same {
            return; // Another thread has replaced it already.
        }
        if self.auth.can_login() {
            *guard = None;
        } else if let Some(s) = guard.as_mut() {
            s.dead = true;
        }
    }

    fn denied(&self, reason: String) -> BackendError {
        BackendError::Denied { locator: self.http.label.clone(), reason }
    }

    /// A first session: log in, or look the static token up to learn its lease.
    fn establish(&self) -> Result<Session, BackendError> {
        let BaoAuth::Token(token) = &self.auth else {
            return self.login();
        };
        let token = token_text(token)?;
        let now = self.clock.now();
        let (lease, renewable) = match self.lookup_self(&token) {
            Ok(info) => (info.lease, info.renewable),
            Err(e) if e.is_transient() => return Err(e),
            // Refused: expired, revoked, or a policy without lookup-self. The first real request will tell.
            Err(_) => (None, false),
        };
        Ok(Session { token, obtained: now, lease, full_lease: lease, renewable, renewal_refused: false, dead: false })
    }

    fn login(&self) -> Result<Session, BackendError> {
        let what = self.auth.login_path();
        let body = match &self.auth {
            BaoAuth::Token(_) => unreachable!("a static token does not log in"),
            BaoAuth::AppRole { role_id, secret_id, .. } => {
                let role_id = utf8(role_id, "the AppRole role_id")?;
                let secret_id = utf8(secret_id, "the AppRole secret_id")?;
                build_json(|out| {
                    out.raw(b"{\"role_id\":");
                    out.string(role_id);
                    out.raw(b",\"secret_id\":");
                    out.string(secret_id);
                    out.raw(b"}");
                })
            }
            BaoAuth::Jwt { role, jwt_file, .. } => {
                let jwt = read_jwt(jwt_file)?;
                let jwt = std::str::from_utf8(&jwt)
                    .map_err(|_| invalid_config(&format!("the JWT file {} is not text", jwt_file.display())))?;
                build_json(|out| {
                    out.raw(b"{\"role\":");
                    out.string(role);
                    out.raw(b",\"jwt\":");
                    out.string(jwt.trim());
                    out.raw(b"}");
                })
            }
        };
        let req = Req { method: Method::POST, path: what.clone(), body: Some(&body), idempotent: false, shown: what };
        let reply = self.send(&req, None)?;
        if !(200..300).contains(&reply.status) {
            let method = match &self.auth {
                BaoAuth::AppRole { .. } => "AppRole",
                _ => "JWT/Kubernetes",
            };
            return Err(BackendError::Denied {
                locator: req.shown.clone(),
                reason: format!(
                    "{method} login refused: {}",
                    with_message(reply.status, &self.message_or(&reply, "no reason given"))
                ),
            });
        }
        let granted = parse_auth(&reply.body, &req.shown)?;
        self.logins.fetch_add(1, Ordering::Relaxed);
        Ok(Session {
            token: granted.token,
            obtained: self.clock.now(),
            lease: granted.lease,
            full_lease: granted.lease,
            renewable: granted.renewable,
            renewal_refused: false,
            dead: false,
        })
    }

    fn renew(&self, token: &str) -> Result<Granted, BackendError> {
        let req = Req {
            method: Method::POST,
            path: "auth/token/renew-self".into(),
            body: Some(b"{}"),
            idempotent: true,
            shown: "auth/token/renew-self".into(),
        };
        let reply = self.send(&req, Some(token))?;
        let reply = self.expect_success(&req, reply)?;
        parse_auth(&reply.body, &req.shown)
    }

    fn lookup_self(&self, token: &str) -> Result<Granted, BackendError> {
        let req = Req {
            method: Method::GET,
            path: "auth/token/lookup-self".into(),
            body: None,
            idempotent: true,
            shown: "auth/token/lookup-self".into(),
        };
        let reply = self.send(&req, Some(token))?;
        let reply = self.expect_success(&req, reply)?;
        // The answer holds the token itself (`id`); only the lease fields are taken from it.
        let info: TokenLookup = parse_data(&reply.body, &req.shown)?;
        Ok(Granted {
            token: Zeroizing::new(String::new()),
            lease: Some(Duration::from_secs(info.ttl)).filter(|d| !d.is_zero()),
            renewable: info.renewable,
        })
    }

    // --- messages ------------------------------------------------------------------------------------------------

    /// The server's `errors`, scrubbed and cut short, or `fallback`.
    fn message_or(&self, reply: &Reply, fallback: &str) -> String {
        let m = server_message(&reply.body);
        if m.is_empty() { fallback.to_string() } else { self.scrub(&m) }
    }

    /// Cuts configured credentials and anything shaped like a token out of `message`, and cuts it short.
    fn scrub(&self, message: &str) -> String {
        let mut m = message.to_string();
        for secret in self.auth.secrets() {
            if let Ok(s) = std::str::from_utf8(secret)
                && !s.is_empty()
            {
                m = m.replace(s, "<redacted>");
            }
        }
        // `try_lock`: this runs inside logins and renewals, which hold the session lock (their tokens are new to
        // the server's messages anyway, and token-shaped).
        if let Ok(guard) = self.session.try_lock()
            && let Some(s) = guard.as_ref()
        {
            m = m.replace(s.token.as_str(), "<redacted>");
        }
        let m = redact_token_shapes(&m);
        let cut: String = m.chars().take(MAX_MESSAGE).map(|c| if c.is_control() { ' ' } else { c }).collect();
        if cut.len() < m.len() { format!("{cut}...") } else { cut }
    }
}

const STATIC_TOKEN_INVALID: &str = "the configured token is no longer accepted (it expired or was revoked); give \
                                    Airlock a new token, or use AppRole or Kubernetes/JWT auth, which log in again \
                                    by themselves";

impl SecretBackend for BaoBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Bao
    }

    /// The field's current value, through the cache.
    fn read(&self, locator: &Locator) -> Result<Fetched, BackendError> {
        let kv = KvPath::of(locator)?;
        let key = (kv.mount.to_string(), kv.path.to_string(), kv.field.to_string());
        self.cache.read_through(&key, || self.fetch(&kv, None))
    }

    fn write(&self, locator: &Locator, value: &SecretBytes, expect: Expect) -> Result<Option<u64>, BackendError> {
        let kv = KvPath::of(locator)?;
        self.write_kv(&kv, value, expect).map(Some)
    }

    /// `prefix` is `MOUNT` or `MOUNT/PATH/` (a leading `bao://` is allowed); the names directly under it, folders
    /// ending in `/`. Nothing there: an empty list.
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        let text = prefix.strip_prefix("bao://").unwrap_or(prefix);
        let shown = format!("bao://{text}");
        let bad = |reason: String| BackendError::Invalid { locator: shown.clone(), reason };
        let (mount, rest) = text.split_once('/').unwrap_or((text, ""));
        check_mount(mount).map_err(bad)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if !rest.is_empty() {
            check_segments(rest, "path").map_err(bad)?;
        }
        let path = if rest.is_empty() { String::new() } else { format!("{}/", encode_path(rest)) };
        let req = Req {
            method: Method::from_bytes(b"LIST").expect("LIST is a valid method token"),
            path: format!("{}/metadata/{path}", encode_path(mount)),
            body: None,
            idempotent: true,
            shown: shown.clone(),
        };
        let reply = self.authed(&req)?;
        if reply.status == 404 {
            return Ok(Vec::new());
        }
        let reply = self.expect_success(&req, reply)?;
        let keys: Keys = parse_data(&reply.body, &shown)?;
        Ok(keys.keys)
    }

    fn metadata(&self, locator: &Locator) -> Result<Metadata, BackendError> {
        let kv = KvPath::of(locator)?;
        Ok(self.read_metadata(&kv)?.0)
    }

    /// Soft-deletes the current version of the secret path (all its fields); [`BaoBackend::undelete`] reverses it.
    fn delete(&self, locator: &Locator) -> Result<(), BackendError> {
        self.delete_under(locator, "data")
    }
}

// --- locators and paths ------------------------------------------------------------------------------------------

/// A checked `bao://` locator.
struct KvPath<'a> {
    mount: &'a str,
    path: &'a str,
    field: &'a str,
    shown: String,
}

impl<'a> KvPath<'a> {
    /// Checks the locator again: `Locator::Bao` can be built without `Locator::parse`.
    fn of(locator: &'a Locator) -> Result<KvPath<'a>, BackendError> {
        let Locator::Bao { mount, path, field } = locator else {
            return Err(BackendError::Invalid {
                locator: locator.to_string(),
                reason: "the OpenBao backend reads bao:// locators only".into(),
            });
        };
        let shown = locator.to_string();
        let bad = |reason: String| BackendError::Invalid { locator: shown.clone(), reason };
        check_mount(mount).map_err(bad)?;
        check_segments(path, "path").map_err(bad)?;
        if field.is_empty() || field.chars().any(char::is_control) {
            return Err(bad("the field is empty or has control characters".into()));
        }
        Ok(KvPath { mount, path, field, shown })
    }
}

/// Paths the server reserves for itself: no KV engine can be mounted there, so a locator naming one is an attempt
/// to reach something else.
const RESERVED_MOUNTS: [&str; 4] = ["sys", "auth", "identity", "cubbyhole"];

/// One segment, not a reserved path.
fn check_mount(mount: &str) -> Result<(), String> {
    check_segments(mount, "mount")?;
    if mount.contains('/') {
        return Err("the mount is one path segment".into());
    }
    if RESERVED_MOUNTS.contains(&mount.to_ascii_lowercase().as_str()) {
        return Err(format!("{mount:?} is the server's own path, not a KV mount"));
    }
    Ok(())
}

/// Non-empty segments, none `.` or `..`, no control characters.
fn check_segments(text: &str, what: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("the {what} has control characters"));
    }
    for s in text.split('/') {
        match s {
            "" => return Err(format!("the {what} has an empty segment")),
            "." | ".." => return Err(format!("the {what} has a {s:?} segment")),
            _ => {}
        }
    }
    Ok(())
}

/// Percent-encodes each `/`-separated segment: everything but RFC 3986 unreserved characters.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn check_namespace(ns: &str) -> Result<String, BackendError> {
    let trimmed = ns.trim_end_matches('/');
    let ok = !trimmed.is_empty()
        && trimmed.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(invalid_config("the namespace must be segments of letters, digits, '-', '_' and '.', separated by '/'"))
    }
}

fn check_auth(auth: &BaoAuth) -> Result<(), BackendError> {
    let mount_ok = |m: &str| check_segments(m, "auth mount").map_err(|e| invalid_config(&e));
    match auth {
        BaoAuth::Token(t) => {
            token_text(t)?;
        }
        BaoAuth::AppRole { mount, role_id, secret_id } => {
            mount_ok(mount)?;
            utf8(role_id, "the AppRole role_id")?;
            utf8(secret_id, "the AppRole secret_id")?;
        }
        BaoAuth::Jwt { mount, role, .. } => {
            mount_ok(mount)?;
            if role.is_empty() || role.chars().any(char::is_control) {
                return Err(invalid_config("the JWT/Kubernetes role is empty or has control characters"));
            }
        }
    }
    Ok(())
}

fn invalid_config(reason: &str) -> BackendError {
    BackendError::Invalid { locator: "bao configuration".into(), reason: reason.to_string() }
}

fn token_text(token: &SecretBytes) -> Result<Zeroizing<String>, BackendError> {
    let t = token.expose();
    if t.is_empty() || !t.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(invalid_config("the token must be non-empty visible ASCII"));
    }
    let mut s = Zeroizing::new(String::with_capacity(t.len()));
    s.push_str(std::str::from_utf8(t).map_err(|_| invalid_config("the token is not text"))?);
    Ok(s)
}

fn utf8<'a>(bytes: &'a SecretBytes, what: &str) -> Result<&'a str, BackendError> {
    match std::str::from_utf8(bytes.expose()) {
        Ok(s) if !s.is_empty() => Ok(s),
        _ => Err(invalid_config(&format!("{what} must be non-empty text"))),
    }
}

fn read_jwt(path: &Path) -> Result<Zeroizing<Vec<u8>>, BackendError> {
    let unreadable = |e: std::io::Error| invalid_config(&format!("cannot read the JWT file {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let jwt = read_zeroizing(file.take(MAX_JWT_FILE + 1), MAX_JWT_FILE as usize + 1).map_err(unreadable)?;
    if jwt.len() as u64 > MAX_JWT_FILE || jwt.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid_config(&format!("the JWT file {} is empty or too large", path.display())));
    }
    Ok(jwt)
}

// --- HTTP --------------------------------------------------------------------------------------------------------

struct Http {
    agent: ureq::Agent,
    /// `scheme://host[:port]`, no trailing slash.
    base: String,
    namespace: Option<HeaderValue>,
    label: String,
}

struct TransportError {
    /// The request surely did not reach the server (no connection was made).
    before_send: bool,
    /// Trying again could help (a TLS verification failure will not).
    retryable: bool,
    reason: String,
}

impl Http {
    fn exchange(&self, req: &Req<'_>, token: Option<&str>) -> Result<Reply, TransportError> {
        let uri = format!("{}/v1/{}", self.base, req.path);
        let mut builder = ureq::http::Request::builder()
            .method(req.method.clone())
            .uri(uri)
            .header(HeaderName::from_static(VAULT_REQUEST), "true");
        if let Some(ns) = &self.namespace {
            builder = builder.header(HeaderName::from_static(VAULT_NAMESPACE), ns.clone());
        }
        if let Some(token) = token {
            let mut value = HeaderValue::from_str(token).map_err(|_| TransportError {
                before_send: true,
                retryable: false,
                reason: "the token is not a valid header value".into(),
            })?;
            value.set_sensitive(true);
            builder = builder.header(HeaderName::from_static(VAULT_TOKEN), value);
        }
        let built = match req.body {
            Some(body) => builder.header(CONTENT_TYPE, "application/json").body(body).map(|r| self.agent.run(r)),
            None => builder.body(()).map(|r| self.agent.run(r)),
        };
        let mut response = built
            .map_err(|_| TransportError { before_send: true, retryable: false, reason: "bad request URI".into() })?
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let reader = response.body_mut().with_config().limit(MAX_BODY).reader();
        let body = read_zeroizing(reader, 16 * 1024).map_err(|e| TransportError {
            before_send: false,
            retryable: true,
            reason: format!("reading the response: {}", e.kind()),
        })?;
        Ok(Reply { status, body })
    }
}

fn transport_error(e: ureq::Error) -> TransportError {
    use ureq::Timeout;
    let (before_send, retryable, reason) = match &e {
        ureq::Error::ConnectionFailed => (true, true, "connection failed".to_string()),
        ureq::Error::HostNotFound => (true, true, "host not found".to_string()),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            (true, true, "connection refused".to_string())
        }
        ureq::Error::Io(io) => match io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            // A handshake failure (rustls reports it through the socket's io::Error): trying again will not help.
            Some(tls) => (true, false, tls_reason(tls)),
            None => (false, true, format!("connection error: {io}")),
        },
        ureq::Error::Timeout(t @ (Timeout::Resolve | Timeout::Connect)) => (true, true, format!("timed out ({t})")),
        ureq::Error::Timeout(t) => (false, true, format!("timed out ({t})")),
        ureq::Error::Rustls(tls) => (true, false, tls_reason(tls)),
        ureq::Error::Tls(tls) => (true, false, format!("TLS error: {tls}")),
        other => (false, false, other.to_string()),
    };
    TransportError { before_send, retryable, reason }
}

fn tls_reason(tls: &rustls::Error) -> String {
    format!("TLS error: {tls} (is `ca_file` the CA that issued the server's certificate?)")
}

/// Reads everything into a zeroizing buffer that grows by copying (so no unzeroized copy is left behind by a
/// reallocation).
fn read_zeroizing(mut reader: impl Read, initial: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; initial.max(1024)]);
    let mut len = 0;
    loop {
        if len == buf.len() {
            let mut bigger = Zeroizing::new(vec![0u8; buf.len() * 2]);
            bigger[..len].copy_from_slice(&buf[..len]);
            buf = bigger;
        }
        match reader.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// A checked server address.
struct Target {
    base: String,
}

impl Target {
    fn parse(address: &str) -> Result<Target, BackendError> {
        // Errors here never echo the address: it may hold userinfo.
        let bad = |why: &str| invalid_config(&format!("address refused: {why}"));
        let trimmed = address.trim_end_matches('/');
        let uri: Uri = trimmed.parse().map_err(|_| bad("not a valid absolute URL"))?;
        let scheme = uri.scheme_str().map(str::to_ascii_lowercase).ok_or_else(|| bad("no scheme"))?;
        let authority = uri.authority().ok_or_else(|| bad("no host"))?.as_str();
        if authority.contains('@') {
            return Err(bad("credentials in the URL (user:password@) are not allowed"));
        }
        if uri.query().is_some() || trimmed.contains('#') || !matches!(uri.path(), "" | "/") {
            return Err(bad("give the server's base address only (https://host:port), no path or query"));
        }
        let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
        match &authority[host.len()..] {
            "" => {}
            rest => match rest.strip_prefix(':').map(str::parse::<u16>) {
                Some(Ok(p)) if p != 0 => {}
                _ => return Err(bad("invalid port")),
            },
        }
        match scheme.as_str() {
            "https" => {}
            "http" if is_loopback_literal(host) => {}
            "http" => {
                return Err(bad(
                    "http:// is allowed only to a loopback address (127.0.0.1, [::1]): the token and the values \
                     would cross the network in clear; use https://",
                ));
            }
            _ => return Err(bad("the scheme must be https (or http to a loopback address)")),
        }
        Ok(Target { base: format!("{scheme}://{authority}") })
    }
}

/// `127.0.0.0/8` or `::1`, written as an address (not a name, whose resolution could change).
fn is_loopback_literal(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn load_roots(path: &Path) -> Result<RootCerts, BackendError> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| invalid_config(&format!("CA file {shown}: {e}")))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {} // Keys and other items are not roots.
            Err(e) => return Err(invalid_config(&format!("CA file {shown}: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(invalid_config(&format!("CA file {shown}: no certificate found")));
    }
    Ok(RootCerts::new_with_certs(&certs))
}

/// The operating system's trust roots (loaded once); Mozilla's, compiled in, if there are none.
fn system_roots() -> RootCerts {
    static ROOTS: OnceLock<RootCerts> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let certs: Vec<ureq::tls::Certificate<'static>> =
                found.certs.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect();
            if certs.is_empty() { RootCerts::WebPki } else { RootCerts::new_with_certs(&certs) }
        })
        .clone()
}

// --- JSON --------------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    auth: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct KvRead<'a> {
    #[serde(borrow, default)]
    data: Option<BTreeMap<String, &'a RawValue>>,
    #[serde(default)]
    metadata: Option<KvVersionMeta>,
}

#[derive(Deserialize, Default)]
struct KvVersionMeta {
    #[serde(default)]
    version: u64,
    #[serde(default)]
    created_time: String,
    #[serde(default)]
    deletion_time: String,
    #[serde(default)]
    destroyed: bool,
}

#[derive(Deserialize)]
struct KvMetadata {
    #[serde(default)]
    current_version: u64,
    #[serde(default)]
    created_time: String,
    #[serde(default)]
    updated_time: String,
    #[serde(default)]
    versions: BTreeMap<String, KvVersionMeta>,
}

#[derive(Deserialize)]
struct Keys {
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Deserialize)]
struct TokenLookup {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct AuthBlock<'a> {
    #[serde(borrow)]
    client_token: Cow<'a, str>,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

/// A token and its lease, from a login, renewal or lookup.
struct Granted {
    token: Zeroizing<String>,
    lease: Option<Duration>,
    renewable: bool,
}

/// An unexpected shape, without serde's message (which can quote the offending value).
fn shape_error(shown: &str, e: &serde_json::Error) -> BackendError {
    BackendError::Invalid {
        locator: shown.to_string(),
        reason: format!(
            "unexpected answer from the server (not the KV v2 / auth shape; line {} column {})",
            e.line(),
            e.column()
        ),
    }
}

/// The `data` member of an answer, parsed as `T` (borrowing from the body).
fn parse_data<'a, T: Deserialize<'a>>(body: &'a [u8], shown: &str) -> Result<T, BackendError> {
    let envelope: Envelope<'a> = serde_json::from_slice(body).map_err(|e| shape_error(shown, &e))?;
    let raw = envelope.data.map(RawValue::get).unwrap_or("null");
    serde_json::from_str(raw).map_err(|e| shape_error(shown, &e))
}

fn parse_auth(body: &[u8], shown: &str) -> Result<Granted, BackendError> {
    let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(|e| shape_error(shown, &e))?;
    let raw = envelope.auth.ok_or_else(|| BackendError::Invalid {
        locator: shown.to_string(),
        reason: "the server's answer has no auth block".into(),
    })?;
    let block: AuthBlock<'_> = serde_json::from_str(raw.get()).map_err(|e| shape_error(shown, &e))?;
    let token = match block.client_token {
        Cow::Borrowed(s) => {
            let mut t = Zeroizing::new(String::with_capacity(s.len()));
            t.push_str(s);
            t
        }
        Cow::Owned(s) => Zeroizing::new(s),
    };
    if token.is_empty() {
        return Err(BackendError::Invalid { locator: shown.to_string(), reason: "the server issued no token".into() });
    }
    Ok(Granted {
        token,
        lease: Some(Duration::from_secs(block.lease_duration)).filter(|d| !d.is_zero()),
        renewable: block.renewable,
    })
}

/// The server's `errors`, joined; empty if there are none or the body is not JSON.
fn server_message(body: &[u8]) -> String {
    serde_json::from_slice::<Errors>(body).map(|e| e.errors.join("; ")).unwrap_or_default()
}

fn with_message(status: u16, message: &str) -> String {
    if message.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {message}") }
}

/// A string field's bytes; else what the JSON value is instead.
fn field_value(raw: &RawValue) -> Result<SecretBytes, &'static str> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<SecretText>(text).map(|t| t.0).map_err(|_| "a malformed string"),
        Some(b'{') => Err("an object"),
        Some(b'[') => Err("an array"),
        Some(b'n') => Err("null"),
        Some(b't' | b'f') => Err("a boolean"),
        _ => Err("a number"),
    }
}

/// A JSON string copied straight into zeroizing memory.
struct SecretText(SecretBytes);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = SecretText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretText, E> {
                Ok(SecretText(SecretBytes::copy_from(v.as_bytes())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SecretText, E> {
                Ok(SecretText(SecretBytes::new(v.into_bytes())))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// Builds a JSON document in zeroizing memory of exactly the right size (two passes: count, then write), so no
/// reallocation leaves a copy of a credential or a value behind.
fn build_json(write: impl Fn(&mut JsonOut)) -> Zeroizing<Vec<u8>> {
    let mut count = JsonOut { buf: None, len: 0 };
    write(&mut count);
    let mut out = JsonOut { buf: Some(Zeroizing::new(Vec::with_capacity(count.len))), len: 0 };
    write(&mut out);
    out.buf.unwrap_or_default()
}

struct JsonOut {
    buf: Option<Zeroizing<Vec<u8>>>,
    len: usize,
}

impl JsonOut {
    fn raw(&mut self, bytes: &[u8]) {
        self.len += bytes.len();
        if let Some(b) = &mut self.buf {
            b.extend_from_slice(bytes);
        }
    }

    /// `text` as a JSON string.
    fn string(&mut self, text: &str) {
        self.raw(b"\"");
        let bytes = text.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: Option<&[u8]> = match b {
                b'"' => Some(b"\\\""),
                b'\\' => Some(b"\\\\"),
                0x00..=0x1f => None,
                _ => continue,
            };
            self.raw(&bytes[start..i]);
            match escape {
                Some(e) => self.raw(e),
                None => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    self.raw(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
                }
            }
            start = i + 1;
        }
        self.raw(&bytes[start..]);
        self.raw(b"\"");
    }
}

/// Replaces anything shaped like a Vault/OpenBao token (`s.`, `b.`, `r.`, `hvs.`, `hvb.`, `hvr.` and 20 or more
/// token characters) with `<redacted>`.
fn redact_token_shapes(message: &str) -> String {
    let bytes = message.as_bytes();
    let token_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !token_char(bytes[i - 1]);
        let prefix = if !boundary {
            0
        } else if bytes[i..].starts_with(b"hvs.") || bytes[i..].starts_with(b"hvb.") || bytes[i..].starts_with(b"hvr.")
        {
            4
        } else if bytes.len() > i + 1 && matches!(bytes[i], b's' | b'b' | b'r') && bytes[i + 1] == b'.' {
            2
        } else {
            0
        };
        if prefix > 0 {
            let body = bytes[i + prefix..].iter().take_while(|b| token_char(**b)).count();
            if body >= 20 {
                out.push_str(&message[copied..i]);
                out.push_str("<redacted>");
                i += prefix + body;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&message[copied..]);
    out
}

/// RFC 3339 (`2026-11-23T08:48:24.212872155Z`, or with an offset) to a time; empty or malformed: `None`.
fn parse_time(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { text.get(r)?.parse::<u32>().ok().map(i64::from) };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut n: u32 = 0;
        for (k, d) in frac.bytes().take(9).take(digits).enumerate() {
            n += u32::from(d - b'0') * 10u32.pow(8 - k as u32);
        }
        nanos = n;
        rest = &frac[digits..];
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(&o[..1], "+" | "-") && &o[3..4] == ":" => {
            let h: i64 = o[1..3].parse().ok()?;
            let m: i64 = o[4..6].parse().ok()?;
            let s = h * 3600 + m * 60;
            if o.starts_with('-') { -s } else { s }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(address: &str, auth: BaoAuth) -> Result<BaoBackend, BackendError> {
        BaoBackend::new(BaoConfig::new(address, auth))
    }

    fn token(t: &str) -> BaoAuth {
        BaoAuth::token(SecretBytes::copy_from(t.as_bytes()))
    }

    #[test]
    fn plain_http_is_refused_except_to_loopback() {
        for ok in ["http://127.0.0.1:8200", "http://[::1]:8200/", "https://vault.example.com", "https://10.0.0.1:8200"]
        {
            backend(ok, token("tok-abcdef")).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, why) in [
            ("http://vault.example.com:8200", "allowed only to a loopback address"),
            ("http://localhost:8200", "allowed only to a loopback address"),
            ("http://10.0.0.1:8200", "allowed only to a loopback address"),
            ("https://user:pw@vault.example.com", "credentials in the URL"),
            ("https://vault.example.com/v1/secret", "base address only"),
            ("https://vault.example.com?x=1", "base address only"),
            ("ftp://vault.example.com", "scheme must be https"),
            ("vault.example.com", "address refused"),
        ] {
            let e = backend(bad, token("tok-abcdef")).expect_err(bad).to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!e.contains("pw@"), "{e}");
        }
    }

    #[test]
    fn bad_namespaces_and_credentials_are_refused_at_configuration() {
        let mut c = BaoConfig::new("http://127.0.0.1:1", token("tok-abcdef"));
        for ns in ["", "a/../b", "a b", "a\nb", "a//b"] {
            c.namespace = Some(ns.into());
            assert!(BaoBackend::new(c.clone()).is_err(), "{ns:?}");
        }
        c.namespace = Some("team1/sub/".into());
        assert!(BaoBackend::new(c.clone()).unwrap().label().ends_with("namespace team1/sub"));
        c.namespace = None;
        c.auth = token("has space");
        assert!(BaoBackend::new(c.clone()).is_err());
        c.auth = BaoAuth::jwt("../x", "role", "/nonexistent");
        assert!(BaoBackend::new(c).is_err());
    }

    #[test]
    fn debug_output_never_shows_a_credential() {
        let secret = "s.SUPERSECRETTOKENVALUE0123";
        let mut c = BaoConfig::new("http://127.0.0.1:1", token(secret));
        let shown = format!("{c:?} {:?}", BaoBackend::new(c.clone()).unwrap());
        assert!(!shown.contains("SUPERSECRET") && shown.contains("<redacted>"), "{shown}");
        c.auth = BaoAuth::approle(SecretBytes::copy_from(b"ROLEID-1234567"), SecretBytes::copy_from(b"SECRETID-98765"));
        let shown = format!("{c:?} {:?}", BaoBackend::new(c.clone()).unwrap());
        assert!(!shown.contains("ROLEID") && !shown.contains("SECRETID"), "{shown}");
    }

    #[test]
    fn segments_are_percent_encoded_so_none_can_climb_out() {
        assert_eq!(encode_path("team/openai key"), "team/openai%20key");
        assert_eq!(encode_path("a/%2e%2e/b?c#d"), "a/%252e%252e/b%3Fc%23d");
        assert_eq!(encode_path("ünï"), "%C3%BCn%C3%AF");
        assert_eq!(encode_path("a.b-c_d~e"), "a.b-c_d~e");
        // Built without parse, a traversal is still refused.
        let l = Locator::Bao { mount: "secret".into(), path: "a/../../sys/seal".into(), field: "f".into() };
        assert!(KvPath::of(&l).is_err());
        let l = Locator::Bao { mount: "sys/..".into(), path: "a".into(), field: "f".into() };
        assert!(KvPath::of(&l).is_err());
    }

    #[test]
    fn json_strings_are_escaped() {
        let out = build_json(|o| o.string("a\"b\\c\nd\u{1}é"));
        assert_eq!(std::str::from_utf8(&out).unwrap(), r#""a\"b\\c\nd\u0001é""#.replace("\\n", "\\u000a"));
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
        assert_eq!(out.capacity(), out.len(), "sized exactly, no reallocation");
    }

    #[test]
    fn token_shapes_are_cut_out_of_messages() {
        let m = redact_token_shapes(
            "bad s.ABCDEFGHIJKLMNOPQRSTUVWX and hvs.CAESIJ0123456789abcdefghijkl, but s.short and kvs.x stay",
        );
        assert_eq!(m, "bad <redacted> and <redacted>, but s.short and kvs.x stay");
    }

    #[test]
    fn fields_must_be_strings_and_serde_never_quotes_them() {
        let body = br#"{"data":{"data":{"s":"v\u00e9","n":12345,"o":{"k":"hidden"}},"metadata":{"version":3}}}"#;
        let read: KvRead<'_> = parse_data(body, "x").unwrap();
        let fields = read.data.unwrap();
        assert_eq!(field_value(fields["s"]).unwrap().expose(), "vé".as_bytes());
        assert_eq!(field_value(fields["n"]).err(), Some("a number"));
        assert_eq!(field_value(fields["o"]).err(), Some("an object"));
        assert_eq!(read.metadata.unwrap().version, 3);
        // A wrong shape is reported by position only.
        let e = parse_data::<KvMetadata>(br#"{"data":{"current_version":"hunter2"}}"#, "x").err().unwrap().to_string();
        assert!(!e.contains("hunter2") && e.contains("unexpected answer"), "{e}");
    }

    #[test]
    fn rfc3339_times_parse() {
        let t = parse_time("2026-11-23T08:48:24.212872155Z").unwrap();
        let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(d.as_secs(), 1_795_423_704);
        assert_eq!(d.subsec_nanos(), 212_872_155);
        assert_eq!(parse_time("1970-01-01T01:00:00+01:00"), Some(SystemTime::UNIX_EPOCH));
        assert_eq!(
            parse_time("2000-03-01T00:00:00Z").unwrap().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            951_868_800
        );
        for bad in ["", "0001-01-01", "2026-13-01T00:00:00Z", "2026-11-23T08:48:24", "2026-11-23T08:48:24.Z"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
