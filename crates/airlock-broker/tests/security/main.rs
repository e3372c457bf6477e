//! Attacks on the egress broker, one file per attack, each named after it. Every test runs a real broker on a
//! loopback port and attacks it the way a prompt-injected tool could, with real clients.

#[path = "../common/mod.rs"]
mod common;
