//! `faultline serve`: a small read-only web view over a store.
//!
//! | path | page |
//! |---|---|
//! | `/` | every run, newest first, coloured by verdict, with filters |
//! | `/runs/<test>/<timestamp>/` | the run's report (rendered on the fly if the run has none yet) |
//! | `/runs/<test>/<timestamp>/<file>` | the run's files: history, logs, node logs |
//! | `/compare?name=<test>` or `?campaign=<c>` or `?run=<test>/<ts>&run=...` | runs side by side |
//! | `/api/runs` | the index as JSON |
//!
//! The server only reads the store. It listens on 127.0.0.1 unless told
//! otherwise, and never serves a file outside a run directory.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use checkers::html::escape;
use checkers::registry::CheckerTable;

use crate::report::page;
use crate::store::{Run, RunSummary, Store, files};

/// The web application over `store`.
pub fn router(store: Store, checkers: CheckerTable) -> Router {
    let app = App { store, checkers: Arc::new(checkers) };
    Router::new()
        .route("/", get(index))
        .route("/api/runs", get(api_runs))
        .route("/compare", get(compare))
        .route("/runs/{name}/{ts}", get(run_redirect))
        .route("/runs/{name}/{ts}/", get(run_report))
        .route("/runs/{name}/{ts}/{*file}", get(run_file))
        .with_state(app)
}

/// What every page is served from: the store, and the checkers that draw
/// the evidence of a run whose report is not written yet.
#[derive(Clone)]
struct App {
    store: Store,
    checkers: Arc<CheckerTable>,
}

impl FromRef<App> for Store {
    fn from_ref(app: &App) -> Store {
        app.store.clone()
    }
}

/// Serves `store` on `addr` until Ctrl-C, on a runtime of its own (so the
/// binary needs no async code). `ready` is called with the bound address
/// (useful with port 0) before the first request is accepted.
pub fn run_server(
    store: Store,
    checkers: CheckerTable,
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        ready(listener.local_addr()?);
        axum::serve(listener, router(store, checkers))
            .with_graceful_shutdown(async {
                // If the signal handler cannot be installed, serve until killed.
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            })
            .await
    })
}

/// An error page with a status code.
struct PageError(StatusCode, String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = page(
            "faultline",
            &format!(
                "<h1>{}</h1><p>{}</p><p><a href=\"/\">all runs</a></p>",
                self.0,
                escape(&self.1)
            ),
        );
        (self.0, Html(body)).into_response()
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, PageError> + Send + 'static,
) -> Result<T, PageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

/// Percent-encodes one URL path component.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn run_url(name: &str, ts: &str) -> String {
    format!("/runs/{}/{}/", enc(name), enc(ts))
}

/// Filters of the index, from the query string.
#[derive(Debug, Default, serde::Deserialize)]
struct Filters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    workload: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    fault: String,
}

impl Filters {
    fn keep(&self, r: &RunSummary) -> bool {
        let q = self.q.to_lowercase();
        (q.is_empty()
            || r.name.to_lowercase().contains(&q)
            || r.timestamp.to_lowercase().contains(&q)
            || r.seed.as_deref().is_some_and(|s| s.contains(&q)))
            && (self.status.is_empty() || r.status() == self.status)
            && (self.workload.is_empty() || r.workload.as_deref() == Some(self.workload.as_str()))
            && (self.target.is_empty() || r.target.as_deref() == Some(self.target.as_str()))
            && (self.fault.is_empty() || r.faults.contains(&self.fault))
    }
}

