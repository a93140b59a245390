//! Verdicts: what every checker returns, and the `Checker` trait that plugins
//! implement.
//!
//! A violation is a verdict with evidence, never an error. A checker that
//! runs out of time or memory says `Unknown` with the reason; it never passes
//! silently.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::CheckError;
use crate::history::History;

/// The three answers a checker can give.
///
/// Ordered so that merging takes the maximum: invalid beats unknown beats valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    /// The history satisfies the property.
    Valid,
    /// The checker could not decide (a budget ran out, or the history holds
    /// too little to judge).
    Unknown,
    /// The history violates the property; the verdict carries the evidence.
    Invalid,
}

impl Validity {
    /// The process exit code Jepsen users expect: 0 valid, 1 invalid, 2
    /// unknown (see [`crate::exit`]).
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => crate::exit::VALID,
            Validity::Invalid => crate::exit::INVALID,
            Validity::Unknown => crate::exit::UNKNOWN,
        }
    }

    /// `valid`, `invalid` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Unknown => "unknown",
            Validity::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for Validity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One violation found in a history, explained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// A stable name: `nonlinearizable`, `G1c`, `lost-write`, `WriteCORead`...
    pub kind: String,
    /// What happened, in sentences a newcomer can follow, naming the ops.
    pub explanation: String,
    /// Indices (`Op::index`) of the operations involved, for linking to the timeline.
    pub ops: Vec<u64>,
    /// Checker-specific structured evidence (a cycle, a failing linearization...).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

/// The result of one checker on one history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The checker's name, e.g. `linearizable`.
    pub checker: String,
    /// Valid, invalid or unknown.
    pub validity: Validity,
    /// One line for humans: what was checked and what was found.
    pub summary: String,
    /// Why the answer is unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
    /// The violations, most severe first.
    #[serde(default)]
    pub anomalies: Vec<Anomaly>,
    /// Checker-specific details and statistics.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
    /// What the history's reader noticed that changes what this verdict
    /// means (a torn last line ignored, defaults applied), one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Verdicts of sub-checkers, for compositions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Verdict>,
    /// Wall-clock time the check took.
    #[serde(default, with = "duration_ms")]
    pub elapsed: Duration,
}

impl Verdict {
    /// A verdict with no anomalies, details or children.
    pub fn new(
        checker: impl Into<String>,
        validity: Validity,
        summary: impl Into<String>,
    ) -> Verdict {
        Verdict {
            checker: checker.into(),
            validity,
            summary: summary.into(),
            unknown_reason: None,
            anomalies: Vec::new(),
            details: serde_json::Value::Null,
            notes: Vec::new(),
            children: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// An `unknown` verdict: `reason` says why the checker could not decide
    /// (a budget ran out, or nothing in the history observed the property).
    pub fn unknown(
        checker: impl Into<String>,
        summary: impl Into<String>,
        reason: impl Into<String>,
    ) -> Verdict {
        let mut v = Verdict::new(checker, Validity::Unknown, summary);
        v.unknown_reason = Some(reason.into());
        v
    }

    /// The `unknown` verdict of a checker whose budget ran out (`reason`
    /// from [`crate::budget::Meter`]) after `elapsed`.
    pub fn out_of_budget(
        checker: impl Into<String>,
        reason: impl Into<String>,
        elapsed: Duration,
    ) -> Verdict {
        let reason = reason.into();
        let mut v = Verdict::unknown(checker, format!("gave up: {reason}"), reason);
        v.elapsed = elapsed;
        v
    }

    /// The verdicts `children` merged into one named `name`: invalid beats
    /// unknown beats valid, and no verdict at all is unknown (nothing was
    /// judged). The children are kept, so each still speaks for itself.
    /// Every composition merges this way: `compose`, and a test's checks.
    pub fn merged(name: impl Into<String>, children: Vec<Verdict>) -> Verdict {
        let name = name.into();
        let validity = children.iter().map(|c| c.validity).max().unwrap_or(Validity::Unknown);
        let summary = children
            .iter()
            .map(|c| format!("{} {}", c.checker, c.validity))
            .collect::<Vec<_>>()
            .join(", ");
        let mut v = Verdict::new(name.clone(), validity, summary);
        if children.is_empty() {
            v.summary = "no checker ran".into();
            v.unknown_reason = Some(format!("{name} names no checker, so nothing was judged"));
        } else if validity == Validity::Unknown {
            v.unknown_reason = Some("at least one checker could not decide".into());
        }
        v.children = children;
        v
    }

    /// Plain-text rendering: the summary, then each anomaly's explanation.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write_text(&mut out, 0);
        out
    }

    fn write_text(&self, out: &mut String, depth: usize) {
        use std::fmt::Write;
        let pad = "  ".repeat(depth);
        let _ = writeln!(out, "{pad}{}: {} ({})", self.checker, self.validity, self.summary);
        if let Some(r) = &self.unknown_reason {
            let _ = writeln!(out, "{pad}  unknown because: {r}");
        }
        for n in &self.notes {
            let _ = writeln!(out, "{pad}  note: {n}");
        }
        for a in &self.anomalies {
            let _ = writeln!(out, "{pad}  [{}]", a.kind);
            for line in a.explanation.lines() {
                let _ = writeln!(out, "{pad}    {line}");
            }
        }
        for c in &self.children {
            c.write_text(out, depth + 1);
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Ok(Duration::from_secs_f64((ms / 1000.0).max(0.0)))
    }
}

/// One page of a checker's HTML evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HtmlPage {
    /// A file-name-safe name, unique within the checker's pages (`G1c`, `linearizability`).
    pub name: String,
    /// The page title.
    pub title: String,
    /// The body: an HTML fragment; wrap it with `html::page`.
    pub body: String,
}

pub use crate::budget::Budget;

/// A consistency checker. Implement this in your own crate to add a checker;
/// register it by name to reach it from the command line.
pub trait Checker: Send + Sync {
    /// A short stable name (`linearizable`, `list-append`, `set-full`...).
    fn name(&self) -> &str;

