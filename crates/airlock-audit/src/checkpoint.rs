//! Signed checkpoints: C2SP signed notes (c2sp.org/signed-note) carrying C2SP tlog-checkpoints
//! (c2sp.org/tlog-checkpoint), signed with Ed25519.
//!
//! Why: a Merkle root on its own proves nothing about who saw it when. A checkpoint is the log's signed
//! statement "my tree had this size and this root at this time"; exported off-box, it stops the log from later
//! being rewritten or cut short without the signatures giving it away. The formats are the standard ones, so
//! other transparency tooling (Go's `sumdb/note`, witnesses) can read and cosign them.
//!
//! The note format, exactly as specified:
//!
//! ```text
//! <text, ending in a newline>
//! <blank line>
//! — <key name> <base64(4-byte key ID || 64-byte Ed25519 signature)>
//! ```
//!
//! - The signature covers the text including its final newline. The text is separated from the signatures by
//!   the *last* blank line. Notes are UTF-8 with no control characters other than newline.
//! - Key names are non-empty, without Unicode spaces or `+` (and here also without control characters, which no
//!   note may hold). Key ID = the first 4 bytes of SHA-256(name || 0x0A || 0x01 || 32-byte public key).
//! - Signatures whose (name, key ID) is not the expected verifier's are ignored, but must still be well formed.
//!   A signature that claims to be the verifier's and does not verify rejects the note (the spec's SHOULD). At
//!   least one signature must verify. A note may hold at most [`MAX_SIGNATURES`] signatures (the spec requires
//!   accepting at least 16; Go's `sumdb/note` allows 100, as here).
//! - Verifier keys are `<name>+<8 hex digits of key ID>+<base64(0x01 || public key)>`, as in Go's `sumdb/note`.
//!   The key ID must be lower-case hex, as every implementation writes it, so that a key prints back
//!   byte for byte.
//!
//! The checkpoint text is `<origin>\n<tree size>\n<base64 root>\n` followed by exactly one extension line,
//! `time <RFC 3339 UTC with exactly 3 fractional digits and Z>\n`, and nothing else. Parsing is strict: every
//! accepted text prints back byte for byte, so two different texts never mean the same checkpoint.

use std::fmt;

