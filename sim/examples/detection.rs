//! Detection power: for each of refstore's injected bugs, how many seeds the
//! simulation needs to find it, how long that takes, and how often it finds
//! it over a sweep; and the same seeds without the bug, which must stay
//! valid. The figures in `docs/simulation.md` come from this.
//!
//! `cargo run --release -p faultline-sim --example detection -- [SEEDS] [PARALLEL] [BUG...]`
//! (defaults: 1,000 seeds, 2 threads, every bug). For each bug it runs
//! seeds 1, 2, ... one at a time until the first invalid run (seeds to
//! first detection, and the wall time that took on one thread), then sweeps
//! seeds 1..=SEEDS on PARALLEL threads with the bug (detection rate) and
//! without it (the control). The machine's load changes the wall times;
//! say what else ran when quoting them.

use std::time::Instant;

use checkers::Validity;
use harness::TestSpec;
use harness::plugin::Registry;
use sim::run::run_seed;
use sim::sweep::{SweepOptions, sweep};
use sim::{Prepared, WorldConfig, prepare};

/// Each bug with the faults that give it a chance (the mode's usual ones:
/// partitions and kills for raft and paxos, primary kills and partitions
/// for sync).
const BUGS: [(&str, &str, &[&str]); 5] = [
    ("ack-before-commit", "raft", &["partition", "kill"]),
    ("vote-ignores-log", "raft", &["partition", "kill"]),
    ("no-truncate", "raft", &["partition", "kill"]),
    ("forget-promises", "paxos", &["partition", "kill"]),
    ("ack-before-backup", "sync", &["partition", "kill"]),
];

/// The test every bug runs under: the throughput example's (5 nodes, 5
/// simulated seconds at 200 operations a second, a fault operation every
/// simulated second), register workload. `no-truncate` needs a deposed
/// leader holding uncommitted entries to lead again, which that schedule
/// never produced in 1,000 seeds: its faults come every 0.3 simulated
/// seconds and aim at the leader (`partition = primaries`,
/// `kill_targets = primaries`).
pub fn spec(mode: &str, nemesis: &[&str], bug: Option<&str>) -> TestSpec {
    let mut spec = base(mode, nemesis);
    if bug == Some("no-truncate") {
        spec.nemesis_interval = 0.3;
        spec.options.insert("partition".into(), "primaries".into());
        spec.options.insert("kill_targets".into(), "primaries".into());
    }
    if let Some(bug) = bug {
        spec.options.insert("bug".into(), bug.into());
    }
    spec
}

fn base(mode: &str, nemesis: &[&str]) -> TestSpec {
    TestSpec {
        mode: mode.into(),
        workload: "register".into(),
        nemesis: nemesis.iter().map(|s| s.to_string()).collect(),
        nodes: 5,
        time_limit: 5.0,
        rate: 200.0,
        nemesis_interval: 1.0,
        op_timeout_ms: 1000,
        recovery: 2.0,
        ..TestSpec::default()
    }
}

/// The control: the bug's own test without the bug.
fn control(bug: &str, mode: &str, nemesis: &[&str]) -> TestSpec {
    let mut spec = spec(mode, nemesis, Some(bug));
    spec.options.remove("bug");
    spec
}

fn prepared(spec: TestSpec, registry: &Registry) -> Prepared {
    prepare(spec, WorldConfig::default(), registry).unwrap_or_else(|e| {
        eprintln!("detection: {e}");
        std::process::exit(3);
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seeds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let parallel: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2);
    let only: Vec<&str> = args.iter().skip(2).map(String::as_str).collect();
    let mut registry = Registry::new();
    faultline_refstore::register_all(&mut registry);
    workloads::register_all(&mut registry);
    nemesis::register_all(&mut registry);
    println!(
        "| bug | mode | faults | first detecting seed | wall time to it (1 thread) | detected in {seeds} seeds | unknown | control (no bug): valid / invalid / unknown | sweep wall time |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (bug, mode, faults) in BUGS {
        if !only.is_empty() && !only.contains(&bug) {
            continue;
        }
        let with = prepared(spec(mode, faults, Some(bug)), &registry);
        let started = Instant::now();
        let mut first = None;
        for seed in 1..=seeds {
            let run = run_seed(&with, seed).unwrap_or_else(|e| {
                eprintln!("detection: seed {seed}: {e}");
                std::process::exit(3);
            });
            if run.checked.verdict.validity == Validity::Invalid {
                first = Some(seed);
                break;
            }
        }
        let to_first = started.elapsed().as_secs_f64();
        let opts = SweepOptions { first: 1, count: seeds, parallel, store: None };
        let started = Instant::now();
        let swept = sweep(&with, &opts, &|_| {}).unwrap_or_else(|e| {
            eprintln!("detection: {e}");
            std::process::exit(3);
        });
        let sweep_s = started.elapsed().as_secs_f64();
        let count = |s: &sim::sweep::Sweep, v| s.results.iter().filter(|r| r.validity == v).count();
        let control = prepared(control(bug, mode, faults), &registry);
        let clean = sweep(&control, &opts, &|_| {}).unwrap_or_else(|e| {
            eprintln!("detection: {e}");
            std::process::exit(3);
        });
        let invalid = count(&swept, Validity::Invalid);
        println!(
            "| `{bug}` | {mode} | {} | {} | {to_first:.2} s | {invalid} ({:.1} %) | {} | {} / {} / {} | {sweep_s:.0} s |",
            faults.join("+"),
            first.map_or_else(|| "none".to_owned(), |s| s.to_string()),
            invalid as f64 * 100.0 / seeds.max(1) as f64,
            count(&swept, Validity::Unknown),
            count(&clean, Validity::Valid),
            count(&clean, Validity::Invalid),
            count(&clean, Validity::Unknown),
        );
        if let Some(r) = swept.first_failure() {
            println!("<!-- {bug}: first failure seed {} ({}) -->", r.seed, r.why);
        }
    }
}
