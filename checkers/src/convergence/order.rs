//! The order lost register writes are judged by (`--opt order`): real time,
//! causality, or none.
//!
//! A last-write-wins register keeps one write and drops the rest; which
//! one it keeps depends on the order the store promises. A store ordered
//! by wall clocks promises real-time order (a write that began after
//! another completed wins). A store ordered by Lamport clocks promises only
//! causal order: under a partition, a write on one side and a later one in
//! real time on the other are concurrent, and either may win. Only a write
//! the promised order puts after the winner is lost; one it leaves
//! concurrent with the winner is superseded, which is no anomaly.
//!
//! Causal order here is happens-before over the whole history (every key):
//! session order (a process's earlier operations) plus reads-from (a read
//! of value v on key k follows the write of v to k, whether that write was
//! acknowledged or not). It is computed as vector clocks over processes by
//! the causal checker's graph (`causal::graph`), with a search along the
//! edges where a cycle leaves events without clocks, and the chain that
//! makes a write lost is explained in the causal checker's words.

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::FxHashMap;

use super::Stop;
use super::read::{Object, Write};
use crate::budget::Meter;
use crate::causal::explain::Explainer;
use crate::causal::graph::{Chain, Clocks, Extra, Graph, Step};
use crate::error::CheckError;
use crate::history::History;
use crate::kv::{Access, Event, KvHistory, NONE, Session};
use crate::value::Value;

/// The order lost register writes are judged by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    /// A write that began after the winner completed should have won (a
    /// store ordered by wall clocks; the default).
    #[default]
    RealTime,
    /// A write the winner happens-before should have won (a store ordered
    /// by Lamport clocks, or any causally consistent one).
    Causal,
    /// No order is promised: no write is lost by order.
    None,
}

impl Order {
    /// The choices, as `--opt order` spells them.
    pub const CHOICES: &'static str = "real-time, causal or none";

    /// Reads `--opt order`.
    pub fn parse(s: &str) -> Option<Order> {
        match s {
            "real-time" => Some(Order::RealTime),
            "causal" => Some(Order::Causal),
            "none" => Some(Order::None),
            _ => None,
        }
    }

    /// The name `--opt order` takes, and `details.order` shows.
    pub fn name(self) -> &'static str {
        match self {
            Order::RealTime => "real-time",
            Order::Causal => "causal",
            Order::None => "none",
        }
    }

    /// The summary's note of the order: `lost writes judged by causal order`.
    pub(super) fn summary_note(self) -> &'static str {
        match self {
            Order::RealTime => "lost writes judged by real-time order",
            Order::Causal => "lost writes judged by causal order",
            Order::None => "no order promised: writes are lost only to the initial value",
        }
    }
}

/// How a write stands to the winner in the order judged by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Relation {
    /// Ordered before the winner: overwritten, as last-write-wins intends.
    Before,
    /// Ordered after the winner: it should have won, so it is lost.
    After,
    /// Neither: superseded by a concurrent write (no anomaly), and why they
    /// count as concurrent.
    Concurrent(String),
}

/// The order, ready to relate writes.
pub(super) enum Judge<'a> {
    RealTime,
    Causal(&'a Causality<'a>),
    Unordered,
}

impl Judge<'_> {
    /// The order judged by.
    pub fn order(&self) -> Order {
        match self {
            Judge::RealTime => Order::RealTime,
            Judge::Causal(_) => Order::Causal,
            Judge::Unordered => Order::None,
        }
    }

    /// How `w` stands to `winner`, two writes of one key.
    pub fn relate(&self, history: &History, winner: &Write, w: &Write) -> Relation {
        let idx = |w: &Write| history.ops()[w.pos()].index;
        match self {
            Judge::RealTime => {
                // A winner whose outcome is unknown (`info`: a timeout) has
                // no completion: its effect may land at any time after it
                // began, even after the harness stopped waiting for it.
                let winner_done = winner.complete.filter(|_| winner.acked);
                if w.complete.is_some_and(|c| c < winner.invoke) {
                    Relation::Before
                } else if winner_done.is_some_and(|d| d < w.invoke) {
                    Relation::After
                } else if winner_done.is_none() {
                    Relation::Concurrent(format!(
                        "op {} (the winner) never completed (its outcome is unknown), so it may \
                         have taken effect after op {}",
                        idx(winner),
                        idx(w)
                    ))
                } else {
                    Relation::Concurrent(format!(
                        "op {} and op {} overlapped in real time: each began before the other completed",
                        idx(w),
                        idx(winner)
                    ))
                }
            }
            Judge::Causal(c) => {
                let (a, b) = (c.event(winner.invoke), c.event(w.invoke));
                if c.happens_before(b, a) {
                    Relation::Before
                } else if c.happens_before(a, b) {
                    Relation::After
                } else {
                    Relation::Concurrent(format!(
                        "no chain of session order and reads-from leads from op {} to op {} or back",
                        idx(winner),
                        idx(w)
                    ))
                }
            }
            Judge::Unordered => {
                Relation::Concurrent("--opt order=none promises no order between writes".to_owned())
            }
        }
    }
}

