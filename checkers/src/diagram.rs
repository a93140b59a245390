//! Small self-contained SVG diagrams for checker pages: chains of operations
//! laid out in one lane per process, and horizontal bar charts.
//!
//! No scripts and no external resources, so a report opens from a file.

use crate::html::escape;

/// One box in a lane diagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The lane (column) it sits in, e.g. `process 3`.
    pub lane: String,
    /// Text inside the box.
    pub label: String,
}

/// An arrow between two boxes (indices into the node list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Source box.
    pub from: usize,
    /// Target box.
    pub to: usize,
    /// Text beside the arrow.
    pub label: String,
}

const LANE: usize = 230;
const ROW: usize = 64;
const BOX_W: usize = 210;
const BOX_H: usize = 34;
const TOP: usize = 40;

/// Draws nodes in order, one row each, in one column per lane (lanes in
/// order of first appearance), with arrows between them. An arrow to an
/// earlier row (the edge that closes a cycle) curves round the right side.
pub fn lanes(nodes: &[Node], edges: &[Edge]) -> String {
    let mut lanes: Vec<&str> = Vec::new();
    for n in nodes {
        if !lanes.contains(&n.lane.as_str()) {
            lanes.push(&n.lane);
        }
    }
    let col = |n: &Node| lanes.iter().position(|l| *l == n.lane).unwrap_or(0);
    let width = lanes.len() * LANE + 160;
    let height = TOP + nodes.len() * ROW + 10;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" \
         markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n"
    );
    for (i, lane) in lanes.iter().enumerate() {
        let x = i * LANE + 10 + BOX_W / 2;
        svg.push_str(&format!(
            "<text x=\"{x}\" y=\"20\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n\
             <line x1=\"{x}\" y1=\"28\" x2=\"{x}\" y2=\"{}\" stroke=\"#ddd\" stroke-dasharray=\"4 4\"/>\n",
            escape(lane),
            height - 5
        ));
    }
    let center = |i: usize| {
        let x = col(&nodes[i]) * LANE + 10 + BOX_W / 2;
        let y = TOP + i * ROW + BOX_H / 2;
        (x, y)
    };
    for e in edges {
        if e.from >= nodes.len() || e.to >= nodes.len() {
            continue;
        }
        let (x1, y1) = center(e.from);
        let (x2, y2) = center(e.to);
        if e.to > e.from {
            let (sy, ty) = (y1 + BOX_H / 2, y2 - BOX_H / 2);
            svg.push_str(&format!(
                "<line x1=\"{x1}\" y1=\"{sy}\" x2=\"{x2}\" y2=\"{ty}\" stroke=\"#555\" marker-end=\"url(#arrow)\"/>\n\
                 <text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#444\">{}</text>\n",
                (x1 + x2) / 2 + 6,
                (sy + ty) / 2 + 4,
                escape(&e.label)
            ));
        } else {
            let right = lanes.len() * LANE + 60;
            let (sx, tx) = (x1 + BOX_W / 2, x2 + BOX_W / 2);
            svg.push_str(&format!(
                "<path d=\"M{sx},{y1} C{right},{y1} {right},{y2} {tx},{y2}\" fill=\"none\" stroke=\"#c62828\" \
                 marker-end=\"url(#arrow)\"/>\n<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#c62828\">{}</text>\n",
                right - 20,
                (y1 + y2) / 2,
                escape(&e.label)
            ));
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        let x = col(n) * LANE + 10;
        let y = TOP + i * ROW;
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"5\" fill=\"#fff8e1\" stroke=\"#ffb300\"/>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{}</text>\n",
            x + BOX_W / 2,
            y + BOX_H / 2 + 4,
            escape(&truncate(&n.label, 30))
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

/// Horizontal bars, one per `(label, value)`, scaled to the largest value.
pub fn bars(items: &[(String, f64)], unit: &str) -> String {
    let max = items.iter().map(|(_, v)| *v).fold(0.0f64, f64::max).max(f64::MIN_POSITIVE);
    let row = 22;
    let label_w = 180;
    let bar_w = 420.0;
    let height = items.len() * row + 10;
    let width = label_w + bar_w as usize + 120;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\">\n"
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = i * row + 4;
        let w = (v / max * bar_w).max(1.0);
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\">{}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"#90caf9\"/>\
             <text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{} {}</text>\n",
            label_w - 6,
            y + 14,
            escape(&truncate(label, 28)),
            row - 6,
            label_w as f64 + w + 4.0,
            y + 14,
            fmt_num(*v),
            escape(unit)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v:.2}") }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_escape_labels_and_draw_back_edges_as_curves() {
        let nodes = vec![
            Node { lane: "process 0".into(), label: "w <x> 1".into() },
            Node { lane: "process 1".into(), label: "r x 1".into() },
        ];
        let edges = vec![
            Edge { from: 0, to: 1, label: "read-from".into() },
            Edge { from: 1, to: 0, label: "session".into() },
        ];
        let svg = lanes(&nodes, &edges);
        assert!(svg.contains("w &lt;x&gt; 1"));
        assert!(svg.contains("<path d=\"M"), "back edge is a curve");
        assert_eq!(svg.matches("<rect").count(), 2);
    }

    #[test]
    fn bars_scale_to_the_largest() {
        let svg = bars(&[("a".into(), 2.0), ("b".into(), 4.0)], "ms");
        assert!(svg.contains("width=\"420.0\""), "{svg}");
        assert!(svg.contains("width=\"210.0\""), "{svg}");
    }
}
