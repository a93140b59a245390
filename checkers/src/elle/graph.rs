//! The transaction dependency graph: edges labelled ww/wr/rw/process/rt in
//! a compact CSR layout (one `u32` target and one `u8` label set per edge,
//! no allocation per edge), real-time and process edges, and strongly
//! connected components (Tarjan's algorithm, iterative); the graph is a
//! petgraph graph for the traversals that want one.

use fixedbitset::FixedBitSet;
use petgraph::visit::{GraphBase, IntoNeighbors, IntoNodeIdentifiers, Visitable};
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
/// `out_rel`. Nothing walks edges backwards, so there are no predecessor
/// lists: with a million transactions they were 44 MiB at the check's peak.
pub(crate) struct Graph {
    out_off: Vec<usize>,
    out_dst: Vec<u32>,
    out_rel: Vec<u8>,
}

impl Graph {
    /// Lays out `edges` over `n` nodes with a stable counting sort by
    /// source: linear time, and each node's successors keep the order they
    /// were added in. The sort moves the edges within the edge list's own
    /// columns (each edge's slot replaces its source, then each edge goes
    /// to its slot), so the successor lists never exist beside a copy of
    /// the edges, which was the check's peak memory (25 to 45 MiB more with
    /// copies at a million transactions).
    ///
    /// How the edges get to their slots without a cache miss each is
    /// [`permute_in_blocks`]'s business.
    pub fn build(n: usize, edges: EdgeList) -> Graph {
        let EdgeList { mut src, mut dst, mut rel } = edges;
        let mut out_off = vec![0usize; n + 1];
        for &a in &src {
            out_off[a as usize + 1] += 1;
        }
        for i in 0..n {
            out_off[i + 1] += out_off[i];
        }
        if u32::try_from(src.len()).is_ok() {
            // `out_off[a]` advances past each slot it hands out, so after
            // the loop it holds where `a + 1`'s slots start.
            for a in &mut src {
                let slot = &mut out_off[*a as usize];
                *a = *slot as u32;
                *slot += 1;
            }
            permute_in_blocks(src, &mut dst, &mut rel);
            out_off.copy_within(..n, 1);
            out_off[0] = 0;
            return Graph { out_off, out_dst: dst, out_rel: rel };
        }
        // More than four billion edges: slots do not fit the source column,
        // so the successor lists are filled as copies.
        let mut fill = out_off.clone();
        let mut out_dst = vec![0u32; src.len()];
        let mut out_rel = vec![0u8; src.len()];
        for i in 0..src.len() {
            let slot = &mut fill[src[i] as usize];
            out_dst[*slot] = dst[i];
            out_rel[*slot] = rel[i];
            *slot += 1;
        }
        Graph { out_off, out_dst, out_rel }
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
    /// This is Tarjan's algorithm, iterative (a chain of real-time order is
    /// as deep as the history is long), over the successor lists alone,
    /// with a discovery number and a low link per node; a component is
    /// kept only when it holds two transactions: with a million
    /// transactions nearly every component is a single node, and a million
    /// small vectors cost more than the search itself.
    pub fn nontrivial_sccs(&self, real: u32) -> Vec<Vec<u32>> {
        let n = self.node_count();
        let mut index = vec![NONE; n];
        let mut low = vec![NONE; n];
        let mut on_stack = FixedBitSet::with_capacity(n);
        let mut stack: Vec<u32> = Vec::new();
        // The depth-first path: each node with the next of its edges to follow.
        let mut path: Vec<(u32, usize)> = Vec::new();
        let mut members: Vec<u32> = Vec::new();
        let mut sccs: Vec<Vec<u32>> = Vec::new();
        let mut next = 0u32;
        let mut discover = |v: u32, index: &mut [u32], low: &mut [u32]| {
            index[v as usize] = next;
            low[v as usize] = next;
            next += 1;
        };
        for root in 0..n as u32 {
            if index[root as usize] != NONE {
                continue;
            }
            discover(root, &mut index, &mut low);
            stack.push(root);
            on_stack.insert(root as usize);
            path.push((root, self.out_off[root as usize]));
            while let Some(&(v, e)) = path.last() {
                let vi = v as usize;
                if e < self.out_off[vi + 1] {
                    let top = path.len() - 1;
                    path[top].1 = e + 1;
                    let w = self.out_dst[e];
                    if index[w as usize] == NONE {
                        discover(w, &mut index, &mut low);
                        stack.push(w);
                        on_stack.insert(w as usize);
                        path.push((w, self.out_off[w as usize]));
                    } else if on_stack.contains(w as usize) {
                        low[vi] = low[vi].min(index[w as usize]);
                    }
                    continue;
                }
                path.pop();
                if let Some(&(u, _)) = path.last() {
                    low[u as usize] = low[u as usize].min(low[vi]);
                }
                if low[vi] != index[vi] {
                    continue;
                }
                // `v` is its component's root: the component is what the
                // stack holds down to `v`.
                members.clear();
                while let Some(x) = stack.pop() {
                    on_stack.set(x as usize, false);
                    if x < real {
                        members.push(x);
                    }
                    if x == v {
                        break;
                    }
                }
                if members.len() > 1 {
                    members.sort_unstable();
                    sccs.push(members.clone());
                }
            }
        }
        sccs.sort_unstable_by_key(|c| c[0]);
        sccs
    }
}

/// log2 of the block sizes of [`permute_in_blocks`]'s two radix passes:
/// blocks of 131,072 edges (1.1 MiB of columns, inside a core's
/// second-level cache), then of 2,048 (18 KiB, inside its first-level
/// cache). Fewer, larger blocks in the first pass keep its write positions
/// few enough for the cache to hold them all.
const BLOCK_BITS: [u32; 2] = [17, 11];

/// Moves every edge `i` to position `slot[i]`, where `slot` is a
/// permutation of `0..slot.len()`, carrying `dst` and `rel` along (the
/// slots themselves are used up).
///
/// Moving each edge straight to its slot (following the permutation's
/// cycles) is one cache miss after another once the edges outgrow the
/// cache: seven million edges took a second. So the edges first go to
/// their block of slots, by in-place radix passes over ever smaller blocks
/// ([`into_blocks`]); then each small block is scattered into a scratch
/// block and copied back, writes that do not wait on one another.
fn permute_in_blocks(mut slot: Vec<u32>, dst: &mut [u32], rel: &mut [u8]) {
    use rayon::prelude::*;
    let [outer, inner] = BLOCK_BITS.map(|b| 1usize << b);
    into_blocks(&mut slot, dst, rel, 0, BLOCK_BITS[0]);
    // The outer blocks are independent now: each is finished on its own
    // core, with a scratch block of its own.
    slot.par_chunks_mut(outer)
        .zip(dst.par_chunks_mut(outer))
        .zip(rel.par_chunks_mut(outer))
        .enumerate()
        .for_each(|(b, ((slot, dst), rel))| {
            let base = b * outer;
            into_blocks(slot, dst, rel, base, BLOCK_BITS[1]);
            let mut scratch_dst = vec![0u32; inner.min(slot.len())];
            let mut scratch_rel = vec![0u8; inner.min(slot.len())];
            for start in (0..slot.len()).step_by(inner) {
                let end = (start + inner).min(slot.len());
                for i in start..end {
                    let k = slot[i] as usize - base - start;
                    scratch_dst[k] = dst[i];
                    scratch_rel[k] = rel[i];
                }
                dst[start..end].copy_from_slice(&scratch_dst[..end - start]);
                rel[start..end].copy_from_slice(&scratch_rel[..end - start]);
            }
        });
}

/// One in-place radix pass (American flag sort) over edges whose slots are
/// `base..base + slot.len()`: afterwards each block of `1 << bits` slots
/// holds exactly the edges whose slots lie in it. Since the slots are a
/// permutation, a block's bounds are known without counting. Each block
/// has one write position; the edge in hand goes to its block's, and the
/// edge found there is taken in hand, until one belongs at the position
/// the chain started from.
fn into_blocks(slot: &mut [u32], dst: &mut [u32], rel: &mut [u8], base: usize, bits: u32) {
    let m = slot.len();
    let blocks = m.div_ceil(1 << bits);
    if blocks < 2 {
        return;
    }
    let mut next: Vec<usize> = (0..blocks).map(|b| b << bits).collect();
    for b in 0..blocks {
        let end = ((b + 1) << bits).min(m);
        while next[b] < end {
            let i = next[b];
            let (mut s, mut d, mut r) = (slot[i], dst[i], rel[i]);
            loop {
                // Positions below a block's write position already hold
                // that block's edges.
                let home = (s as usize - base) >> bits;
                let j = next[home];
                next[home] += 1;
                if home == b {
                    break;
                }
                (s, slot[j]) = (slot[j], s);
                (d, dst[j]) = (dst[j], d);
                (r, rel[j]) = (rel[j], r);
            }
            slot[i] = s;
            dst[i] = d;
            rel[i] = r;
        }
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
    let mut at = vec![NONE; prep.positions.len()];
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
    fn components_and_successor_order_agree_with_petgraph() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        for seed in 0..50u64 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let n = rng.random_range(1..40u32);
            let mut e = EdgeList::default();
            let mut added: Vec<(u32, u32, u8)> = Vec::new();
            for _ in 0..rng.random_range(0..3 * n) {
                let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
                let r = [rel::WW, rel::WR, rel::RW][rng.random_range(0..3usize)];
                e.add(a, b, r);
                if a != b {
                    added.push((a, b, r));
                }
            }
            let g = Graph::build(n as usize, e);
            // Each node's successors, labels and all, in the order added.
            for a in 0..n {
                let want: Vec<(u32, u8)> =
                    added.iter().filter(|x| x.0 == a).map(|x| (x.1, x.2)).collect();
                assert_eq!(g.out(a).collect::<Vec<_>>(), want, "seed {seed}: node {a}");
            }
            let reference = petgraph::graph::DiGraph::<(), ()>::from_edges(
                added.iter().map(|&(a, b, _)| (a, b)).chain((0..n).map(|a| (a, a))),
            );
            let mut expected: Vec<Vec<u32>> = petgraph::algo::kosaraju_scc(&reference)
                .into_iter()
                .map(|c| c.into_iter().map(|x| x.index() as u32).collect::<Vec<u32>>())
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
    fn many_blocks_of_edges_keep_each_nodes_successors_in_order() {
        use rand::rngs::SmallRng;
        use rand::{Rng, SeedableRng};
        // Two outer blocks and a part of a third, so both radix passes run
        // and the last blocks are short.
        for (seed, n) in [(0u64, 50u32), (1, 5_000), (2, 100_000)] {
            let mut rng = SmallRng::seed_from_u64(seed);
            let m = 2 * (1 << BLOCK_BITS[0]) + 17;
            let mut e = EdgeList::with_capacity(m);
            let mut per_node: Vec<Vec<(u32, u8)>> = vec![Vec::new(); n as usize];
            while e.len() < m {
                let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
                let r = [rel::WW, rel::WR, rel::RW, rel::RT][rng.random_range(0..4usize)];
                e.add(a, b, r);
                if a != b {
                    per_node[a as usize].push((b, r));
                }
            }
            let g = Graph::build(n as usize, e);
            for a in 0..n {
                assert_eq!(
                    g.out(a).collect::<Vec<_>>(),
                    per_node[a as usize],
                    "seed {seed}: node {a}"
                );
            }
        }
    }

    #[test]
    fn permuting_in_blocks_puts_every_edge_at_its_slot() {
        use rand::SeedableRng;
        use rand::rngs::SmallRng;
        use rand::seq::SliceRandom;
        for m in
            [0, 1, 5, (1 << BLOCK_BITS[1]) - 1, 1 << BLOCK_BITS[1], 2 << BLOCK_BITS[0], 300_001]
        {
            let mut slot: Vec<u32> = (0..m as u32).collect();
            slot.shuffle(&mut SmallRng::seed_from_u64(m as u64));
            // Each edge carries its slot in its other columns, to see that
            // they travel with it.
            let mut dst = slot.clone();
            let mut rel: Vec<u8> = slot.iter().map(|&s| s as u8).collect();
            permute_in_blocks(slot, &mut dst, &mut rel);
            let want: Vec<u32> = (0..m as u32).collect();
            assert_eq!(dst, want, "{m} edges");
            assert!(rel.iter().enumerate().all(|(i, &r)| r == i as u8), "{m} edges");
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
