//! The transactional workloads, list-append and rw-register (Elle's):
//! transactions of reads and writes over a small rolling pool of keys
//! (`txns.rs`), judged by the Elle-style checker of the same name against
//! the consistency models the test names.
//!
//! - `list-append`: writes append unique values to a key's list, so a read
//!   shows every write the key's version had, in order: Elle infers the
//!   most from it.
//! - `rw-register`: blind writes of unique values; a read shows only the
//!   last write, so Elle infers less (and `wfr-keys` and similar
//!   assumptions, given as checker options, add back what a store promises).

use checkers::registry::CheckSpec;
use harness::generator::Gen;
use harness::{Result, TestSpec, Workload};

use crate::opts::{at_least, consistency_models};
use crate::txns::{self, Pool};

/// Read/append or read/write transactions.
#[derive(Clone, Debug)]
pub struct Transactions {
    /// The checker (and workload) name: `list-append` or `rw-register`.
    pub checker: &'static str,
    /// The transactions' shape.
    pool: Pool,
    /// The consistency models to check against.
    pub consistency_models: Vec<String>,
}

impl Transactions {
    /// list-append: `options.keys` (default 8), `appends_per_key` (64),
    /// `max_txn_len` (4), `consistency_models` (strict-serializable).
    pub fn list_append(spec: &TestSpec) -> Result<Transactions> {
        Transactions::from_spec(spec, "list-append", "append", "appends_per_key", 64)
    }

    /// rw-register: `options.keys` (default 8), `writes_per_key` (32),
    /// `max_txn_len` (4), `consistency_models` (strict-serializable).
    pub fn rw_register(spec: &TestSpec) -> Result<Transactions> {
        Transactions::from_spec(spec, "rw-register", "w", "writes_per_key", 32)
    }

    fn from_spec(
        spec: &TestSpec,
        checker: &'static str,
        write: &'static str,
        per_key_option: &str,
        per_key: i64,
    ) -> Result<Transactions> {
        Ok(Transactions {
            checker,
            pool: Pool {
                keys: at_least(spec, "keys", 8, 1)?,
                per_key: at_least(spec, per_key_option, per_key, 1)?,
                max_len: at_least(spec, "max_txn_len", 4, 1)?,
                write,
            },
            consistency_models: consistency_models(spec, "strict-serializable")?,
        })
    }
}

impl Workload for Transactions {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        txns::generator(self.pool)
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        None
    }

    fn fs(&self) -> Vec<String> {
        vec!["txn".into()]
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        vec![CheckSpec {
            checker: self.checker.into(),
            consistency_models: self.consistency_models.clone(),
            ..CheckSpec::default()
        }]
    }
}
