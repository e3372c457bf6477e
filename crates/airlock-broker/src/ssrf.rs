//! SSRF defence: which destinations the broker may dial.
//!
//! A tool behind the broker asks for a URL; without this module it could ask for `http://127.0.0.1:2379/`,
//! `http://169.254.169.254/latest/meta-data/iam/` or `http://db.internal/` and have the broker, which sits inside
//! the trusted network, fetch it (server-side request forgery). Refusing the *names* is not enough: any public name
//! can resolve to a private address, and a name can answer differently on every lookup (DNS rebinding). So the
//! broker resolves a host once, passes the whole answer to [`SsrfPolicy::check_answer`], and dials exactly the
//! addresses that came back from it, never the name again.
//!
//! The rules:
//! - **Any denied address denies the whole answer.** A public address next to a private one is the usual shape of
//!   a rebinding attack; we do not pick the public one and carry on.
//! - Addresses are classified by one table of prefixes from the IANA IPv4 and IPv6 special-purpose registries plus
//!   the known cloud metadata endpoints ([`SPECIAL_RANGES`]); the longest matching prefix decides.
//! - Some names never reach the resolver ([`SsrfPolicy::check_name`]): loopback names, cloud metadata names, and
//!   names that only mean something on a local network (single labels, `.internal`, `.local`, `.arpa`, ...).
//! - The operator may allow internal destinations: address ranges ([`SsrfPolicy::allow_cidrs`], for any host)
//!   and host names ([`SsrfPolicy::allow_hosts`], whose answers may then be private). A cloud metadata address is
//!   only ever allowed by a CIDR that is exactly that one address, never by a host name or a wider range.
//! - Some things can never be allowed ([`Allowance::Never`]): the unspecified and "this network" addresses,
//!   multicast, broadcast and discard-only (not a place one dials), and every prefix that maps, translates or
//!   tunnels to an IPv4 address (IPv4-mapped, -compatible, -translated, NAT64, 6to4, Teredo, ORCHID): those smuggle
//!   a destination we cannot see. Loopback and metadata *names* can never be allowed either, nor can the broker's
//!   own listening addresses ([`SsrfPolicy::own_addrs`]), which would make the broker talk to itself.
//!
//! Everything here is pure: no I/O, no resolution.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use airlock_policy::normalize::HostName;

/// Why an address is not a public destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Range {
    /// `0.0.0.0` and `::`: "any address", which a connect turns into this host.
    Unspecified,
    /// The rest of `0.0.0.0/8`: "this network", never a destination.
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 private-use IPv4.
    Private,
    /// `100.64.0.0/10`: carrier-grade NAT space, internal to a provider.
    SharedAddress,
    /// `169.254.0.0/16`, `fe80::/10` (metadata endpoints in it are [`Range::CloudMetadata`]).
    LinkLocal,
    /// `fc00::/7`: the IPv6 counterpart of private-use.
    UniqueLocal,
    /// `fec0::/10`: deprecated site-local IPv6, still routed internally by some networks.
    SiteLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Documentation prefixes, never assigned to real hosts.
    Documentation,
    /// Benchmarking prefixes, for test labs only.
    Benchmarking,
    /// `192.0.0.0/24` and `2001::/23`: IETF protocol assignments (service continuity, NAT64 discovery, anycast).
    IetfProtocolAssignments,
    /// `240.0.0.0/4`, and IPv6 outside global unicast `2000::/3` that no other row names.
    Reserved,
    /// `5f00::/16`: SRv6 segment identifiers, meaningful only inside a segment-routing domain.
    SegmentRouting,
    /// `100::/64`: discard-only; traffic there is dropped on purpose.
    Discard,
    /// ORCHID overlay identifiers (`2001:10::/28`, `2001:20::/28`): names for HIP hosts, not locators.
    Orchid,
    /// `192.88.99.0/24`: the deprecated 6to4 relay anycast prefix.
    SixToFourRelay,
    /// An instance metadata, credentials or platform service of a cloud provider.
    CloudMetadata,
    /// `::ffff:0:0/96`: an IPv4 address written as IPv6.
    Ipv4Mapped,
    /// `::/96`: deprecated IPv4-compatible IPv6, which some stacks still treat as IPv4.
    Ipv4Compatible,
    /// `::ffff:0:0:0/96`: IPv4-translated addresses of stateless translation (SIIT).
    Ipv4Translated,
    /// `64:ff9b::/96` and `64:ff9b:1::/48`: IPv4 reached through a NAT64 translator.
    Nat64,
    /// `2002::/16`: an IPv4 address tunnelled through 6to4.
    SixToFour,
    /// `2001::/32`: an IPv4 address tunnelled through Teredo.
    Teredo,
}

/// Which allow-list entries can lift a [`Range`]'s denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Allowance {
    /// No entry at all: not a place one dials, or a prefix that carries a destination we cannot see.
    Never,
    /// Only an `allow_cidrs` entry that is exactly this one address (`/32` or `/128`): a wide internal range must
    /// not open a metadata service by accident.
    ExactAddress,
    /// Any `allow_cidrs` entry containing the address, or an `allow_hosts` entry naming the host.
    CidrOrHost,
}

impl Range {
    /// Short human text for errors and audit records, e.g. "loopback", "cloud metadata service".
    pub fn describe(self) -> &'static str {
        match self {
            Range::Unspecified => "the unspecified address",
            Range::ThisNetwork => "\"this network\" (0.0.0.0/8)",
            Range::Loopback => "loopback",
            Range::Private => "private-use",
            Range::SharedAddress => "shared address space (carrier-grade NAT)",
            Range::LinkLocal => "link-local",
            Range::UniqueLocal => "unique local (private IPv6)",
            Range::SiteLocal => "site-local (deprecated private IPv6)",
            Range::Multicast => "multicast",
            Range::Broadcast => "limited broadcast",
            Range::Documentation => "documentation-only",
            Range::Benchmarking => "benchmarking-only",
            Range::IetfProtocolAssignments => "reserved for IETF protocol assignments",
            Range::Reserved => "reserved, not globally routable",
            Range::SegmentRouting => "SRv6 segment identifiers",
            Range::Discard => "discard-only",
            Range::Orchid => "an ORCHID overlay identifier, not a routable address",
            Range::SixToFourRelay => "6to4 relay anycast (deprecated)",
            Range::CloudMetadata => "cloud metadata service",
            Range::Ipv4Mapped => "IPv4-mapped IPv6",
            Range::Ipv4Compatible => "IPv4-compatible IPv6 (deprecated)",
            Range::Ipv4Translated => "IPv4-translated IPv6",
            Range::Nat64 => "NAT64 (IPv4 behind a translator)",
            Range::SixToFour => "6to4 (IPv4 tunnel)",
            Range::Teredo => "Teredo (IPv4 tunnel)",
        }
    }

    /// Which allow-list entries can lift this denial.
    pub fn allowance(self) -> Allowance {
        match self {
            // Not a destination: a connect to these means "this host", "everyone", or "nobody".
            Range::Unspecified
            | Range::ThisNetwork
            | Range::Multicast
            | Range::Broadcast
            | Range::Discard
            // Carry or stand for another address that the broker would never get to classify.
            | Range::Orchid
            | Range::Ipv4Mapped
            | Range::Ipv4Compatible
            | Range::Ipv4Translated
            | Range::Nat64
            | Range::SixToFour
            | Range::Teredo => Allowance::Never,
            Range::CloudMetadata => Allowance::ExactAddress,
            Range::Loopback
            | Range::Private
            | Range::SharedAddress
            | Range::LinkLocal
            | Range::UniqueLocal
            | Range::SiteLocal
            | Range::Documentation
            | Range::Benchmarking
            | Range::IetfProtocolAssignments
            | Range::Reserved
            | Range::SegmentRouting
            | Range::SixToFourRelay => Allowance::CidrOrHost,
        }
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// An IPv4 or IPv6 prefix: a network address with no bits set beyond its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

/// Table-building shorthand; `special_ranges_are_canonical_and_distinct` checks every row.
const fn v4(a: u8, b: u8, c: u8, d: u8, prefix_len: u8) -> Cidr {
    Cidr { network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)), prefix_len }
}

/// Table-building shorthand; `special_ranges_are_canonical_and_distinct` checks every row.
const fn v6(s: [u16; 8], prefix_len: u8) -> Cidr {
    Cidr { network: IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])), prefix_len }
}

impl Cidr {
    /// A prefix from its parts. Refuses a prefix length beyond the family's width and host bits set beyond it.
    pub fn new(network: IpAddr, prefix_len: u8) -> Result<Cidr, String> {
        let width: u8 = family_width(network);
        if prefix_len > width {
            return Err(format!("prefix length /{prefix_len} is longer than the {width} bits of {network}"));
        }
        let cidr: Cidr = Cidr { network, prefix_len };
        let canonical: Cidr = cidr.truncated();
        if canonical != cidr {
            return Err(format!(
                "\"{network}/{prefix_len}\" has host bits set beyond the /{prefix_len} prefix; did you mean \"{canonical}\"?"
            ));
        }
        Ok(cidr)
    }

    /// Parses `10.1.0.0/16`, `fd00::/8`, or a bare address (a `/32` or `/128`).
    ///
    /// Addresses must be in the standard notation (dotted decimal for IPv4, no brackets or zone for IPv6); the
    /// prefix length is plain decimal without sign or leading zeros. Host bits beyond the prefix are refused with
    /// the canonical spelling in the error, since `10.0.0.1/8` usually means the writer misread the rule.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (address_text, length_text): (&str, Option<&str>) = match text.split_once('/') {
            Some((address, length)) => (address, Some(length)),
            None => (text, None),
        };
        let network: IpAddr = address_text.parse::<IpAddr>().map_err(|_| {
            format!(
                "{text:?} is not an IP prefix: {address_text:?} is not an IPv4 or IPv6 address \
                 (write a prefix as \"10.0.0.0/8\" or \"fd00::/8\", or a bare address)"
            )
        })?;
        let width: u8 = family_width(network);
        let prefix_len: u8 = match length_text {
            None => width,
            Some(length) => parse_prefix_len(text, length, width)?,
        };
        Cidr::new(network, prefix_len)
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The number of leading bits that are fixed.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Exactly one address: a `/32` for IPv4, a `/128` for IPv6.
    pub fn is_single_address(&self) -> bool {
        self.prefix_len == family_width(self.network)
    }

    /// Whether `ip` lies in this prefix. An IPv4 prefix never contains an IPv6 address, IPv4-mapped or not.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask: u32 = mask_v4(self.prefix_len);
                network.to_bits() & mask == ip.to_bits() & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask: u128 = mask_v6(self.prefix_len);
                network.to_bits() & mask == ip.to_bits() & mask
            }
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }

    /// The same prefix length with the host bits cleared.
    fn truncated(&self) -> Cidr {
        let network: IpAddr = match self.network {
            IpAddr::V4(ip) => IpAddr::V4(Ipv4Addr::from_bits(ip.to_bits() & mask_v4(self.prefix_len))),
            IpAddr::V6(ip) => IpAddr::V6(Ipv6Addr::from_bits(ip.to_bits() & mask_v6(self.prefix_len))),
        };
        Cidr { network, prefix_len: self.prefix_len }
    }
}

