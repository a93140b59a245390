//! How fast the harness itself is: operations per second the interpreter
//! can drive and record with a client that does nothing, against a baseline
//! measured in the same run: writing the same events as raw JSONL without
//! the interpreter (the cost no harness can avoid). The difference per
//! operation is the harness's overhead. Target: 100,000 ops/s recorded on a
//! 2-core machine.
//!
//! `cargo bench -p faultline-harness --bench interpreter`

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use checkers::formats::write_jsonl_line;
use checkers::{Op, OpType, Process, Value};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harness::clock::MonotonicClock;
use harness::generator::{self as g, Invocation, Rng};
use harness::interpreter::{ClientFactory, Interpreter, Progress};
use harness::recorder::{Recorder, RecorderConfig};
use harness::{Client, Completion};
use rand::{Rng as _, SeedableRng};

/// Operations per measured iteration.
const OPS: u64 = 20_000;
/// Client threads.
const THREADS: u32 = 4;

/// A client that answers every operation at once.
struct NoopClient;

#[async_trait]
impl Client for NoopClient {
    async fn open(&mut self, _node: &str) -> harness::Result<()> {
        Ok(())
    }
    async fn invoke(&mut self, op: &Invocation) -> Completion {
        Completion::ok(op.value.clone())
    }
}

fn workload() -> g::Gen {
    g::from_fn(|rng: &mut Rng, _| {
        let inv = if rng.random_bool(0.5) {
            Invocation::new("read", Value::Nil)
        } else {
            Invocation::new("write", rng.random_range(0..5i64))
        };
        Some(inv.with_key(rng.random_range(0..8i64)))
    })
}

fn run_interpreter(rt: &tokio::runtime::Runtime, dir: &std::path::Path, n: &AtomicU64) {
    let path = dir.join(format!("h{}.jsonl", n.fetch_add(1, Ordering::Relaxed)));
    let mut recorder = Recorder::create(&path, RecorderConfig::default()).expect("recorder");
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let factory: ClientFactory = Arc::new(|| Box::new(NoopClient));
    let interpreter = Interpreter {
        clients: THREADS,
        nodes: vec!["n1".into(), "n2".into()],
        client_factory: factory,
        nemesis: None,
        nemesis_seed: 0,
        op_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(5),
        clock: MonotonicClock::start(),
        progress: Arc::new(Progress::default()),
        cancel: rx,
    };
    let generator = g::clients(g::limit(OPS, workload()));
    rt.block_on(interpreter.run(generator, Rng::seed_from_u64(1), &mut recorder)).expect("run");
    let events = recorder.finish().expect("finish");
    assert_eq!(events, OPS * 2);
    let _ = std::fs::remove_file(&path);
}

/// The baseline: the same events, serialised and written in one thread.
fn raw_jsonl(dir: &std::path::Path, n: &AtomicU64) {
    let path = dir.join(format!("raw{}.jsonl", n.fetch_add(1, Ordering::Relaxed)));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let mut rng = Rng::seed_from_u64(1);
    let mut generator = workload();
    let threads = g::Threads::new(THREADS);
    let mut buf = Vec::with_capacity(256);
    for i in 0..OPS {
        let ctx = threads.context(i);
        generator.peek(&ctx, &mut rng);
        let Some(g::Action::Invoke(inv)) = generator.take(&ctx, 0, &mut rng) else {
            panic!("no op")
        };
        let mut op = Op {
            index: 2 * i,
            time: Some(i),
            process: Process::Client(i % u64::from(THREADS)),
            kind: OpType::Invoke,
            f: inv.f.into(),
            value: inv.value,
            key: inv.key,
            node: Some("n1".into()),
            error: None,
        };
        buf.clear();
        write_jsonl_line(&op, &mut buf);
        op.index += 1;
        op.kind = OpType::Ok;
        write_jsonl_line(&op, &mut buf);
        file.write_all(&buf).expect("write");
    }
    file.flush().expect("flush");
    drop(file);
    let _ = std::fs::remove_file(&path);
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = AtomicU64::new(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("harness");
    group.throughput(Throughput::Elements(OPS));
    group.sample_size(20);
    group.bench_function("raw_jsonl_baseline", |b| b.iter(|| raw_jsonl(dir.path(), &n)));
    group.bench_function("interpreter_noop_client", |b| {
        b.iter(|| run_interpreter(&rt, dir.path(), &n))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
