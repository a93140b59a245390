//! The `netns` runtime (root, Linux): each node is a network namespace with
//! its own address on a bridge this runtime creates, its own hostname (a
//! UTS namespace per process) and its own data directory; partitions are
//! nftables (or, without nft, iptables) rules inside the receiving node's
//! namespace, read back after every change. Packet faults use
//! `tc netem` in the sending node's namespace when the kernel has it, and
//! otherwise the NFQUEUE shaper (`nfqueue.rs`); which one is detected once
//! and logged.
//!
//! Every object it creates is named after a short id of the run
//! (`fl-<id>-n1`, bridge `flb<id>`, veth `flv<id>h1`) and listed in a
//! state file under `/run/faultline/`, so teardown, a `Drop` after a panic,
//! and `faultline clean` after a crash all know exactly what to remove.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{HarnessError, Result};
use crate::node::{Grudge, LinkShape, NodeAddrs, NodeControl, NodeId, Runtime};
use crate::runtime::firewall::{Firewall, FirewallChoice};
use crate::runtime::nfqueue::{self, NfqShaper};
use crate::runtime::process::{ProcessNode, pid_alive};
use crate::runtime::shape::ShapeTable;

/// Where state files live.
pub const STATE_DIR: &str = "/run/faultline";
/// Port for clients on every node.
pub const CLIENT_PORT: u16 = 7700;
/// Port for peers on every node.
pub const PEER_PORT: u16 = 7800;

/// What one netns run created, persisted so anyone can remove it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NetnsState {
    /// The run's tag (`FAULTLINE_RUN` of its processes).
    pub tag: String,
    /// The short id in every name.
    pub id: String,
    /// Namespaces created.
    pub namespaces: Vec<String>,
    /// Links created on the host (the bridge and the host ends of the veths).
    pub links: Vec<String>,
    /// Host iptables rules added (as `iptables` argument lists, with `-I`).
    pub host_rules: Vec<Vec<String>>,
    /// The run directory (absolute), so `faultline clean` can tell which
    /// store the leftovers belong to (absent in state files of older
    /// versions).
    #[serde(default)]
    pub run_dir: Option<PathBuf>,
    /// The uid of the harness that made them, so `faultline clean` leaves
    /// another user's alone (absent in older state files: then the state
    /// file's owner stands for it).
    #[serde(default)]
    pub uid: Option<u32>,
}

impl NetnsState {
    fn path(&self) -> PathBuf {
        Path::new(STATE_DIR).join(format!("{}.json", self.id))
    }

    fn save(&self) -> Result<()> {
        std::fs::create_dir_all(STATE_DIR).map_err(|e| HarnessError::io(STATE_DIR, e))?;
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| HarnessError::Internal(format!("netns state: {e}")))?;
        std::fs::write(self.path(), text).map_err(|e| HarnessError::io(self.path(), e))
    }

    /// Every state file on this machine.
    pub fn all() -> Vec<NetnsState> {
        let Ok(dir) = std::fs::read_dir(STATE_DIR) else { return Vec::new() };
        dir.flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect()
    }

    /// Removes everything listed, then the state file. Returns what it
    /// removed and what it could not.
    pub fn remove(&self) -> (Vec<String>, Vec<String>) {
        let mut removed = Vec::new();
        let mut failed = Vec::new();
        for ns in &self.namespaces {
            kill_namespace_processes(ns);
        }
        // Links first: deleting a veth's host end removes both ends at
        // once, whereas a deleted namespace frees its devices only when the
        // kernel gets round to it.
        for link in &self.links {
            if link_exists(link) {
                match run("ip", &["link", "del", link]) {
                    Ok(_) => removed.push(format!("link {link}")),
                    // A veth vanishes with its peer; only what remains is a failure.
                    Err(e) if link_exists(link) => failed.push(format!("link {link}: {e}")),
                    Err(_) => {}
                }
            }
        }
        for ns in &self.namespaces {
            if namespace_exists(ns) {
                match run("ip", &["netns", "del", ns]) {
                    Ok(_) => removed.push(format!("namespace {ns}")),
                    Err(e) => failed.push(format!("namespace {ns}: {e}")),
                }
            }
        }
        for rule in &self.host_rules {
            let mut del: Vec<&str> = rule.iter().map(String::as_str).collect();
            if let Some(first) = del.iter_mut().find(|a| **a == "-I") {
                *first = "-D";
            }
            if run("iptables", &del).is_ok() {
                removed.push(format!("iptables rule {}", rule.join(" ")));
            }
        }
        if failed.is_empty() {
            let _ = std::fs::remove_file(self.path());
        }
        (removed, failed)
    }
}

