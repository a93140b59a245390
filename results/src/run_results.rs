//! `results.json`: what the checkers concluded about a run, in a versioned
//! format of its own.
//!
//! The file says what it is (`"format": "faultline-results"`) and which
//! version of the format it uses. A reader accepts every version up to
//! `RESULTS_VERSION` and refuses newer ones with a clear message; fields
//! added within a version are optional, so a file written by an older
//! faultline of the same version still reads. Nothing else about the code
//! that wrote the file matters.

use std::collections::BTreeMap;
use std::path::Path;

use checkers::registry::CheckSpec;
use checkers::{History, Validity, Verdict};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::intervals::{Clock, Intervals, OutcomeCounts};

/// The `format` field of every `results.json`.
pub const RESULTS_FORMAT: &str = "faultline-results";

/// The newest `results.json` version this code writes and reads.
pub const RESULTS_VERSION: u64 = 1;

/// The contents of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// Always `faultline-results`.
    pub format: String,
    /// The format version (see `RESULTS_VERSION`).
    pub version: u64,
    /// The faultline version that wrote the file, for people; readers ignore it.
    #[serde(default)]
    pub faultline_version: String,
    /// When the file was written, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub written_at_ms: u64,
    /// The overall verdict: the worst of the checks (invalid beats unknown
    /// beats valid). Absent when no checker ran.
    #[serde(default)]
    pub validity: Option<Validity>,
    /// One entry per checker that ran, with the options it ran with.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// Counts and rates over the history, for the index and comparisons.
    #[serde(default)]
    pub history: HistorySummary,
    /// Set when the harness itself failed (a node would not start): then the
    /// run says nothing about the system under test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harness_error: Option<String>,
    /// Set when the run was cut short (Ctrl-C), saying why. The checkers
    /// judged only what ran, so a run that found nothing is `unknown`, never
    /// `valid`; what an interrupted run found is still found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

/// One checker's verdict and the options it ran with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// How the checker was configured; `faultline report` rebuilds the
    /// checker from this to draw its evidence.
    #[serde(default)]
    pub spec: CheckSpec,
    /// What it found.
    pub verdict: Verdict,
}

impl CheckResult {
    /// The verdict `verdict` of the checker configured by `spec`.
    pub fn new(spec: &CheckSpec, verdict: Verdict) -> CheckResult {
        CheckResult { spec: spec.clone(), verdict }
    }
}

/// Counts and rates over a history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistorySummary {
    /// Events in the history (invocations, completions, nemesis events).
    #[serde(default)]
    pub events: u64,
    /// Client operations and how they ended.
    #[serde(default)]
    pub outcomes: OutcomeCounts,
    /// The same, per function.
    #[serde(default)]
    pub functions: BTreeMap<String, OutcomeCounts>,
    /// Nemesis events.
    #[serde(default)]
    pub nemesis_events: u64,
    /// Fault periods per kind.
    #[serde(default)]
    pub faults: BTreeMap<String, u64>,
    /// Seconds from the first to the last event, when the history has times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Completed `ok` operations per second, when the history has times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_per_s: Option<f64>,
    /// Latency of `ok` operations in milliseconds, when the history has times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<LatencySummary>,
}

/// Latency quantiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl HistorySummary {
    /// Summarises `history` (already paired into `intervals`).
    pub fn of(history: &History, intervals: &Intervals) -> HistorySummary {
        let mut outcomes = OutcomeCounts::default();
        for it in &intervals.items {
            outcomes.add(it.outcome);
        }
        let mut faults: BTreeMap<String, u64> = BTreeMap::new();
        for p in &intervals.faults {
            *faults.entry(p.kind.clone()).or_default() += 1;
        }
        let timed = intervals.clock == Clock::Nanos;
        let first = history.ops().iter().find_map(|o| o.time).unwrap_or(0);
        let duration_s = timed.then(|| intervals.end_time.saturating_sub(first) as f64 / 1e9);
        let ok_per_s = duration_s.filter(|d| *d > 0.0).map(|d| outcomes.ok as f64 / d);
        let latency_ms = if timed {
            let mut lat: Vec<u64> = intervals
                .items
                .iter()
                .filter(|i| i.outcome == checkers::OpType::Ok)
                .filter_map(|i| i.latency())
                .collect();
            lat.sort_unstable();
            (!lat.is_empty()).then(|| LatencySummary {
                p50: quantile(&lat, 0.50) as f64 / 1e6,
                p95: quantile(&lat, 0.95) as f64 / 1e6,
                p99: quantile(&lat, 0.99) as f64 / 1e6,
                max: lat[lat.len() - 1] as f64 / 1e6,
            })
        } else {
            None
        };
        HistorySummary {
            events: history.len() as u64,
            outcomes,
            functions: intervals.outcome_counts(),
            nemesis_events: intervals.nemesis_events as u64,
            faults,
            duration_s,
            ok_per_s,
            latency_ms,
        }
    }
}

