//! A history seen as a report draws it: client operations as time intervals,
//! nemesis events, and the fault periods between `start-<kind>` and
//! `stop-<kind>`.
//!
//! Checkers reject a history that does not pair (two invocations in flight
//! on one process); a report must still draw it, because that history is
//! the evidence of what went wrong. So pairing here is lenient: it keeps
//! going, draws what it can, and remembers the first problem to show it.

use std::collections::{BTreeMap, HashMap};

use checkers::{History, OpType, Process};

/// Where positions on the time axis come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Nanoseconds since the test started, as recorded in `Op::time`.
    Nanos,
    /// The history has no timestamps: the event's position in the history.
    Logical,
}

/// One client operation: its invocation and, if it came, its completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Position of the invocation in `History::ops`.
    pub invoke: usize,
    /// Position of the completion, if one came.
    pub complete: Option<usize>,
    /// The client process.
    pub process: u64,
    /// Index into `Intervals::functions`.
    pub f: u16,
    /// Ok, fail or info (an operation that never completed is info).
    pub outcome: OpType,
    /// When it was invoked (see `Intervals::clock` for the unit).
    pub start: u64,
    /// When it completed, if it did.
    pub end: Option<u64>,
}

impl Interval {
    /// How long it took, if it completed.
    pub fn latency(&self) -> Option<u64> {
        self.end.map(|e| e.saturating_sub(self.start))
    }
}

/// A period during which a fault was active.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultPeriod {
    /// The fault kind: `partition`, `kill`, `pause`, `clock`, `packet`, `file`...
    pub kind: String,
    /// When the `start-<kind>` was invoked.
    pub start: u64,
    /// When the `stop-<kind>` completed (or the end of the history).
    pub end: u64,
    /// True when the history ended before the fault was stopped.
    pub open_ended: bool,
    /// The targets and parameters (the start event's value), as EDN text.
    pub detail: String,
    /// Position of the `start-<kind>` event in the history.
    pub start_pos: usize,
}

/// A nemesis event that is not part of a start/stop pair, drawn as a marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NemesisMark {
    /// When it happened.
    pub time: u64,
    /// Its function.
    pub f: String,
    /// Its value, as EDN text.
    pub detail: String,
}

/// The operations of a history as intervals, ready to draw and to summarise.
#[derive(Clone, Debug)]
pub struct Intervals {
    /// Client operations, in invocation order (so `start` never decreases).
    pub items: Vec<Interval>,
    /// Distinct client functions, in order of first appearance.
    pub functions: Vec<String>,
    /// Fault periods, in order of their start.
    pub faults: Vec<FaultPeriod>,
    /// Nemesis events that are neither a start nor a stop.
    pub marks: Vec<NemesisMark>,
    /// Unit of every time here.
    pub clock: Clock,
    /// The time of the last event.
    pub end_time: u64,
    /// The first pairing problem, as "file:line: message", if any.
    pub problem: Option<String>,
    /// Number of nemesis events.
    pub nemesis_events: usize,
}

