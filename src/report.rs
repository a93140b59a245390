//! `faultline report RUN_DIR`: regenerates a run's `report.html` from the
//! files stored in its directory.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::EXIT_BAD_INPUT;

/// Options of `faultline report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The run directory: `store/<test>/<timestamp>`, or a `latest` link.
    run_dir: PathBuf,
}

/// Writes the report and prints its path: exit 0. Files the report had to
/// do without (an unreadable history, say) are printed as warnings and named
/// in the report. A directory that is not a run exits 254.
pub fn run(args: ReportArgs) -> ExitCode {
    match results::regenerate_report(&args.run_dir) {
        Ok(written) => {
            for w in &written.warnings {
                eprintln!("faultline report: warning: {w}");
            }
            println!("{}", written.report.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faultline report: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
