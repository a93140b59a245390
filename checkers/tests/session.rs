//! Property tests: sticky sessions over causal delivery keep all four session
//! guarantees; an update applied before its dependency breaks monotonic
//! writes for the client that reads across the gap.

use checkers::session::{Guarantee, SessionChecker};
use checkers::sim::{Arbitration, Fault, SimConfig, simulate};
use checkers::{Checker, Validity};
use proptest::prelude::*;

fn checker() -> SessionChecker {
    SessionChecker::new("session", Guarantee::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn sticky_causal_sessions_keep_every_guarantee(
        seed in any::<u64>(),
        replicas in 2usize..5,
        processes in 2usize..8,
        keys in 1usize..6,
        lww in any::<bool>(),
    ) {
        let cfg = SimConfig {
            replicas,
            processes,
            keys,
            ops: 300,
            arbitration: if lww { Arbitration::LastWriterWins } else { Arbitration::DeliveryOrder },
            ..SimConfig::default()
        };
        let v = checker().check(&simulate(&cfg, seed).history).expect("check");
        prop_assert_eq!(v.validity, Validity::Valid, "seed {}: {}", seed, v.to_text());
    }

    #[test]
    fn reading_across_an_early_delivery_breaks_monotonic_writes(
        seed in any::<u64>(),
        replicas in 2usize..5,
        processes in 2usize..8,
        keys in 1usize..6,
    ) {
        let cfg = SimConfig { replicas, processes, keys, ops: 300, fault: Some(Fault::EarlyDelivery), ..SimConfig::default() };
        let run = simulate(&cfg, seed);
        let read = run.fault_read.expect("fault placed");
        let v = checker().check(&run.history).expect("check");
        prop_assert!(
            v.anomalies.iter().any(|a| a.kind == "monotonic-writes" && a.ops.contains(&read)),
            "seed {}: no monotonic-writes naming op {}:\n{}", seed, read, v.to_text()
        );
    }
}
