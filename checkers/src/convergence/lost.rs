//! Lost and unexpected values in sets, lists and counters. These objects
//! merge every write instead of choosing one, so no order can excuse a
//! missing acknowledged write: `--opt order` does not change what they lose.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::finals::Finals;
use super::read::{Object, Write};
use super::{Kind, elements};
use crate::history::History;
use crate::value::Value;
use crate::verdict::Anomaly;

/// Lost writes, values nobody wrote and duplicates in each node's final set or list.
pub(super) fn collection(
    kind: Kind,
    history: &History,
    obj: &Object,
    finals: &Finals<'_>,
    label: &str,
    key: &Value,
    anomalies: &mut Vec<Anomaly>,
) {
    let idx = |pos: usize| history.ops()[pos].index;
    let states = &finals.states;
    // One anomaly per group of nodes that miss the same writes.
    let mut lost: BTreeMap<Vec<&str>, Vec<&Write>> = BTreeMap::new();
    for w in obj.writes.iter().filter(|w| w.acked) {
        let missing: Vec<&str> = states
            .iter()
            .filter(|(_, v)| !elements(v).contains(&w.value))
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            lost.entry(missing).or_default().push(w);
        }
    }
    for (missing, writes) in lost {
        let add_ops: Vec<u64> = writes.iter().map(|w| idx(w.pos())).collect();
        let example = writes[0];
        let explanation = if writes.len() == 1 {
            format!(
                "{} (added by op {}, acknowledged) is missing from the final state{label} on {}.",
                example.value,
                add_ops[0],
                finals.nodes_text(&missing)
            )
        } else {
            format!(
                "{} acknowledged writes are missing from the final state{label} on {}: {}.\nFor \
                 example {}, added by op {} and acknowledged.",
                writes.len(),
                finals.nodes_text(&missing),
                crate::text::compact(writes.iter().map(|w| &w.value)),
                example.value,
                add_ops[0]
            )
        };
        anomalies.push(Anomaly {
            kind: "lost-write".into(),
            explanation,
            ops: add_ops
                .iter()
                .copied()
                .take(50)
                .chain(missing.iter().map(|n| finals.op(history, n)))
                .collect(),
            data: json!({
                "key": key,
                "elements": writes.iter().map(|w| &w.value).collect::<Vec<_>>(),
                "nodes": missing,
            }),
        });
    }
    let attempted: BTreeSet<&Value> = obj.writes.iter().map(|w| &w.value).collect();
    let mut unexpected: BTreeMap<&Value, Vec<&str>> = BTreeMap::new();
    for (n, v) in states {
        for e in elements(v) {
            if !attempted.contains(e) {
                unexpected.entry(e).or_default().push(n);
            }
        }
    }
    for (e, ns) in unexpected {
        anomalies.push(Anomaly {
            kind: "unexpected-value".into(),
            explanation: format!(
                "{e} is in the final state{label} on {}, but no operation added it.",
                finals.nodes_text(&ns)
            ),
            ops: ns.iter().map(|n| finals.op(history, n)).collect(),
            data: json!({"key": key, "element": e, "nodes": ns}),
        });
    }
    if kind == Kind::List {
        duplicates(history, finals, label, key, anomalies);
    }
}

/// Elements a final list holds more than once.
fn duplicates(
    history: &History,
    finals: &Finals<'_>,
    label: &str,
    key: &Value,
    anomalies: &mut Vec<Anomaly>,
) {
    for (n, v) in &finals.states {
        let mut seen = BTreeSet::new();
        let dups: Vec<&Value> = elements(v).iter().filter(|e| !seen.insert(*e)).collect();
        if !dups.is_empty() {
            anomalies.push(Anomaly {
                kind: "duplicate".into(),
                explanation: format!(
                    "The final list{label} on {n} holds {} more than once.",
                    dups.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
                ),
                ops: vec![finals.op(history, n)],
                data: json!({"key": key, "node": n, "elements": dups}),
            });
        }
    }
}

/// Final counter values no combination of the increments explains.
pub(super) fn counter(
    history: &History,
    obj: &Object,
    finals: &Finals<'_>,
    label: &str,
    key: &Value,
    anomalies: &mut Vec<Anomaly>,
) {
    let acked: i64 = obj.writes.iter().filter(|w| w.acked).filter_map(|w| w.value.as_int()).sum();
    let unknown: Vec<i64> =
        obj.writes.iter().filter(|w| !w.acked).filter_map(|w| w.value.as_int()).collect();
    let possible = reachable_sums(acked, &unknown);
    for (n, v) in &finals.states {
        let value = v.as_int().unwrap_or(0);
        if possible.contains(value) {
            continue;
        }
        // Below the largest reachable total, some acknowledged increment
        // must be missing (with non-negative deltas).
        let kind = if value < possible.max() { "lost-write" } else { "unexpected-value" };
        anomalies.push(Anomaly {
            kind: kind.into(),
            explanation: format!(
                "The final counter{label} on {n} is {value}, but the acknowledged increments sum to {acked} \
                 and {} more of unknown outcome could add {}: the final value must be {}.",
                unknown.len(),
                unknown.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
                possible.describe()
            ),
            ops: vec![finals.op(history, n)],
            data: json!({"key": key, "node": n, "value": value, "acknowledged": acked, "unknown": unknown}),
        });
    }
}

