//! `airlock sealed`: sealed files for git (`file://PATH#KEY`): keys in the clear, each value encrypted on its own,
//! a MAC over the whole file. The format and its guarantees are in airlock-vault's `backend::sealed_file`.
//!
//! No command here prints a value: there is no `get`. Values enter through stdin or a hidden prompt only; the
//! daemon and `airlock run` read them through the `file://` backend.
//!
//! Unlocking: the global `--keyfile PATH` opens a key-file recipient; otherwise the passphrase comes from
//! `$AIRLOCK_SEALED_PASSPHRASE`, the global `--passphrase-file`, or a prompt. A new passphrase (for `init`) comes
//! from the same places; for `add-recipient` and `rekey`, from `$AIRLOCK_SEALED_NEW_PASSPHRASE`,
//! `--new-passphrase-file`, or a prompt.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use airlock_crypto::{Cipher, CryptoError, SecretBytes};
use airlock_vault::backend::sealed_file::{
    NewRecipient, RecipientInfo, SealedError, SealedFile, SetOutcome, Unlock, Unlocker, check_key,
};
use airlock_vault::formats::check_value_format;
use clap::Subcommand;

use crate::CliError;
use crate::cli::{CipherArg, KdfArgs};
use crate::commands::{Ctx, argon2_params, warn_if_weak};
use crate::input::{self, PassphraseSource};

/// Where a passphrase for opening a sealed file comes from (before a prompt).
pub const PASSPHRASE_VAR: &str = "AIRLOCK_SEALED_PASSPHRASE";
/// Where a new recipient's passphrase comes from in `add-recipient` and `rekey` (before a prompt).
pub const NEW_PASSPHRASE_VAR: &str = "AIRLOCK_SEALED_NEW_PASSPHRASE";

