//! Attack: read cloud credentials from an instance metadata service (AWS IMDS and ECS credentials, GCP, Azure,
//! Alibaba, Oracle, Tencent, IBM ...) through the broker, by address in any spelling, by the providers' DNS names in
//! any case or with a trailing dot, or through an allowed name whose answer is a metadata address.
//!
//! Defence: metadata addresses are their own range (`Range::CloudMetadata`), which wins over the link-local range
//! around it (longest prefix), and metadata names are refused before they reach a resolver. Neither can be opened
//! by accident: a name allow-list never admits them, and an address allow-list only admits a metadata address
//! listed exactly (`/32`, `/128`), never through a wider range such as `169.254.0.0/16`.
//!
//! Every request goes to the upstream's high port, never 80: even a broken broker would dial nothing that answers
//! on a cloud machine, and the connect timeout is short so a failure shows up as a wrong status, not a hang. The
//! policy allows every host with `block_private` off, so the SSRF step alone decides; the control shows the same
//! request shape through an allowed name reaching the upstream once its answer is not a metadata address.

use std::sync::Arc;
use std::time::Duration;

use crate::common::*;

/// Names pinned in the static resolver to metadata addresses: the policy allows them (every host), their answers
/// are what must be refused.
const PINS: &[(&str, &[&str])] = &[
    ("meta.example.com", &["169.254.169.254"]),
    ("ecs-creds.example.com", &["169.254.170.2"]),
    ("imds6.example.com", &["fd00:ec2::254"]),
    ("aliyun.example.com", &["100.100.100.200"]),
    ("oracle.example.com", &["192.0.0.192"]),
    ("tencent.example.com", &["169.254.0.23"]),
    ("mapped-meta.example.com", &["::ffff:169.254.169.254"]),
    // An allowed loopback address next to the metadata one: any denied address denies the whole answer.
    ("mixed-meta.example.com", &["127.0.0.1", "169.254.169.254"]),
];

/// (host as written, what the refusal must name). Every one must be refused with 403 `ssrf`.
const PAYLOADS: &[(&str, &str)] = &[
    // 169.254.169.254 (AWS, GCP, Azure, OpenStack, DigitalOcean ...) in every spelling.
    ("169.254.169.254", "address 169.254.169.254 is cloud metadata service"),
    ("2852039166", "address 169.254.169.254 is cloud metadata service"),
    ("0xa9fea9fe", "address 169.254.169.254 is cloud metadata service"),
    ("0251.0376.0251.0376", "address 169.254.169.254 is cloud metadata service"),
    ("0xa9.0xfe.0xa9.0xfe", "address 169.254.169.254 is cloud metadata service"),
    ("169.254.43518", "address 169.254.169.254 is cloud metadata service"),
    ("[::ffff:169.254.169.254]", "address 169.254.169.254 is cloud metadata service"),
    ("[::ffff:a9fe:a9fe]", "address 169.254.169.254 is cloud metadata service"),
    // Its neighbours in the same /24 (AWS DNS .253, time sync .123) and the other providers' endpoints.
    ("169.254.169.253", "address 169.254.169.253 is cloud metadata service"),
    ("169.254.169.123", "address 169.254.169.123 is cloud metadata service"),
    ("169.254.170.2", "address 169.254.170.2 is cloud metadata service"),
    ("169.254.170.23", "address 169.254.170.23 is cloud metadata service"),
    ("169.254.0.23", "address 169.254.0.23 is cloud metadata service"),
    ("[fd00:ec2::254]", "address fd00:ec2::254 is cloud metadata service"),
    ("[fd00:ec2:0:0:0:0:0:254]", "address fd00:ec2::254 is cloud metadata service"),
    ("100.100.100.200", "address 100.100.100.200 is cloud metadata service"),
    ("192.0.0.192", "address 192.0.0.192 is cloud metadata service"),
    // The providers' names, in any case, with a trailing dot, bare (completed by search domains) or below them.
    ("metadata.google.internal", "metadata.google.internal: refused before resolving: a cloud metadata service name"),
    ("metadata.google.internal.", "metadata.google.internal: refused before resolving: a cloud metadata service name"),
    ("METADATA.GOOGLE.INTERNAL", "metadata.google.internal: refused before resolving: a cloud metadata service name"),
    ("Metadata.Google.Internal.", "metadata.google.internal: refused before resolving: a cloud metadata service name"),
    ("computeMetadata.metadata.google.internal", "a cloud metadata service name"),
    ("metadata", "metadata: refused before resolving: a cloud metadata service name"),
    ("METADATA", "metadata: refused before resolving: a cloud metadata service name"),
    ("metadata.goog", "metadata.goog: refused before resolving: a cloud metadata service name"),
    ("instance-data", "instance-data: refused before resolving: a cloud metadata service name"),
    ("instance-data.ec2.internal", "instance-data.ec2.internal: refused before resolving: a cloud metadata"),
    ("instance-data.eu-west-1.compute.internal", "refused before resolving: a cloud metadata service name"),
    ("metadata.tencentyun.com", "metadata.tencentyun.com: refused before resolving: a cloud metadata"),
    ("api.metadata.cloud.ibm.com", "api.metadata.cloud.ibm.com: refused before resolving: a cloud metadata"),
    ("rancher-metadata", "rancher-metadata: refused before resolving: a cloud metadata service name"),
    // Policy-allowed names whose (pinned) answer is a metadata address.
    ("meta.example.com", "meta.example.com: address 169.254.169.254 is cloud metadata service"),
    ("ecs-creds.example.com", "ecs-creds.example.com: address 169.254.170.2 is cloud metadata service"),
    ("imds6.example.com", "imds6.example.com: address fd00:ec2::254 is cloud metadata service"),
    ("aliyun.example.com", "aliyun.example.com: address 100.100.100.200 is cloud metadata service"),
    ("oracle.example.com", "oracle.example.com: address 192.0.0.192 is cloud metadata service"),
    ("tencent.example.com", "tencent.example.com: address 169.254.0.23 is cloud metadata service"),
    // An IPv4-mapped answer is never dialled at all (it hides the address it carries).
    ("mapped-meta.example.com", "address ::ffff:169.254.169.254 is IPv4-mapped IPv6 (it carries 169.254.169.254"),
    ("mixed-meta.example.com", "mixed-meta.example.com: address 169.254.169.254 is cloud metadata service"),
];

