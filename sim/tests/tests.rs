//! The simulation's tests, one module per area.

/// refstore's injected bugs: found, refused outside their mode, shrunk.
mod bugs;
/// Determinism: a seed replays its history byte for byte.
mod determinism;
/// Simulated clock, packet and file faults: drawn and recorded as the real
/// ones, seen where the promises say.
mod faults;
/// A campaign's matrix judged in simulation.
mod matrix;
/// What the modes promise holds, and what they do not promise shows.
mod promises;

use harness::TestSpec;
use harness::plugin::Registry;
use sim::{Prepared, WorldConfig, prepare};

/// The built-in plugins the simulation uses.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    faultline_refstore::register_all(&mut r);
    workloads::register_all(&mut r);
    nemesis::register_all(&mut r);
    r
}

/// A small test of `mode` and `workload` under `nemesis`: a few hundred
/// operations, so many seeds fit in CI's budget.
pub fn small(mode: &str, workload: &str, nemesis: &[&str]) -> TestSpec {
    TestSpec {
        mode: mode.into(),
        workload: workload.into(),
        nemesis: nemesis.iter().map(|s| s.to_string()).collect(),
        nodes: 5,
        time_limit: 3.0,
        rate: 100.0,
        nemesis_interval: 0.5,
        op_timeout_ms: 1000,
        recovery: 2.0,
        ..TestSpec::default()
    }
}

/// `spec` planned for simulation in the default world.
pub fn prepared(spec: TestSpec) -> Prepared {
    prepare(spec, WorldConfig::default(), &registry()).expect("the test plans")
}
