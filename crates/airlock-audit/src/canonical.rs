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
    let mut out = Vec::with_capacity(1024);
    write_into(value, &mut out)?;
    Ok(out)
}

/// Appends `value` in canonical form to `out`. On error `out` may hold a partial value.
pub fn write_into(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    write(value, out).map_err(|()| locate(value, &mut String::from("$")).expect("write failed, so locate finds it"))
}

/// The fast path: no error detail (the slow [`locate`] walk finds it when needed).
fn write(value: &Value, out: &mut Vec<u8>) -> Result<(), ()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) if u <= MAX_SAFE_INTEGER => write_int(out, u, false),
            (None, Some(i)) if i.unsigned_abs() <= MAX_SAFE_INTEGER => write_int(out, i.unsigned_abs(), i < 0),
            _ => return Err(()),
        },
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            out.push(b'{');
            // Maps usually arrive sorted already (serde_json's default map is ordered by bytes, which is UTF-16
            // order for ASCII keys); sort only when they are not.
            let ascii_sorted =
                map.keys().all(|k| k.is_ascii()) && map.keys().zip(map.keys().skip(1)).all(|(a, b)| a < b);
            let mut first = true;
            let mut member = |k: &String, v: &Value, out: &mut Vec<u8>| -> Result<(), ()> {
                if !std::mem::take(&mut first) {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write(v, out)
            };
            if ascii_sorted {
                for (k, v) in map {
                    member(k, v, out)?;
                }
            } else {
                let mut members: Vec<(&String, &Value)> = map.iter().collect();
                // UTF-16 order differs from UTF-8 byte order only for keys with characters above U+FFFF next to
                // ones in U+E000..U+FFFF; sorting by the UTF-16 encoding is right for every key.
                members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
                for (k, v) in members {
                    member(k, v, out)?;
                }
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Writes a decimal integer (as JSON and JCS spell it) without allocating.
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    write_int(out, n.unsigned_abs(), n < 0)
}

pub(crate) fn write_u64(out: &mut Vec<u8>, n: u64) {
    write_int(out, n, false)
}

fn write_int(out: &mut Vec<u8>, mut n: u64, negative: bool) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

/// Finds the first value [`write`] refuses, with its path.
fn locate(value: &Value, path: &mut String) -> Option<CanonicalError> {
    match value {
        Value::Number(n) if n.as_u64().is_none() && n.as_i64().is_none() => {
            Some(CanonicalError::Fraction { path: path.clone() })
        }
        Value::Number(n)
            if n.as_u64().unwrap_or_else(|| n.as_i64().map_or(0, i64::unsigned_abs)) > MAX_SAFE_INTEGER =>
        {
            Some(CanonicalError::IntegerRange { path: path.clone() })
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let r = locate(item, path);
            path.truncate(len);
            r
        }),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let len = path.len();
            path.push('.');
            path.push_str(k);
            let r = locate(v, path);
            path.truncate(len);
            r
        }),
        _ => None,
    }
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
        assert_eq!(
            canon(json!({"b": 1, "a": [true, null, "x"], "A": {"z": -3, "y": 0}})),
            r#"{"A":{"y":0,"z":-3},"a":[true,null,"x"],"b":1}"#
        );
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
