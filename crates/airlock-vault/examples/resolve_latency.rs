//! Secret resolve latency for every backend (issue 10), printed as one markdown table: backend | what is measured |
//! n | p50 | p99 | max.
//!
//! `scripts/bench-backends.sh` runs it with everything it needs (an OpenBao dev server holding the secret, a
//! private D-Bus session with an unlocked throwaway gnome-keyring, a fresh kernel session keyring) and adds the
//! `bao kv get -field` CLI (and `bao version`, its start-up alone), timed by the script in the same run, as more
//! rows (`--cli-samples`, `--cli-startup-samples`). By hand:
//!
//! ```text
//! cargo run --release -p airlock-vault --example resolve_latency -- --help
//! ```
//!
//! Each backend gets a warm-up, then up to `--n` timed reads, stopped early after `--max-seconds`; the `n` column
//! says how many were timed. Every value read is compared with the one stored (outside the timed region) and is
//! never printed: values live in `SecretBytes` (zeroized on drop). The local vault, the sealed file, the `.env`
//! file, the Secret Service item and the kernel key are created here, in a temporary directory or the session's
//! own stores, and removed at the end; the OpenBao secret and the `env://` variable come from the environment.
//!
//! Environment:
//! - `AIRLOCK_BENCH_SECRET`: the value stored in OpenBao and set as this variable (the `env://` row reads it; without
//!   it that row is skipped). The other backends store it too, or a random value when it is not set.
//! - `BAO_ADDR` (or `VAULT_ADDR`) and `BAO_TOKEN` (or `VAULT_TOKEN`): the OpenBao server for the `bao://` rows.
//! - `DBUS_SESSION_BUS_ADDRESS`: the session bus with a Secret Service, for the `keyring://` row.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use airlock_crypto::{Cipher, KekInputs, KekSpec, SecretBytes};
use airlock_vault::backend::env::EnvBackend;
use airlock_vault::backend::keyring::KeyringBackend;
use airlock_vault::backend::openbao::{BaoAuth, BaoBackend, BaoConfig};
use airlock_vault::backend::sealed_file::{NewRecipient, SealedFile, SealedFileBackend, Unlock};
use airlock_vault::backend::{CachePolicy, Expect, Fetched, Locator, SecretBackend};
use airlock_vault::{InitOptions, NewSecret, SecretId, Vault};

const BACKENDS: &[&str] = &["vault", "bao", "keyring", "keyctl", "env", "file"];
const DEFAULT_BAO_LOCATOR: &str = "bao://secret/airlock-bench#value";

const HELP: &str = "\
resolve_latency: secret resolve latency p50/p99 per backend, as a markdown table

