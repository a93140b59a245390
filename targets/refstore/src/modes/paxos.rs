//! Leaderless per-key Paxos in the CASPaxos style: every key is an independent register, and
//! every change is a function applied to it under a prepare quorum and an accept quorum.
//!
//! Any node proposes. A round for key `k` picks a ballot higher than any it has seen, sends
//! `Prepare` to every node (itself included), takes the value with the highest accepted
//! ballot among a majority of promises, applies the queued client operations to it in order
//! (a batch), sends `Accept` with the result and answers the clients once a majority accepted.
//! Reads go through the same two phases, so they are linearizable without leases or clocks.
//! A rejected or silent round is retried with a higher ballot after a random backoff.
//!
//! Acceptor state is fsynced before a promise or an acceptance leaves the node. The node's
//! own acceptor handles every prepare its proposer sends before the prepare goes out (same
//! `Ready` batch), so after a restart the highest ballot round found in the acceptor state is
//! at least every round this node ever used: new ballots are never reused.
//!
//! Transactions are atomic only when all their micro-ops touch one key (a single register);
//! others are refused with `bad-request`.

use crate::core::{Core, Ready, Timing, majority, other_nodes};
use crate::kv::execute;
use crate::modes::bug::Bug;
use crate::types::{ClientOp, CoreStatus, Key, NodeId, Now, OpError, Reply, RequestId, Value};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A ballot: rounds are compared first, node ids break ties, so two proposers never share one.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    /// The round number.
    pub round: u64,
    /// The proposing node.
    pub node: NodeId,
}

/// Messages between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Msg {
    /// Phase 1a.
    Prepare {
        /// The register.
        key: Key,
        /// The proposer's ballot.
        ballot: Ballot,
    },
    /// Phase 1b: a promise not to accept lower ballots, with the last accepted value.
    Promise {
        /// The register.
        key: Key,
        /// The ballot promised.
        ballot: Ballot,
        /// The highest-ballot value accepted so far.
        accepted: Option<(Ballot, Value)>,
    },
    /// Phase 2a.
    Accept {
        /// The register.
        key: Key,
        /// The proposer's ballot.
        ballot: Ballot,
        /// The new value.
        value: Value,
    },
    /// Phase 2b.
    Accepted {
        /// The register.
        key: Key,
        /// The ballot accepted.
        ballot: Ballot,
    },
    /// A prepare or accept was rejected because the acceptor promised a higher ballot.
    Nack {
        /// The register.
        key: Key,
        /// The rejected ballot.
        ballot: Ballot,
        /// The ballot the acceptor promised.
        promised: Ballot,
    },
}

/// Write-ahead log record: an acceptor's full state for one key (the last one wins).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The register.
    pub key: Key,
    /// The highest ballot promised.
    pub promised: Ballot,
    /// The highest-ballot value accepted.
    pub accepted: Option<(Ballot, Value)>,
}

#[derive(Clone, Debug, Default)]
struct Acceptor {
    promised: Ballot,
    accepted: Option<(Ballot, Value)>,
}

#[derive(Clone, Debug)]
struct Waiting {
    req: RequestId,
    op: ClientOp,
    deadline: u64,
    /// An accept carrying this operation's effect was sent: it may have taken effect.
    maybe_applied: bool,
}

#[derive(Debug)]
enum Phase {
    Prepare(BTreeMap<NodeId, Option<(Ballot, Value)>>),
    Accept { acks: BTreeSet<NodeId>, results: Vec<Result<Reply, OpError>> },
}

#[derive(Debug)]
struct Round {
    ballot: Ballot,
    phase: Phase,
    batch: Vec<Waiting>,
    started_at: u64,
}

#[derive(Debug, Default)]
struct KeyState {
    queue: VecDeque<Waiting>,
    round: Option<Round>,
    retry_at: u64,
    attempts: u32,
}

/// Most operations folded into one round.
const MAX_BATCH: usize = 64;

/// The CASPaxos core.
#[derive(Debug)]
pub struct PaxosCore {
    id: NodeId,
    peers: Vec<NodeId>,
    timing: Timing,
    rng: SmallRng,
    acceptors: BTreeMap<Key, Acceptor>,
    max_round: u64,
    keys: BTreeMap<Key, KeyState>,
    ready: Ready<Msg, Record>,
    /// Whether acceptor state is persisted (false only with the injected
    /// `forget-promises` bug, which keeps it in memory alone).
    persists: bool,
}

