//! The list-append workload: transactions of appends and reads over a small
//! rolling set of keys. Every appended value is unique per key, which lets
//! an Elle-style checker recover the version order of each key from reads.

use std::collections::BTreeMap;

use checkers::Value;
use checkers::registry::CheckSpec;
use harness::generator::{self as g, Gen, Invocation};
use harness::{Result, TestSpec, Workload};
use rand::Rng;

/// Append/read transactions.
#[derive(Clone, Debug)]
pub struct ListAppend {
    /// Keys in use at once.
    pub keys: u64,
    /// Appends to a key before it is retired.
    pub appends_per_key: i64,
    /// Largest number of micro-ops in a transaction.
    pub max_txn_len: usize,
    /// The consistency models to check against.
    pub consistency_models: Vec<String>,
}

impl ListAppend {
    /// Reads `options.keys`, `options.appends_per_key`, `options.max_txn_len`
    /// and `options.consistency_models` (comma-separated).
    pub fn from_spec(spec: &TestSpec) -> Result<ListAppend> {
        let models: String = spec.option("consistency_models", "strict-serializable".to_owned())?;
        Ok(ListAppend {
            keys: spec.option("keys", 8u64)?.max(1),
            appends_per_key: spec.option("appends_per_key", 64i64)?.max(1),
            max_txn_len: spec.option("max_txn_len", 4usize)?.max(1),
            consistency_models: models
                .split(',')
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect(),
        })
    }
}

impl Workload for ListAppend {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        let (keys, per_key, max_len) = (self.keys as i64, self.appends_per_key, self.max_txn_len);
        // Active keys and the next value to append to each.
        let mut active: Vec<i64> = (0..keys).collect();
        let mut next_value: BTreeMap<i64, i64> = BTreeMap::new();
        let mut next_key = keys;
        g::from_fn(move |rng, _ctx| {
            let len = rng.random_range(1..=max_len);
            let mut mops = Vec::with_capacity(len);
            for _ in 0..len {
                let slot = rng.random_range(0..active.len());
                let k = active[slot];
                if rng.random_bool(0.5) {
                    let v = next_value.entry(k).or_insert(1);
                    mops.push(Value::list([Value::str("append"), k.into(), (*v).into()]));
                    *v += 1;
                    if *v > per_key {
                        active[slot] = next_key;
                        next_key += 1;
                    }
                } else {
                    mops.push(Value::list([Value::str("r"), k.into(), Value::Nil]));
                }
            }
            Some(Invocation::new("txn", Value::list(mops)))
        })
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        None
    }

    fn fs(&self) -> Vec<String> {
        vec!["txn".into()]
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        vec![CheckSpec {
            checker: "list-append".into(),
            consistency_models: self.consistency_models.clone(),
            ..CheckSpec::default()
        }]
    }
}
