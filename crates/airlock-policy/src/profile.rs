//! Profiles: `dev`, `prod`, `ide`, `test`.
//!
//! A profile is a named set of defaults and strictness rules, so that one `airlock.toml` can serve a laptop and
//! a production host without the laptop's shortcuts leaking into production. Selection is explicit and
//! conflicts are errors: if the command line says `--profile dev` while the service environment says
//! `AIRLOCK_PROFILE=prod`, silently picking either would be wrong, so neither is picked.

use std::fmt;

use crate::config::{Limits, Size};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Relaxed: lints are warnings, every decision (cache hits too) is logged.
    Dev,
    /// Strict: lints are errors, wildcards and unlimited tools are refused, safety switches cannot be turned off.
    Prod,
    /// For editor agents: file access confined to the workspace (plus read-only system directories).
    Ide,
    /// For test suites: strict like prod, tight limits, sandboxes cleaned up after each run.
    Test,
}

impl Profile {
    pub const ALL: [Profile; 4] = [Profile::Dev, Profile::Prod, Profile::Ide, Profile::Test];

    pub fn parse(s: &str) -> Result<Profile, String> {
        match s {
            "dev" => Ok(Profile::Dev),
            "prod" => Ok(Profile::Prod),
            "ide" => Ok(Profile::Ide),
            "test" => Ok(Profile::Test),
            other => Err(format!("unknown profile {other:?}: expected dev, prod, ide or test")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Dev => "dev",
            Profile::Prod => "prod",
            Profile::Ide => "ide",
            Profile::Test => "test",
        }
    }

    /// Picks the profile: `--profile`, then `AIRLOCK_PROFILE`, then the file's `default_profile`, then `dev`.
    /// A flag and an environment variable that disagree are an error.
    pub fn select(flag: Option<&str>, env: Option<&str>, file_default: Option<&str>) -> Result<Profile, String> {
        let flag = flag.map(Profile::parse).transpose().map_err(|e| format!("--profile: {e}"))?;
        let env = env
            .filter(|s| !s.is_empty())
            .map(Profile::parse)
            .transpose()
            .map_err(|e| format!("AIRLOCK_PROFILE: {e}"))?;
        if let (Some(f), Some(e)) = (flag, env)
            && f != e
        {
            return Err(format!(
                "conflicting profiles: --profile {} but AIRLOCK_PROFILE={}; unset one or make them agree",
                f.as_str(),
                e.as_str()
            ));
        }
        if let Some(p) = flag.or(env) {
            return Ok(p);
        }
        match file_default {
            Some(d) => Profile::parse(d).map_err(|e| format!("default_profile: {e}")),
            None => Ok(Profile::Dev),
        }
    }

    pub fn settings(self) -> ProfileSettings {
        let mib = |n: u64| Some(Size(n << 20));
        match self {
            Profile::Dev => ProfileSettings {
                lints_are_errors: false,
                log_every_decision: true,
                confine_fs_to_workspace: false,
                cleanup_sandboxes: false,
                may_disable_safety: true,
                default_limits: Limits {
                    memory: mib(2048),
                    cpu_seconds: Some(600),
                    wall_seconds: Some(3600),
                    pids: Some(256),
                    open_files: Some(1024),
                    output_bytes: mib(16),
                },
            },
            Profile::Prod => ProfileSettings {
                lints_are_errors: true,
                log_every_decision: false,
                confine_fs_to_workspace: false,
                cleanup_sandboxes: false,
                may_disable_safety: false,
                // None: prod requires every tool to state its limits (the `tool-without-limits` lint is fatal).
                default_limits: Limits::default(),
            },
            Profile::Ide => ProfileSettings {
                lints_are_errors: false,
                log_every_decision: false,
                confine_fs_to_workspace: true,
                cleanup_sandboxes: false,
                may_disable_safety: false,
                default_limits: Limits {
                    memory: mib(1024),
                    cpu_seconds: Some(120),
                    wall_seconds: Some(600),
                    pids: Some(128),
                    open_files: Some(512),
                    output_bytes: mib(4),
                },
            },
            Profile::Test => ProfileSettings {
                lints_are_errors: true,
                log_every_decision: true,
                confine_fs_to_workspace: false,
                cleanup_sandboxes: true,
                may_disable_safety: false,
                default_limits: Limits {
                    memory: mib(512),
                    cpu_seconds: Some(60),
                    wall_seconds: Some(300),
                    pids: Some(64),
                    open_files: Some(256),
                    output_bytes: mib(1),
                },
            },
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a profile means, for the crates that act on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProfileSettings {
    /// `policy check` findings fail the load instead of warning.
    pub lints_are_errors: bool,
    /// The audit log records cache hits too, not just first decisions and denials.
    pub log_every_decision: bool,
    /// File access outside `${WORKSPACE}` is forbidden (reads of system directories excepted).
    pub confine_fs_to_workspace: bool,
    /// The sandbox removes its scratch space after every run.
    pub cleanup_sandboxes: bool,
    /// Whether `block_private`, `protect_credentials` and `fail_closed` may be set to false.
    pub may_disable_safety: bool,
    /// Limits for tools that give none (field by field).
    pub default_limits: Limits,
}
