//! The linearizability checker: does some total order of the operations,
//! consistent with real time, explain every result under the model?
//!
//! The history is split into independent partitions (P-compositionality:
//! by the ops' `key`, as Jepsen's independent keys and Porcupine's kv data
//! have), each partition is searched on its own (in parallel), and the
//! verdict is invalid as soon as one partition has no linearization. See
//! `search.rs` for the algorithm, `model/` for the built-in models and
//! `custom.rs` for checking a model of your own. A register read that
//! returned several sibling versions is an anomaly of its own
//! (`siblings.rs`), never one value picked for the search.

mod custom;
mod html;
mod model;
mod quick;
mod reference;
mod search;
mod siblings;

pub use self::custom::{ModelChecker, SequentialModel};

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use rayon::prelude::*;
use serde_json::json;

use self::model::{
    Call, Decision, Interner, KvKind, Model, ModelKind, MultiRegisterKind, MutexKind, QueueKind,
    RegisterKind, SetKind,
};
use self::search::{Entry, Limits, Outcome, Search, Stats};
use crate::error::CheckError;
use crate::history::{History, Op, OpType, Pair, Process};
use crate::value::Value;
use crate::verdict::{Anomaly, Budget, Checker, FromText, HtmlPage, Laps, Validity, Verdict};

/// The sequential models the checker knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelName {
    /// A read/write register.
    Register,
    /// A register with compare-and-set (`cas` with value `[from to]`).
    CasRegister,
    /// Several registers read and written together (`[[:r k v] [:w k v]]`).
    MultiRegister,
    /// A lock with `acquire` and `release`.
    Mutex,
    /// A set with `add` and whole-set `read`.
    Set,
    /// A queue whose dequeues may return any enqueued element.
    UnorderedQueue,
    /// A first-in first-out queue.
    FifoQueue,
    /// Porcupine's key-value store: `get`, `put`, `append` on string values.
    Kv,
}

impl ModelName {
    /// Every model, with its command-line name.
    pub const ALL: [(ModelName, &'static str); 8] = [
        (ModelName::Register, "register"),
        (ModelName::CasRegister, "cas-register"),
        (ModelName::MultiRegister, "multi-register"),
        (ModelName::Mutex, "mutex"),
        (ModelName::Set, "set"),
        (ModelName::UnorderedQueue, "unordered-queue"),
        (ModelName::FifoQueue, "fifo-queue"),
        (ModelName::Kv, "kv"),
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(m, _)| *m == self).map_or("?", |(_, n)| n)
    }

    /// For a model whose initial state is fixed (it cannot take `--init`),
    /// that state in words; `None` for the registers, which start from
    /// `--init` (nil unless given).
    pub fn fixed_initial_state(self) -> Option<&'static str> {
        match self {
            ModelName::Register | ModelName::CasRegister | ModelName::MultiRegister => None,
            ModelName::Mutex => Some("free"),
            ModelName::Set => Some("as the empty set"),
            ModelName::UnorderedQueue | ModelName::FifoQueue => Some("as an empty queue"),
            ModelName::Kv => Some("with every key holding the empty string"),
        }
    }
}

impl std::fmt::Display for ModelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(m, _)| *m).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|(_, n)| *n).collect();
            format!("unknown model {s:?}; known models: {}", names.join(", "))
        })
    }
}

/// Which search algorithm to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// faultline's search (see `search.rs`): the default.
    #[default]
    Search,
    /// The classic Wing–Gong–Lowe search as Porcupine implements it, kept
    /// as a reference for benchmarks and differential tests. Gives verdicts
    /// without evidence.
    Reference,
}

/// Checks histories for linearizability against a model.
#[derive(Clone, Debug)]
pub struct LinearChecker {
    /// The model.
    pub model: ModelName,
    /// The initial value, `nil` unless given: a register's value, or for
    /// `multi-register` either a map from key to value (keys it leaves out
    /// start nil) or one value every register starts with.
    pub init: Value,
    /// Split the history by key (P-compositionality). On by default; off
    /// only makes sense for the kv model, whose state then spans all keys
    /// for the reference search, while the default search still checks
    /// kv key by key, which locality makes exact (`KEYS_ARE_OBJECTS`).
    pub partition: bool,
    /// Limits; when one runs out the answer is unknown.
    pub budget: Budget,
    /// The search algorithm.
    pub algorithm: Algorithm,
}

impl LinearChecker {
    /// A checker for `model` with defaults: initial value nil, partitioned, no budget.
    pub fn new(model: ModelName) -> LinearChecker {
        LinearChecker {
            model,
            init: Value::Nil,
            partition: true,
            budget: Budget::default(),
            algorithm: Algorithm::Search,
        }
    }
}

/// One op of a partition, as the evidence needs it.
struct Meta {
    invoke: usize,
    complete: Option<usize>,
}

