//! Typed errors for reading and writing the store. Each names the file and,
//! where the format has them, the line and field at fault.

use std::path::{Path, PathBuf};

use checkers::HistoryError;

/// Something in a run directory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file system refused (missing file, permissions, full disk).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A JSON file (`results.json`) does not parse or has a field of the wrong shape.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What serde_json said, which names the field when it knows it.
        message: String,
    },
    /// A test specification is wrong; `field` names what is wrong.
    #[error("{source_name}: field `{field}`: {message}")]
    Spec {
        /// The file (or `command line`) the spec came from, with the line
        /// where the parser gave one.
        source_name: String,
        /// The field that is wrong.
        field: String,
        /// What is wrong, in words.
        message: String,
    },
    /// A file was written by a newer faultline in a format this one does not read.
    #[error(
        "{}: field `version` is {found}, but this faultline reads {format} up to version {supported}; \
         use a newer faultline to read this run",
        path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The format name (`faultline-results`).
        format: &'static str,
        /// The version in the file.
        found: u64,
        /// The newest version this code reads.
        supported: u64,
    },
    /// A file is some other JSON document, not what its name promises.
    #[error("{}: field `format` is {found:?}, expected {expected:?}", path.display())]
    WrongFormat {
        /// The file.
        path: PathBuf,
        /// The format this file should have.
        expected: &'static str,
        /// What it says it is.
        found: String,
    },
    /// The directory is not a run (it has neither `test.toml` nor `history.jsonl`).
    #[error("{}: not a run directory ({reason})", path.display())]
    NotARun {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The run's history could not be read. (Boxed: a history error
    /// carries a location and would make every result of this crate large.)
    #[error(transparent)]
    History(Box<HistoryError>),
}

impl From<HistoryError> for StoreError {
    fn from(e: HistoryError) -> StoreError {
        StoreError::History(Box::new(e))
    }
}

impl StoreError {
    /// A spec error from `source_name` about `field`.
    pub fn spec(
        source_name: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> StoreError {
        StoreError::Spec {
            source_name: source_name.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// An I/O error about `path`.
    pub fn io(path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io { path: path.to_owned(), source }
    }

    pub(crate) fn json(path: &Path, e: &serde_json::Error) -> StoreError {
        StoreError::Json {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        }
    }
}
