//! The etcd adapter: etcd 3.4 as Debian packages it (`etcd-server`,
//! `/usr/bin/etcd`) run by the harness on any runtime, and a client over
//! its v3 HTTP JSON gateway (`client.rs`).
//!
//! Options (`--opt KEY=VALUE`): `etcd_reads = linearizable | serializable`
//! (how the client reads: through Raft's read index, the default, or from
//! whichever member it asks, which etcd documents may be stale).
//!
//! Each node runs one member named after the node, listening for clients
//! and peers on the runtime's addresses, its data in the node's directory.
//! On `netns` and `ssh` every node has its own address and partitions are
//! firewall rules, which is what etcd needs. On `local` partitions cannot
//! be made: an etcd member's identity is a hash of its peer URLs, so every
//! member must dial a peer at the same URL, and the local runtime's
//! per-link proxies give each directed link a URL of its own. A test of
//! etcd on `local` therefore runs kills and pauses, and a partition or
//! packet nemesis is refused with that reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use harness::node::{DaemonSpec, Signal};
use harness::on_node;
use harness::spec::RuntimeKind;
use harness::{
    Client, DataFile, Db, Durability, HarnessError, Registry, Result, TestEnv, TestSpec,
};

mod client;
pub mod wire;

pub use client::EtcdClient;
pub use wire::Reads;

/// The program every node runs (found on the node's `PATH`).
const ETCD: &str = "etcd";
/// The first WAL segment etcd writes (sequence 0, index 0). A segment
/// holds 64 MiB, more than a test writes, so it is the whole log.
const FIRST_WAL: &str = "member/wal/0000000000000000-0000000000000000.wal";

/// Registers the `etcd` target.
pub fn register_all(registry: &mut Registry) {
    registry.target(
        "etcd",
        "etcd 3.4 (Debian's etcd-server), through its v3 JSON gateway \
         (options.etcd_reads = linearizable | serializable)",
        |spec| Ok(Arc::new(EtcdDb::from_spec(spec)?)),
    );
}

/// The etcd target.
pub struct EtcdDb {
    reads: Reads,
    runtime: RuntimeKind,
    /// Shared by every client, and by the harness's own status requests.
    http: reqwest::Client,
    /// The cluster token, unique per run, so members of two runs never
    /// mistake each other for one cluster.
    token: String,
    pids: Mutex<BTreeMap<String, u32>>,
    /// Nodes that have been ready once: the first readiness waits for a
    /// leader, later ones (after a restart, maybe under a partition) only
    /// for the member to serve.
    ready_once: Mutex<BTreeSet<String>>,
}

/// The nemeses whose faults are links between nodes, which etcd on the
/// local runtime cannot have (see the crate's documentation).
const LINK_NEMESES: &[&str] = &["partition", "packet"];

impl EtcdDb {
    /// Reads the options from the spec and refuses what cannot work.
    pub fn from_spec(spec: &TestSpec) -> Result<EtcdDb> {
        let reads = match spec.option_text("etcd_reads").unwrap_or("linearizable") {
            "linearizable" => Reads::Linearizable,
            "serializable" => Reads::Serializable,
            other => {
                return Err(HarnessError::spec(
                    "test spec",
                    "options.etcd_reads",
                    format!("{other:?}: use linearizable or serializable"),
                ));
            }
        };
        if !matches!(spec.mode.as_str(), "" | "raft" | "etcd") {
            return Err(HarnessError::spec(
                "test spec",
                "mode",
                format!(
                    "{:?}: etcd has one mode (raft); choose its reads with --opt etcd_reads",
                    spec.mode
                ),
            ));
        }
        if spec.runtime == RuntimeKind::Local
            && let Some(n) = spec.nemeses().into_iter().find(|n| LINK_NEMESES.contains(n))
        {
            return Err(HarnessError::spec(
                "test spec",
                "nemesis",
                format!(
                    "{n} cannot cut etcd's links on the local runtime: a member's identity \
                     is its peer URLs, so every member dials a peer at one URL, where the \
                     local runtime has a proxy per directed link; use --runtime netns (root)"
                ),
            ));
        }
        let op_timeout = Duration::from_millis(spec.op_timeout_ms);
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(op_timeout)
            .connect_timeout(Duration::from_millis(500))
            .build()
            .map_err(|e| HarnessError::Internal(format!("http client: {e}")))?;
        let token = format!("faultline-{}-{}", std::process::id(), spec.seed.unwrap_or(0));
        Ok(EtcdDb {
            reads,
            runtime: spec.runtime,
            http,
            token,
            pids: Mutex::new(BTreeMap::new()),
            ready_once: Mutex::new(BTreeSet::new()),
        })
    }

