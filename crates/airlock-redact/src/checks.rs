//! Checksums and structural validators that a candidate must pass before it counts as a finding.
//!
//! # Why
//! A regex says "this looks like a GitHub token"; 30 random base62 characters followed by six more look like one
//! too. Where a format carries a checksum (GitHub and npm tokens' CRC32, card numbers' Luhn digit, IBAN's mod-97)
//! or a structure that can be parsed (a JWT's JSON header, an IP address), checking it turns "looks like" into
//! "is", and removes most false positives at no cost to recall. Each check is a pure function of the secret's
//! bytes; rules name them with `check = "..."`.

use base64::Engine as _;

/// A named validator. See [`Check::from_name`] for the names rule files use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`) and npm (`npm_`) tokens: the last six base62 characters
    /// are the CRC32 of the 30 characters before them (after the prefix), zero-padded.
    GithubCrc32,
    /// Payment card numbers: 13 to 19 digits (spaces or dashes between groups allowed) with a valid Luhn digit,
    /// and an issuer prefix in use with a length that issuer uses (see [`card_issuer`]).
    Luhn,
    /// IBAN: a known country's length and the ISO 13616 mod-97 check.
    Iban,
    /// A JWT: three (or five, for JWE) base64url parts whose first decodes to a JSON object with `"alg"`.
    Jwt,
    /// US social security number: not area 000, 666 or 9xx, not group 00, not serial 0000, and not one of the
    /// numbers the SSA voided after they were printed in advertising (078-05-1120, 219-09-9999, 123-45-6789).
    UsSsn,
    /// A dotted-quad IPv4 address with every octet at most 255, no leading zeros, and not a version-like
    /// `0.x.y.z` or a section number like `4.2.1.13` (first octet at most 9 and every octet at most 30; this also
    /// drops `1.2.3.4` and public resolvers such as `8.8.8.8`, which are nobody's personal data).
    Ipv4,
    /// An IPv6 address that parses, with at least three colons or `x::y` with a digit (`fe80::1`, but not the
    /// Rust or C++ path `a::b`, nor `::1`, which is nobody's), and not eight byte pairs (`de:ad:be:ef:...`, a hex
    /// dump).
    Ipv6,
    /// Phone numbers: 8 to 15 digits in all (E.164's maximum), not all the same digit, not shaped like a date
    /// or a dotted quad, and plausible for its numbering plan: see [`phone`].
    Phone,
    /// An email address: a dot-atom local part of at most 64 bytes, a domain of dot-separated labels ending in an
    /// alphabetic top-level label of at least two letters that is not a file extension (`logo@2x.png`) or a
    /// camel-case member name (Kotlin's `this@MainActivity.getString`), and not the SSH user `git@`.
    Email,
    /// HTTP Basic credentials: standard base64 (padding optional) of printable ASCII `user:password` with a
    /// non-empty password.
    BasicAuth,
}

const NAMES: &[(&str, Check)] = &[
    ("github-crc32", Check::GithubCrc32),
    ("luhn", Check::Luhn),
    ("iban", Check::Iban),
    ("jwt", Check::Jwt),
    ("us-ssn", Check::UsSsn),
    ("ipv4", Check::Ipv4),
    ("ipv6", Check::Ipv6),
    ("phone", Check::Phone),
    ("email", Check::Email),
    ("basic-auth", Check::BasicAuth),
];

impl Check {
    pub fn from_name(name: &str) -> Option<Check> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|(n, _)| *n)
    }

    pub fn name(self) -> &'static str {
        NAMES.iter().find(|(_, c)| *c == self).map(|(n, _)| *n).unwrap_or("?")
    }

    /// Does `secret` pass?
    pub fn passes(self, secret: &[u8]) -> bool {
        match self {
            Check::GithubCrc32 => github_crc32(secret),
            Check::Luhn => luhn(secret),
            Check::Iban => iban(secret),
            Check::Jwt => jwt(secret),
            Check::UsSsn => us_ssn(secret),
            Check::Ipv4 => ipv4(secret),
            Check::Ipv6 => ipv6(secret),
            Check::Phone => phone(secret),
            Check::Email => email(secret),
            Check::BasicAuth => basic_auth(secret),
        }
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62_value(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| {
        let v = BASE62.iter().position(|&c| c == d)? as u64;
        acc.checked_mul(62)?.checked_add(v)
    })
}

