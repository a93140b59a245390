//! `set-full`: adds of single elements interleaved with reads of the whole
//! set. For each element it finds when it was *known* (its add was
//! acknowledged, or a read saw it, whichever came first) and then:
//!
//! - *stable*: every read that began after some point saw it;
//! - *lost*: it was known, and every read that began after some point (after
//!   it was known) missed it;
//! - *never read*: no read began after it was known;
//! - *stale*: stable, but a read that began after it was known missed it
//!   first. With `--opt linearizable=true`, stale elements are violations.
//!
//! Latencies (milliseconds, from the op times) say how long elements took to
//! become stable or to be lost: quantiles 0, 0.5, 0.95, 0.99 and 1.

use rustc_hash::FxHashMap;
use serde_json::json;

use super::{Halt, Pass, about_elements, run};
use crate::budget::Budget;
use crate::error::CheckError;
use crate::history::{History, OpType};
use crate::spec::CheckSpec;
use crate::text::{compact, plural};
use crate::value::Value;
use crate::verdict::{Anomaly, Checker, HtmlPage, Validity, Verdict};

/// The `set-full` checker.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetFullChecker {
    /// Stale reads are violations (the set claims linearizability).
    pub linearizable: bool,
    /// Time and memory limits.
    pub budget: Budget,
}

impl SetFullChecker {
    /// From `--opt linearizable=true|false`.
    pub fn from_spec(spec: &CheckSpec) -> Result<SetFullChecker, CheckError> {
        Ok(SetFullChecker {
            linearizable: spec.bool_option("linearizable", false)?,
            budget: spec.budget,
        })
    }
}

/// A moment: a history position and its time, if recorded.
#[derive(Clone, Copy, Debug)]
struct At {
    pos: usize,
    index: u64,
    time: Option<u64>,
}

struct Element<'a> {
    value: &'a Value,
    add: u64,
    known: Option<At>,
    last_present: Option<At>,
    last_absent: Option<At>,
}

fn latency(from: Option<u64>, to: Option<u64>) -> Option<f64> {
    Some(to?.saturating_sub(from?) as f64 / 1e6)
}

/// Jepsen's quantile points over sorted values.
fn distribution(sorted: &[f64]) -> serde_json::Value {
    if sorted.is_empty() {
        return serde_json::Value::Null;
    }
    let n = sorted.len();
    let at = |q: f64| sorted[((n as f64 * q).floor() as usize).min(n - 1)];
    json!({"0": at(0.0), "0.5": at(0.5), "0.95": at(0.95), "0.99": at(0.99), "1": at(1.0)})
}

/// What the reads showed of every element added.
struct Seen<'a> {
    elements: Vec<Element<'a>>,
    /// Reads that returned an element more than once: (read, element, times).
    duplicates: Vec<(u64, &'a Value, usize)>,
    /// Ok reads.
    reads: usize,
}

/// Sweeps the history in order: adds are tracked from their invocation;
/// each ok read updates every element tracked when it completes.
fn sweep<'a>(pass: &Pass<'a>) -> Result<Seen<'a>, Halt> {
    let (ops, hops) = (&pass.ops, pass.history.ops());
    let mut events: Vec<(usize, usize)> = Vec::new(); // (position, interval)
    for (i, op) in ops.iter().enumerate() {
        match op.inv.f.as_str() {
            "add" => {
                events.push((op.invoke, i));
                if op.outcome == OpType::Ok {
                    events.push((op.complete, i));
                }
            }
            "read" if op.outcome == OpType::Ok => events.push((op.complete, i)),
            _ => {}
        }
    }
    events.sort_unstable();
    let mut seen = Seen { elements: Vec::new(), duplicates: Vec::new(), reads: 0 };
    let mut ids: FxHashMap<&Value, usize> = FxHashMap::default();
    let mut present = Vec::new();
    for (pos, i) in events {
        pass.tick()?;
        let op = &ops[i];
        let at = At { pos, index: hops[pos].index, time: hops[pos].time };
        if op.inv.f == "add" {
            if pos == op.invoke {
                let elements = &mut seen.elements;
                ids.entry(&op.inv.value).or_insert_with(|| {
                    elements.push(Element {
                        value: &op.inv.value,
                        add: op.index(),
                        known: None,
                        last_present: None,
                        last_absent: None,
                    });
                    elements.len() - 1
                });
            } else if let Some(&e) = ids.get(&op.inv.value) {
                seen.elements[e].known.get_or_insert(at);
            }
            continue;
        }
        seen.reads += 1;
        let Some(items) = op.result().as_list() else {
            return Err(Halt::Bad(CheckError::BadOp {
                location: pass.history.locate(op.complete).field("value"),
                message: format!(
                    "set-full expects a read to return a set or list, not {}",
                    op.result()
                ),
            }));
        };
        let inv = At { pos: op.invoke, index: op.inv.index, time: op.inv.time };
        present.clear();
        present.resize(seen.elements.len(), 0u32);
        for v in items {
            if let Some(&e) = ids.get(v) {
                present[e] += 1;
            }
        }
        for (e, el) in seen.elements.iter_mut().enumerate() {
            if present[e] > 0 {
                el.known.get_or_insert(at);
                if el.last_present.is_none_or(|p| p.pos < inv.pos) {
                    el.last_present = Some(inv);
                }
                if present[e] > 1 {
                    seen.duplicates.push((at.index, el.value, present[e] as usize));
                }
            } else if el.last_absent.is_none_or(|a| a.pos < inv.pos) {
                el.last_absent = Some(inv);
            }
        }
    }
    Ok(seen)
}

