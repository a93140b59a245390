//! The long-fork workload (Jepsen's `long-fork`): keys are inserted once
//! each, in order, by single-write transactions; reads read a whole group
//! of `group` consecutive keys in one transaction. Under snapshot isolation
//! or anything stronger, every read of a group sees the inserts in one
//! order; two reads where each saw an insert the other missed observed a
//! long fork. The `long-fork` checker judges it.
//!
//! Reads go to the group of the latest insert or the one before it, where
//! inserts are still arriving: a read of a finished group can see no fork.

use checkers::Value;
use checkers::registry::CheckSpec;
use harness::generator::{self as g, Gen, Invocation};
use harness::{Result, TestSpec, Workload};
use rand::Rng;

use crate::opts::{at_least, probability};

/// Single-key inserts and group reads.
#[derive(Clone, Debug)]
pub struct LongFork {
    /// Keys per group.
    pub group: i64,
    /// Probability that an operation is a read.
    pub read_ratio: f64,
}

impl LongFork {
    /// Reads `options.group` (default 3) and `read_ratio` (0.5).
    pub fn from_spec(spec: &TestSpec) -> Result<LongFork> {
        Ok(LongFork {
            group: at_least(spec, "group", 3, 2)?,
            read_ratio: probability(spec, "read_ratio", 0.5)?,
        })
    }
}

fn mop(f: &str, key: i64, value: Value) -> Value {
    Value::list([Value::str(f), key.into(), value])
}

impl Workload for LongFork {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        let (group, read_ratio) = (self.group, self.read_ratio);
        // The next key to insert; each key is inserted exactly once.
        let mut next = 0i64;
        g::from_fn(move |rng, _ctx| {
            if next > 0 && rng.random_bool(read_ratio) {
                let latest = (next - 1) / group;
                let g = if latest > 0 && rng.random_bool(0.3) { latest - 1 } else { latest };
                let reads = (g * group..(g + 1) * group).map(|k| mop("r", k, Value::Nil));
                return Some(Invocation::new("txn", Value::list(reads)));
            }
            let key = next;
            next += 1;
            Some(Invocation::new("txn", Value::list([mop("w", key, 1.into())])))
        })
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        None
    }

    fn fs(&self) -> Vec<String> {
        vec!["txn".into()]
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        vec![CheckSpec { checker: "long-fork".into(), ..CheckSpec::default() }]
    }
}
