//! Synthetic histories: concurrent executions of a sequential model, valid
//! by construction, and corruptions of them that are invalid by construction.
//!
//! Each simulated client invokes an operation, the operation takes effect
//! atomically at some later step, and the client then sees its result; other
//! clients interleave at every step. Since each operation takes effect
//! between its invocation and its completion, the history is linearizable.
//! A client may crash instead of completing (recorded `info`), after or
//! before its operation took effect; like Jepsen, its thread then continues
//! under a fresh process number. Everything is decided by a seeded PRNG, so a
//! seed reproduces a history exactly.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::history::{History, Op, OpType, Process};
use crate::linear::ModelName;
use crate::value::{ThinVec, Value};

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    /// The model whose operations to perform.
    pub model: ModelName,
    /// Number of operations (each is an invocation plus a completion).
    pub ops: usize,
    /// Concurrent client threads.
    pub processes: usize,
    /// Independent keys (registers and kv); ops then carry `key`.
    pub keys: usize,
    /// Probability that an operation crashes (completes `info`).
    pub crash_rate: f64,
    /// Probability that a register write is a compare-and-set instead
    /// (cas-register) and that an op is a read.
    pub read_rate: f64,
    /// When set, written values are drawn from `0..n` instead of being
    /// unique, as in Jepsen's register tests; unique values make stale
    /// reads provable.
    pub value_range: Option<i64>,
    /// The PRNG seed.
    pub seed: u64,
}

impl SynthSpec {
    /// Defaults: 1,000 ops, 5 processes, 1 key, no crashes, unique values.
    pub fn new(model: ModelName, seed: u64) -> SynthSpec {
        SynthSpec {
            model,
            ops: 1000,
            processes: 5,
            keys: 1,
            crash_rate: 0.0,
            read_rate: 0.5,
            value_range: None,
            seed,
        }
    }
}

/// The sequential state the simulation applies operations to.
#[derive(Default)]
struct World {
    registers: std::collections::BTreeMap<i64, Value>,
    kv: std::collections::BTreeMap<i64, String>,
    set: std::collections::BTreeSet<i64>,
    queue: std::collections::VecDeque<i64>,
    mutex_holder: Option<usize>,
    counter: i64,
}

/// An operation in flight on a simulated thread.
struct InFlight {
    f: &'static str,
    key: Option<i64>,
    input: Value,
    /// The result once applied: (completion type, completion value).
    result: Option<(OpType, Value)>,
}

/// Generates a linearizable history per `spec`.
pub fn generate(spec: &SynthSpec) -> History {
    let mut rng = SmallRng::seed_from_u64(spec.seed);
    let mut world = World::default();
    let threads = spec.processes.max(1);
    let mut process_of: Vec<u64> = (0..threads as u64).collect();
    let mut next_process = threads as u64;
    let mut flight: Vec<Option<InFlight>> = (0..threads).map(|_| None).collect();
    let mut ops: Vec<Op> = Vec::with_capacity(spec.ops * 2);
    let mut invoked = 0usize;
    let mut step: u64 = 0;
    let mut emit =
        |ops: &mut Vec<Op>, process: u64, kind: OpType, f: &str, key: Option<i64>, value: Value| {
            step += 1;
            let mut op = Op::new(ops.len() as u64, Process::Client(process), kind, f, value);
            op.time = Some(step * 1_000);
            op.key = key.map(Value::Int);
            ops.push(op);
        };
    while invoked < spec.ops || flight.iter().any(Option::is_some) {
        let t = rng.random_range(0..threads);
        let process = process_of[t];
        match flight[t].take() {
            None if invoked < spec.ops => {
                let op = choose(spec, &mut rng, &mut world, t);
                emit(&mut ops, process, OpType::Invoke, op.f, op.key, op.input.clone());
                invoked += 1;
                flight[t] = Some(op);
            }
            None => {}
            Some(mut op) => match op.result.take() {
                None => {
                    if rng.random_bool(spec.crash_rate) {
                        // Crash, having taken effect or not.
                        if rng.random_bool(0.5) {
                            apply(spec, &mut world, t, &mut op);
                        }
                        emit(&mut ops, process, OpType::Info, op.f, op.key, op.input.clone());
                        process_of[t] = next_process;
                        next_process += 1;
                    } else {
                        op.result = Some(apply(spec, &mut world, t, &mut op));
                        flight[t] = Some(op);
                    }
                }
                Some((kind, value)) => emit(&mut ops, process, kind, op.f, op.key, value),
            },
        }
    }
    History::new(ops)
}

