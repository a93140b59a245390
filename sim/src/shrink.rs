//! Shrinking (`faultline sim --seed S --shrink`): given a seed whose run is
//! invalid, search for a smaller schedule of the same seed that still fails
//! with the same anomaly (the same checker naming the same kind), and keep
//! the smallest as a normal run directory with the command that replays it.
//!
//! A schedule is narrowed three ways, all of which a replay repeats from
//! the command line: a shorter main phase (`--time-limit`), a cap on the
//! client operations it hands out (`--max-ops`), and faults left out
//! (`--drop-faults`: the nemesis still draws a left-out fault, so the
//! faults kept keep their shapes and targets). The search bisects the time
//! limit, then the operation budget, then tries leaving out each fault in
//! turn, and repeats the bisections once if faults went. Every candidate is
//! a whole deterministic run judged by the real checkers, so what the
//! search keeps is a run that fails, not a guess; the search is greedy and
//! may miss a smaller schedule (a smaller one need not fail just because a
//! larger one does).

use std::path::PathBuf;

use checkers::{OpType, Process};
use harness::plugin::Registry;
use serde_json::json;

use crate::SimError;
use crate::cli::SimArgs;
use crate::run::{Simulated, prepare, run_seed};
use crate::sweep::{anomaly_kinds, keep};

/// The most candidate runs a shrink from the command line tries.
pub const DEFAULT_RUNS: u32 = 200;

/// How big a run is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Size {
    /// Client operations invoked (the final phase's included).
    pub ops: u64,
    /// Faults started (`start-*` operations recorded).
    pub faults: u64,
    /// The main phase's time limit, simulated seconds.
    pub time_limit: f64,
}

/// What a shrink found.
#[derive(Debug)]
pub struct Shrunk {
    /// The seed.
    pub seed: u64,
    /// The anomaly kept failing (`checker kind`, as the sweep's table words it).
    pub anomaly: String,
    /// The run as asked.
    pub original: Size,
    /// The smallest failing run found.
    pub shrunk: Size,
    /// The arguments that replay the smallest run.
    pub args: SimArgs,
    /// Candidate runs tried (the original included).
    pub runs: u32,
    /// The run directory of the smallest run.
    pub run_dir: PathBuf,
    /// The command that replays it.
    pub command: String,
}

impl Shrunk {
    /// The figures and the replay command, for people.
    pub fn summary(&self) -> String {
        let s = |z: &Size| {
            format!(
                "{} client operations, {} faults, {} s main phase",
                z.ops, z.faults, z.time_limit
            )
        };
        format!(
            "seed {}: {}\n  from {}\n  to   {}\n  after {} runs\n  run directory: {}\n  replay: {}\n",
            self.seed,
            self.anomaly,
            s(&self.original),
            s(&self.shrunk),
            self.runs,
            self.run_dir.display(),
            self.command
        )
    }
}

fn size_of(run: &Simulated, args: &SimArgs) -> Size {
    let ops = run.checked.history.ops();
    let count = |f: &dyn Fn(&checkers::Op) -> bool| ops.iter().filter(|o| f(o)).count() as u64;
    Size {
        ops: count(&|o| o.kind == OpType::Invoke && matches!(o.process, Process::Client(_))),
        faults: count(&|o| o.process == Process::Nemesis && o.f.starts_with("start-")),
        time_limit: args.time_limit,
    }
}

/// The search's state: the arguments of the smallest failing run so far.
struct Search<'a> {
    registry: &'a Registry,
    seed: u64,
    anomaly: String,
    best: SimArgs,
    best_run: Simulated,
    runs: u32,
    budget: u32,
}

