//! The key-value semantics every mode shares: how read, write, cas, append and transactions
//! turn the current values into a reply and a set of writes. Modes differ only in where the
//! current values come from and how the writes are replicated.

use crate::types::{ClientOp, Key, MicroOp, OpError, Reply, Value};
use std::collections::BTreeMap;

/// The outcome of executing one operation against some current state.
#[derive(Clone, Debug, PartialEq)]
pub struct Effect {
    /// What the client is told.
    pub reply: Reply,
    /// The keys written and their new values, in key order (`null` deletes).
    pub writes: BTreeMap<Key, Value>,
}

/// Why a write that carries a context is refused everywhere but quorum mode under
/// `--resolution siblings`: nothing else keeps the versions a context names.
pub fn context_refused() -> OpError {
    OpError::BadRequest(
        "a write with a context is a --resolution siblings write, which only quorum mode keeps; \
         write without one"
            .into(),
    )
}

/// Executes `op` against the values `read` returns, without changing anything. A failed
/// operation (cas mismatch, append to a non-list) has no writes at all, so a transaction is
/// all-or-nothing.
pub fn execute(op: &ClientOp, read: impl Fn(&Key) -> Value) -> Result<Effect, OpError> {
    let mut writes: BTreeMap<Key, Value> = BTreeMap::new();
    // Reads inside a transaction see the transaction's own earlier writes.
    let current =
        |writes: &BTreeMap<Key, Value>, k: &Key| writes.get(k).cloned().unwrap_or_else(|| read(k));
    let reply = match op {
        ClientOp::Read { key } => Reply::Value(current(&writes, key)),
        ClientOp::Write { key, value } => {
            writes.insert(key.clone(), value.clone());
            Reply::Done
        }
        ClientOp::Put { .. } => return Err(context_refused()),
        ClientOp::Cas { key, from, to } => {
            expect(current(&writes, key), from)?;
            writes.insert(key.clone(), to.clone());
            Reply::Done
        }
        ClientOp::Append { key, value } => {
            let list = appended(key, current(&writes, key), value)?;
            writes.insert(key.clone(), list);
            Reply::Done
        }
        ClientOp::Txn { ops } => {
            let mut out = Vec::with_capacity(ops.len());
            for micro in ops {
                match micro {
                    MicroOp::Read(k, _) => out.push(MicroOp::Read(k.clone(), current(&writes, k))),
                    MicroOp::Write(k, v) => {
                        writes.insert(k.clone(), v.clone());
                        out.push(micro.clone());
                    }
                    MicroOp::Append(k, v) => {
                        let list = appended(k, current(&writes, k), v)?;
                        writes.insert(k.clone(), list);
                        out.push(micro.clone());
                    }
                    MicroOp::Cas(k, pair) => {
                        let (from, to) = match pair {
                            Value::Array(p) if p.len() == 2 => (&p[0], &p[1]),
                            _ => {
                                return Err(OpError::BadRequest(format!(
                                    "cas needs [from, to], not {pair}"
                                )));
                            }
                        };
                        expect(current(&writes, k), from)?;
                        writes.insert(k.clone(), to.clone());
                        out.push(micro.clone());
                    }
                    MicroOp::Inc(k, delta) => {
                        let sum = incremented(k, current(&writes, k), delta)?;
                        writes.insert(k.clone(), sum);
                        out.push(micro.clone());
                    }
                }
            }
            Reply::Txn(out)
        }
    };
    Ok(Effect { reply, writes })
}

/// A compare-and-set's guard: the current value must be `from`.
fn expect(now: Value, from: &Value) -> Result<(), OpError> {
    if &now == from { Ok(()) } else { Err(OpError::CasMismatch { current: now }) }
}

/// The integer at `key` plus `delta`; `null` is 0. Overflow is refused, not wrapped.
fn incremented(key: &Key, current: Value, delta: &Value) -> Result<Value, OpError> {
    let bad = |why: String| OpError::BadRequest(format!("cannot increment key {key}: {why}"));
    let delta =
        delta.as_i64().ok_or_else(|| bad(format!("the delta {delta} is not an integer")))?;
    let now = match &current {
        Value::Null => 0,
        v => v.as_i64().ok_or_else(|| bad(format!("its value {v} is not an integer")))?,
    };
    let sum = now.checked_add(delta).ok_or_else(|| bad(format!("{now} + {delta} overflows")))?;
    Ok(Value::from(sum))
}

/// The list at `key` with `element` appended; `null` is the empty list.
fn appended(key: &Key, current: Value, element: &Value) -> Result<Value, OpError> {
    match current {
        Value::Null => Ok(Value::Array(vec![element.clone()])),
        Value::Array(mut items) => {
            items.push(element.clone());
            Ok(Value::Array(items))
        }
        other => Err(OpError::BadRequest(format!(
            "cannot append to key {key}: its value {other} is not a list"
        ))),
    }
}

/// A plain in-memory map, the state machine of the log-based modes and of paxos registers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kv {
    data: BTreeMap<Key, Value>,
}

impl Kv {
    /// The value at `key` (`null` when absent).
    pub fn get(&self, key: &Key) -> Value {
        self.data.get(key).cloned().unwrap_or(Value::Null)
    }

    /// Executes `op` and applies its writes.
    pub fn apply(&mut self, op: &ClientOp) -> Result<Reply, OpError> {
        let effect = execute(op, |k| self.get(k))?;
        for (k, v) in effect.writes {
            self.put(k, v);
        }
        Ok(effect.reply)
    }

    /// Stores `value` at `key`; `null` removes the key.
    pub fn put(&mut self, key: Key, value: Value) {
        if value.is_null() {
            self.data.remove(&key);
        } else {
            self.data.insert(key, value);
        }
    }

