//! Writes (and optionally checks) a generated list-append or rw-register
//! history: the benchmark generator for the Elle-style checker.
//!
//! ```sh
//! cargo run --release -p faultline-checkers --example elle_gen -- \
//!     --in history.jsonl --check serializable         # read a file and check it
//! cargo run --release -p faultline-checkers --example elle_gen -- \
//!     --txns 1000000 --out history.jsonl            # write it
//! cargo run --release -p faultline-checkers --example elle_gen -- \
//!     --txns 1000000 --check strict-serializable     # generate and check in memory
//! ```
//!
//! Defaults follow the benchmark in issue 3: 1 to 5 micro-ops per
//! transaction, 100 keys in use (each retired after 32 appends), 20
//! processes, and one stale read in every 10,000 transactions as the
//! injected anomaly rate. `--check` prints the time of each phase and the
//! process's peak resident memory (VmHWM), which includes the history.

use std::time::Instant;

use checkers::Checker;
use checkers::elle::generate::{GenOptions, Isolation, generate};
use checkers::elle::{Elle, ElleOptions, Workload};
use checkers::formats::{self, Format};

fn usage() -> ! {
    eprintln!(
        "usage: elle_gen [--txns N] [--seed S] [--keys K] [--processes P] [--max-writes W]\n\
         \x20               [--stale-rate R] [--fail-rate R] [--info-rate R] [--register] [--si]\n\
         \x20               [--in FILE | --out FILE [--format jsonl|edn|elle-json]] [--check MODELS]"
    );
    std::process::exit(2);
}

#[path = "../benches/support/mod.rs"]
mod support;

fn main() {
    let mut o = GenOptions { stale_read_rate: 1e-4, ..GenOptions::default() };
    let mut out: Option<String> = None;
    let mut format = Format::Jsonl;
    let mut check: Option<String> = None;
    let mut input: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        let num = |s: String| s.parse::<f64>().unwrap_or_else(|_| usage());
        match a.as_str() {
            "--txns" => o.txns = num(val()) as usize,
            "--seed" => o.seed = num(val()) as u64,
            "--keys" => o.active_keys = num(val()) as usize,
            "--processes" => o.processes = num(val()) as usize,
            "--max-writes" => o.max_writes_per_key = num(val()) as usize,
            "--stale-rate" => o.stale_read_rate = num(val()),
            "--fail-rate" => o.fail_rate = num(val()),
            "--info-rate" => o.info_rate = num(val()),
            "--register" => o.workload = Workload::RwRegister,
            "--si" => o.isolation = Isolation::SnapshotIsolation,
            "--out" => out = Some(val()),
            "--format" => {
                format = val().parse().unwrap_or_else(|e: String| {
                    eprintln!("{e}");
                    usage()
                })
            }
            "--check" => check = Some(val()),
            "--in" => input = Some(val()),
            _ => usage(),
        }
    }
    let t = Instant::now();
    let history = match &input {
        Some(path) => match formats::read_path(std::path::Path::new(path), None) {
            Ok(h) => {
                o.txns = h.len() / 2;
                eprintln!("read {path}: {} ops in {:.2} s", h.len(), t.elapsed().as_secs_f64());
                h
            }
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        },
        None => {
            eprintln!("seed {} ({} transactions)", o.seed, o.txns);
            let h = generate(&o);
            eprintln!("generated {} ops in {:.2} s", h.len(), t.elapsed().as_secs_f64());
            h
        }
    };
    if let Some(path) = &out {
        let t = Instant::now();
        if let Err(e) = std::fs::write(path, formats::write(&history, format)) {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
        eprintln!("wrote {path} ({format}) in {:.2} s", t.elapsed().as_secs_f64());
    }
    if let Some(models) = check {
        let opts = ElleOptions {
            consistency_models: models.split(',').map(str::to_owned).collect(),
            ..ElleOptions::default()
        };
        let checker = Elle::new(o.workload, opts);
        let t = Instant::now();
        let pairs = history.pairs().map(|p| p.len()).unwrap_or(0);
        eprintln!(
            "baseline: History::pairs() paired {pairs} operations in {:.3} s",
            t.elapsed().as_secs_f64()
        );
        // The high-water mark so far is what building the history cost
        // (the file's text and the parsed history, when reading a file);
        // the check is then measured from a reset mark.
        let load_peak = support::rss_kib().map_or(f64::NAN, |(_, hwm)| hwm as f64 / 1024.0);
        let t = Instant::now();
        let cpu_before = support::cpu_seconds();
        let (verdict, memory) = support::peak_memory(|| match checker.check(&history) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        });
        let secs = t.elapsed().as_secs_f64();
        let cpu = support::cpu_seconds().zip(cpu_before).map_or(f64::NAN, |(a, b)| a - b);
        println!("{}", verdict.summary);
        println!(
            "checked {} transactions in {:.3} s ({:.0} txns/s, {:.2} s of CPU)",
            o.txns,
            secs,
            o.txns as f64 / secs,
            cpu,
        );
        match memory {
            Some(m) => println!(
                "memory: building the history peaked at {load_peak:.0} MiB; the check: {m}; \
                 whole run: {:.0} MiB",
                load_peak.max(m.peak_mib)
            ),
            None => println!("memory: not measurable here (needs Linux /proc)"),
        }
        println!("phases (ms): {}", verdict.details["timings_ms"]);
        println!("graph: {}", verdict.details["graph"]);
    }
}
