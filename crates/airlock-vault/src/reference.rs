//! Secret references in configuration: `${secret:NAME}`, `${secret:WORKSPACE/NAME}`, `${secret:SCHEME://...}`
//! (a value in another store: see [`crate::backend`] for the locators) and `${env:VAR}`.
//!
//! Why a parser and not a regex replace: a reference must never be half-resolved, a typo must never silently
//! pass through as literal text (a config with `${secret:GITHUB_TOKN}` would otherwise send that string as a
//! credential), and the result must live in zeroizing memory. `$${` escapes a literal `${`.

use zeroize::Zeroizing;

use crate::VaultError;
use crate::backend::Locator;

/// One piece of a parsed string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// A local vault name ([`Locator::Local`]) or a value in another store.
    Secret(Locator),
    Env(String),
}

/// Splits `input` into literals and references. Fails on an unterminated or unknown reference.
pub fn parse(input: &str, default_workspace: &str) -> Result<Vec<Segment>, VaultError> {
    let err = |m: String| VaultError::Reference(m);
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        lit.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(r) = after.strip_prefix("$${") {
            lit.push_str("${");
            rest = r;
        } else if let Some(r) = after.strip_prefix("${") {
            let end = r
                .find('}')
                .ok_or_else(|| err(format!("unterminated reference starting at byte {pos}: missing '}}'")))?;
            let inner = &r[..end];
            let seg = match inner.split_once(':') {
                Some(("secret", name)) => Segment::Secret(Locator::parse(name.trim(), default_workspace)?),
                Some(("env", var))
                    if !var.is_empty() && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                {
                    Segment::Env(var.to_string())
                }
                _ => {
                    return Err(err(format!(
                        "unknown reference ${{{inner}}}: expected ${{secret:NAME}}, ${{secret:SCHEME://...}} or ${{env:VAR}}"
                    )));
                }
            };
            if !lit.is_empty() {
                out.push(Segment::Literal(std::mem::take(&mut lit)));
            }
            out.push(seg);
            rest = &r[end + 1..];
        } else {
            lit.push('$');
            rest = &after[1..];
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        out.push(Segment::Literal(lit));
    }
    Ok(out)
}

/// Every secret `input` refers to.
pub fn secrets_referenced(input: &str, default_workspace: &str) -> Result<Vec<Locator>, VaultError> {
    Ok(parse(input, default_workspace)?
        .into_iter()
        .filter_map(|s| match s {
            Segment::Secret(id) => Some(id),
            _ => None,
        })
        .collect())
}

/// Replaces every reference in `input`. `secret` returns the bytes a locator names (which must be UTF-8 to be placed
/// in text), from the local vault or the store the locator's scheme names; `env` looks up a variable. The result is
/// zeroized on drop.
pub fn interpolate<E: From<VaultError>>(
    input: &str,
    default_workspace: &str,
    mut secret: impl FnMut(&Locator) -> Result<Zeroizing<Vec<u8>>, E>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Zeroizing<String>, E> {
    // Resolve every piece first, then build the result in one allocation of the exact size: a growing string
    // would move, leaving an unzeroized copy of the secrets so far in freed memory.
    let mut pieces: Vec<Zeroizing<String>> = Vec::new();
    for seg in parse(input, default_workspace)? {
        pieces.push(match seg {
            Segment::Literal(s) => Zeroizing::new(s),
            Segment::Secret(id) => {
                let v = secret(&id)?;
                let s = std::str::from_utf8(&v).map_err(|_| {
                    VaultError::Reference(format!("secret {id} is not UTF-8 text and cannot be placed in a string"))
                })?;
                Zeroizing::new(s.to_string())
            }
            Segment::Env(var) => Zeroizing::new(
                env(&var).ok_or_else(|| VaultError::Reference(format!("environment variable {var} is not set")))?,
            ),
        });
    }
    let mut out = Zeroizing::new(String::with_capacity(pieces.iter().map(|p| p.len()).sum()));
    for p in &pieces {
        out.push_str(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretId;

    fn id(ws: &str, n: &str) -> Locator {
        Locator::Local(SecretId::new(ws, n).unwrap())
    }

    #[test]
    fn parses_secrets_env_escapes_and_plain_dollars() {
        let s = parse("Bearer ${secret:TOKEN} ${secret:ci/NPM} $${secret:X} ${env:HOME} cost $5", "default").unwrap();
        assert_eq!(
            s,
            vec![
                Segment::Literal("Bearer ".into()),
                Segment::Secret(id("default", "TOKEN")),
                Segment::Literal(" ".into()),
                Segment::Secret(id("ci", "NPM")),
                Segment::Literal(" ${secret:X} ".into()),
                Segment::Env("HOME".into()),
                Segment::Literal(" cost $5".into()),
            ]
        );
    }

    #[test]
    fn locators_of_other_stores_parse_to_their_backend() {
        let s = parse("${secret:bao://secret/app#key}:${secret:keyring://svc/me}${secret:env://GH_TOKEN}", "default")
            .unwrap();
        assert_eq!(
            s,
            vec![
                Segment::Secret(Locator::Bao { mount: "secret".into(), path: "app".into(), field: "key".into() }),
                Segment::Literal(":".into()),
                Segment::Secret(Locator::Keyring { service: "svc".into(), user: "me".into() }),
                Segment::Secret(Locator::Env { name: "GH_TOKEN".into() }),
            ]
        );
    }

    #[test]
    fn typos_and_unterminated_references_are_errors_not_literals() {
        for bad in [
            "${secret:TOKEN",
            "${secrets:TOKEN}",
            "${TOKEN}",
            "${secret:}",
            "${secret:a/b/c}",
            "${env:A-B}",
            "${secret:bao://secret/app}",
            "${secret:bao://secret/../sys/seal#x}",
            "${secret:s3://bucket/key}",
            "${secret:env://1X}",
        ] {
            assert!(parse(bad, "default").is_err(), "{bad}");
        }
    }

    #[test]
    fn interpolation_resolves_and_reports_missing_and_binary() {
        let got = interpolate::<VaultError>(
            "Bearer ${secret:TOKEN}",
            "default",
            |i| {
                assert_eq!(i, &id("default", "TOKEN"));
                Ok(Zeroizing::new(b"abc".to_vec()))
            },
            |_| None,
        )
        .unwrap();
        assert_eq!(got.as_str(), "Bearer abc");
        let e =
            interpolate::<VaultError>("${secret:BIN}", "default", |_| Ok(Zeroizing::new(vec![0xff, 0xfe])), |_| None);
        assert!(matches!(e, Err(VaultError::Reference(m)) if m.contains("not UTF-8")));
        let e = interpolate::<VaultError>("${env:NOPE}", "default", |_| unreachable!(), |_| None);
        assert!(matches!(e, Err(VaultError::Reference(m)) if m.contains("NOPE")));
        let e = interpolate("${secret:GONE}", "default", |i| Err(VaultError::NotFound(i.to_string())), |_| None);
        assert!(matches!(e, Err(VaultError::NotFound(_))));
    }
}
