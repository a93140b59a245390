//! The causal and sessions workloads: reads and blind writes of a few keys,
//! every value written unique (so each read names the one write it saw and
//! causal order is known exactly), by sessions that each stay on one node
//! (`sessions = pinned`, the default) or move to a random node for every
//! operation (`sessions = moving`).
//!
//! `causal` is judged by the `causal` checker (model `causal_model`:
//! `causal`, `ccv` or `causal-memory`) and by the four session guarantees;
//! `sessions` by the session guarantees alone. A store that is causal only
//! for clients that stay on one node (refstore's `causal` mode) passes with
//! pinned sessions and breaks read-your-writes or monotonic reads when the
//! sessions move: the promise is per node, not per client.

use checkers::Value;
use checkers::registry::CheckSpec;
use harness::generator::{self as g, Gen, Invocation};
use harness::{HarnessError, Result, TestSpec, Workload};
use rand::Rng;

use crate::opts::{at_least, probability};

/// Reads and writes by pinned or moving sessions.
#[derive(Clone, Debug)]
pub struct Causal {
    /// Number of keys (`0..keys`).
    pub keys: i64,
    /// Probability that an operation is a read.
    pub read_ratio: f64,
    /// Sessions move to a random node for every operation.
    pub moving: bool,
    /// Nodes in the cluster, for moving sessions.
    pub nodes: u32,
    /// The causal checker's model; `None` for the session checks alone.
    pub causal_model: Option<String>,
}

impl Causal {
    /// Reads `options.keys` (default 20: with fewer, most writes overwrite
    /// each other and a fractured delivery is rarely seen; with 20, under
    /// partitions, refstore's eventual mode showed a causal violation in 4
    /// of 4 ten-second runs, against 0 of 3 with 5 keys), `read_ratio` (0.5), `sessions`
    /// (`pinned` or `moving`) and, with `causal`, `causal_model`
    /// (`causal`, `ccv` or `causal-memory`).
    pub fn from_spec(spec: &TestSpec, causal: bool) -> Result<Causal> {
        let moving = match spec.option_text("sessions").unwrap_or("pinned") {
            "pinned" => false,
            "moving" => true,
            other => {
                return Err(HarnessError::spec(
                    "test spec",
                    "options.sessions",
                    format!("{other:?}: use pinned or moving"),
                ));
            }
        };
        let causal_model = if causal {
            let m: String = spec.option("causal_model", "causal".to_owned())?;
            if !["causal", "ccv", "causal-memory"].contains(&m.as_str()) {
                return Err(HarnessError::spec(
                    "test spec",
                    "options.causal_model",
                    format!("{m:?}: use causal, ccv or causal-memory"),
                ));
            }
            Some(m)
        } else {
            None
        };
        Ok(Causal {
            keys: at_least(spec, "keys", 20, 1)?,
            read_ratio: probability(spec, "read_ratio", 0.5)?,
            moving,
            nodes: spec.nodes.max(1),
            causal_model,
        })
    }
}

impl Workload for Causal {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        let c = self.clone();
        let mut next = 0i64;
        g::from_fn(move |rng, _ctx| {
            let key = rng.random_range(0..c.keys);
            let inv = if rng.random_bool(c.read_ratio) {
                Invocation::new("read", Value::Nil)
            } else {
                next += 1;
                Invocation::new("write", next)
            };
            let inv = inv.with_key(key);
            Some(if c.moving { inv.on_node(rng.random_range(0..c.nodes)) } else { inv })
        })
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        None
    }

    fn fs(&self) -> Vec<String> {
        ["read", "write"].map(String::from).to_vec()
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        let mut checks = Vec::new();
        if let Some(model) = &self.causal_model {
            checks.push(CheckSpec {
                checker: "causal".into(),
                model: Some(model.clone()),
                ..CheckSpec::default()
            });
        }
        checks.push(CheckSpec { checker: "session".into(), ..CheckSpec::default() });
        checks
    }
}
