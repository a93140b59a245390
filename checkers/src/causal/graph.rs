//! The causal graph of a key-value history: session order, read-from, and the
//! extra edges the stronger models add; vector clocks that stand for its
//! transitive closure; paths and cycles to explain a violation.
//!
//! Why vector clocks and not a transitive closure: session order is a total
//! order per session, so the causal past of any event meets each session in a
//! prefix. One counter per session ("how many events of session s are in my
//! past") therefore describes the whole past exactly, in O(n·S) memory for n
//! events and S sessions, and `e ∈ past(u)` is one comparison. The same holds
//! for every relation here that contains session order and is transitive.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::kv::{Access, KvHistory, NONE};

/// How one event leads to the next in a chain of evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// `from` precedes `to` in the same session (not necessarily adjacently).
    Session,
    /// `to` read the value `from` wrote.
    ReadFrom,
    /// `from` is a write in the causal past of `witness`, a read of the value
    /// `to` wrote: a convergent store must order `from` before `to`.
    Conflict {
        /// The read that saw `to`'s value with `from` in its past.
        witness: u32,
    },
    /// In the view of session `view`, `from` happened before `witness`, that
    /// session's read of the value `to` wrote; so `from` precedes `to`.
    HappensBefore {
        /// The read of the viewing session.
        witness: u32,
        /// The session whose view this is.
        view: u32,
    },
}

/// A chain of events, each leading to the next by a step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    /// The events, in causal order. A cycle starts and ends with the same event.
    pub events: Vec<u32>,
    /// `steps[i]` leads from `events[i]` to `events[i + 1]`.
    pub steps: Vec<Step>,
}

impl Chain {
    /// Merges runs of session steps (a, b, c in one session become a, c).
    pub(crate) fn compress(mut self) -> Chain {
        let mut events = Vec::with_capacity(self.events.len());
        let mut steps = Vec::with_capacity(self.steps.len());
        events.push(self.events[0]);
        for (i, step) in self.steps.drain(..).enumerate() {
            if step == Step::Session && steps.last() == Some(&Step::Session) {
                events.pop();
            } else {
                steps.push(step);
            }
            events.push(self.events[i + 1]);
        }
        Chain { events, steps }
    }
}

/// Edges beyond session order and read-from, with the reason for each.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    out: FxHashMap<u32, Vec<u32>>,
    inn: FxHashMap<u32, Vec<(u32, Step)>>,
    seen: FxHashSet<(u32, u32)>,
}

impl Extra {
    /// Adds `from → to`; false if that edge was already there.
    pub fn add(&mut self, from: u32, to: u32, step: Step) -> bool {
        if !self.seen.insert((from, to)) {
            return false;
        }
        self.out.entry(from).or_default().push(to);
        self.inn.entry(to).or_default().push((from, step));
        true
    }

    /// Number of edges.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    fn preds(&self, to: u32) -> &[(u32, Step)] {
        self.inn.get(&to).map_or(&[], Vec::as_slice)
    }

    fn succs(&self, from: u32) -> &[u32] {
        self.out.get(&from).map_or(&[], Vec::as_slice)
    }
}

/// Session order and read-from over a key-value history.
pub struct Graph<'a> {
    /// The history.
    pub kv: &'a KvHistory,
    /// Number of sessions: the width of every vector clock.
    pub width: usize,
    /// Session and position of each event, compact for the hot loops.
    sess: Vec<u32>,
    seq: Vec<u32>,
    po_prev: Vec<u32>,
    po_next: Vec<u32>,
    /// For each read, the write it read from (`NONE` for initial or thin-air reads).
    pub rf_src: Vec<u32>,
    rf_start: Vec<u32>,
    rf_out: Vec<u32>,
    /// For each key: the sessions that write it, each with its writes in session order.
    writers: FxHashMap<u32, Vec<(u32, Vec<u32>)>>,
}

/// Read access to vector clocks: one array, or one layered over another.
pub trait ClockView {
    /// How many events of each session are in `u`'s past (`u` included).
    fn of(&self, u: u32) -> &[u32];
    /// True when `u`'s clock is computed.
    fn done(&self, u: u32) -> bool;
}

