//! Causal+ consistency with vector clocks: the core behind `causal`.
//!
//! Every node accepts every operation and executes it against its local state (reads are
//! local; a transaction is atomic on that node). An operation that writes becomes an
//! [`Update`] numbered `seq` in its origin's sequence and carrying the origin's vector clock
//! as its dependencies. A replica applies an update only after everything it depends on
//! (`seq` is the next from that origin and every other entry of `deps` is already applied),
//! buffering it otherwise, so every replica applies updates in an order consistent with
//! causality. Concurrent writes to one key are resolved by the highest `(lamport, origin)`,
//! the same on every replica, which makes the replicas converge (the "+" of causal+).
//!
//! Updates are pushed at once; every `gossip_ms` a node sends a random peer its vector clock
//! and the peer sends back the updates it is missing, so lost messages are repaired. Every
//! update (own or received) is fsynced before the client is answered or the update is
//! passed on: a node that forgot its own update `seq` after a crash would reuse the number
//! for a different update and replicas would diverge.
//!
//! The guarantee is per node: a client that stays on one node sees its own writes and
//! causally consistent reads; a client that moves between nodes carries no session token,
//! so it may miss its own writes on the new node until they arrive.

use crate::core::{Core, GossipTimer, Ready, Timing, other_nodes};
use crate::kv::execute;
use crate::types::{ClientOp, CoreStatus, Key, NodeId, Now, RequestId, Value};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A vector clock: for each origin node, how many of its updates are applied.
pub type VClock = BTreeMap<NodeId, u64>;

/// One replicated update: the writes of one client operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Update {
    /// The node that accepted the operation.
    pub origin: NodeId,
    /// Position in the origin's sequence, from 1.
    pub seq: u64,
    /// The origin's vector clock before this update: what it causally depends on.
    pub deps: VClock,
    /// Lamport time, to order concurrent writes to one key.
    pub lamport: u64,
    /// The keys written and their values.
    pub writes: Vec<(Key, Value)>,
}

/// Messages between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Msg {
    /// Updates for the receiver to apply once their dependencies are met.
    Updates(Vec<Update>),
    /// Anti-entropy: the sender's vector clock; the receiver answers with what it lacks.
    Sync(VClock),
}

/// Most updates sent in one anti-entropy answer.
const MAX_SYNC: usize = 512;

/// The causal core.
#[derive(Debug)]
pub struct CausalCore {
    id: NodeId,
    peers: Vec<NodeId>,
    timing: Timing,
    rng: SmallRng,
    vc: VClock,
    lamport: u64,
    store: BTreeMap<Key, (Value, (u64, NodeId))>,
    /// Every applied update by origin, in sequence order: the source for anti-entropy.
    log: BTreeMap<NodeId, Vec<Update>>,
    /// Received updates waiting for their dependencies, by (origin, seq).
    pending: BTreeMap<(NodeId, u64), Update>,
    gossip: GossipTimer,
    ready: Ready<Msg, Update>,
}

impl CausalCore {
    /// Builds a node by re-applying its persisted updates, which were logged in an order
    /// that respected their dependencies.
    pub fn new(
        id: NodeId,
        peers: Vec<NodeId>,
        timing: Timing,
        seed: u64,
        records: Vec<Update>,
    ) -> Self {
        let mut core = CausalCore {
            id,
            peers: other_nodes(id, peers),
            timing,
            rng: SmallRng::seed_from_u64(seed),
            vc: VClock::new(),
            lamport: 0,
            store: BTreeMap::new(),
            log: BTreeMap::new(),
            pending: BTreeMap::new(),
            gossip: GossipTimer::default(),
            ready: Ready::new(true),
        };
        for u in records {
            if core.applied(u.origin) + 1 == u.seq {
                core.apply(u, false);
            }
        }
        core
    }

    fn applied(&self, origin: NodeId) -> u64 {
        self.vc.get(&origin).copied().unwrap_or(0)
    }

    fn deliverable(&self, u: &Update) -> bool {
        u.seq == self.applied(u.origin) + 1
            && u.deps.iter().all(|(n, s)| *n == u.origin || self.applied(*n) >= *s)
    }

    fn apply(&mut self, u: Update, persist: bool) {
        self.lamport = self.lamport.max(u.lamport);
        for (k, v) in &u.writes {
            let stamp = (u.lamport, u.origin);
            if self.store.get(k).is_none_or(|(_, s)| *s < stamp) {
                self.store.insert(k.clone(), (v.clone(), stamp));
            }
        }
        self.vc.insert(u.origin, u.seq);
        if persist {
            self.ready.persist.push(u.clone());
        }
        self.log.entry(u.origin).or_default().push(u);
    }

    /// Applies every buffered update whose dependencies are now met.
    fn drain_pending(&mut self) {
        loop {
            let next =
                self.pending.values().find(|u| self.deliverable(u)).map(|u| (u.origin, u.seq));
            let Some(id) = next else { break };
            if let Some(u) = self.pending.remove(&id) {
                self.apply(u, true);
            }
        }
        let vc = self.vc.clone();
        self.pending.retain(|(o, s), _| *s > vc.get(o).copied().unwrap_or(0));
    }

    fn get(&self, key: &Key) -> Value {
        self.store.get(key).map_or(Value::Null, |(v, _)| v.clone())
    }

    /// The value a key has on this node (for tests).
    pub fn value(&self, key: &Key) -> Value {
        self.get(key)
    }

    /// The node's vector clock.
    pub fn vclock(&self) -> &VClock {
        &self.vc
    }
}

