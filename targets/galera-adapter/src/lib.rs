//! The Galera adapter: MariaDB 10.11 with Galera 4 as Debian packages them
//! (`mariadb-server`, `galera-4`), a multi-master cluster run by the
//! harness on netns or ssh nodes, and a client over `mysql_async`
//! (`client.rs`).
//!
//! Every node gets a data directory from `mariadb-install-db` and a
//! `my.cnf` naming every member (`config.rs`). The first node bootstraps
//! the cluster (`--wsrep-new-cluster`, what `galera_new_cluster` does for
//! a systemd service); every other node joins it and receives its state by
//! rsync SST, one at a time. A node restarted after a kill joins again,
//! by IST when the donor's gcache still holds what it missed, by SST
//! otherwise; it never bootstraps again. Options (`--opt KEY=VALUE`):
//! - `isolation = repeatable-read | serializable | read-committed`
//!   (default repeatable-read, MariaDB's own), every transaction's level.
//!
//! Galera needs four ports per node (clients, group communication, IST,
//! SST); the `local` runtime gives each node two loopback ports and a
//! proxy per link, so it is refused. Clock faults are refused too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use harness::node::Signal;
use harness::on_node::{RunAs, control, run};
use harness::spec::RuntimeKind;
use harness::{
    Client, DataFile, Db, Durability, HarnessError, Registry, Result, TestEnv, TestSpec,
};

mod client;
pub mod config;
mod ops;
pub mod outcome;
mod server;

pub use client::GaleraClient;
use config::{Isolation, NodeConf, Ports};
pub use ops::Tables;

/// How long teardown lets a server shut down before it kills it.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a joiner's first start waits for the nodes before it to be
/// synced, so state transfers happen one at a time.
const JOIN_WAIT: Duration = Duration::from_secs(90);
/// How long a restart waits for the peers to forget the node's last
/// instance (see `wait_until_forgotten`).
const FORGET_WAIT: Duration = Duration::from_secs(10);

/// Registers the `galera` target.
pub fn register_all(registry: &mut Registry) {
    registry.target(
        "galera",
        "MariaDB 10.11 with Galera 4 (Debian's mariadb-server and galera-4): a multi-master \
         cluster, clients on every node (options.isolation = repeatable-read | serializable | \
         read-committed)",
        |spec| Ok(Arc::new(GaleraDb::from_spec(spec)?)),
    );
}

/// What the test chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Every transaction's isolation level.
    pub isolation: Isolation,
    /// Which tables `txn` reads and writes.
    pub tables: Tables,
}

/// What the adapter knows of the nodes.
#[derive(Debug, Default)]
struct Nodes {
    /// How MariaDB's programs run on each node (found by `setup`).
    run_as: BTreeMap<String, RunAs>,
    /// The server's pid on each node where it was started and not killed.
    pids: BTreeMap<String, u32>,
    /// Nodes that have been synced once: a later start is a rejoin.
    joined: BTreeSet<String>,
}

/// The Galera target.
pub struct GaleraDb {
    options: Options,
    nodes: Mutex<Nodes>,
    /// Held while a node starts, so two restarts do not race.
    starting: tokio::sync::Mutex<()>,
}

fn refused(field: &str, why: impl Into<String>) -> HarnessError {
    HarnessError::spec("test spec", field, why.into())
}

impl GaleraDb {
    /// Reads the options from the spec and refuses what cannot work.
    pub fn from_spec(spec: &TestSpec) -> Result<GaleraDb> {
        let isolation =
            Isolation::parse(spec.option_text("isolation").unwrap_or("repeatable-read"))
                .map_err(|e| refused("options.isolation", e.to_string()))?;
        check_spec(spec)?;
        let tables = if spec.workload == "list-append" { Tables::Lists } else { Tables::Registers };
        Ok(GaleraDb {
            options: Options { isolation, tables },
            nodes: Mutex::default(),
            starting: tokio::sync::Mutex::new(()),
        })
    }

