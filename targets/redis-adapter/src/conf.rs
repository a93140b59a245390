//! The files the adapter writes for each node, as text without I/O:
//! `redis.conf` (the server: its address, AOF with `appendfsync always`,
//! `replicaof` the first primary) and `sentinel.conf` (one Sentinel per
//! node monitoring that primary with a majority quorum, every replica and
//! every other Sentinel declared, so failover works from the first
//! second), and the AOF manifest read back for file faults.
//!
//! Both files are the processes' own from then on: Sentinel rewrites its
//! file on every change of its view, and sends `CONFIG REWRITE` to the
//! servers it reconfigures, so a node restarted after a kill comes back
//! with what it last knew, as on an operator's machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use crate::wire::MASTER_NAME;

/// How long a primary must be unreachable before a Sentinel calls it down
/// (`down-after-milliseconds`): long enough that a slow `fsync` is not a
/// failover, short enough that a partition of a few seconds is one.
pub const DOWN_AFTER_MS: u64 = 3000;
/// Sentinel's `failover-timeout`: a failover that stalls is retried after
/// twice this, and replicas not yet pointed at a new primary are
/// reconfigured after it. Redis's default (3 minutes) would leave a test
/// without a second failover.
pub const FAILOVER_TIMEOUT_MS: u64 = 6000;
/// The directory, inside the data directory, of Redis 7's multi-part AOF.
pub const AOF_DIR: &str = "appendonlydir";
/// The AOF's base name (`appendfilename`).
const AOF_NAME: &str = "appendonly.aof";

/// One node as the others see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Where its server listens (clients and replication).
    pub redis: SocketAddr,
    /// Where its Sentinel listens.
    pub sentinel: SocketAddr,
    /// Its Sentinel's run id (`sentinel myid`).
    pub sentinel_id: String,
}

/// The whole cluster as the files describe it at setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Every node, by name.
    pub members: BTreeMap<String, Member>,
    /// The node that starts as primary.
    pub primary: String,
}

impl Layout {
    /// The quorum of Sentinels that must agree the primary is down: a
    /// majority, so a minority cut off from the rest never fails over.
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    fn member(&self, node: &str) -> &Member {
        &self.members[node]
    }
}

/// A Sentinel run id: 40 hex digits, unique within the cluster. Declaring
/// the ids up front is what lets each Sentinel list the others as known.
pub fn sentinel_id(index: usize) -> String {
    format!("fa17{:036x}", index + 1)
}

/// A value in Redis's configuration syntax: double-quoted, with `\` and
/// `"` escaped, so paths with spaces survive.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `redis.conf` of `node`, its data in `data_dir`.
pub fn redis_conf(layout: &Layout, node: &str, data_dir: &Path) -> String {
    let me = layout.member(node);
    let ip = me.redis.ip();
    let mut c = String::new();
    let _ = writeln!(c, "# Written by faultline; Sentinel rewrites it on failovers.");
    let _ = writeln!(c, "bind {ip}\nport {}\nprotected-mode no", me.redis.port());
    // The harness starts the process and keeps its output as the log.
    let _ = writeln!(c, "daemonize no\nlogfile \"\"");
    let _ = writeln!(c, "dir {}", quoted(&data_dir.to_string_lossy()));
    // Every write is in the AOF and fsynced before Redis answers it; no
    // RDB snapshots besides the AOF's own base.
    let _ = writeln!(c, "appendonly yes\nappendfsync always\nsave \"\"");
    let _ = writeln!(c, "appenddirname {AOF_DIR}\nappendfilename {AOF_NAME}");
    // Replicas say where they listen, so the primary's INFO (which
    // Sentinel reads) names their real addresses.
    let _ = writeln!(c, "replica-announce-ip {ip}\nreplica-announce-port {}", me.redis.port());
    // A full resync starts at once instead of waiting 5 s for more replicas.
    let _ = writeln!(c, "repl-diskless-sync-delay 0");
    if node != layout.primary {
        let p = layout.member(&layout.primary).redis;
        let _ = writeln!(c, "replicaof {} {}", p.ip(), p.port());
    }
    c
}

