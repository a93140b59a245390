//! Sequential specifications for the linearizability checker, and their
//! translation from history operations into compact model operations.
//!
//! Every model interns the values it sees into `u32` ids before the search,
//! so that states are small, cheap to clone, hash and compare. Knossos's
//! conventions are kept: a read that returned `nil` (or whose result is
//! unknown) constrains nothing; a failed op did not happen; a crashed op may
//! take effect at any point after its invocation, or never.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::txn::{MicroOp, parse_txn};
use crate::value::Value;

/// A sequential specification the search can step.
pub(crate) trait Model: Send {
    /// A model state. Small and cheap to clone: the search stores many.
    type State: Clone + Eq + Hash + Send + Debug;
    /// An operation with its observed output.
    type Op: Clone + Eq + Hash + Send + Sync + Debug;
    /// The initial state.
    fn init(&self) -> Self::State;
    /// The state after `op`, or `None` when `op`'s output is impossible in `state`.
    fn step(&mut self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
    /// Heap bytes a state holds, for the memory budget.
    fn state_bytes(_state: &Self::State) -> usize {
        0
    }
    /// Called when `op` is linearized, so that a model can keep track of
    /// the operations still to come (see `doomed`). `ret` is the history
    /// position of the op's completion (`u32::MAX` for a crashed op).
    fn on_lift(&mut self, _op: &Self::Op, _ret: u32) {}
    /// Called when `op` is taken back out of the linearization.
    fn on_unlift(&mut self, _op: &Self::Op, _ret: u32) {}
    /// When no continuation from `state` (just reached by `op`) can explain
    /// an operation still to come, the completion position of that
    /// operation (the witness). Lets a model prune a branch at the step that
    /// dooms it instead of many steps later. Must never answer for a state
    /// from which a linearization exists.
    fn doomed(&self, _state: &Self::State, _op: &Self::Op) -> Option<u32> {
        None
    }
    /// Why `op`, which `doomed` named, can never be explained, in words
    /// that follow "from every state the model can be in just before that":
    /// for evidence. `None` keeps the general wording.
    fn doom_reason(&self, _op: &Self::Op) -> Option<String> {
        None
    }
    /// The state in words, for evidence.
    fn show_state(&self, state: &Self::State) -> String;
}

/// Builds a model's operations from history ops, then the model itself.
pub(crate) trait ModelKind: Send {
    /// The model this kind builds.
    type M: Model + Clone;
    /// Translates one paired operation. `output` is the completion's value
    /// for an `ok` op and `None` for a crashed one. `Ok(None)` drops an op
    /// that can neither change the state nor be contradicted.
    fn compile(
        &mut self,
        f: &str,
        key: Option<&Value>,
        input: &Value,
        output: Option<&Value>,
    ) -> Result<Option<<Self::M as Model>::Op>, String>;
    /// The model for one partition, whose operations may be rewritten
    /// (for instance to renumber keys from 0). `calls` and `rets` give each
    /// op's invocation and completion positions (`u32::MAX` when it crashed).
    fn model_for(
        &mut self,
        ops: &mut [<Self::M as Model>::Op],
        calls: &[u32],
        rets: &[u32],
    ) -> Self::M;

    /// Which ops the search needs: `false` for a crashed op whose effect no
    /// completed op can ever observe (a write of a value nobody reads, an add
    /// of an element no read contains). Leaving such an op out of every
    /// linearization changes no completed op's result, so dropping it is
    /// exact; and it keeps the search from trying every subset of them.
    fn useful(&self, ops: &[<Self::M as Model>::Op], rets: &[u32]) -> Vec<bool> {
        vec![true; ops.len().min(rets.len())]
    }
}

/// Interns values to ids; id 0 is `nil`.
#[derive(Clone, Debug)]
pub(crate) struct Interner {
    map: FxHashMap<Value, u32>,
    values: Vec<Value>,
    /// `values` frozen for sharing, rebuilt only when values were added.
    shared: Option<Arc<[Value]>>,
}

impl Default for Interner {
    fn default() -> Self {
        let mut i = Interner { map: FxHashMap::default(), values: Vec::new(), shared: None };
        i.id(&Value::Nil);
        i
    }
}

impl Interner {
    pub(crate) fn id(&mut self, v: &Value) -> u32 {
        if let Some(&id) = self.map.get(v) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(v.clone());
        self.map.insert(v.clone(), id);
        id
    }

    /// The values by id, shared by every partition's model.
    fn frozen(&mut self) -> Arc<[Value]> {
        if self.shared.as_ref().is_none_or(|s| s.len() != self.values.len()) {
            self.shared = Some(self.values.clone().into());
        }
        self.shared.clone().unwrap_or_else(|| Arc::from([]))
    }
}

/// Stands for every value that no completed operation ever observes (a
/// value written but never read, an element enqueued but never dequeued).
/// Such values are interchangeable, so giving them one id merges states
/// that differ only in which unobserved value they hold, or in the order of
/// unobserved elements: the search no longer enumerates orders nothing can
/// tell apart.
pub(crate) const UNOBSERVED: u32 = u32::MAX - 1;

fn show(values: &[Value], id: u32) -> String {
    if id == UNOBSERVED {
        return "«a value nothing reads»".into();
    }
    values.get(id as usize).map_or_else(|| format!("#{id}"), ToString::to_string)
}

fn unknown_function(model: &str, f: &str, known: &str) -> String {
    format!("the {model} model has no function {f:?}; it knows {known}")
}

// ---------------------------------------------------------------- registers

/// A read/write register, or a compare-and-set register.
#[derive(Clone, Debug)]
pub(crate) struct Register {
    values: Arc<[Value]>,
    init: u32,
    /// Per value: completed ops still to come that need the register to
    /// hold it (reads returning it, successful CASes from it).
    readers: FxHashMap<u32, u32>,
    /// Per value: ops still to come that may write it (writes, CASes to it,
    /// crashed or not).
    producers: FxHashMap<u32, u32>,
    /// Values with readers to come and no producer left: once the register
    /// holds anything else, those readers can never be satisfied.
    orphans: rustc_hash::FxHashSet<u32>,
    /// Completion positions of each value's readers, and which of them are
    /// linearized, to name a reader as the witness.
    reader_rets: Arc<FxHashMap<u32, Vec<u32>>>,
    lifted: rustc_hash::FxHashSet<u32>,
}

impl Register {
    fn recount(&mut self, v: u32) {
        let needed = self.readers.get(&v).is_some_and(|&c| c > 0);
        let available = self.producers.get(&v).is_some_and(|&c| c > 0);
        if needed && !available {
            self.orphans.insert(v);
        } else {
            self.orphans.remove(&v);
        }
    }