Options:
  --n N                 timed reads per backend (default 500)
  --warmup N            untimed reads first (default 50)
  --max-seconds S       stop a backend's timed reads after S seconds (default 120; its warm-up gets a quarter)
  --only LIST           comma list of vault,bao,keyring,keyctl,env,file (default all)
  --bao-locator LOC     the OpenBao secret to read (default bao://secret/airlock-bench#value)
  --cli-samples FILE    add a row for `bao kv get -field` from FILE: one duration in microseconds per line
                        (scripts/bench-backends.sh times the CLI and writes it)
  --cli-startup-samples FILE
                        the same for `bao version` (the CLI's start-up alone)
  --require             fail instead of skipping a backend that is not reachable
  --help                this text

Environment: AIRLOCK_BENCH_SECRET (the value; the env:// row reads it), BAO_ADDR and BAO_TOKEN (the bao:// rows),
DBUS_SESSION_BUS_ADDRESS (the keyring:// row). Values are never printed.
";

struct Options {
    n: usize,
    warmup: usize,
    max_time: Duration,
    only: BTreeSet<String>,
    bao_locator: String,
    cli_samples: Option<PathBuf>,
    cli_startup_samples: Option<PathBuf>,
    require: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        n: 500,
        warmup: 50,
        max_time: Duration::from_secs(120),
        only: BACKENDS.iter().map(|s| s.to_string()).collect(),
        bao_locator: DEFAULT_BAO_LOCATOR.into(),
        cli_samples: None,
        cli_startup_samples: None,
        require: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--n" => o.n = number(&value("--n")?, "--n")?.max(1),
            "--warmup" => o.warmup = number(&value("--warmup")?, "--warmup")?,
            "--max-seconds" => {
                let s: f64 = value("--max-seconds")?.parse().map_err(|_| "--max-seconds: expected seconds")?;
                if !(s > 0.0 && s.is_finite()) {
                    return Err("--max-seconds: expected a positive number".into());
                }
                o.max_time = Duration::from_secs_f64(s);
            }
            "--only" => {
                let list = value("--only")?;
                o.only = list.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
                if let Some(bad) = o.only.iter().find(|b| !BACKENDS.contains(&b.as_str())) {
                    return Err(format!("--only: unknown backend {bad:?} (one of {})", BACKENDS.join(",")));
                }
            }
            "--bao-locator" => o.bao_locator = value("--bao-locator")?,
            "--cli-samples" => o.cli_samples = Some(PathBuf::from(value("--cli-samples")?)),
            "--cli-startup-samples" => {
                o.cli_startup_samples = Some(PathBuf::from(value("--cli-startup-samples")?));
            }
            "--require" => o.require = true,
            "--help" | "-h" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (--help lists them)")),
        }
    }
    Ok(o)
}

fn number(text: &str, name: &str) -> Result<usize, String> {
    text.parse().map_err(|_| format!("{name}: expected a whole number, got {text:?}"))
}

// --- measuring ---------------------------------------------------------------------------------------------------

/// One line of the table.
struct Row {
    backend: String,
    what: String,
    samples: Vec<Duration>,
}

/// Runs `op` `warmup` times, then up to `n` times timed (stopping after `max_time`). `prepare` runs before each
/// call, untimed (e.g. emptying a cache); `check` sees each result after the clock has stopped.
fn measure<T>(
    o: &Options,
    mut prepare: impl FnMut() -> Result<(), String>,
    mut op: impl FnMut() -> Result<T, String>,
    mut check: impl FnMut(T) -> Result<(), String>,
) -> Result<Vec<Duration>, String> {
    let started = Instant::now();
    for _ in 0..o.warmup {
        if started.elapsed() > o.max_time / 4 {
            break;
        }
        prepare()?;
        check(op()?)?;
    }
    let started = Instant::now();
    let mut samples = Vec::with_capacity(o.n);
    while samples.len() < o.n && started.elapsed() < o.max_time {
        prepare()?;
        let t = Instant::now();
        let result = black_box(op());
        let elapsed = t.elapsed();
        check(result?)?;
        samples.push(elapsed);
    }
    Ok(samples)
}

/// Nearest rank on sorted samples (the same rule as benches/vault.rs).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn fmt_dur(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.2} ms", ns as f64 / 1e6)
    }
}

/// The value a read must return; compared without printing either side.
struct Expected(SecretBytes);

impl Expected {
    fn matches(&self, got: &[u8]) -> Result<(), String> {
        if self.0.ct_eq(got) { Ok(()) } else { Err("a read returned a different value than the one stored".into()) }
    }

