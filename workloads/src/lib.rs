//! faultline's built-in workloads, registered by name:
//!
//! - `register`: reads, writes and compare-and-sets on independent keys,
//!   checked for linearizability against a CAS register per key;
//! - `list-append`: transactions of appends and reads over a few keys,
//!   checked with the Elle-style list-append checker;
//! - `set`: unique adds to one set, then a final read on every node,
//!   checked with `set-full` and `convergence`;
//! - `lww-register`: blind writes of unique values and reads on a few keys,
//!   then a final read of every key on every node, checked with
//!   `convergence` as last-write-wins registers (lost acknowledged writes);
//! - `bank`: transfers between accounts and reads of every balance, checked
//!   with `bank`;
//! - `counter`: increments and reads of one counter, checked with `counter`;
//! - `unique-ids`: id generation, checked with `unique-ids`;
//! - `queue`: enqueues, dequeues and a final drain, checked with
//!   `total-queue`;
//! - `long-fork`: single-key inserts and group reads, checked with
//!   `long-fork`;
//! - `rw-register`: transactions of reads and writes, checked with the
//!   Elle-style rw-register checker;
//! - `causal` and `sessions`: reads and writes of unique values by sessions
//!   pinned to a node or moving between nodes, checked with `causal` and the
//!   session guarantees (`sessions`: the guarantees alone).
//!
//! Operations use the shared vocabulary targets implement (`docs/workloads.md`
//! says what each means): `read` (of a key; of the set with no key; of
//! several keys at once, returning a map, when its value lists them),
//! `write`, `cas` (value `[from to]`), `txn` (value `[[f k v] ...]` with `r`,
//! `w`, `append`, `cas` and `inc` micro-ops), `add`, `increment` (value: the
//! delta), `generate`, `transfer` (value `{from, to, amount}`), `enqueue`,
//! `dequeue` and `drain`.

mod bank;
mod causal;
mod counter;
mod long_fork;
mod lww_register;
mod opts;
mod queue;
mod register;
mod set;
mod transactions;
mod txns;
mod unique_ids;

pub use bank::Bank;
pub use causal::Causal;
pub use counter::Counter;
pub use long_fork::LongFork;
pub use lww_register::LwwRegister;
pub use queue::Queue;
pub use register::Register;
pub use set::SetWorkload;
pub use transactions::Transactions;
pub use unique_ids::UniqueIds;

use harness::Registry;

/// Registers every built-in workload.
pub fn register_all(registry: &mut Registry) {
    registry.workload(
        "register",
        "read/write/cas on independent keys; linearizable per key (cas-register)",
        |spec| Ok(Box::new(Register::from_spec(spec)?)),
    );
    registry.workload(
        "list-append",
        "transactions of appends and reads; Elle-style list-append checker",
        |spec| Ok(Box::new(Transactions::list_append(spec)?)),
    );
    registry.workload(
        "set",
        "unique adds, then a final read on every node; set-full and convergence",
        |spec| Ok(Box::new(SetWorkload::from_spec(spec)?)),
    );
    registry.workload(
        "lww-register",
        "blind writes and reads of a few keys, final reads on every node; convergence (last-write-wins)",
        |spec| Ok(Box::new(LwwRegister::from_spec(spec)?)),
    );
    registry.workload(
        "bank",
        "transfers between accounts and reads of every balance; bank (total, negative balances)",
        |spec| Ok(Box::new(Bank::from_spec(spec)?)),
    );
    registry.workload(
        "counter",
        "increments and reads of one counter; counter (reads within bounds)",
        |spec| Ok(Box::new(Counter::from_spec(spec)?)),
    );
    registry.workload("unique-ids", "id generation; unique-ids (no id twice)", |spec| {
        Ok(Box::new(UniqueIds::from_spec(spec)?))
    });
    registry.workload(
        "queue",
        "enqueues, dequeues and a final drain; total-queue (lost, unexpected)",
        |spec| Ok(Box::new(Queue::from_spec(spec)?)),
    );
    registry.workload(
        "long-fork",
        "single-key inserts and reads of key groups; long-fork",
        |spec| Ok(Box::new(LongFork::from_spec(spec)?)),
    );
    registry.workload(
        "rw-register",
        "transactions of reads and writes; Elle-style rw-register checker",
        |spec| Ok(Box::new(Transactions::rw_register(spec)?)),
    );
    registry.workload(
        "causal",
        "reads and writes of unique values by pinned or moving sessions; causal and session guarantees",
        |spec| Ok(Box::new(Causal::from_spec(spec, true)?)),
    );
    registry.workload(
        "sessions",
        "reads and writes of unique values by pinned or moving sessions; the four session guarantees",
        |spec| Ok(Box::new(Causal::from_spec(spec, false)?)),
    );
}