    fn count(map: &mut FxHashMap<u32, u32>, v: u32, up: bool) {
        let c = map.entry(v).or_insert(0);
        *c = if up { *c + 1 } else { c.saturating_sub(1) };
    }

    /// Adjusts the counts for `op` leaving (`up == false`) or re-entering
    /// the set of ops still to come.
    fn track(&mut self, op: &RegOp, ret: u32, up: bool) {
        let completed = ret != u32::MAX;
        match *op {
            RegOp::Read(v) => {
                Self::count(&mut self.readers, v, up);
                self.recount(v);
            }
            RegOp::Write(v) => {
                Self::count(&mut self.producers, v, up);
                self.recount(v);
            }
            RegOp::Cas(from, to) => {
                if completed {
                    Self::count(&mut self.readers, from, up);
                    self.recount(from);
                }
                Self::count(&mut self.producers, to, up);
                self.recount(to);
            }
        }
        if completed && matches!(op, RegOp::Read(_) | RegOp::Cas(..)) {
            if up {
                self.lifted.remove(&ret);
            } else {
                self.lifted.insert(ret);
            }
        }
    }
}

/// A register operation with its observed output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RegOp {
    /// A read that returned this value.
    Read(u32),
    /// A write of this value.
    Write(u32),
    /// A successful compare-and-set from the first value to the second.
    Cas(u32, u32),
}

impl Model for Register {
    type State = u32;
    type Op = RegOp;
    fn init(&self) -> u32 {
        self.init
    }
    fn step(&mut self, s: &u32, op: &RegOp) -> Option<u32> {
        match *op {
            RegOp::Read(v) => (v == *s).then_some(*s),
            RegOp::Write(v) => Some(v),
            RegOp::Cas(from, to) => (from == *s).then_some(to),
        }
    }
    fn on_lift(&mut self, op: &RegOp, ret: u32) {
        self.track(op, ret, false);
    }
    fn on_unlift(&mut self, op: &RegOp, ret: u32) {
        self.track(op, ret, true);
    }
    /// A value that some op still to come must read, and that no op still to
    /// come can write, is lost as soon as the register holds anything else:
    /// the classic stale read, caught at the write that overwrote it.
    fn doomed(&self, s: &u32, _op: &RegOp) -> Option<u32> {
        let lost = self.orphans.iter().find(|&&v| v != *s)?;
        self.reader_rets.get(lost)?.iter().copied().find(|r| !self.lifted.contains(r))
    }
    fn doom_reason(&self, op: &RegOp) -> Option<String> {
        let RegOp::Read(v) = *op else { return None };
        let v = show(&self.values, v);
        Some(format!(
            "every way forward overwrites {v} before this read can return it, and no operation \
             still to come writes {v} again"
        ))
    }
    fn show_state(&self, s: &u32) -> String {
        show(&self.values, *s)
    }
}

/// Builds register ops (`read`, `write`, and `cas` when `cas` is set).
pub(crate) struct RegisterKind {
    pub cas: bool,
    pub init: Value,
    pub interner: Interner,
}

impl ModelKind for RegisterKind {
    type M = Register;
    fn compile(
        &mut self,
        f: &str,
        _key: Option<&Value>,
        input: &Value,
        output: Option<&Value>,
    ) -> Result<Option<RegOp>, String> {
        let name = if self.cas { "cas-register" } else { "register" };
        match f {
            "read" | "r" | "get" => Ok(match output {
                None | Some(Value::Nil) => None,
                Some(v) => Some(RegOp::Read(self.interner.id(v))),
            }),
            "write" | "w" | "put" => Ok(Some(RegOp::Write(self.interner.id(input)))),
            "cas" if self.cas => match input {
                Value::List(pair) if pair.len() == 2 => {
                    Ok(Some(RegOp::Cas(self.interner.id(&pair[0]), self.interner.id(&pair[1]))))
                }
                other => Err(format!("a cas takes [from to], found {other}")),
            },
            _ => Err(unknown_function(
                name,
                f,
                if self.cas { "read, write and cas" } else { "read and write" },
            )),
        }
    }
    fn model_for(&mut self, ops: &mut [RegOp], _calls: &[u32], rets: &[u32]) -> Register {
        let init = self.interner.id(&self.init);
        let mut observed = rustc_hash::FxHashSet::default();
        observed.insert(init);
        for (op, &ret) in ops.iter().zip(rets) {
            match *op {
                RegOp::Read(v) if ret != u32::MAX => {
                    observed.insert(v);
                }
                RegOp::Cas(from, _) => {
                    observed.insert(from);
                }
                _ => {}
            }
        }
        for op in ops.iter_mut() {
            match op {
                RegOp::Write(v) | RegOp::Cas(_, v) if !observed.contains(v) => *v = UNOBSERVED,
                _ => {}
            }
        }
        let mut model = Register {
            values: self.interner.frozen(),
            init,
            readers: FxHashMap::default(),
            producers: FxHashMap::default(),
            orphans: Default::default(),
            reader_rets: Arc::default(),
            lifted: Default::default(),
        };
        let mut reader_rets: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
        for (op, &ret) in ops.iter().zip(rets) {
            model.track(op, ret, true);
            match *op {
                RegOp::Read(v) | RegOp::Cas(v, _) if ret != u32::MAX => {
                    reader_rets.entry(v).or_default().push(ret)
                }
                _ => {}
            }
        }
        for rets in reader_rets.values_mut() {
            rets.sort_unstable();
        }
        model.reader_rets = Arc::new(reader_rets);
        model
    }
    fn useful(&self, ops: &[RegOp], rets: &[u32]) -> Vec<bool> {
        // A value is observed when a completed read returns it or any CAS
        // compares against it.
        let mut observed = rustc_hash::FxHashSet::default();
        for (op, &ret) in ops.iter().zip(rets) {
            match *op {
                RegOp::Read(v) if ret != u32::MAX => {
                    observed.insert(v);
                }
                RegOp::Cas(from, _) => {
                    observed.insert(from);
                }
                _ => {}
            }
        }
        ops.iter()
            .zip(rets)
            .map(|(op, &ret)| match *op {
                RegOp::Write(v) | RegOp::Cas(_, v) if ret == u32::MAX => observed.contains(&v),
                _ => true,
            })
            .collect()
    }
}

// ---------------------------------------------------------- multi-register

/// Several registers read and written together in transactions (Knossos's
/// multi-register): `[[:r :x 1] [:w :y 2]]`.
#[derive(Clone, Debug)]
pub(crate) struct MultiRegister {
    values: Arc<[Value]>,
    keys: Arc<[Value]>,
    /// Each register's initial value (interned), by key slot.
    init: Box<[u32]>,
}