#[derive(Subcommand, Debug)]
pub enum SealedCommand {
    /// Create a sealed file, with no values yet. Recipients (repeatable): `passphrase` (from
    /// $AIRLOCK_SEALED_PASSPHRASE, --passphrase-file or a prompt) or `keyfile:PATH` (created with 32 random bytes,
    /// 0600, if missing; keep it out of git), each optionally named: `ci=keyfile:/secure/ci.key`.
    Init {
        file: PathBuf,
        #[arg(long = "recipient", value_name = "SPEC", default_value = "passphrase")]
        recipients: Vec<String>,
        /// The cipher values are sealed with.
        #[arg(long, value_enum, default_value_t = CipherArg::Xchacha20Poly1305)]
        cipher: CipherArg,
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// Store a value at KEY (a dotted path, e.g. `db.password`); the value is read from stdin or a hidden prompt,
    /// never from arguments. Setting the value a key already has changes nothing in the file.
    Set {
        file: PathBuf,
        key: String,
        /// Keep stdin byte-for-byte (don't strip one trailing newline).
        #[arg(long)]
        raw: bool,
    },
    /// The key paths (never values), after checking the file's MAC.
    List { file: PathBuf },
    /// Remove the value at KEY.
    Rm { file: PathBuf, key: String },
    /// Check the MAC and open every value (none is shown); exit 6 naming what does not check out.
    Verify { file: PathBuf },
    /// Add a recipient (SPEC as for `init`) for the file's current data key. A new passphrase comes from
    /// $AIRLOCK_SEALED_NEW_PASSPHRASE, --new-passphrase-file or a prompt.
    AddRecipient {
        file: PathBuf,
        #[arg(value_name = "SPEC")]
        spec: String,
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        kdf: KdfArgs,
    },
    /// Remove a recipient by name (`verify` lists them). It may have kept the data key: rotate what it could read,
    /// and `rekey`.
    RemoveRecipient { file: PathBuf, name: String },
    /// A new data key: every value re-encrypted, and the recipients replaced by those given (repeatable SPECs, as
    /// for `init`; a new passphrase as for `add-recipient`).
    Rekey {
        file: PathBuf,
        #[arg(long = "recipient", value_name = "SPEC", required = true)]
        recipients: Vec<String>,
        /// Switch new envelopes to this cipher (default: keep the file's).
        #[arg(long, value_enum)]
        cipher: Option<CipherArg>,
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        kdf: KdfArgs,
    },
}

impl From<SealedError> for CliError {
    fn from(e: SealedError) -> Self {
        use SealedError as S;
        let code = match &e {
            S::FileNotFound { .. } | S::KeyNotFound { .. } | S::RecipientNotFound { .. } => 4,
            S::FileExists { .. } | S::Exists { .. } => 5,
            S::Unlock { .. } => 3,
            S::ValueTampered { .. } | S::Tampered { .. } | S::Malformed { .. } => 6,
            S::Busy { .. } => 7,
            S::Invalid { .. } => 8,
            S::Io { .. } => 1,
            S::Crypto { file, source: CryptoError::PassphraseUnavailable } => {
                return CliError { code: 3, message: format!("sealed file {file}: {}", no_passphrase(PASSPHRASE_VAR)) };
            }
            S::Crypto { source, .. } => return CliError::from_crypto(source, e.to_string()),
        };
        CliError { code, message: e.to_string() }
    }
}

/// What to say when a passphrase is needed and none can be had (airlock-crypto's message names the vault's variable).
fn no_passphrase(var: &str) -> String {
    format!(
        "a passphrase is needed but none is available (set {var}, pass --passphrase-file, use --keyfile for a key-file \
         recipient, or run in a terminal)"
    )
}

/// A recipient spec from the command line: `[NAME=]passphrase` or `[NAME=]keyfile:PATH`.
enum Spec {
    Passphrase,
    Keyfile(PathBuf),
}

fn parse_specs(specs: &[String]) -> Result<Vec<(Option<String>, Spec)>, CliError> {
    let mut out = Vec::new();
    for s in specs {
        let (name, rest) = match s.split_once('=') {
            Some((n, r)) if !n.contains(':') => (Some(n.to_string()), r),
            _ => (None, s.as_str()),
        };
        let spec = match rest {
            "passphrase" => Spec::Passphrase,
            k if k.len() > "keyfile:".len() && k.starts_with("keyfile:") => Spec::Keyfile(PathBuf::from(&k[8..])),
            // Deliberately not repeated: a token pasted here must not be echoed.
            _ => {
                return Err(CliError::input(
                    "bad recipient: expected passphrase or keyfile:PATH, optionally NAME= in front".into(),
                ));
            }
        };
        out.push((name, spec));
    }
    if out.iter().filter(|(_, s)| matches!(s, Spec::Passphrase)).count() > 1 {
        return Err(CliError::input(
            "one passphrase recipient per command (the same passphrase twice adds nothing); add another with \
             `airlock sealed add-recipient`"
                .into(),
        ));
    }
    Ok(out)
}

fn cipher(c: CipherArg) -> Cipher {
    match c {
        CipherArg::Xchacha20Poly1305 => Cipher::XChaCha20Poly1305,
        CipherArg::Aes256Gcm => Cipher::Aes256Gcm,
    }
}

/// How this command opens sealed files: the global `--keyfile`, else a passphrase.
fn unlocker(ctx: &Ctx) -> Unlocker {
    if let Some(k) = &ctx.keyfile {
        return Unlocker::new(Unlock::keyfile(k));
    }
    let source = Mutex::new(PassphraseSource::new(
        PASSPHRASE_VAR,
        ctx.passphrase_file.clone(),
        "Sealed file passphrase: ",
        false,
    ));
    Unlocker::new(Unlock::passphrase(move || source.lock().unwrap_or_else(|p| p.into_inner()).get()))
}

/// The recipients to create, asking for a new passphrase (confirmed, strength-checked) if one is wanted.
fn new_recipients(
    specs: Vec<(Option<String>, Spec)>,
    file: &Path,
    kdf: &KdfArgs,
    (mut pass, var): (PassphraseSource, &str),
) -> Result<Vec<NewRecipient>, CliError> {
    let mut out = Vec::new();
    for (name, spec) in specs {
        let r = match spec {
            Spec::Passphrase => {
                let p = pass.get().map_err(|e| match e {
                    CryptoError::PassphraseUnavailable => CliError { code: 3, message: no_passphrase(var) },
                    other => other.into(),
                })?;
                warn_if_weak(&p);
                NewRecipient::passphrase(p, argon2_params(kdf)?)
            }
            Spec::Keyfile(path) => {
                note_keyfile(&path, file);
                NewRecipient::keyfile(path)
            }
        };
        out.push(match name {
            Some(n) => r.named(n),
            None => r,
        });
    }
    Ok(out)
}

/// Says when a key file is about to be created, and warns when it sits where it could be committed with the file.
fn note_keyfile(key: &Path, file: &Path) {
    let dir_of = |p: &Path| {
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        parent.canonicalize().ok()
    };
    if !key.exists() {
        eprintln!("airlock: note: creating key file {} (32 random bytes, mode 0600)", key.display());
    }
    if dir_of(key).is_some() && dir_of(key) == dir_of(file) {
        eprintln!(
            "airlock: warning: key file {} is in the same directory as {}: keep it out of git (add it to .gitignore)",
            key.display(),
            file.display()
        );
    }
}

fn recipients_text(list: &[RecipientInfo]) -> String {
    list.iter()
        .map(|r| {
            let detail = if r.detail.is_empty() { String::new() } else { format!(" ({})", r.detail) };
            format!("  recipient {}: {}{detail}\n", r.name, r.kind)
        })
        .collect()
}

pub fn run(ctx: &Ctx, c: SealedCommand) -> Result<(), CliError> {
    match c {
        SealedCommand::Init { file, recipients, cipher: c, kdf } => {
            let specs = parse_specs(&recipients)?;
            if std::fs::symlink_metadata(&file).is_ok() {
                return Err(SealedError::FileExists { file: file.display().to_string() }.into());
            }
            let pass = PassphraseSource::new(
                PASSPHRASE_VAR,
                ctx.passphrase_file.clone(),
                "New sealed file passphrase: ",
                true,
            );
            let recipients = new_recipients(specs, &file, &kdf, (pass, PASSPHRASE_VAR))?;
            let f = SealedFile::create(&file, cipher(c), recipients)?;
            let list = f.recipients();
            let out = serde_json::json!({ "file": file, "file_id": f.file_id(), "recipients": list });
            ctx.print(&out, || {
                format!("Created sealed file {} (file id {})\n{}", file.display(), f.file_id(), recipients_text(&list))
            });
        }
        SealedCommand::Set { file, key, raw } => {
            check_key(&key).map_err(CliError::input)?;
            let u = unlocker(ctx);
            // Unlock first, so a wrong passphrase or a damaged file fails before the value is typed.
            SealedFile::open(&file, &u)?;
            let value: SecretBytes = input::read_value(raw)?;
            let hint = key.rsplit('.').next().unwrap_or(&key);
            for finding in check_value_format(hint, &[], value.expose()) {
                eprintln!("airlock: warning: {key}: {finding}");
            }
            let outcome = SealedFile::edit(&file, &u, |f| f.set(&key, &value))?;
            let out = serde_json::json!({ "file": file, "key": key, "outcome": outcome });
            ctx.print(&out, || match outcome {
                SetOutcome::Unchanged => format!("{key} already has this value; {} is unchanged\n", file.display()),
                SetOutcome::Added => format!("Added {key} to {} (the value is never shown)\n", file.display()),
                SetOutcome::Changed => format!("Changed {key} in {} (the value is never shown)\n", file.display()),
            });
        }
        SealedCommand::List { file } => {
            let keys = SealedFile::open(&file, &unlocker(ctx))?.keys();
            ctx.print(&serde_json::json!({ "file": file, "keys": keys }), || {
                if keys.is_empty() { "No keys.\n".into() } else { keys.iter().map(|k| format!("{k}\n")).collect() }
            });
        }
        SealedCommand::Rm { file, key } => {
            SealedFile::edit(&file, &unlocker(ctx), |f| f.remove(&key))?;
            ctx.print(&serde_json::json!({ "file": file, "removed": key }), || {
                format!("Removed {key} from {}\n", file.display())
            });
        }
        SealedCommand::Verify { file } => {
            let report = SealedFile::open(&file, &unlocker(ctx))?.verify()?;
            ctx.print(&serde_json::json!({ "file": file, "ok": true, "report": report }), || {
                format!(
                    "{}: OK: the MAC matches and all {} values open (file id {}, {})\n{}",
                    file.display(),
                    report.values,
                    report.file_id,
                    report.cipher,
                    recipients_text(&report.recipients)
                )
            });
        }
        SealedCommand::AddRecipient { file, spec, new_passphrase_file, kdf } => {
            let specs = parse_specs(std::slice::from_ref(&spec))?;
            let u = unlocker(ctx);
            SealedFile::open(&file, &u)?;
            let pass =
                PassphraseSource::new(NEW_PASSPHRASE_VAR, new_passphrase_file, "New recipient's passphrase: ", true);
            let mut recipients = new_recipients(specs, &file, &kdf, (pass, NEW_PASSPHRASE_VAR))?;
            let r = recipients.pop().expect("one spec");
            let added = SealedFile::edit(&file, &u, |f| f.add_recipient(r))?;
            ctx.print(&serde_json::json!({ "file": file, "added": added }), || {
                format!("Added to {}:\n{}", file.display(), recipients_text(std::slice::from_ref(&added)))
            });
        }
        SealedCommand::RemoveRecipient { file, name } => {
            SealedFile::edit(&file, &unlocker(ctx), |f| f.remove_recipient(&name))?;
            eprintln!(
                "airlock: warning: {name} could open {} until now and may have kept its data key: rotate the secrets \
                 it could read, and run `airlock sealed rekey` so values written from now on use a new data key",
                file.display()
            );
            ctx.print(&serde_json::json!({ "file": file, "removed_recipient": name }), || {
                format!("Removed recipient {name} from {}\n", file.display())
            });
        }
        SealedCommand::Rekey { file, recipients, cipher: c, new_passphrase_file, kdf } => {
            let specs = parse_specs(&recipients)?;
            let u = unlocker(ctx);
            SealedFile::open(&file, &u)?;
            let pass =
                PassphraseSource::new(NEW_PASSPHRASE_VAR, new_passphrase_file, "New sealed file passphrase: ", true);
            let recipients = new_recipients(specs, &file, &kdf, (pass, NEW_PASSPHRASE_VAR))?;
            let list = SealedFile::edit(&file, &u, |f| {
                f.rekey(c.map(cipher), recipients)?;
                Ok(f.recipients())
            })?;
            ctx.print(&serde_json::json!({ "file": file, "recipients": list }), || {
                format!(
                    "Rekeyed {}: a new data key, every value re-encrypted; it now opens with:\n{}",
                    file.display(),
                    recipients_text(&list)
                )
            });
        }
    }
    Ok(())
}
