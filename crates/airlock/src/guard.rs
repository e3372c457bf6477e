//! `airlock scan` and `airlock spotlight`: the prompt-injection guard from the command line.

use std::io::{Read, Write};
use std::path::Path;

use airlock_guard::heuristics::Heuristics;
use airlock_guard::score::{Assessment, ClassifierScore, Thresholds, Verdict, assess};
use airlock_guard::spotlight::{Mode, Spotlight};

use crate::CliError;
use crate::cli::{ProfileArg, ScanArgs, SpotlightArgs, SpotlightModeArg};
use crate::commands::Ctx;

/// Text larger than this is refused: a guard scan is for what goes into one model context.
const MAX_INPUT: u64 = 64 << 20;

/// Exit codes: a flagged text, a blocked one (see the README's table).
const EXIT_FLAG: u8 = 14;
const EXIT_BLOCK: u8 = 15;

pub(crate) fn read_text(file: Option<&Path>) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    let (name, read) = match file.filter(|f| f.as_os_str() != "-") {
        Some(path) => {
            let f = std::fs::File::open(path)
                .map_err(|e| CliError::input(format!("cannot read {}: {e}", path.display())))?;
            (path.display().to_string(), f.take(MAX_INPUT + 1).read_to_end(&mut bytes))
        }
        None => ("stdin".to_string(), std::io::stdin().lock().take(MAX_INPUT + 1).read_to_end(&mut bytes)),
    };
    read.map_err(|e| CliError::input(format!("cannot read {name}: {e}")))?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(CliError::input(format!(
            "{name} is over {} MiB: scan what goes into one context",
            MAX_INPUT >> 20
        )));
    }
    // Invalid UTF-8 is replaced, not refused: a tool's output is what it is, and U+FFFD hides nothing.
    Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

fn thresholds(p: ProfileArg) -> Thresholds {
    match p {
        ProfileArg::Strict => Thresholds::STRICT,
        ProfileArg::Default => Thresholds::DEFAULT,
        ProfileArg::Permissive => Thresholds::PERMISSIVE,
    }
}

/// The classifier's probability for `text`, or why there is none. A model that is there but cannot be used is an
/// error: the user installed it and would otherwise get a weaker guard without noticing.
fn classify(a: &ScanArgs, text: &str) -> Result<Result<ClassifierScore, &'static str>, CliError> {
    if a.no_classifier {
        return Ok(Err("heuristics only: --no-classifier"));
    }
    classify_with_model(a.model.as_deref(), text)
}

#[cfg(feature = "classifier")]
fn classify_with_model(model: Option<&Path>, text: &str) -> Result<Result<ClassifierScore, &'static str>, CliError> {
    use airlock_guard::classifier::{Classifier, Prepared, model_dir};
    let Some(dir) = model_dir(model) else {
        return Ok(Err("heuristics only: no classifier model installed (scripts/setup-model.sh; AIRLOCK_MODEL_DIR)"));
    };
    let (classifier, prepared) = Classifier::load(&dir).map_err(|e| CliError::input(format!("classifier: {e}")))?;
    match prepared {
        Prepared::Cached => {}
        Prepared::Saved(path) => eprintln!("airlock: distilled the model's token vectors into {}", path.display()),
        Prepared::NotSaved(why) => eprintln!("airlock: distilled the model's token vectors, not cached: {why}"),
    }
    Ok(Ok(classifier.score(text)))
}

#[cfg(not(feature = "classifier"))]
fn classify_with_model(_: Option<&Path>, _: &str) -> Result<Result<ClassifierScore, &'static str>, CliError> {
    Ok(Err("heuristics only: this airlock was built without the classifier feature"))
}