fn fresh(spec: &SynthSpec, rng: &mut SmallRng, world: &mut World) -> i64 {
    match spec.value_range {
        Some(n) => rng.random_range(0..n.max(1)),
        None => {
            world.counter += 1;
            world.counter
        }
    }
}

/// Chooses the next operation of thread `t`.
fn choose(spec: &SynthSpec, rng: &mut SmallRng, world: &mut World, t: usize) -> InFlight {
    // Registers and kv are independent per key; multi-register transactions
    // span keys, so they carry none.
    let keyed = match spec.model {
        ModelName::Register | ModelName::CasRegister => spec.keys > 1,
        ModelName::Kv => true,
        _ => false,
    };
    let key = keyed.then(|| rng.random_range(0..spec.keys.max(1) as i64));
    let read = rng.random_bool(spec.read_rate);
    let op = |f: &'static str, input: Value| InFlight { f, key, input, result: None };
    match spec.model {
        ModelName::Register | ModelName::CasRegister => {
            if read {
                op("read", Value::Nil)
            } else if spec.model == ModelName::CasRegister && rng.random_bool(0.5) {
                // Mostly from the current value, so that most succeed.
                let current = world.registers.get(&key.unwrap_or(0)).cloned().unwrap_or_default();
                let from = if rng.random_bool(0.7) {
                    current
                } else {
                    Value::Int(fresh(spec, rng, world))
                };
                op("cas", Value::list([from, Value::Int(fresh(spec, rng, world))]))
            } else {
                op("write", Value::Int(fresh(spec, rng, world)))
            }
        }
        ModelName::MultiRegister => {
            let n = rng.random_range(1..=3);
            let mops = (0..n)
                .map(|_| {
                    let k = Value::Int(rng.random_range(0..spec.keys.max(1) as i64));
                    if rng.random_bool(spec.read_rate) {
                        Value::list([Value::keyword("r"), k, Value::Nil])
                    } else {
                        Value::list([Value::keyword("w"), k, Value::Int(fresh(spec, rng, world))])
                    }
                })
                .collect();
            op("txn", Value::List(mops))
        }
        ModelName::Mutex => {
            if world.mutex_holder == Some(t) {
                op("release", Value::Nil)
            } else {
                op("acquire", Value::Nil)
            }
        }
        ModelName::Set => {
            if read {
                op("read", Value::Nil)
            } else {
                op("add", Value::Int(fresh(spec, rng, world)))
            }
        }
        ModelName::FifoQueue | ModelName::UnorderedQueue => {
            if read {
                op("dequeue", Value::Nil)
            } else {
                op("enqueue", Value::Int(fresh(spec, rng, world)))
            }
        }
        ModelName::Kv => {
            if read {
                op("get", Value::Nil)
            } else {
                let v = fresh(spec, rng, world);
                let text = Value::str(format!("x {t} {v} y"));
                if rng.random_bool(0.1) { op("put", text) } else { op("append", text) }
            }
        }
    }
}

