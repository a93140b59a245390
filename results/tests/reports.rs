//! Reports for valid, invalid and unknown runs: of the built-in checkers, of
//! a plugin checker (drawing its own pages), and of checkers this build does
//! not know (drawn from the verdict's data).

use std::path::Path;

use base64::Engine;
use checkers::registry::{CheckSpec, CheckerTable};
use checkers::{Anomaly, Checker, History, Validity, Verdict};
use results::{CheckResult, RunResults};

use crate::common::{ReadsWritten, make_run, plugins, register_history, spec, with_phantom_read};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).expect("read report")
}

/// The JSON blob the timeline script reads.
fn timeline_data(html: &str) -> serde_json::Value {
    let start =
        html.find("id=\"timeline-data\">").expect("timeline data") + "id=\"timeline-data\">".len();
    let end = start + html[start..].find("</script>").expect("end of data");
    serde_json::from_str(&html[start..end]).expect("timeline json")
}

fn column_u32(d: &serde_json::Value, name: &str) -> Vec<u32> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(d[name].as_str().expect("column"))
        .expect("b64");
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn plugin_check(history: &History) -> CheckResult {
    CheckResult {
        spec: checkers::registry::CheckSpec::new("reads-written"),
        verdict: ReadsWritten.check(history).expect("check"),
    }
}

