//! One test per anomaly type: the anomaly is built by hand on fresh keys,
//! spliced at a random point into a random valid history, and must be found
//! and named, with nothing else found but what the construction implies.

use checkers::elle::Workload;
use checkers::elle::generate::{GenOptions, generate};
use checkers::{History, Validity};
use proptest::prelude::*;

use super::support::{Builder, check, found, set, splice};

/// What an injected anomaly must produce.
struct Case {
    /// `list-append` or `rw-register`.
    checker: &'static str,
    /// Models to check against (they must forbid `expect`).
    models: &'static [&'static str],
    /// `--opt` pairs.
    opts: &'static [(&'static str, &'static str)],
    /// The anomaly, as a block of events on fresh keys and processes.
    block: History,
    /// Anomaly types that must be found and reported.
    expect: &'static [&'static str],
    /// Anomaly types the construction also creates (allowed, not required).
    extras: &'static [&'static str],
}

fn run(case: &Case, seed: u64, size: usize, at: f64) {
    let workload =
        if case.checker == "list-append" { Workload::ListAppend } else { Workload::RwRegister };
    let background = generate(&GenOptions {
        txns: size,
        seed,
        workload,
        fail_rate: 0.03,
        info_rate: 0.03,
        active_keys: 10,
        processes: 5,
        ..GenOptions::default()
    });
    let at = (at * background.len() as f64) as usize;
    let h = splice(&background, &case.block, at);
    let v = check(case.checker, case.models, case.opts, &h);
    let got = found(&v);
    let expect = set(case.expect);
    let mut allowed = expect.clone();
    allowed.extend(set(case.extras));
    let context = format!(
        "seed {seed}, {size} background transactions, block at event {at}\n{}",
        v.to_text()
    );
    assert!(expect.is_subset(&got), "expected {expect:?}, found {got:?}; {context}");
    assert!(
        got.is_subset(&allowed),
        "unexpected anomalies {got:?} (allowed {allowed:?}); {context}"
    );
    assert_eq!(v.validity, Validity::Invalid, "{context}");
    for kind in case.expect {
        let a = v.anomalies.iter().find(|a| a.kind == *kind);
        let a = a.unwrap_or_else(|| panic!("no {kind} anomaly in the verdict; {context}"));
        assert!(
            a.explanation.contains("T1 = op "),
            "explanation lacks its legend: {}",
            a.explanation
        );
        assert!(!a.ops.is_empty());
    }
}

macro_rules! injected {
    ($($name:ident => $case:expr;)*) => {$(
        proptest! {
            #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
            #[test]
            fn $name(seed in any::<u64>(), size in 20usize..200, at in 0.0f64..1.0) {
                run(&$case, seed, size, at);
            }
        }
    )*};
}

const SER: &[&str] = &["serializable"];
const STRICT: &[&str] = &["strict-serializable"];
const SESSION: &[&str] = &["strong-session-serializable"];

fn append(
    models: &'static [&'static str],
    expect: &'static [&'static str],
    extras: &'static [&'static str],
    block: &mut Builder,
) -> Case {
    Case { checker: "list-append", models, opts: &[], block: block.history(), expect, extras }
}

fn register(
    opts: &'static [(&'static str, &'static str)],
    expect: &'static [&'static str],
    extras: &'static [&'static str],
    block: &mut Builder,
) -> Case {
    Case { checker: "rw-register", models: STRICT, opts, block: block.history(), expect, extras }
}

/// Two transactions that must be ordered: `first` then `second`, either on
/// one process (`same_process`) or on two processes one after the other.
fn ordered(b: &mut Builder, same_process: bool, first: &str, second: &str) {
    let (p, q) = if same_process { (10_001, 10_001) } else { (10_001, 10_002) };
    b.txn(p, first).txn(q, second);
}

fn g0_ordered(same: bool) -> Builder {
    let mut b = Builder::new();
    b.txn(10_001, "[[:append :a 1]]");
    let p = if same { 10_001 } else { 10_002 };
    b.invoke(p, "[[:append :a 2]]").invoke(10_003, "[[:r :a nil]]");
    b.ok(p, "[[:append :a 2]]").ok(10_003, "[[:r :a [2 1]]]");
    b
}

fn g1c_ordered(same: bool) -> Builder {
    let mut b = Builder::new();
    ordered(&mut b, same, "[[:r :a [1]]]", "[[:append :a 1]]");
    b
}

fn g_single_ordered(same: bool) -> Builder {
    let mut b = Builder::new();
    ordered(&mut b, same, "[[:append :a 1]]", "[[:r :a []]]");
    b
}

