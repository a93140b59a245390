//! Campaigns: a matrix of tests, each cell run several times with fresh
//! seeds, judged against what the cell is expected to show. This module
//! holds what a campaign directory keeps (`summary.json`), how a run and a
//! cell are judged against their expectation, the detection figures, and
//! `summary.html` (`html.rs`). The harness plans and runs the campaign; it
//! hands each finished run's verdicts here.
//!
//! A cell expected `valid` is *met* when no run found anything (a run that
//! did is a false alarm). A cell expected `invalid` is met when the share of
//! runs that showed the expected anomalies reaches its minimum detection
//! rate; every completed run counts, so a run the checkers could not decide
//! (`unknown`) or the harness could not carry out counts as a miss. A run
//! cut short by Ctrl-C is not counted at all: it is run again on resume.

mod figures;
mod html;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use checkers::{History, OpType, Validity, Verdict};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

pub use figures::{Figures, median, wilson_interval};
pub use html::render_summary;

/// The `format` field of every `summary.json`.
pub const SUMMARY_FORMAT: &str = "faultline-campaign";
/// The newest `summary.json` version this code writes and reads.
pub const SUMMARY_VERSION: u64 = 1;
/// The file in a campaign directory that holds its state and figures.
pub const SUMMARY_JSON: &str = "summary.json";
/// The page drawn from it.
pub const SUMMARY_HTML: &str = "summary.html";
/// The campaign file as the campaign was started, kept for `--resume`.
pub const CAMPAIGN_TOML: &str = "campaign.toml";
/// The detection rate an expected-invalid cell must reach when its
/// expectation names none.
pub const DEFAULT_MIN_DETECTION: f64 = 0.95;

/// What a cell, or one checker of it, is expected to conclude.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expected {
    /// Nothing may be found: the system keeps this promise.
    Valid,
    /// A violation must be found: the system is documented to break here.
    Invalid,
    /// Either is allowed (the promise says nothing about this case); the
    /// cell only reports what was found.
    Any,
}

impl Expected {
    /// The word used in files and pages.
    pub fn name(self) -> &'static str {
        match self {
            Expected::Valid => "valid",
            Expected::Invalid => "invalid",
            Expected::Any => "any",
        }
    }
}

/// What a cell is expected to show.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The overall verdict.
    pub verdict: Expected,
    /// Anomaly kinds that must all appear in a run for it to count as a
    /// detection: `kind` (any checker) or `checker:kind`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<String>,
    /// Verdicts expected of single checkers (`causal = "valid"` while the
    /// linearizability checker must fail).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checkers: BTreeMap<String, Expected>,
    /// For an expected-invalid cell: the least share of runs that must
    /// detect it (default 0.95).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_detection: Option<f64>,
    /// Why this is expected (the promise it comes from), for the page.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub because: String,
}

impl Default for Expectation {
    fn default() -> Expectation {
        Expectation {
            verdict: Expected::Any,
            anomalies: Vec::new(),
            checkers: BTreeMap::new(),
            min_detection: None,
            because: String::new(),
        }
    }
}

impl Expectation {
    /// Checks the expectation makes sense; `source` names where it came from.
    pub fn validate(&self, source: &str) -> Result<(), StoreError> {
        if let Some(r) = self.min_detection
            && !(r.is_finite() && (0.0..=1.0).contains(&r))
        {
            return Err(StoreError::spec(source, "min_detection", format!("{r} is not in 0..1")));
        }
        if self.verdict != Expected::Invalid && self.min_detection.is_some() {
            return Err(StoreError::spec(
                source,
                "min_detection",
                "only an expected-invalid cell has a detection rate",
            ));
        }
        if self.verdict == Expected::Valid && !self.anomalies.is_empty() {
            return Err(StoreError::spec(
                source,
                "anomalies",
                "a cell expected valid cannot require anomalies",
            ));
        }
        Ok(())
    }

    /// The detection rate this expectation requires.
    pub fn required_rate(&self) -> f64 {
        self.min_detection.unwrap_or(DEFAULT_MIN_DETECTION)
    }

    /// One line for people: `valid`, `invalid: lost-write`, `any`.
    pub fn label(&self) -> String {
        let mut s = self.verdict.name().to_owned();
        if !self.anomalies.is_empty() {
            s.push_str(": ");
            s.push_str(&self.anomalies.join(", "));
        }
        for (c, e) in &self.checkers {
            s.push_str(&format!("; {c} {}", e.name()));
        }
        s
    }
}

