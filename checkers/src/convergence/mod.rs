//! Eventual convergence: once faults are healed and writes have stopped,
//! every replica must hold the same state, and that state must contain every
//! acknowledged write.
//!
//! **The final phase.** Final reads are the `ok` operations with
//! `f = final-read`; the harness performs one on every node once the nemesis
//! has healed everything and the clients have stopped writing, with `node`
//! set on each. A history without any is read the Jepsen way: the final reads
//! are the `read`s invoked after the last nemesis event, which must be a heal
//! (`stop-*` or `heal`), and after every write has completed. A history with
//! neither is `unknown`.
//!
//! Objects: sets (`add` an element, reads return the set), lists (`append`,
//! reads return the list), counters (`add`/`increment` a delta, reads return
//! a number) and registers under last-write-wins (`write`, reads return the
//! value). Ops with a `key` are checked per key. The kind is detected from the
//! functions and the values read, or set with `--opt type=set|list|counter|register`.
//!
//! **The order.** A register keeps one write, so whether a write that is
//! not in the final state was lost depends on the order the store promises:
//! `--opt order=real-time|causal|none` (see `order`). A write the order puts
//! after the winner is lost; one it leaves concurrent with the winner is
//! superseded, reported in the details but no anomaly. Sets, lists and
//! counters keep every write, so the order changes nothing for them.
//!
//! Besides the verdict, the checker measures: the convergence time (from the
//! last write to the first moment every node's reads showed the final state,
//! as far as timed reads show it) and the stale reads during the run (reads
//! that missed acknowledged writes completed before they began: how many,
//! and how long ago).
//!
//! Files: this one holds the checker and assembles the verdict; `read` reads
//! the history into objects and final reads; `finals` each node's final state
//! and divergence; `lost` sets, lists and counters; `register` registers
//! under an order; `order` the orders and happens-before; `timing` stale
//! reads and convergence time; `html` the page.

mod finals;
mod html;
mod lost;
mod order;
mod read;
mod register;
#[cfg(test)]
mod testing;
mod timing;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::json;

pub use order::Order;

use crate::budget::{Budget, Meter};
use crate::error::{CheckError, HistoryError};
use crate::history::History;
use crate::kv::KvHistory;
use crate::spec::CheckSpec;
use crate::value::{ThinVec, Value};
use crate::verdict::{Anomaly, Checker, HtmlPage, Validity, Verdict};
use finals::Finals;
use order::{Causality, Judge};
use read::Reading;
use register::{Register, Superseded};
use timing::StaleReads;

/// The kind of replicated object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A grow-only set.
    Set,
    /// An append-only list.
    List,
    /// A counter of integer deltas.
    Counter,
    /// A register under last-write-wins.
    Register,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "set" => Some(Kind::Set),
            "list" => Some(Kind::List),
            "counter" => Some(Kind::Counter),
            "register" => Some(Kind::Register),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Set => "set",
            Kind::List => "list",
            Kind::Counter => "counter",
            Kind::Register => "register",
        }
    }
}

/// The state an object shows: normalised so that equal states compare equal.
fn state(kind: Kind, v: &Value) -> Value {
    match kind {
        Kind::Set => Value::set(v.as_list().map(<[Value]>::to_vec).unwrap_or_default()),
        Kind::List => Value::List(v.as_list().map(ThinVec::from).unwrap_or_default()),
        Kind::Counter => Value::Int(v.as_int().unwrap_or(0)),
        Kind::Register => v.clone(),
    }
}

/// The elements of a set or list state (none for anything else).
fn elements(v: &Value) -> &[Value] {
    v.as_list().unwrap_or(&[])
}

/// A state for a sentence: long sets and lists are abbreviated.
fn short(kind: Kind, v: &Value) -> String {
    match kind {
        Kind::Set | Kind::List => {
            let items = elements(v);
            if items.len() <= 12 {
                v.to_string()
            } else {
                format!("{} elements, from {} to {}", items.len(), items[0], items[items.len() - 1])
            }
        }
        _ => v.to_string(),
    }
}

/// Why a check stopped early: broken input, or the budget ran out. The
/// error is boxed because a `CheckError` is large and `Stop` travels
/// through every per-op loop's `Result`.
#[derive(Debug)]
enum Stop {
    Error(Box<CheckError>),
    Budget(String),
}

impl From<CheckError> for Stop {
    fn from(e: CheckError) -> Stop {
        Stop::Error(Box::new(e))
    }
}

impl From<HistoryError> for Stop {
    fn from(e: HistoryError) -> Stop {
        Stop::Error(Box::new(e.into()))
    }
}

