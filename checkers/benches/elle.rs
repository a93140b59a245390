//! Throughput of the Elle-style list-append checker on generated histories
//! of 10,000, 100,000 and 1,000,000 transactions (issue 3's benchmark).
//!
//! Histories come from `elle::generate` with its defaults: 1 to 5
//! micro-ops per transaction, 100 keys in use (each retired after 32
//! appends), 20 processes, and a stale read in one transaction in 10,000
//! as the injected anomaly rate; seed 0. Each size is checked against
//! strict-serializable (real-time edges included).
//!
//! The named baseline, measured in the same run on the same history, is
//! `History::pairs()`: pairing invocations with completions, the least any
//! checker must do. The report's ratio is check time over pairing time.
//! Elle's published figure (100,000 to 160,000 transactions per second on
//! large many-core machines) is the outside reference; criterion reports
//! transactions per second as the throughput.
//!
//! Before timing each size, one check is run outside criterion with the
//! process's resident high-water mark reset, and its peak memory is printed
//! next to what the history itself holds (the 2 GiB target).
//!
//! `FAULTLINE_ELLE_BENCH_SIZES=10000,100000` limits the sizes.

use std::time::Duration;

use checkers::Checker;
use checkers::elle::generate::{GenOptions, generate};
use checkers::elle::{Elle, ElleOptions, Workload};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

mod support;

fn sizes() -> Vec<usize> {
    match std::env::var("FAULTLINE_ELLE_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![10_000, 100_000, 1_000_000],
    }
}

fn list_append(c: &mut Criterion) {
    let checker = Elle::new(Workload::ListAppend, ElleOptions::default());
    let mut group = c.benchmark_group("elle-list-append");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    for n in sizes() {
        let history =
            generate(&GenOptions { txns: n, stale_read_rate: 1e-4, ..GenOptions::default() });
        // The verdict is part of the benchmark's meaning: a generator or
        // checker change that stops finding the injected anomalies would
        // make the timing meaningless.
        let (verdict, memory) = support::peak_memory(|| checker.check(&history).expect("check"));
        eprintln!("{n} transactions: {}", verdict.summary);
        match memory {
            Some(m) => eprintln!("{n} transactions, one check: {m}"),
            None => eprintln!("{n} transactions: peak memory not measurable here (needs /proc)"),
        }
        group.throughput(Throughput::Elements(n as u64));
        group.measurement_time(Duration::from_secs(if n >= 1_000_000 { 60 } else { 10 }));
        group.bench_with_input(BenchmarkId::new("baseline-pairs", n), &history, |b, h| {
            b.iter(|| h.pairs().expect("pairs").len())
        });
        group.bench_with_input(
            BenchmarkId::new("check-strict-serializable", n),
            &history,
            |b, h| b.iter(|| checker.check(h).expect("check").validity),
        );
    }
    group.finish();
}

criterion_group!(benches, list_append);
criterion_main!(benches);
