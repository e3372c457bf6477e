//! Attacks on the egress broker, one file per attack, each named after it. Every test runs a real broker on a
//! loopback port and attacks it the way a prompt-injected tool could, with real clients.

#[path = "../common/mod.rs"]
mod common;

mod echo_the_injected_credential_in_a_capability_response;
mod exfiltrate_a_secret_in_a_connect_host;
mod exfiltrate_a_secret_in_a_header;
mod exfiltrate_a_secret_in_a_streamed_body;
mod exfiltrate_a_secret_in_the_url;
mod exfiltrate_a_surrogate_to_the_wrong_host;
mod exfiltrate_slowly_past_an_egress_budget;
mod follow_a_redirect_with_injected_auth;
mod front_an_opened_tunnel_with_another_sni;
mod leak_common;
mod leave_a_capability_for_another_host_or_path;
mod override_an_injected_credential;
mod oversized_headers_inside_a_tunnel;
mod reflect_a_secret_in_a_response;
mod send_a_registry_secret_to_another_host;
mod ssrf_cloud_metadata;
mod ssrf_connect_to_internal;
mod ssrf_dns_rebinding;
mod ssrf_odd_ip_spellings;
mod ssrf_private_ranges;
mod ssrf_redirect_to_internal;
mod ssrf_userinfo_and_host_confusion;
