//! `faultline check`: judge history files with a checker, print a summary,
//! optionally JSON and HTML, and exit 0 valid, 1 invalid, 2 unknown, 254 on
//! bad arguments or unreadable input.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use checkers::formats::{self, Format};
use checkers::registry::{self, CheckSpec};
use checkers::{Budget, Checker, History, Validity, Verdict, html};
use clap::Args;
use rayon::prelude::*;

use crate::EXIT_BAD_INPUT;

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
    /// Give up (verdict unknown) when the search holds this many MiB.
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

/// Runs `faultline check`.
pub fn run(args: CheckArgs) -> ExitCode {
    match run_inner(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faultline check: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn spec_from(args: &CheckArgs) -> anyhow::Result<CheckSpec> {
    let init = match &args.init {
        None => None,
        Some(text) => Some(parse_value(text).with_context(|| format!("--init {text:?}"))?),
    };
    let mut options = std::collections::BTreeMap::new();
    for kv in &args.options {
        let (k, v) =
            kv.split_once('=').with_context(|| format!("--opt {kv:?}: expected KEY=VALUE"))?;
        options.insert(k.to_owned(), v.to_owned());
    }
    let time = match args.time_limit {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => anyhow::bail!("--time-limit {s}: expected a positive number of seconds"),
        None => None,
    };
    Ok(CheckSpec {
        checker: args.checker.clone(),
        model: args.model.clone(),
        init,
        consistency_models: args.consistency_models.clone(),
        independent: args.independent,
        budget: Budget { time, memory: args.memory_limit.map(|m| m << 20) },
        options,
    })
}

/// Parses a value given on the command line: EDN (`nil`, `:k`, `[1 2]`) or JSON.
fn parse_value(text: &str) -> anyhow::Result<checkers::Value> {
    match edn_or_json(text) {
        Some(v) => Ok(v),
        None => anyhow::bail!("not an EDN or JSON value"),
    }
}

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
    outcome: anyhow::Result<(History, Verdict)>,
}

fn run_inner(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        emit(&registry::CheckerTable::builtin().describe())?;
        return Ok(ExitCode::SUCCESS);
    }
    let spec = spec_from(&args)?;
    let checker = registry::build(&spec)?;
    let results: Vec<FileResult> = args
        .files
        .par_iter()
        .map(|path| {
            let outcome = (|| {
                let mut history = formats::read_path(path, args.format)?;
                if spec.independent {
                    history = checkers::history::split_independent(history)?;
                }
                for note in history.notes() {
                    eprintln!("faultline check: {}", note.text);
                }
                let verdict = checkers::judge(checker.as_ref(), &history)?;
                Ok((history, verdict))
            })();
            FileResult { path: path.clone(), outcome }
        })
        .collect();

    let mut worst = Validity::Valid;
    let mut bad_input = false;
    if args.json {
        let items: Vec<serde_json::Value> = results
            .iter()
            .map(|r| match &r.outcome {
                Ok((_, v)) => serde_json::json!({"file": r.path, "verdict": v}),
                Err(e) => serde_json::json!({"file": r.path, "error": format!("{e:#}")}),
            })
            .collect();
        let doc = if items.len() == 1 { items[0].clone() } else { serde_json::Value::Array(items) };
        emit(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
    }
    for r in &results {
        match &r.outcome {
            Ok((_, v)) => worst = worst.max(v.validity),
            Err(e) => {
                bad_input = true;
                eprintln!("faultline check: {e:#}");
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
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    Ok(ExitCode::from(worst.exit_code() as u8))
}

/// Writes `text` to standard output. A reader that went away early
/// (`faultline check --json h.jsonl | head`) is not an error: what it read
/// was right, and the exit code still gives the verdict.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to standard output"),
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
                let _ = writeln!(out, "{name:<width$}  {:<8}  {:>9}  {e:#}", "error", "-");
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

fn write_html(
    out: &std::path::Path,
    checker: &dyn Checker,
    results: &[FileResult],
) -> anyhow::Result<()> {
    let mut pages = Vec::new();
    for r in results {
        if let Ok((h, v)) = &r.outcome {
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
            std::fs::write(out, html::page(&format!("{} check", checker.name()), &body))
                .with_context(|| format!("writing {}", out.display()))?;
        }
        return Ok(());
    }
    match pages.len() {
        1 => std::fs::write(out, html::page(&pages[0].title, &pages[0].body))
            .with_context(|| format!("writing {}", out.display()))?,
        _ => {
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            let mut index = String::from("<h1>faultline check</h1>\n<ul>\n");
            for p in &pages {
                let file = format!("{}.html", p.name);
                std::fs::write(out.join(&file), html::page(&p.title, &p.body))
                    .with_context(|| format!("writing {}", out.join(&file).display()))?;
                index.push_str(&format!(
                    "<li><a href=\"{file}\">{}</a></li>\n",
                    html::escape(&p.title)
                ));
            }
            index.push_str("</ul>\n");
            std::fs::write(out.join("index.html"), html::page("faultline check", &index))?;
        }
    }
    Ok(())
}
