//! Registers under last-write-wins: values nobody wrote, acknowledged writes
//! lost by the order judged by, and writes superseded by a concurrent write
//! (reported, but no anomaly: last-write-wins may keep either of two
//! concurrent writes).

use std::collections::BTreeMap;

use serde_json::json;

use super::Stop;
use super::finals::Finals;
use super::order::{Judge, Relation};
use super::read::{Object, Write};
use crate::budget::Meter;
use crate::history::History;
use crate::value::Value;
use crate::verdict::Anomaly;

/// How many superseded writes the details show.
const EXAMPLES: usize = 10;

/// Acknowledged writes superseded by a concurrent write, over all keys.
#[derive(Default)]
pub(super) struct Superseded {
    /// How many: one per write and final value it lost to (a write of a
    /// key whose nodes diverge may count once per final value).
    pub count: usize,
    /// The first few, each with the write that won and why they count as concurrent.
    pub examples: Vec<serde_json::Value>,
}

impl Superseded {
    /// The summary's tail: `; 2 acknowledged writes superseded by concurrent writes`.
    pub fn summary_tail(&self) -> String {
        match self.count {
            0 => String::new(),
            1 => "; 1 acknowledged write superseded by a concurrent write".to_owned(),
            n => format!("; {n} acknowledged writes superseded by concurrent writes"),
        }
    }
}

/// One object's register verdict: unexpected final values, lost writes,
/// superseded writes.
pub(super) struct Register<'a> {
    pub history: &'a History,
    pub judge: &'a Judge<'a>,
    pub meter: &'a Meter,
}

