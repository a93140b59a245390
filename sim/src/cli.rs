//! `faultline sim`: run a test's seeds in the simulation and print the
//! table, or replay one seed (`--seed S`) and keep its run directory. The
//! binary only parses these arguments and calls [`run`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use checkers::Validity;
use checkers::exit::{BAD_INPUT, HARNESS_FAILED, INVALID, UNKNOWN, VALID};
use harness::plugin::Registry;
use harness::{HarnessError, TestSpec};

use crate::matrix::{MatrixOptions, read_campaign, run_matrix, table};
use crate::run::{Prepared, Replay, options, prepare, run_seed};
use crate::sweep::{SweepOptions, keep, sweep, why};
use crate::{SimError, WorldConfig};

/// The arguments of `faultline sim`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// refstore's replication mode (raft, paxos, sync, async, multi-leader,
    /// causal, eventual, quorum).
    #[arg(long, default_value = "raft")]
    pub mode: String,
    /// The workload (as for `faultline test`).
    #[arg(long, default_value = "register")]
    pub workload: String,
    /// Fault packages, comma-separated: partition, kill, pause, clock,
    /// packet, file; `default`
    /// for the mode's own choice, `none` for no faults.
    #[arg(long, value_delimiter = ',', default_value = "default")]
    pub nemesis: Vec<String>,
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// The first seed of the sweep.
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// Replay one seed: run it and keep its run directory whatever its verdict.
    #[arg(long, conflicts_with_all = ["seeds", "first_seed", "parallel"])]
    pub seed: Option<u64>,
    /// With --seed: search for a smaller schedule (a shorter main phase,
    /// fewer client operations, fewer faults) that still fails with the
    /// same anomaly, keep it as a run directory and print the command
    /// that replays it.
    #[arg(long, requires = "seed")]
    pub shrink: bool,
    /// The most client operations the main phase hands out (the shrinker
    /// sets it; a replay repeats it).
    #[arg(long)]
    pub max_ops: Option<u64>,
    /// Faults of the schedule to leave out, by their place among its
    /// `start-*` operations, 0 first (the shrinker sets it; a replay
    /// repeats it).
    #[arg(long, value_delimiter = ',')]
    pub drop_faults: Vec<u64>,
    /// Seeds run at once, each on its own thread.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    pub nodes: u32,
    /// Client threads (0: nodes × 2).
    #[arg(long, default_value_t = 0)]
    pub concurrency: u32,
    /// Simulated seconds of the main phase.
    #[arg(long, default_value_t = 5.0)]
    pub time_limit: f64,
    /// Client operations per simulated second, in total (0: unlimited).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Simulated seconds between fault operations.
    #[arg(long, default_value_t = 1.0)]
    pub nemesis_interval: f64,
    /// Per-operation timeout in simulated milliseconds (then `info`).
    #[arg(long, default_value_t = 1000)]
    pub op_timeout_ms: u64,
    /// Simulated seconds after healing before the final operations.
    #[arg(long, default_value_t = 2.0)]
    pub recovery: f64,
    /// Inject one of refstore's classic protocol bugs (ack-before-commit,
    /// vote-ignores-log, no-truncate for raft; forget-promises for paxos;
    /// ack-before-backup for sync), to measure whether the checkers find
    /// it; the same as `--opt bug=NAME`.
    #[arg(long)]
    pub bug: Option<String>,
    /// Options for the workload, target, nemesis or checkers: KEY=VALUE
    /// (repeatable); one that no part reads is refused.
    #[arg(long = "opt", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Where failing runs (and a replayed one) are written.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Probability that a message is lost.
    #[arg(long, default_value_t = WorldConfig::default().loss)]
    pub loss: f64,
    /// Probability that a message is delivered twice.
    #[arg(long, default_value_t = WorldConfig::default().duplicate)]
    pub duplicate: f64,
    /// Probability that a crash also loses part of what a node wrote but
    /// did not sync (a power cut rather than a killed process).
    #[arg(long, default_value_t = WorldConfig::default().lose_unsynced)]
    pub lose_unsynced: f64,
    /// Run every cell of this campaign file (its matrix, test fields and
    /// expectations) over the seeds instead of one test, and judge each
    /// cell as `faultline campaign` does.
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "mode", "workload", "nemesis", "nodes", "concurrency", "time_limit", "rate",
        "nemesis_interval", "op_timeout_ms", "recovery", "options", "seed", "shrink", "bug", "max_ops", "drop_faults",
    ])]
    pub campaign: Option<PathBuf>,
    /// With --campaign: a test field for every cell over the file's
    /// (`--set time_limit=10`); the value is TOML (strings may go bare).
    #[arg(long = "set", value_name = "FIELD=VALUE", requires = "campaign")]
    pub set: Vec<String>,
    /// With --campaign: only the cells with this axis value (`--only
    /// mode=async`); repeat to narrow further.
    #[arg(long, value_name = "AXIS=VALUE", requires = "campaign")]
    pub only: Vec<String>,
    /// The largest wall-clock offset of a node, either way (milliseconds).
    #[arg(long, default_value_t = WorldConfig::default().clock_offset_ms)]
    pub clock_offset_ms: i64,
    /// The largest drift of a node's clock, either way (parts per million).
    #[arg(long, default_value_t = WorldConfig::default().drift_ppm)]
    pub drift_ppm: i64,
}

