//! `long-fork`: writes insert single keys (`[[:w k v]]`, each key once);
//! reads read a group of keys in one transaction (`[[:r k1 nil] [:r k2 nil]]`).
//! Under snapshot isolation (or anything stronger) all reads of a group see
//! the inserts in one order, so their sets of visible keys form a chain.
//! Two reads where each saw an insert the other missed are a *long fork*:
//! they observed two independent writes in opposite orders.
//!
//! Reads are grouped by the keys they read. Within a group, sorting by how
//! many keys each saw and checking each neighbour pair for inclusion finds a
//! fork whenever one exists, in O(r log r) per group.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde_json::json;

use super::{Halt, Limits, Pass, judged, run};
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::spec::CheckSpec;
use crate::txn::{MicroOp, parse_txn};
use crate::value::Value;
use crate::verdict::{Anomaly, Checker, HtmlPage, Verdict};

/// The `long-fork` checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct LongForkChecker(pub Limits);

impl LongForkChecker {
    /// From `--opt max-anomalies=N` and the budget.
    pub fn from_spec(spec: &CheckSpec) -> Result<LongForkChecker, CheckError> {
        Limits::from_spec(spec).map(LongForkChecker)
    }
}

/// Reads grouped by the keys they read (sorted): each as its op index and
/// which of the group's keys it saw.
type Groups = BTreeMap<Vec<Value>, Vec<(u64, Vec<bool>)>>;

/// The op that inserted each key, and the multi-key reads by group.
fn inserts_and_reads(pass: &Pass<'_>) -> Result<(FxHashMap<Value, u64>, Groups), Halt> {
    let mut writer: FxHashMap<Value, u64> = FxHashMap::default();
    let mut groups = Groups::new();
    for op in pass.ops.iter().filter(|op| op.outcome != OpType::Fail) {
        pass.tick()?;
        let location = || pass.history.locate(op.complete).field("value");
        let txn = parse_txn(op.result()).map_err(|e| CheckError::BadOp {
            location: location(),
            message: format!("long-fork reads transactions of [:w k v] and [:r k v]: {e}"),
        })?;
        let mut reads: Vec<(Value, bool)> = Vec::new();
        for m in txn {
            match m {
                MicroOp::Write { key, .. } | MicroOp::Append { key, .. } => {
                    if let Some(first) = writer.insert(key.clone(), op.index()) {
                        return Err(Halt::Bad(CheckError::BadOp {
                            location: location(),
                            message: format!(
                                "key {key} is written again (first by op {first}); long-fork needs each key \
                                 inserted once"
                            ),
                        }));
                    }
                }
                MicroOp::Read { key, value } if op.outcome == OpType::Ok => {
                    reads.push((key, !value.is_nil()))
                }
                MicroOp::Read { .. } => {}
            }
        }
        if reads.len() < 2 {
            continue;
        }
        reads.sort();
        reads.dedup_by(|a, b| a.0 == b.0);
        let keys: Vec<Value> = reads.iter().map(|r| r.0.clone()).collect();
        groups.entry(keys).or_default().push((op.index(), reads.iter().map(|r| r.1).collect()));
    }
    Ok((writer, groups))
}

/// Within each group, reads sorted by how many keys they saw must form a
/// chain; each neighbour pair that does not is a fork, as (a key only the
/// first saw, a key only the second saw, the two reads).
fn forks(groups: &mut Groups) -> Vec<(Value, Value, u64, u64)> {
    let mut forks = Vec::new();
    for (keys, reads) in groups {
        reads.sort_by_key(|(op, seen)| (seen.iter().filter(|s| **s).count(), *op));
        for pair in reads.windows(2) {
            let ((ra, a), (rb, b)) = (&pair[0], &pair[1]);
            if let Some(i) = (0..keys.len()).find(|&i| a[i] && !b[i]) {
                // b saw at least as many keys, so it saw one a missed.
                let j = (0..keys.len()).find(|&j| b[j] && !a[j]).unwrap_or(i);
                forks.push((keys[i].clone(), keys[j].clone(), *ra, *rb));
            }
        }
    }
    forks
}

impl LongForkChecker {
    fn judge(&self, pass: &Pass<'_>) -> Result<Verdict, Halt> {
        let (writer, mut groups) = inserts_and_reads(pass)?;
        let read_count: usize = groups.values().map(Vec::len).sum();
        let forks = forks(&mut groups);
        let anomalies = forks
            .iter()
            .take(self.0.max_anomalies)
            .map(|(x, y, ra, rb)| {
                let wx = writer.get(x).map_or("an unrecorded write".into(), |o| format!("op {o}"));
                let wy = writer.get(y).map_or("an unrecorded write".into(), |o| format!("op {o}"));
                Anomaly {
                    kind: "long-fork".into(),
                    explanation: format!(
                        "op {ra} saw the insert of {x} ({wx}) but not that of {y}; op {rb} saw {y} ({wy}) but not {x}. \
                         The two reads observed independent inserts in opposite orders, so no single order of \
                         transactions explains both."
                    ),
                    ops: [Some(*ra), Some(*rb), writer.get(x).copied(), writer.get(y).copied()].into_iter().flatten().collect(),
                    data: json!({"reads": [ra, rb], "keys": [x, y]}),
                }
            })
            .collect();
        let summary = if forks.is_empty() {
            format!(
                "{read_count} multi-key reads in {} groups all agree on one order of inserts",
                groups.len()
            )
        } else {
            format!(
                "{} long fork{} among {read_count} multi-key reads",
                forks.len(),
                if forks.len() == 1 { "" } else { "s" }
            )
        };
        let unobserved = (read_count < 2).then_some("fewer than two ok reads of several keys");
        let mut v = judged("long-fork", !forks.is_empty(), unobserved, summary);
        v.anomalies = anomalies;
        v.details = json!({"reads": read_count, "groups": groups.len(), "forks": forks.len(), "inserts": writer.len()});
        Ok(v)
    }
}

impl Checker for LongForkChecker {
    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        run(self.name(), self.0.budget, history, |pass| self.judge(pass))
    }

    fn name(&self) -> &str {
        "long-fork"
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let body = super::page_head("Long fork", verdict);
        vec![HtmlPage { name: "long-fork".into(), title: "Long fork".into(), body }]
    }
}
