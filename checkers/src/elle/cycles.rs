//! Cycle search inside one strongly connected component: for each kind of
//! cycle anomaly, most severe first, the shortest cycle of that kind.
//!
//! A kind is a set of allowed edge labels plus a condition on the whole
//! cycle (at least one wr edge; exactly one rw edge; no two rw edges next to
//! each other...). Every cycle of a kind contains an *anchor* edge with a
//! label the kind requires, so the search takes each anchor edge `u -> v` in
//! turn and runs a breadth-first search from `v` back to `u` over
//! (transaction, state) pairs, where the state is a few bits recording what
//! the path has used so far. Breadth-first means the first path found from
//! an anchor is the shortest; later anchors only look for shorter ones.
//! Before that, the component is split again using only the kind's labels:
//! an anchor whose ends fall in different sub-components cannot close a
//! cycle of this kind.

use std::time::Instant;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{EdgeFiltered, EdgeRef};
use rustc_hash::FxHashMap;

use super::graph::{Graph, rel};
use super::models;

/// The data-dependency shape of a cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Class {
    /// Write-write edges only.
    G0,
    /// Write-write and write-read, at least one write-read.
    G1c,
    /// Exactly one read-write (anti-dependency) edge.
    GSingle,
    /// Two or more read-write edges, no two next to each other.
    GNonadjacent,
    /// Two or more read-write edges, some next to each other.
    G2Item,
}

/// Which ordering edges besides data dependencies a cycle uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Variant {
    /// Data dependencies only.
    Plain,
    /// At least one process-order edge.
    Process,
    /// At least one real-time edge.
    Realtime,
}

/// A kind of cycle anomaly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Kind {
    pub variant: Variant,
    pub class: Class,
}

const CLASSES: [Class; 5] =
    [Class::G0, Class::G1c, Class::GSingle, Class::GNonadjacent, Class::G2Item];

impl Kind {
    /// The anomaly's name, as Elle spells it (`G-single-realtime`).
    pub fn name(self) -> &'static str {
        use Class::*;
        use Variant::*;
        match (self.class, self.variant) {
            (G0, Plain) => "G0",
            (G1c, Plain) => "G1c",
            (GSingle, Plain) => "G-single",
            (GNonadjacent, Plain) => "G-nonadjacent",
            (G2Item, Plain) => "G2-item",
            (G0, Process) => "G0-process",
            (G1c, Process) => "G1c-process",
            (GSingle, Process) => "G-single-process",
            (GNonadjacent, Process) => "G-nonadjacent-process",
            (G2Item, Process) => "G2-item-process",
            (G0, Realtime) => "G0-realtime",
            (G1c, Realtime) => "G1c-realtime",
            (GSingle, Realtime) => "G-single-realtime",
            (GNonadjacent, Realtime) => "G-nonadjacent-realtime",
            (G2Item, Realtime) => "G2-item-realtime",
        }
    }

    /// Every kind, in search order: the data-only kinds from G0 to G2-item,
    /// then the process kinds, then the real-time kinds, as Elle orders
    /// them by severity.
    pub fn all() -> Vec<Kind> {
        [Variant::Plain, Variant::Process, Variant::Realtime]
            .into_iter()
            .flat_map(|variant| CLASSES.map(|class| Kind { variant, class }))
            .collect()
    }

    fn extra(self) -> u8 {
        match self.variant {
            Variant::Plain => 0,
            Variant::Process => rel::PROCESS,
            Variant::Realtime => rel::RT,
        }
    }

    /// Labels a cycle of this kind may use.
    fn labels(self) -> u8 {
        let data = match self.class {
            Class::G0 => rel::WW,
            Class::G1c => rel::WW | rel::WR,
            _ => rel::WW | rel::WR | rel::RW,
        };
        data | self.extra()
    }

    /// Labels of which a cycle of this kind has at least one.
    fn required(self) -> Vec<u8> {
        let mut r = vec![match self.class {
            Class::G0 => rel::WW,
            Class::G1c => rel::WR,
            _ => rel::RW,
        }];
        if self.extra() != 0 {
            r.push(self.extra());
        }
        r
    }
}

