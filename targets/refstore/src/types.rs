//! Vocabulary shared by every replication mode: node ids, keys, client operations, their
//! results and errors, and the time a protocol core is told.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A node's identity: a small positive integer given on the command line.
pub type NodeId = u64;

/// Identifies one client request inside one node while it is in flight.
pub type RequestId = u64;

/// A JSON value stored under a key. `null` means "absent".
pub type Value = serde_json::Value;

/// A key: a JSON integer or a JSON string. Integers sort before strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Key {
    /// A JSON integer key.
    Int(i64),
    /// A JSON string key.
    Str(String),
}

impl Key {
    /// Interprets a JSON value as a key; only integers and strings qualify.
    pub fn from_json(v: &Value) -> Option<Key> {
        match v {
            Value::Number(n) => n.as_i64().map(Key::Int),
            Value::String(s) => Some(Key::Str(s.clone())),
            _ => None,
        }
    }

    /// The key as the JSON value clients sent.
    pub fn to_json(&self) -> Value {
        match self {
            Key::Int(i) => Value::from(*i),
            Key::Str(s) => Value::from(s.clone()),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(i) => write!(f, "{i}"),
            Key::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// One micro-operation of a transaction, in the wire form `["append", k, v]`, `["r", k, v]`,
/// `["w", k, v]`, `["cas", k, [from, to]]` or `["inc", k, delta]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub enum MicroOp {
    /// Append `value` to the list at `key`.
    Append(Key, Value),
    /// Read `key`; the value is filled in by execution (`null` before).
    Read(Key, Value),
    /// Overwrite `key` with `value`.
    Write(Key, Value),
    /// Compare-and-set `key` from the first to the second element of a `[from, to]` pair; a
    /// mismatch fails the whole transaction, so a transaction of `cas` micro-ops is a guarded
    /// multi-key write (a bank transfer, a queue's head moved).
    Cas(Key, Value),
    /// Add the integer `delta` to the integer at `key` (`null` counts as 0): an increment the
    /// store computes, in one step, from the value it holds.
    Inc(Key, Value),
}

impl MicroOp {
    /// The key the micro-op touches.
    pub fn key(&self) -> &Key {
        match self {
            MicroOp::Append(k, _)
            | MicroOp::Read(k, _)
            | MicroOp::Write(k, _)
            | MicroOp::Cas(k, _)
            | MicroOp::Inc(k, _) => k,
        }
    }
}

impl TryFrom<Value> for MicroOp {
    type Error = String;
    fn try_from(v: Value) -> Result<Self, String> {
        let Value::Array(items) = v else {
            return Err("a micro-op must be a list [f, key, value]".into());
        };
        let [f, k, val]: [Value; 3] = items.try_into().map_err(|_| {
            "a micro-op must have exactly three elements [f, key, value]".to_string()
        })?;
        let key = Key::from_json(&k)
            .ok_or_else(|| format!("micro-op key {k} is not an integer or a string"))?;
        match f.as_str() {
            Some("append") => Ok(MicroOp::Append(key, val)),
            Some("r") => Ok(MicroOp::Read(key, val)),
            Some("w") => Ok(MicroOp::Write(key, val)),
            Some("cas") => match &val {
                Value::Array(pair) if pair.len() == 2 => Ok(MicroOp::Cas(key, val)),
                _ => Err(format!("a cas micro-op's value must be [from, to], not {val}")),
            },
            Some("inc") if val.is_i64() => Ok(MicroOp::Inc(key, val)),
            Some("inc") => Err(format!("an inc micro-op's delta must be an integer, not {val}")),
            _ => Err(format!(
                "micro-op function {f} is not \"append\", \"r\", \"w\", \"cas\" or \"inc\""
            )),
        }
    }
}

impl From<MicroOp> for Value {
    fn from(op: MicroOp) -> Value {
        let (f, k, v) = match op {
            MicroOp::Append(k, v) => ("append", k, v),
            MicroOp::Read(k, v) => ("r", k, v),
            MicroOp::Write(k, v) => ("w", k, v),
            MicroOp::Cas(k, v) => ("cas", k, v),
            MicroOp::Inc(k, v) => ("inc", k, v),
        };
        Value::Array(vec![Value::from(f), k.to_json(), v])
    }
}

/// A client request, as the HTTP API and the protocol cores see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum ClientOp {
    /// Read one key.
    Read {
        /// The key read.
        key: Key,
    },
    /// Overwrite one key.
    Write {
        /// The key written.
        key: Key,
        /// The new value.
        value: Value,
    },
    /// Compare-and-set: write `to` only if the current value equals `from`.
    Cas {
        /// The key.
        key: Key,
        /// The expected current value.
        from: Value,
        /// The new value.
        to: Value,
    },
    /// Append one element to the list at a key (`null` counts as the empty list).
    Append {
        /// The key.
        key: Key,
        /// The element appended.
        value: Value,
    },
    /// A transaction of micro-ops, executed atomically where the mode can.
    Txn {
        /// The micro-ops, in order.
        ops: Vec<MicroOp>,
    },
    /// A write that replaces the versions `context` names (the context a read under
    /// `--resolution siblings` returned) and is concurrent with every other: only quorum mode
    /// under siblings takes it; every other mode refuses it, since it keeps no contexts.
    Put {
        /// The key written.
        key: Key,
        /// The new value.
        value: Value,
        /// The versions the client read, which this write supersedes.
        context: Context,
    },
}

impl ClientOp {
    /// True when the operation only reads (so modes may serve it without replication).
    pub fn is_read_only(&self) -> bool {
        match self {
            ClientOp::Read { .. } => true,
            ClientOp::Txn { ops } => ops.iter().all(|o| matches!(o, MicroOp::Read(..))),
            _ => false,
        }
    }

