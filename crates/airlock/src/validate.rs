//! `airlock validate-output`: a model's output checked before it acts or renders.

use std::path::Path;

use airlock_guard::validate::{OutputPolicy, OutputSchema, OutputValidation, validate};

use crate::CliError;
use crate::cli::ValidateOutputArgs;
use crate::commands::Ctx;
use crate::guard::read_text;

pub(crate) fn validate_output(ctx: &Ctx, a: ValidateOutputArgs) -> Result<(), CliError> {
    check_stdin_once(&a)?;
    // Everything about the policy first, so a mistake in it fails before stdin is read.
    let mut policy = OutputPolicy::default();
    for host in &a.allow_host {
        check_host(host)?;
    }
    policy.allowed_hosts = a.allow_host.clone();
    if let Some(path) = &a.schema {
        policy.schema = Some(schema(path)?);
    }
    policy.max_length_ratio = a.max_ratio;
    let input_len = match (&a.input, a.input_len, a.max_ratio) {
        (None, None, None) => None,
        (_, _, Some(r)) if !(r.is_finite() && r > 0.0) => {
            return Err(CliError::usage(format!("--max-ratio {r}: give a positive number, such as 3 or 1.5")));
        }
        (None, None, Some(_)) => {
            return Err(CliError::usage("--max-ratio needs the input's length: --input FILE or --input-len N".into()));
        }
        (_, _, None) => return Err(CliError::usage("--input and --input-len are only used with --max-ratio".into())),
        (Some(path), _, Some(_)) => Some(read_text(Some(path))?.len()),
        (None, Some(n), Some(_)) => Some(n),
    };

    let output = read_text(a.file.as_deref())?;
    // Every registered canary (`airlock canary`): one in the output means the model gave away what it was planted
    // for. Vault values are not loaded here (that would need the passphrase); the credential rules still apply.
    let mut builder = airlock_broker::leak::LeakScanner::builder();
    let known = match crate::canary::add_known(&ctx.home, &mut builder)? {
        0 => None,
        _ => Some(builder.build().map_err(|e| CliError::input(e.to_string()))?),
    };
    let v = validate(&output, input_len, &policy, known.as_ref());

    let report = if ctx.json { json(&v).to_string() } else { human(&v) };
    // Findings name rules, ids and hosts, never values; masked all the same, like every report that reads output.
    crate::guard::print_verdict(&report, v.verdict)
}

fn is_stdin(file: Option<&Path>) -> bool {
    file.is_none_or(|f| f.as_os_str() == "-")
}

/// Standard input can be read once: by the output (the default), or by one of --schema and --input.
fn check_stdin_once(a: &ValidateOutputArgs) -> Result<(), CliError> {
    let readers = [
        is_stdin(a.file.as_deref()),
        a.schema.as_deref().is_some_and(|p| is_stdin(Some(p))),
        a.input.as_deref().is_some_and(|p| is_stdin(Some(p))),
    ];
    if readers.iter().filter(|&&r| r).count() > 1 {
        return Err(CliError::usage(
            "only one of the output, --schema and --input can be read from stdin: give the others as files".into(),
        ));
    }
    Ok(())
}

/// An --allow-host value is a host name, an IP address or `*.` and a name; not a URL.
pub(crate) fn check_host(host: &str) -> Result<(), CliError> {
    if !host.is_ascii() {
        return Err(CliError::usage(format!(
            "--allow-host {host}: write the host in ASCII (punycode, xn--...); hosts written otherwise are never allowed"
        )));
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let valid = !name.is_empty()
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b':' | b'[' | b']'));
    if !valid {
        return Err(CliError::usage(format!(
            "--allow-host {host}: give a host (docs.rs) or its subdomains (*.example.com), not a URL or a pattern"
        )));
    }
    Ok(())
}

fn schema(path: &Path) -> Result<OutputSchema, CliError> {
    let text = read_text(Some(path))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| CliError::input(format!("--schema {}: not JSON: {e}", path.display())))?;
    OutputSchema::compile(&value)
        .map_err(|e| CliError::input(format!("--schema {}: not a usable JSON Schema: {e}", path.display())))
}

fn human(v: &OutputValidation) -> String {
    let mut out = match v.findings.len() {
        0 => format!("{}: no findings", v.verdict.as_str()),
        1 => format!("{}: 1 finding", v.verdict.as_str()),
        n => format!("{}: {n} findings", v.verdict.as_str()),
    };
    for f in &v.findings {
        out += &format!("\n  {} at {}..{}: {}", f.kind.as_str(), f.span.start, f.span.end, f.detail);
    }
    out
}

pub(crate) fn json(v: &OutputValidation) -> serde_json::Value {
    serde_json::json!({
        "verdict": v.verdict.as_str(),
        "findings": v.findings.iter().map(|f| serde_json::json!({
            "kind": f.kind.as_str(),
            "detail": f.detail,
            "span": [f.span.start, f.span.end],
        })).collect::<Vec<_>>(),
    })
}
