//! Verification: is this log exactly what the writer wrote, and is all of it still here?
//!
//! Why each check exists (each one catches an attack in `tests/security`):
//! - **signatures** on every checkpoint, under a key the verifier trusts (not one read from the log
//!   directory): a forger who rewrites the whole log self-consistently cannot sign it;
//! - **roots**: every checkpoint's root is recomputed from the records, so any change to a signed record —
//!   however consistently the forger rewrote the chain after it — shows up;
//! - **`seq` and `prev`** on every record: a deleted, reordered or edited record is named exactly, not just
//!   "somewhere before checkpoint N";
//! - **sizes**: a checkpoint larger than the log means the tail was cut; a trusted checkpoint kept off-box
//!   (`--checkpoint`) catches a cut that also removed the local checkpoints;
//! - **segment headers** must continue the records before them, and a missing oldest segment must be explained
//!   by a retention record;
//! - **time**: record times never go backwards, and no checkpoint predates the records it signs.
//!
//! Records after the newest checkpoint are covered only by the hash chain, which a forger can recompute, so the
//! report says how many there are. A torn final record (a crash mid-write; never acknowledged) is reported
//! separately from tampering: `airlock audit repair` removes it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::checkpoint::{Checkpoint, NoteVerifier, split_notes};
use crate::error::{AuditError, io_err};
use crate::merkle::{Frontier, Hash};
use crate::record::RecordLine;
use crate::segment::{self, SegmentHeader};

/// Extra inputs to verification.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Checkpoint notes obtained elsewhere (a SIEM, a previous verify run), trusted if their signature is.
    pub trusted_notes: Vec<String>,
    /// Fail if the newest checkpoint is older than this many milliseconds before `now_ms` (a heartbeat is
    /// missing: the writer stopped, or someone removed its recent checkpoints).
    pub max_checkpoint_age_ms: Option<i64>,
    pub now_ms: i64,
}

/// One thing wrong with the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The first record the problem concerns, when it concerns one.
    pub seq: Option<u64>,
    pub path: Option<PathBuf>,
    pub offset: Option<u64>,
    pub message: String,
}

