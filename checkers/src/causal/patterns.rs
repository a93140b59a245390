//! The bad patterns of Bouajjani, Enea, Guerraoui and Hamza (POPL 2017),
//! found with the vector clocks of `graph`.
//!
//! Complexity, for n events, S sessions and the writes per key:
//! - CC (CyclicCO, WriteCOInitRead, ThinAirRead, WriteCORead): one
//!   topological pass, O(n·S) time and memory, then O(S·log n) per read.
//! - CCv adds CyclicCF: at most S conflict edges per read (only the latest
//!   write of each session in the read's past matters, the others reach it by
//!   session order), then one more pass: O(n·S).
//! - CM adds WriteHBInitRead and CyclicHB: per session a saturation that
//!   repeats the pass until no new happens-before edge appears; each round is
//!   O(n·S) and adds at least one of at most (reads of the session)·S edges,
//!   so O(n²·S²) in the worst case and a few rounds in practice.

use std::collections::BTreeMap;
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::graph::{Chain, Clocks, Extra, Graph, Layered, Step};
use crate::kv::{Access, KvHistory, NONE};
use crate::value::Value;

/// A bad pattern: a shape of history that rules a model out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pattern {
    /// Causal order (session order and read-from, closed) has a cycle.
    CyclicCO,
    /// A read of the initial value has a write of its key in its causal past.
    WriteCOInitRead,
    /// A read returns a value nobody wrote.
    ThinAirRead,
    /// A read returns a value that, in its causal past, was already overwritten.
    WriteCORead,
    /// Causal order plus the conflict order of convergence has a cycle (CCv).
    CyclicCF,
    /// In one session's happens-before, a write precedes its read of the initial value (CM).
    WriteHBInitRead,
    /// One session's happens-before has a cycle (CM).
    CyclicHB,
}

impl Pattern {
    /// The name used in verdicts and documentation.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::CyclicCO => "CyclicCO",
            Pattern::WriteCOInitRead => "WriteCOInitRead",
            Pattern::ThinAirRead => "ThinAirRead",
            Pattern::WriteCORead => "WriteCORead",
            Pattern::CyclicCF => "CyclicCF",
            Pattern::WriteHBInitRead => "WriteHBInitRead",
            Pattern::CyclicHB => "CyclicHB",
        }
    }
}

/// Which causal model to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Causal consistency (CC): the four base patterns.
    Causal,
    /// Convergent causal consistency (CCv): CC plus CyclicCF.
    Convergent,
    /// Causal memory (CM): CC plus WriteHBInitRead and CyclicHB.
    Memory,
}

impl Model {
    /// Parses `causal`, `ccv` or `causal-memory` (and short aliases).
    pub fn parse(s: &str) -> Option<Model> {
        match s {
            "causal" | "cc" => Some(Model::Causal),
            "ccv" | "convergent-causal" => Some(Model::Convergent),
            "causal-memory" | "cm" => Some(Model::Memory),
            _ => None,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Model::Causal => "causal",
            Model::Convergent => "ccv",
            Model::Memory => "causal-memory",
        }
    }

    /// The patterns this model forbids.
    pub fn patterns(self) -> &'static [Pattern] {
        use Pattern::*;
        match self {
            Model::Causal => &[CyclicCO, WriteCOInitRead, ThinAirRead, WriteCORead],
            Model::Convergent => &[CyclicCO, WriteCOInitRead, ThinAirRead, WriteCORead, CyclicCF],
            Model::Memory => {
                &[CyclicCO, WriteCOInitRead, ThinAirRead, WriteCORead, WriteHBInitRead, CyclicHB]
            }
        }
    }
}

/// One occurrence of a bad pattern, with its evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which pattern.
    pub pattern: Pattern,
    /// The read at fault (none for the cyclic patterns).
    pub read: Option<u32>,
    /// For WriteCORead and WriteHBInitRead: the write the read should have
    /// seen past (WriteCORead: the overwriting write).
    pub write: Option<u32>,
    /// The chains of evidence: a cycle, or the path(s) from the write(s) to the read.
    pub chains: Vec<Chain>,
    /// For ThinAirRead: the history position of a failed write of the same value.
    pub failed_write: Option<usize>,
    /// For the causal-memory patterns: the session whose view is contradictory.
    pub view: Option<u32>,
}

