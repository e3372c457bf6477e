//! The text of a sealed file: a strict parser, and a writer with exactly one output for a given content.
//!
//! Nothing here holds a key or a value: envelopes are ciphertext, and the parser checks only their shape. The
//! grammar is in the [parent module's documentation](super).

use std::collections::BTreeMap;

use airlock_crypto::Cipher;
use airlock_crypto::aead::{Aad, EnvelopeHeader};
use airlock_crypto::kdf::Argon2Params;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// The only format version this code reads and writes.
pub const VERSION: i64 = 1;
/// What every envelope starts with; the cipher's name, a comma, base64 and `]` follow.
pub const ENVELOPE_PREFIX: &str = "ENC[airlock:v1,";
/// The root key that holds the metadata; no value's path may start with it.
pub const META_KEY: &str = "airlock";
/// At most this many recipients (each passphrase recipient may cost an Argon2id run at unlock).
pub const MAX_RECIPIENTS: usize = 16;
/// Argon2id limits for a file read from a repository, tighter than the local vault's: a planted recipient must not
/// make an unlock allocate more than 1 GiB or spin for minutes.
pub const MAX_ARGON2_M_KIB: u32 = 1024 * 1024;
pub const MAX_ARGON2_T: u32 = 16;
pub const MAX_ARGON2_P: u32 = 16;
/// A key path's limits: each part 1 to 128 bytes of `A-Z a-z 0-9 _ -`, at most 32 parts.
pub const MAX_SEGMENT_LEN: usize = 128;
pub const MAX_DEPTH: usize = 32;

const SALT_LEN: usize = 16;
const MAC_LEN: usize = 32;

/// The comment the writer puts at the top of every file (comments are not data: the MAC does not cover them).
const HEADER: &str = "\
# Sealed with Airlock: keys are in the clear, each value is encrypted on its own (ENC[...]).
# Change values with `airlock sealed set FILE KEY`; check the file with `airlock sealed verify FILE`.
# The [airlock] table holds the recipients and a MAC over the whole file: a hand edit fails verification.
# Airlock rewrites this file in a canonical form (sorted keys), so comments added by hand are not kept.
";

/// A parsed sealed file. Nothing in it is secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub meta: Meta,
    /// Dotted key path to envelope text, sorted (the MAC's order).
    pub values: BTreeMap<String, String>,
}

/// The `[airlock]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// 32 lowercase hex digits (16 random bytes), chosen at creation.
    pub file_id: String,
    /// The cipher new values are sealed with.
    pub cipher: Cipher,
    pub mac: [u8; MAC_LEN],
    /// Sorted by name; names are unique.
    pub recipients: Vec<Recipient>,
}

/// One way to open the file: the data key, wrapped under a key derived from a passphrase or a key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub name: String,
    pub kind: RecipientKind,
    pub salt: [u8; SALT_LEN],
    /// HMAC-SHA-256 key commitment (see `recipient.rs`).
    pub commit: [u8; MAC_LEN],
    /// An airlock-crypto AEAD envelope of the 32-byte data key.
    pub wrapped: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientKind {
    Passphrase(Argon2Params),
    Keyfile,
}

impl RecipientKind {
    /// The `type` field.
    pub fn type_name(&self) -> &'static str {
        match self {
            RecipientKind::Passphrase(_) => "passphrase",
            RecipientKind::Keyfile => "keyfile",
        }
    }

    /// The parameters as one canonical string, for the recipient's context and the MAC (empty for a key file).
    pub fn params(&self) -> String {
        match self {
            RecipientKind::Passphrase(a) => format!("argon2id:m_kib={},t={},p={}", a.m_kib, a.t, a.p),
            RecipientKind::Keyfile => String::new(),
        }
    }
}

/// Why a file could not be parsed: where (a line, a key path, a field) and what is wrong. Never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

fn err<T>(reason: impl Into<String>) -> Result<T, FormatError> {
    Err(FormatError(reason.into()))
}

/// A name from the file, quoted for an error (cut short; names are not values, but they are untrusted text).
pub fn quoted(text: &str) -> String {
    let cut: String = text.chars().take(64).collect();
    format!("{cut:?}")
}

