//! `airlock demo`: a guided tour on a throwaway home. It stores, lists, rotates and uses a (randomly generated,
//! GitHub-shaped) secret, then searches every byte it wrote (files and its own output) for the values, raw and
//! encoded, and reports what it found. It exits non-zero if it finds anything.

use std::path::Path;

use airlock_crypto::kek::KekSpec;
use airlock_crypto::{Cipher, KekInputs, SecretBytes, random};
use airlock_vault::formats::{BASE62, crc32_base62};
use airlock_vault::reference::interpolate;
use airlock_vault::surrogate::SurrogateMap;
use airlock_vault::{InitOptions, Injection, NewSecret, SecretId, Vault};
use base64::Engine;
use zeroize::Zeroizing;

use crate::CliError;

/// Collects everything the demo prints, so the final scan covers its own output too.
struct Out(String);

impl Out {
    fn line(&mut self, s: impl AsRef<str>) {
        println!("{}", s.as_ref());
        self.0.push_str(s.as_ref());
        self.0.push('\n');
    }
}

fn fake_github_token() -> SecretBytes {
    let mut v = b"ghp_".to_vec();
    for _ in 0..30 {
        v.push(BASE62[random::below(62) as usize]);
    }
    let sum = crc32_base62(&v[4..]);
    v.extend_from_slice(&sum);
    SecretBytes::new(v)
}

pub fn run(ephemeral: bool) -> Result<(), CliError> {
    let mut out = Out(String::new());
    let tmp = tempfile::Builder::new()
        .prefix("airlock-demo-")
        .tempdir()
        .map_err(|e| CliError { code: 1, message: e.to_string() })?;
    let home = tmp.path().join("home");
    out.line("Airlock demo: an encrypted vault whose values never reach disk, output or the tool.");
    out.line("");

    let mut vault = if ephemeral {
        out.line("1. Memory-only (--ephemeral) vault: nothing will be written anywhere.");
        Vault::ephemeral(Cipher::XChaCha20Poly1305, 5)
    } else {
        out.line(format!("1. New vault in a throwaway AIRLOCK_HOME: {}", home.display()));
        let keyfile = tmp.path().join("demo.key");
        let v =
            Vault::init(&home, &[KekSpec::Keyfile(keyfile.clone())], &InitOptions::default(), &mut KekInputs::none())?;
        out.line(format!("   unlocks with a key file (created 0600): {}", keyfile.display()));
        v
    };

    let id = SecretId::new("default", "GITHUB_TOKEN")?;
    let v1 = fake_github_token();
    let opts = NewSecret {
        hosts: vec!["api.github.com".into()],
        injection: Some(Injection::header("Authorization: Bearer {}")?),
        ..Default::default()
    };
    vault.set(&id, opts, v1.clone())?;
    out.line("");
    out.line("2. Stored default/GITHUB_TOKEN (a random GitHub-shaped token), pinned to api.github.com.");
    out.line("   `airlock secret list` shows metadata only:");
    for s in vault.list()? {
        out.line(format!(
            "     {}/{}  version {}  hosts {}  inject {}",
            s.workspace,
            s.name,
            s.current_version,
            s.hosts.join(","),
            s.injection.map(|i| i.describe()).unwrap_or_default()
        ));
    }

    let v2 = fake_github_token();
    let info = vault.rotate(&id, v2.clone())?;
    out.line("");
    out.line(format!("3. Rotated it: current version {}, versions kept {:?}.", info.current_version, info.versions));
    let term = vault.rotate_key(false)?;
    out.line(format!("   Rotated the data key: new writes use keyring term {term}; older terms still decrypt."));

    out.line("");
    out.line("4. Using it. The tool's environment gets a surrogate of the same shape:");
    let mut surrogates = SurrogateMap::new();
    let current = vault.resolve(&id)?.clone();
    let surrogate = surrogates.surrogate_for(&id, current.expose()).to_string();
    out.line(format!("     GITHUB_TOKEN={surrogate}   (valid prefix, length and checksum; worthless elsewhere)"));
    let back = surrogates.lookup(&surrogate).cloned();
    out.line(format!(
        "   Inside Airlock the surrogate maps back to: {}",
        back.as_ref().map(|b| b.to_string()).unwrap_or_default()
    ));
    let header = interpolate(
        "Bearer ${secret:GITHUB_TOKEN}",
        "default",
        |i| Ok(Zeroizing::new(vault.resolve(i)?.expose().to_vec())),
        |_| None,
    )?;
    let expected_len = "Bearer ".len() + current.len();
    let ok = header.len() == expected_len && header.as_bytes().ends_with(current.expose());
    out.line(format!(
        "   Toward api.github.com only, the broker builds `Authorization: Bearer <{} bytes>` in memory: {}",
        current.len(),
        if ok { "verified" } else { "MISMATCH" }
    ));
    drop(header);

    let audit_ok = if ephemeral {
        true
    } else {
        out.line("");
        audit_tour(&mut out, &mut vault, &home, tmp.path(), &current)?
    };

    out.line("");
    out.line(format!(
        "{}. Searching every byte written for both values (raw, base64, hex):",
        if ephemeral { 5 } else { 6 }
    ));
    let needles = needles(&[&v1, &v2]);
    let (files, bytes, hits) = if ephemeral {
        let exists = home.exists();
        out.line(format!("   home directory created: {}", if exists { "YES (bug)" } else { "no" }));
        (0, 0, usize::from(exists))
    } else {
        scan_dir(&home, &needles)
    };
    let own_output_hits = needles.iter().filter(|n| out.0.as_bytes().windows(n.len()).any(|w| w == &n[..])).count();
    out.line(format!("   files under AIRLOCK_HOME: {files} ({bytes} bytes), occurrences found: {hits}"));
    out.line(format!("   this demo's own output, occurrences found: {own_output_hits}"));
    vault.lock();
    if hits + own_output_hits > 0 || !ok || !audit_ok || back.as_ref() != Some(&id) {
        return Err(CliError { code: 1, message: "demo check failed".into() });
    }
    out.line("");
    out.line("All checks passed. The throwaway home is deleted now. Next: `airlock init`, then `airlock secret set NAME --host HOST`.");
    Ok(())
}

