//! Attack: use DNS to turn an allowed name into an internal destination: a name whose answer is internal, an answer
//! that mixes an allowed address with an internal one (hoping the broker picks the allowed one, or a later dial
//! picks the other), and DNS rebinding proper: a name with TTL 0 that answers an allowed address to one lookup and
//! an internal one to the next, so that a broker that checks with one lookup and connects with another is fooled.
//! Plus the failure modes an attacker controls: NXDOMAIN, and a server that never answers.
//!
//! Defence: the broker resolves a name once per request (`resolve::Resolver`), classifies every address in the
//! answer (any denied address denies the whole request), and dials only addresses from that same checked answer.
//! A resolution failure or timeout is a 502 `resolve` denial, bounded by the resolve timeout. Names that must never
//! reach a resolver (`localhost`, metadata names, single labels, `.internal`, ...) are refused without a query.
//!
//! The DNS server is real (UDP on loopback, `common::DnsServer`), answers with TTL 0 so no cache hides a change, and
//! is the broker's only name server. "Public" is played by 127.0.0.3, which the SSRF policy allows and where a
//! harmless upstream listens; "internal" is 127.0.0.1, denied, where a secret upstream listens on the same port. So a
//! broker that dialled anything but the checked address would reach the secret upstream, and the control shows that
//! it does when 127.0.0.1 is allowed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

const PUBLIC: &str = "127.0.0.3";
const SECRET: &str = "127.0.0.1";

/// A harmless upstream on 127.0.0.3 and a secret one on 127.0.0.1, on the same port (so one URL reaches either,
/// depending only on the address dialled).
fn twin_upstreams(h: &Harness) -> (Upstream, Upstream) {
    for _ in 0..50 {
        let harmless = h.upstream_at(PUBLIC, 0).expect("an upstream on 127.0.0.3");
        if let Ok(secret) = h.upstream_at(SECRET, harmless.addr.port()) {
            return (harmless, secret);
        }
    }
    panic!("no port free on both 127.0.0.3 and 127.0.0.1");
}

/// A broker whose only name server is `dns` and whose SSRF policy allows exactly `allowed`. The resolve timeout is
/// generous (3 s: a loaded test machine must not turn a slow answer into a flaky 502) except where the timeout
/// itself is under test.
fn harness(dns: &DnsServer, allowed: &[&str]) -> Harness {
    harness_with_timeout(dns, allowed, Duration::from_secs(3))
}

fn harness_with_timeout(dns: &DnsServer, allowed: &[&str], timeout: Duration) -> Harness {
    let resolver = dns.resolver(timeout);
    let allowed: Vec<_> = allowed.iter().map(|c| cidr(c)).collect();
    Harness::open(move |cfg| {
        cfg.resolver = Arc::new(resolver);
        cfg.ssrf.allow_cidrs = allowed;
        cfg.timeouts.connect = Duration::from_secs(1);
    })
}

#[test]
fn a_name_whose_answer_is_internal_is_refused_naming_the_address() {
    let dns = DnsServer::start();
    // (name, its records, what the refusal must name)
    let cases: &[(&str, &[&str], &str)] = &[
        ("loop2.example.com", &["127.0.0.2"], "loop2.example.com: address 127.0.0.2 is loopback"),
        ("secret.example.com", &[SECRET], "secret.example.com: address 127.0.0.1 is loopback"),
        ("ten.example.com", &["10.0.0.5"], "ten.example.com: address 10.0.0.5 is private-use"),
        ("zero.example.com", &["0.0.0.0"], "zero.example.com: address 0.0.0.0 is the unspecified address"),
        ("imds.example.com", &["169.254.169.254"], "address 169.254.169.254 is cloud metadata service"),
        ("v6only.example.com", &["::1"], "v6only.example.com: address ::1 is loopback"),
        ("mapped.example.com", &["::ffff:127.0.0.1"], "address ::ffff:127.0.0.1 is IPv4-mapped IPv6"),
        ("nat64.example.com", &["64:ff9b::7f00:1"], "address 64:ff9b::7f00:1 is NAT64"),
        ("ula.example.com", &["fd12::1"], "address fd12::1 is unique local"),
    ];
    for (name, records, _) in cases {
        dns.set(name, records);
    }
    let h = harness(&dns, &[&format!("{PUBLIC}/32")]);
    let (harmless, secret) = twin_upstreams(&h);
    let port = secret.addr.port();
    let mut failures = Failures::default();
    for (name, _, mention) in cases {
        let url = format!("http://{name}:{port}/");
        if let Err(e) = h.curl(&[&url]).check(SSRF, mention) {
            failures.push(format!("curl {url}: {e}"));
        }
        failures.check(dns.count(name, DNS_TYPE_A) >= 1, || format!("{name}: the DNS server was never asked"));
    }
    failures.check(secret.count() == 0, || format!("the secret upstream saw {:?}", secret.seen));
    failures.check(harmless.count() == 0, || format!("the harmless upstream saw {:?}", harmless.seen));
    // Control, same broker: a name that answers the allowed address reaches the harmless upstream.
    dns.set("public.example.com", &[PUBLIC]);
    let control = h.curl(&[&format!("http://public.example.com:{port}/")]);
    failures.check(control.status == 200 && harmless.count() == 1, || format!("control: {control:?}"));
    failures.finish("internal answers");
}