/// Checks a dotted key path: parts of `A-Z a-z 0-9 _ -`, not starting with the reserved `airlock`.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    let parts: Vec<&str> = key.split('.').collect();
    if parts.len() > MAX_DEPTH {
        return Err(format!("key {} has more than {MAX_DEPTH} parts", quoted(key)));
    }
    for p in &parts {
        if p.is_empty()
            || p.len() > MAX_SEGMENT_LEN
            || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(format!(
                "key {} is not a dotted path of parts made of A-Z, a-z, 0-9, '_' and '-' (1 to {MAX_SEGMENT_LEN} each)",
                quoted(key)
            ));
        }
    }
    if parts[0] == META_KEY {
        return Err(format!("key {} is reserved: the [{META_KEY}] table holds the file's metadata", quoted(key)));
    }
    Ok(())
}

/// Checks a recipient's name: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_recipient_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "recipient name {} must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-', starting with a letter or digit",
            quoted(name)
        ))
    }
}

/// The envelope text for an airlock-crypto envelope.
pub fn envelope_text(cipher: Cipher, envelope: &[u8]) -> String {
    format!("{ENVELOPE_PREFIX}{},{}]", cipher.name(), B64.encode(envelope))
}

/// Parses envelope text into the airlock-crypto envelope it carries. Checks the shape only: the AEAD decides the
/// rest. The reason never quotes the text (a value typed in the clear must not be echoed).
pub fn parse_envelope(text: &str) -> Result<Vec<u8>, &'static str> {
    let Some(inner) = text.strip_prefix(ENVELOPE_PREFIX).and_then(|r| r.strip_suffix(']')) else {
        return Err(if text.starts_with("ENC[") {
            "its ENC[...] string is not an Airlock envelope (expected ENC[airlock:v1,CIPHER,BASE64])"
        } else {
            "it holds something other than an ENC[airlock:v1,...] envelope (a value in the clear?); a sealed file \
             holds only envelopes: set values with `airlock sealed set`"
        });
    };
    let Some((label, b64)) = inner.split_once(',') else {
        return Err("its envelope has no cipher name (expected ENC[airlock:v1,CIPHER,BASE64])");
    };
    let cipher = cipher_by_name(label).ok_or("its envelope names an unknown cipher")?;
    let bytes = B64.decode(b64).map_err(|_| "its envelope is not valid base64")?;
    let header = EnvelopeHeader::parse(&bytes).map_err(|_| "its envelope is truncated or of an unknown version")?;
    if header.cipher != cipher || header.key_id != 0 {
        return Err("its envelope's cipher name does not match its header");
    }
    Ok(bytes)
}

fn cipher_by_name(name: &str) -> Option<Cipher> {
    [Cipher::XChaCha20Poly1305, Cipher::Aes256Gcm].into_iter().find(|c| c.name() == name)
}

/// Parses a whole file. Strict: unknown fields, values other than envelopes, keys that would need quoting and
/// malformed metadata are refused, each with where it is.
pub fn parse(text: &str) -> Result<Document, FormatError> {
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            // The message is the parser's own (fixed text); its rendering would quote the line, which may hold a
            // value typed in the clear, so only the position is added.
            let at = e.span().map(|s| line_col(text, s.start)).map(|(l, c)| format!("line {l}, column {c}: "));
            let what = e.message().lines().next().unwrap_or("syntax error").chars().take(120).collect::<String>();
            return err(format!("{}not valid TOML ({what})", at.unwrap_or_default()));
        }
    };
    let mut values = BTreeMap::new();
    let mut meta = None;
    for (k, v) in &table {
        if k == META_KEY {
            let toml::Value::Table(t) = v else { return err(format!("`{META_KEY}` must be a table")) };
            meta = Some(parse_meta(t)?);
        } else {
            if k.contains('.') {
                return err(format!("key {}: a part of a key may not contain '.'", quoted(k)));
            }
            walk(k, v, 1, &mut values)?;
        }
    }
    let Some(meta) = meta else {
        return err(format!("there is no [{META_KEY}] table (not a sealed file, or it was cut short)"));
    };
    Ok(Document { meta, values })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let col = 1 + before.iter().rev().take_while(|b| **b != b'\n').count();
    (line, col)
}

