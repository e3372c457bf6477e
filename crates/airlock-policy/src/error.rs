//! Errors that point at the text that caused them.
//!
//! Every problem with a config or a Cedar file is reported as file, line and column, because the person fixing
//! it is looking at that file. Messages may quote keys, hosts and paths, never the value of a `${secret:...}` or
//! `${env:...}` reference: those are resolved only after loading, and not by this crate.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One finding at one place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Short stable name, e.g. `unknown-key`, `wildcard-host-in-prod`.
    pub code: &'static str,
    pub file: PathBuf,
    /// 1-based; 0 when the finding has no position (a whole-file problem).
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        if self.line == 0 {
            // A whole-file finding (or one from outside the file, like a profile conflict) has no position.
            write!(f, "{}: {sev}[{}]: {}", self.file.display(), self.code, self.message)
        } else {
            write!(f, "{}:{}:{}: {sev}[{}]: {}", self.file.display(), self.line, self.column, self.code, self.message)
        }
    }
}

/// Loading or compiling failed; nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    pub fn single(d: Diagnostic) -> ConfigError {
        ConfigError { diagnostics: vec![d] }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<&Diagnostic> = self.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
        match errors.as_slice() {
            [] => write!(f, "configuration rejected"),
            [one] => write!(f, "{one}"),
            [first, rest @ ..] => write!(f, "{first} (and {} more)", rest.len()),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A file's text, for turning byte offsets into line and column.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub path: PathBuf,
    pub text: String,
    /// Byte offset of the start of each line, so positions cost a binary search (a 1,000-tool config asks
    /// for thousands of them).
    line_starts: Vec<usize>,
}

impl SourceText {
    pub fn new(path: &Path, text: String) -> SourceText {
        let line_starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        SourceText { path: path.to_path_buf(), text, line_starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        (line, self.text[start..offset].chars().count() + 1)
    }

    pub fn diag(
        &self,
        severity: Severity,
        code: &'static str,
        span: Option<Range<usize>>,
        message: String,
    ) -> Diagnostic {
        let (line, column) = span.map(|s| self.position(s.start)).unwrap_or((0, 0));
        Diagnostic { severity, code, file: self.path.clone(), line, column, message }
    }

    pub fn error(&self, code: &'static str, span: Option<Range<usize>>, message: impl Into<String>) -> Diagnostic {
        self.diag(Severity::Error, code, span, message.into())
    }

    pub fn warning(&self, code: &'static str, span: Option<Range<usize>>, message: impl Into<String>) -> Diagnostic {
        self.diag(Severity::Warning, code, span, message.into())
    }
}

pub(crate) fn position_in(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::position_in;

    #[test]
    fn indexed_positions_agree_with_the_scan() {
        let t = "a = 1\nbé = 2\n\nlast";
        let src = super::SourceText::new(std::path::Path::new("x"), t.to_string());
        for i in 0..=t.len() + 2 {
            assert_eq!(src.position(i), position_in(t, i), "offset {i}");
        }
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(position_in(t, 0), (1, 1));
        assert_eq!(position_in(t, 6), (2, 1));
        // "é" is two bytes; the column after it counts one character.
        assert_eq!(position_in(t, 9), (2, 3));
        assert_eq!(position_in(t, 10_000), (3, 1));
    }
}
