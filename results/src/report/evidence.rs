//! The "violations" part of a report: each checker's verdict, each anomaly
//! explained in words, the operations it names (drawn, and linked to the
//! timeline), and a picture.
//!
//! The picture comes from the checker itself (`Checker::render_html`) when
//! the checker table the report is drawn with has it (built-in or plugin):
//! it knows its evidence best (the cycle of an Elle anomaly, the failing
//! linearization of a register). A verdict from a checker the table does
//! not have (another program's plugin, or a newer faultline) is drawn from
//! its structured data instead: cycles as rings of operations, element
//! lists (lost, unexpected...) as lists, the rest as JSON.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use checkers::html::escape;
use checkers::registry::{CheckSpec, CheckerTable};
use checkers::{Anomaly, History, HtmlPage, Process, Validity, Verdict};

use crate::intervals::Intervals;
use crate::report::plots::{fault_colour, outcome_colour};
use crate::run_results::RunResults;

/// Anomalies drawn in full per verdict; the rest are listed in a table.
const FULL_ANOMALIES: usize = 40;
/// Rows in the table of remaining anomalies.
const LISTED_ANOMALIES: usize = 1000;
/// Operations drawn in one anomaly's picture.
const PICTURE_OPS: usize = 40;
/// Op links listed per anomaly.
const LINKED_OPS: usize = 200;

/// Every op index any anomaly names.
pub fn referenced_ops(results: &RunResults) -> BTreeSet<u64> {
    results
        .verdicts()
        .iter()
        .flat_map(|v| v.anomalies.iter().flat_map(|a| a.ops.iter().copied()))
        .collect()
}

/// Maps op indices to history positions and positions to intervals, for the
/// few ops that anomalies name.
pub struct OpIndex<'a> {
    history: &'a History,
    iv: &'a Intervals,
    pos: HashMap<u64, usize>,
    interval: HashMap<usize, usize>,
}

impl<'a> OpIndex<'a> {
    /// Indexes the ops in `wanted`.
    pub fn new(history: &'a History, iv: &'a Intervals, wanted: &BTreeSet<u64>) -> OpIndex<'a> {
        let mut pos = HashMap::new();
        if !wanted.is_empty() {
            for (p, op) in history.ops().iter().enumerate() {
                if wanted.contains(&op.index) {
                    pos.insert(op.index, p);
                }
            }
        }
        let positions: BTreeSet<usize> = pos.values().copied().collect();
        let mut interval = HashMap::new();
        if !positions.is_empty() {
            for (i, it) in iv.items.iter().enumerate() {
                for p in std::iter::once(it.invoke).chain(it.complete) {
                    if positions.contains(&p) {
                        interval.insert(p, i);
                    }
                }
            }
        }
        OpIndex { history, iv, pos, interval }
    }
}

/// Draws the evidence of every verdict in `results`, with the checkers of
/// `table`.
pub fn violations(results: &RunResults, idx: &OpIndex<'_>, table: &CheckerTable) -> String {
    let mut out = String::new();
    let mut anomaly_no = 0usize;
    let ctx = Ctx { idx, table };
    for check in &results.checks {
        walk(&check.verdict, &check.spec, &ctx, &mut out, &mut anomaly_no);
    }
    if out.is_empty() {
        out.push_str("<p class=\"valid\">No checker found a violation.</p>");
    }
    out
}

struct Ctx<'a, 'b> {
    idx: &'a OpIndex<'b>,
    table: &'a CheckerTable,
}

fn walk(v: &Verdict, spec: &CheckSpec, ctx: &Ctx<'_, '_>, out: &mut String, n: &mut usize) {
    if (v.validity != Validity::Valid && v.children.is_empty()) || !v.anomalies.is_empty() {
        verdict_section(v, spec, ctx, out, n);
    }
    for c in &v.children {
        walk(c, spec, ctx, out, n);
    }
}

