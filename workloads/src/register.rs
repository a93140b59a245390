//! The register workload: reads, writes and compare-and-sets on independent
//! keys. Each key gets a bounded number of operations before the workload
//! moves on to a fresh key, which keeps each key's history small enough for
//! the linearizability search (Jepsen's `independent/concurrent-generator`
//! does the same).

use checkers::Value;
use checkers::registry::CheckSpec;
use harness::generator::{self as g, Gen, Invocation};
use harness::{Result, TestSpec, Workload};
use rand::Rng;

/// Per-key CAS registers.
#[derive(Clone, Debug)]
pub struct Register {
    /// Keys in use at once.
    pub keys: u64,
    /// Operations on a key before it is retired.
    pub ops_per_key: u64,
    /// Values are drawn from `0..values`.
    pub values: i64,
}

impl Register {
    /// Reads `options.keys`, `options.ops_per_key`, `options.values`.
    pub fn from_spec(spec: &TestSpec) -> Result<Register> {
        Ok(Register {
            keys: spec.option("keys", 4u64)?.max(1),
            ops_per_key: spec.option("ops_per_key", 150u64)?.max(1),
            values: spec.option("values", 5i64)?.max(1),
        })
    }
}

impl Workload for Register {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        let (keys, per_key, values) = (self.keys, self.ops_per_key, self.values);
        // Slot i holds key `next[i]`; a key is retired after `per_key` ops
        // and replaced by the next unused key.
        let mut slots: Vec<(i64, u64)> = (0..keys as i64).map(|k| (k, 0)).collect();
        let mut next_key = keys as i64;
        g::from_fn(move |rng, _ctx| {
            let slot = rng.random_range(0..slots.len());
            let (key, used) = &mut slots[slot];
            let k = *key;
            *used += 1;
            if *used >= per_key {
                *key = next_key;
                *used = 0;
                next_key += 1;
            }
            let inv = match rng.random_range(0..3) {
                0 => Invocation::new("read", Value::Nil),
                1 => Invocation::new("write", rng.random_range(0..values)),
                _ => Invocation::new(
                    "cas",
                    Value::list([
                        rng.random_range(0..values).into(),
                        rng.random_range(0..values).into(),
                    ]),
                ),
            };
            Some(inv.with_key(k))
        })
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        None
    }

    fn fs(&self) -> Vec<String> {
        ["read", "write", "cas"].map(String::from).to_vec()
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        vec![CheckSpec {
            checker: "linearizable".into(),
            model: Some("cas-register".into()),
            independent: true,
            ..CheckSpec::default()
        }]
    }
}