#[test]
fn plugin_checker_reports_valid_invalid_and_unknown_runs() {
    let seed = 11;
    eprintln!("history seed {seed}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let valid = register_history(2_000, 4, seed);
    let invalid = with_phantom_read(&valid);
    // Only writes: nothing to judge.
    let unknown = History::from_ops_renumbered(
        valid.ops().iter().filter(|o| o.f != "read").cloned().collect(),
    );
    for (name, h, want) in [
        ("valid", &valid, Validity::Valid),
        ("invalid", &invalid, Validity::Invalid),
        ("unknown", &unknown, Validity::Unknown),
    ] {
        let dir = make_run(tmp.path(), name, "20260101T000000Z", h, &spec(name, seed));
        let written =
            results::finish_run(&dir, h, vec![plugin_check(h)], &plugins()).expect("finish");
        assert!(written.warnings.is_empty(), "{:?}", written.warnings);
        let html = read(&written.report);
        let badge = format!("<span class=\"badge {want}\" id=\"overall-verdict\">{want}</span>");
        assert!(html.contains(&badge), "{name}: no overall verdict {want}");
        assert!(
            html.contains("<code id=\"replay\">faultline test -f "),
            "{name}: no replay command"
        );
        assert!(html.contains("<td>seed</td><td>11</td>"), "{name}: no seed");
        assert!(html.contains("href=\"nodes/n1/refstore.log\""), "{name}: node log not linked");
        assert!(
            html.contains("<canvas>") && html.contains("id=\"timeline-data\""),
            "{name}: no timeline"
        );
        assert!(
            html.contains("class=\"plot latency\"") && html.contains("class=\"plot throughput\"")
        );
        match want {
            Validity::Invalid => {
                assert!(html.contains("no operation ever wrote 99"), "explanation missing");
                let last = h.len() as u64 - 1;
                assert!(html.contains(&format!("href=\"#op-{last}\"")), "op link missing");
                assert!(html.contains("Phantom reads — drawn by the reads-written checker"));
                assert!(
                    html.contains("<li>phantom value &quot;99&quot;"),
                    "checker page body missing"
                );
                let d = timeline_data(&html);
                assert_eq!(
                    d["refs"][last.to_string()],
                    serde_json::json!(d["n"].as_u64().expect("n") - 1)
                );
            }
            Validity::Unknown => {
                assert!(html.contains("<b>Why unknown:</b> the history has no successful reads"));
            }
            Validity::Valid => assert!(html.contains("No checker found a violation.")),
        }
        let back = RunResults::read(&dir.join("results.json")).expect("read").expect("present");
        assert_eq!(back.validity, Some(want));
    }
}

/// Every built-in checker, with verdicts of each kind: the report embeds the
/// checker's own pages, and a checker that cannot draw a verdict it did not
/// produce costs only its picture.
#[test]
fn builtin_checkers_render_valid_invalid_and_unknown_verdicts() {
    let table = CheckerTable::builtin();
    let names = table.names();
    assert!(names.len() >= 16, "the built-in checker table holds {names:?}");
    let h = with_phantom_read(&register_history(300, 3, 5));
    let last = h.len() as u64 - 1;
    let mut rendered = 0;
    for name in &names {
        for validity in [Validity::Valid, Validity::Invalid, Validity::Unknown] {
            let mut v = Verdict::new(*name, validity, format!("{name} says {validity}"));
            match validity {
                Validity::Invalid => v.anomalies.push(Anomaly {
                    kind: "test-anomaly".into(),
                    explanation: format!("{name}: op {last} saw a value nobody wrote"),
                    ops: vec![last - 1, last],
                    data: serde_json::Value::Null,
                }),
                Validity::Unknown => v.unknown_reason = Some("the time budget ran out".into()),
                Validity::Valid => {}
            }
            let r = RunResults::new(&h, vec![CheckResult::new(&builtin_spec(name), v)]);
            let html = render(&h, &r);
            assert!(
                html.contains(&format!("id=\"overall-verdict\">{validity}<")),
                "{name} {validity}"
            );
            if validity == Validity::Invalid {
                assert!(html.contains(&format!("{name}: op {last} saw a value nobody wrote")));
                assert!(html.contains(&format!("href=\"#op-{last}\"")));
            }
            if validity == Validity::Unknown {
                assert!(html.contains("the time budget ran out"));
            }
            rendered += 1;
        }
    }
    assert_eq!(rendered, names.len() * 3);
}

fn render(h: &History, r: &RunResults) -> String {
    let input = results::report::ReportInput {
        name: "t",
        timestamp: "1",
        spec: None,
        spec_path: "t/1/test.toml".into(),
        replay: None,
        history: Some(h),
        results: Some(r),
        problems: Vec::new(),
        node_logs: &[],
        run_files: Vec::new(),
        checkers: &checkers::registry::CheckerTable::builtin(),
    };
    results::report::render(&input)
}

#[test]
fn verdicts_of_checkers_this_build_lacks_are_drawn_from_their_data() {
    let h = with_phantom_read(&register_history(100, 2, 9));
    let mut v =
        Verdict::new("elle-from-the-future", Validity::Invalid, "1 G1c cycle, 2 lost elements");
    v.anomalies.push(Anomaly {
        kind: "G1c".into(),
        explanation: "T3 wrote x after T7 read it, and T7 wrote y that T3 read: a cycle.".into(),
        ops: vec![3, 7],
        data: serde_json::json!({"cycle": [{"from": 3, "to": 7, "type": "wr"}, {"from": 7, "to": 3, "type": "ww"}]}),
    });
    v.anomalies.push(Anomaly {
        kind: "lost".into(),
        explanation: "2 acknowledged elements were never read.".into(),
        ops: vec![5],
        data: serde_json::json!({"lost": [41, 42]}),
    });
    let r = RunResults::new(
        &h,
        vec![CheckResult { spec: checkers::registry::CheckSpec::default(), verdict: v }],
    );
    let html = render(&h, &r);
    assert!(
        html.contains("Pictures above are drawn from the verdict's data"),
        "fallback not announced"
    );
    assert!(html.contains("<svg class=\"cycle\""), "cycle not drawn");
    assert!(html.contains(">wr<") && html.contains(">ww<"));
    assert!(html.contains(
        "<b>lost</b> (2): <code class=\"chip\">41</code> <code class=\"chip\">42</code>"
    ));
    assert!(html.contains("<svg class=\"ops-picture\""), "ops involved not drawn");
}

struct PanicsWhileDrawing;
impl Checker for PanicsWhileDrawing {
    fn name(&self) -> &str {
        "reads-written"
    }
    fn check(&self, h: &History) -> Result<Verdict, checkers::CheckError> {
        ReadsWritten.check(h)
    }
    fn render_html(&self, _: &History, _: &Verdict) -> Vec<checkers::HtmlPage> {
        panic!("index out of bounds in the drawing code")
    }
}

#[test]
fn a_checker_that_panics_while_drawing_costs_only_its_picture() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = with_phantom_read(&register_history(200, 2, 4));
    let dir = make_run(tmp.path(), "t", "1", &h, &spec("t", 4));
    let mut table = plugins();
    table.register(
        "reads-written",
        "draws badly",
        checkers::registry::Accepts::nothing(),
        |_, _| Ok(Box::new(PanicsWhileDrawing)),
    );
    let w = results::finish_run(&dir, &h, vec![plugin_check(&h)], &table).expect("finish");
    let html = read(&w.report);
    assert!(
        html.contains("failed while drawing its evidence: index out of bounds in the drawing code")
    );
    assert!(html.contains("no operation ever wrote 99"), "explanation must survive");
}