/// Happens-before over a history's register operations.
pub(super) struct Causality<'k> {
    history: &'k History,
    kv: &'k KvHistory,
    graph: Graph<'k>,
    clocks: Clocks,
    /// The event of each operation, by its invocation's history position.
    by_invoke: FxHashMap<usize, u32>,
}

/// Every register operation of `objects` as an event in its process's
/// session, in invocation order. Refuses a history that writes one value
/// twice to a key, or writes the initial value: a read of such a value
/// would not name the one write it saw.
pub(super) fn events(
    history: &History,
    objects: &BTreeMap<Value, Object>,
) -> Result<KvHistory, Stop> {
    let ops = history.ops();
    // (invocation, naming position, key id, access, value, acknowledged)
    let mut items: Vec<(usize, usize, u32, Access, &Value, bool)> = Vec::new();
    for (k, obj) in objects.values().enumerate() {
        let k = k as u32;
        items.extend(
            obj.writes.iter().map(|w| (w.invoke, w.pos(), k, Access::Write, &w.value, w.acked)),
        );
        items.extend(
            obj.reads.iter().map(|r| (r.invoke, r.complete, k, Access::Read, &r.value, true)),
        );
    }
    items.sort_unstable_by_key(|i| i.0);
    let mut kv = KvHistory { keys: objects.keys().cloned().collect(), ..KvHistory::default() };
    let mut sessions: FxHashMap<u64, u32> = FxHashMap::default();
    let mut writers: FxHashMap<(u32, &Value), usize> = FxHashMap::default();
    for (invoke, pos, key, access, value, acked) in items {
        if access == Access::Write {
            unique_write(history, &kv, &mut writers, key, value, pos)?;
        }
        // Reads and writes come from client processes only.
        let process = ops[invoke].process.client().unwrap_or(u64::MAX);
        let session = *sessions.entry(process).or_insert_with(|| {
            kv.sessions.push(Session { process, events: Vec::new() });
            kv.sessions.len() as u32 - 1
        });
        let id = kv.events.len() as u32;
        let events = &mut kv.sessions[session as usize].events;
        kv.events.push(Event {
            pos,
            invoke,
            mop: None,
            session,
            seq: events.len() as u32,
            access,
            key,
            value: value.clone(),
            acked,
        });
        events.push(id);
    }
    Ok(kv)
}

/// Records the write of `value` to `key` at `pos`, refusing a second one.
fn unique_write<'v>(
    history: &History,
    kv: &KvHistory,
    writers: &mut FxHashMap<(u32, &'v Value), usize>,
    key: u32,
    value: &'v Value,
    pos: usize,
) -> Result<(), Stop> {
    let name = match kv.key_name(key) {
        k if k.is_empty() => "the register".to_owned(),
        k => format!("key {k}"),
    };
    let op = |p: usize| history.ops()[p].index;
    if value.is_nil() {
        return Err(Stop::from(CheckError::BadOp {
            location: history.locate(pos).field("value"),
            message: format!(
                "op {} writes nil to {name}, the initial value; with --opt order=causal the convergence \
                 checker cannot tell a read of it from a read of the initial value. Write non-nil values",
                op(pos)
            ),
        }));
    }
    if let Some(&first) = writers.get(&(key, value)) {
        return Err(Stop::from(CheckError::BadOp {
            location: history.locate(pos).field("value"),
            message: format!(
                "{name} is given the value {value} twice, by op {} ({}) and op {}; with --opt order=causal \
                 the convergence checker needs each value written at most once per key, so that every read \
                 names the one write it observed. Make the workload write unique values per key",
                op(first),
                history.locate(first),
                op(pos)
            ),
        }));
    }
    writers.insert((key, value), pos);
    Ok(())
}

