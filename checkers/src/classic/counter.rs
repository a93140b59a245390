//! `counter`: increments (`add` with a delta, usually positive) and reads.
//! Each read must lie between what was certainly applied when it began and
//! what could have been applied by the time it ended: the acknowledged adds
//! that completed before the read was invoked always count; adds that were
//! invoked before the read completed and did not fail may or may not.

use std::time::Instant;

use serde_json::json;

use super::{intervals, wide};
use crate::budget::Budget;
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::spec::CheckSpec;
use crate::text::first_few;
use crate::verdict::{Anomaly, Checker, HtmlPage, Validity, Verdict};

/// The `counter` checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct CounterChecker {
    /// Violations explained at most.
    pub limit: usize,
    /// Time and memory limits.
    pub budget: Budget,
}

impl CounterChecker {
    /// From `--opt max-anomalies=N` and the budget.
    pub fn from_spec(spec: &CheckSpec) -> Result<CounterChecker, CheckError> {
        Ok(CounterChecker { limit: spec.max_anomalies()?, budget: spec.budget })
    }
}

impl Checker for CounterChecker {
    fn name(&self) -> &str {
        "counter"
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let started = Instant::now();
        let meter = self.budget.start();
        let ops = intervals(history)?;
        // Sweep the history: at a read's invocation note what is certain; at
        // its completion, what was attempted.
        enum Ev {
            AddInvoked(i128),
            AddAcked(i128),
            ReadInvoked(usize),
            ReadDone(usize),
        }
        let mut events: Vec<(usize, Ev)> = Vec::new();
        let mut reads = Vec::new();
        for op in &ops {
            match op.inv.f.as_str() {
                "add" | "increment" => {
                    if op.outcome == OpType::Fail {
                        continue;
                    }
                    let delta = match &op.inv.value {
                        crate::value::Value::Nil if op.inv.f == "increment" => 1,
                        v => v.as_int().ok_or_else(|| CheckError::BadOp {
                            location: history.locate(op.invoke).field("value"),
                            message: format!(
                                "the counter checker expects a 64-bit integer delta, not {v}"
                            ),
                        })?,
                    };
                    // Sums are kept in 128 bits: a history's deltas are
                    // 64-bit, and their sum must not wrap.
                    let delta = i128::from(delta);
                    events.push((op.invoke, Ev::AddInvoked(delta)));
                    if op.outcome == OpType::Ok {
                        events.push((op.complete, Ev::AddAcked(delta)));
                    }
                }
                "read" if op.outcome == OpType::Ok => {
                    let value = op.result().as_int().ok_or_else(|| CheckError::BadOp {
                        location: history.locate(op.complete).field("value"),
                        message: format!(
                            "the counter checker expects a read to return a 64-bit integer, not {}",
                            op.result()
                        ),
                    })?;
                    let r = reads.len();
                    reads.push((op, i128::from(value), 0i128, 0i128, 0i128));
                    events.push((op.invoke, Ev::ReadInvoked(r)));
                    events.push((op.complete, Ev::ReadDone(r)));
                }
                _ => {}
            }
        }
        if reads.is_empty() {
            // Without a read nothing observed the counter: a history of
            // increments alone cannot show one lost.
            let mut v = Verdict::unknown(
                "counter",
                "no read to judge",
                format!(
                    "no read completed ok, so nothing observed the counter ({} increments \
                     attempted)",
                    events.iter().filter(|e| matches!(e.1, Ev::AddInvoked(_))).count()
                ),
            );
            v.elapsed = started.elapsed();
            return Ok(v);
        }
        events.sort_by_key(|e| e.0);
        // Sums of acknowledged (positive and negative parts) and attempted deltas.
        let (mut acked_pos, mut acked_neg, mut tried_pos, mut tried_neg) =
            (0i128, 0i128, 0i128, 0i128);
        // For each read: certain sum and its parts at invocation.
        let mut at_invoke: Vec<(i128, i128)> = vec![(0, 0); reads.len()];
        for (_, ev) in &events {
            if let Some(reason) = meter.tick() {
                return Ok(Verdict::out_of_budget("counter", reason, started.elapsed()));
            }
            match *ev {
                Ev::AddInvoked(d) => {
                    if d >= 0 {
                        tried_pos += d
                    } else {
                        tried_neg += d
                    }
                }
                Ev::AddAcked(d) => {
                    if d >= 0 {
                        acked_pos += d
                    } else {
                        acked_neg += d
                    }
                }
                Ev::ReadInvoked(r) => at_invoke[r] = (acked_pos, acked_neg),
                Ev::ReadDone(r) => {
                    let (cp, cn) = at_invoke[r];
                    let certain = cp + cn;
                    // Possible: attempted by now, beyond what was certain.
                    reads[r].2 = certain + (tried_neg - cn);
                    reads[r].3 = certain + (tried_pos - cp);
                    reads[r].4 = certain;
                }
            }
        }
        let bad: Vec<_> = reads.iter().filter(|(_, v, lo, hi, _)| v < lo || v > hi).collect();
        let anomalies: Vec<Anomaly> = bad
            .iter()
            .take(self.limit.max(1))
            .map(|(op, v, lo, hi, certain)| Anomaly {
                kind: if v < lo { "lost-increments" } else { "unexpected-increments" }.into(),
                explanation: {
                    let must = if lo == hi {
                        format!("must be {lo}")
                    } else {
                        format!("must lie between {lo} and {hi}")
                    };
                    let mut why = format!(
                        "acknowledged increments completed before it began sum to {certain}"
                    );
                    if hi > certain {
                        why.push_str(&format!(
                            ", and those still in flight could add up to {}",
                            hi - certain
                        ));
                    }
                    if lo < certain {
                        why.push_str(&format!(", or take away up to {}", certain - lo));
                    }
                    if lo == hi {
                        why.push_str(", and no other increment was in flight");
                    }
                    format!(
                        "op {} (process {}) read {v}, but it {must}: {why}.",
                        op.index(),
                        op.inv.process
                    )
                },
                ops: vec![op.index()],
                data: json!({"read": op.index(), "value": wide(*v), "lower": wide(*lo), "upper": wide(*hi)}),
            })
            .collect();
        let validity = if bad.is_empty() { Validity::Valid } else { Validity::Invalid };
        let summary = if bad.is_empty() {
            format!("all {} reads lie within their bounds", reads.len())
        } else {
            let ops: Vec<u64> = bad.iter().map(|b| b.0.index()).collect();
            format!("{} of {} reads out of bounds ({})", bad.len(), reads.len(), first_few(&ops, 5))
        };
        let mut v = Verdict::new("counter", validity, summary);
        v.anomalies = anomalies;
        v.details = json!({
            "reads": reads.iter().map(|(op, v, lo, hi, _)| json!([op.index(), op.inv.time, wide(*v), wide(*lo), wide(*hi)])).collect::<Vec<_>>(),
            "errors": bad.len(),
            "acknowledged_sum": wide(acked_pos + acked_neg),
            "attempted_sum": wide(tried_pos + tried_neg),
        });
        v.elapsed = started.elapsed();
        Ok(v)
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let mut body = super::page_head("Counter", verdict);
        if let Some(reads) = verdict.details["reads"].as_array() {
            body.push_str("<h2>Reads and their bounds</h2>\n<p class=\"muted\">Each read is a dot (red when out of bounds) with a bar from its lower to its upper bound, in history order.</p>\n");
            body.push_str(&bounds_plot(reads));
        }
        vec![HtmlPage { name: "counter".into(), title: "Counter".into(), body }]
    }
}