/// A micro-operation on register `slot`: read `Some(value)` (known) or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SlotOp {
    Read(u32, u32),
    Write(u32, u32),
}

impl Model for MultiRegister {
    type State = Box<[u32]>;
    type Op = Box<[SlotOp]>;
    fn init(&self) -> Box<[u32]> {
        self.init.clone()
    }
    fn step(&mut self, s: &Box<[u32]>, op: &Box<[SlotOp]>) -> Option<Box<[u32]>> {
        let mut next = s.clone();
        for m in op.iter() {
            match *m {
                SlotOp::Read(k, v) if next[k as usize] != v => return None,
                SlotOp::Read(..) => {}
                SlotOp::Write(k, v) => next[k as usize] = v,
            }
        }
        Some(next)
    }
    fn state_bytes(s: &Box<[u32]>) -> usize {
        s.len() * 4
    }
    fn show_state(&self, s: &Box<[u32]>) -> String {
        let parts: Vec<String> = s
            .iter()
            .enumerate()
            .map(|(k, v)| format!("{} {}", self.keys[k], show(&self.values, *v)))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }
}

/// Builds multi-register transactions.
#[derive(Default)]
pub(crate) struct MultiRegisterKind {
    pub interner: Interner,
    pub keys: Interner,
    /// `--init`: a map from key to initial value (keys it leaves out start
    /// nil), or one value for every register; nil by default.
    pub init: Value,
}

impl MultiRegisterKind {
    /// The initial value of register `key`. A map given on the command line
    /// in EDN names keys as keywords (`{:x 0}`) while a JSON history names
    /// them as strings (`"x"`), so a keyword and a string of the same text
    /// are the same key here.
    fn initial(&self, key: &Value) -> Value {
        match &self.init {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| {
                    k == key || matches!((k.as_str(), key.as_str()), (Some(a), Some(b)) if a == b)
                })
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            other => other.clone(),
        }
    }
}

impl ModelKind for MultiRegisterKind {
    type M = MultiRegister;
    fn compile(
        &mut self,
        _f: &str,
        _key: Option<&Value>,
        input: &Value,
        output: Option<&Value>,
    ) -> Result<Option<Box<[SlotOp]>>, String> {
        // Writes come from the invocation (a crashed op has no completion);
        // reads from the completion.
        let source = output.unwrap_or(input);
        let mut out: SmallVec<[SlotOp; 4]> = SmallVec::new();
        for m in parse_txn(source)? {
            match m {
                MicroOp::Read { key, value } => {
                    if output.is_some() && !value.is_nil() {
                        let k = self.keys.id(&key) - 1;
                        out.push(SlotOp::Read(k, self.interner.id(&value)));
                    }
                }
                MicroOp::Write { key, value } => {
                    let k = self.keys.id(&key) - 1;
                    out.push(SlotOp::Write(k, self.interner.id(&value)));
                }
                MicroOp::Append { .. } => {
                    return Err("the multi-register model has reads and writes, not appends".into());
                }
            }
        }
        Ok((!out.is_empty()).then(|| out.into_vec().into_boxed_slice()))
    }
    fn model_for(
        &mut self,
        _ops: &mut [Box<[SlotOp]>],
        _calls: &[u32],
        _rets: &[u32],
    ) -> MultiRegister {
        // Key ids start at 1 (0 is nil in the interner); slots are id - 1.
        let keys: Arc<[Value]> = self.keys.values[1..].to_vec().into();
        let init = keys.iter().map(|k| self.interner.id(&self.initial(k))).collect();
        MultiRegister { values: self.interner.frozen(), keys, init }
    }
    fn useful(&self, ops: &[Box<[SlotOp]>], rets: &[u32]) -> Vec<bool> {
        let mut observed = rustc_hash::FxHashSet::default();
        for (op, &ret) in ops.iter().zip(rets) {
            if ret != u32::MAX {
                for m in op.iter() {
                    if let SlotOp::Read(k, v) = *m {
                        observed.insert((k, v));
                    }
                }
            }
        }
        ops.iter()
            .zip(rets)
            .map(|(op, &ret)| {
                ret != u32::MAX
                    || op
                        .iter()
                        .any(|m| matches!(*m, SlotOp::Write(k, v) if observed.contains(&(k, v))))
            })
            .collect()
    }
}

// ------------------------------------------------------------------- mutex

/// A lock: acquire when free, release when held.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Mutex;

/// A mutex operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MutexOp {
    Acquire,
    Release,
}

impl Model for Mutex {
    type State = bool;
    type Op = MutexOp;
    fn init(&self) -> bool {
        false
    }
    fn step(&mut self, held: &bool, op: &MutexOp) -> Option<bool> {
        match op {
            MutexOp::Acquire => (!held).then_some(true),
            MutexOp::Release => held.then_some(false),
        }
    }
    fn show_state(&self, held: &bool) -> String {
        if *held { "held".into() } else { "free".into() }
    }
}

/// Builds mutex ops.
pub(crate) struct MutexKind;

impl ModelKind for MutexKind {
    type M = Mutex;
    fn compile(
        &mut self,
        f: &str,
        _key: Option<&Value>,
        _input: &Value,
        _output: Option<&Value>,
    ) -> Result<Option<MutexOp>, String> {
        match f {
            "acquire" | "lock" => Ok(Some(MutexOp::Acquire)),
            "release" | "unlock" => Ok(Some(MutexOp::Release)),
            _ => Err(unknown_function("mutex", f, "acquire and release")),
        }
    }
    fn model_for(&mut self, _ops: &mut [MutexOp], _calls: &[u32], _rets: &[u32]) -> Mutex {
        Mutex
    }
}

// --------------------------------------------------------------------- set

/// A set with `add` and whole-set `read`.
///
/// Elements are never removed, so every read still to come must contain
/// the current set: `doomed` checks the remaining read that returned first
/// and the smallest remaining read.
#[derive(Clone, Debug)]
pub(crate) struct SetModel {
    values: Arc<[Value]>,
    /// Remaining reads by completion position, as indices into `reads`.
    pending: std::collections::BTreeMap<u32, u32>,
    /// Remaining reads by (size, completion position).
    smallest: std::collections::BTreeMap<(u32, u32), u32>,
    /// Each read's completion position and elements.
    reads: Arc<FxHashMap<u32, Box<[u32]>>>,
}

fn is_subset(small: &[u32], big: &[u32]) -> bool {
    let mut j = 0;
    for x in small {
        while j < big.len() && big[j] < *x {
            j += 1;
        }
        if j == big.len() || big[j] != *x {
            return false;
        }
        j += 1;
    }
    true
}

