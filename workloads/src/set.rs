//! The set workload: clients add unique integers to one set; after faults
//! heal, every client thread reads the whole set from its node. `set-full`
//! judges each acknowledged add (stable, lost, never read) and
//! `convergence` checks that the final reads of all nodes agree.

use checkers::Value;
use checkers::registry::CheckSpec;
use harness::generator::{self as g, Gen, Invocation};
use harness::{Result, TestSpec, Workload};
use rand::Rng;

/// Unique adds and reads of one set.
#[derive(Clone, Debug)]
pub struct SetWorkload {
    /// Probability that a main-phase operation is a read (the rest are adds).
    pub read_ratio: f64,
}

impl SetWorkload {
    /// Reads `options.read_ratio` (default 0.1).
    pub fn from_spec(spec: &TestSpec) -> Result<SetWorkload> {
        let read_ratio: f64 = spec.option("read_ratio", 0.1)?;
        if !(0.0..=1.0).contains(&read_ratio) {
            return Err(harness::HarnessError::spec(
                "test spec",
                "options.read_ratio",
                format!("{read_ratio} is not a probability between 0 and 1"),
            ));
        }
        Ok(SetWorkload { read_ratio })
    }
}

impl Workload for SetWorkload {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        let read_ratio = self.read_ratio;
        let mut next = 0i64;
        g::from_fn(move |rng, _ctx| {
            if rng.random_bool(read_ratio) {
                Some(Invocation::new("read", Value::Nil))
            } else {
                next += 1;
                Some(Invocation::new("add", next))
            }
        })
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        // Every thread reads until one read succeeds, so each node (threads
        // are spread over nodes) reports its final state.
        let read = g::from_fn(|_, _| Some(Invocation::new("read", Value::Nil)));
        Some(g::each_thread(g::until_ok(g::delay(std::time::Duration::from_millis(200), read))))
    }

    fn fs(&self) -> Vec<String> {
        vec!["add".into(), "read".into()]
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        vec![
            CheckSpec { checker: "set-full".into(), ..CheckSpec::default() },
            CheckSpec { checker: "convergence".into(), ..CheckSpec::default() },
        ]
    }
}
