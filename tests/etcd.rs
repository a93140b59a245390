//! etcd 3.4 end to end: real three-member clusters in network namespaces,
//! judged by the verdict etcd's documentation deserves. Linearizable reads
//! (etcd's default) stay linearizable under partitions, kills and pauses;
//! serializable reads, documented as possibly stale, are caught returning
//! stale values while a partition cuts off the leader or a minority.
//!
//! They need root and Debian's etcd-server; without them they say so loudly
//! and pass, except under `CI=true`, where `.ci/run` installs the package.

use std::path::Path;

use harness::runtime::netns::NetnsState;

use crate::e2e::{history, nemesis_fs, root_or_skip, run, shared};

/// The settings both tests share: three members on the netns runtime, the
/// register workload, partitions that last one 6-second nemesis interval,
/// and a 1 s operation timeout so clients of a cut-off member, their writes
/// hung, are soon free to read again.
const CLUSTER: &[&str] = &[
    "--target",
    "etcd",
    "--runtime",
    "netns",
    "--nodes",
    "3",
    "--workload",
    "register",
    "--nemesis-interval",
    "6",
    "--op-timeout-ms",
    "1000",
    "--concurrency",
    "12",
    "--recovery",
    "2",
];

/// Nothing the run started is left: no namespace of its state file, no
/// process whose command line names its run directory.
fn nothing_left_of(run_dir: &Path) {
    let states: Vec<NetnsState> =
        NetnsState::all().into_iter().filter(|s| s.run_dir.as_deref() == Some(run_dir)).collect();
    assert!(states.is_empty(), "namespaces left behind: {states:?}");
    let needle = run_dir.to_string_lossy().into_owned();
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.starts_with("etcd") && cmdline.contains(&needle) {
            left.push(cmdline);
        }
    }
    assert!(left.is_empty(), "etcd members left running: {left:?}");
}

#[test]
fn etcd_linearizable_reads_register_under_partitions_kills_and_pauses_is_valid() {
    let _slot = shared();
    if !root_or_skip("etcd end-to-end", &["etcd"]) {
        return;
    }
    let store = tempfile::tempdir().expect("tempdir");
    let mut args = CLUSTER.to_vec();
    args.extend([
        "--nemesis",
        "partition,kill,pause",
        "--time-limit",
        "18",
        "--opt",
        "etcd_reads=linearizable",
        "--seed",
        "3",
    ]);
    let r = run(&args, store.path());
    assert_eq!(r.code, 0, "etcd must be linearizable:\n{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("linearizable: valid"), "{}", r.stdout);
    let h = history(&r.run_dir);
    let fs = nemesis_fs(&h);
    for fault in ["start-partition", "start-kill", "start-pause"] {
        assert!(fs.iter().any(|f| f == fault), "no {fault} happened: {fs:?}");
    }
    let oks = h.ops().iter().filter(|o| o.kind == checkers::OpType::Ok).count();
    assert!(oks > 200, "only {oks} operations succeeded");
    assert!(r.run_dir.join("nodes/n1/etcd.log").is_file(), "the member's log was not kept");
    nothing_left_of(&r.run_dir);
}

/// The seeds the serializable test tries, in order. With keys that live for
/// 1,000 operations, one 25-second run showed stale reads for seeds 1 to 5,
/// 5 of 5, on 1 to 4 keys each (docs/targets.md has the campaign's rate), so
/// a seed that happens to miss is followed by another.
///
/// With the workload's default 150 operations a key, seeds 1 and 3 showed
/// none, and in CI none of 1 to 3 did. A key then retires within about a
/// second, so the cut-off member's clients mostly read keys created after the
/// cut. Those reads return `nil`, and a read of `nil` constrains nothing
/// (Knossos's convention, docs/linearizability.md).
const SERIALIZABLE_SEEDS: &[&str] = &["1", "2", "3"];

#[test]
fn etcd_serializable_reads_under_partitions_isolating_the_leader_are_caught_stale() {
    let _slot = shared();
    if !root_or_skip("etcd end-to-end", &["etcd"]) {
        return;
    }
    let mut outcomes = Vec::new();
    for seed in SERIALIZABLE_SEEDS {
        let store = tempfile::tempdir().expect("tempdir");
        let mut args = CLUSTER.to_vec();
        args.extend([
            "--nemesis",
            "partition",
            "--opt",
            "partition=primaries,isolate-one",
            "--opt",
            "etcd_reads=serializable",
            "--opt",
            "ops_per_key=1000",
            "--time-limit",
            "25",
            "--seed",
            seed,
        ]);
        let r = run(&args, store.path());
        let fs = nemesis_fs(&history(&r.run_dir));
        assert!(fs.iter().any(|f| f == "start-partition"), "seed {seed}: no partition: {fs:?}");
        nothing_left_of(&r.run_dir);
        if r.code == 0 {
            eprintln!("seed {seed}: no stale read shown this time; trying the next seed");
            outcomes.push(format!("seed {seed}: valid"));
            continue;
        }
        assert_eq!(
            r.code, 1,
            "seed {seed}: an invalid verdict was expected:\n{}\n{}",
            r.stdout, r.stderr
        );
        assert!(r.stdout.contains("linearizable: invalid"), "{}", r.stdout);
        // The evidence names a read that returned what a completed write had
        // already replaced.
        let results =
            std::fs::read_to_string(r.run_dir.join("results.json")).expect("results.json");
        assert!(results.contains("nonlinearizable"), "{results}");
        assert!(
            results.contains(", read ") && results.contains("cannot be linearized"),
            "the anomaly names no read: {results}"
        );
        return;
    }
    panic!("serializable reads were never caught stale: {outcomes:?}");
}
