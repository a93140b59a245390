//! Headless Chromium (Debian's `chromium`) opens a report and the serve
//! index from loopback, and the test checks what a person would see: the
//! verdict, a violation's explanation, a drawn timeline, and no script
//! errors. Screenshots are saved beside the reports under
//! `target/tmp/browser/` for a person to look at.
//!
//! "No script errors" is checked through the DevTools protocol: uncaught
//! exceptions (`Runtime.exceptionThrown`), `console.error` calls and
//! browser log entries of level error are all collected, and a control page
//! with a deliberate error proves the collection works. Every request the
//! page makes is recorded too, to prove the report fetches nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checkers::Checker;
use results::CheckResult;

use crate::cdp::{Browser, find_chromium};

use crate::common::{
    ReadsWritten, TestServer, make_run, register_history, spec, with_phantom_read,
};

/// Debian's Chromium, if installed. Under CI=true its absence fails the test.
fn chromium() -> Option<PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "CI=true but chromium is not installed: .ci/run must install Debian's chromium package"
            );
        }
        eprintln!(
            "\n*** SKIPPING THE BROWSER TEST: /usr/bin/chromium is missing. Install Debian's `chromium` \
             package (apt-get install chromium) to run it; under CI=true it is mandatory. ***\n"
        );
    }
    found
}

/// Where screenshots and the reports they show are kept after the test.
fn out_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("output dir");
    dir
}

/// Non-blank pixels on the timeline canvas: proof that something was drawn.
const INKED_PIXELS: &str = "(() => { const c = document.querySelector('#timeline canvas'); \
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; \
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n++; return n; })()";

/// Moves the pointer over a grid of points on the timeline, one per frame,
/// and counts the points where the tooltip showed an operation.
const HOVER_SWEEP: &str = "(async () => { const c = document.querySelector('#timeline canvas'); \
    const tip = document.querySelector('.tl-tip'); const r = c.getBoundingClientRect(); let seen = 0; \
    for (let y = 44; y < r.height; y += 8) for (let x = 100; x < r.width; x += 90) { \
      c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + x, clientY: r.top + y, bubbles: true})); \
      await new Promise(f => requestAnimationFrame(() => requestAnimationFrame(f))); \
      if (tip.style.display === 'block' && tip.textContent.startsWith('op ')) seen++; } \
    return seen; })()";

