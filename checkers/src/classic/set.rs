//! `set`: adds of unique elements, then a final read of the whole set. Every
//! acknowledged add must be in the read (else it is *lost*), and the read may
//! hold only elements someone tried to add (else *unexpected*). Elements whose
//! add was indeterminate or failed but that turn up are *recovered*.

use std::collections::BTreeSet;

use serde_json::json;

use super::{Halt, Interval, Pass, about_elements, run};
use crate::budget::Budget;
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::html::escape;
use crate::spec::CheckSpec;
use crate::text::compact;
use crate::value::Value;
use crate::verdict::{Checker, HtmlPage, Validity, Verdict};

/// The `set` checker, with its time and memory limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetChecker(pub Budget);

impl SetChecker {
    /// From the spec's budget (the set checker has no options).
    pub fn from_spec(spec: &CheckSpec) -> Result<SetChecker, CheckError> {
        Ok(SetChecker(spec.budget))
    }
}

/// What a set test did: the elements it tried to add, those acknowledged,
/// and its last ok read.
struct Adds<'h> {
    attempts: BTreeSet<&'h Value>,
    acked: BTreeSet<&'h Value>,
    final_read: Option<Interval<'h>>,
}

fn adds<'h>(pass: &Pass<'h>) -> Result<Adds<'h>, Halt> {
    let mut adds = Adds { attempts: BTreeSet::new(), acked: BTreeSet::new(), final_read: None };
    for op in &pass.ops {
        pass.tick()?;
        match op.inv.f.as_str() {
            "add" => {
                adds.attempts.insert(&op.inv.value);
                if op.outcome == OpType::Ok {
                    adds.acked.insert(&op.inv.value);
                }
            }
            "read"
                if op.outcome == OpType::Ok
                    && adds.final_read.is_none_or(|r| r.complete < op.complete) =>
            {
                adds.final_read = Some(*op);
            }
            _ => {}
        }
    }
    Ok(adds)
}

fn judge(pass: &Pass<'_>) -> Result<Verdict, Halt> {
    let Adds { attempts, acked, final_read } = adds(pass)?;
    let Some(read) = final_read else {
        let mut v = Verdict::new("set", Validity::Unknown, "the set was never read");
        v.unknown_reason = Some("no ok read: the final read of the whole set is missing".into());
        return Ok(v);
    };
    let Some(items) = read.result().as_list() else {
        return Err(Halt::Bad(CheckError::BadOp {
            location: pass.history.locate(read.complete).field("value"),
            message: format!(
                "the set checker expects a read to return a set or list, not {}",
                read.result()
            ),
        }));
    };
    let seen: BTreeSet<&Value> = items.iter().collect();
    let ok: BTreeSet<&Value> = seen.intersection(&attempts).copied().collect();
    let unexpected: BTreeSet<&Value> = seen.difference(&attempts).copied().collect();
    let lost: BTreeSet<&Value> = acked.difference(&seen).copied().collect();
    let recovered: BTreeSet<&Value> = ok.difference(&acked).copied().collect();
    let read_op = read.index();
    let mut anomalies = Vec::new();
    if !lost.is_empty() {
        let add_ops = pass
            .ops
            .iter()
            .filter(|o| o.inv.f == "add" && o.outcome == OpType::Ok && lost.contains(&o.inv.value))
            .map(|o| o.index());
        let explanation = format!(
            "{} acknowledged add{} missing from the final read (op {read_op}): {}.",
            lost.len(),
            if lost.len() == 1 { " is" } else { "s are" },
            compact(lost.iter().copied())
        );
        let ops = std::iter::once(read_op).chain(add_ops).collect();
        anomalies.push(about_elements("lost", explanation, ops, lost.iter().copied()));
    }
    if !unexpected.is_empty() {
        let explanation = format!(
            "The final read (op {read_op}) holds {} element{} nobody tried to add: {}.",
            unexpected.len(),
            if unexpected.len() == 1 { "" } else { "s" },
            compact(unexpected.iter().copied())
        );
        anomalies.push(about_elements(
            "unexpected",
            explanation,
            vec![read_op],
            unexpected.iter().copied(),
        ));
    }
    let validity = if anomalies.is_empty() { Validity::Valid } else { Validity::Invalid };
    let summary = format!(
        "{} attempted, {} acknowledged; the final read has {} of them: {} lost, {} recovered, {} unexpected",
        attempts.len(),
        acked.len(),
        ok.len(),
        lost.len(),
        recovered.len(),
        unexpected.len()
    );
    let mut v = Verdict::new("set", validity, summary);
    v.anomalies = anomalies;
    v.details = json!({
        "attempt_count": attempts.len(),
        "acknowledged_count": acked.len(),
        "ok_count": ok.len(),
        "lost_count": lost.len(),
        "recovered_count": recovered.len(),
        "unexpected_count": unexpected.len(),
        "final_read": read_op,
        "ok": compact(ok.iter().copied()),
        "lost": compact(lost.iter().copied()),
        "recovered": compact(recovered.iter().copied()),
        "unexpected": compact(unexpected.iter().copied()),
        "elements": attempts.iter().chain(unexpected.iter()).map(|e| {
            let state = if lost.contains(e) { "lost" }
                else if unexpected.contains(e) { "unexpected" }
                else if recovered.contains(e) { "recovered" }
                else if ok.contains(e) { "ok" }
                else { "absent" };
            json!([e, state])
        }).take(GRID_MAX).collect::<Vec<_>>(),
    });
    Ok(v)
}

