//! faultline's results: the on-disk store of runs, the versioned
//! `results.json`, self-contained HTML reports, and the web view behind
//! `faultline serve`.
//!
//! **Architecture invariant:** this crate depends on `checkers` and on no
//! other workspace crate. It owns the store's files: the run-directory
//! layout ([`store::files`], [`rundir::RunDir`]), the test spec written as
//! `test.toml` ([`spec::TestSpec`]), `results.json` and `report.html`. The
//! harness writes and reads runs through these types; nothing here sees a
//! harness type.
//!
//! The harness calls [`finish_run`] once it has its verdicts,
//! [`record_harness_failure`] when it could not carry a run out, and
//! [`regenerate_report`] for `faultline report RUN_DIR`; the binary calls
//! [`serve::run_server`] for `faultline serve`. Reports draw each verdict's
//! evidence with the checker that gave it, looked up in the caller's
//! [`CheckerTable`], so a plugin checker draws its own pages.

pub mod campaign;
pub mod error;
pub mod intervals;
pub mod report;
pub mod run_results;
pub mod rundir;
pub mod serve;
pub mod spec;
pub mod store;

use std::path::{Path, PathBuf};

use checkers::History;
use checkers::registry::CheckerTable;

pub use error::StoreError;
pub use run_results::{CheckResult, RESULTS_VERSION, RunResults};
pub use rundir::RunDir;
pub use spec::{DEFAULT_NEMESIS, RuntimeKind, SpecFile, SshSpec, TestSpec};
pub use store::{Run, RunSummary, Store};

/// What [`finish_run`] and [`regenerate_report`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    /// `results.json` (when it was written by this call).
    pub results: Option<PathBuf>,
    /// `report.html`.
    pub report: PathBuf,
    /// Things the report had to do without (unreadable files), also shown in it.
    pub warnings: Vec<String>,
}

/// Records the verdicts of a finished run: writes `results.json` and then
/// `report.html` into `run_dir`. `history` is the run's history as the
/// harness holds it in memory (it is not read again from disk); `table`
/// holds the checkers that drew the verdicts.
pub fn finish_run(
    run_dir: &Path,
    history: &History,
    checks: Vec<CheckResult>,
    table: &CheckerTable,
) -> Result<Written, StoreError> {
    let mut results = RunResults::new(history, checks);
    if let Some(why) = store::interruption(run_dir) {
        results.mark_interrupted(&why);
    }
    write_run(run_dir, Some(history), results, table)
}

/// Records a run the harness could not carry out (a node would not start):
/// `results.json` holds the error and no verdict, and the report shows it
/// with whatever history was recorded before the failure.
pub fn record_harness_failure(
    run_dir: &Path,
    history: Option<&History>,
    error: &str,
) -> Result<Written, StoreError> {
    let mut results = match history {
        Some(h) => RunResults::new(h, Vec::new()),
        None => RunResults::with_summary(Default::default(), Vec::new()),
    };
    results.harness_error = Some(error.to_owned());
    write_run(run_dir, history, results, &CheckerTable::builtin())
}

fn write_run(
    run_dir: &Path,
    history: Option<&History>,
    results: RunResults,
    table: &CheckerTable,
) -> Result<Written, StoreError> {
    let results_path = store::write_results(run_dir, &results)?;
    let mut warnings = Vec::new();
    let spec = match SpecFile::read(&run_dir.join(store::files::SPEC)) {
        Ok(s) => s,
        Err(e) => {
            warnings.push(e.to_string());
            None
        }
    };
    let html = render_dir(run_dir, spec.as_ref(), history, Some(&results), &warnings, table);
    let report = run_dir.join(store::files::REPORT);
    store::write_atomic(&report, html.as_bytes())?;
    Ok(Written { results: Some(results_path), report, warnings })
}

/// `faultline report RUN_DIR`: regenerates `report.html` from the files in
/// the run directory, drawing evidence with the checkers of `table`. A
/// file that cannot be read is named in the report and in
/// `Written::warnings`; the report is written all the same.
pub fn regenerate_report(run_dir: &Path, table: &CheckerTable) -> Result<Written, StoreError> {
    let (html, warnings, dir) = render_run_dir(run_dir, table)?;
    let report = dir.join(store::files::REPORT);
    store::write_atomic(&report, html.as_bytes())?;
    Ok(Written { results: None, report, warnings })
}

/// Renders the report of the run in `run_dir` without writing it.
/// Returns the page, the warnings, and the resolved run directory.
pub fn render_run_dir(
    run_dir: &Path,
    table: &CheckerTable,
) -> Result<(String, Vec<String>, PathBuf), StoreError> {
    let dir = run_dir
        .canonicalize()
        .map_err(|e| StoreError::Io { path: run_dir.to_owned(), source: e })?;
    if !store::looks_like_run(&dir) {
        return Err(StoreError::NotARun {
            path: dir,
            reason: "it has no test.toml, history.jsonl or results.json".into(),
        });
    }
    let mut warnings = Vec::new();
    let spec = match SpecFile::read(&dir.join(store::files::SPEC)) {
        Ok(s) => s,
        Err(e) => {
            warnings.push(e.to_string());
            None
        }
    };
    let results = match RunResults::read(&dir.join(store::files::RESULTS)) {
        Ok(r) => r,
        Err(e) => {
            warnings.push(e.to_string());
            None
        }
    };
    let history_path = dir.join(store::files::HISTORY);
    let history = if history_path.is_file() {
        match checkers::formats::read_path(&history_path, Some(checkers::formats::Format::Jsonl)) {
            Ok(h) => Some(h),
            Err(e) => {
                warnings.push(e.to_string());
                None
            }
        }
    } else {
        warnings
            .push(format!("{}: no such file; the run recorded no history", history_path.display()));
        None
    };
    let html =
        render_dir(&dir, spec.as_ref(), history.as_ref(), results.as_ref(), &warnings, table);
    Ok((html, warnings, dir))
}

fn render_dir(
    dir: &Path,
    spec: Option<&SpecFile>,
    history: Option<&History>,
    results: Option<&RunResults>,
    warnings: &[String],
    table: &CheckerTable,
) -> String {
    let node_logs = store::node_logs(dir);
    let dir_name = |p: Option<&Path>| {
        p.and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    };
    // Names come from the real folder, also when `dir` is `.` or a link.
    let real = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let timestamp = dir_name(Some(&real));
    let name = dir_name(real.parent());
    let mut run_files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let keep = n != store::files::REPORT && !n.ends_with(".tmp");
                    keep.then(|| (n, e.metadata().map(|m| m.len()).unwrap_or(0)))
                })
                .collect()
        })
        .unwrap_or_default();
    run_files.sort();
    let input = report::ReportInput {
        name: &name,
        timestamp: &timestamp,
        spec,
        spec_path: dir.join(store::files::SPEC).display().to_string(),
        replay: store::replay_command(dir),
        history,
        results,
        problems: warnings.to_vec(),
        node_logs: &node_logs,
        run_files,
        checkers: table,
    };
    report::render(&input)
}
