//! Attack: make the broker's idea of the destination differ from where the request really goes. Userinfo that looks
//! like a host (`http://api.example.com@127.0.0.2/`), fragments and queries that hide the real authority
//! (`http://127.0.0.2#@api.example.com/`), backslashes that some parsers read as a path and others as part of the
//! authority, a `Host` header that names somewhere other than the request target, origin-form requests that leave
//! the destination to `Host` alone, loopback names (`localhost` and relatives in any case or with a trailing dot),
//! and public-looking names that resolve to loopback (`127.0.0.1.nip.io` style).
//!
//! Defence: the destination is the absolute-form request target, parsed once (WHATWG) into a canonical host; a
//! target with userinfo (even an empty one) is refused outright, as is anything the HTTP parser cannot read
//! (`\` and `%` in an authority never make it past hyper). `Host` is never consulted: the broker rewrites it from
//! the canonical target. Origin-form requests are refused (it is a proxy). Loopback names are refused before
//! resolution and can never be allowed; other names are judged by the addresses they resolve to.
//!
//! The SSRF policy allows nothing here, so loopback is denied; an upstream listens on 127.0.0.2 and one on
//! 127.0.0.1, where the payloads point, so a payload that got through would be answered. The control broker
//! allows 127.0.0.1 and shows the nip-style name reaching the upstream, and the Host rewrite being observable.

use std::sync::Arc;

use crate::common::*;

/// Public-looking names that resolve to loopback (the pattern of nip.io, sslip.io, localtest.me and similar
/// services), pinned here so that nothing leaves the machine.
const LOOPBACK_NAMES: &[&str] = &[
    "127.0.0.1.nip.io",
    "www.127.0.0.1.sslip.io",
    "127-0-0-1.sslip.io",
    "7f000001.nip.io",
    "localtest.me",
    "localhost.example.com",
    "spoofed.burpcollaborator.net",
];

