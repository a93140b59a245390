//! PostgreSQL 15 end to end: real clusters in network namespaces, judged
//! by what PostgreSQL's documentation promises. On one primary without
//! faults, list-append transactions are serializable at SERIALIZABLE,
//! show write skew (G2-item) but never read skew (G-single) at REPEATABLE
//! READ (snapshot isolation), and show G-single at READ COMMITTED. With
//! three nodes and the primary cut off and killed, asynchronous streaming
//! replication loses acknowledged writes at failover and `remote_apply`
//! synchronous replication does not.
//!
//! They need root and Debian's postgresql-15; without them they say so
//! loudly and pass, except under `CI=true`, where `.ci/run` installs it.

use std::path::Path;

use crate::e2e::{Finished, history, nemesis_fs, nothing_left_of, root_or_skip, run, shared};

/// PostgreSQL's server program, whose presence `root_or_skip` checks
/// (it looks in `/usr/bin` and its neighbours, so the path is relative).
const POSTGRES: &str = "../lib/postgresql/15/bin/postgres";

/// One primary, list-append, no faults, many clients: what isolation
/// alone allows.
fn one_primary(isolation: &str, seed: &str, store: &Path) -> Finished {
    let iso = format!("isolation={isolation}");
    let args = [
        "--target",
        "postgres",
        "--runtime",
        "netns",
        "--nodes",
        "1",
        "--workload",
        "list-append",
        "--nemesis",
        "none",
        "--concurrency",
        "10",
        "--time-limit",
        "12",
        "--opt",
        &iso,
        "--seed",
        seed,
    ];
    let r = run(&args, store);
    nothing_left_of(&r);
    r
}

#[test]
fn postgres_serializable_list_append_on_one_primary_is_valid() {
    let _slot = shared();
    if !root_or_skip("postgres end-to-end", &[POSTGRES]) {
        return;
    }
    let store = tempfile::tempdir().expect("tempdir");
    let r = one_primary("serializable", "1", store.path());
    assert_eq!(r.code, 0, "SERIALIZABLE must be serializable:\n{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("list-append: valid"), "{}", r.stdout);
    let h = history(&r.run_dir);
    let oks = h.ops().iter().filter(|o| o.kind == checkers::OpType::Ok).count();
    assert!(oks > 300, "only {oks} operations succeeded");
    assert!(r.run_dir.join("nodes/n1/postgres.log").is_file(), "the server's log was not kept");
}

/// The seeds the anomaly tests try, in order. An 8-second run showed write
/// skew at REPEATABLE READ in 7 of 10 campaign runs and read skew at READ
/// COMMITTED in 9 of 10 (docs/targets.md); the tests run 12 seconds, and a
/// seed that misses is followed by another.
const SEEDS: &[&str] = &["1", "2", "3"];

/// Runs `isolation` with each seed until the verdict is invalid, and
/// returns that run's `results.json`.
fn first_invalid(isolation: &str) -> String {
    let mut outcomes = Vec::new();
    for seed in SEEDS {
        let store = tempfile::tempdir().expect("tempdir");
        let r = one_primary(isolation, seed, store.path());
        if r.code == 1 {
            return std::fs::read_to_string(r.run_dir.join("results.json")).expect("results.json");
        }
        assert_eq!(r.code, 0, "seed {seed}: {}\n{}", r.stdout, r.stderr);
        eprintln!("{isolation}, seed {seed}: no anomaly this time; trying the next seed");
        outcomes.push(format!("seed {seed}: valid"));
    }
    panic!("{isolation} never showed an anomaly: {outcomes:?}");
}

#[test]
fn postgres_repeatable_read_shows_write_skew_and_never_read_skew() {
    let _slot = shared();
    if !root_or_skip("postgres end-to-end", &[POSTGRES]) {
        return;
    }
    let results = first_invalid("repeatable-read");
    assert!(results.contains("\"G2-item\""), "no G2-item named: {results}");
    // Snapshot isolation forbids G-single: finding one would be a bug in
    // PostgreSQL or in the checker.
    assert!(!results.contains("\"G-single"), "REPEATABLE READ showed read skew: {results}");
}

#[test]
fn postgres_read_committed_shows_read_skew_or_lost_update() {
    let _slot = shared();
    if !root_or_skip("postgres end-to-end", &[POSTGRES]) {
        return;
    }
    let results = first_invalid("read-committed");
    assert!(
        results.contains("\"G-single\"") || results.contains("lost-update"),
        "neither G-single nor a lost update named: {results}"
    );
}

/// Three nodes, the set workload, the primary cut off from the standbys by
/// partitions and killed, each fault lasting one 4-second interval (a
/// killed node restarts as a standby, rewound). Clients, outside the
/// namespaces, still reach a cut-off primary: under async replication it
/// acknowledges commits no standby has, and a kill then hands the cluster
/// to a standby without them. Kills alone rarely show a loss: on a
/// loopback bridge the standbys are microseconds behind, and a kill lands
/// in that window about once in a few minutes.
fn primary_killed(replication: &str, seed: &str, store: &Path) -> Finished {
    let repl = format!("pg_replication={replication}");
    let args = [
        "--target",
        "postgres",
        "--runtime",
        "netns",
        "--nodes",
        "3",
        "--workload",
        "set",
        "--nemesis",
        "partition,kill",
        "--opt",
        "partition=primaries",
        "--opt",
        "kill_targets=primaries",
        "--nemesis-interval",
        "4",
        "--concurrency",
        "8",
        "--time-limit",
        "20",
        "--opt",
        &repl,
        "--seed",
        seed,
    ];
    let r = run(&args, store);
    let fs = nemesis_fs(&history(&r.run_dir));
    assert!(fs.iter().any(|f| f == "start-kill"), "no kill happened: {fs:?}");
    let failovers = std::fs::read_to_string(r.run_dir.join("failovers.log")).unwrap_or_default();
    assert!(failovers.contains("promoted"), "no failover happened:\n{}", r.stderr);
    nothing_left_of(&r);
    r
}

#[test]
fn postgres_async_replication_loses_acknowledged_writes_when_the_primary_dies() {
    let _slot = shared();
    if !root_or_skip("postgres end-to-end", &[POSTGRES]) {
        return;
    }
    let mut outcomes = Vec::new();
    for seed in SEEDS {
        let store = tempfile::tempdir().expect("tempdir");
        let r = primary_killed("async", seed, store.path());
        if r.code == 1 {
            assert!(r.stdout.contains("set-full: invalid"), "{}", r.stdout);
            assert!(r.stdout.contains("[lost]"), "{}", r.stdout);
            return;
        }
        assert_eq!(r.code, 0, "seed {seed}: {}\n{}", r.stdout, r.stderr);
        outcomes.push(format!("seed {seed}: nothing lost"));
    }
    panic!("async failover never lost a write: {outcomes:?}");
}

#[test]
fn postgres_sync_remote_apply_replication_loses_nothing_when_the_primary_dies() {
    let _slot = shared();
    if !root_or_skip("postgres end-to-end", &[POSTGRES]) {
        return;
    }
    let store = tempfile::tempdir().expect("tempdir");
    let r = primary_killed("sync", "1", store.path());
    assert_eq!(r.code, 0, "remote_apply must lose nothing:\n{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("set-full: valid"), "{}", r.stdout);
    assert!(r.stdout.contains(" 0 lost"), "{}", r.stdout);
}
