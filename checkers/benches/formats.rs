//! Reading histories: Jepsen EDN beside our JSONL, the same history in both,
//! measured in the same run so the ratio is the figure to report (issue 18:
//! EDN within 1.5x of JSONL).
//!
//! Histories are `faultline generate`'s (`synth`): cas-register over 10
//! keys, 20 processes, 1% crashed, 100,000 and 1,000,000 ops (twice as many
//! events), written as EDN one op map per line as Jepsen writes them; and
//! Elle's list-append transactions (`[[:append 1 2] [:r 3 [1 2]]]`). For
//! each, `jsonl` is our JSONL reader, `edn` the EDN reader as `faultline
//! check` runs it (the fast reader, `formats/edn_fast.rs`), `edn-one-thread`
//! the same on one thread (issue 18 asks for lines a second per core), and
//! `edn-general` the general reader it falls back to (the scan of
//! `edn_text.rs` and edn-format), which was the only reader before.
//! Criterion reports events (lines) per second as the throughput.
//!
//! Freeing the history read is not timed (`iter_with_large_drop`):
//! `faultline check` never frees it, since the process ends once the
//! verdict is out, and for list-append the free is a fifth of the time the
//! read takes (millions of small vectors).
//!
//! `FAULTLINE_FORMATS_BENCH_SIZES=100000` limits the sizes.
//!
//! Run: `cargo bench -p faultline-checkers --bench formats`

use std::time::Duration;

use checkers::History;
use checkers::elle::generate::{GenOptions, generate};
use checkers::formats::{self, Format};
use checkers::linear::ModelName;
use checkers::synth::{self, SynthSpec};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// The faultline binary's allocator, as in the `linear` bench, so that a
/// reader's speed is what `faultline check` gets: a list-append history is
/// millions of small vectors, and with the system allocator a third of the
/// time went to malloc and free (`malloc_consolidate` alone 9 %).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn sizes() -> Vec<usize> {
    match std::env::var("FAULTLINE_FORMATS_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|n| n.trim().parse().ok()).collect(),
        Err(_) => vec![100_000, 1_000_000],
    }
}

fn register(ops: usize) -> History {
    let mut s = SynthSpec::new(ModelName::CasRegister, 1);
    s.ops = ops;
    s.keys = 10;
    s.processes = 20;
    s.crash_rate = 0.01;
    synth::generate(&s)
}

/// Benchmarks the three readers on `history` written both ways, after
/// checking they read the same ops.
fn readers(c: &mut Criterion, name: &str, history: &History, n: usize) {
    let jsonl = formats::write(history, Format::Jsonl);
    let edn = formats::write(history, Format::Edn);
    let read = |text: &str, format| match formats::parse(text, "h", Some(format)) {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    };
    let general = |text: &str| match formats::parse_edn_general(text, "h") {
        Ok(h) => h,
        Err(e) => panic!("{e}"),
    };
    // JSON has no keywords, so only the EDN readers must agree op for op;
    // the JSONL history must have as many.
    assert!(read(&edn, Format::Edn).ops() == general(&edn).ops(), "the EDN readers agree");
    assert_eq!(read(&jsonl, Format::Jsonl).len(), history.len());
    eprintln!(
        "{name} {n}: {} events, EDN {:.1} MB, JSONL {:.1} MB",
        history.len(),
        edn.len() as f64 / 1e6,
        jsonl.len() as f64 / 1e6
    );
    let mut group = c.benchmark_group(name);
    group.sample_size(10).warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(if n >= 1_000_000 { 30 } else { 8 }));
    group.throughput(Throughput::Elements(history.len() as u64));
    group.bench_with_input(BenchmarkId::new("jsonl", n), &jsonl, |b, t| {
        b.iter_with_large_drop(|| read(t, Format::Jsonl))
    });
    group.bench_with_input(BenchmarkId::new("edn", n), &edn, |b, t| {
        b.iter_with_large_drop(|| read(t, Format::Edn))
    });
    // Per core, measured rather than divided: two threads share the
    // kernel's page faults and the memory bus, so the two-core figure over
    // two understates one core.
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("a pool");
    group.bench_with_input(BenchmarkId::new("edn-one-thread", n), &edn, |b, t| {
        b.iter_with_large_drop(|| one_thread.install(|| read(t, Format::Edn)))
    });
    group.bench_with_input(BenchmarkId::new("edn-general", n), &edn, |b, t| {
        b.iter_with_large_drop(|| general(t))
    });
    group.finish();
}

fn read_registers(c: &mut Criterion) {
    for n in sizes() {
        readers(c, "read-cas-register", &register(n), n);
    }
}

fn read_list_append(c: &mut Criterion) {
    for n in sizes() {
        let history = generate(&GenOptions { txns: n, ..GenOptions::default() });
        readers(c, "read-list-append", &history, n);
    }
}

criterion_group!(benches, read_registers, read_list_append);
criterion_main!(benches);
