//! Attacks on the egress broker, one file per attack, each named after it. Every test runs a real broker on a
//! loopback port and attacks it the way a prompt-injected tool could, with real clients.

#[path = "../common/mod.rs"]
mod common;
mod probe;

mod exfiltrate_a_secret_in_a_connect_host;
mod exfiltrate_a_secret_in_a_header;
mod exfiltrate_a_secret_in_a_streamed_body;
mod exfiltrate_a_secret_in_the_url;
mod leak_common;