fn list(store: &Store) -> Result<Vec<RunSummary>, PageError> {
    store.list().map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

const INDEX_STYLE: &str = "<style>\
    table.runs tr.run { color: inherit; font-weight: normal; }\
    table.runs td.status { width: .6em; padding: 0; } td.status.valid { background: var(--ok); }\
    td.status.invalid { background: var(--fail); } td.status.unknown { background: var(--info); }\
    td.status.harness-error { background: #555; } td.status.unchecked { background: #ccc; }\
    form.filters { margin: .8em 0; } form.filters > * { margin-right: .5em; }\
    .bar { display: inline-block; height: .7em; background: #90caf9; vertical-align: middle; margin-right: .3em; }\
    .badge { display:inline-block; padding:0 .4em; border-radius:3px; color:#fff; font-size:11px; background:#777; }\
    .badge.valid { background: var(--ok); } .badge.invalid { background: var(--fail); } .badge.unknown { background: var(--info); }\
    </style>";

fn select(name: &str, label: &str, options: &BTreeSet<String>, chosen: &str) -> String {
    let mut s = format!("<label>{label} <select name=\"{name}\"><option value=\"\">any</option>");
    for o in options {
        let sel = if o == chosen { " selected" } else { "" };
        let _ = write!(s, "<option{sel}>{}</option>", escape(o));
    }
    s.push_str("</select></label>");
    s
}

fn badges(checks: &[(String, checkers::Validity)]) -> String {
    checks
        .iter()
        .map(|(n, v)| format!("<span class=\"badge {v}\" title=\"{v}\">{}</span>", escape(n)))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn index(
    State(store): State<Store>,
    Query(f): Query<Filters>,
) -> Result<Html<String>, PageError> {
    let runs = blocking(move || list(&store)).await?;
    let opts = |get: &dyn Fn(&RunSummary) -> Vec<String>| -> BTreeSet<String> {
        runs.iter().flat_map(get).collect()
    };
    let workloads = opts(&|r| r.workload.iter().cloned().collect());
    let targets = opts(&|r| r.target.iter().cloned().collect());
    let faults = opts(&|r| r.faults.clone());
    let statuses: BTreeSet<String> = ["valid", "invalid", "unknown", "harness-error", "unchecked"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let shown: Vec<&RunSummary> = runs.iter().filter(|r| f.keep(r)).collect();
    let mut b = String::from(INDEX_STYLE);
    let _ = write!(
        b,
        "<h1>faultline runs</h1><p class=\"muted\" id=\"run-count\">{} of {} runs</p>\
         <form class=\"filters\" method=\"get\" action=\"/\"><input name=\"q\" placeholder=\"name, time or seed\" value=\"{}\">{}{}{}{}\
         <button type=\"submit\">filter</button> <a href=\"/\">clear</a></form>",
        shown.len(),
        runs.len(),
        escape(&f.q),
        select("status", "verdict", &statuses, &f.status),
        select("workload", "workload", &workloads, &f.workload),
        select("target", "target", &targets, &f.target),
        select("fault", "fault", &faults, &f.fault),
    );
    b.push_str(
        "<form method=\"get\" action=\"/compare\"><table class=\"runs\"><tr><th></th><th></th><th>test</th><th>time</th>\
         <th>verdict</th><th>checkers</th><th>workload</th><th>target</th><th>faults</th><th>operations</th><th>seed</th></tr>",
    );
    for r in &shown {
        let ops = r
            .operations
            .map(|o| format!("{} ok / {} fail / {} info", o.ok, o.fail, o.info))
            .unwrap_or_default();
        let verdict = match (&r.problem, r.status()) {
            (Some(p), s) => format!(
                "{s} <span class=\"problem\" title=\"{}\">(unreadable file)</span>",
                escape(p)
            ),
            (None, s) => s.to_owned(),
        };
        let verdict = match &r.interrupted {
            Some(why) => {
                format!(
                    "{verdict} <span class=\"interrupted\" title=\"{}\">(interrupted)</span>",
                    escape(why)
                )
            }
            None => verdict,
        };
        let _ = write!(
            b,
            "<tr class=\"run {st}\"><td class=\"status {st}\"></td><td><input type=\"checkbox\" name=\"run\" value=\"{}/{}\"></td>\
             <td><a href=\"/compare?name={}\">{}</a></td><td><a href=\"{}\">{}</a></td><td>{verdict}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{ops}</td><td>{}</td></tr>",
            escape(&r.name),
            escape(&r.timestamp),
            enc(&r.name),
            escape(&r.name),
            run_url(&r.name, &r.timestamp),
            escape(&r.timestamp),
            badges(&r.checks),
            escape(r.workload.as_deref().unwrap_or("")),
            escape(r.target.as_deref().unwrap_or("")),
            escape(&r.faults.join(", ")),
            escape(r.seed.as_deref().unwrap_or("")),
            st = r.status(),
        );
    }
    b.push_str("</table><p><button type=\"submit\">compare selected runs</button></p></form>");
    if runs.is_empty() {
        b.push_str("<p>The store is empty: run <code>faultline test</code> to record a run.</p>");
    }
    Ok(Html(page("faultline runs", &b)))
}

async fn api_runs(State(store): State<Store>) -> Result<Response, PageError> {
    let runs = blocking(move || list(&store)).await?;
    Ok(axum::Json(runs).into_response())
}

async fn run_redirect(UrlPath((name, ts)): UrlPath<(String, String)>) -> Redirect {
    Redirect::permanent(&run_url(&name, &ts))
}

fn run_dir(store: &Store, name: &str, ts: &str) -> Result<PathBuf, PageError> {
    store.run_dir(name, ts).ok_or_else(|| {
        PageError(StatusCode::NOT_FOUND, format!("no run {name}/{ts} in this store"))
    })
}

async fn run_report(
    State(app): State<App>,
    UrlPath((name, ts)): UrlPath<(String, String)>,
) -> Result<Response, PageError> {
    let html = blocking(move || {
        let dir = run_dir(&app.store, &name, &ts)?;
        let stored = dir.join(files::REPORT);
        if stored.is_file() {
            return std::fs::read_to_string(&stored).map_err(|e| {
                PageError(StatusCode::INTERNAL_SERVER_ERROR, format!("{}: {e}", stored.display()))
            });
        }
        // No report yet (a run not yet checked, or one that crashed): draw it now.
        crate::render_run_dir(&dir, &app.checkers)
            .map(|(html, _, _)| html)
            .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await?;
    Ok(Html(html).into_response())
}

/// A path inside a run, checked to stay inside it.
fn safe_join(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let full = dir.join(rel).canonicalize().ok()?;
    let base = dir.canonicalize().ok()?;
    full.starts_with(&base).then_some(full)
}

fn content_type(path: &Path, head: &[u8]) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        // A prefix may end inside a UTF-8 character: an incomplete last
        // character (`error_len() == None`) still means text.
        _ => match std::str::from_utf8(head) {
            Ok(_) => "text/plain; charset=utf-8",
            Err(e) if e.error_len().is_none() => "text/plain; charset=utf-8",
            Err(_) => "application/octet-stream",
        },
    }
}

async fn run_file(
    State(store): State<Store>,
    UrlPath((name, ts, file)): UrlPath<(String, String, String)>,
) -> Result<Response, PageError> {
    let (dir, path, ct) = blocking(move || {
        let dir = run_dir(&store, &name, &ts)?;
        let path = safe_join(&dir, &file).ok_or_else(|| {
            PageError(StatusCode::NOT_FOUND, format!("no file {file} in run {name}/{ts}"))
        })?;
        // The type comes from the name, or from whether the start is text.
        let mut head = Vec::with_capacity(4096);
        if path.is_file() {
            let f = std::fs::File::open(&path).map_err(|e| {
                PageError(StatusCode::NOT_FOUND, format!("{}: {e}", path.display()))
            })?;
            let _ = std::io::Read::read_to_end(&mut std::io::Read::take(f, 4096), &mut head);
        }
        let ct = content_type(&path, &head);
        Ok((dir, path, ct))
    })
    .await?;
    if path.is_dir() {
        return Ok(Html(listing(&dir, &path)).into_response());
    }
    // Streamed, because a history or a node log can be hundreds of megabytes.
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| PageError(StatusCode::NOT_FOUND, format!("{}: {e}", path.display())))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok(([(header::CONTENT_TYPE, ct)], body).into_response())
}

fn listing(run: &Path, dir: &Path) -> String {
    let mut entries: Vec<(String, bool)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path().is_dir()))
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    let rel =
        dir.strip_prefix(run.canonicalize().unwrap_or_else(|_| run.to_owned())).unwrap_or(dir);
    let mut b = format!("<h1>{}</h1><ul>", escape(&rel.display().to_string()));
    for (name, is_dir) in entries {
        let slash = if is_dir { "/" } else { "" };
        let _ =
            write!(b, "<li><a href=\"{}{slash}\">{}{slash}</a></li>", enc(&name), escape(&name));
    }
    b.push_str("</ul>");
    page("files", &b)
}