    fn fetched(&self, f: Fetched) -> Result<(), String> {
        if f.stale {
            return Err("a read was served stale".into());
        }
        self.matches(f.value.expose())
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn random_value() -> SecretBytes {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).expect("the OS random source works");
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    SecretBytes::new(format!("bench_{hex}").into_bytes())
}

fn unique(tag: &str) -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("the OS random source works");
    format!("airlock-bench-{tag}-{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

// --- the backends ------------------------------------------------------------------------------------------------

fn vault_rows(o: &Options, dir: &Path, value: &SecretBytes) -> Result<Vec<Row>, String> {
    let home = dir.join("vault");
    let keyfile = dir.join("vault.key");
    let id = SecretId::new("default", "BENCH_TOKEN").map_err(err)?;
    let mut v = Vault::init(&home, &[KekSpec::Keyfile(keyfile)], &InitOptions::default(), &mut KekInputs::none())
        .map_err(err)?;
    v.set(&id, NewSecret::default(), value.clone()).map_err(err)?;
    drop(v);
    let expected = Expected(value.clone());

    // A key-file slot, so no Argon2id: this is the per-process cost of a CLI command's first read.
    let cold = measure(
        o,
        || Ok(()),
        || {
            let mut v = Vault::open(&home).map_err(err)?;
            v.unlock(&mut KekInputs::none(), None).map_err(err)?;
            v.resolve(&id).cloned().map_err(err)
        },
        |s| expected.matches(s.expose()),
    )?;

    let mut v = Vault::open(&home).map_err(err)?;
    v.unlock(&mut KekInputs::none(), None).map_err(err)?;
    // The copy out is what the broker does with a resolved value (every other backend returns an owned one too).
    let warm = measure(o, || Ok(()), || v.resolve(&id).cloned().map_err(err), |s| expected.matches(s.expose()))?;
    Ok(vec![
        Row {
            backend: "local vault, warm".into(),
            what: "`Vault::resolve` on an unlocked vault, record already decrypted (hash lookup + copy)".into(),
            samples: warm,
        },
        Row {
            backend: "local vault, cold".into(),
            what: "`Vault::open` + `unlock` (key-file slot, no Argon2id) + first `resolve` (decrypt), 1-secret vault"
                .into(),
            samples: cold,
        },
    ])
}

fn bao_rows(o: &Options, expected: Option<&Expected>) -> Result<Vec<Row>, String> {
    let address = ["BAO_ADDR", "VAULT_ADDR"]
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        .ok_or("BAO_ADDR is not set (scripts/bench-backends.sh starts a dev server)")?;
    let auth = BaoAuth::token_from_env().map_err(err)?;
    let locator = Locator::parse(&o.bao_locator, "default").map_err(err)?;
    let mut config = BaoConfig::new(address, auth);
    // Long enough that nothing expires during the run: the hit path costs the same whatever the TTL.
    config.cache = CachePolicy { ttl: Duration::from_secs(3600), ..CachePolicy::default() };
    let backend = BaoBackend::new(config.clone()).map_err(err)?;
    // With AIRLOCK_BENCH_SECRET every read is checked against it; without, against the first read.
    let first = backend.read(&locator).map_err(err)?;
    let expected = match expected {
        Some(e) => {
            e.matches(first.value.expose())?;
            Expected(e.0.clone())
        }
        None => Expected(first.value.clone()),
    };

    let before = backend.cache_stats();
    let hit = measure(o, || Ok(()), || backend.read(&locator).map_err(err), |f| expected.fetched(f))?;
    let after = backend.cache_stats();
    if after.misses != before.misses {
        return Err(format!("cache-hit row: {} reads went to the server", after.misses - before.misses));
    }

    // The real miss path (`read` through the cache: lookup, miss, GET, parse, store), with the cache emptied
    // before each read, outside the timed region. The agent keeps its connection alive between reads.
    let before = backend.cache_stats();
    let miss = measure(
        o,
        || {
            backend.clear_cache();
            Ok(())
        },
        || backend.read(&locator).map_err(err),
        |f| expected.fetched(f),
    )?;
    let after = backend.cache_stats();
    if after.hits != before.hits {
        return Err(format!("cache-miss row: {} reads were served from the cache", after.hits - before.hits));
    }

    // What a process that reads one secret and exits pays in-process: a new client (HTTP agent, TLS roots), a
    // TCP connection, the token's lookup-self and the GET. The CLI row adds process start-up to about this.
    let fresh = measure(
        o,
        || Ok(()),
        || BaoBackend::new(config.clone()).and_then(|b| b.read(&locator)).map_err(err),
        |f| expected.fetched(f),
    )?;
    Ok(vec![
        Row {
            backend: "OpenBao, cache hit".into(),
            what: "`read` served from the backend's TTL cache (no request)".into(),
            samples: hit,
        },
        Row {
            backend: "OpenBao, cache miss".into(),
            what: "`read` after `clear_cache()` (untimed): one KV v2 GET on a kept-alive HTTP connection, \
                   parse, cache store"
                .into(),
            samples: miss,
        },
        Row {
            backend: "OpenBao, new client per read".into(),
            what: "`BaoBackend::new` + `read`: agent and TLS roots, TCP connect, token lookup-self, GET".into(),
            samples: fresh,
        },
    ])
}

fn cli_row(path: &Path, backend: &str, what: &str) -> Result<Row, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let samples = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse::<u64>().map(Duration::from_micros))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("{}: expected one whole number of microseconds per line", path.display()))?;
    if samples.is_empty() {
        return Err(format!("{}: no samples", path.display()));
    }
    Ok(Row { backend: backend.into(), what: what.into(), samples })
}

