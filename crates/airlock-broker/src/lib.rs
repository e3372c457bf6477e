//! # airlock-broker
//!
//! The egress broker: every byte a tool sends to the network passes through here. It decides each request by
//! policy, refuses internal and metadata addresses, swaps surrogates for real credentials only toward the hosts
//! each secret is pinned to, catches known secrets and canaries on their way out, and writes every decision to
//! the audit log.
//!
//! ## What it guards against
//! - **SSRF and DNS rebinding** ([`ssrf`], [`resolve`]): a host is resolved once, every address in the answer is
//!   classified, and the broker dials exactly the address it checked. Loopback, private, link-local, metadata and
//!   tunnelling ranges are refused unless an operator allows them by name.
//! - **Credential exfiltration** ([`leak`]): the request as the tool sent it (before any injection) is scanned for
//!   known secret values in raw and encoded forms, and for canaries.
//! - **Host confusion** ([`proxy`]): a CONNECT tunnel's TLS ClientHello must name the host that was approved.
//! - **Interception trust** ([`ca`]): intercepted hosts get leaf certificates from a per-install CA whose key lives
//!   in the vault.
//! - **Secrets in capability responses** ([`redact_body`]): with a redactor, what a capability's upstream answers
//!   is masked (vault values, the injected credential included, and credentials its rules recognise) before the
//!   tool sees it, even when a secret is split across frames.
//!
//! ## Entry points
//! - [`Broker::new`] with a [`BrokerConfig`], then [`Broker::serve_tcp`] / [`Broker::serve_unix`].

pub mod budget;
pub mod ca;
pub mod capability;
pub mod inject;
pub mod limits;
pub mod principal;
pub mod proxy;
pub mod redact_body;
pub mod resolve;
pub mod scan_body;
pub mod sni;
pub mod ssrf;
pub mod upstream;

/// Known-value leak detection lives in the redaction crate (the same automaton masks tool output); the broker
/// scans outgoing requests with it.
pub use airlock_redact::known as leak;
pub use principal::{Attribution, Principal, TokenTable};
pub use proxy::{AuditTrail, Broker, BrokerConfig, BrokerError, Limits, PolicySource, Timeouts};
pub use resolve::Resolver;
pub use ssrf::SsrfPolicy;

/// Test support: `text` as the policy loader reads it from an `airlock.toml`.
#[cfg(test)]
pub(crate) fn load_test_policy(text: &str) -> airlock_policy::load::Document {
    let dir = tempfile::tempdir().expect("temporary directory");
    let opts = airlock_policy::LoadOptions {
        profile_flag: None,
        profile_env: None,
        workspace: dir.path().to_path_buf(),
        home: dir.path().to_path_buf(),
    };
    airlock_policy::load::load_str(&dir.path().join("airlock.toml"), text.to_string(), dir.path(), &opts)
        .expect("the test policy loads")
}

/// Locks a mutex, carrying on if a panicking thread poisoned it: every guarded map here stays consistent between
/// statements, and a broker that stops serving because one request panicked would fail everyone.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
