//! Integration tests of the `faultline` binary, one module per area.

/// The crates' dependencies point the way ARCHITECTURE.md says.
mod architecture;
/// `faultline campaign`: the seed matrix at small scale, interruption and resume.
mod campaign;
/// `faultline check` and `faultline generate`: exit codes, outputs, errors.
mod check;
/// Every listed checker run by the binary on the checkers' golden histories.
mod checkers;
/// Jepsen's classic workloads (bank, counter, unique-ids, queue, long-fork,
/// rw-register) and the causal workload end to end, and checkers chosen
/// per test.
mod classic_workloads;
/// refstore's conflict resolution: the set workload loses acknowledged adds
/// under last-write-wins and none under crdt merges.
mod crdt;
/// Whole test campaigns on each runtime, interruption and cleanup.
mod e2e;
/// etcd 3.4 clusters in network namespaces: linearizable reads valid under
/// every fault, serializable reads caught stale under partitions.
mod etcd;
/// Every fault kind on the netns runtime: the fault measurably happens and
/// its stop undoes it.
mod faults;
/// MariaDB with Galera in network namespaces: REPEATABLE READ's anomalies
/// on a multi-master cluster, with and without partitions and kills.
mod galera;
/// PostgreSQL 15 clusters in network namespaces: each isolation level's
/// anomalies on one primary, and writes lost at failover under async
/// replication but not under remote_apply synchronous replication.
mod postgres;
/// refstore's quorum mode: the anomalies of R + W <= N, of last-write-wins
/// under clock skew and of a sloppy quorum under partitions are caught.
mod quorum;
/// Redis 7 with Sentinel in network namespaces: partitions and kills of the
/// primary lose acknowledged writes.
mod redis;
/// refstore's quorum mode with sibling versions: the set workload loses no
/// acknowledged add, and a register read of several siblings is named.
mod siblings;
/// A simulated run's directory analyzed, redrawn and served like a real one.
mod sim;
/// Each workload end to end: the verdict its replication mode deserves.
mod workloads;
