//! The transaction dependency graph: edges labelled ww/wr/rw/process/rt in
//! a compact CSR layout (one `u32` target and one `u8` label set per edge,
//! no allocation per edge), real-time and process edges, and strongly
//! connected components through petgraph.

use fixedbitset::FixedBitSet;
use petgraph::Direction;
use petgraph::visit::{
    Dfs, DfsPostOrder, GraphBase, IntoNeighbors, IntoNeighborsDirected, IntoNodeIdentifiers,
    Reversed, VisitMap, Visitable,
};
use rustc_hash::FxHashMap;

use super::cycles::Variant;
use super::prep::{NONE, Prepared, Status};

/// Edge relations, as bits so that one edge can carry several.
pub(crate) mod rel {
    /// Write-write: the target overwrote (appended after) the source's write.
    pub const WW: u8 = 1;
    /// Write-read: the target read the source's write.
    pub const WR: u8 = 2;
    /// Read-write (anti-dependency): the target overwrote what the source read.
    pub const RW: u8 = 4;
    /// Process order: same process, source first.
    pub const PROCESS: u8 = 8;
    /// Real-time order: the source completed before the target was invoked.
    pub const RT: u8 = 16;
    /// Every relation, in the order explanations prefer them.
    pub const ALL: [u8; 5] = [WW, WR, PROCESS, RT, RW];

    /// The relation's short name.
    pub fn name(r: u8) -> &'static str {
        match r {
            WW => "ww",
            WR => "wr",
            RW => "rw",
            PROCESS => "process",
            RT => "rt",
            _ => "?",
        }
    }
}

/// Edges as they are inferred, before they are laid out: three parallel
/// columns, so an edge costs nine bytes.
#[derive(Default)]
pub(crate) struct EdgeList {
    src: Vec<u32>,
    dst: Vec<u32>,
    rel: Vec<u8>,
}

impl EdgeList {
    /// An empty list with room for `n` edges.
    pub fn with_capacity(n: usize) -> EdgeList {
        EdgeList {
            src: Vec::with_capacity(n),
            dst: Vec::with_capacity(n),
            rel: Vec::with_capacity(n),
        }
    }

    /// Adds `a -> b` with relation `r`; self-edges are dropped (a
    /// transaction does not depend on itself).
    #[inline]
    pub fn add(&mut self, a: u32, b: u32, r: u8) {
        if a != b && a != NONE && b != NONE {
            self.src.push(a);
            self.dst.push(b);
            self.rel.push(r);
        }
    }

    /// Number of edges (counting parallel edges separately).
    pub fn len(&self) -> usize {
        self.src.len()
    }

    /// Number of edges per relation.
    pub fn counts(&self) -> [(u8, usize); 5] {
        let mut c = [0usize; 32];
        for &r in &self.rel {
            c[r as usize] += 1;
        }
        rel::ALL.map(|r| (r, c[r as usize]))
    }
}

/// A directed graph over transactions `0..n` in CSR form: for node `a`,
/// `out_dst[out_off[a]..out_off[a+1]]` are its successors, with labels in
/// `out_rel`; `in_src` likewise lists predecessors (Kosaraju's algorithm
/// walks edges backwards).
pub(crate) struct Graph {
    out_off: Vec<usize>,
    out_dst: Vec<u32>,
    out_rel: Vec<u8>,
    in_off: Vec<usize>,
    in_src: Vec<u32>,
}

impl Graph {
    /// Lays out `edges` over `n` nodes with a counting sort: linear time.
    /// The successor lists are built first and the edge list freed before
    /// the predecessor lists are derived from them, and each counting sort
    /// fills its slots through the offsets themselves (shifted back after)
    /// rather than a copy of them: with a million transactions these
    /// temporaries were the check's peak memory.
    pub fn build(n: usize, edges: EdgeList) -> Graph {
        /// Offsets from the count of each key, with each offset advanced
        /// past its slots by `place`; `restore` then moves them back.
        fn counted(n: usize, keys: impl Iterator<Item = u32>) -> Vec<usize> {
            let mut off = vec![0usize; n + 1];
            for k in keys {
                off[k as usize + 1] += 1;
            }
            for i in 0..n {
                off[i + 1] += off[i];
            }
            off
        }
        /// After every slot of every key is filled, `off[k]` holds where
        /// `k + 1`'s slots start; shifting by one restores the offsets.
        fn restore(off: &mut [usize]) {
            off.copy_within(..off.len() - 1, 1);
            off[0] = 0;
        }
        let EdgeList { src, dst, rel } = edges;
        let mut out_off = counted(n, src.iter().copied());
        let mut out_dst = vec![0u32; src.len()];
        let mut out_rel = vec![0u8; src.len()];
        for i in 0..src.len() {
            let slot = &mut out_off[src[i] as usize];
            out_dst[*slot] = dst[i];
            out_rel[*slot] = rel[i];
            *slot += 1;
        }
        restore(&mut out_off);
        drop((src, dst, rel));
        let mut in_off = counted(n, out_dst.iter().copied());
        let mut in_src = vec![0u32; out_dst.len()];
        for a in 0..n {
            for &b in &out_dst[out_off[a]..out_off[a + 1]] {
                let slot = &mut in_off[b as usize];
                in_src[*slot] = a as u32;
                *slot += 1;
            }
        }
        restore(&mut in_off);
        Graph { out_off, out_dst, out_rel, in_off, in_src }
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.out_off.len() - 1
    }

