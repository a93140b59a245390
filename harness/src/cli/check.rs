//! `faultline check`: judge history files with a checker from the
//! registry's table (built-in or plugin), print a summary, optionally JSON
//! and HTML, and exit 0 valid, 1 invalid, 2 unknown, 254 on bad arguments
//! or unreadable input.

use std::path::{Path, PathBuf};
use std::time::Duration;

use checkers::formats::{self, Format};
use checkers::registry::CheckSpec;
use checkers::{Budget, Checker, FromText, History, Validity, Verdict, html};
use clap::Args;
use rayon::prelude::*;

use super::EXIT_BAD_INPUT;
use crate::error::HarnessError;
use crate::plugin::Registry;

type Result<T> = std::result::Result<T, HarnessError>;

/// Options of `faultline check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// History files (JSONL, Jepsen EDN or log, Porcupine kv, elle-cli JSON).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The checker (`faultline check --list` shows them all).
    #[arg(long, short = 'c', default_value = "linearizable")]
    checker: String,
    /// The model, for checkers that take one: cas-register, register,
    /// multi-register, mutex, set, unordered-queue, fifo-queue, kv for
    /// linearizable; causal, ccv, causal-memory for causal.
    #[arg(long, short = 'm')]
    model: Option<String>,
    /// The model's initial value, as EDN or JSON (e.g. 0, nil, "x").
    #[arg(long)]
    init: Option<String>,
    /// Consistency models for the transactional checkers (comma-separated).
    #[arg(long, value_delimiter = ',')]
    consistency_models: Vec<String>,
    /// Read each op's value as an independent [key value] tuple.
    #[arg(long)]
    independent: bool,
    /// Checker-specific options, key=value (repeatable).
    #[arg(long = "opt", value_name = "KEY=VALUE")]
    options: Vec<String>,
    /// History format; detected from the content when left out.
    #[arg(long, short = 'f')]
    format: Option<Format>,
    /// Give up (verdict unknown) after this many seconds per file.
    #[arg(long, value_name = "SECONDS")]
    time_limit: Option<f64>,
    /// Give up (verdict unknown) when the check holds this many MiB more
    /// than when it began (default: half the machine's memory).
    #[arg(long, value_name = "MIB")]
    memory_limit: Option<usize>,
    /// Print the verdicts as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Write a self-contained HTML page of the evidence (a directory, one
    /// page per section, when the checker draws several pages).
    #[arg(long, value_name = "OUT")]
    html: Option<PathBuf>,
    /// List the checkers and exit.
    #[arg(long, exclusive = true)]
    list: bool,
}

/// Runs `faultline check` with the checkers of `registry`; returns the
/// exit code.
pub fn check(args: &CheckArgs, registry: &Registry) -> i32 {
    match run(args, registry) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faultline check: {e}");
            EXIT_BAD_INPUT
        }
    }
}

fn bad_arg(field: &str, message: String) -> HarnessError {
    HarnessError::spec("command line", field, message)
}

fn spec_from(args: &CheckArgs) -> Result<CheckSpec> {
    let init =
        match &args.init {
            None => None,
            Some(text) => Some(edn_or_json(text).ok_or_else(|| {
                bad_arg("--init", format!("{text:?} is not an EDN or JSON value"))
            })?),
        };
    let mut options = std::collections::BTreeMap::new();
    for kv in &args.options {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| bad_arg("--opt", format!("{kv:?}: expected KEY=VALUE")))?;
        options.insert(k.to_owned(), v.to_owned());
    }
    let time = match args.time_limit {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(bad_arg(
                "--time-limit",
                format!("{s}: expected a positive number of seconds"),
            ));
        }
        None => None,
    };
    Ok(CheckSpec {
        checker: args.checker.clone(),
        model: args.model.clone(),
        init,
        consistency_models: args.consistency_models.clone(),
        independent: args.independent,
        // Without --memory-limit, half the machine: a search must stop and
        // say unknown, never be killed by the kernel.
        budget: Budget {
            time,
            memory: args.memory_limit.map(|m| m << 20).or_else(crate::memory::default_limit),
        },
        options,
    })
}

