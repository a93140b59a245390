//! The timeline's data, packed for the page's canvas.
//!
//! A million operations cannot be a million DOM nodes, nor a million JSON
//! objects: each column (start, duration, process, function, outcome, op
//! index) is a little-endian typed array, base64-encoded into one JSON blob
//! that `timeline.js` decodes with `atob` into `Uint32Array`s and draws with
//! level of detail. Values (the op's arguments and results) are embedded for
//! every operation in small histories and only for the operations an anomaly
//! names in large ones, which keeps the report of a million ops near 20 MB.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt::Write;

use base64::Engine;
use checkers::History;
use serde_json::json;

use crate::intervals::{Clock, Intervals};

/// Histories with at most this many operations embed every op's value.
pub const ALL_VALUES_LIMIT: usize = 100_000;
/// Longest value text embedded per operation; longer ones are cut.
const VALUE_CHARS: usize = 200;
/// Marks "no completion" in the packed durations and completion offsets.
const NONE: u32 = u32::MAX;

/// Lane (row) assignment: a lane is a client thread. Processes that follow
/// one another (a crashed process's thread continues under a new number)
/// share a lane, so the timeline has as many rows as there were threads,
/// not as many as there were process numbers.
pub struct Lanes {
    /// Lane of each process.
    pub of: BTreeMap<u64, u32>,
    /// Processes of each lane, in order.
    pub members: Vec<Vec<u64>>,
}

impl Lanes {
    /// Assigns lanes greedily: each process, in order of its first
    /// operation, takes the lowest lane free since that operation began.
    pub fn assign(iv: &Intervals) -> Lanes {
        // First invocation and last event position of each process.
        let mut span: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
        for it in &iv.items {
            let last = it.complete.unwrap_or(usize::MAX);
            span.entry(it.process).and_modify(|s| s.1 = s.1.max(last)).or_insert((it.invoke, last));
        }
        let mut order: Vec<(u64, (usize, usize))> = span.into_iter().collect();
        order.sort_by_key(|(p, (first, _))| (*first, *p));
        let mut busy: BinaryHeap<Reverse<(usize, u32)>> = BinaryHeap::new();
        let mut free: BTreeSet<u32> = BTreeSet::new();
        let mut members: Vec<Vec<u64>> = Vec::new();
        let mut of = BTreeMap::new();
        for (p, (first, last)) in order {
            while let Some(Reverse((end, lane))) = busy.peek().copied() {
                if end < first {
                    busy.pop();
                    free.insert(lane);
                } else {
                    break;
                }
            }
            let lane = match free.pop_first() {
                Some(l) => l,
                None => {
                    members.push(Vec::new());
                    (members.len() - 1) as u32
                }
            };
            members[lane as usize].push(p);
            of.insert(p, lane);
            busy.push(Reverse((last, lane)));
        }
        Lanes { of, members }
    }
}