impl SimArgs {
    /// The test these arguments describe.
    pub fn spec(&self) -> Result<TestSpec, HarnessError> {
        let mut spec = TestSpec {
            target: "refstore".into(),
            mode: self.mode.clone(),
            workload: self.workload.clone(),
            nemesis: self.nemesis.clone(),
            nodes: self.nodes,
            concurrency: self.concurrency,
            time_limit: self.time_limit,
            rate: self.rate,
            nemesis_interval: self.nemesis_interval,
            op_timeout_ms: self.op_timeout_ms,
            recovery: self.recovery,
            store: self.store.clone(),
            ..TestSpec::default()
        };
        for kv in &self.options {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                HarnessError::spec("command line", "--opt", format!("{kv:?} is not KEY=VALUE"))
            })?;
            spec.options.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        if let Some(bug) = &self.bug {
            spec.options.insert("bug".to_owned(), bug.clone());
        }
        if let Some(n) = self.max_ops {
            spec.options.insert(options::MAX_OPS.to_owned(), n.to_string());
        }
        if !self.drop_faults.is_empty() {
            let list: Vec<String> = self.drop_faults.iter().map(u64::to_string).collect();
            spec.options.insert(options::DROP_FAULTS.to_owned(), list.join(","));
        }
        spec.validate("command line")?;
        Ok(spec)
    }

    /// The `faultline sim` command that replays `seed` with these arguments:
    /// every setting spelled out, so the command means the same whatever
    /// the defaults become.
    pub fn replay_command(&self, seed: u64) -> String {
        self.replay().with_seed(seed)
    }

    /// [`SimArgs::replay_command`] without its seed.
    pub fn replay(&self) -> Replay {
        let mut words: Vec<String> = vec!["faultline".into(), "sim".into()];
        let mut push = |flag: &str, value: String| {
            words.push(format!("--{flag}"));
            words.push(value);
        };
        push("mode", self.mode.clone());
        push("workload", self.workload.clone());
        push("nemesis", self.nemesis.join(","));
        push("nodes", self.nodes.to_string());
        push("concurrency", self.concurrency.to_string());
        push("time-limit", self.time_limit.to_string());
        push("rate", self.rate.to_string());
        push("nemesis-interval", self.nemesis_interval.to_string());
        push("op-timeout-ms", self.op_timeout_ms.to_string());
        push("recovery", self.recovery.to_string());
        if let Some(bug) = &self.bug {
            push("bug", bug.clone());
        }
        for kv in &self.options {
            push("opt", kv.clone());
        }
        if let Some(n) = self.max_ops {
            push("max-ops", n.to_string());
        }
        if !self.drop_faults.is_empty() {
            let list: Vec<String> = self.drop_faults.iter().map(u64::to_string).collect();
            push("drop-faults", list.join(","));
        }
        self.finish_replay(words, "--seed")
    }

    /// The `faultline sim --campaign` command that runs one seed of a
    /// cell: the file, its `--set`s, one seed, and the world spelled out;
    /// the matrix adds the cell as `--only`s. The seed's flag is
    /// `--first-seed`.
    pub fn campaign_replay(&self, file: &Path) -> Replay {
        let mut words: Vec<String> = vec!["faultline".into(), "sim".into()];
        let mut push = |flag: &str, value: String| {
            words.push(format!("--{flag}"));
            words.push(value);
        };
        push("campaign", file.to_string_lossy().into_owned());
        for set in &self.set {
            push("set", set.clone());
        }
        push("seeds", "1".into());
        self.finish_replay(words, "--first-seed")
    }

    /// Ends a replay command: the world's settings and the store, every
    /// one spelled out, then the words quoted for a shell.
    fn finish_replay(&self, mut words: Vec<String>, seed_flag: &'static str) -> Replay {
        let world = [
            ("loss", self.loss.to_string()),
            ("duplicate", self.duplicate.to_string()),
            ("lose-unsynced", self.lose_unsynced.to_string()),
            ("clock-offset-ms", self.clock_offset_ms.to_string()),
            ("drift-ppm", self.drift_ppm.to_string()),
            ("store", self.store.to_string_lossy().into_owned()),
        ];
        for (flag, value) in world {
            words.push(format!("--{flag}"));
            words.push(value);
        }
        let command = words.iter().map(|w| shell_word(w)).collect::<Vec<_>>().join(" ");
        Replay { command, seed_flag }
    }

    /// The simulated world these arguments describe.
    pub fn world(&self) -> WorldConfig {
        WorldConfig {
            loss: self.loss,
            duplicate: self.duplicate,
            lose_unsynced: self.lose_unsynced,
            clock_offset_ms: self.clock_offset_ms,
            drift_ppm: self.drift_ppm,
            ..WorldConfig::default()
        }
    }
}

