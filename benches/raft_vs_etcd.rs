//! refstore in raft mode against etcd 3.4, side by side in one run: the same
//! 3-node cluster shape in network namespaces (the `netns` runtime, one
//! namespace per node on a bridge), the same register workload, no faults.
//!
//! Each target's cluster is started once through the harness
//! (`harness::run::start_cluster`, as `faultline test` does) and driven by
//! the real interpreter with the target's own client, recording every
//! operation into a history as a test does. One criterion iteration is a
//! batch of `BATCH` register operations (reads, writes and compare-and-sets
//! over `KEYS` keys, from `CLIENTS` client threads spread over the three
//! nodes); both targets get the same batches, seeded alike. Criterion
//! reports the time per batch; latency is read from the recorded histories
//! (completion time minus invocation time of every `ok` operation), and a
//! table of throughput, p50 and p99 for both targets and their ratio
//! (refstore / etcd) is printed at the end, since criterion gives no p99:
//! once for criterion's batches (one target after the other), once for
//! `ROUNDS` interleaved rounds (a batch on each target a round, both
//! clusters up), whose ratio does not depend on when the machine was busy.
//!
//! It needs root (namespaces, nft) and Debian's etcd-server; without them
//! it says so loudly and exits 0 having measured nothing.
//!
//! `cargo bench --bench raft_vs_etcd`

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use checkers::OpType;
use criterion::{Criterion, SamplingMode, Throughput};
use harness::clock::MonotonicClock;
use harness::generator::{self as g, Rng};
use harness::interpreter::{ClientFactory, Interpreter, Progress};
use harness::recorder::{Recorder, RecorderConfig};
use harness::run::{self, Plan};
use harness::runtime::{self, netns};
use harness::spec::RuntimeKind;
use harness::{Registry, RunDir, Runtime, TestEnv, TestSpec};
use rand::SeedableRng;
use results::intervals::Intervals;
use results::run_results::quantile;

/// Register operations per criterion iteration.
const BATCH: u64 = 1_000;
/// Client threads, spread over the nodes as in a test (thread `t` opens on
/// node `t mod 3`).
const CLIENTS: u32 = 10;
/// Keys in use at once (the register workload's default).
const KEYS: u64 = 4;
/// Nodes of each cluster.
const NODES: u32 = 3;

/// One target as the bench names it and as a test spec selects it.
struct Target {
    label: &'static str,
    target: &'static str,
}

/// Both in mode `raft`: refstore's raft mode, and etcd's one mode.
const TARGETS: [Target; 2] = [
    Target { label: "refstore-raft", target: "refstore" },
    Target { label: "etcd", target: "etcd" },
];

/// What every batch of one target's operations showed, pooled.
#[derive(Default)]
struct Tally {
    /// Latencies of `ok` operations, nanoseconds.
    ok_latencies: Vec<u64>,
    /// Operations that ended `fail` (a compare-and-set whose compare failed,
    /// above all: an answer, not an error).
    fail: u64,
    /// Operations that ended `info` (timeouts, lost connections).
    info: u64,
    /// Wall time of the batches (the interpreter's runs only).
    busy: Duration,
    /// Batches run.
    batches: u64,
}

impl Tally {
    fn ok(&self) -> u64 {
        self.ok_latencies.len() as u64
    }

    /// Operations answered (`ok` or `fail`) per second.
    fn answered_per_s(&self) -> f64 {
        (self.ok() + self.fail) as f64 / self.busy.as_secs_f64()
    }

    fn ok_per_s(&self) -> f64 {
        self.ok() as f64 / self.busy.as_secs_f64()
    }

    /// The `q` quantile of `ok` latency, in milliseconds.
    fn ok_ms(&self, q: f64) -> f64 {
        let mut sorted = self.ok_latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() { f64::NAN } else { quantile(&sorted, q) as f64 / 1e6 }
    }
}

/// Every built-in plugin this bench touches, registered by name.
fn registry() -> Registry {
    let mut r = Registry::new();
    faultline_refstore::register_all(&mut r);
    etcd_adapter::register_all(&mut r);
    workloads::register_all(&mut r);
    r
}

