//! The interpreter against an in-process linearizable store: the history it
//! records must be well-formed, show timeouts as `info` with retired
//! processes, carry the nemesis events, and check as linearizable.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use checkers::registry::{CheckSpec, build};
use checkers::{OpType, Process, Validity, Value};
use harness::clock::MonotonicClock;
use harness::generator::{self as g, Invocation};
use harness::interpreter::{Interpreter, Progress};
use harness::recorder::{Recorder, RecorderConfig};
use rand::{Rng as _, SeedableRng};

use crate::fake::{MemClient, RecordingNemesis};

fn register_ops() -> g::Gen {
    g::from_fn(|rng, _| {
        let key = rng.random_range(0..3i64);
        let inv = match rng.random_range(0..3) {
            0 => Invocation::new("read", Value::Nil),
            1 => Invocation::new("write", rng.random_range(0..4i64)),
            _ => Invocation::new(
                "cas",
                Value::list([rng.random_range(0..4i64).into(), rng.random_range(0..4i64).into()]),
            ),
        };
        Some(inv.with_key(key))
    })
}

/// Clients of one shared in-memory register store; every `slow_every`-th
/// operation (0: none) takes `slow`.
fn mem_clients(slow_every: u64, slow: Duration) -> harness::interpreter::ClientFactory {
    let store = Arc::new(Mutex::new(BTreeMap::new()));
    let counter = Arc::new(AtomicU64::new(0));
    Arc::new(move || {
        Box::new(MemClient { store: store.clone(), counter: counter.clone(), slow_every, slow })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_wellformed_linearizable_history_with_timeouts_and_faults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let mut recorder = Recorder::create(&path, RecorderConfig::default()).expect("recorder");
    let factory = mem_clients(37, Duration::from_millis(300));
    let nem_log = Arc::new(Mutex::new(Vec::new()));
    let nemesis = RecordingNemesis { log: nem_log.clone() };
    let faults = g::delay(
        Duration::from_millis(50),
        g::flip_flop(
            g::from_fn(|_, _| Some(Invocation::new("start-noop", Value::Nil))),
            g::from_fn(|_, _| Some(Invocation::new("stop-noop", Value::Nil))),
        ),
    );
    let clients = g::stagger(Duration::from_micros(500), register_ops());
    let generator = g::phases(vec![
        g::time_limit(Duration::from_millis(600), g::nemesis_and_clients(faults, clients)),
        g::nemesis(g::op(Invocation::new("stop-noop", Value::Nil))),
        g::clients(g::each_thread(g::op(Invocation::new("read", Value::Nil).with_key(0)))),
    ]);
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let interpreter = Interpreter {
        clients: 4,
        nodes: vec!["n1".into(), "n2".into()],
        client_factory: factory,
        nemesis: Some(Box::new(nemesis)),
        nemesis_seed: 1,
        op_timeout: Duration::from_millis(100),
        drain_timeout: Duration::from_secs(2),
        clock: MonotonicClock::start(),
        progress: Arc::new(Progress::default()),
        cancel: rx,
    };
    let (stats, nem) = interpreter
        .run(generator, harness::generator::Rng::seed_from_u64(42), &mut recorder)
        .await
        .expect("run");
    assert!(nem.is_some(), "the nemesis comes back for healing");
    assert!(!stats.interrupted);
    let events = recorder.finish().expect("finish");
    assert_eq!(events, stats.events);

    let history = checkers::formats::read_path(&path, None).expect("read back");
    assert_eq!(history.len() as u64, events);
    let pairs = history.pairs().expect("well-formed");
    let ops = history.ops();
    // Every client invocation completed (nothing left in flight at the end).
    assert!(pairs.iter().all(|p| p.complete.is_some()), "an op was left open");
    // Times never go backwards and indices are dense.
    for (i, w) in ops.windows(2).enumerate() {
        assert!(w[0].time <= w[1].time, "time goes back at {i}");
        assert_eq!(w[1].index, w[0].index + 1);
    }
    // Timeouts became info, and the process that timed out never appears again.
    let infos: Vec<_> =
        ops.iter().filter(|o| o.kind == OpType::Info && o.process != Process::Nemesis).collect();
    assert!(!infos.is_empty(), "the slow operations must have timed out");
    for info in &infos {
        assert_eq!(info.error, Some(Value::str("timeout")));
        let later =
            ops.iter().filter(|o| o.index > info.index && o.process == info.process).count();
        assert_eq!(later, 0, "process {} was not retired after info", info.process);
    }
    // Clients talk to the nodes they are bound to.
    assert!(ops.iter().filter(|o| o.process != Process::Nemesis).all(|o| o.node.is_some()));
    // Nemesis operations are recorded as info pairs and were performed.
    let nemesis_fs: Vec<&str> =
        ops.iter().filter(|o| o.process == Process::Nemesis).map(|o| o.f.as_str()).collect();
    assert!(nemesis_fs.len() >= 4 && nemesis_fs.len().is_multiple_of(2), "{nemesis_fs:?}");
    assert_eq!(nemesis_fs.last(), Some(&"stop-noop"));
    let performed = nem_log.lock().expect("log").len();
    assert_eq!(performed * 2, nemesis_fs.len());
    // The final phase read on every client thread.
    let reads_at_end = ops.iter().rev().take(8).filter(|o| o.f == "read").count();
    assert_eq!(reads_at_end, 8);

    let checker = build(&CheckSpec {
        checker: "linearizable".into(),
        model: Some("cas-register".into()),
        independent: true,
        ..CheckSpec::default()
    })
    .expect("checker");
    let verdict = checker.check(&history).expect("check");
    assert_eq!(verdict.validity, Validity::Valid, "{}", verdict.to_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interruption_stops_generating_and_drains() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let mut recorder = Recorder::create(&path, RecorderConfig::default()).expect("recorder");
    let factory = mem_clients(0, Duration::ZERO);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let interpreter = Interpreter {
        clients: 2,
        nodes: vec!["n1".into()],
        client_factory: factory,
        nemesis: None,
        nemesis_seed: 1,
        op_timeout: Duration::from_millis(100),
        drain_timeout: Duration::from_secs(1),
        clock: MonotonicClock::start(),
        progress: Arc::new(Progress::default()),
        cancel: rx,
    };
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = tx.send(true);
    });
    let started = std::time::Instant::now();
    // An endless generator: only the interruption ends the run.
    let generator = g::clients(g::stagger(Duration::from_millis(1), register_ops()));
    let (stats, _) = interpreter
        .run(generator, harness::generator::Rng::seed_from_u64(7), &mut recorder)
        .await
        .expect("run");
    assert!(stats.interrupted);
    assert!(started.elapsed() < Duration::from_secs(3));
    recorder.finish().expect("finish");
    let history = checkers::formats::read_path(&path, None).expect("read back");
    let pairs = history.pairs().expect("well-formed");
    assert!(pairs.len() > 20, "{} ops before the interruption", pairs.len());
    assert!(pairs.iter().all(|p| p.complete.is_some()));
}
