//! Deciding a register partition without search when every written value is
//! unique: the polynomial case of register linearizability (Gibbons and
//! Korach's "reads-from known" registers, with compare-and-set).
//!
//! When no two operations write the same value (and none writes the initial
//! value), every read and every compare-and-set has exactly one write that
//! can explain it. Call a *run* a plain write (or the initial value)
//! followed by the compare-and-sets that continue from it: `write a`, then
//! `cas a→b`, `cas b→c`, ... Every linearization holds each run in one
//! unbroken stretch: nothing but a plain write can end it, and the values
//! of one run are never written again. Inside a run the order is fixed up to
//! the order of reads of the same value: the write, the reads of its value,
//! the compare-and-set to the next value, the reads of that, and so on.
//!
//! So the question becomes one of ordering runs. With `R` the earliest
//! return of a run's ops and `C` the latest invocation, a run placed after
//! runs that reach up to time `s` fits exactly when `s ≤ R` (and its own
//! levels fit, see `internal`), and then reaches up to `max(s, C)`. Runs can
//! therefore be ordered exactly when no run that must come first reaches
//! past the earliest return of one after it; sorting by `min(R, C)` (the
//! initial value's run first) finds such an order whenever one exists, and
//! otherwise the first run it cannot place names two runs that neither
//! order can hold. That check is O(n log n) and exact both ways.
//!
//! Crashed ops: a crashed write whose value some op that must have happened
//! reads must itself have happened (it is the only writer), and the rest can
//! be left out without changing any result, so the required ones are found
//! as a fixpoint from the completed ops and the others dropped. When the
//! preconditions fail (a value written twice, or the initial value written)
//! `decide` declines and the search runs.

use super::register::RegOp;

/// How the fast path ended for one partition.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A linearization exists.
    Valid,
    /// No linearization exists, for this reason.
    Invalid(Violation),
}

/// Why no linearization exists. Ops are entry ids, values interned ids.
#[derive(Debug)]
pub(crate) enum Violation {
    /// `op` needs the register to hold `value`, which nothing writes and
    /// the register did not start with.
    NoWriter { op: u32, value: u32 },
    /// Two compare-and-sets from the same value both happened (completed, or
    /// crashed and read from); only one of them can find it there.
    TwoCas { first: u32, second: u32, value: u32 },
    /// These compare-and-sets each need the value the one before writes, in
    /// a cycle that no plain write enters.
    Cycle { ops: Vec<u32> },
    /// Inside one run, `late` returned before `early` was invoked, though
    /// the run needs `early` first.
    /// `blame_late` when `early` writes (so `late` saw a value before it
    /// could exist); otherwise `early` is a read that came too late.
    Inside { early: u32, late: u32, head: Option<u32>, blame_late: bool },
    /// Two runs neither order can hold: `stuck` (in the first run, begun by
    /// `head_j`) was invoked after `a_i` (in the second, begun by `head_i`)
    /// returned, while `a_j` (in the first) returned before `b_i` (in the
    /// second) was invoked. `head_j` is `None` for the initial value's run,
    /// which must come first.
    Runs { stuck: u32, a_i: u32, a_j: u32, b_i: u32, head_i: Option<u32>, head_j: Option<u32> },
}

impl Violation {
    /// The op to blame, and every op the reason names.
    pub(crate) fn ops(&self) -> (u32, Vec<u32>) {
        let (stuck, mut all) = match self {
            Violation::NoWriter { op, .. } => (*op, vec![*op]),
            Violation::TwoCas { first, second, .. } => (*second, vec![*second, *first]),
            Violation::Cycle { ops } => (ops[0], ops.clone()),
            Violation::Inside { early, late, head, blame_late } => {
                let blame = if *blame_late { *late } else { *early };
                (blame, [Some(*early), Some(*late), *head].into_iter().flatten().collect())
            }
            Violation::Runs { stuck, a_i, a_j, b_i, head_i, head_j } => (
                *stuck,
                [Some(*stuck), Some(*a_i), Some(*a_j), Some(*b_i), *head_i, *head_j]
                    .into_iter()
                    .flatten()
                    .collect(),
            ),
        };
        let mut seen = rustc_hash::FxHashSet::default();
        all.retain(|o| seen.insert(*o));
        (stuck, all)
    }

