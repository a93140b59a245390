//! faultline's built-in fault packages, registered by name:
//!
//! - `partition`: alternately cuts the network (random halves, or one node
//!   isolated from the rest) and heals it;
//! - `kill`: alternately crashes nodes with SIGKILL (one at random, the
//!   primaries, a minority or all, per `options.kill_targets`) and restarts
//!   them.
//!
//! Each records `start-<kind>` / `stop-<kind>` events whose value names the
//! targets, so reports can shade fault periods. Packages are schedules of
//! `flip_flop(start, stop)`; the harness staggers and mixes them.
//!
//! **Architecture invariant:** only nemeses break things. They do it through
//! the runtime's grudges and the database's kill/start, never directly.

mod kill;
mod partition;

pub use kill::{KillNemesis, KillTargets};
pub use partition::{PartitionKind, PartitionNemesis, grudge_for};

use harness::Registry;

/// Registers `partition` and `kill`.
pub fn register_all(registry: &mut Registry) {
    registry.nemesis(
        "partition",
        "cuts the network into random halves or isolates one node, then heals",
        partition::package,
    );
    registry.nemesis(
        "kill",
        "crashes nodes (kill -9) and restarts them; options.kill_targets = one|primaries|minority|all",
        kill::package,
    );
}
