//! Many seeds: each run on its own, on `parallel` threads, judged in memory;
//! only the runs that were not valid are written to the store as normal run
//! directories (`test.toml` with `runtime = "sim"`, `history.jsonl`,
//! `results.json`, `report.html`), so `faultline analyze`, `report` and
//! `serve` work on them. The results come back in seed order whatever the
//! threads' order, so the same sweep prints the same table.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use checkers::formats::{self, Format};
use checkers::{Validity, Verdict};
use results::RunDir;

use crate::SimError;
use crate::run::{Prepared, Simulated, run_seed};

/// One seed's outcome, as the table shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Its merged verdict.
    pub validity: Validity,
    /// The anomalies found (invalid), or why nothing could be decided (unknown).
    pub why: String,
    /// Operations in its history (invocations and completions).
    pub events: usize,
    /// Where it was written, when it was kept.
    pub run_dir: Option<PathBuf>,
}

/// What a sweep found, in seed order.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Every seed's outcome, sorted by seed.
    pub results: Vec<SeedResult>,
}

impl Sweep {
    /// The first seed that was not valid, invalid ones first.
    pub fn first_failure(&self) -> Option<&SeedResult> {
        let first = |v| self.results.iter().find(|r| r.validity == v);
        first(Validity::Invalid).or_else(|| first(Validity::Unknown))
    }

    /// The sweep's verdict: invalid if any seed was, else unknown if any
    /// was, else valid (and unknown when no seed ran: nothing was observed).
    pub fn validity(&self) -> Validity {
        let has = |v| self.results.iter().any(|r| r.validity == v);
        if has(Validity::Invalid) {
            Validity::Invalid
        } else if has(Validity::Unknown) || self.results.is_empty() {
            Validity::Unknown
        } else {
            Validity::Valid
        }
    }

    /// The table: valid, invalid and unknown counts per range of seeds
    /// (about ten rows), then the first failing seed.
    pub fn table(&self) -> String {
        let mut out = format!("{:<24} {:>7} {:>7} {:>7}\n", "seeds", "valid", "invalid", "unknown");
        let rows = self.results.len().div_ceil(10).max(1);
        for chunk in self.results.chunks(rows) {
            let (Some(a), Some(b)) = (chunk.first(), chunk.last()) else { continue };
            let count = |v| chunk.iter().filter(|r| r.validity == v).count();
            let range = if a.seed == b.seed {
                a.seed.to_string()
            } else {
                format!("{}-{}", a.seed, b.seed)
            };
            out.push_str(&format!(
                "{:<24} {:>7} {:>7} {:>7}\n",
                range,
                count(Validity::Valid),
                count(Validity::Invalid),
                count(Validity::Unknown)
            ));
        }
        match self.first_failure() {
            Some(r) => {
                out.push_str(&format!(
                    "first failing seed: {} ({}: {})\n",
                    r.seed,
                    r.validity.as_str(),
                    r.why
                ));
                if let Some(dir) = &r.run_dir {
                    out.push_str(&format!("  run directory: {}\n", dir.display()));
                }
            }
            None if self.results.is_empty() => out.push_str("no seed ran\n"),
            None => out.push_str("no failing seed\n"),
        }
        out
    }
}

/// The anomalies a verdict names, or why it is unknown, in one line.
pub fn why(verdict: &Verdict) -> String {
    match verdict.validity {
        Validity::Invalid => anomaly_kinds(verdict).into_iter().collect::<Vec<_>>().join(", "),
        Validity::Unknown => {
            let mut reasons = Vec::new();
            collect_reasons(verdict, &mut reasons);
            reasons.join("; ")
        }
        Validity::Valid => String::new(),
    }
}

/// The anomalies an invalid verdict names, as `checker kind` (a checker
/// that is invalid without naming one counts by its name); empty unless
/// the verdict is invalid.
pub fn anomaly_kinds(verdict: &Verdict) -> BTreeSet<String> {
    let mut kinds = BTreeSet::new();
    if verdict.validity == Validity::Invalid {
        collect_kinds(verdict, &mut kinds);
    }
    kinds
}

