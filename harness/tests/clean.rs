//! `faultline clean` in its default scope, without root: processes tagged
//! as nodes of local runs are told apart by the store their run directory
//! lies in and by whether their harness still runs.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use harness::clean::{Scope, clean};
use harness::runtime::process::{RUN_DIR_ENV, RUN_TAG_ENV, tagged_processes};

/// A process tagged as a node of run `tag` in `run_dir`; killed on drop,
/// so a failed assertion leaves nothing behind.
struct Node(Child);

impl Node {
    fn spawn(tag: &str, run_dir: &Path) -> Node {
        let child = Command::new("sleep")
            .arg("60")
            .env(RUN_TAG_ENV, tag)
            .env(RUN_DIR_ENV, run_dir)
            .spawn()
            .expect("spawn sleep");
        // Until it has exec'd, /proc shows the parent's environment.
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !tagged_processes(Some(tag)).iter().any(|(p, _)| *p == pid) {
            assert!(Instant::now() < deadline, "process {pid} never showed its tag");
            std::thread::sleep(Duration::from_millis(10));
        }
        Node(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Whether it ended within a few seconds.
    fn ended(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.0.try_wait().expect("wait").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().expect("wait").is_none()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn line_of(lines: &[String], pid: u32) -> Option<&String> {
    lines.iter().find(|l| l.starts_with(&format!("process {pid} ")))
}

#[test]
fn default_clean_removes_only_finished_runs_of_its_own_store() {
    let store = tempfile::tempdir().expect("tempdir");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let stamp = "20261205T091914.672Z";
    let own_run = store.path().join("reg").join(stamp);
    let other_run = elsewhere.path().join("reg").join(stamp);
    for d in [&own_run, &other_run] {
        std::fs::create_dir_all(d).expect("run dir");
    }
    // No process has this pid (above pid_max), so these runs' harness is gone.
    let dead = format!("{}-{stamp}", u32::MAX - 7);
    // This test process is a harness still running its run, started now.
    let live =
        format!("{}-{}", std::process::id(), chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
    let mut own = Node::spawn(&dead, &own_run);
    let mut other = Node::spawn(&dead, &other_run);
    let mut running = Node::spawn(&live, &own_run);
    let scope = Scope::mine(store.path());

    let listed = clean(true, &scope);
    assert!(line_of(&listed.removed, own.pid()).is_some(), "{listed:?}");
    assert!(own.running() && other.running() && running.running(), "a dry run kills nothing");

    let report = clean(false, &scope);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(line_of(&report.removed, own.pid()).is_some(), "{report:?}");
    assert!(own.ended(), "the leftover of a finished run in this store is killed");
    let why = line_of(&report.kept, other.pid()).expect("another store's is kept");
    assert!(why.contains("another store"), "{why}");
    let why = line_of(&report.kept, running.pid()).expect("a running test's is kept");
    assert!(why.contains("still running"), "{why}");
    assert!(other.running() && running.running(), "{report:?}");
    for kept in [&other, &running] {
        assert!(line_of(&report.removed, kept.pid()).is_none(), "{report:?}");
    }
}
