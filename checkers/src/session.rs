//! Session guarantees (Terry et al., "Session Guarantees for Weakly
//! Consistent Replicated Data", 1994): read-your-writes, monotonic reads,
//! monotonic writes and writes-follow-reads, each reported separately with
//! its witnesses, for list-append and register histories.
//!
//! A session is one process's operations in order; an operation (or a
//! transaction, as one unit) is served by some replica, which holds some set
//! of writes. A guarantee names writes that set must contain:
//!
//! - **read-your-writes**: the session's own earlier writes;
//! - **monotonic reads**: the writes its earlier reads observed;
//! - **monotonic writes**: once a session has observed a write, every write
//!   its author made before it (and in that order);
//! - **writes-follow-reads**: once a session has observed a write, every write
//!   its author had read before making it (and ordered before it).
//!
//! A list-append read shows exactly which appends its replica held (the
//! elements of the list), so every missing element is evidence. A register
//! read shows only the winning write, so only what is certainly older counts:
//! the initial value, a value the session itself saw replaced, or a write its
//! author replaced. When one missing write breaks several guarantees, it is
//! reported once, under the first of the order above (the session's own
//! history is the most direct evidence).

use std::collections::BTreeMap;
use std::time::Instant;

use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::json;

use crate::budget::{Budget, Meter};
use crate::error::CheckError;
use crate::history::{History, OpType, Process};
use crate::html::escape;
use crate::kv::{is_read_f, is_write_f, split_key};
use crate::spec::CheckSpec;
use crate::txn::{MicroOp, parse_txn};
use crate::value::Value;
use crate::verdict::{Anomaly, Checker, HtmlPage, Validity, Verdict};

/// One session guarantee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Guarantee {
    /// Reads see the session's own earlier writes.
    ReadYourWrites,
    /// Reads see what the session's earlier reads saw.
    MonotonicReads,
    /// A write is visible only with (and after) its author's earlier writes.
    MonotonicWrites,
    /// A write is visible only with (and after) the writes its author had read.
    WritesFollowReads,
}

impl Guarantee {
    /// All four, in reporting precedence.
    pub const ALL: [Guarantee; 4] = [
        Guarantee::ReadYourWrites,
        Guarantee::MonotonicReads,
        Guarantee::MonotonicWrites,
        Guarantee::WritesFollowReads,
    ];

    /// The name used as checker name and anomaly kind.
    pub fn name(self) -> &'static str {
        match self {
            Guarantee::ReadYourWrites => "read-your-writes",
            Guarantee::MonotonicReads => "monotonic-reads",
            Guarantee::MonotonicWrites => "monotonic-writes",
            Guarantee::WritesFollowReads => "writes-follow-reads",
        }
    }

    /// Parses a name (`read-your-writes`, `ryw`, ...).
    pub fn parse(s: &str) -> Option<Guarantee> {
        match s {
            "read-your-writes" | "ryw" => Some(Guarantee::ReadYourWrites),
            "monotonic-reads" | "mr" => Some(Guarantee::MonotonicReads),
            "monotonic-writes" | "mw" => Some(Guarantee::MonotonicWrites),
            "writes-follow-reads" | "wfr" => Some(Guarantee::WritesFollowReads),
            _ => None,
        }
    }
}

/// How to read the history's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Appends of unique elements to lists; reads return whole lists.
    ListAppend,
    /// Writes of unique values to registers; reads return one value.
    Register,
}

/// The session-guarantees checker (`session`, or one guarantee by name).
#[derive(Clone, Debug)]
pub struct SessionChecker {
    name: String,
    guarantees: Vec<Guarantee>,
    workload: Option<Workload>,
    limit: usize,
    budget: Budget,
}

impl SessionChecker {
    /// A checker for `guarantees`, detecting the workload.
    pub fn new(name: impl Into<String>, guarantees: Vec<Guarantee>) -> SessionChecker {
        SessionChecker {
            name: name.into(),
            guarantees,
            workload: None,
            limit: crate::spec::DEFAULT_MAX_ANOMALIES,
            budget: Budget::default(),
        }
    }

