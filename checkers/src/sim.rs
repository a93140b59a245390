//! A simulated causally consistent replicated key-value store that records
//! histories with known properties, for property tests and benchmarks.
//!
//! Replicas apply their own clients' writes at once and other replicas'
//! writes later, but only once every write in their dependency clock has
//! been applied (causal delivery). Each client process talks to one replica
//! for its whole life (a sticky session), so everything in a client's causal
//! past is applied at its replica before it acts: the histories are causally
//! consistent by construction. Delivery may lag arbitrarily, so reads are
//! often stale, which linearizability forbids.
//!
//! A `Fault` breaks the construction on purpose: one update is applied before
//! one of its dependencies, and a client reads the gap.
//!
//! Randomness comes from a seeded SplitMix64, so a seed replays a history.

use crate::history::{History, Op, OpType, Process};
use crate::value::{Value, shared_str};

/// How a replica resolves two writes of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arbitration {
    /// The write applied last wins. Causal memory holds (each replica's
    /// apply order serialises its clients' view); replicas may diverge.
    DeliveryOrder,
    /// The write with the highest Lamport timestamp wins, so replicas that
    /// applied the same writes agree: convergent causal consistency (CCv).
    LastWriterWins,
}

/// A deliberate causality bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Some time into the run, a client writes `a` then `b` (to two fresh
    /// keys) on one replica; another replica applies `b` at once, before `a`,
    /// and one of its clients reads `b` and then `a`'s key as never written.
    EarlyDelivery,
}

/// The shape of a simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of replicas.
    pub replicas: usize,
    /// Number of client processes (spread round-robin over replicas).
    pub processes: usize,
    /// Number of keys the workload uses.
    pub keys: usize,
    /// Number of client operations to complete.
    pub ops: usize,
    /// Out of 100, how many client operations are writes.
    pub write_percent: u64,
    /// Out of 100, how likely a step is to deliver an update rather than
    /// advance a client (higher means fresher replicas).
    pub delivery_percent: u64,
    /// Out of 1000, how many writes time out (`info`): the client does not
    /// learn whether they happened, retires, and a new process takes its place.
    pub info_permille: u64,
    /// How replicas resolve conflicting writes.
    pub arbitration: Arbitration,
    /// A bug to inject, if any.
    pub fault: Option<Fault>,
    /// What a read of a key nobody has written returns. `nil` by default;
    /// the linearizability checker (like Knossos) takes a `nil` read to
    /// constrain nothing, so a property about stale reads sets it to `0`.
    pub initial: Value,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            replicas: 3,
            processes: 6,
            keys: 4,
            ops: 200,
            write_percent: 40,
            delivery_percent: 35,
            info_permille: 20,
            arbitration: Arbitration::DeliveryOrder,
            fault: None,
            initial: Value::Nil,
        }
    }
}

/// A simulated history and what the simulator knows about it.
#[derive(Clone, Debug)]
pub struct SimRun {
    /// The history, with `key`, `node` and `time` set on every op.
    pub history: History,
    /// The op index of the read that reveals an injected fault.
    pub fault_read: Option<u64>,
}

/// SplitMix64: tiny, seedable, good enough for workloads.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

struct Update {
    key: usize,
    value: i64,
    ts: (u64, usize),
    /// Writes of each origin replica applied at the origin when this was made.
    deps: Vec<usize>,
}

struct Replica {
    applied: Vec<usize>,
    store: Vec<Option<(i64, (u64, usize))>>,
    lamport: u64,
}

impl Replica {
    fn install(&mut self, arbitration: Arbitration, key: usize, value: i64, ts: (u64, usize)) {
        self.lamport = self.lamport.max(ts.0);
        let slot = &mut self.store[key];
        let wins = match (arbitration, &*slot) {
            (Arbitration::DeliveryOrder, _) | (_, None) => true,
            (Arbitration::LastWriterWins, Some((_, cur))) => ts > *cur,
        };
        if wins {
            *slot = Some((value, ts));
        }
    }
}

#[derive(Clone)]
struct Pending {
    process: u64,
    key: usize,
    write: Option<i64>,
}

struct Sim<'a> {
    cfg: &'a SimConfig,
    rng: Rng,
    replicas: Vec<Replica>,
    log: Vec<Vec<Update>>,
    ops: Vec<Op>,
    step: u64,
    next_value: i64,
}