/// Everything the search found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Violations, at most `limit` per pattern, in a deterministic order.
    pub violations: Vec<Violation>,
    /// How many of each pattern were found in all (cycles: one per strongly
    /// connected component).
    pub counts: BTreeMap<Pattern, usize>,
    /// Patterns that were not looked for, and why.
    pub skipped: Vec<(Pattern, String)>,
    /// Set when the time budget ran out; the findings so far are still true.
    pub exhausted: Option<String>,
    /// Conflict or happens-before edges added (for the details).
    pub extra_edges: usize,
    /// Saturation rounds run for causal memory, in all.
    pub rounds: usize,
}

impl Findings {
    fn push(&mut self, v: Violation, limit: usize) {
        let count = self.counts.entry(v.pattern).or_insert(0);
        *count += 1;
        if *count <= limit {
            self.violations.push(v);
        }
    }

    fn found_any(&self, patterns: &[Pattern]) -> bool {
        patterns.iter().any(|p| self.counts.get(p).copied().unwrap_or(0) > 0)
    }
}

/// Options of one search.
pub struct Search<'a> {
    /// The model.
    pub model: Model,
    /// The value a read returns before any write (`nil` by default).
    pub init: &'a Value,
    /// At most this many violations of each pattern are explained.
    pub limit: usize,
    /// Give up (answer unknown) after this instant.
    pub deadline: Option<Instant>,
}

/// Finds the writer of every read. A read of `init` has none; a read of a
/// value nobody wrote is a ThinAirRead.
pub fn read_from(
    kv: &KvHistory,
    init: &Value,
    writers: &FxHashMap<(u32, &Value), u32>,
) -> Vec<u32> {
    kv.events
        .iter()
        .map(|e| {
            if e.access != Access::Read || e.value == *init {
                return NONE;
            }
            writers.get(&(e.key, &e.value)).copied().unwrap_or(NONE)
        })
        .collect()
}

/// Runs the search.
pub fn search(kv: &KvHistory, rf_src: Vec<u32>, opts: &Search<'_>) -> Findings {
    let mut f = Findings::default();
    let g = Graph::new(kv, rf_src);
    let n = g.len();
    let limit = opts.limit;

    // ThinAirRead needs no causal order.
    for (r, e) in kv.events.iter().enumerate() {
        if e.access == Access::Read && e.value != *opts.init && g.rf_src[r] == NONE {
            let failed_write = kv.failed_writes.get(&(e.key, e.value.clone())).copied();
            f.push(
                Violation {
                    pattern: Pattern::ThinAirRead,
                    read: Some(r as u32),
                    write: None,
                    chains: Vec::new(),
                    failed_write,
                    view: None,
                },
                limit,
            );
        }
    }

    let none = Extra::default();
    let mut co = Clocks::new(n, g.width);
    let all: Vec<u32> = (0..n as u32).collect();
    let leftover = g.clocks(&none, &all, &|_| true, &mut co, None);
    if !leftover.is_empty() {
        let (count, chains) = g.cycles(&none, &leftover, limit);
        f.add_cycles(Pattern::CyclicCO, count, chains, None, limit);
    }

    // WriteCOInitRead and WriteCORead, for every read the pass reached.
    for r in 0..n as u32 {
        let e = &kv.events[r as usize];
        if e.access != Access::Read || !co.done(r) {
            continue;
        }
        if e.value == *opts.init {
            if let Some(w) = prefer_own(&g, r, g.last_writes_in_past(&co, e.key, r)) {
                let chain = g.path(&co, &none, w, r);
                f.push(
                    Violation {
                        pattern: Pattern::WriteCOInitRead,
                        read: Some(r),
                        write: Some(w),
                        chains: vec![chain],
                        failed_write: None,
                        view: None,
                    },
                    limit,
                );
            }
            continue;
        }
        let w = g.rf_src[r as usize];
        if w == NONE {
            continue;
        }
        let over =
            g.last_writes_in_past(&co, e.key, r).filter(|&w2| w2 != w && g.in_past(&co, w, w2));
        if let Some(w2) = prefer_own(&g, r, over) {
            let chains = vec![g.path(&co, &none, w, w2), g.path(&co, &none, w2, r)];
            f.push(
                Violation {
                    pattern: Pattern::WriteCORead,
                    read: Some(r),
                    write: Some(w2),
                    chains,
                    failed_write: None,
                    view: None,
                },
                limit,
            );
        }
    }

    if !leftover.is_empty() {
        let why = "causal order is cyclic, so every operation on the cycle is already causally after itself";
        for p in [Pattern::CyclicCF, Pattern::WriteHBInitRead, Pattern::CyclicHB] {
            if opts.model.patterns().contains(&p) {
                f.skipped.push((p, why.into()));
            }
        }
        return f;
    }
    let base = [Pattern::WriteCOInitRead, Pattern::WriteCORead];
    if f.found_any(&base) {
        // Each of these implies a conflict or happens-before cycle through
        // the same operations; reporting both would say the same thing twice.
        let why = "the history already shows a WriteCOInitRead or WriteCORead, which implies this pattern on the same operations";
        for p in [Pattern::CyclicCF, Pattern::WriteHBInitRead, Pattern::CyclicHB] {
            if opts.model.patterns().contains(&p) {
                f.skipped.push((p, why.into()));
            }
        }
        return f;
    }
    match opts.model {
        Model::Causal => {}
        Model::Convergent => convergent(&g, &co, opts, &mut f),
        Model::Memory => memory(&g, &co, opts, &mut f),
    }
    f
}