/// Path state bits (at most seven, so a node's states fit in a `u128`).
mod st {
    pub const LAST_RW: u8 = 1;
    pub const RW1: u8 = 2;
    pub const RW2: u8 = 4;
    pub const ADJ: u8 = 8;
    pub const WR: u8 = 16;
    pub const EXTRA: u8 = 32;
    pub const FIRST_RW: u8 = 64;
}

impl Kind {
    /// The state bits that matter for this kind; the others are dropped so
    /// that equivalent paths share a state.
    fn relevant(self) -> u8 {
        let extra = if self.extra() != 0 { st::EXTRA } else { 0 };
        extra
            | match self.class {
                Class::G0 => 0,
                Class::G1c => st::WR,
                Class::GSingle => st::RW1 | st::RW2,
                Class::GNonadjacent => st::LAST_RW | st::RW1 | st::RW2 | st::FIRST_RW,
                Class::G2Item => st::LAST_RW | st::RW1 | st::RW2 | st::ADJ | st::FIRST_RW,
            }
    }

    /// The state after following an edge labelled `label`, or `None` when
    /// no cycle of this kind can continue that way.
    fn step(self, state: u8, label: u8) -> Option<u8> {
        let mut s = state;
        if label == rel::RW {
            if s & st::LAST_RW != 0 {
                s |= st::ADJ;
            }
            if s & st::RW1 != 0 {
                s |= st::RW2;
            }
            s |= st::RW1 | st::LAST_RW;
        } else {
            s &= !st::LAST_RW;
        }
        if label == rel::WR {
            s |= st::WR;
        }
        if label == self.extra() && label != 0 {
            s |= st::EXTRA;
        }
        let dead = match self.class {
            Class::GSingle => s & st::RW2 != 0,
            Class::GNonadjacent => s & st::ADJ != 0,
            _ => false,
        };
        if dead { None } else { Some(s & self.relevant()) }
    }

    /// Whether a path that has returned to the anchor's source, in `state`,
    /// closes a cycle of this kind.
    fn accepts(self, s: u8) -> bool {
        if self.extra() != 0 && s & st::EXTRA == 0 {
            return false;
        }
        let cyclic_adj = s & st::ADJ != 0 || (s & st::LAST_RW != 0 && s & st::FIRST_RW != 0);
        match self.class {
            Class::G0 => true,
            Class::G1c => s & st::WR != 0,
            Class::GSingle => s & st::RW1 != 0 && s & st::RW2 == 0,
            Class::GNonadjacent => s & st::RW2 != 0 && !cyclic_adj,
            Class::G2Item => s & st::RW2 != 0 && cyclic_adj,
        }
    }
}

/// Names the kind of any cycle from its labels, as Elle's explainer does.
pub(crate) fn classify(labels: &[u8]) -> Kind {
    let count = |r: u8| labels.iter().filter(|&&l| l == r).count();
    let n = labels.len();
    let adjacent = (0..n).any(|i| labels[i] == rel::RW && labels[(i + 1) % n] == rel::RW);
    let class = match count(rel::RW) {
        1 => Class::GSingle,
        0 if count(rel::WR) > 0 => Class::G1c,
        0 => Class::G0,
        _ if adjacent => Class::G2Item,
        _ => Class::GNonadjacent,
    };
    let variant = if count(rel::RT) > 0 {
        Variant::Realtime
    } else if count(rel::PROCESS) > 0 {
        Variant::Process
    } else {
        Variant::Plain
    };
    Kind { class, variant }
}

/// A cycle: `steps[i] = (t, r)` means an edge labelled `r` from transaction
/// `t` to the next step's transaction (the last step leads back to the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cycle {
    pub kind: Kind,
    pub steps: Vec<(u32, u8)>,
}

/// What the search of one component found.
#[derive(Clone, Debug, Default)]
pub(crate) struct SccResult {
    /// One cycle per kind found, most severe first.
    pub cycles: Vec<Cycle>,
    /// Set when the time budget ran out: the kinds fully searched, and the
    /// one being searched.
    pub timeout: Option<(Vec<Kind>, Kind)>,
    /// Number of transactions in the component.
    pub size: usize,
}

/// The component as a small petgraph graph: nodes carry global transaction
/// ids, each edge the union of its labels.
struct Local {
    g: DiGraph<u32, u8, u32>,
    present: u8,
}

