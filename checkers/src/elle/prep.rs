//! Transactions read out of a history into compact tables: one `Txn` per
//! client operation, its micro-ops in one flat `Vec<Mop>`, keys and values
//! interned to integers, and the elements of every list read in one flat
//! arena, where reads of a key that agree share one copy.
//!
//! This is the only pass that touches the history's values. A history is a
//! tree of small allocations scattered over the heap, so every later pass
//! that dereferenced them would pay a cache miss per value; with the codes
//! here, the analyses scan dense arrays instead.
//!
//! The transactions come from a [`Source`]: a [`History`], or the ops
//! `formats::txn_lines` read straight from a text (`elle::quick`). Both
//! go through the same reading and merging here, so the tables, and the
//! verdict drawn from them, are the same either way.

use std::fmt;

use rustc_hash::FxHashMap;

use crate::error::{CheckError, Location};
use crate::history::{History, OpType, Pair, Process};
use crate::txn::{MicroOpRef, visit_txn};
use crate::value::Value;

/// "No such thing" in the `u32` index columns below.
pub(crate) const NONE: u32 = u32::MAX;

/// The code of `nil`.
pub(crate) const NIL: u32 = u32::MAX;

/// Codes at or above this are interned non-integer values (or large or
/// negative integers); below it, a code is the integer itself.
const INTERNED: u32 = 1 << 31;

/// How a transaction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Committed: its completion carries what it read.
    Ok,
    /// Indeterminate: it may or may not have committed. Its reads are unknown.
    Info,
    /// Aborted: it had no effect.
    Fail,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Info => "info",
            Status::Fail => "fail",
        }
    }
}

/// One transaction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Txn {
    /// Position of the invocation in `History::ops`.
    pub invoke: u32,
    /// Position of the completion, `NONE` if it never completed.
    pub complete: u32,
    /// The client process.
    pub process: u64,
    /// First micro-op in `Prepared::mops`.
    pub first: u32,
    /// Number of micro-ops.
    pub len: u32,
    /// How it ended.
    pub status: Status,
}

impl Txn {
    /// Range of its micro-ops in `Prepared::mops`.
    pub fn mops(&self) -> std::ops::Range<usize> {
        self.first as usize..(self.first + self.len) as usize
    }

    /// The position of the op that names this transaction in reports: its
    /// completion when there is one, as Jepsen does.
    pub fn name_pos(&self) -> u32 {
        if self.complete == NONE { self.invoke } else { self.complete }
    }
}

/// What a micro-op does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MopKind {
    Append,
    Read,
    Write,
}

/// One micro-op, with its key and values as codes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mop {
    /// The transaction it belongs to.
    pub txn: u32,
    /// Interned key (index into `Prepared::keys`).
    pub key: u32,
    /// Scratch column for the analyses (a read's version, an append's position).
    pub aux: u32,
    /// The element appended, the value written, or (registers) the value
    /// read, as a code; for a list read, the offset of its elements in
    /// `Prepared::elems`.
    pub val: u32,
    /// For a list read, the number of elements (0 for nil).
    pub len: u32,
    /// What it does.
    pub kind: MopKind,
    /// Its position within the transaction.
    pub pos: u8,
}

/// Where the history's ops were recorded: how many there are, and the
/// `Op::index` of each position. Only these two facts of the history are
/// used once its transactions are read, so the tables need not hold the
/// history itself.
pub(crate) enum Positions<'a> {
    /// The history the transactions were read from.
    History(&'a History),
    /// The `Op::index` of each position, for transactions read another
    /// way than from a [`History`].
    Indices(Vec<u64>),
}

impl Positions<'_> {
    /// How many ops the history has.
    pub fn len(&self) -> usize {
        match self {
            Positions::History(h) => h.len(),
            Positions::Indices(indices) => indices.len(),
        }
    }

    /// The `Op::index` of the op at position `pos`.
    pub fn index(&self, pos: u32) -> u64 {
        match self {
            Positions::History(h) => h.ops()[pos as usize].index,
            Positions::Indices(indices) => indices[pos as usize],
        }
    }
}

/// A history's transactions, ready for analysis.
pub(crate) struct Prepared<'a> {
    pub positions: Positions<'a>,
    pub txns: Vec<Txn>,
    pub mops: Vec<Mop>,
    /// Elements of list reads, as codes; a read that is a prefix of
    /// another read of its key may lie inside that read's elements.
    pub elems: Vec<u32>,
    /// Interned keys, by id.
    pub keys: Vec<Value>,
    /// Whether reads return lists (list-append) rather than single values.
    pub lists: bool,
    /// Interned values, by code minus `INTERNED`.
    values: Vec<Value>,
}