/// The eventual-convergence checker (`convergence`).
#[derive(Clone, Debug, Default)]
pub struct ConvergenceChecker {
    kind: Option<Kind>,
    order: Order,
    limit: usize,
    budget: Budget,
}

impl ConvergenceChecker {
    /// A checker that detects the object kind and judges lost register
    /// writes by real-time order.
    pub fn new() -> ConvergenceChecker {
        ConvergenceChecker {
            limit: crate::spec::DEFAULT_MAX_ANOMALIES,
            ..ConvergenceChecker::default()
        }
    }

    /// Builds the checker from `--opt type=...`, `--opt order=...`,
    /// `--opt max-anomalies=N` and the budget.
    pub fn from_spec(spec: &CheckSpec) -> Result<ConvergenceChecker, CheckError> {
        let mut c = ConvergenceChecker::new();
        if let Some(t) = spec.options.get("type") {
            c.kind = Some(Kind::parse(t).ok_or_else(|| {
                CheckError::BadOption(format!(
                    "--opt type must be set, list, counter or register, not {t:?}"
                ))
            })?);
        }
        if let Some(o) = spec.options.get("order") {
            c.order = Order::parse(o).ok_or_else(|| {
                CheckError::BadOption(format!("--opt order must be {}, not {o:?}", Order::CHOICES))
            })?;
        }
        c.limit = spec.max_anomalies()?;
        c.budget = spec.budget;
        Ok(c)
    }

    /// The order lost register writes are judged by.
    pub fn order(&self) -> Order {
        self.order
    }
}

/// What the objects showed, gathered key by key.
#[derive(Default)]
struct Findings {
    anomalies: Vec<Anomaly>,
    /// Per key: its final state on each node, and whether they agree.
    per_key: Vec<serde_json::Value>,
    stale: StaleReads,
    convergence: Vec<serde_json::Value>,
    superseded: Superseded,
}

impl Checker for ConvergenceChecker {
    fn name(&self) -> &str {
        "convergence"
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let started = Instant::now();
        let meter = self.budget.start();
        let mut v = match self.judge(history, &meter) {
            Ok(v) => v,
            Err(Stop::Error(e)) => return Err(*e),
            Err(Stop::Budget(reason)) => {
                let mut v = Verdict::new(
                    "convergence",
                    Validity::Unknown,
                    format!("convergence not judged: {reason}"),
                );
                v.unknown_reason = Some(reason);
                v.details = json!({"order": self.order.name()});
                v
            }
        };
        v.elapsed = started.elapsed();
        Ok(v)
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        vec![html::page(verdict)]
    }
}

impl ConvergenceChecker {
    /// Reads the history, judges every object and assembles the verdict.
    fn judge(&self, history: &History, meter: &Meter) -> Result<Verdict, Stop> {
        let reading = read::read(history, self.kind, meter)?;
        // A register's final state is one write's value; a final read of
        // several siblings would otherwise read as a value nobody wrote.
        // Sets, lists and counters read collections and are judged as ever.
        if reading.kind == Kind::Register
            && let Some(v) = crate::siblings::unjudged("convergence", history, &Value::Nil)?
        {
            return Ok(v);
        }
        // Happens-before is built only where it is used: registers under causal order.
        let kv: KvHistory;
        let causality: Causality<'_>;
        let judge = match (reading.kind, self.order) {
            (_, Order::RealTime) => Judge::RealTime,
            (_, Order::None) => Judge::Unordered,
            (Kind::Register, Order::Causal) => {
                kv = order::events(history, &reading.objects)?;
                causality = Causality::new(history, &kv, meter)?;
                Judge::Causal(&causality)
            }
            // Sets, lists and counters do not consult the order.
            (_, Order::Causal) => Judge::Unordered,
        };
        let findings = self.judge_objects(history, &reading, &judge, meter)?;
        let mut v = self.verdict(&reading, findings);
        if let Judge::Causal(c) = &judge {
            let (events, processes) = c.size();
            v.details["causal_order"] = json!({"events": events, "processes": processes});
        }
        Ok(v)
    }

