//! Attack: reach loopback or the cloud metadata service (SSRF) by spelling the address in a form a text rule does
//! not recognise: hex (`0x7f.1`), a single integer (`2130706433`), octal (`0177.0.0.1`), an IPv4-mapped IPv6
//! literal (`[::ffff:127.0.0.1]`), or plainly `169.254.169.254` through a tool that was (mistakenly) allowed it.
//!
//! Defence: every IPv4 number form is parsed to the address it denotes and IPv4-mapped IPv6 is unwrapped, so the
//! host entity's `private_ip` is set whatever the spelling; the built-in forbid `airlock.network.private-ip` then
//! beats even a tool's explicit permit. Only the dev profile may turn it off (`network.block_private = false`), and
//! then the same spellings are allowed by the tool's rule, which shows they are the same canonical host.

use airlock_policy::Request;

use super::{assert_allowed_by, assert_denied_by};
use crate::common::Setup;

/// A tool that explicitly allows loopback on any port and the metadata address.
fn config(block_private: Option<bool>) -> String {
    let network = match block_private {
        Some(b) => format!("[network]\nblock_private = {b}\n"),
        None => String::new(),
    };
    format!(
        r#"
version = 1
{network}
[agents.agent]
tools = ["web"]

[tools.web.limits]
memory = "64MiB"

[[tools.web.network]]
hosts = ["127.0.0.1:*", "169.254.169.254"]
"#
    )
}

const SPELLINGS: [(&str, &str); 8] = [
    ("http://127.0.0.1/", "127.0.0.1"),
    ("http://0x7f.1/", "127.0.0.1"),
    ("http://0x7F000001/", "127.0.0.1"),
    ("http://2130706433/", "127.0.0.1"),
    ("http://0177.0.0.1:8080/", "127.0.0.1"),
    ("http://[::ffff:127.0.0.1]/", "127.0.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("http://0xa9fea9fe/latest/meta-data/", "169.254.169.254"),
];

#[test]
fn every_spelling_of_loopback_and_metadata_is_denied_by_the_private_ip_forbid() {
    let s = Setup::with_config(&config(None));
    let e = s.engine();
    for (url, host) in SPELLINGS {
        let d = e.decide(&Request::http("agent", "web", "GET", url)).decision;
        assert_denied_by(&d, "airlock.network.private-ip");
        assert_eq!(
            d.reason,
            format!("{host} is a private, loopback or link-local address; network.block_private forbids it"),
            "{url}"
        );
    }
    // IPv6 loopback is not in the tool's list at all, and is still denied by the forbid, not just by default.
    let v6 = e.decide(&Request::http("agent", "web", "GET", "http://[::1]/")).decision;
    assert_denied_by(&v6, "airlock.network.private-ip");
}

#[test]
fn block_private_true_in_the_file_is_the_same_as_the_default() {
    let s = Setup::with_config(&config(Some(true)));
    let e = s.engine();
    let d = e.decide(&Request::http("agent", "web", "GET", "http://2130706433/")).decision;
    assert_denied_by(&d, "airlock.network.private-ip");
}

#[test]
fn dev_profile_with_block_private_off_allows_them_through_the_tools_own_rule() {
    let s = Setup::with_config(&config(Some(false)));
    let e = s.load(Some("dev")).expect("dev may turn block_private off");
    for (url, _) in SPELLINGS {
        let d = e.decide(&Request::http("agent", "web", "GET", url)).decision;
        assert_allowed_by(&d, "tool.web.network.0");
    }
    // Not listed, not private-forbidden either: default deny.
    let v6 = e.decide(&Request::http("agent", "web", "GET", "http://[::1]/")).decision;
    assert!(!v6.allowed && v6.policies.is_empty(), "{v6:?}");
    // Turning it off is refused outside dev.
    for profile in ["prod", "ide", "test"] {
        let err = s.load(Some(profile)).expect_err(profile);
        assert!(err.diagnostics.iter().any(|d| d.code == "profile-conflict"), "{profile}: {err:#?}");
    }
}