/// Runs a host command; its stderr becomes the error.
pub fn run(program: &str, args: &[&str]) -> std::result::Result<String, String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether a namespace exists.
pub fn namespace_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// Whether a host link exists.
pub fn link_exists(link: &str) -> bool {
    Path::new("/sys/class/net").join(link).exists()
}

/// Namespaces whose names faultline uses (`fl-...`).
pub fn faultline_namespaces() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.starts_with("fl-"))
        .collect()
}

/// Host links whose names faultline uses (`flb...`, `flv...`).
pub fn faultline_links() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.starts_with("flb") || n.starts_with("flv"))
        .collect()
}

/// Kills every process inside namespace `ns` (SIGCONT first, so a paused
/// process dies too).
pub fn kill_namespace_processes(ns: &str) {
    let Ok(pids) = run("ip", &["netns", "pids", ns]) else { return };
    for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    for pid in pids.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
        for _ in 0..100 {
            if !pid_alive(pid) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Whether this process can create namespaces (root).
pub fn have_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Nodes as network namespaces on a bridge.
pub struct NetnsRuntime {
    nodes: Vec<NodeId>,
    controls: BTreeMap<NodeId, ProcessNode>,
    addrs: BTreeMap<NodeId, NodeAddrs>,
    ips: BTreeMap<NodeId, Ipv4Addr>,
    namespaces: BTreeMap<NodeId, String>,
    binary: PathBuf,
    /// What installs the partition rules in every namespace.
    firewall: Firewall,
    state: Mutex<Option<NetnsState>>,
    /// What shapes links here (`netem` or `nfqueue`), or why nothing can;
    /// detected at the first packet fault.
    shaper_kind: Mutex<Option<std::result::Result<String, String>>>,
    /// The current shape of every shaped directed link.
    shapes: ShapeTable,
    /// Running NFQUEUE shapers, by sending node.
    nfq_shapers: Mutex<BTreeMap<NodeId, NfqShaper>>,
    /// The run's tag (`FAULTLINE_RUN` of its processes).
    tag: String,
}

fn short_id(tag: &str) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    tag.hash(&mut h);
    format!("{:06x}", h.finish() & 0xff_ffff)
}

/// Holds the machine-wide lock on choosing a test subnet until dropped
/// (the kernel releases it if the process dies).
fn subnet_lock() -> Result<std::fs::File> {
    std::fs::create_dir_all(STATE_DIR).map_err(|e| HarnessError::io(STATE_DIR, e))?;
    let path = Path::new(STATE_DIR).join("subnet.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| HarnessError::io(&path, e))?;
    file.lock().map_err(|e| HarnessError::io(&path, e))?;
    Ok(file)
}

/// A /24 under 10.231.0.0/16 that no host address or route uses yet.
fn free_subnet(seed: u64) -> Result<u8> {
    let routes = run("ip", &["-4", "route", "show", "table", "all"]).unwrap_or_default();
    let addrs = run("ip", &["-4", "-o", "addr", "show"]).unwrap_or_default();
    for i in 0..250u64 {
        let third = 1 + ((seed + i) % 250) as u8;
        let prefix = format!("10.231.{third}.");
        if !routes.contains(&prefix) && !addrs.contains(&prefix) {
            return Ok(third);
        }
    }
    Err(HarnessError::Net("no free 10.231.x.0/24 subnet for the test bridge".into()))
}

impl NetnsRuntime {
    /// Creates the bridge and one namespace per node, partitions by nft
    /// where it works and iptables otherwise. Needs root.
    pub async fn start(
        nodes: u32,
        nodes_dir: PathBuf,
        binary: PathBuf,
        run_tag: &str,
    ) -> Result<NetnsRuntime> {
        NetnsRuntime::start_with(nodes, nodes_dir, binary, run_tag, FirewallChoice::Auto).await
    }

    /// Like `start`, with the firewall chosen by `firewall`.
    pub async fn start_with(
        nodes: u32,
        nodes_dir: PathBuf,
        binary: PathBuf,
        run_tag: &str,
        firewall: FirewallChoice,
    ) -> Result<NetnsRuntime> {
        if !have_root() {
            return Err(HarnessError::Unsupported {
                runtime: "netns".into(),
                what: "create network namespaces".into(),
                why: "it needs root; use --runtime local without root".into(),
            });
        }
        let id = short_id(run_tag);
        let seed = u64::from_str_radix(&id, 16).unwrap_or(0);
        let mut state = NetnsState {
            tag: run_tag.to_owned(),
            id: id.clone(),
            run_dir: nodes_dir.parent().map(crate::runtime::process::absolute_path),
            uid: Some(nix::unistd::getuid().as_raw()),
            ..NetnsState::default()
        };
        let ids: Vec<NodeId> = (1..=nodes).map(|i| format!("n{i}")).collect();
        let tag = run_tag.to_owned();
        let binary2 = binary.clone();
        let ids2 = ids.clone();
        // Namespace plumbing is a few dozen quick commands; run them off the
        // async threads.
        let built = tokio::task::spawn_blocking(move || {
            let result = build_network(&mut state, &ids2, seed, firewall);
            (state, result)
        })
        .await
        .map_err(|e| HarnessError::Internal(format!("netns setup task: {e}")))?;
        let (state, result) = built;
        let (third, firewall) = match result {
            Ok(t) => t,
            Err(e) => {
                state.remove();
                return Err(e);
            }
        };
        let ip = |i: usize| Ipv4Addr::new(10, 231, third, (i + 1) as u8);
        let mut addrs = BTreeMap::new();
        let mut ips = BTreeMap::new();
        let mut namespaces = BTreeMap::new();
        let mut controls = BTreeMap::new();
        for (i, node) in ids.iter().enumerate() {
            let peers = ids
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(j, other)| (other.clone(), SocketAddr::new(ip(j).into(), PEER_PORT)))
                .collect();
            addrs.insert(
                node.clone(),
                NodeAddrs {
                    client: SocketAddr::new(ip(i).into(), CLIENT_PORT),
                    peer_listen: SocketAddr::new(ip(i).into(), PEER_PORT),
                    peers,
                },
            );
            ips.insert(node.clone(), ip(i));
            let ns = format!("fl-{id}-{node}");
            // Each process gets its own UTS namespace named after the node,
            // then becomes the program (same pid, so signals reach it).
            let prefix: Vec<String> = [
                "ip",
                "netns",
                "exec",
                &ns,
                "unshare",
                "--uts",
                "--",
                "sh",
                "-c",
                &format!("hostname {node} && exec \"$0\" \"$@\""),
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            controls
                .insert(node.clone(), ProcessNode::new(node, nodes_dir.join(node), &tag, prefix));
            namespaces.insert(node.clone(), ns);
        }
        tracing::info!(
            bridge = %format!("flb{id}"),
            subnet = %format!("10.231.{third}.0/24"),
            firewall = firewall.name(),
            "netns cluster created"
        );
        Ok(NetnsRuntime {
            nodes: ids,
            controls,
            addrs,
            ips,
            namespaces,
            binary: binary2,
            firewall,
            state: Mutex::new(Some(state)),
            shaper_kind: Mutex::new(None),
            shapes: ShapeTable::default(),
            nfq_shapers: Mutex::new(BTreeMap::new()),
            tag,
        })
    }

    /// The namespace of `node`.
    pub fn namespace(&self, node: &str) -> Option<&str> {
        self.namespaces.get(node).map(String::as_str)
    }

    /// The address of `node` on the bridge.
    pub fn ip(&self, node: &str) -> Option<Ipv4Addr> {
        self.ips.get(node).copied()
    }

    fn remove_all(&self) -> Result<()> {
        // Shaper threads release what they hold and leave their queues
        // before the namespaces go.
        if let Ok(mut shapers) = self.nfq_shapers.lock() {
            shapers.clear();
        }
        for node in self.controls.values() {
            node.kill_all();
        }
        // What the daemons forked, and what SIGKILL has not ended yet; the
        // namespaces go only once nothing runs in them.
        let ended = super::process::end_run_blocking(&self.tag);
        let state = self.state.lock().ok().and_then(|mut s| s.take());
        if let Some(state) = state {
            let (_, failed) = state.remove();
            if !failed.is_empty() {
                return Err(HarnessError::Net(format!("teardown left: {}", failed.join("; "))));
            }
        }
        ended
    }
}

impl NetnsRuntime {
    /// Finds out what can shape packets here: `tc netem` if the kernel has
    /// it, else NFQUEUE (queue bound in a namespace and the iptables
    /// `NFQUEUE` target accepted), else the reasons neither works.
    fn detect_shaper(&self) -> std::result::Result<String, String> {
        let Some(ns) = self.namespaces.values().next() else {
            return Err("the cluster has no nodes".into());
        };
        let netem = run(
            "ip",
            &[
                "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay",
                "1ms",
            ],
        );
        let netem_err = match netem {
            Ok(_) => {
                let _ =
                    run("ip", &["netns", "exec", ns, "tc", "qdisc", "del", "dev", "lo", "root"]);
                return Ok("netem".into());
            }
            Err(e) => e,
        };
        if !nfqueue::kernel_has_nfqueue() {
            return Err(format!(
                "tc netem is unavailable ({netem_err}) and the kernel has no NFQUEUE \
                 (nfnetlink_queue)"
            ));
        }
        let probe = NfqShaper::start(&Path::new("/run/netns").join(ns))
            .map_err(|e| format!("tc netem is unavailable ({netem_err}); NFQUEUE: {e}"))?;
        drop(probe);
        // A rule nothing matches (loopback traffic never leaves through
        // the chain's destination), added and removed at once.
        let rule = ["OUTPUT", "-d", "127.0.0.2", "-j", "NFQUEUE", "--queue-num", "0"];
        let with = |op: &'static str| {
            let mut args = vec!["netns", "exec", ns, "iptables", op];
            args.extend_from_slice(&rule);
            run("ip", &args)
        };
        with("-A").map_err(|e| {
            format!("tc netem is unavailable ({netem_err}); the iptables NFQUEUE target: {e}")
        })?;
        let _ = with("-D");
        tracing::info!(
            "packet faults: tc netem is not available ({netem_err}); using faultline's NFQUEUE \
             shaper inside each namespace"
        );
        Ok("nfqueue".into())
    }

    /// Makes `from`'s outgoing links follow `self.shapes` (blocking).
    fn apply_shapes(&self, kind: &str, from: &str) -> std::result::Result<(), String> {
        let ns = self.namespaces.get(from).ok_or_else(|| format!("no node {from}"))?;
        let links: Vec<(Ipv4Addr, LinkShape)> = self
            .shapes
            .outgoing(from)
            .into_iter()
            .filter_map(|(to, shape)| self.ips.get(&to).map(|ip| (*ip, shape)))
            .collect();
        let in_ns = |args: &[String]| {
            let mut full: Vec<&str> = vec!["netns", "exec", ns];
            full.extend(args.iter().map(String::as_str));
            run("ip", &full)
        };
        match kind {
            "netem" => {
                for (i, cmd) in crate::runtime::netem::commands("eth0", &links).iter().enumerate() {
                    let mut args = vec!["tc".to_owned()];
                    args.extend(cmd.iter().cloned());
                    match in_ns(&args) {
                        // Removing a root that is not there fails; fine.
                        Err(_) if i == 0 => {}
                        Err(e) => return Err(e),
                        Ok(_) => {}
                    }
                }
                Ok(())
            }
            _ => {
                let ipt = |a: &[&str]| {
                    let mut args = vec!["iptables".to_owned()];
                    args.extend(a.iter().map(|s| (*s).to_owned()));
                    in_ns(&args)
                };
                let mut shapers =
                    self.nfq_shapers.lock().map_err(|_| "shaper table lock".to_owned())?;
                if links.is_empty() {
                    // Rules first, so no packet is queued to a gone shaper.
                    let _ = ipt(&["-F", nfqueue::CHAIN]);
                    shapers.remove(from);
                    return Ok(());
                }
                if !shapers.contains_key(from) {
                    let shaper = NfqShaper::start(&Path::new("/run/netns").join(ns))
                        .map_err(|e| e.to_string())?;
                    shapers.insert(from.to_owned(), shaper);
                }
                if let Some(shaper) = shapers.get(from) {
                    shaper.set_links(links.iter().cloned().collect());
                }
                if ipt(&["-L", nfqueue::CHAIN, "-n"]).is_err() {
                    ipt(&["-N", nfqueue::CHAIN])?;
                    ipt(&["-A", "OUTPUT", "-j", nfqueue::CHAIN])?;
                }
                ipt(&["-F", nfqueue::CHAIN])?;
                let mark = format!("0x{:x}", nfqueue::SHAPER_MARK);
                let queue = nfqueue::QUEUE.to_string();
                for (ip, _) in &links {
                    let dst = ip.to_string();
                    ipt(&[
                        "-A",
                        nfqueue::CHAIN,
                        "-d",
                        &dst,
                        "-m",
                        "mark",
                        "!",
                        "--mark",
                        &mark,
                        "-j",
                        "NFQUEUE",
                        "--queue-num",
                        &queue,
                        "--queue-bypass",
                    ])?;
                }
                Ok(())
            }
        }
    }
}

/// The packet-shaping state inside `ns`, for tests: the NFQUEUE chain and
/// the qdiscs (empty when nothing is shaped).
pub fn shaping_rules(ns: &str) -> String {
    let ipt =
        run("ip", &["netns", "exec", ns, "iptables", "-S", nfqueue::CHAIN]).unwrap_or_default();
    let tc =
        run("ip", &["netns", "exec", ns, "tc", "qdisc", "show", "dev", "eth0"]).unwrap_or_default();
    let queued: Vec<&str> = ipt.lines().filter(|l| l.contains("NFQUEUE")).collect();
    let shaped: Vec<&str> = tc.lines().filter(|l| l.contains("netem")).collect();
    [queued, shaped].concat().join("\n")
}

/// Creates the bridge, the namespaces and their veths, recording each
/// object in `state` (saved after every step) as soon as it exists.
fn build_network(
    state: &mut NetnsState,
    nodes: &[NodeId],
    seed: u64,
    choice: FirewallChoice,
) -> Result<(u8, Firewall)> {
    let net = |r: std::result::Result<String, String>| r.map_err(HarnessError::Net);
    // Choosing a free subnet and claiming it (the bridge's address) is one
    // step under a machine-wide lock: two tests starting at once (a
    // campaign with --parallel, or two users) would otherwise both see the
    // same /24 free and build two bridges that route the same addresses.
    let claim = subnet_lock()?;
    let third = free_subnet(seed)?;
    let bridge = format!("flb{}", state.id);
    state.links.push(bridge.clone());
    state.save()?;
    net(run("ip", &["link", "add", &bridge, "type", "bridge"]))?;
    net(run("ip", &["addr", "add", &format!("10.231.{third}.254/24"), "dev", &bridge]))?;
    drop(claim);
    net(run("ip", &["link", "set", &bridge, "up"]))?;
    // With br_netfilter loaded, bridged packets traverse the host's
    // FORWARD chain; a DROP policy there (as Docker sets) would silently
    // partition everything.
    if run("iptables", &["-S", "FORWARD"]).is_ok_and(|s| s.contains("-P FORWARD DROP")) {
        let rule: Vec<String> = ["-I", "FORWARD", "-i", &bridge, "-o", &bridge, "-j", "ACCEPT"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        state.host_rules.push(rule.clone());
        state.save()?;
        let args: Vec<&str> = rule.iter().map(String::as_str).collect();
        net(run("iptables", &args))?;
    }
    for (i, node) in nodes.iter().enumerate() {
        let ns = format!("fl-{}-{node}", state.id);
        let host_veth = format!("flv{}h{}", state.id, i + 1);
        let ns_veth = format!("flv{}n{}", state.id, i + 1);
        state.namespaces.push(ns.clone());
        state.links.push(host_veth.clone());
        state.save()?;
        net(run("ip", &["netns", "add", &ns]))?;
        net(run("ip", &["link", "add", &host_veth, "type", "veth", "peer", "name", &ns_veth]))?;
        net(run("ip", &["link", "set", &ns_veth, "netns", &ns]))?;
        net(run("ip", &["link", "set", &host_veth, "master", &bridge, "up"]))?;
        let addr = format!("10.231.{third}.{}/24", i + 1);
        for cmd in [
            vec!["link", "set", "lo", "up"],
            vec!["link", "set", &ns_veth, "name", "eth0"],
            vec!["addr", "add", &addr, "dev", "eth0"],
            vec!["link", "set", "eth0", "up"],
        ] {
            let mut args = vec!["netns", "exec", &ns, "ip"];
            args.extend(cmd);
            net(run("ip", &args))?;
        }
    }
    // The partition chain in every namespace: an input chain that drops
    // packets from the nodes this one holds a grudge against. Empty means
    // healed. The first firewall whose chain can be made in the first
    // namespace is used everywhere.
    let in_ns = |ns: &str, cmd: &[String]| {
        let mut args: Vec<&str> = vec!["netns", "exec", ns];
        args.extend(cmd.iter().map(String::as_str));
        run("ip", &args)
    };
    let mut chosen = None;
    let mut why = Vec::new();
    for fw in choice.candidates() {
        let Some(first) = state.namespaces.first() else { break };
        match fw.prepare().iter().try_for_each(|c| in_ns(first, c).map(|_| ())) {
            Ok(()) => {
                chosen = Some(*fw);
                break;
            }
            Err(e) => why.push(format!("{}: {e}", fw.name())),
        }
    }
    let firewall = chosen.ok_or_else(|| {
        HarnessError::Net(format!("no firewall can hold partition rules: {}", why.join("; ")))
    })?;
    for ns in state.namespaces.iter().skip(1) {
        for cmd in firewall.prepare() {
            net(in_ns(ns, &cmd))?;
        }
    }
    Ok((third, firewall))
}

impl Drop for NetnsRuntime {
    /// After a panic or an early return, remove everything anyway.
    fn drop(&mut self) {
        let _ = self.remove_all();
    }
}

#[async_trait]
impl Runtime for NetnsRuntime {
    fn name(&self) -> &str {
        "netns"
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
        let mut jobs = Vec::new();
        for (node, ns) in &self.namespaces {
            let sources: Vec<std::net::IpAddr> = grudge
                .0
                .get(node)
                .into_iter()
                .flatten()
                .filter_map(|from| self.ips.get(from))
                .map(|ip| (*ip).into())
                .collect();
            let ns = ns.clone();
            let cmds = self.firewall.set(&sources);
            jobs.push(tokio::task::spawn_blocking(move || {
                for cmd in cmds {
                    let mut args: Vec<&str> = vec!["netns", "exec", &ns];
                    args.extend(cmd.iter().map(String::as_str));
                    run("ip", &args)?;
                }
                Ok::<(), String>(())
            }));
        }
        for job in jobs {
            job.await
                .map_err(|e| HarnessError::Internal(format!("grudge task: {e}")))?
                .map_err(HarnessError::Net)?;
        }
        Ok(())
    }

    async fn current_grudge(&self) -> Result<Grudge> {
        let by_ip: BTreeMap<std::net::IpAddr, &NodeId> =
            self.ips.iter().map(|(n, ip)| ((*ip).into(), n)).collect();
        let mut grudge = Grudge::none();
        for (node, ns) in &self.namespaces {
            let mut args: Vec<&str> = vec!["netns", "exec", ns];
            let list = self.firewall.list();
            args.extend(list.iter().map(String::as_str));
            let listing = tokio::task::block_in_place(|| run("ip", &args))
                .map_err(|e| HarnessError::Net(format!("reading the rules of {node}: {e}")))?;
            for ip in self.firewall.parse_dropped(&listing) {
                let from = by_ip.get(&ip).map_or_else(|| ip.to_string(), |n| (*n).clone());
                grudge.0.entry(node.clone()).or_default().insert(from);
            }
        }
        Ok(grudge)
    }

    fn partitioner(&self) -> String {
        self.firewall.name().to_owned()
    }

    async fn link_shaper(&self) -> Result<String> {
        let known = self.shaper_kind.lock().ok().and_then(|k| k.clone());
        let kind = match known {
            Some(k) => k,
            None => {
                let k = tokio::task::block_in_place(|| self.detect_shaper());
                if let Ok(mut slot) = self.shaper_kind.lock() {
                    *slot = Some(k.clone());
                }
                k
            }
        };
        kind.map_err(|why| HarnessError::Unsupported {
            runtime: "netns".into(),
            what: "shape links".into(),
            why,
        })
    }

    async fn set_link_shape(&self, from: &str, to: &str, shape: Option<&LinkShape>) -> Result<()> {
        let kind = self.link_shaper().await?;
        self.shapes.set(&self.nodes, from, to, shape)?;
        tokio::task::block_in_place(|| self.apply_shapes(&kind, from))
            .map_err(|e| HarnessError::Net(format!("shaping {from} -> {to} ({kind}): {e}")))
    }

    async fn teardown(&self) -> Result<()> {
        // Synchronous commands; tell tokio this thread blocks for a while.
        tokio::task::block_in_place(|| self.remove_all())
    }
}

/// The rules currently installed in `ns`'s partition chain, whichever
/// firewall holds them (for tests).
pub fn partition_rules(ns: &str) -> String {
    let nft =
        run("ip", &["netns", "exec", ns, "nft", "list", "chain", "inet", "faultline", "input"]);
    let ipt = run(
        "ip",
        &["netns", "exec", ns, "iptables", "-S", crate::runtime::firewall::IPTABLES_CHAIN],
    );
    [nft.unwrap_or_default(), ipt.unwrap_or_default()].join("")
}