    /// Successors of `a` with their labels.
    pub fn out(&self, a: u32) -> impl Iterator<Item = (u32, u8)> + '_ {
        let r = self.out_off[a as usize]..self.out_off[a as usize + 1];
        self.out_dst[r.clone()].iter().copied().zip(self.out_rel[r].iter().copied())
    }

    /// The strongly connected components with more than one node below
    /// `real` (the only places a cycle can be), each holding only its nodes
    /// below `real` (completion nodes are left out), sorted, ordered by
    /// their first node.
    ///
    /// This is Kosaraju's algorithm put together from petgraph's iterative
    /// traversals, as `petgraph::algo::kosaraju_scc` does, but recording a
    /// component number per node instead of a vector per component: with a
    /// million transactions nearly every component is a single node, and a
    /// million small vectors cost more than the search itself.
    pub fn nontrivial_sccs(&self, real: u32) -> Vec<Vec<u32>> {
        let n = self.node_count();
        // First pass: finishing order of a depth-first search of the
        // reversed graph.
        let mut post = DfsPostOrder::empty(self);
        let mut finish: Vec<u32> = Vec::with_capacity(n);
        for v in 0..n as u32 {
            if post.discovered.is_visited(&v) {
                continue;
            }
            post.move_to(v);
            while let Some(x) = post.next(Reversed(self)) {
                finish.push(x);
            }
        }
        // Second pass: in reverse finishing order, each search of the graph
        // collects exactly one component.
        let mut dfs = Dfs::from_parts(post.stack, post.discovered);
        dfs.reset(self);
        let mut comp = vec![NONE; n];
        let mut size: Vec<u32> = Vec::new();
        for &v in finish.iter().rev() {
            if dfs.discovered.is_visited(&v) {
                continue;
            }
            let id = size.len() as u32;
            size.push(0);
            dfs.move_to(v);
            while let Some(x) = dfs.next(self) {
                comp[x as usize] = id;
                size[id as usize] += 1;
            }
        }
        drop(finish);
        // Group the members of components that can hold a cycle.
        let mut slot = vec![NONE; size.len()];
        let mut sccs: Vec<Vec<u32>> = Vec::new();
        for v in 0..real.min(n as u32) {
            let c = comp[v as usize] as usize;
            if size[c] < 2 {
                continue;
            }
            if slot[c] == NONE {
                slot[c] = sccs.len() as u32;
                sccs.push(Vec::new());
            }
            sccs[slot[c] as usize].push(v);
        }
        // Members were pushed in increasing order, and components in order
        // of their first member; drop those left with one transaction.
        sccs.retain(|c| c.len() > 1);
        sccs
    }
}

impl GraphBase for Graph {
    type EdgeId = ();
    type NodeId = u32;
}

impl Visitable for Graph {
    type Map = FixedBitSet;
    fn visit_map(&self) -> FixedBitSet {
        FixedBitSet::with_capacity(self.node_count())
    }
    fn reset_map(&self, map: &mut FixedBitSet) {
        map.clear();
        map.grow(self.node_count());
    }
}

impl<'a> IntoNeighbors for &'a Graph {
    type Neighbors = std::iter::Copied<std::slice::Iter<'a, u32>>;
    fn neighbors(self, a: u32) -> Self::Neighbors {
        self.out_dst[self.out_off[a as usize]..self.out_off[a as usize + 1]].iter().copied()
    }
}

impl<'a> IntoNeighborsDirected for &'a Graph {
    type NeighborsDirected = std::iter::Copied<std::slice::Iter<'a, u32>>;
    fn neighbors_directed(self, a: u32, d: Direction) -> Self::NeighborsDirected {
        match d {
            Direction::Outgoing => self.neighbors(a),
            Direction::Incoming => {
                self.in_src[self.in_off[a as usize]..self.in_off[a as usize + 1]].iter().copied()
            }
        }
    }
}

