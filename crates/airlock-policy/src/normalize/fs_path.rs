//! Filesystem paths in canonical form.
//!
//! A rule about `/srv/app/secrets` must hold however the path is spelt: `/srv/./app//secrets/`, `/srv/x/../app/...`,
//! or through a symbolic link that points into it. Textual cleanup alone is wrong for `..`: the kernel resolves `..`
//! after following a symlink, so `link/../x` is next to the link's *target*, not next to the link. So requests are
//! resolved against the real filesystem, the way the kernel will resolve them when the tool opens the file, and only
//! the part that does not exist yet is cleaned up as text (a name that does not exist cannot be a symlink).
//!
//! Patterns from configuration are not resolved against `..` at all (a rule must say what it means), but their
//! literal part is canonicalised when it exists, so that a rule written through a symlink and a request resolved
//! through it land in the same space.
//!
//! Paths are not URL-encoded, so `%2e%2e` is in principle an ordinary name. But an agent that hands a
//! percent-encoded traversal to a tool that decodes it later is attacking, so components containing `%2e`, `%2f`,
//! `%5c` or `%00` (any case) are refused outright rather than given a second meaning.

use std::io;
use std::path::{Path, PathBuf};

use super::NormalizeError;

/// Percent-escapes that spell '.', '/', '\' or NUL, lowercased for comparison.
const REFUSED_ESCAPES: [&str; 4] = ["%2e", "%2f", "%5c", "%00"];

/// Characters that make a pattern component a glob rather than a literal name.
const GLOB_CHARS: [char; 6] = ['*', '?', '[', ']', '{', '}'];

/// Bound on symbolic links followed by hand (dangling links), as the kernel bounds its own (Linux: 40).
const MAX_SYMLINK_HOPS: usize = 40;

/// Canonical absolute path on which to make a filesystem decision.
///
/// The input must be absolute UTF-8 without NUL or refused percent-escapes. `.` and empty components are dropped.
/// The longest prefix that exists is resolved by the kernel (`std::fs::canonicalize`: symlinks and `..` exactly as
/// an `open` would see them); the rest is appended as text, with `..` applied textually. A dangling symlink is
/// followed by hand, because creating a file through it writes to its target. The result has no trailing slash
/// (except `/` itself) and must be valid UTF-8.
pub fn normalize_fs_path(input: &str) -> Result<String, NormalizeError> {
    let components: Vec<&str> = split_components(input, "path")?;
    let resolved: PathBuf = resolve(input, components, 0)?;
    into_utf8(resolved, input, "path")
}

/// Canonical form of a path pattern written in configuration.
///
/// The pattern must be absolute, without NUL, refused percent-escapes or `..` (configuration must say what it
/// means). `.`, empty components and a trailing slash are removed. Glob characters (`* ? [ ] { }`) are kept as
/// written. The literal part before the first component with a glob character is put through
/// [`normalize_fs_path`] when that is possible, so that a pattern written through a symlink names the same files as
/// a request resolved through it (a pattern `/home/me/link/**` with `link -> /data` becomes `/data/**`). The
/// filesystem is only read, never written; if the literal part cannot be resolved (permission denied), it is kept
/// as written. When glob components follow, glob characters in the resolved part (a symlink to `/mnt/disk[1]`) are
/// escaped: they name a directory, they are not a character class.
pub fn normalize_fs_pattern(input: &str) -> Result<String, NormalizeError> {
    let components: Vec<&str> = split_pattern_components(input)?;
    let literal_len: usize = components.iter().position(|c: &&str| c.contains(GLOB_CHARS)).unwrap_or(components.len());
    let literal: String = join_absolute(&components[..literal_len]);
    let mut out: String = normalize_fs_path(&literal).unwrap_or(literal);
    if literal_len < components.len() {
        out = globset::escape(&out);
    }
    for component in &components[literal_len..] {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(component);
    }
    Ok(out)
}

/// Canonical form of a path pattern that is not a glob, even if it contains glob characters (a workspace at
/// `/srv/proj[1]`): the same checks as [`normalize_fs_pattern`], then the whole path is put through
/// [`normalize_fs_path`] when possible, and kept as written otherwise.
pub fn normalize_fs_literal_pattern(input: &str) -> Result<String, NormalizeError> {
    let components: Vec<&str> = split_pattern_components(input)?;
    let literal: String = join_absolute(&components);
    Ok(normalize_fs_path(&literal).unwrap_or(literal))
}

/// Components of a pattern; `..` is refused (configuration must say what it means).
fn split_pattern_components(input: &str) -> Result<Vec<&str>, NormalizeError> {
    let components: Vec<&str> = split_components(input, "path pattern")?;
    if components.contains(&"..") {
        return Err(NormalizeError::new(
            "path pattern",
            format!("{input:?} contains \"..\"; write the path it is meant to name"),
        ));
    }
    Ok(components)
}

/// Directories that contain `path`, nearest first: `/srv/app/.git/config` gives `/srv/app/.git`, `/srv/app`,
/// `/srv`, `/`. `/` has none. Meant for normalised paths; purely textual.
pub fn dir_ancestors(path: &str) -> Vec<String> {
    let mut ancestors: Vec<String> = Vec::new();
    let mut current: &str = path.trim_end_matches('/');
    while let Some(slash) = current.rfind('/') {
        if slash == 0 {
            ancestors.push("/".to_owned());
            break;
        }
        current = &current[..slash];
        ancestors.push(current.to_owned());
    }
    ancestors
}

