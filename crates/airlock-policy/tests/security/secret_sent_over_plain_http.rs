//! Attack: get a pinned credential injected into a cleartext request, `http://api.github.com/`, where anyone on
//! the path can read it. Port 80 is http's default, so a pin without a port would otherwise accept it.
//! Defence: a secret pin without a port means https on port 443 only; the `secret.use` context carries the
//! scheme. A pin that names a port explicitly (`host:8080`) is taken at its word.

use airlock_policy::Request;

use crate::common::Setup;

#[test]
fn pinned_secret_is_refused_toward_plain_http_and_allowed_over_https() {
    let s = Setup::new();
    let e = s.engine();
    let toward =
        |target: &str| e.decide(&Request::secret("orchestrator", "web_fetch", "GITHUB_TOKEN", target)).decision;
    let ok = toward("https://api.github.com/user");
    assert!(ok.allowed, "{ok:?}");
    assert_eq!(ok.policies, vec!["tool.web_fetch.secret.GITHUB_TOKEN".to_string()]);
    let cleartext = toward("http://api.github.com/user");
    assert!(!cleartext.allowed, "{cleartext:?}");
    assert_eq!(cleartext.reason, "secret GITHUB_TOKEN is only sent to api.github.com over https, never in cleartext");
    assert!(!toward("http://api.github.com:443/user").allowed, "http on 443 is still cleartext");
}

#[test]
fn pin_with_an_explicit_port_allows_that_port_whatever_the_scheme() {
    let s = Setup::with_config(
        r#"
version = 1
[limits]
memory = "1MiB"
[secrets.LOCAL]
hosts = ["10.1.2.3:8080"]
[agents.a]
tools = ["t"]
[tools.t]
secrets = ["LOCAL"]
[[tools.t.network]]
hosts = ["10.1.2.3:8080"]
"#,
    );
    let e = s.engine();
    assert!(e.decide(&Request::secret("a", "t", "LOCAL", "http://10.1.2.3:8080/x")).decision.allowed);
    assert!(!e.decide(&Request::secret("a", "t", "LOCAL", "http://10.1.2.3/x")).decision.allowed);
}
