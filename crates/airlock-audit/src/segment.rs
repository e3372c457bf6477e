//! The log directory: segment files, the checkpoint file and the writer's lock.
//!
//! ```text
//! <dir>/lock                          held (flock) by the one writer
//! <dir>/readers, <dir>/readers.gate   verify and retention take turns (flock), see READERS_FILE
//! <dir>/checkpoints                   signed checkpoint notes, back to back
//! <dir>/segments/00000000000000000000.jsonl
//! <dir>/segments/00000000000000120000.jsonl   named by the seq of their first record
//! ```
//!
//! Why segments: rotation and retention work on whole files, so old records can be deleted without rewriting
//! the rest. Why a header line: each segment starts with the Merkle [`Frontier`] of everything before it and the
//! previous leaf hash, so after retention deletes the oldest segments the remaining suffix is still verifiable
//! against the signed checkpoints — the header can be checked (it must reproduce a signed root) but not trusted
//! alone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;

use crate::canonical;
use crate::merkle::{Frontier, Hash};
use crate::record::{hash_hex, parse_hash};

/// Largest segment any writer produces ([`crate::Options::segment_max_bytes`] is capped below it). Readers refuse
/// bigger files instead of loading them: a hostile multi-gigabyte "segment" must not exhaust memory.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 30;
/// Largest checkpoint file read (about two years of one-minute heartbeats).
pub const MAX_CHECKPOINT_FILE_BYTES: u64 = 256 << 20;

pub const SEGMENTS_DIR: &str = "segments";
pub const CHECKPOINTS_FILE: &str = "checkpoints";
pub const LOCK_FILE: &str = "lock";
/// Why: verify lists segments, then reads them; retention deleting some in between would make verify of a busy
/// live log chase a moving target. Verify holds this shared while it runs; retention deletes only while it holds
/// it exclusively, and never blocks the writer to get it: it tries once a round and puts its deletions off.
pub const READERS_FILE: &str = "readers";
/// Why: verifies run back to back would always hold [`READERS_FILE`] between them and starve retention. So a
/// verify takes this shared only to get in, and retention holds it exclusively while it waits for the verifies
/// already running.
pub const READERS_GATE_FILE: &str = "readers.gate";
const SEGMENT_SUFFIX: &str = ".jsonl";
const FORMAT_VERSION: u64 = 1;

pub fn segments_dir(dir: &Path) -> PathBuf {
    dir.join(SEGMENTS_DIR)
}

pub fn checkpoints_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINTS_FILE)
}

pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    segments_dir(dir).join(format!("{first_seq:020}{SEGMENT_SUFFIX}"))
}

/// The first seq a segment file name claims, if the name is one of ours.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What `segments/` holds: our segment files in seq order, and anything else (which verification reports).
#[derive(Debug, Default)]
pub struct Listing {
    pub segments: Vec<(u64, PathBuf)>,
    pub strays: Vec<PathBuf>,
}

pub fn list(dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing::default();
    let entries = match fs::read_dir(segments_dir(dir)) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        match entry.file_name().to_str().and_then(parse_segment_name) {
            Some(first) if entry.file_type()?.is_file() => listing.segments.push((first, path)),
            _ => listing.strays.push(path),
        }
    }
    listing.segments.sort_by_key(|(first, _)| *first);
    listing.strays.sort();
    Ok(listing)
}

/// The first line of a segment. Every field is checked by verification: `first_seq` against the file name and
/// the records, `prev` and `frontier` against the records before (or the signed roots after), `origin` against
/// the verifier's key name. Nothing unchecked (such as a creation time) belongs here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentHeader {
    pub first_seq: u64,
    /// Leaf hash of record `first_seq - 1` ([`crate::record::GENESIS_PREV`] for the first segment).
    pub prev: Hash,
    /// The tree over records `[0, first_seq)`.
    pub frontier: Frontier,
    pub origin: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderWire {
    airlock_audit_segment: u64,
    first_seq: u64,
    frontier: Vec<String>,
    origin: String,
    prev: String,
}

impl SegmentHeader {
    /// The header line, canonical JSON, without the newline.
    pub fn encode(&self) -> Vec<u8> {
        let frontier: Vec<String> = self.frontier.nodes().iter().map(hash_hex).collect();
        let v = json!({
            "airlock_audit_segment": FORMAT_VERSION,
            "first_seq": self.first_seq,
            "frontier": frontier,
            "origin": self.origin,
            "prev": hash_hex(&self.prev),
        });
        canonical::to_vec(&v).expect("header fields are strings and safe integers")
    }

