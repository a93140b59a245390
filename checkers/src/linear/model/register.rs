//! A read/write register, or a compare-and-set register.

use std::sync::Arc;

use super::unique::{self, Groups, Outcome};
use super::{
    Call, Decision, Interner, Model, ModelKind, Refutation, UNOBSERVED, show, unknown_function,
};
use crate::value::Value;

/// A read/write register, or a compare-and-set register.
///
/// Values are numbered per partition, densely from 0 (`model_for`), so the
/// counts the search updates at every step are vectors indexed by value,
/// not hash maps: on a long valid history the search spends most of its
/// time in `on_lift` and `on_unlift`.
#[derive(Clone, Debug)]
pub(crate) struct Register {
    /// This partition's values, by their number here.
    values: Arc<[Value]>,
    init: u32,
    /// Per value: completed ops still to come that need the register to
    /// hold it (reads returning it, successful CASes from it).
    readers: Vec<u32>,
    /// Per value: ops still to come that may write it (writes, CASes to it,
    /// crashed or not).
    producers: Vec<u32>,
    /// Per value: whether it is in `orphans`.
    orphaned: Vec<bool>,
    /// Values with readers to come and no producer left: once the register
    /// holds anything else, those readers can never be satisfied.
    orphans: rustc_hash::FxHashSet<u32>,
    /// Completion positions of each value's readers, and which of them are
    /// linearized (a bit per history position), to name a reader as the
    /// witness.
    /// (`None` until `settle`.)
    reader_rets: Option<Arc<Groups>>,
    lifted: Vec<u64>,
}

impl Register {
    fn recount(&mut self, v: usize) {
        let orphan = self.readers[v] > 0 && self.producers[v] == 0;
        if orphan != self.orphaned[v] {
            self.orphaned[v] = orphan;
            if orphan {
                self.orphans.insert(v as u32);
            } else {
                self.orphans.remove(&(v as u32));
            }
        }
    }

    fn count(counts: &mut [u32], v: usize, up: bool) {
        let c = &mut counts[v];
        *c = if up { *c + 1 } else { c.saturating_sub(1) };
    }

    /// Adjusts the counts for `op` leaving (`up == false`) or re-entering
    /// the set of ops still to come. Writes of a value nothing reads
    /// (`UNOBSERVED`) count for nothing: no reader waits for them.
    fn track(&mut self, op: &RegOp, ret: u32, up: bool) {
        let completed = ret != u32::MAX;
        match *op {
            RegOp::Read(v) => {
                Self::count(&mut self.readers, v as usize, up);
                self.recount(v as usize);
            }
            RegOp::Write(v) => {
                if v != UNOBSERVED {
                    Self::count(&mut self.producers, v as usize, up);
                    self.recount(v as usize);
                }
            }
            RegOp::Cas(from, to) => {
                if completed {
                    Self::count(&mut self.readers, from as usize, up);
                    self.recount(from as usize);
                }
                if to != UNOBSERVED {
                    Self::count(&mut self.producers, to as usize, up);
                    self.recount(to as usize);
                }
            }
        }
        if completed && matches!(op, RegOp::Read(_) | RegOp::Cas(..)) {
            let (word, bit) = (ret as usize / 64, 1u64 << (ret % 64));
            if up {
                self.lifted[word] &= !bit;
            } else {
                self.lifted[word] |= bit;
            }
        }
    }

