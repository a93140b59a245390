//! `report.html`: one self-contained page per run that explains the verdict.
//!
//! Top to bottom: the verdict (overall and per checker) with the seed and
//! the command that replays the run; each violation explained, with the
//! operations involved and a picture; the timeline of every operation per
//! thread with fault periods shaded (a canvas, see `timeline.js`); latency
//! and throughput plots (SVG); the test spec; links to the run's files and
//! each node's logs. The page fetches nothing: styles, script and data are
//! all inside it, so it opens from a file, an e-mail or a CI artifact.

pub mod evidence;
pub mod plots;
pub mod timeline;

use std::fmt::Write;

use checkers::History;
use checkers::html::{STYLE, escape};
use checkers::registry::CheckerTable;

use crate::intervals::{Clock, Intervals};
use crate::run_results::RunResults;
use crate::spec::SpecFile;
use crate::store::{NodeLogs, files};

/// Everything a report is drawn from. Each part may be missing (a crashed
/// run has no results, a run from another tool may have no spec); the report
/// then says so instead of failing.
pub struct ReportInput<'a> {
    /// The test's name.
    pub name: &'a str,
    /// The run's timestamp.
    pub timestamp: &'a str,
    /// `test.toml`.
    pub spec: Option<&'a SpecFile>,
    /// How to reach the run's `test.toml` from where the user stands, for
    /// the replay command.
    pub spec_path: String,
    /// The replay command the run directory names, when it is not
    /// `faultline test -f` (a simulated run's `faultline sim ...`).
    pub replay: Option<String>,
    /// The history.
    pub history: Option<&'a History>,
    /// `results.json`.
    pub results: Option<&'a RunResults>,
    /// Files that could not be read, and why: shown at the top.
    pub problems: Vec<String>,
    /// Node logs, with paths relative to the run directory.
    pub node_logs: &'a [NodeLogs],
    /// Top-level files of the run, (name, size in bytes).
    pub run_files: Vec<(String, u64)>,
    /// The checkers by name, to draw each verdict's own evidence: the
    /// built-ins and any plugin's.
    pub checkers: &'a CheckerTable,
}

