//! Register reads that returned several sibling versions at once.
//!
//! A store that keeps concurrent writes as siblings (Riak's `allow_mult`,
//! refstore's `--resolution siblings`) answers a read with every version it
//! holds; faultline's clients record such a read as the *set* of the values
//! (docs/history-format.md). A register holds one value at a time, so no
//! order of the operations explains a read of two. Linearizability names
//! each such read `sibling-read` (`linear/siblings.rs`). The checkers that
//! judge which one write each read observed (session guarantees, causal
//! consistency, convergence of registers) cannot judge a read that observed
//! several: they answer `unknown` ([`unjudged`]), never `valid` and never an
//! anomaly of their own kind (a thin-air read, a value nobody wrote) that
//! would misname what happened.
//!
//! A read whose set some write wrote (a register whose values are sets) is
//! an ordinary read, not a sibling read.

use std::collections::BTreeSet;

use serde_json::json;

use crate::error::CheckError;
use crate::history::{History, OpType, Process};
use crate::value::Value;
use crate::verdict::{Anomaly, Verdict};

/// The function names a register read goes by (as `RegisterKind` reads them).
const READS: [&str; 4] = ["read", "r", "get", "final-read"];

/// The sibling reads of a register history.
#[derive(Default)]
pub(crate) struct SiblingReads {
    /// The distinct sets those reads returned, which the search leaves out.
    pub values: Vec<Value>,
    /// One `sibling-read` anomaly per read.
    pub anomalies: Vec<Anomaly>,
}

/// Finds every ok read whose value is a set of two or more values that no
/// write (nor the initial value) wrote.
pub(crate) fn find(history: &History, init: &Value) -> Result<SiblingReads, CheckError> {
    let ops = history.ops();
    let mut out = SiblingReads::default();
    // Most histories hold no read of a set at all: they need neither the
    // pairing nor the set of written values (a third of the checker's
    // own time on a 100k-op register history before this test).
    let set_read = |o: &crate::history::Op| {
        o.kind == OpType::Ok && matches!(&o.value, Value::Set(items) if items.len() >= 2)
    };
    if !ops.iter().any(set_read) {
        return Ok(out);
    }
    let mut written: BTreeSet<&Value> = BTreeSet::from([init]);
    for op in ops.iter().filter(|o| o.kind == OpType::Invoke) {
        match (op.f.as_str(), &op.value) {
            ("write" | "w" | "put", v) => {
                written.insert(v);
            }
            ("cas", Value::List(pair)) if pair.len() == 2 => {
                written.insert(&pair[1]);
            }
            _ => {}
        }
    }
    for pair in history.pairs()? {
        let inv = &ops[pair.invoke];
        let Some(c) = pair.complete.filter(|c| *c != pair.invoke) else { continue };
        let done = &ops[c];
        let siblings = match &done.value {
            Value::Set(items) if items.len() >= 2 && !written.contains(&done.value) => items,
            _ => continue,
        };
        if inv.process == Process::Nemesis
            || done.kind != OpType::Ok
            || !READS.contains(&inv.f.as_str())
        {
            continue;
        }
        if !out.values.contains(&done.value) {
            out.values.push(done.value.clone());
        }
        let key = inv.key.as_ref().or(done.key.as_ref());
        let where_ = key.map_or(String::new(), |k| format!("For key {k}: "));
        let listed: Vec<String> = siblings.iter().map(ToString::to_string).collect();
        out.anomalies.push(Anomaly {
            kind: "sibling-read".into(),
            explanation: format!(
                "{where_}process {} read {} sibling versions at once ({}), invoked at {}, \
                 returned at {}. A register holds one value at a time, so no order of the \
                 operations explains this read: the store kept concurrent writes side by side \
                 instead of ordering them, and the client recorded every version rather than \
                 pick one.",
                inv.process,
                siblings.len(),
                listed.join(", "),
                history.position_words(pair.invoke),
                history.position_words(c),
            ),
            ops: vec![inv.index, done.index],
            data: json!({ "key": key, "siblings": listed }),
        });
    }
    Ok(out)
}

