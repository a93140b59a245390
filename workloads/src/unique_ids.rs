//! The unique-ids workload (Jepsen's `unique-ids`): every operation asks
//! the system for a new id (`generate`); no two acknowledged generates may
//! return the same one. The `unique-ids` checker judges it. On refstore an
//! id is a counter incremented and read in one transaction.

use checkers::Value;
use checkers::registry::CheckSpec;
use harness::generator::{self as g, Gen, Invocation};
use harness::{Result, TestSpec, Workload};

/// Id generation.
#[derive(Clone, Copy, Debug, Default)]
pub struct UniqueIds;

impl UniqueIds {
    /// Unique ids take no options.
    pub fn from_spec(_spec: &TestSpec) -> Result<UniqueIds> {
        Ok(UniqueIds)
    }
}

impl Workload for UniqueIds {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        g::from_fn(|_, _| Some(Invocation::new("generate", Value::Nil)))
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        None
    }

    fn fs(&self) -> Vec<String> {
        vec!["generate".into()]
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        vec![CheckSpec { checker: "unique-ids".into(), ..CheckSpec::default() }]
    }
}