fn collect_kinds(v: &Verdict, kinds: &mut BTreeSet<String>) {
    for a in &v.anomalies {
        kinds.insert(format!("{} {}", v.checker, a.kind));
    }
    for c in &v.children {
        collect_kinds(c, kinds);
    }
    if v.validity == Validity::Invalid && v.anomalies.is_empty() && v.children.is_empty() {
        kinds.insert(v.checker.clone());
    }
}

fn collect_reasons(v: &Verdict, reasons: &mut Vec<String>) {
    if v.validity != Validity::Unknown {
        return;
    }
    if v.children.is_empty() {
        let reason = v.unknown_reason.clone().unwrap_or_else(|| v.summary.clone());
        reasons.push(format!("{}: {reason}", v.checker));
    }
    for c in &v.children {
        collect_reasons(c, reasons);
    }
}

/// Writes `run` as a normal run directory under `store`, with the command
/// that replays it when `prepared` knows one, and judges it again from its
/// files, as `faultline analyze` would; returns the directory.
pub fn keep(prepared: &Prepared, run: &Simulated, store: &Path) -> Result<PathBuf, SimError> {
    let name = format!("sim-{}", run.spec.test_name());
    let dir = RunDir::create(store, &name)?;
    dir.write_spec(&run.spec)?;
    if let Some(replay) = &prepared.replay {
        let path = dir.path().join(results::store::files::REPLAY);
        let line = replay.with_seed(run.seed) + "\n";
        std::fs::write(&path, line).map_err(|e| results::StoreError::io(&path, e))?;
    }
    let text = formats::write(&run.checked.history, Format::Jsonl);
    let path = dir.history_path();
    std::fs::write(&path, text).map_err(|e| results::StoreError::io(&path, e))?;
    harness::finish::finish_run(&dir, &run.spec, prepared.registry())?;
    Ok(dir.path().to_owned())
}

/// How to sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// The first seed.
    pub first: u64,
    /// How many seeds, from `first` on.
    pub count: u64,
    /// Threads running seeds at once (at least one).
    pub parallel: usize,
    /// Where to write the runs that were not valid; `None` keeps none.
    pub store: Option<PathBuf>,
}

/// Runs every seed of `opts`, calling `progress` after each (from the
/// thread that ran it), and returns the outcomes in seed order. The first
/// error stops the sweep.
pub fn sweep(
    prepared: &Prepared,
    opts: &SweepOptions,
    progress: &(dyn Fn(&SeedResult) + Sync),
) -> Result<Sweep, SimError> {
    let results = map_seeds(opts.first, opts.count, opts.parallel, &|seed| {
        let r = one(prepared, seed, opts.store.as_deref())?;
        progress(&r);
        Ok(r)
    })?;
    Ok(Sweep { results })
}

/// Calls `f` for the `count` seeds from `first` on, on `parallel` threads
/// taking the next seed as each finishes, and returns the results in seed
/// order whatever order the threads finished in. The first error stops
/// every thread at its next seed and is returned.
pub fn map_seeds<T: Send>(
    first: u64,
    count: u64,
    parallel: usize,
    f: &(dyn Fn(u64) -> Result<T, SimError> + Sync),
) -> Result<Vec<T>, SimError> {
    let next = AtomicU64::new(0);
    let results: Mutex<Vec<(u64, T)>> = Mutex::new(Vec::new());
    let failed: Mutex<Option<SimError>> = Mutex::new(None);
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count || failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                return;
            }
            let seed = first.wrapping_add(i);
            match f(seed) {
                Ok(r) => {
                    if let Ok(mut v) = results.lock() {
                        v.push((i, r));
                    }
                }
                Err(e) => {
                    if let Ok(mut f) = failed.lock() {
                        f.get_or_insert(e);
                    }
                    return;
                }
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1) {
            s.spawn(worker);
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    // By index, not seed: seeds wrap around at u64::MAX.
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

/// Runs one seed and keeps it in `store` unless it was valid.
fn one(prepared: &Prepared, seed: u64, store: Option<&Path>) -> Result<SeedResult, SimError> {
    let run = run_seed(prepared, seed)?;
    let validity = run.checked.verdict.validity;
    let run_dir = match store {
        Some(store) if validity != Validity::Valid => Some(keep(prepared, &run, store)?),
        _ => None,
    };
    Ok(SeedResult {
        seed,
        validity,
        why: why(&run.checked.verdict),
        events: run.checked.history.len(),
        run_dir,
    })
}