use airlock_crypto::sign::{SigningKey, VerifyingKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The most signatures a note may carry; more is refused before any is checked.
pub const MAX_SIGNATURES: usize = 100;

/// Em dash (U+2014) and a space: how every signature line starts.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// The latest checkpoint time, 9999-12-30T22:00:00.000Z in Unix milliseconds: the last millisecond the time
/// library takes (its range stops short of the end of year 9999). Times before 1970 are refused too.
pub const MAX_TIME_MS: i64 = 253_402_207_200_000;

/// The signed-note signature type of Ed25519.
const ALG_ED25519: u8 = 0x01;

/// Everything that can go wrong with keys, notes and checkpoints. Messages say which line or part is wrong and
/// why. They name keys by name and key ID only, never by key material.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("invalid key name: it {reason}")]
    InvalidKeyName { reason: &'static str },
    #[error("malformed verifier key: {reason}")]
    MalformedVerifierKey { reason: &'static str },
    #[error("verifier key's key ID does not match its name and public key")]
    KeyIdMismatch,
    #[error("unsupported verifier key type 0x{alg:02x} (only Ed25519, type 0x01, is supported)")]
    UnsupportedKeyType { alg: u8 },
    #[error("verifier key does not hold a valid Ed25519 public key")]
    BadPublicKey,

    #[error("note text does not end with a newline")]
    TextMissingFinalNewline,
    #[error("control character at byte {offset} (notes may hold no control character other than newline)")]
    ControlCharacter { offset: usize },
    #[error("note has no blank line followed by signature lines")]
    MissingSignatureBlock,
    #[error("note has a blank line but no signature lines after it")]
    EmptySignatureBlock,
    #[error("note does not end with a newline")]
    MissingFinalNewline,
    #[error("line {line} of the note is not a valid signature line: {reason}")]
    MalformedSignatureLine { line: usize, reason: &'static str },
    #[error("note has more than {max} signatures")]
    TooManySignatures { max: usize },
    #[error("note has no signature by the expected key {key}")]
    NoVerifiedSignature { key: String },
    #[error("the signature by key {key} does not verify")]
    BadSignature { key: String },

    #[error("line {line}: a blank line where a note should start")]
    BlankLineBetweenNotes { line: usize },
    #[error("the text from line {line} on is not followed by a signature block")]
    TrailingText { line: usize },
    #[error("note {index} (starting at line {line}): {source}")]
    InvalidNote {
        index: usize,
        line: usize,
        #[source]
        source: Box<NoteError>,
    },

    #[error("checkpoint line {line} ends in a carriage return (CRLF line endings are not allowed)")]
    CarriageReturn { line: usize },
    #[error("checkpoint line {line} ({what}) is missing")]
    MissingLine { line: usize, what: &'static str },
    #[error("checkpoint line 1 (origin) is empty")]
    EmptyOrigin,
    #[error("checkpoint origin contains a newline or another control character")]
    OriginControlCharacter,
    #[error("checkpoint line 2 (tree size) {reason}")]
    BadTreeSize { reason: &'static str },
    #[error("checkpoint line 3 (root hash) is not padded standard base64")]
    BadRootHash,
    #[error("checkpoint line 3 (root hash) decodes to {len} bytes, not 32")]
    RootHashLength { len: usize },
    #[error("checkpoint line {line} is empty (extension lines must not be)")]
    EmptyLine { line: usize },
    #[error("checkpoint line {line} is not a known extension line (only one `time` line is allowed)")]
    UnexpectedLine { line: usize },
    #[error("checkpoint has no `time` extension line")]
    MissingTime,
    #[error("checkpoint line {line} is a second `time` line")]
    DuplicateTime { line: usize },
    #[error("checkpoint line {line} (time) {reason}")]
    BadTime { line: usize, reason: &'static str },
    #[error("checkpoint time {time_ms} ms is outside 1970-01-01T00:00:00.000Z to 9999-12-30T22:00:00.000Z")]
    TimeOutOfRange { time_ms: i64 },
    #[error("checkpoint origin {origin:?} is not the key name {key_name:?}")]
    OriginMismatch { origin: String, key_name: String },
}

/// Why `name` cannot be a key name, if it cannot.
fn check_key_name(name: &str) -> Result<(), NoteError> {
    let reason = if name.is_empty() {
        "is empty"
    } else if name.contains('+') {
        "contains '+'"
    } else if name.chars().any(char::is_whitespace) {
        "contains a Unicode space"
    } else if name.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(NoteError::InvalidKeyName { reason })
}

/// Refuses ASCII control characters other than newline, as the signed-note spec requires of the whole note.
fn check_no_control(s: &str) -> Result<(), NoteError> {
    match s.bytes().position(|b| b < 0x20 && b != b'\n') {
        Some(offset) => Err(NoteError::ControlCharacter { offset }),
        None => Ok(()),
    }
}

/// SHA-256(name || 0x0A || key)[:4], where `key` is the type byte followed by the public key.
fn key_id_of(name: &str, typed_key: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n']);
    h.update(typed_key);
    let digest: [u8; 32] = h.finalize().into();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A public key that notes are checked against: a name, its key ID and an Ed25519 key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NoteVerifier {
    name: String,
    key_id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key_id = key_id_of(name, &typed_key(&key));
        Ok(NoteVerifier { name: name.to_string(), key_id, key })
    }

    /// Parses `<name>+<8 lower-case hex key ID>+<base64(0x01 || 32-byte public key)>`. The key ID must match.
    pub fn parse_vkey(s: &str) -> Result<Self, NoteError> {
        const SHAPE: &str = "expected <name>+<key ID>+<base64 key>";
        let (name, rest) = s.split_once('+').ok_or(NoteError::MalformedVerifierKey { reason: SHAPE })?;
        // The base64 key may itself contain '+', so only the first two split.
        let (id_hex, key_b64) = rest.split_once('+').ok_or(NoteError::MalformedVerifierKey { reason: SHAPE })?;
        check_key_name(name)?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(NoteError::MalformedVerifierKey { reason: "key ID is not 8 lower-case hex digits" });
        }
        let mut key_id = [0u8; 4];
        hex::decode_to_slice(id_hex, &mut key_id)
            .map_err(|_| NoteError::MalformedVerifierKey { reason: "key ID is not 8 lower-case hex digits" })?;
        let typed = B64
            .decode(key_b64)
            .map_err(|_| NoteError::MalformedVerifierKey { reason: "key is not padded standard base64" })?;
        let Some((&alg, public)) = typed.split_first() else {
            return Err(NoteError::MalformedVerifierKey { reason: "key is empty" });
        };
        if key_id_of(name, &typed) != key_id {
            return Err(NoteError::KeyIdMismatch);
        }
        if alg != ALG_ED25519 {
            return Err(NoteError::UnsupportedKeyType { alg });
        }
        let public: &[u8; 32] = public
            .try_into()
            .map_err(|_| NoteError::MalformedVerifierKey { reason: "Ed25519 public key is not 32 bytes" })?;
        let key = VerifyingKey::from_bytes(public).map_err(|_| NoteError::BadPublicKey)?;
        Ok(NoteVerifier { name: name.to_string(), key_id, key })
    }

    /// The verifier key in the `<name>+<key ID>+<base64 key>` form [`NoteVerifier::parse_vkey`] reads.
    pub fn to_vkey(&self) -> String {
        format!("{}+{}+{}", self.name, hex::encode(self.key_id), B64.encode(typed_key(&self.key)))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// `name+keyid`, how errors refer to this key.
    fn label(&self) -> String {
        format!("{}+{}", self.name, hex::encode(self.key_id))
    }
}

/// 0x01 || public key: the encoding that key IDs hash and verifier keys carry.
fn typed_key(key: &VerifyingKey) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = ALG_ED25519;
    out[1..].copy_from_slice(&key.to_bytes());
    out
}

/// A private key that signs notes under a name. Its `Debug` shows the name and key ID, never the key.
pub struct NoteSigner {
    key: SigningKey,
    verifier: NoteVerifier,
}

impl NoteSigner {
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        let verifier = NoteVerifier::new(name, key.verifying_key())?;
        Ok(NoteSigner { key, verifier })
    }

    /// The matching public key, to hand to whoever checks the notes.
    pub fn verifier(&self) -> NoteVerifier {
        self.verifier.clone()
    }

    pub fn name(&self) -> &str {
        self.verifier.name()
    }

    pub fn key_id(&self) -> [u8; 4] {
        self.verifier.key_id
    }

    /// Signs `text` and returns the whole note: the text, a blank line and one signature line. The text must end
    /// in a newline and hold no control characters other than newline, or the note could not be opened.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::TextMissingFinalNewline);
        }
        check_no_control(text)?;
        let signature = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(4 + signature.len());
        blob.extend_from_slice(&self.verifier.key_id);
        blob.extend_from_slice(&signature);
        Ok(format!("{text}\n{SIGNATURE_PREFIX}{} {}\n", self.verifier.name, B64.encode(blob)))
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.verifier.name)
            .field("key_id", &hex::encode(self.verifier.key_id))
            .finish_non_exhaustive()
    }
}

/// One syntactically valid signature line.
struct SignatureLine<'a> {
    name: &'a str,
    key_id: [u8; 4],
    signature: Vec<u8>,
}

