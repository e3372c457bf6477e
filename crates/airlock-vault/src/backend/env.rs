//! `env://NAME`: secrets held in environment variables, or in a `.env` file read as if they were.
//!
//! # Why
//! Many projects already keep their keys in the environment or in a `.env` file. Airlock can read them there, so
//! that adopting it does not start with a migration; but such secrets are weaker than the vault's, and this backend
//! says so ([`EnvBackend::warning`]) and checks each value for placeholders and malformed provider keys
//! ([`SecretBackend::check`]). It is read-only: writing or deleting is [`BackendError::Unsupported`].
//!
//! # Sources
//! - [`EnvBackend::process`]: Airlock's own environment (`std::env::var_os`).
//! - [`EnvBackend::dotenv`]: a `.env` file. It is checked (permissions, syntax) when the backend is opened and read
//!   again, in full, on every read, so an edit is seen at once and values are held in memory only while a read
//!   needs them. Airlock never puts the file's values into any process's environment.
//!
//! # The `.env` syntax accepted
//! One `NAME=VALUE` per line; everything else is refused with the line number (never the line's text):
//! - The file is UTF-8 (a leading byte-order mark is skipped). Lines end in `\n` or `\r\n`; no other control
//!   character than a tab may appear anywhere.
//! - Blank lines, and lines whose first non-blank character is `#`, are comments.
//! - `export ` before the name is allowed and ignored. Spaces or tabs may surround the `=`.
//! - A name is `[A-Za-z_][A-Za-z0-9_]*`. A name may be set only once in a file: tools disagree on which of two
//!   settings wins, so a repeated name is refused.
//! - A value is one of:
//!   - nothing (`NAME=`): an empty value, which a read refuses;
//!   - unquoted: up to the end of the line or to a `#` that follows a space or tab (a comment); trailing blanks
//!     are dropped. It may not contain a space or tab, `'`, `"`, `` ` ``, `\`, `$` or `#`: shells and dotenv
//!     libraries read those differently, so such a value must be quoted;
//!   - single-quoted: `'...'`, taken literally (no escapes; it cannot contain `'`);
//!   - double-quoted: `"..."`, with exactly these escapes: `\\`, `\"`, `\n`, `\r`, `\t`, `\$`. Any other backslash
//!     escape, an unescaped `$` (no variable expansion: write `\$`) or a backtick is refused.
//!
//!   A quoted value ends on the line it starts on: a newline inside a value is written `\n` in double quotes, so
//!   a value can never spill onto the next line and create another variable. After a closing quote only blanks and
//!   a `# comment` may follow.
//! - Backtick-quoted values, `${VAR}` expansion, command substitution and multi-line values are not supported.
//!
//! # Permissions
//! The file must be a regular file (a symbolic link to one is followed). It is **refused** if any user may write it
//! (mode `o+w`), or if it belongs to a user other than Airlock's or root: someone else could then choose the
//! credential Airlock sends. It is **accepted with a warning** if it is readable by group or others, or writable by
//! its group (common with Debian's per-user groups and umask 002): the warning names the mode and says
//! `chmod 600`. The refusal is repeated on every read, so a file made world-writable later stops being used.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use airlock_crypto::SecretBytes;
use zeroize::Zeroizing;

use super::{BackendError, BackendKind, Fetched, Locator, SecretBackend};
use crate::formats::{Finding, check_value_format};

/// The largest `.env` file read (a guard against pointing the backend at something that is not one).
pub const MAX_DOTENV_LEN: u64 = 1024 * 1024;

/// What every use of this backend is told: why a secret in the environment is weaker than one in the vault.
pub const PROCESS_WARNING: &str = "env:// secrets are weaker than vault secrets: a variable in Airlock's environment \
    can be read by every process running as the same user (and by root) from /proc/PID/environ, was set in (and is \
    inherited by) the shell or service that started Airlock and every other program it starts, as well as \
    anything Airlock runs outside the sandbox (the sandbox starts tools with a cleared environment), and is easily captured by shell history, `ps e`, `env` dumps in debug output, CI logs and \
    crash reports. Move long-lived secrets into the vault with `airlock secret set NAME` (or into an OS keyring).";

