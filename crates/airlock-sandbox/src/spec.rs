//! What one sandboxed run is: the command, the environment, the filesystem it sees, and the limits on it.
//!
//! Why a plain data type: the supervisor (a multi-threaded process running the broker) decides everything, and the
//! sandbox's own init (a fresh, single-threaded re-execution of Airlock) carries it out. The spec crosses that
//! boundary as JSON on a pipe, so the init needs nothing from the policy, the vault or the caller's environment, and
//! whoever reads the code can see everything a run is given in one place.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::landlock::LandlockPlan;
use crate::rlimits::Rlimits;

/// One environment variable of the tool. Values can be secrets (a secret whose exposure is `env`), so they are
/// zeroized on drop and never shown by `Debug`.
#[derive(Clone, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    pub value: Zeroizing<String>,
}

impl EnvVar {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> EnvVar {
        EnvVar { name: name.into(), value: Zeroizing::new(value.into()) }
    }
}

impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<{} bytes>", self.name, self.value.len())
    }
}

/// A host path made visible inside the sandbox at the same absolute path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub path: PathBuf,
    pub writable: bool,
    /// A device node (`/dev/null`): bound without `nodev`.
    #[serde(default)]
    pub device: bool,
}

/// A small file the init writes into the sandbox before the tool starts (the CA bundle). Contents are public.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileSpec {
    pub path: PathBuf,
    pub contents: String,
}

/// Everything the sandbox init needs to build and start one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxSpec {
    /// The program, an absolute path resolved by the supervisor; nothing is ever passed to a shell.
    pub program: PathBuf,
    /// The arguments, `argv[0]` as the caller wrote it.
    pub argv: Vec<String>,
    pub cwd: PathBuf,
    /// The tool's whole environment, rebuilt from scratch by the supervisor.
    pub env: Vec<EnvVar>,
    /// An empty host directory, private to this run, that the new root is mounted on.
    pub root_dir: PathBuf,
    /// Host paths visible inside, read-only unless `writable`. Missing paths are skipped.
    pub binds: Vec<Bind>,
    /// Paths hidden inside (a read-only empty directory or file is mounted over each). Missing paths are skipped.
    pub masks: Vec<PathBuf>,
    /// Files bound read-only over themselves (`.git/config`), so the tool can read but not change them.
    #[serde(default)]
    pub read_only: Vec<PathBuf>,
    /// Directories bound over themselves, still writable: a mount point cannot be renamed or removed, so the tool
    /// cannot swap one (`.git`) for a copy of its own making.
    #[serde(default)]
    pub pinned: Vec<PathBuf>,
    pub files: Vec<FileSpec>,
    /// The broker's CA certificate (PEM), when it intercepts TLS: written to [`CA_CERT`], and with the system's
    /// roots to [`CA_BUNDLE`]. The init builds the bundle itself, so the spec stays small.
    #[serde(default)]
    pub ca_cert: Option<String>,
    /// Open the proxy listener: `127.0.0.1:forward_port` inside the sandbox's network namespace, handed to the
    /// supervisor (whose broker accepts on it) before the tool starts.
    pub proxy_listener: bool,
    /// Loopback port inside the sandbox where the broker listens.
    pub forward_port: u16,
    pub hostname: String,
    /// Size of the private `/tmp` and `/dev/shm`, in bytes.
    pub tmp_bytes: u64,
    /// `None` only in a run allowed to degrade where Landlock is missing.
    pub landlock: Option<LandlockPlan>,
    /// `false` only in a run allowed to degrade where seccomp is missing.
    pub seccomp: bool,
    pub rlimits: Rlimits,
}

/// The directory Airlock owns inside the sandbox (read-only to the tool).
pub const RUN_DIR: &str = "/run/airlock";

/// The broker's CA certificate inside the sandbox (for `NODE_EXTRA_CA_CERTS` and other "extra CA" settings).
pub const CA_CERT: &str = "/run/airlock/ca.pem";

/// The system's roots plus the broker's CA inside the sandbox (for `SSL_CERT_FILE` and friends).
pub const CA_BUNDLE: &str = "/run/airlock/ca-bundle.pem";

/// Where the system's trusted roots live, by distribution; the first that exists is used.
pub const SYSTEM_ROOTS: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];