#[test]
fn a_mixed_answer_is_refused_whole_naming_the_internal_address() {
    let dns = DnsServer::start();
    let cases: &[(&str, &[&str], &str)] = &[
        ("mixed-a.example.com", &[PUBLIC, SECRET], "mixed-a.example.com: address 127.0.0.1 is loopback"),
        ("mixed-b.example.com", &[SECRET, PUBLIC], "mixed-b.example.com: address 127.0.0.1 is loopback"),
        ("mixed-c.example.com", &[PUBLIC, "10.0.0.7"], "mixed-c.example.com: address 10.0.0.7 is private-use"),
        // A allowed, AAAA internal: both families are asked and both are checked.
        ("mixed-d.example.com", &[PUBLIC, "::1"], "mixed-d.example.com: address ::1 is loopback"),
        ("mixed-e.example.com", &[PUBLIC, "fe80::1"], "mixed-e.example.com: address fe80::1 is link-local"),
        // The internal address last in a long answer (30 allowed addresses first; over 512 bytes on the wire).
        ("long.example.com", LONG_ANSWER, "long.example.com: address 127.0.0.1 is loopback"),
    ];
    for (name, records, _) in cases {
        dns.set(name, records);
    }
    let h = harness(&dns, &[&format!("{PUBLIC}/32"), "127.0.0.128/25"]);
    let (harmless, secret) = twin_upstreams(&h);
    let port = secret.addr.port();
    let mut failures = Failures::default();
    for (name, _, mention) in cases {
        let url = format!("http://{name}:{port}/");
        if let Err(e) = h.curl(&[&url]).check(SSRF, mention) {
            failures.push(format!("curl {url}: {e}"));
        }
    }
    // Not "pick the good one and carry on": neither upstream saw anything.
    failures.check(secret.count() == 0, || format!("the secret upstream saw {:?}", secret.seen));
    failures.check(harmless.count() == 0, || format!("the harmless upstream saw {:?}", harmless.seen));
    failures.finish("mixed answers");
}

/// 30 allowed addresses (127.0.0.128/25 is allowed where this is used), then the internal one.
const LONG_ANSWER: &[&str] = &[
    "127.0.0.130",
    "127.0.0.131",
    "127.0.0.132",
    "127.0.0.133",
    "127.0.0.134",
    "127.0.0.135",
    "127.0.0.136",
    "127.0.0.137",
    "127.0.0.138",
    "127.0.0.139",
    "127.0.0.140",
    "127.0.0.141",
    "127.0.0.142",
    "127.0.0.143",
    "127.0.0.144",
    "127.0.0.145",
    "127.0.0.146",
    "127.0.0.147",
    "127.0.0.148",
    "127.0.0.149",
    "127.0.0.150",
    "127.0.0.151",
    "127.0.0.152",
    "127.0.0.153",
    "127.0.0.154",
    "127.0.0.155",
    "127.0.0.156",
    "127.0.0.157",
    "127.0.0.158",
    "127.0.0.159",
    SECRET,
];

#[test]
fn a_name_that_resolves_to_the_broker_itself_is_refused_even_where_its_address_is_allowed() {
    let dns = DnsServer::start();
    dns.set("self.example.com", &[SECRET]);
    let h = harness(&dns, &[&format!("{SECRET}/32")]);
    let proxy = h.proxy.port();
    let r = h.curl(&[&format!("http://self.example.com:{proxy}/")]);
    r.check(SSRF, &format!("self.example.com: 127.0.0.1:{proxy} is the broker's own listening address")).unwrap();
    // Control: the same name on the upstream's port is an ordinary allowed destination.
    let r = h.curl(&[&format!("http://self.example.com:{}/", h.upstream.addr.port())]);
    assert_eq!((r.status, h.upstream.count()), (200, 1), "{r:?}");
}