/// What every use of a `.env` file is told (the file's path and mode are added).
pub const DOTENV_WARNING: &str = "env:// secrets from a .env file are weaker than vault secrets: the file holds them \
    in plain text for anyone who can read it (and root), it is easily committed to git by mistake, and backups, \
    editors' swap files and `docker compose` copy it around. Move long-lived secrets into the vault with `airlock \
    secret set NAME` (or into an OS keyring).";

/// Reads `env://NAME` from the process environment or from a `.env` file. Read-only.
pub struct EnvBackend {
    source: Source,
}

enum Source {
    Process,
    File { path: PathBuf, mode_warning: Option<String> },
}

impl fmt::Debug for EnvBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Process => f.debug_struct("EnvBackend").field("source", &"process environment").finish(),
            Source::File { path, .. } => f.debug_struct("EnvBackend").field("dotenv", path).finish(),
        }
    }
}

impl EnvBackend {
    /// Reads Airlock's own environment.
    pub fn process() -> EnvBackend {
        EnvBackend { source: Source::Process }
    }

    /// Reads the `.env` file at `path`, which is checked now (permissions and syntax: an error names the line) and
    /// again on every read.
    pub fn dotenv(path: impl AsRef<Path>) -> Result<EnvBackend, BackendError> {
        let path = path.as_ref().to_path_buf();
        let (text, mode) = read_file(&path)?;
        parse_dotenv(&text).map_err(|e| file_error(&path, e.to_string()))?;
        let mode_warning = mode_warning(&path, mode);
        Ok(EnvBackend { source: Source::File { path, mode_warning } })
    }

    /// The `.env` file, if this backend reads one.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            Source::Process => None,
            Source::File { path, .. } => Some(path),
        }
    }

    fn name<'a>(&self, locator: &'a Locator) -> Result<&'a str, BackendError> {
        match locator {
            Locator::Env { name } => Ok(name),
            other => Err(BackendError::Invalid {
                locator: other.to_string(),
                reason: "not an env:// locator (the environment backend reads only env://NAME)".into(),
            }),
        }
    }

    /// The value of `name` (empty values included), or `None` when it is not set.
    fn lookup(&self, name: &str) -> Result<Option<SecretBytes>, BackendError> {
        match &self.source {
            Source::Process => {
                use std::os::unix::ffi::OsStringExt;
                Ok(std::env::var_os(name).map(|v| SecretBytes::new(v.into_vec())))
            }
            Source::File { path, .. } => {
                let (text, _) = read_file(path)?;
                let mut vars = parse_dotenv(&text).map_err(|e| file_error(path, e.to_string()))?;
                Ok(vars.remove(name).map(|v| v.value))
            }
        }
    }
}

