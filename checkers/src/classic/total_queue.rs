//! `total-queue`: every acknowledged `enqueue` must come out (by `dequeue`,
//! or in the list a final `drain` returns), and only enqueued values may come
//! out. As in Jepsen, elements dequeued more than once are counted but do not
//! make the history invalid (at-least-once queues deliver twice); elements
//! whose enqueue was indeterminate or failed but that come out are recovered.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::json;

use super::intervals;
use crate::budget::Budget;
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::spec::CheckSpec;
use crate::text::compact;
use crate::value::Value;
use crate::verdict::{Anomaly, Checker, HtmlPage, Validity, Verdict};

/// The `total-queue` checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct TotalQueueChecker {
    /// Time and memory limits.
    pub budget: Budget,
}

impl TotalQueueChecker {
    /// From the spec's budget (total-queue has no options).
    pub fn from_spec(spec: &CheckSpec) -> Result<TotalQueueChecker, CheckError> {
        Ok(TotalQueueChecker { budget: spec.budget })
    }
}

impl Checker for TotalQueueChecker {
    fn name(&self) -> &str {
        "total-queue"
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let started = Instant::now();
        let meter = self.budget.start();
        let ops = intervals(history)?;
        let mut attempts: BTreeSet<&Value> = BTreeSet::new();
        let mut acked: BTreeMap<&Value, u64> = BTreeMap::new();
        let mut out: BTreeMap<&Value, Vec<u64>> = BTreeMap::new();
        // Whether any dequeue or drain completed ok: without one, nothing
        // ever looked inside the queue.
        let mut observed = false;
        for op in &ops {
            if let Some(reason) = meter.tick() {
                return Ok(Verdict::out_of_budget("total-queue", reason, started.elapsed()));
            }
            match op.inv.f.as_str() {
                "enqueue" => {
                    attempts.insert(&op.inv.value);
                    if op.outcome == OpType::Ok {
                        acked.insert(&op.inv.value, op.index());
                    }
                }
                "dequeue" if op.outcome == OpType::Ok => {
                    observed = true;
                    if !op.result().is_nil() {
                        out.entry(op.result()).or_default().push(op.index());
                    }
                }
                "drain" if op.outcome == OpType::Ok => {
                    observed = true;
                    let items = op.result().as_list().ok_or_else(|| CheckError::BadOp {
                        location: history.locate(op.complete).field("value"),
                        message: format!(
                            "a drain should return a list of elements, not {}",
                            op.result()
                        ),
                    })?;
                    for e in items {
                        out.entry(e).or_default().push(op.index());
                    }
                }
                _ => {}
            }
        }
        if !observed {
            let mut v = Verdict::unknown(
                "total-queue",
                "the queue was never read",
                format!(
                    "no dequeue or drain completed ok, so nothing observed what the queue held \
                     ({} enqueues attempted, {} acknowledged)",
                    attempts.len(),
                    acked.len()
                ),
            );
            v.elapsed = started.elapsed();
            return Ok(v);
        }
        let lost: Vec<&Value> = acked.keys().filter(|e| !out.contains_key(*e)).copied().collect();
        let unexpected: Vec<&Value> =
            out.keys().filter(|e| !attempts.contains(*e)).copied().collect();
        let duplicated: Vec<&Value> =
            out.iter().filter(|(_, o)| o.len() > 1).map(|(e, _)| *e).collect();
        let recovered: Vec<&Value> = out
            .keys()
            .filter(|e| attempts.contains(*e) && !acked.contains_key(*e))
            .copied()
            .collect();
        let mut anomalies = Vec::new();
        if !lost.is_empty() {
            anomalies.push(Anomaly {
                kind: "lost".into(),
                explanation: format!(
                    "{} acknowledged enqueue{} never came out of the queue: {}.",
                    lost.len(),
                    if lost.len() == 1 { "" } else { "s" },
                    compact(lost.iter().copied())
                ),
                ops: lost.iter().map(|e| acked[e]).take(50).collect(),
                data: json!({"elements": lost}),
            });
        }
        if !unexpected.is_empty() {
            anomalies.push(Anomaly {
                kind: "unexpected".into(),
                explanation: format!(
                    "{} element{} came out that nobody enqueued: {}.",
                    unexpected.len(),
                    if unexpected.len() == 1 { "" } else { "s" },
                    compact(unexpected.iter().copied())
                ),
                ops: unexpected.iter().flat_map(|e| out[e].iter().copied()).take(50).collect(),
                data: json!({"elements": unexpected}),
            });
        }
        let validity = if anomalies.is_empty() { Validity::Valid } else { Validity::Invalid };
        let summary = format!(
            "{} attempted, {} acknowledged, {} dequeued: {} lost, {} unexpected, {} duplicated, {} recovered",
            attempts.len(),
            acked.len(),
            out.len(),
            lost.len(),
            unexpected.len(),
            duplicated.len(),
            recovered.len()
        );
        let mut v = Verdict::new("total-queue", validity, summary);
        v.anomalies = anomalies;
        v.details = json!({
            "attempt_count": attempts.len(),
            "acknowledged_count": acked.len(),
            "ok_count": out.len(),
            "lost_count": lost.len(),
            "unexpected_count": unexpected.len(),
            "duplicated_count": duplicated.len(),
            "recovered_count": recovered.len(),
            "lost": compact(lost.iter().copied()),
            "unexpected": compact(unexpected.iter().copied()),
            "duplicated": compact(duplicated.iter().copied()),
            "recovered": compact(recovered.iter().copied()),
        });
        v.elapsed = started.elapsed();
        Ok(v)
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let mut body = super::page_head("Total queue", verdict);
        let d = &verdict.details;
        let items: Vec<(String, f64)> = [
            "acknowledged_count",
            "ok_count",
            "lost_count",
            "unexpected_count",
            "duplicated_count",
            "recovered_count",
        ]
        .iter()
        .map(|k| {
            (k.trim_end_matches("_count").replace("ok", "dequeued"), d[*k].as_f64().unwrap_or(0.0))
        })
        .collect();
        body.push_str(&crate::diagram::bars(&items, "elements"));
        vec![HtmlPage { name: "total-queue".into(), title: "Total queue".into(), body }]
    }
}