/// Styles of the report on top of the checkers' shared stylesheet.
const REPORT_STYLE: &str = r#"
body { max-width: 1400px; }
header.run { border-left: 8px solid #999; padding: .2em 1em; margin-bottom: 1em; }
header.run.verdict-valid { border-color: var(--ok); } header.run.verdict-invalid { border-color: var(--fail); }
header.run.verdict-unknown { border-color: var(--info); }
header.run h1 { margin: .2em 0; }
.badge { display: inline-block; padding: .1em .6em; border-radius: 3px; color: #fff; font-weight: 700; text-transform: uppercase; font-size: 12px; background: #777; vertical-align: middle; }
.badge.valid { background: var(--ok); color: #fff; } .badge.invalid { background: var(--fail); color: #fff; }
.badge.unknown { background: var(--info); color: #fff; }
.overall { font-size: 20px; }
nav.toc a { margin-right: 1em; }
.facts td:first-child { color: var(--muted); }
.problem { background: #ffebee; border-left: 4px solid var(--fail); padding: .5em .9em; margin: .4em 0; }
section.verdict { border-top: 1px solid var(--line); margin-top: 1em; }
.anomaly { margin: 1em 0 1.5em 1em; }
.anomaly h4 { margin: .4em 0; }
.ops a, a.op-link { font-family: ui-monospace, Menlo, monospace; }
.chip { background: #eceff1; padding: 0 .3em; border-radius: 3px; margin-right: .2em; }
.timeline { position: relative; border: 1px solid var(--line); padding: .4em; }
.timeline canvas { display: block; cursor: crosshair; }
.tl-controls { margin-bottom: .3em; } .tl-controls form { display: inline; margin-left: 1em; }
.tl-status { color: var(--muted); font-size: 12px; margin-top: .3em; }
.tl-detail { min-height: 1em; }
.tl-tip { display: none; position: absolute; pointer-events: none; background: #fff; border: 1px solid #999; box-shadow: 0 2px 6px rgba(0,0,0,.2); margin: 0; max-width: 420px; white-space: pre-wrap; z-index: 2; }
.legend { font-size: 12px; color: #444; margin: .3em 0; }
.swatch { display: inline-block; width: 1.2em; height: .9em; vertical-align: middle; margin: 0 .3em 0 .8em; border: 1px solid #ccc; }
.line-swatch { display: inline-block; width: 1.8em; vertical-align: middle; margin: 0 .3em 0 .8em; }
svg.plot, svg.ops-picture { background: #fff; border: 1px solid var(--line); margin: .3em 0; }
details.checker-page { margin: .8em 0; border: 1px solid var(--line); padding: .3em .8em; }
details.checker-page > summary { font-weight: 600; cursor: pointer; }
"#;

/// Renders the report page.
pub fn render(input: &ReportInput<'_>) -> String {
    let mut body = String::new();
    let overall = input.results.and_then(|r| r.validity);
    let cls = overall.map(|v| v.as_str()).unwrap_or("none");
    let iv = input.history.map(Intervals::of);

    // Header: the verdict first, because it is what the reader came for.
    let _ = write!(
        body,
        "<header class=\"run verdict-{cls}\" id=\"verdict\"><h1>{} <span class=\"muted\">{}</span></h1>",
        escape(input.name),
        escape(input.timestamp)
    );
    match (input.results, overall) {
        (Some(r), _) if r.harness_error.is_some() => {
            let _ = write!(
                body,
                "<p class=\"overall\"><span class=\"badge\">harness error</span> The harness failed, so \
                 this run says nothing about the system under test:</p><pre>{}</pre>",
                escape(r.harness_error.as_deref().unwrap_or(""))
            );
        }
        (Some(_), Some(v)) => {
            let _ = write!(
                body,
                "<p class=\"overall\">Overall: <span class=\"badge {v}\" id=\"overall-verdict\">{v}</span> {}</p>",
                match v {
                    checkers::Validity::Valid => "every checker found the history consistent.",
                    checkers::Validity::Invalid => "at least one checker found a violation; see below.",
                    checkers::Validity::Unknown => "at least one checker could not decide; see why below.",
                }
            );
        }
        (Some(_), None) => body.push_str(
            "<p class=\"overall\"><span class=\"badge\" id=\"overall-verdict\">no verdict</span> No checker ran \
             on this run.</p>",
        ),
        (None, _) => body.push_str(
            "<p class=\"overall\"><span class=\"badge\" id=\"overall-verdict\">not checked</span> This run has no \
             results.json yet; run <code>faultline analyze RUN_DIR</code> to check it.</p>",
        ),
    }
    if let Some(why) = input.results.and_then(|r| r.interrupted.as_deref()) {
        let _ = write!(
            body,
            "<p class=\"overall\" id=\"interrupted\"><span class=\"badge unknown\">interrupted</span> \
             The run was cut short ({}); the checkers judged what ran up to then, so finding \
             nothing proves nothing.</p>",
            escape(why)
        );
    }
    if let Some(r) = input.results {
        checks_table(&mut body, r);
    }
    facts(&mut body, input, iv.as_ref());
    body.push_str("</header>");
    for p in &input.problems {
        let _ = write!(body, "<p class=\"problem\">{}</p>", escape(p));
    }
    if let Some(problem) = iv.as_ref().and_then(|i| i.problem.as_ref()) {
        let _ = write!(
            body,
            "<p class=\"problem\">The history does not pair up cleanly: {}</p>",
            escape(problem)
        );
    }
    body.push_str(
        "<nav class=\"toc\"><a href=\"#violations\">Violations</a><a href=\"#timeline-section\">Timeline</a>\
         <a href=\"#latency\">Latency</a><a href=\"#throughput\">Throughput</a><a href=\"#spec\">Spec</a>\
         <a href=\"#files\">Files &amp; node logs</a></nav>",
    );

    // Violations.
    body.push_str("<section id=\"violations\"><h2>Violations</h2>");
    let referenced = input.results.map(evidence::referenced_ops).unwrap_or_default();
    match (input.results, input.history, iv.as_ref()) {
        (Some(r), Some(h), Some(iv)) => {
            let idx = evidence::OpIndex::new(h, iv, &referenced);
            body.push_str(&evidence::violations(r, &idx, input.checkers));
        }
        (Some(r), _, _) => {
            // No history: still explain in words.
            let empty = History::default();
            let iv = Intervals::of(&empty);
            let idx = evidence::OpIndex::new(&empty, &iv, &Default::default());
            body.push_str(&evidence::violations(r, &idx, input.checkers));
        }
        (None, _, _) => body.push_str("<p class=\"muted\">Not checked yet.</p>"),
    }
    body.push_str("</section>");

    // Timeline and plots.
    body.push_str("<section id=\"timeline-section\"><h2>Timeline</h2>");
    match (input.history, iv.as_ref()) {
        (Some(h), Some(iv)) => {
            body.push_str(
                "<p class=\"legend\">Each row is a client thread (its processes listed on the left), each bar an \
                 operation from invocation to completion: <span class=\"swatch\" style=\"background:#43a047\"></span>ok \
                 <span class=\"swatch\" style=\"background:#e53935\"></span>fail \
                 <span class=\"swatch\" style=\"background:#fb8c00\"></span>info (outcome unknown; faded: never \
                 completed). Operations named by an anomaly are outlined in black. Fault periods are shaded.</p>",
            );
            body.push_str(
                "<div id=\"timeline\" class=\"timeline\"><div class=\"tl-controls\"><button class=\"tl-in\" \
                 type=\"button\">zoom in</button> <button class=\"tl-out\" type=\"button\">zoom out</button> \
                 <button class=\"tl-reset\" type=\"button\">whole run</button><form class=\"tl-find\">\
                 <input type=\"number\" min=\"0\" placeholder=\"op index\" aria-label=\"op index\"> \
                 <button type=\"submit\">find op</button></form></div><canvas></canvas>\
                 <pre class=\"tl-tip\"></pre><div class=\"tl-status\"></div><pre class=\"tl-detail\"></pre></div>",
            );
            let _ = write!(
                body,
                "<script type=\"application/json\" id=\"timeline-data\">{}</script><script>{}</script>",
                timeline::data(h, iv, &referenced),
                timeline::SCRIPT
            );
            body.push_str("</section><section id=\"latency\"><h2>Latency</h2>");
            body.push_str(&plots::latency(iv));
            body.push_str("</section><section id=\"throughput\"><h2>Throughput</h2>");
            body.push_str(&plots::throughput(iv));
            body.push_str("</section>");
        }
        _ => body.push_str(
            "<p class=\"muted\">No history to draw.</p></section><section id=\"latency\"></section>\
             <section id=\"throughput\"></section>",
        ),
    }

    // Spec and files.
    body.push_str("<section id=\"spec\"><h2>Test spec</h2>");
    match input.spec {
        Some(s) => {
            let _ = write!(body, "<pre>{}</pre>", escape(&s.text));
        }
        None => body.push_str("<p class=\"muted\">This run has no test.toml.</p>"),
    }
    body.push_str("</section>");
    files_section(&mut body, input);

    page(&format!("{} {} — faultline report", input.name, input.timestamp), &body)
}

/// A complete HTML document with faultline's styles.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>{STYLE}{REPORT_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        escape(title)
    )
}

fn checks_table(body: &mut String, r: &RunResults) {
    body.push_str(
        "<table class=\"checks\"><tr><th>checker</th><th>verdict</th><th>summary</th><th>anomalies</th>\
         <th>time</th></tr>",
    );
    fn row(body: &mut String, v: &checkers::Verdict, depth: usize) {
        let _ = write!(
            body,
            "<tr><td style=\"padding-left:{}em\">{}</td><td><span class=\"badge {c}\">{c}</span></td><td>{}</td>\
             <td>{}</td><td>{:.1} s</td></tr>",
            0.6 + depth as f64 * 1.5,
            escape(&v.checker),
            escape(&v.summary),
            v.anomalies.len(),
            v.elapsed.as_secs_f64(),
            c = v.validity.as_str()
        );
        for c in &v.children {
            row(body, c, depth + 1);
        }
    }
    for c in &r.checks {
        row(body, &c.verdict, 0);
    }
    body.push_str("</table>");
}

fn facts(body: &mut String, input: &ReportInput<'_>, iv: Option<&Intervals>) {
    let spec = input.spec.map(|f| &f.spec);
    let mut rows: Vec<(&str, String)> = Vec::new();
    if let Some(s) = spec {
        rows.push(("workload", escape(&s.workload)));
        rows.push(("target", escape(&s.target_label())));
        if !s.campaign.is_empty() {
            rows.push(("campaign", escape(&s.campaign)));
        }
        let faults = s.nemeses();
        rows.push((
            "faults",
            if faults.is_empty() { "none".into() } else { escape(&faults.join(", ")) },
        ));
    }
    let seed = spec.and_then(|s| s.seed);
    rows.push(("seed", seed.map_or_else(|| "not recorded".into(), |s| s.to_string())));
    let replay = match (spec, &input.replay) {
        (_, Some(command)) => format!(
            "<code id=\"replay\">{}</code> <span class=\"muted\">(a simulated run: the \
             world's settings are not in test.toml, so the command spells them out)</span>",
            escape(command)
        ),
        (Some(s), None) if s.runtime == crate::spec::RuntimeKind::Sim => {
            "<span class=\"muted\">a simulated run: replay it with the <code>faultline sim</code> \
             command that ran it, with <code>--seed</code></span>"
                .into()
        }
        (Some(s), None) => format!(
            "<code id=\"replay\">{}</code> <span class=\"muted\">(test.toml holds the \
             full spec{})</span>",
            escape(&s.replay_command(&input.spec_path)),
            if seed.is_some() { " and its seed" } else { "" }
        ),
        (None, None) => "<span class=\"muted\">no test.toml: this history did not come from a faultline run</span>".into(),
    };
    rows.push(("replay", replay));
    if let Some(r) = input.results {
        let h = &r.history;
        let mut ops = format!(
            "{} events; {} operations: {} ok, {} fail, {} info",
            h.events,
            h.outcomes.total(),
            h.outcomes.ok,
            h.outcomes.fail,
            h.outcomes.info
        );
        if let Some(d) = h.duration_s {
            let _ = write!(ops, "; {d:.1} s");
        }
        if let Some(l) = h.latency_ms {
            let _ = write!(ops, "; ok latency p50 {:.2} ms, p99 {:.2} ms", l.p50, l.p99);
        }
        rows.push(("history", ops));
    } else if let Some(iv) = iv {
        rows.push(("history", format!("{} operations", iv.items.len())));
    }
    if iv.is_some_and(|iv| iv.clock == Clock::Logical) {
        rows.push((
            "time",
            "the history records no timestamps; positions stand in for time".into(),
        ));
    }
    body.push_str("<table class=\"facts\">");
    for (k, v) in rows {
        let _ = write!(body, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    body.push_str("</table>");
}

fn human_size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// Links are relative to the run directory, so they work both when the
/// report is opened as a file and when `faultline serve` serves it.
fn files_section(body: &mut String, input: &ReportInput<'_>) {
    body.push_str("<section id=\"files\"><h2>Files &amp; node logs</h2><ul class=\"run-files\">");
    for (name, size) in &input.run_files {
        let what = match name.as_str() {
            files::SPEC => "the test spec and seed",
            files::HISTORY => "every operation, as recorded",
            files::LOG => "the harness's log",
            files::RESULTS => "the verdicts, machine-readable",
            files::REPORT => "this page",
            _ => "",
        };
        let _ = write!(
            body,
            "<li><a href=\"{0}\">{0}</a> <span class=\"muted\">{1} {2}</span></li>",
            escape(name),
            human_size(*size),
            what
        );
    }
    body.push_str("</ul>");
    if input.node_logs.is_empty() {
        body.push_str("<p class=\"muted\">No node logs were fetched for this run.</p>");
    } else {
        body.push_str("<table class=\"node-logs\"><tr><th>node</th><th>logs</th></tr>");
        for n in input.node_logs {
            let _ = write!(body, "<tr><td>{}</td><td>", escape(&n.node));
            for (path, size) in &n.files {
                let shown = path.rsplit('/').next().unwrap_or(path);
                let _ = write!(
                    body,
                    "<a class=\"node-log\" href=\"{}\">{}</a> <span class=\"muted\">{}</span><br>",
                    escape(path),
                    escape(shown),
                    human_size(*size)
                );
            }
            body.push_str("</td></tr>");
        }
        body.push_str("</table>");
    }
    body.push_str("</section>");
}
