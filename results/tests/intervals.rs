//! Properties of the report's view of a history, on random histories with
//! out-of-order and missing timestamps, broken pairing and faults: every
//! operation is drawn exactly once, time never runs backwards, fault periods
//! are well formed, and the packed timeline says the same as the intervals.

use std::collections::BTreeSet;

use base64::Engine;
use checkers::{History, Op, OpType, Process, Value};
use proptest::prelude::*;
use results::intervals::Intervals;

/// One step of a random history: who acts, what it does, and the clock.
#[derive(Clone, Debug)]
struct Step {
    process: u8,
    action: u8,
    dt: i64,
    timed: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (0u8..5, 0u8..10, -50i64..400, prop::bool::weighted(0.95))
        .prop_map(|(process, action, dt, timed)| Step { process, action, dt, timed })
}

/// Builds a history from steps. Process 4 is the nemesis; the others invoke
/// when idle and complete when busy, except that action 9 breaks the rules
/// (a second invocation, or a completion of nothing).
fn history(steps: &[Step]) -> History {
    let mut ops = Vec::new();
    let mut busy = [false; 4];
    let mut t: i64 = 1_000;
    for s in steps {
        t = (t + s.dt).max(0);
        let (process, kind, f) = if s.process == 4 {
            let kinds = ["partition", "kill"];
            let f = format!(
                "{}-{}",
                if s.action % 2 == 0 { "start" } else { "stop" },
                kinds[(s.action / 2 % 2) as usize]
            );
            (Process::Nemesis, if s.action < 5 { OpType::Invoke } else { OpType::Info }, f)
        } else {
            let p = s.process as usize;
            let kind = match (busy[p], s.action) {
                (_, 9) => {
                    if busy[p] {
                        OpType::Invoke
                    } else {
                        OpType::Ok
                    }
                }
                (false, _) => OpType::Invoke,
                (true, a) if a < 6 => OpType::Ok,
                (true, a) if a < 8 => OpType::Fail,
                (true, _) => OpType::Info,
            };
            busy[p] = kind == OpType::Invoke;
            (
                Process::Client(u64::from(s.process)),
                kind,
                if s.action % 2 == 0 { "read" } else { "write" }.to_owned(),
            )
        };
        let mut op = Op::new(0, process, kind, f, Value::Int(s.action.into()));
        op.time = s.timed.then_some(t as u64);
        ops.push(op);
    }
    History::from_ops_renumbered(ops)
}

fn u32s(d: &serde_json::Value, name: &str) -> Vec<u32> {
    let b = base64::engine::general_purpose::STANDARD
        .decode(d[name].as_str().expect("column"))
        .expect("b64");
    b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_operation_is_drawn_once_and_time_runs_forward(steps in prop::collection::vec(step(), 1..300)) {
        let h = history(&steps);
        let iv = Intervals::of(&h);
        let ops = h.ops();
        // Every client invocation starts exactly one interval; no event is used twice.
        let invokes: BTreeSet<usize> = ops.iter().enumerate()
            .filter(|(_, o)| o.process != Process::Nemesis && o.kind == OpType::Invoke)
            .map(|(p, _)| p).collect();
        let drawn: BTreeSet<usize> = iv.items.iter().filter(|i| ops[i.invoke].kind == OpType::Invoke).map(|i| i.invoke).collect();
        prop_assert_eq!(&drawn, &invokes);
        let mut used = BTreeSet::new();
        for it in &iv.items {
            prop_assert!(used.insert(it.invoke) || it.complete == Some(it.invoke));
            if let Some(c) = it.complete.filter(|c| *c != it.invoke) {
                prop_assert!(used.insert(c), "completion {} used twice", c);
                prop_assert!(c > it.invoke);
                prop_assert_eq!(ops[c].process, ops[it.invoke].process);
            }
            if let Some(e) = it.end { prop_assert!(e >= it.start); }
        }
        prop_assert!(iv.items.windows(2).all(|w| w[0].start <= w[1].start));
        for f in &iv.faults {
            prop_assert!(f.start <= f.end && f.end <= iv.end_time.max(f.start));
        }

        // The packed timeline holds the same operations, in the same order.
        let referenced: BTreeSet<u64> = ops.iter().step_by(7).map(|o| o.index).collect();
        let r = results::RunResults::new(&h, Vec::new());
        let input = results::report::ReportInput {
            name: "p", timestamp: "1", spec: None, spec_path: String::new(), replay: None, history: Some(&h),
            results: Some(&r), problems: Vec::new(), node_logs: &[], run_files: Vec::new(), checkers: &checkers::registry::CheckerTable::builtin(),
        };
        let html = results::report::render(&input);
        prop_assert!(html.contains("id=\"timeline-data\""));
        let d: serde_json::Value = serde_json::from_str(&results::report::timeline::data(&h, &iv, &referenced)).expect("json");
        let start = u32s(&d, "start");
        prop_assert_eq!(start.len(), iv.items.len());
        prop_assert!(start.windows(2).all(|w| w[0] <= w[1]));
        let idx = u32s(&d, "idx");
        for (i, it) in iv.items.iter().enumerate() {
            prop_assert_eq!(u64::from(idx[i]), ops[it.invoke].index);
        }
        for (op, interval) in d["refs"].as_object().expect("refs") {
            let i = interval.as_u64().expect("interval") as usize;
            let it = iv.items[i];
            let op: u64 = op.parse().expect("op index");
            prop_assert!(ops[it.invoke].index == op || it.complete.map(|c| ops[c].index) == Some(op));
        }
    }
}
