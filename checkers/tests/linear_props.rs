//! Property tests of the linearizability checker: histories generated from
//! concurrent executions of each model are linearizable by construction and
//! must be found valid; the same histories with one read corrupted so that
//! no linearization exists must be found invalid, and the evidence must name
//! the corrupted read.

use checkers::linear::{LinearChecker, ModelName};
use checkers::synth::{self, SynthSpec};
use checkers::{Checker, Validity};
use proptest::prelude::*;

fn spec(
    model: ModelName,
    seed: u64,
    processes: usize,
    crash_rate: f64,
    keys: usize,
    small_values: bool,
) -> SynthSpec {
    let mut s = SynthSpec::new(model, seed);
    s.ops = 200;
    s.processes = processes;
    s.crash_rate = crash_rate;
    s.keys = keys;
    // Small value domains (Jepsen's registers write 0..5) make registers
    // harder to check; for queues and sets, repeated values make the problem
    // NP-hard in earnest, and unique values are what workloads produce.
    if small_values
        && matches!(model, ModelName::Register | ModelName::CasRegister | ModelName::MultiRegister)
    {
        s.value_range = Some(5);
    }
    s
}

fn check(model: ModelName, h: &checkers::History) -> checkers::Verdict {
    LinearChecker::new(model).check(h).unwrap_or_else(|e| panic!("{e}"))
}

const MODELS: [ModelName; 8] = [
    ModelName::Register,
    ModelName::CasRegister,
    ModelName::MultiRegister,
    ModelName::Mutex,
    ModelName::Set,
    ModelName::UnorderedQueue,
    ModelName::FifoQueue,
    ModelName::Kv,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    /// Every model, any concurrency, crashes and (for registers) small value
    /// domains: generated histories are linearizable.
    #[test]
    fn generated_histories_are_valid(
        m in 0..MODELS.len(),
        seed in any::<u64>(),
        processes in 1usize..8,
        crash in prop_oneof![Just(0.0), 0.0f64..0.12],
        keys in 1usize..4,
        small in any::<bool>(),
    ) {
        let model = MODELS[m];
        // A FIFO queue's state is a sequence, and with crashed enqueues and
        // dequeues the orders the search must tell apart grow fastest:
        // keep its concurrency and crash rate moderate (see docs/checkers.md).
        let (processes, crash) = if model == ModelName::FifoQueue {
            (processes.min(6), crash.min(0.06))
        } else {
            (processes, crash)
        };
        let h = synth::generate(&spec(model, seed, processes, crash, keys, small));
        let v = check(model, &h);
        prop_assert_eq!(v.validity, Validity::Valid, "seed {} model {}: {}", seed, model.name(), v.to_text());
    }

    /// A read that returns a value overwritten before it began, with crashed
    /// writes pending, is found, and the evidence blames that read.
    #[test]
    fn stale_register_reads_are_invalid(
        cas in any::<bool>(),
        seed in any::<u64>(),
        processes in 2usize..12,
        crash in 0.0f64..0.1,
        keys in 1usize..4,
    ) {
        let model = if cas { ModelName::CasRegister } else { ModelName::Register };
        let h = synth::generate(&spec(model, seed, processes, crash, keys, false));
        // A history with no read to corrupt proves nothing: it counts as
        // rejected, not as passed.
        let Some(c) = synth::stale_read(&h, u64::MAX) else {
            return Err(TestCaseError::reject("no read could be made stale"));
        };
        let v = check(model, &c.history);
        prop_assert_eq!(v.validity, Validity::Invalid, "seed {}: {}: {}", seed, c.description, v.to_text());
        prop_assert!(!v.anomalies.is_empty());
    }

    /// One impossible read per model is found.
    #[test]
    fn impossible_reads_are_invalid(
        m in 0..MODELS.len(),
        seed in any::<u64>(),
        processes in 1usize..10,
        crash in prop_oneof![Just(0.0), 0.0f64..0.1],
    ) {
        let model = MODELS[m];
        let (processes, crash) = if model == ModelName::FifoQueue {
            (processes.min(6), crash.min(0.06))
        } else {
            (processes, crash)
        };
        let h = synth::generate(&spec(model, seed, processes, crash, 2, false));
        let Some(c) = synth::impossible_read(&h, model, u64::MAX) else {
            return Err(TestCaseError::reject("no read could be made impossible"));
        };
        let v = check(model, &c.history);
        prop_assert_eq!(v.validity, Validity::Invalid, "seed {} model {}: {}", seed, model.name(), c.description);
    }
}

