//! `faultline campaign -f campaign.toml`: runs every cell of a test matrix
//! the number of times the file asks, in sequence or `--parallel N` at
//! once (each test on its own ports or namespaces), and keeps a campaign
//! directory with every run, `summary.json` and `summary.html`, both
//! rewritten after each run. Ctrl-C stops the running tests cleanly (they
//! heal and tear down) and keeps what ran; `faultline campaign --resume
//! DIR` runs what is missing, with the seeds planned at the start.
//!
//! Exit code: 0 when every cell met its expectation, 1 when one broke, 3
//! when the campaign was interrupted (or a run could not be judged), 254
//! for a bad campaign file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Args;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use results::RunDir;
use results::campaign::{
    CAMPAIGN_TOML, CampaignState, CampaignSummary, RunOutcome, RunRecord, RunState,
};

use super::{EXIT_HARNESS_FAILED, EXIT_INVALID, EXIT_VALID, exit_code_for};
use crate::campaign::{CampaignFile, Cell};
use crate::error::{HarnessError, Result};
use crate::interpreter::Progress;
use crate::plugin::Registry;
use crate::run::RunOptions;

/// `faultline campaign`: a matrix of tests, judged against expectations.
#[derive(Args, Debug, Clone, Default)]
pub struct CampaignArgs {
    /// The campaign file (see docs/campaigns.md).
    #[arg(short = 'f', long = "file", conflicts_with = "resume")]
    pub file: Option<PathBuf>,
    /// Continue the campaign in this directory.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Tests run at once (each on its own ports or namespaces).
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Runs per cell, instead of the file's `runs`.
    #[arg(long)]
    pub runs: Option<u32>,
    /// A test field for every cell, over the file's (`--set time_limit=10
    /// --set nemesis_interval=2`); the value is TOML (strings may go bare).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub set: Vec<String>,
    /// Only the cells whose id contains each of these `axis=value` words
    /// (comma-separated), e.g. `--only mode=async,nemesis=kill`.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// The campaign directory (default `<store>/campaigns/<name>-<time>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where runs are stored when `--out` is not given (default ./store).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The faultline executable nodes run (default: this one).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Print the cells and their expectations, and run nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A campaign ready to run: its directory, cells and summary.
struct Prepared {
    dir: PathBuf,
    cells: Vec<Cell>,
    summary: CampaignSummary,
}

/// Runs `faultline campaign`. Returns the exit code.
pub fn campaign(args: &CampaignArgs, registry: &Registry) -> i32 {
    let prepared = match prepare(args, registry) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("faultline campaign: {e}");
            return exit_code_for(&e);
        }
    };
    if args.dry_run {
        for (cell, s) in prepared.cells.iter().zip(&prepared.summary.cells) {
            println!("{:60} {} runs, expect {}", cell.id(), s.runs.len(), s.expect.label());
        }
        return EXIT_VALID;
    }
    let binary = match args.binary.clone().map(Ok).unwrap_or_else(std::env::current_exe) {
        Ok(b) => b,
        Err(e) => {
            eprintln!(
                "faultline campaign: cannot find the faultline executable: {e}; pass --binary"
            );
            return EXIT_HARNESS_FAILED;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("faultline campaign: cannot start the async runtime: {e}");
            return EXIT_HARNESS_FAILED;
        }
    };
    let Prepared { dir, cells, summary } = prepared;
    eprintln!("faultline: campaign {} ({} cells) in {}", summary.name, cells.len(), dir.display());
    let summary = Arc::new(Mutex::new(summary));
    let interrupted = runtime.block_on(run_all(
        &dir,
        &cells,
        summary.clone(),
        registry,
        binary,
        args.parallel.max(1),
    ));
    let mut summary = summary.lock().unwrap_or_else(|e| e.into_inner());
    summary.state = if interrupted { CampaignState::Interrupted } else { CampaignState::Complete };
    if let Err(e) = summary.write(&dir) {
        eprintln!("faultline campaign: {e}");
        return EXIT_HARNESS_FAILED;
    }
    print_table(&summary);
    let (met, broken, pending) = summary.counts();
    println!(
        "{met} cells met, {broken} broken, {pending} pending\nsummary: {}",
        dir.join(results::campaign::SUMMARY_HTML).display()
    );
    if interrupted {
        eprintln!(
            "faultline: interrupted; continue with: faultline campaign --resume {}",
            dir.display()
        );
        EXIT_HARNESS_FAILED
    } else if broken > 0 {
        EXIT_INVALID
    } else {
        EXIT_VALID
    }
}

