//! Reading the log while it is being written: `tail`, `query`, `export` and proofs.
//!
//! Why no lock: readers only ever read whole lines. The writer appends complete lines and syncs; a final line
//! without its newline is a write in progress (or a torn one) and is simply not yet visible. Segments are
//! created by rename with their header already in place, so a reader never sees half a header.
//!
//! Readers do not verify (that is [`crate::verify()`]); a line that does not parse is reported as an error with
//! its place, never skipped silently.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{AuditError, io_err};
use crate::event::{self, Class, Decision};
use crate::merkle::{Frontier, Hash};
use crate::record::RecordLine;
use crate::segment::{self, SegmentHeader};

/// One record as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub seq: u64,
    pub logged_ms: i64,
    pub leaf: Hash,
    /// The OCSF event with `metadata.sequence`, `metadata.logged_time` and `metadata.log_name` (the origin its
    /// segment's header names, as the log's checkpoints and its sinks' copies do) filled in.
    pub event: Value,
}

fn parse_line(path: &Path, offset: u64, bytes: &[u8], origin: Option<&str>) -> Result<Stored, AuditError> {
    let corrupt = |reason: String| AuditError::Corrupt { path: path.to_path_buf(), reason };
    let rec = RecordLine::parse(bytes).map_err(|e| corrupt(format!("record at offset {offset}: {e}")))?;
    let event = rec.export_event(origin).map_err(|e| corrupt(format!("record at offset {offset}: {e}")))?;
    Ok(Stored { seq: rec.seq, logged_ms: rec.logged_ms, leaf: rec.leaf, event })
}

/// The origin a segment's header line names. Readers do not verify, so a header that does not parse is reported.
fn header_origin(path: &Path, header: &[u8]) -> Result<String, AuditError> {
    SegmentHeader::parse(header)
        .map(|h| h.origin)
        .map_err(|reason| AuditError::Corrupt { path: path.to_path_buf(), reason })
}

/// Calls `f` with every complete record in seq order, stopping early if it returns `false`.
pub fn for_each(dir: &Path, f: impl FnMut(Stored) -> bool) -> Result<(), AuditError> {
    for_each_from(dir, 0, f)
}