    /// What the test chose.
    pub fn options(&self) -> Options {
        self.options
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Nodes> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pid(&self, node: &str) -> Option<u32> {
        self.lock().pids.get(node).copied()
    }

    async fn running(&self, env: &TestEnv, node: &str) -> Result<bool> {
        match self.pid(node) {
            Some(pid) => control(env, node)?.is_alive(pid).await,
            None => Ok(false),
        }
    }

    /// The node's configuration.
    fn node_conf(&self, env: &TestEnv, node: &str) -> Result<NodeConf> {
        let a = env.addrs(node)?;
        let mut members = Vec::new();
        for other in env.nodes() {
            members.push(if other == node {
                a.peer_listen
            } else {
                *a.peers.get(other).ok_or_else(|| {
                    HarnessError::Internal(format!("{node} has no address for {other}"))
                })?
            });
        }
        let run = env.run_dir.file_name().map(|n| n.to_string_lossy().into_owned());
        Ok(NodeConf {
            name: node.to_owned(),
            data_dir: server::data_dir(env, node)?.to_string_lossy().into_owned(),
            socket: server::socket(env, node)?,
            pid_file: control(env, node)?.dir().join("mariadbd.pid").to_string_lossy().into_owned(),
            tmp_dir: control(env, node)?.dir().to_string_lossy().into_owned(),
            ports: Ports::new(a.client, a.peer_listen),
            members,
            cluster_name: format!("faultline-{}", run.unwrap_or_default()),
        })
    }

    /// Waits until every node before `node` is synced (the first start of
    /// a joiner: one state transfer at a time, from a synced donor).
    async fn wait_for_earlier(&self, env: &TestEnv, node: &str) -> Result<()> {
        let started = Instant::now();
        for earlier in env.nodes().iter().take_while(|n| *n != node) {
            loop {
                if server::status(env, earlier).await.is_some_and(|s| s.synced()) {
                    break;
                }
                if !self.running(env, earlier).await? {
                    return Err(HarnessError::node(
                        node,
                        "join the cluster",
                        format!("{earlier}, which it would join, is not running"),
                    ));
                }
                if started.elapsed() > JOIN_WAIT {
                    return Err(HarnessError::Timeout(format!(
                        "{earlier} was not synced within {JOIN_WAIT:?}, so {node} cannot join"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    /// Waits until no running member still counts `node`'s last instance
    /// among its members (for at most `FORGET_WAIT`). A node restarted
    /// while its peers still list its old instance hears its own address
    /// gossiped back and aborts ("Trying to add self addr ... to addr
    /// list"); the peers drop a killed member after
    /// `evs.inactive_timeout` (6 s).
    async fn wait_until_forgotten(&self, env: &TestEnv, node: &str) -> Result<()> {
        let own = env.addrs(node)?.client.to_string();
        let started = Instant::now();
        while started.elapsed() < FORGET_WAIT {
            let mut remembered = false;
            for other in env.nodes().iter().filter(|n| *n != node) {
                if self.pid(other).is_none() {
                    continue;
                }
                let q = "SHOW GLOBAL STATUS LIKE 'wsrep_incoming_addresses'";
                if let Ok(out) = server::sql(env, other, q).await {
                    remembered |= out.split(['\t', ',', '\n']).any(|a| a.trim() == own);
                }
            }
            if !remembered {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tracing::info!(node, "peers still list it after {FORGET_WAIT:?}; starting anyway");
        Ok(())
    }

    /// Why `node` is not ready: its state, and the last error in its log.
    async fn why_not_ready(&self, env: &TestEnv, node: &str, running: bool) -> String {
        let state = match server::status(env, node).await {
            Some(s) => format!(
                "state {:?}, ready {}, component {:?} of {}",
                s.state, s.ready, s.cluster, s.size
            ),
            // A joiner opens its socket only once it has the cluster's
            // state, which it cannot get outside a primary component.
            None if running => {
                "not answering (still joining: no primary component reached, or a state \
                 transfer under way)"
                    .to_owned()
            }
            None => "the server exited".to_owned(),
        };
        let log = server::log_file(env, node).map(|p| p.display().to_string()).unwrap_or_default();
        match server::last_error(env, node).await {
            Some(e) => format!("{state}; last error in {log}: {e}"),
            None => format!("{state}; see {log}"),
        }
    }

    /// Creates the database, tables and the client's user, once, when the
    /// first node is synced.
    async fn create_schema(&self, env: &TestEnv, node: &str) -> Result<()> {
        if env.nodes().first().map(String::as_str) == Some(node) {
            server::sql(env, node, &config::schema())
                .await
                .map_err(|e| HarnessError::node(node, "create the tables", e.to_string()))?;
        }
        Ok(())
    }
}

/// Nemeses that do not apply to Galera.
fn check_spec(spec: &TestSpec) -> Result<()> {
    // "raft" is the spec's default mode, standing for "not chosen".
    if !matches!(spec.mode.as_str(), "" | "raft" | "galera") {
        return Err(refused(
            "mode",
            format!("{:?}: galera has one mode (multi-master); choose --opt isolation", spec.mode),
        ));
    }
    if spec.runtime == RuntimeKind::Local {
        return Err(refused(
            "runtime",
            "galera needs four ports per node (clients, group communication, IST and SST) and \
             peers that dial each other's own addresses; the local runtime gives each node two \
             loopback ports and a proxy per link. Use --runtime netns (root) or ssh",
        ));
    }
    if spec.nemeses().contains(&"clock") {
        return Err(refused(
            "nemesis",
            "clock faults are refused: the adapter has no clock control for MariaDB, and \
             libfaketime under mariadbd was not tried",
        ));
    }
    if !matches!(spec.workload.as_str(), "list-append" | "rw-register" | "bank" | "register") {
        return Err(refused(
            "workload",
            format!(
                "{:?}: the galera client implements list-append, rw-register, bank and register",
                spec.workload
            ),
        ));
    }
    Ok(())
}

#[async_trait]
impl Db for GaleraDb {
    async fn setup(&self, env: &TestEnv, node: &str) -> Result<()> {
        let who = server::install_check(env, node).await?;
        let conf = self.node_conf(env, node)?;
        server::prepare(env, node, &who, &conf).await?;
        let mut nodes = self.lock();
        nodes.run_as.insert(node.to_owned(), who);
        nodes.joined.remove(node);
        Ok(())
    }

    async fn start(&self, env: &TestEnv, node: &str) -> Result<()> {
        let _starting = self.starting.lock().await;
        // Two nemeses may restart the same node; a second server on the
        // same data directory would only fail.
        if self.running(env, node).await? {
            return Ok(());
        }
        let (who, joined_before) = {
            let nodes = self.lock();
            let who = nodes.run_as.get(node).cloned();
            (who, !nodes.joined.is_empty())
        };
        let who = who.ok_or_else(|| HarnessError::Internal(format!("{node} not set up")))?;
        // Only the very first start of the first node bootstraps: a
        // cluster that ever formed is rejoined, never founded again (two
        // bootstraps would be two clusters).
        let first = env.nodes().first().map(String::as_str) == Some(node);
        let bootstrap = first && !joined_before;
        // A node that never joined waits for the nodes before it; a
        // returning one for its peers to forget its last instance.
        if !bootstrap && !self.lock().joined.contains(node) {
            self.wait_for_earlier(env, node).await?;
        } else if !bootstrap {
            self.wait_until_forgotten(env, node).await?;
        }
        let pid = server::start(env, node, &who, bootstrap).await?;
        tracing::info!(node, pid, bootstrap, "mariadbd started");
        self.lock().pids.insert(node.to_owned(), pid);
        Ok(())
    }

    async fn kill(&self, env: &TestEnv, node: &str) -> Result<()> {
        if let Some(pid) = self.pid(node) {
            server::signal_group(env, node, pid, Signal::Kill).await?;
            // SIGKILL is delivered, not waited for: a server with a large
            // buffer pool takes a moment to exit, and nothing of the node
            // may outlive its teardown (nor its data directory be removed
            // under it).
            let killed = Instant::now();
            while server::group_alive(env, node, pid).await? && killed.elapsed() < STOP_GRACE {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.lock().pids.remove(node);
        Ok(())
    }

    async fn pause(&self, env: &TestEnv, node: &str) -> Result<()> {
        match self.pid(node) {
            Some(pid) => server::signal_group(env, node, pid, Signal::Stop).await,
            None => Ok(()),
        }
    }

    async fn resume(&self, env: &TestEnv, node: &str) -> Result<()> {
        match self.pid(node) {
            Some(pid) => server::signal_group(env, node, pid, Signal::Cont).await,
            None => Ok(()),
        }
    }

    /// Ready is synced with a primary component (`wsrep_ready = ON`,
    /// `wsrep_local_state_comment = Synced`): the first time, and after a
    /// restart, when the node has rejoined by IST or SST.
    async fn await_ready(&self, env: &TestEnv, node: &str, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            if server::status(env, node).await.is_some_and(|s| s.synced()) {
                break;
            }
            let running = self.running(env, node).await?;
            if !running || started.elapsed() > timeout {
                let why = self.why_not_ready(env, node, running).await;
                return Err(HarnessError::node(
                    node,
                    format!("join the galera cluster within {timeout:?}"),
                    why,
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let first_time = self.lock().joined.insert(node.to_owned());
        if first_time && self.lock().joined.len() == 1 {
            self.create_schema(env, node).await?;
        }
        Ok(())
    }

    async fn is_running(&self, env: &TestEnv, node: &str) -> Result<bool> {
        self.running(env, node).await
    }

    async fn teardown(&self, env: &TestEnv, node: &str) -> Result<()> {
        if let Some(pid) = self.pid(node) {
            // A paused server cannot act on a signal; resume it first.
            server::signal_group(env, node, pid, Signal::Cont).await?;
            control(env, node)?.signal(pid, Signal::Term).await?;
            let started = Instant::now();
            while self.running(env, node).await? && started.elapsed() < STOP_GRACE {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if self.running(env, node).await? {
                tracing::info!(node, "mariadbd did not stop within {STOP_GRACE:?}; killing it");
            }
            // Whatever is left of the group (the server, a state transfer).
            server::signal_group(env, node, pid, Signal::Kill).await?;
            // SIGKILL is delivered, not waited for: a server with a large
            // buffer pool takes a moment to exit, and nothing of the node
            // may outlive its teardown (nor its data directory be removed
            // under it).
            let killed = Instant::now();
            while server::group_alive(env, node, pid).await? && killed.elapsed() < STOP_GRACE {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.lock().pids.remove(node);
        let dir = server::data_dir(env, node)?.to_string_lossy().into_owned();
        let socket = server::socket(env, node)?;
        if let Err(e) = run(env, node, "rm", &["-rf".into(), dir, socket]).await {
            tracing::warn!(node, "could not remove the data directory: {e}");
        }
        Ok(())
    }

    fn log_files(&self, env: &TestEnv, node: &str) -> Vec<PathBuf> {
        server::log_file(env, node).into_iter().collect()
    }

    /// Galera is multi-master: every node synced with the primary component
    /// takes writes, so every such node is a primary.
    async fn primaries(&self, env: &TestEnv) -> Vec<String> {
        let mut out = Vec::new();
        for node in env.nodes() {
            if self.pid(node).is_some()
                && server::status(env, node).await.is_some_and(|s| s.synced())
            {
                out.push(node.clone());
            }
        }
        out
    }

    /// InnoDB's redo log (`ib_logfile0`, fsynced at every commit with
    /// `innodb_flush_log_at_trx_commit = 1`) and its system tablespace
    /// (`ibdata1`: undo logs and the doublewrite buffer, fsynced before a
    /// checkpoint lets the redo log forget what they hold, so nothing
    /// acknowledged depends on an unsynced write to it). Galera's own state
    /// (`grastate.dat`, the gcache) is not listed: a node rebuilds it by
    /// state transfer.
    fn data_files(&self, env: &TestEnv, node: &str) -> Vec<DataFile> {
        let Ok(data) = server::data_dir(env, node) else { return Vec::new() };
        ["ib_logfile0", "ibdata1"]
            .into_iter()
            .map(|f| DataFile { path: data.join(f), durability: Durability::FsyncBeforeAck })
            .collect()
    }

    fn default_nemeses(&self) -> Vec<String> {
        ["partition", "kill", "pause"].iter().map(|s| (*s).to_owned()).collect()
    }

    fn client(&self, env: &TestEnv) -> Box<dyn Client> {
        Box::new(GaleraClient::new(env.clone(), self.options))
    }

    fn supported_fs(&self) -> &[&str] {
        &["read", "final-read", "write", "cas", "txn", "transfer"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(opts: &[(&str, &str)]) -> TestSpec {
        let mut s = TestSpec { target: "galera".into(), nodes: 3, ..TestSpec::default() };
        s.runtime = RuntimeKind::Netns;
        s.workload = "list-append".into();
        for (k, v) in opts {
            s.options.insert((*k).into(), (*v).into());
        }
        s
    }

    fn error(s: &TestSpec) -> String {
        GaleraDb::from_spec(s).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn isolation_defaults_to_repeatable_read_and_is_noted_as_read() {
        let s = spec(&[]);
        let o = GaleraDb::from_spec(&s).expect("db").options();
        assert_eq!(o, Options { isolation: Isolation::RepeatableRead, tables: Tables::Lists });
        assert!(s.options_read.names().contains("isolation"));
        let o = GaleraDb::from_spec(&spec(&[("isolation", "serializable")])).expect("db").options();
        assert_eq!(o.isolation, Isolation::Serializable);
    }

    #[test]
    fn local_runtime_clock_faults_unknown_levels_and_other_workloads_are_refused() {
        assert!(error(&spec(&[("isolation", "snapshot")])).contains("repeatable-read"));
        let mut s = spec(&[]);
        s.runtime = RuntimeKind::Local;
        assert!(error(&s).contains("four ports"), "{}", error(&s));
        let mut s = spec(&[]);
        s.nemesis = vec!["clock".into()];
        assert!(error(&s).contains("clock faults are refused"));
        let mut s = spec(&[]);
        s.workload = "set".into();
        assert!(error(&s).contains("list-append, rw-register, bank"), "{}", error(&s));
        s.workload = "bank".into();
        let db = GaleraDb::from_spec(&s).expect("bank");
        assert_eq!(db.options().tables, Tables::Registers);
    }
}