#[test]
fn report_regenerates_identically_from_stored_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = with_phantom_read(&register_history(1_000, 3, 21));
    let dir = make_run(tmp.path(), "t", "1", &h, &spec("t", 21));
    let w = results::finish_run(&dir, &h, vec![plugin_check(&h)], &crate::common::plugins())
        .expect("finish");
    let first = read(&w.report);
    std::fs::remove_file(&w.report).expect("rm");
    let again = results::regenerate_report(&dir, &crate::common::plugins()).expect("regenerate");
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    assert_eq!(read(&again.report), first);
}

#[test]
fn a_crashed_run_without_results_still_gets_a_report() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = register_history(500, 3, 2);
    let dir = make_run(tmp.path(), "t", "1", &h, &spec("t", 2));
    // The harness was killed mid-line.
    let mut text = std::fs::read_to_string(dir.join("history.jsonl")).expect("read");
    text.push_str("{\"index\":500,\"process\":1,\"ty");
    std::fs::write(dir.join("history.jsonl"), text).expect("write");
    let w = results::regenerate_report(&dir, &crate::common::plugins()).expect("report");
    let html = read(&w.report);
    assert!(html.contains("id=\"overall-verdict\">not checked<"));
    assert!(html.contains("faultline analyze RUN_DIR"));
    let d = timeline_data(&html);
    let completed = h
        .ops()
        .iter()
        .filter(|o| o.kind == checkers::OpType::Invoke && o.process.client().is_some())
        .count();
    assert_eq!(d["n"].as_u64(), Some(completed as u64));
}

#[test]
fn an_unreadable_history_is_named_in_the_report_and_nothing_is_lost() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = register_history(50, 2, 3);
    let dir = make_run(tmp.path(), "t", "1", &h, &spec("t", 3));
    let mut lines: Vec<String> = std::fs::read_to_string(dir.join("history.jsonl"))
        .expect("read")
        .lines()
        .map(str::to_owned)
        .collect();
    lines[4] = "{\"process\":0,\"type\":\"maybe\",\"f\":\"read\"}".into();
    std::fs::write(dir.join("history.jsonl"), lines.join("\n") + "\n").expect("write");
    let w = results::regenerate_report(&dir, &crate::common::plugins()).expect("report");
    assert_eq!(w.warnings.len(), 1, "{:?}", w.warnings);
    assert!(w.warnings[0].contains("history.jsonl:5:"), "{}", w.warnings[0]);
    let html = read(&w.report);
    assert!(html.contains("<p class=\"problem\">") && html.contains("history.jsonl:5:"));
    assert!(html.contains("No history to draw."));
    assert!(dir.join("history.jsonl").is_file(), "the history must be left as it was");
}

#[test]
fn a_harness_failure_is_reported_as_such() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = register_history(10, 1, 3);
    let dir = make_run(tmp.path(), "t", "1", &h, &spec("t", 3));
    let w = results::record_harness_failure(
        &dir,
        Some(&h),
        "node n3 would not start: port 7003 in use",
    )
    .expect("record");
    let html = read(&w.report);
    assert!(html.contains("harness error") && html.contains("port 7003 in use"));
    let runs = results::Store::new(tmp.path()).list().expect("list");
    assert_eq!(runs[0].status(), "harness-error");
}

