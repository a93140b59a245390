//! Last-write-wins replication: the core behind `multi-leader` and `eventual`.
//!
//! Every node accepts every operation and executes it against its local copy at once
//! (so a transaction is atomic on that node only), stamps each key it writes with a
//! [`Version`] and replicates the new values. A replica keeps, per key, the value with the
//! highest version; versions are totally ordered, so replicas that saw the same writes agree.
//!
//! - `multi-leader`: versions are `(wall-clock microseconds, node id)` read from the node's
//!   own clock (host clock plus the nemesis' offset), so clock skew decides which of two
//!   writes survives, even one that happened later in real time. A node never issues a lower
//!   timestamp than its previous one. New writes are pushed to every peer at once; gossip
//!   repairs what the network lost.
//! - `eventual`: versions are `(Lamport counter, node id)`, immune to clock skew; nothing is
//!   pushed, replicas converge only through periodic anti-entropy gossip.
//!
//! Gossip: every `gossip_ms` a node sends one random peer a digest (key → version); the peer
//! pushes back what it has newer and pulls what it lacks. In `eventual` each round repairs a
//! random half of the keys that differ (at least one), as range-by-range anti-entropy does, so
//! keys travel independently: a node can hold a write without the earlier writes it depends
//! on (causal violations across nodes) and a transaction's keys can arrive apart (fractured
//! reads). `multi-leader` repairs every differing key at once (its pushes already carry
//! each write whole). An append or cas is a local
//! read-modify-write whose result is written back whole, so concurrent appends on different
//! nodes lose all but one (a lost update checkers should report).
//!
//! The write-ahead log is written but not fsynced: a killed process keeps what it wrote (the
//! kernel has it), only a machine crash can lose recent writes, and peers hold copies anyway.

use crate::core::{Core, GossipTimer, Ready, Timing, other_nodes};
use crate::kv::execute;
use crate::types::{ClientOp, CoreStatus, Key, NodeId, Now, RequestId, Value};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How versions are made and how updates travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavor {
    /// Wall-clock versions, pushed on write.
    MultiLeader,
    /// Lamport versions, gossip only.
    Eventual,
}

/// The version of a key's value: compared by time, then by node id.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Version {
    /// Wall-clock microseconds (multi-leader) or a Lamport counter (eventual).
    pub time: i64,
    /// The node that wrote the value.
    pub node: NodeId,
}

/// One stored value with its version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Versioned {
    /// The key.
    pub key: Key,
    /// The value (`null` is a delete, kept as a tombstone so it replicates).
    pub value: Value,
    /// Its version.
    pub version: Version,
}

/// Messages between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Msg {
    /// Values the receiver should merge.
    Push {
        /// The values.
        entries: Vec<Versioned>,
    },
    /// Anti-entropy: the sender's version of every key it holds.
    Digest {
        /// Key and version pairs.
        versions: Vec<(Key, Version)>,
    },
    /// Anti-entropy: keys the sender wants the receiver's values of.
    Pull {
        /// The keys.
        keys: Vec<Key>,
    },
}

/// The LWW core.
#[derive(Debug)]
pub struct LwwCore {
    id: NodeId,
    peers: Vec<NodeId>,
    flavor: Flavor,
    timing: Timing,
    rng: SmallRng,
    store: BTreeMap<Key, (Value, Version)>,
    /// The highest version time this node issued or (eventual) saw.
    clock: i64,
    gossip: GossipTimer,
    ready: Ready<Msg, Versioned>,
}

impl LwwCore {
    /// Builds a node from its persisted values.
    pub fn new(
        id: NodeId,
        peers: Vec<NodeId>,
        flavor: Flavor,
        timing: Timing,
        seed: u64,
        records: Vec<Versioned>,
    ) -> Self {
        let mut core = LwwCore {
            id,
            peers: other_nodes(id, peers),
            flavor,
            timing,
            rng: SmallRng::seed_from_u64(seed),
            store: BTreeMap::new(),
            clock: 0,
            gossip: GossipTimer::default(),
            ready: Ready::new(false),
        };
        for r in records {
            core.merge(r, false);
        }
        core
    }

    /// Keeps `entry` if it is newer than what the node has; returns whether it was.
    fn merge(&mut self, entry: Versioned, persist: bool) -> bool {
        if self.store.get(&entry.key).is_some_and(|(_, v)| *v >= entry.version) {
            return false;
        }
        if self.flavor == Flavor::Eventual || entry.version.node == self.id {
            self.clock = self.clock.max(entry.version.time);
        }
        self.store.insert(entry.key.clone(), (entry.value.clone(), entry.version));
        if persist {
            self.ready.persist.push(entry);
        }
        true
    }

    /// The differing keys one anti-entropy round repairs: all of them in `multi-leader`; in
    /// `eventual` each with probability 1/2, and at least one, so that keys travel apart.
    fn this_round(&mut self, keys: Vec<Key>) -> Vec<Key> {
        if self.flavor != Flavor::Eventual || keys.len() < 2 {
            return keys;
        }
        let first = self.rng.random_range(0..keys.len());
        keys.into_iter()
            .enumerate()
            .filter(|(i, _)| *i == first || self.rng.random_bool(0.5))
            .map(|(_, k)| k)
            .collect()
    }