impl Checker for LinearChecker {
    fn name(&self) -> &str {
        "linearizable"
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let cfg = &self.settings();
        let register = matches!(self.model, ModelName::Register | ModelName::CasRegister);
        let mut laps = Laps::start();
        let laps = &mut laps;
        // Both passes read every op and neither needs the other: on two
        // cores they overlap.
        let (found, pairs) = rayon::join(
            || register.then(|| crate::siblings::find(history, &self.init)).transpose(),
            || history.pairs(),
        );
        let (found, pairs) = (found?, pairs?);
        let pairs = &pairs;
        laps.lap("pairs");
        match self.model {
            ModelName::Register | ModelName::CasRegister => {
                let found = found.unwrap_or_default();
                let kind = RegisterKind {
                    cas: self.model == ModelName::CasRegister,
                    init: self.init.clone(),
                    interner: Interner::default(),
                    siblings: found.values.clone(),
                };
                let mut v = run(cfg, history, pairs, kind, laps)?;
                siblings::merge(&mut v, found);
                Ok(v)
            }
            ModelName::MultiRegister => run(
                cfg,
                history,
                pairs,
                MultiRegisterKind { init: self.init.clone(), ..MultiRegisterKind::default() },
                laps,
            ),
            ModelName::Mutex => run(cfg, history, pairs, MutexKind, laps),
            ModelName::Set => run(cfg, history, pairs, SetKind::default(), laps),
            ModelName::UnorderedQueue | ModelName::FifoQueue => run(
                cfg,
                history,
                pairs,
                QueueKind {
                    fifo: self.model == ModelName::FifoQueue,
                    interner: Interner::default(),
                    crashed_unordered: false,
                },
                laps,
            ),
            ModelName::Kv => run(cfg, history, pairs, KvKind::default(), laps),
        }
    }

    fn render_html(&self, history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        html::render(history, verdict)
    }

    fn checks_text(&self, head: &str) -> bool {
        quick::applies(self) && crate::formats::register_lines::starts(head)
    }

    fn check_text(&self, text: &mut (dyn std::io::Read + Send), source: &str) -> FromText {
        quick::check_text(self, text, source)
    }
}

impl LinearChecker {
    /// What a check by this checker runs with, its time counted from now.
    fn settings(&self) -> Settings {
        Settings {
            model: self.model.name().to_owned(),
            init: self.init.clone(),
            partition: self.partition,
            budget: self.budget,
            algorithm: self.algorithm,
            started: Instant::now(),
        }
    }
}

/// The search result of one partition, with what explaining it needs.
struct PartResult {
    key: Option<Value>,
    ops: usize,
    crashed: usize,
    stats: Stats,
    outcome: PartOutcome,
    /// Decided without search (`Model::decide`).
    decided: bool,
}

enum PartOutcome {
    Valid,
    Unknown(String),
    Invalid(Box<Anomaly>),
}

/// What a check runs with, whichever model it checks (a built-in one or a
/// user's, see `custom`).
pub(crate) struct Settings {
    /// The model's name, for verdicts.
    pub model: String,
    /// The initial value, for the verdict's details.
    pub init: Value,
    pub partition: bool,
    pub budget: Budget,
    pub algorithm: Algorithm,
    /// When the check began: its time limit counts from here.
    pub started: Instant,
}

/// Per partition key: the model ops of that partition in history order,
/// with where each was recorded.
type Parts<O> = BTreeMap<Option<Value>, (Vec<Entry<O>>, Vec<Meta>)>;

/// One partition ready to search: its key, its model, its ops and where
/// each was recorded.
type Job<M> = (Option<Value>, M, Vec<Entry<<M as Model>::Op>>, Vec<Meta>);

/// A history compiled for the search.
struct Compiled<O> {
    parts: Parts<O>,
    /// How many ok ops observed the state (none leaves nothing to judge).
    observations: usize,
}

/// Checks `history`, whose ops `pairs` pairs, against the model `kind`
/// builds.
pub(crate) fn run<K: ModelKind>(
    cfg: &Settings,
    history: &History,
    pairs: &[Pair],
    mut kind: K,
    laps: &mut Laps,
) -> Result<Verdict, CheckError>
where
    <K::M as Model>::State: Sync,
    K::M: Sync,
{
    // Asked not to partition a model whose keys are objects of their own,
    // the default search still checks key by key: by locality that decides
    // exactly what the search over the product of the keys would, which
    // on Porcupine's c50 histories runs out of memory. The reference
    // search keeps the product, to test this against.
    let by_locality = !cfg.partition && K::KEYS_ARE_OBJECTS && cfg.algorithm == Algorithm::Search;
    let apart = if cfg.partition || by_locality {
        compile_apart(cfg, history, pairs, &kind)?
    } else {
        None
    };
    let Readied { jobs, observations, unobservable } = if let Some(readied) = apart {
        readied
    } else {
        let Compiled { parts, observations } =
            compile(cfg, history, pairs, &mut kind, by_locality)?;
        let mut readied = Readied { jobs: Vec::new(), observations, unobservable: 0 };
        if observations > 0 {
            for (key, (entries, metas)) in parts {
                let (job, dropped) = prepare(cfg, &mut kind, key, entries, metas);
                readied.unobservable += dropped;
                readied.jobs.push(job);
            }
        }
        readied
    };
    laps.lap("compile");
    let readied = Readied { jobs, observations, unobservable };
    Ok(search_all::<K>(cfg, history, readied, by_locality, laps))
}

