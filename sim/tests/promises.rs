//! The modes' promises in simulation: raft stays linearizable under
//! partitions and crashes over many seeds; async primary-backup, which may
//! lose acknowledged writes when its primary fails, is caught doing so.

use checkers::Validity;
use sim::sweep::{SweepOptions, sweep};

use crate::{prepared, small};

fn opts(count: u64) -> SweepOptions {
    SweepOptions { first: 1, count, parallel: 2, store: None }
}

#[test]
fn raft_is_linearizable_under_partitions_and_kills_over_50_seeds() {
    let p = prepared(small("raft", "register", &["partition", "kill"]));
    let s = sweep(&p, &opts(50), &|_| {}).expect("sweeps");
    assert_eq!(s.results.len(), 50);
    assert_eq!(s.validity(), Validity::Valid, "{}", s.table());
}

#[test]
fn async_loses_acknowledged_writes_when_its_primary_is_killed() {
    let p = prepared(small("async", "register", &["kill"]));
    let s = sweep(&p, &opts(20), &|_| {}).expect("sweeps");
    let invalid = s.results.iter().filter(|r| r.validity == Validity::Invalid).count();
    assert!(invalid > 0, "async was never caught in 20 seeds:\n{}", s.table());
}
