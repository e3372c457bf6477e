//! A secret named like a built-in provider's (`OPENAI_API_KEY`) belongs to that provider. A config that pins it to
//! another host as well (by mistake, or edited by a prompt-injected agent with write access to the workspace) must
//! not let its surrogate be swapped for the real key toward that host: the capability registry's pins apply on top of
//! the config's and the vault's, and the attempt is refused as exfiltration before anything reaches the host.

use std::sync::Arc;
use std::time::Duration;

use airlock_broker::capability::Registry;
use airlock_broker::inject::{Credential, CredentialSet};
use airlock_broker::leak::{LeakScanner, Source};

use crate::common::Harness;

const POLICY: &str = r#"
version = 1
default_profile = "dev"

[agents.agent]
tools = ["fetch"]

[tools.fetch]
secrets = ["OPENAI_API_KEY"]
[[tools.fetch.network]]
hosts = ["api.example.com:*", "api.openai.com"]

[secrets.OPENAI_API_KEY]
hosts = ["api.example.com:*", "api.openai.com"]
"#;

const REAL: &str = "sk-proj-REALkey0123456789abcdefABCDEF";
const SURROGATE: &str = "sk-proj-SURRkey9876543210fedcbaFEDCBA";

#[test]
fn a_registry_pinned_secret_is_not_swapped_toward_a_host_the_config_added() {
    let ca = Arc::new(airlock_broker::ca::LocalCa::generate("test", Duration::from_secs(86400), None).unwrap());
    let ca_pem = ca.cert_pem().to_string();
    let pins = Registry::builtin().pins_for_secret("OPENAI_API_KEY").expect("a built-in secret name").to_vec();
    assert!(!pins.is_empty());
    let h = Harness::with(POLICY, |cfg| {
        let cred = Credential::new("OPENAI_API_KEY", REAL.as_bytes()).surrogate(SURROGATE).registry_pins(pins);
        cfg.credentials = Arc::new(CredentialSet::new(vec![cred]).unwrap());
        let mut b = LeakScanner::builder();
        b.add(Source::Secret("default/OPENAI_API_KEY".into()), REAL.as_bytes());
        b.add(Source::Surrogate("OPENAI_API_KEY".into()), SURROGATE.as_bytes());
        cfg.leaks = Arc::new(b.build().unwrap());
        cfg.ca = Some(ca);
    });
    std::fs::write(h.dir.path().join("airlock-ca.pem"), ca_pem).unwrap();

    let r =
        h.curl_opened(&["-H", &format!("Authorization: Bearer {SURROGATE}"), &h.tls_url("api.example.com", "/quiet")]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["kind"], "exfiltration");
    assert!(r.json()["reason"].as_str().unwrap().contains("capability registry"), "{r:?}");
    assert_eq!(h.tls_count(), 0, "nothing may reach the host");
}
