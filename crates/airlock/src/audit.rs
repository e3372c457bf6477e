//! `airlock audit …`: verify, read, export and prove the audit log, and the vault-held keys it needs.
//!
//! The checkpoint signing key and the MAC key for sensitive fields are both derived from the vault, so the
//! commands that need them (`verify` without `--key`, `hash`, `repair`, `key`, `checkpoint`) unlock it. Reading
//! commands (`tail`, `query`, `export`, `prove`) need no key: they never vouch for what they print; `verify`
//! does that.

use std::io::Write;
use std::path::{Path, PathBuf};

use airlock_audit::checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
use airlock_audit::merkle::{self, TreeView};
use airlock_audit::reader::{self, Filter, Follower};
use airlock_audit::sink::cef::to_cef;
use airlock_audit::sink::file::{FileSink, FileSinkOptions};
use airlock_audit::sink::syslog::{Format as SyslogFormat, SyslogSink, Transport, parse_facility};
use airlock_audit::sink::webhook::{WebhookOptions, WebhookSink};
use airlock_audit::sink::{Sink, SinkOptions};
use airlock_audit::{AuditError, AuditLog, AuditMac, Class, Decision, Options, Retention, SharedLog, VerifyOptions};
use airlock_crypto::SecretBytes;
use airlock_crypto::kdf::labels;
use airlock_crypto::sign::SigningKey;
use airlock_policy::config::{self, Interval, SinkKind};
use airlock_vault::Vault;
use airlock_vault::backend::{Fetched, Locator};
use serde_json::json;

use crate::CliError;
use crate::cli::{AuditCommand, AuditFilterArgs, AuditKeyArg, AuditLogArg, DecisionArg, ExportFormatArg};
use crate::commands::Ctx;

/// Exit code for a log that fails verification (also in README.md).
pub const EXIT_VERIFY_FAILED: u8 = 10;

pub fn run(ctx: &Ctx, c: AuditCommand) -> Result<(), CliError> {
    // With a daemon (`client`), `verify`, `tail`, `query` and `checkpoint` ask it, unless they are pointed at files
    // (`--log`) or given a trust anchor to hold the log to (`verify --key`, `--checkpoint`): checking against an
    // anchor is only worth anything when this process reads the files itself, not when the daemon being checked
    // says how it went. The rest always work here: `export` and `prove` read files, `hash`, `key` and `repair` need
    // the vault or the writer's lock.
    let daemon = |log: &AuditLogArg| log.log.is_none().then(|| crate::client::Client::from_env(&ctx.home)).flatten();
    match c {
        AuditCommand::Verify { log, key, checkpoint, save_checkpoint, max_age } => {
            if key.key.is_none()
                && checkpoint.is_empty()
                && let Some(c) = daemon(&log)
            {
                let max_age_ms = max_age.as_deref().map(|s| parse_age_ms(s, "--max-age")).transpose()?;
                return crate::client::audit_verify(ctx, &c, save_checkpoint.as_deref(), max_age_ms);
            }
            verify(ctx, &log_dir(ctx, &log), &key, &checkpoint, save_checkpoint.as_deref(), max_age.as_deref())
        }
        AuditCommand::Tail { log, follow, lines } => match daemon(&log) {
            Some(c) => crate::client::audit_tail(ctx, &c, follow, lines),
            None => tail(ctx, &log_dir(ctx, &log), follow, lines),
        },
        AuditCommand::Query { log, filter } => {
            let filter = parse_filter(&filter)?;
            if let Some(c) = daemon(&log) {
                return crate::client::audit_query(ctx, &c, &filter);
            }
            let mut out = std::io::stdout().lock();
            reader::for_each(&log_dir(ctx, &log), |r| {
                !filter.matches(&r) || print_record(&mut out, ctx.json, r.seq, r.logged_ms, &r.event).is_ok()
            })
            .map_err(audit_err)
        }
        AuditCommand::Export { log, format, filter } => {
            let filter = parse_filter(&filter)?;
            let mut out = std::io::stdout().lock();
            reader::for_each(&log_dir(ctx, &log), |r| {
                if !filter.matches(&r) {
                    return true;
                }
                let line = match format {
                    ExportFormatArg::Ocsf => r.event.to_string(),
                    ExportFormatArg::Cef => to_cef(&r.event),
                };
                writeln!(out, "{line}").is_ok()
            })
            .map_err(audit_err)
        }
        AuditCommand::Prove { log, seq, size, consistency } => prove(ctx, &log_dir(ctx, &log), seq, size, consistency),
        AuditCommand::Hash => {
            let value = crate::input::read_value(false)?;
            let mut vault = ctx.open_unlocked()?;
            let mac = AuditMac::new(vault.subkey(labels::AUDIT_MAC)?);
            println!("{}", mac.tag(value.expose()));
            Ok(())
        }
        AuditCommand::Repair { log } => {
            let dir = log_dir(ctx, &log);
            let signer = signer(&mut ctx.open_unlocked()?)?;
            let before =
                airlock_audit::verify(&dir, &signer.verifier(), &VerifyOptions::default()).map_err(audit_err)?;
            let opts = Options { repair_torn_tail: true, ..Options::default() };
            let cp = AuditLog::open(&dir, signer, opts, vec![]).and_then(AuditLog::close).map_err(audit_err)?;
            match before.torn_tail {
                Some(t) => println!(
                    "removed an incomplete record ({} bytes at offset {} of {}); the log now holds {} records",
                    t.bytes,
                    t.offset,
                    t.path.display(),
                    cp.checkpoint.size
                ),
                None => println!("nothing to repair; the log holds {} records", cp.checkpoint.size),
            }
            Ok(())
        }
        AuditCommand::Key => {
            let signer = signer(&mut ctx.open_unlocked()?)?;
            println!("{}", signer.verifier().to_vkey());
            Ok(())
        }
        AuditCommand::Checkpoint { log } => {
            if let Some(c) = daemon(&log) {
                return crate::client::audit_checkpoint(&c);
            }
            let signer = signer(&mut ctx.open_unlocked()?)?;
            let dir = log_dir(ctx, &log);
            let log = AuditLog::open(&dir, signer, Options::default(), vec![]).map_err(audit_err)?;
            print!("{}", log.close().map_err(audit_err)?.note);
            Ok(())
        }
    }
}

