//! Several registers read and written together in transactions.

use std::sync::Arc;

use smallvec::SmallVec;

use super::{Call, Interner, Model, ModelKind, show};
use crate::txn::{MicroOp, parse_txn};
use crate::value::Value;

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
    fn observes(&self, _f: &str, output: &Value) -> bool {
        parse_txn(output).is_ok_and(|txn| {
            txn.iter().any(|m| matches!(m, MicroOp::Read { value, .. } if !value.is_nil()))
        })
    }
    const OBSERVING: &str = "an ok transaction reading a value";
    fn compile(&mut self, call: &Call<'_>) -> Result<Option<Box<[SlotOp]>>, String> {
        let Call { input, output, .. } = *call;
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