/// Reads the campaign (new or resumed), checks every cell can run, and
/// plans the runs.
fn prepare(args: &CampaignArgs, registry: &Registry) -> Result<Prepared> {
    let (file, source, dir, existing) = match (&args.file, &args.resume) {
        (_, Some(dir)) => {
            if args.runs.is_some() || !args.set.is_empty() || args.out.is_some() {
                return Err(HarnessError::spec(
                    "command line",
                    "--resume",
                    "a resumed campaign runs as it was planned; --runs, --time-limit and --out \
                     cannot change it",
                ));
            }
            let path = dir.join(CAMPAIGN_TOML);
            let file = CampaignFile::from_file(&path)?;
            let summary = CampaignSummary::read(dir)?;
            (file, path.display().to_string(), dir.clone(), Some(summary))
        }
        (Some(path), None) => {
            let mut file = CampaignFile::from_file(path)?;
            if let Some(r) = args.runs {
                if r == 0 {
                    return Err(HarnessError::spec("command line", "--runs", "must be at least 1"));
                }
                file.runs = r;
            }
            for kv in &args.set {
                file.set_test_field(kv)?;
            }
            let store = args.store.clone().unwrap_or_else(|| PathBuf::from("store"));
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            let dir = args
                .out
                .clone()
                .unwrap_or_else(|| store.join("campaigns").join(format!("{}-{stamp}", file.name)));
            (file, path.display().to_string(), dir, None)
        }
        (None, None) => {
            return Err(HarnessError::spec(
                "command line",
                "-f",
                "name a campaign file (-f campaign.toml) or a campaign to resume (--resume DIR)",
            ));
        }
    };
    let mut file = file;
    if existing.is_none() {
        file.only.extend(args.only.iter().cloned());
    } else if !args.only.is_empty() {
        return Err(HarnessError::spec(
            "command line",
            "--only",
            "a resumed campaign runs the cells it planned; --only cannot change them",
        ));
    }
    let mut cells = file.cells(&source)?;
    // Every cell must be able to run before the first one does: a typo in
    // the last cell should not surface hours into the campaign.
    for cell in &mut cells {
        crate::run::resolve_defaults(&mut cell.spec, registry)?;
        crate::run::plan(&cell.spec, registry).map_err(|e| {
            HarnessError::spec(&source, format!("cell {}", cell.id()), e.to_string())
        })?;
    }
    let summary = match existing {
        Some(summary) => {
            let planned: Vec<String> = cells.iter().map(Cell::id).collect();
            let kept: Vec<String> = summary.cells.iter().map(|c| c.id()).collect();
            if planned != kept {
                return Err(HarnessError::spec(
                    &source,
                    "matrix",
                    "the campaign file no longer gives the cells its summary.json holds; \
                     resume only an unchanged campaign",
                ));
            }
            summary
        }
        None if args.dry_run => {
            let summaries = cells.iter().map(|c| c.summary(vec![0; file.runs as usize])).collect();
            CampaignSummary::new(&file.name, file.axes(), summaries)
        }
        None => {
            std::fs::create_dir_all(&dir).map_err(|e| HarnessError::io(&dir, e))?;
            let text = std::fs::read_to_string(args.file.as_deref().unwrap_or(Path::new("")))
                .map_err(|e| HarnessError::io(&source, e))?;
            write_effective_file(&dir, &text, &file)?;
            let summaries = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let seeds = (0..file.runs)
                        .map(|r| file.derived_seed(i, r).unwrap_or_else(fresh_seed))
                        .collect();
                    c.summary(seeds)
                })
                .collect();
            let mut s = CampaignSummary::new(&file.name, file.axes(), summaries);
            s.write(&dir)?;
            s
        }
    };
    Ok(Prepared { dir, cells, summary })
}