/// Clocks recomputed for some events (`top`) over clocks for all (`base`):
/// happens-before differs from causal order only downstream of its extra
/// edges, so only those events get their own clocks.
pub struct Layered<'a> {
    /// The recomputed clocks.
    pub top: &'a Clocks,
    /// The clocks used where `top` has none.
    pub base: &'a Clocks,
}

impl ClockView for Layered<'_> {
    fn of(&self, u: u32) -> &[u32] {
        if self.top.done(u) { self.top.of(u) } else { self.base.of(u) }
    }

    fn done(&self, u: u32) -> bool {
        self.top.done(u) || self.base.done(u)
    }
}

impl ClockView for Clocks {
    fn of(&self, u: u32) -> &[u32] {
        Clocks::of(self, u)
    }

    fn done(&self, u: u32) -> bool {
        Clocks::done(self, u)
    }
}

/// One vector clock per event, valid for the events the last passes reached.
///
/// Validity is a generation stamp, so starting over costs nothing: passes
/// run hundreds of times when causal memory saturates, and clearing
/// n × S counters each time would dominate.
pub struct Clocks {
    width: usize,
    data: Vec<u32>,
    valid: Vec<u32>,
    generation: u32,
    /// Membership of the current pass's node set, by the same trick.
    in_pass: Vec<u32>,
    pass: u32,
    /// In-degrees during a pass (entries of the pass's nodes only).
    indeg: Vec<u32>,
}

impl Clocks {
    /// Clocks for `n` events over `width` sessions, none computed yet.
    pub fn new(n: usize, width: usize) -> Clocks {
        Clocks {
            width,
            data: vec![0; n * width],
            valid: vec![0; n],
            generation: 1,
            in_pass: vec![0; n],
            pass: 0,
            indeg: vec![0; n],
        }
    }

    /// True when `u`'s clock is computed (it is not on or downstream of a cycle).
    pub fn done(&self, u: u32) -> bool {
        self.valid[u as usize] == self.generation
    }

    /// How many events of each session are in `u`'s past (`u` included).
    pub fn of(&self, u: u32) -> &[u32] {
        let i = u as usize * self.width;
        &self.data[i..i + self.width]
    }

    /// Forgets every clock.
    pub fn invalidate_all(&mut self) {
        self.generation += 1;
    }
}

impl<'a> Graph<'a> {
    /// Builds session order and read-from. `writer_of` maps each read to the
    /// write whose value it returned (`NONE` when there is none).
    pub fn new(kv: &'a KvHistory, rf_src: Vec<u32>) -> Graph<'a> {
        let n = kv.events.len();
        let mut po_prev = vec![NONE; n];
        let mut po_next = vec![NONE; n];
        for s in &kv.sessions {
            for w in s.events.windows(2) {
                po_next[w[0] as usize] = w[1];
                po_prev[w[1] as usize] = w[0];
            }
        }
        // Read-from successors as compressed rows: rf_out[rf_start[w]..rf_start[w+1]].
        let mut counts = vec![0u32; n + 1];
        for &w in &rf_src {
            if w != NONE {
                counts[w as usize + 1] += 1;
            }
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let rf_start = counts.clone();
        let mut fill = counts;
        let mut rf_out = vec![0u32; rf_start[n] as usize];
        for (r, &w) in rf_src.iter().enumerate() {
            if w != NONE {
                rf_out[fill[w as usize] as usize] = r as u32;
                fill[w as usize] += 1;
            }
        }
        let mut writers: FxHashMap<u32, Vec<(u32, Vec<u32>)>> = FxHashMap::default();
        for (s, session) in kv.sessions.iter().enumerate() {
            for &e in &session.events {
                let ev = &kv.events[e as usize];
                if ev.access != Access::Write {
                    continue;
                }
                let list = writers.entry(ev.key).or_default();
                match list.last_mut() {
                    Some((ls, writes)) if *ls == s as u32 => writes.push(e),
                    _ => list.push((s as u32, vec![e])),
                }
            }
        }
        let sess = kv.events.iter().map(|e| e.session).collect();
        let seq = kv.events.iter().map(|e| e.seq).collect();
        Graph {
            kv,
            width: kv.sessions.len(),
            sess,
            seq,
            po_prev,
            po_next,
            rf_src,
            rf_start,
            rf_out,
            writers,
        }
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.po_prev.len()
    }

    /// The session of event `e`.
    pub fn session(&self, e: u32) -> usize {
        self.sess[e as usize] as usize
    }

    /// The position of event `e` in its session.
    pub fn seq(&self, e: u32) -> u32 {
        self.seq[e as usize]
    }

    /// True when `e` is in the past of `u` (or is `u`) according to `clocks`.
    pub fn in_past(&self, clocks: &impl ClockView, e: u32, u: u32) -> bool {
        clocks.of(u)[self.session(e)] > self.seq(e)
    }

    /// For each session writing `key`, its last write of `key` within the
    /// past of `u` according to `clocks`. By the prefix property, every other
    /// write of that session in `u`'s past precedes it in session order.
    pub fn last_writes_in_past<'c>(
        &'c self,
        clocks: &'c impl ClockView,
        key: u32,
        u: u32,
    ) -> impl Iterator<Item = u32> + 'c {
        let clock = clocks.of(u);
        self.writers.get(&key).into_iter().flatten().filter_map(move |(s, writes)| {
            let bound = clock[*s as usize];
            let i = writes.partition_point(|&w| self.seq(w) < bound);
            (i > 0).then(|| writes[i - 1])
        })
    }

