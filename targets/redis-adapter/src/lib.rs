//! The Redis adapter: Redis 7 as Debian packages it (`redis-server`,
//! `redis-sentinel`), one primary and its replicas with real Sentinels
//! failing over as operators run them, and a client that follows
//! Sentinel to the primary (`client.rs`).
//!
//! Each node runs two processes, both from the node's `PATH`: a server
//! (`redis-server redis.conf`: its data and AOF in `nodes/<node>/redis-data`,
//! `appendfsync always`) and a Sentinel (`redis-sentinel sentinel.conf`).
//! The first node starts as primary, the others as its replicas; every
//! Sentinel monitors it with a majority quorum. The adapter writes both
//! files at setup (`conf.rs`), without a shell; from then on Redis and
//! Sentinel rewrite them as failovers happen, so a node restarted after a
//! kill comes back with what it last knew. A kill, a pause or a teardown
//! acts on both processes of the node, as a crash or a stall of the
//! machine would.
//!
//! Options (`--opt KEY=VALUE`): `redis_wait = N` (0, the default, sends no
//! `WAIT`; N from 1 to the number of replicas sends `WAIT N` after every
//! write on the same connection; see `client.rs` for what its answer means).
//!
//! On `netns` and `ssh` every node has its own address and partitions are
//! firewall rules, which is what replication and Sentinel need. On `local`
//! they cannot be made: replicas and Sentinels dial each other at the
//! addresses they announce, never through the runtime's per-link proxies,
//! so a partition or packet fault there would cut nothing. A test on
//! `local` runs kills and pauses; `partition` and `packet` are refused
//! with that reason. Clock faults are refused everywhere: Redis does not
//! run under libfaketime (it hangs at startup), and has no clock of its
//! own to set.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use harness::node::{DaemonSpec, Signal};
use harness::on_node;
use harness::spec::RuntimeKind;
use harness::{
    Client, DataFile, Db, Durability, HarnessError, NodeControl, Registry, Result, TestEnv,
    TestSpec,
};
use redis::Value as Resp;
use redis::aio::ConnectionLike;

mod client;
pub mod conf;
pub mod wire;

pub use client::{RedisClient, Settings};

/// How long the harness's own questions (`PING`, `ROLE`, `INFO`) may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// The message every missing-package error carries.
const INSTALL: &str = "install Debian's redis-server and redis-sentinel packages \
                       (apt-get install redis-server redis-sentinel)";
/// The reason clock faults are refused.
const NO_CLOCK: &str = "Redis does not run under libfaketime (Debian's redis-server hangs \
                        at startup, libfaketime reporting recursive clock_gettime calls), and \
                        it has no clock control of its own";
/// Nemeses whose faults are links between nodes, which Redis on the local
/// runtime cannot have (see the crate's documentation).
const LINK_NEMESES: &[&str] = &["partition", "packet"];
/// Workloads whose transactions carry micro-ops other than `r` and
/// `append`: the client sends a transaction as `MULTI` of `LRANGE` and
/// `RPUSH`, which have no register write.
const OTHER_TXN_WORKLOADS: &[&str] = &["rw-register", "long-fork", "bank"];

/// Registers the `redis` target.
pub fn register_all(registry: &mut Registry) {
    registry.target(
        "redis",
        "Redis 7 with Sentinel (Debian's redis-server, redis-sentinel): async replication, \
         AOF fsynced always, failover by Sentinel (options.redis_wait = N replicas to WAIT for)",
        |spec| Ok(Arc::new(RedisDb::from_spec(spec)?)),
    );
}

/// The two processes of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Proc {
    Server,
    Sentinel,
}

impl Proc {
    const BOTH: [Proc; 2] = [Proc::Server, Proc::Sentinel];