/// Parses a value given on the command line: EDN (`nil`, `:k`, `[1 2]`) or JSON.
fn edn_or_json(text: &str) -> Option<checkers::Value> {
    if let Ok(v) = serde_json::from_str::<checkers::Value>(text) {
        return Some(v);
    }
    // A one-op EDN history gives us the EDN reader without a second parser.
    let probe = format!("{{:process 0, :type :invoke, :f :x, :value {text}}}");
    formats::parse(&probe, "--init", Some(Format::Edn)).ok().map(|h| h.ops()[0].value.clone())
}

struct FileResult {
    path: PathBuf,
    /// How long reading the history took (or failing to).
    read: std::time::Duration,
    /// The verdict, and the history it judged (none when the checker
    /// decided it straight from the file's text).
    outcome: Result<(Option<History>, Verdict)>,
}

/// What `checker` makes of the text of the history at `path`
/// (`Checker::check_text`) when it reads that text itself, and the time
/// taken before it began: finding the format and opening the file. (When
/// it decides, reading the text is part of the check, the `read` in its
/// `timings_ms`.) `Left` when it does not read this file's text, or the
/// file could not be opened: reading the history then words why.
fn from_text(path: &Path, format: Option<Format>, checker: &dyn Checker) -> (Duration, FromText) {
    let started = std::time::Instant::now();
    match formats::edn_head(path, format) {
        Ok(Some(head)) if checker.checks_text(&head) => {}
        _ => return (started.elapsed(), FromText::Left),
    }
    let Ok(mut file) = std::fs::File::open(path) else {
        return (started.elapsed(), FromText::Left);
    };
    let opened = started.elapsed();
    (opened, checker.check_text(&mut file, &path.display().to_string()))
}

fn run(args: &CheckArgs, registry: &Registry) -> Result<i32> {
    if args.list {
        emit(&registry.checkers().describe())?;
        return Ok(super::EXIT_VALID);
    }
    let spec = spec_from(args)?;
    let checker = registry.build_checker(&spec)?;
    let results: Vec<FileResult> = args
        .files
        .par_iter()
        .map(|path| {
            // Decided from the text, a file has no history to draw.
            let text_allowed = !spec.independent && args.html.is_none();
            let started = std::time::Instant::now();
            let (opened, tried) = if text_allowed {
                from_text(path, args.format, checker.as_ref())
            } else {
                (Duration::ZERO, FromText::Left)
            };
            let history = match tried {
                FromText::Decided(verdict) => {
                    let read = opened;
                    return FileResult { path: path.clone(), read, outcome: Ok((None, verdict)) };
                }
                FromText::Read(history) => Ok(history),
                FromText::Left => formats::read_path(path, args.format),
            };
            // Reading's time, the text path's included when it read the
            // text and left the check to the history.
            let read = started.elapsed();
            let outcome = (|| {
                let mut history = history?;
                if spec.independent {
                    history = checkers::history::split_independent(history)?;
                }
                for note in history.notes() {
                    eprintln!("faultline check: {}", note.text);
                }
                let verdict = checkers::judge(checker.as_ref(), &history)?;
                Ok((Some(history), verdict))
            })();
            FileResult { path: path.clone(), read, outcome }
        })
        .collect();

    let mut worst = Validity::Valid;
    let mut bad_input = false;
    if args.json {
        let items: Vec<serde_json::Value> = results
            .iter()
            .map(|r| {
                // Reading's time beside the checker's own (`elapsed`, and
                // `timings_ms` in the details of those that time stages).
                let read_ms = r.read.as_secs_f64() * 1000.0;
                match &r.outcome {
                    Ok((_, v)) => serde_json::json!({"file": r.path, "read_ms": read_ms, "verdict": v}),
                    Err(e) => {
                        serde_json::json!({"file": r.path, "read_ms": read_ms, "error": e.to_string()})
                    }
                }
            })
            .collect();
        let doc = if items.len() == 1 { items[0].clone() } else { serde_json::Value::Array(items) };
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| HarnessError::Internal(format!("verdicts as JSON: {e}")))?;
        emit(&format!("{text}\n"))?;
    }
    for r in &results {
        match &r.outcome {
            Ok((_, v)) => worst = worst.max(v.validity),
            Err(e) => {
                bad_input = true;
                eprintln!("faultline check: {e}");
            }
        }
    }
    if !args.json {
        if results.len() == 1 {
            if let Ok((_, v)) = &results[0].outcome {
                emit(&v.to_text())?;
            }
        } else {
            emit(&table(&results))?;
        }
    }
    if let Some(out) = &args.html {
        write_html(out, checker.as_ref(), &results)?;
    }
    // The process ends here: a history is millions of small allocations,
    // and freeing them one by one would add a noticeable pause (a third of
    // a second for a million transactions) to every large check.
    std::mem::forget(results);
    if bad_input {
        return Ok(EXIT_BAD_INPUT);
    }
    Ok(worst.exit_code())
}