/// Keeps the campaign file in the campaign directory for `--resume`, with
/// the command line's changes (`--runs`, `--set`, `--only`) written
/// into it, so the resumed campaign is the one that started.
fn write_effective_file(dir: &Path, original: &str, file: &CampaignFile) -> Result<()> {
    let mut doc: toml::Table = toml::from_str(original)
        .map_err(|e| HarnessError::spec(dir.display().to_string(), "campaign", e.to_string()))?;
    doc.insert("runs".into(), toml::Value::Integer(i64::from(file.runs)));
    doc.insert("test".into(), toml::Value::Table(file.test.clone()));
    if !file.only.is_empty() {
        doc.insert(
            "only".into(),
            toml::Value::Array(file.only.iter().cloned().map(toml::Value::String).collect()),
        );
    }
    let text = toml::to_string(&doc)
        .map_err(|e| HarnessError::spec(dir.display().to_string(), "campaign", e.to_string()))?;
    let path = dir.join(CAMPAIGN_TOML);
    std::fs::write(&path, text).map_err(|e| HarnessError::io(&path, e))
}

fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // TOML integers are signed, so seeds stay below 2^63.
    std::collections::hash_map::RandomState::new().build_hasher().finish() & (i64::MAX as u64)
}

/// Runs every planned or interrupted run, at most `parallel` at once.
/// Returns whether Ctrl-C stopped the campaign.
async fn run_all(
    dir: &Path,
    cells: &[Cell],
    summary: Arc<Mutex<CampaignSummary>>,
    registry: &Registry,
    binary: PathBuf,
    parallel: usize,
) -> bool {
    let jobs: Vec<(usize, usize, u64)> = {
        let s = summary.lock().unwrap_or_else(|e| e.into_inner());
        s.cells
            .iter()
            .enumerate()
            .flat_map(|(ci, c)| {
                c.runs.iter().enumerate().filter_map(move |(ri, r)| {
                    matches!(r.state, RunState::Planned | RunState::Interrupted)
                        .then_some((ci, ri, r.seed))
                })
            })
            .collect()
    };
    let total = jobs.len();
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "\nfaultline: interrupted; stopping the running tests (they heal and tear down); \
                 what ran is kept"
            );
            let _ = tx.send(true);
        }
    });
    // One log for the campaign when tests overlap; each run's own log when
    // they run one at a time.
    if parallel > 1 {
        match std::fs::File::create(dir.join("faultline.log")) {
            Ok(f) => crate::logging::log_to(Some(f)),
            Err(e) => eprintln!("faultline campaign: no log file ({e}); continuing without"),
        }
    }
    let mut queue = jobs.into_iter();
    let mut running = FuturesUnordered::new();
    let mut done = 0usize;
    loop {
        while running.len() < parallel && !*rx.borrow() {
            let Some((ci, ri, seed)) = queue.next() else { break };
            let opts = RunOptions {
                interrupt: rx.clone(),
                progress: Arc::new(Progress::default()),
                binary: binary.clone(),
            };
            // Each run is a task of its own: a run that blocks or loses a
            // wake-up then stalls only itself, not every run polled beside
            // it, and a panic becomes that run's failure.
            let (dir, cell, registry) = (dir.to_owned(), cells[ci].clone(), registry.clone());
            let own_log = parallel == 1;
            let task = tokio::spawn(async move {
                run_one(&dir, &cell, seed, &registry, opts, own_log, ci, ri).await
            });
            running.push(async move {
                task.await.unwrap_or_else(|e| {
                    let mut record = RunRecord::planned(seed);
                    record.state = RunState::Failed;
                    record.error = Some(format!("the run's task ended abnormally: {e}"));
                    (ci, ri, record)
                })
            });
        }
        let Some((ci, ri, record)) = running.next().await else { break };
        done += 1;
        let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
        let cell = &mut s.cells[ci];
        let line = describe(&record, cell.expect.clone(), ri, cell.runs.len());
        cell.runs[ri] = record;
        println!("[{done}/{total}] {} {line}", cell.id());
        if let Err(e) = s.write(dir) {
            eprintln!("faultline campaign: {e}");
        }
    }
    crate::logging::log_to(None);
    *rx.borrow()
}

