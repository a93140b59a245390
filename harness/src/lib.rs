//! faultline's runtime: it turns a test specification into a running
//! cluster, a workload under faults, a recorded history and a verdict.
//!
//! - `node`: the node-control and runtime traits, grudges, link shapes;
//!   `runtime`: the `local`, `netns` and `ssh` runtimes.
//! - `plugin`: the DB, Client, Nemesis and Workload traits and the
//!   `Registry` that names them.
//! - `generator`: Jepsen's generator vocabulary.
//! - `interpreter`: concurrent clients and the nemesis driven by a generator.
//! - `recorder`: the crash-safe `history.jsonl` writer.
//! - `run`: the whole test from setup to verdict; `finish` owns the end of
//!   every run (check the history, write `results.json`, draw
//!   `report.html`), for `test` and `analyze` alike. The test spec and the
//!   run directory are the store's types (`results::spec`,
//!   `results::rundir`), re-exported here.
//! - `cli`: every command as a library function over a `Registry`, so a
//!   plugin author's own binary has the whole command line.
//!
//! Dependencies: `checkers` and `results` (the store) below, plugins and
//! the binary above; `results` never sees a harness type.
//!
//! **Architecture invariant:** only nemeses break things. Runtimes expose
//! the means (grudges, signals, link shapes) and DB adapters expose kill and
//! pause, but nothing calls them except a `Nemesis` and teardown.

pub mod campaign;
pub mod checks;
pub mod clean;
pub mod cli;
pub mod clock;
pub mod error;
pub mod faketime;
pub mod finish;
pub mod generator;
pub mod interpreter;
pub mod logging;
pub mod memory;
pub mod node;
pub mod on_node;
pub mod plugin;
pub mod recorder;
pub mod run;
pub mod runtime;
pub mod spec;

pub use error::{HarnessError, Result};
pub use generator::{Gen, Invocation};
pub use node::{Grudge, NodeControl, Runtime};
pub use plugin::{
    Client, Completion, DataFile, Db, Durability, Nemesis, NemesisPackage, Registry, TestEnv,
    Workload,
};
pub use results::rundir::RunDir;
pub use spec::TestSpec;
