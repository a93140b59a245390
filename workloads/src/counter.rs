//! The counter workload (Jepsen's `counter`): increments of one counter by
//! small random amounts (and, with `decrements = true`, decrements), and
//! reads. The `counter` checker holds every read between the sum of the
//! increments certainly applied when it began and the sum of those that
//! may have been by the time it ended.
//!
//! The counter is created first by an increment of 0, which sets a missing
//! counter to 0 and changes nothing otherwise, so retrying it is harmless.
//! One counter per test: the checker judges a single counter.

use std::time::Duration;

use checkers::Value;
use checkers::registry::CheckSpec;
use harness::generator::{self as g, Gen, Invocation};
use harness::{Result, TestSpec, Workload};
use rand::Rng;

use crate::opts::{at_least, probability};

/// The counter's key.
const KEY: &str = "counter";

/// Increments and reads of one counter.
#[derive(Clone, Debug)]
pub struct Counter {
    /// The largest amount one increment adds.
    pub max_delta: i64,
    /// Whether some increments subtract.
    pub decrements: bool,
    /// Probability that an operation is a read.
    pub read_ratio: f64,
}

impl Counter {
    /// Reads `options.max_delta` (default 5), `decrements` (false) and
    /// `read_ratio` (0.5).
    pub fn from_spec(spec: &TestSpec) -> Result<Counter> {
        Ok(Counter {
            max_delta: at_least(spec, "max_delta", 5, 1)?,
            decrements: spec.option("decrements", false)?,
            read_ratio: probability(spec, "read_ratio", 0.5)?,
        })
    }
}

impl Workload for Counter {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        let create = g::from_fn(|_, _| Some(Invocation::new("increment", 0).with_key(KEY)));
        let create = g::until_ok(g::delay(Duration::from_millis(100), create));
        let c = self.clone();
        let work = g::from_fn(move |rng, _ctx| {
            if rng.random_bool(c.read_ratio) {
                return Some(Invocation::new("read", Value::Nil).with_key(KEY));
            }
            let mut delta = rng.random_range(1..=c.max_delta);
            if c.decrements && rng.random_bool(0.5) {
                delta = -delta;
            }
            Some(Invocation::new("increment", delta).with_key(KEY))
        });
        g::phases(vec![create, work])
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        let read = g::from_fn(|_, _| Some(Invocation::new("read", Value::Nil).with_key(KEY)));
        Some(g::each_thread(g::until_ok(g::delay(Duration::from_millis(100), read))))
    }

    fn fs(&self) -> Vec<String> {
        ["increment", "read"].map(String::from).to_vec()
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        vec![CheckSpec { checker: "counter".into(), ..CheckSpec::default() }]
    }
}
