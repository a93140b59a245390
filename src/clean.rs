//! `faultline clean`: remove processes, namespaces, links and rules that
//! interrupted or crashed runs left behind.

use std::process::ExitCode;

pub use harness::cli::CleanArgs as Args;

/// Runs `faultline clean`.
pub fn run(args: Args) -> ExitCode {
    ExitCode::from(u8::try_from(harness::cli::clean(&args)).unwrap_or(u8::MAX))
}
