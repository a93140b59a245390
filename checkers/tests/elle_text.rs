//! List-append and rw-register histories read straight from their EDN
//! text (`Checker::check_text`, `elle/quick.rs`) get exactly the verdict the
//! whole check gives on the history the text holds, evidence and all, or
//! are handed over as the readers read them, or left to the readers: on
//! generated histories (strict-serializable, snapshot isolation, stale
//! reads, aborted and indeterminate transactions), on the corners of
//! pairing, and on texts the text path does not read.

use checkers::elle::Workload;
use checkers::elle::generate::{GenOptions, Isolation, generate};
use checkers::formats::{self, Format};
use checkers::registry::{self, CheckSpec};
use checkers::{Checker, Validity};
use proptest::prelude::*;

use crate::text_paths::{self, Got};

fn checker(workload: &str, models: &[&str]) -> Box<dyn Checker> {
    let spec = CheckSpec {
        checker: workload.into(),
        consistency_models: models.iter().map(|m| m.to_string()).collect(),
        ..CheckSpec::default()
    };
    registry::build(&spec).expect("a checker")
}

/// The text path's answer on `text`, held to the whole way
/// (`text_paths::agree`): a text `in_shape` that the whole check decides
/// must be decided from the text too.
fn agree(checker: &dyn Checker, text: &str, in_shape: bool) -> Got {
    text_paths::agree(checker, text, &|whole| in_shape && whole.is_ok())
}

