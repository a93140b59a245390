//! A whole `run_test` over in-process fakes (a register store, a nemesis
//! that records what it is asked), interrupted part way: the history still
//! ends with the final heal, on the record, and the run is never `valid`.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use checkers::registry::CheckSpec;
use checkers::{OpType, Process, Validity, Value};
use harness::generator::{self as g, Invocation};
use harness::interpreter::Progress;
use harness::plugin::NemesisPackage;
use harness::run::{RunOptions, run_test};
use harness::{Client, Db, Registry, Result, TestEnv, TestSpec, Workload};
use rand::Rng as _;

use crate::fake::{MemClient, RecordingNemesis, Store};

/// A target whose nodes are one shared in-memory register store.
#[derive(Default)]
struct MemDb {
    store: Store,
    counter: Arc<AtomicU64>,
}

#[async_trait]
impl Db for MemDb {
    async fn setup(&self, _: &TestEnv, _: &str) -> Result<()> {
        Ok(())
    }
    async fn start(&self, _: &TestEnv, _: &str) -> Result<()> {
        Ok(())
    }
    async fn kill(&self, _: &TestEnv, _: &str) -> Result<()> {
        Ok(())
    }
    async fn pause(&self, _: &TestEnv, _: &str) -> Result<()> {
        Ok(())
    }
    async fn resume(&self, _: &TestEnv, _: &str) -> Result<()> {
        Ok(())
    }
    async fn await_ready(&self, _: &TestEnv, _: &str, _: Duration) -> Result<()> {
        Ok(())
    }
    async fn is_running(&self, _: &TestEnv, _: &str) -> Result<bool> {
        Ok(true)
    }
    async fn teardown(&self, _: &TestEnv, _: &str) -> Result<()> {
        Ok(())
    }
    fn log_files(&self, _: &TestEnv, _: &str) -> Vec<PathBuf> {
        Vec::new()
    }
    fn client(&self, _: &TestEnv) -> Box<dyn Client> {
        Box::new(MemClient {
            store: self.store.clone(),
            counter: self.counter.clone(),
            slow_every: 0,
            slow: Duration::ZERO,
        })
    }
    fn supported_fs(&self) -> &[&str] {
        &["read", "write", "cas"]
    }
}

/// Reads, writes and compare-and-sets on three keys, judged linearizable.
struct RegisterWorkload;

impl Workload for RegisterWorkload {
    fn generator(&self, _: &TestSpec) -> g::Gen {
        g::stagger(
            Duration::from_millis(2),
            g::from_fn(|rng, _| {
                let key = rng.random_range(0..3i64);
                let inv = match rng.random_range(0..3) {
                    0 => Invocation::new("read", Value::Nil),
                    1 => Invocation::new("write", rng.random_range(0..4i64)),
                    _ => Invocation::new(
                        "cas",
                        Value::list([
                            rng.random_range(0..4i64).into(),
                            rng.random_range(0..4i64).into(),
                        ]),
                    ),
                };
                Some(inv.with_key(key))
            }),
        )
    }
    fn final_generator(&self, _: &TestSpec) -> Option<g::Gen> {
        None
    }
    fn fs(&self) -> Vec<String> {
        ["read", "write", "cas"].map(String::from).to_vec()
    }
    fn checks(&self, _: &TestSpec) -> Vec<CheckSpec> {
        vec![CheckSpec {
            checker: "linearizable".into(),
            model: Some("cas-register".into()),
            independent: true,
            ..CheckSpec::default()
        }]
    }
}