fn family_width(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Leading `prefix_len` one-bits; lengths beyond 32 count as 32 (never produced by [`Cidr::new`]).
fn mask_v4(prefix_len: u8) -> u32 {
    let shift: u32 = 32 - u32::from(prefix_len.min(32));
    u32::MAX.checked_shl(shift).unwrap_or(0)
}

/// Leading `prefix_len` one-bits; lengths beyond 128 count as 128 (never produced by [`Cidr::new`]).
fn mask_v6(prefix_len: u8) -> u128 {
    let shift: u32 = 128 - u32::from(prefix_len.min(128));
    u128::MAX.checked_shl(shift).unwrap_or(0)
}

fn parse_prefix_len(text: &str, length: &str, width: u8) -> Result<u8, String> {
    let plain_decimal: bool = !length.is_empty()
        && length.len() <= 3
        && length.bytes().all(|b: u8| b.is_ascii_digit())
        && (length == "0" || !length.starts_with('0'));
    if !plain_decimal {
        return Err(format!(
            "{text:?}: prefix length {length:?} is not a plain decimal number from 0 to {width} (no sign, no leading zeros)"
        ));
    }
    match length.parse::<u8>() {
        Ok(prefix_len) if prefix_len <= width => Ok(prefix_len),
        _ => Err(format!("{text:?}: prefix length /{length} is longer than the {width} bits of the address")),
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Cidr, String> {
        Cidr::parse(text)
    }
}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Cidr, D::Error> {
        let text: String = String::deserialize(deserializer)?;
        Cidr::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Every prefix that is not a public unicast destination, with why. The **longest** matching prefix decides, so a
/// metadata address inside link-local is [`Range::CloudMetadata`] whatever the row order; rows are sorted by
/// address for reading. Sources: the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890, RFC 8190),
/// the IANA IPv6 Address Space registry, and the providers' documentation for metadata endpoints.
///
/// Deliberately left public although IANA lists them: AS112 (192.31.196.0/24, 192.175.48.0/24, 2620:4f:8000::/48)
/// and AMT (192.52.193.0/24): globally reachable anycast services that are not inside anybody's network.
pub const SPECIAL_RANGES: &[(Cidr, Range)] = &[
    // ---- IPv4 ----
    // "This network" (RFC 791 §3.2, RFC 1122 §3.2.1.3); 0.0.0.0 itself is "this host", which Linux dials as local.
    (v4(0, 0, 0, 0, 8), Range::ThisNetwork),
    (v4(0, 0, 0, 0, 32), Range::Unspecified),
    // Private-Use (RFC 1918).
    (v4(10, 0, 0, 0, 8), Range::Private),
    // Shared Address Space, carrier-grade NAT (RFC 6598).
    (v4(100, 64, 0, 0, 10), Range::SharedAddress),
    // Alibaba Cloud ECS metadata service.
    (v4(100, 100, 100, 200, 32), Range::CloudMetadata),
    // Loopback (RFC 1122 §3.2.1.3).
    (v4(127, 0, 0, 0, 8), Range::Loopback),
    // Azure WireServer: a Microsoft-owned public address that every Azure VM reaches as its host agent (DHCP, DNS,
    // health probes, extension configuration with certificates). Not a destination for anything we broker.
    (v4(168, 63, 129, 16, 32), Range::CloudMetadata),
    // Link Local (RFC 3927).
    (v4(169, 254, 0, 0, 16), Range::LinkLocal),
    // Tencent Cloud metadata service (metadata.tencentyun.com).
    (v4(169, 254, 0, 23, 32), Range::CloudMetadata),
    // Instance metadata on AWS (IMDS .254, DNS .253, time .123), GCP, Azure IMDS, Oracle, OpenStack, DigitalOcean,
    // Hetzner, Akamai/Linode, IBM and others: the whole /24, since providers add services next to .254.
    (v4(169, 254, 169, 0, 24), Range::CloudMetadata),
    // AWS container credentials: ECS task metadata (.2) and EKS Pod Identity agent (.23).
    (v4(169, 254, 170, 0, 24), Range::CloudMetadata),
    // Private-Use (RFC 1918).
    (v4(172, 16, 0, 0, 12), Range::Private),
    // IETF Protocol Assignments (RFC 6890 §2.1): DS-Lite (192.0.0.0/29, RFC 7335), dummy (.8, RFC 7600),
    // PCP and TURN anycast (.9, .10), NAT64 discovery (.170, .171, RFC 7050). None is a destination for a tool.
    (v4(192, 0, 0, 0, 24), Range::IetfProtocolAssignments),
    // Oracle Cloud's legacy metadata address.
    (v4(192, 0, 0, 192, 32), Range::CloudMetadata),
    // Documentation, TEST-NET-1 (RFC 5737).
    (v4(192, 0, 2, 0, 24), Range::Documentation),
    // Deprecated 6to4 Relay Anycast (RFC 7526).
    (v4(192, 88, 99, 0, 24), Range::SixToFourRelay),
    // Private-Use (RFC 1918).
    (v4(192, 168, 0, 0, 16), Range::Private),
    // Benchmarking (RFC 2544).
    (v4(198, 18, 0, 0, 15), Range::Benchmarking),
    // Documentation, TEST-NET-2 (RFC 5737).
    (v4(198, 51, 100, 0, 24), Range::Documentation),
    // Documentation, TEST-NET-3 (RFC 5737).
    (v4(203, 0, 113, 0, 24), Range::Documentation),
    // Multicast (RFC 5771).
    (v4(224, 0, 0, 0, 4), Range::Multicast),
    // Reserved, formerly class E (RFC 1112 §4).
    (v4(240, 0, 0, 0, 4), Range::Reserved),
    // Limited Broadcast (RFC 8190, RFC 919 §7).
    (v4(255, 255, 255, 255, 32), Range::Broadcast),
    // ---- IPv6 ----
    // IANA IPv6 Address Space: only 2000::/3 is global unicast; the rest is reserved by the IETF (RFC 4291) unless a
    // longer row says what it is. The three "Reserved" rows (::/3, 4000::/2, 8000::/1) cover all of it.
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 3), Range::Reserved),
    // IPv4-compatible, deprecated (RFC 4291 §2.5.5.1).
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 96), Range::Ipv4Compatible),
    // Unspecified (RFC 4291 §2.5.2).
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), Range::Unspecified),
    // Loopback (RFC 4291 §2.5.3).
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), Range::Loopback),
    // IPv4-mapped (RFC 4291 §2.5.5.2).
    (v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), Range::Ipv4Mapped),
    // IPv4-translated (RFC 2765 §2.1; obsoleted by RFC 6145, still understood by some translators).
    (v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96), Range::Ipv4Translated),
    // IPv4-IPv6 Translation well-known prefix (RFC 6052).
    (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96), Range::Nat64),
    // IPv4-IPv6 Translation, local use (RFC 8215).
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), Range::Nat64),
    // Discard-Only (RFC 6666).
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), Range::Discard),
    // IETF Protocol Assignments (RFC 2928): PCP/TURN/DNS-SD anycast, AMT, AS112-v6, DETs and the rows below.
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), Range::IetfProtocolAssignments),
    // Teredo (RFC 4380, RFC 8190).
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), Range::Teredo),
    // Benchmarking (RFC 5180, errata 1752).
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), Range::Benchmarking),
    // ORCHID, deprecated (RFC 4843).
    (v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28), Range::Orchid),
    // ORCHIDv2 (RFC 7343).
    (v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28), Range::Orchid),
    // Documentation (RFC 3849).
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), Range::Documentation),
    // 6to4 (RFC 3056).
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), Range::SixToFour),
    // Documentation (RFC 9637).
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), Range::Documentation),
    // Reserved by the IETF (RFC 4291): 4000::/3 and 6000::/3.
    (v6([0x4000, 0, 0, 0, 0, 0, 0, 0], 2), Range::Reserved),
    // SRv6 SIDs (RFC 9602).
    (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), Range::SegmentRouting),
    // Reserved by the IETF (RFC 4291): 8000::/3 up to fe00::/9, around the rows below.
    (v6([0x8000, 0, 0, 0, 0, 0, 0, 0], 1), Range::Reserved),
    // Unique-Local (RFC 4193, RFC 8190).
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), Range::UniqueLocal),
    // AWS instance services over IPv6: IMDS ::254, DNS ::253, time ::123, EKS Pod Identity ::23.
    (v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0], 64), Range::CloudMetadata),
    // Akamai/Linode metadata service over IPv6.
    (v6([0xfd00, 0xa9fe, 0xa9fe, 0, 0, 0, 0, 1], 128), Range::CloudMetadata),
    // Google Compute Engine metadata server for IPv6-only instances.
    (v6([0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254], 128), Range::CloudMetadata),
    // Link-Local Unicast (RFC 4291 §2.5.6).
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), Range::LinkLocal),
    // Site-local, deprecated (RFC 3879) but still routed inside some networks.
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), Range::SiteLocal),
    // Multicast (RFC 4291 §2.7).
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), Range::Multicast),
];

/// Why `ip` is not a public unicast destination, or `None` when it is one.
///
/// An IPv4-mapped or otherwise IPv4-carrying IPv6 address is classified as what it is ([`Range::Ipv4Mapped`], ...),
/// never as the IPv4 address inside it: see [`embedded_ipv4`] for that address.
pub fn classify(ip: IpAddr) -> Option<Range> {
    SPECIAL_RANGES
        .iter()
        .filter(|(prefix, _)| prefix.contains(ip))
        .max_by_key(|(prefix, _)| prefix.prefix_len())
        .map(|&(_, range)| range)
}

