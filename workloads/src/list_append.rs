//! The list-append workload: transactions of appends and reads over a small
//! rolling set of keys. Every appended value is unique per key, which lets
//! an Elle-style checker recover the version order of each key from reads.

use checkers::registry::CheckSpec;
use harness::generator::Gen;
use harness::{Result, TestSpec, Workload};

use crate::opts::consistency_models;
use crate::txns::{self, Pool};

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
        Ok(ListAppend {
            keys: spec.option("keys", 8u64)?.max(1),
            appends_per_key: spec.option("appends_per_key", 64i64)?.max(1),
            max_txn_len: spec.option("max_txn_len", 4usize)?.max(1),
            consistency_models: consistency_models(spec, "strict-serializable")?,
        })
    }
}

impl Workload for ListAppend {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        txns::generator(Pool {
            keys: self.keys as i64,
            per_key: self.appends_per_key,
            max_len: self.max_txn_len as i64,
            write: "append",
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
