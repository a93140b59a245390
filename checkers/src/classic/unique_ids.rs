//! `unique-ids`: every acknowledged `generate` must return an id no other
//! acknowledged `generate` returned.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Halt, Limits, Pass, judged, run};
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::spec::CheckSpec;
use crate::value::Value;
use crate::verdict::{Anomaly, Checker, HtmlPage, Verdict};

/// The `unique-ids` checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct UniqueIdsChecker(pub Limits);

impl UniqueIdsChecker {
    /// From `--opt max-anomalies=N` and the budget.
    pub fn from_spec(spec: &CheckSpec) -> Result<UniqueIdsChecker, CheckError> {
        Limits::from_spec(spec).map(UniqueIdsChecker)
    }

    fn judge(&self, pass: &Pass<'_>) -> Result<Verdict, Halt> {
        let ops = &pass.ops;
        let attempted = ops.iter().filter(|o| o.inv.f == "generate").count();
        let mut seen: BTreeMap<&Value, Vec<u64>> = BTreeMap::new();
        for op in ops.iter().filter(|o| o.inv.f == "generate" && o.outcome == OpType::Ok) {
            pass.tick()?;
            seen.entry(op.result()).or_default().push(op.index());
        }
        let acknowledged: usize = seen.values().map(Vec::len).sum();
        let dups: Vec<(&&Value, &Vec<u64>)> = seen.iter().filter(|(_, o)| o.len() > 1).collect();
        let anomalies = dups
            .iter()
            .take(self.0.max_anomalies)
            .map(|(id, ops)| Anomaly {
                kind: "duplicated".into(),
                explanation: format!(
                    "id {id} was generated {} times: by {}.",
                    ops.len(),
                    ops.iter().map(|o| format!("op {o}")).collect::<Vec<_>>().join(", ")
                ),
                ops: ops.to_vec(),
                data: json!({"id": id, "count": ops.len()}),
            })
            .collect();
        // The map is ordered, so the integer ids run from the first to the last.
        let ints: Vec<i64> = seen.keys().filter_map(|v| v.as_int()).collect();
        let range = (!ints.is_empty()).then(|| (ints[0], ints[ints.len() - 1]));
        let summary = format!(
            "{attempted} attempted, {acknowledged} acknowledged, {} id{} duplicated",
            dups.len(),
            if dups.len() == 1 { "" } else { "s" }
        );
        let unobserved = (acknowledged == 0).then_some("no generate was acknowledged");
        let mut v = judged("unique-ids", !dups.is_empty(), unobserved, summary);
        v.anomalies = anomalies;
        v.details = json!({
            "attempted_count": attempted,
            "acknowledged_count": acknowledged,
            "duplicated_count": dups.len(),
            "range": range,
        });
        Ok(v)
    }
}

impl Checker for UniqueIdsChecker {
    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        run(self.name(), self.0.budget, history, |pass| self.judge(pass))
    }

    fn name(&self) -> &str {
        "unique-ids"
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let body = super::page_head("Unique ids", verdict);
        vec![HtmlPage { name: "unique-ids".into(), title: "Unique ids".into(), body }]
    }
}
