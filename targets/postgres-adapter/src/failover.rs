//! Failover, as an operator's script does it: a watchdog checks every
//! 250 ms whether the primary's server process still runs. When it does
//! not (a crash, the kill nemesis), the watchdog asks every running
//! standby how far it got (`pg_last_wal_receive_lsn()`,
//! `pg_last_wal_replay_lsn()`), promotes the one that reaches furthest
//! (`pg_promote()`, then a `CHECKPOINT` so `pg_rewind` sees its new
//! timeline), makes it the primary the clients follow, and repoints every
//! other running standby at it (its `primary_conninfo` rewritten, then
//! `pg_reload_conf()`). A node that was down comes back, whenever it is
//! restarted, rewound onto the new primary's timeline (`cluster.rs`).
//!
//! It acts on a dead server only. A primary that is paused or cut off by
//! a partition still runs, and the watchdog waits for it, as a script that
//! cannot tell slow from dead and will not risk two primaries does. With
//! no standby running, it waits for one (or for the old primary's restart,
//! which then starts as the primary again).

use std::sync::Arc;
use std::time::Duration;

use harness::{Result, TestEnv};

use crate::cluster::Cluster;
use crate::config::{self, Lsn, StandbyPosition};
use crate::server;

/// How often the watchdog looks at the primary.
const TICK: Duration = Duration::from_millis(250);
/// How long a standby may take to answer the watchdog.
const ASK: Duration = Duration::from_secs(1);
/// How long promotion may take before the watchdog gives up on it.
const PROMOTE_WAIT_SECS: i32 = 30;

/// Runs the watchdog until the task is aborted (at teardown).
pub async fn watch(cluster: Arc<Cluster>, env: TestEnv) {
    loop {
        tokio::time::sleep(TICK).await;
        let _roles = cluster.roles.lock().await;
        let (primary, _) = cluster.primary.get();
        if cluster.running(&env, &primary).await.unwrap_or(true) {
            continue;
        }
        if let Err(e) = fail_over(&cluster, &env, &primary).await {
            tracing::warn!("failover from {primary}: {e}");
        }
    }
}

/// Promotes the most advanced running standby in place of `dead`.
async fn fail_over(cluster: &Cluster, env: &TestEnv, dead: &str) -> Result<()> {
    let mut positions = Vec::new();
    for node in env.nodes() {
        if node != dead && cluster.running(env, node).await? {
            let addr = env.addrs(node)?.client;
            if let Some(p) = position(node, addr).await {
                positions.push(p);
            }
        }
    }
    let Some(chosen) = config::most_advanced(&positions).cloned() else {
        return Ok(());
    };
    let addr = env.addrs(&chosen.node)?.client;
    if !promote(addr).await {
        tracing::warn!(node = chosen.node, "pg_promote did not complete; trying again");
        return Ok(());
    }
    cluster.primary.set(&chosen.node);
    note(env, dead, &chosen, &positions);
    for other in positions.iter().filter(|p| p.node != chosen.node) {
        if let Err(e) = repoint(env, &other.node, addr).await {
            tracing::warn!(node = other.node, "could not repoint: {e}");
        }
    }
    Ok(())
}

/// How far a standby got, if it answers as one.
async fn position(node: &str, addr: std::net::SocketAddr) -> Option<StandbyPosition> {
    let client = server::connect(addr, ASK).await?;
    let q = "SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, \
             pg_last_wal_replay_lsn()::text";
    let row = tokio::time::timeout(ASK, client.query_one(q, &[])).await.ok()?.ok()?;
    if !row.try_get::<_, bool>(0).ok()? {
        return None;
    }
    let lsn = |i: usize| {
        row.try_get::<_, Option<String>>(i).ok().flatten().and_then(|s| Lsn::parse(&s).ok())
    };
    Some(StandbyPosition { node: node.to_owned(), received: lsn(1), replayed: lsn(2) })
}

/// Promotes the standby at `addr` and checkpoints its new timeline.
async fn promote(addr: std::net::SocketAddr) -> bool {
    let Some(client) = server::connect(addr, ASK).await else { return false };
    let q = format!("SELECT pg_promote(true, {PROMOTE_WAIT_SECS})");
    let promoted = matches!(client.query_one(&q, &[]).await, Ok(row) if row.get::<_, bool>(0));
    if promoted && let Err(e) = client.batch_execute("CHECKPOINT").await {
        tracing::warn!("checkpoint after promotion: {e}");
    }
    promoted
}

/// Points the running standby `node` at the primary at `addr`.
async fn repoint(env: &TestEnv, node: &str, addr: std::net::SocketAddr) -> Result<()> {
    server::set_role(env, node, Some(addr)).await?;
    let own = env.addrs(node)?.client;
    match server::connect(own, ASK).await {
        Some(c) => c.batch_execute("SELECT pg_reload_conf()").await.map_err(|e| {
            harness::HarnessError::node(node, "reload its configuration", e.to_string())
        }),
        None => Ok(()),
    }
}

/// Records the failover in the run's log and in `failovers.log`, one line
/// each, so a run's failovers can be counted and read.
fn note(env: &TestEnv, dead: &str, chosen: &StandbyPosition, all: &[StandbyPosition]) {
    let positions: Vec<String> = all.iter().map(|p| format!("{}@{}", p.node, p.reach())).collect();
    let line = format!(
        "primary {dead} down; promoted {} (standbys: {})\n",
        chosen.node,
        positions.join(", ")
    );
    tracing::info!("{}", line.trim());
    let path = env.run_dir.join("failovers.log");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    if let Err(e) = appended {
        tracing::warn!("{}: {e}", path.display());
    }
}
