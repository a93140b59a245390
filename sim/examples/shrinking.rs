//! Shrink figures: each injected bug's first detecting seed (as the
//! detection example finds it) shrunk, with the operations and faults
//! before and after, the runs tried and the wall time. The figures in
//! `docs/simulation.md` come from this.
//!
//! `cargo run --profile test -p faultline-sim --example shrinking -- [STORE]`
//! (default store: a `store` directory here).

use std::time::Instant;

use clap::Parser;
use harness::plugin::Registry;
use sim::cli::SimArgs;
use sim::shrink::{DEFAULT_RUNS, shrink};

/// `faultline sim`'s arguments.
#[derive(Parser)]
struct Sim {
    #[command(flatten)]
    args: SimArgs,
}

/// Each bug, its mode and its first detecting seed under the detection test.
const SEEDS: [(&str, &str, u64); 5] = [
    ("ack-before-commit", "raft", 13),
    ("vote-ignores-log", "raft", 10),
    ("no-truncate", "raft", 91),
    ("forget-promises", "paxos", 441),
    ("ack-before-backup", "sync", 2),
];

fn main() {
    let store = std::env::args().nth(1).unwrap_or_else(|| "store".into());
    let mut registry = Registry::new();
    faultline_refstore::register_all(&mut registry);
    workloads::register_all(&mut registry);
    nemesis::register_all(&mut registry);
    println!(
        "| bug | seed | anomaly | ops before → after | faults before → after | main phase before → after | runs | wall time |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (bug, mode, seed) in SEEDS {
        let args = Sim::parse_from([
            "sim",
            "--mode",
            mode,
            "--nemesis",
            "partition,kill",
            "--bug",
            bug,
            "--time-limit",
            "5",
            "--rate",
            "200",
            "--store",
            &store,
        ])
        .args;
        // no-truncate's detection schedule: faults every 0.3 s at the leader.
        let args = if bug == "no-truncate" {
            SimArgs {
                nemesis_interval: 0.3,
                options: vec!["partition=primaries".into(), "kill_targets=primaries".into()],
                ..args
            }
        } else {
            SimArgs { nemesis_interval: 1.0, ..args }
        };
        let started = Instant::now();
        match shrink(&args, seed, &registry, DEFAULT_RUNS) {
            Ok(s) => {
                println!(
                    "| `{bug}` | {seed} | {} | {} → {} | {} → {} | {} s → {} s | {} | {:.1} s |",
                    s.anomaly,
                    s.original.ops,
                    s.shrunk.ops,
                    s.original.faults,
                    s.shrunk.faults,
                    s.original.time_limit,
                    s.shrunk.time_limit,
                    s.runs,
                    started.elapsed().as_secs_f64()
                );
                println!("<!-- {} -->", s.command);
            }
            Err(e) => println!("| `{bug}` | {seed} | error: {e} | | | | | |"),
        }
    }
}