    /// Final states, divergence, lost and unexpected values, stale reads and
    /// convergence time, key by key.
    fn judge_objects(
        &self,
        history: &History,
        reading: &Reading,
        judge: &Judge<'_>,
        meter: &Meter,
    ) -> Result<Findings, Stop> {
        let kind = reading.kind;
        let register = Register { history, judge, meter };
        let mut f = Findings::default();
        for (key, obj) in &reading.objects {
            if let Some(reason) = meter.tick() {
                return Err(Stop::Budget(reason));
            }
            let label = if key.is_nil() { String::new() } else { format!(" of key {key}") };
            f.stale.add(kind, history, obj, key, meter)?;
            let Some(finals) = Finals::of(kind, obj) else { continue };
            f.anomalies.extend(finals::divergence(kind, history, &finals, &label, key));
            match kind {
                Kind::Set | Kind::List => {
                    lost::collection(kind, history, obj, &finals, &label, key, &mut f.anomalies)
                }
                Kind::Counter => {
                    lost::counter(history, obj, &finals, &label, key, &mut f.anomalies)
                }
                Kind::Register => register.judge(
                    obj,
                    &finals,
                    &label,
                    key,
                    &mut f.anomalies,
                    &mut f.superseded,
                )?,
            }
            f.convergence.extend(timing::convergence_time(kind, obj, &finals, key));
            f.per_key.push(json!({
                "key": key,
                "kind": kind.name(),
                "nodes": finals.states.iter().map(|(n, v)| (n.to_string(), json!(short(kind, v)))).collect::<serde_json::Map<_, _>>(),
                "converged": finals.distinct().len() == 1,
            }));
        }
        Ok(f)
    }

