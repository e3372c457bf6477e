//! `airlock redact` (a filter: stdin or files to stdout, masked) and `airlock scan-secrets` (a scanner: files and
//! trees to a table, JSON or SARIF report). Both are thin: the engine is `airlock-redact`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use airlock_redact::known::LeakScanner;
use airlock_redact::{Finding, MaskStyle, PiiSelection, RuleSet, ScanOptions, Scanner, StreamRedactor};

use crate::CliError;
use crate::cli::{BinaryMode, MaskArg, RedactArgs, RuleArgs, ScanFormat, ScanSecretsArgs};
use crate::commands::Ctx;

/// The personal-data families the built-in rules know (the values `--pii` accepts).
use airlock_policy::model::PII_FAMILIES;

/// Rule files larger than this are refused: a rule file is a few hundred kilobytes at most.
const MAX_RULE_FILE: u64 = 16 << 20;

/// Read size for streams and large files.
const CHUNK: usize = 1 << 20;

/// Files up to this size are read whole and scanned in one call; larger ones are streamed.
const WHOLE_FILE: u64 = 16 << 20;

/// Exit code of `scan-secrets` when something was found.
const FOUND: u8 = 13;

/// The rule set the flags ask for: built-in rules, plus extra files, minus disabled ids.
pub(crate) fn load_rules(args: &RuleArgs) -> Result<RuleSet, CliError> {
    let mut set = if args.no_builtin { RuleSet::empty() } else { RuleSet::builtin() };
    for path in &args.rules {
        let text = read_rule_file(path)?;
        set.add_toml(&path.display().to_string(), &text).map_err(|e| CliError::input(e.to_string()))?;
    }
    for path in &args.gitleaks {
        let text = read_rule_file(path)?;
        let name = path.display().to_string();
        let (mut specs, warnings) =
            airlock_redact::gitleaks::import_gitleaks(&name, &text).map_err(|e| CliError::input(e.to_string()))?;
        for w in warnings {
            eprintln!("airlock: warning: {name}: {w}");
        }
        // An imported rule named like one already loaded (gitleaks and Airlock both have `aws-access-token`-style
        // ids) is kept under a prefixed id rather than refusing the file.
        for spec in &mut specs {
            if set.get(&spec.id).is_some() {
                let renamed = format!("gitleaks-{}", spec.id);
                eprintln!("airlock: warning: {name}: rule {:?} is loaded as {renamed:?} (the id is taken)", spec.id);
                spec.id = renamed;
            }
        }
        set.add_imported(&name, specs).map_err(|e| CliError::input(e.to_string()))?;
    }
    let unknown = set.disable(&args.disable);
    if !unknown.is_empty() {
        return Err(CliError::input(format!("--disable: no such rule: {}", unknown.join(", "))));
    }
    if set.is_empty() {
        return Err(CliError::input("no rules to scan with (--no-builtin without --rules)".into()));
    }
    Ok(set)
}

fn read_rule_file(path: &Path) -> Result<String, CliError> {
    let file = std::fs::File::open(path).map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(MAX_RULE_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| CliError::input(format!("{}: {e}", path.display())))?;
    if text.len() as u64 > MAX_RULE_FILE {
        return Err(CliError::input(format!("{}: larger than {MAX_RULE_FILE} bytes", path.display())));
    }
    Ok(text)
}

/// `all`, `none`, or a comma-separated list of families.
pub(crate) fn pii_selection(value: &str) -> Result<PiiSelection, CliError> {
    match value {
        "all" => Ok(PiiSelection::All),
        "none" | "" => Ok(PiiSelection::None),
        list => {
            let families: Vec<String> = list.split(',').map(|f| f.trim().to_string()).collect();
            if let Some(bad) = families.iter().find(|f| !PII_FAMILIES.contains(&f.as_str())) {
                return Err(CliError::input(format!(
                    "--pii: unknown family {bad:?} (known: all, none, {})",
                    PII_FAMILIES.join(", ")
                )));
            }
            Ok(PiiSelection::Only(families))
        }
    }
}

