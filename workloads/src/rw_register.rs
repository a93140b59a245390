//! The rw-register workload (Elle's `rw-register`): transactions of reads
//! and blind writes over a small rolling pool of keys. Every value written
//! to a key is unique to it, so a read names the write it saw and the
//! Elle-style rw-register checker can infer write-read, write-write and
//! read-write dependencies and look for cycles the named consistency models
//! forbid. A key is retired after `writes_per_key` writes, which keeps each
//! key's version order small enough to infer.

use checkers::registry::CheckSpec;
use harness::generator::Gen;
use harness::{Result, TestSpec, Workload};

use crate::opts::{at_least, consistency_models};
use crate::txns::{self, Pool};

/// Read/write transactions.
#[derive(Clone, Debug)]
pub struct RwRegister {
    /// Keys in use at once.
    pub keys: i64,
    /// Writes to a key before it is retired.
    pub writes_per_key: i64,
    /// Largest number of micro-ops in a transaction.
    pub max_txn_len: i64,
    /// The consistency models to check against.
    pub consistency_models: Vec<String>,
}

impl RwRegister {
    /// Reads `options.keys` (default 8), `writes_per_key` (32),
    /// `max_txn_len` (4) and `consistency_models` (strict-serializable).
    pub fn from_spec(spec: &TestSpec) -> Result<RwRegister> {
        Ok(RwRegister {
            keys: at_least(spec, "keys", 8, 1)?,
            writes_per_key: at_least(spec, "writes_per_key", 32, 1)?,
            max_txn_len: at_least(spec, "max_txn_len", 4, 1)?,
            consistency_models: consistency_models(spec, "strict-serializable")?,
        })
    }
}

impl Workload for RwRegister {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        txns::generator(Pool {
            keys: self.keys,
            per_key: self.writes_per_key,
            max_len: self.max_txn_len,
            write: "w",
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
            checker: "rw-register".into(),
            consistency_models: self.consistency_models.clone(),
            ..CheckSpec::default()
        }]
    }
}