/// Builds the checker that produced `v`, from the spec it ran with (a
/// composition's child from the parts of its parent's spec it takes), and
/// asks it for its pages. A checker that panics while drawing costs its
/// picture, not the report.
fn checker_pages(
    v: &Verdict,
    spec: &CheckSpec,
    history: &History,
    table: &CheckerTable,
) -> Result<Vec<HtmlPage>, String> {
    if table.get(&v.checker).is_none() {
        return Err(format!("this faultline has no checker named {:?}", v.checker));
    }
    let s = table.restrict(spec, &v.checker);
    let checker = table.build(&s).map_err(|e| e.to_string())?;
    catch_unwind(AssertUnwindSafe(|| checker.render_html(history, v))).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "no message".into());
        format!("the {} checker failed while drawing its evidence: {msg}", v.checker)
    })
}

fn verdict_section(
    v: &Verdict,
    spec: &CheckSpec,
    ctx: &Ctx<'_, '_>,
    out: &mut String,
    n: &mut usize,
) {
    let idx = ctx.idx;
    let _ = write!(
        out,
        "<section class=\"verdict\"><h3><span class=\"badge {cls}\">{cls}</span> {name}</h3><p>{summary}</p>",
        cls = v.validity.as_str(),
        name = escape(&v.checker),
        summary = escape(&v.summary)
    );
    if let Some(r) = &v.unknown_reason {
        let _ = write!(out, "<p class=\"explanation\"><b>Why unknown:</b> {}</p>", escape(r));
    }
    let pages = checker_pages(v, spec, idx.history, ctx.table);
    let drawn_by_checker = matches!(&pages, Ok(p) if !p.is_empty());
    for a in v.anomalies.iter().take(FULL_ANOMALIES) {
        *n += 1;
        anomaly(a, *n, &v.checker, idx, !drawn_by_checker, out);
    }
    if v.anomalies.len() > FULL_ANOMALIES {
        let _ = write!(
            out,
            "<h4>{} more anomalies</h4><table class=\"more\"><tr><th>kind</th><th>explanation</th><th>ops</th></tr>",
            v.anomalies.len() - FULL_ANOMALIES
        );
        for a in v.anomalies.iter().skip(FULL_ANOMALIES).take(LISTED_ANOMALIES) {
            let first = a.explanation.lines().next().unwrap_or("");
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&a.kind),
                escape(first),
                op_links(&a.ops, 8)
            );
        }
        out.push_str("</table>");
        if v.anomalies.len() > FULL_ANOMALIES + LISTED_ANOMALIES {
            let _ = write!(
                out,
                "<p class=\"muted\">…and {} more, all in results.json.</p>",
                v.anomalies.len() - FULL_ANOMALIES - LISTED_ANOMALIES
            );
        }
    }
    match pages {
        Ok(pages) => {
            for p in pages {
                let _ = write!(
                    out,
                    "<details class=\"checker-page\" open><summary>{} — drawn by the {} checker</summary>\
                     <div class=\"page-body\" id=\"page-{}-{}\">{}</div></details>",
                    escape(&p.title),
                    escape(&v.checker),
                    escape(&v.checker),
                    escape(&p.name),
                    p.body
                );
            }
        }
        Err(why) => {
            let _ = write!(
                out,
                "<p class=\"muted\">Pictures above are drawn from the verdict's data, because this \
                 faultline cannot ask the {} checker to draw them: {}.</p>",
                escape(&v.checker),
                escape(&why)
            );
        }
    }
    if !v.details.is_null() {
        let _ = write!(
            out,
            "<details><summary>details</summary><pre>{}</pre></details>",
            escape(&serde_json::to_string_pretty(&v.details).unwrap_or_default())
        );
    }
    out.push_str("</section>");
}

fn op_links(ops: &[u64], limit: usize) -> String {
    let mut s = String::new();
    for id in ops.iter().take(limit) {
        let _ = write!(s, "<a class=\"op-link\" href=\"#op-{id}\">{id}</a> ");
    }
    if ops.len() > limit {
        let _ = write!(s, "… ({} in all)", ops.len());
    }
    s
}