impl Local {
    fn new(graph: &Graph, scc: &[u32], realtime: &[(u32, u32)]) -> Local {
        let index: FxHashMap<u32, u32> =
            scc.iter().enumerate().map(|(i, &t)| (t, i as u32)).collect();
        let mut edges: Vec<(u32, u32, u8)> = Vec::new();
        for (i, &t) in scc.iter().enumerate() {
            for (d, r) in graph.out(t) {
                if let Some(&j) = index.get(&d) {
                    edges.push((i as u32, j, r));
                }
            }
        }
        for &(a, b) in realtime {
            if let (Some(&i), Some(&j)) = (index.get(&a), index.get(&b)) {
                edges.push((i, j, rel::RT));
            }
        }
        edges.sort_unstable();
        let mut g: DiGraph<u32, u8, u32> = DiGraph::with_capacity(scc.len(), edges.len());
        for &t in scc {
            g.add_node(t);
        }
        let mut present = 0u8;
        let mut i = 0;
        while i < edges.len() {
            let (a, b, mut r) = edges[i];
            i += 1;
            while i < edges.len() && edges[i].0 == a && edges[i].1 == b {
                r |= edges[i].2;
                i += 1;
            }
            present |= r;
            g.add_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), r);
        }
        Local { g, present }
    }

    /// Sub-component id of each node using only edges with `labels`.
    fn components(&self, labels: u8) -> Vec<u32> {
        let filtered = EdgeFiltered::from_fn(&self.g, |e| e.weight() & labels != 0);
        let mut comp = vec![u32::MAX; self.g.node_count()];
        for (c, members) in petgraph::algo::kosaraju_scc(&filtered).into_iter().enumerate() {
            if members.len() > 1 {
                for n in members {
                    comp[n.index()] = c as u32;
                }
            }
        }
        comp
    }
}

/// The search ran out of time.
struct OutOfTime;

/// Checks the clock every few thousand steps of search.
struct Clock {
    deadline: Instant,
    ticks: u32,
}

impl Clock {
    fn tick(&mut self) -> Result<(), OutOfTime> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(4096) { self.check() } else { Ok(()) }
    }
    fn check(&self) -> Result<(), OutOfTime> {
        if Instant::now() >= self.deadline { Err(OutOfTime) } else { Ok(()) }
    }
}

/// What one breadth-first search from an anchor found.
enum Walk {
    /// A path back to the anchor's source: (node, label of the edge
    /// leaving it), ending with the source.
    Found(Vec<(u32, u8)>),
    /// No path within the depth limit, and some path was cut off by it.
    Cut,
    /// No path of any length.
    None,
}

/// Reusable breadth-first search buffers.
#[derive(Default)]
struct Bfs {
    /// (node, state, parent entry, label of the edge from the parent).
    arena: Vec<(u32, u8, u32, u8)>,
    /// Per local node, the states it has been reached in (bit `s`).
    seen: Vec<u128>,
    /// Nodes whose `seen` bits must be cleared before the next search.
    touched: Vec<u32>,
}

impl Bfs {
    /// The shortest path from `from` to `to` that, after an anchor edge
    /// labelled `anchor`, closes a cycle of `kind`, staying inside
    /// sub-component `comp_id`, of at most `max_len` edges.
    #[allow(clippy::too_many_arguments)]
    fn search(
        &mut self,
        local: &Local,
        comp: &[u32],
        comp_id: u32,
        kind: Kind,
        anchor: u8,
        from: u32,
        to: u32,
        max_len: usize,
        clock: &mut Clock,
    ) -> Result<Walk, OutOfTime> {
        let Some(mut start) = kind.step(0, anchor) else { return Ok(Walk::None) };
        if anchor == rel::RW {
            start |= st::FIRST_RW & kind.relevant();
        }
        for &t in &self.touched {
            self.seen[t as usize] = 0;
        }
        self.touched.clear();
        self.seen.resize(local.g.node_count(), 0);
        self.arena.clear();
        self.arena.push((from, start, u32::MAX, 0));
        self.seen[from as usize] |= 1u128 << start;
        self.touched.push(from);
        let allowed = kind.labels();
        let mut head = 0usize;
        let mut level_end = 1usize;
        let mut depth = 1usize;
        while head < self.arena.len() {
            if head == level_end {
                depth += 1;
                level_end = self.arena.len();
            }
            if depth > max_len {
                return Ok(Walk::Cut);
            }
            let (node, state, _, _) = self.arena[head];
            for e in local.g.edges(NodeIndex::new(node as usize)) {
                clock.tick()?;
                let next = e.target().index() as u32;
                if comp[next as usize] != comp_id {
                    continue;
                }
                let labels = *e.weight() & allowed;
                for label in rel::ALL {
                    if labels & label == 0 {
                        continue;
                    }
                    let Some(s) = kind.step(state, label) else { continue };
                    if next == to {
                        if kind.accepts(s) {
                            self.arena.push((next, s, head as u32, label));
                            return Ok(Walk::Found(self.path(self.arena.len() - 1)));
                        }
                        continue;
                    }
                    let seen = &mut self.seen[next as usize];
                    if *seen & (1u128 << s) == 0 {
                        if *seen == 0 {
                            self.touched.push(next);
                        }
                        *seen |= 1u128 << s;
                        self.arena.push((next, s, head as u32, label));
                    }
                }
            }
            head += 1;
        }
        Ok(Walk::None)
    }

