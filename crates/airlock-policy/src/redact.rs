//! `[redact]` vocabulary: the personal-data families `airlock run` can mask in tool output, and the syntax of the
//! rule ids `[redact] disable` names.
//!
//! The masking itself belongs to `airlock-redact` and the binary; this crate only checks what the config says, so
//! that a misspelt family or rule id is a load error at its line rather than a family that is silently never
//! masked. Whether a disabled rule exists depends on the rule files, which the binary reads, so only the id's
//! syntax is checked here.

/// Every personal-data family, in the order the docs list them; `[redact] pii` defaults to all of them.
pub const PII_FAMILIES: &[&str] = &["email", "phone", "credit-card", "iban", "us-ssn", "ip-address"];

/// The families masked in tool output when `[redact] pii` is absent: all but `ip-address`. Addresses are what an
/// agent's network tools print and act on (`dig`, `curl -v`, logs); masking them by default would break that work
/// for little gain, so they are masked only when asked for.
pub const DEFAULT_PII_FAMILIES: &[&str] = &["email", "phone", "credit-card", "iban", "us-ssn"];

/// Whether `id` can be a rule id: 1-64 of `a-z`, `0-9` and `-`.
pub fn valid_rule_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::valid_rule_id;

    #[test]
    fn rule_ids_are_short_lowercase_words_with_hyphens() {
        for ok in ["generic-password-assignment", "aws-access-key-id", "x", "a1", &"a".repeat(64)] {
            assert!(valid_rule_id(ok), "{ok}");
        }
        for bad in ["", "Generic", "a_b", "a b", "a.b", "é", &"a".repeat(65)] {
            assert!(!valid_rule_id(bad), "{bad}");
        }
    }
}
