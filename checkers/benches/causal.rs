//! Causal checking of 100,000 operations by 20 processes on 1,000 keys.
//!
//! The baseline is `History::pairs` on the same history: the one linear pass
//! every checker makes. Each model's time is reported against it, and the
//! peak memory of one check is printed (Linux: the process's resident high
//! water mark, reset just before the check, minus the resident size then).
//!
//! `cargo bench -p faultline-checkers --bench causal`

use std::hint::black_box;
use std::time::Duration;

use checkers::Checker;
use checkers::causal::{CausalChecker, Model};
use checkers::sim::{Arbitration, SimConfig, simulate};
use criterion::{Criterion, criterion_group, criterion_main};

mod support;

const SEED: u64 = 20_170_101;

fn history(arbitration: Arbitration) -> checkers::History {
    let cfg = SimConfig {
        replicas: 5,
        processes: 20,
        keys: 1_000,
        ops: 100_000,
        write_percent: 40,
        delivery_percent: 40,
        info_permille: 2,
        arbitration,
        fault: None,
        initial: checkers::Value::Nil,
    };
    simulate(&cfg, SEED).history
}

fn report_peak_memory(name: &str, checker: &CausalChecker, h: &checkers::History) {
    let (verdict, memory) = support::peak_memory(|| checker.check(h).expect("check"));
    match memory {
        Some(m) => eprintln!("{name}: {} — one check: {m}", verdict.validity),
        None => eprintln!(
            "{name}: {} — peak memory not measurable here (needs Linux /proc)",
            verdict.validity
        ),
    }
}

fn bench(c: &mut Criterion) {
    let delivery = history(Arbitration::DeliveryOrder);
    let lww = history(Arbitration::LastWriterWins);
    let ops = delivery.pairs().expect("pairs").len();
    eprintln!(
        "history: {ops} operations ({} events), 20 processes, 1000 keys, seed {SEED}",
        delivery.len()
    );
    let mut g = c.benchmark_group("causal-100k");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));
    g.bench_function("baseline: History::pairs", |b| {
        b.iter(|| black_box(delivery.pairs().expect("pairs").len()))
    });
    for (model, h) in
        [(Model::Causal, &delivery), (Model::Convergent, &lww), (Model::Memory, &delivery)]
    {
        let checker = CausalChecker::new(model);
        report_peak_memory(model.name(), &checker, h);
        g.bench_function(model.name(), |b| {
            b.iter(|| black_box(checker.check(h).expect("check").validity))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
