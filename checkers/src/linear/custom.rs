//! Your own data type, checked for linearizability: write its sequential
//! specification as a [`SequentialModel`] in your own crate, and
//! [`ModelChecker`] runs faultline's search on it, as Porcupine users
//! write a `Model` and let the library search.
//!
//! The model is compiled into the same search the built-in models use (the
//! trait is generic, not a trait object), so it runs at their speed; what a
//! user model does not get are the built-ins' pruning oracles, which know
//! each data type's shortcuts. Partitioning by key, crashed operations,
//! budgets, evidence and the HTML page work as for the built-ins.
//!
//! ```
//! use checkers::Value;
//! use checkers::linear::{ModelChecker, SequentialModel};
//!
//! /// A stack holding at most `capacity` elements: `push` refuses (fails)
//! /// when full, `pop` returns the top or nil when empty.
//! #[derive(Clone)]
//! struct BoundedStack {
//!     capacity: usize,
//! }
//!
//! #[derive(Clone, Debug, PartialEq, Eq, Hash)]
//! enum StackOp {
//!     Push(Value),
//!     Pop(Option<Value>),
//! }
//!
//! impl SequentialModel for BoundedStack {
//!     type State = Vec<Value>;
//!     type Op = StackOp;
//!     fn name(&self) -> &str {
//!         "bounded-stack"
//!     }
//!     fn init(&self) -> Vec<Value> {
//!         Vec::new()
//!     }
//!     fn op(&self, f: &str, input: &Value, output: Option<&Value>) -> Result<Option<StackOp>, String> {
//!         match f {
//!             "push" => Ok(Some(StackOp::Push(input.clone()))),
//!             // A crashed pop (no output) may have removed the top.
//!             "pop" => Ok(Some(StackOp::Pop(output.cloned()))),
//!             other => Err(format!("a stack pushes and pops, not {other:?}")),
//!         }
//!     }
//!     fn step(&self, s: &Vec<Value>, op: &StackOp) -> Option<Vec<Value>> {
//!         let mut next = s.clone();
//!         match op {
//!             StackOp::Push(v) if next.len() < self.capacity => next.push(v.clone()),
//!             StackOp::Push(_) => return None,
//!             StackOp::Pop(None) => {
//!                 next.pop();
//!             }
//!             StackOp::Pop(Some(Value::Nil)) => return s.is_empty().then(|| next),
//!             StackOp::Pop(Some(v)) => return (next.pop().as_ref() == Some(v)).then_some(next),
//!         }
//!         Some(next)
//!     }
//!     fn describe_state(&self, s: &Vec<Value>) -> String {
//!         format!("{:?}", s.iter().map(ToString::to_string).collect::<Vec<_>>())
//!     }
//! }
//!
//! let checker = ModelChecker::new(BoundedStack { capacity: 2 });
//! # let _ = checker;
//! ```

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use super::model::{Call, Model, ModelKind};
use super::{Algorithm, Settings};
use crate::budget::Budget;
use crate::error::CheckError;
use crate::history::History;
use crate::spec::{Accepts, CheckSpec};
use crate::value::Value;
use crate::verdict::{Checker, HtmlPage, Laps, Verdict};