/// A set operation: add an element, or read exactly these (sorted) elements.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum SetOp {
    Add(u32),
    Read(Box<[u32]>),
}

impl Model for SetModel {
    type State = Box<[u32]>;
    type Op = SetOp;
    fn on_lift(&mut self, op: &SetOp, ret: u32) {
        if let SetOp::Read(xs) = op {
            self.pending.remove(&ret);
            self.smallest.remove(&(xs.len() as u32, ret));
        }
    }
    fn on_unlift(&mut self, op: &SetOp, ret: u32) {
        if let SetOp::Read(xs) = op {
            if self.reads.contains_key(&ret) {
                self.pending.insert(ret, ret);
                self.smallest.insert((xs.len() as u32, ret), ret);
            }
        }
    }
    fn doomed(&self, state: &Box<[u32]>, op: &SetOp) -> Option<u32> {
        if !matches!(op, SetOp::Add(_)) {
            return None;
        }
        let witnesses = [self.pending.values().next(), self.smallest.values().next()];
        witnesses
            .into_iter()
            .flatten()
            .copied()
            .find(|ret| self.reads.get(ret).is_some_and(|read| !is_subset(state, read)))
    }
    fn doom_reason(&self, op: &SetOp) -> Option<String> {
        matches!(op, SetOp::Read(_)).then(|| {
            "every way forward adds an element this read lacks before it can take effect, and \
             a set never loses an element"
                .to_owned()
        })
    }
    fn init(&self) -> Box<[u32]> {
        Box::new([])
    }
    fn step(&mut self, s: &Box<[u32]>, op: &SetOp) -> Option<Box<[u32]>> {
        match op {
            SetOp::Add(x) => match s.binary_search(x) {
                Ok(_) => Some(s.clone()),
                Err(at) => {
                    let mut v = Vec::with_capacity(s.len() + 1);
                    v.extend_from_slice(&s[..at]);
                    v.push(*x);
                    v.extend_from_slice(&s[at..]);
                    Some(v.into())
                }
            },
            SetOp::Read(expected) => (expected == s).then(|| s.clone()),
        }
    }
    fn state_bytes(s: &Box<[u32]>) -> usize {
        s.len() * 4
    }
    fn show_state(&self, s: &Box<[u32]>) -> String {
        let items: Vec<String> = s.iter().map(|&v| show(&self.values, v)).collect();
        format!("#{{{}}}", items.join(" "))
    }
}

/// Builds set ops.
#[derive(Default)]
pub(crate) struct SetKind {
    pub interner: Interner,
}

impl ModelKind for SetKind {
    type M = SetModel;
    fn compile(
        &mut self,
        f: &str,
        _key: Option<&Value>,
        input: &Value,
        output: Option<&Value>,
    ) -> Result<Option<SetOp>, String> {
        match f {
            "add" => Ok(Some(SetOp::Add(self.interner.id(input)))),
            "read" => match output {
                None | Some(Value::Nil) => Ok(None),
                Some(v) => {
                    let items = v
                        .as_list()
                        .ok_or_else(|| format!("a set read returns a set or list, found {v}"))?;
                    let mut ids: Vec<u32> = items.iter().map(|x| self.interner.id(x)).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    Ok(Some(SetOp::Read(ids.into())))
                }
            },
            _ => Err(unknown_function("set", f, "add and read")),
        }
    }
    fn model_for(&mut self, ops: &mut [SetOp], _calls: &[u32], rets: &[u32]) -> SetModel {
        let mut seen = rustc_hash::FxHashSet::default();
        for (op, &ret) in ops.iter().zip(rets) {
            if let (SetOp::Read(xs), true) = (op, ret != u32::MAX) {
                seen.extend(xs.iter().copied());
            }
        }
        for op in ops.iter_mut() {
            if let SetOp::Add(x) = op {
                if !seen.contains(x) {
                    *x = UNOBSERVED;
                }
            }
        }
        let mut reads = FxHashMap::default();
        let mut pending = std::collections::BTreeMap::new();
        let mut smallest = std::collections::BTreeMap::new();
        for (op, &ret) in ops.iter().zip(rets) {
            if let (SetOp::Read(xs), true) = (op, ret != u32::MAX) {
                reads.insert(ret, xs.clone());
                pending.insert(ret, ret);
                smallest.insert((xs.len() as u32, ret), ret);
            }
        }
        SetModel { values: self.interner.frozen(), pending, smallest, reads: Arc::new(reads) }
    }
    fn useful(&self, ops: &[SetOp], rets: &[u32]) -> Vec<bool> {
        let mut seen = rustc_hash::FxHashSet::default();
        for (op, &ret) in ops.iter().zip(rets) {
            if let (SetOp::Read(xs), true) = (op, ret != u32::MAX) {
                seen.extend(xs.iter().copied());
            }
        }
        ops.iter()
            .zip(rets)
            .map(|(op, &ret)| match op {
                SetOp::Add(x) if ret == u32::MAX => seen.contains(x),
                _ => true,
            })
            .collect()
    }
}

// ------------------------------------------------------------------ queues

/// A queue, FIFO or unordered (a multiset).
///
/// A dequeue that returned `nil` constrains nothing: as in Knossos, dequeuing
/// from an empty queue must be recorded as `fail`. A crashed dequeue of a FIFO
/// queue, if it took effect, removed whatever was at the head; a crashed
/// dequeue of an unordered queue removed some element nobody saw again,
/// which no completed op can contradict, so it is dropped.
///
/// For FIFO queues, real time can fix the order of two elements: if the
/// dequeue of `y` returned before the dequeue of `x` was invoked, `x` must
/// not be ahead of `y`. `doomed` checks a newly enqueued element against the
/// ones ahead of it, so a wrong order of concurrent enqueues is rejected at
/// once instead of when the dequeues reveal it.
#[derive(Clone, Debug)]
pub(crate) struct Queue {
    values: Arc<[Value]>,
    fifo: bool,
    /// For each element enqueued exactly once: its one completed dequeue's
    /// (invocation, completion) positions, or `None` when no completed
    /// dequeue returned it. Elements enqueued more than once are absent: a
    /// dequeue of their value could have taken either copy.
    dequeued: Arc<FxHashMap<u32, Option<(u32, u32)>>>,
    /// Whether any crashed dequeue exists (one could remove any head).
    crashed_dequeues: bool,
    /// When some value is dequeued (by completed dequeues) more often than
    /// it is enqueued (by all enqueues, crashed or not): the completion
    /// position of the dequeue that overdraws it, the (n+1)-th to return
    /// for a value enqueued n times. Every dequeue that returned by then
    /// took effect by then, so no linearization reaches past it.
    overdrawn: Option<u32>,
}

