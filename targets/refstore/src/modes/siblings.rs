//! Sibling versions (`--resolution siblings`, quorum mode only): concurrent writes of a key
//! are all kept and returned, and the client merges them (Riak's `allow_mult`, Dynamo's
//! shopping cart).
//!
//! Every write gets a unique *dot* (the coordinating node and its next sequence number) and
//! carries the *context* its client last read ([`Context`]): the dots of the versions it
//! saw and of everything those superseded. A version is superseded, and dropped, as soon as
//! a version whose context holds its dot is present; every other version stays, so a key
//! holds the versions no write has yet seen together: its *siblings*. A write without a
//! context (a blind write) supersedes nothing; a read returns every sibling and the context
//! that covers them all.
//!
//! Replicas merge sibling sets by [`SiblingSet::join`]: the union of the versions, less
//! those some present version's context covers. Contexts are transitively closed (a write's
//! context includes the contexts of what it read), so "covers" is a partial order by
//! causality and the join keeps exactly the maximal versions of everything either side saw:
//! it is commutative, associative and idempotent, whatever order read repair, hinted
//! handoff and anti-entropy deliver versions in, and a stale copy of a superseded version
//! never comes back.
//!
//! Contexts are exact sets of dots, not the per-node maxima of a version vector: a node's
//! sequence numbers run across every key and a coordinator need not replicate the key it
//! writes, so "everything up to n from node c" would claim writes the client never read and
//! silently drop them (the problem dotted version vectors solve by making the coordinator a
//! replica). The price is a context that grows with the key's history, which a test run's
//! few hundred writes per key keep small.
//!
//! A core stores a sibling set as its JSON next to a [`Version`] that is the set's
//! fingerprint, as crdt states are (`crdt.rs`): digests compare fingerprints and any
//! difference is repaired both ways by joining.

use crate::modes::lww::Version;
use crate::types::{Context, Key, NodeId, OpError, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One version of a key: its value, its dot, and what it supersedes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sibling {
    /// The node that coordinated the write.
    pub node: NodeId,
    /// That node's sequence number for the write (unique per node, across keys).
    pub seq: u64,
    /// The value written.
    pub value: Value,
    /// The versions this one supersedes: the context its client read.
    #[serde(default, skip_serializing_if = "Context::is_empty")]
    pub replaces: Context,
}

/// A key's concurrent versions, sorted by dot, none superseded by another.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SiblingSet {
    /// The versions, in dot order.
    #[serde(default)]
    versions: Vec<Sibling>,
}

impl SiblingSet {
    /// A set of one new version.
    pub fn single(node: NodeId, seq: u64, value: Value, replaces: Context) -> SiblingSet {
        SiblingSet { versions: vec![Sibling { node, seq, value, replaces }] }
    }

    /// Reads a stored set.
    pub fn from_json(key: &Key, v: &Value) -> Result<SiblingSet, OpError> {
        serde_json::from_value(v.clone())
            .map_err(|e| OpError::Internal(format!("key {key} holds {v}, not a sibling set: {e}")))
    }

    /// The stored form.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// A stable hash of the canonical JSON, as a [`Version`] whose node is 0, which no node
    /// has (as `crdt::State::fingerprint`).
    pub fn fingerprint(&self) -> Version {
        let text = serde_json::to_string(self).unwrap_or_default();
        let h = crate::modes::quorum::hash64(text.as_bytes());
        Version { time: i64::from_ne_bytes(h.to_ne_bytes()), node: 0 }
    }

    /// Merges `other` in: the union of both sides' versions, less those a present version
    /// supersedes. Returns whether anything changed.
    pub fn join(&mut self, other: &SiblingSet) -> bool {
        let mut all: BTreeMap<(NodeId, u64), Sibling> =
            self.versions.iter().map(|s| ((s.node, s.seq), s.clone())).collect();
        for s in &other.versions {
            all.entry((s.node, s.seq)).or_insert_with(|| s.clone());
        }
        let mut covered = Context::default();
        for s in all.values() {
            covered.extend(&s.replaces);
        }
        all.retain(|(node, seq), _| !covered.contains(*node, *seq));
        let joined: Vec<Sibling> = all.into_values().collect();
        let changed = joined != self.versions;
        self.versions = joined;
        changed
    }

