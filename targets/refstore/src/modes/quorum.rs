//! Dynamo-style leaderless quorum replication: the core behind `quorum`.
//!
//! Every key has N home replicas, the first N distinct nodes met walking a consistent-hash
//! ring clockwise from the key's hash (each node owns [`VNODES`] points on the ring, so keys
//! spread evenly). The node a client talks to coordinates the operation, whether or not it is
//! one of the key's replicas:
//!
//! - a write is stamped with a last-write-wins [`Version`] (the coordinator's wall clock, host
//!   clock plus the nemesis' offset, never decreasing per node; ties broken by node id, exactly
//!   as `multi-leader` does, so clock skew decides which of two writes survives), sent to the
//!   replicas, and acknowledged once W of them have stored it;
//! - a read asks the replicas and, once R have answered, takes the newest version. Read repair
//!   runs on every read: every replica that answered with an older version (or not at all) is
//!   sent the newest one, and the read returns only once W replicas hold what it returns, so a
//!   later quorum read cannot go back to an older value (Cassandra's blocking read repair);
//! - an append reads as above, then writes the longer list as a new version: a read-modify-write
//!   with no guard, so concurrent appends lose all but one (a lost update);
//! - a counter's transaction (increments and reads of one key, all faultline's counter and
//!   unique-ids clients send) reads as above and writes the new total back the same way, so
//!   concurrent increments lose all but one too, and two ids can repeat.
//!
//! A failure detector (pings every `heartbeat_ms`; a node silent for `election_min_ms` is
//! presumed down) decides where writes go. With a **sloppy** quorum, a down home replica is
//! replaced by the next live node on the ring, which stores the write as a *hint* for that
//! replica, counts towards W, and hands the hint off once it hears from the replica again
//! (every `gossip_ms`). Reads go to the first N live nodes the same way, and a stand-in answers
//! with the hints it holds. A **strict** quorum only ever uses home replicas: with fewer than W
//! (R) of them believed alive it refuses at once (`unavailable`, nothing was sent); if they
//! were believed alive but too few answer in time, the write is `timeout` (it may have been
//! stored on some replicas, and read repair or anti-entropy may spread it later).
//!
//! Anti-entropy: every `gossip_ms` a node sends one random peer the versions of the keys both
//! replicate; the peer pushes back what it has newer and pulls what it lacks (as `lww.rs`).
//!
//! With `--resolution crdt` (see `crdt.rs`) versions are conflict-free states instead: a
//! read answers the join of the R states it got (and repairs replicas to it), an append
//! writes back that join plus one new element, which replicas join into what they hold, so
//! concurrent appends through different coordinators are all kept; writes are refused. A
//! counter is a PN-counter: the coordinator adds to its own entry, which it keeps per key in
//! its log (the R replicas it reads need not hold its latest entry, and building on an older
//! one would write a total the join ignores), and writes back the join with that entry
//! raised. Ids are still the sum read after one's own increment, so two coordinators that
//! read the same join hand out the same id: a PN-counter does not make ids unique.
//!
//! With `--resolution siblings` (see `siblings.rs`) a key's value is a set of concurrent
//! versions, each with a unique dot (this node and its next sequence number) and the context
//! its client read. A write stores one new version superseding the context it carries (none
//! for a plain write, the context a read returned for a `put`) and tells the client the
//! context covering it; replicas join what they receive, so concurrent writes all stay as
//! siblings. A read answers every sibling of the join of the R sets it got with their
//! context, and repairs replicas to that join; an append merges the siblings' lists, adds its
//! element and writes one version superseding what it read. Read repair, hinted handoff and
//! anti-entropy all merge by the same join.
//!
//! Compare-and-set and every other transaction are refused (`bad-request`, definite): a
//! leaderless quorum has no single place that orders a guarded read-modify-write against
//! concurrent writers (Dynamo has none), and emulating one on top would promise what the mode
//! cannot keep. Under siblings counters are refused too.
//!
//! The write-ahead log (values, hints held and hints handed off, and under crdt this node's
//! counter entries) is written but not fsynced, as in `multi-leader`: a killed process keeps
//! what it wrote, and other replicas hold copies.

use crate::core::{Core, GossipTimer, Ready, Timing, majority, other_nodes};
use crate::kv::execute;
use crate::modes::crdt::{Resolution, Slot, State, execute_crdt};
use crate::modes::lww::{Version, Versioned};
use crate::modes::siblings::SiblingSet;
use crate::types::{
    ClientOp, Context, CoreStatus, Key, MicroOp, NodeId, Now, OpError, Reply, RequestId, Value,
};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Points each node owns on the consistent-hash ring. More points spread keys more evenly
/// over few nodes; sixteen is plenty for test clusters of three to nine nodes.
pub const VNODES: u64 = 16;

/// A cluster's quorum settings as given (`--quorum-n`, `--quorum-r`, `--quorum-w`,
/// `--sloppy-quorum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuorumConfig {
    /// Replicas per key; clamped to the cluster's size.
    pub n: usize,
    /// Replicas a read waits for; defaults to a majority of the (clamped) N.
    pub r: Option<usize>,
    /// Replicas a write waits for; defaults to a majority of the (clamped) N.
    pub w: Option<usize>,
    /// Whether live non-replicas may stand in (with hints) for unreachable replicas.
    pub sloppy: bool,
}

impl Default for QuorumConfig {
    fn default() -> Self {
        QuorumConfig { n: 3, r: None, w: None, sloppy: true }
    }
}

/// The effective N, R and W of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quorum {
    /// Replicas per key.
    pub n: usize,
    /// Answers a read waits for.
    pub r: usize,
    /// Acknowledgements a write waits for.
    pub w: usize,
    /// Sloppy (hinted stand-ins count) or strict.
    pub sloppy: bool,
}

/// Quorum settings that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// N must be positive.
    #[error("quorum N must be at least 1")]
    ZeroN,
    /// R or W is outside 1..=N.
    #[error(
        "quorum {which} = {value} must be between 1 and N = {n} (N is clamped to the {nodes} nodes of the cluster)"
    )]
    OutOfRange {
        /// `R` or `W`.
        which: &'static str,
        /// The value given.
        value: usize,
        /// The effective N.
        n: usize,
        /// The cluster's size.
        nodes: usize,
    },
}

impl QuorumConfig {
    /// The effective settings on a cluster of `nodes` nodes: N is at most the node count, and
    /// R and W must lie within 1..=N.
    pub fn resolve(self, nodes: usize) -> Result<Quorum, QuorumError> {
        if self.n == 0 {
            return Err(QuorumError::ZeroN);
        }
        let n = self.n.min(nodes.max(1));
        let check = |which, v: Option<usize>| match v {
            None => Ok(majority(n)),
            Some(v) if (1..=n).contains(&v) => Ok(v),
            Some(value) => Err(QuorumError::OutOfRange { which, value, n, nodes }),
        };
        Ok(Quorum { n, r: check("R", self.r)?, w: check("W", self.w)?, sloppy: self.sloppy })
    }
}

/// A stable 64-bit hash (FNV-1a, then a SplitMix64 finalizer to spread short inputs): every
/// node must place keys identically, whatever its build, so no `std` hasher is used.
pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

fn key_hash(key: &Key) -> u64 {
    match key {
        Key::Int(i) => hash64(format!("i:{i}").as_bytes()),
        Key::Str(s) => hash64(format!("s:{s}").as_bytes()),
    }
}

/// The consistent-hash ring over a cluster's nodes.
#[derive(Clone, Debug)]
pub struct Ring {
    /// (point, owner), sorted by point.
    points: Vec<(u64, NodeId)>,
    nodes: usize,
}

impl Ring {
    /// The ring of `nodes`, [`VNODES`] points each.
    pub fn new(nodes: &[NodeId]) -> Ring {
        let set: BTreeSet<NodeId> = nodes.iter().copied().collect();
        let mut points: Vec<(u64, NodeId)> = set
            .iter()
            .flat_map(|n| {
                (0..VNODES).map(move |v| (hash64(format!("node:{n}:{v}").as_bytes()), *n))
            })
            .collect();
        points.sort_unstable();
        Ring { points, nodes: set.len() }
    }

    /// Every node in the order a key's replicas and then its stand-ins are chosen: distinct
    /// owners walking clockwise from the key's hash. The first N are the key's home replicas.
    pub fn preference_list(&self, key: &Key) -> Vec<NodeId> {
        let h = key_hash(key);
        let start = self.points.partition_point(|(p, _)| *p < h);
        let mut out: Vec<NodeId> = Vec::with_capacity(self.nodes);
        for i in 0..self.points.len() {
            let (_, node) = self.points[(start + i) % self.points.len()];
            if !out.contains(&node) {
                out.push(node);
                if out.len() == self.nodes {
                    break;
                }
            }
        }
        out
    }
}

/// What a replica answers a read with: its newest version of the key, if any.
type Found = Option<(Value, Version)>;