impl SecretBackend for EnvBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Env
    }

    fn read(&self, locator: &Locator) -> Result<Fetched, BackendError> {
        let name = self.name(locator)?;
        let value = self.lookup(name)?.ok_or_else(|| BackendError::NotFound(self.where_(locator)))?;
        if value.is_empty() {
            return Err(BackendError::Invalid { locator: self.where_(locator), reason: "set, but empty".into() });
        }
        Ok(Fetched { value, version: None, fetched_at: SystemTime::now(), stale: false })
    }

    /// Names that start with `prefix` (an empty prefix lists every name), sorted. Only names: never values.
    fn list(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        let mut names: Vec<String> = match &self.source {
            Source::Process => std::env::vars_os()
                .filter_map(|(k, v)| {
                    // std has no names-only listing: each value comes along as a copy, scrubbed here.
                    use std::os::unix::ffi::OsStringExt;
                    use zeroize::Zeroize;
                    v.into_vec().zeroize();
                    k.into_string().ok()
                })
                .filter(|k| valid_name(k) && k.starts_with(prefix))
                .collect(),
            Source::File { path, .. } => {
                let (text, _) = read_file(path)?;
                let vars = parse_dotenv(&text).map_err(|e| file_error(path, e.to_string()))?;
                vars.into_keys().filter(|k| k.starts_with(prefix)).collect()
            }
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn warning(&self) -> Option<String> {
        Some(match &self.source {
            Source::Process => PROCESS_WARNING.to_string(),
            Source::File { path, mode_warning } => {
                let mut w = format!("{} ({})", DOTENV_WARNING, path.display());
                if let Some(m) = mode_warning {
                    w.push(' ');
                    w.push_str(m);
                }
                w
            }
        })
    }

    /// The provider-format findings for the value ([`check_value_format`], with the variable's name as the hint).
    fn check(&self, locator: &Locator) -> Result<Vec<Finding>, BackendError> {
        let name = self.name(locator)?;
        let fetched = self.read(locator)?;
        Ok(check_value_format(name, &[], fetched.value.expose()))
    }
}

impl EnvBackend {
    /// The locator as errors show it: with the file, when there is one.
    fn where_(&self, locator: &Locator) -> String {
        match &self.source {
            Source::Process => format!("{locator} (process environment)"),
            Source::File { path, .. } => format!("{locator} (in {})", path.display()),
        }
    }
}

fn file_error(path: &Path, reason: String) -> BackendError {
    BackendError::Invalid { locator: format!("env file {}", path.display()), reason }
}

/// Reads the file whole into zeroizing memory, after the permission checks; also returns its mode.
fn read_file(path: &Path) -> Result<(Zeroizing<Vec<u8>>, u32), BackendError> {
    let io = |op: &str, e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BackendError::NotFound(format!("env file {}", path.display()))
        } else {
            file_error(path, format!("{op}: {e}"))
        }
    };
    // A FIFO or device would block or never end: only a regular file is opened.
    let before = std::fs::metadata(path).map_err(|e| io("stat", e))?;
    if !before.is_file() {
        return Err(file_error(path, "not a regular file".into()));
    }
    let mut file = File::open(path).map_err(|e| io("open", e))?;
    let meta = file.metadata().map_err(|e| io("stat", e))?;
    if !meta.is_file() {
        return Err(file_error(path, "not a regular file".into()));
    }
    check_owner_and_mode(path, meta.uid(), meta.mode())?;
    if meta.len() > MAX_DOTENV_LEN {
        return Err(file_error(path, format!("larger than {MAX_DOTENV_LEN} bytes; not a .env file?")));
    }
    // Sized up front (plus one byte to see growth), so the buffer holding the values is never reallocated.
    let mut text = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    file.by_ref().take(MAX_DOTENV_LEN + 1).read_to_end(&mut text).map_err(|e| io("read", e))?;
    if text.len() as u64 > MAX_DOTENV_LEN {
        return Err(file_error(path, format!("larger than {MAX_DOTENV_LEN} bytes; not a .env file?")));
    }
    Ok((text, meta.mode()))
}

fn check_owner_and_mode(path: &Path, uid: u32, mode: u32) -> Result<(), BackendError> {
    let me = nix::unistd::geteuid().as_raw();
    if uid != me && uid != 0 {
        return Err(file_error(
            path,
            format!(
                "belongs to user id {uid}, not to this user ({me}) or root: its owner could change the credentials Airlock sends; refusing it"
            ),
        ));
    }
    if mode & 0o002 != 0 {
        return Err(file_error(
            path,
            format!(
                "has mode {:04o}: any user on this machine may write it and so choose the credentials Airlock \
                 sends; refusing it (run `chmod 600` on it)",
                mode & 0o7777
            ),
        ));
    }
    Ok(())
}

/// The warning for a file others can read or its group can write, if any.
fn mode_warning(path: &Path, mode: u32) -> Option<String> {
    if mode & 0o077 == 0 {
        return None;
    }
    let who = match (mode & 0o070 != 0, mode & 0o007 != 0) {
        (true, true) => "its group and every other user",
        (true, false) => "its group",
        _ => "every other user",
    };
    let what = if mode & 0o020 != 0 { "can read or write it" } else { "can read it" };
    Some(format!(
        "{} has mode {:04o}: {who} {what}; run `chmod 600 {}`.",
        path.display(),
        mode & 0o7777,
        path.display()
    ))
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// One variable of a `.env` file.
pub struct DotEnvValue {
    pub value: SecretBytes,
    /// Where it is set (1-based).
    pub line: usize,
}

impl fmt::Debug for DotEnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DotEnvValue").field("value", &self.value).field("line", &self.line).finish()
    }
}

