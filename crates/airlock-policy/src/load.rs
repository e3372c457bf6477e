//! Reading `airlock.toml` and its Cedar files from disk, choosing the profile, and applying its overlay.
//!
//! Why size limits come first: a config is read by a long-running daemon on reload, and a 10 MB file (or a FIFO,
//! or `/dev/zero`) must be refused before it is parsed, not after it has eaten memory. Every error carries file,
//! line and column; the caller gets either a complete [`Document`] or nothing.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::{ConfigFile, ProfileOverlay};
use crate::error::{ConfigError, Diagnostic, Severity, SourceText};
use crate::profile::{Profile, ProfileSettings};

/// Largest `airlock.toml` accepted. A thousand tools with full capability blocks is about 400 KiB.
pub const MAX_CONFIG_BYTES: usize = 2 << 20;
/// Largest single `.cedar` file accepted.
pub const MAX_CEDAR_BYTES: usize = 2 << 20;
/// Most `.cedar` files one config may pull in.
pub const MAX_CEDAR_FILES: usize = 256;

/// Everything the load needs from outside the file.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `--profile`, if given.
    pub profile_flag: Option<String>,
    /// `AIRLOCK_PROFILE`, if set.
    pub profile_env: Option<String>,
    /// Value of `${WORKSPACE}` (absolute).
    pub workspace: PathBuf,
    /// Value of `${HOME}` (absolute).
    pub home: PathBuf,
}

impl LoadOptions {
    /// Reads `AIRLOCK_PROFILE` and `HOME` from the environment; the workspace is given.
    pub fn from_env(profile_flag: Option<String>, workspace: PathBuf) -> LoadOptions {
        LoadOptions {
            profile_flag,
            profile_env: std::env::var("AIRLOCK_PROFILE").ok(),
            workspace,
            home: std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/nonexistent")),
        }
    }
}

/// A parsed config with its profile chosen and overlay applied; not yet validated.
#[derive(Debug, Clone)]
pub struct Document {
    pub source: SourceText,
    pub file: ConfigFile,
    pub profile: Profile,
    pub settings: ProfileSettings,
    pub cedar: Vec<SourceText>,
    /// The directory relative paths in the file are taken from (Cedar files, `[redact] rules`): the config file's.
    pub base_dir: PathBuf,
    pub workspace: PathBuf,
    pub home: PathBuf,
}

/// Reads and parses `path` and the Cedar files it names.
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Document, ConfigError> {
    let text = read_bounded(path, MAX_CONFIG_BYTES)?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_str(path, text, &base, opts)
}

/// Parses `text` as if read from `path`; relative Cedar file paths (and `[redact] rules`) are taken from `base_dir`.
pub fn load_str(path: &Path, text: String, base_dir: &Path, opts: &LoadOptions) -> Result<Document, ConfigError> {
    let source = SourceText::new(path, text);
    if source.text.len() > MAX_CONFIG_BYTES {
        return Err(too_big(&source.path, &source.text, MAX_CONFIG_BYTES));
    }
    let mut file: ConfigFile = toml::from_str(&source.text)
        .map_err(|e| ConfigError::single(source.error("toml", e.span(), tidy_toml_message(e.message()))))?;
    if *file.version.get_ref() != 1 {
        return Err(ConfigError::single(source.error(
            "version",
            Some(file.version.span()),
            format!("unsupported config version {}: this Airlock reads version 1", file.version.get_ref()),
        )));
    }
    let file_default = file.default_profile.as_ref().map(|s| s.get_ref().as_str());
    let profile =
        Profile::select(opts.profile_flag.as_deref(), opts.profile_env.as_deref(), file_default).map_err(|m| {
            // Point at default_profile when it is the culprit; a flag/environment conflict has no place in the file.
            let span = file.default_profile.as_ref().filter(|_| m.starts_with("default_profile")).map(|s| s.span());
            ConfigError::single(source.error("profile", span, m))
        })?;
    let overlay = match profile {
        Profile::Dev => file.profiles.dev.take(),
        Profile::Prod => file.profiles.prod.take(),
        Profile::Ide => file.profiles.ide.take(),
        Profile::Test => file.profiles.test.take(),
    };
    if let Some(o) = overlay {
        apply_overlay(&mut file, o);
    }
    for p in [&opts.workspace, &opts.home] {
        if !p.is_absolute() {
            return Err(ConfigError::single(source.error(
                "variables",
                None,
                format!("${{WORKSPACE}} and ${{HOME}} must be absolute paths, got {}", p.display()),
            )));
        }
    }
    let cedar = read_cedar_files(&source, &file, base_dir)?;
    Ok(Document {
        source,
        file,
        profile,
        settings: profile.settings(),
        cedar,
        base_dir: base_dir.to_path_buf(),
        workspace: opts.workspace.clone(),
        home: opts.home.clone(),
    })
}