impl PaxosCore {
    /// Builds a node from its persisted acceptor records.
    pub fn new(
        id: NodeId,
        peers: Vec<NodeId>,
        timing: Timing,
        seed: u64,
        records: Vec<Record>,
    ) -> Self {
        let mut core = PaxosCore {
            id,
            peers: other_nodes(id, peers),
            timing,
            rng: SmallRng::seed_from_u64(seed),
            acceptors: BTreeMap::new(),
            max_round: 0,
            keys: BTreeMap::new(),
            ready: Ready::new(true),
            persists: true,
        };
        for r in records {
            core.max_round = core.max_round.max(r.promised.round);
            core.acceptors.insert(r.key, Acceptor { promised: r.promised, accepted: r.accepted });
        }
        core
    }

    /// The same core with `bug` injected (see [`Bug`]; `None` keeps it correct). Which
    /// mode a bug may be injected in is checked by `Mode::with_core`.
    pub fn with_bug(mut self, bug: Option<Bug>) -> Self {
        self.persists = bug != Some(Bug::ForgetPromises);
        self
    }

    /// Makes an acceptor's new state durable before its answer leaves (unless the injected
    /// bug forgets it).
    fn persist(&mut self, rec: Record) {
        if self.persists {
            self.ready.persist.push(rec);
        }
    }

    fn quorum(&self) -> usize {
        majority(self.peers.len() + 1)
    }

    /// Sends to a peer, or handles at once when addressed to this node.
    fn deliver(&mut self, now: Now, to: NodeId, msg: Msg) {
        if to == self.id {
            self.handle(now, to, msg);
        } else {
            self.ready.messages.push((to, msg));
        }
    }

    fn broadcast(&mut self, now: Now, msg: Msg) {
        for p in self.peers.clone() {
            self.ready.messages.push((p, msg.clone()));
        }
        self.handle(now, self.id, msg);
    }

    fn start_round(&mut self, now: Now, key: &Key) {
        let round = self.max_round + 1;
        self.max_round = round;
        let ballot = Ballot { round, node: self.id };
        let Some(ks) = self.keys.get_mut(key) else { return };
        if ks.round.is_some() || ks.queue.is_empty() {
            return;
        }
        let n = ks.queue.len().min(MAX_BATCH);
        let batch: Vec<Waiting> = ks.queue.drain(..n).collect();
        ks.round = Some(Round {
            ballot,
            phase: Phase::Prepare(BTreeMap::new()),
            batch,
            started_at: now.mono_ms,
        });
        self.broadcast(now, Msg::Prepare { key: key.clone(), ballot });
    }

    /// Gives up on the current round of `key` and schedules a retry with backoff.
    fn abandon_round(&mut self, now: Now, key: &Key) {
        let Some(ks) = self.keys.get_mut(key) else { return };
        let Some(round) = ks.round.take() else { return };
        for w in round.batch.into_iter().rev().filter(|w| w.deadline != 0) {
            if w.maybe_applied {
                // Its effect may sit in a minority of acceptors and be chosen by a later
                // round; running it again could apply it twice, so its outcome stays unknown.
                let msg = "the round was preempted after its accept was sent; the operation \
                           may still take effect";
                self.ready.replies.push((w.req, Err(OpError::Timeout(msg.into()))));
            } else {
                ks.queue.push_front(w);
            }
        }
        ks.attempts = ks.attempts.saturating_add(1);
        let cap = (self.timing.heartbeat_ms * u64::from(ks.attempts.min(8))).max(1);
        ks.retry_at = now.mono_ms + self.rng.random_range(0..cap);
    }

    fn handle(&mut self, now: Now, from: NodeId, msg: Msg) {
        match msg {
            Msg::Prepare { key, ballot } => {
                let mut pending = None;
                let a = self.acceptors.entry(key.clone()).or_default();
                let reply = if ballot >= a.promised {
                    if ballot > a.promised {
                        a.promised = ballot;
                        let rec = Record {
                            key: key.clone(),
                            promised: ballot,
                            accepted: a.accepted.clone(),
                        };
                        pending = Some(rec);
                    }
                    Msg::Promise { key, ballot, accepted: a.accepted.clone() }
                } else {
                    Msg::Nack { key, ballot, promised: a.promised }
                };
                if let Some(rec) = pending {
                    self.persist(rec);
                }
                self.max_round = self.max_round.max(ballot.round);
                self.deliver(now, from, reply);
            }
            Msg::Accept { key, ballot, value } => {
                let mut pending = None;
                let a = self.acceptors.entry(key.clone()).or_default();
                let reply = if ballot >= a.promised {
                    if a.accepted.as_ref().is_none_or(|(b, _)| *b != ballot) {
                        a.promised = ballot;
                        a.accepted = Some((ballot, value));
                        let rec = Record {
                            key: key.clone(),
                            promised: ballot,
                            accepted: a.accepted.clone(),
                        };
                        pending = Some(rec);
                    }
                    Msg::Accepted { key, ballot }
                } else {
                    Msg::Nack { key, ballot, promised: a.promised }
                };
                if let Some(rec) = pending {
                    self.persist(rec);
                }
                self.max_round = self.max_round.max(ballot.round);
                self.deliver(now, from, reply);
            }
            Msg::Promise { key, ballot, accepted } => {
                self.on_promise(now, from, key, ballot, accepted)
            }
            Msg::Accepted { key, ballot } => self.on_accepted(now, from, key, ballot),
            Msg::Nack { key, ballot, promised } => {
                self.max_round = self.max_round.max(promised.round);
                let current =
                    self.keys.get(&key).and_then(|ks| ks.round.as_ref()).map(|r| r.ballot);
                if current == Some(ballot) {
                    self.abandon_round(now, &key);
                }
            }
        }
    }