    /// How this target's client reads.
    pub fn reads(&self) -> Reads {
        self.reads
    }

    fn data_dir(env: &TestEnv, node: &str) -> Result<PathBuf> {
        Ok(control(env, node)?.dir().join("etcd-data"))
    }

    fn log_file(env: &TestEnv, node: &str) -> Result<PathBuf> {
        Ok(control(env, node)?.dir().join("etcd.log"))
    }

    fn pid(&self, node: &str) -> Option<u32> {
        self.pids.lock().ok().and_then(|p| p.get(node).copied())
    }

    async fn signal(&self, env: &TestEnv, node: &str, signal: Signal) -> Result<()> {
        match self.pid(node) {
            Some(pid) => control(env, node)?.signal(pid, signal).await,
            None => Ok(()),
        }
    }

    /// The member's command line: its name and addresses, and the whole
    /// initial cluster (read only on the first start; later starts find the
    /// membership in the data directory).
    fn args(&self, env: &TestEnv, node: &str) -> Result<Vec<String>> {
        let addrs = env.addrs(node)?;
        let mut cluster = Vec::new();
        for other in env.nodes() {
            cluster.push(format!("{other}=http://{}", env.addrs(other)?.peer_listen));
        }
        let client = format!("http://{}", addrs.client);
        let peer = format!("http://{}", addrs.peer_listen);
        let data = Self::data_dir(env, node)?.to_string_lossy().into_owned();
        let args = [
            ("--name", node.to_owned()),
            ("--data-dir", data),
            ("--listen-client-urls", client.clone()),
            ("--advertise-client-urls", client),
            ("--listen-peer-urls", peer.clone()),
            ("--initial-advertise-peer-urls", peer),
            ("--initial-cluster", cluster.join(",")),
            ("--initial-cluster-token", self.token.clone()),
            ("--initial-cluster-state", "new".to_owned()),
            ("--logger", "zap".to_owned()),
            ("--log-outputs", "stderr".to_owned()),
        ];
        Ok(args.into_iter().flat_map(|(k, v)| [k.to_owned(), v]).collect())
    }

    /// A member's answer to `path` (GET), if it gives one within 500 ms.
    async fn get(&self, env: &TestEnv, node: &str, path: &str) -> Option<serde_json::Value> {
        let addr = env.addrs(node).ok()?.client;
        let resp = self
            .http
            .get(format!("http://{addr}{path}"))
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// The member's status: its own id and the leader it knows, as decimal
    /// strings.
    async fn status(&self, env: &TestEnv, node: &str) -> Option<(String, String)> {
        let addr = env.addrs(node).ok()?.client;
        let resp = self
            .http
            .post(format!("http://{addr}/v3/maintenance/status"))
            .json(&serde_json::json!({}))
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = resp.json().await.ok()?;
        let me = body.get("header")?.get("member_id")?.as_str()?.to_owned();
        let leader = body.get("leader")?.as_str()?.to_owned();
        Some((me, leader))
    }
}

fn control<'a>(env: &'a TestEnv, node: &str) -> Result<&'a dyn harness::NodeControl> {
    env.runtime.node(node).ok_or_else(|| HarnessError::Internal(format!("no node {node}")))
}