fn b64<T: Copy>(xs: &[T], to_le: impl Fn(T, &mut Vec<u8>)) -> String {
    let mut bytes = Vec::with_capacity(std::mem::size_of_val(xs));
    for &x in xs {
        to_le(x, &mut bytes);
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The text of an op's value and result, for tooltips.
fn value_text(history: &History, invoke: usize, complete: Option<usize>) -> String {
    let ops = history.ops();
    let mut s = ops[invoke].value.to_string();
    if let Some(c) = complete.filter(|c| *c != invoke) {
        let _ = write!(s, " → {}", ops[c].value);
        if let Some(e) = &ops[c].error {
            let _ = write!(s, " (error {e})");
        }
    }
    if s.chars().count() > VALUE_CHARS {
        s = s.chars().take(VALUE_CHARS).collect::<String>() + "…";
    }
    s
}

/// Builds the JSON blob the timeline script reads. `referenced` are the op
/// indices (`Op::index`) that anomalies name: they are highlighted, and
/// links to them resolve through `refs`.
pub fn data(history: &History, iv: &Intervals, referenced: &BTreeSet<u64>) -> String {
    let n = iv.items.len();
    let t0 = iv.start_time();
    let span = iv.end_time.saturating_sub(t0);
    // One packed unit is the smallest whole number of clock units that fits
    // the whole history into 32 bits: 1 ns for runs up to 4.2 s, about 1 µs
    // for an hour.
    let unit = span / (NONE as u64 - 1) + 1;
    let pack = |t: u64| (t.saturating_sub(t0) / unit).min(NONE as u64 - 1) as u32;
    let ops = history.ops();
    let mut start = Vec::with_capacity(n);
    let mut dur = Vec::with_capacity(n);
    let mut proc_ = Vec::with_capacity(n);
    let mut f = Vec::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let mut idx = Vec::with_capacity(n);
    let mut cdelta = Vec::with_capacity(n);
    // Op indices fit 32 bits in any history this report can draw; beyond
    // that, positions stand in for them.
    let use_pos = ops.last().map(|o| o.index > (NONE as u64 - 1)).unwrap_or(false);
    let op_id = |pos: usize| if use_pos { pos as u64 } else { ops[pos].index };
    let mut refs: BTreeMap<u64, usize> = BTreeMap::new();
    let mut highlighted: Vec<usize> = Vec::new();
    for (i, it) in iv.items.iter().enumerate() {
        let s = pack(it.start);
        start.push(s);
        dur.push(it.end.map(|e| pack(e).saturating_sub(s).min(NONE - 1)).unwrap_or(NONE));
        proc_.push(u32::try_from(it.process).unwrap_or(NONE));
        f.push(it.f.min(255) as u8);
        out.push(match it.outcome {
            checkers::OpType::Ok => 0u8,
            checkers::OpType::Fail => 1,
            _ => 2,
        });
        let inv = op_id(it.invoke);
        idx.push(inv.min(NONE as u64 - 1) as u32);
        let comp = it.complete.filter(|c| *c != it.invoke).map(op_id);
        cdelta
            .push(comp.map(|c| c.saturating_sub(inv).min(NONE as u64 - 1) as u32).unwrap_or(NONE));
        let mut hit = false;
        for id in std::iter::once(inv).chain(comp) {
            if referenced.contains(&id) {
                refs.insert(id, i);
                hit = true;
            }
        }
        if hit {
            highlighted.push(i);
        }
    }
    let values: serde_json::Value = if n <= ALL_VALUES_LIMIT {
        iv.items.iter().map(|it| value_text(history, it.invoke, it.complete)).collect()
    } else {
        serde_json::Value::Null
    };
    let value_map: BTreeMap<String, String> = if n > ALL_VALUES_LIMIT {
        highlighted
            .iter()
            .map(|&i| {
                (i.to_string(), value_text(history, iv.items[i].invoke, iv.items[i].complete))
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    // Nemesis events an anomaly names resolve to the fault period they start.
    let mut nemesis_refs: BTreeMap<u64, u32> = BTreeMap::new();
    for (k, p) in iv.faults.iter().enumerate() {
        let id = op_id(p.start_pos);
        if referenced.contains(&id) {
            nemesis_refs.insert(id, k as u32);
        }
    }
    let lanes = Lanes::assign(iv);
    let lane_labels: Vec<String> = lanes
        .members
        .iter()
        .map(|m| {
            let mut s: String =
                m.iter().take(4).map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
            if m.len() > 4 {
                let _ = write!(s, " +{}", m.len() - 4);
            }
            s
        })
        .collect();
    let lane_of: Vec<[u64; 2]> = lanes.of.iter().map(|(p, l)| [*p, u64::from(*l)]).collect();
    let blob = json!({
        "clock": match iv.clock { Clock::Nanos => "ns", Clock::Logical => "logical" },
        "unit": unit,
        "n": n,
        "end": pack(iv.end_time),
        "functions": iv.functions,
        "start": b64(&start, |x: u32, b| b.extend_from_slice(&x.to_le_bytes())),
        "dur": b64(&dur, |x: u32, b| b.extend_from_slice(&x.to_le_bytes())),
        "proc": b64(&proc_, |x: u32, b| b.extend_from_slice(&x.to_le_bytes())),
        "f": b64(&f, |x: u8, b| b.push(x)),
        "out": b64(&out, |x: u8, b| b.push(x)),
        "idx": b64(&idx, |x: u32, b| b.extend_from_slice(&x.to_le_bytes())),
        "cdelta": b64(&cdelta, |x: u32, b| b.extend_from_slice(&x.to_le_bytes())),
        "laneOf": lane_of,
        "laneLabels": lane_labels,
        "faults": iv.faults.iter().map(|p| json!([p.kind, pack(p.start), pack(p.end), p.open_ended, p.detail])).collect::<Vec<_>>(),
        "marks": iv.marks.iter().map(|m| json!([pack(m.time), m.f, m.detail])).collect::<Vec<_>>(),
        "values": values,
        "valueMap": value_map,
        "refs": refs,
        "nemesisRefs": nemesis_refs,
        "highlight": highlighted,
    });
    script_safe(&blob.to_string())
}

/// JSON made safe to sit inside `<script>`: no `</script>` or `<!--` can
/// appear once every `<` is escaped.
pub fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
}

/// The timeline's script, run once the page has loaded.
pub const SCRIPT: &str = include_str!("timeline.js");

#[cfg(test)]
mod tests {
    use checkers::{Op, OpType, Process, Value};

    use super::*;

    #[test]
    fn successive_processes_of_a_thread_share_a_lane() {
        let c = Process::Client;
        let mut ops = Vec::new();
        for (p, kind) in [
            (0, OpType::Invoke),
            (1, OpType::Invoke),
            (0, OpType::Info),
            (2, OpType::Invoke), // thread of process 0 continues as 2
            (1, OpType::Ok),
            (2, OpType::Ok),
        ] {
            ops.push(Op::new(0, c(p), kind, "read", Value::Nil));
        }
        let iv = Intervals::of(&History::from_ops_renumbered(ops));
        let lanes = Lanes::assign(&iv);
        assert_eq!(lanes.members, vec![vec![0, 2], vec![1]]);
    }

    #[test]
    fn data_escapes_markup_in_values() {
        let c = Process::Client;
        let ops = vec![
            Op::new(0, c(0), OpType::Invoke, "write", Value::str("</script><b>")),
            Op::new(1, c(0), OpType::Ok, "write", Value::str("</script><b>")),
        ];
        let h = History::new(ops);
        let d = data(&h, &Intervals::of(&h), &BTreeSet::from([1]));
        assert!(!d.contains("</script>"), "{d}");
        let v: serde_json::Value = serde_json::from_str(&d).expect("json");
        assert_eq!(v["refs"]["1"], 0);
        assert_eq!(v["highlight"][0], 0);
        assert!(v["values"][0].as_str().expect("value").contains("</script><b>"));
    }
}
