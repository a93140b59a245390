//! The convergence page: each node's final state, the anomalies (with the
//! causal chain of a write lost by causal order), superseded writes, the
//! convergence time and the stalest reads. Drawn from the verdict alone.

use serde_json::json;

use crate::html::escape;
use crate::verdict::{HtmlPage, Verdict};

/// The page for `verdict`.
pub(super) fn page(verdict: &Verdict) -> HtmlPage {
    let d = &verdict.details;
    let mut body = format!(
        "<h1>Eventual convergence</h1>\n<p class=\"{}\">{}</p>\n<p class=\"muted\">{}</p>\n",
        verdict.validity.as_str(),
        escape(&verdict.summary),
        escape(d["final_phase"].as_str().unwrap_or(""))
    );
    if let Some(why) = &verdict.unknown_reason {
        body.push_str(&format!("<p class=\"unknown\">Unknown because: {}</p>\n", escape(why)));
    }
    if let Some(note) = d["order_note"].as_str() {
        body.push_str(&format!("<p class=\"muted\">{}</p>\n", escape(note)));
    }
    final_states(d, &mut body);
    for a in &verdict.anomalies {
        body.push_str(&format!(
            "<h3>{}</h3>\n<div class=\"explanation\">{}</div>\n",
            escape(&a.kind),
            escape(&a.explanation)
        ));
        for chain in a.data.get("chains").and_then(|c| c.as_array()).into_iter().flatten() {
            body.push_str(&crate::causal::chain_svg(chain));
        }
    }
    superseded(d, &mut body);
    if let Some(conv) = d["convergence"].as_array().filter(|c| !c.is_empty()) {
        let items: Vec<(String, f64)> = conv
            .iter()
            .map(|c| (key_label(&c["key"]), c["at_most_ms"].as_f64().unwrap_or(0.0)))
            .collect();
        body.push_str("<h2>Convergence time (upper bound after the last write)</h2>\n");
        body.push_str(&crate::diagram::bars(&items, "ms"));
    }
    stale_reads(d, &mut body);
    HtmlPage { name: "convergence".into(), title: "Eventual convergence".into(), body }
}

fn key_label(k: &serde_json::Value) -> String {
    if k.is_null() { "the object".to_owned() } else { format!("key {k}") }
}

/// The table of each node's final state per object.
fn final_states(d: &serde_json::Value, body: &mut String) {
    let Some(keys) = d["keys"].as_array() else { return };
    body.push_str(
        "<h2>Final state per node</h2>\n<table><tr><th>object</th><th>node</th><th>state</th></tr>\n",
    );
    for k in keys {
        let key = key_label(&k["key"]);
        let bad = k["converged"] == json!(false);
        for (n, s) in k["nodes"].as_object().into_iter().flatten() {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"mono{}\">{}</td></tr>\n",
                escape(&key),
                escape(n),
                if bad { " invalid" } else { "" },
                escape(s.as_str().unwrap_or(""))
            ));
        }
    }
    body.push_str("</table>\n");
}

/// The writes superseded by a concurrent write: no anomaly, but worth seeing.
fn superseded(d: &serde_json::Value, body: &mut String) {
    let s = &d["superseded"];
    let count = s["count"].as_u64().unwrap_or(0);
    if count == 0 {
        return;
    }
    body.push_str(&format!(
        "<h2>Superseded by a concurrent write</h2>\n<p>{} not in the final state, but {} order \
         does not put {} after the write that won, so last-write-wins may keep either: no anomaly.</p>\n\
         <table><tr><th>object</th><th>write</th><th>won over by</th><th>why concurrent</th></tr>\n",
        crate::text::plural(count as usize, "acknowledged write"),
        escape(d["order"].as_str().unwrap_or("the chosen")),
        if count == 1 { "it" } else { "them" },
    ));
    for e in s["examples"].as_array().into_iter().flatten() {
        body.push_str(&format!(
            "<tr><td>{}</td><td class=\"mono\">op {}: {}</td><td class=\"mono\">op {}: {}</td><td>{}</td></tr>\n",
            escape(&key_label(&e["key"])),
            e["op"],
            escape(&e["value"].to_string()),
            e["winner"]["op"],
            escape(&e["winner"]["value"].to_string()),
            escape(e["why"].as_str().unwrap_or(""))
        ));
    }
    body.push_str("</table>\n");
}

/// How many reads were stale during the run, and the stalest.
fn stale_reads(d: &serde_json::Value, body: &mut String) {
    let stale = &d["stale_reads"];
    let stale_count = stale["count"].as_u64().unwrap_or(0) as usize;
    body.push_str(&format!(
        "<h2>Stale reads during the run</h2>\n<p>{} missed acknowledged writes that had completed before {} began.</p>\n",
        crate::text::plural(stale_count, "read"),
        if stale_count == 1 { "it" } else { "they" }
    ));
    let Some(worst) = stale["worst"].as_array().filter(|w| !w.is_empty()) else { return };
    let items: Vec<(String, f64)> = worst
        .iter()
        .map(|w| {
            (
                format!("op {} on {}", w["op"], w["node"].as_str().unwrap_or("?")),
                w["behind_ms"].as_f64().unwrap_or(w["behind_ops"].as_f64().unwrap_or(0.0)),
            )
        })
        .collect();
    let unit = if worst.iter().any(|w| w["behind_ms"].is_number()) {
        "ms behind"
    } else {
        "writes behind"
    };
    body.push_str("<h3>The stalest reads</h3>\n");
    body.push_str(&crate::diagram::bars(&items, unit));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::{Anomaly, Validity};

    #[test]
    fn the_page_shows_anomalies_superseded_writes_and_escapes_text() {
        let mut v = Verdict::new("convergence", Validity::Invalid, "did not converge: <lost>");
        v.anomalies.push(Anomaly {
            kind: "lost-write".into(),
            explanation: "op 3 & op 5".into(),
            ops: vec![3, 5],
            data: json!({"chains": [[{"op": 1, "process": 0, "what": "write 1", "step": null},
                                     {"op": 3, "process": 1, "what": "read 1", "step": "read-from"}]]}),
        });
        v.details = json!({
            "order": "causal",
            "superseded": {"count": 1, "examples": [{"key": null, "op": 7, "value": 2,
                "winner": {"op": 1, "value": 1}, "why": "no chain"}]},
            "stale_reads": {"count": 0},
        });
        let p = page(&v);
        assert!(p.body.contains("did not converge: &lt;lost&gt;"), "{}", p.body);
        assert!(p.body.contains("op 3 &amp; op 5"));
        assert!(p.body.contains("<svg"), "the chain is drawn");
        assert!(p.body.contains("1 acknowledged write not in the final state, but causal order"));
        assert!(p.body.contains("op 7: 2"));
    }

    #[test]
    fn the_page_shows_anomalies_and_escapes_text() {
        let mut v = Verdict::new("convergence", Validity::Invalid, "did not converge: <lost>");
        v.anomalies.push(Anomaly {
            kind: "lost-write".into(),
            explanation: "op 3 & op 5".into(),
            ops: vec![3, 5],
            data: serde_json::Value::Null,
        });
        v.details = json!({
            "keys": [{"key": "x", "nodes": {"n1": "1"}, "converged": true}],
            "stale_reads": {"count": 0},
        });
        let p = page(&v);
        assert!(p.body.contains("did not converge: &lt;lost&gt;"), "{}", p.body);
        assert!(p.body.contains("op 3 &amp; op 5"));
        assert!(p.body.contains("<td>key &quot;x&quot;</td><td>n1</td>"), "{}", p.body);
        assert!(p.body.contains("0 reads missed"));
    }
}