/// `sentinel.conf` of `node`, its working directory `dir`.
pub fn sentinel_conf(layout: &Layout, node: &str, dir: &Path) -> String {
    let me = layout.member(node);
    let p = layout.member(&layout.primary).redis;
    let m = MASTER_NAME;
    let mut c = String::new();
    let _ = writeln!(c, "# Written by faultline; Sentinel rewrites it as its view changes.");
    let _ =
        writeln!(c, "bind {}\nport {}\nprotected-mode no", me.sentinel.ip(), me.sentinel.port());
    let _ = writeln!(c, "daemonize no\nlogfile \"\"");
    let _ = writeln!(c, "dir {}", quoted(&dir.to_string_lossy()));
    let _ = writeln!(c, "sentinel myid {}", me.sentinel_id);
    let _ = writeln!(c, "sentinel announce-ip {}", me.sentinel.ip());
    let _ = writeln!(c, "sentinel announce-port {}", me.sentinel.port());
    let _ = writeln!(c, "sentinel monitor {m} {} {} {}", p.ip(), p.port(), layout.quorum());
    let _ = writeln!(c, "sentinel down-after-milliseconds {m} {DOWN_AFTER_MS}");
    let _ = writeln!(c, "sentinel failover-timeout {m} {FAILOVER_TIMEOUT_MS}");
    let _ = writeln!(c, "sentinel parallel-syncs {m} 1");
    for (other, o) in &layout.members {
        if *other != layout.primary {
            let _ = writeln!(c, "sentinel known-replica {m} {} {}", o.redis.ip(), o.redis.port());
        }
        if other != node {
            let (ip, port) = (o.sentinel.ip(), o.sentinel.port());
            let _ = writeln!(c, "sentinel known-sentinel {m} {ip} {port} {}", o.sentinel_id);
        }
    }
    c
}

/// The AOF files a Redis 7 manifest (`appendonly.aof.manifest`) lists as
/// current: the base and the incremental files, not the history ones left
/// for deletion. A replica rewrites its AOF after every full resync, so
/// the names move on (`appendonly.aof.2.incr.aof`, ...).
pub fn aof_files(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in manifest.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let field = |name: &str| words.windows(2).find(|w| w[0] == name).map(|w| w[1]);
        if let (Some(file), Some("b" | "i")) = (field("file"), field("type")) {
            out.push(file.to_owned());
        }
    }
    out
}

/// The files of a fresh AOF, before any rewrite: what the manifest of a
/// node that never resynced lists.
pub fn first_aof_files() -> Vec<String> {
    vec![format!("{AOF_NAME}.1.base.rdb"), format!("{AOF_NAME}.1.incr.aof")]
}

/// The manifest's file name.
pub fn manifest_name() -> String {
    format!("{AOF_NAME}.manifest")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        let members = (1..=3)
            .map(|i| {
                let m = Member {
                    redis: format!("10.0.0.{i}:7700").parse().expect("addr"),
                    sentinel: format!("10.0.0.{i}:7800").parse().expect("addr"),
                    sentinel_id: sentinel_id(i),
                };
                (format!("n{i}"), m)
            })
            .collect();
        Layout { members, primary: "n1".into() }
    }

    #[test]
    fn the_primary_has_no_replicaof_and_every_replica_follows_it_with_fsynced_aof() {
        let l = layout();
        let primary = redis_conf(&l, "n1", Path::new("/d/n1 x/redis-data"));
        assert!(primary.contains("bind 10.0.0.1\nport 7700\nprotected-mode no"), "{primary}");
        assert!(primary.contains("appendonly yes\nappendfsync always"), "{primary}");
        assert!(primary.contains("dir \"/d/n1 x/redis-data\""), "{primary}");
        assert!(!primary.contains("replicaof"), "{primary}");
        let replica = redis_conf(&l, "n2", Path::new("/d/n2/redis-data"));
        assert!(replica.contains("replicaof 10.0.0.1 7700"), "{replica}");
    }

    #[test]
    fn every_sentinel_monitors_the_primary_with_a_majority_quorum_and_knows_the_others() {
        let l = layout();
        assert_eq!(l.quorum(), 2);
        let s = sentinel_conf(&l, "n2", Path::new("/d/n2"));
        assert!(s.contains("sentinel monitor fl 10.0.0.1 7700 2"), "{s}");
        assert!(s.contains(&format!("sentinel down-after-milliseconds fl {DOWN_AFTER_MS}")));
        assert!(s.contains("sentinel known-replica fl 10.0.0.2 7700"), "{s}");
        assert!(s.contains("sentinel known-replica fl 10.0.0.3 7700"), "{s}");
        assert!(!s.contains("known-replica fl 10.0.0.1"), "{s}");
        assert!(s.contains(&format!("known-sentinel fl 10.0.0.1 7800 {}", sentinel_id(1))));
        assert!(!s.contains("known-sentinel fl 10.0.0.2"), "{s}");
        assert!(s.contains(&format!("sentinel myid {}", sentinel_id(2))), "{s}");
        assert_eq!(sentinel_id(2).len(), 40);
    }

    #[test]
    fn the_manifest_names_the_current_base_and_incremental_files() {
        let manifest = "file appendonly.aof.2.base.rdb seq 2 type b\n\
                        file appendonly.aof.1.incr.aof seq 1 type h\n\
                        file appendonly.aof.2.incr.aof seq 2 type i\n";
        assert_eq!(aof_files(manifest), ["appendonly.aof.2.base.rdb", "appendonly.aof.2.incr.aof"]);
        assert_eq!(aof_files(""), Vec::<String>::new());
        assert_eq!(first_aof_files(), ["appendonly.aof.1.base.rdb", "appendonly.aof.1.incr.aof"]);
    }
}