/// A micro-op's key or value: one of a history's values, or an integer
/// read straight from a text. One source gives one kind only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Atom<'a> {
    Value(&'a Value),
    Int(i64),
}

impl Atom<'_> {
    /// The value it is.
    fn to_value(self) -> Value {
        match self {
            Atom::Value(v) => v.clone(),
            Atom::Int(i) => Value::Int(i),
        }
    }
}

impl fmt::Display for Atom<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Value(v) => v.fmt(f),
            Atom::Int(i) => i.fmt(f),
        }
    }
}

/// What a micro-op holds past its key.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Held<'a> {
    /// A value: an append's element, a write's or a read's value (a
    /// list-append read's is a list or `nil`, or the history is wrong).
    Atom(Atom<'a>),
    /// A list-append read's elements, read from a text (`nil` as none).
    Ints(&'a [i64]),
}

/// A micro-op as a [`Source`] gives it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item<'a> {
    pub kind: MopKind,
    pub key: Atom<'a>,
    pub held: Held<'a>,
}

impl fmt::Display for Item<'_> {
    /// As the micro-op is written: `[:append 1 2]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind {
            MopKind::Append => "append",
            MopKind::Read => "r",
            MopKind::Write => "w",
        };
        write!(f, "[:{name} {} ", self.key)?;
        match self.held {
            Held::Atom(a) => write!(f, "{a}]"),
            Held::Ints(elems) => {
                let elems: Vec<String> = elems.iter().map(i64::to_string).collect();
                write!(f, "[{}]]", elems.join(" "))
            }
        }
    }
}

/// Where [`Prepared::from_source`] reads transactions: each op's process,
/// function, type and micro-ops, by its position in the history.
pub(crate) trait Source<'a>: Sync {
    /// The invocations paired with their completions (`History::pairs`).
    fn pairs(&self) -> Result<Vec<Pair>, CheckError>;
    /// The op at `pos`'s process, if it is a client.
    fn client(&self, pos: usize) -> Option<u64>;
    /// The op at `pos`'s function, if it is not `txn`.
    fn other_function(&self, pos: usize) -> Option<String>;
    /// How the pair ended (`History::outcome`).
    fn outcome(&self, pair: &Pair) -> OpType;
    /// The micro-ops of the op at `pos` onto `out`, or what is wrong with
    /// them in words.
    fn items(&self, pos: usize, out: &mut Vec<Item<'a>>) -> Result<(), String>;
    /// Where the op at `pos` was recorded, for errors.
    fn locate(&self, pos: usize) -> Location;
    /// The history's length and op indices.
    fn positions(&self) -> Positions<'a>;
}

impl<'a> Source<'a> for &'a History {
    fn pairs(&self) -> Result<Vec<Pair>, CheckError> {
        Ok(History::pairs(self)?)
    }

    fn client(&self, pos: usize) -> Option<u64> {
        match self.ops()[pos].process {
            Process::Client(p) => Some(p),
            Process::Nemesis => None,
        }
    }

    fn other_function(&self, pos: usize) -> Option<String> {
        let f = &self.ops()[pos].f;
        (f != "txn").then(|| format!("{f:?}"))
    }

    fn outcome(&self, pair: &Pair) -> OpType {
        History::outcome(self, pair)
    }

    fn items(&self, pos: usize, out: &mut Vec<Item<'a>>) -> Result<(), String> {
        // Each micro-op is handed over as read, with no buffer between:
        // this runs once per transaction.
        visit_txn(&self.ops()[pos].value, |_, m| {
            let kind = match m {
                MicroOpRef::Append { .. } => MopKind::Append,
                MicroOpRef::Read { .. } => MopKind::Read,
                MicroOpRef::Write { .. } => MopKind::Write,
            };
            out.push(Item {
                kind,
                key: Atom::Value(m.key()),
                held: Held::Atom(Atom::Value(m.value())),
            });
            Ok(())
        })
    }

    fn locate(&self, pos: usize) -> Location {
        History::locate(self, pos)
    }

    fn positions(&self) -> Positions<'a> {
        Positions::History(self)
    }
}

/// Interns values to codes.
#[derive(Default)]
struct Codes<'a> {
    ids: FxHashMap<Atom<'a>, u32>,
    values: Vec<Atom<'a>>,
}

