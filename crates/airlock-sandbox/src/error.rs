//! Errors from building or running a sandbox.
//!
//! Every error names the step that failed, so that a refusal to start says what the kernel would not do, not just
//! "operation not permitted".

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A system call or file operation failed.
    #[error("{step}: {source}")]
    Os {
        step: String,
        #[source]
        source: io::Error,
    },
    /// The request itself is wrong (a bad path, an impossible limit).
    #[error("{0}")]
    Invalid(String),
    /// The kernel or this process lacks something the policy needs.
    #[error("{feature} is not available: {why}; to enable it: {fix}")]
    Unavailable { feature: &'static str, why: String, fix: String },
}

impl SandboxError {
    /// Wraps an OS error (an `io::Error` or a `nix::Error`) with the step that failed.
    pub fn os(step: impl Into<String>, source: impl Into<io::Error>) -> SandboxError {
        SandboxError::Os { step: step.into(), source: source.into() }
    }
}
