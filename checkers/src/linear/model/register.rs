//! A read/write register, or a compare-and-set register.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::{Call, Interner, Model, ModelKind, UNOBSERVED, show, unknown_function};
use crate::value::Value;

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
    // Knossos's reads of nil say nothing (the value was not known). A
    // `final-read` (the read every node does after the heal) is a read.
    fn observes(&self, f: &str, output: &Value) -> bool {
        matches!(f, "read" | "r" | "get" | "final-read") && !output.is_nil()
            || self.cas && f == "cas"
    }
    const OBSERVING: &str = "an ok read of a value, or an ok cas";
    fn compile(&mut self, call: &Call<'_>) -> Result<Option<RegOp>, String> {
        let Call { f, input, output, .. } = *call;
        let name = if self.cas { "cas-register" } else { "register" };
        match f {
            "read" | "r" | "get" | "final-read" => Ok(match output {
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
                if self.cas {
                    "read (and final-read), write and cas"
                } else {
                    "read (and final-read) and write"
                },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linear::model::CompileArgs;
    #[test]
    fn cas_register_steps() {
        let mut k = RegisterKind { cas: true, init: Value::Nil, interner: Interner::default() };
        let w = k
            .compile_args("write", None, &Value::Int(1), Some(&Value::Int(1)))
            .expect("w")
            .expect("op");
        let cas = k
            .compile_args(
                "cas",
                None,
                &Value::list([Value::Int(1), Value::Int(2)]),
                Some(&Value::Nil),
            )
            .expect("cas")
            .expect("op");
        let r2 = k
            .compile_args("read", None, &Value::Nil, Some(&Value::Int(2)))
            .expect("r")
            .expect("op");
        assert_eq!(
            k.compile_args("read", None, &Value::Nil, Some(&Value::Nil)).expect("r"),
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
    fn a_final_read_is_a_read() {
        let mut k = RegisterKind { cas: false, init: Value::Nil, interner: Interner::default() };
        let fin = k
            .compile_args("final-read", None, &Value::Nil, Some(&Value::Int(3)))
            .expect("final-read")
            .expect("op");
        let read = k
            .compile_args("read", None, &Value::Nil, Some(&Value::Int(3)))
            .expect("read")
            .expect("op");
        assert_eq!(fin, read);
        assert!(k.observes("final-read", &Value::Int(3)));
        let err = k.compile_args("frobnicate", None, &Value::Nil, None).expect_err("unknown");
        assert!(err.contains("read (and final-read) and write"), "{err}");
    }
}