    /// The reason in words, naming ops with `name` and values with `show`.
    pub(crate) fn reason(
        &self,
        ops: &[RegOp],
        name: &dyn Fn(u32) -> String,
        show: &dyn Fn(u32) -> String,
        init: u32,
    ) -> String {
        let once = "every value this partition writes is written by one operation only, and \
                    none writes the initial value";
        let run = |head: Option<u32>| match head {
            Some(h) => format!("the run of values begun by {}", name(h)),
            None => format!("the run of the initial value {}", show(init)),
        };
        match self {
            Violation::NoWriter { value, .. } => format!(
                "it needs the register to hold {}, which no operation writes and the register \
                 did not start with",
                show(*value)
            ),
            Violation::TwoCas { first, value, .. } => format!(
                "{} also compares-and-sets from {} and happened (it completed, or a value only \
                 it writes was read); {once}, so once one of them has replaced {} the other can \
                 never find it again",
                name(*first),
                show(*value),
                show(*value)
            ),
            Violation::Cycle { ops: cycle } => {
                let steps: Vec<String> = cycle.iter().map(|o| name(*o)).collect();
                format!(
                    "{once}; these compare-and-sets each need the value only the next one \
                     writes, in a cycle no write enters, so none of them can go first: {}",
                    steps.join("; ")
                )
            }
            Violation::Inside { early, late, head, blame_late } => {
                if *blame_late {
                    format!(
                        "it returned before {} was invoked, yet in {} it must come after that \
                         operation; {once}",
                        name(*early),
                        run(*head)
                    )
                } else {
                    let x = match ops[*early as usize] {
                        RegOp::Read(v) | RegOp::Cas(v, _) | RegOp::Write(v) => show(v),
                    };
                    format!(
                        "it needs the register to hold {x}, but it was invoked after {} had \
                         returned, which in {} must come after every operation that needs \
                         {x}; {once}",
                        name(*late),
                        run(*head)
                    )
                }
            }
            Violation::Runs { a_i, a_j, b_i, head_i, head_j, .. } => {
                let first = match head_j {
                    None => format!(
                        "the register holds its initial value {} before anything is written",
                        show(init)
                    ),
                    Some(_) => format!(
                        "{} returned before {} was invoked, so {} comes before {}",
                        name(*a_j),
                        name(*b_i),
                        run(*head_j),
                        run(*head_i)
                    ),
                };
                format!(
                    "{once}, so the register holds each run of values (a write and the \
                     compare-and-sets that continue from it) in one unbroken stretch; {first}; \
                     yet this operation, of the first run, was invoked after {}, of the \
                     second, had returned",
                    name(*a_i)
                )
            }
        }
    }
}

/// The value `op` needs the register to hold, if any.
fn needs(op: &RegOp) -> Option<u32> {
    match *op {
        RegOp::Read(v) | RegOp::Cas(v, _) => Some(v),
        RegOp::Write(_) => None,
    }
}

/// The value `op` writes, if any.
fn writes(op: &RegOp) -> Option<u32> {
    match *op {
        RegOp::Write(v) | RegOp::Cas(_, v) => Some(v),
        RegOp::Read(_) => None,
    }
}

/// One run, its ops in the order the run needs them.
struct Run {
    /// The plain write that begins it; `None` for the initial value's run.
    head: Option<u32>,
    /// Where its ops lie in [`Walked`]: in run order (the write, the reads
    /// of its value, the compare-and-set to the next value, ...).
    ops: std::ops::Range<usize>,
    /// The earliest return among its ops, and that op.
    r: (i64, u32),
    /// The latest invocation among its ops, and that op.
    c: (i64, u32),
}