/// The fingerprint key kept in AIRLOCK_HOME, so fingerprints agree from one scan to the next (baselines, CI
/// diffs) while meaning nothing to anyone without the key. Created on first use; when the home is missing or
/// unwritable, fingerprints are keyed per process instead.
pub(crate) fn fingerprint_key(home: &Path) -> Option<[u8; 32]> {
    home_key(home, "redact-fingerprint.key")
}

/// A random 32-byte key kept in `home/name` (0600), made on first use; `None` without a home directory.
pub(crate) fn home_key(home: &Path, name: &str) -> Option<[u8; 32]> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = home.join(name);
    if let Ok(bytes) = std::fs::read(&path) {
        return <[u8; 32]>::try_from(bytes.as_slice()).ok();
    }
    if !home.is_dir() {
        return None;
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).ok()?;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).ok()?;
    file.write_all(&key).ok()?;
    file.sync_all().ok()?;
    Some(key)
}

fn list_rules(set: &RuleSet, json: bool) {
    let mut out = std::io::stdout().lock();
    for r in set.rules() {
        let line = if json {
            serde_json::json!({"id": r.id(), "family": r.family(), "category": r.category().as_str(),
                "description": r.description(), "origin": r.origin()})
            .to_string()
        } else {
            format!("{:<36} {:<14} {:<6} {}", r.id(), r.family(), r.category().as_str(), r.description())
        };
        let _ = writeln!(out, "{line}");
    }
}

pub(crate) fn finding_json(path: Option<&str>, f: &Finding) -> serde_json::Value {
    let mut v = serde_json::json!({
        "rule": &*f.rule, "family": &*f.family, "category": f.category,
        "line": f.line, "column": f.column, "end_line": f.end_line, "end_column": f.end_column,
        "start": f.start, "end": f.end, "fingerprint": f.fingerprint.to_string(),
    });
    if let Some(p) = path {
        v["path"] = serde_json::json!(p);
    }
    if let Some((source, encoding)) = &f.known {
        v["known"] = serde_json::json!({"id": source.id(), "encoding": encoding.as_str()});
    }
    v
}

// ---------------------------------------------------------------------------------------------------------------
// airlock redact
// ---------------------------------------------------------------------------------------------------------------

pub fn redact(ctx: &Ctx, a: RedactArgs) -> Result<(), CliError> {
    let set = load_rules(&a.rules)?;
    if a.rules.list_rules {
        list_rules(&set, ctx.json);
        return Ok(());
    }
    let options =
        ScanOptions { secrets: true, pii: pii_selection(&a.pii)?, fingerprint_key: fingerprint_key(&ctx.home) };
    let known = if a.vault { Some(Arc::new(vault_values(ctx)?)) } else { None };
    let scanner = Arc::new(Scanner::new(set, &options, known).map_err(|e| CliError::input(e.to_string()))?);
    let style = match a.mask {
        MaskArg::Label => MaskStyle::Label,
        MaskArg::Shape => MaskStyle::Shape,
    };
    let inputs = if a.files.is_empty() { vec![PathBuf::from("-")] } else { a.files.clone() };
    let mut stdout = std::io::stdout().lock();
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK + 4096);
    for input in &inputs {
        let mut reader: Box<dyn Read> = if input.as_os_str() == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(
                std::fs::File::open(input)
                    .map_err(|e| CliError { code: 4, message: format!("{}: {e}", input.display()) })?,
            )
        };
        // One stream per input: a secret does not span two files.
        let mut stream = StreamRedactor::new(scanner.clone(), style);
        let name = (inputs.len() > 1 || input.as_os_str() != "-").then(|| input.display().to_string());
        let interactive = input.as_os_str() == "-";
        loop {
            // A pipe that goes quiet (`tail -f app.log | airlock redact`) gets what is held back decided and shown,
            // rather than kept until more arrives.
            if interactive
                && stream.held() > 0
                && !crate::run::readable_within(&std::io::stdin(), crate::run::IDLE_FLUSH)
            {
                out.clear();
                let found = stream.finish(&mut out);
                if !write_out(&mut stdout, &out)? {
                    return Ok(());
                }
                let _ = stdout.flush();
                report(a.report, name.as_deref(), &found);
                continue;
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CliError { code: 1, message: format!("{}: {e}", input.display()) }),
            };
            out.clear();
            let found = stream.push(&buf[..n], &mut out);
            if !write_out(&mut stdout, &out)? {
                return Ok(());
            }
            report(a.report, name.as_deref(), &found);
        }
        out.clear();
        let found = stream.finish(&mut out);
        if !write_out(&mut stdout, &out)? {
            return Ok(());
        }
        report(a.report, name.as_deref(), &found);
    }
    stdout.flush().ok();
    Ok(())
}

