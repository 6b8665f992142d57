//! Problems found in an operator's data files (catalog, policies,
//! attachments), each with the file and the position inside it, so
//! `tollgate policy check` and a refused start say exactly where to look.

use std::fmt;
use std::path::{Path, PathBuf};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file set is refused: it never becomes active.
    Error,
    /// Allowed, but probably not what the operator meant.
    Warning,
}

/// One problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// Where inside the document, e.g. `Statement[1].Action[0]` (may be empty).
    pub path: String,
    /// What is wrong, and when useful what would be right.
    pub message: String,
}

impl Diagnostic {
    /// An error at `file`, `path`.
    pub fn error(file: &Path, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line: None,
            column: None,
            path: path.into(),
            message: message.into(),
        }
    }

    /// A warning at `file`, `path`.
    pub fn warning(file: &Path, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, path, message)
        }
    }

    /// The same problem, placed at a line and column.
    #[must_use]
    pub fn at(mut self, position: Option<(usize, usize)>) -> Self {
        if let Some((line, column)) = position {
            self.line = Some(line);
            self.column = Some(column);
        }
        self
    }

    /// The same problem, placed at byte `offset` of `text`.
    #[must_use]
    pub fn at_offset(self, text: &str, offset: usize) -> Self {
        self.at(Some(line_column(text, offset)))
    }

    /// Whether this refuses the file set.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {level}: ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// A file set that failed validation: every error found (not just the
/// first), plus the warnings, for one report.
#[derive(Debug, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Whether any entry is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// The number of errors.
    pub fn error_count(&self) -> usize {
        self.0.iter().filter(|d| d.is_error()).count()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.error_count();
        write!(
            f,
            "{errors} error{} in the permission files",
            if errors == 1 { "" } else { "s" }
        )?;
        for d in &self.0 {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let text = "ab\ncé\n  x";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        // 'é' is two bytes; the column counts characters.
        assert_eq!(line_column(text, 6), (2, 3));
        assert_eq!(line_column(text, text.len() - 1), (3, 3));
        // Past the end clamps.
        assert_eq!(line_column(text, 999), (3, 4));
    }

    #[test]
    fn display_names_file_position_and_path() {
        let d = Diagnostic::error(Path::new("p/a.json"), "Statement[0].Action[1]", "bad")
            .at(Some((4, 9)));
        assert_eq!(
            d.to_string(),
            "p/a.json:4:9: error: Statement[0].Action[1]: bad"
        );
        let w = Diagnostic::warning(Path::new("x.toml"), "", "unused");
        assert_eq!(w.to_string(), "x.toml: warning: unused");
    }
}
