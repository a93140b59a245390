//! `summary.html`: the campaign as a coloured matrix (rows: every axis but
//! the last; columns: the last axis), each cell saying what was expected,
//! what the runs found, the detection figures, and linking every run's
//! report; then each cell in detail. Self-contained and script-free, so it
//! opens from disk, from `faultline serve`, or attached to a bug report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use checkers::html::{escape, page};

use super::{CampaignState, CampaignSummary, CellStatus, CellSummary, Expected, RunOutcome};

const STYLE: &str = r#"<style>
table.matrix { border-collapse: collapse; margin: 1em 0; }
table.matrix th, table.matrix td { border: 1px solid #ccc; padding: .4em .6em; vertical-align: top; }
table.matrix td { min-width: 11em; font-size: 90%; }
td.met-valid { background: #e3f4e1; }
td.met-invalid { background: #dcebfa; }
td.met-any { background: #f0f0f0; }
td.broken { background: #fbdcdc; }
td.pending { background: #fafafa; color: #777; }
td.absent { background: #fff; }
.runs a { margin-right: .25em; text-decoration: none; font-family: ui-monospace, monospace; }
.runs a.detected, .runs a.clean { color: #1b6e20; }
.runs a.false-alarm, .runs a.missed, .runs a.harness-error { color: #b00020; font-weight: 700; }
.runs a.undecided, .runs a.observed { color: #555; }
.legend span { display: inline-block; padding: .1em .5em; margin-right: .5em; border: 1px solid #ccc; }
</style>"#;

/// The page for `summary`.
pub fn render_summary(summary: &CampaignSummary) -> String {
    let mut body = String::from(STYLE);
    let (met, broken, pending) = summary.counts();
    let state = match summary.state {
        CampaignState::Running => "running",
        CampaignState::Interrupted => "interrupted (faultline campaign --resume continues it)",
        CampaignState::Complete => "complete",
    };
    let _ = write!(
        body,
        "<h1>Campaign {}</h1>\n<p>{} cells: <span class=\"valid\">{met} met</span>, \
         <span class=\"invalid\">{broken} broken</span>, {pending} pending. State: {state}.</p>\n",
        escape(&summary.name),
        summary.cells.len()
    );
    body.push_str(
        "<p class=\"legend\"><span style=\"background:#e3f4e1\">expected valid, nothing found</span>\
         <span style=\"background:#dcebfa\">expected invalid, detected often enough</span>\
         <span style=\"background:#fbdcdc\">expectation broken</span>\
         <span style=\"background:#f0f0f0\">no promise either way</span>\
         <span style=\"background:#fafafa\">runs pending</span></p>\n\
         <p class=\"muted\">Detection rate: share of completed runs that showed the expected \
         anomalies, with its 95&nbsp;% Wilson interval. Time to detection: from the start of \
         a run until the operations an anomaly names had all happened.</p>\n",
    );
    matrix(&mut body, summary);
    body.push_str("<h2>Cells</h2>\n");
    for cell in &summary.cells {
        details(&mut body, cell);
    }
    page(&format!("faultline campaign {}", summary.name), &body)
}

/// The matrix: one row per combination of the leading axes, one column per
/// value of the last axis, in the order the cells were planned.
fn matrix(body: &mut String, summary: &CampaignSummary) {
    let mut columns: Vec<String> = Vec::new();
    let mut rows: Vec<String> = Vec::new();
    let mut grid: BTreeMap<(String, String), &CellSummary> = BTreeMap::new();
    for cell in &summary.cells {
        let (row, col) = split_params(cell);
        if !rows.contains(&row) {
            rows.push(row.clone());
        }
        if !columns.contains(&col) {
            columns.push(col.clone());
        }
        grid.insert((row, col), cell);
    }
    let last_axis = summary.axes.last().cloned().unwrap_or_default();
    let lead = summary.axes[..summary.axes.len().saturating_sub(1)].join(" · ");
    let _ = write!(
        body,
        "<table class=\"matrix\">\n<tr><th>{} \\ {}</th>",
        escape(&lead),
        escape(&last_axis)
    );
    for c in &columns {
        let _ = write!(body, "<th>{}</th>", escape(c));
    }
    body.push_str("</tr>\n");
    for r in &rows {
        let _ = write!(body, "<tr><th>{}</th>", escape(r));
        for c in &columns {
            match grid.get(&(r.clone(), c.clone())) {
                Some(cell) => matrix_cell(body, cell),
                None => body.push_str("<td class=\"absent\"></td>"),
            }
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</table>\n");
}

fn split_params(cell: &CellSummary) -> (String, String) {
    match cell.params.split_last() {
        Some(((_, last), lead)) if !lead.is_empty() => {
            (lead.iter().map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(" · "), last.clone())
        }
        Some(((_, last), _)) => ("runs".to_owned(), last.clone()),
        None => ("runs".to_owned(), "test".to_owned()),
    }
}

fn class_of(cell: &CellSummary) -> &'static str {
    match (cell.status, cell.expect.verdict) {
        (CellStatus::Broken, _) => "broken",
        (CellStatus::Pending, _) => "pending",
        (CellStatus::Met, Expected::Valid) => "met-valid",
        (CellStatus::Met, Expected::Invalid) => "met-invalid",
        (CellStatus::Met, Expected::Any) => "met-any",
    }
}

fn figures_line(cell: &CellSummary) -> String {
    let f = &cell.figures;
    match cell.expect.verdict {
        Expected::Valid => format!(
            "{} clean of {} · {} false alarm{}",
            f.clean,
            f.completed,
            f.false_alarms,
            if f.false_alarms == 1 { "" } else { "s" }
        ),
        Expected::Invalid => {
            let mut s = format!(
                "detected {}/{} ({:.0} %, CI {:.0}–{:.0} %)",
                f.detected,
                f.completed,
                f.rate * 100.0,
                f.rate_low * 100.0,
                f.rate_high * 100.0
            );
            if let (Some(m), Some(w)) = (f.detection_median_s, f.detection_worst_s) {
                let _ = write!(s, "<br>time to detection: median {m:.1} s, worst {w:.1} s");
            }
            s
        }
        Expected::Any => {
            let invalid = cell
                .runs
                .iter()
                .filter(|r| r.validity == Some(checkers::Validity::Invalid))
                .count();
            format!("{invalid} of {} runs found a violation", f.completed)
        }
    }
}

fn run_links(body: &mut String, cell: &CellSummary) {
    body.push_str("<div class=\"runs\">");
    for (i, run) in cell.runs.iter().enumerate() {
        let outcome = run.outcome(&cell.expect);
        let class = outcome.map_or("pending", |o| match o {
            RunOutcome::FalseAlarm => "false-alarm",
            RunOutcome::Error => "harness-error",
            other => other.name(),
        });
        let title = format!(
            "seed {}: {}{}",
            run.seed,
            outcome.map_or("not run", RunOutcome::name),
            run.detection_s.map_or(String::new(), |t| format!(", detected at {t:.1} s"))
        );
        match &run.dir {
            Some(dir) => {
                let _ = write!(
                    body,
                    "<a class=\"{class}\" href=\"{}/report.html\" title=\"{}\">{}</a>",
                    escape(dir),
                    escape(&title),
                    i + 1
                );
            }
            None => {
                let _ = write!(body, "<a class=\"{class}\" title=\"{}\">·</a>", escape(&title));
            }
        }
    }
    body.push_str("</div>");
}

fn matrix_cell(body: &mut String, cell: &CellSummary) {
    let _ = write!(
        body,
        "<td class=\"{}\" title=\"{}\"><b>{}</b><br>{}<br>",
        class_of(cell),
        escape(&cell.id()),
        escape(&cell.expect.label()),
        figures_line(cell)
    );
    run_links(body, cell);
    body.push_str("</td>");
}

fn details(body: &mut String, cell: &CellSummary) {
    let status = match cell.status {
        CellStatus::Met => "<span class=\"valid\">met</span>",
        CellStatus::Broken => "<span class=\"invalid\">broken</span>",
        CellStatus::Pending => "<span class=\"unknown\">pending</span>",
    };
    let _ = write!(
        body,
        "<h3 id=\"{}\">{}</h3>\n<p>Expected: <b>{}</b>{}. Status: {status}. {}</p>\n",
        escape(&cell.name),
        escape(&cell.id()),
        escape(&cell.expect.label()),
        if cell.expect.because.is_empty() {
            String::new()
        } else {
            format!(" ({})", escape(&cell.expect.because))
        },
        figures_line(cell)
    );
    for reason in &cell.reasons {
        let _ = writeln!(body, "<p class=\"invalid\">{}</p>", escape(reason));
    }
    body.push_str(
        "<table class=\"matrix\"><tr><th>#</th><th>seed</th><th>outcome</th><th>verdict</th>\
         <th>detected at</th><th>anomalies</th><th>report</th></tr>\n",
    );
    for (i, run) in cell.runs.iter().enumerate() {
        let outcome = run.outcome(&cell.expect).map_or("not run", RunOutcome::name);
        let verdict = run.validity.map_or("—".to_owned(), |v| format!("{v:?}").to_lowercase());
        let anomalies =
            run.anomalies.iter().map(|(k, n)| format!("{k} ×{n}")).collect::<Vec<_>>().join(", ");
        let report = run.dir.as_ref().map_or(String::new(), |d| {
            format!("<a href=\"{}/report.html\">{}</a>", escape(d), escape(d))
        });
        let error = run.error.as_ref().map_or(String::new(), |e| format!("<br>{}", escape(e)));
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
            i + 1,
            run.seed,
            outcome,
            verdict,
            run.detection_s.map_or("—".to_owned(), |t| format!("{t:.1} s")),
            escape(&anomalies),
            error,
            report
        );
    }
    body.push_str("</table>\n");
}