/// Messages between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Msg {
    /// Failure detection: "I am alive" (every message counts, this one is sent when idle).
    Ping,
    /// Store `entry`; as a hint for `hint_for` when that is another node.
    Write {
        /// The coordinator's operation.
        op: u64,
        /// The value and its version.
        entry: Versioned,
        /// The home replica this node stands in for, in a sloppy quorum.
        hint_for: Option<NodeId>,
    },
    /// The entry of operation `op` is stored.
    WriteAck {
        /// The coordinator's operation.
        op: u64,
    },
    /// Send your newest version of `key`.
    Read {
        /// The coordinator's operation.
        op: u64,
        /// The key.
        key: Key,
    },
    /// The answer to [`Msg::Read`].
    ReadReply {
        /// The coordinator's operation.
        op: u64,
        /// The newest version held (hints included), if any.
        found: Found,
    },
    /// Hinted handoff: values held for the receiver while it was unreachable.
    Handoff {
        /// The values.
        entries: Vec<Versioned>,
    },
    /// The receiver of a handoff stored these versions (or newer); the hints may go.
    HandoffAck {
        /// Key and version pairs.
        stored: Vec<(Key, Version)>,
    },
    /// Anti-entropy: the sender's versions of the keys both nodes replicate.
    Digest {
        /// Key and version pairs.
        versions: Vec<(Key, Version)>,
    },
    /// Anti-entropy: send me your values of these keys.
    Pull {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Anti-entropy: values the receiver should merge.
    Push {
        /// The values.
        entries: Vec<Versioned>,
    },
}

/// A write-ahead log record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Record {
    /// A value this node replicates.
    Put(Versioned),
    /// A value held for `home` until it can be handed off.
    Hint {
        /// The home replica.
        home: NodeId,
        /// The value.
        entry: Versioned,
    },
    /// This node's own entry of the PN-counter at `key` grew to `slot` (crdt): kept apart
    /// from the replicated values, since this node need not replicate the key.
    Slot {
        /// The key.
        key: Key,
        /// The entry's totals.
        slot: Slot,
    },
    /// `home` stored this version of `key`: the hint is gone.
    HintDone {
        /// The home replica.
        home: NodeId,
        /// The key.
        key: Key,
        /// The version handed off.
        version: Version,
    },
}

/// What a read phase leads to.
#[derive(Clone, Debug)]
enum Then {
    /// Answer the newest value (after read repair).
    Read,
    /// Append this element and write the list back.
    Append(Value),
    /// Run these increments and reads of the phase's key and write the counter back.
    Counter(Vec<MicroOp>),
}

#[derive(Clone, Debug)]
enum Phase {
    /// Waiting for R answers.
    Reading { answers: BTreeMap<NodeId, Found>, then: Then },
    /// Waiting for `entry` to be held by W nodes (a write, an append's write-back, or a
    /// read's repair), then answering `reply`.
    Writing { entry: Versioned, holders: BTreeSet<NodeId>, reply: Reply, new: bool },
}

/// One operation this node coordinates.
#[derive(Clone, Debug)]
struct Pending {
    req: RequestId,
    key: Key,
    /// Each node the operation uses, and the home replica it stands for (itself when it is
    /// one).
    targets: BTreeMap<NodeId, NodeId>,
    /// Nodes that answered the current phase.
    answered: BTreeSet<NodeId>,
    phase: Phase,
    deadline: u64,
    /// When messages were last (re)sent: the transport drops what it cannot deliver.
    sent_at: u64,
    /// The client has its answer; the operation lingers only to repair late readers.
    done: bool,
}

/// The quorum core.
#[derive(Debug)]
pub struct QuorumCore {
    id: NodeId,
    peers: Vec<NodeId>,
    ring: Ring,
    quorum: Quorum,
    resolution: Resolution,
    /// The last sequence number of this node's crdt appends or sibling writes.
    seq: u64,
    /// Under crdt, this node's own entry of each PN-counter it incremented, as it last wrote
    /// it. The R replicas a later increment reads need not hold that write (R + W <= N, a
    /// sloppy quorum, a write still in flight or timed out), and an entry is merged by
    /// maximum, so building on what they show would write a smaller total that the join
    /// then ignores: an acknowledged increment lost. The coordinator builds on this instead.
    slots: BTreeMap<Key, Slot>,
    timing: Timing,
    rng: SmallRng,
    store: BTreeMap<Key, (Value, Version)>,
    /// Values held for unreachable home replicas: home → key → value.
    hints: BTreeMap<NodeId, BTreeMap<Key, (Value, Version)>>,
    /// The highest version time this node issued.
    clock: i64,
    last_heard: BTreeMap<NodeId, u64>,
    next_ping: u64,
    next_handoff: u64,
    gossip: GossipTimer,
    ops: BTreeMap<u64, Pending>,
    next_op: u64,
    /// Messages to this node itself, handled before the call returns.
    local: VecDeque<Msg>,
    ready: Ready<Msg, Record>,
}

impl QuorumCore {
    /// Builds a node from its persisted records. Every peer is presumed alive at `now`.
    pub fn new(
        id: NodeId,
        peers: Vec<NodeId>,
        (quorum, resolution): (Quorum, Resolution),
        timing: Timing,
        seed: u64,
        records: Vec<Record>,
        now: Now,
    ) -> Self {
        let peers = other_nodes(id, peers);
        let mut all = peers.clone();
        all.push(id);
        let mut core = QuorumCore {
            id,
            ring: Ring::new(&all),
            last_heard: peers.iter().map(|p| (*p, now.mono_ms)).collect(),
            peers,
            quorum,
            resolution,
            seq: 0,
            slots: BTreeMap::new(),
            timing,
            rng: SmallRng::seed_from_u64(seed),
            store: BTreeMap::new(),
            hints: BTreeMap::new(),
            clock: 0,
            next_ping: 0,
            next_handoff: 0,
            gossip: GossipTimer::default(),
            ops: BTreeMap::new(),
            next_op: 1,
            local: VecDeque::new(),
            ready: Ready::new(false),
        };
        for r in records {
            match r {
                Record::Put(e) => {
                    core.merge(e, false);
                }
                Record::Hint { home, entry } => {
                    core.hold_hint(home, entry, false);
                }
                Record::HintDone { home, key, version } => {
                    core.drop_hint(home, &key, version, false)
                }
                Record::Slot { key, slot } => {
                    let e = core.slots.entry(key).or_default();
                    *e = e.max(slot);
                }
            }
        }
        if resolution == Resolution::Crdt {
            // What this node holds as a replica counts too (a log written before slots were
            // logged, or an entry repaired back to it).
            for (k, (v, _)) in &core.store {
                if let Ok(state) = State::from_json(k, v) {
                    let mine = state.slot(id);
                    if mine != Slot::default() {
                        let e = core.slots.entry(k.clone()).or_default();
                        *e = e.max(mine);
                    }
                }
            }
        }
        if resolution.joins() {
            // A coordinator's dots may live only on other replicas; the wall clock in the
            // sequence number keeps a restarted node's new dots apart from them too.
            let seen = core
                .store
                .iter()
                .map(|(k, (v, _))| match resolution {
                    Resolution::Crdt => State::from_json(k, v).map(|s| s.max_seq_of(id)),
                    _ => SiblingSet::from_json(k, v).map(|s| s.max_seq_of(id)),
                })
                .filter_map(Result::ok)
                .max()
                .unwrap_or(0);
            core.seq = seen.max(u64::try_from(now.wall_us).unwrap_or(0));
        }
        core
    }

    /// The value a key has in this node's own store, as a client would read it (for tests).
    pub fn value(&self, key: &Key) -> Value {
        self.resolution.as_read(key, self.store.get(key).map(|(v, _)| v))
    }

    /// How many hints this node holds for `home` (for tests).
    pub fn hints_for(&self, home: NodeId) -> usize {
        self.hints.get(&home).map_or(0, BTreeMap::len)
    }

    /// The key's home replicas.
    pub fn home(&self, key: &Key) -> Vec<NodeId> {
        let mut p = self.ring.preference_list(key);
        p.truncate(self.quorum.n);
        p
    }

    fn alive(&self, node: NodeId, now: Now) -> bool {
        node == self.id
            || self
                .last_heard
                .get(&node)
                .is_some_and(|t| now.mono_ms.saturating_sub(*t) < self.timing.election_min_ms)
    }

    fn send(&mut self, to: NodeId, msg: Msg) {
        if to == self.id {
            self.local.push_back(msg);
        } else {
            self.ready.messages.push((to, msg));
        }
    }

    fn drain_local(&mut self, now: Now) {
        while let Some(msg) = self.local.pop_front() {
            self.handle(now, self.id, msg);
        }
    }

    /// Merges `entry` into the store (lww: keeps it if newer; crdt: joins it); returns
    /// whether anything changed. A crdt entry that is not a state is dropped (see `lww.rs`).
    fn merge(&mut self, entry: Versioned, persist: bool) -> bool {
        let Ok(Some((value, version))) = self.resolution.merged(self.store.get(&entry.key), &entry)
        else {
            return false;
        };
        if self.resolution == Resolution::Lww && entry.version.node == self.id {
            self.clock = self.clock.max(entry.version.time);
        }
        self.store.insert(entry.key.clone(), (value.clone(), version));
        if persist {
            self.ready.persist.push(Record::Put(Versioned { key: entry.key, value, version }));
        }
        true
    }

