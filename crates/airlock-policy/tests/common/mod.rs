//! Shared test setup: a temporary workspace and home, and the fixture config loaded against them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use airlock_policy::{ConfigError, Engine, LoadOptions};

pub struct Setup {
    pub dir: tempfile::TempDir,
    /// Canonical (the temp dir may sit under a symlink).
    pub workspace: PathBuf,
    pub home: PathBuf,
    pub config: PathBuf,
}

impl Setup {
    /// A workspace with a few files, a home, and a copy of `tests/fixtures`.
    pub fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let workspace = root.join("ws");
        let home = root.join("home");
        for d in ["ws/src", "ws/out", "ws/secrets", "ws/.git", "home/.ssh", "etc"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in ["ws/src/main.rs", "ws/.env", "ws/.git/config", "ws/key.pem", "home/.ssh/id_ed25519"] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        std::fs::create_dir_all(root.join("policies")).unwrap();
        std::fs::copy(fixtures.join("airlock.toml"), root.join("airlock.toml")).unwrap();
        std::fs::copy(fixtures.join("policies/site.cedar"), root.join("policies/site.cedar")).unwrap();
        Setup { config: root.join("airlock.toml"), dir, workspace, home }
    }

    pub fn root(&self) -> PathBuf {
        self.config.parent().unwrap().to_path_buf()
    }

    pub fn opts(&self, profile: Option<&str>) -> LoadOptions {
        LoadOptions {
            profile_flag: profile.map(str::to_string),
            profile_env: None,
            workspace: self.workspace.clone(),
            home: self.home.clone(),
        }
    }

    pub fn engine(&self) -> Engine {
        self.load(None).unwrap_or_else(|e| panic!("fixture must load: {e:#?}"))
    }

    pub fn load(&self, profile: Option<&str>) -> Result<Engine, ConfigError> {
        airlock_policy::load_engine(&self.config, &self.opts(profile))
    }

    /// Replaces the config text.
    pub fn write_config(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    /// Appends to the fixture config.
    pub fn append_config(&self, text: &str) {
        let mut t = std::fs::read_to_string(&self.config).unwrap();
        t.push_str(text);
        self.write_config(&t);
    }

    pub fn ws(&self, rel: &str) -> String {
        self.workspace.join(rel).to_str().unwrap().to_string()
    }
}

/// Monday 2026-11-23 at the given UTC time.
pub fn monday_at(hour: u64, minute: u64) -> std::time::SystemTime {
    // 2026-11-23T00:00:00Z
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_392_000 + hour * 3600 + minute * 60)
}

impl Setup {
    /// A fresh setup whose `airlock.toml` is `text` instead of the fixture (the fixture's `policies/site.cedar` is
    /// still on disk, but only used if `text` names it).
    pub fn with_config(text: &str) -> Setup {
        let s = Setup::new();
        s.write_config(text);
        s
    }

    /// Writes `text` to `rel` under the root (creating directories), and returns the full path.
    pub fn write_file(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Load options with both `--profile` and `AIRLOCK_PROFILE` given.
    pub fn opts_with_env(&self, flag: Option<&str>, env: Option<&str>) -> LoadOptions {
        LoadOptions { profile_env: env.map(str::to_string), ..self.opts(flag) }
    }

    /// Loads with `profile`, expecting the load to be refused (no engine at all).
    pub fn load_err(&self, profile: Option<&str>) -> ConfigError {
        match self.load(profile) {
            Ok(e) => panic!("config must be refused, but an engine was built: {e:?}"),
            Err(e) => e,
        }
    }
}

/// The first diagnostic with `code`, or a panic listing what was reported instead.
pub fn diag<'a>(err: &'a ConfigError, code: &str) -> &'a airlock_policy::Diagnostic {
    err.diagnostics
        .iter()
        .find(|d| d.code == code)
        .unwrap_or_else(|| panic!("expected a diagnostic with code {code:?}, got {:#?}", err.diagnostics))
}

/// 1-based line and column (in characters) of the first occurrence of `needle` in `text`.
pub fn line_col(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not in the text"));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}
