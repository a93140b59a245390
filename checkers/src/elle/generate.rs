//! Generated transactional histories, for property tests and benchmarks.
//!
//! A small simulated database runs list-append or rw-register transactions
//! from concurrent client processes and records the history as Jepsen
//! would: an invocation, then an ok, fail or info completion. Under
//! `Isolation::Serializable` each transaction takes effect atomically at
//! one instant between its invocation and completion, so the history is
//! strict serializable by construction. Under `Isolation::SnapshotIsolation`
//! a transaction reads from a snapshot taken after its invocation and
//! commits (first committer wins) before its completion, so the history is
//! strong snapshot isolation by construction, and write skew can happen.
//!
//! Keys rotate as in Jepsen's generators: `active_keys` keys are in use at
//! a time, and a key that has received `max_writes_per_key` writes is
//! replaced by a fresh one, which keeps reads short however long the
//! history. Every written value is unique per key. Randomness comes from
//! one seeded generator (rand's `SmallRng`), so a seed replays a history
//! exactly with the locked dependency versions.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rustc_hash::FxHashMap;

use super::Workload;
use crate::history::{History, Op, OpType, Process};
use crate::value::Value;

/// How the simulated database isolates transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// Each transaction executes atomically between invocation and
    /// completion: strict serializability.
    Serializable,
    /// Snapshot reads, first-committer-wins commits: strong snapshot isolation.
    SnapshotIsolation,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Number of transactions.
    pub txns: usize,
    /// Concurrent client processes.
    pub processes: usize,
    /// Keys in use at any time.
    pub active_keys: usize,
    /// Writes a key receives before it is retired for a fresh one.
    pub max_writes_per_key: usize,
    /// Fewest micro-ops per transaction.
    pub min_txn_len: usize,
    /// Most micro-ops per transaction.
    pub max_txn_len: usize,
    /// Probability that a micro-op is a read.
    pub read_fraction: f64,
    /// List-append or rw-register.
    pub workload: Workload,
    /// The simulated database's isolation.
    pub isolation: Isolation,
    /// Probability that the database aborts a transaction (recorded `fail`).
    pub fail_rate: f64,
    /// Probability that a completion is lost (recorded `info`, whether or
    /// not the transaction took effect); the process is then retired and
    /// its slot continues under a fresh process number.
    pub info_rate: f64,
    /// Probability that a transaction, under `Serializable`, has one read
    /// return a stale value: the key as it was before its most recent
    /// write. This injects real anomalies (G-single, G2-item and their
    /// real-time forms) at a known rate.
    pub stale_read_rate: f64,
    /// The seed.
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            txns: 1000,
            processes: 20,
            active_keys: 100,
            max_writes_per_key: 32,
            min_txn_len: 1,
            max_txn_len: 5,
            read_fraction: 0.5,
            workload: Workload::ListAppend,
            isolation: Isolation::Serializable,
            fail_rate: 0.0,
            info_rate: 0.0,
            stale_read_rate: 0.0,
            seed: 0,
        }
    }
}

/// A planned micro-op: a write (append or register write) or a read.
#[derive(Clone, Copy)]
struct Planned {
    write: bool,
    key: u64,
    value: i64,
}

enum Phase {
    Idle,
    /// Invoked; the database has not touched it yet.
    Invoked,
    /// Snapshot taken at this commit count (snapshot isolation only).
    Started(u64),
    /// Finished inside the database; waiting to report.
    Done {
        ok: bool,
        reads: Vec<Value>,
    },
}

struct Slot {
    process: u64,
    txn: Vec<Planned>,
    phase: Phase,
}

/// The simulated database: per key, the writes in commit order with their
/// commit numbers.
#[derive(Default)]
struct Store {
    keys: FxHashMap<u64, Vec<(u64, i64)>>,
    commits: u64,
}

impl Store {
    /// What a read of `key` returns as of commit number `at`.
    fn read(&self, workload: Workload, key: u64, at: u64, own: &[i64]) -> Value {
        let hist = self.keys.get(&key).map_or(&[][..], Vec::as_slice);
        let visible = &hist[..hist.partition_point(|&(ts, _)| ts <= at)];
        match workload {
            Workload::ListAppend => Value::List(
                visible
                    .iter()
                    .map(|&(_, v)| v)
                    .chain(own.iter().copied())
                    .map(Value::Int)
                    .collect(),
            ),
            Workload::RwRegister => match own.last().or(visible.last().map(|(_, v)| v)) {
                Some(&v) => Value::Int(v),
                None => Value::Nil,
            },
        }
    }

