//! HTML evidence: one page per anomaly type, each anomaly with its
//! explanation and, for cycles, an SVG drawing made here (no graphviz):
//! transactions as boxes listing their micro-ops, placed on a circle in
//! cycle order, and curved arrows labelled ww, wr, rw, rt or process.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value as Json;

use super::cycles::Kind;
use super::kind_meaning;
use crate::html::escape;
use crate::verdict::{HtmlPage, Verdict};

/// What an anomaly type means, for the top of its page.
pub(crate) fn describe(kind: &str) -> String {
    if let Some(k) = Kind::all().into_iter().find(|k| k.name() == kind) {
        return kind_meaning(k);
    }
    match kind {
        "G1a" => {
            "Aborted read: a committed transaction read a value written by a transaction \
                  that failed."
        }
        "G1b" => {
            "Intermediate read: a committed transaction read a state another transaction \
                  produced and then changed again before committing."
        }
        "internal" => {
            "Internal inconsistency: a transaction read something that disagrees with \
                       its own earlier reads and writes of the same key."
        }
        "dirty-update" => {
            "Dirty update: a committed append landed right after an aborted one, \
                           so it was built on state that was never committed."
        }
        "duplicate-elements" => "Duplicate elements: a read showed one appended value twice.",
        "incompatible-order" => {
            "Incompatible orders: two reads of a key cannot both be prefixes \
                                 of one sequence of appends."
        }
        "lost-update" => {
            "Lost update: committed transactions read the same version of a key \
                          and each wrote it, so one of their updates was lost."
        }
        "future-read" => "Future read: a transaction read a value it wrote only later.",
        "garbage-read" => "Garbage read: a read returned a value no transaction ever wrote.",
        "cyclic-versions" => {
            "Cyclic versions: the version order the history implies for a key \
                              goes round in a circle."
        }
        _ => "An anomaly found by the transactional checker.",
    }
    .to_owned()
}

/// The pages for `verdict`: one per anomaly type, in the verdict's order.
pub(crate) fn pages(checker: &str, verdict: &Verdict) -> Vec<HtmlPage> {
    let mut by_kind: Vec<(&str, Vec<&crate::verdict::Anomaly>)> = Vec::new();
    for a in &verdict.anomalies {
        match by_kind.iter_mut().find(|(k, _)| *k == a.kind) {
            Some((_, list)) => list.push(a),
            None => by_kind.push((&a.kind, vec![a])),
        }
    }
    let counts: BTreeMap<String, u64> = verdict
        .details
        .get("anomaly_counts")
        .and_then(Json::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    by_kind
        .into_iter()
        .map(|(kind, list)| {
            let total = counts.get(kind).copied().unwrap_or(list.len() as u64);
            let mut body = String::new();
            let _ = write!(
                body,
                "<h1>{} — {}</h1>\n<p class=\"{}\">{}</p>\n<p>{}</p>\n<p class=\"muted\">{} found",
                escape(checker),
                escape(kind),
                // The verdict's summary names the models ruled out and those
                // still possible, which a page about one anomaly type needs.
                verdict.validity.as_str(),
                escape(&verdict.summary),
                escape(&describe(kind)),
                total
            );
            if total > list.len() as u64 {
                let _ = write!(body, "; the first {} are shown", list.len());
            }
            body.push_str(".</p>\n");
            if list.iter().any(|a| a.data.get("cycle").is_some()) {
                body.push_str(LEGEND);
            }
            for (i, a) in list.iter().enumerate() {
                let _ = write!(
                    body,
                    "<h2 id=\"{kind}-{n}\">{kind} #{n}</h2>\n<div class=\"explanation\">{}</div>\n",
                    escape(&a.explanation),
                    kind = escape(kind),
                    n = i + 1
                );
                match a.data.get("cycle").and_then(Json::as_array) {
                    Some(steps) => body.push_str(&cycle_svg(&a.data, steps)),
                    None => body.push_str(&txn_table(&a.data)),
                }
            }
            HtmlPage { name: kind.to_owned(), title: format!("{checker}: {kind} ({total})"), body }
        })
        .collect()
}

/// A table of the transactions an anomaly names.
fn txn_table(data: &Json) -> String {
    let mut out = String::from(
        "<table>\n<tr><th>name</th><th>op</th><th>process</th><th>outcome</th><th>micro-ops</th></tr>\n",
    );
    for t in data.get("txns").and_then(Json::as_array).into_iter().flatten() {
        let mops: Vec<String> = t
            .get("mops")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .map(escape)
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            escape(t.get("name").and_then(Json::as_str).unwrap_or("")),
            t.get("op").map(Json::to_string).unwrap_or_default(),
            t.get("process").map(Json::to_string).unwrap_or_default(),
            escape(t.get("type").and_then(Json::as_str).unwrap_or("")),
            mops.join("<br>")
        );
    }
    out.push_str("</table>\n");
    out
}

