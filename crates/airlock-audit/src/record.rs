//! The stored form of one record: a line of canonical JSON around an OCSF event.
//!
//! ```text
//! {"event":{...OCSF...},"logged":1763797200123,"prev":"<64 hex>","seq":41}
//! ```
//!
//! Why these fields: `seq` makes a deleted or reordered record visible at the exact place it happened; `prev`
//! (the previous record's leaf hash) makes an edited record visible at the next one, so verification can name
//! the first bad record instead of only saying "the root differs"; `logged` is the writer's clock, held
//! monotonic so records cannot be back-dated. The Merkle leaf is [`crate::merkle::leaf_hash`] of the line's
//! exact bytes (without the newline), which is why the line must be canonical: one event, one byte string.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::merkle::{Hash, leaf_hash};

/// `prev` of record 0.
pub const GENESIS_PREV: Hash = [0u8; 32];

/// Writes the record line for `event_json` (already canonical) to `out`, without a newline.
pub fn encode_into(seq: u64, logged_ms: i64, prev: &Hash, event_json: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"event\":");
    out.extend_from_slice(event_json);
    out.extend_from_slice(b",\"logged\":");
    crate::canonical::write_i64(out, logged_ms);
    out.extend_from_slice(b",\"prev\":\"");
    let mut hex_buf = [0u8; 64];
    hex::encode_to_slice(prev, &mut hex_buf).expect("64 bytes for 32");
    out.extend_from_slice(&hex_buf);
    out.extend_from_slice(b"\",\"seq\":");
    crate::canonical::write_u64(out, seq);
    out.push(b'}');
}

/// A parsed record line, borrowing the event's JSON text.
#[derive(Debug)]
pub struct RecordLine<'a> {
    pub seq: u64,
    pub logged_ms: i64,
    pub prev: Hash,
    pub event: &'a RawValue,
    /// The Merkle leaf hash of the line.
    pub leaf: Hash,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow)]
    event: &'a RawValue,
    logged: i64,
    prev: &'a str,
    seq: u64,
}

/// Why a line is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not a record: {0}")]
    Json(String),
    #[error("`prev` is not 64 lowercase hex digits")]
    Prev,
    #[error("the event is not a JSON object")]
    EventNotObject,
    #[error("not in canonical form (key order, spacing or number format differ from what the writer produces)")]
    NotCanonical,
}

impl<'a> RecordLine<'a> {
    /// Parses and checks one line (without its newline). The envelope must be byte-for-byte what
    /// [`encode_into`] writes, so a record has exactly one valid spelling.
    pub fn parse(line: &'a [u8]) -> Result<RecordLine<'a>, LineError> {
        let wire: Wire<'a> =
            serde_json::from_slice(line).map_err(|e| LineError::Json(crate::segment::json_error(&e)))?;
        let prev = parse_hash(wire.prev).ok_or(LineError::Prev)?;
        if !wire.event.get().starts_with('{') {
            return Err(LineError::EventNotObject);
        }
        let mut again = Vec::with_capacity(line.len());
        encode_into(wire.seq, wire.logged, &prev, wire.event.get().as_bytes(), &mut again);
        if again != line {
            return Err(LineError::NotCanonical);
        }
        Ok(RecordLine { seq: wire.seq, logged_ms: wire.logged, prev, event: wire.event, leaf: leaf_hash(line) })
    }

    /// The OCSF event as sinks and exports see it: with `metadata.sequence`, `metadata.logged_time` and, given the
    /// origin of the log it was read from, `metadata.log_name`.
    pub fn export_event(&self, origin: Option<&str>) -> Result<serde_json::Value, LineError> {
        let mut v: serde_json::Value =
            serde_json::from_str(self.event.get()).map_err(|e| LineError::Json(crate::segment::json_error(&e)))?;
        stamp(&mut v, self.seq, self.logged_ms, origin);
        Ok(v)
    }
}

/// Fills in `metadata.sequence` and `metadata.logged_time` on an event value, and `metadata.log_name` (the log's
/// origin, as its checkpoints name it) where given: records that several logs send to one collector (daemons behind a
/// load balancer) are then told apart, and each is matched with the checkpoints that cover it by (origin, sequence).
pub fn stamp(event: &mut serde_json::Value, seq: u64, logged_ms: i64, origin: Option<&str>) {
    if let Some(obj) = event.as_object_mut() {
        let meta = obj.entry("metadata").or_insert_with(|| serde_json::json!({}));
        if let Some(m) = meta.as_object_mut() {
            m.insert("sequence".into(), seq.into());
            m.insert("logged_time".into(), logged_ms.into());
            if let Some(o) = origin {
                m.insert("log_name".into(), o.into());
            }
        }
    }
}

/// Lowercase hex of a hash.
pub fn hash_hex(h: &Hash) -> String {
    hex::encode(h)
}

/// Parses exactly 64 lowercase hex digits (uppercase is refused so that a hash has one spelling).
pub fn parse_hash(s: &str) -> Option<Hash> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_spellings() {
        let mut line = Vec::new();
        encode_into(7, 1_700_000_000_123, &[0xab; 32], br#"{"a":1}"#, &mut line);
        let r = RecordLine::parse(&line).unwrap();
        assert_eq!((r.seq, r.logged_ms, r.prev), (7, 1_700_000_000_123, [0xab; 32]));
        assert_eq!(r.leaf, leaf_hash(&line));
        let text = String::from_utf8(line.clone()).unwrap();
        for bad in [
            text.replace("\"seq\":7", "\"seq\": 7"),
            text.replace("abab", "ABAB"),
            text.replace("\"seq\":7", "\"seq\":7,\"x\":1"),
            text.replace("\"seq\":7", "\"seq\":7.0"),
            format!("{text} "),
        ] {
            assert!(RecordLine::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let reordered = format!(r#"{{"logged":1700000000123,"event":{{"a":1}},"prev":"{}","seq":7}}"#, "ab".repeat(32));
        assert_eq!(RecordLine::parse(reordered.as_bytes()).unwrap_err(), LineError::NotCanonical);
    }
}
