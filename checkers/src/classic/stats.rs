//! `stats`: how many operations of each function succeeded, failed or ended
//! indeterminate. As in Jepsen, the history is invalid when some function
//! never succeeded: the test then exercised nothing of it.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::json;

use super::intervals;
use crate::budget::Budget;
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::html::escape;
use crate::spec::CheckSpec;
use crate::verdict::{Anomaly, Checker, HtmlPage, Validity, Verdict};

/// The `stats` checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatsChecker {
    /// Time and memory limits.
    pub budget: Budget,
}

impl StatsChecker {
    /// From the spec's budget (stats has no options).
    pub fn from_spec(spec: &CheckSpec) -> Result<StatsChecker, CheckError> {
        Ok(StatsChecker { budget: spec.budget })
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    ok: usize,
    fail: usize,
    info: usize,
}

impl Checker for StatsChecker {
    fn name(&self) -> &str {
        "stats"
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let started = Instant::now();
        let meter = self.budget.start();
        let ops = intervals(history)?;
        let mut by_f: BTreeMap<&str, Tally> = BTreeMap::new();
        for op in &ops {
            if let Some(reason) = meter.tick() {
                return Ok(Verdict::out_of_budget("stats", reason, started.elapsed()));
            }
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
        let anomalies = never
            .iter()
            .map(|f| {
                let t = by_f[f];
                Anomaly {
                    kind: "never-succeeded".into(),
                    explanation: format!(
                        "no {f} operation succeeded: {} failed and {} ended indeterminate.",
                        t.fail, t.info
                    ),
                    ops: Vec::new(),
                    data: json!({"f": f}),
                }
            })
            .collect();
        let count = ops.len();
        let validity = if !never.is_empty() {
            Validity::Invalid
        } else if count == 0 {
            Validity::Unknown
        } else {
            Validity::Valid
        };
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
        let mut v = Verdict::new("stats", validity, summary);
        if validity == Validity::Unknown {
            v.unknown_reason = Some("the history has no client operation".into());
        }
        v.anomalies = anomalies;
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
        v.elapsed = started.elapsed();
        Ok(v)
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
