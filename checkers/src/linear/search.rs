//! The linearizability search for one partition: Wing–Gong–Lowe depth-first
//! search over completed operations, with crashed operations handled apart.
//!
//! The classic algorithm (as in Porcupine) keeps the history as a linked
//! list of call and return events and repeatedly linearizes a call that
//! precedes the first remaining return, backtracking when a return is
//! reached whose operation could not be linearized. A cache of (set of
//! linearized ops, model state) prunes configurations already explored.
//!
//! Crashed (`info`) operations break that cache: they have no return, so
//! they stay pending until the end, and every subset of them that has been
//! linearized is a different bitset. A history with a hundred crashed
//! writes then has 2^100 configurations, which is why Porcupine gives up on
//! long histories that are *not* linearizable. We avoid that in three ways:
//!
//! 1. **Crashed ops are optional and kept out of the ordinary bitset.** A
//!    configuration is (R, C, s): completed ops linearized, crashed ops
//!    linearized, state. The search succeeds once every completed op is
//!    linearized; crashed ops may take effect at any point after their
//!    invocation or never.
//! 2. **Dominance.** (R, C, s) can do everything (R, C', s) can when C ⊆ C':
//!    the extra crashed ops in C' are still available to it, or can be left
//!    out. The cache is keyed by (R, s) and holds the crashed sets seen; a
//!    new configuration is pruned when a subset of its C is already there.
//! 3. **Crashed ops are explored breadth-first, by burst.** At each frame
//!    (a value of R) we first compute every state reachable by linearizing
//!    crashed ops alone, shortest bursts first, so that minimal crashed sets
//!    are found before their supersets and dominance prunes the rest; then
//!    we try each completed op from each of those states. Identical pending
//!    crashed ops are interchangeable, so only the earliest is ever tried.
//!
//! R is stored compactly: all completed ops below a frontier are linearized,
//! so an R is the frontier plus the few bits of the window after it.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rustc_hash::{FxBuildHasher, FxHashMap};
use smallvec::SmallVec;

use super::model::Model;

const NIL: u32 = u32::MAX;

/// One operation of a partition, ready for the search.
#[derive(Clone, Debug)]
pub(crate) struct Entry<O> {
    /// History position of the invocation.
    pub call: u32,
    /// History position of the completion; `None` for a crashed op.
    pub ret: Option<u32>,
    /// The model operation (input and observed output).
    pub op: O,
    /// Position of this op in the partition's list (for evidence).
    pub id: u32,
}

/// What the search concluded.
#[derive(Debug)]
pub(crate) enum Outcome<S> {
    /// A linearization exists.
    Linearizable,
    /// None exists; the evidence of how far the search got.
    NotLinearizable(Failure<S>),
    /// A budget ran out.
    Unknown(String),
}

/// Evidence for a partition that has no linearization.
#[derive(Debug)]
pub(crate) struct Failure<S> {
    /// Entry id of the completed op that could not be linearized before it
    /// returned, in the configuration that got furthest.
    pub stuck: u32,
    /// Entry id of a later op that the model showed could not be explained
    /// from any state reached there (see `Model::doomed`), if that is what
    /// stopped the search.
    pub witness: Option<u32>,
    /// Entry ids of one longest linearizable prefix, in linearization order.
    pub prefix: Vec<u32>,
    /// The states the model could be in after every prefix that reached the
    /// failure point (deduplicated, at most `MAX_STATES`).
    pub states: Vec<S>,
}

/// Search statistics, for the verdict's details.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    /// Frames (distinct configurations) explored.
    pub frames: u64,
    /// Configurations stored in the cache.
    pub cached: u64,
    /// Configurations pruned by the cache (equal or dominated).
    pub pruned: u64,
}

/// Shared limits for all partitions of one check.
pub(crate) struct Limits {
    pub deadline: Option<Instant>,
    pub memory: Option<usize>,
    /// Bytes of cache in use across partitions.
    pub used: AtomicUsize,
    /// Why the first partition that ran out did, so the others stop early
    /// and say which limit it was.
    pub exhausted: std::sync::OnceLock<String>,
    /// The process's heap when the check began, where a heap meter is
    /// installed (`crate::budget`): the memory limit also holds the heap's
    /// growth, which counts what the cache's own count misses (the
    /// allocator's overhead, the frames of the search).
    pub heap_at_start: Option<usize>,
}