    /// The siblings' values, in dot order.
    pub fn values(&self) -> Vec<Value> {
        self.versions.iter().map(|s| s.value.clone()).collect()
    }

    /// The context a read of this set gives its client: every sibling's dot and everything
    /// each supersedes, so a write passing it supersedes them all.
    pub fn context(&self) -> Context {
        let mut c = Context::default();
        for s in &self.versions {
            c.extend(&s.replaces);
            c.insert(s.node, s.seq);
        }
        c
    }

    /// The highest sequence number `node` used in this set (0 if none).
    pub fn max_seq_of(&self, node: NodeId) -> u64 {
        let own = self.versions.iter().filter(|s| s.node == node).map(|s| s.seq);
        let seen = self.versions.iter().filter_map(|s| s.replaces.0.get(&node)?.last().copied());
        own.chain(seen).max().unwrap_or(0)
    }

    /// The list an append of `element` writes: the union of the siblings' lists (each
    /// element once, in the order the siblings first show it) with `element` last. An append
    /// is a read-modify-write done by the coordinator, which, as any client under siblings
    /// must, merges what it read before writing.
    pub fn appended(&self, key: &Key, element: &Value) -> Result<Value, OpError> {
        let mut out: Vec<Value> = Vec::new();
        for s in &self.versions {
            match &s.value {
                Value::Null => {}
                Value::Array(items) => {
                    for i in items {
                        if !out.contains(i) {
                            out.push(i.clone());
                        }
                    }
                }
                other => {
                    return Err(OpError::BadRequest(format!(
                        "cannot append to key {key}: a sibling holds {other}, not a list"
                    )));
                }
            }
        }
        out.push(element.clone());
        Ok(Value::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k() -> Key {
        Key::Int(1)
    }

    #[test]
    fn a_write_that_read_a_version_supersedes_it_and_a_blind_one_is_kept_beside_it() {
        let mut held = SiblingSet::single(1, 5, json!("a"), Context::default());
        let read = held.context();
        assert!(read.contains(1, 5));
        // A write that read "a" and a concurrent blind write from the same coordinator.
        let after = SiblingSet::single(2, 9, json!("b"), read);
        let blind = SiblingSet::single(1, 6, json!("c"), Context::default());
        let mut other = held.clone();
        assert!(held.join(&after) && held.join(&blind));
        assert!(other.join(&blind) && other.join(&after), "any order");
        assert_eq!(held, other, "joins commute");
        assert_eq!(held.values(), vec![json!("c"), json!("b")], "\"a\" superseded, dot order");
        assert!(!held.join(&SiblingSet::single(1, 5, json!("a"), Context::default())), "stale");
        // A write that read both siblings supersedes both, and what they superseded.
        let merged = SiblingSet::single(3, 1, json!("bc"), held.context());
        assert!(held.join(&merged));
        assert_eq!(held.values(), vec![json!("bc")]);
        assert!(held.context().contains(1, 5), "contexts are transitive");
        assert_eq!(held.max_seq_of(1), 6);
        assert_eq!(SiblingSet::from_json(&k(), &held.to_json()), Ok(held.clone()));
        assert_ne!(held.fingerprint(), other.fingerprint());
    }

    #[test]
    fn an_append_writes_the_union_of_the_siblings_lists_and_refuses_a_non_list() {
        let mut s = SiblingSet::single(1, 1, json!([1, 2]), Context::default());
        s.join(&SiblingSet::single(2, 1, json!([1, 3]), Context::default()));
        assert_eq!(s.appended(&k(), &json!(4)), Ok(json!([1, 2, 3, 4])));
        s.join(&SiblingSet::single(3, 1, json!("x"), Context::default()));
        assert!(matches!(s.appended(&k(), &json!(4)), Err(OpError::BadRequest(_))));
        assert_eq!(SiblingSet::default().appended(&k(), &json!(1)), Ok(json!([1])));
        let bad = SiblingSet::from_json(&k(), &json!("plain")).expect_err("not a set");
        assert!(matches!(bad, OpError::Internal(_)));
    }
}