fn harness(tweak: impl FnOnce(&mut airlock_broker::BrokerConfig)) -> Harness {
    Harness::open(|cfg| {
        cfg.resolver = Arc::new(pinned_resolver(PINS));
        cfg.timeouts.connect = Duration::from_secs(1);
        tweak(cfg);
    })
}

/// Sends every payload with curl and as a raw request; both must be refused by the SSRF step.
fn attack_all(h: &Harness, failures: &mut Failures) {
    let port = h.upstream.addr.port();
    for &(host, mention) in PAYLOADS {
        let url = format!("http://{host}:{port}/latest/meta-data/iam/security-credentials/");
        if let Err(e) = h.curl(&[&url]).check(SSRF, mention) {
            failures.push(format!("curl {url}: {e}"));
        }
        if let Err(e) = h.raw_get(&url, &format!("{host}:{port}")).check(SSRF, mention) {
            failures.push(format!("raw {url}: {e}"));
        }
    }
    failures.check(h.upstream.count() == 0, || format!("the upstream saw {:?}", h.upstream.seen));
}

#[test]
fn every_metadata_address_name_and_spelling_is_refused() {
    // The harness's 127.0.0.1/32 stays allowed: `mixed-meta.example.com` has one allowed address in its answer.
    let h = harness(|_| {});
    let mut failures = Failures::default();
    attack_all(&h, &mut failures);
    failures.finish("cloud metadata");
}

#[test]
fn wide_operator_allowances_do_not_open_a_metadata_service() {
    // An operator who allows the link-local range, CGNAT space, the IETF block and all of fd00::/8 (say, for a
    // cluster network), and allow-lists names, still gets no metadata: only an exact /32 or /128 would open one, and
    // no allow-list opens a metadata name.
    let h = harness(|cfg| {
        cfg.ssrf.allow_cidrs.extend(
            ["169.254.0.0/16", "169.254.169.0/24", "169.254.170.0/24", "100.64.0.0/10", "192.0.0.0/24", "fd00::/8"]
                .map(cidr),
        );
        cfg.ssrf.allow_hosts = ["meta.example.com", "*.example.com", "metadata.google.internal", "*.internal"]
            .iter()
            .chain(["metadata", "instance-data", "metadata.goog", "rancher-metadata"].iter())
            .map(|s| s.to_string())
            .collect();
    });
    let mut failures = Failures::default();
    attack_all(&h, &mut failures);
    failures.finish("cloud metadata under wide allowances");
}

#[test]
fn control_the_same_request_through_an_allowed_name_reaches_the_upstream_when_it_resolves_elsewhere() {
    // Same policy, same SSRF policy, same path: only the pinned answer differs (127.0.0.1, which is allowed).
    // The refusals above are therefore the metadata classification, and the tests fail if it lets one through.
    let h = Harness::open(|cfg| {
        cfg.resolver = Arc::new(pinned_resolver(&[("meta.example.com", &["127.0.0.1"])]));
    });
    let url = format!("http://meta.example.com:{}/latest/meta-data/iam/security-credentials/", h.upstream.addr.port());
    let r = h.curl(&[&url]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(h.upstream.last().expect("reached").uri, "/latest/meta-data/iam/security-credentials/");
}