impl Intervals {
    /// Pairs the client operations of `history` and collects its fault periods.
    pub fn of(history: &History) -> Intervals {
        let ops = history.ops();
        let clock =
            if ops.iter().any(|o| o.time.is_some()) { Clock::Nanos } else { Clock::Logical };
        // Times never go backwards along the history: its order is the real-time
        // order, and a timestamp taken slightly out of order by a racing thread
        // must not make an interval end before it starts.
        let mut times = Vec::with_capacity(ops.len());
        let mut last = 0u64;
        for (pos, op) in ops.iter().enumerate() {
            let t = match clock {
                Clock::Nanos => op.time.unwrap_or(last),
                Clock::Logical => pos as u64,
            };
            last = last.max(t);
            times.push(last);
        }

        let mut items: Vec<Interval> = Vec::with_capacity(ops.len() / 2 + 1);
        let mut functions: Vec<String> = Vec::new();
        let mut function_ids: HashMap<&str, u16> = HashMap::new();
        let mut pending: HashMap<u64, usize> = HashMap::new();
        let mut problem: Option<String> = None;
        let mut nemesis: Vec<usize> = Vec::new();
        let note = |problem: &mut Option<String>, pos: usize, msg: String| {
            if problem.is_none() {
                *problem = Some(format!("{}: {msg}", history.locate(pos)));
            }
        };

        for (pos, op) in ops.iter().enumerate() {
            let Process::Client(p) = op.process else {
                nemesis.push(pos);
                continue;
            };
            let next_id = functions.len().min(u16::MAX as usize) as u16;
            let f = *function_ids.entry(op.f.as_str()).or_insert_with(|| {
                if functions.len() < u16::MAX as usize {
                    functions.push(op.f.to_string());
                }
                next_id
            });
            match (op.kind, pending.get(&p).copied()) {
                (OpType::Invoke, prev) => {
                    if prev.is_some() {
                        note(
                            &mut problem,
                            pos,
                            format!(
                                "process {p} invokes {} while its previous operation is still \
                                 in flight; that one is drawn as never completed",
                                op.f
                            ),
                        );
                    }
                    pending.insert(p, items.len());
                    items.push(Interval {
                        invoke: pos,
                        complete: None,
                        process: p,
                        f,
                        outcome: OpType::Info,
                        start: times[pos],
                        end: None,
                    });
                }
                (kind, Some(i)) => {
                    pending.remove(&p);
                    let it = &mut items[i];
                    it.complete = Some(pos);
                    it.outcome = kind;
                    it.end = Some(times[pos]);
                }
                (kind, None) => {
                    if kind != OpType::Info {
                        note(
                            &mut problem,
                            pos,
                            format!(
                                "process {p} completes {} ({}) with no pending invocation; \
                                 drawn as an instant",
                                op.f,
                                kind.as_str()
                            ),
                        );
                    }
                    items.push(Interval {
                        invoke: pos,
                        complete: Some(pos),
                        process: p,
                        f,
                        outcome: kind,
                        start: times[pos],
                        end: Some(times[pos]),
                    });
                }
            }
        }

        let end_time = times.last().copied().unwrap_or(0);
        let (faults, marks) = fault_periods(history, &nemesis, &times, end_time);
        Intervals {
            items,
            functions,
            faults,
            marks,
            clock,
            end_time,
            problem,
            nemesis_events: nemesis.len(),
        }
    }

    /// When the first drawn thing (an operation or a fault) began.
    pub fn start_time(&self) -> u64 {
        let first_op = self.items.first().map(|i| i.start).unwrap_or(0);
        first_op.min(self.faults.first().map(|f| f.start).unwrap_or(u64::MAX))
    }

    /// Counts of ok/fail/info per function, in function order.
    pub fn outcome_counts(&self) -> BTreeMap<String, OutcomeCounts> {
        let mut out: BTreeMap<String, OutcomeCounts> = BTreeMap::new();
        for it in &self.items {
            let c = out.entry(self.functions[it.f as usize].clone()).or_default();
            c.add(it.outcome);
        }
        out
    }
}

/// How many operations ended each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutcomeCounts {
    /// Completed `ok`.
    #[serde(default)]
    pub ok: u64,
    /// Completed `fail`.
    #[serde(default)]
    pub fail: u64,
    /// Indeterminate (`info`, or never completed).
    #[serde(default)]
    pub info: u64,
}

impl OutcomeCounts {
    /// Counts one more operation with `outcome`.
    pub fn add(&mut self, outcome: OpType) {
        match outcome {
            OpType::Ok => self.ok += 1,
            OpType::Fail => self.fail += 1,
            OpType::Info | OpType::Invoke => self.info += 1,
        }
    }

    /// All operations counted.
    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }
}

