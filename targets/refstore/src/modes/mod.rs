//! The replication protocol cores, one per mode family, and the `Mode` a
//! cluster runs: the one table of modes, which the node shell, the command
//! line and faultline's adapter all read. Adding a mode is a variant here
//! (its name, its promise, the core that serves it) and that core.

pub mod bug;
pub mod causal;
pub mod crdt;
pub mod lww;
pub mod paxos;
pub mod quorum;
pub mod replog;
pub mod siblings;
#[cfg(test)]
mod testnet;

use crate::core::{Core, Timing};
use crate::types::{NodeId, Now};
use crate::wal::RecoveryPolicy;
use serde::{Deserialize, Serialize};
use std::fmt;

use self::bug::{Bug, BugError};
use self::causal::CausalCore;
use self::crdt::Resolution;
use self::lww::{Flavor, LwwCore};
use self::paxos::PaxosCore;
use self::quorum::{QuorumConfig, QuorumCore, QuorumError};
use self::replog::{Policy, ReplogCore};

/// The protocol core that serves a mode, with the setting that makes it
/// that mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreFamily {
    /// One replicated log (`replog::ReplogCore`) under a commit policy.
    Replog(Policy),
    /// Per-key CASPaxos (`paxos::PaxosCore`).
    Paxos,
    /// Last-write-wins replicas (`lww::LwwCore`).
    Lww(Flavor),
    /// Vector-clock causal replication (`causal::CausalCore`).
    Causal,
    /// Leaderless N/R/W quorums (`quorum::QuorumCore`).
    Quorum,
}

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
    /// Dynamo-style leaderless quorums (N replicas per key, R and W).
    Quorum,
}

impl Mode {
    /// Every mode, in the order of the README's table.
    pub const ALL: [Mode; 8] = [
        Mode::Raft,
        Mode::Paxos,
        Mode::Sync,
        Mode::Async,
        Mode::MultiLeader,
        Mode::Causal,
        Mode::Eventual,
        Mode::Quorum,
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
            Mode::Quorum => "quorum",
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

    /// Whether replicas accept concurrent updates of one key that must then be merged, so
    /// that the conflict resolution (`--resolution`) means something.
    pub fn resolves_conflicts(self) -> bool {
        matches!(self, Mode::MultiLeader | Mode::Eventual | Mode::Quorum)
    }

    /// Whether the mode serves conflict resolution `r`: lww everywhere, crdt where replicas
    /// accept concurrent updates, siblings in quorum mode only (the one whose coordinator
    /// reads before it writes and whose reads can return several versions).
    pub fn serves(self, r: Resolution) -> bool {
        match r {
            Resolution::Lww => true,
            Resolution::Crdt => self.resolves_conflicts(),
            Resolution::Siblings => self == Mode::Quorum,
        }
    }

    /// The core that serves this mode.
    pub fn core(self) -> CoreFamily {
        match self {
            Mode::Raft => CoreFamily::Replog(Policy::Raft),
            Mode::Sync => CoreFamily::Replog(Policy::Sync),
            Mode::Async => CoreFamily::Replog(Policy::Async),
            Mode::Paxos => CoreFamily::Paxos,
            Mode::MultiLeader => CoreFamily::Lww(Flavor::MultiLeader),
            Mode::Eventual => CoreFamily::Lww(Flavor::Eventual),
            Mode::Causal => CoreFamily::Causal,
            Mode::Quorum => CoreFamily::Quorum,
        }
    }

    /// What the mode promises, in one line (the README's table has more).
    pub fn promise(self) -> &'static str {
        match self {
            Mode::Raft => "linearizable; no acknowledged write is lost",
            Mode::Paxos => "linearizable per key; no acknowledged write is lost",
            Mode::Sync => "linearizable while the primary holds its lease",
            Mode::Async => "may lose acknowledged writes when the primary fails",
            Mode::MultiLeader => "converges; last write wins by wall clock, so skew loses writes",
            Mode::Causal => "causal+ consistency; available under partitions",
            Mode::Eventual => "converges; stale reads and lost concurrent writes",
            Mode::Quorum => {
                "N/R/W quorums; R+W>N reads see acknowledged writes unless clocks skew or a sloppy quorum stood in"
            }
        }
    }

    /// Every mode's name, comma-separated, for help and error messages.
    pub fn names() -> String {
        Mode::ALL.iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
    }
}

/// Who a node is, besides the records it persisted: what a mode's core
/// builder ([`WithCore`]) needs to build or rebuild that node's core.
#[derive(Clone, Debug)]
pub struct CoreSetup {
    /// This node's id.
    pub id: NodeId,
    /// The other nodes of the cluster (this node's own id is ignored).
    pub peers: Vec<NodeId>,
    /// Timers.
    pub timing: Timing,
    /// Seed of the core's randomness.
    pub seed: u64,
}

