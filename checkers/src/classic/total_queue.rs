//! `total-queue`: every acknowledged `enqueue` must come out (by `dequeue`,
//! or in the list a final `drain` returns), and only enqueued values may come
//! out. As in Jepsen, elements dequeued more than once are counted but do not
//! make the history invalid (at-least-once queues deliver twice); elements
//! whose enqueue was indeterminate or failed but that come out are recovered.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{Halt, Pass, about_elements, run};
use crate::budget::Budget;
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::spec::CheckSpec;
use crate::text::compact;
use crate::value::Value;
use crate::verdict::{Checker, HtmlPage, Validity, Verdict};

/// The `total-queue` checker, with its time and memory limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct TotalQueueChecker(pub Budget);

impl TotalQueueChecker {
    /// From the spec's budget (total-queue has no options).
    pub fn from_spec(spec: &CheckSpec) -> Result<TotalQueueChecker, CheckError> {
        Ok(TotalQueueChecker(spec.budget))
    }
}

/// What went into the queue and what came out.
#[derive(Default)]
struct Traffic<'h> {
    attempts: BTreeSet<&'h Value>,
    /// Acknowledged enqueues, with the op that enqueued each.
    acked: BTreeMap<&'h Value, u64>,
    /// What came out, with the ops that dequeued or drained each.
    out: BTreeMap<&'h Value, Vec<u64>>,
    /// Whether any dequeue or drain completed ok: without one, nothing
    /// ever looked inside the queue.
    observed: bool,
}

fn traffic<'h>(pass: &Pass<'h>) -> Result<Traffic<'h>, Halt> {
    let mut t = Traffic::default();
    for op in &pass.ops {
        pass.tick()?;
        match op.inv.f.as_str() {
            "enqueue" => {
                t.attempts.insert(&op.inv.value);
                if op.outcome == OpType::Ok {
                    t.acked.insert(&op.inv.value, op.index());
                }
            }
            "dequeue" if op.outcome == OpType::Ok => {
                t.observed = true;
                if !op.result().is_nil() {
                    t.out.entry(op.result()).or_default().push(op.index());
                }
            }
            "drain" if op.outcome == OpType::Ok => {
                t.observed = true;
                let items = op.result().as_list().ok_or_else(|| CheckError::BadOp {
                    location: pass.history.locate(op.complete).field("value"),
                    message: format!(
                        "a drain should return a list of elements, not {}",
                        op.result()
                    ),
                })?;
                for e in items {
                    t.out.entry(e).or_default().push(op.index());
                }
            }
            _ => {}
        }
    }
    Ok(t)
}

fn judge(pass: &Pass<'_>) -> Result<Verdict, Halt> {
    let Traffic { attempts, acked, out, observed } = traffic(pass)?;
    if !observed {
        return Ok(Verdict::unknown(
            "total-queue",
            "the queue was never read",
            format!(
                "no dequeue or drain completed ok, so nothing observed what the queue held \
                 ({} enqueues attempted, {} acknowledged)",
                attempts.len(),
                acked.len()
            ),
        ));
    }
    let lost: Vec<&Value> = acked.keys().filter(|e| !out.contains_key(*e)).copied().collect();
    let unexpected: Vec<&Value> = out.keys().filter(|e| !attempts.contains(*e)).copied().collect();
    let duplicated: Vec<&Value> =
        out.iter().filter(|(_, o)| o.len() > 1).map(|(e, _)| *e).collect();
    let recovered: Vec<&Value> =
        out.keys().filter(|e| attempts.contains(*e) && !acked.contains_key(*e)).copied().collect();
    let mut anomalies = Vec::new();
    if !lost.is_empty() {
        let explanation = format!(
            "{} acknowledged enqueue{} never came out of the queue: {}.",
            lost.len(),
            if lost.len() == 1 { "" } else { "s" },
            compact(lost.iter().copied())
        );
        let ops = lost.iter().map(|e| acked[e]).take(50).collect();
        anomalies.push(about_elements("lost", explanation, ops, lost.iter().copied()));
    }
    if !unexpected.is_empty() {
        let explanation = format!(
            "{} element{} came out that nobody enqueued: {}.",
            unexpected.len(),
            if unexpected.len() == 1 { "" } else { "s" },
            compact(unexpected.iter().copied())
        );
        let ops = unexpected.iter().flat_map(|e| out[e].iter().copied()).take(50).collect();
        anomalies.push(about_elements("unexpected", explanation, ops, unexpected.iter().copied()));
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
    Ok(v)
}

impl Checker for TotalQueueChecker {
    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        run(self.name(), self.0, history, judge)
    }

    fn name(&self) -> &str {
        "total-queue"
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
