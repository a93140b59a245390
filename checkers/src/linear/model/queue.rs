//! Queues, FIFO or unordered.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::{Call, Interner, Model, ModelKind, UNOBSERVED, show, unknown_function};
use crate::value::Value;

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
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum QueueOp {
    Enqueue(u32),
    Dequeue(u32),
    /// A crashed FIFO dequeue: removes the head, whatever it is.
    DequeueHead,
    /// A drain that returned these elements (in queue order): the queue
    /// held exactly them, and is empty after.
    Drain(Arc<[u32]>),
    /// A crashed FIFO drain: empties the queue, whatever it held.
    DrainAll,
}

impl QueueOp {
    /// The elements this op took out, with what it observed.
    fn taken(&self) -> &[u32] {
        match self {
            QueueOp::Dequeue(x) => std::slice::from_ref(x),
            QueueOp::Drain(xs) => xs,
            _ => &[],
        }
    }
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
            QueueOp::Drain(ref xs) => {
                let held = if self.fifo {
                    s[..] == xs[..]
                } else {
                    // Elements nobody ever saw come out (UNOBSERVED) may
                    // have been taken by a crashed dequeue, if one exists;
                    // every element the drain returned must be there.
                    let mut sorted = xs.to_vec();
                    sorted.sort_unstable();
                    let observed: Vec<u32> =
                        s.iter().copied().filter(|&x| x != UNOBSERVED).collect();
                    observed == sorted && (observed.len() == s.len() || self.crashed_dequeues)
                };
                held.then(|| Box::new([]) as Box<[u32]>)
            }
            QueueOp::DrainAll => {
                if s.iter().any(|x| matches!(self.dequeued.get(x), Some(Some(_)))) {
                    return None;
                }
                Some(Box::new([]))
            }
        }
    }
    fn doomed(&self, s: &Box<[u32]>, op: &QueueOp) -> Option<u32> {
        if self.overdrawn.is_some() {
            return self.overdrawn;
        }
        let (true, &QueueOp::Enqueue(y)) = (self.fifo, op) else { return None };
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
        let &QueueOp::Dequeue(x) = op else { return None };
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
    /// Whether some dequeue or drain of an unordered queue crashed: it was
    /// dropped (it may not have happened), but it may also have taken an
    /// element nobody saw again, which a later drain then does not show.
    pub crashed_unordered: bool,
}

