//! A campaign's matrix in the simulation: cells judged by the campaign's
//! rules, cells the simulation cannot honour listed rather than run, a broken expectation
//! reported as broken.

use std::path::Path;

use results::campaign::RunOutcome;
use sim::matrix::{MatrixOptions, read_campaign, run_matrix, table};

use crate::registry;

const CAMPAIGN: &str = r#"
name = "sim-matrix-test"
[test]
time_limit = 3
rate = 100
nemesis_interval = 0.5
recovery = 2
[matrix]
mode = ["raft", "async"]
nemesis = ["kill", "clock"]
# Clocks moved by libfaketime: an option the simulation cannot honour.
[[set]]
when = { nemesis = "clock" }
test = { options = { clock = "faketime" } }
[[set]]
when = { mode = "async" }
test = { workload = "set" }
[[expect]]
when = { mode = "raft" }
verdict = "valid"
[[expect]]
when = { mode = "async", nemesis = "kill" }
verdict = "invalid"
anomalies = ["set-full:lost"]
min_detection = 0.5
"#;

fn run(dir: &Path, text: &str, only: &[&str]) -> Vec<sim::matrix::CellResult> {
    let path = dir.join("campaign.toml");
    std::fs::write(&path, text).expect("writes the campaign");
    let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
    let file = read_campaign(&path, &[], &only).expect("reads the campaign");
    let opts = MatrixOptions { first: 1, count: 10, parallel: 2, store: None, replay: None };
    run_matrix(&file, "campaign.toml", &sim::WorldConfig::default(), &registry(), &opts, &|_| {})
        .expect("runs the matrix")
}

#[test]
fn cells_meet_their_expectations_and_cells_not_simulated_are_listed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cells = run(dir.path(), CAMPAIGN, &[]);
    let text = table(&cells, 10);
    let status: Vec<(&str, &str)> = cells.iter().map(|c| (c.id.as_str(), c.status())).collect();
    assert_eq!(
        status,
        [
            ("mode=raft nemesis=kill", "met"),
            ("mode=raft nemesis=clock", "not simulated"),
            ("mode=async nemesis=kill", "met"),
            ("mode=async nemesis=clock", "not simulated"),
        ],
        "{text}"
    );
    let async_kill = cells[2].summary.as_ref().expect("simulated");
    assert_eq!(async_kill.figures.completed, 10, "{text}");
    assert!(async_kill.figures.detected >= 5, "{text}");
    assert!(text.contains("options.clock: simulated clocks are set by the world"), "{text}");
}

#[test]
fn a_cell_whose_expectation_fails_is_broken_and_names_its_first_seed() {
    // async under kills loses writes, so expecting it valid must break.
    let wrong =
        CAMPAIGN.replace("when = { mode = \"raft\" }", "when = { mode = [\"raft\", \"async\"] }");
    let dir = tempfile::tempdir().expect("temp dir");
    let cells = run(dir.path(), &wrong, &["mode=async", "nemesis=kill"]);
    assert_eq!(cells.len(), 1);
    let c = &cells[0];
    assert_eq!(c.status(), "broken", "{}", table(&cells, 10));
    let (seed, outcome) = c.first_unexpected.expect("an unexpected seed");
    assert_eq!(outcome, RunOutcome::FalseAlarm);
    let s = c.summary.as_ref().expect("simulated");
    let first_alarm = s
        .runs
        .iter()
        .find(|r| r.outcome(&s.expect) == Some(RunOutcome::FalseAlarm))
        .map(|r| r.seed);
    assert_eq!(first_alarm, Some(seed));
    assert!(
        s.reasons[0].contains("found a violation where the promise says none"),
        "{:?}",
        s.reasons
    );
}