impl Problem {
    /// A problem with the log as a whole, not with one record or file.
    fn about_the_log(message: impl Into<String>) -> Problem {
        Problem { seq: None, path: None, offset: None, message: message.into() }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(seq) = self.seq {
            write!(f, "seq {seq}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(p) = &self.path {
            write!(f, " ({}", p.display())?;
            if let Some(o) = self.offset {
                write!(f, " at offset {o}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A final record cut short by a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    pub offset: u64,
    pub bytes: u64,
    /// The seq the torn record would have had.
    pub seq: u64,
}

/// What verification found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Seq of the oldest retained record.
    pub first_seq: u64,
    /// Records read (the tree size is `first_seq + records`).
    pub records: u64,
    pub segments: usize,
    pub bytes: u64,
    /// Checkpoints whose root was recomputed from the records and matched.
    pub checkpoints_matched: usize,
    /// Checkpoints signed before the oldest retained record: only their signatures could be checked.
    pub checkpoints_predating: usize,
    pub latest_checkpoint: Option<Checkpoint>,
    /// Records after the newest checkpoint (protected by the hash chain only).
    pub unsigned_records: u64,
    pub problems: Vec<Problem>,
    pub torn_tail: Option<TornTail>,
    /// Offset of an incomplete final line in the checkpoint file (a crash while signing).
    pub torn_checkpoint: Option<u64>,
    /// Files in `segments/` that are not segments.
    pub strays: Vec<PathBuf>,
    /// A segment reported missing exists after all: the listing raced a rotation, and verify runs again.
    listing_raced: bool,
}

impl Report {
    pub fn tree_size(&self) -> u64 {
        self.first_seq + self.records
    }

    /// True when nothing is wrong: no problem and nothing torn.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.torn_tail.is_none() && self.torn_checkpoint.is_none()
    }

    /// The first problem that names a record, else the first problem.
    pub fn first_bad(&self) -> Option<&Problem> {
        self.problems.iter().filter(|p| p.seq.is_some()).min_by_key(|p| p.seq).or(self.problems.first())
    }
}

/// A checkpoint and where it came from.
struct Known {
    cp: Checkpoint,
    source: String,
}

/// Verifies the log in `dir` with `verifier`. `Err` only when the directory cannot be read at all; everything
/// wrong with its contents is a [`Problem`] in the report.
pub fn verify(dir: &Path, verifier: &NoteVerifier, opts: &VerifyOptions) -> Result<Report, AuditError> {
    // A live log's retention waits while we hold `<dir>/readers` shared. Should it delete anyway (it waits only
    // so long), or should there be no such file (an archived copy), a segment deleted between listing and reading
    // it makes us start again, a few times.
    let _pin = ReadersPin::take(dir);
    let mut attempt = 0;
    loop {
        match verify_once(dir, verifier, opts) {
            Err(AuditError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound && attempt < 3 => {
                attempt += 1;
            }
            // A gap whose segment exists now was a listing taken mid-rotation (readdir is no snapshot).
            Ok(report) if report.listing_raced && attempt < 3 => attempt += 1,
            other => return other,
        }
    }
}

/// A shared lock on `<dir>/readers`, held for the whole verify (closing the file releases it); none if the files
/// are missing (an archived copy) or retention holds the gate for longer than we wait.
struct ReadersPin {
    _file: Option<fs::File>,
}

impl ReadersPin {
    fn take(dir: &Path) -> ReadersPin {
        let (Some(gate), Some(file)) =
            (open_lock(dir, segment::READERS_GATE_FILE), open_lock(dir, segment::READERS_FILE))
        else {
            return ReadersPin { _file: None };
        };
        // Retention shuts the gate while it waits for running verifies, then deletes: usually a second or so.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match gate.try_lock_shared() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(_) => return ReadersPin { _file: None },
            }
        }
        // Retention holds the readers lock only while holding the gate: this cannot wait.
        let pinned = file.try_lock_shared().is_ok();
        drop(gate);
        ReadersPin { _file: pinned.then_some(file) }
    }
}

fn open_lock(dir: &Path, name: &str) -> Option<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits()).open(dir.join(name)).ok()
}

fn verify_once(dir: &Path, verifier: &NoteVerifier, opts: &VerifyOptions) -> Result<Report, AuditError> {
    let mut report = Report::default();
    // A live log changes under us: retention deletes the oldest segments, rotation adds new ones. So: open the
    // segments first (an open file stays readable after retention unlinks it), then read the checkpoints (every
    // record they sign was written before them), then read the segments, looking for newer ones at the end.
    let listing = segment::list(dir).map_err(io_err(segment::segments_dir(dir), "list"))?;
    report.strays = listing.strays.clone();
    let mut queue: std::collections::VecDeque<(u64, PathBuf, Option<fs::File>)> = Default::default();
    for (i, (first, path)) in listing.segments.into_iter().enumerate() {
        if i >= EAGER_OPEN {
            queue.push_back((first, path, None));
            continue;
        }
        match fs::File::open(&path) {
            Ok(f) => queue.push_back((first, path, Some(f))),
            // Removed by retention since the listing: it is older than everything still to come, skip it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && queue.is_empty() => {}
            Err(e) => return Err(AuditError::Io { path, op: "open", source: e }),
        }
    }
    let checkpoints = {
        let mut c = load_checkpoints(dir, verifier, opts, &mut report)?;
        c.sort_by_key(|k| k.cp.size);
        c
    };

    let signed_size = checkpoints.last().map_or(0, |k| k.cp.size);
    let mut walk = Walk::new(dir, checkpoints, verifier.name());
    let mut index = 0;
    while let Some((mut first, mut path, mut file)) = queue.pop_front() {
        // readdir is no snapshot: a segment renamed into place while it ran can be missing from the listing.
        // The next segment's name is known (the next seq), so look for it by name before calling it a gap.
        if index > 0 && first > walk.expected {
            let by_name = segment::segment_path(dir, walk.expected);
            if let Ok(f) = fs::File::open(&by_name) {
                queue.push_front((first, path, file));
                (first, path, file) = (walk.expected, by_name, Some(f));
            }
        }
        // Segments created since the listing hold records the checkpoints we loaded may sign: look for them, but
        // only as far as those checkpoints reach, or a writer faster than we read would keep us here for ever.
        if queue.is_empty() && signed_size > first {
            let newer = segment::list(dir).map_err(io_err(segment::segments_dir(dir), "list"))?;
            for (f, p) in newer.segments.into_iter().filter(|(f, _)| *f > first) {
                queue.push_back((f, p, None));
            }
        }
        let file = match file {
            Some(f) => f,
            None => fs::File::open(&path).map_err(io_err(&path, "open"))?,
        };
        let data = match segment::read_capped_file(file, segment::MAX_SEGMENT_BYTES) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                // Not read at all: no writer makes a segment this big, and loading it could exhaust memory.
                report.problems.push(Problem {
                    seq: Some(first),
                    path: Some(path.clone()),
                    offset: None,
                    message: format!("segment not read: {e}"),
                });
                break;
            }
            Err(e) => return Err(AuditError::Io { path: path.clone(), op: "read", source: e }),
        };
        report.bytes += data.len() as u64;
        report.segments += 1;
        walk.segment(&mut report, index == 0, queue.is_empty(), first, &path, &data);
        index += 1;
    }
    walk.finish(&mut report, opts);
    Ok(report)
}

