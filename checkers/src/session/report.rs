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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;
    use crate::formats;
    use crate::session::sessions::parse;

    const HISTORY: &str = "\
        {:index 0, :process 0, :type :invoke, :f :write, :key :x, :value 1}\n\
        {:index 1, :process 0, :type :ok, :f :write, :key :x, :value 1}\n\
        {:index 2, :process 0, :type :invoke, :f :read, :key :x, :value nil}\n\
        {:index 3, :process 0, :type :ok, :f :read, :key :x, :value nil}\n";

    #[test]
    fn the_summary_lists_what_held_or_the_violations_by_kind() {
        let h = formats::parse(HISTORY, "test", None).expect("a readable history");
        let p = parse(&h, None).expect("parse");
        let none: BTreeMap<Guarantee, usize> =
            [(Guarantee::ReadYourWrites, 0), (Guarantee::MonotonicReads, 0)].into();
        assert_eq!(
            summary(&p, &none, "register"),
            "read-your-writes, monotonic-reads held over 2 operations by 1 process (register)"
        );
        let some: BTreeMap<Guarantee, usize> =
            [(Guarantee::ReadYourWrites, 0), (Guarantee::MonotonicReads, 3)].into();
        assert_eq!(summary(&p, &some, "register"), "3 violations: monotonic-reads 3 (register)");
    }

    #[test]
    fn findings_beyond_the_limit_are_counted_but_not_explained() {
        let h = formats::parse(HISTORY, "test", None).expect("a readable history");
        let p = parse(&h, None).expect("parse");
        let meter = Budget::default().start();
        let ctx = Ctx { history: &h, p: &p, meter: &meter };
        let finding = |op: u32| Found {
            guarantee: Guarantee::ReadYourWrites,
            explanation: format!("finding {op}"),
            chain: vec![(0, "write :x = 1".into(), None), (op, "read".into(), Some("later"))],
        };
        let mut checker = SessionChecker::new("session", vec![Guarantee::ReadYourWrites]);
        checker.limit = 1;
        let v = verdict(&checker, &ctx, vec![finding(1), finding(0)], Instant::now());
        assert_eq!(v.validity, Validity::Invalid);
        assert_eq!(v.summary, "2 violations: read-your-writes 2 (register)");
        assert_eq!(v.anomalies.len(), 1, "one explained of two");
        assert_eq!(v.anomalies[0].explanation, "finding 0", "the earliest read first");
        assert_eq!(v.anomalies[0].ops, vec![1], "repeated ops are listed once");
        assert_eq!(v.details["violations"]["read-your-writes"], 2);
        assert_eq!(v.anomalies[0].data["chains"][0][1]["step"], "later");
    }
}
