//! Plain-language explanations: naming transactions T1, T2... in the order
//! an explanation mentions them, a legend that says what each one did, and
//! the structured evidence the HTML pages draw from.

use serde_json::json;

use super::prep::{Mop, MopKind, Prepared, Status};
use crate::verdict::Anomaly;

/// Short names for the transactions an explanation mentions.
#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    ids: Vec<u32>,
}

impl Names {
    /// The name of transaction `t` ("T1", "T2"...), giving it the next
    /// number the first time it is mentioned.
    pub fn of(&mut self, t: u32) -> String {
        let i = match self.ids.iter().position(|&x| x == t) {
            Some(i) => i,
            None => {
                self.ids.push(t);
                self.ids.len() - 1
            }
        };
        format!("T{}", i + 1)
    }

    /// The transactions named so far, in naming order.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}

/// A list read for reading: lists longer than a dozen elements keep their
/// first two and last six elements, since what matters in an append
/// history is nearly always at the end.
pub(crate) fn list_text(prep: &Prepared<'_>, codes: &[u32]) -> String {
    let show = |c: &[u32]| c.iter().map(|&x| prep.text(x)).collect::<Vec<_>>().join(" ");
    if codes.len() > 12 {
        format!(
            "[{} ... {}] ({} elements)",
            show(&codes[..2]),
            show(&codes[codes.len() - 6..]),
            codes.len()
        )
    } else {
        format!("[{}]", show(codes))
    }
}

/// What a micro-op read or wrote, as text.
pub(crate) fn mop_value(prep: &Prepared<'_>, m: &Mop) -> String {
    match m.kind {
        MopKind::Read if prep.txns[m.txn as usize].status != Status::Ok => "nil".into(),
        MopKind::Read if prep.lists => list_text(prep, prep.read_elems(m)),
        _ => prep.text(m.val),
    }
}

/// One micro-op as Elle writes it, with long reads shortened.
pub(crate) fn mop_text(prep: &Prepared<'_>, m: &Mop) -> String {
    let f = match m.kind {
        MopKind::Append => "append",
        MopKind::Read => "r",
        MopKind::Write => "w",
    };
    format!("[:{f} {} {}]", prep.key(m.key), mop_value(prep, m))
}

/// A transaction's micro-ops as text: `[[:append 5 3] [:r 6 [1 2]]]`.
pub(crate) fn txn_text(prep: &Prepared<'_>, t: u32) -> String {
    let parts: Vec<String> = prep.txn_mops(t).iter().map(|m| mop_text(prep, m)).collect();
    format!("[{}]", parts.join(" "))
}

/// One line per named transaction: which op it is and what it did.
pub(crate) fn legend(prep: &Prepared<'_>, names: &Names) -> String {
    let mut out = String::new();
    for (i, &t) in names.ids().iter().enumerate() {
        let txn = &prep.txns[t as usize];
        out.push_str(&format!(
            "T{} = op {} (process {}, {}): {}\n",
            i + 1,
            prep.op_index(t),
            txn.process,
            txn.status.as_str(),
            txn_text(prep, t)
        ));
    }
    out
}

/// The transactions of an anomaly as JSON, for the HTML pages and `--json`.
pub(crate) fn txns_json(prep: &Prepared<'_>, names: &Names) -> serde_json::Value {
    let list: Vec<serde_json::Value> = names
        .ids()
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let txn = &prep.txns[t as usize];
            let mops: Vec<String> = prep.txn_mops(t).iter().map(|m| mop_text(prep, m)).collect();
            json!({
                "name": format!("T{}", i + 1),
                "op": prep.op_index(t),
                "process": txn.process,
                "type": txn.status.as_str(),
                "mops": mops,
            })
        })
        .collect();
    serde_json::Value::Array(list)
}

/// Why a history breaks the premise both workloads rest on, that a value
/// is written once per key (so a read names its write): `val` was `verb`
/// (`appended`, `written`) to key `key` by transactions `first` and
/// `second`.
pub(crate) fn duplicate_value(
    prep: &Prepared<'_>,
    (val, key): (u32, u32),
    (first, second): (u32, u32),
    verb: &str,
    workload: &str,
) -> String {
    format!(
        "value {} was {verb} to key {} more than once (ops {} and {}); \
         {workload} needs every {verb} value to be unique per key",
        prep.text(val),
        prep.key(key),
        prep.op_index(first),
        prep.op_index(second)
    )
}