    /// Judges `history`. Broken input (an op the checker cannot interpret)
    /// is an `Err`; a violation is `Ok` with an invalid verdict.
    fn check(&self, history: &History) -> Result<Verdict, CheckError>;

    /// Pages of HTML (fragments without the `<html>` wrapper, and no
    /// external resources) that draw the evidence of `verdict`: one page for
    /// a simple checker, one per anomaly type for the transactional ones.
    /// Empty when this checker has no picture to draw.
    fn render_html(&self, _history: &History, _verdict: &Verdict) -> Vec<HtmlPage> {
        Vec::new()
    }

    /// Whether [`Checker::check_text`] may decide a history whose text
    /// begins with `head` (its first kilobytes or more): a front end then
    /// hands it the whole text before reading the history. `false`, the
    /// default, for a checker without a `check_text` of its own.
    fn checks_text(&self, _head: &str) -> bool {
        false
    }

    /// Decides the EDN history whose text `text` gives straight from the
    /// text (`source` names it), when it has a shape this checker reads
    /// itself, faster than reading the history: see [`FromText`]. The
    /// default leaves every text to the readers.
    fn check_text(&self, _text: &mut (dyn std::io::Read + Send), _source: &str) -> FromText {
        FromText::Left
    }
}

/// What a checker made of a history's text ([`Checker::check_text`]).
#[derive(Debug)]
pub enum FromText {
    /// Decided: exactly the verdict [`judge`] gives on the history the
    /// readers read from the text.
    Decided(Verdict),
    /// Not decided, but read: the history the readers read from the text,
    /// for the front end to [`judge`] without reading the text again.
    Read(History),
    /// Not read (another shape, or the text could not be read): the front
    /// end reads the history as always, and words any error.
    Left,
}

/// Runs `checker` on `history` and carries the history's notes into the
/// verdict: what its reader noticed is part of what the verdict means. A
/// history that was not read whole (a torn last line) cannot be `valid`:
/// what is missing might have broken the property, so `valid` becomes
/// `unknown` with the reason. An `invalid` verdict stands, because the
/// violation is in the part that was read.
///
/// Every front end (`faultline check`, the end of a test, `analyze`) judges
/// through this function rather than calling [`Checker::check`] directly.
pub fn judge(checker: &dyn Checker, history: &History) -> Result<Verdict, CheckError> {
    let mut verdict = checker.check(history)?;
    apply_notes(&mut verdict, history);
    Ok(verdict)
}

/// Adds `history`'s notes to `verdict` (see [`judge`]).
pub fn apply_notes(verdict: &mut Verdict, history: &History) {
    for note in history.notes() {
        if !verdict.notes.contains(&note.text) {
            verdict.notes.push(note.text.clone());
        }
        if note.incomplete && verdict.validity == Validity::Valid {
            verdict.validity = Validity::Unknown;
            verdict.unknown_reason = Some(format!(
                "the history was not read whole, so what is missing could break the property: {}",
                note.text
            ));
        }
    }
}

/// Runs several checkers on the same history in parallel and merges their
/// verdicts: invalid beats unknown beats valid.
pub struct Compose {
    name: String,
    checkers: Vec<Box<dyn Checker>>,
}

impl Compose {
    /// A composition named `name`.
    pub fn new(name: impl Into<String>, checkers: Vec<Box<dyn Checker>>) -> Compose {
        Compose { name: name.into(), checkers }
    }
}

impl Checker for Compose {
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        use rayon::prelude::*;
        let started = std::time::Instant::now();
        let children: Vec<Verdict> =
            self.checkers.par_iter().map(|c| c.check(history)).collect::<Result<_, _>>()?;
        let mut v = Verdict::merged(self.name.clone(), children);
        v.elapsed = started.elapsed();
        Ok(v)
    }

    fn render_html(&self, history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        self.checkers
            .iter()
            .zip(&verdict.children)
            .flat_map(|(c, v)| c.render_html(history, v))
            .collect()
    }
}

/// Milliseconds spent in each stage of a check, for the verdict's details.
pub(crate) struct Laps {
    pub(crate) timings: serde_json::Map<String, serde_json::Value>,
    last: Instant,
}

impl Laps {
    pub(crate) fn start() -> Laps {
        Laps { timings: serde_json::Map::new(), last: Instant::now() }
    }

    /// Ends the stage `name`, which began where the previous one ended.
    pub(crate) fn lap(&mut self, name: &str) {
        let now = Instant::now();
        self.timings
            .insert(name.into(), serde_json::json!((now - self.last).as_secs_f64() * 1000.0));
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Validity);
    impl Checker for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn check(&self, _: &History) -> Result<Verdict, CheckError> {
            Ok(Verdict::new("fixed", self.0, "fixed answer"))
        }
    }

    #[test]
    fn composition_merges_invalid_over_unknown_over_valid() {
        let h = History::default();
        let c = Compose::new(
            "all",
            vec![Box::new(Fixed(Validity::Valid)), Box::new(Fixed(Validity::Unknown))],
        );
        assert_eq!(c.check(&h).expect("check").validity, Validity::Unknown);
        let c = Compose::new(
            "all",
            vec![
                Box::new(Fixed(Validity::Unknown)),
                Box::new(Fixed(Validity::Invalid)),
                Box::new(Fixed(Validity::Valid)),
            ],
        );
        let v = c.check(&h).expect("check");
        assert_eq!(v.validity, Validity::Invalid);
        assert_eq!(v.children.len(), 3);
    }
}
