//! The `refstore` binary end to end: `refstore cluster` starts three nodes from one command,
//! prints their addresses, serves the API, and exits 0 on SIGTERM.

use crate::common::post;
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_starts_a_three_node_cluster_that_serves_and_stops_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_refstore"))
        .args([
            "cluster",
            "--mode",
            "raft",
            "--nodes",
            "3",
            "--base-port",
            "0",
            "--log-level",
            "warn",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("refstore starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut addrs = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("readable stdout");
        if let Some(rest) = line.strip_prefix("node ") {
            let url = rest.split_whitespace().nth(2).expect("node I client URL peer ADDR");
            addrs.push(url.trim_start_matches("http://").to_string());
        }
        if line.ends_with("running; Ctrl-C stops it") {
            break;
        }
    }
    assert_eq!(addrs.len(), 3, "three client addresses printed: {addrs:?}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().expect("client");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut written = false;
    while !written && Instant::now() < deadline {
        for addr in &addrs {
            if let Ok((200, _)) =
                post(&http, addr, "/v1/write", json!({"key": "k", "value": 1})).await
            {
                written = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(written, "the cluster elected a leader and took a write");
    let status =
        Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill runs");
    assert!(status.success());
    let exit = child.wait().expect("refstore exits");
    assert!(exit.success(), "SIGTERM is a clean stop: {exit}");
    assert!(dir.path().join("n1").join("wal.log").exists());
}
