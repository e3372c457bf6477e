//! What each subcommand does. Each one opens the vault, unlocks it only if it needs to, and prints metadata.
//! No path through this file prints a secret value.

use std::path::PathBuf;

use airlock_crypto::kdf::Argon2Params;
use airlock_crypto::{Cipher, KekInputs, KekSpec, SecretBytes};
use airlock_vault::formats::check_value_format;
use airlock_vault::{DEFAULT_WORKSPACE, Exposure, InitOptions, Injection, NewSecret, SecretId, SecretInfo, Vault};

use crate::CliError;
use crate::audit::ChangeLog;
use crate::cli::*;
use crate::input::{self, PassphraseSource};
use airlock_audit::event::activity;

pub fn run(cli: Cli) -> Result<(), CliError> {
    let ctx = Ctx {
        home: home_dir(cli.home.clone())?,
        passphrase_file: cli.passphrase_file.clone(),
        keyfile: cli.keyfile.clone(),
        json: cli.json,
    };
    match cli.command {
        Command::Init(a) => init(&ctx, a),
        Command::Secret(c) => secret(&ctx, c),
        Command::Key(c) => key(&ctx, c),
        Command::Status => status(&ctx),
        Command::Demo(a) => crate::demo::run(a.keep),
        Command::DemoTool(a) => crate::demo::tool::run(&a.action),
        Command::Policy(c) => crate::policy::run(&ctx.home, ctx.json, c),
        Command::Audit(c) => crate::audit::run(&ctx, c),
        Command::Proxy(a) => crate::proxy::run(&ctx, a),
        Command::Ca(c) => crate::ca::run(&ctx, c),
        Command::Run(a) => match daemon(&ctx).filter(|_| a.is_plain() && !ctx.json) {
            Some(c) => crate::client::run(
                &c,
                a.agent.as_deref(),
                a.tool.as_deref().expect("is_plain: a tool"),
                a.parent.as_deref(),
                &a.command.iter().map(|s| s.to_string_lossy().into_owned()).collect::<Vec<_>>(),
            ),
            None => crate::run::run(&ctx, *a),
        },
        Command::Ps(a) => match daemon(&ctx) {
            Some(c) => crate::client::ps(&c, ctx.json, a.tree.as_deref()),
            None => crate::supervise::ps(&ctx, a.tree.as_deref()),
        },
        Command::Kill(a) => match daemon(&ctx).filter(|_| a.select.agent.is_none() && !a.select.all) {
            Some(c) => crate::client::act(&c, "kill", &a.select.runs),
            None => crate::supervise::kill(&ctx, a),
        },
        Command::Pause(s) => match daemon(&ctx).filter(|_| s.agent.is_none() && !s.all) {
            Some(c) => crate::client::act(&c, "pause", &s.runs),
            None => crate::supervise::pause(&ctx, s, false),
        },
        Command::Resume(s) => match daemon(&ctx).filter(|_| s.agent.is_none() && !s.all) {
            Some(c) => crate::client::act(&c, "resume", &s.runs),
            None => crate::supervise::pause(&ctx, s, true),
        },
        Command::Lockdown(a) => match daemon(&ctx) {
            Some(c) => crate::client::lockdown(&c, a.lift, a.status, &a.reason, ctx.json),
            None => crate::supervise::lockdown(&ctx, a),
        },
        Command::Redact(a) => crate::redact::redact(&ctx, a),
        Command::ScanSecrets(a) => crate::redact::scan_secrets(&ctx, a),
        Command::Scan(a) => crate::guard::scan(&ctx, a),
        Command::ValidateOutput(a) => crate::validate::validate_output(&ctx, a),
        Command::Canary(a) => crate::canary::canary(&ctx, a),
        Command::Agent(a) => crate::agents::run(&ctx, a),
        Command::Sealed(c) => crate::sealed::run(&ctx, c),
        Command::Spotlight(a) => crate::guard::spotlight(&ctx, a),
        Command::Serve(a) => crate::serve::run(&ctx, a),
    }
}

/// The running daemon's client, when `AIRLOCK_TOKEN` asks for it and the daemon answers (see `client`).
fn daemon(ctx: &Ctx) -> Option<crate::client::Client> {
    crate::client::Client::from_env(&ctx.home)
}

pub(crate) struct Ctx {
    pub(crate) home: PathBuf,
    pub(crate) passphrase_file: Option<PathBuf>,
    pub(crate) keyfile: Option<PathBuf>,
    pub(crate) json: bool,
}

