//! The last-write-wins register workload: blind writes of unique values and
//! reads on a few keys, then a final read of every key on every node. The
//! `convergence` checker (as a register) judges it: every node must end
//! with the same value per key, and under last-write-wins a write that
//! began after another had completed must win over it, so a lost
//! acknowledged write is named with the write that wrongly beat it.
//!
//! Concurrent writes may legitimately end either way, so this workload
//! finds what clocks do to a last-write-wins store (a node whose clock is
//! behind writes in the past), not what concurrency does. `order` names
//! the order the store promises its last write wins by: `real-time` (the
//! default; a store that orders writes by wall clock, such as refstore's
//! multi-leader mode), `causal` (by Lamport clocks, such as refstore's
//! eventual mode: a write concurrent with the winner may lose) or `none`.

use checkers::Value;
use checkers::registry::CheckSpec;
use harness::generator::{self as g, Gen, Invocation};
use harness::{Result, TestSpec, Workload};
use rand::Rng;

/// Writes and reads of last-write-wins registers.
#[derive(Clone, Debug)]
pub struct LwwRegister {
    /// Number of keys (`0..keys`).
    pub keys: i64,
    /// Probability that a main-phase operation is a read.
    pub read_ratio: f64,
    /// The order the last write wins by (`convergence`'s `--opt order`).
    pub order: String,
}

impl LwwRegister {
    /// Reads `options.keys` (default 3) and `options.read_ratio` (default 0.5).
    pub fn from_spec(spec: &TestSpec) -> Result<LwwRegister> {
        let keys: i64 = spec.option("keys", 3)?;
        let read_ratio: f64 = spec.option("read_ratio", 0.5)?;
        let order: String = spec.option("order", "real-time".to_owned())?;
        if !["real-time", "causal", "none"].contains(&order.as_str()) {
            return Err(harness::HarnessError::spec(
                "test spec",
                "options.order",
                format!("{order:?}: use real-time, causal or none"),
            ));
        }
        if keys < 1 || !(0.0..=1.0).contains(&read_ratio) {
            return Err(harness::HarnessError::spec(
                "test spec",
                "options.keys",
                format!(
                    "keys must be positive ({keys}) and read_ratio a probability ({read_ratio})"
                ),
            ));
        }
        Ok(LwwRegister { keys, read_ratio, order })
    }
}

impl Workload for LwwRegister {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        let (keys, read_ratio) = (self.keys, self.read_ratio);
        let mut next = 0i64;
        g::from_fn(move |rng, _ctx| {
            let key = rng.random_range(0..keys);
            if rng.random_bool(read_ratio) {
                Some(Invocation::new("read", Value::Nil).with_key(key))
            } else {
                // Unique values, so every read names the write it saw.
                next += 1;
                Some(Invocation::new("write", next).with_key(key))
            }
        })
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        // Every thread (threads are spread over the nodes) reads every key
        // until a read succeeds.
        let per_key = (0..self.keys)
            .map(|k| {
                let read = g::from_fn(move |_, _| {
                    Some(Invocation::new("final-read", Value::Nil).with_key(k))
                });
                g::until_ok(g::delay(std::time::Duration::from_millis(100), read))
            })
            .collect();
        Some(g::each_thread(g::seq(per_key)))
    }

    fn fs(&self) -> Vec<String> {
        ["read", "write", "final-read"].map(String::from).to_vec()
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        let mut c = CheckSpec { checker: "convergence".into(), ..CheckSpec::default() };
        c.options.insert("type".into(), "register".into());
        c.options.insert("order".into(), self.order.clone());
        vec![c]
    }
}