    /// The value `key` had before its most recent write.
    fn stale(&self, workload: Workload, key: u64) -> Option<Value> {
        let hist = self.keys.get(&key)?;
        let before = &hist[..hist.len().checked_sub(1)?];
        Some(match workload {
            Workload::ListAppend => {
                Value::List(before.iter().map(|&(_, v)| Value::Int(v)).collect())
            }
            Workload::RwRegister => before.last().map_or(Value::Nil, |&(_, v)| Value::Int(v)),
        })
    }
}

fn mop(f: &str, key: u64, value: Value) -> Value {
    Value::list([Value::keyword(f), Value::Int(key as i64), value])
}

/// One run of the simulated database and its clients, recording the history.
struct Simulation<'o> {
    o: &'o GenOptions,
    rng: SmallRng,
    /// Client slots (at least one).
    slots: Vec<Slot>,
    /// The keys in use, and the next fresh key.
    active: Vec<u64>,
    next_key: u64,
    /// Per key, how many writes it has been given (the last value written).
    writes: FxHashMap<u64, i64>,
    store: Store,
    ops: Vec<Op>,
    /// Transactions invoked so far, and those not yet completed.
    started: usize,
    running: usize,
}

impl Simulation<'_> {
    /// A transaction's value as recorded: its micro-ops, with `reads` filled
    /// into its reads in order (nil without them).
    fn txn_value(&self, txn: &[Planned], reads: Option<&[Value]>) -> Value {
        let (wf, rf) = match self.o.workload {
            Workload::ListAppend => ("append", "r"),
            Workload::RwRegister => ("w", "r"),
        };
        let mut ri = 0;
        Value::List(
            txn.iter()
                .map(|m| {
                    if m.write {
                        mop(wf, m.key, Value::Int(m.value))
                    } else {
                        let v = reads.map_or(Value::Nil, |r| r[ri].clone());
                        ri += 1;
                        mop(rf, m.key, v)
                    }
                })
                .collect(),
        )
    }

    /// Records an op of `process`, timed by its index.
    fn record(&mut self, process: u64, kind: OpType, value: Value) {
        let index = self.ops.len() as u64;
        let mut op = Op::new(index, Process::Client(process), kind, "txn", value);
        op.time = Some(index * 1_000);
        self.ops.push(op);
    }

    /// Plans a new transaction: random keys among the active ones, reads or
    /// writes of the next value of the key, retiring a key that has had its
    /// share of writes.
    fn plan(&mut self) -> Vec<Planned> {
        let o = self.o;
        let len =
            self.rng.random_range(o.min_txn_len.max(1)..=o.max_txn_len.max(o.min_txn_len.max(1)));
        let mut txn = Vec::with_capacity(len);
        for _ in 0..len {
            let ki = self.rng.random_range(0..self.active.len());
            let key = self.active[ki];
            if self.rng.random_bool(o.read_fraction.clamp(0.0, 1.0)) {
                txn.push(Planned { write: false, key, value: 0 });
            } else {
                let n = self.writes.entry(key).or_insert(0);
                *n += 1;
                txn.push(Planned { write: true, key, value: *n });
                if *n as usize >= o.max_writes_per_key.max(1) {
                    self.active[ki] = self.next_key;
                    self.next_key += 1;
                }
            }
        }
        txn
    }

    /// Slot `s` invokes a new transaction.
    fn invoke(&mut self, s: usize) -> Phase {
        let txn = self.plan();
        let value = self.txn_value(&txn, None);
        self.record(self.slots[s].process, OpType::Invoke, value);
        self.slots[s].txn = txn;
        self.started += 1;
        self.running += 1;
        Phase::Invoked
    }

    /// Executes slot `s`'s transaction atomically at this instant, perhaps
    /// with one stale read (`GenOptions::stale_read_rate`).
    fn execute_serializable(&mut self, s: usize) -> Phase {
        let workload = self.o.workload;
        let store = &mut self.store;
        store.commits += 1;
        let ts = store.commits;
        let stale = self.rng.random_bool(self.o.stale_read_rate.clamp(0.0, 1.0));
        let mut stale_done = !stale;
        let mut reads = Vec::new();
        for m in &self.slots[s].txn {
            if m.write {
                store.keys.entry(m.key).or_default().push((ts, m.value));
            } else {
                let own_latest =
                    store.keys.get(&m.key).and_then(|h| h.last()).is_some_and(|&(t, _)| t == ts);
                let stale_value =
                    if stale_done || own_latest { None } else { store.stale(workload, m.key) };
                reads.push(match stale_value {
                    Some(v) => {
                        stale_done = true;
                        v
                    }
                    None => store.read(workload, m.key, ts, &[]),
                });
            }
        }
        Phase::Done { ok: true, reads }
    }

    /// Runs slot `s`'s transaction on the snapshot taken at commit
    /// `snapshot`, then commits it unless another transaction committed a
    /// write to one of its keys since (first committer wins).
    fn execute_snapshot(&mut self, s: usize, snapshot: u64) -> Phase {
        let workload = self.o.workload;
        let store = &mut self.store;
        // Reads see the snapshot plus the transaction's own writes.
        let mut own: FxHashMap<u64, Vec<i64>> = FxHashMap::default();
        let mut reads = Vec::new();
        for m in &self.slots[s].txn {
            if m.write {
                own.entry(m.key).or_default().push(m.value);
            } else {
                let mine = own.get(&m.key).map_or(&[][..], Vec::as_slice);
                reads.push(store.read(workload, m.key, snapshot, mine));
            }
        }
        let conflict = own.keys().any(|k| {
            store.keys.get(k).and_then(|h| h.last()).is_some_and(|&(ts, _)| ts > snapshot)
        });
        if conflict {
            return Phase::Done { ok: false, reads: Vec::new() };
        }
        store.commits += 1;
        let ts = store.commits;
        for m in self.slots[s].txn.iter().filter(|m| m.write) {
            store.keys.entry(m.key).or_default().push((ts, m.value));
        }
        Phase::Done { ok: true, reads }
    }

    /// Slot `s` reports its transaction: ok with its reads, fail, or (at
    /// `GenOptions::info_rate`) info, after which the slot goes on as a
    /// fresh process.
    fn complete(&mut self, s: usize, ok: bool, reads: Vec<Value>) -> Phase {
        let processes = self.slots.len() as u64;
        let txn = std::mem::take(&mut self.slots[s].txn);
        let process = self.slots[s].process;
        if self.rng.random_bool(self.o.info_rate.clamp(0.0, 1.0)) {
            let value = self.txn_value(&txn, None);
            self.record(process, OpType::Info, value);
            self.slots[s].process += processes;
        } else if ok {
            let value = self.txn_value(&txn, Some(&reads));
            self.record(process, OpType::Ok, value);
        } else {
            let value = self.txn_value(&txn, None);
            self.record(process, OpType::Fail, value);
        }
        self.slots[s].txn = txn;
        self.running -= 1;
        Phase::Idle
    }

    /// Slot `s` takes its next step.
    fn step(&mut self, s: usize) {
        let o = self.o;
        let phase = std::mem::replace(&mut self.slots[s].phase, Phase::Idle);
        self.slots[s].phase = match phase {
            Phase::Idle if self.started < o.txns => self.invoke(s),
            Phase::Idle => Phase::Idle,
            Phase::Invoked if self.rng.random_bool(o.fail_rate.clamp(0.0, 1.0)) => {
                Phase::Done { ok: false, reads: Vec::new() }
            }
            Phase::Invoked => match o.isolation {
                Isolation::SnapshotIsolation => Phase::Started(self.store.commits),
                Isolation::Serializable => self.execute_serializable(s),
            },
            Phase::Started(snapshot) => self.execute_snapshot(s, snapshot),
            Phase::Done { ok, reads } => self.complete(s, ok, reads),
        };
    }
}