impl Sim<'_> {
    fn record(
        &mut self,
        process: u64,
        kind: OpType,
        f: &str,
        key: usize,
        value: Value,
        node: usize,
    ) -> u64 {
        let index = self.ops.len() as u64;
        let mut op = Op::new(index, Process::Client(process), kind, f, value);
        op.key = Some(Value::Int(key as i64));
        op.node = Some(shared_str(&format!("n{}", node + 1)));
        op.time = Some(self.step * 1_000_000);
        if kind == OpType::Info {
            op.error = Some(Value::keyword("timeout"));
        }
        self.ops.push(op);
        self.step += 1;
        index
    }

    /// Makes a write at replica `r` and applies it there.
    fn write(&mut self, r: usize, key: usize, value: i64) {
        let rep = &mut self.replicas[r];
        rep.lamport += 1;
        let ts = (rep.lamport, r);
        let deps = rep.applied.clone();
        rep.applied[r] += 1;
        rep.install(self.cfg.arbitration, key, value, ts);
        self.log[r].push(Update { key, value, ts, deps });
    }

    fn read(&self, r: usize, key: usize) -> Value {
        self.replicas[r].store[key].map_or_else(|| self.cfg.initial.clone(), |(v, _)| Value::Int(v))
    }

    /// Tries to deliver the next update from `origin` to `r`.
    fn deliver(&mut self, r: usize, origin: usize) -> bool {
        let next = self.replicas[r].applied[origin];
        let Some(u) = self.log[origin].get(next) else { return false };
        let ready = u
            .deps
            .iter()
            .enumerate()
            .all(|(j, &d)| j == origin || d <= self.replicas[r].applied[j]);
        if !ready {
            return false;
        }
        let (key, value, ts) = (u.key, u.value, u.ts);
        let arbitration = self.cfg.arbitration;
        let rep = &mut self.replicas[r];
        rep.applied[origin] += 1;
        rep.install(arbitration, key, value, ts);
        true
    }

    fn fresh_value(&mut self) -> i64 {
        self.next_value += 1;
        self.next_value
    }
}

/// Runs the simulation for `seed`.
pub fn simulate(cfg: &SimConfig, seed: u64) -> SimRun {
    let replicas = cfg.replicas.max(1);
    let processes = cfg.processes.max(1);
    // Two extra keys, used only by an injected fault.
    let keys = cfg.keys.max(1) + 2;
    let mut sim = Sim {
        cfg,
        rng: Rng::new(seed),
        replicas: (0..replicas)
            .map(|_| Replica { applied: vec![0; replicas], store: vec![None; keys], lamport: 0 })
            .collect(),
        log: (0..replicas).map(|_| Vec::new()).collect(),
        ops: Vec::with_capacity(cfg.ops * 2 + 8),
        step: 0,
        next_value: 0,
    };
    // Client slots: each has a replica, a current process number and maybe
    // an operation in flight.
    let mut slots: Vec<(usize, u64, Option<Pending>)> =
        (0..processes).map(|p| (p % replicas, p as u64, None)).collect();
    let mut next_process = processes as u64;
    let mut completed = 0usize;
    let fault_at = cfg.fault.map(|_| cfg.ops / 4 + sim.rng.below(cfg.ops as u64 / 2 + 1) as usize);
    let mut fault_read = None;
    while completed < cfg.ops {
        if fault_at == Some(completed) && fault_read.is_none() && replicas > 1 {
            fault_read = Some(inject_early_delivery(&mut sim, &mut next_process, cfg.keys.max(1)));
        }
        if replicas > 1 && sim.rng.below(100) < cfg.delivery_percent {
            let r = sim.rng.below(replicas as u64) as usize;
            let origin = sim.rng.below(replicas as u64) as usize;
            if origin != r {
                sim.deliver(r, origin);
            }
            continue;
        }
        let slot = sim.rng.below(processes as u64) as usize;
        let (r, process, pending) = slots[slot].clone();
        match pending {
            None => {
                let key = sim.rng.below(cfg.keys.max(1) as u64) as usize;
                if sim.rng.below(100) < cfg.write_percent {
                    let value = sim.fresh_value();
                    sim.record(process, OpType::Invoke, "write", key, Value::Int(value), r);
                    slots[slot].2 = Some(Pending { process, key, write: Some(value) });
                } else {
                    sim.record(process, OpType::Invoke, "read", key, Value::Nil, r);
                    slots[slot].2 = Some(Pending { process, key, write: None });
                }
            }
            Some(p) => {
                completed += 1;
                slots[slot].2 = None;
                match p.write {
                    Some(value) => {
                        if sim.rng.below(1000) < cfg.info_permille {
                            // A timeout: the write may or may not have happened.
                            if sim.rng.below(2) == 0 {
                                sim.write(r, p.key, value);
                            }
                            sim.record(
                                p.process,
                                OpType::Info,
                                "write",
                                p.key,
                                Value::Int(value),
                                r,
                            );
                            slots[slot].1 = next_process;
                            next_process += 1;
                        } else {
                            sim.write(r, p.key, value);
                            sim.record(p.process, OpType::Ok, "write", p.key, Value::Int(value), r);
                        }
                    }
                    None => {
                        let v = sim.read(r, p.key);
                        sim.record(p.process, OpType::Ok, "read", p.key, v, r);
                    }
                }
            }
        }
    }
    SimRun { history: History::new(sim.ops), fault_read }
}

