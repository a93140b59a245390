//! The verdict: findings sorted and counted per guarantee, the first
//! `max-anomalies` of each put in anomalies with their chains, and the
//! summary and details every front end shows.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::json;

use super::evidence::{Ctx, Found};
use super::sessions::Parsed;
use super::{Guarantee, SessionChecker, Workload};
use crate::verdict::{Anomaly, Validity, Verdict};

/// The verdict on a history in which nothing read anything.
pub(super) fn nothing_read(name: &str, p: &Parsed, started: Instant) -> Verdict {
    // A session guarantee is about what reads see: without one,
    // nothing was observed that could keep or break it.
    let mut v = Verdict::unknown(
        name.to_owned(),
        "no read to judge",
        format!(
            "no operation read anything ({} over {}), so no session guarantee was observed",
            crate::text::plural(p.units.len(), "operation"),
            crate::text::plural(p.sessions.len(), "process"),
        ),
    );
    v.elapsed = started.elapsed();
    v
}

/// The verdict on everything `found`.
pub(super) fn verdict(
    checker: &SessionChecker,
    ctx: &Ctx<'_>,
    mut found: Vec<Found>,
    started: Instant,
) -> Verdict {
    let p = ctx.p;
    // Report in history order of the violating read, grouped by guarantee.
    found.sort_by_key(|f| (f.guarantee, f.chain.last().map(|c| ctx.op(c.0))));
    let mut counts: BTreeMap<Guarantee, usize> =
        checker.guarantees.iter().map(|g| (*g, 0)).collect();
    let mut anomalies = Vec::new();
    for f in found {
        let n = counts.entry(f.guarantee).or_insert(0);
        *n += 1;
        if *n <= checker.limit {
            anomalies.push(anomaly(ctx, f));
        }
    }
    let total: usize = counts.values().sum();
    let workload = workload_name(p.workload);
    let mut v = Verdict::new(
        checker.name.clone(),
        if total > 0 { Validity::Invalid } else { Validity::Valid },
        summary(p, &counts, workload),
    );
    v.anomalies = anomalies;
    let mut by = serde_json::Map::new();
    for (g, n) in &counts {
        by.insert(g.name().into(), json!(n));
    }
    v.details = json!({
        "workload": workload,
        "operations": p.units.len(),
        "processes": p.sessions.len(),
        "keys": p.keys.len(),
        "violations": by,
        "explained_per_guarantee": checker.limit,
    });
    v.elapsed = started.elapsed();
    v
}

/// A finding as an anomaly: its explanation, its ops in chain order and
/// the chain as data for the page's picture.
fn anomaly(ctx: &Ctx<'_>, f: Found) -> Anomaly {
    let chain: Vec<serde_json::Value> = f
        .chain
        .iter()
        .map(|(u, what, step)| {
            json!({"op": ctx.op(*u), "process": ctx.process(*u), "what": what, "step": step})
        })
        .collect();
    let mut ops: Vec<u64> = f.chain.iter().map(|(u, _, _)| ctx.op(*u)).collect();
    ops.dedup();
    Anomaly {
        kind: f.guarantee.name().into(),
        explanation: f.explanation,
        ops,
        data: json!({"guarantee": f.guarantee.name(), "chains": [chain]}),
    }
}

/// The workload's name in summaries and details.
fn workload_name(workload: Workload) -> &'static str {
    match workload {
        Workload::ListAppend => "list-append",
        Workload::Register => "register",
    }
}

/// The one-line summary: what held, or how many violations of each kind.
fn summary(p: &Parsed, counts: &BTreeMap<Guarantee, usize>, workload: &str) -> String {
    let total: usize = counts.values().sum();
    let listing: Vec<String> = counts.iter().map(|(g, n)| format!("{} {n}", g.name())).collect();
    if total == 0 {
        format!(
            "{} held over {} by {} ({workload})",
            listing.iter().map(|l| l.trim_end_matches(" 0")).collect::<Vec<_>>().join(", "),
            crate::text::plural(p.units.len(), "operation"),
            crate::text::plural(p.sessions.len(), "process"),
        )
    } else {
        let nonzero: Vec<&String> = listing.iter().filter(|l| !l.ends_with(" 0")).collect();
        format!(
            "{total} violation{}: {} ({workload})",
            if total == 1 { "" } else { "s" },
            nonzero.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        )
    }
}