/// Writes masked output; `false` when the reader went away (a closed pipe ends the filter quietly, like `cat`).
fn write_out(stdout: &mut impl Write, bytes: &[u8]) -> Result<bool, CliError> {
    match stdout.write_all(bytes) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(CliError { code: 1, message: format!("writing output: {e}") }),
    }
}

fn report(enabled: bool, path: Option<&str>, found: &[Finding]) {
    if !enabled {
        return;
    }
    let mut err = std::io::stderr().lock();
    for f in found {
        let _ = writeln!(err, "{}", finding_json(path, f));
    }
}

/// Every current vault value, as known values to mask. (Surrogates exist only inside a run; `airlock run` adds
/// them there.)
fn vault_values(ctx: &Ctx) -> Result<LeakScanner, CliError> {
    let mut vault = ctx.open_unlocked()?;
    crate::proxy::build_known(&crate::proxy::vault_values(&mut vault)?, "masked")
}

// ---------------------------------------------------------------------------------------------------------------
// airlock scan-secrets
// ---------------------------------------------------------------------------------------------------------------

/// One file's result.
struct FileResult {
    path: String,
    findings: Vec<Finding>,
}

/// Why a file was not scanned.
struct Skipped {
    path: String,
    reason: String,
}

pub fn scan_secrets(ctx: &Ctx, a: ScanSecretsArgs) -> Result<(), CliError> {
    let set = load_rules(&a.rules)?;
    if a.rules.list_rules {
        list_rules(&set, ctx.json);
        return Ok(());
    }
    let pii = match &a.pii {
        Some(p) => pii_selection(p)?,
        None => PiiSelection::None,
    };
    let options = ScanOptions { secrets: true, pii, fingerprint_key: fingerprint_key(&ctx.home) };
    let scanner = Arc::new(Scanner::new(set, &options, None).map_err(|e| CliError::input(e.to_string()))?);
    let format = if ctx.json { ScanFormat::Json } else { a.format };

    // Walk first: the file list gives the progress bar its total, and a missing path fails before any work.
    let mut files: Vec<(PathBuf, u64)> = Vec::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    for root in &a.paths {
        let meta = std::fs::symlink_metadata(root)
            .map_err(|e| CliError { code: 4, message: format!("{}: {e}", root.display()) })?;
        if meta.is_file() {
            files.push((root.clone(), meta.len()));
            continue;
        }
        let walker = walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name().into_iter();
        for entry in walker.filter_entry(|e| !(e.file_type().is_dir() && e.file_name() == ".git" && e.depth() > 0)) {
            match entry {
                Ok(e) if e.file_type().is_file() => {
                    let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                    files.push((e.into_path(), len));
                }
                Ok(_) => {}
                Err(e) => skipped.push(Skipped {
                    path: e.path().map(|p| p.display().to_string()).unwrap_or_default(),
                    reason: e.io_error().map_or_else(|| e.to_string(), |io| io.to_string()),
                }),
            }
        }
    }
    let total: u64 = files.iter().map(|(_, n)| n).sum();
    let progress = progress_bar(total, a.no_progress);

    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256)
        .min(files.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<FileResult, Skipped>)>> = Mutex::new(Vec::new());
    let scanned_bytes = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((path, len)) = files.get(i) else { break };
                    let r = scan_file(&scanner, path, a.binary, &mut buf);
                    if r.is_ok() {
                        scanned_bytes.fetch_add(*len, std::sync::atomic::Ordering::Relaxed);
                    }
                    if let Some(p) = &progress {
                        p.inc(*len);
                    }
                    results.lock().unwrap_or_else(|p| p.into_inner()).push((i, r));
                }
            });
        }
    });
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(i, _)| *i);
    let mut found = Vec::new();
    for (_, r) in results {
        match r {
            Ok(f) if !f.findings.is_empty() => found.push(f),
            Ok(_) => {}
            Err(s) => skipped.push(s),
        }
    }
    let count: usize = found.iter().map(|f| f.findings.len()).sum();
    let summary = Summary {
        files: files.len(),
        bytes: scanned_bytes.load(std::sync::atomic::Ordering::Relaxed),
        findings: count,
        skipped: &skipped,
    };
    let text = match format {
        ScanFormat::Table => table(&found, &summary),
        ScanFormat::Json => json_report(&found, &summary),
        ScanFormat::Sarif => sarif(&scanner, &found),
    };
    match &a.output {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| CliError { code: 1, message: format!("{}: {e}", path.display()) })?
        }
        None => {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
    }
    if format != ScanFormat::Table {
        eprintln!(
            "airlock: scanned {} files ({} bytes): {} findings, {} skipped",
            summary.files,
            summary.bytes,
            count,
            summary.skipped.len()
        );
    }
    if count > 0 { Err(CliError { code: FOUND, message: String::new() }) } else { Ok(()) }
}

