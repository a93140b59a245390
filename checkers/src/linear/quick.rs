//! Deciding a register history straight from its EDN text, for the
//! linearizability checker's `check_text`.
//!
//! On a valid 100,000-op register history, reading the generic history
//! took more than half of a `faultline check`, and compiling from it most
//! of the rest: each op is 112 bytes with its values, and the check reads
//! a few of them from every op. When the text is in the one shape
//! `formats::register_lines` reads (op maps of integers, one per line),
//! this reads each op into a few words instead, pairs them, and compiles
//! and searches each key's ops exactly as `run` does: the same model ops
//! in the same order, so the same verdict.
//!
//! It decides valid, unknown and invalid alike. The history as the
//! readers read it is made from the ops read here only when a partition is
//! not linearizable, for the evidence, which names ops as recorded. An op
//! the history's rules refuse, or a function the model does not know,
//! hands the caller that history for the whole check, which words the
//! error. Text in another shape is left to the readers.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::model::{Call, Interner, ModelKind, RegisterKind};
use super::search::Entry;
use super::{
    Algorithm, LinearChecker, Meta, ModelName, Readied, Recorded, Settings, prepare, search_all,
};
use crate::formats::register_lines::{self, Arg, Func, Line};
use crate::history::{History, OpType};
use crate::value::Value;
use crate::verdict::{FromText, Laps, Verdict};

/// The verdict on the register history `text` holds (`source` names it),
/// when this path decides it; else the history, or nothing when the text
/// is not in this path's shape (see the module's comment).
pub(super) fn check_text(
    checker: &LinearChecker,
    text: &mut (dyn std::io::Read + Send),
    source: &str,
) -> FromText {
    if !applies(checker) {
        return FromText::Left;
    }
    let cfg = checker.settings();
    let mut laps = Laps::start();
    let mut sorter = Sorter::default();
    let read = register_lines::read_stream(text, &mut |block| sorter.sort(block));
    // The readers refuse indices that do not increase, so no history is
    // made unless they do.
    let Some(pieces) = read.filter(|p| register_lines::increasing(p)) else {
        return FromText::Left;
    };
    // Reading, with pairing and sorting beside it.
    laps.lap("read");
    let recorded = Lazy { pieces: &pieces, source, made: OnceLock::new() };
    match decide(checker, &cfg, sorter, &recorded, &mut laps) {
        Some(v) => FromText::Decided(v),
        None => FromText::Read(
            recorded.made.into_inner().unwrap_or_else(|| register_lines::history(&pieces, source)),
        ),
    }
}

/// The history the readers read from the text, made from its ops on first
/// need (to explain a partition not linearizable).
struct Lazy<'a> {
    pieces: &'a [Vec<Line>],
    source: &'a str,
    made: OnceLock<History>,
}

impl Recorded for Lazy<'_> {
    fn history(&self) -> &History {
        // Made on one thread: a search that waits here must not be handed
        // another partition's search by the pool, which could wait here
        // in turn on the same thread.
        self.made.get_or_init(|| register_lines::history(self.pieces, self.source))
    }
}

/// The verdict on the ops `sorter` sorted, unless the history breaks the
/// rules or the model does not know an op (the whole check words why).
fn decide(
    checker: &LinearChecker,
    cfg: &Settings,
    sorter: Sorter,
    recorded: &dyn Recorded,
    laps: &mut Laps,
) -> Option<Verdict> {
    // What is left of pairing: putting the partitions in key order.
    let parts = sorter.finish()?;
    laps.lap("pairs");
    let kind = RegisterKind {
        cas: checker.model == ModelName::CasRegister,
        init: checker.init.clone(),
        interner: Interner::default(),
        siblings: Vec::new(),
    };
    let readied = compile(cfg, &kind, parts)?;
    laps.lap("compile");
    let mut v = search_all::<RegisterKind>(cfg, recorded, readied, false, laps);
    if let Some(d) = v.details.as_object_mut() {
        d.insert("read_from_text".into(), serde_json::json!(true));
    }
    Some(v)
}

/// Whether `checker` may decide a history from its text here: a register
/// model, checked key by key with the default search.
pub(super) fn applies(checker: &LinearChecker) -> bool {
    matches!(checker.model, ModelName::Register | ModelName::CasRegister)
        && checker.partition
        && checker.algorithm == Algorithm::Search
}

/// A client op, invoked and perhaps completed, as compiling needs it: the
/// arguments copied from its two lines, so that each partition's ops are
/// read in one pass. (One that failed did not happen: compiling skips it.)
struct Paired {
    /// Positions among all the ops of its invocation and completion.
    invoke: u32,
    complete: Option<u32>,
    /// How it completed: `Ok`, `Fail`, or `Info` for a crashed op
    /// (completed `info`, or never).
    outcome: OpType,
    f: Func,
    input: Arg,
    /// The completion's value (that of an ok op is its output).
    output: Arg,
}

/// One partition: its key, and its ops in the order they were invoked.
type Part = (Option<i64>, Vec<Paired>);

/// Keys below this are found in a table rather than by hash.
const SMALL_KEYS: usize = 1 << 12;

/// Processes are numbered from 0 in Jepsen's histories; a history whose
/// numbers go past this is left to the whole check rather than given a
/// table this large.
const MAX_PROCESS: u32 = 1 << 22;