fn options(seed: u64, txns: usize, processes: usize, snapshot: bool, faults: f64) -> GenOptions {
    GenOptions {
        txns,
        processes,
        active_keys: 1 + (seed % 7) as usize,
        max_writes_per_key: 3 + (seed % 11) as usize,
        isolation: if snapshot { Isolation::SnapshotIsolation } else { Isolation::Serializable },
        fail_rate: faults,
        info_rate: faults / 2.0,
        stale_read_rate: faults,
        seed,
        ..GenOptions::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Generated histories of both workloads, valid or not, are decided
    /// from their text exactly as the whole check decides them.
    #[test]
    fn generated_histories_are_decided_as_the_whole_check_decides_them(
        seed in 0u64..1_000_000,
        txns in 1usize..250,
        processes in 1usize..8,
        snapshot: bool,
        faults in prop::sample::select(vec![0.0, 0.05, 0.2]),
        models in prop::sample::select(vec![
            &["strict-serializable"][..],
            &["serializable"][..],
            &["snapshot-isolation"][..],
            &["read-committed"][..],
        ]),
        register: bool,
    ) {
        let mut o = options(seed, txns, processes, snapshot, faults);
        let workload = if register {
            o.workload = Workload::RwRegister;
            "rw-register"
        } else {
            "list-append"
        };
        let text = formats::write(&generate(&o), Format::Edn);
        let c = checker(workload, models);
        prop_assert!(matches!(agree(c.as_ref(), &text, true), Got::Decided(_)));
    }
}

/// The generator's anomalies are found from the text, with the evidence
/// the whole check gives.
#[test]
fn a_stale_read_is_found_from_the_text() {
    let found = (0..20).any(|seed| {
        let mut o = options(seed, 300, 6, false, 0.0);
        o.stale_read_rate = 0.1;
        let text = formats::write(&generate(&o), Format::Edn);
        let c = checker("list-append", &["strict-serializable"]);
        match agree(c.as_ref(), &text, true) {
            Got::Decided(v) => v.validity == Validity::Invalid && !v.anomalies.is_empty(),
            other => panic!("not decided from the text: {other:?}"),
        }
    });
    assert!(found, "no seed of 20 gave an invalid history");
}

/// The corners of pairing and of values, each checked against the whole
/// way; those the whole check refuses are handed over.
#[test]
fn corners_agree_with_the_whole_check() {
    let line = |i: u32, p: u32, kind: &str, value: &str| {
        format!(
            "{{:index {i}, :time {}, :type :{kind}, :process {p}, :f :txn, :value {value}}}\n",
            i * 10
        )
    };
    let decided = [
        // A lone info, an op never completed, a failed op, an empty
        // transaction, negative and huge keys and elements (interned),
        // reads of nil and of nothing.
        [
            line(0, 0, "invoke", "[[:append 1 1] [:r 2 nil]]"),
            line(1, 1, "info", "[[:append 2 5]]"),
            line(2, 0, "ok", "[[:append 1 1] [:r 2 nil]]"),
            line(3, 2, "invoke", "[[:append -3 -7] [:append 9999999999 4000000000]]"),
            line(4, 3, "invoke", "[]"),
            line(5, 3, "ok", "[]"),
            line(6, 4, "invoke", "[[:r 1 nil] [:r -3 nil] [:r 9999999999 nil]]"),
            line(7, 4, "ok", "[[:r 1 [1]] [:r -3 []] [:r 9999999999 [4000000000]]]"),
            line(8, 5, "invoke", "[[:append 1 2]]"),
            line(9, 5, "fail", "[[:append 1 2]]"),
        ]
        .concat(),
        // Ops without times, and Jepsen's order of fields.
        "{:type :invoke, :f :txn, :value [[:append 1 1]], :process 0, :index 0}\n\
         {:type :ok, :f :txn, :value [[:append 1 1]], :process 0, :index 1}\n\
         {:type :invoke, :f :txn, :value [[:r 1 nil]], :process 1, :index 2}\n\
         {:type :ok, :f :txn, :value [[:r 1 [1]]], :process 1, :index 3}\n"
            .to_string(),
        // A read that saw what no one appended, and duplicates.
        [
            line(0, 0, "invoke", "[[:r 1 nil]]"),
            line(1, 0, "ok", "[[:r 1 [7 7]]]"),
            line(2, 1, "invoke", "[[:append 1 7]]"),
            line(3, 1, "ok", "[[:append 1 7]]"),
        ]
        .concat(),
    ];
    let c = checker("list-append", &["strict-serializable"]);
    for text in &decided {
        assert!(matches!(agree(c.as_ref(), text, true), Got::Decided(_)), "{text}");
    }
    let handed_over = [
        // An invocation while one is pending, a completion with nothing
        // pending, and a transaction of more than 255 micro-ops.
        [line(0, 0, "invoke", "[[:r 1 nil]]"), line(1, 0, "invoke", "[[:r 1 nil]]")].concat(),
        line(0, 0, "ok", "[[:r 1 []]]"),
        line(0, 0, "invoke", &format!("[{}]", vec!["[:append 1 1]"; 256].join(" "))),
    ];
    for text in &handed_over {
        assert!(matches!(agree(c.as_ref(), text, true), Got::Read), "{text}");
    }
    // Not in the shape, or not this checker's: left to the readers.
    let left = [
        line(0, 0, "invoke", "[[:r :x nil]]"),
        [line(1, 0, "invoke", "[[:r 1 nil]]"), line(0, 0, "ok", "[[:r 1 []]]")].concat(),
        "{:index 0, :type :info, :process :nemesis, :f :start, :value nil}\n".to_string(),
    ];
    for text in &left {
        assert!(matches!(agree(c.as_ref(), text, false), Got::Left), "{text}");
    }
    // Each workload's micro-ops in the other's history: what the whole
    // check refuses is handed over, what it reads is decided.
    let rw = checker("rw-register", &["serializable"]);
    let writes = [line(0, 0, "invoke", "[[:w 1 1]]"), line(1, 0, "ok", "[[:w 1 1]]")].concat();
    let read_one = [line(2, 1, "invoke", "[[:r 1 nil]]"), line(3, 1, "ok", "[[:r 1 1]]")].concat();
    let read_list =
        [line(2, 1, "invoke", "[[:r 1 nil]]"), line(3, 1, "ok", "[[:r 1 [1]]]")].concat();
    assert!(rw.checks_text(&writes) && c.checks_text(&writes));
    let decided = |c: &dyn Checker, text: &str| matches!(agree(c, text, true), Got::Decided(_));
    assert!(decided(rw.as_ref(), &(writes.clone() + &read_one)));
    assert!(matches!(agree(c.as_ref(), &(writes.clone() + &read_one), true), Got::Read));
    assert!(matches!(agree(c.as_ref(), &read_one, true), Got::Read));
    // A register read of a list is a value to the whole check, but not
    // read as one here: handed over, and decided the whole way.
    assert!(matches!(agree(rw.as_ref(), &(writes + &read_list), false), Got::Read));
}
