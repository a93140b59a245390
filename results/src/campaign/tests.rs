//! Judging runs and cells against expectations, the figures, detection
//! times, and the summary page.

use super::*;
use checkers::{Anomaly, Op, Process, Value};

fn op(index: u64, time_ms: u64, process: u64, kind: OpType, f: &str) -> Op {
    let mut o = Op::new(index, Process::Client(process), kind, f, Value::Nil);
    o.time = Some(time_ms * 1_000_000);
    o
}

fn anomaly(kind: &str, ops: Vec<u64>) -> Anomaly {
    Anomaly { kind: kind.into(), explanation: "test".into(), ops, data: serde_json::Value::Null }
}

fn expect(verdict: Expected, anomalies: &[&str]) -> Expectation {
    Expectation {
        verdict,
        anomalies: anomalies.iter().map(|s| (*s).to_owned()).collect(),
        ..Expectation::default()
    }
}

fn done(validity: Validity, anomalies: &[&str], detection_s: Option<f64>) -> RunRecord {
    let mut r = RunRecord::planned(7);
    r.state = RunState::Done;
    r.validity = Some(validity);
    r.checkers.insert("linearizable".into(), validity);
    for a in anomalies {
        r.anomalies.insert((*a).to_owned(), 1);
    }
    r.detection_s = detection_s;
    r
}

fn cell(expect: Expectation, runs: Vec<RunRecord>) -> CellSummary {
    let mut c = CellSummary {
        params: vec![("mode".into(), "async".into()), ("nemesis".into(), "kill".into())],
        name: "async-kill".into(),
        expect,
        runs,
        figures: Figures::default(),
        status: CellStatus::Pending,
        reasons: Vec::new(),
    };
    c.judge();
    c
}

#[test]
fn wilson_interval_matches_known_values() {
    // 10 of 10: the lower bound is 0.722 (a classic textbook value).
    let (lo, hi) = wilson_interval(10, 10);
    assert!((lo - 0.7225).abs() < 1e-3 && hi == 1.0, "{lo} {hi}");
    let (lo, hi) = wilson_interval(0, 30);
    assert!(lo == 0.0 && (hi - 0.1135).abs() < 1e-3, "{lo} {hi}");
    let (lo, hi) = wilson_interval(5, 10);
    assert!((lo - 0.2366).abs() < 1e-3 && (hi - 0.7634).abs() < 1e-3, "{lo} {hi}");
    assert_eq!(wilson_interval(0, 0), (0.0, 1.0));
}

#[test]
fn median_of_odd_and_even_counts() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[1.0, 2.0, 9.0]), Some(2.0));
    assert_eq!(median(&[1.0, 2.0, 4.0, 9.0]), Some(3.0));
}

#[test]
fn anomaly_kinds_match_with_or_without_their_checker() {
    assert!(anomaly_matches("linearizable:nonlinearizable", "nonlinearizable"));
    assert!(anomaly_matches("linearizable:nonlinearizable", "linearizable:nonlinearizable"));
    assert!(!anomaly_matches("linearizable:nonlinearizable", "elle:nonlinearizable"));
    assert!(!anomaly_matches("list-append:G1c", "G-single"));
}

#[test]
fn a_valid_cell_is_broken_by_one_false_alarm_and_by_undecided_runs() {
    let e = expect(Expected::Valid, &[]);
    let ok = cell(e.clone(), vec![done(Validity::Valid, &[], None); 3]);
    assert_eq!(ok.status, CellStatus::Met);
    assert_eq!((ok.figures.clean, ok.figures.false_alarms), (3, 0));
    let mut runs = vec![done(Validity::Valid, &[], None); 2];
    runs.push(done(Validity::Invalid, &["linearizable:nonlinearizable"], Some(1.0)));
    let alarm = cell(e.clone(), runs);
    assert_eq!(alarm.status, CellStatus::Broken);
    assert_eq!(alarm.figures.false_alarms, 1);
    assert!(alarm.reasons[0].contains("1 of 3 runs found a violation"), "{:?}", alarm.reasons);
    let undecided = cell(e, vec![done(Validity::Unknown, &[], None)]);
    assert_eq!(undecided.status, CellStatus::Broken);
    assert!(undecided.reasons[0].contains("undecided"), "{:?}", undecided.reasons);
}