/// Writes `text` to standard output. A reader that went away early
/// (`faultline check --json h.jsonl | head`) is not an error: what it read
/// was right, and the exit code still gives the verdict.
fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(|e| HarnessError::io("standard output", e)),
    }
}

/// One row per file: verdict, time, summary.
fn table(results: &[FileResult]) -> String {
    use std::fmt::Write;
    let width =
        results.iter().map(|r| r.path.display().to_string().len()).max().unwrap_or(4).max(4);
    let mut out = format!("{:<width$}  {:<8}  {:>9}  summary\n", "file", "verdict", "time");
    let (mut valid, mut invalid, mut unknown, mut errors) = (0, 0, 0, 0);
    for r in results {
        let name = r.path.display().to_string();
        match &r.outcome {
            Ok((_, v)) => {
                match v.validity {
                    Validity::Valid => valid += 1,
                    Validity::Invalid => invalid += 1,
                    Validity::Unknown => unknown += 1,
                }
                let _ = writeln!(
                    out,
                    "{name:<width$}  {:<8}  {:>7.1}ms  {}",
                    v.validity.as_str(),
                    v.elapsed.as_secs_f64() * 1000.0,
                    v.summary
                );
            }
            Err(e) => {
                errors += 1;
                let _ = writeln!(out, "{name:<width$}  {:<8}  {:>9}  {e}", "error", "-");
            }
        }
    }
    let _ = writeln!(
        out,
        "{} files: {valid} valid, {invalid} invalid, {unknown} unknown, {errors} unreadable",
        results.len()
    );
    out
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| HarnessError::io(path, e))
}

fn write_html(out: &Path, checker: &dyn Checker, results: &[FileResult]) -> Result<()> {
    let mut pages = Vec::new();
    for r in results {
        if let Ok((Some(h), v)) = &r.outcome {
            for mut p in checker.render_html(h, v) {
                if results.len() > 1 {
                    let stem = r
                        .path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    p.name = format!("{stem}-{}", p.name);
                    p.title = format!("{} — {}", r.path.display(), p.title);
                }
                pages.push(p);
            }
        }
    }
    if pages.is_empty() {
        // Checkers draw evidence, and a history without anomalies has none
        // (a valid history, or an unknown verdict): the page then says what
        // was found, so that --html always leaves a page for the verdict.
        let mut body = format!("<h1>{} check</h1>\n", html::escape(checker.name()));
        for r in results {
            if let Ok((_, v)) = &r.outcome {
                body.push_str(&format!(
                    "<h2>{}: {}</h2>\n<pre>{}</pre>\n",
                    html::escape(&r.path.display().to_string()),
                    v.validity.as_str(),
                    html::escape(&v.to_text())
                ));
            }
        }
        if body.contains("<h2>") {
            eprintln!(
                "faultline check: --html: the {} checker found nothing to draw; {} shows the verdict",
                checker.name(),
                out.display()
            );
            write(out, &html::page(&format!("{} check", checker.name()), &body))?;
        }
        return Ok(());
    }
    match pages.len() {
        1 => write(out, &html::page(&pages[0].title, &pages[0].body))?,
        _ => {
            std::fs::create_dir_all(out).map_err(|e| HarnessError::io(out, e))?;
            let mut index = String::from("<h1>faultline check</h1>\n<ul>\n");
            for p in &pages {
                let file = format!("{}.html", p.name);
                write(&out.join(&file), &html::page(&p.title, &p.body))?;
                index.push_str(&format!(
                    "<li><a href=\"{file}\">{}</a></li>\n",
                    html::escape(&p.title)
                ));
            }
            index.push_str("</ul>\n");
            write(&out.join("index.html"), &html::page("faultline check", &index))?;
        }
    }
    Ok(())
}
