//! Causal consistency of key-value histories, by the bad patterns of
//! Bouajjani, Enea, Guerraoui and Hamza ("On Verifying Causal Consistency",
//! POPL 2017).
//!
//! A history is a set of sessions (one per process) of reads and writes.
//! When it is *differentiated* (each value written at most once per key),
//! every read names the one write it observed, and causal order
//! `CO = (session order ∪ read-from)+` is known exactly. Each model is then
//! the absence of a few bad patterns, all decidable in polynomial time:
//! CC forbids CyclicCO, WriteCOInitRead, ThinAirRead and WriteCORead; CCv adds
//! CyclicCF; causal memory adds WriteHBInitRead and CyclicHB. See `patterns`
//! for the algorithms and their complexity, and `docs/checkers.md` for users.
//!
//! A history that is not differentiated is rejected with an error naming
//! both writes: guessing which write a read saw would make the verdict a guess.

// The convergence checker judges lost writes by the same causal order, and
// explains them with the same chains.
pub(crate) mod explain;
pub(crate) mod graph;
mod patterns;

use std::time::Instant;

use rustc_hash::FxHashMap;
use serde_json::json;

pub use graph::{Chain, Step};
pub use patterns::{Model, Pattern};

use self::patterns::Findings;

use crate::error::CheckError;
use crate::history::History;
use crate::html::escape;
use crate::kv::{Access, KvHistory};
use crate::spec::CheckSpec;
use crate::value::Value;
use crate::verdict::{Budget, Checker, HtmlPage, Validity, Verdict};

/// Default number of violations explained per pattern.
pub const DEFAULT_LIMIT: usize = crate::spec::DEFAULT_MAX_ANOMALIES;

/// The causal consistency checker (`causal`).
#[derive(Clone, Debug)]
pub struct CausalChecker {
    model: Model,
    init: Value,
    limit: usize,
    budget: Budget,
}

impl CausalChecker {
    /// A checker for `model` with the initial value `nil`.
    pub fn new(model: Model) -> CausalChecker {
        CausalChecker { model, init: Value::Nil, limit: DEFAULT_LIMIT, budget: Budget::default() }
    }

    /// Builds the checker from `--model causal|ccv|causal-memory`, `--init`
    /// and `--opt max-anomalies=N`.
    pub fn from_spec(spec: &CheckSpec) -> Result<CausalChecker, CheckError> {
        let model = match spec.model.as_deref() {
            None => Model::Causal,
            Some(m) => Model::parse(m).ok_or_else(|| {
                CheckError::BadOption(format!(
                    "the causal checker's model must be causal, ccv or causal-memory, not {m:?}"
                ))
            })?,
        };
        let mut c = CausalChecker::new(model);
        if let Some(init) = &spec.init {
            c.init = init.clone();
        }
        c.limit = spec.max_anomalies()?;
        c.budget = spec.budget;
        Ok(c)
    }

    /// The model checked.
    pub fn model(&self) -> Model {
        self.model
    }
}

fn model_title(model: Model) -> &'static str {
    match model {
        Model::Causal => "causal consistency (CC)",
        Model::Convergent => "convergent causal consistency (CCv)",
        Model::Memory => "causal memory (CM)",
    }
}

/// Indexes every write by (key, value), rejecting a history in which a value
/// is written twice to one key, or the initial value is written.
fn writers<'a>(
    history: &History,
    kv: &'a KvHistory,
    init: &Value,
) -> Result<FxHashMap<(u32, &'a Value), u32>, CheckError> {
    let mut map: FxHashMap<(u32, &Value), u32> = FxHashMap::default();
    for (i, e) in kv.events.iter().enumerate() {
        if e.access != Access::Write {
            continue;
        }
        let key = kv.key_name(e.key);
        let key = if key.is_empty() { "the register".to_owned() } else { format!("key {key}") };
        if e.value == *init {
            return Err(CheckError::BadOp {
                location: history.locate(e.pos).field("value"),
                message: format!(
                    "this write gives {key} the value {}, which is also the initial value; the causal checker \
                     cannot tell a read of it from a read of the initial value. Write unique values other than {}",
                    e.value, init
                ),
            });
        }
        if let Some(&first) = map.get(&(e.key, &e.value)) {
            let first = &kv.events[first as usize];
            return Err(CheckError::BadOp {
                location: history.locate(e.pos).field("value"),
                message: format!(
                    "{key} is given the value {} twice, here and at {}; the causal checker needs each value \
                     written at most once per key (a differentiated history) so that every read names the one \
                     write it observed. Make the workload write unique values per key",
                    e.value,
                    history.locate(first.pos)
                ),
            });
        }
        map.insert((e.key, &e.value), i as u32);
    }
    Ok(map)
}