/// `[sandbox] guard_tool_output`: the guard's verdict on a tool's stdout, for the run record; `None` when off. The
/// classifier is used when a model is installed; a model that fails its checks is named in the record and the
/// heuristics decide alone (the tool has already run: there is nothing left to refuse).
pub(crate) fn tool_output(
    profile: airlock_policy::config::GuardToolOutput,
    stdout: &[u8],
) -> Option<serde_json::Value> {
    use airlock_policy::config::GuardToolOutput as G;
    let thresholds = match profile {
        G::Off => return None,
        G::Strict => Thresholds::STRICT,
        G::Default => Thresholds::DEFAULT,
        G::Permissive => Thresholds::PERMISSIVE,
    };
    let text = String::from_utf8_lossy(stdout);
    let (score, note) = match classify_with_model(None, &text) {
        Ok(Ok(score)) => (Some(score), None),
        Ok(Err(note)) => (None, Some(note.to_string())),
        Err(e) => (None, Some(format!("heuristics only: {}", e.message))),
    };
    let a = assess(Heuristics::builtin(), &text, score, thresholds);
    let mut v = json(&a, &text, None);
    v["note"] = serde_json::json!(note);
    // The record already holds the output; quoting it again per piece of evidence adds nothing.
    if let Some(evidence) = v["evidence"].as_array_mut() {
        evidence.iter_mut().for_each(|e| {
            e.as_object_mut().map(|o| o.remove("text"));
        });
    }
    Some(v)
}

/// A Detection Finding for a flagged or blocked tool output.
pub(crate) fn tool_output_finding(
    verdict: &serde_json::Value,
    run_id: &str,
    agent: &str,
    tool: &str,
) -> Option<airlock_audit::Event> {
    use airlock_audit::event::Severity;
    let severity = match verdict["verdict"].as_str()? {
        "block" => Severity::High,
        "flag" => Severity::Medium,
        _ => return None,
    };
    Some(
        airlock_audit::Event::finding(
            crate::run::now_ms(),
            &format!("{run_id}-guard"),
            "a tool's output looks like a prompt injection",
            &["prompt-injection"],
            severity,
        )
        .correlation(run_id)
        .actor(agent, Some(tool))
        .set("unmapped.airlock.guard", audit_summary(verdict)),
    )
}

/// The verdict as the audit log stores it: audit records hold integers only (canonical JSON), so risks and
/// weights are in thousandths; evidence keeps its id, category and span.
fn audit_summary(v: &serde_json::Value) -> serde_json::Value {
    let permille = |x: &serde_json::Value| x.as_f64().map(|f| (f * 1000.0).round() as u64);
    let evidence: Vec<serde_json::Value> = v["evidence"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    serde_json::json!({"id": e["id"], "category": e["category"], "weight_permille": permille(&e["weight"]),
                        "span": e["span"]})
                })
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "verdict": v["verdict"],
        "risk_permille": permille(&v["risk"]),
        "layers": v["layers"],
        "classifier_permille": permille(&v["classifier"]["probability"]),
        "evidence": evidence,
        "note": v["note"],
    })
}

pub(crate) fn scan(ctx: &Ctx, a: ScanArgs) -> Result<(), CliError> {
    let text = read_text(a.file.as_deref())?;
    let (score, note) = match classify(&a, &text)? {
        Ok(score) => (Some(score), None),
        Err(note) => (None, Some(note)),
    };
    let assessment = assess(Heuristics::builtin(), &text, score, thresholds(a.profile));
    let report = if ctx.json {
        json(&assessment, &text, note).to_string()
    } else {
        match note {
            Some(note) => format!("{}  ({note})", assessment.explain(&text)),
            None => assessment.explain(&text).trim_end().to_string(),
        }
    };
    print_verdict(&report, assessment.verdict)
}