fn spec(target: &Target, store: &Path) -> TestSpec {
    let mut spec = TestSpec {
        mode: "raft".into(),
        name: format!("bench-{}", target.label),
        target: target.target.into(),
        workload: "register".into(),
        nemesis: Vec::new(),
        nodes: NODES,
        concurrency: CLIENTS,
        op_timeout_ms: 5_000,
        runtime: RuntimeKind::Netns,
        seed: Some(1),
        store: store.to_owned(),
        ..TestSpec::default()
    };
    spec.options.insert("keys".into(), KEYS.to_string());
    spec
}

/// A running cluster of one target and what drives it.
struct Cluster {
    plan: Plan,
    env: TestEnv,
    runtime: Arc<dyn Runtime>,
    spec: Arc<TestSpec>,
    run_dir: RunDir,
}

impl Cluster {
    /// Brings `spec`'s cluster up through the harness, as a test does.
    async fn start(spec: TestSpec, registry: &Registry, binary: &Path) -> harness::Result<Cluster> {
        let plan = run::plan(&spec, registry)?;
        let run_dir = RunDir::create(&spec.store, &spec.test_name())?;
        run_dir.write_spec(&spec)?;
        let tag = run::run_tag(&run_dir);
        let spec = Arc::new(spec);
        let runtime = runtime::build(&spec, &run_dir, &tag, binary).await?;
        let env = TestEnv::new(spec.clone(), runtime.clone(), run_dir.path().to_owned());
        let cluster = Cluster { plan, env, runtime, spec, run_dir };
        if let Err(e) = run::start_cluster(cluster.plan.db.as_ref(), &cluster.env).await {
            cluster.stop().await;
            return Err(e);
        }
        Ok(cluster)
    }

    /// Runs one batch of `BATCH` operations (generator seeded by `batch`),
    /// recorded to a history, and adds what it showed to `tally`.
    async fn batch(&self, batch: u64, tally: &mut Tally) {
        let path = self.run_dir.path().join(format!("batch-{batch}.jsonl"));
        let mut recorder = Recorder::create(&path, RecorderConfig::default()).expect("recorder");
        let db = self.plan.db.clone();
        let env = self.env.clone();
        let factory: ClientFactory = Arc::new(move || db.client(&env));
        let (_keep, cancel) = tokio::sync::watch::channel(false);
        let op_timeout = Duration::from_millis(self.spec.op_timeout_ms);
        let interpreter = Interpreter {
            clients: self.spec.client_threads(),
            nodes: self.env.nodes().to_vec(),
            client_factory: factory,
            nemesis: None,
            nemesis_seed: 0,
            op_timeout,
            drain_timeout: op_timeout + Duration::from_secs(2),
            clock: MonotonicClock::start(),
            progress: Arc::new(Progress::default()),
            cancel,
        };
        let generator = g::clients(g::limit(BATCH, self.plan.workload.generator(&self.spec)));
        let started = Instant::now();
        interpreter
            .run(generator, Rng::seed_from_u64(batch), &mut recorder)
            .await
            .expect("the interpreter ran");
        tally.busy += started.elapsed();
        tally.batches += 1;
        recorder.finish().expect("history written");
        let history = checkers::formats::read_path(&path, None).expect("history read back");
        for op in Intervals::of(&history).items {
            match op.outcome {
                OpType::Ok => tally.ok_latencies.extend(op.latency()),
                OpType::Fail => tally.fail += 1,
                _ => tally.info += 1,
            }
        }
        let _ = std::fs::remove_file(&path);
    }

    /// Tears the database and then the runtime (namespaces, bridge, rules) down.
    async fn stop(&self) {
        run::stop_cluster(self.plan.db.as_ref(), &self.env).await;
        if let Err(e) = self.runtime.teardown().await {
            eprintln!("tearing the {} runtime down failed: {e}", self.spec.target);
        }
    }
}