fn home_dir(explicit: Option<PathBuf>) -> Result<PathBuf, CliError> {
    if let Some(h) = explicit.filter(|h| !h.as_os_str().is_empty()) {
        return Ok(h);
    }
    // Read here rather than by clap, so that an empty AIRLOCK_HOME means "unset", like the XDG variables.
    if let Some(h) = std::env::var_os("AIRLOCK_HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(h));
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return Ok(PathBuf::from(x).join("airlock"));
    }
    match std::env::var_os("HOME").filter(|x| !x.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/airlock")),
        None => Err(CliError::usage("cannot find a home for Airlock's state: set AIRLOCK_HOME".into())),
    }
}

impl Ctx {
    /// The global options that say how to unlock (`--passphrase-file`, `--keyfile`), for a child `airlock` that
    /// must unlock the same way (the runs `airlock serve` starts).
    pub(crate) fn unlock_args(&self) -> Vec<std::ffi::OsString> {
        let mut args = Vec::new();
        if let Some(p) = &self.passphrase_file {
            args.push("--passphrase-file".into());
            args.push(p.clone().into_os_string());
        }
        if let Some(k) = &self.keyfile {
            args.push("--keyfile".into());
            args.push(k.clone().into_os_string());
        }
        args
    }

    fn unlock_passphrase(&self) -> PassphraseSource {
        PassphraseSource::new("AIRLOCK_PASSPHRASE", self.passphrase_file.clone(), "Vault passphrase: ", false)
    }

    /// Opens and unlocks the vault, trying prompt-free slots before the passphrase.
    pub(crate) fn open_unlocked(&self) -> Result<Vault, CliError> {
        let mut vault = Vault::open(&self.home)?;
        let mut pass = self.unlock_passphrase();
        let available = pass.available();
        let mut ask = || pass.get();
        let mut inputs = KekInputs {
            passphrase: if available { Some(&mut ask) } else { None },
            keyfile_override: self.keyfile.clone(),
        };
        vault.unlock(&mut inputs, None)?;
        Ok(vault)
    }

    pub(crate) fn print<T: serde::Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value).expect("serialisable"));
        } else {
            print!("{}", human());
        }
    }
}

pub(crate) fn argon2_params(k: &KdfArgs) -> Result<Argon2Params, CliError> {
    if k.kdf_memory_mib < 64 && !k.insecure_kdf {
        return Err(CliError::input(format!(
            "--kdf-memory-mib {} is below the 64 MiB minimum; pass --insecure-kdf if you really mean it",
            k.kdf_memory_mib
        )));
    }
    let p = Argon2Params { m_kib: k.kdf_memory_mib.saturating_mul(1024), t: k.kdf_iterations, p: k.kdf_parallelism };
    p.validate()?;
    if k.insecure_kdf && k.kdf_memory_mib < 64 {
        eprintln!("airlock: warning: Argon2id memory {} MiB is below the recommended 64 MiB", k.kdf_memory_mib);
    }
    Ok(p)
}

fn parse_specs(specs: &[String]) -> Result<Vec<KekSpec>, CliError> {
    let mut out: Vec<KekSpec> = Vec::new();
    for s in specs {
        let spec: KekSpec = s.parse()?;
        if out.contains(&spec) {
            return Err(CliError::input(format!("--kek {s} given twice")));
        }
        out.push(spec);
    }
    Ok(out)
}

/// Warns (to stderr) about a weak new passphrase. zxcvbn estimates guesses from dictionaries and patterns.
pub(crate) fn warn_if_weak(pass: &SecretBytes) {
    let Ok(text) = std::str::from_utf8(pass.expose()) else { return };
    let estimate = zxcvbn::zxcvbn(text, &["airlock", "vault", "password", "passphrase"]);
    if (estimate.score() as u8) < 3 {
        eprintln!(
            "airlock: warning: weak passphrase (zxcvbn score {}/4, about 10^{:.0} guesses); a longer passphrase of several \
             random words is much stronger",
            estimate.score() as u8,
            estimate.guesses_log10()
        );
    }
}

