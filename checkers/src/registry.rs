//! Built-in checkers by name, for the command line and for test specs.
//!
//! `faultline check --checker NAME` and a test's `checkers = [...]` both go
//! through `build`. Plugins register their own checkers with the harness;
//! this table holds the ones that ship with faultline.

use std::collections::BTreeMap;

use crate::elle::{Elle, Workload};
use crate::error::CheckError;
use crate::linear::{Algorithm, LinearChecker, ModelName};
use crate::value::Value;
use crate::verdict::{Budget, Checker};

/// What the user asked for: a checker name and its options.
#[derive(Clone, Debug, Default)]
pub struct CheckSpec {
    /// The checker's name (see `NAMES`).
    pub checker: String,
    /// The model, for checkers that take one (`cas-register` for
    /// `linearizable`, `causal` for `causal`).
    pub model: Option<String>,
    /// The model's initial value, where it has one.
    pub init: Option<Value>,
    /// Consistency models to check against, for the transactional checkers.
    pub consistency_models: Vec<String>,
    /// Treat each op's value as an independent `[key value]` tuple.
    pub independent: bool,
    /// Time and memory limits.
    pub budget: Budget,
    /// Checker-specific options (`--opt key=value`).
    pub options: BTreeMap<String, String>,
}

/// Names and one-line descriptions of the built-in checkers.
pub const NAMES: &[(&str, &str)] = &[
    (
        "linearizable",
        "linearizability against a model (--model register|cas-register|multi-register|mutex|set|unordered-queue|fifo-queue|kv)",
    ),
    (
        "list-append",
        "Elle-style isolation check of [:append k v]/[:r k [..]] transactions \
         (--consistency-models, default strict-serializable)",
    ),
    (
        "rw-register",
        "Elle-style isolation check of [:w k v]/[:r k v] transactions \
         (--consistency-models, default strict-serializable; --opt wfr-keys/sequential-keys/linearizable-keys=true)",
    ),
    (
        "causal",
        "causal consistency of key-value histories by bad patterns; --model causal|ccv|causal-memory",
    ),
    ("session", "all four session guarantees, each reported separately (list-append or register)"),
    ("read-your-writes", "session guarantee: reads see the session's own earlier writes"),
    ("monotonic-reads", "session guarantee: reads see what the session's earlier reads saw"),
    (
        "monotonic-writes",
        "session guarantee: a write is visible only after its author's earlier writes",
    ),
    (
        "writes-follow-reads",
        "session guarantee: a write is visible only after the writes its author had read",
    ),
    (
        "convergence",
        "eventual convergence: final reads on every node agree and hold every acknowledged write \
         (registers: --opt order=real-time|causal|none judges which writes are lost)",
    ),
    (
        "set",
        "Jepsen set: every acknowledged add is in the final read (lost, unexpected, recovered)",
    ),
    ("set-full", "Jepsen set-full: per element stable, lost, never read or stale, with latencies"),
    ("counter", "Jepsen counter: each read lies between acknowledged and attempted sums"),
    ("bank", "Jepsen bank: every read sums to --opt total=N, no negative balances"),
    ("unique-ids", "Jepsen unique-ids: no id generated twice"),
    ("long-fork", "Jepsen long-fork: reads of key groups agree on one order of inserts"),
    ("total-queue", "Jepsen total-queue: every acknowledged enqueue comes out, nothing else does"),
    ("stats", "operation counts per function; invalid when a function never succeeded"),
    (
        "compose",
        "several checkers in parallel (--opt checkers=a,b), merged: invalid beats unknown beats valid",
    ),
];

/// Builds the checker `spec` names.
pub fn build(spec: &CheckSpec) -> Result<Box<dyn Checker>, CheckError> {
    match spec.checker.as_str() {
        "causal" => Ok(Box::new(crate::causal::CausalChecker::from_spec(spec)?)),
        "convergence" => Ok(Box::new(crate::convergence::ConvergenceChecker::from_spec(spec)?)),
        "set" => Ok(Box::new(crate::classic::set::SetChecker)),
        "set-full" => Ok(Box::new(crate::classic::set_full::SetFullChecker::from_spec(spec)?)),
        "counter" => Ok(Box::new(crate::classic::counter::CounterChecker {
            limit: crate::causal::limit_option(spec)?,
        })),
        "bank" => Ok(Box::new(crate::classic::bank::BankChecker::from_spec(spec)?)),
        "unique-ids" => Ok(Box::new(crate::classic::unique_ids::UniqueIdsChecker {
            limit: crate::causal::limit_option(spec)?,
        })),
        "long-fork" => Ok(Box::new(crate::classic::long_fork::LongForkChecker {
            limit: crate::causal::limit_option(spec)?,
        })),
        "total-queue" => Ok(Box::new(crate::classic::total_queue::TotalQueueChecker)),
        "stats" => Ok(Box::new(crate::classic::stats::StatsChecker)),
        "compose" => Ok(Box::new(crate::classic::compose(spec)?)),
        "session"
        | "read-your-writes"
        | "monotonic-reads"
        | "monotonic-writes"
        | "writes-follow-reads" => Ok(Box::new(crate::session::SessionChecker::from_spec(spec)?)),
        "linearizable" | "linearizability" => {
            let model = spec.model.as_deref().ok_or_else(|| {
                CheckError::BadOption(
                    "the linearizable checker needs --model (e.g. --model cas-register)".into(),
                )
            })?;
            let mut c =
                LinearChecker::new(model.parse::<ModelName>().map_err(CheckError::BadOption)?);
            c.init = spec.init.clone().unwrap_or_default();
            c.budget = spec.budget;
            if let Some(p) = spec.options.get("partition") {
                c.partition = parse_bool("partition", p)?;
            }
            match spec.options.get("algorithm").map(String::as_str) {
                None | Some("search") => {}
                Some("reference") => c.algorithm = Algorithm::Reference,
                Some(other) => {
                    return Err(CheckError::BadOption(format!(
                        "--opt algorithm={other}: expected search or reference"
                    )));
                }
            }
            Ok(Box::new(c))
        }
        "list-append" => Ok(Box::new(Elle::from_spec(spec, Workload::ListAppend)?)),
        "rw-register" => Ok(Box::new(Elle::from_spec(spec, Workload::RwRegister)?)),
        other => Err(CheckError::BadOption(format!(
            "unknown checker {other:?}; known checkers: {}",
            NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Reads a true/false `--opt` value.
pub(crate) fn parse_bool(name: &str, v: &str) -> Result<bool, CheckError> {
    match v {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(CheckError::BadOption(format!("--opt {name}={v}: expected true or false"))),
    }
}
