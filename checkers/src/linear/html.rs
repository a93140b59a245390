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
        let _ = writeln!(body, "<h2>No linearization{}</h2>", escape(&key));
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
    // Positions are global history positions, and other partitions' events
    // sit between this partition's: place events by their rank among the
    // window's own events instead, so bars keep a readable width.
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
    let rank = |pos: f64| marks.partition_point(|&m| (m as f64) < pos) as f64;
    let (from, to) = (0.0, marks.len().saturating_sub(1) as f64);
    // Crashed ops never return: draw them to a little past the window.
    let end = to + ((to - from) * 0.08).max(2.0);
    let scale = (WIDTH - LEFT - 10.0) / (end - from).max(1.0);
    let x = |pos: f64| LEFT + (pos - from).max(0.0) * scale;
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    for op in window {
        let p = op.get("process").and_then(|p| p.as_str()).unwrap_or("?").to_owned();
        let n = rows.len();
        rows.entry(p).or_insert(n);
    }
    // Number processes numerically where they are numbers.
    let mut names: Vec<String> = rows.keys().cloned().collect();
    names.sort_by_key(|n| (n.parse::<u64>().unwrap_or(u64::MAX), n.clone()));
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
        let call = rank(op.get("call").and_then(serde_json::Value::as_f64).unwrap_or(0.0));
        let ret = op.get("ret").and_then(serde_json::Value::as_f64).map(rank);
        let crashed = ret.is_none();
        let (x1, x2) = (x(call), x(ret.unwrap_or(end)));
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
        let full = op.get("op").and_then(|o| o.as_str()).unwrap_or(label);
        let index = op.get("index").and_then(serde_json::Value::as_u64).unwrap_or(0);
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
    svg.push_str("</svg>\n");
    format!(
        "<h3>Operations around the failure</h3>\n<p class=\"muted\">Bars run from invocation to \
         completion, in the order of this partition's events. Green: in the longest linearization, numbered by their place \
         in it. Red: the operation that cannot be linearized. Orange dashed: crashed, never \
         completed. Grey: not linearized.</p>\n{svg}"
    )
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
