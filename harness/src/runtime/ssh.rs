//! The `ssh` runtime: real remote hosts driven over SSH (the `ssh2` crate):
//! a user, a port, a private key, optional `sudo`, strict host-key checking
//! by default, and retries when connecting. Partitions are nftables rules on
//! each host; the faultline binary is uploaded once per host.
//!
//! `ssh2` is blocking, so every call runs on tokio's blocking pool, one
//! session per host behind a mutex.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{HarnessError, Result};
use crate::node::{
    DaemonSpec, ExecOutput, Grudge, NodeAddrs, NodeControl, NodeId, Runtime, Signal,
};
use crate::rundir::RunDir;
use crate::runtime::process::RUN_TAG_ENV;
use crate::spec::SshSpec;

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

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
        let rt = SshRuntime {
            nodes: ids.clone(),
            controls,
            addrs,
            ips,
            binary: ids.iter().map(|id| (id.clone(), base.join("faultline"))).collect(),
            base,
        };
        for id in &ids {
            let c = &rt.controls[id];
            c.0.run_ok(format!("mkdir -p {}", shell_quote(&c.0.dir.to_string_lossy())), "mkdir")
                .await?;
            c.upload(binary, &rt.binary[id], 0o755).await?;
            c.0.run_ok(
                "nft add table inet faultline && nft add chain inet faultline input \
                 '{ type filter hook input priority 0; policy accept; }' && \
                 nft flush chain inet faultline input"
                    .into(),
                "prepare the partition table (nft)",
            )
            .await?;
        }
        let _ = run_dir;
        Ok(rt)
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
            script.push_str("nft delete table inet faultline 2>/dev/null; ");
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
            let sources: Vec<String> = grudge
                .0
                .get(id)
                .into_iter()
                .flatten()
                .filter_map(|from| self.ips.get(from))
                .map(IpAddr::to_string)
                .collect();
            let mut script = "nft flush chain inet faultline input".to_owned();
            if !sources.is_empty() {
                script.push_str(&format!(
                    " && nft add rule inet faultline input ip saddr '{{ {} }}' drop",
                    sources.join(", ")
                ));
            }
            c.0.run_ok(script, "set partition rules").await?;
        }
        Ok(())
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
