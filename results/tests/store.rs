//! The store: listing runs, writing and reading `results.json`, and reading
//! files written by other versions.

use std::path::Path;

use checkers::Validity;
use results::run_results::HistorySummary;
use results::{CheckResult, RunResults, Store, StoreError};

use crate::common::{ReadsWritten, make_run, register_history, spec, with_phantom_read};

fn check(history: &checkers::History) -> CheckResult {
    use checkers::Checker;
    CheckResult {
        spec: checkers::registry::CheckSpec::new("reads-written"),
        verdict: ReadsWritten.check(history).expect("check"),
    }
}

#[test]
fn lists_runs_newest_first_with_verdicts_and_skips_latest_links() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let h = register_history(400, 3, 7);
    let bad = with_phantom_read(&h);
    let a = make_run(root, "reg", "20260101T000000Z", &h, &spec("reg", 7));
    let b = make_run(root, "reg", "20260102T000000Z", &bad, &spec("reg", 8));
    let c = make_run(root, "other", "20260103T000000Z", &h, &spec("other", 9));
    results::finish_run(&a, &h, vec![check(&h)], &crate::common::plugins()).expect("finish a");
    results::finish_run(&b, &bad, vec![check(&bad)], &crate::common::plugins()).expect("finish b");
    // c crashed before checking: no results.json.
    std::os::unix::fs::symlink(&b, root.join("reg/latest")).expect("symlink");
    std::os::unix::fs::symlink(&c, root.join("latest")).expect("symlink");

    let runs = Store::new(root).list().expect("list");
    let got: Vec<(&str, &str, &str)> =
        runs.iter().map(|r| (r.name.as_str(), r.timestamp.as_str(), r.status())).collect();
    assert_eq!(
        got,
        vec![
            ("other", "20260103T000000Z", "unchecked"),
            ("reg", "20260102T000000Z", "invalid"),
            ("reg", "20260101T000000Z", "valid"),
        ]
    );
    let reg = &runs[1];
    assert_eq!(reg.workload.as_deref(), Some("register"));
    assert_eq!(reg.target.as_deref(), Some("refstore raft"));
    assert_eq!(reg.faults, vec!["partition", "kill"]);
    assert_eq!(reg.seed.as_deref(), Some("8"));
    assert_eq!(reg.checks, vec![("reads-written".to_owned(), Validity::Invalid)]);
    assert!(reg.operations.expect("counts").ok > 0);
}

#[test]
fn a_corrupt_results_file_is_listed_with_the_problem_not_fatal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = register_history(50, 2, 1);
    let dir = make_run(tmp.path(), "t", "1", &h, &spec("t", 1));
    std::fs::write(
        dir.join("results.json"),
        "{\"format\":\"faultline-results\",\"version\":1,\n\"validity\":\"maybe\"}",
    )
    .expect("write");
    let runs = Store::new(tmp.path()).list().expect("list");
    let problem = runs[0].problem.as_deref().expect("problem");
    assert!(problem.contains("results.json:2:"), "{problem}");
    assert!(problem.contains("maybe"), "{problem}");
}

#[test]
fn results_written_by_version_1_still_read() {
    // Checked in as written by the first faultline that wrote results.json;
    // if this stops parsing, bump RESULTS_VERSION and keep reading v1.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/results-v1.json");
    let r = RunResults::read(&path).expect("read").expect("present");
    assert_eq!(r.version, 1);
    assert_eq!(r.validity, Some(Validity::Invalid));
    assert_eq!(r.checks.len(), 1);
    let v = &r.checks[0].verdict;
    assert_eq!(v.checker, "reads-written");
    assert_eq!(v.anomalies[0].kind, "phantom-read");
    assert_eq!(v.anomalies[0].ops, vec![6, 7]);
    assert_eq!(r.history.outcomes.ok, 3);
    assert_eq!(r.history.faults.get("partition"), Some(&1));
}

