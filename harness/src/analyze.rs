//! Checking a recorded run: read `history.jsonl` back, build the checkers
//! the workload names, and judge. `faultline test` does this after the run
//! and `faultline analyze RUN_DIR` does it again later, on the same files,
//! also for a run whose harness crashed (the history is a valid prefix).

use checkers::formats::{self, Format};
use checkers::registry::CheckSpec;
use checkers::{CheckError, Checker, History, Validity, Verdict};

use crate::error::Result;
use crate::plugin::Registry;
use crate::rundir::RunDir;
use crate::spec::TestSpec;

/// A judged run: the history as read back, each checker's verdict, and the
/// merged verdict.
#[derive(Debug)]
pub struct Checked {
    /// The recorded history.
    pub history: History,
    /// Each check the workload asked for, with its verdict.
    pub checks: Vec<(CheckSpec, Verdict)>,
    /// All verdicts merged (invalid beats unknown beats valid), with the
    /// individual verdicts as children.
    pub verdict: Verdict,
}

/// Checks the history in `run_dir` as the workload of `spec` prescribes.
///
/// A checker that is not available in this build (not registered, or not
/// yet built into faultline) gives an `unknown` verdict with that reason:
/// the run was not judged, and the verdict says so.
pub fn check_run(run_dir: &RunDir, spec: &TestSpec, registry: &Registry) -> Result<Checked> {
    let history = formats::read_path(&run_dir.history_path(), Some(Format::Jsonl))?;
    let workload = registry.build_workload(&spec.workload, spec)?;
    let started = std::time::Instant::now();
    let mut checks = Vec::new();
    for check in workload.checks(spec) {
        let verdict = match registry.build_checker(&check) {
            Ok(c) => run_one(c.as_ref(), &history)?,
            Err(CheckError::BadOption(why)) => {
                let mut v = Verdict::new(check.checker.clone(), Validity::Unknown, "not checked");
                v.unknown_reason = Some(why);
                v
            }
            Err(e) => return Err(e.into()),
        };
        checks.push((check, verdict));
    }
    let validity = checks.iter().map(|(_, v)| v.validity).max().unwrap_or(Validity::Unknown);
    let summary = checks
        .iter()
        .map(|(_, v)| format!("{} {}", v.checker, v.validity))
        .collect::<Vec<_>>()
        .join(", ");
    let mut verdict = Verdict::new(spec.workload.clone(), validity, summary);
    if checks.is_empty() {
        verdict.unknown_reason = Some(format!("workload {} names no checker", spec.workload));
    } else if validity == Validity::Unknown {
        verdict.unknown_reason = Some("at least one checker could not decide".into());
    }
    verdict.children = checks.iter().map(|(_, v)| v.clone()).collect();
    verdict.elapsed = started.elapsed();
    Ok(Checked { history, checks, verdict })
}

fn run_one(checker: &dyn Checker, history: &History) -> Result<Verdict> {
    let started = std::time::Instant::now();
    let mut v = checker.check(history)?;
    if v.elapsed.is_zero() {
        v.elapsed = started.elapsed();
    }
    Ok(v)
}
