//! The end of every run: read the recorded history back, judge it with the
//! checkers the workload names, write `results.json` and draw
//! `report.html`. `faultline test` finishes through here once the cluster is
//! torn down, and `faultline analyze RUN_DIR` does the same again later, on
//! the same files, also for a run whose harness crashed (its history is a
//! valid prefix). Checkers are found in the registry's one checker table,
//! so a plugin checker is judged, stored and drawn like a built-in one.

use std::path::PathBuf;

use checkers::formats::{self, Format};
use checkers::registry::CheckSpec;
use checkers::{CheckError, History, Verdict};
use results::{CheckResult, RunDir};

use crate::error::Result;
use crate::plugin::Registry;
use crate::spec::TestSpec;

/// A judged run: the history as read back, each checker's verdict, and the
/// merged verdict.
#[derive(Debug)]
pub struct Checked {
    /// The recorded history.
    pub history: History,
    /// Each check the workload asked for, with its verdict.
    pub checks: Vec<(CheckSpec, Verdict)>,
    /// All verdicts merged (invalid beats unknown beats valid; no check at
    /// all is unknown), with the individual verdicts as children.
    pub verdict: Verdict,
}

/// A finished run: its verdicts, and where they were written.
#[derive(Debug)]
pub struct Finished {
    /// The verdicts.
    pub checked: Checked,
    /// `report.html`.
    pub report: PathBuf,
    /// Files the report had to do without, also named in it.
    pub warnings: Vec<String>,
}

/// Checks the history in `run_dir` as the workload of `spec` prescribes.
///
/// A checker that cannot be built for this run (not registered, or given
/// options it refuses) gives an `unknown` verdict with that reason: the
/// run was not judged, and the verdict says so. Every check is bounded by
/// a memory limit (half the machine unless the workload sets one).
pub fn check_run(run_dir: &RunDir, spec: &TestSpec, registry: &Registry) -> Result<Checked> {
    let history = formats::read_path(&run_dir.history_path(), Some(Format::Jsonl))?;
    let interrupted = results::store::interruption(run_dir.path());
    check_history(history, spec, registry, interrupted.as_deref())
}

/// Judges `history` as the workload of `spec` prescribes ([`check_run`]
/// without the files): the deterministic simulation judges every seed in
/// memory this way and writes a run directory only for the ones it keeps.
/// `interrupted` is why the run was cut short, if it was.
pub fn check_history(
    history: History,
    spec: &TestSpec,
    registry: &Registry,
    interrupted: Option<&str>,
) -> Result<Checked> {
    let workload = registry.build_workload(&spec.workload, spec)?;
    let started = std::time::Instant::now();
    let mut checks = Vec::new();
    for mut check in crate::checks::test_checks(spec, workload.as_ref(), registry)? {
        if check.budget.memory.is_none() {
            check.budget.memory = crate::memory::default_limit();
        }
        let verdict = match registry.build_checker(&check) {
            Ok(c) => {
                let began = std::time::Instant::now();
                let mut v = checkers::judge(c.as_ref(), &history)?;
                if v.elapsed.is_zero() {
                    v.elapsed = began.elapsed();
                }
                v
            }
            Err(CheckError::BadOption(why)) => {
                Verdict::unknown(check.checker.clone(), "not checked", why)
            }
            Err(e) => return Err(e.into()),
        };
        checks.push((check, verdict));
    }
    let mut verdict =
        Verdict::merged(spec.workload.clone(), checks.iter().map(|(_, v)| v.clone()).collect());
    verdict.elapsed = started.elapsed();
    // A run cut short proves nothing by finding nothing: what ran was judged,
    // but the test that was asked for did not happen. The same rule as the
    // `validity` of its results.json (`RunResults::mark_interrupted`).
    if let Some(why) = interrupted {
        let validity = results::run_results::interrupted_validity(verdict.validity);
        if validity != verdict.validity {
            verdict.validity = validity;
            verdict.unknown_reason = Some(results::run_results::interrupted_reason(why));
        }
    }
    Ok(Checked { history, checks, verdict })
}

/// Checks the run in `run_dir` ([`check_run`]), then writes its
/// `results.json` and `report.html`.
pub fn finish_run(run_dir: &RunDir, spec: &TestSpec, registry: &Registry) -> Result<Finished> {
    let checked = check_run(run_dir, spec, registry)?;
    let stored: Vec<CheckResult> =
        checked.checks.iter().map(|(s, v)| CheckResult::new(s, v.clone())).collect();
    let written =
        results::finish_run(run_dir.path(), &checked.history, stored, registry.checkers())?;
    Ok(Finished { checked, report: written.report, warnings: written.warnings })
}

/// Records a run the harness could not carry out (a node would not start):
/// `results.json` holds the error and no verdict, and the report shows
/// whatever history was recorded before the failure.
pub fn record_failure(run_dir: &RunDir, error: &str) -> Result<PathBuf> {
    let history = formats::read_path(&run_dir.history_path(), Some(Format::Jsonl)).ok();
    let written = results::record_harness_failure(run_dir.path(), history.as_ref(), error)?;
    Ok(written.report)
}
