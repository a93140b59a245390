//! Typed errors of the harness. These are failures of the harness or of the
//! environment (a node would not start, a namespace could not be created),
//! never outcomes of the system under test: those are recorded as `fail` or
//! `info` operations in the history.

use std::path::PathBuf;

/// Something the harness itself could not do.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A test specification is wrong; `field` names what is wrong.
    #[error("{source_name}: field `{field}`: {message}")]
    Spec {
        /// The file (or `command line`) the spec came from.
        source_name: String,
        /// The field that is wrong.
        field: String,
        /// What is wrong, in words.
        message: String,
    },
    /// A name (target, workload, nemesis, checker, runtime) is not registered.
    #[error("unknown {kind} {name:?}; known: {known}")]
    Unknown {
        /// What kind of plugin was looked up.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The registered names, comma-separated.
        known: String,
    },
    /// A node operation failed (starting a process, running a command,
    /// copying a file).
    #[error("node {node}: {action}: {message}")]
    Node {
        /// The node.
        node: String,
        /// What was being done.
        action: String,
        /// Why it failed.
        message: String,
    },
    /// A network fault could not be installed or removed.
    #[error("network: {0}")]
    Net(String),
    /// The runtime cannot do what was asked (a fault kind it does not
    /// implement, or a privilege it lacks).
    #[error("runtime {runtime} cannot {what}: {why}")]
    Unsupported {
        /// The runtime's name.
        runtime: String,
        /// What was asked.
        what: String,
        /// Why not.
        why: String,
    },
    /// The cluster did not become ready in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The run was interrupted (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
    /// An internal invariant did not hold (a bug in faultline or in a plugin).
    #[error("internal error: {0}")]
    Internal(String),
    /// A checker could not be built or could not read the history.
    #[error(transparent)]
    Check(Box<checkers::CheckError>),
    /// The recorded history could not be read back.
    #[error(transparent)]
    History(Box<checkers::HistoryError>),
    /// The store could not write or read a run's files.
    #[error(transparent)]
    Store(Box<results::StoreError>),
}

// Boxed, because the checkers' errors carry a whole `Location` and would
// make every harness `Result` large.
impl From<checkers::CheckError> for HarnessError {
    fn from(e: checkers::CheckError) -> HarnessError {
        HarnessError::Check(Box::new(e))
    }
}

impl From<checkers::HistoryError> for HarnessError {
    fn from(e: checkers::HistoryError) -> HarnessError {
        HarnessError::History(Box::new(e))
    }
}

impl HarnessError {
    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> HarnessError {
        HarnessError::Io { path: path.into(), source }
    }

    /// A node error.
    pub fn node(
        node: impl Into<String>,
        action: impl Into<String>,
        message: impl std::fmt::Display,
    ) -> HarnessError {
        HarnessError::Node {
            node: node.into(),
            action: action.into(),
            message: message.to_string(),
        }
    }

    /// A spec error from `source_name` about `field`.
    pub fn spec(
        source_name: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> HarnessError {
        HarnessError::Spec {
            source_name: source_name.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The store's errors become harness errors; a bad spec stays a spec error
/// (its exit code is "bad input", not "the harness failed").
impl From<results::StoreError> for HarnessError {
    fn from(e: results::StoreError) -> HarnessError {
        match e {
            results::StoreError::Spec { source_name, field, message } => {
                HarnessError::Spec { source_name, field, message }
            }
            results::StoreError::Io { path, source } => HarnessError::Io { path, source },
            results::StoreError::History(h) => HarnessError::History(h),
            other => HarnessError::Store(Box::new(other)),
        }
    }
}

/// Shorthand for results of harness operations.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