impl<'k> Causality<'k> {
    /// Happens-before over `kv`'s events, as vector clocks. The clocks take
    /// events × processes counters, which the meter counts.
    pub fn new(
        history: &'k History,
        kv: &'k KvHistory,
        meter: &Meter,
    ) -> Result<Causality<'k>, Stop> {
        let n = kv.events.len();
        let width = kv.sessions.len().max(1);
        // The clocks, and the validity, pass and in-degree stamps beside them.
        meter.count(n * (width + 3) * std::mem::size_of::<u32>());
        if let Some(reason) = meter.exhausted() {
            return Err(Stop::Budget(reason));
        }
        let mut written: FxHashMap<(u32, &Value), u32> = FxHashMap::default();
        for (i, e) in kv.events.iter().enumerate() {
            if e.access == Access::Write {
                written.insert((e.key, &e.value), i as u32);
            }
        }
        let rf_src: Vec<u32> = kv
            .events
            .iter()
            .map(|e| match e.access {
                Access::Read => written.get(&(e.key, &e.value)).copied().unwrap_or(NONE),
                Access::Write => NONE,
            })
            .collect();
        let by_invoke = kv.events.iter().enumerate().map(|(i, e)| (e.invoke, i as u32)).collect();
        let graph = Graph::new(kv, rf_src);
        let mut clocks = Clocks::new(n, width);
        let all: Vec<u32> = (0..n as u32).collect();
        // Events on or after a cycle get no clock; `happens_before` searches for them.
        graph.clocks(&Extra::default(), &all, &|_| true, &mut clocks, None);
        if let Some(reason) = meter.exhausted() {
            return Err(Stop::Budget(reason));
        }
        Ok(Causality { history, kv, graph, clocks, by_invoke })
    }

    /// The event of the operation invoked at history position `invoke`.
    fn event(&self, invoke: usize) -> u32 {
        self.by_invoke.get(&invoke).copied().unwrap_or(NONE)
    }

    /// Numbers of events and processes, for the verdict's details.
    pub fn size(&self) -> (usize, usize) {
        (self.kv.events.len(), self.kv.sessions.len())
    }

    /// True when `a` happens before `b` (`a` ≠ `b`).
    fn happens_before(&self, a: u32, b: u32) -> bool {
        if a == NONE || b == NONE || a == b {
            return false;
        }
        if self.clocks.done(a) && self.clocks.done(b) {
            self.graph.in_past(&self.clocks, a, b)
        } else {
            self.chain(a, b).is_some()
        }
    }

    /// A shortest chain of session order and reads-from from `a` to `b`.
    fn chain(&self, a: u32, b: u32) -> Option<Chain> {
        let extra = Extra::default();
        let mut parent: FxHashMap<u32, u32> = FxHashMap::default();
        let mut queue = VecDeque::from([a]);
        let mut succ = Vec::new();
        while let Some(u) = queue.pop_front() {
            if u == b {
                break;
            }
            self.graph.succs(&extra, u, &mut succ);
            for &v in &succ {
                if v != a && !parent.contains_key(&v) {
                    parent.insert(v, u);
                    queue.push_back(v);
                }
            }
        }
        let mut events = vec![b];
        let mut cur = b;
        while cur != a {
            cur = *parent.get(&cur)?;
            events.push(cur);
        }
        events.reverse();
        let steps = events
            .windows(2)
            .map(|w| {
                if self.graph.rf_src[w[1] as usize] == w[0] {
                    Step::ReadFrom
                } else {
                    Step::Session
                }
            })
            .collect();
        Some(Chain { events, steps }.compress())
    }

    /// Why `lost` is lost to `winner`: the gist (`op 5 read the winner's
    /// value before op 7 wrote`), the chain one operation a line, and the
    /// chain as JSON for the picture.
    pub fn explain(
        &self,
        winner: &Write,
        lost: &Write,
    ) -> Option<(String, String, serde_json::Value)> {
        let (a, b) = (self.event(winner.invoke), self.event(lost.invoke));
        let chain = self.chain(a, b)?;
        let second = *chain.events.get(1)?;
        let idx = |e: u32| self.kv.op_index(self.history, e);
        let first = match chain.steps.first()? {
            Step::ReadFrom => format!("op {} read the winner's value", idx(second)),
            _ => format!(
                "op {} followed the winner in process {}'s session",
                idx(second),
                self.kv.process(second)
            ),
        };
        let gist = if second == b { first } else { format!("{first} before op {} wrote", idx(b)) };
        let explainer = Explainer { history: self.history, kv: self.kv };
        let text = explainer.chain_text(&chain).trim_end().to_owned();
        Some((gist, text, explainer.chain_json(&chain)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convergence::read::read;
    use crate::convergence::testing::history;

    fn writes(h: &History) -> Vec<Write> {
        let r = read(h, None, &Meter::unlimited()).unwrap_or_else(|_| panic!("reads"));
        r.objects[&Value::Nil].writes.clone()
    }

    #[test]
    fn orders_parse_by_name_and_refuse_others() {
        for o in [Order::RealTime, Order::Causal, Order::None] {
            assert_eq!(Order::parse(o.name()), Some(o));
        }
        assert_eq!(Order::parse("wall-clock"), None);
        assert_eq!(Order::default(), Order::RealTime);
    }

    #[test]
    fn real_time_orders_by_completion_before_invocation() {
        let h = history(&[(0, "write", 1), (1, "write", 2)]);
        let w = writes(&h);
        assert_eq!(Judge::RealTime.relate(&h, &w[0], &w[1]), Relation::After);
        assert_eq!(Judge::RealTime.relate(&h, &w[1], &w[0]), Relation::Before);
        assert!(matches!(Judge::Unordered.relate(&h, &w[0], &w[1]), Relation::Concurrent(_)));
    }

    #[test]
    fn causality_follows_reads_and_sessions_but_not_real_time() {
        // Process 0 writes 1; process 1 writes 2 later without reading it;
        // process 2 reads 1 and then writes 3.
        let h = history(&[(0, "write", 1), (1, "write", 2), (2, "read", 1), (2, "write", 3)]);
        let r = read(&h, None, &Meter::unlimited()).unwrap_or_else(|_| panic!("reads"));
        let kv = events(&h, &r.objects).expect("unique values");
        let c = Causality::new(&h, &kv, &Meter::unlimited()).unwrap_or_else(|_| panic!("clocks"));
        let judge = Judge::Causal(&c);
        let w = &r.objects[&Value::Nil].writes;
        let why = match judge.relate(&h, &w[0], &w[1]) {
            Relation::Concurrent(why) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(why, "no chain of session order and reads-from leads from op 1 to op 3 or back");
        assert_eq!(judge.relate(&h, &w[0], &w[2]), Relation::After);
        assert_eq!(judge.relate(&h, &w[2], &w[0]), Relation::Before);
        let (gist, text, json) = c.explain(&w[0], &w[2]).expect("a chain");
        assert_eq!(gist, "op 5 read the winner's value before op 7 wrote");
        assert_eq!(
            text,
            "  op 1 (process 0: write 1)\n  -> op 5 (process 2: read 1), which read the value op 1 wrote\n  \
             -> op 7 (process 2: write 3), later in process 2's session"
        );
        assert_eq!(json.as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn a_cycle_leaves_no_clocks_and_the_search_still_answers() {
        // Process 0 reads 2 and writes 1; process 1 reads 1 and writes 2:
        // each write causally precedes the other.
        let h = history(&[(0, "read", 2), (1, "read", 1), (0, "write", 1), (1, "write", 2)]);
        let r = read(&h, None, &Meter::unlimited()).unwrap_or_else(|_| panic!("reads"));
        let kv = events(&h, &r.objects).expect("unique values");
        let c = Causality::new(&h, &kv, &Meter::unlimited()).unwrap_or_else(|_| panic!("clocks"));
        let w = &r.objects[&Value::Nil].writes;
        let (a, b) = (c.event(w[0].invoke), c.event(w[1].invoke));
        assert!(!c.clocks.done(a) && !c.clocks.done(b));
        assert!(c.happens_before(a, b) && c.happens_before(b, a));
    }

    #[test]
    fn a_value_written_twice_is_refused_naming_both_ops() {
        let h = history(&[(0, "write", 1), (1, "write", 1)]);
        let r = read(&h, None, &Meter::unlimited()).unwrap_or_else(|_| panic!("reads"));
        let err = match events(&h, &r.objects) {
            Err(Stop::Error(e)) => e.to_string(),
            _ => panic!("a duplicate value is refused"),
        };
        assert!(err.contains("given the value 1 twice, by op 1"), "{err}");
        assert!(err.contains("and op 3;"), "{err}");
    }

    #[test]
    fn a_budget_too_small_for_the_clocks_stops_the_check() {
        let h = history(&[(0, "write", 1), (1, "write", 2)]);
        let r = read(&h, None, &Meter::unlimited()).unwrap_or_else(|_| panic!("reads"));
        let kv = events(&h, &r.objects).expect("unique values");
        let meter = crate::budget::Budget { time: None, memory: Some(1) }.start();
        assert!(matches!(Causality::new(&h, &kv, &meter), Err(Stop::Budget(_))));
    }
}