/// Pairs `start-<kind>` with `stop-<kind>` events into periods.
///
/// A nemesis may record each action as an invocation and a completion (both
/// carrying the same `f`), or as two `info` events as Jepsen does. A period
/// opens at the first `start-<kind>` event and closes at the last event of
/// the `stop-<kind>` action that follows, so the shaded area covers the whole
/// time the fault could have been in effect.
fn fault_periods(
    history: &History,
    nemesis: &[usize],
    times: &[u64],
    end_time: u64,
) -> (Vec<FaultPeriod>, Vec<NemesisMark>) {
    let ops = history.ops();
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    let mut periods: Vec<FaultPeriod> = Vec::new();
    let mut marks = Vec::new();
    // The period closed by the previous nemesis event, if it was a stop:
    // the stop's own completion extends it.
    let mut last_stop: Option<(String, usize)> = None;
    for &pos in nemesis {
        let op = &ops[pos];
        let t = times[pos];
        if let Some(kind) = op.f.strip_prefix("start-") {
            last_stop = None;
            match open.get(kind) {
                Some(&i) => {
                    // The start's completion carries the real targets (the grudge).
                    if op.value != checkers::Value::Nil {
                        periods[i].detail = op.value.to_string();
                    }
                }
                None => {
                    open.insert(kind.to_owned(), periods.len());
                    periods.push(FaultPeriod {
                        kind: kind.to_owned(),
                        start: t,
                        end: end_time,
                        open_ended: true,
                        detail: if op.value == checkers::Value::Nil {
                            String::new()
                        } else {
                            op.value.to_string()
                        },
                        start_pos: pos,
                    });
                }
            }
        } else if let Some(kind) = op.f.strip_prefix("stop-") {
            if let Some(i) = open.remove(kind) {
                periods[i].end = t;
                periods[i].open_ended = false;
                last_stop = Some((kind.to_owned(), i));
            } else if let Some((_, i)) = last_stop.as_ref().filter(|(k, _)| k == kind) {
                periods[*i].end = t;
            }
        } else {
            last_stop = None;
            marks.push(NemesisMark {
                time: t,
                f: op.f.to_string(),
                detail: if op.value == checkers::Value::Nil {
                    String::new()
                } else {
                    op.value.to_string()
                },
            });
        }
    }
    (periods, marks)
}

#[cfg(test)]
mod tests {
    use checkers::{Op, Value};

    use super::*;

    fn op(p: Process, kind: OpType, f: &str, t: u64) -> Op {
        let mut o = Op::new(0, p, kind, f, Value::Nil);
        o.time = Some(t);
        o
    }

    #[test]
    fn pairs_operations_and_shades_fault_periods() {
        let c = Process::Client;
        let n = Process::Nemesis;
        let h = History::from_ops_renumbered(vec![
            op(c(0), OpType::Invoke, "write", 10),
            op(n, OpType::Invoke, "start-partition", 15),
            op(n, OpType::Info, "start-partition", 16),
            op(c(1), OpType::Invoke, "read", 20),
            op(c(0), OpType::Ok, "write", 30),
            op(n, OpType::Invoke, "stop-partition", 40),
            op(n, OpType::Info, "stop-partition", 45),
            op(c(1), OpType::Info, "read", 50),
            op(c(2), OpType::Invoke, "read", 60),
            op(n, OpType::Info, "start-kill", 70),
        ]);
        let iv = Intervals::of(&h);
        assert_eq!(iv.items.len(), 3);
        assert_eq!(iv.functions, vec!["write", "read"]);
        assert_eq!(
            (iv.items[0].start, iv.items[0].end, iv.items[0].outcome),
            (10, Some(30), OpType::Ok)
        );
        assert_eq!(iv.items[1].outcome, OpType::Info);
        assert_eq!(iv.items[2].end, None);
        assert_eq!(iv.faults.len(), 2);
        assert_eq!(
            (iv.faults[0].start, iv.faults[0].end, iv.faults[0].open_ended),
            (15, 45, false)
        );
        assert_eq!(
            (iv.faults[1].kind.as_str(), iv.faults[1].end, iv.faults[1].open_ended),
            ("kill", 70, true)
        );
        assert_eq!(iv.problem, None);
    }

    #[test]
    fn broken_pairing_is_drawn_and_reported() {
        let c = Process::Client;
        let h = History::from_ops_renumbered(vec![
            op(c(0), OpType::Invoke, "write", 1),
            op(c(0), OpType::Invoke, "write", 2),
            op(c(3), OpType::Ok, "read", 3),
        ]);
        let iv = Intervals::of(&h);
        assert_eq!(iv.items.len(), 3);
        let problem = iv.problem.expect("problem noted");
        assert!(problem.contains("op index 1") && problem.contains("process 0"), "{problem}");
    }

    #[test]
    fn histories_without_time_use_positions() {
        let mut a = Op::new(0, Process::Client(0), OpType::Invoke, "read", Value::Nil);
        let mut b = a.clone();
        b.kind = OpType::Ok;
        a.time = None;
        b.time = None;
        let iv = Intervals::of(&History::from_ops_renumbered(vec![a, b]));
        assert_eq!(iv.clock, Clock::Logical);
        assert_eq!((iv.items[0].start, iv.items[0].end), (0, Some(1)));
    }
}
