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

use crate::error::CheckError;
use crate::history::{History, Op, OpType, Process};
use crate::html::escape;
use crate::value::Value;
use crate::verdict::Verdict;

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

impl Interval<'_> {
    /// The op index that names this operation: its completion's, else its invocation's.
    pub fn index(&self) -> u64 {
        self.done.unwrap_or(self.inv).index
    }

    /// The completion's value when it completed ok, else the invocation's.
    pub fn result(&self) -> &Value {
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

/// A 128-bit sum as JSON: a number while it fits in 64 bits (every real
/// history), else its digits as a string, since JSON numbers beyond 64
/// bits do not survive most readers.
pub(crate) fn wide(x: i128) -> serde_json::Value {
    match i64::try_from(x) {
        Ok(i) => serde_json::Value::from(i),
        Err(_) => serde_json::Value::from(x.to_string()),
    }
}