fn pins() -> Vec<(&'static str, &'static [&'static str])> {
    LOOPBACK_NAMES.iter().map(|n| (*n, &["127.0.0.1"][..])).collect()
}

/// How a payload is sent.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// `curl <url>`: what curl makes of it is what the broker sees.
    Curl,
    /// Written by hand: `GET <target> HTTP/1.1` with this `Host` header.
    Raw(&'static str),
}

/// (request target, with `{P1}` the 127.0.0.1 upstream's port and `{P2}` the 127.0.0.2 one's; how it is sent;
/// the outcome; what an SSRF refusal must name).
const PAYLOADS: &[(&str, Via, Expect, &str)] = &[
    // curl sends userinfo as an Authorization header and the real host in the request line: 127.0.0.2, refused.
    ("http://api.example.com@127.0.0.2:{P2}/", Via::Curl, SSRF, "address 127.0.0.2 is loopback"),
    ("http://api.example.com:{P1}@127.0.0.2:{P2}/", Via::Curl, SSRF, "address 127.0.0.2 is loopback"),
    ("http://127.0.0.2:{P2}#@api.example.com/", Via::Curl, SSRF, "address 127.0.0.2 is loopback"),
    ("http://127.0.0.2:{P2}?@api.example.com/", Via::Curl, SSRF, "address 127.0.0.2 is loopback"),
    // Written raw, userinfo reaches the broker, which refuses any '@' before the host: 400 parse. Guessing which
    // side of the '@' a server would use is how the confusion works, so there is no guess.
    ("http://api.example.com@127.0.0.2:{P2}/", Via::Raw("api.example.com"), PARSE, ""),
    ("http://api.example.com:{P1}@127.0.0.2:{P2}/", Via::Raw("api.example.com"), PARSE, ""),
    ("http://@127.0.0.2:{P2}/", Via::Raw("127.0.0.2"), PARSE, ""),
    ("http://api.example.com%2f@127.0.0.2:{P2}/", Via::Raw("api.example.com"), PARSE, ""),
    // The `http` crate stops the authority at '#' and '?': the host is 127.0.0.2, refused by SSRF.
    ("http://127.0.0.2:{P2}#@api.example.com/", Via::Raw("api.example.com"), SSRF, "address 127.0.0.2 is loopback"),
    ("http://127.0.0.2:{P2}?@api.example.com/", Via::Raw("api.example.com"), SSRF, "address 127.0.0.2 is loopback"),
    // A backslash or '%' in an authority is not URI syntax: hyper answers a bare 400 before any step of the broker.
    // (WHATWG reads `\` as '/', so `api.example.com:P\@127.0.0.2` would be api.example.com to one parser and
    // 127.0.0.2 to another; curl refuses to send these.)
    ("http://api.example.com:{P1}\\@127.0.0.2/", Via::Raw("api.example.com"), Expect::Malformed, ""),
    ("http://127.0.0.2:{P2}\\@api.example.com/", Via::Raw("api.example.com"), Expect::Malformed, ""),
    ("http://api.example.com%40127.0.0.2:{P2}/", Via::Raw("api.example.com"), Expect::Malformed, ""),
    // Two ports: which one counts differs between parsers, so the `http` crate refuses the authority outright.
    ("http://127.0.0.2:{P2}:{P1}/", Via::Raw("api.example.com"), Expect::Malformed, ""),
    ("http://api.example.com:{P1}:{P2}/", Via::Raw("api.example.com"), Expect::Malformed, ""),
    // The request target decides, not Host.
    ("http://127.0.0.2:{P2}/", Via::Raw("api.example.com:{P1}"), SSRF, "address 127.0.0.2 is loopback"),
    ("http://localhost:{P1}/", Via::Raw("api.example.com:{P1}"), SSRF, "localhost: refused before resolving"),
    // Origin-form: a destination only in Host. Refused: this is a proxy, absolute-form only.
    ("/", Via::Raw("127.0.0.2:{P2}"), PARSE, ""),
    ("/", Via::Raw("api.example.com:{P1}"), PARSE, ""),
    // Loopback names: refused before resolution, in any spelling.
    ("http://localhost:{P1}/", Via::Curl, SSRF, "localhost: refused before resolving: a loopback name"),
    ("http://LOCALHOST:{P1}/", Via::Curl, SSRF, "localhost: refused before resolving: a loopback name"),
    ("http://LocalHost:{P1}/", Via::Raw("LocalHost"), SSRF, "localhost: refused before resolving: a loopback name"),
    ("http://localhost.:{P1}/", Via::Curl, SSRF, "localhost: refused before resolving: a loopback name"),
    ("http://sub.localhost:{P1}/", Via::Curl, SSRF, "sub.localhost: refused before resolving: a loopback name"),
    ("http://a.b.c.localhost:{P1}/", Via::Curl, SSRF, "a.b.c.localhost: refused before resolving"),
    ("http://localhost.localdomain:{P1}/", Via::Curl, SSRF, "localhost.localdomain: refused before resolving"),
    ("http://localhost6:{P1}/", Via::Curl, SSRF, "localhost6: refused before resolving: a loopback name"),
    ("http://ip6-localhost:{P1}/", Via::Curl, SSRF, "ip6-localhost: refused before resolving: a loopback name"),
    ("http://ip6-loopback:{P1}/", Via::Curl, SSRF, "ip6-loopback: refused before resolving: a loopback name"),
    // Names that resolve to loopback: refused on the answer.
    ("http://127.0.0.1.nip.io:{P1}/", Via::Curl, SSRF, "127.0.0.1.nip.io: address 127.0.0.1 is loopback"),
    ("http://www.127.0.0.1.sslip.io:{P1}/", Via::Curl, SSRF, "www.127.0.0.1.sslip.io: address 127.0.0.1 is"),
    ("http://127-0-0-1.sslip.io:{P1}/", Via::Curl, SSRF, "127-0-0-1.sslip.io: address 127.0.0.1 is loopback"),
    ("http://7f000001.nip.io:{P1}/", Via::Curl, SSRF, "7f000001.nip.io: address 127.0.0.1 is loopback"),
    ("http://LOCALTEST.ME.:{P1}/", Via::Curl, SSRF, "localtest.me: address 127.0.0.1 is loopback"),
    ("http://localhost.example.com:{P1}/", Via::Curl, SSRF, "localhost.example.com: address 127.0.0.1 is"),
    ("http://spoofed.burpcollaborator.net:{P1}/", Via::Curl, SSRF, "address 127.0.0.1 is loopback"),
];

fn fill(text: &str, p1: u16, p2: u16) -> String {
    text.replace("{P1}", &p1.to_string()).replace("{P2}", &p2.to_string())
}

#[test]
fn userinfo_fragment_backslash_host_header_and_loopback_name_tricks_are_all_refused() {
    let h = Harness::open(|cfg| {
        cfg.ssrf.allow_cidrs.clear();
        cfg.resolver = Arc::new(pinned_resolver(&pins()));
    });
    let internal = h.upstream_at("127.0.0.2", 0).expect("an upstream on 127.0.0.2");
    let (p1, p2) = (h.upstream.addr.port(), internal.addr.port());
    let mut failures = Failures::default();
    for &(target, via, want, mention) in PAYLOADS {
        let target = fill(target, p1, p2);
        let result = match via {
            Via::Curl => h.curl(&["--path-as-is", &target]).check(want, mention),
            Via::Raw(host) => h.raw_get(&target, &fill(host, p1, p2)).check(want, mention),
        };
        if let Err(e) = result {
            failures.push(format!("{via:?} {target}: {e}"));
        }
    }
    failures.check(h.upstream.count() == 0, || format!("the 127.0.0.1 upstream saw {:?}", h.upstream.seen));
    failures.check(internal.count() == 0, || format!("the 127.0.0.2 upstream saw {:?}", internal.seen));
    failures.finish("userinfo and host confusion");
}

#[test]
fn the_upstream_sees_the_request_targets_host_never_the_clients_host_header() {
    // 127.0.0.1 allowed: api.example.com (pinned there) is reachable, and what the upstream receives is observable.
    let h = Harness::open(|cfg| cfg.resolver = Arc::new(pinned_resolver(&pins())));
    let port = h.upstream.addr.port();
    let want_host = format!("api.example.com:{port}");
    let mut failures = Failures::default();
    let requests = [
        format!("GET http://api.example.com:{port}/x HTTP/1.1\r\nHost: 127.0.0.2\r\nConnection: close\r\n\r\n"),
        format!("GET http://api.example.com:{port}/x HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n"),
        format!("GET HTTP://API.EXAMPLE.COM:{port}/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        format!("GET http://api.example.com:{port}/x HTTP/1.1\r\nConnection: close\r\n\r\n"),
    ];
    for request in &requests {
        let before = h.upstream.count();
        let r = h.raw(request.as_bytes());
        let seen = h.upstream.last();
        let host = seen.as_ref().and_then(|s| s.headers.get("host").cloned());
        failures.check(r.status == 200 && h.upstream.count() == before + 1, || format!("{request:?}: {r:?}"));
        failures.check(host.as_deref() == Some(want_host.as_str()), || format!("{request:?}: upstream Host {host:?}"));
    }
    failures.finish("Host rewrite");
}

#[test]
fn control_loopback_answers_pass_once_allowed_but_loopback_names_never_do() {
    // 127.0.0.1 allowed by address and `localhost` listed by name: a name that resolves to 127.0.0.1 now goes
    // through (so the refusals above are the answer check), while the loopback names stay refused (no allow-list
    // admits them: `localhost` is whatever the resolving host says it is).
    let h = Harness::open(|cfg| {
        cfg.resolver = Arc::new(pinned_resolver(&pins()));
        cfg.ssrf.allow_hosts = vec!["localhost".into(), "*.localhost".into(), "localhost.localdomain".into()];
    });
    let port = h.upstream.addr.port();
    let mut failures = Failures::default();
    for name in LOOPBACK_NAMES {
        let r = h.curl(&[&format!("http://{name}:{port}/")]);
        failures.check(r.status == 200, || format!("{name}: {} {}", r.status, r.body));
    }
    failures.check(h.upstream.count() == LOOPBACK_NAMES.len(), || format!("reached {}", h.upstream.count()));
    for name in ["localhost", "sub.localhost", "localhost.localdomain"] {
        if let Err(e) = h.curl(&[&format!("http://{name}:{port}/")]).check(SSRF, "refused before resolving") {
            failures.push(format!("{name}: {e}"));
        }
    }
    failures.check(h.upstream.count() == LOOPBACK_NAMES.len(), || "a loopback name got through".into());
    failures.finish("control");
}