fn g_nonadjacent_ordered(same: bool) -> Builder {
    // T1 -rw-> T2 -wr-> T3 -rw-> T4, and T4 before T1 (in real time or on
    // one process) while T2 and T3 overlap everything.
    let (t4p, t1p) = if same { (10_001, 10_001) } else { (10_001, 10_004) };
    let mut b = Builder::new();
    b.invoke(10_002, "[[:append :a 1] [:append :b 1]]").invoke(10_003, "[[:r :b [1]] [:r :c []]]");
    b.txn(t4p, "[[:append :c 1]]").txn(t1p, "[[:r :a []]]");
    b.ok(10_002, "[[:append :a 1] [:append :b 1]]").ok(10_003, "[[:r :b [1]] [:r :c []]]");
    b
}

fn g2_item_ordered(same: bool) -> Builder {
    // T1 -rw-> T2 -rw-> T3, and T3 before T1.
    let (t3p, t1p) = if same { (10_001, 10_001) } else { (10_001, 10_003) };
    let mut b = Builder::new();
    b.invoke(10_002, "[[:append :a 1] [:r :b []]]");
    b.txn(t3p, "[[:append :b 1]]").txn(t1p, "[[:r :a []]]");
    b.ok(10_002, "[[:append :a 1] [:r :b []]]");
    b
}

injected! {
    g0 => append(SER, &["G0"], &[], Builder::new()
        .concurrent(&[
            (10_001, "[[:append :a 1] [:append :b 1]]"),
            (10_002, "[[:append :a 2] [:append :b 2]]"),
            (10_003, "[[:r :a [1 2]]]"),
            (10_004, "[[:r :b [2 1]]]"),
        ]));
    g1a => append(SER, &["G1a"], &[], Builder::new()
        .invoke(10_001, "[[:append :a 1]]").fail(10_001, "[[:append :a 1]]")
        .txn(10_002, "[[:r :a [1]]]"));
    g1b => append(SER, &["G1b"], &["G-single"], Builder::new()
        .concurrent(&[
            (10_001, "[[:append :a 1] [:append :a 2]]"),
            (10_002, "[[:r :a [1]]]"),
            (10_003, "[[:r :a [1 2]]]"),
        ]));
    g1c => append(SER, &["G1c"], &[], Builder::new()
        .concurrent(&[(10_001, "[[:append :a 1] [:r :b [1]]]"), (10_002, "[[:append :b 1] [:r :a [1]]]")]));
    g_single => append(SER, &["G-single"], &[], Builder::new()
        .concurrent(&[(10_001, "[[:r :a []] [:r :b [1]]]"), (10_002, "[[:append :a 1] [:append :b 1]]")]));
    g_single_through_an_indeterminate_transaction => append(SER, &["G-single"], &[], Builder::new()
        .invoke(10_001, "[[:append :a 1] [:append :b 1]]")
        .invoke(10_002, "[[:r :a []] [:r :b [1]]]")
        .info(10_001, "[[:append :a 1] [:append :b 1]]")
        .ok(10_002, "[[:r :a []] [:r :b [1]]]"));
    g_nonadjacent => append(SER, &["G-nonadjacent"], &[], Builder::new()
        .concurrent(&[
            (10_001, "[[:r :a []] [:r :d [1]]]"),
            (10_002, "[[:append :a 1] [:append :b 1]]"),
            (10_003, "[[:r :b [1]] [:r :c []]]"),
            (10_004, "[[:append :c 1] [:append :d 1]]"),
        ]));
    g2_item => append(SER, &["G2-item"], &[], Builder::new()
        .concurrent(&[(10_001, "[[:r :a []] [:append :b 1]]"), (10_002, "[[:r :b []] [:append :a 1]]")]));
    internal => append(SER, &["internal"], &[], Builder::new()
        .txn(10_001, "[[:append :a 1] [:r :a []]]"));
    dirty_update => append(SER, &["dirty-update", "G1a"], &[], Builder::new()
        .invoke(10_001, "[[:append :a 1]]").fail(10_001, "[[:append :a 1]]")
        .txn(10_002, "[[:append :a 2]]")
        .txn(10_003, "[[:r :a [1 2]]]"));
    duplicate_elements => append(SER, &["duplicate-elements"], &[], Builder::new()
        .txn(10_001, "[[:append :a 1]]").txn(10_002, "[[:r :a [1 1]]]"));
    incompatible_order => append(SER, &["incompatible-order"], &[], Builder::new()
        .concurrent(&[
            (10_001, "[[:append :a 1]]"),
            (10_002, "[[:append :a 2]]"),
            (10_003, "[[:r :a [1 2]]]"),
            (10_004, "[[:r :a [2 1]]]"),
        ]));
    lost_update => append(SER, &["lost-update"], &["G-single"], Builder::new()
        .txn(10_001, "[[:append :a 0]]")
        .concurrent(&[
            (10_002, "[[:r :a [0]] [:append :a 1]]"),
            (10_003, "[[:r :a [0]] [:append :a 2]]"),
            (10_004, "[[:r :a [0 1 2]]]"),
        ]));
    future_read => append(SER, &["future-read"], &[], Builder::new()
        .txn(10_001, "[[:r :a [1]] [:append :a 1]]"));
    garbage_read => append(SER, &["garbage-read"], &[], Builder::new()
        .txn(10_001, "[[:r :a [99]]]"));

    g0_realtime => append(STRICT, &["G0-realtime"], &[], &mut g0_ordered(false));
    g1c_realtime => append(STRICT, &["G1c-realtime"], &[], &mut g1c_ordered(false));
    g_single_realtime => append(STRICT, &["G-single-realtime"], &[], &mut g_single_ordered(false));
    g_nonadjacent_realtime =>
        append(STRICT, &["G-nonadjacent-realtime"], &[], &mut g_nonadjacent_ordered(false));
    g2_item_realtime => append(STRICT, &["G2-item-realtime"], &[], &mut g2_item_ordered(false));

    g0_process => append(SESSION, &["G0-process"], &[], &mut g0_ordered(true));
    g1c_process => append(SESSION, &["G1c-process"], &[], &mut g1c_ordered(true));
    g_single_process => append(SESSION, &["G-single-process"], &[], &mut g_single_ordered(true));
    g_nonadjacent_process =>
        append(SESSION, &["G-nonadjacent-process"], &[], &mut g_nonadjacent_ordered(true));
    g2_item_process => append(SESSION, &["G2-item-process"], &[], &mut g2_item_ordered(true));

    register_g1a => register(&[], &["G1a"], &[], Builder::new()
        .invoke(10_001, "[[:w :x 1]]").fail(10_001, "[[:w :x 1]]")
        .txn(10_002, "[[:r :x 1]]"));
    register_g1b => register(&[], &["G1b"], &[], Builder::new()
        .concurrent(&[(10_001, "[[:w :x 1] [:w :x 2]]"), (10_002, "[[:r :x 1]]")]));
    register_internal => register(&[], &["internal"], &[], Builder::new()
        .txn(10_001, "[[:w :x 1] [:r :x 2]]"));
    register_lost_update => register(&[], &["lost-update"], &[], Builder::new()
        .txn(10_001, "[[:w :x 0]]")
        .concurrent(&[(10_002, "[[:r :x 0] [:w :x 1]]"), (10_003, "[[:r :x 0] [:w :x 2]]")]));
    register_future_read => register(&[], &["future-read"], &[], Builder::new()
        .txn(10_001, "[[:r :x 1] [:w :x 1]]"));
    register_garbage_read => register(&[], &["garbage-read"], &[], Builder::new()
        .txn(10_001, "[[:r :x 99]]"));
    register_cyclic_versions => register(&[("wfr-keys", "true")], &["cyclic-versions"], &["G1c"],
        Builder::new()
            .concurrent(&[(10_001, "[[:r :x 1] [:w :x 2]]"), (10_002, "[[:r :x 2] [:w :x 1]]")]));
    register_g_single => register(&[], &["G-single"], &[], Builder::new()
        .concurrent(&[(10_001, "[[:r :x nil] [:r :y 1]]"), (10_002, "[[:w :x 1] [:w :y 1]]")]));
    register_g2_item => register(&[], &["G2-item"], &[], Builder::new()
        .concurrent(&[(10_001, "[[:r :x nil] [:w :y 1]]"), (10_002, "[[:r :y nil] [:w :x 1]]")]));
    register_g_single_realtime => register(&[], &["G-single-realtime"], &[], Builder::new()
        .txn(10_001, "[[:w :x 1]]").txn(10_002, "[[:r :x nil]]"));
}

