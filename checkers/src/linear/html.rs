//! Draws a linearizability failure: the operations around the point where
//! the search got stuck, as bars per process, with the longest linearization
//! numbered on them and the op that cannot be placed in red.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::history::History;
use crate::html::escape;
use crate::verdict::{HtmlPage, Verdict};

const WIDTH: f64 = 1100.0;
const ROW: f64 = 26.0;
const LEFT: f64 = 90.0;

pub(super) fn render(_history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>Linearizability</h1>\n<p class=\"{}\">{}</p>\n<p>{}</p>",
        verdict.validity,
        escape(verdict.validity.as_str()),
        escape(&verdict.summary)
    );
    if let Some(r) = &verdict.unknown_reason {
        let _ = writeln!(body, "<p class=\"unknown\">Unknown: {}</p>", escape(r));
    }
    for a in &verdict.anomalies {
        let d = &a.data;
        let key = d
            .get("key")
            .filter(|k| !k.is_null())
            .map(|k| format!(" — key {k}"))
            .unwrap_or_default();
        let heading = match a.kind.as_str() {
            "sibling-read" => "A read of several sibling versions",
            _ => "No linearization",
        };
        let _ = writeln!(body, "<h2>{heading}{}</h2>", escape(&key));
        let _ = writeln!(body, "<div class=\"explanation\">{}</div>", escape(&a.explanation));
        body.push_str(&timeline(d));
        body.push_str(&prefix_table(d));
    }
    vec![HtmlPage { name: "linearizability".into(), title: "Linearizability".into(), body }]
}

/// Bars per process for the ops in the failure window.
fn timeline(d: &serde_json::Value) -> String {
    let Some(window) = d.get("window").and_then(|w| w.as_array()) else { return String::new() };
    if window.is_empty() {
        return String::new();
    }
    let axis = Axis::new(window);
    let names = process_rows(window);
    let row_of: BTreeMap<&str, usize> =
        names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    let height = names.len() as f64 * ROW + 30.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         role=\"img\" aria-label=\"operations around the failure\">"
    );
    for (i, name) in names.iter().enumerate() {
        let y = i as f64 * ROW + 18.0;
        let _ = writeln!(
            svg,
            "<text x=\"4\" y=\"{y}\" font-size=\"12\">process {}</text>",
            escape(name)
        );
    }
    for op in window {
        let p = op.get("process").and_then(|p| p.as_str()).unwrap_or("?");
        let row = row_of.get(p).copied().unwrap_or(0) as f64;
        write_op(&mut svg, op, row, &axis);
    }
    svg.push_str("</svg>\n");
    format!(
        "<h3>Operations around the failure</h3>\n<p class=\"muted\">Bars run from invocation to \
         completion, in the order of this partition's events. Green: in the longest linearization, numbered by their place \
         in it. Red: the operation that cannot be linearized. Orange dashed: crashed, never \
         completed. Grey: not linearized.</p>\n{svg}"
    )
}

/// The timeline's horizontal axis. Positions are global history positions,
/// and other partitions' events sit between this partition's: events are
/// placed by their rank among the window's own events instead, so bars keep
/// a readable width.
struct Axis {
    /// The window's event positions, sorted and distinct.
    marks: Vec<u64>,
    /// Where crashed ops end: a little past the window, since they never
    /// return.
    end: f64,
    scale: f64,
}

impl Axis {
    fn new(window: &[serde_json::Value]) -> Axis {
        let mut marks: Vec<u64> = Vec::new();
        for op in window {
            for k in ["call", "ret"] {
                if let Some(p) = op.get(k).and_then(serde_json::Value::as_u64) {
                    marks.push(p);
                }
            }
        }
        marks.sort_unstable();
        marks.dedup();
        let to = marks.len().saturating_sub(1) as f64;
        let end = to + (to * 0.08).max(2.0);
        let scale = (WIDTH - LEFT - 10.0) / end.max(1.0);
        Axis { marks, end, scale }
    }

    /// The rank of history position `pos` among the window's events.
    fn rank(&self, pos: f64) -> f64 {
        self.marks.partition_point(|&m| (m as f64) < pos) as f64
    }

    /// The x coordinate of rank `r`.
    fn x(&self, r: f64) -> f64 {
        LEFT + r.max(0.0) * self.scale
    }
}

/// The processes of the window, one row each, numbered numerically where
/// they are numbers.
fn process_rows(window: &[serde_json::Value]) -> Vec<String> {
    let mut names: Vec<String> = window
        .iter()
        .map(|op| op.get("process").and_then(|p| p.as_str()).unwrap_or("?").to_owned())
        .collect::<std::collections::BTreeSet<String>>()
        .into_iter()
        .collect();
    names.sort_by_key(|n| (n.parse::<u64>().unwrap_or(u64::MAX), n.clone()));
    names
}