/// Generates a history as described in the module documentation.
pub fn generate(o: &GenOptions) -> History {
    let processes = o.processes.max(1);
    let active: Vec<u64> = (0..o.active_keys.max(1) as u64).collect();
    let mut sim = Simulation {
        o,
        rng: SmallRng::seed_from_u64(o.seed),
        slots: (0..processes as u64)
            .map(|p| Slot { process: p, txn: Vec::new(), phase: Phase::Idle })
            .collect(),
        next_key: active.len() as u64,
        active,
        writes: FxHashMap::default(),
        store: Store::default(),
        ops: Vec::with_capacity(o.txns * 2),
        started: 0,
        running: 0,
    };
    while sim.started < o.txns || sim.running > 0 {
        let s = sim.rng.random_range(0..processes);
        sim.step(s);
    }
    History::new(sim.ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_history_and_every_invocation_completes() {
        let o = GenOptions {
            txns: 200,
            info_rate: 0.05,
            fail_rate: 0.05,
            seed: 7,
            ..GenOptions::default()
        };
        let a = generate(&o);
        let b = generate(&o);
        assert_eq!(a.ops(), b.ops());
        let pairs = a.pairs().expect("pairs");
        assert_eq!(pairs.len(), 200);
        assert!(pairs.iter().all(|p| p.complete.is_some()));
    }
}