    fn on_promise(
        &mut self,
        now: Now,
        from: NodeId,
        key: Key,
        ballot: Ballot,
        accepted: Option<(Ballot, Value)>,
    ) {
        let quorum = self.quorum();
        let Some(round) = self.keys.get_mut(&key).and_then(|ks| ks.round.as_mut()) else { return };
        if round.ballot != ballot {
            return;
        }
        let Phase::Prepare(promises) = &mut round.phase else { return };
        promises.insert(from, accepted);
        if promises.len() < quorum {
            return;
        }
        let mut value = promises
            .values()
            .flatten()
            .max_by_key(|(b, _)| *b)
            .map(|(_, v)| v.clone())
            .unwrap_or(Value::Null);
        let mut results = Vec::with_capacity(round.batch.len());
        for w in &mut round.batch {
            if w.deadline == 0 {
                // Already answered `unavailable`: it must not take effect now.
                results.push(Err(OpError::Unavailable("expired".into())));
                continue;
            }
            let result = execute(&w.op, |_| value.clone()).map(|effect| {
                if let Some(v) = effect.writes.get(&key) {
                    value = v.clone();
                    w.maybe_applied = true;
                }
                effect.reply
            });
            results.push(result);
        }
        round.phase = Phase::Accept { acks: BTreeSet::new(), results };
        self.broadcast(now, Msg::Accept { key, ballot, value });
    }

    fn on_accepted(&mut self, now: Now, from: NodeId, key: Key, ballot: Ballot) {
        let quorum = self.quorum();
        let Some(ks) = self.keys.get_mut(&key) else { return };
        let Some(round) = ks.round.as_mut() else { return };
        if round.ballot != ballot {
            return;
        }
        let Phase::Accept { acks, results } = &mut round.phase else { return };
        acks.insert(from);
        if acks.len() < quorum {
            return;
        }
        let results = std::mem::take(results);
        let Some(round) = ks.round.take() else { return };
        ks.attempts = 0;
        for (w, result) in round.batch.into_iter().zip(results) {
            // A zero deadline marks a request already answered as timed out.
            if w.deadline != 0 {
                self.ready.replies.push((w.req, result));
            }
        }
        self.next_or_forget(now, &key);
    }

    fn next_or_forget(&mut self, now: Now, key: &Key) {
        match self.keys.get(key) {
            Some(ks) if ks.round.is_none() && ks.queue.is_empty() => {
                self.keys.remove(key);
            }
            Some(ks) if ks.round.is_none() && ks.retry_at <= now.mono_ms => {
                self.start_round(now, key)
            }
            _ => {}
        }
    }

    fn expire(&mut self, now: Now) {
        let t = now.mono_ms;
        for ks in self.keys.values_mut() {
            let answer = |w: &Waiting| {
                let err = if w.maybe_applied {
                    OpError::Timeout(
                        "the operation may have been accepted; its outcome is unknown".into(),
                    )
                } else {
                    OpError::Unavailable("no quorum answered in time; nothing was accepted".into())
                };
                (w.req, Err(err))
            };
            let (late, keep): (Vec<Waiting>, Vec<Waiting>) =
                ks.queue.drain(..).partition(|w| w.deadline <= t);
            ks.queue = keep.into();
            self.ready.replies.extend(late.iter().map(answer));
            if let Some(round) = &mut ks.round {
                // Requests in flight stay in the batch (their results line up by position)
                // but are answered now and marked, so the round's result is not sent twice.
                for w in round.batch.iter_mut().filter(|w| w.deadline <= t && w.deadline != 0) {
                    self.ready.replies.push(answer(w));
                    w.deadline = 0;
                }
            }
        }
    }
}