/// One op's bar in `row`: green when linearized (numbered), red when it is
/// the op that cannot be, orange dashed when it crashed, grey otherwise; a
/// tooltip with the op in full, and a label where it fits.
fn write_op(svg: &mut String, op: &serde_json::Value, row: f64, axis: &Axis) {
    let call = axis.rank(op.get("call").and_then(serde_json::Value::as_f64).unwrap_or(0.0));
    let ret = op.get("ret").and_then(serde_json::Value::as_f64).map(|r| axis.rank(r));
    let crashed = ret.is_none();
    let (x1, x2) = (axis.x(call), axis.x(ret.unwrap_or(axis.end)));
    let order = op.get("order").and_then(serde_json::Value::as_u64);
    let stuck = op.get("stuck").and_then(serde_json::Value::as_bool).unwrap_or(false);
    let (fill, stroke) = if stuck {
        ("#ffcdd2", "#c62828")
    } else if order.is_some() {
        ("#c8e6c9", "#2e7d32")
    } else if crashed {
        ("#ffe0b2", "#ef6c00")
    } else {
        ("#eeeeee", "#9e9e9e")
    };
    let label = op.get("label").and_then(|o| o.as_str()).unwrap_or("");
    let index = op.get("index").and_then(serde_json::Value::as_u64).unwrap_or(0);
    // Evidence written before the window dropped its `op` sentence still
    // carries one; newer evidence has the parts to make it.
    let full = match (op.get("op").and_then(|o| o.as_str()), op.get("process")) {
        (Some(full), _) => full.to_owned(),
        (None, Some(p)) => {
            format!(
                "op {index} by process {}, {label}",
                p.as_str().map_or_else(|| p.to_string(), str::to_owned)
            )
        }
        (None, None) => label.to_owned(),
    };
    let title = format!(
        "{full}{}{}",
        order.map(|o| format!(" — linearized #{o}")).unwrap_or_default(),
        if stuck {
            " — cannot be linearized"
        } else if crashed {
            " — crashed"
        } else {
            ""
        }
    );
    let y = row * ROW + 5.0;
    let w = (x2 - x1).max(if stuck { 10.0 } else { 3.0 });
    let dash = if crashed { " stroke-dasharray=\"4 3\"" } else { "" };
    let _ = writeln!(
        svg,
        "<g id=\"op-{index}\"><title>{}</title><rect x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" \
         height=\"{:.1}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\"{dash}/>",
        escape(&title),
        ROW - 8.0
    );
    let text = match order {
        Some(o) => format!("#{o} {label}"),
        None => label.to_owned(),
    };
    if stuck {
        // Point at the op that breaks the history, whatever its width.
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#c62828\" text-anchor=\"end\">\
             {} ✗</text>",
            x1 - 4.0,
            y + 13.0,
            escape(label)
        );
    } else if w > 40.0 {
        // Only label bars wide enough to hold some text.
        let max_chars = (w / 7.0) as usize;
        let shown: String = text.chars().take(max_chars).collect();
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            x1 + 3.0,
            y + 13.0,
            escape(&shown)
        );
    }
    svg.push_str("</g>\n");
}

fn prefix_table(d: &serde_json::Value) -> String {
    let mut out = String::new();
    if let Some(states) = d.get("states").and_then(|s| s.as_array()) {
        out.push_str("<h3>States the model could be in at the failure</h3>\n<ul>\n");
        for s in states {
            let _ = writeln!(out, "<li><code>{}</code></li>", escape(s.as_str().unwrap_or("")));
        }
        out.push_str("</ul>\n");
    }
    let Some(tail) = d.get("prefix_tail").and_then(|t| t.as_array()) else { return out };
    let total = d.get("prefix_length").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let _ = writeln!(
        out,
        "<h3>The end of the longest linearization ({total} operations)</h3>\n\
         <table><tr><th>#</th><th>op</th><th>process</th><th>operation</th><th>state after</th></tr>"
    );
    let first = total.saturating_sub(tail.len() as u64);
    for (i, step) in tail.iter().enumerate() {
        let get = |k: &str| {
            step.get(k)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_default()
        };
        let crashed = step.get("crashed").and_then(serde_json::Value::as_bool).unwrap_or(false);
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><a href=\"#op-{}\">{}</a></td><td>{}</td><td><code>{}</code>{}</td><td><code>{}</code></td></tr>",
            first + i as u64 + 1,
            escape(&get("index")),
            escape(&get("index")),
            escape(&get("process")),
            escape(&get("op")),
            if crashed { " <span class=\"muted\">(crashed)</span>" } else { "" },
            escape(&get("state_after")),
        );
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Two ops as the checker writes them now, and one with the `op`
    /// sentence evidence written before carried.
    fn window() -> serde_json::Value {
        json!({"window": [
            {"index": 0, "process": "10", "call": 100, "ret": 340, "label": "write 1", "order": 1, "stuck": false},
            {"index": 2, "process": "2", "call": 120, "ret": null, "label": "write 2", "order": null, "stuck": false},
            {"index": 4, "process": "nemesis-ish", "call": 200, "ret": 260, "op": "op 4, read → 2", "label": "read → 2", "order": null, "stuck": true},
        ]})
    }

    #[test]
    fn processes_are_rows_in_numeric_order() {
        let w = window();
        let rows = process_rows(w["window"].as_array().expect("window"));
        assert_eq!(rows, vec!["2", "10", "nemesis-ish"]);
    }

    #[test]
    fn the_axis_places_events_by_rank_and_crashed_ops_past_the_end() {
        let w = window();
        let axis = Axis::new(w["window"].as_array().expect("window"));
        assert_eq!(axis.marks, vec![100, 120, 200, 260, 340]);
        assert_eq!(axis.rank(200.0), 2.0);
        assert_eq!(axis.end, 6.0, "four ranks, then room for crashed ops");
        assert_eq!(axis.x(0.0), LEFT);
        assert!(axis.x(axis.end) <= WIDTH - 10.0 + 1e-9);
    }

    #[test]
    fn the_timeline_marks_the_stuck_op_and_dashes_the_crashed_one() {
        let svg = timeline(&window());
        assert!(svg.contains("<title>op 4, read → 2 — cannot be linearized</title>"), "{svg}");
        assert!(svg.contains("read → 2 ✗</text>"), "{svg}");
        assert_eq!(svg.matches("stroke-dasharray").count(), 1, "{svg}");
        assert!(svg.contains("<title>op 0 by process 10, write 1 — linearized #1</title>"));
        assert!(svg.contains("<title>op 2 by process 2, write 2 — crashed</title>"), "{svg}");
        assert_eq!(timeline(&json!({"window": []})), "");
    }
}
