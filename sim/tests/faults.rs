//! The simulated clock, packet and file faults: each draws what the real
//! nemesis draws from the same rng and records the same fields, and each
//! shows in the verdicts where the modes' promises say it should.

use checkers::formats::{self, Format};
use checkers::{History, OpType, Process, Validity, Value};
use harness::Invocation;
use harness::generator::Rng;
use nemesis::{Behaviour, ClockDraw, ClockFault, ClockLimits, Targets, shape_of};
use rand::{Rng as _, SeedableRng};
use refstore::Mode;
use refstore::modes::CoreOptions;
use sim::faults::{FaultSettings, SimNemesis};
use sim::run::simulate;
use sim::sweep::{SweepOptions, sweep};
use sim::world::{self, MS};
use sim::{WorldConfig, prepare};

use crate::{prepared, registry, small};

fn opts(count: u64) -> SweepOptions {
    SweepOptions { first: 1, count, parallel: 2, store: None }
}

fn start(f: &str, fault: &str, targets: &str) -> Invocation {
    Invocation::new(
        f,
        Value::map(vec![
            (Value::str("fault"), Value::str(fault)),
            (Value::str("targets"), Value::str(targets)),
        ]),
    )
}

fn nemesis_ops(history: &History, f: &str) -> Vec<Value> {
    history.ops().iter().filter(|o| &*o.f == f).map(|o| o.value.clone()).collect()
}

#[test]
fn a_clock_fault_draws_and_records_what_the_real_nemesis_draws() {
    let spec = small("raft", "register", &["clock"]);
    let settings = FaultSettings::of(&spec, Mode::Raft).expect("settings");
    let limits = ClockLimits { max_offset_ms: 60_000, max_drift: 0.5 };
    let mut w = world::build(Mode::Raft, 5, &CoreOptions::default(), &Default::default(), 3)
        .expect("builds");
    let mut n = SimNemesis::new(5, &settings);
    for fault in ClockFault::EVERY {
        let mut rng = Rng::seed_from_u64(11);
        let mut same = rng.clone();
        let v = n
            .invoke(&start("start-clock", fault.name(), "all"), w.as_mut(), &mut rng)
            .expect("starts");
        // The real nemesis: the targets first, then each one's parameters.
        let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
        let picked = Targets::All.pick(&nodes, &[], &mut same);
        let clocks: Vec<(Value, Value)> = picked
            .iter()
            .map(|p| (Value::str(p), ClockDraw::draw(fault, &limits, &mut same).record()))
            .collect();
        assert_eq!(v.get(&Value::str("clocks")), Some(&Value::map(clocks)), "{fault:?}");
        assert_eq!(v.get(&Value::str("fault")), Some(&Value::str(fault.name())));
        assert_eq!(v.get(&Value::str("not-set")), None, "every node is up");
        let stop = n.invoke(&Invocation::new("stop-clock", Value::Nil), w.as_mut(), &mut rng);
        let stop = stop.expect("stops");
        assert_eq!(
            stop.get(&Value::str("reset")).and_then(Value::as_list).map(<[_]>::len),
            Some(5)
        );
    }
    // A node that is down cannot take an offset, and says so.
    w.crash(0);
    let mut rng = Rng::seed_from_u64(1);
    let v = n.invoke(&start("start-clock", "bump", "all"), w.as_mut(), &mut rng).expect("starts");
    let not_set = v.get(&Value::str("not-set")).expect("n1 is down");
    assert!(not_set.get(&Value::str("n1")).is_some(), "{not_set:?}");
}

#[test]
fn strobes_flip_and_skews_step_as_the_real_tasks_do() {
    let strobe = ClockDraw::Strobe { offset_ms: -500, period_ms: 20 };
    let seen: Vec<i64> = [0, 19, 20, 39, 40].iter().map(|t| strobe.offset_at(*t)).collect();
    assert_eq!(seen, [-500, -500, 0, 0, -500]);
    let skew = ClockDraw::Skew { drift: 0.5 };
    assert_eq!((skew.offset_at(49), skew.offset_at(50), skew.offset_at(1000)), (0, 25, 500));
    assert_eq!(ClockDraw::Bump { offset_ms: 7 }.offset_at(123 * MS), 7);
}

