//! Histories a correct database produces are judged valid: the generator's
//! serial executions for (strict) serializability, its snapshot-isolated
//! executions for (strong) snapshot isolation.

use checkers::Validity;
use checkers::elle::Workload;
use checkers::elle::generate::{GenOptions, Isolation, generate};
use proptest::prelude::*;

use super::support::{check, found, reads_committed};

fn options(
    seed: u64,
    txns: usize,
    keys: usize,
    workload: Workload,
    isolation: Isolation,
) -> GenOptions {
    GenOptions {
        txns,
        seed,
        workload,
        isolation,
        active_keys: keys,
        processes: 6,
        max_writes_per_key: 8,
        fail_rate: 0.02,
        info_rate: 0.02,
        ..GenOptions::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn serial_list_append_is_strict_serializable(seed in any::<u64>(), txns in 1usize..300, keys in 1usize..8) {
        let h = generate(&options(seed, txns, keys, Workload::ListAppend, Isolation::Serializable));
        let v = check("list-append", &["strict-serializable"], &[], &h);
        // A history too short to hold a committed read observes nothing.
        let expected = if reads_committed(&h) { Validity::Valid } else { Validity::Unknown };
        prop_assert_eq!(v.validity, expected, "seed {}: {}", seed, v.to_text());
        prop_assert!(found(&v).is_empty(), "seed {}: {:?}", seed, found(&v));
    }

    #[test]
    fn snapshot_isolated_list_append_is_strong_snapshot_isolation(
        seed in any::<u64>(), txns in 1usize..300, keys in 1usize..8,
    ) {
        let h = generate(&options(seed, txns, keys, Workload::ListAppend, Isolation::SnapshotIsolation));
        let v = check("list-append", &["strong-snapshot-isolation"], &[], &h);
        // A history too short to hold a committed read observes nothing.
        let expected = if reads_committed(&h) { Validity::Valid } else { Validity::Unknown };
        prop_assert_eq!(v.validity, expected, "seed {}: {}", seed, v.to_text());
        // Whatever it found, snapshot isolation allows: write skew at most.
        prop_assert!(found(&v).iter().all(|k| k.starts_with("G2-item")), "seed {}: {:?}", seed, found(&v));
    }

    #[test]
    fn serial_rw_register_is_strict_serializable_under_every_assumption(
        seed in any::<u64>(), txns in 1usize..300, keys in 1usize..8,
    ) {
        let h = generate(&options(seed, txns, keys, Workload::RwRegister, Isolation::Serializable));
        let opts = [("wfr-keys", "true"), ("sequential-keys", "true"), ("linearizable-keys", "true")];
        let v = check("rw-register", &["strict-serializable"], &opts, &h);
        // A history too short to hold a committed read observes nothing.
        let expected = if reads_committed(&h) { Validity::Valid } else { Validity::Unknown };
        prop_assert_eq!(v.validity, expected, "seed {}: {}", seed, v.to_text());
        prop_assert!(found(&v).is_empty(), "seed {}: {:?}", seed, found(&v));
    }

    #[test]
    fn snapshot_isolated_rw_register_is_snapshot_isolation(
        seed in any::<u64>(), txns in 1usize..300, keys in 1usize..8,
    ) {
        let h = generate(&options(seed, txns, keys, Workload::RwRegister, Isolation::SnapshotIsolation));
        let opts = [("wfr-keys", "true"), ("linearizable-keys", "true")];
        let v = check("rw-register", &["strong-snapshot-isolation"], &opts, &h);
        // A history too short to hold a committed read observes nothing.
        let expected = if reads_committed(&h) { Validity::Valid } else { Validity::Unknown };
        prop_assert_eq!(v.validity, expected, "seed {}: {}", seed, v.to_text());
    }
}

#[test]
fn snapshot_isolation_does_produce_write_skew_that_serializability_rejects() {
    // The property above would hold trivially if the simulated database
    // never let write skew through; make sure it does, for some seed.
    let skewed = (0..200u64).find(|&seed| {
        let h =
            generate(&options(seed, 200, 2, Workload::ListAppend, Isolation::SnapshotIsolation));
        check("list-append", &["serializable"], &[], &h).validity == Validity::Invalid
    });
    assert!(skewed.is_some(), "no seed in 0..200 produced an SI history that is not serializable");
}

#[test]
fn stale_reads_injected_by_the_generator_are_caught() {
    let o = GenOptions { txns: 3000, stale_read_rate: 0.01, seed: 42, ..GenOptions::default() };
    let v = check("list-append", &["strict-serializable"], &[], &generate(&o));
    assert_eq!(v.validity, Validity::Invalid, "seed 42: {}", v.to_text());
}

#[test]
fn a_zero_time_budget_gives_unknown_with_the_reason_never_a_pass() {
    let o = GenOptions { txns: 2000, stale_read_rate: 0.01, seed: 3, ..GenOptions::default() };
    let h = generate(&o);
    let v = check("list-append", &["read-uncommitted"], &[("cycle-search-timeout", "0")], &h);
    // Some cycle is always shown; against read-uncommitted a G-single is
    // allowed, so the unfinished search decides: unknown, with the reason.
    assert_eq!(v.validity, Validity::Unknown, "{}", v.to_text());
    let reason = v.unknown_reason.clone().unwrap_or_default();
    assert!(reason.contains("ran out of time (0 ms per component)"), "{reason}");
    assert!(v.details["search_timeouts"].as_array().is_some_and(|t| !t.is_empty()));
}

#[test]
fn limits_from_the_command_line_give_unknown_with_the_reason() {
    use checkers::Budget;
    use checkers::registry::{self, CheckSpec};
    use std::time::Duration;
    let o = GenOptions { txns: 2000, stale_read_rate: 0.01, seed: 3, ..GenOptions::default() };
    let h = generate(&o);
    let run = |budget: Budget| {
        let spec = CheckSpec {
            checker: "list-append".into(),
            consistency_models: vec!["read-uncommitted".into()],
            budget,
            ..CheckSpec::default()
        };
        registry::build(&spec).expect("build").check(&h).expect("check")
    };
    let v = run(Budget { memory: Some(1 << 10), time: None });
    assert_eq!(v.validity, Validity::Unknown, "{}", v.to_text());
    assert!(v.unknown_reason.unwrap_or_default().contains("over the memory limit of 0 MiB"));
    let v = run(Budget { memory: None, time: Some(Duration::from_nanos(1)) });
    assert_eq!(v.validity, Validity::Unknown, "{}", v.to_text());
    assert!(v.unknown_reason.unwrap_or_default().contains("in all"));
}

#[test]
fn string_keys_and_values_give_the_same_verdict_as_integers() {
    // Large enough to be read in several chunks, so this also covers the
    // merging of chunk-local interned values.
    use checkers::{History, Value};
    let o = GenOptions { txns: 30_000, stale_read_rate: 0.002, seed: 5, ..GenOptions::default() };
    let ints = generate(&o);
    let stringify = |v: &Value, prefix: &str| match v {
        Value::Int(i) => Value::str(format!("{prefix}{i}")),
        Value::List(items) => Value::List(
            items
                .iter()
                .map(|e| Value::str(format!("{prefix}{}", e.as_int().unwrap_or(-1))))
                .collect(),
        ),
        other => other.clone(),
    };
    let ops = ints
        .ops()
        .iter()
        .map(|op| {
            let mut op = op.clone();
            if let Value::List(mops) = &op.value {
                op.value = Value::List(
                    mops.iter()
                        .map(|m| match m {
                            Value::List(p) => Value::list([
                                p[0].clone(),
                                stringify(&p[1], "k"),
                                stringify(&p[2], "v"),
                            ]),
                            other => other.clone(),
                        })
                        .collect(),
                );
            }
            op
        })
        .collect();
    let strings = History::new(ops);
    let a = check("list-append", &["strict-serializable"], &[], &ints);
    let b = check("list-append", &["strict-serializable"], &[], &strings);
    assert_eq!(a.validity, Validity::Invalid, "seed 5 injects stale reads: {}", a.summary);
    assert_eq!(a.summary, b.summary);
    assert_eq!(a.details["anomaly_counts"], b.details["anomaly_counts"]);
    assert!(
        b.anomalies.iter().any(|x| x.explanation.contains("\"k")),
        "string keys are shown as strings"
    );
}