/// Searches the readied partitions and gives the verdict, with each
/// stage's time; `recorded` gives the history, to explain a partition not
/// linearizable.
fn search_all<K: ModelKind>(
    cfg: &Settings,
    recorded: &dyn Recorded,
    readied: Readied<K::M>,
    by_locality: bool,
    laps: &mut Laps,
) -> Verdict
where
    <K::M as Model>::State: Sync,
    K::M: Sync,
{
    let started = cfg.started;
    let Readied { mut jobs, observations, unobservable } = readied;
    if observations == 0 {
        return nothing_observed(cfg, K::OBSERVING, started);
    }
    let limits = Limits {
        deadline: cfg.budget.time.map(|t| started + t),
        memory: cfg.budget.memory,
        heap_at_start: crate::budget::heap_in_use(),
        used: AtomicUsize::new(0),
        exhausted: std::sync::OnceLock::new(),
    };
    // Largest partitions first, so the parallel tail is short.
    jobs.sort_by_key(|j| std::cmp::Reverse(j.2.len()));
    let results: Vec<PartResult> =
        jobs.into_par_iter().map(|job| search_partition(cfg, recorded, &limits, job)).collect();
    laps.lap("search");
    let mut v = verdict(cfg, results, started);
    laps.lap("verdict");
    if let Some(d) = v.details.as_object_mut() {
        d.insert("unobservable_crashed_dropped".into(), json!(unobservable));
        d.insert("partitioned_by_locality".into(), json!(by_locality));
        d.insert("timings_ms".into(), serde_json::Value::Object(std::mem::take(&mut laps.timings)));
    }
    if by_locality {
        v.notes.push(format!(
            "partition=false: the {} model's keys are independent objects, so by locality \
             (Herlihy and Wing) the history is linearizable exactly when each key's operations \
             are; they were checked key by key (--opt algorithm=reference searches all keys \
             as one state)",
            cfg.model
        ));
    }
    if v.validity == Validity::Invalid && looks_independent(recorded.history()) {
        v.notes.push(
            "every client value in this history looks like a Jepsen independent [key value] \
             tuple, and none carries a key: if it came from jepsen.independent, check it with \
             --independent, so each key is judged as its own register"
                .into(),
        );
    }
    v
}

/// Compiles every client op that did not fail into a model op, grouped by
/// partition key (by key also when `by_locality`, whatever the settings
/// say), and counts the ok ops that observed the state.
fn compile<K: ModelKind>(
    cfg: &Settings,
    history: &History,
    pairs: &[Pair],
    kind: &mut K,
    by_locality: bool,
) -> Result<Compiled<<K::M as Model>::Op>, CheckError> {
    // Partitions found by key through a hash map; the ordered map is built
    // once at the end. (A lookup per op in the ordered map compared keys a
    // few times per op: 2-3 ms of the 18 this loop took on a 100,000-op
    // register history.)
    type Part<O> = (Vec<Entry<O>>, Vec<Meta>);
    let mut found: rustc_hash::FxHashMap<Option<Value>, Part<<K::M as Model>::Op>> =
        Default::default();
    let mut observations = 0usize;
    for pair in pairs {
        let Some(happened) = Happened::of(history, pair) else { continue };
        let (observed, compiled) = compile_op(kind, history, &happened)?;
        observations += usize::from(observed);
        let Some((mut entry, meta)) = compiled else { continue };
        let part_key =
            if cfg.partition || by_locality { kind.partition(happened.key) } else { None };
        let (entries, metas) = found.entry(part_key).or_default();
        entry.id = entries.len() as u32;
        entries.push(entry);
        metas.push(meta);
    }
    let parts: Parts<<K::M as Model>::Op> = found.into_iter().collect();
    Ok(Compiled { parts, observations })
}

/// A client op that happened, as compiling sees it.
struct Happened<'h> {
    pair: &'h Pair,
    inv: &'h Op,
    /// Its completion, if it completed.
    done: Option<&'h Op>,
    outcome: OpType,
    /// Its key, from the invocation or else the completion.
    key: Option<&'h Value>,
}

impl<'h> Happened<'h> {
    /// `None` for the nemesis's ops, a client's lone `info` and failed ops
    /// (they did not happen).
    fn of(history: &'h History, pair: &'h Pair) -> Option<Happened<'h>> {
        let ops = history.ops();
        let inv = &ops[pair.invoke];
        if inv.process == Process::Nemesis || pair.complete == Some(pair.invoke) {
            return None;
        }
        let outcome = history.outcome(pair);
        if outcome == OpType::Fail {
            return None;
        }
        let done = pair.complete.map(|c| &ops[c]);
        let key = inv.key.as_ref().or(done.and_then(|d| d.key.as_ref()));
        Some(Happened { pair, inv, done, outcome, key })
    }
}

/// Whether an op observed the state, and its entry and where it was
/// recorded (`None` when it compiles to nothing).
type CompiledOp<O> = (bool, Option<(Entry<O>, Meta)>);

/// Compiles one op that happened; its entry is numbered 0, for its
/// partition to number.
fn compile_op<K: ModelKind>(
    kind: &mut K,
    history: &History,
    op: &Happened<'_>,
) -> Result<CompiledOp<<K::M as Model>::Op>, CheckError> {
    let Happened { pair, inv, done, outcome, key } = *op;
    let output = if outcome == OpType::Ok { done.map(|d| &d.value) } else { None };
    let observed = output.is_some_and(|out| kind.observes(&inv.f, out));
    let compiled =
        kind.compile(&Call::new(&inv.f, key, &inv.value, output)).map_err(|message| {
            CheckError::BadOp { location: history.locate(pair.invoke).field("value"), message }
        })?;
    let ret = if outcome == OpType::Ok { pair.complete.map(|c| c as u32) } else { None };
    Ok((
        observed,
        compiled.map(|o| {
            let entry = Entry { call: pair.invoke as u32, ret, op: o, id: 0 };
            (entry, Meta { invoke: pair.invoke, complete: pair.complete })
        }),
    ))
}

