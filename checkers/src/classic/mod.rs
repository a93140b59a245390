//! Jepsen's classic checkers, one file each: `set`, `set-full`, `counter`,
//! `bank`, `unique-ids`, `long-fork`, `total-queue` and `stats`.
//!
//! They follow Jepsen's definitions (`jepsen.checker` and `jepsen.tests.*`)
//! so that results compare, and explain each violation in words.

pub mod bank;
pub mod counter;
pub mod long_fork;
pub mod set;
pub mod set_full;
pub mod stats;
pub mod total_queue;
pub mod unique_ids;

use std::time::Instant;

use crate::budget::{Budget, Meter};
use crate::error::CheckError;
use crate::history::{History, Op, OpType, Process};
use crate::html::escape;
use crate::spec::{CheckSpec, DEFAULT_MAX_ANOMALIES};
use crate::value::Value;
use crate::verdict::{Anomaly, Validity, Verdict};

/// What most classic checkers take from a test: how many violations they
/// explain at most (`--opt max-anomalies=N`) and their time and memory
/// budget.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Violations explained at most (of each kind, where a checker has several).
    pub max_anomalies: usize,
    /// Time and memory limits.
    pub budget: Budget,
}

impl Default for Limits {
    /// Jepsen's usual bound on explanations, and no budget.
    fn default() -> Limits {
        Limits { max_anomalies: DEFAULT_MAX_ANOMALIES, budget: Budget::default() }
    }
}

impl Limits {
    /// From `--opt max-anomalies=N` and the spec's budget.
    pub fn from_spec(spec: &CheckSpec) -> Result<Limits, CheckError> {
        Ok(Limits { max_anomalies: spec.max_anomalies()?, budget: spec.budget })
    }
}

/// Why a classic checker's pass stopped before its verdict: its budget ran
/// out (a verdict of unknown, not a failure) or the history is malformed.
pub(crate) enum Halt {
    /// The time or memory budget ran out, for this reason.
    Spent(String),
    /// The history cannot be judged by this checker.
    Bad(CheckError),
}

impl From<CheckError> for Halt {
    fn from(e: CheckError) -> Halt {
        Halt::Bad(e)
    }
}

/// One classic checker's pass over a history: its client operations as
/// intervals, and the budget's meter that long loops tick.
pub(crate) struct Pass<'h> {
    /// The history judged, for error locations.
    pub history: &'h History,
    /// Its client operations, in invocation order.
    pub ops: Vec<Interval<'h>>,
    meter: Meter,
}

impl Pass<'_> {
    /// Counts one step of work; stops the pass when the budget is spent.
    pub fn tick(&self) -> Result<(), Halt> {
        match self.meter.tick() {
            Some(reason) => Err(Halt::Spent(reason)),
            None => Ok(()),
        }
    }
}

/// Runs `judge` over `history` as the checker `name`: the bookkeeping every
/// classic checker shares (intervals, budget, elapsed time, and an unknown
/// verdict that says why when the budget runs out) in one place.
pub(crate) fn run<'h>(
    name: &str,
    budget: Budget,
    history: &'h History,
    judge: impl FnOnce(&Pass<'h>) -> Result<Verdict, Halt>,
) -> Result<Verdict, CheckError> {
    let started = Instant::now();
    let pass = Pass { history, ops: intervals(history)?, meter: budget.start() };
    match judge(&pass) {
        Ok(mut v) => {
            v.elapsed = started.elapsed();
            Ok(v)
        }
        Err(Halt::Spent(reason)) => Ok(Verdict::out_of_budget(name, reason, started.elapsed())),
        Err(Halt::Bad(e)) => Err(e),
    }
}

/// A classic checker's verdict before its anomalies and details: invalid
/// when it found a violation, else unknown (saying `unobserved`) when the
/// history observed nothing it could judge, else valid.
pub(crate) fn judged(
    name: &str,
    invalid: bool,
    unobserved: Option<&str>,
    summary: String,
) -> Verdict {
    match (invalid, unobserved) {
        (true, _) => Verdict::new(name, Validity::Invalid, summary),
        (false, Some(why)) => {
            let mut v = Verdict::new(name, Validity::Unknown, summary);
            v.unknown_reason = Some(why.to_owned());
            v
        }
        (false, None) => Verdict::new(name, Validity::Valid, summary),
    }
}

/// A client operation as an interval, with its outcome.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Interval<'a> {
    /// The invocation.
    pub inv: &'a Op,
    /// The completion, if one came.
    pub done: Option<&'a Op>,
    /// Its history positions.
    pub invoke: usize,
    /// Position of the completion (of the invocation when there is none).
    pub complete: usize,
    /// ok, fail or info (info also when the history ended first).
    pub outcome: OpType,
}

impl<'a> Interval<'a> {
    /// The op index that names this operation: its completion's, else its invocation's.
    pub fn index(&self) -> u64 {
        self.done.unwrap_or(self.inv).index
    }

    /// The completion's value when it completed ok, else the invocation's.
    pub fn result(&self) -> &'a Value {
        match (self.outcome, self.done) {
            (OpType::Ok, Some(d)) => &d.value,
            _ => &self.inv.value,
        }
    }
}

/// The client operations of `history`, in invocation order.
pub(crate) fn intervals(history: &History) -> Result<Vec<Interval<'_>>, CheckError> {
    let ops = history.ops();
    Ok(history
        .pairs()?
        .into_iter()
        .filter(|p| ops[p.invoke].process != Process::Nemesis)
        .map(|p| {
            let done = p.complete.filter(|&c| c != p.invoke);
            Interval {
                inv: &ops[p.invoke],
                done: done.map(|c| &ops[c]),
                invoke: p.invoke,
                complete: done.unwrap_or(p.invoke),
                outcome: history.outcome(&p),
            }
        })
        .collect())
}

/// The top of a classic checker's page: its title, the verdict's summary,
/// and each anomaly under its kind, so a reader sees what was found before
/// the pictures that give it context.
pub(crate) fn page_head(title: &str, verdict: &Verdict) -> String {
    let mut body = format!(
        "<h1>{}</h1>\n<p class=\"{}\">{}</p>\n",
        escape(title),
        verdict.validity.as_str(),
        escape(&verdict.summary)
    );
    for a in &verdict.anomalies {
        body.push_str(&format!(
            "<h2>{}</h2>\n<div class=\"explanation\">{}</div>\n",
            escape(&a.kind),
            escape(&a.explanation)
        ));
    }
    body
}

/// An anomaly about some elements (lost, unexpected, stale...), naming
/// them all in its data; `ops` are the operations that show it.
pub(crate) fn about_elements<'a>(
    kind: &str,
    explanation: String,
    ops: Vec<u64>,
    elements: impl IntoIterator<Item = &'a Value>,
) -> Anomaly {
    let elements: Vec<&Value> = elements.into_iter().collect();
    Anomaly {
        kind: kind.into(),
        explanation,
        ops,
        data: serde_json::json!({ "elements": elements }),
    }
}

/// A 128-bit sum as JSON: a number while it fits in 64 bits (every real
/// history), else its digits as a string, since JSON numbers beyond 64
/// bits do not survive most readers.
pub(crate) fn wide(x: i128) -> serde_json::Value {
    match i64::try_from(x) {
        Ok(i) => serde_json::Value::from(i),
        Err(_) => serde_json::Value::from(x.to_string()),
    }
}