/// The overall validity of a run cut short whose checks, merged, say
/// `validity`: `valid` becomes `unknown` (see [`interrupted_reason`]); the
/// rest stand. The one rule, so `results.json` and the harness's merged
/// verdict agree.
pub fn interrupted_validity(validity: Validity) -> Validity {
    match validity {
        Validity::Valid => Validity::Unknown,
        other => other,
    }
}

/// Why a run cut short (`why`, the `interrupted` file's line) is
/// `unknown` although its checks found nothing.
pub fn interrupted_reason(why: &str) -> String {
    format!(
        "the run was interrupted before its time limit ({why}); the checkers found nothing in \
         what ran, which proves nothing about the test that was asked for"
    )
}

/// The `q` quantile of sorted, non-empty `xs` (nearest rank).
pub fn quantile(xs: &[u64], q: f64) -> u64 {
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    xs[rank - 1]
}

impl RunResults {
    /// Results for `history` from `checks` (each checker's spec and verdict).
    pub fn new(history: &History, checks: Vec<CheckResult>) -> RunResults {
        let intervals = Intervals::of(history);
        RunResults::with_summary(HistorySummary::of(history, &intervals), checks)
    }

    /// Results with a summary already computed.
    pub fn with_summary(history: HistorySummary, checks: Vec<CheckResult>) -> RunResults {
        let validity = checks.iter().map(|c| c.verdict.validity).max();
        RunResults {
            format: RESULTS_FORMAT.to_owned(),
            version: RESULTS_VERSION,
            faultline_version: env!("CARGO_PKG_VERSION").to_owned(),
            written_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            validity,
            checks,
            history,
            harness_error: None,
            interrupted: None,
        }
    }

    /// Marks the results of a run cut short, saying `why`
    /// ([`crate::store::files::INTERRUPTED`]): a run that found nothing is
    /// `unknown`, never `valid`, since the test asked for did not happen;
    /// what an interrupted run found stays found.
    pub fn mark_interrupted(&mut self, why: &str) {
        self.validity = self.validity.map(interrupted_validity);
        self.interrupted = Some(why.to_owned());
    }

    /// Parses the text of a `results.json` read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<RunResults, StoreError> {
        // Read the header first, so a newer file is refused by its version and
        // not by whichever of its new fields happens to fail first.
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u64,
        }
        let header: Header = serde_json::from_str(text).map_err(|e| StoreError::json(path, &e))?;
        if header.format != RESULTS_FORMAT {
            return Err(StoreError::WrongFormat {
                path: path.to_owned(),
                expected: RESULTS_FORMAT,
                found: header.format,
            });
        }
        if header.version > RESULTS_VERSION || header.version == 0 {
            return Err(StoreError::UnsupportedVersion {
                path: path.to_owned(),
                format: RESULTS_FORMAT,
                found: header.version,
                supported: RESULTS_VERSION,
            });
        }
        serde_json::from_str(text).map_err(|e| StoreError::json(path, &e))
    }

    /// Reads `path`; `Ok(None)` when it does not exist (a run not yet checked).
    pub fn read(path: &Path) -> Result<Option<RunResults>, StoreError> {
        match std::fs::read_to_string(path) {
            Ok(text) => RunResults::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// The file's text: pretty JSON, ending in a newline.
    pub fn to_json(&self) -> String {
        // Every map key here is a string, so serialising cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Every verdict, depth first (compositions and their children).
    pub fn verdicts(&self) -> Vec<&Verdict> {
        fn walk<'a>(v: &'a Verdict, out: &mut Vec<&'a Verdict>) {
            out.push(v);
            for c in &v.children {
                walk(c, out);
            }
        }
        let mut out = Vec::new();
        for c in &self.checks {
            walk(&c.verdict, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_newer_versions() {
        let mut v = Verdict::new("set-full", Validity::Invalid, "1 lost");
        v.anomalies.push(checkers::Anomaly {
            kind: "lost".into(),
            explanation: "element 3 was acknowledged and never read".into(),
            ops: vec![4, 9],
            data: serde_json::json!({"lost": [3]}),
        });
        let spec = CheckSpec { checker: "set-full".into(), ..CheckSpec::default() };
        let r =
            RunResults::with_summary(HistorySummary::default(), vec![CheckResult::new(&spec, v)]);
        assert_eq!(r.validity, Some(Validity::Invalid));
        let text = r.to_json();
        let back = RunResults::parse(&text, Path::new("results.json")).expect("parse");
        assert_eq!(back, r);

        let newer = text.replacen("\"version\": 1", "\"version\": 7", 1);
        let err = RunResults::parse(&newer, Path::new("r/results.json")).expect_err("newer");
        assert!(err.to_string().contains("r/results.json: field `version` is 7"), "{err}");
        let other =
            RunResults::parse("{\"format\":\"x\",\"version\":1}", Path::new("results.json"))
                .expect_err("wrong format");
        assert!(other.to_string().contains("field `format`"), "{other}");
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let xs: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&xs, 0.5), 50);
        assert_eq!(quantile(&xs, 0.99), 99);
        assert_eq!(quantile(&xs, 1.0), 100);
        assert_eq!(quantile(&[7], 0.5), 7);
    }
}
