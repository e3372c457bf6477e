//! Known shapes of credentials: provider formats, checksums, and tell-tale placeholders.
//!
//! Why: two common mistakes put an agent in trouble quietly. Storing `changeme` or a provider's documentation
//! example means a tool fails later with a confusing 401; storing a Stripe *test* key where a live one was meant,
//! or a value that doesn't match its provider's format, usually means a copy-paste slip. `airlock secret set`
//! warns about each. The same tables tell [`crate::surrogate`] which prefix to keep.

/// A provider whose keys have a recognisable prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    pub name: &'static str,
    /// Literal prefix kept by surrogates.
    pub prefix: &'static str,
    /// Total length range of a well-formed key, prefix included.
    pub len: (usize, usize),
    /// Characters allowed after the prefix.
    pub charset: Charset,
    /// The last six characters are a CRC32 checksum (GitHub/npm scheme).
    pub crc32_checksum: bool,
    /// Hosts and name fragments that suggest this provider.
    pub hints: &'static [&'static str],
    /// Keys with this prefix are test/sandbox keys.
    pub test_key: bool,
    /// Characters that mark the format's structure (Slack's `-` between its numeric parts), kept in place by
    /// surrogates. Everything else after the prefix is data, drawn afresh.
    pub separators: &'static [u8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    Base62,
    /// Base62 plus `-` and `_`.
    UrlSafe,
    /// `A-Z2-7`.
    Base32Upper,
}

impl Charset {
    /// Every character keys of this format may use after the prefix.
    pub fn alphabet(self) -> &'static [u8] {
        match self {
            Charset::Base62 => BASE62,
            Charset::UrlSafe => b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_",
            Charset::Base32Upper => b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
        }
    }

    fn allows(self, c: u8) -> bool {
        match self {
            Charset::Base62 => c.is_ascii_alphanumeric(),
            Charset::UrlSafe => c.is_ascii_alphanumeric() || c == b'-' || c == b'_',
            Charset::Base32Upper => c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c),
        }
    }
}

const GH: &[&str] = &["github", "gh_"];
const fn gh(prefix: &'static str) -> Provider {
    Provider {
        name: "GitHub",
        prefix,
        len: (40, 40),
        charset: Charset::Base62,
        crc32_checksum: true,
        hints: GH,
        test_key: false,
        separators: b"",
    }
}

/// Longest prefixes first, so `sk-ant-` wins over `sk-`.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "SendGrid",
        prefix: "SG.",
        len: (69, 69),
        charset: Charset::UrlSafe,
        crc32_checksum: false,
        hints: &["sendgrid"],
        test_key: false,
        separators: b".",
    },
    Provider {
        name: "GitHub fine-grained",
        prefix: "github_pat_",
        len: (93, 93),
        charset: Charset::UrlSafe,
        crc32_checksum: false,
        hints: GH,
        test_key: false,
        separators: b"_",
    },
    Provider {
        name: "Anthropic",
        prefix: "sk-ant-",
        len: (90, 130),
        charset: Charset::UrlSafe,
        crc32_checksum: false,
        hints: &["anthropic", "claude"],
        test_key: false,
        separators: b"",
    },
    Provider {
        name: "OpenAI project",
        prefix: "sk-proj-",
        len: (56, 200),
        charset: Charset::UrlSafe,
        crc32_checksum: false,
        hints: &["openai"],
        test_key: false,
        separators: b"",
    },
    Provider {
        name: "Stripe test",
        prefix: "sk_test_",
        len: (32, 120),
        charset: Charset::Base62,
        crc32_checksum: false,
        hints: &["stripe"],
        test_key: true,
        separators: b"",
    },
    Provider {
        name: "Stripe",
        prefix: "sk_live_",
        len: (32, 120),
        charset: Charset::Base62,
        crc32_checksum: false,
        hints: &["stripe"],
        test_key: false,
        separators: b"",
    },
    Provider {
        name: "Stripe restricted",
        prefix: "rk_live_",
        len: (32, 120),
        charset: Charset::Base62,
        crc32_checksum: false,
        hints: &["stripe"],
        test_key: false,
        separators: b"",
    },
    Provider {
        name: "GitLab",
        prefix: "glpat-",
        len: (26, 60),
        charset: Charset::UrlSafe,
        crc32_checksum: false,
        hints: &["gitlab"],
        test_key: false,
        separators: b"",
    },
    Provider {
        name: "Slack bot",
        prefix: "xoxb-",
        len: (40, 120),
        charset: Charset::UrlSafe,
        crc32_checksum: false,
        hints: &["slack"],
        test_key: false,
        separators: b"-",
    },
    Provider {
        name: "Slack user",
        prefix: "xoxp-",
        len: (40, 120),
        charset: Charset::UrlSafe,
        crc32_checksum: false,
        hints: &["slack"],
        test_key: false,
        separators: b"-",
    },
    gh("ghp_"),
    gh("gho_"),
    gh("ghu_"),
    gh("ghs_"),
    gh("ghr_"),
    Provider {
        name: "npm",
        prefix: "npm_",
        len: (40, 40),
        charset: Charset::Base62,
        crc32_checksum: true,
        hints: &["npm"],
        test_key: false,
        separators: b"",
    },
    Provider {
        name: "AWS access key id",
        prefix: "AKIA",
        len: (20, 20),
        charset: Charset::Base32Upper,
        crc32_checksum: false,
        hints: &["aws", "amazonaws"],
        test_key: false,
        separators: b"",
    },
    Provider {
        name: "AWS temporary key id",
        prefix: "ASIA",
        len: (20, 20),
        charset: Charset::Base32Upper,
        crc32_checksum: false,
        hints: &["aws", "amazonaws"],
        test_key: false,
        separators: b"",
    },
    Provider {
        name: "Google API key",
        prefix: "AIza",
        len: (39, 39),
        charset: Charset::UrlSafe,
        crc32_checksum: false,
        hints: &["googleapis", "google"],
        test_key: false,
        separators: b"",
    },
    Provider {
        name: "OpenAI",
        prefix: "sk-",
        len: (40, 200),
        charset: Charset::UrlSafe,
        crc32_checksum: false,
        hints: &["openai"],
        test_key: false,
        separators: b"",
    },
];