    fn program(self) -> &'static str {
        match self {
            Proc::Server => "redis-server",
            Proc::Sentinel => "redis-sentinel",
        }
    }

    fn conf(self) -> &'static str {
        match self {
            Proc::Server => "redis.conf",
            Proc::Sentinel => "sentinel.conf",
        }
    }

    fn log(self) -> &'static str {
        match self {
            Proc::Server => "redis.log",
            Proc::Sentinel => "sentinel.log",
        }
    }
}

/// The Redis target.
pub struct RedisDb {
    runtime: RuntimeKind,
    settings: Settings,
    pids: Mutex<BTreeMap<(String, Proc), u32>>,
    /// Nodes that have been ready once: the first readiness waits for
    /// replication and Sentinel's quorum, later ones only for answers.
    ready_once: Mutex<BTreeSet<String>>,
    /// The AOF files each node's manifest last named, for runtimes whose
    /// node directories are not on this machine (read when a node is
    /// killed or becomes ready).
    aof_files: Mutex<BTreeMap<String, Vec<String>>>,
}

impl RedisDb {
    /// Reads the options from the spec and refuses what cannot work.
    pub fn from_spec(spec: &TestSpec) -> Result<RedisDb> {
        refuse_unsupported(spec)?;
        let replicas = spec.nodes.saturating_sub(1);
        let wait: u32 = spec.option("redis_wait", 0)?;
        if wait > replicas {
            return Err(HarnessError::spec(
                "test spec",
                "options.redis_wait",
                format!("{wait}: a cluster of {} nodes has {replicas} replicas", spec.nodes),
            ));
        }
        let op_timeout = Duration::from_millis(spec.op_timeout_ms);
        // WAIT must answer well before the harness gives the operation up,
        // so its count, not a timeout, decides the outcome.
        let wait_ms = (spec.op_timeout_ms / 2).max(1);
        Ok(RedisDb {
            runtime: spec.runtime,
            settings: Settings {
                wait: (wait > 0).then_some((wait, wait_ms)),
                response_timeout: op_timeout,
            },
            pids: Mutex::new(BTreeMap::new()),
            ready_once: Mutex::new(BTreeSet::new()),
            aof_files: Mutex::new(BTreeMap::new()),
        })
    }