impl IntoNodeIdentifiers for &Graph {
    type NodeIdentifiers = std::ops::Range<u32>;
    fn node_identifiers(self) -> std::ops::Range<u32> {
        0..self.node_count() as u32
    }
}

/// At most how many edges `realtime_chain` or `process_edges` add for
/// `variant`: room the inference reserves in its edge list up front, so
/// that adding them later does not move a list of millions of edges to a
/// larger allocation while the old one still holds its copy (with a
/// million transactions, 40 MiB more at the check's peak).
pub(crate) fn order_edges_bound(prep: &Prepared<'_>, variant: Variant) -> usize {
    let (mut live, mut committed) = (0usize, 0usize);
    for txn in &prep.txns {
        live += usize::from(txn.status != Status::Fail);
        committed += usize::from(txn.status == Status::Ok && txn.complete != NONE);
    }
    match variant {
        // An edge into each live invocation; from each committed
        // completion, an edge to its node and at most one chain edge.
        Variant::Realtime => live + 2 * committed,
        Variant::Process => live,
        Variant::Plain => 0,
    }
}

/// Real-time order for finding components, in about three edges per
/// transaction: a chain of *completion nodes* (ids from `first_node` up),
/// one per run of completions with no invocation between them. A committed
/// transaction points to the node of its completion, each node to the
/// next, and each node to the transactions invoked after it (before the
/// next one). So A reaches B through the chain exactly when A completed
/// before B was invoked. Returns the number of nodes added.
///
/// Failed and indeterminate transactions never point into the chain: an
/// aborted transaction took no effect, and an indeterminate one may take
/// effect at any later time.
///
/// The chain is for strongly connected components only. Any transaction on
/// a real-time path between two members of a component is itself a member,
/// so the real-time edges a cycle may use are those among the members, and
/// `realtime_among` builds them, exactly, component by component.
pub(crate) fn realtime_chain(prep: &Prepared<'_>, edges: &mut EdgeList, first_node: u32) -> u32 {
    let at = event_index(prep);
    let mut current = NONE;
    let mut next = first_node;
    let mut completion_run = false;
    for (pos, &t) in at.iter().enumerate() {
        if t == NONE {
            continue;
        }
        let txn = &prep.txns[t as usize];
        if pos as u32 == txn.invoke {
            edges.add(current, t, rel::RT);
            completion_run = false;
        } else {
            if !completion_run {
                edges.add(current, next, rel::RT);
                current = next;
                next += 1;
                completion_run = true;
            }
            edges.add(t, current, rel::RT);
        }
    }
    next - first_node
}

/// For each history position, the transaction invoked or committed there
/// (`NONE` elsewhere). Only committed completions are marked; failed
/// transactions are left out entirely.
fn event_index(prep: &Prepared<'_>) -> Vec<u32> {
    let mut at = vec![NONE; prep.history.len()];
    for (t, txn) in prep.txns.iter().enumerate() {
        if txn.status == Status::Fail {
            continue;
        }
        at[txn.invoke as usize] = t as u32;
        if txn.status == Status::Ok && txn.complete != NONE {
            at[txn.complete as usize] = t as u32;
        }
    }
    at
}

/// The real-time edges among `members` (sorted transaction ids): the
/// transitive reduction of "completed before invoked".
///
/// Walking their events in history order, the *frontier* holds the
/// committed members that no other completed member follows. Each
/// invocation gets an edge from every frontier member (exactly its
/// immediate predecessors); each completion removes from the frontier the
/// members already complete when it was invoked, and joins it. The frontier
/// never outgrows the number of concurrent clients.
pub(crate) fn realtime_among(prep: &Prepared<'_>, members: &[u32]) -> Vec<(u32, u32)> {
    let mut events: Vec<(u32, u32)> = Vec::with_capacity(members.len() * 2);
    for &t in members {
        let txn = &prep.txns[t as usize];
        if txn.status == Status::Fail {
            continue;
        }
        events.push((txn.invoke, t));
        if txn.status == Status::Ok && txn.complete != NONE {
            events.push((txn.complete, t));
        }
    }
    events.sort_unstable();
    let mut frontier: Vec<u32> = Vec::new();
    let mut out = Vec::new();
    for (pos, t) in events {
        let txn = &prep.txns[t as usize];
        if pos == txn.invoke {
            out.extend(frontier.iter().map(|&f| (f, t)));
        } else {
            frontier.retain(|&f| prep.txns[f as usize].complete > txn.invoke);
            frontier.push(t);
        }
    }
    out
}

