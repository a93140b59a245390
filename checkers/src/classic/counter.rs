//! `counter`: increments (`add` with a delta, usually positive) and reads.
//! Each read must lie between what was certainly applied when it began and
//! what could have been applied by the time it ended: the acknowledged adds
//! that completed before the read was invoked always count; adds that were
//! invoked before the read completed and did not fail may or may not. A
//! counter starts at 0, so a read of nil (nothing reached that replica yet)
//! counts as 0.

use serde_json::json;

use super::{Halt, Interval, Limits, Pass, run, wide};
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::spec::CheckSpec;
use crate::text::first_few;
use crate::value::Value;
use crate::verdict::{Anomaly, Checker, HtmlPage, Validity, Verdict};

/// The `counter` checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct CounterChecker(pub Limits);

impl CounterChecker {
    /// From `--opt max-anomalies=N` and the budget.
    pub fn from_spec(spec: &CheckSpec) -> Result<CounterChecker, CheckError> {
        Limits::from_spec(spec).map(CounterChecker)
    }
}

/// What moves the bounds, at a history position. Sums are kept in 128
/// bits: a history's deltas are 64-bit, and their sum must not wrap.
enum Ev {
    AddInvoked(i128),
    AddAcked(i128),
    ReadInvoked(usize),
    ReadDone(usize),
}

/// Events at their history positions.
type Events = Vec<(usize, Ev)>;

/// An ok read and the bounds it is held to.
struct Read<'h> {
    op: Interval<'h>,
    value: i128,
    /// The least the counter could hold: what was certain, less every
    /// decrement in flight.
    lower: i128,
    /// The most: what was certain, plus every increment in flight.
    upper: i128,
    /// The acknowledged adds completed before the read began.
    certain: i128,
}

impl Read<'_> {
    fn out_of_bounds(&self) -> bool {
        self.value < self.lower || self.value > self.upper
    }
}

/// Every add that did not fail, and every ok read, as events at their
/// history positions (unsorted).
fn events<'h>(pass: &Pass<'h>) -> Result<(Events, Vec<Read<'h>>), Halt> {
    let mut events = Vec::new();
    let mut reads = Vec::new();
    for op in &pass.ops {
        match op.inv.f.as_str() {
            "add" | "increment" if op.outcome != OpType::Fail => {
                let delta = match &op.inv.value {
                    Value::Nil if op.inv.f == "increment" => 1,
                    v => v.as_int().ok_or_else(|| CheckError::BadOp {
                        location: pass.history.locate(op.invoke).field("value"),
                        message: format!(
                            "the counter checker expects a 64-bit integer delta, not {v}"
                        ),
                    })?,
                };
                events.push((op.invoke, Ev::AddInvoked(i128::from(delta))));
                if op.outcome == OpType::Ok {
                    events.push((op.complete, Ev::AddAcked(i128::from(delta))));
                }
            }
            "read" if op.outcome == OpType::Ok => {
                // A counter starts at 0: a store that has no value for it
                // yet (no increment reached that replica) answers nil,
                // which is that 0, and is still held to the bounds.
                let value = match op.result() {
                    Value::Nil => Some(0),
                    v => v.as_int(),
                };
                let value = value.ok_or_else(|| CheckError::BadOp {
                    location: pass.history.locate(op.complete).field("value"),
                    message: format!(
                        "the counter checker expects a read to return a 64-bit integer, not {}",
                        op.result()
                    ),
                })?;
                events.push((op.invoke, Ev::ReadInvoked(reads.len())));
                events.push((op.complete, Ev::ReadDone(reads.len())));
                // The bounds are set by the sweep, at the read's completion.
                reads.push(Read {
                    op: *op,
                    value: i128::from(value),
                    lower: 0,
                    upper: 0,
                    certain: 0,
                });
            }
            _ => {}
        }
    }
    Ok((events, reads))
}