/// Colour of each relation's arrows.
fn colour(rel: &str) -> &'static str {
    match rel {
        "ww" => "#1565c0",
        "wr" => "#2e7d32",
        "rw" => "#c62828",
        "rt" => "#6a1b9a",
        "process" => "#ef6c00",
        _ => "#555555",
    }
}

/// The key to the arrows, once per page.
const LEGEND: &str = "<p class=\"muted\">Arrows: \
    <span style=\"color:#1565c0\">ww</span> write-write (overwrote), \
    <span style=\"color:#2e7d32\">wr</span> write-read (saw), \
    <span style=\"color:#c62828\">rw</span> read-write, dashed (missed), \
    <span style=\"color:#6a1b9a\">rt</span> real time (completed before the other began), \
    <span style=\"color:#ef6c00\">process</span> same process, in order. \
    Hover an arrow for its reason.</p>\n";

const CHAR_W: f64 = 7.4;
const LINE_H: f64 = 15.0;

/// A transaction box: its text lines and size.
struct NodeBox {
    lines: Vec<String>,
    w: f64,
    h: f64,
    x: f64,
    y: f64,
}

/// Where the ray from a box's centre towards `(tx, ty)` leaves the box.
fn exit_point(b: &NodeBox, tx: f64, ty: f64) -> (f64, f64) {
    let (dx, dy) = (tx - b.x, ty - b.y);
    let (hw, hh) = (b.w / 2.0 + 4.0, b.h / 2.0 + 4.0);
    let sx = if dx.abs() > 1e-9 { hw / dx.abs() } else { f64::INFINITY };
    let sy = if dy.abs() > 1e-9 { hh / dy.abs() } else { f64::INFINITY };
    let s = sx.min(sy).min(1.0);
    (b.x + dx * s, b.y + dy * s)
}

/// Draws a cycle: boxes on a circle in cycle order (clockwise from the top),
/// one curved arrow per step, bowed to the left of its direction so that
/// two opposite arrows between the same pair stay apart.
fn cycle_svg(data: &Json, steps: &[Json]) -> String {
    let txns: Vec<&Json> =
        data.get("txns").and_then(Json::as_array).into_iter().flatten().collect();
    // Boxes for the transactions in the cycle, in cycle order.
    let mut boxes: Vec<NodeBox> =
        steps.iter().map(|s| node_box(&txns, &name_of(s, "from"))).collect();
    place_on_circle(&mut boxes);
    let n = boxes.len().max(1);
    // Bounds, with room for the arrows' bow and labels.
    let pad = 60.0;
    let min_x = boxes.iter().map(|b| b.x - b.w / 2.0).fold(f64::INFINITY, f64::min) - pad;
    let max_x = boxes.iter().map(|b| b.x + b.w / 2.0).fold(f64::NEG_INFINITY, f64::max) + pad;
    let min_y = boxes.iter().map(|b| b.y - b.h / 2.0).fold(f64::INFINITY, f64::min) - pad;
    let max_y = boxes.iter().map(|b| b.y + b.h / 2.0).fold(f64::NEG_INFINITY, f64::max) + pad;
    let (w, h) = (max_x - min_x, max_y - min_y);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"{w:.0}\" height=\"{h:.0}\" \
         viewBox=\"{min_x:.1} {min_y:.1} {w:.1} {h:.1}\">"
    );
    svg.push_str("<defs>\n");
    for rel in ["ww", "wr", "rw", "rt", "process"] {
        let _ = writeln!(
            svg,
            "<marker id=\"arrow-{rel}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"8\" \
             markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" \
             fill=\"{}\"/></marker>",
            colour(rel)
        );
    }
    svg.push_str("</defs>\n");
    for (i, step) in steps.iter().enumerate() {
        write_arrow(&mut svg, step, &boxes[i % n], &boxes[(i + 1) % n]);
    }
    for b in &boxes {
        write_box(&mut svg, b);
    }
    svg.push_str("</svg>\n");
    svg
}

/// The string field `k` of `j`, or nothing.
fn name_of(j: &Json, k: &str) -> String {
    j.get(k).and_then(Json::as_str).unwrap_or("").to_owned()
}

/// The box of the transaction called `name`: a header (name, op, process,
/// outcome) and its micro-ops, sized to its text.
fn node_box(txns: &[&Json], name: &str) -> NodeBox {
    let t = txns.iter().find(|t| name_of(t, "name") == name);
    let mut lines = vec![match t {
        Some(t) => format!(
            "{name}  op {}  p{}  {}",
            t.get("op").map(Json::to_string).unwrap_or_default(),
            t.get("process").map(Json::to_string).unwrap_or_default(),
            name_of(t, "type")
        ),
        None => name.to_owned(),
    }];
    if let Some(t) = t {
        lines.extend(
            t.get("mops")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(Json::as_str)
                .map(str::to_owned),
        );
    }
    let chars = lines.iter().map(|l| l.chars().count()).max().unwrap_or(4) as f64;
    NodeBox {
        w: chars * CHAR_W + 16.0,
        h: lines.len() as f64 * LINE_H + 10.0,
        lines,
        x: 0.0,
        y: 0.0,
    }
}

