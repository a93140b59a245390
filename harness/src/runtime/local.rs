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
    /// The claims on the nodes' ports (see [`Claim`]), released on drop.
    _ports: Vec<std::fs::File>,
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

/// A claim on a port, machine-wide among faultline processes: an exclusive
/// lock on the file named after the port under the temporary directory,
/// held while the cluster lives and released by the kernel when its holder
/// exits, however it exits.
///
/// Between the choice of a port and the node's bind, and again while a
/// killed node is down, the port is free. Another cluster choosing ports
/// then (a campaign's parallel runs, or tests running side by side) could
/// take it, and one of the two nodes would fail to start: a campaign saw
/// `Address already in use` so, once in seven runs of the seed matrix.
/// A bind test alone cannot see a port that is chosen but not yet bound.
enum Claim {
    /// This cluster holds the port.
    Held(std::fs::File),
    /// Another cluster holds it.
    Taken,
    /// No claim can be made here (no writable temporary directory): the
    /// bind test alone decides.
    Unavailable,
}

fn claim(port: u16) -> Claim {
    let dir = std::env::temp_dir().join("faultline-ports");
    let file = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
    });
    match file {
        Err(_) => Claim::Unavailable,
        // flock: a second open description conflicts even in this process,
        // so two runs of one campaign exclude each other too.
        Ok(f) => match f.try_lock() {
            Ok(()) => Claim::Held(f),
            Err(std::fs::TryLockError::WouldBlock) => Claim::Taken,
            Err(std::fs::TryLockError::Error(_)) => Claim::Unavailable,
        },
    }
}

/// What holds the ports chosen for a cluster: while choosing, their
/// listeners (so no two of its nodes get the same port); for the cluster's
/// life, their claims.
#[derive(Default)]
struct PortHolds {
    listeners: Vec<std::net::TcpListener>,
    claims: Vec<std::fs::File>,
}

/// A free loopback port for a node to listen on, claimed (see [`Claim`])
/// and bound until every port and proxy of the cluster is chosen.
///
/// The port is drawn below the kernel's ephemeral range: every outgoing
/// connection on the machine (clients, proxies, other clusters) takes its
/// source port from that range, and could take a port drawn from it while
/// the port is free. Below the range only a program binding that very port
/// can take it, and faultline's own clusters respect each other's claims.
/// Port 0 is the fallback when the range leaves no room below.
fn free_port(holds: &mut PortHolds, rng: &mut SmallRng) -> Result<SocketAddr> {
    let no_port = |e: std::io::Error| HarnessError::Net(format!("no free loopback port: {e}"));
    let (low, _) = ephemeral_range();
    if low > LOWEST_PORT {
        for _ in 0..256 {
            let port = rng.random_range(LOWEST_PORT..low);
            let claimed = match claim(port) {
                Claim::Taken => continue,
                Claim::Held(f) => Some(f),
                Claim::Unavailable => None,
            };
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                let addr = l.local_addr().map_err(no_port)?;
                holds.listeners.push(l);
                holds.claims.extend(claimed);
                return Ok(addr);
            }
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(no_port)?;
    let addr = l.local_addr().map_err(no_port)?;
    if let Claim::Held(f) = claim(addr.port()) {
        holds.claims.push(f);
    }
    holds.listeners.push(l);
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
        let mut holds = PortHolds::default();
        // Not the run's seed: which free ports a run gets changes nothing
        // it records, and two runs of one seed may run at once.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mut rng = SmallRng::seed_from_u64(nanos ^ (u64::from(std::process::id()) << 32));
        let mut listen = BTreeMap::new();
        for id in &ids {
            let client = free_port(&mut holds, &mut rng)?;
            listen.insert(id.clone(), (client, free_port(&mut holds, &mut rng)?));
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
        // The nodes bind their ports now; the claims stay with the cluster.
        let PortHolds { listeners, claims } = holds;
        drop(listeners);
        Ok(LocalRuntime {
            nodes: ids,
            controls,
            addrs,
            proxies,
            binary,
            tag: run_tag.to_owned(),
            _ports: claims,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_port_is_not_handed_out_again_until_its_cluster_is_gone() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut first = PortHolds::default();
        let addr = free_port(&mut first, &mut rng).expect("a port");
        assert_eq!(first.claims.len(), 1, "the port is claimed");
        // The cluster's nodes bind now: its listeners are gone, its claims stay.
        first.listeners.clear();
        assert!(matches!(claim(addr.port()), Claim::Taken), "another cluster sees it taken");
        // A second cluster drawing the same ports skips that one.
        let mut second = PortHolds::default();
        let again = free_port(&mut second, &mut SmallRng::seed_from_u64(7)).expect("a port");
        assert_ne!(again, addr);
        drop(first);
        assert!(matches!(claim(addr.port()), Claim::Held(_)), "released with its cluster");
    }
}