impl<'a> Codes<'a> {
    #[inline]
    fn code(&mut self, v: Atom<'a>) -> u32 {
        match v {
            Atom::Value(&Value::Int(i)) | Atom::Int(i) if (0..i64::from(INTERNED)).contains(&i) => {
                i as u32
            }
            Atom::Value(Value::Nil) => NIL,
            _ => match self.ids.get(&v) {
                Some(&c) => c,
                None => {
                    let c = INTERNED + self.values.len() as u32;
                    self.ids.insert(v, c);
                    self.values.push(v);
                    c
                }
            },
        }
    }
}

/// One slice of the history, read on its own thread: ids (transactions,
/// micro-ops, keys, interned values) are local to the chunk until merged.
struct Chunk<'a> {
    txns: Vec<Txn>,
    mops: Vec<Mop>,
    /// Elements of list reads: the reads that are not a prefix of their
    /// key's longest read so far, then each key's longest read (see
    /// `ReadLists`).
    elems: Vec<u32>,
    /// Keys by local id, with their local codes.
    keys: Vec<(Atom<'a>, u32)>,
    codes: Codes<'a>,
}

/// The elements of a chunk's list reads, stored once per key where reads
/// agree.
///
/// Every append adds a unique element, so the reads of a key in a valid
/// history are prefixes of one another: a million transactions read 23
/// million elements, which are a few thousand lists' worth per chunk. Each
/// key keeps its longest read so far; a read that is a prefix of it (or
/// extends it) is stored as a length into it, and only a read that
/// disagrees is copied whole. `Prepared::read_elems` gives every read the
/// same elements either way: what differs is only where they lie.
#[derive(Default)]
struct ReadLists {
    /// Each local key's longest read so far, as codes.
    longest: Vec<Vec<u32>>,
    /// Micro-ops (positions in `Chunk::mops`) whose elements are a prefix
    /// of their key's list in `longest`.
    shared: Vec<u32>,
    /// A read's codes, gathered before they are compared.
    scratch: Vec<u32>,
}

impl ReadLists {
    /// Stores `scratch`, the codes of a read of local key `key` by micro-op
    /// `mop`: returns its offset in `odd` (the reads stored whole), or
    /// `None` when it is a prefix of the key's list (its offset is then set
    /// by `lay_out`).
    fn store(&mut self, key: u32, mop: u32, odd: &mut Vec<u32>) -> Option<u32> {
        let k = key as usize;
        if self.longest.len() <= k {
            self.longest.resize_with(k + 1, Vec::new);
        }
        let longest = &mut self.longest[k];
        let read = &self.scratch;
        if read.len() <= longest.len() {
            if longest.starts_with(read) {
                self.shared.push(mop);
                return None;
            }
        } else if read.starts_with(longest) {
            longest.extend_from_slice(&read[longest.len()..]);
            self.shared.push(mop);
            return None;
        }
        let off = odd.len() as u32;
        odd.extend_from_slice(read);
        Some(off)
    }

    /// Appends each key's list to `elems` (which holds the reads stored
    /// whole) and points the shared reads into them.
    fn lay_out(self, elems: &mut Vec<u32>, mops: &mut [Mop]) -> Option<()> {
        let mut start = Vec::with_capacity(self.longest.len());
        for list in &self.longest {
            start.push(u32::try_from(elems.len()).ok()?);
            elems.extend_from_slice(list);
        }
        u32::try_from(elems.len()).ok()?;
        for &i in &self.shared {
            let m = &mut mops[i as usize];
            m.val = start[m.key as usize];
        }
        Some(())
    }
}

/// The error for a history with more than `u32::MAX` of something.
fn too_big(workload: &str) -> CheckError {
    CheckError::BadOption(format!(
        "history too large for the {workload} checker (more than 4 billion operations)"
    ))
}