fn progress_bar(total: u64, off: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    // Only where a person watches, and only when there is enough to wait for.
    if off || !std::io::stderr().is_terminal() || total < (64 << 20) {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

/// Scans one file: whole when small, streamed when large, so memory stays bounded whatever the file's size.
fn scan_file(
    scanner: &Arc<Scanner>,
    path: &Path,
    binary: BinaryMode,
    buf: &mut Vec<u8>,
) -> Result<FileResult, Skipped> {
    let name = path.display().to_string();
    let skip = |reason: String| Skipped { path: name.clone(), reason };
    let mut file = std::fs::File::open(path).map_err(|e| skip(e.to_string()))?;
    let len = file.metadata().map_err(|e| skip(e.to_string()))?.len();
    buf.clear();
    if len <= WHOLE_FILE {
        file.read_to_end(buf).map_err(|e| skip(e.to_string()))?;
        if binary == BinaryMode::Skip && is_binary(buf) {
            return Err(skip("binary".into()));
        }
        return Ok(FileResult { path: name, findings: scanner.scan(buf) });
    }
    buf.resize(CHUNK, 0);
    let mut stream = StreamRedactor::scan_only(scanner.clone());
    let mut findings = Vec::new();
    let mut sink = Vec::new();
    let mut first = true;
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(skip(e.to_string())),
        };
        if first && binary == BinaryMode::Skip && is_binary(&buf[..n]) {
            return Err(skip("binary".into()));
        }
        first = false;
        findings.extend(stream.push(&buf[..n], &mut sink));
    }
    findings.extend(stream.finish(&mut sink));
    Ok(FileResult { path: name, findings })
}

/// Binary, as git and ripgrep decide it: a NUL byte in the first 8 KiB.
fn is_binary(data: &[u8]) -> bool {
    data[..data.len().min(8192)].contains(&0)
}