fn github_crc32(secret: &[u8]) -> bool {
    // The part after the last '_' is 30 random characters and the 6-character checksum.
    let Some(underscore) = secret.iter().rposition(|&b| b == b'_') else { return false };
    let body = &secret[underscore + 1..];
    if body.len() != 36 || !body.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (random, check) = body.split_at(30);
    base62_value(check) == Some(u64::from(crc32fast::hash(random)))
}

fn digits_of(secret: &[u8], separators: &[u8]) -> Option<Vec<u8>> {
    let mut digits = Vec::with_capacity(secret.len());
    for &b in secret {
        if b.is_ascii_digit() {
            digits.push(b - b'0');
        } else if !separators.contains(&b) {
            return None;
        }
    }
    Some(digits)
}

fn luhn(secret: &[u8]) -> bool {
    let Some(digits) = digits_of(secret, b" -") else { return false };
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|&d| d == digits[0]) || !card_issuer(&digits) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The number made of the first `n` digits.
fn leading(digits: &[u8], n: usize) -> u32 {
    digits.iter().take(n).fold(0, |acc, &d| acc * 10 + u32::from(d))
}

/// Is this a card number's issuer prefix (ISO/IEC 7812 IIN ranges in use) with a length that issuer issues?
/// Visa 4 (13, 16, 19); Mastercard 51-55 and 2221-2720 (16); Mir 2200-2204 (16-19); Amex 34/37 (15); JCB
/// 3528-3589 (16-19); Diners 300-305, 3095, 36, 38, 39 (14-19); Maestro 50, 56-58, 63, 67 (13-19); Discover 6011,
/// 644-649, 65, UnionPay 62 and RuPay 60 (16-19).
fn card_issuer(digits: &[u8]) -> bool {
    let len = digits.len();
    let (p2, p3, p4) = (leading(digits, 2), leading(digits, 3), leading(digits, 4));
    match digits[0] {
        4 => matches!(len, 13 | 16 | 19),
        2 => ((2221..=2720).contains(&p4) && len == 16) || ((2200..=2204).contains(&p4) && len >= 16),
        3 => {
            (matches!(p2, 34 | 37) && len == 15)
                || ((3528..=3589).contains(&p4) && len >= 16)
                || (((300..=305).contains(&p3) || p4 == 3095 || matches!(p2, 36 | 38 | 39)) && len >= 14)
        }
        5 => ((51..=55).contains(&p2) && len == 16) || matches!(p2, 50 | 56..=58),
        6 => {
            (matches!(p2, 60 | 62 | 65) || p4 == 6011 || (644..=649).contains(&p3)) && len >= 16
                || matches!(p2, 63 | 67)
        }
        _ => false,
    }
}

/// IBAN lengths by country (ISO 13616 registry).
#[rustfmt::skip]
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24), (b"AE", 23), (b"AL", 28), (b"AT", 20), (b"AZ", 28), (b"BA", 20), (b"BE", 16), (b"BG", 22),
    (b"BH", 22), (b"BR", 29), (b"BY", 28), (b"CH", 21), (b"CR", 22), (b"CY", 28), (b"CZ", 24), (b"DE", 22),
    (b"DK", 18), (b"DO", 28), (b"EE", 20), (b"EG", 29), (b"ES", 24), (b"FI", 18), (b"FO", 18), (b"FR", 27),
    (b"GB", 22), (b"GE", 22), (b"GI", 23), (b"GL", 18), (b"GR", 27), (b"GT", 28), (b"HR", 21), (b"HU", 28),
    (b"IE", 22), (b"IL", 23), (b"IQ", 23), (b"IS", 26), (b"IT", 27), (b"JO", 30), (b"KW", 30), (b"KZ", 20),
    (b"LB", 28), (b"LC", 32), (b"LI", 21), (b"LT", 20), (b"LU", 20), (b"LV", 21), (b"MC", 27), (b"MD", 24),
    (b"ME", 22), (b"MK", 19), (b"MR", 27), (b"MT", 31), (b"MU", 30), (b"NL", 18), (b"NO", 15), (b"PK", 24),
    (b"PL", 28), (b"PS", 29), (b"PT", 25), (b"QA", 29), (b"RO", 24), (b"RS", 22), (b"SA", 24), (b"SC", 31),
    (b"SE", 24), (b"SI", 19), (b"SK", 24), (b"SM", 27), (b"TL", 23), (b"TN", 24), (b"TR", 26), (b"UA", 29),
    (b"VA", 22), (b"VG", 24), (b"XK", 20),
];

