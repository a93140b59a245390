//! Every workload's history is checked in time linear in its length. Each
//! workload's own generator drives six clients through the real
//! interpreter against refstore's state machine in memory (one linearizable
//! store, no network), recording 10,000 and 100,000 operations; the
//! workload's default checkers then judge each history. The baseline, in the
//! same run, is the 10,000-operation history: linear time means the
//! 100,000-operation check costs about ten times as much. A summary table of
//! both sizes and their ratio is printed at the end.
//!
//! `cargo bench --bench workloads` (one workload: `-- bank`)

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checkers::formats::{self, Format};
use checkers::{Checker, History};
use criterion::{Criterion, Throughput};
use faultline_refstore::{InMemory, RefstoreClient};
use harness::clock::MonotonicClock;
use harness::generator::{self as g, Rng};
use harness::interpreter::{ClientFactory, Interpreter, Progress};
use harness::recorder::{Recorder, RecorderConfig};
use harness::{Registry, TestSpec};
use rand::SeedableRng;

/// The workloads measured. Not `set`: each of its reads returns the whole
/// set, so its history grows with the square of its operations (100,000
/// operations would be gigabytes), though set-full's time is linear in the
/// history's size.
const WORKLOADS: &[&str] = &[
    "register",
    "list-append",
    "rw-register",
    "lww-register",
    "bank",
    "counter",
    "unique-ids",
    "queue",
    "long-fork",
    "causal",
];

/// Client operations in the small and the large history.
const SIZES: [u64; 2] = [10_000, 100_000];

fn registry() -> Registry {
    let mut r = Registry::new();
    workloads::register_all(&mut r);
    r
}

/// Records `ops` operations of `spec`'s workload against an in-memory
/// refstore into `path`.
fn record(spec: &TestSpec, registry: &Registry, ops: u64, path: &Path) {
    let workload = registry.build_workload(&spec.workload, spec).expect("workload");
    let store = Arc::new(InMemory::default());
    let factory: ClientFactory =
        Arc::new(move || Box::new(RefstoreClient::in_memory(store.clone())));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let interpreter = Interpreter {
        clients: 6,
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        client_factory: factory,
        nemesis: None,
        nemesis_seed: 0,
        op_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(5),
        clock: MonotonicClock::start(),
        progress: Arc::new(Progress::default()),
        cancel: rx,
    };
    let mut phases = vec![g::clients(g::limit(ops, workload.generator(spec)))];
    phases.extend(workload.final_generator(spec).map(g::clients));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut recorder = Recorder::create(path, RecorderConfig::default()).expect("recorder");
    rt.block_on(interpreter.run(g::phases(phases), Rng::seed_from_u64(7), &mut recorder))
        .expect("run");
    recorder.finish().expect("history");
}

/// The workload's default checkers, built.
fn checkers(spec: &TestSpec, registry: &Registry) -> Vec<Box<dyn Checker>> {
    let workload = registry.build_workload(&spec.workload, spec).expect("workload");
    harness::checks::test_checks(spec, workload.as_ref(), registry)
        .expect("checks")
        .iter()
        .map(|c| registry.build_checker(c).expect("checker"))
        .collect()
}

/// Every checker over `history`: a linearizable store's history is valid.
fn judge(checkers: &[Box<dyn Checker>], history: &History) {
    for c in checkers {
        let v = c.check(history).expect("check");
        assert_eq!(v.validity, checkers::Validity::Valid, "{}", v.to_text());
        std::hint::black_box(v);
    }
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let registry = registry();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Criterion::default().sample_size(10).configure_from_args();
    let mut table = Vec::new();
    for &name in WORKLOADS {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let spec = TestSpec { workload: name.into(), nodes: 3, ..TestSpec::default() };
        let checkers = checkers(&spec, &registry);
        let mut group = c.benchmark_group(format!("workload-{name}"));
        let mut medians = Vec::new();
        for ops in SIZES {
            let path = dir.path().join(format!("{name}-{ops}.jsonl"));
            record(&spec, &registry, ops, &path);
            let history = formats::read_path(&path, Some(Format::Jsonl)).expect("history");
            group.throughput(Throughput::Elements(ops));
            group.bench_function(format!("{}k", ops / 1000), |b| {
                b.iter(|| judge(&checkers, &history))
            });
            // Median of a few timed checks, for the summary.
            let mut times: Vec<Duration> = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    judge(&checkers, &history);
                    t.elapsed()
                })
                .collect();
            times.sort();
            medians.push(times[2]);
        }
        group.finish();
        table.push((name, medians[0], medians[1]));
    }
    println!("\nworkload       10k ops    100k ops   ratio (linear: ~10)");
    for (name, small, large) in table {
        println!(
            "{name:14} {:>7.1} ms {:>8.1} ms   {:.1}x",
            small.as_secs_f64() * 1e3,
            large.as_secs_f64() * 1e3,
            large.as_secs_f64() / small.as_secs_f64()
        );
    }
    c.final_summary();
}