    fn hold_hint(&mut self, home: NodeId, entry: Versioned, persist: bool) {
        let held = self.hints.entry(home).or_default();
        let Ok(Some((value, version))) = self.resolution.merged(held.get(&entry.key), &entry)
        else {
            return;
        };
        held.insert(entry.key.clone(), (value.clone(), version));
        if persist {
            let entry = Versioned { key: entry.key, value, version };
            self.ready.persist.push(Record::Hint { home, entry });
        }
    }

    fn drop_hint(&mut self, home: NodeId, key: &Key, version: Version, persist: bool) {
        let resolution = self.resolution;
        let Some(held) = self.hints.get_mut(&home) else { return };
        if held.get(key).is_some_and(|(_, v)| resolution.covers(version, *v)) {
            held.remove(key);
            if persist {
                let key = key.clone();
                self.ready.persist.push(Record::HintDone { home, key, version });
            }
        }
        if held.is_empty() {
            self.hints.remove(&home);
        }
    }

    /// The newest version of `key` here (under crdt, the join), in the store or among the
    /// hints held for others.
    fn newest(&self, key: &Key) -> Found {
        let held = self.hints.values().filter_map(|h| h.get(key));
        let all = self.store.get(key).into_iter().chain(held);
        // Every state here was merged once already, so the join cannot fail; if it did, the
        // store's own value is still an honest answer.
        self.resolution.combine(key, all).unwrap_or_else(|_| self.store.get(key).cloned())
    }

    /// Starts a write of one new sibling superseding `context`; the client is told the
    /// context that covers the new version, so its next write supersedes it.
    fn write_sibling(
        &mut self,
        now: Now,
        req: RequestId,
        key: Key,
        value: Value,
        context: Context,
    ) {
        self.seq += 1;
        let set = SiblingSet::single(self.id, self.seq, value, context);
        let reply = Reply::Written { context: set.context() };
        let entry =
            Versioned { key: key.clone(), value: set.to_json(), version: set.fingerprint() };
        let phase = Phase::Writing { entry, holders: BTreeSet::new(), reply, new: true };
        self.start(now, req, key, phase);
    }

    fn new_version(&mut self, now: Now) -> Version {
        let time = now.wall_us.max(self.clock + 1);
        self.clock = time;
        Version { time, node: self.id }
    }

    /// The nodes an operation on `key` uses, each with the home replica it stands for, or
    /// `unavailable` when fewer than `needed` are believed alive.
    fn targets(
        &self,
        key: &Key,
        needed: usize,
        now: Now,
    ) -> Result<BTreeMap<NodeId, NodeId>, OpError> {
        let pref = self.ring.preference_list(key);
        let (home, rest) = pref.split_at(self.quorum.n.min(pref.len()));
        let live = home.iter().filter(|h| self.alive(**h, now)).count();
        let mut targets: BTreeMap<NodeId, NodeId> = BTreeMap::new();
        if self.quorum.sloppy {
            let mut spare = rest.iter().filter(|s| self.alive(**s, now));
            for h in home {
                if self.alive(*h, now) {
                    targets.insert(*h, *h);
                } else if let Some(s) = spare.next() {
                    targets.insert(*s, *h);
                }
            }
        } else {
            // Strict: only home replicas, sent to even when suspected (a suspicion may be
            // wrong), but refused up front when too few are believed alive.
            targets.extend(home.iter().map(|h| (*h, *h)));
            if live < needed {
                return Err(OpError::Unavailable(format!(
                    "strict quorum: {live} of the {} home replicas of key {key} are reachable, {needed} needed",
                    home.len()
                )));
            }
        }
        let reachable = targets.keys().filter(|t| self.alive(**t, now)).count();
        if reachable < needed {
            return Err(OpError::Unavailable(format!(
                "sloppy quorum: {reachable} live nodes for key {key}, {needed} needed"
            )));
        }
        Ok(targets)
    }

    fn start(&mut self, now: Now, req: RequestId, key: Key, phase: Phase) {
        let needed = match phase {
            Phase::Reading { .. } => self.quorum.r,
            Phase::Writing { .. } => self.quorum.w,
        };
        let targets = match self.targets(&key, needed, now) {
            Ok(t) => t,
            Err(e) => {
                self.ready.replies.push((req, Err(e)));
                return;
            }
        };
        let op = self.next_op;
        self.next_op += 1;
        let pending = Pending {
            req,
            key,
            targets,
            answered: BTreeSet::new(),
            phase,
            deadline: now.mono_ms + self.timing.request_ms,
            sent_at: now.mono_ms,
            done: false,
        };
        self.ops.insert(op, pending);
        self.send_phase(op, None);
    }

    /// Sends the current phase's message to every target that has not answered it (or only
    /// to `only`).
    fn send_phase(&mut self, op: u64, only: Option<&BTreeSet<NodeId>>) {
        let Some(p) = self.ops.get(&op) else { return };
        let mut out = Vec::new();
        for (t, home) in &p.targets {
            if p.answered.contains(t) || only.is_some_and(|o| !o.contains(t)) {
                continue;
            }
            let msg = match &p.phase {
                Phase::Reading { .. } => Msg::Read { op, key: p.key.clone() },
                Phase::Writing { entry, holders, .. } if !holders.contains(t) => {
                    Msg::Write { op, entry: entry.clone(), hint_for: (home != t).then_some(*home) }
                }
                Phase::Writing { .. } => continue,
            };
            out.push((*t, msg));
        }
        for (t, m) in out {
            self.send(t, m);
        }
    }

    fn on_read_reply(&mut self, now: Now, op: u64, from: NodeId, found: Found) {
        let r = self.quorum.r;
        let Some(p) = self.ops.get_mut(&op) else { return };
        if !p.targets.contains_key(&from) {
            return;
        }
        match &mut p.phase {
            Phase::Reading { answers, .. } => {
                answers.insert(from, found);
                p.answered.insert(from);
                if answers.len() >= r {
                    self.finish_reading(now, op);
                }
            }
            Phase::Writing { entry, holders, .. } => {
                // A late reader: repair it too.
                if found.as_ref().is_some_and(|(_, v)| self.resolution.covers(*v, entry.version)) {
                    holders.insert(from);
                } else {
                    let only = BTreeSet::from([from]);
                    self.send_phase(op, Some(&only));
                }
            }
        }
    }