/// Prints a scan or validation report, masked, and exits by the verdict: 0, 14 (flag) or 15 (block). Reports
/// quote the text they judged, which may hold a credential (an exfiltration URL with a key in it): they go out
/// masked like any other output.
pub(crate) fn print_verdict(report: &str, verdict: Verdict) -> Result<(), CliError> {
    let (masked, _) = airlock_redact::Scanner::builtin().redact(report.as_bytes(), &airlock_redact::MaskStyle::Label);
    let mut out = std::io::stdout().lock();
    let written = out.write_all(&masked).and_then(|()| out.write_all(b"\n"));
    written.map_err(|e| CliError::input(format!("cannot write the report: {e}")))?;
    match verdict {
        Verdict::Allow => Ok(()),
        Verdict::Flag => Err(CliError { code: EXIT_FLAG, message: String::new() }),
        Verdict::Block => Err(CliError { code: EXIT_BLOCK, message: String::new() }),
    }
}

pub(crate) fn json(a: &Assessment, text: &str, note: Option<&str>) -> serde_json::Value {
    let t = a.tricks;
    let layers: &[&str] = if a.classifier.is_some() { &["heuristics", "classifier"] } else { &["heuristics"] };
    serde_json::json!({
        "risk": a.risk,
        "verdict": a.verdict.as_str(),
        "layers": layers,
        "classifier": a.classifier.as_ref().map(|c| serde_json::json!({
            "probability": c.probability, "span": [c.span.start, c.span.end],
        })),
        "note": note,
        "evidence": a.evidence.iter().map(|e| serde_json::json!({
            "id": e.id,
            "category": e.category,
            "weight": e.weight,
            "view": e.view.map(|v| v.as_str()),
            "span": e.span.as_ref().map(|s| [s.start, s.end]),
            "text": e.span.as_ref().and_then(|s| text.get(s.clone())).map(|s| s.chars().take(200).collect::<String>()),
        })).collect::<Vec<_>>(),
        "tricks": {
            "invisible": t.invisible, "bidi": t.bidi, "tag": t.tag, "homoglyph": t.homoglyph,
            "compatibility": t.compatibility,
        },
    })
}

pub(crate) fn spotlight(ctx: &Ctx, a: SpotlightArgs) -> Result<(), CliError> {
    let mode = match a.mode {
        SpotlightModeArg::Delimit => Mode::Delimit,
        SpotlightModeArg::Datamark => Mode::Datamark,
        SpotlightModeArg::Encode => Mode::Encode,
    };
    let s = match &a.session {
        None if a.system_prompt && !ctx.json && mode != Mode::Encode => {
            return Err(CliError::usage(
                "--system-prompt alone needs --session NAME: without one, the next wrap draws a new marker (or \
                 use --json to get both at once)"
                    .into(),
            ));
        }
        None => Spotlight::new(mode),
        Some(session) => session_spotlight(&ctx.home, mode, session)?,
    };
    let mut out = std::io::stdout().lock();
    let written = if a.system_prompt && !ctx.json {
        writeln!(out, "{}", s.system_prompt())
    } else {
        let text = read_text(None)?;
        if ctx.json {
            let v =
                serde_json::json!({ "mode": mode.as_str(), "system_prompt": s.system_prompt(), "text": s.wrap(&text) });
            writeln!(out, "{v}")
        } else {
            writeln!(out, "{}", s.wrap(&text))
        }
    };
    written.map_err(|e| CliError::input(format!("cannot write: {e}")))
}

/// The spotlight of a named session: its nonce or marker is derived from a key in `home`, so every wrap and the
/// system-prompt snippet of one session agree, across processes.
pub(crate) fn session_spotlight(home: &Path, mode: Mode, session: &str) -> Result<Spotlight, CliError> {
    // The key lives in AIRLOCK_HOME, made (0700) if this is the first thing Airlock does on the machine.
    {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(home);
    }
    let key = crate::redact::home_key(home, "spotlight.key").ok_or_else(|| {
        CliError::input(format!("a session needs a key in {}, which cannot be written", home.display()))
    })?;
    let key = airlock_crypto::Key32::from_bytes(key);
    let tag = airlock_crypto::kdf::hmac_sha256(&key, format!("airlock spotlight session\0{session}").as_bytes());
    let mut random = [0u8; 16];
    random.copy_from_slice(&tag[..16]);
    Ok(Spotlight::from_random(mode, random))
}