/// Lost update: the committed transactions `ts` all read key `k` = `read`
/// and then `did` the key (`appended to`, `wrote`), so whichever committed
/// last `lost` what the others did.
pub(crate) fn lost_update(
    prep: &Prepared<'_>,
    k: u32,
    ts: &[u32],
    read: String,
    did: &str,
    lost: &str,
) -> Finding {
    let mut names = Names::default();
    let list: Vec<String> = ts.iter().map(|&t| names.of(t)).collect();
    let (who, all) = match list.as_slice() {
        [a, b] => (format!("{a} and {b}"), "both"),
        _ => (list.join(", "), "all"),
    };
    Finding {
        kind: "lost-update",
        body: format!(
            "{who} {all} read key {k} = {read}, then {did} key {k}, and committed. \
             Whichever committed last {lost}: an update was lost.\n",
            k = prep.key(k)
        ),
        names,
        extra: json!({"key": prep.key(k).to_string(), "read": read}),
    }
}

/// An anomaly found outside the cycle search, before it is written out.
pub(crate) struct Finding {
    /// The anomaly's name (`G1a`, `internal`...).
    pub kind: &'static str,
    /// The transactions the explanation names.
    pub names: Names,
    /// The explanation's sentences, using the names.
    pub body: String,
    /// Extra structured evidence (key, values...).
    pub extra: serde_json::Value,
}

impl Finding {
    /// The finding as a verdict anomaly: legend, then the sentences.
    pub fn into_anomaly(self, prep: &Prepared<'_>) -> Anomaly {
        let mut data = json!({ "txns": txns_json(prep, &self.names) });
        if let (Some(d), serde_json::Value::Object(extra)) = (data.as_object_mut(), self.extra) {
            d.extend(extra);
        }
        Anomaly {
            kind: self.kind.to_owned(),
            explanation: format!("{}{}", legend(prep, &self.names), self.body),
            ops: self.names.ids().iter().map(|&t| prep.op_index(t)).collect(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats;

    const HISTORY: &str = "\
        {:index 0, :process 0, :type :invoke, :f :txn, :value [[:r :x nil] [:append :x 1] [:append :x 2]]}\n\
        {:index 1, :process 1, :type :invoke, :f :txn, :value [[:r :x nil] [:append :x 3]]}\n\
        {:index 2, :process 0, :type :ok, :f :txn, :value [[:r :x []] [:append :x 1] [:append :x 2]]}\n\
        {:index 3, :process 1, :type :ok, :f :txn, :value [[:r :x []] [:append :x 3]]}\n";

    fn prepared(h: &crate::History) -> Prepared<'_> {
        Prepared::new(h, "list-append", &[MopKind::Append, MopKind::Read]).expect("prepared")
    }

    #[test]
    fn both_workloads_word_a_duplicate_and_a_lost_update_alike() {
        let h = formats::parse(HISTORY, "test", None).expect("a readable history");
        let prep = prepared(&h);
        let x = prep.txn_mops(0)[1];
        assert_eq!(
            duplicate_value(&prep, (x.val, x.key), (0, 1), "written", "rw-register"),
            "value 1 was written to key :x more than once (ops 2 and 3); rw-register needs \
             every written value to be unique per key"
        );
        let f = lost_update(&prep, x.key, &[0, 1], "[]".into(), "appended to", "won");
        assert_eq!(f.kind, "lost-update");
        assert_eq!(
            f.body,
            "T1 and T2 both read key :x = [], then appended to key :x, and committed. Whichever \
             committed last won: an update was lost.\n"
        );
        assert_eq!(f.names.ids(), &[0, 1]);
        let three = lost_update(&prep, x.key, &[1, 0, 1], "[]".into(), "wrote", "won");
        assert!(three.body.starts_with("T1, T2, T1 all read key :x"), "{}", three.body);
    }
}