impl ModelKind for QueueKind {
    type M = Queue;
    // A dequeue of nil says nothing, as in Knossos.
    fn observes(&self, f: &str, output: &Value) -> bool {
        (f == "dequeue" && !output.is_nil()) || f == "drain"
    }
    const OBSERVING: &str = "an ok dequeue of an element, or an ok drain";
    fn compile(&mut self, call: &Call<'_>) -> Result<Option<QueueOp>, String> {
        let Call { f, input, output, .. } = *call;
        match f {
            "enqueue" => Ok(Some(QueueOp::Enqueue(self.interner.id(input)))),
            "dequeue" => Ok(match output {
                Some(Value::Nil) => None,
                Some(v) => Some(QueueOp::Dequeue(self.interner.id(v))),
                None if self.fifo => Some(QueueOp::DequeueHead),
                None => {
                    self.crashed_unordered = true;
                    None
                }
            }),
            // Jepsen's queue workloads end with a drain of what is left.
            // A crashed drain of an unordered queue only removed elements
            // nobody saw again, which no completed op can contradict.
            "drain" => match output {
                Some(v) => {
                    let items = v
                        .as_list()
                        .ok_or_else(|| format!("a drain returns a list of elements, not {v}"))?;
                    Ok(Some(QueueOp::Drain(items.iter().map(|x| self.interner.id(x)).collect())))
                }
                None if self.fifo => Ok(Some(QueueOp::DrainAll)),
                None => {
                    self.crashed_unordered = true;
                    Ok(None)
                }
            },
            _ => Err(unknown_function(
                if self.fifo { "fifo-queue" } else { "unordered-queue" },
                f,
                "enqueue, dequeue and drain",
            )),
        }
    }
    fn model_for(&mut self, ops: &mut [QueueOp], calls: &[u32], rets: &[u32]) -> Queue {
        let returned: rustc_hash::FxHashSet<u32> =
            ops.iter().flat_map(|op| op.taken().iter().copied()).collect();
        for op in ops.iter_mut() {
            if let QueueOp::Enqueue(x) = op
                && !returned.contains(x)
            {
                *x = UNOBSERVED;
            }
        }
        let mut enqueues: FxHashMap<u32, u32> = FxHashMap::default();
        let mut dequeues: FxHashMap<u32, Vec<(u32, u32)>> = FxHashMap::default();
        let mut crashed_dequeues = false;
        for ((op, &call), &ret) in ops.iter().zip(calls).zip(rets) {
            match op {
                QueueOp::Enqueue(x) => *enqueues.entry(*x).or_default() += 1,
                QueueOp::Dequeue(_) | QueueOp::Drain(_) => {
                    for &x in op.taken() {
                        dequeues.entry(x).or_default().push((call, ret));
                    }
                }
                QueueOp::DequeueHead | QueueOp::DrainAll => crashed_dequeues = true,
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
            crashed_dequeues: crashed_dequeues || self.crashed_unordered,
            overdrawn,
        }
    }
    fn useful(&self, ops: &[QueueOp], rets: &[u32]) -> Vec<bool> {
        // An element nobody dequeues only ever sits in the queue.
        let dequeued: rustc_hash::FxHashSet<u32> =
            ops.iter().flat_map(|op| op.taken().iter().copied()).collect();
        ops.iter()
            .zip(rets)
            .map(|(op, &ret)| match op {
                QueueOp::Enqueue(x) if ret == u32::MAX => dequeued.contains(x),
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
    fn a_drain_must_return_exactly_what_the_queue_holds() {
        for fifo in [true, false] {
            let mut k = QueueKind { fifo, interner: Interner::default(), crashed_unordered: false };
            let e = |k: &mut QueueKind, v: i64| {
                k.compile_args("enqueue", None, &Value::Int(v), None).expect("e").expect("op")
            };
            let drain = |k: &mut QueueKind, vs: &[i64]| {
                let out = Value::list(vs.iter().map(|v| Value::Int(*v)));
                k.compile_args("drain", None, &Value::Nil, Some(&out)).expect("d").expect("op")
            };
            let (e1, e2) = (e(&mut k, 1), e(&mut k, 2));
            let (in_order, reversed, partial) =
                (drain(&mut k, &[1, 2]), drain(&mut k, &[2, 1]), drain(&mut k, &[1]));
            let mut m = k.model_for(&mut [], &[], &[]);
            let s = m.step(&m.init(), &e1).expect("e1");
            let s = m.step(&s, &e2).expect("e2");
            let empty = m.step(&s, &in_order).expect("a drain of both, in order");
            assert!(empty.is_empty());
            assert_eq!(m.step(&s, &reversed).is_some(), !fifo, "fifo {fifo}: order matters");
            assert_eq!(m.step(&s, &partial), None, "fifo {fifo}: a drain leaves nothing behind");
        }
        let mut k =
            QueueKind { fifo: false, interner: Interner::default(), crashed_unordered: false };
        let err =
            k.compile_args("drain", None, &Value::Nil, Some(&Value::Int(3))).expect_err("list");
        assert!(err.contains("list of elements"), "{err}");
    }

    #[test]
    fn an_unordered_drain_missing_an_element_a_crashed_dequeue_may_have_taken_is_fine() {
        // enqueue 1 and 2 (ok), a dequeue that crashed, then a drain of [2]:
        // the crashed dequeue may have taken 1. Without it, 1 vanished.
        for crashed in [true, false] {
            let mut k =
                QueueKind { fifo: false, interner: Interner::default(), crashed_unordered: false };
            let mut ops = vec![
                k.compile_args("enqueue", None, &Value::Int(1), None).expect("e").expect("op"),
                k.compile_args("enqueue", None, &Value::Int(2), None).expect("e").expect("op"),
            ];
            if crashed {
                assert_eq!(k.compile_args("dequeue", None, &Value::Nil, None).expect("d"), None);
            }
            let out = Value::list([Value::Int(2)]);
            ops.push(
                k.compile_args("drain", None, &Value::Nil, Some(&out)).expect("d").expect("op"),
            );
            let mut m = k.model_for(&mut ops, &[0, 2, 5], &[1, 3, 6]);
            let s = m.step(&m.init(), &ops[0]).expect("e1");
            let s = m.step(&s, &ops[1]).expect("e2");
            assert_eq!(m.step(&s, &ops[2]).is_some(), crashed, "crashed dequeue: {crashed}");
        }
    }

    #[test]
    fn fifo_queue_requires_head() {
        let mut k =
            QueueKind { fifo: true, interner: Interner::default(), crashed_unordered: false };
        let e1 = k.compile_args("enqueue", None, &Value::Int(1), None).expect("e").expect("op");
        let e2 = k.compile_args("enqueue", None, &Value::Int(2), None).expect("e").expect("op");
        let d2 = k
            .compile_args("dequeue", None, &Value::Nil, Some(&Value::Int(2)))
            .expect("d")
            .expect("op");
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
            let mut k = QueueKind { fifo, interner: Interner::default(), crashed_unordered: false };
            let mut ops = vec![
                k.compile_args("enqueue", None, &Value::Int(1), None).expect("e").expect("op"),
                k.compile_args("dequeue", None, &Value::Nil, Some(&Value::Int(1)))
                    .expect("d")
                    .expect("op"),
                k.compile_args("dequeue", None, &Value::Nil, Some(&Value::Int(1)))
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