fn walk(path: &str, v: &toml::Value, depth: usize, out: &mut BTreeMap<String, String>) -> Result<(), FormatError> {
    check_key(path).map_err(FormatError)?;
    match v {
        toml::Value::String(s) => {
            parse_envelope(s).map_err(|why| FormatError(format!("key {path}: {why}")))?;
            out.insert(path.to_string(), s.clone());
        }
        toml::Value::Table(t) => {
            if depth >= MAX_DEPTH && !t.is_empty() {
                return err(format!("key {path}: tables nest more than {MAX_DEPTH} deep"));
            }
            for (k, child) in t {
                if k.contains('.') {
                    return err(format!("key {path}.{}: a part of a key may not contain '.'", quoted(k)));
                }
                walk(&format!("{path}.{k}"), child, depth + 1, out)?;
            }
        }
        other => {
            return err(format!(
                "key {path}: is a{} {}; a sealed file holds only ENC[airlock:v1,...] strings, in tables",
                if other.type_str().starts_with(['a', 'i']) { "n" } else { "" },
                other.type_str()
            ));
        }
    }
    Ok(())
}

fn fields(t: &toml::Table, what: &str, allowed: &[&str]) -> Result<(), FormatError> {
    for k in t.keys() {
        if !allowed.contains(&k.as_str()) {
            return err(format!("{what} has an unknown field {}", quoted(k)));
        }
    }
    Ok(())
}

fn string<'a>(t: &'a toml::Table, what: &str, field: &str) -> Result<&'a str, FormatError> {
    match t.get(field) {
        Some(toml::Value::String(s)) => Ok(s),
        Some(_) => err(format!("{what}: `{field}` must be a string")),
        None => err(format!("{what}: `{field}` is missing")),
    }
}

fn fixed<const N: usize>(t: &toml::Table, what: &str, field: &str) -> Result<[u8; N], FormatError> {
    let bytes =
        B64.decode(string(t, what, field)?).map_err(|_| FormatError(format!("{what}: `{field}` is not base64")))?;
    bytes.try_into().map_err(|_| FormatError(format!("{what}: `{field}` must decode to {N} bytes")))
}

fn u32_field(t: &toml::Table, what: &str, field: &str) -> Result<u32, FormatError> {
    match t.get(field) {
        Some(toml::Value::Integer(n)) => {
            u32::try_from(*n).map_err(|_| FormatError(format!("{what}: `{field}` is out of range")))
        }
        Some(_) => err(format!("{what}: `{field}` must be an integer")),
        None => err(format!("{what}: `{field}` is missing")),
    }
}

fn parse_meta(t: &toml::Table) -> Result<Meta, FormatError> {
    let what = format!("[{META_KEY}]");
    fields(t, &what, &["version", "file_id", "cipher", "mac", "recipients"])?;
    match t.get("version") {
        Some(toml::Value::Integer(VERSION)) => {}
        Some(toml::Value::Integer(n)) => {
            return err(format!("format version {n} is not supported (this Airlock reads version {VERSION})"));
        }
        Some(_) => return err(format!("{what}: `version` must be an integer")),
        None => return err(format!("{what}: `version` is missing")),
    }
    let file_id = string(t, &what, "file_id")?;
    if file_id.len() != 32 || !file_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return err(format!("{what}: `file_id` must be 32 lowercase hex digits"));
    }
    let cipher = cipher_by_name(string(t, &what, "cipher")?)
        .ok_or_else(|| FormatError(format!("{what}: `cipher` must be xchacha20-poly1305 or aes-256-gcm")))?;
    let mac = fixed::<MAC_LEN>(t, &what, "mac")?;
    let list = match t.get("recipients") {
        Some(toml::Value::Array(a)) => a,
        Some(_) => return err(format!("{what}: `recipients` must be an array of tables ([[{META_KEY}.recipients]])")),
        None => return err(format!("{what}: there are no recipients (nothing could open this file)")),
    };
    if list.is_empty() || list.len() > MAX_RECIPIENTS {
        return err(format!("{what}: a sealed file has 1 to {MAX_RECIPIENTS} recipients, this one {}", list.len()));
    }
    let mut recipients: Vec<Recipient> = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let toml::Value::Table(r) = r else {
            return err(format!("{what}: recipient {} is not a table", i + 1));
        };
        let recipient = parse_recipient(r, i + 1)?;
        if recipients.iter().any(|o| o.name == recipient.name) {
            return err(format!("{what}: two recipients are named {}", quoted(&recipient.name)));
        }
        recipients.push(recipient);
    }
    recipients.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Meta { file_id: file_id.to_string(), cipher, mac, recipients })
}

