//! The secret stores a policy's `[backends]` configures, opened once per process, and reading a
//! `[secrets.NAME] source` from them.
//!
//! Why one registry per process: a remote store's client keeps state worth keeping (an OpenBao token and its lease,
//! the value cache, the circuit breaker). `airlock run` builds one for its run; the daemon keeps one for its life
//! and replaces it when the policy changes. Each store is opened on first use, so a policy that configures
//! OpenBao costs nothing to a run whose tool reads nothing from it.
//!
//! Credentials for the stores themselves (an OpenBao token, an AppRole secret id, a sealed file's passphrase) come
//! from the environment or from files the policy names, never from the policy text.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use airlock_crypto::SecretBytes;
use airlock_policy::config::{Backends as BackendsConfig, BaoAuthConfig};
use airlock_vault::backend::{BackendError, CachePolicy, Fetched, Locator, SecretBackend};

use crate::CliError;

pub struct Backends {
    config: BackendsConfig,
    /// The policy file's directory: relative paths in `[backends]` and `file://` sources start there.
    base_dir: PathBuf,
    bao: OnceLock<Result<Arc<dyn SecretBackend>, String>>,
    keyring: OnceLock<Result<Arc<dyn SecretBackend>, String>>,
    keyctl: OnceLock<Arc<dyn SecretBackend>>,
    env: OnceLock<Result<Arc<dyn SecretBackend>, String>>,
    /// Sealed files by absolute path.
    files: Mutex<HashMap<PathBuf, Arc<dyn SecretBackend>>>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").field("base_dir", &self.base_dir).finish_non_exhaustive()
    }
}