impl Checker for SetChecker {
    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        run(self.name(), self.0, history, judge)
    }

    fn name(&self) -> &str {
        "set"
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let d = &verdict.details;
        let mut body = super::page_head("Set", verdict);
        if let Some(elements) = d["elements"].as_array() {
            body.push_str(&grid(elements));
        }
        vec![HtmlPage { name: "set".into(), title: "Set".into(), body }]
    }
}

/// Elements drawn in the grid at most.
const GRID_MAX: usize = 10_000;

/// One square per element, coloured by what became of it.
pub(crate) fn grid(elements: &[serde_json::Value]) -> String {
    const COLORS: [(&str, &str, &str); 8] = [
        ("ok", "#66bb6a", "acknowledged and read"),
        ("stable", "#66bb6a", "in every read from some point on"),
        ("recovered", "#42a5f5", "indeterminate or failed, but read"),
        ("lost", "#e53935", "lost"),
        ("unexpected", "#fb8c00", "never added, but read"),
        ("absent", "#cfd8dc", "not acknowledged, not read"),
        ("never-read", "#cfd8dc", "no read began after it was known"),
        ("stale", "#fdd835", "stable, but some read that began after it was known missed it"),
    ];
    let color = |s: &str| COLORS.iter().find(|c| c.0 == s).map_or("#9e9e9e", |c| c.1);
    let per_row = 100;
    let cell = 9;
    let rows = elements.len().div_ceil(per_row).max(1);
    let (w, h) = (per_row * cell + 2, rows * cell + 2);
    let mut svg = format!(
        "<h2>Every element</h2>\n<p class=\"muted\">One square per element, in order, {per_row} a row. Hover for its value.</p>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\">\n"
    );
    for (i, e) in elements.iter().enumerate() {
        let state = e[1].as_str().unwrap_or("");
        let (x, y) = ((i % per_row) * cell + 1, (i / per_row) * cell + 1);
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{} {}</title></rect>\n",
            cell - 1,
            cell - 1,
            color(state),
            escape(&e[0].to_string()),
            state
        ));
    }
    svg.push_str("</svg>\n<p>");
    let used: BTreeSet<&str> = elements.iter().filter_map(|e| e[1].as_str()).collect();
    for (name, c, what) in COLORS.iter().filter(|c| used.contains(c.0)) {
        svg.push_str(&format!(
            "<span style=\"display:inline-block;width:10px;height:10px;background:{c}\"></span> {name}: {what} &nbsp; "
        ));
    }
    svg.push_str("</p>\n");
    svg
}