    /// Number of keys with a non-null value.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when no key has a value.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn k(i: i64) -> Key {
        Key::Int(i)
    }

    #[test]
    fn cas_and_append_follow_the_register_and_list_semantics() {
        let mut kv = Kv::default();
        assert_eq!(kv.apply(&ClientOp::Write { key: k(1), value: json!(3) }), Ok(Reply::Done));
        assert_eq!(
            kv.apply(&ClientOp::Cas { key: k(1), from: json!(4), to: json!(5) }),
            Err(OpError::CasMismatch { current: json!(3) })
        );
        assert_eq!(
            kv.apply(&ClientOp::Cas { key: k(1), from: json!(3), to: json!(5) }),
            Ok(Reply::Done)
        );
        assert_eq!(kv.get(&k(1)), json!(5));
        kv.apply(&ClientOp::Append { key: k(2), value: json!(1) }).expect("append to null");
        kv.apply(&ClientOp::Append { key: k(2), value: json!(2) }).expect("append to list");
        assert_eq!(kv.get(&k(2)), json!([1, 2]));
        let err = kv.apply(&ClientOp::Append { key: k(1), value: json!(9) });
        assert!(matches!(err, Err(OpError::BadRequest(_))));
    }

    #[test]
    fn guarded_transactions_move_values_all_or_nothing() {
        let mut kv = Kv::default();
        kv.put(k(0), json!(10));
        kv.put(k(1), json!(5));
        // A transfer of 3 from account 0 to account 1, guarded by what was read.
        let transfer = |from0: i64, from1: i64| ClientOp::Txn {
            ops: vec![
                MicroOp::Cas(k(0), json!([from0, from0 - 3])),
                MicroOp::Cas(k(1), json!([from1, from1 + 3])),
            ],
        };
        assert!(matches!(kv.apply(&transfer(10, 5)), Ok(Reply::Txn(_))));
        assert_eq!((kv.get(&k(0)), kv.get(&k(1))), (json!(7), json!(8)));
        // A stale guard on the second key leaves the first untouched too.
        assert_eq!(kv.apply(&transfer(7, 5)), Err(OpError::CasMismatch { current: json!(8) }));
        assert_eq!((kv.get(&k(0)), kv.get(&k(1))), (json!(7), json!(8)));
        let bad = ClientOp::Txn { ops: vec![MicroOp::Cas(k(0), json!(7))] };
        assert!(matches!(kv.apply(&bad), Err(OpError::BadRequest(_))));
    }

    #[test]
    fn increments_start_from_zero_and_refuse_what_is_not_an_integer() {
        let mut kv = Kv::default();
        let inc = |d: i64| ClientOp::Txn {
            ops: vec![MicroOp::Inc(k(3), json!(d)), MicroOp::Read(k(3), Value::Null)],
        };
        let read_back = |r: Result<Reply, OpError>| match r {
            Ok(Reply::Txn(ops)) => ops[1].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(read_back(kv.apply(&inc(1))), MicroOp::Read(k(3), json!(1)));
        assert_eq!(read_back(kv.apply(&inc(-4))), MicroOp::Read(k(3), json!(-3)));
        kv.put(k(4), json!("x"));
        let bad = ClientOp::Txn { ops: vec![MicroOp::Inc(k(4), json!(1))] };
        assert!(matches!(kv.apply(&bad), Err(OpError::BadRequest(_))));
        kv.put(k(5), json!(i64::MAX));
        let overflow = ClientOp::Txn { ops: vec![MicroOp::Inc(k(5), json!(1))] };
        assert!(matches!(kv.apply(&overflow), Err(OpError::BadRequest(_))));
        assert_eq!(kv.get(&k(5)), json!(i64::MAX));
    }

    #[test]
    fn a_failing_transaction_writes_nothing_and_reads_see_earlier_writes() {
        let mut kv = Kv::default();
        kv.put(k(1), json!(7));
        let txn = ClientOp::Txn {
            ops: vec![
                MicroOp::Append(k(2), json!(1)),
                MicroOp::Read(k(2), Value::Null),
                MicroOp::Append(k(1), json!(2)),
            ],
        };
        assert!(kv.apply(&txn).is_err());
        assert_eq!(kv.get(&k(2)), Value::Null);
        let ok = ClientOp::Txn {
            ops: vec![MicroOp::Append(k(2), json!(1)), MicroOp::Read(k(2), Value::Null)],
        };
        assert_eq!(
            kv.apply(&ok),
            Ok(Reply::Txn(vec![MicroOp::Append(k(2), json!(1)), MicroOp::Read(k(2), json!([1]))]))
        );
    }

    #[test]
    fn micro_ops_round_trip_through_their_wire_form() {
        let wire = json!([
            ["append", 1, 5],
            ["r", "x", null],
            ["w", 2, {"a": 1}],
            ["cas", 1, [2, 3]],
            ["inc", "c", -2]
        ]);
        let ops: Vec<MicroOp> = serde_json::from_value(wire.clone()).expect("valid micro-ops");
        assert_eq!(ops[1], MicroOp::Read(Key::Str("x".into()), Value::Null));
        assert_eq!(serde_json::to_value(&ops).expect("serializable"), wire);
        assert_eq!(ops[3], MicroOp::Cas(k(1), json!([2, 3])));
        for bad in [json!(["cas", 1, 2]), json!(["inc", 1, "one"]), json!(["del", 1, null])] {
            let err = serde_json::from_value::<MicroOp>(bad.clone()).expect_err("refused");
            assert!(err.to_string().contains("micro-op"), "{bad}: {err}");
        }
    }
}
