//! Surrogates: random stand-ins for secrets that keep each secret's visible shape.
//!
//! Why: a tool inside the sandbox needs *something* in `GITHUB_TOKEN`, and many clients validate the format
//! (prefix, length, GitHub's CRC32 checksum) before sending a request. A surrogate passes those checks, but is
//! worthless outside Airlock: only the broker, holding the [`SurrogateMap`] for that run, swaps it for the real
//! value, and only toward the secret's pinned hosts.
//!
//! What is kept: the length, the *alphabet* of the value (hex stays hex, base62 stays base62), base64 padding,
//! and, only for recognised token formats (a known provider prefix, or a JWT), the prefix and the positions of
//! the format's separators (`xoxb-…-…-…`, `header.payload.signature`). What is not kept: which character class
//! sits at which position, nor where a free-form password has its symbols. Copying those would leak part of
//! the real secret to the tool (about 1.4 bits per character for class positions); drawing every character
//! uniformly from the alphabet leaks only the alphabet.

use std::collections::{HashMap, HashSet};

use airlock_crypto::{Key32, kdf, random};

use crate::SecretId;
use crate::formats::{self, BASE62};

/// Values shorter than this cannot be hidden by any stand-in (a 4-digit PIN collides with random strings), so
/// they get opaque surrogates and no containment check.
const MIN_HIDDEN_LEN: usize = 8;

/// Generates a fresh surrogate for `value`. For values of 8 bytes or more, never equal to the value and never
/// containing it. Always terminates: a value whose shape leaves nothing to randomise (all separators, say) falls
/// back to an opaque surrogate.
pub fn generate(value: &[u8]) -> String {
    let acceptable = |s: &str| value.len() < MIN_HIDDEN_LEN || !contains(s.as_bytes(), value);
    for _ in 0..16 {
        let s = generate_once(value);
        if acceptable(&s) {
            return s;
        }
    }
    generate_opaque(value)
}

/// An opaque surrogate that does not contain `value` (for values of 8 bytes or more).
fn generate_opaque(value: &[u8]) -> String {
    let acceptable = |s: &str| value.len() < MIN_HIDDEN_LEN || !contains(s.as_bytes(), value);
    let s = opaque();
    if acceptable(&s) {
        return s;
    }
    // The value is a piece of the opaque prefix itself ("airlock-surrogate"): use bare random hex, which contains
    // a given 8-byte string with probability below 2^-26 per draw.
    loop {
        let s = random_from(b"0123456789abcdef", 48);
        if acceptable(&s) {
            return s;
        }
    }
}

/// `header.payload.signature`, each part base64url.
fn is_jwt(value: &[u8]) -> bool {
    let parts: Vec<&[u8]> = value.split(|b| *b == b'.').collect();
    parts.len() == 3
        && parts.iter().all(|p| p.len() >= 4 && p.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_'))
}

fn opaque() -> String {
    format!("airlock-surrogate-{}", random_from(b"0123456789abcdef", 32))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| airlock_crypto::ct_eq(w, needle))
}