/// A queue operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum QueueOp {
    Enqueue(u32),
    Dequeue(u32),
    /// A crashed FIFO dequeue: removes the head, whatever it is.
    DequeueHead,
}

impl Model for Queue {
    /// FIFO: elements in queue order. Unordered: elements sorted.
    type State = Box<[u32]>;
    type Op = QueueOp;
    fn init(&self) -> Box<[u32]> {
        Box::new([])
    }
    fn step(&mut self, s: &Box<[u32]>, op: &QueueOp) -> Option<Box<[u32]>> {
        match *op {
            QueueOp::Enqueue(x) => {
                let mut v = s.to_vec();
                if self.fifo {
                    v.push(x);
                } else {
                    let at = v.partition_point(|&y| y <= x);
                    v.insert(at, x);
                }
                Some(v.into())
            }
            QueueOp::Dequeue(x) => {
                let at = if self.fifo {
                    (s.first() == Some(&x)).then_some(0)?
                } else {
                    s.binary_search(&x).ok()?
                };
                let mut v = s.to_vec();
                v.remove(at);
                Some(v.into())
            }
            QueueOp::DequeueHead => {
                // Taking away an element that a completed dequeue returns
                // (and that was enqueued once) would leave that dequeue
                // nothing to return: never a way to a linearization.
                let head = s.first()?;
                if matches!(self.dequeued.get(head), Some(Some(_))) {
                    return None;
                }
                Some(s[1..].into())
            }
        }
    }
    fn doomed(&self, s: &Box<[u32]>, op: &QueueOp) -> Option<u32> {
        if self.overdrawn.is_some() {
            return self.overdrawn;
        }
        let (true, QueueOp::Enqueue(y)) = (self.fifo, *op) else { return None };
        let &(_, y_ret) = self.dequeued.get(&y)?.as_ref()?;
        s[..s.len().saturating_sub(1)]
            .iter()
            .any(|x| match self.dequeued.get(x) {
                Some(Some((x_call, _))) => *x_call > y_ret,
                // Never dequeued: only a crashed dequeue could take it out of the way.
                Some(None) => !self.crashed_dequeues,
                None => false,
            })
            .then_some(y_ret)
    }
    fn doom_reason(&self, op: &QueueOp) -> Option<String> {
        let QueueOp::Dequeue(x) = *op else { return None };
        let x = show(&self.values, x);
        Some(if self.overdrawn.is_some() {
            format!("{x} is returned by more completed dequeues than there are enqueues of it")
        } else {
            format!(
                "every way forward puts an element ahead of {x} that cannot leave the queue \
                 before this dequeue returns {x}"
            )
        })
    }
    fn state_bytes(s: &Box<[u32]>) -> usize {
        s.len() * 4
    }
    fn show_state(&self, s: &Box<[u32]>) -> String {
        let items: Vec<String> = s.iter().map(|&v| show(&self.values, v)).collect();
        format!("[{}]", items.join(" "))
    }
}

/// Builds queue ops.
pub(crate) struct QueueKind {
    pub fifo: bool,
    pub interner: Interner,
}

impl ModelKind for QueueKind {
    type M = Queue;
    fn compile(
        &mut self,
        f: &str,
        _key: Option<&Value>,
        input: &Value,
        output: Option<&Value>,
    ) -> Result<Option<QueueOp>, String> {
        match f {
            "enqueue" => Ok(Some(QueueOp::Enqueue(self.interner.id(input)))),
            "dequeue" => Ok(match output {
                Some(Value::Nil) => None,
                Some(v) => Some(QueueOp::Dequeue(self.interner.id(v))),
                None if self.fifo => Some(QueueOp::DequeueHead),
                None => None,
            }),
            _ => Err(unknown_function(
                if self.fifo { "fifo-queue" } else { "unordered-queue" },
                f,
                "enqueue and dequeue",
            )),
        }
    }
    fn model_for(&mut self, ops: &mut [QueueOp], calls: &[u32], rets: &[u32]) -> Queue {
        let returned: rustc_hash::FxHashSet<u32> = ops
            .iter()
            .filter_map(|op| match op {
                QueueOp::Dequeue(x) => Some(*x),
                _ => None,
            })
            .collect();
        for op in ops.iter_mut() {
            if let QueueOp::Enqueue(x) = op {
                if !returned.contains(x) {
                    *x = UNOBSERVED;
                }
            }
        }
        let mut enqueues: FxHashMap<u32, u32> = FxHashMap::default();
        let mut dequeues: FxHashMap<u32, Vec<(u32, u32)>> = FxHashMap::default();
        let mut crashed_dequeues = false;
        for ((op, &call), &ret) in ops.iter().zip(calls).zip(rets) {
            match *op {
                QueueOp::Enqueue(x) => *enqueues.entry(x).or_default() += 1,
                QueueOp::Dequeue(x) => dequeues.entry(x).or_default().push((call, ret)),
                QueueOp::DequeueHead => crashed_dequeues = true,
            }
        }
        let overdrawn = dequeues
            .iter()
            .filter_map(|(x, ds)| {
                let n = enqueues.get(x).copied().unwrap_or(0) as usize;
                let mut by_return: Vec<u32> = ds.iter().map(|&(_, ret)| ret).collect();
                by_return.sort_unstable();
                by_return.get(n).copied()
            })
            .min();
        let dequeued = enqueues
            .iter()
            .filter(|(x, n)| **n == 1 || **x == UNOBSERVED)
            .filter_map(|(x, _)| match dequeues.get(x).map(Vec::as_slice) {
                None => Some((*x, None)),
                Some([one]) => Some((*x, Some(*one))),
                Some(_) => None,
            })
            .collect();
        Queue {
            values: self.interner.frozen(),
            fifo: self.fifo,
            dequeued: Arc::new(dequeued),
            crashed_dequeues,
            overdrawn,
        }
    }
    fn useful(&self, ops: &[QueueOp], rets: &[u32]) -> Vec<bool> {
        // An element nobody dequeues only ever sits in the queue.
        let dequeued: rustc_hash::FxHashSet<u32> = ops
            .iter()
            .filter_map(|op| match op {
                QueueOp::Dequeue(x) => Some(*x),
                _ => None,
            })
            .collect();
        ops.iter()
            .zip(rets)
            .map(|(op, &ret)| match op {
                QueueOp::Enqueue(x) if ret == u32::MAX => dequeued.contains(x),
                _ => true,
            })
            .collect()
    }
}

// ---------------------------------------------------------------------- kv

