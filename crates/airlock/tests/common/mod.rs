//! Shared helpers for the integration tests: run the real `airlock` binary against a throwaway `AIRLOCK_HOME`,
//! open the resulting vault with the library to check values, and edit the vault file like an attacker would.
//!
//! Every child process starts from an empty environment (`env_clear`), so nothing from the developer's shell
//! (a real `AIRLOCK_HOME`, `AIRLOCK_PASSPHRASE`, `XDG_DATA_HOME`, ...) can leak into a test or be touched by it.

#![allow(dead_code)]

pub mod bao;
pub mod daemon;
pub mod pki;
pub mod rsyslog;
pub mod sandbox;
pub mod upstream;

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread::JoinHandle;

use airlock_crypto::{CryptoError, KekInputs, SecretBytes};
use airlock_vault::{SecretId, Vault};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

pub const BIN: &str = env!("CARGO_BIN_EXE_airlock");

/// Flags that make passphrase slots fast to open (8 MiB Argon2id).
pub const FAST_KDF: [&str; 3] = ["--insecure-kdf", "--kdf-memory-mib", "8"];

/// A throwaway Airlock installation: a temp dir holding `home/` (the `AIRLOCK_HOME`) and room for key files.
pub struct Airlock {
    pub tmp: tempfile::TempDir,
    pub home: PathBuf,
    /// Environment every call gets on top of `AIRLOCK_HOME` (e.g. `AIRLOCK_PASSPHRASE`).
    pub base_env: Vec<(OsString, OsString)>,
    /// Every byte of stdout and stderr of every command run through this value, for leak scans.
    pub transcript: Mutex<Vec<u8>>,
}

/// What a finished command did.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<OsString>,
    /// `None` if killed by a signal.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Run {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout of {:?} is not JSON ({e}): {}", self.args, self.out()))
    }
    /// Asserts the stderr mentions `needle`.
    pub fn err_has(&self, needle: &str) -> &Self {
        assert!(
            self.err().contains(needle),
            "stderr of {:?} should mention {needle:?}; got:\n{}",
            self.args,
            self.err()
        );
        self
    }
    /// Asserts the stdout mentions `needle`.
    pub fn out_has(&self, needle: &str) -> &Self {
        assert!(
            self.out().contains(needle),
            "stdout of {:?} should mention {needle:?}; got:\n{}",
            self.args,
            self.out()
        );
        self
    }
    pub fn err_lacks(&self, needle: &str) -> &Self {
        assert!(
            !self.err().contains(needle),
            "stderr of {:?} should not mention {needle:?}; got:\n{}",
            self.args,
            self.err()
        );
        self
    }
}

impl Default for Airlock {
    fn default() -> Self {
        Self::new()
    }
}

impl Airlock {
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new().prefix("airlock-it-").tempdir().expect("temp dir");
        let home = tmp.path().join("home");
        Airlock { tmp, home, base_env: Vec::new(), transcript: Mutex::new(Vec::new()) }
    }

    /// A new installation whose commands all get `AIRLOCK_PASSPHRASE=pass`.
    pub fn with_passphrase(pass: &str) -> Self {
        let mut a = Self::new();
        a.set_base_env("AIRLOCK_PASSPHRASE", pass);
        a
    }

    pub fn set_base_env(&mut self, k: &str, v: impl AsRef<OsStr>) {
        self.base_env.retain(|(key, _)| key != k);
        self.base_env.push((k.into(), v.as_ref().to_owned()));
    }

    pub fn remove_base_env(&mut self, k: &str) {
        self.base_env.retain(|(key, _)| key != k);
    }

    /// A path in the temp dir but outside `AIRLOCK_HOME` (for key files).
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    pub fn vault_file(&self) -> PathBuf {
        Vault::file_path(&self.home)
    }

    pub fn call<I, S>(&self, args: I) -> Call<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Call {
            al: self,
            args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
            env: BTreeMap::new(),
            stdin: Vec::new(),
        }
    }

    /// `airlock init --kek passphrase` with fast KDF parameters.
    pub fn init_passphrase(&self) -> Run {
        self.call(["init", "--kek", "passphrase"]).args(FAST_KDF).expect(0)
    }

    /// `airlock init --kek keyfile:PATH`; returns the key file path (created by Airlock, 0600).
    pub fn init_keyfile(&self) -> PathBuf {
        let key = self.path("vault.key");
        self.call(["init", "--kek"]).arg(kek_keyfile(&key)).expect(0);
        key
    }

    /// `airlock secret set NAME` with `value` on stdin (`--raw`, so it is stored byte for byte).
    pub fn set(&self, name: &str, value: &[u8]) -> Run {
        self.call(["secret", "set", name, "--raw"]).stdin(value).expect(0)
    }

    /// `airlock secret list --json`, parsed.
    pub fn list(&self) -> Vec<serde_json::Value> {
        let r = self.call(["--json", "secret", "list"]).expect(0);
        match r.json() {
            serde_json::Value::Array(a) => a,
            other => panic!("secret list --json is not an array: {other}"),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.list().iter().map(|s| s["name"].as_str().expect("name").to_string()).collect()
    }

    pub fn transcript(&self) -> Vec<u8> {
        self.transcript.lock().expect("transcript").clone()
    }

    /// Temp files a writer left behind (`.vault.airlock.tmp.*`).
    pub fn stale_temps(&self) -> Vec<PathBuf> {
        stale_temps(&self.home)
    }
}

