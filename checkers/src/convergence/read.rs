//! Reading a history into replicated objects: the writes and reads of each
//! key, the kind of object they describe, and which reads form the final phase.

use std::collections::BTreeMap;

use super::{Kind, Stop};
use crate::budget::Meter;
use crate::error::CheckError;
use crate::history::{History, OpType, Process};
use crate::value::Value;

/// A write (an add, append, increment or register write), as an interval.
/// Failed writes are left out: they never happened.
#[derive(Clone, Debug)]
pub(super) struct Write {
    /// History position of the invocation.
    pub invoke: usize,
    /// History position of the completion (none: it never completed).
    pub complete: Option<usize>,
    /// True when the completion is `ok`; false when it is `info` or missing.
    pub acked: bool,
    /// The element, delta or register value written.
    pub value: Value,
    pub time_invoke: Option<u64>,
    pub time_complete: Option<u64>,
}

impl Write {
    /// The history position that names the write: its completion, or its
    /// invocation when it never completed.
    pub fn pos(&self) -> usize {
        self.complete.unwrap_or(self.invoke)
    }
}

/// An `ok` read.
#[derive(Clone, Debug)]
pub(super) struct Read {
    pub invoke: usize,
    pub complete: usize,
    /// The node it read from (`process N` when the op names none).
    pub node: String,
    pub value: Value,
    /// True when the read belongs to the final phase.
    pub is_final: bool,
    pub time_invoke: Option<u64>,
    pub time_complete: Option<u64>,
}

/// The writes and reads of one key.
#[derive(Default, Debug)]
pub(super) struct Object {
    pub writes: Vec<Write>,
    pub reads: Vec<Read>,
}

/// A history read into objects.
pub(super) struct Reading {
    /// The kind of every object.
    pub kind: Kind,
    /// The objects by key (`nil` for a history without keys).
    pub objects: BTreeMap<Value, Object>,
    /// Which reads are final, in words.
    pub phase: String,
}

/// What the functions and read values say about the object kind.
#[derive(Default)]
struct Seen {
    add: bool,
    append: bool,
    write: bool,
    collection_read: bool,
    int_read: bool,
    explicit_final: bool,
}

/// Reads `history` into objects; `kind` is the user's `--opt type`, if any.
pub(super) fn read(history: &History, kind: Option<Kind>, meter: &Meter) -> Result<Reading, Stop> {
    let (mut objects, seen) = collect(history, meter)?;
    let kind = detect_kind(kind, &seen)?;
    let phase = mark_finals(history, &mut objects, seen.explicit_final);
    Ok(Reading { kind, objects, phase })
}

/// Every client op as a write or a read of its key.
fn collect(history: &History, meter: &Meter) -> Result<(BTreeMap<Value, Object>, Seen), Stop> {
    let ops = history.ops();
    let pairs = history.pairs()?;
    let mut objects: BTreeMap<Value, Object> = BTreeMap::new();
    let mut seen = Seen::default();
    for pair in &pairs {
        if let Some(reason) = meter.tick() {
            return Err(Stop::Budget(reason));
        }
        let inv = &ops[pair.invoke];
        if inv.process == Process::Nemesis {
            continue;
        }
        let outcome = history.outcome(pair);
        let complete = pair.complete.filter(|&c| c != pair.invoke);
        let key = inv
            .key
            .clone()
            .or_else(|| complete.and_then(|c| ops[c].key.clone()))
            .unwrap_or(Value::Nil);
        let obj = objects.entry(key).or_default();
        match inv.f.as_str() {
            "add" | "increment" | "append" | "write" | "w" => {
                match inv.f.as_str() {
                    "append" => seen.append = true,
                    "write" | "w" => seen.write = true,
                    _ => seen.add = true,
                }
                if outcome == OpType::Fail {
                    continue;
                }
                let value = if inv.f == "increment" && inv.value.is_nil() {
                    Value::Int(1)
                } else {
                    inv.value.clone()
                };
                obj.writes.push(Write {
                    invoke: pair.invoke,
                    complete,
                    acked: outcome == OpType::Ok,
                    value,
                    time_invoke: inv.time,
                    time_complete: complete.and_then(|c| ops[c].time),
                });
            }
            "read" | "r" | "final-read" => {
                let (Some(c), OpType::Ok) = (complete, outcome) else { continue };
                let done = &ops[c];
                let node = done
                    .node
                    .as_deref()
                    .or(inv.node.as_deref())
                    .map_or_else(|| format!("process {}", inv.process), str::to_owned);
                match &done.value {
                    Value::List(_) | Value::Set(_) => seen.collection_read = true,
                    Value::Int(_) => seen.int_read = true,
                    _ => {}
                }
                let is_final = inv.f == "final-read";
                seen.explicit_final |= is_final;
                obj.reads.push(Read {
                    invoke: pair.invoke,
                    complete: c,
                    node,
                    value: done.value.clone(),
                    is_final,
                    time_invoke: inv.time,
                    time_complete: done.time,
                });
            }
            other => {
                return Err(Stop::from(CheckError::BadOp {
                    location: history.locate(pair.invoke).field("f"),
                    message: format!(
                        "the convergence checker reads add, increment, append, write, read and final-read \
                         operations; op {} has f {other:?}",
                        inv.index
                    ),
                }));
            }
        }
    }
    Ok((objects, seen))
}