/// A world whose clocks agree and whose crashes keep the page cache, as
/// real nodes on one machine: what goes wrong is the faults' doing.
fn one_machine() -> WorldConfig {
    WorldConfig { clock_offset_ms: 0, drift_ppm: 0, lose_unsynced: 0.0, ..WorldConfig::default() }
}

#[test]
fn clock_faults_make_last_write_wins_lose_writes_and_leave_raft_linearizable() {
    let lww = small("multi-leader", "lww-register", &["clock"]);
    let lww = prepare(lww, one_machine(), &registry()).expect("plans");
    let s = sweep(&lww, &opts(10), &|_| {}).expect("sweeps");
    let invalid = s.results.iter().filter(|r| r.validity == Validity::Invalid).count();
    assert!(invalid > 0, "skewed clocks never lost a write in 10 seeds:\n{}", s.table());
    // The control: the same clocks without the fault lose nothing.
    let calm = small("multi-leader", "lww-register", &[]);
    let calm = prepare(calm, one_machine(), &registry()).expect("plans");
    let s = sweep(&calm, &opts(5), &|_| {}).expect("sweeps");
    assert_eq!(s.validity(), Validity::Valid, "{}", s.table());
    let raft = prepared(small("raft", "register", &["clock"]));
    let s = sweep(&raft, &opts(10), &|_| {}).expect("sweeps");
    assert_eq!(s.validity(), Validity::Valid, "{}", s.table());
    let (history, _, _) = simulate(&raft, 1).expect("simulates");
    assert!(
        !nemesis_ops(&history, "start-clock").is_empty(),
        "{}",
        formats::write(&history, Format::Jsonl)
    );
}

#[test]
fn a_packet_fault_draws_and_records_what_the_real_nemesis_draws() {
    let spec = small("raft", "register", &["packet"]);
    let settings = FaultSettings::of(&spec, Mode::Raft).expect("settings");
    let mut w = world::build(Mode::Raft, 5, &CoreOptions::default(), &Default::default(), 3)
        .expect("builds");
    let mut n = SimNemesis::new(5, &settings);
    let op = Invocation::new(
        "start-packet",
        Value::map(vec![
            (Value::str("behaviours"), Value::list(vec![Value::str("delay"), Value::str("rate")])),
            (Value::str("targets"), Value::str("minority")),
        ]),
    );
    let mut rng = Rng::seed_from_u64(5);
    let mut same = rng.clone();
    let v = n.invoke(&op, w.as_mut(), &mut rng).expect("starts");
    let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    let from = Targets::Minority.pick(&nodes, &[], &mut same);
    let shape = shape_of(&[Behaviour::Delay, Behaviour::Rate], same.random());
    assert_eq!(v.get(&Value::str("shape")), Some(&shape.to_value()));
    let from_value = Value::List(from.iter().map(Value::str).collect());
    assert_eq!(v.get(&Value::str("from")), Some(&from_value));
    // Two targets of five: four links out of each.
    assert_eq!(v.get(&Value::str("links")), Some(&Value::Int(8)));
    let stop = n.invoke(&Invocation::new("stop-packet", Value::Nil), w.as_mut(), &mut rng);
    assert_eq!(stop.expect("stops").get(&Value::str("restored-links")), Some(&Value::Int(8)));
}