#[async_trait]
impl Db for EtcdDb {
    async fn setup(&self, env: &TestEnv, node: &str) -> Result<()> {
        let c = control(env, node)?;
        let installed = c.exec(ETCD, &["--version".into()]).await;
        let version = match installed {
            Ok(out) if out.status == 0 => out.stdout,
            Ok(out) => {
                return Err(HarnessError::node(
                    node,
                    "find etcd",
                    format!(
                        "`etcd --version` failed ({}); install Debian's etcd-server package \
                         (apt-get install etcd-server etcd-client)",
                        out.stderr.trim()
                    ),
                ));
            }
            Err(e) => {
                return Err(HarnessError::node(
                    node,
                    "find etcd",
                    format!(
                        "{e}; install Debian's etcd-server package \
                         (apt-get install etcd-server etcd-client)"
                    ),
                ));
            }
        };
        if let Some(line) = version.lines().next() {
            tracing::info!(node, "{}", line.trim());
        }
        let dir = Self::data_dir(env, node)?.to_string_lossy().into_owned();
        // A data directory left from an earlier run would hold another
        // cluster's membership.
        for (program, flag) in [("rm", "-rf"), ("mkdir", "-p")] {
            let out = c.exec(program, &[flag.into(), dir.clone()]).await?;
            if out.status != 0 {
                return Err(HarnessError::node(
                    node,
                    "create the data directory",
                    out.stderr.trim(),
                ));
            }
        }
        Ok(())
    }

    async fn start(&self, env: &TestEnv, node: &str) -> Result<()> {
        // Two nemeses may restart the same node; a second member on the
        // same ports would only fail and lose track of the first.
        if self.is_running(env, node).await? {
            return Ok(());
        }
        let spec = DaemonSpec {
            name: "etcd".into(),
            program: PathBuf::from(ETCD),
            args: self.args(env, node)?,
            env: Vec::new(),
            log_file: Self::log_file(env, node)?,
        };
        let pid = control(env, node)?.start_daemon(&spec).await?;
        tracing::info!(node, pid, "etcd started");
        if let Ok(mut pids) = self.pids.lock() {
            pids.insert(node.to_owned(), pid);
        }
        Ok(())
    }

    async fn kill(&self, env: &TestEnv, node: &str) -> Result<()> {
        self.signal(env, node, Signal::Kill).await?;
        if let Ok(mut pids) = self.pids.lock() {
            pids.remove(node);
        }
        Ok(())
    }

    async fn pause(&self, env: &TestEnv, node: &str) -> Result<()> {
        self.signal(env, node, Signal::Stop).await
    }

    async fn resume(&self, env: &TestEnv, node: &str) -> Result<()> {
        self.signal(env, node, Signal::Cont).await
    }