    fn new_version(&mut self, now: Now) -> Version {
        let time = match self.flavor {
            Flavor::MultiLeader => now.wall_us.max(self.clock + 1),
            Flavor::Eventual => self.clock + 1,
        };
        self.clock = time;
        Version { time, node: self.id }
    }

    fn get(&self, key: &Key) -> Value {
        self.store.get(key).map_or(Value::Null, |(v, _)| v.clone())
    }

    /// The value a key has on this node (for tests).
    pub fn value(&self, key: &Key) -> Value {
        self.get(key)
    }

    fn entries_for<'a>(&self, keys: impl Iterator<Item = &'a Key>) -> Vec<Versioned> {
        keys.filter_map(|k| {
            self.store.get(k).map(|(value, version)| Versioned {
                key: k.clone(),
                value: value.clone(),
                version: *version,
            })
        })
        .collect()
    }
}

impl Core for LwwCore {
    type Msg = Msg;
    type Record = Versioned;

    fn tick(&mut self, now: Now) {
        let Some(peer) = self.gossip.due(now, self.timing.gossip_ms, &self.peers, &mut self.rng)
        else {
            return;
        };
        let versions = self.store.iter().map(|(k, (_, v))| (k.clone(), *v)).collect();
        self.ready.messages.push((peer, Msg::Digest { versions }));
    }

    fn step(&mut self, _now: Now, from: NodeId, msg: Msg) {
        if !self.peers.contains(&from) {
            return;
        }
        match msg {
            Msg::Push { entries } => {
                for e in entries {
                    self.merge(e, true);
                }
            }
            Msg::Digest { versions } => {
                let theirs: BTreeMap<Key, Version> = versions.into_iter().collect();
                let newer_here = self
                    .store
                    .iter()
                    .filter(|(k, (_, v))| theirs.get(*k).is_none_or(|t| t < v))
                    .map(|(k, _)| k);
                let newer_here: Vec<Key> = newer_here.cloned().collect();
                let newer_here = self.this_round(newer_here);
                let push = self.entries_for(newer_here.iter());
                let pull: Vec<Key> = theirs
                    .iter()
                    .filter(|(k, t)| self.store.get(*k).is_none_or(|(_, v)| v < *t))
                    .map(|(k, _)| k.clone())
                    .collect();
                let pull = self.this_round(pull);
                if !push.is_empty() {
                    self.ready.messages.push((from, Msg::Push { entries: push }));
                }
                if !pull.is_empty() {
                    self.ready.messages.push((from, Msg::Pull { keys: pull }));
                }
            }
            Msg::Pull { keys } => {
                let entries = self.entries_for(keys.iter());
                if !entries.is_empty() {
                    self.ready.messages.push((from, Msg::Push { entries }));
                }
            }
        }
    }

    fn propose(&mut self, now: Now, req: RequestId, op: ClientOp) {
        let result = execute(&op, |k| self.get(k)).map(|effect| {
            if !effect.writes.is_empty() {
                let version = self.new_version(now);
                let mut pushed = Vec::with_capacity(effect.writes.len());
                for (key, value) in effect.writes {
                    let entry = Versioned { key, value, version };
                    self.merge(entry.clone(), true);
                    pushed.push(entry);
                }
                if self.flavor == Flavor::MultiLeader {
                    for p in self.peers.clone() {
                        self.ready.messages.push((p, Msg::Push { entries: pushed.clone() }));
                    }
                }
            }
            effect.reply
        });
        self.ready.replies.push((req, result));
    }

    fn take_ready(&mut self) -> Ready<Msg, Versioned> {
        std::mem::replace(&mut self.ready, Ready::new(false))
    }

