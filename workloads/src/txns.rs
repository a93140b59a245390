//! Transactions over a small rolling pool of keys, shared by list-append
//! and rw-register: each micro-op reads or writes a random active key;
//! values written to a key count up from 1, unique per key, so a read names
//! the write it saw; a key is retired after `per_key` writes and replaced by
//! a fresh one, which keeps each key's version order small enough to infer.

use std::collections::BTreeMap;

use checkers::Value;
use harness::generator::{self as g, Gen, Invocation};
use rand::Rng;

/// The shape of the transactions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pool {
    /// Keys in use at once.
    pub keys: i64,
    /// Writes to a key before it is retired.
    pub per_key: i64,
    /// Largest number of micro-ops in a transaction.
    pub max_len: i64,
    /// The write micro-op's function: `append` or `w`.
    pub write: &'static str,
}

/// Endless `txn` invocations over the pool.
pub(crate) fn generator(pool: Pool) -> Gen {
    let Pool { keys, per_key, max_len, write } = pool;
    let mut active: Vec<i64> = (0..keys).collect();
    let mut next_value: BTreeMap<i64, i64> = BTreeMap::new();
    let mut next_key = keys;
    g::from_fn(move |rng, _ctx| {
        let len = rng.random_range(1..=max_len);
        let mut mops = Vec::with_capacity(len as usize);
        for _ in 0..len {
            let slot = rng.random_range(0..active.len());
            let k = active[slot];
            if rng.random_bool(0.5) {
                let v = next_value.entry(k).or_insert(1);
                mops.push(Value::list([Value::str(write), k.into(), (*v).into()]));
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
