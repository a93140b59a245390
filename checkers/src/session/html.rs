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
