//! The history read into sessions: each client process's operations that
//! did not fail, in order, as units of reads and writes over interned keys.

use rustc_hash::FxHashMap;

use super::Workload;
use crate::error::CheckError;
use crate::history::{History, Op, OpType, Process};
use crate::kv::{is_read_f, is_write_f, split_key};
use crate::txn::{MicroOp, parse_txn};
use crate::value::Value;

/// One operation (or transaction) of a session.
pub(super) struct Unit {
    pub(super) session: u32,
    pub(super) seq: u32,
    /// History position of the record that names it.
    pub(super) pos: usize,
    /// (key, value read): a list or nil for list-append, a value for registers.
    pub(super) reads: Vec<(u32, Value)>,
    /// (key, element appended or value written).
    pub(super) writes: Vec<(u32, Value)>,
}

/// A history as the session checker sees it.
pub(super) struct Parsed {
    /// Every unit, in the order of the history's invocations.
    pub(super) units: Vec<Unit>,
    /// Each session's process and its units in session order.
    pub(super) sessions: Vec<(u64, Vec<u32>)>,
    /// The keys, indexed by the `u32` that units name them by.
    pub(super) keys: Vec<Value>,
    /// The workload, as forced by the user or detected (any append makes a
    /// history list-append).
    pub(super) workload: Workload,
}

/// Reads `history` into sessions; `forced` overrides the detected workload.
pub(super) fn parse(history: &History, forced: Option<Workload>) -> Result<Parsed, CheckError> {
    let pairs = history.pairs()?;
    let ops = history.ops();
    let mut units = Vec::new();
    let mut sessions: Vec<(u64, Vec<u32>)> = Vec::new();
    let mut session_ids: FxHashMap<u64, u32> = FxHashMap::default();
    let mut key_ids: FxHashMap<Value, u32> = FxHashMap::default();
    let mut keys = Vec::new();
    let mut saw_append = false;
    for pair in &pairs {
        let inv = &ops[pair.invoke];
        let Process::Client(process) = inv.process else { continue };
        let outcome = history.outcome(pair);
        if outcome == OpType::Fail {
            continue;
        }
        let complete = pair.complete.filter(|&c| c != pair.invoke);
        let pos = complete.unwrap_or(pair.invoke);
        let ok = outcome == OpType::Ok;
        let mops = micro_ops(history, inv, complete.map(|c| &ops[c]), pos, ok)?;
        let mut unit_reads = Vec::new();
        let mut unit_writes = Vec::new();
        for m in mops {
            let (key, value, read) = match m {
                MicroOp::Read { key, value } => (key, value, true),
                MicroOp::Write { key, value } => (key, value, false),
                MicroOp::Append { key, value } => {
                    saw_append = true;
                    (key, value, false)
                }
            };
            let k = *key_ids.entry(key.clone()).or_insert_with(|| {
                keys.push(key);
                keys.len() as u32 - 1
            });
            if read {
                // An indeterminate operation's reads are unknown.
                if ok {
                    unit_reads.push((k, value));
                }
            } else {
                unit_writes.push((k, value));
            }
        }
        if unit_reads.is_empty() && unit_writes.is_empty() {
            continue;
        }
        let s = *session_ids.entry(process).or_insert_with(|| {
            sessions.push((process, Vec::new()));
            sessions.len() as u32 - 1
        });
        let list = &mut sessions[s as usize].1;
        units.push(Unit {
            session: s,
            seq: list.len() as u32,
            pos,
            reads: unit_reads,
            writes: unit_writes,
        });
        list.push(units.len() as u32 - 1);
    }
    let workload =
        forced.unwrap_or(if saw_append { Workload::ListAppend } else { Workload::Register });
    Ok(Parsed { units, sessions, keys, workload })
}

