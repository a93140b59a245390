//! `faultline analyze RUN_DIR`: check a recorded run again (also one whose
//! harness crashed) and rewrite its results and report.

use std::process::ExitCode;

pub use harness::cli::AnalyzeArgs as Args;

/// Runs `faultline analyze`.
pub fn run(args: Args) -> ExitCode {
    let result = harness::cli::analyze(&args, &crate::test::registry());
    let mut code = result.code;
    if let Some((run, checked)) = &result.checked {
        let checks = checked
            .checks
            .iter()
            .map(|(spec, verdict)| results::CheckResult {
                spec: results::CheckerConfig::from(spec),
                verdict: verdict.clone(),
            })
            .collect();
        match results::finish_run(run.path(), &checked.history, checks) {
            Ok(w) => eprintln!("report: {}", w.report.display()),
            Err(e) => {
                eprintln!("faultline analyze: could not write the results: {e}");
                code = code.max(harness::cli::EXIT_HARNESS_FAILED);
            }
        }
    }
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