struct Summary<'a> {
    files: usize,
    bytes: u64,
    findings: usize,
    skipped: &'a [Skipped],
}

fn table(found: &[FileResult], s: &Summary<'_>) -> String {
    let mut out = String::new();
    for f in found {
        for x in &f.findings {
            out += &format!("{}:{}:{}  {}  {}\n", f.path, x.line, x.column, x.rule, x.fingerprint);
        }
    }
    let binary = s.skipped.iter().filter(|k| k.reason == "binary").count();
    out += &format!(
        "{} findings in {} files; scanned {} files ({} bytes); skipped {} binary, {} unreadable\n",
        s.findings,
        found.len(),
        s.files - s.skipped.len().min(s.files),
        s.bytes,
        binary,
        s.skipped.len() - binary
    );
    out
}

fn json_report(found: &[FileResult], s: &Summary<'_>) -> String {
    let findings: Vec<_> =
        found.iter().flat_map(|f| f.findings.iter().map(|x| finding_json(Some(&f.path), x))).collect();
    let skipped: Vec<_> = s.skipped.iter().map(|k| serde_json::json!({"path": k.path, "reason": k.reason})).collect();
    let v = serde_json::json!({
        "findings": findings,
        "files_scanned": s.files - s.skipped.len().min(s.files),
        "bytes_scanned": s.bytes,
        "skipped": skipped,
    });
    format!("{v}\n")
}

/// SARIF 2.1.0, as GitHub code scanning and other code-scanning UIs read it.
fn sarif(scanner: &Scanner, found: &[FileResult]) -> String {
    let mut used: Vec<&str> = found.iter().flat_map(|f| f.findings.iter().map(|x| &*x.rule)).collect();
    used.sort_unstable();
    used.dedup();
    let rules: Vec<_> = used
        .iter()
        .map(|id| {
            let (description, family) = scanner
                .rules()
                .iter()
                .find(|r| r.id() == *id)
                .map_or(("A value Airlock knows (a vault secret, surrogate or canary)", "known"), |r| {
                    (r.description(), r.family())
                });
            serde_json::json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": description},
                "defaultConfiguration": {"level": "error"},
                "properties": {"tags": ["security", "secret", family]},
            })
        })
        .collect();
    let results: Vec<_> = found
        .iter()
        .flat_map(|f| {
            f.findings.iter().map(|x| {
                serde_json::json!({
                    "ruleId": &*x.rule,
                    "ruleIndex": used.iter().position(|u| *u == &*x.rule),
                    "level": "error",
                    "message": {"text": format!("{} found (fingerprint {})", x.rule, x.fingerprint)},
                    "locations": [{"physicalLocation": {
                        "artifactLocation": {"uri": sarif_uri(&f.path)},
                        "region": {"startLine": x.line, "startColumn": x.column,
                                   "endLine": x.end_line, "endColumn": x.end_column + 1},
                    }}],
                    "partialFingerprints": {"airlockFingerprint/v1": x.fingerprint.to_string()},
                })
            })
        })
        .collect();
    let v = serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "airlock",
                "informationUri": "https://example.invalid/airlock",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    });
    format!("{v}\n")
}

/// A relative path as a SARIF URI reference (percent-encoding what a URI may not hold).
fn sarif_uri(path: &str) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// Tool output in `airlock run`
// ---------------------------------------------------------------------------------------------------------------

/// One of a run's output streams through the redaction engine. What it masks is gathered in `found` for the run
/// record and the audit log.
pub(crate) struct RunOutputFilter {
    stream: StreamRedactor,
    found: Arc<Mutex<Vec<(airlock_sandbox::output::Stream, Finding)>>>,
}

impl RunOutputFilter {
    pub(crate) fn new(
        scanner: Arc<Scanner>,
        style: MaskStyle,
        found: Arc<Mutex<Vec<(airlock_sandbox::output::Stream, Finding)>>>,
    ) -> RunOutputFilter {
        RunOutputFilter { stream: StreamRedactor::new(scanner, style), found }
    }