/// Splits a note into its text and signature lines, checking the syntax but no signature.
fn parse_note(note: &str) -> Result<(&str, Vec<SignatureLine<'_>>), NoteError> {
    check_no_control(note)?;
    // The text ends at the last blank line; signature lines never contain one.
    let split = note.rfind("\n\n").ok_or(NoteError::MissingSignatureBlock)?;
    let (text, block) = (&note[..split + 1], &note[split + 2..]);
    let Some(block) = block.strip_suffix('\n') else {
        return Err(if block.is_empty() { NoteError::EmptySignatureBlock } else { NoteError::MissingFinalNewline });
    };
    // Line numbers for errors: the text's lines, then the blank line, then the signatures.
    let first_line = text.matches('\n').count() + 2;
    let mut signatures = Vec::new();
    for (i, line) in block.split('\n').enumerate() {
        if i == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures { max: MAX_SIGNATURES });
        }
        let malformed = |reason| NoteError::MalformedSignatureLine { line: first_line + i, reason };
        let rest =
            line.strip_prefix(SIGNATURE_PREFIX).ok_or(malformed("it does not start with an em dash and a space"))?;
        let (name, b64) = rest.split_once(' ').ok_or(malformed("no space between key name and signature"))?;
        check_key_name(name).map_err(|_| malformed("invalid key name"))?;
        let blob = B64.decode(b64).map_err(|_| malformed("signature is not padded standard base64"))?;
        if blob.len() < 5 {
            return Err(malformed("signature is too short to hold a key ID and a signature"));
        }
        let key_id = [blob[0], blob[1], blob[2], blob[3]];
        signatures.push(SignatureLine { name, key_id, signature: blob[4..].to_vec() });
    }
    Ok((text, signatures))
}