    async fn await_ready(&self, env: &TestEnv, node: &str, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let first = !self.ready_once.lock().is_ok_and(|r| r.contains(node));
        // The first time, the whole cluster is starting: wait until the
        // member knows a leader, so the first operations find one. After a
        // restart, serving is enough (a partition may keep it leaderless).
        let path = if first { "/health" } else { "/version" };
        loop {
            let answer = self.get(env, node, path).await;
            let ready = match (&answer, first) {
                (Some(a), true) => a.get("health").and_then(|h| h.as_str()) == Some("true"),
                (Some(_), false) => true,
                (None, _) => false,
            };
            if ready {
                if let Ok(mut r) = self.ready_once.lock() {
                    r.insert(node.to_owned());
                }
                return Ok(());
            }
            if !self.is_running(env, node).await? {
                return Err(HarnessError::node(
                    node,
                    "start etcd",
                    format!("the process exited; see {}", Self::log_file(env, node)?.display()),
                ));
            }
            if started.elapsed() > timeout {
                return Err(HarnessError::Timeout(format!(
                    "etcd on {node} did not answer {path} within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn is_running(&self, env: &TestEnv, node: &str) -> Result<bool> {
        match self.pid(node) {
            Some(pid) => control(env, node)?.is_alive(pid).await,
            None => Ok(false),
        }
    }

    async fn teardown(&self, env: &TestEnv, node: &str) -> Result<()> {
        // A paused member cannot act on SIGTERM; resume it first. Then ask
        // it to stop, and kill it when it has not within the grace period.
        self.signal(env, node, Signal::Cont).await?;
        self.signal(env, node, Signal::Term).await?;
        on_node::await_stop(node, "etcd", || self.is_running(env, node)).await?;
        self.kill(env, node).await?;
        on_node::remove_dir(env, node, &Self::data_dir(env, node)?).await?;
        Ok(())
    }

    fn log_files(&self, env: &TestEnv, node: &str) -> Vec<PathBuf> {
        Self::log_file(env, node).into_iter().collect()
    }

    /// The members that say they lead: each member's status names the
    /// leader it follows, and a member is a primary when that is itself.
    async fn primaries(&self, env: &TestEnv) -> Vec<String> {
        let mut out = Vec::new();
        for node in env.nodes() {
            if let Some((me, leader)) = self.status(env, node).await
                && me == leader
            {
                out.push(node.clone());
            }
        }
        out
    }

    /// The WAL, fsynced before etcd acknowledges a write, and the bbolt
    /// database, which etcd commits in batches apart from acknowledgements
    /// (what it lacks after a crash is replayed from the WAL).
    fn data_files(&self, env: &TestEnv, node: &str) -> Vec<DataFile> {
        let Ok(dir) = Self::data_dir(env, node) else { return Vec::new() };
        vec![
            DataFile { path: dir.join(FIRST_WAL), durability: Durability::FsyncBeforeAck },
            DataFile { path: dir.join("member/snap/db"), durability: Durability::NoFsync },
        ]
    }

    fn default_nemeses(&self) -> Vec<String> {
        let all: &[&str] = if self.runtime == RuntimeKind::Local {
            &["kill", "pause"]
        } else {
            &["partition", "kill", "pause"]
        };
        all.iter().map(|s| (*s).to_owned()).collect()
    }

    fn client(&self, env: &TestEnv) -> Box<dyn Client> {
        Box::new(EtcdClient::new(self.http.clone(), env.clone(), self.reads))
    }

    fn supported_fs(&self) -> &[&str] {
        &["read", "final-read", "write", "cas", "txn", "add"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(opts: &[(&str, &str)]) -> TestSpec {
        let mut s = TestSpec { target: "etcd".into(), ..TestSpec::default() };
        s.runtime = RuntimeKind::Netns;
        for (k, v) in opts {
            s.options.insert((*k).into(), (*v).into());
        }
        s
    }

    #[test]
    fn reads_are_linearizable_unless_asked_and_a_wrong_choice_is_refused() {
        let s = spec(&[]);
        assert_eq!(EtcdDb::from_spec(&s).map(|d| d.reads()).ok(), Some(Reads::Linearizable));
        assert!(s.options_read.names().contains("etcd_reads"));
        let s = spec(&[("etcd_reads", "serializable")]);
        assert_eq!(EtcdDb::from_spec(&s).map(|d| d.reads()).ok(), Some(Reads::Serializable));
        let err = EtcdDb::from_spec(&spec(&[("etcd_reads", "stale")])).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("linearizable or serializable")));
    }

    #[test]
    fn partitions_on_the_local_runtime_are_refused_with_the_reason() {
        let mut s = spec(&[]);
        s.runtime = RuntimeKind::Local;
        s.nemesis = vec!["kill".into(), "partition".into()];
        let err = EtcdDb::from_spec(&s).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("peer URLs") && err.contains("netns"), "{err}");
        s.nemesis = vec!["kill".into(), "pause".into()];
        let db = EtcdDb::from_spec(&s).expect("kills and pauses work locally");
        assert_eq!(db.default_nemeses(), ["kill", "pause"]);
    }

    #[test]
    fn another_mode_is_refused() {
        let mut s = spec(&[]);
        s.mode = "async".into();
        assert!(EtcdDb::from_spec(&s).is_err());
    }
}