/// [`for_each`] from record `from` on: a cursor for reading a log in pages, or following it. Segments that end
/// before `from` are not read (a segment is named by its first seq, and the next one's name says where it ends),
/// and lines before `from` within a segment are passed over by the seq at their end, unparsed: so a page costs one
/// segment, not the log. A line passed over is not checked; that is `verify`'s work, as it is for every reader.
pub fn for_each_from(dir: &Path, from: u64, mut f: impl FnMut(Stored) -> bool) -> Result<(), AuditError> {
    let listing = segment::list(dir).map_err(io_err(segment::segments_dir(dir), "list"))?;
    for (i, (_, path)) in listing.segments.iter().enumerate() {
        if listing.segments.get(i + 1).is_some_and(|(next, _)| *next <= from) {
            continue;
        }
        let data = segment::read_capped(path, segment::MAX_SEGMENT_BYTES).map_err(io_err(path, "read"))?;
        let Some((header, body, at)) = segment::split_header(&data) else { continue };
        let origin = header_origin(path, header)?;
        for line in segment::lines(body, at) {
            if !line.complete {
                break;
            }
            if from > 0 && trailing_seq(line.bytes).is_some_and(|seq| seq < from) {
                continue;
            }
            let r = parse_line(path, line.offset, line.bytes, Some(&origin))?;
            if r.seq < from {
                continue;
            }
            if !f(r) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The newest `limit` records for which `keep` holds, oldest first. Segments are read newest first, and reading
/// stops once the answer is complete: `tail -n` and "the latest records" cost the segments the answer spans, not
/// the whole log. A segment that retention removed while we read is passed over (its records are gone anyway).
pub fn newest(dir: &Path, limit: usize, mut keep: impl FnMut(&Stored) -> bool) -> Result<Vec<Stored>, AuditError> {
    let listing = segment::list(dir).map_err(io_err(segment::segments_dir(dir), "list"))?;
    // One chunk per segment read, newest segment first; each chunk in seq order.
    let mut chunks: Vec<Vec<Stored>> = Vec::new();
    let mut count = 0;
    for (_, path) in listing.segments.iter().rev() {
        if count >= limit {
            break;
        }
        let data = match segment::read_capped(path, segment::MAX_SEGMENT_BYTES) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(AuditError::Io { path: path.clone(), op: "read", source: e }),
        };
        let Some((header, body, at)) = segment::split_header(&data) else { continue };
        let origin = header_origin(path, header)?;
        let mut kept = Vec::new();
        for line in segment::lines(body, at) {
            if !line.complete {
                break;
            }
            let r = parse_line(path, line.offset, line.bytes, Some(&origin))?;
            if keep(&r) {
                kept.push(r);
            }
        }
        let surplus = kept.len().saturating_sub(limit - count);
        kept.drain(..surplus);
        count += kept.len();
        chunks.push(kept);
    }
    Ok(chunks.into_iter().rev().flatten().collect())
}

/// The seq a record line ends with (`...,"seq":41}`, as [`crate::record::encode_into`] writes it), read without
/// parsing the line.
fn trailing_seq(line: &[u8]) -> Option<u64> {
    let body = line.strip_suffix(b"}")?;
    let digits = body.len() - body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if !body[..digits].ends_with(b",\"seq\":") {
        return None;
    }
    std::str::from_utf8(&body[digits..]).ok()?.parse().ok()
}

/// The leaf hashes of every retained record, with the tree over the records retention removed.
pub fn leaves(dir: &Path) -> Result<(Frontier, Vec<Hash>), AuditError> {
    let listing = segment::list(dir).map_err(io_err(segment::segments_dir(dir), "list"))?;
    let mut pruned = None;
    let mut leaves = Vec::new();
    for (_, path) in &listing.segments {
        let data = segment::read_capped(path, segment::MAX_SEGMENT_BYTES).map_err(io_err(path, "read"))?;
        let Some((header, body, at)) = segment::split_header(&data) else { continue };
        let header =
            SegmentHeader::parse(header).map_err(|reason| AuditError::Corrupt { path: path.clone(), reason })?;
        let pruned = pruned.get_or_insert_with(|| header.frontier.clone());
        if header.first_seq != pruned.size() + leaves.len() as u64 {
            return Err(AuditError::Corrupt {
                path: path.clone(),
                reason: "segments are not contiguous; run `airlock audit verify`".into(),
            });
        }
        for line in segment::lines(body, at) {
            if !line.complete {
                break;
            }
            leaves.push(crate::merkle::leaf_hash(line.bytes));
        }
    }
    Ok((pruned.unwrap_or_default(), leaves))
}

/// Which records `query` returns. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Inclusive, milliseconds since the epoch, on the time the log accepted the record.
    pub since_ms: Option<i64>,
    /// Exclusive.
    pub until_ms: Option<i64>,
    pub classes: Vec<Class>,
    pub actor: Option<String>,
    pub decision: Option<Decision>,
}

impl Filter {
    pub fn matches(&self, r: &Stored) -> bool {
        if self.since_ms.is_some_and(|s| r.logged_ms < s) || self.until_ms.is_some_and(|u| r.logged_ms >= u) {
            return false;
        }
        if !self.classes.is_empty() {
            let uid = r.event.get("class_uid").and_then(Value::as_u64);
            if !self.classes.iter().any(|c| Some(u64::from(c.uid())) == uid) {
                return false;
            }
        }
        if let Some(a) = &self.actor
            && event::actor_of(&r.event) != Some(a.as_str())
        {
            return false;
        }
        if let Some(d) = self.decision
            && event::decision_of(&r.event) != Some(d.as_str())
        {
            return false;
        }
        true
    }
}

/// Follows the log like `tail -f`: returns records as they become complete, across rotations.
#[derive(Debug)]
pub struct Follower {
    dir: PathBuf,
    segment: Option<(u64, PathBuf)>,
    offset: u64,
    partial: Vec<u8>,
    /// Seq of the next record to show: also the name of the segment that follows the current one.
    next_seq: Option<u64>,
    /// The current segment's origin, from its header.
    origin: Option<String>,
}

impl Follower {
    /// Starts after the last `backlog` records already in the log, which it returns.
    pub fn new(dir: &Path, backlog: usize) -> Result<(Follower, Vec<Stored>), AuditError> {
        let listing = segment::list(dir).map_err(io_err(segment::segments_dir(dir), "list"))?;
        let mut f = Follower {
            dir: dir.to_path_buf(),
            segment: listing.segments.last().cloned(),
            offset: 0,
            partial: vec![],
            next_seq: None,
            origin: None,
        };
        // Position after the complete lines of the newest segment first, then take the backlog from before that
        // point: a record appended meanwhile is then shown once, by `poll`, rather than by neither.
        let mut boundary = 0;
        if let Some((first, path)) = &f.segment {
            boundary = *first;
            let data = segment::read_capped(path, segment::MAX_SEGMENT_BYTES).map_err(io_err(path, "read"))?;
            f.offset = data.iter().rposition(|&b| b == b'\n').map_or(0, |p| p as u64 + 1);
            if let Some((header, body, _)) = segment::split_header(&data) {
                f.origin = Some(header_origin(path, header)?);
                // Records in a segment are numbered on from its name.
                let complete = f.offset.saturating_sub(header.len() as u64 + 1) as usize;
                boundary = first + body[..complete].iter().filter(|&&b| b == b'\n').count() as u64;
            }
        }
        let backlog = if backlog == 0 { Vec::new() } else { newest(dir, backlog, |r| r.seq < boundary)? };
        Ok((f, backlog))
    }

    /// Records completed since the last call.
    pub fn poll(&mut self) -> Result<Vec<Stored>, AuditError> {
        let mut out = Vec::new();
        // A bounded number of segments per call, so a writer rotating as fast as we read cannot keep one call
        // (and its output) growing for ever.
        for _ in 0..64 {
            let Some((first, path)) = self.segment.clone() else {
                let listing = segment::list(&self.dir).map_err(io_err(segment::segments_dir(&self.dir), "list"))?;
                self.segment = listing.segments.first().cloned();
                self.offset = 0;
                if self.segment.is_none() {
                    return Ok(out);
                }
                continue;
            };
            // List before reading: once a newer segment exists the writer never appends to this one again, so
            // reading this one to its end *after* seeing the newer one cannot miss a record.
            let listing = segment::list(&self.dir).map_err(io_err(segment::segments_dir(&self.dir), "list"))?;
            let next = listing.segments.into_iter().find(|(f, _)| *f > first);
            let mut file = match fs::File::open(&path) {
                Ok(f) => f,
                // Removed by retention while we followed it: carry on with whatever comes next.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && next.is_some() => {
                    self.segment = next;
                    self.offset = 0;
                    continue;
                }
                Err(e) => return Err(AuditError::Io { path, op: "open", source: e }),
            };
            let len = file.metadata().map_err(io_err(&path, "stat"))?.len();
            if len < self.offset {
                // The writer cut the file back after a failed write: those records were never kept (the log says
                // so in its next record). Resume at the last complete line.
                let mut head = Vec::new();
                (&mut file).take(len).read_to_end(&mut head).map_err(io_err(&path, "read"))?;
                self.offset = head.iter().rposition(|&b| b == b'\n').map_or(0, |p| p as u64 + 1);
            }
            file.seek(SeekFrom::Start(self.offset)).map_err(io_err(&path, "seek"))?;
            let mut data = Vec::new();
            (&mut file).take(segment::MAX_SEGMENT_BYTES).read_to_end(&mut data).map_err(io_err(&path, "read"))?;
            let mut consumed = 0usize;
            while let Some(n) = data[consumed..].iter().position(|&b| b == b'\n') {
                let line = &data[consumed..consumed + n];
                let at = self.offset + consumed as u64;
                consumed += n + 1;
                if at == 0 {
                    self.origin = Some(header_origin(&path, line)?);
                    continue;
                }
                let record = parse_line(&path, at, line, self.origin.as_deref())?;
                self.next_seq = Some(record.seq + 1);
                out.push(record);
            }
            self.offset += consumed as u64;
            self.partial = data[consumed..].to_vec();
            // The segment after this one is named by the next seq. A directory listing taken while the writer
            // renames a new segment into place may miss it (readdir is no snapshot), so prefer the name we know.
            let next = match (next, self.next_seq.filter(|&n| n > first)) {
                (Some(listed), Some(n)) => {
                    let known = segment::segment_path(&self.dir, n);
                    if known.is_file() { Some((n, known)) } else { Some(listed) }
                }
                (listed, _) => listed,
            };
            match next {
                Some(next) if self.partial.is_empty() => {
                    self.segment = Some(next);
                    self.offset = 0;
                }
                _ => return Ok(out),
            }
        }
        Ok(out)
    }
}