    /// What this target's clients do.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    fn node_dir(env: &TestEnv, node: &str) -> Result<PathBuf> {
        Ok(control(env, node)?.dir().to_path_buf())
    }

    fn data_dir(env: &TestEnv, node: &str) -> Result<PathBuf> {
        Ok(Self::node_dir(env, node)?.join("redis-data"))
    }

    fn manifest(env: &TestEnv, node: &str) -> Result<PathBuf> {
        Ok(Self::data_dir(env, node)?.join(conf::AOF_DIR).join(conf::manifest_name()))
    }

    fn pid(&self, node: &str, p: Proc) -> Option<u32> {
        self.pids.lock().ok().and_then(|m| m.get(&(node.to_owned(), p)).copied())
    }

    async fn signal(&self, env: &TestEnv, node: &str, signal: Signal) -> Result<()> {
        for p in Proc::BOTH {
            if let Some(pid) = self.pid(node, p) {
                control(env, node)?.signal(pid, signal).await?;
            }
        }
        Ok(())
    }

    async fn alive(&self, env: &TestEnv, node: &str, p: Proc) -> Result<bool> {
        match self.pid(node, p) {
            Some(pid) => control(env, node)?.is_alive(pid).await,
            None => Ok(false),
        }
    }

    /// The cluster as the configuration files describe it.
    fn layout(env: &TestEnv) -> Result<conf::Layout> {
        let mut members = BTreeMap::new();
        for (i, node) in env.nodes().iter().enumerate() {
            let a = env.addrs(node)?;
            let m = conf::Member {
                redis: a.client,
                sentinel: a.peer_listen,
                sentinel_id: conf::sentinel_id(i),
            };
            members.insert(node.clone(), m);
        }
        let primary = env.nodes().first().cloned().unwrap_or_default();
        Ok(conf::Layout { members, primary })
    }

    /// Writes both configuration files of `node`: a copy in the run
    /// directory (`initial-redis.conf`, `initial-sentinel.conf`, kept as
    /// written), uploaded to the node as the files the processes read.
    async fn write_conf(&self, env: &TestEnv, node: &str) -> Result<()> {
        let layout = Self::layout(env)?;
        let dir = Self::node_dir(env, node)?;
        let texts = [
            (Proc::Server, conf::redis_conf(&layout, node, &Self::data_dir(env, node)?)),
            (Proc::Sentinel, conf::sentinel_conf(&layout, node, &dir)),
        ];
        let local_dir = env.run_dir.join("nodes").join(node);
        std::fs::create_dir_all(&local_dir).map_err(|e| HarnessError::io(&local_dir, e))?;
        for (p, text) in texts {
            let local = local_dir.join(format!("initial-{}", p.conf()));
            std::fs::write(&local, text).map_err(|e| HarnessError::io(&local, e))?;
            control(env, node)?.upload(&local, &dir.join(p.conf()), 0o644).await?;
        }
        Ok(())
    }

    /// Reads the node's AOF manifest over the node's control, for nodes
    /// not on this machine.
    async fn remember_aof_files(&self, env: &TestEnv, node: &str) {
        let Ok(path) = Self::manifest(env, node) else { return };
        if path.exists() {
            return;
        }
        let Ok(c) = control(env, node) else { return };
        if let Ok(out) = c.exec("cat", &[path.to_string_lossy().into_owned()]).await
            && out.status == 0
            && let Ok(mut files) = self.aof_files.lock()
        {
            files.insert(node.to_owned(), conf::aof_files(&out.stdout));
        }
    }

    /// Whether both processes of `node` answer, and, the first time, the
    /// node has joined the cluster: a replica's link to the primary is up
    /// and its Sentinel sees enough Sentinels to fail over.
    async fn answers(&self, env: &TestEnv, node: &str, first: bool) -> Result<bool> {
        let a = env.addrs(node)?;
        let pong = |r: Option<Resp>| matches!(r, Some(Resp::SimpleString(s)) if s == "PONG");
        if !pong(probe(a.client, &["PING"]).await) || !pong(probe(a.peer_listen, &["PING"]).await) {
            return Ok(false);
        }
        if !first {
            return Ok(true);
        }
        let is_primary = env.nodes().first().is_some_and(|p| p == node);
        if !is_primary {
            let info = probe(a.client, &["INFO", "replication"]).await;
            if !text(info.as_ref()).contains("master_link_status:up") {
                return Ok(false);
            }
        }
        let quorum = probe(a.peer_listen, &["SENTINEL", "CKQUORUM", wire::MASTER_NAME]).await;
        Ok(text(quorum.as_ref()).starts_with("OK"))
    }

    /// The error for a process that exited while the harness waited for it.
    async fn exited(&self, env: &TestEnv, node: &str) -> Result<Option<HarnessError>> {
        for p in Proc::BOTH {
            if !self.alive(env, node, p).await? {
                let log = Self::node_dir(env, node)?.join(p.log());
                return Ok(Some(HarnessError::node(
                    node,
                    format!("start {}", p.program()),
                    format!("the process exited; see {}", log.display()),
                )));
            }
        }
        Ok(None)
    }
}

/// Refuses the faults, modes and workloads Redis cannot be tested with here.
fn refuse_unsupported(spec: &TestSpec) -> Result<()> {
    let bad = |field: &str, why: String| Err(HarnessError::spec("test spec", field, why));
    if !matches!(spec.mode.as_str(), "" | "raft" | "sentinel") {
        return bad(
            "mode",
            format!(
                "{:?}: Redis runs one way here (async replication, failover by Sentinel); \
                 choose WAIT with --opt redis_wait",
                spec.mode
            ),
        );
    }
    if spec.nemeses().contains(&"clock") {
        return bad("nemesis", format!("clock faults cannot be made: {NO_CLOCK}"));
    }
    if spec.runtime == RuntimeKind::Local
        && let Some(n) = spec.nemeses().into_iter().find(|n| LINK_NEMESES.contains(n))
    {
        return bad(
            "nemesis",
            format!(
                "{n} cannot cut Redis's links on the local runtime: replicas and Sentinels \
                 dial the addresses they announce, never the runtime's per-link proxies; use \
                 --runtime netns (root)"
            ),
        );
    }
    if OTHER_TXN_WORKLOADS.contains(&spec.workload.as_str()) {
        return bad(
            "workload",
            format!(
                "{}: the redis client's transactions are list-append's (r and append, as \
                 MULTI of LRANGE and RPUSH)",
                spec.workload
            ),
        );
    }
    Ok(())
}

