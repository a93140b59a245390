//! Registers under last-write-wins: values nobody wrote, and acknowledged
//! writes lost to a write that completed before they began.

use std::collections::BTreeMap;

use serde_json::json;

use super::Stop;
use super::finals::Finals;
use super::read::{Object, Write};
use crate::budget::Meter;
use crate::history::History;
use crate::value::Value;
use crate::verdict::Anomaly;

/// One object's register verdict: unexpected final values and lost writes.
pub(super) struct Register<'a> {
    pub history: &'a History,
    pub meter: &'a Meter,
}

impl Register<'_> {
    /// Judges the final values of `obj`, one group of nodes per value.
    pub fn judge(
        &self,
        obj: &Object,
        finals: &Finals<'_>,
        label: &str,
        key: &Value,
        anomalies: &mut Vec<Anomaly>,
    ) -> Result<(), Stop> {
        let idx = |w: &Write| self.history.ops()[w.pos()].index;
        let mut by_value: BTreeMap<&Value, Vec<&str>> = BTreeMap::new();
        for (n, v) in &finals.states {
            by_value.entry(v).or_default().push(n);
        }
        for (v, ns) in by_value {
            let read_ops: Vec<u64> = ns.iter().map(|n| finals.op(self.history, n)).collect();
            let where_ = finals.nodes_text(&ns);
            let source = obj.writes.iter().find(|w| w.value == *v);
            if source.is_none() && !v.is_nil() {
                anomalies.push(Anomaly {
                    kind: "unexpected-value".into(),
                    explanation: format!(
                        "The final value{label} on {where_} is {v}, but no operation wrote it."
                    ),
                    ops: read_ops,
                    data: json!({"key": key, "nodes": ns, "value": v}),
                });
                continue;
            }
            // Under last-write-wins, an acknowledged write that began
            // after the winner had completed should have won.
            let done = source.map(|w| w.complete.unwrap_or(usize::MAX));
            let mut lost: Vec<&Write> = Vec::new();
            for w in obj.writes.iter().filter(|w| w.acked && w.value != *v) {
                if let Some(reason) = self.meter.tick() {
                    return Err(Stop::Budget(reason));
                }
                if done.is_none_or(|d| d < w.invoke) {
                    lost.push(w);
                }
            }
            let Some(latest) = lost.iter().max_by_key(|w| w.invoke) else { continue };
            let winner = match source {
                Some(w) => format!(", written by op {}", idx(w)),
                None => ", the initial value".into(),
            };
            anomalies.push(Anomaly {
                kind: "lost-write".into(),
                explanation: format!(
                    "The final value{label} on {where_} is {v}{winner}, but {} acknowledged write{} began after \
                     that write had completed and should have won under last-write-wins; the latest is {} (op {}).",
                    lost.len(),
                    if lost.len() == 1 { "" } else { "s" },
                    latest.value,
                    idx(latest)
                ),
                ops: read_ops.into_iter().chain(lost.iter().map(|w| idx(w))).collect(),
                data: json!({"key": key, "nodes": ns, "value": v, "lost": lost.iter().map(|w| &w.value).collect::<Vec<_>>()}),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convergence::Kind;
    use crate::convergence::read::read;
    use crate::history::{Op, OpType, Process};

    /// `(process, f, value)` ops, each invoked and completed `ok` at once;
    /// `final-read`s on node `n<process>`.
    fn history(ops: &[(u64, &str, i64)]) -> History {
        let mut out = Vec::new();
        for &(p, f, v) in ops {
            let value = if v == 0 { Value::Nil } else { Value::Int(v) };
            let inv = if f == "write" { value.clone() } else { Value::Nil };
            let mut i = Op::new(0, Process::Client(p), OpType::Invoke, f, inv);
            let mut o = Op::new(0, Process::Client(p), OpType::Ok, f, value);
            if f == "final-read" {
                i.node = Some(format!("n{p}").into());
                o.node = i.node.clone();
            }
            out.extend([i, o]);
        }
        History::from_ops_renumbered(out)
    }

    fn judge(h: &History) -> Vec<Anomaly> {
        let r = read(h, None, &Meter::unlimited()).expect("reads");
        let obj = &r.objects[&Value::Nil];
        let finals = Finals::of(Kind::Register, obj).expect("finals");
        let meter = Meter::unlimited();
        let mut anomalies = Vec::new();
        Register { history: h, meter: &meter }
            .judge(obj, &finals, "", &Value::Nil, &mut anomalies)
            .expect("no budget");
        anomalies
    }

    #[test]
    fn a_write_begun_after_the_winner_completed_is_lost() {
        let h = history(&[(0, "write", 1), (1, "write", 2), (0, "final-read", 1)]);
        let a = judge(&h);
        assert_eq!(a.len(), 1);
        assert!(a[0].explanation.ends_with("the latest is 2 (op 3)."), "{}", a[0].explanation);
    }

    #[test]
    fn the_initial_value_loses_every_acknowledged_write() {
        let h = history(&[(0, "write", 1), (1, "final-read", 0)]);
        let a = judge(&h);
        assert_eq!(a.len(), 1);
        assert!(
            a[0].explanation.starts_with("The final value on every node is nil, the initial value")
        );
    }

    #[test]
    fn a_final_value_nobody_wrote_is_unexpected() {
        let h = history(&[(0, "write", 1), (0, "final-read", 7)]);
        assert_eq!(judge(&h)[0].kind, "unexpected-value");
    }
}