impl Findings {
    /// Records `count` cyclic components, explaining as many of `chains` as
    /// the per-pattern limit still allows.
    fn add_cycles(
        &mut self,
        pattern: Pattern,
        count: usize,
        chains: Vec<Chain>,
        view: Option<u32>,
        limit: usize,
    ) {
        let shown = self.violations.iter().filter(|v| v.pattern == pattern).count();
        for chain in chains.into_iter().take(limit.saturating_sub(shown)) {
            self.violations.push(Violation {
                pattern,
                read: None,
                write: None,
                chains: vec![chain],
                failed_write: None,
                view,
            });
        }
        *self.counts.entry(pattern).or_insert(0) += count;
    }
}

/// Picks the candidate from the read's own session when there is one (the
/// most direct story), else the first.
fn prefer_own(g: &Graph<'_>, r: u32, candidates: impl Iterator<Item = u32>) -> Option<u32> {
    let own = g.kv.events[r as usize].session;
    let mut first = None;
    for c in candidates {
        if g.kv.events[c as usize].session == own {
            return Some(c);
        }
        first.get_or_insert(c);
    }
    first
}

/// CyclicCF: adds, for every read of a written value, a conflict edge from
/// the latest write of the key in each session of its past to the write it
/// read, then looks for a cycle.
fn convergent(g: &Graph<'_>, co: &Clocks, opts: &Search<'_>, f: &mut Findings) {
    let mut cf = Extra::default();
    for r in 0..g.len() as u32 {
        let w = g.rf_src[r as usize];
        if w == NONE {
            continue;
        }
        let key = g.kv.events[r as usize].key;
        for c in g.last_writes_in_past(co, key, r) {
            if c != w {
                cf.add(c, w, Step::Conflict { witness: r });
            }
        }
    }
    f.extra_edges = cf.len();
    if expired(opts) {
        f.exhausted =
            Some("the time budget ran out before the conflict order was checked for cycles".into());
        return;
    }
    let mut clocks = Clocks::new(g.len(), g.width);
    let all: Vec<u32> = (0..g.len() as u32).collect();
    let leftover = g.clocks(&cf, &all, &|_| true, &mut clocks, None);
    if !leftover.is_empty() {
        let (count, chains) = g.cycles(&cf, &leftover, opts.limit);
        f.add_cycles(Pattern::CyclicCF, count, chains, None, opts.limit);
    }
}

