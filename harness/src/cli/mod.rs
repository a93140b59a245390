//! Every faultline command as a library function over a `Registry`, so the
//! `faultline` binary and a plugin author's own binary (see
//! `examples/plugin`) share one command line, and a plugin's workloads,
//! targets, nemeses and checkers are reachable from all of it: `test`,
//! `campaign`, `analyze`, `check`, `report`, `serve` and `clean`. Each returns the
//! process exit code (`checkers::exit`): 0 valid, 1 invalid, 2 unknown, 3
//! the harness itself failed (a node would not start, the run was
//! interrupted), 254 bad arguments or unreadable input.

mod campaign;
mod check;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use results::RunDir;

pub use self::campaign::{CampaignArgs, campaign};
pub use self::check::{CheckArgs, check};
pub use self::store::{ReportArgs, ServeArgs, report, serve};
use crate::error::HarnessError;
use crate::interpreter::Progress;
use crate::plugin::Registry;
use crate::run::RunOptions;
use crate::spec::{RuntimeKind, SshSpec, TestSpec};

pub use checkers::exit::{
    BAD_INPUT as EXIT_BAD_INPUT, HARNESS_FAILED as EXIT_HARNESS_FAILED, INVALID as EXIT_INVALID,
    UNKNOWN as EXIT_UNKNOWN, VALID as EXIT_VALID,
};

/// `faultline test`: run a test campaign. With no arguments: refstore in
/// raft mode, 5 local nodes, the register workload, for 30 seconds, under
/// the faults the target picks for its mode (raft: partitions, kills, pauses).
#[derive(Args, Debug, Clone, Default)]
pub struct TestArgs {
    /// A TOML test file; flags given as well override its fields.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// The test's name (folder under the store).
    #[arg(long)]
    pub name: Option<String>,
    /// The system under test.
    #[arg(long)]
    pub target: Option<String>,
    /// The target's mode (`--list` shows each target's modes).
    #[arg(long)]
    pub mode: Option<String>,
    /// The workload (`--list` shows them all).
    #[arg(long)]
    pub workload: Option<String>,
    /// Faults, comma-separated (partition,kill), or `none`; `default` (the
    /// default) stands for those the target picks for its mode.
    #[arg(long, value_delimiter = ',')]
    pub nemesis: Option<Vec<String>>,
    /// Seconds between fault operations.
    #[arg(long)]
    pub nemesis_interval: Option<f64>,
    /// Number of nodes.
    #[arg(long)]
    pub nodes: Option<u32>,
    /// Seconds of the main phase.
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Client threads (default: nodes × 2).
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Client operations per second in total (0: unlimited).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Per-operation timeout in milliseconds.
    #[arg(long)]
    pub op_timeout_ms: Option<u64>,
    /// Seconds to wait after healing before the final reads.
    #[arg(long)]
    pub recovery: Option<f64>,
    /// Node control: local (default), netns (root) or ssh.
    #[arg(long)]
    pub runtime: Option<RuntimeKind>,
    /// Replay a run: the seed it printed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where runs are stored (default ./store).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The faultline executable nodes run (default: this one).
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Options for the workload, target, nemesis or checkers: KEY=VALUE
    /// (repeatable). Each goes to every part that reads it; one that no
    /// part reads is refused.
    #[arg(long = "opt", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// The checkers that judge the run, comma-separated, instead of the
    /// workload's own; `default` names those (`--checker default,stats`).
    /// `faultline check --list` shows every checker.
    #[arg(long = "checker", value_delimiter = ',', value_name = "NAME")]
    pub checkers: Option<Vec<String>>,
    /// Consistency models for every checker that takes them (list-append,
    /// rw-register), the workload's own included.
    #[arg(long, value_delimiter = ',', value_name = "MODEL")]
    pub consistency_models: Option<Vec<String>>,
    /// The model for the checkers named by --checker that take one
    /// (linearizable: cas-register, set, fifo-queue...).
    #[arg(long)]
    pub model: Option<String>,
    /// SSH hosts, one per node, comma-separated (runtime ssh).
    #[arg(long, value_delimiter = ',')]
    pub ssh_hosts: Option<Vec<String>>,
    /// SSH user.
    #[arg(long)]
    pub ssh_user: Option<String>,
    /// SSH private key file.
    #[arg(long)]
    pub ssh_key: Option<PathBuf>,
    /// Run remote commands through sudo.
    #[arg(long)]
    pub ssh_sudo: bool,
    /// Accept unknown host keys (off by default: strict checking).
    #[arg(long)]
    pub ssh_no_strict_host_key_checking: bool,
    /// Known-hosts file.
    #[arg(long)]
    pub ssh_known_hosts: Option<PathBuf>,
    /// List the registered targets, workloads, nemeses and checkers.
    #[arg(long)]
    pub list: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// `faultline analyze RUN_DIR`: check a recorded run again.
#[derive(Args, Debug, Clone)]
pub struct AnalyzeArgs {
    /// The run directory (or a `latest` link).
    pub run_dir: PathBuf,
    /// Print the verdict as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `faultline clean`: remove leftovers of interrupted runs: by default only
/// those of finished runs in this store that belong to this user.
#[derive(Args, Debug, Clone)]
pub struct CleanArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// The store whose runs' leftovers to remove (default ./store).
    #[arg(long, conflicts_with = "all")]
    pub store: Option<PathBuf>,
    /// Remove every faultline leftover on the machine, whoever's and
    /// whatever store's, running tests included.
    #[arg(long)]
    pub all: bool,
}

/// Builds the spec from a file and flags.
pub fn spec_from_args(args: &TestArgs) -> Result<TestSpec, HarnessError> {
    let (mut spec, source) = match &args.file {
        Some(f) => (TestSpec::from_file(f)?, f.display().to_string()),
        None => (TestSpec::default(), "command line".to_owned()),
    };
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = &args.$field { spec.$field = v.clone(); } )* };
    }
    set!(target, mode, workload, nemesis, nemesis_interval, nodes, time_limit, concurrency, rate);
    set!(op_timeout_ms, recovery, runtime, store, name, checkers, consistency_models);
    if args.model.is_some() {
        spec.model = args.model.clone();
    }
    if args.seed.is_some() {
        spec.seed = args.seed;
    }
    if args.binary.is_some() {
        spec.binary = args.binary.clone();
    }
    for kv in &args.options {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            HarnessError::spec(&source, "--opt", format!("{kv:?} is not KEY=VALUE"))
        })?;
        spec.options.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    if let Some(hosts) = &args.ssh_hosts {
        let key = args.ssh_key.clone().ok_or_else(|| {
            HarnessError::spec(&source, "--ssh-key", "the ssh runtime needs --ssh-key")
        })?;
        let defaults: SshSpec =
            toml::from_str(&format!("hosts = []\nprivate_key = {:?}", key.display().to_string()))
                .map_err(|e| HarnessError::spec(&source, "--ssh-key", e.to_string()))?;
        spec.ssh = Some(SshSpec {
            hosts: hosts.clone(),
            user: args.ssh_user.clone().unwrap_or(defaults.user),
            sudo: args.ssh_sudo,
            strict_host_key_checking: !args.ssh_no_strict_host_key_checking,
            known_hosts: args.ssh_known_hosts.clone(),
            ..defaults
        });
    }
    spec.validate(&source)?;
    Ok(spec)
}