fn control<'a>(env: &'a TestEnv, node: &str) -> Result<&'a dyn NodeControl> {
    env.runtime.node(node).ok_or_else(|| HarnessError::Internal(format!("no node {node}")))
}

/// A command's reply from the server or Sentinel at `addr`, if it gives
/// one within [`PROBE_TIMEOUT`].
async fn probe(addr: SocketAddr, args: &[&str]) -> Option<Resp> {
    let mut conn =
        client::connect(&addr.ip().to_string(), addr.port(), PROBE_TIMEOUT).await.ok()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    conn.req_packed_command(&cmd).await.ok()
}

/// A reply's text (a status or a bulk string), or "".
fn text(reply: Option<&Resp>) -> String {
    match reply {
        Some(Resp::SimpleString(s)) => s.clone(),
        Some(Resp::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Resp::VerbatimString { text, .. }) => text.clone(),
        _ => String::new(),
    }
}

/// `program --version` on the node, or an error naming the packages.
async fn installed(c: &dyn NodeControl, node: &str, program: &str) -> Result<String> {
    let action = format!("find {program}");
    match c.exec(program, &["--version".into()]).await {
        Ok(out) if out.status == 0 => Ok(out.stdout),
        Ok(out) => Err(HarnessError::node(
            node,
            action,
            format!("`{program} --version` failed ({}); {INSTALL}", out.stderr.trim()),
        )),
        Err(e) => Err(HarnessError::node(node, action, format!("{e}; {INSTALL}"))),
    }
}

/// Runs `program args` on the node, failing with `action` and its output.
async fn run(
    c: &dyn NodeControl,
    node: &str,
    action: &str,
    program: &str,
    args: &[String],
) -> Result<String> {
    let out = c.exec(program, args).await.map_err(|e| HarnessError::node(node, action, e))?;
    if out.status != 0 {
        return Err(HarnessError::node(node, action, out.stderr.trim()));
    }
    Ok(out.stdout)
}

#[async_trait]
impl Db for RedisDb {
    async fn setup(&self, env: &TestEnv, node: &str) -> Result<()> {
        let c = control(env, node)?;
        for p in Proc::BOTH {
            let version = installed(c, node, p.program()).await?;
            tracing::info!(node, "{}: {}", p.program(), version.trim());
        }
        // A data directory or configuration left from an earlier run
        // would hold another cluster's data and view.
        let dir = Self::node_dir(env, node)?;
        let mut stale =
            vec!["-rf".to_owned(), Self::data_dir(env, node)?.to_string_lossy().into_owned()];
        stale.extend(Proc::BOTH.map(|p| dir.join(p.conf()).to_string_lossy().into_owned()));
        run(c, node, "remove old data", "rm", &stale).await?;
        let data = Self::data_dir(env, node)?.to_string_lossy().into_owned();
        run(c, node, "create the data directory", "mkdir", &["-p".into(), data]).await?;
        self.write_conf(env, node).await
    }