/// Process edges: each transaction follows the previous committed one of
/// its process. A failed transaction is skipped (it had no effect); an
/// indeterminate one is never a source (its effect may come later).
pub(crate) fn process_edges(prep: &Prepared<'_>, edges: &mut EdgeList) {
    let mut last: FxHashMap<u64, u32> = FxHashMap::default();
    for (t, txn) in prep.txns.iter().enumerate() {
        if txn.status == Status::Fail {
            continue;
        }
        if let Some(&prev) = last.get(&txn.process) {
            edges.add(prev, t as u32, rel::PROCESS);
        }
        if txn.status == Status::Ok {
            last.insert(txn.process, t as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_only_nontrivial_components() {
        let mut e = EdgeList::default();
        e.add(0, 1, rel::WW);
        e.add(1, 2, rel::WR);
        e.add(2, 1, rel::RW);
        e.add(3, 3, rel::WW); // dropped: self-edge
        e.add(3, 0, rel::RT);
        let g = Graph::build(4, e);
        assert_eq!(g.nontrivial_sccs(4), vec![vec![1, 2]]);
        assert_eq!(g.out(2).collect::<Vec<_>>(), vec![(1, rel::RW)]);
    }

    /// Reachability from `a` through `edges` (a small adjacency list).
    fn reach(n: usize, edges: &[(u32, u32)], a: u32) -> Vec<bool> {
        let mut seen = vec![false; n];
        let mut stack = vec![a];
        while let Some(x) = stack.pop() {
            for &(s, d) in edges {
                if s == x && !seen[d as usize] {
                    seen[d as usize] = true;
                    stack.push(d);
                }
            }
        }
        seen
    }

    #[test]
    fn the_completion_chain_and_the_reduction_both_encode_real_time_order() {
        use crate::elle::generate::{GenOptions, generate};
        use crate::elle::prep::MopKind;
        for seed in 0..5 {
            let o = GenOptions {
                txns: 60,
                processes: 5,
                fail_rate: 0.1,
                info_rate: 0.1,
                seed,
                ..GenOptions::default()
            };
            let h = generate(&o);
            let prep = Prepared::new(&h, "test", &[MopKind::Append, MopKind::Read]).expect("prep");
            let n = prep.txns.len();
            let before = |a: usize, b: usize| {
                let (ta, tb) = (&prep.txns[a], &prep.txns[b]);
                ta.status == Status::Ok
                    && tb.status != Status::Fail
                    && ta.complete != NONE
                    && ta.complete < tb.invoke
            };
            let mut chain = EdgeList::default();
            let extra = realtime_chain(&prep, &mut chain, n as u32) as usize;
            let chain: Vec<(u32, u32)> =
                chain.src.iter().copied().zip(chain.dst.iter().copied()).collect();
            let members: Vec<u32> = (0..n as u32).collect();
            let reduced = realtime_among(&prep, &members);
            for a in 0..n {
                let via_chain = reach(n + extra, &chain, a as u32);
                let via_reduced = reach(n, &reduced, a as u32);
                for b in 0..n {
                    assert_eq!(via_chain[b], before(a, b), "seed {seed}: chain {a} -> {b}");
                    assert_eq!(via_reduced[b], before(a, b), "seed {seed}: reduction {a} -> {b}");
                }
            }
            // A reduction: no edge is implied by a longer path.
            for &(a, b) in &reduced {
                let others: Vec<(u32, u32)> =
                    reduced.iter().copied().filter(|&e| e != (a, b)).collect();
                assert!(!reach(n, &others, a)[b as usize], "seed {seed}: {a} -> {b} is redundant");
            }
        }
    }

    #[test]
    fn components_agree_with_petgraphs_kosaraju() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        for seed in 0..50u64 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let n = rng.random_range(1..40u32);
            let mut e = EdgeList::default();
            for _ in 0..rng.random_range(0..3 * n) {
                e.add(rng.random_range(0..n), rng.random_range(0..n), rel::WW);
            }
            let g = Graph::build(n as usize, e);
            let mut expected: Vec<Vec<u32>> = petgraph::algo::kosaraju_scc(&g)
                .into_iter()
                .filter(|c| c.len() > 1)
                .map(|mut c| {
                    c.sort_unstable();
                    c
                })
                .collect();
            expected.sort();
            assert_eq!(g.nontrivial_sccs(n), expected, "seed {seed}");
        }
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        let n = 200_000u32;
        let mut e = EdgeList::default();
        for i in 0..n - 1 {
            e.add(i, i + 1, rel::RT);
        }
        e.add(n - 1, 0, rel::RW);
        let g = Graph::build(n as usize, e);
        let sccs = g.nontrivial_sccs(n);
        assert_eq!(sccs.len(), 1);
        assert_eq!(sccs[0].len(), n as usize);
    }
}