/// The fault periods of `f` in a history: from each start's completion to
/// the next stop's invocation, nanoseconds of test time.
fn windows(history: &History, f: &str) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut open = None;
    for op in history.ops().iter().filter(|o| o.process == Process::Nemesis) {
        let t = op.time.unwrap_or(0);
        match op.f.strip_prefix("start-") {
            Some(k) if k == f => open = Some(t),
            _ if op.f.strip_prefix("stop-") == Some(f) => {
                if let Some(s) = open.take() {
                    out.push((s, t));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn delayed_links_slow_every_replicated_write_down_and_raft_stays_linearizable() {
    let mut spec = small("raft", "register", &["packet"]);
    spec.options.insert("packet_faults".into(), "delay".into());
    spec.options.insert("packet_targets".into(), "all".into());
    let p = prepare(spec, one_machine(), &registry()).expect("plans");
    let (history, _, _) = simulate(&p, 2).expect("simulates");
    let periods = windows(&history, "packet");
    assert!(!periods.is_empty(), "no packet fault ran");
    let inside = |a: u64, b: u64| periods.iter().any(|(s, e)| *s <= a && b <= *e);
    let ops = history.ops();
    let (mut slow, mut fast) = (Vec::new(), Vec::new());
    for pair in history.pairs().expect("pairs") {
        let Some(c) = pair.complete else { continue };
        let (inv, done) = (&ops[pair.invoke], &ops[c]);
        if done.kind != OpType::Ok || !matches!(&*inv.f, "write" | "cas") {
            continue;
        }
        let (a, b) = (inv.time.unwrap_or(0), done.time.unwrap_or(0));
        if inside(a, b) { slow.push(b - a) } else { fast.push(b - a) }
    }
    // Every link between nodes waits 50-60 ms each way: the leader's
    // append and the followers' acknowledgements.
    assert!(!slow.is_empty() && !fast.is_empty(), "{} slow, {} fast", slow.len(), fast.len());
    assert!(slow.iter().all(|d| *d >= 100 * MS), "{slow:?}");
    fast.sort_unstable();
    assert!(fast[fast.len() / 2] < 50 * MS, "median unshaped write {} ns", fast[fast.len() / 2]);
    let s = sweep(&p, &opts(10), &|_| {}).expect("sweeps");
    assert_eq!(s.validity(), Validity::Valid, "{}", s.table());
}

/// A raft world of five nodes with a leader and some log, whose crashes
/// keep what was written.
fn raft_world(seed: u64) -> Box<dyn sim::world::Cluster> {
    let mut w =
        world::build(Mode::Raft, 5, &CoreOptions::default(), &one_machine(), seed).expect("builds");
    while w.next_time().is_some_and(|t| t < 2_000 * MS) {
        w.step();
    }
    w
}

fn file_value<'a>(v: &'a Value, node: &str) -> &'a Value {
    let files = v.get(&Value::str("files")).and_then(|f| f.get(&Value::str(node)));
    files.and_then(Value::as_list).and_then(<[_]>::first).expect("one file per node")
}

#[test]
fn a_truncation_cuts_what_the_real_nemesis_cuts_and_the_node_starts_on_the_rest() {
    let spec = small("raft", "register", &["file"]);
    let settings = FaultSettings::of(&spec, Mode::Raft).expect("settings");
    let mut w = raft_world(4);
    let mut n = SimNemesis::new(5, &settings);
    let mut rng = Rng::seed_from_u64(9);
    let mut same = rng.clone();
    let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    let target = Targets::One.pick(&nodes, &[], &mut same).remove(0);
    let i = target[1..].parse::<usize>().expect("a node name") - 1;
    let mut bytes = w.disk_image(i).expect("encodes");
    assert!(!bytes.is_empty(), "raft wrote its term and vote");
    let v =
        n.invoke(&start("start-file", "truncate", "one"), w.as_mut(), &mut rng).expect("starts");
    assert!(!w.is_up(i), "the node is down while its file is damaged");
    let cut = nemesis::truncate(&mut bytes, &mut same);
    let f = file_value(&v, &target);
    assert_eq!(f.get(&Value::str("cut-bytes")), Some(&Value::Int(cut as i64)), "{v:?}");
    assert_eq!(f.get(&Value::str("file")), Some(&Value::str(format!("{target}/data/wal.log"))));
    let stop = n.invoke(&Invocation::new("stop-file", Value::Nil), w.as_mut(), &mut rng);
    let stop = stop.expect("stops");
    let restart = stop.as_list().and_then(<[_]>::first).and_then(|e| e.get(&Value::str("restart")));
    // A cut tail is a torn append to recovery: cut off in every mode.
    assert_eq!(restart, Some(&Value::map(vec![(Value::str("started"), Value::Bool(true))])));
    assert!(w.is_up(i));
    let kept = w.disk_image(i).expect("encodes");
    assert!(kept.len() <= bytes.len() && bytes.starts_with(&kept), "recovery kept a prefix");
}

/// The restarts a history's `stop-file` operations recorded.
fn restarts(history: &History) -> Vec<Value> {
    nemesis_ops(history, "stop-file")
        .iter()
        .filter_map(Value::as_list)
        .flatten()
        .filter_map(|e| e.get(&Value::str("restart")).cloned())
        .collect()
}

#[test]
fn raft_refuses_a_flipped_log_and_is_repaired_and_truncate_recovery_starts_on_it() {
    let mut spec = small("raft", "register", &["file"]);
    spec.options.insert("file_faults".into(), "bitflip".into());
    let p = prepare(spec.clone(), one_machine(), &registry()).expect("plans");
    let (mut refused, mut started) = (0, 0);
    for seed in 1..=3 {
        let (history, _, _) = simulate(&p, seed).expect("simulates");
        for r in restarts(&history) {
            started += 1;
            if let Some(why) = r.get(&Value::str("refused")) {
                refused += 1;
                assert!(why.as_str().is_some_and(|w| w.contains("corrupt")), "{why:?}");
                assert_eq!(r.get(&Value::str("restored")), Some(&Value::Bool(true)));
            }
            assert_eq!(r.get(&Value::str("started")), Some(&Value::Bool(true)), "{r:?}");
        }
    }
    assert!(refused > 0, "no flip was refused in {started} restarts");
    // With `wal_recovery = truncate` the node cuts its log and starts.
    spec.options.insert("wal_recovery".into(), "truncate".into());
    let p = prepare(spec, one_machine(), &registry()).expect("plans");
    let (history, _, _) = simulate(&p, 1).expect("simulates");
    let r = restarts(&history);
    assert!(!r.is_empty() && r.iter().all(|r| r.get(&Value::str("refused")).is_none()), "{r:?}");
}

#[test]
fn lose_unfsynced_rolls_back_only_a_log_that_is_never_fsynced() {
    for (mode, workload, fsyncs) in [("raft", "register", true), ("async", "set", false)] {
        let mut spec = small(mode, workload, &["file"]);
        spec.options.insert("file_faults".into(), "lose-unfsynced".into());
        let p = prepare(spec, one_machine(), &registry()).expect("plans");
        let (history, _, _) = simulate(&p, 1).expect("simulates");
        let stops = nemesis_ops(&history, "stop-file");
        let files: Vec<&Value> = stops
            .iter()
            .filter_map(Value::as_list)
            .flatten()
            .filter_map(|e| e.get(&Value::str("files")).and_then(Value::as_list))
            .flatten()
            .collect();
        assert!(!files.is_empty(), "{mode}: no lose-unfsynced ended");
        for f in files {
            let kept = f.get(&Value::str("fsynced-before-ack")).is_some();
            assert_eq!(kept, fsyncs, "{mode}: {f:?}");
        }
    }
}

#[test]
fn raft_stays_linearizable_under_file_faults() {
    let p =
        prepare(small("raft", "register", &["file"]), one_machine(), &registry()).expect("plans");
    let s = sweep(&p, &opts(10), &|_| {}).expect("sweeps");
    assert_eq!(s.validity(), Validity::Valid, "{}", s.table());
}