#[test]
fn report_and_index_open_in_headless_chromium_without_script_errors() {
    let Some(chrome) = chromium() else { return };
    let out = out_dir("runs");
    let store = out.join("store");
    let seed = 23;
    eprintln!("history seed {seed}");
    let good = register_history(6_000, 5, seed);
    let bad = with_phantom_read(&good);
    for (ts, h) in [("20260101T000000Z", &good), ("20260102T000000Z", &bad)] {
        let dir = make_run(&store, "register", ts, h, &spec("register", seed));
        let check = CheckResult {
            spec: checkers::registry::CheckSpec::new("reads-written"),
            verdict: ReadsWritten.check(h).expect("check"),
        };
        let linear = checkers::registry::CheckSpec {
            checker: "linearizable".into(),
            model: Some("register".into()),
            ..Default::default()
        };
        let verdict = checkers::registry::build(&linear).expect("build").check(h).expect("check");
        let checks = vec![check, CheckResult::new(&linear, verdict)];
        results::finish_run(&dir, h, checks, &crate::common::plugins()).expect("finish");
    }
    let server = TestServer::start(&store);
    let mut s = Browser::launch(&chrome);

    // Control: the error collection sees a deliberate error.
    s.open("data:text/html,<p>control</p><script>console.error('control error'); notAFunction();</script>");
    let start = Instant::now();
    while s.error_count() < 2 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let control = s.take_errors();
    assert!(
        control.iter().any(|e| e.contains("notAFunction")),
        "exception not captured: {control:?}"
    );
    assert!(
        control.iter().any(|e| e.contains("control error")),
        "console.error not captured: {control:?}"
    );
    s.clear_requests();

    // The report of the invalid run.
    let report_url = server.url("/runs/register/20260102T000000Z/");
    s.open(&report_url);
    assert!(
        s.wait_for(
            "document.getElementById('timeline')?.dataset.ready === '1'",
            Duration::from_secs(60)
        ),
        "timeline never became ready"
    );
    assert_eq!(s.eval("document.getElementById('overall-verdict').textContent"), "invalid");
    let explanation = s.eval("document.querySelector('.anomaly .explanation').textContent");
    assert!(
        explanation.as_str().is_some_and(|e| e.contains("no operation ever wrote 99")),
        "{explanation}"
    );
    let drawn = s.eval("parseInt(document.getElementById('timeline').dataset.drawn, 10)");
    assert!(drawn.as_u64().is_some_and(|n| n > 0), "timeline drew {drawn}");
    let inked = s.eval(INKED_PIXELS);
    assert!(inked.as_u64().is_some_and(|n| n > 5_000), "timeline canvas is blank: {inked} pixels");
    s.screenshot(&store.join("register/20260102T000000Z/report.png"));
    // An op link moves the timeline to the op and shows its details.
    let last = bad.len() - 1;
    s.eval("document.querySelector('a.op-link').click(); true");
    let detail = s.eval("document.querySelector('.tl-detail').textContent");
    let want = format!("op {} (completion: op {last})", last - 1);
    assert!(detail.as_str().is_some_and(|d| d.contains(&want)), "{detail}");
    // Hovering over the timeline shows operations in a tooltip.
    let hovered = s.eval_async(HOVER_SWEEP);
    assert!(hovered.as_u64().is_some_and(|n| n > 0), "no tooltip while hovering: {hovered}");
    s.screenshot(&store.join("register/20260102T000000Z/report-timeline.png"));
    let errors = s.take_errors();
    assert!(errors.is_empty(), "script errors in the report: {errors:?}");

    // The index.
    s.open(&server.url("/"));
    assert!(
        s.wait_for("document.querySelectorAll('tr.run').length === 2", Duration::from_secs(30))
    );
    assert_eq!(s.eval("document.querySelector('tr.run.invalid td.status') !== null"), true);
    assert_eq!(
        s.eval(
            "getComputedStyle(document.querySelector('tr.run.invalid td.status')).backgroundColor"
        ),
        "rgb(198, 40, 40)"
    );
    s.screenshot(&store.join("index.png"));
    let errors = s.take_errors();
    assert!(errors.is_empty(), "script errors in the index: {errors:?}");

    // Nothing but the server itself was asked for anything.
    let base = server.url("/");
    let requests = s.requests();
    assert!(!requests.is_empty(), "the network domain recorded no requests at all");
    let foreign: Vec<&String> = requests.iter().filter(|u| !u.starts_with(&base)).collect();
    assert!(foreign.is_empty(), "the pages fetched from elsewhere: {foreign:?}");
}