/// The values a counter can end at: the acknowledged sum plus any subset of
/// the deltas whose outcome is unknown. Exact while there are few distinct
/// sums; an interval beyond that.
#[derive(Debug, PartialEq)]
enum Reachable {
    Exact(BTreeSet<i64>),
    Between(i64, i64),
}

fn reachable_sums(base: i64, unknown: &[i64]) -> Reachable {
    const CAP: usize = 4096;
    let mut sums = BTreeSet::from([base]);
    for d in unknown {
        let next: Vec<i64> = sums.iter().map(|s| s + d).collect();
        sums.extend(next);
        if sums.len() > CAP {
            let lo = base + unknown.iter().filter(|d| **d < 0).sum::<i64>();
            let hi = base + unknown.iter().filter(|d| **d > 0).sum::<i64>();
            return Reachable::Between(lo, hi);
        }
    }
    Reachable::Exact(sums)
}

impl Reachable {
    fn contains(&self, v: i64) -> bool {
        match self {
            Reachable::Exact(s) => s.contains(&v),
            Reachable::Between(lo, hi) => (*lo..=*hi).contains(&v),
        }
    }

    fn max(&self) -> i64 {
        match self {
            Reachable::Exact(s) => s.last().copied().unwrap_or(0),
            Reachable::Between(_, hi) => *hi,
        }
    }

    fn describe(&self) -> String {
        match self {
            Reachable::Exact(s) if s.len() <= 8 => {
                let v: Vec<String> = s.iter().map(|x| x.to_string()).collect();
                match v.len() {
                    1 => v[0].clone(),
                    _ => format!("{} or {}", v[..v.len() - 1].join(", "), v[v.len() - 1]),
                }
            }
            Reachable::Exact(s) => format!(
                "one of {} sums between {} and {}",
                s.len(),
                s.first().copied().unwrap_or(0),
                s.last().copied().unwrap_or(0)
            ),
            Reachable::Between(lo, hi) => format!("between {lo} and {hi}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachable_sums_are_exact_while_few_and_an_interval_beyond() {
        let r = reachable_sums(8, &[10]);
        assert_eq!(r, Reachable::Exact(BTreeSet::from([8, 18])));
        assert_eq!(r.describe(), "8 or 18");
        assert!(r.contains(18) && !r.contains(15));
        assert_eq!(r.max(), 18);
        // Thirteen distinct powers of two reach 8192 sums: past the cap.
        let deltas: Vec<i64> = (0..13).map(|i| 1 << i).collect();
        let r = reachable_sums(0, &deltas);
        assert_eq!(r, Reachable::Between(0, 8191));
        assert_eq!(r.describe(), "between 0 and 8191");
    }

    #[test]
    fn a_missing_acknowledged_element_is_lost_on_the_nodes_that_miss_it() {
        use super::super::read::Read;
        use crate::history::{Op, OpType, Process};
        let write = |invoke: usize, v: i64| Write {
            invoke,
            complete: Some(invoke + 1),
            acked: true,
            value: Value::Int(v),
            time_invoke: None,
            time_complete: None,
        };
        let read = |invoke: usize, node: &str, xs: &[i64]| Read {
            invoke,
            complete: invoke + 1,
            node: node.into(),
            value: Value::set(xs.iter().map(|&x| Value::Int(x)).collect()),
            is_final: true,
            time_invoke: None,
            time_complete: None,
        };
        let obj = Object {
            writes: vec![write(0, 1), write(2, 2)],
            reads: vec![read(4, "n1", &[1, 2]), read(6, "n2", &[1, 9])],
        };
        let ops: Vec<Op> = (0..8)
            .map(|i| {
                let kind = if i % 2 == 0 { OpType::Invoke } else { OpType::Ok };
                Op::new(0, Process::Client(i / 2), kind, "x", Value::Nil)
            })
            .collect();
        let h = History::from_ops_renumbered(ops);
        let finals = Finals::of(Kind::Set, &obj).expect("finals");
        let mut out = Vec::new();
        collection(Kind::Set, &h, &obj, &finals, "", &Value::Nil, &mut out);
        let kinds: Vec<&str> = out.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, vec!["lost-write", "unexpected-value"]);
        assert_eq!(
            out[0].explanation,
            "2 (added by op 3, acknowledged) is missing from the final state on n2."
        );
        assert_eq!(out[1].explanation, "9 is in the final state on n2, but no operation added it.");
    }
}
