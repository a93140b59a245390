//! Register histories decided straight from their EDN text
//! (`Checker::check_text`, `linear/quick.rs`) get exactly the verdict the
//! whole check gives on the history the text holds, evidence and all, or
//! are handed over as the readers read them, or left to the readers: on
//! generated histories (valid, with a stale read, with an impossible read),
//! on the corners of pairing and partitioning, and on texts the text path
//! does not read.

use checkers::formats::{self, Format};
use checkers::linear::{Algorithm, LinearChecker, ModelName};
use checkers::synth::{self, SynthSpec};
use checkers::{Checker, FromText, Validity, Verdict};
use proptest::prelude::*;

use crate::text_paths::{self, Got};

/// The text path's answer on `text`, held to the whole way
/// (`text_paths::agree`): it must decide when the whole check finds the
/// history valid and `valid_is_read` (the text is in its shape).
fn agree(checker: &LinearChecker, text: &str, valid_is_read: bool) -> Got {
    text_paths::agree(checker, text, &|whole| {
        valid_is_read && whole.as_ref().is_ok_and(|w| w.validity == Validity::Valid)
    })
}

fn spec(cas: bool, seed: u64, processes: usize, crash: f64, keys: usize, small: bool) -> SynthSpec {
    let model = if cas { ModelName::CasRegister } else { ModelName::Register };
    let mut s = SynthSpec::new(model, seed);
    s.ops = 300;
    s.processes = processes;
    s.crash_rate = crash;
    s.keys = keys;
    if small {
        s.value_range = Some(5);
    }
    s
}

fn checker(cas: bool) -> LinearChecker {
    LinearChecker::new(if cas { ModelName::CasRegister } else { ModelName::Register })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Generated register histories, valid by construction, are decided
    /// from their text with the whole check's verdict.
    #[test]
    fn valid_histories_get_the_whole_checks_verdict(
        cas in any::<bool>(),
        seed in any::<u64>(),
        processes in 1usize..10,
        crash in prop_oneof![Just(0.0), 0.0f64..0.15],
        keys in 1usize..5,
        small in any::<bool>(),
    ) {
        let h = synth::generate(&spec(cas, seed, processes, crash, keys, small));
        let text = formats::write(&h, Format::Edn);
        let got = agree(&checker(cas), &text, true);
        prop_assert!(matches!(got, Got::Decided(_)), "seed {}: not decided from the text", seed);
    }

    /// With a stale or an impossible read they are invalid, decided from
    /// the text with the whole check's evidence.
    #[test]
    fn invalid_histories_get_the_whole_checks_evidence(
        cas in any::<bool>(),
        seed in any::<u64>(),
        processes in 2usize..10,
        crash in 0.0f64..0.1,
        keys in 1usize..4,
        impossible in any::<bool>(),
    ) {
        let h = synth::generate(&spec(cas, seed, processes, crash, keys, false));
        let model = if cas { ModelName::CasRegister } else { ModelName::Register };
        let corrupted = if impossible {
            synth::impossible_read(&h, model, u64::MAX)
        } else {
            synth::stale_read(&h, u64::MAX)
        };
        let Some(c) = corrupted else {
            return Err(TestCaseError::reject("no read to corrupt"));
        };
        let text = formats::write(&c.history, Format::Edn);
        let Got::Decided(v) = agree(&checker(cas), &text, true) else {
            return Err(TestCaseError::fail(format!("seed {seed}: not decided: {}", c.description)));
        };
        prop_assert_eq!(v.validity, Validity::Invalid, "seed {}: {}", seed, c.description);
        prop_assert!(!v.anomalies.is_empty());
    }
}

/// A large history, read in several blocks and pieces on every core.
#[test]
fn a_large_history_is_decided_from_its_text() {
    let mut s = spec(true, 11, 12, 0.01, 7, false);
    s.ops = 40_000;
    let text = formats::write(&synth::generate(&s), Format::Edn);
    assert!(text.len() > 4 << 20, "{} bytes: more than one block", text.len());
    let Got::Decided(v) = agree(&checker(true), &text, true) else { panic!("not decided") };
    assert_eq!(v.details["partitions"], 7);
    let timings = v.details["timings_ms"].as_object().expect("timings_ms");
    let stages: Vec<&str> = timings.keys().map(String::as_str).collect();
    assert_eq!(stages, ["compile", "pairs", "read", "search", "verdict"], "{timings:?}");
}

