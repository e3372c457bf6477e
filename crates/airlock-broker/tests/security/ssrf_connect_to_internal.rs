//! Attack: open a CONNECT tunnel to an internal destination (loopback, the metadata service, a loopback or metadata
//! name, a policy-allowed name that resolves internally, or the broker's own port), so that whatever follows inside
//! the tunnel (TLS or not) never passes the per-request checks of plain HTTP.
//!
//! Defence: CONNECT runs the same pipeline as any request for `https://host:port/` before it dials anything: parse
//! (userinfo and zone ids refused), policy, then the SSRF check on the name and on every resolved address, including
//! the broker's own listening address. A refusal is the CONNECT response itself (403), so no tunnel ever exists.
//!
//! Each target is attacked with curl (`https://` URLs make curl send CONNECT; curl reports `CONNECT tunnel failed,
//! response 403`) and with a raw CONNECT whose JSON denial is checked. Connection counters listen where the payloads
//! point, so a dial would be seen whatever protocol followed. The control allows 127.0.0.2 and watches the same
//! CONNECT dial it. Plain HTTP inside an allowed tunnel, which the broker serves request by request, must stay on
//! the tunnel's host whatever its Host header, path or request form say.

use std::sync::Arc;

use crate::common::*;

fn pins() -> Vec<(&'static str, &'static [&'static str])> {
    vec![("allowed-internal.example.com", &["10.0.0.1"][..]), ("loopback-alias.example.com", &["127.0.0.2"][..])]
}

/// How a CONNECT payload is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Both,
    /// curl would not send this authority (it rewrites or refuses it); only the raw CONNECT carries it.
    RawOnly,
}

/// (authority, with `{P1}` a counter on 127.0.0.1, `{P2}` a counter on 127.0.0.2, `{P6}` a counter on ::1 and
/// `{PROXY}` the broker's own port; how it is sent; outcome of the raw CONNECT; what an SSRF refusal must name).
const TARGETS: &[(&str, Via, Expect, &str)] = &[
    ("127.0.0.2:{P2}", Via::Both, SSRF, "address 127.0.0.2 is loopback"),
    ("0x7f000002:{P2}", Via::Both, SSRF, "address 127.0.0.2 is loopback"),
    ("0177.0.0.2:{P2}", Via::Both, SSRF, "address 127.0.0.2 is loopback"),
    ("[::ffff:127.0.0.2]:{P2}", Via::Both, SSRF, "address 127.0.0.2 is loopback"),
    ("loopback-alias.example.com:{P2}", Via::Both, SSRF, "loopback-alias.example.com: address 127.0.0.2 is loopback"),
    ("[::1]:{P6}", Via::Both, SSRF, "address ::1 is loopback"),
    ("0.0.0.0:{P1}", Via::Both, SSRF, "address 0.0.0.0 is the unspecified address"),
    ("localhost:{P1}", Via::Both, SSRF, "localhost: refused before resolving: a loopback name"),
    ("localhost:443", Via::Both, SSRF, "localhost: refused before resolving: a loopback name"),
    ("LOCALHOST.:443", Via::RawOnly, SSRF, "localhost: refused before resolving: a loopback name"),
    ("169.254.169.254:443", Via::Both, SSRF, "address 169.254.169.254 is cloud metadata service"),
    ("169.254.169.254:80", Via::Both, SSRF, "address 169.254.169.254 is cloud metadata service"),
    ("[fd00:ec2::254]:443", Via::Both, SSRF, "address fd00:ec2::254 is cloud metadata service"),
    ("metadata.google.internal:443", Via::Both, SSRF, "metadata.google.internal: refused before resolving"),
    ("10.0.0.1:443", Via::Both, SSRF, "address 10.0.0.1 is private-use"),
    ("allowed-internal.example.com:443", Via::Both, SSRF, "allowed-internal.example.com: address 10.0.0.1 is private"),
    // The broker's own port, on the one loopback address the SSRF policy does allow (127.0.0.1), by any spelling.
    ("127.0.0.1:{PROXY}", Via::Both, SSRF, "is the broker's own listening address"),
    ("[::ffff:127.0.0.1]:{PROXY}", Via::Both, SSRF, "is the broker's own listening address"),
    ("2130706433:{PROXY}", Via::Both, SSRF, "is the broker's own listening address"),
    ("api.example.com:{PROXY}", Via::Both, SSRF, "api.example.com: 127.0.0.1:{PROXY} is the broker's own listening"),
    // Authorities the broker cannot read one way only: 400 parse, before policy or SSRF.
    ("api.example.com@127.0.0.2:{P2}", Via::RawOnly, PARSE, ""),
    ("[fe80::1%25eth0]:443", Via::RawOnly, PARSE, ""),
    ("127.0.0.2", Via::RawOnly, PARSE, ""),
];