/// Segments opened before the checkpoints are read (see `verify_once`); beyond this many, the rest are opened
/// as they are reached, to stay within the file-descriptor limit.
const EAGER_OPEN: usize = 256;

fn load_checkpoints(
    dir: &Path,
    verifier: &NoteVerifier,
    opts: &VerifyOptions,
    report: &mut Report,
) -> Result<Vec<Known>, AuditError> {
    let path = segment::checkpoints_path(dir);
    let (lines, _) = segment::read_checkpoint_file(dir).map_err(io_err(&path, "read"))?;
    let mut out: Vec<Known> = Vec::new();
    let mut previous: Option<Checkpoint> = None;
    let count = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        let problem =
            |message: String| Problem { seq: None, path: Some(path.clone()), offset: Some(line.offset), message };
        if !line.complete && i + 1 == count {
            // A crash while appending a checkpoint: it signed nothing yet, and the writer cuts it off on open.
            report.torn_checkpoint = Some(line.offset);
            continue;
        }
        let note = match &line.note {
            Ok(n) => n,
            Err(reason) => {
                report.problems.push(problem(reason.clone()));
                continue;
            }
        };
        match Checkpoint::open(note, verifier) {
            Ok(cp) => {
                if let Some(prev) = &previous {
                    if cp.size < prev.size {
                        report.problems.push(problem(format!(
                            "checkpoint for {} records follows one for {}: the checkpoint file was rewritten",
                            cp.size, prev.size
                        )));
                    }
                    if cp.time_ms < prev.time_ms {
                        report.problems.push(problem("checkpoint time goes backwards".into()));
                    }
                }
                previous = Some(cp.clone());
                out.push(Known { cp, source: format!("{} offset {}", path.display(), line.offset) });
            }
            Err(e) => report.problems.push(problem(format!("checkpoint rejected: {e}"))),
        }
    }
    for (n, text) in opts.trusted_notes.iter().enumerate() {
        let notes = match split_notes(text) {
            Ok(notes) if notes.is_empty() => {
                // An empty witness file must not quietly turn into "nothing to compare against".
                report
                    .problems
                    .push(Problem::about_the_log(format!("trusted checkpoint #{} holds no checkpoint", n + 1)));
                continue;
            }
            Ok(notes) => notes,
            Err(e) => {
                report.problems.push(Problem::about_the_log(format!("trusted checkpoint #{}: {e}", n + 1)));
                continue;
            }
        };
        for note in notes {
            match Checkpoint::open(note, verifier) {
                Ok(cp) => out.push(Known { cp, source: format!("trusted checkpoint #{}", n + 1) }),
                Err(e) => {
                    report.problems.push(Problem::about_the_log(format!("trusted checkpoint #{} rejected: {e}", n + 1)))
                }
            }
        }
    }
    report.latest_checkpoint = out.iter().map(|k| &k.cp).max_by_key(|c| (c.size, c.time_ms)).cloned();
    Ok(out)
}

