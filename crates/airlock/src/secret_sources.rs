//! `airlock secret import` and `airlock secret sync`: the local vault next to the stores a policy reads from.
//!
//! Why: teams move between stores. `import` copies one value from OpenBao, a keyring, the environment or a sealed
//! file into the vault (a migration, or a copy for a machine that must work offline); `sync` then says, for every
//! secret held in both places, whether the copies still agree, without showing either value, and `--pull` brings a
//! drifted local copy up to date. Both read the store the same way a run would (the policy's `[backends]`), and
//! every read is in the audit log as `secret.read`, like a run's.

use std::path::PathBuf;

use airlock_audit::event::activity;
use airlock_crypto::SecretBytes;
use airlock_vault::backend::{Fetched, Locator};
use airlock_vault::{SecretId, Vault, VaultError};
use serde::Serialize;

use crate::CliError;
use crate::audit::ChangeLog;
use crate::backends::Backends;
use crate::cli::{ImportArgs, SyncArgs};
use crate::commands::{Ctx, id_of, new_secret, note_unpinned, print_rotated, print_stored, warn_formats};

/// Exit code of `secret sync` when a copy differs or is missing (also in README.md).
pub const EXIT_DRIFT: u8 = 16;

/// The policy's stores, or (with no config file at all) the stores that need no configuration: the keyrings, the
/// process environment, and sealed files unlocked from `$AIRLOCK_SEALED_PASSPHRASE`.
fn stores(ctx: &Ctx, config: Option<PathBuf>, profile: Option<String>) -> Result<(Backends, Option<Model>), CliError> {
    let path = match crate::policy::config_path(config, &ctx.home) {
        Ok(p) => p,
        Err(e) if e.code == 4 => {
            let cwd = std::env::current_dir()
                .map_err(|e| CliError { code: 1, message: format!("current directory: {e}") })?;
            return Ok((Backends::new(&Default::default(), &cwd), None));
        }
        Err(e) => return Err(e),
    };
    let cwd = std::env::current_dir().map_err(|e| CliError { code: 1, message: format!("current directory: {e}") })?;
    let opts = airlock_policy::load::LoadOptions::from_env(profile, cwd);
    let bad = |e: airlock_policy::error::ConfigError| CliError::input(format!("{}: {e}", path.display()));
    let doc = airlock_policy::load::load_file(&path, &opts).map_err(bad)?;
    let (model, _warnings) = airlock_policy::model::build(&doc).map_err(bad)?;
    let backends = Backends::new(&model.file.backends, &crate::backends::config_dir(&path));
    Ok((backends, Some(model)))
}

type Model = airlock_policy::model::Model;

/// A store locator from the command line: never a local vault name (that would copy the vault into itself).
fn store_locator(text: &str) -> Result<Locator, CliError> {
    match Locator::parse(text, airlock_vault::DEFAULT_WORKSPACE)? {
        Locator::Local(_) => Err(CliError::input(format!(
            "--from {text:?}: expected a store locator (bao://MOUNT/PATH#FIELD, keyring://SERVICE/USER, keyctl://DESC, \
             env://NAME or file://PATH#KEY)"
        ))),
        l => Ok(l),
    }
}

