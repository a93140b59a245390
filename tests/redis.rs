//! Redis 7 with Sentinel end to end: a real three-node cluster (a primary,
//! two replicas, three Sentinels) in network namespaces, judged by what
//! Redis documents: replication is asynchronous and a Sentinel failover can
//! lose acknowledged writes. Partitions that cut the primary off and kills
//! of the primary make it lose acknowledged adds of the set workload, which
//! `set-full` names as lost. With `WAIT` for every replica the writes a
//! primary cut off by a partition takes are no longer acknowledged, but
//! reads still see them before the failover throws them away: still lost.
//!
//! It needs root and Debian's redis-server and redis-sentinel; without them
//! it says so loudly and passes, except under `CI=true`, where `.ci/run`
//! installs the packages.

use std::path::Path;

use harness::runtime::netns::NetnsState;

use crate::e2e::{PRIMARIES_CUT_OFF_AND_KILLED, history, nemesis_fs, root_or_skip, run, shared};

/// Three nodes on the netns runtime, the set workload, partitions and
/// kills that last one 6-second nemesis interval (longer than Sentinel's
/// 3 s `down-after-milliseconds`, so a failover happens inside one), a 1 s
/// operation timeout. Each test adds its length and its recovery: time
/// after the heal for Sentinel to turn the old primary into a replica
/// before the final reads.
const CLUSTER: &[&str] = &[
    "--target",
    "redis",
    "--runtime",
    "netns",
    "--nodes",
    "3",
    "--workload",
    "set",
    "--nemesis-interval",
    "6",
    "--op-timeout-ms",
    "1000",
    "--concurrency",
    "12",
];

/// The seeds the test tries, in order: a run shows lost writes in nearly
/// every seed (docs/targets.md has the campaign's rate), so a seed that
/// happens to miss is followed by another.
const SEEDS: &[&str] = &["1", "2", "3"];

/// Nothing the run started is left: no namespace of its state file, and no
/// Redis process bound to one of its nodes' addresses. Redis rewrites its
/// process title (`redis-server 10.231.7.1:7700`), so its command line
/// names the address, not the run directory.
fn nothing_left_of(run_dir: &Path) {
    let states: Vec<NetnsState> =
        NetnsState::all().into_iter().filter(|s| s.run_dir.as_deref() == Some(run_dir)).collect();
    assert!(states.is_empty(), "namespaces left behind: {states:?}");
    let mut addrs = Vec::new();
    for node in ["n1", "n2", "n3"] {
        let conf =
            std::fs::read_to_string(run_dir.join("nodes").join(node).join("initial-redis.conf"))
                .expect("the adapter's redis.conf is kept");
        let bind = conf.lines().find_map(|l| l.strip_prefix("bind ")).expect("a bind line");
        addrs.push(format!("{}:", bind.trim()));
    }
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.starts_with("redis-") && addrs.iter().any(|a| cmdline.contains(a.as_str())) {
            left.push(cmdline);
        }
    }
    assert!(left.is_empty(), "redis processes left running: {left:?}");
}

#[test]
fn redis_sentinel_failover_under_partitions_and_kills_of_the_primary_loses_acknowledged_adds() {
    let _slot = shared();
    if !root_or_skip("redis end-to-end", &["redis-server", "redis-sentinel"]) {
        return;
    }
    let mut outcomes = Vec::new();
    for seed in SEEDS {
        let store = tempfile::tempdir().expect("tempdir");
        let mut args = CLUSTER.to_vec();
        args.extend_from_slice(PRIMARIES_CUT_OFF_AND_KILLED);
        args.extend(["--time-limit", "20", "--recovery", "10", "--seed", seed]);
        let r = run(&args, store.path());
        let h = history(&r.run_dir);
        let fs = nemesis_fs(&h);
        assert!(fs.iter().any(|f| f == "start-partition"), "seed {seed}: no partition: {fs:?}");
        for log in ["redis.log", "sentinel.log"] {
            assert!(r.run_dir.join("nodes/n1").join(log).is_file(), "{log} was not kept");
        }
        nothing_left_of(&r.run_dir);
        if r.code == 0 {
            eprintln!("seed {seed}: no write lost this time; trying the next seed");
            outcomes.push(format!("seed {seed}: valid"));
            continue;
        }
        assert_eq!(r.code, 1, "seed {seed}: invalid was expected:\n{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("set-full: invalid"), "{}", r.stdout);
        // The evidence names acknowledged adds that a failover threw away.
        let results =
            std::fs::read_to_string(r.run_dir.join("results.json")).expect("results.json");
        assert!(results.contains("\"kind\": \"lost\""), "{results}");
        assert!(r.stdout.contains("acknowledged writes are missing"), "{}", r.stdout);
        // Sentinel did fail over: some node other than the first became primary.
        let sentinel_logs: String = ["n1", "n2", "n3"]
            .iter()
            .filter_map(|n| {
                std::fs::read_to_string(r.run_dir.join("nodes").join(n).join("sentinel.log")).ok()
            })
            .collect();
        assert!(sentinel_logs.contains("+switch-master"), "no failover in the Sentinel logs");
        return;
    }
    panic!("no acknowledged write was ever lost: {outcomes:?}");
}

/// The WAIT test's faults and options: partitions cutting the primary off
/// (no kills, which would leave it nothing to take) for 15 s, `WAIT 2`
/// (both replicas) after every add, and half the operations reads, since
/// a read of the cut-off primary is what shows a write that `WAIT` did not
/// confirm and the failover then loses.
const WAIT_FOR_BOTH: &[&str] = &[
    "--nemesis",
    "partition",
    "--opt",
    "partition=primaries",
    "--time-limit",
    "15",
    "--recovery",
    "8",
    "--opt",
    "redis_wait=2",
    "--opt",
    "read_ratio=0.5",
];

/// A seed of the WAIT test showed the loss in each of 4 runs
/// (docs/targets.md); a seed that misses is followed by another.
const WAIT_SEEDS: &[&str] = &["1", "2", "3"];

#[test]
fn redis_wait_for_every_replica_still_loses_writes_reads_saw_under_partitions() {
    let _slot = shared();
    if !root_or_skip("redis end-to-end", &["redis-server", "redis-sentinel"]) {
        return;
    }
    let mut outcomes = Vec::new();
    for seed in WAIT_SEEDS {
        let store = tempfile::tempdir().expect("tempdir");
        let mut args = CLUSTER.to_vec();
        args.extend_from_slice(WAIT_FOR_BOTH);
        args.extend(["--seed", seed]);
        let r = run(&args, store.path());
        nothing_left_of(&r.run_dir);
        // WAIT fell short while a partition held (no primary had both
        // replicas), and those adds were recorded as unknown, not ok.
        let short = history(&r.run_dir)
            .ops()
            .iter()
            .filter(|o| o.kind == checkers::OpType::Info && o.f == "add")
            .filter(|o| o.error.as_ref().is_some_and(|e| format!("{e:?}").contains("wait: ")))
            .count();
        assert!(short > 0, "seed {seed}: no WAIT fell short under the faults");
        if r.code == 0 {
            eprintln!("seed {seed}: no read saw a write that was then lost; trying the next seed");
            outcomes.push(format!("seed {seed}: valid"));
            continue;
        }
        assert_eq!(r.code, 1, "seed {seed}: invalid was expected:\n{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("set-full: invalid"), "{}", r.stdout);
        return;
    }
    panic!("WAIT's unconfirmed writes were never seen and lost: {outcomes:?}");
}
