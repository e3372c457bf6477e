//! `airlock policy check | explain | schema`: the policy engine from the command line.
//!
//! `check` shows every finding with file, line and column and fails (exit 8) when the config would be refused.
//! `explain` decides one request exactly as the broker would and shows why (exit 9 when denied), so a person can
//! see what a model will be told.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlock_policy::{Action, Decision, Diagnostic, LoadOptions, Request, Severity};

use crate::CliError;
use crate::cli::{ExplainArgs, PolicyCommand, PolicyEnvArgs};

pub fn run(home: &Path, json: bool, c: PolicyCommand) -> Result<(), CliError> {
    match c {
        PolicyCommand::Check { file, env } => check(&config_path(file, home)?, &env, json),
        PolicyCommand::Explain(a) => explain(home, *a, json),
        PolicyCommand::Schema => {
            print!("{}", airlock_policy::config::json_schema());
            Ok(())
        }
    }
}

/// The explicit file, else `./airlock.toml`, else `$AIRLOCK_HOME/airlock.toml`.
pub(crate) fn config_path(explicit: Option<PathBuf>, home: &Path) -> Result<PathBuf, CliError> {
    if let Some(f) = explicit {
        return Ok(f);
    }
    let local = PathBuf::from("airlock.toml");
    if local.is_file() {
        return Ok(local);
    }
    let in_home = home.join("airlock.toml");
    if in_home.is_file() {
        return Ok(in_home);
    }
    Err(CliError { code: 4, message: format!("no config: neither ./airlock.toml nor {} exists", in_home.display()) })
}

pub(crate) fn load_options(env: &PolicyEnvArgs) -> Result<LoadOptions, CliError> {
    let workspace = match &env.workspace {
        Some(w) => w.clone(),
        None => {
            std::env::current_dir().map_err(|e| CliError { code: 1, message: format!("current directory: {e}") })?
        }
    };
    let workspace =
        workspace.canonicalize().map_err(|e| CliError::input(format!("workspace {}: {e}", workspace.display())))?;
    Ok(LoadOptions::from_env(env.profile.clone(), workspace))
}

fn render(d: &Diagnostic) -> String {
    d.to_string()
}

