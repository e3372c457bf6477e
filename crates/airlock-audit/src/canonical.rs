//! RFC 8785 (JSON Canonicalization Scheme) for the values the audit log stores.
//!
//! Why: a record's hash covers its exact bytes, so the same event must always serialise to the same bytes, on
//! every version of Airlock and in any other language that wants to re-derive a record. JCS gives that: object
//! members sorted by their UTF-16 code units, no insignificant whitespace, and ECMAScript string escaping (which
//! is what `serde_json` emits: `\"`, `\\`, the short escapes `\b \t \n \f \r`, other controls as lowercase
//! `\u00xx`, everything else literal).
//!
//! The one part of JCS we do not implement is ECMAScript number formatting for non-integers. Audit events hold
//! no fractions, so instead of formatting them we refuse them, along with integers outside ±2^53 (which
//! JavaScript cannot represent exactly). A value we cannot canonicalise is an error, never a silent rewrite.

use serde_json::Value;

/// Largest integer an IEEE double (and so every JCS implementation) holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("{path}: non-integer numbers are not allowed in audit records")]
    Fraction { path: String },
    #[error("{path}: integer outside ±2^53 cannot be represented exactly in canonical JSON")]
    IntegerRange { path: String },
}

/// Serialises `value` in canonical form.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(512);
    write(value, &mut out, &mut String::from("$"))?;
    Ok(out)
}

/// Appends `value` in canonical form to `out`.
pub fn write_into(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    write(value, out, &mut String::from("$"))
}

fn write(value: &Value, out: &mut Vec<u8>, path: &mut String) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                if u > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::IntegerRange { path: path.clone() });
                }
                out.extend_from_slice(u.to_string().as_bytes());
            } else if let Some(i) = n.as_i64() {
                if i.unsigned_abs() > MAX_SAFE_INTEGER {
                    return Err(CanonicalError::IntegerRange { path: path.clone() });
                }
                out.extend_from_slice(i.to_string().as_bytes());
            } else {
                return Err(CanonicalError::Fraction { path: path.clone() });
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                write(item, out, path)?;
                path.truncate(len);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            // UTF-16 order differs from UTF-8 byte order only when a key holds characters above U+FFFF next to
            // ones in U+E000..U+FFFF; sorting by the UTF-16 encoding is right for every key.
            if members.iter().all(|(k, _)| k.is_ascii()) {
                members.sort_unstable_by(|a, b| a.0.cmp(b.0));
            } else {
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            }
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                let len = path.len();
                path.push('.');
                path.push_str(k);
                write(v, out, path)?;
                path.truncate(len);
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is exactly ECMAScript's JSON.stringify escaping (see the module docs).
    serde_json::to_writer(&mut *out, s).expect("writing a string to a Vec cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(v: Value) -> String {
        String::from_utf8(to_vec(&v).unwrap()).unwrap()
    }

    #[test]
    fn sorts_members_and_drops_whitespace() {
        assert_eq!(canon(json!({"b": 1, "a": [true, null, "x"], "A": {"z": -3, "y": 0}})), r#"{"A":{"y":0,"z":-3},"a":[true,null,"x"],"b":1}"#);
    }

    #[test]
    fn escapes_like_ecmascript() {
        // RFC 8785 §3.2.2.2: controls use the short forms where they exist, else lowercase \u00xx; U+007F, non-ASCII
        // and U+2028 stay literal; '/' is not escaped.
        let s = "\u{0}\u{8}\t\n\u{c}\r\u{1f}\"\\/\u{7f}é\u{2028}😀";
        assert_eq!(canon(json!(s)), "\"\\u0000\\b\\t\\n\\f\\r\\u001f\\\"\\\\/\u{7f}é\u{2028}😀\"");
    }

    #[test]
    fn sorts_by_utf16_code_units_not_bytes() {
        // RFC 8785 §3.2.3's example: U+1F600 (surrogates D83D DE00) sorts before U+FB33 in UTF-16, after it in UTF-8.
        let v = json!({"\u{fb33}": 1, "\u{1f600}": 2, "a": 0});
        assert_eq!(canon(v), "{\"a\":0,\"\u{1f600}\":2,\"\u{fb33}\":1}");
    }

    #[test]
    fn refuses_what_it_cannot_canonicalise() {
        assert_eq!(to_vec(&json!({"x": [1.5]})), Err(CanonicalError::Fraction { path: "$.x[0]".into() }));
        assert_eq!(to_vec(&json!(1u64 << 53)), Err(CanonicalError::IntegerRange { path: "$".into() }));
        assert_eq!(to_vec(&json!(-(1i64 << 53))), Err(CanonicalError::IntegerRange { path: "$".into() }));
        assert_eq!(canon(json!(MAX_SAFE_INTEGER)), "9007199254740991");
        assert_eq!(canon(json!(-(MAX_SAFE_INTEGER as i64))), "-9007199254740991");
    }
}