/// Checks `note` against `verifier` and returns its text (including the final newline).
///
/// Signatures by other keys (a different name or key ID) are ignored. Every signature that claims to be the
/// verifier's must verify, and there must be at least one.
pub fn open_note<'a>(note: &'a str, verifier: &NoteVerifier) -> Result<&'a str, NoteError> {
    let (text, signatures) = parse_note(note)?;
    let mut verified = false;
    for sig in signatures {
        if sig.name != verifier.name || sig.key_id != verifier.key_id {
            continue;
        }
        let bad = || NoteError::BadSignature { key: verifier.label() };
        let signature: &[u8; 64] = sig.signature.as_slice().try_into().map_err(|_| bad())?;
        verifier.key.verify(text.as_bytes(), signature).map_err(|_| bad())?;
        verified = true;
    }
    if !verified {
        return Err(NoteError::NoVerifiedSignature { key: verifier.label() });
    }
    Ok(text)
}

/// The text of a well-formed note (including its final newline) without checking any signature: for showing
/// what a note claims, never for trusting it. [`open_note`] and [`Checkpoint::open`] are the checked forms.
pub fn unverified_text(note: &str) -> Result<&str, NoteError> {
    parse_note(note).map(|(text, _)| text)
}

/// Splits a file of notes written back to back into the notes, each checked for syntax (not signatures).
///
/// A note ends with the first run of signature lines that follows a blank line; the next line starts the next
/// note. Anything else is refused: a blank line between notes, text at the end with no signature block, a
/// missing final newline, control characters, malformed signature lines. An empty file holds no notes.
///
/// A note whose text itself contains a blank line followed by a line starting with an em dash and a space
/// cannot be told apart from two notes; it is split there and then fails to open. Checkpoints never contain
/// such lines.
pub fn split_notes(s: &str) -> Result<Vec<&str>, NoteError> {
    check_no_control(s)?;
    let Some(body) = s.strip_suffix('\n') else {
        return if s.is_empty() { Ok(Vec::new()) } else { Err(NoteError::MissingFinalNewline) };
    };
    let mut notes: Vec<(&str, usize)> = Vec::new(); // each note and the line it starts on
    let mut start = 0usize; // byte offset where the current note starts
    let mut start_line = 1usize;
    let mut offset = 0usize; // byte offset of the current line
    let mut in_signatures = false; // in the current note's signature block
    let mut after_blank = false; // the previous line of the current note's text was blank
    for (i, line) in body.split('\n').enumerate() {
        let line_no = i + 1;
        let is_signature = line.starts_with(SIGNATURE_PREFIX);
        if in_signatures && !is_signature {
            // The signature block is over: the note is complete and this line starts the next one.
            notes.push((&s[start..offset], start_line));
            (start, start_line, in_signatures, after_blank) = (offset, line_no, false, false);
        }
        if !in_signatures {
            if offset == start && line.is_empty() {
                return Err(NoteError::BlankLineBetweenNotes { line: line_no });
            }
            in_signatures = after_blank && is_signature;
            after_blank = line.is_empty();
        }
        offset += line.len() + 1;
    }
    if !in_signatures {
        return Err(NoteError::TrailingText { line: start_line });
    }
    notes.push((&s[start..], start_line));
    for (index, (note, line)) in notes.iter().enumerate() {
        parse_note(note).map_err(|e| NoteError::InvalidNote { index: index + 1, line: *line, source: Box::new(e) })?;
    }
    Ok(notes.into_iter().map(|(note, _)| note).collect())
}

/// A tlog-checkpoint: the log's origin (its key name), tree size, root hash, and the time it was signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Milliseconds since the Unix epoch, UTC, from 0 to [`MAX_TIME_MS`].
    pub time_ms: i64,
}

/// `time_ms` as RFC 3339 UTC with exactly three fractional digits and `Z`, e.g. `2025-01-02T03:04:05.006Z`.
fn format_time(time_ms: i64) -> Result<String, NoteError> {
    if !(0..=MAX_TIME_MS).contains(&time_ms) {
        return Err(NoteError::TimeOutOfRange { time_ms });
    }
    let ts = jiff::Timestamp::from_millisecond(time_ms).map_err(|_| NoteError::TimeOutOfRange { time_ms })?;
    Ok(format!("{ts:.3}"))
}