/// Why this machine cannot run the bench, if it cannot.
fn missing_requirements() -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from))
        .collect();
    let missing: Vec<&str> = ["ip", "nft", "etcd"]
        .into_iter()
        .filter(|p| !dirs.iter().any(|d| d.join(p).is_file()))
        .collect();
    let mut reasons = Vec::new();
    if !netns::have_root() {
        reasons.push("NEEDS ROOT (network namespaces)".to_owned());
    }
    if !missing.is_empty() {
        reasons
            .push(format!("missing {missing:?} (apt-get install etcd-server iproute2 nftables)"));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Interleaved rounds after criterion's measurements: each round runs one
/// batch on each target, the first target alternating, so load from
/// elsewhere on the machine falls on both alike. The ratio comes from these.
const ROUNDS: u64 = 10;

fn main() {
    if let Some(why) = missing_requirements() {
        eprintln!("\n!!! raft_vs_etcd: {why}; nothing measured !!!\n");
        return;
    }
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_faultline"));
    let registry = registry();
    let store = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Both clusters stay up for the whole run (an idle cluster only
    // heartbeats), so the interleaved rounds can alternate between them.
    let mut clusters: Vec<Cluster> = Vec::new();
    for target in &TARGETS {
        let started = Instant::now();
        match rt.block_on(Cluster::start(spec(target, store.path()), &registry, &binary)) {
            Ok(c) => clusters.push(c),
            Err(e) => {
                for c in &clusters {
                    rt.block_on(c.stop());
                }
                panic!("the {} cluster did not start: {e}", target.label);
            }
        }
        eprintln!("{}: {NODES} nodes up in {:.1} s", target.label, started.elapsed().as_secs_f64());
    }
    // One batch each to open connections and settle the leader; not counted.
    for cluster in &clusters {
        rt.block_on(cluster.batch(0, &mut Tally::default()));
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15))
        .configure_from_args();
    let mut group = c.benchmark_group("raft_vs_etcd");
    group.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(BATCH));
    let mut in_turn: Vec<(&str, Tally)> = Vec::new();
    for (target, cluster) in TARGETS.iter().zip(&clusters) {
        let mut tally = Tally::default();
        let mut next = 1;
        group.bench_function(target.label, |b| {
            b.iter_custom(|iters| {
                let before = tally.busy;
                for _ in 0..iters {
                    rt.block_on(cluster.batch(next, &mut tally));
                    next += 1;
                }
                tally.busy - before
            })
        });
        in_turn.push((target.label, tally));
    }
    group.finish();

    let mut interleaved: Vec<(&str, Tally)> =
        TARGETS.iter().map(|t| (t.label, Tally::default())).collect();
    for round in 0..ROUNDS {
        for i in 0..clusters.len() {
            // Round 0 starts with the first target, round 1 with the second...
            let k = (i + round as usize) % clusters.len();
            rt.block_on(clusters[k].batch(1_000_000 + round, &mut interleaved[k].1));
        }
    }
    for cluster in &clusters {
        rt.block_on(cluster.stop());
    }

    println!(
        "\n{NODES} nodes each (netns), register workload, {CLIENTS} clients, {KEYS} keys, \
         1/3 read, 1/3 write, 1/3 cas, no faults, {BATCH} operations a batch"
    );
    println!("\ncriterion's batches, one target after the other:");
    print_table(&in_turn);
    println!("\n{ROUNDS} interleaved rounds, a batch on each target a round:");
    print_table(&interleaved);
    c.final_summary();
}

fn print_table(table: &[(&str, Tally)]) {
    println!(
        "{:14} {:>8} {:>9} {:>6} {:>5} {:>12} {:>9} {:>9} {:>9}",
        "target", "batches", "ok", "fail", "info", "answered/s", "ok/s", "p50 ms", "p99 ms"
    );
    for (label, t) in table {
        println!(
            "{label:14} {:>8} {:>9} {:>6} {:>5} {:>12.0} {:>9.0} {:>9.2} {:>9.2}",
            t.batches,
            t.ok(),
            t.fail,
            t.info,
            t.answered_per_s(),
            t.ok_per_s(),
            t.ok_ms(0.50),
            t.ok_ms(0.99)
        );
    }
    if let [(_, raft), (_, etcd)] = table {
        println!(
            "ratio refstore-raft / etcd: answered/s {:.2}, ok/s {:.2}, p50 {:.2}, p99 {:.2}",
            raft.answered_per_s() / etcd.answered_per_s(),
            raft.ok_per_s() / etcd.ok_per_s(),
            raft.ok_ms(0.50) / etcd.ok_ms(0.50),
            raft.ok_ms(0.99) / etcd.ok_ms(0.99)
        );
    }
}