fn apply_overlay(file: &mut ConfigFile, o: ProfileOverlay) {
    if let Some(n) = o.network {
        let base = &mut file.network;
        base.deny = n.deny.or(base.deny.take());
        base.block_private = n.block_private.or(base.block_private.take());
        base.max_request_bytes = n.max_request_bytes.or(base.max_request_bytes);
        base.allow_private = n.allow_private.or(base.allow_private.take());
        base.tls_inspect = n.tls_inspect.or(base.tls_inspect);
        base.tls_passthrough = n.tls_passthrough.or(base.tls_passthrough.take());
    }
    if let Some(f) = o.fs {
        file.fs.deny = f.deny.or(file.fs.deny.take());
        file.fs.protect_credentials = f.protect_credentials.or(file.fs.protect_credentials.take());
    }
    if let Some(l) = o.limits {
        file.limits = l.or(&file.limits);
    }
    if let Some(a) = o.audit {
        let base = &mut file.audit;
        base.fail_closed = a.fail_closed.or(base.fail_closed.take());
        base.record_allows = a.record_allows.or(base.record_allows);
        base.checkpoint_every = a.checkpoint_every.or(base.checkpoint_every);
        base.checkpoint_interval = a.checkpoint_interval.or(base.checkpoint_interval);
        base.heartbeat = a.heartbeat.or(base.heartbeat);
        base.dir = a.dir.or(base.dir.take());
        base.segment_max_size = a.segment_max_size.or(base.segment_max_size);
        base.segment_max_age = a.segment_max_age.or(base.segment_max_age);
        base.retain_for = a.retain_for.or(base.retain_for);
        base.retain_segments = a.retain_segments.or(base.retain_segments);
        base.sinks = a.sinks.or(base.sinks.take());
    }
    if let Some(r) = o.rate_limits {
        let base = &mut file.rate_limits;
        base.default = r.default.or(base.default.take());
        base.global = r.global.or(base.global.take());
        base.agents.extend(r.agents);
        base.tools.extend(r.tools);
        base.hosts.extend(r.hosts);
    }
    if let Some(g) = o.budgets {
        let base = &mut file.budgets;
        base.run = g.run.or(base.run.take());
        base.hosts.extend(g.hosts);
    }
    if let Some(x) = o.sandbox {
        let base = &mut file.sandbox;
        base.env = x.env.or(base.env.take());
        base.auto_pause = x.auto_pause.or(base.auto_pause.take());
        base.forward_port = x.forward_port.or(base.forward_port.take());
        base.guard_tool_output = x.guard_tool_output.or(base.guard_tool_output.take());
    }
    if let Some(r) = o.redact {
        let base = &mut file.redact;
        base.tool_output = r.tool_output.or(base.tool_output.take());
        base.pii = r.pii.or(base.pii.take());
        base.mask = r.mask.or(base.mask);
        base.rules = r.rules.or(base.rules.take());
        base.disable = r.disable.or(base.disable.take());
    }
}