    fn status(&self) -> CoreStatus {
        let mut extra = serde_json::Map::new();
        extra.insert("keys".into(), self.store.len().into());
        extra.insert(
            match self.flavor {
                Flavor::MultiLeader => "last_timestamp_us",
                Flavor::Eventual => "lamport",
            }
            .into(),
            self.clock.into(),
        );
        let term = match self.flavor {
            Flavor::MultiLeader => 0,
            Flavor::Eventual => u64::try_from(self.clock).unwrap_or(0),
        };
        CoreStatus { role: "peer", term, leader: None, extra }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modes::testnet::TestNet;
    use crate::types::{OpError, Reply};
    use serde_json::json;

    fn cluster(flavor: Flavor) -> TestNet<LwwCore> {
        TestNet::new((1..=3).map(|id| {
            (id, LwwCore::new(id, vec![1, 2, 3], flavor, Timing::default(), id, Vec::new()))
        }))
    }

    fn k() -> Key {
        Key::Int(1)
    }

    fn values(net: &TestNet<LwwCore>) -> Vec<Value> {
        net.cores.values().map(|c| c.value(&k())).collect()
    }

    #[test]
    fn eventual_converges_by_gossip_once_a_partition_heals() {
        let mut net = cluster(Flavor::Eventual);
        net.isolate(3);
        let w = net.propose(1, ClientOp::Write { key: k(), value: json!("a") });
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)), "accepted locally at once");
        let r = net.propose(3, ClientOp::Read { key: k() });
        assert_eq!(
            net.reply(r),
            Some(&Ok(Reply::Value(json!(null)))),
            "a stale read on the far side"
        );
        net.run_for(2000);
        assert_eq!(values(&net), vec![json!("a"), json!("a"), json!(null)]);
        net.heal();
        net.run_for(3000);
        assert_eq!(values(&net), vec![json!("a"); 3]);
    }

    #[test]
    fn eventual_keys_travel_apart_so_a_node_can_hold_a_write_without_its_cause() {
        // Node 1 writes x, then y (y causally after x). Watch node 3 as gossip spreads them:
        // for some seed it holds y while x is still missing, a causal violation a reader
        // there would see; every seed converges in the end.
        let (x, y) = (Key::Int(1), Key::Int(2));
        let mut fractured = 0;
        for seed in 0..20u64 {
            let mut net = TestNet::new((1..=3).map(|id| {
                let core = LwwCore::new(
                    id,
                    vec![1, 2, 3],
                    Flavor::Eventual,
                    Timing::default(),
                    seed * 7 + id,
                    Vec::new(),
                );
                (id, core)
            }));
            net.propose(1, ClientOp::Write { key: x.clone(), value: json!("x") });
            net.propose(1, ClientOp::Write { key: y.clone(), value: json!("y") });
            let mut saw = false;
            for _ in 0..400 {
                net.run_for(10);
                let c3 = &net.cores[&3];
                saw |= c3.value(&y) == json!("y") && c3.value(&x).is_null();
            }
            let c3 = &net.cores[&3];
            assert_eq!(
                (c3.value(&x), c3.value(&y)),
                (json!("x"), json!("y")),
                "seed {seed} converges"
            );
            fractured += usize::from(saw);
        }
        assert!(fractured > 0, "in 20 seeds node 3 never held y without x");
    }

    #[test]
    fn concurrent_appends_on_two_nodes_lose_one_of_them() {
        let mut net = cluster(Flavor::Eventual);
        let a = net.propose(1, ClientOp::Append { key: k(), value: json!(1) });
        let b = net.propose(2, ClientOp::Append { key: k(), value: json!(2) });
        assert_eq!((net.reply(a), net.reply(b)), (Some(&Ok(Reply::Done)), Some(&Ok(Reply::Done))));
        net.run_for(3000);
        let v = values(&net);
        assert!(v.iter().all(|x| *x == v[0]), "replicas converge: {v:?}");
        assert!(v[0] == json!([1]) || v[0] == json!([2]), "one acknowledged append is lost: {v:?}");
    }

    #[test]
    fn multi_leader_lets_a_skewed_clock_override_a_later_write() {
        let mut net = cluster(Flavor::MultiLeader);
        // Node 1 writes at wall time 10 s; node 2, whose clock is a minute slow, writes later
        // in real time but with an older timestamp, and loses everywhere.
        let now = net.now();
        net.cores.get_mut(&1).expect("node 1").propose(
            Now { wall_us: 10_000_000, ..now },
            100,
            ClientOp::Write { key: k(), value: json!("first") },
        );
        net.deliver_all();
        net.cores.get_mut(&2).expect("node 2").propose(
            Now { wall_us: 10_000_000 - 60_000_000, ..now },
            101,
            ClientOp::Write { key: k(), value: json!("second") },
        );
        net.deliver_all();
        assert_eq!(net.reply(101), Some(&Ok(Reply::Done)));
        net.run_for(1000);
        assert_eq!(values(&net), vec![json!("first"); 3]);
    }

    #[test]
    fn a_node_never_reissues_a_lower_timestamp_for_its_own_writes() {
        let mut net = cluster(Flavor::MultiLeader);
        let now = net.now();
        let c = net.cores.get_mut(&1).expect("node 1");
        c.propose(
            Now { wall_us: 5_000_000, ..now },
            1,
            ClientOp::Write { key: k(), value: json!(1) },
        );
        c.propose(
            Now { wall_us: 1_000_000, ..now },
            2,
            ClientOp::Write { key: k(), value: json!(2) },
        );
        assert_eq!(c.value(&k()), json!(2), "the node's own later write wins locally");
        c.propose(now, 3, ClientOp::Cas { key: k(), from: json!(1), to: json!(3) });
        let ready = c.take_ready();
        assert!(
            ready
                .replies
                .iter()
                .any(|(r, x)| *r == 3 && matches!(x, Err(OpError::CasMismatch { .. })))
        );
    }

    #[test]
    fn values_are_recovered_from_the_log() {
        let mut net = cluster(Flavor::Eventual);
        net.propose(2, ClientOp::Write { key: k(), value: json!(8) });
        net.crash(2);
        net.restart(2, |records, _| {
            LwwCore::new(2, vec![1, 2, 3], Flavor::Eventual, Timing::default(), 2, records)
        });
        assert_eq!(net.cores[&2].value(&k()), json!(8));
    }
}
