//! A lock: acquire when free, release when held.

use super::{Call, Model, ModelKind, unknown_function};

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
    const OBSERVING: &str = "an ok acquire or release";
    fn compile(&mut self, call: &Call<'_>) -> Result<Option<MutexOp>, String> {
        let Call { f, .. } = *call;
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