fn generate_once(value: &[u8]) -> String {
    let printable = !value.is_empty() && value.iter().all(|b| (0x21..=0x7e).contains(b));
    if !printable || value.len() < MIN_HIDDEN_LEN {
        // Binary, whitespace-bearing or very short values: no shape worth keeping, and a same-shape stand-in of a
        // 4-digit PIN would collide with it too often. Use an unmistakable surrogate instead.
        return opaque();
    }
    // A value counts as a provider's token only if it fully matches that format; a password that merely starts
    // with `sk-` is free-form. A format contributes its prefix, its own alphabet and its structural separators
    // (and nothing of the value: `-` inside an OpenAI key is data, drawn afresh like any other character).
    let provider = formats::detect(value).filter(|p| formats::matches(p, value));
    let (prefix_len, separators, alphabet): (usize, &[u8], Vec<u8>) = match provider {
        Some(p) => {
            let alphabet = p.charset.alphabet().iter().copied().filter(|c| !p.separators.contains(c)).collect();
            (p.prefix.len(), p.separators, alphabet)
        }
        None if is_jwt(value) => (0, b".", BASE64URL.to_vec()),
        None => (0, b"", alphabet_of(value)),
    };
    let body = &value[prefix_len..];
    let mut out: Vec<u8> = value[..prefix_len].to_vec();
    let checksum = provider.is_some_and(|p| p.crc32_checksum);
    let random_len = if checksum { body.len() - 6 } else { body.len() };
    // Free-form base64 keeps its `=` padding (it only restates the length); in a password `=` is just a symbol.
    let padding = if provider.is_none() { base64_padding(body) } else { 0 };
    for (i, &c) in body[..random_len].iter().enumerate() {
        if i >= body.len() - padding || separators.contains(&c) {
            out.push(c);
        } else {
            out.push(alphabet[random::below(alphabet.len() as u32) as usize]);
        }
    }
    if checksum {
        let sum = formats::crc32_base62(&out[prefix_len..]);
        out.extend_from_slice(&sum);
    }
    String::from_utf8(out).expect("ASCII by construction")
}

const BASE64URL: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/// The length of a trailing `=` run, if the rest of `v` is base64 (standard or URL-safe); else 0.
fn base64_padding(v: &[u8]) -> usize {
    let padding = v.iter().rev().take_while(|b| **b == b'=').count();
    let rest = &v[..v.len() - padding];
    if padding <= 2 && !rest.is_empty() && rest.iter().all(|c| c.is_ascii_alphanumeric() || b"+/-_".contains(c)) {
        padding
    } else {
        0
    }
}

fn random_from(alphabet: &[u8], n: usize) -> String {
    (0..n).map(|_| alphabet[random::below(alphabet.len() as u32) as usize] as char).collect()
}

/// The smallest common alphabet that covers a free-form value's characters (base64 padding aside).
fn alphabet_of(value: &[u8]) -> Vec<u8> {
    let core = &value[..value.len() - base64_padding(value)];
    let all = |f: fn(&u8) -> bool| core.iter().all(f);
    if all(|c| c.is_ascii_digit()) {
        return b"0123456789".to_vec();
    }
    if all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
        return b"0123456789abcdef".to_vec();
    }
    if all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c)) {
        return b"0123456789ABCDEF".to_vec();
    }
    if all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(c)) {
        return b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".to_vec();
    }
    if all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return b"abcdefghijklmnopqrstuvwxyz0123456789".to_vec();
    }
    if all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) {
        return b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".to_vec();
    }
    if all(u8::is_ascii_alphanumeric) {
        return BASE62.to_vec();
    }
    // Anything else printable: base62 plus the symbols the value uses (e.g. `!@#`), each drawn anywhere.
    let mut a = BASE62.to_vec();
    for &c in core {
        if !a.contains(&c) {
            a.push(c);
        }
    }
    a
}

/// The surrogates of one run, mapping back to the secrets they stand for. Held only inside Airlock.
pub struct SurrogateMap {
    by_surrogate: HashMap<String, SecretId>,
    by_id: HashMap<SecretId, String>,
    /// Keyed fingerprints of the real values in the map: no surrogate may equal any secret's real value (with
    /// low-entropy shapes, one secret's surrogate could otherwise be another's value, handed to the tool).
    fingerprint_key: Key32,
    values: HashSet<[u8; 32]>,
}

impl Default for SurrogateMap {
    fn default() -> Self {
        SurrogateMap {
            by_surrogate: HashMap::new(),
            by_id: HashMap::new(),
            fingerprint_key: Key32::random(),
            values: HashSet::new(),
        }
    }
}

impl std::fmt::Debug for SurrogateMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SurrogateMap({} entries)", self.by_id.len())
    }
}