/// Elements by what became of them, with latencies in milliseconds.
#[derive(Default)]
struct Outcomes<'e, 'a> {
    stable: Vec<&'e Element<'a>>,
    lost: Vec<&'e Element<'a>>,
    never: Vec<&'e Element<'a>>,
    /// Stable elements a read missed after they were known, worst first.
    stale: Vec<(&'e Element<'a>, Option<f64>)>,
    stable_lat: Vec<f64>,
    lost_lat: Vec<f64>,
    /// Each element's outcome by name, in element order.
    names: Vec<&'static str>,
}

fn outcomes<'e, 'a>(elements: &'e [Element<'a>]) -> Outcomes<'e, 'a> {
    let mut o = Outcomes::default();
    for el in elements {
        let pres = el.last_present.map(|p| p.pos);
        let abs = el.last_absent.map(|a| a.pos);
        let known_time = el.known.and_then(|k| k.time);
        if pres.is_some() && abs.is_none_or(|a| Some(a) < pres) {
            // Stable from just after the last read that missed it.
            let lat = match el.last_absent {
                Some(a) => latency(known_time, a.time.map(|t| t + 1)),
                None => Some(0.0),
            };
            o.stable_lat.extend(lat);
            let was_stale = el.last_absent.zip(el.known).is_some_and(|(a, k)| a.pos > k.pos);
            if was_stale {
                o.stale.push((el, lat));
            }
            o.names.push(if was_stale { "stale" } else { "stable" });
            o.stable.push(el);
        } else if let (Some(k), Some(a)) = (el.known, abs)
            && pres.is_none_or(|p| p < a)
            && k.pos < a
        {
            let lat = match el.last_present {
                Some(p) => latency(known_time, p.time.map(|t| t + 1)),
                None => Some(0.0),
            };
            o.lost_lat.extend(lat);
            o.names.push("lost");
            o.lost.push(el);
        } else {
            o.names.push("never-read");
            o.never.push(el);
        }
    }
    o.stable_lat.sort_by(f64::total_cmp);
    o.lost_lat.sort_by(f64::total_cmp);
    o.stale.sort_by(|a, b| b.1.unwrap_or(0.0).total_cmp(&a.1.unwrap_or(0.0)));
    o
}

