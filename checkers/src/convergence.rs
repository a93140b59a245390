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

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::json;

use crate::error::CheckError;
use crate::history::{History, OpType, Process};
use crate::html::escape;
use crate::spec::CheckSpec;
use crate::value::{ThinVec, Value};
use crate::verdict::{Anomaly, Checker, HtmlPage, Validity, Verdict};

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

/// The eventual-convergence checker (`convergence`).
#[derive(Clone, Debug, Default)]
pub struct ConvergenceChecker {
    kind: Option<Kind>,
    limit: usize,
}

impl ConvergenceChecker {
    /// A checker that detects the object kind.
    pub fn new() -> ConvergenceChecker {
        ConvergenceChecker { kind: None, limit: crate::causal::DEFAULT_LIMIT }
    }

    /// Builds the checker from `--opt type=...` and `--opt max-anomalies=N`.
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
        Ok(c)
    }
}

/// A write, as an interval.
#[derive(Clone, Debug)]
struct Write {
    /// History positions of invocation and completion (none: never completed).
    invoke: usize,
    complete: Option<usize>,
    acked: bool,
    value: Value,
    time_invoke: Option<u64>,
    time_complete: Option<u64>,
}

/// An ok read.
#[derive(Clone, Debug)]
struct Read {
    invoke: usize,
    complete: usize,
    node: String,
    value: Value,
    is_final: bool,
    time_invoke: Option<u64>,
    time_complete: Option<u64>,
}

#[derive(Default)]
struct Object {
    writes: Vec<Write>,
    reads: Vec<Read>,
}

/// Integer milliseconds between two nanosecond times.
fn ms(from: u64, to: u64) -> f64 {
    to.saturating_sub(from) as f64 / 1e6
}

struct Ctx<'a> {
    history: &'a History,
}