/// Why a `.env` file was refused: the line and what is wrong with it, never its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotEnvError {
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for DotEnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for DotEnvError {}

/// Parses a `.env` file (the syntax is in the [module documentation](self)). Strict: the first problem refuses the
/// whole file.
pub fn parse_dotenv(text: &[u8]) -> Result<BTreeMap<String, DotEnvValue>, DotEnvError> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let text = match std::str::from_utf8(text) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + text[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
            return Err(DotEnvError { line, reason: "not valid UTF-8".into() });
        }
    };
    let mut vars: BTreeMap<String, DotEnvValue> = BTreeMap::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let err = |reason: &str| DotEnvError { line, reason: reason.to_string() };
        let l = raw.strip_suffix('\r').unwrap_or(raw);
        if l.chars().any(|c| c.is_control() && c != '\t') {
            return Err(err("a control character (only tabs are allowed; a carriage return only before the newline)"));
        }
        let l = l.trim_start_matches([' ', '\t']);
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let l = match l.strip_prefix("export") {
            Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start_matches([' ', '\t']),
            _ => l,
        };
        let name_len = l.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'_').count();
        let name = &l[..name_len];
        if !valid_name(name) {
            return Err(err("expected NAME=VALUE, NAME made of letters, digits and _ and not starting with a digit"));
        }
        let rest = l[name_len..].trim_start_matches([' ', '\t']);
        let Some(rest) = rest.strip_prefix('=') else {
            return Err(err("expected `=` after the name"));
        };
        let value_text = rest.trim_start_matches([' ', '\t']);
        let value = if value_text.starts_with('#') && value_text.len() < rest.len() {
            // `NAME= # comment`: an empty value.
            SecretBytes::new(Vec::new())
        } else {
            parse_value(value_text).map_err(err)?
        };
        if let Some(first) = vars.get(name) {
            return Err(DotEnvError {
                line,
                reason: format!("sets a name already set on line {} (tools disagree on which one wins)", first.line),
            });
        }
        vars.insert(name.to_string(), DotEnvValue { value, line });
    }
    Ok(vars)
}

