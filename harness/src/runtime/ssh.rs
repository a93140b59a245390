//! The `ssh` runtime: real remote hosts driven over SSH (the `ssh2` crate):
//! a user, a port, a private key, optional `sudo`, strict host-key checking
//! by default, and retries when connecting. Partitions are nftables rules on
//! each host (iptables where nft is missing), read back after each change;
//! packet faults are `tc netem` on the host's interface toward its peers,
//! where the host's kernel has `sch_netem` (the NFQUEUE shaper of `netns`
//! needs the harness on the host, so it is not used here). The faultline
//! binary is uploaded once per host.
//!
//! `ssh2` is blocking, so every call runs on tokio's blocking pool, one
//! session per host behind a mutex.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{HarnessError, Result};
use crate::node::{
    DaemonSpec, ExecOutput, Grudge, LinkShape, NodeAddrs, NodeControl, NodeId, Runtime, Signal,
};
use crate::runtime::firewall::{Firewall, FirewallChoice, shell_line};
use crate::runtime::process::RUN_TAG_ENV;
use crate::runtime::shape::ShapeTable;
use crate::spec::SshSpec;
use results::RunDir;

pub use crate::runtime::firewall::shell_quote;

/// One remote host.
pub struct SshNode {
    id: String,
    addr: SocketAddr,
    dir: PathBuf,
    sudo: bool,
    tag: String,
    session: Arc<Mutex<ssh2::Session>>,
    /// Daemons started here, killed at teardown.
    pids: Mutex<Vec<u32>>,
}

fn connect(addr: SocketAddr, spec: &SshSpec, node: &str) -> Result<ssh2::Session> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        HarnessError::node(node, format!("ssh {what} {addr}"), e)
    };
    let mut last = None;
    for attempt in 0..spec.retries.max(1) {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
        }
        let tcp = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(t) => t,
            Err(e) => {
                last = Some(fail("connect", &e));
                continue;
            }
        };
        let mut session = ssh2::Session::new().map_err(|e| fail("session", &e))?;
        session.set_tcp_stream(tcp);
        session.set_timeout(60_000);
        if let Err(e) = session.handshake() {
            last = Some(fail("handshake", &e));
            continue;
        }
        check_host_key(&session, addr, spec).map_err(|e| fail("host key", &e))?;
        session
            .userauth_pubkey_file(&spec.user, None, &spec.private_key, None)
            .map_err(|e| fail(&format!("authenticate as {}", spec.user), &e))?;
        if !session.authenticated() {
            return Err(fail("authenticate", &"the server refused the key"));
        }
        return Ok(session);
    }
    Err(last.unwrap_or_else(|| fail("connect", &"no attempt was made")))
}

fn check_host_key(
    session: &ssh2::Session,
    addr: SocketAddr,
    spec: &SshSpec,
) -> std::result::Result<(), String> {
    if !spec.strict_host_key_checking {
        return Ok(());
    }
    let file = match &spec.known_hosts {
        Some(f) => f.clone(),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
            .join(".ssh/known_hosts"),
    };
    let mut known = session.known_hosts().map_err(|e| e.to_string())?;
    known
        .read_file(&file, ssh2::KnownHostFileKind::OpenSSH)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let (key, _) = session.host_key().ok_or("the server sent no host key")?;
    let host = addr.ip().to_string();
    let check = if addr.port() == 22 {
        known.check(&host, key)
    } else {
        known.check_port(&host, addr.port(), key)
    };
    match check {
        ssh2::CheckResult::Match => Ok(()),
        ssh2::CheckResult::Mismatch => {
            Err(format!("the host key of {addr} does NOT match {}; refusing", file.display()))
        }
        ssh2::CheckResult::NotFound => Err(format!(
            "{addr} is not in {}; add its key (ssh-keyscan) or turn strict_host_key_checking off",
            file.display()
        )),
        ssh2::CheckResult::Failure => Err("the host key check failed".into()),
    }
}