/// The sequential specification of a data type: its states, its operations
/// and how each operation changes a state. The search looks for an order
/// of the history's operations, consistent with real time, in which every
/// `step` succeeds.
pub trait SequentialModel: Send + Sync + 'static {
    /// A state. Kept small and cheap to clone: the search stores many, and
    /// compares them for equality (never by hash alone).
    type State: Clone + Eq + Hash + Send + Sync + Debug;
    /// An operation with what it observed.
    type Op: Clone + Eq + Hash + Send + Sync + Debug;

    /// The model's name, for verdicts (`bounded-stack`).
    fn name(&self) -> &str;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Translates a history operation: its function, its invocation's
    /// value, and its completion's value when it completed `ok` (`None`
    /// when it crashed: it may have taken effect or not). `Ok(None)` leaves
    /// out an operation that can neither change the state nor be
    /// contradicted; `Err` names what is wrong, and faultline adds the file
    /// and line. Failed operations never reach this: they did not happen.
    fn op(
        &self,
        f: &str,
        input: &Value,
        output: Option<&Value>,
    ) -> Result<Option<Self::Op>, String>;

    /// The state after `op`, or `None` when what `op` observed is
    /// impossible in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// The partition an operation on `key` belongs to. Operations of
    /// different partitions never constrain each other, so each is checked
    /// on its own (P-compositionality; Porcupine's `Partition`). By default
    /// the op's key, as for the built-in models.
    fn partition(&self, key: Option<&Value>) -> Option<Value> {
        key.cloned()
    }

    /// Whether an `ok` operation with function `f` and result `output`
    /// observed the state. When nothing in a history did, the verdict is
    /// unknown. By default every `ok` operation observes.
    fn observes(&self, f: &str, output: &Value) -> bool {
        let _ = (f, output);
        true
    }

    /// Which of the partition's operations the search needs (optional, an
    /// exact pruning): `false` only for an operation that crashed
    /// (`completed[i]` is false) and whose effect no completed operation
    /// can ever observe, such as a crashed write of a value no read
    /// returns. Leaving such an operation out of every order changes no
    /// completed result, and spares the search every subset of them; the
    /// built-in models do this, and a model of your own that does it runs
    /// as fast as they do on histories with crashed clients. By default
    /// every operation is kept.
    fn useful(&self, ops: &[Self::Op], completed: &[bool]) -> Vec<bool> {
        let _ = completed;
        vec![true; ops.len()]
    }

    /// A state in words, for the evidence of a violation.
    fn describe_state(&self, state: &Self::State) -> String;

    /// Heap bytes a state holds, for the memory budget.
    fn state_bytes(state: &Self::State) -> usize {
        let _ = state;
        0
    }
}

/// Checks histories for linearizability against a [`SequentialModel`].
pub struct ModelChecker<S: SequentialModel> {
    model: Arc<S>,
    /// Check each partition apart (on by default).
    pub partition: bool,
    /// Time and memory limits.
    pub budget: Budget,
    /// The search algorithm.
    pub algorithm: Algorithm,
}

impl<S: SequentialModel> ModelChecker<S> {
    /// A checker for `model`: partitioned, no budget, faultline's search.
    pub fn new(model: S) -> ModelChecker<S> {
        ModelChecker {
            model: Arc::new(model),
            partition: true,
            budget: Budget::default(),
            algorithm: Algorithm::Search,
        }
    }

    /// A checker for `model` configured by `spec`: its budget and the
    /// options [`ModelChecker::accepts`] names.
    pub fn from_spec(model: S, spec: &CheckSpec) -> Result<ModelChecker<S>, CheckError> {
        let mut c = ModelChecker::new(model);
        c.partition = spec.bool_option("partition", true)?;
        c.budget = spec.budget;
        c.algorithm = match spec.option("algorithm") {
            None | Some("search") => Algorithm::Search,
            Some("reference") => Algorithm::Reference,
            Some(other) => {
                return Err(CheckError::BadOption(format!(
                    "--opt algorithm={other}: expected search or reference"
                )));
            }
        };
        Ok(c)
    }

    /// What [`ModelChecker::from_spec`] reads, for registering the checker
    /// in a checker table.
    pub fn accepts() -> Accepts {
        Accepts::nothing()
            .option("partition", "check each key apart (true, the default) or as one state (false)")
            .option("algorithm", "search (default) or reference (the classic search)")
    }
}

impl<S: SequentialModel> Checker for ModelChecker<S> {
    fn name(&self) -> &str {
        "linearizable"
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let cfg = Settings {
            model: self.model.name().to_owned(),
            init: Value::str(self.model.describe_state(&self.model.init())),
            partition: self.partition,
            budget: self.budget,
            algorithm: self.algorithm,
            started: std::time::Instant::now(),
        };
        let mut laps = Laps::start();
        let pairs = history.pairs()?;
        laps.lap("pairs");
        super::run(&cfg, history, &pairs, UserKind(self.model.clone()), &mut laps)
    }

    fn render_html(&self, history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        super::html::render(history, verdict)
    }
}

/// A user's model as the search sees it.
struct UserModel<S>(Arc<S>);

impl<S> Clone for UserModel<S> {
    fn clone(&self) -> Self {
        UserModel(self.0.clone())
    }
}

impl<S: SequentialModel> Model for UserModel<S> {
    type State = S::State;
    type Op = S::Op;
    fn init(&self) -> S::State {
        self.0.init()
    }
    fn step(&mut self, state: &S::State, op: &S::Op) -> Option<S::State> {
        self.0.step(state, op)
    }
    fn state_bytes(state: &S::State) -> usize {
        S::state_bytes(state)
    }
    fn show_state(&self, state: &S::State) -> String {
        self.0.describe_state(state)
    }
}