/// Parses what follows `=` (leading blanks already dropped) up to the end of the line.
fn parse_value(rest: &str) -> Result<SecretBytes, &'static str> {
    // Sized for the longest possible value, so the buffer is never reallocated (which would leave a copy behind).
    let mut out = Zeroizing::new(Vec::with_capacity(rest.len()));
    let after = match rest.as_bytes().first() {
        None => "",
        Some(b'\'') => {
            let body = &rest[1..];
            let end = body.find('\'').ok_or(
                "a single quote is not closed on this line (a value ends on its line: write a newline as \\n \
                 inside double quotes)",
            )?;
            out.extend_from_slice(&body.as_bytes()[..end]);
            &body[end + 1..]
        }
        Some(b'"') => {
            let body = &rest.as_bytes()[1..];
            let mut i = 0;
            loop {
                let Some(&c) = body.get(i) else {
                    return Err("a double quote is not closed on this line (a value ends on its line: write a \
                                newline as \\n)");
                };
                match c {
                    b'"' => break,
                    b'\\' => {
                        let Some(&e) = body.get(i + 1) else {
                            return Err("a backslash at the end of the line (values do not continue on the next line)");
                        };
                        out.push(match e {
                            b'\\' => b'\\',
                            b'"' => b'"',
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'$' => b'$',
                            _ => {
                                return Err(
                                    "an unknown backslash escape in double quotes (allowed: \\\\ \\\" \\n \\r \
                                            \\t \\$; use single quotes for a literal backslash)",
                                );
                            }
                        });
                        i += 2;
                    }
                    b'$' => {
                        return Err("`$` in double quotes: variables are not expanded here; write \\$ for a literal \
                                    $, or use single quotes");
                    }
                    b'`' => return Err("a backtick in double quotes (command substitution is not supported)"),
                    _ => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            &rest[1 + i + 1..]
        }
        Some(b'`') => return Err("backtick-quoted values are not supported"),
        Some(_) => {
            // A comment starts at a `#` after a blank; the value is what comes before, without trailing blanks.
            let end = rest.find([' ', '\t']).map(|b| {
                let tail = rest[b..].trim_start_matches([' ', '\t']);
                (b, tail)
            });
            let (value, tail) = match end {
                Some((b, tail)) => (&rest[..b], tail),
                None => (rest, ""),
            };
            if !(tail.is_empty() || tail.starts_with('#')) {
                return Err("an unquoted value with a space or tab in it (quote the value)");
            }
            if value.contains(['\'', '"', '`', '\\', '$', '#']) {
                return Err("an unquoted value containing one of ' \" ` \\ $ # (tools read these differently: quote \
                            the value, in single quotes to take it literally)");
            }
            out.extend_from_slice(value.as_bytes());
            ""
        }
    };
    let after = after.trim_start_matches([' ', '\t']);
    if !(after.is_empty() || after.starts_with('#')) {
        return Err("unexpected text after the closing quote (only a # comment may follow)");
    }
    Ok(SecretBytes::new(std::mem::take(&mut *out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BTreeMap<String, DotEnvValue>, DotEnvError> {
        parse_dotenv(text.as_bytes())
    }

    fn get(text: &str, name: &str) -> Vec<u8> {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))[name].value.expose().to_vec()
    }

    #[test]
    fn every_accepted_form_parses_to_the_documented_value() {
        for (text, want) in [
            ("A=plain", &b"plain"[..]),
            ("A=plain   ", b"plain"),
            ("A=plain # a comment", b"plain"),
            ("A=plain\t# a comment", b"plain"),
            ("export A=plain", b"plain"),
            ("export\tA=plain", b"plain"),
            ("  A = plain", b"plain"),
            ("A=", b""),
            ("A=  # nothing", b""),
            ("A='lit $HOME \\n \" # x'", b"lit $HOME \\n \" # x"),
            ("A='x'  # c", b"x"),
            ("A=\"a\\\\b\\\"c\\nd\\re\\tf\\$g\"", b"a\\b\"c\nd\re\tf$g"),
            ("A=\"has # hash and 'single'\"", b"has # hash and 'single'"),
            ("A=\"\"", b""),
            ("A=p@ss:w0rd/+=~!%^&*()", b"p@ss:w0rd/+=~!%^&*()"),
            ("A=caf\u{e9}", "caf\u{e9}".as_bytes()),
            ("\u{feff}A=bom", b"bom"),
            ("A=crlf\r\nB=x\r\n", b"crlf"),
            ("A=x=y", b"x=y"),
        ] {
            assert_eq!(get(text, "A"), want, "{text:?}");
        }
        let all = parse("# header\n\n   # indented comment\nA=1\nexport B='2'\nC=\"3\"\nexport=4\n").unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["A", "B", "C", "export"]);
        assert_eq!(all["C"].line, 6);
    }

    #[test]
    fn ambiguous_lines_are_refused_with_the_line_number_and_never_the_text() {
        for (text, line, why) in [
            ("A=1\nB=two words-SECRETVAL", 2, "space or tab"),
            ("A=SECRETVAL'", 1, "quote the value"),
            ("A=SECRET$VAL", 1, "quote the value"),
            ("A=SECRET#VAL", 1, "quote the value"),
            ("A=#SECRETVAL", 1, "quote the value"),
            ("A=SECRET\\VAL", 1, "quote the value"),
            ("A=\"SECRET$VAL\"", 1, "not expanded"),
            ("A=\"SECRET${VAL}\"", 1, "not expanded"),
            ("A=\"SECRET\\qVAL\"", 1, "unknown backslash escape"),
            ("A=\"SECRET`id`VAL\"", 1, "backtick"),
            ("A=`SECRETVAL`", 1, "backtick-quoted"),
            ("\nA=\"SECRETVAL\nB=x\"", 2, "not closed on this line"),
            ("A='SECRETVAL\n'", 1, "not closed on this line"),
            ("A=\"SECRETVAL\\", 1, "backslash at the end"),
            ("A=\"SECRETVAL\" trailing", 1, "after the closing quote"),
            ("A='SECRETVAL'x", 1, "after the closing quote"),
            ("SECRETVAL", 1, "expected `=`"),
            ("export SECRETVAL", 1, "expected `=`"),
            ("1A=SECRETVAL", 1, "expected NAME=VALUE"),
            ("A-B=SECRETVAL", 1, "expected `=`"),
            ("=SECRETVAL", 1, "expected NAME=VALUE"),
            ("A=1\nB=2\nA=SECRETVAL", 3, "already set on line 1"),
            ("A=SECRET\rVAL", 1, "control character"),
            ("A=SECRET\0VAL", 1, "control character"),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.reason.contains(why), "{text:?}: {e}");
            assert!(!e.to_string().contains("SECRET"), "{text:?}: {e}");
        }
        let e = parse_dotenv(b"A=1\nB=\xff\xfeSECRET").unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (2, "not valid UTF-8"));
    }

    #[test]
    fn a_newline_in_a_value_never_starts_another_variable() {
        let vars = parse("A=\"x\\nOTHER=evil\"\nB='y\\nOTHER=evil'").unwrap();
        assert_eq!(vars.keys().collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(vars["A"].value.expose(), b"x\nOTHER=evil");
        assert_eq!(vars["B"].value.expose(), b"y\\nOTHER=evil");
    }

    #[test]
    fn values_never_show_in_debug() {
        let vars = parse("A=hunter2-value").unwrap();
        let shown = format!("{vars:?}");
        assert!(!shown.contains("hunter2") && shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn mode_warnings_name_who_can_read_and_the_fix() {
        let p = Path::new("/x/.env");
        assert_eq!(mode_warning(p, 0o100600), None);
        assert_eq!(mode_warning(p, 0o100400), None);
        let w = mode_warning(p, 0o100644).unwrap();
        assert!(w.contains("0644") && w.contains("its group and every other user can read it"), "{w}");
        assert!(w.contains("chmod 600 /x/.env"), "{w}");
        assert!(mode_warning(p, 0o100640).unwrap().contains("its group can read it"));
        assert!(mode_warning(p, 0o100660).unwrap().contains("its group can read or write it"));
        assert!(mode_warning(p, 0o100604).unwrap().contains("every other user can read it"));
        assert!(check_owner_and_mode(p, nix::unistd::geteuid().as_raw(), 0o100666).is_err());
        assert!(check_owner_and_mode(p, nix::unistd::geteuid().as_raw(), 0o100664).is_ok());
    }

    #[test]
    fn the_process_environment_is_read_without_writes() {
        // PATH is set in every test environment; a name nobody sets is not found.
        let b = EnvBackend::process();
        let path = Locator::Env { name: "PATH".into() };
        assert_eq!(b.read(&path).unwrap().value.expose(), std::env::var_os("PATH").unwrap().as_encoded_bytes());
        let missing = Locator::Env { name: "AIRLOCK_TEST_SURELY_UNSET_4711".into() };
        assert!(matches!(b.read(&missing), Err(BackendError::NotFound(_))));
        let value = SecretBytes::copy_from(b"x");
        assert!(matches!(b.write(&path, &value, super::super::Expect::Any), Err(BackendError::Unsupported { .. })));
        assert!(matches!(b.delete(&path), Err(BackendError::Unsupported { .. })));
        assert!(b.list("PAT").unwrap().contains(&"PATH".to_string()));
        let w = b.warning().unwrap();
        assert!(w.contains("/proc/PID/environ") && w.contains("inherited"), "{w}");
        let other = Locator::Keyctl { description: "x".into() };
        assert!(matches!(b.read(&other), Err(BackendError::Invalid { .. })));
    }
}