/// The log directory: `--log`, else `[audit] dir` of `$AIRLOCK_HOME/airlock.toml`, else `$AIRLOCK_HOME/audit`.
/// A config that does not load is reported and the default used: reading a log must not depend on it.
pub fn log_dir(ctx: &Ctx, arg: &AuditLogArg) -> PathBuf {
    if let Some(dir) = &arg.log {
        return dir.clone();
    }
    match configured_audit(&ctx.home) {
        Ok(Some(config::Audit { dir: Some(d), .. })) => {
            if Path::new(&d).is_absolute() {
                PathBuf::from(d)
            } else {
                ctx.home.join(d)
            }
        }
        Ok(_) => default_dir(&ctx.home),
        Err(e) => {
            eprintln!("airlock: warning: {}; using {}", e.message, default_dir(&ctx.home).display());
            default_dir(&ctx.home)
        }
    }
}

pub fn default_dir(home: &Path) -> PathBuf {
    home.join("audit")
}

/// The checkpoint signer, derived from the vault. Its name (the checkpoints' origin) names the vault.
pub fn signer(vault: &mut Vault) -> Result<NoteSigner, CliError> {
    let seed = vault.subkey(labels::AUDIT_CHECKPOINT_SIGNING)?;
    let origin = format!("airlock/audit/{}", vault.vault_id());
    NoteSigner::new(&origin, SigningKey::from_seed(&seed)).map_err(|e| CliError::input(e.to_string()))
}

fn local_verifier(ctx: &Ctx) -> Result<NoteVerifier, CliError> {
    Ok(signer(&mut ctx.open_unlocked()?)?.verifier())
}

fn audit_err(e: AuditError) -> CliError {
    let code = match &e {
        AuditError::Locked { .. } => 7,
        AuditError::Corrupt { .. } | AuditError::TornTail { .. } | AuditError::Truncated { .. } => EXIT_VERIFY_FAILED,
        AuditError::InvalidOption(_) => 8,
        _ => 1,
    };
    CliError { code, message: e.to_string() }
}