/// The corners of pairing: failed ops (no partition of their own when
/// every op of a key failed), a lone client `info`, an op still pending
/// when the history ends, a crashed cas, nil in a cas, reads of nil, and
/// keys that are negative.
#[test]
fn the_corners_of_pairing_get_the_whole_checks_verdict() {
    let text = "\
{:index 0, :time 1, :type :invoke, :process 0, :f :write, :key -1, :value 3}
{:index 1, :time 2, :type :invoke, :process 1, :f :cas, :key 5, :value [nil 4]}
{:index 2, :time 3, :type :ok, :process 0, :f :write, :key -1, :value 3}
{:index 3, :time 4, :type :fail, :process 1, :f :cas, :key 5, :value [nil 4]}
{:index 4, :time 5, :type :info, :process 7, :f :read, :key -1, :value nil}
{:index 5, :time 6, :type :invoke, :process 2, :f :cas, :key -1, :value [3 8]}
{:index 6, :time 7, :type :info, :process 2, :f :cas, :key -1, :value [3 8]}
{:index 7, :time 8, :type :invoke, :process 0, :f :read, :key -1, :value nil}
{:index 8, :time 9, :type :ok, :process 0, :f :read, :key -1, :value 8}
{:index 9, :time 10, :type :invoke, :process 3, :f :read, :key 2, :value nil}
{:index 10, :time 11, :type :ok, :process 3, :f :read, :key 2, :value nil}
{:index 11, :time 12, :type :invoke, :process 4, :f :write, :key -1, :value 9}
";
    let Got::Decided(v) = agree(&checker(true), text, true) else { panic!("not decided") };
    assert_eq!(v.details["partitions"], 1, "{}", v.details);
    // Without the cas: the write of 9 never completed, and nothing read it.
    let text = text.replace(":value 8}", ":value 3}");
    assert!(matches!(agree(&checker(true), &text, true), Got::Decided(_)));
}

/// What the whole check refuses is handed to it as the history read, and
/// what it finds unknown is decided alike; texts in another shape, and the
/// checkers the text path does not serve, are left to the readers.
#[test]
fn everything_else_is_left_to_the_whole_check() {
    let write = "{:index 0, :type :invoke, :process 0, :f :write, :key 1, :value 3}\n\
                 {:index 1, :type :ok, :process 0, :f :write, :key 1, :value 3}\n";
    let read = "{:index 2, :type :invoke, :process 0, :f :read, :key 1, :value nil}\n\
                {:index 3, :type :ok, :process 0, :f :read, :key 1, :value 3}\n";
    let cas = "{:index 4, :type :invoke, :process 0, :f :cas, :key 1, :value [3 4]}\n\
               {:index 5, :type :ok, :process 0, :f :cas, :key 1, :value [3 4]}\n";
    let whole = format!("{write}{read}");
    assert!(matches!(agree(&checker(false), &whole, true), Got::Decided(_)));
    let cases = [
        // Writes alone observe nothing: unknown, decided from the ops.
        (checker(true), write.to_owned(), Got::Decided(Verdict::new("", Validity::Unknown, ""))),
        // A register has no cas: the whole check refuses the op.
        (checker(false), format!("{write}{read}{cas}"), Got::Read),
        // A completion naming another function.
        (
            checker(true),
            whole.replace(":ok, :process 0, :f :read", ":ok, :process 0, :f :write"),
            Got::Read,
        ),
        // A completion with nothing pending.
        (
            checker(true),
            format!("{}{read}", write.replacen(":type :invoke", ":type :ok", 1)),
            Got::Read,
        ),
        // An invocation while the process's last is pending.
        (checker(true), whole.replace(":index 1, :type :ok", ":index 1, :type :invoke"), Got::Read),
        // A key that only the completion gives.
        (
            checker(true),
            whole.replace(
                ":index 2, :type :invoke, :process 0, :f :read, :key 1,",
                ":index 2, :type :invoke, :process 0, :f :read,",
            ),
            Got::Read,
        ),
        // Indices that do not increase: the readers refuse them.
        (checker(true), whole.replace(":index 3", ":index 1"), Got::Left),
        // A node: not this reader's shape.
        (checker(true), whole.replace(":value 3}", ":value 3, :node \"n1\"}"), Got::Left),
    ];
    for (c, text, want) in cases {
        let got = agree(&c, &text, false);
        match (&got, &want) {
            (Got::Decided(v), Got::Decided(w)) => assert_eq!(v.validity, w.validity, "{text}"),
            _ => assert_eq!(got, want, "{text}"),
        }
    }
    // A budget spent is decided unknown, as the whole check decides it,
    // rather than handed over to spend a budget of its own. (A history
    // whose values repeat needs the search, which counts the budget.)
    let mut s = spec(true, 5, 8, 0.05, 1, true);
    s.ops = 3_000;
    let text = formats::write(&synth::generate(&s), Format::Edn);
    let mut spent = checker(true);
    spent.budget.time = Some(std::time::Duration::ZERO);
    let FromText::Decided(v) = spent.check_text(&mut text.as_bytes(), "h.edn") else {
        panic!("not decided")
    };
    assert_eq!(v.validity, Validity::Unknown, "{}", v.to_text());
    let h = formats::parse(&text, "h.edn", None).unwrap_or_else(|e| panic!("{e}"));
    let judged = checkers::judge(&spent, &h).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(judged.validity, Validity::Unknown);
    assert_eq!(v.unknown_reason, judged.unknown_reason);
    // The reference search, and checking without partitions.
    let mut reference = checker(true);
    reference.algorithm = Algorithm::Reference;
    let mut unpartitioned = checker(true);
    unpartitioned.partition = false;
    for c in [reference, unpartitioned] {
        assert!(matches!(c.check_text(&mut whole.as_bytes(), "h.edn"), FromText::Left));
        assert!(!c.checks_text(&whole));
    }
    assert!(checker(true).checks_text(&whole[..40 + whole.find('\n').unwrap_or(0)]));
    assert!(!checker(true).checks_text("[{:index 0, :type :invoke}]"));
    assert!(!LinearChecker::new(ModelName::Set).checks_text(&whole));
}