/// The IPv4 address an IPv6 address carries, for the prefixes that define one: IPv4-mapped, -compatible,
/// -translated, NAT64 `64:ff9b::/96` (RFC 6052), 6to4 (bits 16..48, RFC 3056) and Teredo (the client address,
/// stored inverted in the last 32 bits, RFC 4380 §4). `None` otherwise, and for `::` and `::1`.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits: u128 = ip.to_bits();
    // Truncation is the point: the low 32 bits (or bits 80..112 for 6to4) are the IPv4 address.
    let last32: Ipv4Addr = Ipv4Addr::from_bits(bits as u32);
    match classify(IpAddr::V6(ip))? {
        Range::Ipv4Mapped | Range::Ipv4Compatible | Range::Ipv4Translated => Some(last32),
        Range::Nat64 if v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96).contains(IpAddr::V6(ip)) => Some(last32),
        Range::SixToFour => Some(Ipv4Addr::from_bits((bits >> 80) as u32)),
        Range::Teredo => Some(Ipv4Addr::from_bits(!(bits as u32))),
        _ => None,
    }
}

/// " (it carries 127.0.0.1, loopback)" for an IPv4-carrying IPv6 address, "" otherwise. Only for messages: the
/// decision never looks inside.
fn embedded_note(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match embedded_ipv4(*v6) {
            Some(inner) => match classify(IpAddr::V4(inner)) {
                Some(range) => format!(" (it carries {inner}, {})", range.describe()),
                None => format!(" (it carries {inner})"),
            },
            None => String::new(),
        },
        IpAddr::V4(_) => String::new(),
    }
}

/// Reason given for `localhost` and its relatives.
pub const REASON_LOOPBACK_NAME: &str = "a loopback name (RFC 6761 §6.3, /etc/hosts)";
/// Reason given for a cloud metadata service name.
pub const REASON_METADATA_NAME: &str = "a cloud metadata service name";
/// Reason given for a name whose last label is numeric.
pub const REASON_NUMERIC_NAME: &str = "an address written as a name (its last label is numeric)";
/// Reason given for a name without a dot.
pub const REASON_SINGLE_LABEL: &str =
    "a single-label name, which resolvers complete with local search domains into an internal name";
/// Reason given for a name under `.internal`.
pub const REASON_INTERNAL: &str = "under .internal, reserved for private networks (ICANN, 2024)";
/// Reason given for a name under `.local`.
pub const REASON_LOCAL: &str = "under .local, resolved by multicast DNS on the local link (RFC 6762)";
/// Reason given for a name under `.arpa`.
pub const REASON_ARPA: &str = "under .arpa, infrastructure names: reverse lookups, home.arpa (RFC 8375) and the like";
/// Reason given for a name under a private-use top-level label such as `.lan` or `.corp`.
pub const REASON_PRIVATE_TLD: &str = "under a top-level label used only on private networks (RFC 6762 appendix G)";
/// Reason given for a name under a special-use top-level label that must not reach public DNS.
pub const REASON_SPECIAL_USE_TLD: &str =
    "under a special-use top-level label (.test, .invalid: RFC 6761; .onion: RFC 7686; .alt: RFC 9476)";

/// Loopback names that no allow-list can admit: RFC 6761 reserves `localhost` and everything below it, and the
/// others are how distributions spell loopback in /etc/hosts.
const LOOPBACK_NAMES: &[&str] =
    &["localhost", "localhost.localdomain", "localhost6", "localhost6.localdomain6", "ip6-localhost", "ip6-loopback"];

/// Cloud metadata names that no allow-list can admit; their subdomains are refused too. Any `.internal` name whose
/// first label is `metadata` or `instance-data` is also one (AWS uses `instance-data.<region>.compute.internal`).
/// Azure's IMDS and WireServer have no DNS name: their addresses are in [`SPECIAL_RANGES`].
const METADATA_NAMES: &[&str] = &[
    // Google Compute Engine; bare `metadata` resolves through the `google.internal` search domain.
    "metadata.google.internal",
    // `.goog` is Google's own top-level domain; `metadata.goog` names the same service.
    "metadata.goog",
    "metadata",
    // AWS EC2; bare `instance-data` resolves through the `ec2.internal` search domain.
    "instance-data",
    "instance-data.ec2.internal",
    // Rancher's metadata service, found through container DNS.
    "rancher-metadata",
    // Tencent Cloud (169.254.0.23).
    "metadata.tencentyun.com",
    // IBM Cloud VPC (169.254.169.254).
    "api.metadata.cloud.ibm.com",
    // Equinix Metal (formerly Packet): a public address that answers with the calling server's metadata and user data.
    "metadata.platformequinix.com",
    "metadata.packet.net",
];

/// Top-level labels that exist only on private networks by convention (RFC 6762 appendix G, plus `localdomain`).
const PRIVATE_TOP_LABELS: &[&str] = &["lan", "home", "corp", "intranet", "private", "localdomain"];

/// Special-use top-level labels that public DNS never answers.
const SPECIAL_USE_TOP_LABELS: &[&str] = &["test", "invalid", "onion", "alt"];

/// Why a name is refused before resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameRefusal {
    /// One of the `REASON_*` constants.
    pub reason: &'static str,
    /// Whether an `allow_hosts` entry can admit the name anyway (never for loopback, metadata or numeric names).
    pub allowable: bool,
}

/// Why a domain name must not reach the resolver, or `None` when it may. `name` is compared case-insensitively and
/// without trailing dots, so a hand-built [`HostName::Domain`] cannot slip past in another spelling.
pub fn classify_name(name: &str) -> Option<NameRefusal> {
    let name: String = canonical_name(name);
    let never = |reason: &'static str| Some(NameRefusal { reason, allowable: false });
    let unless_allowed = |reason: &'static str| Some(NameRefusal { reason, allowable: true });
    let last_label: &str = name.rsplit('.').next().unwrap_or_default();
    let first_label: &str = name.split('.').next().unwrap_or_default();

    if LOOPBACK_NAMES.contains(&name.as_str()) || last_label == "localhost" {
        return never(REASON_LOOPBACK_NAME);
    }
    let metadata_internal: bool =
        last_label == "internal" && name.contains('.') && matches!(first_label, "metadata" | "instance-data");
    if metadata_internal || METADATA_NAMES.iter().any(|listed: &&str| is_same_or_below(&name, listed)) {
        return never(REASON_METADATA_NAME);
    }
    // HostName::parse reads a numeric last label as IPv4, so this only catches a hand-built Domain, which a
    // getaddrinfo-style resolver would read as an address we never classified.
    if last_label.starts_with(|c: char| c.is_ascii_digit()) {
        return never(REASON_NUMERIC_NAME);
    }
    if !name.contains('.') {
        return unless_allowed(REASON_SINGLE_LABEL);
    }
    match last_label {
        "internal" => unless_allowed(REASON_INTERNAL),
        "local" => unless_allowed(REASON_LOCAL),
        "arpa" => unless_allowed(REASON_ARPA),
        label if PRIVATE_TOP_LABELS.contains(&label) => unless_allowed(REASON_PRIVATE_TLD),
        label if SPECIAL_USE_TOP_LABELS.contains(&label) => unless_allowed(REASON_SPECIAL_USE_TLD),
        _ => None,
    }
}

/// Lowercase, without trailing dots: the spelling [`HostName::parse`] produces.
fn canonical_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// `name` is `parent` or a name below it (`a.b` is below `b`, `ab` is not).
fn is_same_or_below(name: &str, parent: &str) -> bool {
    name == parent || is_strictly_below(name, parent)
}

/// `name` has at least one more label than `parent` in front of it.
fn is_strictly_below(name: &str, parent: &str) -> bool {
    !parent.is_empty() && name.strip_suffix(parent).is_some_and(|front: &str| front.len() > 1 && front.ends_with('.'))
}

/// What the operator allows despite the rules above, and the broker's own listening addresses.
#[derive(Debug, Clone, Default)]
pub struct SsrfPolicy {
    /// Internal ranges that may be dialled by any host, e.g. a company's `10.20.0.0/16`. A cloud metadata address
    /// needs an entry that is exactly that address; [`Allowance::Never`] ranges stay refused whatever is listed.
    pub allow_cidrs: Vec<Cidr>,
    /// Internal host names (canonical, lowercase, exact names or `*.suffix` for strict subdomains) that may be
    /// refused names (single-label, `.internal`, ...) and whose answers may be private, loopback included. Only
    /// names: a literal address host is allowed through `allow_cidrs`. `*` alone matches nothing.
    pub allow_hosts: Vec<String>,
    /// The broker's own listening socket addresses: never a destination, whatever is allowed. For a listener on
    /// `0.0.0.0` or `::` the real local addresses are unknown here, so every non-public address (loopback, private,
    /// link-local, ...) with that port is refused, for both families (a `::` socket usually accepts IPv4 too). A
    /// public address of this machine is not known here: list it explicitly, or listen on a specific address.
    pub own_addrs: Vec<SocketAddr>,
}

/// Why the broker refuses a destination. Messages carry only the host, the address and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrfDenial {
    /// A name that must never reach the resolver (`localhost`, `*.localhost`, `metadata.google.internal`, ...).
    #[error("{host}: refused before resolving: {reason}")]
    Name {
        /// The host as requested, in canonical form.
        host: String,
        /// Why.
        reason: &'static str,
    },
    /// An address in a denied range (for a name: one of the addresses it resolved to).
    #[error("{host}: address {ip} is {}{}; not dialled", .range.describe(), embedded_note(.ip))]
    Address {
        /// The host as requested, in canonical form.
        host: String,
        /// The refused address.
        ip: IpAddr,
        /// Why.
        range: Range,
    },
    /// The broker itself.
    #[error("{host}: {addr} is the broker's own listening address; not dialled")]
    Broker {
        /// The host as requested, in canonical form.
        host: String,
        /// The refused destination.
        addr: SocketAddr,
    },
    /// The name resolved to nothing usable.
    #[error("{host}: the name resolved to no address")]
    NoAddress {
        /// The host as requested, in canonical form.
        host: String,
    },
}

impl SsrfDenial {
    /// The host the denial is about.
    pub fn host(&self) -> &str {
        match self {
            SsrfDenial::Name { host, .. }
            | SsrfDenial::Address { host, .. }
            | SsrfDenial::Broker { host, .. }
            | SsrfDenial::NoAddress { host } => host,
        }
    }

    /// The denied range, for an address denial.
    pub fn range(&self) -> Option<Range> {
        match self {
            SsrfDenial::Address { range, .. } => Some(*range),
            SsrfDenial::Name { .. } | SsrfDenial::Broker { .. } | SsrfDenial::NoAddress { .. } => None,
        }
    }
}

