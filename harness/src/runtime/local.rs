//! The `local` runtime: every node is a process on this machine listening on
//! loopback ports, and node-to-node traffic goes through a proxy per
//! directed link, so partitions and packet faults need no privileges. The
//! default runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use async_trait::async_trait;

use crate::error::{HarnessError, Result};
use crate::node::{Grudge, LinkShape, NodeAddrs, NodeControl, NodeId, Runtime};
use crate::runtime::process::ProcessNode;
use crate::runtime::proxy::Proxy;

/// Nodes as local processes, links through proxies.
pub struct LocalRuntime {
    nodes: Vec<NodeId>,
    controls: BTreeMap<NodeId, ProcessNode>,
    addrs: BTreeMap<NodeId, NodeAddrs>,
    /// The proxy for each directed link `(from, to)`.
    proxies: BTreeMap<(NodeId, NodeId), Proxy>,
    binary: PathBuf,
}

/// A free loopback port, found by binding port 0. The listener is held
/// until every port and proxy of the cluster is chosen, so no two of them
/// get the same port; another process could still take it before the node
/// binds it, and the node then fails to start and says so.
fn free_port(held: &mut Vec<std::net::TcpListener>) -> Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| HarnessError::Net(format!("no free loopback port: {e}")))?;
    let addr =
        l.local_addr().map_err(|e| HarnessError::Net(format!("no free loopback port: {e}")))?;
    held.push(l);
    Ok(addr)
}

impl LocalRuntime {
    /// Lays out `nodes` nodes (`n1`..) with their directories under
    /// `nodes_dir`, loopback ports, and a proxy per directed link.
    pub async fn start(
        nodes: u32,
        nodes_dir: PathBuf,
        binary: PathBuf,
        run_tag: &str,
    ) -> Result<LocalRuntime> {
        let ids: Vec<NodeId> = (1..=nodes).map(|i| format!("n{i}")).collect();
        let mut held = Vec::new();
        let mut listen = BTreeMap::new();
        for id in &ids {
            listen.insert(id.clone(), (free_port(&mut held)?, free_port(&mut held)?));
        }
        let mut proxies = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        for from in &ids {
            let mut peers = BTreeMap::new();
            for to in &ids {
                if from == to {
                    continue;
                }
                let proxy = Proxy::start(listen[to].1).await?;
                peers.insert(to.clone(), proxy.listen);
                proxies.insert((from.clone(), to.clone()), proxy);
            }
            let (client, peer_listen) = listen[from];
            addrs.insert(from.clone(), NodeAddrs { client, peer_listen, peers });
        }
        let controls = ids
            .iter()
            .map(|id| (id.clone(), ProcessNode::new(id, nodes_dir.join(id), run_tag, Vec::new())))
            .collect();
        drop(held);
        Ok(LocalRuntime { nodes: ids, controls, addrs, proxies, binary })
    }

    /// The shape of link `from → to` (for tests).
    pub fn link_shape(&self, from: &str, to: &str) -> Option<LinkShape> {
        self.proxies.get(&(from.to_owned(), to.to_owned())).and_then(Proxy::shape)
    }

    /// Whether the link `from → to` is currently cut (for tests).
    pub fn is_cut(&self, from: &str, to: &str) -> bool {
        self.proxies.get(&(from.to_owned(), to.to_owned())).is_some_and(Proxy::is_cut)
    }
}

#[async_trait]
impl Runtime for LocalRuntime {
    fn name(&self) -> &str {
        "local"
    }

    fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    fn node(&self, id: &str) -> Option<&dyn NodeControl> {
        self.controls.get(id).map(|n| n as &dyn NodeControl)
    }

    fn addrs(&self, id: &str) -> Option<&NodeAddrs> {
        self.addrs.get(id)
    }

    fn faultline_binary(&self, _id: &str) -> PathBuf {
        self.binary.clone()
    }

    async fn set_grudge(&self, grudge: &Grudge) -> Result<()> {
        for ((from, to), proxy) in &self.proxies {
            proxy.set_cut(grudge.cuts(from, to));
        }
        Ok(())
    }

    async fn current_grudge(&self) -> Result<Grudge> {
        let mut g = Grudge::none();
        for ((from, to), proxy) in &self.proxies {
            if proxy.is_cut() {
                g.0.entry(to.clone()).or_default().insert(from.clone());
            }
        }
        Ok(g)
    }

    fn partitioner(&self) -> String {
        "proxy".into()
    }

    async fn set_link_shape(&self, from: &str, to: &str, shape: Option<&LinkShape>) -> Result<()> {
        let proxy = self
            .proxies
            .get(&(from.to_owned(), to.to_owned()))
            .ok_or_else(|| HarnessError::Net(format!("no link {from} -> {to} in this cluster")))?;
        if let Some(s) = shape {
            s.validate().map_err(|e| HarnessError::Net(format!("link {from} -> {to}: {e}")))?;
        }
        proxy.set_shape(shape.cloned());
        Ok(())
    }

    async fn link_shaper(&self) -> Result<String> {
        // The proxies carry every node-to-node byte; they shape the stream
        // (delay, jitter, rate; loss as a retransmission delay).
        Ok("proxy".into())
    }

    async fn teardown(&self) -> Result<()> {
        for proxy in self.proxies.values() {
            proxy.stop();
        }
        for node in self.controls.values() {
            node.kill_all();
        }
        Ok(())
    }
}