/// Something to do with a mode's core once its concrete type is known: the
/// node shell opens a write-ahead log of the core's record type and spawns
/// the core, the deterministic simulation builds every node's core and
/// keeps the builder to rebuild one after a crash. Both so run exactly the
/// core a mode names, built the same way.
pub trait WithCore {
    /// What doing it gives.
    type Output;
    /// Called once with the function that builds the mode's core for a
    /// node from the records it persisted and the time it starts at.
    fn with<C, F>(self, build: F) -> Self::Output
    where
        C: Core,
        F: Fn(&CoreSetup, Vec<C::Record>, Now) -> C + Clone + Send + Sync + 'static;
}

/// How a cluster's cores are configured beyond their mode: what [`Mode::with_core`]
/// builds them with, the same for the node shell and the simulation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreOptions {
    /// N, R, W and sloppiness (quorum mode only; the other modes ignore the default).
    pub quorum: QuorumConfig,
    /// How concurrent updates merge (multi-leader, eventual and quorum).
    pub resolution: Resolution,
    /// A protocol bug injected on purpose (off by default; refused outside its mode).
    pub bug: Option<Bug>,
}

/// Why a mode's cores cannot be built with the options given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The quorum settings cannot work on a cluster of that size.
    #[error("invalid quorum settings: {0}")]
    Quorum(#[from] QuorumError),
    /// The bug does not belong to the mode.
    #[error(transparent)]
    Bug(#[from] BugError),
    /// The mode does not serve the conflict resolution ([`Mode::serves`]).
    #[error(
        "--resolution {resolution} is not served by mode {mode}: crdt is a setting of \
         multi-leader, eventual and quorum, siblings of quorum only"
    )]
    Resolution {
        /// The resolution asked for.
        resolution: &'static str,
        /// The mode asked to serve it.
        mode: Mode,
    },
}

impl Mode {
    /// Hands `w` the builder of this mode's cores for a cluster of `nodes`
    /// nodes. The one place that says which core serves a mode and how it
    /// is built; fails when the quorum settings cannot work on a cluster of
    /// that size, the mode does not serve the resolution, or the injected bug
    /// is not one of this mode's.
    pub fn with_core<W: WithCore>(
        self,
        nodes: usize,
        options: &CoreOptions,
        w: W,
    ) -> Result<W::Output, CoreError> {
        let CoreOptions { quorum, resolution, bug } = *options;
        // Checked here, the one place every core is built (node shell and simulation
        // alike): a core handed a resolution its mode does not serve would answer
        // with a merge its promise does not cover.
        if !self.serves(resolution) {
            return Err(CoreError::Resolution { resolution: resolution.name(), mode: self });
        }
        if let Some(bug) = bug {
            bug.check_mode(self)?;
        }
        let peers = |c: &CoreSetup| c.peers.clone();
        Ok(match self.core() {
            CoreFamily::Replog(p) => w.with(move |c: &CoreSetup, recs, now| {
                ReplogCore::new(c.id, peers(c), p, c.timing, c.seed, recs, now).with_bug(bug)
            }),
            CoreFamily::Paxos => w.with(move |c: &CoreSetup, recs, _| {
                PaxosCore::new(c.id, peers(c), c.timing, c.seed, recs).with_bug(bug)
            }),
            CoreFamily::Lww(flavor) => w.with(move |c: &CoreSetup, recs, _| {
                LwwCore::new(c.id, peers(c), (flavor, resolution), c.timing, c.seed, recs)
            }),
            CoreFamily::Causal => w.with(move |c: &CoreSetup, recs, _| {
                CausalCore::new(c.id, peers(c), c.timing, c.seed, recs)
            }),
            CoreFamily::Quorum => {
                let q = quorum.resolve(nodes)?;
                w.with(move |c: &CoreSetup, recs, now| {
                    QuorumCore::new(c.id, peers(c), (q, resolution), c.timing, c.seed, recs, now)
                })
            }
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("refstore has no mode {s:?}; modes: {}", Mode::names()))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds nothing: only whether `with_core` accepts the options matters.
    struct Accept;

    impl WithCore for Accept {
        type Output = ();
        fn with<C, F>(self, _build: F)
        where
            C: Core,
            F: Fn(&CoreSetup, Vec<C::Record>, Now) -> C + Clone + Send + Sync + 'static,
        {
        }
    }

    #[test]
    fn every_core_is_refused_a_resolution_its_mode_does_not_serve() {
        for mode in Mode::ALL {
            for resolution in [Resolution::Lww, Resolution::Crdt, Resolution::Siblings] {
                let options = CoreOptions { resolution, ..CoreOptions::default() };
                let built = mode.with_core(5, &options, Accept);
                if mode.serves(resolution) {
                    assert_eq!(built, Ok(()), "{mode} serves {}", resolution.name());
                } else {
                    let err = built.expect_err("refused");
                    let want = CoreError::Resolution { resolution: resolution.name(), mode };
                    assert_eq!(err, want);
                    assert!(err.to_string().contains("is not served by mode"), "{err}");
                }
            }
        }
        assert!(Mode::Quorum.serves(Resolution::Siblings));
        assert!(!Mode::Eventual.serves(Resolution::Siblings));
        assert!(!Mode::Raft.serves(Resolution::Crdt));
    }
}
