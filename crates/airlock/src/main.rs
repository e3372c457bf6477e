//! `airlock`: the command-line front end. Thin by design: parsing, prompting and printing live here; every
//! decision lives in the library crates.
//!
//! Exit codes (also in README.md):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | internal or I/O error |
//! | 2 | usage error (bad flags or arguments) |
//! | 3 | could not unlock: wrong passphrase or key, no usable KEK slot, vault locked |
//! | 4 | not found: no vault, or no such secret or agent |
//! | 5 | conflict: the vault, secret or agent already exists; `agent rm` of an agent with sub-agents (without `--cascade`) |
//! | 6 | integrity failure: vault file truncated, corrupt or tampered with |
//! | 7 | busy: another Airlock process held the write lock too long |
//! | 8 | invalid input: bad name, host, value, option, or insecure file permissions; a config that fails `policy check` |
//! | 9 | denied: `policy explain` decided the request is not allowed |
//! | 10 | the audit log failed verification (or holds a torn record: run `airlock audit repair`) |
//! | 11 | `airlock run`: this machine cannot enforce what the policy needs (`airlock run --check` says what is missing) |
//! | 12 | `airlock run`: the sandbox could not be set up, or the command could not be started in it |
//! | 13 | `airlock scan-secrets`: secrets (or personal data) were found |
//! | 14 | `airlock scan` and `validate-output`: the text is flagged |
//! | 15 | `airlock scan` and `validate-output`: the text should be blocked |
//! | other | `airlock run`: the tool's own exit code, or 128 + the signal that ended it |

mod agents;
mod audit;
mod backends;
mod ca;
mod canary;
mod cli;
mod client;
mod commands;
mod demo;
mod guard;
mod harden;
mod input;
mod policy;
mod proxy;
mod redact;
mod run;
mod sealed;
mod secret_sources;
mod serve;
mod supervise;
mod validate;

use std::process::ExitCode;

use airlock_vault::{CryptoError, VaultError};
use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Every heap block is wiped when freed (and when a growing buffer moves). Zeroizing types clean up after
/// themselves, but libraries we hand secrets to (the passphrase-strength estimator, stdin reads that grow a
/// buffer) make copies we cannot reach; this catches those too.
#[global_allocator]
static ALLOCATOR: zeroizing_alloc::ZeroAlloc<std::alloc::System> = zeroizing_alloc::ZeroAlloc(std::alloc::System);

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn input(message: String) -> Self {
        CliError { code: 8, message }
    }
    pub fn usage(message: String) -> Self {
        CliError { code: 2, message }
    }
}

impl From<VaultError> for CliError {
    fn from(e: VaultError) -> Self {
        use VaultError as V;
        let code = match &e {
            V::WrongPassphrase | V::NoSlotOpened { .. } | V::Locked | V::Expired | V::Rekeyed => 3,
            V::NotInitialized { .. } | V::NotFound(_) | V::VersionNotFound { .. } => 4,
            V::AlreadyInitialized { .. } | V::AlreadyExists(_) => 5,
            V::Truncated { .. }
            | V::Corrupt { .. }
            | V::NotAVault { .. }
            | V::UnsupportedFormat { .. }
            | V::Tampered(_)
            | V::RecordTampered { .. } => 6,
            V::Busy { .. } => 7,
            V::EmptyValue
            | V::ValueTooLarge { .. }
            | V::InvalidName { .. }
            | V::InvalidHost { .. }
            | V::InvalidInjection(_)
            | V::InvalidOption(_)
            | V::NoKekSlots
            | V::Ephemeral(_)
            | V::InsecurePermissions { .. }
            | V::Reference(_) => 8,
            V::Io { .. } => 1,
            V::Crypto(c) => return CliError::from_crypto(c, e.to_string()),
        };
        CliError { code, message: e.to_string() }
    }
}

impl CliError {
    fn from_crypto(c: &CryptoError, message: String) -> Self {
        use CryptoError as C;
        let code = match c {
            C::WrongPassphrase | C::WrongKey { .. } | C::PassphraseUnavailable | C::OsKeyring(_) => 3,
            C::Authentication
            | C::Malformed(_)
            | C::UnsupportedVersion(_)
            | C::UnsupportedCipher(_)
            | C::UnknownTerm(_) => 6,
            _ => 8,
        };
        CliError { code, message }
    }
}

impl From<CryptoError> for CliError {
    fn from(e: CryptoError) -> Self {
        let m = e.to_string();
        CliError::from_crypto(&e, m)
    }
}