fn init(ctx: &Ctx, a: InitArgs) -> Result<(), CliError> {
    let specs = parse_specs(&a.keks)?;
    let opts = InitOptions {
        cipher: match a.cipher {
            CipherArg::Xchacha20Poly1305 => Cipher::XChaCha20Poly1305,
            CipherArg::Aes256Gcm => Cipher::Aes256Gcm,
        },
        argon2: argon2_params(&a.kdf)?,
        keep_versions: a.keep_versions,
    };
    if Vault::file_path(&ctx.home).exists() {
        return Err(airlock_vault::VaultError::AlreadyInitialized { path: Vault::file_path(&ctx.home) }.into());
    }
    let mut pass =
        PassphraseSource::new("AIRLOCK_PASSPHRASE", ctx.passphrase_file.clone(), "New vault passphrase: ", true);
    let mut ask = || {
        let p = pass.get()?;
        warn_if_weak(&p);
        Ok(p)
    };
    let mut inputs = KekInputs { passphrase: Some(&mut ask), keyfile_override: None };
    let mut vault = Vault::init(&ctx.home, &specs, &opts, &mut inputs)?;
    let audit = ChangeLog::open(ctx, &mut vault)?;
    audit.record(activity::CREATE, "vault", vault.vault_id(), "vault initialised".into())?;
    // The broker's CA, so that `airlock ca path` has something to print before the first proxy starts.
    crate::ca::load_or_create(&ctx.home, &mut vault)?;
    let st = vault.status();
    ctx.print(&st, || {
        let mut s = format!(
            "Initialised vault {} at {}\n",
            st.vault_id,
            st.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
        );
        s += &format!("  cipher: {}\n", st.cipher);
        for slot in &st.slots {
            s += &format!("  slot {}: {}\n", slot.id, slot.description);
        }
        s
    });
    Ok(())
}

pub(crate) fn id_of(name: &str, ws: &Option<String>) -> Result<SecretId, CliError> {
    Ok(SecretId::parse(name, ws.as_deref().unwrap_or(DEFAULT_WORKSPACE))?)
}

pub(crate) fn warn_formats(id: &SecretId, hosts: &[String], value: &SecretBytes) {
    for f in check_value_format(&id.name, hosts, value.expose()) {
        eprintln!("airlock: warning: {id}: {f}");
    }
}

/// The options of `secret set`, as the vault takes them (checked by [`NewSecret::validate`], not here).
pub(crate) fn new_secret(a: &NewSecretArgs) -> Result<NewSecret, CliError> {
    let injection = match (&a.header, &a.query, &a.basic_user) {
        (Some(h), _, _) => Some(Injection::header(h)?),
        (_, Some(q), _) => Some(Injection::query(q)?),
        (_, _, Some(u)) => Some(Injection::basic(u)?),
        _ => None,
    };
    Ok(NewSecret {
        group: a.group.clone(),
        hosts: a.hosts.clone(),
        injection,
        exposure: match a.expose.unwrap_or(ExposeArg::Surrogate) {
            ExposeArg::Surrogate => Exposure::Surrogate,
            ExposeArg::Env => Exposure::Env,
        },
        tags: a.tags.clone(),
        keep_versions: a.keep_versions,
    })
}

/// The note for a new secret that the broker would inject nowhere.
pub(crate) fn note_unpinned(id: &SecretId, name: &str, opts: &NewSecret) {
    if opts.hosts.is_empty() && opts.exposure == Exposure::Surrogate {
        eprintln!(
            "airlock: note: {id} is pinned to no host, so the broker will inject it nowhere; add one with `airlock secret pin {name} --host HOST`"
        );
    }
}

/// What `secret set`, `rotate` and `pin` print, standalone or through the daemon.
pub(crate) fn print_stored(ctx: &Ctx, id: &SecretId, info: &SecretInfo) {
    ctx.print(info, || format!("Stored {id} (version {}; the value is never shown)\n", info.current_version));
}

pub(crate) fn print_rotated(ctx: &Ctx, id: &SecretId, info: &SecretInfo) {
    ctx.print(info, || {
        format!("Rotated {id}: now version {}, keeping versions {:?}\n", info.current_version, info.versions)
    });
}

pub(crate) fn print_pinned(ctx: &Ctx, id: &SecretId, info: &SecretInfo) {
    ctx.print(info, || format!("{id} is pinned to: {}\n", info.hosts.join(", ")));
}