    /// Builds the checker named `spec.checker` (`session` checks all four,
    /// or `--opt guarantees=ryw,mr`; a guarantee's name checks only it),
    /// with `--opt workload=list-append|register` and `--opt max-anomalies=N`.
    pub fn from_spec(spec: &CheckSpec) -> Result<SessionChecker, CheckError> {
        let guarantees = match Guarantee::parse(&spec.checker) {
            Some(g) => vec![g],
            None => match spec.options.get("guarantees") {
                None => Guarantee::ALL.to_vec(),
                Some(list) => list
                    .split(',')
                    .map(|g| {
                        Guarantee::parse(g.trim()).ok_or_else(|| {
                            CheckError::BadOption(format!(
                                "--opt guarantees: unknown guarantee {g:?}; known: read-your-writes, \
                                 monotonic-reads, monotonic-writes, writes-follow-reads"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
        };
        let mut c = SessionChecker::new(spec.checker.clone(), guarantees);
        c.workload = match spec.options.get("workload").map(String::as_str) {
            None => None,
            Some("list-append") => Some(Workload::ListAppend),
            Some("register") => Some(Workload::Register),
            Some(other) => {
                return Err(CheckError::BadOption(format!(
                    "--opt workload must be list-append or register, not {other:?}"
                )));
            }
        };
        c.limit = spec.max_anomalies()?;
        c.budget = spec.budget;
        Ok(c)
    }
}

/// One operation (or transaction) of a session.
struct Unit {
    session: u32,
    seq: u32,
    /// History position of the record that names it.
    pos: usize,
    /// (key, value read): a list or nil for list-append, a value for registers.
    reads: Vec<(u32, Value)>,
    /// (key, element appended or value written).
    writes: Vec<(u32, Value)>,
}

struct Parsed {
    units: Vec<Unit>,
    sessions: Vec<(u64, Vec<u32>)>,
    keys: Vec<Value>,
    workload: Workload,
}

fn parse(history: &History, forced: Option<Workload>) -> Result<Parsed, CheckError> {
    let pairs = history.pairs()?;
    let ops = history.ops();
    let mut units = Vec::new();
    let mut sessions: Vec<(u64, Vec<u32>)> = Vec::new();
    let mut session_ids: FxHashMap<u64, u32> = FxHashMap::default();
    let mut key_ids: FxHashMap<Value, u32> = FxHashMap::default();
    let mut keys = Vec::new();
    let mut saw_append = false;
    for pair in &pairs {
        let inv = &ops[pair.invoke];
        let Process::Client(process) = inv.process else { continue };
        let outcome = history.outcome(pair);
        if outcome == OpType::Fail {
            continue;
        }
        let complete = pair.complete.filter(|&c| c != pair.invoke);
        let pos = complete.unwrap_or(pair.invoke);
        let ok = outcome == OpType::Ok;
        let mut mops: Vec<MicroOp> = Vec::new();
        if inv.f == "txn" {
            let source =
                if ok { complete.map_or(&inv.value, |c| &ops[c].value) } else { &inv.value };
            mops = parse_txn(source).map_err(|e| CheckError::BadOp {
                location: history.locate(pos).field("value"),
                message: format!("the session checker: {e}"),
            })?;
        } else {
            let key = inv.key.as_ref().or(complete.and_then(|c| ops[c].key.as_ref()));
            let raw = if is_read_f(&inv.f) {
                complete.map_or(&inv.value, |c| &ops[c].value)
            } else {
                &inv.value
            };
            let (key, value) = split_key(key, raw);
            if is_read_f(&inv.f) {
                mops.push(MicroOp::Read { key, value });
            } else if is_write_f(&inv.f) {
                mops.push(MicroOp::Write { key, value });
            } else if inv.f == "append" {
                mops.push(MicroOp::Append { key, value });
            } else {
                return Err(CheckError::BadOp {
                    location: history.locate(pos).field("f"),
                    message: format!(
                        "the session checker reads list-append or register histories: op {} has f {:?}, \
                         but f must be read, write, append or txn",
                        inv.index, inv.f
                    ),
                });
            }
        }
        let mut unit_reads = Vec::new();
        let mut unit_writes = Vec::new();
        for m in mops {
            let (key, value, read) = match m {
                MicroOp::Read { key, value } => (key, value, true),
                MicroOp::Write { key, value } => (key, value, false),
                MicroOp::Append { key, value } => {
                    saw_append = true;
                    (key, value, false)
                }
            };
            let k = *key_ids.entry(key.clone()).or_insert_with(|| {
                keys.push(key);
                keys.len() as u32 - 1
            });
            if read {
                // An indeterminate operation's reads are unknown.
                if ok {
                    unit_reads.push((k, value));
                }
            } else {
                unit_writes.push((k, value));
            }
        }
        if unit_reads.is_empty() && unit_writes.is_empty() {
            continue;
        }
        let s = *session_ids.entry(process).or_insert_with(|| {
            sessions.push((process, Vec::new()));
            sessions.len() as u32 - 1
        });
        let list = &mut sessions[s as usize].1;
        units.push(Unit {
            session: s,
            seq: list.len() as u32,
            pos,
            reads: unit_reads,
            writes: unit_writes,
        });
        list.push(units.len() as u32 - 1);
    }
    let workload =
        forced.unwrap_or(if saw_append { Workload::ListAppend } else { Workload::Register });
    Ok(Parsed { units, sessions, keys, workload })
}

/// A violation found, before it is put in words.
struct Found {
    guarantee: Guarantee,
    explanation: String,
    /// Witness ops in causal order, each with what it did and how it follows.
    chain: Vec<(u32, String, Option<&'static str>)>,
}

/// Shared context for putting findings in words.
struct Ctx<'a> {
    history: &'a History,
    p: &'a Parsed,
    meter: &'a Meter,
}

impl Ctx<'_> {
    fn op(&self, unit: u32) -> u64 {
        self.history.ops()[self.p.units[unit as usize].pos].index
    }
    fn process(&self, unit: u32) -> u64 {
        self.p.sessions[self.p.units[unit as usize].session as usize].0
    }
    fn key(&self, k: u32) -> String {
        match &self.p.keys[k as usize] {
            Value::Nil => "the register".into(),
            v => v.to_string(),
        }
    }
    fn who(&self, unit: u32) -> String {
        format!("op {} (process {})", self.op(unit), self.process(unit))
    }
}

/// Positions in each key's version order, from the longest list read.
struct VersionOrder<'a> {
    longest: FxHashMap<u32, (&'a [Value], u32)>,
    pos: FxHashMap<(u32, &'a Value), usize>,
}

impl<'a> VersionOrder<'a> {
    fn new(p: &'a Parsed) -> VersionOrder<'a> {
        let mut longest: FxHashMap<u32, (&[Value], u32)> = FxHashMap::default();
        for (u, unit) in p.units.iter().enumerate() {
            for (k, v) in &unit.reads {
                if let Some(list) = v.as_list() {
                    let e = longest.entry(*k).or_insert((list, u as u32));
                    if list.len() > e.0.len() {
                        *e = (list, u as u32);
                    }
                }
            }
        }
        let mut pos = FxHashMap::default();
        for (k, (list, _)) in &longest {
            for (i, e) in list.iter().enumerate() {
                pos.entry((*k, e)).or_insert(i);
            }
        }
        VersionOrder { longest, pos }
    }

    /// How many leading elements `list` shares with the version order of `k`.
    fn prefix_len(&self, k: u32, list: &[Value]) -> usize {
        let Some((order, _)) = self.longest.get(&k) else { return 0 };
        list.iter().zip(order.iter()).take_while(|(a, b)| a == b).count()
    }
}

/// The best (latest in version order) requirement among entries before a bound.
#[derive(Clone, Copy)]
struct Req<'a> {
    pos: Option<usize>,
    elem: &'a Value,
    unit: u32,
}

/// Per (session, key): entries in session order with a running best.
#[derive(Default)]
struct Track<'a> {
    seqs: Vec<u32>,
    best: Vec<Req<'a>>,
    unpositioned: Vec<(u32, Req<'a>)>,
}

impl<'a> Track<'a> {
    fn push(&mut self, seq: u32, r: Req<'a>) {
        if r.pos.is_none() {
            self.unpositioned.push((seq, r));
            return;
        }
        let best = match self.best.last() {
            Some(b) if b.pos >= r.pos => *b,
            _ => r,
        };
        self.seqs.push(seq);
        self.best.push(best);
    }

    /// The best entry with seq < bound, and the unpositioned ones.
    fn before(&self, bound: u32) -> (Option<Req<'a>>, impl Iterator<Item = Req<'a>> + '_) {
        let i = self.seqs.partition_point(|&s| s < bound);
        let best = (i > 0).then(|| self.best[i - 1]);
        (best, self.unpositioned.iter().filter(move |(s, _)| *s < bound).map(|(_, r)| *r))
    }
}

/// Finds the violations of a list-append history; `Some(reason)` when the
/// budget ran out first.
fn list_append(
    ctx: &Ctx<'_>,
    enabled: &[Guarantee],
    out: &mut Vec<Found>,
) -> Result<Option<String>, CheckError> {
    let p = ctx.p;
    let order = VersionOrder::new(p);
    let mut appended_by: FxHashMap<(u32, &Value), u32> = FxHashMap::default();
    let mut appends: FxHashMap<(u32, u32), Track<'_>> = FxHashMap::default();
    let mut reads: FxHashMap<(u32, u32), Track<'_>> = FxHashMap::default();
    for (u, unit) in p.units.iter().enumerate() {
        for (k, e) in &unit.writes {
            if let Some(&first) = appended_by.get(&(*k, e)) {
                return Err(CheckError::BadOp {
                    location: ctx.history.locate(unit.pos).field("value"),
                    message: format!(
                        "{} is appended to {} twice, here and in op {}; the session checker needs unique \
                         elements per key to tell which append a read observed",
                        e,
                        ctx.key(*k),
                        ctx.op(first)
                    ),
                });
            }
            appended_by.insert((*k, e), u as u32);
            let pos = order.pos.get(&(*k, e)).copied();
            appends
                .entry((unit.session, *k))
                .or_default()
                .push(unit.seq, Req { pos, elem: e, unit: u as u32 });
        }
        for (k, v) in &unit.reads {
            let Some(list) = v.as_list() else { continue };
            if let Some(last) =
                list.iter().rev().find_map(|e| order.pos.get(&(*k, e)).map(|&p| (p, e)))
            {
                reads
                    .entry((unit.session, *k))
                    .or_default()
                    .push(unit.seq, Req { pos: Some(last.0), elem: last.1, unit: u as u32 });
            }
        }
    }
    let on = |g: Guarantee| enabled.contains(&g);
    let mut reported: FxHashSet<(Guarantee, u32, u32, Value)> = FxHashSet::default();
    for (s, (_, units)) in p.sessions.iter().enumerate() {
        let s = s as u32;
        // For each author session: (bound, observing unit): this session has
        // observed a write the author made in its unit `bound`.
        let mut bounds: BTreeMap<u32, (u32, u32)> = BTreeMap::default();
        for &u in units {
            if let Some(reason) = ctx.meter.tick() {
                return Ok(Some(reason));
            }
            let unit = &p.units[u as usize];
            for (k, v) in &unit.reads {
                for e in v.as_list().unwrap_or(&[]) {
                    if let Some(&w) = appended_by.get(&(*k, e)) {
                        let author = p.units[w as usize].session;
                        let seq = p.units[w as usize].seq;
                        if author != s && bounds.get(&author).is_none_or(|b| b.0 < seq) {
                            bounds.insert(author, (seq, u));
                        }
                    }
                }
            }
            for (k, v) in &unit.reads {
                let list = v.as_list().unwrap_or(&[]);
                let prefix = order.prefix_len(*k, list);
                let has = |r: &Req<'_>| match r.pos {
                    Some(pos) if pos < prefix => true,
                    _ => list.contains(r.elem),
                };
                let mut missing_here: Vec<Value> = Vec::new();
                let mut report = |g: Guarantee, r: Req<'_>, why: &dyn Fn(&Req<'_>) -> Found| {
                    if !missing_here.contains(r.elem) {
                        missing_here.push(r.elem.clone());
                        if reported.insert((g, s, *k, r.elem.clone())) {
                            out.push(why(&r));
                        }
                    }
                };
                let read_text = format!("{} read {} = {}", ctx.who(u), ctx.key(*k), v);
                if on(Guarantee::ReadYourWrites)
                    && let Some(t) = appends.get(&(s, *k))
                {
                    let (best, extra) = t.before(unit.seq);
                    for r in best.into_iter().chain(extra).filter(|r| !has(r)) {
                        report(Guarantee::ReadYourWrites, r, &|r| Found {
                            guarantee: Guarantee::ReadYourWrites,
                            explanation: format!(
                                "{read_text}, without {}, which process {} itself appended to {} earlier, in op {}.",
                                r.elem,
                                ctx.process(u),
                                ctx.key(*k),
                                ctx.op(r.unit)
                            ),
                            chain: vec![
                                (r.unit, format!("append {} {}", ctx.key(*k), r.elem), None),
                                (
                                    u,
                                    format!("read {} = {}", ctx.key(*k), v),
                                    Some("later in the session"),
                                ),
                            ],
                        });
                    }
                }
                if on(Guarantee::MonotonicReads)
                    && let Some(t) = reads.get(&(s, *k))
                {
                    let (best, _) = t.before(unit.seq);
                    for r in best.into_iter().filter(|r| !has(r)) {
                        let earlier = &p.units[r.unit as usize];
                        let seen =
                            earlier.reads.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.clone());
                        let seen = seen.unwrap_or_default();
                        report(Guarantee::MonotonicReads, r, &|r| Found {
                            guarantee: Guarantee::MonotonicReads,
                            explanation: format!(
                                "{read_text}, without {}, which the same process had already seen in op {} ({} = {}).",
                                r.elem,
                                ctx.op(r.unit),
                                ctx.key(*k),
                                seen
                            ),
                            chain: vec![
                                (r.unit, format!("read {} = {}", ctx.key(*k), seen), None),
                                (
                                    u,
                                    format!("read {} = {}", ctx.key(*k), v),
                                    Some("later in the session"),
                                ),
                            ],
                        });
                    }
                }
                for (g, tracks) in
                    [(Guarantee::MonotonicWrites, &appends), (Guarantee::WritesFollowReads, &reads)]
                {
                    if !on(g) {
                        continue;
                    }
                    for (&author, &(bound, observed)) in &bounds {
                        let Some(t) = tracks.get(&(author, *k)) else { continue };
                        let (best, extra) = t.before(bound);
                        let extra: Vec<_> = if g == Guarantee::MonotonicWrites {
                            extra.collect()
                        } else {
                            Vec::new()
                        };
                        for r in best.into_iter().chain(extra).filter(|r| !has(r)) {
                            report(g, r, &|r| {
                                list_append_inherited(
                                    ctx, g, r, *k, author, bound, observed, u, &read_text, v,
                                )
                            });
                        }
                    }
                }
            }
        }
    }
    // Write order: a session's later append must follow, in the key's
    // version order, what it appended or read there before.
    let writes_ordered = on(Guarantee::MonotonicWrites) || on(Guarantee::WritesFollowReads);
    for (_, units) in p.sessions.iter().filter(|_| writes_ordered) {
        let mut latest: FxHashMap<u32, (usize, &Value, u32, Guarantee)> = FxHashMap::default();
        for &u in units {
            if let Some(reason) = ctx.meter.tick() {
                return Ok(Some(reason));
            }
            let unit = &p.units[u as usize];
            for (k, e) in &unit.writes {
                let Some(&pos) = order.pos.get(&(*k, e)) else { continue };
                if let Some(&(prior, pe, pu, g)) = latest.get(k)
                    && prior > pos
                    && on(g)
                    && reported.insert((g, unit.session, *k, e.clone()))
                {
                    let (_, witness) = order.longest[k];
                    let (how, did) = if g == Guarantee::MonotonicWrites {
                        ("appended", format!("append {} {pe}", ctx.key(*k)))
                    } else {
                        ("read", format!("read {} with {pe}", ctx.key(*k)))
                    };
                    out.push(Found {
                        guarantee: g,
                        explanation: format!(
                            "process {} {how} {pe} {} {} (op {}) and then appended {e} to it (op {}), but reads of {} \
                             put {e} before {pe} (op {} read {} = {}): replicas applied the later write first.",
                            ctx.process(u),
                            if g == Guarantee::MonotonicWrites { "to" } else { "in" },
                            ctx.key(*k),
                            ctx.op(pu),
                            ctx.op(u),
                            ctx.key(*k),
                            ctx.op(witness),
                            ctx.key(*k),
                            Value::list(order.longest[k].0.iter().cloned())
                        ),
                        chain: vec![
                            (pu, did, None),
                            (u, format!("append {} {e}", ctx.key(*k)), Some("later in the session")),
                            (witness, format!("read {} (… {e} … {pe} …)", ctx.key(*k)), Some("observed out of order by")),
                        ],
                    });
                }
            }
            for (k, v) in &unit.reads {
                if let Some((pos, e)) = v.as_list().and_then(|l| {
                    l.iter().rev().find_map(|e| order.pos.get(&(*k, e)).map(|&p| (p, e)))
                }) && latest.get(k).is_none_or(|l| l.0 < pos)
                {
                    latest.insert(*k, (pos, e, u, Guarantee::WritesFollowReads));
                }
            }
            for (k, e) in &unit.writes {
                if let Some(&pos) = order.pos.get(&(*k, e))
                    && latest.get(k).is_none_or(|l| l.0 < pos)
                {
                    latest.insert(*k, (pos, e, u, Guarantee::MonotonicWrites));
                }
            }
        }
    }
    Ok(None)
}

/// The words for a monotonic-writes or writes-follow-reads violation seen in
/// a list: the reader observed `author`'s write of unit `bound` (in unit
/// `observed`), but its read `u` lacks `r`, which that author had appended
/// (MW) or read (WFR) before.
#[allow(clippy::too_many_arguments)]
fn list_append_inherited(
    ctx: &Ctx<'_>,
    g: Guarantee,
    r: &Req<'_>,
    k: u32,
    author: u32,
    bound: u32,
    observed: u32,
    u: u32,
    read_text: &str,
    v: &Value,
) -> Found {
    let p = ctx.p;
    let author_units = &p.sessions[author as usize].1;
    let later = author_units[bound as usize];
    let (how, did) = match g {
        Guarantee::MonotonicWrites => ("appended", format!("append {} {}", ctx.key(k), r.elem)),
        _ => ("had read", format!("read {} with {}", ctx.key(k), r.elem)),
    };
    let prep = if g == Guarantee::MonotonicWrites { "to" } else { "in" };
    let what = describe_writes(ctx, later);
    let when = if observed == u {
        "in the same read".to_owned()
    } else {
        format!("in op {}", ctx.op(observed))
    };
    Found {
        guarantee: g,
        explanation: format!(
            "{read_text}, without {}. It had seen {what} by process {} (op {}) {when}, and process {} {how} {} \
             {prep} {} before that, in op {}: a replica that shows a write must also show what {}.",
            r.elem,
            ctx.process(later),
            ctx.op(later),
            ctx.process(later),
            r.elem,
            ctx.key(k),
            ctx.op(r.unit),
            match g {
                Guarantee::MonotonicWrites => "its author wrote before it",
                _ => "its author had read before writing it",
            }
        ),
        chain: dedup_chain(vec![
            (r.unit, did, None),
            (later, what.clone(), Some("later in its author's session")),
            (observed, format!("saw {what}"), Some("observed by")),
            (u, format!("read {} = {}", ctx.key(k), v), Some("later in the session")),
        ]),
    }
}

fn describe_writes(ctx: &Ctx<'_>, unit: u32) -> String {
    let u = &ctx.p.units[unit as usize];
    let verb = if ctx.p.workload == Workload::ListAppend { "append" } else { "write" };
    let parts: Vec<String> = u
        .writes
        .iter()
        .map(|(k, v)| {
            if ctx.p.workload == Workload::ListAppend {
                format!("{verb} {} {v}", ctx.key(*k))
            } else {
                format!("{verb} {} = {v}", ctx.key(*k))
            }
        })
        .collect();
    parts.join(", ")
}

/// One session's accesses of one key: (seq in session, unit, value).
type Accesses<'a> = Vec<(u32, u32, &'a Value)>;

/// Per key: each value read with its first reading unit, and the last read.
type SeenValues<'a> = FxHashMap<u32, (FxHashMap<&'a Value, u32>, Option<(u32, &'a Value)>)>;

/// Finds the violations of a register history; `Some(reason)` when the
/// budget ran out first.
fn register(
    ctx: &Ctx<'_>,
    enabled: &[Guarantee],
    out: &mut Vec<Found>,
) -> Result<Option<String>, CheckError> {
    let p = ctx.p;
    // The write of each (key, value): its unit.
    let mut writer: FxHashMap<(u32, &Value), u32> = FxHashMap::default();
    // Per (session, key): its writes and its non-nil reads, as (seq, unit, value).
    let mut writes: FxHashMap<(u32, u32), Accesses<'_>> = FxHashMap::default();
    let mut reads: FxHashMap<(u32, u32), Accesses<'_>> = FxHashMap::default();
    for (u, unit) in p.units.iter().enumerate() {
        for (k, v) in &unit.writes {
            if v.is_nil() {
                return Err(CheckError::BadOp {
                    location: ctx.history.locate(unit.pos).field("value"),
                    message: format!(
                        "this write gives {} the value nil, which the session checker cannot tell from the \
                         initial value; write unique non-nil values",
                        ctx.key(*k)
                    ),
                });
            }
            if let Some(&first) = writer.get(&(*k, v)) {
                return Err(CheckError::BadOp {
                    location: ctx.history.locate(unit.pos).field("value"),
                    message: format!(
                        "{} is given the value {v} twice, here and in op {}; the session checker needs each \
                         value written at most once per key to tell which write a read observed",
                        ctx.key(*k),
                        ctx.op(first)
                    ),
                });
            }
            writer.insert((*k, v), u as u32);
            writes.entry((unit.session, *k)).or_default().push((unit.seq, u as u32, v));
        }
        for (k, v) in &unit.reads {
            if !v.is_nil() {
                reads.entry((unit.session, *k)).or_default().push((unit.seq, u as u32, v));
            }
        }
    }
    let on = |g: Guarantee| enabled.contains(&g);
    let mut reported: FxHashSet<(Guarantee, u32, u32, u32)> = FxHashSet::default();
    for (s, (_, units)) in p.sessions.iter().enumerate() {
        let s = s as u32;
        let mut bounds: BTreeMap<u32, (u32, u32)> = BTreeMap::default();
        // Per key: values read so far with their first read unit, and the last read.
        let mut seen: SeenValues<'_> = FxHashMap::default();
        for &u in units {
            if let Some(reason) = ctx.meter.tick() {
                return Ok(Some(reason));
            }
            let unit = &p.units[u as usize];
            for (k, v) in &unit.reads {
                if let Some(&w) = writer.get(&(*k, v)) {
                    let (author, seq) = (p.units[w as usize].session, p.units[w as usize].seq);
                    if author != s && bounds.get(&author).is_none_or(|b| b.0 < seq) {
                        bounds.insert(author, (seq, u));
                    }
                }
            }
            for (k, x) in &unit.reads {
                let key = ctx.key(*k);
                let read_text = format!("{} read {key} = {x}", ctx.who(u));
                let origin = writer.get(&(*k, x)).copied();
                let state = seen.get(k);
                let last_read = state.and_then(|s| s.1);
                let mut flagged = false;
                let mut push = |g: Guarantee, witness: u32, f: Found| {
                    if !flagged {
                        flagged = true;
                        if reported.insert((g, s, *k, witness)) {
                            out.push(f);
                        }
                    }
                };
                // read-your-writes: nil, or an own write this session replaced.
                if on(Guarantee::ReadYourWrites)
                    && let Some((_, latest, lv)) = before(writes.get(&(s, *k)), unit.seq, false)
                    && lv != x
                    && (x.is_nil()
                        || origin.is_some_and(|o| p.units[o as usize].session == s && o < latest))
                {
                    let older = match origin {
                        Some(o) => format!(
                            ", its own older write (op {}), which it had since replaced",
                            ctx.op(o)
                        ),
                        None => ", the initial value".to_owned(),
                    };
                    push(
                        Guarantee::ReadYourWrites,
                        latest,
                        Found {
                            guarantee: Guarantee::ReadYourWrites,
                            explanation: format!(
                                "{read_text}{older}, after process {} wrote {key} = {lv} in op {}.",
                                ctx.process(u),
                                ctx.op(latest)
                            ),
                            chain: vec![
                                (latest, format!("write {key} = {lv}"), None),
                                (u, format!("read {key} = {x}"), Some("later in the session")),
                            ],
                        },
                    );
                }
                // monotonic reads: nil after a value, or back to a value read before another.
                if on(Guarantee::MonotonicReads)
                    && let Some((lu, lv)) = last_read
                    && lv != x
                {
                    let back = state.and_then(|s| s.0.get(x)).copied().filter(|&a| a < lu);
                    if x.is_nil() || back.is_some() {
                        let (explanation, mut chain) = match back {
                            Some(a) => (
                                format!(
                                    "{read_text} again, after reading {key} = {x} (op {}) and then {key} = {lv} \
                                     (op {}): the reads went back to an older value.",
                                    ctx.op(a),
                                    ctx.op(lu)
                                ),
                                vec![(a, format!("read {key} = {x}"), None)],
                            ),
                            None => (
                                format!(
                                    "{read_text}, the initial value, after reading {key} = {lv} in op {}.",
                                    ctx.op(lu)
                                ),
                                Vec::new(),
                            ),
                        };
                        chain.push((
                            lu,
                            format!("read {key} = {lv}"),
                            chain.first().map(|_| "later in the session"),
                        ));
                        chain.push((u, format!("read {key} = {x}"), Some("later in the session")));
                        push(
                            Guarantee::MonotonicReads,
                            lu,
                            Found { guarantee: Guarantee::MonotonicReads, explanation, chain },
                        );
                    }
                }
                for (&author, &(bound, observed)) in &bounds {
                    let later = p.sessions[author as usize].1[bound as usize];
                    let what = describe_writes(ctx, later);
                    let when = if observed == u {
                        "in the same operation".to_owned()
                    } else {
                        format!("in op {}", ctx.op(observed))
                    };
                    // monotonic writes: the author's last write of this key
                    // before the observed one must be visible (or superseded).
                    if on(Guarantee::MonotonicWrites)
                        && let Some((_, a, av)) = before(writes.get(&(author, *k)), bound, true)
                        && av != x
                        && (x.is_nil()
                            || origin
                                .is_some_and(|o| p.units[o as usize].session == author && o < a))
                    {
                        let older = match origin {
                            Some(o) => format!(
                                ", a write process {} had replaced (op {})",
                                ctx.process(later),
                                ctx.op(o)
                            ),
                            None => ", the initial value".to_owned(),
                        };
                        push(
                            Guarantee::MonotonicWrites,
                            a,
                            Found {
                                guarantee: Guarantee::MonotonicWrites,
                                explanation: format!(
                                    "{read_text}{older}. It had seen {what} by process {} (op {}) {when}, and \
                                     process {} wrote {key} = {av} before that, in op {}: a replica that shows a \
                                     write must also show the writes its author made before it.",
                                    ctx.process(later),
                                    ctx.op(later),
                                    ctx.process(later),
                                    ctx.op(a)
                                ),
                                chain: dedup_chain(vec![
                                    (a, format!("write {key} = {av}"), None),
                                    (later, what.clone(), Some("later in its author's session")),
                                    (observed, format!("saw {what}"), Some("observed by")),
                                    (u, format!("read {key} = {x}"), Some("later in the session")),
                                ]),
                            },
                        );
                    }
                    // writes-follow-reads: nil where the author had read a
                    // value, or a value the author read and then overwrote.
                    if on(Guarantee::WritesFollowReads) {
                        let author_read = before(reads.get(&(author, *k)), bound, false);
                        let replaced = origin.and_then(|_| {
                            let r = reads
                                .get(&(author, *k))?
                                .iter()
                                .find(|e| e.2 == x && e.0 < bound)?;
                            let w = writes
                                .get(&(author, *k))?
                                .iter()
                                .find(|e| e.0 > r.0 && e.0 <= bound)?;
                            Some((r.1, w.1, w.2))
                        });
                        let hit = match (x.is_nil(), author_read, replaced) {
                            (true, Some((_, ru, rv)), _) => {
                                Some((ru, format!("read {key} = {rv}"), None))
                            }
                            (false, _, Some((ru, wu, wv))) => {
                                Some((ru, format!("read {key} = {x}"), Some((wu, wv))))
                            }
                            _ => None,
                        };
                        if let Some((ru, did, overwrote)) = hit {
                            let tail = match overwrote {
                                Some((wu, wv)) => format!(
                                    ", and then replaced it with {key} = {wv} (op {}): {x} must come before that write everywhere",
                                    ctx.op(wu)
                                ),
                                None => String::new(),
                            };
                            push(
                                Guarantee::WritesFollowReads,
                                ru,
                                Found {
                                    guarantee: Guarantee::WritesFollowReads,
                                    explanation: format!(
                                        "{read_text}. It had seen {what} by process {} (op {}) {when}, and before \
                                         writing that, process {} had {did} (op {}){tail}. A replica that shows a \
                                         write must also show the writes its author had read.",
                                        ctx.process(later),
                                        ctx.op(later),
                                        ctx.process(later),
                                        ctx.op(ru)
                                    ),
                                    chain: dedup_chain(vec![
                                        (ru, did.clone(), None),
                                        (
                                            later,
                                            what.clone(),
                                            Some("later in its author's session"),
                                        ),
                                        (observed, format!("saw {what}"), Some("observed by")),
                                        (
                                            u,
                                            format!("read {key} = {x}"),
                                            Some("later in the session"),
                                        ),
                                    ]),
                                },
                            );
                        }
                    }
                }
            }
            for (k, x) in &unit.reads {
                let entry = seen.entry(*k).or_default();
                if !x.is_nil() {
                    entry.0.entry(x).or_insert(u);
                    entry.1 = Some((u, x));
                } else if entry.1.is_none() {
                    entry.1 = Some((u, x));
                }
            }
        }
    }
    Ok(None)
}

/// The last entry of `list` (seq, unit, value) with seq below `bound` (or at it, when `inclusive`).
fn before<'v>(
    list: Option<&Accesses<'v>>,
    bound: u32,
    inclusive: bool,
) -> Option<(u32, u32, &'v Value)> {
    list.and_then(|l| {
        let i = l.partition_point(|e| if inclusive { e.0 <= bound } else { e.0 < bound });
        (i > 0).then(|| l[i - 1])
    })
}

/// Drops a step that repeats the previous op (the observing read may be the
/// violating read itself).
fn dedup_chain(
    chain: Vec<(u32, String, Option<&'static str>)>,
) -> Vec<(u32, String, Option<&'static str>)> {
    let mut out: Vec<(u32, String, Option<&'static str>)> = Vec::new();
    for step in chain {
        if out.last().is_none_or(|l| l.0 != step.0) {
            out.push(step);
        }
    }
    out
}

impl Checker for SessionChecker {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let started = Instant::now();
        let meter = self.budget.start();
        let p = parse(history, self.workload)?;
        if !p.units.iter().any(|u| !u.reads.is_empty()) {
            // A session guarantee is about what reads see: without one,
            // nothing was observed that could keep or break it.
            let mut v = Verdict::unknown(
                self.name.clone(),
                "no read to judge",
                format!(
                    "no operation read anything ({} over {}), so no session guarantee was observed",
                    crate::text::plural(p.units.len(), "operation"),
                    crate::text::plural(p.sessions.len(), "process"),
                ),
            );
            v.elapsed = started.elapsed();
            return Ok(v);
        }
        let ctx = Ctx { history, p: &p, meter: &meter };
        let mut found = Vec::new();
        let exhausted = match p.workload {
            Workload::ListAppend => list_append(&ctx, &self.guarantees, &mut found)?,
            Workload::Register => register(&ctx, &self.guarantees, &mut found)?,
        };
        if let Some(reason) = exhausted {
            return Ok(Verdict::out_of_budget(self.name.clone(), reason, started.elapsed()));
        }
        // Report in history order of the violating read, grouped by guarantee.
        found.sort_by_key(|f| (f.guarantee, f.chain.last().map(|c| ctx.op(c.0))));
        let mut counts: BTreeMap<Guarantee, usize> =
            self.guarantees.iter().map(|g| (*g, 0)).collect();
        let mut anomalies = Vec::new();
        for f in found {
            let n = counts.entry(f.guarantee).or_insert(0);
            *n += 1;
            if *n > self.limit {
                continue;
            }
            let chain: Vec<serde_json::Value> = f
                .chain
                .iter()
                .map(|(u, what, step)| json!({"op": ctx.op(*u), "process": ctx.process(*u), "what": what, "step": step}))
                .collect();
            let mut ops: Vec<u64> = f.chain.iter().map(|(u, _, _)| ctx.op(*u)).collect();
            ops.dedup();
            anomalies.push(Anomaly {
                kind: f.guarantee.name().into(),
                explanation: f.explanation,
                ops,
                data: json!({"guarantee": f.guarantee.name(), "chains": [chain]}),
            });
        }
        let total: usize = counts.values().sum();
        let listing: Vec<String> =
            counts.iter().map(|(g, n)| format!("{} {n}", g.name())).collect();
        let workload = match p.workload {
            Workload::ListAppend => "list-append",
            Workload::Register => "register",
        };
        let summary = if total == 0 {
            format!(
                "{} held over {} by {} ({workload})",
                listing.iter().map(|l| l.trim_end_matches(" 0")).collect::<Vec<_>>().join(", "),
                crate::text::plural(p.units.len(), "operation"),
                crate::text::plural(p.sessions.len(), "process"),
            )
        } else {
            let nonzero: Vec<&String> = listing.iter().filter(|l| !l.ends_with(" 0")).collect();
            format!(
                "{total} violation{}: {} ({workload})",
                if total == 1 { "" } else { "s" },
                nonzero.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )
        };
        let mut v = Verdict::new(
            self.name.clone(),
            if total > 0 { Validity::Invalid } else { Validity::Valid },
            summary,
        );
        v.anomalies = anomalies;
        let mut by = serde_json::Map::new();
        for (g, n) in &counts {
            by.insert(g.name().into(), json!(n));
        }
        v.details = json!({
            "workload": workload,
            "operations": p.units.len(),
            "processes": p.sessions.len(),
            "keys": p.keys.len(),
            "violations": by,
            "explained_per_guarantee": self.limit,
        });
        v.elapsed = started.elapsed();
        Ok(v)
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let mut body = format!(
            "<h1>Session guarantees</h1>\n<p class=\"{}\">{}</p>\n",
            verdict.validity.as_str(),
            escape(&verdict.summary)
        );
        if let Some(by) = verdict.details.get("violations").and_then(|v| v.as_object()) {
            let items: Vec<(String, f64)> =
                by.iter().map(|(g, n)| (g.clone(), n.as_f64().unwrap_or(0.0))).collect();
            body.push_str("<h2>Violations per guarantee</h2>\n");
            body.push_str(&crate::diagram::bars(&items, "violations"));
        }
        for g in &self.guarantees {
            let of_g: Vec<&Anomaly> =
                verdict.anomalies.iter().filter(|a| a.kind == g.name()).collect();
            if of_g.is_empty() {
                continue;
            }
            body.push_str(&format!("<h2>{}</h2>\n", escape(g.name())));
            for a in of_g {
                body.push_str(&format!(
                    "<div class=\"explanation\">{}</div>\n",
                    escape(&a.explanation)
                ));
                if let Some(chains) = a.data.get("chains").and_then(|c| c.as_array()) {
                    for chain in chains {
                        body.push_str(&crate::causal::chain_svg(chain));
                    }
                }
            }
        }
        vec![HtmlPage { name: self.name.clone(), title: "Session guarantees".into(), body }]
    }
}
