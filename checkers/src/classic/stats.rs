//! `stats`: how many operations of each function succeeded, failed or ended
//! indeterminate. As in Jepsen, the history is invalid when some function
//! never succeeded: the test then exercised nothing of it.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Halt, Pass, judged, run};
use crate::budget::Budget;
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::html::escape;
use crate::spec::CheckSpec;
use crate::verdict::{Anomaly, Checker, HtmlPage, Verdict};

/// The `stats` checker, with its time and memory limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatsChecker(pub Budget);

impl StatsChecker {
    /// From the spec's budget (stats has no options).
    pub fn from_spec(spec: &CheckSpec) -> Result<StatsChecker, CheckError> {
        Ok(StatsChecker(spec.budget))
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    ok: usize,
    fail: usize,
    info: usize,
}

fn judge(pass: &Pass<'_>) -> Result<Verdict, Halt> {
    let mut by_f: BTreeMap<&str, Tally> = BTreeMap::new();
    for op in &pass.ops {
        pass.tick()?;
        let t = by_f.entry(op.inv.f.as_str()).or_default();
        match op.outcome {
            OpType::Ok => t.ok += 1,
            OpType::Fail => t.fail += 1,
            _ => t.info += 1,
        }
    }
    let total = by_f.values().fold(Tally::default(), |a, t| Tally {
        ok: a.ok + t.ok,
        fail: a.fail + t.fail,
        info: a.info + t.info,
    });
    let never: Vec<&str> = by_f.iter().filter(|(_, t)| t.ok == 0).map(|(f, _)| *f).collect();
    let count = pass.ops.len();
    let summary = format!(
        "{count} operations: {} ok, {} failed, {} indeterminate{}",
        total.ok,
        total.fail,
        total.info,
        if never.is_empty() {
            String::new()
        } else {
            format!("; never succeeded: {}", never.join(", "))
        }
    );
    let unobserved = (count == 0).then_some("the history has no client operation");
    let mut v = judged("stats", !never.is_empty(), unobserved, summary);
    v.anomalies = never
        .iter()
        .map(|f| Anomaly {
            kind: "never-succeeded".into(),
            explanation: format!(
                "no {f} operation succeeded: {} failed and {} ended indeterminate.",
                by_f[f].fail, by_f[f].info
            ),
            ops: Vec::new(),
            data: json!({"f": f}),
        })
        .collect();
    let rate = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let mut fs = serde_json::Map::new();
    for (f, t) in &by_f {
        let n = t.ok + t.fail + t.info;
        fs.insert(
            (*f).to_owned(),
            json!({"count": n, "ok": t.ok, "fail": t.fail, "info": t.info, "ok_rate": rate(t.ok, n)}),
        );
    }
    v.details = json!({
        "count": count, "ok": total.ok, "fail": total.fail, "info": total.info,
        "ok_rate": rate(total.ok, count), "by_f": fs,
    });
    Ok(v)
}

impl Checker for StatsChecker {
    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        run(self.name(), self.0, history, judge)
    }

    fn name(&self) -> &str {
        "stats"
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let mut body = super::page_head("Operation statistics", verdict);
        body.push_str(
            "<table><tr><th>f</th><th>ok</th><th>fail</th><th>info</th><th>ok rate</th></tr>\n",
        );
        let mut items = Vec::new();
        if let Some(fs) = verdict.details["by_f"].as_object() {
            for (f, t) in fs {
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td></tr>\n",
                    escape(f),
                    t["ok"],
                    t["fail"],
                    t["info"],
                    t["ok_rate"].as_f64().unwrap_or(0.0) * 100.0
                ));
                for k in ["ok", "fail", "info"] {
                    items.push((format!("{f} {k}"), t[k].as_f64().unwrap_or(0.0)));
                }
            }
        }
        body.push_str("</table>\n");
        body.push_str(&crate::diagram::bars(&items, "ops"));
        vec![HtmlPage { name: "stats".into(), title: "Operation statistics".into(), body }]
    }
}