impl CausalChecker {
    /// A verdict before any search, when there is nothing to search or no
    /// budget to search with: no read, vector clocks over the memory
    /// budget, or the time spent already. `counts` become its details.
    fn before_search(
        &self,
        kv: &KvHistory,
        reads: usize,
        counts: &serde_json::Value,
        started: Instant,
    ) -> Option<Verdict> {
        let width = kv.sessions.len().max(1);
        // Two clock arrays of n × S counters at most (causal order, and the
        // conflict or happens-before pass).
        let clock_bytes =
            kv.events.len() * width * 4 * if self.model == Model::Causal { 1 } else { 2 };
        let mut v = if reads == 0 {
            // Every bad pattern is about what a read returned.
            Verdict::unknown(
                "causal",
                format!("{} not judged: no read", model_title(self.model)),
                format!(
                    "no read completed ok ({} writes), so nothing observed what the store held",
                    kv.events.len()
                ),
            )
        } else if let Some(limit) = self.budget.memory
            && clock_bytes > limit
        {
            let mut v = Verdict::new(
                "causal",
                Validity::Unknown,
                format!("{} not checked: the memory budget is too small", model_title(self.model)),
            );
            v.unknown_reason = Some(format!(
                "vector clocks for {} operations over {} processes need {} bytes; the budget allows {limit}",
                kv.events.len(),
                width,
                clock_bytes
            ));
            v
        } else if let Some(t) = self.budget.time
            && started.elapsed() >= t
        {
            // The search looks at the clock between its passes; a budget that
            // is already spent (or spent reading the history) stops it here.
            let reason = format!("the time limit of {} ran out", crate::budget::show_duration(t));
            Verdict::out_of_budget("causal", reason, started.elapsed())
        } else {
            return None;
        };
        v.details = counts.clone();
        v.elapsed = started.elapsed();
        Some(v)
    }

    /// The verdict's validity and summary from what the search found.
    fn summary(&self, kv: &KvHistory, reads: usize, found: &Findings) -> (Validity, String) {
        let total: usize = found.counts.values().sum();
        let title = model_title(self.model);
        if total > 0 {
            let parts: Vec<String> =
                found.counts.iter().map(|(p, n)| format!("{} {n}", p.name())).collect();
            (
                Validity::Invalid,
                format!(
                    "not {title}: {total} violation{} ({})",
                    if total == 1 { "" } else { "s" },
                    parts.join(", ")
                ),
            )
        } else if found.exhausted.is_some() {
            (Validity::Unknown, format!("{title} undecided: the time budget ran out"))
        } else {
            let names: Vec<&str> = self.model.patterns().iter().map(|p| p.name()).collect();
            (
                Validity::Valid,
                format!(
                    "{title} holds: {}, {}, {} and {} show none of {}",
                    plural(reads, "read"),
                    plural(kv.events.len() - reads, "write"),
                    plural(kv.sessions.len(), "process"),
                    plural(kv.keys.len(), "key"),
                    names.join(", ")
                ),
            )
        }
    }

    /// The verdict's details: the history's `counts`, the model and its
    /// patterns, violations per pattern, what was not checked, and the
    /// work the stronger models did.
    fn details(&self, mut details: serde_json::Value, found: &Findings) -> serde_json::Value {
        details["model"] = json!(self.model.name());
        details["patterns"] =
            json!(self.model.patterns().iter().map(|p| p.name()).collect::<Vec<_>>());
        let mut by_pattern = serde_json::Map::new();
        for (p, n) in &found.counts {
            by_pattern.insert(p.name().to_owned(), json!(n));
        }
        details["counts"] = serde_json::Value::Object(by_pattern);
        details["explained_per_pattern"] = json!(self.limit);
        if !found.skipped.is_empty() {
            details["not_checked"] = json!(
                found
                    .skipped
                    .iter()
                    .map(|(p, why)| json!({"pattern": p.name(), "reason": why}))
                    .collect::<Vec<_>>()
            );
        }
        if self.model != Model::Causal {
            details["extra_edges"] = json!(found.extra_edges);
        }
        if self.model == Model::Memory {
            details["saturation_rounds"] = json!(found.rounds);
        }
        details
    }
}