fn describe(
    record: &RunRecord,
    expect: results::campaign::Expectation,
    index: usize,
    runs: usize,
) -> String {
    let outcome = record.outcome(&expect).map_or("interrupted", RunOutcome::name);
    let at = record.detection_s.map_or(String::new(), |t| format!(" at {t:.1} s"));
    // A failed run says why on the spot: the summary keeps only counts.
    let why = record.error.as_ref().map_or(String::new(), |e| format!(" ({e})"));
    format!("run {}/{runs} seed {}: {outcome}{at}{why}", index + 1, record.seed)
}

/// Runs one test of `cell` with `seed` and records how it went.
#[allow(clippy::too_many_arguments)]
async fn run_one(
    dir: &Path,
    cell: &Cell,
    seed: u64,
    registry: &Registry,
    opts: RunOptions,
    own_log: bool,
    ci: usize,
    ri: usize,
) -> (usize, usize, RunRecord) {
    let mut record = RunRecord::planned(seed);
    let mut spec = cell.spec.clone();
    spec.seed = Some(seed);
    spec.store = dir.to_owned();
    let cancel = opts.interrupt.clone();
    let run_dir = match RunDir::create(dir, &spec.test_name()) {
        Ok(d) => d,
        Err(e) => {
            record.state = RunState::Failed;
            record.error = Some(e.to_string());
            return (ci, ri, record);
        }
    };
    record.dir = run_dir.path().strip_prefix(dir).ok().map(|p| p.to_string_lossy().into_owned());
    if own_log && let Ok(f) = std::fs::File::create(run_dir.log_path()) {
        crate::logging::log_to(Some(f));
    }
    let failed_dir = run_dir.clone();
    match crate::run::run_test(spec, registry, run_dir, opts).await {
        Ok(outcome) if outcome.stats.interrupted => record.state = RunState::Interrupted,
        Ok(outcome) => {
            let checked = &outcome.finished.checked;
            record.judged(&checked.history, &checked.verdict, &cell.expect);
        }
        Err(_) if *cancel.borrow() => record.state = RunState::Interrupted,
        Err(e) => {
            record.state = RunState::Failed;
            record.error = Some(e.to_string());
            if let Err(e) = crate::finish::record_failure(&failed_dir, &e.to_string()) {
                tracing::warn!("could not record the failure: {e}");
            }
        }
    }
    (ci, ri, record)
}

/// The matrix as text: one line per cell.
fn print_table(summary: &CampaignSummary) {
    println!(
        "{:58} {:28} {:>9} {:>15} {:>14}",
        "cell", "expected", "runs", "detected (CI)", "detection"
    );
    for c in &summary.cells {
        let f = &c.figures;
        let detected = match c.expect.verdict {
            results::campaign::Expected::Invalid => format!(
                "{:.0}% ({:.0}-{:.0})",
                f.rate * 100.0,
                f.rate_low * 100.0,
                f.rate_high * 100.0
            ),
            _ => format!("{} alarms", f.false_alarms),
        };
        let ttd = match (f.detection_median_s, f.detection_worst_s) {
            (Some(m), Some(w)) => format!("{m:.1}/{w:.1} s"),
            _ => "-".to_owned(),
        };
        let mut label = c.expect.label();
        label.truncate(28);
        println!(
            "{:58} {:28} {:>9} {:>15} {:>14} {:?}",
            c.id(),
            label,
            format!("{}/{}", f.completed, c.runs.len()),
            detected,
            ttd,
            c.status
        );
    }
}
