//! Node control: one trait for doing things on a node (run a command, start
//! and signal a daemon, copy files, read logs), and one for the runtime that
//! owns the nodes and the network between them. Three runtimes implement
//! them: `local` (processes on loopback, links through proxies), `netns`
//! (network namespaces on a bridge, firewall rules) and `ssh` (remote hosts).
//!
//! Faults are expressed here in terms every runtime can implement: a
//! `Grudge` for partitions (which node drops traffic from which), signals for
//! crashes and pauses, and `LinkShape` for packet faults. DB adapters and
//! nemeses only talk to these traits, so a new runtime needs no change to
//! them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// A node's name, `n1`, `n2`, ... (stable over a test, used in paths and
/// histories).
pub type NodeId = String;

/// The output of a command run on a node.
#[derive(Clone, Debug, Default)]
pub struct ExecOutput {
    /// Exit status (`-1` if killed by a signal).
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A long-running process to start on a node.
#[derive(Clone, Debug)]
pub struct DaemonSpec {
    /// A short name for logs (`refstore`).
    pub name: String,
    /// The program (a path on the node).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Where its standard output and error go, on the node.
    pub log_file: PathBuf,
}

/// A signal the harness sends to processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    /// Kill immediately (crash).
    Kill,
    /// Ask to terminate.
    Term,
    /// Pause (SIGSTOP).
    Stop,
    /// Resume (SIGCONT).
    Cont,
}

impl Signal {
    /// The signal's name as `kill -s` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Kill => "KILL",
            Signal::Term => "TERM",
            Signal::Stop => "STOP",
            Signal::Cont => "CONT",
        }
    }

    /// The `nix` signal.
    pub fn to_nix(self) -> nix::sys::signal::Signal {
        use nix::sys::signal::Signal as S;
        match self {
            Signal::Kill => S::SIGKILL,
            Signal::Term => S::SIGTERM,
            Signal::Stop => S::SIGSTOP,
            Signal::Cont => S::SIGCONT,
        }
    }
}

/// Doing things on one node.
#[async_trait]
pub trait NodeControl: Send + Sync {
    /// The node's name.
    fn id(&self) -> &str;

    /// A directory on the node this test may write to (data, logs, binaries).
    fn dir(&self) -> &Path;

    /// Runs a command to completion (through `sudo` where the runtime is
    /// configured so).
    async fn exec(&self, program: &str, args: &[String]) -> Result<ExecOutput>;

    /// Starts a daemon in the background and returns its process id.
    async fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32>;

    /// Sends `signal` to process `pid` on the node.
    async fn signal(&self, pid: u32, signal: Signal) -> Result<()>;

    /// Whether process `pid` is still alive on the node (a zombie is not).
    async fn is_alive(&self, pid: u32) -> Result<bool>;

    /// Copies a local file to the node (`mode` is the Unix permission bits).
    async fn upload(&self, local: &Path, remote: &Path, mode: u32) -> Result<()>;

    /// Copies a file from the node to the local machine.
    async fn download(&self, remote: &Path, local: &Path) -> Result<()>;
}

/// How a packet fault shapes one directed link, in the vocabulary of
/// `tc netem`: delay with jitter, loss, duplication, reordering and a rate
/// limit. Runtimes apply it to packets (netem, or the NFQUEUE shaper in
/// `netns`) or to the byte stream of a proxied TCP connection (`local`),
/// where duplication and reordering cannot show (TCP hides them) and a loss
/// shows as what TCP makes of it: a retransmission delay. A runtime that
/// cannot shape returns `HarnessError::Unsupported`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LinkShape {
    /// Added one-way delay.
    pub delay: Duration,
    /// Random extra delay, uniform in `0..=jitter`.
    pub jitter: Duration,
    /// Probability (0..1) that a packet is dropped.
    pub loss: f64,
    /// Probability (0..1) that a packet is sent twice.
    pub duplicate: f64,
    /// Probability (0..1) that a packet skips the delay and so overtakes
    /// the packets delayed before it (netem's `reorder`).
    pub reorder: f64,
    /// Bandwidth limit in bytes per second (0: unlimited).
    pub rate: u64,
    /// Seed of the shaper's random choices (drawn by the nemesis, so a run
    /// replays the same choices given the same packets).
    pub seed: u64,
}

impl LinkShape {
    /// Whether this shape changes nothing.
    pub fn is_identity(&self) -> bool {
        self.delay.is_zero()
            && self.jitter.is_zero()
            && self.loss <= 0.0
            && self.duplicate <= 0.0
            && self.reorder <= 0.0
            && self.rate == 0
    }