/// The exit code for a harness error.
pub fn exit_code_for(e: &HarnessError) -> i32 {
    match e {
        HarnessError::Spec { .. } | HarnessError::Unknown { .. } | HarnessError::History(_) => {
            EXIT_BAD_INPUT
        }
        _ => EXIT_HARNESS_FAILED,
    }
}

/// Runs `faultline test`: the run, then its verdicts, `results.json` and
/// `report.html` (see `crate::finish`). Returns the exit code.
pub fn test(args: &TestArgs, registry: &Registry) -> i32 {
    if args.list {
        for (kind, name, about) in registry.list() {
            println!("{kind:9} {name:16} {about}");
            for line in registry.details(kind, &name) {
                println!("{:27}{line}", "");
            }
        }
        return EXIT_VALID;
    }
    let mut spec = match spec_from_args(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("faultline test: {e}");
            return exit_code_for(&e);
        }
    };
    if let Err(e) = crate::run::resolve_defaults(&mut spec, registry) {
        eprintln!("faultline test: {e}");
        return exit_code_for(&e);
    }
    let seed = *spec.seed.get_or_insert_with(|| {
        // A fresh seed from the OS-seeded hasher keys; it is printed, so the
        // run can be replayed.
        use std::hash::{BuildHasher, Hasher};
        // TOML integers are signed, so seeds stay below 2^63.
        std::collections::hash_map::RandomState::new().build_hasher().finish() & (i64::MAX as u64)
    });
    let binary = match spec.binary.clone().map(Ok).unwrap_or_else(std::env::current_exe) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("faultline test: cannot find the faultline executable: {e}; pass --binary");
            return EXIT_HARNESS_FAILED;
        }
    };
    let run_dir = match RunDir::create(&spec.store, &spec.test_name()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("faultline test: {e}");
            return EXIT_HARNESS_FAILED;
        }
    };
    match std::fs::File::create(run_dir.log_path()) {
        Ok(f) => crate::logging::log_to(Some(f)),
        Err(e) => eprintln!("faultline test: no log file ({e}); continuing without"),
    }
    eprintln!(
        "faultline: seed {seed} (replay with --seed {seed}); run directory {}",
        run_dir.path().display()
    );
    let show_progress = !args.no_progress;
    let time_limit = spec.time_limit;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("faultline test: cannot start the async runtime: {e}");
            return EXIT_HARNESS_FAILED;
        }
    };
    let failed_dir = run_dir.clone();
    let result = runtime.block_on(async {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\nfaultline: interrupted; stopping clients, healing and tearing down (history is kept)");
                let _ = tx.send(true);
            }
        });
        let progress = Arc::new(Progress::default());
        let bar = show_progress.then(|| spawn_progress(progress.clone(), time_limit));
        let opts = RunOptions { interrupt: rx, progress, binary };
        // A task of its own, not polled by this block_on (ARCHITECTURE.md:
        // nothing polled by a block_on parks its thread).
        let registry = registry.clone();
        let task = tokio::spawn(async move {
            crate::run::run_test(spec, &registry, run_dir, opts).await
        });
        let r = task.await.unwrap_or_else(|e| {
            Err(HarnessError::Internal(format!("the run's task ended abnormally: {e}")))
        });
        if let Some((bar, task)) = bar {
            task.abort();
            bar.finish_and_clear();
        }
        r
    });
    crate::logging::log_to(None);
    match result {
        Ok(outcome) => {
            let verdict = &outcome.finished.checked.verdict;
            print!("{}", verdict.to_text());
            for w in &outcome.finished.warnings {
                eprintln!("faultline test: warning: {w}");
            }
            println!(
                "{} events in {:.1} s; run directory {}\nreplay: faultline test -f {}\nreport: {}",
                outcome.stats.events,
                outcome.stats.elapsed_ns as f64 / 1e9,
                outcome.run_dir.path().display(),
                outcome.run_dir.spec_path().display(),
                outcome.finished.report.display()
            );
            if outcome.stats.interrupted {
                eprintln!(
                    "faultline: the run was interrupted; the verdict covers the history up to then"
                );
                EXIT_HARNESS_FAILED
            } else {
                verdict.validity.exit_code()
            }
        }
        Err(e) => {
            eprintln!("faultline test: {e}\n(run directory {})", failed_dir.path().display());
            // The run says nothing about the system under test; its report
            // says why, with whatever history was recorded.
            if let Err(e) = crate::finish::record_failure(&failed_dir, &e.to_string()) {
                eprintln!("faultline test: could not record the failure: {e}");
            }
            exit_code_for(&e)
        }
    }
}

