//! refstore's integration tests: real 3-node clusters on loopback, driven over the HTTP API.

/// Shared client helpers.
mod common;

/// Every mode serves the whole client API on a 3-node cluster.
mod modes;

/// The `refstore` binary: a whole cluster from one command, stopped by SIGTERM.
mod binary;

/// Restarts, recovery from the write-ahead log, and API error shapes.
mod recovery;
