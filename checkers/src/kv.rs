//! Key-value histories flattened into per-process sequences of single reads
//! and writes: the shape the causal and register session checkers reason about.
//!
//! Accepted operations (client processes only; the nemesis is ignored):
//! - `read`/`r`/`get`/`final-read` and `write`/`w`/`put` on one key. The key is the op's
//!   `key` field; without one, a value that is a two-element list is read as
//!   Jepsen's independent `[key value]` tuple; otherwise the whole history is
//!   one register (key `nil`).
//! - `txn` whose value is a list of `[:r k v]` / `[:w k v]` micro-ops: each
//!   micro-op becomes one event, in order, in the process's session.
//!
//! Outcomes: an `ok` op contributes all its events; an `info` op (it may or
//! may not have happened) contributes its writes, because a read may have
//! observed them, and no reads, because their results are unknown; a `fail`ed
//! write is remembered only to explain a read of its value.

use rustc_hash::FxHashMap;

use crate::error::CheckError;
use crate::history::{History, OpType, Process};
use crate::txn::{MicroOp, parse_txn};
use crate::value::Value;

/// Sentinel for "no event" in the compact `u32` indices used by the checkers.
pub const NONE: u32 = u32::MAX;

/// Whether an event read or wrote its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A read; its value is what was read (`nil`: the initial value).
    Read,
    /// A write; its value is what was written.
    Write,
}

/// One read or write of one key by one session.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Position (in `History::ops`) of the record that names the operation:
    /// its completion, or its invocation when it never completed.
    pub pos: usize,
    /// Position of the invocation.
    pub invoke: usize,
    /// The micro-op's index within a transaction, `None` for a single op.
    pub mop: Option<u32>,
    /// Index of the session (`KvHistory::sessions`).
    pub session: u32,
    /// Position within the session, from 0.
    pub seq: u32,
    /// Read or write.
    pub access: Access,
    /// Interned key (`KvHistory::keys`).
    pub key: u32,
    /// The value read or written.
    pub value: Value,
    /// For writes: `true` when acknowledged (`ok`), `false` when indeterminate (`info`).
    pub acked: bool,
}

/// One process's operations in order.
#[derive(Clone, Debug, Default)]
pub struct Session {
    /// The client process number.
    pub process: u64,
    /// Its events, in session order (indices into `KvHistory::events`).
    pub events: Vec<u32>,
}

/// A key-value history as events grouped into sessions.
#[derive(Clone, Debug, Default)]
pub struct KvHistory {
    /// Every event, sessions interleaved in invocation order.
    pub events: Vec<Event>,
    /// Interned keys.
    pub keys: Vec<Value>,
    /// Sessions, in order of first appearance.
    pub sessions: Vec<Session>,
    /// Writes that failed, by (key, value): they never happened, but a read
    /// of their value deserves a precise explanation.
    pub failed_writes: FxHashMap<(u32, Value), usize>,
}

/// Function names accepted as reads (`final-read` is the convergence phase's read).
pub fn is_read_f(f: &str) -> bool {
    matches!(f, "read" | "r" | "get" | "final-read")
}

/// Function names accepted as writes.
pub fn is_write_f(f: &str) -> bool {
    matches!(f, "write" | "w" | "put")
}

impl KvHistory {
    /// Flattens `history` into sessions of reads and writes. `checker` names
    /// the caller in error messages.
    pub fn parse(history: &History, checker: &str) -> Result<KvHistory, CheckError> {
        let pairs = history.pairs()?;
        let ops = history.ops();
        let mut kv = KvHistory::default();
        let mut key_ids: FxHashMap<Value, u32> = FxHashMap::default();
        let mut session_ids: FxHashMap<u64, u32> = FxHashMap::default();
        for pair in &pairs {
            let inv = &ops[pair.invoke];
            let Process::Client(process) = inv.process else { continue };
            let outcome = history.outcome(pair);
            let complete = pair.complete.filter(|&c| c != pair.invoke);
            let pos = complete.unwrap_or(pair.invoke);
            let bad = |message: String| CheckError::BadOp {
                location: history.locate(pos).field("f"),
                message,
            };
            // (micro-op index, access, key, value) of this op's events.
            let mut accesses: Vec<(Option<u32>, Access, Value, Value)> = Vec::new();
            if inv.f == "txn" {
                let source = match (outcome, complete) {
                    (OpType::Ok, Some(c)) => &ops[c].value,
                    _ => &inv.value,
                };
                let txn = parse_txn(source).map_err(|e| CheckError::BadOp {
                    location: history
                        .locate(if outcome == OpType::Ok { pos } else { pair.invoke })
                        .field("value"),
                    message: format!("{checker}: {e}"),
                })?;
                for (i, mop) in txn.into_iter().enumerate() {
                    match mop {
                        MicroOp::Read { key, value } => {
                            accesses.push((Some(i as u32), Access::Read, key, value))
                        }
                        MicroOp::Write { key, value } => {
                            accesses.push((Some(i as u32), Access::Write, key, value))
                        }
                        MicroOp::Append { .. } => {
                            return Err(CheckError::BadOp {
                                location: history.locate(pos).field("value"),
                                message: format!(
                                    "{checker} reads register histories ([:r k v] and [:w k v]); \
                                     micro-op {i} is an append. For list-append histories use the \
                                     session checker or elle"
                                ),
                            });
                        }
                    }
                }
            } else if is_read_f(&inv.f) || is_write_f(&inv.f) {
                let access = if is_read_f(&inv.f) { Access::Read } else { Access::Write };
                let raw = match (access, complete) {
                    (Access::Read, Some(c)) => &ops[c].value,
                    _ => &inv.value,
                };
                let (key, value) =
                    split_key(inv.key.as_ref().or(complete.and_then(|c| ops[c].key.as_ref())), raw);
                accesses.push((None, access, key, value));
            } else {
                return Err(bad(format!(
                    "{checker} reads key-value histories: op {} has f {:?}, but f must be read, write or txn",
                    inv.index, inv.f
                )));
            }
            for (mop, access, key, value) in accesses {
                let key_id = *key_ids.entry(key.clone()).or_insert_with(|| {
                    kv.keys.push(key);
                    kv.keys.len() as u32 - 1
                });
                let keep = match (outcome, access) {
                    (OpType::Ok, _) => true,
                    (OpType::Info, Access::Write) => true,
                    (OpType::Fail, Access::Write) => {
                        kv.failed_writes.entry((key_id, value.clone())).or_insert(pos);
                        false
                    }
                    _ => false,
                };
                if !keep {
                    continue;
                }
                let session = *session_ids.entry(process).or_insert_with(|| {
                    kv.sessions.push(Session { process, events: Vec::new() });
                    kv.sessions.len() as u32 - 1
                });
                let events = &mut kv.sessions[session as usize].events;
                let id = kv.events.len() as u32;
                kv.events.push(Event {
                    pos,
                    invoke: pair.invoke,
                    mop,
                    session,
                    seq: events.len() as u32,
                    access,
                    key: key_id,
                    value,
                    acked: outcome == OpType::Ok,
                });
                events.push(id);
            }
        }
        Ok(kv)
    }