fn spawn_progress(
    progress: Arc<Progress>,
    time_limit: f64,
) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    use std::sync::atomic::Ordering::Relaxed;
    let bar = indicatif::ProgressBar::new((time_limit * 10.0) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let b = bar.clone();
    let task = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut last = (0u64, std::time::Instant::now());
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let done = progress.ok.load(Relaxed)
                + progress.fail.load(Relaxed)
                + progress.info.load(Relaxed);
            let dt = last.1.elapsed().as_secs_f64().max(1e-3);
            let rate = (done.saturating_sub(last.0)) as f64 / dt;
            last = (done, std::time::Instant::now());
            b.set_position((started.elapsed().as_secs_f64() * 10.0) as u64);
            b.set_message(format!(
                "{rate:>7.0} ops/s  ok {} fail {} info {}  fault: {}",
                progress.ok.load(Relaxed),
                progress.fail.load(Relaxed),
                progress.info.load(Relaxed),
                progress.current_faults()
            ));
        }
    });
    (bar, task)
}

/// Runs `faultline analyze`: checks a recorded run again and rewrites its
/// `results.json` and `report.html`. Returns the exit code.
pub fn analyze(args: &AnalyzeArgs, registry: &Registry) -> i32 {
    let bad = |e: &dyn std::fmt::Display| {
        eprintln!("faultline analyze: {e}");
        EXIT_BAD_INPUT
    };
    let run = match RunDir::open(&args.run_dir) {
        Ok(r) => r,
        Err(e) => return bad(&e),
    };
    let spec = match run.read_spec() {
        Ok(s) => s,
        Err(e) => return bad(&e),
    };
    match crate::finish::finish_run(&run, &spec, registry) {
        Ok(finished) => {
            let v = &finished.checked.verdict;
            if args.json {
                match serde_json::to_string_pretty(v) {
                    Ok(s) => println!("{s}"),
                    Err(e) => eprintln!("faultline analyze: {e}"),
                }
            } else {
                print!("{}", v.to_text());
            }
            for w in &finished.warnings {
                eprintln!("faultline analyze: warning: {w}");
            }
            eprintln!("report: {}", finished.report.display());
            v.validity.exit_code()
        }
        Err(e) => {
            let code = match e {
                HarnessError::Io { .. } | HarnessError::History(_) | HarnessError::Check(_) => {
                    EXIT_BAD_INPUT
                }
                ref other => exit_code_for(other),
            };
            eprintln!("faultline analyze: {e}");
            code
        }
    }
}

/// Runs `faultline clean`.
pub fn clean(args: &CleanArgs) -> i32 {
    let scope = if args.all {
        crate::clean::Scope::All
    } else {
        crate::clean::Scope::mine(args.store.as_deref().unwrap_or(Path::new("store")))
    };
    let report = crate::clean::clean(args.dry_run, &scope);
    for line in &report.removed {
        println!("{}{line}", if args.dry_run { "would remove " } else { "removed " });
    }
    for line in &report.kept {
        println!("kept {line}");
    }
    for line in &report.failed {
        eprintln!("faultline clean: {line}");
    }
    if report.removed.is_empty() && report.failed.is_empty() {
        println!("nothing to clean");
    }
    if report.failed.is_empty() { EXIT_VALID } else { EXIT_HARNESS_FAILED }
}