/// Applies `op` atomically; returns its completion type and value.
fn apply(spec: &SynthSpec, world: &mut World, t: usize, op: &mut InFlight) -> (OpType, Value) {
    let key = op.key.unwrap_or(0);
    match (spec.model, op.f) {
        (_, "read") if matches!(spec.model, ModelName::Register | ModelName::CasRegister) => {
            (OpType::Ok, world.registers.get(&key).cloned().unwrap_or_default())
        }
        (_, "write") => {
            world.registers.insert(key, op.input.clone());
            (OpType::Ok, op.input.clone())
        }
        (_, "cas") => {
            let (from, to) = match &op.input {
                Value::List(p) if p.len() == 2 => (p[0].clone(), p[1].clone()),
                _ => (Value::Nil, Value::Nil),
            };
            let current = world.registers.get(&key).cloned().unwrap_or_default();
            if current == from {
                world.registers.insert(key, to);
                (OpType::Ok, op.input.clone())
            } else {
                (OpType::Fail, op.input.clone())
            }
        }
        (ModelName::MultiRegister, _) => {
            let mops = match &op.input {
                Value::List(m) => m.clone(),
                _ => ThinVec::new(),
            };
            let done = mops
                .into_iter()
                .map(|m| match m {
                    Value::List(p) if p.len() == 3 && p[0] == Value::keyword("r") => {
                        let k = p[1].as_int().unwrap_or(0);
                        let v = world.registers.get(&k).cloned().unwrap_or_default();
                        Value::list([p[0].clone(), p[1].clone(), v])
                    }
                    Value::List(p) if p.len() == 3 => {
                        world.registers.insert(p[1].as_int().unwrap_or(0), p[2].clone());
                        Value::List(p)
                    }
                    other => other,
                })
                .collect();
            (OpType::Ok, Value::List(done))
        }
        (ModelName::Mutex, "acquire") => {
            if world.mutex_holder.is_none() {
                world.mutex_holder = Some(t);
                (OpType::Ok, Value::Nil)
            } else {
                (OpType::Fail, Value::Nil)
            }
        }
        (ModelName::Mutex, _) => {
            world.mutex_holder = None;
            (OpType::Ok, Value::Nil)
        }
        (ModelName::Set, "add") => {
            if let Some(x) = op.input.as_int() {
                world.set.insert(x);
            }
            (OpType::Ok, op.input.clone())
        }
        (ModelName::Set, _) => {
            (OpType::Ok, Value::set(world.set.iter().map(|&x| Value::Int(x)).collect()))
        }
        (_, "enqueue") => {
            if let Some(x) = op.input.as_int() {
                world.queue.push_back(x);
            }
            (OpType::Ok, op.input.clone())
        }
        (ModelName::FifoQueue, _) => match world.queue.pop_front() {
            Some(x) => (OpType::Ok, Value::Int(x)),
            None => (OpType::Fail, Value::Nil),
        },
        (ModelName::UnorderedQueue, _) => {
            if world.queue.is_empty() {
                return (OpType::Fail, Value::Nil);
            }
            // Take from the back half, so the order differs from FIFO.
            let at = world.queue.len() - 1 - (world.counter as usize % world.queue.len());
            let x = world.queue.remove(at).unwrap_or_default();
            (OpType::Ok, Value::Int(x))
        }
        (ModelName::Kv, "get") => {
            (OpType::Ok, Value::str(world.kv.get(&key).map_or("", String::as_str)))
        }
        (ModelName::Kv, "put") => {
            world.kv.insert(key, op.input.as_str().unwrap_or_default().to_owned());
            (OpType::Ok, op.input.clone())
        }
        (ModelName::Kv, _) => {
            world.kv.entry(key).or_default().push_str(op.input.as_str().unwrap_or_default());
            (OpType::Ok, op.input.clone())
        }
        _ => (OpType::Fail, op.input.clone()),
    }
}

/// A corruption of a valid history, and the op that was changed.
#[derive(Debug)]
pub struct Corruption {
    /// The corrupted history.
    pub history: History,
    /// `Op::index` of the completion whose value was changed.
    pub index: u64,
    /// What was done, in words.
    pub description: String,
}

