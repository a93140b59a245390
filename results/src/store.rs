//! The on-disk store of runs: `store/<test-name>/<timestamp>/`.
//!
//! The harness creates a run directory and writes `test.toml`,
//! `history.jsonl`, `faultline.log` and `nodes/<node>/...` into it; after
//! checking, this crate adds `results.json` and `report.html`. Directory
//! names are opaque here: the timestamp is whatever the harness chose, and
//! runs sort by it as text (the harness writes sortable timestamps).
//! `latest` entries are symlinks to runs and are skipped when listing.

use std::path::{Path, PathBuf};

use checkers::{History, Validity};

use crate::error::StoreError;
use crate::run_results::RunResults;
use crate::spec::SpecFile;

/// File names inside a run directory.
pub mod files {
    /// The full test spec, with its seed.
    pub const SPEC: &str = "test.toml";
    /// The recorded history (faultline JSONL).
    pub const HISTORY: &str = "history.jsonl";
    /// The harness's own log.
    pub const LOG: &str = "faultline.log";
    /// Logs fetched from each node, one folder per node.
    pub const NODES: &str = "nodes";
    /// The checkers' verdicts (see `run_results`).
    pub const RESULTS: &str = "results.json";
    /// The self-contained HTML report.
    pub const REPORT: &str = "report.html";
    /// The symlink to the newest run.
    pub const LATEST: &str = "latest";
    /// Present when the run was cut short (Ctrl-C); holds why, in a line.
    /// Every later check of the run reads it, so `faultline analyze` still
    /// says the run was interrupted.
    pub const INTERRUPTED: &str = "interrupted";
    /// Present when the run replays by another command than `faultline
    /// test -f test.toml`: a simulated run, whose world settings are not
    /// in the spec. Holds that command, in a line.
    pub const REPLAY: &str = "replay";
}

/// The command that replays the run in `dir`, when it is not `faultline
/// test -f` (see [`files::REPLAY`]).
pub fn replay_command(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(files::REPLAY)).ok().map(|s| s.trim().to_owned())
}

/// Why the run in `dir` was cut short, when it was (see
/// [`files::INTERRUPTED`]).
pub fn interruption(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(files::INTERRUPTED)).ok().map(|s| s.trim().to_owned())
}

/// A store: the folder that holds every test's runs.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store rooted at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    /// The store's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every run, newest first. A run whose files cannot be read is still
    /// listed, with the problem in `RunSummary::problem`.
    pub fn list(&self) -> Result<Vec<RunSummary>, StoreError> {
        let mut runs = Vec::new();
        let tests = match std::fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(runs),
            Err(e) => return Err(StoreError::io(&self.root, e)),
        };
        for test in tests {
            let test = test.map_err(|e| StoreError::io(&self.root, e))?;
            if !is_real_dir(&test.path()) {
                continue;
            }
            let rd = std::fs::read_dir(test.path()).map_err(|e| StoreError::io(&test.path(), e))?;
            for run in rd {
                let run = run.map_err(|e| StoreError::io(&test.path(), e))?;
                let dir = run.path();
                if is_real_dir(&dir) && looks_like_run(&dir) {
                    runs.push(RunSummary::of(&dir));
                }
            }
        }
        runs.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then_with(|| a.name.cmp(&b.name)));
        Ok(runs)
    }

    /// The run directory of `name`/`timestamp`, if it is one. Both parts
    /// must be single path components, so a request cannot leave the store.
    pub fn run_dir(&self, name: &str, timestamp: &str) -> Option<PathBuf> {
        let safe = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\']);
        if !safe(name) || !safe(timestamp) {
            return None;
        }
        let dir = self.root.join(name).join(timestamp);
        (dir.is_dir() && looks_like_run(&dir)).then_some(dir)
    }
}

fn is_real_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).map(|m| m.is_dir()).unwrap_or(false)
}

/// True when `dir` holds any of the files a run has.
pub(crate) fn looks_like_run(dir: &Path) -> bool {
    dir.join(files::SPEC).is_file()
        || dir.join(files::HISTORY).is_file()
        || dir.join(files::RESULTS).is_file()
}

/// One run, opened: its directory and the small files describing it.
#[derive(Clone, Debug)]
pub struct Run {
    /// The run directory (symlinks such as `latest` resolved).
    pub dir: PathBuf,
    /// The test's name (the parent folder's name).
    pub name: String,
    /// The run's timestamp (the folder's name).
    pub timestamp: String,
    /// `test.toml`, when present.
    pub spec: Option<SpecFile>,
    /// `results.json`, when the run has been checked.
    pub results: Option<RunResults>,
}

impl Run {
    /// Opens the run in `dir` (which may be a `latest` symlink).
    pub fn open(dir: &Path) -> Result<Run, StoreError> {
        let dir = dir.canonicalize().map_err(|e| StoreError::io(dir, e))?;
        if !dir.is_dir() {
            return Err(StoreError::NotARun { path: dir, reason: "it is not a directory".into() });
        }
        if !looks_like_run(&dir) {
            return Err(StoreError::NotARun {
                path: dir,
                reason: format!(
                    "it has none of {}, {}, {}",
                    files::SPEC,
                    files::HISTORY,
                    files::RESULTS
                ),
            });
        }
        let spec = SpecFile::read(&dir.join(files::SPEC))?;
        let results = RunResults::read(&dir.join(files::RESULTS))?;
        let (name, timestamp) = names_of(&dir);
        Ok(Run { dir, name, timestamp, spec, results })
    }