/// The `unknown` verdict of `checker`, which judges register reads of one
/// value, when the history has sibling reads (`init` is the register's
/// initial value); `None` when it has none.
pub(crate) fn unjudged(
    checker: &str,
    history: &History,
    init: &Value,
) -> Result<Option<Verdict>, CheckError> {
    let found = find(history, init)?;
    let Some(first) = found.anomalies.first() else { return Ok(None) };
    let n = found.anomalies.len();
    let reads = if n == 1 { "1 register read".to_owned() } else { format!("{n} register reads") };
    let reason = format!(
        "{reads} returned several sibling versions at once (the first: ops {}); the {checker} \
         checker judges which one write each read observed, and such a read observed several \
         side by side. The linearizable checker names each one (sibling-read)",
        first.ops.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ")
    );
    let mut v =
        Verdict::unknown(checker, format!("{checker} not judged: {reads} of siblings"), reason);
    v.details = json!({ "sibling_reads": n, "first_sibling_read": first.ops });
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use crate::causal::{CausalChecker, Model};
    use crate::convergence::ConvergenceChecker;
    use crate::formats::parse;
    use crate::session::{Guarantee, SessionChecker};
    use crate::verdict::{Checker, Validity, Verdict};

    /// Two concurrent writes of key 1 kept as siblings: process 2 reads
    /// both at once, then each node's final read shows both.
    const SIBLING_HISTORY: [&str; 12] = [
        r#"{"process":0,"type":"invoke","f":"write","key":1,"value":1}"#,
        r#"{"process":1,"type":"invoke","f":"write","key":1,"value":2}"#,
        r#"{"process":0,"type":"ok","f":"write","key":1,"value":1}"#,
        r#"{"process":1,"type":"ok","f":"write","key":1,"value":2}"#,
        r#"{"process":2,"type":"invoke","f":"read","key":1,"value":null}"#,
        r#"{"process":2,"type":"ok","f":"read","key":1,"value":{"$set":[1,2]}}"#,
        r#"{"process":2,"type":"invoke","f":"read","key":1,"value":null}"#,
        r#"{"process":2,"type":"ok","f":"read","key":1,"value":{"$set":[1,2]}}"#,
        r#"{"process":3,"type":"invoke","f":"final-read","key":1,"value":null,"node":"n1"}"#,
        r#"{"process":3,"type":"ok","f":"final-read","key":1,"value":{"$set":[1,2]},"node":"n1"}"#,
        r#"{"process":4,"type":"invoke","f":"final-read","key":1,"value":null,"node":"n2"}"#,
        r#"{"process":4,"type":"ok","f":"final-read","key":1,"value":{"$set":[1,2]},"node":"n2"}"#,
    ];

    /// `checker`'s verdict on the sibling history, which must be unknown
    /// and say why.
    fn unknown_on_siblings(checker: &dyn Checker) -> Verdict {
        let h = parse(&SIBLING_HISTORY.join("\n"), "test", None).expect("history");
        let v = checker.check(&h).expect("checked");
        assert_eq!(v.validity, Validity::Unknown, "{}: {v:?}", checker.name());
        assert!(v.anomalies.is_empty(), "no anomaly of the checker's own kind: {v:?}");
        let why = v.unknown_reason.as_deref().unwrap_or_default();
        assert!(why.contains("4 register reads returned several sibling versions"), "{why}");
        assert!(why.contains("the first: ops 4 and 5"), "{why}");
        assert!(why.contains("sibling-read"), "names where they are reported: {why}");
        assert_eq!(v.details["sibling_reads"], 4, "{v:?}");
        v
    }

    #[test]
    fn session_guarantees_cannot_judge_a_sibling_read() {
        let v = unknown_on_siblings(&SessionChecker::new("session", Guarantee::ALL.to_vec()));
        assert_eq!(v.checker, "session");
    }

    #[test]
    fn causal_consistency_cannot_judge_a_sibling_read() {
        for model in [Model::Causal, Model::Convergent, Model::Memory] {
            unknown_on_siblings(&CausalChecker::new(model));
        }
    }

    #[test]
    fn register_convergence_cannot_judge_a_sibling_read() {
        unknown_on_siblings(&ConvergenceChecker::new());
    }

    #[test]
    fn a_set_history_or_a_register_of_one_value_reads_is_judged_as_before() {
        // The set workload reads sets that no `write` wrote: not register reads.
        let set = [
            r#"{"process":0,"type":"invoke","f":"add","key":1,"value":1}"#,
            r#"{"process":0,"type":"ok","f":"add","key":1,"value":1}"#,
            r#"{"process":1,"type":"invoke","f":"add","key":1,"value":2}"#,
            r#"{"process":1,"type":"ok","f":"add","key":1,"value":2}"#,
            r#"{"process":3,"type":"invoke","f":"final-read","key":1,"value":null,"node":"n1"}"#,
            r#"{"process":3,"type":"ok","f":"final-read","key":1,"value":{"$set":[1,2]},"node":"n1"}"#,
        ];
        let h = parse(&set.join("\n"), "test", None).expect("history");
        let v = ConvergenceChecker::new().check(&h).expect("checked");
        assert_eq!(v.validity, Validity::Valid, "{v:?}");
        let mut one = SIBLING_HISTORY[..4].to_vec();
        one.extend([
            r#"{"process":2,"type":"invoke","f":"read","key":1,"value":null}"#,
            r#"{"process":2,"type":"ok","f":"read","key":1,"value":2}"#,
        ]);
        let h = parse(&one.join("\n"), "test", None).expect("history");
        let v = CausalChecker::new(Model::Causal).check(&h).expect("checked");
        assert_eq!(v.validity, Validity::Valid, "{v:?}");
    }
}
