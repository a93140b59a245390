//! Typed errors for broken input. A consistency violation is never an error:
//! it is a `Verdict`. These are for histories that cannot be read, or that a
//! checker cannot interpret, and they always say where the problem is.

use std::fmt;

/// Where in an input file something went wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// The file (or other source name) being read.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// The field of the operation that was wrong (`value`, `type`, ...), when one was.
    pub field: Option<String>,
}

impl Location {
    /// A location in `file` at `line`.
    pub fn new(file: impl Into<String>, line: Option<u64>) -> Self {
        Location { file: file.into(), line, column: None, field: None }
    }

    /// The same location, naming the field that was wrong.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The same location with a column.
    #[must_use]
    pub fn column(mut self, column: u64) -> Self {
        self.column = Some(column);
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.file.is_empty() { "<input>" } else { &self.file })?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, " (field `{field}`)")?;
        }
        Ok(())
    }
}

/// A history that could not be read or does not make sense as a history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The path that failed.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The text does not follow the format's syntax.
    #[error("{location}: expected {expected}, found {found}")]
    Syntax {
        /// Where.
        location: Location,
        /// What the reader was looking for.
        expected: String,
        /// What it saw instead.
        found: String,
    },
    /// The text parses, but an operation in it is not a valid operation, or
    /// the operations do not form a history (a completion with no invocation).
    #[error("{location}: {message}")]
    Invalid {
        /// Where.
        location: Location,
        /// What is wrong, in words.
        message: String,
    },
    /// The file holds no operations at all.
    #[error("{0}: the history is empty (no operations); was the test able to start?")]
    Empty(String),
    /// No reader recognises the file.
    #[error(
        "{path}: cannot tell the history format ({hint}); pass --format jsonl|edn|jepsen-log|porcupine-kv|elle-json"
    )]
    UnknownFormat {
        /// The file.
        path: String,
        /// What was seen at the start of the file.
        hint: String,
    },
}

/// A history that reads fine but that a checker cannot interpret: a function
/// the model does not know, a value of the wrong shape, a bad option.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// An operation does not fit the checker's model.
    #[error("{location}: {message}")]
    BadOp {
        /// Where the operation came from.
        location: Location,
        /// What is wrong, in words.
        message: String,
    },
    /// The checker was configured wrongly.
    #[error("{0}")]
    BadOption(String),
    /// The history could not be paired into operations.
    #[error(transparent)]
    History(#[from] HistoryError),
}
