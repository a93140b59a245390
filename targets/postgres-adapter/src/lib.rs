//! The PostgreSQL adapter: PostgreSQL 15 as Debian packages it
//! (`postgresql-15`) with streaming replication, run by the harness on any
//! runtime, and a client over `tokio-postgres` (`client.rs`).
//!
//! The first node is the primary, created with `initdb`; every other node
//! is a standby cloned from it with `pg_basebackup` and streaming from it.
//! When the primary's server dies, the adapter promotes the most advanced
//! standby (`failover.rs` states the policy exactly). Options
//! (`--opt KEY=VALUE`):
//! - `pg_replication = async | sync`: asynchronous streaming (the default),
//!   or a commit acknowledged only once one standby applied it
//!   (`synchronous_standby_names = 'ANY 1 (*)'`,
//!   `synchronous_commit = remote_apply`);
//! - `isolation = read-committed | repeatable-read | serializable` (default
//!   serializable), every transaction's level;
//! - `pg_failover = promote`: the adapter's own promotion, the only one
//!   built (`patroni` is refused as not built).
//!
//! PostgreSQL listens on one port for clients and for replication, so on
//! the `local` runtime standbys dial the primary directly, not through the
//! runtime's per-link proxies: partitions and packet faults are refused
//! there. Clock faults are refused everywhere (see `from_spec`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use harness::node::Signal;
use harness::spec::RuntimeKind;
use harness::{
    Client, DataFile, Db, Durability, HarnessError, Registry, Result, TestEnv, TestSpec,
};

mod client;
mod cluster;
pub mod config;
mod failover;
mod ops;
pub mod outcome;
mod server;

pub use client::PgClient;
use cluster::Cluster;
pub use cluster::{Options, Tables};
use config::{ConfigError, Failover, Isolation, Replication};

/// How long teardown lets a server shut down before it kills it.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Registers the `postgres` target.
pub fn register_all(registry: &mut Registry) {
    registry.target(
        "postgres",
        "PostgreSQL 15 (Debian's postgresql-15) with streaming replication and failover by \
         promotion (options.pg_replication = async | sync, options.isolation = read-committed | \
         repeatable-read | serializable, options.pg_failover = promote)",
        |spec| Ok(Arc::new(PgDb::from_spec(spec)?)),
    );
}

/// The PostgreSQL target.
pub struct PgDb {
    cluster: Arc<Cluster>,
    runtime: RuntimeKind,
    /// The failover watchdog, started once the first primary is ready.
    watchdog: Mutex<Option<tokio::task::AbortHandle>>,
}

/// Nemeses whose faults are links between nodes, which the local runtime
/// cannot put between PostgreSQL servers (see the crate's documentation).
const LINK_NEMESES: &[&str] = &["partition", "packet"];

fn refused(field: &str, e: ConfigError) -> HarnessError {
    HarnessError::spec("test spec", field, e.to_string())
}

impl PgDb {
    /// Reads the options from the spec and refuses what cannot work.
    pub fn from_spec(spec: &TestSpec) -> Result<PgDb> {
        let option = |k: &'static str, default: &'static str| {
            spec.option_text(k).unwrap_or(default).to_owned()
        };
        let replication = Replication::parse(&option("pg_replication", "async"))
            .map_err(|e| refused("options.pg_replication", e))?;
        let isolation = Isolation::parse(&option("isolation", "serializable"))
            .map_err(|e| refused("options.isolation", e))?;
        let Failover::Promote = Failover::parse(&option("pg_failover", "promote"))
            .map_err(|e| refused("options.pg_failover", e))?;
        check_spec(spec, replication)?;
        let tables = if spec.workload == "list-append" { Tables::Lists } else { Tables::Registers };
        let options = Options { replication, isolation, tables };
        Ok(PgDb {
            cluster: Arc::new(Cluster::new(options)),
            runtime: spec.runtime,
            watchdog: Mutex::new(None),
        })
    }

    /// What the test chose.
    pub fn options(&self) -> Options {
        self.cluster.options
    }

    async fn signal(&self, env: &TestEnv, node: &str, signal: Signal) -> Result<()> {
        match self.cluster.pid(node) {
            Some(pid) => server::signal_tree(env, node, pid, signal).await,
            None => Ok(()),
        }
    }

