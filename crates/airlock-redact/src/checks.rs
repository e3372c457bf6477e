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
    /// Payment card numbers: 13 to 19 digits (spaces or dashes between groups allowed) with a valid Luhn digit
    /// and a known issuer prefix.
    Luhn,
    /// IBAN: a known country's length and the ISO 13616 mod-97 check.
    Iban,
    /// A JWT: three (or five, for JWE) base64url parts whose first decodes to a JSON object with `"alg"`.
    Jwt,
    /// US social security number: not area 000, 666 or 9xx, not group 00, not serial 0000.
    UsSsn,
    /// A dotted-quad IPv4 address with every octet at most 255, no leading zeros, and not a version-like
    /// `0.x.y.z`.
    Ipv4,
    /// An IPv6 address that parses (and is not just `::` or `::1`-like short forms with no hex letters... see
    /// [`ipv6`]).
    Ipv6,
    /// Phone numbers: 8 to 15 digits in all (E.164's maximum), not all the same digit.
    Phone,
    /// An email address whose domain has a dot and an alphabetic top-level label of at least two letters.
    Email,
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
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    // Issuer prefixes (ISO/IEC 7812 IIN ranges in use): Visa 4, Mastercard 51-55 and 2221-2720, Amex 34/37,
    // Discover 6011/644-649/65, JCB 3528-3589, Diners 300-305/36/38/39, UnionPay 62, Maestro 50/56-58/6x.
    let first = digits[0];
    if !matches!(first, 2..=6) {
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
    sum % 10 == 0
}

/// IBAN lengths by country (ISO 13616 registry).
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
    let area = u32::from(d[0]) * 100 + u32::from(d[1]) * 10 + u32::from(d[2]);
    let group = d[3] * 10 + d[4];
    let serial = d[5..].iter().fold(0u32, |a, &x| a * 10 + u32::from(x));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn ipv4(secret: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(secret) else { return false };
    let octets: Vec<&str> = text.split('.').collect();
    octets.len() == 4
        && octets.iter().all(|o| !o.is_empty() && o.len() <= 3 && !(o.len() > 1 && o.starts_with('0')))
        && octets.iter().all(|o| o.parse::<u8>().is_ok())
        && octets[0] != "0"
}

fn ipv6(secret: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(secret) else { return false };
    // At least three groups: `a::b` is far more often a Rust or C++ path than an address.
    text.parse::<std::net::Ipv6Addr>().is_ok() && text.matches(':').count() >= 3
}

fn phone(secret: &[u8]) -> bool {
    let Some(digits) = digits_of(secret, b" -.()+/") else { return false };
    (8..=15).contains(&digits.len()) && !digits.iter().all(|&d| d == digits[0])
}

fn email(secret: &[u8]) -> bool {
    let Some(at) = secret.iter().rposition(|&b| b == b'@') else { return false };
    let domain = &secret[at + 1..];
    let Some(dot) = domain.iter().rposition(|&b| b == b'.') else { return false };
    let tld = &domain[dot + 1..];
    at > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)
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
        assert!(us_ssn(b"123-45-6789"));
        assert!(!us_ssn(b"666-45-6789") && !us_ssn(b"123-00-6789") && !us_ssn(b"900-45-6789"));
        assert!(ipv4(b"192.168.10.4") && !ipv4(b"256.1.1.1") && !ipv4(b"01.2.3.4") && !ipv4(b"0.1.2.3"));
        assert!(ipv6(b"2001:db8::8a2e:370:7334") && !ipv6(b"std::io") && !ipv6(b"::1"));
        assert!(phone(b"+1 (415) 555-2671") && !phone(b"1234") && !phone(b"0000000000"));
        assert!(email(b"a.b@example.co.uk") && !email(b"user@localhost") && !email(b"x@y.123"));
    }

    #[test]
    fn entropy_of_uniform_and_constant_data() {
        assert_eq!(shannon_entropy(b"aaaa"), 0.0);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
        assert_eq!(shannon_entropy(b""), 0.0);
    }
}
