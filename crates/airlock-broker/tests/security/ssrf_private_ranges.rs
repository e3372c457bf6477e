//! Attack: reach the internal network behind the broker (RFC 1918 and CGNAT space, link-local, unique-local IPv6,
//! benchmarking and documentation nets, multicast and broadcast, the reserved 240/4) or smuggle an internal IPv4
//! address inside an IPv6 one (NAT64, 6to4, Teredo, IPv4-compatible, IPv4-translated), by literal address or
//! through an allowed name that resolves to one.
//!
//! Defence: every address, literal or resolved, is classified by the longest matching prefix of one table built from
//! the IANA special-purpose registries (`ssrf::SPECIAL_RANGES`). Anything that is not public unicast is refused
//! unless the operator allows it; prefixes that carry another address, and addresses that are not a place one dials
//! (unspecified, "this network", multicast, broadcast, discard), are refused whatever the operator allows.
//!
//! Each payload is sent with curl and as a raw request, as a literal and as the pinned answer of a policy-allowed
//! name. Nothing here is ever dialled by a correct broker; the connect timeout is short so a broken one shows up as
//! a wrong status, not a hang. The control in the same broker shows a name whose answer is the allowed loopback
//! address reaching the upstream: only the address differs, so the refusals are the classification's doing.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;

/// (address as written in a URL, what the refusal must say about it).
const RANGES: &[(&str, &str)] = &[
    ("10.0.0.1", "address 10.0.0.1 is private-use"),
    ("10.255.255.255", "address 10.255.255.255 is private-use"),
    ("172.16.0.1", "address 172.16.0.1 is private-use"),
    ("172.31.255.255", "address 172.31.255.255 is private-use"),
    ("192.168.1.1", "address 192.168.1.1 is private-use"),
    ("192.168.255.255", "address 192.168.255.255 is private-use"),
    ("100.64.0.1", "address 100.64.0.1 is shared address space (carrier-grade NAT)"),
    ("100.127.255.254", "address 100.127.255.254 is shared address space (carrier-grade NAT)"),
    ("198.18.0.1", "address 198.18.0.1 is benchmarking-only"),
    ("198.19.255.255", "address 198.19.255.255 is benchmarking-only"),
    ("169.254.1.1", "address 169.254.1.1 is link-local"),
    ("0.1.2.3", "address 0.1.2.3 is \"this network\" (0.0.0.0/8)"),
    ("192.0.0.8", "address 192.0.0.8 is reserved for IETF protocol assignments"),
    ("192.0.2.1", "address 192.0.2.1 is documentation-only"),
    ("198.51.100.1", "address 198.51.100.1 is documentation-only"),
    ("203.0.113.1", "address 203.0.113.1 is documentation-only"),
    ("192.88.99.1", "address 192.88.99.1 is 6to4 relay anycast (deprecated)"),
    ("224.0.0.1", "address 224.0.0.1 is multicast"),
    ("239.255.255.250", "address 239.255.255.250 is multicast"),
    ("255.255.255.255", "address 255.255.255.255 is limited broadcast"),
    ("240.0.0.1", "address 240.0.0.1 is reserved, not globally routable"),
    ("[::ffff:10.0.0.1]", "address 10.0.0.1 is private-use"),
    ("[fc00::1]", "address fc00::1 is unique local (private IPv6)"),
    ("[fd12:3456::1]", "address fd12:3456::1 is unique local (private IPv6)"),
    ("[fe80::1]", "address fe80::1 is link-local"),
    ("[fec0::1]", "address fec0::1 is site-local (deprecated private IPv6)"),
    ("[ff02::1]", "address ff02::1 is multicast"),
    ("[100::1]", "address 100::1 is discard-only"),
    ("[2001:db8::1]", "address 2001:db8::1 is documentation-only"),
    ("[2001:10::1]", "address 2001:10::1 is an ORCHID overlay identifier"),
    ("[5f00::1]", "address 5f00::1 is SRv6 segment identifiers"),
    // IPv6 prefixes that carry an IPv4 address: refused as what they are, and the message says what they carry.
    (
        "[64:ff9b::7f00:1]",
        "address 64:ff9b::7f00:1 is NAT64 (IPv4 behind a translator) (it carries 127.0.0.1, loopback)",
    ),
    ("[64:ff9b::10.0.0.1]", "address 64:ff9b::a00:1 is NAT64 (IPv4 behind a translator) (it carries 10.0.0.1"),
    ("[64:ff9b:1::a00:1]", "address 64:ff9b:1::a00:1 is NAT64"),
    ("[2002:7f00:1::]", "address 2002:7f00:1:: is 6to4 (IPv4 tunnel) (it carries 127.0.0.1, loopback)"),
    ("[2002:a9fe:a9fe::]", "address 2002:a9fe:a9fe:: is 6to4 (IPv4 tunnel) (it carries 169.254.169.254"),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "address 2001:0:4136:e378:8000:63bf:3fff:fdd2 is Teredo (IPv4 tunnel)"),
    ("[::127.0.0.1]", "address ::7f00:1 is IPv4-compatible IPv6 (deprecated) (it carries 127.0.0.1, loopback)"),
    ("[::10.0.0.1]", "address ::a00:1 is IPv4-compatible IPv6 (deprecated) (it carries 10.0.0.1"),
    ("[::ffff:0:7f00:1]", "address ::ffff:0:7f00:1 is IPv4-translated IPv6 (it carries 127.0.0.1, loopback)"),
];

/// The name pinned to the `i`-th address of [`RANGES`].
fn name_for(i: usize) -> String {
    format!("r{i}.example.com")
}