    /// Creates the tables and starts the watchdog, once, when the first
    /// primary is ready.
    async fn first_ready(&self, env: &TestEnv, node: &str) -> Result<()> {
        let mut watchdog = self.watchdog.lock().unwrap_or_else(|e| e.into_inner()).take();
        if watchdog.is_none() && self.cluster.primary.get().0 == node {
            let addr = env.addrs(node)?.client;
            let session = server::connect(addr, Duration::from_secs(2)).await;
            let session =
                session.ok_or_else(|| HarnessError::node(node, "connect", "no answer"))?;
            session
                .batch_execute(ops::SCHEMA)
                .await
                .map_err(|e| HarnessError::node(node, "create the tables", e.to_string()))?;
            let task = tokio::spawn(failover::watch(self.cluster.clone(), env.clone()));
            watchdog = Some(task.abort_handle());
        }
        *self.watchdog.lock().unwrap_or_else(|e| e.into_inner()) = watchdog;
        Ok(())
    }
}

/// Refuses what this adapter cannot do honestly for `spec`.
fn check_spec(spec: &TestSpec, replication: Replication) -> Result<()> {
    // "raft" is the spec's default mode, standing for "not chosen".
    if !matches!(spec.mode.as_str(), "" | "raft" | "streaming") {
        return Err(HarnessError::spec(
            "test spec",
            "mode",
            format!(
                "{:?}: postgres has one mode (streaming); choose --opt pg_replication",
                spec.mode
            ),
        ));
    }
    if replication == Replication::Sync && spec.nodes < 2 {
        return Err(HarnessError::spec(
            "test spec",
            "options.pg_replication",
            "sync needs a standby to acknowledge commits: use --nodes 2 or more",
        ));
    }
    let nemeses = spec.nemeses();
    if nemeses.contains(&"clock") {
        return Err(HarnessError::spec(
            "test spec",
            "nemesis",
            "clock faults are refused: the adapter has no clock control for PostgreSQL, and \
             libfaketime under its servers was not shown to work",
        ));
    }
    if spec.runtime == RuntimeKind::Local
        && let Some(n) = nemeses.into_iter().find(|n| LINK_NEMESES.contains(n))
    {
        return Err(HarnessError::spec(
            "test spec",
            "nemesis",
            format!(
                "{n} cannot cut PostgreSQL's links on the local runtime: standbys and clients \
                 share the server's one port, so standbys dial the primary directly, not \
                 through the runtime's per-link proxies; use --runtime netns (root)"
            ),
        ));
    }
    Ok(())
}

#[async_trait]
impl Db for PgDb {
    async fn setup(&self, env: &TestEnv, node: &str) -> Result<()> {
        self.cluster.setup(env, node).await
    }

    async fn start(&self, env: &TestEnv, node: &str) -> Result<()> {
        self.cluster.start(env, node).await
    }

