//! The cluster's state as the adapter knows it (which node is primary, the
//! server process on each node, which data directories hold a cluster) and
//! how a node starts in its role: the first primary from `initdb`, a new
//! standby cloned with `pg_basebackup`, a standby or former primary that
//! comes back rewound with `pg_rewind` onto the current primary's timeline.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use harness::{HarnessError, Result, TestEnv};

use crate::config::{self, Isolation, Replication};
use crate::server::{self, RunAs};

/// How long a standby's first start waits for the primary to answer
/// before it can be cloned.
const CLONE_WAIT: Duration = Duration::from_secs(60);
/// How long a returning node waits for a primary whose server runs but
/// does not answer yet (it may be starting) before it starts unrewound.
const REWIND_WAIT: Duration = Duration::from_secs(5);

/// Which node is the primary, and how many failovers made it so. Shared
/// with every client, which follows it.
#[derive(Debug, Default)]
pub struct Primary(Mutex<(String, u64)>);

impl Primary {
    /// The primary's name and the failover count (its epoch).
    pub fn get(&self) -> (String, u64) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `node` the primary; a different node starts a new epoch.
    pub fn set(&self, node: &str) {
        let mut p = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if p.0 != node {
            p.1 += if p.0.is_empty() { 0 } else { 1 };
            p.0 = node.to_owned();
        }
    }
}

/// Which tables the client uses, chosen by the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tables {
    /// `lists`: one row per key, its value a comma-separated text list.
    Lists,
    /// `registers`: one integer per key (registers, rw-register, bank, long-fork).
    Registers,
}

/// What the test chose.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// How the primary replicates.
    pub replication: Replication,
    /// Every transaction's isolation level.
    pub isolation: Isolation,
    /// Which tables `txn` reads and writes.
    pub tables: Tables,
}

/// The cluster.
#[derive(Debug)]
pub struct Cluster {
    /// The test's choices.
    pub options: Options,
    /// The primary, shared with the clients.
    pub primary: std::sync::Arc<Primary>,
    /// How PostgreSQL's programs run on each node.
    run_as: Mutex<BTreeMap<String, RunAs>>,
    /// The postmaster's process id on each node where it was started.
    pids: Mutex<BTreeMap<String, u32>>,
    /// Nodes whose data directory holds a cluster.
    cloned: Mutex<BTreeSet<String>>,
    /// Held while a node starts or failover changes roles, so a node never
    /// starts as the standby of a primary that is being replaced.
    pub roles: tokio::sync::Mutex<()>,
}

impl Cluster {
    /// A cluster of nothing yet.
    pub fn new(options: Options) -> Cluster {
        Cluster {
            options,
            primary: Default::default(),
            run_as: Mutex::default(),
            pids: Mutex::default(),
            cloned: Mutex::default(),
            roles: tokio::sync::Mutex::new(()),
        }
    }

    /// How PostgreSQL runs on `node` (found by `setup`).
    pub fn run_as(&self, node: &str) -> Result<RunAs> {
        let map = self.run_as.lock().unwrap_or_else(|e| e.into_inner());
        map.get(node).cloned().ok_or_else(|| HarnessError::Internal(format!("{node} not set up")))
    }

    /// The postmaster's pid on `node`, if one was started and not killed.
    pub fn pid(&self, node: &str) -> Option<u32> {
        self.pids.lock().unwrap_or_else(|e| e.into_inner()).get(node).copied()
    }

    /// Forgets `node`'s postmaster (it was killed).
    pub fn forget(&self, node: &str) {
        self.pids.lock().unwrap_or_else(|e| e.into_inner()).remove(node);
    }

    /// Whether `node`'s postmaster runs.
    pub async fn running(&self, env: &TestEnv, node: &str) -> Result<bool> {
        match self.pid(node) {
            Some(pid) => server::control(env, node)?.is_alive(pid).await,
            None => Ok(false),
        }
    }