/// The ops of every run, one run after another, and the level of each op:
/// ops of one level (reads of one value) may go in any order among
/// themselves. One pair of vectors for all runs, where a pair for each run
/// was two allocations per written value.
#[derive(Default)]
struct Walked {
    ops: Vec<u32>,
    levels: Vec<u32>,
}

/// Per value (an interned id, dense from 0), a list of ops, all held in one
/// vector: the lists of value `v` are `items[start[v]..start[v + 1]]`.
#[derive(Debug)]
pub(crate) struct Groups {
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Groups {
    /// Groups `pairs` (value, item) by value, each group in the pairs'
    /// order; every value is below `values`.
    pub(crate) fn new(values: usize, pairs: &[(u32, u32)]) -> Groups {
        let mut start = vec![0u32; values + 1];
        for &(v, _) in pairs {
            start[v as usize + 1] += 1;
        }
        for v in 0..values {
            start[v + 1] += start[v];
        }
        let mut next = start.clone();
        let mut items = vec![0u32; pairs.len()];
        for &(v, item) in pairs {
            let at = &mut next[v as usize];
            items[*at as usize] = item;
            *at += 1;
        }
        Groups { start, items }
    }

    /// The list of value `v` (empty when it has none).
    pub(crate) fn of(&self, v: u32) -> &[u32] {
        match (self.start.get(v as usize), self.start.get(v as usize + 1)) {
            (Some(&a), Some(&b)) => &self.items[a as usize..b as usize],
            _ => &[],
        }
    }

    /// Each list in turn, mutably.
    pub(crate) fn each_mut(&mut self) -> impl Iterator<Item = &mut [u32]> {
        let mut rest: &mut [u32] = &mut self.items;
        self.start.windows(2).map(move |w| {
            let (list, tail) = std::mem::take(&mut rest).split_at_mut((w[1] - w[0]) as usize);
            rest = tail;
            list
        })
    }
}

/// No op: the empty slot of a per-value table.
const NONE: u32 = u32::MAX;

/// Where the ops of a partition begin and end, in history positions; a
/// crashed op never ends.
struct Times<'a> {
    calls: &'a [u32],
    rets: &'a [u32],
}

impl Times<'_> {
    fn call(&self, o: u32) -> i64 {
        i64::from(self.calls[o as usize])
    }
    fn ret(&self, o: u32) -> i64 {
        let r = self.rets[o as usize];
        if r == u32::MAX { i64::MAX } else { i64::from(r) }
    }
}

/// Decides the partition `ops` (invoked at `calls`, completed at `rets`,
/// `u32::MAX` for crashed ops) of a register starting at `init`, or `None`
/// when some value is written twice (or the initial value is written), which
/// leaves the search to decide.
pub(crate) fn decide(ops: &[RegOp], calls: &[u32], rets: &[u32], init: u32) -> Option<Outcome> {
    let n = ops.len();
    let t = Times { calls, rets };
    // Values are interned ids, numbered densely from 0 for each partition
    // (`ModelKind::fork`), so every table per value is a vector. With hash
    // maps here, growing as they filled, deciding the partitions of a
    // 100,000-op register history took 3.3 ms against 2.6 (both cores),
    // much of it the kernel clearing fresh pages for them.
    let ids = ops.iter().flat_map(|op| [needs(op), writes(op)]).flatten();
    let values = ids.chain([init]).max().unwrap_or(0);
    if values >= super::UNOBSERVED {
        // Not interned ids (`settle` already ran): the search decides.
        return None;
    }
    let values = values as usize + 1;
    let mut producer = vec![NONE; values];
    for (i, op) in ops.iter().enumerate() {
        if let Some(v) = writes(op) {
            if v == init || producer[v as usize] != NONE {
                return None;
            }
            producer[v as usize] = i as u32;
        }
    }
    let required = required(ops, rets, &producer);
    let found = (|| {
        let (readers, cas_from) = readers(ops, &required, &producer, init, &t)?;
        // Walk every run from its head: the initial value, then each
        // required plain write.
        let mut visited = vec![false; n];
        let heads: Vec<Option<u32>> = std::iter::once(None)
            .chain(
                (0..n as u32)
                    .filter(|&i| required[i as usize] && matches!(ops[i as usize], RegOp::Write(_)))
                    .map(Some),
            )
            .collect();
        let mut runs: Vec<Run> = Vec::with_capacity(heads.len());
        let mut walked = Walked::default();
        for head in heads {
            let run = walk(head, init, ops, &readers, &cas_from, &mut walked);
            for &o in &walked.ops[run.ops.clone()] {
                visited[o as usize] = true;
            }
            if !run.ops.is_empty() {
                runs.push(inside(run, &walked, ops, &t)?);
            }
        }
        // A required op no run reached needs a value whose writers form a
        // cycle of compare-and-sets (every value it needs has a writer,
        // which is required too, and a run reaches every value a plain
        // write begins).
        if let Some(o) = (0..n).find(|&i| required[i] && !visited[i]) {
            return Err(Violation::Cycle { ops: cycle(o as u32, ops, &producer) });
        }
        order(&mut runs, &walked, &t)
    })();
    Some(match found {
        Ok(()) => Outcome::Valid,
        Err(v) => Outcome::Invalid(v),
    })
}