/// Builds a user's model's operations.
struct UserKind<S>(Arc<S>);

impl<S: SequentialModel> ModelKind for UserKind<S> {
    type M = UserModel<S>;
    fn compile(&mut self, call: &Call<'_>) -> Result<Option<S::Op>, String> {
        let Call { f, input, output, .. } = *call;
        self.0.op(f, input, output)
    }
    fn model_for(&mut self, _ops: &mut [S::Op], _calls: &[u32], _rets: &[u32]) -> UserModel<S> {
        UserModel(self.0.clone())
    }
    fn useful(&self, ops: &[S::Op], rets: &[u32]) -> Vec<bool> {
        let completed: Vec<bool> = rets.iter().map(|&r| r != u32::MAX).collect();
        let keep = self.0.useful(ops, &completed);
        // A model may drop only crashed operations: a completed one is
        // evidence, and leaving it out could make a history look valid.
        keep.into_iter().zip(&completed).map(|(k, done)| k || *done).collect()
    }
    fn observes(&self, f: &str, output: &Value) -> bool {
        self.0.observes(f, output)
    }
    const OBSERVING: &str = "an ok operation the model says observes it";
    fn partition(&self, key: Option<&Value>) -> Option<Value> {
        self.0.partition(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType, Process};

    /// A register as a user would write it, dropping every crashed op it
    /// can (wrongly including completed ones, which the adapter refuses).
    struct Register;

    impl SequentialModel for Register {
        type State = Value;
        type Op = (bool, Value);
        fn name(&self) -> &str {
            "user-register"
        }
        fn init(&self) -> Value {
            Value::Int(0)
        }
        fn op(
            &self,
            f: &str,
            input: &Value,
            output: Option<&Value>,
        ) -> Result<Option<Self::Op>, String> {
            match (f, output) {
                ("write", _) => Ok(Some((true, input.clone()))),
                ("read", Some(v)) => Ok(Some((false, v.clone()))),
                ("read", None) => Ok(None),
                (other, _) => Err(format!("no function {other:?}")),
            }
        }
        fn step(&self, s: &Value, (write, v): &Self::Op) -> Option<Value> {
            if *write { Some(v.clone()) } else { (v == s).then(|| s.clone()) }
        }
        fn observes(&self, f: &str, _output: &Value) -> bool {
            f == "read"
        }
        fn useful(&self, ops: &[Self::Op], _completed: &[bool]) -> Vec<bool> {
            vec![false; ops.len()]
        }
        fn describe_state(&self, s: &Value) -> String {
            format!("holding {s}")
        }
    }

    fn history(read: i64) -> History {
        let p = |n| Process::Client(n);
        History::from_ops_renumbered(vec![
            Op::new(0, p(0), OpType::Invoke, "write", 1),
            Op::new(0, p(0), OpType::Ok, "write", 1),
            Op::new(0, p(1), OpType::Invoke, "read", Value::Nil),
            Op::new(0, p(1), OpType::Ok, "read", read),
        ])
    }

    #[test]
    fn a_users_model_is_searched_and_explained_in_its_own_words() {
        let checker = ModelChecker::new(Register);
        let v = checker.check(&history(1)).expect("check");
        assert_eq!(v.validity, crate::Validity::Valid, "{}", v.to_text());
        let v = checker.check(&history(2)).expect("check");
        assert_eq!(v.validity, crate::Validity::Invalid, "{}", v.to_text());
        assert!(v.summary.contains("model user-register"), "{}", v.summary);
        assert!(v.to_text().contains("holding 1"), "{}", v.to_text());
    }

    /// Regression guard: a model's pruning may drop crashed ops only; had
    /// the completed write and read been dropped, the bad read would pass.
    #[test]
    fn pruning_never_drops_a_completed_operation() {
        let v = ModelChecker::new(Register).check(&history(2)).expect("check");
        assert_eq!(v.validity, crate::Validity::Invalid);
    }

    #[test]
    fn options_come_from_the_spec_and_unknown_algorithms_are_refused() {
        let spec = CheckSpec::new("x").with_option("partition", "false");
        let c = ModelChecker::from_spec(Register, &spec).expect("spec");
        assert!(!c.partition);
        let bad = CheckSpec::new("x").with_option("algorithm", "magic");
        assert!(ModelChecker::from_spec(Register, &bad).is_err());
        assert!(ModelChecker::<Register>::accepts().has_option("partition"));
    }
}