impl Core for PaxosCore {
    type Msg = Msg;
    type Record = Record;

    fn tick(&mut self, now: Now) {
        self.expire(now);
        let round_timeout = self.timing.heartbeat_ms * 4;
        let keys: Vec<Key> = self.keys.keys().cloned().collect();
        for key in keys {
            let stalled = self
                .keys
                .get(&key)
                .and_then(|ks| ks.round.as_ref())
                .is_some_and(|r| r.started_at + round_timeout <= now.mono_ms);
            if stalled {
                // Messages were lost or a quorum is unreachable: retry with a new ballot.
                self.abandon_round(now, &key);
            }
            self.next_or_forget(now, &key);
        }
    }

    fn step(&mut self, now: Now, from: NodeId, msg: Msg) {
        if self.peers.contains(&from) {
            self.handle(now, from, msg);
        }
    }

    fn propose(&mut self, now: Now, req: RequestId, op: ClientOp) {
        let keys = op.keys();
        let key = match keys.as_slice() {
            [] => {
                self.ready.replies.push((req, Ok(Reply::Txn(Vec::new()))));
                return;
            }
            [key] => key.clone(),
            _ => {
                let msg = "paxos mode runs a transaction atomically only when all its micro-ops \
                           use one key (each key is its own Paxos register)";
                self.ready.replies.push((req, Err(OpError::BadRequest(msg.into()))));
                return;
            }
        };
        let deadline = now.mono_ms + self.timing.request_ms;
        let ks = self.keys.entry(key.clone()).or_default();
        ks.queue.push_back(Waiting { req, op, deadline, maybe_applied: false });
        self.next_or_forget(now, &key);
    }

    fn take_ready(&mut self) -> Ready<Msg, Record> {
        std::mem::replace(&mut self.ready, Ready::new(true))
    }

