//! refstore's conflict resolution end to end on the local runtime: the set workload on
//! `eventual` under partitions and kills loses acknowledged adds with `resolution=lww` (each
//! add writes the whole list back, and concurrent ones on different nodes overwrite each
//! other) and loses none with `resolution=crdt` (adds merge as a list union); a strict quorum
//! counts every acknowledged increment of a crdt counter under partitions. The rates over ten
//! seeds, for every leaderless mode, come from `campaigns/crdt.toml`.

use crate::e2e::{run, shared};
use crate::workloads::verdicts;

/// One short set test of `eventual` with the given resolution.
fn eventual_set(resolution: &str, store: &std::path::Path) -> crate::e2e::Finished {
    let option = format!("resolution={resolution}");
    let args = [
        "--mode",
        "eventual",
        "--workload",
        "set",
        "--nodes",
        "5",
        "--nemesis",
        "partition,kill",
        "--nemesis-interval",
        "1",
        "--time-limit",
        "3",
        "--seed",
        "1",
        "--opt",
        &option,
    ];
    run(&args, store)
}

#[test]
fn crdt_keeps_every_acknowledged_add_where_lww_loses_some() {
    let _slot = shared();
    let store = tempfile::tempdir().expect("tempdir");
    let r = eventual_set("crdt", store.path());
    assert_eq!(r.code, 0, "crdt must lose nothing:\n{}\n{}", r.stdout, r.stderr);
    let checks = verdicts(&r.run_dir);
    for checker in ["set-full", "convergence"] {
        let (_, validity, _) =
            checks.iter().find(|(c, ..)| c == checker).expect("the set workload's checkers");
        assert_eq!(validity, "valid", "{checker} under crdt: {checks:?}");
    }

    let r = eventual_set("lww", store.path());
    assert_eq!(r.code, 1, "lww must lose adds:\n{}\n{}", r.stdout, r.stderr);
    let (_, validity, anomalies) = verdicts(&r.run_dir)
        .into_iter()
        .find(|(c, ..)| c == "set-full")
        .expect("a set-full verdict");
    assert_eq!(validity, "invalid");
    let kinds: Vec<&str> = anomalies.iter().filter_map(|a| a["kind"].as_str()).collect();
    assert!(kinds.contains(&"lost"), "acknowledged adds lost under lww: {kinds:?}");
}

#[test]
fn a_crdt_counter_in_a_strict_quorum_counts_every_acknowledged_increment() {
    let _slot = shared();
    let store = tempfile::tempdir().expect("tempdir");
    let args = [
        "--mode",
        "quorum",
        "--workload",
        "counter",
        "--nodes",
        "3",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "1",
        "--time-limit",
        "1",
        "--seed",
        "1",
        "--opt",
        "resolution=crdt",
        "--opt",
        "sloppy_quorum=false",
    ];
    let r = run(&args, store.path());
    assert_eq!(r.code, 0, "a crdt counter must lose nothing:\n{}\n{}", r.stdout, r.stderr);
    let checks = verdicts(&r.run_dir);
    let (_, validity, _) =
        checks.iter().find(|(c, ..)| c == "counter").expect("the counter workload's checker");
    assert_eq!(validity, "valid", "{checks:?}");
}
