//! Jepsen's classic workloads end to end on refstore clusters: each is
//! valid on raft under partitions and kills, and each catches, on a weak
//! mode under the fault its README names, the anomaly that mode promises
//! (bank on multi-leader: wrong totals; counter and queue on async with its
//! primary partitioned and killed: lost increments and lost enqueues;
//! unique-ids on multi-leader: duplicates; long-fork on causal under
//! partitions: long forks; rw-register on multi-leader under partitions: a
//! dependency cycle). Then the causal demonstration: pinned sessions keep
//! causal consistency on the causal mode; eventual, and moving sessions,
//! break it. Then the choice of checkers per test: added, refused before
//! the run when the workload cannot feed them, and an option nothing reads
//! refused.

use std::path::Path;

use crate::e2e::{run, shared};

/// `(checker, validity, anomaly kinds)` of every check in `results.json`.
fn verdicts(run_dir: &Path) -> Vec<(String, String, Vec<String>)> {
    crate::workloads::verdicts(run_dir)
        .into_iter()
        .map(|(checker, validity, anomalies)| {
            let kinds = anomalies.iter().filter_map(|a| a["kind"].as_str().map(str::to_owned));
            (checker, validity, kinds.collect())
        })
        .collect()
}

/// Runs `workload` on a 3-node cluster in `mode` with `extra` arguments and
/// returns the exit code and the verdicts.
fn test(mode: &str, workload: &str, extra: &[&str]) -> (i32, Vec<(String, String, Vec<String>)>) {
    let _slot = shared();
    let store = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["--mode", mode, "--workload", workload, "--nodes", "3"];
    args.extend_from_slice(extra);
    let r = run(&args, store.path());
    let checks = if r.code == 254 { Vec::new() } else { verdicts(&r.run_dir) };
    (r.code, checks)
}

/// Partitions and kills every second, for `secs` seconds.
fn faults(secs: &'static str) -> Vec<&'static str> {
    vec!["--nemesis", "partition,kill", "--nemesis-interval", "1", "--time-limit", secs]
}

fn assert_valid_on_raft(workload: &str, checker: &str) {
    let (code, checks) = test("raft", workload, &faults("6"));
    assert_eq!(code, 0, "{workload} on raft: {checks:?}");
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!((checks[0].0.as_str(), checks[0].1.as_str()), (checker, "valid"));
}

/// The weak mode's anomaly: invalid, with an anomaly of `kind`.
fn assert_caught(mode: &str, workload: &str, extra: &[&str], checker: &str, kind: &str) {
    let (code, checks) = test(mode, workload, extra);
    assert_eq!(code, 1, "{workload} on {mode} must be invalid: {checks:?}");
    let (name, validity, kinds) = &checks[0];
    assert_eq!((name.as_str(), validity.as_str()), (checker, "invalid"));
    assert!(kinds.iter().any(|k| k == kind), "{workload} on {mode}: no {kind} among {kinds:?}");
}

/// async's primary cut off and killed, every second for 10 s.
fn primary_faults() -> Vec<&'static str> {
    let mut args = crate::e2e::PRIMARIES_CUT_OFF_AND_KILLED.to_vec();
    args.extend(["--nemesis-interval", "1", "--time-limit", "10"]);
    args
}

#[test]
fn bank_keeps_its_total_on_raft_and_not_on_multi_leader() {
    assert_valid_on_raft("bank", "bank");
    // A total goes wrong when two nodes transfer from one account within
    // the moment it takes the first transfer to replicate, which at the
    // default 200 operations a second happens a few times a run: a 5 s
    // run showed it in 20 of 20 runs on an idle machine, but in 6 of 8
    // while a simulation sweep kept both cores busy (and 7 of 8 in an
    // earlier session), where a missed run is valid with no wrong total
    // at all. The default 30 s run makes a miss unlikely; this shorter
    // one offers 1,000 operations a second instead (10 of 10 runs).
    assert_caught(
        "multi-leader",
        "bank",
        &["--nemesis", "none", "--time-limit", "5", "--rate", "1000"],
        "bank",
        "wrong-total",
    );
}

#[test]
fn counter_is_within_bounds_on_raft_and_loses_increments_on_async() {
    assert_valid_on_raft("counter", "counter");
    assert_caught("async", "counter", &primary_faults(), "counter", "lost-increments");
}

#[test]
fn unique_ids_are_unique_on_raft_and_duplicated_on_multi_leader() {
    assert_valid_on_raft("unique-ids", "unique-ids");
    let none = ["--nemesis", "none", "--time-limit", "5"];
    assert_caught("multi-leader", "unique-ids", &none, "unique-ids", "duplicated");
}

