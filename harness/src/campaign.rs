//! Campaign files: a matrix of tests with what each cell is expected to
//! show, expanded into cells (a test spec and an expectation each).
//!
//! ```toml
//! name = "seed-matrix"
//! runs = 5                 # runs per cell, each with a fresh seed
//! # seed = 7               # derive every run's seed from this one instead
//!
//! [test]                   # every cell's test, as in `faultline test -f`
//! time_limit = 30
//!
//! [matrix]                 # axes: test fields and the values each takes;
//! mode = ["raft", "async"] # every combination is a cell, the last axis
//! nemesis = ["none", "kill", "partition,kill"]   # the page's columns
//! # options = [{}, { kill_targets = "primaries" }]   # option sets
//!
//! [[set]]                  # test fields for the cells that match
//! when = { mode = "async" }
//! test = { workload = "list-append" }
//!
//! [[expect]]               # the first rule that matches a cell is its expectation
//! when = { mode = "raft" }
//! verdict = "valid"
//! because = "raft is linearizable under every fault"
//!
//! [[expect]]
//! when = { mode = "async", nemesis = ["kill", "partition,kill"] }
//! verdict = "invalid"
//! anomalies = ["nonlinearizable"]   # kinds that must all appear (`checker:kind` too)
//! min_detection = 0.95
//! ```
//!
//! A cell no rule matches expects `any` verdict. Everything is checked
//! before the first run: every cell's spec parses and plans (its plugins
//! build, its options are read), every `when` names axes and values the
//! matrix has.

use std::collections::BTreeMap;
use std::path::Path;

use results::campaign::{CellSummary, Expectation, Expected, RunRecord};
use serde::Deserialize;
use toml::{Table, Value};

use crate::error::{HarnessError, Result};
use crate::spec::TestSpec;

/// A campaign file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignFile {
    /// The campaign's name (its folder, and every run's `campaign` field).
    pub name: String,
    /// Runs per cell.
    #[serde(default = "one")]
    pub runs: u32,
    /// When set, every run's seed is derived from it (a campaign that
    /// replays exactly); otherwise each run gets a fresh random seed.
    #[serde(default)]
    pub seed: Option<u64>,
    /// The test every cell starts from.
    #[serde(default)]
    pub test: Table,
    /// The axes, in order.
    #[serde(default)]
    pub matrix: Table,
    /// Test fields for the cells that match.
    #[serde(default)]
    pub set: Vec<SetRule>,
    /// Expectations, first match wins.
    #[serde(default)]
    pub expect: Vec<ExpectRule>,
    /// Only the cells with every one of these `axis=value` words (what
    /// `--only` asked for, kept so a resumed campaign runs the same cells).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
}

fn one() -> u32 {
    1
}

/// `[[set]]`: test fields for the cells `when` matches.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRule {
    /// Axis → value or values; every key must match.
    #[serde(default)]
    pub when: Table,
    /// The fields, as in a test file.
    pub test: Table,
}

/// `[[expect]]`: the expectation of the cells `when` matches.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectRule {
    /// Axis → value or values; every key must match. Empty matches all.
    #[serde(default)]
    pub when: Table,
    /// `valid`, `invalid` or `any`.
    pub verdict: Expected,
    /// Anomaly kinds that must all appear.
    #[serde(default)]
    pub anomalies: Vec<String>,
    /// Verdicts expected of single checkers.
    #[serde(default)]
    pub checkers: BTreeMap<String, Expected>,
    /// Least detection rate of an expected-invalid cell.
    #[serde(default)]
    pub min_detection: Option<f64>,
    /// Why, for the page.
    #[serde(default)]
    pub because: String,
}

/// One cell: its axis values, its test and its expectation.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Axis → the value's text, in axis order.
    pub params: Vec<(String, String)>,
    /// The test (without a seed).
    pub spec: TestSpec,
    /// What it should show.
    pub expect: Expectation,
}

impl Cell {
    /// The folder its runs go to: the axis values joined by `-`.
    pub fn name(&self) -> String {
        self.spec.test_name()
    }

    /// `mode=async nemesis=kill`.
    pub fn id(&self) -> String {
        self.params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    }

