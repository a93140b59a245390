//! The interface between a replication protocol core and the runtime shell that drives it.
//!
//! A core does no I/O and reads no clock: the shell feeds it ticks, peer messages and client
//! requests (each with the current [`Now`]) and collects a [`Ready`] batch of records to make
//! durable, messages to send and replies to give, in that order. Because everything a core
//! depends on comes in through these calls, unit tests step a core by hand and a later
//! deterministic simulation can drive the very same code.

use crate::types::{ClientOp, CoreStatus, NodeId, Now, OpError, Reply, RequestId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Timer settings shared by the modes; every duration is in monotonic milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How often the shell calls [`Core::tick`].
    pub tick_ms: u64,
    /// How often a leader or primary sends heartbeats.
    pub heartbeat_ms: u64,
    /// The lower bound of the randomized election timeout. A follower that heard from a
    /// leader less than this long ago neither votes for another candidate nor campaigns.
    pub election_min_ms: u64,
    /// The upper bound (exclusive) of the randomized election timeout.
    pub election_max_ms: u64,
    /// How often eventual and multi-leader nodes gossip, and causal nodes run anti-entropy.
    pub gossip_ms: u64,
    /// How often an `async` primary ships the entries it has acknowledged since its last
    /// shipment, as a log shipper does (WAL or binlog shipping in batches). Whatever it
    /// acknowledged within the last interval is on no backup yet: that is the window in
    /// which a primary crash loses acknowledged writes.
    pub ship_ms: u64,
    /// How long a core works on one client request before answering `timeout` or
    /// `unavailable` itself.
    pub request_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            tick_ms: 10,
            heartbeat_ms: 50,
            election_min_ms: 300,
            election_max_ms: 600,
            gossip_ms: 200,
            ship_ms: 200,
            request_ms: 4000,
        }
    }
}

/// Everything a core emitted since the last [`Core::take_ready`].
#[derive(Debug)]
pub struct Ready<M, R> {
    /// Records to append to the write-ahead log before any message or reply leaves.
    pub persist: Vec<R>,
    /// Whether the records must be fsynced (the mode promises durability) or only written.
    pub sync: bool,
    /// Messages to peers.
    pub messages: Vec<(NodeId, M)>,
    /// Answers to client requests.
    pub replies: Vec<(RequestId, Result<Reply, OpError>)>,
}

impl<M, R> Ready<M, R> {
    /// An empty batch.
    pub fn new(sync: bool) -> Self {
        Ready { persist: Vec::new(), sync, messages: Vec::new(), replies: Vec::new() }
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty() && self.messages.is_empty() && self.replies.is_empty()
    }
}

/// The contract between a replication protocol and the shell.
///
/// A core is built from the records it persisted earlier (recovery), then driven by the three
/// input methods. After every batch of inputs the shell calls [`Core::take_ready`] and must
/// persist `persist` (fsynced when `sync`) before sending `messages` or delivering `replies`:
/// that order is what makes "acknowledged" mean "durable" in the modes that promise it.
pub trait Core: Send + 'static {
    /// The peer message type. `Clone` so a simulated network can duplicate it.
    type Msg: Serialize + DeserializeOwned + Clone + Debug + Send + 'static;
    /// The write-ahead log record type. `Clone` so a simulated disk can hand
    /// a restarted core what it kept.
    type Record: Serialize + DeserializeOwned + Clone + Debug + Send + 'static;

    /// Advances timers. Called every [`Timing::tick_ms`].
    fn tick(&mut self, now: Now);
    /// Handles one message from peer `from`. Messages may be lost, duplicated or reordered.
    fn step(&mut self, now: Now, from: NodeId, msg: Self::Msg);
    /// Starts a client request; its answer appears in a later `Ready` under `req`.
    fn propose(&mut self, now: Now, req: RequestId, op: ClientOp);
    /// Takes everything emitted since the last call.
    fn take_ready(&mut self) -> Ready<Self::Msg, Self::Record>;
    /// The mode-specific part of `/admin/status`.
    fn status(&self) -> CoreStatus;
}

/// The other nodes of a cluster, sorted and without duplicates or `id` itself.
pub fn other_nodes(id: NodeId, peers: Vec<NodeId>) -> Vec<NodeId> {
    let set: std::collections::BTreeSet<NodeId> = peers.into_iter().filter(|p| *p != id).collect();
    set.into_iter().collect()
}

/// A periodic gossip timer that picks one random peer per round.
#[derive(Clone, Debug, Default)]
pub struct GossipTimer {
    next: u64,
}

impl GossipTimer {
    /// The peer to gossip with now, if a round is due (at most one every `interval_ms`).
    pub fn due(
        &mut self,
        now: Now,
        interval_ms: u64,
        peers: &[NodeId],
        rng: &mut impl rand::Rng,
    ) -> Option<NodeId> {
        if now.mono_ms < self.next || peers.is_empty() {
            return None;
        }
        self.next = now.mono_ms + interval_ms;
        Some(peers[rng.random_range(0..peers.len())])
    }
}

/// The number of nodes that form a majority of `n`.
pub fn majority(n: usize) -> usize {
    n / 2 + 1
}