fn iban(secret: &[u8]) -> bool {
    let compact: Vec<u8> = secret.iter().copied().filter(|&b| b != b' ').map(|b| b.to_ascii_uppercase()).collect();
    if compact.len() < 15 || !compact.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let country = [compact[0], compact[1]];
    match IBAN_LENGTHS.iter().find(|(c, _)| **c == country) {
        Some((_, len)) if *len == compact.len() => {}
        _ => return false,
    }
    if !compact[2].is_ascii_digit() || !compact[3].is_ascii_digit() {
        return false;
    }
    // Move the first four characters to the end, letters become 10..35, and the number mod 97 must be 1.
    let rotated = compact[4..].iter().chain(&compact[..4]);
    let mut rem = 0u32;
    for &b in rotated {
        let v = if b.is_ascii_digit() { u32::from(b - b'0') } else { u32::from(b - b'A') + 10 };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

fn jwt(secret: &[u8]) -> bool {
    let parts: Vec<&[u8]> = secret.split(|&b| b == b'.').collect();
    if !(parts.len() == 3 || parts.len() == 5) {
        return false;
    }
    let Ok(header) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[0]) else { return false };
    // A JSON object naming its algorithm; no JSON parser needed for that much.
    let header = header.trim_ascii();
    header.starts_with(b"{") && header.ends_with(b"}") && memchr::memmem::find(header, b"\"alg\"").is_some()
}

fn us_ssn(secret: &[u8]) -> bool {
    let Some(d) = digits_of(secret, b"- ") else { return false };
    if d.len() != 9 {
        return false;
    }
    let area = leading(&d, 3);
    let group = leading(&d[3..], 2);
    let serial = leading(&d[5..], 4);
    // Voided after appearing in advertising (a wallet insert, a 1950s ad) or commonly used as the example number.
    let voided = matches!((area, group, serial), (78, 5, 1120) | (219, 9, 9999) | (123, 45, 6789));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 && !voided
}

fn ipv4(secret: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(secret) else { return false };
    let octets: Vec<&str> = text.split('.').collect();
    if octets.len() != 4 || octets.iter().any(|o| o.is_empty() || o.len() > 3 || (o.len() > 1 && o.starts_with('0'))) {
        return false;
    }
    let Ok(values) = octets.iter().map(|o| o.parse::<u8>()).collect::<Result<Vec<u8>, _>>() else { return false };
    // `4.2.1.13`, `2.5.5.1`: section numbers (RFC 5280 section 4.2.1.13) far more often than someone's address.
    let section_like = values[0] <= 9 && values.iter().all(|&v| v <= 30);
    values[0] != 0 && !section_like
}

fn ipv6(secret: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(secret) else { return false };
    if text.parse::<std::net::Ipv6Addr>().is_err() {
        return false;
    }
    let colons = text.matches(':').count();
    // Two colons only with a first group of 3+ digits, a digit and a last group: `fe80::1` is an address;
    // `a::b`, `dead::beef` and `C::C4` are Rust or C++ paths, and `::1` is nobody's.
    let first = text.split(':').next().unwrap_or("");
    let short_ok = colons == 2 && first.len() >= 3 && text.bytes().any(|b| b.is_ascii_digit()) && !text.ends_with(':');
    // Eight two-digit groups with no `::` is a colon-separated hex dump or a hardware id, not how anyone writes an
    // address.
    let byte_pairs = !text.contains("::") && text.split(':').all(|g| g.len() == 2);
    (colons >= 3 || short_ok) && !byte_pairs
}

/// The length of the ITU-T E.164 country code `rest` starts with, if it starts with an assigned one (spare and
/// reserved codes such as 28x, 83x, 89x, 999 are refused).
fn country_code_len(rest: &[u8]) -> Option<usize> {
    let two = leading(rest, 2);
    let three = leading(rest, 3);
    let assigned_three = match two {
        21 => matches!(three, 211..=213 | 216 | 218),
        22..=24 | 26 | 35 | 50 | 59 => true,
        25 => three != 259,
        29 => matches!(three, 290 | 291 | 297..=299),
        37 => true,
        38 => !matches!(three, 384 | 388),
        42 => matches!(three, 420 | 421 | 423),
        67 => three != 671,
        68 => three != 684,
        69 => (690..=692).contains(&three),
        80 => matches!(three, 800 | 808),
        85 => matches!(three, 850 | 852 | 853 | 855 | 856),
        87 => three == 870,
        88 => matches!(three, 880..=883 | 886 | 888),
        96 => three != 969,
        97 => (970..=977).contains(&three),
        99 => (992..=998).contains(&three),
        _ => false,
    };
    match rest.first()? {
        0 => None,
        1 | 7 => Some(1),
        _ if matches!(two, 20 | 27 | 30..=34 | 36 | 39 | 40 | 41 | 43..=49 | 51..=58 | 60..=66 | 81 | 82 | 84 | 86 | 90..=95 | 98) => {
            Some(2)
        }
        _ if rest.len() >= 3 && assigned_three => Some(3),
        _ => None,
    }
}

/// National significant number lengths for a few large numbering plans; others get E.164's general bounds.
fn national_len_ok(country: u32, len: usize) -> bool {
    match country {
        1 | 7 | 52 | 91 => len == 10,
        33 | 34 | 61 => len == 9,
        44 => (9..=10).contains(&len),
        49 => (6..=13).contains(&len),
        39 => (6..=11).contains(&len),
        55 | 86 => (10..=11).contains(&len),
        81 => (9..=10).contains(&len),
        _ => (4..=14).contains(&len),
    }
}

/// North American Numbering Plan: NXX-NXX-XXXX where N is 2-9, and neither the area code nor the exchange is a
/// service code (N11).
fn nanp(d: &[u8]) -> bool {
    d.len() == 10 && d[0] >= 2 && d[3] >= 2 && !(d[1] == 1 && d[2] == 1) && !(d[4] == 1 && d[5] == 1)
}

/// Digit-group lengths of `secret`, split at separators, with the separator byte that ends each group.
fn digit_groups(secret: &[u8]) -> Vec<(usize, u8)> {
    let mut groups = Vec::new();
    let mut run = 0;
    for &b in secret {
        if b.is_ascii_digit() {
            run += 1;
        } else {
            if run > 0 {
                groups.push((run, b));
            }
            run = 0;
        }
    }
    if run > 0 {
        groups.push((run, 0));
    }
    groups
}

/// A phone number, written the way people write them. Beyond 8-15 digits (E.164) that are not all one digit:
/// - not shaped like a date (`2024-01-15`, `15.01.2024`) or a dotted quad (`10.20.30.40`);
/// - `+` or `00` then a country code: the code is assigned (E.164), the national number's length fits the plan
///   for the plans we know (NANP 10 and valid area code and exchange, UK 9-10, France 9, India 10, ...), a `(0)`
///   trunk prefix is dropped, and a number written with no separator at all has at least 10 digits;
/// - a national number with a trunk `0` (UK, Germany, France, India, ...): 9 to 12 digits;
/// - otherwise 10 digits that are a valid NANP number or an Indian mobile (6-9...), 11 digits `1` + NANP, or a
///   short plan's 8 or 9 digits.
fn phone(secret: &[u8]) -> bool {
    let plus = secret.first() == Some(&b'+');
    if secret.iter().skip(1).any(|&b| b == b'+') {
        return false;
    }
    let Some(digits) = digits_of(secret, b" -.()+/") else { return false };
    if !(8..=15).contains(&digits.len()) || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    let groups = digit_groups(secret);
    let lens: Vec<usize> = groups.iter().map(|g| g.0).collect();
    let date_like = matches!(lens.as_slice(), [4, 2, 2] | [2, 2, 4]);
    let quad_like = lens.len() == 4 && lens.iter().all(|&l| l <= 3) && groups[..3].iter().all(|g| g.1 == b'.');
    if date_like || quad_like {
        return false;
    }
    let international = if plus {
        Some(&digits[..])
    } else if digits.starts_with(&[0, 0]) {
        Some(&digits[2..])
    } else {
        None
    };
    match international {
        Some(rest) => {
            if plus && groups.len() == 1 && digits.len() < 10 {
                return false;
            }
            let Some(cc_len) = country_code_len(rest) else { return false };
            if rest.len() <= cc_len {
                return false;
            }
            let country = leading(rest, cc_len);
            let mut national = &rest[cc_len..];
            if national.first() == Some(&0) {
                // `+44 (0)20 ...`: the trunk prefix, written for callers inside the country. Italy keeps its 0.
                if memchr::memmem::find(secret, b"(0)").is_some() {
                    national = &national[1..];
                } else if country != 39 {
                    return false;
                }
            }
            !national.iter().all(|&d| d == national[0])
                && national_len_ok(country, national.len())
                && (country != 1 || nanp(national))
        }
        None if digits[0] == 0 => (9..=12).contains(&digits.len()),
        None => match digits.len() {
            10 => nanp(&digits) || digits[0] >= 6,
            11 => digits[0] == 1 && nanp(&digits[1..]),
            n => n <= 9,
        },
    }
}

/// File extensions and systemd unit types that are not top-level domains: `icon@2x.png` is an image and
/// `user@1000.service` a unit, not addresses.
#[rustfmt::skip]
const NOT_TLDS: &[&[u8]] = &[
    b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"ico", b"bmp", b"tif", b"tiff", b"css", b"scss", b"js", b"mjs",
    b"cjs", b"ts", b"tsx", b"jsx", b"json", b"yaml", b"yml", b"toml", b"txt", b"lock", b"html", b"htm", b"xml",
    b"java", b"kt", b"swift", b"vue", b"ttf", b"otf", b"eot", b"woff", b"wasm", b"pdf", b"tgz", b"gz", b"bz", b"xz",
    b"tar", b"jar", b"exe", b"dll", b"so", b"dylib", b"whl", b"egg", b"gem", b"rpm", b"deb", b"dmg", b"iso", b"img",
    b"bin", b"dat", b"log", b"tmp", b"bak", b"orig", b"swp", b"cfg", b"ini", b"conf", b"env",
    // systemd template units: `user@1000.service`, `getty@tty1.service`.
    b"service", b"socket", b"target", b"mount", b"automount", b"timer", b"slice", b"scope", b"device", b"swap",
];

fn email(secret: &[u8]) -> bool {
    let Some(at) = secret.iter().rposition(|&b| b == b'@') else { return false };
    let (local, domain) = (&secret[..at], &secret[at + 1..]);
    if local.is_empty() || local.len() > 64 || secret.len() > 254 || local.eq_ignore_ascii_case(b"git") {
        return false;
    }
    // Dot-atom: dots separate atoms, so none leads, trails or doubles.
    if local.starts_with(b".") || local.ends_with(b".") || memchr::memmem::find(local, b"..").is_some() {
        return false;
    }
    let labels: Vec<&[u8]> = domain.split(|&b| b == b'.').collect();
    let Some((tld, _)) = labels.split_last() else { return false };
    if labels.len() < 2
        || labels.iter().any(|l| l.is_empty() || l.len() > 63 || l.starts_with(b"-") || l.ends_with(b"-"))
    {
        return false;
    }
    let lower = tld.to_ascii_lowercase();
    // `Outer.method`: a lowercase letter followed by an uppercase one does not happen in a written domain.
    let camel = tld.windows(2).any(|w| w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase());
    tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) && !camel && !NOT_TLDS.contains(&lower.as_slice())
}

