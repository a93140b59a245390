//! MariaDB 10.11 with Galera 4 end to end: real three-node clusters in
//! network namespaces, clients on every node. Without faults, list-append
//! transactions at REPEATABLE READ show cycles snapshot isolation forbids
//! (G-single) besides write skew (G2-item); under partitions and kills the
//! same anomalies show, and killed nodes rejoin (or the adapter says why
//! not).
//!
//! They need root and Debian's mariadb-server and galera-4; without them
//! they say so loudly and pass, except under `CI=true`, where `.ci/run`
//! installs them.

use std::path::Path;

use crate::e2e::{Finished, history, nemesis_fs, nothing_left_of, root_or_skip, run, shared};

/// MariaDB's server and the Galera provider, whose presence
/// `root_or_skip` checks (it looks in `/usr/bin` and its neighbours, so
/// the provider's path is relative).
const NEEDS: &[&str] = &["mariadbd", "../lib/galera/libgalera_smm.so"];

/// The seeds the tests try, in order, until one shows an anomaly. At the
/// default 200 transactions a second, G-single showed in 6 of 10 runs of
/// the campaign, and in none of 5 beside other cluster tests in CI (few
/// transactions overlap). At 1,000 a second (see `three_nodes`) it showed
/// in every run tried: 4 of 4 without faults (G2-item too) and 3 of 3
/// under partitions and kills, on the 2-core machine while a simulation
/// sweep kept both cores busy. The later seeds are a margin, not the plan.
const SEEDS: &[&str] = &["1", "2", "3", "4", "5"];

/// Three nodes, list-append at REPEATABLE READ, ten clients over the three
/// nodes offering 1,000 transactions a second (a lost update needs a
/// transaction to commit between another's snapshot and its append to the
/// same key: the more overlap, the more of them); `extra` adds faults.
fn three_nodes(seed: &str, time_limit: &str, extra: &[&str], store: &Path) -> Finished {
    let mut args = vec![
        "--target",
        "galera",
        "--runtime",
        "netns",
        "--nodes",
        "3",
        "--workload",
        "list-append",
        "--concurrency",
        "10",
        "--time-limit",
        time_limit,
        "--recovery",
        "2",
        "--rate",
        "1000",
        "--opt",
        "isolation=repeatable-read",
        "--seed",
        seed,
    ];
    args.extend_from_slice(extra);
    let r = run(&args, store);
    nothing_left_of(&r);
    r
}

/// Runs each seed until the run's `results.json` names every one of
/// `anomalies`; returns that run and its store (the run
/// directory lives as long as it does). Each anomaly shows in most runs,
/// not in every one (CI saw a run with G-single and no G2-item), so one
/// run is not asked for all of them by luck.
fn first_naming(
    anomalies: &[&str],
    time_limit: &str,
    extra: &[&str],
) -> (Finished, tempfile::TempDir) {
    let mut outcomes = Vec::new();
    for seed in SEEDS {
        let store = tempfile::tempdir().expect("tempdir");
        let r = three_nodes(seed, time_limit, extra, store.path());
        assert!(r.code <= 1, "seed {seed}: {}\n{}", r.stdout, r.stderr);
        let results =
            std::fs::read_to_string(r.run_dir.join("results.json")).expect("results.json");
        let missing: Vec<&str> =
            anomalies.iter().copied().filter(|a| !results.contains(&format!("\"{a}\""))).collect();
        if missing.is_empty() {
            assert_eq!(r.code, 1, "an anomaly named in a valid verdict: {}", r.stdout);
            return (r, store);
        }
        eprintln!("seed {seed}: no {missing:?} this time; trying the next seed");
        outcomes.push(format!("seed {seed}: exit {}, missing {missing:?}", r.code));
    }
    panic!("galera repeatable-read never showed all of {anomalies:?} in one run: {outcomes:?}");
}

#[test]
fn galera_repeatable_read_without_faults_shows_read_skew_that_snapshot_isolation_forbids() {
    let _slot = shared();
    if !root_or_skip("galera end-to-end", NEEDS) {
        return;
    }
    // G-single, not only its real-time variant (G-single-realtime), which
    // snapshot isolation allows: a snapshot may be stale.
    let (r, _store) = first_naming(&["G-single", "G2-item"], "8", &["--nemesis", "none"]);
    let h = history(&r.run_dir);
    let oks = h.ops().iter().filter(|o| o.kind == checkers::OpType::Ok).count();
    assert!(oks > 300, "only {oks} operations succeeded");
    assert!(r.run_dir.join("nodes/n3/mariadb.log").is_file(), "the server's log was not kept");
}

#[test]
fn galera_under_partitions_and_kills_keeps_read_skew_and_killed_nodes_rejoin_or_say_why() {
    let _slot = shared();
    if !root_or_skip("galera end-to-end", NEEDS) {
        return;
    }
    let faults = [
        "--nemesis",
        "partition,kill",
        "--opt",
        "kill_targets=minority",
        "--nemesis-interval",
        "4",
    ];
    let (r, _store) = first_naming(&["G-single"], "15", &faults);
    let h = history(&r.run_dir);
    let fs = nemesis_fs(&h);
    assert!(fs.iter().any(|f| f == "start-kill"), "no kill happened: {fs:?}");
    // Every restarted node rejoined, or the kill nemesis says why not: the
    // kills and partitions start together, and a node killed while cut
    // off from the majority cannot rejoin until the partition heals.
    let text = std::fs::read_to_string(r.run_dir.join("history.jsonl")).expect("history");
    assert!(
        text.contains("\"restarted\":[\"") || text.contains("join the galera cluster within"),
        "no killed node rejoined, and nothing said why:\n{}",
        r.stderr
    );
}