impl Ctx<'_> {
    fn idx(&self, pos: usize) -> u64 {
        self.history.ops()[pos].index
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

fn elements(v: &Value) -> &[Value] {
    v.as_list().unwrap_or(&[])
}

impl Checker for ConvergenceChecker {
    fn name(&self) -> &str {
        "convergence"
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let started = Instant::now();
        let ops = history.ops();
        let pairs = history.pairs()?;
        let ctx = Ctx { history };
        // The last nemesis event, and whether it healed.
        let last_nemesis =
            ops.iter().enumerate().rev().find(|(_, o)| o.process == Process::Nemesis);
        let healed_at = match last_nemesis {
            None => Some(0),
            Some((pos, o)) if o.f.starts_with("stop") || o.f == "heal" => Some(pos),
            Some(_) => None,
        };
        let mut objects: BTreeMap<Value, Object> = BTreeMap::new();
        let mut saw = (false, false, false, false); // add, append, write, collection read
        let mut int_read = false;
        let mut explicit_final = false;
        for pair in &pairs {
            let inv = &ops[pair.invoke];
            if inv.process == Process::Nemesis {
                continue;
            }
            let outcome = history.outcome(pair);
            let complete = pair.complete.filter(|&c| c != pair.invoke);
            let key = inv
                .key
                .clone()
                .or_else(|| complete.and_then(|c| ops[c].key.clone()))
                .unwrap_or(Value::Nil);
            let obj = objects.entry(key).or_default();
            match inv.f.as_str() {
                "add" | "increment" | "append" | "write" | "w" => {
                    match inv.f.as_str() {
                        "append" => saw.1 = true,
                        "write" | "w" => saw.2 = true,
                        _ => saw.0 = true,
                    }
                    if outcome == OpType::Fail {
                        continue;
                    }
                    let value = if inv.f == "increment" && inv.value.is_nil() {
                        Value::Int(1)
                    } else {
                        inv.value.clone()
                    };
                    obj.writes.push(Write {
                        invoke: pair.invoke,
                        complete,
                        acked: outcome == OpType::Ok,
                        value,
                        time_invoke: inv.time,
                        time_complete: complete.and_then(|c| ops[c].time),
                    });
                }
                "read" | "r" | "final-read" => {
                    let (Some(c), OpType::Ok) = (complete, outcome) else { continue };
                    let done = &ops[c];
                    let node = done
                        .node
                        .as_deref()
                        .or(inv.node.as_deref())
                        .map_or_else(|| format!("process {}", inv.process), str::to_owned);
                    match &done.value {
                        Value::List(_) | Value::Set(_) => saw.3 = true,
                        Value::Int(_) => int_read = true,
                        _ => {}
                    }
                    let is_final = inv.f == "final-read";
                    explicit_final |= is_final;
                    obj.reads.push(Read {
                        invoke: pair.invoke,
                        complete: c,
                        node,
                        value: done.value.clone(),
                        is_final,
                        time_invoke: inv.time,
                        time_complete: done.time,
                    });
                }
                other => {
                    return Err(CheckError::BadOp {
                        location: history.locate(pair.invoke).field("f"),
                        message: format!(
                            "the convergence checker reads add, increment, append, write, read and final-read \
                             operations; op {} has f {other:?}",
                            inv.index
                        ),
                    });
                }
            }
        }
        let kind = match self.kind {
            Some(k) => k,
            None if saw.1 => Kind::List,
            None if saw.2 => Kind::Register,
            None if saw.0 && saw.3 && !int_read => Kind::Set,
            None if saw.0 && int_read && !saw.3 => Kind::Counter,
            None => {
                return Err(CheckError::BadOption(
                    "the convergence checker cannot tell the object kind from this history; pass \
                     --opt type=set|list|counter|register"
                        .into(),
                ));
            }
        };
        // Without explicit final reads, take the reads after the heal and
        // after every write has completed.
        if !explicit_final && let Some(healed) = healed_at {
            for obj in objects.values_mut() {
                let quiet =
                    obj.writes.iter().map(|w| w.complete.unwrap_or(usize::MAX)).max().unwrap_or(0);
                let quiet = if quiet == usize::MAX { None } else { Some(quiet.max(healed)) };
                for r in &mut obj.reads {
                    r.is_final = quiet.is_some_and(|q| r.invoke > q);
                }
            }
        }
        let phase = if explicit_final {
            "final reads: the ops with f = final-read".to_owned()
        } else if healed_at.is_some() {
            "final reads: no op has f = final-read, so the reads that began after the last heal and after every \
             write completed"
                .to_owned()
        } else {
            "no final reads: no op has f = final-read and the last nemesis event is not a heal"
                .to_owned()
        };

        let mut anomalies: Vec<Anomaly> = Vec::new();
        let mut per_key = Vec::new();
        let mut all_stale: Vec<serde_json::Value> = Vec::new();
        let mut stale_ops: Vec<u64> = Vec::new();
        let mut stale_ms: Vec<f64> = Vec::new();
        let mut convergence: Vec<serde_json::Value> = Vec::new();
        let mut undecided = Vec::new();
        for (key, obj) in &objects {
            let label = if key.is_nil() { String::new() } else { format!(" of key {key}") };
            // The last final read of each node.
            let mut finals: BTreeMap<&str, &Read> = BTreeMap::new();
            for r in obj.reads.iter().filter(|r| r.is_final) {
                if finals.get(r.node.as_str()).is_none_or(|f| f.complete < r.complete) {
                    finals.insert(&r.node, r);
                }
            }
            stale(kind, &ctx, obj, &mut all_stale, &mut stale_ops, &mut stale_ms, key);
            if finals.is_empty() {
                if !obj.writes.is_empty() {
                    undecided.push(key.clone());
                }
                continue;
            }
            let states: BTreeMap<&str, Value> =
                finals.iter().map(|(n, r)| (*n, state(kind, &r.value))).collect();
            let distinct: BTreeSet<&Value> = states.values().collect();
            let final_ops: Vec<u64> = finals.values().map(|r| ctx.idx(r.complete)).collect();
            if distinct.len() > 1 {
                let lines: Vec<String> = states
                    .iter()
                    .map(|(n, v)| {
                        format!("  {n}: {} (op {})", short(kind, v), ctx.idx(finals[n].complete))
                    })
                    .collect();
                let diff = match kind {
                    Kind::Set | Kind::List => {
                        let union: BTreeSet<&Value> = states.values().flat_map(elements).collect();
                        let partial: Vec<String> = union
                            .iter()
                            .filter_map(|e| {
                                let missing: Vec<&str> = states
                                    .iter()
                                    .filter(|(_, v)| !elements(v).contains(e))
                                    .map(|(n, _)| *n)
                                    .collect();
                                (!missing.is_empty())
                                    .then(|| format!("{e} missing on {}", missing.join(", ")))
                            })
                            .take(12)
                            .collect();
                        format!("\nElements not on every node: {}.", partial.join("; "))
                    }
                    _ => String::new(),
                };
                anomalies.push(Anomaly {
                    kind: "divergence".into(),
                    explanation: format!(
                        "After the final phase the nodes disagree on the state{label}:\n{}{diff}",
                        lines.join("\n")
                    ),
                    ops: final_ops.clone(),
                    data: json!({"key": key, "nodes": states.iter().map(|(n, v)| (n.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()}),
                });
            }
            lost_and_unexpected(kind, &ctx, obj, &finals, &states, &label, key, &mut anomalies);
            // Convergence time, when the history carries times.
            let last_write = obj
                .writes
                .iter()
                .filter_map(|w| if w.complete.is_some() { w.time_complete } else { w.time_invoke })
                .max();
            if distinct.len() == 1
                && let (Some(t0), Some(target)) = (last_write, distinct.iter().next())
            {
                let mut upper: Option<u64> = None;
                let mut lower: u64 = t0;
                let mut timed = true;
                for node in finals.keys() {
                    let mut reads: Vec<&Read> =
                        obj.reads.iter().filter(|r| r.node == *node).collect();
                    reads.sort_by_key(|r| r.complete);
                    // The first read from which on this node always showed the final state.
                    let settled = reads
                        .iter()
                        .rposition(|r| state(kind, &r.value) != **target)
                        .map_or(0, |i| i + 1);
                    match reads.get(settled).and_then(|r| r.time_complete) {
                        Some(t) => upper = Some(upper.map_or(t, |u| u.max(t))),
                        None => timed = false,
                    }
                    if settled > 0
                        && let Some(t) = reads[settled - 1].time_complete
                    {
                        lower = lower.max(t);
                    }
                }
                if let (true, Some(up)) = (timed, upper) {
                    convergence.push(json!({
                        "key": key,
                        "at_most_ms": ms(t0, up),
                        "at_least_ms": ms(t0, lower.min(up)),
                    }));
                }
            }
            per_key.push(json!({
                "key": key,
                "kind": kind.name(),
                "nodes": states.iter().map(|(n, v)| (n.to_string(), json!(short(kind, v)))).collect::<serde_json::Map<_, _>>(),
                "converged": distinct.len() == 1,
            }));
        }
        let invalid = !anomalies.is_empty();
        let no_finals = per_key.is_empty();
        let validity = if invalid {
            Validity::Invalid
        } else if no_finals && objects.values().any(|o| !o.writes.is_empty()) {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for a in &anomalies {
            *counts.entry(a.kind.clone()).or_insert(0) += 1;
        }
        let worst_conv = convergence
            .iter()
            .filter_map(|c| c["at_most_ms"].as_f64())
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let summary = match validity {
            Validity::Invalid => format!(
                "did not converge: {}",
                counts.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
            ),
            Validity::Unknown => "no final reads to judge convergence by".to_owned(),
            Validity::Valid => format!(
                "converged: {} agree on {} and hold every acknowledged write{}",
                crate::causal::plural(
                    objects
                        .values()
                        .flat_map(|o| o.reads.iter().filter(|r| r.is_final).map(|r| r.node.clone()))
                        .collect::<BTreeSet<_>>()
                        .len(),
                    "node"
                ),
                if objects.len() > 1 {
                    format!("each of {} {}s", objects.len(), kind.name())
                } else {
                    format!("the final {}", kind.name())
                },
                worst_conv
                    .map_or(String::new(), |c| format!(", within {c:.0} ms of the last write")),
            ),
        };
        let summary = match (
            stale_ops.len(),
            stale_ms
                .iter()
                .copied()
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
        ) {
            (0, _) => summary,
            (n, Some(worst)) => format!(
                "{summary}; {} during the run, up to {worst:.0} ms behind",
                crate::causal::plural(n, "stale read")
            ),
            (n, None) => format!(
                "{summary}; {} during the run, up to {} behind",
                crate::causal::plural(n, "stale read"),
                crate::causal::plural(
                    stale_ops.iter().copied().max().unwrap_or(0) as usize,
                    "write"
                )
            ),
        };
        let mut v = Verdict::new("convergence", validity, summary);
        if validity == Validity::Unknown {
            v.unknown_reason = Some(format!(
                "{phase}. Record a final read on every node after healing (f = final-read, with node set)"
            ));
        }
        let shown: Vec<Anomaly> = {
            let mut per: BTreeMap<String, usize> = BTreeMap::new();
            anomalies
                .into_iter()
                .filter(|a| {
                    let n = per.entry(a.kind.clone()).or_insert(0);
                    *n += 1;
                    *n <= self.limit
                })
                .collect()
        };
        v.anomalies = shown;
        stale_ops.sort_unstable();
        stale_ms.sort_by(f64::total_cmp);
        all_stale.sort_by(|a, b| {
            b["behind_ms"]
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&a["behind_ms"].as_f64().unwrap_or(0.0))
                .then(b["behind_ops"].as_u64().cmp(&a["behind_ops"].as_u64()))
        });
        v.details = json!({
            "kind": kind.name(),
            "final_phase": phase,
            "keys": per_key,
            "violations": counts,
            "convergence": convergence,
            "stale_reads": {
                "count": stale_ops.len(),
                "behind_ops": quantiles(&stale_ops),
                "behind_ms": quantiles(&stale_ms),
                "worst": all_stale.iter().take(10).collect::<Vec<_>>(),
            },
        });
        v.elapsed = started.elapsed();
        Ok(v)
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let d = &verdict.details;
        let mut body = format!(
            "<h1>Eventual convergence</h1>\n<p class=\"{}\">{}</p>\n<p class=\"muted\">{}</p>\n",
            verdict.validity.as_str(),
            escape(&verdict.summary),
            escape(d["final_phase"].as_str().unwrap_or(""))
        );
        let key_label = |k: &serde_json::Value| {
            if k.is_null() { "the object".to_owned() } else { format!("key {k}") }
        };
        if let Some(keys) = d["keys"].as_array() {
            body.push_str("<h2>Final state per node</h2>\n<table><tr><th>object</th><th>node</th><th>state</th></tr>\n");
            for k in keys {
                let key = key_label(&k["key"]);
                let bad = k["converged"] == json!(false);
                if let Some(nodes) = k["nodes"].as_object() {
                    for (n, s) in nodes {
                        body.push_str(&format!(
                            "<tr><td>{}</td><td>{}</td><td class=\"mono{}\">{}</td></tr>\n",
                            escape(&key),
                            escape(n),
                            if bad { " invalid" } else { "" },
                            escape(s.as_str().unwrap_or(""))
                        ));
                    }
                }
            }
            body.push_str("</table>\n");
        }
        for a in &verdict.anomalies {
            body.push_str(&format!(
                "<h3>{}</h3>\n<div class=\"explanation\">{}</div>\n",
                escape(&a.kind),
                escape(&a.explanation)
            ));
        }
        if let Some(conv) = d["convergence"].as_array().filter(|c| !c.is_empty()) {
            let items: Vec<(String, f64)> = conv
                .iter()
                .map(|c| (key_label(&c["key"]), c["at_most_ms"].as_f64().unwrap_or(0.0)))
                .collect();
            body.push_str("<h2>Convergence time (upper bound after the last write)</h2>\n");
            body.push_str(&crate::diagram::bars(&items, "ms"));
        }
        let stale = &d["stale_reads"];
        let stale_count = stale["count"].as_u64().unwrap_or(0) as usize;
        body.push_str(&format!(
            "<h2>Stale reads during the run</h2>\n<p>{} missed acknowledged writes that had completed before {} began.</p>\n",
            crate::causal::plural(stale_count, "read"),
            if stale_count == 1 { "it" } else { "they" }
        ));
        if let Some(worst) = stale["worst"].as_array().filter(|w| !w.is_empty()) {
            let items: Vec<(String, f64)> = worst
                .iter()
                .map(|w| {
                    (
                        format!("op {} on {}", w["op"], w["node"].as_str().unwrap_or("?")),
                        w["behind_ms"].as_f64().unwrap_or(w["behind_ops"].as_f64().unwrap_or(0.0)),
                    )
                })
                .collect();
            let unit = if worst.iter().any(|w| w["behind_ms"].is_number()) {
                "ms behind"
            } else {
                "writes behind"
            };
            body.push_str("<h3>The stalest reads</h3>\n");
            body.push_str(&crate::diagram::bars(&items, unit));
        }
        vec![HtmlPage { name: "convergence".into(), title: "Eventual convergence".into(), body }]
    }
}

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

/// Lost acknowledged writes and values nobody wrote, in each node's final state.
#[allow(clippy::too_many_arguments)]
fn lost_and_unexpected(
    kind: Kind,
    ctx: &Ctx<'_>,
    obj: &Object,
    finals: &BTreeMap<&str, &Read>,
    states: &BTreeMap<&str, Value>,
    label: &str,
    key: &Value,
    anomalies: &mut Vec<Anomaly>,
) {
    let nodes_text = |ns: &[&str]| {
        if ns.len() == states.len() { "every node".to_owned() } else { ns.join(", ") }
    };
    match kind {
        Kind::Set | Kind::List => {
            let attempted: BTreeSet<&Value> = obj.writes.iter().map(|w| &w.value).collect();
            // One anomaly per group of nodes that miss the same writes.
            let mut lost: BTreeMap<Vec<&str>, Vec<&Write>> = BTreeMap::new();
            for w in obj.writes.iter().filter(|w| w.acked) {
                let missing: Vec<&str> = states
                    .iter()
                    .filter(|(_, v)| !elements(v).contains(&w.value))
                    .map(|(n, _)| *n)
                    .collect();
                if !missing.is_empty() {
                    lost.entry(missing).or_default().push(w);
                }
            }
            for (missing, writes) in lost {
                let add_ops: Vec<u64> =
                    writes.iter().map(|w| ctx.idx(w.complete.unwrap_or(w.invoke))).collect();
                let example = writes[0];
                anomalies.push(Anomaly {
                    kind: "lost-write".into(),
                    explanation: if writes.len() == 1 {
                        format!(
                            "{} (added by op {}, acknowledged) is missing from the final state{label} on {}.",
                            example.value,
                            add_ops[0],
                            nodes_text(&missing)
                        )
                    } else {
                        format!(
                            "{} acknowledged writes are missing from the final state{label} on {}: {}.\nFor \
                             example {}, added by op {} and acknowledged.",
                            writes.len(),
                            nodes_text(&missing),
                            crate::classic::compact(writes.iter().map(|w| &w.value)),
                            example.value,
                            add_ops[0]
                        )
                    },
                    ops: add_ops.iter().copied().take(50).chain(missing.iter().map(|n| ctx.idx(finals[n].complete))).collect(),
                    data: json!({
                        "key": key,
                        "elements": writes.iter().map(|w| &w.value).collect::<Vec<_>>(),
                        "nodes": missing,
                    }),
                });
            }
            let mut unexpected: BTreeMap<&Value, Vec<&str>> = BTreeMap::new();
            for (n, v) in states {
                for e in elements(v) {
                    if !attempted.contains(e) {
                        unexpected.entry(e).or_default().push(n);
                    }
                }
            }
            for (e, ns) in unexpected {
                anomalies.push(Anomaly {
                    kind: "unexpected-value".into(),
                    explanation: format!(
                        "{e} is in the final state{label} on {}, but no operation added it.",
                        nodes_text(&ns)
                    ),
                    ops: ns.iter().map(|n| ctx.idx(finals[n].complete)).collect(),
                    data: json!({"key": key, "element": e, "nodes": ns}),
                });
            }
            if kind == Kind::List {
                for (n, v) in states {
                    let mut seen = BTreeSet::new();
                    let dups: Vec<&Value> =
                        elements(v).iter().filter(|e| !seen.insert(*e)).collect();
                    if !dups.is_empty() {
                        anomalies.push(Anomaly {
                            kind: "duplicate".into(),
                            explanation: format!(
                                "The final list{label} on {n} holds {} more than once.",
                                dups.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
                            ),
                            ops: vec![ctx.idx(finals[n].complete)],
                            data: json!({"key": key, "node": n, "elements": dups}),
                        });
                    }
                }
            }
        }
        Kind::Counter => {
            let acked: i64 =
                obj.writes.iter().filter(|w| w.acked).filter_map(|w| w.value.as_int()).sum();
            let unknown: Vec<i64> =
                obj.writes.iter().filter(|w| !w.acked).filter_map(|w| w.value.as_int()).collect();
            let possible = reachable_sums(acked, &unknown);
            for (n, v) in states {
                let value = v.as_int().unwrap_or(0);
                if !possible.contains(value) {
                    // Below the largest reachable total, some acknowledged
                    // increment must be missing (with non-negative deltas).
                    let kind =
                        if value < possible.max() { "lost-write" } else { "unexpected-value" };
                    anomalies.push(Anomaly {
                        kind: kind.into(),
                        explanation: format!(
                            "The final counter{label} on {n} is {value}, but the acknowledged increments sum to {acked} \
                             and {} more of unknown outcome could add {}: the final value must be {}.",
                            unknown.len(),
                            unknown.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
                            possible.describe()
                        ),
                        ops: vec![ctx.idx(finals[n].complete)],
                        data: json!({"key": key, "node": n, "value": value, "acknowledged": acked, "unknown": unknown}),
                    });
                }
            }
        }
        Kind::Register => {
            let mut by_value: BTreeMap<&Value, Vec<&str>> = BTreeMap::new();
            for (n, v) in states {
                by_value.entry(v).or_default().push(n);
            }
            for (v, ns) in by_value {
                let where_ = nodes_text(&ns);
                let read_ops = || ns.iter().map(|n| ctx.idx(finals[n].complete));
                let source = obj.writes.iter().find(|w| w.value == *v);
                if source.is_none() && !v.is_nil() {
                    anomalies.push(Anomaly {
                        kind: "unexpected-value".into(),
                        explanation: format!(
                            "The final value{label} on {where_} is {v}, but no operation wrote it."
                        ),
                        ops: read_ops().collect(),
                        data: json!({"key": key, "nodes": ns, "value": v}),
                    });
                    continue;
                }
                // Under last-write-wins, an acknowledged write that began
                // after the winner had completed should have won.
                let done = source.map(|w| w.complete.unwrap_or(usize::MAX));
                let lost: Vec<&Write> = obj
                    .writes
                    .iter()
                    .filter(|w| w.acked && w.value != *v && done.is_none_or(|d| d < w.invoke))
                    .collect();
                if let Some(last) = lost.iter().max_by_key(|w| w.invoke) {
                    let winner = match source {
                        Some(w) => {
                            format!(", written by op {}", ctx.idx(w.complete.unwrap_or(w.invoke)))
                        }
                        None => ", the initial value".into(),
                    };
                    anomalies.push(Anomaly {
                        kind: "lost-write".into(),
                        explanation: format!(
                            "The final value{label} on {where_} is {v}{winner}, but {} acknowledged write{} began after \
                             that write had completed and should have won under last-write-wins; the latest is {} (op {}).",
                            lost.len(),
                            if lost.len() == 1 { "" } else { "s" },
                            last.value,
                            ctx.idx(last.complete.unwrap_or(last.invoke))
                        ),
                        ops: read_ops().chain(lost.iter().map(|w| ctx.idx(w.complete.unwrap_or(w.invoke)))).collect(),
                        data: json!({"key": key, "nodes": ns, "value": v, "lost": lost.iter().map(|w| &w.value).collect::<Vec<_>>()}),
                    });
                }
            }
        }
    }
}

/// The values a counter can end at: the acknowledged sum plus any subset of
/// the deltas whose outcome is unknown. Exact while there are few distinct
/// sums; an interval beyond that.
enum Reachable {
    Exact(BTreeSet<i64>),
    Between(i64, i64),
}

fn reachable_sums(base: i64, unknown: &[i64]) -> Reachable {
    const CAP: usize = 4096;
    let mut sums = BTreeSet::from([base]);
    for d in unknown {
        let next: Vec<i64> = sums.iter().map(|s| s + d).collect();
        sums.extend(next);
        if sums.len() > CAP {
            let lo = base + unknown.iter().filter(|d| **d < 0).sum::<i64>();
            let hi = base + unknown.iter().filter(|d| **d > 0).sum::<i64>();
            return Reachable::Between(lo, hi);
        }
    }
    Reachable::Exact(sums)
}

impl Reachable {
    fn contains(&self, v: i64) -> bool {
        match self {
            Reachable::Exact(s) => s.contains(&v),
            Reachable::Between(lo, hi) => (*lo..=*hi).contains(&v),
        }
    }

    fn max(&self) -> i64 {
        match self {
            Reachable::Exact(s) => s.last().copied().unwrap_or(0),
            Reachable::Between(_, hi) => *hi,
        }
    }

    fn describe(&self) -> String {
        match self {
            Reachable::Exact(s) if s.len() <= 8 => {
                let v: Vec<String> = s.iter().map(|x| x.to_string()).collect();
                match v.len() {
                    1 => v[0].clone(),
                    _ => format!("{} or {}", v[..v.len() - 1].join(", "), v[v.len() - 1]),
                }
            }
            Reachable::Exact(s) => format!(
                "one of {} sums between {} and {}",
                s.len(),
                s.first().copied().unwrap_or(0),
                s.last().copied().unwrap_or(0)
            ),
            Reachable::Between(lo, hi) => format!("between {lo} and {hi}"),
        }
    }
}

/// Stale reads during the run: non-final reads that missed acknowledged
/// writes completed before they began.
#[allow(clippy::too_many_arguments)]
fn stale(
    kind: Kind,
    ctx: &Ctx<'_>,
    obj: &Object,
    out: &mut Vec<serde_json::Value>,
    behind_ops: &mut Vec<u64>,
    behind_ms: &mut Vec<f64>,
    key: &Value,
) {
    // Acknowledged writes by completion position.
    let mut acked: Vec<&Write> =
        obj.writes.iter().filter(|w| w.acked && w.complete.is_some()).collect();
    acked.sort_by_key(|w| w.complete);
    for r in obj.reads.iter().filter(|r| !r.is_final) {
        let before = acked.partition_point(|w| w.complete.is_some_and(|c| c < r.invoke));
        let known = &acked[..before];
        // The missed writes, as (count, earliest completion time).
        let missed: Vec<&&Write> = match kind {
            Kind::Set | Kind::List => {
                known.iter().filter(|w| !elements(&r.value).contains(&w.value)).collect()
            }
            Kind::Counter => {
                let value = r.value.as_int().unwrap_or(0);
                let mut sum: i64 = known.iter().filter_map(|w| w.value.as_int()).sum();
                let mut k = 0;
                while sum > value && k < known.len() {
                    k += 1;
                    sum -= known[known.len() - k].value.as_int().unwrap_or(0);
                }
                known[known.len() - k..].iter().collect()
            }
            Kind::Register => {
                let source = obj.writes.iter().find(|w| w.value == r.value);
                let done = source.map(|w| w.complete.unwrap_or(usize::MAX));
                known
                    .iter()
                    .filter(|w| w.value != r.value && done.is_none_or(|d| d < w.invoke))
                    .collect()
            }
        };
        if missed.is_empty() {
            continue;
        }
        let lag = missed
            .iter()
            .filter_map(|w| w.time_complete)
            .min()
            .and_then(|t| r.time_invoke.map(|ti| ms(t, ti)));
        behind_ops.push(missed.len() as u64);
        if let Some(l) = lag {
            behind_ms.push(l);
        }
        out.push(json!({
            "op": ctx.idx(r.complete),
            "node": r.node,
            "key": key,
            "behind_ops": missed.len(),
            "behind_ms": lag,
        }));
    }
}

/// The median, 95th percentile and maximum of sorted numbers (null when empty).
pub(crate) fn quantiles<T: Copy + serde::Serialize>(sorted: &[T]) -> serde_json::Value {
    if sorted.is_empty() {
        return serde_json::Value::Null;
    }
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    json!({"median": at(0.5), "p95": at(0.95), "max": at(1.0)})
}
