//! What convergence costs, measured rather than judged: how long the nodes
//! took to agree after the last write, and the stale reads during the run
//! (reads that missed acknowledged writes completed before they began).

use rustc_hash::FxHashMap;
use serde_json::json;

use super::finals::Finals;
use super::read::{Object, Read, Write};
use super::{Kind, Stop, elements, state};
use crate::budget::Meter;
use crate::history::History;
use crate::value::Value;

/// Milliseconds between two nanosecond times.
pub(super) fn ms(from: u64, to: u64) -> f64 {
    to.saturating_sub(from) as f64 / 1e6
}

/// The stale reads of every object.
#[derive(Default)]
pub(super) struct StaleReads {
    /// One entry per stale read (op, node, key, how far behind).
    reads: Vec<serde_json::Value>,
    behind_ops: Vec<u64>,
    behind_ms: Vec<f64>,
}

impl StaleReads {
    /// Adds the stale reads of `obj`: non-final reads that missed
    /// acknowledged writes completed before they began.
    pub fn add(
        &mut self,
        kind: Kind,
        history: &History,
        obj: &Object,
        key: &Value,
        meter: &Meter,
    ) -> Result<(), Stop> {
        // Acknowledged writes by completion position.
        let mut acked: Vec<&Write> =
            obj.writes.iter().filter(|w| w.acked && w.complete.is_some()).collect();
        acked.sort_by_key(|w| w.complete);
        // A register's values are unique: each names the write that made it.
        let mut written: FxHashMap<&Value, usize> = FxHashMap::default();
        if kind == Kind::Register {
            for w in &obj.writes {
                written.entry(&w.value).or_insert(w.complete.unwrap_or(usize::MAX));
            }
        }
        for r in obj.reads.iter().filter(|r| !r.is_final) {
            if let Some(reason) = meter.tick() {
                return Err(Stop::Budget(reason));
            }
            let before = acked.partition_point(|w| w.complete.is_some_and(|c| c < r.invoke));
            let missed = missed(kind, &acked[..before], r, &written);
            if missed.is_empty() {
                continue;
            }
            let lag = missed
                .iter()
                .filter_map(|w| w.time_complete)
                .min()
                .and_then(|t| r.time_invoke.map(|ti| ms(t, ti)));
            self.behind_ops.push(missed.len() as u64);
            if let Some(l) = lag {
                self.behind_ms.push(l);
            }
            self.reads.push(json!({
                "op": history.ops()[r.complete].index,
                "node": r.node,
                "key": key,
                "behind_ops": missed.len(),
                "behind_ms": lag,
            }));
        }
        Ok(())
    }

    /// The summary's tail: `; 3 stale reads during the run, up to 5 ms behind`.
    pub fn summary_tail(&self) -> String {
        let n = self.behind_ops.len();
        if n == 0 {
            return String::new();
        }
        let stale = crate::text::plural(n, "stale read");
        match self.behind_ms.iter().copied().reduce(f64::max) {
            Some(worst) => format!("; {stale} during the run, up to {worst:.0} ms behind"),
            None => format!(
                "; {stale} during the run, up to {} behind",
                crate::text::plural(
                    self.behind_ops.iter().copied().max().unwrap_or(0) as usize,
                    "write"
                )
            ),
        }
    }

    /// The verdict's `details.stale_reads`: count, quantiles and the ten stalest.
    pub fn details(mut self) -> serde_json::Value {
        self.behind_ops.sort_unstable();
        self.behind_ms.sort_by(f64::total_cmp);
        self.reads.sort_by(|a, b| {
            b["behind_ms"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&a["behind_ms"].as_f64().unwrap_or(0.0))
                .then(b["behind_ops"].as_u64().cmp(&a["behind_ops"].as_u64()))
        });
        json!({
            "count": self.behind_ops.len(),
            "behind_ops": quantiles(&self.behind_ops),
            "behind_ms": quantiles(&self.behind_ms),
            "worst": self.reads.iter().take(10).collect::<Vec<_>>(),
        })
    }
}

/// The acknowledged writes in `known` (completed before `r` began) that `r` missed.
fn missed<'w>(
    kind: Kind,
    known: &[&'w Write],
    r: &Read,
    written: &FxHashMap<&Value, usize>,
) -> Vec<&'w Write> {
    match kind {
        Kind::Set | Kind::List => {
            known.iter().copied().filter(|w| !elements(&r.value).contains(&w.value)).collect()
        }
        Kind::Counter => {
            // The newest increments the read's value leaves out.
            let value = r.value.as_int().unwrap_or(0);
            let mut sum: i64 = known.iter().filter_map(|w| w.value.as_int()).sum();
            let mut k = 0;
            while sum > value && k < known.len() {
                k += 1;
                sum -= known[known.len() - k].value.as_int().unwrap_or(0);
            }
            known[known.len() - k..].to_vec()
        }
        Kind::Register => {
            // Writes that began after the value read had been written, in
            // real time: staleness is a real-time measure, whatever order
            // lost writes are judged by. They completed after it too, so
            // only the writes completed since (`known` is in completion
            // order) are looked at: the cost is the read's staleness, not
            // the history's length.
            let done = written.get(&r.value).copied();
            let since =
                done.map_or(0, |d| known.partition_point(|w| w.complete.is_some_and(|c| c <= d)));
            known[since..]
                .iter()
                .copied()
                .filter(|w| w.value != r.value && done.is_none_or(|d| d < w.invoke))
                .collect()
        }
    }
}

