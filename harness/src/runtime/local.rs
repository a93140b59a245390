//! The `local` runtime: every node is a process on this machine listening on
//! loopback ports, and node-to-node traffic goes through a proxy per
//! directed link, so partitions and packet faults need no privileges. The
//! default runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use async_trait::async_trait;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

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
    /// The run's tag (`FAULTLINE_RUN` of its processes).
    tag: String,
}

/// The kernel's ephemeral port range, from which it takes the source port
/// of every outgoing connection and the port of every port-0 bind
/// (Linux's default when the setting cannot be read).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// The lowest port a node listens on: above the well-known and the usual
/// fixed service ports.
const LOWEST_PORT: u16 = 10_000;

/// A free loopback port for a node to listen on. The listener is held
/// until every port and proxy of the cluster is chosen, so no two of them
/// get the same port.
///
/// The port is drawn below the kernel's ephemeral range: between the
/// choice and the node's bind, and again while a killed node is down, the
/// port is free, and every outgoing connection on the machine (clients,
/// proxies, other clusters) takes its source port from the ephemeral
/// range. A port drawn from it could be taken that way, and the node
/// would then fail to start (CI saw a cell fail so, with four clusters
/// running). Below the range only a program binding that very port can
/// take it. Port 0 is the fallback when the range leaves no room below.
fn free_port(held: &mut Vec<std::net::TcpListener>, rng: &mut SmallRng) -> Result<SocketAddr> {
    let no_port = |e: std::io::Error| HarnessError::Net(format!("no free loopback port: {e}"));
    let (low, _) = ephemeral_range();
    if low > LOWEST_PORT {
        for _ in 0..256 {
            let port = rng.random_range(LOWEST_PORT..low);
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                let addr = l.local_addr().map_err(no_port)?;
                held.push(l);
                return Ok(addr);
            }
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(no_port)?;
    let addr = l.local_addr().map_err(no_port)?;
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
        // Not the run's seed: which free ports a run gets changes nothing
        // it records, and two runs of one seed may run at once.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut rng = SmallRng::seed_from_u64(nanos ^ (u64::from(std::process::id()) << 32));
        let mut listen = BTreeMap::new();
        for id in &ids {
            let client = free_port(&mut held, &mut rng)?;
            listen.insert(id.clone(), (client, free_port(&mut held, &mut rng)?));
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
        Ok(LocalRuntime { nodes: ids, controls, addrs, proxies, binary, tag: run_tag.to_owned() })
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
        // What the daemons forked, and what SIGKILL has not ended yet.
        super::process::end_run(&self.tag).await
    }
}