/// Where a planned run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Not run yet.
    Planned,
    /// Ran to its end and was judged.
    Done,
    /// Cut short (Ctrl-C); run again on resume, not counted.
    Interrupted,
    /// The harness could not carry it out (a node would not start).
    Failed,
}

/// How one run compares with its cell's expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    /// Found nothing, as expected.
    Clean,
    /// Found something where nothing was expected.
    FalseAlarm,
    /// Found what was expected.
    Detected,
    /// Did not find (all of) what was expected.
    Missed,
    /// The checkers could not decide.
    Undecided,
    /// The harness failed; the run says nothing about the system.
    Error,
    /// The cell expects either verdict; this is what it got.
    Observed,
}

impl RunOutcome {
    /// The word on the page.
    pub fn name(self) -> &'static str {
        match self {
            RunOutcome::Clean => "clean",
            RunOutcome::FalseAlarm => "false alarm",
            RunOutcome::Detected => "detected",
            RunOutcome::Missed => "missed",
            RunOutcome::Undecided => "undecided",
            RunOutcome::Error => "harness error",
            RunOutcome::Observed => "observed",
        }
    }
}

/// One run of a cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its seed (planned when the campaign starts, so a resumed campaign
    /// runs the same tests).
    pub seed: u64,
    /// Where it is.
    pub state: RunState,
    /// Its run directory, relative to the campaign directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// The merged verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity: Option<Validity>,
    /// Each checker's verdict.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checkers: BTreeMap<String, Validity>,
    /// Anomalies found, `checker:kind` → how many.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub anomalies: BTreeMap<String, u64>,
    /// Seconds from the start of the run until the evidence of the first
    /// anomaly (of an expected kind, when the cell names kinds) was complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_s: Option<f64>,
    /// Seconds the run's history spans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// The harness's error, for a failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunRecord {
    /// A run planned with `seed`.
    pub fn planned(seed: u64) -> RunRecord {
        RunRecord {
            seed,
            state: RunState::Planned,
            dir: None,
            validity: None,
            checkers: BTreeMap::new(),
            anomalies: BTreeMap::new(),
            detection_s: None,
            duration_s: None,
            error: None,
        }
    }

    /// Fills the record from a judged run: the merged `verdict` (its
    /// children are the checkers' verdicts) over `history`.
    pub fn judged(&mut self, history: &History, verdict: &Verdict, expect: &Expectation) {
        self.state = RunState::Done;
        self.validity = Some(verdict.validity);
        self.checkers.clear();
        self.anomalies.clear();
        let leaves: Vec<&Verdict> = if verdict.children.is_empty() {
            vec![verdict]
        } else {
            verdict.children.iter().collect()
        };
        for v in &leaves {
            self.checkers.insert(v.checker.clone(), v.validity);
            for a in &v.anomalies {
                *self.anomalies.entry(format!("{}:{}", v.checker, a.kind)).or_default() += 1;
            }
        }
        self.detection_s = detection_time_s(history, &leaves, &expect.anomalies);
        self.duration_s = history.ops().last().and_then(|o| o.time).map(|t| t as f64 / 1e9);
    }

    /// Whether anomaly `wanted` (`kind` or `checker:kind`) was found.
    pub fn found(&self, wanted: &str) -> bool {
        self.anomalies.keys().any(|k| anomaly_matches(k, wanted))
    }

    /// How this run compares with `expect`; `None` while it is not done
    /// (planned or interrupted).
    pub fn outcome(&self, expect: &Expectation) -> Option<RunOutcome> {
        match self.state {
            RunState::Planned | RunState::Interrupted => return None,
            RunState::Failed => return Some(RunOutcome::Error),
            RunState::Done => {}
        }
        let validity = self.validity?;
        let checkers_ok = expect.checkers.iter().all(|(c, e)| {
            matches!(
                (e, self.checkers.get(c)),
                (Expected::Any, _)
                    | (Expected::Valid, Some(Validity::Valid))
                    | (Expected::Invalid, Some(Validity::Invalid))
            )
        });
        let alarm = expect.checkers.iter().any(|(c, e)| {
            *e == Expected::Valid && self.checkers.get(c) == Some(&Validity::Invalid)
        });
        Some(match expect.verdict {
            Expected::Valid => match validity {
                Validity::Invalid => RunOutcome::FalseAlarm,
                Validity::Unknown => RunOutcome::Undecided,
                Validity::Valid if checkers_ok => RunOutcome::Clean,
                Validity::Valid => RunOutcome::Undecided,
            },
            Expected::Invalid => {
                if alarm {
                    RunOutcome::FalseAlarm
                } else if validity == Validity::Invalid
                    && checkers_ok
                    && expect.anomalies.iter().all(|a| self.found(a))
                {
                    RunOutcome::Detected
                } else if validity == Validity::Unknown {
                    RunOutcome::Undecided
                } else {
                    RunOutcome::Missed
                }
            }
            Expected::Any if alarm => RunOutcome::FalseAlarm,
            Expected::Any => RunOutcome::Observed,
        })
    }
}

