//! Conflict resolution in the leaderless modes (`multi-leader`, `eventual`, `quorum`):
//! last-write-wins, or conflict-free replicated values (`--resolution crdt`).
//!
//! Under `crdt` a key's stored value is a [`State`], a join-semilattice: replicas merge by
//! [`State::join`] (commutative, associative, idempotent), so whatever order updates arrive
//! in, replicas that saw the same updates hold the same state, and nothing one replica
//! accepted is ever discarded by a merge:
//!
//! - an append (and a set's add, which faultline's client sends as an append) adds an element
//!   tagged with a unique [`Dot`]: the state is a list union. The API has no remove, so the
//!   add-wins set (OR-set) this is degenerates to a grow-only set of tagged elements; the
//!   list shows them in dot order, which puts an append after every element its replica had
//!   seen when it was made (its dot's time is one more than the highest there), and orders
//!   concurrent appends the same way on every replica (by time, then node, then sequence);
//! - an increment adds to the node's own entry of a PN-counter (one grow-only total of
//!   increments and one of decrements per node, merged by maximum, the value their
//!   difference).
//!
//! Registers have no conflict-free merge that keeps every acknowledged write and still reads
//! as one value, so under `crdt` writes and compare-and-sets are refused (`bad-request`,
//! definite): a client that needs a register must pick `lww`. A key that got list appends on
//! one replica and increments on another concurrently holds both; reading it is refused with
//! an error saying so rather than showing one half.
//!
//! The cores keep each key's state as its JSON value next to a [`Version`] that, under
//! `crdt`, is the state's fingerprint (a stable hash of its canonical JSON): digests compare
//! fingerprints, and any difference is repaired both ways by joining.

