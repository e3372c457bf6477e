//! How a found secret is replaced in output.
//!
//! Two styles. `[REDACTED:rule-id]` says what was there and hides everything else. Shape-keeping masking keeps
//! the length and the punctuation (and a rule's public prefix, such as `ghp_`), so column-aligned output, JSON
//! and logs keep their layout and a reader can still tell a token from a URL; every letter and digit of the
//! secret itself becomes `*`.

/// The masking style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskStyle {
    /// `[REDACTED:rule-id]`.
    #[default]
    Label,
    /// Same length: the rule's `keep_prefix` bytes, then `*` for every letter, digit and non-ASCII character,
    /// with ASCII punctuation, spaces and line breaks kept.
    Shape,
}

impl MaskStyle {
    pub fn from_name(name: &str) -> Option<MaskStyle> {
        match name {
            "label" => Some(MaskStyle::Label),
            "shape" => Some(MaskStyle::Shape),
            _ => None,
        }
    }

    /// Appends the mask for `secret` (found by rule `rule`) to `out`.
    pub fn mask(&self, rule: &str, keep_prefix: usize, secret: &[u8], out: &mut Vec<u8>) {
        match self {
            MaskStyle::Label => {
                out.extend_from_slice(b"[REDACTED:");
                out.extend_from_slice(rule.as_bytes());
                out.push(b']');
            }
            MaskStyle::Shape => {
                let keep = keep_prefix.min(secret.len() / 2);
                out.extend_from_slice(&secret[..keep]);
                for &b in &secret[keep..] {
                    match b {
                        // UTF-8 continuation bytes: the lead byte already became one `*`.
                        0x80..=0xBF => {}
                        b if b.is_ascii_alphanumeric() || b >= 0xC0 => out.push(b'*'),
                        b => out.push(b),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(style: MaskStyle, keep: usize, secret: &str) -> String {
        let mut out = Vec::new();
        style.mask("some-rule", keep, secret.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn label_names_the_rule_only() {
        assert_eq!(masked(MaskStyle::Label, 4, "ghp_abc"), "[REDACTED:some-rule]");
    }

    #[test]
    fn shape_keeps_prefix_length_and_punctuation() {
        assert_eq!(masked(MaskStyle::Shape, 4, "ghp_aB3-x.9"), "ghp_***-*.*");
        assert_eq!(masked(MaskStyle::Shape, 0, "pä55\nword"), "****\n****");
    }

    #[test]
    fn shape_never_keeps_more_than_half_of_a_short_secret() {
        assert_eq!(masked(MaskStyle::Shape, 8, "abcd"), "ab**");
    }
}