fn verify(
    ctx: &Ctx,
    dir: &Path,
    key: &AuditKeyArg,
    checkpoints: &[PathBuf],
    save: Option<&Path>,
    max_age: Option<&str>,
) -> Result<(), CliError> {
    // With a trusted checkpoint, a missing log is not "not found": it is everything that checkpoint signed,
    // removed, and verification says so.
    if !dir.join(airlock_audit::segment::SEGMENTS_DIR).is_dir() && checkpoints.is_empty() {
        return Err(CliError { code: 4, message: format!("no audit log at {}", dir.display()) });
    }
    let (verifier, key_source) = match &key.key {
        Some(k) => (NoteVerifier::parse_vkey(k).map_err(|e| CliError::input(format!("--key: {e}")))?, "--key"),
        None => (local_verifier(ctx)?, "the vault"),
    };
    let mut trusted = Vec::new();
    for path in checkpoints {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::input(format!("--checkpoint {}: {e}", path.display())))?;
        trusted.push(text);
    }
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let max_checkpoint_age_ms = max_age.map(|s| parse_age_ms(s, "--max-age")).transpose()?;
    let opts = VerifyOptions { trusted_notes: trusted, max_checkpoint_age_ms, now_ms };
    let report = airlock_audit::verify(dir, &verifier, &opts).map_err(audit_err)?;
    let v = Verification::new(dir, &verifier, Some(key_source), &report, None);
    finish_verify(ctx.json, &v, || match (save, &report.latest_checkpoint) {
        (Some(path), Some(latest)) => match latest_note(dir, &verifier, latest)? {
            Some(note) => save_checkpoint(&note, path),
            // The newest checkpoint came from --checkpoint itself: nothing newer to save.
            None => Ok(()),
        },
        _ => Ok(()),
    })
}