impl Register<'_> {
    /// Judges the final values of `obj`, one group of nodes per value.
    #[allow(clippy::too_many_arguments)]
    pub fn judge(
        &self,
        obj: &Object,
        finals: &Finals<'_>,
        label: &str,
        key: &Value,
        anomalies: &mut Vec<Anomaly>,
        superseded: &mut Superseded,
    ) -> Result<(), Stop> {
        let mut by_value: BTreeMap<&Value, Vec<&str>> = BTreeMap::new();
        for (n, v) in &finals.states {
            by_value.entry(v).or_default().push(n);
        }
        for (v, ns) in by_value {
            let read_ops: Vec<u64> = ns.iter().map(|n| finals.op(self.history, n)).collect();
            let where_ = finals.nodes_text(&ns);
            let source = obj.writes.iter().find(|w| w.value == *v);
            let lost: Vec<&Write> = match source {
                None if !v.is_nil() => {
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
                // The initial value survived: no write won, so every
                // acknowledged write is lost, whatever the order.
                None => obj.writes.iter().filter(|w| w.acked && w.value != *v).collect(),
                Some(winner) => self.lost_to(obj, winner, key, &ns, superseded)?,
            };
            let Some(latest) = lost.iter().max_by_key(|w| w.invoke) else { continue };
            let (explanation, chains) = self.explain(source, v, &lost, latest, label, &where_);
            let mut data = json!({
                "key": key,
                "nodes": ns,
                "value": v,
                "lost": lost.iter().map(|w| &w.value).collect::<Vec<_>>(),
                "order": self.judge.order().name(),
            });
            if let Some(chain) = chains {
                data["chains"] = json!([chain]);
            }
            anomalies.push(Anomaly {
                kind: "lost-write".into(),
                explanation,
                ops: read_ops
                    .into_iter()
                    .chain(lost.iter().map(|w| self.history.ops()[w.pos()].index))
                    .collect(),
                data,
            });
        }
        Ok(())
    }

    /// The acknowledged writes lost to `winner`; records those it superseded.
    fn lost_to<'o>(
        &self,
        obj: &'o Object,
        winner: &Write,
        key: &Value,
        nodes: &[&str],
        superseded: &mut Superseded,
    ) -> Result<Vec<&'o Write>, Stop> {
        let idx = |w: &Write| self.history.ops()[w.pos()].index;
        let mut lost = Vec::new();
        for w in obj.writes.iter().filter(|w| w.acked && w.value != winner.value) {
            if let Some(reason) = self.meter.tick() {
                return Err(Stop::Budget(reason));
            }
            match self.judge.relate(self.history, winner, w) {
                Relation::Before => {}
                Relation::After => lost.push(w),
                Relation::Concurrent(why) => {
                    superseded.count += 1;
                    if superseded.examples.len() < EXAMPLES {
                        superseded.examples.push(json!({
                            "key": key,
                            "op": idx(w),
                            "value": w.value,
                            "winner": {"op": idx(winner), "value": winner.value},
                            "nodes": nodes,
                            "why": why,
                        }));
                    }
                }
            }
        }
        Ok(lost)
    }

    /// The lost-write explanation, in the words of the order judged by, and
    /// the chain that makes the latest lost write lost (causal order only).
    fn explain(
        &self,
        source: Option<&Write>,
        v: &Value,
        lost: &[&Write],
        latest: &Write,
        label: &str,
        where_: &str,
    ) -> (String, Option<serde_json::Value>) {
        let idx = |w: &Write| self.history.ops()[w.pos()].index;
        let count = if lost.len() == 1 {
            "1 acknowledged write".to_owned()
        } else {
            format!("{} acknowledged writes", lost.len())
        };
        let order = self.judge.order().name();
        let Some(winner) = source else {
            let text = format!(
                "The final value{label} on {where_} is {v}, the initial value, but {count} took effect and \
                 should have won under last-write-wins over the initial value, whatever the order; the latest \
                 is {} (op {}).",
                latest.value,
                idx(latest)
            );
            return (text, None);
        };
        let head = format!(
            "The final value{label} on {where_} is {v}, written by op {}, but {count}",
            idx(winner)
        );
        match self.judge {
            Judge::Causal(c) => {
                let (gist, chain, json) = c.explain(winner, latest).unwrap_or_default();
                let text = format!(
                    "{head} came after that write and should have won under last-write-wins by {order} order: \
                     {gist}. The latest such write is {} (op {}):\n{chain}",
                    latest.value,
                    idx(latest)
                );
                (text, Some(json))
            }
            _ => (
                format!(
                    "{head} began after that write had completed and should have won under last-write-wins by \
                     {order} order; the latest is {} (op {}).",
                    latest.value,
                    idx(latest)
                ),
                None,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convergence::read::read;
    use crate::convergence::testing::history;
    use crate::convergence::{Kind, order};

    fn judge_with(h: &History, judge: &Judge<'_>) -> (Vec<Anomaly>, Superseded) {
        let r = read(h, None, &Meter::unlimited()).unwrap_or_else(|_| panic!("reads"));
        let obj = &r.objects[&Value::Nil];
        let finals = Finals::of(Kind::Register, obj).expect("finals");
        let meter = Meter::unlimited();
        let reg = Register { history: h, judge, meter: &meter };
        let (mut anomalies, mut superseded) = (Vec::new(), Superseded::default());
        reg.judge(obj, &finals, "", &Value::Nil, &mut anomalies, &mut superseded)
            .unwrap_or_else(|_| panic!("no budget"));
        (anomalies, superseded)
    }

    #[test]
    fn a_later_write_in_real_time_is_lost_and_a_concurrent_one_superseded() {
        // 2 began after 1 completed; the final value is 1.
        let h = history(&[(0, "write", 1), (1, "write", 2), (0, "final-read", 1)]);
        let (a, s) = judge_with(&h, &Judge::RealTime);
        assert_eq!(a.len(), 1);
        assert!(
            a[0].explanation.contains("by real-time order; the latest is 2 (op 3)"),
            "{}",
            a[0].explanation
        );
        assert_eq!(a[0].data["order"], "real-time");
        assert_eq!(s.count, 0);
        let (a, s) = judge_with(&h, &Judge::Unordered);
        assert!(a.is_empty());
        assert_eq!(s.count, 1);
        assert_eq!(s.examples[0]["winner"]["op"], 1);
        assert_eq!(s.summary_tail(), "; 1 acknowledged write superseded by a concurrent write");
    }

    #[test]
    fn the_initial_value_loses_every_acknowledged_write_in_any_order() {
        let h = history(&[(0, "write", 1), (1, "final-read", 0)]);
        let (a, _) = judge_with(&h, &Judge::Unordered);
        assert_eq!(a.len(), 1);
        assert!(
            a[0].explanation.starts_with("The final value on every node is nil, the initial value")
        );
    }

    #[test]
    fn a_write_after_a_read_of_the_winner_is_lost_by_causal_order() {
        let h = history(&[(0, "write", 1), (1, "read", 1), (1, "write", 2), (0, "final-read", 1)]);
        let r = read(&h, None, &Meter::unlimited()).unwrap_or_else(|_| panic!("reads"));
        let kv = order::events(&h, &r.objects).expect("unique");
        let c = order::Causality::new(&h, &kv, &Meter::unlimited())
            .unwrap_or_else(|_| panic!("clocks"));
        let (a, s) = judge_with(&h, &Judge::Causal(&c));
        assert_eq!(s.count, 0);
        assert_eq!(a.len(), 1);
        assert!(
            a[0].explanation
                .contains("by causal order: op 3 read the winner's value before op 5 wrote."),
            "{}",
            a[0].explanation
        );
        assert_eq!(a[0].data["chains"][0].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn a_write_whose_outcome_is_unknown_may_win_over_any_later_one() {
        // Write 1 timed out (info) before write 2 began; it may have taken
        // effect after write 2 (a paused node applying it on resume), so the
        // final value 1 supersedes 2 but loses nothing.
        use crate::history::{Op, OpType, Process};
        let op = |p, kind, f: &str, v: i64| {
            let v = if v == 0 { Value::Nil } else { Value::Int(v) };
            Op::new(0, Process::Client(p), kind, f, v)
        };
        let mut fin_inv = op(0, OpType::Invoke, "final-read", 0);
        fin_inv.node = Some("n0".into());
        let mut fin = op(0, OpType::Ok, "final-read", 1);
        fin.node = fin_inv.node.clone();
        let h = History::from_ops_renumbered(vec![
            op(1, OpType::Invoke, "write", 1),
            op(1, OpType::Info, "write", 1),
            op(2, OpType::Invoke, "write", 2),
            op(2, OpType::Ok, "write", 2),
            fin_inv,
            fin,
        ]);
        let (a, s) = judge_with(&h, &Judge::RealTime);
        assert!(a.is_empty(), "{a:?}");
        assert_eq!(s.count, 1);
        let why = s.examples[0].to_string();
        assert!(why.contains("its outcome is unknown"), "{why}");
    }

    #[test]
    fn a_final_value_nobody_wrote_is_unexpected() {
        let h = history(&[(0, "write", 1), (0, "final-read", 7)]);
        let (a, _) = judge_with(&h, &Judge::RealTime);
        assert_eq!(a[0].kind, "unexpected-value");
    }
}
