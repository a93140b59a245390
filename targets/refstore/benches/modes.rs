//! Throughput and latency of every replication mode on a 3-node loopback cluster with 10
//! concurrent clients (half reads, half writes, over 100 keys), driven through the HTTP API.
//!
//! Criterion measures the time per operation with 10 clients in flight, i.e. the inverse of
//! throughput; the bench also records every operation's latency and prints, at the end, a
//! table of throughput, latency percentiles and each mode's throughput as a ratio of the
//! `eventual` baseline (local reads and writes, no coordination on the request path),
//! measured in the same run. Run with `cargo bench -p refstore --bench modes`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use refstore::Mode;
use refstore::cluster::{LocalCluster, Ports};
use refstore::core::Timing;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: u64 = 10;
const KEYS: u64 = 100;

/// Per-mode latency samples (microseconds) and error counts, gathered across iterations.
#[derive(Default)]
struct Samples {
    latencies_us: Vec<u64>,
    ops: u64,
    errors: u64,
    busy: Duration,
}

/// Sends one request, following a not-leader redirect; returns whether it succeeded.
async fn op(http: &reqwest::Client, target: &Mutex<String>, path: &str, body: &Value) -> bool {
    for _ in 0..5 {
        let addr = target.lock().map(|a| a.clone()).unwrap_or_default();
        let Ok(r) = http.post(format!("http://{addr}{path}")).json(body).send().await else {
            return false;
        };
        let status = r.status().as_u16();
        let Ok(answer) = r.json::<Value>().await else { return false };
        if status == 200 {
            return true;
        }
        match answer.get("leader").and_then(Value::as_str) {
            Some(leader) if status == 421 => {
                if let Ok(mut t) = target.lock() {
                    *t = leader.to_string();
                }
            }
            _ => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    false
}

/// Runs `total` operations with 10 concurrent clients; returns the wall time taken.
async fn load(
    http: &reqwest::Client,
    addrs: &[String],
    leader: &Arc<Mutex<String>>,
    has_leader: bool,
    total: u64,
    samples: &Arc<Mutex<Samples>>,
) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let per_client = total / CLIENTS + u64::from(c < total % CLIENTS);
        let http = http.clone();
        // Leaderless modes spread clients over the nodes; leader modes all go to the leader.
        let target = if has_leader {
            leader.clone()
        } else {
            Arc::new(Mutex::new(addrs[c as usize % addrs.len()].clone()))
        };
        let samples = samples.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_client as usize);
            let mut errors = 0;
            for i in 0..per_client {
                let key = (c * 7919 + i * 104_729) % KEYS;
                let (path, body) = if i % 2 == 0 {
                    ("/v1/read", json!({ "key": key }))
                } else {
                    ("/v1/write", json!({ "key": key, "value": i }))
                };
                let t = Instant::now();
                if !op(&http, &target, path, &body).await {
                    errors += 1;
                }
                lat.push(t.elapsed().as_micros() as u64);
            }
            if let Ok(mut s) = samples.lock() {
                s.ops += lat.len() as u64;
                s.latencies_us.extend(lat);
                s.errors += errors;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed();
    if let Ok(mut s) = samples.lock() {
        s.busy += elapsed;
    }
    elapsed
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn bench_modes(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("refstore_3_nodes_10_clients");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    let mut table: BTreeMap<usize, (Mode, Samples)> = BTreeMap::new();
    for (i, mode) in Mode::ALL.into_iter().enumerate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let timing = Timing::default();
        let cluster = rt
            .block_on(LocalCluster::start(
                mode,
                3,
                "127.0.0.1",
                Ports::Ephemeral,
                dir.path(),
                timing,
            ))
            .expect("cluster starts");
        let addrs: Vec<String> = cluster.client_addrs().into_values().collect();
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
        let leader = Arc::new(Mutex::new(addrs[0].clone()));
        // Wait until the cluster accepts writes (an election in the leader modes).
        rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !op(&http, &leader, "/v1/write", &json!({"key": 0, "value": 0})).await {
                assert!(Instant::now() < deadline, "{mode} cluster never accepted a write");
            }
        });
        let samples = Arc::new(Mutex::new(Samples::default()));
        group.bench_function(mode.name(), |b| {
            b.iter_custom(|iters| {
                rt.block_on(load(&http, &addrs, &leader, mode.has_leader(), iters, &samples))
            })
        });
        rt.block_on(cluster.shutdown()).expect("clean shutdown");
        let s = std::mem::take(&mut *samples.lock().expect("samples"));
        table.insert(i, (mode, s));
    }
    group.finish();
    let throughput = |s: &Samples| s.ops as f64 / s.busy.as_secs_f64().max(1e-9);
    let baseline = table
        .values()
        .find(|(m, _)| *m == Mode::Eventual)
        .map(|(_, s)| throughput(s))
        .unwrap_or(1.0);
    eprintln!(
        "\nrefstore: 3 nodes on loopback, {CLIENTS} concurrent clients, 50% reads / 50% writes"
    );
    eprintln!(
        "{:<13} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}",
        "mode", "ops/s", "mean ms", "p50 ms", "p99 ms", "max ms", "errors", "vs evtl"
    );
    for (mode, s) in table.values_mut() {
        s.latencies_us.sort_unstable();
        let mean =
            s.latencies_us.iter().sum::<u64>() as f64 / s.latencies_us.len().max(1) as f64 / 1000.0;
        eprintln!(
            "{:<13} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>9.2}",
            mode.name(),
            throughput(s),
            mean,
            percentile(&s.latencies_us, 0.5),
            percentile(&s.latencies_us, 0.99),
            percentile(&s.latencies_us, 1.0),
            s.errors,
            throughput(s) / baseline
        );
    }
}

criterion_group!(benches, bench_modes);
criterion_main!(benches);
