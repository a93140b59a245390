//! `faultline generate`: write a synthetic history, linearizable by
//! construction, optionally with one read corrupted so that it is not.
//! Useful to try checkers and to reproduce benchmark inputs.

use std::path::PathBuf;

use anyhow::Context;
use checkers::formats::{self, Format};
use checkers::linear::ModelName;
use checkers::synth::{self, SynthSpec};
use clap::{Args, ValueEnum};

use harness::cli::{EXIT_BAD_INPUT, EXIT_VALID};

/// How to corrupt the generated history.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Corrupt {
    /// Leave it linearizable.
    None,
    /// One late read returns a value overwritten before it began (registers).
    StaleRead,
    /// One late read returns a value no operation produced.
    ImpossibleRead,
}

/// Options of `faultline generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The model: register, cas-register, multi-register, mutex, set,
    /// unordered-queue, fifo-queue, kv.
    #[arg(long, short = 'm', default_value = "cas-register")]
    model: ModelName,
    /// Operations to generate.
    #[arg(long, default_value_t = 1000)]
    ops: usize,
    /// Concurrent client threads.
    #[arg(long, default_value_t = 5)]
    processes: usize,
    /// Independent keys (registers and kv).
    #[arg(long, default_value_t = 1)]
    keys: usize,
    /// Fraction of operations that crash (complete as info).
    #[arg(long, default_value_t = 0.0)]
    crash_rate: f64,
    /// Draw written values from 0..N instead of unique values.
    #[arg(long, value_name = "N")]
    value_range: Option<i64>,
    /// Corrupt one read near the end.
    #[arg(long, value_enum, default_value = "none")]
    corrupt: Corrupt,
    /// PRNG seed; the same seed gives the same history.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output format.
    #[arg(long, short = 'f', default_value = "jsonl")]
    format: Format,
    /// Output file (stdout when left out).
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
}

/// Runs `faultline generate`.
pub fn run(args: GenerateArgs) -> i32 {
    match run_inner(&args) {
        Ok(()) => EXIT_VALID,
        Err(e) => {
            eprintln!("faultline generate: {e:#}");
            EXIT_BAD_INPUT
        }
    }
}

fn run_inner(args: &GenerateArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.crash_rate) {
        anyhow::bail!("--crash-rate {}: expected a fraction between 0 and 1", args.crash_rate);
    }
    let mut spec = SynthSpec::new(args.model, args.seed);
    spec.ops = args.ops;
    spec.processes = args.processes;
    spec.keys = args.keys;
    spec.crash_rate = args.crash_rate;
    spec.value_range = args.value_range;
    let history = synth::generate(&spec);
    // Corrupt a read in the last 5% of the history: late, so a checker must
    // get through nearly all of it first.
    let late = history.ops().last().map_or(0, |o| o.index - o.index / 20);
    let history = match args.corrupt {
        Corrupt::None => history,
        Corrupt::StaleRead => {
            let c = synth::stale_read(&history, late).context(
                "no read in this history can be made provably stale; try another seed or more ops",
            )?;
            eprintln!("faultline generate: {}", c.description);
            c.history
        }
        Corrupt::ImpossibleRead => {
            let c = synth::impossible_read(&history, args.model, late)
                .context("this history has no read to corrupt; try another seed or more ops")?;
            eprintln!("faultline generate: {}", c.description);
            c.history
        }
    };
    eprintln!("faultline generate: seed {}", args.seed);
    let text = formats::write(&history, args.format);
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(())
}
