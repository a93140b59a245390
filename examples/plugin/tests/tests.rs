//! The example plugins are first-class: the plugin checker and the plugin
//! linearizability model work from `faultline-plugins check` (alone and in
//! a `compose`), and a `test` run of the plugin workload is judged by the
//! plugin checker, stored in `results.json` and drawn in `report.html`.

use std::path::Path;
use std::process::{Command, Output};

fn plugins(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline-plugins"))
        .args(args)
        .output()
        .expect("faultline-plugins runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write history");
    path.display().to_string()
}

/// Two pushes, then pops that see them in stack order (valid), or in queue
/// order (invalid: 1 cannot come off before 2).
fn stack_history(first_pop: i64, second_pop: i64) -> String {
    format!(
        "{{:process 0, :type :invoke, :f :push, :value 1}}\n\
         {{:process 0, :type :ok, :f :push, :value 1}}\n\
         {{:process 0, :type :invoke, :f :push, :value 2}}\n\
         {{:process 0, :type :ok, :f :push, :value 2}}\n\
         {{:process 1, :type :invoke, :f :pop, :value nil}}\n\
         {{:process 1, :type :ok, :f :pop, :value {first_pop}}}\n\
         {{:process 1, :type :invoke, :f :pop, :value nil}}\n\
         {{:process 1, :type :ok, :f :pop, :value {second_pop}}}\n"
    )
}

#[test]
fn the_plugin_model_checks_a_stack_with_evidence_and_a_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(dir.path(), "good.edn", &stack_history(2, 1));
    let o = plugins(&["check", "--checker", "bounded-stack", &good]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains("model bounded-stack"), "{}", text(&o.stdout));

    let bad = write(dir.path(), "bad.edn", &stack_history(1, 2));
    let page = dir.path().join("bad.html");
    let o = plugins(&["check", "-c", "bounded-stack", "--html", &page.display().to_string(), &bad]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(out.contains("[nonlinearizable]"), "{out}");
    assert!(out.contains("(top last)"), "the model's own words for its states: {out}");
    let html = std::fs::read_to_string(&page).expect("the page");
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"), "{html}");

    // A capacity of one makes the second push impossible.
    let o = plugins(&["check", "-c", "bounded-stack", "--opt", "capacity=1", &good]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    // And the plugin's checkers refuse what they do not read, like any other.
    let o = plugins(&["check", "-c", "bounded-stack", "--opt", "size=1", &good]);
    assert_eq!(o.status.code(), Some(254));
    assert!(text(&o.stderr).contains("unknown option \"size\""), "{}", text(&o.stderr));
}

#[test]
fn the_plugin_checker_works_alone_and_composed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let phantom = write(
        dir.path(),
        "phantom.edn",
        "{:process 0, :type :invoke, :f :write, :key 1, :value 5}\n\
         {:process 0, :type :ok, :f :write, :key 1, :value 5}\n\
         {:process 1, :type :invoke, :f :read, :key 1, :value nil}\n\
         {:process 1, :type :ok, :f :read, :key 1, :value 6}\n",
    );
    let o = plugins(&["check", "-c", "no-phantom-reads", &phantom]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("no operation ever wrote that value"), "{}", text(&o.stdout));
    let o =
        plugins(&["check", "-c", "compose", "--opt", "checkers=no-phantom-reads,stats", &phantom]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(out.contains("no-phantom-reads: invalid") && out.contains("stats: valid"), "{out}");
    let o = plugins(&["check", "--list"]);
    assert!(text(&o.stdout).contains("no-phantom-reads"));
    assert!(text(&o.stdout).contains("bounded-stack"));
}

#[test]
fn a_test_of_the_plugin_workload_is_judged_stored_and_drawn() {
    let store = tempfile::tempdir().expect("tempdir");
    let o = plugins(&[
        "test",
        "--workload",
        "unique-writes",
        "--nemesis",
        "none",
        "--nodes",
        "3",
        "--time-limit",
        "3",
        "--no-progress",
        "--store",
        &store.path().display().to_string(),
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("no-phantom-reads: valid"), "{out}");
    let run = std::fs::canonicalize(store.path().join("latest")).expect("latest run");
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).expect("results"))
            .expect("json");
    assert_eq!(results["checks"][0]["spec"]["checker"], "no-phantom-reads");
    assert_eq!(results["checks"][0]["verdict"]["validity"], "valid");
    let report = std::fs::read_to_string(run.join("report.html")).expect("report");
    assert!(report.contains("no-phantom-reads"), "the report shows the plugin's verdict");

    // analyze and report find the plugin checker too: a read of a value
    // nobody wrote, added to the recorded history, is judged by it and
    // drawn on its own page of the report.
    let history = run.join("history.jsonl");
    let mut text_h = std::fs::read_to_string(&history).expect("history");
    text_h.push_str(
        "{\"process\":900,\"type\":\"invoke\",\"f\":\"read\",\"key\":0,\"value\":null}\n\
         {\"process\":900,\"type\":\"ok\",\"f\":\"read\",\"key\":0,\"value\":-42}\n",
    );
    std::fs::write(&history, text_h).expect("history");
    let o = plugins(&["analyze", &run.display().to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    let report = std::fs::read_to_string(run.join("report.html")).expect("report");
    assert!(report.contains("class=\"phantom-reads\""), "the plugin's own page is in the report");
    assert!(report.contains("read -42 from key 0"), "with its evidence");
    std::fs::remove_file(run.join("report.html")).expect("rm");
    let o = plugins(&["report", &run.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let again = std::fs::read_to_string(run.join("report.html")).expect("report");
    assert!(again.contains("class=\"phantom-reads\""), "report redraws the plugin's page");
}
