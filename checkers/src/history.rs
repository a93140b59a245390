//! The history model: operations as they were recorded, and their pairing
//! into invocation/completion intervals.
//!
//! A history is the ordered list of events a test saw: each client operation
//! appears twice, once when invoked and once when it completed (ok, fail or
//! info). The order of the list is real-time order: an event that appears
//! later happened later. Checkers rely on that and on nothing else about time.

use serde::{Deserialize, Serialize};

use crate::error::{HistoryError, Location};
use crate::value::{ArcStr, Value, shared_str};

/// What kind of event an operation record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// The client is about to perform the operation.
    Invoke,
    /// The operation definitely happened, with this result.
    Ok,
    /// The operation definitely did not happen.
    Fail,
    /// Nobody knows whether it happened (a timeout, a lost connection, a
    /// crash). For the nemesis, `info` is also its ordinary record type.
    Info,
}

impl OpType {
    /// The lower-case name used in every format.
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    /// Parses a type name (`invoke`, `ok`, `fail`, `info`).
    pub fn parse(s: &str) -> Option<OpType> {
        match s {
            "invoke" => Some(OpType::Invoke),
            "ok" => Some(OpType::Ok),
            "fail" => Some(OpType::Fail),
            "info" => Some(OpType::Info),
            _ => None,
        }
    }
}

/// Who performed an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A client process. Numbers are unique over a test: a process that
    /// crashed (recorded `info`) is retired and its thread continues under a
    /// fresh number, because it may still have a request in flight.
    Client(u64),
    /// The fault injector.
    Nemesis,
}