#[test]
fn queue_loses_nothing_on_raft_and_loses_enqueues_on_async() {
    // On raft the queue is linearizable. total-queue follows Jepsen: an
    // element taken by a dequeue whose answer was lost (a kill during its
    // compare-and-set) never comes out, and counts as lost; so raft's
    // total-queue is valid unless indeterminate dequeues explain every loss.
    let _slot = shared();
    let store = tempfile::tempdir().expect("tempdir");
    let mut args = vec!["--mode", "raft", "--workload", "queue", "--nodes", "3"];
    args.extend(faults("6"));
    args.extend(["--checker", "default,linearizable", "--model", "unordered-queue"]);
    let r = run(&args, store.path());
    let checks = verdicts(&r.run_dir);
    assert_eq!(
        (checks[1].0.as_str(), checks[1].1.as_str()),
        ("linearizable", "valid"),
        "{checks:?}"
    );
    if checks[0].1 != "valid" {
        let h = crate::e2e::history(&r.run_dir);
        let indeterminate =
            h.ops().iter().filter(|o| o.f == "dequeue" && o.kind == checkers::OpType::Info).count()
                as u64;
        let text = std::fs::read_to_string(r.run_dir.join("results.json")).expect("results");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        let lost =
            doc["checks"][0]["verdict"]["details"]["lost_count"].as_u64().unwrap_or(u64::MAX);
        assert!(
            lost <= indeterminate,
            "raft lost {lost} with {indeterminate} indeterminate dequeues: {checks:?}"
        );
    }
    drop(_slot);
    // async loses enqueues (total-queue), and the linearizable queue model,
    // which reads the final drain too, sees the same history fail; the
    // nemesis's `partition=primaries` stays the nemesis's, not the
    // checker's option.
    let mut args = primary_faults();
    args.extend(["--checker", "default,linearizable", "--model", "unordered-queue"]);
    let (code, checks) = test("async", "queue", &args);
    assert_eq!(code, 1, "{checks:?}");
    let verdicts: Vec<(&str, &str)> = checks.iter().map(|c| (c.0.as_str(), c.1.as_str())).collect();
    assert_eq!(verdicts, [("total-queue", "invalid"), ("linearizable", "invalid")]);
    assert!(checks[0].2.iter().any(|k| k == "lost"), "no lost enqueue among {:?}", checks[0].2);
}

#[test]
fn long_fork_is_absent_on_raft_and_present_on_causal_under_partitions() {
    assert_valid_on_raft("long-fork", "long-fork");
    let partitions = ["--nemesis", "partition", "--nemesis-interval", "1", "--time-limit", "8"];
    assert_caught("causal", "long-fork", &partitions, "long-fork", "long-fork");
}

#[test]
fn rw_register_is_strict_serializable_on_raft_and_not_on_multi_leader() {
    assert_valid_on_raft("rw-register", "rw-register");
    // Without faults multi-leader showed a cycle in 1 of 5 five-second runs;
    // with both sides of a partition accepting writes, in 3 of 3.
    let partitions = ["--nemesis", "partition", "--nemesis-interval", "1", "--time-limit", "6"];
    let (code, checks) = test("multi-leader", "rw-register", &partitions);
    assert_eq!(code, 1, "{checks:?}");
    assert_eq!((checks[0].0.as_str(), checks[0].1.as_str()), ("rw-register", "invalid"));
    assert!(
        checks[0].2.iter().any(|k| k.starts_with('G')),
        "a dependency cycle: {:?}",
        checks[0].2
    );
}

#[test]
fn checkers_chosen_per_test_are_added_or_refused_before_the_run() {
    let none = ["--nemesis", "none", "--time-limit", "2"];
    // Added to the workload's own.
    let mut args = none.to_vec();
    args.extend(["--checker", "default,stats"]);
    let (code, checks) = test("raft", "counter", &args);
    assert_eq!(code, 0, "{checks:?}");
    let names: Vec<&str> = checks.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["counter", "stats"]);
    // A checker the workload cannot feed, and an option nothing reads:
    // refused (bad input) before any node starts, naming the reason.
    let _slot = shared();
    for (extra, says) in [
        (
            vec!["--checker", "counter"],
            "checker counter judges add or increment operations, which workload bank never performs",
        ),
        (vec!["--opt", "acounts=3"], "option acounts is read by no part of this test"),
        (vec!["--checker", "no-such"], "no-such"),
    ] {
        let store = tempfile::tempdir().expect("tempdir");
        let mut args = vec!["--workload", "bank", "--nodes", "3"];
        args.extend_from_slice(&none);
        args.extend_from_slice(&extra);
        let r = run(&args, store.path());
        assert_eq!(r.code, 254, "{extra:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{extra:?}: {}", r.stderr);
        assert!(!r.run_dir.join("history.jsonl").exists(), "{extra:?}: the run must not start");
    }
}

/// The classic demonstration, live: under partitions refstore's `causal`
/// mode passes the causal and session checks while each session stays on
/// its node; `eventual`, whose anti-entropy repairs keys independently,
/// fails causal consistency; and `causal` with sessions that move between
/// nodes breaks the session guarantees, since its promise is per node.
#[test]
fn causal_holds_for_pinned_sessions_and_breaks_for_eventual_and_for_moving_sessions() {
    let partitions = ["--nemesis", "partition", "--nemesis-interval", "2", "--time-limit", "10"];
    let (code, checks) = test("causal", "causal", &partitions);
    assert_eq!(code, 0, "causal, pinned sessions: {checks:?}");
    let names: Vec<(&str, &str)> = checks.iter().map(|c| (c.0.as_str(), c.1.as_str())).collect();
    assert_eq!(names, [("causal", "valid"), ("session", "valid")]);

    // Eventual shows a violation in most ten-second runs (about 7 of 8
    // measured), not all: a reader must happen to look while a dependent
    // write has arrived without its cause. Up to three runs, each seed printed.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (code, checks) = test("eventual", "causal", &partitions);
        if code == 1 && (checks[0].0.as_str(), checks[0].1.as_str()) == ("causal", "invalid") {
            seen.clear();
            break;
        }
        seen.push(checks);
    }
    assert!(seen.is_empty(), "eventual kept causal consistency in 3 runs: {seen:?}");

    let mut moving = partitions.to_vec();
    moving.extend(["--opt", "sessions=moving"]);
    let (code, checks) = test("causal", "causal", &moving);
    assert_eq!(code, 1, "causal, moving sessions: {checks:?}");
    let session = checks.iter().find(|c| c.0 == "session").expect("a session check");
    assert_eq!(session.1, "invalid", "{checks:?}");
    assert!(
        session.2.iter().any(|k| k == "read-your-writes" || k == "monotonic-reads"),
        "moving sessions must lose their own writes or go back in time: {:?}",
        session.2
    );
}
