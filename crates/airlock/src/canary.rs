//! `airlock canary`: per-session canary tokens (see `airlock_guard::canary`), and the registry that the proxy's
//! leak scan and `validate-output` read.
//!
//! The registry, `$AIRLOCK_HOME/canaries`, lists session and purpose, one pair per line, never a token: tokens are
//! derived again from `$AIRLOCK_HOME/canary.key` whenever they are needed.

use std::io::Write;
use std::path::{Path, PathBuf};

use airlock_broker::leak::{LeakScannerBuilder, Source};
use airlock_guard::canary::{Canary, Purpose};

use crate::CliError;
use crate::cli::{CanaryArgs, CanaryCommand};
use crate::commands::Ctx;

pub(crate) fn registry(home: &Path) -> PathBuf {
    home.join("canaries")
}

/// Session names go into ids, audit records and file lines: a small, safe alphabet.
fn check_session(s: &str) -> Result<(), CliError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(format!("session {s:?}: use 1 to 64 letters, digits, '-', '_' or '.'")))
    }
}

/// The canary of `session` for `purpose`, from the home's key (made on first use).
fn derive(home: &Path, session: &str, purpose: Purpose) -> Result<Canary, CliError> {
    {
        use std::os::unix::fs::DirBuilderExt;
        let _ = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(home);
    }
    let key = crate::redact::home_key(home, "canary.key").ok_or_else(|| {
        CliError::input(format!("canaries need a key in {}, which cannot be written", home.display()))
    })?;
    let key = airlock_crypto::Key32::from_bytes(key);
    let seed =
        airlock_crypto::kdf::hmac_sha256(&key, format!("airlock canary\0{session}\0{}", purpose.as_str()).as_bytes());
    Ok(Canary::from_seed(session, purpose, seed))
}

/// Every registered canary. A registry line that does not parse is an error, not skipped: a canary silently
/// dropped from the leak scan is a hole nobody sees.
pub(crate) fn registered(home: &Path) -> Result<Vec<Canary>, CliError> {
    let path = registry(home);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CliError::input(format!("cannot read {}: {e}", path.display()))),
    };
    let mut out: Vec<Canary> = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = || CliError::input(format!("{}:{}: expected \"SESSION PURPOSE\"", path.display(), n + 1));
        let (session, purpose) = line.split_once(' ').ok_or_else(bad)?;
        let purpose = Purpose::parse(purpose).ok_or_else(bad)?;
        check_session(session).map_err(|_| bad())?;
        if !out.iter().any(|c| c.session == session && c.purpose == purpose) {
            out.push(derive(home, session, purpose)?);
        }
    }
    Ok(out)
}

/// Adds every registered canary to a known-value scanner.
pub(crate) fn add_known(home: &Path, builder: &mut LeakScannerBuilder) -> Result<usize, CliError> {
    let canaries = registered(home)?;
    let mut n = 0;
    for c in &canaries {
        for (id, token) in c.values() {
            builder.add(Source::Canary(id), token.as_bytes());
            n += 1;
        }
    }
    Ok(n)
}

pub(crate) fn canary(ctx: &Ctx, a: CanaryArgs) -> Result<(), CliError> {
    match a.command {
        CanaryCommand::New { session, purpose } => {
            check_session(&session)?;
            let purpose = Purpose::parse(&purpose).ok_or_else(|| {
                let names: Vec<&str> = Purpose::ALL.iter().map(|p| p.as_str()).collect();
                CliError::usage(format!("unknown purpose {purpose:?}: one of {}", names.join(", ")))
            })?;
            let c = derive(&ctx.home, &session, purpose)?;
            if !registered(&ctx.home)?.contains(&c) {
                let path = registry(&ctx.home);
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| CliError::input(format!("cannot write {}: {e}", path.display())))?;
                writeln!(f, "{session} {}", purpose.as_str())
                    .map_err(|e| CliError::input(format!("cannot write {}: {e}", path.display())))?;
            }
            // The planted text is the point of the command; it goes to stdout only, never to a log.
            let text = c.plant();
            if ctx.json {
                println!("{}", serde_json::json!({ "ids": c.ids(), "purpose": purpose.as_str(), "plant": text }));
            } else {
                println!("{}", text.trim_end());
            }
            Ok(())
        }
        CanaryCommand::List => {
            for c in registered(&ctx.home)? {
                if ctx.json {
                    println!(
                        "{}",
                        serde_json::json!({ "session": c.session, "purpose": c.purpose.as_str(), "ids": c.ids() })
                    );
                } else {
                    println!("{} {}", c.session, c.purpose.as_str());
                }
            }
            Ok(())
        }
    }
}