/// The registry of fakes; `nemesis_log` receives every nemesis operation.
fn registry(nemesis_log: Arc<Mutex<Vec<String>>>) -> Registry {
    let mut r = Registry::new();
    r.target("mem", "in-memory registers", |_| Ok(Arc::new(MemDb::default()) as Arc<dyn Db>));
    r.workload("mem-register", "registers", |_| Ok(Box::new(RegisterWorkload) as Box<_>));
    r.nemesis("noop", "records what it is asked", move |_| {
        // Starts only, during the test: a `stop-noop` in the history can
        // only come from the final heal.
        Ok(NemesisPackage {
            nemesis: Box::new(RecordingNemesis { log: nemesis_log.clone() }),
            generator: g::from_fn(|_, _| Some(Invocation::new("start-noop", Value::Nil))),
            final_generator: g::op(Invocation::new("stop-noop", Value::Nil)),
        })
    });
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_heals_on_the_record_and_is_never_valid() {
    let store = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(Mutex::new(Vec::new()));
    let registry = registry(log.clone());
    let spec = TestSpec {
        target: "mem".into(),
        workload: "mem-register".into(),
        nemesis: vec!["noop".into()],
        nemesis_interval: 0.1,
        nodes: 1,
        concurrency: 2,
        // Far longer than the test waits: only the interruption ends it.
        time_limit: 600.0,
        seed: Some(11),
        store: store.path().to_owned(),
        ..TestSpec::default()
    };
    let run_dir = results::RunDir::create(store.path(), &spec.test_name()).expect("run dir");
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let _ = tx.send(true);
    });
    let opts = RunOptions {
        interrupt: rx,
        progress: Arc::new(Progress::default()),
        binary: PathBuf::from("/bin/false"),
    };
    let started = std::time::Instant::now();
    let outcome = run_test(spec, &registry, run_dir, opts).await.expect("run");
    assert!(started.elapsed() < Duration::from_secs(60), "the interruption ended the run");
    assert!(outcome.stats.interrupted);

    // The history: faults started, clients stopped, then the final heal was
    // recorded as a nemesis operation like any other, after every client op.
    let dir = outcome.run_dir.path().to_owned();
    let history = checkers::formats::read_path(&dir.join("history.jsonl"), None).expect("history");
    let ops = history.ops();
    let pairs = history.pairs().expect("well-formed");
    assert!(pairs.iter().filter(|p| ops[p.invoke].process != Process::Nemesis).count() > 20);
    assert!(pairs.iter().all(|p| p.complete.is_some()), "in-flight ops were waited for");
    // Nemesis events are `info` both ways; the completion carries the value
    // the nemesis answered.
    let nemesis: Vec<(&str, &Value)> = ops
        .iter()
        .filter(|o| o.process == Process::Nemesis)
        .map(|o| {
            assert_eq!(o.kind, OpType::Info);
            (&*o.f, &o.value)
        })
        .collect();
    let done = Value::str("done");
    assert!(nemesis.contains(&("start-noop", &done)), "{nemesis:?}");
    assert_eq!(
        nemesis[nemesis.len() - 2..],
        [("stop-noop", &Value::Nil), ("stop-noop", &done)],
        "the heal is the last nemesis operation, invoked and completed"
    );
    assert_eq!(nemesis.iter().filter(|(f, _)| *f == "stop-noop").count(), 2, "one heal");
    let heal_at = ops.iter().rposition(|o| &*o.f == "stop-noop").expect("heal");
    let last_client = ops.iter().rposition(|o| o.process != Process::Nemesis);
    assert!(last_client.is_some_and(|c| c < heal_at), "clients stopped before the heal");
    assert_eq!(log.lock().expect("log").last().map(String::as_str), Some("stop-noop"));

    // The verdict: the register was linearizable, yet the run is unknown.
    let checked = &outcome.finished.checked;
    assert_eq!(checked.checks[0].1.validity, Validity::Valid);
    assert_eq!(checked.verdict.validity, Validity::Unknown);
    let reason = checked.verdict.unknown_reason.clone().unwrap_or_default();
    assert!(reason.contains("interrupted before its time limit"), "{reason}");
    let results =
        results::RunResults::read(&dir.join("results.json")).expect("read").expect("results.json");
    assert_eq!(results.validity, Some(Validity::Unknown));
    assert!(results.interrupted.as_deref().is_some_and(|w| w.contains("Ctrl-C")), "{results:?}");

    // Checking the run again later (`faultline analyze`) still says so.
    let run = results::RunDir::open(&dir).expect("open");
    let again = harness::finish::finish_run(&run, &run.read_spec().expect("spec"), &registry)
        .expect("analyze");
    assert_eq!(again.checked.verdict.validity, Validity::Unknown);
    let results = results::RunResults::read(&dir.join("results.json")).expect("read");
    assert!(results.and_then(|r| r.interrupted).is_some());
}