    /// The process that performed event `e`.
    pub fn process(&self, e: u32) -> u64 {
        self.sessions[self.events[e as usize].session as usize].process
    }

    /// `x` for a named key; empty for the single register of a keyless history.
    pub fn key_name(&self, key: u32) -> String {
        match &self.keys[key as usize] {
            Value::Nil => String::new(),
            k => k.to_string(),
        }
    }

    /// What an event did, in words: `write x = 5`, `read x = nil (the initial value)`.
    pub fn describe_access(&self, e: u32) -> String {
        let ev = &self.events[e as usize];
        let verb = match ev.access {
            Access::Read => "read",
            Access::Write => "write",
        };
        let key = self.key_name(ev.key);
        let target = if key.is_empty() { String::new() } else { format!("{key} = ") };
        let initial = if ev.access == Access::Read && ev.value.is_nil() {
            " (the initial value)"
        } else {
            ""
        };
        format!("{verb} {target}{}{initial}", ev.value)
    }

    /// The op index of event `e` (the `index` of its completion record).
    pub fn op_index(&self, history: &History, e: u32) -> u64 {
        history.ops()[self.events[e as usize].pos].index
    }

    /// `op 12 (process 3, write x = 5)`, naming the micro-op within a transaction.
    pub fn describe(&self, history: &History, e: u32) -> String {
        let ev = &self.events[e as usize];
        let mop = match ev.mop {
            Some(i) => format!(", micro-op {i}"),
            None => String::new(),
        };
        format!(
            "op {} (process {}{mop}: {})",
            self.op_index(history, e),
            self.process(e),
            self.describe_access(e)
        )
    }
}

/// The key and value of a single read or write: the `key` field when there is
/// one, else a `[key value]` tuple, else the single register `nil`.
pub(crate) fn split_key(key: Option<&Value>, value: &Value) -> (Value, Value) {
    if let Some(k) = key {
        return (k.clone(), value.clone());
    }
    match value {
        Value::List(kv) if kv.len() == 2 => (kv[0].clone(), kv[1].clone()),
        v => (Value::Nil, v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    fn op(p: u64, kind: OpType, f: &str, value: Value) -> Op {
        Op::new(0, Process::Client(p), kind, f, value)
    }

    #[test]
    fn flattens_single_ops_and_transactions_into_sessions() {
        let w = Value::list([Value::keyword("w"), Value::keyword("x"), Value::Int(1)]);
        let r = Value::list([Value::keyword("r"), Value::keyword("y"), Value::Nil]);
        let h = History::from_ops_renumbered(vec![
            op(0, OpType::Invoke, "txn", Value::list([w.clone(), r.clone()])),
            op(1, OpType::Invoke, "write", Value::list([Value::keyword("y"), Value::Int(2)])),
            op(0, OpType::Ok, "txn", Value::list([w, r])),
            op(1, OpType::Info, "write", Value::Nil),
            op(2, OpType::Invoke, "read", Value::list([Value::keyword("y"), Value::Nil])),
            op(2, OpType::Fail, "read", Value::Nil),
        ]);
        let kv = KvHistory::parse(&h, "causal").expect("parse");
        assert_eq!(kv.sessions.len(), 2, "the failed read leaves process 2 without events");
        assert_eq!(kv.events.len(), 3);
        assert_eq!(kv.describe(&h, 0), "op 2 (process 0, micro-op 0: write :x = 1)");
        assert_eq!(
            kv.describe(&h, 1),
            "op 2 (process 0, micro-op 1: read :y = nil (the initial value))"
        );
        assert_eq!(kv.describe(&h, 2), "op 3 (process 1: write :y = 2)");
        assert!(!kv.events[2].acked);
    }

    #[test]
    fn unknown_function_is_an_error_naming_the_op() {
        let h = History::from_ops_renumbered(vec![op(0, OpType::Invoke, "cas", Value::Nil)]);
        let err = KvHistory::parse(&h, "causal").expect_err("cas").to_string();
        assert!(err.contains("op 0 has f \"cas\", but f must be read, write or txn"), "{err}");
        assert!(err.contains("(field `f`)"), "{err}");
    }
}