#[test]
fn a_newer_results_version_is_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = tmp.path().join("results.json");
    let mut r = RunResults::with_summary(HistorySummary::default(), Vec::new());
    r.version = results::RESULTS_VERSION + 1;
    std::fs::write(&p, r.to_json()).expect("write");
    let err = RunResults::read(&p).expect_err("newer");
    assert!(matches!(err, StoreError::UnsupportedVersion { .. }), "{err}");
    assert!(err.to_string().contains("use a newer faultline"), "{err}");
}

#[test]
fn run_paths_cannot_escape_the_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = register_history(20, 1, 3);
    make_run(tmp.path(), "t", "1", &h, &spec("t", 3));
    let store = Store::new(tmp.path());
    assert!(store.run_dir("t", "1").is_some());
    assert!(store.run_dir("..", "t").is_none());
    assert!(store.run_dir("t", "../t/1").is_none());
    assert!(store.run_dir("t", "2").is_none());
}

#[test]
fn opening_through_a_latest_link_names_the_real_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = register_history(20, 1, 3);
    let dir = make_run(tmp.path(), "t", "20260101T1", &h, &spec("t", 3));
    std::os::unix::fs::symlink(&dir, tmp.path().join("t/latest")).expect("symlink");
    let run = results::Run::open(&tmp.path().join("t/latest")).expect("open");
    assert_eq!((run.name.as_str(), run.timestamp.as_str()), ("t", "20260101T1"));
    assert_eq!(run.history().expect("history").len(), 20);
    assert_eq!(run.node_logs().len(), 2);
    assert_eq!(run.node_logs()[0].files, vec![("nodes/n1/refstore.log".to_owned(), 12)]);
    let err = results::Run::open(tmp.path()).expect_err("not a run");
    assert!(err.to_string().contains("not a run directory"), "{err}");
}

#[test]
fn an_interrupted_run_is_never_valid_and_says_so() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let h = register_history(400, 3, 7);
    let bad = with_phantom_read(&h);
    let why = "Ctrl-C after 3.2 s of a 30 s test";
    let cut = make_run(root, "reg", "20260101T000000Z", &h, &spec("reg", 7));
    let cut_bad = make_run(root, "reg", "20260102T000000Z", &bad, &spec("reg", 8));
    let whole = make_run(root, "reg", "20260103T000000Z", &h, &spec("reg", 9));
    for dir in [&cut, &cut_bad] {
        results::RunDir::open(dir).expect("open").mark_interrupted(why).expect("mark");
    }
    for (dir, hist) in [(&cut, &h), (&cut_bad, &bad), (&whole, &h)] {
        results::finish_run(dir, hist, vec![check(hist)], &crate::common::plugins())
            .expect("finish");
    }
    let read =
        |dir: &Path| RunResults::read(&dir.join("results.json")).expect("read").expect("present");

    // Nothing found in a run cut short is unknown, though its check stays valid.
    let r = read(&cut);
    assert_eq!(r.validity, Some(Validity::Unknown));
    assert_eq!(r.checks[0].verdict.validity, Validity::Valid);
    assert_eq!(r.interrupted.as_deref(), Some(why));
    // What an interrupted run found is real.
    let r = read(&cut_bad);
    assert_eq!(r.validity, Some(Validity::Invalid));
    assert_eq!(r.interrupted.as_deref(), Some(why));
    // A whole run does not carry the field at all (same format version).
    let r = read(&whole);
    assert_eq!((r.validity, r.interrupted), (Some(Validity::Valid), None));
    let text = std::fs::read_to_string(whole.join("results.json")).expect("text");
    assert!(!text.contains("interrupted"), "{text}");

    // The report says it, and so does the store's listing.
    let report = std::fs::read_to_string(cut.join("report.html")).expect("report");
    assert!(report.contains("id=\"interrupted\"") && report.contains(why), "interrupted badge");
    let runs = Store::new(root).list().expect("list");
    let got: Vec<(&str, &str, Option<&str>)> =
        runs.iter().map(|r| (r.timestamp.as_str(), r.status(), r.interrupted.as_deref())).collect();
    assert_eq!(
        got,
        vec![
            ("20260103T000000Z", "valid", None),
            ("20260102T000000Z", "invalid", Some(why)),
            ("20260101T000000Z", "unknown", Some(why)),
        ]
    );
}