/// The partitions ready to search, in key order.
struct Readied<M: Model> {
    jobs: Vec<Job<M>>,
    /// How many ok ops observed the state.
    observations: usize,
    /// Crashed ops dropped because nothing observes their effects.
    unobservable: usize,
}

/// Each partition's key and its ops' places in the pairs.
type Members = rustc_hash::FxHashMap<Option<Value>, Vec<u32>>;

/// One partition's key and its ops' places in the pairs.
type KeyMembers = (Option<Value>, Vec<u32>);

/// The partitions of the ops that happened among `pairs` (which begin at
/// place `first` of all the pairs).
fn members<K: ModelKind>(history: &History, kind: &K, pairs: &[Pair], first: usize) -> Members {
    let mut parts = Members::default();
    for (i, pair) in pairs.iter().enumerate() {
        let Some(happened) = Happened::of(history, pair) else { continue };
        parts.entry(kind.partition(happened.key)).or_default().push((first + i) as u32);
    }
    parts
}

/// [`compile`] then [`prepare`], each partition on any core, for a kind
/// that compiles partitions apart ([`ModelKind::fork`]), after the ops are
/// sorted into partitions on every core. Gives the jobs, counts and error
/// the two give in turn: the same partitions in the same order, and the
/// first op in history order that does not compile. On a 100,000-op
/// register history in 10 partitions, compiling on one core was 11-13 ms
/// of a 26 ms check. `Ok(None)` when the kind does not fork.
fn compile_apart<K: ModelKind>(
    cfg: &Settings,
    history: &History,
    pairs: &[Pair],
    kind: &K,
) -> Result<Option<Readied<K::M>>, CheckError> {
    if kind.fork().is_none() {
        return Ok(None);
    }
    // Sorting into partitions reads every op, so it runs on every core,
    // each on a stretch of the history; the stretches' partitions are then
    // joined in history order.
    // (Each stretch asks a fork of the kind for keys: a kind need not be
    // shared between threads.)
    let stretch = pairs.len().div_ceil(rayon::current_num_threads()).max(1 << 14);
    let Some(sorters) = pairs.chunks(stretch).map(|_| kind.fork()).collect::<Option<Vec<K>>>()
    else {
        return Ok(None);
    };
    let stretches: Vec<Members> = pairs
        .par_chunks(stretch)
        .zip(sorters)
        .enumerate()
        .map(|(c, (chunk, sorter))| members(history, &sorter, chunk, c * stretch))
        .collect();
    let mut parts = Members::default();
    for (key, members) in stretches.into_iter().flatten() {
        parts.entry(key).or_default().extend_from_slice(&members);
    }
    // In key order, as `compile`'s ordered map gives them.
    let mut parts: Vec<KeyMembers> = parts.into_iter().collect();
    parts.sort_by(|a, b| a.0.cmp(&b.0));
    let forks: Option<Vec<(K, KeyMembers)>> =
        parts.into_iter().map(|part| Some((kind.fork()?, part))).collect();
    let Some(forks) = forks else { return Ok(None) };
    type Part<M> = Result<(Option<(Job<M>, usize)>, usize), (u32, CheckError)>;
    let done: Vec<Part<K::M>> = forks
        .into_par_iter()
        .map(|(mut kind, (key, members))| {
            let mut entries = Vec::with_capacity(members.len());
            let mut metas = Vec::with_capacity(members.len());
            let mut observations = 0usize;
            for &i in &members {
                // Every member happened: sorting into partitions kept no other.
                let Some(happened) = Happened::of(history, &pairs[i as usize]) else { continue };
                let (observed, compiled) =
                    compile_op(&mut kind, history, &happened).map_err(|e| (i, e))?;
                observations += usize::from(observed);
                let Some((mut entry, meta)) = compiled else { continue };
                entry.id = entries.len() as u32;
                entries.push(entry);
                metas.push(meta);
            }
            // Ops that compile to nothing make no partition.
            let job = (!entries.is_empty()).then(|| prepare(cfg, &mut kind, key, entries, metas));
            Ok((job, observations))
        })
        .collect();
    let mut readied = Readied { jobs: Vec::new(), observations: 0, unobservable: 0 };
    let mut first_error: Option<(u32, CheckError)> = None;
    for part in done {
        match part {
            Ok((job, observations)) => {
                readied.observations += observations;
                if let Some((job, dropped)) = job {
                    readied.unobservable += dropped;
                    readied.jobs.push(job);
                }
            }
            Err((i, e)) => {
                if first_error.as_ref().is_none_or(|(first, _)| i < *first) {
                    first_error = Some((i, e));
                }
            }
        }
    }
    match first_error {
        Some((_, e)) => Err(e),
        None => Ok(Some(readied)),
    }
}

/// The verdict when no ok op observed the state.
fn nothing_observed(cfg: &Settings, observing: &str, started: Instant) -> Verdict {
    // Writes alone are linearizable in any order: a verdict of
    // valid would say nothing about the system.
    let mut v = Verdict::unknown(
        "linearizable",
        "nothing observed the state",
        format!(
            "no operation that completed ok observed the {} model's state ({}), so there \
             is nothing to judge",
            cfg.model, observing
        ),
    );
    v.elapsed = started.elapsed();
    v
}

