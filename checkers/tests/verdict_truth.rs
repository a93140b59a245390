//! Regressions for wrong verdicts: histories a checker once judged wrongly
//! (valid where nothing was observed, a rounded integer, an ignored initial
//! state), each named after what it caught.

use checkers::formats::{self, Format};
use checkers::registry::{self, CheckSpec};
use checkers::{History, Validity, Value, Verdict, judge};

fn check(spec: &CheckSpec, history: &History) -> Verdict {
    let checker = registry::build(spec).unwrap_or_else(|e| panic!("{}: {e}", spec.checker));
    judge(checker.as_ref(), history).unwrap_or_else(|e| panic!("{}: {e}", spec.checker))
}

fn edn(text: &str) -> History {
    formats::parse(text, "h.edn", Some(Format::Edn)).expect("valid EDN history")
}

fn model(name: &str) -> CheckSpec {
    let mut spec = CheckSpec::new("linearizable");
    spec.model = Some(name.into());
    spec
}

/// Knossos's multi-register example starts from `{:x 0 :y 0}`; a read of
/// both zeros is legal only from that state.
const MULTI_REGISTER: &str = "\
{:process 0, :type :invoke, :f :txn, :value [[:r :x nil] [:r :y nil]]}
{:process 1, :type :invoke, :f :txn, :value [[:w :x 1] [:w :y 2]]}
{:process 0, :type :ok, :f :txn, :value [[:r :x 0] [:r :y 0]]}
{:process 1, :type :ok, :f :txn, :value [[:w :x 1] [:w :y 2]]}
{:process 0, :type :invoke, :f :txn, :value [[:r :x nil] [:r :y nil]]}
{:process 0, :type :ok, :f :txn, :value [[:r :x 1] [:r :y 2]]}
";

#[test]
fn multi_register_starts_from_init() {
    let h = edn(MULTI_REGISTER);
    let mut spec = model("multi-register");
    assert_eq!(check(&spec, &h).validity, Validity::Invalid, "from nil, 0 was never written");
    spec.init = Some(Value::map(vec![
        (Value::keyword("x"), Value::Int(0)),
        (Value::keyword("y"), Value::Int(0)),
    ]));
    let v = check(&spec, &h);
    assert_eq!(v.validity, Validity::Valid, "{}", v.to_text());
    // One value for every register, and string keys for keyword ones.
    spec.init = Some(Value::Int(0));
    assert_eq!(check(&spec, &h).validity, Validity::Valid);
    spec.init = Some(Value::map(vec![(Value::str("x"), Value::Int(0))]));
    assert_eq!(check(&spec, &h).validity, Validity::Invalid, "y still starts nil");
}

/// A write of 10^30 and a read of 10^30 + 1: equal once rounded to floats.
#[test]
fn integers_beyond_64_bits_are_not_rounded_into_agreement() {
    let jsonl = "\
{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1000000000000000000000000000000}
{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1000000000000000000000000000000}
{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}
{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":1000000000000000000000000000001}
";
    let h = formats::parse(jsonl, "h.jsonl", None).expect("jsonl");
    let v = check(&model("register"), &h);
    assert_eq!(v.validity, Validity::Invalid, "{}", v.to_text());
    // The same through elle-cli's JSON, and as list-append elements.
    let elle = r#"[
{"process": 0, "type": "invoke", "value": [["append", 1, 100000000000000000000000]]},
{"process": 0, "type": "ok", "value": [["append", 1, 100000000000000000000000]]},
{"process": 1, "type": "invoke", "value": [["r", 1, null]]},
{"process": 1, "type": "ok", "value": [["r", 1, [100000000000000000000001]]]}
]"#;
    let h = formats::parse(elle, "h.json", None).expect("elle json");
    let v = check(&CheckSpec::new("list-append"), &h);
    assert_eq!(v.validity, Validity::Invalid, "{}", v.to_text());
    assert!(v.to_text().contains("100000000000000000000001N"), "{}", v.to_text());
    // EDN's own big integers, too.
    let h =
        edn("{:process 0, :type :invoke, :f :write, :value 1000000000000000000000000000000N}\n\
         {:process 0, :type :ok, :f :write, :value 1000000000000000000000000000000N}\n\
         {:process 1, :type :invoke, :f :read, :value nil}\n\
         {:process 1, :type :ok, :f :read, :value 1000000000000000000000000000001N}\n");
    assert_eq!(check(&model("register"), &h).validity, Validity::Invalid);
}

