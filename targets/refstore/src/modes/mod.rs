//! The replication protocol cores, one per mode family, and the `Mode` a cluster runs.

pub mod causal;
pub mod lww;
pub mod paxos;
pub mod replog;
#[cfg(test)]
mod testnet;

use crate::wal::RecoveryPolicy;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The replication mode of a cluster (every node of a cluster runs the same one).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Raft log replication; linearizable.
    Raft,
    /// Per-key CASPaxos; linearizable.
    Paxos,
    /// Synchronous primary-backup with leases; linearizable.
    Sync,
    /// Asynchronous primary-backup; may lose acknowledged writes.
    Async,
    /// Every node writes; last-write-wins on wall-clock timestamps.
    MultiLeader,
    /// Causal+ consistency with vector clocks.
    Causal,
    /// Eventual consistency by anti-entropy gossip.
    Eventual,
}

impl Mode {
    /// Every mode, in the order of the README's table.
    pub const ALL: [Mode; 7] = [
        Mode::Raft,
        Mode::Paxos,
        Mode::Sync,
        Mode::Async,
        Mode::MultiLeader,
        Mode::Causal,
        Mode::Eventual,
    ];

    /// The name used on the command line and in the APIs.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Raft => "raft",
            Mode::Paxos => "paxos",
            Mode::Sync => "sync",
            Mode::Async => "async",
            Mode::MultiLeader => "multi-leader",
            Mode::Causal => "causal",
            Mode::Eventual => "eventual",
        }
    }

    /// Whether an acknowledged write is fsynced first (and so survives any crash).
    pub fn fsyncs_before_ack(self) -> bool {
        matches!(self, Mode::Raft | Mode::Paxos | Mode::Sync | Mode::Causal)
    }

    /// What recovery does with a corrupt log by default: the modes that promise durability
    /// refuse to start, the others cut the log and let peers repair the node.
    pub fn default_recovery(self) -> RecoveryPolicy {
        if self.fsyncs_before_ack() { RecoveryPolicy::Refuse } else { RecoveryPolicy::Truncate }
    }

    /// Whether one node coordinates writes (the others answer `not-leader`).
    pub fn has_leader(self) -> bool {
        matches!(self, Mode::Raft | Mode::Sync | Mode::Async)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
