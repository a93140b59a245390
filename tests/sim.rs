//! A simulated run's directory is an ordinary run directory: `faultline
//! analyze`, `faultline report` and `faultline serve` work on it as on a
//! run of real processes, and it says how to replay it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::check::{faultline, run, text};

/// The one run directory under `store` (a failing seed's).
fn only_run(store: &Path) -> PathBuf {
    let mut found = Vec::new();
    for test in std::fs::read_dir(store).unwrap_or_else(|e| panic!("{}: {e}", store.display())) {
        let test = test.unwrap_or_else(|e| panic!("{e}")).path();
        if !test.is_dir() {
            continue;
        }
        for run in std::fs::read_dir(&test).unwrap_or_else(|e| panic!("{}: {e}", test.display())) {
            let run = run.unwrap_or_else(|e| panic!("{e}")).path();
            // `latest` links to the newest run; the run itself is listed too.
            if !run.is_symlink() && run.join("history.jsonl").is_file() {
                found.push(run);
            }
        }
    }
    assert_eq!(found.len(), 1, "one kept run expected in {}: {found:?}", store.display());
    found.remove(0)
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` from the server at `addr`: the whole response, headers included.
fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap_or_else(|e| panic!("{e}"));
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    out
}

#[test]
fn a_simulated_failure_is_analyzed_reported_and_served_like_a_real_run() {
    let dir = tempfile::Builder::new()
        .prefix("faultline-sim-")
        .tempdir()
        .unwrap_or_else(|e| panic!("{e}"));
    let store = dir.path().join("store");
    let store_s = store.to_str().unwrap_or_default();
    // ack-before-commit's first detecting seed (docs/simulation.md).
    let o = run(&[
        "sim",
        "--mode",
        "raft",
        "--nemesis",
        "partition,kill",
        "--time-limit",
        "5",
        "--rate",
        "200",
        "--nemesis-interval",
        "1",
        "--bug",
        "ack-before-commit",
        "--seed",
        "13",
        "--store",
        store_s,
    ]);
    assert_eq!(o.status.code(), Some(1), "the seed is invalid: {}", text(&o.stderr));
    let run_dir = only_run(&store);
    let run_s = run_dir.to_str().unwrap_or_default();
    let replay = std::fs::read_to_string(run_dir.join("replay")).unwrap_or_default();
    assert!(replay.contains("faultline sim") && replay.contains("--seed 13"), "replay: {replay}");

    let o = run(&["analyze", run_s]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "analyze judges it invalid again: {out}");
    assert!(out.contains("nonlinearizable"), "analyze names the anomaly: {out}");

    std::fs::remove_file(run_dir.join("report.html")).unwrap_or_else(|e| panic!("{e}"));
    let o = run(&["report", run_s]);
    assert!(o.status.success(), "report: {}", text(&o.stderr));
    let report = std::fs::read_to_string(run_dir.join("report.html")).unwrap_or_default();
    assert!(report.contains("faultline sim --mode raft"), "the redrawn report's replay line");

    let mut child = faultline()
        .args(["serve", "--store", store_s, "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("serve: {e}"));
    let mut stdout = child.stdout.take().unwrap_or_else(|| panic!("serve's stdout"));
    let server = Server(child);
    // The first line names the address it listens on.
    let started = Instant::now();
    let mut banner = Vec::new();
    let mut byte = [0u8; 1];
    while !banner.ends_with(b"\n") && started.elapsed() < Duration::from_secs(30) {
        if stdout.read(&mut byte).unwrap_or(0) == 0 {
            break;
        }
        banner.push(byte[0]);
    }
    let banner = text(&banner);
    let addr = banner
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in serve's banner: {banner}"));
    let runs = get(addr, "/api/runs");
    assert!(runs.contains("\"validity\":\"invalid\""), "the run is listed as invalid: {runs}");
    assert!(runs.contains("injected bug ack-before-commit"), "its target names the bug: {runs}");
    drop(server);
}
