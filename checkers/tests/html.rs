//! What every checker's HTML pages must hold, asserted on each golden
//! history by the golden tests: an invalid verdict draws at least one page,
//! every anomaly type found is shown with its explanation, and every SVG
//! drawing is well-formed XML (a browser shows nothing for a broken one).

use checkers::{Checker, History, Validity, Verdict, html};

/// Renders `verdict`'s pages and returns what is wrong with them (empty when
/// nothing is), naming `what` (the golden file) in each complaint.
pub fn problems(
    checker: &dyn Checker,
    history: &History,
    verdict: &Verdict,
    what: &str,
) -> Vec<String> {
    let pages = checker.render_html(history, verdict);
    let mut out = Vec::new();
    if verdict.validity == Validity::Invalid && pages.is_empty() {
        out.push(format!("{what}: invalid, but the {} checker drew no page", checker.name()));
    }
    let mut names = std::collections::BTreeSet::new();
    for p in &pages {
        if !names.insert(p.name.clone()) {
            out.push(format!("{what}: two pages named {:?}", p.name));
        }
        if p.title.trim().is_empty() {
            out.push(format!("{what}: page {:?} has no title", p.name));
        }
        for (i, svg) in svgs(&p.body).into_iter().enumerate() {
            if let Err(e) = roxmltree::Document::parse(svg) {
                out.push(format!(
                    "{what}: page {:?}, drawing {}: not well-formed: {e}",
                    p.name,
                    i + 1
                ));
            }
        }
    }
    let all: String = pages.iter().map(|p| p.body.as_str()).collect();
    for a in &verdict.anomalies {
        if !all.contains(&html::escape(&a.kind)) {
            out.push(format!("{what}: anomaly {} is not shown on any page", a.kind));
        }
        // The first line of the explanation names what happened; the rest
        // may be drawn rather than written out.
        let first = a.explanation.lines().next().unwrap_or_default();
        if !all.contains(&html::escape(first)) {
            out.push(format!(
                "{what}: the explanation of {} is not on any page: {first:?}",
                a.kind
            ));
        }
    }
    out
}

/// The `<svg ...>...</svg>` elements of a page body, outermost only.
fn svgs(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("<svg") {
        let Some(len) = rest[start..].find("</svg>") else {
            out.push(&rest[start..]);
            break;
        };
        let end = start + len + "</svg>".len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}