/// The corrupted read is the op the evidence names, for a register history
/// with many crashed operations pending.
#[test]
fn evidence_names_the_stale_read() {
    let mut s = spec(ModelName::CasRegister, 7, 10, 0.05, 1, false);
    s.ops = 2000;
    let h = synth::generate(&s);
    let c = synth::stale_read(&h, u64::MAX).expect("a stale read can be made");
    let v = check(ModelName::CasRegister, &c.history);
    assert_eq!(v.validity, Validity::Invalid);
    let stuck = v.anomalies[0].data["stuck"]["index"].as_u64().expect("stuck index");
    // The anomaly names the read's invocation; the corruption changed its completion.
    let read_invoke = c
        .history
        .ops()
        .iter()
        .rev()
        .find(|o| o.index < c.index && o.process == c.history.ops()[c.index as usize].process)
        .map(|o| o.index);
    assert_eq!(Some(stuck), read_invoke, "{}", v.to_text());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// The search and the classic reference search (Porcupine's algorithm)
    /// agree on small histories, corrupted or not: the pruning the search
    /// adds (dominance, bursts, model oracles, dropping unobservable crashed
    /// ops) never changes a verdict.
    #[test]
    fn search_agrees_with_reference(
        m in 0..MODELS.len(),
        seed in any::<u64>(),
        processes in 1usize..5,
        crash in prop_oneof![Just(0.0), 0.0f64..0.25],
        small in any::<bool>(),
        corrupt in any::<bool>(),
    ) {
        let model = MODELS[m];
        let mut s = spec(model, seed, processes, crash, 2, small);
        s.ops = 40;
        let mut h = synth::generate(&s);
        if corrupt {
            let c = synth::stale_read(&h, u64::MAX).or_else(|| synth::impossible_read(&h, model, u64::MAX));
            if let Some(c) = c {
                h = c.history;
            }
        }
        let fast = check(model, &h).validity;
        let mut reference = LinearChecker::new(model);
        reference.algorithm = checkers::linear::Algorithm::Reference;
        let slow = reference.check(&h).unwrap_or_else(|e| panic!("{e}")).validity;
        prop_assert_eq!(fast, slow, "seed {} model {} corrupt {}", seed, model.name(), corrupt);
    }
}