/// Readies one partition for the search: drops the crashed ops whose
/// effects nothing observes (exact; see `ModelKind::useful`), renumbers the
/// rest and builds the partition's model. Returns the job and how many ops
/// it dropped.
fn prepare<K: ModelKind>(
    cfg: &Settings,
    kind: &mut K,
    key: Option<Value>,
    mut entries: Vec<Entry<<K::M as Model>::Op>>,
    mut metas: Vec<Meta>,
) -> (Job<K::M>, usize) {
    // The dropped ops are filtered out of every list in place: every list
    // built here is memory the kernel must clear first, which on a
    // 100,000-op register history cost more than the filtering itself.
    let mut rets: Vec<u32> = entries.iter().map(|e| e.ret.unwrap_or(u32::MAX)).collect();
    let mut ops_only: Vec<_> = entries.iter().map(|e| e.op.clone()).collect();
    let before = entries.len();
    if cfg.algorithm == Algorithm::Search {
        let keep = kind.useful(&ops_only, &rets);
        if keep.iter().any(|k| !k) {
            retain_kept(&mut entries, &keep);
            retain_kept(&mut metas, &keep);
            retain_kept(&mut ops_only, &keep);
            retain_kept(&mut rets, &keep);
        }
    }
    let dropped = before - entries.len();
    for (i, e) in entries.iter_mut().enumerate() {
        e.id = i as u32;
    }
    let calls: Vec<u32> = entries.iter().map(|e| e.call).collect();
    let model = kind.model_for(&mut ops_only, &calls, &rets);
    for (e, op) in entries.iter_mut().zip(ops_only) {
        e.op = op;
    }
    ((key, model, entries, metas), dropped)
}

/// Keeps the items of `list` whose place in `keep` is true (and none past
/// its end).
fn retain_kept<T>(list: &mut Vec<T>, keep: &[bool]) {
    let mut kept = keep.iter();
    list.retain(|_| kept.next().is_some_and(|k| *k));
}

/// Searches one partition with the configured algorithm, explaining a
/// failure of the default search (from the history `recorded` gives, only
/// then).
fn search_partition<M: Model + Clone>(
    cfg: &Settings,
    recorded: &dyn Recorded,
    limits: &Limits,
    (key, mut model, mut entries, metas): Job<M>,
) -> PartResult {
    let rets: Vec<u32> = entries.iter().map(|e| e.ret.unwrap_or(u32::MAX)).collect();
    let mut ops: Vec<M::Op> = entries.iter().map(|e| e.op.clone()).collect();
    let crashed = entries.iter().filter(|e| e.ret.is_none()).count();
    // A budget already spent is honoured here as in the search: the answer
    // is then unknown, whatever a fast test could have said.
    let spent = limits.deadline.is_some_and(|d| Instant::now() >= d);
    if cfg.algorithm == Algorithm::Search && !spent {
        let calls: Vec<u32> = entries.iter().map(|e| e.call).collect();
        let names = || Names { ops: recorded.history().ops(), entries: &entries, metas: &metas };
        if let Some(decision) = model.decide(&ops, &calls, &rets, &|id| names().describe(id)) {
            let outcome = match decision {
                Decision::Valid => PartOutcome::Valid,
                Decision::Invalid(r) => PartOutcome::Invalid(Box::new(refuted(
                    recorded.history(),
                    &names(),
                    key.as_ref(),
                    r,
                ))),
            };
            let ops = entries.len();
            return PartResult {
                key,
                ops,
                crashed,
                stats: Stats::default(),
                outcome,
                decided: true,
            };
        }
    }
    model.settle(&mut ops, &rets);
    for (e, op) in entries.iter_mut().zip(ops) {
        e.op = op;
    }
    if cfg.algorithm == Algorithm::Reference {
        let outcome = reference_outcome(key.as_ref(), model, &entries, limits);
        let stats = Stats::default();
        return PartResult { key, ops: entries.len(), crashed, stats, outcome, decided: false };
    }
    let mut search = Search::new(model, &entries, limits);
    let outcome = search.run();
    let stats = search.stats();
    let explain_model = search.model().clone();
    drop(search);
    let outcome = match outcome {
        Outcome::Linearizable => PartOutcome::Valid,
        Outcome::Unknown(r) => PartOutcome::Unknown(r),
        Outcome::NotLinearizable(f) => PartOutcome::Invalid(Box::new(explain(
            recorded.history(),
            explain_model,
            key.as_ref(),
            &entries,
            &metas,
            f,
        ))),
    };
    PartResult { key, ops: entries.len(), crashed, stats, outcome, decided: false }
}

/// The history as recorded, which a check reads only to explain a
/// partition not linearizable: at hand for the whole check, made on first
/// need when a register history was read straight from its text
/// (`quick.rs`).
pub(crate) trait Recorded: Sync {
    fn history(&self) -> &History;
}

impl Recorded for History {
    fn history(&self) -> &History {
        self
    }
}

