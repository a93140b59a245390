//! faultline's built-in fault packages, registered by name (a test names
//! several: `--nemesis partition,kill,pause,clock,packet,file`):
//!
//! - `partition`: network partitions of every shape as grudges (halves,
//!   random halves, isolate one, majority/minority, majorities ring,
//!   minority third, bridge, the primaries, one-way), verified on the
//!   runtime after every change, then healed (`partition.rs`);
//! - `kill` and `pause`: SIGKILL and restart, SIGSTOP and SIGCONT, aimed at
//!   one node, a minority, a majority, all, or the primaries (`process.rs`);
//! - `clock`: bumps, strobes and skews of nodes' wall clocks through the
//!   database's clock control (`clock.rs`);
//! - `packet`: delay, loss, duplication, reordering and rate limits on the
//!   links out of some nodes (`packet.rs`);
//! - `file`: truncation, bit flips, rollbacks and lost unsynced writes of
//!   the database's data files while the node is down (`file.rs`).
//!
//! Each records `start-<kind>` / `stop-<kind>` events whose value names the
//! targets and parameters it actually used, so reports can shade fault
//! periods and a reader can see what happened. Packages are schedules of
//! `flip_flop(start, stop)` whose start operations draw their shape and
//! targets from the seeded generator; the harness staggers and mixes them
//! (`--nemesis-interval`) and runs every package's stop in the final heal.
//!
//! **Architecture invariant:** only nemeses break things. They do it through
//! the runtime (grudges, link shapes, node control) and the database
//! (kill/start, pause/resume, clock offsets, data files), never directly.

mod clock;
mod file;
mod packet;
mod partition;
mod process;
mod targets;

pub use clock::{
    ClockDraw, ClockFault, ClockLimits, ClockNemesis, SKEW_STEP_MS, bump_offsets, clock_limits,
    clock_record,
};
pub use file::{FileFault, FileNemesis, bitflip, damage, truncate};
pub use packet::{Behaviour, PacketNemesis, behaviours_of, packet_record, shape_of};
pub use partition::{Partition, PartitionKind, PartitionNemesis, partition_for};
pub use process::{KillNemesis, KillTargets, ProcessFault, ProcessNemesis};
pub use targets::{Targets, option_list, targets_option};

use harness::Registry;

/// Registers `partition`, `kill`, `pause`, `clock`, `packet` and `file`.
pub fn register_all(registry: &mut Registry) {
    registry.nemesis(
        "partition",
        "network partitions of every shape (options.partition = halves,random-halves,isolate-one,\
         majority-minority,majorities-ring,minority-third,bridge,primaries,one-way), verified, healed",
        partition::package,
    );
    registry.nemesis(
        "kill",
        "crashes nodes (kill -9) and restarts them; options.kill_targets = one,minority,majority,all,primaries",
        process::kill_package,
    );
    registry.nemesis(
        "pause",
        "pauses nodes (SIGSTOP) and resumes them; options.pause_targets = one,minority,majority,all,primaries",
        process::pause_package,
    );
    registry.nemesis(
        "clock",
        "bumps, strobes and skews wall clocks (options.clock_faults, clock_targets, clock_max_ms)",
        clock::package,
    );
    registry.nemesis(
        "packet",
        "delay, loss, duplication, reordering, rate limits on links (options.packet_faults, packet_targets)",
        packet::package,
    );
    registry.nemesis(
        "file",
        "truncates, bit-flips, rolls back data files or loses unsynced writes, node down \
         (options.file_faults, file_targets)",
        file::package,
    );
}