use crate::kv::execute;
use crate::modes::lww::{Version, Versioned};
use crate::modes::siblings::SiblingSet;
use crate::types::{ClientOp, Key, MicroOp, NodeId, OpError, Reply, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How a leaderless mode resolves concurrent updates of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Resolution {
    /// The value with the highest version wins; the others are lost.
    #[default]
    Lww,
    /// Appends and adds merge as a list union, increments as a PN-counter; registers are
    /// refused.
    Crdt,
    /// Concurrent versions are all kept and read back; the client merges them (quorum mode
    /// only, see `siblings.rs`).
    Siblings,
}

/// A stored value that merges by join: a crdt [`State`] or a [`SiblingSet`].
trait Lattice: Sized + Default {
    fn from_json(key: &Key, v: &Value) -> Result<Self, OpError>;
    fn to_json(&self) -> Value;
    fn fingerprint(&self) -> Version;
    fn join(&mut self, other: &Self) -> bool;
}

impl Lattice for State {
    fn from_json(key: &Key, v: &Value) -> Result<Self, OpError> {
        State::from_json(key, v)
    }
    fn to_json(&self) -> Value {
        State::to_json(self)
    }
    fn fingerprint(&self) -> Version {
        State::fingerprint(self)
    }
    fn join(&mut self, other: &Self) -> bool {
        State::join(self, other)
    }
}

impl Lattice for SiblingSet {
    fn from_json(key: &Key, v: &Value) -> Result<Self, OpError> {
        SiblingSet::from_json(key, v)
    }
    fn to_json(&self) -> Value {
        SiblingSet::to_json(self)
    }
    fn fingerprint(&self) -> Version {
        SiblingSet::fingerprint(self)
    }
    fn join(&mut self, other: &Self) -> bool {
        SiblingSet::join(self, other)
    }
}

/// What a replica holding `held` keeps when `incoming` arrives, under a join: the joined
/// value and its fingerprint, or `None` when `incoming` adds nothing.
fn joined<L: Lattice>(
    held: Option<&(Value, Version)>,
    incoming: &Versioned,
) -> Result<Option<(Value, Version)>, OpError> {
    let theirs = L::from_json(&incoming.key, &incoming.value)?;
    let Some((v, _)) = held else {
        return Ok(Some((theirs.to_json(), theirs.fingerprint())));
    };
    let mut ours = L::from_json(&incoming.key, v)?;
    Ok(ours.join(&theirs).then(|| (ours.to_json(), ours.fingerprint())))
}

impl Resolution {
    /// The name used on the command line and in the status.
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Lww => "lww",
            Resolution::Crdt => "crdt",
            Resolution::Siblings => "siblings",
        }
    }

    /// Whether versions are joined (crdt states, sibling sets) rather than ordered.
    pub fn joins(self) -> bool {
        self != Resolution::Lww
    }

    /// A key's stored value as a client would read it (for tests): lww stores the value
    /// itself, crdt a state whose value is computed, siblings a set read as the list of its
    /// values; a state that cannot be read shows as its error's text.
    pub fn as_read(self, key: &Key, stored: Option<&Value>) -> Value {
        match (self, stored) {
            (_, None) => Value::Null,
            (Resolution::Lww, Some(v)) => v.clone(),
            (Resolution::Crdt, Some(v)) => State::from_json(key, v)
                .and_then(|s| s.value(key))
                .unwrap_or_else(|e| Value::from(e.to_string())),
            (Resolution::Siblings, Some(v)) => SiblingSet::from_json(key, v)
                .map(|s| Value::Array(s.values()))
                .unwrap_or_else(|e| Value::from(e.to_string())),
        }
    }

    /// What a replica keeps when `incoming` arrives where it holds `held`: the new value and
    /// version, or `None` when nothing changes (an older lww version, or a state already
    /// contained in the held one). A crdt or siblings value of the wrong shape (a log written
    /// under lww) is refused rather than guessed at.
    pub fn merged(
        self,
        held: Option<&(Value, Version)>,
        incoming: &Versioned,
    ) -> Result<Option<(Value, Version)>, OpError> {
        match self {
            Resolution::Lww => Ok(held
                .is_none_or(|(_, v)| *v < incoming.version)
                .then(|| (incoming.value.clone(), incoming.version))),
            Resolution::Crdt => joined::<State>(held, incoming),
            Resolution::Siblings => joined::<SiblingSet>(held, incoming),
        }
    }

    /// Whether a replica holding `ours` should send it to one holding `theirs` (anti-entropy):
    /// lww pushes only what is newer; a join pushes whatever differs, since the join of two
    /// different states is (in general) neither of them.
    pub fn should_send(self, ours: Version, theirs: Option<Version>) -> bool {
        match self {
            Resolution::Lww => theirs.is_none_or(|t| t < ours),
            Resolution::Crdt | Resolution::Siblings => theirs != Some(ours),
        }
    }

    /// Whether a replica known to hold `have` holds at least `want`: lww, any version not
    /// older; a join, exactly that state (fingerprints are not ordered).
    pub fn covers(self, have: Version, want: Version) -> bool {
        match self {
            Resolution::Lww => have >= want,
            Resolution::Crdt | Resolution::Siblings => have == want,
        }
    }

    /// What several replicas' answers resolve to: the newest under lww, the join otherwise.
    pub fn combine<'a>(
        self,
        key: &Key,
        found: impl Iterator<Item = &'a (Value, Version)>,
    ) -> Result<Option<(Value, Version)>, OpError> {
        match self {
            Resolution::Lww => Ok(found.max_by_key(|(_, v)| *v).cloned()),
            Resolution::Crdt | Resolution::Siblings => {
                let mut out: Option<(Value, Version)> = None;
                for f in found {
                    let key_entry =
                        Versioned { key: key.clone(), value: f.0.clone(), version: f.1 };
                    if let Some(m) = self.merged(out.as_ref(), &key_entry)? {
                        out = Some(m);
                    }
                }
                Ok(out)
            }
        }
    }
}

/// The identity of one appended element: unique, and ordered so that an append sorts after
/// every element its replica had seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// One more than the highest time in the key's state where the append was made.
    pub time: u64,
    /// The node that made the append.
    pub node: NodeId,
    /// That node's sequence number, which keeps two appends it coordinated at once apart.
    pub seq: u64,
}

/// One node's own entry of a key's PN-counter: the totals of the increments and of the
/// decrements it made. A quorum coordinator keeps its entry per key in its log (see
/// `quorum.rs`), since the replicas a read reaches need not hold its latest one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// The sum of the node's positive increments.
    pub pos: u64,
    /// The sum of its negative increments, as a positive number.
    pub neg: u64,
}

