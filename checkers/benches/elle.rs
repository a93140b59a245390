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
//! A second group, `elle-list-append-edn`, starts from the same history
//! written as Jepsen's EDN, one op map per line, as `faultline check` gets
//! it: `read-edn-then-check` reads it into the history and checks that
//! (the way before issue 18's text path), `check-from-text` reads the
//! transactions straight from the text (`Checker::check_text`). The first
//! is the baseline: the ratio is the time a user of Jepsen's files saves.
//! Freeing what each made is not timed: `faultline check` never frees it.
//!
//! `FAULTLINE_ELLE_BENCH_SIZES=10000,100000` limits the sizes.

use std::time::Duration;

use checkers::elle::generate::{GenOptions, generate};
use checkers::elle::{Elle, ElleOptions, Workload};
use checkers::formats::{self, Format};
use checkers::{Checker, FromText, Verdict};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

mod support;

/// The faultline binary's allocator, as in the `formats` and `linear`
/// benches, so that the times are what `faultline check` gets.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// The verdict `checker` decides from `text`; the text is in the shape the
/// text path reads, so anything else is a failure of the benchmark.
fn from_text(checker: &Elle, text: &str) -> Verdict {
    match checker.check_text(&mut text.as_bytes(), "bench.edn") {
        FromText::Decided(v) => v,
        other => panic!("not decided from the text: {other:?}"),
    }
}

fn list_append_edn(c: &mut Criterion) {
    let checker = Elle::new(Workload::ListAppend, ElleOptions::default());
    let mut group = c.benchmark_group("elle-list-append-edn");
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    for n in sizes() {
        let history =
            generate(&GenOptions { txns: n, stale_read_rate: 1e-4, ..GenOptions::default() });
        let text = formats::write(&history, Format::Edn);
        let read = |t: &str| formats::parse(t, "bench.edn", Some(Format::Edn)).expect("read");
        let whole = checker.check(&read(&text)).expect("check");
        assert_eq!(from_text(&checker, &text).summary, whole.summary, "the two ways agree");
        group.throughput(Throughput::Elements(n as u64));
        group.measurement_time(Duration::from_secs(if n >= 1_000_000 { 60 } else { 10 }));
        group.bench_with_input(BenchmarkId::new("read-edn-then-check", n), &text, |b, t| {
            b.iter_with_large_drop(|| {
                let h = read(t);
                let v = checker.check(&h).expect("check");
                (h, v)
            })
        });
        group.bench_with_input(BenchmarkId::new("check-from-text", n), &text, |b, t| {
            b.iter_with_large_drop(|| from_text(&checker, t))
        });
    }
    group.finish();
}

criterion_group!(benches, list_append, list_append_edn);
criterion_main!(benches);