fn keyring_rows(o: &Options, value: &SecretBytes) -> Result<Vec<Row>, String> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return Err("no D-Bus session (DBUS_SESSION_BUS_ADDRESS; scripts/bench-backends.sh starts one)".into());
    }
    let backend = KeyringBackend::new().map_err(err)?;
    let locator = Locator::Keyring { service: unique("svc"), user: "bench".into() };
    backend.write(&locator, value, Expect::Absent).map_err(err)?;
    let expected = Expected(value.clone());
    let samples = measure(o, || Ok(()), || backend.read(&locator).map_err(err), |f| expected.fetched(f));
    // Removed whether or not the reads worked.
    let removed = backend.delete(&locator).map_err(err);
    let samples = samples?;
    removed?;
    Ok(vec![Row {
        backend: "Secret Service (gnome-keyring)".into(),
        what: "`read`: D-Bus search by attributes + GetSecret (DH-encrypted session) on one connection".into(),
        samples,
    }])
}

#[cfg(target_os = "linux")]
fn keyctl_rows(o: &Options, value: &SecretBytes) -> Result<Vec<Row>, String> {
    use airlock_vault::backend::keyctl::{KeyctlBackend, KeyctlRing};
    // The session keyring: under `keyctl session` (as the script runs this) a fresh one, so the user's own
    // keyrings are never written to.
    let backend = KeyctlBackend::new(KeyctlRing::Session);
    let locator = Locator::Keyctl { description: unique("key") };
    backend.write(&locator, value, Expect::Absent).map_err(err)?;
    let expected = Expected(value.clone());
    let samples = measure(o, || Ok(()), || backend.read(&locator).map_err(err), |f| expected.fetched(f));
    let removed = backend.delete(&locator).map_err(err);
    let samples = samples?;
    removed?;
    Ok(vec![Row {
        backend: "kernel keyring (keyctl, @s)".into(),
        what: "`read`: keyring search + link check + payload read (syscalls)".into(),
        samples,
    }])
}

#[cfg(not(target_os = "linux"))]
fn keyctl_rows(_: &Options, _: &SecretBytes) -> Result<Vec<Row>, String> {
    Err("the kernel keyring is Linux only".into())
}

fn env_rows(o: &Options, dir: &Path, value: &SecretBytes, from_env: bool) -> Result<Vec<Row>, String> {
    let expected = Expected(value.clone());
    let mut rows = Vec::new();
    if from_env {
        let backend = EnvBackend::process();
        let locator = Locator::Env { name: "AIRLOCK_BENCH_SECRET".into() };
        let samples = measure(o, || Ok(()), || backend.read(&locator).map_err(err), |f| expected.fetched(f))?;
        rows.push(Row {
            backend: "environment variable".into(),
            what: "`read` of `env://NAME` from the process environment".into(),
            samples,
        });
    } else {
        eprintln!("resolve_latency: AIRLOCK_BENCH_SECRET is not set; skipping the process-environment row");
    }

    // The .env row: the file is re-read and re-parsed on every read (by design: an edit is seen at once).
    let path = dir.join("bench.env");
    let mut text = zeroize::Zeroizing::new(b"# airlock bench\nOTHER=unused\nAIRLOCK_BENCH_SECRET=".to_vec());
    text.extend_from_slice(value.expose());
    text.push(b'\n');
    write_private(&path, &text)?;
    let backend = EnvBackend::dotenv(&path).map_err(err)?;
    let locator = Locator::Env { name: "AIRLOCK_BENCH_SECRET".into() };
    let samples = measure(o, || Ok(()), || backend.read(&locator).map_err(err), |f| expected.fetched(f))?;
    rows.push(Row {
        backend: "`.env` file".into(),
        what: "`read`: permission checks, read and parse the 3-line file".into(),
        samples,
    });
    Ok(rows)
}