    async fn kill(&self, env: &TestEnv, node: &str) -> Result<()> {
        self.signal(env, node, Signal::Kill).await?;
        self.cluster.forget(node);
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
        let addr = env.addrs(node)?.client;
        while server::in_recovery(addr).await.is_none() {
            if !self.cluster.running(env, node).await? {
                let log = server::log_file(env, node)?;
                let why = format!("the server exited; see {}", log.display());
                return Err(HarnessError::node(node, "start postgres", why));
            }
            if started.elapsed() > timeout {
                return Err(HarnessError::Timeout(format!(
                    "postgres on {node} did not answer within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.first_ready(env, node).await
    }

    async fn is_running(&self, env: &TestEnv, node: &str) -> Result<bool> {
        self.cluster.running(env, node).await
    }

    async fn teardown(&self, env: &TestEnv, node: &str) -> Result<()> {
        // No failover while the cluster is taken down.
        if let Some(w) = self.watchdog.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            w.abort();
        }
        if let Some(pid) = self.cluster.pid(node) {
            // A paused server cannot act on a signal; resume it first.
            server::signal_tree(env, node, pid, Signal::Cont).await?;
            server::request_fast_stop(env, node, pid).await?;
            let started = Instant::now();
            while self.cluster.running(env, node).await? && started.elapsed() < STOP_GRACE {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            if self.cluster.running(env, node).await? {
                tracing::info!(node, "postgres did not stop within {STOP_GRACE:?}; killing it");
            }
        }
        self.kill(env, node).await?;
        let dir = server::data_dir(env, node)?.to_string_lossy().into_owned();
        if let Err(e) = server::run(env, node, "rm", &["-rf".into(), dir]).await {
            tracing::warn!(node, "could not remove the data directory: {e}");
        }
        Ok(())
    }

    fn log_files(&self, env: &TestEnv, node: &str) -> Vec<PathBuf> {
        server::log_file(env, node).into_iter().collect()
    }

    /// The nodes whose server says it is not in recovery.
    async fn primaries(&self, env: &TestEnv) -> Vec<String> {
        self.cluster.primaries(env).await
    }

    /// The WAL segments (`pg_wal/`), which PostgreSQL fsyncs before it
    /// acknowledges a commit. Their names change as the WAL grows and with
    /// each new timeline, so they are listed where the node's directory is
    /// on this machine (netns, local); on ssh the first segment of the
    /// first timeline is named, the whole WAL of a short test that never
    /// failed over.
    fn data_files(&self, env: &TestEnv, node: &str) -> Vec<DataFile> {
        let Ok(wal) = server::data_dir(env, node).map(|d| d.join("pg_wal")) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = std::fs::read_dir(&wal)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| is_segment(&n.to_string_lossy())))
            .collect();
        if names.is_empty() {
            names.push(wal.join("000000010000000000000001"));
        }
        names.sort();
        names
            .into_iter()
            .map(|path| DataFile { path, durability: Durability::FsyncBeforeAck })
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

    /// Kills aim at the primary, where failover is what is tested.
    fn default_options(&self, nemeses: &[String]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if nemeses.iter().any(|n| n == "kill") {
            out.push(("kill_targets".to_owned(), "primaries".to_owned()));
        }
        out
    }

    fn client(&self, env: &TestEnv) -> Box<dyn Client> {
        Box::new(PgClient::new(env.clone(), self.cluster.primary.clone(), self.cluster.options))
    }

    fn supported_fs(&self) -> &[&str] {
        &["read", "final-read", "write", "cas", "txn", "transfer", "add"]
    }
}

/// A WAL segment's name: 24 hexadecimal digits (timeline, log, segment).
fn is_segment(name: &str) -> bool {
    name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(opts: &[(&str, &str)]) -> TestSpec {
        let mut s = TestSpec { target: "postgres".into(), nodes: 3, ..TestSpec::default() };
        s.runtime = RuntimeKind::Netns;
        s.workload = "list-append".into();
        for (k, v) in opts {
            s.options.insert((*k).into(), (*v).into());
        }
        s
    }

    fn error(s: &TestSpec) -> String {
        PgDb::from_spec(s).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn options_default_to_serializable_async_and_are_noted_as_read() {
        let s = spec(&[]);
        let o = PgDb::from_spec(&s).expect("db").options();
        assert_eq!((o.isolation, o.replication), (Isolation::Serializable, Replication::Async));
        assert_eq!(o.tables, Tables::Lists);
        for k in ["isolation", "pg_replication", "pg_failover"] {
            assert!(s.options_read.names().contains(k), "{k} not noted");
        }
        let o =
            PgDb::from_spec(&spec(&[("isolation", "repeatable-read"), ("pg_replication", "sync")]))
                .expect("db")
                .options();
        assert_eq!((o.isolation, o.replication), (Isolation::RepeatableRead, Replication::Sync));
    }

    #[test]
    fn wrong_values_patroni_clock_faults_and_local_partitions_are_refused_with_reasons() {
        assert!(error(&spec(&[("isolation", "snapshot")])).contains("repeatable-read"));
        assert!(error(&spec(&[("pg_failover", "patroni")])).contains("not built"));
        let mut s = spec(&[]);
        s.nemesis = vec!["clock".into()];
        assert!(error(&s).contains("clock faults are refused"));
        s.nemesis = vec!["partition".into()];
        s.runtime = RuntimeKind::Local;
        assert!(error(&s).contains("one port"), "{}", error(&s));
        s.nemesis = vec!["kill".into(), "pause".into()];
        assert!(PgDb::from_spec(&s).is_ok());
        let mut one = spec(&[("pg_replication", "sync")]);
        one.nodes = 1;
        assert!(error(&one).contains("--nodes 2"));
    }

    #[test]
    fn kills_aim_at_the_primary_and_wal_segments_are_recognised() {
        let db = PgDb::from_spec(&spec(&[])).expect("db");
        let opts = db.default_options(&["kill".into()]);
        assert_eq!(opts, [("kill_targets".to_owned(), "primaries".to_owned())]);
        assert!(is_segment("000000010000000000000001"));
        assert!(!is_segment("000000010000000000000001.partial"));
        assert!(!is_segment("archive_status"));
    }
}