impl SshNode {
    fn shell(&self, script: &str) -> String {
        if self.sudo { format!("sudo -n sh -c {}", shell_quote(script)) } else { script.to_owned() }
    }

    /// Runs `script` through a shell on the host (blocking).
    pub fn run_blocking(&self, script: &str) -> Result<ExecOutput> {
        let command = self.shell(script);
        let session =
            self.session.lock().map_err(|_| HarnessError::Internal("ssh session lock".into()))?;
        let fail = |e: ssh2::Error| HarnessError::node(&self.id, format!("ssh exec {script}"), e);
        let mut channel = session.channel_session().map_err(fail)?;
        channel.exec(&command).map_err(fail)?;
        let mut stdout = String::new();
        let mut stderr = String::new();
        channel
            .read_to_string(&mut stdout)
            .map_err(|e| HarnessError::node(&self.id, "ssh read", e))?;
        channel
            .stderr()
            .read_to_string(&mut stderr)
            .map_err(|e| HarnessError::node(&self.id, "ssh read", e))?;
        channel.wait_close().map_err(fail)?;
        let status = channel.exit_status().map_err(fail)?;
        Ok(ExecOutput { status, stdout, stderr })
    }

    async fn run(self: &Arc<Self>, script: String) -> Result<ExecOutput> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.run_blocking(&script))
            .await
            .map_err(|e| HarnessError::Internal(format!("ssh task: {e}")))?
    }

    async fn run_ok(self: &Arc<Self>, script: String, action: &str) -> Result<String> {
        let out = self.run(script).await?;
        if out.status != 0 {
            return Err(HarnessError::node(
                &self.id,
                action,
                format!("exit {}: {}", out.status, out.stderr.trim()),
            ));
        }
        Ok(out.stdout)
    }
}

/// `NodeControl` through an `Arc`, so blocking work can own a handle.
pub struct SshControl(Arc<SshNode>);

#[async_trait]
impl NodeControl for SshControl {
    fn id(&self) -> &str {
        &self.0.id
    }

    fn dir(&self) -> &Path {
        &self.0.dir
    }

    async fn exec(&self, program: &str, args: &[String]) -> Result<ExecOutput> {
        let mut script = shell_quote(program);
        for a in args {
            script.push(' ');
            script.push_str(&shell_quote(a));
        }
        self.0.run(script).await
    }

    async fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32> {
        let mut cmd = format!("{RUN_TAG_ENV}={}", shell_quote(&self.0.tag));
        for (k, v) in &spec.env {
            cmd.push_str(&format!(" {}={}", shell_quote(k), shell_quote(v)));
        }
        cmd.push(' ');
        cmd.push_str(&shell_quote(&spec.program.to_string_lossy()));
        for a in &spec.args {
            cmd.push(' ');
            cmd.push_str(&shell_quote(a));
        }
        let log = shell_quote(&spec.log_file.to_string_lossy());
        let dir = shell_quote(&self.0.dir.to_string_lossy());
        let script = format!(
            "mkdir -p {dir} && cd {dir} && {{ env {cmd} >>{log} 2>&1 </dev/null & echo $!; }}"
        );
        let out = self.0.run_ok(script, &format!("start {}", spec.name)).await?;
        let pid: u32 = out.trim().parse().map_err(|_| {
            HarnessError::node(
                &self.0.id,
                format!("start {}", spec.name),
                format!("no pid in {out:?}"),
            )
        })?;
        if let Ok(mut pids) = self.0.pids.lock() {
            pids.push(pid);
        }
        Ok(pid)
    }

    async fn signal(&self, pid: u32, signal: Signal) -> Result<()> {
        // A process that is already gone is not an error.
        self.0.run(format!("kill -s {} {pid} 2>/dev/null; true", signal.name())).await.map(|_| ())
    }