/// The op a per-value table (`producer`, `cas_from`) holds for value `v`,
/// if any.
fn held(table: &[u32], v: u32) -> Option<u32> {
    table.get(v as usize).copied().filter(|&o| o != NONE)
}

/// The ops that must have happened: the completed ones and, as a fixpoint,
/// the only writer of a value that a required op needs. The rest (crashed
/// ops nothing needs) can be left out (see the module comment).
fn required(ops: &[RegOp], rets: &[u32], producer: &[u32]) -> Vec<bool> {
    let mut required: Vec<bool> = rets.iter().map(|&r| r != u32::MAX).collect();
    let mut stack: Vec<u32> = (0..ops.len() as u32).filter(|&i| required[i as usize]).collect();
    while let Some(o) = stack.pop() {
        if let Some(p) = needs(&ops[o as usize]).and_then(|v| held(producer, v))
            && !required[p as usize]
        {
            required[p as usize] = true;
            stack.push(p);
        }
    }
    required
}

/// Per value, the required reads of it, and the one required
/// compare-and-set from it (`NONE` for none); a violation when a value
/// nothing writes is needed, or two compare-and-sets from one value both
/// happened.
fn readers(
    ops: &[RegOp],
    required: &[bool],
    producer: &[u32],
    init: u32,
    t: &Times<'_>,
) -> Result<(Groups, Vec<u32>), Violation> {
    let mut reads: Vec<(u32, u32)> = Vec::new();
    let mut cas_from = vec![NONE; producer.len()];
    for (i, op) in ops.iter().enumerate() {
        let i = i as u32;
        if !required[i as usize] {
            continue;
        }
        let Some(v) = needs(op) else { continue };
        if v != init && held(producer, v).is_none() {
            return Err(Violation::NoWriter { op: i, value: v });
        }
        match op {
            RegOp::Read(_) => reads.push((v, i)),
            RegOp::Cas(..) => {
                if let Some(first) = held(&cas_from, v) {
                    // Blame the one invoked later.
                    let (first, second) =
                        if t.call(first) <= t.call(i) { (first, i) } else { (i, first) };
                    return Err(Violation::TwoCas { first, second, value: v });
                }
                cas_from[v as usize] = i;
            }
            RegOp::Write(_) => {}
        }
    }
    Ok((Groups::new(producer.len(), &reads), cas_from))
}

