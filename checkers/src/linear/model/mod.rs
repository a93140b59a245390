//! Sequential specifications for the linearizability checker, and their
//! translation from history operations into compact model operations: the
//! `Model` and `ModelKind` traits the search works with, the value
//! interner, and one file per built-in model.
//!
//! Every model interns the values it sees into `u32` ids before the search,
//! so that states are small, cheap to clone, hash and compare. Knossos's
//! conventions are kept: a read that returned `nil` (or whose result is
//! unknown) constrains nothing; a failed op did not happen; a crashed op may
//! take effect at any point after its invocation, or never.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use crate::value::Value;

mod kv;
mod multi_register;
mod mutex;
mod queue;
mod register;
mod set;
mod unique;

pub(crate) use self::kv::KvKind;
pub(crate) use self::multi_register::MultiRegisterKind;
pub(crate) use self::mutex::MutexKind;
pub(crate) use self::queue::QueueKind;
pub(crate) use self::register::RegisterKind;
pub(crate) use self::set::SetKind;

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
    /// Readies the model, once the search is over, to replay a prefix for
    /// the evidence: a model that merges values nothing can tell apart
    /// (kv's `DEAD`) keeps them apart from here on, so the states the
    /// evidence shows are the ones reached.
    fn for_evidence(&mut self) {}
    /// Readies the model and the partition's ops (completions at `rets`,
    /// `u32::MAX` for crashed ones) for the search, on the thread that will
    /// search them; called once, before any search, with the ops the
    /// search then gets. Work per partition belongs here rather than in
    /// `ModelKind::model_for`, which runs for every partition in turn.
    fn settle(&mut self, _ops: &mut [Self::Op], _rets: &[u32]) {}
    /// Decides the partition without search when the model knows a
    /// polynomial, exact test for its shape; `None` leaves it to the
    /// search. Called before `settle`, with the partition's ops invoked at
    /// `calls` and completed at `rets` (`u32::MAX` for crashed ops); `name`
    /// names an op (by its index) for the evidence.
    fn decide(
        &self,
        _ops: &[Self::Op],
        _calls: &[u32],
        _rets: &[u32],
        _name: &dyn Fn(u32) -> String,
    ) -> Option<Decision> {
        None
    }
}

/// What `Model::decide` concluded.
pub(crate) enum Decision {
    /// A linearization exists.
    Valid,
    /// None exists.
    Invalid(Refutation),
}

/// Why no linearization exists, found without search.
pub(crate) struct Refutation {
    /// The op to blame (an index into the partition's ops).
    pub stuck: u32,
    /// Every op the reason names, the blamed one first.
    pub ops: Vec<u32>,
    /// The reason, in words that follow "cannot be linearized: ".
    pub reason: String,
}

/// One paired history operation, as a model kind compiles it: the
/// function, the key, the invocation's value, and the completion's value
/// for an `ok` op (`None` for a crashed one).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call<'a> {
    pub f: &'a str,
    pub key: Option<&'a Value>,
    pub input: &'a Value,
    pub output: Option<&'a Value>,
}

impl<'a> Call<'a> {
    pub(crate) fn new(
        f: &'a str,
        key: Option<&'a Value>,
        input: &'a Value,
        output: Option<&'a Value>,
    ) -> Call<'a> {
        Call { f, key, input, output }
    }
}

/// Compiling from loose arguments, for the models' unit tests.
#[cfg(test)]
pub(crate) trait CompileArgs: ModelKind {
    fn compile_args(
        &mut self,
        f: &str,
        key: Option<&Value>,
        input: &Value,
        output: Option<&Value>,
    ) -> Result<Option<<Self::M as Model>::Op>, String> {
        self.compile(&Call::new(f, key, input, output))
    }
}

#[cfg(test)]
impl<K: ModelKind> CompileArgs for K {}

/// Builds a model's operations from history ops, then the model itself.
pub(crate) trait ModelKind: Send {
    /// The model this kind builds.
    type M: Model + Clone;
    /// Translates one paired operation (see [`Call`]). `Ok(None)` drops an
    /// op that can neither change the state nor be contradicted.
    fn compile(&mut self, call: &Call<'_>) -> Result<Option<<Self::M as Model>::Op>, String>;
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

    /// Whether an ok op with function `f` and result `output` observed the
    /// model's state. A history in which nothing did is judged unknown:
    /// writes alone are linearizable in any order.
    fn observes(&self, f: &str, output: &Value) -> bool {
        let _ = (f, output);
        true
    }

    /// The operations that observe the state, in words, for that verdict.
    const OBSERVING: &'static str = "an ok operation";

    /// Whether each key is an object of its own: every op touches one key,
    /// and no op's result depends on another key's state (kv's map of
    /// strings). Then, by locality (Herlihy and Wing, 1990: a history is
    /// linearizable iff each object's subhistory is), checking the keys
    /// apart decides exactly what one search over their product would, so
    /// the default search does so even when asked not to partition.
    const KEYS_ARE_OBJECTS: bool = false;

    /// The partition an op with `key` belongs to when the history is
    /// checked key by key (P-compositionality).
    fn partition(&self, key: Option<&Value>) -> Option<Value> {
        key.cloned()
    }

    /// A kind for compiling one partition's ops on its own, when nothing
    /// this kind learns from one partition's ops (values it numbers, flags
    /// it raises) bears on another's. Each partition is then compiled and
    /// readied on any core, where otherwise one kind compiles every op in
    /// history order on one core. `None`, the default, keeps that.
    fn fork(&self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

/// Interns values to ids; id 0 is `nil`.
///
/// The table holds ids only, found by their value's hash, and the values
/// are kept once, in `values`: 4 bytes a slot, where a map from each value
/// to its id held 24. A register partition of a 100,000-op history interns
/// some 3,300 values, and the tables grown for them were the largest share
/// of the fresh memory compiling it touched (by `perf record`).
#[derive(Clone, Debug)]
pub(crate) struct Interner {
    table: hashbrown::HashTable<u32>,
    values: Vec<Value>,
    /// `values` frozen for sharing, rebuilt only when values were added.
    shared: Option<Arc<[Value]>>,
}

impl Default for Interner {
    fn default() -> Self {
        let mut i =
            Interner { table: hashbrown::HashTable::new(), values: Vec::new(), shared: None };
        i.id(&Value::Nil);
        i
    }
}

impl Interner {
    pub(crate) fn id(&mut self, v: &Value) -> u32 {
        use std::hash::BuildHasher;
        let hash = |v: &Value| rustc_hash::FxBuildHasher.hash_one(v);
        let values = &self.values;
        let found = self.table.entry(
            hash(v),
            |&id| values[id as usize] == *v,
            |&id| hash(&values[id as usize]),
        );
        match found {
            hashbrown::hash_table::Entry::Occupied(e) => *e.get(),
            hashbrown::hash_table::Entry::Vacant(e) => {
                let id = values.len() as u32;
                e.insert(id);
                self.values.push(v.clone());
                id
            }
        }
    }

    /// How many values have ids (every id is below it).
    pub(crate) fn len(&self) -> usize {
        self.values.len()
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