    /// Checks that probabilities are probabilities.
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, p) in
            [("loss", self.loss), ("duplicate", self.duplicate), ("reorder", self.reorder)]
        {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} = {p} is not a probability between 0 and 1"));
            }
        }
        Ok(())
    }

    /// The shape as a history value (milliseconds, probabilities, bytes/s).
    pub fn to_value(&self) -> checkers::Value {
        use checkers::Value;
        let mut m = vec![
            (
                Value::str("delay-ms"),
                Value::Float(checkers::value::Float(self.delay.as_secs_f64() * 1e3)),
            ),
            (
                Value::str("jitter-ms"),
                Value::Float(checkers::value::Float(self.jitter.as_secs_f64() * 1e3)),
            ),
        ];
        for (k, v) in
            [("loss", self.loss), ("duplicate", self.duplicate), ("reorder", self.reorder)]
        {
            if v > 0.0 {
                m.push((Value::str(k), Value::Float(checkers::value::Float(v))));
            }
        }
        if self.rate > 0 {
            m.push((Value::str("rate-bytes-per-s"), Value::Int(self.rate as i64)));
        }
        Value::map(m)
    }
}

/// A partition: for each node, the set of nodes it drops traffic from.
/// Link `a → b` is cut exactly when `grudge[b]` contains `a`, so one-way
/// partitions are a grudge that is not symmetric. The empty grudge is a
/// fully connected network.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grudge(pub BTreeMap<NodeId, BTreeSet<NodeId>>);

impl Grudge {
    /// No partition.
    pub fn none() -> Grudge {
        Grudge::default()
    }

    /// Every node in one component drops traffic from every node in the
    /// others (a symmetric partition).
    pub fn from_components(components: &[Vec<NodeId>]) -> Grudge {
        let mut g = BTreeMap::new();
        for (i, comp) in components.iter().enumerate() {
            for node in comp {
                let others: BTreeSet<NodeId> = components
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .flat_map(|(_, c)| c.iter().cloned())
                    .collect();
                if !others.is_empty() {
                    g.insert(node.clone(), others);
                }
            }
        }
        Grudge(g)
    }

    /// Whether traffic from `from` to `to` is dropped.
    pub fn cuts(&self, from: &str, to: &str) -> bool {
        self.0.get(to).is_some_and(|s| s.contains(from))
    }

    /// Whether this grudge cuts nothing.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }

    /// The grudge as a history value: `{"n1": ["n2", "n3"], ...}`.
    pub fn to_value(&self) -> checkers::Value {
        use checkers::Value;
        let map = self
            .0
            .iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(k, s)| (Value::str(k), Value::List(s.iter().map(Value::str).collect())))
            .collect();
        Value::map(map)
    }
}

/// Where a node listens and how it reaches its peers, as the runtime laid
/// the network out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddrs {
    /// The address clients (the harness) use.
    pub client: SocketAddr,
    /// The address the node listens on for its peers.
    pub peer_listen: SocketAddr,
    /// For every other node, the address this node dials to reach it (in
    /// `local`, a proxy for that directed link; elsewhere, the peer itself).
    pub peers: BTreeMap<NodeId, SocketAddr>,
}

/// A runtime: the set of nodes and the network between them.
#[async_trait]
pub trait Runtime: Send + Sync {
    /// `local`, `netns` or `ssh`.
    fn name(&self) -> &str;

    /// The node names, in order.
    fn nodes(&self) -> &[NodeId];

    /// Control of one node.
    fn node(&self, id: &str) -> Option<&dyn NodeControl>;

    /// The addresses of node `id`.
    fn addrs(&self, id: &str) -> Option<&NodeAddrs>;

    /// The path of the faultline executable on node `id` (after `setup`
    /// uploaded it where needed), for targets embedded in it.
    fn faultline_binary(&self, id: &str) -> PathBuf;

    /// Installs `grudge` as the whole current partition, replacing the
    /// previous one. The empty grudge heals.
    async fn set_grudge(&self, grudge: &Grudge) -> Result<()>;

    /// Shapes the directed link `from → to` (`None` restores it).
    async fn set_link_shape(&self, from: &str, to: &str, shape: Option<&LinkShape>) -> Result<()> {
        let _ = (from, to, shape);
        Err(self.link_shaper().await.err().unwrap_or_else(|| crate::HarnessError::Unsupported {
            runtime: self.name().to_owned(),
            what: "shape links".into(),
            why: "this runtime implements no packet faults".into(),
        }))
    }

    /// What shapes links in this runtime (`proxy`, `netem`, `nfqueue`), as
    /// detected on this machine, or `Unsupported` saying what is missing.
    /// Packet nemeses log it and record it with each fault.
    async fn link_shaper(&self) -> Result<String> {
        Err(crate::HarnessError::Unsupported {
            runtime: self.name().to_owned(),
            what: "shape links".into(),
            why: "this runtime implements no packet faults".into(),
        })
    }

    /// The partition the network really has now, read back from where it
    /// is enforced (the proxies, or the firewall rules on each node), so a
    /// nemesis can verify a partition and above all a heal.
    async fn current_grudge(&self) -> Result<Grudge> {
        Err(crate::HarnessError::Unsupported {
            runtime: self.name().to_owned(),
            what: "read back partitions".into(),
            why: "this runtime does not report its partition rules".into(),
        })
    }

    /// What enforces partitions here (`proxy`, `nft`, `iptables`), for the
    /// log and the history.
    fn partitioner(&self) -> String {
        self.name().to_owned()
    }

    /// Removes every fault, process, namespace, rule and file this runtime
    /// created, except the node logs already copied into the run directory.
    /// Safe to call twice.
    async fn teardown(&self) -> Result<()>;
}
