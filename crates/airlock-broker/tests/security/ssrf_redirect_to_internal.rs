//! Attack: launder an internal destination through an allowed one. The tool asks for an allowed URL whose server
//! (attacker-controlled) answers `302 Found` with `Location:` an internal address, the metadata service, a loopback
//! name, or a name that resolves internally, hoping that whoever follows the redirect skips the checks.
//!
//! Defence: the broker never follows redirects; it passes the 302 back as it came. A client that follows it sends a
//! new request through the broker, which decides it from scratch like any other: policy, then SSRF.
//!
//! Every case runs curl with `-L` through the proxy against a redirecting upstream (allowed, on 127.0.0.1); the
//! final answer curl reports must be the broker's 403 `ssrf` for the second hop, and the internal upstream on
//! 127.0.0.2 must see nothing. The control allows 127.0.0.2 and watches the same redirect reach it, so a broker that
//! followed or skipped checks would be caught.

use std::sync::Arc;

use crate::common::*;

fn pins() -> Vec<(&'static str, &'static [&'static str])> {
    vec![("redirector.example.com", &["127.0.0.1"][..]), ("internal.example.com", &["127.0.0.2"][..])]
}

/// (Location, with `{P1}` the allowed upstream's port and `{P2}` the internal one's; what the refusal must name).
const LOCATIONS: &[(&str, &str)] = &[
    ("http://127.0.0.2:{P2}/admin", "address 127.0.0.2 is loopback"),
    ("http://2130706434:{P2}/admin", "address 127.0.0.2 is loopback"),
    ("http://[::ffff:127.0.0.2]:{P2}/admin", "address 127.0.0.2 is loopback"),
    ("http://internal.example.com:{P2}/admin", "internal.example.com: address 127.0.0.2 is loopback"),
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "address 169.254.169.254 is cloud metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal: refused before resolving"),
    ("http://localhost:{P1}/", "localhost: refused before resolving"),
    ("http://0.0.0.0:{P1}/", "address 0.0.0.0 is the unspecified address"),
    ("http://[::1]:{P1}/", "address ::1 is loopback"),
    // A relative Location with a scheme-relative authority: curl resolves it against the first URL's scheme.
    ("//127.0.0.2:{P2}/admin", "address 127.0.0.2 is loopback"),
];

fn fill(text: &str, p1: u16, p2: u16) -> String {
    text.replace("{P1}", &p1.to_string()).replace("{P2}", &p2.to_string())
}

#[test]
fn a_redirect_to_an_internal_destination_is_passed_back_and_its_follow_up_refused() {
    let h = Harness::open(|cfg| cfg.resolver = Arc::new(pinned_resolver(&pins())));
    let internal = h.upstream_at("127.0.0.2", 0).expect("an upstream on 127.0.0.2");
    let (p1, p2) = (h.upstream.addr.port(), internal.addr.port());
    let mut failures = Failures::default();
    for &(location, mention) in LOCATIONS {
        let location = fill(location, p1, p2);
        let redirector = h.redirecting_upstream(&location);
        let url = format!("http://redirector.example.com:{}/start", redirector.addr.port());
        let r = h.curl(&["-L", "--max-redirs", "3", &url]);
        if let Err(e) = r.check(SSRF, mention) {
            failures.push(format!("-L via {location}: {e}"));
        }
        failures.check(r.headers.contains("302 found"), || format!("{location}: curl saw no 302: {}", r.headers));
        failures.check(redirector.count() == 1, || format!("{location}: the redirector saw {}", redirector.count()));
    }
    failures.check(internal.count() == 0, || format!("the internal upstream saw {:?}", internal.seen));
    failures.check(h.upstream.count() == 0, || format!("the 127.0.0.1 upstream saw {:?}", h.upstream.seen));
    failures.finish("redirects");
}

#[test]
fn a_redirect_to_an_internal_https_url_fails_at_connect() {
    // `Location: https://...`: curl's second hop is a CONNECT, refused with 403 before any tunnel.
    let h = Harness::open(|cfg| cfg.resolver = Arc::new(pinned_resolver(&pins())));
    let internal = h.accept_counter("127.0.0.2", 0).expect("a listener on 127.0.0.2");
    let mut failures = Failures::default();
    for location in [
        format!("https://127.0.0.2:{}/admin", internal.addr.port()),
        "https://169.254.169.254/latest/meta-data/".to_string(),
        "https://metadata.google.internal/".to_string(),
    ] {
        let redirector = h.redirecting_upstream(&location);
        let url = format!("http://redirector.example.com:{}/start", redirector.addr.port());
        let r = h.curl(&["-L", "--max-redirs", "3", &url]);
        failures.check(r.stderr.contains("CONNECT tunnel failed, response 403"), || format!("{location}: {r:?}"));
        failures.check(redirector.count() == 1, || format!("{location}: the redirector saw {}", redirector.count()));
    }
    failures.check(internal.count() == 0, || format!("{} connections reached 127.0.0.2", internal.count()));
    failures.finish("https redirects");
}

#[test]
fn the_broker_does_not_follow_redirects_itself() {
    let h = Harness::open(|cfg| cfg.ssrf.allow_cidrs.push(cidr("127.0.0.2/32")));
    let internal = h.upstream_at("127.0.0.2", 0).expect("an upstream on 127.0.0.2");
    let location = format!("http://127.0.0.2:{}/admin", internal.addr.port());
    let redirector = h.redirecting_upstream(&location);
    // Without -L the client gets the 302 as the upstream sent it, even though the Location would be allowed.
    let r = h.curl(&[&format!("http://127.0.0.1:{}/start", redirector.addr.port())]);
    assert_eq!(r.status, 302, "{r:?}");
    assert!(r.headers.contains(&format!("location: {location}")), "{}", r.headers);
    assert_eq!(internal.count(), 0, "the broker followed the redirect itself");
}

#[test]
fn control_the_same_redirect_is_followed_to_the_internal_upstream_once_it_is_allowed() {
    let h = Harness::open(|cfg| {
        cfg.resolver = Arc::new(pinned_resolver(&pins()));
        cfg.ssrf.allow_cidrs.push(cidr("127.0.0.2/32"));
    });
    let internal = h.upstream_at("127.0.0.2", 0).expect("an upstream on 127.0.0.2");
    let location = format!("http://internal.example.com:{}/admin", internal.addr.port());
    let redirector = h.redirecting_upstream(&location);
    let r = h.curl(&["-L", &format!("http://redirector.example.com:{}/start", redirector.addr.port())]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(internal.last().expect("the internal upstream was reached").uri, "/admin");
}