fn parse_recipient(r: &toml::Table, index: usize) -> Result<Recipient, FormatError> {
    let mut what = format!("recipient {index}");
    let name = string(r, &what, "name")?;
    check_recipient_name(name).map_err(|e| FormatError(format!("{what}: {e}")))?;
    what = format!("recipient {name}");
    let kind = match string(r, &what, "type")? {
        "passphrase" => {
            fields(r, &what, &["name", "type", "argon2", "salt", "commit", "wrapped"])?;
            let a = match r.get("argon2") {
                Some(toml::Value::Table(a)) => a,
                _ => return err(format!("{what}: `argon2` must be a table {{ m_kib = .., t = .., p = .. }}")),
            };
            let aw = format!("{what}: argon2");
            fields(a, &aw, &["m_kib", "t", "p"])?;
            let params = Argon2Params {
                m_kib: u32_field(a, &aw, "m_kib")?,
                t: u32_field(a, &aw, "t")?,
                p: u32_field(a, &aw, "p")?,
            };
            check_argon2(&params).map_err(|e| FormatError(format!("{what}: {e}")))?;
            RecipientKind::Passphrase(params)
        }
        "keyfile" => {
            fields(r, &what, &["name", "type", "salt", "commit", "wrapped"])?;
            RecipientKind::Keyfile
        }
        _ => return err(format!("{what}: `type` must be passphrase or keyfile")),
    };
    let salt = fixed::<SALT_LEN>(r, &what, "salt")?;
    let commit = fixed::<MAC_LEN>(r, &what, "commit")?;
    let wrapped = B64
        .decode(string(r, &what, "wrapped")?)
        .map_err(|_| FormatError(format!("{what}: `wrapped` is not base64")))?;
    // A 32-byte key in an envelope: 6-byte header, nonce, key, 16-byte tag.
    let ok_len = |c: Cipher| wrapped.len() == 6 + c.nonce_len() + 32 + 16;
    if !(ok_len(Cipher::XChaCha20Poly1305) || ok_len(Cipher::Aes256Gcm)) || EnvelopeHeader::parse(&wrapped).is_err() {
        return err(format!("{what}: `wrapped` is not a wrapped 32-byte key"));
    }
    Ok(Recipient { name: name.to_string(), kind, salt, commit, wrapped })
}

/// Argon2id parameters a sealed file may ask for (refused before any work is done).
pub fn check_argon2(p: &Argon2Params) -> Result<(), String> {
    if p.m_kib > MAX_ARGON2_M_KIB || p.t > MAX_ARGON2_T || p.p > MAX_ARGON2_P {
        return Err(format!(
            "argon2 parameters exceed the sealed-file limits (m_kib <= {MAX_ARGON2_M_KIB}, t <= {MAX_ARGON2_T}, \
             p <= {MAX_ARGON2_P})"
        ));
    }
    p.validate().map_err(|e| e.to_string())
}