pub fn kek_keyfile(path: &Path) -> OsString {
    let mut s = OsString::from("keyfile:");
    s.push(path);
    s
}

pub fn stale_temps(home: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(home) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(".vault.airlock.tmp.") {
                out.push(e.path());
            }
        }
    }
    out
}

/// One invocation of the binary, built up before it runs.
pub struct Call<'a> {
    al: &'a Airlock,
    args: Vec<OsString>,
    /// `Some(v)` sets, `None` removes a base variable.
    env: BTreeMap<OsString, Option<OsString>>,
    stdin: Vec<u8>,
}

impl Call<'_> {
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.env.insert(k.into(), Some(v.as_ref().to_owned()));
        self
    }
    pub fn env_remove(mut self, k: &str) -> Self {
        self.env.insert(k.into(), None);
        self
    }
    pub fn stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = bytes.to_vec();
        self
    }

    fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear();
        c.env("AIRLOCK_HOME", &self.al.home);
        for (k, v) in &self.al.base_env {
            if !self.env.contains_key(k) {
                c.env(k, v);
            }
        }
        for (k, v) in &self.env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.args(&self.args);
        c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }

    /// Starts the command and feeds its stdin from a thread (a killed child just makes the write fail).
    pub fn spawn(self) -> (Child, JoinHandle<()>) {
        let mut child = self.command().spawn().expect("spawn airlock");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let data = self.stdin;
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        (child, feeder)
    }

    pub fn run(self) -> Run {
        let al = self.al;
        let args = self.args.clone();
        let (child, feeder) = self.spawn();
        let out = child.wait_with_output().expect("wait for airlock");
        feeder.join().expect("stdin feeder");
        let mut t = al.transcript.lock().expect("transcript");
        t.extend_from_slice(&out.stdout);
        t.extend_from_slice(&out.stderr);
        Run { args, code: out.status.code(), stdout: out.stdout, stderr: out.stderr }
    }

    /// Runs the command and asserts its exit code.
    pub fn expect(self, code: i32) -> Run {
        let r = self.run();
        assert_eq!(
            r.code,
            Some(code),
            "airlock {:?} exited {:?}, expected {code}\nstdout:\n{}\nstderr:\n{}",
            r.args,
            r.code,
            r.out(),
            r.err()
        );
        r
    }
}

/// Opens the vault in `home` with the library, unlocking with `pass` (and any prompt-free slot).
pub fn open_with_passphrase(home: &Path, pass: &str) -> Vault {
    let mut v = Vault::open(home).expect("library opens the vault");
    let mut ask = || -> Result<SecretBytes, CryptoError> { Ok(SecretBytes::copy_from(pass.as_bytes())) };
    let mut inputs = KekInputs { passphrase: Some(&mut ask), keyfile_override: None };
    v.unlock(&mut inputs, None).expect("library unlocks the vault with the passphrase");
    v
}

/// Opens the vault in `home` with the library, using prompt-free slots only (key file, env).
pub fn open_prompt_free(home: &Path) -> Vault {
    let mut v = Vault::open(home).expect("library opens the vault");
    v.unlock(&mut KekInputs::none(), None).expect("library unlocks the vault with its key file");
    v
}

pub fn id(name: &str) -> SecretId {
    SecretId::new("default", name).expect("valid id")
}

/// The current value of `default/NAME`, as bytes.
pub fn resolve(v: &mut Vault, name: &str) -> Vec<u8> {
    v.resolve(&id(name)).unwrap_or_else(|e| panic!("resolve {name}: {e}")).expose().to_vec()
}

/// Asserts every `(name, value)` resolves to exactly that value (compared without printing values).
pub fn assert_values(v: &mut Vault, expected: &[(String, Vec<u8>)]) {
    for (name, value) in expected {
        let got = resolve(v, name);
        assert!(
            got == *value,
            "{name}: stored value differs from what was set ({} vs {} bytes)",
            got.len(),
            value.len()
        );
    }
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    airlock_crypto::random::fill(&mut v);
    v
}

pub fn random_alnum(n: usize) -> String {
    const A: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..n).map(|_| A[airlock_crypto::random::below(A.len() as u32) as usize] as char).collect()
}