/// A small cas-register history with unique written values and arbitrary
/// overlaps, built from `events`: each `(process, what, pick, crash)`
/// either invokes a new op on that process or completes its pending one
/// (crashing it when `crash`). Reads return a value picked among those
/// written so far (or the latest), so some histories are valid and many
/// are not; crashed processes come back under a new number, as in Jepsen.
fn unique_value_history(events: &[(u8, u8, u8, bool)]) -> checkers::History {
    use checkers::history::{Op, OpType, Process};
    use checkers::value::Value;
    let mut ops: Vec<Op> = Vec::new();
    let mut written: Vec<i64> = vec![0];
    let mut next = 1i64;
    let mut names: [u64; 4] = [0, 1, 2, 3];
    let mut pending: [Option<(&'static str, Value, Value)>; 4] = Default::default();
    let emit = |ops: &mut Vec<Op>, p: u64, kind: OpType, f: &str, v: Value| {
        ops.push(Op::new(ops.len() as u64, Process::Client(p), kind, f, v));
    };
    for &(p, what, pick, crash) in events {
        let t = usize::from(p % 4);
        let pick = |n: usize| usize::from(pick) % n;
        match pending[t].take() {
            None => {
                let op = match what % 3 {
                    0 => {
                        written.push(next);
                        next += 1;
                        ("write", Value::Int(next - 1), Value::Int(next - 1))
                    }
                    1 => {
                        let i = pick(written.len() + 2).min(written.len() - 1);
                        ("read", Value::Nil, Value::Int(written[i]))
                    }
                    _ => {
                        let i = pick(written.len() + 2).min(written.len() - 1);
                        written.push(next);
                        next += 1;
                        let v = Value::list([Value::Int(written[i]), Value::Int(next - 1)]);
                        ("cas", v.clone(), v)
                    }
                };
                emit(&mut ops, names[t], OpType::Invoke, op.0, op.1.clone());
                pending[t] = Some(op);
            }
            Some((f, input, output)) => {
                if crash {
                    emit(&mut ops, names[t], OpType::Info, f, input);
                    names[t] += 4;
                } else {
                    emit(&mut ops, names[t], OpType::Ok, f, output);
                }
            }
        }
    }
    for t in 0..4 {
        if let Some((f, _, output)) = pending[t].take() {
            emit(&mut ops, names[t], OpType::Ok, f, output);
        }
    }
    checkers::History::new(ops)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// The test that decides registers with unique written values without
    /// search agrees with the classic reference search on small histories
    /// of any overlap, with crashed writes and compare-and-sets, valid or not.
    #[test]
    fn unique_value_registers_agree_with_reference(
        events in proptest::collection::vec((0u8..4, 0u8..3, any::<u8>(), proptest::bool::weighted(0.15)), 1..28),
    ) {
        let h = unique_value_history(&events);
        let mut fast = LinearChecker::new(ModelName::CasRegister);
        fast.init = checkers::value::Value::Int(0);
        let mut reference = fast.clone();
        reference.algorithm = checkers::linear::Algorithm::Reference;
        let got = fast.check(&h).unwrap_or_else(|e| panic!("{e}"));
        let want = reference.check(&h).unwrap_or_else(|e| panic!("{e}")).validity;
        prop_assert_eq!(got.validity, want, "{}\n{:?}", got.to_text(), h.ops());
        if got.validity != Validity::Unknown {
            prop_assert_eq!(&got.details["decided_without_search"], &serde_json::json!(1));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Asked not to partition, the default search checks kv key by key (by
    /// locality); the reference search searches every key as one state. On
    /// small multi-key histories, corrupted or not, they agree.
    #[test]
    fn unpartitioned_kv_by_locality_agrees_with_the_product_search(
        seed in any::<u64>(),
        processes in 1usize..5,
        crash in prop_oneof![Just(0.0), 0.0f64..0.2],
        keys in 2usize..4,
        corrupt in any::<bool>(),
    ) {
        let mut s = spec(ModelName::Kv, seed, processes, crash, keys, false);
        s.ops = 30;
        let mut h = synth::generate(&s);
        if corrupt {
            let c = synth::stale_read(&h, u64::MAX)
                .or_else(|| synth::impossible_read(&h, ModelName::Kv, u64::MAX));
            if let Some(c) = c {
                h = c.history;
            }
        }
        let mut local = LinearChecker::new(ModelName::Kv);
        local.partition = false;
        let mut product = local.clone();
        product.algorithm = checkers::linear::Algorithm::Reference;
        let got = local.check(&h).unwrap_or_else(|e| panic!("{e}"));
        let want = product.check(&h).unwrap_or_else(|e| panic!("{e}")).validity;
        prop_assert_eq!(got.validity, want, "seed {} corrupt {}: {}", seed, corrupt, got.to_text());
        // (A history where nothing was read is unknown before any search.)
        if got.validity != Validity::Unknown {
            prop_assert_eq!(&got.details["partitioned_by_locality"], &serde_json::json!(true));
        }
    }
}

/// A register history's partitions are compiled each on its own core: the
/// op named in the error is still the first bad one in history order,
/// whichever key's partition holds it.
#[test]
fn the_first_bad_op_in_history_order_is_named_whatever_its_partition() {
    // One op (invocation and completion) by its own process.
    let op = |n: usize, key: u8, value: &str| {
        let line = |i: usize, kind: &str| {
            format!(
                "{{:index {i}, :type :{kind}, :process {n}, :f :cas, :key {key}, :value {value}}}\n"
            )
        };
        line(2 * n, "invoke") + &line(2 * n + 1, "ok")
    };
    for (first, second) in [(1u8, 2u8), (2, 1)] {
        let mut text = String::new();
        for (n, key) in [first, first, second, second].into_iter().enumerate() {
            text.push_str(&op(n, key, "[0 1]"));
        }
        // Ops 4 and 5 (lines 9 and 11) are bad, in different partitions.
        text.push_str(&op(4, second, "7"));
        text.push_str(&op(5, first, "8"));
        let h = checkers::formats::parse(&text, "h.edn", None).unwrap_or_else(|e| panic!("{e}"));
        let e = LinearChecker::new(ModelName::CasRegister).check(&h).expect_err("a bad cas");
        let message = e.to_string();
        assert!(message.starts_with("h.edn:9 ") && message.ends_with("found 7"), "{message}");
    }
}

/// A key whose ops say nothing (reads of nil, which Knossos reads as not
/// knowing the value) makes no partition, as when one core compiled them all.
#[test]
fn a_key_whose_ops_all_compile_to_nothing_is_no_partition() {
    let text = "\
{:index 0, :type :invoke, :process 0, :f :write, :key 1, :value 3}
{:index 1, :type :ok, :process 0, :f :write, :key 1, :value 3}
{:index 2, :type :invoke, :process 0, :f :read, :key 2, :value nil}
{:index 3, :type :ok, :process 0, :f :read, :key 2, :value nil}
{:index 4, :type :invoke, :process 0, :f :read, :key 1, :value nil}
{:index 5, :type :ok, :process 0, :f :read, :key 1, :value 3}
";
    let h = checkers::formats::parse(text, "h.edn", None).unwrap_or_else(|e| panic!("{e}"));
    let v = check(ModelName::CasRegister, &h);
    assert_eq!(v.validity, Validity::Valid, "{}", v.to_text());
    assert_eq!(v.details["partitions"], 1, "{}", v.details);
}

/// The verdict's details give each stage's time, in milliseconds, as
/// Elle's do: pairing, compiling, searching and the verdict, which take
/// all of the check between them.
#[test]
fn the_verdict_gives_each_stages_time() {
    let mut s = SynthSpec::new(ModelName::CasRegister, 3);
    s.ops = 2_000;
    let h = synth::generate(&s);
    for model in [ModelName::CasRegister, ModelName::Set] {
        let h = if model == ModelName::Set { set_history() } else { h.clone() };
        let started = std::time::Instant::now();
        let v = check(model, &h);
        let took = started.elapsed().as_secs_f64() * 1000.0;
        let timings = v.details["timings_ms"].as_object().expect("timings_ms");
        let stages: Vec<&str> = timings.keys().map(String::as_str).collect();
        assert_eq!(stages.len(), 4, "{timings:?}");
        for stage in ["pairs", "compile", "search", "verdict"] {
            assert!(stages.contains(&stage), "{stage} missing from {timings:?}");
        }
        let total: f64 = timings.values().map(|t| t.as_f64().expect("a number")).sum();
        assert!(timings.values().all(|t| t.as_f64().is_some_and(|t| t >= 0.0)));
        // The stages follow one another, all within the check.
        assert!(total <= took, "stages {total} ms, check {took} ms");
    }
}

/// A set history: two adds, a read that sees both.
fn set_history() -> checkers::History {
    let text = "\
{:index 0, :type :invoke, :process 0, :f :add, :value 1}
{:index 1, :type :ok, :process 0, :f :add, :value 1}
{:index 2, :type :invoke, :process 1, :f :add, :value 2}
{:index 3, :type :ok, :process 1, :f :add, :value 2}
{:index 4, :type :invoke, :process 0, :f :read, :value nil}
{:index 5, :type :ok, :process 0, :f :read, :value #{1 2}}
";
    checkers::formats::parse(text, "set.edn", None).unwrap_or_else(|e| panic!("{e}"))
}

/// A register history long enough to be sorted into partitions on several
/// cores, a stretch of it each, gets the verdict it gets on one core, word
/// for word, valid and with a stale read (the stretches' partitions are
/// joined in history order).
#[test]
fn sorting_on_several_cores_gives_the_verdict_of_one_core() {
    let mut s = SynthSpec::new(ModelName::CasRegister, 7);
    s.ops = 60_000;
    s.keys = 7;
    s.processes = 10;
    s.crash_rate = 0.01;
    let valid = synth::generate(&s);
    let stale = synth::stale_read(&valid, u64::MAX).expect("a read to make stale").history;
    let verdict = |threads: usize, h: &checkers::History| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a pool");
        let mut v = pool.install(|| check(ModelName::CasRegister, h));
        v.elapsed = std::time::Duration::ZERO;
        // Each stage's time differs from run to run.
        v.details.as_object_mut().and_then(|d| d.remove("timings_ms")).expect("timings");
        serde_json::to_value(&v).expect("a verdict as JSON")
    };
    for (h, want) in [(&valid, Validity::Valid), (&stale, Validity::Invalid)] {
        let one = verdict(1, h);
        assert_eq!(one["validity"], serde_json::json!(want), "{one}");
        // Four threads: at least two stretches of 16,384 pairs or more.
        assert_eq!(verdict(4, h), one);
    }
}