    async fn is_alive(&self, pid: u32) -> Result<bool> {
        let out = self
            .0
            .run(format!(
                "test -d /proc/{pid} && ! grep -qs '^State:[[:space:]]*Z' /proc/{pid}/status"
            ))
            .await?;
        Ok(out.status == 0)
    }

    async fn upload(&self, local: &Path, remote: &Path, mode: u32) -> Result<()> {
        let size = std::fs::metadata(local).map_err(|e| HarnessError::io(local, e))?.len();
        let r = shell_quote(&remote.to_string_lossy());
        // Skip the copy when an identical-size file is already there (a
        // shared file system, or an earlier upload in this run).
        let same = self.0.run(format!("test \"$(stat -c %s {r} 2>/dev/null)\" = {size}")).await?;
        if same.status == 0 {
            return Ok(());
        }
        if let Some(parent) = remote.parent() {
            self.0
                .run_ok(format!("mkdir -p {}", shell_quote(&parent.to_string_lossy())), "mkdir")
                .await?;
        }
        let node = self.0.clone();
        let local = local.to_owned();
        let remote = remote.to_owned();
        let tmp = remote.with_extension(format!("upload{}", std::process::id()));
        let tmp2 = tmp.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let fail = |e: &dyn std::fmt::Display| {
                HarnessError::node(&node.id, format!("upload {}", local.display()), e)
            };
            let session = node
                .session
                .lock()
                .map_err(|_| HarnessError::Internal("ssh session lock".into()))?;
            let mut file = std::fs::File::open(&local).map_err(|e| fail(&e))?;
            let mut ch =
                session.scp_send(&tmp2, (mode & 0o777) as i32, size, None).map_err(|e| fail(&e))?;
            std::io::copy(&mut file, &mut ch).map_err(|e| fail(&e))?;
            ch.flush().map_err(|e| fail(&e))?;
            ch.send_eof().map_err(|e| fail(&e))?;
            ch.wait_eof().map_err(|e| fail(&e))?;
            ch.close().map_err(|e| fail(&e))?;
            ch.wait_close().map_err(|e| fail(&e))?;
            Ok(())
        })
        .await
        .map_err(|e| HarnessError::Internal(format!("ssh task: {e}")))??;
        // Rename into place so a concurrent reader never runs a half file.
        self.0
            .run_ok(format!("mv -f {} {r}", shell_quote(&tmp.to_string_lossy())), "upload (rename)")
            .await
            .map(|_| ())
    }

    async fn download(&self, remote: &Path, local: &Path) -> Result<()> {
        let node = self.0.clone();
        let remote = remote.to_owned();
        let local = local.to_owned();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let fail = |e: &dyn std::fmt::Display| {
                HarnessError::node(&node.id, format!("download {}", remote.display()), e)
            };
            let session = node
                .session
                .lock()
                .map_err(|_| HarnessError::Internal("ssh session lock".into()))?;
            let (mut ch, _) = session.scp_recv(&remote).map_err(|e| fail(&e))?;
            if let Some(parent) = local.parent() {
                std::fs::create_dir_all(parent).map_err(|e| fail(&e))?;
            }
            let mut file = std::fs::File::create(&local).map_err(|e| fail(&e))?;
            std::io::copy(&mut ch, &mut file).map_err(|e| fail(&e))?;
            let _ = ch.send_eof();
            let _ = ch.wait_eof();
            let _ = ch.close();
            let _ = ch.wait_close();
            Ok(())
        })
        .await
        .map_err(|e| HarnessError::Internal(format!("ssh task: {e}")))?
    }
}

/// Remote hosts over SSH.
pub struct SshRuntime {
    nodes: Vec<NodeId>,
    controls: BTreeMap<NodeId, SshControl>,
    addrs: BTreeMap<NodeId, NodeAddrs>,
    ips: BTreeMap<NodeId, IpAddr>,
    binary: BTreeMap<NodeId, PathBuf>,
    base: PathBuf,
    /// What holds the partition rules on each host.
    firewalls: BTreeMap<NodeId, Firewall>,
    /// Whether `tc netem` works on the hosts (`Ok(())`) or why not;
    /// detected at the first packet fault.
    netem: Mutex<Option<std::result::Result<(), String>>>,
    /// The current shape of every shaped directed link.
    shapes: ShapeTable,
}