/// Whether the found anomaly `found` (`checker:kind`) is the wanted one
/// (`kind`, or `checker:kind`).
pub fn anomaly_matches(found: &str, wanted: &str) -> bool {
    if wanted.contains(':') {
        found == wanted
    } else {
        found.split_once(':').is_some_and(|(_, kind)| kind == wanted)
    }
}

/// When, in seconds from the start of the run, the first anomaly's
/// evidence was complete: for each anomaly (of a `wanted` kind, when any is
/// named) the time the last operation it names completed, and the earliest
/// of those. An anomaly is only evident once every operation it names has
/// happened, so the last of them, not the first, marks its detection.
/// `None` when no anomaly names an operation with a time.
pub fn detection_time_s(
    history: &History,
    verdicts: &[&Verdict],
    wanted: &[String],
) -> Option<f64> {
    let ops = history.ops();
    // An operation named by its invocation is complete when its completion
    // arrives; map each invocation to its completion's time.
    let mut completed_at: BTreeMap<u64, u64> = BTreeMap::new();
    let mut open: BTreeMap<checkers::Process, u64> = BTreeMap::new();
    for op in ops {
        match op.kind {
            OpType::Invoke => {
                open.insert(op.process, op.index);
            }
            _ => {
                if let (Some(inv), Some(t)) = (open.remove(&op.process), op.time) {
                    completed_at.insert(inv, t);
                }
            }
        }
    }
    let time_of = |index: u64| -> Option<u64> {
        let pos = ops.binary_search_by_key(&index, |o| o.index).ok()?;
        let op = &ops[pos];
        match op.kind {
            OpType::Invoke => completed_at.get(&index).copied().or(op.time),
            _ => op.time,
        }
    };
    let mut best: Option<u64> = None;
    for v in verdicts {
        for a in &v.anomalies {
            let key = format!("{}:{}", v.checker, a.kind);
            if !wanted.is_empty() && !wanted.iter().any(|w| anomaly_matches(&key, w)) {
                continue;
            }
            let Some(t) = a.ops.iter().filter_map(|i| time_of(*i)).max() else { continue };
            best = Some(best.map_or(t, |b| b.min(t)));
        }
    }
    best.map(|t| t as f64 / 1e9)
}

/// Where a cell stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellStatus {
    /// Its expectation holds over the runs done.
    Met,
    /// Its expectation failed.
    Broken,
    /// Runs are still missing; nothing contradicts the expectation yet.
    Pending,
}

/// One cell of the matrix: a test, its expectation and its runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellSummary {
    /// The axis values that define it, in axis order (`mode` → `async`).
    pub params: Vec<(String, String)>,
    /// The folder its runs are stored under (the test name).
    pub name: String,
    /// What it should show.
    pub expect: Expectation,
    /// Its runs, planned or done.
    pub runs: Vec<RunRecord>,
    /// The judgement over the runs done (recomputed whenever written).
    #[serde(default)]
    pub figures: Figures,
    /// Met, broken or pending (recomputed whenever written).
    #[serde(default = "pending")]
    pub status: CellStatus,
    /// Why it is broken, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

fn pending() -> CellStatus {
    CellStatus::Pending
}

impl CellSummary {
    /// `mode=async nemesis=kill`.
    pub fn id(&self) -> String {
        self.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    }