impl Core for CausalCore {
    type Msg = Msg;
    type Record = Update;

    fn tick(&mut self, now: Now) {
        let Some(peer) = self.gossip.due(now, self.timing.gossip_ms, &self.peers, &mut self.rng)
        else {
            return;
        };
        self.ready.messages.push((peer, Msg::Sync(self.vc.clone())));
    }

    fn step(&mut self, _now: Now, from: NodeId, msg: Msg) {
        if !self.peers.contains(&from) {
            return;
        }
        match msg {
            Msg::Updates(updates) => {
                for u in updates {
                    if u.seq > self.applied(u.origin) {
                        self.pending.entry((u.origin, u.seq)).or_insert(u);
                    }
                }
                self.drain_pending();
            }
            Msg::Sync(theirs) => {
                let mut missing = Vec::new();
                for (origin, updates) in &self.log {
                    let have = theirs.get(origin).copied().unwrap_or(0) as usize;
                    missing
                        .extend(updates.iter().skip(have).take(MAX_SYNC - missing.len()).cloned());
                    if missing.len() >= MAX_SYNC {
                        break;
                    }
                }
                if !missing.is_empty() {
                    self.ready.messages.push((from, Msg::Updates(missing)));
                }
            }
        }
    }

    fn propose(&mut self, _now: Now, req: RequestId, op: ClientOp) {
        let result = execute(&op, |k| self.get(k)).map(|effect| {
            if !effect.writes.is_empty() {
                let update = Update {
                    origin: self.id,
                    seq: self.applied(self.id) + 1,
                    deps: self.vc.clone(),
                    lamport: self.lamport + 1,
                    writes: effect.writes.into_iter().collect(),
                };
                self.apply(update.clone(), true);
                for p in self.peers.clone() {
                    self.ready.messages.push((p, Msg::Updates(vec![update.clone()])));
                }
            }
            effect.reply
        });
        self.ready.replies.push((req, result));
    }

    fn take_ready(&mut self) -> Ready<Msg, Update> {
        std::mem::replace(&mut self.ready, Ready::new(true))
    }

    fn status(&self) -> CoreStatus {
        let mut extra = serde_json::Map::new();
        extra.insert("vector_clock".into(), serde_json::json!(self.vc));
        extra.insert("lamport".into(), self.lamport.into());
        extra.insert("buffered_updates".into(), self.pending.len().into());
        extra.insert("keys".into(), self.store.len().into());
        CoreStatus { role: "peer", term: self.lamport, leader: None, extra }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modes::testnet::TestNet;
    use crate::types::Reply;
    use serde_json::json;

    fn cluster() -> TestNet<CausalCore> {
        TestNet::new(
            (1..=3).map(|id| {
                (id, CausalCore::new(id, vec![1, 2, 3], Timing::default(), id, Vec::new()))
            }),
        )
    }

    fn key(s: &str) -> Key {
        Key::Str(s.into())
    }

    #[test]
    fn an_effect_is_never_visible_before_its_cause() {
        let mut net = cluster();
        // Node 1 writes the cause; node 2 sees it and writes an effect; the cause's direct
        // message to node 3 is lost, so node 3 gets the effect first and must buffer it.
        net.cut.insert((1, 3));
        net.propose(1, ClientOp::Write { key: key("cause"), value: json!("c") });
        net.deliver_all();
        let r = net.propose(2, ClientOp::Read { key: key("cause") });
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!("c")))));
        net.propose(2, ClientOp::Write { key: key("effect"), value: json!("e") });
        net.deliver_all();
        assert_eq!(
            net.cores[&3].value(&key("effect")),
            json!(null),
            "buffered until its cause arrives"
        );
        assert_eq!(net.cores[&3].status().extra["buffered_updates"], json!(1));
        // Anti-entropy from node 2 (which holds both) repairs node 3 in causal order.
        net.run_for(3000);
        assert_eq!(net.cores[&3].value(&key("cause")), json!("c"));
        assert_eq!(net.cores[&3].value(&key("effect")), json!("e"));
        assert_eq!(net.cores[&3].vclock(), &VClock::from([(1, 1), (2, 1)]));
    }

    #[test]
    fn concurrent_writes_converge_to_the_same_winner() {
        let mut net = cluster();
        net.isolate(1);
        net.propose(1, ClientOp::Write { key: key("k"), value: json!(1) });
        net.propose(2, ClientOp::Write { key: key("k"), value: json!(2) });
        net.deliver_all();
        net.heal();
        net.run_for(3000);
        let v: Vec<Value> = net.cores.values().map(|c| c.value(&key("k"))).collect();
        assert!(v.iter().all(|x| *x == v[0]), "{v:?}");
    }

    #[test]
    fn updates_are_recovered_in_order_and_not_renumbered() {
        let mut net = cluster();
        net.propose(1, ClientOp::Append { key: key("l"), value: json!(1) });
        net.propose(1, ClientOp::Append { key: key("l"), value: json!(2) });
        net.deliver_all();
        net.crash(1);
        net.restart(1, |records, _| {
            CausalCore::new(1, vec![1, 2, 3], Timing::default(), 1, records)
        });
        assert_eq!(net.cores[&1].value(&key("l")), json!([1, 2]));
        net.propose(1, ClientOp::Append { key: key("l"), value: json!(3) });
        net.run_for(500);
        assert!(net.cores.values().all(|c| c.value(&key("l")) == json!([1, 2, 3])));
        assert_eq!(net.cores[&2].vclock().get(&1), Some(&3));
    }
}
