//! Integration tests of the harness, one module per area.

/// `faultline clean`'s default scope: this store's finished runs only.
mod clean;
/// In-process fakes: a register store, its client, a recording nemesis.
mod fake;
/// The interpreter driving clients and a nemesis, recording a history.
mod interpreter;
/// The local runtime's proxies and grudges.
mod local;
/// The netns runtime: namespaces, partitions, teardown (root).
mod netns;
/// The recorder's batching and crash-safety.
mod recorder;
/// Whole runs over the fakes: an interrupted run heals on the record.
mod run;
