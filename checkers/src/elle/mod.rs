//! Elle-style transactional isolation checking for list-append and
//! rw-register histories.
//!
//! The method is Kingsbury and Alvaro's ("Elle: Inferring Isolation
//! Anomalies from Experimental Observations", VLDB 2020); the code is ours.
//! A check runs in five steps:
//!
//! 1. `prep`: every client operation becomes a transaction in compact
//!    tables (keys interned, values borrowed from the history).
//! 2. `append` / `register`: the workload's inference. It reports the
//!    anomalies a single read or transaction reveals (G1a, G1b, internal,
//!    lost update...) and emits write-write, write-read and read-write
//!    dependency edges.
//! 3. `graph`: real-time edges (a transitive reduction) or process edges,
//!    when the requested consistency models need them, join the dependency
//!    edges in one CSR graph of successor lists; an iterative Tarjan finds
//!    its strongly connected components.
//! 4. `cycles`: inside each non-trivial component only (in parallel), a
//!    search for the shortest cycle of each anomaly kind, most severe
//!    first, within a per-component time budget.
//! 5. `models`: the anomalies found are judged against the requested
//!    consistency models; the verdict lists the weakest models violated and
//!    the strongest still possible, and explains each anomaly in words.
//!
//! The default model is `strict-serializable`, as in Elle and in Jepsen's
//! list-append tests: it asks the most of a database, and the verdict still
//! names the weaker models the history satisfies.

mod append;
mod cycles;
mod explain;
pub mod generate;
mod graph;
pub mod models;
mod prep;
mod quick;
mod register;
mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde_json::json;

use self::cycles::{Cycle, Kind, Variant};
use self::explain::{Finding, Names};
use self::graph::{EdgeList, Graph, rel};
use self::prep::{MopKind, Prepared, Status};
use crate::error::CheckError;
use crate::history::History;
use crate::spec::CheckSpec;
use crate::verdict::{Anomaly, Checker, FromText, HtmlPage, Laps, Validity, Verdict};

/// The time each component's cycle search may take unless `--opt
/// cycle-search-timeout` says otherwise: Elle's default.
pub const DEFAULT_CYCLE_SEARCH_TIMEOUT: Duration = Duration::from_secs(1);

/// At most this many anomalies of one kind are written out in full; the
/// verdict's details count all of them.
pub const MAX_ANOMALIES_PER_KIND: usize = 100;

/// The transaction workloads this checker understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// `[:append k v]` and `[:r k [v1 v2 ...]]` over lists.
    ListAppend,
    /// `[:w k v]` and `[:r k v]` over registers.
    RwRegister,
}

impl Workload {
    /// The checker's name.
    pub fn name(self) -> &'static str {
        match self {
            Workload::ListAppend => "list-append",
            Workload::RwRegister => "rw-register",
        }
    }

    /// The micro-ops its histories hold.
    fn allowed(self) -> &'static [MopKind] {
        match self {
            Workload::ListAppend => &[MopKind::Append, MopKind::Read],
            Workload::RwRegister => &[MopKind::Write, MopKind::Read],
        }
    }
}

/// Options of an Elle check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElleOptions {
    /// Canonical names of the models the history must satisfy.
    pub consistency_models: Vec<String>,
    /// Further anomalies to treat as violations (`--opt anomalies=G2-item`).
    pub anomalies: Vec<String>,
    /// Time allowed for the cycle search in each strongly connected component.
    pub cycle_search_timeout: Duration,
    /// Time allowed for the whole check (`--time-limit`): no component's
    /// search goes past it, whatever its own limit.
    pub time_limit: Option<Duration>,
    /// Memory allowed for the dependency graph, in bytes (`--memory-limit`):
    /// a graph that would need more is not searched.
    pub memory_limit: Option<usize>,
    /// rw-register: assume each process sees each key's versions in order.
    pub sequential_keys: bool,
    /// rw-register: assume each key is linearizable (real time orders versions).
    pub linearizable_keys: bool,
    /// rw-register: assume a transaction's writes follow its reads.
    pub wfr_keys: bool,
}