/// Reads a `time` value; only the exact form [`format_time`] writes is accepted.
fn parse_time(value: &str, line: usize) -> Result<i64, NoteError> {
    let ts: jiff::Timestamp = value
        .parse()
        .map_err(|_| NoteError::BadTime { line, reason: "is not an RFC 3339 timestamp in the supported range" })?;
    let time_ms = ts.as_millisecond();
    // Printing it back must give the same bytes: that rules out offsets other than Z, other precisions and
    // sub-millisecond digits, lower-case letters and every other variant RFC 3339 or the parser allows.
    if format_time(time_ms)? != value {
        return Err(NoteError::BadTime {
            line,
            reason: "is not in canonical form (UTC with `Z`, `T`, and exactly 3 fractional digits)",
        });
    }
    Ok(time_ms)
}

fn parse_size(s: &str) -> Result<u64, NoteError> {
    let reason = if s.is_empty() {
        "is empty"
    } else if s.starts_with(['-', '+']) {
        "has a sign (it must be plain decimal digits)"
    } else if !s.bytes().all(|b| b.is_ascii_digit()) {
        "is not a decimal number"
    } else if s.len() > 1 && s.starts_with('0') {
        "has a leading zero"
    } else {
        return s.parse().map_err(|_| NoteError::BadTreeSize { reason: "is too large for 64 bits" });
    };
    Err(NoteError::BadTreeSize { reason })
}

impl Checkpoint {
    /// The checkpoint text: origin, size, base64 root, then the `time` line. Fails for an empty origin, one with
    /// control characters (a newline would change the lines), or a time outside `0..=MAX_TIME_MS`.
    pub fn to_text(&self) -> Result<String, NoteError> {
        if self.origin.is_empty() {
            return Err(NoteError::EmptyOrigin);
        }
        // A newline would split the origin over two lines; other control characters no note may hold.
        if self.origin.chars().any(char::is_control) {
            return Err(NoteError::OriginControlCharacter);
        }
        let time = format_time(self.time_ms)?;
        Ok(format!("{}\n{}\n{}\ntime {time}\n", self.origin, self.size, B64.encode(self.root)))
    }

    /// Parses a checkpoint text strictly: exactly the four lines [`Checkpoint::to_text`] writes, each in
    /// canonical form, and nothing else.
    pub fn parse_text(text: &str) -> Result<Self, NoteError> {
        let Some(body) = text.strip_suffix('\n') else { return Err(NoteError::TextMissingFinalNewline) };
        if let Some(at) = text.find('\r') {
            return Err(NoteError::CarriageReturn { line: text[..at].matches('\n').count() + 1 });
        }
        check_no_control(text)?;
        let mut lines = body.split('\n');

        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(NoteError::EmptyOrigin);
        }
        let size = parse_size(lines.next().ok_or(NoteError::MissingLine { line: 2, what: "tree size" })?)?;
        let root_b64 = lines.next().ok_or(NoteError::MissingLine { line: 3, what: "root hash" })?;
        let root_bytes = B64.decode(root_b64).map_err(|_| NoteError::BadRootHash)?;
        let root: Hash =
            root_bytes.as_slice().try_into().map_err(|_| NoteError::RootHashLength { len: root_bytes.len() })?;

        let mut time_ms = None;
        for (i, line) in lines.enumerate() {
            let line_no = i + 4;
            if line.is_empty() {
                return Err(NoteError::EmptyLine { line: line_no });
            }
            let Some(value) = line.strip_prefix("time ") else {
                return Err(NoteError::UnexpectedLine { line: line_no });
            };
            if time_ms.is_some() {
                return Err(NoteError::DuplicateTime { line: line_no });
            }
            time_ms = Some(parse_time(value, line_no)?);
        }
        let time_ms = time_ms.ok_or(NoteError::MissingTime)?;
        Ok(Checkpoint { origin: origin.to_string(), size, root, time_ms })
    }

    /// Signs the checkpoint as a note. The origin must be the signer's name, since [`Checkpoint::open`] requires
    /// it.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, NoteError> {
        if self.origin != signer.name() {
            return Err(NoteError::OriginMismatch { origin: self.origin.clone(), key_name: signer.name().to_string() });
        }
        signer.sign(&self.to_text()?)
    }

    /// Verifies the note's signature by `verifier`, parses the checkpoint, and requires its origin to be the
    /// verifier's name (so one log's key cannot vouch for another log's checkpoint).
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, NoteError> {
        let text = open_note(note, verifier)?;
        let checkpoint = Checkpoint::parse_text(text)?;
        if checkpoint.origin != verifier.name() {
            return Err(NoteError::OriginMismatch { origin: checkpoint.origin, key_name: verifier.name().to_string() });
        }
        Ok(checkpoint)
    }
}