/// What `airlock audit verify --json` prints and `GET /v1/audit/verify` answers: one shape, so that the command
/// prints the same whether it read the log itself or the daemon did (`client::audit_verify`).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Verification {
    pub(crate) ok: bool,
    pub(crate) log: String,
    pub(crate) key: String,
    /// `--key` or `the vault`. Not in the daemon's answer: the daemon's key is always its vault's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) key_source: Option<String>,
    pub(crate) first_seq: u64,
    pub(crate) tree_size: u64,
    pub(crate) records: u64,
    pub(crate) segments: usize,
    pub(crate) bytes: u64,
    pub(crate) checkpoints_matched: usize,
    pub(crate) checkpoints_predating_retention: usize,
    pub(crate) latest_checkpoint: Option<LatestCheckpoint>,
    pub(crate) unsigned_records: u64,
    pub(crate) first_bad: Option<String>,
    pub(crate) problems: Vec<VerifyProblem>,
    pub(crate) torn_checkpoint_offset: Option<u64>,
    pub(crate) torn_tail: Option<TornTail>,
    pub(crate) strays: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct LatestCheckpoint {
    pub(crate) size: u64,
    pub(crate) time_ms: i64,
    /// The signed note itself: in the daemon's answer only, for `--save-checkpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct VerifyProblem {
    seq: Option<u64>,
    path: Option<String>,
    offset: Option<u64>,
    message: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct TornTail {
    path: String,
    offset: u64,
    bytes: u64,
    seq: u64,
}

impl Verification {
    /// The report of verifying the log in `dir` with `verifier`; `note`, the newest checkpoint's note, if wanted.
    pub(crate) fn new(
        dir: &Path,
        verifier: &NoteVerifier,
        key_source: Option<&str>,
        report: &airlock_audit::Report,
        note: Option<String>,
    ) -> Verification {
        let path = |p: &Path| p.display().to_string();
        Verification {
            ok: report.ok(),
            log: path(dir),
            key: verifier.to_vkey(),
            key_source: key_source.map(str::to_string),
            first_seq: report.first_seq,
            tree_size: report.tree_size(),
            records: report.records,
            segments: report.segments,
            bytes: report.bytes,
            checkpoints_matched: report.checkpoints_matched,
            checkpoints_predating_retention: report.checkpoints_predating,
            latest_checkpoint: report.latest_checkpoint.as_ref().map(|c| LatestCheckpoint {
                size: c.size,
                time_ms: c.time_ms,
                note,
            }),
            unsigned_records: report.unsigned_records,
            first_bad: report.first_bad().map(|p| p.to_string()),
            problems: report
                .problems
                .iter()
                .map(|p| VerifyProblem {
                    seq: p.seq,
                    path: p.path.as_deref().map(path),
                    offset: p.offset,
                    message: p.message.clone(),
                })
                .collect(),
            torn_checkpoint_offset: report.torn_checkpoint,
            torn_tail: report.torn_tail.as_ref().map(|t| TornTail {
                path: path(&t.path),
                offset: t.offset,
                bytes: t.bytes,
                seq: t.seq,
            }),
            strays: report.strays.iter().map(|s| path(s)).collect(),
        }
    }
}

/// Prints a verification as `airlock audit verify` does (`--json`: the report itself), runs `save` if it passed,
/// and exits 10 if it did not.
pub(crate) fn finish_verify(
    json: bool,
    v: &Verification,
    save: impl FnOnce() -> Result<(), CliError>,
) -> Result<(), CliError> {
    if json {
        println!("{}", serde_json::to_string_pretty(v).expect("serialisable"));
    } else {
        println!(
            "audit log {}: {} records (seq {}..{}) in {} segment(s), {} bytes",
            v.log,
            v.records,
            v.first_seq,
            v.tree_size.saturating_sub(1),
            v.segments,
            v.bytes
        );
        println!("key: {} (from {})", v.key, v.key_source.as_deref().unwrap_or("the vault"));
        match &v.latest_checkpoint {
            Some(c) => println!(
                "checkpoints: {} matched the records; newest signs {} records at {} ({} record(s) after it, covered by \
                 the hash chain only)",
                v.checkpoints_matched,
                c.size,
                format_ms(c.time_ms),
                v.unsigned_records
            ),
            None => println!("checkpoints: none"),
        }
        if v.checkpoints_predating_retention > 0 {
            println!(
                "{} checkpoint(s) predate retained records: signature checked only",
                v.checkpoints_predating_retention
            );
        }
        for s in &v.strays {
            println!("warning: unexpected file {s}");
        }
    }
    if v.ok {
        if !json {
            println!("OK");
        }
        return save();
    }
    if !json {
        if let Some(first) = &v.first_bad {
            eprintln!("FAILED: first bad record: {first}");
        }
        for p in &v.problems {
            // Said as the verifier says it.
            let problem = airlock_audit::Problem {
                seq: p.seq,
                path: p.path.as_ref().map(PathBuf::from),
                offset: p.offset,
                message: p.message.clone(),
            };
            eprintln!("  problem: {problem}");
        }
        if let Some(t) = &v.torn_tail {
            eprintln!(
                "  torn tail: seq {} was being written when the writer stopped ({} bytes at offset {} of {}); it was \
                 never acknowledged. Run `airlock audit repair` to remove it.",
                t.seq, t.bytes, t.offset, t.path
            );
        }
        if let Some(offset) = v.torn_checkpoint_offset {
            eprintln!(
                "  torn checkpoint: the checkpoint file ends in an incomplete line at offset {offset} (a crash while \
                 signing). Run `airlock audit repair` to remove it."
            );
        }
    }
    Err(CliError { code: EXIT_VERIFY_FAILED, message: String::new() })
}

/// The note of `latest`, found again in the checkpoint file of the log in `dir` (newest first: it is nearly always
/// the last line); `None` if the file does not hold it.
pub(crate) fn latest_note(
    dir: &Path,
    verifier: &NoteVerifier,
    latest: &Checkpoint,
) -> Result<Option<String>, CliError> {
    let (lines, _) = airlock_audit::segment::read_checkpoint_file(dir)
        .map_err(|e| CliError { code: 1, message: format!("reading checkpoints: {e}") })?;
    Ok(lines
        .into_iter()
        .rev()
        .filter_map(|l| l.note.ok())
        .find(|n| Checkpoint::open(n, verifier).is_ok_and(|c| &c == latest)))
}

/// Writes `note` to `path` (`verify --save-checkpoint`), atomically.
pub(crate) fn save_checkpoint(note: &str, path: &Path) -> Result<(), CliError> {
    // Atomic and durable: this file is what the next run trusts.
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(note.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(parent)?.sync_all()
    };
    write().map_err(|e| CliError { code: 1, message: format!("--save-checkpoint {}: {e}", path.display()) })
}

fn tail(ctx: &Ctx, dir: &Path, follow: bool, lines: usize) -> Result<(), CliError> {
    let (mut follower, backlog) = Follower::new(dir, lines).map_err(audit_err)?;
    let mut out = std::io::stdout().lock();
    for r in &backlog {
        print_record(&mut out, ctx.json, r.seq, r.logged_ms, &r.event)
            .map_err(|e| CliError { code: 1, message: e.to_string() })?;
    }
    if !follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        for r in follower.poll().map_err(audit_err)? {
            print_record(&mut out, ctx.json, r.seq, r.logged_ms, &r.event)
                .map_err(|e| CliError { code: 1, message: e.to_string() })?;
        }
        let _ = out.flush();
    }
}

/// One record as `tail` and `query` print it: its OCSF event (`--json`), else a line of its time, seq, type, actor,
/// decision and message.
pub(crate) fn print_record(
    out: &mut impl Write,
    json: bool,
    seq: u64,
    logged_ms: i64,
    event: &serde_json::Value,
) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{event}");
    }
    // Records hold text from agents and tools: control characters are shown escaped, so a record cannot forge
    // another line or drive the terminal.
    let s = |path: &str| s_escape(airlock_audit::event::get_path(event, path).and_then(|v| v.as_str()).unwrap_or("-"));
    writeln!(
        out,
        "{}  #{:<6} {:<36} {:<16} {:<5} {}",
        format_ms(logged_ms),
        seq,
        s("type_name"),
        s("actor.user.name"),
        airlock_audit::event::decision_of(event).map_or_else(|| "-".to_owned(), s_escape),
        s("message")
    )
}