/// The CONNECT request a client would write for `authority`.
fn connect(authority: &str) -> Vec<u8> {
    format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes()
}

#[test]
fn connect_to_every_internal_target_is_refused_before_a_tunnel_exists() {
    let h = Harness::open(|cfg| cfg.resolver = Arc::new(pinned_resolver(&pins())));
    let c1 = h.accept_counter("127.0.0.1", 0).expect("a listener on 127.0.0.1");
    let c2 = h.accept_counter("127.0.0.2", 0).expect("a listener on 127.0.0.2");
    let c6 = h.accept_counter("::1", 0).expect("a listener on ::1");
    let fill = |t: &str| {
        t.replace("{P1}", &c1.addr.port().to_string())
            .replace("{P2}", &c2.addr.port().to_string())
            .replace("{P6}", &c6.addr.port().to_string())
            .replace("{PROXY}", &h.proxy.port().to_string())
    };
    let mut failures = Failures::default();
    for &(target, via, want, mention) in TARGETS {
        let (authority, mention) = (fill(target), fill(mention));
        if let Err(e) = h.raw(&connect(&authority)).check(want, &mention) {
            failures.push(format!("raw CONNECT {authority}: {e}"));
        }
        if via == Via::Both {
            let r = h.curl(&["-v", &format!("https://{authority}/")]);
            failures.check(r.stderr.contains("CONNECT tunnel failed, response 403"), || {
                format!("curl https://{authority}/: {}", r.stderr.lines().rev().take(3).collect::<Vec<_>>().join(" | "))
            });
        }
    }
    for (counter, name) in [(&c1, "127.0.0.1"), (&c2, "127.0.0.2"), (&c6, "::1")] {
        failures.check(counter.count() == 0, || format!("{} connections reached {name}", counter.count()));
    }
    failures.finish("CONNECT to internal targets");
}

#[test]
fn control_the_same_connect_dials_the_target_once_its_address_is_allowed() {
    let h = Harness::open(|cfg| {
        cfg.resolver = Arc::new(pinned_resolver(&pins()));
        cfg.ssrf.allow_cidrs.push(cidr("127.0.0.2/32"));
    });
    let c2 = h.accept_counter("127.0.0.2", 0).expect("a listener on 127.0.0.2");
    for authority in [format!("127.0.0.2:{}", c2.addr.port()), format!("loopback-alias.example.com:{}", c2.addr.port())]
    {
        let before = c2.count();
        // The counter closes the connection at once, so TLS fails; what matters is that the tunnel was opened.
        let r = h.curl(&["-v", &format!("https://{authority}/")]);
        assert!(r.stderr.contains("< HTTP/1.1 200"), "{authority}: {}", r.stderr);
        assert_eq!(c2.count(), before + 1, "{authority}: the broker dialled the allowed target");
    }
}