/// A record whose `prev` did not match, waiting for the next record to tell which of the two was changed.
struct ChainBreak {
    seq: u64,
    leaf: Hash,
    path: PathBuf,
    offset: u64,
}

/// State carried across segments.
struct Walk {
    dir: PathBuf,
    origin: String,
    checkpoints: Vec<Known>,
    /// `seq` minus position, as last seen: a change is reported once, not at every later record.
    seq_shift: i128,
    next_cp: usize,
    started: bool,
    expected: u64,
    prev: Hash,
    frontier: Frontier,
    last_logged: i64,
    /// Retention records seen: (their seq, the seq before which they removed records). Honoured only if a
    /// matching checkpoint signs them: an unsigned one could be a forgery covering for deleted segments.
    retention: Vec<(u64, u64)>,
    /// The largest checkpoint size whose root matched the records.
    signed_through: u64,
    chain_break: Option<ChainBreak>,
    done: bool,
}

impl Walk {
    fn new(dir: &Path, checkpoints: Vec<Known>, origin: &str) -> Walk {
        Walk {
            dir: dir.to_path_buf(),
            origin: origin.to_owned(),
            checkpoints,
            seq_shift: 0,
            next_cp: 0,
            started: false,
            expected: 0,
            prev: [0; 32],
            frontier: Frontier::new(),
            last_logged: i64::MIN,
            retention: Vec::new(),
            signed_through: 0,
            chain_break: None,
            done: false,
        }
    }