    /// Recomputes `figures`, `status` and `reasons` from the runs.
    pub fn judge(&mut self) {
        let outcomes: Vec<RunOutcome> =
            self.runs.iter().filter_map(|r| r.outcome(&self.expect)).collect();
        self.figures = Figures::of(&self.runs, &outcomes, &self.expect);
        let f = &self.figures;
        let mut reasons = Vec::new();
        if f.false_alarms > 0 {
            reasons.push(format!(
                "{} of {} runs found a violation where the promise says none is possible",
                f.false_alarms, f.completed
            ));
        }
        if f.errors > 0 {
            reasons.push(format!("the harness failed in {} of {} runs", f.errors, f.completed));
        }
        match self.expect.verdict {
            Expected::Valid if f.undecided > 0 => reasons.push(format!(
                "{} of {} runs were undecided (unknown), so they prove nothing",
                f.undecided, f.completed
            )),
            Expected::Invalid if f.completed > 0 && f.rate < self.expect.required_rate() => reasons
                .push(format!(
                    "detected in {} of {} runs ({:.0} %), below the required {:.0} %",
                    f.detected,
                    f.completed,
                    f.rate * 100.0,
                    self.expect.required_rate() * 100.0
                )),
            _ => {}
        }
        let planned = self.runs.iter().any(|r| r.outcome(&self.expect).is_none());
        self.status = if !reasons.is_empty() {
            CellStatus::Broken
        } else if planned || f.completed == 0 {
            CellStatus::Pending
        } else {
            CellStatus::Met
        };
        self.reasons = reasons;
    }
}

/// Where the campaign as a whole stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CampaignState {
    /// Runs are going on (or the campaign was killed without a word).
    Running,
    /// Stopped by Ctrl-C; `faultline campaign --resume DIR` continues it.
    Interrupted,
    /// Every planned run is done.
    Complete,
}

/// `summary.json`: the whole campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignSummary {
    /// Always `faultline-campaign`.
    pub format: String,
    /// The format version (see `SUMMARY_VERSION`).
    pub version: u64,
    /// The campaign's name.
    pub name: String,
    /// The axes of the matrix, in order.
    pub axes: Vec<String>,
    /// Running, interrupted or complete.
    pub state: CampaignState,
    /// When it started and when this file was last written (ms since the epoch).
    pub started_at_ms: u64,
    /// See `started_at_ms`.
    pub updated_at_ms: u64,
    /// Every cell.
    pub cells: Vec<CellSummary>,
}

impl CampaignSummary {
    /// A campaign about to start.
    pub fn new(name: &str, axes: Vec<String>, cells: Vec<CellSummary>) -> CampaignSummary {
        let now = now_ms();
        CampaignSummary {
            format: SUMMARY_FORMAT.into(),
            version: SUMMARY_VERSION,
            name: name.into(),
            axes,
            state: CampaignState::Running,
            started_at_ms: now,
            updated_at_ms: now,
            cells,
        }
    }

    /// Cells met, broken and pending.
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |s| self.cells.iter().filter(|c| c.status == s).count();
        (n(CellStatus::Met), n(CellStatus::Broken), n(CellStatus::Pending))
    }

    /// Reads `summary.json` from campaign directory `dir`.
    pub fn read(dir: &Path) -> Result<CampaignSummary, StoreError> {
        let path = dir.join(SUMMARY_JSON);
        let text = std::fs::read_to_string(&path).map_err(|e| StoreError::io(&path, e))?;
        let summary: CampaignSummary = serde_json::from_str(&text).map_err(|e| {
            StoreError::spec(format!("{}:{}", path.display(), e.line()), "summary", e.to_string())
        })?;
        if summary.format != SUMMARY_FORMAT {
            return Err(StoreError::spec(
                path.display().to_string(),
                "format",
                format!("{:?} is not a faultline campaign summary", summary.format),
            ));
        }
        if summary.version > SUMMARY_VERSION {
            return Err(StoreError::spec(
                path.display().to_string(),
                "version",
                format!(
                    "version {} is newer than this faultline reads ({SUMMARY_VERSION})",
                    summary.version
                ),
            ));
        }
        Ok(summary)
    }

    /// Judges every cell again and writes `summary.json` and `summary.html`
    /// into `dir` (each through a temporary file, so a reader or a crash
    /// never sees half a file).
    pub fn write(&mut self, dir: &Path) -> Result<(), StoreError> {
        for c in &mut self.cells {
            c.judge();
        }
        self.updated_at_ms = now_ms();
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| StoreError::spec(dir.display().to_string(), "summary", e.to_string()))?;
        write_atomic(&dir.join(SUMMARY_JSON), json.as_bytes())?;
        write_atomic(&dir.join(SUMMARY_HTML), render_summary(self).as_bytes())?;
        Ok(())
    }

    /// The anomaly kinds found anywhere, for the page's legend.
    pub fn kinds_found(&self) -> BTreeSet<String> {
        self.cells.iter().flat_map(|c| &c.runs).flat_map(|r| r.anomalies.keys().cloned()).collect()
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| StoreError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