/// The bytes the MAC covers: the metadata (version, file id, cipher, every recipient field) and every (key path,
/// envelope text) pair in sorted order, each length-prefixed so that no two different documents give the same
/// bytes.
pub fn mac_input(meta: &Meta, values: &BTreeMap<String, String>) -> Aad {
    let mut a = Aad::new("airlock/sealed-file/mac/v1")
        .u64(VERSION as u64)
        .str(&meta.file_id)
        .str(meta.cipher.name())
        .u64(meta.recipients.len() as u64);
    for r in &meta.recipients {
        a = a
            .str(&r.name)
            .str(r.kind.type_name())
            .str(&r.kind.params())
            .bytes(&r.salt)
            .bytes(&r.commit)
            .bytes(&r.wrapped);
    }
    a = a.u64(values.len() as u64);
    for (path, envelope) in values {
        a = a.str(path).str(envelope);
    }
    a
}

#[derive(Default)]
struct Node<'a> {
    leaves: BTreeMap<&'a str, &'a str>,
    tables: BTreeMap<&'a str, Node<'a>>,
}

/// Writes `doc` in its canonical form: the header comment; root values; then each table that holds values, as
/// `[dotted.path]` followed by its values, tables in sorted order, depth first; then `[airlock]` and its
/// `[[airlock.recipients]]`. Keys are sorted. Every value is one line, so a change to one value is a one-line diff
/// (plus the `mac` line).
pub fn write(doc: &Document) -> String {
    let mut root = Node::default();
    for (path, envelope) in &doc.values {
        let mut node = &mut root;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.leaves.insert(part, envelope);
            } else {
                node = node.tables.entry(part).or_default();
            }
        }
    }
    let mut out = String::from(HEADER);
    if !root.leaves.is_empty() {
        out.push('\n');
    }
    leaves(&mut out, &root);
    tables(&mut out, &root, "");
    let m = &doc.meta;
    out += &format!(
        "\n[{META_KEY}]\nversion = {VERSION}\nfile_id = \"{}\"\ncipher = \"{}\"\nmac = \"{}\"\n",
        m.file_id,
        m.cipher.name(),
        B64.encode(m.mac)
    );
    for r in &m.recipients {
        out += &format!("\n[[{META_KEY}.recipients]]\nname = \"{}\"\ntype = \"{}\"\n", r.name, r.kind.type_name());
        if let RecipientKind::Passphrase(a) = r.kind {
            out += &format!("argon2 = {{ m_kib = {}, t = {}, p = {} }}\n", a.m_kib, a.t, a.p);
        }
        out += &format!(
            "salt = \"{}\"\ncommit = \"{}\"\nwrapped = \"{}\"\n",
            B64.encode(r.salt),
            B64.encode(r.commit),
            B64.encode(&r.wrapped)
        );
    }
    out
}

fn leaves(out: &mut String, node: &Node<'_>) {
    for (k, v) in &node.leaves {
        out.push_str(k);
        out.push_str(" = \"");
        out.push_str(v);
        out.push_str("\"\n");
    }
}