/// Makes one read return a value that was provably overwritten before the
/// read began: written by an op that completed before another write to the
/// same key, which itself completed before the read was invoked. With
/// unique written values nothing else can produce that value, so no
/// linearization exists. Picks the last such read at or before `before`
/// (an op index; `u64::MAX` for the whole history). Registers only.
pub fn stale_read(history: &History, before: u64) -> Option<Corruption> {
    let pairs = history.pairs().ok()?;
    let ops = history.ops();
    // Completed writes (and successful CASes) per key: (invoke, complete, value).
    let mut writes: std::collections::BTreeMap<Option<Value>, Vec<(usize, usize, Value)>> =
        Default::default();
    for p in &pairs {
        let (inv, Some(c)) = (&ops[p.invoke], p.complete) else { continue };
        if ops[c].kind != OpType::Ok {
            continue;
        }
        let value = match inv.f.as_str() {
            "write" => inv.value.clone(),
            "cas" => match &inv.value {
                Value::List(pair) if pair.len() == 2 => pair[1].clone(),
                _ => continue,
            },
            _ => continue,
        };
        writes.entry(inv.key.clone()).or_default().push((p.invoke, c, value));
    }
    // Every value any op (even crashed or failed) may have written.
    let mut written: std::collections::BTreeMap<(Option<Value>, Value), usize> = Default::default();
    for p in &pairs {
        let inv = &ops[p.invoke];
        let v = match inv.f.as_str() {
            "write" => inv.value.clone(),
            "cas" => match &inv.value {
                Value::List(pair) if pair.len() == 2 => pair[1].clone(),
                _ => continue,
            },
            _ => continue,
        };
        *written.entry((inv.key.clone(), v)).or_default() += 1;
    }
    for p in pairs.iter().rev() {
        let (inv, Some(c)) = (&ops[p.invoke], p.complete) else { continue };
        if inv.f != "read" || ops[c].kind != OpType::Ok || ops[c].index > before {
            continue;
        }
        let key_writes = writes.get(&inv.key)?;
        // W2: the last completed write before the read began; W1: a write
        // that completed before W2 was invoked, with a value written once.
        let Some(&(w2_inv, _, ref w2_value)) =
            key_writes.iter().filter(|w| w.1 < p.invoke).max_by_key(|w| w.1)
        else {
            continue;
        };
        let Some((_, _, old)) = key_writes.iter().rev().find(|w| {
            w.1 < w2_inv
                && w.2 != *w2_value
                && written.get(&(inv.key.clone(), w.2.clone())) == Some(&1)
                && !w.2.is_nil()
        }) else {
            continue;
        };
        let mut new_ops = ops.to_vec();
        let index = new_ops[c].index;
        let description = format!(
            "read {} now returns {old}, which {} overwrote before the read began",
            index, w2_value
        );
        new_ops[c].value = old.clone();
        let mut h = History::new(new_ops);
        h.set_source(history.source());
        return Some(Corruption { history: h, index, description });
    }
    None
}

/// Makes one read-like completion return something impossible under the
/// model: a set read or queue dequeue of an element never added, a kv get
/// of a string no op produces, a multi-register read of a value never
/// written. Picks the last read at or before `before`.
pub fn impossible_read(history: &History, model: ModelName, before: u64) -> Option<Corruption> {
    let pairs = history.pairs().ok()?;
    let ops = history.ops();
    for p in pairs.iter().rev() {
        let (inv, Some(c)) = (&ops[p.invoke], p.complete) else { continue };
        if ops[c].kind != OpType::Ok || ops[c].index > before {
            continue;
        }
        let bogus = Value::Int(-7_777_777);
        let new_value = match (model, inv.f.as_str()) {
            (ModelName::Set, "read") => {
                let mut items = ops[c].value.as_list().map(<[Value]>::to_vec).unwrap_or_default();
                items.push(bogus);
                Value::set(items)
            }
            (ModelName::FifoQueue | ModelName::UnorderedQueue, "dequeue") => bogus,
            (ModelName::Kv, "get") => {
                Value::str(format!("{}never appended", ops[c].value.as_str().unwrap_or("")))
            }
            (ModelName::Register | ModelName::CasRegister, "read") => bogus,
            (ModelName::MultiRegister, "txn") => {
                let Value::List(mops) = &ops[c].value else { continue };
                let Some(at) = mops
                    .iter()
                    .position(|m| matches!(m, Value::List(p) if p[0] == Value::keyword("r")))
                else {
                    continue;
                };
                let mut mops = mops.clone();
                if let Value::List(p) = &mut mops[at] {
                    p[2] = bogus;
                }
                Value::List(mops)
            }
            _ => continue,
        };
        let mut new_ops = ops.to_vec();
        let index = new_ops[c].index;
        new_ops[c].value = new_value;
        let description = format!("completion {index} now returns a value no operation produced");
        return Some(Corruption { history: History::new(new_ops), index, description });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_history() {
        let mut spec = SynthSpec::new(ModelName::CasRegister, 42);
        spec.crash_rate = 0.05;
        spec.keys = 3;
        let a = generate(&spec);
        let b = generate(&spec);
        assert_eq!(a.ops(), b.ops());
        assert_eq!(a.pairs().expect("pairs").len(), 1000);
        assert!(a.ops().iter().any(|o| o.kind == OpType::Info), "crashes happen at rate 0.05");
    }
}