impl Process {
    /// The client number, if this is a client.
    pub fn client(self) -> Option<u64> {
        match self {
            Process::Client(p) => Some(p),
            Process::Nemesis => None,
        }
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a non-negative client number or \"nemesis\"")
            }
            fn visit_u64<E>(self, p: u64) -> Result<Process, E> {
                Ok(Process::Client(p))
            }
            fn visit_i64<E: serde::de::Error>(self, p: i64) -> Result<Process, E> {
                u64::try_from(p).map(Process::Client).map_err(|_| {
                    E::custom(format!("process must be a non-negative number, not {p}"))
                })
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Process, E> {
                match s {
                    "nemesis" => Ok(Process::Nemesis),
                    _ => s.parse().map(Process::Client).map_err(|_| {
                        E::custom(format!("process must be a number or \"nemesis\", not {s:?}"))
                    }),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// One event of a history: an invocation or a completion.
///
/// The function and node names are shared text ([`ArcStr`]): a history
/// repeats a handful of them millions of times, and the readers give every
/// repetition the same allocation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the history, from 0, unique and increasing.
    pub index: u64,
    /// Nanoseconds since the test started, when the format records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
    /// Who performed it.
    pub process: Process,
    /// Invocation or completion kind.
    #[serde(rename = "type")]
    pub kind: OpType,
    /// The function: `read`, `write`, `cas`, `txn`, `add`, `start-partition`...
    #[serde(deserialize_with = "crate::value::deserialize_shared")]
    pub f: ArcStr,
    /// The argument (on invocation) or the result (on completion).
    #[serde(default)]
    pub value: Value,
    /// For histories over independent keys: the key this operation touched.
    /// Linearizability is then checked per key (P-compositionality).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// The node the client talked to, when known.
    #[serde(
        default,
        deserialize_with = "crate::value::deserialize_shared_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub node: Option<ArcStr>,
    /// Why the operation failed or is indeterminate, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}

impl Op {
    /// A new event with no time, key, node or error.
    pub fn new(
        index: u64,
        process: Process,
        kind: OpType,
        f: impl AsRef<str>,
        value: impl Into<Value>,
    ) -> Op {
        Op {
            index,
            time: None,
            process,
            kind,
            f: shared_str(f.as_ref()),
            value: value.into(),
            key: None,
            node: None,
            error: None,
        }
    }
}

/// A history: events in real-time order, with where each came from.
#[derive(Clone, Debug, Default)]
pub struct History {
    ops: Vec<Op>,
    /// Source line of each op (same length as `ops`), 0 when unknown.
    lines: Vec<u32>,
    /// The file the history was read from, for error messages.
    source: String,
    /// What the reader noticed and a verdict on this history must mention:
    /// a torn last line it ignored, ops it had to read with a default. See
    /// [`History::notes`].
    notes: Vec<Note>,
}

/// Something the reader of a history noticed that a verdict on it must
/// mention, because it changes what the verdict means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// What was noticed, in a sentence naming the file and line.
    pub text: String,
    /// True when part of the file could not be read, so the history judged
    /// is not the whole file: a checker's `valid` then becomes `unknown`.
    pub incomplete: bool,
}

/// An operation as an interval: its invocation and, if it came, its completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pair {
    /// Position (in `History::ops`) of the invocation.
    pub invoke: usize,
    /// Position of the completion, or `None` if the history ended first.
    pub complete: Option<usize>,
}

impl History {
    /// A history from events already in order; indices are kept as given.
    pub fn new(ops: Vec<Op>) -> History {
        let lines = vec![0; ops.len()];
        History { ops, lines, source: String::new(), notes: Vec::new() }
    }

    /// A history with known source lines for each op (same length as `ops`).
    pub fn with_lines(ops: Vec<Op>, lines: Vec<u32>, source: impl Into<String>) -> History {
        debug_assert_eq!(ops.len(), lines.len());
        History { ops, lines, source: source.into(), notes: Vec::new() }
    }

    /// Builds a history from events, numbering them 0.. in order.
    pub fn from_ops_renumbered(mut ops: Vec<Op>) -> History {
        for (i, op) in ops.iter_mut().enumerate() {
            op.index = i as u64;
        }
        History::new(ops)
    }

    /// The events, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Takes the events out.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The file this history was read from ("" if built in memory).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Sets the source name used in error messages.
    pub fn set_source(&mut self, source: impl Into<String>) {
        self.source = source.into();
    }

    /// What the reader noticed that a verdict must mention (a torn last
    /// line, defaults it applied), in the order noticed.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// Records a note for verdicts on this history; `incomplete` says that
    /// part of the file was not read (see [`Note::incomplete`]).
    pub fn add_note(&mut self, text: impl Into<String>, incomplete: bool) {
        self.notes.push(Note { text: text.into(), incomplete });
    }

    /// Where the event at `pos` is, in words for evidence: `line 12`, or
    /// `history position 12` when the format has no lines.
    pub fn position_words(&self, pos: usize) -> String {
        self.locate(pos)
            .line
            .map_or_else(|| format!("history position {pos}"), |l| format!("line {l}"))
    }

    /// Where the event at `pos` came from, for error messages.
    pub fn locate(&self, pos: usize) -> Location {
        let line = self.lines.get(pos).copied().filter(|&l| l > 0).map(u64::from);
        let mut loc = Location::new(self.source.clone(), line);
        if line.is_none() {
            // No line numbers (built in memory): name the op index instead.
            if let Some(op) = self.ops.get(pos) {
                loc.field = Some(format!("op index {}", op.index));
            }
        }
        loc
    }

    /// Pairs each invocation with its completion.
    ///
    /// Rules, as in Jepsen: a process has at most one operation in flight; a
    /// completion closes the process's pending invocation and must name the
    /// same function; an invocation that never completes is indeterminate
    /// (treated as `info`). The nemesis records `info` events without
    /// `invoke`: an `info` with nothing pending opens an interval that the
    /// process's next `info` closes. A client `info` with nothing pending
    /// stands alone as a zero-length interval.
    pub fn pairs(&self) -> Result<Vec<Pair>, HistoryError> {
        let mut pending = Pending::default();
        let mut pairs: Vec<Pair> = Vec::with_capacity(self.ops.len() / 2 + 1);
        for (pos, op) in self.ops.iter().enumerate() {
            let slot = pending.slot(op.process);
            match (op.kind, *slot) {
                (OpType::Invoke, None) => {
                    *slot = Some((pos, pairs.len()));
                    pairs.push(Pair { invoke: pos, complete: None });
                }
                (OpType::Invoke, Some((prev, _))) => {
                    return Err(HistoryError::Invalid {
                        location: self.locate(pos).field("process"),
                        message: format!(
                            "process {} invokes {} while its {} invoked at {} has not completed; \
                             a process performs one operation at a time",
                            op.process,
                            op.f,
                            self.ops[prev].f,
                            self.describe_pos(prev)
                        ),
                    });
                }
                (OpType::Info, None) => {
                    if op.process == Process::Nemesis {
                        *slot = Some((pos, pairs.len()));
                        pairs.push(Pair { invoke: pos, complete: None });
                    } else {
                        pairs.push(Pair { invoke: pos, complete: Some(pos) });
                    }
                }
                (OpType::Ok | OpType::Fail, None) => {
                    return Err(HistoryError::Invalid {
                        location: self.locate(pos).field("type"),
                        message: format!(
                            "process {} completes {} ({}) but has no pending invocation",
                            op.process,
                            op.f,
                            op.kind.as_str()
                        ),
                    });
                }
                (_, Some((inv, at))) => {
                    if self.ops[inv].f != op.f && op.process != Process::Nemesis {
                        return Err(HistoryError::Invalid {
                            location: self.locate(pos).field("f"),
                            message: format!(
                                "process {} completes {} but invoked {} at {}",
                                op.process,
                                op.f,
                                self.ops[inv].f,
                                self.describe_pos(inv)
                            ),
                        });
                    }
                    *slot = None;
                    pairs[at].complete = Some(pos);
                }
            }
        }
        Ok(pairs)
    }

    /// The outcome of a paired operation: its completion type, or `Info`
    /// when it never completed.
    pub fn outcome(&self, pair: &Pair) -> OpType {
        match pair.complete {
            Some(c) if c != pair.invoke => self.ops[c].kind,
            Some(_) => OpType::Info,
            None => OpType::Info,
        }
    }

    fn describe_pos(&self, pos: usize) -> String {
        match self.lines.get(pos) {
            Some(&l) if l > 0 => format!("line {l}"),
            _ => format!("op index {}", self.ops[pos].index),
        }
    }
}

/// Each process's pending invocation while [`History::pairs`] walks the
/// history: its position, and its index in the pairs. Client processes
/// numbered below [`Pending::TABLE`] (Jepsen numbers a test's clients from
/// 0, and a crashed one's successor a concurrency higher) are looked up in
/// a table, every other process by hash. Pairing a 100,000-op register
/// history took 2.2-2.9 ms so, against 3.6-4.3 ms with a hash a line.
#[derive(Default)]
struct Pending {
    table: Vec<Option<(usize, usize)>>,
    other: rustc_hash::FxHashMap<Process, Option<(usize, usize)>>,
}

impl Pending {
    const TABLE: u64 = 1 << 16;

    fn slot(&mut self, process: Process) -> &mut Option<(usize, usize)> {
        match process {
            Process::Client(n) if n < Self::TABLE => {
                let n = n as usize;
                if n >= self.table.len() {
                    self.table.resize(n + 1, None);
                }
                &mut self.table[n]
            }
            _ => self.other.entry(process).or_default(),
        }
    }
}

/// Splits Jepsen independent tuples: every client op's value `[key value]`
/// becomes `key` and `value`, so checkers can partition by key. Ops that
/// already carry a key are left alone.
pub fn split_independent(history: History) -> Result<History, HistoryError> {
    let History { mut ops, lines, source, notes } = history;
    for (pos, op) in ops.iter_mut().enumerate() {
        if op.process == Process::Nemesis || op.key.is_some() {
            continue;
        }
        match std::mem::take(&mut op.value) {
            Value::List(mut kv) if kv.len() == 2 => {
                op.value = kv.pop().unwrap_or_default();
                op.key = kv.pop();
            }
            other => {
                let line = lines.get(pos).copied().filter(|&l| l > 0).map(u64::from);
                return Err(HistoryError::Invalid {
                    location: Location::new(source, line).field("value"),
                    message: format!(
                        "--independent expects every client op's value to be a [key value] tuple, found {other}"
                    ),
                });
            }
        }
    }
    Ok(History { ops, lines, source, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(p: u64, kind: OpType, f: &str) -> Op {
        Op::new(0, Process::Client(p), kind, f, Value::Nil)
    }

    #[test]
    fn pairs_interleaved_operations_and_leaves_pending_as_info() {
        let h = History::from_ops_renumbered(vec![
            op(0, OpType::Invoke, "write"),
            op(1, OpType::Invoke, "read"),
            op(1, OpType::Ok, "read"),
            op(2, OpType::Invoke, "cas"),
            op(0, OpType::Fail, "write"),
        ]);
        let pairs = h.pairs().expect("pairs");
        assert_eq!(
            pairs,
            vec![
                Pair { invoke: 0, complete: Some(4) },
                Pair { invoke: 1, complete: Some(2) },
                Pair { invoke: 3, complete: None },
            ]
        );
        assert_eq!(h.outcome(&pairs[0]), OpType::Fail);
        assert_eq!(h.outcome(&pairs[2]), OpType::Info);
    }

    /// Processes numbered past the pending table's end pair up as those
    /// in it do, beside them, and one is never taken for another.
    #[test]
    fn processes_of_any_number_pair_up() {
        let big = Pending::TABLE + 5;
        let h = History::from_ops_renumbered(vec![
            op(big, OpType::Invoke, "write"),
            op(5, OpType::Invoke, "read"),
            op(u64::MAX, OpType::Invoke, "cas"),
            op(5, OpType::Ok, "read"),
            op(big, OpType::Ok, "write"),
            op(u64::MAX, OpType::Fail, "cas"),
            op(big, OpType::Invoke, "read"),
        ]);
        assert_eq!(
            h.pairs().expect("pairs"),
            vec![
                Pair { invoke: 0, complete: Some(4) },
                Pair { invoke: 1, complete: Some(3) },
                Pair { invoke: 2, complete: Some(5) },
                Pair { invoke: 6, complete: None },
            ]
        );
        let twice = History::from_ops_renumbered(vec![
            op(big, OpType::Invoke, "write"),
            op(big, OpType::Invoke, "read"),
        ]);
        assert!(twice.pairs().is_err());
    }

    #[test]
    fn double_invoke_is_an_error_naming_the_line() {
        let ops = vec![op(0, OpType::Invoke, "write"), op(0, OpType::Invoke, "read")];
        let h = History::with_lines(ops, vec![3, 4], "h.jsonl");
        let err = h.pairs().expect_err("must fail").to_string();
        assert!(err.starts_with("h.jsonl:4 (field `process`)"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn independent_tuples_become_keys() {
        let mut a = op(0, OpType::Invoke, "write");
        a.value = Value::list([Value::Int(7), Value::Int(3)]);
        let h = split_independent(History::from_ops_renumbered(vec![a])).expect("split");
        assert_eq!(h.ops()[0].key, Some(Value::Int(7)));
        assert_eq!(h.ops()[0].value, Value::Int(3));
        let b = op(0, OpType::Invoke, "write");
        let err = split_independent(History::from_ops_renumbered(vec![b])).expect_err("nil value");
        assert!(err.to_string().contains("(field `value`)"), "{err}");
    }

    #[test]
    fn nemesis_info_events_pair_up() {
        let mut a = op(0, OpType::Info, "start-partition");
        a.process = Process::Nemesis;
        let mut b = a.clone();
        b.f = "start-partition".into();
        let h = History::from_ops_renumbered(vec![a, b]);
        assert_eq!(h.pairs().expect("pairs"), vec![Pair { invoke: 0, complete: Some(1) }]);
    }

    /// The layout behind the memory figures in `docs/elle.md`: two million
    /// ops of a million-transaction history at 112 bytes each.
    #[test]
    fn an_op_stays_compact() {
        assert!(std::mem::size_of::<Op>() <= 112, "{}", std::mem::size_of::<Op>());
    }
}
