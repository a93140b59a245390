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
//! With `--resolution crdt` (see `crdt.rs`) the same replication carries conflict-free
//! states instead: an append or add joins a list union and an increment a PN-counter, so
//! concurrent appends on different nodes are all kept; writes and compare-and-sets are
//! refused. Versions are then the states' fingerprints, and a digest repairs every key whose
//! fingerprint differs, both ways.
//!
//! The write-ahead log is written but not fsynced: a killed process keeps what it wrote (the
//! kernel has it), only a machine crash can lose recent writes, and peers hold copies anyway.

use crate::core::{Core, GossipTimer, Ready, Timing, other_nodes};
use crate::modes::crdt::{Resolution, State, execute_resolved};
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
    resolution: Resolution,
    timing: Timing,
    rng: SmallRng,
    store: BTreeMap<Key, (Value, Version)>,
    /// The highest version time this node issued or (eventual) saw (lww only).
    clock: i64,
    /// The last sequence number of this node's crdt appends (crdt only), so its dots stay
    /// unique across restarts.
    seq: u64,
    gossip: GossipTimer,
    ready: Ready<Msg, Versioned>,
}

impl LwwCore {
    /// Builds a node from its persisted values.
    pub fn new(
        id: NodeId,
        peers: Vec<NodeId>,
        (flavor, resolution): (Flavor, Resolution),
        timing: Timing,
        seed: u64,
        records: Vec<Versioned>,
    ) -> Self {
        let mut core = LwwCore {
            id,
            peers: other_nodes(id, peers),
            flavor,
            resolution,
            timing,
            rng: SmallRng::seed_from_u64(seed),
            store: BTreeMap::new(),
            clock: 0,
            seq: 0,
            gossip: GossipTimer::default(),
            ready: Ready::new(false),
        };
        for r in records {
            core.merge(r, false);
        }
        if resolution == Resolution::Crdt {
            core.seq = core
                .store
                .iter()
                .filter_map(|(k, (v, _))| State::from_json(k, v).ok())
                .map(|s| s.max_seq_of(id))
                .max()
                .unwrap_or(0);
        }
        core
    }

