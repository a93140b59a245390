//! A cell's figures: how many runs ended which way, the detection rate with
//! its 95 % Wilson score interval, and the time to detection (median and
//! worst) of the runs that detected.

use serde::{Deserialize, Serialize};

use super::{Expectation, RunOutcome, RunRecord};

/// The figures of one cell over the runs done.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Runs done (every state but planned and interrupted).
    pub completed: u32,
    /// Runs that found nothing where nothing was expected.
    pub clean: u32,
    /// Runs that found what was expected.
    pub detected: u32,
    /// Runs that found violations where none was expected.
    pub false_alarms: u32,
    /// Runs whose checkers could not decide.
    pub undecided: u32,
    /// Runs the harness could not carry out.
    pub errors: u32,
    /// Expected-invalid cells: `detected / completed` (0 when nothing ran).
    pub rate: f64,
    /// The 95 % Wilson score interval of `rate`.
    pub rate_low: f64,
    /// See `rate_low`.
    pub rate_high: f64,
    /// Median seconds from the start of a run to its detection, over the
    /// runs that detected and could tell when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_median_s: Option<f64>,
    /// The slowest such detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection_worst_s: Option<f64>,
}

impl Figures {
    /// The figures of `runs`, whose outcomes (of the runs done) are `outcomes`.
    pub fn of(runs: &[RunRecord], outcomes: &[RunOutcome], expect: &Expectation) -> Figures {
        let count = |o: RunOutcome| outcomes.iter().filter(|x| **x == o).count() as u32;
        let completed = outcomes.len() as u32;
        let detected = count(RunOutcome::Detected);
        let (rate_low, rate_high) = wilson_interval(detected, completed);
        let mut times: Vec<f64> = runs
            .iter()
            .filter(|r| r.outcome(expect) == Some(RunOutcome::Detected))
            .filter_map(|r| r.detection_s)
            .collect();
        times.sort_by(f64::total_cmp);
        Figures {
            completed,
            clean: count(RunOutcome::Clean),
            detected,
            false_alarms: count(RunOutcome::FalseAlarm),
            undecided: count(RunOutcome::Undecided),
            errors: count(RunOutcome::Error),
            rate: if completed == 0 { 0.0 } else { f64::from(detected) / f64::from(completed) },
            rate_low,
            rate_high,
            detection_median_s: median(&times),
            detection_worst_s: times.last().copied(),
        }
    }
}

/// The median of sorted `xs` (the mean of the middle two for an even count).
pub fn median(xs: &[f64]) -> Option<f64> {
    match xs.len() {
        0 => None,
        n if n % 2 == 1 => Some(xs[n / 2]),
        n => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

/// The 95 % Wilson score interval for `k` successes in `n` trials: unlike
/// the normal approximation it stays inside 0..1 and says something useful
/// for small `n` and for rates near 0 or 1 (10 of 10 gives 0.72..1).
/// `(0, 1)` when nothing ran.
pub fn wilson_interval(k: u32, n: u32) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n = f64::from(n);
    let p = f64::from(k) / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    // At 0 of n and n of n the bound is exactly 0 or 1; rounding must not
    // make 10 of 10 look like less than certain at the top.
    let low = if k == 0 { 0.0 } else { (centre - half).max(0.0) };
    let high = if f64::from(k) == n { 1.0 } else { (centre + half).min(1.0) };
    (low, high)
}