/// Sweeps the events in history order: at a read's invocation it notes
/// what is certain; at its completion, what was attempted by then. Returns
/// the acknowledged and the attempted sums.
fn sweep(
    pass: &Pass<'_>,
    events: &[(usize, Ev)],
    reads: &mut [Read<'_>],
) -> Result<(i128, i128), Halt> {
    // Sums of acknowledged and attempted deltas, positive and negative parts apart.
    let (mut acked_pos, mut acked_neg, mut tried_pos, mut tried_neg) = (0i128, 0i128, 0i128, 0i128);
    // For each read: the certain sum's parts at its invocation.
    let mut at_invoke: Vec<(i128, i128)> = vec![(0, 0); reads.len()];
    for (_, ev) in events {
        pass.tick()?;
        match *ev {
            Ev::AddInvoked(d) if d >= 0 => tried_pos += d,
            Ev::AddInvoked(d) => tried_neg += d,
            Ev::AddAcked(d) if d >= 0 => acked_pos += d,
            Ev::AddAcked(d) => acked_neg += d,
            Ev::ReadInvoked(r) => at_invoke[r] = (acked_pos, acked_neg),
            Ev::ReadDone(r) => {
                let (cp, cn) = at_invoke[r];
                let certain = cp + cn;
                // Possible: attempted by now, beyond what was certain.
                reads[r].lower = certain + (tried_neg - cn);
                reads[r].upper = certain + (tried_pos - cp);
                reads[r].certain = certain;
            }
        }
    }
    Ok((acked_pos + acked_neg, tried_pos + tried_neg))
}

/// A read out of its bounds, in words: what it read, what it had to read,
/// and why.
fn violation(read: &Read<'_>) -> Anomaly {
    let Read { op, value: v, lower: lo, upper: hi, certain } = read;
    let must =
        if lo == hi { format!("must be {lo}") } else { format!("must lie between {lo} and {hi}") };
    let mut why = format!("acknowledged increments completed before it began sum to {certain}");
    if hi > certain {
        why.push_str(&format!(", and those still in flight could add up to {}", hi - certain));
    }
    if lo < certain {
        why.push_str(&format!(", or take away up to {}", certain - lo));
    }
    if lo == hi {
        why.push_str(", and no other increment was in flight");
    }
    Anomaly {
        kind: if v < lo { "lost-increments" } else { "unexpected-increments" }.into(),
        explanation: format!(
            "op {} (process {}) read {v}, but it {must}: {why}.",
            op.index(),
            op.inv.process
        ),
        ops: vec![op.index()],
        data: json!({"read": op.index(), "value": wide(*v), "lower": wide(*lo), "upper": wide(*hi)}),
    }
}

impl CounterChecker {
    fn judge(&self, pass: &Pass<'_>) -> Result<Verdict, Halt> {
        let (mut events, mut reads) = events(pass)?;
        if reads.is_empty() {
            // Without a read nothing observed the counter: a history of
            // increments alone cannot show one lost.
            let adds = events.iter().filter(|e| matches!(e.1, Ev::AddInvoked(_))).count();
            return Ok(Verdict::unknown(
                "counter",
                "no read to judge",
                format!(
                    "no read completed ok, so nothing observed the counter ({adds} increments \
                     attempted)"
                ),
            ));
        }
        events.sort_by_key(|e| e.0);
        let (acknowledged, attempted) = sweep(pass, &events, &mut reads)?;
        let bad: Vec<&Read<'_>> = reads.iter().filter(|r| r.out_of_bounds()).collect();
        let validity = if bad.is_empty() { Validity::Valid } else { Validity::Invalid };
        let summary = if bad.is_empty() {
            format!("all {} reads lie within their bounds", reads.len())
        } else {
            let ops: Vec<u64> = bad.iter().map(|r| r.op.index()).collect();
            format!("{} of {} reads out of bounds ({})", bad.len(), reads.len(), first_few(&ops, 5))
        };
        let mut v = Verdict::new("counter", validity, summary);
        v.anomalies = bad.iter().take(self.0.max_anomalies).map(|r| violation(r)).collect();
        v.details = json!({
            "reads": reads.iter().map(|r| json!([r.op.index(), r.op.inv.time, wide(r.value), wide(r.lower), wide(r.upper)])).collect::<Vec<_>>(),
            "errors": bad.len(),
            "acknowledged_sum": wide(acknowledged),
            "attempted_sum": wide(attempted),
        });
        Ok(v)
    }
}

impl Checker for CounterChecker {
    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        run(self.name(), self.0.budget, history, |pass| self.judge(pass))
    }

    fn name(&self) -> &str {
        "counter"
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
