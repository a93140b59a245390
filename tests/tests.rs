//! Integration tests of the `faultline` binary, one module per area.

/// `faultline check` and `faultline generate`: exit codes, outputs, errors.
mod check;
/// Every listed checker run by the binary on the checkers' golden histories.
mod checkers;
/// Whole test campaigns on each runtime, interruption and cleanup.
mod e2e;
/// Each workload end to end: the verdict its replication mode deserves.
mod workloads;
