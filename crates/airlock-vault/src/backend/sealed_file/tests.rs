use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

const CANARY: &[u8] = b"canary-VALUE-7f3a9c";

fn fast() -> Argon2Params {
    Argon2Params { m_kib: 64, t: 1, p: 1 }
}

struct Fx {
    dir: tempfile::TempDir,
    file: PathBuf,
    keyfile: PathBuf,
}

impl Fx {
    /// A sealed file with one key-file recipient (created by `create`), and no values.
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.toml");
        let keyfile = dir.path().join("team.key");
        SealedFile::create(&file, Cipher::XChaCha20Poly1305, vec![NewRecipient::keyfile(&keyfile)]).unwrap();
        Fx { dir, file, keyfile }
    }

    fn unlocker(&self) -> Unlocker {
        Unlocker::new(Unlock::keyfile(&self.keyfile))
    }

    fn open(&self) -> Result<SealedFile, SealedError> {
        SealedFile::open(&self.file, &self.unlocker())
    }

    fn set(&self, key: &str, value: &[u8]) -> SetOutcome {
        SealedFile::edit(&self.file, &self.unlocker(), |f| f.set(key, &SecretBytes::copy_from(value))).unwrap()
    }

    fn get(&self, key: &str) -> Vec<u8> {
        self.open().unwrap().get(key).unwrap().expose().to_vec()
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.file).unwrap()
    }

    fn write_text(&self, text: &str) {
        std::fs::write(&self.file, text).unwrap();
    }
}

/// The line holding `key` (a leaf name) in canonical text.
fn line<'a>(text: &'a str, leaf: &str) -> &'a str {
    text.lines().find(|l| l.starts_with(&format!("{leaf} = "))).unwrap_or_else(|| panic!("no line for {leaf}"))
}

fn no_canary(shown: &str) {
    assert!(!shown.contains(std::str::from_utf8(CANARY).unwrap()), "a value leaked: {shown}");
}