    fn is_lifted(&self, ret: u32) -> bool {
        self.lifted.get(ret as usize / 64).is_some_and(|w| w & (1 << (ret % 64)) != 0)
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
        self.reader_rets.as_ref()?.of(*lost).iter().copied().find(|&r| !self.is_lifted(r))
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
    /// When every written value is unique, the polynomial test of
    /// `unique.rs` decides the partition exactly, however many crashed ops
    /// and processes it has.
    fn decide(
        &self,
        ops: &[RegOp],
        calls: &[u32],
        rets: &[u32],
        name: &dyn Fn(u32) -> String,
    ) -> Option<Decision> {
        match unique::decide(ops, calls, rets, self.init)? {
            Outcome::Valid => Some(Decision::Valid),
            Outcome::Invalid(violation) => {
                let (stuck, named) = violation.ops();
                let show = |v: u32| show(&self.values, v);
                let reason = violation.reason(ops, name, &show, self.init);
                Some(Decision::Invalid(Refutation { stuck, ops: named, reason }))
            }
        }
    }
    fn settle(&mut self, ops: &mut [RegOp], rets: &[u32]) {
        // Values come numbered by the kind's interner, below
        // `self.values.len()`: the tables here are vectors by value.
        let init = self.init;
        let mut observed = vec![false; self.values.len()];
        observed[init as usize] = true;
        for (op, &ret) in ops.iter().zip(rets) {
            match *op {
                RegOp::Read(v) if ret != u32::MAX => observed[v as usize] = true,
                RegOp::Cas(from, _) => observed[from as usize] = true,
                _ => {}
            }
        }
        // Number this partition's values densely, the initial value first,
        // merging the writes of values nothing observes into one.
        let mut local = vec![u32::MAX; self.values.len()];
        let mut values: Vec<Value> = Vec::new();
        let mut number = |v: u32| -> u32 {
            let slot = &mut local[v as usize];
            if *slot == u32::MAX {
                values.push(self.values[v as usize].clone());
                *slot = values.len() as u32 - 1;
            }
            *slot
        };
        let init = number(init);
        for op in ops.iter_mut() {
            match op {
                RegOp::Write(v) | RegOp::Cas(_, v) if !observed[*v as usize] => *v = UNOBSERVED,
                _ => {}
            }
            match op {
                RegOp::Read(v) => *v = number(*v),
                RegOp::Write(v) => {
                    if *v != UNOBSERVED {
                        *v = number(*v);
                    }
                }
                RegOp::Cas(from, to) => {
                    *from = number(*from);
                    if *to != UNOBSERVED {
                        *to = number(*to);
                    }
                }
            }
        }
        let n = values.len();
        let last_ret = rets.iter().copied().filter(|&r| r != u32::MAX).max().unwrap_or(0);
        self.values = values.into();
        self.init = init;
        self.readers = vec![0; n];
        self.producers = vec![0; n];
        self.orphaned = vec![false; n];
        self.orphans.clear();
        self.lifted = vec![0; last_ret as usize / 64 + 1];
        let model = self;
        let mut reads: Vec<(u32, u32)> = Vec::new();
        for (op, &ret) in ops.iter().zip(rets) {
            model.track(op, ret, true);
            match *op {
                RegOp::Read(v) | RegOp::Cas(v, _) if ret != u32::MAX => reads.push((v, ret)),
                _ => {}
            }
        }
        let mut reader_rets = Groups::new(n, &reads);
        for rets in reader_rets.each_mut() {
            rets.sort_unstable();
        }
        model.reader_rets = Some(Arc::new(reader_rets));
    }
}

/// Builds register ops (`read`, `write`, and `cas` when `cas` is set).
pub(crate) struct RegisterKind {
    pub cas: bool,
    pub init: Value,
    pub interner: Interner,
    /// Values of sibling reads (`linear/siblings.rs`), reported on their own
    /// and left out of the search: none of them is one register value.
    pub siblings: Vec<Value>,
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
                Some(v) if self.siblings.contains(v) => None,
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
    fn model_for(&mut self, _ops: &mut [RegOp], _calls: &[u32], _rets: &[u32]) -> Register {
        // The partition's own work (numbering its values, counting its
        // readers and producers) is left to `Model::settle`, which runs on
        // the thread that searches the partition: done here, it ran on one
        // thread for every partition before any search began.
        let init = self.interner.id(&self.init);
        Register {
            values: self.interner.frozen(),
            init,
            readers: Vec::new(),
            producers: Vec::new(),
            orphaned: Vec::new(),
            orphans: Default::default(),
            reader_rets: None,
            lifted: Vec::new(),
        }
    }
    /// Values are numbered per kind, and a partition's model numbers its
    /// own again in `settle`, in the order its ops give them; nothing else
    /// is learnt from the ops.
    fn fork(&self) -> Option<Self> {
        Some(RegisterKind {
            cas: self.cas,
            init: self.init.clone(),
            interner: Interner::default(),
            siblings: self.siblings.clone(),
        })
    }
    fn useful(&self, ops: &[RegOp], rets: &[u32]) -> Vec<bool> {
        // A value is observed when a completed read returns it or any CAS
        // compares against it. Values are this kind's interned ids.
        let mut observed = vec![false; self.interner.len()];
        for (op, &ret) in ops.iter().zip(rets) {
            match *op {
                RegOp::Read(v) if ret != u32::MAX => observed[v as usize] = true,
                RegOp::Cas(from, _) => observed[from as usize] = true,
                _ => {}
            }
        }
        ops.iter()
            .zip(rets)
            .map(|(op, &ret)| match *op {
                RegOp::Write(v) | RegOp::Cas(_, v) if ret == u32::MAX => observed[v as usize],
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
        let mut k = RegisterKind {
            cas: true,
            init: Value::Nil,
            interner: Interner::default(),
            siblings: Vec::new(),
        };
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
        let mut k = RegisterKind {
            cas: false,
            init: Value::Nil,
            interner: Interner::default(),
            siblings: Vec::new(),
        };
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