/// Step 5: the same changes in the tamper-evident audit log, a verification, and a tampered copy caught.
fn audit_tour(
    out: &mut Out,
    vault: &mut Vault,
    home: &Path,
    scratch: &Path,
    current: &SecretBytes,
) -> Result<bool, CliError> {
    use airlock_audit::event::activity;
    use airlock_audit::{AuditLog, AuditMac, Decision, Event, Options, VerifyOptions};
    let fail = |e: airlock_audit::AuditError| CliError { code: 1, message: e.to_string() };
    let io = |e: std::io::Error| CliError { code: 1, message: e.to_string() };
    out.line("5. Each step went into the tamper-evident audit log (OCSF records, Merkle tree, signed checkpoints):");
    let signer = crate::audit::signer(vault)?;
    let verifier = signer.verifier();
    let mac = AuditMac::new(vault.subkey(airlock_crypto::kdf::labels::AUDIT_MAC)?);
    let dir = home.join("audit");
    let log = AuditLog::open(&dir, signer, Options::default(), vec![]).map_err(fail)?;
    let now = jiff::Timestamp::now().as_millisecond();
    let name = "default/GITHUB_TOKEN";
    let query = Zeroizing::new(format!("access_token={}", String::from_utf8_lossy(current.expose())));
    for e in [
        Event::entity_change(now, activity::CREATE, "secret", name).message("secret stored, pinned to api.github.com"),
        Event::entity_change(now, activity::UPDATE, "secret", name).message("secret rotated to version 2"),
        Event::entity_change(now, activity::UPDATE, "key", "data-key").message("data key rotated"),
        // A tool that put the token in a URL: the record keeps only a keyed hash of the query string.
        Event::secret_use(now, "demo-agent", Some("gh"), name, "api.github.com")
            .http("GET", "https", "api.github.com", 443, "/user", Some(&query), &mac)
            .decision(Decision::Allow, &["airlock.tool.gh"])
            .message("credential injected toward its pinned host"),
    ] {
        log.append(e).map_err(fail)?;
    }
    let cp = log.close().map_err(fail)?;
    let report = airlock_audit::verify(&dir, &verifier, &VerifyOptions::default()).map_err(fail)?;
    out.line(format!(
        "   `airlock audit verify`: {} ({} records; {} checkpoints matched; the newest signs {} records)",
        if report.ok() { "OK" } else { "FAILED" },
        report.tree_size(),
        report.checkpoints_matched,
        cp.checkpoint.size
    ));
    out.line("   the token in that URL is stored only as hmac-sha256:… (search it with `airlock audit hash`)");

    // Tamper with a copy: change one record's text, as someone editing the file would.
    let copy = scratch.join("audit-tampered");
    let seg_dir = copy.join("segments");
    std::fs::create_dir_all(&seg_dir).map_err(io)?;
    std::fs::copy(dir.join("checkpoints"), copy.join("checkpoints")).map_err(io)?;
    for entry in std::fs::read_dir(dir.join("segments")).map_err(io)? {
        let p = entry.map_err(io)?.path();
        let text = std::fs::read_to_string(&p).map_err(io)?;
        let edited = text.replace("secret rotated to version 2", "secret rotated to version 1");
        std::fs::write(seg_dir.join(p.file_name().unwrap_or_default()), edited).map_err(io)?;
    }
    let tampered = airlock_audit::verify(&copy, &verifier, &VerifyOptions::default()).map_err(fail)?;
    let first_bad = tampered.first_bad().and_then(|p| p.seq);
    out.line(format!(
        "   a copy with one word changed: verify {} and names record {}",
        if tampered.ok() { "PASSES (bug)" } else { "FAILS" },
        first_bad.map_or_else(|| "none".into(), |s| s.to_string())
    ));
    Ok(report.ok() && !tampered.ok() && first_bad == Some(2))
}

fn needles(values: &[&SecretBytes]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut n = Vec::new();
    for v in values {
        let raw = v.expose();
        n.push(Zeroizing::new(raw.to_vec()));
        n.push(Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(raw).into_bytes()));
        n.push(Zeroizing::new(raw.iter().map(|b| format!("{b:02x}")).collect::<String>().into_bytes()));
    }
    n
}

fn scan_dir(dir: &Path, needles: &[Zeroizing<Vec<u8>>]) -> (usize, u64, usize) {
    let (mut files, mut bytes, mut hits) = (0, 0, 0);
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                let (f, b, h) = scan_dir(&p, needles);
                files += f;
                bytes += b;
                hits += h;
            } else if let Ok(data) = std::fs::read(&p) {
                files += 1;
                bytes += data.len() as u64;
                hits += needles.iter().filter(|n| data.windows(n.len()).any(|w| w == &n[..])).count();
            }
        }
    }
    (files, bytes, hits)
}