    /// Walks parent links back from arena entry `i`: the path as (node,
    /// label of the edge leaving it), ending with the target node.
    fn path(&self, mut i: usize) -> Vec<(u32, u8)> {
        let mut rev: Vec<(u32, u8)> = Vec::new();
        let mut label_out = 0u8;
        loop {
            let (node, _, parent, label_in) = self.arena[i];
            rev.push((node, label_out));
            label_out = label_in;
            if parent == u32::MAX {
                break;
            }
            i = parent as usize;
        }
        rev.reverse();
        rev
    }
}

/// The shortest cycle of `kind` in the component, if any.
///
/// Searches from every anchor with a depth limit that doubles each round
/// (1, 2, 4... edges): short cycles, the usual case, are found after
/// looking only at small neighbourhoods of the anchors, where searching
/// each anchor exhaustively in turn could sweep the whole component for
/// every anchor that has no cycle. A round that finds a cycle finds the
/// shortest (later anchors only look for shorter ones); a round in which
/// no search was cut off by the limit proves there is none.
fn shortest_of_kind(
    local: &Local,
    kind: Kind,
    components: &mut FxHashMap<u8, Vec<u32>>,
    bfs: &mut Bfs,
    clock: &mut Clock,
) -> Result<Option<Vec<(u32, u8)>>, OutOfTime> {
    clock.check()?;
    if kind.required().iter().any(|&r| local.present & r == 0) {
        return Ok(None);
    }
    // Kinds share label sets (G-single, G-nonadjacent and G2-item all use
    // ww, wr and rw), so each split is computed once per component.
    let comp: &[u32] =
        components.entry(kind.labels()).or_insert_with(|| local.components(kind.labels()));
    // Anchor on the rarest required label.
    let candidates = |label: u8| -> Vec<(u32, u32)> {
        local
            .g
            .edge_references()
            .filter(|e| e.weight() & label != 0)
            .map(|e| (e.source().index() as u32, e.target().index() as u32))
            .filter(|&(a, b)| comp[a as usize] != u32::MAX && comp[a as usize] == comp[b as usize])
            .collect()
    };
    let (anchor, anchors) = kind
        .required()
        .into_iter()
        .map(|l| (l, candidates(l)))
        .min_by_key(|(_, c)| c.len())
        .unwrap_or((0, Vec::new()));
    if anchors.is_empty() {
        return Ok(None);
    }
    let mut best: Option<Vec<(u32, u8)>> = None;
    let mut limit = 1usize;
    loop {
        let mut cut = false;
        for &(u, v) in &anchors {
            let max_len = best.as_ref().map_or(limit, |b| b.len() - 2);
            if max_len == 0 {
                break;
            }
            let walk =
                bfs.search(local, comp, comp[u as usize], kind, anchor, v, u, max_len, clock)?;
            let path = match walk {
                Walk::Found(path) => path,
                Walk::Cut => {
                    cut = true;
                    continue;
                }
                Walk::None => continue,
            };
            // The cycle: the anchor from u, then the path from v back to u.
            let mut cycle = vec![(u, anchor)];
            cycle.extend(path[..path.len() - 1].iter().copied());
            // A walk that passes a transaction twice is not a simple cycle;
            // keep looking rather than show it.
            let mut nodes: Vec<u32> = cycle.iter().map(|s| s.0).collect();
            nodes.sort_unstable();
            nodes.dedup();
            if nodes.len() == cycle.len() {
                best = Some(cycle);
            } else {
                cut = true;
            }
        }
        if best.is_some() || !cut || limit >= local.g.node_count() {
            return Ok(best);
        }
        limit *= 2;
    }
}