/// The provider whose prefix `value` starts with, if any.
pub fn detect(value: &[u8]) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| value.starts_with(p.prefix.as_bytes()))
}

/// Base62 in GitHub's order: digits, upper case, lower case.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The six-character checksum GitHub and npm append to a token: CRC32 of the random part, base62, zero-padded.
pub fn crc32_base62(random_part: &[u8]) -> [u8; 6] {
    let mut n = crc32(random_part);
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// What `check_value_format` found. None of these carry the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Looks like a placeholder or documentation example rather than a real credential.
    Placeholder(&'static str),
    /// A provider's test/sandbox key.
    TestKey(&'static str),
    /// Has a provider's prefix but not its length, characters or checksum.
    Malformed { provider: &'static str, problem: &'static str },
    /// The name or pinned hosts suggest a provider, but the value has none of its prefixes.
    UnexpectedFormat { provider: &'static str },
    /// Shorter than 8 bytes: easily guessed, and too short for a surrogate to stand in for without colliding.
    TooShort(usize),
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Placeholder(why) => write!(f, "the value looks like a placeholder ({why})"),
            Finding::TestKey(p) => write!(f, "the value is a {p} key (test/sandbox, not live)"),
            Finding::Malformed { provider, problem } => write!(f, "the value has the {provider} prefix but {problem}"),
            Finding::TooShort(n) => write!(
                f,
                "the value is only {n} bytes: easily guessed, and too short for leak detection or surrogates to \
                 tell it apart from ordinary text"
            ),
            Finding::UnexpectedFormat { provider } => {
                write!(f, "the name or hosts suggest {provider}, but the value does not have any {provider} key prefix")
            }
        }
    }
}

const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change_me",
    "change-me",
    "password",
    "passw0rd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "test",
    "testing",
    "dummy",
    "placeholder",
    "example",
    "sample",
    "todo",
    "fixme",
    "null",
    "none",
    "undefined",
    "redacted",
    "your-api-key",
    "your_api_key",
    "yourapikey",
    "insert-key-here",
    "xxx",
    "foo",
    "bar",
    "foobar",
    "letmein",
    "admin",
    "default",
    "12345678",
    "123456789",
    "1234567890",
    "qwerty",
];

/// Documentation examples that circulate as if they were real keys.
const DOC_EXAMPLES: &[&str] =
    &["AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"];

