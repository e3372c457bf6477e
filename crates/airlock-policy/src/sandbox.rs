//! `[sandbox]` environment rules: which of the caller's environment variables a sandboxed tool may see.
//!
//! The sandbox starts every tool with an empty environment and adds back only the names the config lists
//! (`[sandbox] env` plus the tool's own `env`). Two kinds of names can never be listed, because passing the caller's
//! value through would undo the sandbox:
//! - **Names the sandbox sets itself**: the proxy variables, the CA bundle variables, `PATH`, `HOME`, `TMPDIR` and
//!   `AIRLOCK_*`. A caller's value would send traffic around the broker, make TLS through it fail, or point the tool
//!   at files outside its sandbox.
//! - **Names that make a program load or run code the variable names**: the dynamic loader's (`LD_PRELOAD`),
//!   shell startup files and exported functions (`BASH_ENV`), interpreter options and module paths
//!   (`NODE_OPTIONS`, `PYTHONPATH`), git's (`GIT_SSH_COMMAND`, `GIT_CONFIG_*`), and commands held in a variable
//!   (`PAGER`, `EDITOR`). With one of those the caller runs code of its choosing inside a tool whose `exec` rules
//!   allow only the command. The list names the well-known vectors; it cannot be complete, which is why the
//!   environment starts empty and nothing passes unless it is named.
//!
//! A prefix (`LC_*`) that would match a refused name is refused as well, and so is `*` on its own. Refusals ignore
//! case (`https_proxy` is read by curl just like `HTTPS_PROXY`); matching the caller's names against the list does
//! not (environment names are case-sensitive).

/// `[sandbox] env` when the file does not set it: locale, terminal, time zone and colour preferences.
pub const DEFAULT_ENV: &[&str] = &["LANG", "LANGUAGE", "LC_*", "TERM", "TZ", "NO_COLOR", "COLORTERM"];

/// `[sandbox] forward_port` when the file does not set it.
pub const DEFAULT_FORWARD_PORT: u16 = 3128;

const SET_BY_SANDBOX: &str = "the sandbox sets it itself";
const LOADER: &str = "it makes the dynamic loader load code the caller chose";
const SHELL: &str = "it makes shells run code the caller chose at startup";
const INTERPRETER: &str = "it makes an interpreter load code the caller chose";
const GIT: &str =
    "git reads commands and configuration from GIT_* variables, and the sandbox sets GIT_SSL_CAINFO itself";
const COMMAND: &str = "programs run the command it holds";

/// Names never passed through, and why. An entry ending in `*` is a prefix. Compared ignoring ASCII case.
pub const REFUSED: &[(&str, &str)] = &[
    ("HTTP_PROXY", SET_BY_SANDBOX),
    ("HTTPS_PROXY", SET_BY_SANDBOX),
    ("ALL_PROXY", SET_BY_SANDBOX),
    ("NO_PROXY", SET_BY_SANDBOX),
    ("SSL_CERT_FILE", SET_BY_SANDBOX),
    ("SSL_CERT_DIR", SET_BY_SANDBOX),
    ("REQUESTS_CA_BUNDLE", SET_BY_SANDBOX),
    ("CURL_CA_BUNDLE", SET_BY_SANDBOX),
    ("NODE_EXTRA_CA_CERTS", SET_BY_SANDBOX),
    ("PATH", SET_BY_SANDBOX),
    ("HOME", SET_BY_SANDBOX),
    ("TMPDIR", SET_BY_SANDBOX),
    ("AIRLOCK_*", SET_BY_SANDBOX),
    ("LD_*", LOADER),
    ("DYLD_*", LOADER),
    ("BASH*", SHELL),
    ("ENV", SHELL),
    ("SHELLOPTS", SHELL),
    ("PYTHONPATH", INTERPRETER),
    ("PYTHONHOME", INTERPRETER),
    ("PYTHONSTARTUP", INTERPRETER),
    ("PERL5OPT", INTERPRETER),
    ("PERL5LIB", INTERPRETER),
    ("PERLLIB", INTERPRETER),
    ("RUBYOPT", INTERPRETER),
    ("RUBYLIB", INTERPRETER),
    ("NODE_OPTIONS", INTERPRETER),
    ("NODE_PATH", INTERPRETER),
    ("JAVA_TOOL_OPTIONS", INTERPRETER),
    ("JDK_JAVA_OPTIONS", INTERPRETER),
    ("_JAVA_OPTIONS", INTERPRETER),
    ("GIT_*", GIT),
    ("EDITOR", COMMAND),
    ("VISUAL", COMMAND),
    ("PAGER", COMMAND),
    ("MANPAGER", COMMAND),
    ("LESSOPEN", COMMAND),
    ("LESSCLOSE", COMMAND),
    ("SSH_ASKPASS", COMMAND),
    ("BROWSER", COMMAND),
];