fn read_cedar_files(source: &SourceText, file: &ConfigFile, base: &Path) -> Result<Vec<SourceText>, ConfigError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for entry in &file.policy_files {
        let written = entry.get_ref();
        let span = Some(entry.span());
        let full = base.join(written);
        let is_glob = written.contains(['*', '?', '[', '{']);
        let paths = if is_glob {
            match glob_files(&full) {
                Ok(p) => p,
                Err(m) => {
                    errors.push(source.error("policy-files", span, m));
                    continue;
                }
            }
        } else {
            vec![full]
        };
        if paths.is_empty() {
            errors.push(source.warning("policy-files", span.clone(), format!("{written:?} matches no files")));
        }
        for p in paths {
            if out.len() >= MAX_CEDAR_FILES {
                errors.push(source.error(
                    "policy-files",
                    span.clone(),
                    format!("more than {MAX_CEDAR_FILES} Cedar files"),
                ));
                break;
            }
            match read_bounded(&p, MAX_CEDAR_BYTES) {
                Ok(text) => out.push(SourceText::new(&p, text)),
                Err(e) => errors.extend(e.diagnostics.into_iter().map(|mut d| {
                    if d.line == 0 {
                        // Point at the config line that named the file as well.
                        let (l, c) = source.position(entry.span().start);
                        d.message = format!("{} (named at {}:{l}:{c})", d.message, source.path.display());
                    }
                    d
                })),
            }
        }
    }
    if errors.iter().any(|d| d.severity == Severity::Error) {
        return Err(ConfigError { diagnostics: errors });
    }
    Ok(out)
}

/// Files matching a glob, sorted, so policy ids are stable between loads.
fn glob_files(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let text = pattern.to_str().ok_or("policy file pattern is not UTF-8")?;
    // Walk only the literal directory prefix.
    let literal_end = text.find(['*', '?', '[', '{']).unwrap_or(text.len());
    let prefix = &text[..literal_end];
    // "dir/*.cedar" walks "dir"; "dir/pre*.cedar" walks "dir" too.
    let dir = match prefix.rfind('/') {
        Some(i) => PathBuf::from(&prefix[..=i]),
        None => PathBuf::from("."),
    };
    let matcher = globset::GlobBuilder::new(text)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid policy file glob: {e}"))?
        .compile_matcher();
    let mut found = Vec::new();
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if matcher.is_match(&p) && p.is_file() {
            found.push(p);
        }
    }
    found.sort();
    Ok(found)
}

/// Reads at most `max` bytes of a regular file; anything larger, or not a regular file, is refused.
pub fn read_bounded(path: &Path, max: usize) -> Result<String, ConfigError> {
    let fail = |code: &'static str, m: String| {
        ConfigError::single(Diagnostic {
            severity: Severity::Error,
            code,
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: m,
        })
    };
    let meta = std::fs::metadata(path).map_err(|e| fail("read", format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(fail("read", "not a regular file".into()));
    }
    let f = std::fs::File::open(path).map_err(|e| fail("read", format!("cannot read: {e}")))?;
    let mut buf = Vec::new();
    f.take(max as u64 + 1).read_to_end(&mut buf).map_err(|e| fail("read", format!("cannot read: {e}")))?;
    let text = String::from_utf8(buf).map_err(|e| {
        let (line, column) =
            crate::error::position_in(&String::from_utf8_lossy(e.as_bytes()), e.utf8_error().valid_up_to());
        ConfigError::single(Diagnostic {
            severity: Severity::Error,
            code: "utf8",
            file: path.to_path_buf(),
            line,
            column,
            message: "file is not valid UTF-8".into(),
        })
    })?;
    if text.len() > max {
        return Err(too_big(path, &text, max));
    }
    Ok(text)
}

fn too_big(path: &Path, text: &str, max: usize) -> ConfigError {
    let (line, column) = crate::error::position_in(text, max);
    ConfigError::single(Diagnostic {
        severity: Severity::Error,
        code: "too-large",
        file: path.to_path_buf(),
        line,
        column,
        message: format!("file is larger than the {} KiB limit (the limit is reached here)", max >> 10),
    })
}

/// The toml crate's messages are good; only make "unknown field" say "key", which is what TOML calls it.
fn tidy_toml_message(m: &str) -> String {
    m.trim().replace("unknown field", "unknown key")
}