fn secret(ctx: &Ctx, c: SecretCommand) -> Result<(), CliError> {
    // With AIRLOCK_TOKEN set and the daemon answering, through the daemon as the token's agent (no passphrase);
    // `rm` has no route and stays standalone.
    let c = match c {
        // `sync` compares values, which the daemon never hands out; `import` is a vault change like `rm`.
        SecretCommand::Rm { .. } | SecretCommand::Import(_) | SecretCommand::Sync(_) => c,
        c => match daemon(ctx) {
            Some(client) => return crate::client::secret(ctx, &client, c),
            None => c,
        },
    };
    match c {
        SecretCommand::Set(a) => {
            let id = id_of(&a.name, &a.workspace)?;
            let opts = new_secret(&a.new)?;
            // Unlock and check the name first, so a wrong passphrase or a taken name fails before the user types
            // the value. (`set` checks again under the write lock.)
            let mut vault = ctx.open_unlocked()?;
            if vault.info(&id).is_ok() {
                return Err(airlock_vault::VaultError::AlreadyExists(id.to_string()).into());
            }
            opts.validate()?;
            let value = input::read_value(a.raw)?;
            airlock_vault::check_value(&value)?;
            warn_formats(&id, &a.new.hosts, &value);
            note_unpinned(&id, &a.name, &opts);
            let audit = ChangeLog::open(ctx, &mut vault)?;
            let info = vault.set(&id, opts, value)?;
            audit.record(activity::CREATE, "secret", &id.to_string(), format!("secret {id} stored"))?;
            print_stored(ctx, &id, &info);
        }
        SecretCommand::List { workspace } => {
            let mut vault = ctx.open_unlocked()?;
            let mut list = vault.list()?;
            if let Some(ws) = workspace {
                list.retain(|s| s.workspace == ws);
            }
            ctx.print(&list, || table(&list));
        }
        SecretCommand::Rotate { name, workspace, raw } => {
            let id = id_of(&name, &workspace)?;
            let mut vault = ctx.open_unlocked()?;
            let hosts = vault.info(&id)?.hosts;
            let value = input::read_value(raw)?;
            airlock_vault::check_value(&value)?;
            warn_formats(&id, &hosts, &value);
            if vault.resolve(&id)?.ct_eq(value.expose()) {
                return Err(CliError::input(format!(
                    "the new value of {id} is the same as the current one; nothing changed"
                )));
            }
            let audit = ChangeLog::open(ctx, &mut vault)?;
            let info = vault.rotate(&id, value)?;
            audit.record(
                activity::UPDATE,
                "secret",
                &id.to_string(),
                format!("secret {id} rotated to version {}", info.current_version),
            )?;
            print_rotated(ctx, &id, &info);
        }
        SecretCommand::Rm { name, workspace } => {
            let id = id_of(&name, &workspace)?;
            let mut vault = ctx.open_unlocked()?;
            let audit = ChangeLog::open(ctx, &mut vault)?;
            vault.remove(&id)?;
            audit.record(activity::DELETE, "secret", &id.to_string(), format!("secret {id} removed"))?;
            ctx.print(&serde_json::json!({ "removed": id.to_string() }), || format!("Removed {id}\n"));
        }
        SecretCommand::Pin { name, hosts, workspace } => {
            let id = id_of(&name, &workspace)?;
            let mut vault = ctx.open_unlocked()?;
            let audit = ChangeLog::open(ctx, &mut vault)?;
            let mut info = None;
            for h in &hosts {
                info = Some(vault.pin(&id, h)?);
            }
            let info = info.expect("clap requires one --host");
            let pins = info.hosts.join(", ");
            audit.record(activity::UPDATE, "secret", &id.to_string(), format!("secret {id} pinned to {pins}"))?;
            print_pinned(ctx, &id, &info);
        }
        SecretCommand::Import(a) => crate::secret_sources::import(ctx, a)?,
        SecretCommand::Sync(a) => crate::secret_sources::sync(ctx, a)?,
    }
    Ok(())
}

pub(crate) fn table(list: &[SecretInfo]) -> String {
    if list.is_empty() {
        return "No secrets.\n".into();
    }
    let mut rows = vec![[
        "SECRET".to_string(),
        "VERSION".into(),
        "HOSTS".into(),
        "INJECTION".into(),
        "EXPOSE".into(),
        "ROTATED".into(),
    ]];
    for s in list {
        rows.push([
            format!("{}/{}", s.workspace, s.name),
            s.current_version.to_string(),
            if s.hosts.is_empty() { "-".into() } else { s.hosts.join(",") },
            s.injection.as_ref().map(Injection::describe).unwrap_or_else(|| "-".into()),
            format!("{:?}", s.exposure).to_lowercase(),
            s.rotated.map(age).unwrap_or_else(|| "never".into()),
        ]);
    }
    aligned(&rows)
}

/// Rows as a plain-text table: columns padded to their widest cell, two spaces apart, no trailing blanks.
pub(crate) fn aligned<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out += line.join("  ").trim_end();
        out.push('\n');
    }
    out
}

fn age(unix: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(unix);
    let d = now.saturating_sub(unix);
    match d {
        0..60 => format!("{d}s ago"),
        60..3600 => format!("{}m ago", d / 60),
        3600..86400 => format!("{}h ago", d / 3600),
        _ => format!("{}d ago", d / 86400),
    }
}