/// A counter history without a read, a register history without a read, a
/// queue never dequeued, sessions that never read: nothing was observed, so
/// nothing can be valid.
#[test]
fn nothing_observed_is_unknown_never_valid() {
    let adds = edn(
        "{:process 0, :type :invoke, :f :add, :value 1}\n{:process 0, :type :ok, :f :add, :value 1}\n",
    );
    let v = check(&CheckSpec::new("counter"), &adds);
    assert_eq!(v.validity, Validity::Unknown, "{}", v.to_text());
    assert_eq!(
        v.unknown_reason.as_deref(),
        Some("no read completed ok, so nothing observed the counter (1 increments attempted)")
    );

    let writes = edn(
        "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :write, :value 1}\n\
         {:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value nil}\n",
    );
    let v = check(&model("cas-register"), &writes);
    assert_eq!(v.validity, Validity::Unknown, "{}", v.to_text());
    assert!(
        v.unknown_reason.as_deref().unwrap_or("").contains("an ok read of a value, or an ok cas")
    );

    let enqueues = edn(
        "{:process 0, :type :invoke, :f :enqueue, :value 1}\n{:process 0, :type :ok, :f :enqueue, :value 1}\n",
    );
    let v = check(&CheckSpec::new("total-queue"), &enqueues);
    assert_eq!(v.validity, Validity::Unknown, "{}", v.to_text());
    let v = check(&model("fifo-queue"), &enqueues);
    assert_eq!(v.validity, Validity::Unknown, "{}", v.to_text());

    let appends = edn("{:process 0, :type :invoke, :f :txn, :value [[:append :x 1]]}\n\
         {:process 0, :type :ok, :f :txn, :value [[:append :x 1]]}\n");
    for name in ["session", "read-your-writes", "list-append"] {
        let v = check(&CheckSpec::new(name), &appends);
        assert_eq!(v.validity, Validity::Unknown, "{name}: {}", v.to_text());
    }
    let only_writes = edn(
        "{:process 0, :type :invoke, :f :write, :value [:x 1]}\n{:process 0, :type :ok, :f :write, :value [:x 1]}\n",
    );
    let v = check(&CheckSpec::new("causal"), &only_writes);
    assert_eq!(v.validity, Validity::Unknown, "causal: {}", v.to_text());
    let v = check(&CheckSpec::new("bank"), &adds);
    assert_eq!(v.validity, Validity::Unknown, "bank: {}", v.to_text());
}

/// A torn last line was dropped silently: the verdict on what remained
/// read as the verdict on the file.
#[test]
fn a_truncated_history_is_never_judged_valid() {
    let text = "\
{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}
{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}
{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}
{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"value\":1}
{\"process\":1,\"type\":\"invoke\",\"f\":\"re";
    let h = formats::parse(text, "torn.jsonl", None).expect("a torn tail is not fatal");
    let v = check(&model("register"), &h);
    assert_eq!(v.validity, Validity::Unknown, "{}", v.to_text());
    assert_eq!(
        v.notes,
        ["torn.jsonl:5: last line incomplete (cut off mid-write), ignored; only the 4 ops before \
          it are judged"]
    );
    assert!(v.to_text().contains("note: torn.jsonl:5: last line incomplete"), "{}", v.to_text());
    // A violation in the part that was read stands.
    let bad =
        text.replacen("\"ok\",\"f\":\"read\",\"value\":1", "\"ok\",\"f\":\"read\",\"value\":2", 1);
    let h = formats::parse(&bad, "torn.jsonl", None).expect("a torn tail is not fatal");
    assert_eq!(h.notes().len(), 1);
    assert_eq!(check(&model("register"), &h).validity, Validity::Invalid);
}

/// A Jepsen history of independent keys, checked without --independent,
/// reads as one register holding tuples: the verdict says what to try.
#[test]
fn independent_tuples_without_independent_get_a_hint() {
    let h = edn("{:process 0, :type :invoke, :f :write, :value [1 5]}\n\
         {:process 0, :type :ok, :f :write, :value [1 5]}\n\
         {:process 1, :type :invoke, :f :write, :value [2 7]}\n\
         {:process 1, :type :ok, :f :write, :value [2 7]}\n\
         {:process 0, :type :invoke, :f :read, :value [1 nil]}\n\
         {:process 0, :type :ok, :f :read, :value [1 5]}\n");
    let v = check(&model("register"), &h);
    assert_eq!(v.validity, Validity::Invalid);
    assert!(v.notes.iter().any(|n| n.contains("check it with --independent")), "{:?}", v.notes);
    let split = checkers::history::split_independent(h).expect("tuples");
    let mut spec = model("register");
    spec.independent = true;
    let v = check(&spec, &split);
    assert_eq!(v.validity, Validity::Valid, "{}", v.to_text());
    assert!(v.notes.is_empty());
}