    /// The verdict: validity, summary, the anomalies shown, details.
    fn verdict(&self, reading: &Reading, f: Findings) -> Verdict {
        let (kind, objects) = (reading.kind, &reading.objects);
        let validity = if !f.anomalies.is_empty() {
            Validity::Invalid
        } else if f.per_key.is_empty() && objects.values().any(|o| !o.writes.is_empty()) {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for a in &f.anomalies {
            *counts.entry(a.kind.clone()).or_insert(0) += 1;
        }
        let worst_conv =
            f.convergence.iter().filter_map(|c| c["at_most_ms"].as_f64()).reduce(f64::max);
        // Only registers are judged by an order, so only theirs names it.
        let order_note = match kind {
            Kind::Register => format!(" ({})", self.order.summary_note()),
            _ => String::new(),
        };
        let summary = match validity {
            Validity::Invalid => format!(
                "did not converge: {}{order_note}",
                counts.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
            ),
            Validity::Unknown => "no final reads to judge convergence by".to_owned(),
            Validity::Valid => {
                let nodes: BTreeSet<&str> = objects
                    .values()
                    .flat_map(|o| o.reads.iter().filter(|r| r.is_final).map(|r| r.node.as_str()))
                    .collect();
                format!(
                    "converged: {} agree on {} and {}{}{order_note}",
                    crate::text::plural(nodes.len(), "node"),
                    if objects.len() > 1 {
                        format!("each of {} {}s", objects.len(), kind.name())
                    } else {
                        format!("the final {}", kind.name())
                    },
                    // A register keeps one write, so it cannot hold them all.
                    if kind == Kind::Register {
                        "no acknowledged write is lost"
                    } else {
                        "hold every acknowledged write"
                    },
                    worst_conv
                        .map_or(String::new(), |c| format!(", within {c:.0} ms of the last write")),
                )
            }
        };
        let summary = format!("{summary}{}{}", f.superseded.summary_tail(), f.stale.summary_tail());
        let mut v = Verdict::new("convergence", validity, summary);
        if validity == Validity::Unknown {
            v.unknown_reason = Some(format!(
                "{}. Record a final read on every node after healing (f = final-read, with node set)",
                reading.phase
            ));
        }
        let mut per: BTreeMap<String, usize> = BTreeMap::new();
        v.anomalies = f
            .anomalies
            .into_iter()
            .filter(|a| {
                let n = per.entry(a.kind.clone()).or_insert(0);
                *n += 1;
                *n <= self.limit
            })
            .collect();
        v.details = json!({
            "kind": kind.name(),
            "order": self.order.name(),
            "final_phase": reading.phase,
            "keys": f.per_key,
            "violations": counts,
            "convergence": f.convergence,
            "stale_reads": f.stale.details(),
        });
        if kind == Kind::Register {
            v.details["superseded"] =
                json!({"count": f.superseded.count, "examples": f.superseded.examples});
        } else {
            v.details["order_note"] = json!(format!(
                "The order does not matter for a {0}: a {0} keeps every write, so every acknowledged write \
                 must show in the final state whatever the order (--opt order={1} changes nothing).",
                kind.name(),
                self.order.name()
            ));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::convergence::testing::history;
    use crate::history::{Op, OpType, Process};

    fn spec(opts: &[(&str, &str)]) -> CheckSpec {
        let mut spec = CheckSpec { checker: "convergence".into(), ..CheckSpec::default() };
        for (k, v) in opts {
            spec.options.insert((*k).into(), (*v).into());
        }
        spec
    }

    fn checker(opts: &[(&str, &str)]) -> ConvergenceChecker {
        ConvergenceChecker::from_spec(&spec(opts)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The verdict, or the error's text.
    fn check(opts: &[(&str, &str)], h: &History) -> Result<Verdict, String> {
        checker(opts).check(h).map_err(|e| e.to_string())
    }

    #[test]
    fn an_unknown_order_is_refused_naming_the_choices() {
        let err = match ConvergenceChecker::from_spec(&spec(&[("order", "lamport")])) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("lamport is not an order"),
        };
        assert_eq!(err, "--opt order must be real-time, causal or none, not \"lamport\"");
        assert_eq!(checker(&[]).order(), Order::RealTime);
        assert_eq!(checker(&[("order", "causal")]).order(), Order::Causal);
    }

    #[test]
    fn the_verdict_names_the_order_and_the_superseded_writes() {
        // 2 is written after 1 completed, by a process that never read 1.
        let h = history(&[
            (0, "write", 1),
            (1, "write", 2),
            (0, "final-read", 1),
            (1, "final-read", 1),
        ]);
        let rt = check(&[], &h).expect("checks");
        assert_eq!(rt.validity, Validity::Invalid);
        assert_eq!(
            rt.summary,
            "did not converge: lost-write 1 (lost writes judged by real-time order)"
        );
        let causal = check(&[("order", "causal")], &h).expect("checks");
        assert_eq!(causal.validity, Validity::Valid, "{}", causal.to_text());
        assert_eq!(
            causal.summary,
            "converged: 2 nodes agree on the final register and no acknowledged write is lost (lost writes \
             judged by causal order); 1 acknowledged write superseded by a concurrent write"
        );
        assert_eq!(causal.details["order"], "causal");
        assert_eq!(causal.details["superseded"]["count"], 1);
        assert_eq!(causal.details["causal_order"], json!({"events": 4, "processes": 2}));
    }

    #[test]
    fn sets_accept_an_order_and_say_it_changes_nothing() {
        let mut h = history(&[(0, "final-read", 0)]).into_ops();
        h.insert(0, Op::new(0, Process::Client(0), OpType::Invoke, "add", 1));
        h.insert(1, Op::new(0, Process::Client(0), OpType::Ok, "add", 1));
        h[3].value = Value::set(vec![Value::Int(1)]);
        let h = History::from_ops_renumbered(h);
        let v = check(&[("order", "causal"), ("type", "set")], &h).expect("checks");
        assert_eq!(v.validity, Validity::Valid, "{}", v.to_text());
        assert!(!v.summary.contains("order"), "{}", v.summary);
        assert_eq!(v.details["order"], "causal");
        assert!(v.details["order_note"].as_str().is_some_and(|n| n.contains("changes nothing")));
    }

    #[test]
    fn a_spent_time_budget_answers_unknown_with_the_reason() {
        let h = history(&[(0, "write", 1), (0, "final-read", 1)]);
        let c = ConvergenceChecker {
            budget: Budget { time: Some(Duration::ZERO), ..Budget::default() },
            ..ConvergenceChecker::new()
        };
        let v = c.check(&h).expect("checks");
        assert_eq!(v.validity, Validity::Unknown);
        assert_eq!(v.unknown_reason.as_deref(), Some("the time limit of 0 ms ran out"));
    }

    #[test]
    fn the_budget_comes_from_the_spec() {
        let mut s = spec(&[("type", "register"), ("order", "causal")]);
        s.budget.time = Some(Duration::ZERO);
        let h = history(&[(0, "write", 1), (0, "final-read", 1)]);
        let c = ConvergenceChecker::from_spec(&s).unwrap_or_else(|e| panic!("{e}"));
        let v = c.check(&h).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.validity, Validity::Unknown);
        assert_eq!(v.summary, "convergence not judged: the time limit of 0 ms ran out");
        assert_eq!(v.details["order"], "causal");
    }

    #[test]
    fn a_register_that_kept_the_latest_write_converges() {
        let h = history(&[
            (0, "write", 1),
            (1, "write", 2),
            (0, "final-read", 2),
            (1, "final-read", 2),
        ]);
        let v = check(&[], &h).expect("checks");
        assert_eq!(v.validity, Validity::Valid, "{}", v.to_text());
        assert_eq!(
            v.summary,
            "converged: 2 nodes agree on the final register and no acknowledged write is lost (lost \
             writes judged by real-time order)"
        );
        assert_eq!(v.details["superseded"]["count"], 0);
    }

    #[test]
    fn a_value_written_twice_is_refused_under_causal_order_only() {
        let h = history(&[(0, "write", 1), (1, "write", 1), (0, "final-read", 1)]);
        assert!(check(&[], &h).is_ok());
        let err = check(&[("order", "causal")], &h).expect_err("refused");
        assert!(err.to_string().contains("given the value 1 twice, by op 1"), "{err}");
    }
}