/// The fault: a client on replica `a` writes two fresh keys in order; replica
/// `b` applies the second before the first, and a new client of `b` reads the
/// second and then the first. Returns the op index of the revealing read.
fn inject_early_delivery(sim: &mut Sim<'_>, next_process: &mut u64, first_fault_key: usize) -> u64 {
    let n = sim.replicas.len();
    let a = sim.rng.below(n as u64) as usize;
    let b = (a + 1 + sim.rng.below(n as u64 - 1) as usize) % n;
    let (k1, k2) = (first_fault_key, first_fault_key + 1);
    let writer = *next_process;
    let reader = *next_process + 1;
    *next_process += 2;
    for key in [k1, k2] {
        let value = sim.fresh_value();
        sim.record(writer, OpType::Invoke, "write", key, Value::Int(value), a);
        sim.write(a, key, value);
        sim.record(writer, OpType::Ok, "write", key, Value::Int(value), a);
    }
    // Bring b up to date with everything but the two writes, so that the
    // only thing wrong is their order. Every update's dependencies were made
    // before it, so delivering whatever is ready until nothing is always
    // reaches a's updates up to the two.
    let before = sim.log[a].len() - 2;
    loop {
        let mut progress = false;
        for o in (0..n).filter(|&o| o != b) {
            while (o != a || sim.replicas[b].applied[a] < before) && sim.deliver(b, o) {
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    // Apply the second write at b, skipping the first: the bug.
    let second = sim.log[a].len() - 1;
    let (key, value, ts) =
        (sim.log[a][second].key, sim.log[a][second].value, sim.log[a][second].ts);
    let arbitration = sim.cfg.arbitration;
    sim.replicas[b].install(arbitration, key, value, ts);
    sim.record(reader, OpType::Invoke, "read", k2, Value::Nil, b);
    let v = sim.read(b, k2);
    sim.record(reader, OpType::Ok, "read", k2, v, b);
    sim.record(reader, OpType::Invoke, "read", k1, Value::Nil, b);
    let v = sim.read(b, k1);
    sim.record(reader, OpType::Ok, "read", k1, v, b)
}

/// Reads that linearizability forbids for certain: the read returned a value
/// (or `initial`, the value of a key never written) although a different
/// write of its key completed before the read began, after the write it
/// returned had completed. Returns their op indices.
pub fn stale_reads(history: &History, initial: &Value) -> Vec<u64> {
    use rustc_hash::FxHashMap;
    let ops = history.ops();
    let Ok(pairs) = history.pairs() else { return Vec::new() };
    // For each key: completed ok writes as (invoke pos, complete pos, value).
    let mut writes: FxHashMap<&Value, Vec<(usize, usize, &Value)>> = FxHashMap::default();
    for p in &pairs {
        let inv = &ops[p.invoke];
        if inv.f == "write"
            && history.outcome(p) == OpType::Ok
            && let (Some(k), Some(c)) = (&inv.key, p.complete)
        {
            writes.entry(k).or_default().push((p.invoke, c, &inv.value));
        }
    }
    let mut stale = Vec::new();
    for p in &pairs {
        let inv = &ops[p.invoke];
        let (Some(c), Some(k)) = (p.complete, &inv.key) else { continue };
        if inv.f != "read" || ops[c].kind != OpType::Ok {
            continue;
        }
        let got = &ops[c].value;
        let ws = writes.get(k).map_or(&[][..], Vec::as_slice);
        // The write the read returned, if it completed: (invoke, complete).
        let source = ws.iter().find(|w| w.2 == got);
        let overwritten = ws.iter().any(|w| {
            w.2 != got
                && w.1 < p.invoke
                && match source {
                    None => got == initial,
                    Some(s) => s.1 < w.0,
                }
        });
        if overwritten {
            stale.push(ops[c].index);
        }
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_history() {
        let cfg = SimConfig::default();
        let a = simulate(&cfg, 7);
        let b = simulate(&cfg, 7);
        assert_eq!(a.history.ops(), b.history.ops());
        let completed =
            a.history.pairs().expect("pairs").iter().filter(|p| p.complete.is_some()).count();
        assert_eq!(completed, cfg.ops);
    }

    #[test]
    fn stale_read_is_a_read_of_a_value_overwritten_before_it_began() {
        let op = |p: u64, kind: OpType, f: &str, v: Value| {
            let mut o = Op::new(0, Process::Client(p), kind, f, v);
            o.key = Some(Value::Int(0));
            o
        };
        let h = History::from_ops_renumbered(vec![
            op(0, OpType::Invoke, "write", Value::Int(1)),
            op(0, OpType::Ok, "write", Value::Int(1)),
            op(0, OpType::Invoke, "write", Value::Int(2)),
            op(0, OpType::Ok, "write", Value::Int(2)),
            op(1, OpType::Invoke, "read", Value::Nil),
            op(1, OpType::Ok, "read", Value::Int(1)),
            op(1, OpType::Invoke, "read", Value::Nil),
            op(1, OpType::Ok, "read", Value::Int(2)),
        ]);
        assert_eq!(stale_reads(&h, &Value::Nil), vec![5]);
    }
}