fn resolve(host: &str, default_port: u16) -> Result<SocketAddr> {
    let with_port =
        if host.contains(':') { host.to_owned() } else { format!("{host}:{default_port}") };
    with_port
        .to_socket_addrs()
        .map_err(|e| HarnessError::Net(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| HarnessError::Net(format!("{host} has no address")))
}

impl SshRuntime {
    /// Connects to every host, uploads the faultline binary and prepares
    /// the partition table on each.
    pub async fn start(
        nodes: u32,
        spec: &SshSpec,
        run_dir: &RunDir,
        binary: &Path,
        tag: &str,
        firewall: FirewallChoice,
    ) -> Result<SshRuntime> {
        let ids: Vec<NodeId> = (1..=nodes).map(|i| format!("n{i}")).collect();
        let base = spec.remote_dir.join(tag);
        let mut controls = BTreeMap::new();
        let mut ips = BTreeMap::new();
        for (id, host) in ids.iter().zip(&spec.hosts) {
            let addr = resolve(host, spec.port)?;
            let spec2 = spec.clone();
            let id2 = id.clone();
            let session = tokio::task::spawn_blocking(move || connect(addr, &spec2, &id2))
                .await
                .map_err(|e| HarnessError::Internal(format!("ssh task: {e}")))??;
            tracing::info!(node = %id, %addr, "ssh connected");
            let node = Arc::new(SshNode {
                id: id.clone(),
                addr,
                dir: base.join(id),
                sudo: spec.sudo,
                tag: tag.to_owned(),
                session: Arc::new(Mutex::new(session)),
                pids: Mutex::new(Vec::new()),
            });
            ips.insert(id.clone(), addr.ip());
            controls.insert(id.clone(), SshControl(node));
        }
        let mut addrs = BTreeMap::new();
        for id in &ids {
            let ip = ips[id];
            let peers = ids
                .iter()
                .filter(|o| *o != id)
                .map(|o| (o.clone(), SocketAddr::new(ips[o], spec.peer_port)))
                .collect();
            addrs.insert(
                id.clone(),
                NodeAddrs {
                    client: SocketAddr::new(ip, spec.client_port),
                    peer_listen: SocketAddr::new(ip, spec.peer_port),
                    peers,
                },
            );
        }
        let mut rt = SshRuntime {
            nodes: ids.clone(),
            controls,
            addrs,
            ips,
            binary: ids.iter().map(|id| (id.clone(), base.join("faultline"))).collect(),
            base,
            firewalls: BTreeMap::new(),
            netem: Mutex::new(None),
            shapes: ShapeTable::default(),
        };
        for id in &ids {
            let c = &rt.controls[id];
            c.0.run_ok(format!("mkdir -p {}", shell_quote(&c.0.dir.to_string_lossy())), "mkdir")
                .await?;
            c.upload(binary, &rt.binary[id], 0o755).await?;
            // The first firewall whose chain can be made holds this host's
            // partition rules.
            let mut why = Vec::new();
            let mut chosen = None;
            for fw in firewall.candidates() {
                let script =
                    fw.prepare().iter().map(|c| shell_line(c)).collect::<Vec<_>>().join(" && ");
                match c
                    .0
                    .run_ok(script, &format!("prepare the partition chain ({})", fw.name()))
                    .await
                {
                    Ok(_) => {
                        chosen = Some(*fw);
                        break;
                    }
                    Err(e) => why.push(e.to_string()),
                }
            }
            let Some(fw) = chosen else {
                return Err(HarnessError::node(id, "prepare partitions", why.join("; ")));
            };
            tracing::info!(node = %id, firewall = fw.name(), "partition chain ready");
            rt.firewalls.insert(id.clone(), fw);
        }
        let _ = run_dir;
        Ok(rt)
    }

    /// The host's interface toward `peer` (blocking).
    fn dev_toward(&self, node: &SshNode, peer: IpAddr) -> Result<String> {
        let out = node.run_blocking(&format!("ip -o route get {peer}"))?;
        let words: Vec<&str> = out.stdout.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == "dev")
            .and_then(|i| words.get(i + 1))
            .map(|d| (*d).to_owned())
            .ok_or_else(|| {
                HarnessError::node(
                    &node.id,
                    format!("find the interface toward {peer}"),
                    out.stdout,
                )
            })
    }

    /// Whether `tc netem` can work on the hosts: the module is loaded,
    /// built in, or loadable (blocking; checked on the first host).
    fn detect_netem(&self) -> std::result::Result<(), String> {
        let Some(c) = self.controls.values().next() else {
            return Err("the cluster has no nodes".into());
        };
        let out =
            c.0.run_blocking(
                "test -d /sys/module/sch_netem || modinfo sch_netem >/dev/null 2>&1 || \
                 grep -qs 'sch_netem' /lib/modules/$(uname -r)/modules.builtin",
            )
            .map_err(|e| e.to_string())?;
        if out.status == 0 {
            Ok(())
        } else {
            Err(format!(
                "{} has no tc netem (kernel module sch_netem); packet faults over ssh need it",
                c.0.id
            ))
        }
    }

    /// Makes `from`'s outgoing links follow `self.shapes` (blocking).
    fn apply_shapes(&self, from: &str) -> Result<()> {
        let c = self
            .controls
            .get(from)
            .ok_or_else(|| HarnessError::Net(format!("no node {from} in this cluster")))?;
        let links: Vec<(IpAddr, LinkShape)> = self
            .shapes
            .outgoing(from)
            .into_iter()
            .filter_map(|(to, shape)| self.ips.get(&to).map(|ip| (*ip, shape)))
            .collect();
        // Every peer is reached through one interface on ordinary hosts;
        // shape that one, per destination address.
        let Some(peer) = self.ips.iter().find(|(n, _)| n.as_str() != from).map(|(_, ip)| *ip)
        else {
            return Ok(());
        };
        let dev = self.dev_toward(&c.0, peer)?;
        let v4: Vec<(std::net::Ipv4Addr, LinkShape)> = links
            .into_iter()
            .filter_map(|(ip, s)| match ip {
                IpAddr::V4(v4) => Some((v4, s)),
                IpAddr::V6(_) => None,
            })
            .collect();
        let cmds = crate::runtime::netem::commands(&dev, &v4);
        for (i, cmd) in cmds.iter().enumerate() {
            let mut line = vec!["tc".to_owned()];
            line.extend(cmd.iter().cloned());
            let out = c.0.run_blocking(&shell_line(&line))?;
            // Removing a root that is not there fails; fine.
            if out.status != 0 && i > 0 {
                return Err(HarnessError::node(
                    from,
                    "shape links (tc netem)",
                    format!("{}: {}", shell_line(&line), out.stderr.trim()),
                ));
            }
        }
        Ok(())
    }

    fn cleanup_blocking(&self) -> Vec<String> {
        let mut failed = Vec::new();
        for c in self.controls.values() {
            let pids: Vec<u32> = c.0.pids.lock().map(|p| p.clone()).unwrap_or_default();
            let mut script = String::new();
            for pid in pids {
                script.push_str(&format!(
                    "kill -s CONT {pid} 2>/dev/null; kill -s KILL {pid} 2>/dev/null; "
                ));
            }
            if let Some(fw) = self.firewalls.get(&c.0.id) {
                for cmd in fw.remove() {
                    script.push_str(&format!("{} 2>/dev/null; ", shell_line(&cmd)));
                }
            }
            if !self.shapes.outgoing(&c.0.id).is_empty()
                && let Some(peer) = self.ips.iter().find(|(n, _)| **n != c.0.id).map(|(_, ip)| *ip)
                && let Ok(dev) = self.dev_toward(&c.0, peer)
            {
                script.push_str(&format!(
                    "tc qdisc del dev {} root 2>/dev/null; ",
                    shell_quote(&dev)
                ));
            }
            script.push_str(&format!("rm -rf {}; true", shell_quote(&self.base.to_string_lossy())));
            if let Err(e) = c.0.run_blocking(&script) {
                failed.push(e.to_string());
            }
            if let Ok(mut p) = c.0.pids.lock() {
                p.clear();
            }
        }
        failed
    }
}

