//! Programs named by their canonical absolute path.
//!
//! A rule about `git` must hold whether the agent runs `git`, `/usr/bin/git` or a symlink to it, and must not be
//! satisfied by a `git` that happens to sit in a directory the agent controls. So a bare name is looked up in a fixed
//! search path given by configuration (never the agent's `PATH`), a name with a slash must be absolute, and either
//! way the result is the canonical path of the file that would actually be executed (`/usr/bin/python3` may become
//! `/usr/bin/python3.11`).

use std::path::{Path, PathBuf};

use super::NormalizeError;

/// The search path used when configuration gives none: the usual system directories, no user-writable ones.
pub const DEFAULT_SEARCH_PATH: &[&str] =
    &["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Resolves a program name to the canonical path of the executable it denotes.
///
/// A bare name (`git`) is looked up in `search_path`, in order, for a regular file with an execute bit, as a shell
/// would. A name containing '/' must be absolute. The result has every symlink resolved and must be valid UTF-8.
pub fn resolve_program(name: &str, search_path: &[PathBuf]) -> Result<String, NormalizeError> {
    let fail = |reason: String| NormalizeError::new("program", reason);
    if name.is_empty() {
        return Err(fail("empty program name".to_owned()));
    }
    if name.contains('\0') {
        return Err(fail("program name contains a NUL byte".to_owned()));
    }
    if name.contains('/') {
        if !name.starts_with('/') {
            return Err(fail(format!(
                "{name:?} is a relative path; give an absolute path, or a bare name to look up in the search path"
            )));
        }
        let path: &Path = Path::new(name);
        return match std::fs::metadata(path) {
            Ok(metadata) => {
                check_runnable(name, &metadata).map_err(fail)?;
                canonical_utf8(name, path).map_err(fail)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(fail(format!("{name:?} does not exist"))),
            Err(error) => Err(fail(format!("cannot inspect {name:?}: {error}"))),
        };
    }
    if name == "." || name == ".." {
        return Err(fail(format!("{name:?} is not a program name")));
    }
    // The first candidate that exists but cannot run explains a miss better than "not found".
    let mut unusable: Option<String> = None;
    for dir in search_path {
        // A relative entry would make the answer depend on the current directory, which the agent may choose.
        if !dir.is_absolute() {
            return Err(fail(format!("search path entry {dir:?} is not an absolute directory")));
        }
        let candidate: PathBuf = dir.join(name);
        // Unreadable or missing entries are skipped, as a shell skips them.
        let Ok(metadata) = std::fs::metadata(&candidate) else {
            continue;
        };
        let shown: String = candidate.to_string_lossy().into_owned();
        match check_runnable(&shown, &metadata) {
            Ok(()) => return canonical_utf8(&shown, &candidate).map_err(fail),
            Err(reason) => {
                unusable.get_or_insert(reason);
            }
        }
    }
    Err(fail(unusable.unwrap_or_else(|| {
        let dirs: Vec<String> = search_path.iter().map(|d: &PathBuf| d.to_string_lossy().into_owned()).collect();
        format!("{name:?} not found in the search path ({})", dirs.join(":"))
    })))
}

/// A regular file (after following symlinks) with at least one execute bit.
fn check_runnable(shown: &str, metadata: &std::fs::Metadata) -> Result<(), String> {
    if metadata.is_dir() {
        return Err(format!("{shown:?} is a directory, not a program"));
    }
    if !metadata.is_file() {
        return Err(format!("{shown:?} is not a regular file"));
    }
    if !has_execute_bit(metadata) {
        return Err(format!("{shown:?} is not executable (no execute permission bit)"));
    }
    Ok(())
}

#[cfg(unix)]
fn has_execute_bit(metadata: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn has_execute_bit(_metadata: &std::fs::Metadata) -> bool {
    // No execute bits to read; being a regular file is all that can be checked.
    true
}

fn canonical_utf8(shown: &str, path: &Path) -> Result<String, String> {
    let canonical: PathBuf = std::fs::canonicalize(path).map_err(|e| format!("cannot resolve {shown:?}: {e}"))?;
    canonical.into_os_string().into_string().map_err(|_| format!("{shown:?} resolves to a path that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_names_are_not_programs() {
        let search: Vec<PathBuf> = vec![PathBuf::from("/usr/bin")];
        assert!(resolve_program(".", &search).is_err());
        assert!(resolve_program("..", &search).is_err());
    }

    #[test]
    fn relative_search_path_entries_are_refused() {
        let search: Vec<PathBuf> = vec![PathBuf::from("bin")];
        let error: NormalizeError = resolve_program("sh", &search).unwrap_err();
        assert!(error.reason.contains("not an absolute directory"), "{error}");
    }
}
