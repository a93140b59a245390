//! `faultline-plugins`: faultline's `test`, `analyze` and `clean` commands
//! over a registry holding the built-ins plus this crate's plugins. This is
//! how a plugin reaches the command line without forking faultline.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "faultline-plugins", about = "faultline with the example plugins registered")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a test (see `faultline test --help`).
    Test(Box<harness::cli::TestArgs>),
    /// Check a recorded run again.
    Analyze(harness::cli::AnalyzeArgs),
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
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 254 } else { 0 });
        }
    };
    let code = match cli.command {
        // Nodes run `faultline refstore ...`: point --binary at a faultline
        // executable.
        Command::Test(args) => harness::cli::test(&args, &registry()).code,
        Command::Analyze(args) => harness::cli::analyze(&args, &registry()).code,
    };
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