/// Sends `n` requests for a name whose answer alternates public / internal; returns (200s, SSRF refusals, others).
fn rebind(h: &Harness, url: &str, n: usize) -> (usize, usize, Vec<String>) {
    let (mut reached, mut refused, mut other) = (0, 0, Vec::new());
    for _ in 0..n {
        let r = h.curl(&[url]);
        match r.status {
            200 => reached += 1,
            403 if r.check(SSRF, "flip.example.com: address 127.0.0.1 is loopback").is_ok() => refused += 1,
            _ => other.push(format!("{} {}", r.status, r.body)),
        }
    }
    (reached, refused, other)
}

#[test]
fn rebinding_between_lookups_never_reaches_the_internal_address() {
    let dns = DnsServer::start();
    dns.set_rounds("flip.example.com", &[&[PUBLIC], &[SECRET]]);
    let h = harness(&dns, &[&format!("{PUBLIC}/32")]);
    let (harmless, secret) = twin_upstreams(&h);
    let url = format!("http://flip.example.com:{}/steal", secret.addr.port());
    let (reached, refused, other) = rebind(&h, &url, 20);
    let mut failures = Failures::default();
    failures.check(other.is_empty(), || format!("neither reached nor refused by SSRF: {other:?}"));
    failures.check(reached + refused == 20, || format!("{reached} reached + {refused} refused != 20"));
    // Every request that went through went to the address its own check saw: the harmless upstream.
    failures.check(secret.count() == 0, || format!("REBOUND: the secret upstream saw {:?}", secret.seen));
    failures.check(harmless.count() == reached, || format!("harmless saw {} of {reached}", harmless.count()));
    // The answer really did alternate (otherwise this test proves nothing) ...
    failures.check(reached >= 5 && refused >= 5, || format!("no alternation: {reached} reached, {refused} refused"));
    // ... and the name was asked once per request: the dial never asked DNS again (that would be 40 queries; the
    // resolver may repeat a query it thinks was lost on a loaded machine, hence the small margin).
    let asked = dns.count("flip.example.com", DNS_TYPE_A);
    failures.check((20..25).contains(&asked), || format!("{asked} A queries for 20 requests"));
    failures.finish("rebinding");
}

#[test]
fn control_rebinding_reaches_the_secret_upstream_once_its_address_is_allowed() {
    // The same rebinding name and upstreams, with 127.0.0.1 allowed too: now the internal rounds do reach the
    // secret upstream. So the test above would see it if the broker ever dialled the internal address.
    let dns = DnsServer::start();
    dns.set_rounds("flip.example.com", &[&[PUBLIC], &[SECRET]]);
    let h = harness(&dns, &[&format!("{PUBLIC}/32"), &format!("{SECRET}/32")]);
    let (harmless, secret) = twin_upstreams(&h);
    let url = format!("http://flip.example.com:{}/steal", secret.addr.port());
    let (reached, refused, other) = rebind(&h, &url, 10);
    assert!(other.is_empty() && refused == 0 && reached == 10, "{reached} {refused} {other:?}");
    assert_eq!(harmless.count() + secret.count(), 10, "each request dialled one of the answers");
    assert!(secret.count() >= 3, "the internal rounds reached the secret upstream: {}", secret.count());
}

#[test]
fn nxdomain_and_an_empty_answer_are_502_resolve() {
    let dns = DnsServer::start();
    dns.set("empty.example.com", &[]);
    let h = harness(&dns, &[&format!("{PUBLIC}/32")]);
    let port = h.upstream.addr.port();
    let mut failures = Failures::default();
    for (name, mention) in [("nx.example.com", "nx.example.com does not resolve"), ("empty.example.com", "")] {
        let r = h.curl(&[&format!("http://{name}:{port}/")]);
        if let Err(e) = r.check(Expect::Deny(502, "resolve"), "") {
            failures.push(format!("{name}: {e}"));
        }
        failures.check(r.body.contains(mention), || format!("{name}: reason: {}", r.body));
        failures.check(dns.count(name, DNS_TYPE_A) >= 1, || format!("{name}: the DNS server was never asked"));
    }
    failures.check(h.upstream.count() == 0, || format!("the upstream saw {:?}", h.upstream.seen));
    failures.finish("nxdomain");
}