    /// The cell as the summary keeps it, with `runs` planned runs.
    pub fn summary(&self, seeds: Vec<u64>) -> CellSummary {
        CellSummary {
            params: self.params.clone(),
            name: self.name(),
            expect: self.expect.clone(),
            runs: seeds.into_iter().map(RunRecord::planned).collect(),
            figures: Default::default(),
            status: results::campaign::CellStatus::Pending,
            reasons: Vec::new(),
        }
    }
}

impl CampaignFile {
    /// Reads a campaign file; errors name the file, line and field.
    pub fn from_file(path: &Path) -> Result<CampaignFile> {
        let text = std::fs::read_to_string(path).map_err(|e| HarnessError::io(path, e))?;
        CampaignFile::from_toml(&text, &path.display().to_string())
    }

    /// Parses campaign text read from `source`.
    pub fn from_toml(text: &str, source: &str) -> Result<CampaignFile> {
        let file: CampaignFile = results::spec::from_toml_text(text, source)?;
        if file.runs == 0 {
            return Err(HarnessError::spec(source, "runs", "must be at least 1"));
        }
        if file.name.trim().is_empty() {
            return Err(HarnessError::spec(source, "name", "a campaign needs a name"));
        }
        for (axis, values) in &file.matrix {
            match values {
                Value::Array(a) if !a.is_empty() => {}
                _ => {
                    return Err(HarnessError::spec(
                        source,
                        format!("matrix.{axis}"),
                        "an axis is a non-empty list of the values it takes",
                    ));
                }
            }
        }
        for (i, rule) in file.expect.iter().enumerate() {
            let e = rule.expectation();
            e.validate(&format!("{source} [[expect]] #{}", i + 1)).map_err(|err| {
                HarnessError::spec(source, format!("expect[{i}]"), err.to_string())
            })?;
            file.check_when(source, &format!("expect[{i}].when"), &rule.when)?;
        }
        for (i, rule) in file.set.iter().enumerate() {
            file.check_when(source, &format!("set[{i}].when"), &rule.when)?;
        }
        Ok(file)
    }

    /// The axes, in order.
    pub fn axes(&self) -> Vec<String> {
        self.matrix.keys().cloned().collect()
    }