impl Slot {
    /// The componentwise maximum: the join of two observations of one node's entry.
    pub fn max(self, other: Slot) -> Slot {
        Slot { pos: self.pos.max(other.pos), neg: self.neg.max(other.neg) }
    }
}

/// A key's conflict-free state: a list union and a PN-counter (one of them empty unless two
/// replicas used the key both ways concurrently).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Appended elements, sorted by dot, each dot once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    elems: Vec<(Dot, Value)>,
    /// Per node, the sum of its positive increments.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pos: BTreeMap<NodeId, u64>,
    /// Per node, the sum of its negative increments (as a positive number).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    neg: BTreeMap<NodeId, u64>,
}

impl State {
    /// Reads a stored state.
    pub fn from_json(key: &Key, v: &Value) -> Result<State, OpError> {
        serde_json::from_value(v.clone())
            .map_err(|e| OpError::Internal(format!("key {key} holds {v}, not a crdt state: {e}")))
    }

    /// The stored form.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// A stable hash of the canonical JSON (vectors sorted, maps ordered), as a [`Version`]
    /// whose node is 0, which no node has.
    pub fn fingerprint(&self) -> Version {
        let text = serde_json::to_string(self).unwrap_or_default();
        let h = crate::modes::quorum::hash64(text.as_bytes());
        Version { time: i64::from_ne_bytes(h.to_ne_bytes()), node: 0 }
    }

    /// Merges `other` in; returns whether anything changed.
    pub fn join(&mut self, other: &State) -> bool {
        let mut changed = false;
        if !other.elems.is_empty() {
            let mut all: BTreeMap<Dot, Value> =
                std::mem::take(&mut self.elems).into_iter().collect();
            let before = all.len();
            for (d, v) in &other.elems {
                all.entry(*d).or_insert_with(|| v.clone());
            }
            changed |= all.len() != before;
            self.elems = all.into_iter().collect();
        }
        for (mine, theirs) in [(&mut self.pos, &other.pos), (&mut self.neg, &other.neg)] {
            for (node, n) in theirs {
                let e = mine.entry(*node).or_insert(0);
                if *n > *e {
                    *e = *n;
                    changed = true;
                }
            }
        }
        changed
    }

    /// The value a client reads: the list in dot order, the counter's sum, or `null`.
    pub fn value(&self, key: &Key) -> Result<Value, OpError> {
        let counted = !self.pos.is_empty() || !self.neg.is_empty();
        match (self.elems.is_empty(), counted) {
            (true, false) => Ok(Value::Null),
            (false, false) => Ok(Value::Array(self.elems.iter().map(|(_, v)| v.clone()).collect())),
            (true, true) => {
                let sum =
                    |m: &BTreeMap<NodeId, u64>| m.values().map(|n| i128::from(*n)).sum::<i128>();
                let total: i128 = sum(&self.pos) - sum(&self.neg);
                i64::try_from(total).map(Value::from).map_err(|_| {
                    OpError::Internal(format!("the counter at key {key} overflows: {total}"))
                })
            }
            (false, true) => Err(OpError::BadRequest(format!(
                "key {key} got list appends and counter increments concurrently on different \
                 nodes; crdt resolution keeps both but cannot show them as one value"
            ))),
        }
    }

    /// Appends `element` as made by `node` with sequence number `seq`.
    fn append(&mut self, key: &Key, node: NodeId, seq: u64, element: Value) -> Result<(), OpError> {
        if !self.pos.is_empty() || !self.neg.is_empty() {
            return Err(OpError::BadRequest(format!(
                "cannot append to key {key}: it holds a counter"
            )));
        }
        let time = self.elems.iter().map(|(d, _)| d.time).max().map_or(1, |t| t + 1);
        // The new dot's time is above every dot here, so it sorts last.
        self.elems.push((Dot { time, node, seq }, element));
        Ok(())
    }