fn values(els: &[&Element<'_>]) -> String {
    compact(els.iter().map(|e| e.value))
}

/// The elements lost, with the first as an example.
fn lost_anomaly(lost: &[&Element<'_>]) -> Anomaly {
    let ex = lost[0];
    let explanation = format!(
        "{} {} lost: known to be in the set, then missing from every read that began later: {}.\n\
         For example {}: added by op {}, {}, missing from the read invoked at op {} and every later one.",
        plural(lost.len(), "element"),
        if lost.len() == 1 { "was" } else { "were" },
        values(lost),
        ex.value,
        ex.add,
        match ex.last_present {
            Some(p) => format!("last seen by the read invoked at op {}", p.index),
            None => "acknowledged but never seen".into(),
        },
        ex.last_absent.map_or(0, |a| a.index)
    );
    let ops = lost.iter().map(|e| e.add).take(50).collect();
    about_elements("lost", explanation, ops, lost.iter().map(|e| e.value))
}

/// The elements that showed up late, with the worst as an example.
fn stale_anomaly(stale: &[(&Element<'_>, Option<f64>)]) -> Anomaly {
    let ex = stale[0].0;
    let explanation = format!(
        "{} showed up late (a read that began after the element was known missed it), which a \
         linearizable set forbids: {}.\nThe worst: {}, added by op {}, still missing from the read invoked \
         at op {}{}.",
        plural(stale.len(), "element"),
        compact(stale.iter().map(|s| s.0.value)),
        ex.value,
        ex.add,
        ex.last_absent.map_or(0, |a| a.index),
        stale[0].1.map_or(String::new(), |l| format!(", {l:.0} ms after it was known"))
    );
    let ops = stale.iter().map(|s| s.0.add).take(50).collect();
    about_elements("stale", explanation, ops, stale.iter().map(|s| s.0.value))
}

impl SetFullChecker {
    fn judge(&self, pass: &Pass<'_>) -> Result<Verdict, Halt> {
        let Seen { elements, duplicates, reads } = sweep(pass)?;
        let o = outcomes(&elements);
        let mut anomalies = Vec::new();
        if !o.lost.is_empty() {
            anomalies.push(lost_anomaly(&o.lost));
        }
        if let Some((read, element, times)) = duplicates.first() {
            anomalies.push(Anomaly {
                kind: "duplicated".into(),
                explanation: format!(
                    "{} returned an element more than once; e.g. op {read} holds {element} {times} times.",
                    plural(duplicates.len(), "read"),
                ),
                ops: duplicates.iter().map(|d| d.0).take(50).collect(),
                data: json!({"reads": duplicates.iter().map(|d| json!({"op": d.0, "element": d.1, "times": d.2})).collect::<Vec<_>>()}),
            });
        }
        if self.linearizable && !o.stale.is_empty() {
            anomalies.push(stale_anomaly(&o.stale));
        }
        let validity = if !anomalies.is_empty() {
            Validity::Invalid
        } else if o.stable.is_empty() {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        let summary = format!(
            "{} attempted: {} stable, {} lost, {} never read; {} stale{}",
            elements.len(),
            o.stable.len(),
            o.lost.len(),
            o.never.len(),
            o.stale.len(),
            match o.stable_lat.last() {
                Some(max) => format!("; stable within {max:.0} ms at worst"),
                None => String::new(),
            }
        );
        let mut v = Verdict::new("set-full", validity, summary);
        if validity == Validity::Unknown {
            v.unknown_reason = Some(format!(
                "no element was ever stable ({}): nothing to judge",
                plural(reads, "read")
            ));
        }
        v.anomalies = anomalies;
        v.details = json!({
            "attempt_count": elements.len(),
            "stable_count": o.stable.len(),
            "lost_count": o.lost.len(),
            "never_read_count": o.never.len(),
            "stale_count": o.stale.len(),
            "duplicated_count": duplicates.len(),
            "lost": values(&o.lost),
            "never_read": values(&o.never),
            "stale": compact(o.stale.iter().map(|s| s.0.value)),
            "worst_stale": o.stale.iter().take(8).map(|(e, l)| json!({
                "element": e.value, "add": e.add, "stable_latency_ms": l,
                "last_absent": e.last_absent.map(|a| a.index),
            })).collect::<Vec<_>>(),
            "stable_latencies_ms": distribution(&o.stable_lat),
            "lost_latencies_ms": distribution(&o.lost_lat),
            "elements": if elements.len() <= 10_000 {
                json!(elements.iter().zip(&o.names).map(|(e, o)| json!([e.value, o])).collect::<Vec<_>>())
            } else {
                serde_json::Value::Null
            },
        });
        Ok(v)
    }
}

impl Checker for SetFullChecker {
    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        run(self.name(), self.budget, history, |pass| self.judge(pass))
    }

    fn name(&self) -> &str {
        "set-full"
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let d = &verdict.details;
        let mut body = super::page_head("Set (full)", verdict);
        for (title, key) in [
            ("Time to become stable", "stable_latencies_ms"),
            ("Time until lost", "lost_latencies_ms"),
        ] {
            if let Some(q) = d[key].as_object() {
                let items: Vec<(String, f64)> = q
                    .iter()
                    .map(|(k, v)| (format!("quantile {k}"), v.as_f64().unwrap_or(0.0)))
                    .collect();
                body.push_str(&format!("<h2>{title}</h2>\n{}", crate::diagram::bars(&items, "ms")));
            }
        }
        if let Some(elements) = d["elements"].as_array() {
            body.push_str(&super::set::grid(elements));
        }
        vec![HtmlPage { name: "set-full".into(), title: "Set (full)".into(), body }]
    }
}