/// `w` as one shell word: as it is when it holds only safe characters,
/// else single-quoted.
pub(crate) fn shell_word(w: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_.,=/:+-@%".contains(c);
    if !w.is_empty() && w.chars().all(safe) {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

fn exit_for(e: &SimError) -> i32 {
    match e {
        SimError::Config { .. } | SimError::Unsupported(_) | SimError::Core(_) => BAD_INPUT,
        SimError::Harness(h) => harness::cli::exit_code_for(h),
        _ => HARNESS_FAILED,
    }
}

fn exit_for_validity(v: Validity) -> i32 {
    match v {
        Validity::Valid => VALID,
        Validity::Invalid => INVALID,
        Validity::Unknown => UNKNOWN,
    }
}

/// Runs `faultline sim` and returns its exit code: 0 every seed valid, 1
/// some seed invalid, 2 some unknown and none invalid, 254 bad arguments,
/// 3 the simulation itself failed.
pub fn run(args: &SimArgs, registry: &Registry) -> i32 {
    if let Some(path) = &args.campaign {
        return campaign(path, args, registry).unwrap_or_else(|e| {
            eprintln!("faultline sim: {e}");
            exit_for(&e)
        });
    }
    let prepared = match args
        .spec()
        .map_err(SimError::from)
        .and_then(|spec| prepare(spec, args.world(), registry))
    {
        Ok(mut p) => {
            p.replay = Some(args.replay());
            p
        }
        Err(e) => {
            eprintln!("faultline sim: {e}");
            return exit_for(&e);
        }
    };
    let result = match args.seed {
        Some(seed) if args.shrink => shrink_seed(seed, args, registry),
        Some(seed) => replay(&prepared, seed, args),
        None => many(&prepared, args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("faultline sim: {e}");
        exit_for(&e)
    })
}

fn replay(prepared: &Prepared, seed: u64, args: &SimArgs) -> Result<i32, SimError> {
    let run = run_seed(prepared, seed)?;
    let dir = keep(prepared, &run, &args.store)?;
    let v = &run.checked.verdict;
    println!("seed {seed}: {} {}", v.validity.as_str(), why(v));
    println!(
        "{} events in {:.1} simulated s; {} messages ({} lost, {} duplicated, {} dropped by cut links or down nodes)",
        run.checked.history.len(),
        run.simulated_ns as f64 / 1e9,
        run.world.sent,
        run.world.lost,
        run.world.duplicated,
        run.world.dropped
    );
    println!("run directory: {}", dir.display());
    Ok(exit_for_validity(v.validity))
}

fn shrink_seed(seed: u64, args: &SimArgs, registry: &Registry) -> Result<i32, SimError> {
    let started = Instant::now();
    let report = crate::shrink::shrink(args, seed, registry, crate::shrink::DEFAULT_RUNS)?;
    // Wall time is reported, never used by the search.
    let elapsed = started.elapsed().as_secs_f64();
    print!("{}", report.summary());
    println!("shrunk in {elapsed:.1} s");
    Ok(INVALID)
}

fn many(prepared: &Prepared, args: &SimArgs) -> Result<i32, SimError> {
    let opts = SweepOptions {
        first: args.first_seed,
        count: args.seeds,
        parallel: args.parallel,
        store: Some(args.store.clone()),
    };
    // Wall time is reported, never used: the runs themselves see only simulated time.
    let started = Instant::now();
    let result = sweep(prepared, &opts, &|_| {})?;
    let elapsed = started.elapsed().as_secs_f64();
    print!("{}", result.table());
    let events: usize = result.results.iter().map(|r| r.events).sum();
    println!(
        "{} seeds, {} history events, in {elapsed:.1} s on {} thread(s): {:.0} runs per minute",
        result.results.len(),
        events,
        opts.parallel.max(1),
        result.results.len() as f64 * 60.0 / elapsed.max(1e-9)
    );
    Ok(exit_for_validity(result.validity()))
}

/// `--campaign FILE`: every cell over the seeds; exit 1 when a simulated
/// cell is broken, 2 when nothing was judged (no seeds, no cell simulated),
/// else 0.
fn campaign(path: &Path, args: &SimArgs, registry: &Registry) -> Result<i32, SimError> {
    let file = read_campaign(path, &args.set, &args.only)?;
    let opts = MatrixOptions {
        first: args.first_seed,
        count: args.seeds,
        parallel: args.parallel,
        store: Some(args.store.clone()),
        replay: Some(args.campaign_replay(path)),
    };
    let started = Instant::now();
    let cells =
        run_matrix(&file, &path.display().to_string(), &args.world(), registry, &opts, &|c| {
            eprintln!(
                "faultline sim: {} {} ({:.0} s)",
                c.id,
                c.status(),
                started.elapsed().as_secs_f64()
            );
        })?;
    print!("{}", table(&cells, args.seeds));
    println!("in {:.1} s on {} thread(s)", started.elapsed().as_secs_f64(), opts.parallel.max(1));
    // Nothing observed proves nothing: no seed run, or no cell simulated, is unknown.
    let status = |s: &str| cells.iter().any(|c| c.status() == s);
    Ok(if status("broken") {
        INVALID
    } else if status("pending") || !status("met") {
        UNKNOWN
    } else {
        VALID
    })
}