    /// R replicas answered: take the newest version; repair or write back.
    fn finish_reading(&mut self, now: Now, op: u64) {
        let Some(p) = self.ops.get_mut(&op) else { return };
        let Phase::Reading { answers, then } = &p.phase else { return };
        let newest = match self.resolution.combine(&p.key, answers.values().flatten()) {
            Ok(n) => n,
            Err(e) => {
                let req = p.req;
                self.ops.remove(&op);
                self.ready.replies.push((req, Err(e)));
                return;
            }
        };
        let holders: BTreeSet<NodeId> = answers
            .iter()
            .filter(|(_, f)| f.as_ref().map(|(_, v)| *v) == newest.as_ref().map(|(_, v)| *v))
            .map(|(n, _)| *n)
            .collect();
        let (req, key) = (p.req, p.key.clone());
        let phase = match (then.clone(), newest) {
            (Then::Read, None) => {
                // Nobody has the key: nothing to repair.
                self.ops.remove(&op);
                let reply = match self.resolution {
                    Resolution::Siblings => {
                        Reply::Siblings { values: Vec::new(), context: Context::default() }
                    }
                    _ => Reply::Value(Value::Null),
                };
                self.ready.replies.push((req, Ok(reply)));
                return;
            }
            (Then::Read, Some((value, version))) => {
                let shown = match self.resolution {
                    Resolution::Lww => Ok(Reply::Value(value.clone())),
                    Resolution::Crdt => {
                        State::from_json(&key, &value).and_then(|s| s.value(&key)).map(Reply::Value)
                    }
                    Resolution::Siblings => SiblingSet::from_json(&key, &value)
                        .map(|s| Reply::Siblings { values: s.values(), context: s.context() }),
                };
                let reply = match shown {
                    Ok(v) => v,
                    Err(e) => {
                        self.ops.remove(&op);
                        self.ready.replies.push((req, Err(e)));
                        return;
                    }
                };
                Phase::Writing {
                    entry: Versioned { key: key.clone(), value, version },
                    holders,
                    reply,
                    new: false,
                }
            }
            (Then::Counter(ops), current) => {
                match self.counter_phase(now, &key, ops, current, holders) {
                    Ok(phase) => phase,
                    Err(answer) => {
                        self.ops.remove(&op);
                        self.ready.replies.push((req, answer));
                        return;
                    }
                }
            }
            (Then::Append(element), current) if self.resolution == Resolution::Siblings => {
                // The coordinator is the client of its own read-modify-write: it merges the
                // siblings it read, appends, and writes one version superseding them all,
                // beside whatever it did not read (a concurrent append elsewhere).
                let read = match &current {
                    Some((v, _)) => SiblingSet::from_json(&key, v),
                    None => Ok(SiblingSet::default()),
                };
                match read.and_then(|s| Ok((s.appended(&key, &element)?, s))) {
                    Ok((list, mut set)) => {
                        self.seq += 1;
                        set.join(&SiblingSet::single(self.id, self.seq, list, set.context()));
                        Phase::Writing {
                            entry: Versioned {
                                key: key.clone(),
                                value: set.to_json(),
                                version: set.fingerprint(),
                            },
                            holders: BTreeSet::new(),
                            reply: Reply::Done,
                            new: true,
                        }
                    }
                    Err(e) => {
                        self.ops.remove(&op);
                        self.ready.replies.push((req, Err(e)));
                        return;
                    }
                }
            }
            (Then::Append(element), current) if self.resolution == Resolution::Crdt => {
                // The joined state plus one new dot, written back whole: replicas join it, so
                // a concurrent append written elsewhere is kept, and the write repairs too.
                let append = ClientOp::Append { key: key.clone(), value: element };
                let read = |k: &Key| match &current {
                    Some((v, _)) => State::from_json(k, v),
                    None => Ok(State::default()),
                };
                match execute_crdt(&append, read, self.id, &mut self.seq) {
                    Ok(mut effect) => {
                        let state = effect.writes.remove(&key).unwrap_or_default();
                        Phase::Writing {
                            entry: Versioned {
                                key: key.clone(),
                                value: state.to_json(),
                                version: state.fingerprint(),
                            },
                            holders: BTreeSet::new(),
                            reply: Reply::Done,
                            new: true,
                        }
                    }
                    Err(e) => {
                        self.ops.remove(&op);
                        self.ready.replies.push((req, Err(e)));
                        return;
                    }
                }
            }
            (Then::Append(element), current) => {
                let current = current.map_or(Value::Null, |(v, _)| v);
                let append = ClientOp::Append { key: key.clone(), value: element };
                match execute(&append, |_| current.clone()) {
                    Ok(effect) => {
                        let value = effect.writes.get(&key).cloned().unwrap_or(Value::Null);
                        let version = self.new_version(now);
                        Phase::Writing {
                            entry: Versioned { key: key.clone(), value, version },
                            holders: BTreeSet::new(),
                            reply: Reply::Done,
                            new: true,
                        }
                    }
                    Err(e) => {
                        self.ops.remove(&op);
                        self.ready.replies.push((req, Err(e)));
                        return;
                    }
                }
            }
        };
        let Some(p) = self.ops.get_mut(&op) else { return };
        p.phase = phase;
        p.answered.clear();
        p.sent_at = now.mono_ms;
        self.check_written(op);
        self.send_phase(op, None);
    }

    /// The write phase of a counter transaction (increments and reads of `key`) once R
    /// replicas answered with `current` (`holders` hold exactly it), or the answer when
    /// there is nothing to write (a read of a missing key) or the transaction fails.
    ///
    /// Under lww the new total is written as a new version: an unguarded read-modify-write,
    /// so concurrent increments through different coordinators (or one built on a stale
    /// read) lose all but one, as appends do. Under crdt the coordinator joins its own
    /// entry ([`QuorumCore::slots`]) into what it read, increments that entry, logs it, and
    /// writes the whole state back: replicas join it, so no increment another coordinator
    /// made is overwritten, and none of its own is either.
    fn counter_phase(
        &mut self,
        now: Now,
        key: &Key,
        ops: Vec<MicroOp>,
        current: Found,
        holders: BTreeSet<NodeId>,
    ) -> Result<Phase, Result<Reply, OpError>> {
        let txn = ClientOp::Txn { ops };
        let (reply, written) = match self.resolution {
            Resolution::Lww => {
                let held = current.as_ref().map_or(Value::Null, |(v, _)| v.clone());
                let mut effect = execute(&txn, |_| held.clone()).map_err(Err)?;
                let written = effect.writes.remove(key).map(|value| {
                    let version = self.new_version(now);
                    Versioned { key: key.clone(), value, version }
                });
                (effect.reply, written)
            }
            Resolution::Crdt => {
                let mut state = match &current {
                    Some((v, _)) => State::from_json(key, v).map_err(Err)?,
                    None => State::default(),
                };
                let known = self.slots.get(key).copied().unwrap_or_default();
                state.raise(self.id, known);
                let mut effect = execute_crdt(&txn, |_| Ok(state.clone()), self.id, &mut self.seq)
                    .map_err(Err)?;
                // What the transaction left (the state as read, with this node's entry joined
                // in, when it only read).
                let after = effect.writes.remove(key).unwrap_or(state);
                let slot = after.slot(self.id);
                if slot != known {
                    // Logged before the write goes out (a core's records are persisted before
                    // its messages are sent), so a restarted coordinator never builds on less
                    // than it may already have had acknowledged.
                    self.slots.insert(key.clone(), slot);
                    self.ready.persist.push(Record::Slot { key: key.clone(), slot });
                }
                let written = (!after.is_empty()).then(|| Versioned {
                    key: key.clone(),
                    value: after.to_json(),
                    version: after.fingerprint(),
                });
                (effect.reply, written)
            }
            Resolution::Siblings => return Err(Err(counter_refused(self.resolution))),
        };
        // A write that changes nothing the replicas answered is only a repair: if it does not
        // reach W in time the client learns that nothing new was written.
        let new = match (&written, &current) {
            (Some(w), Some((_, v))) => w.version != *v,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let entry = match (written, current) {
            (Some(entry), _) => entry,
            // Nothing written (a read-only transaction): repair to what was read.
            (None, Some((value, version))) => Versioned { key: key.clone(), value, version },
            (None, None) => return Err(Ok(reply)),
        };
        let holders = if new { BTreeSet::new() } else { holders };
        Ok(Phase::Writing { entry, holders, reply, new })
    }

    fn on_write_ack(&mut self, op: u64, from: NodeId) {
        let Some(p) = self.ops.get_mut(&op) else { return };
        if !p.targets.contains_key(&from) {
            return;
        }
        if let Phase::Writing { holders, .. } = &mut p.phase {
            holders.insert(from);
        }
        self.check_written(op);
    }

    /// Answers the client once W nodes hold the entry; forgets the operation once every
    /// target does.
    fn check_written(&mut self, op: u64) {
        let w = self.quorum.w;
        let Some(p) = self.ops.get_mut(&op) else { return };
        let Phase::Writing { holders, reply, .. } = &p.phase else { return };
        if !p.done && holders.len() >= w {
            p.done = true;
            self.ready.replies.push((p.req, Ok(reply.clone())));
        }
        if p.done && p.targets.keys().all(|t| holders.contains(t)) {
            self.ops.remove(&op);
        }
    }

    /// Deadlines, resends, and (sloppy) stand-ins for targets that went silent.
    fn tick_ops(&mut self, now: Now) {
        let ids: Vec<u64> = self.ops.keys().copied().collect();
        for op in ids {
            let Some(p) = self.ops.get(&op) else { continue };
            if now.mono_ms >= p.deadline {
                let p = self.ops.remove(&op).expect("present");
                if !p.done {
                    self.ready.replies.push((p.req, Err(Self::expired(&p, self.quorum))));
                }
                continue;
            }
            if now.mono_ms < p.sent_at + self.timing.gossip_ms {
                continue;
            }
            if self.quorum.sloppy {
                self.replace_silent_targets(op, now);
            }
            if let Some(p) = self.ops.get_mut(&op) {
                p.sent_at = now.mono_ms;
            }
            self.send_phase(op, None);
        }
    }

    /// What the client is told when an operation's deadline passes unanswered.
    fn expired(p: &Pending, q: Quorum) -> OpError {
        match &p.phase {
            Phase::Reading { answers, .. } => OpError::Unavailable(format!(
                "{} of R = {} replicas answered the read of key {} in time; nothing was written",
                answers.len(),
                q.r,
                p.key
            )),
            Phase::Writing { holders, new: true, .. } => OpError::Timeout(format!(
                "{} of W = {} replicas acknowledged the write of key {} in time; it may still take effect",
                holders.len(),
                q.w,
                p.key
            )),
            Phase::Writing { holders, new: false, .. } => OpError::Unavailable(format!(
                "read repair of key {} reached {} of W = {} replicas in time",
                p.key,
                holders.len(),
                q.w
            )),
        }
    }

    fn replace_silent_targets(&mut self, op: u64, now: Now) {
        let Some(p) = self.ops.get(&op) else { return };
        let silent: Vec<(NodeId, NodeId)> = p
            .targets
            .iter()
            .filter(|(t, _)| !p.answered.contains(t) && !self.alive(**t, now))
            .filter(|(t, _)| match &p.phase {
                Phase::Writing { holders, .. } => !holders.contains(t),
                Phase::Reading { .. } => true,
            })
            .map(|(t, h)| (*t, *h))
            .collect();
        if silent.is_empty() {
            return;
        }
        let used: BTreeSet<NodeId> = p.targets.keys().copied().collect();
        let mut spare: Vec<NodeId> = self
            .ring
            .preference_list(&p.key)
            .into_iter()
            .skip(self.quorum.n)
            .filter(|s| !used.contains(s) && self.alive(*s, now))
            .collect();
        spare.reverse();
        let Some(p) = self.ops.get_mut(&op) else { return };
        for (t, home) in silent {
            let Some(s) = spare.pop() else { break };
            p.targets.remove(&t);
            p.targets.insert(s, home);
        }
    }

    fn tick_background(&mut self, now: Now) {
        if now.mono_ms >= self.next_ping {
            self.next_ping = now.mono_ms + self.timing.heartbeat_ms;
            for p in self.peers.clone() {
                self.send(p, Msg::Ping);
            }
        }
        if now.mono_ms >= self.next_handoff {
            self.next_handoff = now.mono_ms + self.timing.gossip_ms;
            let homes: Vec<NodeId> =
                self.hints.keys().copied().filter(|h| self.alive(*h, now)).collect();
            for h in homes {
                let entries = Self::entries(self.hints.get(&h), None);
                self.send(h, Msg::Handoff { entries });
            }
        }
        if let Some(peer) = self.gossip.due(now, self.timing.gossip_ms, &self.peers, &mut self.rng)
        {
            let versions = self
                .store
                .iter()
                .filter(|(k, _)| self.home(k).contains(&peer))
                .map(|(k, (_, v))| (k.clone(), *v))
                .collect();
            self.send(peer, Msg::Digest { versions });
        }
    }

    fn entries(
        map: Option<&BTreeMap<Key, (Value, Version)>>,
        keys: Option<&[Key]>,
    ) -> Vec<Versioned> {
        let Some(map) = map else { return Vec::new() };
        let one = |(k, (value, version)): (&Key, &(Value, Version))| Versioned {
            key: k.clone(),
            value: value.clone(),
            version: *version,
        };
        match keys {
            None => map.iter().map(one).collect(),
            Some(keys) => keys.iter().filter_map(|k| map.get_key_value(k)).map(one).collect(),
        }
    }

    fn on_digest(&mut self, from: NodeId, versions: Vec<(Key, Version)>) {
        let theirs: BTreeMap<Key, Version> = versions.into_iter().collect();
        let ours: Vec<Key> = self
            .store
            .iter()
            .filter(|(k, (_, v))| self.resolution.should_send(*v, theirs.get(*k).copied()))
            .map(|(k, _)| k.clone())
            .filter(|k| self.home(k).contains(&from))
            .collect();
        let push = Self::entries(Some(&self.store), Some(&ours));
        let pull: Vec<Key> = theirs
            .iter()
            .filter(|(k, t)| self.resolution.should_send(**t, self.store.get(*k).map(|(_, v)| *v)))
            .map(|(k, _)| k.clone())
            .filter(|k| self.home(k).contains(&self.id))
            .collect();
        if !push.is_empty() {
            self.send(from, Msg::Push { entries: push });
        }
        if !pull.is_empty() {
            self.send(from, Msg::Pull { keys: pull });
        }
    }

    fn handle(&mut self, now: Now, from: NodeId, msg: Msg) {
        match msg {
            Msg::Ping => {}
            Msg::Write { op, entry, hint_for } => {
                match hint_for {
                    Some(home) if home != self.id => self.hold_hint(home, entry, true),
                    _ => {
                        self.merge(entry, true);
                    }
                }
                self.send(from, Msg::WriteAck { op });
            }
            Msg::WriteAck { op } => self.on_write_ack(op, from),
            Msg::Read { op, key } => {
                let found = self.newest(&key);
                self.send(from, Msg::ReadReply { op, found });
            }
            Msg::ReadReply { op, found } => self.on_read_reply(now, op, from, found),
            Msg::Handoff { entries } => {
                let stored = entries.iter().map(|e| (e.key.clone(), e.version)).collect();
                for e in entries {
                    self.merge(e, true);
                }
                self.send(from, Msg::HandoffAck { stored });
            }
            Msg::HandoffAck { stored } => {
                for (k, v) in stored {
                    self.drop_hint(from, &k, v, true);
                }
            }
            Msg::Digest { versions } => self.on_digest(from, versions),
            Msg::Pull { keys } => {
                let entries = Self::entries(Some(&self.store), Some(&keys));
                if !entries.is_empty() {
                    self.send(from, Msg::Push { entries });
                }
            }
            Msg::Push { entries } => {
                for e in entries {
                    self.merge(e, true);
                }
            }
        }
    }
}

/// The one key a counter transaction touches: every micro-op an increment or a read of it
/// (the counter and unique-ids workloads send `[inc k d]` and `[inc k 1] [r k]`). Anything
/// else is a guarded or multi-key transaction, which quorum mode refuses.
fn counter_key(ops: &[MicroOp]) -> Option<&Key> {
    let key = ops.first()?.key();
    ops.iter()
        .all(|m| matches!(m, MicroOp::Inc(k, _) | MicroOp::Read(k, _) if k == key))
        .then_some(key)
}

/// Why a compare-and-set or a transaction other than a counter's is refused.
fn guarded_refused() -> OpError {
    OpError::BadRequest(
        "quorum mode has no compare-and-set and no transactions but a counter's (increments \
         and reads of one key): a leaderless quorum has no one place to order a guarded \
         read-modify-write (Dynamo has none); use raft or paxos for them"
            .into(),
    )
}

/// Why counters are refused under `resolution` (only siblings refuses them).
fn counter_refused(resolution: Resolution) -> OpError {
    OpError::BadRequest(format!(
        "quorum mode serves counters under --resolution crdt (a PN-counter) or lww (a \
         read-modify-write that loses concurrent increments), not under --resolution {}",
        resolution.name()
    ))
}

impl Core for QuorumCore {
    type Msg = Msg;
    type Record = Record;