    fn segment(&mut self, report: &mut Report, first: bool, last: bool, name_seq: u64, path: &Path, data: &[u8]) {
        if self.done {
            return;
        }
        let problem = |seq: Option<u64>, offset: Option<u64>, message: String| Problem {
            seq,
            path: Some(path.to_path_buf()),
            offset,
            message,
        };
        let Some((header, body, body_at)) = segment::split_header(data) else {
            report.problems.push(problem(Some(name_seq), Some(0), "segment has no header".into()));
            return;
        };
        let header = match SegmentHeader::parse(header) {
            Ok(h) => h,
            Err(reason) => {
                report.problems.push(problem(Some(name_seq), Some(0), reason));
                return;
            }
        };
        if header.origin != self.origin {
            report.problems.push(problem(
                Some(name_seq),
                Some(0),
                format!("segment belongs to log {:?}, not {:?}", header.origin, self.origin),
            ));
        }
        if header.first_seq != name_seq {
            report.problems.push(problem(
                Some(name_seq.min(header.first_seq)),
                Some(0),
                format!("header says the segment starts at seq {}, its name says {name_seq}", header.first_seq),
            ));
        }
        if first {
            self.started = true;
            report.first_seq = header.first_seq;
            self.expected = header.first_seq;
            self.prev = header.prev;
            self.frontier = header.frontier.clone();
            if header.first_seq == 0 && (header.prev != [0; 32] || header.frontier.size() != 0) {
                report.problems.push(problem(Some(0), Some(0), "first segment header is not the genesis".into()));
            }
            // Checkpoints older than what retention kept: only their signatures could be checked.
            while self.next_cp < self.checkpoints.len() && self.checkpoints[self.next_cp].cp.size < header.first_seq {
                report.checkpoints_predating += 1;
                self.next_cp += 1;
            }
            self.check_checkpoints(report, path, Some(0));
        } else if header.first_seq != self.expected {
            let (lo, hi) = (self.expected, header.first_seq);
            let message = if hi > lo {
                format!("records {lo}..{} are missing: a segment was deleted", hi - 1)
            } else {
                format!("segment overlaps the previous one (starts at {hi}, expected {lo})")
            };
            report.problems.push(problem(Some(lo.min(hi)), Some(0), message));
            // Gone now, but older than the oldest segment left: retention removed it while we read. Run again.
            let oldest_now = segment::list(&self.dir).ok().and_then(|l| l.segments.first().map(|(f, _)| *f));
            if hi > lo && oldest_now.is_some_and(|o| o > lo) {
                report.listing_raced = true;
            }
            // Carry on from this segment's own header, so that problems further on are still found.
            self.expected = header.first_seq;
            self.prev = header.prev;
            self.frontier = header.frontier.clone();
        } else if header.frontier != self.frontier || header.prev != self.prev {
            report.problems.push(problem(
                Some(header.first_seq),
                Some(0),
                "segment header does not continue the records before it".into(),
            ));
        }

        let mut lines = segment::lines(body, body_at).peekable();
        while let Some(line) = lines.next() {
            let seq = self.expected;
            if !line.complete {
                if last && lines.peek().is_none() {
                    report.torn_tail = Some(TornTail {
                        path: path.to_path_buf(),
                        offset: line.offset,
                        bytes: line.bytes.len() as u64,
                        seq,
                    });
                } else {
                    report.problems.push(problem(Some(seq), Some(line.offset), "incomplete record".into()));
                }
                break;
            }
            report.records += 1;
            let leaf = match RecordLine::parse(line.bytes) {
                Ok(rec) => {
                    let shift = i128::from(rec.seq) - i128::from(seq);
                    if shift != self.seq_shift {
                        self.seq_shift = shift;
                        report.problems.push(problem(
                            Some(seq),
                            Some(line.offset),
                            format!(
                                "record says seq {}, expected {seq}: records deleted, duplicated or reordered",
                                rec.seq
                            ),
                        ));
                    }
                    if let Some(b) = self.chain_break.take() {
                        // The record before this one had a bad `prev`. If this record links to it, that record is
                        // intact and the one before it was changed; otherwise that record itself was changed.
                        let bad = if rec.prev == b.leaf { b.seq.saturating_sub(1) } else { b.seq };
                        report.problems.push(Problem {
                            seq: Some(bad),
                            path: Some(b.path),
                            offset: Some(b.offset),
                            message: "record was changed: the hash chain breaks here".into(),
                        });
                    }
                    // A record out of place breaks the chain too; its seq problem already names it.
                    if rec.prev != self.prev && shift == 0 {
                        self.chain_break =
                            Some(ChainBreak { seq, leaf: rec.leaf, path: path.to_path_buf(), offset: line.offset });
                    }
                    if rec.logged_ms < self.last_logged {
                        report.problems.push(problem(
                            Some(seq),
                            Some(line.offset),
                            format!(
                                "record time goes backwards ({} ms before the previous record)",
                                i128::from(self.last_logged) - i128::from(rec.logged_ms)
                            ),
                        ));
                    }
                    self.last_logged = self.last_logged.max(rec.logged_ms);
                    if rec.event.get().contains("retention_removed_before")
                        && let Ok(v) = serde_json::from_str::<serde_json::Value>(rec.event.get())
                        && let Some(n) = crate::event::get_path(&v, "unmapped.airlock.retention_removed_before")
                            .and_then(|n| n.as_u64())
                    {
                        self.retention.push((seq, n));
                    }
                    rec.leaf
                }
                Err(e) => {
                    if let Some(b) = self.chain_break.take() {
                        report.problems.push(Problem {
                            seq: Some(b.seq.saturating_sub(1)),
                            path: Some(b.path),
                            offset: Some(b.offset),
                            message: "record was changed: the hash chain breaks here".into(),
                        });
                    }
                    report.problems.push(problem(Some(seq), Some(line.offset), format!("record is damaged: {e}")));
                    // The leaf is still the hash of these bytes; keep walking so later problems are found too.
                    crate::merkle::leaf_hash(line.bytes)
                }
            };
            self.prev = leaf;
            self.frontier.push(leaf);
            self.expected += 1;
            self.check_checkpoints(report, path, Some(line.offset));
        }
    }