impl Search<'_> {
    /// Runs `args`; `Some(run)` when it fails with the anomaly sought.
    fn fails(&mut self, args: &SimArgs) -> Result<Option<Simulated>, SimError> {
        self.runs += 1;
        let prepared = prepare(args.spec()?, args.world(), self.registry)?;
        let run = run_seed(&prepared, self.seed)?;
        Ok(anomaly_kinds(&run.checked.verdict).contains(&self.anomaly).then_some(run))
    }

    fn spent(&self) -> bool {
        self.runs >= self.budget
    }

    /// Tries `args`; keeps it as the best when it fails.
    fn try_keep(&mut self, args: SimArgs) -> Result<bool, SimError> {
        if self.spent() {
            return Ok(false);
        }
        match self.fails(&args)? {
            Some(run) => {
                self.best = args;
                self.best_run = run;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Bisects the main phase's time limit, in tenths of a second.
    fn time_limit(&mut self) -> Result<(), SimError> {
        let (mut lo, mut hi) = (1u64, (self.best.time_limit * 10.0).ceil() as u64);
        while lo < hi && !self.spent() {
            let mid = (lo + hi) / 2;
            let candidate = SimArgs { time_limit: mid as f64 / 10.0, ..self.best.clone() };
            if self.try_keep(candidate)? {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(())
    }

    /// Bisects the client operation budget below what the best run used.
    fn op_budget(&mut self) -> Result<(), SimError> {
        let used = size_of(&self.best_run, &self.best).ops;
        let (mut lo, mut hi) = (0u64, self.best.max_ops.unwrap_or(used).min(used));
        while lo < hi && !self.spent() {
            let mid = (lo + hi) / 2;
            let candidate = SimArgs { max_ops: Some(mid), ..self.best.clone() };
            if self.try_keep(candidate)? {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(())
    }

    /// Leaves out each fault the best run started, one at a time, keeping
    /// every omission after which the run still fails. True when any went.
    fn faults(&mut self) -> Result<bool, SimError> {
        let mut dropped_any = false;
        // A fault's place counts the left-out ones too, so the places of
        // the faults a run started are those below its count plus its
        // dropped ones that are not dropped.
        let started =
            size_of(&self.best_run, &self.best).faults + self.best.drop_faults.len() as u64;
        for place in 0..started {
            if self.spent() {
                break;
            }
            if self.best.drop_faults.contains(&place) {
                continue;
            }
            let mut drop = self.best.drop_faults.clone();
            drop.push(place);
            drop.sort_unstable();
            let candidate = SimArgs { drop_faults: drop, ..self.best.clone() };
            let before = size_of(&self.best_run, &self.best).faults;
            // A place past the faults the run reaches changes nothing; only
            // an omission that removed a fault is kept.
            if let Some(run) = self.fails(&candidate)?
                && size_of(&run, &candidate).faults < before
            {
                self.best = candidate;
                self.best_run = run;
                dropped_any = true;
            }
        }
        Ok(dropped_any)
    }
}

/// Shrinks seed `seed` of the test `args` describes, trying at most `budget`
/// runs, and keeps the smallest failing run in `args.store`. Refuses a seed
/// whose run is not invalid: there is nothing to keep failing.
pub fn shrink(
    args: &SimArgs,
    seed: u64,
    registry: &Registry,
    budget: u32,
) -> Result<Shrunk, SimError> {
    let args = SimArgs { seed: Some(seed), shrink: false, ..args.clone() };
    let prepared = prepare(args.spec()?, args.world(), registry)?;
    let first = run_seed(&prepared, seed)?;
    let Some(anomaly) = anomaly_kinds(&first.checked.verdict).into_iter().next() else {
        return Err(SimError::Unsupported(format!(
            "seed {seed} is {}, not invalid: there is no failure to shrink",
            first.checked.verdict.validity.as_str()
        )));
    };
    let original = size_of(&first, &args);
    let mut search = Search {
        registry,
        seed,
        anomaly,
        best: args,
        best_run: first,
        runs: 1,
        budget: budget.max(1),
    };
    search.time_limit()?;
    search.op_budget()?;
    if search.faults()? {
        search.time_limit()?;
        search.op_budget()?;
    }
    let Search { best, best_run, runs, anomaly, .. } = search;
    let shrunk = size_of(&best_run, &best);
    let mut prepared = prepare(best.spec()?, best.world(), registry)?;
    prepared.replay = Some(best.replay());
    let run_dir = keep(&prepared, &best_run, &best.store)?;
    let command = best.replay_command(seed);
    let record = json!({
        "seed": seed,
        "anomaly": anomaly,
        "original": { "ops": original.ops, "faults": original.faults, "time_limit": original.time_limit },
        "shrunk": {
            "ops": shrunk.ops,
            "faults": shrunk.faults,
            "time_limit": best.time_limit,
            "max_ops": best.max_ops,
            "drop_faults": best.drop_faults,
        },
        "runs": runs,
        "replay": command,
    });
    let path = run_dir.join("shrink.json");
    let text = serde_json::to_string_pretty(&record).unwrap_or_default();
    std::fs::write(&path, text + "\n").map_err(|e| results::StoreError::io(&path, e))?;
    Ok(Shrunk { seed, anomaly, original, shrunk, args: best, runs, run_dir, command })
}