impl SurrogateMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// The surrogate for `id` in this run, generating it on first use. Stable for the life of the map. Unique
    /// among this map's surrogates, and equal to no real value registered so far. (A value registered *later*
    /// that equals an earlier surrogate cannot be helped; it needs a low-entropy shape, and the broker still only
    /// swaps toward pinned hosts.)
    pub fn surrogate_for(&mut self, id: &SecretId, value: &[u8]) -> &str {
        if !self.by_id.contains_key(id) {
            self.values.insert(kdf::hmac_sha256(&self.fingerprint_key, value));
            let fresh = |s: &String, m: &Self| {
                !m.by_surrogate.contains_key(s)
                    && !m.values.contains(&kdf::hmac_sha256(&m.fingerprint_key, s.as_bytes()))
            };
            let mut chosen = None;
            for _ in 0..64 {
                let s = generate(value);
                if fresh(&s, self) {
                    chosen = Some(s);
                    break;
                }
            }
            // The value's shape has run out of distinct surrogates (say, many `1-------`): go opaque, where
            // collisions are negligible.
            let s = match chosen {
                Some(s) => s,
                None => loop {
                    let s = generate_opaque(value);
                    if fresh(&s, self) {
                        break s;
                    }
                },
            };
            self.by_surrogate.insert(s.clone(), id.clone());
            self.by_id.insert(id.clone(), s);
        }
        &self.by_id[id]
    }

    /// Which secret `candidate` stands for, if it is one of this run's surrogates.
    pub fn lookup(&self, candidate: &str) -> Option<&SecretId> {
        self.by_surrogate.get(candidate)
    }

    /// All (surrogate, secret) pairs, for building a matcher.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SecretId)> {
        self.by_surrogate.iter().map(|(s, id)| (s.as_str(), id))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{Finding, check_value_format};

    #[test]
    fn github_surrogates_keep_prefix_length_and_a_valid_checksum() {
        let real = b"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";
        for _ in 0..50 {
            let s = generate(real);
            assert!(s.starts_with("ghp_"));
            assert_eq!(s.len(), real.len());
            assert_ne!(s.as_bytes(), real);
            assert_eq!(check_value_format("GITHUB_TOKEN", &[], s.as_bytes()), Vec::<Finding>::new(), "{s}");
        }
    }

    #[test]
    fn alphabet_and_separators_are_kept() {
        let aws = b"AKIAQWERTYUIOPASDFGH";
        let s = generate(aws);
        assert!(s.starts_with("AKIA") && s.len() == 20);
        assert!(s[4..].bytes().all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c)), "{s}");
        let hex = b"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert!(generate(hex).bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let slack = b"xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx";
        let s = generate(slack);
        assert_eq!(s.len(), slack.len());
        assert_eq!(s.match_indices('-').map(|m| m.0).collect::<Vec<_>>(), vec![4, 15, 26]);
        let b64 = b"c2VjcmV0LXZhbHVlLWZvci10ZXN0cw==";
        assert!(generate(b64).ends_with("=="));
    }

    #[test]
    fn class_positions_are_not_copied() {
        // If character classes were copied per position, the digit positions would always match.
        let real = b"aaaaaaaaaaaaaaaaaaaa1111111111111111111B";
        let differs = (0..20).any(|_| {
            let s = generate(real);
            s.as_bytes()[..20].iter().any(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        });
        assert!(differs);
    }

    #[test]
    fn binary_and_short_values_get_opaque_surrogates() {
        assert!(generate(b"\x00\xff\x10binary").starts_with("airlock-surrogate-"));
        assert!(generate(b"1234").starts_with("airlock-surrogate-"));
        assert!(generate(b"has space in it").starts_with("airlock-surrogate-"));
    }

    #[test]
    fn values_with_nothing_to_randomise_still_get_a_different_surrogate() {
        // Each of these once looped forever: the shape-keeping generator can only reproduce them.
        let all_separators = b"--------".to_vec();
        let prefix_then_separators = [b"ghp_".to_vec(), vec![b'_'; 36]].concat();
        let piece_of_the_opaque_prefix = b"airlock-surrogate".to_vec();
        for v in [all_separators, prefix_then_separators, piece_of_the_opaque_prefix] {
            let s = generate(&v);
            assert!(
                !s.as_bytes().windows(v.len()).any(|w| w == &v[..]),
                "{s} contains {:?}",
                String::from_utf8_lossy(&v)
            );
        }
        // Short values are below the hiding threshold: they get an opaque surrogate, even if it contains them.
        assert!(generate(b"ate-").starts_with("airlock-surrogate-"));
    }

    #[test]
    fn free_form_passwords_keep_no_symbol_positions() {
        let real = b"k7:Qz/9+wE.r_Tx-Lm=8!a";
        // With symbols at fixed positions, every surrogate would share them; drawn uniformly, they rarely line up.
        let mut same_positions = 0;
        for _ in 0..20 {
            let s = generate(real);
            assert_eq!(s.len(), real.len());
            let kept = s.bytes().zip(real.iter()).filter(|(a, b)| a == *b && !b.is_ascii_alphanumeric()).count();
            if kept == 7 {
                same_positions += 1;
            }
        }
        assert_eq!(same_positions, 0);
    }

    #[test]
    fn data_characters_of_structured_tokens_are_not_kept_in_place() {
        // `-` and `_` inside a Google key, an OpenAI key or a JWT signature are data, not structure.
        let google = b"AIzaSyB1c2D3e4-F5g6H7i8j9K0l_M1n2O3p4Q5";
        let jwt = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let password = b"sk-9!x/Q+z=7:w.r_T-Lm=8@a";
        for (real, marks) in [(&google[..], &b"-_"[..]), (&jwt[..], &b"_"[..]), (&password[..], &b"!/+=:._-@"[..])] {
            let positions: Vec<usize> =
                real.iter().enumerate().filter(|(_, c)| marks.contains(c)).map(|(i, _)| i).collect();
            let all_kept = (0..50).all(|_| {
                let s = generate(real);
                assert_eq!(s.len(), real.len());
                positions.iter().all(|&i| s.as_bytes()[i] == real[i])
            });
            assert!(!all_kept, "{}: data characters stayed in place", String::from_utf8_lossy(real));
        }
        // A free-form value that merely starts with a provider prefix does not keep it either.
        assert!((0..20).any(|_| !generate(password).starts_with("sk-")));
    }

    #[test]
    fn jwt_keeps_its_dots() {
        let jwt = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let s = generate(jwt);
        assert_eq!(s.match_indices('.').map(|m| m.0).collect::<Vec<_>>(), vec![20, 48]);
    }

    #[test]
    fn exhausted_shapes_fall_back_instead_of_hanging_and_never_hand_out_another_secrets_value() {
        let mut m = SurrogateMap::new();
        // `N-------` has only ten possible same-shape surrogates; register twelve such secrets.
        for n in 0..12u8 {
            let value = [&[b'0' + (n % 10)][..], b"-------", if n >= 10 { b"x" } else { b"" }].concat();
            let id = SecretId::new("default", &format!("S{n}")).unwrap();
            let s = m.surrogate_for(&id, &value).to_string();
            for k in 0..10u8 {
                let other = [&[b'0' + k][..], b"-------"].concat();
                if k <= n {
                    assert_ne!(s.as_bytes(), &other[..], "S{n} was handed the real value of another secret");
                }
            }
        }
        assert_eq!(m.len(), 12);
    }

    #[test]
    fn map_is_stable_per_run_and_maps_back() {
        let mut m = SurrogateMap::new();
        let id = SecretId::new("default", "GITHUB_TOKEN").unwrap();
        let s1 = m.surrogate_for(&id, b"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").to_string();
        let s2 = m.surrogate_for(&id, b"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").to_string();
        assert_eq!(s1, s2);
        assert_eq!(m.lookup(&s1), Some(&id));
        assert_eq!(m.lookup("ghp_notit"), None);
        let other = SurrogateMap::new();
        assert_eq!(other.lookup(&s1), None);
    }
}
