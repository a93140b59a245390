//! `faultline-plugins`: faultline's whole command line (`test`, `campaign`, `analyze`,
//! `check`, `report`, `serve`, `clean`) over a registry holding the
//! built-ins plus this crate's plugins. This is how a plugin reaches the
//! command line without forking faultline. It also runs the reference
//! store's nodes (`faultline-plugins refstore ...`, hidden), so a local
//! test needs no other binary.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness::cli;

#[derive(Parser)]
#[command(name = "faultline-plugins", about = "faultline with the example plugins registered")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a test (see `faultline test --help`).
    Test(Box<cli::TestArgs>),
    /// Check a recorded run again.
    Analyze(cli::AnalyzeArgs),
    /// Run a matrix of tests against expectations.
    Campaign(Box<cli::CampaignArgs>),
    /// Check history files with a checker, built-in or from this crate.
    Check(cli::CheckArgs),
    /// Redraw a run's report.html.
    Report(cli::ReportArgs),
    /// Browse the store of runs.
    Serve(cli::ServeArgs),
    /// Remove leftovers of interrupted runs.
    Clean(cli::CleanArgs),
    /// Run a refstore node (the nodes of a local test run this).
    #[command(hide = true)]
    Refstore {
        /// refstore's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn registry() -> harness::Registry {
    let mut r = harness::Registry::new();
    faultline_refstore::register_all(&mut r);
    workloads::register_all(&mut r);
    nemesis::register_all(&mut r);
    example_plugin::register(&mut r);
    r
}

fn main() -> ExitCode {
    // Memory limits hold the whole process, as in faultline itself.
    harness::memory::install();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            let code = if e.use_stderr() { cli::EXIT_BAD_INPUT } else { cli::EXIT_VALID };
            return ExitCode::from(code as u8);
        }
    };
    let code = match cli.command {
        Command::Test(args) => cli::test(&args, &registry()),
        Command::Analyze(args) => cli::analyze(&args, &registry()),
        Command::Campaign(args) => cli::campaign(&args, &registry()),
        Command::Check(args) => cli::check(&args, &registry()),
        Command::Report(args) => cli::report(&args, &registry()),
        Command::Serve(args) => cli::serve(&args, &registry()),
        Command::Clean(args) => cli::clean(&args),
        Command::Refstore { args } => return refstore::main_from_args(args),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
