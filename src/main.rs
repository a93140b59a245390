//! The `faultline` command: argument parsing and exit codes, nothing else.
//! Every command is a library function: `harness::cli` for the commands
//! that take plugins (here, the built-in ones), and a file of its own for
//! the two that only the binary has (`generate`, the hidden `refstore`).

mod generate;
mod refstore;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness::cli;

/// faultline: Jepsen-style consistency testing.
#[derive(Parser)]
#[command(name = "faultline", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check recorded histories against a consistency model.
    Check(cli::CheckArgs),
    /// Write a synthetic history (valid by construction, or corrupted).
    Generate(generate::GenerateArgs),
    /// Run a test campaign: a cluster, a workload under faults, a verdict.
    Test(Box<cli::TestArgs>),
    /// Run a matrix of tests, each cell several times, against expectations:
    /// faultline campaign -f campaigns/seed-matrix.toml.
    Campaign(Box<cli::CampaignArgs>),
    /// Check a recorded run again: faultline analyze store/latest.
    Analyze(cli::AnalyzeArgs),
    /// Remove leftovers (processes, namespaces, links) of interrupted runs.
    Clean(cli::CleanArgs),
    /// Run refstore, the reference replicated store (arguments as for `refstore`).
    #[command(hide = true)]
    Refstore(refstore::RefstoreArgs),
    /// Redraw a run's report.html from the files in its directory.
    Report(cli::ReportArgs),
    /// Browse the store of runs in a web browser (127.0.0.1 by default).
    Serve(cli::ServeArgs),
    /// Run refstore's protocol cores in the deterministic simulation, many
    /// seeds at once: faultline sim --mode raft --nemesis partition,kill --seeds 100.
    Sim(Box<sim::cli::SimArgs>),
}

/// Every built-in plugin, registered by name.
fn registry() -> harness::Registry {
    let mut r = harness::Registry::new();
    faultline_refstore::register_all(&mut r);
    etcd_adapter::register_all(&mut r);
    redis_adapter::register_all(&mut r);
    postgres_adapter::register_all(&mut r);
    galera_adapter::register_all(&mut r);
    workloads::register_all(&mut r);
    nemesis::register_all(&mut r);
    r
}

/// The checkers allocate millions of small values (ops, strings, vectors of
/// a transaction's micro-ops) and free most of them together at the end.
/// mimalloc serves that pattern from per-thread pages: the 100k-op
/// cas-register history checks in 0.11-0.13 s against 0.15-0.17 s with the
/// system allocator, and 1M list-append transactions peak ~90 MiB lower
/// (docs/linearizability.md, "How fast"; issue 18). Its v2 branch (the
/// `v2` feature), not v3: on a history that only allocates, v3 took its
/// slow aligned path for most small lists, and v2 checked the 100k-op
/// history in 63 ms against 68 (median of 40, alternating) and 1M
/// list-append transactions with 1.93-2.07 s of CPU against 2.01-2.11 s
/// and 1,414-1,457 MiB at peak against 1,457-1,483 MiB.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    harness::memory::install();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout with success; real
            // argument errors get the bad-input exit code.
            let code = if e.use_stderr() { cli::EXIT_BAD_INPUT } else { cli::EXIT_VALID };
            let _ = e.print();
            return exit(code);
        }
    };
    let code = match cli.command {
        Command::Check(args) => cli::check(&args, &registry()),
        Command::Generate(args) => generate::run(args),
        Command::Refstore(args) => return refstore::run(args),
        Command::Test(args) => cli::test(&args, &registry()),
        Command::Campaign(args) => cli::campaign(&args, &registry()),
        Command::Analyze(args) => cli::analyze(&args, &registry()),
        Command::Clean(args) => cli::clean(&args),
        Command::Report(args) => cli::report(&args, &registry()),
        Command::Serve(args) => cli::serve(&args, &registry()),
        Command::Sim(args) => sim::cli::run(&args, &registry()),
    };
    exit(code)
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