fn main() -> ExitCode {
    // A sandbox's stage 1 is this binary re-executed; it must not parse a command line or touch the vault.
    airlock_sandbox::init::run_if_requested();
    if let Err(e) = harden::harden() {
        eprintln!("airlock: warning: {e}");
    }
    harden::die_with_parent();
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => return usage_error(e),
    };
    let json = args.json;
    init_logging();
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // An empty message means the command already reported (e.g. `policy explain` printing a denial).
        Err(e) if e.message.is_empty() => ExitCode::from(e.code),
        Err(e) => {
            let message = redact_message(&e.message);
            if json {
                let v = serde_json::json!({ "error": { "code": e.code, "message": message } });
                eprintln!("{v}");
            } else {
                eprintln!("airlock: error: {message}");
            }
            ExitCode::from(e.code)
        }
    }
}

/// An error message can quote what a server or a file said, and that can hold a credential: mask it like tool
/// output (credentials only; addresses and names stay, they are what the operator needs to read).
fn redact_message(message: &str) -> String {
    let scanner = airlock_redact::Scanner::builtin();
    let (masked, _) = scanner.redact(message.as_bytes(), &airlock_redact::MaskStyle::Label);
    String::from_utf8_lossy(&masked).into_owned()
}

/// `AIRLOCK_LOG=error|warn|info|debug|trace` turns on logs (ours and our dependencies') on stderr, every event
/// masked by the redaction engine before it is written. Unset: no logging at all.
fn init_logging() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let Some(level) = std::env::var("AIRLOCK_LOG").ok().filter(|l| !l.is_empty()) else { return };
    let Ok(level) = level.parse::<tracing_subscriber::filter::LevelFilter>() else {
        eprintln!("airlock: warning: AIRLOCK_LOG={level:?} is not a level (error, warn, info, debug, trace); no logs");
        return;
    };
    let redactor = airlock_redact::Redactor::new(airlock_redact::Scanner::builtin(), airlock_redact::MaskStyle::Label);
    let layer = airlock_redact::log::fmt_layer(redactor, std::io::stderr).with_filter(level);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Reports a command-line error without echoing what was typed. clap's own messages quote the offending
/// argument, and a user who pastes a token as an argument by mistake must not see it copied to stderr (and into
/// whatever captures stderr). Messages that only name options and placeholders are passed through.
fn usage_error(e: clap::Error) -> ExitCode {
    let code = e.exit_code().clamp(0, 255) as u8;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        | ErrorKind::MissingRequiredArgument
        | ErrorKind::MissingSubcommand
        | ErrorKind::ArgumentConflict => {
            let _ = e.print();
            return ExitCode::from(code);
        }
        _ => {}
    }
    let context = |kind: ContextKind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => Some(v.join(", ")),
        _ => None,
    };
    let mut msg = match e.kind() {
        // Neither an unknown option nor an extra argument is shown: `--headerAuthorization: Bearer $T` (a missing
        // space) is an "option" too. The suggestion, when clap has one, names a real option and is safe.
        ErrorKind::UnknownArgument => match context(ContextKind::InvalidArg) {
            Some(arg) if arg.starts_with('-') => "unexpected option (not shown, in case it contains a secret)".into(),
            _ => "unexpected extra argument (not shown, in case it is a secret: secret values are read from stdin \
                  or a hidden prompt, never from arguments)"
                .to_string(),
        },
        ErrorKind::InvalidSubcommand => "unknown command".to_string(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = context(ContextKind::InvalidArg).unwrap_or_else(|| "an option".into());
            let mut m = format!("invalid value for {arg}");
            if let Some(valid) = context(ContextKind::ValidValue) {
                m += &format!(" (expected one of: {valid})");
            }
            m
        }
        _ => format!("invalid command line ({})", e.kind()),
    };
    for kind in [ContextKind::SuggestedArg, ContextKind::SuggestedSubcommand] {
        if let Some(s) = context(kind) {
            msg += &format!("; did you mean '{s}'?");
        }
    }
    if std::env::args_os().any(|a| a == "--json") {
        eprintln!("{}", serde_json::json!({ "error": { "code": code, "message": format!("usage error: {msg}") } }));
    } else {
        eprintln!("airlock: usage error: {msg}\nRun `airlock --help` (or `airlock COMMAND --help`) for usage.");
    }
    ExitCode::from(code)
}