    fn record(&self, which: airlock_sandbox::output::Stream, findings: Vec<Finding>) {
        if !findings.is_empty() {
            let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
            found.extend(findings.into_iter().map(|f| (which, f)));
        }
    }
}

impl airlock_sandbox::output::OutputFilter for RunOutputFilter {
    fn filter(&mut self, which: airlock_sandbox::output::Stream, chunk: &[u8], out: &mut Vec<u8>) {
        let findings = self.stream.push(chunk, out);
        self.record(which, findings);
    }

    fn finish(&mut self, which: airlock_sandbox::output::Stream, out: &mut Vec<u8>) {
        let findings = self.stream.finish(out);
        self.record(which, findings);
    }

    fn held(&self) -> usize {
        self.stream.held()
    }
}

/// The scanner for a run's output, from `[redact]` (without known values: the caller adds the vault's and the
/// run's surrogates). `None` when `tool_output = false`.
pub(crate) fn tool_output_scanner(
    home: &Path,
    settings: &airlock_policy::model::RedactSettings,
) -> Result<Option<(Scanner, MaskStyle)>, CliError> {
    if !settings.tool_output {
        return Ok(None);
    }
    let rules =
        RuleArgs { rules: settings.rule_files.clone(), disable: settings.disable.clone(), ..RuleArgs::default() };
    let set = load_rules(&rules).map_err(|e| CliError { message: format!("[redact]: {}", e.message), ..e })?;
    let pii = PiiSelection::Only(settings.pii.clone());
    let options = ScanOptions { secrets: true, pii, fingerprint_key: fingerprint_key(home) };
    let scanner = Scanner::new(set, &options, None).map_err(|e| CliError::input(format!("[redact]: {e}")))?;
    let style = match settings.mask {
        airlock_policy::model::MaskMode::Label => MaskStyle::Label,
        airlock_policy::model::MaskMode::Shape => MaskStyle::Shape,
    };
    Ok(Some((scanner, style)))
}

/// At most this many findings of one run are written to the audit log one by one; the rest are counted.
const AUDITED_FINDINGS: usize = 64;

/// The run's masked findings as audit events (Detection Finding) and as the run record's `redactions`.
pub(crate) fn run_findings(
    run_id: &str,
    agent: &str,
    tool: &str,
    found: &[(airlock_sandbox::output::Stream, Finding)],
) -> (Vec<airlock_audit::Event>, serde_json::Value) {
    use airlock_audit::event::Severity;
    let describe = |(stream, f): &(airlock_sandbox::output::Stream, Finding)| {
        let mut v = finding_json(None, f);
        v["stream"] = serde_json::json!(stream);
        v
    };
    let mut events = Vec::new();
    for (i, item) in found.iter().take(AUDITED_FINDINGS).enumerate() {
        let f = &item.1;
        let (title, severity) = match f.category {
            "known" => ("a vault value or surrogate appeared in a tool's output; it was masked", Severity::High),
            "pii" => ("personal data in a tool's output was masked", Severity::Low),
            _ => ("a credential in a tool's output was masked", Severity::Medium),
        };
        let event = airlock_audit::Event::finding(
            crate::run::now_ms(),
            &format!("{run_id}-redact-{i}"),
            title,
            &["redaction", &f.family],
            severity,
        )
        .correlation(run_id)
        .actor(agent, Some(tool))
        .set("unmapped.airlock.redaction", describe(item));
        events.push(event);
    }
    let mut counts = std::collections::BTreeMap::<&str, u64>::new();
    for (_, f) in found {
        *counts.entry(&f.rule).or_default() += 1;
    }
    let record = serde_json::json!({
        "count": found.len(),
        "by_rule": counts,
        "findings": found.iter().take(AUDITED_FINDINGS).map(describe).collect::<Vec<_>>(),
    });
    (events, record)
}
