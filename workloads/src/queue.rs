//! The queue workload (Jepsen's `queue`): enqueues of unique values and
//! dequeues, then, once faults have healed, a drain that empties what is
//! left. The `total-queue` checker judges it: every acknowledged enqueue
//! must come out (at least once), and nothing that was never enqueued may.
//!
//! On refstore the queue is one key holding a list, head first: an enqueue
//! appends; a dequeue reads the list and replaces it by its tail with a
//! compare-and-set (retried when another client took first); a drain does
//! the same with the empty list.

use std::time::Duration;

use checkers::Value;
use checkers::registry::CheckSpec;
use harness::generator::{self as g, Gen, Invocation};
use harness::{Result, TestSpec, Workload};
use rand::Rng;

use crate::opts::probability;

/// Enqueues and dequeues on one queue.
#[derive(Clone, Debug)]
pub struct Queue {
    /// Probability that an operation is a dequeue (the rest enqueue).
    pub dequeue_ratio: f64,
}

impl Queue {
    /// Reads `options.dequeue_ratio` (default 0.4, so the queue grows and
    /// the final drain has something to find).
    pub fn from_spec(spec: &TestSpec) -> Result<Queue> {
        Ok(Queue { dequeue_ratio: probability(spec, "dequeue_ratio", 0.4)? })
    }
}

impl Workload for Queue {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        let ratio = self.dequeue_ratio;
        let mut next = 0i64;
        g::from_fn(move |rng, _ctx| {
            if rng.random_bool(ratio) {
                Some(Invocation::new("dequeue", Value::Nil))
            } else {
                next += 1;
                Some(Invocation::new("enqueue", next))
            }
        })
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        let drain = g::from_fn(|_, _| Some(Invocation::new("drain", Value::Nil)));
        Some(g::until_ok(g::delay(Duration::from_millis(200), drain)))
    }

    fn fs(&self) -> Vec<String> {
        ["enqueue", "dequeue", "drain"].map(String::from).to_vec()
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        vec![CheckSpec { checker: "total-queue".into(), ..CheckSpec::default() }]
    }
}