/// Turns a refutation found without search into an anomaly of the same
/// shape as the search's (the blamed op, the ops around it for the
/// picture), without a longest prefix: there was no search to find one.
fn refuted<O>(
    history: &History,
    names: &Names<'_, O>,
    key: Option<&Value>,
    r: model::Refutation,
) -> Anomaly {
    let ops = history.ops();
    let stuck_meta = &names.metas[r.stuck as usize];
    let stuck_op = &ops[stuck_meta.invoke];
    let where_ = key.map_or(String::new(), |k| format!("For key {k}: "));
    let text = format!(
        "{where_}no order of the operations explains the results.\n\
         {} cannot be linearized (invoked at {}, returned at {}): {}.\n\
         Decided without search: each value is written once, so every read has one write \
         that can explain it, and the runs of values can be ordered in polynomial time.",
        capitalise(&names.describe(r.stuck)),
        history.position_words(stuck_meta.invoke),
        stuck_meta.complete.map_or_else(|| "never".into(), |pos| history.position_words(pos)),
        r.reason,
    );
    // The picture: every op of the partition whose interval meets the span
    // from the first named op's invocation to the last named op's return.
    let from = r.ops.iter().map(|&o| names.metas[o as usize].invoke).min().unwrap_or(0);
    let to = r
        .ops
        .iter()
        .map(|&o| {
            let m = &names.metas[o as usize];
            names.entries[o as usize].ret.map_or(m.invoke, |c| c as usize)
        })
        .max()
        .unwrap_or(from);
    let window: Vec<serde_json::Value> = names
        .entries
        .iter()
        .zip(names.metas)
        .filter(|(e, m)| m.invoke <= to && e.ret.map_or(m.invoke >= from, |c| c as usize >= from))
        .take(400)
        .map(|(e, m)| {
            json!({
                "index": ops[m.invoke].index,
                "process": ops[m.invoke].process.to_string(),
                "call": m.invoke,
                "ret": e.ret,
                "label": names.short(e.id),
                "order": null,
                "stuck": e.id == r.stuck,
            })
        })
        .collect();
    Anomaly {
        kind: "nonlinearizable".into(),
        explanation: text,
        ops: r.ops.iter().map(|&o| ops[names.metas[o as usize].invoke].index).collect(),
        data: json!({
            "key": key,
            "stuck": {
                "index": stuck_op.index,
                "process": stuck_op.process.to_string(),
                "op": names.describe(r.stuck),
                "invoke_line": history.locate(stuck_meta.invoke).line,
            },
            "decided_by": "unique written values",
            "witness": r.ops.iter().map(|&o| names.describe(o)).collect::<Vec<_>>(),
            "partition_ops": names.entries.len(),
            "window": window,
            "window_from": from,
            "window_to": to,
        }),
    }
}

/// The reference search's outcome for one partition, which has no evidence
/// to give.
fn reference_outcome<M: Model>(
    key: Option<&Value>,
    model: M,
    entries: &[Entry<M::Op>],
    limits: &Limits,
) -> PartOutcome {
    match reference::check(model, entries, limits.deadline) {
        Some(true) => PartOutcome::Valid,
        Some(false) => PartOutcome::Invalid(Box::new(Anomaly {
            kind: "nonlinearizable".into(),
            explanation: "no linearization exists (the reference search gives no evidence; \
                          run the default algorithm for it)"
                .into(),
            ops: Vec::new(),
            data: json!({ "key": key }),
        })),
        None => PartOutcome::Unknown("the time limit ran out".into()),
    }
}

fn verdict(cfg: &Settings, mut results: Vec<PartResult>, started: Instant) -> Verdict {
    results.sort_by(|a, b| a.key.cmp(&b.key));
    let total_ops: usize = results.iter().map(|r| r.ops).sum();
    let crashed: usize = results.iter().map(|r| r.crashed).sum();
    let n = results.len();
    let invalid: Vec<&PartResult> =
        results.iter().filter(|r| matches!(r.outcome, PartOutcome::Invalid(_))).collect();
    let unknown: Vec<(&PartResult, &String)> = results
        .iter()
        .filter_map(|r| match &r.outcome {
            PartOutcome::Unknown(why) => Some((r, why)),
            _ => None,
        })
        .collect();
    let validity = if !invalid.is_empty() {
        Validity::Invalid
    } else if !unknown.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let model = cfg.model.as_str();
    let what = format!(
        "{total_ops} operations ({crashed} crashed) in {n} partition{}, model {model}",
        if n == 1 { "" } else { "s" }
    );
    let summary = match validity {
        Validity::Valid => format!("linearizable: {what}"),
        Validity::Invalid => format!(
            "not linearizable: {} of {n} partition{} ha{} no linearization; {what}",
            invalid.len(),
            if n == 1 { "" } else { "s" },
            if invalid.len() == 1 { "s" } else { "ve" }
        ),
        Validity::Unknown => {
            format!("undecided: {} partition(s) not finished; {what}", unknown.len())
        }
    };
    let mut v = Verdict::new("linearizable", validity, summary);
    if let Some((r, why)) = unknown.first() {
        let which = r.key.as_ref().map_or("the history".to_owned(), |k| format!("key {k}"));
        v.unknown_reason = Some(format!(
            "{why} while searching {which} ({} configurations explored); \
             raise --time-limit or --memory-limit to let it finish",
            r.stats.frames
        ));
    }
    let sum = |f: fn(&Stats) -> u64| results.iter().map(|r| f(&r.stats)).sum::<u64>();
    v.details = json!({
        "model": model,
        "init": cfg.init,
        "partitions": n,
        "operations": total_ops,
        "crashed": crashed,
        "configurations": sum(|s| s.frames),
        "cached": sum(|s| s.cached),
        "pruned": sum(|s| s.pruned),
        "decided_without_search": results.iter().filter(|r| r.decided).count(),
        "invalid_keys": invalid.iter().map(|r| r.key.clone().unwrap_or_default()).collect::<Vec<_>>(),
        "unknown_keys": unknown.iter().map(|(r, _)| r.key.clone().unwrap_or_default()).collect::<Vec<_>>(),
    });
    for r in results {
        if let PartOutcome::Invalid(a) = r.outcome {
            v.anomalies.push(*a);
        }
    }
    v.elapsed = started.elapsed();
    v
}

