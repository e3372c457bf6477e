//! File sink: OCSF JSON Lines appended to a file, for log shippers (Filebeat, Vector, Fluent Bit) that tail files.
//!
//! Why the care: the file is a second copy of the audit trail that other tools read, so it must not become a way
//! to write elsewhere, or to read what others can edit.
//!
//! - The final path component is opened with `O_NOFOLLOW`: a symlink planted at the path is refused rather than
//!   followed to, say, a file the daemon may write but should not. (Directories above it are trusted, as for any
//!   configured path.)
//! - An existing file must be a regular file (a FIFO would block or feed another process; `O_NONBLOCK` makes opening
//!   one fail at once instead of hanging) and not group- or world-writable (others could forge or cut lines).
//! - A new file is created `0600` and its directory is synced, so the file itself survives a crash.
//! - Each batch is one `write` in append mode, then `fdatasync`: delivered means on disk.
//! - Rotation (logrotate's rename or delete) is noticed before every batch by comparing the path's inode and device
//!   with the open handle's; the next batch goes to a new file at the path. `copytruncate` needs nothing: writes
//!   append at the end, wherever that now is.
//! - If a write fails part-way, the retried batch starts with a newline, so the torn line stays a line of its own
//!   and later lines still parse. Readers deduplicate on `metadata.sequence` (delivery is at-least-once).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::fcntl::OFlag;

use super::{ExportItem, Sink, SinkError};

/// Settings for a [`FileSink`].
#[derive(Debug, Clone, Default)]
pub struct FileSinkOptions {
    /// Write signed checkpoints too, as `{"airlock_checkpoint": {"size": N, "note": "..."}}` lines.
    pub wants_checkpoints: bool,
}

/// Appends export batches to a JSON Lines file. See the module docs.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    options: FileSinkOptions,
    /// The open file and its identity, or `None` after a failure (reopened on the next batch).
    open: Option<OpenFile>,
    /// The file (device, inode) that a failed write may have left ending in half a line.
    torn: Option<(u64, u64)>,
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    dev: u64,
    ino: u64,
}

impl FileSink {
    /// Opens (or creates) the file now, so a bad path is reported at configuration time.
    pub fn open(path: impl Into<PathBuf>, options: FileSinkOptions) -> Result<FileSink, SinkError> {
        let path = path.into();
        let open = open_checked(&path)?;
        Ok(FileSink { path, options, open: Some(open), torn: None })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes sure `open` is the file now at the path: reopens after rotation, deletion or an earlier failure.
    fn ensure_open(&mut self) -> Result<(), SinkError> {
        let rotated = match (&self.open, std::fs::symlink_metadata(&self.path)) {
            (None, _) => true,
            (Some(_), Err(e)) if e.kind() == ErrorKind::NotFound => true,
            (Some(_), Err(e)) => return Err(self.error("cannot inspect", &e)),
            (Some(o), Ok(m)) => m.dev() != o.dev || m.ino() != o.ino,
        };
        if rotated {
            // Drop the old handle first: if the reopen fails we retry from scratch next time.
            self.open = None;
            let open = open_checked(&self.path)?;
            // A different file (rotated in) holds no torn line of ours; the same file reopened still may.
            if self.torn.is_some_and(|id| id != (open.dev, open.ino)) {
                self.torn = None;
            }
            self.open = Some(open);
        }
        Ok(())
    }

    fn error(&self, what: &str, e: &std::io::Error) -> SinkError {
        SinkError(format!("file {}: {what}: {e}", self.path.display()))
    }
}

impl Sink for FileSink {
    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn deliver(&mut self, items: &[Arc<ExportItem>]) -> Result<(), SinkError> {
        let mut lines = Vec::with_capacity(items.len() * 512);
        for item in items {
            let encoded = match &**item {
                ExportItem::Record(r) => serde_json::to_vec(&r.event),
                ExportItem::Checkpoint { .. } if !self.options.wants_checkpoints => continue,
                ExportItem::Checkpoint { size, note } => {
                    serde_json::to_vec(&serde_json::json!({ "airlock_checkpoint": { "size": size, "note": note } }))
                }
            };
            // Compact JSON never contains a raw newline (newlines in strings are escaped), so one item is one line.
            lines.extend_from_slice(&encoded.map_err(|e| SinkError(format!("file: cannot encode an item: {e}")))?);
            lines.push(b'\n');
        }
        if lines.is_empty() {
            return Ok(());
        }
        self.ensure_open()?;
        if self.torn.is_some() {
            lines.insert(0, b'\n');
        }
        let open = self.open.as_mut().expect("ensure_open() opened it");
        // One write in append mode, so lines from one batch are contiguous.
        if let Err(e) = open.file.write_all(&lines) {
            // Unknown how much reached the file: the retry starts on a fresh line (at worst leaving an empty line),
            // on a freshly opened handle.
            self.torn = Some((open.dev, open.ino));
            self.open = None;
            return Err(self.error("write failed", &e));
        }
        self.torn = None;
        // On disk before we report success. If this fails the batch is written again: a duplicate, not a loss.
        if let Err(e) = open.file.sync_data() {
            self.open = None;
            return Err(self.error("fdatasync failed", &e));
        }
        Ok(())
    }

    fn wants_checkpoints(&self) -> bool {
        self.options.wants_checkpoints
    }
}

/// Opens `path` for appending under the module's rules, creating it `0600` if missing.
fn open_checked(path: &Path) -> Result<OpenFile, SinkError> {
    let shown = path.display();
    let flags = (OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits();
    let err = |what: &str, e: std::io::Error| {
        let why = match e.raw_os_error() {
            Some(code) if code == nix::errno::Errno::ELOOP as i32 => "it is a symlink; refusing to follow it".into(),
            Some(code) if code == nix::errno::Errno::ENXIO as i32 => {
                "it is a FIFO or socket, not a regular file".into()
            }
            _ => e.to_string(),
        };
        SinkError(format!("file {shown}: {what}: {why}"))
    };
    // Two steps so that we know whether we created the file (then its directory entry is synced).
    let (file, created) = match OpenOptions::new().append(true).custom_flags(flags).open(path) {
        Ok(f) => (f, false),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            match OpenOptions::new().append(true).create_new(true).mode(0o600).custom_flags(flags).open(path) {
                Ok(f) => (f, true),
                // Someone created it between the two calls: open what is there, under the same checks.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let f = OpenOptions::new().append(true).custom_flags(flags).open(path);
                    (f.map_err(|e| err("cannot open", e))?, false)
                }
                Err(e) => return Err(err("cannot create", e)),
            }
        }
        Err(e) => return Err(err("cannot open", e)),
    };
    // Checked on the handle, not the path, so the answer is about the file we will write.
    let meta = file.metadata().map_err(|e| err("cannot inspect", e))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(SinkError(format!("file {shown}: refused: it is {what}")));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(SinkError(format!(
            "file {shown}: refused: it is group- or world-writable (mode {:o}); chmod go-w it",
            meta.mode() & 0o7777
        )));
    }
    if created {
        sync_parent(path).map_err(|e| err("cannot sync its directory", e))?;
    }
    Ok(OpenFile { file, dev: meta.dev(), ino: meta.ino() })
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}