fn basic_auth(secret: &[u8]) -> bool {
    let unpadded = secret.strip_suffix(b"==").or_else(|| secret.strip_suffix(b"=")).unwrap_or(secret);
    let Ok(decoded) = base64::engine::general_purpose::STANDARD_NO_PAD.decode(unpadded) else { return false };
    let decoded = zeroize::Zeroizing::new(decoded);
    let printable = decoded.iter().all(|&b| (0x20..0x7f).contains(&b));
    let colon = decoded.iter().position(|&b| b == b':');
    printable && colon.is_some_and(|c| c + 1 < decoded.len())
}

/// Shannon entropy of `data` in bits per byte.
pub fn shannon_entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[usize::from(b)] += 1;
    }
    let n = data.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / n).map(|p| -p * p.log2()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github_token(prefix: &str, random: &str) -> String {
        let mut crc = u64::from(crc32fast::hash(random.as_bytes()));
        let mut check = [b'0'; 6];
        for slot in check.iter_mut().rev() {
            *slot = BASE62[(crc % 62) as usize];
            crc /= 62;
        }
        format!("{prefix}{random}{}", std::str::from_utf8(&check).unwrap())
    }

    #[test]
    fn github_checksum_accepts_a_valid_token_and_rejects_one_changed_character() {
        let token = github_token("ghp_", "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0");
        assert!(Check::GithubCrc32.passes(token.as_bytes()));
        let mut bad = token.into_bytes();
        bad[10] = if bad[10] == b'x' { b'y' } else { b'x' };
        assert!(!Check::GithubCrc32.passes(&bad));
        assert!(!Check::GithubCrc32.passes(b"ghp_short"));
    }

    #[test]
    fn luhn_accepts_test_cards_and_rejects_a_wrong_digit() {
        assert!(luhn(b"4111 1111 1111 1111"));
        assert!(luhn(b"5555-5555-5555-4444"));
        assert!(luhn(b"378282246310005"));
        assert!(!luhn(b"4111 1111 1111 1112"));
        assert!(!luhn(b"0000000000000000"));
        assert!(!luhn(b"1234567812345670"), "no issuer starts with 1");
    }

    #[test]
    fn iban_checks_length_and_mod_97() {
        assert!(iban(b"GB82WEST12345698765432"));
        assert!(iban(b"DE89 3704 0044 0532 0130 00"));
        assert!(!iban(b"GB82WEST12345698765433"));
        assert!(!iban(b"DE89370400440532013000FF"), "wrong length for DE");
        assert!(!iban(b"ZZ82WEST12345698765432"));
    }

    #[test]
    fn structural_checks() {
        assert!(jwt(b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"));
        assert!(!jwt(b"eyJub3QiOiJqd3QifQ.eyJzdWIiOiIxIn0.c2ln"));
        assert!(us_ssn(b"536-22-8194") && us_ssn(b"536 22 8194") && us_ssn(b"536228194"));
        assert!(!us_ssn(b"666-45-6789") && !us_ssn(b"536-00-6789") && !us_ssn(b"900-45-6789"));
        assert!(!us_ssn(b"078-05-1120") && !us_ssn(b"123-45-6789"), "voided advertising numbers");
        assert!(ipv4(b"192.168.10.4") && !ipv4(b"256.1.1.1") && !ipv4(b"01.2.3.4") && !ipv4(b"0.1.2.3"));
        assert!(!ipv4(b"1.2.3.4.5"), "five parts is a version or an OID");
        assert!(!ipv4(b"4.2.1.13") && !ipv4(b"2.5.5.1"), "section numbers");
        assert!(ipv4(b"3.120.45.67") && ipv4(b"9.31.0.1") && ipv4(b"127.0.0.1"));
        assert!(ipv6(b"2001:db8::8a2e:370:7334") && !ipv6(b"std::io") && !ipv6(b"::1"));
        assert!(!ipv6(b"00:1a:2b:3c:4d:5e"), "a MAC address");
        assert!(ipv6(b"fe80::1") && ipv6(b"100::1") && !ipv6(b"dead::beef") && !ipv6(b"::ffff") && !ipv6(b"face::"));
        assert!(!ipv6(b"C::C4") && !ipv6(b"09::00"), "an enum variant, a broken time zone");
        assert!(!ipv6(b"de:ad:be:ef:00:11:22:33"), "a hex dump");
    }

    #[test]
    fn card_numbers_need_an_issuer_prefix_with_its_length() {
        for card in ["4222222222222", "6011111111111117", "3530111333300000", "30569309025904", "2223003122003222"] {
            assert!(luhn(card.as_bytes()), "{card}");
        }
        assert!(luhn(b"3782 822463 10005"), "Amex 4-6-5");
        // Luhn-valid, but no issuer issues these lengths under these prefixes.
        for (payload, why) in [
            ("4111111111111111", "Visa has no 17-digit numbers"),
            ("341111111111111", "Amex numbers are 15 digits"),
            ("711111111111111", "7 is not a card issuer"),
            ("681111111111111", "68 is not a card range"),
            ("551111111111111111", "Mastercard numbers are 16 digits"),
        ] {
            let card = with_luhn_digit(payload);
            assert!(!luhn(card.as_bytes()), "{card}: {why}");
        }
        assert!(luhn(with_luhn_digit("411111111111111").as_bytes()), "the helper makes valid numbers");
    }

    /// `payload` followed by the digit that makes it pass Luhn.
    fn with_luhn_digit(payload: &str) -> String {
        (0..10)
            .map(|d| format!("{payload}{d}"))
            .find(|c| {
                let sum: u32 = c
                    .bytes()
                    .rev()
                    .enumerate()
                    .map(|(i, b)| {
                        let d = u32::from(b - b'0');
                        if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d }
                    })
                    .sum();
                sum.is_multiple_of(10)
            })
            .unwrap()
    }

    #[test]
    fn phone_numbers_fit_their_numbering_plan() {
        for ok in [
            "+1 (415) 555-2671",
            "+14155552671",
            "(415) 555-2671",
            "415.555.2671",
            "1-800-555-0199",
            "+44 20 7946 0958",
            "+44 (0)20 7946 0958",
            "07700 900123",
            "030 1234567",
            "+49 30 1234567",
            "06 12 34 56 78",
            "+33 6 12 34 56 78",
            "+91 98765 43210",
            "0044 20 7946 0958",
            "+39 06 6982 1234",
            "+353 1 496 0321",
            "+971 50 123 4678",
        ] {
            assert!(phone(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "1234",
            "0000000000",
            "+1 415 555 267",    // NANP needs 10 digits
            "+1 (115) 555-2671", // area codes start 2-9
            "+1 415 911 2671",   // N11 is a service code
            "+44 020 7946 0958", // a trunk 0 after the country code
            "+28 1234 5678",     // 28 is spare
            "+999999-12-25",     // 999 is reserved: a date with a six-digit year
            "+0 415 555 2671",   // no country code 0
            "+20240115",         // eight bare digits after a plus: a diff line, not a number
            "2024-01-15",        // a date
            "15.01.2024",        // a date
            "10.200.30.40",      // a dotted quad
            "+1 415+555 2671",   // a second plus
            "4155552671234567",  // 16 digits: longer than E.164 allows
            "1155552671",        // 10 digits, neither NANP nor an Indian mobile
            "0301",              // too short for a trunk number
        ] {
            assert!(!phone(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn email_domains_are_domains() {
        for ok in ["a.b@example.co.uk", "j.doe+billing@corp.acme.io", "12345@qq.com", "Alice@Corp.COM"] {
            assert!(email(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "user@localhost",
            "x@y.123",
            "git@github.com",
            "logo@2x.png",
            "getty@tty1.service",
            "this@MainActivity.getString",
            "a@-bad.com",
            "a@bad..com",
            "a..b@corp.io",
            "a.@corp.io",
            "@types.node",
        ] {
            assert!(!email(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn entropy_of_uniform_and_constant_data() {
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert_eq!(shannon_entropy(b""), 0.0);
    }
}
