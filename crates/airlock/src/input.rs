//! Where secrets come from on the command line: stdin, a no-echo prompt, an environment variable or a file.
//! Never argv, where every user on the machine can read them in /proc.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use airlock_crypto::{CryptoError, SecretBytes};
use airlock_vault::MAX_VALUE_LEN;
use zeroize::Zeroizing;

use crate::CliError;

/// Where a passphrase comes from, in order: environment variable, file, terminal prompt.
pub struct PassphraseSource {
    env_var: &'static str,
    file: Option<PathBuf>,
    prompt: &'static str,
    confirm: bool,
    cached: Option<SecretBytes>,
}

impl PassphraseSource {
    pub fn new(env_var: &'static str, file: Option<PathBuf>, prompt: &'static str, confirm: bool) -> Self {
        PassphraseSource { env_var, file, prompt, confirm, cached: None }
    }

    /// Whether a passphrase can be had without failing (so unlock can skip passphrase slots cleanly).
    pub fn available(&self) -> bool {
        std::env::var_os(self.env_var).is_some() || self.file.is_some() || tty_available()
    }

    /// The passphrase, asked for at most once per command.
    pub fn get(&mut self) -> Result<SecretBytes, CryptoError> {
        if let Some(p) = &self.cached {
            return Ok(p.clone());
        }
        let p = if let Some(v) = std::env::var_os(self.env_var) {
            SecretBytes::new(v.into_encoded_bytes())
        } else if let Some(f) = &self.file {
            read_passphrase_file(f)?
        } else if tty_available() {
            let first = Zeroizing::new(prompt(self.prompt)?);
            if self.confirm {
                let second = Zeroizing::new(prompt("Repeat passphrase: ")?);
                if !airlock_crypto::ct_eq(first.as_bytes(), second.as_bytes()) {
                    return Err(CryptoError::Kdf("the two passphrases differ"));
                }
            }
            SecretBytes::copy_from(first.as_bytes())
        } else {
            return Err(CryptoError::PassphraseUnavailable);
        };
        if p.is_empty() {
            return Err(CryptoError::EmptyPassphrase);
        }
        self.cached = Some(p.clone());
        Ok(p)
    }
}

fn prompt(label: &str) -> Result<String, CryptoError> {
    rpassword::prompt_password(label).map_err(|_| CryptoError::PassphraseUnavailable)
}

fn tty_available() -> bool {
    std::fs::File::open("/dev/tty").is_ok() && (std::io::stdin().is_terminal() || std::io::stderr().is_terminal())
}

fn read_passphrase_file(path: &Path) -> Result<SecretBytes, CryptoError> {
    let raw = airlock_crypto::kek::read_private_file(path, 4096)?;
    Ok(SecretBytes::copy_from(strip_newline(raw.expose())))
}

fn strip_newline(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// Reads a secret value: all of stdin when it is piped, or a confirmed no-echo prompt on a terminal. One trailing
/// newline is removed unless `raw` (so `echo "$TOKEN" |` works, and binary values survive with `--raw`).
pub fn read_value(raw: bool) -> Result<SecretBytes, CliError> {
    if std::io::stdin().is_terminal() {
        let a = Zeroizing::new(
            rpassword::prompt_password("Secret value (input hidden): ").map_err(|e| CliError::input(e.to_string()))?,
        );
        let b =
            Zeroizing::new(rpassword::prompt_password("Repeat value: ").map_err(|e| CliError::input(e.to_string()))?);
        if !airlock_crypto::ct_eq(a.as_bytes(), b.as_bytes()) {
            return Err(CliError::input("the two values differ; nothing was stored".into()));
        }
        return Ok(SecretBytes::copy_from(a.as_bytes()));
    }
    // Room for the largest value up front, so the buffer never grows by moving (leaving a copy behind).
    // Untouched capacity costs address space, not memory.
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_VALUE_LEN + 3));
    std::io::stdin()
        .take(MAX_VALUE_LEN as u64 + 3)
        .read_to_end(&mut buf)
        .map_err(|e| CliError::input(format!("reading the value from stdin: {e}")))?;
    let v = if raw { &buf[..] } else { strip_newline(&buf) };
    if v.len() > MAX_VALUE_LEN {
        // We stopped reading at the limit, so the true length is unknown: say so rather than guess.
        return Err(CliError::input(format!(
            "the secret value is more than {MAX_VALUE_LEN} bytes; the limit is {MAX_VALUE_LEN}"
        )));
    }
    Ok(SecretBytes::copy_from(v))
}
