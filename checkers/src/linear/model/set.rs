//! A set with `add` and whole-set `read`.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::{Call, Interner, Model, ModelKind, UNOBSERVED, show, unknown_function};
use crate::value::Value;

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
        if let SetOp::Read(xs) = op
            && self.reads.contains_key(&ret)
        {
            self.pending.insert(ret, ret);
            self.smallest.insert((xs.len() as u32, ret), ret);
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
    fn observes(&self, f: &str, output: &Value) -> bool {
        f == "read" && !output.is_nil()
    }
    const OBSERVING: &str = "an ok read";
    fn compile(&mut self, call: &Call<'_>) -> Result<Option<SetOp>, String> {
        let Call { f, input, output, .. } = *call;
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
            if let SetOp::Add(x) = op
                && !seen.contains(x)
            {
                *x = UNOBSERVED;
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
