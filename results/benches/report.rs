//! Rendering the report of a 1,000,000-event history, against a baseline
//! measured in the same run: writing the same history as JSONL (what the
//! recorder does anyway). Target: the report renders in under 10 s.
//!
//! `cargo bench -p faultline-results --bench report`

use std::time::Duration;

use checkers::Checker;
use checkers::formats::{Format, write};
use criterion::{Criterion, criterion_group, criterion_main};
use results::{CheckResult, RunResults};

#[path = "../tests/common.rs"]
mod common;

fn bench(c: &mut Criterion) {
    let history = common::with_phantom_read(&common::register_history(1_000_000, 10, 42));
    let check = CheckResult {
        spec: checkers::registry::CheckSpec::new("reads-written"),
        verdict: common::ReadsWritten.check(&history).expect("check"),
    };
    let results = RunResults::new(&history, vec![check]);
    let text = common::spec("million", 42);
    let spec = results::SpecFile {
        spec: results::TestSpec::from_toml(&text, "test.toml").expect("spec"),
        text,
    };
    let table = common::plugins();
    let render = || {
        let input = results::report::ReportInput {
            name: "million",
            timestamp: "20260101T000000Z",
            spec: Some(&spec),
            spec_path: "store/million/20260101T000000Z/test.toml".into(),
            replay: None,
            history: Some(&history),
            results: Some(&results),
            problems: Vec::new(),
            node_logs: &[],
            run_files: Vec::new(),
            checkers: &table,
        };
        results::report::render(&input)
    };
    let html = render();
    let jsonl = write(&history, Format::Jsonl);
    eprintln!(
        "1,000,000-event history: report {:.1} MiB, JSONL {:.1} MiB",
        html.len() as f64 / (1 << 20) as f64,
        jsonl.len() as f64 / (1 << 20) as f64
    );
    let mut g = c.benchmark_group("million-ops");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(40))
        .warm_up_time(Duration::from_secs(3));
    g.bench_function("baseline: history to JSONL", |b| {
        b.iter(|| write(&history, Format::Jsonl).len())
    });
    g.bench_function("report.html", |b| b.iter(|| render().len()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