/// WriteHBInitRead and CyclicHB: for each session, saturate its
/// happens-before over the causal past of its last event.
///
/// Sessions are independent, so they run in parallel, in at most a few
/// groups: each group needs its own n × S clocks.
fn memory(g: &Graph<'_>, co: &Clocks, opts: &Search<'_>, f: &mut Findings) {
    use rayon::prelude::*;
    let sessions: Vec<usize> = (0..g.kv.sessions.len()).collect();
    let groups = rayon::current_num_threads().clamp(1, MAX_PARALLEL_VIEWS);
    let chunk = sessions.len().div_ceil(groups).max(1);
    let results: Vec<Vec<(usize, Findings)>> = sessions
        .par_chunks(chunk)
        .map(|chunk| {
            let mut hb = Clocks::new(g.len(), g.width);
            chunk.iter().map(|&s| (s, memory_view(g, co, opts, s, &mut hb))).collect()
        })
        .collect();
    // Merge in session order, so the verdict does not depend on scheduling.
    for (s, found) in results.into_iter().flatten() {
        f.rounds += found.rounds;
        f.extra_edges += found.extra_edges;
        if f.exhausted.is_none()
            && let Some(why) = found.exhausted
        {
            f.exhausted = Some(format!("{why} (process {})", g.kv.sessions[s].process));
        }
        for v in found.violations {
            let shown = f.violations.iter().filter(|x| x.pattern == v.pattern).count();
            if shown < opts.limit {
                f.violations.push(v);
            }
        }
        for (p, n) in found.counts {
            *f.counts.entry(p).or_insert(0) += n;
        }
    }
}

/// How many sessions' happens-before are saturated at once at most.
const MAX_PARALLEL_VIEWS: usize = 4;

/// Saturates session `s`'s happens-before. Round one reads the causal-order
/// clocks as they are (happens-before starts as causal order); each later
/// round recomputes only the events downstream of the edges the previous
/// round added, everything else keeping its clock.
fn memory_view(
    g: &Graph<'_>,
    co: &Clocks,
    opts: &Search<'_>,
    s: usize,
    hb: &mut Clocks,
) -> Findings {
    let kv = g.kv;
    let mut f = Findings::default();
    let session = &kv.sessions[s];
    let Some(&last) = session.events.last() else { return f };
    let horizon = co.of(last).to_vec();
    let member = |u: u32| horizon[g.session(u)] > g.seq(u);
    hb.invalidate_all();
    let reads: Vec<u32> = session
        .events
        .iter()
        .copied()
        .filter(|&e| kv.events[e as usize].access == Access::Read)
        .collect();
    let mut extra = Extra::default();
    let mut targets: Vec<u32> = Vec::new();
    loop {
        if expired(opts) {
            f.exhausted = Some("the time budget ran out while saturating happens-before".into());
            break;
        }
        f.rounds += 1;
        if !targets.is_empty() {
            let affected = g.downstream(&extra, &targets, &member, hb);
            let leftover = g.clocks(&extra, &affected, &member, hb, Some(co));
            if !leftover.is_empty() {
                let (count, chains) = g.cycles(&extra, &leftover, opts.limit);
                f.add_cycles(Pattern::CyclicHB, count, chains, Some(s as u32), opts.limit);
                break;
            }
        }
        let clocks = &Layered { top: hb, base: co };
        targets.clear();
        let mut init_violation = false;
        for &r in &reads {
            let e = &kv.events[r as usize];
            if e.value == *opts.init {
                if let Some(w) = prefer_own(g, r, g.last_writes_in_past(clocks, e.key, r)) {
                    let chain = g.path(clocks, &extra, w, r);
                    f.push(
                        Violation {
                            pattern: Pattern::WriteHBInitRead,
                            read: Some(r),
                            write: Some(w),
                            chains: vec![chain],
                            failed_write: None,
                            view: Some(s as u32),
                        },
                        opts.limit,
                    );
                    init_violation = true;
                }
                continue;
            }
            let w = g.rf_src[r as usize];
            if w == NONE {
                continue;
            }
            let found: Vec<u32> =
                g.last_writes_in_past(clocks, e.key, r).filter(|&c| c != w).collect();
            for c in found {
                if !g.in_past(clocks, c, w)
                    && extra.add(c, w, Step::HappensBefore { witness: r, view: s as u32 })
                {
                    targets.push(w);
                }
            }
        }
        if init_violation || targets.is_empty() {
            break;
        }
    }
    f.extra_edges = extra.len();
    f
}

fn expired(opts: &Search<'_>) -> bool {
    opts.deadline.is_some_and(|d| Instant::now() >= d)
}
