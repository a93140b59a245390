//! `faultline test`: run a test campaign (see `harness::cli::TestArgs`),
//! then hand the verdicts to the results store for `results.json` and the
//! report.

use std::process::ExitCode;

use harness::cli::EXIT_HARNESS_FAILED;

pub use harness::cli::TestArgs as Args;

/// Every built-in plugin, registered by name.
pub fn registry() -> harness::Registry {
    let mut r = harness::Registry::new();
    faultline_refstore::register_all(&mut r);
    workloads::register_all(&mut r);
    nemesis::register_all(&mut r);
    r
}

/// Runs `faultline test`.
pub fn run(args: Args) -> ExitCode {
    let result = harness::cli::test(&args, &registry());
    let mut code = result.code;
    if let Some(outcome) = &result.outcome {
        let checks = outcome
            .checked
            .checks
            .iter()
            .map(|(spec, verdict)| results::CheckResult {
                spec: results::CheckerConfig::from(spec),
                verdict: verdict.clone(),
            })
            .collect();
        match results::finish_run(outcome.run_dir.path(), &outcome.checked.history, checks) {
            Ok(w) => println!("report: {}", w.report.display()),
            Err(e) => {
                eprintln!("faultline test: could not write the results: {e}");
                code = code.max(EXIT_HARNESS_FAILED);
            }
        }
    } else if let Some((dir, error)) = &result.failure {
        let history = checkers::formats::read_path(&dir.join("history.jsonl"), None).ok();
        if let Err(e) = results::record_harness_failure(dir, history.as_ref(), error) {
            eprintln!("faultline test: could not record the failure: {e}");
        }
    }
    ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX))
}
