//! `unique-ids`: every acknowledged `generate` must return an id no other
//! acknowledged `generate` returned.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::json;

use super::intervals;
use crate::budget::Budget;
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::spec::CheckSpec;
use crate::value::Value;
use crate::verdict::{Anomaly, Checker, HtmlPage, Validity, Verdict};

/// The `unique-ids` checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct UniqueIdsChecker {
    /// Duplicated ids explained at most.
    pub limit: usize,
    /// Time and memory limits.
    pub budget: Budget,
}

impl UniqueIdsChecker {
    /// From `--opt max-anomalies=N` and the budget.
    pub fn from_spec(spec: &CheckSpec) -> Result<UniqueIdsChecker, CheckError> {
        Ok(UniqueIdsChecker { limit: spec.max_anomalies()?, budget: spec.budget })
    }
}

impl Checker for UniqueIdsChecker {
    fn name(&self) -> &str {
        "unique-ids"
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let started = Instant::now();
        let meter = self.budget.start();
        let ops = intervals(history)?;
        let attempted = ops.iter().filter(|o| o.inv.f == "generate").count();
        let mut seen: BTreeMap<&Value, Vec<u64>> = BTreeMap::new();
        for op in ops.iter().filter(|o| o.inv.f == "generate" && o.outcome == OpType::Ok) {
            if let Some(reason) = meter.tick() {
                return Ok(Verdict::out_of_budget("unique-ids", reason, started.elapsed()));
            }
            seen.entry(op.result()).or_default().push(op.index());
        }
        let acknowledged: usize = seen.values().map(Vec::len).sum();
        let dups: Vec<(&&Value, &Vec<u64>)> = seen.iter().filter(|(_, o)| o.len() > 1).collect();
        let anomalies = dups
            .iter()
            .take(self.limit.max(1))
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
        let ints: Vec<i64> = seen.keys().filter_map(|v| v.as_int()).collect();
        let range = (!ints.is_empty()).then(|| (ints[0], ints[ints.len() - 1]));
        let validity = if !dups.is_empty() {
            Validity::Invalid
        } else if acknowledged == 0 {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        let summary = format!(
            "{attempted} attempted, {acknowledged} acknowledged, {} id{} duplicated",
            dups.len(),
            if dups.len() == 1 { "" } else { "s" }
        );
        let mut v = Verdict::new("unique-ids", validity, summary);
        if validity == Validity::Unknown {
            v.unknown_reason = Some("no generate was acknowledged".into());
        }
        v.anomalies = anomalies;
        v.details = json!({
            "attempted_count": attempted,
            "acknowledged_count": acknowledged,
            "duplicated_count": dups.len(),
            "range": range,
        });
        v.elapsed = started.elapsed();
        Ok(v)
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let body = super::page_head("Unique ids", verdict);
        vec![HtmlPage { name: "unique-ids".into(), title: "Unique ids".into(), body }]
    }
}