    async fn start(&self, env: &TestEnv, node: &str) -> Result<()> {
        let dir = Self::node_dir(env, node)?;
        for p in Proc::BOTH {
            // Two nemeses may restart the same node; a second process on
            // the same port would only fail and lose track of the first.
            if self.alive(env, node, p).await? {
                continue;
            }
            let spec = DaemonSpec {
                name: p.program().into(),
                program: PathBuf::from(p.program()),
                args: vec![dir.join(p.conf()).to_string_lossy().into_owned()],
                env: Vec::new(),
                log_file: dir.join(p.log()),
            };
            let pid = control(env, node)?.start_daemon(&spec).await?;
            tracing::info!(node, pid, "{} started", p.program());
            if let Ok(mut pids) = self.pids.lock() {
                pids.insert((node.to_owned(), p), pid);
            }
        }
        Ok(())
    }

    async fn kill(&self, env: &TestEnv, node: &str) -> Result<()> {
        self.remember_aof_files(env, node).await;
        self.signal(env, node, Signal::Kill).await?;
        if let Ok(mut pids) = self.pids.lock() {
            pids.retain(|(n, _), _| n != node);
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
        loop {
            if self.answers(env, node, first).await? {
                if let Ok(mut r) = self.ready_once.lock() {
                    r.insert(node.to_owned());
                }
                self.remember_aof_files(env, node).await;
                return Ok(());
            }
            if let Some(e) = self.exited(env, node).await? {
                return Err(e);
            }
            if started.elapsed() > timeout {
                let what = if first { "join the cluster" } else { "answer PING" };
                return Err(HarnessError::Timeout(format!(
                    "redis on {node} did not {what} within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn is_running(&self, env: &TestEnv, node: &str) -> Result<bool> {
        Ok(self.alive(env, node, Proc::Server).await?
            && self.alive(env, node, Proc::Sentinel).await?)
    }

    async fn teardown(&self, env: &TestEnv, node: &str) -> Result<()> {
        // A paused process cannot act on SIGTERM; resume it first. Then ask
        // both to stop, and kill what has not within the grace period.
        self.signal(env, node, Signal::Cont).await?;
        self.signal(env, node, Signal::Term).await?;
        on_node::await_stop(node, "redis", || async {
            Ok(self.alive(env, node, Proc::Server).await?
                || self.alive(env, node, Proc::Sentinel).await?)
        })
        .await?;
        self.kill(env, node).await?;
        on_node::remove_dir(env, node, &Self::data_dir(env, node)?).await?;
        Ok(())
    }

    fn log_files(&self, env: &TestEnv, node: &str) -> Vec<PathBuf> {
        let Ok(dir) = Self::node_dir(env, node) else { return Vec::new() };
        Proc::BOTH.iter().map(|p| dir.join(p.log())).collect()
    }

    /// The servers that say they are primaries (`ROLE`): during a split
    /// brain, the old primary cut off from the Sentinels and the new one.
    async fn primaries(&self, env: &TestEnv) -> Vec<String> {
        let mut out = Vec::new();
        for node in env.nodes() {
            let Ok(a) = env.addrs(node) else { continue };
            if probe(a.client, &["ROLE"]).await.as_ref().and_then(wire::role).as_deref()
                == Some("master")
            {
                out.push(node.clone());
            }
        }
        out
    }

    async fn set_clock_offset(&self, _env: &TestEnv, _node: &str, _offset_ms: i64) -> Result<()> {
        Err(HarnessError::Unsupported {
            runtime: "redis".into(),
            what: "offset clocks".into(),
            why: NO_CLOCK.into(),
        })
    }

    /// The AOF files the manifest names (read from the node directory when
    /// it is on this machine, else as last read over the node's control),
    /// and the manifest itself. With `appendfsync always` Redis writes and
    /// fsyncs the incremental file before it answers a write; the base
    /// file and the manifest are written by a rewrite and fsynced before
    /// the manifest names them.
    fn data_files(&self, env: &TestEnv, node: &str) -> Vec<DataFile> {
        let Ok(manifest) = Self::manifest(env, node) else { return Vec::new() };
        let names = match std::fs::read_to_string(&manifest) {
            Ok(text) => conf::aof_files(&text),
            Err(_) => {
                self.aof_files.lock().ok().and_then(|f| f.get(node).cloned()).unwrap_or_default()
            }
        };
        let names = if names.is_empty() { conf::first_aof_files() } else { names };
        let dir = manifest.parent().map(PathBuf::from).unwrap_or_default();
        names
            .into_iter()
            .chain([conf::manifest_name()])
            .map(|n| DataFile { path: dir.join(n), durability: Durability::FsyncBeforeAck })
            .collect()
    }

    fn default_nemeses(&self) -> Vec<String> {
        let all: &[&str] = if self.runtime == RuntimeKind::Local {
            &["kill", "pause"]
        } else {
            &["partition", "kill", "pause"]
        };
        all.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Faults aim at the primary, where asynchronous replication loses
    /// what it had not shipped.
    fn default_options(&self, nemeses: &[String]) -> Vec<(String, String)> {
        let mut options = Vec::new();
        for n in nemeses {
            let name = match n.as_str() {
                "partition" => "partition",
                "kill" => "kill_targets",
                "pause" => "pause_targets",
                "file" => "file_targets",
                _ => continue,
            };
            options.push((name.to_owned(), "primaries".to_owned()));
        }
        options
    }

    fn client(&self, env: &TestEnv) -> Box<dyn Client> {
        Box::new(RedisClient::new(env.clone(), self.settings))
    }

    fn supported_fs(&self) -> &[&str] {
        &["read", "final-read", "write", "cas", "txn", "add"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(opts: &[(&str, &str)]) -> TestSpec {
        let mut s = TestSpec { target: "redis".into(), nodes: 3, ..TestSpec::default() };
        s.runtime = RuntimeKind::Netns;
        s.workload = "set".into();
        for (k, v) in opts {
            s.options.insert((*k).into(), (*v).into());
        }
        s
    }

    fn refusal(s: &TestSpec) -> String {
        RedisDb::from_spec(s).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn wait_is_off_unless_asked_and_never_for_more_replicas_than_exist() {
        let s = spec(&[]);
        assert_eq!(RedisDb::from_spec(&s).map(|d| d.settings().wait).ok(), Some(None));
        assert!(s.options_read.names().contains("redis_wait"));
        let s = spec(&[("redis_wait", "2")]);
        assert_eq!(RedisDb::from_spec(&s).map(|d| d.settings().wait).ok(), Some(Some((2, 1000))));
        assert!(refusal(&spec(&[("redis_wait", "3")])).contains("2 replicas"));
        assert!(refusal(&spec(&[("redis_wait", "all")])).contains("redis_wait"));
    }

    #[test]
    fn clock_faults_link_faults_on_local_other_modes_and_register_txns_are_refused() {
        let mut s = spec(&[]);
        s.nemesis = vec!["clock".into()];
        assert!(refusal(&s).contains("libfaketime"), "{}", refusal(&s));
        let mut s = spec(&[]);
        s.runtime = RuntimeKind::Local;
        s.nemesis = vec!["kill".into(), "partition".into()];
        assert!(refusal(&s).contains("proxies") && refusal(&s).contains("netns"));
        s.nemesis = vec!["kill".into(), "pause".into()];
        let db = RedisDb::from_spec(&s).expect("kills and pauses work locally");
        assert_eq!(db.default_nemeses(), ["kill", "pause"]);
        let mut s = spec(&[]);
        s.mode = "sync".into();
        assert!(refusal(&s).contains("redis_wait"));
        let mut s = spec(&[]);
        s.workload = "rw-register".into();
        assert!(refusal(&s).contains("list-append"));
    }

    #[test]
    fn faults_aim_at_the_primary_by_default() {
        let db = RedisDb::from_spec(&spec(&[])).expect("db");
        let opts = db.default_options(&["partition".into(), "kill".into(), "clock".into()]);
        assert_eq!(
            opts,
            [("partition".into(), "primaries".into()), ("kill_targets".into(), "primaries".into())]
        );
    }
}