    /// Prepares `node`: checks the package, empties its data directory and,
    /// on the first node, creates the cluster that becomes the primary.
    pub async fn setup(&self, env: &TestEnv, node: &str) -> Result<()> {
        let who = server::install_check(env, node).await?;
        self.run_as.lock().unwrap_or_else(|e| e.into_inner()).insert(node.into(), who.clone());
        let data = server::data_dir(env, node)?.to_string_lossy().into_owned();
        // A data directory left from an earlier run would be another cluster.
        server::run(env, node, "rm", &["-rf".into(), data]).await?;
        self.cloned.lock().unwrap_or_else(|e| e.into_inner()).remove(node);
        if env.nodes().first().map(String::as_str) == Some(node) {
            let settings = config::shared_settings(self.options.replication);
            server::initdb(env, node, &who, &settings).await?;
            self.cloned.lock().unwrap_or_else(|e| e.into_inner()).insert(node.into());
            self.primary.set(node);
        }
        Ok(())
    }

    /// Starts `node` in its role: the primary as it is, a standby cloned
    /// (first start) or rewound (later starts) from the current primary.
    pub async fn start(&self, env: &TestEnv, node: &str) -> Result<()> {
        let _roles = self.roles.lock().await;
        // Two nemeses may restart the same node; a second server on the
        // same data directory would only fail.
        if self.running(env, node).await? {
            return Ok(());
        }
        let (primary, _) = self.primary.get();
        let who = self.run_as(node)?;
        if primary == node {
            server::set_role(env, node, None).await?;
        } else {
            self.prepare_standby(env, node, &who, &primary).await?;
        }
        let pid = server::start(env, node, &who).await?;
        tracing::info!(node, pid, role = if primary == node { "primary" } else { "standby" });
        self.pids.lock().unwrap_or_else(|e| e.into_inner()).insert(node.into(), pid);
        Ok(())
    }

    /// Brings `node`'s data directory onto the primary's timeline and
    /// points it at the primary.
    async fn prepare_standby(
        &self,
        env: &TestEnv,
        node: &str,
        who: &RunAs,
        primary: &str,
    ) -> Result<()> {
        let addr = env.addrs(primary)?.client;
        let cloned = self.cloned.lock().unwrap_or_else(|e| e.into_inner()).contains(node);
        if !cloned {
            self.wait_for(env, primary, addr, CLONE_WAIT).await?;
            server::basebackup(env, node, who, addr).await?;
            self.cloned.lock().unwrap_or_else(|e| e.into_inner()).insert(node.into());
        } else if self.wait_for(env, primary, addr, REWIND_WAIT).await.is_ok() {
            self.rewind_or_clone(env, node, who, addr).await?;
        } else {
            // Nothing to rewind against: it streams once the primary is
            // back, or is rewound at its next start.
            tracing::warn!(node, primary, "primary not answering; starting the standby unrewound");
        }
        server::set_role(env, node, Some(addr)).await
    }

    /// `pg_rewind`, which does nothing to a node that never went past the
    /// primary's history; a node it cannot bring back is cloned afresh.
    async fn rewind_or_clone(
        &self,
        env: &TestEnv,
        node: &str,
        who: &RunAs,
        addr: SocketAddr,
    ) -> Result<()> {
        match server::rewind(env, node, who, addr).await {
            Ok(out) => {
                tracing::info!(node, "pg_rewind: {}", out.lines().last().unwrap_or("").trim());
                Ok(())
            }
            Err(e) => {
                tracing::warn!(node, "pg_rewind failed ({e}); cloning afresh");
                server::basebackup(env, node, who, addr).await
            }
        }
    }

    /// Waits until the primary answers; fails at once when its server is
    /// not running (nobody will start it in time).
    async fn wait_for(
        &self,
        env: &TestEnv,
        primary: &str,
        addr: SocketAddr,
        limit: Duration,
    ) -> Result<()> {
        let started = Instant::now();
        loop {
            if server::in_recovery(addr).await == Some(false) {
                return Ok(());
            }
            if !self.running(env, primary).await? || started.elapsed() > limit {
                return Err(HarnessError::Timeout(format!(
                    "primary {primary} did not answer within {limit:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The nodes whose server answers as a primary.
    pub async fn primaries(&self, env: &TestEnv) -> Vec<String> {
        let mut out = Vec::new();
        for node in env.nodes() {
            let Ok(addr) = env.addrs(node).map(|a| a.client) else { continue };
            if self.pid(node).is_some() && server::in_recovery(addr).await == Some(false) {
                out.push(node.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_counts_changes_of_primary_only() {
        let p = Primary::default();
        p.set("n1");
        assert_eq!(p.get(), ("n1".into(), 0));
        p.set("n1");
        assert_eq!(p.get().1, 0);
        p.set("n2");
        assert_eq!(p.get(), ("n2".into(), 1));
    }
}
