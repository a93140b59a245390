//! Test specifications. The type lives with the store (`results::spec`),
//! because `test.toml` is one of the store's files; the harness builds
//! specs from flags and files, writes them into each run and reads them
//! back to replay or analyze a run.

pub use results::spec::{RuntimeKind, SshSpec, TestSpec};