fn file_rows(o: &Options, dir: &Path, value: &SecretBytes) -> Result<Vec<Row>, String> {
    let path = dir.join("secrets.toml");
    let keyfile = dir.join("sealed.key");
    SealedFile::create(&path, Cipher::XChaCha20Poly1305, vec![NewRecipient::keyfile(&keyfile)]).map_err(err)?;
    let backend = SealedFileBackend::open(&path, Unlock::keyfile(&keyfile)).map_err(err)?;
    let locator = Locator::File { path: path.display().to_string(), key: "bench.token".into() };
    backend.write(&locator, value, Expect::Absent).map_err(err)?;
    let expected = Expected(value.clone());
    let samples = measure(o, || Ok(()), || backend.read(&locator).map_err(err), |f| expected.fetched(f))?;
    Ok(vec![Row {
        backend: "sealed file".into(),
        what: "`read`: read and parse the file, HMAC check, data key unwrap (key-file KEK cached), AEAD open".into(),
        samples,
    }])
}

/// Writes a file only this user can read (the `.env` backend refuses loose permissions).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes).map_err(|e| format!("{}: {e}", path.display()))
}

// --- main --------------------------------------------------------------------------------------------------------

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("resolve_latency: {e}");
            std::process::exit(2);
        }
    };
    let from_env = std::env::var_os("AIRLOCK_BENCH_SECRET").filter(|v| !v.is_empty());
    let value = match &from_env {
        Some(v) => SecretBytes::new(v.as_encoded_bytes().to_vec()),
        None => random_value(),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let load_before = loadavg();
    let started = Instant::now();

    let mut rows: Vec<Row> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for name in BACKENDS.iter().filter(|b| o.only.contains(**b)) {
        eprintln!("resolve_latency: measuring {name}");
        let result = match *name {
            "vault" => vault_rows(&o, dir.path(), &value),
            "bao" => {
                let expected = from_env.as_ref().map(|_| Expected(value.clone()));
                bao_rows(&o, expected.as_ref()).and_then(|mut r| {
                    if let Some(path) = &o.cli_samples {
                        r.push(cli_row(
                            path,
                            "OpenBao, `bao kv get -field` CLI",
                            "`$(bao kv get -mount=secret -field=value ...)` from bash, timed by the script: process \
                             start, mount preflight request, GET",
                        )?);
                    }
                    if let Some(path) = &o.cli_startup_samples {
                        r.push(cli_row(
                            path,
                            "`bao version` (for scale)",
                            "the same CLI binary starting and exiting, no request: its start-up cost alone",
                        )?);
                    }
                    Ok(r)
                })
            }
            "keyring" => keyring_rows(&o, &value),
            "keyctl" => keyctl_rows(&o, &value),
            "env" => env_rows(&o, dir.path(), &value, from_env.is_some()),
            "file" => file_rows(&o, dir.path(), &value),
            _ => unreachable!("--only is checked against BACKENDS"),
        };
        match result {
            Ok(r) => rows.extend(r),
            Err(e) if o.require => {
                eprintln!("resolve_latency: {name}: {e}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("resolve_latency: {name}: SKIPPED: {e}");
                skipped.push(format!("{name}: {e}"));
            }
        }
    }

    println!("| backend | what is measured | n | p50 | p99 | max |");
    println!("|---|---|---:|---:|---:|---:|");
    for r in &mut rows {
        r.samples.sort();
        let s = &r.samples;
        if s.is_empty() {
            println!("| {} | {} | 0 | - | - | - |", r.backend, r.what);
            continue;
        }
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.backend,
            r.what,
            s.len(),
            fmt_dur(percentile(s, 0.5)),
            fmt_dur(percentile(s, 0.99)),
            fmt_dur(s[s.len() - 1]),
        );
    }
    println!();
    println!(
        "{} timed reads per backend at most (after {} warm-up reads), {} s at most each; load average {} before, {} \
         after; {:.1} s in all.",
        o.n,
        o.warmup,
        o.max_time.as_secs_f64(),
        load_before,
        loadavg(),
        started.elapsed().as_secs_f64()
    );
    for s in &skipped {
        println!("skipped: {s}");
    }
}
