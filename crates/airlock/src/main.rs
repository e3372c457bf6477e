//! `airlock`: the command-line front end. Thin by design: parsing, prompting and printing live here; every
//! decision lives in the library crates.
//!
//! Exit codes (also in `docs/cli.md`):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | internal or I/O error |
//! | 2 | usage error (bad flags or arguments) |
//! | 3 | could not unlock: wrong passphrase or key, no usable KEK slot, vault locked |
//! | 4 | not found: no vault, or no such secret |
//! | 5 | conflict: the vault or secret already exists |
//! | 6 | integrity failure: vault file truncated, corrupt or tampered with |
//! | 7 | busy: another Airlock process held the write lock too long |
//! | 8 | invalid input: bad name, host, value, option, or insecure file permissions |

mod cli;
mod commands;
mod demo;
mod input;

use std::process::ExitCode;

use airlock_vault::{CryptoError, VaultError};
use clap::Parser;

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
    let args = cli::Cli::parse();
    let json = args.json;
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                let v = serde_json::json!({ "error": { "code": e.code, "message": e.message } });
                eprintln!("{v}");
            } else {
                eprintln!("airlock: error: {}", e.message);
            }
            ExitCode::from(e.code)
        }
    }
}