fn tables(out: &mut String, node: &Node<'_>, prefix: &str) {
    for (name, child) in &node.tables {
        let full = if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") };
        if !child.leaves.is_empty() {
            out.push_str(&format!("\n[{full}]\n"));
            leaves(out, child);
        }
        tables(out, child, &full);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Document {
        let env =
            |c: u8| envelope_text(Cipher::XChaCha20Poly1305, &[&[1u8, 1, 0, 0, 0, 0][..], &[c; 24 + 20]].concat());
        let mut values = BTreeMap::new();
        for (k, c) in [("token", 1), ("db.password", 2), ("db.replica.password", 3), ("z.deep.er.key", 4), ("a-b_c", 5)]
        {
            values.insert(k.to_string(), env(c));
        }
        let wrapped = [&[1u8, 1, 0, 0, 0, 0][..], &[9u8; 24 + 32 + 16]].concat();
        Document {
            meta: Meta {
                file_id: "0123456789abcdef0123456789abcdef".into(),
                cipher: Cipher::XChaCha20Poly1305,
                mac: [7; 32],
                recipients: vec![
                    Recipient {
                        name: "ci".into(),
                        kind: RecipientKind::Keyfile,
                        salt: [1; 16],
                        commit: [2; 32],
                        wrapped: wrapped.clone(),
                    },
                    Recipient {
                        name: "team".into(),
                        kind: RecipientKind::Passphrase(Argon2Params { m_kib: 65536, t: 3, p: 4 }),
                        salt: [3; 16],
                        commit: [4; 32],
                        wrapped,
                    },
                ],
            },
            values,
        }
    }

    #[test]
    fn the_writer_is_canonical_and_the_parser_reads_it_back() {
        let d = doc();
        let text = write(&d);
        assert_eq!(parse(&text).unwrap(), d);
        assert_eq!(write(&parse(&text).unwrap()), text);
        // Root values first, then tables depth first, then the metadata.
        let order: Vec<&str> = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
        let pos = |needle: &str| order.iter().position(|l| l.starts_with(needle)).unwrap_or_else(|| panic!("{needle}"));
        assert!(pos("a-b_c = ") < pos("token = "));
        assert!(pos("token = ") < pos("[db]"));
        assert!(pos("[db]") < pos("[db.replica]"));
        assert!(pos("[db.replica]") < pos("[z.deep.er]"));
        assert!(pos("[z.deep.er]") < pos("[airlock]"));
        assert!(!text.contains("\n[z]\n") && !text.contains("[z.deep]\n"), "tables without values get no header");
    }

    #[test]
    fn hand_written_equivalents_parse_to_the_same_document() {
        let d = doc();
        let text = write(&d);
        let meta = text.split_once("\n[airlock]\n").unwrap().1;
        // The recipients in the other order.
        let sep = "\n\n[[airlock.recipients]]\n";
        let mut parts: Vec<&str> = meta.split(sep).collect();
        let head = parts.remove(0);
        parts.reverse();
        let meta = format!("[airlock]\n{head}{sep}{}", parts.join(sep));
        // Values as dotted keys and an inline table instead of [table] headers, in another order.
        let v = &d.values;
        let values = format!(
            "token = \"{}\"\n\"a-b_c\" = \"{}\"\ndb = {{ password = \"{}\", replica.password = \"{}\" }}\n\
             z.deep.er.key = \"{}\"\n",
            v["token"], v["a-b_c"], v["db.password"], v["db.replica.password"], v["z.deep.er.key"]
        );
        assert_eq!(parse(&format!("{values}\n{meta}")).unwrap(), d);
    }

    #[test]
    fn values_other_than_envelopes_are_refused_naming_the_key_never_the_value() {
        let text = write(&doc());
        for (bad, why) in [
            ("token = \"hunter2-SECRET\"", "a value in the clear"),
            ("token = \"ENC[hunter2-SECRET]\"", "not an Airlock envelope"),
            ("token = \"ENC[airlock:v1,rot13,aGk=]\"", "unknown cipher"),
            ("token = \"ENC[airlock:v1,xchacha20-poly1305,!!]\"", "not valid base64"),
            ("token = \"ENC[airlock:v1,xchacha20-poly1305,AQE=]\"", "truncated"),
            ("token = 4242", "is an integer"),
            ("token = [\"hunter2-SECRET\"]", "is an array"),
            ("token = true", "is a boolean"),
        ] {
            let line = text.lines().find(|l| l.starts_with("token = ")).unwrap();
            let e = parse(&text.replace(line, bad)).expect_err(bad).0;
            assert!(e.contains("key token") && e.contains(why), "{bad}: {e}");
            assert!(!e.contains("hunter2") && !e.contains("SECRET"), "{e}");
        }
        let e = parse(&text.replace("token = ", "\"to.ken\" = ")).unwrap_err().0;
        assert!(e.contains("may not contain '.'"), "{e}");
        let e = parse(&text.replace("token = ", "\"tök\" = ")).unwrap_err().0;
        assert!(e.contains("not a dotted path"), "{e}");
    }

    #[test]
    fn toml_syntax_errors_give_the_position_and_never_the_line() {
        let text = write(&doc()).replacen("token = \"", "token = hunter2-SECRET \"", 1);
        let e = parse(&text).unwrap_err().0;
        assert!(e.contains("line ") && e.contains("not valid TOML"), "{e}");
        assert!(!e.contains("hunter2") && !e.contains("SECRET"), "{e}");
    }

    #[test]
    fn metadata_is_checked_field_by_field() {
        let text = write(&doc());
        for (from, to, why) in [
            ("version = 1", "version = 2", "format version 2 is not supported"),
            ("version = 1\n", "", "`version` is missing"),
            ("cipher = \"xchacha20-poly1305\"", "cipher = \"rot13\"", "`cipher` must be"),
            ("file_id = \"0123456789abcdef0123456789abcdef\"", "file_id = \"x\"", "`file_id` must be"),
            ("mac = \"", "extra = 1\nmac = \"", "unknown field \"extra\""),
            ("type = \"keyfile\"", "type = \"x25519\"", "`type` must be passphrase or keyfile"),
            ("name = \"team\"", "name = \"ci\"", "two recipients are named \"ci\""),
            ("name = \"team\"", "name = \"-x\"", "recipient name"),
            ("m_kib = 65536", "m_kib = 4294967295", "exceed the sealed-file limits"),
            ("t = 3", "t = 17", "exceed the sealed-file limits"),
            ("m_kib = 65536", "m_kib = -1", "out of range"),
            (
                "type = \"keyfile\"",
                "type = \"keyfile\"\nargon2 = { m_kib = 8, t = 1, p = 1 }",
                "unknown field \"argon2\"",
            ),
        ] {
            assert!(text.contains(from), "{from}");
            let e = parse(&text.replacen(from, to, 1)).expect_err(from).0;
            assert!(e.contains(why), "{from} -> {to}: {e}");
        }
        let no_meta = text.split_once("\n[airlock]").unwrap().0;
        assert!(parse(no_meta).unwrap_err().0.contains("no [airlock] table"));
    }

    #[test]
    fn keys_are_checked() {
        for good in ["a", "A_b-9", "db.password", "a.b.c.d"] {
            check_key(good).unwrap();
        }
        for bad in ["", ".a", "a.", "a..b", "a b", "a/b", "tök", "airlock", "airlock.x", &"a.".repeat(40)] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        check_key("x.airlock").unwrap();
    }

    #[test]
    fn the_mac_input_covers_every_field() {
        let d = doc();
        let base = mac_input(&d.meta, &d.values).as_bytes().to_vec();
        let mut edits: Vec<Document> = Vec::new();
        let mut e = d.clone();
        e.meta.file_id = "f".repeat(32);
        edits.push(e);
        let mut e = d.clone();
        e.meta.cipher = Cipher::Aes256Gcm;
        edits.push(e);
        let mut e = d.clone();
        e.meta.recipients[1].kind = RecipientKind::Passphrase(Argon2Params { m_kib: 65536, t: 4, p: 4 });
        edits.push(e);
        let mut e = d.clone();
        e.meta.recipients[0].salt[0] ^= 1;
        edits.push(e);
        let mut e = d.clone();
        e.meta.recipients[0].commit[0] ^= 1;
        edits.push(e);
        let mut e = d.clone();
        e.meta.recipients[0].wrapped[9] ^= 1;
        edits.push(e);
        let mut e = d.clone();
        e.meta.recipients[0].name = "cj".into();
        edits.push(e);
        let mut e = d.clone();
        e.meta.recipients.pop();
        edits.push(e);
        let mut e = d.clone();
        e.values.remove("token");
        edits.push(e);
        let mut e = d.clone();
        let v = e.values.remove("token").unwrap();
        e.values.insert("token2".into(), v);
        edits.push(e);
        let mut e = d.clone();
        let (a, b) = (e.values["token"].clone(), e.values["db.password"].clone());
        e.values.insert("token".into(), b);
        e.values.insert("db.password".into(), a);
        edits.push(e);
        for (i, e) in edits.iter().enumerate() {
            assert_ne!(mac_input(&e.meta, &e.values).as_bytes(), base, "edit {i} is not covered");
        }
        // The MAC itself is not part of its input.
        let mut e = d.clone();
        e.meta.mac = [0; 32];
        assert_eq!(mac_input(&e.meta, &e.values).as_bytes(), base);
    }
}