/// The kind the user named, or the one the history shows.
fn detect_kind(kind: Option<Kind>, seen: &Seen) -> Result<Kind, Stop> {
    match kind {
        Some(k) => Ok(k),
        None if seen.append => Ok(Kind::List),
        None if seen.write => Ok(Kind::Register),
        None if seen.add && seen.collection_read && !seen.int_read => Ok(Kind::Set),
        None if seen.add && seen.int_read && !seen.collection_read => Ok(Kind::Counter),
        None => Err(CheckError::BadOption(
            "the convergence checker cannot tell the object kind from this history; pass \
             --opt type=set|list|counter|register"
                .into(),
        )
        .into()),
    }
}

/// Marks the final reads and says which they are. Without explicit final
/// reads, they are the reads that began after the last nemesis event (a
/// heal) and after every write of their key completed.
fn mark_finals(
    history: &History,
    objects: &mut BTreeMap<Value, Object>,
    explicit_final: bool,
) -> String {
    let last_nemesis =
        history.ops().iter().enumerate().rev().find(|(_, o)| o.process == Process::Nemesis);
    let healed_at = match last_nemesis {
        None => Some(0),
        Some((pos, o)) if o.f.starts_with("stop") || o.f == "heal" => Some(pos),
        Some(_) => None,
    };
    if !explicit_final && let Some(healed) = healed_at {
        for obj in objects.values_mut() {
            let quiet =
                obj.writes.iter().map(|w| w.complete.unwrap_or(usize::MAX)).max().unwrap_or(0);
            let quiet = if quiet == usize::MAX { None } else { Some(quiet.max(healed)) };
            for r in &mut obj.reads {
                r.is_final = quiet.is_some_and(|q| r.invoke > q);
            }
        }
    }
    if explicit_final {
        "final reads: the ops with f = final-read".to_owned()
    } else if healed_at.is_some() {
        "final reads: no op has f = final-read, so the reads that began after the last heal and after every \
         write completed"
            .to_owned()
    } else {
        "no final reads: no op has f = final-read and the last nemesis event is not a heal"
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    fn op(p: Process, kind: OpType, f: &str, value: Value) -> Op {
        Op::new(0, p, kind, f, value)
    }

    fn read_all(ops: Vec<Op>, kind: Option<Kind>) -> Result<Reading, Stop> {
        read(&History::from_ops_renumbered(ops), kind, &Meter::unlimited())
    }

    #[test]
    fn failed_writes_are_left_out_and_info_writes_are_unacknowledged() {
        let c = Process::Client;
        let r = read_all(
            vec![
                op(c(0), OpType::Invoke, "write", Value::Int(1)),
                op(c(0), OpType::Fail, "write", Value::Int(1)),
                op(c(1), OpType::Invoke, "write", Value::Int(2)),
                op(c(1), OpType::Info, "write", Value::Int(2)),
            ],
            None,
        )
        .unwrap_or_else(|_| panic!("reads"));
        assert_eq!(r.kind, Kind::Register);
        let obj = &r.objects[&Value::Nil];
        assert_eq!(obj.writes.len(), 1);
        assert!(!obj.writes[0].acked);
        assert_eq!(obj.writes[0].pos(), 3);
    }

    #[test]
    fn without_final_reads_the_reads_after_the_heal_are_final() {
        let c = Process::Client;
        let r = read_all(
            vec![
                op(c(0), OpType::Invoke, "add", Value::Int(1)),
                op(c(0), OpType::Ok, "add", Value::Int(1)),
                op(c(1), OpType::Invoke, "read", Value::Nil),
                op(c(1), OpType::Ok, "read", Value::set(vec![])),
                op(Process::Nemesis, OpType::Info, "stop-partition", Value::Nil),
                op(c(1), OpType::Invoke, "read", Value::Nil),
                op(c(1), OpType::Ok, "read", Value::set(vec![Value::Int(1)])),
            ],
            None,
        )
        .unwrap_or_else(|_| panic!("reads"));
        assert_eq!(r.kind, Kind::Set);
        let finals: Vec<bool> = r.objects[&Value::Nil].reads.iter().map(|r| r.is_final).collect();
        assert_eq!(finals, vec![false, true]);
        assert!(r.phase.contains("after the last heal"), "{}", r.phase);
    }

    #[test]
    fn an_unknown_function_names_the_op() {
        let c = Process::Client;
        let err = match read_all(vec![op(c(0), OpType::Invoke, "cas", Value::Nil)], None) {
            Err(Stop::Error(e)) => e.to_string(),
            _ => panic!("cas is refused"),
        };
        assert!(err.contains("op 0 has f \"cas\""), "{err}");
    }

    #[test]
    fn add_with_no_telling_reads_needs_a_type() {
        let c = Process::Client;
        let ops = vec![
            op(c(0), OpType::Invoke, "add", Value::Int(1)),
            op(c(0), OpType::Ok, "add", Value::Int(1)),
        ];
        assert!(
            matches!(read_all(ops.clone(), None), Err(Stop::Error(e)) if matches!(*e, CheckError::BadOption(_)))
        );
        let r = read_all(ops, Some(Kind::Counter)).unwrap_or_else(|_| panic!("reads"));
        assert_eq!(r.kind, Kind::Counter);
    }
}