/// Centres the boxes on a circle, in order clockwise from the top, far
/// enough apart that neighbours do not touch.
fn place_on_circle(boxes: &mut [NodeBox]) {
    let n = boxes.len().max(1);
    let widest = boxes.iter().map(|b| b.w.max(b.h)).fold(0.0, f64::max);
    let radius = if n == 1 {
        0.0
    } else {
        ((n as f64) * (widest + 70.0) / (2.0 * std::f64::consts::PI)).max(widest * 0.6 + 60.0)
    };
    for (i, b) in boxes.iter_mut().enumerate() {
        let angle = -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * i as f64 / n as f64;
        b.x = radius * angle.cos();
        b.y = radius * angle.sin();
    }
}

/// The arrow of one step from box `a` to box `b`: a curve bowed to the
/// left of travel, dashed for read-write, with its reason on hover and its
/// relation as a label at the curve's midpoint.
fn write_arrow(svg: &mut String, step: &Json, a: &NodeBox, b: &NodeBox) {
    let rel = name_of(step, "rel");
    // Control point: the chord's midpoint pushed to the left of travel.
    let (mx, my) = ((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len = (dx * dx + dy * dy).sqrt().max(1.0);
    let bow = 0.18 * len + 20.0;
    let (cx, cy) = (mx + dy / len * bow, my - dx / len * bow);
    let (sx, sy) = exit_point(a, cx, cy);
    let (ex, ey) = exit_point(b, cx, cy);
    let dash = if rel == "rw" { " stroke-dasharray=\"6 4\"" } else { "" };
    let _ = writeln!(
        svg,
        "<path d=\"M{sx:.1},{sy:.1} Q{cx:.1},{cy:.1} {ex:.1},{ey:.1}\" fill=\"none\" \
         stroke=\"{c}\" stroke-width=\"2\"{dash} marker-end=\"url(#arrow-{rel})\">\
         <title>{}</title></path>",
        escape(step.get("why").and_then(Json::as_str).unwrap_or("")),
        c = colour(&rel),
        rel = escape(&rel)
    );
    // The label sits at the curve's midpoint.
    let (lx, ly) = (0.25 * sx + 0.5 * cx + 0.25 * ex, 0.25 * sy + 0.5 * cy + 0.25 * ey);
    let lw = rel.len() as f64 * CHAR_W + 8.0;
    let _ = writeln!(
        svg,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{lw:.1}\" height=\"16\" rx=\"3\" fill=\"#ffffff\" \
         stroke=\"{c}\"/><text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\" \
         fill=\"{c}\">{}</text>",
        lx - lw / 2.0,
        ly - 8.0,
        ly + 4.0,
        escape(&rel),
        c = colour(&rel)
    );
}

/// A transaction's box with its lines, the first in bold.
fn write_box(svg: &mut String, b: &NodeBox) {
    let _ = writeln!(
        svg,
        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"6\" fill=\"#fafafa\" \
         stroke=\"#444444\"/>",
        b.x - b.w / 2.0,
        b.y - b.h / 2.0,
        b.w,
        b.h
    );
    for (j, line) in b.lines.iter().enumerate() {
        let weight = if j == 0 { " font-weight=\"bold\"" } else { "" };
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\"{weight}>{}</text>",
            b.x - b.w / 2.0 + 8.0,
            b.y - b.h / 2.0 + 5.0 + LINE_H * (j as f64 + 1.0) - 3.0,
            escape(line)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draws_every_step_of_a_cycle_with_its_label() {
        let data = json!({
            "txns": [
                {"name": "T1", "op": 3, "process": 0, "type": "ok", "mops": ["[:r 1 []]", "[:append 2 1]"]},
                {"name": "T2", "op": 5, "process": 1, "type": "ok", "mops": ["[:r 2 []]", "[:append 1 1]"]},
            ],
            "cycle": [
                {"from": "T1", "to": "T2", "rel": "rw", "why": "T2 appended 1 to key 1 after T1 read key 1 without it"},
                {"from": "T2", "to": "T1", "rel": "rw", "why": "T1 appended 1 to key 2 after T2 read key 2 without it"},
            ],
        });
        let steps = data["cycle"].as_array().expect("steps").clone();
        let svg = cycle_svg(&data, &steps);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("marker-end").count(), 2);
        assert_eq!(svg.matches(">rw</text>").count(), 2);
        assert!(svg.contains("[:append 2 1]"));
        assert!(svg.contains("T1  op 3  p0  ok"));
    }
}