/// Some cycle, found without regard to kind: the shortest way back to the
/// component's first transaction. Each edge is labelled with the label
/// explanations prefer. Used when the budget ran out before any cycle was
/// found, so that a component never passes silently.
fn any_cycle(local: &Local) -> Vec<(u32, u8)> {
    let n = local.g.node_count();
    let mut parent = vec![u32::MAX; n];
    let mut queue = std::collections::VecDeque::new();
    queue.push_back(0u32);
    'bfs: while let Some(x) = queue.pop_front() {
        for e in local.g.edges(NodeIndex::new(x as usize)) {
            let y = e.target().index() as u32;
            if y == 0 {
                parent[0] = x;
                break 'bfs;
            }
            if parent[y as usize] == u32::MAX {
                parent[y as usize] = x;
                queue.push_back(y);
            }
        }
    }
    let mut nodes = vec![0u32];
    let mut x = parent[0];
    while x != 0 && x != u32::MAX && nodes.len() <= n {
        nodes.push(x);
        x = parent[x as usize];
    }
    nodes.reverse();
    // nodes: 0's predecessor chain reversed, starting just after 0; rotate so
    // that 0 comes first.
    nodes.rotate_right(1);
    let len = nodes.len();
    (0..len)
        .map(|i| {
            let (a, b) = (nodes[i], nodes[(i + 1) % len]);
            let labels = local
                .g
                .edges_connecting(NodeIndex::new(a as usize), NodeIndex::new(b as usize))
                .fold(0u8, |acc, e| acc | e.weight());
            let label = rel::ALL.into_iter().find(|&l| labels & l != 0).unwrap_or(rel::WW);
            (a, label)
        })
        .collect()
}