/// The micro-ops of one operation: a transaction's own, or the single read,
/// write or append an operation names. An ok transaction is read from its
/// completion (which holds the values read), anything else from its
/// invocation; `pos` is where an error points.
fn micro_ops(
    history: &History,
    inv: &Op,
    complete: Option<&Op>,
    pos: usize,
    ok: bool,
) -> Result<Vec<MicroOp>, CheckError> {
    if inv.f == "txn" {
        let source = if ok { complete.map_or(&inv.value, |c| &c.value) } else { &inv.value };
        return parse_txn(source).map_err(|e| CheckError::BadOp {
            location: history.locate(pos).field("value"),
            message: format!("the session checker: {e}"),
        });
    }
    let key = inv.key.as_ref().or(complete.and_then(|c| c.key.as_ref()));
    let raw =
        if is_read_f(&inv.f) { complete.map_or(&inv.value, |c| &c.value) } else { &inv.value };
    let (key, value) = split_key(key, raw);
    if is_read_f(&inv.f) {
        Ok(vec![MicroOp::Read { key, value }])
    } else if is_write_f(&inv.f) {
        Ok(vec![MicroOp::Write { key, value }])
    } else if inv.f == "append" {
        Ok(vec![MicroOp::Append { key, value }])
    } else {
        Err(CheckError::BadOp {
            location: history.locate(pos).field("f"),
            message: format!(
                "the session checker reads list-append or register histories: op {} has f {:?}, \
                 but f must be read, write, append or txn",
                inv.index, inv.f
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats;

    fn history(edn: &str) -> History {
        formats::parse(edn, "test", None).expect("a readable history")
    }

    #[test]
    fn sessions_keep_process_order_and_skip_failures() {
        let h = history(
            "{:index 0, :process 0, :type :invoke, :f :append, :key :x, :value 1}\n\
             {:index 1, :process 1, :type :invoke, :f :read, :key :x, :value nil}\n\
             {:index 2, :process 0, :type :ok, :f :append, :key :x, :value 1}\n\
             {:index 3, :process 1, :type :ok, :f :read, :key :x, :value [1]}\n\
             {:index 4, :process 0, :type :invoke, :f :append, :key :y, :value 2}\n\
             {:index 5, :process 0, :type :fail, :f :append, :key :y, :value 2}\n\
             {:index 6, :process 0, :type :invoke, :f :read, :key :y, :value nil}\n\
             {:index 7, :process 0, :type :ok, :f :read, :key :y, :value nil}\n",
        );
        let p = parse(&h, None).expect("parse");
        assert_eq!(p.workload, Workload::ListAppend, "an append makes it list-append");
        assert_eq!(p.sessions, vec![(0, vec![0, 2]), (1, vec![1])]);
        assert_eq!(p.keys, vec![Value::keyword("x"), Value::keyword("y")]);
        let seqs: Vec<(u32, u32, usize)> =
            p.units.iter().map(|u| (u.session, u.seq, u.pos)).collect();
        assert_eq!(seqs, vec![(0, 0, 2), (1, 0, 3), (0, 1, 7)], "the failed append is gone");
        assert_eq!(p.units[0].writes, vec![(0, Value::Int(1))]);
        assert_eq!(p.units[1].reads, vec![(0, Value::list([Value::Int(1)]))]);
        assert_eq!(p.units[2].reads, vec![(1, Value::Nil)]);
    }

    #[test]
    fn an_indeterminate_transaction_keeps_its_writes_but_not_its_reads() {
        let h = history(
            "{:index 0, :process 3, :type :invoke, :f :txn, :value [[:w :x 1] [:r :y nil]]}\n\
             {:index 1, :process 3, :type :info, :f :txn, :value [[:w :x 1] [:r :y nil]]}\n",
        );
        let p = parse(&h, Some(Workload::Register)).expect("parse");
        assert_eq!(p.units.len(), 1);
        assert_eq!(p.units[0].writes, vec![(0, Value::Int(1))]);
        assert!(p.units[0].reads.is_empty(), "{:?}", p.units[0].reads);
    }

    #[test]
    fn an_unknown_function_is_an_error_naming_the_op_and_field() {
        let h = history(
            "{:index 0, :process 0, :type :invoke, :f :cas, :key :x, :value [1 2]}\n\
             {:index 1, :process 0, :type :ok, :f :cas, :key :x, :value [1 2]}\n",
        );
        let err = parse(&h, None).err().expect("cas is refused").to_string();
        assert!(err.contains("op 0 has f \"cas\""), "{err}");
        assert!(err.contains("(field `f`)"), "{err}");
    }
}