    fn preds(&self, extra: &Extra, u: u32, out: &mut Vec<(u32, Step)>) {
        out.clear();
        let p = self.po_prev[u as usize];
        if p != NONE {
            out.push((p, Step::Session));
        }
        let w = self.rf_src[u as usize];
        if w != NONE {
            out.push((w, Step::ReadFrom));
        }
        out.extend_from_slice(extra.preds(u));
    }

    /// The events that directly follow `u`: its session successor, the reads
    /// of its value, and `extra`'s edges out of it.
    pub(crate) fn succs(&self, extra: &Extra, u: u32, out: &mut Vec<u32>) {
        out.clear();
        let n = self.po_next[u as usize];
        if n != NONE {
            out.push(n);
        }
        let (a, b) = (self.rf_start[u as usize] as usize, self.rf_start[u as usize + 1] as usize);
        out.extend_from_slice(&self.rf_out[a..b]);
        out.extend_from_slice(extra.succs(u));
    }

    /// Computes the vector clocks of `nodes` over session order, read-from
    /// and `extra`, in topological order (Kahn). Predecessors outside `nodes`
    /// count only if `member` admits them, and then their clocks come from
    /// `clocks` if done there, else from `base`: this lets a pass recompute
    /// just the events downstream of new edges. Returns the nodes left over:
    /// those on or downstream of a cycle (empty when the graph is acyclic).
    pub fn clocks(
        &self,
        extra: &Extra,
        nodes: &[u32],
        member: &dyn Fn(u32) -> bool,
        clocks: &mut Clocks,
        base: Option<&Clocks>,
    ) -> Vec<u32> {
        let w = self.width;
        clocks.pass += 1;
        let pass = clocks.pass;
        for &u in nodes {
            clocks.in_pass[u as usize] = pass;
            clocks.valid[u as usize] = 0;
        }
        let in_pass = |c: &Clocks, u: u32| c.in_pass[u as usize] == pass;
        let mut ready = Vec::new();
        let mut buf = Vec::new();
        for &u in nodes {
            self.preds(extra, u, &mut buf);
            let d = buf.iter().filter(|(p, _)| in_pass(clocks, *p)).count() as u32;
            clocks.indeg[u as usize] = d;
            if d == 0 {
                ready.push(u);
            }
        }
        // Pop in reverse so that, among ready events, lower indices go first:
        // the order only affects speed, never the clocks.
        ready.reverse();
        let mut processed = 0usize;
        let mut tmp = vec![0u32; w];
        let mut succ = Vec::new();
        while let Some(u) = ready.pop() {
            processed += 1;
            tmp.fill(0);
            self.preds(extra, u, &mut buf);
            for &(p, _) in &buf {
                let clock = if clocks.done(p) {
                    clocks.of(p)
                } else if let Some(b) = base.filter(|_| member(p)) {
                    b.of(p)
                } else {
                    continue;
                };
                for (t, c) in tmp.iter_mut().zip(clock) {
                    *t = (*t).max(*c);
                }
            }
            let s = self.session(u);
            tmp[s] = tmp[s].max(self.seq(u) + 1);
            let i = u as usize * w;
            clocks.data[i..i + w].copy_from_slice(&tmp);
            clocks.valid[u as usize] = clocks.generation;
            self.succs(extra, u, &mut succ);
            for &v in &succ {
                if in_pass(clocks, v) {
                    clocks.indeg[v as usize] -= 1;
                    if clocks.indeg[v as usize] == 0 {
                        ready.push(v);
                    }
                }
            }
        }
        if processed == nodes.len() {
            return Vec::new();
        }
        let mut left: Vec<u32> = nodes.iter().copied().filter(|&u| !clocks.done(u)).collect();
        left.sort_unstable();
        left
    }