pub fn import(ctx: &Ctx, a: ImportArgs) -> Result<(), CliError> {
    let source = store_locator(&a.from)?;
    let id = id_of(&a.name, &a.workspace)?;
    let opts = new_secret(&a.new)?;
    opts.validate()?;
    let (stores, _) = stores(ctx, a.config.clone(), a.profile.clone())?;
    // Unlock and check the name before reading the store, so a wrong passphrase or a taken name costs no read.
    let mut vault = ctx.open_unlocked()?;
    let existing = match vault.info(&id) {
        Ok(info) => Some(info),
        Err(VaultError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    if existing.is_some() && !a.update {
        return Err(CliError {
            code: 5,
            message: format!("{id} already exists; pass --update to give it the store's value as a new version"),
        });
    }
    if existing.is_some() && a.new.any() {
        return Err(CliError::usage(format!(
            "{id} exists: --update copies only the value (change pins with `airlock secret pin`)"
        )));
    }
    let audit = ChangeLog::open(ctx, &mut vault)?;
    let fetched = stores.read(&source)?;
    audit.append(crate::proxy::secret_read_event(&id.name, None, &source, &fetched).message(format!(
        "secret {} read from {source}{}, for `airlock secret import`",
        id.name,
        read_version(&fetched)
    )))?;
    let value = SecretBytes::copy_from(fetched.value.expose());
    airlock_vault::check_value(&value)?;
    match existing {
        None => {
            warn_formats(&id, &opts.hosts, &value);
            note_unpinned(&id, &a.name, &opts);
            let info = vault.set(&id, opts, value)?;
            audit.record(
                activity::CREATE,
                "secret",
                &id.to_string(),
                format!("secret {id} stored, imported from {source}{}", version_note(&fetched)),
            )?;
            print_stored(ctx, &id, &info);
        }
        Some(info) => {
            warn_formats(&id, &info.hosts, &value);
            if vault.resolve(&id)?.ct_eq(value.expose()) {
                audit.close()?;
                ctx.print(&serde_json::json!({ "secret": id.to_string(), "unchanged": true }), || {
                    format!("{id} already holds the value at {source}; nothing changed\n")
                });
                return Ok(());
            }
            let info = vault.rotate(&id, value)?;
            audit.record(
                activity::UPDATE,
                "secret",
                &id.to_string(),
                format!(
                    "secret {id} rotated to version {}, imported from {source}{}",
                    info.current_version,
                    version_note(&fetched)
                ),
            )?;
            print_rotated(ctx, &id, &info);
        }
    }
    Ok(())
}

/// The version as `secret.read` messages give it (`, version 2`), as a run's reads do.
fn read_version(f: &Fetched) -> String {
    f.version.map_or_else(String::new, |v| format!(", version {v}"))
}

fn version_note(f: &Fetched) -> String {
    f.version.map_or_else(String::new, |v| format!(" (version {v})"))
}

/// One secret's two copies, compared.
#[derive(Serialize)]
struct Pair {
    secret: String,
    source: String,
    /// `in-sync`, `drifted`, `pulled`, `missing-locally`, `missing-in-store` or `unreadable`.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_version: Option<u64>,
    /// Why a store could not be read, when it could not (never a value).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The store could not be read for now (down, overloaded, sealed): asking again later may work.
    #[serde(skip)]
    temporary: bool,
}

pub fn sync(ctx: &Ctx, a: SyncArgs) -> Result<(), CliError> {
    let (stores, model) = stores(ctx, a.config.clone(), a.profile.clone())?;
    let mut targets: Vec<(SecretId, Locator)> = Vec::new();
    match &a.against {
        Some(text) => {
            let [name] = a.names.as_slice() else {
                return Err(CliError::usage("--against compares one secret: name exactly one".into()));
            };
            targets.push((id_of(name, &a.workspace)?, store_locator(text)?));
        }
        None => {
            let Some(model) = &model else {
                return Err(CliError {
                    code: 4,
                    message: "no config: `secret sync` compares each [secrets.NAME] that has a source; name one \
                              secret and a store with --against instead"
                        .into(),
                });
            };
            for (name, spec) in &model.secrets {
                let Some(text) = &spec.source else { continue };
                if !a.names.is_empty() && !a.names.contains(name) {
                    continue;
                }
                let source = Locator::parse(text, airlock_vault::DEFAULT_WORKSPACE)
                    .map_err(|e| CliError::input(format!("[secrets.{name}] source: {e}")))?;
                targets.push((id_of(name, &a.workspace)?, source));
            }
            if let Some(missing) = a.names.iter().find(|n| model.secrets.get(*n).is_none_or(|s| s.source.is_none())) {
                return Err(CliError::input(format!(
                    "{missing} has no [secrets.{missing}] source to compare with; use --against LOCATOR"
                )));
            }
        }
    }
    let mut vault = ctx.open_unlocked()?;
    let audit = ChangeLog::open(ctx, &mut vault)?;
    let mut pairs = Vec::new();
    for (id, source) in targets {
        pairs.push(compare(&mut vault, &stores, &audit, &id, &source, a.pull)?);
    }
    audit.close()?;
    ctx.print(&pairs, || render(&pairs));
    let unreadable: Vec<&Pair> = pairs.iter().filter(|p| p.state == "unreadable").collect();
    if !unreadable.is_empty() {
        // "Try again later" only when that is true of every store that failed.
        let code = if unreadable.iter().all(|p| p.temporary) { crate::backends::EXIT_UNAVAILABLE } else { 1 };
        return Err(CliError { code, message: "a store could not be read; nothing was compared for it".into() });
    }
    if pairs.iter().any(|p| matches!(p.state, "drifted" | "missing-locally" | "missing-in-store")) {
        return Err(CliError { code: EXIT_DRIFT, message: "the copies differ (see above)".into() });
    }
    Ok(())
}

fn compare(
    vault: &mut Vault,
    stores: &Backends,
    audit: &ChangeLog,
    id: &SecretId,
    source: &Locator,
    pull: bool,
) -> Result<Pair, CliError> {
    let mut pair = Pair {
        secret: id.to_string(),
        source: source.to_string(),
        state: "in-sync",
        local_version: None,
        store_version: None,
        error: None,
        temporary: false,
    };
    let local = match vault.info(id) {
        Ok(info) => Some(info.current_version),
        Err(VaultError::NotFound(_)) => None,
        Err(e) => return Err(e.into()),
    };
    pair.local_version = local;
    let fetched = match stores.read(source) {
        Ok(f) => f,
        Err(e) if e.code == 4 => {
            pair.state = "missing-in-store";
            return Ok(pair);
        }
        Err(e) => {
            pair.state = "unreadable";
            pair.temporary = e.code == crate::backends::EXIT_UNAVAILABLE;
            pair.error = Some(e.message);
            return Ok(pair);
        }
    };
    audit.append(crate::proxy::secret_read_event(&id.name, None, source, &fetched).message(format!(
        "secret {} read from {source}{}, for `airlock secret sync`",
        id.name,
        read_version(&fetched)
    )))?;
    pair.store_version = fetched.version;
    if local.is_none() {
        pair.state = "missing-locally";
        return Ok(pair);
    }
    if vault.resolve(id)?.ct_eq(fetched.value.expose()) {
        return Ok(pair);
    }
    pair.state = "drifted";
    if pull {
        let value = SecretBytes::copy_from(fetched.value.expose());
        airlock_vault::check_value(&value)?;
        let info = vault.rotate(id, value)?;
        audit.append_change(
            activity::UPDATE,
            "secret",
            &id.to_string(),
            format!(
                "secret {id} rotated to version {}, pulled from {source}{} by `airlock secret sync --pull`",
                info.current_version,
                version_note(&fetched)
            ),
        )?;
        pair.state = "pulled";
        pair.local_version = Some(info.current_version);
    }
    Ok(pair)
}

fn render(pairs: &[Pair]) -> String {
    if pairs.is_empty() {
        return "No secret is held both in the vault and in another store.\n".into();
    }
    let mut rows = vec![["SECRET".to_string(), "SOURCE".into(), "STATE".into(), "LOCAL".into(), "STORE".into()]];
    for p in pairs {
        let v = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let state = match &p.error {
            Some(e) => format!("{}: {e}", p.state),
            None => p.state.to_string(),
        };
        rows.push([
            p.secret.clone(),
            p.source.clone(),
            state,
            v(p.local_version.map(|n| format!("v{n}"))),
            v(p.store_version.map(|n| format!("v{n}"))),
        ]);
    }
    crate::commands::aligned(&rows)
}