/// `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_name(name: &str) -> bool {
    name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn starts_with_ignoring_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// The refused entry that covers the name `name`, if any.
fn refused_entry(name: &str) -> Option<(&'static str, &'static str)> {
    REFUSED.iter().copied().find(|(r, _)| match r.strip_suffix('*') {
        Some(prefix) => starts_with_ignoring_case(name, prefix),
        None => name.eq_ignore_ascii_case(r),
    })
}

/// The refused entry some name matching the prefix `prefix*` could fall under, if any.
fn refused_overlap(prefix: &str) -> Option<(&'static str, &'static str)> {
    REFUSED.iter().copied().find(|(r, _)| match r.strip_suffix('*') {
        Some(rp) => starts_with_ignoring_case(rp, prefix) || starts_with_ignoring_case(prefix, rp),
        None => starts_with_ignoring_case(r, prefix),
    })
}

/// Why `name` may never be passed through, or `None` when it may be.
pub fn refusal(name: &str) -> Option<&'static str> {
    refused_entry(name).map(|(_, why)| why)
}

/// Checks one entry of an `env` list: a variable name, or (with `allow_prefix`) a prefix ending in `*`. The error is
/// a complete sentence about `written`.
pub fn check_pattern(written: &str, allow_prefix: bool) -> Result<(), String> {
    let (body, is_prefix) = match written.strip_suffix('*') {
        Some(b) if allow_prefix => (b, true),
        _ => (written, false),
    };
    if is_prefix && body.is_empty() {
        return Err(
            "\"*\" would pass the caller's whole environment through: name the variables, or prefixes such as \"LC_*\""
                .into(),
        );
    }
    if !valid_name(body) {
        let shape = if allow_prefix { ", optionally ending in * to match a prefix" } else { "" };
        return Err(format!(
            "invalid environment variable name {written:?}: use letters, digits and _, not starting with a digit{shape}"
        ));
    }
    let hit = if is_prefix { refused_overlap(body) } else { refused_entry(body) };
    match hit {
        None => Ok(()),
        Some((entry, why)) if is_prefix || entry.ends_with('*') => {
            Err(format!("{written:?} cannot be passed through: it matches {entry}, and {why}"))
        }
        Some((_, why)) => Err(format!("{written:?} cannot be passed through: {why}")),
    }
}

