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
//!   `convergence` as last-write-wins registers (lost acknowledged writes).
//!
//! Operations use the shared vocabulary targets implement: `read`, `write`,
//! `cas` (value `[from to]`), `txn` (value `[[f k v] ...]`), `add`.

mod list_append;
mod lww_register;
mod register;
mod set;

pub use list_append::ListAppend;
pub use lww_register::LwwRegister;
pub use register::Register;
pub use set::SetWorkload;

use harness::Registry;

/// Registers `register`, `list-append`, `set` and `lww-register`.
pub fn register_all(registry: &mut Registry) {
    registry.workload(
        "register",
        "read/write/cas on independent keys; linearizable per key (cas-register)",
        |spec| Ok(Box::new(Register::from_spec(spec)?)),
    );
    registry.workload(
        "list-append",
        "transactions of appends and reads; Elle-style list-append checker",
        |spec| Ok(Box::new(ListAppend::from_spec(spec)?)),
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
}