/// A random duration in `[0, max)`.
pub fn random_below(max: std::time::Duration) -> std::time::Duration {
    let micros = max.as_micros().clamp(1, u32::MAX as u128) as u32;
    std::time::Duration::from_micros(airlock_crypto::random::below(micros) as u64)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The vault file split into its three lines: magic, JSON body, trailer (`sha256=... hmac=...`).
pub fn split_vault(bytes: &[u8]) -> (Vec<u8>, Vec<u8>, String) {
    let text = bytes.strip_suffix(b"\n").expect("vault file ends with a newline");
    let first = text.iter().position(|b| *b == b'\n').expect("magic line");
    let last = text.iter().rposition(|b| *b == b'\n').expect("trailer line");
    (
        text[..first].to_vec(),
        text[first + 1..last].to_vec(),
        String::from_utf8(text[last + 1..].to_vec()).expect("trailer is text"),
    )
}

/// Reassembles a vault file around an edited body, recomputing the unkeyed `sha256=` so the damage check passes
/// and only the keyed HMAC (which an attacker cannot recompute) stands between the edit and the user.
pub fn rebuild_vault(magic: &[u8], body: &[u8], old_trailer: &str) -> Vec<u8> {
    let (_, hmac) = old_trailer.split_once(" hmac=").expect("trailer has an hmac");
    let mut out = magic.to_vec();
    out.push(b'\n');
    out.extend_from_slice(body);
    out.push(b'\n');
    out.extend_from_slice(format!("sha256={} hmac={hmac}\n", hex(&airlock_crypto::kdf::sha256(body))).as_bytes());
    out
}

/// Every regular file under `dir`, recursively, with its bytes.
pub fn read_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file()
                && let Ok(b) = std::fs::read(&p)
            {
                out.push((p, b));
            }
        }
    }
    out
}

/// Finds any of many byte strings in large haystacks quickly: needles are indexed by their first 8 bytes.
pub struct NeedleSet {
    needles: Vec<(String, Vec<u8>)>,
    index: HashMap<u64, Vec<usize>>,
    /// A one-hash Bloom filter over the index keys, so most haystack positions cost one multiply and a bit test.
    bloom: Vec<u64>,
}

const BLOOM_BITS: u32 = 22;

fn bloom_slot(key: u64) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BLOOM_BITS)) as usize
}

impl NeedleSet {
    pub const MIN_LEN: usize = 12;
    pub const CHUNK_STRIDE: usize = 2048;

    pub fn new() -> Self {
        NeedleSet { needles: Vec::new(), index: HashMap::new(), bloom: vec![0; 1 << (BLOOM_BITS - 6)] }
    }

    pub fn len(&self) -> usize {
        self.needles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    fn add(&mut self, label: String, n: Vec<u8>) {
        assert!(n.len() >= Self::MIN_LEN, "needle {label} too short to be meaningful");
        let key = u64::from_le_bytes(n[..8].try_into().expect("8"));
        let slot = bloom_slot(key);
        self.bloom[slot >> 6] |= 1 << (slot & 63);
        self.index.entry(key).or_default().push(self.needles.len());
        self.needles.push((label, n));
    }

    /// Adds `value` raw, hex (both cases) and base64 (standard and URL-safe, at all three alignments so it is
    /// found inside a longer encoded blob). Values longer than 96 bytes are represented by 48-byte chunks every
    /// [`Self::CHUNK_STRIDE`] bytes (and their last 48 bytes), so any leaked stretch longer than the stride is found.
    pub fn add_value(&mut self, label: &str, value: &[u8]) {
        assert!(value.len() >= 16, "canary {label} must be at least 16 bytes");
        let chunks: Vec<(usize, &[u8])> = if value.len() <= 96 {
            vec![(0, value)]
        } else {
            let last = value.len() - 48;
            (0..last).step_by(Self::CHUNK_STRIDE).chain([last]).map(|off| (off, &value[off..off + 48])).collect()
        };
        for (off, c) in chunks {
            let l = |enc: &str| format!("{label}[{off}..+{}] as {enc}", c.len());
            self.add(l("raw"), c.to_vec());
            self.add(l("hex"), hex(c).into_bytes());
            self.add(l("HEX"), hex(c).to_ascii_uppercase().into_bytes());
            for align in 0..3 {
                let part = &c[align..];
                for (name, engine) in [("base64", &STANDARD), ("base64url", &URL_SAFE)] {
                    let enc = engine.encode(part);
                    // Drop the last group: it depends on what follows the value in a longer encoded stream.
                    let core = &enc.as_bytes()[..enc.len().saturating_sub(4)];
                    if core.len() >= Self::MIN_LEN {
                        self.add(l(&format!("{name}@{align}")), core.to_vec());
                    }
                }
            }
        }
    }

    /// Labels of every needle found in `hay`.
    pub fn find(&self, hay: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        for (i, w) in hay.windows(8).enumerate() {
            let key = u64::from_le_bytes(w.try_into().expect("8"));
            let slot = bloom_slot(key);
            if self.bloom[slot >> 6] & (1 << (slot & 63)) == 0 {
                continue;
            }
            if let Some(ids) = self.index.get(&key) {
                for &id in ids {
                    let (label, n) = &self.needles[id];
                    if hay[i..].starts_with(n) && !found.contains(label) {
                        found.push(label.clone());
                    }
                }
            }
        }
        found
    }
}

impl Default for NeedleSet {
    fn default() -> Self {
        Self::new()
    }
}
