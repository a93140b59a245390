//! Each node's final state of an object, and the divergence between nodes
//! whose final states differ.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::read::{Object, Read};
use super::{Kind, elements, short, state};
use crate::history::History;
use crate::value::Value;
use crate::verdict::Anomaly;

/// The final phase of one object: each node's last final read, and the
/// state it showed.
pub(super) struct Finals<'a> {
    /// The last final read of each node.
    pub reads: BTreeMap<&'a str, &'a Read>,
    /// Each node's final state, normalised so that equal states compare equal.
    pub states: BTreeMap<&'a str, Value>,
}

impl<'a> Finals<'a> {
    /// The final phase of `obj`, or `None` when no node read it finally.
    pub fn of(kind: Kind, obj: &'a Object) -> Option<Finals<'a>> {
        let mut reads: BTreeMap<&str, &Read> = BTreeMap::new();
        for r in obj.reads.iter().filter(|r| r.is_final) {
            if reads.get(r.node.as_str()).is_none_or(|f| f.complete < r.complete) {
                reads.insert(&r.node, r);
            }
        }
        if reads.is_empty() {
            return None;
        }
        let states = reads.iter().map(|(n, r)| (*n, state(kind, &r.value))).collect();
        Some(Finals { reads, states })
    }

    /// The distinct final states.
    pub fn distinct(&self) -> BTreeSet<&Value> {
        self.states.values().collect()
    }

    /// The op index of `node`'s final read.
    pub fn op(&self, history: &History, node: &str) -> u64 {
        history.ops()[self.reads[node].complete].index
    }

    /// `every node`, or the nodes named.
    pub fn nodes_text(&self, nodes: &[&str]) -> String {
        if nodes.len() == self.states.len() { "every node".to_owned() } else { nodes.join(", ") }
    }
}

/// The divergence anomaly, when the nodes' final states differ.
pub(super) fn divergence(
    kind: Kind,
    history: &History,
    finals: &Finals<'_>,
    label: &str,
    key: &Value,
) -> Option<Anomaly> {
    let states = &finals.states;
    if finals.distinct().len() < 2 {
        return None;
    }
    let lines: Vec<String> = states
        .iter()
        .map(|(n, v)| format!("  {n}: {} (op {})", short(kind, v), finals.op(history, n)))
        .collect();
    let diff = match kind {
        Kind::Set | Kind::List => {
            let union: BTreeSet<&Value> = states.values().flat_map(elements).collect();
            let partial: Vec<String> = union
                .iter()
                .filter_map(|e| {
                    let missing: Vec<&str> = states
                        .iter()
                        .filter(|(_, v)| !elements(v).contains(e))
                        .map(|(n, _)| *n)
                        .collect();
                    (!missing.is_empty()).then(|| format!("{e} missing on {}", missing.join(", ")))
                })
                .take(12)
                .collect();
            format!("\nElements not on every node: {}.", partial.join("; "))
        }
        _ => String::new(),
    };
    Some(Anomaly {
        kind: "divergence".into(),
        explanation: format!(
            "After the final phase the nodes disagree on the state{label}:\n{}{diff}",
            lines.join("\n")
        ),
        ops: finals.reads.keys().map(|n| finals.op(history, n)).collect(),
        data: json!({
            "key": key,
            "nodes": states.iter().map(|(n, v)| (n.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType, Process};

    fn final_read(invoke: usize, node: &str, value: Value) -> Read {
        Read {
            invoke,
            complete: invoke + 1,
            node: node.into(),
            value,
            is_final: true,
            time_invoke: None,
            time_complete: None,
        }
    }

    #[test]
    fn the_last_final_read_of_each_node_counts() {
        let ints = |xs: &[i64]| Value::set(xs.iter().map(|&x| Value::Int(x)).collect());
        let obj = Object {
            writes: Vec::new(),
            reads: vec![
                final_read(0, "n1", ints(&[1])),
                final_read(2, "n1", ints(&[1, 2])),
                final_read(4, "n2", ints(&[2, 1])),
            ],
        };
        let f = Finals::of(Kind::Set, &obj).expect("final reads");
        assert_eq!(f.reads["n1"].complete, 3);
        assert_eq!(f.distinct().len(), 1, "sets compare as sets");
        let ops: Vec<Op> = (0..6)
            .map(|i| {
                let kind = if i % 2 == 0 { OpType::Invoke } else { OpType::Ok };
                Op::new(0, Process::Client(i / 2), kind, "final-read", Value::Nil)
            })
            .collect();
        let h = History::from_ops_renumbered(ops);
        assert!(divergence(Kind::Set, &h, &f, "", &Value::Nil).is_none());
    }

    #[test]
    fn differing_lists_diverge_and_name_the_missing_elements() {
        let list = |xs: &[i64]| Value::list(xs.iter().map(|&x| Value::Int(x)));
        let obj = Object {
            writes: Vec::new(),
            reads: vec![final_read(0, "n1", list(&[1, 2])), final_read(2, "n2", list(&[1]))],
        };
        let f = Finals::of(Kind::List, &obj).expect("final reads");
        let ops: Vec<Op> = (0..4)
            .map(|i| {
                let kind = if i % 2 == 0 { OpType::Invoke } else { OpType::Ok };
                Op::new(0, Process::Client(i / 2), kind, "final-read", Value::Nil)
            })
            .collect();
        let h = History::from_ops_renumbered(ops);
        let a = divergence(Kind::List, &h, &f, "", &Value::Nil).expect("diverged");
        assert!(
            a.explanation.ends_with("Elements not on every node: 2 missing on n2."),
            "{}",
            a.explanation
        );
        assert_eq!(a.ops, vec![1, 3]);
        assert_eq!(f.nodes_text(&["n2"]), "n2");
        assert_eq!(f.nodes_text(&["n1", "n2"]), "every node");
    }
}