#[test]
fn timeline_data_holds_every_operation_and_fault_period() {
    let h = register_history(20_000, 5, 17);
    let r = RunResults::new(&h, Vec::new());
    let html = render(&h, &r);
    let d = timeline_data(&html);
    let iv = results::intervals::Intervals::of(&h);
    let n = iv.items.len();
    assert_eq!(d["n"].as_u64(), Some(n as u64));
    let start = column_u32(&d, "start");
    let dur = column_u32(&d, "dur");
    assert_eq!((start.len(), dur.len()), (n, n));
    assert!(start.windows(2).all(|w| w[0] <= w[1]), "starts must not decrease");
    let unit = d["unit"].as_u64().expect("unit");
    let t0 = iv.items[0].start;
    for (i, it) in iv.items.iter().enumerate().step_by(97) {
        assert_eq!(u64::from(start[i]), (it.start - t0) / unit);
        match it.end {
            Some(_) => assert_ne!(dur[i], u32::MAX),
            None => assert_eq!(dur[i], u32::MAX),
        }
    }
    assert_eq!(d["faults"].as_array().expect("faults").len(), iv.faults.len());
    assert!(!iv.faults.is_empty(), "seed 17 should produce faults");
    assert_eq!(d["values"].as_array().expect("values").len(), n);
}

#[test]
fn histories_without_timestamps_use_positions() {
    let mut ops = register_history(200, 2, 8).into_ops();
    for o in &mut ops {
        o.time = None;
    }
    let h = History::new(ops);
    let html = render(&h, &RunResults::new(&h, Vec::new()));
    assert!(html.contains("the history records no timestamps"));
    assert!(html.contains("position in history (no timestamps recorded)"));
    assert_eq!(timeline_data(&html)["clock"], "logical");
}

/// Golden file: the violations section for a fixed verdict, reviewed as text.
/// Run with `UPDATE_GOLDEN=1` to rewrite it after an intended change.
#[test]
fn golden_violations_section() {
    let h = with_phantom_read(&register_history(40, 2, 1));
    let mut v = ReadsWritten.check(&h).expect("check");
    v.anomalies[0].data = serde_json::json!({
        "values": ["99"],
        "cycle": [{"from": 38, "to": 39, "type": "rt"}, {"from": 39, "to": 38, "type": "wr"}]
    });
    let r = RunResults::new(
        &h,
        vec![CheckResult { spec: checkers::registry::CheckSpec::default(), verdict: v }],
    );
    let iv = results::intervals::Intervals::of(&h);
    let refs = results::report::evidence::referenced_ops(&r);
    let idx = results::report::evidence::OpIndex::new(&h, &iv, &refs);
    let got = results::report::evidence::violations(
        &r,
        &idx,
        &checkers::registry::CheckerTable::builtin(),
    )
    .replace("><", ">\n<");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/violations.html");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).expect("golden file (UPDATE_GOLDEN=1 writes it)");
    assert_eq!(got, want, "violations section differs from {}", path.display());
}

#[test]
fn many_anomalies_are_listed_not_drawn() {
    let h = register_history(200, 2, 6);
    let mut v = Verdict::new("reads-written", Validity::Invalid, "many");
    for i in 0..120u64 {
        v.anomalies.push(Anomaly {
            kind: "phantom-read".into(),
            explanation: format!("anomaly number {i}"),
            ops: vec![i],
            data: serde_json::Value::Null,
        });
    }
    let r = RunResults::new(
        &h,
        vec![CheckResult { spec: checkers::registry::CheckSpec::default(), verdict: v }],
    );
    let html = render(&h, &r);
    assert_eq!(html.matches("<div class=\"anomaly\"").count(), 40);
    assert!(html.contains("<h4>80 more anomalies</h4>"));
    assert!(html.contains("anomaly number 119"));
}

#[test]
fn a_folder_that_is_not_a_run_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let err =
        results::regenerate_report(tmp.path(), &crate::common::plugins()).expect_err("not a run");
    let msg = err.to_string();
    assert!(
        msg.contains("not a run directory") && msg.contains(&tmp.path().display().to_string()),
        "{msg}"
    );
    assert!(!tmp.path().join("report.html").exists(), "nothing is written for a non-run");
}

/// The spec each built-in checker needs to be built (a model, say).
fn builtin_spec(name: &str) -> CheckSpec {
    let mut spec = CheckSpec { checker: name.into(), ..CheckSpec::default() };
    match name {
        "linearizable" => spec.model = Some("register".into()),
        "compose" => {
            spec.options.insert("checkers".into(), "stats".into());
        }
        _ => {}
    }
    spec
}