/// Searches one component for each kind in `kinds` (most severe first),
/// skipping kinds that a cycle already found implies, until `deadline`.
/// `realtime` holds the component's real-time edges (the graph itself
/// carries real-time order only in compact form).
pub(crate) fn search_scc(
    graph: &Graph,
    scc: &[u32],
    realtime: &[(u32, u32)],
    kinds: &[Kind],
    deadline: Instant,
) -> SccResult {
    let local = Local::new(graph, scc, realtime);
    let mut clock = Clock { deadline, ticks: 0 };
    let mut bfs = Bfs::default();
    let mut components: FxHashMap<u8, Vec<u32>> = FxHashMap::default();
    let mut result = SccResult { size: scc.len(), ..SccResult::default() };
    let mut implied: std::collections::BTreeSet<String> = Default::default();
    let mut searched: Vec<Kind> = Vec::new();
    // Cycles are written from their earliest transaction, which reads most
    // naturally (and is the same whichever anchor the search started from).
    let to_global = |steps: Vec<(u32, u8)>| -> Vec<(u32, u8)> {
        let mut g: Vec<(u32, u8)> =
            steps.into_iter().map(|(n, r)| (local.g[NodeIndex::new(n as usize)], r)).collect();
        if let Some(first) = g.iter().enumerate().min_by_key(|(_, s)| s.0).map(|(i, _)| i) {
            g.rotate_left(first);
        }
        g
    };
    for &kind in kinds {
        if implied.contains(kind.name()) {
            continue;
        }
        match shortest_of_kind(&local, kind, &mut components, &mut bfs, &mut clock) {
            Ok(Some(steps)) => {
                implied = models::implied_anomalies(
                    result.cycles.iter().map(|c| c.kind.name()).chain([kind.name()]),
                );
                result.cycles.push(Cycle { kind, steps: to_global(steps) });
            }
            Ok(None) => {}
            Err(OutOfTime) => {
                result.timeout = Some((searched.clone(), kind));
                break;
            }
        }
        searched.push(kind);
    }
    if result.cycles.is_empty() {
        // A strongly connected component always holds a cycle. If the search
        // found none (out of time, or only walks that were not simple), show
        // one anyway, named by its edges.
        let steps = any_cycle(&local);
        let labels: Vec<u8> = steps.iter().map(|s| s.1).collect();
        result.cycles.push(Cycle { kind: classify(&labels), steps: to_global(steps) });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elle::graph::EdgeList;
    use std::time::Duration;

    fn graph(n: usize, edges: &[(u32, u32, u8)]) -> Graph {
        let mut e = EdgeList::default();
        for &(a, b, r) in edges {
            e.add(a, b, r);
        }
        Graph::build(n, e)
    }

    fn search(g: &Graph) -> Vec<(String, Vec<(u32, u8)>)> {
        let sccs = g.nontrivial_sccs(g.node_count() as u32);
        let far = Instant::now() + Duration::from_secs(60);
        sccs.iter()
            .flat_map(|c| search_scc(g, c, &[], &Kind::all(), far).cycles)
            .map(|c| (c.kind.name().to_owned(), c.steps))
            .collect()
    }

    #[test]
    fn names_each_class_of_data_cycle() {
        let g = graph(2, &[(0, 1, rel::WW), (1, 0, rel::WW)]);
        assert_eq!(search(&g)[0].0, "G0");
        let g = graph(2, &[(0, 1, rel::WW), (1, 0, rel::WR)]);
        assert_eq!(search(&g)[0].0, "G1c");
        let g = graph(2, &[(0, 1, rel::RW), (1, 0, rel::WR)]);
        assert_eq!(search(&g), vec![("G-single".to_owned(), vec![(0, rel::RW), (1, rel::WR)])]);
        let g = graph(3, &[(0, 1, rel::WR), (1, 2, rel::WR), (2, 0, rel::RW)]);
        assert_eq!(search(&g)[0].1[0].0, 0, "cycles start at their earliest transaction");
        let g = graph(2, &[(0, 1, rel::RW), (1, 0, rel::RW)]);
        assert_eq!(search(&g)[0].0, "G2-item");
        let g = graph(4, &[(0, 1, rel::RW), (1, 2, rel::WR), (2, 3, rel::RW), (3, 0, rel::WR)]);
        assert_eq!(search(&g)[0].0, "G-nonadjacent");
    }

    #[test]
    fn prefers_the_most_severe_kind_and_the_shortest_cycle() {
        // A long G0 cycle and a short G-single share a component: G0 is
        // reported (more severe) and G-single is implied by nothing, so it
        // is reported too, as the two-edge cycle.
        let g = graph(
            4,
            &[(0, 1, rel::WW), (1, 2, rel::WW), (2, 3, rel::WW), (3, 0, rel::WW), (1, 0, rel::RW)],
        );
        let found = search(&g);
        assert_eq!(found[0].0, "G0");
        assert_eq!(found[0].1.len(), 4);
        assert_eq!(found[1], ("G-single".to_owned(), vec![(0, rel::WW), (1, rel::RW)]));
    }

    #[test]
    fn realtime_variants_need_a_realtime_edge() {
        let g = graph(2, &[(0, 1, rel::RT), (1, 0, rel::RW)]);
        assert_eq!(search(&g)[0].0, "G-single-realtime");
        let g = graph(2, &[(0, 1, rel::RT | rel::WW), (1, 0, rel::WW)]);
        assert_eq!(search(&g)[0].0, "G0");
    }

    #[test]
    fn an_exhausted_budget_still_shows_a_cycle() {
        let g = graph(3, &[(0, 1, rel::WR), (1, 2, rel::WR), (2, 0, rel::RW)]);
        let sccs = g.nontrivial_sccs(3);
        let r = search_scc(&g, &sccs[0], &[], &Kind::all(), Instant::now());
        assert!(r.timeout.is_some());
        assert_eq!(r.cycles.len(), 1);
        assert_eq!(r.cycles[0].kind.name(), "G-single");
        assert_eq!(r.cycles[0].steps.len(), 3);
    }

    #[test]
    fn classifies_like_elle() {
        assert_eq!(classify(&[rel::RW, rel::RW, rel::WR]).name(), "G2-item");
        assert_eq!(classify(&[rel::RW, rel::WR, rel::RW, rel::WR]).name(), "G-nonadjacent");
        assert_eq!(classify(&[rel::WW, rel::PROCESS]).name(), "G0-process");
    }
}
