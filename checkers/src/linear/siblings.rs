//! Register reads that returned several sibling versions at once.
//!
//! A store that keeps concurrent writes as siblings (Riak's `allow_mult`,
//! refstore's `--resolution siblings`) answers a read with every version it
//! holds; faultline's clients record such a read as the *set* of the values
//! (docs/history-format.md). A register holds one value at a time, so no
//! order of the operations explains a read of two: each such read is an
//! anomaly of its own kind, `sibling-read`, with the read as evidence, and
//! the checker never picks one of the values to search with. The search
//! then judges the rest of the history without those reads (a sibling read
//! says which writes were concurrent, not which one a register would hold).
//!
//! A read whose set some write wrote (a register whose values are sets) is
//! an ordinary read, not a sibling read.

use std::collections::BTreeSet;

use serde_json::json;

use crate::error::CheckError;
use crate::history::{History, OpType, Process};
use crate::value::Value;
use crate::verdict::{Anomaly, Validity, Verdict};

/// The function names a register read goes by (as `RegisterKind` reads them).
const READS: [&str; 4] = ["read", "r", "get", "final-read"];

/// The sibling reads of a register history.
#[derive(Default)]
pub(super) struct SiblingReads {
    /// The distinct sets those reads returned, which the search leaves out.
    pub values: Vec<Value>,
    /// One `sibling-read` anomaly per read.
    pub anomalies: Vec<Anomaly>,
}

/// Finds every ok read whose value is a set of two or more values that no
/// write (nor the initial value) wrote.
pub(super) fn find(history: &History, init: &Value) -> Result<SiblingReads, CheckError> {
    let ops = history.ops();
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
    let mut out = SiblingReads::default();
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
                super::line(history, pair.invoke),
                super::line(history, c),
            ),
            ops: vec![inv.index, done.index],
            data: json!({ "key": key, "siblings": listed }),
        });
    }
    Ok(out)
}

/// Folds the sibling reads into the search's verdict: any one makes it
/// invalid, listed first.
pub(super) fn merge(v: &mut Verdict, found: SiblingReads) {
    let n = found.anomalies.len();
    if n == 0 {
        return;
    }
    v.summary = format!(
        "not linearizable: {n} read{} returned several sibling versions at once; the rest: {}",
        if n == 1 { "" } else { "s" },
        v.summary
    );
    v.validity = Validity::Invalid;
    // An undecided search of the rest does not make the verdict unknown:
    // the sibling reads alone refute linearizability.
    if let Some(why) = v.unknown_reason.take() {
        v.notes.push(format!("the search of the other operations did not finish: {why}"));
    }
    if let Some(d) = v.details.as_object_mut() {
        d.insert("sibling_reads".into(), json!(n));
    }
    let mut anomalies = found.anomalies;
    anomalies.append(&mut v.anomalies);
    v.anomalies = anomalies;
}

#[cfg(test)]
mod tests {
    use crate::formats::parse;
    use crate::linear::{LinearChecker, ModelName};
    use crate::verdict::{Checker, Validity};

    fn check(lines: &[&str]) -> crate::verdict::Verdict {
        let h = parse(&lines.join("\n"), "test", None).expect("history");
        LinearChecker::new(ModelName::Register).check(&h).expect("checked")
    }

    const WRITES: [&str; 4] = [
        r#"{"process":0,"type":"invoke","f":"write","key":1,"value":1}"#,
        r#"{"process":1,"type":"invoke","f":"write","key":1,"value":2}"#,
        r#"{"process":0,"type":"ok","f":"write","key":1,"value":1}"#,
        r#"{"process":1,"type":"ok","f":"write","key":1,"value":2}"#,
    ];

    #[test]
    fn a_read_of_two_siblings_is_named_with_the_read_as_evidence_never_picked_from() {
        let mut lines = WRITES.to_vec();
        lines.extend([
            r#"{"process":2,"type":"invoke","f":"read","key":1,"value":null}"#,
            r#"{"process":2,"type":"ok","f":"read","key":1,"value":{"$set":[1,2]}}"#,
            r#"{"process":2,"type":"invoke","f":"read","key":1,"value":null}"#,
            r#"{"process":2,"type":"ok","f":"read","key":1,"value":2}"#,
        ]);
        let v = check(&lines);
        assert_eq!(v.validity, Validity::Invalid, "{}", v.summary);
        assert_eq!(v.anomalies.len(), 1, "{:?}", v.anomalies);
        let a = &v.anomalies[0];
        assert_eq!(a.kind, "sibling-read");
        assert_eq!(a.ops, vec![4, 5], "the read's invocation and completion");
        assert!(a.explanation.contains("2 sibling versions at once (1, 2)"), "{}", a.explanation);
        assert!(
            v.summary.starts_with("not linearizable: 1 read returned several"),
            "{}",
            v.summary
        );
        assert_eq!(v.details["sibling_reads"], 1);
    }

    #[test]
    fn without_sibling_reads_the_verdict_is_the_searchs_and_a_written_set_is_a_plain_value() {
        let mut lines = WRITES.to_vec();
        lines.extend([
            r#"{"process":2,"type":"invoke","f":"read","key":1,"value":null}"#,
            r#"{"process":2,"type":"ok","f":"read","key":1,"value":2}"#,
        ]);
        assert_eq!(check(&lines).validity, Validity::Valid);
        let set_register = [
            r#"{"process":0,"type":"invoke","f":"write","key":1,"value":{"$set":[1,2]}}"#,
            r#"{"process":0,"type":"ok","f":"write","key":1,"value":{"$set":[1,2]}}"#,
            r#"{"process":1,"type":"invoke","f":"read","key":1,"value":null}"#,
            r#"{"process":1,"type":"ok","f":"read","key":1,"value":{"$set":[1,2]}}"#,
        ];
        let v = check(&set_register);
        assert_eq!(v.validity, Validity::Valid, "a set that was written is one value: {v:?}");
    }
}