    /// Adds `delta` to `node`'s entry, refusing overflow and keys that hold a list.
    fn increment(&mut self, key: &Key, node: NodeId, delta: &Value) -> Result<(), OpError> {
        let bad = |why: String| OpError::BadRequest(format!("cannot increment key {key}: {why}"));
        if !self.elems.is_empty() {
            return Err(bad("it holds a list".into()));
        }
        let delta =
            delta.as_i64().ok_or_else(|| bad(format!("the delta {delta} is not an integer")))?;
        let now = self.value(key)?.as_i64().unwrap_or(0);
        now.checked_add(delta).ok_or_else(|| bad(format!("{now} + {delta} overflows")))?;
        let side = if delta >= 0 { &mut self.pos } else { &mut self.neg };
        let e = side.entry(node).or_insert(0);
        *e = e.checked_add(delta.unsigned_abs()).ok_or_else(|| bad("a total overflows".into()))?;
        Ok(())
    }

    /// Whether the state holds nothing (a key never written).
    pub fn is_empty(&self) -> bool {
        self.elems.is_empty() && self.pos.is_empty() && self.neg.is_empty()
    }

    /// `node`'s entry of the PN-counter (zeros when it has none).
    pub fn slot(&self, node: NodeId) -> Slot {
        let at = |m: &BTreeMap<NodeId, u64>| m.get(&node).copied().unwrap_or(0);
        Slot { pos: at(&self.pos), neg: at(&self.neg) }
    }

    /// Joins in `node`'s entry as `slot` (an entry is merged by maximum, so this is the join
    /// with a state holding only that entry). A zero total adds no entry, so a key that was
    /// never counted stays unread as a counter.
    pub fn raise(&mut self, node: NodeId, slot: Slot) {
        for (side, n) in [(&mut self.pos, slot.pos), (&mut self.neg, slot.neg)] {
            if n > 0 {
                let e = side.entry(node).or_insert(0);
                *e = (*e).max(n);
            }
        }
    }

    /// The highest sequence number `node` used in this state (0 if none).
    pub fn max_seq_of(&self, node: NodeId) -> u64 {
        self.elems.iter().filter(|(d, _)| d.node == node).map(|(d, _)| d.seq).max().unwrap_or(0)
    }
}

/// Why a register operation is refused under `crdt`.
fn register_refused(what: &str) -> OpError {
    OpError::BadRequest(format!(
        "{what} is refused under --resolution crdt: a register has no conflict-free merge that \
         keeps every acknowledged write; use appends, set adds and increments, or lww"
    ))
}

/// The outcome of executing one operation against conflict-free states.
#[derive(Clone, Debug, PartialEq)]
pub struct CrdtEffect {
    /// What the client is told.
    pub reply: Reply,
    /// Every key written, with its whole new state, in key order.
    pub writes: BTreeMap<Key, State>,
}

/// Executes `op` against the states `read` returns, as `node` with sequence numbers from
/// `seq` on (`seq` is advanced past those used). Nothing changes on error, so a transaction
/// is all-or-nothing on the replica that runs it, as under lww.
pub fn execute_crdt(
    op: &ClientOp,
    read: impl Fn(&Key) -> Result<State, OpError>,
    node: NodeId,
    seq: &mut u64,
) -> Result<CrdtEffect, OpError> {
    let mut writes: BTreeMap<Key, State> = BTreeMap::new();
    let mut next = *seq;
    let state = |writes: &BTreeMap<Key, State>, k: &Key| match writes.get(k) {
        Some(s) => Ok(s.clone()),
        None => read(k),
    };
    let mut append = |writes: &mut BTreeMap<Key, State>, k: &Key, v: &Value| {
        let mut s = state(writes, k)?;
        next += 1;
        s.append(k, node, next, v.clone())?;
        writes.insert(k.clone(), s);
        Ok::<(), OpError>(())
    };
    let reply = match op {
        ClientOp::Read { key } => Reply::Value(read(key)?.value(key)?),
        ClientOp::Write { .. } => return Err(register_refused("a write")),
        ClientOp::Cas { .. } => return Err(register_refused("a compare-and-set")),
        ClientOp::Put { .. } => return Err(crate::kv::context_refused()),
        ClientOp::Append { key, value } => {
            append(&mut writes, key, value)?;
            Reply::Done
        }
        ClientOp::Txn { ops } => {
            let mut out = Vec::with_capacity(ops.len());
            for micro in ops {
                match micro {
                    MicroOp::Read(k, _) => {
                        let v = state(&writes, k)?.value(k)?;
                        out.push(MicroOp::Read(k.clone(), v));
                    }
                    MicroOp::Append(k, v) => {
                        append(&mut writes, k, v)?;
                        out.push(micro.clone());
                    }
                    MicroOp::Inc(k, delta) => {
                        let mut s = state(&writes, k)?;
                        s.increment(k, node, delta)?;
                        writes.insert(k.clone(), s);
                        out.push(micro.clone());
                    }
                    MicroOp::Write(..) => return Err(register_refused("a write micro-op")),
                    MicroOp::Cas(..) => return Err(register_refused("a cas micro-op")),
                }
            }
            Reply::Txn(out)
        }
    };
    *seq = next;
    Ok(CrdtEffect { reply, writes })
}