    /// The events reachable from `from` (included) whose membership `member`
    /// admits, in no particular order. `clocks` lends its pass stamps.
    pub fn downstream(
        &self,
        extra: &Extra,
        from: &[u32],
        member: &dyn Fn(u32) -> bool,
        clocks: &mut Clocks,
    ) -> Vec<u32> {
        clocks.pass += 1;
        let mark = clocks.pass;
        let mut out = Vec::new();
        for &u in from {
            if member(u) && clocks.in_pass[u as usize] != mark {
                clocks.in_pass[u as usize] = mark;
                out.push(u);
            }
        }
        let mut next = 0;
        let mut succ = Vec::new();
        while next < out.len() {
            let u = out[next];
            next += 1;
            self.succs(extra, u, &mut succ);
            for &v in &succ {
                if member(v) && clocks.in_pass[v as usize] != mark {
                    clocks.in_pass[v as usize] = mark;
                    out.push(v);
                }
            }
        }
        out
    }

    /// A chain from `a` to `b`, given that `a` is in the past of `b` under
    /// `clocks` (computed over the same `extra`). Walks back from `b`: within a
    /// session it jumps straight to the earliest event it needs; across
    /// sessions it follows an edge whose source still has `a` in its past.
    pub fn path(&self, clocks: &impl ClockView, extra: &Extra, a: u32, b: u32) -> Chain {
        let mut events = vec![b];
        let mut steps = Vec::new();
        let mut cur = b;
        let mut buf = Vec::new();
        while cur != a {
            if self.session(cur) == self.session(a) && self.seq(a) < self.seq(cur) {
                events.push(a);
                steps.push(Step::Session);
                break;
            }
            let session = &self.kv.sessions[self.session(cur)].events;
            let mut found = None;
            'scan: for i in (0..=self.seq(cur) as usize).rev() {
                let e = session[i];
                self.preds(extra, e, &mut buf);
                for &(p, step) in &buf {
                    if step != Step::Session
                        && clocks.done(p)
                        && (p == a || self.in_past(clocks, a, p))
                    {
                        found = Some((e, p, step));
                        break 'scan;
                    }
                }
            }
            let Some((e, p, step)) = found else {
                // Unreachable when `a` is in `b`'s past; stop rather than loop.
                break;
            };
            if e != cur {
                events.push(e);
                steps.push(Step::Session);
            }
            events.push(p);
            steps.push(step);
            cur = p;
        }
        events.reverse();
        steps.reverse();
        Chain { events, steps }.compress()
    }

    /// The strongly connected components with a cycle among `nodes` (the
    /// leftovers of a `clocks` pass), each with one shortest cycle through
    /// its first node. Components come in a deterministic order.
    pub fn cycles(&self, extra: &Extra, nodes: &[u32], limit: usize) -> (usize, Vec<Chain>) {
        let n = self.len();
        let mut member = vec![false; n];
        for &u in nodes {
            member[u as usize] = true;
        }
        let comps = tarjan(nodes, &member, |u, out| self.succs(extra, u, out));
        let mut chains = Vec::new();
        let mut count = 0;
        let mut in_comp = vec![false; n];
        for comp in &comps {
            if comp.len() < 2 {
                continue;
            }
            count += 1;
            if chains.len() >= limit {
                continue;
            }
            for &u in comp {
                in_comp[u as usize] = true;
            }
            let root = *comp.iter().min().unwrap_or(&comp[0]);
            if let Some(chain) = self.shortest_cycle(extra, &in_comp, root) {
                chains.push(chain);
            }
            for &u in comp {
                in_comp[u as usize] = false;
            }
        }
        (count, chains)
    }

    fn shortest_cycle(&self, extra: &Extra, member: &[bool], root: u32) -> Option<Chain> {
        let mut parent: FxHashMap<u32, u32> = FxHashMap::default();
        let mut queue = std::collections::VecDeque::from([root]);
        let mut succ = Vec::new();
        let mut last = None;
        'bfs: while let Some(u) = queue.pop_front() {
            self.succs(extra, u, &mut succ);
            for &v in &succ {
                if !member[v as usize] {
                    continue;
                }
                if v == root {
                    last = Some(u);
                    break 'bfs;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(v) {
                    e.insert(u);
                    queue.push_back(v);
                }
            }
        }
        let mut events = vec![root];
        let mut cur = last?;
        while cur != root {
            events.push(cur);
            cur = *parent.get(&cur)?;
        }
        events.push(root);
        events.reverse();
        let steps = events.windows(2).map(|w| self.step_between(extra, w[0], w[1])).collect();
        Some(Chain { events, steps }.compress())
    }

    fn step_between(&self, extra: &Extra, from: u32, to: u32) -> Step {
        if self.po_next[from as usize] == to {
            Step::Session
        } else if self.rf_src[to as usize] == from {
            Step::ReadFrom
        } else {
            extra.preds(to).iter().find(|(p, _)| *p == from).map_or(Step::Session, |(_, s)| *s)
        }
    }
}