const MAX_STATES: usize = 16;

/// A node of the doubly linked list of completed ops' call and return events.
#[derive(Clone, Copy)]
struct Node {
    prev: u32,
    next: u32,
    /// Position in the history (for ordering and for the first-return test).
    pos: u32,
    /// Index into `ok` (completed ops, ranked by call order).
    op: u32,
    is_call: bool,
    /// For a call node, its return node; for a return node, its call node.
    other: u32,
}

/// A stored configuration: R (frontier + window), state, crashed set.
struct CacheEntry<S> {
    frontier: u32,
    window: SmallVec<[u64; 2]>,
    state: S,
    crashed: SmallVec<[u64; 1]>,
    next: u32,
}

/// A configuration reachable from a frame's base by crashed ops alone.
struct Member<S> {
    state: S,
}

/// One level of the depth-first search: a value of R.
struct Frame<S> {
    /// The base configuration (member 0) and the states reachable from it
    /// by crashed ops alone, found so far (see `expand`). Most frames only
    /// ever hold the base: inline, so entering a frame allocates nothing.
    members: SmallVec<[Member<S>; 1]>,
    /// For each member, the crashed ops (indices into `crashed`) linearized
    /// to reach it from the base, in order.
    paths: SmallVec<[SmallVec<[u32; 4]>; 1]>,
    /// Members by state hash, to find dominated ones; filled when the frame
    /// is first expanded, as only expanding reads it.
    by_state: FxHashMap<u64, SmallVec<[u32; 2]>>,
    /// Members `0..expanded` have had their successors added.
    expanded: u32,
    /// Member being explored.
    member: u32,
    /// Completed ops that may be linearized next (called before the first
    /// remaining return), earliest return first.
    candidates: SmallVec<[u32; 8]>,
    /// Next candidate to try from the current member.
    cursor: u32,
    /// History position of the first remaining return event.
    first_ret: u32,
    /// Crashed ops applied for the current member, in order.
    applied: SmallVec<[u32; 4]>,
    /// The completed op linearized to descend into the child frame.
    descended: u32,
    /// Completion position of the last op the model said doomed a
    /// candidate of this frame (NIL if none).
    witness: u32,
}