fn key(ctx: &Ctx, c: KeyCommand) -> Result<(), CliError> {
    match c {
        KeyCommand::Rotate { rewrap } => {
            let mut vault = ctx.open_unlocked()?;
            let audit = ChangeLog::open(ctx, &mut vault)?;
            let term = vault.rotate_key(rewrap)?;
            let how = if rewrap { "; every secret re-encrypted" } else { "" };
            audit.record(activity::UPDATE, "key", "data-key", format!("data key rotated to term {term}{how}"))?;
            let st = vault.status();
            ctx.print(&st, || {
                let terms = st
                    .terms
                    .as_ref()
                    .map(|t| t.iter().map(|t| t.id.to_string()).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                format!(
                    "New writes now use keyring term {term}{}. Terms kept: {terms}\n",
                    if rewrap { "; every secret re-encrypted under it" } else { "" }
                )
            });
        }
        KeyCommand::Rekey { keks, new_passphrase_file, kdf } => {
            let specs = parse_specs(&keks)?;
            let argon2 = argon2_params(&kdf)?;
            let mut vault = ctx.open_unlocked()?;
            let mut pass =
                PassphraseSource::new("AIRLOCK_NEW_PASSPHRASE", new_passphrase_file, "New vault passphrase: ", true);
            let mut ask = || {
                let p = pass.get()?;
                warn_if_weak(&p);
                Ok(p)
            };
            let mut inputs = KekInputs { passphrase: Some(&mut ask), keyfile_override: None };
            let audit = ChangeLog::open(ctx, &mut vault)?;
            let report = vault.rekey(&specs, argon2, &mut inputs)?;
            let slots = report.slots.iter().map(|s| s.description.clone()).collect::<Vec<_>>().join(", ");
            audit.record(activity::UPDATE, "key", "root-key", format!("vault rekeyed; unlocks with: {slots}"))?;
            for e in &report.cleanup_errors {
                eprintln!("airlock: warning: could not delete the old OS-keyring entry of {e}; delete it by hand");
            }
            ctx.print(&report, || {
                let mut s =
                    "Rekeyed: new root key; the old slots are revoked. The vault now unlocks with:\n".to_string();
                for slot in &report.slots {
                    s += &format!("  slot {}: {}\n", slot.id, slot.description);
                }
                s += "To also retire the data keys, run `airlock key rotate --rewrap`.\n";
                s
            });
        }
    }
    Ok(())
}

fn status(ctx: &Ctx) -> Result<(), CliError> {
    let mut vault = Vault::open(&ctx.home)?;
    // Unlock only if it can be done without prompting, so `status` never blocks on a terminal.
    let mut pass = ctx.unlock_passphrase();
    let can_prompt_free = std::env::var_os("AIRLOCK_PASSPHRASE").is_some() || ctx.passphrase_file.is_some();
    let mut ask = || pass.get();
    let mut inputs = KekInputs {
        passphrase: if can_prompt_free { Some(&mut ask) } else { None },
        keyfile_override: ctx.keyfile.clone(),
    };
    let unlock_result = vault.unlock(&mut inputs, None);
    // Tampering fails the command (after printing what is known); a vault that is merely locked does not.
    let tampered = matches!(
        unlock_result,
        Err(airlock_vault::VaultError::Tampered(_) | airlock_vault::VaultError::RecordTampered { .. })
    );
    let unlock_error = unlock_result.as_ref().err().map(|e| e.to_string());
    let st = vault.status();
    #[derive(serde::Serialize)]
    struct Out<'a> {
        #[serde(flatten)]
        status: &'a airlock_vault::Status,
        unlock_error: Option<String>,
    }
    ctx.print(&Out { status: &st, unlock_error: unlock_error.clone() }, || {
        let mut s = format!(
            "vault {}\n  path: {}\n",
            st.vault_id,
            st.path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(memory)".into())
        );
        s += &format!(
            "  cipher: {}\n  secrets: {}\n  generation: {}\n  versions kept: {}\n",
            st.cipher, st.secrets, st.generation, st.keep_versions
        );
        for slot in &st.slots {
            s += &format!("  slot {}: {}\n", slot.id, slot.description);
        }
        match &st.terms {
            Some(terms) => {
                for t in terms {
                    s += &format!("  term {}: {} uses{}\n", t.id, t.uses, if t.active { " (active)" } else { "" });
                }
                s += "  state: unlocked\n";
            }
            None => s += &format!("  state: locked ({})\n", unlock_error.as_deref().unwrap_or("no prompt-free slot")),
        }
        s
    });
    match unlock_result {
        Err(e) if tampered => Err(e.into()),
        _ => Ok(()),
    }
}