impl Drop for SshRuntime {
    fn drop(&mut self) {
        let _ = self.cleanup_blocking();
    }
}

#[async_trait]
impl Runtime for SshRuntime {
    fn name(&self) -> &str {
        "ssh"
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

    fn faultline_binary(&self, id: &str) -> PathBuf {
        self.binary.get(id).cloned().unwrap_or_else(|| self.base.join("faultline"))
    }

    async fn set_grudge(&self, grudge: &Grudge) -> Result<()> {
        for (id, c) in &self.controls {
            let sources: Vec<IpAddr> = grudge
                .0
                .get(id)
                .into_iter()
                .flatten()
                .filter_map(|from| self.ips.get(from))
                .copied()
                .collect();
            let fw = self.firewalls.get(id).copied().unwrap_or(Firewall::Nft);
            let script =
                fw.set(&sources).iter().map(|c| shell_line(c)).collect::<Vec<_>>().join(" && ");
            c.0.run_ok(script, "set partition rules").await?;
        }
        Ok(())
    }

    async fn current_grudge(&self) -> Result<Grudge> {
        let by_ip: BTreeMap<IpAddr, &NodeId> = self.ips.iter().map(|(n, ip)| (*ip, n)).collect();
        let mut grudge = Grudge::none();
        for (id, c) in &self.controls {
            let fw = self.firewalls.get(id).copied().unwrap_or(Firewall::Nft);
            let listing = c.0.run_ok(shell_line(&fw.list()), "read partition rules").await?;
            for ip in fw.parse_dropped(&listing) {
                let from = by_ip.get(&ip).map_or_else(|| ip.to_string(), |n| (*n).clone());
                grudge.0.entry(id.clone()).or_default().insert(from);
            }
        }
        Ok(grudge)
    }

    fn partitioner(&self) -> String {
        let names: BTreeSet<&str> = self.firewalls.values().map(|f| f.name()).collect();
        names.into_iter().collect::<Vec<_>>().join("+")
    }

    async fn link_shaper(&self) -> Result<String> {
        let known = self.netem.lock().ok().and_then(|k| k.clone());
        let found = match known {
            Some(k) => k,
            None => {
                let k = tokio::task::block_in_place(|| self.detect_netem());
                if let Ok(mut slot) = self.netem.lock() {
                    *slot = Some(k.clone());
                }
                k
            }
        };
        found.map(|()| "netem".to_owned()).map_err(|why| HarnessError::Unsupported {
            runtime: "ssh".into(),
            what: "shape links".into(),
            why,
        })
    }

    async fn set_link_shape(&self, from: &str, to: &str, shape: Option<&LinkShape>) -> Result<()> {
        self.link_shaper().await?;
        self.shapes.set(&self.nodes, from, to, shape)?;
        tokio::task::block_in_place(|| self.apply_shapes(from))
    }

    async fn teardown(&self) -> Result<()> {
        let failed = tokio::task::block_in_place(|| self.cleanup_blocking());
        if failed.is_empty() { Ok(()) } else { Err(HarnessError::Net(failed.join("; "))) }
    }
}

impl SshNode {
    /// The host's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