/// The convergence time of one object, when its nodes agree and its ops
/// carry times: bounds on how long after the last write every node's reads
/// showed the final state from then on.
pub(super) fn convergence_time(
    kind: Kind,
    obj: &Object,
    finals: &Finals<'_>,
    key: &Value,
) -> Option<serde_json::Value> {
    let distinct = finals.distinct();
    if distinct.len() != 1 {
        return None;
    }
    let target = *distinct.iter().next()?;
    let t0 = obj
        .writes
        .iter()
        .filter_map(|w| if w.complete.is_some() { w.time_complete } else { w.time_invoke })
        .max()?;
    let mut upper: Option<u64> = None;
    let mut lower: u64 = t0;
    for node in finals.reads.keys() {
        let mut reads: Vec<&Read> = obj.reads.iter().filter(|r| r.node == *node).collect();
        reads.sort_by_key(|r| r.complete);
        // The first read from which on this node always showed the final state.
        let settled =
            reads.iter().rposition(|r| state(kind, &r.value) != *target).map_or(0, |i| i + 1);
        // An untimed read leaves the time unknown.
        let t = reads.get(settled).and_then(|r| r.time_complete)?;
        upper = Some(upper.map_or(t, |u| u.max(t)));
        if settled > 0
            && let Some(t) = reads[settled - 1].time_complete
        {
            lower = lower.max(t);
        }
    }
    let up = upper?;
    Some(json!({
        "key": key,
        "at_most_ms": ms(t0, up),
        "at_least_ms": ms(t0, lower.min(up)),
    }))
}

/// The median, 95th percentile and maximum of sorted numbers (null when empty).
pub(super) fn quantiles<T: Copy + serde::Serialize>(sorted: &[T]) -> serde_json::Value {
    if sorted.is_empty() {
        return serde_json::Value::Null;
    }
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    json!({"median": at(0.5), "p95": at(0.95), "max": at(1.0)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType, Process};

    fn write(invoke: usize, v: i64, t: u64) -> Write {
        Write {
            invoke,
            complete: Some(invoke + 1),
            acked: true,
            value: Value::Int(v),
            time_invoke: Some(t),
            time_complete: Some(t + 1_000_000),
        }
    }

    fn read(invoke: usize, node: &str, xs: &[i64], is_final: bool, t: u64) -> Read {
        Read {
            invoke,
            complete: invoke + 1,
            node: node.into(),
            value: Value::set(xs.iter().map(|&x| Value::Int(x)).collect()),
            is_final,
            time_invoke: Some(t),
            time_complete: Some(t + 1_000_000),
        }
    }

    fn history(n: usize) -> History {
        let ops: Vec<Op> = (0..n)
            .map(|i| {
                let kind = if i % 2 == 0 { OpType::Invoke } else { OpType::Ok };
                Op::new(0, Process::Client(i as u64 / 2), kind, "x", Value::Nil)
            })
            .collect();
        History::from_ops_renumbered(ops)
    }

    #[test]
    fn a_read_that_missed_a_completed_write_is_stale_by_how_long_ago_it_completed() {
        let obj = Object {
            writes: vec![write(0, 1, 0), write(2, 2, 2_000_000)],
            reads: vec![read(4, "n1", &[1], false, 10_000_000)],
        };
        let mut stale = StaleReads::default();
        stale
            .add(Kind::Set, &history(6), &obj, &Value::Nil, &Meter::unlimited())
            .expect("no budget");
        assert_eq!(stale.summary_tail(), "; 1 stale read during the run, up to 7 ms behind");
        let d = stale.details();
        assert_eq!(d["count"], 1);
        assert_eq!(d["worst"][0]["op"], 5);
    }

    #[test]
    fn convergence_time_is_bounded_by_the_last_disagreeing_and_first_agreeing_reads() {
        let obj = Object {
            writes: vec![write(0, 1, 0)],
            reads: vec![
                read(2, "n1", &[], false, 3_000_000),
                read(4, "n1", &[1], true, 9_000_000),
                read(6, "n2", &[1], true, 5_000_000),
            ],
        };
        let finals = Finals::of(Kind::Set, &obj).expect("finals");
        let c = convergence_time(Kind::Set, &obj, &finals, &Value::Nil).expect("timed");
        assert_eq!(c["at_most_ms"], 9.0);
        assert_eq!(c["at_least_ms"], 3.0);
    }

    #[test]
    fn quantiles_pick_by_nearest_rank() {
        assert_eq!(quantiles::<u64>(&[]), serde_json::Value::Null);
        assert_eq!(quantiles(&[1u64, 2, 3, 4, 5]), json!({"median": 3, "p95": 5, "max": 5}));
    }
}