    /// Merges `entry` into what the node has (lww: keeps it if newer; crdt: joins it);
    /// returns whether anything changed. A crdt entry that is not a state (a log from an lww
    /// run) is dropped: it cannot be merged without losing what it or the node holds.
    fn merge(&mut self, entry: Versioned, persist: bool) -> bool {
        let Ok(Some((value, version))) = self.resolution.merged(self.store.get(&entry.key), &entry)
        else {
            return false;
        };
        if self.resolution == Resolution::Lww
            && (self.flavor == Flavor::Eventual || entry.version.node == self.id)
        {
            self.clock = self.clock.max(entry.version.time);
        }
        self.store.insert(entry.key.clone(), (value.clone(), version));
        if persist {
            self.ready.persist.push(Versioned { key: entry.key, value, version });
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

    /// The value a key has on this node as a client would read it (for tests).
    pub fn value(&self, key: &Key) -> Value {
        self.resolution.as_read(key, self.store.get(key).map(|(v, _)| v))
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
                    .filter(|(k, (_, v))| self.resolution.should_send(*v, theirs.get(*k).copied()))
                    .map(|(k, _)| k);
                let newer_here: Vec<Key> = newer_here.cloned().collect();
                let newer_here = self.this_round(newer_here);
                let push = self.entries_for(newer_here.iter());
                let pull: Vec<Key> = theirs
                    .iter()
                    .filter(|(k, t)| {
                        self.resolution.should_send(**t, self.store.get(*k).map(|(_, v)| *v))
                    })
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
        let (id, flavor, store, clock) = (self.id, self.flavor, &self.store, &mut self.clock);
        // The lww version is drawn only for an operation that writes.
        let version = || {
            let time = match flavor {
                Flavor::MultiLeader => now.wall_us.max(*clock + 1),
                Flavor::Eventual => *clock + 1,
            };
            *clock = time;
            Version { time, node: id }
        };
        let stored = |k: &Key| store.get(k).cloned();
        let result = execute_resolved(self.resolution, &op, stored, id, &mut self.seq, version)
            .map(|(reply, pushed)| {
                for entry in &pushed {
                    self.merge(entry.clone(), true);
                }
                if self.flavor == Flavor::MultiLeader && !pushed.is_empty() {
                    for p in self.peers.clone() {
                        self.ready.messages.push((p, Msg::Push { entries: pushed.clone() }));
                    }
                }
                reply
            });
        self.ready.replies.push((req, result));
    }

    fn take_ready(&mut self) -> Ready<Msg, Versioned> {
        std::mem::replace(&mut self.ready, Ready::new(false))
    }

    fn status(&self) -> CoreStatus {
        let mut extra = serde_json::Map::new();
        extra.insert("keys".into(), self.store.len().into());
        extra.insert("resolution".into(), self.resolution.name().into());
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
    use crate::types::{MicroOp, OpError, Reply};
    use serde_json::json;

    fn cluster(flavor: Flavor) -> TestNet<LwwCore> {
        TestNet::new((1..=3).map(|id| {
            (
                id,
                LwwCore::new(
                    id,
                    vec![1, 2, 3],
                    (flavor, Resolution::Lww),
                    Timing::default(),
                    id,
                    Vec::new(),
                ),
            )
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
                    (Flavor::Eventual, Resolution::Lww),
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

    fn crdt_cluster(flavor: Flavor) -> TestNet<LwwCore> {
        TestNet::new((1..=3).map(|id| {
            let core = LwwCore::new(
                id,
                vec![1, 2, 3],
                (flavor, Resolution::Crdt),
                Timing::default(),
                id,
                Vec::new(),
            );
            (id, core)
        }))
    }

    #[test]
    fn crdt_keeps_every_concurrent_append_across_a_partition_in_both_flavors() {
        for flavor in [Flavor::MultiLeader, Flavor::Eventual] {
            let mut net = crdt_cluster(flavor);
            net.isolate(3);
            let mut acked = Vec::new();
            for (i, at) in [1, 3, 2, 3, 1].into_iter().enumerate() {
                let r = net.propose(at, ClientOp::Append { key: k(), value: json!(i) });
                assert_eq!(net.reply(r), Some(&Ok(Reply::Done)), "{flavor:?}: accepted locally");
                acked.push(json!(i));
            }
            net.run_for(1000);
            net.heal();
            net.run_for(3000);
            let v = values(&net);
            assert!(v.iter().all(|x| *x == v[0]), "{flavor:?}: replicas converge: {v:?}");
            let mut got = v[0].as_array().cloned().unwrap_or_default();
            got.sort_by_key(|x| x.as_i64());
            assert_eq!(got, acked, "{flavor:?}: no acknowledged append is lost");
        }
    }

    #[test]
    fn crdt_counters_add_up_and_registers_are_refused() {
        let mut net = crdt_cluster(Flavor::Eventual);
        let inc = |d: i64| ClientOp::Txn { ops: vec![MicroOp::Inc(k(), json!(d))] };
        for (at, d) in [(1, 5), (2, 3), (3, -1)] {
            let r = net.propose(at, inc(d));
            assert!(matches!(net.reply(r), Some(Ok(Reply::Txn(_)))));
        }
        net.run_for(3000);
        assert_eq!(values(&net), vec![json!(7); 3], "a PN-counter loses no increment");
        let w = net.propose(1, ClientOp::Write { key: Key::Int(2), value: json!(1) });
        assert!(matches!(net.reply(w), Some(Err(OpError::BadRequest(m))) if m.contains("crdt")));
        assert_eq!(net.cores[&1].value(&Key::Int(2)), json!(null), "the refusal wrote nothing");
    }

    #[test]
    fn a_restarted_crdt_node_keeps_its_state_and_never_reuses_a_dot() {
        let mut net = crdt_cluster(Flavor::Eventual);
        net.propose(2, ClientOp::Append { key: k(), value: json!("a") });
        net.crash(2);
        net.restart(2, |records, _| {
            LwwCore::new(
                2,
                vec![1, 2, 3],
                (Flavor::Eventual, Resolution::Crdt),
                Timing::default(),
                2,
                records,
            )
        });
        assert_eq!(net.cores[&2].value(&k()), json!(["a"]));
        assert_eq!(net.cores[&2].seq, 1, "the sequence resumes after the logged dot");
        net.propose(2, ClientOp::Append { key: k(), value: json!("b") });
        assert_eq!(net.cores[&2].value(&k()), json!(["a", "b"]));
    }

    #[test]
    fn values_are_recovered_from_the_log() {
        let mut net = cluster(Flavor::Eventual);
        net.propose(2, ClientOp::Write { key: k(), value: json!(8) });
        net.crash(2);
        net.restart(2, |records, _| {
            LwwCore::new(
                2,
                vec![1, 2, 3],
                (Flavor::Eventual, Resolution::Lww),
                Timing::default(),
                2,
                records,
            )
        });
        assert_eq!(net.cores[&2].value(&k()), json!(8));
    }
}
