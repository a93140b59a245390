//! The session checker's HTML page: violations per guarantee as bars, then
//! each explained violation with its chain of witnesses drawn.

use super::Guarantee;
use crate::html::escape;
use crate::verdict::{Anomaly, HtmlPage, Verdict};

/// The page of `verdict`, one section per guarantee in `guarantees` that
/// has explained violations.
pub(super) fn page(name: &str, guarantees: &[Guarantee], verdict: &Verdict) -> HtmlPage {
    let mut body = format!(
        "<h1>Session guarantees</h1>\n<p class=\"{}\">{}</p>\n",
        verdict.validity.as_str(),
        escape(&verdict.summary)
    );
    if let Some(by) = verdict.details.get("violations").and_then(|v| v.as_object()) {
        let items: Vec<(String, f64)> =
            by.iter().map(|(g, n)| (g.clone(), n.as_f64().unwrap_or(0.0))).collect();
        body.push_str("<h2>Violations per guarantee</h2>\n");
        body.push_str(&crate::diagram::bars(&items, "violations"));
    }
    for g in guarantees {
        let of_g: Vec<&Anomaly> = verdict.anomalies.iter().filter(|a| a.kind == g.name()).collect();
        if of_g.is_empty() {
            continue;
        }
        body.push_str(&format!("<h2>{}</h2>\n", escape(g.name())));
        for a in of_g {
            body.push_str(&format!(
                "<div class=\"explanation\">{}</div>\n",
                escape(&a.explanation)
            ));
            if let Some(chains) = a.data.get("chains").and_then(|c| c.as_array()) {
                for chain in chains {
                    body.push_str(&crate::causal::chain_svg(chain));
                }
            }
        }
    }
    HtmlPage { name: name.to_owned(), title: "Session guarantees".into(), body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Validity;
    use serde_json::json;

    #[test]
    fn the_page_has_a_section_per_guarantee_with_explained_violations() {
        let mut v = Verdict::new("session", Validity::Invalid, "1 violation: <mr> 1");
        v.details = json!({"violations": {"monotonic-reads": 1, "read-your-writes": 0}});
        v.anomalies.push(Anomaly {
            kind: "monotonic-reads".into(),
            explanation: "op 3 read x = 1 again".into(),
            ops: vec![1, 3],
            data: json!({"chains": [[
                {"op": 1, "process": 0, "what": "read x = 2", "step": null},
                {"op": 3, "process": 0, "what": "read x = 1", "step": "later in the session"}
            ]]}),
        });
        let page = page("session", &[Guarantee::ReadYourWrites, Guarantee::MonotonicReads], &v);
        assert_eq!(page.name, "session");
        assert!(
            page.body.contains("<p class=\"invalid\">1 violation: &lt;mr&gt; 1</p>"),
            "{}",
            page.body
        );
        assert!(page.body.contains("<h2>Violations per guarantee</h2>"));
        assert!(page.body.contains("<h2>monotonic-reads</h2>"));
        assert!(!page.body.contains("<h2>read-your-writes</h2>"), "nothing to explain there");
        assert!(page.body.contains("<div class=\"explanation\">op 3 read x = 1 again</div>"));
        assert!(page.body.contains("<svg"), "the chain is drawn");
    }
}