/// Reads (`[op, time, value, lower, upper]`) as dots within their bound bars.
fn bounds_plot(reads: &[serde_json::Value]) -> String {
    let pts: Vec<(f64, f64, f64)> = reads
        .iter()
        .map(|r| {
            (
                r[2].as_f64().unwrap_or(0.0),
                r[3].as_f64().unwrap_or(0.0),
                r[4].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    if pts.is_empty() {
        return String::new();
    }
    let lo = pts.iter().map(|p| p.0.min(p.1)).fold(f64::INFINITY, f64::min);
    let hi = pts.iter().map(|p| p.0.max(p.2)).fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).max(1.0);
    let (w, h, pad) = (900.0, 300.0, 30.0);
    let x = |i: usize| pad + (w - 2.0 * pad) * (i as f64 + 0.5) / pts.len() as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * (v - lo) / span;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">\n\
         <text x=\"2\" y=\"{:.0}\" font-size=\"11\">{hi}</text><text x=\"2\" y=\"{:.0}\" font-size=\"11\">{lo}</text>\n",
        pad,
        h - pad
    );
    for (i, (v, l, u)) in pts.iter().enumerate().take(5000) {
        let bad = v < l || v > u;
        svg.push_str(&format!(
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#b0bec5\" stroke-width=\"2\"/>\
             <circle cx=\"{0:.1}\" cy=\"{3:.1}\" r=\"2.5\" fill=\"{4}\"/>\n",
            x(i),
            y(*l),
            y(*u),
            y(*v),
            if bad { "#e53935" } else { "#1e88e5" }
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
