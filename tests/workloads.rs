//! End to end, per workload: list-append and set on refstore clusters reach
//! the verdict the replication mode deserves, and a weak mode's violation
//! names the acknowledged writes it lost, which the history confirms.

use std::collections::BTreeSet;
use std::path::Path;

use checkers::{OpType, Process, Value};

use crate::e2e::{history, nemesis_fs, run, shared};

/// The verdicts in a run's `results.json`, as (checker, validity, anomalies).
pub(crate) fn verdicts(run_dir: &Path) -> Vec<(String, String, Vec<serde_json::Value>)> {
    let text = std::fs::read_to_string(run_dir.join("results.json")).expect("results.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("results.json is JSON");
    doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            let v = &c["verdict"];
            (
                v["checker"].as_str().unwrap_or_default().to_owned(),
                v["validity"].as_str().unwrap_or_default().to_owned(),
                v["anomalies"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

fn ints(v: &Value) -> BTreeSet<i64> {
    v.as_list().unwrap_or_default().iter().filter_map(Value::as_int).collect()
}

#[test]
fn raft_list_append_under_partitions_and_kills_is_strict_serializable() {
    let _slot = shared();
    let store = tempfile::tempdir().expect("tempdir");
    let r = run(
        &[
            "--mode",
            "raft",
            "--workload",
            "list-append",
            "--nemesis",
            "partition,kill",
            "--nodes",
            "3",
            "--time-limit",
            "12",
            "--nemesis-interval",
            "2",
        ],
        store.path(),
    );
    assert_eq!(r.code, 0, "raft must be strict-serializable:\n{}\n{}", r.stdout, r.stderr);
    let checks = verdicts(&r.run_dir);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!((checks[0].0.as_str(), checks[0].1.as_str()), ("list-append", "valid"));
    let h = history(&r.run_dir);
    let fs = nemesis_fs(&h);
    assert!(fs.iter().any(|f| f == "start-partition") && fs.iter().any(|f| f == "start-kill"));
    // The run lasts its time limit even while every client waits on a
    // killed node: the last client invocation comes late in the run.
    let last_invoke = h
        .ops()
        .iter()
        .filter(|o| o.kind == OpType::Invoke && o.process != Process::Nemesis)
        .filter_map(|o| o.time)
        .max()
        .unwrap_or(0);
    assert!(last_invoke > 10_000_000_000, "clients stopped at {} ms", last_invoke / 1_000_000);
    let oks = h.ops().iter().filter(|o| o.kind == OpType::Ok && o.f == "txn").count();
    assert!(oks > 100, "only {oks} transactions succeeded");
}

#[test]
fn raft_set_under_partitions_and_kills_loses_nothing_and_converges() {
    let _slot = shared();
    let store = tempfile::tempdir().expect("tempdir");
    let r = run(
        &[
            "--mode",
            "raft",
            "--workload",
            "set",
            "--nemesis",
            "partition,kill",
            "--nodes",
            "3",
            "--time-limit",
            "10",
            "--nemesis-interval",
            "2",
            "--recovery",
            "2",
        ],
        store.path(),
    );
    assert_eq!(r.code, 0, "raft must lose nothing:\n{}\n{}", r.stdout, r.stderr);
    let checks: Vec<(String, String)> =
        verdicts(&r.run_dir).into_iter().map(|(c, v, _)| (c, v)).collect();
    assert_eq!(
        checks,
        [("set-full".to_owned(), "valid".to_owned()), ("convergence".into(), "valid".into())]
    );
}

/// `eventual` resolves concurrent appends to one key by last-write-wins, so
/// adds made on different nodes at once vanish (its documented promise).
/// The checkers must name them, and every named element must really be an
/// acknowledged add that no final read contains.
#[test]
fn eventual_set_loses_concurrent_adds_and_the_checkers_name_them() {
    let _slot = shared();
    let store = tempfile::tempdir().expect("tempdir");
    let r = run(
        &[
            "--mode",
            "eventual",
            "--workload",
            "set",
            "--nemesis",
            "none",
            "--nodes",
            "3",
            "--time-limit",
            "5",
            "--recovery",
            "2",
        ],
        store.path(),
    );
    assert_eq!(r.code, 1, "lost adds must make the run invalid:\n{}\n{}", r.stdout, r.stderr);
    let h = history(&r.run_dir);
    let pairs = h.pairs().expect("pairs");
    let ops = h.ops();
    let mut acknowledged = BTreeSet::new();
    let mut final_reads: Vec<BTreeSet<i64>> = Vec::new();
    let mut last_read_by_node = std::collections::BTreeMap::new();
    for p in &pairs {
        let Some(c) = p.complete else { continue };
        let (inv, done) = (&ops[p.invoke], &ops[c]);
        match (inv.f.as_str(), done.kind) {
            ("add", OpType::Ok) => {
                acknowledged.insert(inv.value.as_int().expect("an add adds an integer"));
            }
            ("read", OpType::Ok) => {
                last_read_by_node.insert(inv.node.clone().unwrap_or_default(), ints(&done.value));
            }
            _ => {}
        }
    }
    final_reads.extend(last_read_by_node.into_values());
    assert_eq!(final_reads.len(), 3, "every node answers a final read");
    let checks = verdicts(&r.run_dir);
    let lost: Vec<&serde_json::Value> = checks
        .iter()
        .filter(|(checker, ..)| checker == "set-full")
        .flat_map(|(_, _, anomalies)| anomalies)
        .filter(|a| a["kind"] == "lost")
        .collect();
    assert_eq!(lost.len(), 1, "set-full names the lost adds: {checks:?}");
    let named: BTreeSet<i64> = lost[0]["data"]["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .filter_map(serde_json::Value::as_i64)
        .collect();
    assert!(!named.is_empty());
    for e in &named {
        assert!(acknowledged.contains(e), "{e} is named lost but was never acknowledged");
        assert!(final_reads.iter().all(|r| !r.contains(e)), "{e} is named lost but was read last");
    }
    let convergence = checks.iter().find(|(c, ..)| c == "convergence").expect("convergence ran");
    assert_eq!(convergence.1, "invalid", "acknowledged adds missing everywhere: {convergence:?}");
}
