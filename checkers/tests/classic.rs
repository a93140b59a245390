//! Property tests for the classic checkers and convergence: histories from a
//! simulated linearizable object (each operation takes effect at one moment
//! between its invocation and completion) are valid; one injected fault is
//! found and named.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use checkers::registry::{self, CheckSpec};
use checkers::sim::Rng;
use checkers::{History, Op, OpType, Process, Validity, Value, Verdict};
use proptest::prelude::*;

/// The object a simulated history operates on.
#[derive(Clone, Debug)]
enum Obj {
    Set(BTreeSet<i64>),
    Counter(i64),
    Queue(VecDeque<i64>),
    Ids(i64),
    Bank(BTreeMap<i64, i64>),
}

struct Pending {
    f: &'static str,
    arg: Value,
    result: Option<Value>,
    fail: bool,
}

/// Runs `ops` operations of `processes` clients on `obj`, each taking effect
/// at a random moment inside its interval. `next_op` picks the next op.
fn simulate(
    seed: u64,
    processes: usize,
    ops: usize,
    mut obj: Obj,
    next_op: impl Fn(&mut Rng, &mut i64) -> (&'static str, Value),
) -> (History, Obj) {
    let mut rng = Rng::new(seed);
    let mut counter = 0i64;
    let mut pending: Vec<Option<Pending>> = (0..processes).map(|_| None).collect();
    let mut out: Vec<Op> = Vec::new();
    let mut done = 0;
    let mut ids: Vec<u64> = (0..processes as u64).collect();
    while done < ops || pending.iter().any(Option::is_some) {
        let p = rng.below(processes as u64) as usize;
        let process = Process::Client(ids[p]);
        let time = out.len() as u64 * 1_000_000;
        match pending[p].take() {
            None if done < ops => {
                let (f, arg) = next_op(&mut rng, &mut counter);
                let mut op = Op::new(0, process, OpType::Invoke, f, arg.clone());
                op.time = Some(time);
                out.push(op);
                pending[p] =
                    Some(Pending { f, arg, result: None, fail: f != "read" && rng.below(20) == 0 });
                done += 1;
            }
            None => {}
            Some(mut pend) if pend.result.is_none() && !pend.fail => {
                pend.result = Some(apply(&mut obj, pend.f, &pend.arg));
                pending[p] = Some(pend);
            }
            Some(pend) => {
                // Updates sometimes time out after taking effect. A dequeue
                // that did would lose its element for good, which the
                // checkers rightly call lost, so dequeues never do.
                let info = pend.result.is_some()
                    && !matches!(pend.f, "read" | "dequeue")
                    && rng.below(15) == 0;
                let kind = if pend.fail {
                    OpType::Fail
                } else if info {
                    OpType::Info
                } else {
                    OpType::Ok
                };
                let value =
                    if kind == OpType::Ok { pend.result.unwrap_or(pend.arg) } else { pend.arg };
                let mut op = Op::new(0, process, kind, pend.f, value);
                op.time = Some(time);
                out.push(op);
                if info {
                    ids[p] += processes as u64;
                }
            }
        }
    }
    (History::from_ops_renumbered(out), obj)
}

fn apply(obj: &mut Obj, f: &str, arg: &Value) -> Value {
    match (obj, f) {
        (Obj::Set(s), "add") => {
            s.insert(arg.as_int().unwrap_or(0));
            arg.clone()
        }
        (Obj::Set(s), "read") => Value::set(s.iter().map(|&e| Value::Int(e)).collect()),
        (Obj::Counter(c), "add") => {
            *c += arg.as_int().unwrap_or(0);
            arg.clone()
        }
        (Obj::Counter(c), "read") => Value::Int(*c),
        (Obj::Queue(q), "enqueue") => {
            q.push_back(arg.as_int().unwrap_or(0));
            arg.clone()
        }
        (Obj::Queue(q), "dequeue") => q.pop_front().map_or(Value::Nil, Value::Int),
        (Obj::Ids(n), "generate") => {
            *n += 1;
            Value::Int(*n)
        }
        (Obj::Bank(b), "transfer") => {
            let get = |k: &str| arg.get(&Value::keyword(k)).and_then(Value::as_int).unwrap_or(0);
            let (from, to, amount) = (get("from"), get("to"), get("amount"));
            if b[&from] >= amount {
                *b.entry(from).or_default() -= amount;
                *b.entry(to).or_default() += amount;
            }
            arg.clone()
        }
        (Obj::Bank(b), "read") => {
            Value::map(b.iter().map(|(k, v)| (Value::Int(*k), Value::Int(*v))).collect())
        }
        (_, f) => panic!("the simulator has no {f}"),
    }
}

fn check(name: &str, opts: &[(&str, &str)], h: &History) -> Verdict {
    let mut spec = CheckSpec { checker: name.into(), ..CheckSpec::default() };
    for (k, v) in opts {
        spec.options.insert((*k).into(), (*v).into());
    }
    registry::build(&spec).expect("build").check(h).expect("check")
}

/// Replaces the value of the completion at `pos` (an ok read).
fn with_value(h: &History, pos: usize, value: Value) -> History {
    let mut ops = h.ops().to_vec();
    ops[pos].value = value;
    History::new(ops)
}

fn last_ok(h: &History, f: &str) -> Option<usize> {
    h.ops().iter().rposition(|o| o.kind == OpType::Ok && o.f == f)
}

fn set_ops(rng: &mut Rng, n: &mut i64) -> (&'static str, Value) {
    if rng.below(3) == 0 {
        ("read", Value::Nil)
    } else {
        *n += 1;
        ("add", Value::Int(*n))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn set_and_set_full_accept_a_linearizable_set_and_find_a_lost_element(seed in any::<u64>(), procs in 1usize..6) {
        let (mut h, _) = simulate(seed, procs, 80, Obj::Set(BTreeSet::new()), set_ops);
        // A final read of everything, as the set workload ends.
        let mut ops = h.ops().to_vec();
        let all = Value::set(ops.iter().filter(|o| o.f == "add" && o.kind != OpType::Invoke && o.kind != OpType::Fail).map(|o| o.value.clone()).collect());
        // Only effected adds belong: failed ones never happened, the rest did.
        ops.push(Op::new(0, Process::Client(999), OpType::Invoke, "read", Value::Nil));
        ops.push(Op::new(0, Process::Client(999), OpType::Ok, "read", all));
        h = History::from_ops_renumbered(ops);
        let v = check("set", &[], &h);
        prop_assert_eq!(v.validity, Validity::Valid, "seed {}: {}", seed, v.to_text());
        let v = check("set-full", &[("linearizable", "true")], &h);
        prop_assert_eq!(v.validity, Validity::Valid, "seed {}: {}", seed, v.to_text());
        // Drop one acknowledged element from the final read.
        let acked: Vec<i64> = h.ops().iter().filter(|o| o.f == "add" && o.kind == OpType::Ok).filter_map(|o| o.value.as_int()).collect();
        prop_assume!(!acked.is_empty());
        let gone = acked[(seed % acked.len() as u64) as usize];
        let pos = last_ok(&h, "read").expect("final read");
        let kept: Vec<Value> = h.ops()[pos].value.as_list().unwrap_or(&[]).iter().filter(|e| e.as_int() != Some(gone)).cloned().collect();
        let broken = with_value(&h, pos, Value::set(kept));
        let v = check("set", &[], &broken);
        prop_assert!(v.anomalies.iter().any(|a| a.kind == "lost" && a.data["elements"] == serde_json::json!([gone])), "seed {}: {}", seed, v.to_text());
        let v = check("set-full", &[], &broken);
        prop_assert!(v.anomalies.iter().any(|a| a.kind == "lost" && a.data["elements"].as_array().is_some_and(|e| e.contains(&serde_json::json!(gone)))), "seed {}: {}", seed, v.to_text());
    }

    #[test]
    fn counter_accepts_a_linearizable_counter_and_finds_a_low_read(seed in any::<u64>(), procs in 1usize..6) {
        let (h, _) = simulate(seed, procs, 80, Obj::Counter(0), |rng, _| {
            if rng.below(3) == 0 { ("read", Value::Nil) } else { ("add", Value::Int(rng.below(5) as i64 + 1)) }
        });
        let v = check("counter", &[], &h);
        prop_assert_eq!(v.validity, Validity::Valid, "seed {}: {}", seed, v.to_text());
        // A read far below anything possible.
        let pos = last_ok(&h, "read");
        prop_assume!(pos.is_some());
        let broken = with_value(&h, pos.unwrap_or(0), Value::Int(-1));
        let v = check("counter", &[], &broken);
        prop_assert_eq!(v.validity, Validity::Invalid, "seed {}", seed);
        prop_assert!(v.anomalies.iter().any(|a| a.ops == vec![broken.ops()[pos.unwrap_or(0)].index]));
    }

    #[test]
    fn total_queue_and_unique_ids_accept_linearizable_runs_and_find_faults(seed in any::<u64>(), procs in 1usize..6) {
        let (mut h, q) = simulate(seed, procs, 80, Obj::Queue(VecDeque::new()), |rng, n| {
            if rng.below(2) == 0 { ("dequeue", Value::Nil) } else { *n += 1; ("enqueue", Value::Int(*n)) }
        });
        // Drain what is left, as the queue workload ends.
        let Obj::Queue(rest) = q else { unreachable!() };
        let mut ops = h.ops().to_vec();
        ops.push(Op::new(0, Process::Client(999), OpType::Invoke, "drain", Value::Nil));
        ops.push(Op::new(0, Process::Client(999), OpType::Ok, "drain", Value::List(rest.iter().map(|&e| Value::Int(e)).collect())));
        h = History::from_ops_renumbered(ops);
        let v = check("total-queue", &[], &h);
        prop_assert_eq!(v.validity, Validity::Valid, "seed {}: {}", seed, v.to_text());
        // A dequeue that returns an element never enqueued.
        if let Some(pos) = h.ops().iter().position(|o| o.f == "dequeue" && o.kind == OpType::Ok && !o.value.is_nil()) {
            let v = check("total-queue", &[], &with_value(&h, pos, Value::Int(-7)));
            prop_assert!(v.anomalies.iter().any(|a| a.kind == "unexpected"), "seed {}", seed);
        }
        let (h, _) = simulate(seed, procs, 40, Obj::Ids(0), |_, _| ("generate", Value::Nil));
        let v = check("unique-ids", &[], &h);
        prop_assert_eq!(v.validity, Validity::Valid, "seed {}: {}", seed, v.to_text());
        let oks: Vec<usize> = h.ops().iter().enumerate().filter(|(_, o)| o.kind == OpType::Ok).map(|(i, _)| i).collect();
        prop_assume!(oks.len() >= 2);
        let dup = h.ops()[oks[0]].value.clone();
        let v = check("unique-ids", &[], &with_value(&h, oks[1], dup));
        prop_assert_eq!(v.validity, Validity::Invalid, "seed {}", seed);
    }

    #[test]
    fn bank_accepts_conserving_transfers_and_finds_a_wrong_total(seed in any::<u64>(), procs in 1usize..6) {
        let accounts: BTreeMap<i64, i64> = (0..4).map(|a| (a, 25)).collect();
        let (h, _) = simulate(seed, procs, 80, Obj::Bank(accounts), |rng, _| {
            if rng.below(2) == 0 {
                ("read", Value::Nil)
            } else {
                let (from, to) = (rng.below(4) as i64, rng.below(4) as i64);
                ("transfer", Value::map(vec![
                    (Value::keyword("from"), Value::Int(from)),
                    (Value::keyword("to"), Value::Int(to)),
                    (Value::keyword("amount"), Value::Int(rng.below(10) as i64)),
                ]))
            }
        });
        let v = check("bank", &[("total", "100"), ("accounts", "0,1,2,3")], &h);
        prop_assert_eq!(v.validity, Validity::Valid, "seed {}: {}", seed, v.to_text());
        let pos = last_ok(&h, "read");
        prop_assume!(pos.is_some());
        let pos = pos.unwrap_or(0);
        let mut bad = h.ops()[pos].value.clone();
        if let Value::Map(entries) = &mut bad { entries[0].1 = Value::Int(entries[0].1.as_int().unwrap_or(0) + 1); }
        let v = check("bank", &[("total", "100")], &with_value(&h, pos, bad));
        prop_assert!(v.anomalies.iter().any(|a| a.kind == "wrong-total" && a.ops == vec![h.ops()[pos].index]), "seed {}", seed);
    }

    #[test]
    fn convergence_accepts_replicas_that_agree_and_finds_a_lost_write(seed in any::<u64>(), nodes in 1usize..5) {
        let (h, end) = simulate(seed, 3, 60, Obj::Set(BTreeSet::new()), set_ops);
        let Obj::Set(state) = end else { unreachable!() };
        let fin = Value::set(state.iter().map(|&e| Value::Int(e)).collect());
        let mut ops = h.ops().to_vec();
        for n in 0..nodes {
            let p = Process::Client(500 + n as u64);
            let mut inv = Op::new(0, p, OpType::Invoke, "final-read", Value::Nil);
            inv.node = Some(format!("n{n}").into());
            let mut ok = Op::new(0, p, OpType::Ok, "final-read", fin.clone());
            ok.node = Some(format!("n{n}").into());
            ops.extend([inv, ok]);
        }
        let h = History::from_ops_renumbered(ops);
        let v = check("convergence", &[("type", "set")], &h);
        prop_assert_eq!(v.validity, Validity::Valid, "seed {}: {}", seed, v.to_text());
        let acked: Vec<i64> = h.ops().iter().filter(|o| o.f == "add" && o.kind == OpType::Ok).filter_map(|o| o.value.as_int()).collect();
        prop_assume!(!acked.is_empty());
        let gone = acked[(seed % acked.len() as u64) as usize];
        let pos = h.len() - 1;
        let kept: Vec<Value> = fin.as_list().unwrap_or(&[]).iter().filter(|e| e.as_int() != Some(gone)).cloned().collect();
        let v = check("convergence", &[("type", "set")], &with_value(&h, pos, Value::set(kept)));
        prop_assert_eq!(v.validity, Validity::Invalid, "seed {}", seed);
        prop_assert!(v.anomalies.iter().any(|a| a.kind == "lost-write" && a.data["elements"] == serde_json::json!([gone])), "seed {}: {}", seed, v.to_text());
        if nodes > 1 {
            prop_assert!(v.anomalies.iter().any(|a| a.kind == "divergence"), "seed {}", seed);
        }
    }
}

/// A counter starts at 0: a read of nil before any increment reached the
/// replica is that 0 and valid; after an acknowledged increment it is a
/// read below the bound, like a read of 0.
#[test]
fn a_counter_read_of_nil_is_its_starting_zero() {
    let op = |p, t, f: &str, v| Op::new(0, Process::Client(p), t, f, v);
    let early = vec![
        op(0, OpType::Invoke, "read", Value::Nil),
        op(0, OpType::Ok, "read", Value::Nil),
        op(1, OpType::Invoke, "increment", Value::Int(2)),
        op(1, OpType::Ok, "increment", Value::Int(2)),
        op(0, OpType::Invoke, "read", Value::Nil),
        op(0, OpType::Ok, "read", Value::Int(2)),
    ];
    let v = check("counter", &[], &History::from_ops_renumbered(early.clone()));
    assert_eq!(v.validity, Validity::Valid, "{}", v.to_text());
    let mut late = early;
    late[5] = op(0, OpType::Ok, "read", Value::Nil);
    let v = check("counter", &[], &History::from_ops_renumbered(late));
    assert_eq!(v.validity, Validity::Invalid, "{}", v.to_text());
}