    fn status(&self) -> CoreStatus {
        let mut extra = serde_json::Map::new();
        extra.insert("registers".into(), self.acceptors.len().into());
        extra.insert(
            "rounds_in_flight".into(),
            self.keys.values().filter(|k| k.round.is_some()).count().into(),
        );
        CoreStatus { role: "peer", term: self.max_round, leader: None, extra }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modes::testnet::TestNet;
    use serde_json::json;

    fn cluster() -> TestNet<PaxosCore> {
        TestNet::new(
            (1..=3).map(|id| {
                (id, PaxosCore::new(id, vec![1, 2, 3], Timing::default(), id, Vec::new()))
            }),
        )
    }

    fn k() -> Key {
        Key::Str("x".into())
    }

    #[test]
    fn a_write_on_one_node_is_read_on_another() {
        let mut net = cluster();
        let w = net.propose(1, ClientOp::Write { key: k(), value: json!(5) });
        net.deliver_all();
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        let r = net.propose(3, ClientOp::Read { key: k() });
        net.deliver_all();
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!(5)))));
    }

    #[test]
    fn competing_proposers_never_both_win_a_cas_and_the_loser_retries() {
        let mut net = cluster();
        let init = net.propose(1, ClientOp::Write { key: k(), value: json!(0) });
        net.deliver_all();
        assert_eq!(net.reply(init), Some(&Ok(Reply::Done)));
        // Both proposers prepare before either accepts: node 2's higher ballot preempts
        // node 1, whose accept is then refused.
        let a = net.propose(1, ClientOp::Cas { key: k(), from: json!(0), to: json!(1) });
        let b = net.propose(2, ClientOp::Cas { key: k(), from: json!(0), to: json!(2) });
        net.deliver_all();
        net.run_for(2000);
        let outcomes = [net.reply(a).cloned(), net.reply(b).cloned()];
        let wins = outcomes.iter().filter(|o| matches!(o, Some(Ok(Reply::Done)))).count();
        let mismatches =
            outcomes.iter().filter(|o| matches!(o, Some(Err(OpError::CasMismatch { .. })))).count();
        assert_eq!((wins, mismatches), (1, 1), "exactly one cas wins: {outcomes:?}");
        let winner = if matches!(outcomes[0], Some(Ok(_))) { json!(1) } else { json!(2) };
        for node in 1..=3 {
            let r = net.propose(node, ClientOp::Read { key: k() });
            net.run_for(200);
            assert_eq!(net.reply(r), Some(&Ok(Reply::Value(winner.clone()))), "node {node}");
        }
    }

    #[test]
    fn a_preempted_round_is_retried_with_a_higher_ballot() {
        let mut net = cluster();
        // Node 2 has promised a high ballot that node 1 has never heard of.
        net.cores.get_mut(&2).expect("node 2").max_round = 50;
        let hi = net.propose(2, ClientOp::Read { key: k() });
        net.deliver_all();
        assert_eq!(net.reply(hi), Some(&Ok(Reply::Value(json!(null)))));
        let w = net.propose(1, ClientOp::Append { key: k(), value: json!("a") });
        net.deliver_all();
        // The first ballot was refused; the retry after backoff succeeds.
        net.run_for(500);
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        assert!(net.cores[&1].max_round > 50);
    }

    #[test]
    fn without_a_quorum_nothing_is_accepted_and_the_answer_is_definite() {
        let mut net = cluster();
        net.isolate(1);
        let w = net.propose(1, ClientOp::Write { key: k(), value: json!(1) });
        net.run_for(5000);
        assert!(matches!(net.reply(w), Some(Err(OpError::Unavailable(_)))), "{:?}", net.reply(w));
        net.heal();
        let r = net.propose(2, ClientOp::Read { key: k() });
        net.run_for(200);
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!(null)))));
    }

    #[test]
    fn a_round_that_sent_its_accept_but_lost_its_quorum_answers_indeterminate() {
        let mut net = cluster();
        let w = net.propose(1, ClientOp::Write { key: k(), value: json!("maybe") });
        net.cut.extend([(1, 3), (3, 1)]);
        net.deliver_round(); // node 2 promises
        net.deliver_round(); // node 1 has a quorum of promises and sends its accept
        net.cut.insert((1, 2));
        net.deliver_round(); // the accept to node 2 is lost; only node 1 accepted
        net.run_for(5000);
        assert!(matches!(net.reply(w), Some(Err(OpError::Timeout(_)))), "{:?}", net.reply(w));
        // Whether "maybe" was chosen depends on which quorum the next round meets; either
        // way every later read agrees with the first.
        net.heal();
        let first = net.propose(3, ClientOp::Read { key: k() });
        net.run_for(300);
        let seen = net.reply(first).cloned();
        assert!(matches!(seen, Some(Ok(Reply::Value(_)))), "{seen:?}");
        for node in 1..=3 {
            let r = net.propose(node, ClientOp::Read { key: k() });
            net.run_for(300);
            assert_eq!(net.reply(r).cloned(), seen, "node {node}");
        }
    }

    #[test]
    fn acceptor_state_survives_a_restart_so_ballots_are_not_reused() {
        let mut net = cluster();
        let w = net.propose(1, ClientOp::Write { key: k(), value: json!(3) });
        net.deliver_all();
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        let before = net.cores[&1].max_round;
        net.crash(1);
        net.restart(1, |records, _| {
            PaxosCore::new(1, vec![1, 2, 3], Timing::default(), 9, records)
        });
        assert!(net.cores[&1].max_round >= before);
        let r = net.propose(1, ClientOp::Read { key: k() });
        net.deliver_all();
        assert_eq!(net.reply(r), Some(&Ok(Reply::Value(json!(3)))));
    }
    /// Writes 3, crashes and restarts nodes 1 and 2 (a majority) and reads at node 1
    /// while node 3, which still holds the value, is cut off.
    fn read_after_a_majority_restarts(bug: Option<Bug>) -> Option<Result<Reply, OpError>> {
        let mut net = TestNet::new((1..=3).map(|id| {
            let core = PaxosCore::new(id, vec![1, 2, 3], Timing::default(), id, Vec::new());
            (id, core.with_bug(bug))
        }));
        let w = net.propose(1, ClientOp::Write { key: k(), value: json!(3) });
        net.deliver_all();
        assert_eq!(net.reply(w), Some(&Ok(Reply::Done)));
        for id in [1, 2] {
            net.crash(id);
            net.restart(id, |records, _| {
                PaxosCore::new(id, vec![1, 2, 3], Timing::default(), 9, records).with_bug(bug)
            });
        }
        net.cut.extend([(1, 3), (3, 1)]);
        let r = net.propose(1, ClientOp::Read { key: k() });
        net.run_for(500);
        net.reply(r).cloned()
    }

    #[test]
    fn bug_forget_promises_loses_a_chosen_value_when_a_majority_restarts() {
        assert_eq!(read_after_a_majority_restarts(None), Some(Ok(Reply::Value(json!(3)))));
        assert_eq!(
            read_after_a_majority_restarts(Some(Bug::ForgetPromises)),
            Some(Ok(Reply::Value(json!(null)))),
            "the restarted acceptors forgot what they accepted"
        );
    }
}