/// Tarjan's strongly connected components over `nodes`, iteratively (a
/// recursive version would overflow the stack on long sessions).
fn tarjan(nodes: &[u32], member: &[bool], succs: impl Fn(u32, &mut Vec<u32>)) -> Vec<Vec<u32>> {
    const UNSEEN: u32 = u32::MAX;
    let n = member.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut comps = Vec::new();
    let mut next = 0u32;
    // Work stack of (node, its successors, position in them).
    let mut work: Vec<(u32, Vec<u32>, usize)> = Vec::new();
    for &root in nodes {
        if index[root as usize] != UNSEEN {
            continue;
        }
        let mut s = Vec::new();
        succs(root, &mut s);
        index[root as usize] = next;
        low[root as usize] = next;
        next += 1;
        stack.push(root);
        on_stack[root as usize] = true;
        work.push((root, s, 0));
        while let Some((u, succ, i)) = work.last_mut() {
            let u = *u;
            if *i < succ.len() {
                let v = succ[*i];
                *i += 1;
                if !member[v as usize] {
                    continue;
                }
                if index[v as usize] == UNSEEN {
                    let mut s = Vec::new();
                    succs(v, &mut s);
                    index[v as usize] = next;
                    low[v as usize] = next;
                    next += 1;
                    stack.push(v);
                    on_stack[v as usize] = true;
                    work.push((v, s, 0));
                } else if on_stack[v as usize] {
                    low[u as usize] = low[u as usize].min(index[v as usize]);
                }
                continue;
            }
            work.pop();
            if let Some((parent, _, _)) = work.last() {
                low[*parent as usize] = low[*parent as usize].min(low[u as usize]);
            }
            if low[u as usize] == index[u as usize] {
                let mut comp = Vec::new();
                while let Some(v) = stack.pop() {
                    on_stack[v as usize] = false;
                    comp.push(v);
                    if v == u {
                        break;
                    }
                }
                comp.sort_unstable();
                comps.push(comp);
            }
        }
    }
    comps.sort_by_key(|c| c[0]);
    comps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarjan_finds_the_cycle_and_leaves_singletons() {
        // 0 → 1 → 2 → 0, 2 → 3.
        let edges: Vec<Vec<u32>> = vec![vec![1], vec![2], vec![0, 3], vec![]];
        let member = vec![true; 4];
        let comps = tarjan(&[0, 1, 2, 3], &member, |u, out| {
            out.clear();
            out.extend_from_slice(&edges[u as usize]);
        });
        assert_eq!(comps, vec![vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn compress_merges_session_runs_only() {
        let c = Chain {
            events: vec![0, 1, 2, 3, 4],
            steps: vec![Step::Session, Step::Session, Step::ReadFrom, Step::Session],
        }
        .compress();
        assert_eq!(c.events, vec![0, 2, 3, 4]);
        assert_eq!(c.steps, vec![Step::Session, Step::ReadFrom, Step::Session]);
    }
}