fn anomaly(
    a: &Anomaly,
    n: usize,
    checker: &str,
    idx: &OpIndex<'_>,
    draw_data: bool,
    out: &mut String,
) {
    let _ = write!(
        out,
        "<div class=\"anomaly\" id=\"anomaly-{n}\"><h4>{n}. {} <span class=\"muted\">({})</span></h4>\
         <div class=\"explanation\">{}</div>",
        escape(&a.kind),
        escape(checker),
        escape(&a.explanation)
    );
    if !a.ops.is_empty() {
        let _ = write!(out, "<p class=\"ops\">Operations: {}</p>", op_links(&a.ops, LINKED_OPS));
        out.push_str(&ops_picture(&a.ops, idx));
    }
    if draw_data && !a.data.is_null() {
        out.push_str(&data_picture(&a.data, n));
        let _ = write!(
            out,
            "<details><summary>data</summary><pre>{}</pre></details>",
            escape(&serde_json::to_string_pretty(&a.data).unwrap_or_default())
        );
    }
    out.push_str("</div>");
}

/// The operations an anomaly names on a small timeline of their own: one
/// row per process, each op a bar labelled with its function and values,
/// linked to the big timeline.
pub fn ops_picture(ids: &[u64], idx: &OpIndex<'_>) -> String {
    let ops = idx.history.ops();
    let mut intervals: BTreeSet<usize> = BTreeSet::new();
    let mut nemesis: BTreeSet<usize> = BTreeSet::new();
    for id in ids {
        let Some(&p) = idx.pos.get(id) else { continue };
        if ops[p].process == Process::Nemesis {
            nemesis.insert(p);
        } else if let Some(&i) = idx.interval.get(&p) {
            intervals.insert(i);
        }
    }
    let missing = ids.iter().filter(|id| !idx.pos.contains_key(id)).count();
    let chosen: Vec<usize> = intervals.into_iter().take(PICTURE_OPS).collect();
    if chosen.is_empty() && nemesis.is_empty() {
        return if missing > 0 {
            format!("<p class=\"muted\">{missing} of these op indices are not in the history.</p>")
        } else {
            String::new()
        };
    }
    let items: Vec<_> = chosen.iter().map(|&i| idx.iv.items[i]).collect();
    let t_min = items
        .iter()
        .map(|i| i.start)
        .chain(nemesis.iter().map(|&p| time_at(idx, p)))
        .min()
        .unwrap_or(0);
    let t_max_known = items
        .iter()
        .filter_map(|i| i.end)
        .chain(items.iter().map(|i| i.start))
        .chain(nemesis.iter().map(|&p| time_at(idx, p)))
        .max()
        .unwrap_or(t_min);
    let span = (t_max_known - t_min).max(1);
    // Ops that never completed run a little past the last known time.
    let t_max = t_max_known + span / 8 + 1;
    let mut procs: Vec<u64> = items.iter().map(|i| i.process).collect();
    procs.sort_unstable();
    procs.dedup();
    let has_nemesis = !nemesis.is_empty();
    let row_h = 30.0;
    let (left, right, top) = (100.0, 990.0, 8.0);
    let rows = procs.len() + usize::from(has_nemesis);
    let h = top + rows as f64 * row_h + 8.0;
    let x =
        |t: u64| left + (t.saturating_sub(t_min)) as f64 / (t_max - t_min) as f64 * (right - left);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"ops-picture\" viewBox=\"0 0 1000 {h}\" width=\"100%\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for f in &idx.iv.faults {
        if f.end < t_min || f.start > t_max {
            continue;
        }
        let (x0, x1) = (x(f.start.max(t_min)), x(f.end.min(t_max)));
        let _ = write!(
            s,
            "<rect x=\"{x0:.1}\" y=\"0\" width=\"{:.1}\" height=\"{h}\" fill=\"{}\"><title>{}</title></rect>",
            (x1 - x0).max(1.0),
            fault_colour(&f.kind),
            escape(&f.kind)
        );
    }
    let mut row = 0usize;
    if has_nemesis {
        let y = top + row as f64 * row_h;
        let _ = write!(s, "<text x=\"4\" y=\"{:.1}\" font-size=\"11\">nemesis</text>", y + 18.0);
        for &p in &nemesis {
            let px = x(time_at(idx, p));
            let op = &ops[p];
            let _ = write!(
                s,
                "<a href=\"#op-{id}\"><line x1=\"{px:.1}\" y1=\"{y:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"#455a64\" stroke-width=\"3\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text></a>",
                y + row_h - 6.0,
                px + 4.0,
                y + 12.0,
                escape(&clip(&format!("{} {}", op.f, op.value), 40)),
                id = op.index
            );
        }
        row += 1;
    }
    for p in &procs {
        let y = top + row as f64 * row_h;
        let _ =
            write!(s, "<text x=\"4\" y=\"{:.1}\" font-size=\"11\">process {p}</text>", y + 18.0);
        for it in items.iter().filter(|i| i.process == *p) {
            let x0 = x(it.start);
            let x1 = x(it.end.unwrap_or(t_max)).max(x0 + 3.0);
            let inv = &ops[it.invoke];
            let label = match it.complete.filter(|c| *c != it.invoke) {
                Some(c) => format!("{} {} → {}", inv.f, inv.value, ops[c].value),
                None => format!("{} {} → ?", inv.f, inv.value),
            };
            let _ = write!(
                s,
                "<a href=\"#op-{id}\"><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"10\" rx=\"2\" fill=\"{}\"{}/>\
                 <text x=\"{x0:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text><title>op {id}: {} ({})</title></a>",
                y + 16.0,
                x1 - x0,
                outcome_colour(it.outcome),
                if it.end.is_none() { " opacity=\"0.5\"" } else { "" },
                y + 12.0,
                escape(&clip(&label, 60)),
                escape(&label),
                it.outcome.as_str(),
                id = inv.index
            );
        }
        row += 1;
    }
    s.push_str("</svg>");
    if missing > 0 {
        let _ = write!(
            s,
            "<p class=\"muted\">{missing} of these op indices are not in the history.</p>"
        );
    }
    s
}