/// Real runs of the linearizability checker on register histories: the
/// report embeds the checker's own drawing of the failure.
#[test]
fn linearizable_register_runs_valid_invalid_and_unknown() {
    let seed = 12;
    eprintln!("history seed {seed}");
    let tmp = tempfile::tempdir().expect("tempdir");
    let valid = register_history(3_000, 4, seed);
    let invalid = with_phantom_read(&valid);
    // Out of memory budget at once: the checker cannot decide.
    let mut starved = builtin_spec("linearizable");
    starved.budget.memory = Some(1);
    for (name, h, check_spec, want) in [
        ("valid", &valid, builtin_spec("linearizable"), Validity::Valid),
        ("invalid", &invalid, builtin_spec("linearizable"), Validity::Invalid),
        ("unknown", &valid, starved, Validity::Unknown),
    ] {
        let checker = checkers::registry::build(&check_spec).expect("build");
        let verdict = checker.check(h).expect("check");
        assert_eq!(verdict.validity, want, "{name}: {}", verdict.to_text());
        let dir = make_run(tmp.path(), name, "1", h, &spec(name, seed));
        let w = results::finish_run(
            &dir,
            h,
            vec![CheckResult::new(&check_spec, verdict.clone())],
            &crate::common::plugins(),
        )
        .expect("finish");
        let html = read(&w.report);
        assert!(html.contains(&format!("id=\"overall-verdict\">{want}<")), "{name}");
        match want {
            Validity::Invalid => {
                assert!(
                    html.contains("Linearizability — drawn by the linearizable checker"),
                    "{name}: no checker page"
                );
                let a = &verdict.anomalies[0];
                assert!(
                    html.contains(&checkers::html::escape(&a.explanation)),
                    "{name}: explanation missing"
                );
                for op in &a.ops {
                    assert!(
                        html.contains(&format!("href=\"#op-{op}\"")),
                        "{name}: op {op} not linked"
                    );
                }
            }
            Validity::Unknown => {
                let why = verdict.unknown_reason.clone().unwrap_or_default();
                assert!(html.contains(&checkers::html::escape(&why)), "{name}: reason missing");
            }
            Validity::Valid => assert!(html.contains("No checker found a violation.")),
        }
    }
}

/// Real runs of the transactional, causal, set and convergence checkers on
/// the checkers crate's hand-written violations: the report names every
/// anomaly with its explanation, links its operations, and embeds the
/// checker's own page.
#[test]
fn reports_of_real_violations_from_each_family_of_checkers() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../checkers/tests");
    let cases: [(&str, &str, &[&str]); 5] = [
        ("data/elle/golden/append-g-single.edn", "list-append", &["serializable"]),
        ("data/elle/golden/register-write-skew.edn", "rw-register", &["serializable"]),
        ("golden/causal/cyclic-co.edn", "causal", &[]),
        ("golden/set-full/lost-and-stale.edn", "set-full", &[]),
        ("golden/convergence/set-divergent.edn", "convergence", &[]),
    ];
    let tmp = tempfile::tempdir().expect("tempdir");
    for (file, checker, models) in cases {
        let path = golden.join(file);
        let h = checkers::formats::read_path(&path, None).unwrap_or_else(|e| panic!("{e}"));
        let check_spec = CheckSpec {
            checker: checker.into(),
            consistency_models: models.iter().map(|m| (*m).to_owned()).collect(),
            ..CheckSpec::default()
        };
        let verdict = checkers::registry::build(&check_spec)
            .unwrap_or_else(|e| panic!("{checker}: {e}"))
            .check(&h)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(verdict.validity, Validity::Invalid, "{file}: {}", verdict.to_text());
        let dir = make_run(tmp.path(), checker, "1", &h, &spec(checker, 1));
        let w = results::finish_run(
            &dir,
            &h,
            vec![CheckResult::new(&check_spec, verdict.clone())],
            &crate::common::plugins(),
        )
        .expect("finish");
        let html = read(&w.report);
        assert!(html.contains("id=\"overall-verdict\">invalid<"), "{file}");
        assert!(
            html.contains(&format!("drawn by the {checker} checker")),
            "{file}: the checker's own page is missing"
        );
        for a in &verdict.anomalies {
            assert!(
                html.contains(&checkers::html::escape(&a.explanation)),
                "{file}: the explanation of {} is missing",
                a.kind
            );
            for op in &a.ops {
                assert!(html.contains(&format!("href=\"#op-{op}\"")), "{file}: op {op} not linked");
            }
        }
    }
}