/// Checks a value (with its name and pinned hosts as context) for placeholders, test keys and format slips.
pub fn check_value_format(name: &str, hosts: &[String], value: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    if value.len() < 8 {
        out.push(Finding::TooShort(value.len()));
    }
    let text = std::str::from_utf8(value).ok();
    if let Some(t) = text {
        let lower = t.trim().to_ascii_lowercase();
        if PLACEHOLDER_WORDS.contains(&lower.as_str()) {
            out.push(Finding::Placeholder("a common placeholder word"));
        } else if DOC_EXAMPLES.iter().any(|d| t.contains(d)) || lower.contains("example") {
            out.push(Finding::Placeholder("a documentation example"));
        } else if (lower.starts_with('<') && lower.ends_with('>')) || lower.starts_with("${") || lower.contains("your")
        {
            out.push(Finding::Placeholder("a template to fill in"));
        } else if lower.len() >= 4 && lower.bytes().all(|b| b == lower.as_bytes()[0]) {
            out.push(Finding::Placeholder("one repeated character"));
        } else if lower.contains("xxxxxx") {
            out.push(Finding::Placeholder("a run of x's"));
        }
    }
    match detect(value) {
        Some(p) => {
            if p.test_key {
                out.push(Finding::TestKey(p.name));
            }
            if let Some(problem) = format_problem(p, value) {
                out.push(Finding::Malformed { provider: p.name, problem });
            }
        }
        None => {
            let context = std::iter::once(name.to_ascii_lowercase())
                .chain(hosts.iter().map(|h| h.to_ascii_lowercase()))
                .collect::<Vec<_>>();
            let mut named = PROVIDERS.iter().filter(|p| p.hints.iter().any(|h| context.iter().any(|c| c.contains(h))));
            // Only warn for providers whose keys always carry a prefix.
            if let Some(p) = named.next()
                && !matches!(p.name, "AWS access key id" | "AWS temporary key id")
            {
                out.push(Finding::UnexpectedFormat { provider: family(p.name) });
            }
        }
    }
    out
}

fn family(name: &'static str) -> &'static str {
    match name {
        n if n.starts_with("GitHub") => "GitHub",
        n if n.starts_with("OpenAI") => "OpenAI",
        n if n.starts_with("Stripe") => "Stripe",
        n if n.starts_with("Slack") => "Slack",
        n => n,
    }
}

/// Whether `value` is a well-formed key of provider `p` (prefix, length, characters, checksum).
pub fn matches(p: &Provider, value: &[u8]) -> bool {
    format_problem(p, value).is_none()
}

fn format_problem(p: &Provider, value: &[u8]) -> Option<&'static str> {
    if value.len() < p.len.0 || value.len() > p.len.1 {
        return Some("not its length");
    }
    let body = &value[p.prefix.len()..];
    if !body.iter().all(|c| p.charset.allows(*c) || p.separators.contains(c)) {
        return Some("characters it never uses");
    }
    if p.crc32_checksum {
        let (random, check) = body.split_at(body.len() - 6);
        if crc32_base62(random) != check {
            return Some("its checksum does not match (a typo or a truncated copy?)");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_checksum_matches_published_example() {
        // Published in Serious.Cryptography's checksum tests: random part -> checksum.
        assert_eq!(&crc32_base62(b"fIkRGaBu5PeKsznMzXQOg3kETH1Sgx"), b"2oIfSC");
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn valid_github_token_has_no_findings_and_a_typo_is_caught() {
        let good = b"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";
        assert_eq!(check_value_format("GITHUB_TOKEN", &[], good), vec![]);
        let typo = b"ghp_fIkRGaBu5PeKsznMzXQOg3kETH1Sgy2oIfSC";
        assert!(matches!(
            check_value_format("GITHUB_TOKEN", &[], typo)[..],
            [Finding::Malformed { provider: "GitHub", .. }]
        ));
    }

    #[test]
    fn placeholders_test_keys_and_wrong_providers_are_flagged() {
        assert!(matches!(check_value_format("X", &[], b"changeme")[..], [Finding::Placeholder(_)]));
        assert!(matches!(check_value_format("X", &[], b"AKIAIOSFODNN7EXAMPLE")[0], Finding::Placeholder(_)));
        assert!(matches!(check_value_format("X", &[], b"<your key here>")[..], [Finding::Placeholder(_)]));
        let stripe_test = b"sk_test_4eC39HqLyjWDarjtT1zdp7dcAbCdEfGh";
        assert!(check_value_format("STRIPE", &[], stripe_test).contains(&Finding::TestKey("Stripe test")));
        let f = check_value_format("OPENAI_API_KEY", &["api.openai.com".into()], b"AbCdEf0123456789AbCdEf0123456789");
        assert_eq!(f, vec![Finding::UnexpectedFormat { provider: "OpenAI" }]);
        assert_eq!(check_value_format("DB_PASSWORD", &[], b"Zq8#mL2!vR9@wX4$"), vec![]);
        assert_eq!(check_value_format("PIN", &[], b"4711"), vec![Finding::TooShort(4)]);
    }

    #[test]
    fn findings_never_echo_the_value() {
        let v = b"ghp_fIkRGaBu5PeKsznMzXQOg3kETH1Sgy2oIfSC";
        for f in check_value_format("GITHUB_TOKEN", &[], v) {
            assert!(!f.to_string().contains("fIkRGaBu"), "{f}");
        }
    }
}
