//! The simulated clock, packet and file faults: each draws what the real
//! nemesis draws from the same rng and records the same fields, and each
//! shows in the verdicts where the modes' promises say it should.

use checkers::formats::{self, Format};
use checkers::{History, Validity, Value};
use harness::Invocation;
use harness::generator::Rng;
use nemesis::{ClockDraw, ClockFault, ClockLimits, Targets};
use rand::SeedableRng;
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
    let settings = FaultSettings::of(&spec).expect("settings");
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
