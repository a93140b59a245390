//! faultline's deterministic simulation: refstore's protocol cores run in a
//! simulated world (network, disks, clocks, crashes and pauses) under the
//! real workloads' generators and the real nemesis schedules, and the run's
//! history is judged by the real checkers. One seed determines everything,
//! so a seed replays its run byte for byte, and simulated time runs as fast
//! as the CPU allows.
//!
//! Start at [`run::run_seed`] (one seed, in memory) and [`sweep::sweep`]
//! (many seeds on several threads, run directories for failures only);
//! [`cli`] is `faultline sim`; [`shrink`] narrows a failing seed's schedule. [`world`] is the world, [`client`] the
//! clients' way into it, [`faults`] the simulated nemesis.
//!
//! **Architecture invariant:** nothing in this crate reads a clock, the
//! OS's entropy or iterates a hash map where order reaches a decision, and
//! nothing runs on an async runtime: every random choice comes from a
//! ChaCha stream of the seed, and time is the event queue's. The one clock
//! read is the elapsed wall time reported next to the results.

pub mod cli;
pub mod client;
pub mod faults;
pub mod matrix;
pub mod run;
pub mod shrink;
pub mod sweep;
pub mod world;

pub use run::{Prepared, Replay, Simulated, prepare, run_seed};
pub use world::WorldConfig;

/// Why a simulation could not run (a run that found a bug is not an error:
/// its verdict says so).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A setting of the simulated world is out of range.
    #[error("simulation setting {field}: {why}")]
    Config {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The test asks for something the simulation does not simulate.
    #[error("the simulation cannot run this test: {0}")]
    Unsupported(String),
    /// Planning, checking or storing through the harness failed.
    #[error(transparent)]
    Harness(#[from] harness::HarnessError),
    /// Writing a run directory failed.
    #[error(transparent)]
    Store(#[from] results::StoreError),
    /// The cores cannot be built with these options (quorum settings that
    /// cannot work on this cluster, a bug of another mode).
    #[error(transparent)]
    Core(#[from] refstore::modes::CoreError),
    /// A simulated disk could not be framed as a log (a record that does
    /// not encode).
    #[error(transparent)]
    Wal(#[from] refstore::wal::WalError),
    /// The generator broke its protocol (proposed an operation and gave none).
    #[error("generator: {0}")]
    Generator(String),
}
