//! A campaign's matrix in the simulation: every cell of a campaign file
//! (its test, its expectation) run over many seeds and judged by the same
//! rules as `faultline campaign` (a strong cell's false alarm or undecided
//! run breaks it; an expected-invalid cell must reach its detection rate),
//! so the seed matrix's expectations can be checked over thousands of
//! schedules per cell instead of five real runs. Cells whose faults or
//! options the simulation does not simulate are listed as such, not run.

use std::path::{Path, PathBuf};

use harness::campaign::{CampaignFile, Cell};
use harness::plugin::Registry;
use results::campaign::{CellStatus, Expected, RunOutcome, RunRecord, RunState};

use crate::cli::shell_word;
use crate::run::Replay;
use crate::sweep::{keep, map_seeds};
use crate::{SimError, WorldConfig, prepare, run_seed};

/// How to run the matrix.
#[derive(Clone, Debug)]
pub struct MatrixOptions {
    /// The first seed of every cell (the cells share their seeds, so a
    /// seed names one schedule of each cell's test).
    pub first: u64,
    /// Seeds per cell.
    pub count: u64,
    /// Threads running seeds at once.
    pub parallel: usize,
    /// Where to write the first unexpected run of each cell; `None` keeps none.
    pub store: Option<PathBuf>,
    /// The command that runs one seed of the file, which a kept run
    /// records with its cell's `--only`s and seed; `None` records none.
    pub replay: Option<Replay>,
}

/// One cell's result.
#[derive(Debug)]
pub struct CellResult {
    /// `mode=async nemesis=kill`.
    pub id: String,
    /// What the cell expects, in one line.
    pub expected: String,
    /// The cell's runs, figures, status and reasons, as a campaign keeps
    /// them; `None` when the cell was not simulated.
    pub summary: Option<results::campaign::CellSummary>,
    /// Why the cell was not simulated.
    pub not_simulated: Option<String>,
    /// The first seed whose run did not go as expected, and how it went.
    pub first_unexpected: Option<(u64, RunOutcome)>,
    /// The run directory written for it.
    pub kept: Option<PathBuf>,
}

impl CellResult {
    /// Met, broken, or not simulated.
    pub fn status(&self) -> &'static str {
        match (&self.summary, &self.not_simulated) {
            (_, Some(_)) => "not simulated",
            (Some(s), None) if s.status == CellStatus::Met => "met",
            (Some(s), None) if s.status == CellStatus::Broken => "broken",
            _ => "pending",
        }
    }
}

/// Runs every cell of `file` (read from `source`) over the seeds of `opts`
/// in a world built from `world`, calling `progress` after each cell.
pub fn run_matrix(
    file: &CampaignFile,
    source: &str,
    world: &WorldConfig,
    registry: &Registry,
    opts: &MatrixOptions,
    progress: &dyn Fn(&CellResult),
) -> Result<Vec<CellResult>, SimError> {
    let mut out = Vec::new();
    for cell in file.cells(source)? {
        let result = run_cell(&cell, world, registry, opts)?;
        progress(&result);
        out.push(result);
    }
    Ok(out)
}

fn run_cell(
    cell: &Cell,
    world: &WorldConfig,
    registry: &Registry,
    opts: &MatrixOptions,
) -> Result<CellResult, SimError> {
    let mut result = CellResult {
        id: cell.id(),
        expected: cell.expect.label(),
        summary: None,
        not_simulated: None,
        first_unexpected: None,
        kept: None,
    };
    let prepared = match prepare(cell.spec.clone(), world.clone(), registry) {
        Ok(mut p) => {
            p.replay = opts.replay.as_ref().map(|r| {
                let only: Vec<String> = cell
                    .params
                    .iter()
                    .map(|(axis, value)| {
                        format!("--only {}", shell_word(&format!("{axis}={value}")))
                    })
                    .collect();
                Replay { command: format!("{} {}", r.command, only.join(" ")), ..r.clone() }
            });
            p
        }
        Err(SimError::Unsupported(why)) => {
            result.not_simulated = Some(why);
            return Ok(result);
        }
        Err(e) => return Err(e),
    };
    let expect = &cell.expect;
    // Each seed is judged as a campaign run is, in memory; only the
    // record is kept, so a thousand seeds cost a thousand small records.
    let runs = map_seeds(opts.first, opts.count, opts.parallel, &|seed| {
        let mut record = RunRecord::planned(seed);
        match run_seed(&prepared, seed) {
            Ok(run) => record.judged(&run.checked.history, &run.checked.verdict, expect),
            Err(e) => {
                record.state = RunState::Failed;
                record.error = Some(e.to_string());
            }
        }
        Ok(record)
    })?;
    result.first_unexpected = runs.iter().find_map(|r| {
        let outcome = r.outcome(expect)?;
        unexpected(outcome, expect.verdict).then_some((r.seed, outcome))
    });
    if let (
        Some((seed, RunOutcome::FalseAlarm | RunOutcome::Missed | RunOutcome::Undecided)),
        Some(store),
    ) = (result.first_unexpected, &opts.store)
    {
        result.kept = Some(keep(&prepared, &run_seed(&prepared, seed)?, store)?);
    }
    let mut summary = cell.summary(Vec::new());
    summary.runs = runs;
    summary.judge();
    result.summary = Some(summary);
    Ok(result)
}