fn s_escape(text: &str) -> String {
    text.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

fn prove(ctx: &Ctx, dir: &Path, seq: Option<u64>, size: Option<u64>, consistency: Option<u64>) -> Result<(), CliError> {
    let (pruned, leaves) = reader::leaves(dir).map_err(audit_err)?;
    let view = TreeView::new(&pruned, &leaves);
    // The newest checkpoint on disk, unverified: whoever checks the proof checks the note's signature too.
    let (lines, _) = airlock_audit::segment::read_checkpoint_file(dir)
        .map_err(|e| CliError { code: 1, message: format!("reading checkpoints: {e}") })?;
    let latest_note = lines.into_iter().rev().find_map(|l| l.note.ok().filter(|_| l.complete));
    let latest = latest_note
        .as_deref()
        .and_then(|n| airlock_audit::checkpoint::unverified_text(n).ok())
        .and_then(|t| Checkpoint::parse_text(t).ok());
    let size = match (size, &latest) {
        (Some(s), _) => s,
        (None, Some(c)) => c.size,
        (None, None) => view.size(),
    };
    if size > view.size() {
        return Err(CliError::input(format!("--size {size} is beyond the log ({} records)", view.size())));
    }
    let note = latest_note.filter(|_| latest.as_ref().is_some_and(|c| c.size == size));
    let root = view.root_at(size).map_err(|e| CliError::input(e.to_string()))?;
    let hexes = |v: &[merkle::Hash]| v.iter().map(hex::encode).collect::<Vec<_>>();
    let value = if let Some(old) = consistency {
        let proof = view.consistency_proof(old, size).map_err(|e| CliError::input(e.to_string()))?;
        let old_root = view.root_at(old).map_err(|e| CliError::input(e.to_string()))?;
        merkle::verify_consistency(old, size, &old_root, &root, &proof)
            .map_err(|e| CliError { code: 1, message: format!("self-check failed: {e}") })?;
        json!({"type": "consistency", "old_size": old, "old_root": hex::encode(old_root), "size": size,
               "root": hex::encode(root), "proof": hexes(&proof), "checkpoint": note})
    } else {
        let seq = seq.expect("clap requires SEQ without --consistency");
        if seq >= size {
            return Err(CliError::input(format!(
                "record {seq} is not in the tree of size {size}{}",
                if size == latest.as_ref().map_or(u64::MAX, |c| c.size) {
                    " (the newest checkpoint); wait for the next checkpoint or pass --size"
                } else {
                    ""
                }
            )));
        }
        let proof = view.inclusion_proof(seq, size).map_err(|e| CliError::input(e.to_string()))?;
        let leaf = seq
            .checked_sub(pruned.size())
            .and_then(|i| leaves.get(i as usize))
            .copied()
            .ok_or_else(|| CliError::input(format!("record {seq} was removed by retention")))?;
        merkle::verify_inclusion(&leaf, seq, size, &proof, &root)
            .map_err(|e| CliError { code: 1, message: format!("self-check failed: {e}") })?;
        json!({"type": "inclusion", "seq": seq, "leaf_hash": hex::encode(leaf), "size": size,
               "root": hex::encode(root), "proof": hexes(&proof), "checkpoint": note})
    };
    if ctx.json {
        println!("{}", serde_json::to_string_pretty(&value).expect("serialisable"));
    } else {
        for (k, v) in value.as_object().expect("object") {
            match v {
                serde_json::Value::Array(items) => {
                    println!("{k}:");
                    for i in items {
                        println!("  {}", i.as_str().unwrap_or_default());
                    }
                }
                serde_json::Value::String(s) if k == "checkpoint" => print!("checkpoint:\n{s}"),
                serde_json::Value::String(s) => println!("{k}: {s}"),
                serde_json::Value::Null => {}
                other => println!("{k}: {other}"),
            }
        }
    }
    Ok(())
}

fn parse_filter(a: &AuditFilterArgs) -> Result<Filter, CliError> {
    let classes = a
        .class
        .iter()
        .map(|c| {
            Class::parse(c).ok_or_else(|| {
                CliError::usage(format!("--type {c:?}: use api, process, finding, entity, lifecycle or a class uid"))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Filter {
        since_ms: a.since.as_deref().map(|s| parse_time_ms(s, "--since")).transpose()?,
        until_ms: a.until.as_deref().map(|s| parse_time_ms(s, "--until")).transpose()?,
        classes,
        actor: a.actor.clone(),
        decision: a.decision.map(|d| match d {
            DecisionArg::Allow => Decision::Allow,
            DecisionArg::Deny => Decision::Deny,
        }),
    })
}

/// An RFC 3339 time, or an age before now (`90m`, `2h`, `7d`).
fn parse_time_ms(s: &str, flag: &str) -> Result<i64, CliError> {
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let age = parse_age_ms(s, flag).map_err(|_| {
        CliError::usage(format!("{flag} {s:?}: use RFC 3339 (2026-11-22T08:00:00Z) or an age (90m, 2h, 7d)"))
    })?;
    Ok(jiff::Timestamp::now().as_millisecond() - age)
}

/// `30s`, `90m`, `2h`, `7d`: the duration syntax of `airlock.toml` ([`Interval`]).
pub(crate) fn parse_age_ms(s: &str, flag: &str) -> Result<i64, CliError> {
    let age = Interval::parse(s).map_err(|m| CliError::usage(format!("{flag}: {m}")))?;
    i64::try_from(age.0.as_millis()).map_err(|_| CliError::usage(format!("{flag} {s:?} is too long")))
}

pub(crate) fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| format!("{t:.3}")).unwrap_or_else(|_| ms.to_string())
}

/// The audit log of a CLI command that changes the vault. Opened *before* the change, so that a log that cannot
/// be written (locked, unwritable, full) stops the change before it happens: fail closed.
pub struct ChangeLog(SharedLog);

impl ChangeLog {
    pub fn open(ctx: &Ctx, vault: &mut Vault) -> Result<ChangeLog, CliError> {
        shared_log(&ctx.home, vault).map(ChangeLog)
    }

    /// Records the change (already made) and closes the log, which signs a checkpoint over it.
    pub fn record(self, activity: u8, kind: &str, name: &str, message: String) -> Result<(), CliError> {
        self.append_change(activity, kind, name, message)?;
        self.close()
    }

    /// Records one change (already made) of several; [`ChangeLog::close`] ends the command.
    pub fn append_change(&self, activity: u8, kind: &str, name: &str, message: String) -> Result<(), CliError> {
        let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
        let event = airlock_audit::Event::entity_change(jiff::Timestamp::now().as_millisecond(), activity, kind, name)
            .set("actor.user", json!({"name": user, "type": "user"}))
            .set("actor.app_name", json!("airlock-cli"))
            .status(true)
            .message(message);
        airlock_audit::Append::append(&self.0, event).map(drop).map_err(|e| CliError {
            code: 1,
            message: format!("the change was made but could not be recorded in the audit log: {e}"),
        })
    }

    /// Records something other than a change (a read from a secret store) before the command goes on.
    pub fn append(&self, event: airlock_audit::Event) -> Result<(), CliError> {
        airlock_audit::Append::append(&self.0, event).map(drop).map_err(audit_err)
    }

    /// Closes the log, which signs a checkpoint over what this command recorded.
    pub fn close(self) -> Result<(), CliError> {
        self.0.close().map_err(|e| CliError {
            code: 1,
            message: format!("the audit log could not be closed (what was recorded stays recorded): {e}"),
        })
    }
}

/// The installation's audit log, shared with every other Airlock process on this home: this process holds it when
/// nobody else does (and then serves the others on `$AIRLOCK_HOME/audit.sock`), else appends through whoever does.
/// Everything needed to open the log again later (when the holder exits and this process takes over) is prepared
/// here, while the vault is open.
pub fn shared_log(home: &Path, vault: &mut Vault) -> Result<SharedLog, CliError> {
    let model = configured(home)?;
    let audit = model.as_ref().map(|m| m.file.audit.clone()).unwrap_or_default();
    let tokens = sink_tokens(model.as_ref(), vault)?;
    let backends = model.as_ref().map(|m| m.file.backends.clone()).unwrap_or_default();
    let seed = vault.subkey(labels::AUDIT_CHECKPOINT_SIGNING)?;
    let origin = format!("airlock/audit/{}", vault.vault_id());
    let home_dir = home.to_path_buf();
    let open = move |lock_timeout: std::time::Duration| -> Result<AuditLog, airlock_audit::AuditError> {
        let invalid = |e: CliError| airlock_audit::AuditError::InvalidOption(e.message);
        // Tokens held in other stores are read only by the process that takes the log, each time it does: a token
        // rotated in OpenBao reaches the sink at the next open, and a CLI command that merely appends through the
        // holder never touches the store.
        let stores = crate::backends::Backends::new(&backends, &home_dir);
        let mut reads = Vec::new();
        let resolved = tokens
            .iter()
            .map(|t| t.as_ref().map(|t| t.resolve(&stores, &mut reads)).transpose())
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        let setup = setup_with_tokens(&audit, &home_dir, &resolved).map_err(invalid)?;
        let signer = NoteSigner::new(&origin, SigningKey::from_seed(&seed))
            .map_err(|e| airlock_audit::AuditError::InvalidOption(e.to_string()))?;
        let log = AuditLog::open(&setup.dir, signer, Options { lock_timeout, ..setup.options }, setup.sinks)?;
        for (name, source, fetched) in &reads {
            log.append(crate::proxy::secret_read_event(name, None, source, fetched))?;
        }
        Ok(log)
    };
    SharedLog::open(&home.join("audit.sock"), Box::new(open)).map_err(audit_err)
}

/// Where the log lives, how it runs and where copies go.
pub struct LogSetup {
    pub dir: PathBuf,
    pub options: Options,
    pub sinks: Vec<(Box<dyn Sink>, SinkOptions)>,
}

/// `[audit]` of `$AIRLOCK_HOME/airlock.toml`, validated; `None` without that file.
fn configured_audit(home: &Path) -> Result<Option<config::Audit>, CliError> {
    Ok(configured(home)?.map(|m| m.file.audit))
}

/// `$AIRLOCK_HOME/airlock.toml`, validated; `None` without that file.
fn configured(home: &Path) -> Result<Option<airlock_policy::model::Model>, CliError> {
    let path = home.join("airlock.toml");
    if !path.is_file() {
        return Ok(None);
    }
    let bad = |e: airlock_policy::error::ConfigError| {
        CliError::input(format!("{e} (its [audit] section says where and how the audit log is kept)"))
    };
    let opts = airlock_policy::load::LoadOptions::from_env(None, home.to_path_buf());
    let doc = airlock_policy::load::load_file(&path, &opts).map_err(bad)?;
    let (model, _warnings) = airlock_policy::model::build(&doc).map_err(bad)?;
    Ok(Some(model))
}

/// A webhook sink's token as configured (`"Bearer ${secret:SIEM}"`), with the local vault's values it names already
/// read (the vault is open now and may not be later); values in other stores are read when the log is opened.
struct SinkToken {
    template: String,
    /// Local vault names and their values.
    local: Vec<(Locator, SecretBytes)>,
    /// `[secrets.NAME] source` of each name the template uses whose value lives in another store.
    sourced: Vec<(Locator, Locator)>,
}

impl SinkToken {
    fn resolve(
        &self,
        stores: &crate::backends::Backends,
        reads: &mut Vec<(String, Locator, Fetched)>,
    ) -> Result<SecretBytes, CliError> {
        let text = airlock_vault::reference::interpolate::<CliError>(
            &self.template,
            airlock_vault::DEFAULT_WORKSPACE,
            |loc| {
                if let Some((_, v)) = self.local.iter().find(|(l, _)| l == loc) {
                    return Ok(zeroize::Zeroizing::new(v.expose().to_vec()));
                }
                let (name, source) = match self.sourced.iter().find(|(l, _)| l == loc) {
                    Some((Locator::Local(id), s)) => (id.name.clone(), s),
                    _ => (loc.to_string(), loc),
                };
                let fetched = stores.read(source)?;
                let value = zeroize::Zeroizing::new(fetched.value.expose().to_vec());
                reads.push((name, source.clone(), fetched));
                Ok(value)
            },
            |var| std::env::var(var).ok(),
        )
        .map_err(|e| CliError { code: e.code, message: format!("audit webhook token: {}", e.message) })?;
        Ok(SecretBytes::copy_from(text.as_bytes()))
    }
}

/// Each webhook sink's token (in `[audit] sinks` order), its local vault values read now, so that sinks can be built
/// again without the vault. A name declared with a `source` is read from that store instead, like a tool's secret.
fn sink_tokens(
    model: Option<&airlock_policy::model::Model>,
    vault: &mut Vault,
) -> Result<Vec<Option<SinkToken>>, CliError> {
    let Some(model) = model else { return Ok(Vec::new()) };
    let source_of = |id: &airlock_vault::SecretId| -> Result<Option<Locator>, CliError> {
        let spec = model.secrets.get(&id.to_string()).or_else(|| {
            (id.workspace == airlock_vault::DEFAULT_WORKSPACE).then(|| model.secrets.get(&id.name)).flatten()
        });
        spec.and_then(|s| s.source.as_deref())
            .map(|text| {
                Locator::parse(text, airlock_vault::DEFAULT_WORKSPACE)
                    .map_err(|e| CliError::input(format!("[secrets.{}] source: {e}", id.name)))
            })
            .transpose()
    };
    let mut out = Vec::new();
    for sink in model.file.audit.sinks.iter().flatten() {
        let Some(t) = &sink.token else {
            out.push(None);
            continue;
        };
        let template = t.get_ref().clone();
        let (mut local, mut sourced) = (Vec::new(), Vec::new());
        for loc in airlock_vault::reference::secrets_referenced(&template, airlock_vault::DEFAULT_WORKSPACE)? {
            if let Locator::Local(id) = &loc {
                match source_of(id)? {
                    Some(source) => sourced.push((loc, source)),
                    None => {
                        let value = SecretBytes::copy_from(vault.resolve(id)?.expose());
                        local.push((loc, value));
                    }
                }
            }
        }
        out.push(Some(SinkToken { template, local, sourced }));
    }
    Ok(out)
}

/// Turns `[audit]` settings into log options and ready-to-start sinks. Relative paths are taken from `home`; webhook
/// tokens come resolved ([`sink_tokens`]).
fn setup_with_tokens(a: &config::Audit, home: &Path, tokens: &[Option<SecretBytes>]) -> Result<LogSetup, CliError> {
    let defaults = Options::default();
    let options = Options {
        checkpoint_every: a.checkpoint_every.unwrap_or(defaults.checkpoint_every),
        checkpoint_interval: a.checkpoint_interval.map_or(defaults.checkpoint_interval, |i| i.0),
        heartbeat: a.heartbeat.map_or(defaults.heartbeat, |i| i.0),
        segment_max_bytes: a.segment_max_size.map_or(defaults.segment_max_bytes, |s| s.0),
        segment_max_age: a.segment_max_age.map(|i| i.0).or(defaults.segment_max_age),
        retention: Retention {
            max_age: a.retain_for.map(|i| i.0),
            max_segments: a.retain_segments.map(|n| n as usize),
        },
        ..defaults
    };
    let rel = |p: &str| if Path::new(p).is_absolute() { PathBuf::from(p) } else { home.join(p) };
    let dir = a.dir.as_deref().map_or_else(|| default_dir(home), rel);
    let mut sinks: Vec<(Box<dyn Sink>, SinkOptions)> = Vec::new();
    for (i, s) in a.sinks.iter().flatten().enumerate() {
        let sink_opts = SinkOptions {
            queue_capacity: s.queue.map_or(SinkOptions::default().queue_capacity, |q| q as usize),
            fail_closed: s.fail_closed.unwrap_or(false),
            ..SinkOptions::default()
        };
        let checkpoints = s.checkpoints.unwrap_or(false);
        let sink_err = |e: airlock_audit::sink::SinkError| CliError::input(format!("audit sink: {e}"));
        let sink: Box<dyn Sink> = match s.kind.get_ref() {
            SinkKind::File => {
                let path = rel(s.path.as_deref().unwrap_or_default());
                Box::new(FileSink::open(path, FileSinkOptions { wants_checkpoints: checkpoints }).map_err(sink_err)?)
            }
            SinkKind::Syslog => {
                let address = s.address.as_deref().unwrap_or_default();
                let (scheme, addr) = airlock_policy::model::parse_syslog_address(address).map_err(CliError::input)?;
                let transport = match scheme {
                    "udp" => Transport::Udp(addr),
                    "tcp" => Transport::Tcp(addr),
                    _ => Transport::Tls {
                        addr,
                        server_name: s.server_name.clone().unwrap_or_else(|| addr.ip().to_string()),
                        ca_pem: s.ca.as_deref().map(rel),
                    },
                };
                let format = match s.format {
                    Some(config::SinkFormat::Ocsf) => SyslogFormat::Ocsf,
                    _ => SyslogFormat::Cef,
                };
                let facility = parse_facility(s.facility.as_deref().unwrap_or("auth")).map_err(sink_err)?;
                Box::new(SyslogSink::new(transport, format, facility, checkpoints).map_err(sink_err)?)
            }
            SinkKind::Webhook => {
                let token = tokens.get(i).and_then(|t| t.as_ref()).map(|t| SecretBytes::copy_from(t.expose()));
                let opts = WebhookOptions {
                    ca_pem: s.ca.as_deref().map(rel),
                    wants_checkpoints: checkpoints,
                    ..WebhookOptions::default()
                };
                let url = s.url.as_deref().unwrap_or_default();
                Box::new(WebhookSink::new(url, token, opts).map_err(sink_err)?)
            }
        };
        sinks.push((sink, sink_opts));
    }
    Ok(LogSetup { dir, options, sinks })
}