impl SsrfPolicy {
    /// Checked before resolving. A literal address host is classified here as if it were a one-address answer; a
    /// name that must never reach a resolver is refused, unless `allow_hosts` admits it and its kind is allowable.
    pub fn check_name(&self, host: &HostName, port: u16) -> Result<(), SsrfDenial> {
        match host {
            HostName::Ipv4(ip) => self.check_address(host, false, IpAddr::V4(*ip), port),
            HostName::Ipv6(ip) => self.check_address(host, false, IpAddr::V6(*ip), port),
            HostName::Domain(name) => match classify_name(name) {
                Some(refusal) if !(refusal.allowable && self.host_is_allowed(name)) => {
                    Err(SsrfDenial::Name { host: host.as_text(), reason: refusal.reason })
                }
                Some(_) | None => Ok(()),
            },
        }
    }

    /// Checked on the whole DNS answer: any denied address denies the request, since a mixed public and private
    /// answer is what a rebinding attack looks like. Returns every address as a socket address to dial, in answer
    /// order. Runs [`SsrfPolicy::check_name`] first, so a caller that skipped it is still covered. A literal
    /// address host is passed as a one-address answer.
    pub fn check_answer(&self, host: &HostName, port: u16, addrs: &[IpAddr]) -> Result<Vec<SocketAddr>, SsrfDenial> {
        self.check_name(host, port)?;
        if addrs.is_empty() {
            return Err(SsrfDenial::NoAddress { host: host.as_text() });
        }
        let allowed_host: bool = match host {
            HostName::Domain(name) => self.host_is_allowed(name),
            HostName::Ipv4(_) | HostName::Ipv6(_) => false,
        };
        let mut dial: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
        for &ip in addrs {
            self.check_address(host, allowed_host, ip, port)?;
            dial.push(SocketAddr::new(ip, port));
        }
        Ok(dial)
    }

    /// Whether `allow_hosts` names this domain, exactly or as a strict subdomain of a `*.suffix` entry.
    pub fn host_is_allowed(&self, name: &str) -> bool {
        let name: String = canonical_name(name);
        self.allow_hosts.iter().any(|entry: &String| {
            let entry: String = canonical_name(entry);
            match entry.strip_prefix("*.") {
                Some(suffix) => is_strictly_below(&name, suffix),
                None => entry == name,
            }
        })
    }

    /// Whether `addr` is, or may be, one of the broker's own listening sockets.
    pub fn is_own_address(&self, addr: SocketAddr) -> bool {
        self.own_addrs.iter().any(|own: &SocketAddr| {
            own.port() == addr.port()
                && (own.ip() == addr.ip() || (own.ip().is_unspecified() && classify(addr.ip()).is_some()))
        })
    }