    /// A `when` may only name axes, and only values they take.
    fn check_when(&self, source: &str, field: &str, when: &Table) -> Result<()> {
        for (axis, wanted) in when {
            let Some(Value::Array(values)) = self.matrix.get(axis) else {
                return Err(HarnessError::spec(
                    source,
                    format!("{field}.{axis}"),
                    format!("{axis:?} is not an axis of the matrix ({})", self.axes().join(", ")),
                ));
            };
            let texts: Vec<String> = values.iter().map(|v| value_text(axis, v)).collect();
            for w in wanted_texts(axis, wanted) {
                if !texts.contains(&w) {
                    return Err(HarnessError::spec(
                        source,
                        format!("{field}.{axis}"),
                        format!("{w:?} is not a value of axis {axis} ({})", texts.join(" | ")),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every cell, in matrix order (the last axis varies fastest).
    pub fn cells(&self, source: &str) -> Result<Vec<Cell>> {
        let axes: Vec<(&String, &Vec<Value>)> =
            self.matrix.iter().filter_map(|(k, v)| v.as_array().map(|a| (k, a))).collect();
        let mut combos: Vec<Vec<(&String, &Value)>> = vec![Vec::new()];
        for (axis, values) in &axes {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.push((*axis, v));
                        c
                    })
                })
                .collect();
        }
        let cells: Vec<Cell> =
            combos.into_iter().map(|combo| self.cell(source, &combo)).collect::<Result<_>>()?;
        if self.only.is_empty() {
            return Ok(cells);
        }
        let kept: Vec<Cell> = cells
            .into_iter()
            .filter(|c| {
                let words: Vec<String> = c.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                self.only.iter().all(|w| words.contains(w))
            })
            .collect();
        if kept.is_empty() {
            return Err(HarnessError::spec(
                source,
                "only",
                format!("no cell has {}", self.only.join(" and ")),
            ));
        }
        Ok(kept)
    }

    fn cell(&self, source: &str, combo: &[(&String, &Value)]) -> Result<Cell> {
        let params: Vec<(String, String)> =
            combo.iter().map(|(k, v)| ((*k).clone(), value_text(k, v))).collect();
        let mut table = self.test.clone();
        for (axis, value) in combo {
            set_field(&mut table, axis, value);
        }
        for rule in &self.set {
            if matches(&rule.when, &params) {
                for (k, v) in &rule.test {
                    set_field(&mut table, k, v);
                }
            }
        }
        let id = params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        let cell_source = format!("{source} (cell {id})");
        for fixed in ["seed", "store", "campaign"] {
            if table.contains_key(fixed) {
                return Err(HarnessError::spec(
                    &cell_source,
                    fixed,
                    "a campaign sets every run's seed, store and campaign itself",
                ));
            }
        }
        if !table.contains_key("name") {
            let name: Vec<&str> = params.iter().map(|(_, v)| v.as_str()).collect();
            table.insert("name".into(), Value::String(name.join("-")));
        }
        table.insert("campaign".into(), Value::String(self.name.clone()));
        let text = toml::to_string(&table)
            .map_err(|e| HarnessError::spec(&cell_source, "test", e.to_string()))?;
        let spec = TestSpec::from_toml(&text, &cell_source)?;
        let expect = self
            .expect
            .iter()
            .find(|r| matches(&r.when, &params))
            .map_or_else(Expectation::default, ExpectRule::expectation);
        Ok(Cell { params, spec, expect })
    }

    /// Sets a field of every cell's test from the command line's `--set
    /// FIELD=VALUE`; the value is TOML, and a bare word is a string.
    pub fn set_test_field(&mut self, kv: &str) -> Result<()> {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            HarnessError::spec("command line", "--set", format!("{kv:?} is not FIELD=VALUE"))
        })?;
        let value = toml::from_str::<Table>(&format!("v = {v}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(v.trim().to_owned()));
        self.test.insert(k.trim().to_owned(), value);
        Ok(())
    }

    /// The seed of run `run` of cell `cell`, when the file fixes a seed.
    pub fn derived_seed(&self, cell: usize, run: u32) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let base = self.seed?;
        // SipHash with fixed keys: the same file gives the same seeds on
        // every machine and version of Rust's standard library hasher API.
        #[allow(deprecated)]
        let mut h = std::hash::SipHasher::new_with_keys(0x6661_756c_746c_696e, base);
        (cell, run).hash(&mut h);
        Some(h.finish() & (i64::MAX as u64))
    }
}

impl ExpectRule {
    /// The expectation this rule gives.
    pub fn expectation(&self) -> Expectation {
        Expectation {
            verdict: self.verdict,
            anomalies: self.anomalies.clone(),
            checkers: self.checkers.clone(),
            min_detection: self.min_detection,
            because: self.because.clone(),
        }
    }
}

/// Sets test field `key` to an axis or rule value: option tables merge into
/// the options, and a string for a list field (`nemesis`, `checkers`,
/// `consistency_models`) is split at commas.
fn set_field(table: &mut Table, key: &str, value: &Value) {
    match (key, value) {
        ("options", Value::Table(t)) => {
            let options = table.entry("options").or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(o) = options {
                for (k, v) in t {
                    o.insert(k.clone(), v.clone());
                }
            }
        }
        ("nemesis" | "checkers" | "consistency_models", Value::String(s)) => {
            let list = s
                .split(',')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(|w| Value::String(w.to_owned()))
                .collect();
            table.insert(key.to_owned(), Value::Array(list));
        }
        _ => {
            table.insert(key.to_owned(), value.clone());
        }
    }
}

/// An axis value as text: strings as they are, lists joined by commas,
/// option tables as `k=v,k=v` (`defaults` when empty).
fn value_text(axis: &str, value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(|v| value_text(axis, v)).collect::<Vec<_>>().join(","),
        Value::Table(t) if t.is_empty() && axis == "options" => "defaults".to_owned(),
        Value::Table(t) => t
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(axis, v)))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// The values a `when` entry names (one, or a list).
fn wanted_texts(axis: &str, wanted: &Value) -> Vec<String> {
    match wanted {
        Value::Array(a) => a.iter().map(|v| value_text(axis, v)).collect(),
        other => vec![value_text(axis, other)],
    }
}