/// Pairs every invocation with its completion by `History::pairs`'s
/// rules, and sorts the ops that happened into partitions by key, block by
/// block as the text is read (on one core, beside the reading of the next
/// block: one pass over every op, which took 2.7 ms on its own after the
/// reading).
#[derive(Default)]
struct Sorter {
    /// Each key's place in `parts`: small keys (Jepsen numbers its keys
    /// from 0) in a table, any other by hash.
    small: Vec<u32>,
    slots: rustc_hash::FxHashMap<Option<i64>, u32>,
    parts: Vec<Part>,
    /// Each process's pending invocation: its partition and place there.
    pending: Vec<Option<(u32, u32)>>,
    /// The next op's position among all the ops.
    next: u64,
    /// Whether the history broke the rules (then nothing more is sorted).
    broken: bool,
}

impl Sorter {
    /// Sorts the ops of the next pieces of the text.
    fn sort(&mut self, pieces: &[Vec<Line>]) {
        for line in pieces.iter().flatten() {
            if self.broken || self.line(line).is_none() {
                self.broken = true;
                return;
            }
        }
    }

    /// The partitions in key order, each with its ops in the order they
    /// were invoked, as `run` makes them. `None` where the history broke
    /// the rules (the whole check words the error), and for an op whose key
    /// its completion alone gives (left to the whole check, which sorts it
    /// by that key).
    fn finish(self) -> Option<Vec<Part>> {
        if self.broken {
            return None;
        }
        let mut parts = self.parts;
        parts.sort_unstable_by_key(|(key, _)| *key);
        Some(parts)
    }

    fn line(&mut self, line: &Line) -> Option<()> {
        let pos = u32::try_from(self.next).ok()?;
        self.next += 1;
        if line.process >= MAX_PROCESS {
            return None;
        }
        let p = line.process as usize;
        if p >= self.pending.len() {
            self.pending.resize(p + 1, None);
        }
        match (line.kind, self.pending[p]) {
            (OpType::Invoke, None) => {
                let slot = self.slot(line.key());
                let ops = &mut self.parts[slot as usize].1;
                self.pending[p] = Some((slot, ops.len() as u32));
                ops.push(Paired {
                    invoke: pos,
                    complete: None,
                    outcome: OpType::Info,
                    f: line.f,
                    input: line.value,
                    output: line.value,
                });
            }
            // A client's `info` with nothing pending stands alone, and
            // compiles to nothing.
            (OpType::Info, None) => {}
            (OpType::Invoke, Some(_)) | (OpType::Ok | OpType::Fail, None) => return None,
            (kind, Some((slot, at))) => {
                let (key, ops) = &mut self.parts[slot as usize];
                let op = &mut ops[at as usize];
                if op.f != line.f || (key.is_none() && line.key().is_some()) {
                    return None;
                }
                op.complete = Some(pos);
                op.outcome = kind;
                op.output = line.value;
                self.pending[p] = None;
            }
        }
        Some(())
    }

    /// The place in `parts` of `key`'s partition, made when new.
    fn slot(&mut self, key: Option<i64>) -> u32 {
        let at = key.and_then(|k| usize::try_from(k).ok()).filter(|&k| k < SMALL_KEYS);
        if let Some(&slot) = at.and_then(|k| self.small.get(k)).filter(|&&s| s != u32::MAX) {
            return slot;
        }
        let parts = &mut self.parts;
        let slot = *self.slots.entry(key).or_insert_with(|| {
            parts.push((key, Vec::new()));
            (parts.len() - 1) as u32
        });
        if let Some(k) = at {
            if self.small.len() <= k {
                self.small.resize(k + 1, u32::MAX);
            }
            self.small[k] = slot;
        }
        slot
    }
}

/// Compiles and readies each partition on any core, as `compile_apart`
/// does; `None` when an op does not compile (the whole check words why).
fn compile(
    cfg: &Settings,
    kind: &RegisterKind,
    parts: Vec<Part>,
) -> Option<Readied<<RegisterKind as ModelKind>::M>> {
    let forks: Vec<_> =
        parts.into_iter().map(|part| Some((kind.fork()?, part))).collect::<Option<_>>()?;
    let done: Vec<Option<_>> = forks
        .into_par_iter()
        .map(|(mut kind, (key, ops))| {
            let key = key.map(Value::Int);
            let mut entries = Vec::with_capacity(ops.len());
            let mut metas = Vec::with_capacity(ops.len());
            let mut observations = 0usize;
            // Failed ops did not happen.
            for op in ops.iter().filter(|op| op.outcome != OpType::Fail) {
                let ok = op.outcome == OpType::Ok;
                let f = op.f.name();
                let input = op.input.value();
                let output = ok.then(|| op.output.value());
                observations +=
                    usize::from(output.as_ref().is_some_and(|out| kind.observes(f, out)));
                let call = Call::new(f, key.as_ref(), &input, output.as_ref());
                let Some(compiled) = kind.compile(&call).ok()? else { continue };
                let ret = if ok { op.complete } else { None };
                entries.push(Entry {
                    call: op.invoke,
                    ret,
                    op: compiled,
                    id: entries.len() as u32,
                });
                let complete = op.complete.map(|c| c as usize);
                metas.push(Meta { invoke: op.invoke as usize, complete });
            }
            let job = (!entries.is_empty()).then(|| prepare(cfg, &mut kind, key, entries, metas));
            Some((job, observations))
        })
        .collect();
    let mut readied = Readied { jobs: Vec::new(), observations: 0, unobservable: 0 };
    for part in done {
        let (job, observations) = part?;
        readied.observations += observations;
        if let Some((job, dropped)) = job {
            readied.unobservable += dropped;
            readied.jobs.push(job);
        }
    }
    Some(readied)
}