    /// One address of an answer (or a literal host): the broker itself, then the range and its allowance.
    fn check_address(&self, host: &HostName, allowed_host: bool, ip: IpAddr, port: u16) -> Result<(), SsrfDenial> {
        let addr: SocketAddr = SocketAddr::new(ip, port);
        if self.is_own_address(addr) {
            return Err(SsrfDenial::Broker { host: host.as_text(), addr });
        }
        let Some(range) = classify(ip) else {
            return Ok(());
        };
        let allowed: bool = match range.allowance() {
            Allowance::Never => false,
            Allowance::ExactAddress => {
                self.allow_cidrs.iter().any(|cidr: &Cidr| cidr.is_single_address() && cidr.contains(ip))
            }
            Allowance::CidrOrHost => allowed_host || self.allow_cidrs.iter().any(|cidr: &Cidr| cidr.contains(ip)),
        };
        if allowed { Ok(()) } else { Err(SsrfDenial::Address { host: host.as_text(), ip, range }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn host(text: &str) -> HostName {
        HostName::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn cidrs(texts: &[&str]) -> Vec<Cidr> {
        texts.iter().map(|t| Cidr::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"))).collect()
    }

    fn policy(allow_cidrs: &[&str], allow_hosts: &[&str]) -> SsrfPolicy {
        SsrfPolicy {
            allow_cidrs: cidrs(allow_cidrs),
            allow_hosts: allow_hosts.iter().map(|h| h.to_string()).collect(),
            own_addrs: Vec::new(),
        }
    }

    fn dial(ssrf: &SsrfPolicy, name: &str, addrs: &[&str], port: u16) -> Result<Vec<SocketAddr>, SsrfDenial> {
        let addrs: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
        ssrf.check_answer(&host(name), port, &addrs)
    }

    /// The range an answer of one address is denied for, `None` when it is dialled.
    fn answer_range(policy: &SsrfPolicy, name: &str, address: &str) -> Option<Range> {
        match policy.check_answer(&host(name), 443, &[ip(address)]) {
            Ok(dial) => {
                assert_eq!(dial, vec![SocketAddr::new(ip(address), 443)], "{name} -> {address}");
                None
            }
            Err(SsrfDenial::Address { ip: denied, range, host }) => {
                assert_eq!(denied, ip(address), "{name} -> {address}");
                assert_eq!(host, self::host(name).as_text());
                Some(range)
            }
            Err(other) => panic!("{name} -> {address}: unexpected {other:?}"),
        }
    }

    use Range::*;

    /// Every range: first, last and a middle address, and the neighbours just outside it.
    const CLASSIFY_TABLE: &[(&str, Option<Range>)] = &[
        // 0.0.0.0/8
        ("0.0.0.0", Some(Unspecified)),
        ("0.0.0.1", Some(ThisNetwork)),
        ("0.1.2.3", Some(ThisNetwork)),
        ("0.255.255.255", Some(ThisNetwork)),
        ("1.0.0.0", None),
        // 10.0.0.0/8
        ("9.255.255.255", None),
        ("10.0.0.0", Some(Private)),
        ("10.128.7.1", Some(Private)),
        ("10.255.255.255", Some(Private)),
        ("11.0.0.0", None),
        // 100.64.0.0/10 and Alibaba's metadata inside it
        ("100.63.255.255", None),
        ("100.64.0.0", Some(SharedAddress)),
        ("100.100.100.199", Some(SharedAddress)),
        ("100.100.100.200", Some(CloudMetadata)),
        ("100.100.100.201", Some(SharedAddress)),
        ("100.127.255.255", Some(SharedAddress)),
        ("100.128.0.0", None),
        // 127.0.0.0/8
        ("126.255.255.255", None),
        ("127.0.0.0", Some(Loopback)),
        ("127.0.0.1", Some(Loopback)),
        ("127.255.255.255", Some(Loopback)),
        ("128.0.0.0", None),
        // Azure WireServer
        ("168.63.129.15", None),
        ("168.63.129.16", Some(CloudMetadata)),
        ("168.63.129.17", None),
        // 169.254.0.0/16 and the metadata addresses in it
        ("169.253.255.255", None),
        ("169.254.0.0", Some(LinkLocal)),
        ("169.254.0.22", Some(LinkLocal)),
        ("169.254.0.23", Some(CloudMetadata)),
        ("169.254.0.24", Some(LinkLocal)),
        ("169.254.1.1", Some(LinkLocal)),
        ("169.254.168.255", Some(LinkLocal)),
        ("169.254.169.0", Some(CloudMetadata)),
        ("169.254.169.123", Some(CloudMetadata)),
        ("169.254.169.253", Some(CloudMetadata)),
        ("169.254.169.254", Some(CloudMetadata)),
        ("169.254.170.2", Some(CloudMetadata)),
        ("169.254.170.23", Some(CloudMetadata)),
        ("169.254.170.255", Some(CloudMetadata)),
        ("169.254.171.0", Some(LinkLocal)),
        ("169.254.255.255", Some(LinkLocal)),
        ("169.255.0.0", None),
        // 172.16.0.0/12
        ("172.15.255.255", None),
        ("172.16.0.0", Some(Private)),
        ("172.20.1.1", Some(Private)),
        ("172.31.255.255", Some(Private)),
        ("172.32.0.0", None),
        // 192.0.0.0/24 and Oracle's metadata inside it
        ("191.255.255.255", None),
        ("192.0.0.0", Some(IetfProtocolAssignments)),
        ("192.0.0.8", Some(IetfProtocolAssignments)),
        ("192.0.0.170", Some(IetfProtocolAssignments)),
        ("192.0.0.191", Some(IetfProtocolAssignments)),
        ("192.0.0.192", Some(CloudMetadata)),
        ("192.0.0.193", Some(IetfProtocolAssignments)),
        ("192.0.0.255", Some(IetfProtocolAssignments)),
        ("192.0.1.0", None),
        // 192.0.2.0/24
        ("192.0.1.255", None),
        ("192.0.2.0", Some(Documentation)),
        ("192.0.2.128", Some(Documentation)),
        ("192.0.2.255", Some(Documentation)),
        ("192.0.3.0", None),
        // AS112 and AMT stay public on purpose
        ("192.31.196.1", None),
        ("192.52.193.1", None),
        ("192.175.48.1", None),
        // 192.88.99.0/24
        ("192.88.98.255", None),
        ("192.88.99.0", Some(SixToFourRelay)),
        ("192.88.99.1", Some(SixToFourRelay)),
        ("192.88.99.255", Some(SixToFourRelay)),
        ("192.88.100.0", None),
        // 192.168.0.0/16
        ("192.167.255.255", None),
        ("192.168.0.0", Some(Private)),
        ("192.168.1.1", Some(Private)),
        ("192.168.255.255", Some(Private)),
        ("192.169.0.0", None),
        // 198.18.0.0/15
        ("198.17.255.255", None),
        ("198.18.0.0", Some(Benchmarking)),
        ("198.19.0.1", Some(Benchmarking)),
        ("198.19.255.255", Some(Benchmarking)),
        ("198.20.0.0", None),
        // 198.51.100.0/24
        ("198.51.99.255", None),
        ("198.51.100.0", Some(Documentation)),
        ("198.51.100.255", Some(Documentation)),
        ("198.51.101.0", None),
        // 203.0.113.0/24
        ("203.0.112.255", None),
        ("203.0.113.0", Some(Documentation)),
        ("203.0.113.255", Some(Documentation)),
        ("203.0.114.0", None),
        // 224.0.0.0/4, 240.0.0.0/4, 255.255.255.255
        ("223.255.255.255", None),
        ("224.0.0.0", Some(Multicast)),
        ("232.1.2.3", Some(Multicast)),
        ("239.255.255.255", Some(Multicast)),
        ("240.0.0.0", Some(Reserved)),
        ("250.1.2.3", Some(Reserved)),
        ("255.255.255.254", Some(Reserved)),
        ("255.255.255.255", Some(Broadcast)),
        // ordinary public IPv4
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        ("93.184.215.14", None),
        // ::/96 and its neighbours inside ::/3
        ("::", Some(Unspecified)),
        ("::1", Some(Loopback)),
        ("::2", Some(Ipv4Compatible)),
        ("::7f00:1", Some(Ipv4Compatible)),
        ("::ffff:ffff", Some(Ipv4Compatible)),
        ("::1:0:0", Some(Reserved)),
        // ::ffff:0:0/96
        ("::fffe:ffff:ffff", Some(Reserved)),
        ("::ffff:0:0", Some(Ipv4Mapped)),
        ("::ffff:127.0.0.1", Some(Ipv4Mapped)),
        ("::ffff:8.8.8.8", Some(Ipv4Mapped)),
        ("::ffff:ffff:ffff", Some(Ipv4Mapped)),
        ("::1:0:0:0", Some(Reserved)),
        // ::ffff:0:0:0/96
        ("::ffff:0:0:0", Some(Ipv4Translated)),
        ("::ffff:0:a00:1", Some(Ipv4Translated)),
        ("::ffff:0:ffff:ffff", Some(Ipv4Translated)),
        ("::ffff:1:0:0", Some(Reserved)),
        // 64:ff9b::/96 and 64:ff9b:1::/48
        ("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
        ("64:ff9b::", Some(Nat64)),
        ("64:ff9b::808:808", Some(Nat64)),
        ("64:ff9b::ffff:ffff", Some(Nat64)),
        ("64:ff9b::1:0:0", Some(Reserved)),
        ("64:ff9b:1::", Some(Nat64)),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Some(Nat64)),
        ("64:ff9b:2::", Some(Reserved)),
        // 100::/64
        ("100::", Some(Discard)),
        ("100::ffff:ffff:ffff:ffff", Some(Discard)),
        ("100:0:0:1::", Some(Reserved)),
        // 2000::/3 begins: public
        ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
        ("2000::", None),
        ("2000::1", None),
        // 2001::/23 and the rows inside it
        ("2001::", Some(Teredo)),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some(Teredo)),
        ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", Some(Teredo)),
        ("2001:1::", Some(IetfProtocolAssignments)),
        ("2001:1::1", Some(IetfProtocolAssignments)),
        ("2001:1:ffff:ffff:ffff:ffff:ffff:ffff", Some(IetfProtocolAssignments)),
        ("2001:2::", Some(Benchmarking)),
        ("2001:2:0:ffff:ffff:ffff:ffff:ffff", Some(Benchmarking)),
        ("2001:2:1::", Some(IetfProtocolAssignments)),
        ("2001:3::1", Some(IetfProtocolAssignments)),
        ("2001:f:ffff:ffff:ffff:ffff:ffff:ffff", Some(IetfProtocolAssignments)),
        ("2001:10::", Some(Orchid)),
        ("2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", Some(Orchid)),
        ("2001:20::", Some(Orchid)),
        ("2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", Some(Orchid)),
        ("2001:30::1", Some(IetfProtocolAssignments)),
        ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", Some(IetfProtocolAssignments)),
        ("2001:200::", None),
        ("2001:4860:4860::8888", None),
        // 2001:db8::/32
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:db8::", Some(Documentation)),
        ("2001:db8:1234::5", Some(Documentation)),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Some(Documentation)),
        ("2001:db9::", None),
        // 2002::/16
        ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2002::", Some(SixToFour)),
        ("2002:7f00:1::", Some(SixToFour)),
        ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(SixToFour)),
        ("2003::", None),
        // 3fff::/20, then the end of 2000::/3
        ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("3fff::", Some(Documentation)),
        ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Documentation)),
        ("3fff:1000::", None),
        ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("4000::", Some(Reserved)),
        // 5f00::/16
        ("5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
        ("5f00::", Some(SegmentRouting)),
        ("5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(SegmentRouting)),
        ("5f01::", Some(Reserved)),
        ("8000::", Some(Reserved)),
        // fc00::/7 and the metadata addresses in it
        ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
        ("fc00::", Some(UniqueLocal)),
        ("fd12:3456:789a::1", Some(UniqueLocal)),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(UniqueLocal)),
        ("fd00:ec1:ffff:ffff:ffff:ffff:ffff:ffff", Some(UniqueLocal)),
        ("fd00:ec2::", Some(CloudMetadata)),
        ("fd00:ec2::23", Some(CloudMetadata)),
        ("fd00:ec2::123", Some(CloudMetadata)),
        ("fd00:ec2::253", Some(CloudMetadata)),
        ("fd00:ec2::254", Some(CloudMetadata)),
        ("fd00:ec2::ffff:ffff:ffff:ffff", Some(CloudMetadata)),
        ("fd00:ec2:0:1::", Some(UniqueLocal)),
        ("fd00:a9fe:a9fe::1", Some(CloudMetadata)),
        ("fd00:a9fe:a9fe::2", Some(UniqueLocal)),
        ("fd20:ce::254", Some(CloudMetadata)),
        ("fd20:ce::253", Some(UniqueLocal)),
        ("fe00::", Some(Reserved)),
        // fe80::/10, fec0::/10, ff00::/8
        ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
        ("fe80::", Some(LinkLocal)),
        ("fe80::1", Some(LinkLocal)),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(LinkLocal)),
        ("fec0::", Some(SiteLocal)),
        ("fec0::1", Some(SiteLocal)),
        ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(SiteLocal)),
        ("ff00::", Some(Multicast)),
        ("ff02::1", Some(Multicast)),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Multicast)),
        // ordinary public IPv6
        ("2606:4700:4700::1111", None),
        ("2a00:1450:4001:80b::200e", None),
    ];

    #[test]
    fn classify_every_range_edge_and_neighbour() {
        for &(text, expected) in CLASSIFY_TABLE {
            assert_eq!(classify(ip(text)), expected, "classify({text})");
        }
    }

    #[test]
    fn special_ranges_are_canonical_sorted_and_distinct() {
        for (i, &(prefix, range)) in SPECIAL_RANGES.iter().enumerate() {
            assert_eq!(Cidr::new(prefix.network(), prefix.prefix_len()), Ok(prefix), "row {i}: {prefix}");
            // Each row decides its first or its last address: no set of longer rows shadows it entirely.
            let last: IpAddr = match prefix.network() {
                IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from_bits(a.to_bits() | !mask_v4(prefix.prefix_len()))),
                IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from_bits(a.to_bits() | !mask_v6(prefix.prefix_len()))),
            };
            assert!(prefix.contains(last), "row {i}: {prefix} / {last}");
            let decides = |a: IpAddr| classify(a) == Some(range);
            assert!(decides(prefix.network()) || decides(last), "row {i}: {prefix} is shadowed");
            if let Some((next, _)) = SPECIAL_RANGES.get(i + 1) {
                let key = |c: &Cidr| (matches!(c.network(), IpAddr::V6(_)), c.network(), c.prefix_len());
                assert!(key(&prefix) < key(next), "rows {i} and {}: {prefix} then {next}", i + 1);
            }
        }
    }

    #[test]
    fn every_range_describes_itself_and_has_its_allowance() {
        let table: &[(Range, Allowance)] = &[
            (Unspecified, Allowance::Never),
            (ThisNetwork, Allowance::Never),
            (Loopback, Allowance::CidrOrHost),
            (Private, Allowance::CidrOrHost),
            (SharedAddress, Allowance::CidrOrHost),
            (LinkLocal, Allowance::CidrOrHost),
            (UniqueLocal, Allowance::CidrOrHost),
            (SiteLocal, Allowance::CidrOrHost),
            (Multicast, Allowance::Never),
            (Broadcast, Allowance::Never),
            (Documentation, Allowance::CidrOrHost),
            (Benchmarking, Allowance::CidrOrHost),
            (IetfProtocolAssignments, Allowance::CidrOrHost),
            (Reserved, Allowance::CidrOrHost),
            (SegmentRouting, Allowance::CidrOrHost),
            (Discard, Allowance::Never),
            (Orchid, Allowance::Never),
            (SixToFourRelay, Allowance::CidrOrHost),
            (CloudMetadata, Allowance::ExactAddress),
            (Ipv4Mapped, Allowance::Never),
            (Ipv4Compatible, Allowance::Never),
            (Ipv4Translated, Allowance::Never),
            (Nat64, Allowance::Never),
            (SixToFour, Allowance::Never),
            (Teredo, Allowance::Never),
        ];
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for &(range, allowance) in table {
            assert_eq!(range.allowance(), allowance, "{range:?}");
            assert!(!range.describe().is_empty(), "{range:?}");
            assert!(seen.insert(range.describe()), "{range:?} shares its description");
            assert_eq!(range.to_string(), range.describe());
        }
        // Every range the table can produce is in the list above.
        for &(_, range) in SPECIAL_RANGES {
            assert!(table.iter().any(|&(listed, _)| listed == range), "{range:?}");
        }
        assert_eq!(Loopback.describe(), "loopback");
        assert_eq!(CloudMetadata.describe(), "cloud metadata service");
    }

    #[test]
    fn embedded_ipv4_reads_each_carrying_prefix() {
        let v6 = |t: &str| t.parse::<Ipv6Addr>().unwrap();
        let v4 = |t: &str| Some(t.parse::<Ipv4Addr>().unwrap());
        assert_eq!(embedded_ipv4(v6("::ffff:127.0.0.1")), v4("127.0.0.1"));
        assert_eq!(embedded_ipv4(v6("::127.0.0.1")), v4("127.0.0.1"));
        assert_eq!(embedded_ipv4(v6("::ffff:0:10.0.0.1")), v4("10.0.0.1"));
        assert_eq!(embedded_ipv4(v6("64:ff9b::a9fe:a9fe")), v4("169.254.169.254"));
        assert_eq!(embedded_ipv4(v6("2002:7f00:1::")), v4("127.0.0.1"));
        assert_eq!(embedded_ipv4(v6("2002:c000:204:1::5")), v4("192.0.2.4"));
        // RFC 4380 §4 example: client 192.0.2.45 stored inverted as 3fff:fdd2.
        assert_eq!(embedded_ipv4(v6("2001:0:4136:e378:8000:63bf:3fff:fdd2")), v4("192.0.2.45"));
        assert_eq!(embedded_ipv4(v6("64:ff9b:1::a00:1")), None, "local-use NAT64 has no fixed layout");
        assert_eq!(embedded_ipv4(v6("::1")), None);
        assert_eq!(embedded_ipv4(v6("::")), None);
        assert_eq!(embedded_ipv4(v6("2606:4700:4700::1111")), None);
        assert_eq!(embedded_ipv4(v6("fe80::1")), None);
    }

    /// Odd spellings of internal addresses, through the same parser the broker uses, then `check_name`.
    #[test]
    fn odd_spellings_are_classified_after_parsing() {
        let table: &[(&str, Range)] = &[
            ("2130706433", Loopback),
            ("0177.0.0.1", Loopback),
            ("0x7f.1", Loopback),
            ("127.1", Loopback),
            ("017700000001", Loopback),
            ("0x7f000001", Loopback),
            ("0x7F.0.0.1", Loopback),
            ("127.0.0.1.", Loopback),
            ("[::ffff:127.0.0.1]", Loopback),
            ("[::ffff:7f00:1]", Loopback),
            ("[::1]", Loopback),
            ("[0:0:0:0:0:0:0:1]", Loopback),
            ("[::127.0.0.1]", Ipv4Compatible),
            ("[64:ff9b::7f00:1]", Nat64),
            ("[64:ff9b::127.0.0.1]", Nat64),
            ("[2002:7f00:1::]", SixToFour),
            ("[::ffff:0:7f00:1]", Ipv4Translated),
            ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", Teredo),
            ("0", Unspecified),
            ("0.0.0.0", Unspecified),
            ("0x0", Unspecified),
            ("[::]", Unspecified),
            ("0.1", ThisNetwork),
            ("10.1", Private),
            ("0xa.0", Private),
            ("3232235777", Private),
            ("[fd00:ec2::254]", CloudMetadata),
            ("[FD00:EC2:0:0:0:0:0:254]", CloudMetadata),
            ("100.100.100.200", CloudMetadata),
            ("1684301000", CloudMetadata),
            ("169.254.169.254", CloudMetadata),
            ("2852039166", CloudMetadata),
            ("0xa9fea9fe", CloudMetadata),
            ("0xA9FEA9FE", CloudMetadata),
            ("0251.0376.0251.0376", CloudMetadata),
            ("0xa9.0xfe.0xa9.0xfe", CloudMetadata),
            ("169.254.43518", CloudMetadata),
            ("169.16689662", CloudMetadata),
            ("025177524776", CloudMetadata),
            ("[::ffff:169.254.169.254]", CloudMetadata),
            ("[::ffff:a9fe:a9fe]", CloudMetadata),
            ("[0:0:0:0:0:ffff:169.254.169.254]", CloudMetadata),
            ("[::ffff:a9fe:a9fe]", CloudMetadata),
            ("[ff02::1]", Multicast),
            ("255.255.255.255", Broadcast),
            ("4294967295", Broadcast),
        ];
        let ssrf: SsrfPolicy = SsrfPolicy::default();
        for &(text, range) in table {
            let parsed: HostName = host(text);
            match ssrf.check_name(&parsed, 80) {
                Err(SsrfDenial::Address { host, ip, range: got }) => {
                    assert_eq!(got, range, "{text} read as {ip}");
                    assert_eq!(host, parsed.as_text(), "{text}");
                    assert_eq!(classify(ip), Some(range), "{text}");
                }
                other => panic!("{text}: expected {range:?}, got {other:?}"),
            }
        }
        // The mapped spellings reach the check as the IPv4 address they denote.
        assert_eq!(host("[::ffff:127.0.0.1]"), HostName::Ipv4(Ipv4Addr::LOCALHOST));
        assert_eq!(
            ssrf.check_name(&host("2130706433"), 80),
            Err(SsrfDenial::Address { host: "127.0.0.1".into(), ip: ip("127.0.0.1"), range: Loopback })
        );
    }

    #[test]
    fn public_literals_pass_check_name() {
        let ssrf: SsrfPolicy = SsrfPolicy::default();
        for text in ["8.8.8.8", "134744072", "[2606:4700:4700::1111]", "[::ffff:8.8.8.8]", "1.1.1.1"] {
            assert_eq!(ssrf.check_name(&host(text), 443), Ok(()), "{text}");
        }
    }

    #[test]
    fn names_refused_before_resolution() {
        let table: &[(&str, &str)] = &[
            ("localhost", REASON_LOOPBACK_NAME),
            ("localhost.", REASON_LOOPBACK_NAME),
            ("LOCALHOST", REASON_LOOPBACK_NAME),
            ("LocalHost.", REASON_LOOPBACK_NAME),
            ("sub.localhost", REASON_LOOPBACK_NAME),
            ("a.b.localhost.", REASON_LOOPBACK_NAME),
            ("ｌｏｃａｌｈｏｓｔ", REASON_LOOPBACK_NAME),
            ("ⓛⓞⓒⓐⓛⓗⓞⓢⓣ", REASON_LOOPBACK_NAME),
            ("localhost%2e", REASON_LOOPBACK_NAME),
            ("app．localhost", REASON_LOOPBACK_NAME),
            ("localhost.localdomain", REASON_LOOPBACK_NAME),
            ("localhost6", REASON_LOOPBACK_NAME),
            ("localhost6.localdomain6", REASON_LOOPBACK_NAME),
            ("ip6-localhost", REASON_LOOPBACK_NAME),
            ("ip6-loopback", REASON_LOOPBACK_NAME),
            ("metadata.google.internal", REASON_METADATA_NAME),
            ("metadata.google.internal.", REASON_METADATA_NAME),
            ("METADATA.Google.Internal", REASON_METADATA_NAME),
            ("metadata%2egoogle%2einternal", REASON_METADATA_NAME),
            ("ｍｅｔａｄａｔａ.google.internal", REASON_METADATA_NAME),
            ("computemetadata.metadata.google.internal", REASON_METADATA_NAME),
            ("metadata.goog", REASON_METADATA_NAME),
            ("metadata", REASON_METADATA_NAME),
            ("instance-data", REASON_METADATA_NAME),
            ("instance-data.ec2.internal", REASON_METADATA_NAME),
            ("instance-data.us-west-2.compute.internal", REASON_METADATA_NAME),
            ("metadata.azure.internal", REASON_METADATA_NAME),
            ("rancher-metadata", REASON_METADATA_NAME),
            ("metadata.tencentyun.com", REASON_METADATA_NAME),
            ("api.metadata.cloud.ibm.com", REASON_METADATA_NAME),
            ("metadata.platformequinix.com", REASON_METADATA_NAME),
            ("metadata.packet.net", REASON_METADATA_NAME),
            ("intranet", REASON_SINGLE_LABEL),
            ("wpad", REASON_SINGLE_LABEL),
            ("db.internal", REASON_INTERNAL),
            ("host.docker.internal", REASON_INTERNAL),
            ("printer.local", REASON_LOCAL),
            ("kubernetes.default.svc.cluster.local", REASON_LOCAL),
            ("router.home.arpa", REASON_ARPA),
            ("1.0.0.127.in-addr.arpa", REASON_ARPA),
            ("1.0.0.0.ip6.arpa", REASON_ARPA),
            ("ipv4only.arpa", REASON_ARPA),
            ("nas.lan", REASON_PRIVATE_TLD),
            ("app.corp", REASON_PRIVATE_TLD),
            ("wiki.intranet", REASON_PRIVATE_TLD),
            ("box.home", REASON_PRIVATE_TLD),
            ("git.private", REASON_PRIVATE_TLD),
            ("web.localdomain", REASON_PRIVATE_TLD),
            ("site.test", REASON_SPECIAL_USE_TLD),
            ("x.invalid", REASON_SPECIAL_USE_TLD),
            ("duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion", REASON_SPECIAL_USE_TLD),
            ("name.alt", REASON_SPECIAL_USE_TLD),
        ];
        let ssrf: SsrfPolicy = SsrfPolicy::default();
        for &(text, reason) in table {
            let parsed: HostName = host(text);
            assert_eq!(
                ssrf.check_name(&parsed, 443),
                Err(SsrfDenial::Name { host: parsed.as_text(), reason }),
                "{text}"
            );
            // check_answer refuses the same names even with a public answer.
            assert_eq!(
                ssrf.check_answer(&parsed, 443, &[ip("93.184.215.14")]),
                Err(SsrfDenial::Name { host: parsed.as_text(), reason }),
                "{text}"
            );
        }
    }

    #[test]
    fn ordinary_names_reach_the_resolver() {
        let ssrf: SsrfPolicy = SsrfPolicy::default();
        for text in [
            "example.com",
            "api.github.com",
            "localhost.example.com",
            "metadata.example.com",
            "internal.example.com",
            "local.example.com",
            "arpa.example.com",
            "instance-data.example.com",
            "mylocalhost.com",
            "xn--bcher-kva.example",
            "bücher.example",
            "metadata.google.com",
        ] {
            assert_eq!(ssrf.check_name(&host(text), 443), Ok(()), "{text}");
        }
    }

    #[test]
    fn hand_built_domains_cannot_dodge_the_name_rules() {
        let ssrf: SsrfPolicy = SsrfPolicy::default();
        let name = |text: &str| HostName::Domain(text.to_owned());
        let refused = |text: &str| match ssrf.check_name(&name(text), 80) {
            Err(SsrfDenial::Name { reason, .. }) => reason,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(refused("LOCALHOST.."), REASON_LOOPBACK_NAME);
        assert_eq!(refused("Metadata.Google.Internal."), REASON_METADATA_NAME);
        assert_eq!(refused("127.0.0.1"), REASON_NUMERIC_NAME);
        assert_eq!(refused("2130706433"), REASON_NUMERIC_NAME);
        assert_eq!(refused("evil.0x7f"), REASON_NUMERIC_NAME);
        assert_eq!(classify_name("example.com"), None);
        assert_eq!(classify_name("db.internal"), Some(NameRefusal { reason: REASON_INTERNAL, allowable: true }));
        assert_eq!(classify_name("localhost"), Some(NameRefusal { reason: REASON_LOOPBACK_NAME, allowable: false }));
    }

    #[test]
    fn mixed_answers_are_denied_naming_the_denied_address() {
        let ssrf: SsrfPolicy = SsrfPolicy::default();
        let name: HostName = host("rebind.example");
        let denied = |addrs: &[&str]| {
            let addrs: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
            ssrf.check_answer(&name, 443, &addrs)
        };
        let address = |text: &str, range: Range| {
            Err(SsrfDenial::Address { host: "rebind.example".to_owned(), ip: ip(text), range })
        };
        assert_eq!(denied(&["93.184.215.14", "10.0.0.1"]), address("10.0.0.1", Private));
        assert_eq!(denied(&["10.0.0.1", "93.184.215.14"]), address("10.0.0.1", Private));
        assert_eq!(denied(&["2606:4700:4700::1111", "::1"]), address("::1", Loopback));
        assert_eq!(denied(&["1.1.1.1", "169.254.169.254", "127.0.0.1"]), address("169.254.169.254", CloudMetadata));
        assert_eq!(denied(&["8.8.8.8", "::ffff:8.8.8.8"]), address("::ffff:8.8.8.8", Ipv4Mapped));
        assert_eq!(denied(&["8.8.8.8", "64:ff9b::808:808"]), address("64:ff9b::808:808", Nat64));
        assert_eq!(
            denied(&["8.8.8.8", "2606:4700:4700::1111", "8.8.8.8"]),
            Ok(vec![
                SocketAddr::new(ip("8.8.8.8"), 443),
                SocketAddr::new(ip("2606:4700:4700::1111"), 443),
                SocketAddr::new(ip("8.8.8.8"), 443),
            ])
        );
        assert_eq!(denied(&[]), Err(SsrfDenial::NoAddress { host: "rebind.example".to_owned() }));
        // A literal host is its own one-address answer.
        assert_eq!(
            ssrf.check_answer(&host("8.8.4.4"), 53, &[ip("8.8.4.4")]),
            Ok(vec![SocketAddr::new(ip("8.8.4.4"), 53)])
        );
        assert_eq!(
            ssrf.check_answer(&host("0x7f.1"), 80, &[ip("127.0.0.1")]),
            Err(SsrfDenial::Address { host: "127.0.0.1".to_owned(), ip: ip("127.0.0.1"), range: Loopback })
        );
        assert_eq!(ssrf.check_answer(&host("8.8.4.4"), 53, &[]), Err(SsrfDenial::NoAddress { host: "8.8.4.4".into() }));
    }

    #[test]
    fn allowed_hosts_may_resolve_privately_but_never_to_the_unallowable() {
        let ssrf: SsrfPolicy = policy(&[], &["db.internal", "*.corp.example", "intranet", "DB2.Internal."]);
        let table: &[(&str, &str, Option<Range>)] = &[
            ("db.internal", "10.0.0.5", None),
            ("db.internal", "127.0.0.1", None),
            ("db.internal", "::1", None),
            ("db.internal", "fd12::5", None),
            ("db.internal", "100.64.1.1", None),
            ("db.internal", "169.254.1.1", None),
            ("db.internal", "fe80::1", None),
            ("db.internal", "fec0::1", None),
            ("db.internal", "240.0.0.1", None),
            ("db.internal", "192.0.2.10", None),
            ("db.internal", "198.18.0.1", None),
            ("db.internal", "8.8.8.8", None),
            ("db.internal", "169.254.169.254", Some(CloudMetadata)),
            ("db.internal", "100.100.100.200", Some(CloudMetadata)),
            ("db.internal", "fd00:ec2::254", Some(CloudMetadata)),
            ("db.internal", "::ffff:10.0.0.5", Some(Ipv4Mapped)),
            ("db.internal", "::a00:5", Some(Ipv4Compatible)),
            ("db.internal", "64:ff9b::a00:5", Some(Nat64)),
            ("db.internal", "2002:a00:5::", Some(SixToFour)),
            ("db.internal", "2001::a00:5", Some(Teredo)),
            ("db.internal", "224.0.0.1", Some(Multicast)),
            ("db.internal", "255.255.255.255", Some(Broadcast)),
            ("db.internal", "0.0.0.0", Some(Unspecified)),
            ("db.internal", "::", Some(Unspecified)),
            ("db.internal", "0.0.0.7", Some(ThisNetwork)),
            ("db.internal", "100::1", Some(Discard)),
            ("db2.internal", "10.0.0.6", None),
            ("a.corp.example", "10.1.2.3", None),
            ("a.b.corp.example", "192.168.0.1", None),
            ("corp.example", "10.1.2.3", Some(Private)),
            ("xcorp.example", "10.1.2.3", Some(Private)),
            ("intranet", "10.9.9.9", None),
            ("other.example", "10.0.0.5", Some(Private)),
        ];
        for &(name, address, expected) in table {
            assert_eq!(answer_range(&ssrf, name, address), expected, "{name} -> {address}");
        }
        // Allowed names pass the name check; neighbours do not.
        assert_eq!(ssrf.check_name(&host("db.internal"), 5432), Ok(()));
        assert_eq!(ssrf.check_name(&host("intranet"), 80), Ok(()));
        assert_eq!(
            ssrf.check_name(&host("other.internal"), 5432),
            Err(SsrfDenial::Name { host: "other.internal".into(), reason: REASON_INTERNAL })
        );
        assert_eq!(
            ssrf.check_name(&host("wiki"), 80),
            Err(SsrfDenial::Name { host: "wiki".into(), reason: REASON_SINGLE_LABEL })
        );
    }

    #[test]
    fn loopback_and_metadata_names_are_never_allowable() {
        let ssrf: SsrfPolicy = policy(
            &["0.0.0.0/0", "::/0"],
            &["localhost", "*.localhost", "metadata", "*.internal", "metadata.google.internal", "instance-data"],
        );
        for (text, reason) in [
            ("localhost", REASON_LOOPBACK_NAME),
            ("app.localhost", REASON_LOOPBACK_NAME),
            ("metadata", REASON_METADATA_NAME),
            ("metadata.google.internal", REASON_METADATA_NAME),
            ("instance-data", REASON_METADATA_NAME),
            ("instance-data.ec2.internal", REASON_METADATA_NAME),
        ] {
            assert_eq!(ssrf.check_name(&host(text), 80), Err(SsrfDenial::Name { host: text.into(), reason }), "{text}");
        }
        // "*.internal" does admit other internal names.
        assert_eq!(ssrf.check_name(&host("vault.internal"), 8200), Ok(()));
    }

    #[test]
    fn allow_hosts_apply_to_names_only() {
        let ssrf: SsrfPolicy = policy(&[], &["10.0.0.5", "*", "[::1]"]);
        assert_eq!(
            ssrf.check_name(&host("10.0.0.5"), 80),
            Err(SsrfDenial::Address { host: "10.0.0.5".into(), ip: ip("10.0.0.5"), range: Private })
        );
        assert_eq!(answer_range(&ssrf, "anything.example", "10.0.0.5"), Some(Private), "'*' matches nothing");
        assert_eq!(answer_range(&ssrf, "[::1]", "::1"), Some(Loopback));
        assert!(!ssrf.host_is_allowed("example.com"));
        assert!(!policy(&[], &["*."]).host_is_allowed("example.com"));
        assert!(policy(&[], &["*.Example.COM."]).host_is_allowed("a.example.com"));
        assert!(!policy(&[], &["*.example.com"]).host_is_allowed("example.com"));
        assert!(!policy(&[], &["*.example.com"]).host_is_allowed("badexample.com"));
    }

    #[test]
    fn allowed_cidrs_open_their_ranges_for_any_host() {
        let ssrf: SsrfPolicy = policy(&["10.20.0.0/16", "fd12:3456::/32", "169.254.0.0/16", "100.64.0.0/10"], &[]);
        let table: &[(&str, Option<Range>)] = &[
            ("10.20.0.0", None),
            ("10.20.255.255", None),
            ("10.19.255.255", Some(Private)),
            ("10.21.0.0", Some(Private)),
            ("fd12:3456::1", None),
            ("fd12:3457::1", Some(UniqueLocal)),
            ("169.254.1.1", None),
            ("169.254.169.254", Some(CloudMetadata)),
            ("169.254.170.2", Some(CloudMetadata)),
            ("100.64.0.1", None),
            ("100.100.100.200", Some(CloudMetadata)),
            ("127.0.0.1", Some(Loopback)),
        ];
        for &(address, expected) in table {
            assert_eq!(answer_range(&ssrf, "svc.example.com", address), expected, "{address}");
        }
        // Literal hosts use the same CIDRs.
        assert_eq!(ssrf.check_name(&host("10.20.3.4"), 8080), Ok(()));
        assert_eq!(ssrf.check_name(&host("[fd12:3456::9]"), 8080), Ok(()));
    }

    #[test]
    fn metadata_needs_an_exact_single_address_entry() {
        let wide: SsrfPolicy = policy(&["169.254.169.0/24", "fd00:ec2::/64", "fd00::/8", "168.63.0.0/16"], &[]);
        assert_eq!(answer_range(&wide, "x.example", "169.254.169.254"), Some(CloudMetadata));
        assert_eq!(answer_range(&wide, "x.example", "fd00:ec2::254"), Some(CloudMetadata));
        assert_eq!(answer_range(&wide, "x.example", "168.63.129.16"), Some(CloudMetadata));
        assert_eq!(answer_range(&wide, "x.example", "fd99::1"), None, "fd00::/8 still opens other ULAs");

        let exact: SsrfPolicy = policy(&["169.254.169.254/32", "fd00:ec2::254", "100.100.100.200"], &[]);
        assert_eq!(answer_range(&exact, "x.example", "169.254.169.254"), None);
        assert_eq!(answer_range(&exact, "x.example", "fd00:ec2::254"), None);
        assert_eq!(answer_range(&exact, "x.example", "100.100.100.200"), None);
        assert_eq!(answer_range(&exact, "x.example", "169.254.169.253"), Some(CloudMetadata));
        assert_eq!(exact.check_name(&host("0xa9fea9fe"), 80), Ok(()));
        // Still only addresses: the metadata names stay refused.
        assert_eq!(
            exact.check_name(&host("metadata.google.internal"), 80),
            Err(SsrfDenial::Name { host: "metadata.google.internal".into(), reason: REASON_METADATA_NAME })
        );
    }

    #[test]
    fn never_allowable_ranges_stay_denied_under_any_allow_list() {
        let everything: SsrfPolicy = policy(&["0.0.0.0/0", "::/0"], &["*.example"]);
        let table: &[(&str, Option<Range>)] = &[
            ("10.0.0.1", None),
            ("127.0.0.1", None),
            ("::1", None),
            ("fe80::1", None),
            ("240.0.0.1", None),
            ("0.0.0.0", Some(Unspecified)),
            ("::", Some(Unspecified)),
            ("0.1.2.3", Some(ThisNetwork)),
            ("224.0.0.1", Some(Multicast)),
            ("ff02::1", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("100::1", Some(Discard)),
            ("2001:20::1", Some(Orchid)),
            ("::ffff:127.0.0.1", Some(Ipv4Mapped)),
            ("::ffff:8.8.8.8", Some(Ipv4Mapped)),
            ("::7f00:1", Some(Ipv4Compatible)),
            ("::ffff:0:7f00:1", Some(Ipv4Translated)),
            ("64:ff9b::7f00:1", Some(Nat64)),
            ("64:ff9b:1::1", Some(Nat64)),
            ("2002:7f00:1::", Some(SixToFour)),
            ("2001::1", Some(Teredo)),
            ("169.254.169.254", Some(CloudMetadata)),
        ];
        for &(address, expected) in table {
            assert_eq!(answer_range(&everything, "a.example", address), expected, "{address}");
        }
        // Not even an exact entry.
        let exact: SsrfPolicy = policy(&["0.0.0.0", "255.255.255.255/32", "::ffff:127.0.0.1/128", "2001::1"], &[]);
        assert_eq!(answer_range(&exact, "a.example", "0.0.0.0"), Some(Unspecified));
        assert_eq!(answer_range(&exact, "a.example", "255.255.255.255"), Some(Broadcast));
        assert_eq!(answer_range(&exact, "a.example", "::ffff:127.0.0.1"), Some(Ipv4Mapped));
        assert_eq!(answer_range(&exact, "a.example", "2001::1"), Some(Teredo));
    }

    #[test]
    fn the_broker_never_dials_itself() {
        let mut ssrf: SsrfPolicy = policy(&["127.0.0.0/8", "10.0.0.0/8", "::1"], &["*.example"]);
        ssrf.own_addrs = vec!["127.0.0.1:8080".parse().unwrap(), "93.184.215.14:8443".parse().unwrap()];
        let broker = |name: &str, address: &str, port: u16| {
            let addr: SocketAddr = SocketAddr::new(ip(address), port);
            Err(SsrfDenial::Broker { host: host(name).as_text(), addr })
        };
        assert_eq!(dial(&ssrf, "a.example", &["127.0.0.1"], 8080), broker("a.example", "127.0.0.1", 8080));
        assert_eq!(dial(&ssrf, "a.example", &["8.8.8.8", "127.0.0.1"], 8080), broker("a.example", "127.0.0.1", 8080));
        assert_eq!(dial(&ssrf, "a.example", &["127.0.0.1"], 8081), Ok(vec![SocketAddr::new(ip("127.0.0.1"), 8081)]));
        assert_eq!(dial(&ssrf, "a.example", &["127.0.0.2"], 8080), Ok(vec![SocketAddr::new(ip("127.0.0.2"), 8080)]));
        assert_eq!(
            dial(&ssrf, "b.test", &["93.184.215.14"], 8443),
            Err(SsrfDenial::Name { host: "b.test".into(), reason: REASON_SPECIAL_USE_TLD })
        );
        assert_eq!(dial(&ssrf, "b.com", &["93.184.215.14"], 8443), broker("b.com", "93.184.215.14", 8443));
        assert_eq!(dial(&ssrf, "b.com", &["93.184.215.14"], 443), Ok(vec![SocketAddr::new(ip("93.184.215.14"), 443)]));
        // A literal host naming the broker, with loopback allowed.
        assert_eq!(ssrf.check_name(&host("127.1"), 8080).err(), broker("127.0.0.1", "127.0.0.1", 8080).err());

        // Listening on the unspecified address: every non-public address with that port, both families.
        for own in ["0.0.0.0:3128", "[::]:3128"] {
            ssrf.own_addrs = vec![own.parse().unwrap()];
            for address in ["127.0.0.1", "10.1.2.3", "::1", "0.0.0.0"] {
                let denial = dial(&ssrf, "c.example", &[address], 3128);
                assert!(matches!(denial, Err(SsrfDenial::Broker { .. })), "{own} vs {address}: {denial:?}");
            }
            assert_eq!(dial(&ssrf, "c.example", &["10.1.2.3"], 80), Ok(vec![SocketAddr::new(ip("10.1.2.3"), 80)]));
            assert_eq!(dial(&ssrf, "c.example", &["8.8.8.8"], 3128), Ok(vec![SocketAddr::new(ip("8.8.8.8"), 3128)]));
        }
    }

    #[test]
    fn cidr_parse_accepts_prefixes_and_bare_addresses() {
        let table: &[(&str, &str, bool)] = &[
            ("10.1.0.0/16", "10.1.0.0/16", false),
            ("fd00::/8", "fd00::/8", false),
            ("10.0.0.1", "10.0.0.1/32", true),
            ("10.0.0.1/32", "10.0.0.1/32", true),
            ("::1", "::1/128", true),
            ("0.0.0.0/0", "0.0.0.0/0", false),
            ("::/0", "::/0", false),
            ("2001:DB8::/32", "2001:db8::/32", false),
            ("::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104", false),
        ];
        for &(text, shown, single) in table {
            let cidr: Cidr = Cidr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(cidr.to_string(), shown, "{text}");
            assert_eq!(cidr.is_single_address(), single, "{text}");
            assert_eq!(Cidr::parse(shown), Ok(cidr), "{text} round trip");
            assert_eq!(shown.parse::<Cidr>(), Ok(cidr), "{text} FromStr");
        }
        let net: Cidr = Cidr::parse("192.168.1.0/24").unwrap();
        assert_eq!(net.network(), ip("192.168.1.0"));
        assert_eq!(net.prefix_len(), 24);
        assert!(net.contains(ip("192.168.1.0")));
        assert!(net.contains(ip("192.168.1.255")));
        assert!(!net.contains(ip("192.168.2.0")));
        assert!(!net.contains(ip("192.168.0.255")));
        assert!(!net.contains(ip("::ffff:192.168.1.1")), "an IPv4 prefix never contains IPv6");
        assert!(!Cidr::parse("::/0").unwrap().contains(ip("10.0.0.1")), "an IPv6 prefix never contains IPv4");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("255.255.255.255")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("ffff::1")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!Cidr::parse("fd00::/8").unwrap().contains(ip("fe00::")));
    }

    #[test]
    fn cidr_parse_refuses_host_bits_long_prefixes_and_garbage() {
        let host_bits: &[(&str, &str)] = &[
            ("10.0.0.1/8", "\"10.0.0.0/8\""),
            ("192.168.1.77/24", "\"192.168.1.0/24\""),
            ("fd00::1/8", "\"fd00::/8\""),
            ("10.0.0.0/0", "\"0.0.0.0/0\""),
            ("169.254.169.254/16", "\"169.254.0.0/16\""),
        ];
        for &(text, canonical) in host_bits {
            let error: String = Cidr::parse(text).expect_err(text);
            assert!(error.contains("host bits") && error.contains(canonical), "{text}: {error}");
        }
        for text in ["10.0.0.0/33", "::/129", "10.0.0.0/255", "10.0.0.0/256", "10.0.0.0/1000"] {
            let error: String = Cidr::parse(text).expect_err(text);
            assert!(error.contains("longer than") || error.contains("plain decimal"), "{text}: {error}");
        }
        for text in [
            "",
            "garbage",
            "10.0.0.0/",
            "/8",
            "10.0.0.0/8/8",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.0/ 8",
            " 10.0.0.0/8",
            "10.0.0.0/8 ",
            "[::1]/128",
            "[::1]",
            "10.0.0/8",
            "010.0.0.0/8",
            "0x0a.0.0.0/8",
            "2130706433",
            "fe80::1%eth0",
            "10.0.0.0/8.0",
            "localhost",
        ] {
            assert!(Cidr::parse(text).is_err(), "{text:?} parsed");
        }
        assert!(Cidr::new(ip("10.0.0.0"), 33).is_err());
        assert!(Cidr::new(ip("10.0.0.1"), 31).is_err());
        assert_eq!(Cidr::new(ip("10.0.0.0"), 31).map(|c| c.to_string()), Ok("10.0.0.0/31".to_owned()));
    }

    #[test]
    fn cidr_round_trips_through_serde() {
        let cidr: Cidr = serde_json::from_str("\"10.20.0.0/16\"").unwrap();
        assert_eq!(cidr, Cidr::parse("10.20.0.0/16").unwrap());
        assert_eq!(serde_json::to_string(&cidr).unwrap(), "\"10.20.0.0/16\"");
        let error: String = serde_json::from_str::<Cidr>("\"10.20.0.1/16\"").unwrap_err().to_string();
        assert!(error.contains("10.20.0.0/16"), "{error}");
    }

    #[test]
    fn denial_messages_carry_host_address_and_reason_only() {
        let ssrf: SsrfPolicy = SsrfPolicy::default();
        let message = |name: &str, addrs: &[&str]| {
            let addrs: Vec<IpAddr> = addrs.iter().map(|a| ip(a)).collect();
            ssrf.check_answer(&host(name), 443, &addrs).unwrap_err().to_string()
        };
        assert_eq!(message("a.example", &["10.0.0.1"]), "a.example: address 10.0.0.1 is private-use; not dialled");
        assert_eq!(
            message("a.example", &["169.254.169.254"]),
            "a.example: address 169.254.169.254 is cloud metadata service; not dialled"
        );
        assert_eq!(
            message("a.example", &["64:ff9b::7f00:1"]),
            "a.example: address 64:ff9b::7f00:1 is NAT64 (IPv4 behind a translator) (it carries 127.0.0.1, loopback); \
             not dialled"
        );
        assert_eq!(
            message("a.example", &["::ffff:8.8.8.8"]),
            "a.example: address ::ffff:8.8.8.8 is IPv4-mapped IPv6 (it carries 8.8.8.8); not dialled"
        );
        assert_eq!(message("a.example", &[]), "a.example: the name resolved to no address");
        assert_eq!(
            message("localhost", &["127.0.0.1"]),
            format!("localhost: refused before resolving: {REASON_LOOPBACK_NAME}")
        );
        let broker: SsrfDenial = SsrfDenial::Broker { host: "[::1]".into(), addr: "[::1]:8080".parse().unwrap() };
        assert_eq!(broker.to_string(), "[::1]: [::1]:8080 is the broker's own listening address; not dialled");
        assert_eq!(broker.host(), "[::1]");
        assert_eq!(broker.range(), None);
        let address: SsrfDenial = SsrfDenial::Address { host: "h".into(), ip: ip("::1"), range: Loopback };
        assert_eq!(address.range(), Some(Loopback));
    }
}
