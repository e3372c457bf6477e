//! End-to-end vault benchmarks, printed as a table (see docs/benchmarks.md for recorded results).
//!
//! Run: `cargo bench -p airlock-vault --bench vault`
//!
//! Measures, on this machine and in one run:
//! - unlock time with the default Argon2id parameters (RFC 9106 low-memory: m=64 MiB, t=3, p=4);
//! - secret resolve latency after unlock, warm (cached) and cold (first read: decrypt + decode);
//! - AEAD throughput for 1 KiB and 1 MiB values, for both ciphers, next to `openssl speed -evp` for the same
//!   algorithm family and sizes (openssl's figure is ChaCha20-Poly1305 with a 96-bit nonce; ours is the
//!   XChaCha20 variant, which adds one HChaCha20 block per message).

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use airlock_crypto::{Aad, Cipher, KekInputs, KekSpec, Key32, SecretBytes, aead};
use airlock_vault::{InitOptions, NewSecret, SecretId, Vault};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn fmt_dur(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

fn unlock_time() -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let mut pass = || Ok(SecretBytes::copy_from(b"benchmark passphrase, not a real one"));
    Vault::init(
        &home,
        &[KekSpec::Passphrase],
        &InitOptions::default(),
        &mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None },
    )
    .unwrap();
    let mut times = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let mut v = Vault::open(&home).unwrap();
        v.unlock(&mut KekInputs { passphrase: Some(&mut pass), keyfile_override: None }, None).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 1.0))
}

fn resolve_latency() -> ((Duration, Duration), (Duration, Duration)) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    let mut v =
        Vault::init(&home, &[KekSpec::Keyfile(dir.path().join("k"))], &InitOptions::default(), &mut KekInputs::none())
            .unwrap();
    let n = 500;
    for i in 0..n {
        let id = SecretId::new("default", &format!("SECRET_{i}")).unwrap();
        v.set(&id, NewSecret::default(), SecretBytes::copy_from(format!("ghp_{i:036}").as_bytes())).unwrap();
    }
    let mut v = Vault::open(&home).unwrap();
    v.unlock(&mut KekInputs::none(), None).unwrap();
    let ids: Vec<SecretId> = (0..n).map(|i| SecretId::new("default", &format!("SECRET_{i}")).unwrap()).collect();
    let mut cold = Vec::with_capacity(n);
    for id in &ids {
        let t = Instant::now();
        black_box(v.resolve(id).unwrap().len());
        cold.push(t.elapsed());
    }
    let mut warm = Vec::with_capacity(100_000);
    for i in 0..100_000 {
        let id = &ids[i % n];
        let t = Instant::now();
        black_box(v.resolve(id).unwrap().len());
        warm.push(t.elapsed());
    }
    cold.sort();
    warm.sort();
    ((percentile(&warm, 0.5), percentile(&warm, 0.99)), (percentile(&cold, 0.5), percentile(&cold, 0.99)))
}

/// MB/s (10^6 bytes per second) of seal and open for `size`-byte messages.
fn aead_throughput(cipher: Cipher, size: usize) -> (f64, f64) {
    let key = Key32::random();
    let ctx = Aad::new("bench/v1").str("record");
    let msg = vec![0x5au8; size];
    let budget = Duration::from_millis(1500);
    let mut env = Vec::new();
    let (mut n, t) = (0usize, Instant::now());
    while t.elapsed() < budget {
        env = black_box(aead::seal(cipher, &key, 1, &ctx, &msg));
        n += 1;
    }
    let seal = (n * size) as f64 / t.elapsed().as_secs_f64() / 1e6;
    let (mut n, t) = (0usize, Instant::now());
    while t.elapsed() < budget {
        black_box(aead::open(&key, &ctx, &env).unwrap());
        n += 1;
    }
    let open = (n * size) as f64 / t.elapsed().as_secs_f64() / 1e6;
    (seal, open)
}

/// The RustCrypto XChaCha20-Poly1305 crate by itself: one reused buffer, encrypted in place, no nonce generation,
/// no allocation, no zeroizing. The ceiling for anything built on it.
fn crate_alone(size: usize) -> f64 {
    use chacha20poly1305::XChaCha20Poly1305;
    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    let c = XChaCha20Poly1305::new_from_slice(&[7u8; 32]).unwrap();
    let mut buf = vec![0x5au8; size];
    let nonce = [1u8; 24];
    let (mut n, t) = (0usize, Instant::now());
    while t.elapsed() < Duration::from_millis(1500) {
        black_box(c.encrypt_inout_detached(&nonce.into(), b"aad", buf.as_mut_slice().into()).unwrap());
        n += 1;
    }
    (n * size) as f64 / t.elapsed().as_secs_f64() / 1e6
}

/// `openssl speed -evp ALG -bytes SIZE` in MB/s, if openssl is installed.
fn openssl_speed(alg: &str, size: usize) -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "2", "-bytes", &size.to_string(), "-evp", alg])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().rev().find(|l| l.trim_end().ends_with('k'))?;
    let k: f64 = last.split_whitespace().last()?.trim_end_matches('k').parse().ok()?;
    Some(k * 1000.0 / 1e6)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing special. Either way, run once.
    println!(
        "airlock-vault benchmarks ({} cores)\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    let (unlock_p50, unlock_max) = unlock_time();
    println!("| measurement | p50 | worst / p99 |");
    println!("|---|---|---|");
    println!(
        "| unlock (open + Argon2id m=64 MiB t=3 p=4 + keyring + HMAC), 7 runs | {} | {} |",
        fmt_dur(unlock_p50),
        fmt_dur(unlock_max)
    );
    let ((warm50, warm99), (cold50, cold99)) = resolve_latency();
    println!(
        "| resolve after unlock, warm (cached), 100k calls over 500 secrets | {} | {} |",
        fmt_dur(warm50),
        fmt_dur(warm99)
    );
    println!(
        "| resolve after unlock, cold (first read: decrypt + decode), 500 secrets | {} | {} |",
        fmt_dur(cold50),
        fmt_dur(cold99)
    );
    println!();
    println!("| AEAD | size | seal MB/s | open MB/s | openssl speed -evp MB/s | ours / openssl (open) |");
    println!("|---|---|---|---|---|---|");
    for (cipher, ossl) in [(Cipher::XChaCha20Poly1305, "chacha20-poly1305"), (Cipher::Aes256Gcm, "aes-256-gcm")] {
        for size in [1024, 1024 * 1024] {
            let (seal, open) = aead_throughput(cipher, size);
            let reference = openssl_speed(ossl, size);
            let label = if size == 1024 { "1 KiB" } else { "1 MiB" };
            let (r, ratio) = match reference {
                Some(r) => (format!("{r:.0} ({ossl})"), format!("{:.2}", open / r)),
                None => ("openssl not found".into(), "-".into()),
            };
            println!("| {} | {label} | {seal:.0} | {open:.0} | {r} | {ratio} |", cipher.name());
        }
    }
    for (size, label) in [(1024, "1 KiB"), (1024 * 1024, "1 MiB")] {
        let alone = crate_alone(size);
        let reference = openssl_speed("chacha20-poly1305", size);
        let ratio = reference.map(|r| format!("{:.2}", alone / r)).unwrap_or_else(|| "-".into());
        println!(
            "| chacha20poly1305 crate alone (in place, reused buffer) | {label} | {alone:.0} | - | {} | {ratio} (seal) |",
            reference.map(|r| format!("{r:.0}")).unwrap_or_else(|| "-".into())
        );
    }
}
