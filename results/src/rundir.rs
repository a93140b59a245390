//! The run directory: where one run's files live, and the `latest` links.
//!
//! ```text
//! store/<test-name>/<timestamp>/
//!     test.toml        the full spec, with the seed (written first)
//!     history.jsonl    every event, appended as it happens
//!     faultline.log    the harness's log (tracing)
//!     nodes/<node>/    each node's logs (and, locally, its data)
//!     results.json     written after checking (by the results crate)
//!     report.html      written after checking (by the results crate)
//! store/<test-name>/latest -> <timestamp>
//! store/latest -> <test-name>/<timestamp>
//! ```
//!
//! The `latest` links are updated when a run starts, so a run that crashed
//! is still the one `faultline analyze store/latest` finds. The names are
//! [`crate::store::files`], the one place the layout is written down.

use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::spec::TestSpec;
use crate::store::files;

type Result<T> = std::result::Result<T, StoreError>;

/// One run's directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates `store/<test_name>/<timestamp>/` (with `nodes/`) and points
    /// the `latest` links at it.
    pub fn create(store: &Path, test_name: &str) -> Result<RunDir> {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
        let test_dir = store.join(test_name);
        std::fs::create_dir_all(&test_dir).map_err(|e| StoreError::io(&test_dir, e))?;
        // Two runs started in the same millisecond get distinct folders.
        let mut path = test_dir.join(&stamp);
        let mut n = 1;
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    n += 1;
                    path = test_dir.join(format!("{stamp}-{n}"));
                }
                Err(e) => return Err(StoreError::io(&path, e)),
            }
        }
        let nodes = path.join(files::NODES);
        std::fs::create_dir_all(&nodes).map_err(|e| StoreError::io(&nodes, e))?;
        let dir = RunDir { path };
        dir.update_latest(store, test_name)?;
        Ok(dir)
    }

    /// An existing run directory (following symlinks such as `latest`).
    pub fn open(path: &Path) -> Result<RunDir> {
        let path = std::fs::canonicalize(path).map_err(|e| StoreError::io(path, e))?;
        if !path.is_dir() {
            return Err(StoreError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a run directory"),
            ));
        }
        Ok(RunDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `test.toml`.
    pub fn spec_path(&self) -> PathBuf {
        self.path.join(files::SPEC)
    }

    /// `history.jsonl`.
    pub fn history_path(&self) -> PathBuf {
        self.path.join(files::HISTORY)
    }

    /// `faultline.log`.
    pub fn log_path(&self) -> PathBuf {
        self.path.join(files::LOG)
    }

    /// Marks the run as cut short, saying `why` (see [`files::INTERRUPTED`]).
    pub fn mark_interrupted(&self, why: &str) -> Result<()> {
        let path = self.path.join(files::INTERRUPTED);
        std::fs::write(&path, format!("{why}\n")).map_err(|e| StoreError::io(&path, e))
    }

    /// `results.json`.
    pub fn results_path(&self) -> PathBuf {
        self.path.join(files::RESULTS)
    }

    /// `report.html`.
    pub fn report_path(&self) -> PathBuf {
        self.path.join(files::REPORT)
    }

    /// `nodes/<node>/`, created if missing.
    pub fn node_dir(&self, node: &str) -> Result<PathBuf> {
        let dir = self.path.join(files::NODES).join(node);
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::io(&dir, e))?;
        Ok(dir)
    }

    /// Writes `test.toml`.
    pub fn write_spec(&self, spec: &TestSpec) -> Result<()> {
        let path = self.spec_path();
        let header = if spec.runtime == crate::spec::RuntimeKind::Sim {
            // `faultline test` refuses a simulated run, and the world's
            // settings are not here.
            format!(
                "# faultline test specification of a simulated run, with its seed; replay it\n\
                 # with the `faultline sim` command in {}",
                self.path.join(files::REPLAY).display()
            )
        } else {
            format!(
                "# faultline test specification, with the seed that replays this run:\n\
                 #   faultline test -f {}",
                path.display()
            )
        };
        let text = format!("{header}\n{}", spec.to_toml());
        std::fs::write(&path, text).map_err(|e| StoreError::io(&path, e))
    }

    /// Reads `test.toml` back.
    pub fn read_spec(&self) -> Result<TestSpec> {
        TestSpec::from_file(&self.spec_path())
    }

    fn update_latest(&self, store: &Path, test_name: &str) -> Result<()> {
        let Some(stamp) = self.path.file_name() else { return Ok(()) };
        let stamp = PathBuf::from(stamp);
        relink(&store.join(test_name).join(files::LATEST), &stamp)?;
        relink(&store.join(files::LATEST), &Path::new(test_name).join(&stamp))
    }
}

/// Points the symlink `link` at `target` atomically (a new link renamed
/// over the old one), so readers never see it missing.
fn relink(link: &Path, target: &Path) -> Result<()> {
    // The new link's name is this call's own: a campaign runs tests on
    // several threads of one process, and with the process id alone one
    // thread removed or renamed another's new link before it was renamed
    // ("latest: No such file or directory").
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = link.with_extension(format!("tmp{}-{call}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(|e| StoreError::io(&tmp, e))?;
    std::fs::rename(&tmp, link).map_err(|e| StoreError::io(link, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs created at once on several threads (a campaign's `--parallel`)
    /// each point the latest links somewhere valid, and none fails.
    #[test]
    fn runs_created_on_several_threads_at_once_all_relink_latest() {
        let store = std::env::temp_dir().join(format!("fl-rundir-par-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        RunDir::create(&store, "t").expect("create and relink");
                    }
                });
            }
        });
        let latest = std::fs::canonicalize(store.join("latest")).expect("latest");
        assert!(latest.join("nodes").is_dir(), "{}", latest.display());
        std::fs::remove_dir_all(&store).expect("cleanup");
    }

    #[test]
    fn creates_layout_and_latest_links() {
        let store = std::env::temp_dir().join(format!("fl-rundir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store);
        let a = RunDir::create(&store, "t").expect("create");
        let b = RunDir::create(&store, "t").expect("create");
        assert_ne!(a.path(), b.path());
        assert!(a.path().join("nodes").is_dir());
        let latest = std::fs::canonicalize(store.join("latest")).expect("latest");
        assert_eq!(latest, std::fs::canonicalize(b.path()).expect("b"));
        let latest_t = std::fs::canonicalize(store.join("t/latest")).expect("t/latest");
        assert_eq!(latest_t, latest);
        let spec = TestSpec { seed: Some(9), ..TestSpec::default() };
        b.write_spec(&spec).expect("write");
        assert_eq!(
            RunDir::open(&store.join("latest")).expect("open").read_spec().expect("read"),
            spec
        );
        std::fs::remove_dir_all(&store).expect("cleanup");
    }
}
