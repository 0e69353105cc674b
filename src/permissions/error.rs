//! Errors of loading permission files, each tied to the file and position it concerns.

use std::fmt;
use std::path::{Path, PathBuf};

/// The class of a [`PermissionError`], for callers that react to some classes differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PermissionErrorKind {
    /// The folder is missing, or a file cannot be read or is not UTF-8.
    Io,
    /// The file is not valid TOML.
    Syntax,
    /// An unknown key, a missing key or a value of the wrong type.
    Schema,
    /// A role name is defined more than once.
    DuplicateRole,
    /// A role name is empty.
    EmptyRoleName,
    /// A permission string is empty.
    EmptyPermission,
    /// A grant sets neither or both of `group` and `external_id`.
    GroupSelector,
    /// A grant's `group` or `external_id` is empty.
    EmptyGroup,
    /// A grant names a role that no file defines.
    UnknownRole,
    /// A grant's `resources` list is empty.
    EmptyResources,
    /// A resource pattern is empty or contains whitespace or control characters.
    InvalidPattern,
}

/// A line and column in a file. Both are 1-based, and the column counts characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// Converts a byte offset into `text` to a line and column.
    ///
    /// An offset past the end, or inside a multi-byte character, is clamped to
    /// the last character boundary before it.
    pub fn from_offset(text: &str, offset: usize) -> Self {
        let mut line = 1;
        let mut column = 1;
        for (index, character) in text.char_indices() {
            if index >= offset {
                break;
            }
            if character == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        Position { line, column }
    }
}

/// One problem found while loading a permissions folder.
///
/// `Display` renders `PATH:LINE:COLUMN: message`, or `PATH: message` for
/// problems without a position (a missing folder, an unreadable file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PermissionError {
    kind: PermissionErrorKind,
    path: PathBuf,
    position: Option<Position>,
    message: String,
}

impl PermissionError {
    pub(super) fn new(
        kind: PermissionErrorKind,
        path: &Path,
        position: Option<Position>,
        message: String,
    ) -> Self {
        PermissionError {
            kind,
            path: path.to_path_buf(),
            position,
            message,
        }
    }

    /// Builds an error positioned at byte `offset` of the file's `text`.
    pub(super) fn at(
        kind: PermissionErrorKind,
        path: &Path,
        text: &str,
        offset: usize,
        message: String,
    ) -> Self {
        let position = Position::from_offset(text, offset);
        Self::new(kind, path, Some(position), message)
    }

    pub fn kind(&self) -> PermissionErrorKind {
        self.kind
    }

    /// Returns the file, or the folder when the folder itself is the problem.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn position(&self) -> Option<Position> {
        self.position
    }

    /// Returns the 1-based line, when the error has a position.
    pub fn line(&self) -> Option<usize> {
        self.position.map(|position| position.line)
    }

    /// Returns the 1-based column in characters, when the error has a position.
    pub fn column(&self) -> Option<usize> {
        self.position.map(|position| position.column)
    }

    /// Returns what is wrong and what to do, without the path and position.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PermissionError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(position) => write!(
                formatter,
                "{}:{}:{}: {}",
                self.path.display(),
                position.line,
                position.column,
                self.message
            ),
            None => write!(formatter, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Every problem found by one load, sorted by file and position, and never empty.
///
/// `Display` renders one error per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PermissionErrors {
    errors: Vec<PermissionError>,
}

impl PermissionErrors {
    pub(super) fn one(error: PermissionError) -> Self {
        PermissionErrors {
            errors: vec![error],
        }
    }

    /// Wraps `errors`, or returns `None` when there are none.
    pub(super) fn from_vec(errors: Vec<PermissionError>) -> Option<Self> {
        if errors.is_empty() {
            None
        } else {
            Some(PermissionErrors { errors })
        }
    }

    pub fn errors(&self) -> &[PermissionError] {
        &self.errors
    }

    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Always false, because a load without problems returns a policy instead.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn into_vec(self) -> Vec<PermissionError> {
        self.errors
    }
}

impl fmt::Display for PermissionErrors {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                writeln!(formatter)?;
            }
            write!(formatter, "{error}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a PermissionErrors {
    type Item = &'a PermissionError;
    type IntoIter = std::slice::Iter<'a, PermissionError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_from_offset_table() {
        let text = "ab\ncé d\n\nx";
        let cases = [
            (0, 1, 1),
            (1, 1, 2),
            (3, 2, 1),
            // "é" is two bytes, so "d" starts at byte 7 but is the fourth character.
            (7, 2, 4),
            (9, 3, 1),
            (10, 4, 1),
            (500, 4, 2),
        ];
        for (offset, line, column) in cases {
            let position = Position::from_offset(text, offset);
            assert_eq!(position.line, line, "line of offset {offset}");
            assert_eq!(position.column, column, "column of offset {offset}");
        }
    }

    #[test]
    fn display_with_and_without_position() {
        let path = Path::new("perm/a.toml");
        let positioned = PermissionError::at(
            PermissionErrorKind::EmptyResources,
            path,
            "x\ny",
            2,
            "bad".to_string(),
        );
        let plain = PermissionError::new(PermissionErrorKind::Io, path, None, "gone".to_string());
        assert_eq!(positioned.to_string(), "perm/a.toml:2:1: bad");
        assert_eq!(plain.to_string(), "perm/a.toml: gone");

        let all = PermissionErrors::from_vec(vec![positioned, plain]);
        let rendered = all.map(|errors| errors.to_string());
        assert_eq!(
            rendered.as_deref(),
            Some("perm/a.toml:2:1: bad\nperm/a.toml: gone")
        );
    }

    #[test]
    fn errors_from_empty_vec_is_none() {
        assert!(PermissionErrors::from_vec(Vec::new()).is_none());
    }
}