/// Porcupine's key-value store: string values, `get`, `put`, `append`
/// (concatenation), initially empty strings. Strings are interned, and
/// concatenations memoised, so states are vectors of ids.
///
/// Appends only ever extend a value, so every get still to come must
/// return an extension of the current value, unless a put still to come
/// resets it. The model tracks the gets and puts not yet linearized, and
/// `doomed` rejects a state the moment the get that must be linearized
/// soonest (the remaining get that returned first) could no longer see it:
/// a wrong order of two concurrent appends is caught at the second append,
/// not at the get that shows the order, possibly hundreds of steps later.
#[derive(Clone, Debug)]
pub(crate) struct Kv {
    strings: Strings,
    keys: Arc<[Value]>,
    /// Per key: remaining gets, by completion position, with the value read.
    gets: Vec<std::collections::BTreeMap<u32, u32>>,
    /// Per key: remaining gets that no put leads to, by (length of the
    /// value read, completion position), with the value: until such a get
    /// is linearized, the key's value must stay a prefix of what it read.
    fixed: Vec<std::collections::BTreeMap<(u32, u32), u32>>,
    /// Per key: remaining puts, by value.
    puts: Vec<FxHashMap<u32, u32>>,
    /// For each (key, value read by a get): the values of puts to that key
    /// that are prefixes of it, i.e. puts from which the get could be reached.
    resets: Arc<FxHashMap<(u32, u32), SmallVec<[u32; 2]>>>,
    /// Per key: remaining appends (crashed or not), by value.
    appends: Vec<FxHashMap<u32, u32>>,
    /// Per key: the distinct lengths of appended strings, so that "does a
    /// remaining append start this text" costs a few lookups.
    append_lens: Arc<[SmallVec<[u32; 4]>]>,
    /// The completion position of the first get whose value no sequence of
    /// a put (or the initial empty value) and appends to its key spells:
    /// no linearization reaches past it, whatever the order.
    hopeless: Option<u32>,
}

#[derive(Clone, Debug, Default)]
struct Strings {
    map: FxHashMap<Box<str>, u32>,
    strs: Vec<Box<str>>,
    concat: FxHashMap<(u32, u32), u32>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings::default();
        s.id("");
        s
    }
    fn id(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.map.get(text) {
            return id;
        }
        let id = self.strs.len() as u32;
        self.strs.push(text.into());
        self.map.insert(text.into(), id);
        id
    }
    fn append(&mut self, a: u32, b: u32) -> u32 {
        if let Some(&id) = self.concat.get(&(a, b)) {
            return id;
        }
        let joined = format!("{}{}", self.strs[a as usize], self.strs[b as usize]);
        let id = self.id(&joined);
        self.concat.insert((a, b), id);
        id
    }
}

/// A kv operation on key `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum KvOp {
    Get(u32, u32),
    Put(u32, u32),
    Append(u32, u32),
}

impl KvOp {
    fn slot_mut(&mut self) -> &mut u32 {
        match self {
            KvOp::Get(k, _) | KvOp::Put(k, _) | KvOp::Append(k, _) => k,
        }
    }
}

impl Model for Kv {
    type State = SmallVec<[u32; 1]>;
    type Op = KvOp;
    fn on_lift(&mut self, op: &KvOp, ret: u32) {
        match *op {
            KvOp::Get(k, v) => {
                self.gets[k as usize].remove(&ret);
                if !self.resets.contains_key(&(k, v)) {
                    let len = self.strings.strs[v as usize].len() as u32;
                    self.fixed[k as usize].remove(&(len, ret));
                }
            }
            KvOp::Put(k, v) => {
                if let Some(c) = self.puts[k as usize].get_mut(&v) {
                    *c = c.saturating_sub(1);
                }
            }
            KvOp::Append(k, v) => {
                if let Some(c) = self.appends[k as usize].get_mut(&v) {
                    *c = c.saturating_sub(1);
                }
            }
        }
    }
    fn on_unlift(&mut self, op: &KvOp, ret: u32) {
        match *op {
            KvOp::Get(k, v) => {
                self.gets[k as usize].insert(ret, v);
                if !self.resets.contains_key(&(k, v)) {
                    let len = self.strings.strs[v as usize].len() as u32;
                    self.fixed[k as usize].insert((len, ret), v);
                }
            }
            KvOp::Put(k, v) => *self.puts[k as usize].entry(v).or_insert(0) += 1,
            KvOp::Append(k, v) => *self.appends[k as usize].entry(v).or_insert(0) += 1,
        }
    }
    fn doomed(&self, state: &Self::State, op: &KvOp) -> Option<u32> {
        if self.hopeless.is_some() {
            return self.hopeless;
        }
        let k = match *op {
            KvOp::Get(k, _) | KvOp::Put(k, _) | KvOp::Append(k, _) => k,
        };
        let cur = &self.strings.strs[state[k as usize] as usize];
        // The shortest value a remaining get that no put leads to will read:
        // appends alone must get there from here.
        if let Some((&(_, ret), &want)) = self.fixed[k as usize].first_key_value() {
            let want = &self.strings.strs[want as usize];
            if !want.starts_with(&**cur) {
                return Some(ret);
            }
            // And the next of those appends must start what is missing.
            if want.len() > cur.len() && !self.an_append_starts(k, &want[cur.len()..]) {
                return Some(ret);
            }
        }
        // The value the remaining get that returned first will read: appends
        // from here, or a remaining put, must lead there.
        let (&ret, &want) = self.gets[k as usize].first_key_value()?;
        if self.strings.strs[want as usize].starts_with(&**cur) {
            return None;
        }
        let puts = &self.puts[k as usize];
        let resettable = self
            .resets
            .get(&(k, want))
            .is_some_and(|ps| ps.iter().any(|p| puts.get(p).is_some_and(|&c| c > 0)));
        (!resettable).then_some(ret)
    }
    fn doom_reason(&self, op: &KvOp) -> Option<String> {
        let KvOp::Get(k, _) = *op else { return None };
        Some(if self.hopeless.is_some() {
            format!(
                "no put or the empty start value, followed by appends to key {}, spells this value",
                self.keys[k as usize]
            )
        } else {
            "every way forward leaves the key's value where no append still to come continues \
             it toward this get's value, and no put still to come leads there"
                .to_owned()
        })
    }
    fn init(&self) -> Self::State {
        SmallVec::from_elem(0, self.keys.len())
    }
    fn step(&mut self, s: &Self::State, op: &KvOp) -> Option<Self::State> {
        match *op {
            KvOp::Get(k, v) => (s[k as usize] == v).then(|| s.clone()),
            KvOp::Put(k, v) => {
                let mut n = s.clone();
                n[k as usize] = v;
                Some(n)
            }
            KvOp::Append(k, v) => {
                let mut n = s.clone();
                n[k as usize] = self.strings.append(s[k as usize], v);
                Some(n)
            }
        }
    }
    fn state_bytes(s: &Self::State) -> usize {
        if s.spilled() { s.len() * 4 } else { 0 }
    }
    fn show_state(&self, s: &Self::State) -> String {
        let parts: Vec<String> = s
            .iter()
            .enumerate()
            .map(|(k, v)| format!("{} {:?}", self.keys[k], &*self.strings.strs[*v as usize]))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }
}

