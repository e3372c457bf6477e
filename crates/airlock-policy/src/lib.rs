//! # airlock-policy
//!
//! One question, asked at every boundary in Airlock: *may this agent, running this tool, do this action on this
//! resource, now?* This crate holds the configuration people write (`airlock.toml`), compiles it to Cedar, and
//! answers with allow or deny, the ids of the policies that decided, and a reason fit to show to the model.
//!
//! ## What it guards against
//! - **Spelling tricks.** Hosts, URLs, paths and programs are normalised before any decision ([`normalize`]):
//!   case, IDNA, trailing dots and IPv4 number forms for hosts; dot segments, encoded separators and empty
//!   segments for URL paths; symlinks and `..` for files; `PATH` lookup for programs. `api.openai.com.evil.io`
//!   never matches `api.openai.com`, and `*.example.com` matches neither `example.com` nor `badexample.com`.
//! - **A silently ignored rule.** Unknown keys, bad globs, unknown secrets, roles, tools and agents, and Cedar
//!   syntax or type errors are load errors with file, line and column ([`ConfigError`]). Nothing starts half
//!   configured, and a bad reload leaves the old policy serving ([`PolicyStore`]).
//! - **An error that turns into an allow.** Default deny; `forbid` beats `permit`; any evaluation error is a
//!   deny ([`Engine::decide`]).
//! - **Sub-agent escalation.** A sub-agent can never be granted a tool or API permission its parent lacks, and
//!   `max_depth` bounds delegation.
//!
//! ## The model
//! Cedar entities: `Agent` (in its roles and ancestor agents), `Role`, `Tool`, `Host` (in each parent
//! `Domain`), `Path` (in each parent `Dir` and matching glob `PathSet`), `Program`, `Secret`, `ApiObject`.
//! Actions: `http.request`, `fs.read`, `fs.write`, `fs.exec`, `exec`, `secret.use` (all in group `tool`) and
//! `api.call`. The schema is [`compile::SCHEMA_TEXT`]; user `.cedar` files are validated against it.
//!
//! ```text
//! # A user forbid that beats any generated permit:
//! @id("no-git-config") @reason("{path} holds repository credentials")
//! forbid(principal, action == Action::"fs.read", resource) when { resource.path like "*/.git/config" };
//! ```
//!
//! ## Entry points
//! - [`load_engine`]: file to ready [`Engine`]; [`PolicyStore`] for hot reload.
//! - [`Engine::decide`] with a [`Request`] ([`Request::http`], [`Request::fs`], [`Request::exec`],
//!   [`Request::secret`], [`Request::api`]) gives a [`Decision`].
//! - [`check`]: load plus lints, for `airlock policy check`.
//! - [`config::json_schema`]: the JSON Schema of `airlock.toml`.

mod cedar_input;
pub mod compile;
pub mod config;
pub mod engine;
pub mod error;
pub mod lint;
pub mod load;
pub mod model;
pub mod normalize;
pub mod profile;
pub mod providers;
pub mod redact;
pub mod refs;
pub mod sandbox;
pub mod store;

use std::path::Path;

pub use engine::{Action, Decision, Engine, NormalizedRequest, Outcome, Request, Resource};
pub use error::{ConfigError, Diagnostic, Severity};
pub use load::{Document, LoadOptions};
pub use profile::{Profile, ProfileSettings};
pub use store::{PolicyStore, Reloaded};

/// Everything `policy check` reports: the errors (if the config was refused) or warnings.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub profile: Option<Profile>,
    pub policies: usize,
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        !self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// Loads, validates, compiles and lints a config file. Lint findings are errors under strict profiles.
pub fn load_engine(path: &Path, opts: &LoadOptions) -> Result<Engine, ConfigError> {
    build_engine(load::load_file(path, opts)?)
}

/// As [`load_engine`], from a parsed document.
pub fn build_engine(doc: Document) -> Result<Engine, ConfigError> {
    build_engine_cached(doc, &compile::ParseCache::default())
}

/// As [`build_engine`], reusing policies parsed by an earlier build (what a reload does).
pub fn build_engine_cached(doc: Document, cache: &compile::ParseCache) -> Result<Engine, ConfigError> {
    let (model, mut warnings) = model::build(&doc)?;
    let mut compiled = compile::compile(model, &doc.source, &doc.cedar, cache)?;
    warnings.extend(lint::lint(&compiled.model, &compiled, &doc.source));
    if warnings.iter().any(|d| d.severity == Severity::Error) {
        return Err(ConfigError { diagnostics: warnings });
    }
    compiled.warnings = warnings;
    Ok(Engine::new(compiled))
}

/// `airlock policy check`: every finding, whether or not the config would load.
pub fn check(path: &Path, opts: &LoadOptions) -> CheckReport {
    let doc = match load::load_file(path, opts) {
        Ok(d) => d,
        Err(e) => return CheckReport { profile: None, policies: 0, diagnostics: e.diagnostics },
    };
    let profile = Some(doc.profile);
    match build_engine(doc) {
        Ok(engine) => CheckReport {
            profile,
            policies: engine.compiled().policy_count(),
            diagnostics: engine.compiled().warnings.clone(),
        },
        Err(e) => CheckReport { profile, policies: 0, diagnostics: e.diagnostics },
    }
}