impl Checker for CausalChecker {
    fn name(&self) -> &str {
        "causal"
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let started = Instant::now();
        // Every pattern starts from the one write a read observed; a read of
        // several siblings would otherwise read as a value out of thin air.
        if let Some(mut v) = crate::siblings::unjudged("causal", history, &self.init)? {
            v.elapsed = started.elapsed();
            return Ok(v);
        }
        let kv = KvHistory::parse(history, "the causal checker")?;
        let writes = writers(history, &kv, &self.init)?;
        let rf = patterns::read_from(&kv, &self.init, &writes);
        drop(writes);
        let reads = kv.events.iter().filter(|e| e.access == Access::Read).count();
        let counts = json!({
            "reads": reads,
            "writes": kv.events.len() - reads,
            "processes": kv.sessions.len(),
            "keys": kv.keys.len(),
        });
        if let Some(v) = self.before_search(&kv, reads, &counts, started) {
            return Ok(v);
        }
        let search = patterns::Search {
            model: self.model,
            init: &self.init,
            limit: self.limit,
            deadline: self.budget.time.map(|t| started + t),
        };
        let found = patterns::search(&kv, rf, &search);
        let explainer = explain::Explainer { history, kv: &kv };
        let anomalies: Vec<_> = found.violations.iter().map(|v| explainer.anomaly(v)).collect();
        let (validity, summary) = self.summary(&kv, reads, &found);
        let mut v = Verdict::new("causal", validity, summary);
        if validity != Validity::Invalid {
            v.unknown_reason = found.exhausted.clone();
        }
        v.anomalies = anomalies;
        v.details = self.details(counts, &found);
        v.elapsed = started.elapsed();
        Ok(v)
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        let mut body = format!(
            "<h1>{}</h1>\n<p class=\"{}\">{}</p>\n",
            escape(&capitalize(model_title(self.model))),
            verdict.validity.as_str(),
            escape(&verdict.summary)
        );
        if let Some(why) = &verdict.unknown_reason {
            body.push_str(&format!("<p class=\"unknown\">Unknown because: {}</p>\n", escape(why)));
        }
        body.push_str(
            "<p class=\"muted\">Causal order is session order (each process's operations in order) plus \
             read-from (a read follows the write whose value it returned), closed transitively. Each picture \
             below draws one violation: a box per operation, a column per process, an arrow per step of \
             the chain.</p>\n",
        );
        for a in &verdict.anomalies {
            body.push_str(&format!(
                "<h2>{}</h2>\n<div class=\"explanation\">{}</div>\n",
                escape(&a.kind),
                escape(&a.explanation)
            ));
            if let Some(chains) = a.data.get("chains").and_then(|c| c.as_array()) {
                for chain in chains {
                    body.push_str(&chain_svg(chain));
                }
            }
        }
        if let Some(hidden) = hidden_count(verdict) {
            body.push_str(&format!(
                "<p class=\"muted\">{hidden} more violations were counted but not drawn (see --opt max-anomalies).</p>\n"
            ));
        }
        vec![HtmlPage { name: "causal".into(), title: capitalize(model_title(self.model)), body }]
    }
}

fn hidden_count(verdict: &Verdict) -> Option<u64> {
    let counts = verdict.details.get("counts")?.as_object()?;
    let total: u64 = counts.values().filter_map(|v| v.as_u64()).sum();
    let shown = verdict.anomalies.len() as u64;
    (total > shown).then_some(total - shown)
}

use crate::text::plural;

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Draws one chain from its JSON form (`[{op, process, what, step}]`); the
/// session checker draws its witnesses the same way.
pub(crate) fn chain_svg(chain: &serde_json::Value) -> String {
    use crate::diagram::{Edge, Node};
    let Some(items) = chain.as_array() else { return String::new() };
    let mut nodes: Vec<Node> = Vec::new();
    let mut ops: Vec<u64> = Vec::new();
    let mut edges = Vec::new();
    let mut prev: Option<usize> = None;
    for item in items {
        let op = item.get("op").and_then(|o| o.as_u64()).unwrap_or(0);
        let what = item.get("what").and_then(|w| w.as_str()).unwrap_or("");
        let process = item.get("process").map(|p| p.to_string()).unwrap_or_default();
        let label = format!("op {op}: {}", what.replace(" (the initial value)", ""));
        // A cycle names its first op again at the end: point back to it.
        let idx = match ops.iter().position(|&o| o == op) {
            Some(i) if nodes[i].label == label => i,
            _ => {
                ops.push(op);
                nodes.push(Node { lane: format!("process {process}"), label });
                nodes.len() - 1
            }
        };
        if let Some(p) = prev {
            let step = item.get("step").and_then(|s| s.as_str()).unwrap_or("");
            edges.push(Edge { from: p, to: idx, label: step.to_owned() });
        }
        prev = Some(idx);
    }
    format!("<div class=\"chain\">{}</div>\n", crate::diagram::lanes(&nodes, &edges))
}