fn check(path: &Path, env: &PolicyEnvArgs, json: bool) -> Result<(), CliError> {
    let opts = load_options(env)?;
    let report = airlock_policy::check(path, &opts);
    let errors = report.diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let warnings = report.diagnostics.len() - errors;
    if json {
        let v = serde_json::json!({
            "file": path,
            "ok": report.ok(),
            "profile": report.profile,
            "policies": report.policies,
            "errors": errors,
            "warnings": warnings,
            "diagnostics": report.diagnostics,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("serialisable"));
    } else {
        for d in &report.diagnostics {
            println!("{}", render(d));
        }
        match (report.ok(), report.profile) {
            (true, Some(p)) => println!(
                "{}: ok (profile {p}, {} policies, {warnings} warning{})",
                path.display(),
                report.policies,
                if warnings == 1 { "" } else { "s" }
            ),
            _ => println!("{}: rejected ({errors} error{})", path.display(), if errors == 1 { "" } else { "s" }),
        }
    }
    if report.ok() {
        Ok(())
    } else {
        // The report above is the message; exit 8 without repeating it.
        Err(CliError::input(format!("{} failed policy check", path.display())))
    }
}

/// Unix seconds or `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_time(s: &str) -> Result<SystemTime, CliError> {
    let bad = || CliError::usage(format!("--at {s:?}: use unix seconds or YYYY-MM-DDTHH:MM:SSZ"));
    // `checked_add`: a huge number must be a usage error, not an overflow panic.
    let at = |secs: u64| UNIX_EPOCH.checked_add(Duration::from_secs(secs)).ok_or_else(bad);
    if let Ok(secs) = s.parse::<u64>() {
        return at(secs);
    }
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z'
    {
        return Err(bad());
    }
    // Digits only: `parse` alone would take a sign ("2026-+1-23...").
    let num = |r: std::ops::Range<usize>| match &s[r] {
        t if t.bytes().all(|c| c.is_ascii_digit()) => t.parse::<i64>().map_err(|_| bad()),
        _ => Err(bad()),
    };
    let (y, m, d, hh, mm, ss) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    // Checked per month: 2026-02-30 is refused, not silently read as 2026-03-02.
    if !(1..=12).contains(&m) || !(1..=month_days).contains(&d) || hh > 23 || mm > 59 || ss > 60 || y < 1970 {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    at(u64::try_from(secs).map_err(|_| bad())?)
}

fn explain(home: &Path, a: ExplainArgs, json: bool) -> Result<(), CliError> {
    // Arguments first: a usage error is a usage error whether or not a config exists.
    let action = Action::parse(&a.action).map_err(CliError::usage)?;
    let tool = a.tool.as_deref();
    let mut req = match action {
        Action::HttpRequest => Request::http(&a.agent, tool.unwrap_or_default(), &a.method, &a.resource).bytes(a.bytes),
        Action::FsRead | Action::FsWrite | Action::FsExec => {
            Request::fs(&a.agent, tool.unwrap_or_default(), action, &a.resource)
        }
        Action::Exec => Request::exec(&a.agent, tool.unwrap_or_default(), &a.resource),
        Action::SecretUse => {
            let target = a.target.as_deref().ok_or_else(|| CliError::usage("secret.use needs --target".into()))?;
            Request::secret(&a.agent, tool.unwrap_or_default(), &a.resource, target)
        }
        Action::ApiCall => {
            let (kind, id) = a
                .resource
                .split_once('/')
                .ok_or_else(|| CliError::usage("api.call needs --resource KIND/ID".into()))?;
            let verb = a.verb.as_deref().ok_or_else(|| CliError::usage("api.call needs --verb".into()))?;
            Request::api(&a.agent, kind, id, verb, a.owner.as_deref())
        }
    };
    if action.needs_tool() && tool.is_none() {
        return Err(CliError::usage(format!("{} needs --tool", action.as_str())));
    }
    req = req.risk(a.risk).run(&a.run_id);
    if let Some(t) = &a.at {
        req = req.at(parse_time(t)?);
    }
    let path = config_path(a.config.clone(), home)?;
    let opts = load_options(&a.env)?;
    let engine = airlock_policy::load_engine(&path, &opts).map_err(|e| {
        let list: Vec<String> = e.diagnostics.iter().map(render).collect();
        CliError::input(format!("config rejected:\n{}", list.join("\n")))
    })?;
    let normalized = engine.normalize(&req);
    let outcome = engine.decide(&req);
    let d: &Decision = &outcome.decision;
    let compiled = engine.compiled();
    let v = explanation(&engine, &req);
    let policies = v["policies"].as_array().cloned().unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string_pretty(&v).expect("serialisable"));
    } else {
        println!("{}  {}", if d.allowed { "ALLOW" } else { "DENY" }, a.action);
        match &normalized {
            Ok(n) => println!(
                "request:  {} (agent {}{}, profile {})",
                n.resource,
                n.agent,
                n.tool.as_ref().map(|t| format!(", tool {t}")).unwrap_or_default(),
                compiled.model.profile
            ),
            Err(_) => println!("request:  invalid"),
        }
        println!("reason:   {}", d.reason);
        if d.policies.is_empty() {
            println!("policies: none matched (default deny)");
        }
        for (id, p) in d.policies.iter().zip(&policies) {
            match p["origin"].as_str() {
                Some(o) => println!("policy:   {id} ({o})"),
                None => println!("policy:   {id} (built in)"),
            }
            if let Some(text) = compiled.policy_text(id) {
                for line in text.lines() {
                    println!("    {line}");
                }
            }
        }
        for e in &d.errors {
            println!("error:    {e}");
        }
    }
    if d.allowed { Ok(()) } else { Err(CliError { code: 9, message: String::new() }) }
}

/// A decision on `req` with what decided it: the policies (with where they were written and their Cedar text),
/// the reason, errors, and the request as the engine saw it. `airlock policy explain --json` and the API's
/// `POST /v1/policy/explain` answer this.
pub(crate) fn explanation(engine: &airlock_policy::engine::Engine, req: &Request) -> serde_json::Value {
    let normalized = engine.normalize(req);
    let outcome = engine.decide(req);
    let d: &Decision = &outcome.decision;
    let compiled = engine.compiled();
    let policies: Vec<serde_json::Value> = d
        .policies
        .iter()
        .map(|id| {
            let origin = compiled.policy_origin(id).map(|o| format!("{}:{}:{}", o.file.display(), o.line, o.column));
            serde_json::json!({ "id": id, "origin": origin, "cedar": compiled.policy_text(id) })
        })
        .collect();
    serde_json::json!({
        "allowed": d.allowed,
        "decision": if d.allowed { "allow" } else { "deny" },
        "reason": d.reason,
        "policies": policies,
        "errors": d.errors,
        "request": normalized.as_ref().map(|n| serde_json::json!({
            "agent": n.agent, "tool": n.tool, "action": n.action, "resource": n.resource.to_string(),
            "profile": compiled.model.profile, "weekday": n.weekday, "minute": n.minute, "risk_score": n.risk_score,
        })).ok(),
    })
}