    fn tick(&mut self, now: Now) {
        self.tick_ops(now);
        self.tick_background(now);
        self.drain_local(now);
    }

    fn step(&mut self, now: Now, from: NodeId, msg: Msg) {
        if !self.peers.contains(&from) {
            return;
        }
        self.last_heard.insert(from, now.mono_ms);
        self.handle(now, from, msg);
        self.drain_local(now);
    }

    fn propose(&mut self, now: Now, req: RequestId, op: ClientOp) {
        match op {
            ClientOp::Read { key } => {
                let phase = Phase::Reading { answers: BTreeMap::new(), then: Then::Read };
                self.start(now, req, key, phase);
            }
            ClientOp::Append { key, value } => {
                let phase = Phase::Reading { answers: BTreeMap::new(), then: Then::Append(value) };
                self.start(now, req, key, phase);
            }
            ClientOp::Write { .. } | ClientOp::Cas { .. }
                if self.resolution == Resolution::Crdt =>
            {
                let err = execute_crdt(&op, |_| Ok(State::default()), self.id, &mut self.seq);
                let err = err.err().unwrap_or_else(|| {
                    OpError::Internal("a register write under crdt was not refused".into())
                });
                self.ready.replies.push((req, Err(err)));
            }
            ClientOp::Write { key, value } if self.resolution == Resolution::Siblings => {
                // A blind write: the client read nothing, so it supersedes nothing.
                self.write_sibling(now, req, key, value, Context::default());
            }
            ClientOp::Put { key, value, context } if self.resolution == Resolution::Siblings => {
                self.write_sibling(now, req, key, value, context);
            }
            ClientOp::Put { .. } => {
                self.ready.replies.push((req, Err(crate::kv::context_refused())));
            }
            ClientOp::Write { key, value } => {
                let version = self.new_version(now);
                let entry = Versioned { key: key.clone(), value, version };
                let phase = Phase::Writing {
                    entry,
                    holders: BTreeSet::new(),
                    reply: Reply::Done,
                    new: true,
                };
                self.start(now, req, key, phase);
            }
            ClientOp::Txn { ops } => match counter_key(&ops) {
                Some(key) if self.resolution != Resolution::Siblings => {
                    let key = key.clone();
                    let then = Then::Counter(ops);
                    let phase = Phase::Reading { answers: BTreeMap::new(), then };
                    self.start(now, req, key, phase);
                }
                Some(_) => self.ready.replies.push((req, Err(counter_refused(self.resolution)))),
                None => self.ready.replies.push((req, Err(guarded_refused()))),
            },
            ClientOp::Cas { .. } => self.ready.replies.push((req, Err(guarded_refused()))),
        }
        self.drain_local(now);
    }

    fn take_ready(&mut self) -> Ready<Msg, Record> {
        std::mem::replace(&mut self.ready, Ready::new(false))
    }