pub(crate) struct Search<'a, M: Model> {
    model: M,
    ok: Vec<&'a Entry<M::Op>>,
    crashed: Vec<&'a Entry<M::Op>>,
    /// For each crashed op, the previous pending-identical crashed op (by
    /// call order), which must be linearized first (symmetry reduction).
    twin_prev: Vec<u32>,
    nodes: Vec<Node>,
    /// Doubly linked list of crashed ops not yet linearized (by call order);
    /// index 0 is the head sentinel, crashed op i is node i + 1.
    cprev: Vec<u32>,
    cnext: Vec<u32>,
    /// Linearized completed ops (bit per rank) and the frontier below which
    /// all are linearized.
    lin: Vec<u64>,
    n_lin: u32,
    frontier: u32,
    /// Zobrist hash of `lin`.
    zob: u64,
    zkeys: Vec<u64>,
    /// Linearized crashed ops.
    cset: Vec<u64>,
    cache: FxHashMap<u64, u32>,
    entries: Vec<CacheEntry<M::State>>,
    /// Call node of each completed op, by rank.
    call_node: Vec<u32>,
    limits: &'a Limits,
    stats: Stats,
    /// Bytes of cache this search holds, and how many it has reported to `limits`.
    bytes: usize,
    published: usize,
    // Evidence of the furthest failure.
    best_pos: u32,
    best_stuck: u32,
    best_witness: u32,
    /// `best_prefix` is kept incrementally: `snap_offsets[i]` is where
    /// frame i's ops start in it, and frames `0..snap_valid` have not changed
    /// since they were recorded. Copying the whole stack at every new
    /// furthest failure would be quadratic on long histories.
    snap_offsets: Vec<usize>,
    snap_valid: usize,
    best_prefix: Vec<u32>,
    best_states: Vec<M::State>,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<'a, M: Model> Search<'a, M> {
    pub(crate) fn new(model: M, entries: &'a [Entry<M::Op>], limits: &'a Limits) -> Self {
        let mut ok: Vec<&Entry<M::Op>> = entries.iter().filter(|e| e.ret.is_some()).collect();
        ok.sort_by_key(|e| e.call);
        let mut crashed: Vec<&Entry<M::Op>> = entries.iter().filter(|e| e.ret.is_none()).collect();
        crashed.sort_by_key(|e| e.call);

        // Events of completed ops in history order: node 0 is the head sentinel.
        let mut events: Vec<(u32, u32, bool)> = Vec::with_capacity(ok.len() * 2);
        for (rank, e) in ok.iter().enumerate() {
            events.push((e.call, rank as u32, true));
            events.push((e.ret.unwrap_or(u32::MAX), rank as u32, false));
        }
        events.sort_unstable_by_key(|&(pos, _, _)| pos);
        let mut nodes = Vec::with_capacity(events.len() + 1);
        nodes.push(Node { prev: NIL, next: NIL, pos: 0, op: NIL, is_call: false, other: NIL });
        let mut call_node = vec![NIL; ok.len()];
        let mut ret_node = vec![NIL; ok.len()];
        for (i, &(pos, rank, is_call)) in events.iter().enumerate() {
            let idx = i as u32 + 1;
            nodes[idx as usize - 1].next = idx;
            nodes.push(Node { prev: idx - 1, next: NIL, pos, op: rank, is_call, other: NIL });
            if is_call {
                call_node[rank as usize] = idx;
            } else {
                ret_node[rank as usize] = idx;
            }
        }
        for rank in 0..ok.len() {
            let (c, r) = (call_node[rank], ret_node[rank]);
            nodes[c as usize].other = r;
            nodes[r as usize].other = c;
        }

        let n_crashed = crashed.len();
        let mut twin_prev = vec![NIL; n_crashed];
        let mut last_seen: FxHashMap<&M::Op, u32> = FxHashMap::default();
        for (i, e) in crashed.iter().enumerate() {
            if let Some(prev) = last_seen.insert(&e.op, i as u32) {
                twin_prev[i] = prev;
            }
        }
        let cprev = (0..=n_crashed as u32).map(|i| if i == 0 { NIL } else { i - 1 }).collect();
        let cnext = (0..=n_crashed as u32)
            .map(|i| if (i as usize) < n_crashed { i + 1 } else { NIL })
            .collect();
        let zkeys = (0..ok.len() as u64).map(|r| splitmix(r ^ 0x5EED_F417_11E5)).collect();
        let words = ok.len().div_ceil(64);
        let ok_len = ok.len();
        Search {
            model,
            ok,
            crashed,
            twin_prev,
            nodes,
            cprev,
            cnext,
            lin: vec![0; words],
            n_lin: 0,
            frontier: 0,
            zob: 0,
            zkeys,
            cset: vec![0; n_crashed.div_ceil(64)],
            // A search that never backtracks stores one configuration per
            // completed op; room for those up front spares the rehashing.
            cache: FxHashMap::with_capacity_and_hasher(ok_len, FxBuildHasher),
            entries: Vec::with_capacity(ok_len),
            call_node,
            limits,
            stats: Stats::default(),
            bytes: 0,
            published: 0,
            best_pos: 0,
            best_stuck: NIL,
            best_witness: NIL,
            snap_offsets: vec![0],
            snap_valid: 0,
            best_prefix: Vec::new(),
            best_states: Vec::new(),
        }
    }

    /// The model as the search left it (models that intern new values as
    /// they step, like kv, need this one to describe the search's states).
    pub(crate) fn model(&self) -> &M {
        &self.model
    }

    pub(crate) fn stats(&self) -> Stats {
        self.stats
    }

    // ----- the set R of linearized completed ops -----

    fn lift_ok(&mut self, rank: u32) {
        self.model
            .on_lift(&self.ok[rank as usize].op, self.ok[rank as usize].ret.unwrap_or(u32::MAX));
        let c = self.ok_call_node(rank);
        let r = self.nodes[c as usize].other;
        self.unlink(c);
        self.unlink(r);
        self.lin[rank as usize / 64] |= 1 << (rank % 64);
        self.n_lin += 1;
        self.zob ^= self.zkeys[rank as usize];
        if rank == self.frontier {
            while self.frontier < self.ok.len() as u32 && self.bit(self.frontier) {
                self.frontier += 1;
            }
        }
    }

    fn unlift_ok(&mut self, rank: u32) {
        self.model
            .on_unlift(&self.ok[rank as usize].op, self.ok[rank as usize].ret.unwrap_or(u32::MAX));
        let c = self.ok_call_node(rank);
        let r = self.nodes[c as usize].other;
        // Dancing links: relink in the reverse order of unlinking.
        self.relink(r);
        self.relink(c);
        self.lin[rank as usize / 64] &= !(1 << (rank % 64));
        self.n_lin -= 1;
        self.zob ^= self.zkeys[rank as usize];
        self.frontier = self.frontier.min(rank);
    }

    fn ok_call_node(&self, rank: u32) -> u32 {
        self.call_node[rank as usize]
    }

    fn bit(&self, rank: u32) -> bool {
        self.lin[rank as usize / 64] & (1 << (rank % 64)) != 0
    }

    fn unlink(&mut self, i: u32) {
        let Node { prev, next, .. } = self.nodes[i as usize];
        self.nodes[prev as usize].next = next;
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
    }

    fn relink(&mut self, i: u32) {
        let Node { prev, next, .. } = self.nodes[i as usize];
        self.nodes[prev as usize].next = i;
        if next != NIL {
            self.nodes[next as usize].prev = i;
        }
    }

    /// The words of `lin` from the frontier's word up to the last linearized
    /// op: with the frontier, a complete description of R.
    fn window(&self) -> SmallVec<[u64; 2]> {
        let mut out = SmallVec::new();
        let beyond = self.n_lin - self.frontier;
        let mut w = self.frontier as usize / 64;
        // Bits below the frontier in its word are all set; count only the rest.
        let low_mask =
            if self.frontier.is_multiple_of(64) { 0 } else { (1u64 << (self.frontier % 64)) - 1 };
        let mut seen = 0u32;
        let mut first = true;
        while w < self.lin.len() {
            let word = self.lin[w];
            out.push(word);
            let counted = if first { word & !low_mask } else { word };
            first = false;
            seen += counted.count_ones();
            w += 1;
            if seen >= beyond {
                break;
            }
        }
        out
    }

    // ----- crashed ops -----

    fn apply_crashed(&mut self, c: u32) {
        self.model.on_lift(&self.crashed[c as usize].op, u32::MAX);
        let node = c + 1;
        let (p, n) = (self.cprev[node as usize], self.cnext[node as usize]);
        self.cnext[p as usize] = n;
        if n != NIL {
            self.cprev[n as usize] = p;
        }
        self.cset[c as usize / 64] |= 1 << (c % 64);
    }

    fn unapply_crashed(&mut self, c: u32) {
        self.model.on_unlift(&self.crashed[c as usize].op, u32::MAX);
        let node = c + 1;
        let (p, n) = (self.cprev[node as usize], self.cnext[node as usize]);
        self.cnext[p as usize] = node;
        if n != NIL {
            self.cprev[n as usize] = node;
        }
        self.cset[c as usize / 64] &= !(1 << (c % 64));
    }

    fn crashed_applied(&self, c: u32) -> bool {
        self.cset[c as usize / 64] & (1 << (c % 64)) != 0
    }

    // ----- the cache -----

    fn key_hash(&self, state: &M::State) -> u64 {
        self.zob ^ FxBuildHasher.hash_one(state)
    }

    /// Looks up (R, state, current crashed set); true when an equal or
    /// dominating configuration is already known. Otherwise records it.
    fn visit(&mut self, state: &M::State) -> bool {
        let h = self.key_hash(state);
        let frontier = self.frontier;
        let window = self.window();
        let mut at = self.cache.get(&h).copied().unwrap_or(NIL);
        while at != NIL {
            let e = &self.entries[at as usize];
            if e.frontier == frontier && e.window == window && e.state == *state {
                let dominated = e.crashed.iter().zip(&self.cset).all(|(old, cur)| old & !cur == 0);
                if dominated {
                    self.stats.pruned += 1;
                    return true;
                }
            }
            at = e.next;
        }
        let head = self.cache.get(&h).copied().unwrap_or(NIL);
        let crashed: SmallVec<[u64; 1]> = self.cset.iter().copied().collect();
        self.bytes += std::mem::size_of::<CacheEntry<M::State>>()
            + M::state_bytes(state)
            + if window.spilled() { window.len() * 8 } else { 0 }
            + if crashed.spilled() { crashed.len() * 8 } else { 0 }
            + 16;
        self.entries.push(CacheEntry {
            frontier,
            window,
            state: state.clone(),
            crashed,
            next: head,
        });
        self.cache.insert(h, self.entries.len() as u32 - 1);
        self.stats.cached += 1;
        false
    }

    /// True when (R, state, cset + extra) is dominated by a cached entry.
    fn dominated_with(&mut self, state: &M::State, extra: u32) -> bool {
        let h = self.key_hash(state);
        let mut at = self.cache.get(&h).copied().unwrap_or(NIL);
        if at == NIL {
            return false;
        }
        let window = self.window();
        let (xw, xb) = (extra as usize / 64, 1u64 << (extra % 64));
        while at != NIL {
            let e = &self.entries[at as usize];
            if e.frontier == self.frontier && e.window == window && e.state == *state {
                let dominated =
                    e.crashed.iter().zip(&self.cset).enumerate().all(|(i, (old, cur))| {
                        let cur = if i == xw { cur | xb } else { *cur };
                        old & !cur == 0
                    });
                if dominated {
                    self.stats.pruned += 1;
                    return true;
                }
            }
            at = e.next;
        }
        false
    }

    // ----- the search -----

    /// The history position of the first remaining return event, or None
    /// when every completed op is linearized.
    fn first_return(&self) -> Option<u32> {
        let mut n = self.nodes[0].next;
        while n != NIL {
            let node = self.nodes[n as usize];
            if !node.is_call {
                return Some(node.pos);
            }
            n = node.next;
        }
        None
    }

    /// Expands the next unexpanded member of `frame`'s closure: adds every
    /// state reachable from it by one more pending crashed op, unless a
    /// member (or a cached configuration) with the same state and a subset of
    /// its crashed ops already exists. Members are expanded in order, so
    /// shorter bursts come first, and only when the search needs them: a
    /// frame whose base state succeeds never computes its closure at all.
    /// Returns false when every member has been expanded.
    fn expand(&mut self, frame: &mut Frame<M::State>) -> bool {
        let i = frame.expanded as usize;
        if i >= frame.members.len() {
            return false;
        }
        frame.expanded += 1;
        if frame.by_state.is_empty() {
            let base = FxBuildHasher.hash_one(&frame.members[0].state);
            frame.by_state.entry(base).or_default().push(0);
        }
        let path = frame.paths[i].clone();
        for &c in &path {
            self.apply_crashed(c);
        }
        let mut cn = self.cnext[0];
        while cn != NIL {
            let c = cn - 1;
            cn = self.cnext[cn as usize];
            let e = self.crashed[c as usize];
            if e.call >= frame.first_ret {
                break;
            }
            let twin = self.twin_prev[c as usize];
            if twin != NIL && !self.crashed_applied(twin) {
                continue;
            }
            let Some(next) = self.model.step(&frame.members[i].state, &e.op) else { continue };
            self.model.on_lift(&e.op, u32::MAX);
            let doomed = self.model.doomed(&next, &e.op);
            self.model.on_unlift(&e.op, u32::MAX);
            if doomed.is_some() {
                continue;
            }
            // Dominated by a member with the same state and a subset path?
            let sh = FxBuildHasher.hash_one(&next);
            let dominated_here = frame.by_state.get(&sh).is_some_and(|ms| {
                ms.iter().any(|&m| {
                    frame.members[m as usize].state == next
                        && frame.paths[m as usize].iter().all(|x| *x == c || path.contains(x))
                })
            });
            if dominated_here || self.dominated_with(&next, c) {
                continue;
            }
            let mut p = path.clone();
            p.push(c);
            let idx = frame.members.len() as u32;
            frame.members.push(Member { state: next });
            frame.paths.push(p);
            frame.by_state.entry(sh).or_default().push(idx);
        }
        for &c in path.iter().rev() {
            self.unapply_crashed(c);
        }
        true
    }

    fn over_budget(&self) -> Option<String> {
        if let Some(why) = self.limits.exhausted.get() {
            return Some(format!("stopped when another partition ran out: {why}"));
        }
        if let Some(d) = self.limits.deadline
            && Instant::now() >= d
        {
            return Some("the time limit ran out".into());
        }
        if let Some(m) = self.limits.memory {
            let grown = match (self.limits.heap_at_start, crate::budget::heap_in_use()) {
                (Some(start), Some(now)) => now.saturating_sub(start),
                _ => 0,
            };
            if self.limits.used.load(Ordering::Relaxed).max(grown) > m {
                return Some(format!("the memory limit ({} MiB) ran out", m >> 20));
            }
        }
        None
    }

    fn record_failure(&mut self, frames: &[Frame<M::State>], depth: usize) {
        let frame = &frames[depth];
        let pos = frame.first_ret;
        if pos < self.best_pos {
            return;
        }
        if pos > self.best_pos || self.best_stuck == NIL {
            self.best_pos = pos;
            // The completed op whose return is at `first_ret`.
            let mut n = self.nodes[0].next;
            while n != NIL && self.nodes[n as usize].is_call {
                n = self.nodes[n as usize].next;
            }
            self.best_stuck =
                if n == NIL { NIL } else { self.ok[self.nodes[n as usize].op as usize].id };
            self.best_witness = NIL;
            if frame.witness != NIL {
                // Completion positions are unique: find the op by its return node.
                let at = self.nodes[1..].partition_point(|x| x.pos < frame.witness) + 1;
                if let Some(node) =
                    self.nodes.get(at).filter(|x| x.pos == frame.witness && !x.is_call)
                {
                    self.best_witness = self.ok[node.op as usize].id;
                }
            }
            let keep = self.snap_valid.min(depth).min(self.snap_offsets.len() - 1);
            self.snap_offsets.truncate(keep + 1);
            self.best_prefix.truncate(self.snap_offsets[keep]);
            for f in &frames[keep..depth] {
                for &c in &f.applied {
                    self.best_prefix.push(self.crashed[c as usize].id);
                }
                self.best_prefix.push(self.ok[f.descended as usize].id);
                self.snap_offsets.push(self.best_prefix.len());
            }
            self.snap_valid = depth;
            self.best_states.clear();
        }
        for m in &frame.members {
            if self.best_states.len() < MAX_STATES && !self.best_states.contains(&m.state) {
                self.best_states.push(m.state.clone());
            }
        }
    }

    pub(crate) fn run(&mut self) -> Outcome<M::State> {
        let init = self.model.init();
        if self.ok.is_empty() {
            return Outcome::Linearizable;
        }
        self.visit(&init);
        // One frame per completed op at most: reserved up front, so the
        // stack of frames (each a few hundred bytes) is never moved as the
        // search goes deeper, which on a long valid history is every step.
        let mut frames: Vec<Frame<M::State>> = Vec::with_capacity(self.ok.len() + 1);
        let mut depth = 0usize;
        let result = self.enter(&mut frames, depth, init);
        if let Some(r) = result {
            return r;
        }
        let mut steps: u64 = 0;
        loop {
            steps += 1;
            if steps.is_multiple_of(1024) {
                self.publish_bytes();
                if let Some(reason) = self.over_budget() {
                    let _ = self.limits.exhausted.set(reason.clone());
                    return Outcome::Unknown(reason);
                }
            }
            // Try the next completed op from the current member.
            let frame = &frames[depth];
            let cursor = frame.cursor as usize;
            if cursor < frame.candidates.len() {
                let rank = frame.candidates[cursor];
                frames[depth].cursor += 1;
                let member_state = &frames[depth].members[frames[depth].member as usize].state;
                let Some(next) = self.model.step(member_state, &self.ok[rank as usize].op) else {
                    continue;
                };
                self.lift_ok(rank);
                if let Some(w) = self.model.doomed(&next, &self.ok[rank as usize].op) {
                    frames[depth].witness = w;
                    self.stats.pruned += 1;
                    self.unlift_ok(rank);
                    continue;
                }
                if self.visit(&next) {
                    self.unlift_ok(rank);
                    continue;
                }
                frames[depth].descended = rank;
                depth += 1;
                if let Some(r) = self.enter(&mut frames, depth, next) {
                    return r;
                }
                continue;
            }
            // This member has no more candidates: move to the next member.
            let applied = std::mem::take(&mut frames[depth].applied);
            for &c in applied.iter().rev() {
                self.unapply_crashed(c);
            }
            // Frame `depth` changes from here on: recorded frames above it are stale.
            self.snap_valid = self.snap_valid.min(depth);
            let next_member = frames[depth].member + 1;
            while next_member as usize >= frames[depth].members.len()
                && self.expand(&mut frames[depth])
            {}
            if (next_member as usize) < frames[depth].members.len() {
                let burst = frames[depth].paths[next_member as usize].clone();
                for &c in &burst {
                    self.apply_crashed(c);
                }
                let f = &mut frames[depth];
                f.member = next_member;
                f.applied = burst;
                f.cursor = 0;
                continue;
            }
            // Every member failed: this configuration cannot be extended.
            self.record_failure(&frames, depth);
            if depth == 0 {
                return Outcome::NotLinearizable(Failure {
                    stuck: self.best_stuck,
                    witness: (self.best_witness != NIL).then_some(self.best_witness),
                    prefix: std::mem::take(&mut self.best_prefix),
                    states: std::mem::take(&mut self.best_states),
                });
            }
            depth -= 1;
            self.snap_valid = self.snap_valid.min(depth);
            let rank = frames[depth].descended;
            self.unlift_ok(rank);
        }
    }

    /// Prepares frame `depth` for base state `state`; returns an outcome
    /// when the search is over (every completed op linearized).
    fn enter(
        &mut self,
        frames: &mut Vec<Frame<M::State>>,
        depth: usize,
        state: M::State,
    ) -> Option<Outcome<M::State>> {
        self.stats.frames += 1;
        let Some(first_ret) = self.first_return() else {
            return Some(Outcome::Linearizable);
        };
        if frames.len() <= depth {
            frames.push(Frame {
                members: SmallVec::new(),
                paths: SmallVec::new(),
                by_state: FxHashMap::default(),
                expanded: 0,
                member: 0,
                candidates: SmallVec::new(),
                cursor: 0,
                first_ret,
                applied: SmallVec::new(),
                descended: NIL,
                witness: NIL,
            });
        }
        let f = &mut frames[depth];
        f.members.clear();
        f.paths.clear();
        f.by_state.clear();
        f.expanded = 0;
        f.members.push(Member { state });
        f.paths.push(SmallVec::new());
        f.member = 0;
        f.cursor = 0;
        // Trying the op that must return soonest first is Lowe's
        // just-in-time idea: an op is placed where it is forced to be, and
        // the orders of concurrent ops that nothing observes are not
        // enumerated before they matter. Any order is correct; this one
        // backtracks far less on histories with many concurrent writes.
        f.candidates.clear();
        let mut n = self.nodes[0].next;
        while n != NIL && self.nodes[n as usize].is_call {
            f.candidates.push(self.nodes[n as usize].op);
            n = self.nodes[n as usize].next;
        }
        let ok = &self.ok;
        f.candidates.sort_unstable_by_key(|&r| ok[r as usize].ret);
        f.first_ret = first_ret;
        f.applied.clear();
        f.descended = NIL;
        f.witness = NIL;
        None
    }

    /// Reports this search's cache size to the shared memory budget.
    fn publish_bytes(&mut self) {
        let total = self.bytes + self.cache.capacity() * 16;
        let published = self.published;
        if total > published {
            self.limits.used.fetch_add(total - published, Ordering::Relaxed);
        } else {
            self.limits.used.fetch_sub(published - total, Ordering::Relaxed);
        }
        self.published = total;
    }
}

impl<M: Model> Drop for Search<'_, M> {
    fn drop(&mut self) {
        // The cache is freed with the search: give its bytes back.
        self.limits.used.fetch_sub(self.published, Ordering::Relaxed);
    }
}