/// Reads the transactions of `pairs` (see `Prepared::from_source`).
fn read_chunk<'a, S: Source<'a>>(
    src: &S,
    pairs: &[Pair],
    workload: &str,
    allowed: &[MopKind],
) -> Result<Chunk<'a>, CheckError> {
    let lists = allowed.contains(&MopKind::Append);
    let mut c = Chunk {
        txns: Vec::with_capacity(pairs.len()),
        mops: Vec::with_capacity(pairs.len() * 3),
        elems: Vec::new(),
        keys: Vec::new(),
        codes: Codes::default(),
    };
    let mut key_ids: FxHashMap<u32, u32> = FxHashMap::default();
    let mut buf: Vec<Item<'a>> = Vec::with_capacity(8);
    let mut reads = ReadLists::default();
    let too_big = || too_big(workload);
    for pair in pairs {
        let Some(process) = src.client(pair.invoke) else { continue };
        if let Some(f) = src.other_function(pair.invoke) {
            return Err(CheckError::BadOp {
                location: src.locate(pair.invoke).field("f"),
                message: format!(
                    "the {workload} checker reads transactions (f = txn); this op has f = {f}"
                ),
            });
        }
        let status = match src.outcome(pair) {
            OpType::Ok => Status::Ok,
            OpType::Fail => Status::Fail,
            _ => Status::Info,
        };
        let complete = match pair.complete {
            Some(c) if c != pair.invoke => u32::try_from(c).map_err(|_| too_big())?,
            _ => NONE,
        };
        let invoke = u32::try_from(pair.invoke).map_err(|_| too_big())?;
        let txn_id = c.txns.len() as u32;
        let value_pos = if status == Status::Ok { complete as usize } else { pair.invoke };
        let bad = |message: String| CheckError::BadOp {
            location: src.locate(value_pos).field("value"),
            message,
        };
        buf.clear();
        src.items(value_pos, &mut buf).map_err(bad)?;
        if buf.len() > usize::from(u8::MAX) {
            return Err(bad(format!(
                "transaction has {} micro-ops; at most 255 are supported",
                buf.len()
            )));
        }
        let first = u32::try_from(c.mops.len()).map_err(|_| too_big())?;
        for (i, m) in buf.iter().enumerate() {
            if !allowed.contains(&m.kind) {
                return Err(bad(format!(
                    "micro-op {i} is {m}, which a {workload} history cannot hold ({})",
                    if lists { "only :append and :r" } else { "only :w and :r" }
                )));
            }
            // Keys are interned through their value code, so a lookup
            // hashes an integer and never touches the history again.
            let kc = c.codes.code(m.key);
            let key = match key_ids.get(&kc) {
                Some(&k) => k,
                None => {
                    let k = u32::try_from(c.keys.len()).map_err(|_| too_big())?;
                    key_ids.insert(kc, k);
                    c.keys.push((m.key, kc));
                    k
                }
            };
            let (val, len) = match (m.kind, m.held) {
                // Reads of transactions that did not commit are unknown.
                (MopKind::Read, _) if status != Status::Ok => (if lists { 0 } else { NIL }, 0),
                (MopKind::Read, held) if lists => {
                    let codes = &mut c.codes;
                    reads.scratch.clear();
                    match held {
                        Held::Ints(elems) => {
                            reads.scratch.extend(elems.iter().map(|&e| codes.code(Atom::Int(e))))
                        }
                        Held::Atom(Atom::Value(Value::List(items))) => {
                            reads.scratch.extend(items.iter().map(|e| codes.code(Atom::Value(e))))
                        }
                        Held::Atom(Atom::Value(Value::Nil)) => {}
                        Held::Atom(other) => {
                            return Err(bad(format!(
                                "micro-op {i} read key {} as {other}; a list-append read \
                                 returns a list (or nil)",
                                m.key
                            )));
                        }
                    }
                    let len = u32::try_from(reads.scratch.len()).map_err(|_| too_big())?;
                    let mop = u32::try_from(c.mops.len()).map_err(|_| too_big())?;
                    // A shared read's offset is known once every list of the
                    // chunk is laid out.
                    let off = reads.store(key, mop, &mut c.elems).unwrap_or(0);
                    (off, len)
                }
                (_, Held::Atom(v)) => (c.codes.code(v), 0),
                (_, Held::Ints(_)) => {
                    return Err(bad(format!("micro-op {i} holds a list where one value belongs")));
                }
            };
            c.mops.push(Mop { txn: txn_id, key, aux: NONE, val, len, kind: m.kind, pos: i as u8 });
        }
        c.txns.push(Txn { invoke, complete, process, first, len: buf.len() as u32, status });
    }
    reads.lay_out(&mut c.elems, &mut c.mops).ok_or_else(too_big)?;
    Ok(c)
}

