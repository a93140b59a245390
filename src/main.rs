//! The `faultline` command: argument parsing and exit codes, nothing else.
//! Every subcommand lives in its own file and calls into the library crates.

mod analyze;
mod check;
mod clean;
mod generate;
mod refstore;
mod report;
mod serve;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for bad arguments or unreadable input, as Jepsen users expect.
pub const EXIT_BAD_INPUT: u8 = 254;

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
    Check(check::CheckArgs),
    /// Write a synthetic history (valid by construction, or corrupted).
    Generate(generate::GenerateArgs),
    /// Run a test campaign: a cluster, a workload under faults, a verdict.
    Test(Box<test::Args>),
    /// Check a recorded run again: faultline analyze store/latest.
    Analyze(analyze::Args),
    /// Remove leftovers (processes, namespaces, links) of interrupted runs.
    Clean(clean::Args),
    /// Run refstore, the reference replicated store (arguments as for `refstore`).
    #[command(hide = true)]
    Refstore(refstore::RefstoreArgs),
    /// Redraw a run's report.html from the files in its directory.
    Report(report::ReportArgs),
    /// Browse the store of runs in a web browser (127.0.0.1 by default).
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help and version to stdout with success; real
            // argument errors get the bad-input exit code.
            let code = if e.use_stderr() { EXIT_BAD_INPUT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Refstore(args) => refstore::run(args),
        Command::Test(args) => test::run(*args),
        Command::Analyze(args) => analyze::run(args),
        Command::Clean(args) => clean::run(args),
        Command::Report(args) => report::run(args),
        Command::Serve(args) => serve::run(args),
    }
}