/// Whether a run went otherwise than its cell expects: every run of a cell
/// expecting `any` is as expected unless it raised a false alarm.
fn unexpected(outcome: RunOutcome, expected: Expected) -> bool {
    match outcome {
        RunOutcome::Clean | RunOutcome::Detected | RunOutcome::Observed => false,
        RunOutcome::Missed => expected == Expected::Invalid,
        RunOutcome::FalseAlarm | RunOutcome::Undecided | RunOutcome::Error => true,
    }
}

/// The table: one row per cell with its counts, detection rate and 95 %
/// Wilson interval, time to detection in simulated seconds, status and the
/// first unexpected seed; then the reasons of broken cells and why cells
/// were not simulated.
pub fn table(cells: &[CellResult], seeds: u64) -> String {
    let mut out = format!(
        "{:<34} {:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>18} {:>13}  {:<13} {}\n",
        "cell",
        "expected",
        "clean",
        "found",
        "alarm",
        "missed",
        "undec",
        "rate [95% CI]",
        "ttd med/max",
        "status",
        "first unexpected seed"
    );
    let mut notes = Vec::new();
    for c in cells {
        let Some(s) = &c.summary else {
            out.push_str(&format!(
                "{:<34} {:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>18} {:>13}  {:<13}\n",
                c.id,
                trim(&c.expected, 28),
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                c.status()
            ));
            if let Some(why) = &c.not_simulated {
                notes.push(format!("{}: not simulated: {why}", c.id));
            }
            continue;
        };
        let f = &s.figures;
        let count =
            |o: RunOutcome| s.runs.iter().filter(|r| r.outcome(&s.expect) == Some(o)).count();
        let rate = match s.expect.verdict {
            Expected::Invalid => format!(
                "{:.1}% [{:.1}-{:.1}]",
                f.rate * 100.0,
                f.rate_low * 100.0,
                f.rate_high * 100.0
            ),
            // A cell that expects either verdict: how often it was invalid.
            Expected::Any => {
                let invalid = s
                    .runs
                    .iter()
                    .filter(|r| r.validity == Some(checkers::Validity::Invalid))
                    .count();
                format!("{invalid} invalid")
            }
            Expected::Valid => "-".to_owned(),
        };
        let ttd = match (f.detection_median_s, f.detection_worst_s) {
            (Some(m), Some(w)) => format!("{m:.1}/{w:.1} s"),
            _ => "-".to_owned(),
        };
        let first = match c.first_unexpected {
            Some((seed, o)) => format!("{seed} ({})", o.name()),
            None => "none".to_owned(),
        };
        out.push_str(&format!(
            "{:<34} {:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>18} {:>13}  {:<13} {}\n",
            c.id,
            trim(&c.expected, 28),
            count(RunOutcome::Clean) + count(RunOutcome::Observed),
            count(RunOutcome::Detected),
            count(RunOutcome::FalseAlarm),
            count(RunOutcome::Missed),
            count(RunOutcome::Undecided) + count(RunOutcome::Error),
            rate,
            ttd,
            c.status(),
            first
        ));
        for r in &s.reasons {
            notes.push(format!("{}: {r}", c.id));
        }
        if let Some(dir) = &c.kept {
            notes.push(format!("{}: first unexpected run kept in {}", c.id, dir.display()));
        }
    }
    let simulated = cells.iter().filter(|c| c.summary.is_some()).count();
    let broken = cells.iter().filter(|c| c.status() == "broken").count();
    out.push_str(&format!(
        "{simulated} of {} cells simulated over {seeds} seeds each: {} met, {broken} broken\n",
        cells.len(),
        cells.iter().filter(|c| c.status() == "met").count(),
    ));
    for n in notes {
        out.push_str(&format!("  {n}\n"));
    }
    out
}

fn trim(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// Reads a campaign file for the simulation, with `--set` and `--only`
/// applied as `faultline campaign` applies them.
pub fn read_campaign(
    path: &Path,
    set: &[String],
    only: &[String],
) -> Result<CampaignFile, SimError> {
    let mut file = CampaignFile::from_file(path)?;
    for kv in set {
        file.set_test_field(kv)?;
    }
    file.only.extend(only.iter().cloned());
    Ok(file)
}