impl Kv {
    /// Whether some append to key `k` not yet linearized is a prefix of `text`.
    fn an_append_starts(&self, k: u32, text: &str) -> bool {
        let remaining = &self.appends[k as usize];
        self.append_lens[k as usize].iter().any(|&len| {
            let len = len as usize;
            len <= text.len()
                && text.is_char_boundary(len)
                && self
                    .strings
                    .map
                    .get(&text[..len])
                    .is_some_and(|id| remaining.get(id).is_some_and(|&c| c > 0))
        })
    }
}

/// Builds kv ops; every op needs a key (the op's `key` field).
pub(crate) struct KvKind {
    strings: Strings,
    keys: Interner,
}

impl Default for KvKind {
    fn default() -> Self {
        KvKind { strings: Strings::new(), keys: Interner::default() }
    }
}

impl KvKind {
    /// Whether `value` is the initial empty string or a put's value, followed
    /// by appended strings (each used any number of times: a necessary
    /// condition only, cheap to decide by dynamic programming over the
    /// positions of `value`).
    fn spelled(
        &self,
        value: u32,
        puts: &FxHashMap<u32, u32>,
        appends: &FxHashMap<u32, u32>,
        lens: &[u32],
    ) -> bool {
        let text = &*self.strings.strs[value as usize];
        let mut reach = vec![false; text.len() + 1];
        reach[0] = true;
        for &p in puts.keys() {
            let put = &*self.strings.strs[p as usize];
            if text.starts_with(put) {
                reach[put.len()] = true;
            }
        }
        for at in 0..text.len() {
            if !reach[at] {
                continue;
            }
            for &len in lens {
                let end = at + len as usize;
                if len > 0
                    && end <= text.len()
                    && text.is_char_boundary(end)
                    && self
                        .strings
                        .map
                        .get(&text[at..end])
                        .is_some_and(|id| appends.contains_key(id))
                {
                    reach[end] = true;
                }
            }
        }
        reach[text.len()]
    }
}

fn kv_text(v: &Value) -> Result<String, String> {
    match v {
        Value::Nil => Ok(String::new()),
        Value::Str(s) | Value::Keyword(s) => Ok(s.to_string()),
        Value::Int(i) => Ok(i.to_string()),
        Value::BigInt(digits) => Ok(digits.to_string()),
        other => Err(format!("the kv model stores strings, found {other}")),
    }
}