    fn status(&self) -> CoreStatus {
        let mut extra = serde_json::Map::new();
        extra.insert("keys".into(), self.store.len().into());
        extra.insert("hints".into(), self.hints.values().map(BTreeMap::len).sum::<usize>().into());
        extra.insert("last_timestamp_us".into(), self.clock.into());
        extra.insert("n".into(), self.quorum.n.into());
        extra.insert("r".into(), self.quorum.r.into());
        extra.insert("w".into(), self.quorum.w.into());
        extra.insert("sloppy_quorum".into(), self.quorum.sloppy.into());
        extra.insert("resolution".into(), self.resolution.name().into());
        extra.insert("ops_in_flight".into(), self.ops.len().into());
        CoreStatus { role: "peer", term: 0, leader: None, extra }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modes::testnet::TestNet;
    use serde_json::json;

    fn quorum(n: usize, r: usize, w: usize, sloppy: bool) -> Quorum {
        Quorum { n, r, w, sloppy }
    }

    fn cluster(nodes: u64, q: Quorum) -> TestNet<QuorumCore> {
        cluster_resolving(nodes, q, Resolution::Lww)
    }

    fn cluster_resolving(nodes: u64, q: Quorum, res: Resolution) -> TestNet<QuorumCore> {
        let ids: Vec<NodeId> = (1..=nodes).collect();
        TestNet::new(ids.iter().map(|id| {
            let now = Now { mono_ms: 1, wall_us: 1000 };
            let core = QuorumCore::new(
                *id,
                ids.clone(),
                (q, res),
                Timing::default(),
                *id,
                Vec::new(),
                now,
            );
            (*id, core)
        }))
    }

    fn write(net: &mut TestNet<QuorumCore>, at: NodeId, key: &Key, v: Value) -> RequestId {
        net.propose(at, ClientOp::Write { key: key.clone(), value: v })
    }

    fn read(net: &mut TestNet<QuorumCore>, at: NodeId, key: &Key) -> RequestId {
        net.propose(at, ClientOp::Read { key: key.clone() })
    }

    /// A key whose home replicas (on a ring of `nodes`) leave out `outside`.
    fn key_not_on(net: &TestNet<QuorumCore>, outside: &[NodeId]) -> (Key, Vec<NodeId>) {
        (0..1000)
            .map(Key::Int)
            .map(|k| {
                let home = net.cores[&1].home(&k);
                (k, home)
            })
            .find(|(_, home)| home.iter().all(|h| !outside.contains(h)))
            .expect("some key avoids those nodes")
    }

    #[test]
    fn quorum_sizes_default_to_a_majority_of_n_and_n_to_at_most_the_cluster() {
        let d = QuorumConfig::default();
        assert_eq!(d.resolve(5), Ok(quorum(3, 2, 2, true)));
        assert_eq!(d.resolve(2), Ok(quorum(2, 2, 2, true)), "N clamped to two nodes");
        assert_eq!(d.resolve(1), Ok(quorum(1, 1, 1, true)));
        let one = QuorumConfig { r: Some(1), w: Some(1), ..d };
        assert_eq!(one.resolve(3), Ok(quorum(3, 1, 1, true)));
        let too_big = QuorumConfig { w: Some(4), ..d };
        let err = too_big.resolve(5).expect_err("W > N");
        assert!(err.to_string().contains("W = 4 must be between 1 and N = 3"), "{err}");
        assert_eq!(QuorumConfig { n: 0, ..d }.resolve(3), Err(QuorumError::ZeroN));
    }

    #[test]
    fn consistent_hashing_places_every_key_identically_and_spreads_the_keys() {
        let ring = Ring::new(&[1, 2, 3, 4, 5]);
        let again = Ring::new(&[5, 4, 3, 2, 1]);
        let mut homes: BTreeMap<NodeId, usize> = BTreeMap::new();
        for k in (0..1000).map(Key::Int) {
            let p = ring.preference_list(&k);
            assert_eq!(p, again.preference_list(&k), "placement depends on the node set only");
            let mut sorted = p.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![1, 2, 3, 4, 5], "every node once: {p:?}");
            for h in &p[..3] {
                *homes.entry(*h).or_default() += 1;
            }
        }
        // Each node replicates 3/5 of the keys on average.
        for (node, count) in homes {
            assert!((400..=800).contains(&count), "node {node} is home to {count} of 1000 keys");
        }
        // Adding a node moves only the keys whose home lists it now heads into.
        let bigger = Ring::new(&[1, 2, 3, 4, 5, 6]);
        let moved = (0..1000)
            .map(Key::Int)
            .filter(|k| {
                let old = &ring.preference_list(k)[..3];
                let new = &bigger.preference_list(k)[..3];
                old.iter().filter(|n| !new.contains(n)).count() > 1
            })
            .count();
        assert!(moved < 100, "{moved} keys lost more than one replica to a sixth node");
    }