#[test]
fn plain_http_inside_an_allowed_tunnel_cannot_be_steered_to_another_destination() {
    // The broker serves plain HTTP found inside a CONNECT tunnel request by request (Node's undici tunnels http://
    // URLs). Each request must go to the tunnel's own host, whatever its Host header, path or form says.
    let h = Harness::open(|cfg| cfg.resolver = Arc::new(pinned_resolver(&pins())));
    let internal = h.upstream_at("127.0.0.2", 0).expect("an upstream on 127.0.0.2");
    let (p1, p2) = (h.upstream.addr.port(), internal.addr.port());
    let get = |target: &str, host: &str| format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    // (request inside the tunnel, outcome, the path the tunnel's own upstream must see for a 200)
    let cases: Vec<(String, Expect, &str)> = vec![
        (get("/a", &format!("127.0.0.2:{p2}")), Expect::Reached, "/a"),
        (get("/b", "169.254.169.254"), Expect::Reached, "/b"),
        (get(&format!("http://127.0.0.2:{p2}/"), "api.example.com"), PARSE, ""),
        (get(&format!("http://localhost:{p1}/"), "api.example.com"), PARSE, ""),
        (get(&format!("http://api.example.com@127.0.0.2:{p2}/"), "api.example.com"), PARSE, ""),
        // A path that looks like an authority stays a path of the tunnel's host, or is refused.
        (get(&format!("//127.0.0.2:{p2}/"), "api.example.com"), PARSE, ""),
        (get(&format!("/@127.0.0.2:{p2}/"), "api.example.com"), Expect::Reached, "/@127.0.0.2:{P2}/"),
        (get(&format!("/?@127.0.0.2:{p2}"), "api.example.com"), Expect::Reached, "/?@127.0.0.2:{P2}"),
        // A CONNECT inside the tunnel names another destination: refused like absolute-form.
        (format!("CONNECT 127.0.0.2:{p2} HTTP/1.1\r\nHost: 127.0.0.2:{p2}\r\n\r\n"), PARSE, ""),
    ];
    let requests: Vec<String> = cases.iter().map(|c| c.0.clone()).collect();
    let (connect, inner) = h.tunnel_http(&format!("api.example.com:{p1}"), &requests);
    assert_eq!(connect.status, 200, "the tunnel itself is allowed: {connect:?}");
    let mut failures = Failures::default();
    failures.check(inner.len() == cases.len(), || format!("{} answers to {} requests", inner.len(), cases.len()));
    let mut reached = 0;
    for ((request, want, path), r) in cases.iter().zip(&inner) {
        if let Err(e) = r.check(*want, "") {
            failures.push(format!("{request:?}: {e}"));
        }
        if *want == Expect::Reached {
            reached += 1;
            let seen = h.upstream.seen.lock().unwrap().get(reached - 1).cloned();
            let want_path = path.replace("{P2}", &p2.to_string());
            let ok = seen
                .as_ref()
                .is_some_and(|s| s.uri == want_path && s.headers.get("host") == Some(&format!("api.example.com:{p1}")));
            failures.check(ok, || format!("{request:?}: the tunnel's upstream saw {seen:?}"));
        }
    }
    failures.check(h.upstream.count() == reached, || format!("tunnel upstream saw {}", h.upstream.count()));
    failures.check(internal.count() == 0, || format!("the 127.0.0.2 upstream saw {:?}", internal.seen));
    failures.finish("HTTP inside a tunnel");
}

/// Every audit record written so far, as JSON text.
fn audit_records(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    airlock_audit::reader::for_each(dir, |r| {
        out.push(r.event.to_string());
        true
    })
    .unwrap();
    out
}

#[test]
fn a_steering_attempt_refused_inside_a_tunnel_is_recorded_in_the_audit_log() {
    // Invariant 2: a denial's reason goes to the caller AND to the audit log. Inside a tunnel, an absolute-form
    // request (an attempt to reach another destination through an approved tunnel) is refused with 400 `parse`,
    // but `serve_tunnel_http` answers with `deny_response` without `record_denial`, so the attempt leaves no trace.
    use airlock_audit::checkpoint::NoteSigner;
    use airlock_crypto::Key32;
    use airlock_crypto::sign::SigningKey;
    let audit_dir = tempfile::tempdir().unwrap();
    let signer = NoteSigner::new("airlock/test", SigningKey::from_seed(&Key32::from_bytes([7; 32]))).unwrap();
    let log = Arc::new(
        airlock_audit::AuditLog::open(audit_dir.path(), signer, airlock_audit::Options::default(), vec![]).unwrap(),
    );
    let h = Harness::open(|cfg| {
        cfg.resolver = Arc::new(pinned_resolver(&pins()));
        cfg.audit = Some(airlock_broker::AuditTrail {
            log: Arc::clone(&log) as Arc<dyn airlock_audit::Append>,
            mac: airlock_audit::AuditMac::new(Key32::from_bytes([8; 32])),
            record_allows: false,
            fail_closed: true,
        });
    });
    let internal = h.upstream_at("127.0.0.2", 0).expect("an upstream on 127.0.0.2");
    let p2 = internal.addr.port();
    // Control: the same destination asked for directly is refused by SSRF, and that refusal is recorded.
    h.raw_get(&format!("http://127.0.0.2:{p2}/direct"), "x").check(SSRF, "127.0.0.2").unwrap();
    let direct = audit_records(audit_dir.path());
    assert!(direct.iter().any(|r| r.contains("\"deny_kind\":\"ssrf\"")), "the direct refusal is recorded: {direct:?}");
    // The attack: through an approved tunnel.
    let steer = format!("GET http://127.0.0.2:{p2}/via-tunnel HTTP/1.1\r\nHost: 127.0.0.2:{p2}\r\n\r\n");
    let (connect, inner) = h.tunnel_http(&format!("api.example.com:{}", h.upstream.addr.port()), &[steer]);
    assert_eq!(connect.status, 200, "{connect:?}");
    inner.first().expect("an answer").check(PARSE, "").unwrap();
    assert_eq!(internal.count(), 0);
    let after = audit_records(audit_dir.path());
    assert!(
        after.iter().any(|r| r.contains("\"deny_kind\":\"parse\"")),
        "the refusal inside the tunnel left no audit record; records: {after:#?}"
    );
}