    /// Reads the run's history.
    pub fn history(&self) -> Result<History, StoreError> {
        let path = self.dir.join(files::HISTORY);
        if !path.is_file() {
            return Err(StoreError::NotARun {
                path: self.dir.clone(),
                reason: format!("it has no {}", files::HISTORY),
            });
        }
        Ok(checkers::formats::read_path(&path, Some(checkers::formats::Format::Jsonl))?)
    }

    /// The files under `nodes/`, per node, with paths relative to the run.
    pub fn node_logs(&self) -> Vec<NodeLogs> {
        node_logs(&self.dir)
    }
}

/// The files under `run_dir/nodes/`, per node, with paths relative to `run_dir`.
pub fn node_logs(run_dir: &Path) -> Vec<NodeLogs> {
    let mut nodes = Vec::new();
    let Ok(rd) = std::fs::read_dir(run_dir.join(files::NODES)) else {
        return nodes;
    };
    let mut dirs: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    for d in dirs.into_iter().filter(|d| d.is_dir()) {
        let mut found = Vec::new();
        collect_files(&d, run_dir, &mut found, 0);
        found.sort();
        let node = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        nodes.push(NodeLogs { node, files: found });
    }
    nodes
}

/// A node's fetched logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLogs {
    /// The node's name.
    pub node: String,
    /// Files, as (path relative to the run directory with `/` separators, size in bytes).
    pub files: Vec<(String, u64)>,
}

fn collect_files(dir: &Path, base: &Path, out: &mut Vec<(String, u64)>, depth: usize) {
    // Node folders are shallow; the bound only guards against symlink loops.
    if depth > 4 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, base, out, depth + 1);
        } else if let (Ok(rel), Ok(meta)) = (p.strip_prefix(base), e.metadata()) {
            let rel: Vec<String> =
                rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push((rel.join("/"), meta.len()));
        }
    }
}

fn names_of(dir: &Path) -> (String, String) {
    let part = |p: Option<&Path>| {
        p.and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    };
    (part(dir.parent()), part(Some(dir)))
}

/// What the index of runs shows about one run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunSummary {
    /// The test's name (its folder).
    pub name: String,
    /// The run's timestamp (its folder).
    pub timestamp: String,
    /// The overall verdict; `None` when the run has not been checked.
    pub validity: Option<Validity>,
    /// Each checker's verdict.
    pub checks: Vec<(String, Validity)>,
    /// The harness failure, when the run could not be carried out.
    pub harness_error: Option<String>,
    /// Why the run was cut short, when it was.
    pub interrupted: Option<String>,
    /// From `test.toml`.
    pub workload: Option<String>,
    /// From `test.toml`.
    pub target: Option<String>,
    /// Fault kinds from `test.toml`.
    pub faults: Vec<String>,
    /// From `test.toml`.
    pub seed: Option<String>,
    /// From `test.toml`.
    pub campaign: Option<String>,
    /// Client operations and their outcomes, from `results.json`.
    pub operations: Option<crate::intervals::OutcomeCounts>,
    /// A file of the run that could not be read.
    pub problem: Option<String>,
}

impl RunSummary {
    /// Summarises the run in `dir`, recording rather than failing on unreadable files.
    pub fn of(dir: &Path) -> RunSummary {
        let (name, timestamp) = names_of(dir);
        let mut s = RunSummary {
            name,
            timestamp,
            validity: None,
            checks: Vec::new(),
            harness_error: None,
            interrupted: None,
            workload: None,
            target: None,
            faults: Vec::new(),
            seed: None,
            campaign: None,
            operations: None,
            problem: None,
        };
        match SpecFile::read(&dir.join(files::SPEC)) {
            Ok(Some(SpecFile { spec, .. })) => {
                s.workload = Some(spec.workload.clone());
                s.target = Some(spec.target_label());
                s.faults = spec.nemeses().into_iter().map(str::to_owned).collect();
                s.seed = spec.seed.map(|s| s.to_string());
                s.campaign = Some(spec.campaign.clone()).filter(|c| !c.is_empty());
            }
            Ok(None) => {}
            Err(e) => s.problem = Some(e.to_string()),
        }
        match RunResults::read(&dir.join(files::RESULTS)) {
            Ok(Some(r)) => {
                s.validity = r.validity;
                s.checks = r
                    .checks
                    .iter()
                    .map(|c| (c.verdict.checker.clone(), c.verdict.validity))
                    .collect();
                s.harness_error = r.harness_error.clone();
                s.interrupted = r.interrupted.clone();
                s.operations = Some(r.history.outcomes);
                if s.faults.is_empty() {
                    s.faults = r.history.faults.keys().cloned().collect();
                }
            }
            Ok(None) => {}
            Err(e) => s.problem = Some(e.to_string()),
        }
        s
    }

    /// `valid`, `invalid`, `unknown`, `harness-error` or `unchecked`: the
    /// colour class of the run in the index.
    pub fn status(&self) -> &'static str {
        match (self.validity, &self.harness_error) {
            (_, Some(_)) => "harness-error",
            (Some(v), None) => v.as_str(),
            (None, None) => "unchecked",
        }
    }
}

/// Writes `results.json` into `run_dir`, atomically: a reader sees the old
/// file or the new one, never half of one.
pub fn write_results(run_dir: &Path, results: &RunResults) -> Result<PathBuf, StoreError> {
    let path = run_dir.join(files::RESULTS);
    write_atomic(&path, results.to_json().as_bytes())?;
    Ok(path)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| StoreError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))
}
