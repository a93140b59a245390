//! Property tests: histories from a simulated causally consistent replicated
//! store pass the causal checker; one update applied before its dependency
//! is caught and named.

use checkers::causal::{CausalChecker, Model};
use checkers::registry::{self, CheckSpec};
use checkers::sim::{Arbitration, Fault, SimConfig, simulate, stale_reads};
use checkers::{Checker, Validity, Value};
use proptest::prelude::*;

fn config(replicas: usize, processes: usize, keys: usize, lww: bool) -> SimConfig {
    SimConfig {
        replicas,
        processes,
        keys,
        ops: 300,
        arbitration: if lww { Arbitration::LastWriterWins } else { Arbitration::DeliveryOrder },
        ..SimConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Causal delivery with sticky sessions is CC; applied in delivery order
    /// it is also causal memory, and with last-writer-wins it is CCv.
    #[test]
    fn causally_replicated_histories_pass(
        seed in any::<u64>(),
        replicas in 2usize..5,
        processes in 2usize..8,
        keys in 1usize..6,
        lww in any::<bool>(),
    ) {
        let run = simulate(&config(replicas, processes, keys, lww), seed);
        let stronger = if lww { Model::Convergent } else { Model::Memory };
        for model in [Model::Causal, stronger] {
            let v = CausalChecker::new(model).check(&run.history).expect("check");
            prop_assert_eq!(v.validity, Validity::Valid, "seed {} model {:?}: {}", seed, model, v.to_text());
        }
    }

    /// The same histories, when a lagging replica served a stale read (a
    /// value overwritten, in real time, before the read began), pass the
    /// causal checker and fail linearizability on the stale read's key.
    #[test]
    fn stale_causal_histories_are_not_linearizable(
        seed in any::<u64>(),
        replicas in 2usize..5,
        processes in 2usize..8,
        keys in 1usize..6,
        lww in any::<bool>(),
    ) {
        // A non-nil initial value: the linearizability checker, like
        // Knossos, takes a read of nil to constrain nothing.
        let initial = Value::Int(0);
        let cfg = SimConfig { initial: initial.clone(), ..config(replicas, processes, keys, lww) };
        let run = simulate(&cfg, seed);
        let spec = CheckSpec { checker: "causal".into(), init: Some(initial.clone()), ..CheckSpec::default() };
        let causal = registry::build(&spec).expect("causal").check(&run.history).expect("check");
        prop_assert_eq!(causal.validity, Validity::Valid, "seed {}: {}", seed, causal.to_text());
        let stale = stale_reads(&run.history, &initial);
        if !stale.is_empty() {
            let spec = CheckSpec {
                checker: "linearizable".into(),
                model: Some("register".into()),
                init: Some(initial.clone()),
                ..CheckSpec::default()
            };
            let linear = registry::build(&spec).expect("linearizable").check(&run.history).expect("check");
            prop_assert_eq!(linear.validity, Validity::Invalid, "seed {}: stale reads {:?} but {}", seed, stale, linear.summary);
            let invalid = linear.details["invalid_keys"].as_array().cloned().unwrap_or_default();
            for op in &stale {
                let key = run.history.ops()[*op as usize].key.clone().unwrap_or(Value::Nil);
                let key = serde_json::to_value(&key).expect("json");
                prop_assert!(invalid.contains(&key), "seed {}: stale read op {} on key {} not reported", seed, op, key);
            }
        }
    }

    /// Applying one update before one of its dependencies is caught, as a
    /// WriteCOInitRead that names the read revealing it, under every model.
    #[test]
    fn update_applied_before_its_dependency_is_caught(
        seed in any::<u64>(),
        replicas in 2usize..5,
        processes in 2usize..8,
        keys in 1usize..6,
        lww in any::<bool>(),
    ) {
        let cfg = SimConfig { fault: Some(Fault::EarlyDelivery), ..config(replicas, processes, keys, lww) };
        let run = simulate(&cfg, seed);
        let read = run.fault_read.expect("the simulator placed the fault");
        for model in [Model::Causal, Model::Convergent, Model::Memory] {
            let v = CausalChecker::new(model).check(&run.history).expect("check");
            prop_assert_eq!(v.validity, Validity::Invalid, "seed {} model {:?}", seed, model);
            prop_assert!(
                v.anomalies.iter().any(|a| a.kind == "WriteCOInitRead" && a.ops.contains(&read)),
                "seed {} model {:?}: no WriteCOInitRead naming op {}:\n{}", seed, model, read, v.to_text()
            );
        }
    }
}

/// The simulated histories are useful for the linearizability half of the
/// property only if lagging replicas really do serve stale reads.
#[test]
fn simulated_replication_serves_stale_reads() {
    let with_stale = (0..20u64)
        .filter(|&seed| {
            let cfg = SimConfig { initial: Value::Int(0), ..config(3, 6, 3, false) };
            !stale_reads(&simulate(&cfg, seed).history, &Value::Int(0)).is_empty()
        })
        .count();
    assert!(with_stale >= 10, "only {with_stale} of 20 seeds gave a stale read");
}
