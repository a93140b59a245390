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
//! Besides the verdict, the checker measures: the convergence time (from the
//! last write to the first moment every node's reads showed the final state,
//! as far as timed reads show it) and the stale reads during the run (reads
//! that missed acknowledged writes completed before they began: how many,
//! and how long ago).
//!
//! Files: this one holds the checker and assembles the verdict; `read` reads
//! the history into objects and final reads; `finals` each node's final state
//! and divergence; `lost` sets, lists and counters; `register` registers;
//! `timing` stale reads and convergence time; `html` the page.

mod finals;
mod html;
mod lost;
mod read;
mod register;
mod timing;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::json;

use crate::budget::{Budget, Meter};
use crate::error::{CheckError, HistoryError};
use crate::history::History;
use crate::registry::CheckSpec;
use crate::value::{ThinVec, Value};
use crate::verdict::{Anomaly, Checker, HtmlPage, Validity, Verdict};
use finals::Finals;
use read::Reading;
use register::Register;
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
    limit: usize,
    budget: Budget,
}

impl ConvergenceChecker {
    /// A checker that detects the object kind.
    pub fn new() -> ConvergenceChecker {
        ConvergenceChecker { limit: crate::causal::DEFAULT_LIMIT, ..ConvergenceChecker::default() }
    }

    /// Builds the checker from `--opt type=...`, `--opt max-anomalies=N`
    /// and the budget.
    pub fn from_spec(spec: &CheckSpec) -> Result<ConvergenceChecker, CheckError> {
        let mut c = ConvergenceChecker::new();
        if let Some(t) = spec.options.get("type") {
            c.kind = Some(Kind::parse(t).ok_or_else(|| {
                CheckError::BadOption(format!(
                    "--opt type must be set, list, counter or register, not {t:?}"
                ))
            })?);
        }
        c.limit = crate::causal::limit_option(spec)?;
        c.budget = spec.budget;
        Ok(c)
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
        let findings = self.judge_objects(history, &reading, meter)?;
        Ok(self.verdict(&reading, findings))
    }

    /// Final states, divergence, lost and unexpected values, stale reads and
    /// convergence time, key by key.
    fn judge_objects(
        &self,
        history: &History,
        reading: &Reading,
        meter: &Meter,
    ) -> Result<Findings, Stop> {
        let kind = reading.kind;
        let register = Register { history, meter };
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
                Kind::Register => register.judge(obj, &finals, &label, key, &mut f.anomalies)?,
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
        let summary = match validity {
            Validity::Invalid => format!(
                "did not converge: {}",
                counts.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
            ),
            Validity::Unknown => "no final reads to judge convergence by".to_owned(),
            Validity::Valid => {
                let nodes: BTreeSet<&str> = objects
                    .values()
                    .flat_map(|o| o.reads.iter().filter(|r| r.is_final).map(|r| r.node.as_str()))
                    .collect();
                format!(
                    "converged: {} agree on {} and hold every acknowledged write{}",
                    crate::causal::plural(nodes.len(), "node"),
                    if objects.len() > 1 {
                        format!("each of {} {}s", objects.len(), kind.name())
                    } else {
                        format!("the final {}", kind.name())
                    },
                    worst_conv
                        .map_or(String::new(), |c| format!(", within {c:.0} ms of the last write")),
                )
            }
        };
        let summary = format!("{summary}{}", f.stale.summary_tail());
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
            "final_phase": reading.phase,
            "keys": f.per_key,
            "violations": counts,
            "convergence": f.convergence,
            "stale_reads": f.stale.details(),
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
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
        let mut s = spec(&[("type", "register")]);
        s.budget.time = Some(Duration::ZERO);
        let h = history(&[(0, "write", 1), (0, "final-read", 1)]);
        let v = ConvergenceChecker::from_spec(&s)
            .and_then(|c| c.check(&h))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v.validity, Validity::Unknown);
        assert_eq!(v.summary, "convergence not judged: the time limit of 0 ms ran out");
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
            "converged: 2 nodes agree on the final register and hold every acknowledged write"
        );
    }
}