/// A report of a million-event history opens and draws in the browser.
/// Its size is printed; `cargo bench -p faultline-results` measures its
/// render time.
#[test]
fn a_million_op_report_opens_in_headless_chromium() {
    let Some(chrome) = chromium() else { return };
    let out = out_dir("million");
    let store = out.join("store");
    let h = register_history(1_000_000, 10, 42);
    let dir = make_run(&store, "million", "20260101T000000Z", &h, &spec("million", 42));
    let started = Instant::now();
    let check = CheckResult {
        spec: checkers::registry::CheckSpec::new("reads-written"),
        verdict: ReadsWritten.check(&h).expect("check"),
    };
    let w = results::finish_run(&dir, &h, vec![check], &crate::common::plugins()).expect("finish");
    let size = std::fs::metadata(&w.report).expect("report").len();
    eprintln!(
        "1,000,000-event report: {:.1} MiB, written in {:.1} s (test profile; see the bench for release)",
        size as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    let server = TestServer::start(&store);
    let mut s = Browser::launch(&chrome);
    let opened = Instant::now();
    s.open(&server.url("/runs/million/20260101T000000Z/"));
    assert!(
        s.wait_for(
            "document.getElementById('timeline')?.dataset.ready === '1'",
            Duration::from_secs(90)
        ),
        "the million-op timeline did not draw within 90 s"
    );
    eprintln!("opened and drew the timeline in {:.1} s", opened.elapsed().as_secs_f64());
    let n = s.eval("parseInt(document.getElementById('timeline').dataset.drawn, 10)");
    assert!(n.as_u64().is_some_and(|n| n > 400_000), "drew {n}");
    assert_eq!(s.eval("document.getElementById('overall-verdict').textContent"), "valid");
    // Zooming in keeps working at this size.
    let t = Instant::now();
    s.eval("for (let i = 0; i < 20; i++) document.querySelector('.tl-in').click(); true");
    eprintln!("20 zoom steps in {:.2} s", t.elapsed().as_secs_f64());
    s.screenshot(&dir.join("report.png"));
    let errors = s.take_errors();
    assert!(errors.is_empty(), "script errors: {errors:?}");
}

/// A campaign's `summary.html` opens from disk: the matrix shows each
/// cell's colour and figures, a run link leads to that run's report, and
/// no script error occurs.
#[test]
fn campaign_summary_opens_in_headless_chromium() {
    use results::campaign::{
        CampaignSummary, CellStatus, CellSummary, Expectation, Expected, RunRecord,
    };
    let Some(chrome) = chromium() else { return };
    let out = out_dir("campaign");
    let seed = 5;
    eprintln!("history seed {seed}");
    let good = register_history(2_000, 4, seed);
    let bad = with_phantom_read(&good);
    let linear = checkers::registry::CheckSpec {
        checker: "linearizable".into(),
        model: Some("register".into()),
        ..Default::default()
    };
    let mut cells = Vec::new();
    for (mode, history, verdict) in
        [("raft", &good, Expected::Valid), ("async", &bad, Expected::Invalid)]
    {
        let name = format!("{mode}-kill");
        let dir = make_run(&out, &name, "20261205T000000Z", history, &spec(&name, seed));
        let v = checkers::registry::build(&linear).expect("build").check(history).expect("check");
        let merged = checkers::Verdict::merged("register", vec![v.clone()]);
        results::finish_run(
            &dir,
            history,
            vec![CheckResult::new(&linear, v)],
            &crate::common::plugins(),
        )
        .expect("finish");
        let expect = Expectation {
            verdict,
            anomalies: if verdict == Expected::Invalid {
                vec!["nonlinearizable".into()]
            } else {
                Vec::new()
            },
            ..Expectation::default()
        };
        let mut run = RunRecord::planned(seed);
        run.dir = Some(format!("{name}/20261205T000000Z"));
        run.judged(history, &merged, &expect);
        cells.push(CellSummary {
            params: vec![("mode".into(), mode.into()), ("nemesis".into(), "kill".into())],
            name,
            expect,
            runs: vec![run, RunRecord::planned(seed + 1)],
            figures: Default::default(),
            status: CellStatus::Pending,
            reasons: Vec::new(),
        });
    }
    let mut summary = CampaignSummary::new("browser", vec!["mode".into(), "nemesis".into()], cells);
    summary.write(&out).expect("write summary");
    let mut s = Browser::launch(&chrome);
    let url = format!("file://{}", out.join("summary.html").display());
    s.open(&url);
    assert_eq!(s.eval("document.querySelectorAll('table.matrix td.pending').length"), 2);
    let text = s.eval("document.querySelector('table.matrix').innerText");
    assert!(
        text.as_str().is_some_and(|t| t.contains("detected 1/1") && t.contains("1 clean of 1")),
        "{text}"
    );
    s.screenshot(&out.join("summary.png"));
    // A run link opens that run's report.
    s.eval("document.querySelector('table.matrix td a.detected').click(); true");
    assert!(
        s.wait_for(
            "document.getElementById('overall-verdict')?.textContent === 'invalid'",
            Duration::from_secs(30)
        ),
        "the run link did not open the invalid run's report"
    );
    let errors = s.take_errors();
    assert!(errors.is_empty(), "script errors: {errors:?}");
}
