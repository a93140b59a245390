//! A hand-stepped network of cores for unit tests: the test decides when time passes, which
//! messages are delivered and which links are cut, so the classic protocol scenarios replay
//! exactly. Records are "persisted" by keeping them, so a node can be rebuilt from them.

use crate::core::Core;
use crate::types::{ClientOp, NodeId, Now, OpError, Reply, RequestId};
use std::collections::{BTreeMap, BTreeSet};

/// The cores, the messages in flight and the cut links.
pub struct TestNet<C: Core> {
    pub cores: BTreeMap<NodeId, C>,
    /// Every record each node persisted, in order.
    pub disk: BTreeMap<NodeId, Vec<C::Record>>,
    /// Messages sent and not yet delivered: (from, to, message).
    pub in_flight: Vec<(NodeId, NodeId, C::Msg)>,
    /// Directed links (from, to) whose messages are dropped.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Nodes that are down: they neither receive nor tick.
    pub down: BTreeSet<NodeId>,
    /// Answers to client requests, by request id.
    pub replies: BTreeMap<RequestId, Result<Reply, OpError>>,
    pub now_ms: u64,
    next_req: RequestId,
}

impl<C: Core> TestNet<C>
where
    C::Record: Clone,
{
    pub fn new(cores: impl IntoIterator<Item = (NodeId, C)>) -> Self {
        let cores: BTreeMap<NodeId, C> = cores.into_iter().collect();
        let disk = cores.keys().map(|id| (*id, Vec::new())).collect();
        TestNet {
            cores,
            disk,
            in_flight: Vec::new(),
            cut: BTreeSet::new(),
            down: BTreeSet::new(),
            replies: BTreeMap::new(),
            now_ms: 1,
            next_req: 1,
        }
    }

    pub fn now(&self) -> Now {
        Now { mono_ms: self.now_ms, wall_us: self.now_ms as i64 * 1000 }
    }

    /// Collects every node's `Ready`.
    fn collect(&mut self) {
        for (id, core) in &mut self.cores {
            let ready = core.take_ready();
            self.disk.entry(*id).or_default().extend(ready.persist);
            for (to, msg) in ready.messages {
                self.in_flight.push((*id, to, msg));
            }
            self.replies.extend(ready.replies);
        }
    }

    /// Advances time by `ms` in steps of 10 ms, ticking every live node and delivering all
    /// messages after each step.
    pub fn run_for(&mut self, ms: u64) {
        for _ in 0..ms / 10 {
            self.now_ms += 10;
            let now = self.now();
            for (id, core) in &mut self.cores {
                if !self.down.contains(id) {
                    core.tick(now);
                }
            }
            self.deliver_all();
        }
    }

    /// Delivers messages until none are left (cut links and down nodes drop theirs).
    pub fn deliver_all(&mut self) {
        self.collect();
        for _ in 0..10_000 {
            if self.in_flight.is_empty() {
                return;
            }
            self.deliver_round();
        }
        panic!("messages kept flowing for 10000 rounds");
    }

    /// Delivers only the messages in flight now (their answers stay in flight).
    pub fn deliver_round(&mut self) {
        self.collect();
        let batch = std::mem::take(&mut self.in_flight);
        let now = self.now();
        for (from, to, msg) in batch {
            if self.cut.contains(&(from, to))
                || self.down.contains(&to)
                || self.down.contains(&from)
            {
                continue;
            }
            if let Some(core) = self.cores.get_mut(&to) {
                core.step(now, from, msg);
            }
        }
        self.collect();
    }

    /// Submits a client request at `node` and returns its id (the answer lands in `replies`).
    pub fn propose(&mut self, node: NodeId, op: ClientOp) -> RequestId {
        let req = self.next_req;
        self.next_req += 1;
        let now = self.now();
        if let Some(core) = self.cores.get_mut(&node) {
            core.propose(now, req, op);
        }
        self.collect();
        req
    }

    /// Cuts both directions between `a` and every node in `others`.
    pub fn isolate(&mut self, a: NodeId) {
        let ids: Vec<NodeId> = self.cores.keys().copied().collect();
        for b in ids.into_iter().filter(|b| *b != a) {
            self.cut.insert((a, b));
            self.cut.insert((b, a));
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Crashes a node: it stops, and the messages it had not yet sent are lost.
    pub fn crash(&mut self, id: NodeId) {
        if let Some(core) = self.cores.get_mut(&id) {
            // What it had not handed to the shell never left.
            let _ = core.take_ready();
        }
        self.in_flight.retain(|(from, _, _)| *from != id);
        self.down.insert(id);
    }

    /// Replaces a crashed node by one rebuilt from its records.
    pub fn restart(&mut self, id: NodeId, rebuild: impl FnOnce(Vec<C::Record>, Now) -> C) {
        let records = self.disk.get(&id).cloned().unwrap_or_default();
        let core = rebuild(records, self.now());
        self.cores.insert(id, core);
        self.down.remove(&id);
    }

    pub fn reply(&self, req: RequestId) -> Option<&Result<Reply, OpError>> {
        self.replies.get(&req)
    }
}