/// Whether the caller's variable `name` passes into a sandboxed tool under `patterns` (each a name, or a prefix
/// ending in `*`). Matching is exact and case-sensitive. A name that is not a plain variable name, or that is
/// refused (see [`REFUSED`]), never passes, whatever the patterns say: loaded configs cannot list one, and this
/// keeps patterns built some other way from letting one through.
pub fn env_allowed(patterns: &[String], name: &str) -> bool {
    valid_name(name)
        && refusal(name).is_none()
        && patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => p == name,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pats(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exact_names_and_prefixes_match() {
        let p = pats(&["LANG", "LC_*", "MY_TOOL_*"]);
        assert!(env_allowed(&p, "LANG"));
        assert!(env_allowed(&p, "LC_ALL"));
        assert!(env_allowed(&p, "LC_"));
        assert!(env_allowed(&p, "MY_TOOL_DEBUG"));
        assert!(!env_allowed(&p, "LANGUAGE"), "an exact name is not a prefix");
        assert!(!env_allowed(&p, "LAN"));
        assert!(!env_allowed(&p, "lang"), "matching is case-sensitive");
        assert!(!env_allowed(&p, "lc_all"));
        assert!(!env_allowed(&p, "USER"));
        assert!(!env_allowed(&[], "LANG"));
    }

    #[test]
    fn refused_and_malformed_names_never_pass_whatever_the_patterns() {
        let p = pats(&["LD_PRELOAD", "L*", "H*", "h*", "A*", "G*", "BASH_FUNC_f%%", "X-Y"]);
        for name in ["LD_PRELOAD", "LD_LIBRARY_PATH", "HTTPS_PROXY", "https_proxy", "HOME", "AIRLOCK_RUN", "GIT_DIR"] {
            assert!(!env_allowed(&p, name), "{name}");
        }
        assert!(!env_allowed(&p, "BASH_FUNC_f%%"));
        assert!(!env_allowed(&p, "X-Y"));
        assert!(env_allowed(&p, "LANG"));
        assert!(env_allowed(&p, "AWS_REGION"));
    }

    #[test]
    fn the_defaults_are_valid_patterns() {
        for p in DEFAULT_ENV {
            check_pattern(p, true).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
        let defaults = pats(DEFAULT_ENV);
        for name in ["LANG", "LANGUAGE", "LC_CTYPE", "TERM", "TZ", "NO_COLOR", "COLORTERM"] {
            assert!(env_allowed(&defaults, name), "{name}");
        }
        assert!(!env_allowed(&defaults, "USER"));
    }

    #[test]
    fn names_must_be_plain_identifiers() {
        for bad in ["", "1ABC", "A-B", "A B", "A=B", "A**", "*A", "A*B", "é"] {
            assert!(check_pattern(bad, true).is_err(), "{bad:?}");
        }
        for good in ["A", "_", "_X1", "lower_case", "MIXED_9"] {
            check_pattern(good, true).unwrap_or_else(|e| panic!("{good}: {e}"));
            check_pattern(good, false).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        // A prefix only where prefixes are allowed.
        assert!(check_pattern("LC_*", true).is_ok());
        assert!(check_pattern("LC_*", false).unwrap_err().contains("invalid environment variable name"));
        assert!(check_pattern("*", true).unwrap_err().contains("whole environment"));
        assert!(check_pattern("*", false).is_err());
    }

    #[test]
    fn refusals_ignore_case_and_cover_prefixes() {
        for name in ["HTTP_PROXY", "http_proxy", "Https_Proxy", "no_proxy", "ALL_PROXY", "PATH", "path", "TMPDIR"] {
            assert!(check_pattern(name, true).unwrap_err().contains("the sandbox sets it itself"), "{name}");
        }
        assert!(check_pattern("AIRLOCK_X", true).unwrap_err().contains("it matches AIRLOCK_*"));
        assert!(check_pattern("LD_PRELOAD", true).unwrap_err().contains("it matches LD_*, and it makes the dynamic"));
        assert!(check_pattern("BASH_ENV", true).unwrap_err().contains("shells"));
        assert!(check_pattern("NODE_OPTIONS", false).unwrap_err().contains("interpreter"));
        assert!(check_pattern("GIT_SSH_COMMAND", false).unwrap_err().contains("GIT_*"));
        // Prefixes that would match a refused name, or overlap a refused prefix.
        for (p, entry) in [
            ("LD*", "LD_*"),
            ("L*", "LD_*"),
            ("LD_PRELOAD*", "LD_*"),
            ("HTTP*", "HTTP_PROXY"),
            ("http*", "HTTP_PROXY"),
            ("NODE_*", "NODE_EXTRA_CA_CERTS"),
            ("T*", "TMPDIR"),
            ("PYTHON*", "PYTHONPATH"),
            ("GIT*", "GIT_*"),
            ("AIRLOCK*", "AIRLOCK_*"),
            ("AIRLOCK_FOO_*", "AIRLOCK_*"),
        ] {
            let e = check_pattern(p, true).unwrap_err();
            assert!(e.contains(&format!("it matches {entry}")), "{p}: {e}");
        }
        // Near misses pass.
        for ok in ["LC_*", "LANG*", "TERM", "TZ", "NO_COLOR", "HTTP_TIMEOUT", "PYTHONUNBUFFERED", "NODE_ENV", "XDG_*"] {
            check_pattern(ok, true).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }
}
