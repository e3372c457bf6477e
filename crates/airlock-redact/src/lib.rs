//! # airlock-redact
//!
//! Finds secrets and personal data in any byte stream and masks them before anyone sees them: tool output on its
//! way to an agent, broker responses and errors, and Airlock's own logs.
//!
//! ## What it guards against
//! - **Known values getting out.** Every vault secret, surrogate and canary is matched in raw, hex, base64 (all
//!   three alignments), base64url, percent-encoded, form-encoded and JSON-escaped form by one Aho-Corasick
//!   automaton ([`known`]). Rebuilt when the vault changes ([`Redactor::set_known`]).
//! - **Unknown credentials getting out.** Over 150 rules ([`rule`], data in `rules/*.toml`) recognise cloud, VCS,
//!   CI, payment, messaging, AI-provider, database and SaaS credentials, private keys, JWTs and generic
//!   `password = ...` assignments, with checksums ([`checks`]) where formats have them and entropy floors where
//!   they do not.
//! - **Personal data getting out** (opt-in per family): email addresses, phone numbers, payment cards (Luhn),
//!   IBANs (mod-97), US SSNs, IP addresses.
//! - **Slow or crashing scans on hostile input.** Bytes, not strings (invalid UTF-8 is fine); only linear-time
//!   regex engines; windows bounded per rule, so a 2 GB line costs what 2 GB of short lines cost.
//!
//! ## How it works
//! A keyword prefilter finds where a rule could match; the rule's regex runs only in a window around each
//! keyword ([`scan`]). Streams keep a bounded carry-over window so a secret split across chunks is still caught
//! ([`stream`]). Findings carry rule, span, line and a keyed fingerprint, never the value.
//!
//! ## Entry points
//! - [`Scanner::new`] from a [`RuleSet`] ([`RuleSet::builtin`], [`RuleSet::add_toml`]) and [`ScanOptions`];
//!   [`Scanner::scan`] and [`Scanner::redact`] for whole buffers.
//! - [`Redactor`]: the shared handle; [`Redactor::stream`] gives a [`StreamRedactor`].
//! - [`MaskStyle`]: `[REDACTED:rule-id]` or shape-keeping.
//! - `log::fmt_layer` (feature `tracing`): a `tracing_subscriber` fmt layer whose output is masked.

pub mod checks;
pub mod gitleaks;
pub mod known;
#[cfg(feature = "tracing")]
pub mod log;
pub mod mask;
pub mod rule;
pub mod scan;
pub mod stream;
mod walk;

pub use mask::MaskStyle;
pub use rule::{Category, Rule, RuleError, RuleSet, RuleSpec};
pub use scan::{Finding, Fingerprint, PiiSelection, ScanOptions, Scanner};
pub use stream::{Redactor, StreamRedactor};