/// Executes `op` under `resolution` against a core's stored `(value, version)` pairs: the
/// reply and the entries to merge (lww entries get `version`, crdt ones their fingerprint).
pub fn execute_resolved(
    resolution: Resolution,
    op: &ClientOp,
    stored: impl Fn(&Key) -> Option<(Value, Version)>,
    node: NodeId,
    seq: &mut u64,
    version: impl FnOnce() -> Version,
) -> Result<(Reply, Vec<Versioned>), OpError> {
    match resolution {
        Resolution::Lww => {
            let effect = execute(op, |k| stored(k).map_or(Value::Null, |(v, _)| v))?;
            let entries = if effect.writes.is_empty() {
                Vec::new()
            } else {
                let version = version();
                effect
                    .writes
                    .into_iter()
                    .map(|(key, value)| Versioned { key, value, version })
                    .collect()
            };
            Ok((effect.reply, entries))
        }
        Resolution::Crdt => {
            let read = |k: &Key| match stored(k) {
                Some((v, _)) => State::from_json(k, &v),
                None => Ok(State::default()),
            };
            let effect = execute_crdt(op, read, node, seq)?;
            let entries = effect
                .writes
                .into_iter()
                .map(|(key, s)| Versioned { key, value: s.to_json(), version: s.fingerprint() })
                .collect();
            Ok((effect.reply, entries))
        }
        // The node shell refuses siblings outside quorum mode (`Mode::serves`); this keeps a
        // core built by hand from serving it silently as lww.
        Resolution::Siblings => {
            Err(OpError::BadRequest("--resolution siblings is served by quorum mode only".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k() -> Key {
        Key::Int(1)
    }

    fn run(op: ClientOp, s: &State, node: NodeId, seq: &mut u64) -> Result<State, OpError> {
        let effect = execute_crdt(&op, |_| Ok(s.clone()), node, seq)?;
        Ok(effect.writes.get(&k()).cloned().unwrap_or_else(|| s.clone()))
    }

    fn append(v: i64) -> ClientOp {
        ClientOp::Append { key: k(), value: json!(v) }
    }

    #[test]
    fn concurrent_appends_are_all_kept_in_one_order_whichever_way_they_merge() {
        let base = run(append(0), &State::default(), 3, &mut 0).expect("append");
        let a = run(append(1), &base, 1, &mut 0).expect("append on node 1");
        let b = run(append(2), &base, 2, &mut 0).expect("append on node 2");
        let (mut ab, mut ba) = (a.clone(), b.clone());
        assert!(ab.join(&b) && ba.join(&a), "each join adds the other's element");
        assert_eq!(ab, ba, "joins commute");
        assert_eq!(ab.value(&k()), Ok(json!([0, 1, 2])), "concurrent appends by node id");
        assert!(!ab.join(&a), "joining again changes nothing");
        let c = run(append(3), &ab, 1, &mut 5).expect("append after the merge");
        assert_eq!(c.value(&k()), Ok(json!([0, 1, 2, 3])), "a later append sorts last");
        assert_eq!(c.max_seq_of(1), 6);
        assert_ne!(ab.fingerprint(), c.fingerprint());
        assert_eq!(ab.fingerprint(), ba.fingerprint());
    }

    #[test]
    fn pn_counters_keep_every_nodes_increments_and_decrements() {
        let inc = |d: i64| ClientOp::Txn { ops: vec![MicroOp::Inc(k(), json!(d))] };
        let a = run(inc(5), &State::default(), 1, &mut 0).expect("inc");
        let a = run(inc(-2), &a, 1, &mut 0).expect("dec");
        let b = run(inc(4), &State::default(), 2, &mut 0).expect("inc");
        let mut m = a.clone();
        m.join(&b);
        assert_eq!(m.value(&k()), Ok(json!(7)), "5 - 2 + 4: nobody's increment is lost");
        let mut again = m.clone();
        assert!(!again.join(&a), "an old state changes nothing (maximum per node)");
        let appended = run(append(1), &State::default(), 3, &mut 0).expect("append");
        assert!(matches!(run(append(1), &m, 1, &mut 0), Err(OpError::BadRequest(_))));
        m.join(&appended);
        let err = m.value(&k()).expect_err("a key used both ways is refused");
        assert!(err.to_string().contains("concurrently"), "{err}");
    }

    #[test]
    fn registers_are_refused_by_name_and_a_failed_transaction_writes_nothing() {
        let s = State::default();
        for op in [
            ClientOp::Write { key: k(), value: json!(1) },
            ClientOp::Cas { key: k(), from: json!(1), to: json!(2) },
            ClientOp::Txn {
                ops: vec![MicroOp::Append(k(), json!(1)), MicroOp::Write(k(), json!(2))],
            },
        ] {
            let err = execute_crdt(&op, |_| Ok(s.clone()), 1, &mut 0).expect_err("refused");
            assert!(matches!(&err, OpError::BadRequest(m) if m.contains("--resolution crdt")));
            assert!(err.definite(), "a refusal certainly did nothing");
        }
        let txn = ClientOp::Txn {
            ops: vec![MicroOp::Append(k(), json!(1)), MicroOp::Read(k(), Value::Null)],
        };
        let mut seq = 0;
        let effect = execute_crdt(&txn, |_| Ok(s.clone()), 1, &mut seq).expect("txn");
        assert_eq!(
            effect.reply,
            Reply::Txn(vec![MicroOp::Append(k(), json!(1)), MicroOp::Read(k(), json!([1]))])
        );
        assert_eq!(seq, 1);
    }

    #[test]
    fn lww_keeps_the_newer_version_and_crdt_the_join() {
        let v = |t| Version { time: t, node: 1 };
        let held = (json!("old"), v(2));
        let older = Versioned { key: k(), value: json!("older"), version: v(1) };
        assert_eq!(Resolution::Lww.merged(Some(&held), &older), Ok(None));
        assert!(Resolution::Lww.should_send(v(2), Some(v(1))));
        assert!(!Resolution::Lww.should_send(v(1), Some(v(2))));
        let a = run(append(1), &State::default(), 1, &mut 0).expect("a");
        let b = run(append(2), &State::default(), 2, &mut 0).expect("b");
        let held = (a.to_json(), a.fingerprint());
        let incoming = Versioned { key: k(), value: b.to_json(), version: b.fingerprint() };
        let (value, version) =
            Resolution::Crdt.merged(Some(&held), &incoming).expect("states").expect("changed");
        assert_eq!(State::from_json(&k(), &value).and_then(|s| s.value(&k())), Ok(json!([1, 2])));
        assert!(Resolution::Crdt.should_send(version, Some(a.fingerprint())), "differs: send");
        assert!(!Resolution::Crdt.should_send(version, Some(version)));
        let both = [held.clone(), (incoming.value.clone(), incoming.version)];
        assert_eq!(Resolution::Crdt.combine(&k(), both.iter()), Ok(Some((value, version))));
        let bad = Versioned { key: k(), value: json!("plain"), version: v(1) };
        assert!(matches!(Resolution::Crdt.merged(None, &bad), Err(OpError::Internal(_))));
    }
}
