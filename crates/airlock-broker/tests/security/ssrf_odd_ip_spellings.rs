//! Attack: reach loopback through an IP address spelt so that a check on the text misses it: decimal
//! (`2130706433`), octal (`0177.0.0.1`), hex (`0x7f.1`), short forms (`127.1`), zero padding, IPv4-mapped IPv6,
//! trailing dots, percent-encoding, full-width digits, IPv6 zone ids, and the "any" address `0.0.0.0`, which Linux
//! dials as this host.
//!
//! Defence: the broker never decides on the spelling. It reads the target with the WHATWG host parser (the reading
//! curl, browsers and the dialler give these forms), reduces every form to one canonical address and classifies that
//! address (`ssrf::classify`). A spelling that cannot be read one way only is refused as unparseable: by the broker
//! (400 `parse`) or already by the HTTP parser in front of it (hyper's bare 400).
//!
//! Every payload is written by hand on a raw socket, so the broker sees the spelling itself: curl rewrites most of
//! these forms (it prints `GET http://127.0.0.1:…` for `0x7f.1`) before sending. Each one is also sent with curl,
//! the way a tool would, where curl accepts it. The policy allows every host with `block_private` off and the SSRF
//! policy allows nothing, so the SSRF step alone decides. The control test sends the same spellings to a broker
//! that allows exactly 127.0.0.1 and ::1 and watches them reach the upstreams: the refusals are the SSRF step's
//! doing, and these tests fail if it lets a spelling through.

use crate::common::*;

/// How a payload is sent with curl.
#[derive(Debug, Clone, Copy)]
enum Curl {
    /// curl sends it (normalised, mostly) and the broker answers this.
    Sends(Expect),
    /// curl refuses the URL itself and sends nothing; only the raw request tests the broker.
    Refuses,
}

use Curl::{Refuses, Sends};