#[test]
fn a_name_server_that_never_answers_gives_502_resolve_within_the_timeout() {
    let dns = DnsServer::silent();
    let h = harness_with_timeout(&dns, &[&format!("{PUBLIC}/32")], Duration::from_secs(1));
    let start = Instant::now();
    let r = h.curl(&[&format!("http://slow.example.com:{}/", h.upstream.addr.port())]);
    let took = start.elapsed();
    r.check(Expect::Deny(502, "resolve"), "").unwrap();
    assert!(r.body.contains("took longer than 1s"), "{}", r.body);
    // Generous: it shows the deadline cut the lookup short, long before curl's own 20 s limit, even on a loaded machine.
    assert!(took < Duration::from_secs(10), "the 1 s resolve timeout held for {took:?}");
    assert!(dns.count("slow.example.com", DNS_TYPE_A) >= 1, "the silent server was asked");
    assert_eq!(h.upstream.count(), 0);
}

#[test]
fn names_refused_before_resolution_never_reach_the_name_server() {
    // A query is itself a leak (DNS exfiltration, or a lookup that a search domain completes into an internal
    // name), so these are refused without asking. The DNS server would answer every one with the harmless address.
    let names = [
        "localhost",
        "sub.localhost",
        "metadata.google.internal",
        "intranet",
        "db.internal",
        "printer.local",
        "nas.lan",
        "router.home",
        "1.0.0.127.in-addr.arpa",
        "thing.test",
        "x.onion",
    ];
    let dns = DnsServer::start();
    for name in names {
        dns.set(name, &[PUBLIC]);
    }
    let h = harness(&dns, &[&format!("{PUBLIC}/32")]);
    let port = h.upstream.addr.port();
    let mut failures = Failures::default();
    for name in names {
        let r = h.curl(&[&format!("http://{name}:{port}/")]);
        if let Err(e) = r.check(SSRF, &format!("{name}: refused before resolving")) {
            failures.push(format!("{name}: {e}"));
        }
    }
    let queries = dns.queries.lock().unwrap().clone();
    failures.check(queries.is_empty(), || format!("the name server was asked {queries:?}"));
    // Control: an ordinary name on the same broker is asked.
    dns.set("ordinary.example.com", &[PUBLIC]);
    let _ = h.curl(&[&format!("http://ordinary.example.com:{port}/")]);
    failures.check(dns.count("ordinary.example.com", DNS_TYPE_A) >= 1, || "control: not asked".into());
    failures.finish("names refused before resolution");
}

#[test]
fn rebinding_inside_a_tunnel_never_reaches_the_internal_address() {
    // CONNECT checks the name once (allowed answer), then plain HTTP inside the tunnel is served request by
    // request: each request resolves and is checked again, so the internal rounds are refused, never dialled.
    let dns = DnsServer::start();
    dns.set_rounds("flip.example.com", &[&[PUBLIC], &[SECRET]]);
    let h = harness(&dns, &[&format!("{PUBLIC}/32")]);
    let (harmless, secret) = twin_upstreams(&h);
    let authority = format!("flip.example.com:{}", secret.addr.port());
    let requests: Vec<String> =
        (0..8).map(|i| format!("GET /steal/{i} HTTP/1.1\r\nHost: {authority}\r\n\r\n")).collect();
    let (connect, inner) = h.tunnel_http(&authority, &requests);
    assert_eq!(connect.status, 200, "the first answer is the allowed one: {connect:?}");
    let mut failures = Failures::default();
    failures.check(inner.len() == requests.len(), || format!("{} answers to {} requests", inner.len(), requests.len()));
    let (mut reached, mut refused) = (0, 0);
    for (i, r) in inner.iter().enumerate() {
        if r.status == 200 {
            reached += 1;
        } else if r.check(SSRF, "flip.example.com: address 127.0.0.1 is loopback").is_ok() {
            refused += 1;
        } else {
            failures.push(format!("request {i}: {r:?}"));
        }
    }
    failures.check(secret.count() == 0, || format!("REBOUND: the secret upstream saw {:?}", secret.seen));
    failures.check(harmless.count() == reached, || format!("harmless saw {} of {reached}", harmless.count()));
    failures.check(reached >= 2 && refused >= 2, || format!("no alternation: {reached} reached, {refused} refused"));
    failures.finish("rebinding inside a tunnel");
}
