//! Linearizability's verdict on register reads that returned several
//! sibling versions at once (found by `crate::siblings`): any one makes the
//! verdict invalid, named `sibling-read`, with the read as evidence, and the
//! checker never picks one of the values to search with. The search then
//! judges the rest of the history without those reads (a sibling read says
//! which writes were concurrent, not which one a register would hold).

use serde_json::json;

use crate::siblings::SiblingReads;
use crate::verdict::{Validity, Verdict};

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