/// (host as written in the URL, outcome of the raw request, outcome with curl, what the refusal must name).
///
/// The named address is also where a leak would have gone: `127.0.0.1` and `::1` (and `0.0.0.0`, `::`, which
/// Linux dials as this host) have an upstream listening on the port used, so a spelling that got through would be
/// answered, not merely fail to connect.
const SPELLINGS: &[(&str, Expect, Curl, &str)] = &[
    // 127.0.0.1 in every IPv4 number form the WHATWG parser (and inet_aton) accepts.
    ("2130706433", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("2130706433.", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("0177.0.0.1", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("0177.1", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("0177.0000.0000.0001", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("017700000001", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("0x7f.1", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("0X7F.1", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("0x7f000001", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("0x7f.0.0.01", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("0x7f.0x0.0x0.0x1", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("127.1", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("127.0.1", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("127.000.000.001", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("127.0.0.01", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("127.0.0.1.", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    // IPv4-mapped IPv6 is the same IPv4 peer: the parser maps it to 127.0.0.1, which is then classified.
    ("[::ffff:127.0.0.1]", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("[::ffff:7f00:1]", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("[::FFFF:7F00:1]", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("[0:0:0:0:0:ffff:127.0.0.1]", SSRF, Sends(SSRF), "address 127.0.0.1 is loopback"),
    // A '%' in a host outside brackets: the `http` crate's authority parser (in front of the broker) refuses the
    // request line, a bare 400; it never becomes a target. curl percent-decodes the host and sends 127.0.0.1 (or
    // `127.0.0.1.`), which the SSRF step refuses.
    ("%31%32%37.0.0.1", Expect::Malformed, Sends(SSRF), "address 127.0.0.1 is loopback"),
    ("127.0.0.1%2e", Expect::Malformed, Sends(SSRF), "address 127.0.0.1 is loopback"),
    // Non-ASCII in a request line is not HTTP: hyper refuses it raw. curl applies IDNA (full-width digits and the
    // ideographic full stop map to ASCII) and sends 127.0.0.1.
    (
        "\u{ff11}\u{ff12}\u{ff17}.\u{ff10}.\u{ff10}.\u{ff11}",
        Expect::Malformed,
        Sends(SSRF),
        "address 127.0.0.1 is loopback",
    ),
    ("127\u{3002}0\u{3002}0\u{3002}1", Expect::Malformed, Sends(SSRF), "address 127.0.0.1 is loopback"),
    // ::1 spelt out.
    ("[::1]", SSRF, Sends(SSRF), "address ::1 is loopback"),
    ("[0:0:0:0:0:0:0:1]", SSRF, Sends(SSRF), "address ::1 is loopback"),
    ("[0000::1]", SSRF, Sends(SSRF), "address ::1 is loopback"),
    ("[::0:1]", SSRF, Sends(SSRF), "address ::1 is loopback"),
    // "Any address": a connect() to it reaches this host. Never allowed, whatever the operator lists.
    ("0.0.0.0", SSRF, Sends(SSRF), "address 0.0.0.0 is the unspecified address"),
    ("0", SSRF, Sends(SSRF), "address 0.0.0.0 is the unspecified address"),
    ("0x0", SSRF, Sends(SSRF), "address 0.0.0.0 is the unspecified address"),
    ("0.0", SSRF, Sends(SSRF), "address 0.0.0.0 is the unspecified address"),
    ("[::]", SSRF, Sends(SSRF), "address :: is the unspecified address"),
    ("[0::]", SSRF, Sends(SSRF), "address :: is the unspecified address"),
    // The rest of 127/8 is loopback too (Linux answers on all of it).
    ("127.0.0.2", SSRF, Sends(SSRF), "address 127.0.0.2 is loopback"),
    ("2130706434", SSRF, Sends(SSRF), "address 127.0.0.2 is loopback"),
    ("127.1.2.3", SSRF, Sends(SSRF), "address 127.1.2.3 is loopback"),
    ("127.255.255.254", SSRF, Sends(SSRF), "address 127.255.255.254 is loopback"),
    // The largest 32-bit number is the limited broadcast address.
    ("4294967295", SSRF, Sends(SSRF), "address 255.255.255.255 is limited broadcast"),
    // A zone id: the `url` crate has no zone ids, so the broker cannot read the host and refuses it (400 parse)
    // rather than guess which interface is meant. curl drops the zone id and sends fe80::1: link-local, refused.
    ("[fe80::1%25eth0]", PARSE, Sends(SSRF), "address fe80::1 is link-local"),
    ("[fe80::1%25lo]", PARSE, Sends(SSRF), "address fe80::1 is link-local"),
    // Ends in a number but is no IPv4 address: a resolver might read it one way and the dialler another. Refused as
    // unparseable by the broker, which curl also sends as written.
    ("127.0.0.1.1", PARSE, Sends(PARSE), ""),
    ("127.0.0.08", PARSE, Sends(PARSE), ""),
    ("4294967296", PARSE, Sends(PARSE), ""),
    // IPv4 number forms inside IPv6 brackets are not IPv6; curl refuses the URL ("bad range specification").
    ("[::ffff:0x7f.1]", PARSE, Refuses, ""),
];

/// The port a payload's URL uses: the IPv6 upstream's for IPv6 loopback and unspecified, the IPv4 upstream's
/// otherwise, so that a payload that got through would reach a live listener.
fn port_for(mention: &str, v4: u16, v6: u16) -> u16 {
    if mention.contains("::") { v6 } else { v4 }
}

#[test]
fn every_spelling_of_a_loopback_or_unspecified_address_is_refused_before_anything_is_dialled() {
    let h = Harness::open(|cfg| cfg.ssrf.allow_cidrs.clear());
    let v6 = h.upstream_at("::1", 0).expect("an IPv6 loopback upstream");
    let (p4, p6) = (h.upstream.addr.port(), v6.addr.port());
    let mut failures = Failures::default();
    for &(host, raw, curl, mention) in SPELLINGS {
        let url = format!("http://{host}:{}/", port_for(mention, p4, p6));
        let authority = url.trim_start_matches("http://").trim_end_matches('/');
        if let Err(e) = h.raw_get(&url, authority).check(raw, mention) {
            failures.push(format!("raw {url}: {e}"));
        }
        match curl {
            Sends(want) => {
                if let Err(e) = h.curl(&["--path-as-is", &url]).check(want, mention) {
                    failures.push(format!("curl {url}: {e}"));
                }
            }
            Refuses => {
                let r = h.curl(&["--path-as-is", &url]);
                failures.check(r.status == 0, || format!("curl {url}: expected curl to refuse the URL: {r:?}"));
            }
        }
    }
    failures.check(h.upstream.count() == 0, || format!("the 127.0.0.1 upstream saw {:?}", h.upstream.seen));
    failures.check(v6.count() == 0, || format!("the ::1 upstream saw {:?}", v6.seen));
    failures.finish("loopback spellings");
}

#[test]
fn control_the_same_spellings_reach_the_upstreams_when_exactly_those_addresses_are_allowed() {
    // Same policy, same requests; the SSRF policy now allows exactly 127.0.0.1 and ::1. Every spelling of those
    // two addresses must go through: otherwise the refusals above could come from somewhere other than SSRF.
    let h = Harness::open(|cfg| cfg.ssrf.allow_cidrs = vec![cidr("127.0.0.1/32"), cidr("::1/128")]);
    let v6 = h.upstream_at("::1", 0).expect("an IPv6 loopback upstream");
    let (p4, p6) = (h.upstream.addr.port(), v6.addr.port());
    let mut failures = Failures::default();
    let mut sent = (0, 0);
    for &(host, raw, _, mention) in SPELLINGS {
        let exactly_allowed = mention == "address 127.0.0.1 is loopback" || mention == "address ::1 is loopback";
        if !exactly_allowed || raw != SSRF {
            continue;
        }
        let url = format!("http://{host}:{}/", port_for(mention, p4, p6));
        let authority = url.trim_start_matches("http://").trim_end_matches('/');
        if let Err(e) = h.raw_get(&url, authority).check(Expect::Reached, "") {
            failures.push(format!("raw {url}: {e}"));
        }
        if mention.contains("::") { sent.1 += 1 } else { sent.0 += 1 }
    }
    failures
        .check(h.upstream.count() == sent.0, || format!("127.0.0.1 upstream: {} of {}", h.upstream.count(), sent.0));
    failures.check(v6.count() == sent.1, || format!("::1 upstream: {} of {}", v6.count(), sent.1));
    failures.check(sent.0 >= 20 && sent.1 >= 4, || format!("too few control payloads: {sent:?}"));
    failures.finish("control");
}

#[test]
fn the_unspecified_address_stays_refused_even_when_the_operator_allows_everything() {
    // `0.0.0.0` and `::` are "this host" to connect(): an allow list cannot make them a destination. With every
    // address allowed, a broker that let them through would reach the loopback upstreams listening on the port.
    let h = Harness::open(|cfg| cfg.ssrf.allow_cidrs = vec![cidr("0.0.0.0/0"), cidr("::/0")]);
    let v6 = h.upstream_at("::1", 0).expect("an IPv6 loopback upstream");
    let (p4, p6) = (h.upstream.addr.port(), v6.addr.port());
    let mut failures = Failures::default();
    for &(host, _, _, mention) in SPELLINGS.iter().filter(|s| s.3.contains("unspecified")) {
        let url = format!("http://{host}:{}/", port_for(mention, p4, p6));
        let authority = url.trim_start_matches("http://").trim_end_matches('/');
        if let Err(e) = h.raw_get(&url, authority).check(SSRF, mention) {
            failures.push(format!("raw {url}: {e}"));
        }
    }
    // Control: with everything allowed, a plain loopback address does go through.
    if let Err(e) = h.raw_get(&format!("http://127.0.0.1:{p4}/"), "x").check(Expect::Reached, "") {
        failures.push(format!("control 127.0.0.1: {e}"));
    }
    failures.check(h.upstream.count() == 1, || format!("the 127.0.0.1 upstream saw {} requests", h.upstream.count()));
    failures.check(v6.count() == 0, || format!("the ::1 upstream saw {:?}", v6.seen));
    failures.finish("unspecified with allow-all");
}
