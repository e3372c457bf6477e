//! Late references in config values: `${secret:NAME}`, `${secret:SCHEME://...}` (a value in another store, such
//! as `bao://secret/siem#token`) and `${env:VAR}`.
//!
//! This crate never resolves them; it only checks that they are well formed, name declared secrets and use a
//! store the file configures, so a typo fails at load time instead of being sent as a literal credential. Resolution happens at the point of
//! use (the vault's `reference` module), into zeroizing memory, and never into an error message. `$${` is a
//! literal `${`.

/// One reference found in a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A secret declared under `[secrets]`: read from its `source`, else the local vault.
    Secret(String),
    /// `SCHEME://...`: a value read straight from another store. The scheme and store are checked by the model;
    /// the rest is parsed by the backend that reads it.
    Source(String),
    Env(String),
}

/// The references in `value`, or why it is malformed. Literal text is skipped.
pub fn scan(value: &str) -> Result<Vec<Reference>, String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos..];
        if let Some(r) = after.strip_prefix("$${") {
            rest = r;
        } else if let Some(r) = after.strip_prefix("${") {
            let end = r.find('}').ok_or("unterminated reference: missing '}'")?;
            let inner = &r[..end];
            out.push(match inner.split_once(':') {
                Some(("secret", name)) if valid_secret_name(name) => Reference::Secret(name.to_string()),
                Some(("secret", loc)) if loc.contains("://") => {
                    if loc.chars().any(char::is_control) {
                        return Err("malformed ${secret:SCHEME://...}: control characters are not allowed".into());
                    }
                    Reference::Source(loc.to_string())
                }
                Some(("env", var)) if valid_env_name(var) => Reference::Env(var.to_string()),
                Some(("secret", _)) => {
                    return Err("malformed ${secret:NAME}: NAME must be a secret name or a SCHEME://... locator".into());
                }
                Some(("env", _)) => return Err("malformed ${env:VAR}: VAR must be an environment variable name".into()),
                _ => {
                    return Err(format!(
                        "unknown reference ${{{inner}}}: expected ${{secret:NAME}}, ${{secret:SCHEME://...}} or ${{env:VAR}}"
                    ));
                }
            });
            rest = &r[end + 1..];
        } else {
            rest = &after[1..];
        }
    }
    Ok(out)
}

/// Secret names as the vault writes them: `NAME` or `WORKSPACE/NAME`.
pub fn valid_secret_name(name: &str) -> bool {
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 128
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    match name.split_once('/') {
        Some((ws, n)) => ok_part(ws) && ok_part(n),
        None => ok_part(name),
    }
}

fn valid_env_name(var: &str) -> bool {
    let mut b = var.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_kind_and_skips_escapes() {
        let r = scan("Bearer ${secret:GH} $${literal} ${env:HOME_DIR} ${secret:bao://secret/siem#token}").unwrap();
        assert_eq!(
            r,
            vec![
                Reference::Secret("GH".into()),
                Reference::Env("HOME_DIR".into()),
                Reference::Source("bao://secret/siem#token".into())
            ]
        );
    }

    #[test]
    fn rejects_unknown_and_unterminated() {
        assert!(scan("${vault:x}").unwrap_err().contains("unknown reference"));
        assert!(scan("${secret:GH").unwrap_err().contains("unterminated"));
        assert!(scan("${env:1X}").is_err());
        assert!(scan("${secret:a b}").is_err());
    }
}