    /// Compares every checkpoint signed at the current tree size with the recomputed root.
    fn check_checkpoints(&mut self, report: &mut Report, path: &Path, offset: Option<u64>) {
        let size = self.frontier.size();
        while self.next_cp < self.checkpoints.len() && self.checkpoints[self.next_cp].cp.size <= size {
            let k = &self.checkpoints[self.next_cp];
            self.next_cp += 1;
            if k.cp.size < size {
                // Only possible after a gap moved us past it; the gap is already reported.
                continue;
            }
            if k.cp.root != self.frontier.root() {
                report.problems.push(Problem {
                    seq: Some(size.saturating_sub(1)),
                    path: Some(path.to_path_buf()),
                    offset,
                    message: format!(
                        "records do not match the checkpoint signed for {} records ({}): records up to here were \
                         changed or replaced",
                        k.cp.size, k.source
                    ),
                });
            } else if k.cp.time_ms < self.last_logged && size > 0 {
                report.problems.push(Problem {
                    seq: Some(size - 1),
                    path: Some(path.to_path_buf()),
                    offset,
                    message: format!("checkpoint for {} records is dated before the records it signs", k.cp.size),
                });
            } else {
                report.checkpoints_matched += 1;
                self.signed_through = self.signed_through.max(k.cp.size);
            }
        }
    }

    fn finish(&mut self, report: &mut Report, opts: &VerifyOptions) {
        if let Some(b) = self.chain_break.take() {
            report.problems.push(Problem {
                seq: Some(b.seq.saturating_sub(1)),
                path: Some(b.path),
                offset: Some(b.offset),
                message: format!(
                    "record {} or {} was changed: the hash chain breaks here",
                    b.seq.saturating_sub(1),
                    b.seq
                ),
            });
        }
        let size = self.frontier.size();
        // Deduplicate: several checkpoints may claim sizes beyond the end; report the largest once per source.
        let mut beyond: BTreeMap<u64, &str> = BTreeMap::new();
        for k in &self.checkpoints[self.next_cp..] {
            if k.cp.size > size {
                beyond.insert(k.cp.size, &k.source);
            }
        }
        if let Some((&claimed, source)) = beyond.iter().next_back() {
            report.problems.push(Problem {
                seq: Some(size),
                path: None,
                offset: None,
                message: format!(
                    "the log ends after {size} records but a checkpoint ({source}) was signed for {claimed}: records \
                     {size}..{} were removed",
                    claimed - 1
                ),
            });
        }
        let retention_before = self
            .retention
            .iter()
            .filter(|(seq, _)| *seq < self.signed_through)
            .map(|(_, before)| *before)
            .max()
            .unwrap_or(0);
        if self.started && report.first_seq > 0 && retention_before < report.first_seq {
            report.problems.push(Problem {
                seq: Some(0),
                path: None,
                offset: None,
                message: format!(
                    "records 0..{} are missing and no signed retention record accounts for them: the oldest segment(s) \
                     were deleted",
                    report.first_seq - 1
                ),
            });
        }
        let latest = report.latest_checkpoint.as_ref().map_or(0, |c| c.size);
        report.unsigned_records = size.saturating_sub(latest);
        if let (Some(max), Some(cp)) = (opts.max_checkpoint_age_ms, &report.latest_checkpoint)
            && opts.now_ms - cp.time_ms > max
        {
            report.problems.push(Problem::about_the_log(format!(
                "the newest checkpoint is {} s old (limit {} s): the writer stopped, or recent checkpoints were \
                     removed",
                (opts.now_ms - cp.time_ms) / 1000,
                max / 1000
            )));
        }
        if report.latest_checkpoint.is_none() && size > 0 {
            report.problems.push(Problem::about_the_log(
                "no valid checkpoint signs this log, so nothing in it can be authenticated (the writer signs \
                 one as soon as it opens)",
            ));
        }
        self.done = true;
    }
}