#[test]
fn an_invalid_cell_needs_its_kinds_at_the_required_rate() {
    let e = Expectation { min_detection: Some(0.6), ..expect(Expected::Invalid, &["lost-write"]) };
    let hit = || done(Validity::Invalid, &["convergence:lost-write"], Some(4.0));
    let other = done(Validity::Invalid, &["linearizable:nonlinearizable"], Some(1.0));
    let miss = done(Validity::Valid, &[], None);
    let c = cell(e.clone(), vec![hit(), hit(), other.clone(), miss.clone()]);
    // Two of four showed the kind asked for: 50 % < 60 %.
    assert_eq!(c.figures.detected, 2);
    assert_eq!(c.status, CellStatus::Broken);
    assert!(c.reasons[0].contains("detected in 2 of 4 runs (50 %)"), "{:?}", c.reasons);
    let c = cell(e, vec![hit(), hit(), hit(), other, RunRecord::planned(9)]);
    assert_eq!(c.figures.detected, 3);
    assert_eq!(c.figures.detection_median_s, Some(4.0));
    // 3 of 4 is above 60 %, but one run is still planned.
    assert_eq!(c.status, CellStatus::Pending);
}

#[test]
fn interrupted_runs_are_not_counted_and_failed_runs_are_misses() {
    let e = expect(Expected::Invalid, &[]);
    let mut interrupted = done(Validity::Valid, &[], None);
    interrupted.state = RunState::Interrupted;
    let mut failed = RunRecord::planned(3);
    failed.state = RunState::Failed;
    failed.error = Some("node n1 did not start".into());
    let c = cell(e, vec![done(Validity::Invalid, &["x:y"], Some(2.0)), interrupted, failed]);
    assert_eq!(c.figures.completed, 2);
    assert_eq!((c.figures.detected, c.figures.errors), (1, 1));
    assert_eq!(c.status, CellStatus::Broken);
}

#[test]
fn checker_expectations_turn_a_finding_into_a_false_alarm() {
    // causal: linearizability must fail, the causal checker must pass.
    let mut e = expect(Expected::Invalid, &[]);
    e.checkers.insert("causal".into(), Expected::Valid);
    let mut r = done(Validity::Invalid, &["linearizable:nonlinearizable"], Some(1.0));
    r.checkers.insert("causal".into(), Validity::Valid);
    assert_eq!(r.outcome(&e), Some(RunOutcome::Detected));
    r.checkers.insert("causal".into(), Validity::Invalid);
    assert_eq!(r.outcome(&e), Some(RunOutcome::FalseAlarm));
}

#[test]
fn detection_time_is_when_the_evidence_of_the_first_anomaly_was_complete() {
    let history = History::new(vec![
        op(0, 100, 0, OpType::Invoke, "write"),
        op(1, 200, 0, OpType::Ok, "write"),
        op(2, 900, 1, OpType::Invoke, "read"),
        op(3, 1500, 1, OpType::Ok, "read"),
        op(4, 3000, 2, OpType::Invoke, "read"),
        op(5, 3100, 2, OpType::Ok, "read"),
    ]);
    let mut v = Verdict::new("linearizable", Validity::Invalid, "x");
    // Names the write's completion and the read's invocation: evident when
    // the read completed, at 1.5 s.
    v.anomalies.push(anomaly("nonlinearizable", vec![1, 2]));
    v.anomalies.push(anomaly("stale-read", vec![0, 5]));
    assert_eq!(detection_time_s(&history, &[&v], &[]), Some(1.5));
    // Only the kind asked for counts.
    assert_eq!(detection_time_s(&history, &[&v], &["stale-read".into()]), Some(3.1));
    assert_eq!(detection_time_s(&history, &[&v], &["G1c".into()]), None);
}

#[test]
fn summary_round_trips_and_the_page_shows_every_cell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut valid = cell(expect(Expected::Valid, &[]), vec![done(Validity::Valid, &[], None)]);
    valid.params = vec![("mode".into(), "raft".into()), ("nemesis".into(), "kill".into())];
    valid.runs[0].dir = Some("raft-kill/20261205T000000.000Z".into());
    let invalid = cell(
        expect(Expected::Invalid, &["nonlinearizable"]),
        vec![done(Validity::Invalid, &["linearizable:nonlinearizable"], Some(2.5))],
    );
    let mut s = CampaignSummary::new(
        "seed-matrix",
        vec!["mode".into(), "nemesis".into()],
        vec![valid, invalid],
    );
    s.write(dir.path()).expect("write");
    let back = CampaignSummary::read(dir.path()).expect("read");
    assert_eq!(back, s);
    assert_eq!(back.counts(), (2, 0, 0));
    let html = std::fs::read_to_string(dir.path().join(SUMMARY_HTML)).expect("html");
    assert!(html.contains("<td class=\"met-valid\""), "{html}");
    assert!(html.contains("<td class=\"met-invalid\""), "{html}");
    assert!(html.contains("href=\"raft-kill/20261205T000000.000Z/report.html\""), "{html}");
    assert!(html.contains("time to detection: median 2.5 s"), "{html}");
    std::fs::write(dir.path().join(SUMMARY_JSON), "{\"format\": \"other\"").expect("write");
    let err = CampaignSummary::read(dir.path()).expect_err("bad").to_string();
    assert!(err.contains("summary.json"), "{err}");
}