/// Which runs to compare.
#[derive(Debug, Default)]
struct Selection {
    name: Option<String>,
    campaign: Option<String>,
    runs: Vec<(String, String)>,
}

async fn compare(
    State(store): State<Store>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Html<String>, PageError> {
    let mut sel = Selection::default();
    for (k, v) in pairs {
        match k.as_str() {
            "name" => sel.name = Some(v),
            "campaign" => sel.campaign = Some(v),
            "run" => {
                if let Some((n, t)) = v.split_once('/') {
                    sel.runs.push((n.to_owned(), t.to_owned()));
                }
            }
            _ => {}
        }
    }
    let html = blocking(move || compare_page(&store, &sel)).await?;
    Ok(Html(html))
}

fn compare_page(store: &Store, sel: &Selection) -> Result<String, PageError> {
    let summaries = list(store)?;
    let chosen: Vec<&RunSummary> = summaries
        .iter()
        .filter(|r| {
            sel.name.as_deref().is_some_and(|n| r.name == n)
                || sel.campaign.as_deref().is_some_and(|c| r.campaign.as_deref() == Some(c))
                || sel.runs.iter().any(|(n, t)| *n == r.name && *t == r.timestamp)
        })
        .collect();
    let title = match (&sel.name, &sel.campaign) {
        (Some(n), _) => format!("runs of {n}"),
        (_, Some(c)) => format!("campaign {c}"),
        _ => "selected runs".to_owned(),
    };
    let mut runs: Vec<Run> = Vec::new();
    let mut problems = Vec::new();
    for r in &chosen {
        let Some(dir) = store.run_dir(&r.name, &r.timestamp) else { continue };
        match Run::open(&dir) {
            Ok(run) => runs.push(run),
            Err(e) => problems.push(e.to_string()),
        }
    }
    // Oldest first, so a campaign reads left to right in time.
    runs.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then(a.name.cmp(&b.name)));
    let checkers: BTreeSet<String> = runs
        .iter()
        .flat_map(|r| {
            r.results.iter().flat_map(|res| res.checks.iter().map(|c| c.verdict.checker.clone()))
        })
        .collect();
    let max_rate =
        runs.iter().filter_map(|r| r.results.as_ref()?.history.ok_per_s).fold(0.0, f64::max);
    let max_p99 = runs
        .iter()
        .filter_map(|r| Some(r.results.as_ref()?.history.latency_ms?.p99))
        .fold(0.0, f64::max);
    let mut b = String::from(INDEX_STYLE);
    let _ = write!(b, "<h1>{}</h1><p><a href=\"/\">all runs</a></p>", escape(&title));
    for p in problems {
        let _ = write!(b, "<p class=\"problem\">{}</p>", escape(&p));
    }
    if runs.is_empty() {
        b.push_str("<p id=\"compare-empty\">No runs match.</p>");
        return Ok(page(&title, &b));
    }
    b.push_str("<table class=\"compare\"><tr><th></th><th>run</th><th>seed</th><th>verdict</th>");
    for c in &checkers {
        let _ = write!(b, "<th>{}</th>", escape(c));
    }
    b.push_str("<th>ok / fail / info</th><th>ok ops/s</th><th>ok p50 / p99 (ms)</th><th>faults</th><th>duration</th></tr>");
    for run in &runs {
        let res = run.results.as_ref();
        let summary = RunSummary::of(&run.dir);
        let _ = write!(
            b,
            "<tr><td class=\"status {st}\"></td><td><a href=\"{}\">{}/{}</a></td><td>{}</td><td>{st}</td>",
            run_url(&run.name, &run.timestamp),
            escape(&run.name),
            escape(&run.timestamp),
            escape(summary.seed.as_deref().unwrap_or("")),
            st = summary.status()
        );
        for c in &checkers {
            let v = res
                .and_then(|r| r.checks.iter().find(|x| x.verdict.checker == *c))
                .map(|x| x.verdict.validity);
            match v {
                Some(v) => {
                    let _ = write!(b, "<td><span class=\"badge {v}\">{v}</span></td>");
                }
                None => b.push_str("<td class=\"muted\">—</td>"),
            }
        }
        let h = res.map(|r| r.history.clone()).unwrap_or_default();
        let rate = h.ok_per_s.map(|r| {
            format!(
                "<span class=\"bar\" style=\"width:{:.0}px\"></span>{r:.0}",
                r / max_rate.max(1e-9) * 80.0
            )
        });
        let lat = h.latency_ms.map(|l| {
            format!(
                "<span class=\"bar\" style=\"width:{:.0}px;background:#ce93d8\"></span>{:.2} / {:.2}",
                l.p99 / max_p99.max(1e-9) * 80.0,
                l.p50,
                l.p99
            )
        });
        let faults: Vec<String> = h.faults.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        let _ = write!(
            b,
            "<td>{} / {} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            h.outcomes.ok,
            h.outcomes.fail,
            h.outcomes.info,
            rate.unwrap_or_default(),
            lat.unwrap_or_default(),
            escape(&faults.join(", ")),
            h.duration_s.map(|d| format!("{d:.1} s")).unwrap_or_default()
        );
    }
    b.push_str("</table>");
    Ok(page(&title, &b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_leave_the_run() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let run = tmp.path().join("t/1");
        std::fs::create_dir_all(run.join("nodes/n1")).expect("mkdir");
        std::fs::write(run.join("nodes/n1/log"), "x").expect("write");
        std::fs::write(tmp.path().join("secret"), "x").expect("write");
        assert!(safe_join(&run, "nodes/n1/log").is_some());
        assert!(safe_join(&run, "../../secret").is_none());
        assert!(safe_join(&run, "/etc/passwd").is_none());
        assert_eq!(enc("a b/c"), "a%20b%2Fc");
    }
}