impl<'a> Prepared<'a> {
    /// Reads every client operation of `history` as a transaction.
    ///
    /// `workload` names the checker in error messages; `allowed` says which
    /// micro-op kinds the workload has (appends and reads, or writes and
    /// reads). With appends allowed, reads must return lists.
    ///
    /// The history is read in chunks on all cores (this pass is bound by
    /// memory latency, walking the history's values), then the chunks are
    /// merged, turning chunk-local ids into global ones. The chunks go in
    /// waves of a few per core, each wave merged before the next is read:
    /// were all chunks read first, the tables would exist twice over at the
    /// merge, and the allocator keeps the freed chunk memory of the worker
    /// threads rather than giving it back: a million-transaction history
    /// cost 100 to 200 MiB more at this pass's peak.
    pub fn new(
        history: &'a History,
        workload: &str,
        allowed: &[MopKind],
    ) -> Result<Prepared<'a>, CheckError> {
        Prepared::from_source(&history, workload, allowed)
    }

    /// [`Prepared::new`] on the transactions `src` gives.
    pub fn from_source<S: Source<'a>>(
        src: &S,
        workload: &str,
        allowed: &[MopKind],
    ) -> Result<Prepared<'a>, CheckError> {
        use rayon::prelude::*;
        const CHUNK: usize = 4096;
        let lists = allowed.contains(&MopKind::Append);
        let pairs = src.pairs()?;
        let wave = CHUNK * rayon::current_num_threads() * 4;
        let mut txns: Vec<Txn> = Vec::with_capacity(pairs.len());
        let mut mops: Vec<Mop> = Vec::new();
        let mut elems: Vec<u32> = Vec::new();
        let mut key_ids: FxHashMap<u32, u32> = FxHashMap::default();
        let mut keys: Vec<Value> = Vec::new();
        let mut codes = Codes::default();
        for (w, wave_pairs) in pairs.chunks(wave).enumerate() {
            let chunks: Vec<Result<Chunk<'a>, CheckError>> = wave_pairs
                .par_chunks(CHUNK)
                .map(|p| read_chunk(src, p, workload, allowed))
                .collect();
            if w == 1 {
                // Room for the micro-ops of the whole history, as the first
                // wave predicts them, plus an eighth: growing a table of
                // millions by doubling would copy it while the old copy is
                // still held (the allocator cannot always grow it in place).
                let predicted = mops.len() as u128 * pairs.len() as u128 / wave as u128;
                let room = usize::try_from(predicted + predicted / 8).unwrap_or(usize::MAX);
                mops.reserve_exact(room.saturating_sub(mops.len()));
            }
            // Chunks are in history order, so the first error is the earliest.
            for c in chunks {
                let c = c?;
                let values: Vec<u32> = c.codes.values.iter().map(|&v| codes.code(v)).collect();
                let remap = |code: u32| {
                    if code >= INTERNED && code != NIL {
                        values[(code - INTERNED) as usize]
                    } else {
                        code
                    }
                };
                let key_map: Vec<u32> = c
                    .keys
                    .iter()
                    .map(|&(v, local)| {
                        *key_ids.entry(remap(local)).or_insert_with(|| {
                            keys.push(v.to_value());
                            (keys.len() - 1) as u32
                        })
                    })
                    .collect();
                let (txn_off, mop_off, elem_off) = (txns.len(), mops.len(), elems.len());
                if txn_off + c.txns.len() >= NONE as usize
                    || mop_off + c.mops.len() >= NONE as usize
                    || elem_off + c.elems.len() >= NONE as usize
                {
                    return Err(too_big(workload));
                }
                txns.extend(c.txns.iter().map(|t| Txn { first: t.first + mop_off as u32, ..*t }));
                mops.extend(c.mops.iter().map(|m| Mop {
                    txn: m.txn + txn_off as u32,
                    key: key_map[m.key as usize],
                    val: if lists && m.kind == MopKind::Read {
                        m.val + elem_off as u32
                    } else {
                        remap(m.val)
                    },
                    ..*m
                }));
                elems.extend(c.elems.iter().map(|&e| remap(e)));
            }
        }
        // The few distinct keys and values that are not small integers,
        // copied so that the tables hold nothing of the history.
        let values = codes.values.into_iter().map(Atom::to_value).collect();
        let positions = src.positions();
        Ok(Prepared { positions, txns, mops, elems, keys, lists, values })
    }

    /// These tables, free of what they were read from when they hold
    /// nothing of it (transactions read from a text, `elle::quick`), so
    /// that it can be freed before the analyses; `None` for a history's.
    pub fn detached(self) -> Option<Prepared<'static>> {
        let Prepared { positions, txns, mops, elems, keys, lists, values } = self;
        match positions {
            Positions::Indices(indices) => Some(Prepared {
                positions: Positions::Indices(indices),
                txns,
                mops,
                elems,
                keys,
                lists,
                values,
            }),
            Positions::History(_) => None,
        }
    }

    /// The micro-ops of transaction `t`.
    pub fn txn_mops(&self, t: u32) -> &[Mop] {
        &self.mops[self.txns[t as usize].mops()]
    }

    /// Whether micro-op `i`'s transaction does another `kind` of the same
    /// key after it: then what `i` wrote is an intermediate state of the
    /// transaction, which no other transaction may see.
    pub fn rewritten_later(&self, i: usize, kind: MopKind) -> bool {
        let m = &self.mops[i];
        let end = self.txns[m.txn as usize].mops().end;
        self.mops[i + 1..end].iter().any(|n| n.kind == kind && n.key == m.key)
    }

    /// The elements a list read returned, as codes.
    #[inline]
    pub fn read_elems(&self, m: &Mop) -> &[u32] {
        &self.elems[m.val as usize..(m.val + m.len) as usize]
    }

    /// The `Op::index` that names transaction `t`.
    pub fn op_index(&self, t: u32) -> u64 {
        self.positions.index(self.txns[t as usize].name_pos())
    }

    /// The `Op::index` of transaction `t`'s invocation.
    pub fn invoke_index(&self, t: u32) -> u64 {
        self.positions.index(self.txns[t as usize].invoke)
    }

    /// The key with id `k`.
    pub fn key(&self, k: u32) -> &Value {
        &self.keys[k as usize]
    }

    /// A value code as text, as EDN writes the value.
    pub fn text(&self, code: u32) -> String {
        if code == NIL {
            "nil".into()
        } else if code >= INTERNED {
            self.values[(code - INTERNED) as usize].to_string()
        } else {
            code.to_string()
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

    fn prepared(h: &History) -> Prepared<'_> {
        Prepared::new(h, "list-append", &[MopKind::Append, MopKind::Read]).expect("prepared")
    }

    #[test]
    fn an_append_followed_by_another_to_its_key_is_rewritten_later() {
        let h = formats::parse(HISTORY, "test", None).expect("a readable history");
        let prep = prepared(&h);
        let first = prep.txns[0].mops().start;
        let later: Vec<bool> =
            (first..first + 3).map(|i| prep.rewritten_later(i, MopKind::Append)).collect();
        assert_eq!(later, vec![true, true, false], "the read and the first append come before one");
        let last = prep.txns[1].mops().end - 1;
        assert!(!prep.rewritten_later(last, MopKind::Append), "the other transaction's own last");
    }

    #[test]
    fn reads_that_agree_share_their_elements_and_each_reads_what_it_read() {
        let h = formats::parse(
            "{:index 0, :process 0, :type :invoke, :f :txn, :value [[:append :x 1] [:append :x 2]]}\n\
             {:index 1, :process 0, :type :ok, :f :txn, :value [[:append :x 1] [:append :x 2]]}\n\
             {:index 2, :process 1, :type :invoke, :f :txn, :value [[:r :x nil] [:r :y nil]]}\n\
             {:index 3, :process 1, :type :ok, :f :txn, :value [[:r :x [1]] [:r :y nil]]}\n\
             {:index 4, :process 2, :type :invoke, :f :txn, :value [[:r :x nil] [:r :x nil]]}\n\
             {:index 5, :process 2, :type :ok, :f :txn, :value [[:r :x [1 2]] [:r :x [1]]]}\n\
             {:index 6, :process 3, :type :invoke, :f :txn, :value [[:r :x nil]]}\n\
             {:index 7, :process 3, :type :ok, :f :txn, :value [[:r :x [2 1]]]}\n",
            "test",
            None,
        )
        .expect("a readable history");
        let prep = prepared(&h);
        let reads: Vec<Vec<u32>> = prep
            .mops
            .iter()
            .filter(|m| m.kind == MopKind::Read)
            .map(|m| prep.read_elems(m).to_vec())
            .collect();
        assert_eq!(reads, vec![vec![1], vec![], vec![1, 2], vec![1], vec![2, 1]]);
        // [1], [1 2] and [1] are one list of key x, [2 1] disagrees and is
        // stored whole; y's list is empty.
        assert_eq!(prep.elems.len(), 4, "elements stored: {:?}", prep.elems);
    }
}