#[test]
fn values_round_trip_and_the_file_looks_as_documented() {
    let fx = Fx::new();
    assert_eq!(fx.set("token", CANARY), SetOutcome::Added);
    assert_eq!(fx.set("db.password", b"pg-secret"), SetOutcome::Added);
    assert_eq!(fx.set("db.replica.password", b"\x00\xffbinary"), SetOutcome::Added);
    assert_eq!(fx.get("token"), CANARY);
    assert_eq!(fx.get("db.password"), b"pg-secret");
    assert_eq!(fx.get("db.replica.password"), b"\x00\xffbinary");
    assert_eq!(fx.open().unwrap().keys(), ["db.password", "db.replica.password", "token"]);
    let text = fx.text();
    no_canary(&text);
    assert!(!text.contains("pg-secret"));
    assert!(line(&text, "token").starts_with("token = \"ENC[airlock:v1,xchacha20-poly1305,"), "{text}");
    for needle in ["\n[db]\npassword = \"ENC[", "\n[db.replica]\npassword = \"ENC[", "\n[airlock]\nversion = 1\n"] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
    assert!(text.contains("\n[[airlock.recipients]]\nname = \"keyfile-team\"\ntype = \"keyfile\"\n"), "{text}");
    assert_eq!(std::fs::metadata(&fx.file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(matches!(fx.open().unwrap().get("nope"), Err(SealedError::KeyNotFound { .. })));
}

#[test]
fn aes_gcm_files_work_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    let kf = dir.path().join("k");
    SealedFile::create(&file, Cipher::Aes256Gcm, vec![NewRecipient::keyfile(&kf)]).unwrap();
    let u = Unlocker::new(Unlock::keyfile(&kf));
    SealedFile::edit(&file, &u, |f| f.set("a", &SecretBytes::copy_from(b"x"))).unwrap();
    assert_eq!(SealedFile::open(&file, &u).unwrap().get("a").unwrap().expose(), b"x");
    assert!(std::fs::read_to_string(&file).unwrap().contains("a = \"ENC[airlock:v1,aes-256-gcm,"));
}

#[test]
fn each_recipient_opens_the_file_and_wrong_ones_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    let kf = dir.path().join("ci.key");
    let pass = || SecretBytes::copy_from(b"correct horse battery");
    SealedFile::create(
        &file,
        Cipher::XChaCha20Poly1305,
        vec![NewRecipient::passphrase(pass(), fast()).named("team"), NewRecipient::keyfile(&kf)],
    )
    .unwrap();
    let by_pass = Unlocker::new(Unlock::passphrase(move || Ok(pass())));
    SealedFile::edit(&file, &by_pass, |f| f.set("k", &SecretBytes::copy_from(CANARY))).unwrap();
    assert_eq!(
        SealedFile::open(&file, &Unlocker::new(Unlock::keyfile(&kf))).unwrap().get("k").unwrap().expose(),
        CANARY
    );

    let wrong = Unlocker::new(Unlock::passphrase(|| Ok(SecretBytes::copy_from(b"wrong horse"))));
    let e = SealedFile::open(&file, &wrong).unwrap_err();
    assert!(matches!(e, SealedError::Unlock { .. }), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("the passphrase opens none of its recipients team") && m.contains("wrong passphrase"), "{m}");

    let other_kf = dir.path().join("other.key");
    airlock_crypto::kek::create_keyfile(&other_kf).unwrap();
    let m = SealedFile::open(&file, &Unlocker::new(Unlock::keyfile(&other_kf))).unwrap_err().to_string();
    assert!(
        m.contains("key file") && m.contains("other.key") && m.contains("keyfile-ci") && m.contains("wrong key file"),
        "{m}"
    );

    // The key-file checks of the vault apply: a key file others can read is refused, with the fix.
    std::fs::set_permissions(&kf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = SealedFile::open(&file, &Unlocker::new(Unlock::keyfile(&kf))).unwrap_err();
    assert!(matches!(e, SealedError::Crypto { source: CryptoError::KeyfileInsecure { .. }, .. }), "{e:?}");

    // A file with only a key-file recipient, asked with a passphrase: says what it has.
    let fx = Fx::new();
    let m = SealedFile::open(&fx.file, &wrong).unwrap_err().to_string();
    assert!(m.contains("no recipient that the passphrase can open") && m.contains("keyfile-team (keyfile)"), "{m}");
    // A passphrase that cannot be had is its own error, not "wrong passphrase".
    let none = Unlocker::new(Unlock::passphrase(|| Err(CryptoError::PassphraseUnavailable)));
    let e = SealedFile::open(&file, &none).unwrap_err();
    assert!(matches!(e, SealedError::Crypto { source: CryptoError::PassphraseUnavailable, .. }), "{e:?}");
    // Several inputs are tried in order; one that cannot be used does not stop the next.
    let either = Unlocker::new(Unlock::keyfile(fx.dir.path().join("missing.key"))).or(Unlock::keyfile(&fx.keyfile));
    SealedFile::open(&fx.file, &either).unwrap();
    let both = Unlocker::new(Unlock::passphrase(|| Ok(SecretBytes::copy_from(b"team"))))
        .or(Unlock::passphrase(|| Err(CryptoError::PassphraseUnavailable)))
        .or(Unlock::keyfile(&kf));
    let m = SealedFile::open(&file, &both).unwrap_err().to_string();
    assert!(m.contains("opens none of its recipients team") && m.contains("a passphrase is needed"), "{m}");
}

#[test]
fn an_envelope_swapped_between_keys_or_copied_from_another_file_fails_naming_the_key() {
    let fx = Fx::new();
    fx.set("low", b"low-trust-value");
    fx.set("high", CANARY);
    let original = fx.text();
    let (lo, hi) = (line(&original, "low"), line(&original, "high"));
    let envelope = |l: &str| l.split_once(" = ").unwrap().1.to_string();
    let swapped =
        original.replace(lo, &format!("low = {}", envelope(hi))).replace(hi, &format!("high = {}", envelope(lo)));
    assert_ne!(swapped, original);
    fx.write_text(&swapped);
    let e = fx.open().unwrap_err();
    assert!(matches!(&e, SealedError::ValueTampered { keys, .. } if keys == &["high", "low"]), "{e:?}");
    let m = e.to_string();
    assert!(m.contains("integrity check failed: keys high, low") && m.contains("moved from another key"), "{m}");
    no_canary(&m);

    // The same key path in another file (another file id, another data key) does not open here either, even for
    // someone who can open both files: the file id is in the associated data.
    let other = Fx::new();
    other.set("high", b"from-the-other-file");
    fx.write_text(&original.replace(hi, line(&other.text(), "high")));
    let e = fx.open().unwrap_err();
    assert!(matches!(&e, SealedError::ValueTampered { keys, .. } if keys == &["high"]), "{e:?}");

    fx.write_text(&original);
    assert_eq!(fx.get("high"), CANARY);
}

#[test]
fn the_file_id_is_bound_into_every_envelope() {
    // Two files never share a data key unless one was copied from the other; the file id keeps their envelopes
    // apart even then.
    let fx = Fx::new();
    fx.set("k", CANARY);
    let a = fx.open().unwrap();
    let mut doc = a.doc.clone();
    doc.meta.file_id = "f".repeat(32);
    let b = SealedFile::with_key(&a.path, doc, a.data_key.clone());
    assert!(matches!(b.get("k"), Err(SealedError::ValueTampered { .. })));
    assert_eq!(a.get("k").unwrap().expose(), CANARY);
}

#[test]
fn the_mac_detects_removed_added_replayed_values_and_edited_metadata() {
    let fx = Fx::new();
    fx.set("a", b"one");
    fx.set("b", b"two");
    let old_a = line(&fx.text(), "a").to_string();
    fx.set("a", b"one, rotated");
    let good = fx.text();
    let mac_failure = |text: String, what: &str| {
        fx.write_text(&text);
        let e = fx.open().unwrap_err();
        assert!(matches!(e, SealedError::Tampered { .. }), "{what}: {e:?}");
        assert!(e.to_string().contains("MAC does not match"), "{what}: {e}");
        fx.write_text(&good);
    };
    mac_failure(good.replace(&format!("{}\n", line(&good, "b")), ""), "a value removed");
    mac_failure(good.replace(line(&good, "a"), &old_a), "a value rolled back to an older envelope");
    mac_failure(good.replace("cipher = \"xchacha20-poly1305\"", "cipher = \"aes-256-gcm\""), "cipher edited");
    let mac_line = good.lines().find(|l| l.starts_with("mac = ")).unwrap();
    mac_failure(good.replace(mac_line, &format!("mac = \"{}\"", B64.encode([0u8; 32]))), "mac replaced");
    // A second copy of the recipient under another name (it does not open, but the MAC covers it anyway).
    let recipient = &good[good.find("\n[[airlock.recipients]]").unwrap()..];
    mac_failure(format!("{good}{}", recipient.replace("keyfile-team", "keyfile-zz")), "recipient added");
    // An added key with an envelope of its own fails before the MAC, naming it.
    fx.write_text(&good.replacen("a = ", &format!("c{}\na = ", &old_a[1..]), 1));
    let e = fx.open().unwrap_err();
    assert!(matches!(&e, SealedError::ValueTampered { keys, .. } if keys == &["c"]), "{e:?}");
    // The file id is bound into every recipient: edited, nothing opens.
    let id_line = good.lines().find(|l| l.starts_with("file_id = ")).unwrap();
    fx.write_text(&good.replace(id_line, &format!("file_id = \"{}\"", "0".repeat(32))));
    assert!(matches!(fx.open().unwrap_err(), SealedError::Unlock { .. }));
    fx.write_text(&good);
    assert_eq!(fx.get("a"), b"one, rotated");
}

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

#[test]
fn an_unchanged_value_keeps_its_envelope_and_a_change_touches_one_line_and_the_mac() {
    let fx = Fx::new();
    for (k, v) in [("a", &b"1"[..]), ("b", b"2"), ("t.c", b"3")] {
        fx.set(k, v);
    }
    let before = fx.text();
    assert_eq!(fx.set("b", b"2"), SetOutcome::Unchanged);
    assert_eq!(fx.text(), before, "setting the same value rewrote the file");
    assert_eq!(fx.set("b", b"2 but new"), SetOutcome::Changed);
    let after = fx.text();
    let changed: Vec<(&str, &str)> = before.lines().zip(after.lines()).filter(|(x, y)| x != y).collect();
    assert_eq!(before.lines().count(), after.lines().count());
    assert_eq!(changed.len(), 2, "{changed:#?}");
    assert!(changed[0].0.starts_with("b = ") && changed[1].0.starts_with("mac = "), "{changed:#?}");
    // Adding a recipient leaves every value line alone.
    SealedFile::edit(&fx.file, &fx.unlocker(), |f| f.add_recipient(NewRecipient::keyfile(fx.dir.path().join("b.key"))))
        .unwrap();
    let with_recipient = fx.text();
    for k in ["a", "b", "c"] {
        assert_eq!(line(&after, k), line(&with_recipient, k));
    }
}

#[test]
fn values_and_keys_never_show_in_debug_or_errors() {
    let fx = Fx::new();
    fx.set("token", CANARY);
    let f = fx.open().unwrap();
    no_canary(&format!("{f:?}"));
    no_canary(&format!("{:?}", f.get("token").unwrap()));
    let nr = NewRecipient::passphrase(SecretBytes::copy_from(CANARY), fast());
    no_canary(&format!("{nr:?}"));
    let u = Unlocker::new(Unlock::passphrase(|| Ok(SecretBytes::copy_from(CANARY))));
    no_canary(&format!("{u:?}"));
    // Errors from every path that touches the value.
    let text = fx.text();
    let mut errors = vec![
        fx.open().unwrap().set("token", &SecretBytes::new(vec![b'x'; MAX_VALUE_LEN + 1])).unwrap_err().to_string(),
        SealedFile::open(&fx.file, &u).unwrap_err().to_string(),
    ];
    // A value typed into the file in the clear.
    fx.write_text(
        &text.replace(line(&text, "token"), &format!("token = \"{}\"", std::str::from_utf8(CANARY).unwrap())),
    );
    errors.push(fx.open().unwrap_err().to_string());
    fx.write_text(&text.replace(line(&text, "token"), &format!("token = {}", std::str::from_utf8(CANARY).unwrap())));
    errors.push(fx.open().unwrap_err().to_string());
    for e in &errors {
        no_canary(e);
    }
    assert!(errors[2].contains("key token") && errors[2].contains("in the clear"), "{}", errors[2]);
    assert!(errors[3].contains("not valid TOML") && errors[3].contains("line "), "{}", errors[3]);
}

#[test]
fn writes_are_whole_file_replacements_and_stale_temps_are_swept() {
    let fx = Fx::new();
    fx.set("a", b"1");
    let stale = fx.dir.path().join(".secrets.toml.airlock-tmp.1.deadbeef");
    std::fs::write(&stale, b"half a file").unwrap();
    let unrelated = fx.dir.path().join(".other.toml.airlock-tmp.1.deadbeef");
    std::fs::write(&unrelated, b"not ours").unwrap();
    let ino = std::fs::metadata(&fx.file).unwrap().ino();
    fx.set("b", b"2");
    assert!(!stale.exists(), "a killed writer's temp file was not swept");
    assert!(unrelated.exists(), "another file's temp file was swept");
    // Replaced by rename (a new inode), never rewritten in place.
    assert_ne!(std::fs::metadata(&fx.file).unwrap().ino(), ino);
    let names: Vec<String> =
        std::fs::read_dir(fx.dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert!(!names.iter().any(|n| n.starts_with(".secrets.toml.airlock-tmp")), "{names:?}");
    // A failed change writes nothing.
    let before = fx.text();
    let e = SealedFile::edit(&fx.file, &fx.unlocker(), |f| {
        f.set("c", &SecretBytes::copy_from(b"3"))?;
        f.remove("missing")
    });
    assert!(matches!(e, Err(SealedError::KeyNotFound { .. })));
    assert_eq!(fx.text(), before);
}

#[test]
fn a_file_cut_short_at_any_length_never_opens_with_less_in_it() {
    let fx = Fx::new();
    fx.set("a", b"1");
    fx.set("z.b", b"2");
    let full = fx.text();
    let all = fx.open().unwrap().keys();
    for n in 0..full.len() {
        fx.write_text(&full[..n]);
        match fx.open() {
            Err(_) => {}
            Ok(f) => {
                // Only whitespace at the end may be lost, which changes nothing.
                assert_eq!(full[n..].trim(), "", "cut at {n} opened");
                assert_eq!(f.keys(), all);
            }
        }
    }
}

#[test]
fn concurrent_writers_lose_nothing() {
    let fx = Arc::new(Fx::new());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let fx = Arc::clone(&fx);
            std::thread::spawn(move || {
                let u = fx.unlocker();
                for i in 0..5 {
                    SealedFile::edit(&fx.file, &u, |f| f.set(&format!("t{t}.k{i}"), &SecretBytes::copy_from(b"v")))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(fx.open().unwrap().keys().len(), 40);
}

#[test]
fn keys_that_are_tables_or_under_values_are_refused() {
    let fx = Fx::new();
    fx.set("a.b", b"1");
    let mut f = fx.open().unwrap();
    let v = SecretBytes::copy_from(b"x");
    assert!(f.set("a", &v).unwrap_err().to_string().contains("a is a table (it holds a.b)"));
    assert!(f.set("a.b.c", &v).unwrap_err().to_string().contains("a.b holds a value"));
    assert!(f.set("airlock.x", &v).unwrap_err().to_string().contains("reserved"));
    assert!(f.set("a b", &v).unwrap_err().to_string().contains("not a dotted path"));
    assert!(f.set("e", &SecretBytes::new(Vec::new())).unwrap_err().to_string().contains("empty"));
    assert_eq!(f.set("a.c", &v).unwrap(), SetOutcome::Added);
}

#[test]
fn recipients_are_added_removed_and_rekeyed() {
    let fx = Fx::new();
    fx.set("a", CANARY);
    let pass = || SecretBytes::copy_from(b"team passphrase");
    let by_pass = Unlocker::new(Unlock::passphrase(move || Ok(pass())));
    let added =
        SealedFile::edit(&fx.file, &fx.unlocker(), |f| f.add_recipient(NewRecipient::passphrase(pass(), fast())))
            .unwrap();
    assert_eq!((added.name.as_str(), added.kind), ("passphrase", "passphrase"));
    assert_eq!(SealedFile::open(&fx.file, &by_pass).unwrap().get("a").unwrap().expose(), CANARY);
    // Names are unique; the last recipient stays.
    let e = SealedFile::edit(&fx.file, &fx.unlocker(), |f| {
        f.add_recipient(NewRecipient::keyfile(&fx.keyfile).named("passphrase"))
    });
    assert!(matches!(e, Err(SealedError::Exists { .. })), "{e:?}");
    SealedFile::edit(&fx.file, &fx.unlocker(), |f| f.remove_recipient("keyfile-team")).unwrap();
    assert!(matches!(fx.open(), Err(SealedError::Unlock { .. })), "a removed recipient still opens the file");
    let e = SealedFile::edit(&fx.file, &by_pass, |f| f.remove_recipient("passphrase")).unwrap_err();
    assert!(e.to_string().contains("only recipient"), "{e}");
    assert!(matches!(
        SealedFile::edit(&fx.file, &by_pass, |f| f.remove_recipient("nobody")),
        Err(SealedError::RecipientNotFound { .. })
    ));

    // A removed recipient that kept the data key could still read new values: rekey replaces it.
    let before = fx.text();
    let old_key = SealedFile::open(&fx.file, &by_pass).unwrap().data_key.clone();
    let new_kf = fx.dir.path().join("new.key");
    SealedFile::edit(&fx.file, &by_pass, |f| f.rekey(Some(Cipher::Aes256Gcm), vec![NewRecipient::keyfile(&new_kf)]))
        .unwrap();
    let f = SealedFile::open(&fx.file, &Unlocker::new(Unlock::keyfile(&new_kf))).unwrap();
    assert_ne!(f.data_key, old_key);
    assert_eq!(f.get("a").unwrap().expose(), CANARY);
    assert_eq!(f.file_id(), SealedFile::open(&fx.file, &Unlocker::new(Unlock::keyfile(&new_kf))).unwrap().file_id());
    assert_ne!(line(&before, "a"), line(&fx.text(), "a"));
    assert!(fx.text().contains("a = \"ENC[airlock:v1,aes-256-gcm,"));
    assert!(matches!(SealedFile::open(&fx.file, &by_pass), Err(SealedError::Unlock { .. })));
}

#[test]
fn create_refuses_to_overwrite_and_checks_its_recipients() {
    let fx = Fx::new();
    let before = fx.text();
    let e = SealedFile::create(&fx.file, Cipher::XChaCha20Poly1305, vec![NewRecipient::keyfile(&fx.keyfile)]);
    assert!(matches!(e, Err(SealedError::FileExists { .. })), "{e:?}");
    assert_eq!(fx.text(), before);
    let other = fx.dir.path().join("o.toml");
    assert!(SealedFile::create(&other, Cipher::XChaCha20Poly1305, vec![]).is_err());
    let huge = Argon2Params { m_kib: 2 * 1024 * 1024, t: 1, p: 1 };
    let e = SealedFile::create(
        &other,
        Cipher::XChaCha20Poly1305,
        vec![NewRecipient::passphrase(SecretBytes::copy_from(b"p"), huge)],
    );
    assert!(e.unwrap_err().to_string().contains("sealed-file limits"));
    assert!(!other.exists());
}

#[test]
fn a_world_writable_file_is_refused() {
    let fx = Fx::new();
    std::fs::set_permissions(&fx.file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = fx.open().unwrap_err().to_string();
    assert!(e.contains("any user on this machine may write it"), "{e}");
    std::fs::set_permissions(&fx.file, std::fs::Permissions::from_mode(0o644)).unwrap();
    fx.open().unwrap();
}

fn loc(fx: &Fx, key: &str) -> Locator {
    Locator::File { path: fx.file.display().to_string(), key: key.into() }
}

#[test]
fn the_backend_reads_writes_lists_and_deletes() {
    let fx = Fx::new();
    let b = SealedFileBackend::open(&fx.file, Unlock::keyfile(&fx.keyfile)).unwrap();
    assert_eq!(b.kind(), BackendKind::File);
    let v = SecretBytes::copy_from(CANARY);
    assert_eq!(b.write(&loc(&fx, "db.password"), &v, Expect::Absent).unwrap(), None);
    assert!(matches!(b.write(&loc(&fx, "db.password"), &v, Expect::Absent), Err(BackendError::Conflict { .. })));
    b.write(&loc(&fx, "db.password"), &v, Expect::Any).unwrap();
    b.write(&loc(&fx, "dbx"), &SecretBytes::copy_from(b"x"), Expect::Any).unwrap();
    assert!(matches!(b.write(&loc(&fx, "a"), &v, Expect::Version(1)), Err(BackendError::Unsupported { .. })));
    let got = b.read(&loc(&fx, "db.password")).unwrap();
    assert_eq!((got.value.expose(), got.version, got.stale), (CANARY, None, false));
    assert_eq!(b.list("").unwrap(), ["db.password", "dbx"]);
    assert_eq!(b.list("db").unwrap(), ["db.password"]);
    assert_eq!(b.list("db.").unwrap(), ["db.password"]);
    assert_eq!(b.list("db.password").unwrap(), ["db.password"]);
    assert!(b.list("nothing").unwrap().is_empty());
    assert_eq!(b.metadata(&loc(&fx, "dbx")).unwrap(), Metadata::default());
    b.delete(&loc(&fx, "dbx")).unwrap();
    assert!(matches!(b.read(&loc(&fx, "dbx")), Err(BackendError::NotFound(_))));
    assert!(matches!(b.delete(&loc(&fx, "dbx")), Err(BackendError::NotFound(_))));
    assert!(matches!(b.metadata(&loc(&fx, "dbx")), Err(BackendError::NotFound(_))));
    // Relative locators resolve from the base directory; another file, or another scheme, is refused.
    let rel = Locator::File { path: "secrets.toml".into(), key: "db.password".into() };
    assert!(matches!(b.read(&rel), Err(BackendError::Invalid { .. })));
    let b = b.with_base_dir(fx.dir.path());
    assert_eq!(b.read(&rel).unwrap().value.expose(), CANARY);
    let other =
        Locator::File { path: fx.dir.path().join("other.toml").display().to_string(), key: "db.password".into() };
    assert!(b.read(&other).unwrap_err().to_string().contains("serves the sealed file"));
    assert!(matches!(b.read(&Locator::Env { name: "X".into() }), Err(BackendError::Invalid { .. })));
    let bad_key = Locator::File { path: fx.file.display().to_string(), key: "a b".into() };
    assert!(matches!(b.read(&bad_key), Err(BackendError::Invalid { .. })));
    no_canary(&format!("{b:?}"));
    assert!(b.check(&loc(&fx, "db.password")).is_ok());
}

#[test]
fn the_backend_reports_problems_when_opened_and_maps_errors() {
    let fx = Fx::new();
    let e = SealedFileBackend::open(fx.dir.path().join("missing.toml"), Unlock::keyfile(&fx.keyfile)).unwrap_err();
    assert!(matches!(e, BackendError::NotFound(_)), "{e:?}");
    let e = SealedFileBackend::open(&fx.file, Unlock::passphrase(|| Ok(SecretBytes::copy_from(b"x")))).unwrap_err();
    assert!(matches!(e, BackendError::Denied { .. }), "{e:?}");
    fx.set("a", b"1");
    fx.set("b", b"2");
    let b = SealedFileBackend::open(&fx.file, Unlock::keyfile(&fx.keyfile)).unwrap();
    let text = fx.text();
    fx.write_text(&text.replace(&format!("{}\n", line(&text, "b")), ""));
    // Tampering is seen on the next read, of any key: the MAC covers the whole file.
    let e = b.read(&loc(&fx, "a")).unwrap_err();
    assert!(matches!(&e, BackendError::Invalid { reason, .. } if reason.contains("MAC")), "{e:?}");
    assert!(!e.is_transient());
}

#[test]
fn the_backend_keeps_the_derived_key_and_sees_other_writers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    let pass = || SecretBytes::copy_from(b"team passphrase");
    SealedFile::create(&file, Cipher::XChaCha20Poly1305, vec![NewRecipient::passphrase(pass(), fast())]).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let b = SealedFileBackend::open(
        &file,
        Unlock::passphrase(move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(pass())
        }),
    )
    .unwrap();
    let l = Locator::File { path: file.display().to_string(), key: "k".into() };
    b.write(&l, &SecretBytes::copy_from(b"one"), Expect::Any).unwrap();
    // Someone else changes the file (a git pull): seen at once.
    let other = Unlocker::new(Unlock::passphrase(move || Ok(pass())));
    SealedFile::edit(&file, &other, |f| f.set("k", &SecretBytes::copy_from(b"two"))).unwrap();
    assert_eq!(b.read(&l).unwrap().value.expose(), b"two");
    assert_eq!(b.list("").unwrap(), ["k"]);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the passphrase was asked for again");
    // A rekey (new salt, new data key) needs the passphrase once more.
    SealedFile::edit(&file, &other, |f| f.rekey(None, vec![NewRecipient::passphrase(pass(), fast())])).unwrap();
    assert_eq!(b.read(&l).unwrap().value.expose(), b"two");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