    pub fn parse(line: &[u8]) -> Result<SegmentHeader, String> {
        let w: HeaderWire =
            serde_json::from_slice(line).map_err(|e| format!("not a segment header: {}", json_error(&e)))?;
        if w.airlock_audit_segment != FORMAT_VERSION {
            return Err(format!("unsupported segment format version {}", w.airlock_audit_segment));
        }
        let prev = parse_hash(&w.prev).ok_or("header `prev` is not 64 lowercase hex digits")?;
        let nodes = w
            .frontier
            .iter()
            .map(|h| parse_hash(h).ok_or("header `frontier` holds a value that is not 64 lowercase hex digits"))
            .collect::<Result<Vec<_>, _>>()?;
        let frontier = Frontier::from_parts(w.first_seq, nodes).map_err(|e| format!("header `frontier`: {e}"))?;
        let h = SegmentHeader { first_seq: w.first_seq, prev, frontier, origin: w.origin };
        if h.encode() != line {
            return Err("segment header is not in canonical form".into());
        }
        Ok(h)
    }
}

/// Splits a segment's bytes into its header line and its body, with the body's offset in the file. `None` when
/// there is no complete header line.
pub fn split_header(data: &[u8]) -> Option<(&[u8], &[u8], u64)> {
    let end = data.iter().position(|&b| b == b'\n')?;
    Some((&data[..end], &data[end + 1..], end as u64 + 1))
}

/// One line of a segment body and where it starts in the file.
#[derive(Debug)]
pub struct Line<'a> {
    pub offset: u64,
    pub bytes: &'a [u8],
    /// False for a final line without its newline: a write in progress, or one torn by a crash.
    pub complete: bool,
}

/// Splits `data` (starting at file offset `base`) into lines.
pub fn lines(data: &[u8], base: u64) -> impl Iterator<Item = Line<'_>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos >= data.len() {
            return None;
        }
        let start = pos;
        match data[pos..].iter().position(|&b| b == b'\n') {
            Some(n) => {
                pos += n + 1;
                Some(Line { offset: base + start as u64, bytes: &data[start..start + n], complete: true })
            }
            None => {
                pos = data.len();
                Some(Line { offset: base + start as u64, bytes: &data[start..], complete: false })
            }
        }
    })
}

/// Reads a whole file, refusing one larger than `max` bytes (checked on the open file, before reading).
pub fn read_capped(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    read_capped_file(fs::File::open(path)?, max)
}

/// [`read_capped`] on a file already open.
pub fn read_capped_file(file: fs::File, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let len = file.metadata()?.len();
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{len} bytes, more than the {max}-byte limit for this file"),
        ));
    }
    let mut data = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut data)?;
    if data.len() as u64 > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("grew past the {max}-byte limit while read")));
    }
    Ok(data)
}

/// Describes a JSON error by kind and position only: serde's own messages quote the offending text, and a
/// damaged line's text must not be echoed into reports and logs.
pub fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "malformed JSON",
        Category::Data => "a field is missing, unknown or of the wrong type",
        Category::Eof => "incomplete JSON",
    };
    format!("{what} at column {}", e.column())
}

/// One line of the checkpoint file: `{"note":"<C2SP signed note>"}`.
///
/// Why JSON Lines and not bare notes back to back: a crash mid-append must leave something a reader can tell
/// from a forgery, and "the last line has no newline" is that signal, exactly as for segments.
pub fn encode_checkpoint_line(note: &str) -> Vec<u8> {
    let mut line = canonical::to_vec(&json!({ "note": note })).expect("a string is canonical");
    line.push(b'\n');
    line
}

/// A checkpoint line as read back.
#[derive(Debug)]
pub struct CheckpointLine {
    pub offset: u64,
    pub note: Result<String, String>,
    pub complete: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointWire {
    note: String,
}

/// Reads the checkpoint file (empty if it does not exist).
pub fn read_checkpoint_file(dir: &Path) -> io::Result<(Vec<CheckpointLine>, u64)> {
    let data = match read_capped(&checkpoints_path(dir), MAX_CHECKPOINT_FILE_BYTES) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let out = lines(&data, 0)
        .map(|l| {
            let note = serde_json::from_slice::<CheckpointWire>(l.bytes)
                .map_err(|e| format!("not a checkpoint line: {}", json_error(&e)))
                .and_then(|w| {
                    let mut again = encode_checkpoint_line(&w.note);
                    again.pop();
                    if again == l.bytes { Ok(w.note) } else { Err("checkpoint line is not in canonical form".into()) }
                });
            CheckpointLine { offset: l.offset, note, complete: l.complete }
        })
        .collect();
    Ok((out, data.len() as u64))
}