impl Backends {
    pub fn new(config: &BackendsConfig, base_dir: &Path) -> Backends {
        Backends {
            config: config.clone(),
            base_dir: base_dir.to_path_buf(),
            bao: OnceLock::new(),
            keyring: OnceLock::new(),
            keyctl: OnceLock::new(),
            env: OnceLock::new(),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// How long a holder of values read through here (a daemon's cached broker) may keep them before reading again:
    /// OpenBao's cache time to live, else the default one. A value rotated in its store reaches callers within it.
    pub fn reuse_limit(&self) -> Duration {
        self.config.bao.as_ref().and_then(|b| b.cache_ttl).map_or(CachePolicy::default().ttl, |t| t.0)
    }

    /// Until when a holder may keep `fetched` (read through here): [`Backends::reuse_limit`] from when the store last
    /// answered for it, not from now. A value served from OpenBao's cache is as old as that cache entry; a holder
    /// that kept it for a whole limit more, and then read again just before the entry expired, would get the same
    /// value once more, and a rotation could take two limits to arrive. A clock stepping back counts as no age.
    pub fn fresh_until(&self, fetched: &Fetched) -> Instant {
        let age = SystemTime::now().duration_since(fetched.fetched_at).unwrap_or_default();
        Instant::now() + self.reuse_limit().saturating_sub(age)
    }

    /// The current value at `locator` (never a local vault name: the caller reads those from its vault).
    pub fn read(&self, locator: &Locator) -> Result<Fetched, CliError> {
        let backend = self.backend(locator)?;
        backend.read(locator).map_err(|e| backend_error(locator, e))
    }

    fn backend(&self, locator: &Locator) -> Result<Arc<dyn SecretBackend>, CliError> {
        let opened = |r: &Result<Arc<dyn SecretBackend>, String>| match r {
            Ok(b) => Ok(Arc::clone(b)),
            Err(e) => Err(CliError::input(format!("{locator}: {e}"))),
        };
        match locator {
            Locator::Local(_) => Err(CliError::input(format!("{locator} is a local vault secret"))),
            Locator::Bao { .. } => opened(self.bao.get_or_init(|| self.open_bao())),
            Locator::Keyring { .. } => opened(self.keyring.get_or_init(|| {
                airlock_vault::backend::keyring::KeyringBackend::new()
                    .map(|b| Arc::new(b) as Arc<dyn SecretBackend>)
                    .map_err(|e| e.to_string())
            })),
            Locator::Keyctl { .. } => Ok(Arc::clone(self.keyctl.get_or_init(|| self.open_keyctl()))),
            Locator::Env { .. } => opened(self.env.get_or_init(|| self.open_env())),
            Locator::File { path, .. } => self.open_file(path),
        }
    }

    fn open_bao(&self) -> Result<Arc<dyn SecretBackend>, String> {
        use airlock_vault::backend::openbao::{BaoAuth, BaoBackend, BaoConfig};
        let b = self.config.bao.as_ref().ok_or("no [backends.bao] in the policy")?;
        let from_env = |var: &str| -> Result<SecretBytes, String> {
            match std::env::var_os(var).filter(|v| !v.is_empty()) {
                Some(v) => Ok(SecretBytes::new(v.into_encoded_bytes())),
                None => Err(format!("[backends.bao] auth: ${var} is not set")),
            }
        };
        let from_file = |p: &str| -> Result<SecretBytes, String> {
            let path = self.path(p);
            let bytes = airlock_crypto::kek::read_private_file(&path, 64 << 10)
                .map_err(|e| format!("[backends.bao] auth: {}: {e}", path.display()))?;
            let raw = bytes.expose();
            let end = raw.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
            Ok(SecretBytes::new(raw[..end].to_vec()))
        };
        let either = |env: &Option<String>, file: &Option<String>, what: &str| match (env, file) {
            (Some(v), None) => from_env(v),
            (None, Some(f)) => from_file(f),
            _ => Err(format!("[backends.bao] auth: give exactly one of {what}_env and {what}_file")),
        };
        let auth = match &b.auth {
            BaoAuthConfig::Token { token_env: Some(var) } => BaoAuth::token(from_env(var)?),
            BaoAuthConfig::Token { token_env: None } => BaoAuth::token_from_env().map_err(|e| e.to_string())?,
            BaoAuthConfig::Approle { mount, role_id_env, role_id_file, secret_id_env, secret_id_file } => {
                BaoAuth::AppRole {
                    mount: mount.clone().unwrap_or_else(|| "approle".into()),
                    role_id: either(role_id_env, role_id_file, "role_id")?,
                    secret_id: either(secret_id_env, secret_id_file, "secret_id")?,
                }
            }
            BaoAuthConfig::Kubernetes { mount, role, jwt_file } => {
                let mut auth = BaoAuth::kubernetes(role);
                if let BaoAuth::Jwt { mount: m, jwt_file: f, .. } = &mut auth {
                    if let Some(mount) = mount {
                        m.clone_from(mount);
                    }
                    if let Some(file) = jwt_file {
                        *f = self.path(file);
                    }
                }
                auth
            }
            BaoAuthConfig::Jwt { mount, role, jwt_file } => {
                BaoAuth::jwt(mount.clone().unwrap_or_else(|| "jwt".into()), role, self.path(jwt_file))
            }
        };
        let mut config = BaoConfig::new(b.address.clone(), auth);
        config.namespace.clone_from(&b.namespace);
        config.ca_file = b.ca_file.as_deref().map(|f| self.path(f));
        if let Some(t) = b.cache_ttl {
            config.cache.ttl = t.0;
        }
        if let Some(t) = b.stale_while_revalidate {
            config.cache.stale_while_revalidate = t.0;
        }
        if let Some(n) = b.cache_entries {
            config.cache.max_entries = n.max(1);
        }
        BaoBackend::new(config).map(|b| Arc::new(b) as Arc<dyn SecretBackend>).map_err(|e| e.to_string())
    }

    fn open_keyctl(&self) -> Arc<dyn SecretBackend> {
        use airlock_vault::backend::keyctl::{KeyctlBackend, KeyctlRing};
        let ring = self.config.keyctl.as_ref().and_then(|k| k.keyring.as_deref()).and_then(KeyctlRing::parse);
        Arc::new(KeyctlBackend::new(ring.unwrap_or_default()))
    }

    fn open_env(&self) -> Result<Arc<dyn SecretBackend>, String> {
        use airlock_vault::backend::env::EnvBackend;
        let backend = match self.config.env.as_ref().and_then(|e| e.file.as_deref()) {
            Some(file) => EnvBackend::dotenv(self.path(file)).map_err(|e| e.to_string())?,
            None => EnvBackend::process(),
        };
        if let Some(w) = backend.warning() {
            eprintln!("airlock: warning: {w}");
        }
        Ok(Arc::new(backend))
    }

    fn open_file(&self, path: &str) -> Result<Arc<dyn SecretBackend>, CliError> {
        use airlock_vault::backend::sealed_file::{SealedFileBackend, Unlock};
        let full = self.path(path);
        let mut files = crate::serve::lock(&self.files);
        if let Some(b) = files.get(&full) {
            return Ok(Arc::clone(b));
        }
        let settings = self.config.file.clone().unwrap_or_default();
        let unlock = match (&settings.keyfile, &settings.passphrase_env) {
            (Some(k), None) => Unlock::keyfile(self.path(k)),
            (None, Some(var)) => Unlock::passphrase_env(var.clone()),
            (None, None) => Unlock::passphrase_env("AIRLOCK_SEALED_PASSPHRASE"),
            (Some(_), Some(_)) => {
                return Err(CliError::input("[backends.file]: give keyfile or passphrase_env, not both".into()));
            }
        };
        let backend = SealedFileBackend::open(&full, unlock)
            .map_err(|e| CliError::input(format!("file://{}: {e}", full.display())))?
            .with_base_dir(&self.base_dir);
        let backend: Arc<dyn SecretBackend> = Arc::new(backend);
        files.insert(full, Arc::clone(&backend));
        Ok(backend)
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() { p.to_path_buf() } else { self.base_dir.join(p) }
    }
}

/// The directory a policy file's relative paths start from.
pub fn config_dir(config: &Path) -> PathBuf {
    let dir = config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// A secret store is unreachable, overloaded or sealed: the same command may work later.
pub const EXIT_UNAVAILABLE: u8 = 17;

/// A backend's refusal as the CLI reports it: an unavailable or sealed store is "try again later" (exit 17, which
/// the daemon answers with 503 and Retry-After), the rest are about the locator (exit 4 for a missing value, 9 for
/// refused access, else 8).
fn backend_error(locator: &Locator, e: BackendError) -> CliError {
    let code = match &e {
        BackendError::NotFound(_) => 4,
        BackendError::Denied { .. } => 9,
        e if e.is_transient() => EXIT_UNAVAILABLE,
        _ => 8,
    };
    CliError { code, message: format!("secret source {locator}: {e}") }
}