/// The run begun by `head` (the initial value's when `None`), its ops
/// added to `walked` in run order with their levels.
fn walk(
    head: Option<u32>,
    init: u32,
    ops: &[RegOp],
    readers: &Groups,
    cas_from: &[u32],
    walked: &mut Walked,
) -> Run {
    let begin = walked.ops.len();
    let mut level = 0u32;
    let mut value = match head {
        Some(h) => {
            walked.ops.push(h);
            walked.levels.push(level);
            level += 1;
            writes(&ops[h as usize]).unwrap_or(init)
        }
        None => init,
    };
    loop {
        let rs = readers.of(value);
        if !rs.is_empty() {
            walked.ops.extend_from_slice(rs);
            walked.levels.extend(std::iter::repeat_n(level, rs.len()));
            level += 1;
        }
        let Some(c) = held(cas_from, value) else { break };
        walked.ops.push(c);
        walked.levels.push(level);
        level += 1;
        value = writes(&ops[c as usize]).unwrap_or(init);
    }
    Run { head, ops: begin..walked.ops.len(), r: (i64::MAX, 0), c: (-1, 0) }
}

/// Checks that the run's ops fit in its order, and notes its earliest
/// return and latest invocation. Each op must be able to follow every op
/// of the levels before it: the greedy earliest placement fits exactly when
/// no op returned before an op of an earlier level was invoked.
fn inside(mut run: Run, walked: &Walked, ops: &[RegOp], t: &Times<'_>) -> Result<Run, Violation> {
    let mut before: (i64, u32) = (-1, u32::MAX);
    let mut this_level: (i64, u32) = (-1, u32::MAX);
    let mut current = u32::MAX;
    let span = run.ops.clone();
    for (&o, &l) in walked.ops[span.clone()].iter().zip(&walked.levels[span]) {
        if l != current {
            if this_level.0 > before.0 {
                before = this_level;
            }
            this_level = (-1, u32::MAX);
            current = l;
        }
        if t.ret(o) < before.0 {
            // The late op is to blame when the early one writes (it saw a
            // value before that value could exist); when the early op is a
            // read, that read is the stale one.
            let blame_late = writes(&ops[before.1 as usize]).is_some();
            return Err(Violation::Inside { early: before.1, late: o, head: run.head, blame_late });
        }
        if t.call(o) > this_level.0 {
            this_level = (t.call(o), o);
        }
        if t.ret(o) < run.r.0 {
            run.r = (t.ret(o), o);
        }
        if t.call(o) > run.c.0 {
            run.c = (t.call(o), o);
        }
    }
    Ok(run)
}

/// The compare-and-sets, from the one behind `o`, each needing the value
/// the next writes, until one repeats.
fn cycle(o: u32, ops: &[RegOp], producer: &[u32]) -> Vec<u32> {
    let mut o = o;
    if let RegOp::Read(v) = ops[o as usize] {
        o = producer[v as usize];
    }
    let mut cycle = vec![o];
    while let Some(p) = needs(&ops[o as usize]).and_then(|v| held(producer, v)) {
        if cycle.contains(&p) {
            break;
        }
        cycle.push(p);
        o = p;
    }
    cycle
}

/// Orders the runs: the initial value's first, then by min(R, C). When a
/// run's earliest return comes before the latest invocation of a run placed
/// earlier, the two cannot be ordered (see the module comment).
fn order(runs: &mut [Run], walked: &Walked, t: &Times<'_>) -> Result<(), Violation> {
    let init_run = runs.first().filter(|r| r.head.is_none()).is_some();
    let skip = usize::from(init_run);
    runs[skip..].sort_by_key(|r| r.r.0.min(r.c.0));
    let mut reach: (i64, usize) = (-1, usize::MAX);
    for (k, run) in runs.iter().enumerate() {
        if reach.1 != usize::MAX && reach.0 > run.r.0 {
            let j = &runs[reach.1];
            // The op of the earlier run invoked after this run's earliest
            // return: the earliest such op in run order (a stale read).
            let stuck = walked.ops[j.ops.clone()]
                .iter()
                .copied()
                .find(|&o| t.call(o) > run.r.0)
                .unwrap_or(j.c.1);
            return Err(Violation::Runs {
                stuck,
                a_i: run.r.1,
                a_j: j.r.1,
                b_i: run.c.1,
                head_i: run.head,
                head_j: j.head,
            });
        }
        if run.c.0 > reach.0 {
            reach = (run.c.0, k);
        }
    }
    Ok(())
}