    #[test]
    fn with_r_and_w_of_one_a_read_elsewhere_misses_an_acknowledged_write() {
        let mut net = cluster(3, quorum(3, 1, 1, true));
        let k = Key::Int(1);
        let w = write(&mut net, 1, &k, json!("new"));
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)), "node 1 is a replica: W = 1 at once");
        let r = read(&mut net, 2, &k);
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!(null)))), "a stale read");
        net.run_for(100);
        let r = read(&mut net, 2, &k);
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!("new")))));
    }

    #[test]
    fn a_quorum_read_returns_the_newest_version_and_repairs_stale_replicas() {
        let mut net = cluster(3, quorum(3, 2, 2, true));
        let k = Key::Int(1);
        net.isolate(3);
        let w = write(&mut net, 1, &k, json!("new"));
        net.deliver_all();
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)), "nodes 1 and 2 acknowledge");
        // Drop the write's resends to node 3: only read repair may bring it there.
        net.cores.get_mut(&1).expect("node 1").ops.clear();
        net.heal();
        assert_eq!(net.cores[&3].value(&k), json!(null));
        let r = read(&mut net, 3, &k);
        net.deliver_all();
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!("new")))), "R = 2 meets W = 2");
        assert_eq!(net.cores[&3].value(&k), json!("new"), "the stale replica was repaired");
    }

    #[test]
    fn a_timed_out_write_is_indeterminate_and_a_strict_quorum_refuses_when_replicas_are_down() {
        let mut net = cluster(3, quorum(3, 2, 2, false));
        let k = Key::Int(1);
        // Cut just now: node 1 still believes 2 and 3 alive, sends, and hears nothing.
        net.isolate(1);
        let w = write(&mut net, 1, &k, json!("x"));
        net.run_for(Timing::default().request_ms + 100);
        match net.reply(w) {
            Some(Err(e @ OpError::Timeout(_))) => assert!(!e.definite(), "{e}"),
            other => panic!("expected an indeterminate timeout, got {other:?}"),
        }
        assert_eq!(net.cores[&1].value(&k), json!("x"), "applied on node 1 all the same");
        // Now node 1 knows 2 and 3 are down: it refuses without sending anything.
        let w = write(&mut net, 1, &k, json!("y"));
        match net.reply(w) {
            Some(Err(e @ OpError::Unavailable(_))) => assert!(e.definite(), "{e}"),
            other => panic!("expected a definite refusal, got {other:?}"),
        }
        assert_eq!(net.cores[&1].value(&k), json!("x"), "the refused write wrote nothing");
    }

    /// Cuts every link between the nodes `side` and the nodes `home`, both ways.
    fn cut_off(net: &mut TestNet<QuorumCore>, side: &[NodeId], home: &[NodeId]) {
        for a in side {
            for b in home {
                net.cut.insert((*a, *b));
                net.cut.insert((*b, *a));
            }
        }
    }

    /// Five nodes, N = 3: a key homed on 3, 4, 5, written at node 1 while 1 and 2 are cut off
    /// from the rest.
    fn partitioned_write(sloppy: bool) -> (TestNet<QuorumCore>, Key, Vec<NodeId>, RequestId) {
        let mut net = cluster(5, quorum(3, 2, 2, sloppy));
        let (k, home) = key_not_on(&net, &[1, 2]);
        cut_off(&mut net, &[1, 2], &home);
        net.run_for(500);
        let w = write(&mut net, 1, &k, json!("hinted"));
        net.run_for(50);
        (net, k, home, w)
    }

    #[test]
    fn a_sloppy_quorum_acknowledges_on_stand_ins_and_hands_the_hints_off_after_the_heal() {
        let (mut net, k, home, w) = partitioned_write(true);
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)), "nodes 1 and 2 stood in");
        let held = |net: &TestNet<QuorumCore>| -> usize {
            [1, 2]
                .iter()
                .map(|n| home.iter().map(|h| net.cores[n].hints_for(*h)).sum::<usize>())
                .sum()
        };
        assert_eq!(held(&net), 2, "each stand-in holds a hint for the replica it replaced");
        assert!(home.iter().all(|h| net.cores[h].value(&k).is_null()));
        // Right after the heal, before any hint is handed off, a quorum read at a home
        // replica does not see the acknowledged write.
        net.heal();
        let r = read(&mut net, home[0], &k);
        net.deliver_all();
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!(null)))), "the write is missing");
        net.run_for(1000);
        assert!(home.iter().all(|h| net.cores[h].value(&k) == json!("hinted")), "handed off");
        assert_eq!(held(&net), 0, "hints are dropped once handed off");
        let r = read(&mut net, home[0], &k);
        net.deliver_all();
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!("hinted")))));
    }

    #[test]
    fn a_strict_quorum_refuses_a_write_no_home_replica_can_take() {
        let (net, k, _, w) = partitioned_write(false);
        match net.reply(w) {
            Some(Err(e @ OpError::Unavailable(_))) => assert!(e.definite(), "{e}"),
            other => panic!("expected a definite refusal, got {other:?}"),
        }
        assert!(net.cores.values().all(|c| c.value(&k).is_null() && c.hints.is_empty()));
    }

    #[test]
    fn anti_entropy_brings_a_replica_that_missed_a_write_up_to_date() {
        let mut net = cluster(3, quorum(3, 1, 1, true));
        let k = Key::Int(7);
        net.isolate(3);
        let w = write(&mut net, 1, &k, json!("late"));
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        // Past the write's deadline: the coordinator stops resending it.
        net.run_for(Timing::default().request_ms + 500);
        assert!(net.cores[&1].ops.is_empty());
        assert_eq!(net.cores[&3].value(&k), json!(null));
        net.heal();
        net.run_for(3000);
        assert_eq!(net.cores[&3].value(&k), json!("late"), "gossip repaired node 3");
    }

    #[test]
    fn a_skewed_clock_makes_a_later_write_lose_even_under_r_plus_w_over_n() {
        let mut net = cluster(3, quorum(3, 2, 2, true));
        let k = Key::Int(1);
        let now = net.now();
        net.cores.get_mut(&1).expect("node 1").propose(
            Now { wall_us: 10_000_000, ..now },
            100,
            ClientOp::Write { key: k.clone(), value: json!("first") },
        );
        net.deliver_all();
        assert_eq!(net.reply(100), Some(&Ok(Reply::Done)));
        // Node 2's clock is a minute behind: its later write gets an older version.
        net.cores.get_mut(&2).expect("node 2").propose(
            Now { wall_us: 10_000_000 - 60_000_000, ..now },
            101,
            ClientOp::Write { key: k.clone(), value: json!("second") },
        );
        net.deliver_all();
        assert_eq!(net.reply(101), Some(&Ok(Reply::Done)), "acknowledged");
        let r = read(&mut net, 3, &k);
        net.deliver_all();
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!("first")))), "the later write lost");
    }

    #[test]
    fn appends_read_then_write_and_cas_and_transactions_are_refused() {
        let mut net = cluster(3, quorum(3, 2, 2, true));
        let k = Key::Str("l".into());
        for v in [1, 2] {
            let a = net.propose(1, ClientOp::Append { key: k.clone(), value: json!(v) });
            net.deliver_all();
            assert_eq!(net.reply(a), Some(&Ok(Reply::Done)));
        }
        let r = read(&mut net, 3, &k);
        net.deliver_all();
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!([1, 2])))));
        let c = net.propose(1, ClientOp::Cas { key: k.clone(), from: json!(1), to: json!(2) });
        let t = net.propose(1, ClientOp::Txn { ops: vec![] });
        for req in [c, t] {
            match net.reply(req) {
                Some(Err(e @ OpError::BadRequest(m))) => {
                    assert!(e.definite() && m.contains("no compare-and-set"), "{m}")
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
    }

    /// Appends 1, 2 and 3 at once through coordinators 1, 2 and 3 (each reads before any
    /// writes back), then reads the list at node 1.
    fn concurrent_appends(res: Resolution) -> Option<Result<Reply, OpError>> {
        let mut net = cluster_resolving(3, quorum(3, 2, 2, true), res);
        let k = Key::Str("l".into());
        let reqs: Vec<RequestId> = (1..=3)
            .map(|at| net.propose(at, ClientOp::Append { key: k.clone(), value: json!(at) }))
            .collect();
        net.deliver_all();
        for r in reqs {
            assert_eq!(net.reply(r), Some(&Ok(Reply::Done)), "{res:?}: acknowledged");
        }
        let r = read(&mut net, 1, &k);
        net.deliver_all();
        net.reply(r).cloned()
    }

    #[test]
    fn concurrent_appends_lose_all_but_one_under_lww_and_none_under_crdt() {
        match concurrent_appends(Resolution::Lww) {
            Some(Ok(Reply::Value(Value::Array(l)))) => assert_eq!(l.len(), 1, "lww: {l:?}"),
            other => panic!("lww: {other:?}"),
        }
        assert_eq!(
            concurrent_appends(Resolution::Crdt),
            Some(Ok(Reply::Value(json!([1, 2, 3])))),
            "crdt keeps all three, concurrent ones ordered by node"
        );
    }

    #[test]
    fn crdt_appends_on_both_sides_of_a_partition_survive_the_heal_and_writes_are_refused() {
        let mut net = cluster_resolving(5, quorum(3, 2, 2, true), Resolution::Crdt);
        let (k, home) = key_not_on(&net, &[1, 2]);
        cut_off(&mut net, &[1, 2], &home);
        net.run_for(500);
        let outside = net.propose(1, ClientOp::Append { key: k.clone(), value: json!("out") });
        let inside = net.propose(home[0], ClientOp::Append { key: k.clone(), value: json!("in") });
        net.run_for(50);
        assert_eq!(net.reply(outside), Some(&Ok(Reply::Done)), "stand-ins took it as hints");
        assert_eq!(net.reply(inside), Some(&Ok(Reply::Done)), "home replicas took it");
        net.heal();
        net.run_for(3000);
        for h in &home {
            let mut got = net.cores[h].value(&k).as_array().cloned().unwrap_or_default();
            got.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            assert_eq!(got, vec![json!("in"), json!("out")], "replica {h} holds both");
        }
        let w = write(&mut net, 3, &k, json!("x"));
        match net.reply(w) {
            Some(Err(e @ OpError::BadRequest(m))) => {
                assert!(e.definite() && m.contains("--resolution crdt"), "{m}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn siblings_read(
        net: &mut TestNet<QuorumCore>,
        at: NodeId,
        key: &Key,
    ) -> (Vec<Value>, Context) {
        let r = read(net, at, key);
        net.deliver_all();
        match net.reply(r) {
            Some(Ok(Reply::Siblings { values, context })) => (values.clone(), context.clone()),
            other => panic!("expected siblings, got {other:?}"),
        }
    }

    #[test]
    fn siblings_keep_concurrent_writes_and_a_write_in_their_context_supersedes_them() {
        let mut net = cluster_resolving(3, quorum(3, 2, 2, true), Resolution::Siblings);
        let k = Key::Int(1);
        assert_eq!(siblings_read(&mut net, 1, &k), (vec![], Context::default()), "absent");
        // Two blind writes through different coordinators: neither read the other.
        for (at, v) in [(1, "a"), (2, "b")] {
            let w = write(&mut net, at, &k, json!(v));
            net.deliver_all();
            assert!(matches!(net.reply(w), Some(Ok(Reply::Written { .. }))), "{:?}", net.reply(w));
        }
        let (values, context) = siblings_read(&mut net, 3, &k);
        assert_eq!(values, vec![json!("a"), json!("b")], "both kept, in dot order");
        // A write that passes what it read supersedes both siblings.
        let put = ClientOp::Put { key: k.clone(), value: json!("ab"), context: context.clone() };
        let p = net.propose(3, put);
        net.deliver_all();
        let Some(Ok(Reply::Written { context: after })) = net.reply(p).cloned() else {
            panic!("expected a written context, got {:?}", net.reply(p));
        };
        assert!(after.0.values().map(|s| s.len()).sum::<usize>() == 3, "{after:?}");
        assert_eq!(siblings_read(&mut net, 1, &k).0, vec![json!("ab")]);
        // A write with the old context is concurrent with "ab": a sibling again.
        let stale = ClientOp::Put { key: k.clone(), value: json!("late"), context };
        net.propose(2, stale);
        net.deliver_all();
        assert_eq!(siblings_read(&mut net, 1, &k).0, vec![json!("late"), json!("ab")]);
        net.run_for(3000);
        let stored: Vec<Value> = (1..=3).map(|n| net.cores[&n].value(&k)).collect();
        assert!(stored.iter().all(|v| *v == stored[0]), "anti-entropy converged: {stored:?}");
    }

    #[test]
    fn sibling_appends_on_both_sides_of_a_partition_are_all_read_back_after_the_heal() {
        let mut net = cluster_resolving(5, quorum(3, 2, 2, true), Resolution::Siblings);
        let (k, home) = key_not_on(&net, &[1, 2]);
        cut_off(&mut net, &[1, 2], &home);
        net.run_for(500);
        let mut acked = Vec::new();
        for (at, v) in [(1, "out1"), (home[0], "in1"), (2, "out2"), (home[1], "in2")] {
            let a = net.propose(at, ClientOp::Append { key: k.clone(), value: json!(v) });
            net.run_for(50);
            assert_eq!(net.reply(a), Some(&Ok(Reply::Done)), "{v} acknowledged");
            acked.push(json!(v));
        }
        net.heal();
        net.run_for(3000);
        // The client's merge: the union of the siblings' lists holds every acknowledged add.
        let (values, _) = siblings_read(&mut net, home[2], &k);
        assert!(values.len() >= 2, "the two sides' appends are siblings: {values:?}");
        let union: BTreeSet<String> = values
            .iter()
            .flat_map(|v| v.as_array().cloned().unwrap_or_default())
            .map(|v| v.to_string())
            .collect();
        let want: BTreeSet<String> = acked.iter().map(|v| v.to_string()).collect();
        assert_eq!(union, want);
        let cas = net.propose(1, ClientOp::Cas { key: k.clone(), from: json!(1), to: json!(2) });
        assert!(matches!(net.reply(cas), Some(Err(OpError::BadRequest(_)))));
    }

    #[test]
    fn a_write_with_a_context_is_refused_outside_siblings() {
        for res in [Resolution::Lww, Resolution::Crdt] {
            let mut net = cluster_resolving(3, quorum(3, 2, 2, true), res);
            let put =
                ClientOp::Put { key: Key::Int(1), value: json!(1), context: Context::default() };
            let p = net.propose(1, put);
            match net.reply(p) {
                Some(Err(e @ OpError::BadRequest(m))) => {
                    assert!(e.definite() && m.contains("--resolution siblings"), "{m}")
                }
                other => panic!("{res:?}: expected a refusal, got {other:?}"),
            }
        }
    }

    fn inc(key: &Key, delta: i64) -> ClientOp {
        ClientOp::Txn { ops: vec![MicroOp::Inc(key.clone(), json!(delta))] }
    }

    /// Asserts that `req` was acknowledged as the increment of `key` by `delta`.
    fn assert_incremented(net: &TestNet<QuorumCore>, req: RequestId, key: &Key, delta: i64) {
        let want = Reply::Txn(vec![MicroOp::Inc(key.clone(), json!(delta))]);
        assert_eq!(net.reply(req), Some(&Ok(want)), "increment by {delta}");
    }

    /// Increments one counter through coordinators on both sides of a partition (nodes 1
    /// and 2, cut off from the key's home replicas, write to stand-ins), heals, and reads
    /// the counter at every node: the sum of the acknowledged increments, and what was read.
    fn increments_across_a_partition(res: Resolution) -> (i64, Vec<Value>) {
        let mut net = cluster_resolving(5, quorum(3, 2, 2, true), res);
        let (k, home) = key_not_on(&net, &[1, 2]);
        cut_off(&mut net, &[1, 2], &home);
        net.run_for(500);
        let mut acked = 0;
        for (at, delta) in [(1, 1), (home[0], 2), (2, 4), (home[1], 8), (1, 16), (home[2], 32)] {
            let req = net.propose(at, inc(&k, delta));
            net.run_for(50);
            assert_incremented(&net, req, &k, delta);
            acked += delta;
        }
        net.heal();
        net.run_for(3000);
        let reads = (1..=5)
            .map(|at| {
                let r = read(&mut net, at, &k);
                net.deliver_all();
                match net.reply(r) {
                    Some(Ok(Reply::Value(v))) => v.clone(),
                    other => panic!("{res:?}: read at {at}: {other:?}"),
                }
            })
            .collect();
        (acked, reads)
    }

    #[test]
    fn crdt_counts_increments_from_both_sides_of_a_partition_where_lww_loses_some() {
        let (acked, reads) = increments_across_a_partition(Resolution::Crdt);
        assert!(reads.iter().all(|v| *v == json!(acked)), "crdt: {acked} acked, read {reads:?}");
        let (acked, reads) = increments_across_a_partition(Resolution::Lww);
        assert!(reads.windows(2).all(|w| w[0] == w[1]), "lww converged: {reads:?}");
        let got = reads[0].as_i64().expect("a number");
        assert!(got < acked, "lww keeps one side's last total: {got} of {acked}");
    }

    /// Five nodes, N = 3, R = W = 1, strict. Node 1 (not a replica) increments by 5 while it
    /// reaches only the first home replica; then, cut off from that one and reaching only
    /// the other two (which never heard of the first increment), it is crashed, restarted
    /// from its log, and increments by 7. Returns the counter read after everything heals.
    fn an_increment_after_a_restart_reads_a_stale_replica(res: Resolution) -> (Value, Slot) {
        let q = quorum(3, 1, 1, false);
        let mut net = cluster_resolving(5, q, res);
        let (k, home) = key_not_on(&net, &[1, 2]);
        // The first home replica shares nothing with the other two (no anti-entropy).
        cut_off(&mut net, &[1, home[0]], &home[1..]);
        net.run_for(500);
        let first = net.propose(1, inc(&k, 5));
        net.run_for(50);
        assert_incremented(&net, first, &k, 5);
        net.run_for(Timing::default().request_ms + 500);
        assert!(home[1..].iter().all(|h| net.cores[h].value(&k).is_null()), "only on home[0]");
        net.heal();
        net.isolate(home[0]);
        net.crash(1);
        net.restart(1, |records, now| {
            QuorumCore::new(1, vec![1, 2, 3, 4, 5], (q, res), Timing::default(), 1, records, now)
        });
        let kept = net.cores[&1].slots.get(&k).copied().unwrap_or_default();
        net.run_for(500);
        let second = net.propose(1, inc(&k, 7));
        net.run_for(50);
        assert_incremented(&net, second, &k, 7);
        net.heal();
        net.run_for(3000);
        let r = read(&mut net, home[0], &k);
        net.deliver_all();
        match net.reply(r) {
            Some(Ok(Reply::Value(v))) => (v.clone(), kept),
            other => panic!("{res:?}: {other:?}"),
        }
    }

    #[test]
    fn a_restarted_coordinator_keeps_its_counter_slot_where_lww_loses_an_increment() {
        let (value, kept) = an_increment_after_a_restart_reads_a_stale_replica(Resolution::Crdt);
        assert_eq!(kept, Slot { pos: 5, neg: 0 }, "the slot came back from the log");
        assert_eq!(value, json!(12), "crdt: 5 + 7, though the second read saw nothing");
        let (value, _) = an_increment_after_a_restart_reads_a_stale_replica(Resolution::Lww);
        assert_eq!(value, json!(7), "lww: the later total built on a stale read wins");
    }

    #[test]
    fn decrements_count_and_ids_under_crdt_repeat_across_coordinators() {
        let mut net = cluster_resolving(3, quorum(3, 2, 2, true), Resolution::Crdt);
        let k = Key::Str("c".into());
        for (at, delta) in [(1, 10), (2, -3), (1, -4)] {
            let req = net.propose(at, inc(&k, delta));
            net.deliver_all();
            assert_incremented(&net, req, &k, delta);
        }
        let r = read(&mut net, 3, &k);
        net.deliver_all();
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!(3)))));
        // Two ids generated at once through different coordinators: each adds one to its own
        // entry of the join it read and reads the sum, so both are told 4.
        let ids = ClientOp::Txn {
            ops: vec![MicroOp::Inc(k.clone(), json!(1)), MicroOp::Read(k.clone(), Value::Null)],
        };
        let reqs = [net.propose(1, ids.clone()), net.propose(2, ids)];
        net.deliver_all();
        for req in reqs {
            let want = Reply::Txn(vec![
                MicroOp::Inc(k.clone(), json!(1)),
                MicroOp::Read(k.clone(), json!(4)),
            ]);
            assert_eq!(net.reply(req), Some(&Ok(want)), "a duplicate id");
        }
        let r = read(&mut net, 3, &k);
        net.deliver_all();
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!(5)))), "both increments count");
    }

    #[test]
    fn only_counter_transactions_are_served_and_not_under_siblings() {
        let mut net = cluster_resolving(3, quorum(3, 2, 2, true), Resolution::Crdt);
        let (a, b) = (Key::Int(1), Key::Int(2));
        for ops in [
            vec![MicroOp::Inc(a.clone(), json!(1)), MicroOp::Inc(b.clone(), json!(1))],
            vec![MicroOp::Append(a.clone(), json!(1))],
            vec![MicroOp::Inc(a.clone(), json!(1)), MicroOp::Write(a.clone(), json!(1))],
        ] {
            let req = net.propose(1, ClientOp::Txn { ops });
            match net.reply(req) {
                Some(Err(e @ OpError::BadRequest(m))) => {
                    assert!(e.definite() && m.contains("no compare-and-set"), "{m}")
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        let mut net = cluster_resolving(3, quorum(3, 2, 2, true), Resolution::Siblings);
        let req = net.propose(1, inc(&a, 1));
        match net.reply(req) {
            Some(Err(e @ OpError::BadRequest(m))) => {
                assert!(e.definite() && m.contains("--resolution siblings"), "{m}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn values_and_hints_are_recovered_from_the_log() {
        let (mut net, k, home, _) = partitioned_write(true);
        net.crash(1);
        let q = quorum(3, 2, 2, true);
        net.restart(1, |records, now| {
            QuorumCore::new(
                1,
                vec![1, 2, 3, 4, 5],
                (q, Resolution::Lww),
                Timing::default(),
                1,
                records,
                now,
            )
        });
        let held: usize = home.iter().map(|h| net.cores[&1].hints_for(*h)).sum();
        assert_eq!(held, 1, "the hint survived the restart");
        assert!(net.cores[&1].value(&k).is_null(), "a hint is not a value of node 1's own");
    }
}