impl ModelKind for KvKind {
    type M = Kv;
    fn compile(
        &mut self,
        f: &str,
        key: Option<&Value>,
        input: &Value,
        output: Option<&Value>,
    ) -> Result<Option<KvOp>, String> {
        let key = key.ok_or("the kv model needs a key on every operation (the `key` field)")?;
        let k = self.keys.id(key) - 1;
        match f {
            "get" | "read" => match output {
                None => Ok(None),
                Some(v) => Ok(Some(KvOp::Get(k, self.strings.id(&kv_text(v)?)))),
            },
            "put" | "write" => Ok(Some(KvOp::Put(k, self.strings.id(&kv_text(input)?)))),
            "append" => Ok(Some(KvOp::Append(k, self.strings.id(&kv_text(input)?)))),
            _ => Err(unknown_function("kv", f, "get, put and append")),
        }
    }
    fn model_for(&mut self, ops: &mut [KvOp], _calls: &[u32], rets: &[u32]) -> Kv {
        // Renumber this partition's keys from 0 so states hold only them.
        let mut local: FxHashMap<u32, u32> = FxHashMap::default();
        let mut keys = Vec::new();
        for op in ops.iter_mut() {
            let slot = op.slot_mut();
            let next = local.len() as u32;
            let l = *local.entry(*slot).or_insert_with(|| {
                keys.push(self.keys.values[*slot as usize + 1].clone());
                next
            });
            *slot = l;
        }
        let mut gets = vec![std::collections::BTreeMap::new(); keys.len()];
        let mut puts = vec![FxHashMap::default(); keys.len()];
        let mut appends = vec![FxHashMap::default(); keys.len()];
        let mut append_lens = vec![SmallVec::<[u32; 4]>::new(); keys.len()];
        for (op, &ret) in ops.iter().zip(rets) {
            match *op {
                KvOp::Get(k, v) => {
                    gets[k as usize].insert(ret, v);
                }
                KvOp::Put(k, v) => *puts[k as usize].entry(v).or_insert(0u32) += 1,
                KvOp::Append(k, v) => {
                    *appends[k as usize].entry(v).or_insert(0u32) += 1;
                    let len = self.strings.strs[v as usize].len() as u32;
                    if !append_lens[k as usize].contains(&len) {
                        append_lens[k as usize].push(len);
                    }
                }
            }
        }
        let mut resets: FxHashMap<(u32, u32), SmallVec<[u32; 2]>> = FxHashMap::default();
        for (k, key_gets) in gets.iter().enumerate() {
            for &g in key_gets.values() {
                let want = &self.strings.strs[g as usize];
                let from: SmallVec<[u32; 2]> = puts[k]
                    .keys()
                    .copied()
                    .filter(|&p| want.starts_with(&*self.strings.strs[p as usize]))
                    .collect();
                if !from.is_empty() {
                    resets.insert((k as u32, g), from);
                }
            }
        }
        let mut fixed = vec![std::collections::BTreeMap::new(); keys.len()];
        for (k, key_gets) in gets.iter().enumerate() {
            for (&ret, &g) in key_gets {
                if !resets.contains_key(&(k as u32, g)) {
                    let len = self.strings.strs[g as usize].len() as u32;
                    fixed[k].insert((len, ret), g);
                }
            }
        }
        let hopeless = gets
            .iter()
            .enumerate()
            .flat_map(|(k, key_gets)| key_gets.iter().map(move |(&ret, &g)| (k, ret, g)))
            .filter(|&(k, _, g)| !self.spelled(g, &puts[k], &appends[k], &append_lens[k]))
            .map(|(_, ret, _)| ret)
            .min();
        Kv {
            strings: self.strings.clone(),
            keys: keys.into(),
            gets,
            fixed,
            puts,
            resets: Arc::new(resets),
            appends,
            append_lens: append_lens.into(),
            hopeless,
        }
    }
    /// A crashed append whose text no get of its key contains, or a crashed
    /// put whose value no get of its key starts with, was never followed by
    /// a get before the next put on that key (that get would show it), so
    /// leaving it out changes no result.
    fn useful(&self, ops: &[KvOp], rets: &[u32]) -> Vec<bool> {
        let mut seen: FxHashMap<u32, rustc_hash::FxHashSet<u32>> = FxHashMap::default();
        for (op, &ret) in ops.iter().zip(rets) {
            if let (KvOp::Get(k, v), true) = (*op, ret != u32::MAX) {
                seen.entry(k).or_default().insert(v);
            }
        }
        let text = |id: u32| &*self.strings.strs[id as usize];
        let shown = |k: u32, test: &dyn Fn(&str) -> bool| {
            seen.get(&k).is_some_and(|vs| vs.iter().any(|&v| test(text(v))))
        };
        ops.iter()
            .zip(rets)
            .map(|(op, &ret)| match *op {
                _ if ret != u32::MAX => true,
                KvOp::Append(k, a) => shown(k, &|v| v.contains(text(a))),
                KvOp::Put(k, p) => shown(k, &|v| v.starts_with(text(p))),
                KvOp::Get(..) => true,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_register_steps() {
        let mut k = RegisterKind { cas: true, init: Value::Nil, interner: Interner::default() };
        let w =
            k.compile("write", None, &Value::Int(1), Some(&Value::Int(1))).expect("w").expect("op");
        let cas = k
            .compile("cas", None, &Value::list([Value::Int(1), Value::Int(2)]), Some(&Value::Nil))
            .expect("cas")
            .expect("op");
        let r2 =
            k.compile("read", None, &Value::Nil, Some(&Value::Int(2))).expect("r").expect("op");
        assert_eq!(
            k.compile("read", None, &Value::Nil, Some(&Value::Nil)).expect("r"),
            None,
            "nil read is unknown"
        );
        let mut m = k.model_for(&mut [], &[], &[]);
        let s = m.step(&m.init(), &w).expect("write");
        assert_eq!(m.step(&m.init(), &cas), None, "cas from 1 needs 1");
        let s = m.step(&s, &cas).expect("cas");
        assert_eq!(m.step(&s, &r2), Some(s));
    }

    #[test]
    fn kv_appends_concatenate_and_renumber_keys() {
        let mut k = KvKind::default();
        let key = Value::str("7");
        let mut ops = vec![
            k.compile("append", Some(&key), &Value::str("x 1 y"), None).expect("a").expect("op"),
            k.compile("append", Some(&key), &Value::str("x 2 y"), None).expect("a").expect("op"),
            k.compile("get", Some(&key), &Value::Nil, Some(&Value::str("x 1 yx 2 y")))
                .expect("g")
                .expect("op"),
        ];
        let mut m = k.model_for(&mut ops, &[0, 1, 2], &[1, 2, 3]);
        let s = m.step(&m.init(), &ops[0]).expect("a1");
        let s = m.step(&s, &ops[1]).expect("a2");
        assert!(m.step(&s, &ops[2]).is_some());
        assert_eq!(m.show_state(&s), "{\"7\" \"x 1 yx 2 y\"}");
    }

    #[test]
    fn kv_get_no_append_spells_is_hopeless_and_unseen_crashes_are_dropped() {
        let mut k = KvKind::default();
        let key = Value::str("k");
        let mut ops = vec![
            k.compile("put", Some(&key), &Value::str("p"), None).expect("p").expect("op"),
            k.compile("append", Some(&key), &Value::str("ab"), None).expect("a").expect("op"),
            k.compile("append", Some(&key), &Value::str("zz"), None).expect("a").expect("op"),
            k.compile("put", Some(&key), &Value::str("q"), None).expect("p").expect("op"),
            k.compile("get", Some(&key), &Value::Nil, Some(&Value::str("pabab")))
                .expect("g")
                .expect("op"),
            k.compile("get", Some(&key), &Value::Nil, Some(&Value::str("pabc")))
                .expect("g")
                .expect("op"),
        ];
        let crashed = u32::MAX;
        // Crashed: the put of "p" (a get starts with it), the append of "ab"
        // (gets contain it), the append of "zz" and the put of "q" (no get
        // shows them).
        let rets = [crashed, crashed, crashed, crashed, 8, 9];
        assert_eq!(k.useful(&ops, &rets), vec![true, true, false, false, true, true]);
        // "pabab" is "p" then "ab" twice: possible. "pabc": no append spells "c".
        let m = k.model_for(&mut ops, &[0, 1, 2, 3, 4, 5], &rets);
        assert_eq!(m.hopeless, Some(9));
        assert_eq!(m.doomed(&m.init(), &ops[0]), Some(9));
    }

    #[test]
    fn fifo_queue_requires_head() {
        let mut k = QueueKind { fifo: true, interner: Interner::default() };
        let e1 = k.compile("enqueue", None, &Value::Int(1), None).expect("e").expect("op");
        let e2 = k.compile("enqueue", None, &Value::Int(2), None).expect("e").expect("op");
        let d2 =
            k.compile("dequeue", None, &Value::Nil, Some(&Value::Int(2))).expect("d").expect("op");
        let mut m = k.model_for(&mut [], &[], &[]);
        let s = m.step(&m.init(), &e1).expect("e1");
        let s = m.step(&s, &e2).expect("e2");
        assert_eq!(m.step(&s, &d2), None);
        let mut u = Queue { fifo: false, ..m.clone() };
        assert!(u.step(&s, &d2).is_some());
    }

    #[test]
    fn a_value_dequeued_more_often_than_enqueued_dooms_every_state() {
        for fifo in [true, false] {
            let mut k = QueueKind { fifo, interner: Interner::default() };
            let mut ops = vec![
                k.compile("enqueue", None, &Value::Int(1), None).expect("e").expect("op"),
                k.compile("dequeue", None, &Value::Nil, Some(&Value::Int(1)))
                    .expect("d")
                    .expect("op"),
                k.compile("dequeue", None, &Value::Nil, Some(&Value::Int(1)))
                    .expect("d")
                    .expect("op"),
            ];
            // Two dequeues of 1 return, at 7 and at 9; the second overdraws it.
            let m = k.model_for(&mut ops, &[0, 2, 3], &[1, 9, 7]);
            assert_eq!(m.overdrawn, Some(9));
            let s = m.clone().step(&m.init(), &ops[0]).expect("enqueue");
            assert_eq!(m.doomed(&s, &ops[0]), Some(9));
        }
    }
}