fn pins(addresses: &[(&str, &str)]) -> Vec<(String, Vec<String>)> {
    let unbracket = |a: &str| a.trim_start_matches('[').trim_end_matches(']').to_string();
    addresses.iter().enumerate().map(|(i, (a, _))| (name_for(i), vec![unbracket(a)])).collect()
}

/// A broker whose policy allows every host (`block_private` off) and whose static resolver answers `r<i>.example.com`
/// with the `i`-th address of `addresses`, and `control.example.com` with the allowed 127.0.0.1.
fn harness(addresses: &[(&str, &str)], tweak: impl FnOnce(&mut airlock_broker::BrokerConfig)) -> Harness {
    let owned = pins(addresses);
    let mut table: Vec<(&str, Vec<&str>)> =
        owned.iter().map(|(n, a)| (n.as_str(), a.iter().map(String::as_str).collect())).collect();
    table.push(("control.example.com", vec!["127.0.0.1"]));
    let table: Vec<(&str, &[&str])> = table.iter().map(|(n, a)| (*n, a.as_slice())).collect();
    let resolver = pinned_resolver(&table);
    Harness::open(move |cfg| {
        cfg.resolver = Arc::new(resolver);
        cfg.timeouts.connect = Duration::from_secs(1);
        tweak(cfg);
    })
}

/// Every address as a literal (curl and raw) and as a name's answer (curl): all refused by the SSRF step.
fn attack(h: &Harness, addresses: &[(&str, &str)], failures: &mut Failures) {
    let port = h.upstream.addr.port();
    for (i, &(address, mention)) in addresses.iter().enumerate() {
        let url = format!("http://{address}:{port}/internal/admin");
        if let Err(e) = h.curl(&[&url]).check(SSRF, mention) {
            failures.push(format!("curl {url}: {e}"));
        }
        if let Err(e) = h.raw_get(&url, &format!("{address}:{port}")).check(SSRF, mention) {
            failures.push(format!("raw {url}: {e}"));
        }
        let name = name_for(i);
        let url = format!("http://{name}:{port}/internal/admin");
        // The name's refusal names the name and the address it resolved to. An IPv4-mapped answer is not mapped
        // back to IPv4 the way a literal in a URL is: it is refused as IPv4-mapped, whatever it carries.
        let mention = match address.strip_prefix("[::ffff:") {
            Some(rest) if rest.contains('.') => "is IPv4-mapped IPv6",
            _ => mention.split(" (it carries").next().unwrap_or(mention),
        };
        let r = h.curl(&[&url]);
        if let Err(e) = r.check(SSRF, mention).and_then(|_| {
            r.body.contains(&format!("\"{name}: address ")).then_some(()).ok_or_else(|| format!("{name} not named"))
        }) {
            failures.push(format!("curl {url} (answer {address}): {e}"));
        }
    }
}

#[test]
fn internal_and_tunnelling_addresses_are_refused_as_literals_and_as_answers() {
    let h = harness(RANGES, |_| {});
    let mut failures = Failures::default();
    attack(&h, RANGES, &mut failures);
    failures.check(h.upstream.count() == 0, || format!("the upstream saw {:?}", h.upstream.seen));
    // Control, same broker: an allowed name whose answer is the one allowed address reaches the upstream.
    let control = h.curl(&[&format!("http://control.example.com:{}/internal/admin", h.upstream.addr.port())]);
    failures.check(control.status == 200 && h.upstream.count() == 1, || format!("control: {control:?}"));
    failures.finish("private ranges");
}

/// Ranges no allow-list can open, limited to addresses that cannot leave this machine even if a broken broker
/// dialled them (the unspecified addresses reach the local upstreams; multicast and broadcast fail to connect).
/// The tunnelling prefixes are refused the same way by the classifier's unit tests, but dialling one here could
/// send a packet to the default gateway, so they are not used with an allow-list on the wire.
const NEVER: &[(&str, &str)] = &[
    ("0.0.0.0", "address 0.0.0.0 is the unspecified address"),
    ("[::]", "address :: is the unspecified address"),
    ("0.1.2.3", "address 0.1.2.3 is \"this network\" (0.0.0.0/8)"),
    ("224.0.0.1", "address 224.0.0.1 is multicast"),
    ("239.255.255.250", "address 239.255.255.250 is multicast"),
    ("255.255.255.255", "address 255.255.255.255 is limited broadcast"),
    ("[ff02::1]", "address ff02::1 is multicast"),
    ("[ff05::1:3]", "address ff05::1:3 is multicast"),
];

#[test]
fn never_ranges_stay_refused_when_the_operator_allows_them_by_address_and_by_name() {
    let h = harness(NEVER, |cfg| {
        cfg.ssrf.allow_cidrs =
            ["0.0.0.0/0", "::/0", "224.0.0.0/4", "255.255.255.255/32", "ff00::/8"].map(cidr).to_vec();
        cfg.ssrf.allow_hosts = vec!["*.example.com".into()];
    });
    let mut failures = Failures::default();
    attack(&h, NEVER, &mut failures);
    failures.check(h.upstream.count() == 0, || format!("the upstream saw {:?}", h.upstream.seen));
    // Control: the allowances are in force, so an address they cover that is allowable does go through.
    let control = h.curl(&[&format!("http://127.0.0.1:{}/internal/admin", h.upstream.addr.port())]);
    failures.check(control.status == 200 && h.upstream.count() == 1, || format!("control: {control:?}"));
    failures.finish("never-allowed ranges");
}