fn time_at(idx: &OpIndex<'_>, pos: usize) -> u64 {
    match idx.iv.clock {
        crate::intervals::Clock::Nanos => {
            idx.history.ops()[..=pos].iter().rev().find_map(|o| o.time).unwrap_or(0)
        }
        crate::intervals::Clock::Logical => pos as u64,
    }
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// A picture of an anomaly's structured data, for checkers this build does
/// not know: a cycle of operations as a ring, lists of elements as lists.
/// `n` makes the picture's element ids unique in the page.
pub fn data_picture(data: &serde_json::Value, n: usize) -> String {
    let mut s = String::new();
    let Some(obj) = data.as_object() else { return s };
    for key in ["cycle", "edges", "steps"] {
        if let Some(edges) = obj.get(key).and_then(|v| v.as_array()).and_then(|a| cycle_edges(a)) {
            s.push_str(&ring(&edges, n));
            break;
        }
    }
    for (k, v) in obj {
        let Some(items) = v.as_array() else { continue };
        if k == "ops" || items.is_empty() || !items.iter().all(|i| !i.is_array() && !i.is_object())
        {
            continue;
        }
        let _ = write!(s, "<p class=\"elements\"><b>{}</b> ({}): ", escape(k), items.len());
        for i in items.iter().take(300) {
            let text = match i {
                serde_json::Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            let _ = write!(s, "<code class=\"chip\">{}</code> ", escape(&text));
        }
        if items.len() > 300 {
            s.push('…');
        }
        s.push_str("</p>");
    }
    s
}

/// Edges `(from op, to op, label)` from a list of `{from, to, type}` objects.
fn cycle_edges(items: &[serde_json::Value]) -> Option<Vec<(u64, u64, String)>> {
    let mut edges = Vec::new();
    for e in items {
        let o = e.as_object()?;
        let from = o.get("from").and_then(op_of)?;
        let to = o.get("to").and_then(op_of)?;
        let label = ["type", "kind", "rel", "relation", "dep"]
            .iter()
            .find_map(|k| o.get(*k).and_then(|v| v.as_str()))
            .unwrap_or("")
            .to_owned();
        edges.push((from, to, label));
    }
    (!edges.is_empty()).then_some(edges)
}

/// An op index given as a number or as an object with an `index`.
fn op_of(v: &serde_json::Value) -> Option<u64> {
    v.as_u64().or_else(|| v.get("index").and_then(|i| i.as_u64()))
}

/// A dependency cycle drawn as a ring: each op a node (linked to the
/// timeline), each edge an arrow labelled with its relation.
fn ring(edges: &[(u64, u64, String)], n: usize) -> String {
    let mut nodes: Vec<u64> = Vec::new();
    for (a, b, _) in edges {
        for n in [a, b] {
            if !nodes.contains(n) {
                nodes.push(*n);
            }
        }
    }
    let (cx, cy, r) = (250.0, 150.0, 110.0);
    let pos = |n: u64| {
        let k = nodes.iter().position(|x| *x == n).unwrap_or(0) as f64;
        let angle = -std::f64::consts::FRAC_PI_2 + k / nodes.len() as f64 * std::f64::consts::TAU;
        (cx + r * angle.cos(), cy + r * angle.sin())
    };
    let mut s = format!(
        "<svg class=\"cycle\" viewBox=\"0 0 500 300\" width=\"500\" xmlns=\"http://www.w3.org/2000/svg\">\
         <defs><marker id=\"arrow-{n}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\">\
         <path d=\"M0 0L10 5L0 10z\" fill=\"#c62828\"/></marker></defs>"
    );
    for (a, b, label) in edges {
        let ((x0, y0), (x1, y1)) = (pos(*a), pos(*b));
        // Each edge bends to its left, so that a→b and b→a stay apart.
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (nx, ny) = (dy / len, -dx / len);
        let bend = 0.18 * len;
        let (cx, cy) = ((x0 + x1) / 2.0 + nx * bend, (y0 + y1) / 2.0 + ny * bend);
        // Start and stop at the nodes' circles, along the curve's tangents.
        let along = |px: f64, py: f64, qx: f64, qy: f64| {
            let (ux, uy) = (qx - px, qy - py);
            let l = (ux * ux + uy * uy).sqrt().max(1.0);
            (px + ux / l * 22.0, py + uy / l * 22.0)
        };
        let (sx, sy) = along(x0, y0, cx, cy);
        let (ex, ey) = along(x1, y1, cx, cy);
        let _ = write!(
            s,
            "<path d=\"M{sx:.1} {sy:.1}Q{cx:.1} {cy:.1} {ex:.1} {ey:.1}\" fill=\"none\" stroke=\"#c62828\" stroke-width=\"1.6\" marker-end=\"url(#arrow-{n})\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#c62828\">{}</text>",
            (x0 + x1) / 4.0 + cx / 2.0,
            (y0 + y1) / 4.0 + cy / 2.0 + 4.0,
            escape(label)
        );
    }
    for n in &nodes {
        let (x, y) = pos(*n);
        let _ = write!(
            s,
            "<a href=\"#op-{n}\"><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"20\" fill=\"#fff\" stroke=\"#333\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">op {n}</text></a>",
            y + 4.0
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_cycles_and_element_lists_from_data() {
        let data = serde_json::json!({
            "cycle": [{"from": 3, "to": 7, "type": "ww"}, {"from": 7, "to": 3, "type": "wr"}],
            "lost": [1, 2, "x<y"],
        });
        let s = data_picture(&data, 1);
        assert!(s.contains("href=\"#op-3\"") && s.contains("href=\"#op-7\""), "{s}");
        assert!(s.contains(">ww<") && s.contains(">wr<"), "{s}");
        assert!(s.contains("<b>lost</b> (3)") && s.contains("x&lt;y"), "{s}");
        assert_eq!(data_picture(&serde_json::json!({"cycle": [{"to": 1}]}), 1), "");
    }
}