impl Default for ElleOptions {
    fn default() -> Self {
        ElleOptions {
            consistency_models: vec!["strict-serializable".into()],
            anomalies: Vec::new(),
            cycle_search_timeout: DEFAULT_CYCLE_SEARCH_TIMEOUT,
            time_limit: None,
            memory_limit: None,
            sequential_keys: false,
            linearizable_keys: false,
            wfr_keys: false,
        }
    }
}

const APPEND_OPTIONS: &[&str] = &["anomalies", "cycle-search-timeout"];
const REGISTER_OPTIONS: &[&str] =
    &["anomalies", "cycle-search-timeout", "sequential-keys", "linearizable-keys", "wfr-keys"];

impl ElleOptions {
    /// Reads options from a command-line spec: `--consistency-models`
    /// (comma-separated or repeated; default strict-serializable), the
    /// budget (`--time-limit` for the whole check, `--memory-limit` for the
    /// graph), and `--opt` keys `anomalies`, `cycle-search-timeout`
    /// (milliseconds per strongly connected component; default 1000) and,
    /// for rw-register, `sequential-keys`, `linearizable-keys`, `wfr-keys`
    /// (true/false).
    pub fn from_spec(spec: &CheckSpec, workload: Workload) -> Result<ElleOptions, CheckError> {
        let bad = |m: String| CheckError::BadOption(m);
        let mut opts = ElleOptions::default();
        if let Some(m) = &spec.model {
            return Err(bad(format!(
                "--model {m:?} does not apply to {}; name consistency models with \
                 --consistency-models (e.g. serializable)",
                workload.name()
            )));
        }
        if spec.independent {
            return Err(bad(format!(
                "{} histories are transactions over many keys already; --independent does not apply",
                workload.name()
            )));
        }
        let requested: Vec<&str> = spec
            .consistency_models
            .iter()
            .flat_map(|m| m.split(','))
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        if !requested.is_empty() {
            opts.consistency_models = requested
                .iter()
                .map(|m| {
                    models::canonical(m).map(str::to_owned).ok_or_else(|| {
                        bad(format!(
                            "unknown consistency model {m:?}; known models: {}",
                            models::all_models().join(", ")
                        ))
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        let allowed =
            if workload == Workload::ListAppend { APPEND_OPTIONS } else { REGISTER_OPTIONS };
        let flag = crate::spec::parse_bool;
        for (k, v) in &spec.options {
            match k.as_str() {
                _ if !allowed.contains(&k.as_str()) => {
                    return Err(bad(format!(
                        "unknown option {k:?} for {}; known options: {}",
                        workload.name(),
                        allowed.join(", ")
                    )));
                }
                "anomalies" => {
                    opts.anomalies = v
                        .split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                "cycle-search-timeout" => {
                    let ms: u64 = v.parse().map_err(|_| {
                        bad(format!("--opt cycle-search-timeout={v}: expected milliseconds"))
                    })?;
                    opts.cycle_search_timeout = Duration::from_millis(ms);
                }
                "sequential-keys" => opts.sequential_keys = flag(k, v)?,
                "linearizable-keys" => opts.linearizable_keys = flag(k, v)?,
                "wfr-keys" => opts.wfr_keys = flag(k, v)?,
                _ => {}
            }
        }
        opts.time_limit = spec.budget.time;
        opts.memory_limit = spec.budget.memory;
        Ok(opts)
    }

    /// Every anomaly that violates what was asked for.
    pub fn prohibited(&self) -> BTreeSet<String> {
        let mut p = models::forbidden_by(self.consistency_models.iter().map(String::as_str));
        // Extra anomalies, and anything implying them.
        let extra: BTreeSet<String> = self.anomalies.iter().cloned().collect();
        for k in Kind::all() {
            if models::implied_anomalies([k.name()]).iter().any(|a| extra.contains(a)) {
                p.insert(k.name().to_owned());
            }
        }
        p.extend(extra);
        p
    }
}

/// An Elle-style checker: `list-append` or `rw-register`.
pub struct Elle {
    workload: Workload,
    opts: ElleOptions,
}

impl Elle {
    /// A checker for `workload` with `opts`.
    pub fn new(workload: Workload, opts: ElleOptions) -> Elle {
        Elle { workload, opts }
    }

    /// A checker built from a command-line spec.
    pub fn from_spec(spec: &CheckSpec, workload: Workload) -> Result<Elle, CheckError> {
        Ok(Elle::new(workload, ElleOptions::from_spec(spec, workload)?))
    }
}

/// What a workload's inference hands to the shared pipeline.
pub(crate) struct Analysis {
    /// Anomalies found without the cycle search.
    pub findings: Vec<Finding>,
    /// Data-dependency edges (ww, wr, rw).
    pub edges: EdgeList,
    /// Why the analysis cannot be trusted, if it cannot (a premise of the
    /// workload is broken, such as a value written twice): the verdict is
    /// then unknown whatever was found.
    pub broken_premise: Vec<String>,
    /// Workload statistics for the verdict's details.
    pub stats: serde_json::Value,
}

/// Justifies one data-dependency edge in words.
pub(crate) trait Explainer: Sync {
    /// Why transaction `a` precedes `b` through relation `r` (ww, wr or rw):
    /// one sentence naming both through `names`.
    fn edge(&self, prep: &Prepared<'_>, names: &mut Names, a: u32, b: u32, r: u8) -> String;
}

/// Severity order for listing anomalies: dirty writes and reads first,
/// then other problems of single reads, then the anti-dependency cycles,
/// then the session (process) and real-time cycles.
const SEVERITY: &[&str] = &[
    "G0",
    "G1a",
    "G1b",
    "G1c",
    "dirty-update",
    "garbage-read",
    "duplicate-elements",
    "incompatible-order",
    "cyclic-versions",
    "internal",
    "future-read",
    "G-single",
    "G-nonadjacent",
    "lost-update",
    "G2-item",
    "G0-process",
    "G1c-process",
    "G-single-process",
    "G-nonadjacent-process",
    "G2-item-process",
    "G0-realtime",
    "G1c-realtime",
    "G-single-realtime",
    "G-nonadjacent-realtime",
    "G2-item-realtime",
];

fn severity(kind: &str) -> usize {
    SEVERITY.iter().position(|k| *k == kind).unwrap_or(SEVERITY.len())
}

/// What a cycle of this kind means, as a sentence that starts with its name.
pub(crate) fn kind_meaning(kind: Kind) -> String {
    use cycles::Class::*;
    let (nickname, what) = match kind.class {
        G0 => (
            " (dirty write)",
            "the cycle has only write-write dependencies: the transactions overwrote each \
             other in an order no serial execution has",
        ),
        G1c => (
            " (circular information flow)",
            "the cycle has write-write and write-read dependencies only: each transaction saw \
             or overwrote the effects of the next",
        ),
        GSingle => (
            " (read skew)",
            "the cycle has exactly one read-write anti-dependency: a transaction missed a write \
             that, by the other dependencies, happened before it",
        ),
        GNonadjacent => (
            "",
            "the cycle has several read-write anti-dependencies, no two in a row; snapshot \
             isolation forbids it",
        ),
        G2Item => (
            " (anti-dependency cycle, as in write skew)",
            "the cycle has read-write anti-dependencies two in a row; serializability forbids \
             it, snapshot isolation allows it",
        ),
    };
    let variant = match kind.variant {
        Variant::Plain => "",
        Variant::Process => {
            "; it needs process order, so it breaks a session guarantee: a process must see \
             the effects of its own earlier transactions"
        }
        Variant::Realtime => {
            "; it needs real-time order: a transaction that began after another completed \
             must see its effects"
        }
    };
    format!("{}{nickname}: {what}{variant}.", kind.name())
}

/// Explains a cycle: legend, one line per edge, and the conclusion.
fn cycle_anomaly(
    prep: &Prepared<'_>,
    explainer: &dyn Explainer,
    cycle: &Cycle,
    scc_size: usize,
) -> Anomaly {
    let mut names = Names::default();
    for &(t, _) in &cycle.steps {
        names.of(t);
    }
    let n = cycle.steps.len();
    let mut lines = String::new();
    let mut steps_json = Vec::with_capacity(n);
    for i in 0..n {
        let (a, r) = cycle.steps[i];
        let b = cycle.steps[(i + 1) % n].0;
        let why = match r {
            rel::RT => {
                let (na, nb) = (names.of(a), names.of(b));
                format!(
                    "{na} completed (op {}) before {nb} was invoked (op {}), so {na} < {nb} in \
                     real time.",
                    prep.op_index(a),
                    prep.invoke_index(b)
                )
            }
            rel::PROCESS => {
                let (na, nb) = (names.of(a), names.of(b));
                format!(
                    "{na} and {nb} ran on process {}, {na} first, so {na} < {nb} in process order.",
                    prep.txns[a as usize].process
                )
            }
            _ => explainer.edge(prep, &mut names, a, b, r),
        };
        lines.push_str(&format!("{why}\n"));
        steps_json.push(json!({
            "from": names.of(a), "to": names.of(b), "rel": rel::name(r), "why": why,
        }));
    }
    let mut order: Vec<String> = cycle.steps.iter().map(|&(t, _)| names.of(t)).collect();
    order.push(names.of(cycle.steps[0].0));
    let explanation = format!(
        "{}{lines}So {}: a cycle, and no serial order of these transactions explains what they \
         did.\n{}\n",
        explain::legend(prep, &names),
        order.join(" < "),
        kind_meaning(cycle.kind)
    );
    // The legend was written after every name was given out (the explainer
    // may have named other transactions), so it lists them all.
    Anomaly {
        kind: cycle.kind.name().to_owned(),
        explanation,
        ops: names.ids().iter().map(|&t| prep.op_index(t)).collect(),
        data: json!({
            "txns": explain::txns_json(prep, &names),
            "cycle": steps_json,
            "cycle_length": n,
            "component_size": scc_size,
        }),
    }
}

/// Which order edges the requested models need: real-time order when a
/// `-realtime` anomaly is prohibited, else process order for a `-process`
/// one, else none.
fn order_variant(prohibited: &BTreeSet<String>) -> Variant {
    let wants = |suffix: &str| prohibited.iter().any(|a| a.ends_with(suffix));
    if wants("-realtime") {
        Variant::Realtime
    } else if wants("-process") {
        Variant::Process
    } else {
        Variant::Plain
    }
}

/// What the verdict's details say about the dependency graph.
struct GraphShape {
    edges: usize,
    by_relation: BTreeMap<&'static str, usize>,
    components: usize,
    largest_component: usize,
}

/// Everything a check found, for the verdict.
struct Found {
    /// Every anomaly, grouped by kind.
    anomalies: BTreeMap<String, Vec<Anomaly>>,
    /// The components whose cycle search ran out of time.
    timeouts: Vec<serde_json::Value>,
    /// Why the verdict may be unknown, in the order they arose.
    reasons: Vec<String>,
    /// A premise of the workload is broken: the verdict is unknown.
    premise_broken: bool,
    graph: GraphShape,
    /// The workload's inference statistics.
    stats: serde_json::Value,
}

impl Elle {
    /// The verdict when no committed transaction read anything.
    fn nothing_read(&self, prep: &Prepared<'_>, started: Instant) -> Verdict {
        let mut v = Verdict::unknown(
            self.workload.name(),
            "no read to judge",
            format!(
                "no committed transaction read anything ({} transactions), so no dependency \
                 between transactions was observed",
                prep.txns.len()
            ),
        );
        v.elapsed = started.elapsed();
        v
    }

    /// The workload's inference: version orders, the anomalies single reads
    /// show, dependency edges, and what explains those edges. List-append's
    /// edge list is made with room for the order edges `variant` adds.
    fn infer(&self, prep: &mut Prepared<'_>, variant: Variant) -> (Analysis, Box<dyn Explainer>) {
        match self.workload {
            Workload::ListAppend => {
                let (a, o) = append::analyze(prep, graph::order_edges_bound(prep, variant));
                (a, Box::new(o))
            }
            Workload::RwRegister => {
                let (a, o) = register::analyze(prep, &self.opts);
                (a, Box::new(o))
            }
        }
    }

    /// Builds the dependency graph with the order edges `variant` needs,
    /// unless it would exceed the memory limit (then it is empty and
    /// `reasons` says why).
    fn dependency_graph(
        &self,
        prep: &Prepared<'_>,
        variant: Variant,
        mut edges: EdgeList,
        reasons: &mut Vec<String>,
    ) -> (Graph, GraphShape) {
        let n = prep.txns.len() as u32;
        let chain_nodes = match variant {
            Variant::Realtime => graph::realtime_chain(prep, &mut edges, n),
            Variant::Process => {
                graph::process_edges(prep, &mut edges);
                0
            }
            Variant::Plain => 0,
        };
        let by_relation: BTreeMap<&str, usize> = edges
            .counts()
            .iter()
            .filter(|(_, c)| *c > 0)
            .map(|&(r, c)| (rel::name(r), c))
            .collect();
        let edge_total = edges.len();
        // What the graph and its search would hold: the edge columns twice
        // over (list, then out- and in-layout) and the transaction tables.
        let graph_bytes = edge_total * 18
            + prep.txns.len() * (std::mem::size_of::<prep::Txn>() + 16)
            + prep.mops.len() * std::mem::size_of::<prep::Mop>()
            + prep.elems.len() * 4;
        if let Some(m) = self.opts.memory_limit.filter(|&m| graph_bytes > m) {
            reasons.push(format!(
                "the dependency graph would take about {} MiB, over the memory limit of {} MiB, \
                 so no cycle was searched for",
                graph_bytes >> 20,
                m >> 20
            ));
            edges = EdgeList::default();
        }
        let graph = Graph::build((n + chain_nodes) as usize, edges);
        let shape =
            GraphShape { edges: edge_total, by_relation, components: 0, largest_component: 0 };
        (graph, shape)
    }

    /// Searches every non-trivial component for cycles, in parallel, each
    /// under its own time limit and the check's.
    fn search_cycles(
        &self,
        prep: &Prepared<'_>,
        graph: &Graph,
        sccs: &[Vec<u32>],
        variant: Variant,
        started: Instant,
    ) -> Vec<cycles::SccResult> {
        let kinds: Vec<Kind> = Kind::all()
            .into_iter()
            .filter(|k| k.variant == Variant::Plain || k.variant == variant)
            .collect();
        let per_component = self.opts.cycle_search_timeout;
        let overall = self.opts.time_limit.map(|t| started + t);
        sccs.par_iter()
            .map(|scc| {
                let own = Instant::now() + per_component;
                let deadline = overall.map_or(own, |o| o.min(own));
                let realtime = match variant {
                    Variant::Realtime => graph::realtime_among(prep, scc),
                    _ => Vec::new(),
                };
                cycles::search_scc(graph, scc, &realtime, &kinds, deadline)
            })
            .collect()
    }

    /// Why the cycle search is incomplete, if it ran out of time in some of
    /// the `components`.
    fn timeout_reason(&self, results: &[cycles::SccResult], components: usize) -> Option<String> {
        let timed_out = results.iter().filter(|r| r.timeout.is_some()).count();
        if timed_out == 0 {
            return None;
        }
        let per_component = self.opts.cycle_search_timeout;
        let limit = match self.opts.time_limit {
            Some(t) => format!(
                "{} ms per component, {:.1} s in all",
                per_component.as_millis(),
                t.as_secs_f64()
            ),
            None => format!("{} ms per component", per_component.as_millis()),
        };
        Some(format!(
            "the cycle search ran out of time ({limit}) in {} of {} strongly connected \
             components (the largest of them: {} transactions); anomalies there may be missing",
            timed_out,
            components,
            results.iter().filter(|r| r.timeout.is_some()).map(|r| r.size).max().unwrap_or(0)
        ))
    }

    /// The verdict on what the check found.
    fn verdict(
        &self,
        prep: &Prepared<'_>,
        found: Found,
        variant: Variant,
        timings: serde_json::Map<String, serde_json::Value>,
    ) -> Verdict {
        let prohibited = self.opts.prohibited();
        let Found { anomalies: all, timeouts, mut reasons, premise_broken, graph, stats } = found;
        let is_prohibited = |kind: &str| {
            prohibited.contains(kind)
                || models::item_form(kind).is_some_and(|i| prohibited.contains(&i))
        };
        let boundary = models::boundary(all.keys().map(String::as_str));
        let counts: BTreeMap<&str, usize> =
            all.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
        let mut reported: Vec<(&String, &Vec<Anomaly>)> =
            all.iter().filter(|(k, _)| is_prohibited(k)).collect();
        reported.sort_by_key(|(k, _)| (severity(k), (*k).clone()));
        let allowed_kinds: Vec<&str> =
            all.keys().filter(|k| !is_prohibited(k)).map(String::as_str).collect();
        let committed = prep.txns.iter().filter(|t| t.status != Status::Fail).count();
        if committed == 0 {
            reasons.push(
                "no transaction committed (or may have), so there is nothing to judge".into(),
            );
        }
        // A broken premise (duplicate writes) makes any anomaly suspect, so it
        // decides first; then a prohibited anomaly; then an unfinished search.
        let validity = if premise_broken {
            Validity::Unknown
        } else if !reported.is_empty() {
            Validity::Invalid
        } else if !reasons.is_empty() {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        let summary = self.summary(prep, &reported, &allowed_kinds, &counts, &boundary);
        let mut anomalies: Vec<Anomaly> = Vec::new();
        for (_, list) in &reported {
            anomalies.extend(list.iter().take(MAX_ANOMALIES_PER_KIND).cloned());
        }
        let status_count = |s: Status| prep.txns.iter().filter(|t| t.status == s).count();
        let mut verdict = Verdict::new(self.workload.name(), validity, summary);
        verdict.unknown_reason = (validity == Validity::Unknown).then(|| reasons.join("; "));
        verdict.anomalies = anomalies;
        verdict.details = json!({
            "consistency_models": self.opts.consistency_models,
            "anomaly_types": reported.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            "anomaly_counts": counts,
            "allowed_anomaly_types": allowed_kinds,
            "not": boundary.not,
            "also_not": boundary.also_not,
            "possible": boundary.possible,
            "transactions": {
                "ok": status_count(Status::Ok),
                "info": status_count(Status::Info),
                "fail": status_count(Status::Fail),
            },
            "graph": {
                "edges": graph.edges,
                "edges_by_relation": graph.by_relation,
                "order_edges": match variant {
                    // Real-time order goes through a chain of completion
                    // nodes; `rt` counts those edges.
                    Variant::Realtime => "realtime (as a chain of completion nodes)",
                    Variant::Process => "process",
                    Variant::Plain => "none",
                },
                "components": graph.components,
                "largest_component": graph.largest_component,
            },
            "search_timeouts": timeouts,
            "inference": stats,
            "timings_ms": timings,
        });
        verdict
    }

    /// The one-line summary: the prohibited anomalies found, the allowed
    /// ones, and which models the history is not or may still be.
    fn summary(
        &self,
        prep: &Prepared<'_>,
        reported: &[(&String, &Vec<Anomaly>)],
        allowed_kinds: &[&str],
        counts: &BTreeMap<&str, usize>,
        boundary: &models::Boundary,
    ) -> String {
        let models_text = self.opts.consistency_models.join(", ");
        let mut summary =
            format!("{} transactions checked against {models_text}: ", prep.txns.len());
        if reported.is_empty() {
            summary.push_str("no prohibited anomalies");
        } else {
            let parts: Vec<String> =
                reported.iter().map(|(k, v)| format!("{k} ({})", v.len())).collect();
            summary.push_str(&format!("found {}", parts.join(", ")));
        }
        if !allowed_kinds.is_empty() {
            let parts: Vec<String> =
                allowed_kinds.iter().map(|k| format!("{k} ({})", counts[k])).collect();
            summary
                .push_str(&format!("; also found, allowed by these models: {}", parts.join(", ")));
        }
        if !boundary.not.is_empty() {
            summary.push_str(&format!("; not {}", boundary.not.join(", ")));
        }
        if boundary.possible.is_empty() {
            summary.push_str("; no transactional model holds");
        } else {
            summary.push_str(&format!("; may still be {}", boundary.possible.join(", ")));
        }
        summary
    }
}

/// Every anomaly found, grouped by kind: each cycle explained, then the
/// findings of single reads; and the components whose search timed out.
fn explain_all(
    prep: &Prepared<'_>,
    explainer: &dyn Explainer,
    results: &[cycles::SccResult],
    findings: Vec<Finding>,
) -> (BTreeMap<String, Vec<Anomaly>>, Vec<serde_json::Value>) {
    let mut found: BTreeMap<String, Vec<Anomaly>> = BTreeMap::new();
    let mut timeouts = Vec::new();
    for r in results {
        for c in &r.cycles {
            found
                .entry(c.kind.name().to_owned())
                .or_default()
                .push(cycle_anomaly(prep, explainer, c, r.size));
        }
        if let Some((searched, pending)) = &r.timeout {
            timeouts.push(json!({
                "component_size": r.size,
                "searched": searched.iter().map(|k| k.name()).collect::<Vec<_>>(),
                "unfinished": pending.name(),
            }));
        }
    }
    for f in findings {
        found.entry(f.kind.to_owned()).or_default().push(f.into_anomaly(prep));
    }
    (found, timeouts)
}

impl Checker for Elle {
    fn name(&self) -> &str {
        self.workload.name()
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let started = Instant::now();
        let mut laps = Laps::start();
        let prep = Prepared::new(history, self.workload.name(), self.workload.allowed())?;
        laps.lap("prepare");
        Ok(self.decide(prep, laps, started))
    }

    fn checks_text(&self, head: &str) -> bool {
        crate::formats::txn_lines::starts(head)
    }

    fn check_text(&self, text: &mut (dyn std::io::Read + Send), source: &str) -> FromText {
        quick::check_text(self, text, source)
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        render::pages(self.workload.name(), verdict)
    }
}

impl Elle {
    /// The verdict on the transactions `prep` holds, the check having
    /// begun at `started` and timed its stages so far in `laps`.
    fn decide(&self, mut prep: Prepared<'_>, mut laps: Laps, started: Instant) -> Verdict {
        // Every anomaly Elle names rests on what some committed read saw;
        // without one there is no dependency to infer, and "no cycle"
        // would say nothing about the database.
        let observed = prep.txns.iter().any(|t| {
            t.status == Status::Ok && prep.mops[t.mops()].iter().any(|m| m.kind == MopKind::Read)
        });
        if !observed {
            return self.nothing_read(&prep, started);
        }
        let variant = order_variant(&self.opts.prohibited());
        let (analysis, explainer) = self.infer(&mut prep, variant);
        laps.lap("infer");
        let prep = prep;

        let Analysis { findings, edges, broken_premise, stats } = analysis;
        let premise_broken = !broken_premise.is_empty();
        let mut reasons = broken_premise;
        let (graph, mut shape) = self.dependency_graph(&prep, variant, edges, &mut reasons);
        let sccs = graph.nontrivial_sccs(prep.txns.len() as u32);
        shape.components = sccs.len();
        shape.largest_component = sccs.iter().map(Vec::len).max().unwrap_or(0);
        laps.lap("graph");

        let results = self.search_cycles(&prep, &graph, &sccs, variant, started);
        drop(graph);
        laps.lap("cycle-search");

        let (anomalies, timeouts) = explain_all(&prep, explainer.as_ref(), &results, findings);
        laps.lap("explain");
        reasons.extend(self.timeout_reason(&results, sccs.len()));
        let found = Found { anomalies, timeouts, reasons, premise_broken, graph: shape, stats };
        let mut verdict = self.verdict(&prep, found, variant, laps.timings);
        verdict.elapsed = started.elapsed();
        verdict
    }
}
