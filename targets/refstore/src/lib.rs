//! refstore: faultline's reference replicated key-value store, with eight replication modes
//! whose promises are known exactly (see the crate README's table).
//!
//! Each mode is a protocol core without I/O ([`core::Core`]): ticks, peer messages and
//! client requests go in; log records, messages and replies come out. [`node`] drives a core
//! with tokio, a write-ahead log ([`wal`]), the one-way peer transport ([`transport`]) and
//! the HTTP API. [`main_from_args`] is the command line.

pub mod cli;
pub mod clock;
pub mod cluster;
pub mod core;
mod http;
pub mod kv;
pub mod modes;
pub mod node;
pub mod transport;
pub mod types;
pub mod wal;

pub use cli::main_from_args;
pub use modes::Mode;
