//! The simulation's throughput: simulated runs of about 1,000 client
//! operations (raft, register workload, partitions and kills, checkers
//! included) per minute of wall time, on `--parallel` threads.
//!
//! `cargo run --profile test -p faultline-sim --example throughput -- [SEEDS] [PARALLEL] [MODE]`
//! (defaults: 200 seeds, 2 threads, raft). The machine's load changes the
//! figure; say what else ran when quoting it.

use std::time::Instant;

use harness::TestSpec;
use harness::plugin::Registry;
use sim::sweep::{SweepOptions, sweep};
use sim::{WorldConfig, prepare};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seeds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(200);
    let parallel: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2);
    let mode = args.get(2).cloned().unwrap_or_else(|| "raft".into());
    let mut registry = Registry::new();
    faultline_refstore::register_all(&mut registry);
    workloads::register_all(&mut registry);
    nemesis::register_all(&mut registry);
    // 200 operations a simulated second for 5 s: 1,000 client operations,
    // a fault operation every simulated second.
    let spec = TestSpec {
        mode,
        workload: "register".into(),
        nemesis: vec!["partition".into(), "kill".into()],
        nodes: 5,
        time_limit: 5.0,
        rate: 200.0,
        nemesis_interval: 1.0,
        op_timeout_ms: 1000,
        recovery: 2.0,
        ..TestSpec::default()
    };
    let prepared = match prepare(spec, WorldConfig::default(), &registry) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("throughput: {e}");
            std::process::exit(3);
        }
    };
    let opts = SweepOptions { first: 1, count: seeds, parallel, store: None };
    let started = Instant::now();
    let result = match sweep(&prepared, &opts, &|_| {}) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("throughput: {e}");
            std::process::exit(3);
        }
    };
    let secs = started.elapsed().as_secs_f64();
    print!("{}", result.table());
    let events: usize = result.results.iter().map(|r| r.events).sum();
    let runs = result.results.len() as f64;
    println!(
        "{seeds} runs, {:.0} history events per run (about 1,000 client operations), {secs:.1} s on {parallel} thread(s): {:.0} runs per minute",
        events as f64 / runs.max(1.0),
        runs * 60.0 / secs.max(1e-9)
    );
}
