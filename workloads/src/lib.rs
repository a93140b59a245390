//! faultline's built-in workloads, registered by name:
//!
//! - `register`: reads, writes and compare-and-sets on independent keys,
//!   checked for linearizability against a CAS register per key;
//! - `list-append`: transactions of appends and reads over a few keys,
//!   checked with the Elle-style list-append checker;
//! - `set`: unique adds to one set, then a final read on every node,
//!   checked with `set-full` and `convergence`.
//!
//! Operations use the shared vocabulary targets implement: `read`, `write`,
//! `cas` (value `[from to]`), `txn` (value `[[f k v] ...]`), `add`.

mod list_append;
mod register;
mod set;

pub use list_append::ListAppend;
pub use register::Register;
pub use set::SetWorkload;

use harness::Registry;

/// Registers `register`, `list-append` and `set`.
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
}