/// Whether every client op's value is a two-element list and none has a
/// key: the shape of a Jepsen history of independent keys read without
/// `--independent`, where each tuple would be judged as one register value.
fn looks_independent(history: &History) -> bool {
    let mut values = history
        .ops()
        .iter()
        .filter(|o| o.process != Process::Nemesis && !o.value.is_nil())
        .peekable();
    values.peek().is_some()
        && !history.ops().iter().any(|o| o.key.is_some())
        && values.all(|o| matches!(&o.value, Value::List(kv) if kv.len() == 2))
}

/// How many final steps of the longest prefix the evidence keeps.
const PREFIX_TAIL: usize = 40;

/// Turns a failed search into an anomaly a person can follow.
fn explain<M: Model>(
    history: &History,
    mut model: M,
    key: Option<&Value>,
    entries: &[Entry<M::Op>],
    metas: &[Meta],
    failure: search::Failure<M::State>,
) -> Anomaly {
    let ops = history.ops();
    let names = Names { ops, entries, metas };
    model.for_evidence();
    let steps = replay(&mut model, entries, &failure.prefix);
    let states: Vec<String> = failure.states.iter().map(|s| model.show_state(s)).collect();
    // The op to blame: a later op the model proved unreachable, if that is
    // what stopped the search, else the op that could not be placed.
    let stuck = failure.witness.unwrap_or(failure.stuck);
    let stuck_meta = &metas[stuck as usize];
    let stuck_op = &ops[stuck_meta.invoke];
    let why = why_stuck(history, &model, &names, &failure, &states);
    let text = explanation(history, &names, key, &failure, &steps, &why);
    let (from, to, window) = window(&names, &steps, &failure.prefix, stuck);
    let mut involved: Vec<u64> = vec![stuck_op.index];
    involved
        .extend(steps.iter().rev().take(8).map(|(id, _)| ops[metas[*id as usize].invoke].index));
    let tail = prefix_tail(&names, steps);
    let mut data = json!({
        "key": key,
        "stuck": {
            "index": stuck_op.index,
            "process": stuck_op.process.to_string(),
            "op": names.describe(stuck),
            "invoke_line": history.locate(stuck_meta.invoke).line,
        },
        "prefix_length": failure.prefix.len(),
        "partition_ops": entries.len(),
        "window_from": from,
        "window_to": to,
    });
    // Moved in, not through `json!`, which would copy them (long values
    // make these the bulk of the evidence).
    if let serde_json::Value::Object(fields) = &mut data {
        fields.insert("states".into(), states.into());
        fields.insert("prefix_tail".into(), tail.into());
        fields.insert("window".into(), window.into());
    }
    Anomaly { kind: "nonlinearizable".into(), explanation: text, ops: involved, data }
}

/// How the evidence names a partition's ops: as recorded, not as the model
/// sees them (which may have merged values nothing reads).
struct Names<'h, O> {
    ops: &'h [Op],
    entries: &'h [Entry<O>],
    metas: &'h [Meta],
}

impl<O> Names<'_, O> {
    /// An op's function, key, argument and result in a few words
    /// (`write :x 1`, `read :x → 3`).
    fn short(&self, id: u32) -> String {
        let m = &self.metas[id as usize];
        let inv = &self.ops[m.invoke];
        let done = m.complete.map(|c| &self.ops[c]).filter(|d| d.kind == OpType::Ok);
        let key = inv.key.as_ref().map(|k| format!(" {k}")).unwrap_or_default();
        match done {
            Some(d) if d.value.is_nil() && inv.value.is_nil() => format!("{}{key}", inv.f),
            Some(d) if inv.value.is_nil() || d.value != inv.value => {
                format!("{}{key} → {}", inv.f, d.value)
            }
            _ if inv.value.is_nil() => format!("{}{key}", inv.f),
            _ => format!("{}{key} {}", inv.f, inv.value),
        }
    }

    /// `op N by process P, ...`, saying so when the op crashed.
    fn describe(&self, id: u32) -> String {
        let m = &self.metas[id as usize];
        let inv = &self.ops[m.invoke];
        let crashed = self.entries[id as usize].ret.is_none();
        let status = if crashed { " (crashed: may or may not have happened)" } else { "" };
        format!("op {} by process {}, {}{status}", inv.index, inv.process, self.short(id))
    }
}

/// Replays the longest linearizable prefix and returns its last
/// `PREFIX_TAIL` steps, each op with the state after it: all the evidence
/// shows. (States are shown only there: on a long prefix of long values,
/// Porcupine's kv histories, showing every state cost more than the search.)
fn replay<M: Model>(model: &mut M, entries: &[Entry<M::Op>], prefix: &[u32]) -> Vec<(u32, String)> {
    let mut state = model.init();
    let shown_from = prefix.len().saturating_sub(PREFIX_TAIL);
    let mut steps = Vec::with_capacity(prefix.len() - shown_from);
    for (i, &id) in prefix.iter().enumerate() {
        if let Some(next) = model.step(&state, &entries[id as usize].op) {
            state = next;
        }
        if i >= shown_from {
            steps.push((id, model.show_state(&state)));
        }
    }
    steps
}