#[test]
fn write_skew_is_allowed_by_snapshot_isolation_but_not_serializable() {
    let h = Builder::new()
        .concurrent(&[(1, "[[:r :a []] [:append :b 1]]"), (2, "[[:r :b []] [:append :a 1]]")])
        .history();
    let si = check("list-append", &["snapshot-isolation"], &[], &h);
    assert_eq!(si.validity, Validity::Valid, "{}", si.to_text());
    assert_eq!(si.details["allowed_anomaly_types"], serde_json::json!(["G2-item"]));
    let ser = check("list-append", &["serializable"], &[], &h);
    assert_eq!(ser.validity, Validity::Invalid);
    assert_eq!(ser.details["not"], serde_json::json!(["repeatable-read"]));
}

#[test]
fn a_value_written_twice_makes_the_verdict_unknown_whatever_else_is_found() {
    let h = Builder::new()
        .txn(1, "[[:append :a 1]]")
        .txn(2, "[[:append :a 1]]")
        .txn(3, "[[:r :a [1 1]]]")
        .history();
    let v = check("list-append", &["serializable"], &[], &h);
    assert_eq!(v.validity, Validity::Unknown, "{}", v.to_text());
    let reason = v.unknown_reason.unwrap_or_default();
    assert!(
        reason.contains("value 1 was appended to key :a more than once (ops 1 and 3)"),
        "{reason}"
    );
    let h = Builder::new().txn(1, "[[:w :x 1]]").txn(2, "[[:w :x 1]]").history();
    let v = check("rw-register", &["serializable"], &[], &h);
    assert_eq!(v.validity, Validity::Unknown, "{}", v.to_text());
}
