//! Starting a whole cluster inside one process: the `refstore cluster` command, the
//! integration tests and the benchmark use it.

use crate::core::Timing;
use crate::modes::Mode;
use crate::node::{self, NodeConfig, NodeError, RunningNode};
use crate::types::NodeId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpListener;

/// A cluster of nodes running in this process.
#[derive(Debug)]
pub struct LocalCluster {
    /// The nodes, by id.
    pub nodes: BTreeMap<NodeId, RunningNode>,
    /// The configuration each node was started with (for restarts).
    pub configs: BTreeMap<NodeId, NodeConfig>,
}

/// Where a local cluster's nodes listen.
#[derive(Clone, Debug)]
pub enum Ports {
    /// Node `i` (from 1) serves clients on `base + i - 1` and peers on `base + 100 + i - 1`.
    Base(u16),
    /// Any free ports the kernel picks (tests).
    Ephemeral,
}

impl LocalCluster {
    /// Starts `n` nodes of `mode` on `host`, keeping node `i`'s log in `data_dir/n<i>`.
    pub async fn start(
        mode: Mode,
        n: u64,
        host: &str,
        ports: Ports,
        data_dir: &Path,
        timing: Timing,
    ) -> Result<LocalCluster, NodeError> {
        if n == 0 {
            return Err(NodeError::Config("a cluster needs at least one node"));
        }
        let mut listeners = BTreeMap::new();
        for i in 1..=n {
            let (client, peer) = match ports {
                Ports::Base(base) => {
                    let c = u64::from(base) + i - 1;
                    (format!("{host}:{c}"), format!("{host}:{}", c + 100))
                }
                Ports::Ephemeral => (format!("{host}:0"), format!("{host}:0")),
            };
            let bind = |addr: String| async move {
                TcpListener::bind(&addr).await.map_err(|source| NodeError::Bind { addr, source })
            };
            listeners.insert(i, (bind(client).await?, bind(peer).await?));
        }
        let mut peer_addrs = BTreeMap::new();
        for (id, (_, peer)) in &listeners {
            let addr = peer
                .local_addr()
                .map_err(|source| NodeError::Bind { addr: host.into(), source })?;
            peer_addrs.insert(*id, addr.to_string());
        }
        let mut cluster = LocalCluster { nodes: BTreeMap::new(), configs: BTreeMap::new() };
        for (id, (client, peer)) in listeners {
            let cfg = NodeConfig {
                id,
                mode,
                client_addr: client.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                peer_addr: peer_addrs[&id].clone(),
                peers: peer_addrs
                    .iter()
                    .filter(|(p, _)| **p != id)
                    .map(|(p, a)| (*p, a.clone()))
                    .collect(),
                data_dir: node_dir(data_dir, id),
                clock_offset_ms: 0,
                timing,
                wal_recovery: None,
                request_timeout: Duration::from_millis(timing.request_ms + 1000),
                seed: 0x5EED_0000 + id,
                quorum: Default::default(),
                resolution: Default::default(),
                bug: None,
            };
            let running = node::start_with_listeners(cfg.clone(), client, peer)?;
            cluster.configs.insert(id, cfg);
            cluster.nodes.insert(id, running);
        }
        Ok(cluster)
    }

    /// Every node's client API address, by id.
    pub fn client_addrs(&self) -> BTreeMap<NodeId, String> {
        self.nodes.iter().map(|(id, n)| (*id, n.client_addr.clone())).collect()
    }

    /// Stops node `id` (its log stays on disk).
    pub async fn stop(&mut self, id: NodeId) -> Result<(), NodeError> {
        match self.nodes.remove(&id) {
            Some(n) => n.shutdown().await,
            None => Ok(()),
        }
    }

    /// Starts node `id` again from its log, on the same addresses.
    pub async fn restart(&mut self, id: NodeId) -> Result<(), NodeError> {
        self.stop(id).await?;
        let Some(cfg) = self.configs.get(&id).cloned() else {
            return Err(NodeError::Config("restart of a node this cluster never had"));
        };
        let running = node::start(cfg).await?;
        self.nodes.insert(id, running);
        Ok(())
    }

    /// Stops every node.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let mut first_error = Ok(());
        for (_, n) in self.nodes {
            if let Err(e) = n.shutdown().await
                && first_error.is_ok()
            {
                first_error = Err(e);
            }
        }
        first_error
    }
}

/// The data directory of node `id` under a cluster directory.
pub fn node_dir(data_dir: &Path, id: NodeId) -> PathBuf {
    data_dir.join(format!("n{id}"))
}