fn matches(when: &Table, params: &[(String, String)]) -> bool {
    when.iter().all(|(axis, wanted)| {
        params
            .iter()
            .find(|(k, _)| k == axis)
            .is_some_and(|(_, v)| wanted_texts(axis, wanted).contains(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
name = "t"
runs = 2
seed = 9
[test]
time_limit = 5
[matrix]
mode = ["raft", "async"]
nemesis = ["none", "partition,kill"]
options = [{}, { kill_targets = "primaries" }]
[[set]]
when = { mode = "async" }
test = { workload = "list-append" }
[[expect]]
when = { mode = "raft" }
verdict = "valid"
[[expect]]
when = { mode = "async", nemesis = "partition,kill" }
verdict = "invalid"
anomalies = ["G-single"]
min_detection = 0.9
"#;

    #[test]
    fn the_matrix_expands_in_order_with_rules_applied() {
        let f = CampaignFile::from_toml(FILE, "c.toml").expect("parse");
        assert_eq!(f.axes(), ["mode", "nemesis", "options"]);
        let cells = f.cells("c.toml").expect("cells");
        assert_eq!(cells.len(), 8);
        let ids: Vec<String> = cells.iter().map(Cell::id).collect();
        assert_eq!(ids[0], "mode=raft nemesis=none options=defaults");
        assert_eq!(ids[7], "mode=async nemesis=partition,kill options=kill_targets=primaries");
        let last = &cells[7];
        assert_eq!(last.spec.workload, "list-append");
        assert_eq!(last.spec.nemesis, ["partition", "kill"]);
        assert_eq!(last.spec.options.get("kill_targets").map(String::as_str), Some("primaries"));
        assert_eq!(last.spec.time_limit, 5.0);
        assert_eq!(last.spec.campaign, "t");
        assert_eq!(last.expect.verdict, Expected::Invalid);
        assert_eq!(last.expect.min_detection, Some(0.9));
        assert_eq!(cells[0].spec.workload, "register");
        assert_eq!(cells[0].expect.verdict, Expected::Valid);
        // async without faults: no rule, so either verdict is fine.
        assert_eq!(cells[4].expect.verdict, Expected::Any);
        assert_eq!(cells[4].name(), "async-none-defaults");
        assert_eq!(f.derived_seed(3, 1), f.derived_seed(3, 1));
        assert_ne!(f.derived_seed(3, 1), f.derived_seed(3, 0));
        // `only` keeps the cells with every word, and the expectations that
        // name other cells still parse.
        let only = FILE.replace("runs = 2", "runs = 2\nonly = [\"mode=async\", \"nemesis=none\"]");
        let f = CampaignFile::from_toml(&only, "c.toml").expect("parse");
        let ids: Vec<String> = f.cells("c.toml").expect("cells").iter().map(Cell::id).collect();
        assert_eq!(
            ids,
            [
                "mode=async nemesis=none options=defaults",
                "mode=async nemesis=none options=kill_targets=primaries"
            ]
        );
    }

    #[test]
    fn mistakes_are_named() {
        let bad = FILE.replace("when = { mode = \"raft\" }", "when = { mood = \"raft\" }");
        let err = CampaignFile::from_toml(&bad, "c.toml").expect_err("axis").to_string();
        assert!(err.contains("expect[0].when.mood") && err.contains("not an axis"), "{err}");
        let bad = FILE.replace("when = { mode = \"raft\" }", "when = { mode = \"rafft\" }");
        let err = CampaignFile::from_toml(&bad, "c.toml").expect_err("value").to_string();
        assert!(err.contains("\"rafft\" is not a value of axis mode"), "{err}");
        let bad = FILE.replace("time_limit = 5", "time_limt = 5");
        let f = CampaignFile::from_toml(&bad, "c.toml").expect("parses; the test is read later");
        let err = f.cells("c.toml").expect_err("field").to_string();
        assert!(err.contains("cell mode=raft nemesis=none") && err.contains("time_limt"), "{err}");
        let bad = FILE.replace("runs = 2", "runs = 2\nrunz = 3");
        let err = CampaignFile::from_toml(&bad, "c.toml").expect_err("unknown").to_string();
        assert!(err.contains("c.toml:4") && err.contains("runz"), "{err}");
        let bad = FILE.replace("min_detection = 0.9", "min_detection = 1.5");
        let err = CampaignFile::from_toml(&bad, "c.toml").expect_err("rate").to_string();
        assert!(err.contains("min_detection"), "{err}");
    }
}