/// Checks the shape of an input and splits it into components, dropping empty ones and `.`.
fn split_components<'a>(input: &'a str, what: &'static str) -> Result<Vec<&'a str>, NormalizeError> {
    if input.is_empty() {
        return Err(NormalizeError::new(what, "empty path"));
    }
    if input.contains('\0') {
        return Err(NormalizeError::new(what, "path contains a NUL byte"));
    }
    if !input.starts_with('/') {
        return Err(NormalizeError::new(what, format!("{input:?} is not an absolute path")));
    }
    let components: Vec<&str> = input.split('/').filter(|c: &&str| !c.is_empty() && *c != ".").collect();
    for component in &components {
        let lower: String = component.to_ascii_lowercase();
        if REFUSED_ESCAPES.iter().any(|escape: &&str| lower.contains(escape)) {
            return Err(NormalizeError::new(
                what,
                format!(
                    "{input:?}: component {component:?} contains a percent-encoded '.', '/', '\\' or NUL \
                     (%2e, %2f, %5c, %00); file paths are not URL-encoded, so this is refused"
                ),
            ));
        }
    }
    Ok(components)
}

/// Resolves checked components: the kernel for the longest existing prefix, text for the rest.
fn resolve(input: &str, components: Vec<&str>, hops: usize) -> Result<PathBuf, NormalizeError> {
    let mut resolved: PathBuf = PathBuf::from("/");
    let mut probe: PathBuf = PathBuf::from("/");
    let mut consumed: usize = 0;
    // If a prefix does not resolve, no longer prefix does either (its lookup passes through the shorter one), so the
    // first failure ends the kernel's part.
    for (index, &component) in components.iter().enumerate() {
        probe.push(component);
        match std::fs::canonicalize(&probe) {
            Ok(path) => {
                resolved = path;
                consumed = index + 1;
            }
            Err(error) if matches!(error.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                if let Some(target) = dangling_symlink_target(&probe, &resolved, component) {
                    return follow_dangling(input, target, &components[index + 1..], hops);
                }
                break;
            }
            Err(error) => {
                return Err(NormalizeError::new("path", format!("cannot resolve {probe:?}: {error}")));
            }
        }
    }
    // What is left does not exist, so it holds no symlinks and `..` can be applied as text.
    for component in &components[consumed..] {
        if *component == ".." {
            resolved.pop();
        } else {
            resolved.push(component);
        }
    }
    Ok(resolved)
}

/// If `probe` is a symlink whose target does not exist, the path its target names (relative targets are taken
/// relative to `parent`, the canonical directory holding the link).
fn dangling_symlink_target(probe: &Path, parent: &Path, component: &str) -> Option<PathBuf> {
    if component == ".." {
        return None;
    }
    let metadata: std::fs::Metadata = std::fs::symlink_metadata(probe).ok()?;
    if !metadata.file_type().is_symlink() {
        return None;
    }
    let target: PathBuf = std::fs::read_link(probe).ok()?;
    Some(if target.is_absolute() { target } else { parent.join(target) })
}

/// Continues resolution at a dangling symlink's target, as `open(O_CREAT)` would.
fn follow_dangling(input: &str, target: PathBuf, rest: &[&str], hops: usize) -> Result<PathBuf, NormalizeError> {
    if hops >= MAX_SYMLINK_HOPS {
        return Err(NormalizeError::new("path", format!("{input:?}: too many levels of symbolic links")));
    }
    let Some(target) = target.to_str() else {
        return Err(NormalizeError::new("path", format!("{input:?} goes through a symlink whose target is not UTF-8")));
    };
    let mut next: String = target.to_owned();
    for component in rest {
        next.push('/');
        next.push_str(component);
    }
    let components: Vec<&str> = split_components(&next, "path")?;
    resolve(input, components, hops + 1)
}

fn into_utf8(path: PathBuf, input: &str, what: &'static str) -> Result<String, NormalizeError> {
    path.into_os_string()
        .into_string()
        .map_err(|_| NormalizeError::new(what, format!("{input:?} resolves to a path that is not valid UTF-8")))
}

fn join_absolute(components: &[&str]) -> String {
    let mut out: String = String::from("/");
    out.push_str(&components.join("/"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_of_a_file_run_up_to_the_root() {
        assert_eq!(dir_ancestors("/srv/app/.git/config"), vec!["/srv/app/.git", "/srv/app", "/srv", "/"]);
        assert_eq!(dir_ancestors("/srv"), vec!["/"]);
        assert!(dir_ancestors("/").is_empty());
    }

    #[test]
    fn refused_escapes_are_caught_in_any_case() {
        for bad in ["/a/%2E%2e", "/a/x%2Fy", "/a/%5C", "/a/%00"] {
            assert!(split_components(bad, "path").is_err(), "{bad} should be refused");
        }
        assert!(split_components("/a/%41", "path").is_ok());
    }

    #[test]
    fn root_stays_root() {
        assert_eq!(normalize_fs_path("/").unwrap(), "/");
        assert_eq!(normalize_fs_path("//./").unwrap(), "/");
        assert_eq!(normalize_fs_path("/..").unwrap(), "/");
    }
}