    /// The distinct keys the operation touches, in order.
    pub fn keys(&self) -> Vec<Key> {
        let mut keys: Vec<Key> = match self {
            ClientOp::Read { key }
            | ClientOp::Write { key, .. }
            | ClientOp::Put { key, .. }
            | ClientOp::Cas { key, .. }
            | ClientOp::Append { key, .. } => vec![key.clone()],
            ClientOp::Txn { ops } => ops.iter().map(|o| o.key().clone()).collect(),
        };
        keys.sort();
        keys.dedup();
        keys
    }
}

/// The successful result of a client operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    /// The value a read saw (`null` when absent).
    Value(Value),
    /// A write, cas or append took effect.
    Done,
    /// A transaction's micro-ops with their reads filled in.
    Txn(Vec<MicroOp>),
    /// A read under `--resolution siblings`: every concurrent version's value (none when the
    /// key is absent) and the context a later write passes to supersede them all.
    Siblings {
        /// The values, in the order of the versions' dots.
        values: Vec<Value>,
        /// The versions read.
        context: Context,
    },
    /// A write under `--resolution siblings` took effect; a write passing this context
    /// supersedes it (and what it superseded).
    Written {
        /// The versions the write covers, its own included.
        context: Context,
    },
}

/// The causal context of a version under `--resolution siblings`: for each node, the
/// sequence numbers of the writes it coordinated that the version descends from. It is a
/// vector clock kept as exact sets rather than maxima, because one node's sequence numbers
/// run across all keys and a coordinator need not replicate the key it writes: a maximum
/// would claim writes the client never saw (see `modes/siblings.rs`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Context(pub BTreeMap<NodeId, BTreeSet<u64>>);

impl Context {
    /// Whether the write `seq` coordinated by `node` is in the context.
    pub fn contains(&self, node: NodeId, seq: u64) -> bool {
        self.0.get(&node).is_some_and(|s| s.contains(&seq))
    }

    /// Adds the write `seq` coordinated by `node`.
    pub fn insert(&mut self, node: NodeId, seq: u64) {
        self.0.entry(node).or_default().insert(seq);
    }

    /// Whether the context names no write at all (a blind write's).
    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }

    /// Adds everything `other` holds.
    pub fn extend(&mut self, other: &Context) {
        for (node, seqs) in &other.0 {
            self.0.entry(*node).or_default().extend(seqs.iter().copied());
        }
    }
}

/// Why an operation did not succeed. Each variant says whether it certainly did not take
/// effect (`definite`), which is what lets a client record `fail` instead of `info`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "kebab-case")]
pub enum OpError {
    /// This node does not coordinate writes; `leader` is the node that does, when known.
    #[error("this node is not the leader")]
    NotLeader {
        /// The node id of the current leader or primary, if known.
        leader: Option<NodeId>,
    },
    /// Nothing was proposed (no quorum, no lease, ...): certainly not applied.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The outcome is unknown: the operation may or may not take effect.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The compare-and-set found a different value: certainly not applied.
    #[error("cas mismatch: current value is {current}")]
    CasMismatch {
        /// The value the key held when the cas was evaluated.
        current: Value,
    },
    /// The request cannot be executed as asked (wrong type, unsupported shape).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// An unexpected failure after the operation may have been proposed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl OpError {
    /// The error code of the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            OpError::NotLeader { .. } => "not-leader",
            OpError::Unavailable(_) => "unavailable",
            OpError::Timeout(_) => "timeout",
            OpError::CasMismatch { .. } => "cas-mismatch",
            OpError::BadRequest(_) => "bad-request",
            OpError::Internal(_) => "internal",
        }
    }

    /// True when the operation certainly did not take effect.
    pub fn definite(&self) -> bool {
        !matches!(self, OpError::Timeout(_) | OpError::Internal(_))
    }
}

/// What a protocol core knows of time. Cores never read a clock themselves, so the same core
/// runs under a simulated clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Now {
    /// Monotonic milliseconds since some fixed origin of this process. Timers and leases use
    /// this, so clock-offset faults cannot stretch them.
    pub mono_ms: u64,
    /// The node's wall clock (host clock plus the configured offset) in microseconds since the
    /// Unix epoch. Only last-write-wins timestamps use it.
    pub wall_us: i64,
}

/// The mode-specific part of `/admin/status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoreStatus {
    /// leader, follower, candidate, primary, backup or peer.
    pub role: &'static str,
    /// Term, ballot round or epoch, as fits the mode.
    pub term: u64,
    /// The node this node believes coordinates writes, if any.
    pub leader: Option<NodeId>,
    /// Further fields (commit index, vector clock, ...), merged into the status object.
    pub extra: serde_json::Map<String, Value>,
}