/// Why the stuck op cannot be linearized: a later op the model proved out
/// of reach by the time it returned, or a result impossible in every state
/// the model can be in.
fn why_stuck<M: Model>(
    history: &History,
    model: &M,
    names: &Names<'_, M::Op>,
    failure: &search::Failure<M::State>,
    states: &[String],
) -> String {
    let at_states =
        if states.len() == 1 { states[0].clone() } else { format!("one of {}", states.join(", ")) };
    if let Some(witness) = failure.witness {
        let blocked = &names.metas[failure.stuck as usize];
        let reason = model.doom_reason(&names.entries[witness as usize].op).unwrap_or_else(|| {
            "each way forward leaves this result out of reach of the operations that remain"
                .to_owned()
        });
        format!(
            "{} must take effect by {}, and from every state the model can be in just before \
             that ({at_states}), {reason}",
            names.describe(failure.stuck),
            history.position_words(blocked.complete.unwrap_or(blocked.invoke)),
        )
    } else {
        format!(
            "however the operations before it are ordered, the model is then in {at_states}, \
             where this result is impossible"
        )
    }
}

/// The anomaly's explanation: which op cannot be linearized and why, how
/// far the longest prefix got, and its last steps.
fn explanation<O, S>(
    history: &History,
    names: &Names<'_, O>,
    key: Option<&Value>,
    failure: &search::Failure<S>,
    steps: &[(u32, String)],
    why: &str,
) -> String {
    let where_ = key.map_or(String::new(), |k| format!("For key {k}: "));
    let stuck = failure.witness.unwrap_or(failure.stuck);
    let stuck_meta = &names.metas[stuck as usize];
    let mut text = format!(
        "{where_}no order of the operations explains the results.\n\
         {} cannot be linearized (invoked at {}, returned at {}): {why}.\n\
         The longest linearizable prefix orders {} of the {} operations of this partition; \
         every other order consistent with real time fails at or before this point.",
        capitalise(&names.describe(stuck)),
        history.position_words(stuck_meta.invoke),
        stuck_meta.complete.map_or_else(|| "never".into(), |pos| history.position_words(pos)),
        failure.prefix.len(),
        names.entries.len(),
    );
    if !steps.is_empty() {
        text.push_str("\nIts last steps:");
        for (id, after) in steps.iter().rev().take(8).rev() {
            text.push_str(&format!("\n  {}  ⇒ {after}", names.describe(*id)));
        }
    }
    text
}

/// The last `PREFIX_TAIL` steps of the prefix as data, with the state after
/// each.
fn prefix_tail<O>(names: &Names<'_, O>, steps: Vec<(u32, String)>) -> Vec<serde_json::Value> {
    let shown = steps.len().saturating_sub(PREFIX_TAIL);
    steps
        .into_iter()
        .skip(shown)
        .map(|(id, after)| {
            let m = &names.metas[id as usize];
            let mut step = json!({
                "index": names.ops[m.invoke].index,
                "process": names.ops[m.invoke].process.to_string(),
                "crashed": names.entries[id as usize].ret.is_none(),
            });
            insert_strings(&mut step, [("op", names.describe(id)), ("state_after", after)]);
            step
        })
        .collect()
}

/// Operations near the failure, for the picture: those whose interval
/// overlaps the span from the start of the shown prefix tail to the stuck
/// op's return. Returns that span (history positions) and the ops.
fn window<O>(
    names: &Names<'_, O>,
    steps: &[(u32, String)],
    prefix: &[u32],
    stuck: u32,
) -> (usize, usize, Vec<serde_json::Value>) {
    let stuck_meta = &names.metas[stuck as usize];
    let from = steps
        .iter()
        .rev()
        .take(PREFIX_TAIL)
        .map(|(id, _)| names.metas[*id as usize].invoke)
        .min()
        .unwrap_or(stuck_meta.invoke)
        .min(stuck_meta.invoke);
    let to = stuck_meta.complete.unwrap_or(stuck_meta.invoke);
    // Each op's place in the prefix, by op id (1-based; 0: not in it).
    let mut order = vec![0usize; names.entries.len()];
    for (i, &id) in prefix.iter().enumerate() {
        order[id as usize] = i + 1;
    }
    let window = names
        .entries
        .iter()
        .zip(names.metas)
        // Crashed ops never return; show only those invoked in the window.
        .filter(|(e, m)| m.invoke <= to && e.ret.map_or(m.invoke >= from, |r| r as usize >= from))
        .take(400)
        .map(|(e, m)| {
            // No `op` sentence beside the label: the picture makes it from
            // `index`, `process` and `label` (it was a second copy of each
            // value, a tenth of the check on Porcupine's kv histories).
            let mut op = json!({
                "index": names.ops[m.invoke].index,
                "process": names.ops[m.invoke].process.to_string(),
                "call": m.invoke,
                "ret": e.ret,
                "order": Some(order[e.id as usize]).filter(|&o| o > 0),
                "stuck": e.id == stuck,
            });
            insert_strings(&mut op, [("label", names.short(e.id))]);
            op
        })
        .collect();
    (from, to, window)
}

/// Adds string fields to a JSON object by moving them in: `json!` would
/// copy them, and the evidence's strings hold whole values (kilobytes
/// each on Porcupine's kv histories, where the copies were a tenth of the
/// check).
fn insert_strings<const N: usize>(object: &mut serde_json::Value, fields: [(&str, String); N]) {
    if let serde_json::Value::Object(map) = object {
        for (name, text) in fields {
            map.insert(name.to_owned(), serde_json::Value::String(text));
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}
